//! Outputs that appear whole or not at all.
//!
//! Every file or folder kiln writes for the user is written under a temporary name beside its
//! destination (`.kiln-tmp-…`, same filesystem), synced, then renamed into place. An error
//! removes the temporary (drop guards); Ctrl-C and SIGTERM remove it too, through a registry
//! the signal handler empties before exiting with status 130. Publishing (the rename) holds
//! the registry's lock, so the handler never deletes a folder while it is being renamed into
//! place: the destination is the old output or the new one, never a part.
//!
//! A SIGKILL leaves the temporary behind (nothing can run then); its name says what it is.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

pub const TEMP_PREFIX: &str = ".kiln-tmp-";

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot write {}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is a folder\nhint: this format writes one file; give a file name, or use `--format oci` for a folder", .0.display())]
    IsAFolder(PathBuf),
    #[error("the folder for {} does not exist", .0.display())]
    NoParent(PathBuf),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: path.to_owned(),
        source,
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
        let id = registry.next;
        registry.next += 1;
        registry.paths.insert(id, path.to_owned());
        Registration(id)
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
        let named = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            // Created 0666 less the umask, like any file the user's tools create.
            .permissions(std::fs::Permissions::from_mode(0o666))
            .tempfile_in(folder)
            .map_err(io_error(folder))?;
        let registration = Registration::new(named.path());
        let (file, temp) = named.into_parts();
        Ok(AtomicFile {
            file,
            temp,
            destination: destination.to_owned(),
            registration,
        })
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
        self.file.sync_all().map_err(io_error(&self.temp))?;
        let AtomicFile {
            temp,
            destination,
            registration,
            ..
        } = self;
        registration
            .publish(|| temp.persist(&destination))
            .map_err(|error| OutputError::Io {
                path: destination.clone(),
                source: error.error,
            })
    }
}

/// A folder built beside `destination` and renamed onto it (which must be missing or an
/// empty folder) on [`AtomicDir::commit`].
pub struct AtomicDir {
    temp: Option<PathBuf>,
    destination: PathBuf,
    registration: Option<Registration>,
}

impl AtomicDir {
    pub fn create(destination: &Path) -> Result<Self, OutputError> {
        let parent = parent_of(destination)?;
        let temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempdir_in(&parent)
            .map_err(io_error(&parent))?
            .keep();
        let registration = Registration::new(&temp);
        // The guard first, so a failing chmod still removes the folder.
        let folder = AtomicDir {
            temp: Some(temp.clone()),
            destination: destination.to_owned(),
            registration: Some(registration),
        };
        // 0777 less the umask, like `mkdir`.
        let mode = 0o777 & !current_umask();
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(mode))
            .map_err(io_error(&temp))?;
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
                OutputError::Io {
                    path: destination,
                    source,
                }
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

/// Write `bytes` to `destination` atomically.
pub fn write_atomic(destination: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let mut file = AtomicFile::create(destination)?;
    io::Write::write_all(file.file(), bytes).map_err(io_error(destination))?;
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
