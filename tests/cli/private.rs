//! Issue 19: private modules, fetched `direct` from version control, against a real git
//! server: a repository the test makes (real commits, a real tag), served by a real
//! `git daemon` on a free loopback port, reached by Go and git under the module path
//! `git.corp.example/team/lib.git`.
//!
//! Why that path and that server: the `.git` qualifier tells Go the VCS and the repository
//! (`https://git.corp.example/team/lib`) without a `?go-get=1` lookup, so no DNS is needed;
//! a test-only global git config (GIT_CONFIG_GLOBAL) rewrites that https URL to the daemon's
//! `git://127.0.0.1:PORT/` with `url.<base>.insteadOf`. Go checks the scheme of the URL *it*
//! chose (https, a secure one; GIT_ALLOW_PROTOCOL, when set, would be the list it checks
//! against), and the rewrite happens inside git, which allows `git://` by default. The full
//! harness (https with basic auth in a network namespace with its own hosts file) is another
//! branch's; this one needs nothing but git and Go.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::harness::*;

const MODULE: &str = "git.corp.example/team/lib.git";
const VERSION: &str = "v1.2.0";
const GREETING: &str = "hello from the private module";
/// The second private module: a major-version suffix, required at a pseudo-version.
const TOOL: &str = "git.corp.example/team/tool.git/v2";

/// A `git daemon` serving `base` on a free loopback port, stopped (by its pid) when dropped.
/// The connections it forks for end with their clone.
struct GitDaemon {
    child: Child,
    port: u16,
}

impl GitDaemon {
    fn start(base: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // The daemon itself, not `git daemon`: the `git` wrapper runs it as a child, which
        // a kill of the wrapper (by pid, in `stop`) would leave behind.
        let exec_path = success(Command::new("git").arg("--exec-path"));
        let child = Command::new(Path::new(exec_path.trim()).join("git-daemon"))
            .arg("--export-all")
            .arg("--reuseaddr")
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("git daemon");
        let daemon = GitDaemon { child, port };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return daemon;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("git daemon did not listen on 127.0.0.1:{port}");
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        self.stop();
    }
}

fn git(folder: &Path, args: &[&str]) -> String {
    success(
        Command::new("git")
            .args(args)
            .current_dir(folder)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "kiln test")
            .env("GIT_AUTHOR_EMAIL", "test@kiln.invalid")
            .env("GIT_COMMITTER_NAME", "kiln test")
            .env("GIT_COMMITTER_EMAIL", "test@kiln.invalid")
            .env("GIT_AUTHOR_DATE", "2026-01-02T03:04:05Z")
            .env("GIT_COMMITTER_DATE", "2026-01-02T03:04:05Z"),
    )
}

/// The private module's repository (two commits, the second tagged), its bare copy under
/// `srv/team/lib.git`, the daemon serving it, the git config that reaches it, and the app
/// requiring it with go.sum written by real Go through the same route.
struct Private {
    dir: TestDir,
    go: PathBuf,
    daemon: GitDaemon,
}

impl Private {
    fn new(go: PathBuf) -> Self {
        let dir = TestDir::new();
        let source = dir.join("lib-src");
        std::fs::create_dir_all(&source).unwrap();
        git(&source, &["init", "-q", "-b", "main"]);
        dir.write(
            "lib-src/go.mod",
            format!("module {MODULE}\n\ngo 1.21\n"),
            0o644,
        );
        dir.write(
            "lib-src/lib.go",
            "package lib\n\nfunc Hello() string { return \"draft\" }\n",
            0o644,
        );
        git(&source, &["add", "."]);
        git(&source, &["commit", "-q", "-m", "first"]);
        dir.write(
            "lib-src/lib.go",
            format!("package lib\n\nfunc Hello() string {{ return \"{GREETING}\" }}\n"),
            0o644,
        );
        git(&source, &["commit", "-q", "-a", "-m", "second"]);
        git(&source, &["tag", VERSION]);
        // The second: a /v2 module at an untagged commit after v2.0.0, so a pseudo-version.
        let tool = dir.join("tool-src");
        std::fs::create_dir_all(&tool).unwrap();
        git(&tool, &["init", "-q", "-b", "main"]);
        dir.write(
            "tool-src/go.mod",
            format!("module {TOOL}\n\ngo 1.21\n"),
            0o644,
        );
        dir.write(
            "tool-src/tool.go",
            "package tool\n\nfunc Name() string { return \"v2.0.0\" }\n",
            0o644,
        );
        git(&tool, &["add", "."]);
        git(&tool, &["commit", "-q", "-m", "v2"]);
        git(&tool, &["tag", "v2.0.0"]);
        dir.write(
            "tool-src/tool.go",
            "package tool\n\nfunc Name() string { return \"tool at a pseudo-version\" }\n",
            0o644,
        );
        git(&tool, &["commit", "-q", "-a", "-m", "after v2"]);
        std::fs::create_dir_all(dir.join("srv/team")).unwrap();
        git(
            dir.path(),
            &["clone", "-q", "--bare", "lib-src", "srv/team/lib.git"],
        );
        git(
            dir.path(),
            &["clone", "-q", "--bare", "tool-src", "srv/team/tool.git"],
        );
        let daemon = GitDaemon::start(&dir.join("srv"));
        dir.write(
            "gitconfig",
            format!(
                "[url \"git://127.0.0.1:{}/\"]\n\tinsteadOf = https://git.corp.example/\n",
                daemon.port
            ),
            0o644,
        );
        dir.write(
            "app/go.mod",
            format!("module example.com/app\n\ngo 1.21\n\nrequire {MODULE} {VERSION}\n"),
            0o644,
        );
        dir.write(
            "app/main.go",
            format!(
                "package main\n\nimport (\n\t\"fmt\"\n\n\tlib \"{MODULE}\"\n\ttool \"{TOOL}\"\n)\n\nfunc main() {{ fmt.Println(lib.Hello()); fmt.Println(tool.Name()) }}\n"
            ),
            0o644,
        );
        dir.write(
            "app/kiln.toml",
            "schema = 1\n\n[packages.default]\nname = \"app\"\nversion = \"1.0\"\n",
            0o644,
        );
        let private = Private { dir, go, daemon };
        // Go as the oracle: go.mod's pseudo-version and go.sum's h1: lines come from Go's
        // own direct fetch.
        private.go_command(&["get", &format!("{TOOL}@main")]);
        private.go_command(&["mod", "tidy"]);
        private
    }

    fn go_command(&self, args: &[&str]) {
        let private = self;
        success(
            Command::new(&private.go)
                .args(args)
                .current_dir(private.dir.join("app"))
                .env_clear()
                .env("PATH", "/usr/bin:/bin")
                .env("HOME", private.dir.join("home"))
                .env("GOPATH", private.dir.join("gopath"))
                .env("GOMODCACHE", private.dir.join("gomodcache"))
                .env("GOCACHE", private.dir.join("gocache"))
                .env("GOFLAGS", "-mod=mod -modcacherw")
                .env("GOPROXY", "off")
                .env("GOSUMDB", "off")
                .env("GOTOOLCHAIN", "local")
                .env("GOPRIVATE", "git.corp.example")
                .env("GIT_CONFIG_GLOBAL", private.dir.join("gitconfig")),
        );
    }

    /// `kiln lock` as a team member runs it: GOPRIVATE set, git configured, GOPROXY `off`
    /// (the harness's default: the module must not need a proxy).
    fn lock(&self) -> Command {
        let mut command = self.dir.kiln_go(&self.go, "app", ["lock"]);
        command
            .env("GOPRIVATE", "git.corp.example")
            .env("GIT_CONFIG_GLOBAL", self.dir.join("gitconfig"));
        command
    }

    fn go_sum_h1(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("app/go.sum")).unwrap();
        text.lines()
            .find_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                (fields[..2] == [MODULE, VERSION]).then(|| fields[2].to_owned())
            })
            .expect("go.sum pins the private module's zip")
    }

    /// What of the store's `tmp/` is left: nothing, after any lock.
    fn store_tmp(&self) -> Vec<String> {
        match std::fs::read_dir(self.dir.join("kiln-home/v1/tmp")) {
            Ok(entries) => entries
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|name| name.contains("direct"))
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

#[test]
fn a_private_module_is_locked_direct_and_built_offline() {
    let Some(go) = require_go("a_private_module_is_locked_direct_and_built_offline") else {
        return;
    };
    let mut private = Private::new(go);
    let h1 = private.go_sum_h1();
    let output = run(private.lock());
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("2 modules from go.sum: 2 fetched"),
        "{}",
        stderr(&output)
    );
    let lock = std::fs::read_to_string(private.dir.join("app/kiln.lock")).unwrap();
    let entries: Vec<&str> = lock.split("\n[[module]]\n").skip(1).collect();
    assert_eq!(entries.len(), 2, "{lock}");
    assert!(
        entries[0].starts_with(&format!(
            "path = \"{MODULE}\"\nversion = \"{VERSION}\"\nh1 = \"{h1}\"\ngo-mod = \"h1:"
        )),
        "{lock}"
    );
    let go_mod = std::fs::read_to_string(private.dir.join("app/go.mod")).unwrap();
    let pseudo = go_mod
        .lines()
        .find_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let at = words.iter().position(|word| *word == TOOL)?;
            words.get(at + 1).map(|version| version.to_string())
        })
        .unwrap_or_else(|| panic!("go get wrote no version of {TOOL}:\n{go_mod}"));
    assert!(pseudo.starts_with("v2.0.1-0.20260102030405-"), "{pseudo}");
    assert!(
        entries[1].starts_with(&format!(
            "path = \"{TOOL}\"\nversion = \"{pseudo}\"\nh1 = \"h1:"
        )),
        "{lock}"
    );
    for entry in &entries {
        assert!(entry.contains("\nnar = \"sha256-"), "{lock}");
        assert!(entry.ends_with("\norigin = \"direct\"\n"), "{lock}");
    }
    assert!(!lock.contains("127.0.0.1"), "no URL in the lock: {lock}");
    assert_eq!(
        private.store_tmp(),
        Vec::<String>::new(),
        "the scratch module cache is gone"
    );

    // The build needs neither the server nor its git config nor GOPRIVATE.
    private.daemon.stop();
    std::fs::remove_dir_all(private.dir.join("srv")).unwrap();
    std::fs::remove_file(private.dir.join("gitconfig")).unwrap();
    let output = success(
        private
            .dir
            .kiln_go(&private.go, "app", ["run"])
            .env("GOPROXY", "http://127.0.0.1:9/unreachable")
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("HTTPS_PROXY", "http://127.0.0.1:9"),
    );
    assert_eq!(output, format!("{GREETING}\ntool at a pseudo-version\n"));
    // Locking again takes it from the store, still marked direct, with the server gone.
    let before = std::fs::read(private.dir.join("app/kiln.lock")).unwrap();
    let report: serde_json::Value = serde_json::from_str(&success(private.dir.kiln_go(
        &private.go,
        "app",
        ["lock", "--json"],
    )))
    .unwrap();
    assert_eq!(report["changed"], false);
    for module in report["modules"].as_array().unwrap() {
        assert_eq!(module["origin"], "direct", "{report}");
        assert!(module["fetched_bytes"].is_null(), "{report}");
    }
    assert_eq!(
        std::fs::read(private.dir.join("app/kiln.lock")).unwrap(),
        before
    );
}

#[test]
fn private_module_failures_name_the_cause() {
    let Some(go) = require_go("private_module_failures_name_the_cause") else {
        return;
    };
    let private = Private::new(go);
    let id = format!("{MODULE}@{VERSION}");

    // A go.sum that pins other bytes: both hashes, and GONOSUMDB does not excuse it.
    let go_sum_path = private.dir.join("app/go.sum");
    let go_sum = std::fs::read_to_string(&go_sum_path).unwrap();
    let right = private.go_sum_h1();
    let wrong = "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    std::fs::write(&go_sum_path, go_sum.replace(&right, wrong)).unwrap();
    let text = failure(
        private.lock().env("GONOSUMDB", "git.corp.example"),
        &[
            &format!(
                "error: {id}: zip (fetched direct from version control) failed verification: got {right}, go.sum says {wrong}"
            ),
            "hint: ",
            "GONOSUMDB",
            "go mod tidy",
        ],
    );
    assert!(!private.dir.join("app/kiln.lock").exists(), "{text}");
    std::fs::write(&go_sum_path, &go_sum).unwrap();

    // GOVCS forbidding git for private modules.
    failure(
        private.lock().env("GOVCS", "private:off"),
        &[
            // Either module may be the one reported: both are private.
            " direct from version control: GOVCS forbids",
            "GOVCS disallows using git",
            "hint: GOVCS lists",
        ],
    );

    // A repository URL with credentials in it: they appear nowhere kiln writes.
    private.dir.write(
        "gitconfig-secret",
        "[url \"http://kiln:s3cret-token@127.0.0.1:9/\"]\n\tinsteadOf = https://git.corp.example/\n",
        0o644,
    );
    let output = run(private
        .lock()
        .env("GIT_CONFIG_GLOBAL", private.dir.join("gitconfig-secret")));
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = format!("{}{}", stdout(&output), stderr(&output));
    assert!(
        text.contains(" direct from version control: the repository could not be reached"),
        "{text}"
    );
    assert!(!text.contains("s3cret"), "{text}");

    // The tag removed from the server: the revision no longer exists.
    git(
        &private.dir.join("srv/team/lib.git"),
        &["tag", "-d", VERSION],
    );
    failure(
        private.lock(),
        &[
            &format!(
                "error: cannot fetch {id} direct from version control: the repository has no such revision"
            ),
            "unknown revision v1.2.0",
            "hint: the version go.mod requires must still exist",
        ],
    );
    assert_eq!(private.store_tmp(), Vec::<String>::new());
    assert!(!private.dir.join("app/kiln.lock").exists());
}

/// Credentials needed and refused, and a host without a go-import meta tag, for module paths
/// found through `?go-get=1` (no `.git` qualifier: Go then runs git on the repository the
/// meta tag names and reports git's own reason, where for a `.git` path it tries every
/// scheme and keeps none). Without DNS: GOINSECURE lets Go fall back to
/// `http://git.corp.example/…?go-get=1`, which goes through HTTP_PROXY, a loopback server
/// answering with the meta tag; the repository it names is a loopback git server that
/// answers every request 401.
#[test]
fn private_hosts_that_want_credentials_or_lack_the_meta_tag_are_explained() {
    use kiln::http::test_server::{Reply, TestServer};
    let Some(go) =
        require_go("private_hosts_that_want_credentials_or_lack_the_meta_tag_are_explained")
    else {
        return;
    };
    let git_server = TestServer::routes(
        Vec::<(String, Vec<Reply>)>::new(),
        Reply::new(401, "").header("WWW-Authenticate", "Basic realm=\"corp\""),
    )
    .unwrap();
    let repository = format!("{}/team/lib", git_server.url());
    let meta = TestServer::start(move |request, _| {
        if request.path.contains("/team/lib?go-get=1") {
            Reply::ok(format!(
                "<html><head><meta name=\"go-import\" content=\"git.corp.example/team/lib git {repository}\"></head></html>"
            ))
            .header("Content-Type", "text/html")
        } else {
            Reply::ok("<html><head></head><body>a wiki</body></html>")
                .header("Content-Type", "text/html")
        }
    })
    .unwrap();
    let dir = TestDir::new();
    let lock = |module: &str| {
        dir.write(
            "app/go.mod",
            format!("module example.com/app\n\ngo 1.21\n\nrequire {module} v1.0.0\n"),
            0o644,
        );
        dir.write(
            "app/go.sum",
            format!(
                "{module} v1.0.0 h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n{module} v1.0.0/go.mod h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
            ),
            0o644,
        );
        let mut command = dir.kiln_go(&go, "app", ["lock"]);
        command
            .env("GOPRIVATE", "git.corp.example")
            .env("GOINSECURE", "git.corp.example")
            .env("HTTP_PROXY", meta.url())
            .env("NO_PROXY", "127.0.0.1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null");
        command
    };

    // No credentials: git may not prompt, and says so.
    failure(
        lock("git.corp.example/team/lib"),
        &[
            "error: cannot fetch git.corp.example/team/lib@v1.0.0 direct from version control: version control refused access (credentials needed)",
            "terminal prompts disabled",
            "hint: give git access to 127.0.0.1, where git.corp.example/team/lib@v1.0.0's repository is, the way `go` gets it: for https, a `machine 127.0.0.1` entry in ~/.netrc",
            "GOAUTH",
            "credential helper",
        ],
    );
    // Credentials (in ~/.netrc, which git's curl reads) that the host refuses: still an
    // authentication error, and the password is shown nowhere.
    let host = git_server.address().split(':').next().unwrap().to_owned();
    dir.write(
        "home/.netrc",
        format!("machine {host} login kiln password s3cret-netrc\n"),
        0o600,
    );
    let text = failure(
        lock("git.corp.example/team/lib"),
        &["version control refused access (credentials needed)"],
    );
    assert!(!text.contains("s3cret"), "{text}");
    assert!(
        git_server.requests().iter().any(|request| request
            .header("authorization")
            .is_some_and(|value| value.starts_with("Basic "))),
        "git sent the .netrc credentials"
    );
    std::fs::remove_file(dir.join("home/.netrc")).unwrap();

    // A host whose page has no go-import meta tag.
    failure(
        lock("git.corp.example/team/wiki"),
        &[
            "error: cannot fetch git.corp.example/team/wiki@v1.0.0 direct from version control: the module path's host does not say where its repository is",
            "unrecognized import path \"git.corp.example/team/wiki\"",
            "hint: git.corp.example must answer `https://git.corp.example/PATH?go-get=1` with a `<meta name=\"go-import\">` tag",
            "`git.corp.example/team/lib.git`",
        ],
    );
    assert!(!dir.join("app/kiln.lock").exists());
}
