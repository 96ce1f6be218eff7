//! The layer cache: compressed layers of the images in the store, found again by the tar they
//! compress, so an image rebuilt around an unchanged layer (kiln's static base, a folder of
//! assets, another platform's image of the same files) copies the blob instead of compressing
//! it again. Compression depends on the tar alone (`oci::compression`), so the bytes are the
//! ones a fresh compression would give.
//!
//! Layout (under the store root, `v1/`):
//!
//! ```text
//! layers/<scheme>/<diff_id hex>/<image hash>.json   {"digest","image","size"}
//! ```
//!
//! A record says: the image output `image` (a store basename, whose hash names the record)
//! holds the blob `digest` of `size` bytes, which is `<scheme>` (`Compression::cache_scheme`:
//! the compression and its pinned version, e.g. `gzip-libdeflate1.26-5-256k`) applied to the
//! tar whose sha256 is `diff_id`. The blob itself is not copied anywhere: it stays in the
//! image archive, which the store published whole, hashed and read-only, so the cache costs
//! a few hundred bytes per layer and no second write of any blob.
//!
//! Safety, as for outputs (`store`):
//! - a record is written under `tmp/` and renamed into place, and only after its image was
//!   published; a crash leaves no record, or a whole one, never a part;
//! - a record is only a hint: before a byte is used, the blob is read from the image and
//!   checked against the record's size and digest. One that does not match (a corrupt or
//!   truncated store, a record of an image since removed) is refused, said on the status
//!   line, its record removed, and the layer compressed again; the copy is hashed a second
//!   time as it is written (`oci::layer::copy_cached`);
//! - two kilns may write the same record at once: the same bytes, renamed over each other;
//! - builds read records under the gc lock's shared side, `kiln gc` prunes them under its
//!   exclusive side, so no record or image disappears under a build.
//!
//! `kiln gc` ([`Store::prune_layer_cache`], after it removed outputs) keeps a record only
//! while its image is in the store, and drops every record of a scheme kiln no longer writes:
//! the cache never holds more than the store's images hold, and goes with them.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Store, StoreError, StoreName, remove_tree};
use crate::diagnostic::PathError;
use crate::oci::compression::Compression;
use crate::oci::digest::{Digest, HashingWriter};
use crate::oci::layer::{LayerCache, LayerSummary};
use crate::oci::reader::ImageReader;
use crate::output::AtomicFile;

/// The folder under the store root.
const FOLDER: &str = "layers";
/// Records are a few hundred bytes; anything larger is not one.
const RECORD_LIMIT: u64 = 4096;

/// One kept layer: see the module documentation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct LayerRecord {
    digest: Digest,
    image: String,
    size: u64,
}

/// The store's layer cache, as [`oci::image`](crate::oci::image) uses it. Refusals are said
/// through `status`.
pub struct StoreLayerCache<'a> {
    store: &'a Store,
    status: &'a dyn Fn(&str),
}

impl Store {
    /// The layer cache of this store; `status` hears of kept blobs that were refused.
    pub fn layer_cache<'a>(&'a self, status: &'a dyn Fn(&str)) -> StoreLayerCache<'a> {
        StoreLayerCache {
            store: self,
            status,
        }
    }

    fn layer_folder(&self, scheme: &str, diff_id: &Digest) -> PathBuf {
        self.root.join(FOLDER).join(scheme).join(diff_id.hex())
    }

    /// Record that the published image output `image` holds the compressed `layers` (the
    /// uncompressed ones are skipped: they are their tar). Returns how many were recorded.
    pub fn record_layers(
        &self,
        image: &StoreName,
        layers: &[LayerSummary],
    ) -> Result<usize, StoreError> {
        let tmp = self.root.join("tmp");
        let mut recorded = 0;
        for layer in layers {
            let Some(scheme) = layer.compression.cache_scheme() else {
                continue;
            };
            let folder = self.layer_folder(scheme, &layer.diff_id);
            std::fs::create_dir_all(&folder).map_err(PathError::write(&folder))?;
            let path = folder.join(format!("{}.json", image.hash()));
            let record = LayerRecord {
                digest: layer.digest,
                image: image.basename(),
                size: layer.size,
            };
            let bytes = crate::oci::json::to_canonical_vec(&record)
                .map_err(|error| PathError::write(&path)(io::Error::other(error)))?;
            let mut file = AtomicFile::create_in(&tmp, &path)?;
            file.file()
                .write_all(&bytes)
                .map_err(PathError::write(&path))?;
            file.commit()?;
            recorded += 1;
        }
        Ok(recorded)
    }

    /// For `kiln gc`, holding the gc lock exclusively, after it removed outputs: remove every
    /// record whose image is no longer in the store (or that is not a record), every record
    /// of a scheme kiln no longer writes, and the folders left empty. Returns how many files
    /// went.
    pub fn prune_layer_cache(&self) -> Result<usize, StoreError> {
        let root = self.root.join(FOLDER);
        let schemes = match std::fs::read_dir(&root) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(error) => return Err(PathError::walk(&root)(error).into()),
        };
        let current: Vec<&str> = [Compression::Gzip, Compression::Zstd, Compression::None]
            .into_iter()
            .filter_map(Compression::cache_scheme)
            .collect();
        let mut removed = 0;
        for scheme in schemes {
            let scheme = scheme.map_err(PathError::walk(&root))?.path();
            let is_current = scheme
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| current.contains(&name));
            if !is_current || !scheme.is_dir() {
                removed += count_files(&scheme);
                remove_tree(&scheme)?;
                continue;
            }
            for layer in std::fs::read_dir(&scheme).map_err(PathError::walk(&scheme))? {
                let layer = layer.map_err(PathError::walk(&scheme))?.path();
                if !layer.is_dir() {
                    removed += count_files(&layer);
                    remove_tree(&layer)?;
                    continue;
                }
                let mut kept = 0;
                for record in std::fs::read_dir(&layer).map_err(PathError::walk(&layer))? {
                    let record = record.map_err(PathError::walk(&layer))?.path();
                    if self.live_record(&record).is_some() {
                        kept += 1;
                    } else {
                        removed += count_files(&record);
                        remove_tree(&record)?;
                    }
                }
                if kept == 0 {
                    std::fs::remove_dir(&layer).map_err(PathError::remove(&layer))?;
                }
            }
        }
        Ok(removed)
    }

    /// The record at `path` and its image's name, if it is a record whose image is in the
    /// store. Nothing is read from the image.
    fn live_record(&self, path: &Path) -> Option<(LayerRecord, StoreName)> {
        let metadata = std::fs::symlink_metadata(path).ok()?;
        if !metadata.is_file() || metadata.len() > RECORD_LIMIT {
            return None;
        }
        let record: LayerRecord = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        let name = StoreName::parse(&record.image)?;
        let stem = path.file_stem()?.to_str()?;
        let named = path
            .extension()
            .is_some_and(|extension| extension == "json")
            && stem == name.hash();
        (named && self.contains(&name)).then_some((record, name))
    }
}

fn count_files(path: &Path) -> usize {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => std::fs::read_dir(path)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|entry| count_files(&entry.path()))
                    .sum()
            })
            .unwrap_or(0),
        Ok(_) => 1,
        Err(_) => 0,
    }
}

impl StoreLayerCache<'_> {
    /// Check the blob `record` names in the image `name` against its size and digest; the
    /// reason when it does not match.
    fn check(&self, record: &LayerRecord, name: &StoreName) -> Result<ImageReader, String> {
        let image = ImageReader::open(&self.store.path(name))
            .map_err(|error| format!("cannot read the image: {error}"))?;
        let (mut reader, size) = image
            .open_file(&record.digest.blob_path())
            .map_err(|error| format!("no blob: {error}"))?;
        if size != record.size {
            return Err(format!("{size} bytes, the record says {}", record.size));
        }
        let mut hasher = HashingWriter::new(io::sink());
        copy(&mut reader, &mut hasher).map_err(|error| format!("cannot read the blob: {error}"))?;
        let (_, digest, hashed) = hasher.finish();
        if digest != record.digest || hashed != record.size {
            return Err(format!("its {hashed} bytes hash to {digest}"));
        }
        drop(reader);
        Ok(image)
    }
}

impl LayerCache for StoreLayerCache<'_> {
    fn copy_blob(
        &self,
        diff_id: &Digest,
        compression: Compression,
        out: &mut dyn Write,
    ) -> io::Result<Option<(Digest, u64)>> {
        let Some(scheme) = compression.cache_scheme() else {
            return Ok(None);
        };
        let folder = self.store.layer_folder(scheme, diff_id);
        // A cache that cannot be read is a miss: it never fails a build.
        let Ok(entries) = std::fs::read_dir(&folder) else {
            return Ok(None);
        };
        let mut records: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
        records.sort();
        for path in records {
            // Not a record, or its image is gone: forget it (another kiln may have first).
            let Some((record, name)) = self.store.live_record(&path) else {
                let _ = std::fs::remove_file(&path);
                continue;
            };
            match self.check(&record, &name) {
                Ok(image) => {
                    let (mut reader, _) = image
                        .open_file(&record.digest.blob_path())
                        .map_err(io::Error::other)?;
                    copy(&mut reader, out)?;
                    return Ok(Some((record.digest, record.size)));
                }
                Err(reason) => {
                    (self.status)(&format!(
                        "the kept {compression} layer {} of image {} is refused ({reason}): \
                         compressing it again; `kiln store verify` checks the store",
                        record.digest,
                        name.basename()
                    ));
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        Ok(None)
    }
}

/// Copy with a buffer sized for layers.
fn copy(reader: &mut dyn Read, out: &mut dyn Write) -> io::Result<u64> {
    let mut buffer = vec![0u8; 256 * 1024];
    let mut copied = 0;
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => return Ok(copied),
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        out.write_all(&buffer[..read])?;
        copied += read as u64;
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::oci::archive::{ArchiveKind, ArchiveWriter};
    use crate::oci::image::{ImageRequest, RequestLayer, build_image_cached};
    use crate::oci::layer::{LayerOptions, write_layer};
    use crate::oci::spec::ContainerConfig;
    use crate::oci::tree::FileTree;
    use crate::store::{OutputKind, Recipe};

    /// An image of two layers: assets that stay, and a program of `version`.
    fn request(folder: &Path, version: &str) -> ImageRequest {
        std::fs::write(
            folder.join("asset"),
            b"assets that do not change ".repeat(5000),
        )
        .unwrap();
        let program = folder.join(format!("program-{version}"));
        std::fs::write(&program, format!("program {version}").repeat(99)).unwrap();
        let mut assets = FileTree::new();
        assets.add(&folder.join("asset"), "/srv/asset").unwrap();
        let mut programs = FileTree::new();
        programs.add(&program, "/bin/app").unwrap();
        let layer = |tree| RequestLayer {
            tree,
            created_by: "test".to_owned(),
            mtime: None,
        };
        ImageRequest {
            reference: "example.com/app:1".parse().unwrap(),
            platform: "linux/amd64".parse().unwrap(),
            created: "1970-01-01T00:00:01Z".to_owned(),
            mtime: 1,
            compression: Compression::Gzip,
            container: ContainerConfig::default(),
            layers: vec![layer(assets), layer(programs)],
            annotations: Default::default(),
            base: None,
        }
    }

    /// Write the archive of `request` at `path`, through `cache` if given.
    fn write_archive(
        path: &Path,
        request: &ImageRequest,
        cache: Option<&dyn LayerCache>,
    ) -> Vec<LayerSummary> {
        let file = std::fs::File::create(path).unwrap();
        let mut archive = ArchiveWriter::to_file(file, ArchiveKind::Docker, 1).unwrap();
        let image = build_image_cached(request, &mut archive, cache, &mut |_| {}).unwrap();
        archive.finish(&[image.layout_entry()]).unwrap();
        image.layers
    }

    /// Realise the image of `request` as the store output `name` (as the builder does: built
    /// through the store's cache, recorded once published); its layers and status lines.
    fn realise_image(
        store: &Store,
        name: &str,
        request: &ImageRequest,
    ) -> (PathBuf, Vec<LayerSummary>, Vec<String>) {
        let messages = RefCell::new(Vec::new());
        let status = |message: &str| messages.borrow_mut().push(message.to_owned());
        let cache = store.layer_cache(&status);
        let recipe = Recipe::new(
            OutputKind::Image,
            serde_json::json!({ "test": name }),
            &format!("{name}.tar"),
        );
        let mut layers = Vec::new();
        let realised = store
            .realise(
                &recipe,
                || {},
                |temp| {
                    layers = write_archive(temp, request, Some(&cache));
                    Ok::<_, StoreError>(temp.to_owned())
                },
            )
            .unwrap();
        assert!(realised.fresh);
        store.record_layers(recipe.name(), &layers).unwrap();
        (realised.path, layers, messages.into_inner())
    }

    fn reused(layers: &[LayerSummary]) -> Vec<bool> {
        layers.iter().map(|layer| layer.reused).collect()
    }

    fn records(store: &Store) -> Vec<String> {
        let mut found = Vec::new();
        let root = store.root().join(FOLDER);
        for path in walk(&root) {
            found.push(
                path.strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        found.sort();
        found
    }

    fn walk(path: &Path) -> Vec<PathBuf> {
        match std::fs::read_dir(path) {
            Ok(entries) => entries
                .flatten()
                .flat_map(|entry| {
                    if entry.path().is_dir() {
                        walk(&entry.path())
                    } else {
                        vec![entry.path()]
                    }
                })
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The same image without any cache, for comparing bytes.
    fn plain_bytes(folder: &Path, request: &ImageRequest) -> Vec<u8> {
        let path = folder.join("plain.tar");
        write_archive(&path, request, None);
        std::fs::read(path).unwrap()
    }

    #[test]
    fn an_unchanged_layer_is_not_compressed_again() {
        let home = tempfile::tempdir().unwrap();
        let files = tempfile::tempdir().unwrap();
        let store = Store::open_at(home.path()).unwrap();
        let (_, first, messages) = realise_image(&store, "one", &request(files.path(), "1"));
        assert_eq!(reused(&first), [false, false]);
        assert!(messages.is_empty(), "{messages:?}");
        assert_eq!(records(&store).len(), 2, "{:?}", records(&store));

        let second_request = request(files.path(), "2");
        let (path, second, messages) = realise_image(&store, "two", &second_request);
        assert_eq!(reused(&second), [true, false]);
        assert_eq!(second[0].digest, first[0].digest);
        assert!(messages.is_empty(), "{messages:?}");
        assert!(
            std::fs::read(&path).unwrap() == plain_bytes(files.path(), &second_request),
            "the cache changed the image's bytes"
        );
        // The assets layer is now kept by both images, each program layer by its own.
        assert_eq!(records(&store).len(), 4, "{:?}", records(&store));

        // Another compression is another layer.
        let mut zstd = request(files.path(), "3");
        zstd.compression = Compression::Zstd;
        let (_, third, _) = realise_image(&store, "three", &zstd);
        assert_eq!(reused(&third), [false, false]);
    }

    /// A kept blob whose bytes changed in the store (bit rot, a truncated file) is refused,
    /// said, forgotten and compressed again: the image is the same bytes as without a cache.
    #[test]
    fn a_corrupt_or_truncated_kept_blob_is_refused_and_compressed_again() {
        for damage in ["flipped byte", "truncated"] {
            let home = tempfile::tempdir().unwrap();
            let files = tempfile::tempdir().unwrap();
            let store = Store::open_at(home.path()).unwrap();
            let first_request = request(files.path(), "1");
            let (path, first, _) = realise_image(&store, "one", &first_request);

            // Find the assets blob in the image archive and damage it.
            let options = LayerOptions {
                compression: Compression::Gzip,
                mtime: 1,
                threads: 1,
            };
            let (_, blob) = write_layer(
                &first_request.layers[0].tree,
                &options,
                Vec::new(),
                &mut |_| {},
            )
            .unwrap();
            let mut bytes = std::fs::read(&path).unwrap();
            let offset = bytes
                .windows(blob.len())
                .position(|window| window == blob.as_slice())
                .unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            match damage {
                "flipped byte" => {
                    bytes[offset + blob.len() / 2] ^= 0x55;
                    std::fs::write(&path, &bytes).unwrap();
                }
                _ => {
                    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
                    file.set_len((offset + blob.len() / 2) as u64).unwrap();
                }
            }

            let second_request = request(files.path(), "2");
            let (second_path, second, messages) = realise_image(&store, "two", &second_request);
            assert_eq!(reused(&second), [false, false], "{damage}");
            assert_eq!(second[0].digest, first[0].digest, "{damage}");
            assert_eq!(messages.len(), 1, "{damage}: {messages:?}");
            assert!(
                messages[0].contains(&format!("layer {} of image", first[0].digest))
                    && messages[0].contains("is refused"),
                "{damage}: {messages:?}"
            );
            assert!(
                std::fs::read(&second_path).unwrap() == plain_bytes(files.path(), &second_request),
                "{damage}: the image differs from one made without the cache"
            );
            // The damaged image's records are gone for its refused layer; the new image's
            // copy serves the next build.
            let (_, third, messages) = realise_image(&store, "three", &request(files.path(), "3"));
            assert_eq!(reused(&third), [true, false], "{damage}");
            assert!(messages.is_empty(), "{damage}: {messages:?}");
        }
    }

    #[test]
    fn gc_keeps_records_only_while_their_image_is_in_the_store() {
        let home = tempfile::tempdir().unwrap();
        let files = tempfile::tempdir().unwrap();
        let store = Store::open_at(home.path()).unwrap();
        let (first_path, first, _) = realise_image(&store, "one", &request(files.path(), "1"));
        let (_, second, _) = realise_image(&store, "two", &request(files.path(), "2"));
        let layers = store.root().join(FOLDER);
        // An earlier scheme's records, junk, and an image removed from the store.
        let old = layers
            .join("gzip-zlib-rs-6-128k")
            .join(first[0].diff_id.hex());
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join("x.json"), b"{}").unwrap();
        let scheme = layers.join(Compression::Gzip.cache_scheme().unwrap());
        std::fs::write(scheme.join(first[1].diff_id.hex()).join("junk"), b"?").unwrap();
        remove_tree(&first_path).unwrap();
        assert_eq!(records(&store).len(), 6, "{:?}", records(&store));

        assert_eq!(store.prune_layer_cache().unwrap(), 4);
        let kept = records(&store);
        let second_name = kept
            .iter()
            .map(|record| record.rsplit('/').next().unwrap().to_owned())
            .collect::<std::collections::BTreeSet<_>>();
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert_eq!(second_name.len(), 1, "only the second image's: {kept:?}");
        assert!(!old.exists());
        assert!(!scheme.join(first[1].diff_id.hex()).exists());
        assert!(scheme.join(second[1].diff_id.hex()).is_dir());
        assert_eq!(store.prune_layer_cache().unwrap(), 0);
    }
}
