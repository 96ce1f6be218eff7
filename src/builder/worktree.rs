//! The folders Go builds in: kept per project and brought up to date file by file, so an
//! edit copies one file rather than the whole tree.
//!
//! Layout, under the project's folder of the store (`v1/projects/<key>/`, see
//! [`crate::store::Store::project_state`]):
//!
//! ```text
//! build-<n>/src/…        the sources, laid out as `super::sandbox` says
//! build-<n>/bin/<variant>/<program>   Go's `-o`, kept so an unchanged program is not linked again
//! build-<n>.index        a `source_index` of every file kiln wrote under src/
//! ```
//!
//! A build takes the first slot whose lock it can take at once (`locks/project-<key>-<n>`),
//! so several kilns on one project each get their own; with every slot busy it builds in a
//! folder of its own under `tmp/`, copied whole, as when kiln kept no folders.
//!
//! Why Go can only read the bytes the build's recipe names: [`sync`] walks the whole `src/`
//! folder before each build. What is not wanted (a file the project no longer has, anything
//! put there by something else, the half-written file of a killed kiln) is removed. A file
//! that is wanted stays only if its `lstat` is the one recorded when kiln wrote and hashed it,
//! under the same settled-record rule as the sources' index (`super::source_index`); one too
//! recent is read and hashed again. Everything else is copied anew from the project,
//! hashed while it is copied and compared with the digest the recipe was computed from, so a
//! file edited since the scan is an error rather than a build of other bytes. Files are
//! written read-only, and only while the slot's lock is held. Go writes nothing under `src/`
//! (`-mod=vendor`/`-mod=readonly`, the module cache and build cache are elsewhere).
//!
//! The new index is written while Go builds (it is not needed before the next build), and
//! always before the slot's lock is released. A kill at any point leaves either the previous
//! index (whose records no longer match what was replaced) or the new one, so the next build
//! removes or rewrites whatever it finds half-done. `kiln gc` removes slots it cannot use
//! again (see `Store::gc`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::source_index::{Clock, FileStat, Record, StatIndex};
use super::sources::{SourceEntry, SourceTree};
use crate::diagnostic::{Hint, PathError};
use crate::oci::digest::{Digest, HashingWriter};
use crate::store::{OutputLock, Store, StoreError};

/// How many build folders one project keeps: one per kiln running on it at once.
pub const SLOTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum WorktreeError {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{} changed while kiln was copying it", .0.display())]
    Changed(PathBuf),
    #[error(
        "cannot lay out the sources at {}: two of the project's folders (its own and a `replace` folder) put different things there",
        .0.display()
    )]
    Occupied(PathBuf),
}

impl Hint for WorktreeError {
    fn hint(&self) -> Option<String> {
        match self {
            WorktreeError::Changed(_) => Some("run the build again".to_owned()),
            WorktreeError::Store(inner) => inner.hint(),
            _ => None,
        }
    }
}

/// What one path of a build folder must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wanted {
    /// A copy of the file `source`, which must hash to `digest`.
    File {
        source: PathBuf,
        executable: bool,
        size: u64,
        digest: Digest,
    },
    /// These bytes (a go.sum kiln writes).
    Bytes(Vec<u8>),
    Symlink(String),
}

impl Wanted {
    fn digest(&self) -> Option<Digest> {
        match self {
            Wanted::File { digest, .. } => Some(*digest),
            Wanted::Bytes(bytes) => Some(Digest::of(bytes)),
            Wanted::Symlink(_) => None,
        }
    }

    fn executable(&self) -> bool {
        matches!(
            self,
            Wanted::File {
                executable: true,
                ..
            }
        )
    }
}

/// Everything a build folder's `src/` must hold, by path relative to it.
#[derive(Debug, Default)]
pub struct Layout {
    entries: BTreeMap<String, Wanted>,
}

impl Layout {
    /// Place `tree` at `prefix` (relative, `/`-separated, or empty). A path placed twice must
    /// be placed alike.
    pub fn add_tree(&mut self, prefix: &str, tree: &SourceTree) -> Result<(), WorktreeError> {
        for entry in &tree.entries {
            let path = join(prefix, entry.path());
            let wanted = match entry {
                SourceEntry::File {
                    path: relative,
                    executable,
                    size,
                    digest,
                } => Wanted::File {
                    source: tree.root.join(relative),
                    executable: *executable,
                    size: *size,
                    digest: *digest,
                },
                SourceEntry::Symlink { target, .. } => Wanted::Symlink(target.clone()),
            };
            if let Some(previous) = self.entries.get(&path)
                && !same_content(previous, &wanted)
            {
                return Err(WorktreeError::Occupied(PathBuf::from(path)));
            }
            self.entries.insert(path, wanted);
        }
        Ok(())
    }

    /// Put `bytes` at `path` (relative), whatever a tree put there.
    pub fn add_bytes(&mut self, path: &str, bytes: Vec<u8>) {
        self.entries.insert(path.to_owned(), Wanted::Bytes(bytes));
    }

    /// Every folder on the way to a wanted path. A wanted path that is also a folder (a
    /// link where another tree has a folder) is refused: kiln never writes through a link.
    fn folders(&self) -> Result<BTreeSet<String>, WorktreeError> {
        let mut folders = BTreeSet::new();
        for path in self.entries.keys() {
            let mut end = path.len();
            while let Some(slash) = path[..end].rfind('/') {
                if !folders.insert(path[..slash].to_owned()) {
                    break;
                }
                end = slash;
            }
        }
        if let Some(clash) = folders
            .iter()
            .find(|folder| self.entries.contains_key(*folder))
        {
            return Err(WorktreeError::Occupied(PathBuf::from(clash)));
        }
        Ok(folders)
    }
}

fn same_content(a: &Wanted, b: &Wanted) -> bool {
    match (a, b) {
        (Wanted::Symlink(a), Wanted::Symlink(b)) => a == b,
        (Wanted::Symlink(_), _) | (_, Wanted::Symlink(_)) => false,
        _ => a.digest() == b.digest() && a.executable() == b.executable(),
    }
}

fn join(prefix: &str, path: &str) -> String {
    if prefix.is_empty() {
        path.to_owned()
    } else {
        format!("{prefix}/{path}")
    }
}

/// What [`sync`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Wanted files and links already there.
    pub kept: usize,
    /// Of those, files whose record was too recent, read and hashed again.
    pub verified: usize,
    /// Files and links written.
    pub written: usize,
    /// Paths removed (files, links, whole folders).
    pub removed: usize,
}

/// A build folder, held for as long as this value lives.
pub struct BuildFolder {
    /// The sources go under here.
    pub src: PathBuf,
    /// Go's outputs go under here.
    pub bin: PathBuf,
    /// The record of `src/`, for a kept folder; `None` for a one-off folder.
    index: Option<PathBuf>,
    _lock: Option<OutputLock>,
}

impl BuildFolder {
    /// A free kept folder of the project at `root`, or, with every slot taken, a one-off
    /// folder under `scratch` (removed with it).
    pub fn take(store: &Store, root: &Path, scratch: &Path) -> Result<BuildFolder, WorktreeError> {
        let state = store.project_state(root)?;
        for slot in 0..SLOTS {
            let Some(lock) = store.try_lock_project_slot(&state, slot)? else {
                continue;
            };
            let folder = state.join(format!("build-{slot}"));
            return Ok(BuildFolder {
                src: folder.join("src"),
                bin: folder.join("bin"),
                index: Some(state.join(format!("build-{slot}.index"))),
                _lock: Some(lock),
            });
        }
        Ok(BuildFolder::one_off(scratch))
    }

    /// A folder of its own under `scratch`, copied whole.
    pub fn one_off(scratch: &Path) -> BuildFolder {
        BuildFolder {
            src: scratch.join("src"),
            bin: scratch.join("go-bin"),
            index: None,
            _lock: None,
        }
    }

    /// Bring `src/` to exactly `layout`, leaving the new record of it to be written while Go
    /// builds (the caller writes it before the folder's lock goes: see [`PendingIndex`]).
    /// `temp_folder` holds the index's temporaries.
    pub fn sync(&self, layout: &Layout, temp_folder: &Path) -> Result<PendingIndex, WorktreeError> {
        sync_leaving_index(&self.src, self.index.as_deref(), temp_folder, layout)
            .map(|(_, pending)| pending)
    }
}

/// The record of a synced folder, still to be written: a few thousand records take
/// milliseconds to write, which a build spends beside Go rather than before it (issue 18).
/// Until it is written the previous record stays, and it no longer matches any file that was
/// replaced, so a kill before the write costs the next build copies, never wrong bytes.
#[must_use = "the folder's record is written by `write`"]
pub struct PendingIndex(Option<(StatIndex, PathBuf, PathBuf)>);

impl PendingIndex {
    /// Write the record (nothing when nothing changed, or for a one-off folder).
    pub fn write(self) -> Result<(), WorktreeError> {
        match self.0 {
            Some((index, path, temp_folder)) => index
                .write(&path, &temp_folder)
                .map_err(|error| StoreError::from(error).into()),
            None => Ok(()),
        }
    }
}

/// Make `folder` hold exactly `layout` (see the module docs), recording what is there in the
/// index at `index_path` when given.
pub fn sync(
    folder: &Path,
    index_path: Option<&Path>,
    temp_folder: &Path,
    layout: &Layout,
) -> Result<SyncReport, WorktreeError> {
    let (report, index) = sync_leaving_index(folder, index_path, temp_folder, layout)?;
    index.write()?;
    Ok(report)
}

/// [`sync`], the index left for the caller to write.
fn sync_leaving_index(
    folder: &Path,
    index_path: Option<&Path>,
    temp_folder: &Path,
    layout: &Layout,
) -> Result<(SyncReport, PendingIndex), WorktreeError> {
    let started = match index_path {
        Some(_) => Clock::now(temp_folder),
        None => Clock::EPOCH,
    };
    let previous = index_path.and_then(StatIndex::read);
    let folders = layout.folders()?;
    let mut report = SyncReport::default();
    let mut index = StatIndex::new(started);
    let mut present = BTreeSet::new();
    std::fs::create_dir_all(folder).map_err(PathError::write(folder))?;
    let mut pending = vec![String::new()];
    while let Some(relative) = pending.pop() {
        let here = if relative.is_empty() {
            folder.to_owned()
        } else {
            folder.join(&relative)
        };
        for entry in std::fs::read_dir(&here).map_err(PathError::walk(&here))? {
            let entry = entry.map_err(PathError::walk(&here))?;
            let full = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                remove(&full)?;
                report.removed += 1;
                continue;
            };
            let path = join(&relative, &name);
            // `lstat` relative to the folder's descriptor (`statx` on the entry's name), not
            // through the whole path from the root again.
            let metadata = entry.metadata().map_err(PathError::read(&full))?;
            if metadata.is_dir() {
                if folders.contains(&path) {
                    pending.push(path);
                } else {
                    remove(&full)?;
                    report.removed += 1;
                }
                continue;
            }
            let keep = match layout.entries.get(&path) {
                Some(Wanted::Symlink(target)) => {
                    metadata.file_type().is_symlink()
                        && std::fs::read_link(&full)
                            .is_ok_and(|link| link.as_os_str() == target.as_str())
                }
                Some(wanted) if metadata.is_file() => {
                    let stat = FileStat::of(&metadata);
                    let record = previous.as_ref().and_then(|index| index.get(&path));
                    match (record, wanted.digest()) {
                        (Some(record), Some(digest))
                            if record.stat == stat
                                && record.digest == digest
                                && (stat.mode & 0o111 != 0) == wanted.executable() =>
                        {
                            let settled = previous
                                .as_ref()
                                .is_some_and(|index| index.is_settled(&stat));
                            if settled || rehash(&full, &stat)? == Some(digest) {
                                report.verified += usize::from(!settled);
                                index.insert(path.clone(), Record { stat, digest });
                                true
                            } else {
                                false
                            }
                        }
                        _ => false,
                    }
                }
                _ => false,
            };
            if keep {
                report.kept += 1;
                present.insert(path);
            } else {
                remove(&full)?;
                report.removed += 1;
            }
        }
    }
    for folder_path in &folders {
        let full = folder.join(folder_path);
        if !full.is_dir() {
            std::fs::create_dir_all(&full).map_err(PathError::write(&full))?;
        }
    }
    for (path, wanted) in &layout.entries {
        if present.contains(path) {
            continue;
        }
        let target = folder.join(path);
        if let Some(record) = write(wanted, &target)? {
            index.insert(path.clone(), record);
        }
        report.written += 1;
    }
    // Nothing written, removed or read again: the index on disk says all this already.
    let unchanged = report.written == 0 && report.removed == 0 && report.verified == 0;
    let pending = index_path
        .filter(|_| !unchanged)
        .map(|index_path| (index, index_path.to_owned(), temp_folder.to_owned()));
    Ok((report, PendingIndex(pending)))
}

/// Remove a file, link or folder of a build folder (kiln's own: read-only files in writable
/// folders, so unlinking needs no permission change).
fn remove(path: &Path) -> Result<(), WorktreeError> {
    let metadata = std::fs::symlink_metadata(path).map_err(PathError::read(path))?;
    let result = if metadata.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match result {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(PathError::remove(path)(error).into()),
    }
}

/// The digest of kiln's own copy at `path`, if it still has `stat` after reading.
fn rehash(path: &Path, stat: &FileStat) -> Result<Option<Digest>, WorktreeError> {
    let mut file = std::fs::File::open(path).map_err(PathError::read(path))?;
    let mut hasher = HashingWriter::new(io::sink());
    io::copy(&mut file, &mut hasher).map_err(PathError::read(path))?;
    let (_, digest, _) = hasher.finish();
    let after = std::fs::symlink_metadata(path).map_err(PathError::read(path))?;
    Ok((FileStat::of(&after) == *stat).then_some(digest))
}

/// Write `wanted` at `target` (which does not exist), returning the record of a file.
fn write(wanted: &Wanted, target: &Path) -> Result<Option<Record>, WorktreeError> {
    let (mut input, source, size, digest): (Box<dyn Read>, &Path, u64, Digest) = match wanted {
        Wanted::Symlink(link) => {
            std::os::unix::fs::symlink(link, target).map_err(PathError::write(target))?;
            return Ok(None);
        }
        Wanted::File {
            source,
            size,
            digest,
            ..
        } => (
            Box::new(std::fs::File::open(source).map_err(PathError::read(source))?),
            source.as_path(),
            *size,
            *digest,
        ),
        Wanted::Bytes(bytes) => (
            Box::new(io::Cursor::new(bytes.clone())),
            target,
            bytes.len() as u64,
            Digest::of(bytes),
        ),
    };
    let mode = if wanted.executable() { 0o555 } else { 0o444 };
    let output = std::fs::File::options()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(target)
        .map_err(PathError::write(target))?;
    let written = fill(output, &mut input, source, target, size, digest, mode);
    if written.is_err() {
        // A full disk must not stay full of half a copy until the next build.
        let _ = std::fs::remove_file(target);
    }
    written.map(Some)
}

/// Copy `input` (the file `source`, `size` bytes hashing to `digest`) into the new file
/// `output` at `target`, and give it `mode`.
fn fill(
    output: std::fs::File,
    input: &mut dyn Read,
    source: &Path,
    target: &Path,
    size: u64,
    digest: Digest,
    mode: u32,
) -> Result<Record, WorktreeError> {
    let mut writer = HashingWriter::new(io::BufWriter::new(output));
    let copied = copy_at_most(input, source, &mut writer, target, size + 1)?;
    writer.flush().map_err(PathError::write(target))?;
    let (buffered, copied_digest, _) = writer.finish();
    if copied != size || copied_digest != digest {
        return Err(WorktreeError::Changed(source.to_owned()));
    }
    let file = buffered
        .into_inner()
        .map_err(|error| PathError::write(target)(error.into_error()))?;
    // The umask may have taken bits away: the mode is kiln's, exactly.
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(PathError::write(target))?;
    let metadata = file.metadata().map_err(PathError::read(target))?;
    Ok(Record {
        stat: FileStat::of(&metadata),
        digest,
    })
}

/// Copy at most `limit` bytes of `input` (the file `source`) to `output` (the file `target`),
/// blaming a failed read on the source and a failed write (a full disk) on the copy.
fn copy_at_most(
    input: &mut (impl Read + ?Sized),
    source: &Path,
    output: &mut impl Write,
    target: &Path,
    limit: u64,
) -> Result<u64, WorktreeError> {
    let mut buffer = vec![0u8; 64 * 1024];
    let mut copied = 0u64;
    while copied < limit {
        let want = usize::try_from(limit - copied)
            .unwrap_or(usize::MAX)
            .min(buffer.len());
        let read = match input.read(&mut buffer[..want]) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(PathError::read(source)(error).into()),
        };
        output
            .write_all(&buffer[..read])
            .map_err(PathError::write(target))?;
        copied += read as u64;
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::sources::scan;

    fn write_file(root: &Path, path: &str, content: &str) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    fn layout_of(tree: &SourceTree) -> Layout {
        let mut layout = Layout::default();
        layout.add_tree("", tree).unwrap();
        layout
    }

    /// Every file and link under `folder`, with its content or target.
    fn contents(folder: &Path) -> BTreeMap<String, String> {
        fn walk(folder: &Path, prefix: &str, found: &mut BTreeMap<String, String>) {
            for entry in std::fs::read_dir(folder).unwrap() {
                let entry = entry.unwrap();
                let name = join(prefix, entry.file_name().to_str().unwrap());
                let kind = entry.file_type().unwrap();
                if kind.is_symlink() {
                    let target = std::fs::read_link(entry.path()).unwrap();
                    found.insert(name, format!("-> {}", target.display()));
                } else if kind.is_dir() {
                    walk(&entry.path(), &name, found);
                } else {
                    found.insert(name, std::fs::read_to_string(entry.path()).unwrap());
                }
            }
        }
        let mut found = BTreeMap::new();
        walk(folder, "", &mut found);
        found
    }

    /// Regression (disk-full tests): a write that failed for want of space was reported as
    /// `cannot read SOURCE`, blaming the user's file.
    #[test]
    fn a_full_disk_while_copying_names_the_copy_not_the_source() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from(io::ErrorKind::StorageFull))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let error = copy_at_most(
            &mut &b"data"[..],
            Path::new("/project/assets/data.bin"),
            &mut Full,
            Path::new("/store/projects/x/build-0/src/assets/data.bin"),
            5,
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot write /store/projects/x/build-0/src/assets/data.bin"
        );
        let mut copied = Vec::new();
        let count = copy_at_most(
            &mut &b"0123456789"[..],
            Path::new("a"),
            &mut copied,
            Path::new("b"),
            4,
        )
        .unwrap();
        assert_eq!((count, copied.as_slice()), (4, &b"0123"[..]));
    }

    /// The record a build writes beside Go: until it is written, the previous one stands
    /// and the next sync, seeing the replaced file's stat differ from it, copies that file
    /// again rather than trusting it; once written, the next sync keeps everything.
    #[test]
    fn an_index_left_unwritten_costs_a_copy_never_a_stale_file() {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join("project");
        write_file(&root, "main.go", "package main\n");
        write_file(&root, "lib/a.go", "package lib\n");
        let folder = temp.path().join("build/src");
        let index = temp.path().join("build.index");
        let tree = scan(&root, &[], None).unwrap();
        sync(&folder, Some(&index), temp.path(), &layout_of(&tree)).unwrap();
        let before = std::fs::read(&index).unwrap();

        write_file(&root, "main.go", "package main // edited\n");
        let tree = scan(&root, &[], None).unwrap();
        let (report, pending) =
            sync_leaving_index(&folder, Some(&index), temp.path(), &layout_of(&tree)).unwrap();
        assert_eq!(report.written, 1, "{report:?}");
        assert_eq!(std::fs::read(&index).unwrap(), before, "not written yet");
        // A kill here: the pending record is lost, the folder is synced again.
        drop(pending);
        let again = sync(&folder, Some(&index), temp.path(), &layout_of(&tree)).unwrap();
        assert_eq!(again.written, 1, "main.go is copied again: {again:?}");
        assert_eq!(contents(&folder), contents(&root));

        write_file(&root, "main.go", "package main // edited twice\n");
        let tree = scan(&root, &[], None).unwrap();
        let (_, pending) =
            sync_leaving_index(&folder, Some(&index), temp.path(), &layout_of(&tree)).unwrap();
        std::thread::spawn(move || pending.write())
            .join()
            .unwrap()
            .unwrap();
        let kept = sync(&folder, Some(&index), temp.path(), &layout_of(&tree)).unwrap();
        assert_eq!(
            (kept.kept, kept.written, kept.removed),
            (2, 0, 0),
            "{kept:?}"
        );
        assert_eq!(contents(&folder), contents(&root));
    }

    /// The folder ends up holding exactly the tree, whatever was there; unchanged files are
    /// kept (not copied), changed ones replaced, strays removed.
    #[test]
    fn a_kept_folder_is_brought_to_exactly_the_tree() {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join("project");
        write_file(&root, "main.go", "package main\n");
        write_file(&root, "lib/a.go", "package lib\n");
        write_file(&root, "lib/deep/b.go", "package deep\n");
        std::os::unix::fs::symlink("lib/a.go", root.join("alias.go")).unwrap();
        let folder = temp.path().join("build/src");
        let index = temp.path().join("build.index");
        let tree = scan(&root, &[], None).unwrap();
        let first = sync(&folder, Some(&index), temp.path(), &layout_of(&tree)).unwrap();
        assert_eq!((first.kept, first.written, first.removed), (0, 4, 0));
        assert_eq!(contents(&folder), contents(&root));
        let mode = std::fs::metadata(folder.join("main.go"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o444);

        // Unchanged: nothing written (the records are too fresh to be settled, so the files
        // are hashed again instead).
        let second = sync(&folder, Some(&index), temp.path(), &layout_of(&tree)).unwrap();
        assert_eq!((second.kept, second.verified, second.written), (4, 3, 0));

        // An edit, a deletion, a new file, a link retargeted, and debris of other writers.
        write_file(&root, "main.go", "package main // edited\n");
        std::fs::remove_file(root.join("lib/deep/b.go")).unwrap();
        write_file(&root, "lib/new.go", "package lib // new\n");
        std::fs::remove_file(root.join("alias.go")).unwrap();
        std::os::unix::fs::symlink("main.go", root.join("alias.go")).unwrap();
        write_file(&folder, "stray.go", "package main // not a source\n");
        write_file(&folder, "strays/x.go", "package strays\n");
        std::os::unix::fs::symlink("/etc", folder.join("lib/etc")).unwrap();
        let tree = scan(&root, &[], None).unwrap();
        let third = sync(&folder, Some(&index), temp.path(), &layout_of(&tree)).unwrap();
        assert_eq!(contents(&folder), contents(&root));
        assert_eq!(third.written, 3, "{third:?}");

        // A copy edited behind kiln's back (its mode restored, even) is replaced.
        let copy = folder.join("lib/a.go");
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&copy, "package lib // tampered\n").unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o444)).unwrap();
        sync(&folder, Some(&index), temp.path(), &layout_of(&tree)).unwrap();
        assert_eq!(std::fs::read_to_string(&copy).unwrap(), "package lib\n");

        // A damaged index only costs a full copy.
        std::fs::write(&index, "garbage").unwrap();
        let fresh = sync(&folder, Some(&index), temp.path(), &layout_of(&tree)).unwrap();
        assert_eq!(fresh.kept, 1, "only the link is kept: {fresh:?}");
        assert_eq!(contents(&folder), contents(&root));
    }

    #[test]
    fn nothing_is_written_through_links_or_where_trees_disagree() {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join("project");
        write_file(&root, "lib/a.go", "package lib\n");
        let outside = temp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let other = temp.path().join("other");
        std::fs::create_dir(&other).unwrap();
        std::os::unix::fs::symlink(&outside, other.join("lib")).unwrap();
        let tree = scan(&root, &[], None).unwrap();
        let linked = scan(&other, &[], None).unwrap();
        // One tree has a link where the other has a folder.
        let mut layout = Layout::default();
        layout.add_tree("", &tree).unwrap();
        layout.add_tree("", &linked).unwrap();
        let error = sync(&temp.path().join("copy"), None, temp.path(), &layout).unwrap_err();
        assert!(matches!(error, WorktreeError::Occupied(ref path) if path == Path::new("lib")));
        // A link in the build folder where a folder goes is removed, never written through.
        let folder = temp.path().join("build");
        std::fs::create_dir(&folder).unwrap();
        std::os::unix::fs::symlink(&outside, folder.join("lib")).unwrap();
        sync(&folder, None, temp.path(), &layout_of(&tree)).unwrap();
        assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
        assert_eq!(
            std::fs::read_to_string(folder.join("lib/a.go")).unwrap(),
            "package lib\n"
        );
        // Two trees that put different bytes at one path.
        write_file(&other, "x.go", "package one\n");
        let mut layout = layout_of(&scan(&other, &[], None).unwrap());
        let changed = temp.path().join("changed");
        write_file(&changed, "x.go", "package two\n");
        let error = layout
            .add_tree("", &scan(&changed, &[], None).unwrap())
            .unwrap_err();
        assert!(matches!(error, WorktreeError::Occupied(ref path) if path == Path::new("x.go")));
    }

    #[test]
    fn a_file_changing_during_the_copy_is_caught_and_not_left_behind() {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join("project");
        write_file(&root, "main.go", "package main\n");
        let tree = scan(&root, &[], None).unwrap();
        write_file(&root, "main.go", "package main // edited\n");
        let folder = temp.path().join("copy");
        let error = sync(&folder, None, temp.path(), &layout_of(&tree)).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("main.go changed while kiln was copying it"),
            "{error}"
        );
        assert_eq!(error.hint().as_deref(), Some("run the build again"));
        assert!(!folder.join("main.go").exists());
    }
}
