//! Where a tool connects: a target URL (`mqtt://`, `mqtts://`, `ws://`,
//! `wss://`) parsed once into a [`Target`], with the TLS trust options that
//! go with it. Every tool takes `--target` in this one syntax, so the
//! parsing and its error messages live here and nowhere else.

use std::fmt;
use std::path::PathBuf;

/// Where the broker under test listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
    /// The WebSocket path (`/mqtt`), for `ws` and `wss`.
    pub path: String,
    /// How to trust the server, for `mqtts` and `wss`.
    pub tls: TlsOptions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Mqtt,
    Mqtts,
    Ws,
    Wss,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Mqtt => "mqtt",
            Scheme::Mqtts => "mqtts",
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
        }
    }
}

impl Target {
    /// `mqtt://host:port`, `mqtts://…`, `ws://host:port/mqtt`, `wss://…`;
    /// a bare `host:port` is `mqtt://`.
    pub fn parse(url: &str) -> Result<Target, String> {
        let (scheme, rest) = match url.split_once("://") {
            Some((s, rest)) => {
                let scheme = match s.to_ascii_lowercase().as_str() {
                    "mqtt" | "tcp" => Scheme::Mqtt,
                    "mqtts" | "ssl" | "tls" => Scheme::Mqtts,
                    "ws" => Scheme::Ws,
                    "wss" => Scheme::Wss,
                    other => {
                        return Err(format!(
                            "`{other}://` is not a target scheme; use mqtt://, mqtts://, ws:// or wss://"
                        ))
                    }
                };
                (scheme, rest)
            }
            None => (Scheme::Mqtt, url),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i..).unwrap_or("/")),
            None => (rest, ""),
        };
        let default_port = match scheme {
            Scheme::Mqtt => 1883,
            Scheme::Mqtts => 8883,
            Scheme::Ws => 80,
            Scheme::Wss => 443,
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("`{url}`: an IPv6 address needs a closing `]`"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => parse_port(p, url)?,
                None => default_port,
            };
            (h.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), parse_port(p, url)?),
                None => (authority.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(format!(
                "`{url}` names no host; write e.g. mqtt://localhost:1883"
            ));
        }
        Ok(Target {
            scheme,
            host,
            port,
            path: if path.is_empty() && matches!(scheme, Scheme::Ws | Scheme::Wss) {
                "/mqtt".into()
            } else {
                path.to_string()
            },
            tls: TlsOptions::default(),
        })
    }
}

fn parse_port(p: &str, url: &str) -> Result<u16, String> {
    p.parse()
        .map_err(|_| format!("`{url}`: `{p}` is not a port number (1-65535)"))
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(
                f,
                "{}://[{}]:{}{}",
                self.scheme.as_str(),
                self.host,
                self.port,
                self.path
            )
        } else {
            write!(
                f,
                "{}://{}:{}{}",
                self.scheme.as_str(),
                self.host,
                self.port,
                self.path
            )
        }
    }
}

/// How to trust a TLS server (`mqtts://`, `wss://`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM file of the certificate authorities to trust.
    pub ca: Option<PathBuf>,
    /// Accept any server certificate (testing only: no authentication).
    pub insecure: bool,
    /// A client certificate chain and its private key (PEM), for brokers
    /// that authenticate clients by certificate.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = Target::parse("mqtt://localhost:1884").unwrap();
        assert_eq!(
            (t.scheme, t.host.as_str(), t.port),
            (Scheme::Mqtt, "localhost", 1884)
        );
        let t = Target::parse("ws://example.com/mqtt").unwrap();
        assert_eq!(
            (t.scheme, t.port, t.path.as_str()),
            (Scheme::Ws, 80, "/mqtt")
        );
        let t = Target::parse("127.0.0.1:1883").unwrap();
        assert_eq!(t.to_string(), "mqtt://127.0.0.1:1883");
        let t = Target::parse("mqtts://[::1]:8883").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 8883));
        assert!(Target::parse("http://x").is_err());
        assert!(Target::parse("mqtt://x:99999").is_err());
    }
}
