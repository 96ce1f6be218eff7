//! A store on a small tmpfs that fills up mid-build, and a store remounted read-only: a clear
//! error naming the path and the cause, exit code 1, no panic, nothing half-made left, and
//! the store consistent and usable once there is room (or write access) again.
//!
//! Mounting needs root (these machines run the tests as root); elsewhere the tests skip
//! loudly, and in CI they fail.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::*;

/// A tmpfs of `megabytes` MiB at `path`, unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, megabytes: u32, test: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).unwrap();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(path)
            .output();
        match output {
            Ok(output) if output.status.success() => Some(Tmpfs {
                path: path.to_owned(),
            }),
            other => {
                skip(test, &format!("cannot mount a tmpfs here: {other:?}"));
                None
            }
        }
    }

    fn remount(&self, options: &str) {
        success(
            Command::new("mount")
                .args(["-o", &format!("remount,{options}")])
                .arg(&self.path),
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

/// A project whose image holds `kib` KiB of incompressible assets.
fn project(dir: &TestDir, kib: usize, variant: u64) {
    dir.write("app/go.mod", "module example.com/disk\n\ngo 1.22\n", 0o644);
    dir.write(
        "app/main.go",
        format!("package main\n\nfunc main() {{ println({variant}) }}\n"),
        0o644,
    );
    dir.write(
        "app/kiln.toml",
        "schema = 1\n\n[packages.default]\nname = \"disk\"\nversion = \"1.0\"\n\n[images.container]\npackage = \"default\"\nname = \"disk\"\n\n[[images.container.files]]\nsrc = \"assets\"\ndest = \"/assets\"\n",
        0o644,
    );
    let mut state = variant.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let bytes: Vec<u8> = (0..kib * 1024 / 8)
        .flat_map(|_| {
            // xorshift64: incompressible enough for gzip.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()
        })
        .collect();
    dir.write("app/assets/data.bin", bytes, 0o644);
}

/// What the store holds besides the published outputs: entries of `tmp/`.
fn tmp_entries(home: &Path) -> Vec<String> {
    std::fs::read_dir(home.join("v1/tmp"))
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Fills the disk at two stages: while the package's sources are copied for Go (32 MiB for
/// 40 MiB of assets), and while the image's layer is written (the assets left out of the
/// package's sources by .gitignore, so the Go build fits and 52 MiB of assets do not).
#[test]
fn a_full_disk_mid_build_is_a_clear_error_and_the_store_stays_consistent() {
    const NAME: &str = "a_full_disk_mid_build_is_a_clear_error_and_the_store_stays_consistent";
    let Some(go) = require_go(NAME) else { return };
    for (megabytes, assets_mib, stage) in [(32, 40, "sources"), (64, 52, "image")] {
        let dir = TestDir::new();
        let Some(mount) = Tmpfs::mount(&dir.join("mnt"), megabytes, NAME) else {
            return;
        };
        let home = mount.path.join("kiln");
        project(&dir, assets_mib * 1024, 1);
        if stage == "image" {
            dir.write("app/.gitignore", "/assets/\n", 0o644);
        }
        let build = || {
            let mut command = dir.kiln_go(&go, "app", ["build", ".#container"]);
            command.env("KILN_HOME", &home);
            command
        };
        let output = run(build());
        let text = stderr(&output);
        eprintln!("{stage}: {text}");
        assert_eq!(output.status.code(), Some(1), "{stage}: {text}");
        assert!(!text.contains("panicked"), "{stage}: {text}");
        assert!(
            text.lines().any(|line| line.starts_with("error: ")),
            "{stage}: {text}"
        );
        assert!(text.contains("No space left on device"), "{stage}: {text}");
        assert!(text.contains("hint: the disk is full"), "{stage}: {text}");
        assert!(
            text.contains(&home.display().to_string()),
            "{stage}: the error names the path in the store: {text}"
        );
        if stage == "image" {
            assert!(
                text.contains("building image"),
                "{stage}: the package was built first: {text}"
            );
        }
        // Nothing half-made: no temporary left, no `result`, and what is recorded is intact.
        assert_eq!(tmp_entries(&home), Vec::<String>::new(), "{stage}");
        assert!(std::fs::symlink_metadata(dir.join("app/result")).is_err());
        success(
            dir.kiln_go(&go, "app", ["store", "verify"])
                .env("KILN_HOME", &home),
        );

        // With room again, the same build succeeds on the same store.
        mount.remount("size=512m");
        success(build());
        success(
            dir.kiln_go(&go, "app", ["store", "verify"])
                .env("KILN_HOME", &home),
        );
        let listed = success(Command::new("tar").arg("-tf").arg(dir.join("app/result")));
        assert!(listed.contains("index.json"), "{stage}");
    }
}

#[test]
fn a_read_only_store_is_a_clear_error_and_stays_consistent() {
    const NAME: &str = "a_read_only_store_is_a_clear_error_and_stays_consistent";
    let Some(go) = require_go(NAME) else { return };
    let dir = TestDir::new();
    let Some(mount) = Tmpfs::mount(&dir.join("mnt"), 256, NAME) else {
        return;
    };
    let home = mount.path.join("kiln");
    project(&dir, 64, 1);
    let build = || {
        let mut command = dir.kiln_go(&go, "app", ["build", ".#container"]);
        command.env("KILN_HOME", &home);
        command
    };
    success(build());
    let before = std::fs::read_link(dir.join("app/result")).unwrap();

    // Read-only: a changed program cannot be stored.
    mount.remount("ro");
    project(&dir, 64, 2);
    let output = run(build());
    let text = stderr(&output);
    eprintln!("{text}");
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert!(text.contains("Read-only file system"), "{text}");
    assert!(
        text.contains("hint: that file system is read-only"),
        "{text}"
    );
    assert!(
        text.contains(&home.display().to_string()),
        "the error names the path: {text}"
    );
    // The old result stands; verifying only reads.
    assert_eq!(std::fs::read_link(dir.join("app/result")).unwrap(), before);
    success(
        dir.kiln_go(&go, "app", ["store", "verify"])
            .env("KILN_HOME", &home),
    );

    mount.remount("rw");
    success(build());
    assert_ne!(std::fs::read_link(dir.join("app/result")).unwrap(), before);
    success(
        dir.kiln_go(&go, "app", ["store", "verify"])
            .env("KILN_HOME", &home),
    );
    assert_eq!(tmp_entries(&home), Vec::<String>::new());
}
