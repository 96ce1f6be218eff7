//! The SPDX 2.3 JSON document of an image's SBOM, made from kiln.lock and from the build
//! information of each program ([`crate::gomod::buildinfo`]).
//!
//! The document ([`spdx_document`], [`spdx_bytes`]) is pinned so that the same image, lock and
//! programs give the same bytes, written as canonical JSON ([`crate::oci::json`]):
//! - `creationInfo.created` is the image's `created`, normalised to the `YYYY-MM-DDThh:mm:ssZ`
//!   form SPDX requires: never the wall clock.
//! - `creators` is `Tool: kiln-VERSION`. The SBOM is a referrer, not part of the image, so
//!   this never changes an image digest; it does make the SBOM's own digest change when kiln
//!   is upgraded. That is the honest outcome: another kiln may describe the same build
//!   differently, and a verifier rebuilding the SBOM needs to know which kiln wrote it.
//! - `documentNamespace` is `https://kiln.invalid/spdx/NAME-VERSION-HASH`, HASH being the
//!   SHA-256 of the image manifest digest, a newline, and the canonical document without its
//!   namespace. It is unique per image and per content (SPDX asks a new namespace for every
//!   changed document) without a random UUID; `.invalid` (RFC 6761) is a domain nobody owns,
//!   so the URI claims no one's web space and is never fetched.
//! - Packages: the image (`CONTAINER`, purl `pkg:oci/NAME@sha256:…?arch=…&repository_url=…
//!   &tag=…`), each program (`APPLICATION`, named after its main package, purl of its main
//!   module with the package as subpath), the Go standard library of each Go release that
//!   built a program (`stdlib`, version `goX.Y.Z`, purl `pkg:golang/stdlib@X.Y.Z` as syft and
//!   grype spell it), and every module of kiln.lock and of the programs' dependencies.
//! - Purls are written as [`super::purl`] pins them: module paths keep their case.
//! - `downloadLocation` is `NOASSERTION` for modules: kiln.lock pins a module by hash, not by
//!   the proxy that served it (GOPROXY may be private, GOPRIVATE modules come from version
//!   control), so naming proxy.golang.org would be a claim kiln cannot make. The purl names
//!   the module for any proxy.
//! - Go's `h1:` hashes are not SPDX checksums: an SPDX checksum is a digest of the package
//!   file, and `h1:` is Go's dirhash (SHA-256 over the sorted list of the zip's files and
//!   their SHA-256s), so a verifier hashing the zip would find a mismatch. They go in
//!   `externalRefs` of category `OTHER`, types `go-module-h1` (the zip) and `go-mod-h1` (its
//!   go.mod), locator the `h1:…` text exactly as go.sum holds it.
//! - Licences and copyright are `NOASSERTION` (kiln does not scan sources);
//!   `filesAnalyzed` is false.
//! - The base: for `base = "static"`, each `[[static]]` source of kiln.lock (the CA bundle, the
//!   time zone database) is a package the image `CONTAINS`, with the wheel's URL as
//!   `downloadLocation`, its SHA-256 as an SPDX checksum (it is the digest of that very file)
//!   and its PyPI purl (`pkg:pypi/certifi@…`). A registry base is a `CONTAINER` package the
//!   image is a `DESCENDANT_OF`, with the pinned manifest digest in its purl; kiln does not
//!   look inside it (its own SBOM, if it has one, is the registry's referrer of that digest).
//! - A vendored build (`go version -m` then lists its modules without `h1:`) gets the modules
//!   vendor/ holds with go.sum's hashes ([`LockedModule::vendored`]), each commented
//!   `Vendored: …`; a program whose main module Go reports as `(devel)` (always, with
//!   `-buildvcs=false`) gets the package's kiln.toml `version` as `versionInfo`, never in its
//!   purl (it is not a module version).
//! - A cgo build (issue 21): the Zig release that compiled and linked its C code is a package
//!   `ziglang` (`APPLICATION`, the version of kiln.lock's `[[zig]]` pin, the wheel's URL as
//!   `downloadLocation`, its SHA-256 as an SPDX checksum, purl `pkg:pypi/ziglang@VERSION`)
//!   that is a `BUILD_TOOL_OF` each program; the C library is a package too: `musl`, without
//!   a version (it is the musl this Zig ships, from the same wheel, which the comment says),
//!   which each program has a `STATIC_LINK` to, or `glibc` at the release whose symbols the
//!   programs link against, a `DYNAMIC_LINK` (the library itself is the base's at run time).
//!   The Go toolchain is not listed as a build tool: the Go release is the `stdlib` package.
//! - Relationships: `DOCUMENT DESCRIBES image`, `image CONTAINS program`, `program
//!   DEPENDS_ON stdlib` and `DEPENDS_ON` each module compiled into it; a locked module that
//!   no program contains (Go read only its go.mod, or its code serves tests) is a
//!   `BUILD_DEPENDENCY_OF` each program (of the image when there is none).
//! - SPDX identifiers are `SPDXRef-KIND-SLUG`, the slug being the name with every character
//!   outside `[A-Za-z0-9.-]` turned into `-`; when two names give the same slug, those get
//!   `-2`, `-3`, … in the sorted order of their names, so identifiers are unique and depend
//!   only on the document's content.
//! - Order: packages image, base (static sources by name), programs (by file), standard
//!   libraries (by version), the C toolchain and C library, modules (by path, then version);
//!   relationships in the same order.
//!
//! This module returns the SBOM's [`SbomError`], shared with [`super::artifact`].

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};
use sha2::Digest as _;

use super::SbomError;
use super::purl::{golang_purl, oci_purl, purl_encode, uri_path_encode};
use crate::gomod::buildinfo::BuildInfo;
use crate::lock::lockfile::LockedModule;
use crate::oci::digest::Digest;
use crate::oci::json::to_canonical_vec;
use crate::oci::reference::Reference;
use crate::oci::spec::Platform;

/// The creator kiln names in every document.
pub const TOOL: &str = concat!("kiln-", env!("CARGO_PKG_VERSION"));
/// The host of every `documentNamespace`: reserved, owned by nobody (RFC 6761).
const NAMESPACE_PREFIX: &str = "https://kiln.invalid/spdx/";
const NOASSERTION: &str = "NOASSERTION";

/// What an image's SBOM is made from.
#[derive(Clone, Copy, Debug)]
pub struct SbomInput<'a> {
    /// The image's name (its tag, if any, is not used: see `version`).
    pub image: &'a Reference,
    /// The image's tag.
    pub version: &'a str,
    /// The image config's `created` (RFC 3339).
    pub created: &'a str,
    /// The digest of the image manifest the document describes (one platform's manifest for
    /// a multi-platform image).
    pub manifest_digest: Digest,
    pub platform: &'a Platform,
    /// Each program in the image: its file name and build information.
    pub programs: &'a [(String, BuildInfo)],
    /// kiln.lock's modules; for a vendored build, the vendored modules with go.sum's hashes
    /// (`vendored` set).
    pub locked_modules: &'a [LockedModule],
    /// The package's `version` in kiln.toml: the programs' version when Go reports
    /// `(devel)` for their main module (it always does with `-buildvcs=false`).
    pub application_version: Option<&'a str>,
    /// What the image starts from; `None` for `scratch`.
    pub base: Option<SbomBase<'a>>,
    /// The C toolchain and C library of a cgo package's programs; `None` without cgo.
    pub cgo: Option<SbomCgo<'a>>,
}

/// What a cgo build adds to the SBOM: the Zig release that compiled and linked the C code,
/// and the C library linked in.
#[derive(Clone, Copy, Debug)]
pub struct SbomCgo<'a> {
    /// kiln.lock's `[[zig]]` pin the programs were built with (this host's).
    pub zig: &'a crate::toolchain::zig::ZigPin,
    /// Zig's target triple (`x86_64-linux-musl`, `x86_64-linux-gnu.2.31`).
    pub target: &'a str,
    /// The glibc release whose symbols the programs link against, dynamically; `None`: musl
    /// as this Zig ships it, linked statically.
    pub glibc: Option<crate::project::GlibcVersion>,
}

/// The base an image starts from, as its SBOM names it.
#[derive(Clone, Copy, Debug)]
pub enum SbomBase<'a> {
    /// kiln's static base: the pinned sources of kiln.lock's `[[static]]` entries.
    Static(&'a [crate::static_base::StaticWheel]),
    /// An image from a registry, at the manifest digest kiln.lock pins for this platform.
    Image {
        reference: &'a Reference,
        digest: Digest,
    },
}

/// The SPDX 2.3 document for `input`, as a JSON value (see the module documentation for
/// every choice it pins).
pub fn spdx_document(input: &SbomInput<'_>) -> Result<Value, SbomError> {
    document_by(input, TOOL)
}

/// [`spdx_document`] as canonical JSON bytes: what the OCI artifact stores.
pub fn spdx_bytes(input: &SbomInput<'_>) -> Result<Vec<u8>, SbomError> {
    let document = spdx_document(input)?;
    to_canonical_vec(&document).map_err(SbomError::Json)
}

/// One module in the document: from the lock, from the programs, or both.
#[derive(Debug, Default)]
struct ModuleEntry {
    /// `h1:` of the zip (lock or build information; they must agree).
    h1: Option<String>,
    /// `h1:` of its go.mod (lock only).
    go_mod_h1: Option<String>,
    locked: bool,
    /// Its code came from the project's vendor/ folder.
    vendored: bool,
    /// `path version` of each module this one replaces in a program.
    replaces: BTreeSet<String>,
    /// The programs (by file) it is compiled into.
    programs: BTreeSet<String>,
}

/// A module's key: path, and a version or the local folder that replaced it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum ModuleVersion {
    Version(String),
    /// Replaced by a local folder: no version, no hash, only the folder Go recorded.
    Folder(String),
}

type ModuleKey = (String, ModuleVersion);

fn document_by(input: &SbomInput<'_>, tool: &str) -> Result<Value, SbomError> {
    let created = normalise_created(input.created)?;

    // Every module: the lock's, then each program's (the code it holds: replacements win).
    let mut modules: BTreeMap<ModuleKey, ModuleEntry> = BTreeMap::new();
    for locked in input.locked_modules {
        let entry = modules
            .entry((
                locked.path.clone(),
                ModuleVersion::Version(locked.version.clone()),
            ))
            .or_default();
        entry.locked = true;
        entry.vendored = locked.vendored;
        entry.h1 = locked.h1.clone();
        entry.go_mod_h1 = Some(locked.go_mod.clone());
    }
    let mut programs: Vec<&(String, BuildInfo)> = input.programs.iter().collect();
    programs.sort_by(|left, right| left.0.cmp(&right.0));
    for (file, info) in &programs {
        for dep in &info.deps {
            let used = dep.effective();
            let key = if dep.replacement.is_some() && used.sum.is_none() && is_local(&used.path) {
                (dep.path.clone(), ModuleVersion::Folder(used.path.clone()))
            } else {
                (
                    used.path.clone(),
                    ModuleVersion::Version(used.version.clone()),
                )
            };
            let entry = modules.entry(key).or_default();
            if let Some(sum) = &used.sum {
                match &entry.h1 {
                    Some(known) if known != sum => {
                        return Err(SbomError::SumMismatch {
                            module: format!("{}@{}", used.path, used.version),
                            program: file.clone(),
                            program_sum: sum.clone(),
                            locked_sum: known.clone(),
                        });
                    }
                    _ => entry.h1 = Some(sum.clone()),
                }
            }
            if dep.replacement.is_some() {
                entry
                    .replaces
                    .insert(format!("{} {}", dep.path, dep.version));
            }
            entry.programs.insert(file.clone());
        }
    }
    let go_versions: BTreeSet<&str> = programs
        .iter()
        .map(|(_, info)| info.go_version.as_str())
        .collect();

    // Identifiers, unique and derived from the names alone.
    let application_ids = allocate_ids(
        "Application",
        programs.iter().map(|(file, _)| file.clone()).collect(),
    );
    let stdlib_ids = allocate_ids(
        "Go-stdlib",
        go_versions
            .iter()
            .map(|version| (*version).to_owned())
            .collect(),
    );
    let module_ids = allocate_ids(
        "Module",
        modules
            .keys()
            .map(|(path, version)| match version {
                ModuleVersion::Version(version) => format!("{path}-{version}"),
                ModuleVersion::Folder(_) => format!("{path}-local"),
            })
            .collect(),
    );
    const IMAGE_ID: &str = "SPDXRef-Image";

    let mut packages = vec![image_package(input, IMAGE_ID)];
    // The base: (identifier, relationship from the image).
    let mut base_relationships: Vec<(String, &str)> = Vec::new();
    match input.base {
        None => {}
        Some(SbomBase::Static(sources)) => {
            let mut sources: Vec<&crate::static_base::StaticWheel> = sources.iter().collect();
            sources.sort_by(|left, right| left.name.cmp(&right.name));
            let ids = allocate_ids(
                "Static",
                sources.iter().map(|source| source.name.clone()).collect(),
            );
            for (source, id) in sources.iter().zip(ids) {
                packages.push(static_package(&id, source));
                base_relationships.push((id, "CONTAINS"));
            }
        }
        Some(SbomBase::Image { reference, digest }) => {
            let id = allocate_ids("Base", vec![reference.name()]).remove(0);
            packages.push(base_package(&id, reference, &digest, input.platform));
            base_relationships.push((id, "DESCENDANT_OF"));
        }
    }
    for (index, (file, info)) in programs.iter().enumerate() {
        packages.push(application_package(
            &application_ids[index],
            file,
            info,
            input.application_version,
        ));
    }
    for (index, go_version) in go_versions.iter().enumerate() {
        packages.push(stdlib_package(&stdlib_ids[index], go_version));
    }
    // The C toolchain (a build tool of each program) and the C library linked in.
    let cgo_ids = input.cgo.map(|cgo| {
        let library = if cgo.glibc.is_some() { "glibc" } else { "musl" };
        let zig = allocate_ids("BuildTool", vec!["ziglang".to_owned()]).remove(0);
        let libc = allocate_ids("CLibrary", vec![library.to_owned()]).remove(0);
        packages.push(zig_package(&zig, &cgo));
        packages.push(libc_package(&libc, &cgo));
        // STATIC_LINK and DYNAMIC_LINK are SPDX 2.3's words for exactly these two cases.
        let link = if cgo.glibc.is_some() {
            "DYNAMIC_LINK"
        } else {
            "STATIC_LINK"
        };
        (zig, libc, link)
    });
    for (index, ((path, version), entry)) in modules.iter().enumerate() {
        packages.push(module_package(&module_ids[index], path, version, entry));
    }

    let relationship = |from: &str, kind: &str, to: &str| json!({"spdxElementId": from, "relationshipType": kind, "relatedSpdxElement": to});
    let mut relationships = vec![relationship("SPDXRef-DOCUMENT", "DESCRIBES", IMAGE_ID)];
    for (id, kind) in &base_relationships {
        relationships.push(relationship(IMAGE_ID, kind, id));
    }
    for application_id in &application_ids {
        relationships.push(relationship(IMAGE_ID, "CONTAINS", application_id));
    }
    for (index, (file, info)) in programs.iter().enumerate() {
        let application_id = &application_ids[index];
        if let Some(position) = go_versions
            .iter()
            .position(|version| *version == info.go_version)
        {
            relationships.push(relationship(
                application_id,
                "DEPENDS_ON",
                &stdlib_ids[position],
            ));
        }
        if let Some((zig, libc, link)) = &cgo_ids {
            relationships.push(relationship(zig, "BUILD_TOOL_OF", application_id));
            relationships.push(relationship(application_id, link, libc));
        }
        for (module_index, entry) in modules.values().enumerate() {
            if entry.programs.contains(file) {
                relationships.push(relationship(
                    application_id,
                    "DEPENDS_ON",
                    &module_ids[module_index],
                ));
            }
        }
    }
    // Locked modules no program holds: read by the build (go.mod) but not compiled in.
    let build_dependents: Vec<&str> = if application_ids.is_empty() {
        vec![IMAGE_ID]
    } else {
        application_ids.iter().map(String::as_str).collect()
    };
    for (module_index, entry) in modules.values().enumerate() {
        if entry.programs.is_empty() {
            for dependent in &build_dependents {
                relationships.push(relationship(
                    &module_ids[module_index],
                    "BUILD_DEPENDENCY_OF",
                    dependent,
                ));
            }
        }
    }

    let platform = input.platform.to_string();
    let mut document = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{}:{} ({platform})", input.image.name(), input.version),
        "creationInfo": {
            "created": created,
            "creators": [format!("Tool: {tool}")],
        },
        "packages": packages,
        "relationships": relationships,
    });
    // The namespace hashes everything else, so it changes exactly when the content does.
    let without_namespace = to_canonical_vec(&document).map_err(SbomError::Json)?;
    let mut hasher = sha2::Sha256::new();
    hasher.update(input.manifest_digest.to_string().as_bytes());
    hasher.update(b"\n");
    hasher.update(&without_namespace);
    let hash = hex::encode(hasher.finalize());
    let namespace = format!(
        "{NAMESPACE_PREFIX}{}-{}-{hash}",
        uri_path_encode(&input.image.name()),
        uri_path_encode(input.version)
    );
    if let Value::Object(fields) = &mut document {
        fields.insert("documentNamespace".to_owned(), Value::String(namespace));
    }
    Ok(document)
}

/// `created` in the one form SPDX 2.3 allows: `YYYY-MM-DDThh:mm:ssZ` (UTC, whole seconds).
fn normalise_created(created: &str) -> Result<String, SbomError> {
    let timestamp: jiff::Timestamp = created
        .parse()
        .map_err(|_| SbomError::Created(created.to_owned()))?;
    Ok(timestamp.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// Whether a replacement path is a local folder (Go's rule: it starts with `./`, `../` or
/// `/`, or is `.` or `..`).
fn is_local(path: &str) -> bool {
    path == "."
        || path == ".."
        || path.starts_with("./")
        || path.starts_with("../")
        || path.starts_with('/')
}

/// `SPDXRef-KIND-SLUG` for each name, in the order given; see the module documentation.
fn allocate_ids(kind: &str, names: Vec<String>) -> Vec<String> {
    let slug = |name: &str| -> String {
        name.chars()
            .map(|character| {
                if character.is_ascii_alphanumeric() || character == '.' || character == '-' {
                    character
                } else {
                    '-'
                }
            })
            .collect()
    };
    let natural: Vec<String> = names
        .iter()
        .map(|name| format!("SPDXRef-{kind}-{}", slug(name)))
        .collect();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for id in &natural {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    let mut taken: BTreeSet<String> = natural
        .iter()
        .filter(|id| counts[id.as_str()] == 1)
        .cloned()
        .collect();
    // Colliding names in the sorted order of the names, so the result does not depend on the
    // order they came in.
    let mut colliding: Vec<usize> = (0..names.len())
        .filter(|index| counts[natural[*index].as_str()] > 1)
        .collect();
    colliding.sort_by(|left, right| names[*left].cmp(&names[*right]));
    let mut ids = natural.clone();
    for index in colliding {
        let mut number = 1;
        let id = loop {
            let candidate = if number == 1 {
                natural[index].clone()
            } else {
                format!("{}-{number}", natural[index])
            };
            if !taken.contains(&candidate) {
                break candidate;
            }
            number += 1;
        };
        taken.insert(id.clone());
        ids[index] = id;
    }
    debug_assert_eq!(taken.len(), names.len(), "SPDX identifiers are unique");
    ids
}

/// A source of the static base: the wheel kiln.lock pins, and what the image takes from it.
fn static_package(id: &str, source: &crate::static_base::StaticWheel) -> Value {
    let mut fields = package(id, &source.name, "OTHER");
    fields.insert("versionInfo".to_owned(), json!(source.version));
    fields.insert("downloadLocation".to_owned(), json!(source.url));
    fields.insert(
        "checksums".to_owned(),
        json!([{"algorithm": "SHA256", "checksumValue": source.sha256}]),
    );
    let mut comment = "Part of kiln's static base".to_owned();
    if let Some(project) = crate::static_base::pypi_project(&source.name) {
        fields.insert(
            "externalRefs".to_owned(),
            json!([purl_reference(format!(
                "pkg:pypi/{}@{}",
                purl_encode(project, false),
                purl_encode(&source.version, false)
            ))]),
        );
        comment.push_str(&format!(", from the {project} wheel"));
    }
    if let Some(provides) = crate::static_base::provides(&source.name) {
        comment.push_str(&format!(": {provides}"));
    }
    comment.push('.');
    fields.insert("comment".to_owned(), json!(comment));
    Value::Object(fields)
}

/// A registry base image, at the digest kiln.lock pins.
fn base_package(id: &str, reference: &Reference, digest: &Digest, platform: &Platform) -> Value {
    let mut fields = package(id, &reference.name(), "CONTAINER");
    let tag = reference.tag.as_deref().unwrap_or("");
    if !tag.is_empty() {
        fields.insert("versionInfo".to_owned(), json!(tag));
    }
    fields.insert(
        "externalRefs".to_owned(),
        json!([purl_reference(oci_purl(reference, digest, platform, tag))]),
    );
    fields.insert(
        "comment".to_owned(),
        json!(format!(
            "The base image: the {platform} manifest {digest}, as kiln.lock pins it."
        )),
    );
    Value::Object(fields)
}

fn purl_reference(purl: String) -> Value {
    json!({
        "referenceCategory": "PACKAGE-MANAGER",
        "referenceType": "purl",
        "referenceLocator": purl,
    })
}

/// The fields every package has: no licences, no copyright, no files (kiln scans none).
fn package(id: &str, name: &str, purpose: &str) -> Map<String, Value> {
    let mut fields = Map::new();
    for (key, value) in [
        ("SPDXID", id),
        ("name", name),
        ("primaryPackagePurpose", purpose),
        ("downloadLocation", NOASSERTION),
        ("licenseConcluded", NOASSERTION),
        ("licenseDeclared", NOASSERTION),
        ("copyrightText", NOASSERTION),
    ] {
        fields.insert(key.to_owned(), Value::String(value.to_owned()));
    }
    fields.insert("filesAnalyzed".to_owned(), Value::Bool(false));
    fields
}

fn image_package(input: &SbomInput<'_>, id: &str) -> Value {
    let mut fields = package(id, &input.image.name(), "CONTAINER");
    if !input.version.is_empty() {
        fields.insert("versionInfo".to_owned(), json!(input.version));
    }
    fields.insert(
        "externalRefs".to_owned(),
        json!([purl_reference(oci_purl(
            input.image,
            &input.manifest_digest,
            input.platform,
            input.version
        ))]),
    );
    fields.insert(
        "comment".to_owned(),
        json!(format!(
            "The {} image, manifest {}.",
            input.platform, input.manifest_digest
        )),
    );
    Value::Object(fields)
}

fn application_package(
    id: &str,
    file: &str,
    info: &BuildInfo,
    application_version: Option<&str>,
) -> Value {
    let name = if info.path.is_empty() {
        file
    } else {
        &info.path
    };
    let mut fields = package(id, name, "APPLICATION");
    fields.insert("packageFileName".to_owned(), json!(file));
    if let Some(main) = &info.main {
        let version = real_version(&main.version);
        // kiln.toml's version is the program's, not a module version: never in the purl.
        if let Some(version) = version.or(application_version) {
            fields.insert("versionInfo".to_owned(), json!(version));
        }
        // The package inside its module, as a purl subpath.
        let subpath = info
            .path
            .strip_prefix(&main.path)
            .and_then(|rest| rest.strip_prefix('/'));
        fields.insert(
            "externalRefs".to_owned(),
            json!([purl_reference(golang_purl(&main.path, version, subpath))]),
        );
    }
    let mut comment = format!("A Go program built with {}", info.go_version);
    let devel = info
        .main
        .as_ref()
        .is_some_and(|main| real_version(&main.version).is_none());
    if devel && let Some(version) = application_version {
        comment.push_str(&format!(
            "; version {version} is the package's in kiln.toml (Go reports (devel))"
        ));
    }
    if !info.settings.is_empty() {
        comment.push_str("; build settings:");
        for (key, value) in &info.settings {
            comment.push_str(&format!("\n{key}={value}"));
        }
    }
    fields.insert("comment".to_owned(), json!(comment));
    Value::Object(fields)
}

/// A module version worth naming: not Go's `(devel)` placeholder.
fn real_version(version: &str) -> Option<&str> {
    (!version.is_empty() && version != "(devel)").then_some(version)
}

fn stdlib_package(id: &str, go_version: &str) -> Value {
    let mut fields = package(id, "stdlib", "LIBRARY");
    fields.insert("versionInfo".to_owned(), json!(go_version));
    // `go1.22.1 X:boringcrypto` → `1.22.1`, the form vulnerability databases match.
    let release = go_version.split_whitespace().next().unwrap_or(go_version);
    let release = release.strip_prefix("go").unwrap_or(release);
    fields.insert(
        "externalRefs".to_owned(),
        json!([purl_reference(golang_purl("stdlib", Some(release), None))]),
    );
    fields.insert(
        "comment".to_owned(),
        json!(format!(
            "The Go standard library and runtime of {go_version}, compiled into the programs."
        )),
    );
    Value::Object(fields)
}

/// The Zig release of a cgo build: the ziglang wheel kiln.lock pins, by its URL and SHA-256
/// (the digest of that very file, so an SPDX checksum), with its PyPI purl.
fn zig_package(id: &str, cgo: &SbomCgo<'_>) -> Value {
    let mut fields = package(id, "ziglang", "APPLICATION");
    fields.insert("versionInfo".to_owned(), json!(cgo.zig.version));
    fields.insert("downloadLocation".to_owned(), json!(cgo.zig.url));
    fields.insert(
        "checksums".to_owned(),
        json!([{"algorithm": "SHA256", "checksumValue": cgo.zig.sha256}]),
    );
    fields.insert(
        "externalRefs".to_owned(),
        json!([purl_reference(format!(
            "pkg:pypi/ziglang@{}",
            purl_encode(&cgo.zig.version, false)
        ))]),
    );
    fields.insert(
        "comment".to_owned(),
        json!(format!(
            "The C toolchain of the cgo build: Zig {} for the host {}, from the ziglang wheel kiln.lock pins, compiling and linking the C code for {}.",
            cgo.zig.version, cgo.zig.host, cgo.target
        )),
    );
    Value::Object(fields)
}

/// The C library of a cgo build: musl as the Zig release ships it (its sources are in the
/// wheel, so it has the wheel's version, not a musl release number kiln could vouch for), or
/// glibc at the release whose symbols the program links against.
fn libc_package(id: &str, cgo: &SbomCgo<'_>) -> Value {
    match cgo.glibc {
        None => {
            let mut fields = package(id, "musl", "LIBRARY");
            fields.insert("downloadLocation".to_owned(), json!(cgo.zig.url));
            fields.insert(
                "comment".to_owned(),
                json!(format!(
                    "musl as Zig {} ships it (its sources are in the ziglang wheel {}), compiled for {} and linked statically into the programs.",
                    cgo.zig.version, cgo.zig.version, cgo.target
                )),
            );
            Value::Object(fields)
        }
        Some(version) => {
            let mut fields = package(id, "glibc", "LIBRARY");
            fields.insert("versionInfo".to_owned(), json!(version.to_string()));
            fields.insert(
                "comment".to_owned(),
                json!(format!(
                    "The programs link dynamically against glibc, against the symbols of glibc {version} (the release kiln.toml or kiln pins; Zig {} provides its stubs, for {}): the base image provides the library at run time, that release or a newer one.",
                    cgo.zig.version, cgo.target
                )),
            );
            Value::Object(fields)
        }
    }
}

fn module_package(id: &str, path: &str, version: &ModuleVersion, entry: &ModuleEntry) -> Value {
    let mut fields = package(id, path, "LIBRARY");
    let mut references = Vec::new();
    let mut comment = Vec::new();
    match version {
        ModuleVersion::Version(version) => {
            fields.insert("versionInfo".to_owned(), json!(version));
            references.push(purl_reference(golang_purl(path, Some(version), None)));
        }
        ModuleVersion::Folder(folder) => {
            // No purl: nothing at any proxy holds this code.
            comment.push(format!(
                "Replaced by the local folder {folder}: no version, no hash."
            ));
        }
    }
    if let Some(h1) = &entry.h1 {
        references.push(json!({
            "referenceCategory": "OTHER",
            "referenceType": "go-module-h1",
            "referenceLocator": h1,
            "comment": "go.sum's hash of the module zip: Go's dirhash (SHA-256 over the sorted list of its files' SHA-256 sums), not a checksum of one file",
        }));
    }
    if let Some(go_mod_h1) = &entry.go_mod_h1 {
        references.push(json!({
            "referenceCategory": "OTHER",
            "referenceType": "go-mod-h1",
            "referenceLocator": go_mod_h1,
            "comment": "go.sum's hash of the module's go.mod (Go's dirhash of that one file)",
        }));
    }
    if !references.is_empty() {
        fields.insert("externalRefs".to_owned(), Value::Array(references));
    }
    for replaced in &entry.replaces {
        comment.push(format!("Used in place of {replaced} (a go.mod replace)."));
    }
    if entry.vendored {
        comment.push(
            "Vendored: built from the project's vendor/ folder; its hashes are go.sum's."
                .to_owned(),
        );
    }
    if entry.locked && entry.programs.is_empty() {
        comment.push(if entry.h1.is_some() {
            "In kiln.lock; no program of the image holds its code.".to_owned()
        } else {
            "In kiln.lock for its go.mod only: Go reads it to resolve the build, no code of it is compiled.".to_owned()
        });
    }
    if !comment.is_empty() {
        fields.insert("comment".to_owned(), json!(comment.join(" ")));
    }
    Value::Object(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gomod::buildinfo::parse_go_version_m;

    /// `go version -m app hello` on two programs built by Go 1.27.3 (see
    /// tests/fixtures/sbom/README.md for the commands): `app` has a dependency from a proxy, one
    /// replaced by a local folder and one replaced by another module version, and quoted
    /// build settings; `hello` has none.
    const GO_VERSION_M: &str = include_str!("../../tests/fixtures/sbom/go-version-m.txt");

    fn locked(path: &str, version: &str, h1: Option<&str>, go_mod: &str) -> LockedModule {
        LockedModule {
            path: path.to_owned(),
            version: version.to_owned(),
            h1: h1.map(str::to_owned),
            go_mod: go_mod.to_owned(),
            nar: h1.map(|_| "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_owned()),
            vendored: false,
            origin: None,
        }
    }

    /// The lock of the fixture program, plus a module the build reads only the go.mod of.
    fn fixture_lock() -> Vec<LockedModule> {
        vec![
            locked(
                "example.com/Fixture/Upper",
                "v1.0.0",
                None,
                "h1:UpperGoModHashUpperGoModHashUpperGoModHash=",
            ),
            locked(
                "example.com/fork",
                "v1.3.0",
                Some("h1:5hXKlj8j/pm0qFboHrdEpQqv2PgNVZDUAmStNr0G2A0="),
                "h1:p1iaRhyy7VS6qsiv5Aopp/vDwIfisOUyfgJ5RNGLJO0=",
            ),
            locked(
                "example.com/greet",
                "v1.2.0",
                Some("h1:dEAhs2KzHCTG4oNpr6RpV/i/OHSbxIm9tkVgi+24MK4="),
                "h1:rcTgdhGf2dvXrNywJG0jkV+0342RC7PiKN0YX33Ej6Y=",
            ),
        ]
    }

    fn fixture_input<'a>(
        reference: &'a Reference,
        platform: &'a Platform,
        programs: &'a [(String, BuildInfo)],
        lock: &'a [LockedModule],
    ) -> SbomInput<'a> {
        SbomInput {
            image: reference,
            version: "1.0",
            created: "1970-01-01T00:00:01Z",
            manifest_digest: Digest::of(b"the image manifest"),
            platform,
            programs,
            locked_modules: lock,
            application_version: None,
            base: None,
            cgo: None,
        }
    }

    /// Issue 17: a vendored build's modules carry go.sum's hashes and say they were vendored,
    /// and a program whose main module is `(devel)` gets kiln.toml's version.
    #[test]
    fn vendored_modules_and_the_application_version() {
        let reference: Reference = "localhost:5000/team/app:1.0".parse().unwrap();
        let platform: Platform = "linux/amd64".parse().unwrap();
        let programs = parse_go_version_m(GO_VERSION_M).unwrap();
        let mut lock = fixture_lock();
        lock[1].vendored = true;
        let mut input = fixture_input(&reference, &platform, &programs, &lock);
        input.application_version = Some("2.5.0");
        let document = spdx_document(&input).unwrap();
        let packages = document["packages"].as_array().unwrap();
        let applications: Vec<&Value> = packages
            .iter()
            .filter(|package| package["primaryPackagePurpose"] == "APPLICATION")
            .collect();
        assert!(!applications.is_empty());
        for application in applications {
            assert_eq!(application["versionInfo"], "2.5.0", "{application}");
            assert!(
                application["comment"]
                    .as_str()
                    .unwrap()
                    .contains("; version 2.5.0 is the package's in kiln.toml (Go reports (devel))"),
                "{application}"
            );
        }
        let vendored: Vec<&Value> = packages
            .iter()
            .filter(|package| {
                package["comment"].as_str().is_some_and(|comment| {
                    comment.contains(
                        "Vendored: built from the project's vendor/ folder; its hashes are go.sum's.",
                    )
                })
            })
            .collect();
        assert_eq!(vendored.len(), 1);
        assert_eq!(vendored[0]["name"], lock[1].path.as_str());
        assert_eq!(
            vendored[0]["externalRefs"][1]["referenceLocator"],
            lock[1].h1.as_deref().unwrap()
        );
    }

    #[test]
    fn document_lists_every_module_with_its_relationships() {
        let reference: Reference = "localhost:5000/team/app:1.0".parse().unwrap();
        let platform: Platform = "linux/amd64".parse().unwrap();
        let programs = parse_go_version_m(GO_VERSION_M).unwrap();
        let lock = fixture_lock();
        let input = fixture_input(&reference, &platform, &programs, &lock);
        let document = spdx_document(&input).unwrap();
        let packages = document["packages"].as_array().unwrap();
        let by_id: BTreeMap<&str, &Value> = packages
            .iter()
            .map(|package| (package["SPDXID"].as_str().unwrap(), package))
            .collect();
        let ids: Vec<&str> = packages
            .iter()
            .map(|package| package["SPDXID"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            [
                "SPDXRef-Image",
                "SPDXRef-Application-app",
                "SPDXRef-Application-hello",
                "SPDXRef-Go-stdlib-go1.27.3",
                "SPDXRef-Module-example.com-Fixture-Upper-v1.0.0",
                "SPDXRef-Module-example.com-fork-v1.3.0",
                "SPDXRef-Module-example.com-greet-v1.2.0",
                "SPDXRef-Module-example.com-local-local",
            ]
        );
        for module in &lock {
            assert!(
                packages.iter().any(|package| package["name"] == module.path
                    && package["versionInfo"] == module.version),
                "{} is missing",
                module.id()
            );
        }
        let purl = |id: &str| {
            by_id[id]["externalRefs"][0]["referenceLocator"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(
            purl("SPDXRef-Image"),
            format!(
                "pkg:oci/app@{}?arch=amd64&repository_url=localhost:5000/team/app&tag=1.0",
                Digest::of(b"the image manifest")
            )
        );
        assert_eq!(
            purl("SPDXRef-Application-app"),
            "pkg:golang/example.com/app"
        );
        assert_eq!(
            purl("SPDXRef-Go-stdlib-go1.27.3"),
            "pkg:golang/stdlib@1.27.3"
        );
        assert_eq!(
            purl("SPDXRef-Module-example.com-Fixture-Upper-v1.0.0"),
            "pkg:golang/example.com/Fixture/Upper@v1.0.0"
        );
        let fork = by_id["SPDXRef-Module-example.com-fork-v1.3.0"];
        assert_eq!(fork["externalRefs"][1]["referenceType"], "go-module-h1");
        assert_eq!(
            fork["externalRefs"][1]["referenceLocator"],
            "h1:5hXKlj8j/pm0qFboHrdEpQqv2PgNVZDUAmStNr0G2A0="
        );
        assert!(
            fork["comment"]
                .as_str()
                .unwrap()
                .contains("in place of example.com/old v1.0.0")
        );
        let local = by_id["SPDXRef-Module-example.com-local-local"];
        assert!(local.get("versionInfo").is_none());
        assert!(local.get("externalRefs").is_none());
        assert!(local["comment"].as_str().unwrap().contains("../local"));

        let relationships: Vec<String> = document["relationships"]
            .as_array()
            .unwrap()
            .iter()
            .map(|relationship| {
                format!(
                    "{} {} {}",
                    relationship["spdxElementId"].as_str().unwrap(),
                    relationship["relationshipType"].as_str().unwrap(),
                    relationship["relatedSpdxElement"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            relationships,
            [
                "SPDXRef-DOCUMENT DESCRIBES SPDXRef-Image",
                "SPDXRef-Image CONTAINS SPDXRef-Application-app",
                "SPDXRef-Image CONTAINS SPDXRef-Application-hello",
                "SPDXRef-Application-app DEPENDS_ON SPDXRef-Go-stdlib-go1.27.3",
                "SPDXRef-Application-app DEPENDS_ON SPDXRef-Module-example.com-fork-v1.3.0",
                "SPDXRef-Application-app DEPENDS_ON SPDXRef-Module-example.com-greet-v1.2.0",
                "SPDXRef-Application-app DEPENDS_ON SPDXRef-Module-example.com-local-local",
                "SPDXRef-Application-hello DEPENDS_ON SPDXRef-Go-stdlib-go1.27.3",
                "SPDXRef-Module-example.com-Fixture-Upper-v1.0.0 BUILD_DEPENDENCY_OF SPDXRef-Application-app",
                "SPDXRef-Module-example.com-Fixture-Upper-v1.0.0 BUILD_DEPENDENCY_OF SPDXRef-Application-hello",
            ]
        );
        assert_eq!(
            document["creationInfo"]["creators"][0],
            format!("Tool: {TOOL}")
        );
        assert_eq!(document["creationInfo"]["created"], "1970-01-01T00:00:01Z");
    }

    /// The static base's sources are packages the image contains, with the wheel's URL,
    /// SHA-256 and PyPI purl; a registry base is a container the image descends from, at its
    /// pinned digest. Both documents' bytes are pinned.
    #[test]
    fn the_base_is_listed() {
        let reference: Reference = "localhost:5000/team/app:1.0".parse().unwrap();
        let platform: Platform = "linux/arm64".parse().unwrap();
        let programs = parse_go_version_m(GO_VERSION_M).unwrap();
        let lock = fixture_lock();
        let sources = crate::static_base::default_sources();
        let mut input = fixture_input(&reference, &platform, &programs, &lock);
        input.base = Some(SbomBase::Static(&sources));
        let document = document_by(&input, "kiln-golden").unwrap();
        let packages = document["packages"].as_array().unwrap();
        let ids: Vec<&str> = packages[..3]
            .iter()
            .map(|package| package["SPDXID"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            [
                "SPDXRef-Image",
                "SPDXRef-Static-ca-certificates",
                "SPDXRef-Static-tzdata"
            ]
        );
        let certificates = &packages[1];
        assert_eq!(certificates["versionInfo"], "2026.10.19.post1");
        assert_eq!(certificates["downloadLocation"], sources[0].url.as_str());
        assert_eq!(
            certificates["checksums"],
            json!([{"algorithm": "SHA256", "checksumValue": sources[0].sha256}])
        );
        assert_eq!(
            certificates["externalRefs"][0]["referenceLocator"],
            "pkg:pypi/certifi@2026.10.19.post1"
        );
        assert_eq!(
            packages[2]["externalRefs"][0]["referenceLocator"],
            "pkg:pypi/tzdata@2026.6"
        );
        assert!(
            packages[2]["comment"]
                .as_str()
                .unwrap()
                .contains("/usr/share/zoneinfo")
        );
        let relationships = document["relationships"].as_array().unwrap();
        for id in &ids[1..] {
            assert!(relationships.contains(&json!({
                "spdxElementId": "SPDXRef-Image",
                "relationshipType": "CONTAINS",
                "relatedSpdxElement": id,
            })));
        }
        assert_eq!(
            Digest::of(&to_canonical_vec(&document).unwrap()).to_string(),
            "sha256:cda4360a563049047f4cd0579832d93c138011ff4dcac98f1c0840929af703ce"
        );

        let base: Reference = "gcr.io/distroless/static-debian12:nonroot".parse().unwrap();
        input.base = Some(SbomBase::Image {
            reference: &base,
            digest: Digest::of(b"the base manifest"),
        });
        let document = document_by(&input, "kiln-golden").unwrap();
        let package = &document["packages"][1];
        assert_eq!(
            package["SPDXID"],
            "SPDXRef-Base-gcr.io-distroless-static-debian12"
        );
        assert_eq!(package["primaryPackagePurpose"], "CONTAINER");
        assert_eq!(package["versionInfo"], "nonroot");
        assert_eq!(
            package["externalRefs"][0]["referenceLocator"],
            format!(
                "pkg:oci/static-debian12@{}?arch=arm64&repository_url=gcr.io/distroless/static-debian12&tag=nonroot",
                Digest::of(b"the base manifest")
            )
        );
        assert!(
            document["relationships"]
                .as_array()
                .unwrap()
                .contains(&json!({
                    "spdxElementId": "SPDXRef-Image",
                    "relationshipType": "DESCENDANT_OF",
                    "relatedSpdxElement": "SPDXRef-Base-gcr.io-distroless-static-debian12",
                }))
        );
        assert_eq!(
            Digest::of(&to_canonical_vec(&document).unwrap()).to_string(),
            "sha256:2da4a2087cb17c87c4ded32865b1a789a9a37bc45ed89bb943a89289568b8402"
        );
    }

    /// Issue 21: a cgo build lists Zig as a build tool of each program (the wheel's URL,
    /// SHA-256 and PyPI purl from the pin) and the C library: musl statically linked, or glibc
    /// at its pinned release dynamically linked. Both documents' bytes are pinned.
    #[test]
    fn cgo_lists_zig_and_the_c_library() {
        let reference: Reference = "localhost:5000/team/app:1.0".parse().unwrap();
        let platform: Platform = "linux/arm64".parse().unwrap();
        let programs = parse_go_version_m(GO_VERSION_M).unwrap();
        let lock = fixture_lock();
        let zig = crate::toolchain::zig::default_pin("linux-amd64").unwrap();
        let mut input = fixture_input(&reference, &platform, &programs, &lock);
        input.cgo = Some(SbomCgo {
            zig: &zig,
            target: "aarch64-linux-musl",
            glibc: None,
        });
        let lines = |document: &Value| -> Vec<String> {
            document["relationships"]
                .as_array()
                .unwrap()
                .iter()
                .map(|relationship| {
                    format!(
                        "{} {} {}",
                        relationship["spdxElementId"].as_str().unwrap(),
                        relationship["relationshipType"].as_str().unwrap(),
                        relationship["relatedSpdxElement"].as_str().unwrap()
                    )
                })
                .collect()
        };
        let document = document_by(&input, "kiln-golden").unwrap();
        let packages = document["packages"].as_array().unwrap();
        let ids: Vec<&str> = packages
            .iter()
            .map(|package| package["SPDXID"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids[3..6],
            [
                "SPDXRef-Go-stdlib-go1.27.3",
                "SPDXRef-BuildTool-ziglang",
                "SPDXRef-CLibrary-musl"
            ]
        );
        let zig_package = &packages[4];
        assert_eq!(zig_package["name"], "ziglang");
        assert_eq!(zig_package["versionInfo"], "0.17.1");
        assert_eq!(zig_package["downloadLocation"], zig.url.as_str());
        assert_eq!(
            zig_package["checksums"],
            json!([{"algorithm": "SHA256", "checksumValue": zig.sha256}])
        );
        assert_eq!(
            zig_package["externalRefs"][0]["referenceLocator"],
            "pkg:pypi/ziglang@0.17.1"
        );
        let musl = &packages[5];
        assert_eq!(musl["name"], "musl");
        assert!(musl.get("versionInfo").is_none());
        assert!(
            musl["comment"]
                .as_str()
                .unwrap()
                .starts_with("musl as Zig 0.17.1 ships it"),
            "{musl}"
        );
        let relationships = lines(&document);
        for program in ["app", "hello"] {
            for line in [
                format!("SPDXRef-BuildTool-ziglang BUILD_TOOL_OF SPDXRef-Application-{program}"),
                format!("SPDXRef-Application-{program} STATIC_LINK SPDXRef-CLibrary-musl"),
            ] {
                assert!(relationships.contains(&line), "{line}: {relationships:#?}");
            }
        }
        assert!(
            !relationships
                .iter()
                .any(|line| line.contains("DYNAMIC_LINK"))
        );
        assert_eq!(
            Digest::of(&to_canonical_vec(&document).unwrap()).to_string(),
            "sha256:5ce837f13d6dc09c72b9edd53f98a817194281f30f9994acff52413cd69be472"
        );

        input.cgo = Some(SbomCgo {
            zig: &zig,
            target: "aarch64-linux-gnu.2.31",
            glibc: Some(crate::project::GlibcVersion { minor: 31 }),
        });
        let document = document_by(&input, "kiln-golden").unwrap();
        let glibc = &document["packages"][5];
        assert_eq!(glibc["SPDXID"], "SPDXRef-CLibrary-glibc");
        assert_eq!(glibc["name"], "glibc");
        assert_eq!(glibc["versionInfo"], "2.31");
        assert!(
            glibc["comment"]
                .as_str()
                .unwrap()
                .contains("against the symbols of glibc 2.31"),
            "{glibc}"
        );
        let relationships = lines(&document);
        assert!(
            relationships.contains(
                &"SPDXRef-Application-app DYNAMIC_LINK SPDXRef-CLibrary-glibc".to_owned()
            )
        );
        assert!(
            !relationships
                .iter()
                .any(|line| line.contains("STATIC_LINK"))
        );
        assert_eq!(
            Digest::of(&to_canonical_vec(&document).unwrap()).to_string(),
            "sha256:ba870abab51559863125b9de23e0795efd7ed328d0b53f533a5a2a73049676da"
        );
    }

    /// The document's bytes are pinned: a change to any choice above changes this digest.
    /// The tool is fixed here so a kiln release does not move the golden.
    #[test]
    fn document_bytes_golden() {
        let reference: Reference = "localhost:5000/team/app:1.0".parse().unwrap();
        let platform: Platform = "linux/amd64".parse().unwrap();
        let programs = parse_go_version_m(GO_VERSION_M).unwrap();
        let lock = fixture_lock();
        let input = fixture_input(&reference, &platform, &programs, &lock);
        let document = document_by(&input, "kiln-golden").unwrap();
        let bytes = to_canonical_vec(&document).unwrap();
        assert_eq!(
            document["documentNamespace"],
            "https://kiln.invalid/spdx/localhost%3A5000/team/app-1.0-a9bf26e41a5cb19ab9c973e5e4ed4c97246575fd5602819f905b109182b30d3c"
        );
        assert_eq!(
            Digest::of(&bytes).to_string(),
            "sha256:045655eb9b4c27a984dcf14ee82b6c3d61e43ef3fb4e5fbd4b2c327981b2276e"
        );
        // Same input, same bytes; a different image, a different namespace.
        assert_eq!(
            to_canonical_vec(&document_by(&input, "kiln-golden").unwrap()).unwrap(),
            bytes
        );
        let other = SbomInput {
            manifest_digest: Digest::of(b"another manifest"),
            ..input
        };
        assert_ne!(
            document_by(&other, "kiln-golden").unwrap()["documentNamespace"],
            document["documentNamespace"]
        );
    }

    #[test]
    fn created_is_normalised_or_refused() {
        assert_eq!(
            normalise_created("2024-05-01T14:00:00.123+02:00").unwrap(),
            "2024-05-01T12:00:00Z"
        );
        assert_eq!(
            normalise_created("1970-01-01T00:00:01Z").unwrap(),
            "1970-01-01T00:00:01Z"
        );
        assert!(matches!(
            normalise_created("yesterday"),
            Err(SbomError::Created(_))
        ));
    }

    #[test]
    fn a_program_not_built_from_the_lock_is_refused() {
        let reference: Reference = "app:1".parse().unwrap();
        let platform = Platform::host();
        let programs = parse_go_version_m(GO_VERSION_M).unwrap();
        let mut lock = fixture_lock();
        lock[2].h1 = Some("h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_owned());
        let input = fixture_input(&reference, &platform, &programs, &lock);
        let error = spdx_document(&input).unwrap_err();
        let hint = crate::diagnostic::Hint::hint(&error).unwrap_or_default();
        let error = error.to_string();
        assert!(error.contains("example.com/greet@v1.2.0"), "{error}");
        assert!(hint.contains("not built from this kiln.lock"), "{hint}");
    }

    #[test]
    fn identifiers_are_unique_and_order_free() {
        let names = |list: &[&str]| list.iter().map(|name| (*name).to_owned()).collect();
        assert_eq!(
            allocate_ids("Module", names(&["a/b", "a-b", "a+b", "c", "a-b-2"])),
            // `a-b-2` keeps its own slug; the three `a-b`s take the free ones in name order
            // (`+` < `-` < `/`).
            [
                "SPDXRef-Module-a-b-4",
                "SPDXRef-Module-a-b-3",
                "SPDXRef-Module-a-b",
                "SPDXRef-Module-c",
                "SPDXRef-Module-a-b-2",
            ]
        );
        // Reordering the input does not move an identifier.
        let forward = allocate_ids("M", names(&["x/y", "x_y"]));
        let backward = allocate_ids("M", names(&["x_y", "x/y"]));
        assert_eq!(forward[0], backward[1]);
        assert_eq!(forward[1], backward[0]);
        for id in forward.iter().chain(&backward) {
            assert!(
                id.strip_prefix("SPDXRef-")
                    .unwrap()
                    .chars()
                    .all(|character| character.is_ascii_alphanumeric()
                        || character == '.'
                        || character == '-')
            );
        }
    }
}
