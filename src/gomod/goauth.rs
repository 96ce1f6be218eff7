//! GOAUTH, the go command's choice of credentials for HTTPS requests (Go 1.24 and later;
//! cmd/go/internal/auth/auth.go and `go help goauth`, read at Go 1.27.3), and the
//! credentials kiln's GOPROXY client sends because of it.
//!
//! **The variable:** a `;`-separated list of methods; unset or empty means `netrc`. Each
//! element is trimmed, split into words at white space, and named by its first word:
//! - `off`: no credentials at all. Only alone: `off` in a list of several is an error
//!   (Go: "GOAUTH=off cannot be combined with other authentication commands");
//! - `netrc`: the `.netrc` file ([`super::netrc`]: NETRC, else `~/.netrc`); words after
//!   `netrc` are ignored, as in Go;
//! - `git DIR`: exactly two words, DIR absolute and an existing folder (else an error); Go
//!   runs `git credential fill` in DIR, but only after a request failed with a 4xx answer,
//!   for that URL, and then `git credential approve`/`reject` after a HEAD request;
//! - anything else: a command, split with Go's `quoted.Split` (words separated by spaces,
//!   tabs, `\r`, `\n`; a word may be wrapped whole in `'…'` or `"…"`, with no escapes). Go runs
//!   it with no arguments before the first HTTPS request and again with the URL as an
//!   argument (and the 4xx response on stdin) after a 4xx answer; its output is sets of
//!   `https://` URL prefixes, a blank line, header lines, a blank line.
//!
//! An empty element (`netrc;`, `;;`) is an error. Go reports these errors (and a relative or
//! missing `git` folder) when it makes its first HTTPS request, not before: so does kiln.
//!
//! **Priority:** Go runs the list from last to first, each method storing credentials per
//! URL prefix over what a later one stored, so for the same prefix the *earlier* method in
//! GOAUTH wins; within `.netrc` the earlier entry wins. A request then takes the credentials
//! of the longest stored prefix of its URL at a `/` boundary (as [`super::netrc::Netrc::lookup`]
//! matches machines), whichever method stored it.
//!
//! **What Go does with them:** they are added only to `https://` requests (proxies and
//! `?go-get=1` lookups), never to plain HTTP, GOINSECURE or not. Credentials found this way
//! set the `Authorization` header, and Go's net/http uses a URL's userinfo only when no
//! such header is set: a `.netrc` entry therefore beats `https://user:pass@host/` in GOPROXY.
//! kiln does the same.
//!
//! **What kiln's GOPROXY client does** (see [`Credentials`]): all of it, as Go does, for
//! its HTTPS proxy requests. Before the first one, every method runs once with no URL
//! (`.netrc` read, commands run with no argument, see [`super::authcommand`]); the request
//! gets the headers of the longest stored prefix of its URL; after a 4xx answer every method
//! runs again for that URL (commands with the URL as an argument and the answer's head on
//! stdin, `git credential fill` in DIR with `url=URL`, git never prompting) and the request
//! is made once more; `git credential approve` or `reject` follows when git's credentials
//! were used. Unlike Go, kiln checks git's credentials with the retried GET itself (Go sends
//! a HEAD first, up to three times) and reruns the methods after a 4xx only when GOAUTH has a
//! command or `git` method (with `netrc` alone the retry would be the same request). Headers
//! and passwords are never printed: messages name where credentials came from (the `.netrc`
//! file and machine, the command's program, git's folder) and why each method gave none.
//! Version-control fetches are left to the go command itself, which reads GOAUTH, `.netrc`
//! and git's credential helpers on its own ([`super::direct`] passes GOAUTH through).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use super::netrc::{self, Netrc, NetrcError};

/// GOAUTH when the variable is unset or empty.
pub const DEFAULT_GOAUTH: &str = "netrc";

/// A GOAUTH value Go refuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GoAuthError {
    #[error("GOAUTH={value} has an empty element (an extra `;`?)")]
    EmptyCommand { value: String },
    #[error("GOAUTH={value}: `off` cannot be combined with other authentication commands")]
    OffCombined { value: String },
    #[error(
        "GOAUTH={value}: `git DIR` needs an absolute path to an existing git working folder: {reason}"
    )]
    GitFolder { value: String, reason: String },
    #[error("GOAUTH={value}: cannot split the command `{command}`: {reason}")]
    Quote {
        value: String,
        command: String,
        reason: String,
    },
}

impl crate::diagnostic::Hint for GoAuthError {
    fn hint(&self) -> Option<String> {
        Some(
            "GOAUTH is a `;`-separated list of `off`, `netrc`, `git /ABSOLUTE/DIR` and commands (see `go help goauth`); unset, it means `netrc`"
                .to_owned(),
        )
    }
}

/// One element of GOAUTH.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    Off,
    Netrc,
    Git { folder: PathBuf },
    Command { words: Vec<String> },
}

/// GOAUTH, parsed and checked as Go checks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoAuth {
    /// The value as set (or [`DEFAULT_GOAUTH`]).
    pub value: String,
    /// The methods in GOAUTH's order, which is their priority (first wins).
    pub methods: Vec<Method>,
}

impl GoAuth {
    /// Parse `value` (`None` or empty: [`DEFAULT_GOAUTH`]).
    pub fn parse(value: Option<&str>) -> Result<GoAuth, GoAuthError> {
        let value = value
            .filter(|value| !value.is_empty())
            .unwrap_or(DEFAULT_GOAUTH);
        let elements: Vec<&str> = value.split(';').collect();
        let mut methods = Vec::with_capacity(elements.len());
        // Go checks from the last element to the first; so does this, for the same error.
        for element in elements.iter().rev() {
            let element = element.trim();
            let words: Vec<&str> = element.split_whitespace().collect();
            let method = match words.first() {
                None => {
                    return Err(GoAuthError::EmptyCommand {
                        value: value.to_owned(),
                    });
                }
                Some(&"off") if elements.len() != 1 => {
                    return Err(GoAuthError::OffCombined {
                        value: value.to_owned(),
                    });
                }
                Some(&"off") => Method::Off,
                Some(&"netrc") => Method::Netrc,
                Some(&"git") => Method::Git {
                    folder: git_folder(value, &words)?,
                },
                Some(_) => Method::Command {
                    words: quoted_split(element).map_err(|reason| GoAuthError::Quote {
                        value: value.to_owned(),
                        command: element.to_owned(),
                        reason,
                    })?,
                },
            };
            methods.push(method);
        }
        methods.reverse();
        Ok(GoAuth {
            value: value.to_owned(),
            methods,
        })
    }
}

fn git_folder(value: &str, words: &[&str]) -> Result<PathBuf, GoAuthError> {
    let refuse = |reason: String| GoAuthError::GitFolder {
        value: value.to_owned(),
        reason,
    };
    let [_, folder] = words else {
        return Err(refuse(format!(
            "`{}` has {} words, not 2",
            words.join(" "),
            words.len()
        )));
    };
    let folder = Path::new(folder);
    if !folder.is_absolute() {
        return Err(refuse(format!("{} is not absolute", folder.display())));
    }
    match std::fs::metadata(folder) {
        Ok(metadata) if metadata.is_dir() => Ok(folder.to_owned()),
        Ok(_) => Err(refuse(format!("{} is not a folder", folder.display()))),
        Err(error) => Err(refuse(format!("cannot stat {}: {error}", folder.display()))),
    }
}

/// Go's `cmd/internal/quoted.Split`: words at ASCII space, tab, `\r`, `\n`; a word that
/// starts with `'` or `"` runs to the next same quote, taken as is (no escapes).
fn quoted_split(text: &str) -> Result<Vec<String>, String> {
    let is_space = |character: char| matches!(character, ' ' | '\t' | '\n' | '\r');
    let mut words = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches(is_space);
        let Some(first) = rest.chars().next() else {
            return Ok(words);
        };
        if first == '"' || first == '\'' {
            let inside = &rest[1..];
            let Some(end) = inside.find(first) else {
                return Err(format!("unterminated {first} string"));
            };
            words.push(inside[..end].to_owned());
            rest = &inside[end + 1..];
        } else {
            let end = rest.find(is_space).unwrap_or(rest.len());
            words.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
}

/// Headers GOAUTH gives a URL, and where they came from. `Debug` shows the header names and
/// the origin, never a value.
#[derive(Clone)]
pub struct Attached {
    headers: Vec<(String, String)>,
    /// `from FILE (machine NAME)`, `from the GOAUTH command `PROGRAM``, `from `git credential
    /// fill` in DIR (GOAUTH git)`: for messages, never holding a secret.
    pub origin: String,
    /// When the headers came from `git credential fill`: to tell git whether they worked.
    git: Option<Arc<GitCredential>>,
}

impl std::fmt::Debug for Attached {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        formatter
            .debug_struct("Attached")
            .field("header_names", &names)
            .field("origin", &self.origin)
            .finish()
    }
}

impl Attached {
    /// The headers to add to the request, in order (a name may repeat).
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// Whether they set `Authorization` (which then beats a URL's userinfo, as in Go).
    pub fn has_authorization(&self) -> bool {
        self.headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("authorization"))
    }

    /// Tell git's helpers whether the server accepted them, when they came from `git
    /// credential fill` (`git credential approve` or `reject`, as Go does after its check).
    pub fn report(&self, accepted: bool) {
        if let Some(git) = &self.git {
            git.report(accepted);
        }
    }
}

/// What a [`Credentials`] lookup found for a URL.
#[derive(Clone, Debug)]
pub enum Found {
    Attached(Attached),
    /// Nothing; `why` says why, method by method, for a refusal's message (never a secret).
    Nothing {
        why: String,
    },
}

/// The variables credentials depend on: GOAUTH, and where `.netrc` is (NETRC, HOME).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthEnv {
    /// GOAUTH as set (`None` when unset).
    pub goauth: Option<String>,
    /// [`netrc::location`].
    pub netrc_file: Option<PathBuf>,
}

impl AuthEnv {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> AuthEnv {
        AuthEnv {
            goauth: lookup("GOAUTH"),
            netrc_file: netrc::location(&lookup),
        }
    }
}

/// The credentials for kiln's HTTPS proxy requests, as GOAUTH gives them, kept as Go keeps
/// them (its `credentialCache`): headers per URL prefix (`HOST[:PORT][/PATH]`), filled by
/// running GOAUTH's methods from the last to the first, so that for one prefix the earlier
/// method wins; a request gets the headers of the longest prefix of its URL at a `/`.
///
/// As in Go's `AddCredentials`: the first HTTPS request runs every method once with no URL
/// ([`Credentials::for_https`]: `.netrc` read, commands run with no argument, `git DIR`
/// skipped), and a 4xx answer runs them all again for that URL
/// ([`Credentials::after_4xx`]: `.netrc` read again, commands with the URL and the response
/// head, `git credential fill`), after which the request is made once more. GOAUTH is parsed
/// at the first request, so a bad value is an error only then, as in Go.
///
/// Unlike Go: what is stored lives as long as this value (one `kiln` command's proxy
/// client), and a 4xx reruns the methods only when GOAUTH has a command or `git` method
/// ([`Credentials::reruns_after_4xx`]): with `netrc` alone the second run would store the
/// same headers and the retry would be the same request.
pub struct Credentials {
    env: AuthEnv,
    goauth: OnceLock<Result<GoAuth, GoAuthError>>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Credentials")
            .field("env", &self.env)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    /// Whether the first run (no URL) happened.
    primed: bool,
    /// Prefix (without `https://` and a trailing `/`) → headers.
    cache: BTreeMap<String, Attached>,
    /// What each method (GOAUTH's order) said in its last run, for [`Found::Nothing`].
    outcomes: Vec<Outcome>,
}

/// What one method's last run came to, without secrets.
enum Outcome {
    NotRun,
    Off,
    Netrc(Result<NetrcSummary, String>),
    /// `None`: it stored something; else why not.
    Git(Option<String>),
    Command(Option<String>),
}

struct NetrcSummary {
    path: PathBuf,
    exists: bool,
}

impl Credentials {
    pub fn new(env: &AuthEnv) -> Credentials {
        Credentials {
            env: env.clone(),
            goauth: OnceLock::new(),
            state: Mutex::new(State::default()),
        }
    }

    /// From the environment `lookup` reads: GOAUTH, NETRC and HOME.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Credentials {
        Credentials::new(&AuthEnv::from_lookup(lookup))
    }

    fn goauth(&self) -> Result<&GoAuth, GoAuthError> {
        self.goauth
            .get_or_init(|| GoAuth::parse(self.env.goauth.as_deref()))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding it leaves a cache that is still consistent (entries are
        // replaced whole).
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The headers for `https://HOST/PATH` (`host` with its port when the URL has one, `path`
    /// escaped), running GOAUTH's methods first if no request did yet. Only for HTTPS URLs:
    /// Go sends none over plain HTTP.
    pub fn for_https(&self, host: &str, path: &str) -> Result<Found, GoAuthError> {
        let goauth = self.goauth()?;
        let mut state = self.state();
        if !state.primed {
            self.run(goauth, &mut state, None);
            state.primed = true;
        }
        Ok(self.lookup(&state, host, path))
    }

    /// Whether a 4xx answer should run GOAUTH again (it names a command or `git DIR`).
    pub fn reruns_after_4xx(&self) -> bool {
        self.goauth().is_ok_and(|goauth| {
            goauth
                .methods
                .iter()
                .any(|method| matches!(method, Method::Git { .. } | Method::Command { .. }))
        })
    }

    /// After `https://HOST/PATH` (`url`) got a 4xx answer whose head is `response` (see
    /// [`super::authcommand::response_head`]): every method again for that URL, then the
    /// headers for it.
    pub fn after_4xx(
        &self,
        host: &str,
        path: &str,
        url: &str,
        response: &str,
    ) -> Result<Found, GoAuthError> {
        let goauth = self.goauth()?;
        let mut state = self.state();
        if !state.primed {
            self.run(goauth, &mut state, None);
            state.primed = true;
        }
        self.run(goauth, &mut state, Some((url, response)));
        Ok(self.lookup(&state, host, path))
    }

    /// Go's `runGoAuth`: the methods from the last to the first, each storing over what a
    /// later one stored.
    fn run(&self, goauth: &GoAuth, state: &mut State, request: Option<(&str, &str)>) {
        let mut outcomes: Vec<Outcome> = goauth.methods.iter().map(|_| Outcome::NotRun).collect();
        for (index, method) in goauth.methods.iter().enumerate().rev() {
            outcomes[index] = match method {
                Method::Off => Outcome::Off,
                Method::Netrc => Outcome::Netrc(self.run_netrc(&mut state.cache)),
                Method::Git { folder } => match request {
                    // Git cannot list what it knows: Go waits for a URL.
                    None => Outcome::NotRun,
                    Some((url, _)) => Outcome::Git(run_git(folder, url, &mut state.cache).err()),
                },
                Method::Command { words } => Outcome::Command(
                    run_command(words, request, &mut state.cache)
                        .err()
                        .map(|error| error.to_string()),
                ),
            };
        }
        state.outcomes = outcomes;
    }

    fn run_netrc(&self, cache: &mut BTreeMap<String, Attached>) -> Result<NetrcSummary, String> {
        let netrc = match &self.env.netrc_file {
            Some(path) => Netrc::read(path),
            None => Err(NetrcError::NoHome),
        }
        .map_err(|error| error.to_string())?;
        // In reverse, so that the first entry for a machine wins, as in Go.
        for entry in netrc.entries().iter().rev() {
            store(
                cache,
                &entry.machine,
                Attached {
                    headers: vec![("Authorization".to_owned(), entry.basic_authorization())],
                    origin: format!(
                        "from {} (machine {})",
                        netrc.path().display(),
                        entry.machine
                    ),
                    git: None,
                },
            );
        }
        Ok(NetrcSummary {
            path: netrc.path().to_owned(),
            exists: netrc.exists(),
        })
    }

    /// Go's `loadCredential`: the longest stored prefix of `HOST/PATH` at a `/` boundary.
    fn lookup(&self, state: &State, host: &str, path: &str) -> Found {
        let key = format!("{host}{path}");
        let mut prefix = key.trim_end_matches('/');
        loop {
            if let Some(attached) = state.cache.get(prefix) {
                return Found::Attached(attached.clone());
            }
            match prefix.rfind('/') {
                Some(slash) => prefix = &prefix[..slash],
                None => break,
            }
        }
        Found::Nothing {
            why: self.why(state, host),
        }
    }

    /// Why nothing was found for `host`, method by method in GOAUTH's order.
    fn why(&self, state: &State, host: &str) -> String {
        let Ok(goauth) = self.goauth() else {
            return String::new();
        };
        let reasons: Vec<String> = goauth
            .methods
            .iter()
            .zip(&state.outcomes)
            .filter_map(|(method, outcome)| match (method, outcome) {
                (_, Outcome::Off) => Some("GOAUTH=off".to_owned()),
                (_, Outcome::Netrc(Err(error))) => Some(error.clone()),
                (_, Outcome::Netrc(Ok(summary))) if !summary.exists => {
                    Some(format!("{} does not exist", summary.path.display()))
                }
                (_, Outcome::Netrc(Ok(summary))) => Some(format!(
                    "{} has no complete `machine {host}` entry (machine, login and password)",
                    summary.path.display()
                )),
                (Method::Git { folder }, Outcome::Git(why)) => Some(format!(
                    "`git credential fill` in {} (GOAUTH git) gave none{}",
                    folder.display(),
                    why.as_deref()
                        .map(|why| format!(" ({why})"))
                        .unwrap_or_default()
                )),
                (Method::Git { folder }, _) => Some(format!(
                    "`git credential fill` in {} (GOAUTH git) runs only after a 4xx answer",
                    folder.display()
                )),
                (Method::Command { words }, Outcome::Command(Some(error))) => Some(format!(
                    "the GOAUTH command `{}` gave none: {error}",
                    words[0]
                )),
                (Method::Command { words }, _) => Some(format!(
                    "the GOAUTH command `{}` gave none for this URL",
                    words[0]
                )),
                _ => None,
            })
            .collect();
        reasons.join("; ")
    }

    /// Where a `.netrc` entry would go, for hints: the file GOAUTH's netrc reads.
    pub fn netrc_file(&self) -> Option<&Path> {
        self.env.netrc_file.as_deref()
    }
}

/// Go's `storeCredential`: `prefix` without `https://` and a trailing `/`; no headers
/// removes the entry.
fn store(cache: &mut BTreeMap<String, Attached>, prefix: &str, attached: Attached) {
    let prefix = prefix.strip_prefix("https://").unwrap_or(prefix);
    let prefix = prefix.strip_suffix('/').unwrap_or(prefix).to_owned();
    if attached.headers.is_empty() {
        cache.remove(&prefix);
    } else {
        cache.insert(prefix, attached);
    }
}

fn run_command(
    words: &[String],
    request: Option<(&str, &str)>,
    cache: &mut BTreeMap<String, Attached>,
) -> Result<(), super::authcommand::CommandError> {
    let sets = super::authcommand::run(
        words,
        request.map(|(url, _)| url),
        request.map(|(_, response)| response),
    )?;
    let origin = format!("from the GOAUTH command `{}`", words[0]);
    for set in sets {
        for url in &set.urls {
            store(
                cache,
                url,
                Attached {
                    headers: set.headers.clone(),
                    origin: origin.clone(),
                    git: None,
                },
            );
        }
    }
    Ok(())
}

/// Go's `runGitAuth`: `git credential fill` for `url`; its answer's prefix must be one of
/// `url`.
fn run_git(folder: &Path, url: &str, cache: &mut BTreeMap<String, Attached>) -> Result<(), String> {
    let credential = git_credential_fill(folder, url)?;
    if credential.prefix.is_empty() {
        return Err("its answer names no URL".to_owned());
    }
    if !url.starts_with(&credential.prefix) {
        return Err(format!(
            "it answered for {}, not a prefix of the URL",
            crate::http::redact(&credential.prefix)
        ));
    }
    let prefix = credential.prefix.clone();
    store(
        cache,
        &prefix,
        Attached {
            headers: vec![("Authorization".to_owned(), credential.authorization.clone())],
            origin: format!(
                "from `git credential fill` in {} (GOAUTH git)",
                folder.display()
            ),
            git: Some(Arc::new(credential)),
        },
    );
    Ok(())
}

/// Credentials `git credential fill` gave for a URL (GOAUTH's `git DIR` method): the
/// `Authorization` value, the URL prefix git answered for, and git's own answer, kept to
/// tell git whether they worked. `Debug` shows none of the secrets.
pub struct GitCredential {
    pub authorization: String,
    /// `protocol://host/path` from the answer (Go's `parseGitAuth`), or its `url=`.
    pub prefix: String,
    folder: PathBuf,
    answer: String,
}

impl std::fmt::Debug for GitCredential {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("GitCredential")
            .field("folder", &self.folder)
            .field("prefix", &crate::http::redact(&self.prefix))
            .finish_non_exhaustive()
    }
}

/// `git credential fill` in `folder` for `url` (Go's `runGitAuth`: `url=URL` on stdin; the
/// answer's `username=` and `password=` lines become basic auth). Git may not prompt
/// (GIT_TERMINAL_PROMPT=0: kiln never waits on a terminal); an error says why it gave none.
pub fn git_credential_fill(folder: &Path, url: &str) -> Result<GitCredential, String> {
    let answer = run_git_credential(folder, "fill", &format!("url={url}\n"))?;
    let mut protocol = "";
    let mut host = "";
    let mut path = "";
    let mut answered_url = None;
    let mut username = "";
    let mut password = "";
    for line in answer.lines() {
        let Some((key, value)) = line.trim().split_once('=') else {
            continue;
        };
        match key {
            "protocol" => protocol = value,
            "host" => host = value,
            "path" => path = value,
            "username" => username = value,
            "password" => password = value,
            "url" if value.contains("://") => answered_url = Some(value),
            _ => {}
        }
    }
    if username.is_empty() || password.is_empty() {
        return Err("no username and password in its answer".to_owned());
    }
    let prefix = match answered_url {
        Some(url) => url.to_owned(),
        None if protocol.is_empty() && host.is_empty() => String::new(),
        None => {
            let path = path.trim_start_matches('/');
            let separator = if path.is_empty() { "" } else { "/" };
            format!("{protocol}://{host}{separator}{path}")
        }
    };
    use base64::Engine as _;
    let authorization = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
    );
    Ok(GitCredential {
        authorization,
        prefix,
        folder: folder.to_owned(),
        answer,
    })
}

impl GitCredential {
    /// Tell git's helpers whether the server accepted them (`git credential approve` or
    /// `reject`, as Go does after its check), so a helper can store or forget them.
    pub fn report(&self, accepted: bool) {
        let action = if accepted { "approve" } else { "reject" };
        let _ = run_git_credential(&self.folder, action, &self.answer);
    }
}

/// `git credential ACTION` in `folder` with `input`: its stdout, or why it failed (git's
/// first stderr line, which names no secret: git prints none there).
fn run_git_credential(folder: &Path, action: &str, input: &str) -> Result<String, String> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new("git")
        .args(["credential", action])
        .current_dir(folder)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot run git: {error}"))?;
    let written = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(input.as_bytes()));
    let output = child
        .wait_with_output()
        .map_err(|error| format!("git: {error}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = stderr.lines().find(|line| !line.trim().is_empty());
        return Err(match first {
            Some(line) => format!("git: {}", crate::http::redact_text(line.trim())),
            None => format!("git {}", output.status),
        });
    }
    if written.is_none_or(|written| written.is_err()) {
        return Err("git did not read its input".to_owned());
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn methods(value: &str) -> Vec<Method> {
        GoAuth::parse(Some(value)).unwrap().methods
    }

    #[test]
    fn unset_or_empty_is_netrc() {
        for value in [None, Some("")] {
            let goauth = GoAuth::parse(value).unwrap();
            assert_eq!(goauth.value, "netrc");
            assert_eq!(goauth.methods, vec![Method::Netrc]);
        }
    }

    #[test]
    fn methods_parse_as_go_reads_them() {
        let folder = tempfile::tempdir().unwrap();
        let folder_text = folder.path().to_str().unwrap();
        assert_eq!(methods("off"), vec![Method::Off]);
        assert_eq!(methods(" off "), vec![Method::Off]);
        assert_eq!(methods("netrc extra words"), vec![Method::Netrc]);
        assert_eq!(
            methods(&format!(
                "netrc; git {folder_text} ;/usr/bin/helper --flag 'a b' \"c\""
            )),
            vec![
                Method::Netrc,
                Method::Git {
                    folder: folder.path().to_owned()
                },
                Method::Command {
                    words: vec![
                        "/usr/bin/helper".to_owned(),
                        "--flag".to_owned(),
                        "a b".to_owned(),
                        "c".to_owned()
                    ]
                },
            ]
        );
        // Quotes count only around a whole word, as in Go.
        assert_eq!(
            methods("helper a'b c'"),
            vec![Method::Command {
                words: vec!["helper".to_owned(), "a'b".to_owned(), "c'".to_owned()]
            }]
        );
    }

    #[test]
    fn values_go_refuses_are_errors_with_gos_reasons() {
        let folder = tempfile::tempdir().unwrap();
        let file = folder.path().join("file");
        std::fs::write(&file, "").unwrap();
        for (value, expected) in [
            (
                "netrc;",
                "GOAUTH=netrc; has an empty element (an extra `;`?)",
            ),
            (
                ";netrc",
                "GOAUTH=;netrc has an empty element (an extra `;`?)",
            ),
            (
                "off;netrc",
                "GOAUTH=off;netrc: `off` cannot be combined with other authentication commands",
            ),
            (
                "git",
                "GOAUTH=git: `git DIR` needs an absolute path to an existing git working folder: `git` has 1 words, not 2",
            ),
            (
                "git relative/dir",
                "GOAUTH=git relative/dir: `git DIR` needs an absolute path to an existing git working folder: relative/dir is not absolute",
            ),
            (
                "helper 'unterminated",
                "GOAUTH=helper 'unterminated: cannot split the command `helper 'unterminated`: unterminated ' string",
            ),
        ] {
            assert_eq!(
                GoAuth::parse(Some(value)).unwrap_err().to_string(),
                expected,
                "{value}"
            );
        }
        let value = format!("git {}", file.display());
        let error = GoAuth::parse(Some(&value)).unwrap_err().to_string();
        assert!(
            error.ends_with(&format!("{} is not a folder", file.display())),
            "{error}"
        );
        // Checked from the last element, as Go does: the `off` error, not the `git` one.
        assert!(matches!(
            GoAuth::parse(Some("git relative;off")),
            Err(GoAuthError::OffCombined { .. })
        ));
    }

    fn credentials(pairs: Vec<(&'static str, String)>) -> Credentials {
        Credentials::from_lookup(move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.clone())
        })
    }

    #[test]
    fn netrc_entries_are_found_and_absences_explained() {
        let folder = tempfile::tempdir().unwrap();
        let netrc = folder.path().join("netrc");
        std::fs::write(
            &netrc,
            "machine proxy.corp.example login ci password hunter2-secret\n",
        )
        .unwrap();
        let netrc_text = netrc.to_str().unwrap().to_owned();
        let found = credentials(vec![("NETRC", netrc_text.clone())])
            .for_https("proxy.corp.example", "/mod/@v/v1.0.0.mod")
            .unwrap();
        let Found::Attached(attached) = &found else {
            panic!("{found:?}")
        };
        assert_eq!(
            attached.origin,
            format!("from {} (machine proxy.corp.example)", netrc.display())
        );
        assert_eq!(attached.headers().len(), 1);
        assert_eq!(attached.headers()[0].0, "Authorization");
        assert!(attached.headers()[0].1.starts_with("Basic "));
        assert!(!format!("{found:?}").contains("hunter2"));
        assert!(!format!("{found:?}").contains(&attached.headers()[0].1));

        let why = |pairs: Vec<(&'static str, String)>, host: &str| match credentials(pairs)
            .for_https(host, "/x")
            .unwrap()
        {
            Found::Nothing { why } => why,
            found => panic!("{found:?}"),
        };
        assert_eq!(
            why(vec![("NETRC", netrc_text.clone())], "other.example"),
            format!(
                "{} has no complete `machine other.example` entry (machine, login and password)",
                netrc.display()
            )
        );
        assert_eq!(
            why(
                vec![("NETRC", netrc_text.clone()), ("GOAUTH", "off".to_owned())],
                "proxy.corp.example"
            ),
            "GOAUTH=off"
        );
        assert_eq!(
            why(
                vec![("HOME", folder.path().display().to_string())],
                "proxy.corp.example"
            ),
            format!("{} does not exist", folder.path().join(".netrc").display())
        );
        assert_eq!(
            why(vec![], "proxy.corp.example"),
            "no .netrc to read: NETRC is not set and neither is HOME"
        );
        let missing = folder.path().join("no-such-helper");
        assert_eq!(
            why(
                vec![
                    ("GOAUTH", format!("netrc;{} --flag", missing.display())),
                    ("NETRC", netrc_text.clone())
                ],
                "other.example"
            ),
            format!(
                "{} has no complete `machine other.example` entry (machine, login and password); the GOAUTH command `{}` gave none: cannot run `{}`: No such file or directory (os error 2) (no such program: is it installed, and on PATH or named by an absolute path?)",
                netrc.display(),
                missing.display(),
                missing.display()
            )
        );
        let error = credentials(vec![("GOAUTH", "netrc;".to_owned())])
            .for_https("proxy.corp.example", "/x")
            .unwrap_err();
        assert_eq!(
            error,
            GoAuthError::EmptyCommand {
                value: "netrc;".to_owned()
            }
        );
    }

    /// A shell script `NAME` in `folder` with `body`, made executable.
    fn script(folder: &Path, name: &str, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt as _;
        let path = folder.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn header(found: &Found, name: &str) -> Option<String> {
        match found {
            Found::Attached(attached) => attached
                .headers()
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone()),
            Found::Nothing { .. } => None,
        }
    }

    fn origin(found: &Found) -> String {
        match found {
            Found::Attached(attached) => attached.origin.clone(),
            Found::Nothing { why } => format!("nothing: {why}"),
        }
    }

    /// Go's cache: the longest prefix at a `/` wins, and for one prefix the earlier method.
    #[test]
    fn methods_fill_one_cache_by_prefix_and_earlier_methods_win() {
        let folder = tempfile::tempdir().unwrap();
        let netrc = folder.path().join("netrc");
        std::fs::write(
            &netrc,
            "machine corp.example login ci password from-netrc\n",
        )
        .unwrap();
        let team = script(
            folder.path(),
            "team",
            "printf 'https://corp.example/team\\n\\nX-Token: team-token\\n\\n'",
        );
        let host = script(
            folder.path(),
            "host",
            "printf 'https://corp.example/\\n\\nAuthorization: Bearer host-token\\n\\n'",
        );
        let netrc_text = netrc.to_str().unwrap().to_owned();
        let credentials_for =
            |goauth: String| credentials(vec![("GOAUTH", goauth), ("NETRC", netrc_text.clone())]);
        let found = |credentials: &Credentials, path: &str| {
            credentials.for_https("corp.example", path).unwrap()
        };

        let credentials = credentials_for(format!("{team};netrc"));
        let under_team = found(&credentials, "/team/mod/@v/v1.0.0.zip");
        assert_eq!(
            header(&under_team, "X-Token").as_deref(),
            Some("team-token")
        );
        assert_eq!(
            origin(&under_team),
            format!("from the GOAUTH command `{team}`")
        );
        // `corp.example/teamx` is not under the prefix `corp.example/team`.
        let elsewhere = found(&credentials, "/teamx/mod/@v/v1.0.0.zip");
        assert!(
            header(&elsewhere, "Authorization").is_some_and(|value| value.starts_with("Basic ")),
            "{elsewhere:?}"
        );

        // The same prefix from two methods: the earlier one in GOAUTH.
        let netrc_first = found(&credentials_for(format!("netrc;{host}")), "/x");
        assert!(origin(&netrc_first).ends_with("(machine corp.example)"));
        let host_first = found(&credentials_for(format!("{host};netrc")), "/x");
        assert_eq!(
            header(&host_first, "Authorization").as_deref(),
            Some("Bearer host-token")
        );

        // A set with no headers removes what a later method stored for its prefix.
        let forget = script(
            folder.path(),
            "forget",
            "printf 'https://corp.example\\n\\n\\n'",
        );
        let forgotten = found(&credentials_for(format!("{forget};{host}")), "/x");
        assert_eq!(
            origin(&forgotten),
            format!(
                "nothing: the GOAUTH command `{forget}` gave none for this URL; the GOAUTH command `{host}` gave none for this URL"
            )
        );
        // Plain http:// prefixes never match (Go drops only `https://`).
        let http = script(
            folder.path(),
            "http",
            "printf 'http://corp.example\\n\\nX-A: b\\n\\n'",
        );
        assert!(matches!(
            found(&credentials_for(http), "/x"),
            Found::Nothing { .. }
        ));
    }

    /// Go's `AddCredentials`: the commands run once with no argument before the first
    /// request, then with the URL (and the answer's head on stdin) after a 4xx.
    #[test]
    fn commands_run_first_without_a_url_then_with_it_after_a_4xx() {
        let folder = tempfile::tempdir().unwrap();
        let log = folder.path().join("log");
        let helper = script(
            folder.path(),
            "helper",
            &format!(
                "echo \"args=$# $*\" >> {log}\ncat >> {log}\nfor last; do :; done\nif [ $# -gt 2 ]; then printf '%s\\n\\nAuthorization: Bearer for-the-url\\n\\n' \"$last\"; fi",
                log = log.display()
            ),
        );
        let credentials = credentials(vec![("GOAUTH", format!("{helper} --team a"))]);
        assert!(credentials.reruns_after_4xx());
        let path = "/mod/@v/v1.0.0.mod";
        let url = format!("https://corp.example{path}");
        let first = credentials.for_https("corp.example", path).unwrap();
        assert!(matches!(first, Found::Nothing { .. }), "{first:?}");
        // Once only: a second request does not run it again.
        credentials.for_https("corp.example", "/other").unwrap();
        let head = "HTTP/1.1 401 Unauthorized\nWww-Authenticate: Basic realm=\"x\"\n\n";
        let again = credentials
            .after_4xx("corp.example", path, &url, head)
            .unwrap();
        assert_eq!(
            header(&again, "Authorization").as_deref(),
            Some("Bearer for-the-url")
        );
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            format!("args=2 --team a\nargs=3 --team a {url}\n{head}")
        );
        // Stored: later requests for that URL get it at once.
        let later = credentials.for_https("corp.example", path).unwrap();
        assert_eq!(
            header(&later, "Authorization").as_deref(),
            Some("Bearer for-the-url")
        );
        // netrc alone never reruns.
        assert!(!super::Credentials::from_lookup(|_| None).reruns_after_4xx());
    }
}
