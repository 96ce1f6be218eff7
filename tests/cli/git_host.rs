//! A real private git host for the tests: `git http-backend` (git's own smart-HTTP server, run
//! as CGI) behind Debian's lighttpd, with HTTP basic auth, TLS from a CA made for the test, and
//! Go's `?go-get=1` discovery, reachable as `https://git.corp.example/…` from inside a network
//! namespace of the test's own (issue 19, "Real components in the tests").
//!
//! Why these parts:
//! - **lighttpd** (Debian's `lighttpd` and `lighttpd-mod-openssl`): a small, maintained web
//!   server with CGI, basic auth from a plain user file, TLS and URL rewriting in one process,
//!   configured by one file; git's own documentation (git-http-backend(1)) gives its
//!   configuration. Python's `http.server` CGI handler is deprecated (removed in Python 3.15)
//!   and speaks HTTP/1.0 only; nginx needs fcgiwrap beside it (two processes, a socket); a
//!   CGI runner written here would be a server nobody else runs.
//! - **`ip netns`**: the namespace has only a loopback interface, and `ip netns exec`
//!   bind-mounts `/etc/netns/NAME/hosts` over `/etc/hosts` for what it runs, so
//!   `git.corp.example` resolves to 127.0.0.1 there and nowhere else: the machine's
//!   /etc/hosts is never touched, and nothing inside can reach the real network.
//! - **TLS from the `openssl` CLI** (there whenever ca-certificates is): a CA and a leaf for
//!   the host name, made per test. Go reads the CA from `SSL_CERT_FILE`; Debian's git links
//!   curl with GnuTLS, which ignores `SSL_CERT_FILE`, so git is given `GIT_SSL_CAINFO` too
//!   ([`GitHost::command`] sets both). Without TLS the host serves plain HTTP on port 80,
//!   for `GOINSECURE`.
//!
//! What it serves, for each repository `PATH` a test adds ([`GitHost::repository`]):
//! - `/PATH.git/…`: the repository through `git http-backend`, behind basic auth (the user
//!   and password of [`GitHostOptions`]); wrong or missing credentials get `401` with
//!   `WWW-Authenticate: Basic realm="HOST"`.
//! - `/PATH?go-get=1` (and `/PATH/?go-get=1`): an HTML page with
//!   `<meta name="go-import" content="HOST/PATH git SCHEME://HOST/PATH.git">`, without auth
//!   (as GitHub and GitLab answer it; behind the basic auth with
//!   [`GitHostOptions::go_get_needs_auth`]), unless [`GitHostOptions::go_get`] is false: then
//!   `404`.
//!
//! and, for every test, a private module proxy: `/goproxy/…` serves the files a test puts in
//! [`GitHost::proxy_folder`] (a GOPROXY layout) behind the same basic auth.
//!
//! and, when a test asks for it ([`GitHost::start_ssh`]), Debian's sshd on port 22 of the
//! same namespace, serving the same repositories over ssh ([`SshServer`]).
//!
//! Requirements: root (for `ip netns`), `ip` (iproute2), `lighttpd` with `mod_openssl`,
//! `openssl` and `git` (and `sshd`, `ssh`, `ssh-keygen` for [`SshServer`]). Without one, [`GitHost::start`] calls [`skip`] (which fails the test
//! under `KILN_TEST_REQUIRE_TOOLS`/`CI`). Dropping the host stops lighttpd by its pid and
//! deletes the namespace and its /etc/netns folder, also when the test panicked; namespaces
//! left by a test process that was killed are deleted by the next start.

#![allow(dead_code)]

use std::net::TcpStream;
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kiln::gomod::dirhash::hash_go_mod;
use kiln::gomod::modzip::{self, ZipLimits};
use serde_json::Value;

use crate::harness::{
    CLEARED, TestDir, failure, git, is_root, require_go, run, skip, stderr, stdout, which, wrapped,
};

/// What a [`GitHost`] serves and how.
#[derive(Clone, Debug)]
pub struct GitHostOptions {
    /// The host name it answers as (in the namespace's hosts file and the certificate).
    pub host: String,
    /// Basic auth: the one user and password it accepts for repositories.
    pub user: String,
    pub password: String,
    /// HTTPS on port 443 with a test CA's certificate; else plain HTTP on port 80.
    pub tls: bool,
    /// Whether it answers `?go-get=1` with the go-import meta tag (else `404`).
    pub go_get: bool,
    /// Whether the `?go-get=1` pages need the basic auth too (as on hosts that hide even
    /// which repositories exist).
    pub go_get_needs_auth: bool,
}

impl Default for GitHostOptions {
    fn default() -> Self {
        GitHostOptions {
            host: "git.corp.example".to_owned(),
            user: "alice".to_owned(),
            password: "kiln-test-secret-hunter2".to_owned(),
            tls: true,
            go_get: true,
            go_get_needs_auth: false,
        }
    }
}

/// A running git host in its own network namespace; stopped and removed when dropped.
pub struct GitHost {
    options: GitHostOptions,
    namespace: String,
    folder: tempfile::TempDir,
    server: Option<Child>,
}

/// The prefix of the namespaces [`GitHost`] makes: `kiln-git-PID-N`.
const NAMESPACE_PREFIX: &str = "kiln-git-";

impl GitHost {
    /// Start a host with `options`; `None` after a [`skip`] when this machine cannot run one.
    #[track_caller]
    pub fn start(test: &str, options: GitHostOptions) -> Option<GitHost> {
        if !is_root() {
            skip(
                test,
                "not root: a private git host needs its own network namespace (ip netns)",
            );
            return None;
        }
        for tool in ["ip", "lighttpd", "openssl", "git"] {
            if tool_path(tool).is_none() {
                skip(
                    test,
                    &format!(
                        "`{tool}` is not installed (scripts/test installs iproute2, lighttpd, lighttpd-mod-openssl, openssl and git)"
                    ),
                );
                return None;
            }
        }
        if options.tls && !Path::new("/usr/lib/lighttpd/mod_openssl.so").is_file() {
            skip(
                test,
                "lighttpd has no mod_openssl (Debian's lighttpd-mod-openssl; scripts/test installs it)",
            );
            return None;
        }
        remove_stale_namespaces(NAMESPACE_PREFIX);
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let namespace = format!(
            "{NAMESPACE_PREFIX}{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let folder = tempfile::Builder::new()
            .prefix("kiln-git-host-")
            .tempdir()
            .unwrap();
        let mut host = GitHost {
            options,
            namespace,
            folder,
            server: None,
        };
        // From here on, Drop removes whatever was made.
        host.make_namespace();
        if host.options.tls {
            host.make_certificates();
        }
        host.write_config();
        host.start_server();
        Some(host)
    }

    /// The host name (`git.corp.example`).
    pub fn host(&self) -> &str {
        &self.options.host
    }

    pub fn user(&self) -> &str {
        &self.options.user
    }

    pub fn password(&self) -> &str {
        &self.options.password
    }

    /// `https` or `http`.
    pub fn scheme(&self) -> &'static str {
        if self.options.tls { "https" } else { "http" }
    }

    /// The network namespace's name (for `ip netns exec`).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The test CA's certificate (PEM), which signed the host's; `None` without TLS.
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.options.tls.then(|| self.path("tls/ca.pem"))
    }

    /// A `.netrc` line for this host: `machine HOST login USER password PASSWORD`, with
    /// `password` in place of the host's (to test refused credentials).
    pub fn netrc_line(&self, password: &str) -> String {
        format!(
            "machine {} login {} password {}\n",
            self.options.host, self.options.user, password
        )
    }

    /// The folder served as a GOPROXY at [`GitHost::proxy_url`], behind the same basic auth:
    /// `MODULE/@v/VERSION.{info,mod,zip}` files put here are a private module proxy.
    pub fn proxy_folder(&self) -> PathBuf {
        self.path("www/goproxy")
    }

    /// `SCHEME://HOST/goproxy`, the GOPROXY URL of [`GitHost::proxy_folder`].
    pub fn proxy_url(&self) -> String {
        format!("{}://{}/goproxy", self.scheme(), self.options.host)
    }

    /// lighttpd's error log (for failure messages).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.path("error.log")).unwrap_or_default()
    }

    /// Add (or open) the repository served at `/PATH.git` (`team/lib`), with its go-get page:
    /// a working clone in the host's folder, which [`Repository::publish`] pushes to the
    /// served bare repository.
    pub fn repository(&self, path: &str) -> Repository {
        let bare = self.path(&format!("repos/{path}.git"));
        let work = self.path(&format!("work/{path}"));
        if !bare.exists() {
            std::fs::create_dir_all(&bare).unwrap();
            git(&bare, &["init", "-q", "--bare", "-b", "main"]);
            std::fs::create_dir_all(&work).unwrap();
            git(&work, &["init", "-q", "-b", "main"]);
            git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
            if self.options.go_get {
                let page = self.path(&format!("www/go-get/{path}.html"));
                std::fs::create_dir_all(page.parent().unwrap()).unwrap();
                std::fs::write(
                    page,
                    format!(
                        "<!DOCTYPE html>\n<html><head><meta name=\"go-import\" content=\"{host}/{path} git {scheme}://{host}/{path}.git\"></head><body>{host}/{path}</body></html>\n",
                        host = self.options.host,
                        scheme = self.scheme(),
                    ),
                )
                .unwrap();
            }
        }
        Repository { work }
    }

    /// A `?go-get=1` page for `module` (a path under the host, `team/tool/v2`) naming the
    /// repository at `/REPOSITORY.git` (`team/tool`), as hosts answer for a major-version
    /// subpath or a package inside a repository: the meta tag's prefix is the repository's.
    pub fn go_get_page(&self, module: &str, repository: &str) {
        let page = self.path(&format!("www/go-get/{module}.html"));
        std::fs::create_dir_all(page.parent().unwrap()).unwrap();
        std::fs::write(
            page,
            format!(
                "<!DOCTYPE html>\n<html><head><meta name=\"go-import\" content=\"{host}/{repository} git {scheme}://{host}/{repository}.git\"></head><body>{host}/{module}</body></html>\n",
                host = self.options.host,
                scheme = self.scheme(),
            ),
        )
        .unwrap();
    }

    /// `program` run inside the namespace (`ip netns exec`), trusting the test CA: Go through
    /// `SSL_CERT_FILE`, git through `GIT_SSL_CAINFO`. Git's system and global configuration
    /// are not read, so the machine's cannot change what it does.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.namespace])
            .arg(program)
            .stdin(Stdio::null());
        self.trust(&mut command);
        command
    }

    /// `command` (any, e.g. a kiln from `TestDir::kiln`) run inside the namespace, with the
    /// same folder and environment, trusting the test CA as [`GitHost::command`] does; a
    /// GIT_CONFIG_GLOBAL the command sets (a team's `url.<base>.insteadOf`) is kept.
    pub fn wrap(&self, command: &Command) -> Command {
        let mut wrapped = wrapped("ip", &["netns", "exec", &self.namespace], command);
        self.trust(&mut wrapped);
        if let Some((_, Some(config))) = command
            .get_envs()
            .find(|(name, _)| *name == "GIT_CONFIG_GLOBAL")
        {
            wrapped.env("GIT_CONFIG_GLOBAL", config);
        }
        wrapped
    }

    fn trust(&self, command: &mut Command) {
        command
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null");
        if let Some(ca) = self.ca_file() {
            command.env("SSL_CERT_FILE", &ca).env("GIT_SSL_CAINFO", &ca);
        }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.folder.path().join(relative)
    }

    fn etc_folder(&self) -> PathBuf {
        Path::new("/etc/netns").join(&self.namespace)
    }

    fn make_namespace(&self) {
        // The hosts file first: `ip netns exec` bind-mounts what /etc/netns/NAME holds.
        std::fs::create_dir_all(self.etc_folder()).unwrap();
        std::fs::write(
            self.etc_folder().join("hosts"),
            format!("127.0.0.1 localhost {}\n::1 localhost\n", self.options.host),
        )
        .unwrap();
        checked(Command::new("ip").args(["netns", "add", &self.namespace]));
        checked(Command::new("ip").args(["-n", &self.namespace, "link", "set", "lo", "up"]));
    }

    fn make_certificates(&self) {
        make_certificates(&self.path("tls"), &self.options.host);
    }

    fn write_config(&self) {
        for folder in ["www/go-get", "www/goproxy", "repos", "work"] {
            std::fs::create_dir_all(self.path(folder)).unwrap();
        }
        // lighttpd's plain user file: `user:password`, one a line.
        std::fs::write(
            self.path("users"),
            format!("{}:{}\n", self.options.user, self.options.password),
        )
        .unwrap();
        let backend = Path::new(git_exec_path().trim()).join("git-http-backend");
        let folder = self.folder.path().display();
        let (port, tls) = if self.options.tls {
            (
                443,
                format!(
                    "ssl.engine = \"enable\"\nssl.pemfile = \"{folder}/tls/server.pem\"\nssl.privkey = \"{folder}/tls/server.key\"\n"
                ),
            )
        } else {
            (80, String::new())
        };
        let modules = if self.options.tls {
            ", \"mod_openssl\""
        } else {
            ""
        };
        // The rewrites: `PATH?…go-get=1…` to its static page (a missing page is a 404), and
        // `PATH.git/…` to git http-backend, which sees `/PATH.git/…` as PATH_INFO under
        // GIT_PROJECT_ROOT. Auth applies to the rewritten URL, so to the repositories only.
        let config = format!(
            r#"server.modules = ("mod_rewrite", "mod_alias", "mod_auth", "mod_authn_file", "mod_setenv", "mod_cgi"{modules})
server.document-root = "{folder}/www"
server.bind = "0.0.0.0"
server.port = {port}
server.errorlog = "{folder}/error.log"
server.pid-file = "{folder}/lighttpd.pid"
mimetype.assign = (".html" => "text/html; charset=utf-8")
{tls}url.rewrite-once = (
  "^/([^?]*?)/?\?(.*&)?go-get=1(&.*)?$" => "/go-get/$1.html",
  "^/(.*\.git/.*)$" => "/git-http-backend/$1",
)
alias.url = ( "/git-http-backend" => "{backend}" )
$HTTP["url"] =~ "{protected}" {{
  auth.backend = "plain"
  auth.backend.plain.userfile = "{folder}/users"
  auth.require = ( "" => ( "method" => "basic", "realm" => "{host}", "require" => "valid-user" ) )
}}
$HTTP["url"] =~ "^/git-http-backend/" {{
  cgi.assign = ( "" => "" )
  setenv.add-environment = ( "GIT_PROJECT_ROOT" => "{folder}/repos", "GIT_HTTP_EXPORT_ALL" => "1", "GIT_CONFIG_NOSYSTEM" => "1" )
  auth.backend = "plain"
  auth.backend.plain.userfile = "{folder}/users"
  auth.require = ( "" => ( "method" => "basic", "realm" => "{host}", "require" => "valid-user" ) )
}}
"#,
            backend = backend.display(),
            host = self.options.host,
            protected = if self.options.go_get_needs_auth {
                "^/(goproxy|go-get)/"
            } else {
                "^/goproxy/"
            },
        );
        std::fs::write(self.path("lighttpd.conf"), config).unwrap();
    }

    fn start_server(&mut self) {
        let log = std::fs::File::create(self.path("lighttpd.out")).unwrap();
        // `ip netns exec` execs lighttpd in its own process: the child's pid is lighttpd's.
        let child = Command::new("ip")
            .args(["netns", "exec", &self.namespace])
            .arg(tool_path("lighttpd").unwrap())
            .args(["-D", "-f"])
            .arg(self.path("lighttpd.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.server = Some(child);
        let port = if self.options.tls { 443 } else { 80 };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.port_answers(port) {
                return;
            }
            if let Some(status) = self.server.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "lighttpd exited ({status}) in namespace {}:\n{}\n{}",
                    self.namespace,
                    std::fs::read_to_string(self.path("lighttpd.out")).unwrap_or_default(),
                    self.error_log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "lighttpd did not listen on port {port} in namespace {} within 20 s:\n{}",
                self.namespace,
                self.error_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether 127.0.0.1:`port` accepts a connection inside the namespace: tried from a thread
    /// that joins the namespace (a network namespace belongs to a thread, not the process),
    /// so no tool is needed for it.
    fn port_answers(&self, port: u16) -> bool {
        let file = std::fs::File::open(Path::new("/run/netns").join(&self.namespace)).unwrap();
        std::thread::spawn(move || {
            // SAFETY: setns on an open namespace file; it changes only this thread, which
            // ends right after.
            let joined = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } == 0;
            assert!(joined, "setns: {}", std::io::Error::last_os_error());
            TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1))
                .is_ok()
        })
        .join()
        .unwrap()
    }
}

impl Drop for GitHost {
    fn drop(&mut self) {
        if let Some(mut child) = self.server.take() {
            // SAFETY: kill(2) on the pid of our own child, which is not reaped yet.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        remove_namespace(&self.namespace);
    }
}

/// In folder `tls`: a test CA (`ca.pem`) and a certificate for `host` signed by it
/// (`server.pem`, key `server.key`), P-256 keys, valid for two days.
pub(crate) fn make_certificates(tls: &Path, host: &str) {
    std::fs::create_dir_all(tls).unwrap();
    let openssl = |arguments: &[&str]| {
        checked(Command::new("openssl").args(arguments).current_dir(tls));
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=kiln test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    let subject = format!("/CN={}", host);
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        &subject,
    ]);
    std::fs::write(
        tls.join("server.ext"),
        format!(
            "subjectAltName=DNS:{}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
            host
        ),
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-set_serial",
        "2",
        "-days",
        "2",
        "-out",
        "server.pem",
        "-extfile",
        "server.ext",
    ]);
}

/// Delete a namespace and its /etc/netns folder (either may be missing).
pub(crate) fn remove_namespace(namespace: &str) {
    let _ = Command::new("ip")
        .args(["netns", "delete", namespace])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(namespace));
}

/// Namespaces `PREFIX-PID-…` (`kiln-git-PID-N`) whose test process is gone (killed before
/// its Drop ran).
pub(crate) fn remove_stale_namespaces(prefix: &str) {
    let Ok(entries) = std::fs::read_dir("/etc/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            remove_namespace(&name);
        }
    }
}

/// `tool` on PATH, else in /usr/sbin (not on every user's PATH; lighttpd is there).
fn tool_path(tool: &str) -> Option<PathBuf> {
    which(tool).or_else(|| {
        let path = Path::new("/usr/sbin").join(tool);
        path.is_file().then_some(path)
    })
}

fn git_exec_path() -> String {
    let output = Command::new("git").arg("--exec-path").output().unwrap();
    assert!(output.status.success(), "git --exec-path: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[track_caller]
fn checked(command: &mut Command) {
    let output = command.output().unwrap();
    assert!(output.status.success(), "{command:?}: {output:?}");
}

/// A repository a [`GitHost`] serves: a working clone the test commits to and tags, and
/// [`Repository::publish`]es.
pub struct Repository {
    work: PathBuf,
}

impl Repository {
    /// The working clone.
    pub fn path(&self) -> &Path {
        &self.work
    }

    /// Write `files` (`(path, content)`), commit them all with `message`; the commit's hash.
    pub fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        for (path, content) in files {
            let file = self.work.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, content).unwrap();
        }
        git(&self.work, &["add", "-A"]);
        git(&self.work, &["commit", "-q", "-m", message]);
        git(&self.work, &["rev-parse", "HEAD"]).trim().to_owned()
    }

    pub fn tag(&self, tag: &str) {
        git(&self.work, &["tag", tag]);
    }

    pub fn delete_tag(&self, tag: &str) {
        git(&self.work, &["tag", "-d", tag]);
    }

    /// Make the served repository what the working clone is: its branches and tags, deleted
    /// ones deleted (not `--mirror`, which would push `refs/remotes/` too).
    pub fn publish(&self) {
        git(
            &self.work,
            &[
                "push",
                "-q",
                "--force",
                "--prune",
                "origin",
                "refs/heads/*:refs/heads/*",
                "refs/tags/*:refs/tags/*",
            ],
        );
    }
}

impl GitHost {
    /// The raw HTTP response (head and body) to `GET TARGET` with `authorization` (a whole
    /// header value) on a plain-HTTP host, sent from a thread inside the namespace.
    pub fn raw_get(&self, target: &str, authorization: Option<&str>) -> String {
        assert!(!self.options.tls, "raw_get speaks plain HTTP only");
        let file = std::fs::File::open(Path::new("/run/netns").join(&self.namespace)).unwrap();
        let mut request = format!(
            "GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.options.host
        );
        if let Some(value) = authorization {
            request.push_str(&format!("Authorization: {value}\r\n"));
        }
        request.push_str("\r\n");
        std::thread::spawn(move || {
            use std::io::{Read as _, Write as _};
            // SAFETY: as in `port_answers`.
            let joined = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } == 0;
            assert!(joined, "setns: {}", std::io::Error::last_os_error());
            let mut stream = TcpStream::connect(("127.0.0.1", 80)).unwrap();
            stream.write_all(request.as_bytes()).unwrap();
            let mut response = Vec::new();
            stream.read_to_end(&mut response).unwrap();
            String::from_utf8_lossy(&response).into_owned()
        })
        .join()
        .unwrap()
    }
}

// The host proven with the real Go toolchain as the client: what `go mod download` does with
// a private module behind it, and the exact errors Go and git give (what kiln's error mapping
// must recognise).

const MODULE: &str = "git.corp.example/team/lib";

/// A host serving `team/lib` with one commit (a go.mod and a package) tagged v1.0.0.
fn host_with_lib(test: &str, options: GitHostOptions) -> Option<(GitHost, Repository)> {
    let host = GitHost::start(test, options)?;
    let repository = host.repository("team/lib");
    repository.commit(
        &[
            ("go.mod", &format!("module {MODULE}\n\ngo 1.22\n")),
            (
                "lib.go",
                "package lib\n\n// Hello greets.\nfunc Hello() string { return \"hello from a private host\" }\n",
            ),
            ("internal/detail/detail.go", "package detail\n\nconst Name = \"detail\"\n"),
        ],
        "lib: first",
    );
    repository.tag("v1.0.0");
    repository.publish();
    Some((host, repository))
}

/// What most tests of the host start from: Go, a host serving `team/lib` at v1.0.0
/// ([`host_with_lib`]), a test folder and, with [`Setup::netrc`], the host's right
/// credentials in its `home/.netrc`. Built by [`Setup`], so that a test states only what
/// differs from the default host.
pub struct Fixture {
    pub go: PathBuf,
    pub host: GitHost,
    pub repository: Repository,
    pub directory: TestDir,
}

/// A [`Fixture`] being described: the default host (TLS, basic auth, go-get pages), no
/// `.netrc`.
pub struct Setup<'a> {
    test: &'a str,
    options: GitHostOptions,
    netrc: bool,
}

impl<'a> Setup<'a> {
    pub fn new(test: &'a str) -> Self {
        Setup {
            test,
            options: GitHostOptions::default(),
            netrc: false,
        }
    }

    /// Plain HTTP on port 80 instead of TLS.
    pub fn plain_http(mut self) -> Self {
        self.options.tls = false;
        self
    }

    /// No `?go-get=1` pages (they answer 404).
    pub fn no_go_get(mut self) -> Self {
        self.options.go_get = false;
        self
    }

    /// The `?go-get=1` pages behind the basic auth too.
    pub fn go_get_needs_auth(mut self) -> Self {
        self.options.go_get_needs_auth = true;
        self
    }

    /// The host's user and password in `home/.netrc` (mode 0600), where git and Go read it.
    pub fn netrc(mut self) -> Self {
        self.netrc = true;
        self
    }

    /// Start it; `None` after a [`skip`] (no Go, or no way to run a host here).
    #[track_caller]
    pub fn start(self) -> Option<Fixture> {
        let go = require_go(self.test)?;
        let (host, repository) = host_with_lib(self.test, self.options)?;
        let directory = TestDir::new();
        if self.netrc {
            directory.write("home/.netrc", host.netrc_line(host.password()), 0o600);
        }
        Some(Fixture {
            go,
            host,
            repository,
            directory,
        })
    }
}

/// `go mod download -json ARGUMENT` inside the host's namespace, with GOPROXY=direct and
/// GOPRIVATE for the host, a module cache of its own (`cache`, in the test's folder), HOME the
/// test's `home` and `extra` variables; the output and its JSON.
pub(crate) fn go_download(
    host: &GitHost,
    directory: &TestDir,
    go: &Path,
    cache: &str,
    argument: &str,
    extra: &[(&str, &str)],
) -> (std::process::Output, Value) {
    let mut command = host.command(go);
    for name in CLEARED {
        command.env_remove(name);
    }
    command
        .args(["mod", "download", "-json", argument])
        .current_dir(directory.path())
        .env("HOME", directory.join("home"))
        .env("GOPROXY", "direct")
        .env("GOPRIVATE", host.host())
        .env("GOMODCACHE", directory.join(cache))
        .env("GOCACHE", directory.join("gocache"))
        .env("GOPATH", directory.join("gopath"))
        .env("GOTOOLCHAIN", "local")
        .env("GOENV", "off")
        .env("GOFLAGS", "-modcacherw");
    for (name, value) in extra {
        command.env(name, value);
    }
    let output = run(&mut command);
    let json = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("go mod download -json: {error}: {output:?}"));
    (output, json)
}

/// Go's error for a failed download (the `Error` of its JSON), checked to be a failure that
/// does not show the host's password.
#[track_caller]
fn go_error(host: &GitHost, output: &std::process::Output, json: &Value) -> String {
    assert!(!output.status.success(), "go should fail: {json:#}");
    let error = json["Error"]
        .as_str()
        .unwrap_or_else(|| panic!("no Error: {json:#}"));
    let everything = format!("{}{}", stdout(output), stderr(output));
    assert!(
        !everything.contains(host.password()),
        "Go printed the password: {everything}"
    );
    error.to_owned()
}

#[test]
fn go_downloads_a_private_module_over_https_with_netrc_and_its_sum_is_kilns_h1() {
    let test = "go_downloads_a_private_module_over_https_with_netrc_and_its_sum_is_kilns_h1";
    let Some(Fixture {
        go,
        host,
        directory,
        ..
    }) = Setup::new(test).netrc().start()
    else {
        return;
    };
    // git (curl) reads only ~/.netrc; Go reads NETRC, else ~/.netrc: here both find it.
    let netrc = directory.join("home/.netrc");
    let netrc = netrc.to_str().unwrap();
    let (output, json) = go_download(
        &host,
        &directory,
        &go,
        "modcache",
        &format!("{MODULE}@v1.0.0"),
        &[("NETRC", netrc)],
    );
    assert!(
        output.status.success(),
        "go mod download failed: {json:#}\n{}\n{}",
        stderr(&output),
        host.error_log()
    );
    assert_eq!(json["Version"], "v1.0.0");
    assert_eq!(json["Origin"]["VCS"], "git");
    assert_eq!(
        json["Origin"]["URL"],
        "https://git.corp.example/team/lib.git"
    );
    assert_eq!(json["Origin"]["Ref"], "refs/tags/v1.0.0");
    let zip = std::fs::read(json["Zip"].as_str().unwrap()).unwrap();
    let module = modzip::read(&zip, MODULE, "v1.0.0", ZipLimits::default()).unwrap();
    assert_eq!(json["Sum"].as_str().unwrap(), module.h1());
    let go_mod = std::fs::read(json["GoMod"].as_str().unwrap()).unwrap();
    assert_eq!(go_mod, format!("module {MODULE}\n\ngo 1.22\n").as_bytes());
    assert_eq!(json["GoModSum"].as_str().unwrap(), hash_go_mod(&go_mod));
}

#[test]
fn go_without_credentials_or_with_refused_ones_gets_gits_prompt_error() {
    let test = "go_without_credentials_or_with_refused_ones_gets_gits_prompt_error";
    let Some(Fixture {
        go,
        host,
        directory,
        ..
    }) = Setup::new(test).start()
    else {
        return;
    };
    let argument = format!("{MODULE}@v1.0.0");
    // Git asks for a user name when it has none, or when the server refused the ones from
    // ~/.netrc; Go runs it with GIT_TERMINAL_PROMPT=0, so both fail the same way.
    let expected = |cache: &str| {
        format!(
            "{MODULE}@v1.0.0: invalid version: git ls-remote -q --end-of-options https://git.corp.example/team/lib.git in {}/cache/vcs/",
            directory.join(cache).display()
        )
    };
    let prompt = "fatal: could not read Username for 'https://git.corp.example': terminal prompts disabled\nConfirm the import path was entered correctly.\nIf this is a private repository, see https://go.dev/doc/faq#git_https for additional information.";

    let (output, json) = go_download(&host, &directory, &go, "none", &argument, &[]);
    let error = go_error(&host, &output, &json);
    assert!(error.starts_with(&expected("none")), "{error}");
    assert!(
        error.ends_with(&format!("exit status 128:\n\t{prompt}")) || error.contains(prompt),
        "{error}"
    );

    // NETRC alone reaches Go's own requests, not git: git reads only ~/.netrc.
    let netrc = directory.write("elsewhere/netrc", host.netrc_line(host.password()), 0o600);
    let (output, json) = go_download(
        &host,
        &directory,
        &go,
        "netrc-variable",
        &argument,
        &[("NETRC", netrc.to_str().unwrap())],
    );
    let error = go_error(&host, &output, &json);
    assert!(error.contains(prompt), "{error}");

    directory.write("home/.netrc", host.netrc_line("not-the-password"), 0o600);
    let (output, json) = go_download(&host, &directory, &go, "refused", &argument, &[]);
    let error = go_error(&host, &output, &json);
    assert!(error.starts_with(&expected("refused")), "{error}");
    assert!(error.contains(prompt), "{error}");
}

#[test]
fn go_reports_an_unrecognized_import_path_when_the_host_does_not_answer_go_get() {
    let test = "go_reports_an_unrecognized_import_path_when_the_host_does_not_answer_go_get";
    let Some(Fixture {
        go,
        host,
        directory,
        ..
    }) = Setup::new(test).no_go_get().netrc().start()
    else {
        return;
    };
    let (output, json) = go_download(
        &host,
        &directory,
        &go,
        "modcache",
        &format!("{MODULE}@v1.0.0"),
        &[],
    );
    assert_eq!(
        go_error(&host, &output, &json),
        "git.corp.example/team/lib@v1.0.0: unrecognized import path \"git.corp.example/team/lib\": reading https://git.corp.example/team/lib?go-get=1: 404 Not Found"
    );
}

#[test]
fn go_reports_an_unknown_revision_for_a_deleted_tag() {
    let test = "go_reports_an_unknown_revision_for_a_deleted_tag";
    let Some(Fixture {
        go,
        host,
        repository,
        directory,
    }) = Setup::new(test).netrc().start()
    else {
        return;
    };
    repository.delete_tag("v1.0.0");
    repository.publish();
    let (output, json) = go_download(
        &host,
        &directory,
        &go,
        "modcache",
        &format!("{MODULE}@v1.0.0"),
        &[],
    );
    assert_eq!(
        go_error(&host, &output, &json),
        "git.corp.example/team/lib@v1.0.0: invalid version: unknown revision v1.0.0"
    );
}

#[test]
fn go_downloads_over_plain_http_only_with_goinsecure() {
    let test = "go_downloads_over_plain_http_only_with_goinsecure";
    let Some(Fixture {
        go,
        host,
        directory,
        ..
    }) = Setup::new(test).plain_http().netrc().start()
    else {
        return;
    };
    let argument = format!("{MODULE}@v1.0.0");
    let (output, json) = go_download(&host, &directory, &go, "secure", &argument, &[]);
    let error = go_error(&host, &output, &json);
    assert!(
        error.starts_with("git.corp.example/team/lib@v1.0.0: unrecognized import path \"git.corp.example/team/lib\": https fetch: Get \"https://git.corp.example/team/lib?go-get=1\": dial tcp 127.0.0.1:443: connect: connection refused"),
        "{error}"
    );
    let (output, json) = go_download(
        &host,
        &directory,
        &go,
        "insecure",
        &argument,
        &[("GOINSECURE", host.host())],
    );
    assert!(output.status.success(), "{json:#}\n{}", host.error_log());
    assert_eq!(
        json["Origin"]["URL"],
        "http://git.corp.example/team/lib.git"
    );
    let zip = std::fs::read(json["Zip"].as_str().unwrap()).unwrap();
    let module = modzip::read(&zip, MODULE, "v1.0.0", ZipLimits::default()).unwrap();
    assert_eq!(json["Sum"].as_str().unwrap(), module.h1());
}

#[test]
fn the_git_host_answers_401_with_a_challenge_unless_the_credentials_are_right() {
    let test = "the_git_host_answers_401_with_a_challenge_unless_the_credentials_are_right";
    let options = GitHostOptions {
        tls: false,
        ..GitHostOptions::default()
    };
    let Some((host, _repository)) = host_with_lib(test, options) else {
        return;
    };
    use base64::Engine as _;
    let basic = |user: &str, password: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    };
    let refs = "/team/lib.git/info/refs?service=git-upload-pack";
    for authorization in [
        None,
        Some(basic("alice", "wrong")),
        Some(basic("bob", host.password())),
    ] {
        let response = host.raw_get(refs, authorization.as_deref());
        assert!(response.starts_with("HTTP/1.1 401 "), "{response}");
        assert!(
            response.contains("WWW-Authenticate: Basic realm=\"git.corp.example\""),
            "{response}"
        );
    }
    let response = host.raw_get(refs, Some(&basic(host.user(), host.password())));
    assert!(
        response.starts_with("HTTP/1.1 200 "),
        "{response}\n{}",
        host.error_log()
    );
    assert!(
        response.contains("Content-Type: application/x-git-upload-pack-advertisement"),
        "{response}"
    );
    assert!(response.contains("refs/tags/v1.0.0"), "{response}");
    // The go-get page needs no credentials, as on GitHub and GitLab.
    let page = host.raw_get("/team/lib?go-get=1", None);
    assert!(page.starts_with("HTTP/1.1 200 "), "{page}");
    assert!(
        page.contains("<meta name=\"go-import\" content=\"git.corp.example/team/lib git http://git.corp.example/team/lib.git\">"),
        "{page}"
    );
    assert!(
        host.raw_get("/team/nothing?go-get=1", None)
            .starts_with("HTTP/1.1 404 ")
    );
}

#[test]
fn a_dropped_git_host_leaves_no_namespace_and_no_server() {
    let test = "a_dropped_git_host_leaves_no_namespace_and_no_server";
    let Some(host) = GitHost::start(test, GitHostOptions::default()) else {
        return;
    };
    let namespace = host.namespace().to_owned();
    let pid = host.server.as_ref().unwrap().id();
    assert!(Path::new("/run/netns").join(&namespace).exists());
    drop(host);
    assert!(!Path::new("/run/netns").join(&namespace).exists());
    assert!(!Path::new("/etc/netns").join(&namespace).exists());
    assert!(!Path::new("/proc").join(pid.to_string()).exists());
}

/// Every file under `folder` (recursively), for secrets checks.
pub(crate) fn files_under(folder: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut folders = vec![folder.to_owned()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                folders.push(entry.path());
            } else if kind.is_file() {
                files.push(entry.path());
            }
        }
    }
    files
}

#[test]
fn kiln_locks_from_a_private_https_proxy_with_netrc_and_never_shows_the_password() {
    let test = "kiln_locks_from_a_private_https_proxy_with_netrc_and_never_shows_the_password";
    let Some(Fixture {
        go,
        host,
        directory,
        ..
    }) = Setup::new(test).netrc().start()
    else {
        return;
    };
    // Real Go fetches the module from the host's repository, and its files become what the
    // host's private proxy serves.
    let (output, json) = go_download(
        &host,
        &directory,
        &go,
        "modcache",
        &format!("{MODULE}@v1.0.0"),
        &[],
    );
    assert!(output.status.success(), "{json:#}\n{}", host.error_log());
    let served = host.proxy_folder().join(format!("{MODULE}/@v"));
    std::fs::create_dir_all(&served).unwrap();
    for (key, extension) in [("Info", "info"), ("GoMod", "mod"), ("Zip", "zip")] {
        std::fs::copy(
            json[key].as_str().unwrap(),
            served.join(format!("v1.0.0.{extension}")),
        )
        .unwrap();
    }
    directory.write(
        "app/go.mod",
        format!("module example.com/app\n\ngo 1.22\n\nrequire {MODULE} v1.0.0\n"),
        0o644,
    );
    directory.write(
        "app/go.sum",
        format!(
            "{MODULE} v1.0.0 {}\n{MODULE} v1.0.0/go.mod {}\n",
            json["Sum"].as_str().unwrap(),
            json["GoModSum"].as_str().unwrap()
        ),
        0o644,
    );
    directory.write(
        "app/main.go",
        format!("package main\n\nimport (\n\t\"fmt\"\n\n\t\"{MODULE}\"\n)\n\nfunc main() {{ fmt.Println(lib.Hello()) }}\n"),
        0o644,
    );
    directory.write(
        "app/kiln.toml",
        "schema = 1\n\n[packages.default]\nname = \"app\"\nversion = \"1.0\"\n\n[images.container]\npackage = \"default\"\nname = \"app\"\n",
        0o644,
    );
    let netrc = directory.join("netrc");
    let lock = || {
        let mut command = directory.kiln_go(&go, "app", ["lock"]);
        command
            .env("GOPROXY", host.proxy_url())
            .env("NETRC", &netrc);
        host.wrap(&command)
    };
    let mut outputs = Vec::new();

    // No .netrc at all: the error names the host, says there were none, and hints.
    let text = failure(
        lock(),
        &[
            "401 Unauthorized; kiln found no credentials for git.corp.example",
            &format!("{} does not exist", netrc.display()),
            &format!(
                "add `machine git.corp.example login USER password TOKEN` to {}",
                netrc.display()
            ),
        ],
    );
    outputs.push(text);

    // A .netrc whose password the proxy refuses: named, with the file.
    std::fs::write(
        &netrc,
        host.netrc_line(&format!("wrong-{}", host.password())),
    )
    .unwrap();
    let text = failure(
        lock(),
        &[&format!(
            "401 Unauthorized: git.corp.example refused the credentials from {} (machine git.corp.example)",
            netrc.display()
        )],
    );
    outputs.push(text);

    // The right one: locked.
    std::fs::write(&netrc, host.netrc_line(host.password())).unwrap();
    let output = run(lock());
    assert!(
        output.status.success(),
        "kiln lock failed:\n{}\n{}",
        stderr(&output),
        host.error_log()
    );
    outputs.push(format!("{}{}", stdout(&output), stderr(&output)));
    let lock_text = std::fs::read_to_string(directory.join("app/kiln.lock")).unwrap();
    assert!(lock_text.contains(MODULE), "{lock_text}");

    // The password is in no output, and in no file kiln wrote (lock, store, logs).
    for text in &outputs {
        eprintln!("kiln lock said:\n{text}");
        assert!(!text.contains(host.password()), "{text}");
    }
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        host.user(),
        host.password()
    ));
    for file in files_under(&directory.join("kiln-home"))
        .into_iter()
        .chain([directory.join("app/kiln.lock")])
    {
        let bytes = std::fs::read(&file).unwrap();
        for secret in [host.password(), basic.as_str()] {
            assert!(
                !bytes
                    .windows(secret.len())
                    .any(|window| window == secret.as_bytes()),
                "{} holds the password",
                file.display()
            );
        }
    }
}

#[test]
fn go_sends_netrc_credentials_to_a_go_get_page_behind_auth_and_says_when_it_has_none() {
    let test = "go_sends_netrc_credentials_to_a_go_get_page_behind_auth_and_says_when_it_has_none";
    let Some(Fixture {
        go,
        host,
        directory,
        ..
    }) = Setup::new(test).go_get_needs_auth().start()
    else {
        return;
    };
    let argument = format!("{MODULE}@v1.0.0");
    let (output, json) = go_download(&host, &directory, &go, "none", &argument, &[]);
    let error = go_error(&host, &output, &json);
    eprintln!("go without credentials for a go-get page behind auth: {error}");
    assert_eq!(
        error,
        "git.corp.example/team/lib@v1.0.0: unrecognized import path \"git.corp.example/team/lib\": reading https://git.corp.example/team/lib?go-get=1: 401 Unauthorized"
    );
    directory.write("home/.netrc", host.netrc_line(host.password()), 0o600);
    let (output, json) = go_download(&host, &directory, &go, "netrc", &argument, &[]);
    assert!(output.status.success(), "{json:#}\n{}", host.error_log());
}

/// Debian's OpenSSH server (`/usr/sbin/sshd`, package openssh-server) on port 22 inside a
/// [`GitHost`]'s namespace, serving the same repositories over ssh, for `ssh://` and
/// `git@HOST:` module fetches (issue 19). Keys are made per test by `ssh-keygen`: the
/// server's host key (which [`SshServer::known_hosts`] lists under the host name, so ssh
/// checks it strictly) and one client key it accepts. Stopped by its pid when dropped.
///
/// sshd authenticates system users only, and the test must not add one: it logs in as the
/// user running the tests (root, which `ip netns` needs anyway), with `PermitRootLogin
/// prohibit-password` (keys only) and `StrictModes no` (the key files live under /tmp).
/// [`SshServer::ssh_command`] therefore says `-o User=root`, which wins over the `git@` of a
/// `git@HOST:` URL, so URLs keep the `git@` form teams write. Repository paths are absolute
/// (the folder the host serves), as `ssh://git@HOST/ABSOLUTE/team/lib.git`.
pub struct SshServer {
    folder: tempfile::TempDir,
    host: String,
    repositories: PathBuf,
    server: Option<Child>,
}

impl GitHost {
    /// Start sshd in this host's namespace; `None` after a [`skip`] without openssh-server.
    #[track_caller]
    pub fn start_ssh(&self, test: &str) -> Option<SshServer> {
        for tool in ["sshd", "ssh", "ssh-keygen"] {
            if tool_path(tool).is_none() {
                skip(
                    test,
                    &format!(
                        "`{tool}` is not installed (scripts/test installs openssh-server and openssh-client)"
                    ),
                );
                return None;
            }
        }
        let folder = tempfile::Builder::new()
            .prefix("kiln-ssh-host-")
            .tempdir()
            .unwrap();
        let mut server = SshServer {
            folder,
            host: self.options.host.clone(),
            repositories: self.path("repos"),
            server: None,
        };
        let path = |name: &str| server.folder.path().join(name);
        for key in ["host_key", "client_key"] {
            checked(
                Command::new(tool_path("ssh-keygen").unwrap())
                    .args(["-q", "-t", "ed25519", "-N", "", "-C", key, "-f"])
                    .arg(path(key)),
            );
        }
        std::fs::copy(path("client_key.pub"), path("authorized_keys")).unwrap();
        let host_key = std::fs::read_to_string(path("host_key.pub")).unwrap();
        let host_key: Vec<&str> = host_key.split_whitespace().take(2).collect();
        std::fs::write(
            path("known_hosts"),
            format!("{} {}\n", self.options.host, host_key.join(" ")),
        )
        .unwrap();
        let folder = server.folder.path().display().to_string();
        std::fs::write(
            path("sshd_config"),
            format!(
                "ListenAddress 127.0.0.1:22\nHostKey {folder}/host_key\nAuthorizedKeysFile {folder}/authorized_keys\nPidFile {folder}/sshd.pid\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nUsePAM no\nLogLevel VERBOSE\n"
            ),
        )
        .unwrap();
        // sshd's privilege-separation folder (systemd's unit makes it; no unit runs here).
        std::fs::create_dir_all("/run/sshd").unwrap();
        let log = std::fs::File::create(path("sshd.log")).unwrap();
        // `ip netns exec` execs sshd: the child's pid is the listening sshd's (`-D`: it does
        // not detach; each connection is a child of it that ends with its session).
        let child = Command::new("ip")
            .args(["netns", "exec", &self.namespace])
            .arg(tool_path("sshd").unwrap())
            .args(["-D", "-e", "-f"])
            .arg(path("sshd_config"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        server.server = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.port_answers(22) {
            if let Some(status) = server.server.as_mut().unwrap().try_wait().unwrap() {
                panic!("sshd exited ({status}):\n{}", server.log());
            }
            assert!(
                Instant::now() < deadline,
                "sshd did not listen on port 22 within 20 s:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(server)
    }
}

impl SshServer {
    /// The `GIT_SSH_COMMAND` that reaches this server with the accepted key, checking its
    /// host key against [`SshServer::known_hosts`] only, in batch mode, reading no ssh
    /// configuration of the machine (`-F /dev/null`).
    pub fn ssh_command(&self) -> String {
        self.ssh_command_with_key(&self.folder.path().join("client_key"))
    }

    /// [`SshServer::ssh_command`] offering `key` instead.
    pub fn ssh_command_with_key(&self, key: &Path) -> String {
        format!(
            "ssh -F /dev/null -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes -o BatchMode=yes -o User=root",
            key.display(),
            self.known_hosts().display()
        )
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.folder.path().join("known_hosts")
    }

    /// A key the server does not accept (made on first use).
    pub fn unknown_key(&self) -> PathBuf {
        let key = self.folder.path().join("unknown_key");
        if !key.exists() {
            checked(
                Command::new(tool_path("ssh-keygen").unwrap())
                    .args(["-q", "-t", "ed25519", "-N", "", "-C", "unknown", "-f"])
                    .arg(&key),
            );
        }
        key
    }

    /// `ssh://git@HOST/ABSOLUTE/` and `git@HOST:/ABSOLUTE/`: where `team/lib.git` is
    /// `…team/lib.git` over ssh, in the two forms of git URL.
    pub fn url_bases(&self) -> (String, String) {
        let repositories = self.repositories.display();
        (
            format!("ssh://git@{}{repositories}/", self.host),
            format!("git@{}:{repositories}/", self.host),
        )
    }

    /// sshd's log (for failure messages and to show which key it accepted).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.folder.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.server.take() {
            // SAFETY: kill(2) on the pid of our own child, which is not reaped yet.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
