//! Assembling an image: layers from file trees, then the config, then the manifest, each
//! handed to a [`BlobSink`] (an OCI layout folder, a tar archive, later a registry).
//!
//! Pinned choices for the documents (all written as canonical JSON, `oci::json`):
//! - OCI media types throughout (`application/vnd.oci.image.manifest.v1+json`, config
//!   `…config.v1+json`, layers by compression); an image never mixes Docker and OCI types.
//! - The config holds `created`, `architecture`, `os`, `variant` when the platform has one,
//!   the container `config` with empty fields omitted, `rootfs` and one `history` entry per
//!   layer carrying `created` and `created_by` (no host paths, no kiln version: those would
//!   make two machines disagree).
//! - The manifest has no annotations; names live in the index and `manifest.json`.

use std::io::{self, Write};

use super::compression::{Compression, compression_threads};
use super::digest::Digest;
use super::json::to_canonical_vec;
use super::layer::{LayerError, LayerOptions, LayerSummary, write_layer};
use super::reference::Reference;
use super::spec::{
    ContainerConfig, Descriptor, History, ImageConfig, Manifest, Platform, RootFs, media_type,
};
use super::tree::FileTree;

/// Where the blobs of an image go.
pub trait BlobSink {
    /// A writer for a blob whose digest is known only once it has been written.
    type Pending: Write;

    fn begin_blob(&mut self) -> io::Result<Self::Pending>;

    /// Keep what `pending` received as the blob `digest` of `size` bytes. A blob the sink
    /// already holds is kept once.
    fn commit_blob(&mut self, pending: Self::Pending, digest: &Digest, size: u64)
    -> io::Result<()>;

    /// Store a small blob held in memory.
    fn put_blob(&mut self, digest: &Digest, bytes: &[u8]) -> io::Result<()>;
}

/// Everything that decides an image's bytes.
#[derive(Clone, Debug)]
pub struct ImageRequest {
    /// The image's name and tag (names do not affect the manifest digest).
    pub reference: Reference,
    pub platform: Platform,
    /// RFC 3339 `created` of the config and its history.
    pub created: String,
    /// The mtime of every layer entry.
    pub mtime: u64,
    pub compression: Compression,
    pub container: ContainerConfig,
    /// One layer per tree, bottom first.
    pub layers: Vec<FileTree>,
    /// The `created_by` of each layer's history entry.
    pub created_by: String,
}

/// An image that has been written to a sink.
#[derive(Clone, Debug)]
pub struct BuiltImage {
    pub reference: Reference,
    pub manifest: Manifest,
    /// The manifest's descriptor, with the platform set (as an index entry wants it).
    pub manifest_descriptor: Descriptor,
    pub config: ImageConfig,
    pub config_descriptor: Descriptor,
    pub layers: Vec<LayerSummary>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error("cannot write the image")]
    Sink(#[source] io::Error),
    #[error("cannot encode the image's {document}")]
    Json {
        document: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// Write every blob of the image described by `request` into `sink`.
pub fn build_image<S: BlobSink>(
    request: &ImageRequest,
    sink: &mut S,
    on_progress: &mut dyn FnMut(u64),
) -> Result<BuiltImage, ImageError> {
    let options = LayerOptions {
        compression: request.compression,
        mtime: request.mtime,
        threads: compression_threads(),
    };
    let mut layers = Vec::with_capacity(request.layers.len());
    for tree in &request.layers {
        let pending = sink.begin_blob().map_err(ImageError::Sink)?;
        let (summary, pending) = write_layer(tree, &options, pending, on_progress)?;
        sink.commit_blob(pending, &summary.digest, summary.size)
            .map_err(ImageError::Sink)?;
        layers.push(summary);
    }

    let history = layers
        .iter()
        .map(|_| History {
            created: Some(request.created.clone()),
            created_by: Some(request.created_by.clone()),
            ..History::default()
        })
        .collect();
    let config = ImageConfig {
        created: Some(request.created.clone()),
        author: None,
        architecture: request.platform.architecture.clone(),
        os: request.platform.os.clone(),
        os_version: request.platform.os_version.clone(),
        os_features: request.platform.os_features.clone(),
        variant: request.platform.variant.clone(),
        config: request.container.clone(),
        rootfs: RootFs {
            kind: "layers".to_owned(),
            diff_ids: layers.iter().map(|layer| layer.diff_id).collect(),
        },
        history,
        extra: Default::default(),
    };
    let config_bytes = to_canonical_vec(&config).map_err(|source| ImageError::Json {
        document: "config",
        source,
    })?;
    let config_descriptor = Descriptor::new(
        media_type::OCI_CONFIG,
        Digest::of(&config_bytes),
        config_bytes.len() as u64,
    );
    sink.put_blob(&config_descriptor.digest, &config_bytes)
        .map_err(ImageError::Sink)?;

    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.to_owned()),
        artifact_type: None,
        config: config_descriptor.clone(),
        layers: layers
            .iter()
            .map(|layer| {
                Descriptor::new(
                    layer.compression.oci_layer_media_type(),
                    layer.digest,
                    layer.size,
                )
            })
            .collect(),
        subject: None,
        annotations: Default::default(),
        extra: Default::default(),
    };
    let manifest_bytes = to_canonical_vec(&manifest).map_err(|source| ImageError::Json {
        document: "manifest",
        source,
    })?;
    let mut manifest_descriptor = Descriptor::new(
        media_type::OCI_MANIFEST,
        Digest::of(&manifest_bytes),
        manifest_bytes.len() as u64,
    );
    manifest_descriptor.platform = Some(request.platform.clone());
    sink.put_blob(&manifest_descriptor.digest, &manifest_bytes)
        .map_err(ImageError::Sink)?;

    Ok(BuiltImage {
        reference: request.reference.clone(),
        manifest,
        manifest_descriptor,
        config,
        config_descriptor,
        layers,
    })
}
