//! Issue 18: sources are hashed and copied incrementally, and no edit is ever missed. The
//! project is tests/fixtures/vendored; every step edits it, builds with the real kiln and Go,
//! and runs the program that was built.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::*;

/// The program of the last `kiln build`: what it prints.
fn program_says(root: &Path) -> String {
    success(Command::new(root.join("result/bin/shop")))
}

/// `kiln build` (the package), returning stderr.
#[track_caller]
fn build(dir: &TestDir, go: &Path) -> String {
    let output = run(dir.kiln_go(go, "shop", ["build"]));
    assert!(output.status.success(), "{}", stderr(&output));
    stderr(&output)
}

fn main_go(name: &str) -> String {
    format!(
        "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n\n\t\"example.com/greet\"\n\t\"example.com/shop/internal/price\"\n)\n\nfunc main() {{\n\tfmt.Println(greet.Hello(\"{name}\"))\n\tfmt.Println(\"total:\", price.Total(1999, 501))\n\tif len(os.Args) > 1 {{\n\t\tfmt.Println(\"args:\", os.Args[1:])\n\t}}\n}}\n"
    )
}

/// Every file and link under `folder` (relative paths, sorted), leaving out what kiln never
/// takes as a source.
fn files_under(folder: &Path) -> Vec<String> {
    fn walk(folder: &Path, prefix: &str, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(folder).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                walk(&entry.path(), &path, found);
            } else {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(folder, "", &mut found);
    found.sort();
    found
}

/// The copy of the project in its kept build folder.
fn build_copy(home: &Path) -> PathBuf {
    let projects = home.join("v1/projects");
    for project in std::fs::read_dir(&projects).unwrap() {
        let src = project.unwrap().path().join("build-0/src");
        if !src.is_dir() {
            continue;
        }
        let mut pending = vec![src];
        while let Some(folder) = pending.pop() {
            if folder.join("kiln.toml").is_file() {
                return folder;
            }
            for entry in std::fs::read_dir(&folder).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() && !path.is_symlink() {
                    pending.push(path);
                }
            }
        }
    }
    panic!("no build folder under {}", projects.display());
}

/// The vendored fixture `shop` in `dir`, with a go.sum. Its hashes are recorded, never
/// checked against vendor/: well-formed is enough.
fn vendored_shop(dir: &TestDir) -> PathBuf {
    let root = dir.fixture("vendored", "shop");
    let h1 = |letter: &str| format!("h1:{}A=", letter.repeat(42));
    std::fs::write(
        root.join("go.sum"),
        format!(
            "example.com/greet v1.2.0 {}\nexample.com/greet v1.2.0/go.mod {}\nexample.com/units v0.3.1 {}\nexample.com/units v0.3.1/go.mod {}\n",
            h1("D"),
            h1("E"),
            h1("F"),
            h1("G")
        ),
    )
    .unwrap();
    root
}

#[test]
fn issue_18_no_edit_is_ever_missed() {
    let test = "issue_18_no_edit_is_ever_missed";
    let Some(go) = require_go(test) else { return };
    let dir = TestDir::new();
    let root = vendored_shop(&dir);
    dir.write("shop/.gitignore", "scratch/\n", 0o644);
    dir.write(
        "shop/cmd/shop/extra.go",
        "package main\n\nimport \"fmt\"\n\nfunc init() { fmt.Println(\"extra init\") }\n",
        0o644,
    );
    dir.write("shop/cmd/shop/main.go", main_go("shop"), 0o644);
    success(dir.kiln_go(&go, "shop", ["lock"]));
    build(&dir, &go);
    let first = std::fs::read_link(root.join("result")).unwrap();
    assert_eq!(
        program_says(&root),
        "extra init\nHello, shop, from a vendored module!\ntotal: 25.00\n"
    );
    let main = root.join("cmd/shop/main.go");

    // Edits of the same size, each built at once: several within a second of each other and
    // of the scans that recorded the file.
    for name in ["sho1", "sho2", "sho3", "sho4"] {
        std::fs::write(&main, main_go(name)).unwrap();
        build(&dir, &go);
        assert!(
            program_says(&root).contains(&format!("Hello, {name}, from")),
            "{name}"
        );
    }

    // A program enters the store as a second link to Go's file in the build folder (nothing
    // copied); Go replaced that file at every edit and never wrote into it, so the first
    // output still holds the first program, and the store verifies.
    {
        use std::os::unix::fs::MetadataExt;
        let program = std::fs::metadata(root.join("result/bin/shop")).unwrap();
        assert_eq!(
            program.nlink(),
            2,
            "the store's program and Go's are one file"
        );
    }
    assert_eq!(
        success(Command::new(first.join("bin/shop"))),
        "extra init\nHello, shop, from a vendored module!\ntotal: 25.00\n"
    );
    let verify = run(dir.kiln_go(&go, "shop", ["store", "verify"]));
    assert!(verify.status.success(), "{}", stderr(&verify));

    // An edit that keeps size and mtime (touch -r), of a file whose record had settled.
    std::fs::write(&main, main_go("shoA")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2200));
    build(&dir, &go);
    assert!(program_says(&root).contains("Hello, shoA, from"));
    let reference = dir.join("reference");
    std::fs::write(&reference, "").unwrap();
    success(Command::new("touch").arg("-r").arg(&main).arg(&reference));
    let before = std::fs::metadata(&main).unwrap();
    std::fs::write(&main, main_go("shoB")).unwrap();
    success(Command::new("touch").arg("-r").arg(&reference).arg(&main));
    let after = std::fs::metadata(&main).unwrap();
    assert_eq!(
        (before.len(), before.modified().unwrap()),
        (after.len(), after.modified().unwrap()),
        "the edit keeps size and mtime"
    );
    build(&dir, &go);
    assert!(program_says(&root).contains("Hello, shoB, from"));

    // A file replaced by a link to another file.
    let price = root.join("internal/price/price.go");
    let original_price = std::fs::read_to_string(&price).unwrap();
    std::fs::write(
        root.join("internal/price/doubled.txt"),
        original_price.replace("sum += c", "sum += 2 * c"),
    )
    .unwrap();
    std::fs::remove_file(&price).unwrap();
    std::os::unix::fs::symlink("doubled.txt", &price).unwrap();
    build(&dir, &go);
    assert!(program_says(&root).contains("total: 50.00"));

    // A file deleted.
    std::fs::remove_file(root.join("cmd/shop/extra.go")).unwrap();
    build(&dir, &go);
    assert!(!program_says(&root).contains("extra init"));

    // A new file in a gitignored folder is not an input: nothing is built.
    let unchanged = std::fs::read_link(root.join("result")).unwrap();
    dir.write("shop/scratch/notes.go", "this is not Go", 0o644);
    let said = build(&dir, &go);
    assert!(said.contains("up to date"), "{said}");
    assert_eq!(std::fs::read_link(root.join("result")).unwrap(), unchanged);

    // A new file in vendor/ is.
    dir.write(
        "shop/vendor/example.com/greet/extra.go",
        "package greet\n\nimport \"fmt\"\n\nfunc init() { fmt.Println(\"vendored init\") }\n",
        0o644,
    );
    build(&dir, &go);
    assert!(program_says(&root).starts_with("vendored init\n"));

    // The build folder holds the sources and nothing else: what was deleted is gone, the
    // ignored folder never came.
    let copy = build_copy(&dir.join("kiln-home"));
    let mut sources = files_under(&root);
    sources.retain(|path| path != "result" && !path.starts_with("scratch/"));
    assert_eq!(files_under(&copy), sources);
    assert_eq!(
        std::fs::read_link(copy.join("internal/price/price.go")).unwrap(),
        Path::new("doubled.txt")
    );

    // Everything put back: the very first output, found in the store.
    std::fs::remove_file(root.join("vendor/example.com/greet/extra.go")).unwrap();
    std::fs::remove_file(&price).unwrap();
    std::fs::remove_file(root.join("internal/price/doubled.txt")).unwrap();
    std::fs::write(&price, original_price).unwrap();
    dir.write(
        "shop/cmd/shop/extra.go",
        "package main\n\nimport \"fmt\"\n\nfunc init() { fmt.Println(\"extra init\") }\n",
        0o644,
    );
    std::fs::write(&main, main_go("shop")).unwrap();
    let said = build(&dir, &go);
    assert!(said.contains("up to date"), "{said}");
    assert_eq!(std::fs::read_link(root.join("result")).unwrap(), first);
}

/// The store's record of the output `result` links to, and its path.
fn record_of_result(dir: &TestDir, root: &Path) -> (PathBuf, serde_json::Value) {
    let output = std::fs::read_link(root.join("result")).unwrap();
    let name = output.file_name().unwrap().to_string_lossy().into_owned();
    let meta = dir
        .join("kiln-home/v1/meta")
        .join(format!("{}.json", &name[..32]));
    let record = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    (meta, record)
}

/// Outputs are published without waiting for the disk and marked with the boot that wrote
/// them. After a reboot (simulated: the record names another boot) an intact output is hashed
/// once, kept and marked synced; one whose bytes did not reach the disk (a power loss: the
/// program is empty) is built again, never used.
#[test]
fn after_a_reboot_unsynced_outputs_are_checked_and_torn_ones_built_again() {
    let test = "after_a_reboot_unsynced_outputs_are_checked_and_torn_ones_built_again";
    let Some(go) = require_go(test) else { return };
    let dir = TestDir::new();
    let root = vendored_shop(&dir);
    success(dir.kiln_go(&go, "shop", ["lock"]));
    build(&dir, &go);
    let says = program_says(&root);
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let (meta, mut record) = record_of_result(&dir, &root);
    assert_eq!(record["unsynced"], boot.trim(), "{record}");

    // Rebooted, the bytes on disk: checked, kept, marked synced; nothing built.
    let earlier_boot = "00000000-1111-2222-3333-444444444444";
    record["unsynced"] = earlier_boot.into();
    std::fs::write(&meta, serde_json::to_vec(&record).unwrap()).unwrap();
    let first = std::fs::read_link(root.join("result")).unwrap();
    let said = build(&dir, &go);
    assert!(said.contains("up to date"), "{said}");
    assert_eq!(std::fs::read_link(root.join("result")).unwrap(), first);
    let (_, settled) = record_of_result(&dir, &root);
    assert!(settled.get("unsynced").is_none(), "{settled}");
    assert_eq!(program_says(&root), says);

    // Rebooted after a power loss that emptied the program: built again.
    record["unsynced"] = earlier_boot.into();
    std::fs::write(&meta, serde_json::to_vec(&record).unwrap()).unwrap();
    let program = root.join("result/bin/shop");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(&program, b"").unwrap();
    let said = build(&dir, &go);
    assert!(!said.contains("up to date"), "{said}");
    assert_eq!(program_says(&root), says);
    let (_, rebuilt) = record_of_result(&dir, &root);
    assert_eq!(rebuilt["unsynced"], boot.trim(), "{rebuilt}");
    let verify = run(dir.kiln_go(&go, "shop", ["store", "verify"]));
    assert!(verify.status.success(), "{}", stderr(&verify));
}
