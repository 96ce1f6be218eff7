//! OCI layouts and archives whose digests hold, so that mutations reach what lies behind the
//! digest checks: nested indexes, manifests, configs, layer lists, names and platforms.
//!
//! The input is a template, not a tar: entries that each start with a line `@@ NAME`, then
//! the entry's content. An entry named `blobs/sha256/LABEL` is a blob; in any content,
//! `{{digest:LABEL}}` becomes `sha256:` and the hex digest of that blob's (resolved) content,
//! `{{hex:LABEL}}` the hex digest alone and `{{size:LABEL}}` its length, and the blob is stored as `blobs/sha256/<hex digest>`.
//! Other names are stored as they are (index.json, manifest.json, oci-layout).
//!
//! The first byte is flags: bit 0 writes the entries as a folder (an OCI layout), else as a
//! tar written by kiln's tar writer; bit 1 gzips the tar. Then every image is inspected.
#![no_main]

use std::collections::HashMap;
use std::io::Write;

use kiln::oci::compression::{Compression, Compressor};
use kiln::oci::digest::Digest;
use kiln::oci::inspect;
use kiln::oci::reader::ImageReader;
use kiln::oci::tar::{END_OF_ARCHIVE, EntryHeader, EntryKind, header_blocks, padding};
use libfuzzer_sys::fuzz_target;

const MAX_ENTRIES: usize = 64;
const MAX_RESOLVE_DEPTH: usize = 8;

struct Template<'a> {
    entries: Vec<(&'a str, &'a [u8])>,
    labels: HashMap<&'a str, usize>,
}

fn parse(data: &[u8]) -> Option<Template<'_>> {
    let mut entries = Vec::new();
    let mut rest = data;
    while let Some(start) = find(rest, b"@@ ") {
        let after = &rest[start + 3..];
        let line_end = find(after, b"\n")?;
        let name = std::str::from_utf8(&after[..line_end]).ok()?;
        let body = &after[line_end + 1..];
        let end = find(body, b"\n@@ ").map_or(body.len(), |end| end + 1);
        entries.push((name, &body[..end]));
        rest = &body[end..];
        if entries.len() > MAX_ENTRIES {
            return None;
        }
    }
    let labels = entries
        .iter()
        .enumerate()
        .filter_map(|(index, (name, _))| Some((name.strip_prefix("blobs/sha256/")?, index)))
        .collect();
    Some(Template { entries, labels })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The content of entry `index` with every token replaced; `None` for a reference cycle or
/// chains deeper than real layouts have.
fn resolve(
    template: &Template<'_>,
    index: usize,
    depth: usize,
    done: &mut HashMap<usize, Vec<u8>>,
) -> Option<Vec<u8>> {
    if let Some(content) = done.get(&index) {
        return Some(content.clone());
    }
    if depth > MAX_RESOLVE_DEPTH {
        return None;
    }
    let mut content = template.entries[index].1;
    let mut out = Vec::with_capacity(content.len());
    while let Some(start) = find(content, b"{{") {
        out.extend_from_slice(&content[..start]);
        let token = &content[start + 2..];
        let Some(end) = find(token, b"}}") else {
            content = &content[start..];
            break;
        };
        let replaced = std::str::from_utf8(&token[..end]).ok().and_then(|token| {
            let (what, label) = token.split_once(':')?;
            let target = *template.labels.get(label)?;
            let blob = resolve(template, target, depth + 1, done)?;
            match what {
                "digest" => Some(Digest::of(&blob).to_string()),
                "hex" => Some(Digest::of(&blob).hex()),
                "size" => Some(blob.len().to_string()),
                _ => None,
            }
        });
        match replaced {
            Some(text) => out.extend_from_slice(text.as_bytes()),
            None => out.extend_from_slice(&content[start..start + 2 + end + 2]),
        }
        content = &token[end + 2..];
    }
    out.extend_from_slice(content);
    done.insert(index, out.clone());
    Some(out)
}

/// Names kept to what a layout holds, so the folder form never writes outside its root.
fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 200
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"._-+/:".contains(&byte))
}

fn files(template: &Template<'_>) -> Option<Vec<(String, Vec<u8>)>> {
    let mut done = HashMap::new();
    let mut files = Vec::new();
    for (index, (name, _)) in template.entries.iter().enumerate() {
        let content = resolve(template, index, 0, &mut done)?;
        let name = match name.strip_prefix("blobs/sha256/") {
            Some(_) => Digest::of(&content).blob_path(),
            None => (*name).to_owned(),
        };
        if !safe_name(&name) {
            return None;
        }
        files.push((name, content));
    }
    Some(files)
}

fn write_tar(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, content) in files {
        out.extend(header_blocks(&EntryHeader {
            path: name,
            kind: EntryKind::File {
                size: content.len() as u64,
            },
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
        }));
        out.extend_from_slice(content);
        out.extend_from_slice(padding(content.len() as u64));
    }
    out.extend_from_slice(&END_OF_ARCHIVE);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, data)) = data.split_first() else {
        return;
    };
    let Some(files) = parse(data).as_ref().and_then(files) else {
        return;
    };
    let scratch = kiln_fuzz::scratch_dir();
    let path = if flags & 1 != 0 {
        let root = scratch.join("layout");
        let _ = std::fs::remove_dir_all(&root);
        for (name, content) in &files {
            let file = root.join(name);
            if let Some(parent) = file.parent() {
                if std::fs::create_dir_all(parent).is_err() {
                    return; // a name used both as a file and as a folder
                }
            }
            if file.is_dir() || std::fs::write(&file, content).is_err() {
                return;
            }
        }
        root
    } else {
        let mut archive = write_tar(&files);
        if flags & 2 != 0 {
            let mut gzip = Compressor::new(Compression::Gzip, Vec::new(), 1).expect("gzip");
            gzip.write_all(&archive).expect("gzip into memory");
            archive = gzip.finish().expect("gzip into memory");
        }
        let path = scratch.join("layout.tar");
        let mut file = std::fs::File::create(&path).expect("create the archive");
        file.write_all(&archive).expect("write the archive");
        path
    };
    let result = ImageReader::open(&path).and_then(|source| {
        let _ = source.docker_entries();
        let _ = source.index_entries();
        Ok(inspect::inspect(&source))
    });
    // `KILN_FUZZ_SHOW=1 …/image_layout -runs=0 FILE` tells what kiln made of an input.
    if std::env::var_os("KILN_FUZZ_SHOW").is_some() {
        match result {
            Ok(Ok(reports)) => {
                for report in reports {
                    let files: usize = report.layers.iter().map(|layer| layer.files.len()).sum();
                    eprintln!(
                        "image {:?} {}: {files} files",
                        report.names, report.platform
                    );
                }
            }
            Ok(Err(error)) => eprintln!("refused: {error}"),
            Err(error) => eprintln!("refused: {error}"),
        }
    }
});
