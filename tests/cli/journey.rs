//! What a new user trips on first (issue 16): an unrelated enclosing git repository, a
//! command the image does not hold, a package output given where an image is wanted, help
//! texts that disagree with themselves, and lock errors that say the module twice.

use std::path::Path;

use crate::harness::*;

const KILN_TOML: &str = "schema = 1\n\n[packages.default]\nname = \"app\"\nversion = \"0.1\"\n\n[images.container]\npackage = \"default\"\nname = \"app\"\n";

/// A kiln project `app` at `folder` (relative to `dir`): go.mod, main.go and `kiln_toml`.
fn project(dir: &TestDir, folder: &str, kiln_toml: &str) {
    dir.write(
        &format!("{folder}/go.mod"),
        "module example.com/app\n\ngo 1.21\n",
        0o644,
    );
    dir.write(
        &format!("{folder}/main.go"),
        "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n",
        0o644,
    );
    dir.write(&format!("{folder}/kiln.toml"), kiln_toml, 0o644);
}

/// The image annotations `kiln inspect --json result` reports in `folder`.
fn annotations(
    dir: &TestDir,
    go: &Path,
    folder: &str,
) -> serde_json::Map<String, serde_json::Value> {
    let report: serde_json::Value = serde_json::from_str(&success(dir.kiln_go(
        go,
        folder,
        ["inspect", "--json", "result"],
    )))
    .unwrap();
    report[0]["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default()
}

/// Regression test: a project in a folder another repository ignores got that repository's
/// HEAD as its revision, so every unrelated commit changed the image digest.
#[test]
fn only_the_projects_own_repository_is_stamped_into_the_image() {
    let test = "journey::only_the_projects_own_repository_is_stamped_into_the_image";
    let Some(go) = require_go(test) else { return };
    if !require("git", test) {
        return;
    }
    let dir = TestDir::new();
    // A monorepo that tracks services/api and ignores target/.
    dir.write("mono/.gitignore", "target/\nresult\n", 0o644);
    project(&dir, "mono/services/api", KILN_TOML);
    let mono = dir.join("mono");
    git(&mono, &["init", "-q"]);
    git(&mono, &["add", "."]);
    git(&mono, &["commit", "-q", "-m", "monorepo"]);
    let head = git(&mono, &["rev-parse", "HEAD"]).trim().to_owned();

    success(dir.kiln_go(&go, "mono/services/api", ["build", ".#container"]));
    let tracked = annotations(&dir, &go, "mono/services/api");
    assert_eq!(
        tracked["org.opencontainers.image.revision"], head,
        "{tracked:?}"
    );

    // The same project under the ignored target/: not the monorepo's.
    project(&dir, "mono/target/tmp/app", KILN_TOML);
    success(dir.kiln_go(&go, "mono/target/tmp/app", ["build", ".#container"]));
    let ignored = annotations(&dir, &go, "mono/target/tmp/app");
    assert!(
        !ignored.contains_key("org.opencontainers.image.revision")
            && !ignored.contains_key("org.opencontainers.image.source"),
        "{ignored:?}"
    );
    let before = std::fs::read(dir.join("mono/target/tmp/app/result")).unwrap();
    // An unrelated commit of the enclosing repository changes nothing.
    git(&mono, &["commit", "-q", "--allow-empty", "-m", "unrelated"]);
    success(dir.kiln_go(&go, "mono/target/tmp/app", ["build", ".#container"]));
    let after = std::fs::read(dir.join("mono/target/tmp/app/result")).unwrap();
    assert!(
        before == after,
        "the image changed with an unrelated commit"
    );
}

/// Regression test: `cmd = ["/usr/bin/example"]` when the program is at /bin/example built an
/// image that fails only when it starts.
#[test]
fn a_command_the_image_does_not_hold_is_an_error() {
    let test = "journey::a_command_the_image_does_not_hold_is_an_error";
    let Some(go) = require_go(test) else { return };
    let dir = TestDir::new();
    project(
        &dir,
        "app",
        &format!("{KILN_TOML}cmd = [\"/usr/bin/app\", \"--serve\"]\n"),
    );
    let error = failure(
        dir.kiln_go(&go, "app", ["build", ".#container"]),
        &[
            "image `container`: `cmd` starts /usr/bin/app, which is in no layer of the image; its executables: /bin/app",
            "hint: cmd = [\"/bin/app\"]",
        ],
    );
    assert!(!dir.join("app/result").exists(), "{error}");

    // The entrypoint is checked the same way.
    project(
        &dir,
        "app",
        &format!("{KILN_TOML}entrypoint = [\"/app\"]\n"),
    );
    failure(
        dir.kiln_go(&go, "app", ["build", ".#container"]),
        &["`entrypoint` starts /app, which is in no layer of the image"],
    );

    // A folder is no program.
    project(&dir, "app", &format!("{KILN_TOML}cmd = [\"/bin\"]\n"));
    failure(
        dir.kiln_go(&go, "app", ["build", ".#container"]),
        &["`cmd` starts /bin, which is a folder in the image, not a program"],
    );

    // A bare name is looked up in PATH by the runtime; a path through a symlink resolves.
    project(&dir, "app", &format!("{KILN_TOML}cmd = [\"app\"]\n"));
    success(dir.kiln_go(&go, "app", ["build", ".#container"]));
    project(
        &dir,
        "app",
        &format!(
            "{KILN_TOML}cmd = [\"/usr/local/bin/app\"]\n\n[[images.container.symlinks]]\npath = \"/usr/local/bin\"\ntarget = \"../../bin\"\n"
        ),
    );
    success(dir.kiln_go(&go, "app", ["build", ".#container"]));
}

/// Regression test: `kiln load result` on a package's output said `kiln.toml has no package or
/// image `result``.
#[test]
fn a_package_output_is_named_as_one() {
    let test = "journey::a_package_output_is_named_as_one";
    let Some(go) = require_go(test) else { return };
    let dir = TestDir::new();
    project(&dir, "app", KILN_TOML);
    success(dir.kiln_go(&go, "app", ["build"]));
    assert!(dir.join("app/result/bin/app").is_file());
    for command in [
        vec!["load", "result"],
        vec!["inspect", "result"],
        vec!["sbom", "result"],
        vec!["push", "result", "127.0.0.1:9/app:1"],
    ] {
        let error = failure(
            dir.kiln_go(&go, "app", &command),
            &[
                "error: result is a package's output (its programs: bin/app), not an image",
                "hint: build an image of it with `kiln build .#container`",
            ],
        );
        assert!(!error.contains("has no package or image"), "{error}");
    }
    // Outside a project, and a folder that holds no programs.
    dir.write("elsewhere/notes/readme.txt", "", 0o644);
    failure(
        dir.kiln(["load", "notes"])
            .current_dir(dir.join("elsewhere")),
        &[
            "error: notes is not an image: it has neither `index.json` (OCI layout) nor `manifest.json` (docker-archive)",
        ],
    );
}

/// Regression test: `kiln init --help` printed its default twice and `kiln push --help`
/// listed its arguments otherwise than its usage line.
#[test]
fn help_texts_agree_with_themselves() {
    let dir = TestDir::new();
    let top = success(dir.kiln(["--help"]));
    let commands: Vec<String> = top
        .lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .filter(|name| name != "help")
        .collect();
    assert!(commands.len() >= 10, "{top}");
    for command in &commands {
        let help = success(dir.kiln([command.as_str(), "--help"]));
        // An argument's help spans lines: an entry starts at an indented `-x`, `--x`, `<X>`
        // or `[X]` and goes on over the lines indented further.
        let mut entries: Vec<String> = Vec::new();
        for line in help.lines() {
            let starts = !line.starts_with("  ") || line.trim_start().starts_with(['-', '<', '[']);
            match entries.last_mut() {
                Some(entry) if !starts => entry.push_str(line),
                _ => entries.push(line.to_owned()),
            }
        }
        for entry in &entries {
            assert!(
                entry.matches("[default:").count() <= 1,
                "kiln {command} --help shows a default twice:\n{entry}"
            );
        }
    }
    let push = success(dir.kiln(["push", "--help"]));
    assert!(
        push.contains("Usage: kiln push [OPTIONS] [IMAGE] <REF>"),
        "{push}"
    );
    assert!(
        push.contains("\n  [IMAGE]  ") && push.contains("\n  <REF>    "),
        "{push}"
    );
    assert!(
        !push.contains("\n  <IMAGE>") && !push.contains("\n  [REF]"),
        "{push}"
    );
    let init = success(dir.kiln(["init", "--help"]));
    assert!(init.contains("[default: the current folder]"), "{init}");
    assert!(!init.contains("[default: .]"), "{init}");
}

/// Regression test: `cannot fetch X@v: X@v: GET …` said the module twice.
#[test]
fn lock_errors_name_the_module_once() {
    let test = "journey::lock_errors_name_the_module_once";
    let Some(go) = require_go(test) else { return };
    let dir = TestDir::new();
    crate::lock::setup(&dir, &go);
    let error = failure(
        dir.kiln_go(&go, "app", ["lock"])
            .env("GOPROXY", "http://127.0.0.1:9/unreachable"),
        &[
            "error: cannot fetch example.com/",
            ": GET http://127.0.0.1:9/unreachable/",
        ],
    );
    let line = error
        .lines()
        .find(|line| line.starts_with("error: "))
        .unwrap();
    let module = line
        .trim_start_matches("error: cannot fetch ")
        .split(':')
        .next()
        .unwrap();
    assert_eq!(line.matches(module).count(), 1, "{line}");
}
