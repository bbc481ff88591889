//! The real dispatcher: A2A JSON-RPC over HTTP.
//!
//! POSTs the item's body to the workspace's registered URL with a timeout and
//! hands status and body to [`classify`](super::classify). What it will not
//! do, because the URL came from a caller: follow a redirect (a 3xx is an
//! error naming where it pointed), read an answer past the configured cap
//! (an error, nothing past the cap kept), reach an address the egress policy
//! refuses (checked on the addresses a name resolves to), or quote a URL's
//! credentials in an error.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use super::egress::Allowed;
use super::{classify, Delivery, DispatchError, DispatchOutcome, Dispatcher};
use crate::model::workspace::redact_url;

#[derive(Debug, Clone)]
pub struct A2aDispatcher {
    client: reqwest::Client,
    timeout: Duration,
    max_response: usize,
    egress: Arc<Allowed>,
}

/// Resolves names, keeping only the addresses the egress policy allows.
struct Resolver {
    egress: Arc<Allowed>,
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let egress = self.egress.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| egress.check(Some(&host), a.ip()).is_ok())
                .collect();
            if allowed.is_empty() {
                // The typed refusal travels up the error chain, where the
                // dispatcher tells it apart from a name that did not resolve.
                return Err(match found.first() {
                    Some(a) => match egress.check(Some(&host), a.ip()) {
                        Err(refused) => {
                            Box::new(refused) as Box<dyn std::error::Error + Send + Sync>
                        }
                        Ok(()) => format!("{host} resolved to no allowed address").into(),
                    },
                    None => format!("{host} did not resolve").into(),
                });
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

impl A2aDispatcher {
    /// With the default answer cap (1 MiB) and no allow list.
    pub fn new(timeout: Duration) -> Self {
        Self::with_limits(timeout, 1 << 20, Allowed::default())
    }

    pub fn with_limits(timeout: Duration, max_response: usize, egress: Allowed) -> Self {
        let egress = Arc::new(egress);
        let client = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(Resolver {
                egress: egress.clone(),
            }))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            client,
            timeout,
            max_response,
            egress,
        }
    }

    /// A transport error, its chain of causes spelled out, the URL redacted;
    /// a name that resolved only to refused addresses is a refusal.
    fn unreachable(url: &str, err: reqwest::Error) -> DispatchError {
        let err = err.without_url();
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            if let Some(refused) = s.downcast_ref::<super::egress::Refused>() {
                return DispatchError::Refused(refused.to_string());
            }
            source = s.source();
        }
        let mut reason = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            reason.push_str(": ");
            reason.push_str(&s.to_string());
            source = s.source();
        }
        DispatchError::Unreachable {
            url: redact_url(url),
            reason,
        }
    }
}

#[async_trait::async_trait]
impl Dispatcher for A2aDispatcher {
    async fn deliver(&self, delivery: &Delivery) -> Result<DispatchOutcome, DispatchError> {
        let url = delivery
            .workspace
            .url
            .as_deref()
            .ok_or_else(|| DispatchError::NoUrl {
                workspace: delivery.workspace.id.clone(),
            })?;
        // An address written in the URL never reaches the resolver: check it here.
        let literal = url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_string()))
            .and_then(|h| h.parse::<IpAddr>().ok());
        if let Some(ip) = literal {
            self.egress
                .check(None, ip)
                .map_err(|r| DispatchError::Refused(r.to_string()))?;
        }
        let mut request = self
            .client
            .post(url)
            .timeout(self.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(delivery.body.clone());
        if let Some(key) = &delivery.idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let mut response = request.send().await.map_err(|e| match e.is_timeout() {
            true => DispatchError::Timeout(self.timeout),
            false => Self::unreachable(url, e),
        })?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(redact_url)
                .unwrap_or_else(|| "nowhere".to_string());
            return Err(DispatchError::Redirect {
                status: status.as_u16(),
                location,
            });
        }
        let mut body = Vec::new();
        loop {
            let chunk = response.chunk().await.map_err(|e| match e.is_timeout() {
                true => DispatchError::Timeout(self.timeout),
                false => Self::unreachable(url, e),
            })?;
            let Some(chunk) = chunk else { break };
            if body.len() + chunk.len() > self.max_response {
                return Err(DispatchError::TooLarge {
                    limit: self.max_response,
                });
            }
            body.extend_from_slice(&chunk);
        }
        classify(status.as_u16(), &body)
    }
}
