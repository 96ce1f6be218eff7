//! The checks every zip kiln reads from the network gets, whatever format it carries: Go
//! module zips ([`crate::gomod::modzip`]) and the PyPI wheels of the static base
//! ([`crate::static_base`]). A zip is hostile until checked, and the same tricks work on
//! both: an entry that is a link or a device by its mode, a second name hidden in an extra
//! field, a header that lies about a size so a few kB inflate to gigabytes.
//!
//! What is pinned here, for both formats:
//!
//! - an entry's type comes from the Unix mode in the high 16 bits of its external attributes
//!   (`S_IFMT`, `0o170000`); no mode (0, as DOS tools write) counts as a regular file, and a
//!   folder is a name ending in `/`, so a folder mode under a name without one is refused
//!   ([`irregular_kind`]);
//! - an entry carrying an Info-ZIP Unicode Path extra field (`0x7075`) has two names: the zip
//!   crate renames the entry by the field, Go and most readers ignore it ([`has_second_name`]);
//! - declared sizes are bounded before any content is read ([`Budget`]), and then not
//!   trusted: content is read through a limit of its declared size plus one byte, so a
//!   deflate bomb stops one byte past its claim, and the real bytes must match the claim
//!   exactly, with the CRC-32 checked ([`read_declared`]).
//!
//! What a name may be is each format's own rule (Go's `CheckFilePath` for module zips), as is
//! every message: each caller maps the reasons here into its own error, in its own words. A
//! leaf: it imports nothing of kiln.

use std::io::Read;

use zip::read::ZipFile;

/// The longest name kiln accepts for an entry, Linux's `PATH_MAX`: longer ones cannot be
/// opened.
pub const PATH_MAX: usize = 4096;

/// The most bytes reserved ahead of reading an entry whatever its header declares; the
/// content grows past it as it is read.
const PREALLOCATE_AT_MOST: u64 = 1 << 20;

/// What a zip entry is by its Unix mode, when it is neither a regular file nor a folder named
/// as one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Irregular {
    /// A folder by its mode, under a name without the trailing `/` that makes a folder.
    FolderWithoutSlash,
    Symlink,
    NamedPipe,
    CharacterDevice,
    BlockDevice,
    Socket,
    /// Type bits that name no Unix file type.
    Unknown,
}

impl Irregular {
    /// The kind as a noun to follow "a": `symlink`, `named pipe`.
    pub fn noun(self) -> &'static str {
        match self {
            Irregular::FolderWithoutSlash => "folder (by its mode) without a trailing `/`",
            Irregular::Symlink => "symlink",
            Irregular::NamedPipe => "named pipe",
            Irregular::CharacterDevice => "character device",
            Irregular::BlockDevice => "block device",
            Irregular::Socket => "socket",
            Irregular::Unknown => "file of unknown type",
        }
    }
}

impl std::fmt::Display for Irregular {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.noun())
    }
}

/// The kind of an entry whose Unix `mode` (the zip crate's `unix_mode()`, 0 when it has
/// none) is neither a regular file's nor, for a name ending in `/` (`is_folder`), a folder's.
pub fn irregular_kind(mode: u32, is_folder: bool) -> Option<Irregular> {
    match mode & 0o170_000 {
        0 | 0o100_000 => None,
        0o040_000 if is_folder => None,
        0o040_000 => Some(Irregular::FolderWithoutSlash),
        0o120_000 => Some(Irregular::Symlink),
        0o010_000 => Some(Irregular::NamedPipe),
        0o020_000 => Some(Irregular::CharacterDevice),
        0o060_000 => Some(Irregular::BlockDevice),
        0o140_000 => Some(Irregular::Socket),
        _ => Some(Irregular::Unknown),
    }
}

/// Whether the entry carries an Info-ZIP Unicode Path extra field, a second name for it.
pub fn has_second_name<R: Read>(file: &ZipFile<'_, R>) -> bool {
    file.extra_data_fields()
        .any(|field| matches!(field, zip::ExtraField::UnicodePath(_)))
}

/// The declared sizes of the files taken from a zip, added up against a limit.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    limit: u64,
    used: u64,
}

/// The entry that would take a [`Budget`] past its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverBudget;

impl Budget {
    pub fn new(limit: u64) -> Self {
        Budget { limit, used: 0 }
    }

    /// Count `declared` bytes; refused (and not counted) when the sum would pass the limit.
    pub fn take(&mut self, declared: u64) -> Result<(), OverBudget> {
        match self.used.checked_add(declared) {
            Some(used) if used <= self.limit => {
                self.used = used;
                Ok(())
            }
            _ => Err(OverBudget),
        }
    }
}

/// Why an entry's content is not what its header declares.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// Corrupt data or a wrong CRC-32 (the zip crate checks it when the content ends).
    #[error(transparent)]
    Read(std::io::Error),
    #[error("it holds {actual} bytes where its header declares {declared}")]
    Fewer { declared: u64, actual: u64 },
    #[error("it holds more than the {declared} bytes its header declares")]
    More { declared: u64 },
}

/// The content of an entry whose header declares `declared` bytes, read through a limit of
/// `declared` plus one byte: exactly `declared` bytes, or an error.
pub fn read_declared(file: &mut impl Read, declared: u64) -> Result<Vec<u8>, ContentError> {
    let capacity = usize::try_from(declared.min(PREALLOCATE_AT_MOST)).unwrap_or(0);
    let mut content = Vec::with_capacity(capacity);
    (&mut *file)
        .take(declared.saturating_add(1))
        .read_to_end(&mut content)
        .map_err(ContentError::Read)?;
    let actual = content.len() as u64;
    if actual < declared {
        return Err(ContentError::Fewer { declared, actual });
    }
    // The zip crate checks the CRC-32 when a read returns no more bytes; one more read after
    // the content makes sure that happened, and that nothing follows.
    let mut probe = [0u8; 1];
    let more = if actual == declared {
        file.read(&mut probe).map_err(ContentError::Read)?
    } else {
        1
    };
    if more != 0 {
        return Err(ContentError::More { declared });
    }
    Ok(content)
}

/// The central directory's entries from `directory_start` on, as raw names: the zip crate
/// keeps one entry per name, so a name that comes twice can only be named from the bytes.
/// Stops at the first byte that is not a central directory header.
pub fn central_directory_names(bytes: &[u8], directory_start: u64) -> Vec<&[u8]> {
    const SIGNATURE: &[u8] = b"PK\x01\x02";
    const FIXED: usize = 46;
    let mut names = Vec::new();
    let Ok(mut position) = usize::try_from(directory_start) else {
        return names;
    };
    let field = |at: usize| -> Option<usize> {
        let pair = bytes.get(at..at.checked_add(2)?)?;
        Some(usize::from(u16::from_le_bytes([pair[0], pair[1]])))
    };
    while bytes.get(position..position.saturating_add(4)) == Some(SIGNATURE) {
        let (Some(name_length), Some(extra_length), Some(comment_length)) = (
            field(position + 28),
            field(position + 30),
            field(position + 32),
        ) else {
            break;
        };
        let name_start = position + FIXED;
        let Some(name) = bytes.get(name_start..name_start + name_length) else {
            break;
        };
        names.push(name);
        position = name_start + name_length + extra_length + comment_length;
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};
    use zip::ZipWriter;
    use zip::write::SimpleFileOptions;

    #[test]
    fn modes_name_their_kind() {
        for (mode, is_folder, expected) in [
            (0, false, None),
            (0, true, None),
            (0o100_644, false, None),
            (0o100_644, true, None),
            (0o040_755, true, None),
            (0o040_755, false, Some(Irregular::FolderWithoutSlash)),
            (0o120_777, false, Some(Irregular::Symlink)),
            (0o120_777, true, Some(Irregular::Symlink)),
            (0o010_644, false, Some(Irregular::NamedPipe)),
            (0o020_644, false, Some(Irregular::CharacterDevice)),
            (0o060_644, false, Some(Irregular::BlockDevice)),
            (0o140_644, false, Some(Irregular::Socket)),
            (0o170_644, false, Some(Irregular::Unknown)),
        ] {
            assert_eq!(irregular_kind(mode, is_folder), expected, "{mode:o}");
        }
        assert_eq!(Irregular::NamedPipe.to_string(), "named pipe");
    }

    #[test]
    fn a_budget_refuses_what_passes_its_limit() {
        let mut budget = Budget::new(10);
        assert_eq!(budget.take(4), Ok(()));
        assert_eq!(budget.take(7), Err(OverBudget));
        assert_eq!(budget.take(6), Ok(()), "a refused size is not counted");
        assert_eq!(budget.take(1), Err(OverBudget));
        assert_eq!(Budget::new(u64::MAX).take(u64::MAX), Ok(()));
        let mut full = Budget::new(u64::MAX);
        full.take(u64::MAX).unwrap();
        assert_eq!(full.take(1), Err(OverBudget), "no overflow");
    }

    #[test]
    fn content_must_be_what_its_header_declares() {
        assert_eq!(read_declared(&mut &b"four"[..], 4).unwrap(), b"four");
        let fewer = read_declared(&mut &b"four"[..], 5).unwrap_err();
        assert_eq!(
            fewer.to_string(),
            "it holds 4 bytes where its header declares 5"
        );
        let more = read_declared(&mut &b"four"[..], 3).unwrap_err();
        assert_eq!(
            more.to_string(),
            "it holds more than the 3 bytes its header declares"
        );
        // A reader that never ends is stopped one byte past the claim.
        let mut endless = std::io::repeat(0);
        assert!(matches!(
            read_declared(&mut endless, 1 << 20),
            Err(ContentError::More { declared }) if declared == 1 << 20
        ));
    }

    #[test]
    fn the_central_directory_names_every_entry() {
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        for name in ["a", "b/", "b/c"] {
            if name.ends_with('/') {
                writer
                    .add_directory(name, SimpleFileOptions::default())
                    .unwrap();
            } else {
                writer
                    .start_file(name, SimpleFileOptions::default())
                    .unwrap();
                writer.write_all(name.as_bytes()).unwrap();
            }
        }
        let bytes = writer.finish().unwrap().into_inner();
        let archive = zip::ZipArchive::new(Cursor::new(&bytes[..])).unwrap();
        let names = central_directory_names(&bytes, archive.central_directory_start());
        assert_eq!(names, [&b"a"[..], b"b/", b"b/c"]);
        assert!(central_directory_names(&bytes, bytes.len() as u64).is_empty());
        assert!(central_directory_names(&bytes, u64::MAX).is_empty());
    }
}
