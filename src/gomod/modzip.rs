//! Module zips as a GOPROXY serves them (`$GOPROXY/<module>/@v/<version>.zip`), read and
//! checked before anything in them is trusted.
//!
//! The format is golang.org/x/mod/zip's: every entry is named `<module>@<version>/<path>`
//! (the module path unescaped, as in go.mod), files are stored or deflated, and nothing but
//! names and contents counts: modes, times and comments are ignored, every file unpacks as a
//! plain non-executable file. go.sum's `h1:` is taken over exactly those names and contents,
//! so kiln sees what Go sees and the hash decides whether the zip is the one go.sum pinned.
//!
//! A zip comes from the network and is hostile until proven otherwise, so [`read`] applies
//! the rules of Go's `CheckZip` and `Unzip` (x/mod `zip/zip.go`, `module/module.go`) to the
//! whole archive before returning anything:
//!
//! - the zip itself is at most [`ZipLimits::zip`] bytes (Go's `MaxZipFile`, 500 MiB);
//! - every entry name starts with `<module>@<version>/`; the entry named just that (the root
//!   folder) is skipped, and other folder entries (names ending in `/`) are checked like
//!   files but otherwise ignored, as Go ignores them;
//! - the path after the prefix passes Go's `CheckFilePath` ([`super::filepath`]): valid UTF-8, non-empty, no
//!   leading or trailing `/`, no empty elements, no element made only of dots (`.`, `..`),
//!   no element ending in a dot, only ASCII letters, digits and `!#$%&()+,-.=@[]^_{}~ ` or
//!   non-ASCII letters (so no `\`, `:`, control characters or NUL), and no element whose part
//!   before the first dot is a reserved Windows name (`CON`, `NUL`, `COM1`, … any case);
//! - no two paths are equal under Unicode case folding, and no path is both a file and a
//!   folder (Go's collision check, which also folds the parent folders of every file);
//! - a file named `go.mod` in any case is the top-level `go.mod`, spelled exactly so: Go
//!   refuses one in a subfolder (a nested module's files belong to that module's own zip);
//! - the files add up to at most [`ZipLimits::zip`] bytes, the top-level `go.mod` to at most
//!   [`ZipLimits::go_mod`] and the top-level `LICENSE` to at most [`ZipLimits::license`];
//! - every file holds exactly the number of bytes its header declares, and its CRC-32
//!   matches. The declared sizes are checked against the limits first, but they are never
//!   trusted: each file is read through a limit of its declared size plus one byte, so a
//!   deflate bomb stops there, and the real bytes decide.
//!
//! Stricter than Go, where Go's own readers would disagree about the zip or fail later:
//!
//! - symlinks and other non-regular files (by the Unix mode in the external attributes)
//!   are refused. Go's documentation forbids them but `CheckZip` never looks at modes and
//!   `Unzip` would write a symlink's target as a regular file; Go's `Create` never writes
//!   one, so a zip holding one did not come from Go;
//! - an entry carrying an Info-ZIP Unicode Path extra field (`0x7075`) is refused: the zip
//!   crate renames the entry by it, Go ignores it, so such an entry has two names;
//! - paths longer than [`MAX_FILE_PATH`](super::filepath::MAX_FILE_PATH) bytes are refused: Linux cannot open them (Go's
//!   `Unzip` would fail too), and it bounds the depth of the in-memory tree hashed for NAR.
//!
//! Two approximations, as Rust's standard library has neither Go's case-folding orbits nor
//! Unicode general categories. Go folds case with `unicode.SimpleFold`; kiln folds each
//! character to the lower case of its upper case when both are single characters (`to_lowercase`
//! per character, made symmetric): exact for ASCII, the Kelvin sign, long s, final sigma and
//! the like, and stricter than Go for a few such as the dotless `ı`, folded with `i`. Go
//! allows non-ASCII characters that are Unicode letters (category L); kiln allows alphabetic
//! characters that are not numeric, which also lets through a few letter-like marks and
//! symbols (`Ⓐ`, combining vowel signs) that Go refuses. Such a name is still a plain name
//! (no separator, dot or control character), and a zip Go refuses has no go.sum line Go
//! wrote for its `h1:` to match.
//!
//! The checks of entry types, second names and declared sizes are the ones every zip from
//! the network gets, in [`crate::zip_hygiene`]; the name rules and the messages are this
//! module's.
//!
//! Left to the caller: Go's `CheckZip` also checks that the module path and version are
//! valid and canonical (`module.Check`); [`read`] only uses them to form the prefix. Go's
//! rules for *creating* a zip (vendored packages and nested modules omitted, `.hg_archival.txt`
//! dropped) are not checked by `CheckZip` or `Unzip`, so a zip holding such files is read as
//! Go reads it.
use super::filepath::{PathProblem, check_file_path};
use crate::zip_hygiene::{
    Budget, ContentError, Irregular, central_directory_names, has_second_name, irregular_kind,
    read_declared,
};
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{self, Cursor, Write as _};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use zip::ZipArchive;
use zip::result::ZipError;
/// The most bytes a module zip, and the files in it together, may have (Go's `MaxZipFile`).
pub const MAX_ZIP_FILE: u64 = 500 << 20;
/// The most bytes a module's top-level go.mod may have (Go's `MaxGoMod`).
pub const MAX_GO_MOD: u64 = 16 << 20;
/// The most bytes a module's top-level LICENSE may have (Go's `MaxLICENSE`).
pub const MAX_LICENSE: u64 = 16 << 20;
/// Size limits for [`read`]; the default is Go's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZipLimits {
    /// The zip itself, and the uncompressed files in it together.
    pub zip: u64,
    /// The top-level `go.mod`.
    pub go_mod: u64,
    /// The top-level `LICENSE`.
    pub license: u64,
}
impl Default for ZipLimits {
    fn default() -> Self {
        ZipLimits {
            zip: MAX_ZIP_FILE,
            go_mod: MAX_GO_MOD,
            license: MAX_LICENSE,
        }
    }
}
/// One file of a module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleFile {
    /// Relative to the module's folder (the entry name after `module@version/`),
    /// `/`-separated; a valid file path per Go's `CheckFilePath`.
    pub path: String,
    pub content: Vec<u8>,
}
/// A module zip that passed every check of [`read`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleZip {
    pub module: String,
    pub version: String,
    /// Sorted by path bytes.
    pub files: Vec<ModuleFile>,
}
#[derive(Debug, thiserror::Error)]
pub enum ModZipError {
    #[error("the zip of {module_version} is {size} bytes, over the limit of {limit} bytes")]
    ZipTooLarge {
        module_version: String,
        size: u64,
        limit: u64,
    },
    #[error("the zip of {module_version} cannot be read as a zip archive")]
    Unreadable {
        module_version: String,
        #[source]
        source: ZipError,
    },
    #[error(
        "the zip of {module_version} has the entry {entry:?} outside `{module_version}/`, \
         where every entry of a module zip must be"
    )]
    OutsidePrefix {
        module_version: String,
        entry: String,
    },
    #[error("the zip of {module_version} has the entry {entry:?}, an invalid file path: {problem}")]
    InvalidPath {
        module_version: String,
        entry: String,
        problem: PathProblem,
    },
    #[error("the zip of {module_version} has the entry {entry:?} more than once")]
    Duplicate {
        module_version: String,
        entry: String,
    },
    #[error(
        "the zip of {module_version} has the entries {first:?} and {second:?}, which differ \
         only in case and would collide on a case-insensitive file system"
    )]
    CaseCollision {
        module_version: String,
        first: String,
        second: String,
    },
    #[error("the zip of {module_version} has {entry:?} both as a file and as a folder")]
    FileAndFolder {
        module_version: String,
        entry: String,
    },
    #[error(
        "the zip of {module_version} has the entry {entry:?}, a go.mod outside the module's \
         top folder (a nested module's files belong in that module's own zip)"
    )]
    NestedGoMod {
        module_version: String,
        entry: String,
    },
    #[error(
        "the zip of {module_version} has the entry {entry:?}; a module's go.mod must be named \
         exactly `go.mod`"
    )]
    GoModCase {
        module_version: String,
        entry: String,
    },
    #[error(
        "the zip of {module_version} has the entry {entry:?}, a {kind}; module zips hold \
         only regular files"
    )]
    NotRegular {
        module_version: String,
        entry: String,
        kind: Irregular,
    },
    #[error(
        "the zip of {module_version} has the entry {entry:?} with an Info-ZIP Unicode Path \
         field, which renames it for some readers but not for Go"
    )]
    UnicodePathField {
        module_version: String,
        entry: String,
    },
    #[error(
        "the zip of {module_version} has the entry {entry:?} of {size} bytes, over the limit \
         of {limit} bytes for a module's {what}"
    )]
    FileTooLarge {
        module_version: String,
        entry: String,
        what: &'static str,
        size: u64,
        limit: u64,
    },
    #[error(
        "the files in the zip of {module_version} add up to more than {limit} bytes \
         (passed at the entry {entry:?})"
    )]
    TotalTooLarge {
        module_version: String,
        entry: String,
        limit: u64,
    },
    #[error(
        "the zip of {module_version} has the entry {entry:?}, which cannot be read (corrupt \
         data, a wrong checksum, or more bytes than its header declares)"
    )]
    EntryUnreadable {
        module_version: String,
        entry: String,
        #[source]
        source: ZipError,
    },
    #[error(
        "the zip of {module_version} has the entry {entry:?} holding more than the {declared} \
         bytes its header declares"
    )]
    MoreThanDeclared {
        module_version: String,
        entry: String,
        declared: u64,
    },
    #[error(
        "the zip of {module_version} has the entry {entry:?} holding {actual} bytes where its \
         header declares {declared}"
    )]
    FewerThanDeclared {
        module_version: String,
        entry: String,
        declared: u64,
        actual: u64,
    },
    #[error("cannot unpack {module_version} into {}: the folder is not empty", .folder.display())]
    FolderNotEmpty {
        module_version: String,
        folder: PathBuf,
    },
    #[error("cannot unpack {module_version} into {}", .folder.display())]
    Extract {
        module_version: String,
        folder: PathBuf,
        #[source]
        source: io::Error,
    },
}
/// The case fold of `path`, equal for two paths when Go's `strings.EqualFold` says they are
/// equal (approximately, see the module doc).
fn fold_case(path: &str) -> String {
    path.chars().map(fold_character).collect()
}
fn fold_character(character: char) -> char {
    if character.is_ascii() {
        return character.to_ascii_lowercase();
    }
    let mut upper = character.to_uppercase();
    let (Some(upper), None) = (upper.next(), upper.next()) else {
        return character;
    };
    let mut lower = upper.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(lower), None) => lower,
        _ => character,
    }
}
/// What Go's `collisionChecker` finds.
enum Collision {
    Case { first: String, second: String },
    FileAndFolder(String),
    Duplicate(String),
}
/// Folded path → the path as first seen and whether it is a folder.
#[derive(Default)]
struct Collisions {
    seen: HashMap<String, (String, bool)>,
}
impl Collisions {
    /// Record `path` and, as folders, its parents.
    fn check(&mut self, path: &str, is_folder: bool) -> Result<(), Collision> {
        let mut current = path;
        let mut current_is_folder = is_folder;
        loop {
            let folded = fold_case(current);
            match self.seen.get(&folded) {
                Some((other, other_is_folder)) => {
                    if other != current {
                        return Err(Collision::Case {
                            first: other.clone(),
                            second: current.to_owned(),
                        });
                    }
                    if *other_is_folder != current_is_folder {
                        return Err(Collision::FileAndFolder(current.to_owned()));
                    }
                    if !current_is_folder {
                        return Err(Collision::Duplicate(current.to_owned()));
                    }
                    // A folder seen before: its parents were recorded with it.
                    return Ok(());
                }
                None => {
                    self.seen
                        .insert(folded, (current.to_owned(), current_is_folder));
                }
            }
            match current.rsplit_once('/') {
                Some((parent, _)) => {
                    current = parent;
                    current_is_folder = true;
                }
                None => return Ok(()),
            }
        }
    }
}
/// An entry that passed the checks on names, types and declared sizes.
struct Checked {
    /// Its whole name, for errors.
    entry: String,
    /// For a file: its path after the prefix and its declared size. `None` for a folder.
    file: Option<(String, u64)>,
}
/// Read and check `bytes` as the zip of `module`@`version` (the module path unescaped, as
/// inside the zip); see the module doc for the checks. Nothing is returned unless all pass.
pub fn read(
    bytes: &[u8],
    module: &str,
    version: &str,
    limits: ZipLimits,
) -> Result<ModuleZip, ModZipError> {
    let module_version = format!("{module}@{version}");
    let zip_size = bytes.len() as u64;
    if zip_size > limits.zip {
        return Err(ModZipError::ZipTooLarge {
            module_version,
            size: zip_size,
            limit: limits.zip,
        });
    }
    let mut archive =
        ZipArchive::new(Cursor::new(bytes)).map_err(|source| ModZipError::Unreadable {
            module_version: module_version.clone(),
            source,
        })?;
    // The zip crate keeps one entry per name, so it reports exact duplicates only as a flag.
    if archive.has_duplicate_names()
        && let Some(entry) = duplicate_file_name(bytes, archive.central_directory_start())
    {
        return Err(ModZipError::Duplicate {
            module_version,
            entry,
        });
    }

    // First every name, type and declared size, reading no contents.
    let prefix = format!("{module_version}/");
    let mut collisions = Collisions::default();
    let mut checked = Vec::with_capacity(archive.len());
    let mut total = Budget::new(limits.zip);
    for index in 0..archive.len() {
        let entry = archive
            .by_index_data(index)
            .map_err(|source| ModZipError::Unreadable {
                module_version: module_version.clone(),
                source,
            })?;
        let name_raw = entry.name_raw();
        let name = String::from_utf8_lossy(name_raw).into_owned();
        let Some(rest) = name_raw.strip_prefix(prefix.as_bytes()) else {
            return Err(ModZipError::OutsidePrefix {
                module_version,
                entry: name,
            });
        };
        if rest.is_empty() {
            // The module's folder itself.
            checked.push(Checked {
                entry: name,
                file: None,
            });
            continue;
        }
        let invalid_path = |problem| ModZipError::InvalidPath {
            module_version: module_version.clone(),
            entry: name.clone(),
            problem,
        };
        let rest = std::str::from_utf8(rest).map_err(|_| invalid_path(PathProblem::InvalidUtf8))?;
        let (path, is_folder) = match rest.strip_suffix('/') {
            Some(path) => (path, true),
            None => (rest, false),
        };
        check_file_path(path).map_err(invalid_path)?;
        if let Some(kind) = irregular_kind(entry.unix_mode().unwrap_or(0), is_folder) {
            return Err(ModZipError::NotRegular {
                module_version,
                entry: name,
                kind,
            });
        }
        collisions
            .check(path, is_folder)
            .map_err(|collision| match collision {
                Collision::Case { first, second } => ModZipError::CaseCollision {
                    module_version: module_version.clone(),
                    first: format!("{prefix}{first}"),
                    second: format!("{prefix}{second}"),
                },
                Collision::FileAndFolder(path) => ModZipError::FileAndFolder {
                    module_version: module_version.clone(),
                    entry: format!("{prefix}{path}"),
                },
                Collision::Duplicate(path) => ModZipError::Duplicate {
                    module_version: module_version.clone(),
                    entry: format!("{prefix}{path}"),
                },
            })?;
        if is_folder {
            checked.push(Checked {
                entry: name,
                file: None,
            });
            continue;
        }
        let base = path.rsplit('/').next().unwrap_or(path);
        if base.eq_ignore_ascii_case("go.mod") {
            if base != path {
                return Err(ModZipError::NestedGoMod {
                    module_version,
                    entry: name,
                });
            }
            if path != "go.mod" {
                return Err(ModZipError::GoModCase {
                    module_version,
                    entry: name,
                });
            }
        }
        let declared = entry.size();
        if total.take(declared).is_err() {
            return Err(ModZipError::TotalTooLarge {
                module_version,
                entry: name,
                limit: limits.zip,
            });
        }
        let file_limit = match path {
            "go.mod" => Some(("go.mod", limits.go_mod)),
            "LICENSE" => Some(("LICENSE", limits.license)),
            _ => None,
        };
        if let Some((what, limit)) = file_limit
            && declared > limit
        {
            return Err(ModZipError::FileTooLarge {
                module_version,
                entry: name,
                what,
                size: declared,
                limit,
            });
        }
        checked.push(Checked {
            entry: name,
            file: Some((path.to_owned(), declared)),
        });
    }

    // Then the contents, each bounded by its declared size, which the limits bounded.
    let mut files = Vec::new();
    for (index, Checked { entry, file }) in checked.into_iter().enumerate() {
        let unreadable = |source| ModZipError::EntryUnreadable {
            module_version: module_version.clone(),
            entry: entry.clone(),
            source,
        };
        let mut zip_file = archive.by_index(index).map_err(unreadable)?;
        if has_second_name(&zip_file) {
            return Err(ModZipError::UnicodePathField {
                module_version,
                entry,
            });
        }
        let Some((path, declared)) = file else {
            continue;
        };
        let content = read_declared(&mut zip_file, declared).map_err(|error| match error {
            ContentError::Read(source) => unreadable(ZipError::Io(source)),
            ContentError::Fewer { declared, actual } => ModZipError::FewerThanDeclared {
                module_version: module_version.clone(),
                entry: entry.clone(),
                declared,
                actual,
            },
            ContentError::More { declared } => ModZipError::MoreThanDeclared {
                module_version: module_version.clone(),
                entry: entry.clone(),
                declared,
            },
        })?;
        files.push(ModuleFile { path, content });
    }
    files.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    Ok(ModuleZip {
        module: module.to_owned(),
        version: version.to_owned(),
        files,
    })
}
/// A file name (not a folder's: Go allows a folder entry twice) the central directory
/// holds more than once, or a placeholder when the zip crate saw a duplicate the walk cannot
/// show (say, after renaming an entry by its Unicode Path field); `None` when only folder
/// entries repeat.
fn duplicate_file_name(bytes: &[u8], directory_start: u64) -> Option<String> {
    let mut seen = HashSet::new();
    let repeated: Vec<&[u8]> = central_directory_names(bytes, directory_start)
        .into_iter()
        .filter(|name| !seen.insert(*name))
        .collect();
    match repeated.iter().find(|name| !name.ends_with(b"/")) {
        Some(name) => Some(String::from_utf8_lossy(name).into_owned()),
        None if repeated.is_empty() => Some("(an entry whose name repeats)".to_owned()),
        None => None,
    }
}
impl ModuleZip {
    /// `module@version`, as in the zip's entry names and go.sum's hash of them.
    pub fn module_version(&self) -> String {
        format!("{}@{}", self.module, self.version)
    }

    /// go.sum's `h1:` of the zip (its files named `module@version/path`).
    pub fn h1(&self) -> String {
        let module_version = self.module_version();
        crate::gomod::dirhash::hash1(self.files.iter().map(|file| {
            (
                format!("{module_version}/{}", file.path),
                Sha256::digest(&file.content).into(),
            )
        }))
    }

    /// The NAR hash of the unpacked module folder (all files non-executable, folders implied
    /// by the paths), what gomod2nix.toml records.
    pub fn nar_hash(&self) -> crate::nar::NarHash {
        crate::nar::nar_hash_files(
            self.files
                .iter()
                .map(|file| (file.path.as_str(), file.content.as_slice(), false)),
        )
    }

    /// Write the files under `folder`, which is created and must be empty if it exists;
    /// files get mode 0o644 and folders 0o755 whatever the umask. A file already there is
    /// never overwritten (nor followed, were it a symlink).
    pub fn extract(&self, folder: &Path) -> Result<(), ModZipError> {
        let module_version = self.module_version();
        let failed = |source| ModZipError::Extract {
            module_version: module_version.clone(),
            folder: folder.to_owned(),
            source,
        };
        // The fields are public, so the paths are checked again before they meet the disk.
        for file in &self.files {
            check_file_path(&file.path).map_err(|problem| ModZipError::InvalidPath {
                module_version: module_version.clone(),
                entry: format!("{module_version}/{}", file.path),
                problem,
            })?;
        }
        match fs_err::read_dir(folder) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(ModZipError::FolderNotEmpty {
                        module_version,
                        folder: folder.to_owned(),
                    });
                }
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                fs_err::create_dir_all(folder).map_err(failed)?;
            }
            Err(error) => return Err(failed(error)),
        }
        let set_mode = |path: &Path, mode: u32| {
            fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode))
        };
        set_mode(folder, 0o755).map_err(failed)?;
        // Every folder above a file; a parent sorts before its children.
        let mut folders = BTreeSet::new();
        for file in &self.files {
            let mut path = file.path.as_str();
            while let Some((parent, _)) = path.rsplit_once('/') {
                if !folders.insert(parent) {
                    break;
                }
                path = parent;
            }
        }
        for relative in folders {
            let path = folder.join(relative);
            fs_err::create_dir(&path).map_err(failed)?;
            set_mode(&path, 0o755).map_err(failed)?;
        }
        for file in &self.files {
            let path = folder.join(&file.path);
            let mut output = fs_err::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(failed)?;
            output.write_all(&file.content).map_err(failed)?;
            drop(output);
            set_mode(&path, 0o644).map_err(failed)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use zip::ZipWriter;
    use zip::write::{FullFileOptions, SimpleFileOptions};

    const MODULE: &str = "example.com/m";
    const VERSION: &str = "v1.2.3";
    const PREFIX: &str = "example.com/m@v1.2.3/";

    fn stored() -> SimpleFileOptions {
        SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored)
    }

    fn deflated() -> SimpleFileOptions {
        SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated)
    }

    /// A zip of `entries` (names taken whole; a name ending in `/` is a folder entry).
    fn zip_with(entries: &[(&str, &[u8])], options: SimpleFileOptions) -> Vec<u8> {
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        for (name, content) in entries {
            if name.ends_with('/') {
                writer.add_directory(*name, options).unwrap();
            } else {
                writer.start_file(*name, options).unwrap();
                writer.write_all(content).unwrap();
            }
        }
        writer.finish().unwrap().into_inner()
    }

    /// A zip of `files` under the module's prefix.
    fn module_zip(files: &[(&str, &[u8])]) -> Vec<u8> {
        let named: Vec<(String, &[u8])> = files
            .iter()
            .map(|(path, content)| (format!("{PREFIX}{path}"), *content))
            .collect();
        let entries: Vec<(&str, &[u8])> = named
            .iter()
            .map(|(name, content)| (name.as_str(), *content))
            .collect();
        zip_with(&entries, deflated())
    }

    fn read_default(bytes: &[u8]) -> Result<ModuleZip, ModZipError> {
        read(bytes, MODULE, VERSION, ZipLimits::default())
    }

    /// The error for `bytes`, whose message must name the module and contain `expected`.
    fn refusal(bytes: &[u8], limits: ZipLimits, expected: &str) -> ModZipError {
        let error = read(bytes, MODULE, VERSION, limits).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("example.com/m@v1.2.3") && message.contains(expected),
            "{message:?} should name the module and contain {expected:?}"
        );
        error
    }

    /// Every occurrence of `from` in `bytes` replaced by `to` (same length).
    fn replace_all(bytes: &mut [u8], from: &[u8], to: &[u8]) -> usize {
        assert_eq!(from.len(), to.len());
        let mut count = 0;
        let mut position = 0;
        while let Some(offset) = bytes[position..]
            .windows(from.len())
            .position(|window| window == from)
        {
            let start = position + offset;
            bytes[start..start + from.len()].copy_from_slice(to);
            position = start + from.len();
            count += 1;
        }
        count
    }

    /// Set the uncompressed size that the local and central headers of `name` declare.
    fn set_declared_size(bytes: &mut [u8], name: &str, size: u32) {
        let mut patched = 0;
        let positions: Vec<usize> = bytes
            .windows(name.len())
            .enumerate()
            .filter(|(_, window)| *window == name.as_bytes())
            .map(|(position, _)| position)
            .collect();
        for position in positions {
            if position >= 30 && bytes[position - 30..position - 26] == *b"PK\x03\x04" {
                bytes[position - 30 + 22..position - 30 + 26].copy_from_slice(&size.to_le_bytes());
                patched += 1;
            }
            if position >= 46 && bytes[position - 46..position - 42] == *b"PK\x01\x02" {
                bytes[position - 46 + 24..position - 46 + 28].copy_from_slice(&size.to_le_bytes());
                patched += 1;
            }
        }
        assert_eq!(patched, 2, "local and central header of {name}");
    }

    #[test]
    fn reads_a_good_zip() {
        let bytes = zip_with(
            &[
                (PREFIX, b""),
                (&format!("{PREFIX}sub/"), b""),
                (&format!("{PREFIX}sub/b.go"), b"package sub\n"),
                (&format!("{PREFIX}go.mod"), b"module example.com/m\n"),
                (&format!("{PREFIX}a-c.txt"), b"dash\n"),
                (&format!("{PREFIX}LICENSE"), b"MIT\n"),
                (&format!("{PREFIX}empty"), b""),
                (&format!("{PREFIX}vendor/modules.txt"), b"# vendored\n"),
                (&format!("{PREFIX}Ünïcödé/ß.go"), b"package x\n"),
            ],
            deflated(),
        );
        let module = read_default(&bytes).unwrap();
        assert_eq!(module.module, MODULE);
        assert_eq!(module.version, VERSION);
        let paths: Vec<&str> = module.files.iter().map(|file| file.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "LICENSE",
                "a-c.txt",
                "empty",
                "go.mod",
                "sub/b.go",
                "vendor/modules.txt",
                "Ünïcödé/ß.go"
            ]
        );
        assert_eq!(module.files[4].content, b"package sub\n");

        let temp = tempfile::tempdir().unwrap();
        let folder = temp.path().join("unpacked");
        module.extract(&folder).unwrap();
        assert_eq!(
            module.h1(),
            crate::gomod::dirhash::hash_dir(&folder, "example.com/m@v1.2.3").unwrap()
        );
        assert_eq!(module.nar_hash(), crate::nar::nar_hash(&folder).unwrap());
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&folder), 0o755);
        assert_eq!(mode(&folder.join("sub")), 0o755);
        assert_eq!(mode(&folder.join("sub/b.go")), 0o644);
        assert_eq!(
            std::fs::read(folder.join("Ünïcödé/ß.go")).unwrap(),
            b"package x\n"
        );

        // A second unpack into the same, now full, folder is refused.
        let error = module.extract(&folder).unwrap_err();
        assert!(error.to_string().contains("not empty"), "{error}");
    }

    /// The files of dirhash's Go golden, zipped: Go 1.27.3 reported this `h1:` for them.
    #[test]
    fn h1_matches_go() {
        let files: [(&str, &[u8]); 6] = [
            ("go.mod", b"module example.com/Fixture/lib\n\ngo 1.21\n"),
            (
                "lib.go",
                b"package lib\n\nfunc Answer() int { return 42 }\n",
            ),
            ("internal/deep/x.go", b"package deep\n"),
            ("LICENSE", b"MIT\n"),
            ("Z-upper.txt", b"sorted before lower case\n"),
            ("a b/space.txt", b"names with spaces\n"),
        ];
        let named: Vec<(String, &[u8])> = files
            .iter()
            .map(|(path, content)| (format!("example.com/Fixture/lib@v1.4.2/{path}"), *content))
            .collect();
        let entries: Vec<(&str, &[u8])> = named
            .iter()
            .map(|(name, content)| (name.as_str(), *content))
            .collect();
        let bytes = zip_with(&entries, deflated());
        let module = read(
            &bytes,
            "example.com/Fixture/lib",
            "v1.4.2",
            ZipLimits::default(),
        )
        .unwrap();
        assert_eq!(
            module.h1(),
            "h1:A+z+XjcWgiIhrZH1NmkoHg4TTnckCc3ZrNLbNMO2ifs="
        );
    }

    #[test]
    fn case_folding() {
        for (a, b) in [
            ("a.go", "A.GO"),
            ("dir/X", "DIR/x"),
            ("k", "\u{212a}"), // Kelvin sign
            ("s", "\u{17f}"),  // long s
            ("σ", "ς"),
            ("ß", "ẞ"),
        ] {
            assert_eq!(fold_case(a), fold_case(b), "{a} {b}");
        }
        for (a, b) in [("a", "b"), ("ß", "ss"), ("a.go", "a.go ")] {
            assert_ne!(fold_case(a), fold_case(b), "{a} {b}");
        }
    }

    #[test]
    fn refuses_wrong_prefix() {
        let bytes = zip_with(
            &[
                (&format!("{PREFIX}a.go"), b"package a\n"),
                ("example.com/other@v1.2.3/b.go", b"package b\n"),
            ],
            deflated(),
        );
        let error = refusal(
            &bytes,
            ZipLimits::default(),
            "\"example.com/other@v1.2.3/b.go\"",
        );
        assert!(matches!(error, ModZipError::OutsidePrefix { .. }));
        // The module's name without the slash is outside too.
        let bytes = zip_with(&[("example.com/m@v1.2.3", b"")], deflated());
        refusal(&bytes, ZipLimits::default(), "outside");
    }

    #[test]
    fn refuses_parent_slip() {
        let bytes = module_zip(&[("../../evil.go", b"package evil\n")]);
        let error = refusal(
            &bytes,
            ZipLimits::default(),
            "\"example.com/m@v1.2.3/../../evil.go\"",
        );
        assert!(error.to_string().contains("only dots"), "{error}");
    }

    #[test]
    fn refuses_absolute_path() {
        let bytes = module_zip(&[("/etc/passwd", b"root\n")]);
        let error = refusal(&bytes, ZipLimits::default(), "absolute");
        assert!(error.to_string().contains("//etc/passwd"), "{error}");
    }

    #[test]
    fn refuses_backslash() {
        let bytes = module_zip(&[("a\\..\\..\\b.go", b"package b\n")]);
        refusal(&bytes, ZipLimits::default(), "backslash");
    }

    #[test]
    fn refuses_invalid_utf8() {
        let mut bytes = module_zip(&[("a-x.go", b"package a\n")]);
        assert_eq!(replace_all(&mut bytes, b"a-x.go", b"a\xffx.go"), 2);
        refusal(&bytes, ZipLimits::default(), "not valid UTF-8");
    }

    #[test]
    fn refuses_symlink() {
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        writer
            .add_symlink(format!("{PREFIX}link"), "/etc/passwd", stored())
            .unwrap();
        let bytes = writer.finish().unwrap().into_inner();
        let error = refusal(&bytes, ZipLimits::default(), "a symlink");
        assert!(error.to_string().contains("m@v1.2.3/link"), "{error}");
    }

    #[test]
    fn refuses_named_pipe() {
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        let options = stored().external_attributes((0o010_644) << 16);
        writer.start_file(format!("{PREFIX}pipe"), options).unwrap();
        let bytes = writer.finish().unwrap().into_inner();
        refusal(&bytes, ZipLimits::default(), "named pipe");
    }

    #[test]
    fn refuses_duplicate() {
        let mut bytes = module_zip(&[("a.go", b"package a\n"), ("b.go", b"package b\n")]);
        assert_eq!(
            replace_all(&mut bytes, b"m@v1.2.3/b.go", b"m@v1.2.3/a.go"),
            2
        );
        let error = refusal(
            &bytes,
            ZipLimits::default(),
            "\"example.com/m@v1.2.3/a.go\" more than once",
        );
        assert!(matches!(error, ModZipError::Duplicate { .. }));
    }

    /// Go allows a folder entry twice; the zip crate reports it as a duplicate name.
    #[test]
    fn allows_repeated_folder_entry() {
        let mut bytes = zip_with(
            &[
                (&format!("{PREFIX}d1/"), b""),
                (&format!("{PREFIX}d2/"), b""),
                (&format!("{PREFIX}d1/a.go"), b"package d1\n"),
            ],
            stored(),
        );
        assert_eq!(replace_all(&mut bytes, b"m@v1.2.3/d2/", b"m@v1.2.3/d1/"), 2);
        let module = read_default(&bytes).unwrap();
        assert_eq!(module.files.len(), 1);
    }

    #[test]
    fn refuses_case_collision() {
        let bytes = module_zip(&[("a.go", b"package a\n"), ("A.go", b"package a\n")]);
        let error = refusal(&bytes, ZipLimits::default(), "differ only in case");
        let message = error.to_string();
        assert!(
            message.contains("/a.go\"") && message.contains("/A.go\""),
            "{message}"
        );
        // Parent folders are folded too.
        let bytes = module_zip(&[("x/a.go", b"package x\n"), ("X/b.go", b"package x\n")]);
        let error = refusal(&bytes, ZipLimits::default(), "differ only in case");
        assert!(error.to_string().contains("m@v1.2.3/X\""), "{error}");
    }

    #[test]
    fn refuses_file_and_folder() {
        let bytes = module_zip(&[("a", b"file\n"), ("a/b.go", b"package a\n")]);
        refusal(
            &bytes,
            ZipLimits::default(),
            "\"example.com/m@v1.2.3/a\" both as a file and as a folder",
        );
        let bytes = zip_with(
            &[
                (&format!("{PREFIX}a"), b"file\n"),
                (&format!("{PREFIX}a/"), b""),
            ],
            stored(),
        );
        refusal(
            &bytes,
            ZipLimits::default(),
            "both as a file and as a folder",
        );
    }

    #[test]
    fn refuses_nested_go_mod() {
        let bytes = module_zip(&[
            ("go.mod", b"module example.com/m\n"),
            ("sub/go.mod", b"module example.com/m/sub\n"),
        ]);
        let error = refusal(
            &bytes,
            ZipLimits::default(),
            "\"example.com/m@v1.2.3/sub/go.mod\"",
        );
        assert!(matches!(error, ModZipError::NestedGoMod { .. }), "{error}");
        let bytes = module_zip(&[("sub/GO.MOD", b"module example.com/m/sub\n")]);
        refusal(
            &bytes,
            ZipLimits::default(),
            "outside the module's top folder",
        );
    }

    #[test]
    fn refuses_go_mod_case() {
        let bytes = module_zip(&[("Go.Mod", b"module example.com/m\n")]);
        let error = refusal(
            &bytes,
            ZipLimits::default(),
            "\"example.com/m@v1.2.3/Go.Mod\"",
        );
        assert!(matches!(error, ModZipError::GoModCase { .. }), "{error}");
    }

    #[test]
    fn refuses_unicode_path_field() {
        let name = format!("{PREFIX}a.go");
        let mut field = vec![1];
        field.extend(crc32fast::hash(name.as_bytes()).to_le_bytes());
        field.extend(format!("{PREFIX}b.go").as_bytes());
        let mut options = FullFileOptions::default();
        options.add_extra_field(0x7075, field, false).unwrap();
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        writer.start_file(name, options).unwrap();
        writer.write_all(b"package a\n").unwrap();
        let bytes = writer.finish().unwrap().into_inner();
        refusal(&bytes, ZipLimits::default(), "Unicode Path");
    }

    #[test]
    fn refuses_oversize_total() {
        let limits = ZipLimits {
            zip: 4096,
            ..ZipLimits::default()
        };
        let bytes = module_zip(&[("a", &[b'a'; 3000]), ("b", &[b'b'; 3000])]);
        assert!(bytes.len() < 4096);
        let error = refusal(&bytes, limits, "add up to more than 4096 bytes");
        assert!(error.to_string().contains("m@v1.2.3/b\""), "{error}");
        // Exactly at the limit is fine.
        let bytes = module_zip(&[("a", &[b'a'; 2048]), ("b", &[b'b'; 2048])]);
        read(&bytes, MODULE, VERSION, limits).unwrap();
    }

    #[test]
    fn refuses_oversize_zip() {
        let bytes = module_zip(&[("a.go", b"package a\n")]);
        let limits = ZipLimits {
            zip: bytes.len() as u64 - 1,
            ..ZipLimits::default()
        };
        let error = refusal(&bytes, limits, "over the limit");
        assert!(matches!(error, ModZipError::ZipTooLarge { .. }), "{error}");
    }

    #[test]
    fn refuses_oversize_go_mod_and_license() {
        let limits = ZipLimits {
            zip: MAX_ZIP_FILE,
            go_mod: 10,
            license: 20,
        };
        let bytes = module_zip(&[("go.mod", b"module example.com/m\n")]);
        let error = refusal(
            &bytes,
            limits,
            "over the limit of 10 bytes for a module's go.mod",
        );
        assert!(error.to_string().contains("m@v1.2.3/go.mod\""), "{error}");
        let bytes = module_zip(&[("LICENSE", &[b'x'; 21])]);
        refusal(
            &bytes,
            limits,
            "over the limit of 20 bytes for a module's LICENSE",
        );
        // Only the top-level files are limited.
        let bytes = module_zip(&[("sub/LICENSE", &[b'x'; 21]), ("LICENSE", &[b'x'; 20])]);
        read(&bytes, MODULE, VERSION, limits).unwrap();
    }

    #[test]
    fn refuses_corrupt_bytes() {
        let error = refusal(
            b"PK\x03\x04 not a zip at all",
            ZipLimits::default(),
            "cannot be read",
        );
        assert!(matches!(error, ModZipError::Unreadable { .. }));
        let bytes = module_zip(&[("a.go", b"package a\n")]);
        refusal(
            &bytes[..bytes.len() - 10],
            ZipLimits::default(),
            "cannot be read",
        );
        refusal(b"", ZipLimits::default(), "cannot be read");
    }

    #[test]
    fn refuses_crc_mismatch() {
        let mut bytes = zip_with(&[(&format!("{PREFIX}a.go"), b"package abcdef\n")], stored());
        assert_eq!(replace_all(&mut bytes, b"abcdef", b"abcdeF"), 1);
        let error = refusal(
            &bytes,
            ZipLimits::default(),
            "\"example.com/m@v1.2.3/a.go\", which cannot be read",
        );
        let source = std::error::Error::source(&error).unwrap().to_string();
        assert!(source.to_lowercase().contains("checksum"), "{source}");
    }

    /// A file holding more than its header declares stops at one byte past it, with the
    /// DEFAULT limits, and fewer bytes than declared are refused too.
    #[test]
    fn refuses_size_lies() {
        let name = format!("{PREFIX}bomb");
        let zeros = vec![0u8; 8 << 20];
        let mut bytes = zip_with(&[(&name, &zeros)], deflated());
        assert!(bytes.len() < 64 << 10);
        set_declared_size(&mut bytes, &name, 1000);
        let error = refusal(
            &bytes,
            ZipLimits::default(),
            "\"example.com/m@v1.2.3/bomb\"",
        );
        assert!(
            matches!(
                error,
                ModZipError::EntryUnreadable { .. } | ModZipError::MoreThanDeclared { .. }
            ),
            "{error}"
        );

        let name = format!("{PREFIX}short");
        let mut bytes = zip_with(&[(&name, b"four")], stored());
        set_declared_size(&mut bytes, &name, 5);
        let error = refusal(
            &bytes,
            ZipLimits::default(),
            "holding 4 bytes where its header declares 5",
        );
        assert!(matches!(error, ModZipError::FewerThanDeclared { .. }));
    }

    /// A deflate bomb past Go's limit is refused by its declared size before any inflating,
    /// and with the declared size lowered, by its bytes.
    #[test]
    fn refuses_deflate_bomb() {
        let name = format!("{PREFIX}bomb");
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        writer
            .start_file(&name, deflated().compression_level(Some(9)))
            .unwrap();
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..(MAX_ZIP_FILE >> 20) + 1 {
            writer.write_all(&chunk).unwrap();
        }
        let mut bytes = writer.finish().unwrap().into_inner();
        assert!(bytes.len() < 1 << 20, "{}", bytes.len());
        let error = refusal(
            &bytes,
            ZipLimits::default(),
            "add up to more than 524288000 bytes",
        );
        assert!(matches!(error, ModZipError::TotalTooLarge { .. }));
        set_declared_size(&mut bytes, &name, 1 << 20);
        refusal(
            &bytes,
            ZipLimits::default(),
            "\"example.com/m@v1.2.3/bomb\"",
        );
    }

    #[test]
    fn extract_checks_paths_again() {
        let module = ModuleZip {
            module: MODULE.into(),
            version: VERSION.into(),
            files: vec![ModuleFile {
                path: "../escape".into(),
                content: b"x".to_vec(),
            }],
        };
        let temp = tempfile::tempdir().unwrap();
        let error = module.extract(&temp.path().join("m")).unwrap_err();
        assert!(matches!(error, ModZipError::InvalidPath { .. }), "{error}");
        assert!(!temp.path().join("escape").exists());
        assert!(!temp.path().join("m").exists());
    }
}
