//! Which certificate authorities kiln's HTTPS clients trust: the system's, as Go does.
//!
//! Every client kiln makes ([`super::Client`], for the GOPROXY client, the registry client
//! and the static base's downloads) takes its TLS settings from [`tls_config`], so they agree
//! with each other and with the `go` command run beside them:
//!
//! - The roots are read once per process by `rustls-native-certs`: the PEM file named by
//!   `SSL_CERT_FILE` and the folders listed (`:`-separated) in `SSL_CERT_DIR` when either is
//!   set, else the places OpenSSL would look (`/etc/ssl/certs/ca-certificates.crt` and
//!   `/etc/ssl/certs` on Debian). Go's crypto/x509 reads the same variables; one difference:
//!   when only `SSL_CERT_DIR` is set, Go still reads its default bundle file and this does not.
//! - When no certificate loads (no bundle on the host, a variable naming a missing file), the
//!   roots are webpki-roots, Mozilla's list compiled into kiln, so a bare container still
//!   reaches public servers.
//!
//! Why not webpki-roots always: a network whose TLS is intercepted by a proxy (most corporate
//! networks, and this project's CI) adds its CA to the system store, which Go trusts; a kiln
//! trusting only Mozilla's list would fail where `go mod download` works.

use std::sync::{Arc, OnceLock};

use ureq::tls::{Certificate, RootCerts, TlsConfig};

/// Where the trusted roots came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootSource {
    /// This many certificates from the system (or `SSL_CERT_FILE`/`SSL_CERT_DIR`).
    System(usize),
    /// None loaded: webpki-roots' compiled-in copy of Mozilla's list.
    WebPki,
}

struct Roots {
    certs: RootCerts,
    source: RootSource,
}

fn roots() -> &'static Roots {
    static ROOTS: OnceLock<Roots> = OnceLock::new();
    ROOTS.get_or_init(|| {
        // Errors name files that could not be read; whatever did load is used, as OpenSSL
        // and Go skip unreadable entries of a certificate folder too.
        let loaded = rustls_native_certs::load_native_certs();
        let certs: Vec<Certificate<'static>> = loaded
            .certs
            .iter()
            .map(|der| Certificate::from_der(der.as_ref()).to_owned())
            .collect();
        if certs.is_empty() {
            Roots {
                certs: RootCerts::WebPki,
                source: RootSource::WebPki,
            }
        } else {
            Roots {
                source: RootSource::System(certs.len()),
                certs: RootCerts::Specific(Arc::new(certs)),
            }
        }
    })
}

/// Read the roots on a thread of their own, so that a command which will make a client soon
/// (a build asking a shared cache, once its project is planned) finds them ready: parsing the
/// system bundle takes 6–8 ms here (140-odd certificates through rustls' constant-time base64
/// decoder), which each cache lookup's build otherwise waited for. A client made before the
/// thread is done waits for its result; nothing is read twice.
pub fn read_roots_in_background() {
    let _ = std::thread::Builder::new()
        .name("tls-roots".to_owned())
        .spawn(|| {
            roots();
        });
}

/// TLS settings for a ureq agent: verification on, with the roots described in the module doc.
pub fn tls_config() -> TlsConfig {
    TlsConfig::builder()
        .root_certs(roots().certs.clone())
        .build()
}

/// Where the roots [`tls_config`] trusts came from, for messages about failed connections.
pub fn root_source() -> RootSource {
    roots().source.clone()
}

/// One line for a `hint:` after a TLS failure: what kiln trusted and how to change it.
pub fn roots_hint() -> String {
    match root_source() {
        RootSource::System(count) => format!(
            "kiln trusts the {count} system root certificates (SSL_CERT_FILE / SSL_CERT_DIR choose others)"
        ),
        RootSource::WebPki => "no system root certificates loaded, so kiln trusts only Mozilla's list built into it; set SSL_CERT_FILE to a PEM bundle to trust others".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_verifies_and_has_roots() {
        let config = tls_config();
        assert!(!config.disable_verification());
        match (root_source(), config.root_certs()) {
            (RootSource::System(count), RootCerts::Specific(certs)) => {
                assert!(count > 0);
                assert_eq!(certs.len(), count);
            }
            (RootSource::WebPki, RootCerts::WebPki) => {}
            (source, _) => panic!("root source {source:?} does not match the config"),
        }
        assert!(roots_hint().contains("kiln trusts"));
    }
}
