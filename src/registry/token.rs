//! Registry authentication: the `WWW-Authenticate` challenge a registry answers with, and the
//! bearer tokens its token service hands out.
//!
//! Pinned behaviour, each as the distribution spec's token protocol or Docker does it:
//! - **Challenge.** `GET /v2/` tells: 200 is anonymous, 401 carries `WWW-Authenticate` (RFC
//!   7235 auth-params, quoted or not). `Basic` sends the credentials on every request;
//!   `Bearer realm=…,service=…` gets a token from the realm for the request's scopes.
//! - **Scopes.** `repository:NAME:pull` to read, `repository:NAME:pull,push` to write, plus
//!   `repository:FROM:pull` for a cross-repository mount.
//! - **Token request.** With the credentials as Basic auth on `GET realm?service=&scope=`, or
//!   for an identity token the OAuth2 `refresh_token` grant (a form `POST` with
//!   `client_id=kiln`). The answer's `token`, else its `access_token`, is the token.
//! - **Renewal.** A 401 on a request renews the token once, for the scope the registry asks
//!   for (added to the request's own). Tokens are cached per scope for the run.
//! - **Retries.** The token service takes a 429 as final ([`RetryPolicy::registry_token`]).
//! - **Secrets** stay in headers: a credential or token goes into no error message (see
//!   [`Secret`]).
//!
//! This module returns the registry client's [`RegistryError`]: it is one part of that client,
//! and a refusal of the token service reads as the registry's refusal.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use super::auth::{Credentials, Secret};
use super::error::{RegistryError, error_detail};
use crate::http::{self, Client, RetryPolicy, without_queries};

/// A `WWW-Authenticate` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        /// The scope the registry asked for, on a 401 to a request.
        scope: Option<String>,
    },
}

/// Parse a `WWW-Authenticate` header (RFC 7235 auth-params, quoted or not).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params: HashMap<String, String> = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next().is_none() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    other => value.push(other),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        params.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(Challenge::Bearer {
            realm: params.remove("realm")?,
            service: params.remove("service"),
            scope: params.remove("scope"),
        });
    }
    None
}

/// The access a request needs, as token scopes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Scope(Vec<String>);

impl Scope {
    pub fn pull(repository: &str) -> Self {
        Scope(vec![format!("repository:{repository}:pull")])
    }

    pub fn push(repository: &str) -> Self {
        Scope(vec![format!("repository:{repository}:pull,push")])
    }

    /// Add pull access to `repository`, for a cross-repository mount from it.
    pub(super) fn with_pull_from(mut self, repository: &str) -> Self {
        self.0.push(format!("repository:{repository}:pull"));
        self
    }
}

/// What `GET /v2/` (or a later 401) said about how the registry authenticates.
enum AuthState {
    Anonymous,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        tokens: HashMap<Scope, Secret>,
    },
}

/// How one registry authenticates, learnt from its challenges, the credentials kiln found for
/// it, and the tokens its token service gave this run.
pub(super) struct Authenticator {
    /// The registry as written in references, for error messages.
    host: String,
    credentials: Option<Credentials>,
    state: Mutex<AuthState>,
    /// The first wait of [`RetryPolicy::registry_token`] (the client's, which tests shorten).
    first_retry_delay: Duration,
}

impl Authenticator {
    pub(super) fn new(
        host: &str,
        credentials: Option<Credentials>,
        first_retry_delay: Duration,
    ) -> Self {
        Authenticator {
            host: host.to_owned(),
            credentials,
            state: Mutex::new(AuthState::Anonymous),
            first_retry_delay,
        }
    }

    /// Whether kiln found credentials for this registry (a refusal's hint depends on it).
    pub(super) fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    /// Adopt the challenge `GET /v2/` answered its 401 with.
    pub(super) fn challenged(&mut self, challenge: Challenge) {
        *self
            .state
            .get_mut()
            .unwrap_or_else(|poison| poison.into_inner()) = match challenge {
            Challenge::Basic => AuthState::Basic,
            Challenge::Bearer { realm, service, .. } => AuthState::Bearer {
                realm,
                service,
                tokens: HashMap::new(),
            },
        };
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, AuthState> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The `Authorization` header for `scope`, fetching a token when needed.
    pub(super) fn authorization(
        &self,
        client: &Client,
        scope: &Scope,
    ) -> Result<Option<String>, RegistryError> {
        let (realm, service) = {
            let state = self.lock_state();
            match &*state {
                AuthState::Anonymous => return Ok(None),
                AuthState::Basic => {
                    return Ok(self
                        .credentials
                        .as_ref()
                        .and_then(Credentials::basic_header));
                }
                AuthState::Bearer {
                    realm,
                    service,
                    tokens,
                } => {
                    if let Some(token) = tokens.get(scope) {
                        return Ok(Some(format!("Bearer {}", token.expose())));
                    }
                    (realm.clone(), service.clone())
                }
            }
        };
        let token = self.fetch_token(client, &realm, service.as_deref(), scope)?;
        let header = format!("Bearer {}", token.expose());
        if let AuthState::Bearer { tokens, .. } = &mut *self.lock_state() {
            tokens.insert(scope.clone(), token);
        }
        Ok(Some(header))
    }

    fn fetch_token(
        &self,
        client: &Client,
        realm: &str,
        service: Option<&str>,
        scope: &Scope,
    ) -> Result<Secret, RegistryError> {
        let operation = format!("a token for {}", scope.0.join(" "));
        let retry = RetryPolicy::registry_token().with_first_delay(self.first_retry_delay);
        retry.run(|attempt| {
            match self.token_attempt(client, &retry, realm, service, scope, &operation) {
                Ok(Ok(token)) => http::Attempt::Done(token),
                Ok(Err(message)) => http::Attempt::Retry(RegistryError::GaveUp {
                    registry: self.host.clone(),
                    operation: operation.clone(),
                    attempts: attempt,
                    message,
                }),
                Err(error) => http::Attempt::Fail(error),
            }
        })
    }

    /// One request to the token service: the token, a message when another attempt may
    /// get one, or a final error.
    fn token_attempt(
        &self,
        client: &Client,
        retry: &RetryPolicy,
        realm: &str,
        service: Option<&str>,
        scope: &Scope,
        operation: &str,
    ) -> Result<Result<Secret, String>, RegistryError> {
        let result = match &self.credentials {
            Some(Credentials::IdentityToken(refresh)) => {
                let mut form = vec![
                    ("grant_type", "refresh_token".to_owned()),
                    ("refresh_token", refresh.expose().to_owned()),
                    ("client_id", "kiln".to_owned()),
                    ("scope", scope.0.join(" ")),
                ];
                if let Some(service) = service {
                    form.push(("service", service.to_owned()));
                }
                let body = form
                    .iter()
                    .map(|(key, value)| format!("{key}={}", form_encode(value)))
                    .collect::<Vec<_>>()
                    .join("&");
                client
                    .post(realm)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .send(body.as_bytes())
            }
            credentials => {
                let mut url = realm.to_owned();
                let mut separator = if realm.contains('?') { '&' } else { '?' };
                if let Some(service) = service {
                    url.push_str(&format!("{separator}service={}", form_encode(service)));
                    separator = '&';
                }
                for item in &scope.0 {
                    url.push_str(&format!("{separator}scope={}", form_encode(item)));
                    separator = '&';
                }
                let mut request = client.get(&url);
                if let Some(basic) = credentials.as_ref().and_then(Credentials::basic_header) {
                    request = request.header("Authorization", basic);
                }
                request.call()
            }
        };
        let message = match result {
            Ok(response) if response.status().is_success() => {
                #[derive(serde::Deserialize)]
                struct TokenAnswer {
                    #[serde(default)]
                    token: Option<String>,
                    #[serde(default)]
                    access_token: Option<String>,
                }
                let mut bytes = Vec::new();
                response
                    .into_body()
                    .into_reader()
                    .take(1 << 20)
                    .read_to_end(&mut bytes)
                    .map_err(|error| RegistryError::Protocol {
                        registry: self.host.clone(),
                        message: format!("reading {operation}: {error}"),
                    })?;
                let answer: TokenAnswer =
                    serde_json::from_slice(&bytes).map_err(|error| RegistryError::Protocol {
                        registry: self.host.clone(),
                        message: format!("the token service's answer is not JSON: {error}"),
                    })?;
                return answer
                    .token
                    .or(answer.access_token)
                    .filter(|token| !token.is_empty())
                    .map(|token| Ok(Secret::new(token)))
                    .ok_or_else(|| RegistryError::Protocol {
                        registry: self.host.clone(),
                        message: "the token service answered without a token".to_owned(),
                    });
            }
            Ok(response) if matches!(response.status().as_u16(), 401 | 403) => {
                return Err(RegistryError::Unauthorized {
                    registry: self.host.clone(),
                    operation: operation.to_owned(),
                    had_credentials: self.credentials.is_some(),
                });
            }
            Ok(response) if retry.retries_status(response.status()) => {
                http::status_text(response.status())
            }
            Ok(response) => {
                let status = http::status_text(response.status());
                return Err(RegistryError::Status {
                    registry: self.host.clone(),
                    operation: operation.to_owned(),
                    status,
                    detail: error_detail(response),
                });
            }
            Err(error) if retry.retries_error(&error) => without_queries(&error.to_string()),
            Err(error) => {
                return Err(RegistryError::Unreachable {
                    registry: self.host.clone(),
                    message: without_queries(&error.to_string()),
                });
            }
        };
        Ok(Err(message))
    }

    /// Forget the token for `scope` and adopt what a 401's challenge (its `WWW-Authenticate`
    /// header) asks for: the scope to ask a new token for, or `None` when a new try cannot help.
    pub(super) fn renew(&self, scope: &Scope, www_authenticate: Option<&str>) -> Option<Scope> {
        let challenge = www_authenticate.and_then(parse_challenge);
        let mut state = self.lock_state();
        match (&mut *state, challenge) {
            (AuthState::Bearer { tokens, .. }, Some(Challenge::Bearer { scope: asked, .. })) => {
                tokens.remove(scope);
                Some(match asked {
                    Some(asked) if !scope.0.contains(&asked) => {
                        let mut wider = scope.clone();
                        wider.0.push(asked);
                        wider
                    }
                    _ => scope.clone(),
                })
            }
            (state @ AuthState::Anonymous, Some(Challenge::Bearer { realm, service, .. })) => {
                *state = AuthState::Bearer {
                    realm,
                    service,
                    tokens: HashMap::new(),
                };
                Some(scope.clone())
            }
            (state @ AuthState::Anonymous, Some(Challenge::Basic)) => {
                *state = AuthState::Basic;
                Some(scope.clone())
            }
            _ => None,
        }
    }
}

/// `application/x-www-form-urlencoded` / query-string encoding.
fn form_encode(value: &str) -> String {
    let mut encoded = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:samalba/my-app:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge("bearer realm=https://r.example/token"),
            Some(Challenge::Bearer {
                realm: "https://r.example/token".into(),
                service: None,
                scope: None
            })
        );
        assert_eq!(parse_challenge("Bearer service=x"), None);
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn form_encoding() {
        assert_eq!(
            form_encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
