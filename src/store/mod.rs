//! The store: where built outputs live, named by the hash of everything that went into them.
//!
//! Layout (version 1), under the kiln home (`$KILN_HOME`, else `$XDG_CACHE_HOME/kiln`, else
//! `~/.cache/kiln`):
//!
//! ```text
//! v1/store/<hash>-<name>            outputs: a package folder, an image `…-<tag>.tar`, a Go
//!                                   module (`go-<name>-<version>`), a fetched Go release, a
//!                                   base image or the listing of its files, the static base
//! v1/meta/<hash>.json               per output: its name, kind, NAR hash and size, its recipe
//! v1/locks/<hash>.lock              one lock per output (flock), held while it is built
//! v1/locks/gc.lock                  shared by builds and locks, exclusive for `kiln gc`
//! v1/roots/<id>                     symlink to a `result` link, or to a kiln.lock (whose
//!                                   modules and Go releases gc keeps)
//! v1/tmp/<hash>/                    an output being built (removed when found stale)
//! v1/layers/<scheme>/<diff_id>/blob the layer cache: that tar compressed by `kiln push`,
//! v1/layers/<scheme>/<diff_id>/<hash>.json
//!                                   and a record per image output that has the layer (see
//!                                   `store::layer_cache`)
//! v1/go/cache/                      Go's build cache (content-addressed, shared)
//! v1/go/home/                       HOME for Go (its telemetry mode file: off)
//! v1/go/proxy/<hash>/               file:// module proxies: links to one lock's modules
//! v1/toolchains.json                cached Go toolchain identities
//! v1/projects/<key>/                per project folder (`<key>` from its canonical path):
//!   root                            the folder's path, for `kiln gc`
//!   sources.index                   what its last scan hashed (`builder::source_index`)
//!   build-<n>/, build-<n>.index     build folders kept for it (`builder::worktree`), one
//!                                   per kiln building it at once, locked by
//!                                   `locks/project-<key>-<n>.lock`
//! ```
//!
//! `<hash>` is the first 160 bits of a sha256 over the output's recipe, in Nix's base32
//! (32 characters), so two machines with the same inputs compute the same name. Outputs are
//! published whole: built under `tmp/`, hashed (NAR), recorded in `meta/`, made read-only,
//! then renamed into `store/`. A crash leaves only `tmp/` debris, which the next build of
//! that output, or `kiln gc`, removes. Two kiln processes building one output take turns on
//! its lock; the second finds it built. `kiln gc` takes the gc lock exclusively, so it waits
//! for running builds and never removes what they use.
//!
//! Durability: like Nix (whose `fsync-store-paths` is off by default), kiln does not wait for
//! the disk when it publishes: an edit's rebuild would otherwise wait for its 50 MiB program
//! and image to be written, which on a VM disk costs more than the rest of kiln's work. A
//! kill cannot tear an output (the kernel has the bytes), a power loss can: so each record
//! names the boot that wrote it (`unsynced`, from [`crate::output::boot_id`]), and an output
//! published in an earlier boot is trusted only after [`Store::realise`] has hashed it again
//! under its lock; it is then synced and its record rewritten without the mark, or, if its
//! bytes or its record did not survive, removed and made again (`Store::settle`). That
//! check runs once per output after a reboot. A kernel without boot ids gets synced outputs.
//!
//! The store knows the layout and the publish protocol, nothing of what an output means:
//! recipes are made by [`crate::recipes`], and which outputs a garbage-collection root pins
//! beyond the one it links to (a kiln.lock's modules, say) is asked of the caller of
//! [`Store::gc`]. Every output is made by one operation, [`Store::realise`]: lock it, look
//! again, clear a dead build's debris, build in `tmp/`, hash, record, publish. A store may
//! have a [`Substituter`] (the shared build cache, `crate::cache`): asked at the step before
//! building, it unpacks the output into the same `tmp/` folder, and the store publishes it
//! by the same steps once its NAR hash is the one the substituter vouched for; it is told
//! of each output built here, after its lock is released.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::diagnostic::{Hint, PathError};
use crate::nar::{NarError, nar_hash};
use crate::oci::json::to_canonical_vec;
use crate::output::{AtomicFile, OutputError, Registration, ScratchDir};

mod gc;
mod layer_cache;

pub use gc::{Corruption, GcReport, RootPins, VerifyReport};
pub use layer_cache::StoreLayerCache;

/// The layout version, the name of the folder under the kiln home.
pub const LAYOUT: &str = "v1";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot find the kiln home: none of KILN_HOME, XDG_CACHE_HOME and HOME is set")]
    NoHome,
    #[error(transparent)]
    Path(#[from] PathError),
    #[error(transparent)]
    Nar(#[from] NarError),
    #[error("{} is not a valid store record", .path.display())]
    InvalidMeta {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(
        "{what} has NAR hash {got} ({got_size} bytes), and {expected} ({expected_size} bytes) was expected"
    )]
    NarMismatch {
        what: String,
        expected: String,
        expected_size: u64,
        got: String,
        got_size: u64,
    },
}

impl Hint for StoreError {
    fn hint(&self) -> Option<String> {
        match self {
            StoreError::Output(inner) => inner.hint(),
            _ => None,
        }
    }
}

/// The name of a store path: `<hash>-<name>`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StoreName {
    hash: String,
    name: String,
}

impl StoreName {
    /// The name for an output whose recipe (canonical JSON) is `recipe`.
    pub fn new(recipe: &serde_json::Value, name: &str) -> Self {
        let bytes = to_canonical_vec(recipe).unwrap_or_default();
        let digest = sha2::Sha256::digest(&bytes);
        StoreName {
            hash: crate::nixbase32::encode(&digest[..20]),
            name: sanitise_name(name),
        }
    }

    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// `<hash>-<name>`.
    pub fn basename(&self) -> String {
        format!("{}-{}", self.hash, self.name)
    }

    /// Parse `<hash>-<name>` as found in `store/`.
    pub fn parse(basename: &str) -> Option<Self> {
        let (hash, name) = basename.split_once('-')?;
        let valid_hash = hash.len() == 32
            && hash
                .bytes()
                .all(|byte| byte.is_ascii_digit() || byte.is_ascii_lowercase());
        (valid_hash && !name.is_empty()).then(|| StoreName {
            hash: hash.to_owned(),
            name: name.to_owned(),
        })
    }
}

/// The name of a project's folder under `projects/`: 160 bits of the sha256 of its canonical
/// path, in Nix's base32.
fn project_key(canonical: &Path) -> String {
    let digest = sha2::Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    crate::nixbase32::encode(&digest[..20])
}

/// Store names keep to `[A-Za-z0-9+._?=-]`, as Nix's do; anything else becomes `_`.
pub fn sanitise_name(name: &str) -> String {
    name.chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || "+._?=-".contains(character) {
                character
            } else {
                '_'
            }
        })
        .collect()
}

/// What an output is. Recorded in `meta/` (as the kebab-case name) so that `kiln gc` knows,
/// without reading any recipe, which outputs are fetched inputs: those are kept when a root
/// that pins inputs cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutputKind {
    /// A built Go package: a folder with `bin/`.
    Package,
    /// A built image: a docker-archive that is also an OCI layout.
    Image,
    /// A registry base image pinned by digest, fetched as an OCI layout.
    BaseImage,
    /// A Go module fetched from a proxy (its `.mod`, zip and record).
    GoModule,
    /// A Go release fetched as Go's toolchain module, unpacked.
    GoToolchain,
    /// The static base's root filesystem, made from its pinned wheels.
    StaticBase,
    /// The files a base image's layers leave, listed from its [`OutputKind::BaseImage`].
    BaseFiles,
    /// The C toolchain of cgo builds (Zig), unpacked from its pinned wheel.
    CToolchain,
    /// The compiler scripts of one Zig target that the Zig output has none for (a glibc
    /// release's), made from its [`OutputKind::CToolchain`].
    CCompilers,
}

impl OutputKind {
    /// The name `meta/` records.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputKind::Package => "package",
            OutputKind::Image => "image",
            OutputKind::BaseImage => "base-image",
            OutputKind::GoModule => "go-module",
            OutputKind::GoToolchain => "go-toolchain",
            OutputKind::StaticBase => "static-base",
            OutputKind::BaseFiles => "base-files",
            OutputKind::CToolchain => "c-toolchain",
            OutputKind::CCompilers => "c-compilers",
        }
    }

    /// Whether the output is fetched from outside (and pinned by a lock) rather than built
    /// from the project: fetching it again may need the network.
    pub fn is_fetched(self) -> bool {
        match self {
            OutputKind::Package
            | OutputKind::Image
            | OutputKind::BaseFiles
            | OutputKind::CCompilers => false,
            OutputKind::BaseImage
            | OutputKind::GoModule
            | OutputKind::GoToolchain
            | OutputKind::StaticBase
            | OutputKind::CToolchain => true,
        }
    }
}

impl std::fmt::Display for OutputKind {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// What an output is made from: its kind, its recipe (a JSON document whose canonical bytes
/// name it) and the readable part of its store name. Made by [`crate::recipes`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipe {
    kind: OutputKind,
    document: serde_json::Value,
    name: StoreName,
}

impl Recipe {
    pub fn new(kind: OutputKind, document: serde_json::Value, label: &str) -> Self {
        let name = StoreName::new(&document, label);
        Recipe {
            kind,
            document,
            name,
        }
    }

    pub fn kind(&self) -> OutputKind {
        self.kind
    }

    pub fn document(&self) -> &serde_json::Value {
        &self.document
    }

    /// The store name the recipe gives.
    pub fn name(&self) -> &StoreName {
        &self.name
    }
}

/// An output [`Store::realise`] gave: where it is, and whether this call made it.
#[derive(Clone, Debug)]
pub struct Realised {
    pub path: PathBuf,
    pub fresh: bool,
}

/// What [`Store::stage`] gave.
#[derive(Debug)]
pub enum Staged<'store> {
    /// In the store already (or substituted into it): nothing to publish.
    Present(Realised),
    /// Built under `tmp/`, not yet published.
    Built(Unpublished<'store>),
}

impl Staged<'_> {
    /// The output in the store: published now if it was only built.
    pub fn publish(self) -> Result<Realised, StoreError> {
        match self {
            Staged::Present(realised) => Ok(realised),
            Staged::Built(unpublished) => unpublished.publish(),
        }
    }
}

/// An output built under `tmp/` and not yet in the store: its lock is held and its
/// temporary known to the interrupt handler until [`Unpublished::publish`]; dropped
/// unpublished (the caller failed), the temporary is removed.
#[derive(Debug)]
pub struct Unpublished<'store> {
    store: &'store Store,
    recipe: Recipe,
    built: Built,
    temp: PathBuf,
    registration: Option<Registration>,
    lock: Option<OutputLock>,
}

impl Unpublished<'_> {
    /// Where what was built is now (under `tmp/`; it moves when published).
    pub fn path(&self) -> &Path {
        &self.built.path
    }

    /// Hash, record and rename it into the store (as [`Store::realise`] does), release its
    /// lock and hand it to the substituter's `built`.
    pub fn publish(mut self) -> Result<Realised, StoreError> {
        let store = self.store;
        // Always there: only this method takes it, and it takes `self` by value.
        let registration = self
            .registration
            .take()
            .unwrap_or_else(|| Registration::new(&self.temp));
        let published = store.publish(&self.built, &self.recipe, registration, None);
        // Whatever is left: the build's scratch beside a published folder, or everything when
        // publishing failed (a published `temp` itself is gone by its rename).
        let _ = remove_tree(&self.temp);
        let published = published?;
        drop(self.lock.take());
        if let Some(SubstituterHook(substituter)) = &store.substituter {
            substituter.built(store, &self.recipe, &published);
        }
        Ok(Realised {
            path: published,
            fresh: true,
        })
    }
}

impl Drop for Unpublished<'_> {
    fn drop(&mut self) {
        if self.registration.is_some() {
            let _ = remove_tree(&self.temp);
        }
    }
}

/// What a build hands [`Store::realise`] to publish: the folder or file it made and, when the
/// build computed it from the bytes it wrote (`nar::copy_files_hashed`), its NAR hash, so
/// publishing need not read the output again.
#[derive(Clone, Debug)]
pub struct Built {
    pub path: PathBuf,
    pub nar_hash: Option<crate::nar::NarHash>,
}

impl From<PathBuf> for Built {
    fn from(path: PathBuf) -> Built {
        Built {
            path,
            nar_hash: None,
        }
    }
}

/// What `meta/<hash>.json` records about an output.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OutputRecord {
    pub path: String,
    pub kind: OutputKind,
    pub nar_hash: String,
    pub nar_size: u64,
    pub recipe: serde_json::Value,
    /// The boot in which the output was published without being synced to disk; absent once
    /// it is known to be on disk (it was synced, or checked after a reboot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsynced: Option<String>,
}

/// Where outputs can come from besides building them, and where what was built goes: the
/// shared build cache (`crate::cache`). The store asks it under the output's lock, after
/// finding the output missing and before building it, so a substituted output is published
/// by the same protocol, in the same `tmp/` folder, as a built one.
pub trait Substituter: Send + Sync {
    /// Fetch the output of `recipe` into `temp` (which does not exist yet): `Some` when
    /// `temp` now holds it, with the NAR hash it must have. `None` leaves it to be built
    /// (the substituter says why, if it was refused); whatever is at `temp` is removed.
    fn fetch(&self, recipe: &Recipe, temp: &Path) -> Option<Expected>;
    /// What was fetched for `recipe` did not hash to what was expected, as the store found
    /// when it hashed it to publish it: it is removed, and built.
    fn refused(&self, recipe: &Recipe, reason: &str);
    /// `recipe`'s output was built here and published at `path` (its lock released).
    fn built(&self, store: &Store, recipe: &Recipe, path: &Path);
}

/// The NAR hash (SRI) and size a fetched output must have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub nar_hash: String,
    pub nar_size: u64,
}

/// The store's substituter, if any.
#[derive(Clone)]
struct SubstituterHook(Arc<dyn Substituter>);

impl std::fmt::Debug for SubstituterHook {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Substituter")
    }
}

/// The store of one kiln home.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
    substituter: Option<SubstituterHook>,
    /// This boot's identity (`/proc/sys/kernel/random/boot_id`), when the kernel tells it:
    /// outputs are then published without waiting for the disk and marked with it (see
    /// "Durability" in the module doc). `None`: every output is synced before it is published.
    boot: Option<String>,
}

/// An exclusive lock on one output; released when dropped.
#[derive(Debug)]
pub struct OutputLock {
    _file: File,
}

/// A running build's share of the gc lock; released when dropped.
pub struct BuildGuard {
    _file: File,
}

/// The kiln home: `$KILN_HOME`, else `$XDG_CACHE_HOME/kiln`, else `~/.cache/kiln`.
/// Made absolute, since `result` links point into it.
pub fn kiln_home() -> Result<PathBuf, StoreError> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    let home = if let Some(home) = non_empty("KILN_HOME") {
        PathBuf::from(home)
    } else if let Some(cache) = non_empty("XDG_CACHE_HOME") {
        PathBuf::from(cache).join("kiln")
    } else {
        non_empty("HOME")
            .map(|home| PathBuf::from(home).join(".cache/kiln"))
            .ok_or(StoreError::NoHome)?
    };
    Ok(std::path::absolute(&home).map_err(PathError::read(&home))?)
}

fn read_only(path: &Path) -> Result<(), StoreError> {
    let metadata = std::fs::symlink_metadata(path).map_err(PathError::read(path))?;
    if metadata.file_type().is_symlink() {
        return Ok(());
    }
    if metadata.is_dir() {
        for entry in std::fs::read_dir(path).map_err(PathError::walk(path))? {
            read_only(&entry.map_err(PathError::walk(path))?.path())?;
        }
    }
    let mode = metadata.permissions().mode();
    let executable = metadata.is_dir() || mode & 0o100 != 0;
    let new_mode = if executable { 0o555 } else { 0o444 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(new_mode))
        .map_err(PathError::write(path))?;
    Ok(())
}

/// Remove a (read-only) output or temporary, returning the bytes it held.
pub fn remove_tree(path: &Path) -> Result<u64, StoreError> {
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(PathError::read(path)(error).into()),
    };
    if !metadata.is_dir() {
        std::fs::remove_file(path).map_err(PathError::remove(path))?;
        return Ok(metadata.len());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(PathError::write(path))?;
    let mut bytes = 0;
    for entry in std::fs::read_dir(path).map_err(PathError::walk(path))? {
        bytes += remove_tree(&entry.map_err(PathError::walk(path))?.path())?;
    }
    std::fs::remove_dir(path).map_err(PathError::remove(path))?;
    Ok(bytes)
}

fn tree_size(path: &Path) -> u64 {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => std::fs::read_dir(path)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|entry| tree_size(&entry.path()))
                    .sum()
            })
            .unwrap_or(0),
        Ok(metadata) => metadata.len(),
        Err(_) => 0,
    }
}

impl Store {
    /// The store of the kiln home, created if needed.
    pub fn open() -> Result<Self, StoreError> {
        Self::open_at(&kiln_home()?)
    }

    pub fn open_at(home: &Path) -> Result<Self, StoreError> {
        let root = home.join(LAYOUT);
        for folder in ["store", "meta", "locks", "roots", "tmp", "go/cache"] {
            let path = root.join(folder);
            std::fs::create_dir_all(&path).map_err(PathError::write(&path))?;
        }
        Ok(Store {
            root,
            substituter: None,
            boot: crate::output::boot_id().map(str::to_owned),
        })
    }

    /// This store, asking `substituter` for outputs before building them and telling it
    /// what was built.
    pub fn with_substituter(self, substituter: Arc<dyn Substituter>) -> Self {
        Store {
            substituter: Some(SubstituterHook(substituter)),
            ..self
        }
    }

    /// What `meta/` records of an output in the store.
    pub fn record(&self, name: &StoreName) -> Result<OutputRecord, StoreError> {
        let meta = self.meta_path(name);
        let bytes = std::fs::read(&meta).map_err(PathError::read(&meta))?;
        serde_json::from_slice(&bytes)
            .map_err(|source| StoreError::InvalidMeta { path: meta, source })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn store_dir(&self) -> PathBuf {
        self.root.join("store")
    }

    /// Where an output lives (whether or not it exists yet).
    pub fn path(&self, name: &StoreName) -> PathBuf {
        self.store_dir().join(name.basename())
    }

    pub fn go_cache(&self) -> PathBuf {
        self.root.join("go/cache")
    }

    /// HOME for the Go commands kiln runs (Go's telemetry mode file lives there).
    pub fn go_home(&self) -> PathBuf {
        self.root.join("go/home")
    }

    pub fn toolchain_cache(&self) -> PathBuf {
        self.root.join("toolchains.json")
    }

    /// The store's folder for the project (or `replace` folder) at `root`, made if missing:
    /// where kiln keeps what it knows of the folder between runs. Named by the canonical path,
    /// so one project reached through two paths shares it; `root` inside records the path.
    pub fn project_state(&self, root: &Path) -> Result<PathBuf, StoreError> {
        let canonical = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_owned());
        let folder = self.projects_dir().join(project_key(&canonical));
        let record = folder.join("root");
        let recorded = std::fs::read(&record).ok();
        if recorded.as_deref() != Some(canonical.as_os_str().as_encoded_bytes()) {
            std::fs::create_dir_all(&folder).map_err(PathError::write(&folder))?;
            crate::output::write_atomic(&record, canonical.as_os_str().as_encoded_bytes())?;
        }
        Ok(folder)
    }

    /// `v1/projects/`.
    pub fn projects_dir(&self) -> PathBuf {
        self.root.join("projects")
    }

    /// The lock of build folder `slot` of the project folder `state`, if nobody holds it.
    pub fn try_lock_project_slot(
        &self,
        state: &Path,
        slot: usize,
    ) -> Result<Option<OutputLock>, StoreError> {
        let key = state
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (path, file) = self.open_lock(&format!("project-{key}-{slot}.lock"))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(OutputLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(error)) => Err(PathError::write(&path)(error).into()),
        }
    }

    fn meta_path(&self, name: &StoreName) -> PathBuf {
        self.root.join("meta").join(format!("{}.json", name.hash()))
    }

    /// The temporary folder an output is built in.
    fn temp_dir(&self, name: &StoreName) -> PathBuf {
        self.root.join("tmp").join(name.hash())
    }

    /// Whether the output exists, recorded and published, and can be trusted: its record is
    /// whole, and it was synced or written in this boot. An output written in an earlier
    /// boot and never synced is not contained until [`Store::realise`] has checked it
    /// (`Store::settle`).
    pub fn contains(&self, name: &StoreName) -> bool {
        self.trusted_record(name).is_some() && std::fs::symlink_metadata(self.path(name)).is_ok()
    }

    /// The output's record, if it is whole and says the output can be trusted now.
    fn trusted_record(&self, name: &StoreName) -> Option<OutputRecord> {
        let record = self.record(name).ok()?;
        match &record.unsynced {
            None => Some(record),
            Some(boot) => (Some(boot) == self.boot.as_ref()).then_some(record),
        }
    }

    /// Decide about an output [`Store::contains`] does not trust (the caller holds its
    /// lock): one published without syncing in an earlier boot is hashed again; when it
    /// still has its NAR hash it is synced and its record says so, and it is contained.
    /// Anything else at its name (a torn record after a power loss, an output whose bytes
    /// did not reach the disk, a path without a record) is removed, to be made again.
    fn settle(&self, name: &StoreName) -> Result<bool, StoreError> {
        let path = self.path(name);
        let meta = self.meta_path(name);
        if std::fs::symlink_metadata(&path).is_err() {
            return Ok(false);
        }
        if let Ok(mut record) = self.record(name)
            && record.unsynced.is_some()
            && nar_hash(&path)
                .is_ok_and(|hash| hash.sri() == record.nar_hash && hash.size == record.nar_size)
        {
            sync_tree(&path)?;
            record.unsynced = None;
            write_record(&meta, &record, true)?;
            return Ok(true);
        }
        remove_tree(&path)?;
        match std::fs::remove_file(&meta) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => {
                Err(PathError::remove(&meta)(error).into())
            }
            _ => Ok(false),
        }
    }

    /// `locks/<file_name>`, opened (made if missing) for locking.
    fn open_lock(&self, file_name: &str) -> Result<(PathBuf, File), StoreError> {
        let path = self.root.join("locks").join(file_name);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(PathError::write(&path))?;
        Ok((path, file))
    }

    /// Open `locks/<file_name>` and lock it (shared or exclusive), calling `waiting` first if
    /// another process holds it. The lock lasts as long as the returned file.
    fn acquire(
        &self,
        file_name: &str,
        shared: bool,
        waiting: impl FnOnce(),
    ) -> Result<File, StoreError> {
        let (path, file) = self.open_lock(file_name)?;
        let attempt = if shared {
            file.try_lock_shared()
        } else {
            file.try_lock()
        };
        match attempt {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                waiting();
                let locked = if shared {
                    file.lock_shared()
                } else {
                    file.lock()
                };
                locked.map_err(PathError::write(&path))?;
            }
            Err(std::fs::TryLockError::Error(error)) => {
                return Err(PathError::write(&path)(error).into());
            }
        }
        Ok(file)
    }

    /// Take the lock that serialises identifying toolchains (hashing a GOROOT), so concurrent
    /// kilns on a cold store hash it once and the others read the cached identity.
    pub fn lock_toolchains(&self, waiting: impl FnOnce()) -> Result<OutputLock, StoreError> {
        let file = self.acquire("toolchains.lock", false, waiting)?;
        Ok(OutputLock { _file: file })
    }

    /// Take the lock of one output, calling `waiting` first if another process holds it.
    fn lock_output(
        &self,
        name: &StoreName,
        waiting: impl FnOnce(),
    ) -> Result<OutputLock, StoreError> {
        let file = self.acquire(&format!("{}.lock", name.hash()), false, waiting)?;
        Ok(OutputLock { _file: file })
    }

    /// A running build's share of the gc lock. Taking it also removes the debris of builds
    /// that died ([`Store::sweep_debris`]), so a killed kiln's leftovers go with the next run.
    pub fn build_guard(&self, waiting: impl FnOnce()) -> Result<BuildGuard, StoreError> {
        let file = self.acquire("gc.lock", true, waiting)?;
        self.sweep_debris();
        Ok(BuildGuard { _file: file })
    }

    /// Remove what dead builds left in `tmp/`: an output's folder or file whose lock nobody
    /// holds (a live build holds its output's lock for as long as the folder is in use), and
    /// kiln's owned temporaries whose owner is gone (`output::sweep`). Best effort: what
    /// cannot be removed now stays for the next run or `kiln gc`. Returns how many went.
    pub fn sweep_debris(&self) -> usize {
        let tmp = self.root.join("tmp");
        let mut removed = crate::output::sweep(&tmp);
        let Ok(entries) = std::fs::read_dir(&tmp) else {
            return removed;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // Output folders are named by their hash alone.
            if name.len() != 32 || !name.bytes().all(|byte| byte.is_ascii_alphanumeric()) {
                continue;
            }
            let lock_path = self.root.join("locks").join(format!("{name}.lock"));
            let Ok(lock) = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
            else {
                continue;
            };
            if lock.try_lock().is_ok() && remove_tree(&entry.path()).is_ok() {
                removed += 1;
            }
        }
        removed
    }

    /// The output `recipe` names, made first if the store lacks it: the one way an output
    /// enters the store. If it is missing, take its lock (calling `waiting` if another kiln
    /// holds it), look again (that kiln may have made it), clear a dead build's debris, and
    /// call `build` with the temporary path under `tmp/` (which does not exist yet: `build`
    /// makes the folder or file). `build` returns what to publish: that path, or one inside
    /// it. It is then hashed, recorded, made read-only and renamed into `store/`; whatever
    /// else `build` left under the temporary path is removed, on success or error alike.
    pub fn realise<E: From<StoreError>, B: Into<Built>>(
        &self,
        recipe: &Recipe,
        waiting: impl FnOnce(),
        build: impl FnOnce(&Path) -> Result<B, E>,
    ) -> Result<Realised, E> {
        Ok(self.stage(recipe, waiting, build)?.publish()?)
    }

    /// [`Store::realise`] up to the build, with publishing left to the caller: what was
    /// built comes back [`Unpublished`], its lock held, for the caller to read (an image
    /// writes a package's programs into its layer) and then publish, perhaps on another
    /// thread beside other work (the package's NAR hash beside the image's, issue 18). An
    /// output that was in the store or substituted comes back [`Staged::Present`].
    pub fn stage<E: From<StoreError>, B: Into<Built>>(
        &self,
        recipe: &Recipe,
        waiting: impl FnOnce(),
        build: impl FnOnce(&Path) -> Result<B, E>,
    ) -> Result<Staged<'_>, E> {
        let name = recipe.name();
        let path = self.path(name);
        if self.contains(name) {
            return Ok(Staged::Present(Realised { path, fresh: false }));
        }
        let lock = self.lock_output(name, waiting)?;
        if self.contains(name) || self.settle(name)? {
            return Ok(Staged::Present(Realised { path, fresh: false }));
        }
        self.clear_debris(name)?;
        let temp = self.temp_dir(name);
        if let Some(SubstituterHook(substituter)) = &self.substituter {
            let registration = Registration::new(&temp);
            if let Some(expected) = substituter.fetch(recipe, &temp) {
                match self.publish(
                    &Built::from(temp.clone()),
                    recipe,
                    registration,
                    Some(&expected),
                ) {
                    Ok(published) => {
                        return Ok(Staged::Present(Realised {
                            path: published,
                            fresh: true,
                        }));
                    }
                    Err(error) => substituter.refused(recipe, &error.to_string()),
                }
            } else {
                drop(registration);
            }
            let _ = remove_tree(&temp);
        }
        let registration = Registration::new(&temp);
        let built = match build(&temp) {
            Ok(built) => built.into(),
            Err(error) => {
                drop(registration);
                let _ = remove_tree(&temp);
                return Err(error);
            }
        };
        Ok(Staged::Built(Unpublished {
            store: self,
            recipe: recipe.clone(),
            built,
            temp,
            registration: Some(registration),
            lock: Some(lock),
        }))
    }

    /// Publish what was built at `built` (under `tmp/`) as the output of `recipe`: hash it,
    /// record it, make it read-only and rename it into place. The caller holds the output's
    /// lock; `registration` is the temporary's entry with the interrupt handler, released by
    /// the rename so Ctrl-C cannot remove a half-renamed output. With `expected` (a
    /// substituted output), a NAR hash or size that differs is an error and nothing is
    /// recorded.
    fn publish(
        &self,
        built: &Built,
        recipe: &Recipe,
        registration: Registration,
        expected: Option<&Expected>,
    ) -> Result<PathBuf, StoreError> {
        let name = recipe.name();
        let hashed = built.nar_hash;
        let built = built.path.as_path();
        read_only(built)?;
        let synced = self.boot.is_none();
        if synced {
            // The disk writes what was built while it is hashed; `sync_tree` below then
            // waits for what is left instead of starting it.
            start_writeback(built);
        }
        let hash = match hashed {
            Some(hash) => {
                // Every debug build (the test suite's) checks the build's own hash.
                debug_assert_eq!(
                    nar_hash(built).ok(),
                    Some(hash),
                    "{}: the hash computed while writing is not the output's",
                    built.display()
                );
                hash
            }
            None => nar_hash(built)?,
        };
        if let Some(expected) = expected
            && (hash.sri() != expected.nar_hash || hash.size != expected.nar_size)
        {
            return Err(StoreError::NarMismatch {
                what: format!("the fetched {}", name.basename()),
                expected: expected.nar_hash.clone(),
                expected_size: expected.nar_size,
                got: hash.sri(),
                got_size: hash.size,
            });
        }
        let record = OutputRecord {
            path: name.basename(),
            kind: recipe.kind(),
            nar_hash: hash.sri(),
            nar_size: hash.size,
            recipe: recipe.document().clone(),
            unsynced: if synced { None } else { self.boot.clone() },
        };
        let meta = self.meta_path(name);
        write_record(&meta, &record, synced)?;
        if synced {
            sync_tree(built)?;
        }
        let destination = self.path(name);
        registration
            .publish(|| std::fs::rename(built, &destination))
            .map_err(PathError::write(&destination))?;
        Ok(destination)
    }

    /// Remove leftovers of an interrupted build of `name` (the caller holds its lock).
    fn clear_debris(&self, name: &StoreName) -> Result<(), StoreError> {
        remove_tree(&self.temp_dir(name)).map(|_| ())
    }

    /// Bytes an output occupies.
    pub fn size_of(&self, name: &StoreName) -> u64 {
        tree_size(&self.path(name))
    }
}

/// Write an output's record to `meta` whole, through an owned temporary beside it; synced
/// when `synced` (else a reader after a power loss may find it torn, and
/// [`Store::settle`] then removes the output).
fn write_record(meta: &Path, record: &OutputRecord, synced: bool) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec_pretty(record).map_err(|source| StoreError::InvalidMeta {
        path: meta.to_owned(),
        source,
    })?;
    let folder = meta.parent().unwrap_or(Path::new("."));
    let mut file = AtomicFile::create_in(folder, meta)?;
    file.file()
        .write_all(&bytes)
        .map_err(PathError::write(meta))?;
    if synced {
        file.commit()?;
    } else {
        file.commit_unsynced()?;
    }
    Ok(())
}

/// Ask the kernel to start writing every file under `path` to disk, without waiting
/// (`sync_file_range(SYNC_FILE_RANGE_WRITE)`). Only a head start for [`sync_tree`], which
/// still waits for every byte and reports errors, so failures here are ignored.
fn start_writeback(path: &Path) {
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return;
    };
    if metadata.is_dir() {
        if let Ok(entries) = std::fs::read_dir(path) {
            for entry in entries.flatten() {
                start_writeback(&entry.path());
            }
        }
    } else if metadata.is_file()
        && let Ok(file) = File::open(path)
    {
        use std::os::fd::AsRawFd;
        // SAFETY: the descriptor is open for the whole call; the call only reads it.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
}

fn sync_tree(path: &Path) -> Result<(), StoreError> {
    let metadata = std::fs::symlink_metadata(path).map_err(PathError::read(path))?;
    if metadata.is_dir() {
        for entry in std::fs::read_dir(path).map_err(PathError::walk(path))? {
            sync_tree(&entry.map_err(PathError::walk(path))?.path())?;
        }
    } else if metadata.is_file() {
        File::open(path)
            .and_then(|file| file.sync_all())
            .map_err(PathError::write(path))?;
    }
    Ok(())
}

/// Point `link` at `target`, replacing whatever `link` was, atomically. The new link is made
/// inside an owned temporary folder beside `link` (a link itself cannot be locked), then
/// renamed over it, so a kiln killed in between leaves a folder the next one sweeps. A link
/// that already points at `target` is left as it is (an unchanged build writes nothing).
pub fn replace_symlink(target: &Path, link: &Path) -> Result<(), StoreError> {
    if std::fs::read_link(link).is_ok_and(|current| current == target) {
        return Ok(());
    }
    let folder = match link.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let scratch = ScratchDir::new_in(folder, "link-")?;
    let temp = scratch.path().join("link");
    std::os::unix::fs::symlink(target, &temp).map_err(PathError::write(&temp))?;
    std::fs::rename(&temp, link).map_err(PathError::write(link))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn recipe(text: &str) -> serde_json::Value {
        serde_json::json!({ "test": text })
    }

    /// Regression (crash tests): a build killed while Go's compilers ran left an output's
    /// `tmp/` folder that the next run did not remove when it built nothing there. Now every
    /// build sweeps `tmp/`: dead builds' leftovers go, a live build's folder stays.
    #[test]
    fn debris_of_dead_builds_is_swept_and_live_builds_are_left_alone() {
        let home = tempfile::tempdir().unwrap();
        let store = Store::open_at(home.path()).unwrap();
        let dead = StoreName::new(&recipe("dead"), "dead-1");
        let live = StoreName::new(&recipe("live"), "live-1");
        for name in [&dead, &live] {
            std::fs::create_dir_all(store.temp_dir(name).join("src")).unwrap();
        }
        std::fs::write(store.root().join("tmp/.kiln-tmp-lock-dead"), b"").unwrap();
        std::fs::write(store.root().join("tmp/not-kilns"), b"").unwrap();
        let _building = store.lock_output(&live, || {}).unwrap();
        assert_eq!(store.sweep_debris(), 2);
        assert!(!store.temp_dir(&dead).exists());
        assert!(store.temp_dir(&live).join("src").is_dir());
        assert!(store.root().join("tmp/not-kilns").exists());
    }

    #[test]
    fn names_are_stable_and_parse() {
        let name = StoreName::new(&recipe("a"), "example-0.1");
        assert_eq!(name.basename().len(), 32 + 1 + "example-0.1".len());
        assert_eq!(StoreName::new(&recipe("a"), "example-0.1"), name);
        assert_ne!(
            StoreName::new(&recipe("b"), "example-0.1").hash(),
            name.hash()
        );
        assert_eq!(StoreName::parse(&name.basename()), Some(name));
        assert_eq!(
            StoreName::new(&recipe("a"), "a b/c").basename()[33..],
            *"a_b_c"
        );
        assert_eq!(StoreName::parse("short-x"), None);
    }

    pub(super) fn package_recipe(text: &str) -> Recipe {
        Recipe::new(OutputKind::Package, recipe(text), &format!("{text}-1"))
    }

    /// Realise an output holding `bin/tool`.
    pub(super) fn realise_tool(store: &Store, recipe: &Recipe) -> Realised {
        store
            .realise(
                recipe,
                || {},
                |temp| {
                    let out = temp.join("out");
                    std::fs::create_dir_all(out.join("bin")).unwrap();
                    std::fs::write(out.join("bin/tool"), b"binary").unwrap();
                    std::fs::set_permissions(
                        out.join("bin/tool"),
                        std::fs::Permissions::from_mode(0o755),
                    )
                    .unwrap();
                    std::fs::write(temp.join("scratch"), b"left behind").unwrap();
                    Ok::<_, StoreError>(out)
                },
            )
            .unwrap()
    }

    #[test]
    fn realise_publishes_once_and_clears_its_temporary() {
        let temp = tempfile::tempdir().unwrap();
        let store = Store::open_at(temp.path()).unwrap();
        let recipe = package_recipe("pkg");
        let first = realise_tool(&store, &recipe);
        assert!(first.fresh);
        assert_eq!(first.path, store.path(recipe.name()));
        assert!(!store.temp_dir(recipe.name()).exists());
        let record: OutputRecord =
            serde_json::from_slice(&std::fs::read(store.meta_path(recipe.name())).unwrap())
                .unwrap();
        assert_eq!(record.kind, OutputKind::Package);
        assert_eq!(&record.recipe, recipe.document());
        let again = store
            .realise(
                &recipe,
                || {},
                |_| -> Result<PathBuf, StoreError> { panic!("built twice") },
            )
            .unwrap();
        assert!(!again.fresh);
        // Nothing but the owned temporaries' scheme is ever left in meta/.
        let meta: Vec<_> = std::fs::read_dir(store.root().join("meta"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(meta, [format!("{}.json", recipe.name().hash())]);
    }

    /// The same store as seen from another boot (`None`: a kernel without boot ids).
    fn in_boot(store: &Store, boot: Option<&str>) -> Store {
        Store {
            root: store.root.clone(),
            substituter: None,
            boot: boot.map(str::to_owned),
        }
    }

    fn record_of(store: &Store, recipe: &Recipe) -> OutputRecord {
        store.record(recipe.name()).unwrap()
    }

    /// Realise `recipe` in `store`, counting the builds (each writes `bin/tool` = `content`).
    fn realise_counted(store: &Store, recipe: &Recipe, content: &[u8], builds: &mut u32) {
        store
            .realise(
                recipe,
                || {},
                |temp| {
                    *builds += 1;
                    std::fs::create_dir_all(temp.join("bin")).unwrap();
                    std::fs::write(temp.join("bin/tool"), content).unwrap();
                    Ok::<_, StoreError>(temp.to_owned())
                },
            )
            .unwrap();
    }

    /// Outputs are published without waiting for the disk, marked with the boot that wrote
    /// them; in a later boot one is hashed again before it is used: kept (and marked synced)
    /// when its bytes reached the disk, made again when they did not (a power loss).
    #[test]
    fn unsynced_outputs_are_checked_after_a_reboot() {
        let temp = tempfile::tempdir().unwrap();
        let this_boot = Store::open_at(temp.path()).unwrap();
        let boot = this_boot.boot.clone().expect("Linux gives a boot id");
        let mut builds = 0;
        let kept = package_recipe("kept");
        let lost = package_recipe("lost");
        realise_counted(&this_boot, &kept, b"kept", &mut builds);
        realise_counted(&this_boot, &lost, b"lost", &mut builds);
        assert_eq!(builds, 2);
        assert_eq!(
            record_of(&this_boot, &kept).unsynced.as_deref(),
            Some(boot.as_str())
        );
        assert!(this_boot.contains(kept.name()));

        // The power went out before `lost`'s bytes reached the disk: the file is empty.
        let tool = this_boot.path(lost.name()).join("bin/tool");
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&tool, b"").unwrap();

        let next_boot = in_boot(&this_boot, Some("00000000-1111-2222-3333-444444444444"));
        assert!(!next_boot.contains(kept.name()) && !next_boot.contains(lost.name()));
        realise_counted(&next_boot, &kept, b"never built", &mut builds);
        assert_eq!(builds, 2, "an intact output is not built again");
        assert_eq!(record_of(&next_boot, &kept).unsynced, None);
        assert!(next_boot.contains(kept.name()));
        realise_counted(&next_boot, &lost, b"lost", &mut builds);
        assert_eq!(builds, 3, "a torn output is built again");
        assert_eq!(std::fs::read(&tool).unwrap(), b"lost");
        assert!(next_boot.verify().unwrap().corrupt.is_empty());
    }

    /// After a power loss the record itself may be torn, or missing beside a renamed output:
    /// the output is removed and made again, whatever the boot.
    #[test]
    fn an_output_with_a_torn_or_missing_record_is_made_again() {
        let temp = tempfile::tempdir().unwrap();
        let store = Store::open_at(temp.path()).unwrap();
        let mut builds = 0;
        let recipe = package_recipe("torn");
        realise_counted(&store, &recipe, b"one", &mut builds);
        std::fs::write(store.meta_path(recipe.name()), b"").unwrap();
        assert!(!store.contains(recipe.name()));
        realise_counted(&store, &recipe, b"two", &mut builds);
        std::fs::remove_file(store.meta_path(recipe.name())).unwrap();
        realise_counted(&store, &recipe, b"three", &mut builds);
        assert_eq!(builds, 3);
        let tool = store.path(recipe.name()).join("bin/tool");
        assert_eq!(std::fs::read(tool).unwrap(), b"three");
        assert!(store.contains(recipe.name()));
    }

    /// Without a boot id nothing could tell a later boot's reader to check, so every output
    /// is synced before it is published, and its record says nothing of boots.
    #[test]
    fn without_a_boot_id_outputs_are_synced() {
        let temp = tempfile::tempdir().unwrap();
        let store = in_boot(&Store::open_at(temp.path()).unwrap(), None);
        let mut builds = 0;
        let recipe = package_recipe("synced");
        realise_counted(&store, &recipe, b"synced", &mut builds);
        let meta = std::fs::read_to_string(store.meta_path(recipe.name())).unwrap();
        assert!(!meta.contains("unsynced"), "{meta}");
        assert!(in_boot(&store, Some("another")).contains(recipe.name()));
    }

    #[test]
    fn a_failed_build_leaves_nothing() {
        let temp = tempfile::tempdir().unwrap();
        let store = Store::open_at(temp.path()).unwrap();
        let recipe = package_recipe("broken");
        let error = store
            .realise(
                &recipe,
                || {},
                |temp| {
                    std::fs::create_dir_all(temp.join("src")).unwrap();
                    Err::<PathBuf, _>(StoreError::NoHome)
                },
            )
            .unwrap_err();
        assert!(matches!(error, StoreError::NoHome));
        assert!(!store.contains(recipe.name()));
        assert!(!store.temp_dir(recipe.name()).exists());
    }

    /// `stage` leaves what it built unpublished, its lock held (another kiln waits for it),
    /// readable where it was built; published on another thread it lands as `realise` puts
    /// it; dropped unpublished, nothing of it is left and its lock is free.
    #[test]
    fn staged_outputs_are_published_by_their_holder_or_leave_nothing() {
        let temp = tempfile::tempdir().unwrap();
        let store = Store::open_at(temp.path()).unwrap();
        let build = |temp: &Path| {
            let out = temp.join("out");
            std::fs::create_dir_all(out.join("bin")).unwrap();
            std::fs::write(out.join("bin/tool"), b"binary").unwrap();
            std::fs::write(temp.join("scratch"), b"left behind").unwrap();
            Ok::<_, StoreError>(out)
        };
        let recipe = package_recipe("staged");
        let Staged::Built(unpublished) = store.stage(&recipe, || {}, build).unwrap() else {
            panic!("not built")
        };
        assert_eq!(
            std::fs::read(unpublished.path().join("bin/tool")).unwrap(),
            b"binary"
        );
        assert!(!store.contains(recipe.name()));
        let name = recipe.name().clone();
        let (_, lock_file) = store.open_lock(&format!("{}.lock", name.hash())).unwrap();
        assert!(
            matches!(lock_file.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
            "the output's lock is held while it is unpublished"
        );
        let published = std::thread::scope(|scope| {
            scope
                .spawn(move || unpublished.publish())
                .join()
                .unwrap()
                .unwrap()
        });
        assert!(published.fresh);
        assert_eq!(published.path, store.path(&name));
        assert!(store.contains(&name));
        assert!(!store.temp_dir(&name).exists());
        assert!(matches!(
            store.stage(&recipe, || {}, build).unwrap(),
            Staged::Present(Realised { fresh: false, .. })
        ));

        let dropped = package_recipe("dropped");
        let Staged::Built(unpublished) = store.stage(&dropped, || {}, build).unwrap() else {
            panic!("not built")
        };
        drop(unpublished);
        assert!(!store.contains(dropped.name()));
        assert!(!store.temp_dir(dropped.name()).exists());
        drop(store.lock_output(dropped.name(), || panic!("the lock is still held")));
    }

    #[test]
    fn kinds_are_recorded_by_their_names() {
        let kinds = [
            (OutputKind::Package, "package", false),
            (OutputKind::Image, "image", false),
            (OutputKind::BaseImage, "base-image", true),
            (OutputKind::GoModule, "go-module", true),
            (OutputKind::GoToolchain, "go-toolchain", true),
            (OutputKind::StaticBase, "static-base", true),
            (OutputKind::BaseFiles, "base-files", false),
            (OutputKind::CToolchain, "c-toolchain", true),
            (OutputKind::CCompilers, "c-compilers", false),
        ];
        for (kind, name, fetched) in kinds {
            assert_eq!(kind.as_str(), name);
            assert_eq!(serde_json::to_value(kind).unwrap(), name);
            assert_eq!(
                serde_json::from_value::<OutputKind>(serde_json::json!(name)).unwrap(),
                kind
            );
            assert_eq!(kind.is_fetched(), fetched, "{name}");
        }
    }

    #[test]
    fn replacing_a_link_leaves_no_temporary() {
        let temp = tempfile::tempdir().unwrap();
        let link = temp.path().join("result");
        replace_symlink(Path::new("/nowhere/a"), &link).unwrap();
        replace_symlink(Path::new("/nowhere/b"), &link).unwrap();
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("/nowhere/b"));
        assert_eq!(std::fs::read_dir(temp.path()).unwrap().count(), 1);
    }
}
