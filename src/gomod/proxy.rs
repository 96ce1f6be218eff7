//! The GOPROXY protocol client (go.dev/ref/mod, "GOPROXY protocol" and "Environment
//! variables"), mirroring cmd/go's `modfetch/proxy.go` so kiln finds a module where `go` would.
//!
//! A proxy is a base URL; one version of a module is three files under it,
//! `BASE/ESCAPED_MODULE/@v/ESCAPED_VERSION.{info,mod,zip}`, with the module path and version
//! case-encoded (`!` + lower case, see [`super::module`]). As cmd/go does, the path is then
//! URL-escaped, so the `!` goes over the wire as `%21`; a `file://` proxy reads the same names
//! from a folder (Go's module cache under `cache/download` is one).
//!
//! GOPROXY lists proxies separated by `,` or `|`. kiln tries them in order; after a `,` it
//! moves on only when the proxy does not have the file (HTTP 404 or 410, or a missing file),
//! after a `|` on any error. `off` ends the list with an error. `direct` ends it too: the
//! module comes from version control. Modules matching GONOPROXY (default GOPRIVATE, Go's
//! glob rules in [`Patterns`]) go `direct` at once, whatever GOPROXY says (even `off`), as in
//! cmd/go, and never reach a proxy. [`ProxyClient::route`] says which it is
//! ([`Routed::Direct`]); the caller then fetches from version control through
//! [`super::direct`] (as `kiln lock` does), or refuses ([`ProxyClient::fetch`] turns it into
//! [`ProxyError::Direct`], as fetching a Go release does). When `direct` fails after proxies
//! that did not have the module, direct's error is the one reported, as in cmd/go.
//!
//! What is left out, on purpose: GONOSUMDB is read and exposed ([`GoEnv::no_sum_db`]) but kiln
//! never asks a checksum database (GOSUMDB); every file it fetches is checked against go.sum
//! instead, direct or not. GOINSECURE and GOVCS only affect `direct` fetches, which Go makes
//! with the user's values (see [`super::direct`]).
//! `go env -w` settings (the GOENV file) are not read. Credentials, as in Go: for an HTTPS
//! proxy the headers GOAUTH (default `netrc`) gives the request's URL ([`super::goauth`]:
//! `.netrc` entries, command methods' output, `git credential fill` after a 4xx), whose
//! `Authorization` beats the URL's userinfo (`https://user:token@host/`) as in Go; else that
//! userinfo. After a 4xx answer to an HTTPS request GOAUTH runs again for the URL and the
//! request is made once more. They are never shown: every message and
//! [`ProxyClient::describe`] drop the userinfo, and a 401 or 403 says which credentials were
//! refused (the `.netrc` file and machine, the URL, the GOAUTH command, or `git credential
//! fill`) or why each GOAUTH method gave none, with a hint. The list endpoints
//! (`@v/list`, `@latest`) are not needed: kiln fetches exactly the versions go.mod names.
//!
//! HTTP: plain `http://` proxies are allowed, as in Go; HTTPS trusts the system's root
//! certificates, as Go does (see [`crate::http::tls`]). Requests time out (30 s to connect,
//! 2 min without data, 1 h in all, enough for a 500 MiB zip on a slow link), go through
//! HTTPS_PROXY/NO_PROXY except for loopback hosts (as Go's net/http), ask for no compression,
//! and are retried with exponential back-off on 5xx, 429, timeouts and connection errors —
//! never on other 4xx answers, which retrying cannot change. Those settings are
//! [`AgentOptions::goproxy`] and [`RetryPolicy::goproxy`].

use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::goauth::{AuthEnv, Credentials, Found, GoAuthError};
use super::module::{self, ModuleError, Patterns};
use crate::http::{self, AgentOptions, Attempt, Client, HttpError, RetryPolicy, redact};

/// GOPROXY when the variable is unset or empty.
pub const DEFAULT_GOPROXY: &str = "https://proxy.golang.org,direct";

/// How much of an error response's text to quote.
const ERROR_DETAIL_BYTES: u64 = 1024;

/// The Go environment kiln honours, read from the process environment with Go's defaults.
/// As in Go, an empty variable counts as unset.
#[derive(Clone, Debug)]
pub struct GoEnv {
    /// Default [`DEFAULT_GOPROXY`].
    pub goproxy: String,
    pub goprivate: String,
    /// Default GOPRIVATE.
    pub gonoproxy: String,
    /// Default GOPRIVATE.
    pub gonosumdb: String,
    pub goinsecure: String,
    /// GOAUTH and where `.netrc` is, for HTTPS proxies ([`super::goauth`]).
    pub auth: AuthEnv,
}

impl GoEnv {
    /// Read the variables from the process environment (a variable that is not UTF-8 counts
    /// as unset).
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Read the variables through `lookup`, for tests and callers that hold an environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|value| !value.is_empty());
        let goprivate = get("GOPRIVATE").unwrap_or_default();
        GoEnv {
            goproxy: get("GOPROXY").unwrap_or_else(|| DEFAULT_GOPROXY.to_owned()),
            gonoproxy: get("GONOPROXY").unwrap_or_else(|| goprivate.clone()),
            gonosumdb: get("GONOSUMDB").unwrap_or_else(|| goprivate.clone()),
            goinsecure: get("GOINSECURE").unwrap_or_default(),
            auth: AuthEnv::from_lookup(&lookup),
            goprivate,
        }
    }

    /// Modules Go fetches `direct`, skipping every proxy (GONOPROXY).
    pub fn no_proxy(&self) -> Patterns {
        Patterns::parse(&self.gonoproxy)
    }

    /// Modules Go would not check against a checksum database (GONOSUMDB). kiln checks
    /// every module against go.sum and never asks a checksum database, so this is informative.
    pub fn no_sum_db(&self) -> Patterns {
        Patterns::parse(&self.gonosumdb)
    }

    /// Modules Go may fetch `direct` without TLS (GOINSECURE). kiln's own requests go to
    /// proxies only; `direct` fetches are Go's, which reads GOINSECURE itself.
    pub fn insecure(&self) -> Patterns {
        Patterns::parse(&self.goinsecure)
    }
}

/// One of the three files a proxy serves for a module version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyFile {
    /// `@v/VERSION.info`: JSON with the version and its commit time.
    Info,
    /// `@v/VERSION.mod`: the go.mod file.
    Mod,
    /// `@v/VERSION.zip`: the module zip.
    Zip,
}

impl ProxyFile {
    pub fn extension(self) -> &'static str {
        match self {
            ProxyFile::Info => "info",
            ProxyFile::Mod => "mod",
            ProxyFile::Zip => "zip",
        }
    }
}

/// Why one module file could not be fetched. The messages do not name the module: every
/// caller wraps them in its own `cannot fetch MODULE@VERSION`, so the module is said once.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error(transparent)]
    Module(#[from] ModuleError),
    #[error("GOPROXY entry `{entry}` is not valid: {reason}")]
    InvalidGoProxy { entry: String, reason: String },
    #[error("module lookups disabled by GOPROXY=off{}", not_found_before(.tried))]
    Off {
        module: String,
        version: String,
        /// Proxies before `off` that did not have the file, redacted.
        tried: Vec<String>,
    },
    #[error(
        "{}{}",
        direct_reason(.no_proxy_pattern.as_deref()),
        not_found_before(.tried)
    )]
    Direct {
        module: String,
        version: String,
        /// The GONOPROXY (or GOPRIVATE) glob that sent the module `direct`, if one did.
        no_proxy_pattern: Option<String>,
        tried: Vec<String>,
    },
    #[error("not found: {}", .tried.join("; "))]
    NotFound {
        module: String,
        version: String,
        tried: Vec<String>,
    },
    #[error("GET {url}: {status}{}{detail}", attempts_note(*.attempts))]
    Status {
        module: String,
        version: String,
        url: String,
        status: String,
        /// ` (server response: …)`, or empty.
        detail: String,
        attempts: u32,
    },
    #[error("GET {url}: {message}{}", attempts_note(*.attempts))]
    Transport {
        module: String,
        version: String,
        url: String,
        message: String,
        attempts: u32,
    },
    #[error(transparent)]
    GoAuth(#[from] GoAuthError),
    /// A 401 or 403 from a proxy kiln sent no credentials to.
    #[error("GET {url}: {status}; kiln found no credentials for {host}: {why}")]
    NoCredentials {
        url: String,
        status: String,
        /// `HOST[:PORT]`, as a `.netrc` machine names it.
        host: String,
        why: String,
        /// Whether the proxy URL is HTTPS (`.netrc` applies only then).
        https: bool,
        /// The `.netrc` GOAUTH reads, for the hint.
        netrc_file: Option<PathBuf>,
        /// Whether GOAUTH names a command or `git DIR` method (for the hint).
        goauth_runs: bool,
    },
    /// A 401 or 403 to the credentials kiln sent.
    #[error("GET {url}: {status}: {host} refused the credentials {origin}")]
    CredentialsRefused {
        url: String,
        status: String,
        host: String,
        /// `from FILE (machine NAME)` or `in the GOPROXY URL`: never the credentials.
        origin: String,
    },
    #[error("{location} is larger than the limit of {limit} bytes")]
    TooLarge {
        module: String,
        version: String,
        location: String,
        limit: u64,
    },
    #[error("cannot read {}", .path.display())]
    Read {
        module: String,
        version: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl crate::diagnostic::Hint for ProxyError {
    fn hint(&self) -> Option<String> {
        match self {
            ProxyError::Direct {
                module,
                no_proxy_pattern,
                ..
            } => {
                let how = if no_proxy_pattern.is_some() {
                    " and leave it out of GONOPROXY/GOPRIVATE"
                } else {
                    " listed in GOPROXY before `direct`"
                };
                Some(format!(
                    "serve {module} through a module proxy{how}, or download it with `GOFLAGS=-mod=mod go mod download` and set `GOPROXY=file://$(go env GOMODCACHE)/cache/download`"
                ))
            }
            ProxyError::GoAuth(error) => crate::diagnostic::Hint::hint(error),
            ProxyError::NoCredentials {
                host, https: false, ..
            } => Some(format!(
                "use an https:// URL for {host}: kiln, like go, sends .netrc credentials only over HTTPS (or put them in the URL as http://USER:TOKEN@{host}/…)"
            )),
            ProxyError::NoCredentials {
                host,
                goauth_runs: true,
                ..
            } => Some(format!(
                "make GOAUTH's command print a credential set for https://{host}/… (`go help goauth` gives the format), or store credentials for it in the git credential helper of GOAUTH's `git DIR`; `netrc` in GOAUTH also reads .netrc"
            )),
            ProxyError::NoCredentials {
                host, netrc_file, ..
            } => Some(format!(
                "add `machine {host} login USER password TOKEN` to {}, which go reads too (GOAUTH, when set, must include `netrc`)",
                netrc_file
                    .as_ref()
                    .map_or("~/.netrc (or the file NETRC names)".to_owned(), |file| file
                        .display()
                        .to_string())
            )),
            ProxyError::CredentialsRefused { host, .. } => Some(format!(
                "check the login and password kiln sent to {host}: a token may have expired or lack access to this proxy (kiln never prints them)"
            )),
            // ModuleError has no hints.
            _ => None,
        }
    }
}

fn not_found_before(tried: &[String]) -> String {
    if tried.is_empty() {
        String::new()
    } else {
        format!(" (not found before it: {})", tried.join("; "))
    }
}

fn direct_reason(no_proxy_pattern: Option<&str>) -> String {
    match no_proxy_pattern {
        Some(pattern) => format!(
            "it matches `{pattern}` in GONOPROXY (or GOPRIVATE), which sends it `direct` to version control, and kiln fetches only through a module proxy"
        ),
        None => {
            "GOPROXY lists `direct` for it, and kiln fetches only through a module proxy".to_owned()
        }
    }
}

fn attempts_note(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    }
}

/// Where one module file came from, or must come from.
#[derive(Debug)]
pub enum Routed {
    /// A proxy served it.
    Proxied(Vec<u8>),
    /// It goes `direct` to version control.
    Direct(DirectRoute),
}

/// Why a module goes `direct`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectRoute {
    /// The GONOPROXY (or GOPRIVATE) glob that sent it `direct`, if one did (else GOPROXY's
    /// `direct` entry did).
    pub no_proxy_pattern: Option<String>,
    /// The proxies before `direct` that did not have it, redacted.
    pub tried: Vec<String>,
}

/// A client for the proxies GOPROXY lists. Cheap to share: `fetch` takes `&self` and the
/// client is `Send + Sync`, so several threads may fetch at once (connections are pooled).
pub struct ProxyClient {
    proxies: Vec<ProxySpec>,
    no_proxy: Patterns,
    /// GONOPROXY as written, for [`ProxyClient::describe`].
    no_proxy_list: String,
    /// When to ask a proxy again ([`RetryPolicy::goproxy`]; tests shorten the waits).
    retry: RetryPolicy,
    /// `.netrc` credentials for HTTPS proxies, as GOAUTH says.
    credentials: Credentials,
    /// Unit tests only: look up `.netrc` credentials for plain-HTTP proxies too, as if they
    /// were HTTPS (the in-process test server speaks plain HTTP).
    #[cfg(test)]
    credentials_over_http: bool,
}

struct ProxySpec {
    source: Endpoint,
    /// The separator after the entry: `|` moves on after any error, `,` only after "not found".
    separator: Option<char>,
}

enum Endpoint {
    Off,
    Direct,
    File {
        root: PathBuf,
        /// The entry as written (redacted), for messages.
        display: String,
    },
    Http {
        /// `scheme://host[:port][/path]` without userinfo or trailing slash.
        base: String,
        /// `Basic …` from the URL's userinfo.
        authorization: Option<String>,
        /// `host[:port]` as written in the URL, without userinfo (a `.netrc` machine name).
        authority: String,
        client: Client,
        display: String,
    },
}

impl Endpoint {
    fn display(&self) -> &str {
        match self {
            Endpoint::Off => "off",
            Endpoint::Direct => "direct",
            Endpoint::File { display, .. } | Endpoint::Http { display, .. } => display,
        }
    }
}

impl fmt::Debug for ProxyClient {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.describe())
    }
}

/// How one proxy failed to deliver a file.
enum Failure {
    /// The proxy does not have it: try the next one, whatever the separator.
    NotFound(String),
    /// Boxed: a `ProxyError` is large and this travels on every failed attempt.
    Error(Box<ProxyError>),
}

impl Failure {
    fn error(error: ProxyError) -> Self {
        Failure::Error(Box::new(error))
    }
}

/// A failure another attempt may cure.
enum Retryable {
    /// 5xx or 429, with the quoted response.
    Status { status: String, detail: String },
    /// A timeout or connection error.
    Transport(String),
}

impl Retryable {
    fn into_error(self, module: &str, version: &str, url: &str, attempts: u32) -> ProxyError {
        let (module, version, url) = (module.to_owned(), version.to_owned(), url.to_owned());
        match self {
            Retryable::Status { status, detail } => ProxyError::Status {
                module,
                version,
                url,
                status,
                detail,
                attempts,
            },
            Retryable::Transport(message) => ProxyError::Transport {
                module,
                version,
                url,
                message,
                attempts,
            },
        }
    }
}

impl ProxyClient {
    /// Parse GOPROXY as Go does: entries separated by `,` or `|` (each remembering the
    /// separator after it), blanks skipped, the list ending at `off` or `direct`; a word with
    /// a `.`, `:` or `/` but no `:/` gets `https://` in front. Invalid entries are errors.
    pub fn new(env: &GoEnv) -> Result<Self, ProxyError> {
        let mut proxies = Vec::new();
        let mut rest = env.goproxy.as_str();
        while !rest.is_empty() {
            let (entry, separator) = match rest.find([',', '|']) {
                Some(index) => {
                    let separator = rest[index..].chars().next();
                    let entry = &rest[..index];
                    rest = &rest[index + 1..];
                    (entry, separator)
                }
                None => (std::mem::take(&mut rest), None),
            };
            let entry = entry.trim();
            let source = match entry {
                "" => continue,
                "off" => Endpoint::Off,
                "direct" => Endpoint::Direct,
                _ => parse_proxy_url(entry)?,
            };
            let is_last = matches!(source, Endpoint::Off | Endpoint::Direct);
            proxies.push(ProxySpec { source, separator });
            if is_last {
                // Go ignores what follows, keeping it free for future meanings.
                break;
            }
        }
        Ok(ProxyClient {
            proxies,
            no_proxy: env.no_proxy(),
            no_proxy_list: env.gonoproxy.clone(),
            retry: RetryPolicy::goproxy(),
            credentials: Credentials::new(&env.auth),
            #[cfg(test)]
            credentials_over_http: false,
        })
    }

    /// Fetch one file of module@version (unescaped inputs; escaping done here), at most `limit`
    /// bytes (more is an error, never buffered beyond limit+1). A module GOPROXY sends
    /// `direct` is refused ([`ProxyError::Direct`]): for callers that only fetch from proxies.
    pub fn fetch(
        &self,
        module: &str,
        version: &str,
        file: ProxyFile,
        limit: u64,
    ) -> Result<Vec<u8>, ProxyError> {
        match self.route(module, version, file, limit)? {
            Routed::Proxied(bytes) => Ok(bytes),
            Routed::Direct(DirectRoute {
                no_proxy_pattern,
                tried,
            }) => Err(ProxyError::Direct {
                module: module.to_owned(),
                version: version.to_owned(),
                no_proxy_pattern,
                tried,
            }),
        }
    }

    /// Fetch one file of module@version from the proxies GOPROXY lists, or say that it goes
    /// `direct` to version control (a GONOPROXY match, or `direct` reached in the list), as
    /// cmd/go routes it.
    pub fn route(
        &self,
        module: &str,
        version: &str,
        file: ProxyFile,
        limit: u64,
    ) -> Result<Routed, ProxyError> {
        module::check(module, version)?;
        if let Some(pattern) = self.no_proxy.matching(module) {
            return Ok(Routed::Direct(DirectRoute {
                no_proxy_pattern: Some(pattern.to_owned()),
                tried: Vec::new(),
            }));
        }
        let name = format!(
            "{}/@v/{}.{}",
            module::escape_path(module)?,
            module::escape_version(version)?,
            file.extension()
        );
        let mut tried = Vec::new();
        // As cmd/go: after a `|` fall-through, the last real error beats later "not found"s.
        let mut last_error = None;
        for proxy in &self.proxies {
            let outcome = match &proxy.source {
                Endpoint::Off => {
                    return Err(last_error.unwrap_or_else(|| ProxyError::Off {
                        module: module.to_owned(),
                        version: version.to_owned(),
                        tried,
                    }));
                }
                Endpoint::Direct => {
                    // As cmd/go: direct's own outcome is what counts, even after a `|`
                    // fall-through from a proxy error.
                    return Ok(Routed::Direct(DirectRoute {
                        no_proxy_pattern: None,
                        tried,
                    }));
                }
                Endpoint::File { root, .. } => read_file(&root.join(&name), limit, module, version),
                Endpoint::Http {
                    base,
                    authorization,
                    authority,
                    client,
                    ..
                } => {
                    let url = format!("{base}/{}", url_path_escape(&name));
                    self.fetch_http(
                        client,
                        &url,
                        authority,
                        authorization.as_deref(),
                        limit,
                        module,
                        version,
                    )
                }
            };
            match outcome {
                Ok(bytes) => return Ok(Routed::Proxied(bytes)),
                Err(Failure::NotFound(why)) => tried.push(why),
                Err(Failure::Error(error)) if proxy.separator == Some('|') => {
                    last_error = Some(*error);
                }
                Err(Failure::Error(error)) => return Err(*error),
            }
        }
        Err(last_error.unwrap_or_else(|| {
            if self.proxies.is_empty() {
                // Go treats a GOPROXY of only separators as `off`.
                ProxyError::Off {
                    module: module.to_owned(),
                    version: version.to_owned(),
                    tried: Vec::new(),
                }
            } else {
                ProxyError::NotFound {
                    module: module.to_owned(),
                    version: version.to_owned(),
                    tried,
                }
            }
        }))
    }

    /// A human description of where a module comes from (for logs), secrets redacted:
    /// `GOPROXY=https://proxy.golang.org,direct`, plus GONOPROXY when set.
    pub fn describe(&self) -> String {
        let mut description = String::from("GOPROXY=");
        if self.proxies.is_empty() {
            description.push_str("off");
        }
        for (index, proxy) in self.proxies.iter().enumerate() {
            description.push_str(proxy.source.display());
            if index + 1 < self.proxies.len() {
                description.push(proxy.separator.unwrap_or(','));
            }
        }
        if !self.no_proxy.is_empty() {
            description.push_str(&format!(" (GONOPROXY={} goes direct)", self.no_proxy_list));
        }
        description
    }

    /// GET `url` from an HTTP(S) proxy, with the credentials Go would send: for HTTPS the
    /// headers GOAUTH gives the URL ([`Credentials`]), whose `Authorization` beats the URL's
    /// userinfo as in Go (whose net/http uses userinfo only when no `Authorization` is set);
    /// else the userinfo. After a 4xx answer to an HTTPS request, GOAUTH runs again for the
    /// URL and the request is made once more, as Go's web client does. A 401 or 403 says
    /// which credentials were sent, or why there were none.
    #[allow(clippy::too_many_arguments)]
    fn fetch_http(
        &self,
        client: &Client,
        url: &str,
        authority: &str,
        userinfo: Option<&str>,
        limit: u64,
        module: &str,
        version: &str,
    ) -> Result<Vec<u8>, Failure> {
        let https_path = url
            .strip_prefix("https://")
            .or_else(|| self.http_as_https(url))
            .and_then(|rest| rest.strip_prefix(authority));
        let goauth_error = |error| Failure::error(ProxyError::GoAuth(error));
        let found = match https_path {
            Some(path) => self
                .credentials
                .for_https(authority, path)
                .map_err(goauth_error)?,
            None => Found::Nothing {
                why: "kiln, like go, sends .netrc credentials only over HTTPS".to_owned(),
            },
        };
        let mut head = None;
        let result = self.get_with(
            client,
            url,
            authority,
            userinfo,
            &found,
            https_path.is_some(),
            &mut head,
            limit,
            module,
            version,
        );
        let (Some(path), Some(head), Err(_)) = (https_path, head, &result) else {
            return result;
        };
        if !self.credentials.reruns_after_4xx() {
            return result;
        }
        // The URL as an HTTPS one (unit tests treat plain HTTP as HTTPS).
        let https_url = format!("https://{authority}{path}");
        let found = self
            .credentials
            .after_4xx(authority, path, &https_url, &head)
            .map_err(goauth_error)?;
        let retried = self.get_with(
            client, url, authority, userinfo, &found, true, &mut None, limit, module, version,
        );
        if let Found::Attached(attached) = &found {
            match &retried {
                Ok(_) => attached.report(true),
                Err(Failure::Error(error))
                    if matches!(error.as_ref(), ProxyError::CredentialsRefused { .. }) =>
                {
                    attached.report(false)
                }
                Err(_) => {}
            }
        }
        retried
    }

    /// GET `url` with what `found` gives (else the userinfo), turning a 401/403 into the
    /// error that says whose credentials were refused, or why there were none; `head` gets
    /// the head of a 4xx answer.
    #[allow(clippy::too_many_arguments)]
    fn get_with(
        &self,
        client: &Client,
        url: &str,
        authority: &str,
        userinfo: Option<&str>,
        found: &Found,
        https: bool,
        head: &mut Option<String>,
        limit: u64,
        module: &str,
        version: &str,
    ) -> Result<Vec<u8>, Failure> {
        let mut headers: Vec<(&str, &str)> = Vec::new();
        let mut origin = None;
        if let Found::Attached(attached) = found {
            headers.extend(
                attached
                    .headers()
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_str())),
            );
            origin = Some(attached.origin.clone());
        }
        let has_authorization =
            matches!(found, Found::Attached(attached) if attached.has_authorization());
        if let (false, Some(userinfo)) = (has_authorization, userinfo) {
            headers.push(("Authorization", userinfo));
            origin.get_or_insert_with(|| "in the GOPROXY URL".to_owned());
        }
        let refused = |status: String| match (&origin, found) {
            (Some(origin), _) => ProxyError::CredentialsRefused {
                url: url.to_owned(),
                status,
                host: authority.to_owned(),
                origin: origin.clone(),
            },
            (None, found) => ProxyError::NoCredentials {
                url: url.to_owned(),
                status,
                host: authority.to_owned(),
                why: match found {
                    Found::Nothing { why } => why.clone(),
                    Found::Attached(_) => String::new(),
                },
                https,
                netrc_file: self.credentials.netrc_file().map(Path::to_owned),
                goauth_runs: https && self.credentials.reruns_after_4xx(),
            },
        };
        self.get(
            client, url, &headers, &refused, head, limit, module, version,
        )
    }

    /// What follows `http://` in `url` when unit tests treat plain HTTP as HTTPS.
    #[cfg(test)]
    fn http_as_https<'a>(&self, url: &'a str) -> Option<&'a str> {
        url.strip_prefix("http://")
            .filter(|_| self.credentials_over_http)
    }

    #[cfg(not(test))]
    fn http_as_https<'a>(&self, _url: &'a str) -> Option<&'a str> {
        None
    }

    /// GET `url` with retries.
    #[allow(clippy::too_many_arguments)]
    fn get(
        &self,
        client: &Client,
        url: &str,
        headers: &[(&str, &str)],
        refused: &dyn Fn(String) -> ProxyError,
        head: &mut Option<String>,
        limit: u64,
        module: &str,
        version: &str,
    ) -> Result<Vec<u8>, Failure> {
        self.retry.run(|attempt| {
            match get_once(
                &self.retry,
                client,
                url,
                headers,
                refused,
                head,
                limit,
                module,
                version,
            ) {
                Ok(bytes) => Attempt::Done(bytes),
                Err(Outcome::Failed(failure)) => Attempt::Fail(failure),
                Err(Outcome::Retry(retryable)) => Attempt::Retry(Failure::error(
                    retryable.into_error(module, version, url, attempt),
                )),
            }
        })
    }
}

/// How one HTTP attempt failed.
enum Outcome {
    /// Final, whatever the attempt number.
    Failed(Failure),
    Retry(Retryable),
}

#[allow(clippy::too_many_arguments)]
fn get_once(
    retry: &RetryPolicy,
    client: &Client,
    url: &str,
    headers: &[(&str, &str)],
    refused: &dyn Fn(String) -> ProxyError,
    head: &mut Option<String>,
    limit: u64,
    module: &str,
    version: &str,
) -> Result<Vec<u8>, Outcome> {
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = match request.call() {
        Ok(response) => response,
        Err(error) => {
            let message = error.to_string();
            return Err(if retry.retries_error(&error) {
                Outcome::Retry(Retryable::Transport(message))
            } else {
                Outcome::Failed(Failure::error(
                    Retryable::Transport(message).into_error(module, version, url, 1),
                ))
            });
        }
    };
    let status = response.status();
    let status_text = http::status_text(status);
    if status.is_success() {
        return http::read_limited(response, limit).map_err(|error| match error {
            HttpError::TooLarge { limit } => {
                Outcome::Failed(Failure::error(ProxyError::TooLarge {
                    module: module.to_owned(),
                    version: version.to_owned(),
                    location: url.to_owned(),
                    limit,
                }))
            }
            HttpError::Read(error) => Outcome::Retry(Retryable::Transport(format!(
                "reading the response: {error}"
            ))),
        });
    }
    if status.is_client_error() {
        *head = Some(super::authcommand::response_head(
            &format!("{:?}", response.version()),
            &status_text,
            &response
                .headers()
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect::<Vec<_>>(),
        ));
    }
    let detail = error_detail(response);
    if matches!(status.as_u16(), 401 | 403) {
        return Err(Outcome::Failed(Failure::error(refused(format!(
            "{status_text}{detail}"
        )))));
    }
    if matches!(status.as_u16(), 404 | 410) {
        return Err(Outcome::Failed(Failure::NotFound(format!(
            "GET {url}: {status_text}{detail}"
        ))));
    }
    let retryable = Retryable::Status {
        status: status_text,
        detail,
    };
    Err(if retry.retries_status(status) {
        Outcome::Retry(retryable)
    } else {
        Outcome::Failed(Failure::error(
            retryable.into_error(module, version, url, 1),
        ))
    })
}

/// ` (server response: …)` with the start of a plain-text error body on one line, as Go
/// quotes proxies' explanations (proxy.golang.org says why a module is missing).
fn error_detail(response: ureq::http::Response<ureq::Body>) -> String {
    let is_text = response
        .body()
        .mime_type()
        .is_some_and(|mime| mime.eq_ignore_ascii_case("text/plain"));
    if !is_text {
        return String::new();
    }
    let mut bytes = Vec::new();
    // A broken error body only loses the quote; the status already says what happened.
    let _ = response
        .into_body()
        .into_reader()
        .take(ERROR_DETAIL_BYTES)
        .read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let text: Vec<&str> = text
        .split(|character: char| character.is_whitespace() || character.is_control())
        .filter(|word| !word.is_empty())
        .collect();
    if text.is_empty() {
        String::new()
    } else {
        format!(" (server response: {})", text.join(" "))
    }
}

fn read_file(path: &Path, limit: u64, module: &str, version: &str) -> Result<Vec<u8>, Failure> {
    let read_error = |source: io::Error| {
        if source.kind() == io::ErrorKind::NotFound {
            Failure::NotFound(format!("no file {}", path.display()))
        } else {
            Failure::error(ProxyError::Read {
                module: module.to_owned(),
                version: version.to_owned(),
                path: path.to_owned(),
                source,
            })
        }
    };
    let too_large = || {
        Failure::error(ProxyError::TooLarge {
            module: module.to_owned(),
            version: version.to_owned(),
            location: path.display().to_string(),
            limit,
        })
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let length = file.metadata().map_err(read_error)?.len();
    if length > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Parse one GOPROXY entry other than `off` and `direct`.
fn parse_proxy_url(entry: &str) -> Result<Endpoint, ProxyError> {
    // Go: single words are reserved for built-in behaviours; anything else without `:/` that
    // is not an absolute path is a host name with `https://` implied. (Go would also prefix
    // `file:relative` and then fail on its port; kiln says what is wrong with it instead.)
    let is_file = entry
        .get(..5)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("file:"));
    let entry = if entry.contains(['.', ':', '/'])
        && !entry.contains(":/")
        && !entry.starts_with('/')
        && !is_file
    {
        format!("https://{entry}")
    } else {
        entry.to_owned()
    };
    let display = redact(&entry);
    let invalid = |reason: String| ProxyError::InvalidGoProxy {
        entry: display.clone(),
        reason,
    };
    if entry.contains(['?', '#']) {
        return Err(invalid(
            "a query or fragment in a proxy URL is not supported".to_owned(),
        ));
    }
    let Some((scheme, rest)) = entry.split_once(':') else {
        let reason = if entry.starts_with('/') {
            format!("a folder needs the file scheme: write file://{entry}")
        } else {
            "not a URL (expected https://HOST/PATH, file:///PATH, `direct` or `off`)".to_owned()
        };
        return Err(invalid(reason));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "file" => {
            // Go takes only a path: file:///PATH or file:/PATH, never a host.
            let path = match rest.strip_prefix("//") {
                Some(after) if !after.starts_with('/') => {
                    return Err(invalid(
                        "a file:// proxy URL takes a path, not a host: write file:///ABSOLUTE/PATH"
                            .to_owned(),
                    ));
                }
                Some(after) => after,
                None => rest,
            };
            if !path.starts_with('/') {
                return Err(invalid(
                    "a file:// proxy URL needs an absolute path: write file:///ABSOLUTE/PATH"
                        .to_owned(),
                ));
            }
            let decoded = percent_decode(path)
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| invalid("the path has an invalid % escape".to_owned()))?;
            let root = decoded.trim_end_matches('/');
            Ok(Endpoint::File {
                root: PathBuf::from(if root.is_empty() { "/" } else { root }),
                display,
            })
        }
        scheme @ ("http" | "https") => {
            let Some(rest) = rest.strip_prefix("//") else {
                return Err(invalid(format!("write {scheme}://HOST/PATH")));
            };
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let (userinfo, host) = match authority.rsplit_once('@') {
                Some((userinfo, host)) => (Some(userinfo), host),
                None => (None, authority),
            };
            if host.is_empty() {
                return Err(invalid("the URL has no host".to_owned()));
            }
            // The http crate checks ports lazily; Go's url.Parse refuses a bad one up front.
            let port = match host.rsplit_once(']') {
                Some((_, after)) => after.strip_prefix(':'),
                None => host.rsplit_once(':').map(|(_, port)| port),
            };
            if port.is_some_and(|port| !port.bytes().all(|byte| byte.is_ascii_digit())) {
                return Err(invalid("the port is not a number".to_owned()));
            }
            let base = format!("{scheme}://{host}{}", path.trim_end_matches('/'));
            if let Err(error) = ureq::http::Uri::try_from(base.as_str()) {
                return Err(invalid(format!("not a valid URL: {error}")));
            }
            let authorization = userinfo
                .map(|userinfo| {
                    // The reason must not quote the userinfo: it holds the secret.
                    basic_authorization(userinfo).ok_or_else(|| {
                        invalid("the user name or password has an invalid % escape".to_owned())
                    })
                })
                .transpose()?;
            Ok(Endpoint::Http {
                base,
                authorization,
                authority: host.to_owned(),
                client: Client::new(&AgentOptions::goproxy().for_host(host)),
                display,
            })
        }
        "" => Err(invalid("the URL has no scheme".to_owned())),
        other => Err(invalid(format!(
            "unsupported scheme `{other}` (GOPROXY takes https, http, file, `direct` and `off`)"
        ))),
    }
}

/// `Basic base64(user:password)` from percent-encoded userinfo, as Go's net/http sends it.
fn basic_authorization(userinfo: &str) -> Option<String> {
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let mut credentials = percent_decode(user)?;
    credentials.push(b':');
    credentials.extend(percent_decode(password)?);
    Some(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    ))
}

/// Decode `%XX` escapes; `None` for a malformed escape.
fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = bytes.get(index + 1..index + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    Some(decoded)
}

/// Escape a `/`-separated URL path as Go's `url.PathEscape` with `/` kept: everything but
/// letters, digits, `-._~` and `$&+:=@` becomes `%XX` (so the case-encoding `!` is `%21`).
fn url_path_escape(path: &str) -> String {
    let mut escaped = String::with_capacity(path.len() + 8);
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~$&+:=@/".contains(&byte) {
            escaped.push(char::from(byte));
        } else {
            escaped.push_str(&format!("%{byte:02X}"));
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::http::test_server::{Reply, TestServer};

    fn env(goproxy: &str) -> GoEnv {
        GoEnv::from_lookup(|name| (name == "GOPROXY").then(|| goproxy.to_owned()))
    }

    fn client(goproxy: &str) -> ProxyClient {
        let mut client = ProxyClient::new(&env(goproxy)).unwrap();
        client.retry = RetryPolicy::goproxy().with_first_delay(Duration::from_millis(1));
        client
    }

    /// One canned answer, in plain text as proxy.golang.org explains a missing module.
    fn reply(status: u16, body: &str) -> Reply {
        Reply::new(status, body).header("Content-Type", "text/plain; charset=utf-8")
    }

    /// A loopback proxy answering from `routes` (path → replies in turn, the last one
    /// repeating; other paths get 404) and recording every request.
    fn serve(routes: Vec<(&str, Vec<Reply>)>) -> TestServer {
        TestServer::routes(routes, reply(404, "not found: no such module")).unwrap()
    }

    const MOD_PATH: &str = "/example.com/lib/@v/v1.0.0.mod";

    #[test]
    fn client_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ProxyClient>();
    }

    #[test]
    fn go_env_has_go_defaults() {
        let defaults = GoEnv::from_lookup(|_| None);
        assert_eq!(defaults.goproxy, "https://proxy.golang.org,direct");
        assert_eq!(defaults.gonoproxy, "");
        let private = GoEnv::from_lookup(|name| match name {
            "GOPRIVATE" => Some("*.corp.example.com".to_owned()),
            "GOPROXY" => Some(String::new()),
            "GONOSUMDB" => Some("sum.example.com".to_owned()),
            _ => None,
        });
        assert_eq!(private.goproxy, DEFAULT_GOPROXY, "empty counts as unset");
        assert_eq!(private.gonoproxy, "*.corp.example.com");
        assert_eq!(private.gonosumdb, "sum.example.com");
        assert!(private.no_proxy().matches("git.corp.example.com/x"));
        assert!(private.no_sum_db().matches("sum.example.com/y"));
        assert!(private.insecure().is_empty());
    }

    #[test]
    fn goproxy_parses_like_go() {
        let parsed = client(
            "https://a.example/, proxy.example.com|file:///srv/go%20proxy/,direct,https://ignored.example",
        );
        assert_eq!(
            parsed.describe(),
            "GOPROXY=https://a.example/,https://proxy.example.com|file:///srv/go%20proxy/,direct"
        );
        let Endpoint::File { root, .. } = &parsed.proxies[2].source else {
            panic!("not a file proxy");
        };
        assert_eq!(root, Path::new("/srv/go proxy"));
        assert_eq!(client("file:/srv").describe(), "GOPROXY=file:/srv");
        assert_eq!(client(",,").describe(), "GOPROXY=off");
        for (goproxy, reason) in [
            ("noproxy", "not a URL"),
            ("/srv/proxy", "write file:///srv/proxy"),
            ("ftp://a.example", "unsupported scheme `ftp`"),
            ("file://host/srv", "not a host"),
            ("file:relative", "absolute path"),
            ("https://", "no host"),
            ("https://a.example/?x=1", "query or fragment"),
            ("https://a b.example", "not a valid URL"),
            ("proxy.example.com:http", "the port is not a number"),
        ] {
            let error = ProxyClient::new(&env(goproxy)).unwrap_err().to_string();
            assert!(error.starts_with("GOPROXY entry `"), "{error}");
            assert!(error.contains(reason), "{goproxy}: {error}");
        }
    }

    #[test]
    fn file_proxy_serves_case_encoded_paths() {
        let folder = tempfile::tempdir().unwrap();
        let versions = folder.path().join("github.com/!azure/!go-lib/@v");
        std::fs::create_dir_all(&versions).unwrap();
        std::fs::write(
            versions.join("v1.2.0-!r!c1.mod"),
            "module github.com/Azure/Go-lib\n",
        )
        .unwrap();
        let proxy = client(&format!("file://{}", folder.path().display()));
        let bytes = proxy
            .fetch(
                "github.com/Azure/Go-lib",
                "v1.2.0-RC1",
                ProxyFile::Mod,
                1000,
            )
            .unwrap();
        assert_eq!(bytes, b"module github.com/Azure/Go-lib\n");
        let error = proxy
            .fetch("github.com/Azure/Go-lib", "v1.2.0-RC1", ProxyFile::Mod, 5)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("is larger than the limit of 5 bytes"),
            "{error}"
        );
        let error = proxy
            .fetch(
                "github.com/Azure/Go-lib",
                "v1.2.0-RC1",
                ProxyFile::Zip,
                1000,
            )
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("not found: no file "), "{error}");
        assert!(
            error.ends_with("github.com/!azure/!go-lib/@v/v1.2.0-!r!c1.zip"),
            "{error}"
        );
    }

    #[test]
    fn http_proxy_serves_a_file() {
        let server = serve(vec![(
            MOD_PATH,
            vec![reply(200, "module example.com/lib\n")],
        )]);
        let bytes = client(server.url())
            .fetch("example.com/lib", "v1.0.0", ProxyFile::Mod, 1 << 20)
            .unwrap();
        assert_eq!(bytes, b"module example.com/lib\n");
        let seen = server.requests();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].header("user-agent"), Some(http::USER_AGENT));
        assert!(http::USER_AGENT.starts_with("kiln/"));
        assert_eq!(seen[0].header("authorization"), None);
    }

    #[test]
    fn http_paths_are_case_encoded_then_url_escaped_like_go() {
        let path = "/base/github.com/%21azure/x/@v/v2.0.0+incompatible.info";
        let server = serve(vec![(path, vec![reply(200, "{}")])]);
        let bytes = client(&format!("{}/base/", server.url()))
            .fetch(
                "github.com/Azure/x",
                "v2.0.0+incompatible",
                ProxyFile::Info,
                10,
            )
            .unwrap();
        assert_eq!(bytes, b"{}");
        assert_eq!(server.requests()[0].path, path);
    }

    #[test]
    fn not_found_falls_through_after_comma() {
        let first = serve(vec![(MOD_PATH, vec![reply(410, "gone")])]);
        let second = serve(vec![(
            MOD_PATH,
            vec![reply(200, "module example.com/lib\n")],
        )]);
        let bytes = client(&format!("{},{}", first.url(), second.url()))
            .fetch("example.com/lib", "v1.0.0", ProxyFile::Mod, 100)
            .unwrap();
        assert_eq!(bytes, b"module example.com/lib\n");
        assert_eq!(first.count_path(MOD_PATH), 1);
    }

    #[test]
    fn not_found_everywhere_names_each_proxy() {
        let first = serve(vec![]);
        let folder = tempfile::tempdir().unwrap();
        let error = client(&format!(
            "{},file://{}",
            first.url(),
            folder.path().display()
        ))
        .fetch("example.com/lib", "v1.0.0", ProxyFile::Mod, 100)
        .unwrap_err()
        .to_string();
        assert!(error.starts_with("not found: "), "{error}");
        assert!(
            error.contains(&format!(
                "GET {}{MOD_PATH}: 404 Not Found (server response: not found: no such module)",
                first.url()
            )),
            "{error}"
        );
        assert!(
            error.contains(&format!("; no file {}/", folder.path().display())),
            "{error}"
        );
    }

    #[test]
    fn server_error_stops_after_comma() {
        let first = serve(vec![(MOD_PATH, vec![reply(500, "database is down")])]);
        let second = serve(vec![(
            MOD_PATH,
            vec![reply(200, "module example.com/lib\n")],
        )]);
        let error = client(&format!("{},{}", first.url(), second.url()))
            .fetch("example.com/lib", "v1.0.0", ProxyFile::Mod, 100)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            format!(
                "GET {}{MOD_PATH}: 500 Internal Server Error (after 3 attempts) (server response: database is down)",
                first.url()
            )
        );
        assert_eq!(first.count_path(MOD_PATH), 3);
        assert!(second.requests().is_empty());
    }

    #[test]
    fn server_error_falls_through_after_pipe() {
        let first = serve(vec![(MOD_PATH, vec![reply(503, "")])]);
        let second = serve(vec![(
            MOD_PATH,
            vec![reply(200, "module example.com/lib\n")],
        )]);
        let bytes = client(&format!("{}|{}", first.url(), second.url()))
            .fetch("example.com/lib", "v1.0.0", ProxyFile::Mod, 100)
            .unwrap();
        assert_eq!(bytes, b"module example.com/lib\n");
        // A real error beats a later "not found", as in cmd/go.
        let third = serve(vec![]);
        let error = client(&format!("{}|{}", first.url(), third.url()))
            .fetch("example.com/lib", "v1.0.0", ProxyFile::Mod, 100)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("503 Service Unavailable (after 3 attempts)"),
            "{error}"
        );
    }

    #[test]
    fn server_errors_are_retried() {
        let server = serve(vec![(
            MOD_PATH,
            vec![
                reply(500, ""),
                reply(429, ""),
                reply(200, "module example.com/lib\n"),
            ],
        )]);
        let bytes = client(server.url())
            .fetch("example.com/lib", "v1.0.0", ProxyFile::Mod, 100)
            .unwrap();
        assert_eq!(bytes, b"module example.com/lib\n");
        assert_eq!(server.count_path(MOD_PATH), 3);
    }

    #[test]
    fn dropped_connections_are_retried() {
        let server = serve(vec![(
            MOD_PATH,
            vec![Reply::hang_up(), reply(200, "module example.com/lib\n")],
        )]);
        let bytes = client(server.url())
            .fetch("example.com/lib", "v1.0.0", ProxyFile::Mod, 100)
            .unwrap();
        assert_eq!(bytes, b"module example.com/lib\n");
        assert_eq!(server.count_path(MOD_PATH), 2);
    }

    #[test]
    fn client_errors_are_not_retried() {
        let server = serve(vec![(MOD_PATH, vec![reply(400, "bad request")])]);
        let error = client(server.url())
            .fetch("example.com/lib", "v1.0.0", ProxyFile::Mod, 100)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            format!(
                "GET {}{MOD_PATH}: 400 Bad Request (server response: bad request)",
                server.url()
            )
        );
        assert_eq!(server.count_path(MOD_PATH), 1);
    }

    #[test]
    fn connection_errors_are_retried_then_reported() {
        // Bind and drop a listener: nothing answers on that port any more.
        let address = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let error = client(&format!("http://{address}"))
            .fetch("example.com/lib", "v1.0.0", ProxyFile::Mod, 100)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(&format!("GET http://{address}{MOD_PATH}: ")),
            "{error}"
        );
        assert!(error.ends_with("(after 3 attempts)"), "{error}");
    }

    #[test]
    fn limit_is_enforced() {
        let body = "x".repeat(100);
        let streamed = reply(200, &body).without_length();
        let server = serve(vec![
            (MOD_PATH, vec![reply(200, &body)]),
            ("/example.com/lib/@v/v1.0.0.zip", vec![streamed]),
        ]);
        let proxy = client(server.url());
        for file in [ProxyFile::Mod, ProxyFile::Zip] {
            let error = proxy
                .fetch("example.com/lib", "v1.0.0", file, 99)
                .unwrap_err()
                .to_string();
            assert_eq!(
                error,
                format!(
                    "{}/example.com/lib/@v/v1.0.0.{} is larger than the limit of 99 bytes",
                    server.url(),
                    file.extension()
                )
            );
            assert_eq!(
                proxy
                    .fetch("example.com/lib", "v1.0.0", file, 100)
                    .unwrap()
                    .len(),
                100
            );
        }
    }

    #[test]
    fn off_disables_lookups() {
        let error = client("off")
            .fetch("example.com/lib", "v1.0.0", ProxyFile::Zip, 100)
            .unwrap_err()
            .to_string();
        assert_eq!(error, "module lookups disabled by GOPROXY=off");
        let server = serve(vec![]);
        let error = client(&format!("{},off", server.url()))
            .fetch("example.com/lib", "v1.0.0", ProxyFile::Mod, 100)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("module lookups disabled by GOPROXY=off (not found before it: GET "),
            "{error}"
        );
    }

    #[test]
    fn direct_is_refused_with_a_hint() {
        let error = client("direct")
            .fetch("example.com/lib", "v1.0.0", ProxyFile::Zip, 100)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "GOPROXY lists `direct` for it, and kiln fetches only through a module proxy"
        );
        assert_eq!(
            crate::diagnostic::Hint::hint(&error).as_deref(),
            Some(
                "serve example.com/lib through a module proxy listed in GOPROXY before `direct`, \
                 or download it with `GOFLAGS=-mod=mod go mod download` and set \
                 `GOPROXY=file://$(go env GOMODCACHE)/cache/download`"
            )
        );
        let server = serve(vec![]);
        let error = client(&format!("{},direct", server.url()))
            .fetch("example.com/lib", "v1.0.0", ProxyFile::Mod, 100)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(&format!(
                "GOPROXY lists `direct` for it, and kiln fetches only through a module proxy (not found before it: GET {}{MOD_PATH}: 404 Not Found",
                server.url()
            )),
            "{error}"
        );
    }

    #[test]
    fn private_modules_go_direct() {
        let server = serve(vec![(
            MOD_PATH,
            vec![reply(200, "module example.com/lib\n")],
        )]);
        let private = GoEnv::from_lookup(|name| match name {
            "GOPROXY" => Some(server.url().to_owned()),
            "GOPRIVATE" => Some("*.corp.example.com,example.com/lib".to_owned()),
            _ => None,
        });
        let proxy = ProxyClient::new(&private).unwrap();
        let error = proxy
            .fetch(
                "git.corp.example.com/team/tool",
                "v0.3.0",
                ProxyFile::Zip,
                100,
            )
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "it matches `*.corp.example.com` in GONOPROXY (or GOPRIVATE), which sends it `direct` to version control, and kiln fetches only through a module proxy"
        );
        assert!(
            crate::diagnostic::Hint::hint(&error).is_some_and(|hint| hint.starts_with(
                "serve git.corp.example.com/team/tool through a module proxy and leave it out of GONOPROXY/GOPRIVATE, or download it"
            )),
            "{error}"
        );
        assert!(
            proxy
                .fetch("example.com/lib", "v1.0.0", ProxyFile::Mod, 100)
                .is_err()
        );
        assert!(
            server.requests().is_empty(),
            "private modules never reach a proxy"
        );
        assert_eq!(
            proxy.describe(),
            format!(
                "GOPROXY={} (GONOPROXY=*.corp.example.com,example.com/lib goes direct)",
                server.url()
            )
        );
    }

    /// Issue 19: the route to version control is Go's: `direct` reached after a `,` only
    /// past "not found", after a `|` past any error; a GONOPROXY (default GOPRIVATE) match
    /// goes direct at once, even with GOPROXY=off, and never reaches a proxy.
    #[test]
    fn routes_to_direct_as_go_does() {
        let missing = serve(vec![]);
        let broken = serve(vec![(MOD_PATH, vec![reply(500, "down")])]);
        let route = |goproxy: &str, goprivate: &str| {
            let env = GoEnv::from_lookup(|name| match name {
                "GOPROXY" => Some(goproxy.to_owned()),
                "GOPRIVATE" => Some(goprivate.to_owned()),
                _ => None,
            });
            let mut client = ProxyClient::new(&env).unwrap();
            client.retry = RetryPolicy::goproxy().with_first_delay(Duration::from_millis(1));
            client.route("example.com/lib", "v1.0.0", ProxyFile::Mod, 100)
        };
        let direct = |tried: Vec<String>| DirectRoute {
            no_proxy_pattern: None,
            tried,
        };
        let not_found = format!(
            "GET {}{MOD_PATH}: 404 Not Found (server response: not found: no such module)",
            missing.url()
        );
        for (name, goproxy, goprivate, expected) in [
            ("direct alone", "direct".to_owned(), "", Ok(direct(vec![]))),
            (
                "direct after a proxy without it",
                format!("{},direct", missing.url()),
                "",
                Ok(direct(vec![not_found.clone()])),
            ),
            (
                "direct after a failing proxy and `|`",
                format!("{}|direct", broken.url()),
                "",
                Ok(direct(vec![])),
            ),
            (
                "no direct after a failing proxy and `,`",
                format!("{},direct", broken.url()),
                "",
                Err("500 Internal Server Error (after 3 attempts)"),
            ),
            (
                "GOPRIVATE beats GOPROXY=off",
                "off".to_owned(),
                "example.com",
                Ok(DirectRoute {
                    no_proxy_pattern: Some("example.com".to_owned()),
                    tried: vec![],
                }),
            ),
            (
                "a glob on the path's elements",
                format!("{},off", missing.url()),
                "*.com/l*",
                Ok(DirectRoute {
                    no_proxy_pattern: Some("*.com/l*".to_owned()),
                    tried: vec![],
                }),
            ),
            (
                "no match: off",
                "off".to_owned(),
                "example.com/other,example.org",
                Err("module lookups disabled by GOPROXY=off"),
            ),
        ] {
            match (route(&goproxy, goprivate), expected) {
                (Ok(Routed::Direct(route)), Ok(expected)) => {
                    assert_eq!(route, expected, "{name}")
                }
                (Err(error), Err(expected)) => {
                    assert!(error.to_string().contains(expected), "{name}: {error}")
                }
                (outcome, expected) => panic!("{name}: {outcome:?}, expected {expected:?}"),
            }
        }
        assert_eq!(
            missing.count_path(MOD_PATH),
            1,
            "a GOPRIVATE match never reaches the proxy"
        );
    }

    #[test]
    fn userinfo_is_sent_as_basic_auth_and_never_shown() {
        let server = serve(vec![
            (MOD_PATH, vec![reply(200, "module example.com/lib\n")]),
            ("/example.com/lib/@v/v1.0.0.zip", vec![reply(500, "")]),
        ]);
        let address = server.address();
        let proxy = client(&format!("http://kiln%40ci:s3cr%3At@{address}/"));
        proxy
            .fetch("example.com/lib", "v1.0.0", ProxyFile::Mod, 100)
            .unwrap();
        assert_eq!(
            server.requests()[0].header("authorization"),
            Some(
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode("kiln@ci:s3cr:t")
                )
                .as_str()
            )
        );
        let error = proxy
            .fetch("example.com/lib", "v1.0.0", ProxyFile::Zip, 100)
            .unwrap_err()
            .to_string();
        let description = proxy.describe();
        for text in [&error, &description, &format!("{proxy:?}")] {
            assert!(!text.contains("s3cr"), "{text}");
            assert!(!text.contains("kiln%40ci"), "{text}");
        }
        assert_eq!(description, format!("GOPROXY=http://{address}/"));
        assert!(
            error.contains(&format!(
                "GET http://{address}/example.com/lib/@v/v1.0.0.zip: 500"
            )),
            "{error}"
        );
        // An invalid entry's message is redacted too.
        let error = ProxyClient::new(&env("ftp://user:hunter2@host.example/"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "GOPROXY entry `ftp://host.example/` is not valid: unsupported scheme `ftp` (GOPROXY takes https, http, file, `direct` and `off`)"
        );
    }

    /// A proxy that wants basic auth for `user:password`: 200 with a go.mod, else 401.
    fn basic_auth_proxy(user: &str, password: &str) -> TestServer {
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        TestServer::start(move |request, _| {
            if request.header("authorization") == Some(expected.as_str()) {
                reply(200, "module example.com/lib\n")
            } else {
                reply(401, "unauthorized").header("WWW-Authenticate", "Basic realm=\"proxy\"")
            }
        })
        .unwrap()
    }

    /// A client for `server` with NETRC (and GOAUTH) as given, looking up `.netrc` for the
    /// test server's plain HTTP as it does for HTTPS.
    fn netrc_client(server: &TestServer, netrc: &Path, goauth: Option<&str>) -> ProxyClient {
        let goproxy = server.url().to_owned();
        let netrc = netrc.to_str().unwrap().to_owned();
        let goauth = goauth.map(str::to_owned);
        let env = GoEnv::from_lookup(|name| match name {
            "GOPROXY" => Some(goproxy.clone()),
            "NETRC" => Some(netrc.clone()),
            "GOAUTH" => goauth.clone(),
            _ => None,
        });
        let mut client = ProxyClient::new(&env).unwrap();
        client.credentials_over_http = true;
        client
    }

    /// GOAUTH's `git DIR` method for an HTTPS proxy, with git's real `store` helper: after a
    /// 401, `git credential fill` in DIR gives the credentials, the request is made again with
    /// them, and git is told whether they worked (`reject` makes `store` forget them).
    #[test]
    fn goauth_git_asks_git_credential_fill_after_a_401() {
        let password = "git-store-secret-hunter2";
        let server = basic_auth_proxy("ci", password);
        let host = server.address().to_owned();
        let folder = tempfile::tempdir().unwrap();
        let repository = folder.path().join("repo");
        let store = folder.path().join("git-credentials");
        let git = |arguments: &[&str]| {
            let status = std::process::Command::new("git")
                .args(arguments)
                .current_dir(folder.path())
                .status()
                .unwrap();
            assert!(status.success(), "git {arguments:?}");
        };
        git(&["init", "-q", repository.to_str().unwrap()]);
        git(&[
            "-C",
            repository.to_str().unwrap(),
            "config",
            "credential.helper",
            &format!("store --file={}", store.display()),
        ]);
        let netrc = folder.path().join("netrc");
        let goauth = format!("netrc; git {}", repository.display());
        let fetch = || {
            netrc_client(&server, &netrc, Some(&goauth)).fetch(
                "example.com/lib",
                "v1.0.0",
                ProxyFile::Mod,
                100,
            )
        };

        // No .netrc and nothing in git's store: both said.
        let message = fetch().unwrap_err().to_string();
        assert!(
            message.ends_with(&format!(
                "kiln found no credentials for {host}: {} does not exist; `git credential fill` in {} (GOAUTH git) gave none (git: fatal: could not read Username for 'https://{host}': terminal prompts disabled)",
                netrc.display(),
                repository.display()
            )),
            "{message}"
        );
        // The store has them: fetched, and they stay stored (approved).
        std::fs::write(&store, format!("https://ci:{password}@{host}\n")).unwrap();
        assert_eq!(fetch().unwrap(), b"module example.com/lib\n");
        assert!(std::fs::read_to_string(&store).unwrap().contains(password));
        // Wrong ones: refused, naming where they came from, never the password; rejected,
        // so git's store forgets them.
        std::fs::write(&store, format!("https://ci:wrong-{password}@{host}\n")).unwrap();
        let error = fetch().unwrap_err();
        let message = error.to_string();
        assert_eq!(
            message,
            format!(
                "GET http://{host}{MOD_PATH}: 401 Unauthorized (server response: unauthorized): {host} refused the credentials from `git credential fill` in {} (GOAUTH git)",
                repository.display()
            )
        );
        assert!(!format!("{error:?}").contains(password));
        assert_eq!(std::fs::read_to_string(&store).unwrap(), "");
    }

    /// A GOAUTH command for an HTTPS proxy: run with no argument first (it gives nothing),
    /// then after the 401 with the URL and the answer's head on stdin; its headers are sent
    /// on the retry. Failures name the command's program, never its output's secrets.
    #[test]
    fn goauth_commands_are_run_as_go_runs_them_and_their_headers_sent() {
        use std::os::unix::fs::PermissionsExt as _;
        let password = "command-secret-hunter2";
        let server = basic_auth_proxy("ci", password);
        let host = server.address().to_owned();
        let folder = tempfile::tempdir().unwrap();
        let log = folder.path().join("log");
        let helper = folder.path().join("helper");
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("ci:{password}"));
        std::fs::write(
            &helper,
            format!(
                "#!/bin/sh\necho \"run with $# arguments: $*\" >> {log}\nhead -n 1 >> {log}\n[ $# -eq 0 ] && exit 0\nprintf 'https://{host}/example.com\\n\\nAuthorization: Basic {basic}\\n\\n'\n",
                log = log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let netrc = folder.path().join("netrc");
        let fetch = |goauth: &str| {
            netrc_client(&server, &netrc, Some(goauth)).fetch(
                "example.com/lib",
                "v1.0.0",
                ProxyFile::Mod,
                100,
            )
        };
        assert_eq!(
            fetch(helper.to_str().unwrap()).unwrap(),
            b"module example.com/lib\n"
        );
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            format!(
                "run with 0 arguments: \nrun with 1 arguments: https://{host}{MOD_PATH}\nHTTP/1.1 401 Unauthorized\n"
            )
        );

        // Output that is not GOAUTH's format: the line named, not shown, and no request
        // made with it.
        let garbled = folder.path().join("garbled");
        std::fs::write(
            &garbled,
            format!("#!/bin/sh\nprintf 'https://{host}\\n\\nAuthorization Basic {basic}\\n\\n'\n"),
        )
        .unwrap();
        std::fs::set_permissions(&garbled, std::fs::Permissions::from_mode(0o755)).unwrap();
        let message = fetch(garbled.to_str().unwrap()).unwrap_err().to_string();
        assert!(
            message.ends_with(&format!(
                "kiln found no credentials for {host}: the GOAUTH command `{}` gave none: `{}` printed what GOAUTH does not accept: line 3: not a header line `Name: value` with a valid name and value (the line is not shown: it may hold a secret)",
                garbled.display(),
                garbled.display()
            )),
            "{message}"
        );
        assert!(!message.contains(&basic) && !message.contains(password));

        // A command whose headers the proxy refuses: named as their origin.
        let wrong = folder.path().join("wrong");
        std::fs::write(
            &wrong,
            format!("#!/bin/sh\nprintf 'https://{host}\\n\\nAuthorization: Basic d3Jvbmc6d3Jvbmc=\\n\\n'\n"),
        )
        .unwrap();
        std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o755)).unwrap();
        let message = fetch(wrong.to_str().unwrap()).unwrap_err().to_string();
        assert_eq!(
            message,
            format!(
                "GET http://{host}{MOD_PATH}: 401 Unauthorized (server response: unauthorized): {host} refused the credentials from the GOAUTH command `{}`",
                wrong.display()
            )
        );
    }

    #[test]
    fn netrc_credentials_are_sent_and_refusals_say_whose_they_were() {
        use crate::diagnostic::Hint as _;
        let password = "netrc-secret-hunter2";
        let server = basic_auth_proxy("ci", password);
        let host = server.address().to_owned();
        let folder = tempfile::tempdir().unwrap();
        let netrc = folder.path().join("netrc");
        let fetch =
            |client: &ProxyClient| client.fetch("example.com/lib", "v1.0.0", ProxyFile::Mod, 100);

        // A matching entry: sent, accepted.
        std::fs::write(
            &netrc,
            format!("machine other.example login x password y\nmachine {host} login ci password {password}\n"),
        )
        .unwrap();
        assert_eq!(
            fetch(&netrc_client(&server, &netrc, None)).unwrap(),
            b"module example.com/lib\n"
        );
        // It beats the URL's userinfo, as in Go.
        let netrc_text = netrc.to_str().unwrap().to_owned();
        let mut client = ProxyClient::new(&GoEnv::from_lookup(|name| match name {
            "GOPROXY" => Some(format!("http://ci:wrong@{host}/")),
            "NETRC" => Some(netrc_text.clone()),
            _ => None,
        }))
        .unwrap();
        client.credentials_over_http = true;
        assert_eq!(fetch(&client).unwrap(), b"module example.com/lib\n");

        // No entry for the host: the error names it, says none were found, and hints.
        std::fs::write(&netrc, "machine other.example login x password y\n").unwrap();
        let error = fetch(&netrc_client(&server, &netrc, None)).unwrap_err();
        let message = error.to_string();
        assert_eq!(
            message,
            format!(
                "GET http://{host}{MOD_PATH}: 401 Unauthorized (server response: unauthorized); kiln found no credentials for {host}: {} has no complete `machine {host}` entry (machine, login and password)",
                netrc.display()
            )
        );
        let hint = error.hint().unwrap();
        assert_eq!(
            hint,
            format!(
                "add `machine {host} login USER password TOKEN` to {}, which go reads too (GOAUTH, when set, must include `netrc`)",
                netrc.display()
            )
        );

        // GOAUTH=off: nothing is sent, and the error says why.
        std::fs::write(
            &netrc,
            format!("machine {host} login ci password {password}\n"),
        )
        .unwrap();
        let message = fetch(&netrc_client(&server, &netrc, Some("off")))
            .unwrap_err()
            .to_string();
        assert!(
            message.ends_with(&format!("kiln found no credentials for {host}: GOAUTH=off")),
            "{message}"
        );

        // Wrong credentials: refused, naming the file and machine, never the password.
        std::fs::write(
            &netrc,
            format!("machine {host} login ci password wrong-{password}\n"),
        )
        .unwrap();
        let error = fetch(&netrc_client(&server, &netrc, None)).unwrap_err();
        let message = error.to_string();
        assert_eq!(
            message,
            format!(
                "GET http://{host}{MOD_PATH}: 401 Unauthorized (server response: unauthorized): {host} refused the credentials from {} (machine {host})",
                netrc.display()
            )
        );
        let hint = error.hint().unwrap();
        for text in [&message, &hint, &format!("{error:?}")] {
            assert!(!text.contains(password), "{text}");
        }

        // A bad GOAUTH is an error at the first request, as in Go.
        let message = fetch(&netrc_client(&server, &netrc, Some("netrc;")))
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            "GOAUTH=netrc; has an empty element (an extra `;`?)"
        );
        assert!(
            server
                .requests()
                .iter()
                .all(|request| request.path == MOD_PATH)
        );
    }

    #[test]
    fn netrc_is_not_used_over_plain_http_and_userinfo_refusals_say_so() {
        let password = "netrc-secret-hunter2";
        let server = basic_auth_proxy("ci", password);
        let host = server.address().to_owned();
        let folder = tempfile::tempdir().unwrap();
        let netrc = folder.path().join("netrc");
        std::fs::write(
            &netrc,
            format!("machine {host} login ci password {password}\n"),
        )
        .unwrap();
        let mut over_http = netrc_client(&server, &netrc, None);
        over_http.credentials_over_http = false;
        let error = over_http
            .fetch("example.com/lib", "v1.0.0", ProxyFile::Mod, 100)
            .unwrap_err();
        assert!(
            error.to_string().ends_with(&format!("kiln found no credentials for {host}: kiln, like go, sends .netrc credentials only over HTTPS")),
            "{error}"
        );
        let url = format!("http://ci:wrong-{password}@{host}/");
        let error = client(&url)
            .fetch("example.com/lib", "v1.0.0", ProxyFile::Mod, 100)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            format!(
                "GET http://{host}{MOD_PATH}: 401 Unauthorized (server response: unauthorized): {host} refused the credentials in the GOPROXY URL"
            )
        );
        assert!(!error.contains(password));
    }

    #[test]
    fn invalid_modules_and_versions_fail_before_any_request() {
        let server = serve(vec![]);
        let proxy = client(server.url());
        for (module, version, message) in [
            ("example.com/lib", "latest", "invalid version `latest`"),
            ("example.com/lib", "master", "invalid version `master`"),
            (
                "example.com/Lib!",
                "v1.0.0",
                "invalid module path `example.com/Lib!`",
            ),
            ("example.com/lib", "v2.0.0", "should be v0 or v1, not v2"),
        ] {
            let error = proxy
                .fetch(module, version, ProxyFile::Mod, 100)
                .unwrap_err()
                .to_string();
            assert!(error.contains(message), "{error}");
        }
        assert!(server.requests().is_empty());
    }
}
