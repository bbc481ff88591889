//! Where agents may be reached. An agent URL is an outbound request made on
//! a caller's say-so, so the node must not be turned against its own
//! neighbourhood: link-local addresses (169.254.0.0/16, where cloud
//! metadata services answer, and fe80::/10) are refused unless explicitly
//! allowed, and when `RINGMASTER_AGENT_ALLOW` lists hosts or CIDRs, only
//! those are reached. The check applies to the addresses a name resolves to
//! (the dispatcher's resolver filters them), so a name cannot smuggle a
//! forbidden address past it.

use std::net::IpAddr;

use ipnet::IpNet;

/// One allowed destination: a host name or a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Host(String),
    Net(IpNet),
}

/// The egress policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowed {
    entries: Option<Vec<Entry>>,
}

/// Why a destination was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not an allowed agent address (RINGMASTER_AGENT_ALLOW; link-local and metadata addresses need to be listed)")]
pub struct Refused(pub String);

fn link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => {
            (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_link_local())
        }
    }
}

impl Allowed {
    /// One configured entry: a CIDR, an IP address, or a host name.
    pub fn entry(text: &str) -> Result<Entry, String> {
        let t = text.trim();
        if let Ok(net) = t.parse::<IpNet>() {
            return Ok(Entry::Net(net));
        }
        if let Ok(ip) = t.parse::<IpAddr>() {
            return Ok(Entry::Net(IpNet::from(ip)));
        }
        let host = t.to_ascii_lowercase();
        let valid = !host.is_empty()
            && host.len() <= 253
            && host
                .split('.')
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        if valid {
            Ok(Entry::Host(host))
        } else {
            Err(t.to_string())
        }
    }

    /// The policy from `RINGMASTER_AGENT_ALLOW` (`None`: any address that is
    /// not link-local).
    pub fn new(list: Option<&[String]>) -> Result<Self, String> {
        let entries = list
            .map(|l| {
                l.iter()
                    .map(|e| Self::entry(e))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        Ok(Self { entries })
    }

    fn host_listed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.entries
            .iter()
            .flatten()
            .any(|e| matches!(e, Entry::Host(h) if *h == host))
    }

    fn ip_listed(&self, ip: IpAddr) -> bool {
        self.entries
            .iter()
            .flatten()
            .any(|e| matches!(e, Entry::Net(n) if n.contains(&ip)))
    }

    /// May `ip` be reached, reached through the name `host` (`None` for an
    /// address written in the URL)?
    pub fn check(&self, host: Option<&str>, ip: IpAddr) -> Result<(), Refused> {
        let named = host.is_some_and(|h| self.host_listed(h));
        let allowed = match &self.entries {
            None => !link_local(ip),
            Some(_) => named || self.ip_listed(ip),
        };
        if allowed {
            Ok(())
        } else {
            Err(Refused(match host {
                Some(h) => format!("{h} ({ip})"),
                None => ip.to_string(),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_a_list_everything_but_link_local_is_allowed() {
        let any = Allowed::new(None).unwrap();
        assert!(any.check(Some("agent"), ip("10.1.2.3")).is_ok());
        assert!(any.check(None, ip("127.0.0.1")).is_ok());
        assert!(any.check(None, ip("169.254.169.254")).is_err());
        assert!(any.check(Some("metadata"), ip("169.254.169.254")).is_err());
        assert!(any.check(None, ip("fe80::1")).is_err());
        assert!(any.check(None, ip("::ffff:169.254.1.1")).is_err());
    }

    #[test]
    fn a_list_allows_only_its_hosts_and_networks() {
        let list = vec![
            "10.0.0.0/8".to_string(),
            "Agent.Example.com".to_string(),
            "169.254.169.254".to_string(),
        ];
        let allowed = Allowed::new(Some(&list)).unwrap();
        assert!(allowed.check(None, ip("10.9.9.9")).is_ok());
        assert!(allowed
            .check(Some("agent.example.com"), ip("192.0.2.1"))
            .is_ok());
        assert!(allowed
            .check(Some("other.example.com"), ip("192.0.2.1"))
            .is_err());
        assert!(
            allowed.check(None, ip("169.254.169.254")).is_ok(),
            "listed explicitly"
        );
        assert!(allowed.check(None, ip("169.254.1.1")).is_err());
    }

    #[test]
    fn entries_must_be_hosts_ips_or_cidrs() {
        assert!(Allowed::entry("10.0.0.0/8").is_ok());
        assert!(Allowed::entry("::1").is_ok());
        assert!(Allowed::entry("agent-1.internal").is_ok());
        assert!(Allowed::entry("http://x").is_err());
        assert!(Allowed::entry("a b").is_err());
        assert!(Allowed::entry("").is_err());
    }
}
