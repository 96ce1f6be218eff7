//! Concurrency: N kiln processes (2, 8, 32) building overlapping targets of three projects
//! into one store, then again with `kiln gc` running beside them.
//!
//! Without gc, every output is built exactly once (the others wait on its lock and find it
//! built). With gc looping beside the builds, every build still succeeds, and once the dust
//! settles every `result` link points at a complete output and `kiln store verify` is clean:
//! gc never removed what a running build or a link needed.
//!
//! It starts up to 32 builds at once, so it is `#[ignore]`d in plain `cargo test`;
//! `scripts/test` runs it (`cargo test --test cli -- --ignored`), as CI does. Nothing in it
//! is random: what varies from run to run is only how the processes interleave.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::harness::*;

const PROJECTS: usize = 3;

fn project(dir: &TestDir, index: usize, variant: usize) {
    let folder = format!("p{index}");
    dir.write(
        &format!("{folder}/go.mod"),
        format!("module example.com/p{index}\n\ngo 1.22\n"),
        0o644,
    );
    dir.write(
        &format!("{folder}/main.go"),
        format!(
            "package main\n\nimport \"fmt\"\n\nfunc main() {{ fmt.Println(\"p{index} variant {variant}\") }}\n"
        ),
        0o644,
    );
    dir.write(
        &format!("{folder}/kiln.toml"),
        format!(
            "schema = 1\n\n[packages.default]\nname = \"p{index}\"\nversion = \"1.0\"\n\n[images.container]\npackage = \"default\"\nname = \"p{index}\"\n"
        ),
        0o644,
    );
}

/// Process `k` of a round: project `k % 3`, the image or the package alone (which the image
/// needs too), so every output is wanted by several processes at once. All share the test
/// folder's kiln home.
fn spawn_build(dir: &TestDir, go: &Path, process: usize) -> Child {
    let (target, link) = if (process / PROJECTS).is_multiple_of(2) {
        (".#container", "result")
    } else {
        (".#default", "result-package")
    };
    let mut command = dir.kiln_go(
        go,
        &format!("p{}", process % PROJECTS),
        ["build", target, "-o", link],
    );
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    command.spawn().unwrap()
}

struct Round {
    builds: usize,
    failures: Vec<String>,
    /// Each `building …` line and how many processes printed it.
    built: std::collections::BTreeMap<String, usize>,
}

fn round(dir: &TestDir, go: &Path, processes: usize) -> Round {
    let children: Vec<Child> = (0..processes)
        .map(|process| spawn_build(dir, go, process))
        .collect();
    let mut round = Round {
        builds: processes,
        failures: Vec::new(),
        built: Default::default(),
    };
    for (process, child) in children.into_iter().enumerate() {
        let output = child.wait_with_output().unwrap();
        let text = stderr(&output);
        if !output.status.success() || text.contains("panicked") {
            round
                .failures
                .push(format!("process {process} ({}):\n{text}", output.status));
        }
        for line in text.lines().filter(|line| line.starts_with("building ")) {
            *round.built.entry(line.to_owned()).or_default() += 1;
        }
    }
    round
}

/// The `result` links of the first `projects` projects are whole; the store is intact.
fn assert_links_and_store(dir: &TestDir, go: &Path, projects: usize, context: &str) {
    for index in 0..projects {
        let folder = format!("p{index}");
        let link = dir.join(&folder).join("result");
        let target = std::fs::read_link(&link)
            .unwrap_or_else(|error| panic!("{context}: {}: {error}", link.display()));
        assert!(target.exists(), "{context}: {} is dangling", link.display());
    }
    let verify = run(dir.kiln_go(go, "p0", ["store", "verify"]));
    assert!(
        verify.status.success(),
        "{context}: store verify: {}",
        stderr(&verify)
    );
}

#[test]
#[ignore = "stress test (minutes): scripts/test runs it (cargo test --test cli -- --ignored)"]
fn concurrent_builds_share_one_store_and_gc_beside_them_removes_nothing_needed() {
    const NAME: &str =
        "concurrent_builds_share_one_store_and_gc_beside_them_removes_nothing_needed";
    let Some(go) = require_go(NAME) else { return };
    let dir = TestDir::new();
    let mut variant = 0;
    let mut summary = Vec::new();
    for processes in [2, 8, 32] {
        // Without gc: every output built once.
        let built = processes.min(PROJECTS);
        variant += 1;
        for index in 0..PROJECTS {
            project(&dir, index, variant);
        }
        let quiet = round(&dir, &go, processes);
        assert!(
            quiet.failures.is_empty(),
            "N={processes}: {}",
            quiet.failures.join("\n")
        );
        let twice: Vec<&String> = quiet
            .built
            .iter()
            .filter(|(_, count)| **count > 1)
            .map(|(line, _)| line)
            .collect();
        assert!(twice.is_empty(), "N={processes}: built twice: {twice:?}");
        // Each project's package and image, once each (N=2 asks for images only).
        let expected = if processes >= 2 * PROJECTS {
            2 * PROJECTS
        } else {
            2 * processes.min(PROJECTS)
        };
        assert_eq!(
            quiet.built.len(),
            expected,
            "N={processes}: {:?}",
            quiet.built
        );
        assert_links_and_store(&dir, &go, built, &format!("N={processes}"));

        // With `kiln gc` looping beside new builds.
        variant += 1;
        for index in 0..PROJECTS {
            project(&dir, index, variant);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let collector = {
            let stop = Arc::clone(&stop);
            let mut gc = dir.kiln_go(&go, "p0", ["gc"]);
            gc.stdout(Stdio::null()).stderr(Stdio::piped());
            std::thread::spawn(move || {
                let mut runs = 0;
                let mut failures = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let output = gc.output().unwrap();
                    runs += 1;
                    if !output.status.success() {
                        failures.push(stderr(&output));
                    }
                }
                (runs, failures)
            })
        };
        let busy = round(&dir, &go, processes);
        stop.store(true, Ordering::SeqCst);
        let (gc_runs, gc_failures) = collector.join().unwrap();
        assert!(
            busy.failures.is_empty(),
            "N={processes} with gc: {}",
            busy.failures.join("\n")
        );
        assert!(gc_failures.is_empty(), "gc failed: {gc_failures:?}");
        // And once more after the builds: the links keep what they need.
        success(dir.kiln_go(&go, "p0", ["gc"]));
        assert_links_and_store(&dir, &go, built, &format!("N={processes} with gc"));
        for index in 0..built {
            let listed = success(
                Command::new("tar")
                    .arg("-tf")
                    .arg(dir.join(&format!("p{index}/result"))),
            );
            assert!(listed.contains("index.json"), "p{index}: {listed}");
        }
        summary.push(format!(
            "N={processes}: {} builds, {} failures; with gc ({gc_runs} gc runs beside): {} builds, {} failures",
            quiet.builds,
            quiet.failures.len(),
            busy.builds,
            busy.failures.len()
        ));
    }
    for line in summary {
        eprintln!("concurrency: {line}");
    }
}

/// A project of `PACKAGES` packages, each a program saying its name and `variant` (from a
/// package they share, so every edit rebuilds them all).
const PACKAGES: usize = 6;

fn many_packages(dir: &TestDir, variant: usize) {
    dir.write("many/go.mod", "module example.com/many\n\ngo 1.22\n", 0o644);
    dir.write(
        "many/shared/shared.go",
        format!("package shared\n\nconst Variant = {variant}\n"),
        0o644,
    );
    let mut toml = String::from("schema = 1\n");
    for index in 0..PACKAGES {
        dir.write(
            &format!("many/cmd/p{index}/main.go"),
            format!(
                "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/many/shared\"\n)\n\nfunc main() {{ fmt.Println(\"p{index} variant\", shared.Variant) }}\n"
            ),
            0o644,
        );
        toml.push_str(&format!(
            "\n[packages.p{index}]\nname = \"p{index}\"\nversion = \"1.0\"\nmain = [\"./cmd/p{index}\"]\n"
        ));
    }
    dir.write("many/kiln.toml", toml, 0o644);
}

/// Issue 18: kilns building different packages of one project at once each take a build
/// folder of their own (up to the kept slots, then a one-off folder), with `kiln gc` looping
/// beside them in the last round; every program is built from the sources of its round, and
/// gc leaves one build folder.
#[test]
#[ignore = "stress test (minutes): scripts/test runs it (cargo test --test cli -- --ignored)"]
fn kilns_on_one_project_at_once_each_take_a_build_folder() {
    const NAME: &str = "kilns_on_one_project_at_once_each_take_a_build_folder";
    let Some(go) = require_go(NAME) else { return };
    let dir = TestDir::new();
    for variant in 1..=3 {
        many_packages(&dir, variant);
        let stop = Arc::new(AtomicBool::new(false));
        let collector = (variant == 3).then(|| {
            let stop = Arc::clone(&stop);
            let mut gc = dir.kiln_go(&go, "many", ["gc"]);
            gc.stdout(Stdio::null()).stderr(Stdio::piped());
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let output = gc.output().unwrap();
                    if !output.status.success() {
                        failures.push(stderr(&output));
                    }
                }
                failures
            })
        });
        let children: Vec<Child> = (0..PACKAGES)
            .map(|index| {
                let mut command = dir.kiln_go(
                    &go,
                    "many",
                    [
                        "build".to_owned(),
                        format!(".#p{index}"),
                        "-o".to_owned(),
                        format!("result-p{index}"),
                    ],
                );
                command.stdout(Stdio::piped()).stderr(Stdio::piped());
                command.spawn().unwrap()
            })
            .collect();
        for (index, child) in children.into_iter().enumerate() {
            let output = child.wait_with_output().unwrap();
            assert!(
                output.status.success(),
                "round {variant}, p{index}: {}",
                stderr(&output)
            );
        }
        stop.store(true, Ordering::SeqCst);
        if let Some(collector) = collector {
            let failures = collector.join().unwrap();
            assert!(failures.is_empty(), "gc failed: {failures:?}");
        }
        for index in 0..PACKAGES {
            let program = dir.join(&format!("many/result-p{index}/bin/p{index}"));
            assert_eq!(
                success(Command::new(&program)),
                format!("p{index} variant {variant}\n"),
                "round {variant}"
            );
        }
        let slots = kept_build_folders(&dir);
        assert!(
            !slots.is_empty() && slots.len() <= 3,
            "round {variant}: {slots:?}"
        );
    }
    success(dir.kiln_go(&go, "many", ["gc"]));
    assert_eq!(kept_build_folders(&dir), ["build-0"]);
    let verify = run(dir.kiln_go(&go, "many", ["store", "verify"]));
    assert!(verify.status.success(), "{}", stderr(&verify));
}

/// The build folders the store keeps for the test's projects.
fn kept_build_folders(dir: &TestDir) -> Vec<String> {
    let mut names = Vec::new();
    for project in std::fs::read_dir(dir.join("kiln-home/v1/projects"))
        .unwrap()
        .flatten()
    {
        for entry in std::fs::read_dir(project.path()).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("build-") && entry.path().is_dir() {
                names.push(name);
            }
        }
    }
    names.sort();
    names
}
