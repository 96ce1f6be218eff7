//! Writing one layer from a [`FileTree`], in one pass and constant memory:
//!
//! ```text
//! files ─► tar stream ─► sha256 (diff_id) ─► compressor (all cores) ─► sha256 (digest) ─► sink
//! ```
//!
//! No uncompressed copy of the layer exists anywhere; what is held in memory is the tree's
//! list of paths and gzip's blocks in flight (a few per thread), whatever the layer's size.
//!
//! An uncompressed layer (what `kiln build` writes: `transport::compress` compresses it on
//! push) is hashed once: its digest is its diff_id.
//!
//! Identical content is stored once: regular files with the same bytes, mode and owner become
//! one file and tar hard links to it (the first path in write order is the file). Files are
//! only hashed for this when another file has the same size, so most files are read once.
//! Empty files are never linked: sharing an inode between unrelated empty files would
//! surprise programs that use them as markers or locks.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::compression::{Compression, Compressor};
use super::digest::{BackgroundHashingWriter, Digest, HashingWriter};
use super::tar::{EntryHeader, EntryKind, TarError, TarWriter};
use super::tree::{Attributes, FileTree, ImagePath, Node};

/// What was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerSummary {
    pub compression: Compression,
    /// Digest and size of the compressed blob.
    pub digest: Digest,
    pub size: u64,
    /// Digest and size of the uncompressed tar.
    pub diff_id: Digest,
    pub uncompressed_size: u64,
    /// Entries in the tar (folders, files, symlinks, hard links).
    pub entries: usize,
    /// Paths stored as hard links to identical content, and the bytes that saved.
    pub hard_links: usize,
    pub deduplicated_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("cannot read {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    SizeChanged(TarError),
    #[error("cannot write the layer")]
    Write(#[source] io::Error),
}

/// Options that decide a layer's bytes.
#[derive(Clone, Copy, Debug)]
pub struct LayerOptions {
    pub compression: Compression,
    /// The mtime of every entry, in seconds since the Unix epoch.
    pub mtime: u64,
    /// Compression threads; the bytes do not depend on it.
    pub threads: usize,
}

/// What writing the tar of a tree counted.
struct TarCounts {
    entries: usize,
    hard_links: usize,
    deduplicated_bytes: u64,
}

/// Write the layer for `tree` into `out`, returning what was written and `out`.
pub fn write_layer<W: Write>(
    tree: &FileTree,
    options: &LayerOptions,
    out: W,
    on_progress: &mut dyn FnMut(u64),
) -> Result<(LayerSummary, W), LayerError> {
    let links = plan_hard_links(tree)?;
    compress_layer(tree, options, &links, out, on_progress)
}

/// The tar of `tree` through the compressor into `out`. An uncompressed layer is hashed once:
/// its blob is its tar.
fn compress_layer<W: Write>(
    tree: &FileTree,
    options: &LayerOptions,
    links: &HashMap<ImagePath, ImagePath>,
    out: W,
    on_progress: &mut dyn FnMut(u64),
) -> Result<(LayerSummary, W), LayerError> {
    let summary = |digest, size, diff_id, uncompressed_size, counts: TarCounts| LayerSummary {
        compression: options.compression,
        digest,
        size,
        diff_id,
        uncompressed_size,
        entries: counts.entries,
        hard_links: counts.hard_links,
        deduplicated_bytes: counts.deduplicated_bytes,
    };
    if options.compression == Compression::None {
        // The tar is the blob: hashed beside the writing, on a second core.
        let hashing = BackgroundHashingWriter::new(out).map_err(LayerError::Write)?;
        let mut tar = TarWriter::new(hashing);
        let counts = write_entries(tree, options.mtime, links, &mut tar, on_progress)?;
        let (out, diff_id, size) = tar
            .finish()
            .map_err(LayerError::Write)?
            .finish()
            .map_err(LayerError::Write)?;
        return Ok((summary(diff_id, size, diff_id, size, counts), out));
    }
    let compressed = HashingWriter::new(out);
    let compressor = Compressor::new(options.compression, compressed, options.threads)
        .map_err(LayerError::Write)?;
    let mut tar = TarWriter::new(HashingWriter::new(compressor));
    let counts = write_entries(tree, options.mtime, links, &mut tar, on_progress)?;
    let uncompressed = tar.finish().map_err(LayerError::Write)?;
    let (compressor, diff_id, uncompressed_size) = uncompressed.finish();
    let compressed = compressor.finish().map_err(LayerError::Write)?;
    let (out, digest, size) = compressed.finish();
    Ok((
        summary(digest, size, diff_id, uncompressed_size, counts),
        out,
    ))
}

/// Every entry of `tree` into `tar`, in the tree's order.
fn write_entries<W: Write>(
    tree: &FileTree,
    mtime: u64,
    links: &HashMap<ImagePath, ImagePath>,
    tar: &mut TarWriter<W>,
    on_progress: &mut dyn FnMut(u64),
) -> Result<TarCounts, LayerError> {
    let mut counts = TarCounts {
        entries: 0,
        hard_links: 0,
        deduplicated_bytes: 0,
    };
    for (path, node) in tree.entries() {
        let attributes = node.attributes();
        let header = |kind| EntryHeader {
            path: path.as_str(),
            kind,
            mode: attributes.mode,
            uid: attributes.uid,
            gid: attributes.gid,
            mtime,
        };
        counts.entries += 1;
        match node {
            Node::Directory { .. } => tar
                .entry(&header(EntryKind::Directory))
                .map_err(LayerError::Write)?,
            Node::Symlink { target, .. } => tar
                .entry(&header(EntryKind::Symlink { target }))
                .map_err(LayerError::Write)?,
            Node::File { source, size, .. } => {
                if let Some(primary) = links.get(path) {
                    counts.hard_links += 1;
                    counts.deduplicated_bytes += size;
                    tar.entry(&header(EntryKind::HardLink {
                        target: primary.as_str(),
                    }))
                    .map_err(LayerError::Write)?;
                    continue;
                }
                let mut file = open(source)?;
                tar.file(
                    &header(EntryKind::File { size: *size }),
                    &mut file,
                    &|| source.display().to_string(),
                    on_progress,
                )
                .map_err(|error| match error {
                    TarError::Io(error) => LayerError::Write(error),
                    TarError::Read { source: error, .. } => LayerError::Read {
                        path: source.clone(),
                        source: error,
                    },
                    size_changed @ TarError::SizeChanged { .. } => {
                        LayerError::SizeChanged(size_changed)
                    }
                })?;
            }
        }
    }
    Ok(counts)
}

fn open(path: &Path) -> Result<std::fs::File, LayerError> {
    std::fs::File::open(path).map_err(|source| LayerError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Which paths become hard links, and to which path.
fn plan_hard_links(tree: &FileTree) -> Result<HashMap<ImagePath, ImagePath>, LayerError> {
    let mut by_shape: BTreeMap<(u64, Attributes), Vec<(&ImagePath, &Path)>> = BTreeMap::new();
    for (path, node) in tree.entries() {
        if let Node::File {
            attributes,
            source,
            size,
        } = node
            && *size > 0
        {
            by_shape
                .entry((*size, *attributes))
                .or_default()
                .push((path, source));
        }
    }
    let mut links = HashMap::new();
    for candidates in by_shape.into_values().filter(|group| group.len() > 1) {
        let mut first_with_content: HashMap<Digest, &ImagePath> = HashMap::new();
        // `candidates` are in write order, so the first path seen is the one that is stored.
        for (path, source) in candidates {
            let digest = hash_file(source)?;
            match first_with_content.get(&digest) {
                Some(primary) => {
                    links.insert(path.clone(), (*primary).clone());
                }
                None => {
                    first_with_content.insert(digest, path);
                }
            }
        }
    }
    Ok(links)
}

fn hash_file(path: &Path) -> Result<Digest, LayerError> {
    let mut file = open(path)?;
    let mut hasher = HashingWriter::new(io::sink());
    io::copy(&mut file, &mut hasher).map_err(|source| LayerError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(hasher.finish().1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn fixture() -> (tempfile::TempDir, FileTree) {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join("root");
        let write = |relative: &str, content: &[u8], mode: u32| {
            let path = root.join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, content).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        write("bin/tool", b"#!/bin/sh\necho tool\n", 0o700);
        write("share/a.txt", b"same content\n", 0o644);
        write("share/b.txt", b"same content\n", 0o600);
        write("share/c.txt", b"other content", 0o644);
        write("share/exec-copy", b"same content\n", 0o755);
        write("share/empty1", b"", 0o644);
        write("share/empty2", b"", 0o644);
        symlink("tool", root.join("bin/alias")).unwrap();
        let mut tree = FileTree::new();
        tree.add(&root, "/").unwrap();
        (temp, tree)
    }

    fn options(compression: Compression) -> LayerOptions {
        LayerOptions {
            compression,
            mtime: 1,
            threads: 2,
        }
    }

    #[test]
    fn layer_bytes_golden() {
        let (_temp, tree) = fixture();
        let (summary, bytes) =
            write_layer(&tree, &options(Compression::None), Vec::new(), &mut |_| {}).unwrap();
        assert_eq!(summary.digest, summary.diff_id);
        assert_eq!(summary.size, bytes.len() as u64);
        assert_eq!(summary.entries, 10);
        assert_eq!((summary.hard_links, summary.deduplicated_bytes), (1, 13));

        // The tar as `tar` itself reads it.
        let mut archive = tar::Archive::new(&bytes[..]);
        let listing: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let header = entry.header();
                format!(
                    "{:?} {:o} {}:{} {} {} {}",
                    header.entry_type(),
                    header.mode().unwrap(),
                    header.uid().unwrap(),
                    header.gid().unwrap(),
                    header.mtime().unwrap(),
                    entry.path().unwrap().display(),
                    entry
                        .link_name()
                        .unwrap()
                        .map(|link| format!("-> {}", link.display()))
                        .unwrap_or_else(|| header.size().unwrap().to_string()),
                )
            })
            .collect();
        assert_eq!(
            listing,
            [
                "Directory 755 0:0 1 bin/ 0",
                "Symlink 777 0:0 1 bin/alias -> tool",
                "Regular 755 0:0 1 bin/tool 20",
                "Directory 755 0:0 1 share/ 0",
                "Regular 644 0:0 1 share/a.txt 13",
                "Link 644 0:0 1 share/b.txt -> share/a.txt",
                "Regular 644 0:0 1 share/c.txt 13",
                "Regular 644 0:0 1 share/empty1 0",
                "Regular 644 0:0 1 share/empty2 0",
                "Regular 755 0:0 1 share/exec-copy 13",
            ]
        );
        assert_eq!(
            summary.diff_id.to_string(),
            "sha256:2050ecf873e8b65af659a617a5ef9c3e36f15a9d8fd5880e35861c3afdb27848"
        );
    }

    #[test]
    fn compressed_layers_golden() {
        let (_temp, tree) = fixture();
        let (plain, _) =
            write_layer(&tree, &options(Compression::None), Vec::new(), &mut |_| {}).unwrap();
        for (compression, expected) in [
            (
                Compression::Gzip,
                "sha256:2fcdb538de453ab275e9dcd6c4c644b5702cfc6031008704121aa32b93072cd1",
            ),
            (
                Compression::Zstd,
                "sha256:d20eee016b53935e178348d6f5c4f2773c717c0f4c3d5a1c63984e7a712e9587",
            ),
        ] {
            let (summary, bytes) =
                write_layer(&tree, &options(compression), Vec::new(), &mut |_| {}).unwrap();
            assert_eq!(summary.diff_id, plain.diff_id, "{compression}");
            assert_eq!(summary.digest, Digest::of(&bytes));
            assert_eq!(summary.digest.to_string(), expected, "{compression}");
        }
    }

    #[test]
    fn same_tree_in_another_folder_gives_the_same_bytes() {
        let (_first_temp, first) = fixture();
        let (_second_temp, second) = fixture();
        let (first, _) =
            write_layer(&first, &options(Compression::Gzip), Vec::new(), &mut |_| {}).unwrap();
        let (second, _) = write_layer(
            &second,
            &options(Compression::Gzip),
            Vec::new(),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(first, second);
    }

    /// Attributes set on the tree (the static base's) reach the tar as given: the sticky bit
    /// and a non-root owner.
    #[test]
    fn explicit_attributes_reach_the_headers() {
        let temp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(temp.path().join("tmp")).unwrap();
        std::fs::create_dir_all(temp.path().join("home/nonroot")).unwrap();
        let mut tree = FileTree::new();
        tree.add(temp.path(), "/").unwrap();
        let set = |tree: &mut FileTree, path: &str, mode, owner| {
            let path = ImagePath::parse_absolute(path).unwrap();
            let attributes = Attributes {
                mode,
                uid: owner,
                gid: owner,
            };
            tree.set_attributes(&path, attributes).unwrap();
        };
        set(&mut tree, "/tmp", 0o1777, 0);
        set(&mut tree, "/home/nonroot", 0o700, 65532);
        let (_, bytes) =
            write_layer(&tree, &options(Compression::None), Vec::new(), &mut |_| {}).unwrap();
        let mut archive = tar::Archive::new(&bytes[..]);
        let headers: Vec<(String, u32, u64, u64)> = archive
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let header = entry.header();
                (
                    entry.path().unwrap().display().to_string(),
                    header.mode().unwrap(),
                    header.uid().unwrap(),
                    header.gid().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            headers,
            [
                ("home/".to_owned(), 0o755, 0, 0),
                ("home/nonroot/".to_owned(), 0o700, 65532, 65532),
                ("tmp/".to_owned(), 0o1777, 0, 0),
            ]
        );
    }

    #[test]
    fn a_vanished_source_is_named() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("gone");
        std::fs::write(&path, b"x").unwrap();
        let mut tree = FileTree::new();
        tree.add(&path, "/gone").unwrap();
        std::fs::remove_file(&path).unwrap();
        let error =
            write_layer(&tree, &options(Compression::Gzip), Vec::new(), &mut |_| {}).unwrap_err();
        assert!(
            matches!(&error, LayerError::Read { path: named, .. } if named == &path),
            "{error:?}"
        );
    }
}
