//! The root filesystem of the static base, and its layer: the files kiln writes itself
//! (`/etc/passwd`, `/etc/group`, `/etc/nsswitch.conf`), the three folders with attributes of
//! their own, where each wheel's files land (the CA bundle, the zones) and the checks that a
//! wheel holds what its source names. The listing of the layer is in [`super`]'s doc.

use std::path::{Path, PathBuf};

use super::{CA_CERTIFICATES, NONROOT_GID, NONROOT_UID, StaticWheel, TZDATA};
use crate::diagnostic::PathError;
use crate::http::redact;
use crate::oci::tree::{Attributes, FileTree, ImagePath, Node, TreeError};

/// `/etc/passwd`. The shells do not exist in the image: nobody logs in.
pub const PASSWD: &str = "\
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
";
/// `/etc/group`.
pub const GROUP: &str = "\
root:x:0:
nonroot:x:65532:
";
/// `/etc/nsswitch.conf`: Go's resolver reads the `hosts` line to decide whether /etc/hosts
/// comes before DNS. Without the file Go follows glibc's default, DNS first, so names the
/// engine writes into /etc/hosts would be asked of DNS before being read (distroless ships
/// the same line for this reason).
pub const NSSWITCH_CONF: &str = "hosts: files dns\n";

/// Folders with attributes of their own; all three are empty in the layer.
const SPECIAL_FOLDERS: [(&str, Attributes); 3] = [
    (
        "home/nonroot",
        Attributes {
            mode: 0o700,
            uid: NONROOT_UID,
            gid: NONROOT_GID,
        },
    ),
    (
        "root",
        Attributes {
            mode: 0o700,
            uid: 0,
            gid: 0,
        },
    ),
    (
        "tmp",
        Attributes {
            mode: 0o1777,
            uid: 0,
            gid: 0,
        },
    ),
];

/// Where the CA bundle goes, relative to the root.
pub(super) const CA_BUNDLE_PATH: &str = "etc/ssl/certs/ca-certificates.crt";
/// Where the zones go, relative to the root.
pub(super) const ZONEINFO_PATH: &str = "usr/share/zoneinfo";

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("the wheel {url} has no {file}")]
    MissingFile {
        url: String,
        file: String,
        name: String,
        project: String,
    },
    #[error("the wheel {url} has {file}, but {problem}")]
    UnexpectedContent {
        url: String,
        file: String,
        problem: String,
    },
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("{} holds {path}, {kind}, which the static base never has", .rootfs.display())]
    UnexpectedEntry {
        rootfs: PathBuf,
        path: ImagePath,
        kind: &'static str,
    },
    #[error(transparent)]
    Tree(#[from] TreeError),
}

impl crate::diagnostic::Hint for RootfsError {
    fn hint(&self) -> Option<String> {
        match self {
            RootfsError::MissingFile { name, project, .. } => {
                Some(format!("is the `{name}` source a {project} wheel?"))
            }
            _ => None,
        }
    }
}

/// Write the files kiln makes itself and the folders with attributes of their own under
/// `rootfs`.
pub(super) fn write_system_files(rootfs: &Path) -> Result<(), RootfsError> {
    for (relative, content) in [
        ("etc/passwd", PASSWD),
        ("etc/group", GROUP),
        ("etc/nsswitch.conf", NSSWITCH_CONF),
    ] {
        write_file(&rootfs.join(relative), content.as_bytes())?;
    }
    for (relative, _) in SPECIAL_FOLDERS {
        let folder = rootfs.join(relative);
        fs_err::create_dir_all(&folder).map_err(PathError::write(&folder))?;
    }
    Ok(())
}

/// Make the folder of the root filesystem.
pub(super) fn create(rootfs: &Path) -> Result<(), RootfsError> {
    fs_err::create_dir_all(rootfs).map_err(PathError::write(rootfs))?;
    Ok(())
}

/// Write the files taken from a wheel, as (destination, content), under `rootfs`.
pub(super) fn write_files(rootfs: &Path, files: &[(String, Vec<u8>)]) -> Result<(), RootfsError> {
    for (relative, content) in files {
        write_file(&rootfs.join(relative), content)?;
    }
    Ok(())
}

/// Where a wheel's entry (a file path) lands in the root filesystem, if it is taken.
pub(super) fn destination(source_name: &str, entry: &str) -> Option<String> {
    match source_name {
        CA_CERTIFICATES => (entry == "certifi/cacert.pem").then(|| CA_BUNDLE_PATH.to_owned()),
        TZDATA => {
            let zone = entry.strip_prefix("tzdata/zoneinfo/")?;
            let file_name = zone.rsplit('/').next().unwrap_or(zone);
            let python = zone.split('/').any(|element| element == "__pycache__")
                || file_name == "py.typed"
                || [".py", ".pyc", ".pyo", ".pyi"]
                    .iter()
                    .any(|extension| file_name.ends_with(extension));
            (!zone.is_empty() && !python).then(|| format!("{ZONEINFO_PATH}/{zone}"))
        }
        _ => None,
    }
}

/// The checks that a pin names the right project's wheel, beyond its digest: the bundle holds
/// certificates, `UTC` is a TZif file.
pub(super) fn check_content(
    source: &StaticWheel,
    project: &str,
    files: &[(String, Vec<u8>)],
) -> Result<(), RootfsError> {
    let (wanted, wheel_file) = match source.name.as_str() {
        CA_CERTIFICATES => (CA_BUNDLE_PATH.to_owned(), "certifi/cacert.pem"),
        _ => (format!("{ZONEINFO_PATH}/UTC"), "tzdata/zoneinfo/UTC"),
    };
    let Some((_, content)) = files.iter().find(|(path, _)| *path == wanted) else {
        return Err(RootfsError::MissingFile {
            url: redact(&source.url),
            file: wheel_file.to_owned(),
            name: source.name.clone(),
            project: project.to_owned(),
        });
    };
    let problem = match source.name.as_str() {
        CA_CERTIFICATES => {
            let pem = b"-----BEGIN CERTIFICATE-----";
            (!content.windows(pem.len()).any(|window| window == pem))
                .then_some("it holds no PEM certificate")
        }
        _ => (!content.starts_with(b"TZif")).then_some("it is not a TZif file"),
    };
    match problem {
        Some(problem) => Err(RootfsError::UnexpectedContent {
            url: redact(&source.url),
            file: wheel_file.to_owned(),
            problem: problem.to_owned(),
        }),
        None => Ok(()),
    }
}

fn write_file(path: &Path, content: &[u8]) -> Result<(), RootfsError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(parent) = path.parent() {
        fs_err::create_dir_all(parent).map_err(PathError::write(parent))?;
    }
    // `create_new`: a wheel naming a file twice (or a file and a folder alike) fails here
    // rather than overwriting what came first.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .map_err(PathError::write(path))?;
    file.write_all(content).map_err(PathError::write(path))?;
    Ok(())
}

/// The file tree of the static layer from the root filesystem [`super::realise`] made: every folder
/// 0755 and file 0644, owned by root, except three folders
/// (`/home/nonroot` 0700 65532:65532, `/root` 0700, `/tmp` 1777). The store's read-only
/// modes never reach the layer. Write it with [`LAYER_MTIME`].
pub(super) fn layer_tree(rootfs: &Path) -> Result<FileTree, RootfsError> {
    let mut tree = FileTree::new();
    tree.add(rootfs, "/")?;
    let mut attributes = Vec::with_capacity(tree.len());
    for (path, node) in tree.entries() {
        match node {
            Node::Directory { .. } => attributes.push((path.clone(), Attributes::DIRECTORY)),
            Node::File { .. } => attributes.push((path.clone(), Attributes::REGULAR)),
            Node::Symlink { .. } => {
                return Err(RootfsError::UnexpectedEntry {
                    rootfs: rootfs.to_owned(),
                    path: path.clone(),
                    kind: "a symlink",
                });
            }
        }
    }
    for (relative, special) in SPECIAL_FOLDERS {
        let path = ImagePath::parse_absolute(&format!("/{relative}"))?;
        if let Some((_, folder_attributes)) =
            attributes.iter_mut().find(|(entry, _)| *entry == path)
        {
            *folder_attributes = special;
        } else {
            return Err(TreeError::NotInTree(path).into());
        }
    }
    for (path, attributes) in attributes {
        tree.set_attributes(&path, attributes)?;
    }
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::static_base::LIMITS;
    use crate::static_base::tests::{PEM, URL, certifi_wheel, tzdata_wheel};
    use crate::static_base::wheel::read_wheel;

    #[test]
    fn generated_files_are_pinned() {
        assert_eq!(
            PASSWD,
            "root:x:0:0:root:/root:/sbin/nologin\n\
             nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
        );
        assert_eq!(GROUP, "root:x:0:\nnonroot:x:65532:\n");
        assert_eq!(NSSWITCH_CONF, "hosts: files dns\n");
        assert!(PASSWD.contains(&format!(":{NONROOT_UID}:{NONROOT_GID}:")));
    }

    #[test]
    fn wheels_unpack_to_their_destinations() {
        let files = read_wheel(&tzdata_wheel(), URL, LIMITS, |entry| {
            destination(TZDATA, entry)
        })
        .unwrap();
        let paths: Vec<&str> = files.iter().map(|(path, _)| path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "usr/share/zoneinfo/Europe/Berlin",
                "usr/share/zoneinfo/UTC",
                "usr/share/zoneinfo/Zulu",
                "usr/share/zoneinfo/tzdata.zi",
                "usr/share/zoneinfo/zone1970.tab",
            ]
        );
        let files = read_wheel(&certifi_wheel(), URL, LIMITS, |entry| {
            destination(CA_CERTIFICATES, entry)
        })
        .unwrap();
        assert_eq!(files, [(CA_BUNDLE_PATH.to_owned(), PEM.to_vec())]);
    }

    #[test]
    fn layer_tree_needs_the_special_folders() {
        let temp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(temp.path().join("tmp")).unwrap();
        let error = layer_tree(temp.path()).unwrap_err().to_string();
        assert_eq!(
            error,
            "cannot set the attributes of /home/nonroot: it is not in the layer"
        );
        std::fs::create_dir_all(temp.path().join("home/nonroot")).unwrap();
        std::fs::create_dir_all(temp.path().join("root")).unwrap();
        std::os::unix::fs::symlink("/etc", temp.path().join("link")).unwrap();
        let error = layer_tree(temp.path()).unwrap_err().to_string();
        assert!(
            error.ends_with("holds /link, a symlink, which the static base never has"),
            "{error}"
        );
    }
}
