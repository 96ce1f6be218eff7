//! Which platform a Linux executable is for, and which loader it asks for, from its ELF
//! headers.
//!
//! `kiln image` packs files it did not build; the platform an image declares must describe
//! those files, not the machine kiln happens to run on, or the same files would give
//! different digests on an amd64 laptop and an arm64 CI runner. The header's class (32/64
//! bit), byte order and `e_machine` name the architecture in Go's and OCI's terms. Variants
//! (`arm/v7`, `arm64/v8`) are not in the header and are left out.
//!
//! A dynamically linked program (a cgo program linked against glibc) names the loader the
//! kernel starts it with in a `PT_INTERP` program header (`/lib64/ld-linux-x86-64.so.2`):
//! [`interpreter_of`] reads it, so an image whose base lacks that file is refused before it
//! is made. Only the file header, the program header table and that one string are read,
//! each bounded ([`MAX_PROGRAM_HEADERS`], [`MAX_INTERPRETER`]).
//!
//! Read here because only a few hundred bytes are needed; no crate is worth it.

use std::io::Read;
use std::path::Path;

use super::spec::Platform;

const MAGIC: [u8; 4] = [0x7f, b'E', b'L', b'F'];
const CLASS_64: u8 = 2;
const DATA_BIG_ENDIAN: u8 = 2;

/// The platform `path` is built for: `Ok(None)` when it is not an ELF file or its machine is
/// not one kiln knows.
pub fn platform_of(path: &Path) -> std::io::Result<Option<Platform>> {
    let mut header = [0u8; 20];
    let mut file = std::fs::File::open(path)?;
    let mut filled = 0;
    while filled < header.len() {
        match file.read(&mut header[filled..])? {
            0 => return Ok(None),
            read => filled += read,
        }
    }
    Ok(platform_of_header(&header))
}

/// The platform in the first 20 bytes of an ELF file.
pub fn platform_of_header(header: &[u8; 20]) -> Option<Platform> {
    if header[..4] != MAGIC {
        return None;
    }
    let is_64 = header[4] == CLASS_64;
    let big_endian = header[5] == DATA_BIG_ENDIAN;
    let machine = if big_endian {
        u16::from_be_bytes([header[18], header[19]])
    } else {
        u16::from_le_bytes([header[18], header[19]])
    };
    let architecture = match (machine, is_64, big_endian) {
        (62, true, false) => "amd64",
        (3, false, false) => "386",
        (183, true, false) => "arm64",
        (40, false, false) => "arm",
        (21, true, false) => "ppc64le",
        (21, true, true) => "ppc64",
        (22, true, true) => "s390x",
        (243, true, false) => "riscv64",
        (258, true, false) => "loong64",
        (8, false, true) => "mips",
        (8, false, false) => "mipsle",
        (8, true, true) => "mips64",
        (8, true, false) => "mips64le",
        _ => return None,
    };
    Some(Platform {
        architecture: architecture.to_owned(),
        os: "linux".to_owned(),
        os_version: None,
        os_features: Vec::new(),
        variant: None,
    })
}

/// The most program headers [`interpreter_of`] reads (linkers write about a dozen).
pub const MAX_PROGRAM_HEADERS: usize = 1024;

/// The longest loader path [`interpreter_of`] takes (Linux's own limit is `PATH_MAX`).
pub const MAX_INTERPRETER: u64 = 4096;

/// `PT_INTERP`: the program header naming the loader.
const PT_INTERP: u32 = 3;

/// The loader `path` asks for (`PT_INTERP`, without its NUL): `Ok(None)` when `path` is not
/// an ELF file or is statically linked. A header that points outside the file, or an
/// interpreter that is not a NUL-terminated path of at most [`MAX_INTERPRETER`] bytes, is an
/// `InvalidData` error.
pub fn interpreter_of(path: &Path) -> std::io::Result<Option<String>> {
    use std::io::{Seek, SeekFrom};
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let mut file = std::fs::File::open(path)?;
    let mut header = [0u8; 64];
    let read = read_up_to(&mut file, &mut header)?;
    if read < 52 || header[..4] != MAGIC {
        return Ok(None);
    }
    let is_64 = header[4] == CLASS_64;
    let big_endian = header[5] == DATA_BIG_ENDIAN;
    if is_64 && read < 64 {
        return Ok(None);
    }
    let u16_at = |bytes: &[u8], at: usize| {
        let pair = [bytes[at], bytes[at + 1]];
        u64::from(if big_endian {
            u16::from_be_bytes(pair)
        } else {
            u16::from_le_bytes(pair)
        })
    };
    let u32_at = |bytes: &[u8], at: usize| {
        let quad = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        u64::from(if big_endian {
            u32::from_be_bytes(quad)
        } else {
            u32::from_le_bytes(quad)
        })
    };
    let u64_at = |bytes: &[u8], at: usize| {
        let mut octet = [0u8; 8];
        octet.copy_from_slice(&bytes[at..at + 8]);
        if big_endian {
            u64::from_be_bytes(octet)
        } else {
            u64::from_le_bytes(octet)
        }
    };
    // e_phoff, e_phentsize, e_phnum; each entry's p_type, p_offset and p_filesz.
    let (table, entry_size, count) = if is_64 {
        (
            u64_at(&header, 32),
            u16_at(&header, 54),
            u16_at(&header, 56),
        )
    } else {
        (
            u32_at(&header, 28),
            u16_at(&header, 42),
            u16_at(&header, 44),
        )
    };
    let minimum_entry = if is_64 { 56 } else { 32 };
    if count == 0 {
        return Ok(None);
    }
    if entry_size < minimum_entry || count as usize > MAX_PROGRAM_HEADERS {
        return Err(invalid(
            "its program header table is not one an ELF linker writes",
        ));
    }
    let mut entries = vec![0u8; (entry_size * count) as usize];
    file.seek(SeekFrom::Start(table))?;
    if read_up_to(&mut file, &mut entries)? < entries.len() {
        return Err(invalid(
            "its program header table lies past the end of the file",
        ));
    }
    for entry in entries.chunks_exact(entry_size as usize) {
        if u32_at(entry, 0) != u64::from(PT_INTERP) {
            continue;
        }
        let (offset, size) = if is_64 {
            (u64_at(entry, 8), u64_at(entry, 32))
        } else {
            (u32_at(entry, 4), u32_at(entry, 16))
        };
        if size == 0 || size > MAX_INTERPRETER {
            return Err(invalid("its PT_INTERP is empty or longer than a path"));
        }
        let mut text = vec![0u8; size as usize];
        file.seek(SeekFrom::Start(offset))?;
        if read_up_to(&mut file, &mut text)? < text.len() {
            return Err(invalid("its PT_INTERP lies past the end of the file"));
        }
        // The string ends with its NUL, and holds no other.
        let Some((0, name)) = text.split_last() else {
            return Err(invalid("its PT_INTERP does not end with a NUL byte"));
        };
        if name.is_empty() || name.contains(&0) {
            return Err(invalid("its PT_INTERP is not one path"));
        }
        return String::from_utf8(name.to_vec())
            .map(Some)
            .map_err(|_| invalid("its PT_INTERP is not UTF-8"));
    }
    Ok(None)
}

/// Fill `buffer` from `file` as far as the file goes; how many bytes were read.
fn read_up_to(file: &mut std::fs::File, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(class: u8, data: u8, machine: u16) -> [u8; 20] {
        let mut header = [0u8; 20];
        header[..4].copy_from_slice(&MAGIC);
        header[4] = class;
        header[5] = data;
        let bytes = if data == DATA_BIG_ENDIAN {
            machine.to_be_bytes()
        } else {
            machine.to_le_bytes()
        };
        header[18..20].copy_from_slice(&bytes);
        header
    }

    #[test]
    fn machines() {
        let cases = [
            (2, 1, 62, Some("linux/amd64")),
            (2, 1, 183, Some("linux/arm64")),
            (1, 1, 40, Some("linux/arm")),
            (1, 1, 3, Some("linux/386")),
            (2, 1, 21, Some("linux/ppc64le")),
            (2, 2, 22, Some("linux/s390x")),
            (2, 1, 243, Some("linux/riscv64")),
            (2, 1, 9999, None),
        ];
        for (class, data, machine, expected) in cases {
            let platform = platform_of_header(&header(class, data, machine))
                .map(|platform| platform.to_string());
            assert_eq!(platform.as_deref(), expected, "{machine}");
        }
        let mut script = [0u8; 20];
        script[..10].copy_from_slice(b"#!/bin/sh\n");
        assert_eq!(platform_of_header(&script), None);
    }

    #[test]
    fn this_test_binary_is_the_host() {
        let platform = platform_of(&std::env::current_exe().unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(platform.architecture, Platform::host().architecture);
    }

    /// A minimal ELF file: the header, one program header table of `headers` (type, offset,
    /// size), and `tail` at offset 0x200.
    fn elf(is_64: bool, big_endian: bool, headers: &[(u32, u64, u64)], tail: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0u8; 0x200];
        bytes[..4].copy_from_slice(&MAGIC);
        bytes[4] = if is_64 { CLASS_64 } else { 1 };
        bytes[5] = if big_endian { DATA_BIG_ENDIAN } else { 1 };
        let put = |bytes: &mut Vec<u8>, at: usize, value: u64, width: usize| {
            let all = if big_endian {
                value.to_be_bytes()
            } else {
                value.to_le_bytes()
            };
            let part = if big_endian {
                &all[8 - width..]
            } else {
                &all[..width]
            };
            bytes[at..at + width].copy_from_slice(part);
        };
        let table = 0x40;
        let entry = if is_64 { 56 } else { 32 };
        if is_64 {
            put(&mut bytes, 32, table, 8);
            put(&mut bytes, 54, entry, 2);
            put(&mut bytes, 56, headers.len() as u64, 2);
        } else {
            put(&mut bytes, 28, table, 4);
            put(&mut bytes, 42, entry, 2);
            put(&mut bytes, 44, headers.len() as u64, 2);
        }
        for (index, (kind, offset, size)) in headers.iter().enumerate() {
            let at = (table + index as u64 * entry) as usize;
            put(&mut bytes, at, u64::from(*kind), 4);
            if is_64 {
                put(&mut bytes, at + 8, *offset, 8);
                put(&mut bytes, at + 32, *size, 8);
            } else {
                put(&mut bytes, at + 4, *offset, 4);
                put(&mut bytes, at + 16, *size, 4);
            }
        }
        bytes.extend_from_slice(tail);
        bytes
    }

    /// Issue 21: the loader of 64- and 32-bit, little- and big-endian programs; none for a
    /// static one or a script; headers pointing past the file, and strings that are not one
    /// NUL-terminated path, are errors.
    #[test]
    fn interpreters() {
        let loader = b"/lib64/ld-linux-x86-64.so.2\0";
        let size = loader.len() as u64;
        let temp = tempfile::tempdir().unwrap();
        let read = |bytes: Vec<u8>| {
            let path = temp.path().join("program");
            std::fs::write(&path, bytes).unwrap();
            interpreter_of(&path).map_err(|error| error.to_string())
        };
        let expected = Ok(Some("/lib64/ld-linux-x86-64.so.2".to_owned()));
        for (is_64, big_endian) in [(true, false), (false, false), (true, true), (false, true)] {
            let headers = [(6, 0x40, 0x100), (PT_INTERP, 0x200, size), (1, 0, 0x1000)];
            assert_eq!(
                read(elf(is_64, big_endian, &headers, loader)),
                expected,
                "64-bit {is_64}, big-endian {big_endian}"
            );
            assert_eq!(
                read(elf(is_64, big_endian, &[(1, 0, 0x1000)], b"")),
                Ok(None)
            );
        }
        assert_eq!(read(b"#!/bin/sh\necho hello\n".to_vec()), Ok(None));
        for (headers, tail, error) in [
            (
                vec![(PT_INTERP, 0x200, size)],
                &b""[..],
                "past the end of the file",
            ),
            (
                vec![(PT_INTERP, 0x200, 0)],
                &loader[..],
                "empty or longer than a path",
            ),
            (
                vec![(PT_INTERP, 0x200, 8192)],
                &loader[..],
                "empty or longer than a path",
            ),
            (
                vec![(PT_INTERP, 0x200, size - 1)],
                &loader[..],
                "does not end with a NUL byte",
            ),
            (vec![(PT_INTERP, 0x200, 5)], &b"/a\0b\0"[..], "not one path"),
        ] {
            let text = read(elf(true, false, &headers, tail)).unwrap_err();
            assert!(text.contains(error), "{text}");
        }
    }

    #[test]
    fn this_test_binary_has_the_interpreter_the_host_gave_it() {
        // Rust's test binaries link the host's libc dynamically (unless built for musl).
        let interpreter = interpreter_of(&std::env::current_exe().unwrap()).unwrap();
        if cfg!(target_env = "gnu") {
            assert!(interpreter.unwrap().contains("ld-linux"));
        }
    }
}
