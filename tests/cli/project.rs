//! Go projects end to end: `kiln init`, `build`, `run`, `shell`, the store, and the errors
//! users hit, with the real Go toolchain and real engines.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::harness::*;

/// The store path a `result` link points at.
fn link_target(link: &Path) -> PathBuf {
    std::fs::read_link(link).unwrap_or_else(|error| panic!("{}: {error}", link.display()))
}

/// `kiln init NAME` in `dir`, checked.
fn init(dir: &TestDir, go: &Path, name: &str) {
    success(dir.kiln_go(go, ".", ["init", name]));
}

/// The manifest digest `kiln inspect --json` reports for an image file.
fn manifest_digest(dir: &TestDir, image: &Path) -> String {
    let report: serde_json::Value =
        serde_json::from_str(&success(dir.kiln(["inspect", "--json"]).arg(image))).unwrap();
    report[0]["manifest_digest"].as_str().unwrap().to_owned()
}

/// Load an image file into an engine and run it; returns what it printed.
fn load_and_run(host: &Option<String>, archive: &Path, reference: &str) -> String {
    let file = std::fs::File::open(archive).unwrap();
    let loaded = success(docker(host).arg("load").stdin(Stdio::from(file)));
    assert!(loaded.contains(reference), "{host:?}: {loaded}");
    success(docker(host).args(["run", "--rm", reference]))
}

fn remove_image(host: &Option<String>, reference: &str) -> Command {
    let mut command = docker(host);
    command.args(["rmi", "-f", reference]);
    command
}

/// The journey of design.md: an empty folder to `docker run`.
#[test]
fn journey_from_init_to_docker_run() {
    let test = "journey_from_init_to_docker_run";
    let Some(go) = require_go(test) else { return };
    let dir = TestDir::new();
    let said = stderr(&run(dir.kiln_go(&go, ".", ["init", "example"])));
    assert!(
        said.contains("created go.mod, main.go, main_test.go, kiln.toml, .gitignore"),
        "{said}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("example/.gitignore")).unwrap(),
        "# kiln build links\nresult*\n"
    );
    let go_mod = std::fs::read_to_string(dir.join("example/go.mod")).unwrap();
    assert!(go_mod.starts_with("module example\n\ngo 1."), "{go_mod}");

    // `kiln run` prints the greeting, passes arguments on and returns the program's status.
    let output = run(dir.kiln_go(&go, "example", ["run"]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "Hello from example!\n");

    // `kiln shell` has kiln's Go and settings: the generated test passes there.
    let shell = success(dir.kiln_go(
        &go,
        "example",
        [
            "shell",
            "-c",
            "go env GOFLAGS CGO_ENABLED GOTOOLCHAIN; echo $KILN_SHELL; go test ./...",
        ],
    ));
    let lines: Vec<&str> = shell.lines().collect();
    assert_eq!(
        lines[0], "-mod=readonly -trimpath -buildvcs=false",
        "{shell}"
    );
    assert_eq!(lines[1..4], ["0", "local", "default"], "{shell}");
    assert!(lines[4].starts_with("ok  \texample"), "{shell}");

    success(dir.kiln_go(&go, "example", ["build", ".#container"]));
    let result = dir.join("example/result");
    let stored = link_target(&result);
    assert!(
        stored.starts_with(dir.join("kiln-home/v1/store")),
        "{}",
        stored.display()
    );
    assert!(
        stored.to_string_lossy().ends_with("-example-0.1.tar"),
        "{}",
        stored.display()
    );

    // The binary is stored once: one layer, one file, nothing wasted.
    let report: serde_json::Value =
        serde_json::from_str(&success(dir.kiln(["inspect", "--json"]).arg(&result))).unwrap();
    let image = &report[0];
    assert_eq!(image["names"][0], "example:0.1");
    assert_eq!(image["cmd"], serde_json::json!(["/bin/example"]));
    assert_eq!(image["layers"].as_array().unwrap().len(), 1);
    assert_eq!(image["layers"][0]["file_count"], 1);
    assert_eq!(image["waste"]["wasted_bytes"], 0);

    for host in &docker_engines(test) {
        let _cleanup = LoadedImages {
            cleanups: vec![remove_image(host, "example:0.1")],
        };
        let output = load_and_run(host, &result, "example:0.1");
        assert_eq!(output, "Hello from example!\n", "{host:?}");
    }
}

/// `kiln shell` decides vendoring as the build does, from the sources it hashes: a vendor/
/// that .gitignore leaves out is not vendoring (the shell used to test for the file itself).
#[test]
fn shell_decides_vendoring_from_the_sources_the_build_hashes() {
    let test = "shell_decides_vendoring_from_the_sources_the_build_hashes";
    let Some(go) = require_go(test) else { return };
    let dir = TestDir::new();
    init(&dir, &go, "example");
    dir.write("example/vendor/modules.txt", "", 0o644);
    let goflags =
        |dir: &TestDir| success(dir.kiln_go(&go, "example", ["shell", "-c", "go env GOFLAGS"]));
    assert_eq!(goflags(&dir), "-mod=vendor -trimpath -buildvcs=false\n");
    dir.write("example/.gitignore", "result*\nvendor/\n", 0o644);
    assert_eq!(goflags(&dir), "-mod=readonly -trimpath -buildvcs=false\n");
}

/// The image kiln builds is no bigger than `docker build` of `FROM scratch` + `COPY` of the
/// same binary.
#[test]
fn project_image_no_bigger_than_docker_build() {
    let test = "project_image_no_bigger_than_docker_build";
    let Some(go) = require_go(test) else { return };
    let engines = docker_engines(test);
    if engines.is_empty() {
        return;
    }
    let dir = TestDir::new();
    let name = unique_name("project-size");
    init(&dir, &go, &name);
    success(dir.kiln_go(&go, &name, ["build", ".#container", "default"]));
    let binary =
        link_target(&dir.join(&format!("{name}/result-default"))).join(format!("bin/{name}"));
    std::fs::copy(&binary, dir.join("program")).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM scratch\nCOPY program /bin/{name}\nCMD [\"/bin/{name}\"]\n"),
    )
    .unwrap();
    for host in &engines {
        let _cleanup = LoadedImages {
            cleanups: vec![
                remove_image(host, &format!("{name}:0.1")),
                remove_image(host, &format!("{name}:built")),
            ],
        };
        success(
            docker(host)
                .args([
                    "build",
                    "--no-cache",
                    "-q",
                    "-t",
                    &format!("{name}:built"),
                    ".",
                ])
                .current_dir(dir.path()),
        );
        let output = load_and_run(
            host,
            &dir.join(&format!("{name}/result-container")),
            &format!("{name}:0.1"),
        );
        assert_eq!(output, format!("Hello from {name}!\n"));
        let size = |tag: &str| -> u64 {
            let text = success(docker(host).args([
                "image",
                "inspect",
                "--format",
                "{{.Size}}",
                &format!("{name}:{tag}"),
            ]));
            text.trim().parse().unwrap()
        };
        let (kiln, built) = (size("0.1"), size("built"));
        eprintln!("{host:?}: kiln image {kiln} bytes, docker build {built} bytes");
        assert!(
            kiln <= built,
            "{host:?}: kiln {kiln} > docker build {built}"
        );
    }
}

/// The same project in two folders, with two HOMEs and two kiln homes, at two times: the same
/// binary bytes, the same image bytes and digest, the same store paths.
#[test]
fn reproducible_across_folders_homes_and_stores() {
    let test = "reproducible_across_folders_homes_and_stores";
    let Some(go) = require_go(test) else { return };
    let first = TestDir::new();
    init(&first, &go, "example");
    let second = TestDir::new();
    copy_tree(&first.join("example"), &second.join("deep/er/example"));
    // Different mtimes and a file git would not see must not matter.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(
        second.join("deep/er/example/main.go"),
        std::fs::read(first.join("example/main.go")).unwrap(),
    )
    .unwrap();
    std::fs::write(
        second.join("deep/er/example/.gitignore"),
        "# kiln build links\nresult*\nscratch.log\n",
    )
    .unwrap();
    std::fs::write(
        first.join("example/.gitignore"),
        "# kiln build links\nresult*\nscratch.log\n",
    )
    .unwrap();
    std::fs::write(
        second.join("deep/er/example/scratch.log"),
        "ignored by git\n",
    )
    .unwrap();

    success(first.kiln_go(&go, "example", ["build", "default", "container"]));
    let mut command = second.kiln_go(&go, "deep/er/example", ["build", "default", "container"]);
    command.env("TZ", "Asia/Tokyo");
    success(command);

    let package =
        |dir: &TestDir, folder: &str| link_target(&dir.join(&format!("{folder}/result-default")));
    let image =
        |dir: &TestDir, folder: &str| link_target(&dir.join(&format!("{folder}/result-container")));
    let (package_a, package_b) = (
        package(&first, "example"),
        package(&second, "deep/er/example"),
    );
    let (image_a, image_b) = (image(&first, "example"), image(&second, "deep/er/example"));
    assert_ne!(package_a, package_b, "two stores");
    assert_eq!(
        package_a.file_name(),
        package_b.file_name(),
        "same inputs, same store name"
    );
    assert_eq!(image_a.file_name(), image_b.file_name());
    assert_eq!(
        std::fs::read(package_a.join("bin/example")).unwrap(),
        std::fs::read(package_b.join("bin/example")).unwrap(),
        "binary bytes differ"
    );
    assert_eq!(
        sha256_file(&image_a),
        sha256_file(&image_b),
        "image bytes differ"
    );
    assert_eq!(
        manifest_digest(&first, &image_a),
        manifest_digest(&second, &image_b)
    );
}

/// A vendored project with two programs and an internal package builds, runs and images.
#[test]
fn vendored_multi_package_project() {
    let test = "vendored_multi_package_project";
    let Some(go) = require_go(test) else { return };
    let dir = TestDir::new();
    dir.fixture("vendored", "shop");
    let output = run(dir.kiln_go(&go, "shop", ["run", "--", "one", "two"]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "Hello, shop, from a vendored module!\ntotal: 25.00\nargs: [one two]\n"
    );
    // The program's exit status is kiln's.
    let output = run(dir.kiln_go(&go, "shop", ["run", "--program", "shopctl"]));
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert_eq!(stdout(&output), "shopctl total: 5.00\n");

    success(dir.kiln_go(&go, "shop", ["build", "default", ".#container"]));
    let package = link_target(&dir.join("shop/result-default"));
    assert!(
        package.to_string_lossy().ends_with("-shop-1.0.0"),
        "{}",
        package.display()
    );
    let mut programs: Vec<String> = std::fs::read_dir(package.join("bin"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    programs.sort();
    assert_eq!(programs, ["shop", "shopctl"]);
    let report: serde_json::Value = serde_json::from_str(&success(
        dir.kiln(["inspect", "--json"])
            .arg(dir.join("shop/result-container")),
    ))
    .unwrap();
    assert_eq!(
        report[0]["env"],
        serde_json::json!(["SHOP_MODE=production"])
    );
    assert_eq!(report[0]["layers"][0]["file_count"], 2);
    for host in &docker_engines(test) {
        let _cleanup = LoadedImages {
            cleanups: vec![remove_image(host, "shop:1.0.0")],
        };
        let output = load_and_run(host, &dir.join("shop/result-container"), "shop:1.0.0");
        assert_eq!(
            output, "Hello, shop, from a vendored module!\ntotal: 25.00\n",
            "{host:?}"
        );
    }
}

/// A `go` that logs each invocation's first argument, then runs the real one.
fn logging_go(dir: &TestDir, go: &Path) -> (PathBuf, PathBuf) {
    let log = dir.join("go.log");
    let wrapper = dir.write(
        "go-wrapper/go",
        format!(
            "#!/bin/sh\necho \"$1\" >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            go.display()
        ),
        0o755,
    );
    (wrapper, log)
}

fn go_builds(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|line| *line == "build")
        .count()
}

/// Same inputs: no `go` at all. A change git sees rebuilds; what git ignores does not.
#[test]
fn unchanged_inputs_run_no_go() {
    let test = "unchanged_inputs_run_no_go";
    let Some(go) = require_go(test) else { return };
    let dir = TestDir::new();
    init(&dir, &go, "example");
    let (wrapper, log) = logging_go(&dir, &go);
    let build = || {
        let output = run(dir.kiln_go(&wrapper, "example", ["build", ".#container"]));
        assert!(output.status.success(), "{}", stderr(&output));
        stderr(&output)
    };
    build();
    assert_eq!(go_builds(&log), 1);
    let invocations = std::fs::read_to_string(&log).unwrap();
    let said = build();
    assert!(said.contains("up to date: result"), "{said}");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        invocations,
        "go ran on a no-op build"
    );

    // Ignored files, .git and result links are not inputs.
    std::fs::write(dir.join("example/.gitignore"), "result*\n*.log\n").unwrap();
    let first = link_target(&dir.join("example/result"));
    build();
    let after_gitignore = link_target(&dir.join("example/result"));
    assert_ne!(first, after_gitignore, ".gitignore is a source");
    let builds = go_builds(&log);
    std::fs::write(dir.join("example/debug.log"), "noise").unwrap();
    std::fs::create_dir_all(dir.join("example/.git")).unwrap();
    std::fs::write(dir.join("example/.git/HEAD"), "ref: refs/heads/main\n").unwrap();
    std::os::unix::fs::symlink("/nonexistent", dir.join("example/result-old")).unwrap();
    build();
    assert_eq!(go_builds(&log), builds, "ignored files caused a rebuild");
    assert_eq!(link_target(&dir.join("example/result")), after_gitignore);

    // A source change rebuilds.
    let main = dir.join("example/main.go");
    let text = std::fs::read_to_string(&main)
        .unwrap()
        .replace("Hello from", "Hi from");
    std::fs::write(&main, text).unwrap();
    build();
    assert_eq!(go_builds(&log), builds + 1);
    let output = run(dir.kiln_go(&wrapper, "example", ["run"]));
    assert_eq!(stdout(&output), "Hi from example!\n");
    assert_eq!(
        go_builds(&log),
        builds + 1,
        "`kiln run` rebuilt a built package"
    );
}

/// 8 concurrent builds of one project: all succeed, Go builds once, the store verifies.
#[test]
fn concurrent_builds_run_go_once() {
    let test = "concurrent_builds_run_go_once";
    let Some(go) = require_go(test) else { return };
    let dir = TestDir::new();
    init(&dir, &go, "example");
    let (wrapper, log) = logging_go(&dir, &go);
    let children: Vec<_> = (0..8)
        .map(|index| {
            dir.kiln_go(
                &wrapper,
                "example",
                ["build", ".#container", "-o", &format!("../link-{index}")],
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let mut targets = Vec::new();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
    }
    for index in 0..8 {
        targets.push(link_target(&dir.join(&format!("link-{index}"))));
    }
    targets.dedup();
    assert_eq!(targets.len(), 1, "{targets:?}");
    let invocations = std::fs::read_to_string(&log).unwrap();
    assert_eq!(go_builds(&log), 1, "{invocations}");
    // The toolchain is identified (`go env`) once too: the others wait and read the cache.
    assert_eq!(
        invocations.lines().filter(|line| *line == "env").count(),
        1,
        "{invocations}"
    );
    let said = stderr(&run(dir.kiln_go(&go, "example", ["store", "verify"])));
    assert!(said.contains("2 outputs verified, all intact"), "{said}");
    assert_eq!(dir.listing("kiln-home/v1/tmp"), Vec::<String>::new());
}

/// `kiln gc` keeps what links reach and frees the rest; `kiln store verify` finds corruption.
#[test]
fn gc_and_verify() {
    let test = "gc_and_verify";
    let Some(go) = require_go(test) else { return };
    let dir = TestDir::new();
    init(&dir, &go, "example");
    let built: serde_json::Value = serde_json::from_str(&success(dir.kiln_go(
        &go,
        "example",
        ["build", ".#container", "--json"],
    )))
    .unwrap();
    let image = link_target(&dir.join("example/result"));
    assert_eq!(
        built,
        serde_json::json!([{"target": ".#container", "name": "container", "path": image, "link": "result", "built": true}])
    );
    let path = success(dir.kiln_go(&go, "example", ["store", "path"]));
    let package = PathBuf::from(path.trim());
    assert!(package.is_dir());
    let report: serde_json::Value =
        serde_json::from_str(&success(dir.kiln_go(&go, "example", ["gc", "--json"]))).unwrap();
    assert_eq!(
        report["removed_paths"],
        serde_json::json!([package.file_name().unwrap().to_str().unwrap()])
    );
    assert_eq!(report["kept_paths"], 1);
    assert!(
        report["freed_bytes"].as_u64().unwrap() > 1_000_000,
        "{report}"
    );
    assert!(!package.exists() && image.is_file());

    // A store file changed behind kiln's back is reported by path; exit status 1.
    let mut permissions = std::fs::metadata(&image).unwrap().permissions();
    assert!(permissions.readonly(), "outputs are read-only");
    #[allow(clippy::permissions_set_readonly_false)]
    permissions.set_readonly(false);
    std::fs::set_permissions(&image, permissions).unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&image)
        .unwrap();
    let mut bytes = std::fs::read(&image).unwrap();
    bytes[600] ^= 1;
    std::fs::write(&image, bytes).unwrap();
    let said = failure(
        dir.kiln_go(&go, "example", ["store", "verify"]),
        &["1 of 1 outputs corrupt"],
    );
    assert!(
        said.contains(&format!("corrupt: {}", image.display())),
        "{said}"
    );

    // Without its link the image goes too.
    std::fs::remove_file(dir.join("example/result")).unwrap();
    let said = stderr(&run(dir.kiln_go(&go, "example", ["gc"])));
    assert!(said.contains("1 removed, 0 kept, 1 stale links"), "{said}");
    assert_eq!(dir.listing("kiln-home/v1/store"), Vec::<String>::new());
}

#[test]
fn init_never_overwrites() {
    let test = "init_never_overwrites";
    let Some(go) = require_go(test) else { return };
    let dir = TestDir::new();
    dir.write(
        "tool/go.mod",
        "module github.com/you/tool/v2\n\ngo 1.22\n",
        0o644,
    );
    dir.write(
        "tool/main.go",
        "package main\n\nfunc main() { println(\"mine\") }\n",
        0o644,
    );
    let said = stderr(&run(dir.kiln_go(&go, ".", ["init", "tool"])));
    assert!(said.contains("kept"), "{said}");
    assert_eq!(
        std::fs::read_to_string(dir.join("tool/main.go")).unwrap(),
        "package main\n\nfunc main() { println(\"mine\") }\n"
    );
    let config = std::fs::read_to_string(dir.join("tool/kiln.toml")).unwrap();
    assert!(config.contains("name = \"tool\""), "{config}");
    failure(
        dir.kiln_go(&go, ".", ["init", "tool"]),
        &["kiln.toml already exists", "never overwrites"],
    );
    failure(
        dir.kiln_go(&go, ".", ["init", "my project"]),
        &[
            "`my project` cannot name a project",
            "hint: choose one with --name",
        ],
    );
}

#[test]
fn error_no_go_toolchain() {
    let dir = TestDir::new();
    dir.write(
        "example/kiln.toml",
        "schema = 1\n[packages.default]\n",
        0o644,
    );
    dir.write("example/go.mod", "module example\n\ngo 1.22\n", 0o644);
    let mut command = dir.kiln(["build"]);
    command
        .current_dir(dir.join("example"))
        .env("PATH", "/nonexistent");
    failure(command, &["no Go toolchain", "hint: install Go", "KILN_GO"]);
    let mut command = dir.kiln(["build"]);
    command
        .current_dir(dir.join("example"))
        .env("KILN_GO", "/nonexistent/go");
    failure(
        command,
        &["KILN_GO is `/nonexistent/go`, which is not an executable file"],
    );
}

#[test]
fn error_compile_shows_go_messages() {
    let test = "error_compile_shows_go_messages";
    let Some(go) = require_go(test) else { return };
    let dir = TestDir::new();
    init(&dir, &go, "example");
    let main = dir.join("example/main.go");
    let text = std::fs::read_to_string(&main)
        .unwrap()
        .replace("fmt.Println(greeting())", "fmt.Println(greting())");
    std::fs::write(&main, text).unwrap();
    failure(
        dir.kiln_go(&go, "example", ["build"]),
        &[
            "go build of package `default` (.) failed",
            "./main.go:11:14: undefined: greting",
        ],
    );
    assert!(!dir.join("example/result").exists());
    assert_eq!(
        dir.listing("kiln-home/v1/tmp"),
        Vec::<String>::new(),
        "debris left"
    );
    assert_eq!(dir.listing("kiln-home/v1/store"), Vec::<String>::new());
}

#[test]
fn error_no_go_mod() {
    let test = "error_no_go_mod";
    let Some(go) = require_go(test) else { return };
    let dir = TestDir::new();
    dir.write("app/kiln.toml", "schema = 1\n[packages.default]\n", 0o644);
    failure(
        dir.kiln_go(&go, "app", ["build"]),
        &[
            &format!(
                "no go.mod in {}",
                dir.join("app").canonicalize().unwrap().display()
            ),
            "hint: `kiln init`",
        ],
    );
    failure(
        dir.kiln_go(&go, ".", ["build"]),
        &["no kiln.toml in", "hint: `kiln init` makes a project here"],
    );
}

#[test]
fn error_unknown_target_lists_targets() {
    let test = "error_unknown_target_lists_targets";
    let Some(go) = require_go(test) else { return };
    let dir = TestDir::new();
    init(&dir, &go, "example");
    failure(
        dir.kiln_go(&go, "example", ["build", ".#contaner"]),
        &[
            "has no package or image `contaner`; it has: default (package), container (image)",
            "hint: did you mean `container`?",
        ],
    );
    failure(
        dir.kiln_go(&go, "example", ["run", ".#container"]),
        &["`container` is an image; `kiln run` runs a package's program"],
    );
    failure(
        dir.kiln_go(&go, "example", ["run", "--program", "exmple"]),
        &[
            "package `default` has no program `exmple`; it has: example",
            "did you mean `example`?",
        ],
    );
    // Another project by path.
    let said = success(dir.kiln_go(
        &go,
        ".",
        ["build", "example#default", "--no-link", "--print-out-paths"],
    ));
    assert!(said.trim().ends_with("-example-0.1"), "{said}");
    assert!(!dir.join("result").exists());
}

#[test]
fn error_inconsistent_vendoring() {
    let test = "error_inconsistent_vendoring";
    let Some(go) = require_go(test) else { return };
    let dir = TestDir::new();
    let project = dir.fixture("vendored", "shop");
    let go_mod = std::fs::read_to_string(project.join("go.mod")).unwrap();
    std::fs::write(
        project.join("go.mod"),
        go_mod.replace("example.com/units v0.3.1", "example.com/units v0.3.2"),
    )
    .unwrap();
    failure(
        dir.kiln_go(&go, "shop", ["build"]),
        &[
            "vendor/modules.txt disagrees with go.mod: go.mod requires example.com/units v0.3.2 but vendor/modules.txt has v0.3.1",
            "hint: run `go mod vendor`",
        ],
    );
    std::fs::remove_dir_all(project.join("vendor")).unwrap();
    failure(
        dir.kiln_go(&go, "shop", ["build"]),
        &[
            "go.mod requires example.com/greet v1.2.0, example.com/units v0.3.2, and nothing pins them: there is no go.sum (nor gomod2nix.toml, nor vendor/ folder)",
            "hint: run `go mod tidy` to write go.sum, then `kiln lock`",
        ],
    );
}

#[test]
fn kiln_toml_errors_point_at_the_file() {
    let dir = TestDir::new();
    dir.write("app/go.mod", "module app\n\ngo 1.22\n", 0o644);
    dir.write(
        "app/kiln.toml",
        "schema = 1\ninclude = [\"images.toml\"]\n\n[packages.default]\nverison = \"1\"\n",
        0o644,
    );
    dir.write("app/images.toml", "[images.container]\n", 0o644);
    let mut command = dir.kiln(["build"]);
    command.current_dir(dir.join("app"));
    failure(
        command,
        &[
            "kiln.toml:5:1: unknown key `verison`",
            "did you mean `version`?",
        ],
    );

    dir.write(
        "app/kiln.toml",
        "schema = 1\ninclude = [\"images.toml\"]\n\n[packages.default]\n[images.container]\n",
        0o644,
    );
    let mut command = dir.kiln(["build"]);
    command.current_dir(dir.join("app"));
    failure(
        command,
        &["images.toml:1:9: image `container` is defined twice: here and at kiln.toml:5:9"],
    );

    dir.write("app/kiln.toml", "[packages.default]\n", 0o644);
    let mut command = dir.kiln(["build"]);
    command.current_dir(dir.join("app"));
    failure(command, &["kiln.toml", "schema"]);
}

/// NAR hashes, kiln's own and those it records in the store, agree with Nix's `nix-hash`.
#[test]
fn nar_hashes_match_nix_hash() {
    let test = "nar_hashes_match_nix_hash";
    if !require("nix-hash", test) {
        return;
    }
    let nix_hash = |path: &Path| -> String {
        success(
            Command::new("nix-hash")
                .args(["--type", "sha256"])
                .arg(path),
        )
        .trim()
        .to_owned()
    };
    let sri_to_hex = |sri: &str| -> String {
        use base64::Engine as _;
        let encoded = sri.strip_prefix("sha256-").unwrap();
        hex::encode(
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .unwrap(),
        )
    };
    let dir = TestDir::new();
    dir.write("tree/bin/tool", "#!/bin/sh\necho tool\n", 0o755);
    dir.write("tree/share/doc/readme", "hello nar\n", 0o644);
    dir.write("tree/share/empty-file", "", 0o600);
    dir.write("tree/a b/ünïcode name", vec![0u8; 100_003], 0o644);
    std::fs::create_dir_all(dir.join("tree/empty/nested")).unwrap();
    dir.symlink("bin/tool", "tree/link");
    dir.symlink("../../nowhere", "tree/share/dangling");
    dir.write("single", "one file\n", 0o644);
    dir.write("script", "#!/bin/sh\n", 0o755);
    dir.symlink("single", "a-link");
    for path in ["tree", "tree/share", "single", "script", "a-link"] {
        let ours = success(dir.kiln(["store", "hash"]).arg(dir.join(path)));
        assert_eq!(sri_to_hex(ours.trim()), nix_hash(&dir.join(path)), "{path}");
    }
    // What the store records for built outputs.
    let Some(go) = require_go(test) else { return };
    init(&dir, &go, "example");
    success(dir.kiln_go(&go, "example", ["build", "default", "container"]));
    let mut checked = 0;
    for entry in std::fs::read_dir(dir.join("kiln-home/v1/meta")).unwrap() {
        let record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap();
        let path = dir
            .join("kiln-home/v1/store")
            .join(record["path"].as_str().unwrap());
        assert_eq!(
            sri_to_hex(record["nar_hash"].as_str().unwrap()),
            nix_hash(&path),
            "{}",
            path.display()
        );
        checked += 1;
    }
    assert_eq!(checked, 2);
}

/// The kiln home: KILN_HOME, else XDG_CACHE_HOME/kiln, else ~/.cache/kiln; always absolute.
#[test]
fn kiln_home_precedence() {
    let dir = TestDir::new();
    let home = |variables: &[(&str, &str)]| -> String {
        let mut command = dir.kiln(["store", "home"]);
        command.env_remove("KILN_HOME");
        for (name, value) in variables {
            command.env(name, value);
        }
        success(command).trim().to_owned()
    };
    let root = dir.path().display().to_string();
    assert_eq!(home(&[]), format!("{root}/home/.cache/kiln"));
    assert_eq!(home(&[("XDG_CACHE_HOME", "/srv/cache")]), "/srv/cache/kiln");
    assert_eq!(
        home(&[("XDG_CACHE_HOME", "/srv/cache"), ("KILN_HOME", "/srv/kiln")]),
        "/srv/kiln"
    );
    assert_eq!(
        home(&[("KILN_HOME", "relative/kiln")]),
        format!("{root}/relative/kiln")
    );
}
