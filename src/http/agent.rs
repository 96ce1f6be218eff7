//! The one place a ureq agent is made: [`Client::new`] from an [`AgentOptions`].
//!
//! Settings every client shares, because every caller classifies answers itself and must
//! agree with the others and with the `go` command run beside kiln:
//! - statuses are never errors inside ureq (`http_status_as_error(false)`): a 404 from a
//!   GOPROXY falls through to the next proxy, a 401 from a registry starts authentication;
//! - the `User-Agent` is [`USER_AGENT`];
//! - TLS trusts the roots of [`super::tls`], unless verification is turned off;
//! - a loopback server is reached directly, never through `HTTPS_PROXY`/`HTTP_PROXY`, as Go's
//!   net/http does (a CI job's proxy cannot reach the test's own 127.0.0.1); any other host
//!   goes through the proxy the environment names, ureq's default.
//!
//! What differs per caller is data: the named constructors hold each one's timeouts and
//! redirect rules, with the reason for each number beside it.

use std::time::Duration;

/// Sent with every request.
pub const USER_AGENT: &str = concat!("kiln/", env!("CARGO_PKG_VERSION"));

/// Which credentials follow a redirect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirectCredentials {
    /// None: the `Authorization` header is dropped on every redirect.
    Never,
    /// Kept while the redirect stays on the same host, as Go's net/http does.
    SameHost,
}

/// How one client connects: timeouts, redirects, TLS and proxy rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentOptions {
    /// Time to open a connection (including the TLS handshake).
    pub connect_timeout: Duration,
    /// The longest wait for the next bytes of an answer.
    pub read_timeout: Duration,
    /// The longest a whole request may take, or no limit.
    pub overall_timeout: Option<Duration>,
    /// Redirects followed before giving up.
    pub max_redirects: u32,
    pub redirect_credentials: RedirectCredentials,
    /// Verify the server's certificate; off only for a registry reached with `--insecure`.
    pub verify_tls: bool,
    /// The server is on this machine ([`is_loopback`]): connect directly, never through a
    /// proxy from the environment.
    pub loopback: bool,
}

impl AgentOptions {
    /// A GOPROXY: 30 s to connect, 2 min without data, 1 h in all (enough for a 500 MiB module
    /// zip on a slow link). Credentials from the URL's userinfo follow a redirect within the
    /// proxy's host, as Go's net/http does; ten redirects, ureq's (and near Go's) default.
    pub const fn goproxy() -> Self {
        AgentOptions {
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(120),
            overall_timeout: Some(Duration::from_secs(60 * 60)),
            max_redirects: 10,
            redirect_credentials: RedirectCredentials::SameHost,
            verify_tls: true,
            loopback: false,
        }
    }

    /// An OCI registry: 30 s to connect, 5 min without data, no overall limit (a layer blob
    /// may be gigabytes on any link). Blob downloads redirect to object storage: five
    /// redirects, and credentials stay with the registry, so a redirect never carries them.
    pub const fn registry() -> Self {
        AgentOptions {
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(300),
            overall_timeout: None,
            max_redirects: 5,
            redirect_credentials: RedirectCredentials::Never,
            verify_tls: true,
            loopback: false,
        }
    }

    /// The static base's package index and wheels: 30 s to connect, 2 min without data,
    /// 10 min in all (a wheel kiln accepts is at most 64 MiB), five redirects, no
    /// credentials on a redirect.
    pub const fn static_base() -> Self {
        AgentOptions {
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(120),
            overall_timeout: Some(Duration::from_secs(10 * 60)),
            max_redirects: 5,
            redirect_credentials: RedirectCredentials::Never,
            verify_tls: true,
            loopback: false,
        }
    }

    /// These options for a server at `host` (`name` or `name:port`, no userinfo): loopback
    /// when [`is_loopback`] says so.
    pub fn for_host(self, host: &str) -> Self {
        AgentOptions {
            loopback: is_loopback(host),
            ..self
        }
    }

    /// These options with certificate verification on or off.
    pub fn verify_tls(self, verify_tls: bool) -> Self {
        AgentOptions { verify_tls, ..self }
    }
}

/// An HTTP(S) client: a ureq agent (its connection pool) made from [`AgentOptions`]. Cheap
/// to clone and `Send + Sync`; clones share the pool.
#[derive(Clone, Debug)]
pub struct Client {
    agent: ureq::Agent,
}

impl Client {
    pub fn new(options: &AgentOptions) -> Self {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(USER_AGENT)
            .timeout_connect(Some(options.connect_timeout))
            .timeout_per_read(Some(options.read_timeout))
            .timeout_global(options.overall_timeout)
            .max_redirects(options.max_redirects)
            .redirect_auth_headers(match options.redirect_credentials {
                RedirectCredentials::Never => ureq::config::RedirectAuthHeaders::Never,
                RedirectCredentials::SameHost => ureq::config::RedirectAuthHeaders::SameHost,
            });
        config = if options.verify_tls {
            config.tls_config(super::tls::tls_config())
        } else {
            config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .disable_verification(true)
                    .build(),
            )
        };
        if options.loopback {
            config = config.proxy(None);
        }
        Client {
            agent: config.build().new_agent(),
        }
    }

    /// A GET request to `url`, to add headers to and `call`.
    pub fn get(&self, url: &str) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        self.agent.get(url)
    }

    /// A POST request to `url`, to add headers to and `send`.
    pub fn post(&self, url: &str) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        self.agent.post(url)
    }

    /// Send a request built with `ureq::http::Request` (any method, any body).
    pub fn run(
        &self,
        request: ureq::http::Request<impl ureq::AsSendBody>,
    ) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        self.agent.run(request)
    }
}

/// Whether `host` (with an optional port) is `localhost` or a loopback address.
pub fn is_loopback(host: &str) -> bool {
    let name = if let Some(bracketed) = host.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Client>();
    }

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "LOCALHOST",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.0.0.1:8080",
            "[::1]:5000",
            "[::1]:80",
            "127.3.2.1",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "ghcr.io",
            "docker.io",
            "proxy.golang.org",
            "10.0.0.1:5000",
            "localhost.example",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn options_pin_each_callers_settings() {
        assert_eq!(
            AgentOptions::goproxy().for_host("127.0.0.1:3000"),
            AgentOptions {
                loopback: true,
                ..AgentOptions::goproxy()
            }
        );
        assert!(
            !AgentOptions::goproxy()
                .for_host("proxy.golang.org")
                .loopback
        );
        let insecure = AgentOptions::registry().verify_tls(false);
        assert!(!insecure.verify_tls);
        assert_eq!(insecure.max_redirects, 5);
        assert_eq!(
            AgentOptions::static_base().overall_timeout,
            Some(Duration::from_secs(600))
        );
    }
}
