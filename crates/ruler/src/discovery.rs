//! Alertmanager addresses from `ruler.alertmanager_url`: a comma list of
//! base URLs whose host may ask for DNS discovery, as in Loki:
//!
//! - `http://alertmanager:9093` — that one Alertmanager;
//! - `http://dns+alertmanager.svc:9093` — every A/AAAA address of the name;
//! - `http://dnssrv+_http._tcp.alertmanager.svc/path` — every target of the
//!   SRV record, each resolved to its addresses (`dnssrvnoa+`: the targets'
//!   names as they are);
//! - with `enable_alertmanager_discovery: true`, a host without prefix is
//!   an SRV name.
//!
//! Discovered lists are refreshed every `alertmanager_refresh_interval`.

use std::net::IpAddr;

use hickory_resolver::TokioResolver;

/// How a URL's host is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Used as written.
    Static,
    /// A/AAAA records of the host (`dns+`).
    Address,
    /// SRV records, targets resolved to addresses (`dnssrv+`).
    Srv,
    /// SRV records, targets used by name (`dnssrvnoa+`).
    SrvNoA,
}

/// One entry of `alertmanager_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertmanagerSpec {
    scheme: String,
    userinfo: String,
    lookup: Lookup,
    host: String,
    port: Option<u16>,
    path: String,
}

/// Splits the comma list, skipping empty entries.
pub fn split_urls(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|url| !url.is_empty())
}

impl AlertmanagerSpec {
    /// Parses one URL; `srv_discovery` is `enable_alertmanager_discovery`.
    pub fn parse(url: &str, srv_discovery: bool) -> Result<AlertmanagerSpec, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("{url:?}: not a URL (expected http://host:port)"))?;
        if scheme != "http" && scheme != "https" {
            return Err(format!("{url:?}: scheme must be http or https"));
        }
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], rest[slash..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (format!("{userinfo}@"), host_port),
            None => (String::new(), authority),
        };
        let (lookup, host_port) = if let Some(name) = host_port.strip_prefix("dnssrvnoa+") {
            (Lookup::SrvNoA, name)
        } else if let Some(name) = host_port.strip_prefix("dnssrv+") {
            (Lookup::Srv, name)
        } else if let Some(name) = host_port.strip_prefix("dns+") {
            (Lookup::Address, name)
        } else if srv_discovery {
            (Lookup::Srv, host_port)
        } else {
            (Lookup::Static, host_port)
        };
        let (host, port) =
            split_host_port(host_port).ok_or_else(|| format!("{url:?}: bad host or port"))?;
        if host.is_empty() {
            return Err(format!("{url:?}: missing host"));
        }
        if lookup == Lookup::Address && port.is_none() {
            return Err(format!("{url:?}: dns+ needs a port"));
        }
        Ok(AlertmanagerSpec {
            scheme: scheme.to_string(),
            userinfo,
            lookup,
            host,
            port,
            path: path.to_string(),
        })
    }

    /// Whether the list behind this entry can change.
    pub fn is_dynamic(&self) -> bool {
        self.lookup != Lookup::Static
    }

    fn url_for(&self, host: &str, port: Option<u16>) -> String {
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        match port {
            Some(port) => format!(
                "{}://{}{host}:{port}{}",
                self.scheme, self.userinfo, self.path
            ),
            None => format!("{}://{}{host}{}", self.scheme, self.userinfo, self.path),
        }
    }

    /// Returns the base URLs this entry stands for now; SRV lookups need
    /// `resolver`.
    pub async fn resolve(&self, resolver: Option<&TokioResolver>) -> Result<Vec<String>, String> {
        let mut urls = match self.lookup {
            Lookup::Static => vec![self.url_for(&self.host, self.port)],
            Lookup::Address => {
                let port = self.port.unwrap_or(80);
                addresses(&self.host, port)
                    .await?
                    .into_iter()
                    .map(|ip| self.url_for(&ip.to_string(), Some(port)))
                    .collect()
            }
            Lookup::Srv | Lookup::SrvNoA => {
                let resolver = resolver.ok_or_else(|| {
                    format!("no DNS resolver to look up SRV records of {}", self.host)
                })?;
                let records = resolver
                    .srv_lookup(self.host.as_str())
                    .await
                    .map_err(|err| format!("SRV lookup of {}: {err}", self.host))?;
                let mut urls = Vec::new();
                for record in records.iter() {
                    let target = record.target().to_utf8();
                    let target = target.trim_end_matches('.');
                    if self.lookup == Lookup::SrvNoA {
                        urls.push(self.url_for(target, Some(record.port())));
                        continue;
                    }
                    for ip in addresses(target, record.port()).await? {
                        urls.push(self.url_for(&ip.to_string(), Some(record.port())));
                    }
                }
                urls
            }
        };
        urls.sort();
        urls.dedup();
        Ok(urls)
    }
}

async fn addresses(host: &str, port: u16) -> Result<Vec<IpAddr>, String> {
    let mut ips: Vec<IpAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|err| format!("DNS lookup of {host}: {err}"))?
        .map(|addr| addr.ip())
        .collect();
    ips.sort();
    ips.dedup();
    Ok(ips)
}

fn split_host_port(text: &str) -> Option<(String, Option<u16>)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match text.rsplit_once(':') {
        Some((host, port)) => Some((host.to_string(), Some(port.parse().ok()?))),
        None => Some((text.to_string(), None)),
    }
}

/// A resolver reading the system's configuration (`/etc/resolv.conf`).
pub fn system_resolver() -> Result<TokioResolver, String> {
    TokioResolver::builder_tokio()
        .map(|builder| builder.build())
        .map_err(|err| format!("reading the system DNS configuration: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prefixes() {
        let spec = AlertmanagerSpec::parse("http://am:9093/alertmanager/", false).unwrap();
        assert_eq!(spec.lookup, Lookup::Static);
        assert_eq!(
            spec.url_for(&spec.host, spec.port),
            "http://am:9093/alertmanager"
        );
        let spec = AlertmanagerSpec::parse("http://dns+am.svc:9093", false).unwrap();
        assert_eq!(spec.lookup, Lookup::Address);
        assert_eq!(spec.host, "am.svc");
        let spec =
            AlertmanagerSpec::parse("https://u:p@dnssrv+_http._tcp.am.svc/x", false).unwrap();
        assert_eq!(spec.lookup, Lookup::Srv);
        assert_eq!(
            spec.url_for("10.0.0.1", Some(9093)),
            "https://u:p@10.0.0.1:9093/x"
        );
        assert_eq!(
            AlertmanagerSpec::parse("http://_http._tcp.am", true)
                .unwrap()
                .lookup,
            Lookup::Srv
        );
        assert!(AlertmanagerSpec::parse("am:9093", false).is_err());
        assert!(AlertmanagerSpec::parse("http://dns+am", false)
            .unwrap_err()
            .contains("needs a port"));
        assert!(AlertmanagerSpec::parse("ftp://am", false).is_err());
        assert_eq!(split_urls(" http://a , ,http://b").count(), 2);
    }

    #[tokio::test]
    async fn resolves_addresses() {
        let spec = AlertmanagerSpec::parse("http://dns+127.0.0.1:9093", false).unwrap();
        assert_eq!(spec.resolve(None).await.unwrap(), ["http://127.0.0.1:9093"]);
        let spec = AlertmanagerSpec::parse("http://dns+localhost:9093", false).unwrap();
        let urls = spec.resolve(None).await.unwrap();
        assert!(
            urls.iter().any(|url| url == "http://127.0.0.1:9093"),
            "{urls:?}"
        );
    }
}
