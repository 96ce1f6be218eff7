//! NAR, the Nix ARchive: the canonical serialisation of a file tree that Nix hashes, and
//! kiln with it (store verification now; module NAR hashes as gomod2nix.toml holds them).
//!
//! Grammar (each string is its length as a u64 little-endian, the bytes, then zeros to a
//! multiple of 8):
//!
//! ```text
//! nar       = str("nix-archive-1") node
//! node      = str("(") str("type") kind str(")")
//! kind      = str("regular") [str("executable") str("")] str("contents") str(CONTENT)
//!           | str("symlink") str("target") str(TARGET)
//!           | str("directory") { str("entry") str("(") str("name") str(NAME)
//!                                str("node") node str(")") }
//! ```
//!
//! Directory entries are sorted by name bytes; a file is executable when its owner execute
//! bit is set; nothing else of the file's metadata is recorded. Sockets, FIFOs and devices
//! cannot be represented. `nix-hash --type sha256 PATH` (the oracle in the tests) is the
//! sha256 of these bytes.
//!
//! Written here because no published crate implements it (nix-compat is not on crates.io).

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::diagnostic::PathError;
use crate::oci::digest::{BackgroundHashingWriter, Digest, HashingWriter};

#[derive(Debug, thiserror::Error)]
pub enum NarError {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("{} is neither a file, a folder nor a symlink, so it has no NAR form", .0.display())]
    Unsupported(PathBuf),
    #[error("{} changed while it was being read", .0.display())]
    Changed(PathBuf),
    #[error("not a valid NAR at byte {offset}: {message}")]
    Malformed { offset: u64, message: String },
    #[error("cannot read the NAR stream at byte {offset}")]
    Read {
        offset: u64,
        #[source]
        source: io::Error,
    },
}

/// A NAR hash in the forms Nix prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NarHash {
    pub digest: Digest,
    /// Bytes of the NAR serialisation.
    pub size: u64,
}

impl NarHash {
    /// `sha256-<base64>`, the SRI form gomod2nix.toml and `nix hash path` use.
    pub fn sri(&self) -> String {
        use base64::Engine;
        let raw = hex::decode(self.digest.hex()).unwrap_or_default();
        format!(
            "sha256-{}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// The NAR hash of the tree at `path` (not following a symlink at `path` itself).
pub fn nar_hash(path: &Path) -> Result<NarHash, NarError> {
    // Reading and hashing overlap (a store output is often one large program).
    let mut hasher = BackgroundHashingWriter::new(io::sink()).map_err(PathError::read(path))?;
    write_nar(path, &mut hasher)?;
    let (_, digest, size) = hasher.finish().map_err(PathError::read(path))?;
    Ok(NarHash { digest, size })
}

/// Write the NAR serialisation of the tree at `path` into `out`.
pub fn write_nar(path: &Path, out: &mut impl Write) -> Result<(), NarError> {
    let mut writer = NarWriter { out };
    writer
        .string(b"nix-archive-1")
        .map_err(PathError::read(path))?;
    writer.node(path)
}

/// Copy files into a new folder `destination` and return the folder's NAR hash, computed
/// from the bytes as they are written, so the copy is never read back. Each item is a path
/// relative to `destination` (`/`-separated, clean, no two alike, none under another) and
/// the file it copies; the copy gets mode 0755 when the original's owner may execute it,
/// 0644 otherwise, and the folders 0755. A package's programs reach the store this way.
///
/// The hash is the one [`nar_hash`] of `destination` gives (the tests check it against both
/// it and `nix-hash`), provided nothing changes `destination` afterwards other than modes
/// that keep the owner-execute bit (the store's read-only modes do). A source that shrinks
/// or grows while it is copied is [`NarError::Changed`].
pub fn copy_files_hashed<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a Path)>,
    destination: &Path,
) -> Result<NarHash, NarError> {
    let mut root = BTreeMap::new();
    for (path, source) in files {
        insert_file(&mut root, path, CopyNode::File(source));
    }
    let mut hasher =
        BackgroundHashingWriter::new(io::sink()).map_err(PathError::write(destination))?;
    let mut writer = NarWriter { out: &mut hasher };
    writer
        .string(b"nix-archive-1")
        .map_err(PathError::write(destination))?;
    writer.copy_folder(&root, destination)?;
    let (_, digest, size) = hasher.finish().map_err(PathError::write(destination))?;
    Ok(NarHash { digest, size })
}

/// The longest name of a folder entry and the longest symlink target [`unpack_nar`] takes
/// (Linux's NAME_MAX and PATH_MAX), and the deepest nesting of folders.
const NAME_LIMIT: u64 = 255;
const TARGET_LIMIT: u64 = 4096;
const DEPTH_LIMIT: usize = 256;

/// Unpack the NAR read from `reader` at `destination` (which must not exist), as Nix's
/// `restorePath` does: files 0644 (0755 when executable), folders 0755, symlinks as they
/// are. The stream is checked against the grammar as it is read: entries strictly sorted,
/// names without `/`, NUL, `.` or `..`, padding zero, nothing after the root node's end is
/// read. Streaming: file contents are copied through, never held in memory. On an error
/// whatever was written is left for the caller to remove (it unpacks into a temporary).
pub fn unpack_nar(reader: &mut impl Read, destination: &Path) -> Result<(), NarError> {
    let mut nar = NarReader {
        inner: reader,
        offset: 0,
    };
    nar.expect(b"nix-archive-1")?;
    nar.node(destination, 0)
}

struct NarReader<'a, R: Read> {
    inner: &'a mut R,
    offset: u64,
}

impl<R: Read> NarReader<'_, R> {
    fn malformed(&self, message: impl Into<String>) -> NarError {
        NarError::Malformed {
            offset: self.offset,
            message: message.into(),
        }
    }

    fn exact(&mut self, buffer: &mut [u8]) -> Result<(), NarError> {
        self.inner.read_exact(buffer).map_err(|source| {
            if source.kind() == io::ErrorKind::UnexpectedEof {
                self.malformed("the stream ends early (truncated)")
            } else {
                NarError::Read {
                    offset: self.offset,
                    source,
                }
            }
        })?;
        self.offset += buffer.len() as u64;
        Ok(())
    }

    fn number(&mut self) -> Result<u64, NarError> {
        let mut bytes = [0u8; 8];
        self.exact(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn padding(&mut self, length: u64) -> Result<(), NarError> {
        let remainder = (length % 8) as usize;
        if remainder != 0 {
            let mut zeros = [0u8; 8];
            self.exact(&mut zeros[..8 - remainder])?;
            if zeros.iter().any(|byte| *byte != 0) {
                return Err(self.malformed("padding that is not zero"));
            }
        }
        Ok(())
    }

    fn string(&mut self, limit: u64) -> Result<Vec<u8>, NarError> {
        let length = self.number()?;
        if length > limit {
            return Err(self.malformed(format!("a string of {length} bytes (at most {limit})")));
        }
        let mut bytes = vec![0u8; length as usize];
        self.exact(&mut bytes)?;
        self.padding(length)?;
        Ok(bytes)
    }

    /// The next token, which must be one of the grammar's words (all short).
    fn token(&mut self) -> Result<Vec<u8>, NarError> {
        self.string(16)
    }

    fn expect(&mut self, word: &[u8]) -> Result<(), NarError> {
        let token = self.token()?;
        if token != word {
            return Err(self.malformed(format!(
                "expected {:?}, found {:?}",
                String::from_utf8_lossy(word),
                String::from_utf8_lossy(&token)
            )));
        }
        Ok(())
    }

    fn node(&mut self, path: &Path, depth: usize) -> Result<(), NarError> {
        if depth > DEPTH_LIMIT {
            return Err(self.malformed(format!("folders nested deeper than {DEPTH_LIMIT}")));
        }
        self.expect(b"(")?;
        self.expect(b"type")?;
        match self.token()?.as_slice() {
            b"regular" => {
                let mut tag = self.token()?;
                let mut executable = false;
                if tag == b"executable" {
                    self.expect(b"")?;
                    executable = true;
                    tag = self.token()?;
                }
                if tag != b"contents" {
                    return Err(self.malformed("a regular file without `contents`"));
                }
                let size = self.number()?;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(if executable { 0o755 } else { 0o644 })
                    .open(path)
                    .map_err(PathError::write(path))?;
                let copied =
                    io::copy(&mut (&mut *self.inner).take(size), &mut file).map_err(|source| {
                        NarError::Read {
                            offset: self.offset,
                            source,
                        }
                    })?;
                self.offset += copied;
                if copied != size {
                    return Err(self.malformed(format!(
                        "the stream ends {} bytes into a file of {size} (truncated)",
                        copied
                    )));
                }
                self.padding(size)?;
                let mode = if executable { 0o755 } else { 0o644 };
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                    .map_err(PathError::write(path))?;
            }
            b"symlink" => {
                self.expect(b"target")?;
                let target = self.string(TARGET_LIMIT)?;
                if target.is_empty() || target.contains(&0) {
                    return Err(self.malformed("an empty symlink target, or one with NUL"));
                }
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&target), path)
                    .map_err(PathError::write(path))?;
            }
            b"directory" => {
                std::fs::create_dir(path).map_err(PathError::write(path))?;
                let mut previous: Option<Vec<u8>> = None;
                loop {
                    match self.token()?.as_slice() {
                        b")" => return Ok(()),
                        b"entry" => {}
                        other => {
                            return Err(self.malformed(format!(
                                "expected an entry, found {:?}",
                                String::from_utf8_lossy(other)
                            )));
                        }
                    }
                    self.expect(b"(")?;
                    self.expect(b"name")?;
                    let name = self.string(NAME_LIMIT)?;
                    if name.is_empty()
                        || name == b"."
                        || name == b".."
                        || name.contains(&b'/')
                        || name.contains(&0)
                    {
                        return Err(self.malformed(format!(
                            "the entry name {:?}",
                            String::from_utf8_lossy(&name)
                        )));
                    }
                    if previous.as_ref().is_some_and(|previous| *previous >= name) {
                        return Err(self.malformed(format!(
                            "entry {:?} is out of order or given twice",
                            String::from_utf8_lossy(&name)
                        )));
                    }
                    self.expect(b"node")?;
                    self.node(&path.join(std::ffi::OsStr::from_bytes(&name)), depth + 1)?;
                    self.expect(b")")?;
                    previous = Some(name);
                }
            }
            other => {
                return Err(self.malformed(format!(
                    "the node type {:?}",
                    String::from_utf8_lossy(other)
                )));
            }
        }
        self.expect(b")")
    }
}

/// The NAR hash of the folder that `files` form, computed without touching the disk: each
/// item is a path relative to the folder (`/`-separated), the file's content and whether it
/// is executable. Folders are implied by the paths, so an empty folder cannot be expressed;
/// directory entries are sorted by name bytes as for a real folder. kiln hashes a module zip
/// this way as the folder it unpacks to (`gomod::modzip`).
///
/// The paths must form a tree: none twice, none both a file and a folder, no empty, `.` or
/// `..` elements (module zips are checked for all of this first). Breaking that is a bug in
/// the caller: debug builds assert, release builds let the later file win.
pub fn nar_hash_files<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8], bool)>) -> NarHash {
    let mut root = BTreeMap::new();
    for (path, content, executable) in files {
        insert_file(
            &mut root,
            path,
            MemoryNode::File {
                content,
                executable,
            },
        );
    }
    let mut hasher = HashingWriter::new(io::sink());
    let mut writer = NarWriter { out: &mut hasher };
    let written = writer
        .string(b"nix-archive-1")
        .and_then(|()| writer.memory_folder(&root));
    if let Err(error) = written {
        unreachable!("hashing into io::sink cannot fail: {error}");
    }
    let (_, digest, size) = hasher.finish();
    NarHash { digest, size }
}

/// A file tree held in memory, for [`nar_hash_files`]; a `BTreeMap` keyed by `&str` keeps
/// entries in name byte order, the order NAR requires.
enum MemoryNode<'a> {
    File { content: &'a [u8], executable: bool },
    Folder(BTreeMap<&'a str, MemoryNode<'a>>),
}

/// A folder to be made by [`copy_files_hashed`]: the files it copies, by name.
enum CopyNode<'a> {
    File(&'a Path),
    Folder(BTreeMap<&'a str, CopyNode<'a>>),
}

/// The node kinds [`insert_file`] builds trees of.
trait TreeNode<'a>: Sized {
    fn folder() -> Self;
    /// A folder's children; `None` for a file.
    fn children(&mut self) -> Option<&mut BTreeMap<&'a str, Self>>;
}

impl<'a> TreeNode<'a> for MemoryNode<'a> {
    fn folder() -> Self {
        MemoryNode::Folder(BTreeMap::new())
    }
    fn children(&mut self) -> Option<&mut BTreeMap<&'a str, Self>> {
        match self {
            MemoryNode::Folder(children) => Some(children),
            MemoryNode::File { .. } => None,
        }
    }
}

impl<'a> TreeNode<'a> for CopyNode<'a> {
    fn folder() -> Self {
        CopyNode::Folder(BTreeMap::new())
    }
    fn children(&mut self) -> Option<&mut BTreeMap<&'a str, Self>> {
        match self {
            CopyNode::Folder(children) => Some(children),
            CopyNode::File(_) => None,
        }
    }
}

fn insert_file<'a, N: TreeNode<'a>>(mut folder: &mut BTreeMap<&'a str, N>, path: &'a str, file: N) {
    let (parents, name) = path.rsplit_once('/').unwrap_or(("", path));
    debug_assert!(
        path.split('/')
            .all(|element| !matches!(element, "" | "." | "..")),
        "not a clean relative path: {path:?}"
    );
    for element in parents.split('/').filter(|element| !element.is_empty()) {
        let child = folder.entry(element).or_insert_with(N::folder);
        debug_assert!(child.children().is_some(), "{path:?} lies under a file");
        if child.children().is_none() {
            *child = N::folder();
        }
        let Some(children) = child.children() else {
            unreachable!("replaced by a folder just above");
        };
        folder = children;
    }
    let previous = folder.insert(name, file);
    debug_assert!(
        previous.is_none(),
        "{path:?} given twice or as a folder too"
    );
}

/// A failed write into `out` is reported as a failed read of the path being serialised: `out`
/// has no path of its own (and [`nar_hash`] writes into a sink, which cannot fail).
struct NarWriter<'a, W: Write> {
    out: &'a mut W,
}

impl<W: Write> NarWriter<'_, W> {
    fn string(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(&(bytes.len() as u64).to_le_bytes())?;
        self.out.write_all(bytes)?;
        self.pad(bytes.len() as u64)
    }

    fn pad(&mut self, length: u64) -> io::Result<()> {
        let remainder = (length % 8) as usize;
        if remainder != 0 {
            self.out.write_all(&[0u8; 8][..8 - remainder])?;
        }
        Ok(())
    }

    fn strings(&mut self, items: &[&[u8]]) -> io::Result<()> {
        items.iter().try_for_each(|item| self.string(item))
    }

    fn node(&mut self, path: &Path) -> Result<(), NarError> {
        let metadata = std::fs::symlink_metadata(path).map_err(PathError::read(path))?;
        let file_type = metadata.file_type();
        self.strings(&[b"(", b"type"])
            .map_err(PathError::read(path))?;
        if file_type.is_symlink() {
            let target = std::fs::read_link(path).map_err(PathError::read(path))?;
            self.strings(&[b"symlink", b"target", target.as_os_str().as_bytes()])
                .map_err(PathError::read(path))?;
        } else if file_type.is_file() {
            self.string(b"regular").map_err(PathError::read(path))?;
            if metadata.permissions().mode() & 0o100 != 0 {
                self.strings(&[b"executable", b""])
                    .map_err(PathError::read(path))?;
            }
            self.string(b"contents").map_err(PathError::read(path))?;
            self.contents(path, metadata.len())?;
        } else if file_type.is_dir() {
            self.string(b"directory").map_err(PathError::read(path))?;
            let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(path)
                .map_err(PathError::walk(path))?
                .map(|entry| entry.map(|entry| entry.file_name()))
                .collect::<Result<_, _>>()
                .map_err(PathError::walk(path))?;
            names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            for name in names {
                self.strings(&[b"entry", b"(", b"name", name.as_bytes(), b"node"])
                    .map_err(PathError::read(path))?;
                self.node(&path.join(&name))?;
                self.string(b")").map_err(PathError::read(path))?;
            }
        } else {
            return Err(NarError::Unsupported(path.to_owned()));
        }
        self.string(b")").map_err(PathError::read(path))?;
        Ok(())
    }

    fn memory_folder(&mut self, children: &BTreeMap<&str, MemoryNode<'_>>) -> io::Result<()> {
        self.strings(&[b"(", b"type", b"directory"])?;
        for (name, child) in children {
            self.strings(&[b"entry", b"(", b"name", name.as_bytes(), b"node"])?;
            match child {
                MemoryNode::File {
                    content,
                    executable,
                } => {
                    self.strings(&[b"(", b"type", b"regular"])?;
                    if *executable {
                        self.strings(&[b"executable", b""])?;
                    }
                    self.strings(&[b"contents", *content, b")"])?;
                }
                MemoryNode::Folder(grandchildren) => self.memory_folder(grandchildren)?,
            }
            self.string(b")")?;
        }
        self.string(b")")
    }

    /// `children` made at `folder` (created here) and serialised as they are copied.
    fn copy_folder(
        &mut self,
        children: &BTreeMap<&str, CopyNode<'_>>,
        folder: &Path,
    ) -> Result<(), NarError> {
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(folder)
            .map_err(PathError::write(folder))?;
        self.strings(&[b"(", b"type", b"directory"])
            .map_err(PathError::write(folder))?;
        for (name, child) in children {
            let target = folder.join(name);
            self.strings(&[b"entry", b"(", b"name", name.as_bytes(), b"node"])
                .map_err(PathError::write(&target))?;
            match child {
                CopyNode::File(source) => self.copy_file(source, &target)?,
                CopyNode::Folder(grandchildren) => self.copy_folder(grandchildren, &target)?,
            }
            self.string(b")").map_err(PathError::write(&target))?;
        }
        self.string(b")").map_err(PathError::write(folder))?;
        Ok(())
    }

    /// The regular file `source` copied to a new `target`, serialised from the bytes written.
    fn copy_file(&mut self, source: &Path, target: &Path) -> Result<(), NarError> {
        let mut input = std::fs::File::open(source).map_err(PathError::read(source))?;
        let metadata = input.metadata().map_err(PathError::read(source))?;
        if !metadata.is_file() {
            return Err(NarError::Unsupported(source.to_owned()));
        }
        let executable = metadata.permissions().mode() & 0o100 != 0;
        let mut output = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(if executable { 0o755 } else { 0o644 })
            .open(target)
            .map_err(PathError::write(target))?;
        // The umask may have taken bits the NAR does not record; the owner's are kept.
        self.strings(&[b"(", b"type", b"regular"])
            .map_err(PathError::write(target))?;
        if executable {
            self.strings(&[b"executable", b""])
                .map_err(PathError::write(target))?;
        }
        self.string(b"contents").map_err(PathError::write(target))?;
        let size = metadata.len();
        self.out
            .write_all(&size.to_le_bytes())
            .map_err(PathError::write(target))?;
        let mut buffer = vec![0u8; 256 * 1024];
        let mut copied = 0u64;
        loop {
            let read = match input.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(PathError::read(source)(error).into()),
            };
            copied += read as u64;
            if copied > size {
                return Err(NarError::Changed(source.to_owned()));
            }
            output
                .write_all(&buffer[..read])
                .map_err(PathError::write(target))?;
            self.out
                .write_all(&buffer[..read])
                .map_err(PathError::write(target))?;
        }
        if copied != size {
            return Err(NarError::Changed(source.to_owned()));
        }
        self.pad(size).map_err(PathError::write(target))?;
        self.string(b")").map_err(PathError::write(target))?;
        Ok(())
    }

    fn contents(&mut self, path: &Path, size: u64) -> Result<(), NarError> {
        self.out
            .write_all(&size.to_le_bytes())
            .map_err(PathError::read(path))?;
        let file = std::fs::File::open(path).map_err(PathError::read(path))?;
        let copied = io::copy(&mut file.take(size), self.out).map_err(PathError::read(path))?;
        if copied != size {
            return Err(NarError::Changed(path.to_owned()));
        }
        self.pad(size).map_err(PathError::read(path))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// The tree of [`golden_tree`]: a program, a file, an empty file, an empty folder and a
    /// symlink, at `folder/tree`.
    fn golden_tree_at(folder: &Path) -> PathBuf {
        let root = folder.join("tree");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::create_dir_all(root.join("empty")).unwrap();
        std::fs::write(root.join("bin/tool"), b"#!/bin/sh\necho tool\n").unwrap();
        std::fs::set_permissions(
            root.join("bin/tool"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::write(root.join("readme"), b"hello nar\n").unwrap();
        std::fs::write(root.join("zero"), b"").unwrap();
        symlink("bin/tool", root.join("link")).unwrap();
        root
    }

    /// A fixed tree; its NAR hash below is what `nix-hash --type sha256` (nix 2.8) prints
    /// for it, and the integration test `project::nar_hashes_match_nix_hash` checks more trees against
    /// nix-hash itself.
    #[test]
    fn golden_tree() {
        let temp = tempfile::tempdir().unwrap();
        let root = golden_tree_at(temp.path());
        let hash = nar_hash(&root).unwrap();
        assert_eq!(
            hash.digest.hex(),
            "714e7ebb12ba3729b3a983fdf13d07277786de148f7eca5797af82db483e9e95"
        );
        assert_eq!(hash.size % 8, 0);
    }

    /// Copying with the hash computed on the way gives the hash of the copy read back, and
    /// the copy holds the files with their owner-execute bits.
    #[test]
    fn copied_files_hash_as_the_folder_they_make() {
        let temp = tempfile::tempdir().unwrap();
        let big: Vec<u8> = (0..3_000_001u32).map(|i| (i % 253) as u8).collect();
        let sources = [
            ("program", big.as_slice(), 0o755),
            ("tool", b"#!/bin/sh\n".as_slice(), 0o700),
            ("notes", b"seven b".as_slice(), 0o644),
            ("empty", b"".as_slice(), 0o600),
        ];
        for (name, content, mode) in sources {
            let path = temp.path().join(name);
            std::fs::write(&path, content).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let source = |name: &str| temp.path().join(name);
        let (program, tool, notes, empty) = (
            source("program"),
            source("tool"),
            source("notes"),
            source("empty"),
        );
        let destination = temp.path().join("out");
        let hash = copy_files_hashed(
            [
                ("bin/program", program.as_path()),
                ("bin/tool", tool.as_path()),
                ("share/doc/notes", notes.as_path()),
                ("empty", empty.as_path()),
            ],
            &destination,
        )
        .unwrap();
        assert_eq!(hash, nar_hash(&destination).unwrap());
        assert_eq!(
            hash,
            nar_hash_files([
                ("bin/program", big.as_slice(), true),
                ("bin/tool", b"#!/bin/sh\n".as_slice(), true),
                ("share/doc/notes", b"seven b".as_slice(), false),
                ("empty", b"".as_slice(), false),
            ])
        );
        assert_eq!(std::fs::read(destination.join("bin/program")).unwrap(), big);
        let mode = |path: &str| {
            std::fs::metadata(destination.join(path))
                .unwrap()
                .permissions()
                .mode()
                & 0o100
        };
        assert_eq!((mode("bin/tool"), mode("share/doc/notes")), (0o100, 0));
        // The destination must be new; a source that is not a file is refused.
        let again = copy_files_hashed([("x", notes.as_path())], &destination);
        assert!(matches!(again, Err(NarError::Path(_))), "{again:?}");
        let folder = copy_files_hashed([("x", temp.path())], &temp.path().join("other"));
        assert!(
            matches!(folder, Err(NarError::Unsupported(_))),
            "{folder:?}"
        );
    }

    /// Unpacking a NAR gives back a tree with the same NAR: files, executables, symlinks,
    /// empty files and folders; a single file unpacks as a file.
    #[test]
    fn unpacking_round_trips() {
        let temp = tempfile::tempdir().unwrap();
        let root = golden_tree_at(temp.path());
        for source in [root.clone(), root.join("readme")] {
            let mut bytes = Vec::new();
            write_nar(&source, &mut bytes).unwrap();
            let destination = temp.path().join(format!("back-{}", bytes.len()));
            unpack_nar(&mut bytes.as_slice(), &destination).unwrap();
            assert_eq!(nar_hash(&destination).unwrap(), nar_hash(&source).unwrap());
        }
    }

    /// Truncated, disordered and hostile streams are refused, naming the byte.
    #[test]
    fn malformed_nars_are_refused() {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join("tree");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("a"), b"content of a").unwrap();
        std::fs::write(root.join("b"), b"b").unwrap();
        let mut good = Vec::new();
        write_nar(&root, &mut good).unwrap();
        let unpack = |bytes: &[u8], name: &str| {
            unpack_nar(&mut &bytes[..], &temp.path().join(name))
                .unwrap_err()
                .to_string()
        };
        let truncated = unpack(&good[..good.len() - 20], "truncated");
        assert!(truncated.contains("truncated"), "{truncated}");
        let in_file = unpack(&good[..good.len() - 100], "in-file");
        assert!(in_file.contains("not a valid NAR at byte"), "{in_file}");
        // Swap the names "a" and "b": out of order.
        let mut swapped = good.clone();
        let a = swapped
            .windows(9)
            .position(|window| window == b"\x01\0\0\0\0\0\0\0a")
            .unwrap();
        let b = swapped
            .windows(9)
            .position(|window| window == b"\x01\0\0\0\0\0\0\0b")
            .unwrap();
        swapped[a + 8] = b'b';
        swapped[b + 8] = b'a';
        let disorder = unpack(&swapped, "disorder");
        assert!(disorder.contains("out of order"), "{disorder}");
        let mut dots = good.clone();
        dots[a + 8] = b'/';
        let slash = unpack(&dots, "slash");
        assert!(slash.contains("the entry name \"/\""), "{slash}");
        let not_nar = unpack(b"\x05\0\0\0\0\0\0\0hello\0\0\0", "not-nar");
        assert!(not_nar.contains("expected \"nix-archive-1\""), "{not_nar}");
    }

    /// The in-memory NAR of a set of files is the NAR of the folder they form on disk.
    #[test]
    fn files_match_folder() {
        let files: [(&str, &[u8], bool); 9] = [
            // Per folder, names sort as bytes: "a" < "a-c" < "a.b", though as whole paths
            // "a-c" < "a.b" < "a/b".
            ("a.b", b"dot\n", false),
            ("a/b", b"under a\n", false),
            ("a-c", b"dash\n", false),
            ("a/z/deep/er/file.go", b"package er\n", false),
            ("empty", b"", false),
            ("bin/tool", b"#!/bin/sh\necho tool\n", true),
            ("Z", b"upper case sorts first\n", false),
            ("a/Y", b"nested upper\n", false),
            ("seven", b"1234567", false),
        ];
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join("tree");
        for (path, content, executable) in files {
            let file = root.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, content).unwrap();
            let mode = if executable { 0o755 } else { 0o644 };
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        assert_eq!(nar_hash_files(files), nar_hash(&root).unwrap());
        // Order of the input does not matter.
        assert_eq!(
            nar_hash_files(files.into_iter().rev()),
            nar_hash(&root).unwrap()
        );
        // No files: an empty folder.
        std::fs::create_dir(temp.path().join("empty")).unwrap();
        assert_eq!(
            nar_hash_files([]),
            nar_hash(&temp.path().join("empty")).unwrap()
        );
    }

    #[test]
    fn single_file_layout() {
        let temp = tempfile::tempdir().unwrap();
        let file = temp.path().join("f");
        std::fs::write(&file, b"abc").unwrap();
        let mut bytes = Vec::new();
        write_nar(&file, &mut bytes).unwrap();
        let mut expected = Vec::new();
        for item in [
            &b"nix-archive-1"[..],
            b"(",
            b"type",
            b"regular",
            b"contents",
        ] {
            expected.extend((item.len() as u64).to_le_bytes());
            expected.extend(item);
            expected.resize(expected.len().next_multiple_of(8), 0);
        }
        expected.extend(3u64.to_le_bytes());
        expected.extend(b"abc\0\0\0\0\0");
        expected.extend(1u64.to_le_bytes());
        expected.extend(b")\0\0\0\0\0\0\0");
        assert_eq!(bytes, expected);
    }
}
