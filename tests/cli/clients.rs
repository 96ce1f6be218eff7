//! Issue 16, item 3: the common clients read what `kiln build` writes without being told which
//! image it holds. The real skopeo (`inspect` and `copy` of `oci-archive:result`, `oci:DIR`
//! without a ref, a copy to the distribution registry) and umoci (`unpack --image DIR:TAG`),
//! for a single-platform and a linux/amd64 + linux/arm64 image; meanwhile `kiln sbom`, `kiln
//! copy` and `kiln push` still find the SBOM that is stored beside the image and not listed in
//! `index.json`. Layouts of older kiln, which listed the SBOM in `index.json`, still read.

use std::path::Path;
use std::process::Command;

use kiln::oci::layout::{LayoutEntry, LayoutWriter};
use kiln::oci::spec::Index;
use serde_json::Value;

use crate::harness::*;

/// `kiln init app` with `platforms` (none: this machine's), then `kiln build .#container`;
/// returns the folder, the digest of what `index.json` names (the manifest, or the index) and
/// each image's platform and manifest digest, as `kiln inspect --json` reports them.
fn built(go: &Path, platforms: &[&str]) -> (TestDir, String, Vec<(String, String)>) {
    let dir = TestDir::new();
    success(dir.kiln_go(go, ".", ["init", "app"]));
    if !platforms.is_empty() {
        let path = dir.join("app/kiln.toml");
        let toml = std::fs::read_to_string(&path).unwrap().replace(
            "[packages.default]\n",
            &format!("[packages.default]\nplatforms = {platforms:?}\n"),
        );
        std::fs::write(&path, toml).unwrap();
    }
    success(dir.kiln_go(go, "app", ["build", ".#container"]));
    let inspected: Value = serde_json::from_str(&success(dir.kiln_go(
        go,
        "app",
        ["inspect", "--json", "result"],
    )))
    .unwrap();
    let images = match &inspected {
        Value::Array(images) => images.clone(),
        _ => inspected["images"].as_array().unwrap().clone(),
    };
    let images: Vec<(String, String)> = images
        .iter()
        .map(|image| {
            (
                image["platform"].as_str().unwrap().to_owned(),
                image["manifest_digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let root = match &inspected {
        Value::Array(_) => images[0].1.clone(),
        _ => inspected["indexes"][0]["digest"]
            .as_str()
            .unwrap()
            .to_owned(),
    };
    (dir, root, images)
}

/// `skopeo ARGS` in the test's folder (beside the project, whose sources the copies must not
/// join), its stdout; fails the test on an error.
fn skopeo(dir: &TestDir, args: &[&str]) -> String {
    success(Command::new("skopeo").args(args).current_dir(dir.path()))
}

/// The digest `skopeo inspect ARGS… LOCATION` reports.
fn skopeo_digest(dir: &TestDir, args: &[&str]) -> String {
    let mut all = vec!["inspect"];
    all.extend_from_slice(args);
    let inspected: Value = serde_json::from_str(&skopeo(dir, &all)).unwrap();
    inspected["Digest"].as_str().unwrap().to_owned()
}

fn umoci() -> Command {
    let mut command = Command::new("umoci");
    if !is_root() {
        command.arg("--rootless");
    }
    command
}

/// The archive `app/result` unpacked as the layout folder `folder`.
fn unpack_result(dir: &TestDir, folder: &str) {
    let file = std::fs::File::open(dir.join("app/result")).unwrap();
    tar::Archive::new(file).unpack(dir.join(folder)).unwrap();
}

/// The ELF machine of a file (62 x86-64, 183 AArch64).
fn elf_machine(path: &Path) -> u16 {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF", "{}", path.display());
    u16::from_le_bytes([bytes[18], bytes[19]])
}

/// `kiln sbom LOCATION` (for `platform`; a path relative to the test's folder): the document
/// printed.
fn sbom(dir: &TestDir, go: &Path, location: &str, platform: Option<&str>) -> Vec<u8> {
    let path = dir.join(location).display().to_string();
    let mut args = vec!["sbom", path.as_str()];
    if let Some(platform) = platform {
        args.extend(["--platform", platform]);
    }
    let printed = run(dir.kiln_go(go, "app", args));
    assert!(printed.status.success(), "{}", stderr(&printed));
    printed.stdout
}

/// The document is SPDX 2.3 and its image package's purl names `manifest`.
fn assert_describes(document: &[u8], manifest: &str) {
    let document: Value = serde_json::from_slice(document).unwrap();
    assert_eq!(document["spdxVersion"], "SPDX-2.3");
    let purl = format!("pkg:oci/app@{manifest}?");
    assert!(
        document.to_string().contains(&purl),
        "the SBOM names the image manifest ({purl}): {document}"
    );
}

/// A single-platform `kiln build`: `index.json` has one entry; skopeo inspects and copies
/// `oci-archive:result` (to a layout, read back as `oci:DIR` without a ref, and to the
/// distribution registry) with the manifest's digest; umoci unpacks the layout by its tag;
/// `kiln sbom` prints the SBOM, `kiln copy` carries it, and `kiln push` lists it under the
/// referrers tag.
#[test]
fn issue16_skopeo_and_umoci_read_a_single_platform_build() {
    let test = "issue16_skopeo_and_umoci_read_a_single_platform_build";
    let Some(go) = require_go(test) else { return };
    if !require("skopeo", test) || !require("umoci", test) {
        return;
    }
    let Some(registry) = crate::registry::DistributionRegistry::start(test, None) else {
        return;
    };
    let (dir, manifest, images) = built(&go, &[]);
    assert_eq!(images.len(), 1);

    unpack_result(&dir, "layout");
    let index: Index =
        serde_json::from_slice(&std::fs::read(dir.join("layout/index.json")).unwrap()).unwrap();
    assert_eq!(index.manifests.len(), 1, "{index:?}");
    assert_eq!(index.manifests[0].digest.to_string(), manifest);

    assert_eq!(skopeo_digest(&dir, &["oci-archive:app/result"]), manifest);
    skopeo(
        &dir,
        &[
            "copy",
            "--preserve-digests",
            "oci-archive:app/result",
            "oci:copied",
        ],
    );
    assert_eq!(skopeo_digest(&dir, &["oci:copied"]), manifest);
    assert_eq!(skopeo_digest(&dir, &["oci:layout"]), manifest);
    let target = format!("docker://{}/app:0.1", registry.host());
    skopeo(
        &dir,
        &[
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            "oci-archive:app/result",
            &target,
        ],
    );
    assert_eq!(
        skopeo_digest(&dir, &["--tls-verify=false", &target]),
        manifest
    );

    success(
        umoci()
            .args(["unpack", "--image", "layout:0.1", "bundle"])
            .current_dir(dir.path()),
    );
    assert_eq!(std::fs::read(dir.join("bundle/rootfs/bin/app")).unwrap(), {
        let package = success(dir.kiln_go(&go, "app", ["build", "--no-link", "--print-out-paths"]));
        let program = Path::new(package.trim()).join("bin/app");
        std::fs::read(&program).unwrap_or_else(|error| panic!("{}: {error}", program.display()))
    });

    let document = sbom(&dir, &go, "app/result", None);
    assert_describes(&document, &manifest);
    // The same SBOM from the unpacked layout, and from a layout `kiln copy` wrote.
    assert_eq!(sbom(&dir, &go, "layout", None), document);
    success(dir.kiln_go(
        &go,
        "app",
        ["copy", "oci-archive:result", "oci:../kiln-copied:0.1"],
    ));
    assert_eq!(skopeo_digest(&dir, &["oci:kiln-copied"]), manifest);
    assert_eq!(sbom(&dir, &go, "kiln-copied", None), document);

    // Pushed, the layers are compressed (a new manifest digest, the same config) and the SBOM
    // is a referrer of the pushed image, naming it.
    let reference = format!("{}/pushed:0.1", registry.host());
    let report: Value = serde_json::from_str(&success(dir.kiln_go(
        &go,
        "app",
        ["push", "result", &reference, "--json"],
    )))
    .unwrap();
    let pushed = report["digest"].as_str().unwrap().to_owned();
    assert_ne!(pushed, manifest, "{report}");
    let raw = |location: &str| -> Value {
        serde_json::from_str(&skopeo(
            &dir,
            &["inspect", "--raw", "--tls-verify=false", location],
        ))
        .unwrap()
    };
    let remote = raw(&format!("docker://{reference}"));
    let local = raw("oci-archive:app/result");
    assert_eq!(remote["config"], local["config"]);
    assert_eq!(
        remote["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let referrers = report["referrers"].as_array().unwrap();
    assert_eq!(referrers.len(), 1, "{report}");
    assert_eq!(referrers[0]["subject"], pushed.as_str());
    assert_eq!(referrers[0]["artifactType"], "application/spdx+json");
    assert_eq!(referrers[0]["listing"], "tag-added", "{report}");
    let tagged = raw(&format!(
        "docker://{}/pushed:sha256-{}",
        registry.host(),
        pushed.strip_prefix("sha256:").unwrap()
    ));
    assert_eq!(tagged["manifests"][0]["digest"], referrers[0]["digest"]);
    // The pushed SBOM is the local one with the pushed manifest's digest for the local one.
    let artifact = raw(&format!(
        "docker://{}/pushed@{}",
        registry.host(),
        referrers[0]["digest"].as_str().unwrap()
    ));
    assert_eq!(artifact["subject"]["digest"], pushed.as_str());
    let blob = success(Command::new("curl").args(["-sf"]).arg(format!(
        "http://{}/v2/pushed/blobs/{}",
        registry.host(),
        artifact["layers"][0]["digest"].as_str().unwrap()
    )));
    let local_hex = manifest.strip_prefix("sha256:").unwrap();
    let pushed_hex = pushed.strip_prefix("sha256:").unwrap();
    assert_describes(blob.as_bytes(), &pushed);
    assert_eq!(
        blob.trim_end(),
        String::from_utf8(document.clone())
            .unwrap()
            .replace(local_hex, pushed_hex)
            .trim_end()
    );
}

/// A linux/amd64 + linux/arm64 `kiln build`: `index.json` has one entry, the index; skopeo
/// inspects and copies `oci-archive:result` whole (`oci:DIR` read back without a ref, every
/// platform there) and to the registry; umoci unpacks one platform taken out by skopeo, as the
/// README says (umoci finds a tag of several platforms ambiguous); `kiln sbom` prints each
/// platform's SBOM, also from a `kiln copy` of the archive.
#[test]
fn issue16_skopeo_and_umoci_read_a_multi_platform_build() {
    let test = "issue16_skopeo_and_umoci_read_a_multi_platform_build";
    let Some(go) = require_go(test) else { return };
    if !require("skopeo", test) || !require("umoci", test) {
        return;
    }
    let Some(registry) = crate::registry::DistributionRegistry::start(test, None) else {
        return;
    };
    let (dir, index_digest, images) = built(&go, &["linux/amd64", "linux/arm64"]);
    let platforms: Vec<&str> = images
        .iter()
        .map(|(platform, _)| platform.as_str())
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);

    unpack_result(&dir, "layout");
    let index: Index =
        serde_json::from_slice(&std::fs::read(dir.join("layout/index.json")).unwrap()).unwrap();
    assert_eq!(index.manifests.len(), 1, "{index:?}");
    assert_eq!(index.manifests[0].digest.to_string(), index_digest);

    assert_eq!(
        skopeo_digest(&dir, &["oci-archive:app/result"]),
        index_digest
    );
    let raw: Value = serde_json::from_str(&skopeo(
        &dir,
        &["inspect", "--raw", "oci-archive:app/result"],
    ))
    .unwrap();
    assert_eq!(raw["manifests"].as_array().unwrap().len(), 2, "{raw}");
    skopeo(
        &dir,
        &[
            "copy",
            "--all",
            "--preserve-digests",
            "oci-archive:app/result",
            "oci:copied",
        ],
    );
    assert_eq!(skopeo_digest(&dir, &["oci:copied"]), index_digest);
    let target = format!("docker://{}/app:0.1", registry.host());
    skopeo(
        &dir,
        &[
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
            "oci-archive:app/result",
            &target,
        ],
    );
    let pushed: Value = serde_json::from_str(&skopeo(
        &dir,
        &["inspect", "--raw", "--tls-verify=false", &target],
    ))
    .unwrap();
    assert_eq!(pushed, raw);

    skopeo(
        &dir,
        &[
            "copy",
            "--preserve-digests",
            "--override-arch",
            "arm64",
            "oci-archive:app/result",
            "oci:arm64:0.1",
        ],
    );
    assert_eq!(skopeo_digest(&dir, &["oci:arm64"]), images[1].1);
    success(
        umoci()
            .args(["unpack", "--image", "arm64:0.1", "bundle"])
            .current_dir(dir.path()),
    );
    assert_eq!(elf_machine(&dir.join("bundle/rootfs/bin/app")), 183);

    success(dir.kiln_go(
        &go,
        "app",
        ["copy", "oci-archive:result", "oci:../kiln-copied:0.1"],
    ));
    for (platform, manifest) in &images {
        let document = sbom(&dir, &go, "app/result", Some(platform));
        assert_describes(&document, manifest);
        assert_eq!(sbom(&dir, &go, "layout", Some(platform)), document);
        assert_eq!(sbom(&dir, &go, "kiln-copied", Some(platform)), document);
    }
}

/// A layout as kiln wrote it before the SBOM left `index.json` (listed there, unnamed, with
/// its `artifactType`): `kiln sbom` still prints it and `kiln copy` into a new layout carries
/// it, which then has the image alone in `index.json`.
#[test]
fn issue16_layouts_that_list_the_sbom_in_index_json_still_read() {
    let dir = TestDir::new();
    let stored = crate::sbom::image_with_sbom(&dir, "layout", "linux/amd64");
    let writer = LayoutWriter::open(&dir.join("layout")).unwrap();
    writer
        .finish(&[LayoutEntry {
            descriptor: stored.artifact.clone(),
            name: None,
            ref_name: None,
            images: Vec::new(),
            platform_tags: Vec::new(),
        }])
        .unwrap();
    let index: Index =
        serde_json::from_slice(&std::fs::read(dir.join("layout/index.json")).unwrap()).unwrap();
    assert_eq!(index.manifests.len(), 2, "{index:?}");

    let printed = run(dir.kiln(["sbom", "layout"]));
    assert!(printed.status.success(), "{}", stderr(&printed));
    assert_eq!(printed.stdout, stored.sbom);

    success(dir.kiln(["copy", "oci:layout:1", "oci:copied:1"]));
    let index: Index =
        serde_json::from_slice(&std::fs::read(dir.join("copied/index.json")).unwrap()).unwrap();
    assert_eq!(index.manifests.len(), 1, "{index:?}");
    assert_eq!(index.manifests[0].digest, stored.image.digest);
    let printed = run(dir.kiln(["sbom", "copied"]));
    assert!(printed.status.success(), "{}", stderr(&printed));
    assert_eq!(printed.stdout, stored.sbom);
}
