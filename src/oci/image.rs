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
//! - The manifest's annotations are the request's (`org.opencontainers.image.created`,
//!   `.version`, `.title`, and `.revision`/`.source` from a clean git checkout, decided by the
//!   build), plus `org.opencontainers.image.base.name` and `.base.digest` on a base. Names
//!   live in the index and `manifest.json`, never in the manifest.
//! - An image's own layers skip empty trees and any layer identical to one below it.
//! - Several platforms make an OCI image index ([`build_index`]): one entry per manifest, in
//!   the order given, each with its platform (and a base's annotations); the index carries
//!   the image's annotations.
//! - On a base image, the base's layers come first, as stored, and the config is the base's
//!   with ours merged in ([`inherit`]); a base with Docker media types makes the whole image
//!   Docker-typed, so no image mixes the two families.

use std::io::{self, Write};

use super::compression::{Compression, compression_threads};
use super::digest::Digest;
use super::json::to_canonical_vec;
use super::layer::{LayerError, LayerOptions, LayerSummary, write_layer};
use super::reference::Reference;
use super::spec::{
    ContainerConfig, Descriptor, History, ImageConfig, Manifest, Platform, RootFs, annotation,
    media_type,
};
use super::tree::FileTree;

use crate::diagnostic::Hint;

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
    /// The image's own layers, bottom first. An empty tree makes no layer, and a layer
    /// identical to one below it is left out (the trees never overlap, so it adds nothing).
    pub layers: Vec<RequestLayer>,
    /// The image's manifest annotations (`org.opencontainers.image.*`), beside the base ones.
    pub annotations: std::collections::BTreeMap<String, String>,
    /// The image this one starts from.
    pub base: Option<BaseImage>,
}

/// One layer of an [`ImageRequest`].
#[derive(Clone, Debug)]
pub struct RequestLayer {
    pub tree: FileTree,
    /// The `created_by` of its history entry.
    pub created_by: String,
    /// The mtime of its entries, when not the request's (kiln's static base layer has its own,
    /// so it is the same bytes in every image).
    pub mtime: Option<u64>,
}

/// A base image, its blobs in an OCI layout folder (verified when they were fetched).
#[derive(Clone, Debug)]
pub struct BaseImage {
    /// The reference as configured (`ghcr.io/team/base:1`).
    pub reference: Reference,
    /// Its manifest's descriptor (the platform's manifest, not an index).
    pub descriptor: Descriptor,
    pub manifest: Manifest,
    pub config: ImageConfig,
    /// An OCI layout holding its layers.
    pub layout: std::path::PathBuf,
}

impl BaseImage {
    /// Whether the base uses Docker's media types, which the image then keeps.
    pub fn is_docker(&self) -> bool {
        self.descriptor.media_type == media_type::DOCKER_MANIFEST
    }
}

/// The container config of an image on `base`: the base's, with the environment merged (the
/// base's variables, then ours replacing any of the same name), ports, volumes and labels
/// added, and Entrypoint, Cmd, User and WorkingDir replaced where ours sets them. Setting an
/// entrypoint without a command clears the base's command, as a Dockerfile's ENTRYPOINT does.
pub fn inherit(base: &ContainerConfig, ours: &ContainerConfig) -> ContainerConfig {
    let mut merged = base.clone();
    for variable in &ours.env {
        let name = variable
            .split_once('=')
            .map_or(variable.as_str(), |(name, _)| name);
        match merged.env.iter_mut().find(|existing| {
            existing
                .split_once('=')
                .map_or(existing.as_str(), |(n, _)| n)
                == name
        }) {
            Some(existing) => existing.clone_from(variable),
            None => merged.env.push(variable.clone()),
        }
    }
    merged.exposed_ports.extend(
        ours.exposed_ports
            .iter()
            .map(|(key, value)| (key.clone(), *value)),
    );
    merged.volumes.extend(
        ours.volumes
            .iter()
            .map(|(key, value)| (key.clone(), *value)),
    );
    merged.labels.extend(
        ours.labels
            .iter()
            .map(|(key, value)| (key.clone(), value.clone())),
    );
    if ours.entrypoint.is_some() {
        merged.entrypoint.clone_from(&ours.entrypoint);
        merged.cmd = None;
    }
    if ours.cmd.is_some() {
        merged.cmd.clone_from(&ours.cmd);
    }
    if !ours.user.is_empty() {
        merged.user.clone_from(&ours.user);
    }
    if !ours.working_dir.is_empty() {
        merged.working_dir.clone_from(&ours.working_dir);
    }
    if ours.stop_signal.is_some() {
        merged.stop_signal.clone_from(&ours.stop_signal);
    }
    merged
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
    #[error("the base image {base} is for {base_platform}, and this image is for {platform}")]
    BasePlatform {
        base: String,
        base_platform: String,
        platform: String,
    },
    #[error("the base image {base} uses Docker media types, which have no zstd layer type")]
    ZstdOnDocker { base: String },
    #[error("cannot read the base image {base}'s layer {digest}")]
    BaseLayer {
        base: String,
        digest: Digest,
        #[source]
        source: io::Error,
    },
    #[error("cannot encode the image's {document}")]
    Json {
        document: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl Hint for ImageError {
    fn hint(&self) -> Option<String> {
        match self {
            ImageError::BasePlatform { platform, .. } => Some(format!(
                "pin a base that has {platform} (kiln lock picks it from a multi-platform base)"
            )),
            ImageError::ZstdOnDocker { .. } => {
                Some("use compression = \"gzip\" on this image".to_owned())
            }
            _ => None,
        }
    }
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
    let base = request.base.as_ref();
    let docker = base.is_some_and(BaseImage::is_docker);
    if let Some(base) = base {
        let base_platform = format!(
            "{}/{}{}",
            base.config.os,
            base.config.architecture,
            base.config
                .variant
                .as_ref()
                .map(|variant| format!("/{variant}"))
                .unwrap_or_default()
        );
        let same = request.platform.accepts(&Platform {
            architecture: base.config.architecture.clone(),
            os: base.config.os.clone(),
            os_version: None,
            os_features: Vec::new(),
            variant: base.config.variant.clone(),
        });
        if !same {
            return Err(ImageError::BasePlatform {
                base: base.reference.to_string(),
                base_platform,
                platform: request.platform.to_string(),
            });
        }
        if docker && request.compression == Compression::Zstd {
            return Err(ImageError::ZstdOnDocker {
                base: base.reference.to_string(),
            });
        }
        for layer in &base.manifest.layers {
            let layer_error = |source| ImageError::BaseLayer {
                base: base.reference.to_string(),
                digest: layer.digest,
                source,
            };
            let mut file = std::fs::File::open(base.layout.join(layer.digest.blob_path()))
                .map_err(layer_error)?;
            let mut pending = sink.begin_blob().map_err(ImageError::Sink)?;
            let copied = io::copy(&mut file, &mut pending).map_err(layer_error)?;
            if copied != layer.size {
                return Err(layer_error(io::Error::other(format!(
                    "{copied} bytes stored, the manifest says {}",
                    layer.size
                ))));
            }
            sink.commit_blob(pending, &layer.digest, layer.size)
                .map_err(ImageError::Sink)?;
        }
    }
    let mut layers: Vec<LayerSummary> = Vec::with_capacity(request.layers.len());
    let mut history: Vec<History> = Vec::with_capacity(request.layers.len());
    for layer in &request.layers {
        if layer.tree.is_empty() {
            continue;
        }
        let options = LayerOptions {
            mtime: layer.mtime.unwrap_or(options.mtime),
            ..options
        };
        let summary = write_one_layer(&layer.tree, &options, sink, on_progress)?;
        if layers.iter().any(|below| below.diff_id == summary.diff_id) {
            continue;
        }
        layers.push(summary);
        history.push(History {
            created: Some(request.created.clone()),
            created_by: Some(layer.created_by.clone()),
            ..History::default()
        });
    }

    let mut config = ImageConfig {
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
    if let Some(base) = base {
        // The base's config, field for field (kiln keeps unknown fields), with ours on top.
        let ours = config;
        config = base.config.clone();
        config.created = ours.created;
        config.config = inherit(&base.config.config, &ours.config);
        config.rootfs.kind = "layers".to_owned();
        config.rootfs.diff_ids.extend(ours.rootfs.diff_ids);
        config.history.extend(ours.history);
    }
    let (manifest_type, config_type) = if docker {
        (media_type::DOCKER_MANIFEST, media_type::DOCKER_CONFIG)
    } else {
        (media_type::OCI_MANIFEST, media_type::OCI_CONFIG)
    };
    let config_bytes = to_canonical_vec(&config).map_err(|source| ImageError::Json {
        document: "config",
        source,
    })?;
    let config_descriptor = Descriptor::new(
        config_type,
        Digest::of(&config_bytes),
        config_bytes.len() as u64,
    );
    sink.put_blob(&config_descriptor.digest, &config_bytes)
        .map_err(ImageError::Sink)?;

    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(manifest_type.to_owned()),
        artifact_type: None,
        config: config_descriptor.clone(),
        layers: base
            .map(|base| base.manifest.layers.clone())
            .unwrap_or_default()
            .into_iter()
            .chain(layers.iter().map(|layer| {
                let layer_type = match (docker, layer.compression) {
                    (true, Compression::None) => media_type::DOCKER_LAYER_TAR,
                    (true, _) => media_type::DOCKER_LAYER_GZIP,
                    (false, compression) => compression.oci_layer_media_type(),
                };
                Descriptor::new(layer_type, layer.digest, layer.size)
            }))
            .collect(),
        subject: None,
        // The image-spec's annotations; Docker's schema 2 has none.
        annotations: match base {
            _ if docker => Default::default(),
            Some(base) => {
                let mut annotations = request.annotations.clone();
                annotations.insert(
                    annotation::BASE_DIGEST.to_owned(),
                    base.descriptor.digest.to_string(),
                );
                annotations.insert(annotation::BASE_NAME.to_owned(), base.reference.to_string());
                annotations
            }
            None => request.annotations.clone(),
        },
        extra: Default::default(),
    };
    let manifest_bytes = to_canonical_vec(&manifest).map_err(|source| ImageError::Json {
        document: "manifest",
        source,
    })?;
    let mut manifest_descriptor = Descriptor::new(
        manifest_type,
        Digest::of(&manifest_bytes),
        manifest_bytes.len() as u64,
    );
    manifest_descriptor.platform = Some(request.platform.clone());
    if let Some(base) = base {
        // In the index entry too, whatever the manifest's family: `kiln push` mounts the
        // base's blobs from its repository when it is on the same registry.
        manifest_descriptor
            .annotations
            .insert(annotation::BASE_NAME.to_owned(), base.reference.to_string());
        manifest_descriptor.annotations.insert(
            annotation::BASE_DIGEST.to_owned(),
            base.descriptor.digest.to_string(),
        );
    }
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

/// Write one layer's blob into `sink`, compressed in the same pass as its tar.
fn write_one_layer<S: BlobSink>(
    tree: &FileTree,
    options: &LayerOptions,
    sink: &mut S,
    on_progress: &mut dyn FnMut(u64),
) -> Result<LayerSummary, ImageError> {
    let pending = sink.begin_blob().map_err(ImageError::Sink)?;
    let (summary, pending) = write_layer(tree, options, pending, on_progress)?;
    sink.commit_blob(pending, &summary.digest, summary.size)
        .map_err(ImageError::Sink)?;
    Ok(summary)
}

/// An image index over images built for several platforms, written to `sink`.
pub fn build_index<S: BlobSink>(
    images: &[BuiltImage],
    annotations: &std::collections::BTreeMap<String, String>,
    sink: &mut S,
) -> Result<(super::spec::Index, Descriptor), ImageError> {
    let index = super::spec::Index {
        schema_version: 2,
        media_type: Some(media_type::OCI_INDEX.to_owned()),
        manifests: images
            .iter()
            .map(|image| image.manifest_descriptor.clone())
            .collect(),
        annotations: annotations.clone(),
        extra: Default::default(),
    };
    let bytes = to_canonical_vec(&index).map_err(|source| ImageError::Json {
        document: "index",
        source,
    })?;
    let descriptor = Descriptor::new(
        media_type::OCI_INDEX,
        Digest::of(&bytes),
        bytes.len() as u64,
    );
    sink.put_blob(&descriptor.digest, &bytes)
        .map_err(ImageError::Sink)?;
    Ok((index, descriptor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::layout::LayoutWriter;

    /// A base image in a layout folder: one gzip layer (any bytes: they are copied as stored)
    /// and a config with an environment, a user, a folder and a command.
    fn base(folder: &std::path::Path, docker: bool) -> BaseImage {
        let layer = b"stored bytes of the base's layer".to_vec();
        let layer_digest = Digest::of(&layer);
        std::fs::create_dir_all(folder.join("blobs/sha256")).unwrap();
        std::fs::write(folder.join(layer_digest.blob_path()), &layer).unwrap();
        let config: ImageConfig = serde_json::from_value(serde_json::json!({
            "created": "2020-01-01T00:00:00Z",
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Env": ["PATH=/usr/bin", "MODE=base"],
                "User": "1000",
                "WorkingDir": "/srv",
                "Cmd": ["/bin/sh"],
                "Labels": {"from": "base"}
            },
            "rootfs": {"type": "layers", "diff_ids": [Digest::of(b"unpacked").to_string()]},
            "history": [{"created_by": "base"}]
        }))
        .unwrap();
        let (manifest_type, config_type, layer_type) = if docker {
            (
                media_type::DOCKER_MANIFEST,
                media_type::DOCKER_CONFIG,
                media_type::DOCKER_LAYER_GZIP,
            )
        } else {
            (
                media_type::OCI_MANIFEST,
                media_type::OCI_CONFIG,
                media_type::OCI_LAYER_GZIP,
            )
        };
        let config_bytes = to_canonical_vec(&config).unwrap();
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(manifest_type.to_owned()),
            artifact_type: None,
            config: Descriptor::new(
                config_type,
                Digest::of(&config_bytes),
                config_bytes.len() as u64,
            ),
            layers: vec![Descriptor::new(
                layer_type,
                layer_digest,
                layer.len() as u64,
            )],
            subject: None,
            annotations: Default::default(),
            extra: Default::default(),
        };
        let manifest_bytes = to_canonical_vec(&manifest).unwrap();
        BaseImage {
            reference: "registry.example/base:1".parse().unwrap(),
            descriptor: Descriptor::new(
                manifest_type,
                Digest::of(&manifest_bytes),
                manifest_bytes.len() as u64,
            ),
            manifest,
            config,
            layout: folder.to_owned(),
        }
    }

    fn request(folder: &std::path::Path, base: BaseImage) -> ImageRequest {
        std::fs::write(folder.join("app"), b"the program").unwrap();
        let mut tree = FileTree::new();
        tree.add(&folder.join("app"), "/bin/app").unwrap();
        ImageRequest {
            reference: "example.com/app:1".parse().unwrap(),
            platform: "linux/amd64".parse().unwrap(),
            created: "1970-01-01T00:00:01Z".to_owned(),
            mtime: 1,
            compression: Compression::Gzip,
            container: ContainerConfig {
                env: vec!["MODE=app".to_owned(), "APP=yes".to_owned()],
                entrypoint: Some(vec!["/bin/app".to_owned()]),
                ..ContainerConfig::default()
            },
            layers: vec![RequestLayer {
                tree,
                created_by: "test".to_owned(),
                mtime: None,
            }],
            annotations: Default::default(),
            base: Some(base),
        }
    }

    fn build(docker: bool) -> Result<(BuiltImage, Vec<u8>), ImageError> {
        let temp = tempfile::tempdir().unwrap();
        let base = base(&temp.path().join("base"), docker);
        let request = request(temp.path(), base);
        let out = temp.path().join("out");
        let mut layout = LayoutWriter::open(&out).unwrap();
        let image = build_image(&request, &mut layout, &mut |_| {})?;
        layout.finish(&[image.layout_entry()]).unwrap();
        let manifest =
            std::fs::read(out.join(image.manifest_descriptor.digest.blob_path())).unwrap();
        Ok((image, manifest))
    }

    #[test]
    fn images_on_an_oci_base_golden() {
        let (image, manifest) = build(false).unwrap();
        assert_eq!(
            image.manifest_descriptor.digest.to_string(),
            "sha256:87f5f08c27096f48a9d0da8f3f97abb9eca8094b4fdfe4577585723ffaa34b8e"
        );
        let text = String::from_utf8(manifest).unwrap();
        assert!(
            text.contains(r#""org.opencontainers.image.base.name":"registry.example/base:1""#),
            "{text}"
        );
        assert_eq!(image.manifest.layers.len(), 2);
        assert_eq!(
            image.manifest.layers[0].media_type,
            media_type::OCI_LAYER_GZIP
        );
        let config = &image.config;
        assert_eq!(config.config.env, ["PATH=/usr/bin", "MODE=app", "APP=yes"]);
        assert_eq!(config.config.entrypoint, Some(vec!["/bin/app".to_owned()]));
        assert_eq!(
            config.config.cmd, None,
            "an entrypoint clears the base's cmd"
        );
        assert_eq!(
            (
                config.config.user.as_str(),
                config.config.working_dir.as_str()
            ),
            ("1000", "/srv")
        );
        assert_eq!(
            config.config.labels.get("from").map(String::as_str),
            Some("base")
        );
        assert_eq!(config.rootfs.diff_ids.len(), 2);
        assert_eq!(config.history.len(), 2);
        assert_eq!(config.created.as_deref(), Some("1970-01-01T00:00:01Z"));
    }

    #[test]
    fn images_on_a_docker_base_stay_docker_golden() {
        let (image, manifest) = build(true).unwrap();
        assert_eq!(
            image.manifest_descriptor.digest.to_string(),
            "sha256:ac9897ba4aed7d687883b0f2e7faf8e880a38dc1b4b3794d2911a65505675b05"
        );
        assert_eq!(
            image.manifest_descriptor.media_type,
            media_type::DOCKER_MANIFEST
        );
        assert_eq!(
            image.config_descriptor.media_type,
            media_type::DOCKER_CONFIG
        );
        assert!(
            image
                .manifest
                .layers
                .iter()
                .all(|layer| layer.media_type == media_type::DOCKER_LAYER_GZIP)
        );
        let text = String::from_utf8(manifest).unwrap();
        assert!(!text.contains("annotations"), "{text}");
        // The index entry still names the base, for `kiln push` to mount from.
        assert_eq!(
            image
                .manifest_descriptor
                .annotations
                .get(annotation::BASE_NAME)
                .map(String::as_str),
            Some("registry.example/base:1")
        );
    }

    #[test]
    fn bases_of_another_platform_or_zstd_on_docker_are_refused() {
        let temp = tempfile::tempdir().unwrap();
        let base = base(&temp.path().join("base"), true);
        let mut request = request(temp.path(), base);
        request.compression = Compression::Zstd;
        let mut layout = LayoutWriter::open(&temp.path().join("out")).unwrap();
        let error = build_image(&request, &mut layout, &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(error.contains("Docker media types"), "{error}");
        request.compression = Compression::Gzip;
        request.platform = "linux/arm64".parse().unwrap();
        let error = build_image(&request, &mut layout, &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(
                "registry.example/base:1 is for linux/amd64, and this image is for linux/arm64"
            ),
            "{error}"
        );
    }

    /// Two platforms under an index, with kiln's annotations; an empty layer and a layer
    /// identical to one below are left out of each manifest.
    #[test]
    fn an_index_of_two_platforms_golden() {
        let temp = tempfile::tempdir().unwrap();
        std::fs::write(temp.path().join("asset"), b"shared asset").unwrap();
        let mut assets = FileTree::new();
        assets
            .add(&temp.path().join("asset"), "/srv/asset")
            .unwrap();
        let annotations: std::collections::BTreeMap<String, String> = [
            (
                annotation::CREATED.to_owned(),
                "1970-01-01T00:00:01Z".to_owned(),
            ),
            (annotation::VERSION.to_owned(), "1".to_owned()),
        ]
        .into();
        let out = temp.path().join("out");
        let mut layout = LayoutWriter::open(&out).unwrap();
        let mut images = Vec::new();
        for platform in ["linux/amd64", "linux/arm64"] {
            let program = temp.path().join(platform.replace('/', "-"));
            std::fs::write(&program, platform.as_bytes()).unwrap();
            let mut programs = FileTree::new();
            programs.add(&program, "/bin/app").unwrap();
            let layer = |tree: FileTree| RequestLayer {
                tree,
                created_by: "test".to_owned(),
                mtime: None,
            };
            let request = ImageRequest {
                reference: "example.com/app:1".parse().unwrap(),
                platform: platform.parse().unwrap(),
                created: "1970-01-01T00:00:01Z".to_owned(),
                mtime: 1,
                compression: Compression::Gzip,
                container: ContainerConfig::default(),
                layers: vec![
                    layer(FileTree::new()),
                    layer(assets.clone()),
                    layer(assets.clone()),
                    layer(programs),
                ],
                annotations: annotations.clone(),
                base: None,
            };
            images.push(build_image(&request, &mut layout, &mut |_| {}).unwrap());
        }
        for image in &images {
            assert_eq!(image.manifest.layers.len(), 2);
            assert_eq!(image.config.history.len(), 2);
            assert_eq!(image.manifest.annotations, annotations);
        }
        assert_eq!(images[0].manifest.layers[0], images[1].manifest.layers[0]);
        let (index, descriptor) = build_index(&images, &annotations, &mut layout).unwrap();
        assert_eq!(
            index
                .manifests
                .iter()
                .map(|entry| entry.platform.as_ref().unwrap().to_string())
                .collect::<Vec<_>>(),
            ["linux/amd64", "linux/arm64"]
        );
        assert_eq!(
            (
                images[0].manifest_descriptor.digest.to_string(),
                images[1].manifest_descriptor.digest.to_string(),
                descriptor.digest.to_string()
            ),
            (
                "sha256:d39a486b836e399ee6eb2e0d39ba6594987c1787ad6a8dec344df854f5ea28c2"
                    .to_owned(),
                "sha256:5700a719a9ba3741455e31ff19a221c094cfe29b6ddcc79b9cea8f231e45fb5e"
                    .to_owned(),
                "sha256:c7a1d484855c2cb50064baf6d4449df36e3d08c737a7c5b2566d6709bc5eb255"
                    .to_owned()
            )
        );
    }
}
