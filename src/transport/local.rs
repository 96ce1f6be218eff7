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
use crate::oci::layout::is_artifact_entry;
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
