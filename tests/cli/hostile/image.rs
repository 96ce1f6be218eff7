//! Images described by the corpus: named blobs whose content may name other blobs' digests
//! and sizes (`${config.digest}`), files beside them (`index.json`, `manifest.json`,
//! `oci-layout`, links), written as a tar archive or an OCI layout folder.
//!
//! A case starts from a base (`oci`: an OCI layout with one image of one layer; `docker`: the
//! older docker-archive form; `none`) and overrides what it attacks. Because the base's
//! documents are templates, a case that changes the layer gets a config and manifest that
//! name the new layer, and the lie stays exactly where the case puts it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use sha2::Digest as _;

use super::formats::{self, TarEntry};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fill {
    pub byte: u8,
    pub size: u64,
}

/// A blob: its content (`text`, a layer `tar`, or a `fill`), how it is stored and where.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobSpec {
    /// A template.
    pub text: Option<String>,
    /// A layer: these entries as an uncompressed tar.
    pub tar: Option<Vec<FileSpec>>,
    pub fill: Option<Fill>,
    /// `gzip` or `zstd`: the blob is the compressed content (`diff_id` stays the digest of
    /// the uncompressed content).
    pub compress: Option<String>,
    /// Where the blob is written (a template); default `blobs/sha256/${self.hex}`.
    pub at: Option<String>,
    /// `false`: not written at all (a missing blob).
    pub write: Option<bool>,
    /// A template written instead of the content (a blob that is not what its digest says).
    pub stored: Option<String>,
}

impl BlobSpec {
    fn has_content(&self) -> bool {
        self.text.is_some() || self.tar.is_some() || self.fill.is_some()
    }

    /// `self` over `base`: a case's fields win, its content replaces the base's.
    fn over(self, base: &BlobSpec) -> BlobSpec {
        let content = if self.has_content() { &self } else { base };
        BlobSpec {
            text: content.text.clone(),
            tar: content.tar.clone(),
            fill: content.fill.clone(),
            compress: self.compress.or_else(|| base.compress.clone()),
            at: self.at.or_else(|| base.at.clone()),
            write: self.write.or(base.write),
            stored: self.stored.or_else(|| base.stored.clone()),
        }
    }
}

/// A file of the archive or layout, or an entry of a layer tar.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// A template; raw bytes are `path_hex`.
    #[serde(default)]
    pub path: String,
    pub path_hex: Option<String>,
    pub text: Option<String>,
    /// Raw content (hex), for bytes a TOML string cannot hold.
    pub hex: Option<String>,
    pub fill: Option<Fill>,
    /// `file` (default), `dir`, `symlink`, `hardlink`, `fifo`, `char`, `block`, or one
    /// character: the raw tar type flag.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// A link's target (a template).
    pub link: Option<String>,
    /// The size a tar header declares, as a decimal string (up to u64::MAX).
    pub size: Option<String>,
    pub mode: Option<u32>,
    /// PAX records before the entry (values are templates).
    pub pax: Option<BTreeMap<String, String>>,
    pub gnu_long_name: Option<String>,
    #[serde(default)]
    pub bad_checksum: bool,
    /// Drop the base's file at `path`.
    #[serde(default)]
    pub remove: bool,
    /// Add the entry even when the base has one at `path` (a duplicate tar entry).
    #[serde(default)]
    pub duplicate: bool,
}

/// The whole archive, when the case attacks it rather than what it holds.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveSpec {
    /// `gzip` or `zstd`.
    pub compress: Option<String>,
    /// Keep only the first bytes.
    pub truncate: Option<usize>,
    /// The archive is this (compressed when `compress` says), not an image.
    pub fill: Option<Fill>,
    /// Write the end-of-archive blocks (default true).
    pub end: Option<bool>,
    /// Raw bytes (hex) appended after the archive.
    pub append_hex: Option<String>,
}

/// An image as a case describes it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    /// `oci` (default), `docker` or `none`.
    pub base: Option<String>,
    #[serde(default)]
    pub blob: BTreeMap<String, BlobSpec>,
    #[serde(default)]
    pub file: Vec<FileSpec>,
    pub archive: Option<ArchiveSpec>,
}

const OCI_CONFIG: &str = r#"{"architecture":"amd64","os":"linux","config":{"Cmd":["/hello"]},"rootfs":{"type":"layers","diff_ids":["${layer.diff_id}"]}}"#;
const OCI_MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"${config.digest}","size":${config.size}},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"${layer.digest}","size":${layer.size}}]}"#;
const OCI_INDEX: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"${manifest.digest}","size":${manifest.size},"annotations":{"io.containerd.image.name":"docker.io/library/hostile:1","org.opencontainers.image.ref.name":"1"}}]}"#;
const OCI_LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;
const DOCKER_MANIFEST: &str = r#"[{"Config":"${config.hex}.json","RepoTags":["hostile:1"],"Layers":["${layer.hex}/layer.tar"]}]"#;

fn text_file(path: &str, text: &str) -> FileSpec {
    FileSpec {
        path: path.to_owned(),
        text: Some(text.to_owned()),
        ..FileSpec::default()
    }
}

fn base(name: &str) -> (BTreeMap<String, BlobSpec>, Vec<FileSpec>) {
    let layer = BlobSpec {
        tar: Some(vec![text_file("hello", "hello from a hostile test\n")]),
        ..BlobSpec::default()
    };
    let text = |text: &str| BlobSpec {
        text: Some(text.to_owned()),
        ..BlobSpec::default()
    };
    match name {
        "oci" => (
            BTreeMap::from([
                ("layer".to_owned(), layer),
                ("config".to_owned(), text(OCI_CONFIG)),
                ("manifest".to_owned(), text(OCI_MANIFEST)),
            ]),
            vec![
                text_file("oci-layout", OCI_LAYOUT),
                text_file("index.json", OCI_INDEX),
            ],
        ),
        "docker" => (
            BTreeMap::from([
                (
                    "layer".to_owned(),
                    BlobSpec {
                        at: Some("${self.hex}/layer.tar".to_owned()),
                        ..layer
                    },
                ),
                (
                    "config".to_owned(),
                    BlobSpec {
                        at: Some("${self.hex}.json".to_owned()),
                        ..text(OCI_CONFIG)
                    },
                ),
            ]),
            vec![text_file("manifest.json", DOCKER_MANIFEST)],
        ),
        "none" => (BTreeMap::new(), Vec::new()),
        other => panic!("unknown image base `{other}` in the corpus"),
    }
}

#[derive(Clone)]
struct Rendered {
    /// The blob's bytes as its digest covers them.
    content: Vec<u8>,
    digest: String,
    /// The digest of the uncompressed content.
    diff_id: String,
    /// What is written (differs from `content` when the case says `stored`).
    written: Vec<u8>,
    at: String,
    write: bool,
}

/// Renders templates: `${NAME.digest|hex|size|diff_id}` of a blob, `${self.…}` of the blob
/// being placed, and `${NAME}` of one of the case's repeats.
struct Renderer<'a> {
    specs: BTreeMap<String, BlobSpec>,
    repeats: &'a BTreeMap<String, String>,
    done: BTreeMap<String, Rendered>,
    active: Vec<String>,
}

impl Renderer<'_> {
    fn template(&mut self, text: &str, current: Option<&Rendered>) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .unwrap_or_else(|| panic!("unclosed `${{` in the corpus: {text}"));
            let key = &after[..end];
            out.push_str(&self.value(key, current));
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }

    fn value(&mut self, key: &str, current: Option<&Rendered>) -> String {
        let Some((name, field)) = key.split_once('.') else {
            // A repeat may name blobs too (a list of one descriptor, many times).
            let repeated = self
                .repeats
                .get(key)
                .unwrap_or_else(|| panic!("unknown `${{{key}}}` in the corpus"))
                .clone();
            return self.template(&repeated, current);
        };
        let blob = match (name, current) {
            ("self", Some(current)) => current.clone(),
            ("self", None) => panic!("`${{self.{field}}}` outside a blob's `at`"),
            _ => self.blob(name),
        };
        match field {
            "digest" => blob.digest.clone(),
            "hex" => blob.digest["sha256:".len()..].to_owned(),
            "size" => blob.content.len().to_string(),
            "diff_id" => blob.diff_id.clone(),
            other => panic!("unknown field `{other}` in `${{{key}}}` in the corpus"),
        }
    }

    fn blob(&mut self, name: &str) -> Rendered {
        if let Some(done) = self.done.get(name) {
            return done.clone();
        }
        assert!(
            !self.active.iter().any(|active| active == name),
            "the corpus's blobs name each other in a circle: {:?} -> {name}",
            self.active
        );
        let spec = self
            .specs
            .get(name)
            .unwrap_or_else(|| panic!("the corpus names a blob `{name}` that no case defines"))
            .clone();
        self.active.push(name.to_owned());
        let uncompressed = if let Some(text) = &spec.text {
            self.template(text, None).into_bytes()
        } else if let Some(entries) = &spec.tar {
            let entries: Vec<TarEntry> =
                entries.iter().map(|entry| self.tar_entry(entry)).collect();
            formats::tar(&entries, true)
        } else if let Some(fill) = &spec.fill {
            vec![fill.byte; fill.size as usize]
        } else {
            panic!("the corpus's blob `{name}` has no content (text, tar or fill)")
        };
        let content = match &spec.compress {
            Some(how) => formats::compress(&uncompressed, how),
            None => uncompressed.clone(),
        };
        let mut rendered = Rendered {
            digest: sha256(&content),
            diff_id: sha256(&uncompressed),
            written: content.clone(),
            content,
            at: String::new(),
            write: spec.write.unwrap_or(true),
        };
        if let Some(stored) = &spec.stored {
            rendered.written = self.template(stored, None).into_bytes();
        }
        let at = spec
            .at
            .clone()
            .unwrap_or_else(|| "blobs/sha256/${self.hex}".to_owned());
        rendered.at = self.template(&at, Some(&rendered));
        self.active.pop();
        self.done.insert(name.to_owned(), rendered.clone());
        rendered
    }

    fn path(&mut self, file: &FileSpec) -> Vec<u8> {
        match &file.path_hex {
            Some(raw) => hex::decode(raw).expect("path_hex in the corpus is hex"),
            None => self.template(&file.path, None).into_bytes(),
        }
    }

    fn tar_entry(&mut self, file: &FileSpec) -> TarEntry {
        let name = self.path(file);
        let data = match (&file.text, &file.hex, &file.fill) {
            (Some(text), _, _) => self.template(text, None).into_bytes(),
            (None, Some(raw), _) => hex::decode(raw).expect("hex in the corpus is hex"),
            (None, None, Some(fill)) => vec![fill.byte; fill.size as usize],
            (None, None, None) => Vec::new(),
        };
        let kind = match file.kind.as_deref().unwrap_or("file") {
            "file" => b'0',
            "hardlink" => b'1',
            "symlink" => b'2',
            "char" => b'3',
            "block" => b'4',
            "dir" => b'5',
            "fifo" => b'6',
            raw if raw.len() == 1 => raw.as_bytes()[0],
            other => panic!("unknown entry type `{other}` in the corpus"),
        };
        let link = file
            .link
            .as_ref()
            .map(|link| self.template(link, None).into_bytes())
            .unwrap_or_default();
        let pax = file
            .pax
            .iter()
            .flatten()
            .map(|(key, value)| (key.clone(), self.template(value, None).into_bytes()))
            .collect();
        TarEntry {
            name,
            kind,
            link,
            data,
            declared_size: file.size.as_ref().map(|size| {
                size.parse()
                    .unwrap_or_else(|_| panic!("size `{size}` in the corpus is not a u64"))
            }),
            mode: file
                .mode
                .unwrap_or(if kind == b'5' { 0o755 } else { 0o644 }),
            pax,
            gnu_long_name: file.gnu_long_name.clone().map(String::into_bytes),
            bad_checksum: file.bad_checksum,
        }
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// The case's blobs over the base's, and a renderer of templates naming them.
fn renderer<'a>(
    spec: &ImageSpec,
    repeats: &'a BTreeMap<String, String>,
) -> (Renderer<'a>, Vec<FileSpec>) {
    let (base_blobs, base_files) = base(spec.base.as_deref().unwrap_or("oci"));
    let mut specs = base_blobs.clone();
    for (name, blob) in &spec.blob {
        let merged = match base_blobs.get(name) {
            Some(base) => blob.clone().over(base),
            None => blob.clone(),
        };
        specs.insert(name.clone(), merged);
    }
    let renderer = Renderer {
        specs,
        repeats,
        done: BTreeMap::new(),
        active: Vec::new(),
    };
    (renderer, base_files)
}

/// `text` with the case's `${blob.digest}`s and repeats filled in (for expected messages).
pub fn render(spec: &ImageSpec, repeats: &BTreeMap<String, String>, text: &str) -> String {
    renderer(spec, repeats).0.template(text, None)
}

/// The files of `spec`: the base's with the case's overrides, then the blobs.
fn files(spec: &ImageSpec, repeats: &BTreeMap<String, String>) -> Vec<TarEntry> {
    let (mut renderer, base_files) = renderer(spec, repeats);
    let mut files: Vec<FileSpec> = base_files;
    for file in &spec.file {
        let position = files.iter().position(|base| base.path == file.path);
        match (position, file.remove, file.duplicate) {
            (Some(position), true, _) => {
                files.remove(position);
            }
            (Some(position), false, false) => files[position] = file.clone(),
            (_, true, _) => panic!("the corpus removes `{}`, which the base lacks", file.path),
            _ => files.push(file.clone()),
        }
    }
    let mut entries = Vec::new();
    let names: Vec<String> = renderer.specs.keys().cloned().collect();
    for name in &names {
        let blob = renderer.blob(name);
        if blob.write {
            entries.push(TarEntry::file(&blob.at, &blob.written));
        }
    }
    for file in &files {
        entries.push(renderer.tar_entry(file));
    }
    entries
}

/// The image as a tar archive at `path`.
pub fn write_archive(spec: &ImageSpec, repeats: &BTreeMap<String, String>, path: &Path) {
    let archive = spec.archive.clone().unwrap_or_default();
    let mut bytes = match (&archive.fill, &archive.compress) {
        (Some(fill), Some(how)) => formats::compress_fill(fill.byte, fill.size, how),
        (Some(fill), None) => vec![fill.byte; fill.size as usize],
        (None, compress) => {
            let tar = formats::tar(&files(spec, repeats), archive.end.unwrap_or(true));
            match compress {
                Some(how) => formats::compress(&tar, how),
                None => tar,
            }
        }
    };
    if let Some(length) = archive.truncate {
        bytes.truncate(length);
    }
    if let Some(raw) = &archive.append_hex {
        bytes.extend(hex::decode(raw).expect("append_hex in the corpus is hex"));
    }
    std::fs::write(path, bytes).unwrap();
}

/// The image as an OCI layout folder at `folder`.
pub fn write_layout(spec: &ImageSpec, repeats: &BTreeMap<String, String>, folder: &Path) {
    assert!(
        spec.archive.is_none(),
        "`archive` describes a tar, not a layout"
    );
    std::fs::create_dir_all(folder).unwrap();
    for entry in files(spec, repeats) {
        let name = String::from_utf8(entry.name.clone()).expect("layout paths are UTF-8");
        let path = folder.join(&name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        let link = String::from_utf8_lossy(&entry.link).into_owned();
        match entry.kind {
            b'0' => std::fs::write(&path, &entry.data).unwrap(),
            b'5' => std::fs::create_dir_all(&path).unwrap(),
            b'2' => std::os::unix::fs::symlink(&link, &path).unwrap(),
            b'1' => std::fs::hard_link(folder.join(&link), &path).unwrap(),
            b'6' => {
                let status = std::process::Command::new("mkfifo")
                    .arg(&path)
                    .status()
                    .unwrap();
                assert!(status.success(), "mkfifo {}", path.display());
            }
            other => panic!(
                "a layout cannot hold an entry of type `{}` ({name})",
                other as char
            ),
        }
    }
}
