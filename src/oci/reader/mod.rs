//! Reading images from an OCI layout folder or an image tar: kiln's own archives, `docker
//! save` (the Docker 25+ OCI form and the older `<id>/layer.tar` form), `podman save`, skopeo's
//! `docker-archive:` and `oci-archive:`, and any of these gzip- or zstd-compressed.
//!
//! Nothing read is trusted before it is checked: archive entry names and the paths in
//! `manifest.json` must stay inside the archive (no absolute paths, no `..`, symlinks resolved
//! within it); an archive names each file once and puts nothing under a link or a file, so
//! every reader (first match, last match, `tar x`) sees the same image; JSON documents are read
//! only up to [`DOCUMENT_LIMIT`]; a layout with `index.json` has an `oci-layout` of version
//! 1.0.0; indexes and manifests are of schema version 2 and, when they say their media type,
//! the one their descriptor says; every blob named by a descriptor must have the descriptor's
//! size and digest. Layers are streamed, and their digests checked by whoever reads them to
//! the end (see `oci::inspect`).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::compression::{Compression, Decompressor};
use super::digest::Digest;
use super::layout::{DOCKER_MANIFEST_FILE, INDEX_FILE, OCI_LAYOUT_FILE};
use super::reference::Reference;
use super::spec::{
    Descriptor, DockerArchiveEntry, ImageConfig, Index, Manifest, Platform, annotation, media_type,
};
use super::tar::{TarReadError, TarReader};
use crate::diagnostic::PathError;

mod found;
mod tar_index;

use found::names_of;
pub use found::{FoundImage, FoundLayer, FoundManifest, ImageNames};
pub use tar_index::RangeReader;
use tar_index::index_tar;

/// The largest JSON document (index, manifest, config) kiln reads. Real configs are a few
/// KiB; a long history reaches a few hundred.
pub const DOCUMENT_LIMIT: u64 = 16 << 20;
/// How deep indexes may nest, and how many links a path may follow.
const MAX_DEPTH: usize = 8;
/// How many index and manifest descriptors one source may list in all.
pub const MAX_DESCRIPTORS: usize = 10_000;
/// A compressed archive may unpack to this much, plus [`UNPACK_RATIO`] times its size.
const UNPACK_FLOOR: u64 = 1 << 30;
const UNPACK_RATIO: u64 = 200;

fn unpack_limit(compressed: u64) -> u64 {
    #[cfg(test)]
    if let Some(limit) = TEST_UNPACK_LIMIT.with(|limit| limit.get()) {
        return limit;
    }
    UNPACK_FLOOR.saturating_add(compressed.saturating_mul(UNPACK_RATIO))
}

#[cfg(test)]
thread_local! {
    static TEST_UNPACK_LIMIT: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
}

#[derive(Debug, thiserror::Error)]
pub enum ReaderError {
    #[error("{} is not an image: {reason}", .path.display())]
    NotAnImage { path: PathBuf, reason: String },
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("{}: entry `{entry}` escapes the archive's root", .path.display())]
    EntryEscapes { path: PathBuf, entry: String },
    #[error("{}: entry `{entry}` is truncated (the archive ends before its {size} bytes)", .path.display())]
    Truncated {
        path: PathBuf,
        entry: String,
        size: u64,
    },
    #[error("{}: `{name}` is missing", .path.display())]
    Missing { path: PathBuf, name: String },
    #[error("{}: `{name}` is {size} bytes, more than the {limit} bytes a JSON document may have", .path.display())]
    TooLarge {
        path: PathBuf,
        name: String,
        size: u64,
        limit: u64,
    },
    #[error("{}: blob {digest} does not match its descriptor: {what}", .path.display())]
    Mismatch {
        path: PathBuf,
        digest: Digest,
        what: String,
    },
    #[error("{}: `{name}` is not a valid {document}: {source}", .path.display())]
    InvalidJson {
        path: PathBuf,
        name: String,
        document: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: {message}", .path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("cannot read `{entry}` in {}", .path.display())]
    ReadEntry {
        path: PathBuf,
        entry: String,
        #[source]
        source: io::Error,
    },
    #[error("{}: the archive is damaged", .path.display())]
    Tar {
        path: PathBuf,
        #[source]
        source: super::tar::TarReadError,
    },
    #[error("{}: `{entry}` is in the archive more than once (readers disagree on which one counts)", .path.display())]
    DuplicateEntry { path: PathBuf, entry: String },
    #[error("{}: entry `{entry}` lies under `{parent}`, which is a {kind}; a reader unpacking the archive would write through it", .path.display())]
    UnderNonFolder {
        path: PathBuf,
        entry: String,
        parent: String,
        kind: &'static str,
    },
    #[error("{}: `{OCI_LAYOUT_FILE}` is missing; an OCI layout with `{INDEX_FILE}` has one", .path.display())]
    NoLayoutFile { path: PathBuf },
    #[error("{}: `{OCI_LAYOUT_FILE}` says imageLayoutVersion {version}; kiln reads layouts of version 1.0.0", .path.display())]
    LayoutVersion { path: PathBuf, version: String },
    #[error("{}: `{name}` has schemaVersion {version}; kiln reads schema version 2", .path.display())]
    SchemaVersion {
        path: PathBuf,
        name: String,
        version: u32,
    },
    #[error("{}: `{name}` says its media type is {document}, but the descriptor naming it says {descriptor}", .path.display())]
    MediaTypeMismatch {
        path: PathBuf,
        name: String,
        document: String,
        descriptor: String,
    },
    #[error("{} decompresses to more than {limit} bytes, {ratio}× its size; kiln stops there (a decompression bomb?)", .path.display())]
    Bomb {
        path: PathBuf,
        limit: u64,
        ratio: u64,
    },
}

/// Where a file lives in an archive.
#[derive(Clone, Debug)]
struct TarEntry {
    offset: u64,
    size: u64,
    kind: TarEntryKind,
}

#[derive(Clone, Debug)]
enum TarEntryKind {
    File,
    Directory,
    /// Target as written, relative to the link's folder unless absolute.
    Symlink(String),
    /// Target as written, relative to the archive's root.
    HardLink(String),
    Other,
}

enum Storage {
    Folder(PathBuf),
    Tar {
        file: File,
        entries: HashMap<String, TarEntry>,
    },
}

/// An opened image folder or archive.
pub struct ImageReader {
    path: PathBuf,
    storage: Storage,
    /// Set when the archive itself was compressed (`docker save | gzip`).
    pub archive_compression: Compression,
}

/// Normalise an archive entry name: drop `.` components and repeated or trailing slashes;
/// refuse absolute names and `..`.
fn normalise_entry_name(name: &str) -> Option<String> {
    if name.starts_with('/') {
        return None;
    }
    relative_path(name)
}

/// `path` as `/`-joined components relative to a root (a leading `/` means the root), or
/// `None` when a `..` would climb out of it. `.` and empty components are dropped.
pub(crate) fn relative_path(path: &str) -> Option<String> {
    let mut components = Vec::new();
    for component in path.split('/') {
        match component {
            "" | "." => {}
            ".." => return None,
            _ => components.push(component),
        }
    }
    Some(components.join("/"))
}

/// Resolve `target` relative to `folder` without leaving the root.
fn resolve_relative(folder: &str, target: &str) -> Option<String> {
    let mut components: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        folder.split('/').filter(|part| !part.is_empty()).collect()
    };
    for component in target.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                components.pop()?;
            }
            _ => components.push(component),
        }
    }
    Some(components.join("/"))
}

impl ImageReader {
    /// Open `path`: an OCI layout (or extracted docker-archive) folder, or an image tar.
    pub fn open(path: &Path) -> Result<Self, ReaderError> {
        let metadata = std::fs::metadata(path).map_err(PathError::read(path))?;
        if metadata.is_dir() {
            let root = path.canonicalize().map_err(PathError::read(path))?;
            return Ok(ImageReader {
                path: path.to_owned(),
                storage: Storage::Folder(root),
                archive_compression: Compression::None,
            });
        }
        if !metadata.is_file() {
            return Err(ReaderError::NotAnImage {
                path: path.to_owned(),
                reason: "it is neither a folder nor a regular file".to_owned(),
            });
        }
        let file = File::open(path).map_err(PathError::read(path))?;
        let mut decompressor = Decompressor::new(&file).map_err(PathError::read(path))?;
        let archive_compression = decompressor.compression();
        let mut file = if archive_compression == Compression::None {
            file
        } else {
            // A compressed archive cannot be read at random: unpack it into an anonymous
            // temporary file first, within a ratio no real image archive comes near.
            let limit = unpack_limit(metadata.len());
            // Unpacking writes into the temporary folder: a failure there names it, not the
            // image (which was read fine).
            let mut unpacked =
                tempfile::tempfile().map_err(PathError::write(&std::env::temp_dir()))?;
            let copied = io::copy(&mut (&mut decompressor).take(limit + 1), &mut unpacked).map_err(|source| {
                ReaderError::NotAnImage {
                    path: path.to_owned(),
                    reason: format!(
                        "it looks {archive_compression}-compressed but does not decompress ({source})"
                    ),
                }
            })?;
            if copied > limit {
                return Err(ReaderError::Bomb {
                    path: path.to_owned(),
                    limit,
                    ratio: UNPACK_RATIO,
                });
            }
            unpacked
        };
        // Sniffing (or unpacking) moved the offset; the tar reader starts at the beginning.
        file.seek(SeekFrom::Start(0))
            .map_err(PathError::read(path))?;
        let entries = index_tar(&file, path)?;
        Ok(ImageReader {
            path: path.to_owned(),
            storage: Storage::Tar { file, entries },
            archive_compression,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the source has a regular file `name`. Only "missing" is `false`; any other
    /// failure (unreadable, escaping, a link loop) is an error.
    pub fn contains(&self, name: &str) -> Result<bool, ReaderError> {
        match self.open_file(name) {
            Ok(_) => Ok(true),
            Err(ReaderError::Missing { .. }) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Open the file `name` (a `/`-separated path relative to the root); returns a reader
    /// and the file's size.
    pub fn open_file(&self, name: &str) -> Result<(Box<dyn Read + Send + '_>, u64), ReaderError> {
        let normalised = normalise_entry_name(name).ok_or_else(|| ReaderError::EntryEscapes {
            path: self.path.clone(),
            entry: name.to_owned(),
        })?;
        match &self.storage {
            Storage::Folder(root) => {
                let joined = root.join(&normalised);
                let missing = || ReaderError::Missing {
                    path: self.path.clone(),
                    name: name.to_owned(),
                };
                let resolved = match joined.canonicalize() {
                    Ok(resolved) => resolved,
                    Err(error) if error.kind() == io::ErrorKind::NotFound => return Err(missing()),
                    // A link loop, or a folder kiln may not enter: name the entry.
                    Err(source) => {
                        return Err(ReaderError::ReadEntry {
                            path: self.path.clone(),
                            entry: name.to_owned(),
                            source,
                        });
                    }
                };
                if !resolved.starts_with(root) {
                    return Err(ReaderError::EntryEscapes {
                        path: self.path.clone(),
                        entry: name.to_owned(),
                    });
                }
                // The type first: opening a FIFO planted in an unpacked archive would block.
                let read_error = |source| ReaderError::ReadEntry {
                    path: self.path.clone(),
                    entry: name.to_owned(),
                    source,
                };
                let metadata = std::fs::metadata(&resolved).map_err(read_error)?;
                if metadata.is_dir() {
                    return Err(missing());
                }
                if !metadata.is_file() {
                    return Err(ReaderError::Invalid {
                        path: self.path.clone(),
                        message: format!("`{name}` is not a regular file"),
                    });
                }
                let file = File::open(&resolved).map_err(read_error)?;
                Ok((Box::new(file), metadata.len()))
            }
            Storage::Tar { file, entries } => {
                let entry = self.resolve_tar(entries, &normalised, name)?;
                Ok((
                    Box::new(RangeReader {
                        file,
                        offset: entry.offset,
                        remaining: entry.size,
                    }),
                    entry.size,
                ))
            }
        }
    }

    fn resolve_tar<'a>(
        &self,
        entries: &'a HashMap<String, TarEntry>,
        normalised: &str,
        name: &str,
    ) -> Result<&'a TarEntry, ReaderError> {
        let mut current = normalised.to_owned();
        for _ in 0..MAX_DEPTH {
            let entry = entries.get(&current).ok_or_else(|| ReaderError::Missing {
                path: self.path.clone(),
                name: name.to_owned(),
            })?;
            let next = match &entry.kind {
                TarEntryKind::File => return Ok(entry),
                TarEntryKind::Symlink(target) => {
                    let folder = current.rsplit_once('/').map_or("", |(folder, _)| folder);
                    resolve_relative(folder, target)
                }
                TarEntryKind::HardLink(target) => normalise_entry_name(target),
                TarEntryKind::Directory | TarEntryKind::Other => {
                    return Err(ReaderError::Missing {
                        path: self.path.clone(),
                        name: name.to_owned(),
                    });
                }
            };
            current = next.ok_or_else(|| ReaderError::EntryEscapes {
                path: self.path.clone(),
                entry: name.to_owned(),
            })?;
        }
        Err(ReaderError::Invalid {
            path: self.path.clone(),
            message: format!("`{name}` is a chain of more than {MAX_DEPTH} links"),
        })
    }

    /// Read a whole JSON document, refusing anything over [`DOCUMENT_LIMIT`].
    pub fn read_document(&self, name: &str) -> Result<Vec<u8>, ReaderError> {
        let (reader, size) = self.open_file(name)?;
        if size > DOCUMENT_LIMIT {
            return Err(ReaderError::TooLarge {
                path: self.path.clone(),
                name: name.to_owned(),
                size,
                limit: DOCUMENT_LIMIT,
            });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        reader
            .take(DOCUMENT_LIMIT)
            .read_to_end(&mut bytes)
            .map_err(|source| ReaderError::ReadEntry {
                path: self.path.clone(),
                entry: name.to_owned(),
                source,
            })?;
        Ok(bytes)
    }

    /// Read a blob named by `descriptor`, checking its size and digest.
    pub fn read_blob(&self, descriptor: &Descriptor) -> Result<Vec<u8>, ReaderError> {
        if descriptor.size > DOCUMENT_LIMIT {
            return Err(ReaderError::TooLarge {
                path: self.path.clone(),
                name: descriptor.digest.blob_path(),
                size: descriptor.size,
                limit: DOCUMENT_LIMIT,
            });
        }
        let bytes = self.read_document(&descriptor.digest.blob_path())?;
        self.check_blob(descriptor, &bytes)?;
        Ok(bytes)
    }

    fn check_blob(&self, descriptor: &Descriptor, bytes: &[u8]) -> Result<(), ReaderError> {
        if bytes.len() as u64 != descriptor.size {
            return Err(ReaderError::Mismatch {
                path: self.path.clone(),
                digest: descriptor.digest,
                what: format!("{} bytes, descriptor says {}", bytes.len(), descriptor.size),
            });
        }
        let actual = Digest::of(bytes);
        if actual != descriptor.digest {
            return Err(ReaderError::Mismatch {
                path: self.path.clone(),
                digest: descriptor.digest,
                what: format!("its content hashes to {actual}"),
            });
        }
        Ok(())
    }

    /// A layout with `index.json` has an `oci-layout` file of version 1.0.0 (image-layout
    /// spec): another version may lay its blobs out otherwise.
    fn check_layout_file(&self) -> Result<(), ReaderError> {
        if !self.contains(OCI_LAYOUT_FILE)? {
            return Err(ReaderError::NoLayoutFile {
                path: self.path.clone(),
            });
        }
        #[derive(serde::Deserialize)]
        struct LayoutFile {
            #[serde(rename = "imageLayoutVersion")]
            version: String,
        }
        let bytes = self.read_document(OCI_LAYOUT_FILE)?;
        let layout: LayoutFile = self.parse(&bytes, OCI_LAYOUT_FILE, "OCI layout file")?;
        if layout.version != "1.0.0" {
            return Err(ReaderError::LayoutVersion {
                path: self.path.clone(),
                version: layout.version,
            });
        }
        Ok(())
    }

    /// Indexes and manifests of another schema version than 2 are other formats.
    fn check_schema(&self, name: &str, version: u32) -> Result<(), ReaderError> {
        if version != 2 {
            return Err(ReaderError::SchemaVersion {
                path: self.path.clone(),
                name: name.to_owned(),
                version,
            });
        }
        Ok(())
    }

    /// A document that says its media type must be what its descriptor says (as containerd
    /// checks): an image manifest listed as an index would read as an empty index.
    fn check_media_type(
        &self,
        name: &str,
        document: Option<&str>,
        descriptor: &Descriptor,
    ) -> Result<(), ReaderError> {
        match document {
            Some(document) if document != descriptor.media_type => {
                Err(ReaderError::MediaTypeMismatch {
                    path: self.path.clone(),
                    name: name.to_owned(),
                    document: document.to_owned(),
                    descriptor: descriptor.media_type.clone(),
                })
            }
            _ => Ok(()),
        }
    }

    fn parse<T: serde::de::DeserializeOwned>(
        &self,
        bytes: &[u8],
        name: &str,
        document: &'static str,
    ) -> Result<T, ReaderError> {
        serde_json::from_slice(bytes).map_err(|source| ReaderError::InvalidJson {
            path: self.path.clone(),
            name: name.to_owned(),
            document,
            source,
        })
    }

    /// The entries of `index.json` with their names, or `None` when the source has none (a
    /// docker-archive of the older form).
    pub fn index_entries(&self) -> Result<Option<Vec<(Descriptor, ImageNames)>>, ReaderError> {
        if !self.contains(INDEX_FILE)? {
            return Ok(None);
        }
        self.check_layout_file()?;
        let bytes = self.read_document(INDEX_FILE)?;
        let index: Index = self.parse(&bytes, INDEX_FILE, "OCI index")?;
        self.check_schema(INDEX_FILE, index.schema_version)?;
        if index.manifests.len() > MAX_DESCRIPTORS {
            return Err(ReaderError::Invalid {
                path: self.path.clone(),
                message: format!("it lists more than {MAX_DESCRIPTORS} manifests and indexes"),
            });
        }
        Ok(Some(
            index
                .manifests
                .into_iter()
                .map(|descriptor| {
                    let names = names_of(&descriptor);
                    (descriptor, names)
                })
                .collect(),
        ))
    }

    /// The regular files under `blobs/sha256/` named by a digest (`<64 hex>`) and of at most
    /// `size_limit` bytes, with their sizes, in digest order: where a search for referrers,
    /// which no descriptor names, looks (see `oci::layout`). A link is followed within the
    /// source as [`ImageReader::open_file`] follows it; one that leads nowhere is no blob.
    pub fn small_blobs(&self, size_limit: u64) -> Result<Vec<(Digest, u64)>, ReaderError> {
        const FOLDER: &str = "blobs/sha256";
        let names: Vec<String> = match &self.storage {
            Storage::Folder(root) => {
                let folder = root.join(FOLDER);
                let listing = match std::fs::read_dir(&folder) {
                    Ok(listing) => listing,
                    Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(source) => return Err(PathError::walk(&folder)(source).into()),
                };
                let mut names = Vec::new();
                for entry in listing {
                    let entry = entry.map_err(PathError::walk(&folder))?;
                    if let Some(name) = entry.file_name().to_str() {
                        names.push(name.to_owned());
                    }
                }
                names
            }
            Storage::Tar { entries, .. } => entries
                .keys()
                .filter_map(|name| name.strip_prefix("blobs/sha256/"))
                .map(str::to_owned)
                .collect(),
        };
        let mut blobs = Vec::new();
        for name in names {
            let is_digest = name.len() == 64
                && name
                    .bytes()
                    .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
            let Some(digest) = is_digest
                .then(|| format!("sha256:{name}").parse::<Digest>().ok())
                .flatten()
            else {
                continue;
            };
            let size = match self.file_size(&format!("{FOLDER}/{name}")) {
                Ok(size) => size,
                Err(ReaderError::Missing { .. }) => continue,
                Err(error) => return Err(error),
            };
            if size <= size_limit {
                blobs.push((digest, size));
            }
        }
        blobs.sort_by_key(|(digest, _)| digest.raw());
        Ok(blobs)
    }

    /// The size of the regular file `name` (links followed as [`ImageReader::open_file`]
    /// follows them).
    fn file_size(&self, name: &str) -> Result<u64, ReaderError> {
        match &self.storage {
            Storage::Folder(_) => self.open_file(name).map(|(_, size)| size),
            Storage::Tar { entries, .. } => Ok(self.resolve_tar(entries, name, name)?.size),
        }
    }

    /// The entries of a docker-archive's `manifest.json`.
    pub fn docker_entries(&self) -> Result<Vec<DockerArchiveEntry>, ReaderError> {
        let bytes = self.read_document(DOCKER_MANIFEST_FILE)?;
        self.parse(&bytes, DOCKER_MANIFEST_FILE, "docker-archive manifest")
    }

    /// Every image the source holds. A manifest listed several times (in `index.json`, in
    /// nested indexes) is one image with all its names; at most [`MAX_DESCRIPTORS`]
    /// descriptors are followed.
    pub fn images(&self) -> Result<Vec<FoundImage>, ReaderError> {
        let has_index = self.contains(INDEX_FILE)?;
        let has_docker_manifest = self.contains(DOCKER_MANIFEST_FILE)?;
        if !has_index && !has_docker_manifest {
            return Err(ReaderError::NotAnImage {
                path: self.path.clone(),
                reason: format!(
                    "it has neither `{INDEX_FILE}` (OCI layout) nor `{DOCKER_MANIFEST_FILE}` (docker-archive)"
                ),
            });
        }
        let mut walk = Walk::default();
        if has_index {
            self.check_layout_file()?;
            let bytes = self.read_document(INDEX_FILE)?;
            let index: Index = self.parse(&bytes, INDEX_FILE, "OCI index")?;
            self.check_schema(INDEX_FILE, index.schema_version)?;
            for descriptor in &index.manifests {
                self.collect(descriptor, names_of(descriptor), 0, &mut walk)?;
            }
        }
        if has_docker_manifest {
            let bytes = self.read_document(DOCKER_MANIFEST_FILE)?;
            let entries: Vec<DockerArchiveEntry> =
                self.parse(&bytes, DOCKER_MANIFEST_FILE, "docker-archive manifest")?;
            for entry in entries {
                walk.count(self)?;
                self.collect_docker_entry(entry, &mut walk.images)?;
            }
        }
        Ok(walk.images)
    }

    fn collect(
        &self,
        descriptor: &Descriptor,
        names: ImageNames,
        depth: usize,
        walk: &mut Walk,
    ) -> Result<(), ReaderError> {
        walk.count(self)?;
        if depth > MAX_DEPTH {
            return Err(ReaderError::Invalid {
                path: self.path.clone(),
                message: format!("indexes nest more than {MAX_DEPTH} deep"),
            });
        }
        if let Some(&known) = walk.seen.get(&descriptor.digest) {
            // Seen before: an image gains names; an index was already walked.
            if let Some(image) = known.and_then(|index| walk.images.get_mut(index)) {
                image.names.merge(names);
            }
            return Ok(());
        }
        let name = descriptor.digest.blob_path();
        if depth > 0 && !self.contains(&name)? {
            // Docker saves one platform of a multi-platform image; the others are absent.
            walk.seen.insert(descriptor.digest, None);
            return Ok(());
        }
        if media_type::is_index(&descriptor.media_type) {
            walk.seen.insert(descriptor.digest, None);
            let bytes = self.read_blob(descriptor)?;
            let index: Index = self.parse(&bytes, &name, "image index")?;
            self.check_schema(&name, index.schema_version)?;
            self.check_media_type(&name, index.media_type.as_deref(), descriptor)?;
            for child in &index.manifests {
                let mut child_names = names.clone();
                child_names.merge(names_of(child));
                self.collect(child, child_names, depth + 1, walk)?;
            }
            return Ok(());
        }
        if !media_type::is_manifest(&descriptor.media_type) {
            // Artifacts and unknown documents are not images.
            walk.seen.insert(descriptor.digest, None);
            return Ok(());
        }
        let bytes = self.read_blob(descriptor)?;
        let manifest: Manifest = self.parse(&bytes, &name, "image manifest")?;
        self.check_schema(&name, manifest.schema_version)?;
        self.check_media_type(&name, manifest.media_type.as_deref(), descriptor)?;
        if manifest.config.media_type != media_type::OCI_CONFIG
            && manifest.config.media_type != media_type::DOCKER_CONFIG
        {
            // An attestation or other artifact, not a runnable image.
            walk.seen.insert(descriptor.digest, None);
            return Ok(());
        }
        let config_bytes = self.read_blob(&manifest.config)?;
        let config: ImageConfig = self.parse(
            &config_bytes,
            &manifest.config.digest.blob_path(),
            "image config",
        )?;
        let layers = self.layers_from_manifest(&manifest, &config)?;
        walk.seen.insert(descriptor.digest, Some(walk.images.len()));
        walk.images.push(FoundImage {
            names,
            manifest: Some(FoundManifest {
                descriptor: descriptor.clone(),
                manifest: manifest.clone(),
            }),
            config_digest: manifest.config.digest,
            config_size: manifest.config.size,
            config,
            layers,
        });
        Ok(())
    }

    fn layers_from_manifest(
        &self,
        manifest: &Manifest,
        config: &ImageConfig,
    ) -> Result<Vec<FoundLayer>, ReaderError> {
        if manifest.layers.len() != config.rootfs.diff_ids.len() {
            return Err(ReaderError::Invalid {
                path: self.path.clone(),
                message: format!(
                    "manifest lists {} layers but its config {} has {} diff_ids",
                    manifest.layers.len(),
                    manifest.config.digest,
                    config.rootfs.diff_ids.len()
                ),
            });
        }
        Ok(manifest
            .layers
            .iter()
            .zip(&config.rootfs.diff_ids)
            .map(|(descriptor, diff_id)| FoundLayer {
                name: descriptor.digest.blob_path(),
                media_type: Some(descriptor.media_type.clone()),
                expected: Some((descriptor.digest, descriptor.size)),
                diff_id: *diff_id,
            })
            .collect())
    }

    fn collect_docker_entry(
        &self,
        entry: DockerArchiveEntry,
        images: &mut Vec<FoundImage>,
    ) -> Result<(), ReaderError> {
        let config_bytes = self.read_document(&entry.config)?;
        let config_digest = Digest::of(&config_bytes);
        let mut names = ImageNames::default();
        for tag in &entry.repo_tags {
            names.add_reference(tag);
        }
        if let Some(existing) = images
            .iter_mut()
            .find(|image| image.config_digest == config_digest)
        {
            // The same image, also listed in index.json: it only adds names.
            existing.names.merge(names);
            return Ok(());
        }
        let config: ImageConfig = self.parse(&config_bytes, &entry.config, "image config")?;
        if entry.layers.len() != config.rootfs.diff_ids.len() {
            return Err(ReaderError::Invalid {
                path: self.path.clone(),
                message: format!(
                    "{DOCKER_MANIFEST_FILE} lists {} layers for {} but the config has {} diff_ids",
                    entry.layers.len(),
                    entry.config,
                    config.rootfs.diff_ids.len()
                ),
            });
        }
        let layers = entry
            .layers
            .iter()
            .zip(&config.rootfs.diff_ids)
            .map(|(name, diff_id)| FoundLayer {
                name: name.clone(),
                media_type: None,
                expected: None,
                diff_id: *diff_id,
            })
            .collect();
        images.push(FoundImage {
            names,
            manifest: None,
            config_digest,
            config_size: config_bytes.len() as u64,
            config,
            layers,
        });
        Ok(())
    }

    /// Open a layer's stored bytes (compressed or not), with the size stored.
    pub fn open_layer(
        &self,
        layer: &FoundLayer,
    ) -> Result<(Box<dyn Read + Send + '_>, u64), ReaderError> {
        let (reader, size) = self.open_file(&layer.name)?;
        if let Some((digest, expected)) = layer.expected
            && size != expected
        {
            return Err(ReaderError::Mismatch {
                path: self.path.clone(),
                digest,
                what: format!("{size} bytes stored, descriptor says {expected}"),
            });
        }
        Ok((reader, size))
    }
}

/// Where a walk over a source's indexes has been.
#[derive(Default)]
struct Walk {
    images: Vec<FoundImage>,
    /// Descriptors already followed: the image they became, if any.
    seen: HashMap<Digest, Option<usize>>,
    descriptors: usize,
}

impl Walk {
    fn count(&mut self, source: &ImageReader) -> Result<(), ReaderError> {
        self.descriptors += 1;
        if self.descriptors > MAX_DESCRIPTORS {
            return Err(ReaderError::Invalid {
                path: source.path.clone(),
                message: format!("it lists more than {MAX_DESCRIPTORS} manifests and indexes"),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_stay_inside() {
        assert_eq!(
            normalise_entry_name("./blobs/sha256/x").as_deref(),
            Some("blobs/sha256/x")
        );
        assert_eq!(normalise_entry_name("a//b/").as_deref(), Some("a/b"));
        assert_eq!(normalise_entry_name("/etc/passwd"), None);
        assert_eq!(normalise_entry_name("a/../../b"), None);
        assert_eq!(
            resolve_relative("abc", "../def/layer.tar").as_deref(),
            Some("def/layer.tar")
        );
        assert_eq!(resolve_relative("abc", "../../etc/passwd"), None);
        assert_eq!(resolve_relative("abc", "/x").as_deref(), Some("x"));
    }

    const LAYOUT_FILE: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

    fn tar_with(
        entries: &[(&str, tar::EntryType, &[u8], Option<&str>)],
    ) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut builder = tar::Builder::new(file.reopen().unwrap());
        for (name, kind, content, link) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            {
                let gnu = header.as_gnu_mut().unwrap();
                gnu.name[..name.len()].copy_from_slice(name.as_bytes());
                if let Some(link) = link {
                    gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
                }
            }
            header.set_cksum();
            builder.append(&header, *content).unwrap();
        }
        builder.into_inner().unwrap();
        file
    }

    #[test]
    fn hostile_archives_are_refused() {
        let escaping = tar_with(&[("../evil", tar::EntryType::Regular, b"x", None)]);
        let error = ImageReader::open(escaping.path())
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("entry `../evil` escapes"), "{error}");

        let link_out = tar_with(&[(
            "manifest.json",
            tar::EntryType::Symlink,
            b"",
            Some("../../etc/passwd"),
        )]);
        let source = ImageReader::open(link_out.path()).unwrap();
        let error = source
            .read_document("manifest.json")
            .unwrap_err()
            .to_string();
        assert!(error.contains("escapes"), "{error}");

        let not_image = tar_with(&[("hello.txt", tar::EntryType::Regular, b"hi", None)]);
        let error = ImageReader::open(not_image.path())
            .unwrap()
            .images()
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("is not an image: it has neither `index.json`"),
            "{error}"
        );

        let text = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            text.path(),
            "just some text, certainly not a tar archive\n".repeat(20),
        )
        .unwrap();
        let error = ImageReader::open(text.path()).err().unwrap().to_string();
        assert!(
            error.contains("is not an image: it is neither a folder nor a tar archive"),
            "{error}"
        );
    }

    #[test]
    fn compressed_archives_are_unpacked_within_a_limit() {
        let archive = tempfile::NamedTempFile::new().unwrap();
        let mut encoder =
            flate2::write::GzEncoder::new(archive.reopen().unwrap(), flate2::Compression::new(1));
        std::io::Write::write_all(&mut encoder, &vec![0u8; 4 << 20]).unwrap();
        encoder.finish().unwrap();
        TEST_UNPACK_LIMIT.with(|limit| limit.set(Some(1 << 20)));
        let error = ImageReader::open(archive.path()).err().unwrap().to_string();
        TEST_UNPACK_LIMIT.with(|limit| limit.set(None));
        assert!(
            error.contains("decompresses to more than 1048576 bytes"),
            "{error}"
        );
    }

    #[test]
    fn repeated_manifests_are_one_image_and_counted() {
        let config =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let config_digest = Digest::of(config);
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type::OCI_MANIFEST,
            "config": {"mediaType": media_type::OCI_CONFIG, "digest": config_digest.to_string(), "size": config.len()},
            "layers": [],
        }))
        .unwrap();
        let manifest_digest = Digest::of(&manifest);
        let entry = |name: &str| {
            serde_json::json!({
                "mediaType": media_type::OCI_MANIFEST,
                "digest": manifest_digest.to_string(),
                "size": manifest.len(),
                "annotations": {annotation::CONTAINERD_IMAGE_NAME: name},
            })
        };
        let index = |entries: Vec<serde_json::Value>| {
            serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": entries}))
                .unwrap()
        };
        let blobs = [
            (config_digest.blob_path(), config.to_vec()),
            (manifest_digest.blob_path(), manifest.clone()),
        ];
        let few = index(vec![entry("a:1"), entry("b:2"), entry("a:1")]);
        let mut files: Vec<(&str, tar::EntryType, &[u8], Option<&str>)> = vec![
            ("index.json", tar::EntryType::Regular, &few, None),
            ("oci-layout", tar::EntryType::Regular, LAYOUT_FILE, None),
        ];
        for (name, bytes) in &blobs {
            files.push((name, tar::EntryType::Regular, bytes, None));
        }
        let archive = tar_with(&files);
        let images = ImageReader::open(archive.path()).unwrap().images().unwrap();
        assert_eq!(images.len(), 1);
        assert_eq!(images[0].names.references, ["a:1", "b:2"]);

        let many = index((0..MAX_DESCRIPTORS + 1).map(|_| entry("x:1")).collect());
        files[0] = ("index.json", tar::EntryType::Regular, &many, None);
        let archive = tar_with(&files);
        let error = ImageReader::open(archive.path())
            .unwrap()
            .images()
            .unwrap_err()
            .to_string();
        assert!(error.contains("lists more than 10000 manifests"), "{error}");
    }

    #[test]
    fn manifest_paths_cannot_escape() {
        let manifest = br#"[{"Config":"../../etc/passwd","RepoTags":["x:1"],"Layers":[]}]"#;
        let archive = tar_with(&[("manifest.json", tar::EntryType::Regular, manifest, None)]);
        let error = ImageReader::open(archive.path())
            .unwrap()
            .images()
            .unwrap_err()
            .to_string();
        assert!(error.contains("`../../etc/passwd` escapes"), "{error}");
    }

    #[test]
    fn descriptors_are_verified() {
        let config =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let lying = Descriptor::new(
            media_type::OCI_CONFIG,
            Digest::of(b"something else"),
            config.len() as u64,
        );
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": media_type::OCI_MANIFEST,
                "digest": Digest::of(b"manifest").to_string(),
                "size": 8,
            }]
        });
        let index = serde_json::to_vec(&index).unwrap();
        let blob_name = Digest::of(b"manifest").blob_path();
        let archive = tar_with(&[
            ("index.json", tar::EntryType::Regular, &index, None),
            ("oci-layout", tar::EntryType::Regular, LAYOUT_FILE, None),
            (&blob_name, tar::EntryType::Regular, b"manifesX", None),
        ]);
        let source = ImageReader::open(archive.path()).unwrap();
        let error = source.images().unwrap_err().to_string();
        assert!(
            error.contains("does not match its descriptor: its content hashes to"),
            "{error}"
        );
        let error = source.read_blob(&lying).unwrap_err().to_string();
        assert!(error.contains("is missing"), "{error}");
    }

    /// A one-image layout (index.json, oci-layout, manifest, config, no layers) whose
    /// documents `change` may rewrite: (name, bytes) pairs.
    fn small_layout(
        change: impl Fn(&mut serde_json::Value, &mut serde_json::Value),
    ) -> Vec<(String, Vec<u8>)> {
        let config =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let mut manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type::OCI_MANIFEST,
            "config": {"mediaType": media_type::OCI_CONFIG, "digest": Digest::of(config).to_string(), "size": config.len()},
            "layers": [],
        });
        let mut index = serde_json::json!({"schemaVersion": 2, "manifests": []});
        change(&mut index, &mut manifest);
        let manifest = serde_json::to_vec(&manifest).unwrap();
        if index["manifests"].as_array().is_some_and(Vec::is_empty) {
            index["manifests"] = serde_json::json!([{
                "mediaType": media_type::OCI_MANIFEST,
                "digest": Digest::of(&manifest).to_string(),
                "size": manifest.len(),
            }]);
        }
        vec![
            ("oci-layout".to_owned(), LAYOUT_FILE.to_vec()),
            ("index.json".to_owned(), serde_json::to_vec(&index).unwrap()),
            (Digest::of(&manifest).blob_path(), manifest),
            (Digest::of(config).blob_path(), config.to_vec()),
        ]
    }

    fn images_error(files: &[(String, Vec<u8>)]) -> String {
        let entries: Vec<(&str, tar::EntryType, &[u8], Option<&str>)> = files
            .iter()
            .map(|(name, bytes)| (name.as_str(), tar::EntryType::Regular, &bytes[..], None))
            .collect();
        let archive = tar_with(&entries);
        ImageReader::open(archive.path())
            .and_then(|source| source.images())
            .expect_err("the archive is refused")
            .to_string()
    }

    #[test]
    fn small_layout_is_read() {
        let files = small_layout(|_, _| {});
        let entries: Vec<(&str, tar::EntryType, &[u8], Option<&str>)> = files
            .iter()
            .map(|(name, bytes)| (name.as_str(), tar::EntryType::Regular, &bytes[..], None))
            .collect();
        let archive = tar_with(&entries);
        let images = ImageReader::open(archive.path()).unwrap().images().unwrap();
        assert_eq!(images.len(), 1);
    }

    /// Two `index.json` entries: `tar x` and Docker take the last, skopeo the first; kiln
    /// took the last silently.
    #[test]
    fn archive_with_duplicate_entries_is_refused() {
        let mut files = small_layout(|_, _| {});
        files.push((
            "index.json".to_owned(),
            br#"{"schemaVersion":2,"manifests":[]}"#.to_vec(),
        ));
        let error = images_error(&files);
        assert!(
            error.contains("`index.json` is in the archive more than once"),
            "{error}"
        );
        // A folder listed twice is harmless.
        let archive = tar_with(&[
            ("blobs", tar::EntryType::Directory, b"", None),
            ("blobs", tar::EntryType::Directory, b"", None),
            ("hello", tar::EntryType::Regular, b"hi", None),
        ]);
        assert!(ImageReader::open(archive.path()).is_ok());
    }

    /// `blobs` as a symlink to /tmp with blobs "inside" it: kiln read them from the archive,
    /// while `tar x` would write them into /tmp.
    #[test]
    fn archive_entry_under_a_symlink_is_refused() {
        let archive = tar_with(&[
            ("blobs", tar::EntryType::Symlink, b"", Some("/tmp")),
            ("blobs/sha256/x", tar::EntryType::Regular, b"x", None),
        ]);
        let error = ImageReader::open(archive.path()).err().unwrap().to_string();
        assert!(
            error.contains("entry `blobs/sha256/x` lies under `blobs`, which is a symlink"),
            "{error}"
        );
        let archive = tar_with(&[
            ("index.json", tar::EntryType::Regular, b"{}", None),
            ("index.json/x", tar::EntryType::Regular, b"x", None),
        ]);
        let error = ImageReader::open(archive.path()).err().unwrap().to_string();
        assert!(error.contains("which is a file"), "{error}");
    }

    /// kiln never read `oci-layout`: a layout of another version was read as 1.0.0.
    #[test]
    fn layout_file_must_be_there_and_of_version_1_0_0() {
        let mut files = small_layout(|_, _| {});
        files[0].1 = br#"{"imageLayoutVersion":"2.0.0"}"#.to_vec();
        let error = images_error(&files);
        assert!(
            error.contains("`oci-layout` says imageLayoutVersion 2.0.0"),
            "{error}"
        );
        files[0].1 = b"layout".to_vec();
        let error = images_error(&files);
        assert!(
            error.contains("`oci-layout` is not a valid OCI layout file"),
            "{error}"
        );
        files.remove(0);
        let error = images_error(&files);
        assert!(error.contains("`oci-layout` is missing"), "{error}");
    }

    /// An index or manifest of schema version 3 (or 1) was read as if it were 2.
    #[test]
    fn documents_of_another_schema_version_are_refused() {
        let error = images_error(&small_layout(|index, _| index["schemaVersion"] = 3.into()));
        assert!(
            error.contains("`index.json` has schemaVersion 3; kiln reads schema version 2"),
            "{error}"
        );
        let error = images_error(&small_layout(|_, manifest| {
            manifest["schemaVersion"] = 1.into();
        }));
        assert!(error.contains("has schemaVersion 1"), "{error}");
    }

    /// An image manifest listed as an index read as an empty index: no image, no error.
    #[test]
    fn document_whose_media_type_disagrees_with_its_descriptor_is_refused() {
        let error = images_error(&small_layout(|_, manifest| {
            manifest["mediaType"] = media_type::OCI_INDEX.into();
        }));
        assert!(
            error.contains(&format!(
                "says its media type is {}, but the descriptor naming it says {}",
                media_type::OCI_INDEX,
                media_type::OCI_MANIFEST
            )),
            "{error}"
        );
    }

    /// A link loop in a layout folder was reported as "cannot read <layout>", naming no file.
    #[test]
    fn layout_link_loop_names_the_entry() {
        let folder = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("loop.json", folder.path().join("index.json")).unwrap();
        std::os::unix::fs::symlink("index.json", folder.path().join("loop.json")).unwrap();
        let source = ImageReader::open(folder.path()).unwrap();
        let error = source.read_document("index.json").unwrap_err();
        let text = format!("{error}: {}", std::error::Error::source(&error).unwrap());
        assert!(
            text.contains("cannot read `index.json` in") && text.contains("symbolic links"),
            "{text}"
        );
    }
}
