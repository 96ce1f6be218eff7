//! What a registry refused, and why: [`RegistryError`], the one error enum of the distribution
//! client, which [`client`](super::client), [`token`](super::token) and
//! [`upload`](super::upload) all return (they are one client split by concern, and one enum
//! keeps each message in one place). `error_detail` reads the distribution spec's error body
//! (`{"errors":[{"code","message"}]}`) into the detail a refusal shows.
//!
//! No message carries a credential or token: URLs lose their queries
//! ([`crate::http::without_queries`]) and the detail is the registry's error code and message,
//! never a request header.

use std::io::{self, Read};

use super::auth::AuthError;

use crate::diagnostic::Hint;

/// What went wrong talking to a registry; every message names the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot reach the registry {registry}: {message}")]
    Unreachable { registry: String, message: String },
    #[error("cannot reach the registry {registry} over HTTPS: {message}")]
    NoTls { registry: String, message: String },
    #[error("{registry} does not answer as an OCI registry: GET /v2/ gave {status}")]
    NotARegistry { registry: String, status: String },
    #[error("{registry} refused {operation}: authentication required, and {}", if *.had_credentials { "the credentials kiln found were not accepted" } else { "kiln found no credentials for it" })]
    Unauthorized {
        registry: String,
        operation: String,
        had_credentials: bool,
    },
    #[error("{registry} refused {operation}: {status}{detail}")]
    Status {
        registry: String,
        operation: String,
        status: String,
        detail: String,
    },
    #[error("{registry}: {operation} failed after {attempts} attempts: {message}")]
    GaveUp {
        registry: String,
        operation: String,
        attempts: u32,
        message: String,
    },
    #[error("{registry}: {what} is {got}, expected {expected}")]
    DigestMismatch {
        registry: String,
        what: String,
        expected: String,
        got: String,
    },
    #[error("{registry}: {message}")]
    Protocol { registry: String, message: String },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("cannot read {what}")]
    Source {
        what: String,
        #[source]
        source: io::Error,
    },
}

/// The hint of [`RegistryError::NoTls`]. Plain HTTP is the caller's choice
/// ([`ClientOptions::insecure`](crate::registry::client::ClientOptions::insecure)); a command
/// with a flag for it names the flag instead (the library does not name kiln's flags).
pub const NO_TLS_HINT: &str = "if the registry has no TLS, allow kiln plain HTTP to it";

impl Hint for RegistryError {
    fn hint(&self) -> Option<String> {
        match self {
            RegistryError::Auth(inner) => inner.hint(),
            RegistryError::NoTls { .. } => Some(NO_TLS_HINT.to_owned()),
            RegistryError::Unauthorized { registry, .. } => Some(format!(
                "log in with `docker login {registry}` or `podman login {registry}` (kiln reads ~/.docker/config.json, podman's auth.json and REGISTRY_AUTH_FILE)"
            )),
            _ => None,
        }
    }
}

/// `: CODE: message` from a distribution-spec error body (`{"errors":[{"code","message"}]}`),
/// else the start of a text body.
pub(super) fn error_detail(response: ureq::http::Response<ureq::Body>) -> String {
    let mut bytes = Vec::new();
    let _ = response
        .into_body()
        .into_reader()
        .take(8192)
        .read_to_end(&mut bytes);
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(parsed) = serde_json::from_slice::<Errors>(&bytes) {
        let joined: Vec<String> = parsed
            .errors
            .iter()
            .map(|entry| {
                format!("{} {}", entry.code, entry.message)
                    .trim()
                    .to_owned()
            })
            .collect();
        if !joined.is_empty() {
            return format!(" ({})", joined.join("; "));
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() || line.starts_with('<') {
        String::new()
    } else {
        format!(" ({})", line.chars().take(200).collect::<String>())
    }
}
