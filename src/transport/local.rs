//! An OCI layout folder, an OCI archive or a docker-archive as a [`BlobSource`]: the images at
//! its top, picking one by name, the referrers it keeps beside them, and the manifest an
//! older docker-archive implies.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::Path;

use super::{BlobSource, TransportError, check};
use crate::oci::compression::Decompressor;
use crate::oci::digest::{Digest, HashingWriter};
use crate::oci::json::to_canonical_vec;
use crate::oci::layout::{
    REFERRER_CANDIDATE_LIMIT, REFERRER_SIZE_LIMIT, is_artifact_entry, referrer_descriptor,
};
use crate::oci::reader::{ImageNames, ImageReader, ReaderError};
use crate::oci::reference::Reference;
use crate::oci::spec::{Descriptor, Manifest, media_type};

/// An image folder or archive as a blob source.
pub struct LocalSource {
    pub source: ImageReader,
    location: String,
    /// Documents kiln wrote for an older docker-archive, by digest.
    synthesized: HashMap<Digest, Vec<u8>>,
    /// Files holding blobs that are not at `blobs/sha256/<hex>`, by digest.
    files: HashMap<Digest, String>,
}

impl LocalSource {
    pub fn open(path: &Path, location: String) -> Result<Self, TransportError> {
        Ok(LocalSource {
            source: ImageReader::open(path)?,
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
                            .map_err(|source| ReaderError::ReadEntry {
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
                        ReaderError::ReadEntry {
                            path: self.source.path().to_owned(),
                            entry: layer.clone(),
                            source,
                        }
                    })?;
                }
                let (_, digest, written) = hashing.finish();
                if written != size {
                    return Err(ReaderError::Truncated {
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
    /// The referrers the layout or archive holds for `subjects`, as the referrers API would
    /// list them: every small blob under `blobs/sha256/` that is a manifest or index naming
    /// one of `subjects` as its `subject` (how kiln stores an SBOM, see `oci::layout`), and
    /// the `index.json` entries of such manifests (how kiln listed them before, and ORAS
    /// does), each once, listed ones first. A docker-archive without `index.json` has none.
    pub fn referrers(&self, subjects: &[Digest]) -> Result<Vec<Descriptor>, TransportError> {
        let Some(entries) = self.source.index_entries()? else {
            return Ok(Vec::new());
        };
        let mut referrers: Vec<Descriptor> = Vec::new();
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
        let candidates = self.source.small_blobs(REFERRER_SIZE_LIMIT)?;
        if candidates.len() > REFERRER_CANDIDATE_LIMIT {
            return Err(TransportError::Invalid {
                location: self.location.clone(),
                message: format!(
                    "it holds {} blobs of {} bytes or less; kiln looks for referrers (an SBOM) \
                     among at most {REFERRER_CANDIDATE_LIMIT}",
                    candidates.len(),
                    REFERRER_SIZE_LIMIT
                ),
            });
        }
        for (digest, size) in candidates {
            if subjects.contains(&digest) || referrers.iter().any(|known| known.digest == digest) {
                continue;
            }
            // Read unchecked first: most candidates are configs and small layers, which name
            // no subject and need not be hashed. One that names a subject here is checked
            // against its file name before it counts.
            let name = digest.blob_path();
            let bytes = self.source.read_document(&name)?;
            let Some((subject, descriptor)) = referrer_descriptor(digest, &bytes) else {
                continue;
            };
            if !subjects.contains(&subject) {
                continue;
            }
            check(
                &self.location,
                "referrer",
                &Descriptor::new(&descriptor.media_type, digest, size),
                &bytes,
            )?;
            referrers.push(descriptor);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::layout::{INDEX_FILE, OCI_LAYOUT_CONTENT, OCI_LAYOUT_FILE};
    use crate::sbom::artifact_manifest;

    /// The image of [`layout`], with no layers: its config, its manifest and the manifest's
    /// descriptor (which a test needs before the layout exists, as its referrers' subject).
    fn image() -> (Vec<u8>, Vec<u8>, Descriptor) {
        let config =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type::OCI_MANIFEST,
            "config": Descriptor::new(media_type::OCI_CONFIG, Digest::of(config), config.len() as u64),
            "layers": [],
        }))
        .unwrap();
        let descriptor = Descriptor::new(
            media_type::OCI_MANIFEST,
            Digest::of(&manifest),
            manifest.len() as u64,
        );
        (config.to_vec(), manifest, descriptor)
    }

    /// A layout folder with one image, the blobs `extra` and `index.json` listing the image
    /// and `listed`; returns the folder and the image manifest's descriptor.
    fn layout(
        extra: &[Vec<u8>],
        listed: &[Descriptor],
    ) -> (tempfile::TempDir, Descriptor, Vec<(Digest, Vec<u8>)>) {
        let folder = tempfile::tempdir().unwrap();
        let blobs = folder.path().join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let (config, manifest, image) = image();
        let mut written = Vec::new();
        for bytes in [config, manifest].iter().chain(extra) {
            let digest = Digest::of(bytes);
            std::fs::write(blobs.join(digest.hex()), bytes).unwrap();
            written.push((digest, bytes.clone()));
        }
        let mut entries = vec![image.clone()];
        entries.extend_from_slice(listed);
        let index = serde_json::json!({"schemaVersion": 2, "manifests": entries});
        std::fs::write(
            folder.path().join(INDEX_FILE),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
        std::fs::write(folder.path().join(OCI_LAYOUT_FILE), OCI_LAYOUT_CONTENT).unwrap();
        (folder, image, written)
    }

    fn referrers_of(path: &Path, image: &Descriptor) -> Result<Vec<Descriptor>, TransportError> {
        LocalSource::open(path, path.display().to_string())?.referrers(&[image.digest])
    }

    /// The same layout as one tar (an OCI archive).
    fn as_archive(folder: &Path) -> tempfile::NamedTempFile {
        let archive = tempfile::NamedTempFile::new().unwrap();
        let mut builder = tar::Builder::new(archive.reopen().unwrap());
        builder.append_dir_all(".", folder).unwrap();
        builder.into_inner().unwrap();
        archive
    }

    /// The search finds the SBOM stored beside the image (unlisted) and the one an older
    /// kiln listed in `index.json`, each once; it passes over a referrer of another image, a
    /// small JSON blob and a small gzip blob that are no referrers, and a referrer larger than
    /// the limit; a folder and an archive of it agree.
    #[test]
    fn referrers_are_found_by_their_subject() {
        let (_, _, image) = image();
        let other = Descriptor::new(media_type::OCI_MANIFEST, Digest::of(b"another image"), 13);
        let (stored, stored_descriptor) =
            artifact_manifest(&image, b"{\"sbom\":1}", "1970-01-01T00:00:01Z").unwrap();
        let (listed, listed_descriptor) =
            artifact_manifest(&image, b"{\"sbom\":2}", "1970-01-01T00:00:02Z").unwrap();
        let (foreign, _) =
            artifact_manifest(&other, b"{\"sbom\":3}", "1970-01-01T00:00:01Z").unwrap();
        let large_created = "x".repeat(REFERRER_SIZE_LIMIT as usize);
        let (large, _) = artifact_manifest(&image, b"{\"sbom\":4}", &large_created).unwrap();
        assert!(large.len() as u64 > REFERRER_SIZE_LIMIT);
        let unrelated_json = br#"{"subject":"not a descriptor","schemaVersion":2}"#.to_vec();
        let gzip = vec![
            0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let (folder, found_image, _) = layout(
            &[stored, listed, foreign, large, unrelated_json, gzip],
            std::slice::from_ref(&listed_descriptor),
        );
        assert_eq!(found_image, image);

        let expected = vec![listed_descriptor, stored_descriptor];
        assert_eq!(referrers_of(folder.path(), &image).unwrap(), expected);
        let archive = as_archive(folder.path());
        assert_eq!(referrers_of(archive.path(), &image).unwrap(), expected);
        // The image is no referrer of itself, and another image's referrers are its own.
        assert_eq!(referrers_of(folder.path(), &other).unwrap().len(), 1);
    }

    /// A blob that reads as a referrer of the image but does not hash to its file name is an
    /// error naming it, not an SBOM.
    #[test]
    fn a_referrer_that_is_not_its_digest_is_refused() {
        let (folder, image, _) = layout(&[], &[]);
        let (bytes, descriptor) =
            artifact_manifest(&image, b"{\"sbom\":1}", "1970-01-01T00:00:01Z").unwrap();
        let wrong = Digest::of(b"something else");
        std::fs::write(folder.path().join(wrong.blob_path()), &bytes).unwrap();
        let error = referrers_of(folder.path(), &image).unwrap_err().to_string();
        assert!(
            error.contains(&wrong.to_string()) && error.contains("does not match"),
            "{error}"
        );
        assert_ne!(descriptor.digest, wrong);
    }
}
