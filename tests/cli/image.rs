//! `kiln image`: golden bytes, reproducibility, outputs, configuration and bad input.

use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use crate::harness::*;

/// A fixed set of files: an executable, text, a symlink, a folder, and the same content at
/// two paths.
fn fixture(dir: &TestDir, root: &str) {
    dir.write(&format!("{root}/app/run"), "#!/bin/sh\necho run\n", 0o700);
    dir.write(&format!("{root}/app/share/readme.txt"), "read me\n", 0o600);
    dir.write(&format!("{root}/app/share/copy.txt"), "read me\n", 0o644);
    dir.write(&format!("{root}/app/share/other.txt"), "other\n", 0o664);
    dir.symlink("run", &format!("{root}/app/alias"));
    dir.write(&format!("{root}/tool"), "tool binary\n", 0o755);
}

fn image_args(root: &str, output: &str) -> Vec<String> {
    [
        "image",
        "--name",
        "golden",
        "--tag",
        "1.0",
        "--add",
        &format!("./{root}/app:/opt/app"),
        "--add",
        &format!("./{root}/tool:/usr/local/bin/"),
        "--cmd",
        "/opt/app/run",
        "--cmd",
        "--flag",
        "--env",
        "PATH=/usr/local/bin:/bin",
        "--env",
        "MODE=prod",
        "--workdir",
        "/opt/app",
        "--user",
        "65532:65532",
        "--label",
        "org.opencontainers.image.title=golden",
        "--expose",
        "8080",
        "--expose",
        "53/udp",
        "-o",
        output,
    ]
    .iter()
    .map(|arg| arg.to_string())
    .collect()
}

/// Golden digests for every format and compression. If one of these changes, every image
/// kiln builds changes: find out why before updating them.
#[test]
fn golden_digests() {
    let dir = TestDir::new();
    fixture(&dir, "src");
    let manifest = success(dir.kiln(image_args("src", "golden.tar")));
    assert_eq!(
        manifest.trim(),
        "sha256:03fab0d1309c548eb7685dd5c472d66a4d7655e73c9f90bb70f0dd78dabeba7e"
    );
    assert_eq!(
        sha256_file(&dir.join("golden.tar")),
        "7f70864c6c981a1a265016bc56b9566ddd263fa4f6b4dc17cd2e5c576b479dc2"
    );

    let mut args = image_args("src", "golden-oci.tar");
    args.extend(["--format".into(), "oci-archive".into()]);
    assert_eq!(
        success(dir.kiln(&args)),
        manifest,
        "same image, another container"
    );
    assert_eq!(
        sha256_file(&dir.join("golden-oci.tar")),
        "59b12233419963c1956e9b0011afba12744d3cee90d78d8fdd57cd13c1adfa0a"
    );

    let mut args = image_args("src", "golden-layout");
    args.extend(["--format".into(), "oci".into()]);
    assert_eq!(success(dir.kiln(&args)), manifest);
    assert_eq!(
        std::fs::read_to_string(dir.join("golden-layout/index.json")).unwrap(),
        format!(
            r#"{{"manifests":[{{"annotations":{{"io.containerd.image.name":"docker.io/library/golden:1.0","org.opencontainers.image.ref.name":"1.0"}},"digest":"{}","mediaType":"application/vnd.oci.image.manifest.v1+json","platform":{{"architecture":"amd64","os":"linux"}},"size":{}}}],"mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2}}"#,
            manifest.trim(),
            401
        )
    );

    for (compression, expected) in [
        (
            "zstd",
            "sha256:9207072ce9216d4d138bb3df929d80f397fbd91651ddddc0338202f9b3dc5f7d",
        ),
        (
            "none",
            "sha256:d38f820d36289d515f58687fa8cf93767794b8df61bf32b414dd150aa25beadf",
        ),
    ] {
        let mut args = image_args("src", &format!("golden-{compression}.tar"));
        args.extend(["--compression".into(), compression.into()]);
        assert_eq!(success(dir.kiln(&args)).trim(), expected, "{compression}");
    }
}

/// The same files and flags give the same bytes in another folder, with another HOME, a
/// few seconds later, whatever the host's modes and umask were.
#[test]
fn reproducible_across_folders_homes_and_time() {
    let first = TestDir::new();
    let second = TestDir::new();
    fixture(&first, "one");
    fixture(&second, "elsewhere/two");
    // Host attributes that must not leak: other permission bits, another mtime.
    std::fs::set_permissions(
        second.join("elsewhere/two/app/run"),
        std::fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    std::fs::set_permissions(
        second.join("elsewhere/two/app/share"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    std::fs::File::options()
        .write(true)
        .open(second.join("elsewhere/two/tool"))
        .unwrap()
        .set_modified(old)
        .unwrap();

    let first_digest = success(first.kiln(image_args("one", "out.tar")));
    std::thread::sleep(std::time::Duration::from_secs(2));
    let second_digest = success(
        second
            .kiln(image_args("elsewhere/two", "out.tar"))
            .env("TZ", "Asia/Tokyo"),
    );
    assert_eq!(first_digest, second_digest);
    assert_eq!(
        std::fs::read(first.join("out.tar")).unwrap(),
        std::fs::read(second.join("out.tar")).unwrap(),
        "archives differ byte for byte"
    );
}

#[test]
fn source_date_epoch_sets_mtime_and_created() {
    let dir = TestDir::new();
    fixture(&dir, "src");
    let default = success(dir.kiln(image_args("src", "a.tar")));
    let pinned = success(
        dir.kiln(image_args("src", "b.tar"))
            .env("SOURCE_DATE_EPOCH", "1700000000"),
    );
    let again = success(
        dir.kiln(image_args("src", "c.tar"))
            .env("SOURCE_DATE_EPOCH", "1700000000"),
    );
    assert_ne!(default, pinned);
    assert_eq!(pinned, again);
    let report: Value = serde_json::from_str(&success(
        dir.kiln(["inspect", "--json", "--files", "b.tar"]),
    ))
    .unwrap();
    assert_eq!(report[0]["created"], "2023-11-14T22:13:20Z");
    let listing = success(
        std::process::Command::new("tar")
            .arg("tvf")
            .arg(dir.join("b.tar")),
    );
    assert!(listing.contains("2023-11-14"), "{listing}");

    failure(
        dir.kiln(image_args("src", "d.tar"))
            .env("SOURCE_DATE_EPOCH", "yesterday"),
        &["SOURCE_DATE_EPOCH is `yesterday`"],
    );
    assert!(!dir.join("d.tar").exists());
}

#[test]
fn stdout_streams_the_same_bytes() {
    let dir = TestDir::new();
    fixture(&dir, "src");
    for format in ["docker-archive", "oci-archive"] {
        let mut args = image_args("src", "file.tar");
        args.extend(["--format".into(), format.into()]);
        success(dir.kiln(&args));
        let mut args = image_args("src", "-");
        args.extend(["--format".into(), format.into()]);
        let output = run(dir.kiln(&args).stdout(std::process::Stdio::piped()));
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(
            output.stdout,
            std::fs::read(dir.join("file.tar")).unwrap(),
            "{format}"
        );
    }
    let mut args = image_args("src", "-");
    args.extend(["--format".into(), "oci".into()]);
    failure(dir.kiln(&args), &["--format oci writes a folder"]);
}

#[test]
fn config_fields_reach_the_image() {
    let dir = TestDir::new();
    fixture(&dir, "src");
    success(dir.kiln([
        "image",
        "--name",
        "registry.example.com:5000/team/app:v2",
        "--add",
        "./src/tool:/bin/tool",
        "--entrypoint",
        r#"["/bin/tool", "--serve"]"#,
        "--cmd",
        "--port",
        "--cmd",
        "80",
        "--env",
        "A=1",
        "--env",
        "B=x=y",
        "--workdir",
        "/srv",
        "--user",
        "nonroot",
        "--label",
        "b=2",
        "--label",
        "a=1",
        "--expose",
        "9000-9001/tcp",
        "--created",
        "2024-05-01T14:00:00+02:00",
        "--platform",
        "linux/arm64/v8",
        "-o",
        "app.tar",
    ]));
    let report: Value =
        serde_json::from_str(&success(dir.kiln(["inspect", "--json", "app.tar"]))).unwrap();
    let image = &report[0];
    assert_eq!(
        image["names"],
        serde_json::json!(["registry.example.com:5000/team/app:v2"])
    );
    assert_eq!(
        image["entrypoint"],
        serde_json::json!(["/bin/tool", "--serve"])
    );
    assert_eq!(image["cmd"], serde_json::json!(["--port", "80"]));
    assert_eq!(image["env"], serde_json::json!(["A=1", "B=x=y"]));
    assert_eq!(image["workdir"], "/srv");
    assert_eq!(image["user"], "nonroot");
    assert_eq!(image["labels"], serde_json::json!({"a": "1", "b": "2"}));
    assert_eq!(
        image["exposed_ports"],
        serde_json::json!(["9000/tcp", "9001/tcp"])
    );
    assert_eq!(image["created"], "2024-05-01T12:00:00Z");
    assert_eq!(image["platform"], "linux/arm64/v8");

    // The docker-archive RepoTags use the familiar form.
    let tar = success(
        std::process::Command::new("tar")
            .args(["xOf"])
            .arg(dir.join("app.tar"))
            .arg("manifest.json"),
    );
    assert!(
        tar.contains(r#""RepoTags":["registry.example.com:5000/team/app:v2"]"#),
        "{tar}"
    );

    // `now` is opt-in and not the epoch.
    success(dir.kiln([
        "image",
        "--name",
        "now",
        "--add",
        "./src/tool:/t",
        "--created",
        "now",
        "-o",
        "now.tar",
    ]));
    let report: Value =
        serde_json::from_str(&success(dir.kiln(["inspect", "--json", "now.tar"]))).unwrap();
    assert!(
        report[0]["created"].as_str().unwrap().starts_with("20"),
        "{}",
        report[0]["created"]
    );
}

#[test]
fn json_output_describes_the_image() {
    let dir = TestDir::new();
    fixture(&dir, "src");
    let mut args = image_args("src", "out.tar");
    args.push("--json".into());
    let built: Value = serde_json::from_str(&success(dir.kiln(&args))).unwrap();
    let report: Value =
        serde_json::from_str(&success(dir.kiln(["inspect", "--json", "out.tar"]))).unwrap();
    assert_eq!(built["manifest_digest"], report[0]["manifest_digest"]);
    assert_eq!(built["config_digest"], report[0]["config_digest"]);
    assert_eq!(built["reference"], "golden:1.0");
    assert_eq!(
        built["layers"][0]["digest"],
        report[0]["layers"][0]["digest"]
    );
    assert_eq!(
        built["layers"][0]["diff_id"],
        report[0]["layers"][0]["diff_id"]
    );
    assert_eq!(built["layers"][0]["hard_links"], 1);
}

#[test]
fn identical_content_is_stored_once() {
    let dir = TestDir::new();
    let content = vec![7u8; 300_000];
    dir.write("files/a.bin", &content, 0o644);
    dir.write("files/nested/b.bin", &content, 0o644);
    success(dir.kiln([
        "image",
        "--name",
        "dedupe",
        "--add",
        "./files:/data",
        "-o",
        "out.tar",
    ]));
    let text = success(dir.kiln(["inspect", "--files", "out.tar"]));
    assert!(text.contains("/data/a.bin\n"), "{text}");
    assert!(
        text.contains("/data/nested/b.bin link to /data/a.bin"),
        "{text}"
    );
    assert!(text.contains("efficiency  100.0%"), "{text}");
    let report: Value =
        serde_json::from_str(&success(dir.kiln(["inspect", "--json", "out.tar"]))).unwrap();
    assert_eq!(report[0]["waste"]["stored_bytes"], 300_000);
}

#[test]
fn oci_layouts_gain_images() {
    let dir = TestDir::new();
    fixture(&dir, "src");
    for tag in ["one", "two"] {
        success(dir.kiln([
            "image",
            "--name",
            "multi",
            "--tag",
            tag,
            "--add",
            "./src/tool:/bin/tool",
            "--label",
            &format!("tag={tag}"),
            "--format",
            "oci",
            "-o",
            "layout",
        ]));
    }
    // Another image with the same tag stays beside it (its full name differs).
    success(dir.kiln([
        "image",
        "--name",
        "other",
        "--tag",
        "one",
        "--add",
        "./src/tool:/bin/tool",
        "--format",
        "oci",
        "-o",
        "layout",
    ]));
    // Rebuilding `multi:one` replaces its entry rather than adding another.
    success(dir.kiln([
        "image",
        "--name",
        "multi",
        "--tag",
        "one",
        "--add",
        "./src/tool:/bin/tool",
        "--format",
        "oci",
        "-o",
        "layout",
    ]));
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("layout/index.json")).unwrap()).unwrap();
    let refs: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            entry["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(refs, ["two", "one", "one"]);
    let report: Value =
        serde_json::from_str(&success(dir.kiln(["inspect", "--json", "layout"]))).unwrap();
    // `other:one` and the rebuilt `multi:one` are the same bytes: one image, two names.
    let names: Vec<&Value> = report
        .as_array()
        .unwrap()
        .iter()
        .map(|image| &image["names"])
        .collect();
    assert_eq!(
        names,
        [
            &serde_json::json!(["multi:two"]),
            &serde_json::json!(["other:one", "multi:one"])
        ]
    );
    assert!(
        !dir.listing("layout/blobs/sha256")
            .iter()
            .any(|name| name.starts_with('.'))
    );

    dir.write("not-a-layout/file", "x", 0o644);
    failure(
        dir.kiln([
            "image",
            "--name",
            "x",
            "--add",
            "./src/tool:/t",
            "--format",
            "oci",
            "-o",
            "not-a-layout",
        ]),
        &["not-a-layout exists and is not an OCI layout", "hint:"],
    );
}

/// Bad input: a clear error naming the thing, exit code 1, and no output or temporary left.
#[test]
fn bad_input_is_refused_cleanly() {
    let dir = TestDir::new();
    fixture(&dir, "src");
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["--add", "./missing:/bin/x"],
            vec!["./missing does not exist"],
        ),
        (
            vec!["--add", "./src/tool:bin/tool"],
            vec!["destination `bin/tool` is not an absolute path", "hint:"],
        ),
        (
            vec!["--add", "./src/tool"],
            vec!["--add `./src/tool` is not SRC:DEST"],
        ),
        (
            vec![
                "--add",
                "./src/tool:/bin/x",
                "--add",
                "./src/app/run:/bin/x",
            ],
            vec!["/bin/x is added twice: from ./src/tool and from ./src/app/run"],
        ),
        (
            vec!["--add", "./src/tool:/bin/../etc"],
            vec!["`.` and `..` are not allowed"],
        ),
        (
            vec!["--add", "./src/tool:/x", "--add", "./src/app:/x/y"],
            vec!["/x is a file"],
        ),
        (
            vec!["--add", "./src/tool:/x", "--env", "NOVALUE"],
            vec!["--env `NOVALUE` is not KEY=VALUE"],
        ),
        (
            vec!["--add", "./src/tool:/x", "--env", "A=1", "--env", "A=2"],
            vec!["--env sets `A` twice"],
        ),
        (
            vec!["--add", "./src/tool:/x", "--expose", "http"],
            vec!["`http` is not a port number"],
        ),
        (
            vec!["--add", "./src/tool:/x", "--workdir", "srv"],
            vec!["--workdir `srv` is not an absolute path"],
        ),
        (
            vec!["--add", "./src/tool:/x", "--cmd", "[broken"],
            vec!["starts like a JSON array", "hint:"],
        ),
        (
            vec!["--add", "./src/tool:/x", "--tag=-bad"],
            vec!["--tag `-bad` is not a valid tag"],
        ),
    ];
    for (extra, needles) in cases {
        let mut args = vec!["image", "--name", "bad", "-o", "out/bad.tar"];
        args.extend(extra.iter().copied());
        std::fs::create_dir_all(dir.join("out")).unwrap();
        failure(dir.kiln(&args), &needles);
        assert!(
            dir.listing("out").is_empty(),
            "{args:?} left {:?}",
            dir.listing("out")
        );
    }
    failure(
        dir.kiln([
            "image",
            "--name",
            "Bad",
            "--add",
            "./src/tool:/x",
            "-o",
            "out/x.tar",
        ]),
        &["--name `Bad`", "repository names must be lowercase"],
    );
    failure(
        dir.kiln([
            "image",
            "--name",
            "a:1",
            "--tag",
            "2",
            "--add",
            "./src/tool:/x",
            "-o",
            "out/x.tar",
        ]),
        &["the tag is given twice"],
    );
    failure(
        dir.kiln([
            "image",
            "--name",
            "x",
            "--add",
            "./src/tool:/x",
            "-o",
            "missing-folder/x.tar",
        ]),
        &["the folder for missing-folder/x.tar does not exist"],
    );
    // Usage errors are clap's, exit code 2.
    let output = run(dir.kiln(["image", "--name", "x", "-o", "x.tar"]));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--add <SRC:DEST>"),
        "{}",
        stderr(&output)
    );
}

/// A file that cannot be read fails the build mid-way; the old output survives untouched
/// and no temporary is left.
#[test]
fn unreadable_file_keeps_the_old_output() {
    let dir = TestDir::new();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir.write("src/big.bin", vec![1u8; 1 << 20], 0o644);
    dir.write("src/secret", "no", 0o000);
    std::fs::set_permissions(dir.join("src"), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir.write("out/image.tar", "the previous image", 0o666);
    std::fs::set_permissions(dir.join("out"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut command = dir.kiln([
        "image",
        "--name",
        "x",
        "--add",
        "./src:/data",
        "-o",
        "out/image.tar",
    ]);
    if is_root() {
        // root reads any file: run kiln as nobody.
        if !require("setpriv", "unreadable_file_keeps_the_old_output (as root)") {
            return;
        }
        command = as_nobody(&command);
    }
    failure(
        &mut command,
        &["cannot read ./src/secret", "Permission denied"],
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("out/image.tar")).unwrap(),
        "the previous image"
    );
    assert_eq!(dir.listing("out"), ["image.tar"]);
}

#[test]
fn refuses_to_write_into_a_folder_or_terminal_guesses() {
    let dir = TestDir::new();
    fixture(&dir, "src");
    std::fs::create_dir(dir.join("folder")).unwrap();
    failure(
        dir.kiln([
            "image",
            "--name",
            "x",
            "--add",
            "./src/tool:/x",
            "-o",
            "folder",
        ]),
        &["folder is a folder", "hint:"],
    );
}

#[test]
fn help_documents_the_command_forms() {
    let dir = TestDir::new();
    let help = success(dir.kiln(["image", "--help"]));
    for needle in [
        "--add <SRC:DEST>",
        "--cmd <ARG>",
        "JSON array",
        "SOURCE_DATE_EPOCH",
        "docker-archive",
        "oci-archive",
        "zstd",
    ] {
        assert!(help.contains(needle), "help lacks {needle}:\n{help}");
    }
}

/// Ctrl-C or SIGTERM in the middle of writing: exit code 130 and nothing left behind, for
/// an archive and for a layout folder.
#[test]
fn interrupted_builds_leave_nothing() {
    let dir = TestDir::new();
    // 128 MiB of incompressible bytes, so the signal lands while the layer is being written.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut data = vec![0u8; 128 << 20];
    for chunk in data.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    dir.write("src/big.bin", &data, 0o644);
    std::fs::create_dir(dir.join("out")).unwrap();
    for (signal, format) in [("INT", "docker-archive"), ("TERM", "oci")] {
        let mut child = dir
            .kiln([
                "image",
                "--name",
                "big",
                "--add",
                "./src:/data",
                "--format",
                format,
                "-o",
                "out/image",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !dir
            .listing("out")
            .iter()
            .any(|name| name.starts_with(".kiln-tmp-"))
        {
            assert!(
                child.try_wait().unwrap().is_none(),
                "kiln ended before it could be interrupted"
            );
            assert!(
                std::time::Instant::now() < deadline,
                "no temporary output appeared"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let output = child.wait_with_output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(130),
            "{format}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains("interrupted"),
            "{}",
            stderr(&output)
        );
        assert!(
            dir.listing("out").is_empty(),
            "{format} left {:?}",
            dir.listing("out")
        );
    }
}

/// An image streamed to a reader that goes away is an error, not a silent success.
#[test]
fn a_closed_stdout_fails_the_stream() {
    let dir = TestDir::new();
    dir.write("src/big.bin", vec![3u8; 8 << 20], 0o644);
    let mut child = dir
        .kiln([
            "image",
            "--name",
            "pipe",
            "--add",
            "./src:/data",
            "--compression",
            "none",
            "-o",
            "-",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away at once
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("cannot write the image to stdout"),
        "{}",
        stderr(&output)
    );
}

/// Regression test: as root, writing "to /dev/null" renamed a regular file over the device.
/// Devices and FIFOs are written into; a symlink is written through.
#[test]
fn devices_and_symlinks_are_written_through() {
    let dir = TestDir::new();
    dir.write("f", "content", 0o644);
    let args = |output: &str| -> Vec<String> {
        ["image", "--name", "dev", "--add", "./f:/f", "-o", output]
            .iter()
            .map(|arg| arg.to_string())
            .collect()
    };
    // A private null device, so a regression cannot damage the machine's /dev/null (an
    // earlier version of this test did exactly that when run against the unfixed code).
    if is_root() {
        let device = dir.join("null");
        let made = std::process::Command::new("mknod")
            .arg(&device)
            .args(["c", "1", "3"])
            .status()
            .unwrap();
        assert!(made.success());
        let before = std::fs::symlink_metadata(&device).unwrap();
        success(dir.kiln(args("null")));
        let after = std::fs::symlink_metadata(&device).unwrap();
        assert!(
            std::os::unix::fs::FileTypeExt::is_char_device(&after.file_type()),
            "the device was replaced by a file"
        );
        assert_eq!(
            std::os::unix::fs::MetadataExt::ino(&before),
            std::os::unix::fs::MetadataExt::ino(&after)
        );
    }

    // A FIFO gets the stream.
    let fifo = dir.join("pipe");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let reader = std::thread::spawn({
        let fifo = fifo.clone();
        move || std::fs::read(fifo).unwrap()
    });
    let digest = success(dir.kiln(args("pipe")));
    let streamed = reader.join().unwrap();
    success(dir.kiln(args("file.tar")));
    assert_eq!(streamed, std::fs::read(dir.join("file.tar")).unwrap());
    assert_eq!(digest, success(dir.kiln(args("again.tar"))));

    // A symlink to an archive: the archive is replaced, the link stays.
    dir.write("real.tar", "old", 0o644);
    dir.symlink("real.tar", "link.tar");
    success(dir.kiln(args("link.tar")));
    assert!(
        std::fs::symlink_metadata(dir.join("link.tar"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read(dir.join("real.tar")).unwrap(),
        std::fs::read(dir.join("file.tar")).unwrap()
    );
}

/// The declared platform comes from the ELF executables, never from the machine kiln runs
/// on; without executables it is linux/amd64, and mixed architectures are refused.
#[test]
fn platform_comes_from_the_executables() {
    let dir = TestDir::new();
    let elf = |machine: u16| -> Vec<u8> {
        let mut header = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
        header.resize(18, 0);
        header.extend_from_slice(&machine.to_le_bytes());
        header.resize(64, 0);
        header
    };
    dir.write("arm/server", elf(183), 0o755);
    dir.write("arm/lib.so", elf(62), 0o644); // not executable: not counted
    dir.write("x86/server", elf(62), 0o755);
    dir.write("data/readme", "text", 0o644);
    let platform = |add: &str| -> String {
        success(dir.kiln(["image", "--name", "p", "--add", add, "-o", "p.tar"]));
        let report: Value =
            serde_json::from_str(&success(dir.kiln(["inspect", "--json", "p.tar"]))).unwrap();
        report[0]["platform"].as_str().unwrap().to_owned()
    };
    assert_eq!(platform("./arm:/app"), "linux/arm64");
    assert_eq!(platform("./x86:/app"), "linux/amd64");
    let output = run(dir.kiln([
        "image",
        "--name",
        "p",
        "--add",
        "./data:/data",
        "-o",
        "p.tar",
    ]));
    assert!(
        stderr(&output)
            .contains("no ELF executable among the files; the image declares linux/amd64")
    );
    failure(
        dir.kiln([
            "image",
            "--name",
            "p",
            "--add",
            "./arm:/a",
            "--add",
            "./x86:/b",
            "-o",
            "mixed.tar",
        ]),
        &[
            "several platforms: linux/amd64 (./x86/server), linux/arm64 (./arm/server)",
            "hint:",
        ],
    );
    assert!(!dir.join("mixed.tar").exists());
    assert_eq!(
        success(dir.kiln([
            "image",
            "--name",
            "p",
            "--add",
            "./arm:/a",
            "--add",
            "./x86:/b",
            "--platform",
            "linux/arm64",
            "-o",
            "mixed.tar"
        ]))
        .len(),
        72
    );
}

/// Files given with a folder destination land at their own paths; two sources at one path
/// are refused even when both are folders.
#[test]
fn destinations_are_compared_where_sources_land() {
    let dir = TestDir::new();
    dir.write("a/tool-a", "a", 0o755);
    dir.write("b/tool-b", "b", 0o755);
    dir.write("c/tool-a", "c", 0o755);
    success(dir.kiln([
        "image",
        "--name",
        "d",
        "--add",
        "./a/tool-a:/bin/",
        "--add",
        "./b/tool-b:/bin/",
        "-o",
        "ok.tar",
    ]));
    failure(
        dir.kiln([
            "image", "--name", "d", "--add", "./a:/srv", "--add", "./b:/srv", "-o", "bad.tar",
        ]),
        &["--add `./a:/srv` and --add `./b:/srv` both put something at /srv"],
    );
    failure(
        dir.kiln([
            "image",
            "--name",
            "d",
            "--add",
            "./a/tool-a:/bin/",
            "--add",
            "./c/tool-a:/bin/",
            "-o",
            "bad.tar",
        ]),
        &["/bin/tool-a is added twice: from ./a/tool-a and from ./c/tool-a"],
    );
    // A folder inside another's folder merges.
    success(dir.kiln([
        "image",
        "--name",
        "d",
        "--add",
        "./a:/srv",
        "--add",
        "./b:/srv/b",
        "-o",
        "ok2.tar",
    ]));
}
