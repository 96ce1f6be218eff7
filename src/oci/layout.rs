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
//! Referrers (an image's SBOM, see `sbom`) are stored in `blobs/` and **not listed** in
//! `index.json`: the artifact manifest names the image manifest as its `subject` (OCI 1.1),
//! and that field alone makes it findable ([`referrer_descriptor`], searched for by
//! `transport::LocalSource::referrers`). For a multi-platform image there is one per platform
//! manifest (inside the index the named entry points to). So `index.json` holds one entry per
//! image, with its names, and the image's digest does not depend on its SBOMs. Why this and
//! not the alternatives:
//!
//! - skopeo and podman (containers/image) read `oci:DIR` and `oci-archive:PATH` without a ref
//!   only when `index.json` has exactly one entry ("more than one image in oci, choose an
//!   image" otherwise). Listing referrers there, as ORAS's `oci.Store` does (untagged
//!   entries), as image-spec's proposed `org.opencontainers.image.referrer.subject` entries
//!   would, and as kiln did before (unnamed entries with an `artifactType`; still read, see
//!   [`is_artifact_entry`]), breaks that.
//! - BuildKit puts attestation manifests (platform `unknown/unknown`) inside the image's
//!   index: the image's digest would depend on its SBOM, a single-platform image would become
//!   an index, and umoci, which takes every manifest an entry reaches, would find the tag
//!   ambiguous.
//! - The image-layout spec allows blobs that no `index.json` entry reaches. The price: a tool
//!   that walks only from `index.json` neither sees nor carries the SBOM (`skopeo copy`,
//!   `oras cp`, `oras discover --oci-layout`), and a garbage collection of the layout
//!   (`umoci gc`) deletes it. `kiln sbom`, `kiln push` and `kiln copy` find it.
//!
//! Pinned for the search: a referrer is a blob under `blobs/sha256/` of at most
//! [`REFERRER_SIZE_LIMIT`] bytes that parses as an OCI image manifest or index (as its
//! `mediaType` says) of schema version 2 with a `subject`; its descriptor is what the
//! referrers API would list (`artifactType`, else a manifest's config media type, and the
//! document's annotations). A reader looks at no more than [`REFERRER_CANDIDATE_LIMIT`] such
//! small blobs and refuses a layout with more, rather than miss an SBOM silently.

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
                // An unnamed entry (an image copied without a name) is listed once; a named
                // entry for the same manifest stays.
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

/// Whether an `index.json` entry is an artifact listed beside an image (a referrer such as
/// the SBOM, as kiln listed them before referrers left `index.json`, and as ORAS lists them),
/// not an image: it has an `artifactType` and no name.
pub fn is_artifact_entry(descriptor: &Descriptor) -> bool {
    descriptor.artifact_type.is_some() && !is_named(descriptor)
}

/// The largest blob read as a possible referrer. kiln's SBOM artifact manifest is about
/// 650 bytes, a cosign signature's or an attestation's a few KiB; the limit keeps the search
/// from reading layers.
pub const REFERRER_SIZE_LIMIT: u64 = 64 << 10;

/// The most blobs of at most [`REFERRER_SIZE_LIMIT`] bytes a search for referrers reads: a
/// layout of a thousand images (a config and a manifest or two each) stays well inside it.
pub const REFERRER_CANDIDATE_LIMIT: usize = 10_000;

/// What a manifest or index must hold to be a referrer; every other field is ignored.
#[derive(serde::Deserialize)]
struct ReferrerFields {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    #[serde(rename = "artifactType")]
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    subject: Option<Descriptor>,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

/// The blob `bytes` (stored as `digest`) read as a referrer: the digest of its subject, and
/// its descriptor as the referrers API lists it (image-spec v1.1: `artifactType`, else the
/// config's media type for a manifest; the document's annotations). `None` for anything
/// else: not JSON, not an OCI manifest or index (Docker's types have no `subject`), another
/// schema version, or no subject.
pub fn referrer_descriptor(digest: Digest, bytes: &[u8]) -> Option<(Digest, Descriptor)> {
    if !bytes.trim_ascii_start().starts_with(b"{") {
        return None;
    }
    let fields: ReferrerFields = serde_json::from_slice(bytes).ok()?;
    let media_type = fields.media_type?;
    let is_manifest = media_type == media_type::OCI_MANIFEST;
    if fields.schema_version != 2 || !(is_manifest || media_type == media_type::OCI_INDEX) {
        return None;
    }
    let subject = fields.subject?;
    let mut descriptor = Descriptor::new(&media_type, digest, bytes.len() as u64);
    descriptor.artifact_type = fields.artifact_type.or_else(|| {
        fields
            .config
            .filter(|_| is_manifest)
            .map(|config| config.media_type)
    });
    descriptor.annotations = fields.annotations;
    Some((subject.digest, descriptor))
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

    /// What the search for referrers takes as one, and what it leaves: named cases.
    #[test]
    fn referrer_descriptor_reads_manifests_and_indexes_with_a_subject() {
        let subject = Descriptor::new(media_type::OCI_MANIFEST, Digest::of(b"image"), 5);
        let subject_json = serde_json::to_value(&subject).unwrap();
        let empty = serde_json::json!({"mediaType": media_type::OCI_EMPTY, "digest": Digest::of(b"{}").to_string(), "size": 2});
        let cases: Vec<(&str, serde_json::Value, Option<Option<&str>>)> = vec![
            (
                "an artifact manifest: its artifactType",
                serde_json::json!({"schemaVersion": 2, "mediaType": media_type::OCI_MANIFEST,
                    "artifactType": "application/spdx+json", "config": empty, "layers": [],
                    "subject": subject_json, "annotations": {"a": "b"}}),
                Some(Some("application/spdx+json")),
            ),
            (
                "a manifest without artifactType: its config's media type",
                serde_json::json!({"schemaVersion": 2, "mediaType": media_type::OCI_MANIFEST,
                    "config": {"mediaType": "application/vnd.example.sig", "digest": Digest::of(b"c").to_string(), "size": 1},
                    "layers": [], "subject": subject_json}),
                Some(Some("application/vnd.example.sig")),
            ),
            (
                "an index with a subject",
                serde_json::json!({"schemaVersion": 2, "mediaType": media_type::OCI_INDEX,
                    "manifests": [], "subject": subject_json}),
                Some(None),
            ),
            (
                "no subject: an image, not a referrer",
                serde_json::json!({"schemaVersion": 2, "mediaType": media_type::OCI_MANIFEST,
                    "config": empty, "layers": []}),
                None,
            ),
            (
                "no mediaType",
                serde_json::json!({"schemaVersion": 2, "config": empty, "layers": [],
                    "subject": subject_json}),
                None,
            ),
            (
                "a Docker manifest",
                serde_json::json!({"schemaVersion": 2, "mediaType": media_type::DOCKER_MANIFEST,
                    "config": empty, "layers": [], "subject": subject_json}),
                None,
            ),
            (
                "another schema version",
                serde_json::json!({"schemaVersion": 3, "mediaType": media_type::OCI_MANIFEST,
                    "config": empty, "layers": [], "subject": subject_json}),
                None,
            ),
            (
                "an image config",
                serde_json::json!({"architecture": "amd64", "os": "linux"}),
                None,
            ),
        ];
        for (name, document, expected) in cases {
            let bytes = serde_json::to_vec(&document).unwrap();
            let digest = Digest::of(&bytes);
            let found = referrer_descriptor(digest, &bytes);
            match expected {
                None => assert_eq!(found, None, "{name}"),
                Some(artifact_type) => {
                    let (found_subject, descriptor) = found.expect(name);
                    assert_eq!(found_subject, subject.digest, "{name}");
                    assert_eq!(descriptor.digest, digest, "{name}");
                    assert_eq!(descriptor.size, bytes.len() as u64, "{name}");
                    assert_eq!(descriptor.media_type, document["mediaType"], "{name}");
                    assert_eq!(descriptor.artifact_type.as_deref(), artifact_type, "{name}");
                    assert_eq!(
                        serde_json::to_value(&descriptor.annotations).unwrap(),
                        document
                            .get("annotations")
                            .cloned()
                            .unwrap_or(serde_json::json!({})),
                        "{name}"
                    );
                }
            }
        }
        for not_json in [&b"\x1f\x8b\x08\x00"[..], b"", b"  [1]", b"{"] {
            assert_eq!(referrer_descriptor(Digest::of(not_json), not_json), None);
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
