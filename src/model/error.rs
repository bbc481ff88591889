//! The one error of the model: a value from outside (a request, a config
//! file, an agent's answer) that breaks a rule, naming the field to blame.

/// `field: problem`, e.g. `ttl_s: 10000000000000 is above the limit of 2592000`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct Invalid {
    /// The field in the caller's own terms (an HTTP body field, a query
    /// parameter, a configuration key).
    pub field: &'static str,
    pub problem: String,
}

impl Invalid {
    pub fn new(field: &'static str, problem: impl Into<String>) -> Self {
        Self {
            field,
            problem: problem.into(),
        }
    }
}
