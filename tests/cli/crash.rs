//! Crash safety: the real `kiln` killed with SIGKILL at random moments of `kiln build`,
//! `kiln lock` and `kiln push`, and what the next run finds.
//!
//! After every kill: `kiln store verify` finds nothing corrupt or unrecorded; the project's
//! `result` link and `kiln.lock` are either the old ones or the new ones, complete; a registry
//! tag is either absent or a complete image. Then the same command runs to the end and
//! succeeds, and leaves no temporary debris in the store or the project.
//!
//! The delays are uniform over the time an uninterrupted run takes (measured first), from a
//! seeded generator: each test prints its seed, and every failure names it;
//! `KILN_CRASH_SEED=N` replays it (the same fractions of a run, so the same moments on a
//! faster or slower machine; a run that ends before its kill draws again, so on a different
//! machine the sequence can drift from there). `KILN_CRASH_KILLS` sets the number of kills
//! per command (default: a few, for every test run; RELIABILITY.md reports 200 in all). Only a
//! kill that lands while kiln is running counts; a run that ended first is counted apart and
//! its delay tried again.
//!
//! They take minutes, so they are `#[ignore]`d in plain `cargo test`; `scripts/test` runs
//! them (`cargo test --test cli -- --ignored`), as CI does.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::*;

/// splitmix64: small, seedable, good enough to spread delays.
struct Rng {
    state: u64,
    /// Where it started, for messages.
    seed: u64,
}

impl Rng {
    fn new(seed: u64) -> Self {
        Rng { state: seed, seed }
    }

    /// Seeded by `KILN_CRASH_SEED`, else by the clock; prints the seed and how to replay it.
    fn from_env(test: &str) -> Self {
        let seed = match std::env::var("KILN_CRASH_SEED") {
            Ok(text) => text
                .parse()
                .unwrap_or_else(|_| panic!("KILN_CRASH_SEED={text:?} is not a u64")),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64,
        };
        eprintln!(
            "crash tests: KILN_CRASH_SEED={seed} (replay: KILN_CRASH_SEED={seed} cargo test --test cli -- --ignored --exact crash::{test})"
        );
        Rng::new(seed)
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A delay in `[0, limit)`: a fraction of `limit` (the top 53 bits of a draw), so a
    /// replayed seed picks the same points of a run however long the run takes here.
    fn delay(&mut self, limit: Duration) -> Duration {
        let fraction = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        limit.mul_f64(fraction)
    }
}

/// A replayed seed kills at the same fractions of a run, whatever the run takes on this machine
/// (the delays used to be a draw modulo the measured microseconds: a new sequence each run).
#[test]
fn a_seed_gives_the_same_fractions_of_any_run_time() {
    let fractions = |limit: Duration| -> Vec<f64> {
        let mut rng = Rng::new(42);
        (0..16)
            .map(|_| rng.delay(limit).as_secs_f64() / limit.as_secs_f64())
            .collect()
    };
    let fast = fractions(Duration::from_millis(1500));
    let slow = fractions(Duration::from_millis(4321));
    for (fast, slow) in fast.iter().zip(&slow) {
        assert!((0.0..1.0).contains(fast), "{fast}");
        assert!((fast - slow).abs() < 1e-6, "{fast} vs {slow}");
    }
    assert!(fast.windows(2).all(|pair| pair[0] != pair[1]), "{fast:?}");
}

fn kills_per_command() -> usize {
    std::env::var("KILN_CRASH_KILLS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(6)
}

/// What a series of kills did.
#[derive(Default)]
struct Tally {
    killed: usize,
    finished_first: usize,
}

impl Tally {
    fn report(&self, command: &str) {
        eprintln!(
            "crash tests: {command}: {} kills survived of {} tried ({} runs ended before their kill)",
            self.killed, self.killed, self.finished_first
        );
    }
}

/// Start `command`, kill it with SIGKILL after `delay`; whether it was still running.
fn kill_after(mut command: Command, delay: Duration) -> bool {
    let mut child: Child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + delay;
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(2)));
    }
    // SIGKILL (std's kill); reaped right away.
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    running
}

/// `kiln store verify` is clean: nothing corrupt or unrecorded (debris of the interrupted
/// run is allowed: the next build of that output, or gc, removes it).
fn assert_store_intact(dir: &TestDir, go: &Path, folder: &str, home: &Path, context: &str) {
    let output = run(dir
        .kiln_go(go, folder, ["store", "verify", "--json"])
        .env("KILN_HOME", home));
    let text = stdout(&output);
    assert!(
        output.status.success(),
        "{context}: store verify failed:\n{text}\n{}",
        stderr(&output)
    );
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        report["corrupt"],
        serde_json::json!([]),
        "{context}: {report}"
    );
    assert_eq!(
        report["unrecorded"],
        serde_json::json!([]),
        "{context}: {report}"
    );
}

/// What is left in the store's `tmp/`, and files in `folder` beside the expected ones.
fn debris(home: &Path, folder: &Path, expected: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(home.join("v1/tmp")) {
        for entry in entries.flatten() {
            // What it holds, to tell which stage left it.
            let inside: Vec<String> = walk_names(&entry.path(), 3);
            let kind = match entry.metadata() {
                Ok(metadata) if metadata.is_dir() => "folder".to_owned(),
                Ok(metadata) => format!("file of {} bytes", metadata.len()),
                Err(error) => error.to_string(),
            };
            found.push(format!(
                "tmp/{} ({kind}) {inside:?}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    for entry in std::fs::read_dir(folder).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !expected.contains(&name.as_str()) {
            found.push(name);
        }
    }
    found.sort();
    found
}

/// The paths under `path`, `depth` levels down at most (for messages).
fn walk_names(path: &Path, depth: usize) -> Vec<String> {
    let mut names = Vec::new();
    if depth == 0 {
        return names;
    }
    if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            names.push(entry.file_name().to_string_lossy().into_owned());
            for inner in walk_names(&entry.path(), depth - 1) {
                names.push(format!("{}/{inner}", entry.file_name().to_string_lossy()));
            }
        }
    }
    names.sort();
    names
}

/// The build folder kiln keeps for `project` holds its sources, byte for byte, and nothing
/// else.
fn assert_build_folder_is(home: &Path, project: &Path, context: &str) {
    fn files(folder: &Path, prefix: &str, found: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(folder).unwrap().flatten() {
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                files(&entry.path(), &format!("{name}/"), found);
            } else if kind.is_symlink() {
                let target = std::fs::read_link(entry.path()).unwrap();
                found.push((name, target.as_os_str().as_encoded_bytes().to_vec()));
            } else {
                found.push((name, std::fs::read(entry.path()).unwrap()));
            }
        }
    }
    let mut sources = Vec::new();
    files(project, "", &mut sources);
    sources.retain(|(name, _)| name != "result");
    sources.sort();
    let canonical = std::fs::canonicalize(project).unwrap();
    let name = canonical.file_name().unwrap();
    for state in std::fs::read_dir(home.join("v1/projects"))
        .unwrap()
        .flatten()
    {
        let src = state.path().join("build-0/src");
        // The sandbox puts the project at src/<name> (no `replace` climbs out of it).
        let copy = src.join(name);
        if !copy.is_dir() {
            continue;
        }
        let mut copied = Vec::new();
        files(&src, "", &mut copied);
        let prefix = format!("{}/", name.to_string_lossy());
        let mut copied: Vec<(String, Vec<u8>)> = copied
            .into_iter()
            .map(|(path, bytes)| {
                (
                    path.strip_prefix(&prefix).unwrap_or(&path).to_owned(),
                    bytes,
                )
            })
            .collect();
        copied.sort();
        let listed = |files: &[(String, Vec<u8>)]| -> Vec<String> {
            files.iter().map(|(path, _)| path.clone()).collect()
        };
        assert_eq!(listed(&copied), listed(&sources), "{context}");
        assert!(
            copied == sources,
            "{context}: the build folder's bytes differ"
        );
        return;
    }
    panic!("{context}: no build folder for {}", project.display());
}

/// The store path `result` points at, if it exists; it must be a complete image archive.
fn result_target(dir: &TestDir, go: &Path, folder: &str, home: &Path) -> Option<PathBuf> {
    let link = dir.join(folder).join("result");
    let target = std::fs::read_link(&link).ok()?;
    assert!(
        target.exists(),
        "result points at {} which does not exist",
        target.display()
    );
    success(
        dir.kiln_go(go, folder, ["inspect", "--json", "result"])
            .env("KILN_HOME", home),
    );
    Some(target)
}

const PROJECT_FILES: &[&str] = &[
    "go.mod",
    "main.go",
    "kiln.toml",
    "kiln.lock",
    "assets",
    "result",
];

/// A small project with an image of the program and an assets folder.
fn crash_project(dir: &TestDir, folder: &str) {
    dir.write(
        &format!("{folder}/go.mod"),
        "module example.com/crash\n\ngo 1.22\n",
        0o644,
    );
    dir.write(&format!("{folder}/main.go"), main_go(0), 0o644);
    dir.write(
        &format!("{folder}/kiln.toml"),
        "schema = 1\n\n[packages.default]\nname = \"crash\"\nversion = \"1.0\"\n\n[images.container]\npackage = \"default\"\nname = \"crash\"\n\n[[images.container.files]]\nsrc = \"assets\"\ndest = \"/assets\"\n",
        0o644,
    );
    dir.write(&format!("{folder}/assets/data.bin"), assets(0, 64), 0o644);
}

fn main_go(variant: usize) -> String {
    format!(
        "package main\n\nimport \"fmt\"\n\nconst variant = {variant}\n\nfunc main() {{ fmt.Println(\"variant\", variant) }}\n"
    )
}

/// `kib` KiB of bytes that differ per variant and do not compress away.
fn assets(variant: usize, kib: usize) -> Vec<u8> {
    let mut rng = Rng::new(variant as u64 ^ 0xA5A5_5A5A);
    (0..kib * 128)
        .flat_map(|_| rng.next().to_le_bytes())
        .collect()
}

/// How long an uninterrupted `command` takes (a fresh variant each time: the longest path).
fn time_it(mut command: Command) -> Duration {
    let start = Instant::now();
    success(&mut command);
    start.elapsed()
}

#[test]
#[ignore = "stress test (minutes): scripts/test runs it (cargo test --test cli -- --ignored)"]
fn kiln_build_survives_sigkill_at_random_moments() {
    const NAME: &str = "kiln_build_survives_sigkill_at_random_moments";
    let Some(go) = require_go(NAME) else { return };
    let dir = TestDir::new();
    let home = dir.join("kiln-home");
    crash_project(&dir, "app");
    let build = || dir.kiln_go(&go, "app", ["build", ".#container"]);
    success(build());
    // A new program and new assets: every output of the target is built again.
    let mut variant = 1;
    let next_variant = |variant: &mut usize| {
        *variant += 1;
        dir.write("app/main.go", main_go(*variant), 0o644);
        dir.write("app/assets/data.bin", assets(*variant, 2048), 0o644);
    };
    next_variant(&mut variant);
    let full = time_it(build());
    let mut rng = Rng::from_env(NAME);
    let mut tally = Tally::default();
    while tally.killed < kills_per_command() {
        let before = result_target(&dir, &go, "app", &home);
        next_variant(&mut variant);
        let delay = rng.delay(full + full / 10);
        if !kill_after(build(), delay) {
            tally.finished_first += 1;
            continue;
        }
        tally.killed += 1;
        let context = format!(
            "kill {} after {delay:?} (variant {variant}; KILN_CRASH_SEED={})",
            tally.killed, rng.seed
        );
        assert_store_intact(&dir, &go, "app", &home, &context);
        let after = result_target(&dir, &go, "app", &home);
        // The link is the old output or the complete new one.
        if after != before {
            let output = success(dir.kiln_go(&go, "app", ["store", "path", ".#container"]));
            assert_eq!(
                after.as_deref().map(|path| path.display().to_string()),
                Some(output.trim().to_owned()),
                "{context}"
            );
        }
        // The next run finishes the work and leaves nothing behind.
        success(build());
        let built = result_target(&dir, &go, "app", &home).expect("a result link");
        assert_store_intact(&dir, &go, "app", &home, &context);
        let left = debris(&home, &dir.join("app"), PROJECT_FILES);
        assert!(left.is_empty(), "{context}: debris {left:?}");
        let ran = success(
            Command::new("tar")
                .arg("-tf")
                .arg(&built)
                .stderr(Stdio::null()),
        );
        assert!(ran.contains("index.json"), "{context}");
        // And it was built from the sources as they are now, whatever the kill left in the
        // build folder kiln keeps for the project.
        let package = success(dir.kiln_go(&go, "app", ["store", "path", ".#default"]));
        let says = success(Command::new(Path::new(package.trim()).join("bin/crash")));
        assert_eq!(says, format!("variant {variant}\n"), "{context}");
        assert_build_folder_is(&home, &dir.join("app"), &context);
    }
    tally.report("kiln build .#container");
}

#[test]
#[ignore = "stress test (minutes): scripts/test runs it (cargo test --test cli -- --ignored)"]
fn kiln_lock_survives_sigkill_at_random_moments() {
    const NAME: &str = "kiln_lock_survives_sigkill_at_random_moments";
    let Some(go) = require_go(NAME) else { return };
    let dir = TestDir::new();
    let proxy = crate::lock::setup(&dir, &go);
    let lock = |home: &Path| {
        let mut command = dir.kiln_go(&go, "app", ["lock"]);
        command.env("KILN_HOME", home).env("GOPROXY", &proxy);
        command
    };
    // A fresh store each time: every module is fetched, hashed and stored again.
    let mut homes = 0;
    let mut fresh_home = || {
        homes += 1;
        dir.join(&format!("homes/{homes}"))
    };
    let full = time_it(lock(&fresh_home()));
    let good_lock = std::fs::read(dir.join("app/kiln.lock")).unwrap();
    let mut rng = Rng::from_env(NAME);
    let mut tally = Tally::default();
    while tally.killed < kills_per_command() {
        let home = fresh_home();
        // Half the time there is no kiln.lock yet; else the one a finished run wrote.
        let had_lock = rng.next().is_multiple_of(2);
        if had_lock {
            std::fs::write(dir.join("app/kiln.lock"), &good_lock).unwrap();
        } else {
            let _ = std::fs::remove_file(dir.join("app/kiln.lock"));
        }
        let delay = rng.delay(full + full / 10);
        if !kill_after(lock(&home), delay) {
            tally.finished_first += 1;
            continue;
        }
        tally.killed += 1;
        let context = format!(
            "kill {} after {delay:?} (KILN_CRASH_SEED={})",
            tally.killed, rng.seed
        );
        if home.exists() {
            assert_store_intact(&dir, &go, "app", &home, &context);
        }
        // kiln.lock: absent (there was none) or complete.
        match std::fs::read(dir.join("app/kiln.lock")) {
            Ok(bytes) => assert_eq!(bytes, good_lock, "{context}: a partial kiln.lock"),
            Err(_) => assert!(!had_lock, "{context}: kiln.lock vanished"),
        }
        success(lock(&home));
        assert_eq!(
            std::fs::read(dir.join("app/kiln.lock")).unwrap(),
            good_lock,
            "{context}"
        );
        assert_store_intact(&dir, &go, "app", &home, &context);
        let left = debris(
            &home,
            &dir.join("app"),
            &["go.mod", "go.sum", "main.go", "kiln.toml", "kiln.lock"],
        );
        assert!(left.is_empty(), "{context}: debris {left:?}");
    }
    tally.report("kiln lock");
}

#[test]
#[ignore = "stress test (minutes): scripts/test runs it (cargo test --test cli -- --ignored)"]
fn kiln_push_survives_sigkill_at_random_moments() {
    const NAME: &str = "kiln_push_survives_sigkill_at_random_moments";
    let Some(go) = require_go(NAME) else { return };
    if !require("skopeo", NAME) {
        return;
    }
    let Some(registry) = crate::registry::DistributionRegistry::start(NAME, None) else {
        return;
    };
    let dir = TestDir::new();
    let home = dir.join("kiln-home");
    crash_project(&dir, "app");
    let kiln = |args: &[&str]| dir.kiln_go(&go, "app", args);
    let mut variant = 0;
    // Each round pushes a new image (new assets, 8 MiB) under its own tag.
    let new_image = |variant: &mut usize| -> (String, String) {
        *variant += 1;
        dir.write("app/assets/data.bin", assets(*variant, 8192), 0o644);
        success(kiln(&["build", ".#container"]));
        let inspected: Value =
            serde_json::from_str(&success(kiln(&["inspect", "--json", "result"]))).unwrap();
        let digest = inspected[0]["manifest_digest"].as_str().unwrap().to_owned();
        (format!("{}/crash:v{variant}", registry.host()), digest)
    };
    // The first push sends the program too; time the second, which is what each round does.
    let (target, _) = new_image(&mut variant);
    success(kiln(&["push", "result", &target]));
    let (target, _) = new_image(&mut variant);
    let full = time_it(kiln(&["push", "result", &target]));
    let mut rng = Rng::from_env(NAME);
    let mut tally = Tally::default();
    let skopeo = |args: &[&str]| {
        let mut command = Command::new("skopeo");
        command.args(args).args(["--tls-verify=false"]);
        command
    };
    while tally.killed < kills_per_command() {
        let (target, digest) = new_image(&mut variant);
        let delay = rng.delay(full + full / 10);
        if !kill_after(kiln(&["push", "result", &target]), delay) {
            tally.finished_first += 1;
            continue;
        }
        tally.killed += 1;
        let context = format!(
            "kill {} after {delay:?} ({target}; KILN_CRASH_SEED={})",
            tally.killed, rng.seed
        );
        // The tag is absent, or names the whole image: every blob there and as digested. The
        // pushed digest is not the stored image's (push compresses its plain layers), but it is
        // reproducible: the finishing push below must print the digest the tag already names.
        let inspected = run(skopeo(&["inspect", "--raw"]).arg(format!("docker://{target}")));
        let tagged = if inspected.status.success() {
            let copy = dir.join(&format!("pulled-{variant}"));
            let pulled = run(skopeo(&["copy", "-q", "--preserve-digests"])
                .arg(format!("docker://{target}"))
                .arg(format!("oci:{}:x", copy.display())));
            assert!(
                pulled.status.success(),
                "{context}: the tag names an incomplete image: {}",
                stderr(&pulled)
            );
            Some(kiln::oci::digest::Digest::of(&inspected.stdout).to_string())
        } else {
            assert!(
                stderr(&inspected).contains("manifest unknown"),
                "{context}: {}",
                stderr(&inspected)
            );
            None
        };
        let pushed = success(kiln(&["push", "result", &target]));
        let pushed_digest = pushed
            .trim()
            .rsplit('@')
            .next()
            .unwrap_or_default()
            .to_owned();
        assert!(
            pushed_digest.starts_with("sha256:") && pushed_digest != digest,
            "{context}: push printed {pushed:?}; the stored image is {digest}"
        );
        if let Some(tagged) = tagged {
            assert_eq!(
                tagged, pushed_digest,
                "{context}: the tag names another image"
            );
        }
        let left = debris(&home, &dir.join("app"), PROJECT_FILES);
        assert!(left.is_empty(), "{context}: debris {left:?}");
    }
    tally.report("kiln push");
}
