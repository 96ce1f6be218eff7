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
use super::source_walk::{self, Exclusions};
use crate::diagnostic::{Hint, PathError};
use crate::oci::digest::{Digest, HashingWriter};

#[derive(Debug, thiserror::Error)]
pub enum SourcesError {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("{} changed while kiln was reading it", .0.display())]
    Changed(PathBuf),
    #[error(transparent)]
    Walked(#[from] source_walk::WalkError),
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
    stat: FileStat,
    digest: Option<Digest>,
}

/// What the walk found: files (digests not yet looked up) and symlinks.
struct Walked {
    files: Vec<Found>,
    symlinks: Vec<SourceEntry>,
}

/// The threads a scan walks with: every core, at most 8 (a walk is `lstat` and `getdents`
/// calls, which scale with cores until the filesystem's locks decide).
fn walk_threads() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .clamp(1, 8)
}

/// Scan and hash the sources under `root`, leaving out the folders in `skip` (the kiln home,
/// when it lives inside a project). With `place`, files whose index record is trusted
/// ([`StatIndex::trusted`]) are not read, and the index is brought up to date (best effort: an
/// index that cannot be written only costs the next scan time).
///
/// The walk runs on every core ([`source_walk`]) while another thread reads the
/// index; what the walk finds is sorted by path afterwards, so the result does not depend
/// on the order the threads saw the files in.
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
    let index_path = place.as_ref().map(|place| place.index.to_owned());
    let (previous, walked) = std::thread::scope(|scope| {
        let reader = scope.spawn(move || index_path.as_deref().and_then(StatIndex::read));
        let walked = walk(root, skip);
        let previous = reader
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (previous, walked)
    });
    let Walked {
        mut files,
        symlinks,
    } = walked?;
    if let Some(index) = &previous {
        for found in &mut files {
            found.digest = index.trusted(&found.path, &found.stat);
        }
    }
    let hashed = hash_missing(root, &mut files)?;
    // Every record trusted and none gone: the index on disk says all this already.
    let unchanged = hashed == 0
        && previous
            .as_ref()
            .is_some_and(|previous| previous.len() == files.len());
    if let Some(place) = place.as_ref().filter(|_| !unchanged) {
        let mut index = StatIndex::new(started);
        for found in &files {
            if let Some(digest) = found.digest {
                index.insert(
                    found.path.clone(),
                    Record {
                        stat: found.stat,
                        digest,
                    },
                );
            }
        }
        let _ = index.write(place.index, place.temp_folder);
    }
    let mut entries = symlinks;
    entries.reserve(files.len());
    for found in files {
        let Found {
            path, stat, digest, ..
        } = found;
        // `hash_missing` gave every file its digest.
        let digest = digest.ok_or_else(|| SourcesError::Changed(root.join(&path)))?;
        entries.push(SourceEntry::File {
            path,
            executable: stat.mode & 0o111 != 0,
            size: stat.size,
            digest,
        });
    }
    entries.sort_unstable_by(|a, b| a.path().as_bytes().cmp(b.path().as_bytes()));
    let mut hasher = sha2::Sha256::new();
    let mut line = String::new();
    for entry in &entries {
        line.clear();
        match entry {
            SourceEntry::File {
                path,
                executable,
                digest,
                ..
            } => {
                line.push_str("file ");
                line.push_str(path);
                line.push_str(if *executable { " x " } else { " - " });
                line.push_str(&digest.hex());
            }
            SourceEntry::Symlink { path, target } => {
                line.push_str("symlink ");
                line.push_str(path);
                line.push(' ');
                line.push_str(target);
            }
        }
        line.push('\n');
        hasher.update(line.as_bytes());
    }
    Ok(SourceTree {
        root: root.to_owned(),
        entries,
        digest: Digest::from_raw(hasher.finalize().into()),
        hashed,
    })
}

fn excluded_name(name: &str, is_symlink: bool) -> bool {
    name == ".git"
        || name.starts_with(crate::output::TEMP_PREFIX)
        || (is_symlink && is_result_link(name))
}

/// Walk `root` on [`walk_threads`] threads (`source_walk`): the files (with their `lstat`)
/// and symlinks that are sources, in no particular order. The first error stops the walk.
fn walk(root: &Path, skip: &[PathBuf]) -> Result<Walked, SourcesError> {
    let exclusions = Exclusions {
        skip,
        name: &excluded_name,
    };
    let walked = source_walk::walk(root, &exclusions, walk_threads())?;
    Ok(Walked {
        files: walked
            .files
            .into_iter()
            .map(|(path, stat)| Found {
                path,
                stat,
                digest: None,
            })
            .collect(),
        symlinks: walked
            .symlinks
            .into_iter()
            .map(|(path, target)| SourceEntry::Symlink { path, target })
            .collect(),
    })
}

/// Read and hash every file of `files` that has no digest yet, on every core (a cold scan of
/// a large vendored tree is mostly reading). A file whose `lstat` differs after it was read
/// changed while kiln read it: an error, as for a copy. Returns how many were hashed.
fn hash_missing(root: &Path, files: &mut [Found]) -> Result<usize, SourcesError> {
    let missing: Vec<&mut Found> = files
        .iter_mut()
        .filter(|found| found.digest.is_none())
        .collect();
    let count = missing.len();
    if count == 0 {
        return Ok(0);
    }
    let threads = walk_threads().min(count);
    let chunk = count.div_ceil(threads);
    let mut missing = missing;
    std::thread::scope(|scope| {
        let workers: Vec<_> = missing
            .chunks_mut(chunk)
            .map(|part| {
                scope.spawn(move || {
                    for found in part.iter_mut() {
                        found.digest = Some(hash_file(&root.join(&found.path), &found.stat)?);
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
