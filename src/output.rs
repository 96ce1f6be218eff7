//! Outputs that appear whole or not at all.
//!
//! Every file or folder kiln writes for the user is written under a temporary name beside its
//! destination (`.kiln-tmp-…`, same filesystem), synced, then renamed into place. An error
//! removes the temporary (drop guards); Ctrl-C and SIGTERM remove it too, through a registry
//! the signal handler empties before exiting with status 130. Publishing (the rename) holds
//! the registry's lock, so the handler never deletes a folder while it is being renamed into
//! place: the destination is the old output or the new one, never a part.
//!
//! A SIGKILL leaves the temporary behind (nothing can run then). So every temporary is
//! *owned*: its creator holds an exclusive `flock` on it (on the file, or on the folder's own
//! descriptor) for as long as it lives, and the next kiln to write into that folder removes
//! each `.kiln-tmp-…` entry whose lock it can take ([`sweep`]): its owner is dead, since the
//! kernel drops a process's locks when it dies, however it dies. A sweeper can remove a
//! temporary in the instant between its creation and its owner's lock; the owner notices (the
//! path no longer names what it locked) and makes another.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::diagnostic::{Hint, PathError};

pub const TEMP_PREFIX: &str = ".kiln-tmp-";

/// What to do when a disk fills up, whichever file it hit (the CLI adds it to any error caused
/// by `ENOSPC`; the Go build's own message gets it too).
pub const DISK_FULL_HINT: &str = "the disk is full: free space (`kiln gc` removes store outputs no `result` link needs), or set KILN_HOME to a folder on a larger disk";

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("{} is a folder", .0.display())]
    IsAFolder(PathBuf),
    #[error("the folder for {} does not exist", .0.display())]
    NoParent(PathBuf),
}

/// The hint of [`OutputError::IsAFolder`]; a command whose flag picks a folder format says so
/// instead (the library does not name kiln's flags).
pub const ONE_FILE_HINT: &str = "this format writes one file; give a file name";

impl Hint for OutputError {
    fn hint(&self) -> Option<String> {
        match self {
            OutputError::IsAFolder(_) => Some(ONE_FILE_HINT.to_owned()),
            _ => None,
        }
    }
}

struct Registry {
    next: u64,
    paths: BTreeMap<u64, PathBuf>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next: 0,
    paths: BTreeMap::new(),
});
static INSTALLED: AtomicU64 = AtomicU64::new(0);

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Install the Ctrl-C / SIGTERM handler that removes registered temporaries. Idempotent.
pub fn install_interrupt_handler() {
    if INSTALLED.fetch_add(1, Ordering::SeqCst) > 0 {
        return;
    }
    // Failing to install (another handler exists) only loses the cleanup, not correctness.
    let _ = ctrlc::set_handler(|| {
        let registry = registry();
        for path in registry.paths.values() {
            let _ = match std::fs::symlink_metadata(path) {
                Ok(metadata) if metadata.is_dir() => std::fs::remove_dir_all(path),
                Ok(_) => std::fs::remove_file(path),
                Err(_) => Ok(()),
            };
        }
        eprintln!("kiln: interrupted");
        std::process::exit(130);
    });
}

/// A temporary path known to the interrupt handler while this lives.
#[derive(Debug)]
pub struct Registration(u64);

impl Registration {
    pub fn new(path: &Path) -> Self {
        let mut registry = registry();
        Self::insert(&mut registry, path)
    }

    fn insert(registry: &mut Registry, path: &Path) -> Self {
        let id = registry.next;
        registry.next += 1;
        registry.paths.insert(id, path.to_owned());
        Registration(id)
    }

    /// Create a temporary with `make` and register the path `path_of` names, with the
    /// interrupt handler held off in between: a Ctrl-C landing just after the file appeared
    /// would otherwise leave it behind, unknown to the handler.
    pub fn create<T, E>(
        make: impl FnOnce() -> Result<T, E>,
        path_of: impl FnOnce(&T) -> &Path,
    ) -> Result<(T, Registration), E> {
        let mut registry = registry();
        let made = make()?;
        let registration = Self::insert(&mut registry, path_of(&made));
        Ok((made, registration))
    }

    /// Run `publish` (the rename) so the interrupt handler cannot run in the middle of it,
    /// then forget the path.
    pub fn publish<T>(self, publish: impl FnOnce() -> T) -> T {
        let mut registry = registry();
        let result = publish();
        registry.paths.remove(&self.0);
        std::mem::forget(self);
        result
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        registry().paths.remove(&self.0);
    }
}

fn parent_of(destination: &Path) -> Result<PathBuf, OutputError> {
    let parent = match destination.parent() {
        Some(parent) if parent.as_os_str().is_empty() => Path::new("."),
        Some(parent) => parent,
        None => return Err(OutputError::NoParent(destination.to_owned())),
    };
    if !parent.is_dir() {
        return Err(OutputError::NoParent(destination.to_owned()));
    }
    Ok(parent.to_owned())
}

/// A file written beside `destination` and renamed over it on [`AtomicFile::commit`].
pub struct AtomicFile {
    file: File,
    temp: tempfile::TempPath,
    destination: PathBuf,
    registration: Registration,
}

impl AtomicFile {
    pub fn create(destination: &Path) -> Result<Self, OutputError> {
        if destination.is_dir() {
            return Err(OutputError::IsAFolder(destination.to_owned()));
        }
        let parent = parent_of(destination)?;
        Self::create_in(&parent, destination)
    }

    /// A temporary in `folder` (which must be on the destination's filesystem).
    pub fn create_in(folder: &Path, destination: &Path) -> Result<Self, OutputError> {
        sweep_once(folder);
        for _ in 0..CLAIM_ATTEMPTS {
            let (named, registration) = Registration::create(
                || {
                    tempfile::Builder::new()
                        .prefix(TEMP_PREFIX)
                        // Created 0666 less the umask, like any file the user's tools create.
                        .permissions(std::fs::Permissions::from_mode(0o666))
                        .tempfile_in(folder)
                        .map_err(PathError::write(folder))
                },
                |named| named.path(),
            )?;
            let (file, temp) = named.into_parts();
            if !claim(&file, &temp).map_err(PathError::write(&temp))? {
                // Swept before we held it: the path is gone or another file's.
                let _ = temp.keep();
                continue;
            }
            return Ok(AtomicFile {
                file,
                temp,
                destination: destination.to_owned(),
                registration,
            });
        }
        Err(lost_race(folder))
    }

    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    pub fn destination(&self) -> &Path {
        &self.destination
    }

    /// Rename to `destination` on commit instead (for content-addressed files whose name is
    /// known only once written).
    pub fn retarget(mut self, destination: PathBuf) -> Self {
        self.destination = destination;
        self
    }

    /// Sync and rename into place.
    pub fn commit(self) -> Result<(), OutputError> {
        self.file.sync_all().map_err(PathError::write(&self.temp))?;
        self.commit_unsynced()
    }

    /// Rename into place without waiting for the disk: a reader sees the old file or the new
    /// one, but after a power loss the new one may be torn or empty, so only for files whose
    /// readers detect that (a checksum, or a record of the boot that wrote them).
    pub fn commit_unsynced(self) -> Result<(), OutputError> {
        let AtomicFile {
            temp,
            destination,
            registration,
            ..
        } = self;
        registration
            .publish(|| temp.persist(&destination))
            .map_err(|error| PathError::write(&destination)(error.error).into())
    }
}

/// A folder built beside `destination` and renamed onto it (which must be missing or an
/// empty folder) on [`AtomicDir::commit`].
pub struct AtomicDir {
    temp: Option<PathBuf>,
    destination: PathBuf,
    registration: Option<Registration>,
    /// The folder's own descriptor, holding its owner lock.
    _lock: File,
}

impl AtomicDir {
    pub fn create(destination: &Path) -> Result<Self, OutputError> {
        let parent = parent_of(destination)?;
        let (temp, lock, registration) = owned_temp_dir(&parent, TEMP_PREFIX)?;
        // The guard first, so a failing chmod still removes the folder.
        let folder = AtomicDir {
            temp: Some(temp.clone()),
            destination: destination.to_owned(),
            registration: Some(registration),
            _lock: lock,
        };
        // 0777 less the umask, like `mkdir`.
        let mode = 0o777 & !current_umask();
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(mode))
            .map_err(PathError::write(&temp))?;
        Ok(folder)
    }

    pub fn path(&self) -> &Path {
        self.temp.as_deref().unwrap_or(&self.destination)
    }

    pub fn commit(mut self) -> Result<(), OutputError> {
        let (Some(temp), Some(registration)) = (self.temp.take(), self.registration.take()) else {
            return Ok(());
        };
        let destination = self.destination.clone();
        registration
            .publish(|| std::fs::rename(&temp, &destination))
            .map_err(|source| {
                let _ = std::fs::remove_dir_all(&temp);
                PathError::write(&destination)(source).into()
            })
    }
}

impl Drop for AtomicDir {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            let _ = std::fs::remove_dir_all(temp);
        }
    }
}

/// The process umask, read without changing it (from /proc; 022 if unreadable).
fn current_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Umask:"))
                .and_then(|value| u32::from_str_radix(value.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

/// A scratch folder (not an output): owned like every temporary, removed when dropped, and
/// by the next kiln's [`sweep`] of its parent if this process dies first.
pub struct ScratchDir {
    path: PathBuf,
    /// `None` once renamed into place.
    registration: Option<Registration>,
    _lock: File,
}

impl ScratchDir {
    /// A new folder `.kiln-tmp-{label}…` in `parent`.
    pub fn new_in(parent: &Path, label: &str) -> Result<Self, OutputError> {
        let (path, lock, registration) = owned_temp_dir(parent, &format!("{TEMP_PREFIX}{label}"))?;
        Ok(ScratchDir {
            path,
            registration: Some(registration),
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rename the folder to `destination`: it is no longer a temporary. On an error it is
    /// removed.
    pub fn rename_to(mut self, destination: &Path) -> io::Result<()> {
        let Some(registration) = self.registration.take() else {
            return Ok(());
        };
        let renamed = registration.publish(|| std::fs::rename(&self.path, destination));
        if renamed.is_err() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
        renamed
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if self.registration.is_some() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// How often a temporary is made again after a sweeper removed it before its owner locked it.
const CLAIM_ATTEMPTS: usize = 8;

fn lost_race(folder: &Path) -> OutputError {
    PathError::write(folder)(io::Error::other(
        "every temporary made here was removed before it could be locked",
    ))
    .into()
}

/// A temporary folder named `{prefix}…` in `parent`, locked by its owner, registered with the
/// interrupt handler.
fn owned_temp_dir(
    parent: &Path,
    prefix: &str,
) -> Result<(PathBuf, File, Registration), OutputError> {
    sweep_once(parent);
    for _ in 0..CLAIM_ATTEMPTS {
        let (temp, registration) = Registration::create(
            || {
                tempfile::Builder::new()
                    .prefix(prefix)
                    .tempdir_in(parent)
                    .map(tempfile::TempDir::keep)
                    .map_err(PathError::write(parent))
            },
            |temp| temp.as_path(),
        )?;
        let lock = match File::open(&temp) {
            Ok(lock) => lock,
            // Swept already.
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => return Err(PathError::write(&temp)(error).into()),
        };
        if claim(&lock, &temp).map_err(PathError::write(&temp))? {
            return Ok((temp, lock, registration));
        }
    }
    Err(lost_race(parent))
}

/// Take the owner lock on `handle` and check that `path` still names it (a sweeper may have
/// removed it, and something else may have taken the name, between creation and lock).
fn claim(handle: &File, path: &Path) -> io::Result<bool> {
    handle.lock()?;
    let held = handle.metadata()?;
    match std::fs::symlink_metadata(path) {
        Ok(now) => Ok(now.dev() == held.dev() && now.ino() == held.ino()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

/// Remove every temporary in `folder` whose owner is gone: each `.kiln-tmp-…` file or folder
/// whose lock can be taken. Best effort (a temporary that cannot be removed stays for `kiln
/// gc` or the next sweep); returns how many went.
pub fn sweep(folder: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        if !entry
            .file_name()
            .as_encoded_bytes()
            .starts_with(TEMP_PREFIX.as_bytes())
        {
            continue;
        }
        let path = entry.path();
        let Ok(metadata) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !metadata.is_dir() && !metadata.is_file() {
            continue;
        }
        let Ok(handle) = File::open(&path) else {
            continue;
        };
        if handle.try_lock().is_err() {
            // Its owner is alive (or the lock cannot be taken here): leave it.
            continue;
        }
        // Still the entry we locked?
        let same = handle.metadata().is_ok_and(|held| {
            std::fs::symlink_metadata(&path)
                .is_ok_and(|now| now.dev() == held.dev() && now.ino() == held.ino())
        });
        if !same {
            continue;
        }
        let gone = if metadata.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed += usize::from(gone.is_ok());
    }
    removed
}

/// [`sweep`] `folder` the first time this process writes a temporary there: once is enough,
/// and a layout's blob folder gets many temporaries in a row.
fn sweep_once(folder: &Path) {
    static SWEPT: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
    let first = SWEPT
        .lock()
        .map(|mut swept| swept.insert(folder.to_owned()))
        .unwrap_or(false);
    if first {
        sweep(folder);
    }
}

/// This boot's identity (`/proc/sys/kernel/random/boot_id`, a random UUID the kernel makes
/// at boot), if the kernel gives one. Files kiln writes without waiting for the disk record
/// it, and are trusted only in the boot that wrote them: after a power loss they may be
/// torn, after any reboot they are checked (or thrown away) before they are used.
pub fn boot_id() -> Option<&'static str> {
    static BOOT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    BOOT.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let boot = text.trim();
        (!boot.is_empty() && !boot.contains(char::is_whitespace)).then(|| boot.to_owned())
    })
    .as_deref()
}

/// Write `bytes` to `destination` atomically.
pub fn write_atomic(destination: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let mut file = AtomicFile::create(destination)?;
    io::Write::write_all(file.file(), bytes).map_err(PathError::write(destination))?;
    file.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_appears_only_on_commit() {
        let temp = tempfile::tempdir().unwrap();
        let destination = temp.path().join("out.tar");
        let mut file = AtomicFile::create(&destination).unwrap();
        io::Write::write_all(file.file(), b"data").unwrap();
        assert!(!destination.exists());
        file.commit().unwrap();
        assert_eq!(std::fs::read(&destination).unwrap(), b"data");
        let mode = std::fs::metadata(&destination)
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o666 & !current_umask());
        // Only the output remains.
        assert_eq!(std::fs::read_dir(temp.path()).unwrap().count(), 1);
    }

    #[test]
    fn dropped_outputs_leave_nothing() {
        let temp = tempfile::tempdir().unwrap();
        let destination = temp.path().join("out.tar");
        drop(AtomicFile::create(&destination).unwrap());
        let folder = AtomicDir::create(&temp.path().join("layout")).unwrap();
        std::fs::write(folder.path().join("x"), b"x").unwrap();
        drop(folder);
        assert_eq!(std::fs::read_dir(temp.path()).unwrap().count(), 0);
    }

    /// Regression (crash tests): a SIGKILLed kiln left `.kiln-tmp-…` files and folders that
    /// no later run removed. Now a dead owner's temporaries go with the next write into their
    /// folder, and a live owner's stay.
    #[test]
    fn temporaries_of_a_killed_kiln_are_swept_and_live_ones_kept() {
        let temp = tempfile::tempdir().unwrap();
        // A live owner's (this process holds them).
        let live_file = AtomicFile::create(&temp.path().join("out.tar")).unwrap();
        let live_dir = ScratchDir::new_in(temp.path(), "lock-").unwrap();
        // What a killed kiln leaves: unlocked temporaries (a file, a folder with content).
        std::fs::write(temp.path().join(".kiln-tmp-dead-file"), b"half").unwrap();
        std::fs::create_dir_all(temp.path().join(".kiln-tmp-dead-dir/blobs")).unwrap();
        // Not kiln's: never touched.
        std::fs::write(temp.path().join("user-file"), b"mine").unwrap();
        assert!(
            live_dir
                .path()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".kiln-tmp-lock-")
        );
        assert_eq!(sweep(temp.path()), 2);
        let mut names: Vec<String> = std::fs::read_dir(temp.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(names.contains(&"user-file".to_owned()));
        assert!(live_dir.path().is_dir());
        drop(live_dir);
        drop(live_file);
        assert_eq!(std::fs::read_dir(temp.path()).unwrap().count(), 1);
    }

    #[test]
    fn folder_replaces_an_empty_folder() {
        let temp = tempfile::tempdir().unwrap();
        let destination = temp.path().join("layout");
        std::fs::create_dir(&destination).unwrap();
        let folder = AtomicDir::create(&destination).unwrap();
        std::fs::write(folder.path().join("oci-layout"), b"{}").unwrap();
        folder.commit().unwrap();
        assert!(destination.join("oci-layout").is_file());
    }
}
