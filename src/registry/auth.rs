//! Registry credentials, found where Docker and podman keep them.
//!
//! Files, first match wins:
//! 1. `REGISTRY_AUTH_FILE` (podman, skopeo and buildah honour it), else podman's
//!    `$XDG_RUNTIME_DIR/containers/auth.json`, then `~/.config/containers/auth.json`;
//! 2. Docker's `config.json`: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
//!
//! In each file, as Docker resolves them: `credHelpers[registry]` names a helper for that
//! registry; else an `auths` entry (`auth` = base64 of `user:password`, or `username` and
//! `password`, or an `identitytoken`); else `credsStore` names a helper for every registry.
//! podman's auth.json may key entries by `registry/namespace[/repo]`; the longest key that
//! prefixes the repository wins. Docker Hub's key is `https://index.docker.io/v1/`.
//!
//! A helper is `docker-credential-NAME` on PATH, run as `get` with the server URL on stdin; it
//! prints `{"ServerURL","Username","Secret"}`, and `Username` `<token>` means the secret is an
//! identity (refresh) token. "credentials not found" means none.
//!
//! Secrets are held in [`Secret`], whose `Debug` and `Display` print `***`, and no error here
//! quotes a file's content.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use serde::Deserialize;

use crate::diagnostic::Hint;

/// The key Docker's config.json uses for Docker Hub.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// A password or token: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Self {
        Secret(text.into())
    }

    /// The secret itself, for an `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("***")
    }
}

/// What kiln presents to a registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// A user name and password (or a personal access token used as one).
    Basic { username: String, password: Secret },
    /// An OAuth2 refresh token (`identitytoken`, or a helper's `<token>` user).
    IdentityToken(Secret),
}

impl Credentials {
    /// The `Authorization: Basic …` value, for basic challenges and token requests.
    pub fn basic_header(&self) -> Option<String> {
        match self {
            Credentials::Basic { username, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{}", password.expose()))
            )),
            Credentials::IdentityToken(_) => None,
        }
    }

    pub fn username(&self) -> Option<&str> {
        match self {
            Credentials::Basic { username, .. } => Some(username),
            Credentials::IdentityToken(_) => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a valid credentials file: {reason}", .path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("{}: the `auth` entry for {key} is not base64 of `user:password`", .path.display())]
    BadAuthEntry { path: PathBuf, key: String },
    #[error("cannot run the credential helper `docker-credential-{helper}` for {registry}")]
    HelperMissing {
        helper: String,
        registry: String,
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the credential helper `docker-credential-{helper}` failed for {registry}: {message}")]
    HelperFailed {
        helper: String,
        registry: String,
        message: String,
    },
}

impl Hint for AuthError {
    fn hint(&self) -> Option<String> {
        match self {
            AuthError::BadAuthEntry { key, .. } => {
                Some(format!("log in again (`docker login {key}`)"))
            }
            AuthError::HelperMissing { helper, file, .. } => Some(format!(
                "install it, or remove `{helper}` from {}",
                file.display()
            )),
            _ => None,
        }
    }
}

/// One credentials file's content, as Docker and podman write it.
#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// The credentials files kiln consults, in order.
#[derive(Clone, Debug)]
pub struct CredentialFiles {
    files: Vec<PathBuf>,
}

impl CredentialFiles {
    /// The files named by the environment (see the module documentation).
    pub fn from_env() -> Self {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let variable = |name: &str| {
            std::env::var_os(name)
                .filter(|value| !value.is_empty())
                .map(PathBuf::from)
        };
        let mut files = Vec::new();
        if let Some(file) = variable("REGISTRY_AUTH_FILE") {
            files.push(file);
        } else {
            if let Some(runtime) = variable("XDG_RUNTIME_DIR") {
                files.push(runtime.join("containers/auth.json"));
            }
            let config_home = variable("XDG_CONFIG_HOME")
                .or_else(|| home.as_ref().map(|home| home.join(".config")));
            if let Some(config_home) = config_home {
                files.push(config_home.join("containers/auth.json"));
            }
        }
        match variable("DOCKER_CONFIG") {
            Some(folder) => files.push(folder.join("config.json")),
            None => {
                if let Some(home) = &home {
                    files.push(home.join(".docker/config.json"));
                }
            }
        }
        CredentialFiles { files }
    }

    pub fn new(files: Vec<PathBuf>) -> Self {
        CredentialFiles { files }
    }

    /// The credentials for `repository` on `registry` (`docker.io`, `localhost:5000`), if any
    /// file has them.
    pub fn lookup(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<Option<Credentials>, AuthError> {
        for path in &self.files {
            let config = match read_config(path)? {
                Some(config) => config,
                None => continue,
            };
            if let Some(found) = lookup_in(&config, path, registry, repository)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }
}

fn read_config(path: &Path) -> Result<Option<ConfigFile>, AuthError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(AuthError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    // Only where the file is wrong: serde_json's messages quote the values they reject,
    // and a value here may be a password.
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|error| AuthError::Invalid {
            path: path.to_owned(),
            reason: format!(
                "{} at line {}, column {}",
                match error.classify() {
                    serde_json::error::Category::Syntax | serde_json::error::Category::Eof =>
                        "broken JSON",
                    _ => "an entry of the wrong type",
                },
                error.line(),
                error.column()
            ),
        })
}

/// `https://index.docker.io/v1/` → `docker.io`; `https://host:5000/v2/` → `host:5000`;
/// `host/ns/repo` stays.
fn normalise_key(key: &str) -> String {
    let without_scheme = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let trimmed = without_scheme.trim_end_matches('/');
    let trimmed = trimmed
        .strip_suffix("/v1")
        .or_else(|| trimmed.strip_suffix("/v2"))
        .unwrap_or(trimmed);
    match trimmed {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_owned()
        }
        other => other.to_owned(),
    }
}

/// The server URL a helper is asked about (Docker asks with the config's key form).
fn helper_server_url(registry: &str) -> String {
    if registry == crate::oci::reference::DOCKER_HUB {
        DOCKER_HUB_AUTH_KEY.to_owned()
    } else {
        registry.to_owned()
    }
}

fn lookup_in(
    config: &ConfigFile,
    path: &Path,
    registry: &str,
    repository: &str,
) -> Result<Option<Credentials>, AuthError> {
    for (key, helper) in &config.cred_helpers {
        if normalise_key(key) == registry {
            return run_helper(helper, registry, path);
        }
    }
    let full_name = format!("{registry}/{repository}");
    let mut best: Option<(usize, &String, &AuthEntry)> = None;
    for (key, entry) in &config.auths {
        let normalised = normalise_key(key);
        let matches = normalised == registry
            || full_name == normalised
            || full_name.starts_with(&format!("{normalised}/"));
        if matches && best.is_none_or(|(length, _, _)| normalised.len() > length) {
            best = Some((normalised.len(), key, entry));
        }
    }
    if let Some((_, key, entry)) = best
        && let Some(found) = credentials_of(entry, key, path)?
    {
        return Ok(Some(found));
    }
    match &config.creds_store {
        Some(helper) if !helper.is_empty() => run_helper(helper, registry, path),
        _ => Ok(None),
    }
}

fn credentials_of(
    entry: &AuthEntry,
    key: &str,
    path: &Path,
) -> Result<Option<Credentials>, AuthError> {
    if let Some(token) = entry
        .identitytoken
        .as_deref()
        .filter(|token| !token.is_empty())
    {
        return Ok(Some(Credentials::IdentityToken(Secret::new(token))));
    }
    if let Some(auth) = entry.auth.as_deref().filter(|auth| !auth.is_empty()) {
        let bad = || AuthError::BadAuthEntry {
            path: path.to_owned(),
            key: key.to_owned(),
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad())?;
        let text = String::from_utf8(decoded).map_err(|_| bad())?;
        let (username, password) = text.split_once(':').ok_or_else(bad)?;
        return Ok(Some(Credentials::Basic {
            username: username.to_owned(),
            password: Secret::new(password),
        }));
    }
    match (&entry.username, &entry.password) {
        (Some(username), Some(password)) if !username.is_empty() => Ok(Some(Credentials::Basic {
            username: username.clone(),
            password: Secret::new(password.as_str()),
        })),
        _ => Ok(None),
    }
}

fn run_helper(helper: &str, registry: &str, file: &Path) -> Result<Option<Credentials>, AuthError> {
    let program = PathBuf::from(format!("docker-credential-{helper}"));
    run_helper_program(&program, helper, registry, file)
}

/// Run a helper program (`docker-credential-NAME`, found on PATH unless a path is given).
fn run_helper_program(
    program: &Path,
    helper: &str,
    registry: &str,
    file: &Path,
) -> Result<Option<Credentials>, AuthError> {
    let mut child = Command::new(program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| AuthError::HelperMissing {
            helper: helper.to_owned(),
            registry: registry.to_owned(),
            file: file.to_owned(),
            source,
        })?;
    let server_url = helper_server_url(registry);
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading is judged by its exit status below.
        let _ = stdin.write_all(server_url.as_bytes());
    }
    let output = child
        .wait_with_output()
        .map_err(|source| AuthError::HelperMissing {
            helper: helper.to_owned(),
            registry: registry.to_owned(),
            file: file.to_owned(),
            source,
        })?;
    let failed = |message: String| AuthError::HelperFailed {
        helper: helper.to_owned(),
        registry: registry.to_owned(),
        message,
    };
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        if said.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        // The helper's own words, first line only: helpers report errors, not secrets.
        let first_line = said.lines().next().unwrap_or("").trim().to_owned();
        return Err(failed(format!("{} ({first_line})", output.status)));
    }
    let answer: HelperAnswer = serde_json::from_slice(&output.stdout)
        .map_err(|error| failed(format!("its answer is not the expected JSON: {error}")))?;
    if answer.secret.is_empty() {
        return Ok(None);
    }
    if answer.username == "<token>" {
        return Ok(Some(Credentials::IdentityToken(Secret::new(answer.secret))));
    }
    Ok(Some(Credentials::Basic {
        username: answer.username,
        password: Secret::new(answer.secret),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(folder: &Path, name: &str, text: &str) -> PathBuf {
        let path = folder.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn auths_entries_in_every_form() {
        let folder = tempfile::tempdir().unwrap();
        let docker = write(
            folder.path(),
            "config.json",
            r#"{"auths": {
                "https://index.docker.io/v1/": {"auth": "aHViOmh1YnNlY3JldA=="},
                "localhost:5000": {"username": "alice", "password": "pw"},
                "ghcr.io": {"identitytoken": "refresh"}
            }}"#,
        );
        let files = CredentialFiles::new(vec![docker]);
        assert_eq!(
            files.lookup("docker.io", "library/alpine").unwrap(),
            Some(Credentials::Basic {
                username: "hub".into(),
                password: Secret::new("hubsecret")
            })
        );
        assert_eq!(
            files.lookup("localhost:5000", "app").unwrap(),
            Some(Credentials::Basic {
                username: "alice".into(),
                password: Secret::new("pw")
            })
        );
        assert_eq!(
            files.lookup("ghcr.io", "team/app").unwrap(),
            Some(Credentials::IdentityToken(Secret::new("refresh")))
        );
        assert_eq!(files.lookup("quay.io", "x").unwrap(), None);
    }

    #[test]
    fn podman_auth_file_comes_first_and_the_longest_key_wins() {
        let folder = tempfile::tempdir().unwrap();
        let podman = write(
            folder.path(),
            "auth.json",
            r#"{"auths": {
                "registry.example": {"auth": "YTph"},
                "registry.example/team": {"auth": "Yjpi"}
            }}"#,
        );
        let docker = write(
            folder.path(),
            "config.json",
            r#"{"auths": {"registry.example": {"auth": "Yzpj"}, "other.example": {"auth": "ZDpk"}}}"#,
        );
        let files = CredentialFiles::new(vec![podman, docker]);
        let user = |registry: &str, repository: &str| {
            files
                .lookup(registry, repository)
                .unwrap()
                .and_then(|found| found.username().map(str::to_owned))
        };
        assert_eq!(user("registry.example", "team/app").as_deref(), Some("b"));
        assert_eq!(
            user("registry.example", "teamster/app").as_deref(),
            Some("a")
        );
        assert_eq!(user("other.example", "x").as_deref(), Some("d"));
    }

    #[test]
    fn secrets_never_print() {
        let credentials = Credentials::Basic {
            username: "alice".into(),
            password: Secret::new("hunter2"),
        };
        assert!(!format!("{credentials:?}").contains("hunter2"));
        assert_eq!(Secret::new("hunter2").to_string(), "***");
        assert_eq!(
            credentials.basic_header().unwrap(),
            "Basic YWxpY2U6aHVudGVyMg=="
        );
    }

    #[test]
    fn broken_files_are_named_without_their_content() {
        let folder = tempfile::tempdir().unwrap();
        let broken = write(folder.path(), "config.json", r#"{"auths": {"x": "hunter2""#);
        let error = CredentialFiles::new(vec![broken.clone()])
            .lookup("x", "y")
            .unwrap_err()
            .to_string();
        assert!(error.contains(&broken.display().to_string()), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
        let bad_auth = write(
            folder.path(),
            "bad.json",
            r#"{"auths": {"x": {"auth": "!!"}}}"#,
        );
        let error = CredentialFiles::new(vec![bad_auth])
            .lookup("x", "y")
            .unwrap_err()
            .to_string();
        assert!(error.contains("not base64"), "{error}");
    }

    #[test]
    fn helpers_speak_the_docker_protocol() {
        let folder = tempfile::tempdir().unwrap();
        let helper = folder.path().join("docker-credential-kilntest");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread -r server\ncase \"$server\" in\n  reg.example) echo '{\"ServerURL\":\"reg.example\",\"Username\":\"bob\",\"Secret\":\"s3\"}' ;;\n  tok.example) echo '{\"Username\":\"<token>\",\"Secret\":\"refresh\"}' ;;\n  broken.example) echo 'keychain locked' >&2; exit 3 ;;\n  *) echo 'credentials not found in native keychain'; exit 1 ;;\nesac\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let run = |registry: &str| {
            run_helper_program(&helper, "kilntest", registry, Path::new("config.json"))
        };
        assert_eq!(
            run("reg.example").unwrap(),
            Some(Credentials::Basic {
                username: "bob".into(),
                password: Secret::new("s3")
            })
        );
        assert_eq!(
            run("tok.example").unwrap(),
            Some(Credentials::IdentityToken(Secret::new("refresh")))
        );
        assert_eq!(run("nothing.example").unwrap(), None);
        let error = run("broken.example").unwrap_err().to_string();
        assert!(error.contains("keychain locked"), "{error}");
        let missing = run_helper(
            "kiln-no-such-helper",
            "reg.example",
            Path::new("config.json"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            missing.contains("docker-credential-kiln-no-such-helper"),
            "{missing}"
        );
    }
}
