//! The layer cache: the compressed blobs of the images in the store, kept by the tar they
//! compress, so a layer is compressed once per machine, not once per push. kiln's images keep
//! their layers uncompressed (`transport::compress` says why); `kiln push` compresses them
//! through this cache, so pushing again, or pushing an image rebuilt around an unchanged layer
//! (kiln's static base, a folder of assets, another platform's copy of the same files), sends
//! a kept blob instead of compressing it again. Compression depends on the tar alone
//! (`oci::compression`), so a kept blob is the one a fresh compression would give.
//!
//! Layout (under the store root, `v1/`):
//!
//! ```text
//! layers/<scheme>/<diff_id hex>/blob                 the compressed bytes
//! layers/<scheme>/<diff_id hex>/<image hash>.json    {"digest","image","size"}
//! ```
//!
//! `blob` is `<scheme>` (`Compression::cache_scheme`: the compression and its pinned version,
//! e.g. `gzip-libdeflate1.26-5-256k`) applied to the tar whose sha256 is `diff_id`. A record
//! says: the image output `image` (a store basename, whose hash names the record) has that
//! layer, and its compressed blob is `digest` of `size` bytes. Records are what keep a blob:
//! one pushed from outside the store (an archive elsewhere) has none, serves no later push and
//! goes with the next `kiln gc`.
//!
//! Safety, as for outputs (`store`):
//! - the blob is written under `tmp/`, synced and renamed into place, then the record the same
//!   way; a crash leaves no blob or a whole one, no record or a whole one, never a part;
//! - the tar is hashed while it is compressed and must be the layer's `diff_id`, so a blob is
//!   only ever filed under the tar it was made of;
//! - a record is only a hint: before a kept blob is used it is hashed and checked against the
//!   record's size and digest. One that does not match (a corrupt or truncated store) is
//!   refused, said on the status line, and compressed again;
//! - two kilns may write the same blob or record at once: the same bytes, renamed over each
//!   other;
//! - pushes use the cache under the gc lock's shared side, `kiln gc` prunes it under its
//!   exclusive side, so no blob disappears under a push.
//!
//! `kiln gc` ([`Store::prune_layer_cache`], after it removed outputs) keeps a record only
//! while its image is in the store, a blob only while it has a record, and drops every
//! scheme kiln no longer writes: the cache never holds more than the store's images hold.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Store, StoreError, StoreName, remove_tree};
use crate::diagnostic::PathError;
use crate::oci::compression::{Compression, Compressor, compression_threads};
use crate::oci::digest::{Digest, HashingReader, HashingWriter};
use crate::oci::spec::Descriptor;
use crate::output::AtomicFile;
use crate::transport::compress::{CompressedBlob, LayerCompressor};
use crate::transport::{BlobSource, TransportError};

/// The folder under the store root.
const FOLDER: &str = "layers";
/// The compressed bytes in a layer's folder.
const BLOB: &str = "blob";
/// Records are a few hundred bytes; anything larger is not one.
const RECORD_LIMIT: u64 = 4096;

/// One kept layer: see the module documentation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct LayerRecord {
    digest: Digest,
    image: String,
    size: u64,
}

/// The store's layer cache, as `transport::compress` uses it for the image output `image`
/// (none when the image is not in the store). Refusals are said through `status`.
pub struct StoreLayerCache<'a> {
    store: &'a Store,
    image: Option<StoreName>,
    status: &'a (dyn Fn(&str) + Sync),
}

impl Store {
    /// The layer cache of this store for pushing `image`; `status` hears of kept blobs that
    /// were refused.
    pub fn layer_cache<'a>(
        &'a self,
        image: Option<StoreName>,
        status: &'a (dyn Fn(&str) + Sync),
    ) -> StoreLayerCache<'a> {
        StoreLayerCache {
            store: self,
            image,
            status,
        }
    }

    /// The image output `path` is, if it is one in this store (`result` links to one).
    pub fn output_at(&self, path: &Path) -> Option<StoreName> {
        let path = std::fs::canonicalize(path).ok()?;
        let store = std::fs::canonicalize(self.store_dir()).ok()?;
        if path.parent()? != store {
            return None;
        }
        let name = StoreName::parse(path.file_name()?.to_str()?)?;
        self.contains(&name).then_some(name)
    }

    fn layer_folder(&self, scheme: &str, diff_id: &Digest) -> PathBuf {
        self.root.join(FOLDER).join(scheme).join(diff_id.hex())
    }

    /// For `kiln gc`, holding the gc lock exclusively, after it removed outputs: remove every
    /// record whose image is no longer in the store (or that is not a record), every blob
    /// left without a record, every scheme kiln no longer writes, and the folders left
    /// empty. Returns how many files went.
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
                    if record.file_name().is_some_and(|name| name == BLOB) {
                        continue;
                    }
                    if self.live_record(&record).is_some() {
                        kept += 1;
                    } else {
                        removed += count_files(&record);
                        remove_tree(&record)?;
                    }
                }
                if kept == 0 {
                    removed += count_files(&layer);
                    remove_tree(&layer)?;
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

    /// Write the record that the image `image` has the layer kept in `folder`.
    fn write_record(
        &self,
        folder: &Path,
        image: &StoreName,
        digest: Digest,
        size: u64,
    ) -> Result<(), TransportError> {
        let path = folder.join(format!("{}.json", image.hash()));
        let record = LayerRecord {
            digest,
            image: image.basename(),
            size,
        };
        let bytes = crate::oci::json::to_canonical_vec(&record)
            .map_err(|error| PathError::write(&path)(io::Error::other(error)))?;
        let mut file = AtomicFile::create_in(&self.root.join("tmp"), &path)?;
        file.file()
            .write_all(&bytes)
            .map_err(PathError::write(&path))?;
        Ok(file.commit()?)
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
    /// The kept blob in `folder`, if a record vouches for it and it hashes to what the record
    /// says. A blob that does not is refused on the status line (and made again).
    fn kept(&self, folder: &Path, compression: Compression) -> Option<(Digest, u64)> {
        let mut records: Vec<PathBuf> = std::fs::read_dir(folder)
            .ok()?
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.file_name().is_some_and(|name| name != BLOB))
            .collect();
        records.sort();
        let (record, _) = records
            .iter()
            .find_map(|path| self.store.live_record(path))?;
        let blob = folder.join(BLOB);
        match check_blob(&blob, &record) {
            Ok(()) => Some((record.digest, record.size)),
            Err(reason) if reason.kind() == io::ErrorKind::NotFound => None,
            Err(reason) => {
                (self.status)(&format!(
                    "the kept {compression} layer {} is refused ({reason}): compressing it \
                     again; `kiln store verify` checks the store",
                    record.digest,
                ));
                None
            }
        }
    }

    /// Compress `layer` from `source` into `folder`'s blob; its digest and size.
    fn make(
        &self,
        folder: &Path,
        compression: Compression,
        layer: &Descriptor,
        source: &dyn BlobSource,
    ) -> Result<(Digest, u64), TransportError> {
        std::fs::create_dir_all(folder).map_err(PathError::write(folder))?;
        let path = folder.join(BLOB);
        let mut file = AtomicFile::create_in(&self.store.root.join("tmp"), &path)?;
        let mut reader = HashingReader::new(source.open_blob(layer)?);
        let mut compressor = Compressor::new(
            compression,
            HashingWriter::new(io::BufWriter::with_capacity(256 * 1024, file.file())),
            compression_threads(),
        )
        .map_err(PathError::write(&path))?;
        copy(&mut reader, &mut compressor).map_err(|error| TransportError::Invalid {
            location: source.describe(),
            message: format!("cannot compress layer {}: {error}", layer.digest),
        })?;
        let hashing = compressor.finish().map_err(PathError::write(&path))?;
        let (mut buffered, digest, size) = hashing.finish();
        buffered.flush().map_err(PathError::write(&path))?;
        drop(buffered);
        let (_, diff_id, read) = reader.finish();
        if diff_id != layer.digest || read != layer.size {
            return Err(TransportError::Mismatch {
                location: source.describe(),
                what: "layer".to_owned(),
                digest: layer.digest,
                detail: format!("its {read} bytes hash to {diff_id}"),
            });
        }
        file.commit()?;
        Ok((digest, size))
    }
}

impl LayerCompressor for StoreLayerCache<'_> {
    fn compressed(
        &self,
        compression: Compression,
        layer: &Descriptor,
        source: &dyn BlobSource,
    ) -> Result<CompressedBlob, TransportError> {
        let scheme = compression
            .cache_scheme()
            .ok_or_else(|| TransportError::Invalid {
                location: source.describe(),
                message: format!("layer {} is not to be compressed", layer.digest),
            })?;
        let folder = self.store.layer_folder(scheme, &layer.digest);
        let (digest, size, reused) = match self.kept(&folder, compression) {
            Some((digest, size)) => (digest, size, true),
            None => {
                let (digest, size) = self.make(&folder, compression, layer, source)?;
                (digest, size, false)
            }
        };
        if let Some(image) = &self.image {
            // Without its record the blob serves this push and goes with the next gc.
            if let Err(error) = self.store.write_record(&folder, image, digest, size) {
                (self.status)(&format!(
                    "cannot keep the compressed layer {digest} for later pushes: {:#}",
                    anyhow::Error::from(error)
                ));
            }
        }
        Ok(CompressedBlob {
            digest,
            size,
            path: folder.join(BLOB),
            reused,
        })
    }
}

/// Check the kept blob at `path` against `record`'s size and digest.
fn check_blob(path: &Path, record: &LayerRecord) -> io::Result<()> {
    let mut file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    if size != record.size {
        return Err(io::Error::other(format!(
            "{size} bytes, the record says {}",
            record.size
        )));
    }
    let mut hasher = HashingWriter::new(io::sink());
    copy(&mut file, &mut hasher)?;
    let (_, digest, hashed) = hasher.finish();
    if digest != record.digest || hashed != record.size {
        return Err(io::Error::other(format!(
            "its {hashed} bytes hash to {digest}"
        )));
    }
    Ok(())
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
    use std::sync::Mutex;

    use super::*;
    use crate::oci::compression::Decompressor;
    use crate::oci::spec::media_type;
    use crate::store::{OutputKind, Recipe};

    /// One uncompressed layer in memory.
    struct Layer(Vec<u8>);

    impl Layer {
        fn descriptor(&self) -> Descriptor {
            Descriptor::new(
                media_type::OCI_LAYER_TAR,
                Digest::of(&self.0),
                self.0.len() as u64,
            )
        }
    }

    impl BlobSource for Layer {
        fn describe(&self) -> String {
            "memory".to_owned()
        }
        fn read_document(&self, _: &Descriptor) -> Result<Vec<u8>, TransportError> {
            unreachable!()
        }
        fn open_blob(&self, _: &Descriptor) -> Result<Box<dyn Read + Send + '_>, TransportError> {
            Ok(Box::new(self.0.as_slice()))
        }
    }

    fn layer() -> Layer {
        Layer(b"a layer's tar, more or less ".repeat(30_000))
    }

    /// An image output in `store`.
    fn image(store: &Store, name: &str) -> StoreName {
        let recipe = Recipe::new(
            OutputKind::Image,
            serde_json::json!({ "test": name }),
            &format!("{name}.tar"),
        );
        store
            .realise(
                &recipe,
                || {},
                |temp| {
                    std::fs::write(temp, name).unwrap();
                    Ok::<_, StoreError>(temp.to_owned())
                },
            )
            .unwrap();
        recipe.name().clone()
    }

    fn inflate(path: &Path) -> Vec<u8> {
        let mut bytes = Vec::new();
        Decompressor::new(std::fs::File::open(path).unwrap())
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        bytes
    }

    fn folder_files(store: &Store) -> Vec<String> {
        let root = store.root().join(FOLDER);
        let mut found = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(path) = stack.pop() {
            for entry in std::fs::read_dir(&path).into_iter().flatten().flatten() {
                if entry.path().is_dir() {
                    stack.push(entry.path());
                } else {
                    found.push(
                        entry
                            .path()
                            .strip_prefix(&root)
                            .unwrap()
                            .display()
                            .to_string(),
                    );
                }
            }
        }
        found.sort();
        found
    }

    #[test]
    fn a_layer_is_compressed_once_and_kept_while_its_image_is_in_the_store() {
        let home = tempfile::tempdir().unwrap();
        let store = Store::open_at(home.path()).unwrap();
        let said = Mutex::new(Vec::<String>::new());
        let status = |message: &str| said.lock().unwrap().push(message.to_owned());
        let one = image(&store, "one");
        let two = image(&store, "two");
        let layer = layer();
        for compression in [Compression::Gzip, Compression::Zstd] {
            let first = store
                .layer_cache(Some(one.clone()), &status)
                .compressed(compression, &layer.descriptor(), &layer)
                .unwrap();
            assert!(!first.reused);
            assert_eq!(inflate(&first.path), layer.0);
            let bytes = std::fs::read(&first.path).unwrap();
            assert_eq!(
                (Digest::of(&bytes), bytes.len() as u64),
                (first.digest, first.size)
            );
            // Another image with the same layer: the kept blob, and a record of its own.
            let second = store
                .layer_cache(Some(two.clone()), &status)
                .compressed(compression, &layer.descriptor(), &layer)
                .unwrap();
            assert!(second.reused);
            assert_eq!((second.digest, second.size), (first.digest, first.size));
        }
        assert!(
            said.lock().unwrap().is_empty(),
            "{:?}",
            said.lock().unwrap()
        );
        let hex = layer.descriptor().digest.hex();
        let gzip = Compression::Gzip.cache_scheme().unwrap();
        let zstd = Compression::Zstd.cache_scheme().unwrap();
        let kept = |scheme: &str| {
            [
                format!("{scheme}/{hex}/blob"),
                format!("{scheme}/{hex}/{}.json", one.hash()),
                format!("{scheme}/{hex}/{}.json", two.hash()),
            ]
        };
        let mut expected: Vec<String> = kept(gzip).into_iter().chain(kept(zstd)).collect();
        expected.sort();
        assert_eq!(folder_files(&store), expected);
        assert_eq!(store.prune_layer_cache().unwrap(), 0);

        // One image gone: its records go. Both gone: the blobs go too.
        remove_tree(&store.path(&one)).unwrap();
        assert_eq!(store.prune_layer_cache().unwrap(), 2);
        remove_tree(&store.path(&two)).unwrap();
        assert_eq!(store.prune_layer_cache().unwrap(), 4);
        assert!(folder_files(&store).is_empty());
    }

    #[test]
    fn a_corrupt_or_truncated_kept_blob_is_refused_and_compressed_again() {
        let home = tempfile::tempdir().unwrap();
        let store = Store::open_at(home.path()).unwrap();
        let one = image(&store, "one");
        let layer = layer();
        let said = Mutex::new(Vec::<String>::new());
        let status = |message: &str| said.lock().unwrap().push(message.to_owned());
        let cache = store.layer_cache(Some(one), &status);
        let good = cache
            .compressed(Compression::Gzip, &layer.descriptor(), &layer)
            .unwrap();
        let bytes = std::fs::read(&good.path).unwrap();
        let mut flipped = bytes.clone();
        flipped[100] ^= 1;
        for (damage, content) in [
            ("truncated", &bytes[..bytes.len() / 2]),
            ("flipped", &flipped[..]),
        ] {
            std::fs::write(&good.path, content).unwrap();
            let again = cache
                .compressed(Compression::Gzip, &layer.descriptor(), &layer)
                .unwrap();
            assert!(!again.reused, "{damage}");
            assert_eq!(again.digest, good.digest, "{damage}");
            assert_eq!(std::fs::read(&again.path).unwrap(), bytes, "{damage}");
            let message = said.lock().unwrap().pop().expect(damage);
            assert!(
                message.starts_with(&format!("the kept gzip layer {} is refused (", good.digest))
                    && message
                        .ends_with("): compressing it again; `kiln store verify` checks the store"),
                "{damage}: {message}"
            );
        }
    }

    /// A layer whose bytes are not its digest (a source that changed, or lied) is never kept.
    #[test]
    fn a_layer_that_does_not_hash_to_its_digest_is_refused() {
        let home = tempfile::tempdir().unwrap();
        let store = Store::open_at(home.path()).unwrap();
        let layer = layer();
        let mut descriptor = layer.descriptor();
        descriptor.digest = Digest::of(b"something else");
        let status = |_: &str| {};
        let error = store
            .layer_cache(None, &status)
            .compressed(Compression::Gzip, &descriptor, &layer)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&format!("layer {} does not match", descriptor.digest))
                && error.contains(&format!("hash to {}", layer.descriptor().digest)),
            "{error}"
        );
        let blob = store
            .layer_folder(
                Compression::Gzip.cache_scheme().unwrap(),
                &descriptor.digest,
            )
            .join(BLOB);
        assert!(!blob.exists());
    }

    /// Pushed from outside the store: compressed for this push, never reused, gone with gc.
    #[test]
    fn a_layer_of_no_image_in_the_store_is_not_kept() {
        let home = tempfile::tempdir().unwrap();
        let store = Store::open_at(home.path()).unwrap();
        let layer = layer();
        let status = |_: &str| {};
        let cache = store.layer_cache(None, &status);
        for _ in 0..2 {
            let blob = cache
                .compressed(Compression::Gzip, &layer.descriptor(), &layer)
                .unwrap();
            assert!(!blob.reused);
            assert_eq!(inflate(&blob.path), layer.0);
        }
        assert_eq!(store.prune_layer_cache().unwrap(), 1);
        assert!(folder_files(&store).is_empty());
    }

    #[test]
    fn outputs_are_found_by_path_and_nothing_else_is() {
        let home = tempfile::tempdir().unwrap();
        let store = Store::open_at(home.path()).unwrap();
        let one = image(&store, "one");
        let link = home.path().join("result");
        std::os::unix::fs::symlink(store.path(&one), &link).unwrap();
        assert_eq!(store.output_at(&link), Some(one.clone()));
        assert_eq!(store.output_at(&store.path(&one)), Some(one));
        assert_eq!(store.output_at(home.path()), None);
        std::fs::write(home.path().join("elsewhere.tar"), b"").unwrap();
        assert_eq!(store.output_at(&home.path().join("elsewhere.tar")), None);
    }
}
