//! A project's sources as git would see them, their hash, and a copy to build from.
//!
//! Included: every file and symlink under the project folder that `.gitignore` files inside
//! the project do not exclude, whether committed or not. Excluded: `.git`, `result` and
//! `result-*` symlinks (kiln's own output links), kiln's temporaries, and anything a
//! `.gitignore` excludes. Host-dependent rules are off (global gitignore, `.git/info/exclude`,
//! `.gitignore` files above the project) so two checkouts of a project hash alike. Folders
//! are not recorded, as git does not track them.
//!
//! The hash is a sha256 over one line per entry, sorted by path bytes:
//! `file <path> <x|-> <sha256 of content>` or `symlink <path> <target>`.
//!
//! Files are read only when kiln's index of the folder cannot vouch for them
//! ([`super::source_index`]): an unchanged tree costs a walk and an `lstat` per file. Go
//! builds from a copy holding exactly these entries ([`super::worktree`]), so what was hashed
//! is what was built; each file's content is hashed again while it is copied and must match.

use std::io;
use std::path::{Path, PathBuf};

use sha2::Digest as _;

use super::source_index::{Clock, FileStat, Record, StatIndex};
use crate::diagnostic::{Hint, PathError};
use crate::oci::digest::{Digest, HashingWriter};

#[derive(Debug, thiserror::Error)]
pub enum SourcesError {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("cannot walk {}: {message}", .path.display())]
    Walk { path: PathBuf, message: String },
    #[error("{} has a name kiln cannot record (not UTF-8, or with a newline)", .0.display())]
    BadName(PathBuf),
    #[error("{} changed while kiln was reading it", .0.display())]
    Changed(PathBuf),
}

impl Hint for SourcesError {
    fn hint(&self) -> Option<String> {
        match self {
            SourcesError::Changed(_) => Some("run the build again".to_owned()),
            _ => None,
        }
    }
}

/// One entry of the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceEntry {
    File {
        path: String,
        executable: bool,
        size: u64,
        digest: Digest,
    },
    Symlink {
        path: String,
        target: String,
    },
}

impl SourceEntry {
    pub fn path(&self) -> &str {
        match self {
            SourceEntry::File { path, .. } | SourceEntry::Symlink { path, .. } => path,
        }
    }
}

/// The sources of a project.
#[derive(Clone, Debug)]
pub struct SourceTree {
    pub root: PathBuf,
    pub entries: Vec<SourceEntry>,
    pub digest: Digest,
    /// How many files the scan read and hashed (the others' digests came from the index).
    pub hashed: usize,
}

impl SourceTree {
    pub fn contains(&self, path: &str) -> bool {
        self.entries
            .binary_search_by(|entry| entry.path().cmp(path))
            .is_ok()
    }
}

fn is_result_link(name: &str) -> bool {
    name == "result" || name.starts_with("result-")
}

/// Where a scan keeps its [`StatIndex`]: the index file, and a folder on the same filesystem
/// for its temporaries (whose files also give the filesystem's clock).
pub struct IndexPlace<'a> {
    pub index: &'a Path,
    pub temp_folder: &'a Path,
}

/// A file found by the walk, before its digest is known.
struct Found {
    path: String,
    full: PathBuf,
    stat: FileStat,
    digest: Option<Digest>,
}

/// Scan and hash the sources under `root`, leaving out the folders in `skip` (the kiln home,
/// when it lives inside a project). With `place`, files whose index record is trusted
/// ([`StatIndex::trusted`]) are not read, and the index is brought up to date (best effort: an
/// index that cannot be written only costs the next scan time).
pub fn scan(
    root: &Path,
    skip: &[PathBuf],
    place: Option<IndexPlace<'_>>,
) -> Result<SourceTree, SourcesError> {
    // Taken before any file is looked at: see `source_index` for why.
    let started = place
        .as_ref()
        .map(|place| Clock::now(place.temp_folder))
        .unwrap_or(Clock::EPOCH);
    let previous = place
        .as_ref()
        .and_then(|place| StatIndex::read(place.index));
    let skip = skip.to_vec();
    let walker = ignore::WalkBuilder::new(root)
        .hidden(false)
        .parents(false)
        .ignore(false)
        .git_ignore(true)
        .git_global(false)
        .git_exclude(false)
        .require_git(false)
        .follow_links(false)
        .filter_entry(move |entry| {
            let name = entry.file_name().to_string_lossy();
            let is_symlink = entry.file_type().is_some_and(|kind| kind.is_symlink());
            !(name == ".git"
                || name.starts_with(crate::output::TEMP_PREFIX)
                || (is_symlink && is_result_link(&name))
                || skip.iter().any(|skipped| entry.path() == skipped))
        })
        .build();
    let mut symlinks = Vec::new();
    let mut files = Vec::new();
    for entry in walker {
        let entry = entry.map_err(|error| SourcesError::Walk {
            path: root.to_owned(),
            message: error.to_string(),
        })?;
        let Some(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            continue;
        }
        let full = entry.path();
        let relative = full
            .strip_prefix(root)
            .ok()
            .and_then(Path::to_str)
            .filter(|text| !text.contains('\n'))
            .ok_or_else(|| SourcesError::BadName(full.to_owned()))?
            .to_owned();
        if kind.is_symlink() {
            let target = std::fs::read_link(full).map_err(PathError::read(full))?;
            let target = target
                .to_str()
                .filter(|text| !text.contains('\n'))
                .ok_or_else(|| SourcesError::BadName(full.to_owned()))?
                .to_owned();
            symlinks.push(SourceEntry::Symlink {
                path: relative,
                target,
            });
        } else if kind.is_file() {
            let metadata = std::fs::symlink_metadata(full).map_err(PathError::read(full))?;
            let stat = FileStat::of(&metadata);
            let digest = previous
                .as_ref()
                .and_then(|index| index.trusted(&relative, &stat));
            files.push(Found {
                path: relative,
                full: full.to_owned(),
                stat,
                digest,
            });
        }
        // Sockets, FIFOs and devices in a source tree are not sources.
    }
    let hashed = hash_missing(&mut files)?;
    let mut index = StatIndex::new(started);
    let mut entries = symlinks;
    for found in files {
        let Found {
            path, stat, digest, ..
        } = found;
        // `hash_missing` gave every file its digest.
        let digest = digest.ok_or_else(|| SourcesError::Changed(root.join(&path)))?;
        index.insert(path.clone(), Record { stat, digest });
        entries.push(SourceEntry::File {
            path,
            executable: stat.mode & 0o111 != 0,
            size: stat.size,
            digest,
        });
    }
    // Every record trusted and none gone: the index on disk says all this already.
    let unchanged = hashed == 0
        && previous
            .as_ref()
            .is_some_and(|previous| previous.len() == index.len());
    if let Some(place) = place.as_ref().filter(|_| !unchanged) {
        let _ = index.write(place.index, place.temp_folder);
    }
    entries.sort_by(|a, b| a.path().as_bytes().cmp(b.path().as_bytes()));
    let mut hasher = sha2::Sha256::new();
    for entry in &entries {
        match entry {
            SourceEntry::File {
                path,
                executable,
                digest,
                ..
            } => hasher.update(format!(
                "file {path} {} {}\n",
                if *executable { "x" } else { "-" },
                digest.hex()
            )),
            SourceEntry::Symlink { path, target } => {
                hasher.update(format!("symlink {path} {target}\n"))
            }
        }
    }
    Ok(SourceTree {
        root: root.to_owned(),
        entries,
        digest: Digest::from_raw(hasher.finalize().into()),
        hashed,
    })
}

/// Read and hash every file of `files` that has no digest yet, on every core (a cold scan of
/// a large vendored tree is mostly reading). A file whose `lstat` differs after it was read
/// changed while kiln read it: an error, as for a copy. Returns how many were hashed.
fn hash_missing(files: &mut [Found]) -> Result<usize, SourcesError> {
    let missing: Vec<&mut Found> = files
        .iter_mut()
        .filter(|found| found.digest.is_none())
        .collect();
    let count = missing.len();
    if count == 0 {
        return Ok(0);
    }
    let threads = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .clamp(1, 8)
        .min(count);
    let chunk = count.div_ceil(threads);
    let mut missing = missing;
    std::thread::scope(|scope| {
        let workers: Vec<_> = missing
            .chunks_mut(chunk)
            .map(|part| {
                scope.spawn(move || {
                    for found in part.iter_mut() {
                        found.digest = Some(hash_file(&found.full, &found.stat)?);
                    }
                    Ok::<(), SourcesError>(())
                })
            })
            .collect();
        workers.into_iter().try_for_each(|worker| {
            worker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    })?;
    Ok(count)
}

/// The digest of the file at `full`, which `lstat` said was `stat` before it was read.
fn hash_file(full: &Path, stat: &FileStat) -> Result<Digest, SourcesError> {
    let mut file = std::fs::File::open(full).map_err(PathError::read(full))?;
    let mut hasher = HashingWriter::new(io::sink());
    io::copy(&mut file, &mut hasher).map_err(PathError::read(full))?;
    let (_, digest, size) = hasher.finish();
    let after = std::fs::symlink_metadata(full).map_err(PathError::read(full))?;
    if size != stat.size || FileStat::of(&after) != *stat {
        return Err(SourcesError::Changed(full.to_owned()));
    }
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, path: &str, content: &str) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    #[test]
    fn follows_gitignore_and_skips_kiln_links() {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join("project");
        write(&root, "main.go", "package main\n");
        write(&root, "sub/lib.go", "package sub\n");
        write(&root, ".gitignore", "*.log\nbuild/\n");
        write(&root, "debug.log", "noise");
        write(&root, "build/out", "noise");
        write(&root, ".git/HEAD", "ref: refs/heads/main\n");
        write(&root, "sub/.gitignore", "local.txt\n");
        write(&root, "sub/local.txt", "noise");
        std::os::unix::fs::symlink("/nix/store/whatever", root.join("result")).unwrap();
        std::os::unix::fs::symlink("main.go", root.join("alias.go")).unwrap();
        // A .gitignore above the project must not matter.
        write(temp.path(), ".gitignore", "main.go\n");
        let tree = scan(&root, &[], None).unwrap();
        let paths: Vec<&str> = tree.entries.iter().map(SourceEntry::path).collect();
        assert_eq!(
            paths,
            [
                ".gitignore",
                "alias.go",
                "main.go",
                "sub/.gitignore",
                "sub/lib.go"
            ]
        );

        // The same files elsewhere hash the same; a change in content changes the hash.
        let other = temp.path().join("elsewhere/copy");
        let mut layout = super::super::worktree::Layout::default();
        layout.add_tree("", &tree).unwrap();
        super::super::worktree::sync(&other, None, temp.path(), &layout).unwrap();
        assert_eq!(scan(&other, &[], None).unwrap().digest, tree.digest);
        write(&other, "sub/lib.go", "package sub // changed\n");
        assert_ne!(scan(&other, &[], None).unwrap().digest, tree.digest);
    }

    /// The index spares reading what cannot have changed, and never spares what may have:
    /// an edit that keeps size and mtime (`touch -r`), or one in the same tick as a scan.
    #[test]
    fn the_index_rereads_exactly_what_may_have_changed() {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join("project");
        for index in 0..20 {
            write(
                &root,
                &format!("pkg/file{index}.go"),
                "package pkg // one\n",
            );
        }
        let index = temp.path().join("sources.index");
        let place = || {
            Some(IndexPlace {
                index: &index,
                temp_folder: temp.path(),
            })
        };
        // Fresh files are read by every scan until they are two seconds older than a scan.
        let first = scan(&root, &[], place()).unwrap();
        assert_eq!(first.hashed, 20);
        assert_eq!(scan(&root, &[], place()).unwrap().hashed, 20);
        std::thread::sleep(std::time::Duration::from_millis(2100));
        assert_eq!(scan(&root, &[], place()).unwrap().hashed, 20);
        let settled = scan(&root, &[], place()).unwrap();
        assert_eq!(settled.hashed, 0);
        assert_eq!(settled.digest, first.digest);

        // Same size, mtime put back: ctime still moves, so the file is read.
        let edited = root.join("pkg/file3.go");
        let mtime = std::fs::metadata(&edited).unwrap().modified().unwrap();
        std::fs::write(&edited, "package pkg // two\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&edited)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert_eq!(
            std::fs::metadata(&edited).unwrap().modified().unwrap(),
            mtime
        );
        let after = scan(&root, &[], place()).unwrap();
        assert_eq!(after.hashed, 1);
        assert_ne!(after.digest, first.digest);
        assert_eq!(after.digest, scan(&root, &[], None).unwrap().digest);

        // Edits right after a scan, over and over: each one seen.
        for round in 0..5 {
            std::fs::write(&edited, format!("package pkg // r{round}\n")).unwrap();
            let tree = scan(&root, &[], place()).unwrap();
            assert_eq!(
                tree.digest,
                scan(&root, &[], None).unwrap().digest,
                "round {round}"
            );
        }
        // A file replaced by a link, a file deleted, a new file: all seen.
        std::fs::remove_file(root.join("pkg/file4.go")).unwrap();
        std::os::unix::fs::symlink("file5.go", root.join("pkg/file4.go")).unwrap();
        std::fs::remove_file(root.join("pkg/file6.go")).unwrap();
        write(&root, "pkg/new.go", "package pkg\n");
        let changed = scan(&root, &[], place()).unwrap();
        assert_eq!(changed.digest, scan(&root, &[], None).unwrap().digest);
        assert!(changed.entries.contains(&SourceEntry::Symlink {
            path: "pkg/file4.go".to_owned(),
            target: "file5.go".to_owned()
        }));
        assert!(!changed.contains("pkg/file6.go"));
        // A damaged index is no index.
        std::fs::write(&index, "kiln stat index 1\ngarbage\n").unwrap();
        assert_eq!(scan(&root, &[], place()).unwrap().hashed, 19);
    }
}
