//! `kiln lock` and builds from kiln.lock, against fixture modules served as a `file://` proxy
//! and over HTTP on 127.0.0.1, with go.sum written by real Go and NAR hashes checked by
//! nix-hash.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use kiln::http::test_server::{Reply, TestServer};

use crate::harness::*;

/// One fixture module version: files under its root; `go_mod` None for a module without one.
pub(crate) struct FixtureModule {
    path: &'static str,
    version: &'static str,
    go_mod: Option<String>,
    files: Vec<(&'static str, String)>,
}

/// Go's case-encoding of module paths and versions (`!` before a lowercased capital).
fn escape(text: &str) -> String {
    kiln::gomod::module::escape_path(text)
        .or_else(|_| kiln::gomod::module::escape_version(text))
        .unwrap()
}

pub(crate) fn module(
    path: &'static str,
    version: &'static str,
    requires: &[&str],
    files: Vec<(&'static str, String)>,
) -> FixtureModule {
    let mut go_mod = format!("module {path}\n\ngo 1.21\n");
    for require in requires {
        go_mod.push_str(&format!("\nrequire {require}\n"));
    }
    FixtureModule {
        path,
        version,
        go_mod: Some(go_mod),
        files,
    }
}

/// The fixture modules: a diamond (a and b need different versions of c), an uppercase path,
/// a `+incompatible` module without go.mod, and the target of a `replace` to a version.
fn fixture_modules() -> Vec<FixtureModule> {
    let c = |version: &'static str, text: &str| {
        module(
            "example.com/diamond/c",
            version,
            &[],
            vec![(
                "c.go",
                format!("package c\n\nfunc Version() string {{ return \"{text}\" }}\n"),
            )],
        )
    };
    vec![
        c("v1.0.0", "c1.0"),
        c("v1.1.0", "c1.1"),
        // go 1.16: an unpruned module graph, so Go reads c v1.0.0's go.mod (and go.sum pins
        // it) without using its code.
        module(
            "example.com/diamond/a",
            "v1.0.0",
            &["example.com/diamond/c v1.0.0"],
            vec![(
                "a.go",
                "package a\n\nimport \"example.com/diamond/c\"\n\nfunc Say() string { return \"a+\" + c.Version() }\n".to_owned(),
            )],
        ),
        module(
            "example.com/diamond/b",
            "v1.0.0",
            &["example.com/diamond/c v1.1.0"],
            vec![(
                "b.go",
                "package b\n\nimport \"example.com/diamond/c\"\n\nfunc Say() string { return \"b+\" + c.Version() }\n".to_owned(),
            )],
        ),
        module(
            "example.com/Fixture/Upper",
            "v1.0.0",
            &[],
            vec![
                (
                    "upper.go",
                    "package upper\n\nfunc Name() string { return \"Upper\" }\n".to_owned(),
                ),
                ("LICENSE", "MIT\n".to_owned()),
            ],
        ),
        FixtureModule {
            path: "example.com/legacy",
            version: "v2.0.0+incompatible",
            go_mod: None,
            files: vec![(
                "legacy.go",
                "package legacy\n\nfunc Old() string { return \"legacy v2\" }\n".to_owned(),
            )],
        },
        module(
            "example.com/fork",
            "v1.2.0",
            &[],
            vec![(
                "old.go",
                "package old\n\nfunc Hello() string { return \"fork v1.2.0\" }\n".to_owned(),
            )],
        ),
    ]
    .into_iter()
    .map(|mut fixture| {
        // The fork declares the path it replaces, as forks do.
        if fixture.path == "example.com/fork" {
            fixture.go_mod = Some("module example.com/old\n\ngo 1.21\n".to_owned());
        }
        if fixture.path == "example.com/diamond/a" {
            fixture.go_mod = fixture
                .go_mod
                .map(|text| text.replace("go 1.21", "go 1.16"));
        }
        fixture
    })
    .collect()
}

/// A module zip as Go writes one: every file under `path@version/`.
fn module_zip(module: &FixtureModule) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let prefix = format!("{}@{}/", module.path, module.version);
    let mut files: Vec<(String, String)> = module
        .files
        .iter()
        .map(|(name, text)| ((*name).to_owned(), text.clone()))
        .collect();
    if let Some(go_mod) = &module.go_mod {
        files.push(("go.mod".to_owned(), go_mod.clone()));
    }
    files.sort();
    for (name, text) in files {
        zip.start_file(format!("{prefix}{name}"), options).unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// Write the GOPROXY folder of `modules` at `folder`.
pub(crate) fn write_proxy(folder: &Path, modules: &[FixtureModule]) {
    let mut lists: BTreeMap<PathBuf, Vec<&str>> = BTreeMap::new();
    for module in modules {
        let at_v = folder.join(escape(module.path)).join("@v");
        std::fs::create_dir_all(&at_v).unwrap();
        let version = escape(module.version);
        let go_mod = module
            .go_mod
            .clone()
            .unwrap_or_else(|| format!("module {}\n", module.path));
        std::fs::write(at_v.join(format!("{version}.mod")), go_mod).unwrap();
        std::fs::write(at_v.join(format!("{version}.zip")), module_zip(module)).unwrap();
        std::fs::write(
            at_v.join(format!("{version}.info")),
            format!(
                "{{\"Version\":\"{}\",\"Time\":\"2024-01-01T00:00:00Z\"}}",
                module.version
            ),
        )
        .unwrap();
        lists.entry(at_v).or_default().push(module.version);
    }
    for (at_v, versions) in lists {
        std::fs::write(at_v.join("list"), versions.join("\n") + "\n").unwrap();
    }
}

const MAIN_GO: &str = r#"package main

import (
	"fmt"

	"example.com/Fixture/Upper"
	"example.com/diamond/a"
	"example.com/diamond/b"
	"example.com/legacy"
	"example.com/local"
	"example.com/old"
)

func main() {
	fmt.Println(upper.Name(), a.Say(), b.Say(), legacy.Old(), old.Hello(), local.Hi())
}
"#;

const EXPECTED_OUTPUT: &str = "Upper a+c1.1 b+c1.1 legacy v2 fork v1.2.0 local folder\n";

/// The project `app` (and its local replacement `local` beside it) in `dir`.
fn write_project(dir: &TestDir) {
    dir.write(
        "app/go.mod",
        "module example.com/app\n\ngo 1.21\n\nrequire (\n\texample.com/Fixture/Upper v1.0.0\n\texample.com/diamond/a v1.0.0\n\texample.com/diamond/b v1.0.0\n\texample.com/legacy v2.0.0+incompatible\n\texample.com/local v0.0.0\n\texample.com/old v1.0.0\n)\n\nreplace example.com/old => example.com/fork v1.2.0\n\nreplace example.com/local => ../local\n",
        0o644,
    );
    dir.write("app/main.go", MAIN_GO, 0o644);
    dir.write(
        "app/kiln.toml",
        "schema = 1\n\n[packages.default]\nname = \"app\"\nversion = \"1.0\"\n\n[images.container]\npackage = \"default\"\nname = \"app\"\n",
        0o644,
    );
    dir.write(
        "local/go.mod",
        "module example.com/local\n\ngo 1.21\n",
        0o644,
    );
    dir.write(
        "local/local.go",
        "package local\n\nfunc Hi() string { return \"local folder\" }\n",
        0o644,
    );
}

/// Real Go's environment for writing go.sum against the fixture proxy.
pub(crate) fn go_command(dir: &TestDir, go: &Path, proxy: &str) -> Command {
    let mut command = Command::new(go);
    command
        .current_dir(dir.join("app"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", dir.join("home"))
        .env("GOPATH", dir.join("gopath"))
        .env("GOMODCACHE", dir.join("gomodcache"))
        .env("GOCACHE", dir.join("gocache"))
        .env("GOPROXY", proxy)
        .env("GOSUMDB", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod");
    command
}

/// `kiln` for the project with the network variables pointing nowhere.
fn kiln_offline(dir: &TestDir, go: &Path, args: &[&str]) -> Command {
    let mut command = dir.kiln_go(go, "app", args);
    command
        .env("GOPROXY", "http://127.0.0.1:9/unreachable")
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("ALL_PROXY", "http://127.0.0.1:9");
    command
}

/// A project, the fixture proxy at `proxy/`, and go.sum written by real Go (also used by the
/// SBOM tests, for a program with real module dependencies).
pub(crate) fn setup(dir: &TestDir, go: &Path) -> String {
    write_proxy(&dir.join("proxy"), &fixture_modules());
    write_project(dir);
    let proxy = format!("file://{}", dir.join("proxy").display());
    success(go_command(dir, go, &proxy).args(["mod", "tidy"]));
    proxy
}

/// The go.sum lines as (module, version-or-version/go.mod) → hash.
fn go_sum(dir: &TestDir) -> BTreeMap<(String, String), String> {
    std::fs::read_to_string(dir.join("app/go.sum"))
        .unwrap()
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (
                (fields[0].to_owned(), fields[1].to_owned()),
                fields[2].to_owned(),
            )
        })
        .collect()
}

fn lock_json(dir: &TestDir) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("app/kiln.lock")).unwrap();
    let value: toml::Value = toml::from_str(&text).unwrap();
    serde_json::to_value(value).unwrap()
}

fn sri_to_hex(sri: &str) -> String {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(sri.strip_prefix("sha256-").unwrap())
        .unwrap();
    hex::encode(raw)
}

#[test]
fn lock_and_build_offline_from_a_file_proxy() {
    let Some(go) = require_go("lock_and_build_offline_from_a_file_proxy") else {
        return;
    };
    let dir = TestDir::new();
    let proxy = setup(&dir, &go);

    let mut lock = dir.kiln_go(&go, "app", ["lock", "--json"]);
    lock.env("GOPROXY", &proxy);
    let report: serde_json::Value = serde_json::from_str(&success(&mut lock)).unwrap();
    assert_eq!(report["changed"], true);

    // Every h1 equals what Go wrote in go.sum, and the module set is go.sum's.
    let sums = go_sum(&dir);
    let locked = lock_json(&dir);
    let modules = locked["module"].as_array().unwrap();
    let mut from_lock = BTreeMap::new();
    for module in modules {
        let path = module["path"].as_str().unwrap().to_owned();
        let version = module["version"].as_str().unwrap().to_owned();
        from_lock.insert(
            (path.clone(), format!("{version}/go.mod")),
            module["go-mod"].as_str().unwrap().to_owned(),
        );
        if let Some(h1) = module["h1"].as_str() {
            from_lock.insert((path, version), h1.to_owned());
        }
    }
    assert_eq!(from_lock, sums, "kiln.lock's hashes are go.sum's");
    assert!(sums.contains_key(&(
        "example.com/diamond/c".to_owned(),
        "v1.0.0/go.mod".to_owned()
    )));
    assert!(!sums.contains_key(&("example.com/diamond/c".to_owned(), "v1.0.0".to_owned())));
    assert!(sums.contains_key(&(
        "example.com/legacy".to_owned(),
        "v2.0.0+incompatible".to_owned()
    )));
    assert_eq!(locked["go"]["go"], "1.21");

    // NAR hashes equal nix-hash over the modules Go unpacked.
    if require("nix-hash", "lock_and_build_offline_from_a_file_proxy (NAR)") {
        let mut checked = 0;
        for module in modules {
            let Some(nar) = module["nar"].as_str() else {
                continue;
            };
            let folder = dir.join("gomodcache").join(format!(
                "{}@{}",
                escape(module["path"].as_str().unwrap()),
                escape(module["version"].as_str().unwrap())
            ));
            let output = success(
                Command::new("nix-hash")
                    .args(["--type", "sha256"])
                    .arg(&folder),
            );
            assert_eq!(output.trim(), sri_to_hex(nar), "{}", folder.display());
            checked += 1;
        }
        assert_eq!(checked, 6, "six modules have code");
    }

    // A re-run (GOPROXY `off`, the harness's default) fetches nothing and leaves the lock
    // as it is.
    let before = std::fs::read(dir.join("app/kiln.lock")).unwrap();
    let mut again = dir.kiln_go(&go, "app", ["lock", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&success(&mut again)).unwrap();
    assert_eq!(report["changed"], false);
    assert!(
        report["modules"]
            .as_array()
            .unwrap()
            .iter()
            .all(|module| module["fetched_bytes"].is_null())
    );
    assert_eq!(std::fs::read(dir.join("app/kiln.lock")).unwrap(), before);

    // Offline: the proxy gone, the network variables pointing nowhere.
    std::fs::rename(dir.join("proxy"), dir.join("proxy-gone")).unwrap();
    let output = success(kiln_offline(&dir, &go, &["run"]));
    assert_eq!(output, EXPECTED_OUTPUT);
    success(kiln_offline(&dir, &go, &["lock", "--check"]));
    // `kiln shell` gives Go the same locked modules.
    let output = success(
        kiln_offline(&dir, &go, &["shell", "-c", "go run . && go env GOPROXY"])
            .env("SHELL", "/bin/sh"),
    );
    let (program, proxy_line) = output.split_at(EXPECTED_OUTPUT.len());
    assert_eq!(program, EXPECTED_OUTPUT);
    assert!(
        proxy_line.starts_with(&format!(
            "file://{}/v1/go/proxy/",
            dir.join("kiln-home").display()
        )),
        "{proxy_line}"
    );

    // kiln gc keeps what kiln.lock pins: the rebuild below still runs offline.
    let report: serde_json::Value =
        serde_json::from_str(&success(kiln_offline(&dir, &go, &["gc", "--json"]))).unwrap();
    let removed = report["removed_paths"].as_array().unwrap();
    assert!(
        removed
            .iter()
            .all(|name| !name.as_str().unwrap().contains("-go-")),
        "gc removed a locked module: {removed:?}"
    );

    // A kiln.lock that cannot be read (a merge in progress) keeps every module too.
    let lock_text = std::fs::read(dir.join("app/kiln.lock")).unwrap();
    std::fs::write(dir.join("app/kiln.lock"), "<<<<<<< HEAD\n").unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&success(kiln_offline(&dir, &go, &["gc", "--json"]))).unwrap();
    assert!(
        report["removed_paths"]
            .as_array()
            .unwrap()
            .iter()
            .all(|name| !name.as_str().unwrap().contains("-go-")),
        "{report}"
    );
    std::fs::write(dir.join("app/kiln.lock"), lock_text).unwrap();

    // The folder a replace directive points at is an input: a change there rebuilds.
    dir.write(
        "local/local.go",
        "package local\n\nfunc Hi() string { return \"local edited\" }\n",
        0o644,
    );
    let output = success(kiln_offline(&dir, &go, &["run"]));
    assert_eq!(
        output,
        EXPECTED_OUTPUT.replace("local folder", "local edited")
    );
}

/// A checkout built where `kiln lock` never ran (CI's fresh folder each run, beside a kiln
/// home kept between runs): `kiln build`/`kiln run` and `kiln shell` make its kiln.lock a gc
/// root, so `kiln gc` after the checkout that was locked is gone keeps what the lock pins,
/// and the next build and shell still run offline.
#[test]
fn checkouts_built_without_kiln_lock_keep_their_pins_through_gc() {
    let Some(go) = require_go("checkouts_built_without_kiln_lock_keep_their_pins_through_gc")
    else {
        return;
    };
    let dir = TestDir::new();
    let proxy = setup(&dir, &go);
    let mut lock = dir.kiln_go(&go, "app", ["lock"]);
    lock.env("GOPROXY", &proxy);
    success(&mut lock);
    copy_tree(&dir.join("app"), &dir.join("built"));
    copy_tree(&dir.join("app"), &dir.join("entered"));
    let offline = |folder: &str, args: &[&str]| {
        let mut command = dir.kiln_go(&go, folder, args);
        command
            .env("GOPROXY", "http://127.0.0.1:9/unreachable")
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("SHELL", "/bin/sh");
        command
    };
    let gc_removed = || -> Vec<String> {
        let report: serde_json::Value =
            serde_json::from_str(&success(offline("entered", &["gc", "--json"]))).unwrap();
        report["removed_paths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|name| name.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(success(offline("built", &["run"])), EXPECTED_OUTPUT);
    assert_eq!(
        success(offline("entered", &["shell", "-c", "go run ."])),
        EXPECTED_OUTPUT
    );

    // The locked checkout goes: the build's kiln.lock keeps the modules.
    std::fs::remove_dir_all(dir.join("app")).unwrap();
    let removed = gc_removed();
    assert!(
        removed.iter().all(|name| !name.contains("-go-")),
        "gc removed a locked module: {removed:?}"
    );
    assert_eq!(success(offline("built", &["run"])), EXPECTED_OUTPUT);

    // The built one goes too: the shell's kiln.lock keeps them, and the shell still works.
    std::fs::remove_dir_all(dir.join("built")).unwrap();
    let removed = gc_removed();
    assert!(
        removed.iter().all(|name| !name.contains("-go-")),
        "gc removed a locked module: {removed:?}"
    );
    assert_eq!(
        success(offline("entered", &["shell", "-c", "go run ."])),
        EXPECTED_OUTPUT
    );
}

#[test]
fn stale_locks_are_errors_and_check_prints_the_difference() {
    let Some(go) = require_go("stale_locks_are_errors_and_check_prints_the_difference") else {
        return;
    };
    let dir = TestDir::new();
    let proxy = setup(&dir, &go);
    // No lock yet: the build says what to do.
    failure(
        kiln_offline(&dir, &go, &["build"]),
        &["there is no kiln.lock", "hint: run `kiln lock`"],
    );
    failure(
        kiln_offline(&dir, &go, &["lock", "--check"]),
        &["kiln.lock does not exist"],
    );
    let mut lock = dir.kiln_go(&go, "app", ["lock"]);
    lock.env("GOPROXY", &proxy);
    success(&mut lock);
    success(kiln_offline(&dir, &go, &["lock", "--check"]));

    // go.sum moves on (a module dropped): --check prints the difference and exits 1.
    let sum = std::fs::read_to_string(dir.join("app/go.sum")).unwrap();
    let trimmed: String = sum
        .lines()
        .filter(|line| !line.starts_with("example.com/diamond/c v1.0.0/go.mod"))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(dir.join("app/go.sum"), trimmed).unwrap();
    let output = run(kiln_offline(&dir, &go, &["lock", "--check"]));
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stdout(&output),
        "- example.com/diamond/c@v1.0.0 (in kiln.lock, not in go.sum)\n"
    );
    assert!(stderr(&output).contains("is out of date with go.mod and go.sum (1 differences)"));
    failure(
        kiln_offline(&dir, &go, &["build"]),
        &[
            "kiln.lock is out of date",
            "- example.com/diamond/c@v1.0.0",
            "hint: run `kiln lock`",
        ],
    );
}

#[test]
fn tampered_and_hostile_zips_are_refused_and_the_store_is_unchanged() {
    let Some(go) = require_go("tampered_and_hostile_zips_are_refused_and_the_store_is_unchanged")
    else {
        return;
    };
    let dir = TestDir::new();
    let proxy = setup(&dir, &go);
    let zip_path = dir.join("proxy/example.com/!fixture/!upper/@v/v1.0.0.zip");
    let honest = std::fs::read(&zip_path).unwrap();
    let store_listing = |dir: &TestDir| -> Vec<String> {
        let store = dir.join("kiln-home/v1/store");
        if !store.is_dir() {
            return Vec::new();
        }
        dir.listing("kiln-home/v1/store")
    };

    // A zip whose code differs from what go.sum pins.
    let tampered = module_zip(&FixtureModule {
        path: "example.com/Fixture/Upper",
        version: "v1.0.0",
        go_mod: Some("module example.com/Fixture/Upper\n\ngo 1.21\n".to_owned()),
        files: vec![
            (
                "upper.go",
                "package upper\n\nfunc Name() string { return \"EVIL\" }\n".to_owned(),
            ),
            ("LICENSE", "MIT\n".to_owned()),
        ],
    });
    std::fs::write(&zip_path, tampered).unwrap();
    let before = store_listing(&dir);
    let mut lock = dir.kiln_go(&go, "app", ["lock", "--jobs", "1"]);
    lock.env("GOPROXY", &proxy);
    failure(
        &mut lock,
        &[
            "example.com/Fixture/Upper@v1.0.0: zip failed verification",
            "go.sum says h1:",
        ],
    );
    assert!(!dir.join("app/kiln.lock").exists(), "no lock written");
    // Nothing entered the store, not even the modules that verified.
    assert_eq!(store_listing(&dir), before);
    assert!(dir.listing("kiln-home/v1/tmp").is_empty());

    // Hostile zips: each refused with its reason.
    let hostile = |entries: &[(&str, &[u8])]| -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default();
        for (name, content) in entries {
            zip.start_file(*name, options).unwrap();
            zip.write_all(content).unwrap();
        }
        zip.finish().unwrap().into_inner()
    };
    let prefix = "example.com/Fixture/Upper@v1.0.0/";
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            hostile(&[(&format!("{prefix}../../../etc/evil.go"), b"package x")]),
            "..",
        ),
        (
            hostile(&[
                (&format!("{prefix}a.go"), b"package upper"),
                (&format!("{prefix}A.go"), b"package upper"),
            ]),
            "case",
        ),
        (
            hostile(&[("other.com/x@v1.0.0/a.go", b"package x")]),
            "outside",
        ),
        (
            {
                // A deflate bomb: 501 MiB of zeros in well under 1 MiB, past Go's 500 MiB.
                let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
                zip.start_file(
                    format!("{prefix}zeros.txt"),
                    zip::write::SimpleFileOptions::default()
                        .compression_method(zip::CompressionMethod::Deflated)
                        .large_file(true),
                )
                .unwrap();
                let block = vec![0u8; 1 << 20];
                for _ in 0..501 {
                    zip.write_all(&block).unwrap();
                }
                zip.finish().unwrap().into_inner()
            },
            "more than 524288000 bytes",
        ),
        (
            {
                let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
                zip.add_symlink(
                    format!("{prefix}link.go"),
                    "/etc/passwd",
                    zip::write::SimpleFileOptions::default(),
                )
                .unwrap();
                zip.finish().unwrap().into_inner()
            },
            "symlink",
        ),
    ];
    for (bytes, reason) in cases {
        std::fs::write(&zip_path, bytes).unwrap();
        let mut lock = dir.kiln_go(&go, "app", ["lock", "--jobs", "1"]);
        lock.env("GOPROXY", &proxy);
        let text = failure(&mut lock, &["example.com/Fixture/Upper@v1.0.0"]);
        assert!(
            text.to_lowercase().contains(reason),
            "the error should say `{reason}`:\n{text}"
        );
        assert!(!dir.join("app/kiln.lock").exists());
        assert!(dir.listing("kiln-home/v1/tmp").is_empty());
        assert_eq!(store_listing(&dir), before, "the store is unchanged");
    }
    std::fs::write(&zip_path, honest).unwrap();
    let mut lock = dir.kiln_go(&go, "app", ["lock"]);
    lock.env("GOPROXY", &proxy);
    success(&mut lock);
    success(dir.kiln_go(&go, "app", ["store", "verify"]));
}

/// A static file server for the proxy folder on 127.0.0.1, counting requests.
fn serve(folder: PathBuf) -> (String, TestServer) {
    let server = TestServer::start(move |request, _| {
        // Go URL-escapes the case-encoding `!` (and `+`-free versions stay as they are).
        let path = request.path.replace("%21", "!");
        let file = folder.join(path.trim_start_matches('/'));
        match std::fs::read(&file) {
            Ok(body) if file.is_file() => Reply::ok(body),
            _ => Reply::new(404, "not found"),
        }
    })
    .unwrap();
    (server.url().to_owned(), server)
}

#[test]
fn lock_over_http_and_gomod2nix_both_ways() {
    let Some(go) = require_go("lock_over_http_and_gomod2nix_both_ways") else {
        return;
    };
    let dir = TestDir::new();
    setup(&dir, &go);
    let (url, requests) = serve(dir.join("proxy"));
    // A first proxy that has nothing (404), then the fixture proxy: `,` falls through.
    let (empty_url, _) = serve(dir.join("empty"));
    let mut lock = dir.kiln_go(&go, "app", ["lock", "--gomod2nix"]);
    lock.env("GOPROXY", format!("{empty_url},{url}"));
    success(&mut lock);
    // 6 modules with code (.mod and .zip) and c v1.0.0 (.mod only): 13 files, each once.
    assert_eq!(requests.count(), 13);

    let gomod2nix = std::fs::read_to_string(dir.join("app/gomod2nix.toml")).unwrap();
    assert!(
        gomod2nix.starts_with("schema = 3\n\n[mod]\n"),
        "{gomod2nix}"
    );
    // The replaced module is keyed by the path go.mod requires.
    assert!(
        gomod2nix.contains("  [mod.\"example.com/old\"]\n    version = \"v1.2.0\"\n"),
        "{gomod2nix}"
    );
    assert!(gomod2nix.contains("    replaced = \"example.com/fork\"\n"));
    assert!(
        !gomod2nix.contains("example.com/local"),
        "local folders are not fetched"
    );
    let locked = lock_json(&dir);
    for module in locked["module"].as_array().unwrap() {
        if let Some(nar) = module["nar"].as_str() {
            assert!(gomod2nix.contains(nar), "{} missing", module["path"]);
        }
    }

    // A project with only gomod2nix.toml locks from it, its NAR hashes verified, and builds.
    let other = TestDir::new();
    copy_tree(&dir.join("app"), &other.join("app"));
    copy_tree(&dir.join("local"), &other.join("local"));
    std::fs::remove_file(other.join("app/go.sum")).unwrap();
    std::fs::remove_file(other.join("app/kiln.lock")).unwrap();
    let mut lock = other.kiln_go(&go, "app", ["lock"]);
    lock.env("GOPROXY", &url);
    let text = crate::harness::stderr(&run(&mut lock));
    assert!(text.contains("from gomod2nix.toml"), "{text}");
    let output = success(kiln_offline(&other, &go, &["run"]));
    assert_eq!(output, EXPECTED_OUTPUT);

    // A gomod2nix hash that does not match the module is refused.
    let wrong = {
        // Well-formed base64 of 32 bytes, one character changed.
        let start = gomod2nix.find("hash = \"sha256-").unwrap() + "hash = \"sha256-".len();
        let mut bytes = gomod2nix.clone().into_bytes();
        bytes[start] = if bytes[start] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap()
    };
    let third = TestDir::new();
    copy_tree(&other.join("app"), &third.join("app"));
    copy_tree(&other.join("local"), &third.join("local"));
    std::fs::remove_file(third.join("app/kiln.lock")).unwrap();
    std::fs::write(third.join("app/gomod2nix.toml"), wrong).unwrap();
    let mut lock = third.kiln_go(&go, "app", ["lock"]);
    lock.env("GOPROXY", &url);
    failure(
        &mut lock,
        &[
            "unpacked module (NAR hash) failed verification",
            "gomod2nix.toml says sha256-",
        ],
    );
}

/// `go`'s GOROOT and release (`go1.27.3`), as `go env` says.
pub(crate) fn goroot_and_release(go: &Path) -> (PathBuf, String) {
    let goroot = PathBuf::from(success(Command::new(go).args(["env", "GOROOT"])).trim());
    let release = success(Command::new(go).args(["env", "GOVERSION"]))
        .trim()
        .to_owned();
    (goroot, release)
}

/// The local GOROOT as Go distributes a release: the module
/// `golang.org/toolchain@v0.0.1-<release>.<host>`, go.mod files stored as `_go.mod`, without
/// api/, doc/, misc/ and test/. For a host other than linux-amd64 (the same programs under
/// another host's name) a file `HOST` says which, so its h1 differs.
pub(crate) fn toolchain_zip(goroot: &Path, release: &str, host: &str) -> Vec<u8> {
    fn walk(folder: &Path, relative: &str, files: &mut Vec<(String, PathBuf)>) {
        for entry in std::fs::read_dir(folder).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let child = if relative.is_empty() {
                name.clone()
            } else {
                format!("{relative}/{name}")
            };
            if entry.file_type().unwrap().is_dir() {
                if !(relative.is_empty() && ["api", "doc", "misc", "test"].contains(&name.as_str()))
                {
                    walk(&path, &child, files);
                }
            } else if name == "go.mod" {
                files.push((
                    format!("{relative}/_go.mod")
                        .trim_start_matches('/')
                        .to_owned(),
                    path,
                ));
            } else {
                files.push((child, path));
            }
        }
    }
    let mut files = Vec::new();
    walk(goroot, "", &mut files);
    files.sort();
    let prefix = format!("golang.org/toolchain@v0.0.1-{release}.{host}/");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, path) in files {
        zip.start_file(format!("{prefix}{name}"), options).unwrap();
        zip.write_all(&std::fs::read(path).unwrap()).unwrap();
    }
    if host != "linux-amd64" {
        zip.start_file(format!("{prefix}HOST"), options).unwrap();
        zip.write_all(host.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

#[test]
fn the_pinned_toolchain_is_fetched_verified_and_used() {
    let Some(go) = require_go("the_pinned_toolchain_is_fetched_verified_and_used") else {
        return;
    };
    if std::env::consts::ARCH != "x86_64" {
        skip(
            "the_pinned_toolchain_is_fetched_verified_and_used",
            "the fixture release is linux-amd64",
        );
        return;
    }
    let (goroot, release) = goroot_and_release(&go);
    let dir = TestDir::new();
    let at_v = dir.join("proxy/golang.org/toolchain/@v");
    std::fs::create_dir_all(&at_v).unwrap();
    for host in ["linux-amd64", "linux-arm64"] {
        std::fs::write(
            at_v.join(format!("v0.0.1-{release}.{host}.zip")),
            toolchain_zip(&goroot, &release, host),
        )
        .unwrap();
    }
    dir.write(
        "app/go.mod",
        format!("module example.com/app\n\ngo 1.21\n\ntoolchain {release}\n"),
        0o644,
    );
    dir.write(
        "app/main.go",
        "package main\n\nimport (\n\t\"fmt\"\n\t\"runtime\"\n)\n\nfunc main() { fmt.Println(\"built by\", runtime.Version()) }\n",
        0o644,
    );
    dir.write(
        "app/kiln.toml",
        "schema = 1\n\n[packages.default]\nname = \"app\"\n",
        0o644,
    );
    // No Go anywhere: not on PATH, no KILN_GO.
    let kiln = |args: &[&str]| {
        let mut command = dir.kiln(args);
        command
            .current_dir(dir.join("app"))
            .env("PATH", "/usr/bin:/bin");
        command
    };
    let proxy = format!("file://{}", dir.join("proxy").display());
    failure(
        kiln(&["build"]),
        &[
            &format!("builds with {release} (go.mod, kiln.lock), and the go here is missing"),
            "hint: run `kiln lock` to fetch",
        ],
    );
    let output = run(kiln(&["lock"]).env("GOPROXY", &proxy));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!(
            "fetching {release} for linux-amd64 (the go here is missing)"
        )),
        "{}",
        stderr(&output)
    );
    let locked = lock_json(&dir);
    assert_eq!(locked["go"]["toolchain"], release.as_str());
    let pinned_h1 = locked["go"]["toolchain-h1"]["linux-amd64"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(pinned_h1.starts_with("h1:"));

    // The build runs the fetched release, offline (GOPROXY `off`).
    let output = success(kiln(&["run"]));
    assert_eq!(output, format!("built by {release}\n"));

    // `--host` pins the release for another host too (its zip checked, not kept); this
    // host's pin stays, and a plain `kiln lock` keeps both.
    let output = run(kiln(&["lock", "--host", "linux/arm64"]).env("GOPROXY", &proxy));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!(
            "pinning {release} for linux-arm64: fetching its zip to record its h1"
        )),
        "{}",
        stderr(&output)
    );
    let locked = lock_json(&dir);
    let hosts = locked["go"]["toolchain-h1"].as_object().unwrap();
    assert_eq!(hosts.len(), 2, "{hosts:?}");
    assert_eq!(hosts["linux-amd64"], pinned_h1.as_str());
    let arm64_h1 = hosts["linux-arm64"].as_str().unwrap().to_owned();
    assert!(
        arm64_h1.starts_with("h1:") && arm64_h1 != pinned_h1,
        "{arm64_h1}"
    );
    let stored: Vec<String> = std::fs::read_dir(dir.join("kiln-home/v1/store"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !stored.iter().any(|name| name.contains("linux-arm64")),
        "{stored:?}"
    );
    let two_hosts = std::fs::read(dir.join("app/kiln.lock")).unwrap();
    success(kiln(&["lock"]));
    assert_eq!(std::fs::read(dir.join("app/kiln.lock")).unwrap(), two_hosts);

    // A release that does not hash to the pinned h1: is refused.
    let other = TestDir::new();
    copy_tree(&dir.join("app"), &other.join("app"));
    let text = std::fs::read_to_string(other.join("app/kiln.lock"))
        .unwrap()
        .replace(
            &pinned_h1,
            "h1:A+z+XjcWgiIhrZH1NmkoHg4TTnckCc3ZrNLbNMO2ifs=",
        );
    std::fs::write(other.join("app/kiln.lock"), text).unwrap();
    let mut lock = other.kiln(["lock"]);
    lock.current_dir(other.join("app"))
        .env("PATH", "/usr/bin:/bin")
        .env("GOPROXY", &proxy);
    failure(
        &mut lock,
        &[
            &format!("golang.org/toolchain@v0.0.1-{release}.linux-amd64: zip failed verification"),
            "kiln.lock says h1:A+z+",
        ],
    );
    // GOTOOLCHAIN=local forbids fetching.
    let mut lock = other.kiln(["lock"]);
    lock.current_dir(other.join("app"))
        .env("PATH", "/usr/bin:/bin")
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", &proxy);
    failure(&mut lock, &["GOTOOLCHAIN=local forbids fetching it"]);
}

#[test]
fn replace_folders_through_links_are_refused_and_never_written() {
    let Some(go) = require_go("replace_folders_through_links_are_refused_and_never_written") else {
        return;
    };
    let dir = TestDir::new();
    dir.write(
        "app/go.mod",
        "module example.com/app\n\ngo 1.21\n\nrequire example.com/local v0.0.0\n\nreplace example.com/local => ../linked\n",
        0o644,
    );
    dir.write(
        "app/main.go",
        "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/local\"\n)\n\nfunc main() { fmt.Println(local.Hi()) }\n",
        0o644,
    );
    dir.write(
        "app/kiln.toml",
        "schema = 1\n\n[packages.default]\nname = \"app\"\n",
        0o644,
    );
    dir.write(
        "real/go.mod",
        "module example.com/local\n\ngo 1.21\n",
        0o644,
    );
    let source = "package local\n\nfunc Hi() string { return \"real folder\" }\n";
    dir.write("real/local.go", source, 0o644);
    dir.symlink("real", "linked");
    failure(
        dir.kiln_go(&go, "app", ["build"]),
        &[
            "go.mod:7: replace example.com/local => ../linked:",
            "is a link",
            "hint: point the replace directive at the real folder",
        ],
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("real/local.go")).unwrap(),
        source
    );
    // Pointed at the real folder, it builds and runs; no lock is needed for a folder.
    let go_mod = std::fs::read_to_string(dir.join("app/go.mod")).unwrap();
    std::fs::write(
        dir.join("app/go.mod"),
        go_mod.replace("../linked", "../real"),
    )
    .unwrap();
    assert_eq!(success(dir.kiln_go(&go, "app", ["run"])), "real folder\n");
    assert_eq!(
        std::fs::read_to_string(dir.join("real/local.go")).unwrap(),
        source
    );
}

#[test]
fn concurrent_locks_share_one_store() {
    let Some(go) = require_go("concurrent_locks_share_one_store") else {
        return;
    };
    let dir = TestDir::new();
    let proxy = setup(&dir, &go);
    // Four copies of the project, locked at once into one kiln home.
    for copy in 1..4 {
        copy_tree(&dir.join("app"), &dir.join(&format!("app{copy}")));
    }
    let children: Vec<_> = ["app", "app1", "app2", "app3"]
        .iter()
        .map(|folder| {
            let mut lock = dir.kiln_go(&go, folder, ["lock", "--jobs", "4"]);
            lock.env("GOPROXY", &proxy)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            lock.spawn().unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
    }
    let first = std::fs::read(dir.join("app/kiln.lock")).unwrap();
    for copy in 1..4 {
        assert_eq!(
            std::fs::read(dir.join(&format!("app{copy}/kiln.lock"))).unwrap(),
            first
        );
    }
    // Each module once; nothing left in tmp/; every output intact.
    let modules = dir
        .listing("kiln-home/v1/store")
        .into_iter()
        .filter(|name| name.contains("-go-"))
        .count();
    assert_eq!(modules, 7, "6 modules with code and one go.mod-only");
    assert!(dir.listing("kiln-home/v1/tmp").is_empty());
    // Exit 1 on any corrupt or unrecorded output.
    success(dir.kiln_go(&go, "app", ["store", "verify"]));
}
