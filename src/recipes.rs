//! Every store recipe kiln writes, in one place.
//!
//! A recipe is a JSON document naming everything an output is made from; the sha256 of its
//! canonical bytes ([`crate::oci::json::to_canonical_vec`]) names the output in the store
//! ([`crate::store::StoreName`]), so two machines with the same inputs find the same name. Each document
//! opens with `"kiln": "<kind>/<version>"`; a version changes when what goes in the document
//! changes, or when kiln makes other bytes from the same document (an output already in the
//! store would otherwise stay as an older kiln made it), and then every output of that kind
//! gets a new name. The formats:
//!
//! ```text
//! go-package/1    {toolchain{identity,version}, platform, settings, package{name, version,
//!                 mains[{folder,program}], ldflags, tags, env}, sources,
//!                 modules? (store names), go_sum? (gomod2nix projects), replaces?}
//! image/5         {packages (store names), image{reference, paths, cmd, entrypoint, env,
//!                 workdir, user, expose, labels, compression, bases, static, files,
//!                 declared, max_layers, annotations, sbom}, source_date_epoch, created}
//!                 (3: the SBOM leaves index.json, see `oci::layout`; 4: gzip layers are
//!                 libdeflate members, see `oci::gzip`; 5: kiln's layers are plain tars,
//!                 compressed on push as `compression` says, see `transport::compress`;
//!                 the document is 2's)
//! base-image/1    {digest}                        the manifest digest is all its identity
//! base-files/1    {digest}                        the files base-image/1 of that digest
//!                                                 leaves (see `builder::executable`); 2 when
//!                                                 the listing's format or the way layers
//!                                                 are applied to it changes
//! go-module/1     {path, version, h1, go-mod}     its hashes: equal bytes, one output
//! go-toolchain/1  {release, host, h1}
//! static-base/1   {sources[{name, sha256}]}       sorted by name; digests, not URLs
//! zig-toolchain/1 {version, host, sha256}         the ziglang wheel for host, unpacked
//! zig-compilers/1 {zig, target}                   compiler scripts for a target the Zig
//!                                                 output has none for (a glibc release's);
//!                                                 `zig` is that output's store basename
//! ```
//!
//! A cgo package's `go-package/1` document has one more field, `cgo`: {zig{version, host,
//! sha256}, target, libc, cflags, ldflags} (see `toolchain::zig`); a package without cgo has
//! none, so its name is the one it had before cgo existed.
//!
//! The optional package fields enter only when there are some, so a project without
//! dependencies keeps the store name it had before locking existed. Every name these give is
//! pinned by the golden test below: a change there renames outputs on every machine.

use std::collections::BTreeMap;

use serde_json::json;

use crate::oci::digest::Digest;
use crate::project::Package;
use crate::store::{OutputKind, Recipe};

/// The Go toolchain a package is built with, as its recipe names it.
#[derive(Clone, Copy, Debug)]
pub struct ToolchainIdentity<'a> {
    /// The hash of the GOROOT (or the fetched release's identity).
    pub identity: &'a str,
    /// `go1.27.3`.
    pub version: &'a str,
}

/// What a package's recipe is made of, besides the package itself.
#[derive(Clone, Debug)]
pub struct PackageInputs<'a> {
    pub toolchain: ToolchainIdentity<'a>,
    /// Go's settings for the build (its environment and flags), as the builder computes them.
    pub settings: BTreeMap<String, String>,
    /// The digest of the project's source tree.
    pub sources: String,
    /// The store names of the locked modules, in lock order.
    pub modules: Vec<String>,
    /// The go.sum kiln writes for a project locked from gomod2nix.toml.
    pub go_sum: Option<&'a str>,
    /// Local-folder replacements: the folder go.mod names and the digest of its tree.
    pub replaces: Vec<(String, String)>,
    /// For a cgo package, the `cgo` object: the Zig release and the C settings.
    pub cgo: Option<serde_json::Value>,
}

/// The recipe of a built package (`go-package/1`).
pub fn package(package: &Package, inputs: &PackageInputs<'_>) -> Recipe {
    let mut document = json!({
        "kiln": "go-package/1",
        "toolchain": {"identity": inputs.toolchain.identity, "version": inputs.toolchain.version},
        "platform": package.platform.to_string(),
        "settings": inputs.settings,
        "package": {
            "name": package.name,
            "version": package.version,
            "mains": package
                .mains
                .iter()
                .map(|main| json!({"folder": main.folder, "program": main.program}))
                .collect::<Vec<_>>(),
            "ldflags": package.ldflags,
            "tags": package.tags,
            "env": package.env,
        },
        "sources": inputs.sources,
    });
    if let Some(fields) = document.as_object_mut() {
        if !inputs.modules.is_empty() {
            fields.insert("modules".to_owned(), json!(inputs.modules));
        }
        if let Some(go_sum) = inputs.go_sum {
            fields.insert("go_sum".to_owned(), json!(go_sum));
        }
        if let Some(cgo) = &inputs.cgo {
            fields.insert("cgo".to_owned(), cgo.clone());
        }
        if !inputs.replaces.is_empty() {
            fields.insert(
                "replaces".to_owned(),
                json!(
                    inputs
                        .replaces
                        .iter()
                        .map(|(folder, sources)| json!({"folder": folder, "sources": sources}))
                        .collect::<Vec<_>>()
                ),
            );
        }
    }
    Recipe::new(OutputKind::Package, document, &package.store_label())
}

/// The recipe of a built image (`image/5`): `image` is the `image` object the builder fills
/// from kiln.toml and the plan; `packages` the store names of its packages, one per platform.
pub fn image(
    packages: Vec<String>,
    image: serde_json::Value,
    source_date_epoch: i64,
    created: &str,
    label: &str,
) -> Recipe {
    let document = json!({
        "kiln": "image/5",
        "packages": packages,
        "image": image,
        "source_date_epoch": source_date_epoch,
        "created": created,
    });
    Recipe::new(OutputKind::Image, document, label)
}

/// The recipe of a registry base image pinned at `digest` (`base-image/1`): the same image
/// pulled from two repositories is one output.
pub fn base_image(digest: &Digest) -> Recipe {
    let document = json!({
        "kiln": "base-image/1",
        "digest": digest.to_string(),
    });
    Recipe::new(
        OutputKind::BaseImage,
        document,
        &format!("base-{}", &digest.hex()[..12]),
    )
}

/// The recipe of the listing of the files a base image pinned at `digest` leaves
/// (`base-files/1`): made from the `base-image/1` output of the same digest, so the digest
/// is all its identity too.
pub fn base_files(digest: &Digest) -> Recipe {
    let document = json!({
        "kiln": "base-files/1",
        "digest": digest.to_string(),
    });
    Recipe::new(
        OutputKind::BaseFiles,
        document,
        &format!("base-{}-files.json", &digest.hex()[..12]),
    )
}

/// The recipe of a locked Go module (`go-module/1`): its identity is its hashes, so equal
/// bytes share one output whichever project pinned them.
pub fn go_module(path: &str, version: &str, h1: Option<&str>, go_mod: &str) -> Recipe {
    let document = json!({
        "kiln": "go-module/1",
        "path": path,
        "version": version,
        "h1": h1,
        "go-mod": go_mod,
    });
    let last = path.rsplit('/').next().unwrap_or(path);
    Recipe::new(
        OutputKind::GoModule,
        document,
        &format!("go-{last}-{version}"),
    )
}

/// The recipe of a fetched Go release for `host` (`go-toolchain/1`), by its zip's `h1:`.
pub fn go_toolchain(release: &str, host: &str, h1: &str) -> Recipe {
    let document = json!({
        "kiln": "go-toolchain/1",
        "release": release,
        "host": host,
        "h1": h1,
    });
    Recipe::new(
        OutputKind::GoToolchain,
        document,
        &format!("{release}.{host}"),
    )
}

/// The recipe of the Zig release for `host` unpacked from its ziglang wheel
/// (`zig-toolchain/1`), by the wheel's sha256.
pub fn zig_toolchain(version: &str, host: &str, sha256: &str) -> Recipe {
    let document = json!({
        "kiln": "zig-toolchain/1",
        "version": version,
        "host": host,
        "sha256": sha256,
    });
    Recipe::new(
        OutputKind::CToolchain,
        document,
        &format!("zig-{version}.{host}"),
    )
}

/// The recipe of the compiler scripts for Zig's `target` (`zig-compilers/1`) beside the Zig
/// output named `zig` (its store basename, which the scripts find it by).
pub fn zig_compilers(zig: &str, target: &str) -> Recipe {
    let document = json!({
        "kiln": "zig-compilers/1",
        "zig": zig,
        "target": target,
    });
    Recipe::new(
        OutputKind::CCompilers,
        document,
        &format!("zig-cc-{target}"),
    )
}

/// The format of the static base's recipe.
pub const STATIC_BASE_FORMAT: &str = "static-base/1";

/// The recipe of the static base's root filesystem (`static-base/1`) from its two wheels'
/// sha256 digests. Sorted by name, so the order of the lock's entries does not matter.
pub fn static_base(ca_certificates_sha256: &str, tzdata_sha256: &str) -> Recipe {
    let document = json!({
        "kiln": STATIC_BASE_FORMAT,
        "sources": [
            { "name": "ca-certificates", "sha256": ca_certificates_sha256 },
            { "name": "tzdata", "sha256": tzdata_sha256 },
        ],
    });
    Recipe::new(OutputKind::StaticBase, document, "static-base")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::spec::Platform;
    use crate::project::MainPackage;
    use crate::project::config::Position;

    fn example_package() -> Package {
        let platform: Platform = "linux/amd64".parse().unwrap();
        Package {
            key: "default".to_owned(),
            name: "hello".to_owned(),
            version: Some("0.1.0".to_owned()),
            mains: vec![MainPackage {
                folder: ".".to_owned(),
                program: "hello".to_owned(),
            }],
            program: Some("hello".to_owned()),
            ldflags: vec!["-s".to_owned(), "-w".to_owned()],
            tags: Vec::new(),
            env: [("GOAMD64".to_owned(), "v2".to_owned())].into(),
            platform: platform.clone(),
            platforms: vec![platform],
            cgo: None,
            defined_at: Position {
                file: "kiln.toml".into(),
                line: 1,
                column: 1,
            },
        }
    }

    /// Golden: the store name of every kind of recipe. A change here renames outputs on every
    /// machine (and so every `result` and cache entry): bump the recipe's version instead.
    /// The expected names were computed apart from kiln, from the documents as the builder,
    /// the locker and the static base wrote them before this module existed: sha256 of the
    /// canonical JSON (`json.dumps(document, sort_keys=True, separators=(",", ":"))`), its
    /// first 20 bytes in Nix's base32, then `-` and the label.
    #[test]
    fn every_recipe_gives_its_store_name() {
        let digest: Digest =
            "sha256:6bdbed02f7523459893ac75f7dee8834fa871e704194744f740ff503c0a83bdd"
                .parse()
                .unwrap();
        let example = example_package();
        let inputs = PackageInputs {
            toolchain: ToolchainIdentity {
                identity: "sha256-0000",
                version: "go1.27.3",
            },
            settings: [("CGO_ENABLED".to_owned(), "0".to_owned())].into(),
            sources: "sha256:1111".to_owned(),
            modules: Vec::new(),
            go_sum: None,
            replaces: Vec::new(),
            cgo: None,
        };
        let with_modules = PackageInputs {
            modules: vec!["aaaa-go-x-v1.0.0".to_owned()],
            go_sum: Some("example.com/x v1.0.0 h1:abc=\n"),
            replaces: vec![("../lib".to_owned(), "sha256:2222".to_owned())],
            ..inputs.clone()
        };
        let cases = [
            (
                package(&example, &inputs),
                "package yglyd1ffx90xw3njy3m7z64zl78pglz1-hello-0.1.0",
            ),
            (
                package(&example, &with_modules),
                "package spwg7mh5hqkmd1yr3r11nxw450iqpgf9-hello-0.1.0",
            ),
            (
                image(
                    vec!["aaaa-hello-0.1.0".to_owned()],
                    json!({"reference": "hello:0.1.0"}),
                    0,
                    "1970-01-01T00:00:00Z",
                    "hello-0.1.0.tar",
                ),
                "image zappfp8y0ysg81g5w6imyvvyvcnsszjc-hello-0.1.0.tar",
            ),
            (
                base_image(&digest),
                "base-image bx2dvd7fqk3s67dpw1k329m0asid4vcl-base-6bdbed02f752",
            ),
            (
                base_files(&digest),
                "base-files afb85fi4kycynz8p1dqdjyh12z95zczl-base-6bdbed02f752-files.json",
            ),
            (
                go_module(
                    "github.com/Example/Lib",
                    "v1.2.3+incompatible",
                    Some("h1:abc="),
                    "h1:def=",
                ),
                "go-module zvqmgayddis2jyf7d903w7ji099ixzh2-go-Lib-v1.2.3+incompatible",
            ),
            (
                go_module("example.com/nozip", "v0.1.0", None, "h1:def="),
                "go-module 8d4yfdhy78hrw2wpfnsvkfx3wipqmk2b-go-nozip-v0.1.0",
            ),
            (
                go_toolchain("go1.27.3", "linux-amd64", "h1:ghi="),
                "go-toolchain 3hl4niy0aw5ir24midg1mbimhm1gjb76-go1.27.3.linux-amd64",
            ),
            (
                static_base("aaaa", "bbbb"),
                "static-base 2cvgizljm4vhf5kq1dk5gifs4ylyibxc-static-base",
            ),
        ];
        let actual: Vec<String> = cases
            .iter()
            .map(|(recipe, _)| format!("{} {}", recipe.kind(), recipe.name().basename()))
            .collect();
        let expected: Vec<&str> = cases.iter().map(|(_, expected)| *expected).collect();
        assert_eq!(actual, expected);
    }

    /// Issue 21: a cgo package's recipe carries the Zig pin, so a new Zig (or other C
    /// settings) names another output, while a package without cgo keeps its name (above).
    #[test]
    fn a_cgo_package_names_its_zig() {
        let example = example_package();
        let inputs = PackageInputs {
            toolchain: ToolchainIdentity {
                identity: "sha256-0000",
                version: "go1.27.3",
            },
            settings: [("CGO_ENABLED".to_owned(), "1".to_owned())].into(),
            sources: "sha256:1111".to_owned(),
            modules: Vec::new(),
            go_sum: None,
            replaces: Vec::new(),
            cgo: Some(json!({"zig": {"version": "0.17.1", "host": "linux-amd64", "sha256": "aa"}})),
        };
        let other_zig = PackageInputs {
            cgo: Some(json!({"zig": {"version": "0.17.1", "host": "linux-amd64", "sha256": "bb"}})),
            ..inputs.clone()
        };
        let first = package(&example, &inputs);
        assert_eq!(first.document()["cgo"]["zig"]["sha256"], "aa");
        assert_ne!(first.name(), package(&example, &other_zig).name());
        assert_ne!(
            first.name(),
            package(
                &example,
                &PackageInputs {
                    cgo: None,
                    ..inputs.clone()
                }
            )
            .name()
        );
        let zig = zig_toolchain("0.17.1", "linux-amd64", "aa");
        assert_eq!(zig.kind(), OutputKind::CToolchain);
        assert!(zig.name().basename().ends_with("-zig-0.17.1.linux-amd64"));
    }
}
