//! Which platform a Linux executable is for, from its ELF header.
//!
//! `kiln image` packs files it did not build; the platform an image declares must describe
//! those files, not the machine kiln happens to run on, or the same files would give
//! different digests on an amd64 laptop and an arm64 CI runner. The header's class (32/64
//! bit), byte order and `e_machine` name the architecture in Go's and OCI's terms. Variants
//! (`arm/v7`, `arm64/v8`) are not in the header and are left out.
//!
//! Read here because only 20 bytes of the header are needed; no crate is worth it.

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
}
