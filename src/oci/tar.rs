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
            return Err(TarError::Io(io::Error::other(format!(
                "{} is not a regular file entry",
                display_path()
            ))));
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

// ---------------------------------------------------------------------------------------
// Reading.

/// The largest GNU long name or long link record kiln reads (Linux paths stop at 4 KiB).
pub const MAX_LONG_NAME: u64 = 64 << 10;
/// The largest PAX extended header kiln reads.
pub const MAX_PAX_HEADER: u64 = 1 << 20;
/// The largest entry size read: Go's `archive/tar` holds sizes in an `int64` and refuses
/// the rest. Anything larger cannot be a real entry (no stream is that long), and keeping
/// to it means an entry's size plus its padding, and the stream offset past it, never
/// overflow.
pub const MAX_ENTRY_SIZE: u64 = i64::MAX as u64;

#[derive(Debug, thiserror::Error)]
pub enum TarReadError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("damaged tar header at byte {offset}: {reason}")]
    Malformed { offset: u64, reason: String },
    #[error("tar {record} at byte {offset} is {size} bytes; more than {limit} is refused")]
    RecordTooLarge {
        record: &'static str,
        offset: u64,
        size: u64,
        limit: u64,
    },
    #[error("the tar stream ends inside an entry (at byte {offset})")]
    Truncated { offset: u64 },
}

/// One entry as read, with long names and PAX records applied.
#[derive(Clone, Debug)]
pub struct ReadEntry {
    pub path: Vec<u8>,
    pub link: Option<Vec<u8>>,
    pub kind: tar::EntryType,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Bytes of content that follow the header (0 for header-only types).
    pub size: u64,
    /// Where the content starts in the stream.
    pub data_offset: u64,
}

/// Whether an entry type carries no content whatever its size field says (as Go's
/// `archive/tar`, which Docker uses, reads it).
fn is_header_only(kind: tar::EntryType) -> bool {
    matches!(
        kind,
        tar::EntryType::Link
            | tar::EntryType::Symlink
            | tar::EntryType::Char
            | tar::EntryType::Block
            | tar::EntryType::Directory
            | tar::EntryType::Fifo
    )
}

#[derive(Default)]
struct Pending {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
}

/// A streaming tar reader that bounds everything it holds in memory: unlike the `tar`
/// crate's `Archive`, which reads GNU long names and PAX records whole whatever their size
/// (a few KiB of gzip can announce gigabytes), it refuses records above [`MAX_LONG_NAME`] and
/// [`MAX_PAX_HEADER`]. Headers are decoded by the `tar` crate. PAX global headers are read
/// and ignored, as Go does.
pub struct TarReader<R: Read> {
    inner: R,
    offset: u64,
    /// Content bytes of the current entry not yet read.
    content_left: u64,
    /// Padding after the current entry's content.
    padding_left: u64,
    skip: fn(&mut R, u64) -> io::Result<()>,
    finished: bool,
}

fn skip_by_reading<R: Read>(reader: &mut R, count: u64) -> io::Result<()> {
    let copied = io::copy(&mut reader.take(count), &mut io::sink())?;
    if copied < count {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "stream ends early",
        ));
    }
    Ok(())
}

/// Seek past `count` bytes; past the end of the stream is an early end, as it is for a
/// reader (a seek alone would land there silently, and the entries after would vanish).
fn skip_by_seeking<R: Read + io::Seek>(reader: &mut R, count: u64) -> io::Result<()> {
    let position = reader.stream_position()?;
    let end = reader.seek(io::SeekFrom::End(0))?;
    match position.checked_add(count) {
        Some(target) if target <= end => reader.seek(io::SeekFrom::Start(target)).map(|_| ()),
        _ => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "stream ends early",
        )),
    }
}

impl<R: Read> TarReader<R> {
    /// A reader that skips unread content by reading it.
    pub fn new(inner: R) -> Self {
        TarReader {
            inner,
            offset: 0,
            content_left: 0,
            padding_left: 0,
            skip: skip_by_reading::<R>,
            finished: false,
        }
    }

    /// Bytes consumed from the stream so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    /// A stream that ends early is a truncated archive; other failures are I/O errors.
    fn stream_error(&self, error: io::Error) -> TarReadError {
        if error.kind() == io::ErrorKind::UnexpectedEof {
            TarReadError::Truncated {
                offset: self.offset,
            }
        } else {
            TarReadError::Io(error)
        }
    }

    fn skip(&mut self, count: u64) -> Result<(), TarReadError> {
        if count == 0 {
            return Ok(());
        }
        (self.skip)(&mut self.inner, count).map_err(|error| self.stream_error(error))?;
        self.offset += count;
        Ok(())
    }

    /// Read exactly one block; `Ok(false)` at a clean end of stream.
    fn read_block(&mut self, block: &mut [u8; BLOCK]) -> Result<bool, TarReadError> {
        let mut filled = 0;
        while filled < BLOCK {
            match self.inner.read(&mut block[filled..]) {
                Ok(0) if filled == 0 => return Ok(false),
                Ok(0) => {
                    return Err(TarReadError::Truncated {
                        offset: self.offset,
                    });
                }
                Ok(read) => filled += read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error.into()),
            }
        }
        self.offset += BLOCK as u64;
        Ok(true)
    }

    /// Read a metadata record (long name, PAX header) of `size` bytes, refusing more than
    /// `limit`.
    fn read_record(
        &mut self,
        record: &'static str,
        size: u64,
        limit: u64,
    ) -> Result<Vec<u8>, TarReadError> {
        if size > limit {
            return Err(TarReadError::RecordTooLarge {
                record,
                offset: self.offset - BLOCK as u64,
                size,
                limit,
            });
        }
        let mut bytes = vec![0u8; size as usize];
        self.inner
            .read_exact(&mut bytes)
            .map_err(|error| self.stream_error(error))?;
        self.offset += size;
        self.skip(padding(size).len() as u64)?;
        Ok(bytes)
    }

    /// The next entry, or `None` at the end of the archive. Unread content of the previous
    /// entry is skipped.
    pub fn next_entry(&mut self) -> Result<Option<ReadEntry>, TarReadError> {
        if self.finished {
            return Ok(None);
        }
        let rest = self.content_left + self.padding_left;
        self.content_left = 0;
        self.padding_left = 0;
        self.skip(rest)?;
        let mut pending = Pending::default();
        let mut block = [0u8; BLOCK];
        loop {
            if !self.read_block(&mut block)? {
                // No end-of-archive blocks: accepted, as Go and GNU tar do.
                self.finished = true;
                return Ok(None);
            }
            if block.iter().all(|byte| *byte == 0) {
                self.finished = true;
                return Ok(None);
            }
            let header_offset = self.offset - BLOCK as u64;
            let header = tar::Header::from_byte_slice(&block);
            check_checksum(&block, header, header_offset)?;
            let malformed = |reason: String| TarReadError::Malformed {
                offset: header_offset,
                reason,
            };
            let header_size = header
                .entry_size()
                .map_err(|error| malformed(format!("size field: {error}")))?;
            if header_size > MAX_ENTRY_SIZE {
                return Err(malformed(format!(
                    "size field says {header_size} bytes, more than any tar entry can hold"
                )));
            }
            match header.entry_type() {
                tar::EntryType::GNULongName => {
                    let mut name = self.read_record("GNU long name", header_size, MAX_LONG_NAME)?;
                    trim_nuls(&mut name);
                    pending.path = Some(name);
                }
                tar::EntryType::GNULongLink => {
                    let mut link = self.read_record("GNU long link", header_size, MAX_LONG_NAME)?;
                    trim_nuls(&mut link);
                    pending.link = Some(link);
                }
                tar::EntryType::XHeader => {
                    let records = self.read_record("PAX header", header_size, MAX_PAX_HEADER)?;
                    for extension in tar::PaxExtensions::new(&records) {
                        let extension =
                            extension.map_err(|error| malformed(format!("PAX record: {error}")))?;
                        match extension.key_bytes() {
                            b"path" => pending.path = Some(extension.value_bytes().to_vec()),
                            b"linkpath" => pending.link = Some(extension.value_bytes().to_vec()),
                            b"size" => {
                                let size = std::str::from_utf8(extension.value_bytes())
                                    .ok()
                                    .and_then(|text| text.parse::<u64>().ok())
                                    .ok_or_else(|| {
                                        malformed("PAX size is not a number".to_owned())
                                    })?;
                                if size > MAX_ENTRY_SIZE {
                                    return Err(malformed(format!(
                                        "PAX size says {size} bytes, more than any tar entry can hold"
                                    )));
                                }
                                pending.size = Some(size);
                            }
                            _ => {}
                        }
                    }
                }
                tar::EntryType::XGlobalHeader => {
                    self.read_record("PAX global header", header_size, MAX_PAX_HEADER)?;
                }
                kind => {
                    let size = if is_header_only(kind) {
                        0
                    } else {
                        pending.size.unwrap_or(header_size)
                    };
                    let entry = ReadEntry {
                        path: pending
                            .path
                            .take()
                            .unwrap_or_else(|| header.path_bytes().into_owned()),
                        link: pending
                            .link
                            .take()
                            .or_else(|| header.link_name_bytes().map(|link| link.into_owned())),
                        kind,
                        // Blank or odd mode and owner fields read as 0, as in Go; they
                        // only describe the entry, unlike the size, which places the next.
                        mode: header.mode().unwrap_or(0),
                        uid: header.uid().unwrap_or(0),
                        gid: header.gid().unwrap_or(0),
                        size,
                        data_offset: self.offset,
                    };
                    // Header-only entries with a size field still occupy it in the stream.
                    let stored = if is_header_only(kind) {
                        header_size
                    } else {
                        size
                    };
                    // A size near u64::MAX (base-256 allows it) must not overflow the
                    // arithmetic that skips it: no stream is that long.
                    let span = stored
                        .checked_add(padding(stored).len() as u64)
                        .filter(|span| self.offset.checked_add(*span).is_some())
                        .ok_or_else(|| {
                            malformed(format!(
                                "the size {stored} of `{}` runs past the end of any archive",
                                String::from_utf8_lossy(&entry.path)
                            ))
                        })?;
                    self.content_left = size;
                    self.padding_left = span - size;
                    return Ok(Some(entry));
                }
            }
        }
    }

    /// A reader over the current entry's content.
    pub fn content(&mut self) -> EntryContent<'_, R> {
        EntryContent { reader: self }
    }
}

impl<R: Read + io::Seek> TarReader<R> {
    /// A reader that skips unread content by seeking.
    pub fn new_seekable(inner: R) -> Self {
        TarReader {
            skip: skip_by_seeking::<R>,
            ..TarReader::new(inner)
        }
    }
}

/// The content of the current entry.
pub struct EntryContent<'a, R: Read> {
    reader: &'a mut TarReader<R>,
}

impl<R: Read> Read for EntryContent<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.reader.content_left;
        if left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(left.min(usize::MAX as u64) as usize);
        let read = self.reader.inner.read(&mut buf[..want])?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the tar stream ends inside an entry (at byte {})",
                    self.reader.offset
                ),
            ));
        }
        self.reader.content_left -= read as u64;
        self.reader.offset += read as u64;
        Ok(read)
    }
}

fn trim_nuls(bytes: &mut Vec<u8>) {
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
}

fn check_checksum(
    block: &[u8; BLOCK],
    header: &tar::Header,
    offset: u64,
) -> Result<(), TarReadError> {
    let not_tar = || TarReadError::Malformed {
        offset,
        reason: "checksum mismatch (not a tar archive, or a damaged one)".to_owned(),
    };
    let stored = header.cksum().map_err(|_| not_tar())?;
    // The sum of all bytes with the checksum field counted as spaces; some old writers
    // summed signed bytes.
    let unsigned: u32 = block
        .iter()
        .enumerate()
        .map(|(index, byte)| {
            if (148..156).contains(&index) {
                32
            } else {
                u32::from(*byte)
            }
        })
        .sum();
    let signed: i64 = block
        .iter()
        .enumerate()
        .map(|(index, byte)| {
            if (148..156).contains(&index) {
                32
            } else {
                i64::from(*byte as i8)
            }
        })
        .sum();
    if stored != unsigned && i64::from(stored) != signed {
        return Err(not_tar());
    }
    Ok(())
}

#[cfg(test)]
mod reader_tests {
    use super::*;

    fn entries(bytes: &[u8]) -> Result<Vec<(String, u64, Vec<u8>)>, TarReadError> {
        let mut reader = TarReader::new(bytes);
        let mut found = Vec::new();
        while let Some(entry) = reader.next_entry()? {
            let mut content = Vec::new();
            reader.content().read_to_end(&mut content)?;
            found.push((
                String::from_utf8_lossy(&entry.path).into_owned(),
                entry.size,
                content,
            ));
        }
        Ok(found)
    }

    fn write_file(tar: &mut TarWriter<Vec<u8>>, path: &str, content: &[u8]) {
        let entry = EntryHeader {
            path,
            kind: EntryKind::File {
                size: content.len() as u64,
            },
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1,
        };
        tar.file(&entry, &mut &content[..], &|| path.to_owned(), &mut |_| {})
            .unwrap();
    }

    #[test]
    fn reads_what_the_writer_writes() {
        let mut tar = TarWriter::new(Vec::new());
        let long = format!("{}/file", "d".repeat(300));
        write_file(&mut tar, "a.txt", b"hello");
        write_file(&mut tar, &long, b"long name");
        tar.entry(&EntryHeader {
            path: "link",
            kind: EntryKind::Symlink {
                target: &"t".repeat(150),
            },
            mode: 0o777,
            uid: 0,
            gid: 0,
            mtime: 1,
        })
        .unwrap();
        let bytes = tar.finish().unwrap();
        let found = entries(&bytes).unwrap();
        assert_eq!(found[0], ("a.txt".to_owned(), 5, b"hello".to_vec()));
        assert_eq!(found[1], (long, 9, b"long name".to_vec()));
        let mut reader = TarReader::new(&bytes[..]);
        reader.next_entry().unwrap();
        reader.next_entry().unwrap();
        let link = reader.next_entry().unwrap().unwrap();
        assert_eq!(link.link.unwrap(), "t".repeat(150).as_bytes());
        assert!(reader.next_entry().unwrap().is_none());
    }

    #[test]
    fn refuses_oversized_metadata_records() {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::GNULongName);
        header.set_size(8 << 30);
        header.set_cksum();
        let mut bytes = header.as_bytes().to_vec();
        bytes.extend_from_slice(&[b'x'; 4096]);
        let error = entries(&bytes).unwrap_err().to_string();
        assert!(
            error.contains("GNU long name at byte 0 is 8589934592 bytes"),
            "{error}"
        );

        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::XHeader);
        header.set_size(2 << 20);
        header.set_cksum();
        let error = entries(header.as_bytes()).unwrap_err().to_string();
        assert!(error.contains("PAX header"), "{error}");
    }

    #[test]
    fn refuses_damage_and_truncation() {
        let error = entries(&[b'x'; 1024]).unwrap_err().to_string();
        assert!(error.contains("checksum mismatch"), "{error}");
        let mut tar = TarWriter::new(Vec::new());
        write_file(&mut tar, "a", &[7u8; 2000]);
        let bytes = tar.finish().unwrap();
        let error = entries(&bytes[..1200]).unwrap_err().to_string();
        assert!(error.contains("ends inside an entry"), "{error}");
        // No end-of-archive blocks is accepted.
        assert_eq!(entries(&bytes[..512 + 2048]).unwrap().len(), 1);
    }

    /// An entry of a type kiln does not know, carrying a base-256 size of u64::MAX: skipping
    /// it once overflowed the offset arithmetic and panicked.
    #[test]
    fn entry_of_unknown_type_with_size_u64_max_is_refused() {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::new(b'Z'));
        header.set_path("weird").unwrap();
        header.set_size(u64::MAX);
        header.set_cksum();
        let mut bytes = header.as_bytes().to_vec();
        bytes.extend_from_slice(&[0u8; 1024]);
        let error = entries(&bytes).unwrap_err().to_string();
        assert!(
            error.contains(
                "damaged tar header at byte 0: size field says 18446744073709551615 bytes"
            ),
            "{error}"
        );
        let mut reader = TarReader::new_seekable(io::Cursor::new(&bytes));
        let error = reader.next_entry().unwrap_err().to_string();
        assert!(
            error.contains("size field says 18446744073709551615 bytes"),
            "{error}"
        );
    }

    /// A seekable reader skipping an entry that runs past the end of the archive reports a
    /// truncated archive instead of a clean end (which hid every entry after it).
    #[test]
    fn skipping_past_the_end_of_a_seekable_archive_is_truncation() {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::new(b'Z'));
        header.set_path("weird").unwrap();
        header.set_size(1 << 40);
        header.set_cksum();
        let mut bytes = header.as_bytes().to_vec();
        bytes.extend_from_slice(&[0u8; 1024]);
        let mut reader = TarReader::new_seekable(io::Cursor::new(&bytes));
        assert!(reader.next_entry().unwrap().is_some());
        let error = reader.next_entry().unwrap_err().to_string();
        assert!(
            error.contains("the tar stream ends inside an entry"),
            "{error}"
        );
    }

    #[test]
    fn header_only_entries_carry_no_content() {
        // A folder whose size field says 1024 (Go ignores it; so does kiln, skipping it).
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_path("dir/").unwrap();
        header.set_size(1024);
        header.set_cksum();
        let mut bytes = header.as_bytes().to_vec();
        bytes.extend_from_slice(&[0u8; 1024]);
        let mut tar = TarWriter::new(Vec::new());
        write_file(&mut tar, "after", b"ok");
        bytes.extend(tar.finish().unwrap());
        let found = entries(&bytes).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].1, &found[1].2[..]), (0, &b"ok"[..]));
    }

    /// Found by the `layer_tar` fuzz target: a folder whose base-256 size field held
    /// 2^64 - 1 overflowed `size + padding` (a panic in debug builds, a wrapped skip in
    /// release).
    #[test]
    fn tar_entry_with_size_near_u64_max_is_an_error_not_an_overflow() {
        for kind in [tar::EntryType::Directory, tar::EntryType::Regular] {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(kind);
            header.set_path("huge").unwrap();
            header.set_size(u64::MAX);
            header.set_cksum();
            let mut bytes = header.as_bytes().to_vec();
            bytes.extend_from_slice(&[0u8; 1024]);
            let error = entries(&bytes).unwrap_err().to_string();
            assert!(
                error.contains(
                    "damaged tar header at byte 0: size field says 18446744073709551615 bytes"
                ),
                "{error}"
            );
            let mut seeking = TarReader::new_seekable(io::Cursor::new(&bytes));
            assert!(seeking.next_entry().is_err());
        }
    }

    /// The same through a PAX `size` record, which overrides the header's size field: the
    /// entry was returned, and skipping its content to reach the next one overflowed.
    #[test]
    fn tar_pax_size_near_u64_max_is_an_error_not_an_overflow() {
        // A PAX record's length counts its own digits: 29 bytes in all.
        let record = format!("29 size={}\n", u64::MAX);
        assert_eq!(record.len(), 29);
        let mut pax = tar::Header::new_ustar();
        pax.set_entry_type(tar::EntryType::XHeader);
        pax.set_size(record.len() as u64);
        pax.set_cksum();
        let mut bytes = pax.as_bytes().to_vec();
        bytes.extend_from_slice(record.as_bytes());
        bytes.extend_from_slice(padding(record.len() as u64));
        let mut file = tar::Header::new_ustar();
        file.set_path("f").unwrap();
        file.set_size(0);
        file.set_cksum();
        bytes.extend_from_slice(file.as_bytes());
        bytes.extend_from_slice(&[0u8; 1024]);
        let mut reader = TarReader::new(&bytes[..]);
        let error = reader.next_entry().unwrap_err().to_string();
        assert!(
            error.contains("PAX size says 18446744073709551615 bytes"),
            "{error}"
        );
    }
}
