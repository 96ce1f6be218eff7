//! kiln.lock: every module a build may use, pinned by hash, and the Go toolchain it builds
//! with. Written by `kiln lock`, read by `kiln build`; meant to be committed.
//!
//! ```toml
//! # kiln.lock: written by `kiln lock`; commit it. Do not edit.
//! version = 1
//!
//! [go]
//! go = "1.22"                 # go.mod's go line
//! toolchain = "go1.27.3"      # the Go release the project builds with
//!
//! [go.toolchain-h1]           # only when kiln fetched that release (golang.org/toolchain),
//! linux-amd64 = "h1:…"        # one zip per host
//!
//! [[module]]
//! path = "example.com/Fixture/lib"
//! version = "v1.4.2"
//! h1 = "h1:…"                 # go.sum's hash of the module zip
//! go-mod = "h1:…"             # go.sum's hash of its go.mod
//! nar = "sha256-…"            # NAR hash of the unpacked module (gomod2nix.toml's `hash`)
//! origin = "direct"           # only for a module fetched from version control (see below)
//!
//! [[base]]                    # a base image of an [images.*] section, per platform
//! name = "ghcr.io/team/base:1"      # as kiln.toml writes it
//! platform = "linux/amd64"
//! digest = "sha256:…"               # the platform's image manifest
//!
//! [[static]]                  # a source of kiln's `base = "static"`, by sha256
//! name = "ca-certificates"    # or "tzdata"
//! version = "2026.10.19"
//! url = "https://files.pythonhosted.org/…/certifi-….whl"
//! sha256 = "…"
//!
//! [[zig]]                     # the C toolchain of cgo packages: the ziglang wheel, per host
//! host = "linux-amd64"
//! version = "0.17.1"
//! url = "https://files.pythonhosted.org/…/ziglang-0.17.1-py3-none-manylinux_2_12_x86_64….whl"
//! sha256 = "…"
//! ```
//!
//! `[[zig]]` is written only when a package has `cgo = true`, so every other lock is the
//! same bytes as before it existed.
//!
//! `origin = "direct"` marks a module whose bytes kiln got from version control (GOPROXY's
//! `direct`, or a GONOPROXY/GOPRIVATE match) rather than from a module proxy: a reader of
//! the lock sees which modules no proxy serves, and so which ones a machine without access to
//! those hosts can only build from a store that has them. It records where the stored bytes
//! came from, never how (no URL, no user name, no credential: the module path is the only
//! name Go gives a repository, and it is already the entry's `path`); the bytes are pinned by
//! `h1`, `go-mod` and `nar` exactly as for a proxied module, and the store output is the same.
//! A module the store already holds keeps the origin recorded when it was stored. A lock
//! without direct modules is the same bytes as before the key existed; one with them is
//! refused by older kilns (an unknown field), which could not have fetched them either.
//!
//! A module whose code the build never reads (go.sum holds only its `/go.mod` hash: Go needs
//! the file to walk the module graph) has `go-mod` and neither `h1` nor `nar`. Entries are
//! sorted by path, then version, and the text is written by hand so the same lock is the same
//! bytes everywhere; `version` changes only when the format does.
//!
//! **A vendored project** (one with `vendor/modules.txt`) is locked without fetching: vendor/
//! is where its modules come from. Its lock (version 2) has a `[vendor]` table and records
//! every go.sum entry as go.sum has it, with `vendored = true` on each module whose packages
//! vendor/ holds:
//!
//! ```toml
//! version = 2
//!
//! [vendor]
//! modules-txt = "sha256:…"    # sha256 of vendor/modules.txt as locked
//!
//! [[module]]
//! path = "example.com/lib"
//! version = "v1.4.2"
//! h1 = "h1:…"                 # go.sum's, as it is: what `go mod verify` checks
//! go-mod = "h1:…"
//! vendored = true             # its code is in vendor/
//!
//! [[module]]                  # in the module graph for its go.mod only, as in any lock
//! path = "example.com/old"
//! version = "v1.0.0"
//! go-mod = "h1:…"
//! ```
//!
//! Such a lock has no `nar`: vendor/ holds only the packages the build imports, without
//! go.mod, tests or testdata, so the NAR hash of a vendored folder is not the NAR hash of the
//! module (gomod2nix.toml's, which `kiln lock --gomod2nix` could not honestly write), and the
//! build's identity already covers vendor/'s bytes (they are sources). The hashes are not
//! checked against bytes either (vendor/ holds neither the zip nor the go.mod they hash); they
//! are pinned so `kiln lock --check` notices any change to go.sum, and modules.txt's digest
//! so it notices any change there (a version, a module or a package added or dropped). None
//! of these modules is in the store. kiln writes `version = 2` only for such a lock: any other
//! lock is the same bytes as before and stays readable by older kilns, and kiln reads both.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::diagnostic::Hint;
use crate::gomod::gomod2nix::{is_sri_sha256, toml_error, toml_string};
use crate::gomod::sumfile::is_h1;
use crate::recipes;
use crate::store::{Recipe, StoreName};
use crate::toolchain::zig::ZigPin;

/// The format version of a lock without `[vendor]`.
pub const VERSION: i64 = 1;
/// The format version of a vendored project's lock (`[vendor]`, `vendored = true`); kiln
/// reads both.
pub const VENDORED_VERSION: i64 = 2;

#[derive(Debug, thiserror::Error)]
pub enum LockFileError {
    #[error("{}: {message}", .file.display())]
    Parse { file: PathBuf, message: String },
    #[error("{}: version {found} is not one this kiln reads (it reads versions {VERSION} and {VENDORED_VERSION})", .file.display())]
    Version { file: PathBuf, found: i64 },
    #[error("{} has no `version`, so kiln did not write it", .file.display())]
    NoVersion { file: PathBuf },
    #[error("{}: module {module}: {message}", .file.display())]
    Entry {
        file: PathBuf,
        module: String,
        message: String,
    },
}

impl Hint for LockFileError {
    fn hint(&self) -> Option<String> {
        match self {
            LockFileError::Version { .. } => Some(
                "a newer kiln wrote it; upgrade kiln, or run `kiln lock` to rewrite it".to_owned(),
            ),
            LockFileError::NoVersion { .. } => Some("run `kiln lock` to write it again".to_owned()),
            _ => None,
        }
    }
}

/// The `[go]` table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoPin {
    /// go.mod's `go` line.
    pub go: Option<String>,
    /// The Go release builds use (`go1.27.3`).
    pub toolchain: String,
    /// `h1:` of the `golang.org/toolchain` module zip per host (`linux-amd64`), for the hosts
    /// where kiln fetched the release.
    #[serde(rename = "toolchain-h1", default)]
    pub toolchain_h1: std::collections::BTreeMap<String, String>,
}

/// One `[[module]]`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedModule {
    pub path: String,
    pub version: String,
    /// `h1:` of the zip; none when only the go.mod is needed.
    pub h1: Option<String>,
    /// `h1:` of the go.mod.
    #[serde(rename = "go-mod")]
    pub go_mod: String,
    /// NAR hash of the unpacked module, `sha256-…`; present exactly when `h1` is, except in
    /// a vendored project's lock, which has none.
    pub nar: Option<String>,
    /// Whether its code comes from the project's vendor/ (only in a lock with `[vendor]`).
    #[serde(default)]
    pub vendored: bool,
    /// Where its bytes came from, when not a module proxy.
    #[serde(default)]
    pub origin: Option<ModuleOrigin>,
}

/// A module's `origin` (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModuleOrigin {
    /// Fetched from version control (GOPROXY's `direct`, or GONOPROXY/GOPRIVATE).
    Direct,
}

impl ModuleOrigin {
    /// The value kiln.lock and the store's module record write.
    pub fn as_str(self) -> &'static str {
        match self {
            ModuleOrigin::Direct => "direct",
        }
    }
}

/// The `[vendor]` table: the lock was made from vendor/ (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorPin {
    /// `sha256:<hex>` of vendor/modules.txt.
    #[serde(rename = "modules-txt")]
    pub modules_txt: String,
}

impl LockedModule {
    /// `path@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.path, self.version)
    }

    /// The recipe of the module's store output.
    pub fn recipe(&self) -> Recipe {
        recipes::go_module(&self.path, &self.version, self.h1.as_deref(), &self.go_mod)
    }

    /// The store name of the module's output.
    pub fn store_name(&self) -> StoreName {
        self.recipe().name().clone()
    }
}

/// One `[[base]]`: the image manifest a base reference resolved to for one platform.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedBase {
    pub name: String,
    pub platform: String,
    pub digest: String,
}

/// A kiln.lock.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockFile {
    pub go: GoPin,
    /// Sorted by path, then version.
    pub modules: Vec<LockedModule>,
    /// Sorted by name, then platform.
    pub bases: Vec<LockedBase>,
    /// The static base's sources, sorted by name; empty when no image uses it.
    pub statics: Vec<crate::static_base::StaticWheel>,
    /// Present when the project's modules come from vendor/ (nothing was fetched).
    pub vendor: Option<VendorPin>,
    /// The Zig wheels of cgo builds, one per host, sorted by host; empty without cgo.
    pub zig: Vec<ZigPin>,
}

impl LockFile {
    /// go.sum text pinning the lock's modules (for a project locked from gomod2nix.toml, which
    /// has no go.sum): Go checks the modules it reads against it as against any go.sum.
    pub fn go_sum_text(&self) -> String {
        crate::gomod::sumfile::render(self.modules.iter().map(|module| {
            (
                module.path.as_str(),
                module.version.as_str(),
                module.h1.as_deref(),
                module.go_mod.as_str(),
            )
        }))
    }

    /// gomod2nix.toml entries for the lock (see [`crate::gomod::gomod2nix::entries`]).
    pub fn gomod2nix_entries(
        &self,
        go_mod: &crate::gomod::modfile::ModFile,
    ) -> Vec<crate::gomod::gomod2nix::Gomod2nixModule> {
        let pinned: Vec<crate::gomod::gomod2nix::Pinned<'_>> = self
            .modules
            .iter()
            .map(|module| crate::gomod::gomod2nix::Pinned {
                path: &module.path,
                version: &module.version,
                nar: module.nar.as_deref(),
            })
            .collect();
        crate::gomod::gomod2nix::entries(go_mod, &pinned)
    }
}

impl LockFile {
    /// The `[[zig]]` pin for `host`.
    pub fn zig_for(&self, host: &str) -> Option<&ZigPin> {
        self.zig.iter().find(|pin| pin.host == host)
    }

    /// The digest `name` is pinned to for `platform`.
    pub fn base(&self, name: &str, platform: &str) -> Option<&LockedBase> {
        self.bases
            .iter()
            .find(|base| base.name == name && base.platform == platform)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(rename = "version")]
    _version: i64,
    go: GoPin,
    #[serde(default)]
    module: Vec<LockedModule>,
    #[serde(default)]
    base: Vec<LockedBase>,
    #[serde(default, rename = "static")]
    statics: Vec<crate::static_base::StaticWheel>,
    #[serde(default)]
    vendor: Option<VendorPin>,
    #[serde(default)]
    zig: Vec<ZigPin>,
}

/// Parse kiln.lock `text`; `file` names it in errors.
pub fn parse(text: &str, file: &Path) -> Result<LockFile, LockFileError> {
    // The version first, so a future format gets the version error, not a schema one.
    #[derive(Deserialize)]
    struct VersionOnly {
        version: Option<i64>,
    }
    let parse_error = |error: toml::de::Error| LockFileError::Parse {
        file: file.to_owned(),
        message: toml_error(text, &error),
    };
    let version: VersionOnly = toml::from_str(text).map_err(parse_error)?;
    match version.version {
        Some(VERSION | VENDORED_VERSION) => {}
        Some(found) => {
            return Err(LockFileError::Version {
                file: file.to_owned(),
                found,
            });
        }
        None => {
            return Err(LockFileError::NoVersion {
                file: file.to_owned(),
            });
        }
    }
    let document: Document = toml::from_str(text).map_err(parse_error)?;
    let vendored_lock = document.vendor.is_some();
    if vendored_lock != (version.version == Some(VENDORED_VERSION)) {
        return Err(LockFileError::Parse {
            file: file.to_owned(),
            message: format!(
                "a `[vendor]` table belongs to version {VENDORED_VERSION} and only there"
            ),
        });
    }
    if let Some(vendor) = &document.vendor
        && !is_sha256_digest(&vendor.modules_txt)
    {
        return Err(LockFileError::Parse {
            file: file.to_owned(),
            message: format!(
                "[vendor] modules-txt: `{}` is not sha256:<64 hex>",
                vendor.modules_txt
            ),
        });
    }
    for (host, hash) in &document.go.toolchain_h1 {
        if !is_h1(hash) {
            return Err(LockFileError::Parse {
                file: file.to_owned(),
                message: format!("[go.toolchain-h1] {host}: `{hash}` is not an h1: hash"),
            });
        }
    }
    for module in &document.module {
        let entry_error = |message: String| LockFileError::Entry {
            file: file.to_owned(),
            module: module.id(),
            message,
        };
        crate::gomod::module::check_path(&module.path)
            .map_err(|error| entry_error(error.to_string()))?;
        crate::gomod::module::check_version(&module.version)
            .map_err(|error| entry_error(error.to_string()))?;
        for hash in module.h1.iter().chain([&module.go_mod]) {
            if !is_h1(hash) {
                return Err(entry_error(format!("`{hash}` is not an h1: hash")));
            }
        }
        match &module.nar {
            Some(nar) if !is_sri_sha256(nar) => {
                return Err(entry_error(format!(
                    "`{nar}` is not a NAR hash in SRI form (sha256-…)"
                )));
            }
            _ => {}
        }
        if vendored_lock {
            if module.nar.is_some() {
                return Err(entry_error(
                    "a vendored project's lock has no `nar` (vendor/ is not the module's tree)"
                        .to_owned(),
                ));
            }
            if module.vendored && module.h1.is_none() {
                return Err(entry_error(
                    "a vendored module needs go.sum's `h1` of its zip".to_owned(),
                ));
            }
        } else if module.vendored {
            return Err(entry_error(
                "`vendored` belongs to a lock with a `[vendor]` table".to_owned(),
            ));
        } else if module.h1.is_some() != module.nar.is_some() {
            return Err(entry_error(
                "`h1` and `nar` come together (both for a module whose code is used, neither for a go.mod-only one)".to_owned(),
            ));
        }
    }
    let mut modules = document.module;
    let count = modules.len();
    modules.sort();
    modules.dedup_by(|a, b| a.path == b.path && a.version == b.version);
    if modules.len() != count {
        return Err(LockFileError::Parse {
            file: file.to_owned(),
            message: "a module version is listed twice".to_owned(),
        });
    }
    for base in &document.base {
        let valid_reference = base
            .name
            .parse::<crate::oci::reference::Reference>()
            .is_ok();
        let valid_platform = base.platform.parse::<crate::oci::spec::Platform>().is_ok();
        let valid_digest = base.digest.parse::<crate::oci::digest::Digest>().is_ok();
        if !(valid_reference && valid_platform && valid_digest) {
            return Err(LockFileError::Parse {
                file: file.to_owned(),
                message: format!(
                    "[[base]] {} {}: the name must be an image reference, the platform OS/ARCH, the digest sha256:<64 hex>",
                    base.name, base.platform
                ),
            });
        }
    }
    let mut bases = document.base;
    bases.sort();
    for source in &document.statics {
        let valid_sha256 =
            source.sha256.len() == 64 && source.sha256.bytes().all(|byte| byte.is_ascii_hexdigit());
        if !valid_sha256
            || !source.url.starts_with("https://") && !source.url.starts_with("http://")
        {
            return Err(LockFileError::Parse {
                file: file.to_owned(),
                message: format!(
                    "[[static]] {}: the url must be http(s) and the sha256 64 hex digits",
                    source.name
                ),
            });
        }
    }
    let mut statics = document.statics;
    statics.sort_by(|a, b| a.name.cmp(&b.name));
    let mut zig = document.zig;
    zig.sort();
    for (index, pin) in zig.iter().enumerate() {
        if let Some(problem) = pin.problem() {
            return Err(LockFileError::Parse {
                file: file.to_owned(),
                message: format!("[[zig]] {}: {problem}", pin.host),
            });
        }
        if zig[..index].iter().any(|other| other.host == pin.host) {
            return Err(LockFileError::Parse {
                file: file.to_owned(),
                message: format!("[[zig]] {}: the host is listed twice", pin.host),
            });
        }
    }
    Ok(LockFile {
        go: document.go,
        modules,
        bases,
        statics,
        vendor: document.vendor,
        zig,
    })
}

/// `sha256:` and 64 lower-case hex digits.
fn is_sha256_digest(text: &str) -> bool {
    text.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
    })
}

/// Render `lock` as kiln.lock text.
pub fn render(lock: &LockFile) -> String {
    let version = if lock.vendor.is_some() {
        VENDORED_VERSION
    } else {
        VERSION
    };
    let mut text = format!(
        "# kiln.lock: written by `kiln lock`; commit it. Do not edit.\nversion = {version}\n"
    );
    if let Some(vendor) = &lock.vendor {
        text.push_str(&format!(
            "\n[vendor]\nmodules-txt = {}\n",
            toml_string(&vendor.modules_txt)
        ));
    }
    text.push_str("\n[go]\n");
    if let Some(go) = &lock.go.go {
        text.push_str(&format!("go = {}\n", toml_string(go)));
    }
    text.push_str(&format!(
        "toolchain = {}\n",
        toml_string(&lock.go.toolchain)
    ));
    if !lock.go.toolchain_h1.is_empty() {
        text.push_str("\n[go.toolchain-h1]\n");
        for (host, h1) in &lock.go.toolchain_h1 {
            text.push_str(&format!("{} = {}\n", toml_string(host), toml_string(h1)));
        }
    }
    let mut modules: Vec<&LockedModule> = lock.modules.iter().collect();
    modules.sort();
    for module in modules {
        text.push_str("\n[[module]]\n");
        text.push_str(&format!("path = {}\n", toml_string(&module.path)));
        text.push_str(&format!("version = {}\n", toml_string(&module.version)));
        if let Some(h1) = &module.h1 {
            text.push_str(&format!("h1 = {}\n", toml_string(h1)));
        }
        text.push_str(&format!("go-mod = {}\n", toml_string(&module.go_mod)));
        if let Some(nar) = &module.nar {
            text.push_str(&format!("nar = {}\n", toml_string(nar)));
        }
        if let Some(origin) = module.origin {
            text.push_str(&format!("origin = {}\n", toml_string(origin.as_str())));
        }
        if module.vendored {
            text.push_str("vendored = true\n");
        }
    }
    let mut bases: Vec<&LockedBase> = lock.bases.iter().collect();
    bases.sort();
    for base in bases {
        text.push_str("\n[[base]]\n");
        text.push_str(&format!("name = {}\n", toml_string(&base.name)));
        text.push_str(&format!("platform = {}\n", toml_string(&base.platform)));
        text.push_str(&format!("digest = {}\n", toml_string(&base.digest)));
    }
    let mut statics: Vec<&crate::static_base::StaticWheel> = lock.statics.iter().collect();
    statics.sort_by(|a, b| a.name.cmp(&b.name));
    for source in statics {
        text.push_str("\n[[static]]\n");
        text.push_str(&format!("name = {}\n", toml_string(&source.name)));
        text.push_str(&format!("version = {}\n", toml_string(&source.version)));
        text.push_str(&format!("url = {}\n", toml_string(&source.url)));
        text.push_str(&format!("sha256 = {}\n", toml_string(&source.sha256)));
    }
    let mut zig: Vec<&ZigPin> = lock.zig.iter().collect();
    zig.sort();
    for pin in zig {
        text.push_str("\n[[zig]]\n");
        text.push_str(&format!("host = {}\n", toml_string(&pin.host)));
        text.push_str(&format!("version = {}\n", toml_string(&pin.version)));
        text.push_str(&format!("url = {}\n", toml_string(&pin.url)));
        text.push_str(&format!("sha256 = {}\n", toml_string(&pin.sha256)));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const H1: &str = "h1:A+z+XjcWgiIhrZH1NmkoHg4TTnckCc3ZrNLbNMO2ifs=";
    const GO_MOD: &str = "h1:sfFeq1j53UAvm7kJIVee8/n0tgz8AJ5n76uwmRv7Tic=";
    const NAR: &str = "sha256-FIwyH67KryRWI9Bk4R8s1zFP0IgKR4L66wNQJYQZLeg=";
    const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn sample() -> LockFile {
        LockFile {
            go: GoPin {
                go: Some("1.22".to_owned()),
                toolchain: "go1.27.3".to_owned(),
                toolchain_h1: [("linux-amd64".to_owned(), H1.to_owned())].into(),
            },
            modules: vec![
                LockedModule {
                    path: "example.com/Fixture/lib".to_owned(),
                    version: "v1.4.2".to_owned(),
                    h1: Some(H1.to_owned()),
                    go_mod: GO_MOD.to_owned(),
                    nar: Some(NAR.to_owned()),
                    vendored: false,
                    origin: None,
                },
                LockedModule {
                    path: "example.com/old".to_owned(),
                    version: "v2.0.0+incompatible".to_owned(),
                    h1: None,
                    go_mod: GO_MOD.to_owned(),
                    nar: None,
                    vendored: false,
                    origin: None,
                },
            ],
            bases: vec![LockedBase {
                name: "localhost:5000/base:1".to_owned(),
                platform: "linux/amd64".to_owned(),
                digest: DIGEST.to_owned(),
            }],
            statics: vec![crate::static_base::StaticWheel {
                name: "tzdata".to_owned(),
                version: "2026.6".to_owned(),
                url: "https://files.pythonhosted.org/packages/tzdata.whl".to_owned(),
                sha256: "ab".repeat(32),
            }],
            vendor: None,
            zig: Vec::new(),
        }
    }

    /// Issue 21: a cgo project's lock pins the Zig wheel per host after everything else.
    #[test]
    fn zig_pins_round_trip_after_the_rest() {
        let mut lock = sample();
        lock.bases.clear();
        lock.statics.clear();
        lock.modules.clear();
        lock.zig = vec![
            ZigPin {
                host: "linux-arm64".to_owned(),
                version: "0.17.1".to_owned(),
                url: "https://files.pythonhosted.org/packages/b.whl".to_owned(),
                sha256: "cd".repeat(32),
            },
            ZigPin {
                host: "linux-amd64".to_owned(),
                version: "0.17.1".to_owned(),
                url: "https://files.pythonhosted.org/packages/a.whl".to_owned(),
                sha256: "ab".repeat(32),
            },
        ];
        let text = render(&lock);
        assert_eq!(
            text,
            format!(
                "# kiln.lock: written by `kiln lock`; commit it. Do not edit.\nversion = 1\n\n[go]\ngo = \"1.22\"\ntoolchain = \"go1.27.3\"\n\n[go.toolchain-h1]\n\"linux-amd64\" = \"{H1}\"\n\n[[zig]]\nhost = \"linux-amd64\"\nversion = \"0.17.1\"\nurl = \"https://files.pythonhosted.org/packages/a.whl\"\nsha256 = \"{}\"\n\n[[zig]]\nhost = \"linux-arm64\"\nversion = \"0.17.1\"\nurl = \"https://files.pythonhosted.org/packages/b.whl\"\nsha256 = \"{}\"\n",
                "ab".repeat(32),
                "cd".repeat(32)
            )
        );
        let parsed = parse(&text, Path::new("kiln.lock")).unwrap();
        assert_eq!(parsed.zig_for("linux-arm64"), Some(&lock.zig[0]));
        let twice = text.replace("linux-arm64", "linux-amd64");
        let error = parse(&twice, Path::new("kiln.lock"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("[[zig]] linux-amd64: the host is listed twice"),
            "{error}"
        );
        let bad = text.replace(&"cd".repeat(32), "CD");
        let error = parse(&bad, Path::new("kiln.lock")).unwrap_err().to_string();
        assert!(error.contains("is not 64 lower-case hex digits"), "{error}");
    }

    #[test]
    fn golden_text_round_trips() {
        let text = render(&sample());
        assert_eq!(
            text,
            format!(
                "# kiln.lock: written by `kiln lock`; commit it. Do not edit.\nversion = 1\n\n[go]\ngo = \"1.22\"\ntoolchain = \"go1.27.3\"\n\n[go.toolchain-h1]\n\"linux-amd64\" = \"{H1}\"\n\n[[module]]\npath = \"example.com/Fixture/lib\"\nversion = \"v1.4.2\"\nh1 = \"{H1}\"\ngo-mod = \"{GO_MOD}\"\nnar = \"{NAR}\"\n\n[[module]]\npath = \"example.com/old\"\nversion = \"v2.0.0+incompatible\"\ngo-mod = \"{GO_MOD}\"\n\n[[base]]\nname = \"localhost:5000/base:1\"\nplatform = \"linux/amd64\"\ndigest = \"{DIGEST}\"\n\n[[static]]\nname = \"tzdata\"\nversion = \"2026.6\"\nurl = \"https://files.pythonhosted.org/packages/tzdata.whl\"\nsha256 = \"{}\"\n",
                "ab".repeat(32)
            )
        );
        assert_eq!(parse(&text, Path::new("kiln.lock")).unwrap(), sample());
    }

    #[test]
    fn refuses_bad_locks_with_their_place() {
        let file = Path::new("kiln.lock");
        let error = parse("version = 3\n[go]\ntoolchain = \"go1\"\n", file).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("kiln.lock: version 3 is not one this kiln reads")
        );
        let text = render(&sample()).replace("nar = ", "narr = ");
        let error = parse(&text, file).unwrap_err().to_string();
        assert!(
            error.starts_with("kiln.lock: line 16: unknown field `narr`"),
            "{error}"
        );
        let text = render(&sample()).replace(GO_MOD, "h1:short");
        let error = parse(&text, file).unwrap_err().to_string();
        assert_eq!(
            error,
            "kiln.lock: module example.com/Fixture/lib@v1.4.2: `h1:short` is not an h1: hash"
        );
        let text = render(&sample()).replace(&format!("nar = \"{NAR}\"\n"), "");
        let error = parse(&text, file).unwrap_err().to_string();
        assert!(error.contains("`h1` and `nar` come together"), "{error}");
        let mut twice = sample();
        twice.modules.push(twice.modules[0].clone());
        let error = parse(&render(&twice), file).unwrap_err().to_string();
        assert!(error.contains("listed twice"), "{error}");
    }

    /// Issue 19: a module fetched from version control is marked `origin = "direct"`, and
    /// nothing else changes; a lock without one is the same bytes as before.
    #[test]
    fn direct_origin_round_trips() {
        let mut lock = sample();
        lock.modules[0].origin = Some(ModuleOrigin::Direct);
        let text = render(&lock);
        assert_eq!(
            text,
            render(&sample()).replace(
                &format!("nar = \"{NAR}\"\n"),
                &format!("nar = \"{NAR}\"\norigin = \"direct\"\n")
            )
        );
        assert_eq!(parse(&text, Path::new("kiln.lock")).unwrap(), lock);
        let error = parse(
            &text.replace("origin = \"direct\"", "origin = \"git\""),
            Path::new("kiln.lock"),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("unknown variant `git`"), "{error}");
    }

    /// A lock without `version` was reported as "version 0 … a newer kiln wrote it".
    #[test]
    fn lock_without_version_says_so() {
        let text = render(&sample()).replace("version = 1\n", "");
        let error = parse(&text, Path::new("kiln.lock")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "kiln.lock has no `version`, so kiln did not write it"
        );
        assert_eq!(
            crate::diagnostic::Hint::hint(&error).as_deref(),
            Some("run `kiln lock` to write it again")
        );
    }

    fn vendored_sample() -> LockFile {
        let mut lock = sample();
        lock.bases.clear();
        lock.go.toolchain_h1.clear();
        lock.vendor = Some(VendorPin {
            modules_txt: format!("sha256:{}", "cd".repeat(32)),
        });
        lock.modules[0].nar = None;
        lock.modules[0].vendored = true;
        lock
    }

    /// Issue 17: a vendored project's lock pins go.sum's hashes as they are, marks the
    /// vendored modules and records modules.txt's digest; it is version 2, every other lock
    /// stays version 1 (the golden text above), and both are read.
    #[test]
    fn vendored_lock_golden_text_round_trips() {
        let text = render(&vendored_sample());
        assert_eq!(
            text,
            format!(
                "# kiln.lock: written by `kiln lock`; commit it. Do not edit.\nversion = 2\n\n[vendor]\nmodules-txt = \"sha256:{}\"\n\n[go]\ngo = \"1.22\"\ntoolchain = \"go1.27.3\"\n\n[[module]]\npath = \"example.com/Fixture/lib\"\nversion = \"v1.4.2\"\nh1 = \"{H1}\"\ngo-mod = \"{GO_MOD}\"\nvendored = true\n\n[[module]]\npath = \"example.com/old\"\nversion = \"v2.0.0+incompatible\"\ngo-mod = \"{GO_MOD}\"\n\n[[static]]\nname = \"tzdata\"\nversion = \"2026.6\"\nurl = \"https://files.pythonhosted.org/packages/tzdata.whl\"\nsha256 = \"{}\"\n",
                "cd".repeat(32),
                "ab".repeat(32)
            )
        );
        assert_eq!(
            parse(&text, Path::new("kiln.lock")).unwrap(),
            vendored_sample()
        );
    }

    #[test]
    fn vendored_lock_rules_name_the_entry() {
        let file = Path::new("kiln.lock");
        let text = render(&vendored_sample());
        let cases = [
            (
                "a version 1 lock with [vendor]",
                text.replace("version = 2", "version = 1"),
                "kiln.lock: a `[vendor]` table belongs to version 2 and only there".to_owned(),
            ),
            (
                "a NAR hash in a vendored lock",
                text.replace("vendored = true\n", &format!("nar = \"{NAR}\"\nvendored = true\n")),
                "kiln.lock: module example.com/Fixture/lib@v1.4.2: a vendored project's lock has no `nar` (vendor/ is not the module's tree)".to_owned(),
            ),
            (
                "a vendored module without h1",
                text.replace(&format!("h1 = \"{H1}\"\n"), ""),
                "kiln.lock: module example.com/Fixture/lib@v1.4.2: a vendored module needs go.sum's `h1` of its zip".to_owned(),
            ),
            (
                "vendored in a lock without [vendor]",
                render(&sample()).replace(&format!("nar = \"{NAR}\"\n"), &format!("nar = \"{NAR}\"\nvendored = true\n")),
                "kiln.lock: module example.com/Fixture/lib@v1.4.2: `vendored` belongs to a lock with a `[vendor]` table".to_owned(),
            ),
            (
                "a bad modules.txt digest",
                text.replace(&"cd".repeat(32), "CD"),
                "kiln.lock: [vendor] modules-txt: `sha256:CD` is not sha256:<64 hex>".to_owned(),
            ),
        ];
        for (name, text, expected) in cases {
            assert_eq!(
                parse(&text, file).unwrap_err().to_string(),
                expected,
                "{name}"
            );
        }
        let error = parse("version = 3\n[go]\ntoolchain = \"go1\"\n", file).unwrap_err();
        assert_eq!(
            error.to_string(),
            "kiln.lock: version 3 is not one this kiln reads (it reads versions 1 and 2)"
        );
    }
}
