//! Images in transit between the places they live, named as skopeo names them:
//! `docker-archive:PATH`, `oci:DIR[:REF]`, `oci-archive:PATH` and `docker://REF`.
//!
//! Every copy preserves digests: manifests and indexes move as their exact bytes, blobs as
//! their stored bytes, each checked against its descriptor on the way (a local source by
//! [`ImageSource`], a registry by
//! [`VerifiedBlob`](crate::registry::client::VerifiedBlob), a local destination by hashing
//! what it writes). The one exception is a docker-archive of the older form (Docker before 25,
//! podman, skopeo), which holds no manifest: kiln writes the Docker schema 2 manifest such an
//! archive implies (config and layers as stored, uncompressed layers typed
//! `…rootfs.diff.tar`), as skopeo does when it pushes one.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::oci::archive::{ArchiveKind, ArchiveWriter};
use crate::oci::compression::Decompressor;
use crate::oci::digest::{Digest, HashingWriter};
use crate::oci::image::BlobSink;
use crate::oci::json::to_canonical_vec;
use crate::oci::layout::{LayoutEntry, LayoutWriter, is_artifact_entry};
use crate::oci::reference::{Reference, ReferenceError};
use crate::oci::source::{DOCUMENT_LIMIT, ImageNames, ImageSource, SourceError};
use crate::oci::spec::{Descriptor, Index, Manifest, media_type};
use crate::registry::client::{ClientOptions, MANIFEST_LIMIT, Registry, RegistryError};

/// Where an image is, in skopeo's transport syntax.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A docker-archive tar (`docker save`, kiln's `result`).
    DockerArchive(PathBuf),
    /// An OCI layout folder, and the ref name of one image in it.
    Oci(PathBuf, Option<String>),
    /// An OCI layout in a tar.
    OciArchive(PathBuf),
    /// A registry.
    Docker(Reference),
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error(
        "`{0}` is not an image location\nhint: use docker-archive:PATH, oci:DIR[:REF], oci-archive:PATH or docker://REF"
    )]
    UnknownTransport(String),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{location} holds no image")]
    Empty { location: String },
    #[error("{location} holds {count} images ({names}); say which\nhint: {hint}")]
    Ambiguous {
        location: String,
        count: usize,
        names: String,
        hint: String,
    },
    #[error("{location} has no image named `{name}` (it has: {names})")]
    NoSuchImage {
        location: String,
        name: String,
        names: String,
    },
    #[error("{location}: {what} {digest} does not match its descriptor: {detail}")]
    Mismatch {
        location: String,
        what: String,
        digest: Digest,
        detail: String,
    },
    #[error("{location}: `{digest}` is not valid JSON for a {what}: {source}")]
    Json {
        location: String,
        what: &'static str,
        digest: Digest,
        #[source]
        source: serde_json::Error,
    },
    #[error("{location}: {message}")]
    Invalid { location: String, message: String },
    #[error("cannot write {}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Layout(#[from] crate::oci::layout::LayoutError),
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
}

impl FromStr for Location {
    type Err = TransportError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let unknown = || TransportError::UnknownTransport(text.to_owned());
        let (transport, rest) = text.split_once(':').ok_or_else(unknown)?;
        if rest.is_empty() {
            return Err(unknown());
        }
        match transport {
            "docker-archive" => Ok(Location::DockerArchive(PathBuf::from(rest))),
            "oci-archive" => Ok(Location::OciArchive(PathBuf::from(rest))),
            "oci" => {
                // `oci:DIR:REF`: the ref follows the last `:` when what follows it has no `/`.
                match rest.rsplit_once(':') {
                    Some((folder, reference))
                        if !folder.is_empty()
                            && !reference.is_empty()
                            && !reference.contains('/') =>
                    {
                        Ok(Location::Oci(
                            PathBuf::from(folder),
                            Some(reference.to_owned()),
                        ))
                    }
                    _ => Ok(Location::Oci(PathBuf::from(rest), None)),
                }
            }
            "docker" => {
                let reference = rest.strip_prefix("//").ok_or_else(unknown)?;
                Ok(Location::Docker(reference.parse()?))
            }
            _ => Err(unknown()),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::DockerArchive(path) => write!(formatter, "docker-archive:{}", path.display()),
            Location::Oci(path, None) => write!(formatter, "oci:{}", path.display()),
            Location::Oci(path, Some(reference)) => {
                write!(formatter, "oci:{}:{reference}", path.display())
            }
            Location::OciArchive(path) => write!(formatter, "oci-archive:{}", path.display()),
            Location::Docker(reference) => write!(formatter, "docker://{reference}"),
        }
    }
}

/// Somewhere blobs and documents can be read from.
pub trait BlobSource: Sync {
    fn describe(&self) -> String;

    /// A manifest, index or config: read whole and checked against `descriptor`.
    fn read_document(&self, descriptor: &Descriptor) -> Result<Vec<u8>, TransportError>;

    /// A blob's stored bytes, as a stream of `descriptor.size` bytes. Whoever reads it checks
    /// the digest (a registry does on upload; local writers hash what they write).
    fn open_blob(
        &self,
        descriptor: &Descriptor,
    ) -> Result<Box<dyn Read + Send + '_>, TransportError>;

    /// The registry and repository the blobs are in, for cross-repository mounts.
    fn registry_repository(&self) -> Option<(&str, &str)> {
        None
    }
}

/// An image (or index of images) to copy: everything reachable from its root.
#[derive(Clone, Debug)]
pub struct ImageGraph {
    pub root: Descriptor,
    /// The names the source gives it.
    pub names: ImageNames,
    /// Indexes and manifests with their exact bytes, children before their parents, the root
    /// last.
    pub documents: Vec<(Descriptor, Vec<u8>)>,
    /// Configs and layers, each once.
    pub blobs: Vec<Descriptor>,
    /// The config and layer digests of each image manifest.
    pub images: Vec<(Digest, Vec<Digest>)>,
}

impl ImageGraph {
    pub fn total_blob_bytes(&self) -> u64 {
        self.blobs.iter().map(|blob| blob.size).sum()
    }

    /// The layout entry for this graph under `name` or a bare `ref_name`.
    pub fn layout_entry(&self, name: Option<Reference>, ref_name: Option<String>) -> LayoutEntry {
        LayoutEntry {
            descriptor: self.root.clone(),
            name,
            ref_name,
            images: self.images.clone(),
            platform_tags: Vec::new(),
        }
    }
}

/// Walk everything reachable from `root`.
pub fn walk(
    source: &dyn BlobSource,
    root: Descriptor,
    names: ImageNames,
) -> Result<ImageGraph, TransportError> {
    let mut graph = ImageGraph {
        root: root.clone(),
        names,
        documents: Vec::new(),
        blobs: Vec::new(),
        images: Vec::new(),
    };
    let mut seen = BTreeSet::new();
    visit(source, &root, 0, &mut seen, &mut graph)?;
    Ok(graph)
}

const MAX_DEPTH: usize = 8;

fn visit(
    source: &dyn BlobSource,
    descriptor: &Descriptor,
    depth: usize,
    seen: &mut BTreeSet<Digest>,
    graph: &mut ImageGraph,
) -> Result<(), TransportError> {
    if !seen.insert(descriptor.digest) {
        return Ok(());
    }
    if depth > MAX_DEPTH || seen.len() > crate::oci::source::MAX_DESCRIPTORS {
        return Err(TransportError::Invalid {
            location: source.describe(),
            message: format!(
                "the image's indexes nest too deep or list too much ({})",
                descriptor.digest
            ),
        });
    }
    let bytes = source.read_document(descriptor)?;
    let json_error = |what, source_error| TransportError::Json {
        location: source.describe(),
        what,
        digest: descriptor.digest,
        source: source_error,
    };
    // Another schema version is another format, and a document of another media type than
    // its descriptor says would be read as the wrong thing (an image as an empty index).
    let check = |schema_version: u32, document_type: Option<&str>| {
        let invalid = |message: String| TransportError::Invalid {
            location: source.describe(),
            message,
        };
        if schema_version != 2 {
            return Err(invalid(format!(
                "{} has schemaVersion {schema_version}; kiln reads schema version 2",
                descriptor.digest
            )));
        }
        match document_type {
            Some(document_type) if document_type != descriptor.media_type => Err(invalid(format!(
                "{} says its media type is {document_type}, but the descriptor naming it says {}",
                descriptor.digest, descriptor.media_type
            ))),
            _ => Ok(()),
        }
    };
    if media_type::is_index(&descriptor.media_type) {
        let index: Index =
            serde_json::from_slice(&bytes).map_err(|error| json_error("image index", error))?;
        check(index.schema_version, index.media_type.as_deref())?;
        for child in &index.manifests {
            visit(source, child, depth + 1, seen, graph)?;
        }
    } else if media_type::is_manifest(&descriptor.media_type) {
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|error| json_error("image manifest", error))?;
        check(manifest.schema_version, manifest.media_type.as_deref())?;
        let add = |blob: &Descriptor, graph: &mut ImageGraph| {
            if !graph.blobs.iter().any(|known| known.digest == blob.digest) {
                graph.blobs.push(blob.clone());
            }
        };
        add(&manifest.config, graph);
        for layer in &manifest.layers {
            add(layer, graph);
        }
        graph.images.push((
            manifest.config.digest,
            manifest.layers.iter().map(|layer| layer.digest).collect(),
        ));
    } else {
        return Err(TransportError::Invalid {
            location: source.describe(),
            message: format!(
                "{} has media type `{}`, neither a manifest nor an index",
                descriptor.digest, descriptor.media_type
            ),
        });
    }
    graph.documents.push((descriptor.clone(), bytes));
    Ok(())
}

/// An image folder or archive as a blob source.
pub struct LocalSource {
    pub source: ImageSource,
    location: String,
    /// Documents kiln wrote for an older docker-archive, by digest.
    synthesized: HashMap<Digest, Vec<u8>>,
    /// Files holding blobs that are not at `blobs/sha256/<hex>`, by digest.
    files: HashMap<Digest, String>,
}

impl LocalSource {
    pub fn open(path: &Path, location: String) -> Result<Self, TransportError> {
        Ok(LocalSource {
            source: ImageSource::open(path)?,
            location,
            synthesized: HashMap::new(),
            files: HashMap::new(),
        })
    }

    /// The images at the top of the source: `index.json`'s entries, or for an older
    /// docker-archive, one synthesized manifest per `manifest.json` entry. Artifacts kiln
    /// stores beside the images (an SBOM) are referrers, not images, and are left out; see
    /// [`LocalSource::referrers`].
    pub fn roots(&mut self) -> Result<Vec<(Descriptor, ImageNames)>, TransportError> {
        if let Some(mut entries) = self.source.index_entries()? {
            entries.retain(|(descriptor, _)| !is_artifact_entry(descriptor));
            return Ok(entries);
        }
        let mut roots = Vec::new();
        for entry in self.source.docker_entries()? {
            let config = self.source.read_document(&entry.config)?;
            let config_digest = Digest::of(&config);
            let mut layers = Vec::new();
            for layer in &entry.layers {
                let (mut reader, size) = self.source.open_file(layer)?;
                let mut head = [0u8; 4];
                let mut hashing = HashingWriter::new(io::sink());
                let mut first = true;
                let mut buffer = vec![0u8; 256 * 1024];
                loop {
                    let read =
                        reader
                            .read(&mut buffer)
                            .map_err(|source| SourceError::ReadEntry {
                                path: self.source.path().to_owned(),
                                entry: layer.clone(),
                                source,
                            })?;
                    if read == 0 {
                        break;
                    }
                    if first {
                        let take = read.min(4);
                        head[..take].copy_from_slice(&buffer[..take]);
                        first = false;
                    }
                    hashing.write_all(&buffer[..read]).map_err(|source| {
                        SourceError::ReadEntry {
                            path: self.source.path().to_owned(),
                            entry: layer.clone(),
                            source,
                        }
                    })?;
                }
                let (_, digest, written) = hashing.finish();
                if written != size {
                    return Err(SourceError::Truncated {
                        path: self.source.path().to_owned(),
                        entry: layer.clone(),
                        size,
                    }
                    .into());
                }
                let compressed = Decompressor::new(&head[..])
                    .map(|decompressor| {
                        decompressor.compression() != crate::oci::compression::Compression::None
                    })
                    .unwrap_or(false);
                let layer_type = if compressed {
                    media_type::DOCKER_LAYER_GZIP
                } else {
                    media_type::DOCKER_LAYER_TAR
                };
                self.files.insert(digest, layer.clone());
                layers.push(Descriptor::new(layer_type, digest, size));
            }
            self.files.insert(config_digest, entry.config.clone());
            let manifest = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": media_type::DOCKER_MANIFEST,
                "config": Descriptor::new(media_type::DOCKER_CONFIG, config_digest, config.len() as u64),
                "layers": layers,
            });
            let bytes = to_canonical_vec(&manifest).map_err(|error| TransportError::Invalid {
                location: self.location.clone(),
                message: error.to_string(),
            })?;
            let descriptor = Descriptor::new(
                media_type::DOCKER_MANIFEST,
                Digest::of(&bytes),
                bytes.len() as u64,
            );
            self.synthesized.insert(descriptor.digest, bytes);
            let names = ImageNames {
                references: entry.repo_tags.clone(),
                ..ImageNames::default()
            };
            roots.push((descriptor, names));
        }
        Ok(roots)
    }

    /// The one image at the top, or the one whose name or ref name is `selector`. Artifacts
    /// stored beside the images (an SBOM) are not candidates.
    pub fn select(
        &mut self,
        selector: Option<&str>,
    ) -> Result<(Descriptor, ImageNames), TransportError> {
        let roots = self.roots()?;
        let label = |names: &ImageNames, descriptor: &Descriptor| {
            names
                .references
                .first()
                .or(names.ref_names.first())
                .cloned()
                .unwrap_or_else(|| descriptor.digest.to_string())
        };
        let all_names = || {
            roots
                .iter()
                .map(|(descriptor, names)| label(names, descriptor))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match selector {
            None => match roots.len() {
                0 => Err(TransportError::Empty {
                    location: self.location.clone(),
                }),
                1 => Ok(roots.into_iter().next().expect("one root")),
                count => Err(TransportError::Ambiguous {
                    location: self.location.clone(),
                    count,
                    names: all_names(),
                    hint: "name one, as oci:DIR:REF".to_owned(),
                }),
            },
            Some(wanted) => {
                let familiar = wanted
                    .parse::<Reference>()
                    .map(|reference| reference.familiar_tagged())
                    .ok();
                let found = roots.iter().find(|(descriptor, names)| {
                    names.ref_names.iter().any(|name| name == wanted)
                        || names
                            .references
                            .iter()
                            .any(|name| Some(name) == familiar.as_ref() || name == wanted)
                        || names
                            .references
                            .iter()
                            .any(|name| name.rsplit_once(':').is_some_and(|(_, tag)| tag == wanted))
                        || descriptor.digest.to_string() == wanted
                });
                found.cloned().ok_or_else(|| TransportError::NoSuchImage {
                    location: self.location.clone(),
                    name: wanted.to_owned(),
                    names: all_names(),
                })
            }
        }
    }
}

impl LocalSource {
    /// The referrers the layout holds for `subjects`: the top entries of `index.json` that are
    /// manifests naming one of `subjects` as their `subject`, as `index.json` lists them
    /// (with `artifactType` and annotations). A docker-archive without `index.json` has none.
    pub fn referrers(&self, subjects: &[Digest]) -> Result<Vec<Descriptor>, TransportError> {
        let Some(entries) = self.source.index_entries()? else {
            return Ok(Vec::new());
        };
        let mut referrers = Vec::new();
        for (descriptor, _) in entries {
            if !media_type::is_manifest(&descriptor.media_type)
                || subjects.contains(&descriptor.digest)
            {
                continue;
            }
            let bytes = self.read_document(&descriptor)?;
            let manifest: Manifest =
                serde_json::from_slice(&bytes).map_err(|source| TransportError::Json {
                    location: self.location.clone(),
                    what: "manifest",
                    digest: descriptor.digest,
                    source,
                })?;
            if manifest
                .subject
                .is_some_and(|subject| subjects.contains(&subject.digest))
            {
                referrers.push(descriptor);
            }
        }
        Ok(referrers)
    }
}

impl BlobSource for LocalSource {
    fn describe(&self) -> String {
        self.location.clone()
    }

    fn read_document(&self, descriptor: &Descriptor) -> Result<Vec<u8>, TransportError> {
        if let Some(bytes) = self.synthesized.get(&descriptor.digest) {
            return Ok(bytes.clone());
        }
        if let Some(name) = self.files.get(&descriptor.digest) {
            let bytes = self.source.read_document(name)?;
            check(&self.location, "blob", descriptor, &bytes)?;
            return Ok(bytes);
        }
        Ok(self.source.read_blob(descriptor)?)
    }

    fn open_blob(
        &self,
        descriptor: &Descriptor,
    ) -> Result<Box<dyn Read + Send + '_>, TransportError> {
        let name = self
            .files
            .get(&descriptor.digest)
            .cloned()
            .unwrap_or_else(|| descriptor.digest.blob_path());
        let (reader, size) = self.source.open_file(&name)?;
        if size != descriptor.size {
            return Err(TransportError::Mismatch {
                location: self.location.clone(),
                what: "blob".to_owned(),
                digest: descriptor.digest,
                detail: format!(
                    "{size} bytes stored, the descriptor says {}",
                    descriptor.size
                ),
            });
        }
        Ok(reader)
    }
}

fn check(
    location: &str,
    what: &str,
    descriptor: &Descriptor,
    bytes: &[u8],
) -> Result<(), TransportError> {
    let mismatch = |detail: String| TransportError::Mismatch {
        location: location.to_owned(),
        what: what.to_owned(),
        digest: descriptor.digest,
        detail,
    };
    if bytes.len() as u64 != descriptor.size {
        return Err(mismatch(format!(
            "{} bytes, the descriptor says {}",
            bytes.len(),
            descriptor.size
        )));
    }
    let actual = Digest::of(bytes);
    if actual != descriptor.digest {
        return Err(mismatch(format!("its content hashes to {actual}")));
    }
    Ok(())
}

/// A repository of a registry as a blob source.
pub struct RemoteSource {
    pub registry: Registry,
    pub repository: String,
    location: String,
}

impl RemoteSource {
    pub fn connect(reference: &Reference, options: &ClientOptions) -> Result<Self, TransportError> {
        let registry = Registry::connect(&reference.registry, &reference.repository, options)?;
        Ok(RemoteSource {
            registry,
            repository: reference.repository.clone(),
            location: format!("docker://{}", reference.name()),
        })
    }

    /// The descriptor `reference` names: by digest when it has one, else by tag (`latest`
    /// when it has neither).
    pub fn resolve(&self, reference: &Reference) -> Result<Descriptor, TransportError> {
        let wanted = match (&reference.digest, &reference.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => "latest".to_owned(),
        };
        let fetched = self.registry.get_manifest(&self.repository, &wanted)?;
        Ok(Descriptor::new(
            fetched.media_type,
            fetched.digest,
            fetched.bytes.len() as u64,
        ))
    }
}

impl RemoteSource {
    /// The image manifest `reference` names for `platform`: the reference's own when it names
    /// a manifest, else the matching entry of the index it names.
    pub fn resolve_platform(
        &self,
        reference: &Reference,
        platform: &crate::oci::spec::Platform,
    ) -> Result<Descriptor, TransportError> {
        let root = self.resolve(reference)?;
        if !media_type::is_index(&root.media_type) {
            return Ok(root);
        }
        let bytes = self.read_document(&root)?;
        let index: Index =
            serde_json::from_slice(&bytes).map_err(|source| TransportError::Json {
                location: self.location.clone(),
                what: "image index",
                digest: root.digest,
                source,
            })?;
        index
            .manifest_for(platform)
            .cloned()
            .ok_or_else(|| TransportError::Invalid {
                location: format!("docker://{reference}"),
                message: format!(
                    "it has no {platform} image (it has {})",
                    index.platforms_listing()
                ),
            })
    }
}

impl BlobSource for RemoteSource {
    fn describe(&self) -> String {
        self.location.clone()
    }

    fn read_document(&self, descriptor: &Descriptor) -> Result<Vec<u8>, TransportError> {
        if media_type::is_index(&descriptor.media_type)
            || media_type::is_manifest(&descriptor.media_type)
        {
            let fetched = self
                .registry
                .get_manifest(&self.repository, &descriptor.digest.to_string())?;
            check(&self.location, "manifest", descriptor, &fetched.bytes)?;
            return Ok(fetched.bytes);
        }
        if descriptor.size > DOCUMENT_LIMIT.max(MANIFEST_LIMIT) {
            return Err(TransportError::Invalid {
                location: self.location.clone(),
                message: format!(
                    "{} is {} bytes, more than a JSON document may have",
                    descriptor.digest, descriptor.size
                ),
            });
        }
        let mut bytes = Vec::with_capacity(descriptor.size as usize);
        self.registry
            .open_blob(&self.repository, &descriptor.digest, descriptor.size)?
            .read_to_end(&mut bytes)
            .map_err(|source| TransportError::Invalid {
                location: self.location.clone(),
                message: source.to_string(),
            })?;
        Ok(bytes)
    }

    fn open_blob(
        &self,
        descriptor: &Descriptor,
    ) -> Result<Box<dyn Read + Send + '_>, TransportError> {
        Ok(Box::new(self.registry.open_blob(
            &self.repository,
            &descriptor.digest,
            descriptor.size,
        )?))
    }

    fn registry_repository(&self) -> Option<(&str, &str)> {
        Some((&self.registry.host, &self.repository))
    }
}

/// Copy one blob into a layout or archive, hashing it on the way.
fn copy_blob<S: BlobSink>(
    source: &dyn BlobSource,
    descriptor: &Descriptor,
    sink: &mut S,
    destination: &Path,
) -> Result<(), TransportError> {
    let write_error = |source| TransportError::Write {
        path: destination.to_owned(),
        source,
    };
    let mut reader = source.open_blob(descriptor)?;
    let pending = sink.begin_blob().map_err(write_error)?;
    let mut hashing = HashingWriter::new(pending);
    let copied = io::copy(&mut reader, &mut hashing);
    let (pending, digest, size) = hashing.finish();
    copied.map_err(|error| TransportError::Invalid {
        location: source.describe(),
        message: format!("reading blob {}: {error}", descriptor.digest),
    })?;
    if digest != descriptor.digest || size != descriptor.size {
        return Err(TransportError::Mismatch {
            location: source.describe(),
            what: "blob".to_owned(),
            digest: descriptor.digest,
            detail: format!("{size} bytes hashing to {digest}"),
        });
    }
    sink.commit_blob(pending, &digest, size)
        .map_err(write_error)
}

fn copy_graph<S: BlobSink>(
    source: &dyn BlobSource,
    graph: &ImageGraph,
    sink: &mut S,
    destination: &Path,
) -> Result<(), TransportError> {
    for blob in &graph.blobs {
        copy_blob(source, blob, sink, destination)?;
    }
    for (descriptor, bytes) in &graph.documents {
        sink.put_blob(&descriptor.digest, bytes)
            .map_err(|source| TransportError::Write {
                path: destination.to_owned(),
                source,
            })?;
    }
    Ok(())
}

/// Write `graph` into an OCI layout folder (added to one already there).
pub fn write_layout(
    source: &dyn BlobSource,
    graph: &ImageGraph,
    folder: &Path,
    entry: LayoutEntry,
) -> Result<(), TransportError> {
    let mut layout = LayoutWriter::open(folder)?;
    copy_graph(source, graph, &mut layout, folder)?;
    layout.finish(&[entry])?;
    Ok(())
}

/// Write `graph` into a new archive at `path`, replaced whole only once complete.
pub fn write_archive(
    source: &dyn BlobSource,
    graph: &ImageGraph,
    path: &Path,
    kind: ArchiveKind,
    entry: LayoutEntry,
) -> Result<(), TransportError> {
    let write_error = |source| TransportError::Write {
        path: path.to_owned(),
        source,
    };
    let mut file = crate::output::AtomicFile::create(path)?;
    let handle = file.file().try_clone().map_err(write_error)?;
    let mut archive = ArchiveWriter::to_file(handle, kind, 0).map_err(write_error)?;
    copy_graph(source, graph, &mut archive, path)?;
    if let Some(handle) = archive.finish(&[entry]).map_err(write_error)? {
        handle.sync_all().map_err(write_error)?;
    }
    file.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_like_skopeo() {
        assert_eq!(
            "docker-archive:/tmp/a.tar".parse::<Location>().unwrap(),
            Location::DockerArchive("/tmp/a.tar".into())
        );
        assert_eq!(
            "oci:/tmp/layout:app".parse::<Location>().unwrap(),
            Location::Oci("/tmp/layout".into(), Some("app".into()))
        );
        assert_eq!(
            "oci:layout".parse::<Location>().unwrap(),
            Location::Oci("layout".into(), None)
        );
        assert_eq!(
            "oci-archive:x.tar".parse::<Location>().unwrap(),
            Location::OciArchive("x.tar".into())
        );
        let docker = "docker://localhost:5000/app:1".parse::<Location>().unwrap();
        assert_eq!(docker.to_string(), "docker://localhost:5000/app:1");
        for bad in ["result", "docker:app", "ftp:x", "oci:", "docker://UPPER"] {
            assert!(bad.parse::<Location>().is_err(), "{bad}");
        }
    }

    /// Documents by digest, as a blob source.
    struct Documents(HashMap<Digest, Vec<u8>>);

    impl BlobSource for Documents {
        fn describe(&self) -> String {
            "documents".to_owned()
        }

        fn read_document(&self, descriptor: &Descriptor) -> Result<Vec<u8>, TransportError> {
            Ok(self.0[&descriptor.digest].clone())
        }

        fn open_blob(
            &self,
            descriptor: &Descriptor,
        ) -> Result<Box<dyn Read + Send + '_>, TransportError> {
            Ok(Box::new(io::Cursor::new(
                self.0[&descriptor.digest].clone(),
            )))
        }
    }

    /// A copy walked an index of schema version 3, or an image manifest its descriptor
    /// called an index (read as an empty index: nothing copied, no error).
    #[test]
    fn walk_refuses_other_schema_versions_and_media_types() {
        let walk_error = |document: serde_json::Value, media_type: &str| {
            let bytes = serde_json::to_vec(&document).unwrap();
            let descriptor = Descriptor::new(media_type, Digest::of(&bytes), bytes.len() as u64);
            let source = Documents(HashMap::from([(descriptor.digest, bytes)]));
            walk(&source, descriptor, ImageNames::default())
                .expect_err("the walk is refused")
                .to_string()
        };
        let error = walk_error(
            serde_json::json!({"schemaVersion": 3, "manifests": []}),
            media_type::OCI_INDEX,
        );
        assert!(error.contains("has schemaVersion 3"), "{error}");
        let error = walk_error(
            serde_json::json!({
                "schemaVersion": 2,
                "mediaType": media_type::OCI_MANIFEST,
                "config": {"mediaType": media_type::OCI_CONFIG, "digest": Digest::of(b"").to_string(), "size": 0},
                "layers": [],
            }),
            media_type::OCI_INDEX,
        );
        assert!(
            error.contains(&format!(
                "says its media type is {}, but the descriptor naming it says {}",
                media_type::OCI_MANIFEST,
                media_type::OCI_INDEX
            )),
            "{error}"
        );
    }
}
