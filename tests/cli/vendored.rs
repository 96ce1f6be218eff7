//! Issue 17: vendored projects are locked, checked and built offline like any other. The
//! project is tests/fixtures/vendored (two vendored modules) with a go.sum written here: kiln
//! records go.sum's hashes as they are and never checks them against bytes (vendor/ holds
//! neither the zips nor the go.mod files they hash), so well-formed hashes are enough. The
//! same checks on a ~100-module project made by bench/make-vendored.py are in the issue's
//! report.

use std::path::Path;
use std::process::Command;

use crate::harness::*;

/// `h1:` hashes of 32 bytes each (the last data character carries two zero bits).
fn h1(letter: char) -> String {
    format!("h1:{}A=", letter.to_string().repeat(42))
}

/// go.sum: both lines of each vendored module, and the go.mod of an older greet that the
/// module graph reads and vendor/ does not hold.
fn go_sum() -> String {
    format!(
        "example.com/greet v1.1.0/go.mod {}\nexample.com/greet v1.2.0 {}\nexample.com/greet v1.2.0/go.mod {}\nexample.com/units v0.3.1 {}\nexample.com/units v0.3.1/go.mod {}\n",
        h1('C'),
        h1('D'),
        h1('E'),
        h1('F'),
        h1('G')
    )
}

fn shop(dir: &TestDir) -> std::path::PathBuf {
    let root = dir.fixture("vendored", "shop");
    std::fs::write(root.join("go.sum"), go_sum()).unwrap();
    root
}

fn edit(path: &Path, from: &str, to: &str) -> String {
    let before = std::fs::read_to_string(path).unwrap();
    assert!(before.contains(from), "{}: {from}", path.display());
    std::fs::write(path, before.replace(from, to)).unwrap();
    before
}

/// Run, require success, return stderr (where kiln's status lines go).
#[track_caller]
fn succeeds(mut command: Command) -> String {
    let output = run(&mut command);
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        stdout(&output),
        stderr(&output)
    );
    stderr(&output)
}

/// `kiln lock --check`'s exit code, stdout and first stderr line.
fn check(dir: &TestDir, go: &Path) -> (Option<i32>, String, String) {
    let output = run(dir.kiln_go(go, "shop", ["lock", "--check"]));
    let first = stderr(&output).lines().next().unwrap_or("").to_owned();
    (output.status.code(), stdout(&output), first)
}

#[test]
fn issue_17_a_vendored_project_is_locked_from_vendor_and_checked() {
    let test = "issue_17_a_vendored_project_is_locked_from_vendor_and_checked";
    let Some(go) = require_go(test) else { return };
    let dir = TestDir::new();
    let root = shop(&dir);
    // GOPROXY is `off` for every kiln a test runs: a fetch would fail.
    let lock_stderr = succeeds(dir.kiln_go(&go, "shop", ["lock"]));
    assert!(
        lock_stderr.contains("wrote ")
            && lock_stderr.contains(
                "kiln.lock (3 modules from go.sum, 2 of them vendored: taken from vendor/modules.txt and go.sum as they are, none fetched)"
            ),
        "{lock_stderr}"
    );
    let lock = std::fs::read_to_string(root.join("kiln.lock")).unwrap();
    let modules_txt = std::fs::read(root.join("vendor/modules.txt")).unwrap();
    assert!(
        lock.starts_with(&format!(
            "# kiln.lock: written by `kiln lock`; commit it. Do not edit.\nversion = 2\n\n[vendor]\nmodules-txt = \"sha256:{}\"\n\n[go]\ngo = \"1.22\"\n",
            sha256_hex(&modules_txt)
        )),
        "{lock}"
    );
    assert!(
        lock.ends_with(&format!(
            "\n[[module]]\npath = \"example.com/greet\"\nversion = \"v1.1.0\"\ngo-mod = \"{}\"\n\n[[module]]\npath = \"example.com/greet\"\nversion = \"v1.2.0\"\nh1 = \"{}\"\ngo-mod = \"{}\"\nvendored = true\n\n[[module]]\npath = \"example.com/units\"\nversion = \"v0.3.1\"\nh1 = \"{}\"\ngo-mod = \"{}\"\nvendored = true\n",
            h1('C'),
            h1('D'),
            h1('E'),
            h1('F'),
            h1('G')
        )),
        "{lock}"
    );
    assert!(!lock.contains("nar ="), "{lock}");
    assert_eq!(
        check(&dir, &go),
        (
            Some(0),
            String::new(),
            "kiln.lock is up to date (3 modules)".to_owned()
        )
    );
    // A vendored build with a lock builds with its release, offline as ever.
    success(dir.kiln_go(&go, "shop", ["build", "default"]));

    let stale = |count: usize| {
        format!(
            "error: {} is out of date with go.mod, go.sum and vendor/modules.txt ({count} differences)",
            root.join("kiln.lock").display()
        )
    };
    // go.sum changes: a hash, a line dropped.
    let sum = root.join("go.sum");
    let before = edit(
        &sum,
        &format!("v1.1.0/go.mod {}", h1('C')),
        &format!("v1.1.0/go.mod {}", h1('Q')),
    );
    assert_eq!(
        check(&dir, &go),
        (
            Some(1),
            "~ example.com/greet@v1.1.0 (its hashes in go.sum differ from kiln.lock)\n".to_owned(),
            stale(1)
        )
    );
    std::fs::write(
        &sum,
        before
            .lines()
            .skip(1)
            .map(|line| format!("{line}\n"))
            .collect::<String>(),
    )
    .unwrap();
    assert_eq!(
        check(&dir, &go).1,
        "- example.com/greet@v1.1.0 (in kiln.lock, not in go.sum)\n"
    );
    std::fs::write(&sum, &before).unwrap();
    // vendor/modules.txt changes: a package no longer vendored.
    let modules = root.join("vendor/modules.txt");
    let before = edit(&modules, "example.com/units/si\n", "");
    let changed = std::fs::read(&modules).unwrap();
    assert_eq!(
        check(&dir, &go),
        (
            Some(1),
            format!(
                "~ vendor/modules.txt changed: it is sha256:{}, kiln.lock has sha256:{}\n~ example.com/units@v0.3.1 (not vendored in vendor/modules.txt, vendored in kiln.lock)\n",
                sha256_hex(&changed),
                sha256_hex(&modules_txt)
            ),
            stale(2)
        )
    );
    std::fs::write(&modules, &before).unwrap();
    // go.mod changes.
    let go_mod = root.join("go.mod");
    let before = edit(&go_mod, "go 1.22\n", "go 1.23\n");
    assert_eq!(
        check(&dir, &go),
        (
            Some(1),
            "go line: go.mod says 1.23, kiln.lock has 1.22\n".to_owned(),
            stale(1)
        )
    );
    let output = run(dir.kiln_go(&go, "shop", ["build", "default"]));
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "error: cannot build .#default: kiln.lock is out of date:\n  go line: go.mod says 1.23, kiln.lock has 1.22\nhint: run `kiln lock`\n"
    );
    std::fs::write(&go_mod, &before).unwrap();
    assert_eq!(check(&dir, &go).0, Some(0));

    // vendor/modules.txt that disagrees with go.mod: an error before anything is compared.
    let before = edit(
        &modules,
        "# example.com/greet v1.2.0",
        "# example.com/greet v1.2.1",
    );
    for args in [["lock"].as_slice(), ["lock", "--check"].as_slice()] {
        let output = run(dir.kiln_go(&go, "shop", args));
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert_eq!(
            stderr(&output),
            "error: vendor/modules.txt disagrees with go.mod: go.mod requires example.com/greet v1.2.0 but vendor/modules.txt has v1.2.1\nhint: run `go mod vendor` to refresh vendor/, or fix go.mod\n",
            "{args:?}"
        );
    }
    std::fs::write(&modules, &before).unwrap();
    // A vendored module whose go.sum line is missing.
    let before = edit(&sum, &format!("example.com/units v0.3.1 {}\n", h1('F')), "");
    let output = run(dir.kiln_go(&go, "shop", ["lock"]));
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "error: vendor/modules.txt:4: example.com/units v0.3.1 is vendored, and go.sum has no `h1:` line for its zip\nhint: run `go mod tidy` and `go mod vendor` to write go.sum's lines for it\n"
    );
    std::fs::write(&sum, &before).unwrap();

    // A kiln.lock from before vendored locks (version 1, modules fetched with NAR hashes) is
    // read, and reported as out of date.
    let nar = "sha256-FIwyH67KryRWI9Bk4R8s1zFP0IgKR4L66wNQJYQZLeg=";
    let old = format!(
        "# kiln.lock: written by `kiln lock`; commit it. Do not edit.\nversion = 1\n\n[go]\ngo = \"1.22\"\ntoolchain = \"go1.27.3\"\n\n[[module]]\npath = \"example.com/greet\"\nversion = \"v1.1.0\"\ngo-mod = \"{}\"\n\n[[module]]\npath = \"example.com/greet\"\nversion = \"v1.2.0\"\nh1 = \"{}\"\ngo-mod = \"{}\"\nnar = \"{nar}\"\n\n[[module]]\npath = \"example.com/units\"\nversion = \"v0.3.1\"\nh1 = \"{}\"\ngo-mod = \"{}\"\nnar = \"{nar}\"\n",
        h1('C'),
        h1('D'),
        h1('E'),
        h1('F'),
        h1('G')
    );
    std::fs::write(root.join("kiln.lock"), &old).unwrap();
    assert_eq!(
        check(&dir, &go),
        (
            Some(1),
            "vendor: the project vendors its modules (vendor/modules.txt), and kiln.lock pins fetched ones\n".to_owned(),
            stale(1)
        )
    );
    let output = run(dir.kiln_go(&go, "shop", ["build", "default"]));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).ends_with("kiln.lock pins fetched ones\nhint: run `kiln lock`\n"),
        "{}",
        stderr(&output)
    );
    success(dir.kiln_go(&go, "shop", ["lock"]));
    assert_eq!(
        std::fs::read_to_string(root.join("kiln.lock")).unwrap(),
        lock
    );
}

#[test]
fn issue_17_gomod2nix_export_of_a_vendored_project_is_refused() {
    let test = "issue_17_gomod2nix_export_of_a_vendored_project_is_refused";
    let Some(go) = require_go(test) else { return };
    let dir = TestDir::new();
    let root = shop(&dir);
    let output = run(dir.kiln_go(&go, "shop", ["lock", "--gomod2nix"]));
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "error: cannot write gomod2nix.toml for a vendored project: it holds the NAR hash of each module as Go downloads it, and vendor/ holds only the packages the build imports (no go.mod, tests or testdata), so kiln cannot compute them\nhint: lock without vendor/ to write gomod2nix.toml (move vendor/ aside, run the lock with the network; `go mod vendor` brings it back), or build with kiln from vendor/\n"
    );
    assert!(!root.join("gomod2nix.toml").exists());
    assert!(!root.join("kiln.lock").exists());
}

/// `command` run in a network namespace of its own: only a loopback interface, and down.
fn without_network(command: &Command) -> Command {
    wrapped("unshare", &["-n"], command)
}

fn network_namespaces(test: &str) -> bool {
    let works = Command::new("unshare")
        .args(["-n", "true"])
        .status()
        .is_ok_and(|status| status.success());
    if !works {
        skip(
            test,
            "`unshare -n` (a network namespace: needs root or user namespaces)",
        );
    }
    works
}

/// Issue 17, item 3: after `kiln lock` (with the network), `kiln build .#container` on the
/// static base needs none, for a vendored and for a locked project; in a kiln home that
/// lacks the static base, the build names what is missing and says to run `kiln lock`.
#[test]
fn issue_17_builds_after_kiln_lock_need_no_network() {
    let test = "issue_17_builds_after_kiln_lock_need_no_network";
    let Some(go) = require_go(test) else { return };
    if !network_namespaces(test) {
        return;
    }
    let dir = TestDir::new();
    let root = shop(&dir);
    edit(
        &root.join("container.toml"),
        "[images.container]\n",
        "[images.container]\nbase = \"static\"\n",
    );
    dir.write(
        "plain/go.mod",
        "module example.com/plain\n\ngo 1.22\n",
        0o644,
    );
    dir.write(
        "plain/main.go",
        "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"plain\") }\n",
        0o644,
    );
    dir.write(
        "plain/kiln.toml",
        "schema = 1\n\n[packages.default]\nname = \"plain\"\nversion = \"1.0\"\n\n[images.container]\nbase = \"static\"\n",
        0o644,
    );
    for project in ["shop", "plain"] {
        let locked = succeeds(dir.kiln_go(&go, project, ["lock"]));
        assert!(
            locked.contains(
                "stored for offline builds: kiln's static base (ca-certificates 2026.10.19.post1, tzdata 2026.6)"
            ),
            "{project}: {locked}"
        );
        let built = succeeds(without_network(&dir.kiln_go(
            &go,
            project,
            ["build", ".#container"],
        )));
        assert!(!built.contains("fetching"), "{project}: {built}");
        let report: serde_json::Value = serde_json::from_str(&success(
            dir.kiln(["inspect", "--json"])
                .arg(dir.join(&format!("{project}/result"))),
        ))
        .unwrap();
        // The static base's layer, then the programs'.
        assert_eq!(
            report[0]["layers"].as_array().unwrap().len(),
            2,
            "{project}"
        );
    }
    // Another kiln home, which `kiln lock` never filled: the missing input is named.
    let mut build = without_network(&dir.kiln_go(&go, "plain", ["build", ".#container"]));
    build.env("KILN_HOME", dir.join("empty-home"));
    let output = run(build);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains(
            "error: cannot build .#container: kiln's static base is not in the store, and its source ca-certificates 2026.10.19.post1 cannot be fetched: GET https://files.pythonhosted.org/"
        ),
        "{message}"
    );
    assert!(
        message.ends_with(
            "hint: run `kiln lock` where the network is reachable: it fetches the static base into the store, and builds after that need no network\n"
        ),
        "{message}"
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}
