//! Go's build information read straight from a program, as `go version -m` reads it
//! (Go's `debug/buildinfo`), so an image's SBOM does not start a Go process per build.
//!
//! Written by hand: the part of ELF needed is the section header table (to find
//! `.go.buildinfo`) and no crate reads Go's record. The record, as Go 1.18 and later write it
//! (`cmd/link`, `debug/buildinfo`): 32 bytes of header — the magic `\xff Go buildinf:`
//! (14 bytes), the pointer size, a flags byte whose bit 1 says the strings follow inline
//! (older programs hold pointers instead: not read here) — then two strings, each a uvarint
//! length and its bytes: the Go version (`go1.27.3`) and the module information, which Go
//! wraps in 16 bytes of sentinel at each end. The module information is the text Go's
//! `debug.BuildInfo.String` wrote when it linked the program (`path`, `mod`, `dep`, `=>`,
//! `build` lines), and `go version -m FILE` prints `FILE: VERSION` and then each of those lines
//! after a tab: [`go_version_m_text`] renders exactly that, for
//! [`super::buildinfo::parse_go_version_m`] to read like Go's own output (the programs are
//! linked by the same pinned toolchain whose `go version -m` printed it before; a test checks
//! the two agree on a real program).
//!
//! Anything else (not ELF, no `.go.buildinfo` section, pointer-format records, a truncated
//! record) is `None`: the caller asks `go version -m` instead.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// The magic at the start of the build-info record.
const MAGIC: &[u8; 14] = b"\xff Go buildinf:";
/// The record's header length (magic, pointer size, flags, padding).
const HEADER_SIZE: usize = 32;
/// Flag: version and module information follow the header inline.
const FLAG_VERSION_INLINE: u8 = 0x2;
/// The longest section kiln reads (Go's is a few KiB; a hostile file cannot make kiln
/// allocate more).
const SECTION_LIMIT: u64 = 16 << 20;

/// What `go version -m` would print for the program at `path`, named `name` (`FILE` in
/// `FILE: VERSION`), or `None` when the program's record is not one this reads.
pub fn go_version_m_text(path: &Path, name: &str) -> io::Result<Option<String>> {
    let mut file = std::fs::File::open(path)?;
    let Some(section) = buildinfo_section(&mut file)? else {
        return Ok(None);
    };
    Ok(render(&section, name))
}

/// `go version -m` text of a `.go.buildinfo` section's bytes.
fn render(section: &[u8], name: &str) -> Option<String> {
    if section.len() < HEADER_SIZE || &section[..MAGIC.len()] != MAGIC {
        return None;
    }
    if section[15] & FLAG_VERSION_INLINE == 0 {
        return None;
    }
    let rest = &section[HEADER_SIZE..];
    let (version, rest) = varint_string(rest)?;
    let (modules, _) = varint_string(rest)?;
    let version = std::str::from_utf8(version).ok()?;
    // Go strips the sentinels when the text is long enough to hold them and ends in a newline
    // 17 bytes from its end (`debug/buildinfo`).
    let modules = if modules.len() >= 33 && modules[modules.len() - 17] == b'\n' {
        &modules[16..modules.len() - 16]
    } else {
        return None;
    };
    let modules = std::str::from_utf8(modules).ok()?;
    if version.is_empty() || version.contains('\n') {
        return None;
    }
    let mut text = format!("{name}: {version}\n");
    if let Some(body) = modules.strip_suffix('\n') {
        for line in body.split('\n') {
            text.push('\t');
            text.push_str(line);
            text.push('\n');
        }
    }
    Some(text)
}

/// A uvarint length and that many bytes; the rest after them.
fn varint_string(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut length: u64 = 0;
    let mut shift = 0;
    let mut used = 0;
    loop {
        let byte = *bytes.get(used)?;
        used += 1;
        length |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte < 0x80 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    let length = usize::try_from(length).ok()?;
    let end = used.checked_add(length)?;
    Some((bytes.get(used..end)?, &bytes[end..]))
}

/// The bytes of the `.go.buildinfo` section of the ELF file `file`, if it has one.
fn buildinfo_section(file: &mut std::fs::File) -> io::Result<Option<Vec<u8>>> {
    let mut ident = [0u8; 64];
    if read_at(file, 0, &mut ident).is_err() || ident[..4] != *b"\x7fELF" {
        return Ok(None);
    }
    let elf = Elf {
        is_64: match ident[4] {
            1 => false,
            2 => true,
            _ => return Ok(None),
        },
        big_endian: match ident[5] {
            1 => false,
            2 => true,
            _ => return Ok(None),
        },
    };
    let (section_offset, entry_size, count, names_index) = if elf.is_64 {
        (
            elf.u64(&ident[0x28..]),
            u64::from(elf.u16(&ident[0x3a..])),
            u64::from(elf.u16(&ident[0x3c..])),
            u64::from(elf.u16(&ident[0x3e..])),
        )
    } else {
        (
            u64::from(elf.u32(&ident[0x20..])),
            u64::from(elf.u16(&ident[0x2e..])),
            u64::from(elf.u16(&ident[0x30..])),
            u64::from(elf.u16(&ident[0x32..])),
        )
    };
    let minimum = if elf.is_64 { 64 } else { 40 };
    // Real section headers are 40 or 64 bytes: a larger entry size (up to 64 KiB × 4096) is
    // not a program Go linked, and must not make kiln allocate for it.
    if entry_size < minimum
        || entry_size > 256
        || count == 0
        || names_index >= count
        || count > 4096
    {
        return Ok(None);
    }
    let mut table = vec![0u8; (entry_size * count) as usize];
    if read_at(file, section_offset, &mut table).is_err() {
        return Ok(None);
    }
    let header = |index: u64| -> (u32, u64, u64) {
        let entry = &table[(index * entry_size) as usize..];
        if elf.is_64 {
            (
                elf.u32(entry),
                elf.u64(&entry[0x18..]),
                elf.u64(&entry[0x20..]),
            )
        } else {
            (
                elf.u32(entry),
                u64::from(elf.u32(&entry[0x10..])),
                u64::from(elf.u32(&entry[0x14..])),
            )
        }
    };
    let (_, names_offset, names_size) = header(names_index);
    if names_size > SECTION_LIMIT {
        return Ok(None);
    }
    let mut names = vec![0u8; names_size as usize];
    if read_at(file, names_offset, &mut names).is_err() {
        return Ok(None);
    }
    for index in 0..count {
        let (name, offset, size) = header(index);
        let name = names.get(name as usize..).unwrap_or_default();
        let name = name.split(|&byte| byte == 0).next().unwrap_or_default();
        if name != b".go.buildinfo" {
            continue;
        }
        if size > SECTION_LIMIT {
            return Ok(None);
        }
        let mut section = vec![0u8; size as usize];
        if read_at(file, offset, &mut section).is_err() {
            return Ok(None);
        }
        return Ok(Some(section));
    }
    Ok(None)
}

/// Read exactly `buffer.len()` bytes at `offset`.
fn read_at(file: &mut std::fs::File, offset: u64, buffer: &mut [u8]) -> io::Result<()> {
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buffer)
}

/// How to read the file's integers.
#[derive(Clone, Copy)]
struct Elf {
    is_64: bool,
    big_endian: bool,
}

impl Elf {
    fn u16(self, bytes: &[u8]) -> u16 {
        let raw = [bytes[0], bytes[1]];
        if self.big_endian {
            u16::from_be_bytes(raw)
        } else {
            u16::from_le_bytes(raw)
        }
    }

    fn u32(self, bytes: &[u8]) -> u32 {
        let raw = [bytes[0], bytes[1], bytes[2], bytes[3]];
        if self.big_endian {
            u32::from_be_bytes(raw)
        } else {
            u32::from_le_bytes(raw)
        }
    }

    fn u64(self, bytes: &[u8]) -> u64 {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(&bytes[..8]);
        if self.big_endian {
            u64::from_be_bytes(raw)
        } else {
            u64::from_le_bytes(raw)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(version: &str, modules: &str) -> Vec<u8> {
        let mut section = MAGIC.to_vec();
        section.push(8);
        section.push(FLAG_VERSION_INLINE);
        section.resize(HEADER_SIZE, 0);
        let wrapped = format!("{}{modules}{}", "S".repeat(16), "T".repeat(16));
        for text in [version, wrapped.as_str()] {
            let mut length = text.len();
            while length >= 0x80 {
                section.push((length as u8 & 0x7f) | 0x80);
                length >>= 7;
            }
            section.push(length as u8);
            section.extend_from_slice(text.as_bytes());
        }
        section
    }

    #[test]
    fn renders_what_go_version_m_prints() {
        let modules = "path\texample.com/app\nmod\texample.com/app\t(devel)\t\nbuild\tGOOS=linux\n";
        assert_eq!(
            render(&record("go1.27.3", modules), "bin/app").unwrap(),
            "bin/app: go1.27.3\n\tpath\texample.com/app\n\tmod\texample.com/app\t(devel)\t\n\tbuild\tGOOS=linux\n"
        );
        // Long module text: a two-byte length.
        let long = format!(
            "path\texample.com/app\n{}",
            "dep\texample.com/x\tv1.0.0\th1:abc=\n".repeat(20)
        );
        let text = render(&record("go1.27.3", &long), "app").unwrap();
        assert_eq!(text.lines().count(), 22);
    }

    #[test]
    fn unreadable_records_are_none() {
        let good = record("go1.27.3", "path\texample.com/app\nbuild\tGOOS=linux\n");
        let mut pointers = good.clone();
        pointers[15] = 0;
        assert_eq!(render(&pointers, "app"), None);
        assert_eq!(render(&good[..40], "app"), None);
        assert_eq!(render(b"not a record at all, not at all, no", "app"), None);
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("script");
        std::fs::write(&path, "#!/bin/sh\necho hi\n").unwrap();
        assert_eq!(go_version_m_text(&path, "script").unwrap(), None);
        let truncated = temp.path().join("elf");
        std::fs::write(&truncated, b"\x7fELF\x02\x01\x01").unwrap();
        assert_eq!(go_version_m_text(&truncated, "elf").unwrap(), None);
    }

    /// Go is the oracle: a program built by the real `go build` (with a replaced module, so
    /// `=>` lines are covered), read here and by `go version -m`. Needs Go (`KILN_TEST_GO` or
    /// PATH): without it, a [`crate::skip_test`].
    #[test]
    fn matches_go_version_m() {
        let Some(go) = crate::test_go("gomod::goelf::tests::matches_go_version_m") else {
            return;
        };
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path();
        let app = root.join("app");
        let lib = root.join("lib");
        std::fs::create_dir_all(&app).unwrap();
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::write(lib.join("go.mod"), "module example.com/lib\n\ngo 1.21\n").unwrap();
        std::fs::write(
            lib.join("lib.go"),
            "package lib\n\nfunc Name() string { return \"lib\" }\n",
        )
        .unwrap();
        std::fs::write(
            app.join("go.mod"),
            "module example.com/app\n\ngo 1.21\n\nrequire example.com/lib v1.0.0\n\nreplace example.com/lib => ../lib\n",
        )
        .unwrap();
        std::fs::write(
            app.join("main.go"),
            "package main\n\nimport \"example.com/lib\"\n\nfunc main() { println(lib.Name()) }\n",
        )
        .unwrap();
        let run = |arguments: &[&str], arch: &str| {
            let output = std::process::Command::new(&go)
                .args(arguments)
                .current_dir(&app)
                .env_clear()
                .env("PATH", "/usr/bin:/bin")
                .env("HOME", root)
                .env("GOPATH", root.join("gopath"))
                .env("GOCACHE", root.join("gocache"))
                .env("GOPROXY", "off")
                .env("GOFLAGS", "")
                .env("GOTOOLCHAIN", "local")
                .env("CGO_ENABLED", "0")
                .env("GOOS", "linux")
                .env("GOARCH", arch)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8(output.stdout).unwrap()
        };
        for arch in ["amd64", "arm64", "386"] {
            let program = format!("app-{arch}");
            run(
                &[
                    "build",
                    "-trimpath",
                    "-ldflags=-X main.unused=1",
                    "-o",
                    &program,
                    ".",
                ],
                arch,
            );
            let expected = run(&["version", "-m", &program], arch);
            assert!(expected.contains("=>"), "{expected}");
            assert_eq!(
                go_version_m_text(&app.join(&program), &program)
                    .unwrap()
                    .unwrap(),
                expected,
                "{arch}"
            );
        }
    }
}
