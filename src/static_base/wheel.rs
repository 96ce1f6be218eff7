//! Reading a wheel, a zip from the network and hostile until checked (after its sha256 matched
//! the pin): every entry, not just the ones taken, must have a relative name without `.`,
//! `..` or empty elements, backslashes, control characters or elements starting with `.wh.`
//! (layer whiteouts), and must be a regular file or a folder (no links); no name may come
//! twice. Sizes are bounded (see [`super::LIMITS`]), and every file taken must not carry a
//! second name (an Info-ZIP Unicode Path field) and is read through a limit of its declared
//! size, its CRC-32 checked (the checks every zip from the network gets,
//! [`crate::zip_hygiene`]). Which files are taken, and where they go, is the caller's.

use std::io::Cursor;

use zip::ZipArchive;
use zip::result::ZipError;

use super::WheelLimits;
use crate::oci::tree::WHITEOUT_PREFIX;
use crate::zip_hygiene::{
    Budget, Irregular, PATH_MAX, has_second_name, irregular_kind, read_declared,
};

/// The longest entry name accepted, Linux's `PATH_MAX`.
const MAX_ENTRY_NAME: usize = PATH_MAX;

#[derive(Debug, thiserror::Error)]
pub enum WheelError {
    #[error("the wheel {url} cannot be read as a zip archive")]
    Unreadable {
        url: String,
        #[source]
        source: ZipError,
    },
    #[error("the wheel {url} has more than {limit} entries")]
    TooManyEntries { url: String, limit: usize },
    #[error("the wheel {url} has the entry {entry:?}, which kiln refuses: {reason}")]
    HostileEntry {
        url: String,
        entry: String,
        reason: String,
    },
    #[error("the wheel {url} names the entry {entry:?} more than once")]
    DuplicateEntry { url: String, entry: String },
    #[error("the wheel {url} has the entry {entry:?} of {size} bytes, over the limit of {limit}")]
    EntryTooLarge {
        url: String,
        entry: String,
        size: u64,
        limit: u64,
    },
    #[error(
        "the files kiln takes from the wheel {url} add up to more than {limit} bytes (passed at {entry:?})"
    )]
    TotalTooLarge {
        url: String,
        entry: String,
        limit: u64,
    },
    #[error("the wheel {url} has the entry {entry:?}, which cannot be read: {reason}")]
    EntryUnreadable {
        url: String,
        entry: String,
        reason: String,
    },
}

/// Why an entry name is refused, if it is. A folder's name ends in `/`.
fn name_problem(name: &str) -> Option<&'static str> {
    let path = name.strip_suffix('/').unwrap_or(name);
    if path.is_empty() {
        return Some("its name is empty");
    }
    if name.len() > MAX_ENTRY_NAME {
        return Some("its name is longer than Linux's PATH_MAX");
    }
    if path.starts_with('/') {
        return Some("its name is absolute");
    }
    if path.contains('\\') {
        return Some("its name has a backslash, a separator on Windows");
    }
    if path.chars().any(char::is_control) {
        return Some("its name has a control character");
    }
    for element in path.split('/') {
        match element {
            "" => return Some("its name has an empty element (`//`)"),
            "." | ".." => return Some("its name has a `.` or `..` element"),
            _ if element.starts_with(WHITEOUT_PREFIX) => {
                return Some("its name has an element starting with `.wh.`, a layer whiteout");
            }
            _ => {}
        }
    }
    None
}

/// Check every entry of the wheel `bytes` (see the module doc) and return the files `select`
/// maps to a destination, as (destination, content), sorted by destination.
pub fn read_wheel(
    bytes: &[u8],
    url: &str,
    limits: WheelLimits,
    select: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(String, Vec<u8>)>, WheelError> {
    let mut archive =
        ZipArchive::new(Cursor::new(bytes)).map_err(|source| WheelError::Unreadable {
            url: url.to_owned(),
            source,
        })?;
    if archive.len() > limits.entries {
        return Err(WheelError::TooManyEntries {
            url: url.to_owned(),
            limit: limits.entries,
        });
    }
    // The zip crate keeps one entry per name and only flags that a name came twice.
    if archive.has_duplicate_names() {
        let mut seen = std::collections::BTreeSet::new();
        let duplicate = (0..archive.len())
            .filter_map(|index| archive.by_index_data(index).ok())
            .map(|entry| String::from_utf8_lossy(entry.name_raw()).into_owned())
            .find(|name| !seen.insert(name.clone()))
            .unwrap_or_default();
        return Err(WheelError::DuplicateEntry {
            url: url.to_owned(),
            entry: duplicate,
        });
    }

    // First every name, type and declared size, reading no contents.
    let mut taken = Vec::new();
    let mut total = Budget::new(limits.total);
    for index in 0..archive.len() {
        let entry = archive
            .by_index_data(index)
            .map_err(|source| WheelError::Unreadable {
                url: url.to_owned(),
                source,
            })?;
        let lossy_name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        let hostile = |reason: &str| WheelError::HostileEntry {
            url: url.to_owned(),
            entry: lossy_name.clone(),
            reason: reason.to_owned(),
        };
        let name = std::str::from_utf8(entry.name_raw())
            .map_err(|_| hostile("its name is not valid UTF-8"))?;
        if let Some(problem) = name_problem(name) {
            return Err(hostile(problem));
        }
        let is_folder = name.ends_with('/');
        match irregular_kind(entry.unix_mode().unwrap_or(0), is_folder) {
            None => {}
            Some(Irregular::FolderWithoutSlash) => {
                return Err(hostile(
                    "it is a folder by its mode but its name has no `/`",
                ));
            }
            Some(kind) => return Err(hostile(&format!("it is a {kind}"))),
        }
        if is_folder {
            continue;
        }
        let Some(destination) = select(name) else {
            continue;
        };
        let declared = entry.size();
        if declared > limits.file {
            return Err(WheelError::EntryTooLarge {
                url: url.to_owned(),
                entry: lossy_name,
                size: declared,
                limit: limits.file,
            });
        }
        if total.take(declared).is_err() {
            return Err(WheelError::TotalTooLarge {
                url: url.to_owned(),
                entry: lossy_name,
                limit: limits.total,
            });
        }
        taken.push((index, name.to_owned(), destination, declared));
    }

    // Then the contents of what is taken, each bounded by its declared size.
    let mut files = Vec::with_capacity(taken.len());
    for (index, name, destination, declared) in taken {
        let unreadable = |reason: String| WheelError::EntryUnreadable {
            url: url.to_owned(),
            entry: name.clone(),
            reason,
        };
        let mut file = archive
            .by_index(index)
            .map_err(|error| unreadable(error.to_string()))?;
        if has_second_name(&file) {
            return Err(WheelError::HostileEntry {
                url: url.to_owned(),
                entry: name,
                reason: "it carries a second name (an Info-ZIP Unicode Path field)".to_owned(),
            });
        }
        let content =
            read_declared(&mut file, declared).map_err(|error| unreadable(error.to_string()))?;
        files.push((destination, content));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use zip::ZipWriter;
    use zip::write::SimpleFileOptions;

    use crate::static_base::LIMITS;
    use crate::static_base::tests::{URL, options, wheel};

    #[test]
    fn entry_names_are_checked() {
        for (name, expected) in [
            ("tzdata/zoneinfo/America/Argentina/Buenos_Aires", None),
            ("tzdata/zoneinfo/", None),
            ("certifi-2026.1.dist-info/RECORD", None),
            ("", Some("its name is empty")),
            ("/", Some("its name is empty")),
            ("/etc/passwd", Some("its name is absolute")),
            ("../etc/passwd", Some("its name has a `.` or `..` element")),
            ("tzdata/../../x", Some("its name has a `.` or `..` element")),
            ("tzdata/./x", Some("its name has a `.` or `..` element")),
            ("tzdata//x", Some("its name has an empty element (`//`)")),
            (
                "tzdata\\..\\x",
                Some("its name has a backslash, a separator on Windows"),
            ),
            ("tzdata/x\0y", Some("its name has a control character")),
            ("tzdata/x\ny", Some("its name has a control character")),
            (
                "tzdata/zoneinfo/.wh.UTC",
                Some("its name has an element starting with `.wh.`, a layer whiteout"),
            ),
        ] {
            assert_eq!(name_problem(name), expected, "{name:?}");
        }
        assert_eq!(
            name_problem(&"a/".repeat(2100)),
            Some("its name is longer than Linux's PATH_MAX")
        );
    }

    fn take_everything(name: &str) -> Option<String> {
        Some(name.to_owned())
    }

    /// The error `read_wheel` gives for `bytes`, which must name the URL and contain
    /// `expected`.
    fn refusal(bytes: &[u8], limits: WheelLimits, expected: &str) -> WheelError {
        let error = read_wheel(bytes, URL, limits, take_everything).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains(URL) && message.contains(expected),
            "{message:?} should name {URL} and contain {expected:?}"
        );
        error
    }

    #[test]
    fn hostile_wheels_are_refused() {
        // Names: refused in any entry, even one kiln would not take.
        for name in ["../evil", "/etc/passwd", "a/../../evil", "a\\b", "a//b"] {
            let bytes = wheel(&[("tzdata/zoneinfo/UTC", b"TZif"), (name, b"x")]);
            let error = read_wheel(&bytes, URL, LIMITS, |_| None).unwrap_err();
            assert!(
                matches!(&error, WheelError::HostileEntry { entry, .. } if entry == name),
                "{name:?}: {error}"
            );
        }

        // Links and other non-regular files.
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        writer
            .add_symlink("tzdata/zoneinfo/localtime", "/etc/shadow", options())
            .unwrap();
        let bytes = writer.finish().unwrap().into_inner();
        refusal(
            &bytes,
            LIMITS,
            "\"tzdata/zoneinfo/localtime\", which kiln refuses: it is a symlink",
        );

        // The zip crate writes only files, folders and symlinks; a FIFO's mode is patched into
        // the central directory's external attributes (offset 38, the Unix mode in the high
        // 16 bits).
        let mut bytes = wheel(&[("tzdata/zoneinfo/fifo", b"")]);
        let central = bytes
            .windows(4)
            .position(|window| window == b"PK\x01\x02")
            .unwrap();
        bytes[central + 38..central + 42].copy_from_slice(&(0o010_644u32 << 16).to_le_bytes());
        refusal(&bytes, LIMITS, "it is a named pipe");

        // Not a zip at all.
        refusal(
            b"PK\x03\x04 not really",
            LIMITS,
            "cannot be read as a zip archive",
        );
    }

    #[test]
    fn wheel_sizes_are_bounded() {
        let bytes = wheel(&[("a", b"1"), ("b", b"2"), ("c", b"3")]);
        let limits = |entries, file, total| WheelLimits {
            wheel: LIMITS.wheel,
            entries,
            file,
            total,
        };
        refusal(&bytes, limits(2, 10, 10), "has more than 2 entries");
        assert_eq!(
            read_wheel(&bytes, URL, limits(3, 10, 10), take_everything)
                .unwrap()
                .len(),
            3
        );

        let big = vec![b'z'; 4096];
        let bytes = wheel(&[("tzdata/zoneinfo/Big", &big), ("small", b"x")]);
        refusal(
            &bytes,
            limits(10, 4095, 1 << 20),
            "\"tzdata/zoneinfo/Big\" of 4096 bytes, over the limit of 4095",
        );
        refusal(
            &bytes,
            limits(10, 4096, 4096),
            "add up to more than 4096 bytes (passed at \"small\")",
        );
        // Sizes count only for what is taken: a large file left out is never read.
        let taken = read_wheel(&bytes, URL, limits(10, 16, 16), |name| {
            (name == "small").then(|| name.to_owned())
        })
        .unwrap();
        assert_eq!(taken, [("small".to_owned(), b"x".to_vec())]);
    }

    #[test]
    fn a_declared_size_is_not_trusted() {
        let stored_wheel = || {
            let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
            let stored =
                SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
            writer.start_file("tzdata/zoneinfo/UTC", stored).unwrap();
            writer.write_all(b"TZif2").unwrap();
            writer.finish().unwrap().into_inner()
        };
        // Content changed after its CRC-32 was written.
        let mut bytes = stored_wheel();
        let position = bytes
            .windows(5)
            .position(|window| window == b"TZif2")
            .unwrap();
        bytes[position + 4] = b'3';
        refusal(&bytes, LIMITS, "which cannot be read");

        // Headers that declare 3 bytes where 5 follow (uncompressed size at offset 22 of the
        // local header and 24 of the central directory's).
        let mut bytes = stored_wheel();
        for (signature, offset) in [(b"PK\x03\x04", 22), (b"PK\x01\x02", 24)] {
            let header = bytes
                .windows(4)
                .position(|window| window == signature)
                .unwrap();
            bytes[header + offset..header + offset + 4].copy_from_slice(&3u32.to_le_bytes());
        }
        refusal(&bytes, LIMITS, "which cannot be read");
    }
}
