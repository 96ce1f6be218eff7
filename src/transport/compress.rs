//! Compressing an image's uncompressed layers on its way to a registry.
//!
//! kiln keeps the layers of the images it builds uncompressed in the store, as `docker save`
//! and `podman save` write them: `docker load` and `podman load` read them without inflating
//! anything, and a rebuild after an edit costs a tar and a hash, not a deflate of the whole
//! program (issue 18: gzip of a 55 MiB program took longer on two cores than everything else
//! kiln does around `go build`). Compression happens once, here, when the image is sent
//! (`kiln push`, `kiln copy … docker://`), as nix2container does.
//!
//! [`compress_layers`] turns an image graph whose layers are plain tars into the graph a
//! registry gets:
//! - each uncompressed layer (`…layer.v1.tar`, Docker's `…rootfs.diff.tar`) becomes the blob
//!   `compression` makes of it (`oci::compression`: pinned, so the same tar gives the same
//!   bytes on every machine), under the matching media type: OCI `+gzip`/`+zstd`, Docker's
//!   gzip type in a Docker manifest (Docker's schema 2 has no zstd type, so a Docker-typed
//!   image is always gzipped); layers that are already compressed (a registry base's) stay as
//!   they are;
//! - each manifest that changed is written again in kiln's canonical JSON
//!   (`oci::json`) with only the layers' media type, digest and size replaced, then each
//!   index that lists a changed manifest. For an image kiln built, the result is exactly the
//!   image kiln would have built with that compression in the first place (a test proves it
//!   byte for byte): the config, and with it the image ID and the `diff_ids`, is untouched;
//! - referrers (the SBOM beside each image) follow their subject: the artifact manifest's
//!   `subject` is the new manifest, and the SBOM document, which names its image by manifest
//!   digest (`pkg:oci/NAME@sha256%3A…`), has that digest's 64 hex digits replaced by the new
//!   one's, the only edit made to it (64 hex digits of a SHA-256 do not occur by chance).
//!
//! The compressed blobs come from a [`LayerCompressor`]: the store's layer cache
//! (`store::layer_cache`), which keeps each by the tar it compresses, so an unchanged layer
//! (kiln's static base, assets, another platform's copy of the same files) is compressed once
//! per machine, not once per push.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;

use super::{BlobSource, ImageGraph, TransportError};
use crate::diagnostic::PathError;
use crate::oci::compression::Compression;
use crate::oci::digest::Digest;
use crate::oci::json::to_canonical_vec;
use crate::oci::spec::{Descriptor, media_type};

/// The annotation on an image's entry in its layout's `index.json` (not on any hashed
/// document) naming the compression its uncompressed layers get when it is sent: kiln's
/// images carry the project's `compression` there.
pub const COMPRESSION_ANNOTATION: &str = "dev.kiln.compression";

/// Referrer blobs larger than this are sent as they are, never read whole to be rewritten.
const REFERRER_BLOB_LIMIT: u64 = 64 * 1024 * 1024;

/// A compressed layer, kept in a file until it is sent.
#[derive(Clone, Debug)]
pub struct CompressedBlob {
    pub digest: Digest,
    pub size: u64,
    pub path: PathBuf,
    /// Whether it was kept from an earlier compression rather than made now.
    pub reused: bool,
}

/// Where compressed layers come from.
pub trait LayerCompressor: Sync {
    /// The blob `compression` makes of the uncompressed layer `layer` (its digest is its
    /// `diff_id`), read from `source` when it must be made.
    fn compressed(
        &self,
        compression: Compression,
        layer: &Descriptor,
        source: &dyn BlobSource,
    ) -> Result<CompressedBlob, TransportError>;
}

/// The graph a registry gets, and where its new blobs and documents are.
pub struct CompressedImage<'a> {
    pub source: OverlaySource<'a>,
    pub graph: ImageGraph,
    pub referrers: Vec<ImageGraph>,
    /// Layers compressed now, and kept ones reused.
    pub compressed: usize,
    pub reused: usize,
    /// The bytes of those layers before and after.
    pub plain_bytes: u64,
    pub compressed_bytes: u64,
}

/// A blob source with some blobs and documents replaced: the compressed layers, and the
/// manifests, indexes and referrer blobs written again around them.
pub struct OverlaySource<'a> {
    inner: &'a dyn BlobSource,
    files: BTreeMap<Digest, (PathBuf, u64)>,
    bytes: BTreeMap<Digest, Vec<u8>>,
}

impl<'a> OverlaySource<'a> {
    /// `inner` itself.
    pub fn unchanged(inner: &'a dyn BlobSource) -> Self {
        OverlaySource {
            inner,
            files: BTreeMap::new(),
            bytes: BTreeMap::new(),
        }
    }
}

impl BlobSource for OverlaySource<'_> {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn read_document(&self, descriptor: &Descriptor) -> Result<Vec<u8>, TransportError> {
        match self.bytes.get(&descriptor.digest) {
            Some(bytes) => Ok(bytes.clone()),
            None => self.inner.read_document(descriptor),
        }
    }

    fn open_blob(
        &self,
        descriptor: &Descriptor,
    ) -> Result<Box<dyn Read + Send + '_>, TransportError> {
        if let Some(bytes) = self.bytes.get(&descriptor.digest) {
            return Ok(Box::new(io::Cursor::new(bytes.as_slice())));
        }
        if let Some((path, size)) = self.files.get(&descriptor.digest) {
            let file = File::open(path).map_err(PathError::read(path))?;
            return Ok(Box::new(file.take(*size)));
        }
        self.inner.open_blob(descriptor)
    }

    fn registry_repository(&self) -> Option<(&str, &str)> {
        self.inner.registry_repository()
    }
}

/// Whether `media_type` is an uncompressed layer.
pub fn is_plain_layer(layer_type: &str) -> bool {
    layer_type == media_type::OCI_LAYER_TAR || layer_type == media_type::DOCKER_LAYER_TAR
}

/// Whether the graph has an uncompressed layer.
pub fn has_plain_layers(graph: &ImageGraph) -> bool {
    graph
        .blobs
        .iter()
        .any(|blob| is_plain_layer(&blob.media_type))
}

/// The compression the image `graph` (read from `location`) asks for at its root
/// ([`COMPRESSION_ANNOTATION`] on its `index.json` entry).
pub fn requested_compression(
    graph: &ImageGraph,
    location: &str,
) -> Result<Option<Compression>, TransportError> {
    match graph.root.annotations.get(COMPRESSION_ANNOTATION) {
        None => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|error| TransportError::Invalid {
                location: format!("{location} (index.json)"),
                message: format!("annotation {COMPRESSION_ANNOTATION}: {error}"),
            }),
    }
}

/// `graph` (read from `source`) and its `referrers` with every uncompressed layer compressed
/// by `compression` through `compressor`; see the module documentation.
pub fn compress_layers<'a>(
    source: &'a dyn BlobSource,
    graph: &ImageGraph,
    referrers: &[ImageGraph],
    compression: Compression,
    compressor: &dyn LayerCompressor,
) -> Result<CompressedImage<'a>, TransportError> {
    let mut result = CompressedImage {
        source: OverlaySource::unchanged(source),
        graph: graph.clone(),
        referrers: referrers.to_vec(),
        compressed: 0,
        reused: 0,
        plain_bytes: 0,
        compressed_bytes: 0,
    };
    if compression == Compression::None || !has_plain_layers(graph) {
        return Ok(result);
    }
    let mut overlay = OverlaySource::unchanged(source);
    // Old layer digest → its compressed descriptor; old document digest → its new one.
    let mut layers: BTreeMap<Digest, Descriptor> = BTreeMap::new();
    let mut documents: BTreeMap<Digest, Descriptor> = BTreeMap::new();
    let location = source.describe();
    let json_error = |digest: Digest, what: &'static str| {
        let location = location.clone();
        move |error| TransportError::Json {
            location,
            what,
            digest,
            source: error,
        }
    };
    let mut new_documents = Vec::new();
    for (descriptor, bytes) in &graph.documents {
        let mut value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(json_error(descriptor.digest, "document"))?;
        let mut changed = false;
        if media_type::is_manifest(&descriptor.media_type) {
            let docker = descriptor.media_type == media_type::DOCKER_MANIFEST;
            let wanted = if docker {
                Compression::Gzip
            } else {
                compression
            };
            let list = value
                .get_mut("layers")
                .and_then(serde_json::Value::as_array_mut);
            for layer in list.into_iter().flatten() {
                let old: Descriptor = serde_json::from_value(layer.clone())
                    .map_err(json_error(descriptor.digest, "layer descriptor"))?;
                if !is_plain_layer(&old.media_type) {
                    continue;
                }
                let new = match layers.get(&old.digest) {
                    Some(new) => new.clone(),
                    None => {
                        let blob = compressor.compressed(wanted, &old, source)?;
                        if blob.reused {
                            result.reused += 1;
                        } else {
                            result.compressed += 1;
                        }
                        result.plain_bytes += old.size;
                        result.compressed_bytes += blob.size;
                        let media_type = if docker {
                            media_type::DOCKER_LAYER_GZIP
                        } else {
                            wanted.oci_layer_media_type()
                        };
                        let new = Descriptor {
                            media_type: media_type.to_owned(),
                            digest: blob.digest,
                            size: blob.size,
                            ..old.clone()
                        };
                        overlay.files.insert(blob.digest, (blob.path, blob.size));
                        layers.insert(old.digest, new.clone());
                        new
                    }
                };
                set_descriptor(layer, &new);
                changed = true;
            }
        } else if media_type::is_index(&descriptor.media_type) {
            let list = value
                .get_mut("manifests")
                .and_then(serde_json::Value::as_array_mut);
            for child in list.into_iter().flatten() {
                let digest: Option<Digest> = child
                    .get("digest")
                    .and_then(|digest| serde_json::from_value(digest.clone()).ok());
                if let Some(new) = digest.and_then(|digest| documents.get(&digest)) {
                    set_descriptor(child, new);
                    changed = true;
                }
            }
        }
        if !changed {
            new_documents.push((descriptor.clone(), bytes.clone()));
            continue;
        }
        let bytes = to_canonical_vec(&value).map_err(json_error(descriptor.digest, "document"))?;
        let new = Descriptor {
            digest: Digest::of(&bytes),
            size: bytes.len() as u64,
            ..descriptor.clone()
        };
        documents.insert(descriptor.digest, new.clone());
        overlay.bytes.insert(new.digest, bytes.clone());
        new_documents.push((new, bytes));
    }
    let graph_out = &mut result.graph;
    graph_out.documents = new_documents;
    if let Some(new) = documents.get(&graph.root.digest) {
        graph_out.root = Descriptor {
            digest: new.digest,
            size: new.size,
            ..graph.root.clone()
        };
    }
    for blob in &mut graph_out.blobs {
        if let Some(new) = layers.get(&blob.digest) {
            *blob = new.clone();
        }
    }
    for (_, image_layers) in &mut graph_out.images {
        for digest in image_layers {
            if let Some(new) = layers.get(digest) {
                *digest = new.digest;
            }
        }
    }
    result.referrers = referrers
        .iter()
        .map(|referrer| follow_subject(referrer, &documents, &mut overlay))
        .collect::<Result<_, _>>()?;
    result.source = overlay;
    Ok(result)
}

/// Put `new`'s media type, digest and size into the descriptor `value`, leaving the rest
/// (annotations, platform, urls) as it was.
fn set_descriptor(value: &mut serde_json::Value, new: &Descriptor) {
    if let Some(object) = value.as_object_mut() {
        object.insert("mediaType".to_owned(), new.media_type.clone().into());
        object.insert("digest".to_owned(), new.digest.to_string().into());
        object.insert("size".to_owned(), new.size.into());
    }
}

/// The referrer graph `referrer` pointed at the new document of its subject, if its subject
/// was written again, with the subject's old digest replaced in its small blobs.
fn follow_subject(
    referrer: &ImageGraph,
    documents: &BTreeMap<Digest, Descriptor>,
    overlay: &mut OverlaySource<'_>,
) -> Result<ImageGraph, TransportError> {
    let Some((root, bytes)) = referrer.documents.last() else {
        return Ok(referrer.clone());
    };
    let Some((subject, _)) = crate::oci::layout::referrer_descriptor(root.digest, bytes) else {
        return Ok(referrer.clone());
    };
    let Some(new_subject) = documents.get(&subject) else {
        return Ok(referrer.clone());
    };
    let location = overlay.describe();
    let json_error = |error| TransportError::Json {
        location: location.clone(),
        what: "referrer manifest",
        digest: root.digest,
        source: error,
    };
    let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(json_error)?;
    if let Some(subject_value) = value.get_mut("subject") {
        set_descriptor(subject_value, new_subject);
    }
    let (old_hex, new_hex) = (subject.hex(), new_subject.digest.hex());
    let mut replaced: BTreeMap<Digest, Descriptor> = BTreeMap::new();
    let list = value
        .get_mut("layers")
        .and_then(serde_json::Value::as_array_mut);
    for layer in list.into_iter().flatten() {
        let old: Descriptor = serde_json::from_value(layer.clone()).map_err(json_error)?;
        if old.size > REFERRER_BLOB_LIMIT {
            continue;
        }
        let mut content = Vec::new();
        overlay
            .open_blob(&old)?
            .read_to_end(&mut content)
            .map_err(|error| TransportError::Invalid {
                location: overlay.describe(),
                message: format!("cannot read the referrer blob {}: {error}", old.digest),
            })?;
        let text = String::from_utf8(content);
        let Some(rewritten) = text
            .ok()
            .filter(|text| text.contains(&old_hex))
            .map(|text| text.replace(&old_hex, &new_hex).into_bytes())
        else {
            continue;
        };
        let new = Descriptor {
            digest: Digest::of(&rewritten),
            size: rewritten.len() as u64,
            ..old.clone()
        };
        set_descriptor(layer, &new);
        overlay.bytes.insert(new.digest, rewritten);
        replaced.insert(old.digest, new);
    }
    let new_bytes = to_canonical_vec(&value).map_err(json_error)?;
    let new_root = Descriptor {
        digest: Digest::of(&new_bytes),
        size: new_bytes.len() as u64,
        ..root.clone()
    };
    overlay.bytes.insert(new_root.digest, new_bytes.clone());
    let mut graph = referrer.clone();
    let count = graph.documents.len();
    graph.documents[count - 1] = (new_root.clone(), new_bytes);
    graph.root = new_root;
    // The config (the empty descriptor) stays; layers replaced where rewritten.
    for blob in &mut graph.blobs {
        if let Some(new) = replaced.get(&blob.digest) {
            *blob = new.clone();
        }
    }
    for (_, image_layers) in &mut graph.images {
        for digest in image_layers {
            if let Some(new) = replaced.get(digest) {
                *digest = new.digest;
            }
        }
    }
    Ok(graph)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Mutex;

    use super::*;
    use crate::oci::archive::{ArchiveKind, ArchiveWriter};
    use crate::oci::compression::Compressor;
    use crate::oci::digest::HashingWriter;
    use crate::oci::image::{ImageRequest, RequestLayer, build_image, build_index};
    use crate::oci::spec::ContainerConfig;
    use crate::oci::tree::FileTree;
    use crate::transport::{OpenedImage, open_local};

    /// Compresses into a folder, counting what it was asked for.
    struct Scratch {
        folder: PathBuf,
        asked: Mutex<Vec<Digest>>,
    }

    impl LayerCompressor for Scratch {
        fn compressed(
            &self,
            compression: Compression,
            layer: &Descriptor,
            source: &dyn BlobSource,
        ) -> Result<CompressedBlob, TransportError> {
            self.asked.lock().unwrap().push(layer.digest);
            let path = self
                .folder
                .join(format!("{}.{compression}", layer.digest.hex()));
            let file = File::create(&path).unwrap();
            let mut compressor = Compressor::new(compression, HashingWriter::new(file), 2).unwrap();
            io::copy(&mut source.open_blob(layer)?, &mut compressor).unwrap();
            let (_, digest, size) = compressor.finish().unwrap().finish();
            Ok(CompressedBlob {
                digest,
                size,
                path,
                reused: false,
            })
        }
    }

    /// An image archive of `platforms` (two layers each: assets they share, and a program of
    /// their own), its layers compressed by `compression`, with an SBOM naming each manifest.
    fn archive(folder: &Path, compression: Compression, platforms: &[&str]) -> PathBuf {
        std::fs::write(folder.join("asset"), b"the same assets ".repeat(40_000)).unwrap();
        let path = folder.join(format!("image-{compression}.tar"));
        let file = File::create(&path).unwrap();
        let mut archive = ArchiveWriter::to_file(file, ArchiveKind::Docker, 1).unwrap();
        let reference: crate::oci::reference::Reference = "example.com/app:1".parse().unwrap();
        let mut images = Vec::new();
        for platform in platforms {
            let program = folder.join(platform.replace('/', "-"));
            std::fs::write(
                &program,
                format!("a program for {platform} ").repeat(30_000),
            )
            .unwrap();
            let mut assets = FileTree::new();
            assets.add(&folder.join("asset"), "/srv/asset").unwrap();
            let mut programs = FileTree::new();
            programs.add(&program, "/bin/app").unwrap();
            let layer = |tree| RequestLayer {
                tree,
                created_by: "test".to_owned(),
                mtime: None,
            };
            let request = ImageRequest {
                reference: reference.clone(),
                platform: platform.parse().unwrap(),
                created: "1970-01-01T00:00:01Z".to_owned(),
                mtime: 1,
                compression,
                container: ContainerConfig::default(),
                layers: vec![layer(assets), layer(programs)],
                annotations: Default::default(),
                base: None,
            };
            let image = build_image(&request, &mut archive, &mut |_| {}).unwrap();
            let sbom = format!(
                "{{\"name\":\"pkg:oci/app@sha256%3A{}\"}}",
                image.manifest_descriptor.digest.hex()
            );
            crate::sbom::write_artifact(
                &mut archive,
                &image.manifest_descriptor,
                sbom.as_bytes(),
                "1970-01-01T00:00:01Z",
            )
            .unwrap();
            images.push(image);
        }
        let entry = if images.len() == 1 {
            images[0].layout_entry()
        } else {
            let (_, descriptor) = build_index(&images, &Default::default(), &mut archive).unwrap();
            crate::oci::layout::index_entry(&descriptor, &reference, &images)
        };
        archive.finish(&[entry]).unwrap();
        path
    }

    fn open(path: &Path) -> OpenedImage {
        open_local(path, path.display().to_string(), None).unwrap()
    }

    fn read_all(source: &dyn BlobSource, descriptor: &Descriptor) -> Vec<u8> {
        let mut bytes = Vec::new();
        source
            .open_blob(descriptor)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        bytes
    }

    /// The oracle: an image built uncompressed and compressed here is, byte for byte, the
    /// image built compressed, for gzip and zstd, one platform and an index of two, with its
    /// SBOMs; the layer both platforms share is compressed once.
    #[test]
    fn compressing_a_plain_image_gives_the_image_built_compressed() {
        for platforms in [&["linux/amd64"][..], &["linux/amd64", "linux/arm64"]] {
            for compression in [Compression::Gzip, Compression::Zstd] {
                let folder = tempfile::tempdir().unwrap();
                let built = open(&archive(folder.path(), compression, platforms));
                let plain = open(&archive(folder.path(), Compression::None, platforms));
                assert!(has_plain_layers(&plain.graph) && !has_plain_layers(&built.graph));
                assert_ne!(plain.graph.root.digest, built.graph.root.digest);
                let scratch = Scratch {
                    folder: folder.path().to_owned(),
                    asked: Mutex::new(Vec::new()),
                };
                let out = compress_layers(
                    plain.source.as_ref(),
                    &plain.graph,
                    &plain.referrers,
                    compression,
                    &scratch,
                )
                .unwrap();
                let what = format!("{compression}, {platforms:?}");
                assert_eq!(out.graph.root.digest, built.graph.root.digest, "{what}");
                assert_eq!(out.graph.documents, built.graph.documents, "{what}");
                assert_eq!(out.graph.blobs, built.graph.blobs, "{what}");
                assert_eq!(out.graph.images, built.graph.images, "{what}");
                assert_eq!(out.compressed, 1 + platforms.len(), "{what}");
                assert_eq!(scratch.asked.lock().unwrap().len(), 1 + platforms.len());
                for blob in &out.graph.blobs {
                    let bytes = read_all(&out.source, blob);
                    assert_eq!(Digest::of(&bytes), blob.digest, "{what}");
                    assert_eq!(bytes, read_all(built.source.as_ref(), blob), "{what}");
                }
                // The SBOMs name the new manifests and are the compressed image's own.
                assert_eq!(out.referrers.len(), platforms.len());
                for referrer in &out.referrers {
                    // Listed in the order of their digests, which changed.
                    let expected = built
                        .referrers
                        .iter()
                        .find(|expected| expected.root == referrer.root)
                        .expect("the compressed image's SBOM");
                    assert_eq!(referrer.documents, expected.documents, "{what}");
                    for blob in &referrer.blobs {
                        assert_eq!(
                            read_all(&out.source, blob),
                            read_all(built.source.as_ref(), blob),
                            "{what}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn nothing_changes_without_plain_layers_or_with_no_compression() {
        let folder = tempfile::tempdir().unwrap();
        let scratch = Scratch {
            folder: folder.path().to_owned(),
            asked: Mutex::new(Vec::new()),
        };
        let built = open(&archive(folder.path(), Compression::Gzip, &["linux/amd64"]));
        let plain = open(&archive(folder.path(), Compression::None, &["linux/amd64"]));
        for (image, compression) in [(&built, Compression::Zstd), (&plain, Compression::None)] {
            let out = compress_layers(
                image.source.as_ref(),
                &image.graph,
                &image.referrers,
                compression,
                &scratch,
            )
            .unwrap();
            assert_eq!(out.graph.root, image.graph.root);
            assert_eq!(out.graph.documents, image.graph.documents);
            assert_eq!(out.referrers[0].root, image.referrers[0].root);
        }
        assert!(scratch.asked.lock().unwrap().is_empty());
    }

    #[test]
    fn the_requested_compression_is_read_from_the_root() {
        let folder = tempfile::tempdir().unwrap();
        let mut graph = open(&archive(folder.path(), Compression::None, &["linux/amd64"])).graph;
        assert_eq!(requested_compression(&graph, "image.tar").unwrap(), None);
        graph
            .root
            .annotations
            .insert(COMPRESSION_ANNOTATION.to_owned(), "zstd".to_owned());
        assert_eq!(
            requested_compression(&graph, "image.tar").unwrap(),
            Some(Compression::Zstd)
        );
        graph
            .root
            .annotations
            .insert(COMPRESSION_ANNOTATION.to_owned(), "xz".to_owned());
        let error = requested_compression(&graph, "image.tar")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(
                "image.tar (index.json): annotation dev.kiln.compression: unknown compression `xz`"
            ),
            "{error}"
        );
    }
}
