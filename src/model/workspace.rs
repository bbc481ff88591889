//! The workspace registry: who can receive messages, and how much room they
//! have. A registration names the agent's URL and its limit; a beat reports
//! its load. Spare capacity is the one number the drain delivers by.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::limits::{within, ACTIVE_TASKS_MAX, MAX_CONCURRENT_MAX};
use super::{text, Invalid};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkspaceStatus {
    Online,
    Offline,
}

impl WorkspaceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkspaceStatus::Online => "online",
            WorkspaceStatus::Offline => "offline",
        }
    }

    pub fn from_name(text: &str) -> Option<Self> {
        match text {
            "online" => Some(WorkspaceStatus::Online),
            "offline" => Some(WorkspaceStatus::Offline),
            _ => None,
        }
    }
}

/// One row of the registry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workspace {
    pub id: String,
    /// Where A2A messages are POSTed; `None` until registered with one.
    #[serde(serialize_with = "redacted")]
    pub url: Option<String>,
    pub max_concurrent: i32,
    pub active_tasks: i32,
    pub status: WorkspaceStatus,
    pub last_heartbeat: Option<DateTime<Utc>>,
}

/// A workspace as the console shows it: its row and its depth (queued and
/// dispatched items).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkspaceView {
    #[serde(flatten)]
    pub workspace: Workspace,
    pub depth: u64,
}

fn redacted<S: serde::Serializer>(url: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match url {
        Some(u) => s.serialize_some(&redact_url(u)),
        None => s.serialize_none(),
    }
}

impl Workspace {
    /// Room for more work right now. Never negative: an agent that reports
    /// more active tasks than its limit simply has none; an offline one has none.
    pub fn spare_capacity(&self) -> u32 {
        if self.status == WorkspaceStatus::Offline {
            return 0;
        }
        u32::try_from(self.max_concurrent.saturating_sub(self.active_tasks)).unwrap_or(0)
    }
}

/// Default limit for a workspace that beats before it was registered.
pub const DEFAULT_MAX_CONCURRENT: u32 = 1;

/// A validated registration: `PUT /v1/workspaces/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub workspace: String,
    pub url: Option<String>,
    pub max_concurrent: u32,
}

impl Registration {
    pub fn new(
        workspace: impl Into<String>,
        url: Option<String>,
        max_concurrent: u32,
    ) -> Result<Self, Invalid> {
        let workspace = workspace.into();
        text::id("id", &workspace)?;
        if let Some(url) = &url {
            agent_url(url)?;
        }
        Ok(Self {
            workspace,
            url,
            max_concurrent: max_concurrent_field(max_concurrent)?,
        })
    }
}

/// A workspace's report of its load, validated.
///
/// A beat from a workspace never registered registers it without a URL: an
/// embedding host's dispatcher may need none, and its capacity is known
/// before the registration catches up. (The A2A dispatcher answers a delivery
/// to a workspace without a URL with an error naming it.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceBeat {
    pub workspace: String,
    pub active_tasks: u32,
    /// A new limit, when the workspace reports one; else the stored one stays.
    pub max_concurrent: Option<u32>,
}

impl WorkspaceBeat {
    pub fn new(
        workspace: impl Into<String>,
        active_tasks: u32,
        max_concurrent: Option<u32>,
    ) -> Result<Self, Invalid> {
        let workspace = workspace.into();
        text::id("id", &workspace)?;
        Ok(Self {
            workspace,
            active_tasks: within("active_tasks", active_tasks, 0, ACTIVE_TASKS_MAX)?,
            max_concurrent: max_concurrent.map(max_concurrent_field).transpose()?,
        })
    }

    /// Check a beat built field by field (embedding code).
    pub fn validate(&self) -> Result<(), Invalid> {
        Self::new(
            self.workspace.clone(),
            self.active_tasks,
            self.max_concurrent,
        )
        .map(|_| ())
    }
}

/// `max_concurrent` is 1–10,000 wherever it comes from: zero would be a
/// workspace that can never receive anything (an agent with no room reports
/// `active_tasks` equal to its limit instead).
fn max_concurrent_field(n: u32) -> Result<u32, Invalid> {
    within("max_concurrent", n, 1, MAX_CONCURRENT_MAX)
}

/// An agent URL: `http` or `https`, with a host, a valid port, no
/// whitespace or control characters.
pub fn agent_url(text: &str) -> Result<url::Url, Invalid> {
    let bad = |why: &str| Invalid::new("url", format!("{:?} {why}", redact_url(text)));
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("contains whitespace or control characters"));
    }
    let parsed = url::Url::parse(text).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("is not an http:// or https:// URL"));
    }
    match parsed.host_str() {
        None | Some("") => return Err(bad("has no host")),
        Some(_) => {}
    }
    // `url` parses `http:///etc/passwd` as host "etc"; refuse what was not
    // written as `scheme://host…`.
    let after_scheme = &text[parsed.scheme().len()..];
    if !after_scheme.starts_with("://") || after_scheme[3..].starts_with('/') {
        return Err(bad("has no host"));
    }
    Ok(parsed)
}

/// A URL fit to show or log: any user name and password replaced by `***`.
/// Text that does not parse as a URL is shown with anything up to an `@`
/// after the scheme hidden, so a mangled URL cannot leak a password either.
pub fn redact_url(text: &str) -> String {
    if let Ok(mut parsed) = url::Url::parse(text) {
        if parsed.cannot_be_a_base() {
            return text.to_string();
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            let _ = parsed.set_username("***");
            let _ = parsed.set_password(None);
            return parsed.to_string();
        }
        return text.to_string();
    }
    match (text.find("://"), text.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}***{}", &text[..scheme_end + 3], &text[at..])
        }
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(max: i32, active: i32, status: WorkspaceStatus) -> Workspace {
        Workspace {
            id: "w".into(),
            url: None,
            max_concurrent: max,
            active_tasks: active,
            status,
            last_heartbeat: None,
        }
    }

    #[test]
    fn spare_capacity_is_never_negative_and_offline_has_none() {
        assert_eq!(row(3, 1, WorkspaceStatus::Online).spare_capacity(), 2);
        assert_eq!(row(3, 5, WorkspaceStatus::Online).spare_capacity(), 0);
        assert_eq!(row(3, 0, WorkspaceStatus::Offline).spare_capacity(), 0);
        assert_eq!(
            row(i32::MAX, i32::MIN, WorkspaceStatus::Online).spare_capacity(),
            u32::try_from(i32::MAX).unwrap()
        );
    }

    #[test]
    fn registrations_check_id_url_and_limit() {
        assert!(Registration::new("a1", Some("http://127.0.0.1:9000/a2a".into()), 2).is_ok());
        assert_eq!(
            Registration::new("a1", None, 0).unwrap_err().field,
            "max_concurrent"
        );
        assert_eq!(
            Registration::new("a1", None, 2_147_483_648)
                .unwrap_err()
                .field,
            "max_concurrent"
        );
        assert_eq!(Registration::new("a b", None, 1).unwrap_err().field, "id");
    }

    #[test]
    fn agent_urls_are_parsed_for_real() {
        for ok in [
            "http://127.0.0.1:9000/a2a",
            "https://agent.example.com/a2a?x=1",
            "http://[::1]:8080/",
        ] {
            assert!(agent_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http:///etc/passwd",
            "http://:80/x",
            "http://h:99999/",
            "http://h/a b",
            "http://h/\r\nX: y",
            "http://[::1/",
            "ftp://h/",
            "file:///etc/passwd",
            "localhost:8080",
            "",
        ] {
            assert_eq!(agent_url(bad).unwrap_err().field, "url", "{bad:?}");
        }
    }

    #[test]
    fn credentials_never_survive_redaction() {
        assert_eq!(redact_url("http://user:secret@h:1/a"), "http://***@h:1/a");
        assert_eq!(redact_url("postgres://u:pw@db/x"), "postgres://***@db/x");
        assert_eq!(redact_url("http://h/a"), "http://h/a");
        assert_eq!(
            redact_url("sqlite://ringmaster.db"),
            "sqlite://ringmaster.db"
        );
        let mangled = redact_url("http://u:pw@h:99999/");
        assert!(!mangled.contains("pw"), "{mangled}");
        let err = agent_url("http://u:pw@h:99999/").unwrap_err();
        assert!(!err.problem.contains("pw"), "{err}");
    }

    #[test]
    fn beats_are_bounded() {
        assert!(WorkspaceBeat::new("w", 1_000_000, Some(10_000)).is_ok());
        assert_eq!(
            WorkspaceBeat::new("w", 2_147_483_648, None)
                .unwrap_err()
                .field,
            "active_tasks"
        );
        assert_eq!(
            WorkspaceBeat::new("w", 0, Some(0)).unwrap_err().field,
            "max_concurrent"
        );
    }
}
