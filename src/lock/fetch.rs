//! Locking: each wanted module taken from the store when it holds the pinned bytes, else
//! fetched from the GOPROXY and verified (its `.mod` and zip against go.sum's `h1:`, its
//! unpacked tree against gomod2nix.toml's NAR hash); verified modules wait in a staging
//! folder under `tmp/` and are published into the store only when every module verified.
//!
//! A module GOPROXY routes `direct` (its `direct` entry, or a GONOPROXY/GOPRIVATE match, see
//! [`crate::gomod::proxy`]) is downloaded from version control by Go itself
//! ([`crate::gomod::direct`]), and the `.mod` and zip Go wrote then take the very same path
//! as a proxy's: the zip's checks, `h1:` against go.sum, the NAR hash, staging and publishing.
//! The only differences are `origin = "direct"` in its lock entry and store record, and a
//! hint on a go.sum mismatch (GONOSUMDB does not make go.sum optional).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::json;

use super::lockfile::ModuleOrigin;
use super::lockfile::{GoPin, LockFile, LockedModule};
use super::wants::{Wanted, Wants};
use super::{GOMOD2NIX_FILE, LockError, locked_module_path};
use crate::diagnostic::PathError;
use crate::gomod::direct::{DirectFetcher, Downloaded};
use crate::gomod::dirhash;
use crate::gomod::modzip::{self, ZipLimits};
use crate::gomod::proxy::{ProxyClient, ProxyFile, Routed};
use crate::recipes;
use crate::store::Store;

/// What happened to one module during a lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// The store had it.
    Cached,
    /// Downloaded and verified now; bytes received.
    Downloaded(u64),
}

/// Observes a lock's progress; called from several threads.
pub trait FetchProgress: Sync {
    fn start(&self, modules: usize);
    fn done(&self, module: &str, fetched: Fetched);
}

/// The result of locking.
#[derive(Clone, Debug)]
pub struct Locked {
    pub lock: LockFile,
    pub fetched: Vec<(String, Fetched)>,
}

/// Where a lock fetches modules from: the GOPROXY's proxies, and version control (through
/// Go) for the modules GOPROXY sends `direct`.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    pub proxies: &'a ProxyClient,
    pub direct: &'a DirectFetcher,
}

/// Lock `wants`: every module in the store, verified, and the lock that pins them.
/// `toolchain` is the Go release the lock pins. Fetches run on up to `jobs` threads.
pub fn lock(
    store: &Store,
    client: Sources<'_>,
    wants: &Wants,
    previous: Option<&LockFile>,
    toolchain: GoPin,
    progress: &dyn FetchProgress,
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
            zig: Vec::new(),
            vendor: None,
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
        #[serde(default)]
        origin: Option<ModuleOrigin>,
    }
    let bytes = std::fs::read(path.join("module.json")).ok()?;
    let record: Record = serde_json::from_slice(&bytes).ok()?;
    Some(LockedModule {
        path: record.path,
        version: record.version,
        h1: record.h1,
        go_mod: record.go_mod,
        nar: record.nar,
        vendored: false,
        origin: record.origin,
    })
}

fn mismatch(
    wanted: &Wanted,
    what: &'static str,
    actual: String,
    expected: &str,
    source_file: &'static str,
    origin: Option<ModuleOrigin>,
) -> LockError {
    LockError::Mismatch {
        module: wanted.id(),
        what,
        actual,
        expected: expected.to_owned(),
        source_file,
        origin,
    }
}

/// The files of one module as a lock fetches them: each through GOPROXY's list, and from
/// version control (one `go mod download` giving both files) once the list says `direct`.
struct ModuleSource<'a> {
    sources: Sources<'a>,
    wanted: &'a Wanted,
    /// What Go downloaded, once a file went direct.
    downloaded: Option<Downloaded>,
}

impl ModuleSource<'_> {
    fn origin(&self) -> Option<ModuleOrigin> {
        self.downloaded.as_ref().map(|_| ModuleOrigin::Direct)
    }

    fn fetch(&mut self, file: ProxyFile, limit: u64) -> Result<Vec<u8>, LockError> {
        let wanted = self.wanted;
        if self.downloaded.is_none() {
            let routed = self
                .sources
                .proxies
                .route(&wanted.path, &wanted.version, file, limit)
                .map_err(|source| LockError::Fetch {
                    module: wanted.id(),
                    source: Box::new(source),
                })?;
            if let Routed::Proxied(bytes) = routed {
                return Ok(bytes);
            }
            let downloaded = self
                .sources
                .direct
                .download(
                    &wanted.path,
                    &wanted.version,
                    modzip::MAX_GO_MOD,
                    modzip::MAX_ZIP_FILE,
                )
                .map_err(|source| LockError::FetchDirect {
                    module: wanted.id(),
                    source: Box::new(source),
                })?;
            self.downloaded = Some(downloaded);
        }
        let downloaded = self.downloaded.as_mut().ok_or(LockError::NotFetched {
            module: wanted.id(),
        })?;
        match file {
            ProxyFile::Mod => Ok(downloaded.go_mod.clone()),
            ProxyFile::Zip => Ok(std::mem::take(&mut downloaded.zip)),
            // A lock reads no .info; Go's stays in its scratch cache.
            ProxyFile::Info => Err(LockError::NotFetched {
                module: wanted.id(),
            }),
        }
    }
}

/// Lock one module: from the store when it has the pinned bytes, else fetched and verified.
fn lock_one(
    store: &Store,
    client: Sources<'_>,
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
            // A NAR hash gomod2nix.toml gives too (`kiln init --from-nix`) is checked
            // against the stored module's, which was computed when it was verified.
            if let Some(expected) = &wanted.nar
                && record.nar.as_deref() != Some(expected.as_str())
            {
                return Err(mismatch(
                    wanted,
                    "unpacked module (NAR hash)",
                    record.nar.clone().unwrap_or_default(),
                    expected,
                    GOMOD2NIX_FILE,
                    record.origin,
                ));
            }
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
    let mut source = ModuleSource {
        sources: client,
        wanted,
        downloaded: None,
    };
    let mod_bytes = source.fetch(ProxyFile::Mod, modzip::MAX_GO_MOD)?;
    let go_mod_hash = dirhash::hash_go_mod(&mod_bytes);
    if let Some(expected) = &wanted.go_mod
        && &go_mod_hash != expected
    {
        return Err(mismatch(
            wanted,
            "go.mod",
            go_mod_hash,
            expected,
            "go.sum",
            source.origin(),
        ));
    }
    let mut received = mod_bytes.len() as u64;
    let mut zip = None;
    if wanted.code {
        let zip_bytes = source.fetch(ProxyFile::Zip, modzip::MAX_ZIP_FILE)?;
        received += zip_bytes.len() as u64;
        let module_zip = modzip::read(
            &zip_bytes,
            &wanted.path,
            &wanted.version,
            ZipLimits::default(),
        )?;
        let h1 = module_zip.h1();
        if let Some(expected) = &wanted.h1
            && &h1 != expected
        {
            return Err(mismatch(
                wanted,
                "zip",
                h1,
                expected,
                "go.sum",
                source.origin(),
            ));
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
                GOMOD2NIX_FILE,
                source.origin(),
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
        vendored: false,
        origin: source.origin(),
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
    std::fs::create_dir_all(&folder).map_err(PathError::write(&folder))?;
    let write = |file: &str, bytes: &[u8]| {
        let path = folder.join(file);
        std::fs::write(&path, bytes).map_err(PathError::write(&path))
    };
    write("go.mod", mod_bytes)?;
    if let Some(zip_bytes) = zip_bytes {
        write("module.zip", zip_bytes)?;
    }
    let mut record = json!({
        "path": module.path,
        "version": module.version,
        "h1": module.h1,
        "go-mod": module.go_mod,
        "nar": module.nar,
    });
    // Only when there is one: a proxied module's record is the same bytes as before.
    if let (Some(origin), Some(fields)) = (module.origin, record.as_object_mut()) {
        fields.insert("origin".to_owned(), origin.as_str().into());
    }
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
            std::fs::rename(&staged.path, temp).map_err(PathError::write(temp))?;
            Ok::<_, LockError>(temp.to_owned())
        },
    )?;
    Ok(())
}
