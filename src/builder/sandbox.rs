//! The build folder's layout: where the sources go, and where each local `replace` folder
//! goes, so every `replace` path resolves inside the build folder as it does beside the
//! project; and which replace folders outside the project are allowed at all.

use std::path::{Path, PathBuf};

use super::sources::SourceTree;
use super::{BuildError, Builder};
use crate::gomod::modfile;

impl Builder<'_> {
    /// The folders outside the project that go.mod's `replace` directives point at, with
    /// their sources. A folder inside the project is part of its sources already. The path is
    /// taken as written: a link on its way out of the project is refused, so what is hashed and
    /// copied is what the path names.
    pub(super) fn replace_folders(
        &self,
        root: &Path,
        go_mod: &modfile::ModFile,
    ) -> Result<Vec<(String, SourceTree)>, BuildError> {
        let mut folders: Vec<(String, SourceTree)> = Vec::new();
        for replace in go_mod
            .replaces
            .iter()
            .filter(|replace| replace.new_version.is_none())
        {
            // `..` past the root stays at the root, so a climb of forty levels is the root
            // (or a folder under it) wherever the project sits.
            if let Some(reason) = climb_to_root(root, &replace.new_path) {
                return Err(BuildError::ReplaceAtRoot {
                    module: replace.old_path.clone(),
                    folder: replace.new_path.clone(),
                    line: replace.line,
                    reason,
                });
            }
            let folder = normalise(&root.join(&replace.new_path));
            if folder.starts_with(root) {
                continue;
            }
            let mut walked = PathBuf::new();
            for component in folder.components() {
                walked.push(component);
                if !root.starts_with(&walked) && walked.is_symlink() {
                    return Err(BuildError::ReplaceThroughLink {
                        module: replace.old_path.clone(),
                        folder: replace.new_path.clone(),
                        line: replace.line,
                        link: walked,
                    });
                }
            }
            if !folder.is_dir() {
                return Err(BuildError::ReplaceFolder {
                    module: replace.old_path.clone(),
                    folder: replace.new_path.clone(),
                    line: replace.line,
                    path: folder,
                });
            }
            if folders
                .iter()
                .any(|(written, _)| written == &replace.new_path)
            {
                continue;
            }
            folders.push((replace.new_path.clone(), self.sources(&folder)?));
        }
        Ok(folders)
    }
}

/// Where the sources go in a build folder, and where each local `replace` folder goes, so
/// every `replace` path (`../lib`, `../../shared/x`) resolves inside the build folder as it
/// does beside the project: the sources sit as many folders deep as the longest climb, under
/// the project's own folder names (so a sibling can never land on the project itself).
/// `-trimpath` keeps these paths out of the binary.
pub(super) fn sandbox_layout(
    base: &Path,
    project_root: &Path,
    replaces: &[(String, SourceTree)],
) -> (PathBuf, Vec<PathBuf>) {
    let climb = |folder: &str| {
        let mut height: isize = 0;
        let mut lowest: isize = 0;
        for component in Path::new(folder).components() {
            match component {
                std::path::Component::ParentDir => height -= 1,
                std::path::Component::Normal(_) => height += 1,
                _ => {}
            }
            lowest = lowest.min(height);
        }
        lowest.unsigned_abs()
    };
    let levels = replaces
        .iter()
        .map(|(folder, _)| climb(folder))
        .max()
        .unwrap_or(0)
        .max(1);
    let canonical = std::fs::canonicalize(project_root).unwrap_or_else(|_| project_root.to_owned());
    let names: Vec<&std::ffi::OsStr> = canonical
        .components()
        .filter_map(|component| match component {
            std::path::Component::Normal(name) => Some(name),
            _ => None,
        })
        .collect();
    let mut sources = base.to_owned();
    for level in (0..levels).rev() {
        match names.len().checked_sub(level + 1) {
            Some(index) => sources.push(names[index]),
            None => sources.push(format!("level{level}")),
        }
    }
    let copies = replaces
        .iter()
        .map(|(folder, _)| normalise(&sources.join(folder)))
        .collect();
    (sources, copies)
}

/// Why `relative` (a replace folder) reaches the file system root from the absolute `root`:
/// it climbs above it, or ends there. `None` for a folder below the root.
fn climb_to_root(root: &Path, relative: &str) -> Option<&'static str> {
    let root = std::path::absolute(root).unwrap_or_else(|_| root.to_owned());
    let mut depth: usize = 0;
    for component in root.join(relative).components() {
        match component {
            std::path::Component::Normal(_) => depth += 1,
            std::path::Component::ParentDir if depth == 0 => {
                return Some("climbs above the file system root");
            }
            std::path::Component::ParentDir => depth -= 1,
            _ => {}
        }
    }
    (depth == 0).then_some("is the file system root")
}

/// `path` with `.` and `..` resolved lexically.
fn normalise(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::ParentDir => {
                normal.pop();
            }
            std::path::Component::CurDir => {}
            other => normal.push(other),
        }
    }
    normal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> SourceTree {
        SourceTree {
            root: PathBuf::new(),
            entries: Vec::new(),
            digest: crate::oci::digest::Digest::from_raw([0; 32]),
            hashed: 0,
        }
    }

    /// `replace x => ../../../../../../..` made kiln hash and copy the whole disk (and
    /// `…/../etc` read /etc), wherever the project sat.
    #[test]
    fn replace_climbing_to_the_root_is_refused() {
        let root = Path::new("/home/user/project");
        assert_eq!(climb_to_root(root, "../lib"), None);
        assert_eq!(climb_to_root(root, "../../../srv/lib"), None);
        assert_eq!(
            climb_to_root(root, "../../.."),
            Some("is the file system root")
        );
        assert_eq!(
            climb_to_root(root, "../../../../etc"),
            Some("climbs above the file system root")
        );
        assert_eq!(
            climb_to_root(root, &"../".repeat(40)),
            Some("climbs above the file system root")
        );
    }

    #[test]
    fn replace_folders_land_where_their_paths_point() {
        let base = Path::new("/b/src");
        let root = Path::new("/nonexistent/work/team/app");
        let (sources, copies) = sandbox_layout(base, root, &[]);
        assert_eq!(sources, Path::new("/b/src/app"));
        assert!(copies.is_empty());
        let replaces = vec![
            ("../lib".to_owned(), tree()),
            ("../../shared/x".to_owned(), tree()),
            ("./../lib2/./y".to_owned(), tree()),
        ];
        let (sources, copies) = sandbox_layout(base, root, &replaces);
        assert_eq!(sources, Path::new("/b/src/team/app"));
        assert_eq!(
            copies,
            [
                Path::new("/b/src/team/lib"),
                Path::new("/b/src/shared/x"),
                Path::new("/b/src/team/lib2/y"),
            ]
        );
        // A sibling named like the project's folder cannot be: the names are the real ones.
        let (sources, copies) =
            sandbox_layout(base, root, &[("../../team2/app".to_owned(), tree())]);
        assert_eq!(sources, Path::new("/b/src/team/app"));
        assert_eq!(copies, [Path::new("/b/src/team2/app")]);
    }
}
