//! `kiln inspect`: kiln's images, images other tools made, waste, and hostile input.

use std::process::{Command, Stdio};

use serde_json::{Value, json};
use sha2::Digest as _;

use crate::harness::*;

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

fn inspect_json(dir: &TestDir, image: impl AsRef<str>) -> Value {
    let image = image.as_ref();
    serde_json::from_str(&success(dir.kiln(["inspect", "--json", image]))).unwrap()
}

#[test]
fn lists_files_and_config() {
    let dir = TestDir::new();
    dir.write("app/bin/server", "#!/bin/sh\n", 0o755);
    dir.write("app/etc/config.toml", "port = 80\n", 0o644);
    dir.symlink("server", "app/bin/srv");
    success(dir.kiln([
        "image",
        "--name",
        "listing",
        "--add",
        "./app:/",
        "--cmd",
        "/bin/server",
        "--env",
        "A=b",
        "-o",
        "out.tar",
    ]));
    let text = success(dir.kiln(["inspect", "--files", "out.tar"]));
    for needle in [
        "image       listing:latest",
        "cmd         [\"/bin/server\"]",
        "env         A=b",
        "platform    linux/",
        "created     1970-01-01T00:00:01Z",
        "        drwxr-xr-x     0:0              0 /bin\n",
        "        -rwxr-xr-x     0:0             10 /bin/server\n",
        "        lrwxrwxrwx     0:0              0 /bin/srv -> server\n",
        "        -rw-r--r--     0:0             10 /etc/config.toml\n",
        "      files    3\n",
        "efficiency  100.0%",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    // Without --files, no listing.
    let short = success(dir.kiln(["inspect", "out.tar"]));
    assert!(!short.contains("-rwxr-xr-x"), "{short}");
}

#[test]
fn reads_compressed_archives() {
    let dir = TestDir::new();
    dir.write("f", "x", 0o644);
    success(dir.kiln(["image", "--name", "gz", "--add", "./f:/f", "-o", "out.tar"]));
    let plain = inspect_json(&dir, "out.tar");
    for (tool, suffix) in [("gzip", "gz"), ("zstd", "zst")] {
        if !require(tool, &format!("reads_compressed_archives ({tool})")) {
            continue;
        }
        let compressed = std::fs::File::create(dir.join(&format!("out.tar.{suffix}"))).unwrap();
        let status = Command::new(tool)
            .arg("-c")
            .arg(dir.join("out.tar"))
            .stdout(Stdio::from(compressed))
            .status()
            .unwrap();
        assert!(status.success());
        let report = inspect_json(&dir, format!("out.tar.{suffix}"));
        assert_eq!(
            report[0]["manifest_digest"], plain[0]["manifest_digest"],
            "{tool}"
        );
    }
}

/// Build a minimal OCI layout by hand from layer bytes, so tests can make it lie.
struct HandLayout {
    dir: TestDir,
}

impl HandLayout {
    fn blob(&self, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let path = self
            .dir
            .join(&format!("layout/blobs/sha256/{}", &digest[7..]));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
        digest
    }

    /// A layout whose single layer is `layer` (uncompressed) with `diff_id` in the config.
    fn new(layer: &[u8], diff_id: Option<String>) -> Self {
        let layout = HandLayout {
            dir: TestDir::new(),
        };
        let layer_digest = layout.blob(layer);
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id.unwrap_or_else(|| layer_digest.clone())]},
        }))
        .unwrap();
        let config_digest = layout.blob(&config);
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
        }))
        .unwrap();
        let manifest_digest = layout.blob(&manifest);
        let index = json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest, "size": manifest.len()}],
        });
        layout.dir.write(
            "layout/index.json",
            serde_json::to_vec(&index).unwrap(),
            0o644,
        );
        layout.dir.write(
            "layout/oci-layout",
            r#"{"imageLayoutVersion":"1.0.0"}"#,
            0o644,
        );
        layout
    }
}

/// A tar with one regular file whose name is written raw (the tar crate refuses `..`).
fn raw_tar(name: &str, content: &[u8]) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_cksum();
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend_from_slice(content);
    bytes.resize(bytes.len().next_multiple_of(512) + 1024, 0);
    bytes
}

#[test]
fn hostile_and_broken_images_are_refused() {
    // A layer entry climbing out of the root.
    let layout = HandLayout::new(&raw_tar("../../etc/evil", b"x"), None);
    failure(
        layout.dir.kiln(["inspect", "layout"]),
        &["has an entry `../../etc/evil` that escapes the root"],
    );

    // A diff_id that does not match the layer.
    let wrong = format!("sha256:{}", "ab".repeat(32));
    let layout = HandLayout::new(&raw_tar("ok", b"x"), Some(wrong.clone()));
    failure(
        layout.dir.kiln(["inspect", "layout"]),
        &[
            "does not match",
            &format!("the config's diff_id is {wrong}"),
        ],
    );

    // A blob whose bytes changed after it was written.
    let layout = HandLayout::new(&raw_tar("ok", b"x"), None);
    let layer_digest = sha256(&raw_tar("ok", b"x"));
    let blob = layout
        .dir
        .join(&format!("layout/blobs/sha256/{}", &layer_digest[7..]));
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[600] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    failure(
        layout.dir.kiln(["inspect", "layout"]),
        &[&format!("layer {layer_digest} does not match")],
    );

    // A missing blob.
    std::fs::remove_file(&blob).unwrap();
    failure(
        layout.dir.kiln(["inspect", "layout"]),
        &[&format!("`blobs/sha256/{}` is missing", &layer_digest[7..])],
    );

    // Malformed JSON.
    layout
        .dir
        .write("layout/index.json", "{\"manifests\": [", 0o644);
    failure(
        layout.dir.kiln(["inspect", "layout"]),
        &["`index.json` is not a valid OCI index"],
    );

    // A digest that is a path.
    layout.dir.write(
        "layout/index.json",
        r#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:../../../../etc/passwd","size":1}]}"#,
        0o644,
    );
    failure(
        layout.dir.kiln(["inspect", "layout"]),
        &["invalid digest `sha256:../../../../etc/passwd`"],
    );

    // A layer announcing an 8 GiB GNU long name (the tar crate would try to hold it all).
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::GNULongName);
    header.set_size(8 << 30);
    header.set_cksum();
    let mut bomb = header.as_bytes().to_vec();
    bomb.resize(64 << 10, b'x');
    let layout = HandLayout::new(&bomb, None);
    failure(
        layout.dir.kiln(["inspect", "layout"]),
        &[
            "is not a valid tar",
            "GNU long name at byte 0 is 8589934592 bytes",
        ],
    );
    // The same as the archive itself.
    let dir = TestDir::new();
    dir.write("bomb.tar", &bomb, 0o644);
    failure(
        dir.kiln(["inspect", "bomb.tar"]),
        &["bomb.tar: the archive is damaged", "8589934592 bytes"],
    );

    // A FIFO where index.json should be (planted by an archive unpacked with `tar x`):
    // refused at once instead of blocking forever.
    let layout = HandLayout::new(&raw_tar("ok", b"x"), None);
    std::fs::remove_file(layout.dir.join("layout/index.json")).unwrap();
    let status = Command::new("mkfifo")
        .arg(layout.dir.join("layout/index.json"))
        .status()
        .unwrap();
    assert!(status.success());
    failure(
        layout.dir.kiln(["inspect", "layout"]),
        &["`index.json` is not a regular file"],
    );

    // An archive entry climbing out.
    let dir = TestDir::new();
    dir.write("evil.tar", raw_tar("../outside", b"x"), 0o644);
    failure(
        dir.kiln(["inspect", "evil.tar"]),
        &["entry `../outside` escapes the archive's root"],
    );

    // Not images at all.
    dir.write("notes.txt", "hello\n".repeat(200), 0o644);
    failure(
        dir.kiln(["inspect", "notes.txt"]),
        &["notes.txt is not an image: it is neither a folder nor a tar archive"],
    );
    dir.write("empty", "", 0o644);
    failure(
        dir.kiln(["inspect", "empty"]),
        &["empty is not an image: it is empty"],
    );
    dir.write("folder/readme", "x", 0o644);
    failure(
        dir.kiln(["inspect", "folder"]),
        &["folder is not an image: it has neither `index.json`"],
    );
    failure(
        dir.kiln(["inspect", "missing.tar"]),
        &["cannot read missing.tar", "No such file"],
    );

    // A truncated archive.
    dir.write("f", vec![9u8; 100_000], 0o644);
    success(dir.kiln([
        "image",
        "--name",
        "t",
        "--add",
        "./f:/f",
        "--compression",
        "none",
        "-o",
        "whole.tar",
    ]));
    let whole = std::fs::read(dir.join("whole.tar")).unwrap();
    dir.write("cut.tar", &whole[..60_000], 0o644);
    let error = failure(dir.kiln(["inspect", "cut.tar"]), &["cut.tar"]);
    assert!(
        error.contains("truncated") || error.contains("damaged"),
        "{error}"
    );
}

/// A layout whose index lists no image printed nothing and exited 0, as if it were fine.
#[test]
fn inspecting_a_layout_without_images_is_an_error() {
    let layout = HandLayout::new(&raw_tar("ok", b"x"), None);
    layout.dir.write(
        "layout/index.json",
        r#"{"schemaVersion":2,"manifests":[]}"#,
        0o644,
    );
    failure(
        layout.dir.kiln(["inspect", "layout"]),
        &[
            "layout holds no image",
            "hint: its index lists no image manifest",
        ],
    );
}

/// Images made by Docker and podman: the old `docker save` form (Docker 20.10 here), podman's
/// docker-archive, skopeo's OCI archive. Waste in a two-layer image holding one binary twice
/// is reported; kiln's own image of that binary stores it once.
#[test]
fn reads_images_from_engines_and_finds_their_waste() {
    let test = "reads_images_from_engines_and_finds_their_waste";
    let Some(hello) = hello_binary(test) else {
        return;
    };
    let dir = TestDir::new();
    std::fs::copy(&hello, dir.join("example")).unwrap();
    let size = std::fs::metadata(&hello).unwrap().len();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY example /bin/example\nCOPY example /usr/bin/example\nCMD [\"/bin/example\"]\n",
    )
    .unwrap();
    let name = unique_name("waste");

    let check_waste = |archive: &str, engine: &str| {
        let report = inspect_json(&dir, archive);
        let image = &report[0];
        assert_eq!(image["cmd"], json!(["/bin/example"]), "{engine}");
        assert_eq!(image["layers"].as_array().unwrap().len(), 2, "{engine}");
        let waste = &image["waste"];
        assert_eq!(waste["wasted_bytes"], size, "{engine}");
        assert_eq!(waste["stored_bytes"], 2 * size, "{engine}");
        assert_eq!(
            waste["duplicates"][0]["copies"].as_array().unwrap().len(),
            2,
            "{engine}"
        );
        let text = success(dir.kiln(["inspect", archive]));
        assert!(text.contains("efficiency  50.0%"), "{engine}: {text}");
        assert!(
            text.contains("layer 1 /bin/example") && text.contains("layer 2 /usr/bin/example"),
            "{text}"
        );
    };

    let mut engines_seen = 0;
    for host in docker_engines(test) {
        let _cleanup = LoadedImages {
            cleanups: vec![{
                let mut command = docker(&host);
                command.args(["rmi", "-f", &format!("{name}:1")]);
                command
            }],
        };
        success(
            docker(&host)
                .args(["build", "--no-cache", "-q", "-t", &format!("{name}:1"), "."])
                .current_dir(dir.path()),
        );
        let archive = format!("docker-{engines_seen}.tar");
        success(
            docker(&host)
                .args(["save", "-o", &archive, &format!("{name}:1")])
                .current_dir(dir.path()),
        );
        check_waste(&archive, &format!("docker {host:?}"));
        let report = inspect_json(&dir, &archive);
        assert_eq!(report[0]["names"], json!([format!("{name}:1")]));
        engines_seen += 1;
    }
    if require("podman", test) {
        let _cleanup = LoadedImages {
            cleanups: vec![{
                let mut command = podman();
                command.args(["rmi", "-f", &format!("{name}:2")]);
                command
            }],
        };
        success(
            podman()
                .args(["build", "--no-cache", "-q", "-t", &format!("{name}:2"), "."])
                .current_dir(dir.path()),
        );
        for format in ["docker-archive", "oci-archive"] {
            let archive = format!("podman-{format}.tar");
            success(
                podman()
                    .args([
                        "save",
                        "--format",
                        format,
                        "-o",
                        &archive,
                        &format!("{name}:2"),
                    ])
                    .current_dir(dir.path()),
            );
            check_waste(&archive, &format!("podman save --format {format}"));
        }
        engines_seen += 1;
    }
    if engines_seen > 0 && require("skopeo", test) {
        let source = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .find(|file| file.ends_with(".tar") && file.contains("docker"))
            .unwrap();
        success(
            Command::new("skopeo")
                .args([
                    "copy",
                    &format!("docker-archive:{source}"),
                    "oci-archive:skopeo.tar:x",
                ])
                .current_dir(dir.path()),
        );
        check_waste("skopeo.tar", "skopeo oci-archive");
        let report = inspect_json(&dir, "skopeo.tar");
        assert_eq!(report[0]["ref_names"], json!(["x"]));
    }
    if engines_seen == 0 {
        // Skipped above: no engine made an image to inspect.
        return;
    }

    // The same binary packed by kiln at two paths: stored once, nothing wasted.
    success(dir.kiln([
        "image",
        "--name",
        "twice",
        "--add",
        "./example:/bin/example",
        "--add",
        "./example:/usr/bin/example",
        "-o",
        "kiln.tar",
    ]));
    let report = inspect_json(&dir, "kiln.tar");
    assert_eq!(report[0]["waste"]["stored_bytes"], size);
    assert_eq!(report[0]["waste"]["wasted_bytes"], 0);
    assert!(success(dir.kiln(["inspect", "kiln.tar"])).contains("efficiency  100.0%"));
}
