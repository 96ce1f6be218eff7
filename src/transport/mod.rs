//! Images in transit between the places they live, named as skopeo names them:
//! `docker-archive:PATH`, `oci:DIR[:REF]`, `oci-archive:PATH` and `docker://REF`.
//!
//! Every copy preserves digests: manifests and indexes move as their exact bytes, blobs as
//! their stored bytes, each checked against its descriptor on the way (a local source by
//! [`ImageReader`](crate::oci::reader::ImageReader), a registry by
//! [`VerifiedBlob`](crate::registry::client::VerifiedBlob), a local destination by hashing
//! what it writes). The one exception is a docker-archive of the older form (Docker before 25,
//! podman, skopeo), which holds no manifest: kiln writes the Docker schema 2 manifest such an
//! archive implies (config and layers as stored, uncompressed layers typed
//! `…rootfs.diff.tar`), as skopeo does when it pushes one.

use std::collections::BTreeSet;
use std::fmt;
use std::io::Read;
use std::path::PathBuf;
use std::str::FromStr;

use crate::diagnostic::Hint;
use crate::oci::digest::Digest;
use crate::oci::layout::LayoutEntry;
use crate::oci::reader::{ImageNames, ReaderError};
use crate::oci::reference::{Reference, ReferenceError};
use crate::oci::spec::{Descriptor, Index, Manifest, Platform, media_type};
use crate::registry::client::{ClientOptions, RegistryError};

pub mod compress;
mod copy;
mod local;
mod remote;

pub use copy::{write_archive, write_layout};
pub use local::LocalSource;
pub use remote::RemoteSource;

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
    #[error("`{0}` is not an image location")]
    UnknownTransport(String),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Source(#[from] ReaderError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{location} holds no image")]
    Empty { location: String },
    #[error("{location} holds {count} images ({names}); say which")]
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
    #[error(transparent)]
    Path(#[from] crate::diagnostic::PathError),
    #[error(transparent)]
    Layout(#[from] crate::oci::layout::LayoutError),
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
}

impl Hint for TransportError {
    fn hint(&self) -> Option<String> {
        match self {
            TransportError::Registry(inner) => inner.hint(),
            TransportError::Layout(inner) => inner.hint(),
            TransportError::Output(inner) => inner.hint(),
            TransportError::UnknownTransport(_) => Some(
                "use docker-archive:PATH, oci:DIR[:REF], oci-archive:PATH or docker://REF"
                    .to_owned(),
            ),
            TransportError::Ambiguous { hint, .. } => Some(hint.clone()),
            _ => None,
        }
    }
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

impl ImageGraph {
    /// This graph with the documents and blobs of those `referrers` whose subject is one of
    /// its documents, for a layout or archive, which stores them beside the image without
    /// listing them (see `oci::layout`). The root, names and images stay this graph's, so
    /// `index.json` and `manifest.json` name the image alone; the root stays the last
    /// document.
    pub fn with_referrers(&self, referrers: &[ImageGraph]) -> ImageGraph {
        let mut graph = self.clone();
        let is_subject = |digest: &Digest| {
            self.documents
                .iter()
                .any(|(descriptor, _)| &descriptor.digest == digest)
        };
        for referrer in referrers {
            let subject = referrer.documents.last().and_then(|(descriptor, bytes)| {
                crate::oci::layout::referrer_descriptor(descriptor.digest, bytes)
            });
            if !subject.is_some_and(|(subject, _)| is_subject(&subject)) {
                continue;
            }
            for blob in &referrer.blobs {
                if !graph.blobs.iter().any(|known| known.digest == blob.digest) {
                    graph.blobs.push(blob.clone());
                }
            }
            for document in &referrer.documents {
                if !graph
                    .documents
                    .iter()
                    .any(|(known, _)| known.digest == document.0.digest)
                {
                    let before_root = graph.documents.len().saturating_sub(1);
                    graph.documents.insert(before_root, document.clone());
                }
            }
        }
        graph
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
    if depth > MAX_DEPTH || seen.len() > crate::oci::reader::MAX_DESCRIPTORS {
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

/// Check a document's bytes against its descriptor: size, then digest.
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

/// An image opened where it lives, ready to copy: where its blobs come from, everything
/// reachable from its root, and the referrers (SBOMs) a layout or archive keeps for it (a
/// registry's own referrers are not read).
pub struct OpenedImage {
    pub source: Box<dyn BlobSource>,
    pub graph: ImageGraph,
    pub referrers: Vec<ImageGraph>,
}

/// Open the image at `location`: a registry's by its reference (named by it), a layout's by
/// its ref, an archive's only one.
pub fn open(location: &Location, options: &ClientOptions) -> Result<OpenedImage, TransportError> {
    let (local, selector) = match location {
        Location::Docker(reference) => {
            let remote = RemoteSource::connect(reference, options)?;
            let root = remote.resolve(reference)?;
            let names = ImageNames {
                references: vec![reference.familiar_tagged()],
                ..ImageNames::default()
            };
            let graph = walk(&remote, root, names)?;
            return Ok(OpenedImage {
                source: Box::new(remote),
                graph,
                referrers: Vec::new(),
            });
        }
        Location::DockerArchive(path) | Location::OciArchive(path) => (path, None),
        Location::Oci(path, selector) => (path, selector.as_deref()),
    };
    open_local(local, location.to_string(), selector)
}

/// Open the image in the layout or archive at `path` (either, told apart by what is there),
/// described as `location` in messages: the one at its top, or the one `selector` names.
pub fn open_local(
    path: &std::path::Path,
    location: String,
    selector: Option<&str>,
) -> Result<OpenedImage, TransportError> {
    let mut local = LocalSource::open(path, location)?;
    let (root, names) = local.select(selector)?;
    let graph = walk(&local, root, names)?;
    let subjects: Vec<Digest> = graph
        .documents
        .iter()
        .map(|(descriptor, _)| descriptor.digest)
        .collect();
    let mut referrers = Vec::new();
    for referrer in local.referrers(&subjects)? {
        referrers.push(walk(&local, referrer, ImageNames::default())?);
    }
    Ok(OpenedImage {
        source: Box::new(local),
        graph,
        referrers,
    })
}

/// What an image's root offers for one platform.
#[derive(Debug)]
pub enum PlatformPick {
    /// The root is an image, not an index: it is what there is.
    Image,
    /// The index's entry for the platform.
    Picked {
        entry: Box<Descriptor>,
        /// The platforms the index lists, for messages (`linux/amd64, linux/arm64`).
        listing: String,
    },
    /// The index has no image for the platform.
    Missing { listing: String },
}

/// The entry of the index at `root` for `platform` (a variant left out matches as containerd
/// does, [`Platform::accepts`]). Every command that needs one platform of an index (a
/// docker-archive, the engine's load, an SBOM, a base image) picks it here and says in its
/// own words what is missing.
pub fn pick_platform(
    source: &dyn BlobSource,
    root: &Descriptor,
    platform: &Platform,
) -> Result<PlatformPick, TransportError> {
    if !media_type::is_index(&root.media_type) {
        return Ok(PlatformPick::Image);
    }
    let bytes = source.read_document(root)?;
    pick_in(&source.describe(), root, &bytes, platform)
}

impl ImageGraph {
    /// [`pick_platform`] for the graph's root, from the bytes already read.
    pub fn pick_platform(
        &self,
        location: &str,
        platform: &Platform,
    ) -> Result<PlatformPick, TransportError> {
        match self.documents.last() {
            Some((root, bytes)) if media_type::is_index(&root.media_type) => {
                pick_in(location, root, bytes, platform)
            }
            _ => Ok(PlatformPick::Image),
        }
    }
}

fn pick_in(
    location: &str,
    root: &Descriptor,
    bytes: &[u8],
    platform: &Platform,
) -> Result<PlatformPick, TransportError> {
    let index: Index = serde_json::from_slice(bytes).map_err(|error| TransportError::Json {
        location: location.to_owned(),
        what: "image index",
        digest: root.digest,
        source: error,
    })?;
    let listing = index.platforms_listing();
    Ok(match index.manifest_for(platform) {
        Some(entry) => PlatformPick::Picked {
            entry: Box::new(entry.clone()),
            listing,
        },
        None => PlatformPick::Missing { listing },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

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
            Ok(Box::new(std::io::Cursor::new(
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

    /// One rule picks a platform for push to a docker-archive, load, sbom and base images:
    /// an image root is taken as it is, a variant left out matches, a missing platform
    /// lists what there is.
    #[test]
    fn platforms_are_picked_from_an_index() {
        let entry = |architecture: &str, variant: Option<&str>| {
            let mut platform = serde_json::json!({"os": "linux", "architecture": architecture});
            if let Some(variant) = variant {
                platform["variant"] = variant.into();
            }
            serde_json::json!({
                "mediaType": media_type::OCI_MANIFEST,
                "digest": Digest::of(architecture.as_bytes()).to_string(),
                "size": 1,
                "platform": platform,
            })
        };
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type::OCI_INDEX,
            "manifests": [entry("amd64", None), entry("arm64", Some("v8"))],
        });
        let bytes = serde_json::to_vec(&index).unwrap();
        let root = Descriptor::new(
            media_type::OCI_INDEX,
            Digest::of(&bytes),
            bytes.len() as u64,
        );
        let source = Documents(HashMap::from([(root.digest, bytes)]));
        let pick = |platform: &str| pick_platform(&source, &root, &platform.parse().unwrap());
        match pick("linux/arm64").unwrap() {
            PlatformPick::Picked { entry, listing } => {
                assert_eq!(entry.digest, Digest::of(b"arm64"));
                assert_eq!(listing, "linux/amd64, linux/arm64/v8");
            }
            other => panic!("{other:?}"),
        }
        match pick("linux/s390x").unwrap() {
            PlatformPick::Missing { listing } => {
                assert_eq!(listing, "linux/amd64, linux/arm64/v8")
            }
            other => panic!("{other:?}"),
        }
        let image = Descriptor::new(media_type::OCI_MANIFEST, Digest::of(b"x"), 1);
        assert!(matches!(
            pick_platform(&source, &image, &"linux/amd64".parse().unwrap()).unwrap(),
            PlatformPick::Image
        ));
    }
}
