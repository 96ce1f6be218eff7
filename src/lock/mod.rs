//! `kiln lock`: pin every module a build may use, fetched through the GOPROXY protocol and
//! verified before anything enters the store.
//!
//! The module set is what go.sum pins: a `h1:` of the zip marks a module whose code the build
//! may compile, a `/go.mod` hash one whose go.mod Go reads to walk the module graph. go.sum is
//! the authority (kiln consults no checksum database): a fetched file whose hash differs is
//! refused. A project without go.sum but with a gomod2nix.toml is locked from that file: its
//! NAR hashes are the authority then, and the `h1:` hashes are computed.
//!
//! Each module lands in the store as a `go-module/1` output named by its hashes (so one
//! download serves every project that pins the same bytes): `go.mod`, the zip as served
//! (`module.zip`, when the code is used) and `module.json` (the lock entry). Verified modules
//! wait in a staging folder under `tmp/` until every module of the lock verified, so a lock
//! that fails changes nothing in the store. A re-run finds them there and fetches nothing.

pub mod locker;
pub mod lockfile;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::json;

use crate::gomod::gomod2nix::{self, Gomod2nixModule};
use crate::gomod::modfile::{self, ModFile};
use crate::gomod::modzip::{self, Limits};
use crate::gomod::proxy::{ProxyClient, ProxyFile};
use crate::gomod::{dirhash, sumfile};
use crate::recipes;
use crate::store::{RootPins, Store, StoreError, StoreName};

use self::lockfile::{GoPin, LockFile, LockedModule};

/// The lock's file name, beside go.mod.
pub const LOCK_FILE: &str = "kiln.lock";
/// gomod2nix's file name.
pub const GOMOD2NIX_FILE: &str = "gomod2nix.toml";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("no go.mod in {}\nhint: `kiln init` makes a Go project; or run `go mod init MODULE` there", .0.display())]
    NoGoMod(PathBuf),
    #[error("cannot read {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a regular file\nhint: replace it with the file itself", .0.display())]
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
        "go.mod requires {requirements}, and nothing pins them: there is no go.sum (nor gomod2nix.toml, nor vendor/ folder)\nhint: run `go mod tidy` to write go.sum, then `kiln lock` (kiln locks what go.sum pins); or vendor them with `go mod vendor`"
    )]
    NoGoSum { requirements: String },
    #[error(
        "go.mod:{line}: {module} {version} has no go.sum entry\nhint: run `go mod tidy` to update go.sum"
    )]
    MissingSum {
        module: String,
        version: String,
        line: usize,
    },
    #[error(
        "go.mod:{line}: {module} {version} is not in gomod2nix.toml\nhint: regenerate it (`gomod2nix generate`), or write go.sum (`go mod tidy`) and lock from that"
    )]
    MissingGomod2nix {
        module: String,
        version: String,
        line: usize,
    },
    #[error(
        "{module}: the .mod the proxy serves is not the go.mod in its zip\nhint: the proxy is broken or tampered with"
    )]
    ModNotZipGoMod { module: String },
    #[error(
        "go.mod:{line}: replace {old} => {new}: a local folder must be a relative path inside or beside the project, so the build is the same in any folder"
    )]
    AbsoluteReplace {
        old: String,
        new: String,
        line: usize,
    },
    #[error("{module}: {what} failed verification: got {actual}, {source_file} says {expected}")]
    Mismatch {
        module: String,
        what: &'static str,
        actual: String,
        expected: String,
        source_file: &'static str,
    },
    #[error("cannot fetch {module}")]
    Fetch {
        module: String,
        #[source]
        source: Box<crate::gomod::proxy::ProxyError>,
    },
    #[error(transparent)]
    Zip(#[from] modzip::ModZipError),
    #[error(transparent)]
    Module(#[from] crate::gomod::module::ModuleError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "module {module} is not in the store\nhint: run `kiln lock` to fetch what kiln.lock pins"
    )]
    NotFetched { module: String },
    #[error("cannot write {}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
}

fn read_error(path: &Path) -> impl FnOnce(std::io::Error) -> LockError + '_ {
    move |source| LockError::Read {
        path: path.to_owned(),
        source,
    }
}

/// A project file's text, `None` when it does not exist. A named pipe or a device where the
/// file belongs is an error, not a read that blocks forever or never ends.
fn read_project_file(path: &Path) -> Result<Option<String>, LockError> {
    match std::fs::metadata(path) {
        Ok(metadata) if !metadata.is_file() => return Err(LockError::NotRegular(path.to_owned())),
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(read_error(path)(error)),
    }
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(read_error(path)(error)),
    }
}

/// A module version the project needs, with what its pins say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub path: String,
    pub version: String,
    /// Whether its code is used (a zip is fetched).
    pub code: bool,
    /// go.sum's zip hash.
    pub h1: Option<String>,
    /// go.sum's go.mod hash.
    pub go_mod: Option<String>,
    /// gomod2nix.toml's NAR hash.
    pub nar: Option<String>,
}

impl Wanted {
    pub fn id(&self) -> String {
        format!("{}@{}", self.path, self.version)
    }
}

/// Where the pins come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinSource {
    GoSum,
    Gomod2nix,
    /// Nothing is required.
    Nothing,
    /// go.mod requires modules and neither go.sum nor gomod2nix.toml pins them (fine for a
    /// vendored project, an error for locking).
    Missing,
}

impl PinSource {
    pub fn file_name(self) -> &'static str {
        match self {
            PinSource::GoSum => "go.sum",
            PinSource::Gomod2nix => GOMOD2NIX_FILE,
            PinSource::Nothing | PinSource::Missing => "go.mod",
        }
    }
}

/// What a project's go.mod and pins ask for.
#[derive(Clone, Debug)]
pub struct Wants {
    pub go_mod: ModFile,
    pub source: PinSource,
    /// Sorted by path, then version.
    pub modules: Vec<Wanted>,
    /// Local-folder replacements: (module path, folder relative to the project).
    pub local_replaces: Vec<(String, String)>,
    /// `PATH VERSION` of each requirement nothing pins (source [`PinSource::Missing`]).
    pub unpinned: Vec<String>,
}

impl Wants {
    /// An error unless go.sum (or gomod2nix.toml) pins what go.mod requires.
    pub fn require_pins(&self) -> Result<(), LockError> {
        if self.source == PinSource::Missing {
            return Err(LockError::NoGoSum {
                requirements: self.unpinned.join(", "),
            });
        }
        Ok(())
    }
}

/// Read and parse the go.mod of the project at `root`.
pub fn read_go_mod(root: &Path) -> Result<ModFile, LockError> {
    let Some(go_mod_text) = read_project_file(&root.join("go.mod"))? else {
        return Err(LockError::NoGoMod(root.to_owned()));
    };
    Ok(modfile::parse(&go_mod_text, Path::new("go.mod"))?)
}

/// Read go.mod and go.sum (or gomod2nix.toml) of the project at `root`.
pub fn wants(root: &Path) -> Result<Wants, LockError> {
    let go_mod = read_go_mod(root)?;
    let mut local_replaces = Vec::new();
    for replace in &go_mod.replaces {
        if replace.new_version.is_none() {
            if Path::new(&replace.new_path).is_absolute() {
                return Err(LockError::AbsoluteReplace {
                    old: replace.old_path.clone(),
                    new: replace.new_path.clone(),
                    line: replace.line,
                });
            }
            local_replaces.push((replace.old_path.clone(), replace.new_path.clone()));
        }
    }
    // What go.mod requires after replacements; local folders need nothing fetched.
    let mut required = Vec::new();
    for require in &go_mod.requires {
        match replacement(&go_mod, &require.path, &require.version) {
            Some(replace) if replace.new_version.is_none() => {}
            Some(replace) => required.push((
                replace.new_path.clone(),
                replace.new_version.clone().unwrap_or_default(),
                require.line,
            )),
            None => required.push((require.path.clone(), require.version.clone(), require.line)),
        }
    }
    let sum_text = read_project_file(&root.join("go.sum"))?;
    let sum_text = sum_text.filter(|text| !(required.is_empty() && text.trim().is_empty()));
    let (source, modules) = if let Some(text) = sum_text {
        let sums = sumfile::parse(&text, Path::new("go.sum"))?;
        for (path, version, line) in &required {
            let pinned = sums
                .modules
                .get(&(path.clone(), version.clone()))
                .is_some_and(|sums| sums.go_mod.is_some() || sums.zip.is_some());
            if !pinned {
                return Err(LockError::MissingSum {
                    module: path.clone(),
                    version: version.clone(),
                    line: *line,
                });
            }
        }
        let modules = sums
            .modules
            .into_iter()
            .map(|((path, version), sums)| Wanted {
                path,
                version,
                code: sums.zip.is_some(),
                h1: sums.zip.map(|(hash, _)| hash),
                go_mod: sums.go_mod.map(|(hash, _)| hash),
                nar: None,
            })
            .collect();
        (PinSource::GoSum, modules)
    } else if let Some(text) = read_project_file(&root.join(GOMOD2NIX_FILE))? {
        let entries = gomod2nix::parse(&text, Path::new(GOMOD2NIX_FILE))?;
        for (path, version, line) in &required {
            let pinned = entries
                .iter()
                .any(|entry| entry.fetched_path() == path && &entry.version == version);
            if !pinned {
                return Err(LockError::MissingGomod2nix {
                    module: path.clone(),
                    version: version.clone(),
                    line: *line,
                });
            }
        }
        let mut modules: Vec<Wanted> = entries
            .into_iter()
            .map(|entry| Wanted {
                path: entry.fetched_path().to_owned(),
                version: entry.version,
                code: true,
                h1: None,
                go_mod: None,
                nar: Some(entry.hash),
            })
            .collect();
        modules.sort_by(|a, b| (&a.path, &a.version).cmp(&(&b.path, &b.version)));
        (PinSource::Gomod2nix, modules)
    } else if required.is_empty() {
        (PinSource::Nothing, Vec::new())
    } else {
        (PinSource::Missing, Vec::new())
    };
    let unpinned = if source == PinSource::Missing {
        required
            .iter()
            .map(|(path, version, _)| format!("{path} {version}"))
            .collect()
    } else {
        Vec::new()
    };
    Ok(Wants {
        go_mod,
        source,
        modules,
        local_replaces,
        unpinned,
    })
}

/// The replace directive that applies to `path`@`version`, if any (a versioned one wins).
pub fn replacement<'a>(
    go_mod: &'a ModFile,
    path: &str,
    version: &str,
) -> Option<&'a modfile::Replace> {
    go_mod
        .replaces
        .iter()
        .filter(|replace| replace.old_path == path)
        .find(|replace| replace.old_version.as_deref() == Some(version))
        .or_else(|| {
            go_mod
                .replaces
                .iter()
                .find(|replace| replace.old_path == path && replace.old_version.is_none())
        })
}

/// The differences between the lock and what go.mod and its pins ask for, one line each
/// (`+` wanted and not locked, `-` locked and not wanted); empty when the lock is current.
pub fn differences(wants: &Wants, lock: &LockFile) -> Vec<String> {
    let source = wants.source.file_name();
    let mut lines = Vec::new();
    if lock.go.go != wants.go_mod.go {
        lines.push(format!(
            "go line: go.mod says {}, kiln.lock has {}",
            wants.go_mod.go.as_deref().unwrap_or("none"),
            lock.go.go.as_deref().unwrap_or("none")
        ));
    }
    if let Some(toolchain) = &wants.go_mod.toolchain
        && toolchain != &lock.go.toolchain
    {
        lines.push(format!(
            "toolchain: go.mod says {toolchain}, kiln.lock has {}",
            lock.go.toolchain
        ));
    }
    let locked: BTreeMap<(&str, &str), &LockedModule> = lock
        .modules
        .iter()
        .map(|module| ((module.path.as_str(), module.version.as_str()), module))
        .collect();
    let mut seen = BTreeSet::new();
    for wanted in &wants.modules {
        let key = (wanted.path.as_str(), wanted.version.as_str());
        seen.insert(key);
        let Some(locked) = locked.get(&key) else {
            lines.push(format!("+ {} (in {source}, not in kiln.lock)", wanted.id()));
            continue;
        };
        let same = match wants.source {
            PinSource::Gomod2nix => wanted.nar == locked.nar,
            _ => {
                wanted.h1 == locked.h1
                    && wanted
                        .go_mod
                        .as_ref()
                        .is_none_or(|hash| hash == &locked.go_mod)
            }
        };
        if !same {
            lines.push(format!(
                "~ {} (its hashes in {source} differ from kiln.lock)",
                wanted.id()
            ));
        }
    }
    for module in &lock.modules {
        if !seen.contains(&(module.path.as_str(), module.version.as_str())) {
            lines.push(format!("- {} (in kiln.lock, not in {source})", module.id()));
        }
    }
    lines
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
    let mut names: Vec<StoreName> = lock.modules.iter().map(LockedModule::store_name).collect();
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
    RootPins::Outputs(names)
}

/// What happened to one module during a lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// The store had it.
    Cached,
    /// Downloaded and verified now; bytes received.
    Downloaded(u64),
}

/// Observes a lock's progress; called from several threads.
pub trait Progress: Sync {
    fn start(&self, modules: usize);
    fn done(&self, module: &str, fetched: Fetched);
}

/// The result of locking.
#[derive(Clone, Debug)]
pub struct Locked {
    pub lock: LockFile,
    pub fetched: Vec<(String, Fetched)>,
}

/// Lock `wants`: every module in the store, verified, and the lock that pins them.
/// `toolchain` is the Go release the lock pins. Fetches run on up to `jobs` threads.
pub fn lock(
    store: &Store,
    client: &ProxyClient,
    wants: &Wants,
    previous: Option<&LockFile>,
    toolchain: GoPin,
    progress: &dyn Progress,
    jobs: usize,
) -> Result<Locked, LockError> {
    // A module locked before with the same pins keeps its entry (and its NAR hash) when the
    // store still has it: nothing is fetched.
    let previous: BTreeMap<(String, String), &LockedModule> = previous
        .map(|lock| {
            lock.modules
                .iter()
                .map(|module| ((module.path.clone(), module.version.clone()), module))
                .collect()
        })
        .unwrap_or_default();
    progress.start(wants.modules.len());
    // Verified modules wait here until all are: a lock that fails leaves the store as it was.
    let tmp = store.root().join("tmp");
    let staging = crate::output::ScratchDir::new_in(&tmp, "lock-")?;
    let queue = Mutex::new(wants.modules.iter().collect::<Vec<_>>());
    type Outcome = Result<(LockedModule, Fetched, Option<Staged>), LockError>;
    let results: Mutex<Vec<Outcome>> = Mutex::new(Vec::new());
    let failed = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, 16).min(wants.modules.len().max(1)) {
            scope.spawn(|| {
                loop {
                    if failed.load(std::sync::atomic::Ordering::Relaxed) {
                        return;
                    }
                    let Some(wanted) = queue.lock().ok().and_then(|mut queue| queue.pop()) else {
                        return;
                    };
                    let key = (wanted.path.clone(), wanted.version.clone());
                    let result = lock_one(
                        store,
                        client,
                        wanted,
                        previous.get(&key).copied(),
                        staging.path(),
                    );
                    if let Ok((module, fetched, _)) = &result {
                        progress.done(&module.id(), *fetched);
                    } else {
                        failed.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    if let Ok(mut results) = results.lock() {
                        results.push(result);
                    }
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_default();
    let mut modules = Vec::new();
    let mut fetched = Vec::new();
    let mut staged = Vec::new();
    let mut first_error = None;
    for result in results {
        match result {
            Ok((module, how, stage)) => {
                fetched.push((module.id(), how));
                modules.push(module);
                staged.extend(stage);
            }
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    for stage in staged {
        publish_staged(store, stage)?;
    }
    modules.sort();
    fetched.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Locked {
        lock: LockFile {
            go: toolchain,
            modules,
            // Base images are resolved by the caller (`kiln lock`), which knows the project.
            bases: Vec::new(),
            statics: Vec::new(),
        },
        fetched,
    })
}

/// The recorded entry of a module output in the store.
fn read_module_record(path: &Path) -> Option<LockedModule> {
    #[derive(serde::Deserialize)]
    struct Record {
        path: String,
        version: String,
        h1: Option<String>,
        #[serde(rename = "go-mod")]
        go_mod: String,
        nar: Option<String>,
    }
    let bytes = std::fs::read(path.join("module.json")).ok()?;
    let record: Record = serde_json::from_slice(&bytes).ok()?;
    Some(LockedModule {
        path: record.path,
        version: record.version,
        h1: record.h1,
        go_mod: record.go_mod,
        nar: record.nar,
    })
}

fn mismatch(
    wanted: &Wanted,
    what: &'static str,
    actual: String,
    expected: &str,
    source_file: &'static str,
) -> LockError {
    LockError::Mismatch {
        module: wanted.id(),
        what,
        actual,
        expected: expected.to_owned(),
        source_file,
    }
}

/// Lock one module: from the store when it has the pinned bytes, else fetched and verified.
fn lock_one(
    store: &Store,
    client: &ProxyClient,
    wanted: &Wanted,
    previous: Option<&LockedModule>,
    staging: &Path,
) -> Result<(LockedModule, Fetched, Option<Staged>), LockError> {
    // With go.sum pins the store name is known before fetching.
    if let Some(go_mod) = &wanted.go_mod
        && (!wanted.code || wanted.h1.is_some())
    {
        let name = recipes::go_module(&wanted.path, &wanted.version, wanted.h1.as_deref(), go_mod)
            .name()
            .clone();
        if store.contains(&name)
            && let Some(record) = read_module_record(&store.path(&name))
        {
            return Ok((record, Fetched::Cached, None));
        }
    }
    if let (Some(previous), Some(nar)) = (previous, &wanted.nar)
        && previous.nar.as_deref() == Some(nar.as_str())
        && let Some(path) = locked_module_path(store, previous)
        && let Some(record) = read_module_record(&path)
        && record.nar.as_deref() == Some(nar.as_str())
    {
        return Ok((record, Fetched::Cached, None));
    }
    let fetch = |file: ProxyFile, limit: u64| {
        client
            .fetch(&wanted.path, &wanted.version, file, limit)
            .map_err(|source| LockError::Fetch {
                module: wanted.id(),
                source: Box::new(source),
            })
    };
    let mod_bytes = fetch(ProxyFile::Mod, modzip::MAX_GO_MOD)?;
    let go_mod_hash = dirhash::hash_go_mod(&mod_bytes);
    if let Some(expected) = &wanted.go_mod
        && &go_mod_hash != expected
    {
        return Err(mismatch(wanted, "go.mod", go_mod_hash, expected, "go.sum"));
    }
    let mut received = mod_bytes.len() as u64;
    let mut zip = None;
    if wanted.code {
        let zip_bytes = fetch(ProxyFile::Zip, modzip::MAX_ZIP_FILE)?;
        received += zip_bytes.len() as u64;
        let module_zip =
            modzip::read(&zip_bytes, &wanted.path, &wanted.version, Limits::default())?;
        let h1 = module_zip.h1();
        if let Some(expected) = &wanted.h1
            && &h1 != expected
        {
            return Err(mismatch(wanted, "zip", h1, expected, "go.sum"));
        }
        if wanted.go_mod.is_none() {
            // Nothing pins the .mod (gomod2nix.toml pins the unpacked module only): it must be
            // the zip's go.mod, or for a module without one, what Go synthesises.
            let expected = module_zip
                .files
                .iter()
                .find(|file| file.path == "go.mod")
                .map(|file| file.content.clone())
                .unwrap_or_else(|| format!("module {}\n", wanted.path).into_bytes());
            if expected != mod_bytes {
                return Err(LockError::ModNotZipGoMod {
                    module: wanted.id(),
                });
            }
        }
        let nar = module_zip.nar_hash().sri();
        if let Some(expected) = &wanted.nar
            && &nar != expected
        {
            return Err(mismatch(
                wanted,
                "unpacked module (NAR hash)",
                nar,
                expected,
                "gomod2nix.toml",
            ));
        }
        zip = Some((zip_bytes, h1, nar));
    }
    let module = LockedModule {
        path: wanted.path.clone(),
        version: wanted.version.clone(),
        h1: zip.as_ref().map(|(_, h1, _)| h1.clone()),
        go_mod: go_mod_hash,
        nar: zip.as_ref().map(|(_, _, nar)| nar.clone()),
    };
    let staged = stage(
        staging,
        &module,
        &mod_bytes,
        zip.as_ref().map(|(bytes, _, _)| &bytes[..]),
    )?;
    Ok((module, Fetched::Downloaded(received), Some(staged)))
}

/// A verified module written under the lock's staging folder, published only when every
/// module of the lock verified.
struct Staged {
    module: LockedModule,
    path: PathBuf,
}

/// Write a verified module under `staging` (not yet in the store).
fn stage(
    staging: &Path,
    module: &LockedModule,
    mod_bytes: &[u8],
    zip_bytes: Option<&[u8]>,
) -> Result<Staged, LockError> {
    let name = module.store_name();
    let folder = staging.join(name.hash());
    std::fs::create_dir_all(&folder).map_err(write_error(&folder))?;
    let write = |file: &str, bytes: &[u8]| {
        let path = folder.join(file);
        std::fs::write(&path, bytes).map_err(write_error(&path))
    };
    write("go.mod", mod_bytes)?;
    if let Some(zip_bytes) = zip_bytes {
        write("module.zip", zip_bytes)?;
    }
    let record = json!({
        "path": module.path,
        "version": module.version,
        "h1": module.h1,
        "go-mod": module.go_mod,
        "nar": module.nar,
    });
    write(
        "module.json",
        &serde_json::to_vec_pretty(&record).unwrap_or_default(),
    )?;
    Ok(Staged {
        module: module.clone(),
        path: folder,
    })
}

/// Publish a staged module into the store (another kiln may have published it meanwhile).
fn publish_staged(store: &Store, staged: Staged) -> Result<(), LockError> {
    store.realise(
        &staged.module.recipe(),
        || {},
        |temp| {
            std::fs::rename(&staged.path, temp).map_err(write_error(temp))?;
            Ok::<_, LockError>(temp.to_owned())
        },
    )?;
    Ok(())
}

/// gomod2nix.toml entries for `lock`: one per module path, keyed by the path go.mod requires
/// (the replaced one, with `replaced` naming the module fetched) at the version go.mod selects;
/// then the other modules whose code is used (a go.mod before Go 1.17 lists only direct
/// requirements), at their highest locked version. Local-folder replacements are left out.
pub fn gomod2nix_entries(go_mod: &ModFile, lock: &LockFile) -> Vec<Gomod2nixModule> {
    let coded: BTreeMap<(&str, &str), &str> = lock
        .modules
        .iter()
        .filter_map(|module| {
            module
                .nar
                .as_deref()
                .map(|nar| ((module.path.as_str(), module.version.as_str()), nar))
        })
        .collect();
    let mut entries: BTreeMap<String, Gomod2nixModule> = BTreeMap::new();
    let mut fetched = BTreeSet::new();
    for require in &go_mod.requires {
        let (path, version) = match replacement(go_mod, &require.path, &require.version) {
            Some(replace) => match &replace.new_version {
                Some(version) => (replace.new_path.as_str(), version.as_str()),
                None => continue,
            },
            None => (require.path.as_str(), require.version.as_str()),
        };
        let Some(nar) = coded.get(&(path, version)) else {
            continue;
        };
        fetched.insert(path.to_owned());
        entries.insert(
            require.path.clone(),
            Gomod2nixModule {
                path: require.path.clone(),
                version: version.to_owned(),
                hash: (*nar).to_owned(),
                replaced: (path != require.path).then(|| path.to_owned()),
            },
        );
    }
    // The rest, highest version last so it wins.
    let mut rest: Vec<&LockedModule> = lock
        .modules
        .iter()
        .filter(|module| module.nar.is_some() && !fetched.contains(&module.path))
        .collect();
    rest.sort_by(|a, b| {
        a.path
            .cmp(&b.path)
            .then_with(|| compare_versions(&a.version, &b.version))
    });
    for module in rest {
        if entries.contains_key(&module.path) {
            keep_highest(&mut entries, module);
            continue;
        }
        entries.insert(
            module.path.clone(),
            Gomod2nixModule {
                path: module.path.clone(),
                version: module.version.clone(),
                hash: module.nar.clone().unwrap_or_default(),
                replaced: None,
            },
        );
    }
    entries.into_values().collect()
}

/// Replace an entry added from the rest of the lock by a higher version of its module.
fn keep_highest(entries: &mut BTreeMap<String, Gomod2nixModule>, module: &LockedModule) {
    if let Some(entry) = entries.get_mut(&module.path)
        && entry.replaced.is_none()
        && compare_versions(&entry.version, &module.version).is_lt()
        && let Some(nar) = &module.nar
    {
        entry.version = module.version.clone();
        entry.hash = nar.clone();
    }
}

/// Semantic-version order for canonical module versions (`v1.10.0` after `v1.9.0`; a
/// pre-release before its release; build metadata such as `+incompatible` ignored).
///
/// Pre-releases compare as semver 2.0.0 (§11) and Go's `golang.org/x/mod/semver` do: by
/// dot-separated identifiers, left to right; numeric ones numerically, and before
/// alphanumeric ones, which compare in ASCII order; when one list is a prefix of the other,
/// the shorter sorts first (`alpha < alpha.1 < alpha.beta < beta < beta.2 < beta.11 < rc.1`).
/// Pseudo-versions (`v0.0.0-20240102150405-abcdef123456`) are pre-releases too, so they
/// order by their timestamp.
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    fn parts(version: &str) -> (Vec<u64>, Option<&str>) {
        let version = version.trim_start_matches('v');
        let version = version.split('+').next().unwrap_or(version);
        let (core, pre) = match version.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (version, None),
        };
        (
            core.split('.')
                .map(|number| number.parse().unwrap_or(0))
                .collect(),
            pre,
        )
    }
    /// Digits only: compared by value, as Go does, by length first (no leading zeros in a
    /// valid version, and no overflow for long ones).
    fn identifier(a: &str, b: &str) -> Ordering {
        let numeric =
            |text: &str| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
        match (numeric(a), numeric(b)) {
            (true, true) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => a.cmp(b),
        }
    }
    fn prerelease(a: &str, b: &str) -> Ordering {
        let mut a = a.split('.');
        let mut b = b.split('.');
        loop {
            match (a.next(), b.next()) {
                (None, None) => return Ordering::Equal,
                (None, Some(_)) => return Ordering::Less,
                (Some(_), None) => return Ordering::Greater,
                (Some(a), Some(b)) => match identifier(a, b) {
                    Ordering::Equal => continue,
                    unequal => return unequal,
                },
            }
        }
    }
    let (a_core, a_pre) = parts(a);
    let (b_core, b_pre) = parts(b);
    a_core.cmp(&b_core).then_with(|| match (a_pre, b_pre) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => prerelease(a, b),
    })
}

/// go.sum text pinning `lock`'s modules (for a project locked from gomod2nix.toml, which has
/// no go.sum): Go checks the modules it reads against it as against any go.sum.
pub fn go_sum_text(lock: &LockFile) -> String {
    let mut text = String::new();
    for module in &lock.modules {
        if let Some(h1) = &module.h1 {
            text.push_str(&format!("{} {} {h1}\n", module.path, module.version));
        }
        text.push_str(&format!(
            "{} {}/go.mod {}\n",
            module.path, module.version, module.go_mod
        ));
    }
    text
}

/// The `file://` module proxy folder holding exactly `modules` (links into their store
/// outputs), made once per module set under `go/proxy/` of the kiln home and shared by builds
/// and `kiln shell`. Layout (the GOPROXY protocol): `<escaped path>/@v/list` and
/// `<escaped version>.info`, `.mod`, `.zip`.
pub fn proxy_folder(store: &Store, modules: &[LockedModule]) -> Result<PathBuf, LockError> {
    use sha2::Digest as _;
    let mut names: Vec<(StoreName, &LockedModule)> = modules
        .iter()
        .map(|module| (module.store_name(), module))
        .collect();
    names.sort_by_key(|(name, _)| name.basename());
    let mut hasher = sha2::Sha256::new();
    for (name, _) in &names {
        hasher.update(name.basename().as_bytes());
        hasher.update(b"\n");
    }
    let digest = hasher.finalize();
    let proxies = store.root().join("go/proxy");
    let folder = proxies.join(crate::nixbase32::encode(&digest[..20]));
    // Reused only when whole: every module's .mod there and leading into the store (a
    // crash or gc can leave one that is not).
    let whole = |folder: &Path| {
        names.iter().all(|(_, module)| {
            match (
                crate::gomod::module::escape_path(&module.path),
                crate::gomod::module::escape_version(&module.version),
            ) {
                (Ok(path), Ok(version)) => folder
                    .join(path)
                    .join("@v")
                    .join(format!("{version}.mod"))
                    .is_file(),
                _ => false,
            }
        })
    };
    if folder.is_dir() {
        if whole(&folder) {
            return Ok(folder);
        }
        let _ = crate::store::remove_tree(&folder);
    }
    std::fs::create_dir_all(&proxies).map_err(write_error(&proxies))?;
    let temp = crate::output::ScratchDir::new_in(&proxies, "proxy-")?;
    let mut lists: BTreeMap<PathBuf, Vec<&str>> = BTreeMap::new();
    for (name, module) in &names {
        let stored = store.path(name);
        if !stored.is_dir() {
            return Err(LockError::NotFetched {
                module: module.id(),
            });
        }
        let escaped = crate::gomod::module::escape_path(&module.path)?;
        let version = crate::gomod::module::escape_version(&module.version)?;
        let at_v = temp.path().join(&escaped).join("@v");
        std::fs::create_dir_all(&at_v).map_err(write_error(&at_v))?;
        let link = |target: PathBuf, file: String| {
            let link = at_v.join(file);
            std::os::unix::fs::symlink(target, &link).map_err(write_error(&link))
        };
        link(stored.join("go.mod"), format!("{version}.mod"))?;
        if module.h1.is_some() {
            link(stored.join("module.zip"), format!("{version}.zip"))?;
        }
        let info = at_v.join(format!("{version}.info"));
        std::fs::write(&info, format!("{{\"Version\":\"{}\"}}\n", module.version))
            .map_err(write_error(&info))?;
        lists.entry(at_v).or_default().push(&module.version);
    }
    for (at_v, versions) in lists {
        let list = at_v.join("list");
        std::fs::write(&list, versions.join("\n") + "\n").map_err(write_error(&list))?;
    }
    match temp.rename_to(&folder) {
        Ok(()) => Ok(folder),
        // Another kiln made it first: the same links.
        Err(_) if folder.is_dir() => Ok(folder),
        Err(source) => Err(LockError::Write {
            path: folder,
            source,
        }),
    }
}

fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> LockError + '_ {
    move |source| LockError::Write {
        path: path.to_owned(),
        source,
    }
}

/// The host as Go names its release downloads (`linux-amd64`), for toolchain module
/// versions: the host platform's architecture ([`crate::oci::spec::Platform::host`], OCI's and GOARCH's name),
/// except 32-bit ARM, whose releases are built for ARMv6 and named `armv6l`.
pub fn go_host() -> String {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let architecture = crate::oci::spec::Platform::host().architecture;
    match architecture.as_str() {
        "arm" => format!("{os}-armv6l"),
        other => format!("{os}-{other}"),
    }
}

/// The module Go distributes a release as: `golang.org/toolchain@v0.0.1-go1.27.3.linux-amd64`.
pub const TOOLCHAIN_MODULE: &str = "golang.org/toolchain";

fn toolchain_module_version(release: &str) -> String {
    format!("v0.0.1-{release}.{}", go_host())
}

/// The `go` of a fetched release in the store, if it is there.
pub fn fetched_toolchain(store: &Store, pin: &GoPin) -> Option<PathBuf> {
    let h1 = pin.toolchain_h1.get(&go_host())?;
    let name = recipes::go_toolchain(&pin.toolchain, &go_host(), h1)
        .name()
        .clone();
    store
        .contains(&name)
        .then(|| store.path(&name).join("bin/go"))
}

/// Fetch the Go release `release` for this host as Go itself does (the module
/// `golang.org/toolchain@v0.0.1-<release>.<os>-<arch>` from the GOPROXY), check it like any
/// module zip and against `expected` (the `h1:` kiln.lock recorded when it first fetched it),
/// and keep it unpacked in the store (`_go.mod` files copied back to `go.mod`, `bin/` and
/// `pkg/tool/` executable). Returns its `h1:`.
///
/// Go verifies a release against the checksum database; kiln does not speak to one, so the
/// first fetch is trusted and pinned (the `h1:` in kiln.lock), and every later fetch must
/// match it.
pub fn fetch_toolchain(
    store: &Store,
    client: &ProxyClient,
    release: &str,
    expected: Option<&str>,
) -> Result<String, LockError> {
    let host = go_host();
    if let Some(h1) = expected
        && store.contains(recipes::go_toolchain(release, &host, h1).name())
    {
        return Ok(h1.to_owned());
    }
    let version = toolchain_module_version(release);
    let id = format!("{TOOLCHAIN_MODULE}@{version}");
    let bytes = client
        .fetch(
            TOOLCHAIN_MODULE,
            &version,
            ProxyFile::Zip,
            modzip::MAX_ZIP_FILE,
        )
        .map_err(|source| LockError::Fetch {
            module: id.clone(),
            source: Box::new(source),
        })?;
    let module_zip = modzip::read(&bytes, TOOLCHAIN_MODULE, &version, Limits::default())?;
    let h1 = module_zip.h1();
    if let Some(expected) = expected
        && h1 != expected
    {
        return Err(LockError::Mismatch {
            module: id,
            what: "zip",
            actual: h1,
            expected: expected.to_owned(),
            source_file: "kiln.lock",
        });
    }
    store.realise(
        &recipes::go_toolchain(release, &host, &h1),
        || {},
        |temp| {
            module_zip.extract(temp)?;
            restore_go_mod_files(temp)?;
            make_tools_executable(temp)?;
            Ok::<_, LockError>(temp.to_owned())
        },
    )?;
    Ok(h1)
}

/// A release zip holds its go.mod files (`src/go.mod`, `src/cmd/go.mod`, testdata) as
/// `_go.mod`, since a module zip may have no go.mod below its root; as Go does after
/// downloading a release, each is copied back to `go.mod` beside it.
fn restore_go_mod_files(folder: &Path) -> Result<(), LockError> {
    let entries = std::fs::read_dir(folder).map_err(write_error(folder))?;
    for entry in entries {
        let entry = entry.map_err(write_error(folder))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(write_error(&path))?;
        if kind.is_dir() {
            restore_go_mod_files(&path)?;
        } else if kind.is_file() && entry.file_name() == "_go.mod" {
            let go_mod = folder.join("go.mod");
            std::fs::copy(&path, &go_mod).map_err(write_error(&go_mod))?;
        }
    }
    Ok(())
}

/// Module zips carry no file modes: as Go does for a downloaded release, the files of `bin/`
/// and `pkg/tool/<host>/` become executable.
fn make_tools_executable(root: &Path) -> Result<(), LockError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut folders = vec![root.join("bin")];
    if let Ok(entries) = std::fs::read_dir(root.join("pkg/tool")) {
        folders.extend(entries.flatten().map(|entry| entry.path()));
    }
    for folder in folders {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                    .map_err(write_error(&path))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const H1: &str = "h1:A+z+XjcWgiIhrZH1NmkoHg4TTnckCc3ZrNLbNMO2ifs=";
    const H1_B: &str = "h1:sfFeq1j53UAvm7kJIVee8/n0tgz8AJ5n76uwmRv7Tic=";
    const NAR: &str = "sha256-FIwyH67KryRWI9Bk4R8s1zFP0IgKR4L66wNQJYQZLeg=";

    fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
        let folder = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(folder.path().join(name), text).unwrap();
        }
        folder
    }

    fn locked(path: &str, version: &str, code: bool) -> LockedModule {
        LockedModule {
            path: path.to_owned(),
            version: version.to_owned(),
            h1: code.then(|| H1.to_owned()),
            go_mod: H1_B.to_owned(),
            nar: code.then(|| NAR.to_owned()),
        }
    }

    #[test]
    fn wants_come_from_go_sum() {
        let folder = project(&[
            (
                "go.mod",
                "module app\n\ngo 1.21\n\nrequire (\n\tex.com/a v1.0.0\n\tex.com/old v1.0.0\n)\n\nreplace ex.com/old => ex.com/new v1.1.0\n",
            ),
            (
                "go.sum",
                &format!(
                    "ex.com/a v1.0.0 {H1}\nex.com/a v1.0.0/go.mod {H1_B}\nex.com/c v0.9.0/go.mod {H1_B}\nex.com/new v1.1.0 {H1}\nex.com/new v1.1.0/go.mod {H1_B}\n"
                ),
            ),
        ]);
        let wants = wants(folder.path()).unwrap();
        assert_eq!(wants.source, PinSource::GoSum);
        let ids: Vec<(String, bool)> = wants
            .modules
            .iter()
            .map(|module| (module.id(), module.code))
            .collect();
        assert_eq!(
            ids,
            [
                ("ex.com/a@v1.0.0".to_owned(), true),
                ("ex.com/c@v0.9.0".to_owned(), false),
                ("ex.com/new@v1.1.0".to_owned(), true),
            ]
        );
        // A requirement go.sum does not pin names its go.mod line.
        std::fs::write(
            folder.path().join("go.sum"),
            format!("ex.com/a v1.0.0 {H1}\nex.com/a v1.0.0/go.mod {H1_B}\n"),
        )
        .unwrap();
        let error = wants_error(folder.path());
        assert!(
            error.starts_with("go.mod:7: ex.com/new v1.1.0 has no go.sum entry"),
            "{error}"
        );
    }

    fn wants_error(root: &Path) -> String {
        match wants(root) {
            Ok(_) => panic!("expected an error"),
            Err(error) => error.to_string(),
        }
    }

    /// A go.sum or kiln.lock that is a named pipe (planted by an unpacked tarball) made
    /// `kiln lock` and `kiln build` block forever reading it.
    #[test]
    fn project_files_that_are_named_pipes_are_refused() {
        let folder = project(&[("go.mod", "module app\n\ngo 1.21\n")]);
        for name in ["go.sum", LOCK_FILE] {
            let status = std::process::Command::new("mkfifo")
                .arg(folder.path().join(name))
                .status()
                .unwrap();
            assert!(status.success());
        }
        let error = wants_error(folder.path());
        assert!(
            error.ends_with("go.sum is not a regular file\nhint: replace it with the file itself"),
            "{error}"
        );
        let error = read_lock(folder.path()).unwrap_err().to_string();
        assert!(error.contains("kiln.lock is not a regular file"), "{error}");
        let folder = project(&[]);
        std::fs::create_dir(folder.path().join("go.mod")).unwrap();
        let error = wants_error(folder.path());
        assert!(error.contains("go.mod is not a regular file"), "{error}");
    }

    #[test]
    fn an_empty_go_sum_with_nothing_required_needs_no_lock() {
        let folder = project(&[("go.mod", "module app\n\ngo 1.21\n"), ("go.sum", "")]);
        assert_eq!(wants(folder.path()).unwrap().source, PinSource::Nothing);
        let folder = project(&[(
            "go.mod",
            "module app\n\ngo 1.21\n\nrequire ex.com/a v1.0.0\n",
        )]);
        let wants = wants(folder.path()).unwrap();
        assert_eq!(wants.source, PinSource::Missing);
        assert!(
            wants
                .require_pins()
                .unwrap_err()
                .to_string()
                .starts_with("go.mod requires ex.com/a v1.0.0, and nothing pins them")
        );
    }

    #[test]
    fn gomod2nix_must_pin_every_requirement() {
        let folder = project(&[
            (
                "go.mod",
                "module app\n\ngo 1.21\n\nrequire ex.com/a v1.0.0\nrequire ex.com/b v1.0.0\n",
            ),
            (
                GOMOD2NIX_FILE,
                &format!("schema = 3\n[mod.'ex.com/a']\nversion = 'v1.0.0'\nhash = '{NAR}'\n"),
            ),
        ]);
        assert_eq!(
            wants_error(folder.path()).lines().next().unwrap(),
            "go.mod:6: ex.com/b v1.0.0 is not in gomod2nix.toml"
        );
    }

    #[test]
    fn differences_name_each_change() {
        let folder = project(&[
            (
                "go.mod",
                "module app\n\ngo 1.22\n\nrequire ex.com/a v1.0.0\n",
            ),
            (
                "go.sum",
                &format!(
                    "ex.com/a v1.0.0 {H1}\nex.com/a v1.0.0/go.mod {H1_B}\nex.com/c v1.0.0/go.mod {H1_B}\n"
                ),
            ),
        ]);
        let wants = wants(folder.path()).unwrap();
        let mut lock = LockFile {
            bases: Vec::new(),
            statics: Vec::new(),
            go: GoPin {
                go: Some("1.22".to_owned()),
                toolchain: "go1.27.3".to_owned(),
                toolchain_h1: BTreeMap::new(),
            },
            modules: vec![
                locked("ex.com/a", "v1.0.0", true),
                locked("ex.com/c", "v1.0.0", false),
            ],
        };
        assert!(differences(&wants, &lock).is_empty());
        lock.go.go = Some("1.21".to_owned());
        lock.modules[1] = locked("ex.com/c", "v1.0.0", true);
        lock.modules.push(locked("ex.com/gone", "v0.1.0", true));
        assert_eq!(
            differences(&wants, &lock),
            [
                "go line: go.mod says 1.22, kiln.lock has 1.21",
                "~ ex.com/c@v1.0.0 (its hashes in go.sum differ from kiln.lock)",
                "- ex.com/gone@v0.1.0 (in kiln.lock, not in go.sum)",
            ]
        );
        lock.modules.remove(0);
        assert!(
            differences(&wants, &lock)
                .contains(&"+ ex.com/a@v1.0.0 (in go.sum, not in kiln.lock)".to_owned())
        );
    }

    #[test]
    fn gomod2nix_entries_follow_go_mod() {
        let go_mod = modfile::parse(
            "module app\n\ngo 1.21\n\nrequire (\n\tex.com/a v1.3.0\n\tex.com/old v1.0.0\n\tex.com/local v0.0.0\n)\n\nreplace ex.com/old v1.0.0 => ex.com/fork v2.0.0+incompatible\nreplace ex.com/local => ../local\n",
            Path::new("go.mod"),
        )
        .unwrap();
        let lock = LockFile {
            bases: Vec::new(),
            statics: Vec::new(),
            go: GoPin::default(),
            modules: vec![
                locked("ex.com/a", "v1.10.0", true),
                locked("ex.com/a", "v1.3.0", true),
                locked("ex.com/fork", "v2.0.0+incompatible", true),
                locked("ex.com/x", "v1.9.0", true),
                locked("ex.com/x", "v1.10.0", true),
                locked("ex.com/y", "v1.0.0", false),
            ],
        };
        let entries: Vec<(String, String, Option<String>)> = gomod2nix_entries(&go_mod, &lock)
            .into_iter()
            .map(|entry| (entry.path, entry.version, entry.replaced))
            .collect();
        assert_eq!(
            entries,
            [
                ("ex.com/a".to_owned(), "v1.3.0".to_owned(), None),
                (
                    "ex.com/old".to_owned(),
                    "v2.0.0+incompatible".to_owned(),
                    Some("ex.com/fork".to_owned())
                ),
                ("ex.com/x".to_owned(), "v1.10.0".to_owned(), None),
            ]
        );
    }

    #[test]
    fn versions_order_as_semver() {
        use std::cmp::Ordering::*;
        assert_eq!(compare_versions("v1.10.0", "v1.9.0"), Greater);
        assert_eq!(compare_versions("v1.0.0-rc.1", "v1.0.0"), Less);
        assert_eq!(compare_versions("v2.0.0+incompatible", "v2.0.0"), Equal);
    }

    /// Pre-releases in semver's order, which `golang.org/x/mod/semver`'s `comparePrerelease`
    /// implements: each list is ascending, and every pair in it is checked both ways.
    #[test]
    fn prereleases_order_by_identifiers_as_semver_and_go_do() {
        use std::cmp::Ordering::*;
        let ascending: &[(&str, &[&str])] = &[
            (
                "semver 2.0.0's example, then the release",
                &[
                    "v1.0.0-alpha",
                    "v1.0.0-alpha.1",
                    "v1.0.0-alpha.beta",
                    "v1.0.0-beta",
                    "v1.0.0-beta.2",
                    "v1.0.0-beta.11",
                    "v1.0.0-rc.1",
                    "v1.0.0",
                ],
            ),
            (
                "numeric identifiers by value",
                &[
                    "v1.0.0-rc.1",
                    "v1.0.0-rc.2",
                    "v1.0.0-rc.9",
                    "v1.0.0-rc.10",
                    "v1.0.0-rc.100",
                ],
            ),
            (
                "numeric before alphanumeric",
                &[
                    "v1.0.0-1",
                    "v1.0.0-2",
                    "v1.0.0-10",
                    "v1.0.0-1a",
                    "v1.0.0-a",
                    "v1.0.0-a.1",
                ],
            ),
            (
                "alphanumeric in ASCII order (upper case first); `-` is part of an identifier",
                &[
                    "v1.0.0-RC",
                    "v1.0.0-pre",
                    "v1.0.0-pre.1",
                    "v1.0.0-pre-1",
                    "v1.0.0-rc",
                ],
            ),
            (
                "a shorter prefix first",
                &["v1.0.0-x", "v1.0.0-x.0", "v1.0.0-x.0.0", "v1.0.0-x.1"],
            ),
            (
                "pseudo-versions by timestamp, before the tag they lead to",
                &[
                    "v0.0.0-20191109021931-daa7c04131f5",
                    "v0.0.0-20200102150405-000000000000",
                    "v0.1.0",
                    "v1.2.4-0.20200102150405-abcdefabcdef",
                    "v1.2.4",
                ],
            ),
            (
                "the release core first",
                &["v1.9.0-rc.10", "v1.9.0", "v1.10.0-alpha", "v1.10.0"],
            ),
            (
                "numbers longer than u64",
                &[
                    "v1.0.0-99999999999999999999",
                    "v1.0.0-100000000000000000000",
                ],
            ),
        ];
        for (case, versions) in ascending {
            for (i, lower) in versions.iter().enumerate() {
                assert_eq!(compare_versions(lower, lower), Equal, "{case}: {lower}");
                for higher in &versions[i + 1..] {
                    assert_eq!(
                        compare_versions(lower, higher),
                        Less,
                        "{case}: {lower} < {higher}"
                    );
                    assert_eq!(
                        compare_versions(higher, lower),
                        Greater,
                        "{case}: {higher} > {lower}"
                    );
                }
            }
        }
        // Equal: build metadata does not count, in a pre-release either.
        for (a, b) in [
            ("v1.0.0-rc.1+build.5", "v1.0.0-rc.1"),
            ("v2.0.0-beta+incompatible", "v2.0.0-beta"),
        ] {
            assert_eq!(compare_versions(a, b), Equal, "{a} = {b}");
        }
    }
}
