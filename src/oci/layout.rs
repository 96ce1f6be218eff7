//! The OCI image layout (image-layout spec v1.0): `oci-layout`, `index.json` and
//! `blobs/sha256/<hex>`, written as a folder; and the names that `index.json` and a
//! docker-archive's `manifest.json` give an image.
//!
//! Pinned: `oci-layout` is `{"imageLayoutVersion":"1.0.0"}`; each `index.json` entry is the
//! manifest's descriptor with its platform and two annotations, as Docker 25+ `docker save`
//! writes them: `org.opencontainers.image.ref.name` = the tag (what `oci:DIR:TAG` selects in
//! skopeo and podman) and `io.containerd.image.name` = the full name
//! (`docker.io/library/example:0.1`). `manifest.json` lists `Config`, `RepoTags` (the familiar
//! name, `example:0.1`) and `Layers` as `blobs/sha256/<hex>` paths.
//!
//! Writing into an existing layout adds the image to it, as skopeo does: blobs are added, the
//! `index.json` entry with the same ref name is replaced, other entries stay.
//!
//! Referrers (an image's SBOM, see `sbom`) are `index.json` entries too: the artifact
//! manifest's descriptor with its `artifactType` and without a name or ref name, its blobs in
//! `blobs/`. For a multi-platform image there is one per platform manifest, each naming that
//! manifest (inside the index the named entry points to) as its `subject`. Readers that pick
//! *the* image of a layout skip them ([`is_artifact_entry`]); a reader that knows nothing of
//! them (skopeo's `oci-archive:` without a ref) sees two entries and asks which.

use std::collections::BTreeSet;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::digest::Digest;
use super::image::{BlobSink, BuiltImage};
use super::json::to_canonical_vec;
use super::reference::Reference;
use super::spec::{Descriptor, DockerArchiveEntry, Index, annotation, media_type};
use crate::diagnostic::{Hint, PathError};
use crate::output::{AtomicDir, AtomicFile, OutputError};

pub const OCI_LAYOUT_FILE: &str = "oci-layout";
pub const OCI_LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
pub const INDEX_FILE: &str = "index.json";
pub const DOCKER_MANIFEST_FILE: &str = "manifest.json";

/// One image (or index) as a layout names it: an `index.json` entry, and for a docker-archive
/// the `manifest.json` entries of its image manifests.
#[derive(Clone, Debug)]
pub struct LayoutEntry {
    /// The manifest's or index's descriptor, with the platform of a manifest.
    pub descriptor: Descriptor,
    /// The full name: both annotations, and `RepoTags`.
    pub name: Option<Reference>,
    /// A bare ref name when there is no full name (skopeo's `oci:DIR:TAG`).
    pub ref_name: Option<String>,
    /// The config and layer digests of each image manifest the entry holds.
    pub images: Vec<(Digest, Vec<Digest>)>,
    /// For an index of several platforms: a suffix per image (`linux-arm64`), which tags
    /// each in `manifest.json` as `NAME:TAG-SUFFIX`, so `docker load` keeps every platform
    /// apart (`kiln load` loads the engine's platform under `NAME:TAG`). Empty otherwise.
    pub platform_tags: Vec<String>,
}

impl BuiltImage {
    /// The layout entry of a freshly built image.
    pub fn layout_entry(&self) -> LayoutEntry {
        LayoutEntry {
            descriptor: self.manifest_descriptor.clone(),
            name: Some(self.reference.clone()),
            ref_name: None,
            images: vec![(
                self.config_descriptor.digest,
                self.manifest
                    .layers
                    .iter()
                    .map(|layer| layer.digest)
                    .collect(),
            )],
            platform_tags: Vec::new(),
        }
    }
}

/// The layout entry of an index over `images` (built for several platforms).
pub fn index_entry(
    index: &Descriptor,
    reference: &Reference,
    images: &[BuiltImage],
) -> LayoutEntry {
    LayoutEntry {
        descriptor: index.clone(),
        name: Some(reference.clone()),
        ref_name: None,
        images: images
            .iter()
            .map(|image| image.layout_entry().images.remove(0))
            .collect(),
        platform_tags: images
            .iter()
            .map(|image| platform_suffix(&image.manifest_descriptor))
            .collect(),
    }
}

/// `linux-arm64-v8` for a descriptor's platform.
pub fn platform_suffix(descriptor: &Descriptor) -> String {
    match &descriptor.platform {
        Some(platform) => platform.to_string().replace('/', "-"),
        None => "unknown".to_owned(),
    }
}

/// The `index.json` for `entries`, added to `existing` (an entry with the same name, or the
/// same bare ref name, is replaced).
pub fn index_for(entries: &[LayoutEntry], existing: Option<Index>) -> Index {
    let mut index = existing.unwrap_or(Index {
        schema_version: 2,
        media_type: Some(media_type::OCI_INDEX.to_owned()),
        manifests: Vec::new(),
        annotations: Default::default(),
        extra: Default::default(),
    });
    for entry in entries {
        let mut descriptor = entry.descriptor.clone();
        match (&entry.name, &entry.ref_name) {
            (Some(name), _) => {
                let tag = name.tag.clone().unwrap_or_else(|| "latest".to_owned());
                let full_name = name.to_string();
                descriptor.annotations.insert(
                    annotation::CONTAINERD_IMAGE_NAME.to_owned(),
                    full_name.clone(),
                );
                descriptor
                    .annotations
                    .insert(annotation::REF_NAME.to_owned(), tag.clone());
                // The same image name replaces its entry; another name with the same tag stays
                // (a layout can hold `app:1` and `db:1`; `oci:DIR:1` is then ambiguous, as in
                // skopeo).
                index.manifests.retain(|existing| {
                    match existing.annotations.get(annotation::CONTAINERD_IMAGE_NAME) {
                        Some(name) => name != &full_name,
                        None => existing.annotations.get(annotation::REF_NAME) != Some(&tag),
                    }
                });
            }
            (None, Some(ref_name)) => {
                descriptor
                    .annotations
                    .insert(annotation::REF_NAME.to_owned(), ref_name.clone());
                index.manifests.retain(|existing| {
                    existing.annotations.get(annotation::REF_NAME) != Some(ref_name)
                });
            }
            (None, None) => {
                // An unnamed entry (a referrer) is listed once; a named entry for the same
                // manifest stays.
                index
                    .manifests
                    .retain(|existing| existing.digest != descriptor.digest || is_named(existing));
            }
        }
        index.manifests.push(descriptor);
    }
    index
}

/// Whether an `index.json` entry names an image (either annotation kiln writes, or a bare ref
/// name).
fn is_named(descriptor: &Descriptor) -> bool {
    descriptor.annotations.contains_key(annotation::REF_NAME)
        || descriptor
            .annotations
            .contains_key(annotation::CONTAINERD_IMAGE_NAME)
}

/// Whether an `index.json` entry is an artifact stored beside an image (a referrer such as
/// the SBOM), not an image: it has an `artifactType` and no name.
pub fn is_artifact_entry(descriptor: &Descriptor) -> bool {
    descriptor.artifact_type.is_some() && !is_named(descriptor)
}

/// The docker-archive `manifest.json` for `entries`.
pub fn docker_manifest_for(entries: &[LayoutEntry]) -> Vec<DockerArchiveEntry> {
    entries
        .iter()
        .flat_map(|entry| {
            entry
                .images
                .iter()
                .enumerate()
                .map(|(position, (config, layers))| DockerArchiveEntry {
                    config: config.blob_path(),
                    repo_tags: entry
                        .name
                        .iter()
                        .map(|name| match entry.platform_tags.get(position) {
                            Some(suffix) => {
                                let mut tagged = name.clone();
                                tagged.tag = Some(format!(
                                    "{}-{suffix}",
                                    name.tag.as_deref().unwrap_or("latest")
                                ));
                                tagged.familiar_tagged()
                            }
                            None => name.familiar_tagged(),
                        })
                        .collect(),
                    layers: layers.iter().map(Digest::blob_path).collect(),
                    extra: Default::default(),
                })
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("{} exists and is not an OCI layout", .0.display())]
    NotALayout(PathBuf),
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("{} is not a valid OCI index", .path.display())]
    InvalidIndex {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot encode index.json")]
    Json(#[source] serde_json::Error),
}

impl Hint for LayoutError {
    fn hint(&self) -> Option<String> {
        match self {
            LayoutError::Output(inner) => inner.hint(),
            LayoutError::NotALayout(_) => {
                Some("choose a new folder, or remove it first".to_owned())
            }
            _ => None,
        }
    }
}

/// Writes an image into an OCI layout folder.
pub struct LayoutWriter {
    root: PathBuf,
    /// Set when the layout is new: it is built aside and renamed into place.
    fresh: Option<AtomicDir>,
    existing_index: Option<Index>,
    written: BTreeSet<Digest>,
}

impl LayoutWriter {
    /// Prepare to write into `destination`: a new layout when it is missing or an empty
    /// folder, else added to the layout already there.
    pub fn open(destination: &Path) -> Result<Self, LayoutError> {
        let is_empty_folder = destination.is_dir()
            && std::fs::read_dir(destination)
                .map_err(PathError::walk(destination))?
                .next()
                .is_none();
        if !destination.exists() || is_empty_folder {
            let fresh = AtomicDir::create(destination)?;
            let root = fresh.path().to_owned();
            create_dir(&root.join("blobs/sha256"))?;
            return Ok(LayoutWriter {
                root,
                fresh: Some(fresh),
                existing_index: None,
                written: BTreeSet::new(),
            });
        }
        if !destination.join(OCI_LAYOUT_FILE).is_file() {
            return Err(LayoutError::NotALayout(destination.to_owned()));
        }
        let index_path = destination.join(INDEX_FILE);
        let existing_index = match std::fs::read(&index_path) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|source| {
                LayoutError::InvalidIndex {
                    path: index_path.clone(),
                    source,
                }
            })?),
            Err(error) if error.kind() == io::ErrorKind::NotFound => None,
            Err(source) => return Err(PathError::read(&index_path)(source).into()),
        };
        create_dir(&destination.join("blobs/sha256"))?;
        Ok(LayoutWriter {
            root: destination.to_owned(),
            fresh: None,
            existing_index,
            written: BTreeSet::new(),
        })
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join(digest.blob_path())
    }

    /// Whether the layout already has this blob: written in this run, or present with the
    /// right size (a blob of another size, left by a broken tool, is replaced).
    fn already_holds(&self, digest: &Digest, size: u64) -> bool {
        self.written.contains(digest)
            || std::fs::symlink_metadata(self.blob_path(digest))
                .is_ok_and(|metadata| metadata.is_file() && metadata.len() == size)
    }

    /// Write `index.json` and `oci-layout`, and put the layout in place.
    pub fn finish(mut self, entries: &[LayoutEntry]) -> Result<(), LayoutError> {
        let index = index_for(entries, self.existing_index.take());
        let index_bytes = to_canonical_vec(&index).map_err(LayoutError::Json)?;
        crate::output::write_atomic(&self.root.join(OCI_LAYOUT_FILE), OCI_LAYOUT_CONTENT)?;
        crate::output::write_atomic(&self.root.join(INDEX_FILE), &index_bytes)?;
        if let Some(fresh) = self.fresh.take() {
            fresh.commit()?;
        }
        Ok(())
    }
}

fn create_dir(path: &Path) -> Result<(), LayoutError> {
    std::fs::create_dir_all(path).map_err(PathError::write(path))?;
    Ok(())
}

/// A blob being written into the layout: a temporary file in `blobs/sha256/`.
pub struct PendingLayoutBlob {
    writer: BufWriter<std::fs::File>,
    file: Option<AtomicFile>,
}

impl Write for PendingLayoutBlob {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

fn to_io(error: OutputError) -> io::Error {
    io::Error::other(error)
}

impl BlobSink for LayoutWriter {
    type Pending = PendingLayoutBlob;

    fn begin_blob(&mut self) -> io::Result<PendingLayoutBlob> {
        let folder = self.root.join("blobs/sha256");
        // The destination is unknown until the digest is; it is set on commit.
        let mut file = AtomicFile::create_in(&folder, &folder).map_err(to_io)?;
        let handle = file.file().try_clone()?;
        Ok(PendingLayoutBlob {
            writer: BufWriter::with_capacity(256 * 1024, handle),
            file: Some(file),
        })
    }

    fn commit_blob(
        &mut self,
        mut pending: PendingLayoutBlob,
        digest: &Digest,
        size: u64,
    ) -> io::Result<()> {
        pending.writer.flush()?;
        let file = pending
            .file
            .take()
            .ok_or_else(|| io::Error::other("blob committed twice"))?;
        let destination = self.blob_path(digest);
        if self.already_holds(digest, size) {
            // Already present (a repeated layer, or a layout we are adding to).
            return Ok(());
        }
        file.retarget(destination).commit().map_err(to_io)?;
        self.written.insert(*digest);
        Ok(())
    }

    fn put_blob(&mut self, digest: &Digest, bytes: &[u8]) -> io::Result<()> {
        let destination = self.blob_path(digest);
        if self.already_holds(digest, bytes.len() as u64) {
            return Ok(());
        }
        crate::output::write_atomic(&destination, bytes).map_err(to_io)?;
        self.written.insert(*digest);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(digest: &[u8]) -> LayoutEntry {
        let mut descriptor = Descriptor::new(
            media_type::OCI_MANIFEST,
            Digest::of(digest),
            digest.len() as u64,
        );
        descriptor.artifact_type = Some(media_type::SPDX_JSON.to_owned());
        descriptor.annotations.insert(
            annotation::CREATED.to_owned(),
            "1970-01-01T00:00:01Z".to_owned(),
        );
        LayoutEntry {
            descriptor,
            name: None,
            ref_name: None,
            images: Vec::new(),
            platform_tags: Vec::new(),
        }
    }

    #[test]
    fn referrer_entries_are_unnamed_and_listed_once() {
        let image = LayoutEntry {
            descriptor: Descriptor::new(media_type::OCI_MANIFEST, Digest::of(b"image"), 5),
            name: Some("app:1".parse().unwrap()),
            ref_name: None,
            images: Vec::new(),
            platform_tags: Vec::new(),
        };
        let first = index_for(&[image.clone(), artifact(b"sbom")], None);
        assert_eq!(first.manifests.len(), 2);
        assert!(!is_artifact_entry(&first.manifests[0]));
        assert!(is_artifact_entry(&first.manifests[1]));
        // Written again into the same layout: still one image and one referrer.
        let again = index_for(&[image, artifact(b"sbom")], Some(first));
        assert_eq!(again.manifests.len(), 2);
        // Another referrer is added beside it.
        let more = index_for(&[artifact(b"another sbom")], Some(again));
        assert_eq!(more.manifests.len(), 3);
    }
}
