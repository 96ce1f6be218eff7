//! The file tree of one layer: host files and folders placed at absolute paths in the image,
//! with every attribute that reaches the tar decided here rather than by the host.
//!
//! Pinned choices:
//! - Paths are UTF-8, relative to the image root, without `.`/`..` or empty components.
//!   Entries are ordered component by component (`a/b` before `a-c`), the order of a sorted
//!   depth-first walk, so parents always precede children.
//! - Every parent folder is an explicit entry (mode 0755, uid/gid 0).
//! - Modes are normalised: 0755 for folders and for files with any execute bit on the host,
//!   0644 for other files, 0777 for symlinks. Setuid, setgid and sticky bits are dropped.
//! - uid/gid are 0; owner names are empty.
//! - The one exception to both: [`FileTree::set_attributes`], for layers kiln makes itself
//!   (the `static` base's `/tmp` is 1777, `/home/nonroot` belongs to 65532). What it sets is
//!   written as given, sticky bit and owner included; nothing the host says reaches it.
//! - Symlinks are kept as symlinks with their target text unchanged; a SRC given on the command
//!   line that is itself a symlink is followed (as `cp` and Dockerfile `COPY` do).
//! - Sockets, FIFOs and devices are refused: they cannot be reproduced from a folder.
//!
//! Two sources may not define the same path, and a path cannot be both a folder and a file.
//! Folders given by two sources merge, as with Dockerfile `COPY`.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::diagnostic::{Hint, PathError};

/// Layer entries whose names start with this delete files of lower layers (OCI image spec,
/// "whiteouts"), so no file of the user's may have such a name.
pub const WHITEOUT_PREFIX: &str = ".wh.";

/// A path inside the image, relative to its root (`bin/example`). The root itself is `""`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ImagePath(String);

impl ImagePath {
    pub fn root() -> Self {
        ImagePath(String::new())
    }

    /// Parse an absolute image path (`/bin/example`). Repeated and trailing slashes are
    /// ignored; `.` and `..` are refused rather than resolved, so what the user wrote is where
    /// the file lands.
    pub fn parse_absolute(text: &str) -> Result<Self, TreeError> {
        let Some(rest) = text.strip_prefix('/') else {
            return Err(TreeError::RelativeDestination(text.to_owned()));
        };
        let mut components = Vec::new();
        for component in rest.split('/') {
            match component {
                "" => {}
                "." | ".." => {
                    return Err(TreeError::InvalidDestination {
                        destination: text.to_owned(),
                        reason: "`.` and `..` are not allowed in image paths".to_owned(),
                    });
                }
                _ if component.contains('\0') => {
                    return Err(TreeError::InvalidDestination {
                        destination: text.to_owned(),
                        reason: "it contains a NUL byte".to_owned(),
                    });
                }
                _ => components.push(component),
            }
        }
        Ok(ImagePath(components.join("/")))
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The path without a leading slash, as written in a tar (`bin/example`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn join(&self, name: &str) -> ImagePath {
        debug_assert!(!name.is_empty() && !name.contains('/'));
        if self.0.is_empty() {
            ImagePath(name.to_owned())
        } else {
            ImagePath(format!("{}/{name}", self.0))
        }
    }

    pub fn parent(&self) -> Option<ImagePath> {
        if self.0.is_empty() {
            return None;
        }
        Some(match self.0.rfind('/') {
            Some(index) => ImagePath(self.0[..index].to_owned()),
            None => ImagePath::root(),
        })
    }

    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }
}

impl Ord for ImagePath {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.split('/').cmp(other.0.split('/'))
    }
}

impl PartialOrd for ImagePath {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for ImagePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.0)
    }
}

impl fmt::Debug for ImagePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Owner and permission bits of an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Attributes {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Attributes {
    pub const DIRECTORY: Attributes = Attributes {
        mode: 0o755,
        uid: 0,
        gid: 0,
    };
    pub const EXECUTABLE: Attributes = Attributes {
        mode: 0o755,
        uid: 0,
        gid: 0,
    };
    pub const REGULAR: Attributes = Attributes {
        mode: 0o644,
        uid: 0,
        gid: 0,
    };
    pub const SYMLINK: Attributes = Attributes {
        mode: 0o777,
        uid: 0,
        gid: 0,
    };
}

/// One entry of the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// A folder; `origin` is the host folder it came from, `None` for an implied parent.
    Directory {
        attributes: Attributes,
        origin: Option<PathBuf>,
    },
    /// A regular file whose content is read from `source` when the layer is written.
    File {
        attributes: Attributes,
        source: PathBuf,
        size: u64,
    },
    Symlink {
        attributes: Attributes,
        target: String,
        origin: PathBuf,
    },
}

impl Node {
    pub fn attributes(&self) -> Attributes {
        match self {
            Node::Directory { attributes, .. }
            | Node::File { attributes, .. }
            | Node::Symlink { attributes, .. } => *attributes,
        }
    }

    fn origin(&self) -> Option<&Path> {
        match self {
            Node::Directory { origin, .. } => origin.as_deref(),
            Node::File { source, .. } => Some(source),
            Node::Symlink { origin, .. } => Some(origin),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Node::Directory { .. } => "a folder",
            Node::File { .. } => "a file",
            Node::Symlink { .. } => "a symlink",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("destination `{0}` is not an absolute path")]
    RelativeDestination(String),
    #[error("invalid destination `{destination}`: {reason}")]
    InvalidDestination { destination: String, reason: String },
    #[error("{} does not exist", .0.display())]
    SourceMissing(PathBuf),
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("{} is not valid UTF-8; kiln only puts UTF-8 names into images", .0.display())]
    NonUtf8Name(PathBuf),
    #[error("{} has a name starting with `.wh.`, which image layers use to delete files: engines would hide it", .0.display())]
    WhiteoutName(PathBuf),
    #[error("{} is a symlink to {}, which does not exist", .link.display(), .target.display())]
    DanglingSource { link: PathBuf, target: PathBuf },
    #[error("symlink {} points to a target that is not valid UTF-8", .0.display())]
    NonUtf8Target(PathBuf),
    #[error("{} is {kind}, which cannot be put into an image", .path.display())]
    UnsupportedFileType { path: PathBuf, kind: &'static str },
    #[error("{path} is added twice: from {} and from {}", .first.display(), .second.display())]
    Conflict {
        path: ImagePath,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("cannot put {path} (from {}) into the image: {parent} is {parent_kind}{}", .origin.display(), .parent_origin.as_ref().map(|origin| format!(" (from {})", origin.display())).unwrap_or_default())]
    ParentNotADirectory {
        path: ImagePath,
        origin: PathBuf,
        parent: ImagePath,
        parent_kind: &'static str,
        parent_origin: Option<PathBuf>,
    },
    #[error("cannot put {path} (from {}) into the image: {path} is {existing_kind}{}", .origin.display(), .existing_origin.as_ref().map(|origin| format!(" (from {})", origin.display())).unwrap_or_default())]
    KindConflict {
        path: ImagePath,
        origin: PathBuf,
        existing_kind: &'static str,
        existing_origin: Option<PathBuf>,
    },
    #[error("cannot set the attributes of {0}: it is not in the layer")]
    NotInTree(ImagePath),
    #[error(
        "cannot set mode {mode:o} on {path}: only permission, setuid, setgid and sticky bits (07777) go into a layer"
    )]
    InvalidMode { path: ImagePath, mode: u32 },
    #[error("cannot put the file {} at the image root", .0.display())]
    FileAtRoot(PathBuf),
}

impl Hint for TreeError {
    fn hint(&self) -> Option<String> {
        match self {
            TreeError::RelativeDestination(_) => {
                Some("image paths start with `/`, e.g. `/bin/example`".to_owned())
            }
            TreeError::WhiteoutName(_) => {
                Some("rename it, or leave it out of the folder you add".to_owned())
            }
            TreeError::FileAtRoot(field0) => Some(format!(
                "name the file's path in the image, e.g. `/bin/{}`",
                field0
                    .file_name()
                    .map(|name| name.to_string_lossy())
                    .unwrap_or_default()
            )),
            _ => None,
        }
    }
}

/// The entries of one layer, ordered as they are written.
#[derive(Clone, Debug, Default)]
pub struct FileTree {
    entries: BTreeMap<ImagePath, Node>,
}

impl FileTree {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entries in write order. The root is never an entry.
    pub fn entries(&self) -> impl Iterator<Item = (&ImagePath, &Node)> {
        self.entries.iter()
    }

    pub fn get(&self, path: &ImagePath) -> Option<&Node> {
        self.entries.get(path)
    }

    /// The total size of all regular files: what the layer's tar will carry as content.
    pub fn content_bytes(&self) -> u64 {
        self.entries
            .values()
            .map(|node| match node {
                Node::File { size, .. } => *size,
                _ => 0,
            })
            .sum()
    }

    /// Set the owner and mode of the entry at `path`, which must be in the tree. Unlike what
    /// [`FileTree::add`] takes from the host, these are kept as given: setuid, setgid and sticky
    /// bits and any uid/gid. Only bits of 07777 are accepted (the file type is the node's).
    pub fn set_attributes(
        &mut self,
        path: &ImagePath,
        attributes: Attributes,
    ) -> Result<(), TreeError> {
        if attributes.mode & !0o7777 != 0 {
            return Err(TreeError::InvalidMode {
                path: path.clone(),
                mode: attributes.mode,
            });
        }
        let node = self
            .entries
            .get_mut(path)
            .ok_or_else(|| TreeError::NotInTree(path.clone()))?;
        match node {
            Node::Directory {
                attributes: current,
                ..
            }
            | Node::File {
                attributes: current,
                ..
            }
            | Node::Symlink {
                attributes: current,
                ..
            } => *current = attributes,
        }
        Ok(())
    }

    /// Add `source` (a file or a folder, recursively) at `destination`, an absolute image
    /// path. A destination ending in `/` for a file means "into this folder", as in
    /// Dockerfile `COPY`. Returns the path the source landed at.
    pub fn add(&mut self, source: &Path, destination: &str) -> Result<ImagePath, TreeError> {
        let mut path = ImagePath::parse_absolute(destination)?;
        let metadata = match std::fs::metadata(source) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                // A dangling symlink is "missing" too, but say what it points to.
                return Err(match std::fs::read_link(source) {
                    Ok(target) => TreeError::DanglingSource {
                        link: source.to_owned(),
                        target,
                    },
                    Err(_) => TreeError::SourceMissing(source.to_owned()),
                });
            }
            Err(error) => return Err(PathError::read(source)(error).into()),
        };
        if metadata.is_file() {
            if let Some(name) = source.file_name().and_then(|name| name.to_str())
                && name.starts_with(WHITEOUT_PREFIX)
                && (destination.ends_with('/') || path.is_root())
            {
                return Err(TreeError::WhiteoutName(source.to_owned()));
            }
            if path.file_name().starts_with(WHITEOUT_PREFIX) {
                return Err(TreeError::WhiteoutName(source.to_owned()));
            }
            if destination.ends_with('/') || path.is_root() {
                let name = source
                    .file_name()
                    .ok_or_else(|| TreeError::FileAtRoot(source.to_owned()))?;
                let name = name
                    .to_str()
                    .ok_or_else(|| TreeError::NonUtf8Name(source.to_owned()))?;
                path = path.join(name);
            }
            self.insert_file(path.clone(), source, &metadata)?;
            return Ok(path);
        }
        if !metadata.is_dir() {
            return Err(unsupported(source, &metadata));
        }
        self.insert(
            path.clone(),
            Node::Directory {
                attributes: Attributes::DIRECTORY,
                origin: Some(source.to_owned()),
            },
        )?;
        self.add_folder_contents(source, &path)?;
        Ok(path)
    }

    fn add_folder_contents(&mut self, folder: &Path, at: &ImagePath) -> Result<(), TreeError> {
        // An explicit stack: deep trees must not exhaust the thread's stack.
        let mut pending = vec![(folder.to_owned(), at.clone())];
        while let Some((host_folder, image_folder)) = pending.pop() {
            let read_dir =
                std::fs::read_dir(&host_folder).map_err(PathError::walk(&host_folder))?;
            for entry in read_dir {
                let entry = entry.map_err(PathError::walk(&host_folder))?;
                let host_path = entry.path();
                let name = entry.file_name();
                let name = name
                    .to_str()
                    .ok_or_else(|| TreeError::NonUtf8Name(host_path.clone()))?;
                if name.starts_with(WHITEOUT_PREFIX) {
                    return Err(TreeError::WhiteoutName(host_path));
                }
                let image_path = image_folder.join(name);
                let metadata =
                    std::fs::symlink_metadata(&host_path).map_err(PathError::read(&host_path))?;
                let file_type = metadata.file_type();
                if file_type.is_symlink() {
                    let target =
                        std::fs::read_link(&host_path).map_err(PathError::read(&host_path))?;
                    let target = target
                        .into_os_string()
                        .into_string()
                        .map_err(|_| TreeError::NonUtf8Target(host_path.clone()))?;
                    self.insert(
                        image_path,
                        Node::Symlink {
                            attributes: Attributes::SYMLINK,
                            target,
                            origin: host_path,
                        },
                    )?;
                } else if file_type.is_dir() {
                    self.insert(
                        image_path.clone(),
                        Node::Directory {
                            attributes: Attributes::DIRECTORY,
                            origin: Some(host_path.clone()),
                        },
                    )?;
                    pending.push((host_path, image_path));
                } else if file_type.is_file() {
                    self.insert_file(image_path, &host_path, &metadata)?;
                } else {
                    return Err(unsupported(&host_path, &metadata));
                }
            }
        }
        Ok(())
    }

    fn insert_file(
        &mut self,
        path: ImagePath,
        source: &Path,
        metadata: &std::fs::Metadata,
    ) -> Result<(), TreeError> {
        let executable = metadata.permissions().mode() & 0o111 != 0;
        self.insert(
            path,
            Node::File {
                attributes: if executable {
                    Attributes::EXECUTABLE
                } else {
                    Attributes::REGULAR
                },
                source: source.to_owned(),
                size: metadata.len(),
            },
        )
    }

    /// Put `node` at `path` as it is (its attributes included), creating implied parent
    /// folders; the same conflicts as [`FileTree::add`] are errors.
    pub fn insert_node(&mut self, path: ImagePath, node: Node) -> Result<(), TreeError> {
        self.insert(path, node)
    }

    /// Add every entry of `other`. Folders merge (an implied folder takes the attributes of
    /// one given explicitly); any other path both trees hold is a conflict.
    pub fn merge(&mut self, other: FileTree) -> Result<(), TreeError> {
        for (path, node) in other.entries {
            self.insert(path, node)?;
        }
        Ok(())
    }

    /// Insert `node` at `path`, creating implied parent folders.
    fn insert(&mut self, path: ImagePath, node: Node) -> Result<(), TreeError> {
        let origin = node.origin().map(Path::to_owned).unwrap_or_default();
        // Parents first, from the root down.
        let mut parents = Vec::new();
        let mut parent = path.parent();
        while let Some(folder) = parent {
            if folder.is_root() {
                break;
            }
            parent = folder.parent();
            parents.push(folder);
        }
        for folder in parents.into_iter().rev() {
            match self.entries.get(&folder) {
                None => {
                    self.entries.insert(
                        folder,
                        Node::Directory {
                            attributes: Attributes::DIRECTORY,
                            origin: None,
                        },
                    );
                }
                Some(Node::Directory { .. }) => {}
                Some(existing) => {
                    return Err(TreeError::ParentNotADirectory {
                        parent_kind: existing.kind(),
                        parent_origin: existing.origin().map(Path::to_owned),
                        path,
                        origin,
                        parent: folder,
                    });
                }
            }
        }
        if path.is_root() {
            // Only a folder can be the root (checked by `add`); its attributes are the
            // engine's to decide, so it is not an entry.
            return Ok(());
        }
        match self.entries.get_mut(&path) {
            None => {
                self.entries.insert(path, node);
                Ok(())
            }
            Some(existing @ Node::Directory { origin: None, .. })
                if matches!(node, Node::Directory { .. }) =>
            {
                // An implied parent becomes the folder a source names.
                *existing = node;
                Ok(())
            }
            Some(Node::Directory { .. }) if matches!(node, Node::Directory { .. }) => Ok(()),
            Some(existing) if std::mem::discriminant(existing) == std::mem::discriminant(&node) => {
                Err(TreeError::Conflict {
                    path,
                    first: existing.origin().map(Path::to_owned).unwrap_or_default(),
                    second: origin,
                })
            }
            Some(existing) => Err(TreeError::KindConflict {
                existing_kind: existing.kind(),
                existing_origin: existing.origin().map(Path::to_owned),
                path,
                origin,
            }),
        }
    }
}

fn unsupported(path: &Path, metadata: &std::fs::Metadata) -> TreeError {
    use std::os::unix::fs::FileTypeExt;
    let file_type = metadata.file_type();
    let kind = if file_type.is_socket() {
        "a socket"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_char_device() {
        "a character device"
    } else {
        "an unsupported file type"
    };
    TreeError::UnsupportedFileType {
        path: path.to_owned(),
        kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn write(path: &Path, content: &str, mode: u32) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn listing(tree: &FileTree) -> Vec<String> {
        tree.entries()
            .map(|(path, node)| match node {
                Node::Directory { attributes, .. } => format!("d {:o} {path}", attributes.mode),
                Node::File {
                    attributes, size, ..
                } => {
                    format!("f {:o} {path} {size}", attributes.mode)
                }
                Node::Symlink { target, .. } => format!("l {path} -> {target}"),
            })
            .collect()
    }

    #[test]
    fn image_paths_order_by_component() {
        let mut paths: Vec<ImagePath> = ["/a-c", "/a/b", "/a", "/a.b/c", "/B", "/a/b/c"]
            .iter()
            .map(|text| ImagePath::parse_absolute(text).unwrap())
            .collect();
        paths.sort();
        let sorted: Vec<String> = paths.iter().map(ToString::to_string).collect();
        assert_eq!(sorted, ["/B", "/a", "/a/b", "/a/b/c", "/a-c", "/a.b/c"]);
    }

    #[test]
    fn destinations_are_validated() {
        assert_eq!(
            ImagePath::parse_absolute("//bin//x/").unwrap().as_str(),
            "bin/x"
        );
        assert!(matches!(
            ImagePath::parse_absolute("bin/x"),
            Err(TreeError::RelativeDestination(_))
        ));
        assert!(matches!(
            ImagePath::parse_absolute("/bin/../etc"),
            Err(TreeError::InvalidDestination { .. })
        ));
    }

    #[test]
    fn folders_files_and_symlinks_are_normalised() {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path();
        write(&root.join("app/run"), "#!/bin/sh\n", 0o700);
        write(&root.join("app/data/readme.txt"), "hello", 0o600);
        write(&root.join("app/data/setuid"), "x", 0o4755);
        symlink("run", root.join("app/link")).unwrap();
        symlink("/nowhere", root.join("app/dangling")).unwrap();
        write(&root.join("single"), "single", 0o644);

        let mut tree = FileTree::new();
        tree.add(&root.join("app"), "/opt/app").unwrap();
        tree.add(&root.join("single"), "/etc/").unwrap();
        assert_eq!(
            listing(&tree),
            [
                "d 755 /etc",
                "f 644 /etc/single 6",
                "d 755 /opt",
                "d 755 /opt/app",
                "l /opt/app/dangling -> /nowhere",
                "d 755 /opt/app/data",
                "f 644 /opt/app/data/readme.txt 5",
                "f 755 /opt/app/data/setuid 1",
                "l /opt/app/link -> run",
                "f 755 /opt/app/run 10",
            ]
        );
        assert_eq!(tree.content_bytes(), 22);
    }

    #[test]
    fn conflicts_are_errors() {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path();
        write(&root.join("a/x"), "1", 0o644);
        write(&root.join("b/x"), "2", 0o644);
        write(&root.join("file"), "3", 0o644);

        let mut tree = FileTree::new();
        tree.add(&root.join("a"), "/srv").unwrap();
        let error = tree.add(&root.join("b"), "/srv").unwrap_err().to_string();
        assert!(error.contains("/srv/x is added twice"), "{error}");

        let mut tree = FileTree::new();
        tree.add(&root.join("file"), "/bin/tool").unwrap();
        let error = tree
            .add(&root.join("a"), "/bin/tool")
            .unwrap_err()
            .to_string();
        assert!(error.contains("/bin/tool is a file"), "{error}");
        let error = tree
            .add(&root.join("file"), "/bin/tool/inner")
            .unwrap_err()
            .to_string();
        assert!(error.contains("/bin/tool is a file"), "{error}");

        let mut tree = FileTree::new();
        let error = tree
            .add(&root.join("missing"), "/x")
            .unwrap_err()
            .to_string();
        assert!(error.ends_with("missing does not exist"), "{error}");
        assert_eq!(
            tree.add(&root.join("file"), "/").unwrap().to_string(),
            "/file"
        );
        assert!(
            tree.get(&ImagePath::parse_absolute("/file").unwrap())
                .is_some()
        );
    }

    /// Regression test (review): a host file named `.wh.*` went into the layer, where engines
    /// read it as a deletion.
    #[test]
    fn whiteout_names_are_refused() {
        // An overlayfs temporary folder (in a container) refuses `.wh.` names with EINVAL;
        // the checkout's own folder is then used, which a container mounts from the host.
        let mut temp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(temp.path().join("dir")).unwrap();
        if std::fs::write(temp.path().join("dir/.wh.config"), "x").is_err() {
            temp = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        }
        write(&temp.path().join("dir/.wh.config"), "x", 0o644);
        let error = FileTree::new()
            .add(&temp.path().join("dir"), "/etc")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(".wh.config has a name starting with `.wh.`"),
            "{error}"
        );
        let error = FileTree::new()
            .add(&temp.path().join("dir/.wh.config"), "/etc/")
            .unwrap_err()
            .to_string();
        assert!(error.contains("starting with `.wh.`"), "{error}");
        let error = FileTree::new()
            .add(&temp.path().join("dir/.wh.config"), "/etc/.wh.x")
            .unwrap_err()
            .to_string();
        assert!(error.contains("starting with `.wh.`"), "{error}");
        symlink("/nowhere/at/all", temp.path().join("dangling")).unwrap();
        let error = FileTree::new()
            .add(&temp.path().join("dangling"), "/x")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("dangling is a symlink to /nowhere/at/all, which does not exist"),
            "{error}"
        );
    }

    #[test]
    fn attributes_set_explicitly_are_kept() {
        let temp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(temp.path().join("tmp")).unwrap();
        let mut tree = FileTree::new();
        tree.add(temp.path(), "/").unwrap();
        let tmp = ImagePath::parse_absolute("/tmp").unwrap();
        let sticky = Attributes {
            mode: 0o1777,
            uid: 0,
            gid: 0,
        };
        tree.set_attributes(&tmp, sticky).unwrap();
        assert_eq!(tree.get(&tmp).unwrap().attributes(), sticky);

        let missing = ImagePath::parse_absolute("/home").unwrap();
        let error = tree
            .set_attributes(&missing, Attributes::DIRECTORY)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "cannot set the attributes of /home: it is not in the layer"
        );
        let with_type_bits = Attributes {
            mode: 0o40755,
            uid: 0,
            gid: 0,
        };
        let error = tree
            .set_attributes(&tmp, with_type_bits)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("cannot set mode 40755 on /tmp"),
            "{error}"
        );
    }

    #[test]
    fn special_files_are_refused() {
        let temp = tempfile::tempdir().unwrap();
        let fifo = temp.path().join("pipe");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let error = FileTree::new()
            .add(temp.path(), "/x")
            .unwrap_err()
            .to_string();
        assert!(error.contains("pipe is a FIFO"), "{error}");
    }
}
