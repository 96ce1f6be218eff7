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
//! Go builds from a copy holding exactly these entries, so what was hashed is what was built;
//! each file's content is hashed again while it is copied and must match.

use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::Digest as _;

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
    #[error("{} changed while the build was copying it", .0.display())]
    Changed(PathBuf),
    #[error(
        "cannot copy sources to {}: a link or another copy is already there (kiln never writes through one)",
        .0.display()
    )]
    Occupied(PathBuf),
}

impl Hint for SourcesError {
    fn hint(&self) -> Option<String> {
        match self {
            SourcesError::Changed(_) => Some("run the build again".to_owned()),
            _ => None,
        }
    }
}

/// Copy at most `limit` bytes of `input` (the file `source`) to `output` (the file `target`),
/// blaming a failed read on the source and a failed write (a full disk) on the copy.
fn copy_at_most(
    input: &mut impl Read,
    source: &Path,
    output: &mut impl Write,
    target: &Path,
    limit: u64,
) -> Result<u64, SourcesError> {
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

/// Scan and hash the sources under `root`, leaving out the folders in `skip` (the kiln home,
/// when it lives inside a project).
pub fn scan(root: &Path, skip: &[PathBuf]) -> Result<SourceTree, SourcesError> {
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
    let mut entries = Vec::new();
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
            entries.push(SourceEntry::Symlink {
                path: relative,
                target,
            });
        } else if kind.is_file() {
            let metadata = std::fs::metadata(full).map_err(PathError::read(full))?;
            let mut file = std::fs::File::open(full).map_err(PathError::read(full))?;
            let mut hasher = HashingWriter::new(io::sink());
            io::copy(&mut file, &mut hasher).map_err(PathError::read(full))?;
            let (_, digest, size) = hasher.finish();
            entries.push(SourceEntry::File {
                path: relative,
                executable: metadata.permissions().mode() & 0o111 != 0,
                size,
                digest,
            });
        }
        // Sockets, FIFOs and devices in a source tree are not sources.
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
    })
}

/// Copy the tree into `destination`, checking every file against its recorded digest.
///
/// Nothing is written through a link or over an existing file: every folder on the way must
/// be a real folder and every file is created new, so two trees that overlap (or a tree whose
/// link sits where another tree's folder goes) are an error, never a write outside
/// `destination`.
pub fn copy(tree: &SourceTree, destination: &Path) -> Result<(), SourcesError> {
    std::fs::create_dir_all(destination).map_err(PathError::write(destination))?;
    let mut real_folders = std::collections::HashSet::new();
    real_folders.insert(destination.to_owned());
    for entry in &tree.entries {
        let target_path = destination.join(entry.path());
        if let Some(parent) = target_path.parent() {
            make_real_folder(parent, &mut real_folders)?;
        }
        match entry {
            SourceEntry::Symlink { target, .. } => {
                match std::os::unix::fs::symlink(target, &target_path) {
                    Ok(()) => {}
                    Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                        return Err(SourcesError::Occupied(target_path));
                    }
                    Err(error) => return Err(PathError::write(&target_path)(error).into()),
                }
            }
            SourceEntry::File {
                path,
                executable,
                size,
                digest,
            } => {
                let source = tree.root.join(path);
                let mut input = std::fs::File::open(&source).map_err(PathError::read(&source))?;
                let output = match std::fs::File::options()
                    .write(true)
                    .create_new(true)
                    .open(&target_path)
                {
                    Ok(output) => output,
                    Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                        return Err(SourcesError::Occupied(target_path));
                    }
                    Err(error) => return Err(PathError::write(&target_path)(error).into()),
                };
                let mut writer = HashingWriter::new(io::BufWriter::new(output));
                let copied =
                    copy_at_most(&mut input, &source, &mut writer, &target_path, *size + 1)?;
                writer.flush().map_err(PathError::write(&target_path))?;
                let (_, copied_digest, _) = writer.finish();
                if copied != *size || copied_digest != *digest {
                    return Err(SourcesError::Changed(source));
                }
                let mode = if *executable { 0o755 } else { 0o644 };
                std::fs::set_permissions(&target_path, std::fs::Permissions::from_mode(mode))
                    .map_err(PathError::write(&target_path))?;
            }
        }
    }
    Ok(())
}

/// Create `folder` (and its parents) as real folders: a link on the way is an error.
fn make_real_folder(
    folder: &Path,
    real_folders: &mut std::collections::HashSet<PathBuf>,
) -> Result<(), SourcesError> {
    if real_folders.contains(folder) {
        return Ok(());
    }
    if let Some(parent) = folder.parent() {
        make_real_folder(parent, real_folders)?;
    }
    match std::fs::symlink_metadata(folder) {
        Ok(metadata) if metadata.is_dir() => {}
        Ok(_) => return Err(SourcesError::Occupied(folder.to_owned())),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir(folder).map_err(PathError::write(folder))?;
        }
        Err(error) => return Err(PathError::read(folder)(error).into()),
    }
    real_folders.insert(folder.to_owned());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (disk-full tests): a write that failed for want of space was reported as
    /// `cannot read SOURCE`, blaming the user's file.
    #[test]
    fn a_full_disk_while_copying_sources_names_the_copy_not_the_source() {
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
            Path::new("/store/tmp/x/src/assets/data.bin"),
            5,
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot write /store/tmp/x/src/assets/data.bin"
        );
        // And a copy stops at the limit.
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

    fn write(root: &Path, path: &str, content: &str) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    #[test]
    fn copies_never_write_through_links_or_over_files() {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join("project");
        write(&root, "lib/a.go", "package lib\n");
        let tree = scan(&root, &[]).unwrap();
        let outside = temp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let destination = temp.path().join("copy");
        std::fs::create_dir(&destination).unwrap();
        std::os::unix::fs::symlink(&outside, destination.join("lib")).unwrap();
        let error = copy(&tree, &destination).unwrap_err();
        assert!(matches!(error, SourcesError::Occupied(ref path) if path.ends_with("copy/lib")));
        assert!(
            !outside.join("a.go").exists(),
            "nothing written through the link"
        );
        // A second copy over the first is refused too, file by file.
        let again = temp.path().join("again");
        copy(&tree, &again).unwrap();
        let error = copy(&tree, &again).unwrap_err();
        assert!(matches!(error, SourcesError::Occupied(ref path) if path.ends_with("lib/a.go")));
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
        let tree = scan(&root, &[]).unwrap();
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
        copy(&tree, &other).unwrap();
        assert_eq!(scan(&other, &[]).unwrap().digest, tree.digest);
        write(&other, "sub/lib.go", "package sub // changed\n");
        assert_ne!(scan(&other, &[]).unwrap().digest, tree.digest);
    }

    #[test]
    fn a_file_changing_during_the_copy_is_caught() {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join("project");
        write(&root, "main.go", "package main\n");
        let tree = scan(&root, &[]).unwrap();
        write(&root, "main.go", "package main // edited\n");
        let error = copy(&tree, &temp.path().join("copy"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("main.go changed while the build was copying it"),
            "{error}"
        );
    }
}
