//! Writing tar streams whose every byte kiln decides: layer tars and the docker-archive /
//! OCI-archive container.
//!
//! Format, pinned here (golden tests in `oci::layer` and the CLI tests hold it):
//! - POSIX ustar headers (magic `ustar\0`, version `00`), numeric fields as zero-padded octal
//!   terminated by NUL (the `tar` crate's encoding), sizes of 8 GiB and more in base-256 (read
//!   by Go, GNU tar and libarchive); empty user and group names; device numbers 0.
//! - Names: folders end in `/`; a name longer than 100 bytes is split into ustar's prefix and
//!   name at a `/` when it fits, otherwise carried by a PAX extended header (`x`, named
//!   `././@PaxHeader`) holding `path=` (and `linkpath=` for long link targets). The ustar name
//!   field then holds the name cut to 100 bytes, which readers ignore.
//! - Content padded with zeros to 512 bytes; the stream ends with two zero blocks and no
//!   further padding to a 10 KiB record.
//!
//! Only the header encoding comes from the `tar` crate; the stream layout is written here
//! because the archive writer needs to place a header before knowing a blob's digest (see
//! `oci::archive`) and because PAX records must be exactly these bytes.

use std::io::{self, Read, Write};

pub const BLOCK: usize = 512;
const NAME_FIELD: usize = 100;
const PREFIX_FIELD: usize = 155;

/// What an entry is.
#[derive(Clone, Copy, Debug)]
pub enum EntryKind<'a> {
    Directory,
    File { size: u64 },
    Symlink { target: &'a str },
    HardLink { target: &'a str },
}

/// The header fields of one entry.
#[derive(Clone, Copy, Debug)]
pub struct EntryHeader<'a> {
    /// The entry's name without a leading `/`; folders get their trailing `/` added here.
    pub path: &'a str,
    pub kind: EntryKind<'a>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
}

fn pax_record(key: &str, value: &str) -> Vec<u8> {
    // "%d %s=%s\n", where the length counts its own digits.
    let body = key.len() + value.len() + 3; // space, '=', '\n'
    let mut length = body + 1;
    while length != body + length.to_string().len() {
        length = body + length.to_string().len();
    }
    format!("{length} {key}={value}\n").into_bytes()
}

fn truncate_to_boundary(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Split a name into ustar (prefix, name) fields if it fits.
fn split_ustar_name(name: &str) -> Option<(&str, &str)> {
    if name.len() <= NAME_FIELD {
        return Some(("", name));
    }
    // The prefix is everything before some `/`; the name field is what follows it.
    let trimmed = name.strip_suffix('/').unwrap_or(name);
    let mut best = None;
    for (index, _) in trimmed.match_indices('/') {
        let (prefix, rest) = (&name[..index], &name[index + 1..]);
        if prefix.len() <= PREFIX_FIELD && rest.len() <= NAME_FIELD && !rest.is_empty() {
            best = Some((prefix, rest));
            break;
        }
    }
    best
}

fn set_field(field: &mut [u8], value: &str) {
    let bytes = value.as_bytes();
    field.fill(0);
    field[..bytes.len()].copy_from_slice(bytes);
}

/// The header block(s) for one entry: a PAX extended header when needed, then the ustar
/// header.
pub fn header_blocks(entry: &EntryHeader<'_>) -> Vec<u8> {
    let name = match entry.kind {
        EntryKind::Directory if !entry.path.ends_with('/') => format!("{}/", entry.path),
        _ => entry.path.to_owned(),
    };
    let (size, type_flag, link) = match entry.kind {
        EntryKind::Directory => (0, tar::EntryType::Directory, None),
        EntryKind::File { size } => (size, tar::EntryType::Regular, None),
        EntryKind::Symlink { target } => (0, tar::EntryType::Symlink, Some(target)),
        EntryKind::HardLink { target } => (0, tar::EntryType::Link, Some(target)),
    };

    let mut pax = Vec::new();
    let split = split_ustar_name(&name);
    if split.is_none() {
        pax.extend(pax_record("path", &name));
    }
    let long_link = link.is_some_and(|link| link.len() > NAME_FIELD);
    if let Some(link) = link.filter(|_| long_link) {
        pax.extend(pax_record("linkpath", link));
    }

    let mut blocks = Vec::with_capacity(BLOCK * 3);
    if !pax.is_empty() {
        let pax_header = ustar_header(
            "",
            "././@PaxHeader",
            pax.len() as u64,
            tar::EntryType::XHeader,
            "",
            0o644,
            0,
            0,
            entry.mtime,
        );
        blocks.extend_from_slice(&pax_header);
        blocks.extend_from_slice(&pax);
        blocks.resize(blocks.len().next_multiple_of(BLOCK), 0);
    }
    let (prefix, short_name) = split.unwrap_or(("", truncate_to_boundary(&name, NAME_FIELD)));
    let link_field = link.map_or("", |link| truncate_to_boundary(link, NAME_FIELD));
    blocks.extend_from_slice(&ustar_header(
        prefix,
        short_name,
        size,
        type_flag,
        link_field,
        entry.mode,
        entry.uid,
        entry.gid,
        entry.mtime,
    ));
    blocks
}

#[allow(clippy::too_many_arguments)]
fn ustar_header(
    prefix: &str,
    name: &str,
    size: u64,
    type_flag: tar::EntryType,
    link: &str,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: u64,
) -> [u8; BLOCK] {
    let mut header = tar::Header::new_ustar();
    header.set_mode(mode);
    header.set_uid(uid.into());
    header.set_gid(gid.into());
    header.set_size(size);
    header.set_mtime(mtime);
    header.set_entry_type(type_flag);
    if let Some(ustar) = header.as_ustar_mut() {
        set_field(&mut ustar.name, name);
        set_field(&mut ustar.prefix, prefix);
        set_field(&mut ustar.linkname, link);
        ustar.dev_major = *b"0000000\0";
        ustar.dev_minor = *b"0000000\0";
    }
    header.set_cksum();
    *header.as_bytes()
}

/// The zeros that follow `size` bytes of content.
pub fn padding(size: u64) -> &'static [u8] {
    static ZEROS: [u8; BLOCK] = [0; BLOCK];
    let remainder = (size % BLOCK as u64) as usize;
    if remainder == 0 {
        &[]
    } else {
        &ZEROS[remainder..]
    }
}

/// The end of an archive: two zero blocks.
pub const END_OF_ARCHIVE: [u8; 2 * BLOCK] = [0; 2 * BLOCK];

#[derive(Debug, thiserror::Error)]
pub enum TarError {
    #[error("{path} changed while it was being read (expected {expected} bytes)")]
    SizeChanged { path: String, expected: u64 },
    /// Reading the entry's content failed.
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    /// Writing the stream failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// A tar stream writer over any `Write`.
pub struct TarWriter<W: Write> {
    out: W,
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W) -> Self {
        TarWriter { out }
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// An entry without content (folder, symlink, hard link).
    pub fn entry(&mut self, entry: &EntryHeader<'_>) -> io::Result<()> {
        debug_assert!(!matches!(entry.kind, EntryKind::File { .. }));
        self.out.write_all(&header_blocks(entry))
    }

    /// A regular file whose `size` bytes are read from `content`. Fewer or more bytes than
    /// announced is an error naming `display_path`: the header is already written.
    pub fn file(
        &mut self,
        entry: &EntryHeader<'_>,
        content: &mut dyn Read,
        display_path: &dyn Fn() -> String,
        on_progress: &mut dyn FnMut(u64),
    ) -> Result<(), TarError> {
        let EntryKind::File { size } = entry.kind else {
            unreachable!("TarWriter::file called for a non-file entry");
        };
        self.out.write_all(&header_blocks(entry))?;
        let mut buffer = vec![0u8; 256 * 1024];
        let mut remaining = size;
        while remaining > 0 {
            let want = buffer.len().min(remaining as usize);
            let read = match content.read(&mut buffer[..want]) {
                Ok(0) => {
                    return Err(TarError::SizeChanged {
                        path: display_path(),
                        expected: size,
                    });
                }
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(TarError::Read {
                        path: display_path(),
                        source,
                    });
                }
            };
            self.out.write_all(&buffer[..read])?;
            remaining -= read as u64;
            on_progress(read as u64);
        }
        // The file must end where its size said it would.
        let mut probe = [0u8; 1];
        loop {
            match content.read(&mut probe) {
                Ok(0) => break,
                Ok(_) => {
                    return Err(TarError::SizeChanged {
                        path: display_path(),
                        expected: size,
                    });
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(TarError::Read {
                        path: display_path(),
                        source,
                    });
                }
            }
        }
        self.out.write_all(padding(size))?;
        Ok(())
    }

    /// Write the end-of-archive blocks and return the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&END_OF_ARCHIVE)?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(path: &str, kind: EntryKind<'_>) -> Vec<u8> {
        header_blocks(&EntryHeader {
            path,
            kind,
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: 1,
        })
    }

    #[test]
    fn ustar_header_golden() {
        let block = header("bin", EntryKind::Directory);
        assert_eq!(block.len(), BLOCK);
        assert_eq!(&block[..4], b"bin/");
        assert_eq!(&block[100..108], b"0000755\0");
        assert_eq!(&block[108..116], b"0000000\0");
        assert_eq!(&block[124..136], b"00000000000\0");
        assert_eq!(&block[136..148], b"00000000001\0");
        assert_eq!(block[156], b'5');
        assert_eq!(&block[257..265], b"ustar\x0000");
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&block)),
            "ac4c947e04fa55327ec1fcc42c8f7ff8cc29900fa25cc50d900eb04719a21cb4"
        );
    }

    #[test]
    fn long_names_use_prefix_then_pax() {
        let medium = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        let block = header(&medium, EntryKind::File { size: 3 });
        assert_eq!(block.len(), BLOCK, "fits in prefix + name");
        assert_eq!(&block[345..345 + 120], "d".repeat(120).as_bytes());
        assert_eq!(&block[..90], "f".repeat(90).as_bytes());

        let long = "x".repeat(300);
        let blocks = header(
            &long,
            EntryKind::Symlink {
                target: &"t".repeat(200),
            },
        );
        // PAX header, 524 bytes of records in two blocks, the ustar header.
        assert_eq!(blocks.len(), 4 * BLOCK);
        let records = std::str::from_utf8(&blocks[BLOCK..BLOCK + 524]).unwrap();
        assert!(
            records.starts_with(&format!("310 path={long}\n214 linkpath=")),
            "{records}"
        );
        // Both records parse back with the tar crate.
        let mut archive_bytes = blocks.clone();
        archive_bytes.extend_from_slice(&END_OF_ARCHIVE);
        let mut archive = tar::Archive::new(&archive_bytes[..]);
        let entry = archive.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(entry.path().unwrap().to_str().unwrap(), long);
        assert_eq!(
            entry.link_name().unwrap().unwrap().to_str().unwrap(),
            "t".repeat(200)
        );
    }

    #[test]
    fn pax_record_lengths_count_their_own_digits() {
        assert_eq!(pax_record("path", "a"), b"9 path=a\n");
        let value = "v".repeat(91); // 4 + 91 + 3 = 98 bytes of body: 98 + 2 digits = 100, 3 digits
        let record = pax_record("path", &value);
        assert_eq!(record.len(), 101);
        assert!(record.starts_with(b"101 path="));
    }

    #[test]
    fn file_size_changes_are_errors() {
        let entry = EntryHeader {
            path: "f",
            kind: EntryKind::File { size: 4 },
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1,
        };
        for content in [&b"abc"[..], &b"abcde"[..]] {
            let mut writer = TarWriter::new(Vec::new());
            let error = writer
                .file(&entry, &mut &content[..], &|| "/f".to_owned(), &mut |_| {})
                .unwrap_err();
            assert!(
                error
                    .to_string()
                    .contains("/f changed while it was being read")
            );
        }
    }

    use sha2::Digest as _;
}
