//! A small harness for running the real `kiln` binary and the real tools around it.
//!
//! Every kiln a test starts is hermetic by default ([`TestDir::kiln`]): its own HOME and
//! KILN_HOME inside the test's folder, and none of the variables of the person running the
//! tests that would change what kiln reads, fetches or writes ([`CLEARED`]).
//!
//! End-to-end tests need tools kiln did not write (Go, podman, docker, skopeo, umoci). With
//! `CI` or `KILN_TEST_REQUIRE_TOOLS` set they must be present: a missing tool fails the test.
//! Elsewhere a test that lacks one calls [`skip`], which prints a loud SKIPPED line that
//! plain `cargo test` shows, and lists every skip again after the test summary;
//! `scripts/test` installs every tool.

#![allow(dead_code)]

use std::borrow::BorrowMut;
use std::ffi::OsStr;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// A temporary folder for one test, with a private HOME.
pub struct TestDir {
    temp: tempfile::TempDir,
}

impl TestDir {
    pub fn new() -> Self {
        let temp = tempfile::Builder::new()
            .prefix("kiln-test-")
            .tempdir()
            .unwrap();
        std::fs::create_dir(temp.path().join("home")).unwrap();
        TestDir { temp }
    }

    pub fn path(&self) -> &Path {
        self.temp.path()
    }

    pub fn join(&self, relative: &str) -> PathBuf {
        self.temp.path().join(relative)
    }

    /// Write a file (creating folders) with `mode`.
    pub fn write(&self, relative: &str, content: impl AsRef<[u8]>, mode: u32) -> PathBuf {
        let path = self.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    pub fn symlink(&self, target: &str, relative: &str) {
        let path = self.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, path).unwrap();
    }

    /// `kiln ARGS` run in this folder, hermetic: HOME is `home` and KILN_HOME `kiln-home` in
    /// this folder, GOPROXY is `off` and the variables in [`CLEARED`] are unset. A test that
    /// wants another value sets it on the command.
    pub fn kiln<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kiln"));
        command
            .args(args)
            .current_dir(self.path())
            .env("HOME", self.join("home"))
            .env("KILN_HOME", self.join("kiln-home"))
            // Not merely unset: kiln's default is proxy.golang.org, and no test may reach it.
            .env("GOPROXY", "off")
            .stdin(Stdio::null());
        for name in CLEARED {
            command.env_remove(name);
        }
        command
    }

    /// `kiln ARGS` for a Go project: KILN_GO is `go` and PATH holds no other Go. Runs in
    /// `folder` (relative to this folder).
    pub fn kiln_go<I, S>(&self, go: &Path, folder: &str, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = self.kiln(args);
        command
            .current_dir(self.join(folder))
            .env("KILN_GO", go)
            .env("PATH", "/usr/bin:/bin");
        command
    }

    /// Copy a folder of tests/fixtures into this folder as `name`.
    pub fn fixture(&self, fixture: &str, name: &str) -> PathBuf {
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(fixture);
        let destination = self.join(name);
        copy_tree(&source, &destination);
        destination
    }

    /// Names in the folder (not recursive), sorted.
    pub fn listing(&self, relative: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.join(relative))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

/// Variables [`TestDir::kiln`] unsets, so that what the person running the tests has set
/// cannot decide a test's outcome or make kiln touch anything outside the test's folder:
///
/// - where the store is and which Go runs: XDG_CACHE_HOME (KILN_HOME is set), KILN_GO;
/// - where modules come from and how they are checked (kiln reads these as Go does), and the
///   settings and caches of the `go` that `kiln shell` starts with kiln's environment:
///   GOFLAGS, GOTOOLCHAIN, GOPRIVATE, GONOPROXY, GONOSUMDB, GOINSECURE, GOSUMDB, GOENV,
///   GOWORK, GOROOT, GOPATH, GOMODCACHE, GOCACHE and NETRC (GOPROXY is set to `off`);
/// - which registry credentials kiln finds: REGISTRY_AUTH_FILE, DOCKER_CONFIG,
///   XDG_RUNTIME_DIR and XDG_CONFIG_HOME (HOME is the test's own);
/// - which package index the static base asks: KILN_PYPI_URL;
/// - what the output holds and looks like: SOURCE_DATE_EPOCH, NO_COLOR.
///
/// Left as they are: PATH and DOCKER_HOST, which kiln must share with the tools a test runs
/// beside it (the `go` on PATH, the docker CLI's engine); SSL_CERT_FILE, SSL_CERT_DIR and
/// the proxy variables, which matter only for hosts other than loopback, and no test
/// reaches one (kiln never sends loopback requests through a proxy).
pub const CLEARED: &[&str] = &[
    "XDG_CACHE_HOME",
    "KILN_GO",
    "GOFLAGS",
    "GOTOOLCHAIN",
    "GOPRIVATE",
    "GONOPROXY",
    "GONOSUMDB",
    "GOINSECURE",
    "GOSUMDB",
    "GOENV",
    "GOWORK",
    "GOROOT",
    "GOPATH",
    "GOMODCACHE",
    "GOCACHE",
    "NETRC",
    "REGISTRY_AUTH_FILE",
    "DOCKER_CONFIG",
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
    "KILN_PYPI_URL",
    "SOURCE_DATE_EPOCH",
    "NO_COLOR",
];

/// Copy files, folders and symlinks.
pub fn copy_tree(source: &Path, destination: &Path) {
    std::fs::create_dir_all(destination).unwrap();
    for entry in std::fs::read_dir(source).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        let target = destination.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), target).unwrap();
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The Go toolchain for a test, or `None` after a [`skip`].
#[track_caller]
pub fn require_go(test: &str) -> Option<PathBuf> {
    let found = go();
    if found.is_none() {
        skip(test, "no Go toolchain (scripts/test installs one)");
    }
    found
}

/// `test`, or a part of it, cannot run here: `why` says what is missing. In CI that fails the
/// test (CI must run every end-to-end test); elsewhere this prints a loud SKIPPED line and the
/// caller returns (or leaves the part out). Every skip of the cli tests goes through here.
///
/// The line is written to the process's stderr itself: `eprintln!` would go to the output the
/// test harness captures and shows only for failing tests, so a skipped test would look like
/// any other that passed. Every skip is listed once more when the test binary exits, after the
/// `test result:` line.
#[track_caller]
pub fn skip(test: &str, why: &str) {
    let message = format!("SKIPPED {test}: {why}");
    if in_ci() {
        panic!("{message}; CI must run every end-to-end test");
    }
    let _ = writeln!(std::io::stderr(), "\n!!!!!!!! {message}\n");
    static LISTED: OnceLock<()> = OnceLock::new();
    LISTED.get_or_init(|| {
        // SAFETY: `list_skips` is an `extern "C" fn` that takes nothing and never unwinds.
        unsafe { libc::atexit(list_skips) };
    });
    SKIPS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(message);
}

/// Every [`skip`] of this test run.
static SKIPS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Prints the skips, sorted, at exit (registered with `atexit` by the first [`skip`]).
extern "C" fn list_skips() {
    let mut skips = SKIPS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    skips.sort();
    let mut text = format!(
        "\n!!!!!!!! {} skipped, counted above as passed (scripts/test installs every tool; with CI or KILN_TEST_REQUIRE_TOOLS set, a skip fails):\n",
        skips.len()
    );
    for skip in &skips {
        text.push_str(&format!("  {skip}\n"));
    }
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// Run and capture.
pub fn run(mut command: impl BorrowMut<Command>) -> Output {
    let command = command.borrow_mut();
    command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"))
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Run, require success, return stdout.
#[track_caller]
pub fn success(mut command: impl BorrowMut<Command>) -> String {
    let command = command.borrow_mut();
    let output = run(&mut *command);
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        stdout(&output),
        stderr(&output)
    );
    stdout(&output)
}

/// Run, require exit code 1 and an error on stderr containing every one of `needles`;
/// returns stderr.
#[track_caller]
pub fn failure(mut command: impl BorrowMut<Command>, needles: &[&str]) -> String {
    let command = command.borrow_mut();
    let output = run(&mut *command);
    let text = stderr(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{command:?} should fail with exit code 1:\nstdout:\n{}\nstderr:\n{text}",
        stdout(&output)
    );
    assert!(
        text.lines().any(|line| line.starts_with("error: ")),
        "no `error:` line: {text}"
    );
    assert!(!text.contains("panicked"), "kiln panicked: {text}");
    for needle in needles {
        assert!(text.contains(needle), "stderr lacks `{needle}`:\n{text}");
    }
    text
}

pub fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// Whether every end-to-end test must run: in CI, and under scripts/test (which installs
/// every tool first).
pub fn in_ci() -> bool {
    let set = |name: &str| {
        std::env::var_os(name)
            .is_some_and(|value| !value.is_empty() && value != "false" && value != "0")
    };
    set("CI") || set("KILN_TEST_REQUIRE_TOOLS")
}

/// Whether `tool` is on PATH; if not, after a [`skip`], false.
#[track_caller]
pub fn require(tool: &str, test: &str) -> bool {
    let found = which(tool).is_some();
    if !found {
        skip(
            test,
            &format!("`{tool}` is not installed (scripts/test installs it)"),
        );
    }
    found
}

/// The folder holding the Python validators (`pyspdxtools`, and a `python` with jsonschema,
/// lib4sbom and packageurl-python): `KILN_TEST_PYTHON_TOOLS`, as `scripts/tools.sh`'s
/// `ensure_python_tools` sets it; if there is none, `None` after a [`skip`].
#[track_caller]
pub fn require_python_tools(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("KILN_TEST_PYTHON_TOOLS")
        .map(PathBuf::from)
        .filter(|folder| folder.join("pyspdxtools").is_file() && folder.join("python").exists());
    if found.is_none() {
        skip(
            test,
            "KILN_TEST_PYTHON_TOOLS names no folder with pyspdxtools and python (scripts/test installs them into .venv)",
        );
    }
    found
}

pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|folder| folder.join(tool))
        .find(|candidate| candidate.is_file())
}

/// Where shared test artefacts live (inside the cargo target folder).
pub fn artefacts() -> PathBuf {
    let folder = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kiln-cli-tests");
    std::fs::create_dir_all(&folder).unwrap();
    folder
}

/// The Go toolchain: `KILN_TEST_GO`, else `go` on PATH.
pub fn go() -> Option<PathBuf> {
    std::env::var_os("KILN_TEST_GO")
        .map(PathBuf::from)
        .or_else(|| which("go"))
}

/// examples/hello built as a static binary (once per test run).
#[track_caller]
pub fn hello_binary(test: &str) -> Option<PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let go = go()?;
        let output = artefacts().join("hello");
        let status = Command::new(go)
            .args(["build", "-trimpath", "-buildvcs=false", "-o"])
            .arg(&output)
            .arg(".")
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello"))
            .env("CGO_ENABLED", "0")
            .env("GOFLAGS", "")
            .env("GOTOOLCHAIN", "local")
            .env("GOPROXY", "off")
            .env("GOCACHE", artefacts().join("gocache"))
            .env("GOPATH", artefacts().join("gopath"))
            .status()
            .ok()?;
        status.success().then_some(output)
    });
    if built.is_none() {
        skip(
            test,
            "no Go toolchain to build examples/hello (scripts/test installs one)",
        );
    }
    built.clone()
}

/// The containers.conf podman needs on these machines (runc, no default ulimits):
/// `CONTAINERS_CONF` when set, else one written for the tests.
pub fn containers_conf() -> PathBuf {
    if let Some(path) = std::env::var_os("CONTAINERS_CONF") {
        return PathBuf::from(path);
    }
    let path = artefacts().join("containers.conf");
    std::fs::write(
        &path,
        "[containers]\ndefault_ulimits = []\n[engine]\nruntime = \"runc\"\n",
    )
    .unwrap();
    path
}

pub fn podman() -> Command {
    let mut command = Command::new("podman");
    command.env("CONTAINERS_CONF", containers_conf());
    command
}

/// Docker engines the docker CLI can reach: the one at DOCKER_HOST (or the default socket)
/// when it answers, and podman's Docker-compatible socket when `KILN_TEST_PODMAN_SOCKET`
/// names one. Each is a DOCKER_HOST value (`None` = the CLI's default). None at all is a
/// [`skip`].
pub fn docker_engines(test: &str) -> Vec<Option<String>> {
    static ENGINES: OnceLock<Vec<Option<String>>> = OnceLock::new();
    let engines = ENGINES.get_or_init(|| {
        let mut engines = Vec::new();
        if which("docker").is_none() {
            return engines;
        }
        let answers = |host: Option<&str>| {
            let mut command = Command::new("docker");
            command.args(["version", "--format", "{{.Server.Version}}"]);
            if let Some(host) = host {
                command.env("DOCKER_HOST", host);
            }
            command
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        };
        if answers(None) {
            engines.push(None);
        }
        if let Some(socket) = std::env::var_os("KILN_TEST_PODMAN_SOCKET") {
            let host = format!("unix://{}", socket.to_string_lossy());
            if answers(Some(&host)) {
                engines.push(Some(host));
            }
        }
        engines
    });
    if engines.is_empty() {
        skip(
            test,
            "no Docker engine answers (neither Docker nor podman's socket)",
        );
    }
    engines.clone()
}

pub fn docker(host: &Option<String>) -> Command {
    let mut command = Command::new("docker");
    if let Some(host) = host {
        command.env("DOCKER_HOST", host);
    }
    command
}

/// A name no other test (or test run) uses, for images loaded into shared engines.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "kiln-test-{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// Removes images from an engine when dropped.
pub struct LoadedImages {
    pub cleanups: Vec<Command>,
}

impl Drop for LoadedImages {
    fn drop(&mut self) {
        for command in &mut self.cleanups {
            let _ = command.stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
    }
}

/// `command` (a kiln from [`TestDir::kiln`]) run as the user nobody through `setpriv`, in the
/// same folder with the same environment.
pub fn as_nobody(command: &Command) -> Command {
    wrapped(
        "setpriv",
        &["--reuid=65534", "--regid=65534", "--clear-groups"],
        command,
    )
}

/// `command` run by `program ARGUMENTS` (`setpriv …`, `unshare -n`), which then executes it:
/// the same program and arguments, in the same folder, with the same environment (variables
/// set and removed alike), and stdin closed.
pub fn wrapped(program: &str, arguments: &[&str], command: &Command) -> Command {
    let mut wrapped = Command::new(program);
    wrapped
        .args(arguments)
        .arg(command.get_program())
        .args(command.get_args())
        .stdin(Stdio::null());
    if let Some(folder) = command.get_current_dir() {
        wrapped.current_dir(folder);
    }
    for (name, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(name, value),
            None => wrapped.env_remove(name),
        };
    }
    wrapped
}

/// A wrapped command runs the same program with the same arguments, in the same folder,
/// with the variables set and removed as the command had them.
#[test]
fn wrapped_commands_keep_their_folder_arguments_and_environment() {
    let folder = tempfile::tempdir().unwrap();
    let mut command = Command::new("sh");
    command
        .args([
            "-c",
            "pwd; echo \"$0 $1\"; echo \"$KILN_WRAPPED\"; echo \"${HOME-unset}\"",
            "first",
            "second",
        ])
        .current_dir(folder.path())
        .env("KILN_WRAPPED", "set")
        .env_remove("HOME");
    let output = wrapped("env", &["--"], &command).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!(
            "{}\nfirst second\nset\nunset\n",
            folder.path().canonicalize().unwrap().display()
        )
    );
}

/// Whether the tests run as root (who reads any file and needs no `--rootless`).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        .unwrap_or(false)
}

/// `git ARGUMENTS` in `folder` with a fixed identity and date, checked; its stdout.
#[track_caller]
pub fn git(folder: &Path, arguments: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(folder)
        .args(arguments)
        .env("GIT_AUTHOR_NAME", "kiln tests")
        .env("GIT_AUTHOR_EMAIL", "tests@kiln.invalid")
        .env("GIT_COMMITTER_NAME", "kiln tests")
        .env("GIT_COMMITTER_EMAIL", "tests@kiln.invalid")
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
        .output()
        .unwrap();
    assert!(output.status.success(), "git {arguments:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}
