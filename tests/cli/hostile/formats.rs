//! Raw writers for zips and tars that lie: the `zip` and `tar` crates refuse to write most of
//! what the hostile corpus needs (names with `..`, sizes that disagree with the data, bad
//! checksums, duplicate names), so these write the bytes field by field.

use std::io::Write;

/// How a zip entry's data is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZipMethod {
    Stored,
    Deflated,
}

/// One zip entry, as written.
#[derive(Clone, Debug)]
pub struct ZipEntry {
    pub name: Vec<u8>,
    /// The uncompressed content.
    pub data: Vec<u8>,
    /// Instead of `data`: this many copies of a byte, never held in memory uncompressed.
    pub fill: Option<(u8, u64)>,
    pub method: ZipMethod,
    /// The uncompressed size the headers declare, when it is to differ from the data's.
    pub declared_size: Option<u64>,
    /// A CRC-32 to write instead of the data's.
    pub crc: Option<u32>,
    /// The Unix mode in the external attributes (with the file type bits).
    pub unix_mode: Option<u32>,
    /// Extra fields, written in the local and the central header.
    pub extra: Vec<u8>,
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn fill_crc(byte: u8, size: u64) -> u32 {
    let block = vec![byte; 1 << 20];
    let mut hasher = crc32fast::Hasher::new();
    let mut remaining = size;
    while remaining > 0 {
        let take = remaining.min(block.len() as u64) as usize;
        hasher.update(&block[..take]);
        remaining -= take as u64;
    }
    hasher.finalize()
}

/// A zip archive of `entries`, in order (duplicates and all). Sizes that do not fit 32 bits
/// get a Zip64 extra field.
pub fn zip(entries: &[ZipEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for entry in entries {
        let (stored, actual_size, actual_crc) = match (entry.fill, entry.method) {
            (Some((byte, size)), ZipMethod::Deflated) => (
                compress_fill(byte, size, "deflate"),
                size,
                fill_crc(byte, size),
            ),
            (Some((byte, size)), ZipMethod::Stored) => {
                (vec![byte; size as usize], size, fill_crc(byte, size))
            }
            (None, ZipMethod::Stored) => (
                entry.data.clone(),
                entry.data.len() as u64,
                crc32fast::hash(&entry.data),
            ),
            (None, ZipMethod::Deflated) => (
                deflate(&entry.data),
                entry.data.len() as u64,
                crc32fast::hash(&entry.data),
            ),
        };
        let size = entry.declared_size.unwrap_or(actual_size);
        let crc = entry.crc.unwrap_or(actual_crc);
        let zip64 = size >= 0xFFFF_FFFF || stored.len() as u64 >= 0xFFFF_FFFF;
        let mut extra = entry.extra.clone();
        if zip64 {
            extra.extend_from_slice(&1u16.to_le_bytes());
            extra.extend_from_slice(&16u16.to_le_bytes());
            extra.extend_from_slice(&size.to_le_bytes());
            extra.extend_from_slice(&(stored.len() as u64).to_le_bytes());
        }
        let (size32, stored32) = if zip64 {
            (0xFFFF_FFFFu32, 0xFFFF_FFFFu32)
        } else {
            (size as u32, stored.len() as u32)
        };
        let version: u16 = if zip64 { 45 } else { 20 };
        let method: u16 = match entry.method {
            ZipMethod::Stored => 0,
            ZipMethod::Deflated => 8,
        };
        let offset = out.len() as u32;
        // Local file header.
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(&0x0800u16.to_le_bytes()); // UTF-8 names
        out.extend_from_slice(&method.to_le_bytes());
        out.extend_from_slice(&[0; 4]); // time, date
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&stored32.to_le_bytes());
        out.extend_from_slice(&size32.to_le_bytes());
        out.extend_from_slice(&(entry.name.len() as u16).to_le_bytes());
        out.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        out.extend_from_slice(&entry.name);
        out.extend_from_slice(&extra);
        out.extend_from_slice(&stored);
        // Central directory header.
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&((3u16 << 8) | version).to_le_bytes()); // made by Unix
        central.extend_from_slice(&version.to_le_bytes());
        central.extend_from_slice(&0x0800u16.to_le_bytes());
        central.extend_from_slice(&method.to_le_bytes());
        central.extend_from_slice(&[0; 4]);
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&stored32.to_le_bytes());
        central.extend_from_slice(&size32.to_le_bytes());
        central.extend_from_slice(&(entry.name.len() as u16).to_le_bytes());
        central.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes()); // comment
        central.extend_from_slice(&0u16.to_le_bytes()); // disk
        central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        let mode = entry.unix_mode.unwrap_or(0o100_644);
        central.extend_from_slice(&(mode << 16).to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(&entry.name);
        central.extend_from_slice(&extra);
    }
    let central_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // disk numbers
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&central_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// One tar entry, as written.
#[derive(Clone, Debug)]
pub struct TarEntry {
    pub name: Vec<u8>,
    /// The type flag (`b'0'` file, `b'5'` folder, `b'2'` symlink, `b'1'` hard link, …).
    pub kind: u8,
    pub link: Vec<u8>,
    pub data: Vec<u8>,
    /// The size the header declares, when it is to differ from the data's.
    pub declared_size: Option<u64>,
    pub mode: u32,
    /// PAX records written in an extended header before the entry.
    pub pax: Vec<(String, Vec<u8>)>,
    /// A GNU long name record written before the entry.
    pub gnu_long_name: Option<Vec<u8>>,
    /// Write a checksum that does not add up.
    pub bad_checksum: bool,
}

impl TarEntry {
    pub fn file(name: &str, data: &[u8]) -> Self {
        TarEntry {
            name: name.as_bytes().to_vec(),
            kind: b'0',
            link: Vec::new(),
            data: data.to_vec(),
            declared_size: None,
            mode: 0o644,
            pax: Vec::new(),
            gnu_long_name: None,
            bad_checksum: false,
        }
    }
}

fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}

fn header(
    name: &[u8],
    kind: u8,
    link: &[u8],
    size: u64,
    mode: u32,
    bad_checksum: bool,
) -> [u8; 512] {
    let mut block = [0u8; 512];
    let name_length = name.len().min(100);
    block[..name_length].copy_from_slice(&name[..name_length]);
    octal(&mut block[100..108], u64::from(mode));
    octal(&mut block[108..116], 0);
    octal(&mut block[116..124], 0);
    if size < 0o77777777777 {
        octal(&mut block[124..136], size);
    } else {
        // Base-256: a set high bit, then the number big-endian.
        block[124] = 0x80;
        block[128..136].copy_from_slice(&size.to_be_bytes());
    }
    octal(&mut block[136..148], 0);
    block[156] = kind;
    let link_length = link.len().min(100);
    block[157..157 + link_length].copy_from_slice(&link[..link_length]);
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    octal(&mut block[329..337], 0);
    octal(&mut block[337..345], 0);
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|byte| u32::from(*byte)).sum();
    let sum = if bad_checksum { sum + 1 } else { sum };
    octal(&mut block[148..155], u64::from(sum));
    block[155] = b' ';
    block
}

fn pad(out: &mut Vec<u8>) {
    out.resize(out.len().next_multiple_of(512), 0);
}

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3;
    let mut length = body + 1;
    while length != body + length.to_string().len() {
        length = body + length.to_string().len();
    }
    let mut record = format!("{length} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

/// A tar stream of `entries`; the two end-of-archive blocks when `end`.
pub fn tar(entries: &[TarEntry], end: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        let mut pax = Vec::new();
        for (key, value) in &entry.pax {
            pax.extend(pax_record(key, value));
        }
        if entry.name.len() > 100 && !entry.pax.iter().any(|(key, _)| key == "path") {
            pax.extend(pax_record("path", &entry.name));
        }
        if !pax.is_empty() {
            out.extend_from_slice(&header(
                b"././@PaxHeader",
                b'x',
                b"",
                pax.len() as u64,
                0o644,
                false,
            ));
            out.extend_from_slice(&pax);
            pad(&mut out);
        }
        if let Some(long) = &entry.gnu_long_name {
            let mut record = long.clone();
            record.push(0);
            out.extend_from_slice(&header(
                b"././@LongLink",
                b'L',
                b"",
                record.len() as u64,
                0o644,
                false,
            ));
            out.extend_from_slice(&record);
            pad(&mut out);
        }
        let size = entry.declared_size.unwrap_or(entry.data.len() as u64);
        out.extend_from_slice(&header(
            &entry.name,
            entry.kind,
            &entry.link,
            size,
            entry.mode,
            entry.bad_checksum,
        ));
        out.extend_from_slice(&entry.data);
        pad(&mut out);
    }
    if end {
        out.extend_from_slice(&[0u8; 1024]);
    }
    out
}

/// `bytes` compressed as `how` (`gzip` or `zstd`).
pub fn compress(bytes: &[u8], how: &str) -> Vec<u8> {
    match how {
        "gzip" => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(bytes).unwrap();
            encoder.finish().unwrap()
        }
        "zstd" => zstd::encode_all(bytes, 3).unwrap(),
        other => panic!("unknown compression `{other}` in the corpus"),
    }
}

/// `size` bytes of `byte` compressed as `how`, without holding them all at once.
pub fn compress_fill(byte: u8, size: u64, how: &str) -> Vec<u8> {
    let block = vec![byte; 1 << 20];
    let mut remaining = size;
    let mut feed = |writer: &mut dyn Write| {
        while remaining > 0 {
            let take = remaining.min(block.len() as u64) as usize;
            writer.write_all(&block[..take]).unwrap();
            remaining -= take as u64;
        }
    };
    match how {
        "gzip" => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            feed(&mut encoder);
            encoder.finish().unwrap()
        }
        "deflate" => {
            let mut encoder =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
            feed(&mut encoder);
            encoder.finish().unwrap()
        }
        "zstd" => {
            let mut encoder = zstd::Encoder::new(Vec::new(), 3).unwrap();
            feed(&mut encoder);
            encoder.finish().unwrap()
        }
        other => panic!("unknown compression `{other}` in the corpus"),
    }
}
