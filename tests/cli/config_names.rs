//! Issue 16, items 1 and 6: names a new user gives (`kiln init HelloWorld`, a go.mod of
//! `github.com/Acme/WebApp`) make a project that runs and builds at once, and a mistake in
//! kiln.toml is answered in kiln.toml's words, with a hint in its syntax.

use std::path::Path;

use crate::harness::*;

/// `kiln run` prints the greeting and `kiln build .#container` makes an image named
/// `image_name:0.1` holding `/bin/program`, in the project in `folder`.
fn runs_and_builds(dir: &TestDir, go: &Path, folder: &str, program: &str, image_name: &str) {
    let config = std::fs::read_to_string(dir.join(&format!("{folder}/kiln.toml"))).unwrap();
    assert!(
        config.contains(&format!(
            "[images.container]\npackage = \"default\"\nname = \"{image_name}\"\n"
        )),
        "kiln init names the image explicitly:\n{config}"
    );
    let output = run(dir.kiln_go(go, folder, ["run"]));
    assert!(output.status.success(), "kiln run: {}", stderr(&output));
    assert_eq!(stdout(&output), format!("Hello from {program}!\n"));
    success(dir.kiln_go(go, folder, ["build", ".#container"]));
    let report: serde_json::Value = serde_json::from_str(&success(
        dir.kiln(["inspect", "--json"])
            .arg(dir.join(&format!("{folder}/result"))),
    ))
    .unwrap();
    assert_eq!(report[0]["names"][0], format!("{image_name}:0.1"));
    assert_eq!(
        report[0]["cmd"],
        serde_json::json!([format!("/bin/{program}")])
    );
}

/// `kiln init HelloWorld` wrote a project whose image name defaulted to `HelloWorld`: both
/// `kiln run` and `kiln build .#container` failed with "the image name defaults to the
/// package's name, and: invalid image reference `HelloWorld`".
#[test]
fn issue16_init_with_a_capital_letter_runs_and_builds() {
    let test = "issue16_init_with_a_capital_letter_runs_and_builds";
    let Some(go) = require_go(test) else { return };
    let dir = TestDir::new();
    success(dir.kiln_go(&go, ".", ["init", "HelloWorld"]));
    runs_and_builds(&dir, &go, "HelloWorld", "HelloWorld", "helloworld");
}

/// The same beside a go.mod of `module github.com/Acme/WebApp`: the package and program are
/// `WebApp`, as `go build` names it, the image `webapp`.
#[test]
fn issue16_init_beside_a_capitalised_module_runs_and_builds() {
    let test = "issue16_init_beside_a_capitalised_module_runs_and_builds";
    let Some(go) = require_go(test) else { return };
    let dir = TestDir::new();
    dir.write(
        "webapp/go.mod",
        "module github.com/Acme/WebApp\n\ngo 1.22\n",
        0o644,
    );
    success(dir.kiln_go(&go, "webapp", ["init"]));
    let config = std::fs::read_to_string(dir.join("webapp/kiln.toml")).unwrap();
    assert!(config.contains("\nname = \"WebApp\"\n"), "{config}");
    runs_and_builds(&dir, &go, "webapp", "WebApp", "webapp");
}

/// The mistakes of issue 16, item 6, through the real binary: the exact error and hint.
#[test]
fn issue16_kiln_toml_errors_have_hints_in_kiln_toml_syntax() {
    let header = "schema = 1\n[packages.default]\nname = \"example\"\n";
    let cases = [
        (
            "[images.container]\ntga = \"0.2\"\n",
            "error: kiln.toml:5:1: unknown key `tga` in [images.container]",
            "hint: did you mean `tag`?",
        ),
        (
            "[images.container]\ncmd = \"/bin/example\"\n",
            "error: kiln.toml:5:7: `cmd` must be a list of strings, not a string",
            "hint: write `cmd = [\"/bin/example\"]`",
        ),
        (
            "[images.container]\npaths = [\"bin\"]\n",
            "error: kiln.toml:5:10: `bin` in `paths` is not an absolute image path",
            "hint: write `paths = [\"/bin\"]`",
        ),
        (
            "include = [\"more.toml\"]\n",
            "error: kiln.toml:4:1: `include` is a top-level key, but here it is in [packages.default]",
            "hint: move it above `[packages.default]`, the first table: every key after a table's header belongs to that table",
        ),
        (
            "version = 0.1\n",
            "error: kiln.toml:4:11: `version` must be a string, not a number",
            "hint: quote it: `version = \"0.1\"`",
        ),
    ];
    for (rest, error, hint) in cases {
        let dir = TestDir::new();
        dir.write("app/kiln.toml", format!("{header}{rest}"), 0o644);
        let mut command = dir.kiln(["build", ".#container"]);
        command.current_dir(dir.join("app"));
        let said = failure(command, &[]);
        let lines: Vec<&str> = said.lines().collect();
        assert_eq!(
            lines,
            [
                error.replace("error: ", "error: cannot build .#container: "),
                hint.to_owned()
            ],
            "{rest}"
        );
    }
}
