//! GOAUTH's command and `git DIR` methods through the CLI (issue 19), against the real private
//! host of [`crate::git_host`]: its module proxy (`https://git.corp.example/goproxy`, TLS from
//! the test CA, basic auth) serves a module Go fetched from the host's repository, and `kiln
//! lock` must get it with no `.netrc` at all, the credentials coming from a real command
//! script (printing GOAUTH's credential-set format) or from git's `store` credential helper
//! configured in DIR's repository. The password (and its base64 form, what goes over the
//! wire) is in no output of kiln and no file it wrote.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::git_host::{Fixture, GitHost, Setup, files_under, go_download};
use crate::harness::*;

const MODULE: &str = "git.corp.example/team/lib";

/// The project `app` requiring [`MODULE`] v1.0.0, which the host's private proxy serves
/// (copied from what real Go downloaded from the repository, with the fixture's .netrc,
/// which is then removed: kiln gets no `.netrc`).
fn proxied_project(fixture: &Fixture) {
    let Fixture {
        go,
        host,
        directory,
        ..
    } = fixture;
    let (output, json) = go_download(
        host,
        directory,
        go,
        "modcache",
        &format!("{MODULE}@v1.0.0"),
        &[],
    );
    assert!(output.status.success(), "{json:#}\n{}", host.error_log());
    std::fs::remove_file(directory.join("home/.netrc")).unwrap();
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
        "schema = 1\n\n[packages.default]\nname = \"app\"\nversion = \"1.0\"\n",
        0o644,
    );
}

/// `kiln lock` in `app` through the host's proxy, in the host's namespace, with `goauth`,
/// from an empty store and no kiln.lock (so that it fetches).
fn lock(fixture: &Fixture, goauth: &str) -> Command {
    let _ = std::fs::remove_dir_all(fixture.directory.join("kiln-home"));
    let _ = std::fs::remove_file(fixture.directory.join("app/kiln.lock"));
    let mut command = fixture.directory.kiln_go(&fixture.go, "app", ["lock"]);
    command
        .env("GOPROXY", fixture.host.proxy_url())
        .env("GOAUTH", goauth);
    fixture.host.wrap(&command)
}

/// Lock, expecting success; the module is then in kiln.lock. Returns what kiln printed.
#[track_caller]
fn locks(fixture: &Fixture, goauth: &str) -> String {
    let output = run(lock(fixture, goauth));
    let text = format!("{}{}", stdout(&output), stderr(&output));
    assert!(
        output.status.success(),
        "kiln lock with GOAUTH={goauth} failed:\n{text}\n{}",
        fixture.host.error_log()
    );
    let lock_text = std::fs::read_to_string(fixture.directory.join("app/kiln.lock")).unwrap();
    assert!(lock_text.contains(MODULE), "{lock_text}");
    text
}

/// The password and its basic-auth form.
fn secrets(host: &GitHost) -> [String; 2] {
    use base64::Engine as _;
    [
        host.password().to_owned(),
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            host.user(),
            host.password()
        )),
    ]
}

/// Neither secret in any of `outputs`, nor in the store, kiln.lock, or (`extra`) files.
#[track_caller]
fn assert_no_secrets(fixture: &Fixture, outputs: &[String], extra: &[PathBuf]) {
    let secrets = secrets(&fixture.host);
    for text in outputs {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "a secret in: {text}");
        }
    }
    let files: Vec<PathBuf> = files_under(&fixture.directory.join("kiln-home"))
        .into_iter()
        .chain([fixture.directory.join("app/kiln.lock")])
        .chain(extra.iter().cloned())
        .collect();
    for file in &files {
        let Ok(bytes) = std::fs::read(file) else {
            continue;
        };
        for secret in &secrets {
            assert!(
                !bytes
                    .windows(secret.len())
                    .any(|window| window == secret.as_bytes()),
                "{} holds a secret",
                file.display()
            );
        }
    }
}

/// A shell script at `path` (mode 0755) with `body`.
fn script(path: &Path, body: &str) -> String {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_str().unwrap().to_owned()
}

/// A GOAUTH command that logs each run (its arguments and the first line of its input) to
/// `log`, and prints the host's basic auth for the proxy's prefix: always, or (`url_only`)
/// only when Go would give it the URL after a 4xx.
fn helper(fixture: &Fixture, name: &str, password: &str, url_only: bool) -> String {
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{password}", fixture.host.user()));
    let log = fixture.directory.join(&format!("{name}.log"));
    // Go appends the URL after the command's own words: `$# -le 1` with the one flag the
    // tests give.
    let gate = if url_only {
        "[ $# -le 1 ] && exit 0\n"
    } else {
        ""
    };
    script(
        &fixture.directory.join(&format!("bin/{name}")),
        &format!(
            "echo \"run: $*\" >> {log}\nhead -n 1 >> {log}\n{gate}printf '%s\\n\\nAuthorization: Basic %s\\n\\n' '{prefix}' '{basic}'",
            log = log.display(),
            prefix = fixture.host.proxy_url(),
        ),
    )
}

#[test]
fn kiln_locks_from_a_private_https_proxy_with_a_goauth_command() {
    let test = "goauth_host::kiln_locks_from_a_private_https_proxy_with_a_goauth_command";
    let Some(fixture) = Setup::new(test).netrc().start() else {
        return;
    };
    proxied_project(&fixture);
    let directory = &fixture.directory;
    let password = fixture.host.password().to_owned();
    let mut outputs = Vec::new();

    // A command that gives the credentials at once: run once, with no argument and no input,
    // before the first request.
    let eager = helper(&fixture, "eager", &password, false);
    outputs.push(locks(&fixture, &eager));
    assert_no_secrets(&fixture, &outputs, &[]);
    let log = std::fs::read_to_string(directory.join("eager.log")).unwrap();
    eprintln!("GOAUTH={eager}: its runs:\n{log}");
    assert_eq!(log, "run: \n", "run once, no arguments, no input");

    // A command that answers only for a URL: run first with nothing, then after each 401
    // with the URL and the answer's status line on stdin.
    let lazy = helper(&fixture, "lazy", &password, true);
    outputs.push(locks(&fixture, &format!("{lazy} --unused-flag")));
    let log = std::fs::read_to_string(directory.join("lazy.log")).unwrap();
    eprintln!("GOAUTH={lazy}: its runs:\n{log}");
    let proxy = fixture.host.proxy_url();
    // Twice in all: the credentials it gave for the proxy's prefix are kept for the later
    // requests under it.
    let runs: Vec<&str> = log
        .lines()
        .filter(|line| line.starts_with("run:"))
        .collect();
    assert_eq!(runs.len(), 2, "{log}");
    assert!(log.starts_with("run: --unused-flag\n"), "{log}");
    assert!(
        log.contains(&format!("run: --unused-flag {proxy}/{MODULE}/@v/v1.0.0.")),
        "{log}"
    );
    assert!(
        log.ends_with("\nHTTP/1.1 401 Unauthorized\n"),
        "the answer's status line on stdin: {log}"
    );

    // `;`-separated methods: the earlier wins for one prefix.
    let wrong = helper(&fixture, "wrong", &format!("wrong-{password}"), false);
    outputs.push(locks(&fixture, &format!("{eager}; {wrong}; netrc")));
    let text = failure(
        lock(&fixture, &format!("{wrong}; {eager}")),
        &[&format!(
            "401 Unauthorized: git.corp.example refused the credentials from the GOAUTH command `{wrong}`"
        )],
    );
    outputs.push(text);

    // Errors: a command that does not exist, one that fails, one whose output is not GOAUTH's
    // format (the line named, not shown).
    let missing = directory.join("bin/no-such-helper");
    outputs.push(failure(
        lock(&fixture, missing.to_str().unwrap()),
        &[&format!(
            "401 Unauthorized; kiln found no credentials for git.corp.example: the GOAUTH command `{0}` gave none: cannot run `{0}`: No such file or directory (os error 2) (no such program: is it installed, and on PATH or named by an absolute path?)",
            missing.display()
        ), "hint: make GOAUTH's command print a credential set for https://git.corp.example/…"],
    ));
    let failing = script(
        &directory.join("bin/failing"),
        "echo 'helper: token expired, run helper login' >&2\nexit 7",
    );
    outputs.push(failure(
        lock(&fixture, &failing),
        &[&format!(
            "the GOAUTH command `{failing}` gave none: `{failing}` failed (exit status: 7): helper: token expired, run helper login"
        )],
    ));
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{password}", fixture.host.user()));
    let garbled = script(
        &directory.join("bin/garbled"),
        &format!("printf '%s\\n\\nAuthorization=Basic %s\\n\\n' '{proxy}' '{basic}'"),
    );
    outputs.push(failure(
        lock(&fixture, &garbled),
        &[&format!(
            "the GOAUTH command `{garbled}` gave none: `{garbled}` printed what GOAUTH does not accept: line 3: not a header line `Name: value` with a valid name and value (the line is not shown: it may hold a secret)"
        )],
    ));
    for text in &outputs {
        eprintln!("kiln lock said:\n{text}");
    }
    assert_no_secrets(&fixture, &outputs, &[]);
}

/// GOAUTH=`git DIR` with git's `store` helper configured in DIR's repository: after the
/// proxy's 401, `git credential fill` in DIR gives the host's credentials, kiln locks, and
/// git keeps them (approve); wrong ones are refused, named, and forgotten (reject).
#[test]
fn kiln_locks_from_a_private_https_proxy_with_goauth_git_dir() {
    let test = "goauth_host::kiln_locks_from_a_private_https_proxy_with_goauth_git_dir";
    let Some(fixture) = Setup::new(test).netrc().start() else {
        return;
    };
    proxied_project(&fixture);
    let directory = &fixture.directory;
    let password = fixture.host.password().to_owned();
    let repository = directory.join("credentials-repo");
    let store = directory.join("git-credentials");
    std::fs::create_dir_all(&repository).unwrap();
    git(&repository, &["init", "-q"]);
    git(
        &repository,
        &[
            "config",
            "credential.helper",
            &format!("store --file={}", store.display()),
        ],
    );
    let goauth = format!("git {}", repository.display());
    let host = fixture.host.host();
    let mut outputs = Vec::new();

    // Nothing stored: git has none, and kiln says so (git's own reason included).
    std::fs::write(&store, "").unwrap();
    outputs.push(failure(
        lock(&fixture, &goauth),
        &[&format!(
            "401 Unauthorized; kiln found no credentials for {host}: `git credential fill` in {} (GOAUTH git) gave none (git: fatal: could not read Username for 'https://{host}': terminal prompts disabled)",
            repository.display()
        )],
    ));

    // Stored: locked, and still stored after git's `approve`.
    let entry = format!("https://{}:{password}@{host}\n", fixture.host.user());
    std::fs::write(&store, &entry).unwrap();
    outputs.push(locks(&fixture, &goauth));
    assert_eq!(std::fs::read_to_string(&store).unwrap(), entry);
    assert_no_secrets(&fixture, &outputs, &[]);

    // A wrong password: refused, named, and git's store forgets it.
    std::fs::write(
        &store,
        format!("https://{}:wrong-{password}@{host}\n", fixture.host.user()),
    )
    .unwrap();
    outputs.push(failure(
        lock(&fixture, &goauth),
        &[&format!(
            "401 Unauthorized: {host} refused the credentials from `git credential fill` in {} (GOAUTH git)",
            repository.display()
        )],
    ));
    assert_eq!(std::fs::read_to_string(&store).unwrap(), "");
    for text in &outputs {
        eprintln!("kiln lock said:\n{text}");
    }
    assert_no_secrets(&fixture, &outputs, &[]);
}
