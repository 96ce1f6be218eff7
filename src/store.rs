//! The store: where built outputs live, named by the hash of everything that went into them.
//!
//! Layout (version 1), under the kiln home (`$KILN_HOME`, else `$XDG_CACHE_HOME/kiln`, else
//! `~/.cache/kiln`):
//!
//! ```text
//! v1/store/<hash>-<name>            outputs: a package folder, an image `…-<tag>.tar`, a Go
//!                                   module (`go-<name>-<version>`) or a fetched Go release
//! v1/meta/<hash>.json               per output: its name, kind, NAR hash and size, its recipe
//! v1/locks/<hash>.lock              one lock per output (flock), held while it is built
//! v1/locks/gc.lock                  shared by builds and locks, exclusive for `kiln gc`
//! v1/roots/<id>                     symlink to a `result` link, or to a kiln.lock (whose
//!                                   modules and Go releases gc keeps)
//! v1/tmp/<hash>/                    an output being built (removed when found stale)
//! v1/go/cache/                      Go's build cache (content-addressed, shared)
//! v1/go/home/                       HOME for Go (its telemetry mode file: off)
//! v1/go/proxy/<hash>/               file:// module proxies: links to one lock's modules
//! v1/toolchains.json                cached Go toolchain identities
//! ```
//!
//! `<hash>` is the first 160 bits of a sha256 over the output's recipe, in Nix's base32
//! (32 characters), so two machines with the same inputs compute the same name. Outputs are
//! published whole: built under `tmp/`, hashed (NAR), recorded in `meta/`, made read-only,
//! then renamed into `store/`. A crash leaves only `tmp/` debris, which the next build of
//! that output, or `kiln gc`, removes. Two kiln processes building one output take turns on
//! its lock; the second finds it built. `kiln gc` takes the gc lock exclusively, so it waits
//! for running builds and never removes what they use.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::nar::{NarError, nar_hash};
use crate::oci::json::to_canonical_vec;

/// The layout version, the name of the folder under the kiln home.
pub const LAYOUT: &str = "v1";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot find the kiln home: none of KILN_HOME, XDG_CACHE_HOME and HOME is set")]
    NoHome,
    #[error("{}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Nar(#[from] NarError),
    #[error("{} is not a valid store record", .path.display())]
    InvalidMeta {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
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
            name: sanitise(name),
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

/// Store names keep to `[A-Za-z0-9+._?=-]`, as Nix's do; anything else becomes `_`.
fn sanitise(name: &str) -> String {
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

/// What `meta/<hash>.json` records about an output.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OutputRecord {
    pub path: String,
    pub kind: String,
    pub nar_hash: String,
    pub nar_size: u64,
    pub recipe: serde_json::Value,
}

/// The store of one kiln home.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

/// An exclusive lock on one output; released when dropped.
pub struct OutputLock {
    _file: File,
}

/// A running build's share of the gc lock; released when dropped.
pub struct BuildGuard {
    _file: File,
}

/// What a garbage collection did.
#[derive(Debug, Default, Serialize)]
pub struct GcReport {
    pub removed_paths: Vec<String>,
    pub freed_bytes: u64,
    pub kept_paths: usize,
    pub stale_roots: usize,
    pub debris: usize,
}

/// What verification found.
#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    pub checked: usize,
    pub corrupt: Vec<Corruption>,
    pub unrecorded: Vec<String>,
    pub debris: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Corruption {
    pub path: String,
    pub expected: String,
    pub actual: String,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.corrupt.is_empty() && self.unrecorded.is_empty()
    }
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
    std::path::absolute(&home).map_err(io_error(&home))
}

fn read_only(path: &Path) -> Result<(), StoreError> {
    let metadata = std::fs::symlink_metadata(path).map_err(io_error(path))?;
    if metadata.file_type().is_symlink() {
        return Ok(());
    }
    if metadata.is_dir() {
        for entry in std::fs::read_dir(path).map_err(io_error(path))? {
            read_only(&entry.map_err(io_error(path))?.path())?;
        }
    }
    let mode = metadata.permissions().mode();
    let executable = metadata.is_dir() || mode & 0o100 != 0;
    let new_mode = if executable { 0o555 } else { 0o444 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(new_mode))
        .map_err(io_error(path))
}

/// Remove a (read-only) output or temporary, returning the bytes it held.
pub fn remove_tree(path: &Path) -> Result<u64, StoreError> {
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(io_error(path)(error)),
    };
    if !metadata.is_dir() {
        std::fs::remove_file(path).map_err(io_error(path))?;
        return Ok(metadata.len());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(io_error(path))?;
    let mut bytes = 0;
    for entry in std::fs::read_dir(path).map_err(io_error(path))? {
        bytes += remove_tree(&entry.map_err(io_error(path))?.path())?;
    }
    std::fs::remove_dir(path).map_err(io_error(path))?;
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
            std::fs::create_dir_all(&path).map_err(io_error(&path))?;
        }
        Ok(Store { root })
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

    fn meta_path(&self, name: &StoreName) -> PathBuf {
        self.root.join("meta").join(format!("{}.json", name.hash()))
    }

    /// The temporary folder an output is built in.
    pub fn temp_dir(&self, name: &StoreName) -> PathBuf {
        self.root.join("tmp").join(name.hash())
    }

    /// Whether the output exists, recorded and published.
    pub fn contains(&self, name: &StoreName) -> bool {
        self.meta_path(name).is_file() && std::fs::symlink_metadata(self.path(name)).is_ok()
    }

    /// Open `locks/<file_name>` and lock it (shared or exclusive), calling `waiting` first if
    /// another process holds it. The lock lasts as long as the returned file.
    fn acquire(
        &self,
        file_name: &str,
        shared: bool,
        waiting: impl FnOnce(),
    ) -> Result<File, StoreError> {
        let path = self.root.join("locks").join(file_name);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_error(&path))?;
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
                locked.map_err(io_error(&path))?;
            }
            Err(std::fs::TryLockError::Error(error)) => return Err(io_error(&path)(error)),
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
    pub fn lock_output(
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

    /// Publish what was built at `built` (under `tmp/`) as the output `name`: hash it,
    /// record it, make it read-only and rename it into place. The caller holds the output's
    /// lock; `registration` is `built`'s entry with the interrupt handler, released by the
    /// rename so Ctrl-C cannot remove a half-renamed output.
    pub fn publish(
        &self,
        built: &Path,
        name: &StoreName,
        kind: &str,
        recipe: &serde_json::Value,
        registration: crate::output::Registration,
    ) -> Result<PathBuf, StoreError> {
        read_only(built)?;
        let hash = nar_hash(built)?;
        let record = OutputRecord {
            path: name.basename(),
            kind: kind.to_owned(),
            nar_hash: hash.sri(),
            nar_size: hash.size,
            recipe: recipe.clone(),
        };
        let meta = self.meta_path(name);
        let bytes =
            serde_json::to_vec_pretty(&record).map_err(|source| StoreError::InvalidMeta {
                path: meta.clone(),
                source,
            })?;
        write_synced(&meta, &bytes)?;
        sync_tree(built)?;
        let destination = self.path(name);
        registration
            .publish(|| std::fs::rename(built, &destination))
            .map_err(io_error(&destination))?;
        Ok(destination)
    }

    /// Record `link` (a `result` symlink) as a garbage-collection root.
    pub fn add_root(&self, link: &Path) -> Result<(), StoreError> {
        let absolute = std::path::absolute(link).map_err(io_error(link))?;
        let digest = sha2::Sha256::digest(absolute.as_os_str().as_encoded_bytes());
        let root = self
            .root
            .join("roots")
            .join(crate::nixbase32::encode(&digest[..20]));
        replace_symlink(&absolute, &root)
    }

    /// Record the project lock `lock_file` (a kiln.lock) as a garbage-collection root: the
    /// modules it pins stay while the file exists, so a project's builds keep working offline
    /// after `kiln gc`.
    pub fn add_lock_root(&self, lock_file: &Path) -> Result<(), StoreError> {
        self.add_root(lock_file)
    }

    /// Remove every output no root reaches, stale roots, orphan records and debris.
    pub fn gc(&self, waiting: impl FnOnce()) -> Result<GcReport, StoreError> {
        // Held until gc returns: builds wait for it, and it waits for running builds.
        let _lock = self.acquire("gc.lock", false, waiting)?;
        let mut report = GcReport::default();
        let store_dir = self.store_dir();
        let mut live = BTreeSet::new();
        let mut keep_modules = false;
        let roots = self.root.join("roots");
        for entry in std::fs::read_dir(&roots).map_err(io_error(&roots))? {
            let root = entry.map_err(io_error(&roots))?.path();
            match locked_modules(&root) {
                LockRoot::Pins(modules) => {
                    live.extend(modules);
                    continue;
                }
                // A kiln.lock mid-merge (or from a newer kiln): keep every module rather than
                // guess, so builds still run offline once it is fixed.
                LockRoot::Unreadable => {
                    keep_modules = true;
                    continue;
                }
                LockRoot::NotALock => {}
            }
            let reached = std::fs::read_link(&root)
                .ok()
                .and_then(|link| std::fs::read_link(&link).ok())
                .filter(|target| target.parent() == Some(store_dir.as_path()))
                .and_then(|target| {
                    target
                        .file_name()
                        .map(|name| name.to_string_lossy().into_owned())
                });
            match reached {
                Some(name) => {
                    live.insert(name);
                }
                None => {
                    std::fs::remove_file(&root).map_err(io_error(&root))?;
                    report.stale_roots += 1;
                }
            }
        }
        let mut live_hashes = BTreeSet::new();
        for entry in std::fs::read_dir(&store_dir).map_err(io_error(&store_dir))? {
            let path = entry.map_err(io_error(&store_dir))?.path();
            let basename = path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            let kept_module = keep_modules
                && StoreName::parse(&basename).is_some_and(|name| {
                    std::fs::read(self.meta_path(&name))
                        .ok()
                        .and_then(|bytes| serde_json::from_slice::<OutputRecord>(&bytes).ok())
                        .is_some_and(|record| {
                            matches!(
                                record.kind.as_str(),
                                "go-module" | "go-toolchain" | "base-image" | "static-base"
                            )
                        })
                });
            if live.contains(&basename) || kept_module {
                report.kept_paths += 1;
                if let Some(name) = StoreName::parse(&basename) {
                    live_hashes.insert(name.hash);
                }
                continue;
            }
            report.freed_bytes += remove_tree(&path)?;
            report.removed_paths.push(basename);
        }
        let meta = self.root.join("meta");
        for entry in std::fs::read_dir(&meta).map_err(io_error(&meta))? {
            let path = entry.map_err(io_error(&meta))?.path();
            let hash = path
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !live_hashes.contains(&hash) {
                std::fs::remove_file(&path).map_err(io_error(&path))?;
            }
        }
        let tmp = self.root.join("tmp");
        for entry in std::fs::read_dir(&tmp).map_err(io_error(&tmp))? {
            let path = entry.map_err(io_error(&tmp))?.path();
            report.freed_bytes += remove_tree(&path)?;
            report.debris += 1;
        }
        // Module proxy folders are links into the store: one left half-made, or pointing at a
        // module removed above, goes (a build makes it again from its lock).
        let proxies = self.root.join("go/proxy");
        if let Ok(entries) = std::fs::read_dir(&proxies) {
            for entry in entries {
                let path = entry.map_err(io_error(&proxies))?.path();
                let half_made = path.file_name().is_some_and(|name| {
                    let name = name.to_string_lossy();
                    name.starts_with(crate::output::TEMP_PREFIX) || name.starts_with(".tmp-")
                });
                if half_made || has_dangling_link(&path) {
                    report.freed_bytes += remove_tree(&path)?;
                    report.debris += usize::from(half_made);
                }
            }
        }
        Ok(report)
    }

    /// Re-hash every output and compare with its record.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport::default();
        let store_dir = self.store_dir();
        let mut names: Vec<PathBuf> = std::fs::read_dir(&store_dir)
            .map_err(io_error(&store_dir))?
            .map(|entry| entry.map(|entry| entry.path()))
            .collect::<Result<_, _>>()
            .map_err(io_error(&store_dir))?;
        names.sort();
        for path in names {
            let basename = path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            let Some(name) = StoreName::parse(&basename) else {
                report.unrecorded.push(basename);
                continue;
            };
            let meta = self.meta_path(&name);
            let record: OutputRecord = match std::fs::read(&meta) {
                Ok(bytes) => {
                    serde_json::from_slice(&bytes).map_err(|source| StoreError::InvalidMeta {
                        path: meta.clone(),
                        source,
                    })?
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    report.unrecorded.push(basename);
                    continue;
                }
                Err(error) => return Err(io_error(&meta)(error)),
            };
            report.checked += 1;
            let actual = match nar_hash(&path) {
                Ok(hash) => hash.sri(),
                Err(error) => format!("unreadable: {error}"),
            };
            if actual != record.nar_hash || record.path != basename {
                report.corrupt.push(Corruption {
                    path: path.display().to_string(),
                    expected: record.nar_hash,
                    actual,
                });
            }
        }
        let tmp = self.root.join("tmp");
        for entry in std::fs::read_dir(&tmp).map_err(io_error(&tmp))? {
            report
                .debris
                .push(entry.map_err(io_error(&tmp))?.path().display().to_string());
        }
        Ok(report)
    }

    /// Remove leftovers of an interrupted build of `name` (the caller holds its lock).
    pub fn clear_debris(&self, name: &StoreName) -> Result<(), StoreError> {
        remove_tree(&self.temp_dir(name)).map(|_| ())
    }

    /// Bytes an output occupies.
    pub fn size_of(&self, name: &StoreName) -> u64 {
        tree_size(&self.path(name))
    }
}

/// Whether a link under `folder` points nowhere.
fn has_dangling_link(folder: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let path = entry.path();
        match entry.file_type() {
            Ok(kind) if kind.is_symlink() => !path.exists(),
            Ok(kind) if kind.is_dir() => has_dangling_link(&path),
            _ => false,
        }
    })
}

/// What a garbage-collection root that points at a kiln.lock keeps.
enum LockRoot {
    /// The store basenames of the modules (and fetched Go releases) it pins.
    Pins(Vec<String>),
    /// The lock exists but cannot be read now.
    Unreadable,
    /// Not a lock's root, or the lock is gone (the root is stale).
    NotALock,
}

fn locked_modules(root: &Path) -> LockRoot {
    let Ok(lock_file) = std::fs::read_link(root) else {
        return LockRoot::NotALock;
    };
    if lock_file.file_name() != Some(std::ffi::OsStr::new(crate::lock::LOCK_FILE))
        || !lock_file.is_file()
    {
        return LockRoot::NotALock;
    }
    let Some(lock) = std::fs::read_to_string(&lock_file)
        .ok()
        .and_then(|text| crate::lock::lockfile::parse(&text, &lock_file).ok())
    else {
        return LockRoot::Unreadable;
    };
    let mut names: Vec<String> = lock
        .modules
        .iter()
        .map(|module| {
            crate::lock::module_store_name(
                &module.path,
                &module.version,
                module.h1.as_deref(),
                &module.go_mod,
            )
            .basename()
        })
        .collect();
    for (host, h1) in &lock.go.toolchain_h1 {
        names.push(crate::lock::toolchain_store_name(&lock.go.toolchain, host, h1).basename());
    }
    for base in &lock.bases {
        if let Ok(digest) = base.digest.parse() {
            names.push(crate::lock::base_store_name(&digest).basename());
        }
    }
    if !lock.statics.is_empty()
        && let Ok(name) = crate::static_base::store_name(&lock.statics)
    {
        names.push(name.basename());
    }
    LockRoot::Pins(names)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let temp = path.with_extension("json.tmp");
    let mut file = File::create(&temp).map_err(io_error(&temp))?;
    file.write_all(bytes).map_err(io_error(&temp))?;
    file.sync_all().map_err(io_error(&temp))?;
    std::fs::rename(&temp, path).map_err(io_error(path))
}

fn sync_tree(path: &Path) -> Result<(), StoreError> {
    let metadata = std::fs::symlink_metadata(path).map_err(io_error(path))?;
    if metadata.is_dir() {
        for entry in std::fs::read_dir(path).map_err(io_error(path))? {
            sync_tree(&entry.map_err(io_error(path))?.path())?;
        }
    } else if metadata.is_file() {
        File::open(path)
            .and_then(|file| file.sync_all())
            .map_err(io_error(path))?;
    }
    Ok(())
}

/// Point `link` at `target`, replacing whatever `link` was, atomically.
pub fn replace_symlink(target: &Path, link: &Path) -> Result<(), StoreError> {
    let folder = link.parent().unwrap_or(Path::new("."));
    let name = link
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = folder.join(format!(".{name}.kiln-tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&temp);
    std::os::unix::fs::symlink(target, &temp).map_err(io_error(&temp))?;
    std::fs::rename(&temp, link).map_err(|error| {
        let _ = std::fs::remove_file(&temp);
        io_error(link)(error)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe(text: &str) -> serde_json::Value {
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

    #[test]
    fn publish_verify_and_gc() {
        let temp = tempfile::tempdir().unwrap();
        let store = Store::open_at(temp.path()).unwrap();
        let name = StoreName::new(&recipe("pkg"), "pkg-1");
        let _lock = store.lock_output(&name, || {}).unwrap();
        let built = store.temp_dir(&name);
        std::fs::create_dir_all(built.join("bin")).unwrap();
        std::fs::write(built.join("bin/tool"), b"binary").unwrap();
        std::fs::set_permissions(
            built.join("bin/tool"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let registration = crate::output::Registration::new(&built);
        let path = store
            .publish(&built, &name, "package", &recipe("pkg"), registration)
            .unwrap();
        assert!(store.contains(&name));
        let mode = std::fs::metadata(path.join("bin/tool"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o555);
        assert!(store.verify().unwrap().is_clean());

        // Corruption is found.
        std::fs::set_permissions(
            path.join("bin/tool"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::write(path.join("bin/tool"), b"tampered").unwrap();
        let report = store.verify().unwrap();
        assert_eq!(report.corrupt.len(), 1, "{report:?}");

        // A root keeps it; without the root, gc removes it.
        let link = temp.path().join("result");
        replace_symlink(&path, &link).unwrap();
        store.add_root(&link).unwrap();
        let report = store.gc(|| {}).unwrap();
        assert_eq!((report.kept_paths, report.removed_paths.len()), (1, 0));
        std::fs::remove_file(&link).unwrap();
        let report = store.gc(|| {}).unwrap();
        assert_eq!(report.removed_paths, [name.basename()]);
        assert_eq!(report.stale_roots, 1);
        assert!(report.freed_bytes >= 8);
        assert!(!store.contains(&name));
        assert!(store.verify().unwrap().is_clean());
    }
}
