//! What an image holds and what it wastes.
//!
//! Each layer is read once, as stored: its compressed digest and size are checked against the
//! manifest (when there is one), its uncompressed digest against the config's `diff_id`, and
//! every entry is listed with a sha256 of its content.
//!
//! Waste is counted over stored copies of regular files (hard-link entries store nothing):
//! - a copy is *shadowed* when no path of the final filesystem reaches it: a later layer
//!   replaced or deleted (whiteout, opaque folder) its path and no hard link in its layer
//!   still points to it;
//! - among reachable copies, content stored more than once (same bytes, non-empty) wastes
//!   every copy but one, whether the copies sit in one layer or in several.
//!
//! `efficiency = 1 − wasted / stored`, with 1 (100%) for an image that stores nothing.

use std::collections::{BTreeMap, HashMap};
use std::io;

use serde::Serialize;

use super::compression::{Compression, Decompressor};
use super::digest::{Digest, HashingReader, HashingWriter};
use super::reader::{FoundImage, FoundLayer, ImageReader, ReaderError, relative_path};
use super::tar::{TarReadError, TarReader};

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    Source(#[from] ReaderError),
    #[error("{path}: layer {layer} cannot be read: {source}")]
    Read {
        path: String,
        layer: String,
        #[source]
        source: io::Error,
    },
    #[error("{path}: layer {layer} does not match: {what}")]
    Mismatch {
        path: String,
        layer: String,
        what: String,
    },
    #[error("{path}: layer {layer} has an entry `{entry}` that escapes the root")]
    EntryEscapes {
        path: String,
        layer: String,
        entry: String,
    },
    #[error("{path}: layer {layer} has a hard link `{entry}` to `{target}`, outside the root")]
    LinkEscapes {
        path: String,
        layer: String,
        entry: String,
        target: String,
    },
    #[error("{path}: layer {layer} is not a valid tar")]
    Tar {
        path: String,
        layer: String,
        #[source]
        source: super::tar::TarReadError,
    },
    #[error(
        "{path}: the images list more than {MAX_ENTRIES} entries in all; kiln inspect stops there"
    )]
    TooManyEntries { path: String },
}

/// How many layer entries one `inspect` lists in all: about half a gigabyte of records.
pub const MAX_ENTRIES: usize = 4 << 20;

/// The kind of a layer entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileKind {
    File,
    Directory,
    Symlink,
    HardLink,
    CharDevice,
    BlockDevice,
    Fifo,
    Other,
}

impl FileKind {
    fn mode_letter(self) -> char {
        match self {
            FileKind::File => '-',
            FileKind::Directory => 'd',
            FileKind::Symlink => 'l',
            FileKind::HardLink => 'h',
            FileKind::CharDevice => 'c',
            FileKind::BlockDevice => 'b',
            FileKind::Fifo => 'p',
            FileKind::Other => '?',
        }
    }
}

/// One entry of a layer.
#[derive(Clone, Debug, Serialize)]
pub struct FileRecord {
    /// Path from the image root, with a leading `/`.
    pub path: String,
    pub kind: FileKind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_target: Option<String>,
    /// sha256 of a regular file's content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_digest: Option<Digest>,
}

impl FileRecord {
    /// `-rwxr-xr-x`-style mode, as `ls -l` prints it: setuid and setgid show as `s` in the
    /// owner's or group's execute place (`S` without execute), sticky as `t` in the others'
    /// (`T` without execute), so /tmp reads `drwxrwxrwt`.
    pub fn mode_string(&self) -> String {
        let mut text = String::with_capacity(10);
        text.push(self.kind.mode_letter());
        // (shift of the rwx triple, the special bit shown in its x place, its letter)
        for (shift, special, special_letter) in
            [(6, 0o4000, 's'), (3, 0o2000, 's'), (0, 0o1000, 't')]
        {
            let bit = |offset: u32| self.mode >> (shift + offset) & 1 == 1;
            text.push(if bit(2) { 'r' } else { '-' });
            text.push(if bit(1) { 'w' } else { '-' });
            text.push(match (bit(0), self.mode & special != 0) {
                (true, true) => special_letter,
                (false, true) => special_letter.to_ascii_uppercase(),
                (true, false) => 'x',
                (false, false) => '-',
            });
        }
        text
    }

    fn is_whiteout(&self) -> bool {
        self.path
            .rsplit('/')
            .next()
            .is_some_and(|name| name.starts_with(".wh."))
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct LayerReport {
    pub media_type: Option<String>,
    /// Digest and size of the layer as stored.
    pub digest: Digest,
    pub compressed_size: u64,
    pub compression: String,
    pub diff_id: Digest,
    /// Size of the uncompressed tar.
    pub size: u64,
    /// Entries other than folders.
    pub file_count: usize,
    /// Every entry; left out of JSON unless asked for (`kiln inspect --files`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileRecord>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LayerPath {
    /// 1-based layer number.
    pub layer: usize,
    pub path: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct DuplicateContent {
    pub content_digest: Digest,
    pub size: u64,
    pub copies: Vec<LayerPath>,
    pub wasted_bytes: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ShadowedFile {
    pub layer: usize,
    pub path: String,
    pub size: u64,
    /// The layer that replaced or deleted it.
    pub by_layer: usize,
    pub deleted: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct WasteReport {
    pub stored_bytes: u64,
    pub wasted_bytes: u64,
    /// Between 0 and 1.
    pub efficiency: f64,
    pub duplicates: Vec<DuplicateContent>,
    pub shadowed: Vec<ShadowedFile>,
}

/// Report on one image.
#[derive(Clone, Debug, Serialize)]
pub struct ImageReport {
    pub names: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ref_names: Vec<String>,
    pub manifest_digest: Option<Digest>,
    pub manifest_media_type: Option<String>,
    pub config_digest: Digest,
    pub platform: String,
    pub created: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub user: String,
    pub workdir: String,
    pub exposed_ports: Vec<String>,
    pub volumes: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// The manifest's annotations (`org.opencontainers.image.*`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Sum of the uncompressed layer sizes.
    pub size: u64,
    /// Sum of the stored layer sizes.
    pub compressed_size: u64,
    pub layers: Vec<LayerReport>,
    pub waste: WasteReport,
}

/// Inspect every image in `source`. Each distinct layer is read once, however many images
/// share it.
pub fn inspect(source: &ImageReader) -> Result<Vec<ImageReport>, InspectError> {
    let mut scanned: HashMap<String, LayerReport> = HashMap::new();
    let mut entries = 0;
    let mut reports = Vec::new();
    for image in source.images()? {
        let mut layers = Vec::with_capacity(image.layers.len());
        for layer in &image.layers {
            let report = match scanned.get(&layer.name) {
                Some(report) => report.clone(),
                None => {
                    let report = scan_layer(source, layer)?;
                    scanned.insert(layer.name.clone(), report.clone());
                    report
                }
            };
            entries += report.files.len();
            if entries > MAX_ENTRIES {
                return Err(InspectError::TooManyEntries {
                    path: source.path().display().to_string(),
                });
            }
            layers.push(report);
        }
        reports.push(report_image(&image, layers));
    }
    Ok(reports)
}

fn report_image(image: &FoundImage, layers: Vec<LayerReport>) -> ImageReport {
    let config = &image.config;
    let container = &config.config;
    ImageReport {
        names: image.names.references.clone(),
        ref_names: image.names.ref_names.clone(),
        manifest_digest: image.manifest.as_ref().map(|found| found.descriptor.digest),
        manifest_media_type: image
            .manifest
            .as_ref()
            .map(|found| found.descriptor.media_type.clone()),
        config_digest: image.config_digest,
        platform: config.platform().to_string(),
        created: config.created.clone(),
        entrypoint: container.entrypoint.clone(),
        cmd: container.cmd.clone(),
        env: container.env.clone(),
        user: container.user.clone(),
        workdir: container.working_dir.clone(),
        exposed_ports: container.exposed_ports.keys().cloned().collect(),
        volumes: container.volumes.keys().cloned().collect(),
        labels: container.labels.clone(),
        annotations: image
            .manifest
            .as_ref()
            .map(|found| found.manifest.annotations.clone())
            .unwrap_or_default(),
        size: layers.iter().map(|layer| layer.size).sum(),
        compressed_size: layers.iter().map(|layer| layer.compressed_size).sum(),
        waste: analyse_waste(&layers),
        layers,
    }
}

fn scan_layer(source: &ImageReader, layer: &FoundLayer) -> Result<LayerReport, InspectError> {
    let path = source.path().display().to_string();
    let label = layer
        .expected
        .map_or_else(|| layer.name.clone(), |(digest, _)| digest.to_string());
    let read_error = |source: io::Error| InspectError::Read {
        path: path.clone(),
        layer: label.clone(),
        source,
    };
    let (reader, _) = source.open_layer(layer)?;
    let stored = HashingReader::new(reader);
    let decompressor = Decompressor::new(stored).map_err(read_error)?;
    let compression = decompressor.compression();
    let mut archive = TarReader::new(HashingReader::new(decompressor));
    let mut files = Vec::new();
    let tar_error = |source: TarReadError| match source {
        TarReadError::Io(error) => read_error(error),
        source => InspectError::Tar {
            path: path.clone(),
            layer: label.clone(),
            source,
        },
    };
    while let Some(entry) = archive.next_entry().map_err(tar_error)? {
        let raw_path = String::from_utf8_lossy(&entry.path).into_owned();
        let Some(relative) = relative_path(&raw_path) else {
            return Err(InspectError::EntryEscapes {
                path: path.clone(),
                layer: label.clone(),
                entry: raw_path,
            });
        };
        let kind = match entry.kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => FileKind::File,
            tar::EntryType::Directory => FileKind::Directory,
            tar::EntryType::Symlink => FileKind::Symlink,
            tar::EntryType::Link => FileKind::HardLink,
            tar::EntryType::Char => FileKind::CharDevice,
            tar::EntryType::Block => FileKind::BlockDevice,
            tar::EntryType::Fifo => FileKind::Fifo,
            _ => FileKind::Other,
        };
        let link_target = entry
            .link
            .as_ref()
            .map(|link| String::from_utf8_lossy(link).into_owned());
        let link_target = match kind {
            // A hard link names a path of the archive: one that climbs out of the root names
            // a file of whoever unpacks it (symlinks may point anywhere: they resolve inside
            // the container).
            FileKind::HardLink => match link_target {
                Some(target) => match relative_path(&target) {
                    Some(relative) => Some(format!("/{relative}")),
                    None => {
                        return Err(InspectError::LinkEscapes {
                            path: path.clone(),
                            layer: label.clone(),
                            entry: raw_path,
                            target,
                        });
                    }
                },
                None => None,
            },
            FileKind::Symlink => link_target,
            _ => None,
        };
        let content_digest = if kind == FileKind::File {
            let mut hasher = HashingWriter::new(io::sink());
            io::copy(&mut archive.content(), &mut hasher).map_err(read_error)?;
            Some(hasher.finish().1)
        } else {
            None
        };
        if relative.is_empty() {
            continue; // the root folder itself
        }
        files.push(FileRecord {
            path: format!("/{relative}"),
            kind,
            mode: entry.mode & 0o7777,
            uid: entry.uid,
            gid: entry.gid,
            size: if kind == FileKind::File {
                entry.size
            } else {
                0
            },
            link_target,
            content_digest,
        });
        if files.len() > MAX_ENTRIES {
            return Err(InspectError::TooManyEntries { path });
        }
    }
    // Hash what follows the end-of-archive blocks too: the diff_id covers every byte.
    let mut uncompressed = archive.into_inner();
    io::copy(&mut uncompressed, &mut io::sink()).map_err(read_error)?;
    let (decompressor, diff_id, size) = uncompressed.finish();
    let mut stored = decompressor.into_inner();
    io::copy(&mut stored, &mut io::sink()).map_err(read_error)?;
    let (_, digest, compressed_size) = stored.finish();

    if let Some((expected_digest, expected_size)) = layer.expected
        && (digest != expected_digest || compressed_size != expected_size)
    {
        return Err(InspectError::Mismatch {
            path,
            layer: label,
            what: format!("stored bytes hash to {digest} ({compressed_size} bytes)"),
        });
    }
    if diff_id != layer.diff_id {
        return Err(InspectError::Mismatch {
            path,
            layer: label,
            what: format!(
                "uncompressed it hashes to {diff_id}, but the config's diff_id is {}",
                layer.diff_id
            ),
        });
    }
    Ok(LayerReport {
        media_type: layer.media_type.clone(),
        digest,
        compressed_size,
        compression: match compression {
            Compression::None => "none".to_owned(),
            other => other.to_string(),
        },
        diff_id,
        size,
        file_count: files
            .iter()
            .filter(|file| file.kind != FileKind::Directory)
            .count(),
        files,
    })
}

/// What the final filesystem has at a path: the stored copy it reaches (a regular file or a
/// hard link to one), if any.
type Visible = Option<usize>;

struct StoredCopy {
    layer: usize,
    path: String,
    size: u64,
    content: Digest,
    /// The layer that last took a path of this copy away, and whether by deletion.
    removed_by: Option<(usize, bool)>,
}

fn analyse_waste(layers: &[LayerReport]) -> WasteReport {
    let mut copies: Vec<StoredCopy> = Vec::new();
    let mut visible: BTreeMap<String, Visible> = BTreeMap::new();

    fn remove_subtree(
        visible: &mut BTreeMap<String, Visible>,
        folder: &str,
        copies: &mut [StoredCopy],
        by: (usize, bool),
    ) {
        let prefix = format!("{folder}/");
        let doomed: Vec<String> = visible
            .range(prefix.clone()..)
            .take_while(|(path, _)| path.starts_with(&prefix))
            .map(|(path, _)| path.clone())
            .collect();
        for path in doomed {
            if let Some(Some(copy)) = visible.remove(&path) {
                copies[copy].removed_by = Some(by);
            }
        }
    }

    for (layer_index, layer) in layers.iter().enumerate() {
        let layer_number = layer_index + 1;
        // Whiteouts act on lower layers only, so they go first.
        for file in layer.files.iter().filter(|file| file.is_whiteout()) {
            let (folder, name) = file.path.rsplit_once('/').unwrap_or(("", &file.path));
            let by = (layer_number, true);
            if name == ".wh..wh..opq" {
                remove_subtree(&mut visible, folder, &mut copies, by);
            } else if let Some(target) = name.strip_prefix(".wh.") {
                let target = format!("{folder}/{target}");
                if let Some(Some(copy)) = visible.remove(&target) {
                    copies[copy].removed_by = Some(by);
                }
                remove_subtree(&mut visible, &target, &mut copies, by);
            }
        }
        let mut copies_in_layer: HashMap<&str, usize> = HashMap::new();
        for file in layer.files.iter().filter(|file| !file.is_whiteout()) {
            let copy = match (file.kind, file.content_digest) {
                (FileKind::File, Some(content)) => {
                    copies.push(StoredCopy {
                        layer: layer_number,
                        path: file.path.clone(),
                        size: file.size,
                        content,
                        removed_by: None,
                    });
                    copies_in_layer.insert(&file.path, copies.len() - 1);
                    Some(copies.len() - 1)
                }
                (FileKind::HardLink, _) => file
                    .link_target
                    .as_deref()
                    .and_then(|target| copies_in_layer.get(target).copied())
                    .or_else(|| {
                        // A link to a file of a lower layer reaches that file's copy.
                        file.link_target
                            .as_deref()
                            .and_then(|target| visible.get(target))
                            .and_then(|target| *target)
                    }),
                _ => None,
            };
            if file.kind != FileKind::Directory {
                // Whatever was below this path is gone, whether or not its folder had an
                // entry of its own (`/lib/x` in one layer, `/lib` a symlink in the next).
                remove_subtree(&mut visible, &file.path, &mut copies, (layer_number, false));
            }
            if let Some(Some(previous_copy)) = visible.get(&file.path).copied()
                && Some(previous_copy) != copy
            {
                copies[previous_copy].removed_by = Some((layer_number, false));
            }
            visible.insert(file.path.clone(), copy);
        }
    }

    // A copy still reached by some path is live, even if one of its paths was removed.
    let mut live = vec![false; copies.len()];
    for entry in visible.values() {
        if let Some(copy) = *entry {
            live[copy] = true;
        }
    }

    let stored_bytes: u64 = copies.iter().map(|copy| copy.size).sum();
    let mut shadowed: Vec<ShadowedFile> = copies
        .iter()
        .zip(&live)
        .filter(|(_, live)| !**live)
        .map(|(copy, _)| {
            let (by_layer, deleted) = copy.removed_by.unwrap_or((copy.layer, false));
            ShadowedFile {
                layer: copy.layer,
                path: copy.path.clone(),
                size: copy.size,
                by_layer,
                deleted,
            }
        })
        .collect();
    shadowed.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.path.cmp(&b.path)));

    let mut by_content: BTreeMap<Digest, Vec<usize>> = BTreeMap::new();
    for (index, copy) in copies.iter().enumerate() {
        if live[index] && copy.size > 0 {
            by_content.entry(copy.content).or_default().push(index);
        }
    }
    let mut duplicates: Vec<DuplicateContent> = by_content
        .into_iter()
        .filter(|(_, group)| group.len() > 1)
        .map(|(content_digest, group)| {
            let size = copies[group[0]].size;
            DuplicateContent {
                content_digest,
                size,
                wasted_bytes: size * (group.len() as u64 - 1),
                copies: group
                    .iter()
                    .map(|&index| LayerPath {
                        layer: copies[index].layer,
                        path: copies[index].path.clone(),
                    })
                    .collect(),
            }
        })
        .collect();
    duplicates.sort_by(|a, b| {
        b.wasted_bytes
            .cmp(&a.wasted_bytes)
            .then_with(|| a.content_digest.cmp(&b.content_digest))
    });

    let wasted_bytes = shadowed.iter().map(|file| file.size).sum::<u64>()
        + duplicates
            .iter()
            .map(|group| group.wasted_bytes)
            .sum::<u64>();
    let efficiency = if stored_bytes == 0 {
        1.0
    } else {
        1.0 - wasted_bytes as f64 / stored_bytes as f64
    };
    WasteReport {
        stored_bytes,
        wasted_bytes,
        efficiency,
        duplicates,
        shadowed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, content: &[u8]) -> FileRecord {
        FileRecord {
            path: path.to_owned(),
            kind: FileKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: content.len() as u64,
            link_target: None,
            content_digest: Some(Digest::of(content)),
        }
    }

    fn special(path: &str, kind: FileKind, target: Option<&str>) -> FileRecord {
        FileRecord {
            path: path.to_owned(),
            kind,
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: 0,
            link_target: target.map(str::to_owned),
            content_digest: None,
        }
    }

    fn layer(files: Vec<FileRecord>) -> LayerReport {
        LayerReport {
            media_type: None,
            digest: Digest::of(b""),
            compressed_size: 0,
            compression: "none".to_owned(),
            diff_id: Digest::of(b""),
            size: 0,
            file_count: files.len(),
            files,
        }
    }

    #[test]
    fn a_clean_image_is_fully_efficient() {
        let waste = analyse_waste(&[layer(vec![
            special("/bin", FileKind::Directory, None),
            file("/bin/app", b"binary"),
            special("/bin/alias", FileKind::HardLink, Some("/bin/app")),
            file("/etc/empty1", b""),
            file("/etc/empty2", b""),
        ])]);
        assert_eq!((waste.stored_bytes, waste.wasted_bytes), (6, 0));
        assert_eq!(waste.efficiency, 1.0);
    }

    #[test]
    fn duplicates_across_layers_and_shadowed_files() {
        let waste = analyse_waste(&[
            layer(vec![
                file("/data/a", b"0123456789"),
                file("/data/old", b"old!"),
                file("/data/gone/x", b"xx"),
                special("/data/linked", FileKind::HardLink, Some("/data/old")),
            ]),
            layer(vec![
                file("/copy/a", b"0123456789"),
                file("/data/old", b"new"),
                file("/data/.wh.gone", b""),
            ]),
        ]);
        // /data/old's first copy is still reached through /data/linked: not waste.
        assert_eq!(waste.shadowed.len(), 1, "{:?}", waste.shadowed);
        assert_eq!(waste.shadowed[0].path, "/data/gone/x");
        assert!(waste.shadowed[0].deleted);
        assert_eq!(waste.shadowed[0].by_layer, 2);
        assert_eq!(waste.duplicates.len(), 1);
        assert_eq!(waste.duplicates[0].wasted_bytes, 10);
        assert_eq!(waste.duplicates[0].copies.len(), 2);
        assert_eq!(waste.stored_bytes, 10 + 4 + 2 + 10 + 3);
        assert_eq!(waste.wasted_bytes, 12);
    }

    #[test]
    fn overwritten_and_opaque() {
        let waste = analyse_waste(&[
            layer(vec![
                file("/app/x", b"version one"),
                file("/cfg/a", b"aaaa"),
            ]),
            layer(vec![
                file("/app/x", b"version two"),
                file("/cfg/.wh..wh..opq", b""),
                file("/cfg/b", b"b"),
            ]),
        ]);
        let shadowed: Vec<(&str, usize, bool)> = waste
            .shadowed
            .iter()
            .map(|file| (file.path.as_str(), file.by_layer, file.deleted))
            .collect();
        assert_eq!(shadowed, [("/app/x", 2, false), ("/cfg/a", 2, true)]);
        assert_eq!(waste.wasted_bytes, 15);
    }

    /// Regression test (review): a file shadowed through a parent folder that has no entry
    /// of its own was not counted.
    #[test]
    fn shadowed_through_an_implied_folder() {
        let waste = analyse_waste(&[
            layer(vec![file("/lib/big.so", b"0123456789abcdef")]),
            layer(vec![special("/lib", FileKind::Symlink, Some("/usr/lib"))]),
        ]);
        assert_eq!(waste.shadowed.len(), 1, "{:?}", waste.shadowed);
        assert_eq!(
            (waste.shadowed[0].path.as_str(), waste.wasted_bytes),
            ("/lib/big.so", 16)
        );
    }

    #[test]
    fn mode_strings() {
        let mut record = file("/x", b"");
        record.mode = 0o755;
        assert_eq!(record.mode_string(), "-rwxr-xr-x");
        record.kind = FileKind::Symlink;
        record.mode = 0o777;
        assert_eq!(record.mode_string(), "lrwxrwxrwx");
        // Regression test (issue 16): /tmp (1777) read `drwxrwxrwx`; the special bits show
        // as `ls -l` shows them.
        record.kind = FileKind::Directory;
        for (mode, expected) in [
            (0o1777, "drwxrwxrwt"),
            (0o1770, "drwxrwx--T"),
            (0o4755, "drwsr-xr-x"),
            (0o4644, "drwSr--r--"),
            (0o2755, "drwxr-sr-x"),
            (0o2745, "drwxr-Sr-x"),
            (0o7777, "drwsrwsrwt"),
        ] {
            record.mode = mode;
            assert_eq!(record.mode_string(), expected, "{mode:o}");
        }
    }

    /// A layer hard link to `../../../etc/shadow` was listed as if it were inside the image;
    /// unpacked, it links a file of the host.
    #[test]
    fn layer_with_hardlink_out_of_the_root_is_refused() {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Link);
        header.set_size(0);
        header.set_mode(0o644);
        let gnu = header.as_gnu_mut().unwrap();
        gnu.name[..6].copy_from_slice(b"passwd");
        let target = b"../../../etc/shadow";
        gnu.linkname[..target.len()].copy_from_slice(target);
        header.set_cksum();
        let mut layer = header.as_bytes().to_vec();
        layer.extend_from_slice(&[0u8; 1024]);
        let folder = tempfile::tempdir().unwrap();
        std::fs::write(folder.path().join("layer.tar"), &layer).unwrap();
        let source = ImageReader::open(folder.path()).unwrap();
        let found = FoundLayer {
            name: "layer.tar".to_owned(),
            media_type: None,
            expected: None,
            diff_id: Digest::of(&layer),
        };
        let error = scan_layer(&source, &found).unwrap_err().to_string();
        assert!(
            error.contains("has a hard link `passwd` to `../../../etc/shadow`, outside the root"),
            "{error}"
        );
    }
}
