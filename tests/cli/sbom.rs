//! SBOMs: the SPDX document of a real Go program with module dependencies (built offline from
//! the lock tests' `file://` proxy), checked by the SPDX project's own validator
//! (`pyspdxtools`), by `jsonschema` against the official SPDX 2.3 JSON schema, and by
//! packageurl-python; and `kiln sbom` reading the document stored beside an image in an OCI
//! layout, an OCI archive and a multi-platform index.

use std::path::Path;
use std::process::Command;

use kiln::lock::lockfile::LockedModule;
use kiln::oci::digest::Digest;
use kiln::oci::layout::{LayoutEntry, LayoutWriter};
use kiln::oci::reference::Reference;
use kiln::oci::spec::{Descriptor, Index, Platform, media_type};
use kiln::sbom::{BuildInfo, SbomInput, parse_go_version_m, spdx_bytes, write_artifact};
use serde_json::Value;

use crate::harness::*;

/// SHA-256 of `schemas/spdx-schema.json` at tag v2.3 of the SPDX specification's repository
/// (spdx/spdx-spec): lib4sbom 0.10.4 ships that exact file as `schemas/spdx/2.3-schema.json`.
pub(crate) const SPDX_2_3_SCHEMA_SHA256: &str =
    "239208b7ac287b3cf5d9a9af23f9d69863971102a5e1587a27a398b43490b89b";

/// Checks an SPDX JSON document (argv[1]) against the official SPDX 2.3 schema (Draft 7, as the
/// schema declares) and that every purl is in packageurl-python's canonical form. Prints the
/// schema's path first, then one line per problem; exits 1 when there is any.
const VALIDATE_PY: &str = r#"
import json, os, sys
import jsonschema, lib4sbom
from packageurl import PackageURL
schema_path = os.path.join(os.path.dirname(lib4sbom.__file__), "schemas", "spdx", "2.3-schema.json")
print(schema_path)
schema = json.load(open(schema_path))
document = json.load(open(sys.argv[1]))
problems = [
    "schema: %s at %s" % (error.message, "/".join(map(str, error.absolute_path)))
    for error in jsonschema.Draft7Validator(schema).iter_errors(document)
]
for package in document.get("packages", []):
    for reference in package.get("externalRefs", []):
        if reference["referenceType"] == "purl":
            purl = reference["referenceLocator"]
            canonical = PackageURL.from_string(purl).to_string()
            if canonical != purl:
                problems.append("purl: %s is %s in canonical form" % (purl, canonical))
for problem in problems:
    print(problem)
sys.exit(1 if problems else 0)
"#;

/// Run both validators on `document`; their exit codes and output.
pub(crate) fn validate(
    tools: &Path,
    document: &Path,
) -> ((Option<i32>, String), (Option<i32>, String)) {
    let spdx_tools = run(Command::new(tools.join("pyspdxtools"))
        .arg("-i")
        .arg(document));
    let schema = run(Command::new(tools.join("python"))
        .args(["-c", VALIDATE_PY])
        .arg(document));
    let text = |output: &std::process::Output| format!("{}{}", stdout(output), stderr(output));
    (
        (spdx_tools.status.code(), text(&spdx_tools)),
        (schema.status.code(), text(&schema)),
    )
}

/// The package named `name` at `version` (`None`: without `versionInfo`).
fn find_package<'a>(document: &'a Value, name: &str, version: Option<&str>) -> Option<&'a Value> {
    document["packages"]
        .as_array()?
        .iter()
        .find(|package| package["name"] == name && package["versionInfo"].as_str() == version)
}

fn has_relationship(document: &Value, from: &Value, kind: &str, to: &Value) -> bool {
    document["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .any(|relationship| {
            relationship["spdxElementId"] == from["SPDXID"]
                && relationship["relationshipType"] == kind
                && relationship["relatedSpdxElement"] == to["SPDXID"]
        })
}

/// A program with six modules (a diamond, an uppercase path, a `+incompatible` version, a
/// module replaced by another version, one replaced by a local folder), locked by `kiln lock`
/// and built into an image by `kiln build`: the SBOM `kiln sbom` prints passes pyspdxtools and
/// the official schema, names the image manifest, lists every locked module, and relates each
/// to the program as Go's build information (real `go version -m`) says.
#[test]
fn sbom_of_a_go_program_with_modules_is_valid_spdx() {
    const NAME: &str = "sbom_of_a_go_program_with_modules_is_valid_spdx";
    let Some(go) = require_go(NAME) else {
        return;
    };
    let Some(tools) = require_python_tools(NAME) else {
        return;
    };
    let dir = TestDir::new();
    let proxy = crate::lock::setup(&dir, &go);
    let mut lock = dir.kiln_go(&go, "app", ["lock"]);
    lock.env("GOPROXY", &proxy);
    success(&mut lock);
    let lock_path = dir.join("app/kiln.lock");
    let lock_file =
        kiln::lock::lockfile::parse(&std::fs::read_to_string(&lock_path).unwrap(), &lock_path)
            .unwrap();

    // Built by kiln, from the lock; the SBOM is the one stored beside the image.
    let mut build = dir.kiln_go(&go, "app", ["build", ".#container"]);
    build.env("GOPROXY", &proxy);
    success(&mut build);
    let bytes = run(&mut dir.kiln_go(&go, "app", ["sbom", "result"])).stdout;
    let inspected: Value = serde_json::from_str(&success(&mut dir.kiln_go(
        &go,
        "app",
        ["inspect", "--json", "result"],
    )))
    .unwrap();
    let manifest_digest = inspected[0]["manifest_digest"].as_str().unwrap().to_owned();

    // Go's own account of what it compiled in, for the relationships below.
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    success(
        crate::lock::go_command(&dir, &go, &proxy)
            .args(["build", "-trimpath", "-buildvcs=false", "-o"])
            .arg(dir.join("bin/app"))
            .arg(".")
            .env("CGO_ENABLED", "0"),
    );
    let text = success(
        crate::lock::go_command(&dir, &go, &proxy)
            .current_dir(dir.join("bin"))
            .args(["version", "-m", "app"]),
    );
    let programs = parse_go_version_m(&text).unwrap();
    assert_eq!(programs.len(), 1, "{text}");
    assert_eq!(programs[0].0, "app");
    assert_eq!(programs[0].1.path, "example.com/app");

    let path = dir.join("app.spdx.json");
    std::fs::write(&path, &bytes).unwrap();

    let ((spdx_tools_code, spdx_tools_output), (schema_code, schema_output)) =
        validate(&tools, &path);
    eprintln!("pyspdxtools -i app.spdx.json: exit {spdx_tools_code:?}\n{spdx_tools_output}");
    eprintln!("jsonschema (SPDX 2.3) and purls: exit {schema_code:?}\n{schema_output}");
    assert_eq!(
        spdx_tools_code,
        Some(0),
        "pyspdxtools:\n{spdx_tools_output}"
    );
    assert_eq!(schema_code, Some(0), "schema:\n{schema_output}");
    let schema_path = schema_output.lines().next().unwrap().trim();
    assert_eq!(sha256_file(Path::new(schema_path)), SPDX_2_3_SCHEMA_SHA256);

    // It describes this image, and every locked module is a package with its go.sum hashes.
    let document: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(
        bytes
            .windows(manifest_digest.len())
            .any(|window| window == manifest_digest.as_bytes()),
        "the SBOM names the manifest {manifest_digest}"
    );
    let modules: &[LockedModule] = &lock_file.modules;
    assert!(modules.len() >= 7, "{modules:?}");
    for module in modules {
        let package = find_package(&document, &module.path, Some(&module.version))
            .unwrap_or_else(|| panic!("{} is not in the SBOM", module.id()));
        let locators: Vec<&str> = package["externalRefs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|reference| reference["referenceLocator"].as_str().unwrap())
            .collect();
        assert!(locators.contains(&module.go_mod.as_str()), "{package}");
        if let Some(h1) = &module.h1 {
            assert!(locators.contains(&h1.as_str()), "{package}");
        }
    }

    // The program depends on what Go compiled into it; the go.mod-only module is a build
    // dependency.
    // Go reports `(devel)` for the main module: the version is kiln.toml's (issue 17).
    let app = find_package(&document, "example.com/app", Some("1.0")).unwrap();
    let image = &document["packages"][0];
    assert!(has_relationship(&document, image, "CONTAINS", app));
    let info: &BuildInfo = &programs[0].1;
    for dep in &info.deps {
        let used = dep.effective();
        let package = if used.path.starts_with("../") {
            find_package(&document, &dep.path, None)
        } else {
            find_package(&document, &used.path, Some(&used.version))
        }
        .unwrap_or_else(|| panic!("{dep:?} is not in the SBOM"));
        assert!(
            has_relationship(&document, app, "DEPENDS_ON", package),
            "{dep:?}"
        );
    }
    let stdlib = find_package(&document, "stdlib", Some(&info.go_version)).unwrap();
    assert!(has_relationship(&document, app, "DEPENDS_ON", stdlib));
    let go_mod_only = find_package(&document, "example.com/diamond/c", Some("v1.0.0")).unwrap();
    assert!(has_relationship(
        &document,
        go_mod_only,
        "BUILD_DEPENDENCY_OF",
        app
    ));
    let fork = find_package(&document, "example.com/fork", Some("v1.2.0")).unwrap();
    assert!(
        fork["comment"]
            .as_str()
            .unwrap()
            .contains("example.com/old v1.0.0")
    );

    // The validators do refuse a broken document: an identifier outside SPDXRef-[A-Za-z0-9.-]+.
    let broken = String::from_utf8(bytes)
        .unwrap()
        .replace("SPDXRef-Image", "SPDXRef-Image/1");
    let broken_path = dir.join("broken.spdx.json");
    std::fs::write(&broken_path, broken).unwrap();
    let ((spdx_tools_code, spdx_tools_output), _) = validate(&tools, &broken_path);
    assert_eq!(spdx_tools_code, Some(1), "{spdx_tools_output}");
    assert!(
        spdx_tools_output.contains("SPDXRef-Image/1"),
        "{spdx_tools_output}"
    );
}

/// Issue 21: the SBOM of a cgo build, with Zig as a build tool and musl (statically) or glibc
/// (dynamically) as the C library, passes pyspdxtools and the official schema, its purls
/// canonical (the real build's SBOM is checked in tests/cli/cgo.rs).
#[test]
fn sbom_of_a_cgo_build_is_valid_spdx() {
    const NAME: &str = "sbom_of_a_cgo_build_is_valid_spdx";
    let Some(tools) = require_python_tools(NAME) else {
        return;
    };
    let dir = TestDir::new();
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sbom/go-version-m.txt"),
    )
    .unwrap();
    let programs = parse_go_version_m(&text).unwrap();
    let reference: Reference = "localhost:5000/team/app:1.0".parse().unwrap();
    let platform: Platform = "linux/arm64".parse().unwrap();
    let zig = kiln::toolchain::zig::default_pin("linux-amd64").unwrap();
    for (target, glibc, link) in [
        ("aarch64-linux-musl", None, "STATIC_LINK"),
        (
            "aarch64-linux-gnu.2.31",
            Some(kiln::project::GlibcVersion { minor: 31 }),
            "DYNAMIC_LINK",
        ),
    ] {
        let bytes = spdx_bytes(&SbomInput {
            image: &reference,
            version: "1.0",
            created: "1970-01-01T00:00:01Z",
            manifest_digest: Digest::of(b"the image manifest"),
            platform: &platform,
            programs: &programs,
            locked_modules: &[],
            application_version: Some("1.0"),
            base: None,
            cgo: Some(kiln::sbom::SbomCgo {
                zig: &zig,
                target,
                glibc,
            }),
        })
        .unwrap();
        let path = dir.join(&format!("{target}.spdx.json"));
        std::fs::write(&path, &bytes).unwrap();
        let ((spdx_tools_code, spdx_tools_output), (schema_code, schema_output)) =
            validate(&tools, &path);
        eprintln!("{target}: pyspdxtools exit {spdx_tools_code:?}\n{spdx_tools_output}");
        eprintln!("{target}: jsonschema and purls exit {schema_code:?}\n{schema_output}");
        assert_eq!(spdx_tools_code, Some(0), "{target}: {spdx_tools_output}");
        assert_eq!(schema_code, Some(0), "{target}: {schema_output}");
        let document: Value = serde_json::from_slice(&bytes).unwrap();
        let zig_package = find_package(&document, "ziglang", Some("0.17.1")).unwrap();
        let app = find_package(&document, "example.com/app", Some("1.0")).unwrap();
        assert!(has_relationship(
            &document,
            zig_package,
            "BUILD_TOOL_OF",
            app
        ));
        let libc = match glibc {
            None => find_package(&document, "musl", None),
            Some(_) => find_package(&document, "glibc", Some("2.31")),
        }
        .unwrap();
        assert!(has_relationship(&document, app, link, libc), "{target}");
    }
}

// ------------------------------------------------------------------------------------------
// Images with an SBOM beside them, as kiln's builder stores them
// ------------------------------------------------------------------------------------------

/// An image and the SBOM artifact stored for it.
pub(crate) struct ImageWithSbom {
    /// The image manifest's descriptor (with its platform).
    pub image: Descriptor,
    /// The artifact manifest's descriptor, as the referrers API lists it.
    pub artifact: Descriptor,
    /// The SPDX document.
    pub sbom: Vec<u8>,
}

/// `kiln image --format oci` into the layout `folder` (image `app:1` for `platform`), then the
/// SBOM artifact for its manifest stored beside it with the library, as a build stores it
/// (its blobs only: `index.json` keeps its one entry).
pub(crate) fn image_with_sbom(dir: &TestDir, folder: &str, platform: &str) -> ImageWithSbom {
    dir.write("payload", format!("a payload for {platform}\n"), 0o755);
    success(dir.kiln([
        "image",
        "--name",
        "app",
        "--tag",
        "1",
        "--add",
        "./payload:/bin/payload",
        "--cmd",
        "/bin/payload",
        "--platform",
        platform,
        "--format",
        "oci",
        "-o",
        folder,
    ]));
    let layout = dir.join(folder);
    let index: Index =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index.manifests.len(), 1);
    let image = index.manifests[0].clone();
    let reference: Reference = "app:1".parse().unwrap();
    let platform: Platform = platform.parse().unwrap();
    let sbom = spdx_bytes(&SbomInput {
        image: &reference,
        version: "1",
        created: "1970-01-01T00:00:01Z",
        manifest_digest: image.digest,
        platform: &platform,
        programs: &[],
        locked_modules: &[],
        application_version: None,
        base: None,
        cgo: None,
    })
    .unwrap();
    let mut writer = LayoutWriter::open(&layout).unwrap();
    let artifact = write_artifact(&mut writer, &image, &sbom, "1970-01-01T00:00:01Z").unwrap();
    writer.finish(&[]).unwrap();
    ImageWithSbom {
        image,
        artifact,
        sbom,
    }
}

/// A layout `folder` holding an index `app:1` of a linux/amd64 and a linux/arm64 image, and
/// an SBOM artifact for each platform's manifest (stored, not listed).
fn multi_platform_with_sboms(dir: &TestDir, folder: &str) -> Vec<ImageWithSbom> {
    let images = vec![
        image_with_sbom(dir, "amd64", "linux/amd64"),
        image_with_sbom(dir, "arm64", "linux/arm64"),
    ];
    let mut writer = LayoutWriter::open(&dir.join(folder)).unwrap();
    use kiln::oci::image::BlobSink;
    for source in ["amd64", "arm64"] {
        for file in std::fs::read_dir(dir.join(source).join("blobs/sha256")).unwrap() {
            let file = file.unwrap();
            let digest: Digest = format!("sha256:{}", file.file_name().to_string_lossy())
                .parse()
                .unwrap();
            writer
                .put_blob(&digest, &std::fs::read(file.path()).unwrap())
                .unwrap();
        }
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_INDEX,
        "manifests": images.iter().map(|image| {
            let mut entry = Descriptor::new(&image.image.media_type, image.image.digest, image.image.size);
            entry.platform = image.image.platform.clone();
            entry
        }).collect::<Vec<_>>(),
    });
    let bytes = kiln::oci::json::to_canonical_vec(&index).unwrap();
    let digest = Digest::of(&bytes);
    writer.put_blob(&digest, &bytes).unwrap();
    writer
        .finish(&[LayoutEntry {
            descriptor: Descriptor::new(media_type::OCI_INDEX, digest, bytes.len() as u64),
            name: Some("app:1".parse().unwrap()),
            ref_name: None,
            images: Vec::new(),
            platform_tags: Vec::new(),
        }])
        .unwrap();
    images
}

/// Write the layout `folder` as the tar `archive` (an OCI archive).
fn tar_layout(dir: &TestDir, folder: &str, archive: &str) {
    let file = std::fs::File::create(dir.join(archive)).unwrap();
    let mut builder = tar::Builder::new(file);
    builder.append_dir_all(".", dir.join(folder)).unwrap();
    builder.finish().unwrap();
}

/// `kiln sbom` prints the stored document byte for byte, from a layout folder and from an
/// archive; the layout's `index.json` has the image alone (named), and the artifact is a blob
/// whose subject is the image; readers that want the image find only the image.
#[test]
fn kiln_sbom_prints_the_document_stored_beside_the_image() {
    let dir = TestDir::new();
    let stored = image_with_sbom(&dir, "layout", "linux/amd64");

    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("layout/index.json")).unwrap()).unwrap();
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{index}");
    assert_eq!(
        entries[0]["annotations"]["org.opencontainers.image.ref.name"],
        "1"
    );
    assert_eq!(entries[0]["digest"], stored.image.digest.to_string());
    assert_eq!(
        stored.artifact.artifact_type.as_deref(),
        Some("application/spdx+json")
    );
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(dir.join("layout").join(stored.artifact.digest.blob_path())).unwrap(),
    )
    .unwrap();
    assert_eq!(
        manifest["subject"]["digest"],
        stored.image.digest.to_string()
    );
    assert_eq!(
        manifest["config"]["digest"],
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    );

    let printed = run(dir.kiln(["sbom", "layout"]));
    assert!(printed.status.success(), "{}", stderr(&printed));
    assert_eq!(printed.stdout, stored.sbom);

    tar_layout(&dir, "layout", "app.tar");
    let printed = run(dir.kiln(["sbom", "app.tar"]));
    assert!(printed.status.success(), "{}", stderr(&printed));
    assert_eq!(printed.stdout, stored.sbom);

    // `kiln inspect` reports the one image; the artifact is not an image.
    let report: Value =
        serde_json::from_str(&success(dir.kiln(["inspect", "layout", "--json"]))).unwrap();
    assert_eq!(report.as_array().unwrap().len(), 1, "{report}");
}

/// For an index, `kiln sbom` prints the SBOM of the platform asked for (this machine's by
/// default) and names the platforms there are when the one asked for is not.
#[test]
fn kiln_sbom_picks_the_platform_of_a_multi_platform_image() {
    let dir = TestDir::new();
    let images = multi_platform_with_sboms(&dir, "multi");
    for (platform, image) in ["linux/amd64", "linux/arm64"].iter().zip(&images) {
        let printed = run(dir.kiln(["sbom", "multi", "--platform", platform]));
        assert!(printed.status.success(), "{}", stderr(&printed));
        assert_eq!(printed.stdout, image.sbom, "{platform}");
        let document: Value = serde_json::from_slice(&printed.stdout).unwrap();
        assert!(
            document["name"]
                .as_str()
                .unwrap()
                .ends_with(&format!("({platform})")),
            "{document}"
        );
    }
    if Platform::host().to_string() == "linux/amd64" {
        let printed = run(dir.kiln(["sbom", "multi"]));
        assert_eq!(printed.stdout, images[0].sbom, "{}", stderr(&printed));
    }
    failure(
        dir.kiln(["sbom", "multi", "--platform", "linux/s390x"]),
        &["no linux/s390x manifest", "linux/amd64, linux/arm64"],
    );
}

/// An image stored without an SBOM: the error says so and why that may be.
#[test]
fn kiln_sbom_without_one_says_so() {
    let dir = TestDir::new();
    dir.write("payload", "a payload\n", 0o755);
    success(dir.kiln([
        "image",
        "--name",
        "app",
        "--add",
        "./payload:/bin/payload",
        "-o",
        "app.tar",
    ]));
    failure(
        dir.kiln(["sbom", "app.tar"]),
        &["app.tar holds no SBOM", "built with sbom = false?"],
    );
}
