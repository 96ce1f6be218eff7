//! The walk of a project's sources: every file and symlink `.gitignore` files do not exclude,
//! found with as few system calls as the kernel allows, on every core.
//!
//! Written here rather than taken from `ignore`'s walker (which kiln used before, and whose
//! `.gitignore` matcher it still uses) because a no-op build of a large vendored tree is this
//! walk and little else, and the general walker costs it about a third more: each entry's
//! `lstat` goes through its full path from the project root (the kernel looks up every
//! folder of the path again), every folder is probed for ignore files by path, and idle
//! threads sleep in 1 ms steps. Here each folder is opened once relative to its parent's
//! descriptor, its entries' types come from `getdents` itself, files are `lstat`ed relative
//! to the folder's descriptor (`fstatat`), and only a `.gitignore` the listing shows is read.
//!
//! What is excluded is exactly what `ignore::WalkBuilder` excluded with kiln's settings
//! (hidden files included, no `.ignore` files, no global gitignore or `.git/info/exclude`, no
//! `.gitignore` above the project, git rules without needing a repository): an entry is
//! excluded when the nearest `.gitignore` with a rule that matches it says so (a `!` rule
//! keeps it), looking from its own folder up to the project folder. An excluded folder is
//! not entered. (Unlike git, a nested repository's files are sources under the rules above
//! it too, as they were with `ignore`'s walker: changing that would change source hashes.)

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};

use super::source_index::FileStat;
use crate::diagnostic::PathError;

#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("cannot walk {}: {message}", .path.display())]
    Walk { path: PathBuf, message: String },
    #[error("{} has a name kiln cannot record (not UTF-8, or with a newline)", .0.display())]
    BadName(PathBuf),
}

/// What the walk found, in no particular order.
#[derive(Default)]
pub struct Walked {
    /// Relative paths and their `lstat`.
    pub files: Vec<(String, FileStat)>,
    /// Relative paths and their targets.
    pub symlinks: Vec<(String, String)>,
}

/// Which entries are not sources whatever `.gitignore` says.
pub struct Exclusions<'a> {
    /// Folders left out by their full path (the kiln home, when it lives inside a project).
    pub skip: &'a [PathBuf],
    /// Whether an entry of this name is left out (`.git`, kiln's temporaries, its `result`
    /// links), given whether it is a symlink.
    pub name: &'a (dyn Fn(&str, bool) -> bool + Sync),
}

/// The `.gitignore` rules in force in a folder: its own, then its parents' up to the project
/// folder.
struct Rules {
    gitignore: Gitignore,
    parent: Option<Arc<Rules>>,
}

impl Rules {
    /// Whether `path` (relative to the project) is excluded.
    fn excludes(rules: &Option<Arc<Rules>>, path: &str, is_dir: bool) -> bool {
        let mut next = rules.as_deref();
        while let Some(rules) = next {
            match rules.gitignore.matched(path, is_dir) {
                Match::Ignore(_) => return true,
                Match::Whitelist(_) => return false,
                Match::None => {}
            }
            next = rules.parent.as_deref();
        }
        false
    }
}

/// A folder to read: its parent's open descriptor and its name there (the project folder
/// itself has neither), its path relative to the project, and the rules of its parent.
struct Job {
    parent: Option<(Arc<Dir>, CString)>,
    relative: String,
    rules: Option<Arc<Rules>>,
}

/// The folders still to read, shared by the walking threads: a stack, so the walk goes deep
/// first and only the folders on the current paths hold open descriptors.
struct Queue {
    state: Mutex<QueueState>,
    changed: Condvar,
}

struct QueueState {
    jobs: Vec<Job>,
    /// Threads reading a folder now (each may push more jobs).
    busy: usize,
    failure: Option<WalkError>,
}

/// Walk the sources under `root` on `threads` threads.
pub fn walk(root: &Path, exclusions: &Exclusions<'_>, threads: usize) -> Result<Walked, WalkError> {
    let queue = Queue {
        state: Mutex::new(QueueState {
            jobs: vec![Job {
                parent: None,
                relative: String::new(),
                rules: None,
            }],
            busy: 0,
            failure: None,
        }),
        changed: Condvar::new(),
    };
    let parts: Vec<Walked> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| scope.spawn(|| work(root, exclusions, &queue)))
            .collect();
        workers
            .into_iter()
            .map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let state = queue
        .state
        .into_inner()
        .unwrap_or_else(|poison| poison.into_inner());
    if let Some(failure) = state.failure {
        return Err(failure);
    }
    let mut walked = Walked::default();
    for part in parts {
        walked.files.extend(part.files);
        walked.symlinks.extend(part.symlinks);
    }
    Ok(walked)
}

/// One walking thread: take folders until none is left and no thread can add more.
fn work(root: &Path, exclusions: &Exclusions<'_>, queue: &Queue) -> Walked {
    let mut walked = Walked::default();
    let mut pushed = Vec::new();
    loop {
        let job = {
            let mut state = queue
                .state
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            loop {
                if state.failure.is_some() {
                    return walked;
                }
                if let Some(job) = state.jobs.pop() {
                    state.busy += 1;
                    break job;
                }
                if state.busy == 0 {
                    return walked;
                }
                state = queue
                    .changed
                    .wait(state)
                    .unwrap_or_else(|poison| poison.into_inner());
            }
        };
        let result = read_folder(root, exclusions, job, &mut walked, &mut pushed);
        let mut state = queue
            .state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        state.busy -= 1;
        match result {
            Ok(()) => state.jobs.append(&mut pushed),
            Err(error) => {
                state.failure.get_or_insert(error);
            }
        }
        drop(state);
        queue.changed.notify_all();
    }
}

/// Read one folder: its files and symlinks into `walked`, its folders into `pushed`.
fn read_folder(
    root: &Path,
    exclusions: &Exclusions<'_>,
    job: Job,
    walked: &mut Walked,
    pushed: &mut Vec<Job>,
) -> Result<(), WalkError> {
    let full = || root.join(&job.relative);
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let fd = match &job.parent {
        // The project folder may itself be reached through a symlink, as before.
        None => rustix::fs::open(root, flags, Mode::empty()),
        // A folder replaced by a symlink since its parent was listed is not followed.
        Some((parent, name)) => rustix::fs::openat(
            fd_of(parent),
            name.as_c_str(),
            flags | OFlags::NOFOLLOW,
            Mode::empty(),
        ),
    }
    .map_err(|error| PathError::read(&full())(io::Error::from(error)))?;
    let mut dir = Dir::new(fd).map_err(|error| walk_error(&full(), error))?;
    let mut entries: Vec<(CString, FileType)> = Vec::new();
    let mut gitignore_present = false;
    for entry in &mut dir {
        let entry = entry.map_err(|error| walk_error(&full(), error))?;
        let name = entry.file_name();
        match name.to_bytes() {
            b"." | b".." => continue,
            b".gitignore" => gitignore_present = true,
            _ => {}
        }
        entries.push((name.to_owned(), entry.file_type()));
    }
    let dir = Arc::new(dir);
    let gitignore = match gitignore_present {
        true => read_gitignore(root, &job.relative, fd_of(&dir))?,
        false => None,
    };
    let rules = match gitignore {
        Some(gitignore) => Some(Arc::new(Rules {
            gitignore,
            parent: job.rules.clone(),
        })),
        None => job.rules.clone(),
    };
    for (name, mut kind) in entries {
        let Some(text) = name.to_str().ok().filter(|text| !text.contains('\n')) else {
            return Err(WalkError::BadName(full().join(
                <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name.to_bytes()),
            )));
        };
        if kind == FileType::Unknown {
            // Some filesystems do not say in `getdents`.
            let stat = rustix::fs::statat(fd_of(&dir), name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|error| PathError::read(&full().join(text))(io::Error::from(error)))?;
            kind = FileType::from_raw_mode(stat.st_mode);
        }
        let is_symlink = kind == FileType::Symlink;
        if (exclusions.name)(text, is_symlink) {
            continue;
        }
        let relative = if job.relative.is_empty() {
            text.to_owned()
        } else {
            format!("{}/{text}", job.relative)
        };
        let is_dir = kind == FileType::Directory;
        if Rules::excludes(&rules, &relative, is_dir) {
            continue;
        }
        if !exclusions.skip.is_empty()
            && exclusions
                .skip
                .iter()
                .any(|skipped| *skipped == root.join(&relative))
        {
            continue;
        }
        match kind {
            FileType::Directory => pushed.push(Job {
                parent: Some((dir.clone(), name)),
                relative,
                rules: rules.clone(),
            }),
            FileType::RegularFile => {
                let stat =
                    rustix::fs::statat(fd_of(&dir), name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(|error| {
                            PathError::read(&root.join(&relative))(io::Error::from(error))
                        })?;
                walked.files.push((relative, FileStat::of_stat(&stat)));
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(fd_of(&dir), name.as_c_str(), Vec::new())
                    .map_err(|error| {
                        PathError::read(&root.join(&relative))(io::Error::from(error))
                    })?;
                let target = target
                    .into_string()
                    .ok()
                    .filter(|text| !text.contains('\n'))
                    .ok_or_else(|| WalkError::BadName(root.join(&relative)))?;
                walked.symlinks.push((relative, target));
            }
            // Sockets, FIFOs and devices in a source tree are not sources.
            _ => {}
        }
    }
    Ok(())
}

fn fd_of(dir: &Dir) -> BorrowedFd<'_> {
    // `Dir::fd` cannot fail on Linux; it returns a `Result` for other systems.
    dir.fd()
        .unwrap_or_else(|_| unreachable!("Dir::fd is infallible on Linux"))
}

fn walk_error(path: &Path, error: rustix::io::Errno) -> WalkError {
    WalkError::Walk {
        path: path.to_owned(),
        message: io::Error::from(error).to_string(),
    }
}

/// The rules of the `.gitignore` in the folder `relative` (open as `folder`), read as
/// `ignore` reads one: lines, a byte-order mark at the start dropped, a line that is not
/// UTF-8 or not a valid pattern an error naming the file and line. A `.gitignore` that is a
/// dangling symlink is none.
fn read_gitignore(
    root: &Path,
    relative: &str,
    folder: BorrowedFd<'_>,
) -> Result<Option<Gitignore>, WalkError> {
    let path = root.join(relative).join(".gitignore");
    let name: &CStr = c".gitignore";
    let fd = match rustix::fs::openat(
        folder.as_fd(),
        name,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(error) => return Err(PathError::read(&path)(io::Error::from(error)).into()),
    };
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut std::fs::File::from(fd), &mut bytes)
        .map_err(PathError::read(&path))?;
    let mut builder = GitignoreBuilder::new(if relative.is_empty() { "." } else { relative });
    let bad_line = |number: usize, message: String| WalkError::Walk {
        path: path.clone(),
        message: format!("line {number}: {message}"),
    };
    for (index, line) in bytes.split(|&byte| byte == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line =
            std::str::from_utf8(line).map_err(|_| bad_line(index + 1, "not UTF-8".to_owned()))?;
        let line = if index == 0 {
            line.trim_start_matches('\u{feff}')
        } else {
            line
        };
        builder
            .add_line(Some(path.clone()), line)
            .map_err(|error| bad_line(index + 1, error.to_string()))?;
    }
    let gitignore = builder.build().map_err(|error| WalkError::Walk {
        path: path.clone(),
        message: error.to_string(),
    })?;
    Ok(Some(gitignore))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, path: &str, content: &str) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    fn no_names(name: &str, is_symlink: bool) -> bool {
        name == ".git" || (is_symlink && name == "result")
    }

    fn sorted(walked: Walked) -> Vec<String> {
        let mut paths: Vec<String> = walked
            .files
            .into_iter()
            .map(|(path, _)| path)
            .chain(walked.symlinks.into_iter().map(|(path, _)| path))
            .collect();
        paths.sort();
        paths
    }

    /// What `ignore`'s walker, with the settings kiln used before this walk was its own,
    /// finds: the oracle for which entries `.gitignore` files exclude.
    fn ignore_walk(root: &Path) -> Vec<String> {
        let mut paths = Vec::new();
        for entry in ignore::WalkBuilder::new(root)
            .hidden(false)
            .parents(false)
            .ignore(false)
            .git_ignore(true)
            .git_global(false)
            .git_exclude(false)
            .require_git(false)
            .follow_links(false)
            .filter_entry(|entry| {
                let is_symlink = entry.file_type().is_some_and(|kind| kind.is_symlink());
                !no_names(&entry.file_name().to_string_lossy(), is_symlink)
            })
            .build()
        {
            let entry = entry.unwrap();
            if entry.file_type().is_some_and(|kind| !kind.is_dir()) {
                let relative = entry.path().strip_prefix(root).unwrap();
                paths.push(relative.to_str().unwrap().to_owned());
            }
        }
        paths.sort();
        paths
    }

    #[test]
    fn excludes_what_gitignore_files_exclude_as_the_ignore_walker_did() {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join("project");
        let files = [
            (
                ".gitignore",
                "\u{feff}*.log\r\n/build/\n!keep.log\ndocs/*.tmp\ncache/\n# note\n\n",
            ),
            ("main.go", "package main\n"),
            ("debug.log", "x"),
            ("keep.log", "x"),
            ("build/out.bin", "x"),
            ("sub/build/kept.txt", "x"),
            ("docs/a.tmp", "x"),
            ("docs/b.md", "x"),
            ("docs/deep/c.tmp", "x"),
            ("cache", "a file named like an ignored folder\n"),
            ("sub/cache/x.go", "package cache\n"),
            ("sub/.gitignore", "*.go\n!lib.go\n"),
            ("sub/lib.go", "package sub\n"),
            ("sub/other.go", "package sub\n"),
            ("sub/inner/more.go", "package inner\n"),
            ("sub/inner/.gitignore", "!more.go\n"),
            // A nested repository: the rules above it still apply, as they did before.
            ("nested/.git/HEAD", "ref: refs/heads/main\n"),
            ("nested/trace.log", "x"),
            ("nested/.gitignore", "*.txt\n"),
            ("nested/notes.txt", "x"),
            ("vendor/example.com/m/a.go", "package m\n"),
            ("vendor/modules.txt", "# example.com/m v1.0.0\n"),
            (".hidden/file", "x"),
        ];
        for (path, content) in files {
            write(&root, path, content);
        }
        std::os::unix::fs::symlink("sub", root.join("alias")).unwrap();
        std::os::unix::fs::symlink("/nowhere", root.join("result")).unwrap();
        std::os::unix::fs::symlink("/nowhere", root.join("dangling.log")).unwrap();
        let exclusions = Exclusions {
            skip: &[],
            name: &no_names,
        };
        let expected = ignore_walk(&root);
        for threads in [1, 2, 8] {
            let walked = walk(&root, &exclusions, threads).unwrap();
            assert_eq!(sorted(walked), expected, "{threads} threads");
        }
        assert_eq!(
            expected,
            [
                ".gitignore",
                ".hidden/file",
                "alias",
                "cache",
                "docs/b.md",
                "docs/deep/c.tmp",
                "keep.log",
                "main.go",
                "nested/.gitignore",
                "sub/.gitignore",
                "sub/build/kept.txt",
                "sub/inner/.gitignore",
                "sub/inner/more.go",
                "sub/lib.go",
                "vendor/example.com/m/a.go",
                "vendor/modules.txt",
            ]
        );

        // What the walk says of a file is what `lstat` says.
        let walked = walk(&root, &exclusions, 2).unwrap();
        for (path, stat) in &walked.files {
            let metadata = std::fs::symlink_metadata(root.join(path)).unwrap();
            assert_eq!(*stat, FileStat::of(&metadata), "{path}");
        }
        let (_, target) = walked
            .symlinks
            .iter()
            .find(|(path, _)| path == "alias")
            .unwrap();
        assert_eq!(target, "sub");

        // A folder left out by its full path.
        let skip = [root.join("vendor")];
        let exclusions = Exclusions {
            skip: &skip,
            name: &no_names,
        };
        let walked = sorted(walk(&root, &exclusions, 2).unwrap());
        assert!(!walked.iter().any(|path| path.starts_with("vendor/")));
        assert!(walked.contains(&"main.go".to_owned()));
    }

    #[test]
    fn a_bad_gitignore_or_an_unreadable_folder_is_an_error_naming_it() {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join("project");
        write(&root, "main.go", "package main\n");
        write(&root, "sub/.gitignore", "ok.txt\n{bad\n");
        let exclusions = Exclusions {
            skip: &[],
            name: &no_names,
        };
        let error = walk(&root, &exclusions, 2).err().unwrap().to_string();
        assert!(
            error.contains(&format!("{}", root.join("sub/.gitignore").display()))
                && error.contains("line 2"),
            "{error}"
        );
        std::fs::write(root.join("sub/.gitignore"), b"\xff\xfe\n").unwrap();
        let error = walk(&root, &exclusions, 2).err().unwrap().to_string();
        assert!(error.contains("line 1: not UTF-8"), "{error}");
        std::fs::remove_file(root.join("sub/.gitignore")).unwrap();

        // Root can read any folder; the test only means something for other users.
        if unsafe { libc::geteuid() } == 0 {
            return;
        }
        std::fs::create_dir(root.join("locked")).unwrap();
        std::fs::set_permissions(
            root.join("locked"),
            std::os::unix::fs::PermissionsExt::from_mode(0o000),
        )
        .unwrap();
        let error = walk(&root, &exclusions, 2).err().unwrap().to_string();
        std::fs::set_permissions(
            root.join("locked"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        assert!(
            error.contains(&format!("{}", root.join("locked").display())),
            "{error}"
        );
    }
}
