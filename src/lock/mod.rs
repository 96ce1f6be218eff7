//! `kiln lock`: pin every module a build may use, fetched through the GOPROXY protocol (or
//! from version control, by Go, for modules GOPROXY and GOPRIVATE send `direct`) and verified
//! before anything enters the store.
//!
//! The module set is what go.sum pins: a `h1:` of the zip marks a module whose code the build
//! may compile, a `/go.mod` hash one whose go.mod Go reads to walk the module graph. go.sum is
//! the authority (kiln consults no checksum database): a fetched file whose hash differs is
//! refused. A project without go.sum but with a gomod2nix.toml is locked from that file: its
//! NAR hashes are the authority then, and the `h1:` hashes are computed. A vendored project
//! (vendor/modules.txt) fetches nothing: vendor/ is the source of its modules, and the lock
//! records go.sum's hashes as they are, the vendored modules marked and modules.txt's digest
//! (see [`lockfile`] for what that pins and why there is no NAR hash).
//!
//! Each module lands in the store as a `go-module/1` output named by its hashes (so one
//! download serves every project that pins the same bytes): `go.mod`, the zip as served
//! (`module.zip`, when the code is used) and `module.json` (the lock entry). Verified modules
//! wait in a staging folder under `tmp/` until every module of the lock verified, so a lock
//! that fails changes nothing in the store. A re-run finds them there and fetches nothing.
//!
//! The files: [`mod@wants`] (what go.sum or gomod2nix.toml pins, and how a lock differs from it),
//! [`fetch`] (fetching, verifying and staging modules), [`module_proxy`] (the `file://`
//! GOPROXY a build reads), [`lockfile`] (the kiln.lock format) and [`locker`] (`kiln lock`'s rules). Module versions
//! are ordered by [`crate::gomod::module::compare_versions`]; the Go release kiln.lock pins
//! is fetched by [`crate::toolchain::release`].

pub mod fetch;
pub mod locker;
pub mod lockfile;
pub mod module_proxy;
pub mod wants;

pub use fetch::{FetchProgress, Fetched, Locked, Sources, lock};
pub use module_proxy::proxy_folder;
pub use wants::{PinOrigin, Wanted, Wants, differences, read_go_mod, wants};

use std::path::{Path, PathBuf};

use crate::diagnostic::{Hint, PathError};
use crate::gomod::gomod2nix;
use crate::gomod::modfile::{self};
use crate::gomod::modzip::{self};
use crate::gomod::sumfile;
use crate::recipes;
use crate::store::{RootPins, Store, StoreError, StoreName};

use self::lockfile::{LockFile, LockedModule};

/// The lock's file name, beside go.mod.
pub const LOCK_FILE: &str = "kiln.lock";
/// gomod2nix's file name.
pub const GOMOD2NIX_FILE: &str = "gomod2nix.toml";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("no go.mod in {}", .0.display())]
    NoGoMod(PathBuf),
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("{} is not a regular file", .0.display())]
    NotRegular(PathBuf),
    #[error(transparent)]
    ModFile(#[from] modfile::ModFileError),
    #[error(transparent)]
    SumFile(#[from] sumfile::SumFileError),
    #[error(transparent)]
    Gomod2nix(#[from] gomod2nix::Gomod2nixError),
    #[error(transparent)]
    LockFile(#[from] lockfile::LockFileError),
    #[error(
        "go.mod requires {requirements}, and nothing pins them: there is no go.sum (nor gomod2nix.toml, nor vendor/ folder)"
    )]
    NoGoSum { requirements: String },
    #[error("go.mod:{line}: {module} {version} has no go.sum entry")]
    MissingSum {
        module: String,
        version: String,
        line: usize,
    },
    #[error("go.mod:{line}: {module} {version} is not in gomod2nix.toml")]
    MissingGomod2nix {
        module: String,
        version: String,
        line: usize,
    },
    #[error("{module}: the .mod the proxy serves is not the go.mod in its zip")]
    ModNotZipGoMod { module: String },
    #[error(
        "go.mod:{line}: replace {old} => {new}: a local folder must be a relative path inside or beside the project, so the build is the same in any folder"
    )]
    AbsoluteReplace {
        old: String,
        new: String,
        line: usize,
    },
    #[error("{module}: {what}{} failed verification: got {actual}, {source_file} says {expected}", fetched_from(*.origin))]
    Mismatch {
        module: String,
        what: &'static str,
        actual: String,
        expected: String,
        source_file: &'static str,
        /// Where the bytes came from, when not a proxy (the hint differs).
        origin: Option<self::lockfile::ModuleOrigin>,
    },
    #[error(transparent)]
    Toolchain(#[from] crate::toolchain::ToolchainError),
    #[error("cannot fetch {module}")]
    Fetch {
        module: String,
        #[source]
        source: Box<crate::gomod::proxy::ProxyError>,
    },
    #[error("cannot fetch {module} direct from version control")]
    FetchDirect {
        module: String,
        #[source]
        source: Box<crate::gomod::direct::DirectError>,
    },
    #[error(transparent)]
    Zip(#[from] modzip::ModZipError),
    #[error(transparent)]
    Module(#[from] crate::gomod::module::ModuleError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vendor(#[from] crate::gomod::vendor::VendorError),
    #[error(
        "vendor/modules.txt:{line}: {module} {version} is vendored, and go.sum has no `h1:` line for {what}"
    )]
    VendoredWithoutSum {
        module: String,
        version: String,
        line: usize,
        what: &'static str,
    },
    #[error(
        "go.sum pins the zip of {module} {version} and not its go.mod (no `{version}/go.mod` line)"
    )]
    SumWithoutGoMod { module: String, version: String },
    #[error(
        "cannot write gomod2nix.toml for a vendored project: it holds the NAR hash of each module as Go downloads it, and vendor/ holds only the packages the build imports (no go.mod, tests or testdata), so kiln cannot compute them"
    )]
    Gomod2nixVendored,
    #[error("module {module} is not in the store")]
    NotFetched { module: String },
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
}

impl Hint for LockError {
    fn hint(&self) -> Option<String> {
        match self {
            LockError::Gomod2nix(inner) => inner.hint(),
            LockError::Store(inner) => inner.hint(),
            LockError::LockFile(inner) => inner.hint(),
            LockError::Toolchain(inner) => inner.hint(),
            LockError::Output(inner) => inner.hint(),
            LockError::Vendor(inner) => inner.hint(),
            LockError::VendoredWithoutSum { .. } | LockError::SumWithoutGoMod { .. } => Some(
                "run `go mod tidy` and `go mod vendor` to write go.sum's lines for it".to_owned(),
            ),
            LockError::Gomod2nixVendored => Some(
                "lock without vendor/ to write gomod2nix.toml (move vendor/ aside, run the lock with the network; `go mod vendor` brings it back), or build with kiln from vendor/".to_owned(),
            ),
            LockError::NoGoMod(_) => Some("`kiln init` makes a Go project; or run `go mod init MODULE` there".to_owned()),
            LockError::NotRegular(_) => Some("replace it with the file itself".to_owned()),
            LockError::NoGoSum { .. } => Some("run `go mod tidy` to write go.sum, then `kiln lock` (kiln locks what go.sum pins); or vendor them with `go mod vendor`".to_owned()),
            LockError::MissingSum { .. } => Some("run `go mod tidy` to update go.sum".to_owned()),
            LockError::MissingGomod2nix { .. } => Some("regenerate it (`gomod2nix generate`), or write go.sum (`go mod tidy`) and lock from that".to_owned()),
            LockError::ModNotZipGoMod { .. } => Some("the proxy is broken or tampered with".to_owned()),
            LockError::NotFetched { .. } => Some("run `kiln lock` to fetch what kiln.lock pins".to_owned()),
            LockError::Mismatch {
                origin: Some(self::lockfile::ModuleOrigin::Direct),
                source_file,
                ..
            } => Some(format!(
                "the repository's revision is not the one {source_file} pinned (a tag moved or was pushed again?); GONOSUMDB and GOPRIVATE only keep Go from asking a checksum database, {source_file} still pins the module, in Go as in kiln; if the new content is meant, remove its lines from go.sum and run `go mod tidy`"
            )),
            LockError::Mismatch {
                source_file: GOMOD2NIX_FILE,
                ..
            } => Some(
                "gomod2nix.toml's hash is not that module's (written for another version, or edited?): regenerate it with `gomod2nix generate` (or `kiln lock --gomod2nix` from go.sum), or lock from go.sum alone: kiln does not need gomod2nix.toml".to_owned(),
            ),
            _ => None,
        }
    }
}

/// ` (fetched direct from version control)` for a direct module's mismatch.
fn fetched_from(origin: Option<self::lockfile::ModuleOrigin>) -> &'static str {
    match origin {
        Some(self::lockfile::ModuleOrigin::Direct) => " (fetched direct from version control)",
        None => "",
    }
}

/// A project file's text, `None` when it does not exist. A named pipe or a device where the
/// file belongs is an error, not a read that blocks forever or never ends.
fn read_project_file(path: &Path) -> Result<Option<String>, LockError> {
    match std::fs::metadata(path) {
        Ok(metadata) if !metadata.is_file() => return Err(LockError::NotRegular(path.to_owned())),
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(PathError::read(path)(error).into()),
    }
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(PathError::read(path)(error).into()),
    }
}

/// Read the project's kiln.lock, if it has one.
pub fn read_lock(root: &Path) -> Result<Option<LockFile>, LockError> {
    match read_project_file(&root.join(LOCK_FILE))? {
        Some(text) => Ok(Some(lockfile::parse(&text, Path::new(LOCK_FILE))?)),
        None => Ok(None),
    }
}

/// The store output of a locked module, if it is there.
pub fn locked_module_path(store: &Store, module: &LockedModule) -> Option<PathBuf> {
    let name = module.store_name();
    store.contains(&name).then(|| store.path(&name))
}

/// What a garbage-collection root that points at `target` pins besides itself: for a
/// kiln.lock, its modules, fetched Go releases, base images and static base (so a project's
/// builds keep working offline after `kiln gc`). Anything else is a link to an output.
pub fn pinned_outputs(target: &Path) -> RootPins {
    if target.file_name() != Some(std::ffi::OsStr::new(LOCK_FILE)) || !target.is_file() {
        return RootPins::Link;
    }
    let Some(lock) = std::fs::read_to_string(target)
        .ok()
        .and_then(|text| lockfile::parse(&text, target).ok())
    else {
        return RootPins::Unreadable;
    };
    // A vendored project's modules are in vendor/, none in the store.
    let mut names: Vec<StoreName> = if lock.vendor.is_some() {
        Vec::new()
    } else {
        lock.modules.iter().map(LockedModule::store_name).collect()
    };
    for (host, h1) in &lock.go.toolchain_h1 {
        names.push(
            recipes::go_toolchain(&lock.go.toolchain, host, h1)
                .name()
                .clone(),
        );
    }
    for base in &lock.bases {
        if let Ok(digest) = base.digest.parse() {
            names.push(recipes::base_image(&digest).name().clone());
        }
    }
    if !lock.statics.is_empty()
        && let Ok(recipe) = crate::static_base::recipe(&lock.statics)
    {
        names.push(recipe.name().clone());
    }
    for pin in &lock.zig {
        names.push(pin.recipe().name().clone());
    }
    RootPins::Outputs(names)
}
