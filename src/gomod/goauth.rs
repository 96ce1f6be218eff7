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
//! of the longest stored prefix of its URL ([`super::netrc::Netrc::lookup`]).
//!
//! **What Go does with them:** they are added only to `https://` requests (proxies and
//! `?go-get=1` lookups), never to plain HTTP, GOINSECURE or not. Credentials found this way
//! set the `Authorization` header, and Go's net/http uses a URL's userinfo only when no
//! such header is set: a `.netrc` entry therefore beats `https://user:pass@host/` in GOPROXY.
//! kiln does the same.
//!
//! **What kiln's GOPROXY client does** (see [`Credentials`]): `off` and `netrc` as Go;
//! `git DIR` as Go runs it: only after an HTTPS request got 401/403, `git credential fill`
//! in DIR with `url=URL` ([`git_credential_fill`], git never prompting), the request made
//! once more with that user and password as basic auth, and `git credential approve` or
//! `reject` after it. Unlike Go, kiln checks them with the retried GET itself (Go sends a
//! HEAD first, up to three fills) and keeps nothing between requests, so every 401 asks git
//! again. Command methods are checked as Go checks them but not run (a refusal then says
//! so), so for proxies they give no credentials yet. Version-control fetches are left to the
//! go command itself, which reads GOAUTH, `.netrc` and git's credential helpers on its own.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

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

    pub fn uses_netrc(&self) -> bool {
        self.methods.contains(&Method::Netrc)
    }

    /// Whether it holds a command method, which kiln's proxy client does not run.
    pub fn has_unrun_methods(&self) -> bool {
        self.methods
            .iter()
            .any(|method| matches!(method, Method::Command { .. }))
    }

    /// The folder of its first `git DIR` method (the one whose credentials win).
    pub fn git_folder(&self) -> Option<&Path> {
        self.methods.iter().find_map(|method| match method {
            Method::Git { folder } => Some(folder.as_path()),
            _ => None,
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

/// What a [`Credentials`] lookup found for a URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// A `.netrc` entry: the `Authorization` value, and where it came from for messages.
    Netrc {
        authorization: String,
        file: PathBuf,
        machine: String,
    },
    /// Nothing; `why` says why, for a refusal's message (never holding a secret).
    Nothing { why: String },
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

/// The credentials for kiln's HTTPS proxy requests, as GOAUTH says: read lazily, at the first
/// HTTPS request, as Go does (so a bad GOAUTH or an unreadable `.netrc` matters only then).
#[derive(Debug)]
pub struct Credentials {
    env: AuthEnv,
    loaded: OnceLock<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    goauth: Result<GoAuth, GoAuthError>,
    /// `None` when GOAUTH does not use `.netrc`.
    netrc: Option<Result<Netrc, NetrcError>>,
}

impl Credentials {
    pub fn new(env: &AuthEnv) -> Credentials {
        Credentials {
            env: env.clone(),
            loaded: OnceLock::new(),
        }
    }

    /// From the environment `lookup` reads: GOAUTH, NETRC and HOME.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Credentials {
        Credentials::new(&AuthEnv::from_lookup(lookup))
    }

    fn loaded(&self) -> &Loaded {
        self.loaded.get_or_init(|| {
            let goauth = GoAuth::parse(self.env.goauth.as_deref());
            let netrc = match &goauth {
                Ok(goauth) if goauth.uses_netrc() => Some(match &self.env.netrc_file {
                    Some(path) => Netrc::read(path),
                    None => Err(NetrcError::NoHome),
                }),
                _ => None,
            };
            Loaded { goauth, netrc }
        })
    }

    /// The credentials for `https://HOST/PATH` (`host` with its port when the URL has one,
    /// `path` escaped). Only for HTTPS URLs: Go sends none over plain HTTP.
    pub fn for_https(&self, host: &str, path: &str) -> Result<Found, GoAuthError> {
        let loaded = self.loaded();
        let goauth = loaded.goauth.as_ref().map_err(Clone::clone)?;
        let unrun = if goauth.has_unrun_methods() {
            format!(
                "; GOAUTH={} also names command methods, which kiln does not run for proxies",
                goauth.value
            )
        } else {
            String::new()
        };
        let why = match &loaded.netrc {
            None if goauth.methods == [Method::Off] => "GOAUTH=off".to_owned(),
            None => format!("GOAUTH={} does not include netrc", goauth.value),
            Some(Err(error)) => error.to_string(),
            Some(Ok(netrc)) if !netrc.exists() => {
                format!("{} does not exist", netrc.path().display())
            }
            Some(Ok(netrc)) => match netrc.lookup(host, path) {
                Some(entry) => {
                    return Ok(Found::Netrc {
                        authorization: entry.basic_authorization(),
                        file: netrc.path().to_owned(),
                        machine: entry.machine.clone(),
                    });
                }
                None => format!(
                    "{} has no complete `machine {host}` entry (machine, login and password)",
                    netrc.path().display()
                ),
            },
        };
        Ok(Found::Nothing {
            why: format!("{why}{unrun}"),
        })
    }

    /// The folder of GOAUTH's `git DIR` method, if it has one (and GOAUTH is valid).
    pub fn git_folder(&self) -> Option<PathBuf> {
        let loaded = self.loaded();
        loaded
            .goauth
            .as_ref()
            .ok()?
            .git_folder()
            .map(Path::to_owned)
    }

    /// Where a `.netrc` entry would go, for hints: the file GOAUTH's netrc reads.
    pub fn netrc_file(&self) -> Option<&Path> {
        self.env.netrc_file.as_deref()
    }
}

/// Credentials `git credential fill` gave for a URL (GOAUTH's `git DIR` method): the
/// `Authorization` value, and git's own answer, kept to tell git whether they worked.
/// `Debug` shows neither.
pub struct GitCredential {
    pub authorization: String,
    folder: PathBuf,
    answer: String,
}

impl std::fmt::Debug for GitCredential {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("GitCredential")
            .field("folder", &self.folder)
            .finish_non_exhaustive()
    }
}

/// `git credential fill` in `folder` for `url` (Go's `runGitAuth`: `url=URL` on stdin; the
/// answer's `username=` and `password=` lines become basic auth). Git may not prompt
/// (GIT_TERMINAL_PROMPT=0: kiln never waits on a terminal); `None` when git gives no
/// complete credential or cannot run.
pub fn git_credential_fill(folder: &Path, url: &str) -> Option<GitCredential> {
    let answer = run_git_credential(folder, "fill", &format!("url={url}\n"))?;
    let field = |name: &str| {
        answer
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
            .filter(|value| !value.is_empty())
    };
    let (username, password) = (field("username")?, field("password")?);
    use base64::Engine as _;
    let authorization = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
    );
    Some(GitCredential {
        authorization,
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

fn run_git_credential(folder: &Path, action: &str, input: &str) -> Option<String> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new("git")
        .args(["credential", action])
        .current_dir(folder)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let written = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().ok()?;
    (written.is_some_and(|written| written.is_ok()) && output.status.success())
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
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
        let Found::Netrc {
            authorization,
            file,
            machine,
        } = &found
        else {
            panic!("{found:?}")
        };
        assert_eq!(file, &netrc);
        assert_eq!(machine, "proxy.corp.example");
        assert!(authorization.starts_with("Basic "));
        assert!(!format!("{found:?}").contains("hunter2"));

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
        assert_eq!(
            why(
                vec![("GOAUTH", "/usr/bin/helper".to_owned())],
                "proxy.corp.example"
            ),
            "GOAUTH=/usr/bin/helper does not include netrc; GOAUTH=/usr/bin/helper also names command methods, which kiln does not run for proxies"
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
}
