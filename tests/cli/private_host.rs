//! Issue 19's "must show", end to end against the real private git host of
//! [`crate::git_host`] (lighttpd + git http-backend, TLS from a test CA, basic auth, `?go-get=1`
//! pages, in a network namespace whose hosts file alone knows `git.corp.example`):
//!
//! a project with one public module (from a GOPROXY, a static folder) and two private ones
//! on the host (one tagged, one at a pseudo-version with a `/v2` major-version suffix) is
//! locked with GOPRIVATE and the password in `~/.netrc` (never in a URL), then built in a
//! network namespace with no network at all, no `.netrc` and no GOPRIVATE, loaded into the
//! Docker engine and run: the image prints what the private modules' code returns. Go itself
//! is the oracle (go.sum, and the `h1:` of `go mod download -json`), and the password (and its
//! base64 form, what goes over the wire) is in no output of kiln, not in kiln.lock and in no
//! file of the store.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::git_host::{GitHost, GitHostOptions, files_under, go_download};
use crate::harness::*;

const LIB: &str = "git.corp.example/team/lib";
const LIB_VERSION: &str = "v1.2.0";
/// The second private module: repository `team/tool`, module path with a major-version suffix.
const TOOL: &str = "git.corp.example/team/tool/v2";
const PUBLIC: &str = "example.com/greeting";
const PUBLIC_VERSION: &str = "v1.0.0";

const MAIN_GO: &str = r#"package main

import (
	"fmt"

	"example.com/greeting"
	lib "git.corp.example/team/lib"
	tool "git.corp.example/team/tool/v2"
)

func main() {
	fmt.Println(greeting.Hello())
	fmt.Println(lib.Hello())
	fmt.Println(tool.Name())
}
"#;

/// The public module as a GOPROXY folder at `folder` (`MODULE/@v/{list,VERSION.info,.mod,.zip}`):
/// a module zip as Go writes one, every file under `path@version/`.
fn write_public_proxy(folder: &Path) {
    let at_v = folder.join(PUBLIC).join("@v");
    std::fs::create_dir_all(&at_v).unwrap();
    let go_mod = format!("module {PUBLIC}\n\ngo 1.21\n");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, text) in [
        ("go.mod", go_mod.as_str()),
        (
            "greeting.go",
            "package greeting\n\nfunc Hello() string { return \"public greeting v1.0.0 (from the proxy)\" }\n",
        ),
    ] {
        zip.start_file(format!("{PUBLIC}@{PUBLIC_VERSION}/{name}"), options)
            .unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    let zip = zip.finish().unwrap().into_inner();
    std::fs::write(at_v.join(format!("{PUBLIC_VERSION}.zip")), zip).unwrap();
    std::fs::write(at_v.join(format!("{PUBLIC_VERSION}.mod")), go_mod).unwrap();
    std::fs::write(
        at_v.join(format!("{PUBLIC_VERSION}.info")),
        format!("{{\"Version\":\"{PUBLIC_VERSION}\",\"Time\":\"2024-01-01T00:00:00Z\"}}"),
    )
    .unwrap();
    std::fs::write(at_v.join("list"), format!("{PUBLIC_VERSION}\n")).unwrap();
}

/// The host's two private repositories: `team/lib` tagged v1.2.0 (after an older commit),
/// and `team/tool` (module `…/tool/v2`) with v2.0.0 tagged and one untagged commit after it,
/// which Go names by a pseudo-version.
fn publish_private_modules(host: &GitHost) {
    let lib = host.repository("team/lib");
    lib.commit(
        &[
            ("go.mod", &format!("module {LIB}\n\ngo 1.21\n")),
            (
                "lib.go",
                "package lib\n\nfunc Hello() string { return \"draft\" }\n",
            ),
        ],
        "lib: draft",
    );
    lib.commit(
        &[(
            "lib.go",
            "package lib\n\n// Hello is private code from git.corp.example.\nfunc Hello() string { return \"private lib v1.2.0 (git.corp.example/team/lib, tagged)\" }\n",
        )],
        "lib: v1.2.0",
    );
    lib.tag(LIB_VERSION);
    lib.publish();
    let tool = host.repository("team/tool");
    tool.commit(
        &[
            ("go.mod", &format!("module {TOOL}\n\ngo 1.21\n")),
            (
                "tool.go",
                "package tool\n\nfunc Name() string { return \"tool v2.0.0\" }\n",
            ),
        ],
        "tool: v2.0.0",
    );
    tool.tag("v2.0.0");
    tool.commit(
        &[(
            "tool.go",
            "package tool\n\nfunc Name() string { return \"private tool/v2 (git.corp.example/team/tool, pseudo-version)\" }\n",
        )],
        "tool: after v2.0.0",
    );
    tool.publish();
    // Go asks `https://git.corp.example/team/tool/v2?go-get=1`; the page names the repository.
    host.go_get_page("team/tool/v2", "team/tool");
}

/// Real Go inside the host's namespace, as a developer with access runs it in `app`: the
/// public proxy, GOPRIVATE for the host, `~/.netrc` in the test's HOME.
fn go_in_app(host: &GitHost, directory: &TestDir, go: &Path, proxy: &str) -> Command {
    let mut command = host.command(go);
    for name in CLEARED {
        command.env_remove(name);
    }
    command
        .current_dir(directory.join("app"))
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", directory.join("home"))
        .env("GOPATH", directory.join("gopath"))
        .env("GOMODCACHE", directory.join("gomodcache"))
        .env("GOCACHE", directory.join("gocache"))
        .env("GOPROXY", proxy)
        .env("GOPRIVATE", host.host())
        .env("GOSUMDB", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOENV", "off")
        .env("GOFLAGS", "-mod=mod -modcacherw");
    command
}

/// The `[[module]]` tables of a kiln.lock.
fn lock_modules(text: &str) -> Vec<toml::Table> {
    let lock: toml::Table = toml::from_str(text).unwrap();
    lock["module"]
        .as_array()
        .unwrap()
        .iter()
        .map(|module| module.as_table().unwrap().clone())
        .collect()
}

/// The occurrences of any of `secrets` in `bytes`.
fn holds_any(bytes: &[u8], secrets: &[&str]) -> bool {
    secrets.iter().any(|secret| {
        bytes
            .windows(secret.len())
            .any(|window| window == secret.as_bytes())
    })
}

#[test]
fn private_modules_lock_with_netrc_then_build_and_run_with_no_network_and_no_credentials() {
    let test = "private_host::private_modules_lock_with_netrc_then_build_and_run_with_no_network_and_no_credentials";
    let Some(go) = require_go(test) else { return };
    let Some(engine) = docker_engines(test).into_iter().next() else {
        return;
    };
    let Some(host) = GitHost::start(test, GitHostOptions::default()) else {
        return;
    };
    let password = host.password().to_owned();
    use base64::Engine as _;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", host.user(), password));
    let secrets = [password.as_str(), basic.as_str()];
    publish_private_modules(&host);

    let directory = TestDir::new();
    write_public_proxy(&directory.join("public-proxy"));
    let proxy = format!("file://{}", directory.join("public-proxy").display());
    // git (curl) reads only $HOME/.netrc; Go reads it too when NETRC is unset.
    let netrc = directory.write("home/.netrc", host.netrc_line(&password), 0o600);
    let name = unique_name("private");
    directory.write(
        "app/go.mod",
        format!(
            "module example.com/app\n\ngo 1.21\n\nrequire (\n\t{PUBLIC} {PUBLIC_VERSION}\n\t{LIB} {LIB_VERSION}\n)\n"
        ),
        0o644,
    );
    directory.write("app/main.go", MAIN_GO, 0o644);
    directory.write(
        "app/kiln.toml",
        format!("schema = 1\n\n[packages.default]\nname = \"app\"\nversion = \"1.0\"\n\n[images.container]\npackage = \"default\"\nname = \"{name}\"\n"),
        0o644,
    );
    // Go writes go.mod's pseudo-version and go.sum, through the same host and proxy.
    let output =
        run(go_in_app(&host, &directory, &go, &proxy).args(["get", &format!("{TOOL}@main")]));
    assert!(
        output.status.success(),
        "go get: {}\n{}",
        stderr(&output),
        host.error_log()
    );
    success(go_in_app(&host, &directory, &go, &proxy).args(["mod", "tidy"]));
    let go_mod = std::fs::read_to_string(directory.join("app/go.mod")).unwrap();
    let pseudo = go_mod
        .lines()
        .find_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let at = words.iter().position(|word| *word == TOOL)?;
            words.get(at + 1).map(|version| (*version).to_owned())
        })
        .unwrap_or_else(|| panic!("go get wrote no version of {TOOL}:\n{go_mod}"));
    assert!(pseudo.starts_with("v2.0.1-0.20260101000000-"), "{pseudo}");
    eprintln!("go.mod (written by go get / go mod tidy):\n{go_mod}");
    eprintln!(
        "go.sum:\n{}",
        std::fs::read_to_string(directory.join("app/go.sum")).unwrap()
    );

    // kiln lock, as the developer runs it: GOPRIVATE, the public proxy, ~/.netrc.
    let mut lock = directory.kiln_go(&go, "app", ["lock"]);
    lock.env("GOPROXY", &proxy).env("GOPRIVATE", host.host());
    let output = run(host.wrap(&lock));
    let mut outputs = vec![(
        "kiln lock".to_owned(),
        format!("{}{}", stdout(&output), stderr(&output)),
    )];
    assert!(
        output.status.success(),
        "kiln lock failed:\n{}\n{}",
        stderr(&output),
        host.error_log()
    );
    assert!(
        stderr(&output).contains("3 modules from go.sum: 3 fetched"),
        "{}",
        stderr(&output)
    );
    let lock_text = std::fs::read_to_string(directory.join("app/kiln.lock")).unwrap();
    eprintln!("kiln.lock:\n{lock_text}");
    let modules = lock_modules(&lock_text);
    let module = |path: &str| {
        modules
            .iter()
            .find(|module| module["path"].as_str() == Some(path))
            .unwrap_or_else(|| panic!("{path} is not in kiln.lock:\n{lock_text}"))
    };
    assert_eq!(module(PUBLIC).get("origin"), None, "{lock_text}");
    assert_eq!(module(LIB)["version"].as_str(), Some(LIB_VERSION));
    assert_eq!(module(TOOL)["version"].as_str(), Some(pseudo.as_str()));
    for path in [LIB, TOOL] {
        assert_eq!(
            module(path)["origin"].as_str(),
            Some("direct"),
            "{lock_text}"
        );
    }
    assert!(
        !lock_text.contains("https://"),
        "no URL in the lock: {lock_text}"
    );

    // Go as the oracle: `go mod download -json` of each private module, in a cache of its own,
    // reports the Sum kiln stored.
    for (path, version, cache) in [
        (LIB, LIB_VERSION, "oracle-lib"),
        (TOOL, pseudo.as_str(), "oracle-tool"),
    ] {
        let (output, json) = go_download(
            &host,
            &directory,
            &go,
            cache,
            &format!("{path}@{version}"),
            &[],
        );
        assert!(output.status.success(), "{json:#}\n{}", host.error_log());
        let h1 = module(path)["h1"].as_str().unwrap().to_owned();
        eprintln!(
            "go mod download -json {path}@{version}: Sum {} GoModSum {}; kiln.lock h1 {h1} go-mod {}",
            json["Sum"].as_str().unwrap(),
            json["GoModSum"].as_str().unwrap(),
            module(path)["go-mod"].as_str().unwrap()
        );
        assert_eq!(json["Sum"].as_str(), Some(h1.as_str()));
        assert_eq!(json["GoModSum"].as_str(), module(path)["go-mod"].as_str());
    }

    // Now no server, no namespace with it, no credentials, no module caches of Go's, no
    // GOPRIVATE (TestDir::kiln unsets it) and no network: `unshare -n` gives kiln a network
    // namespace with only a loopback interface, down.
    drop(host);
    std::fs::remove_file(&netrc).unwrap();
    for cache in ["gomodcache", "oracle-lib", "oracle-tool", "gopath"] {
        let _ = std::fs::remove_dir_all(directory.join(cache));
    }
    let build = directory.kiln_go(&go, "app", ["build", ".#container"]);
    let output = run(wrapped("unshare", &["-n"], &build));
    outputs.push((
        "kiln build .#container (unshare -n)".to_owned(),
        format!("{}{}", stdout(&output), stderr(&output)),
    ));
    assert!(
        output.status.success(),
        "kiln build failed offline:\n{}",
        stderr(&output)
    );
    let mut loaded = LoadedImages {
        cleanups: Vec::new(),
    };
    let mut cleanup = docker(&engine);
    cleanup.args(["rmi", "-f", &format!("{name}:1.0")]);
    loaded.cleanups.push(cleanup);
    let mut load = directory.kiln_go(&go, "app", ["load", "result"]);
    match &engine {
        Some(socket) => load.env("DOCKER_HOST", socket),
        None => load.env_remove("DOCKER_HOST"),
    };
    let output = run(&mut load);
    outputs.push((
        "kiln load result".to_owned(),
        format!("{}{}", stdout(&output), stderr(&output)),
    ));
    assert!(output.status.success(), "kiln load: {}", stderr(&output));
    let ran = success(docker(&engine).args(["run", "--rm", &format!("{name}:1.0")]));
    eprintln!("docker run --rm {name}:1.0:\n{ran}");
    assert_eq!(
        ran,
        "public greeting v1.0.0 (from the proxy)\nprivate lib v1.2.0 (git.corp.example/team/lib, tagged)\nprivate tool/v2 (git.corp.example/team/tool, pseudo-version)\n"
    );
    drop(loaded);

    // The secrets: in no output of kiln, not in kiln.lock, in no file of the store.
    for (command, text) in &outputs {
        eprintln!("{command} said:\n{text}");
        assert!(!holds_any(text.as_bytes(), &secrets), "{command}: {text}");
    }
    let store_files: Vec<PathBuf> = files_under(&directory.join("kiln-home"));
    assert!(store_files.len() > 10, "{store_files:?}");
    for file in store_files.iter().chain([&directory.join("app/kiln.lock")]) {
        let bytes = std::fs::read(file).unwrap();
        assert!(
            !holds_any(&bytes, &secrets),
            "{} holds the password",
            file.display()
        );
    }
    // And as a person would check it: grep -r over the store and the lock finds neither.
    let grep = run(Command::new("grep")
        .args(["-r", "-l", "-F", "-e", &password, "-e", &basic])
        .arg(directory.join("kiln-home"))
        .arg(directory.join("app/kiln.lock")));
    assert_eq!(
        grep.status.code(),
        Some(1),
        "grep found it: {}",
        stdout(&grep)
    );
    eprintln!(
        "secrets check: password and its base64 form absent from {} outputs, kiln.lock and {} store files",
        outputs.len(),
        store_files.len()
    );
}

/// Issue 19, ssh: a private module whose https URL a team's git configuration rewrites to ssh
/// (`url."git@HOST:".insteadOf`, and the `ssh://` form), fetched by `kiln lock` through a
/// real sshd with a key (no `.netrc` anywhere); a key the server does not know is explained.
#[test]
fn kiln_locks_a_private_module_over_ssh_through_insteadof() {
    let test = "private_host::kiln_locks_a_private_module_over_ssh_through_insteadof";
    let Some(go) = require_go(test) else { return };
    let Some(host) = GitHost::start(test, GitHostOptions::default()) else {
        return;
    };
    let Some(ssh) = host.start_ssh(test) else {
        return;
    };
    publish_private_modules(&host);
    let directory = TestDir::new();
    let (ssh_url, scp_url) = ssh.url_bases();
    for (name, base) in [("scp", &scp_url), ("ssh", &ssh_url)] {
        directory.write(
            &format!("gitconfig-{name}"),
            format!("[url \"{base}\"]\n\tinsteadOf = https://git.corp.example/\n"),
            0o644,
        );
    }
    directory.write(
        "app/go.mod",
        format!("module example.com/app\n\ngo 1.21\n\nrequire {LIB} {LIB_VERSION}\n"),
        0o644,
    );
    directory.write(
        "app/main.go",
        format!("package main\n\nimport (\n\t\"fmt\"\n\n\tlib \"{LIB}\"\n)\n\nfunc main() {{ fmt.Println(lib.Hello()) }}\n"),
        0o644,
    );
    directory.write(
        "app/kiln.toml",
        "schema = 1\n\n[packages.default]\nname = \"app\"\nversion = \"1.0\"\n",
        0o644,
    );
    // Go writes go.sum over the same ssh route (no .netrc exists: https would be refused).
    success(
        go_in_app(&host, &directory, &go, "off")
            .args(["mod", "tidy"])
            .env("GIT_CONFIG_GLOBAL", directory.join("gitconfig-scp"))
            .env("GIT_SSH_COMMAND", ssh.ssh_command()),
    );
    let go_sum = std::fs::read_to_string(directory.join("app/go.sum")).unwrap();
    let lock = |config: &str, ssh_command: &str| {
        let mut command = directory.kiln_go(&go, "app", ["lock"]);
        command
            .env("GOPRIVATE", host.host())
            .env("GIT_CONFIG_GLOBAL", directory.join(config))
            .env("GIT_SSH_COMMAND", ssh_command);
        host.wrap(&command)
    };
    let mut locks = Vec::new();
    for config in ["gitconfig-scp", "gitconfig-ssh"] {
        let _ = std::fs::remove_dir_all(directory.join("kiln-home"));
        let output = run(lock(config, &ssh.ssh_command()));
        assert!(
            output.status.success(),
            "kiln lock over ssh ({config}) failed:\n{}\n{}",
            stderr(&output),
            ssh.log()
        );
        let text = std::fs::read_to_string(directory.join("app/kiln.lock")).unwrap();
        let modules = lock_modules(&text);
        assert_eq!(modules.len(), 1, "{text}");
        assert_eq!(modules[0]["origin"].as_str(), Some("direct"));
        let h1 = modules[0]["h1"].as_str().unwrap();
        assert!(
            go_sum.contains(&format!("{LIB} {LIB_VERSION} {h1}\n")),
            "{go_sum}\n{text}"
        );
        locks.push(text);
    }
    assert_eq!(locks[0], locks[1], "both URL forms lock the same bytes");
    assert!(
        ssh.log().contains("Accepted publickey for root"),
        "{}",
        ssh.log()
    );
    eprintln!("kiln.lock (over ssh):\n{}", locks[0]);

    // A key the server does not accept: git's ssh refusal, said to be ssh's, with the hint.
    let _ = std::fs::remove_dir_all(directory.join("kiln-home"));
    std::fs::remove_file(directory.join("app/kiln.lock")).unwrap();
    let text = failure(
        lock(
            "gitconfig-scp",
            &ssh.ssh_command_with_key(&ssh.unknown_key()),
        ),
        &[
            &format!(
                "error: cannot fetch {LIB}@{LIB_VERSION} direct from version control: version control refused access (credentials needed); git reached it over ssh, and the ssh server refused the keys ssh offered: "
            ),
            "Permission denied (publickey)",
            "hint: check that `ssh -T git@git.corp.example` works",
        ],
    );
    eprintln!("kiln lock with a key sshd does not accept:\n{text}");
}

/// Issue 19, item 2 on the real host: a direct fetch the host refuses says which host and
/// whether kiln found credentials for it in ~/.netrc (the file git reads), with a hint;
/// never the password.
#[test]
fn a_refused_direct_fetch_says_which_host_and_which_credentials() {
    let test = "private_host::a_refused_direct_fetch_says_which_host_and_which_credentials";
    let Some(go) = require_go(test) else { return };
    let Some(host) = GitHost::start(test, GitHostOptions::default()) else {
        return;
    };
    publish_private_modules(&host);
    let directory = TestDir::new();
    directory.write(
        "app/go.mod",
        format!("module example.com/app\n\ngo 1.21\n\nrequire {LIB} {LIB_VERSION}\n"),
        0o644,
    );
    directory.write(
        "app/go.sum",
        format!(
            "{LIB} {LIB_VERSION} h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n{LIB} {LIB_VERSION}/go.mod h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
        ),
        0o644,
    );
    directory.write(
        "app/kiln.toml",
        "schema = 1\n\n[packages.default]\nname = \"app\"\nversion = \"1.0\"\n",
        0o644,
    );
    let netrc = directory.join("home/.netrc");
    let lock = || {
        let mut command = directory.kiln_go(&go, "app", ["lock"]);
        command.env("GOPRIVATE", host.host());
        host.wrap(&command)
    };
    let prefix = format!(
        "error: cannot fetch {LIB}@{LIB_VERSION} direct from version control: version control refused access (credentials needed); "
    );
    let mut texts = Vec::new();

    // No ~/.netrc.
    texts.push(failure(
        lock(),
        &[
            &format!(
                "{prefix}no credentials for git.corp.example in ~/.netrc ({} does not exist) or a git credential helper: ",
                netrc.display()
            ),
            "terminal prompts disabled",
            "hint: give git access to git.corp.example",
        ],
    ));
    // NETRC names a file with the right entry: git does not read it, and kiln says where
    // it looked.
    let elsewhere = directory.write("elsewhere/netrc", host.netrc_line(host.password()), 0o600);
    texts.push(failure(
        lock().env("NETRC", &elsewhere),
        &[&format!(
            "{prefix}no credentials for git.corp.example in ~/.netrc ({} does not exist)",
            netrc.display()
        )],
    ));
    // A ~/.netrc entry for another host only.
    directory.write(
        "home/.netrc",
        "machine other.example login alice password other-token\n",
        0o600,
    );
    texts.push(failure(
        lock(),
        &[&format!(
            "{prefix}no credentials for git.corp.example in ~/.netrc ({} has no complete `machine git.corp.example` entry)",
            netrc.display()
        )],
    ));
    // The entry, with a password the host refuses.
    directory.write(
        "home/.netrc",
        host.netrc_line(&format!("expired-{}", host.password())),
        0o600,
    );
    texts.push(failure(
        lock(),
        &[
            &format!(
                "{prefix}found credentials for git.corp.example in {} (machine git.corp.example), and git.corp.example refused them: ",
                netrc.display()
            ),
            &format!(
                "hint: check the login and token of the `machine git.corp.example` entry in {}",
                netrc.display()
            ),
        ],
    ));
    for text in &texts {
        eprintln!("{text}");
        assert!(!text.contains(host.password()), "{text}");
    }
}
