//! The files an image takes from the project (`[[images.NAME.files]]`) and the folders and
//! links it declares (`dirs`, `symlinks`), as layer trees with a digest for the recipe.
//!
//! Pinned choices:
//! - A folder source is walked in name order; with `include` globs only matching files and
//!   links are placed (their folders implied), without them empty folders are kept too.
//!   Globs match paths relative to `src`, `/`-separated, `*` not crossing `/` (`**` does).
//! - Folders under `dest` take the entry's `uid`/`gid` and mode 0755; files take `mode` when
//!   given, else 0755 if any execute bit is set on the host and 0644 otherwise. Folders above
//!   `dest` are implied (0755, root).
//! - Symlinks are kept as links. An absolute target, or a relative one that climbs out of the
//!   project, is refused: the project is all a build may read, and a link leading out of it
//!   would make the image depend on the machine. A `src` reached through a link that leaves
//!   the project is refused for the same reason.
//! - The digest covers each entry's path, kind, mode, owner, and content hash or link target,
//!   so any change to an asset, or to how it is placed, rebuilds the image, and nothing else
//!   (host mtimes, inode numbers) does.

use std::path::{Component, Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use sha2::{Digest as _, Sha256};

use crate::diagnostic::{Hint, PathError};
use crate::oci::digest::Digest;
use crate::oci::tree::{Attributes, FileTree, ImagePath, Node, TreeError};
use crate::project::config::{DirEntry, FilesEntry, Position, SymlinkEntry};

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("{location}: files: `{src}` does not exist in the project")]
    Missing { location: Position, src: String },
    #[error("{location}: files: {} is a link that leads out of the project (to {target})", .path.display())]
    Escapes {
        location: Position,
        path: PathBuf,
        target: String,
    },
    #[error("{location}: files: {} is {kind}, which cannot be put into an image", .path.display())]
    Unsupported {
        location: Position,
        path: PathBuf,
        kind: &'static str,
    },
    #[error("{location}: files: {} has a name that is not valid UTF-8", .path.display())]
    NonUtf8 { location: Position, path: PathBuf },
    #[error("{location}: files: the globs select nothing in `{src}`")]
    NothingSelected { location: Position, src: String },
    #[error("{location}: files: bad glob")]
    Glob {
        location: Position,
        #[source]
        source: globset::Error,
    },
    #[error("{location}: files")]
    Tree {
        location: Position,
        #[source]
        source: Box<TreeError>,
    },
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("dirs and symlinks")]
    Declared(#[source] Box<TreeError>),
}

impl Hint for FilesError {
    fn hint(&self) -> Option<String> {
        match self {
            FilesError::Escapes { .. } => {
                Some("a build reads only the project; copy the file into it".to_owned())
            }
            FilesError::NothingSelected { .. } => Some("check `include` and `exclude`".to_owned()),
            _ => None,
        }
    }
}

/// A layer's worth of entries and the digest that stands for them in the image recipe.
#[derive(Clone, Debug)]
pub struct Placed {
    pub tree: FileTree,
    pub digest: Digest,
}

fn glob_set(globs: &[String], location: &Position) -> Result<Option<GlobSet>, FilesError> {
    if globs.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        builder.add(
            GlobBuilder::new(glob)
                .literal_separator(true)
                .build()
                .map_err(|source| FilesError::Glob {
                    location: location.clone(),
                    source,
                })?,
        );
    }
    builder
        .build()
        .map(Some)
        .map_err(|source| FilesError::Glob {
            location: location.clone(),
            source,
        })
}

/// `path` with `.` and `..` resolved lexically; `None` when it climbs above its start.
fn lexical(path: &Path) -> Option<PathBuf> {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                if !normal.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    Some(normal)
}

/// Place one `[[files]]` entry of the project at `root`.
pub fn place(root: &Path, entry: &FilesEntry) -> Result<Placed, FilesError> {
    let location = &entry.defined_at;
    let tree_error = |source| FilesError::Tree {
        location: location.clone(),
        source: Box::new(source),
    };
    let source = if entry.src == "." {
        root.to_owned()
    } else {
        root.join(&entry.src)
    };
    // Every link on the way to `src` must stay inside the project.
    let canonical_root = std::fs::canonicalize(root).map_err(PathError::read(root))?;
    let mut walked = root.to_owned();
    for component in Path::new(&entry.src).components() {
        walked.push(component);
        match std::fs::symlink_metadata(&walked) {
            Err(_) => {
                return Err(FilesError::Missing {
                    location: location.clone(),
                    src: entry.src.clone(),
                });
            }
            Ok(metadata) if metadata.file_type().is_symlink() => {
                let resolved = std::fs::canonicalize(&walked).ok();
                if !resolved.is_some_and(|resolved| resolved.starts_with(&canonical_root)) {
                    let target = std::fs::read_link(&walked)
                        .map(|target| target.display().to_string())
                        .unwrap_or_default();
                    return Err(FilesError::Escapes {
                        location: location.clone(),
                        path: walked,
                        target,
                    });
                }
            }
            Ok(_) => {}
        }
    }
    let metadata = std::fs::metadata(&source).map_err(PathError::read(&source))?;
    let mut tree = FileTree::new();
    let mut hasher = Sha256::new();
    let folder_attributes = Attributes {
        mode: 0o755,
        uid: entry.uid,
        gid: entry.gid,
    };
    let file_attributes = |host: &std::fs::Metadata| {
        use std::os::unix::fs::PermissionsExt;
        let executable = host.permissions().mode() & 0o111 != 0;
        Attributes {
            mode: entry.mode.unwrap_or(if executable { 0o755 } else { 0o644 }),
            uid: entry.uid,
            gid: entry.gid,
        }
    };
    if metadata.is_file() {
        let mut destination = ImagePath::parse_absolute(&entry.dest).map_err(tree_error)?;
        if entry.dest.ends_with('/') || destination.is_root() {
            let name = source
                .file_name()
                .and_then(|name| name.to_str())
                .ok_or_else(|| FilesError::NonUtf8 {
                    location: location.clone(),
                    path: source.clone(),
                })?;
            destination = destination.join(name);
        }
        add_file(
            &mut tree,
            &mut hasher,
            destination,
            &source,
            &metadata,
            file_attributes(&metadata),
        )
        .map_err(|error| with_location(error, location))?;
        return Ok(Placed {
            tree,
            digest: Digest::from_raw(hasher.finalize().into()),
        });
    }
    if !metadata.is_dir() {
        return Err(FilesError::Unsupported {
            location: location.clone(),
            path: source,
            kind: "neither a file nor a folder",
        });
    }
    let include = glob_set(&entry.include, location)?;
    let exclude = glob_set(&entry.exclude, location)?;
    let destination = ImagePath::parse_absolute(&entry.dest).map_err(tree_error)?;
    if !destination.is_root() {
        record(&mut hasher, "d", &destination, folder_attributes, b"");
        tree.insert_node(
            destination.clone(),
            Node::Directory {
                attributes: folder_attributes,
                origin: Some(source.clone()),
            },
        )
        .map_err(tree_error)?;
    }
    let mut selected = 0usize;
    // Depth first in name order, with an explicit stack.
    let mut pending = vec![(source.clone(), String::new(), destination.clone())];
    while let Some((folder, relative, destination)) = pending.pop() {
        let mut children: Vec<(String, PathBuf)> = Vec::new();
        for child in std::fs::read_dir(&folder).map_err(PathError::walk(&folder))? {
            let child = child.map_err(PathError::walk(&folder))?;
            let name = child
                .file_name()
                .into_string()
                .map_err(|_| FilesError::NonUtf8 {
                    location: location.clone(),
                    path: child.path(),
                })?;
            children.push((name, child.path()));
        }
        children.sort();
        // Reverse so the stack pops folders in name order.
        let mut folders = Vec::new();
        for (name, host_path) in children {
            let child_relative = if relative.is_empty() {
                name.clone()
            } else {
                format!("{relative}/{name}")
            };
            let image_path = destination.join(&name);
            let excluded = exclude
                .as_ref()
                .is_some_and(|set| set.is_match(&child_relative));
            if excluded {
                continue;
            }
            let child_metadata =
                std::fs::symlink_metadata(&host_path).map_err(PathError::read(&host_path))?;
            let file_type = child_metadata.file_type();
            if file_type.is_dir() {
                let image_path_for_folder = image_path.clone();
                if include.is_none() {
                    record(&mut hasher, "d", &image_path, folder_attributes, b"");
                    tree.insert_node(
                        image_path,
                        Node::Directory {
                            attributes: folder_attributes,
                            origin: Some(host_path.clone()),
                        },
                    )
                    .map_err(tree_error)?;
                }
                folders.push((host_path, child_relative, image_path_for_folder));
                continue;
            }
            if include
                .as_ref()
                .is_some_and(|set| !set.is_match(&child_relative))
            {
                continue;
            }
            selected += 1;
            if file_type.is_symlink() {
                let target = std::fs::read_link(&host_path).map_err(PathError::read(&host_path))?;
                let target_text =
                    target
                        .to_str()
                        .map(str::to_owned)
                        .ok_or_else(|| FilesError::NonUtf8 {
                            location: location.clone(),
                            path: host_path.clone(),
                        })?;
                let inside = !target.is_absolute()
                    && host_path
                        .parent()
                        .and_then(|parent| parent.strip_prefix(root).ok())
                        .and_then(|parent| lexical(&parent.join(&target)))
                        .is_some();
                if !inside {
                    return Err(FilesError::Escapes {
                        location: location.clone(),
                        path: host_path,
                        target: target_text,
                    });
                }
                let attributes = Attributes {
                    mode: 0o777,
                    uid: entry.uid,
                    gid: entry.gid,
                };
                record(
                    &mut hasher,
                    "l",
                    &image_path,
                    attributes,
                    target_text.as_bytes(),
                );
                tree.insert_node(
                    image_path,
                    Node::Symlink {
                        attributes,
                        target: target_text,
                        origin: host_path,
                    },
                )
                .map_err(tree_error)?;
            } else if file_type.is_file() {
                let attributes = file_attributes(&child_metadata);
                add_file(
                    &mut tree,
                    &mut hasher,
                    image_path,
                    &host_path,
                    &child_metadata,
                    attributes,
                )
                .map_err(|error| with_location(error, location))?;
            } else {
                return Err(FilesError::Unsupported {
                    location: location.clone(),
                    path: host_path,
                    kind: "a socket, FIFO or device",
                });
            }
        }
        pending.extend(folders.into_iter().rev());
    }
    if selected == 0 && include.is_some() {
        return Err(FilesError::NothingSelected {
            location: location.clone(),
            src: entry.src.clone(),
        });
    }
    Ok(Placed {
        tree,
        digest: Digest::from_raw(hasher.finalize().into()),
    })
}

fn with_location(error: FilesError, location: &Position) -> FilesError {
    match error {
        FilesError::Declared(source) => FilesError::Tree {
            location: location.clone(),
            source,
        },
        other => other,
    }
}

fn record(hasher: &mut Sha256, kind: &str, path: &ImagePath, attributes: Attributes, data: &[u8]) {
    hasher.update(
        format!(
            "{kind} {:o} {} {} {} {}\n",
            attributes.mode,
            attributes.uid,
            attributes.gid,
            path.as_str().len(),
            path.as_str()
        )
        .as_bytes(),
    );
    hasher.update((data.len() as u64).to_le_bytes());
    hasher.update(data);
}

fn add_file(
    tree: &mut FileTree,
    hasher: &mut Sha256,
    path: ImagePath,
    source: &Path,
    metadata: &std::fs::Metadata,
    attributes: Attributes,
) -> Result<(), FilesError> {
    let mut content = Sha256::new();
    let mut file = std::fs::File::open(source).map_err(PathError::read(source))?;
    let mut buffer = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let read = std::io::Read::read(&mut file, &mut buffer).map_err(PathError::read(source))?;
        if read == 0 {
            break;
        }
        content.update(&buffer[..read]);
        size += read as u64;
    }
    if size != metadata.len() {
        return Err(PathError::read(source)(std::io::Error::other(
            "the file changed while it was read",
        ))
        .into());
    }
    record(hasher, "f", &path, attributes, &content.finalize());
    tree.insert_node(
        path,
        Node::File {
            attributes,
            source: source.to_owned(),
            size,
        },
    )
    .map_err(|error| FilesError::Declared(Box::new(error)))
}

/// The `dirs` and `symlinks` of an image, as one tree.
pub fn declared(dirs: &[DirEntry], symlinks: &[SymlinkEntry]) -> Result<Placed, FilesError> {
    let mut tree = FileTree::new();
    let mut hasher = Sha256::new();
    for dir in dirs {
        let attributes = Attributes {
            mode: dir.mode,
            uid: dir.uid,
            gid: dir.gid,
        };
        record(&mut hasher, "d", &dir.path, attributes, b"");
        tree.insert_node(
            dir.path.clone(),
            Node::Directory {
                attributes,
                origin: Some(PathBuf::from(format!("dirs: {}", dir.path))),
            },
        )
        .map_err(|error| FilesError::Declared(Box::new(error)))?;
    }
    for link in symlinks {
        record(
            &mut hasher,
            "l",
            &link.path,
            Attributes::SYMLINK,
            link.target.as_bytes(),
        );
        tree.insert_node(
            link.path.clone(),
            Node::Symlink {
                attributes: Attributes::SYMLINK,
                target: link.target.clone(),
                origin: PathBuf::from(format!("symlinks: {}", link.path)),
            },
        )
        .map_err(|error| FilesError::Declared(Box::new(error)))?;
    }
    Ok(Placed {
        tree,
        digest: Digest::from_raw(hasher.finalize().into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn entry(src: &str, dest: &str) -> FilesEntry {
        FilesEntry {
            src: src.to_owned(),
            dest: dest.to_owned(),
            mode: None,
            uid: 0,
            gid: 0,
            include: Vec::new(),
            exclude: Vec::new(),
            defined_at: Position {
                file: PathBuf::from("kiln.toml"),
                line: 7,
                column: 1,
            },
        }
    }

    fn project() -> tempfile::TempDir {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path();
        std::fs::create_dir_all(root.join("static/css/deep")).unwrap();
        std::fs::create_dir_all(root.join("static/empty")).unwrap();
        std::fs::write(root.join("static/index.html"), "<h1>hi</h1>").unwrap();
        std::fs::write(root.join("static/css/site.css"), "body{}").unwrap();
        std::fs::write(root.join("static/css/site.css.map"), "{}").unwrap();
        std::fs::write(root.join("static/css/deep/a.css"), "a{}").unwrap();
        std::fs::write(root.join("static/run.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            root.join("static/run.sh"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        temp
    }

    fn listing(placed: &Placed) -> Vec<String> {
        placed
            .tree
            .entries()
            .map(|(path, node)| {
                let attributes = node.attributes();
                let kind = match node {
                    Node::Directory { .. } => "d",
                    Node::File { .. } => "f",
                    Node::Symlink { .. } => "l",
                };
                format!(
                    "{kind} {:o} {}:{} {}",
                    attributes.mode,
                    attributes.uid,
                    attributes.gid,
                    path.as_str()
                )
            })
            .collect()
    }

    #[test]
    fn a_folder_lands_under_dest_with_its_owner_and_modes() {
        let temp = project();
        let mut placing = entry("static", "/srv/static");
        placing.uid = 65532;
        placing.gid = 65532;
        placing.exclude = vec!["**/*.map".to_owned()];
        let placed = place(temp.path(), &placing).unwrap();
        assert_eq!(
            listing(&placed),
            [
                "d 755 0:0 srv",
                "d 755 65532:65532 srv/static",
                "d 755 65532:65532 srv/static/css",
                "d 755 65532:65532 srv/static/css/deep",
                "f 644 65532:65532 srv/static/css/deep/a.css",
                "f 644 65532:65532 srv/static/css/site.css",
                "d 755 65532:65532 srv/static/empty",
                "f 644 65532:65532 srv/static/index.html",
                "f 755 65532:65532 srv/static/run.sh",
            ]
        );
        // The same files placed the same way hash the same; a changed byte does not.
        let again = place(temp.path(), &placing).unwrap();
        assert_eq!(placed.digest, again.digest);
        std::fs::write(temp.path().join("static/css/deep/a.css"), "b{}").unwrap();
        assert_ne!(place(temp.path(), &placing).unwrap().digest, placed.digest);
    }

    #[test]
    fn include_globs_select_files_and_a_mode_applies_to_them() {
        let temp = project();
        let mut placing = entry("static", "/www");
        placing.include = vec!["**/*.css".to_owned()];
        placing.mode = Some(0o600);
        let placed = place(temp.path(), &placing).unwrap();
        assert_eq!(
            listing(&placed),
            [
                "d 755 0:0 www",
                "d 755 0:0 www/css",
                "d 755 0:0 www/css/deep",
                "f 600 0:0 www/css/deep/a.css",
                "f 600 0:0 www/css/site.css",
            ]
        );
        placing.include = vec!["*.png".to_owned()];
        let error = place(temp.path(), &placing).unwrap_err();
        assert_eq!(
            error.to_string(),
            "kiln.toml:7:1: files: the globs select nothing in `static`"
        );
        assert_eq!(
            crate::diagnostic::Hint::hint(&error).as_deref(),
            Some("check `include` and `exclude`")
        );
    }

    #[test]
    fn a_file_goes_to_its_path_or_into_a_folder() {
        let temp = project();
        let placed = place(temp.path(), &entry("static/index.html", "/srv/")).unwrap();
        assert_eq!(
            listing(&placed),
            ["d 755 0:0 srv", "f 644 0:0 srv/index.html"]
        );
        let placed = place(temp.path(), &entry("static/index.html", "/srv/home.html")).unwrap();
        assert_eq!(
            listing(&placed),
            ["d 755 0:0 srv", "f 644 0:0 srv/home.html"]
        );
    }

    #[test]
    fn links_stay_links_inside_the_project_and_are_refused_when_they_leave_it() {
        let temp = project();
        let root = temp.path();
        symlink("site.css", root.join("static/css/current.css")).unwrap();
        let placed = place(root, &entry("static/css", "/css")).unwrap();
        assert!(listing(&placed).contains(&"l 777 0:0 css/current.css".to_owned()));

        symlink("../../../outside", root.join("static/css/escape")).unwrap();
        let error = place(root, &entry("static/css", "/css"))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("kiln.toml:7:1: files: ")
                && error.contains("leads out of the project (to ../../../outside)"),
            "{error}"
        );
        std::fs::remove_file(root.join("static/css/escape")).unwrap();
        symlink("/etc/passwd", root.join("static/css/absolute")).unwrap();
        let error = place(root, &entry("static/css", "/css"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("leads out of the project (to /etc/passwd)"),
            "{error}"
        );

        // A src reached through a link that leaves the project.
        let outside = tempfile::tempdir().unwrap();
        symlink(outside.path(), root.join("elsewhere")).unwrap();
        let error = place(root, &entry("elsewhere", "/x"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("leads out of the project"), "{error}");
        let error = place(root, &entry("missing", "/x"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "kiln.toml:7:1: files: `missing` does not exist in the project"
        );
    }

    #[test]
    fn declared_folders_and_links_keep_their_attributes() {
        let dirs = [DirEntry {
            path: ImagePath::parse_absolute("/var/lib/app").unwrap(),
            mode: 0o700,
            uid: 65532,
            gid: 65532,
        }];
        let links = [SymlinkEntry {
            path: ImagePath::parse_absolute("/usr/bin/app").unwrap(),
            target: "/bin/app".to_owned(),
        }];
        let placed = declared(&dirs, &links).unwrap();
        assert_eq!(
            listing(&placed),
            [
                "d 755 0:0 usr",
                "d 755 0:0 usr/bin",
                "l 777 0:0 usr/bin/app",
                "d 755 0:0 var",
                "d 755 0:0 var/lib",
                "d 700 65532:65532 var/lib/app",
            ]
        );
    }
}
