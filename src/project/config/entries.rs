//! `[[images.NAME.files]]`, `[[images.NAME.dirs]]` and `[[images.NAME.symlinks]]`: what an
//! image holds besides its packages, checked.
//!
//! A mode is octal permission, setuid, setgid and sticky bits (`"0644"` or TOML's `0o644`);
//! an id is 0 to 4294967294, 4294967295 meaning "no id" to the kernel. A `src` is relative
//! to the project and stays inside it; globs are checked here so a bad one names its line.

use toml::Spanned;

use super::error::{ConfigError, SourceFile};
use super::model::{DirEntry, FilesEntry, SymlinkEntry};
use super::schema::{RawDir, RawFiles, RawMode, RawSymlink};
use crate::oci::tree::{ImagePath, TreeError};

/// `[[images.NAME.files]]`: each `src` inside the project, each `dest` an absolute image path.
pub(super) fn files(
    source: &SourceFile,
    raw: Vec<Spanned<RawFiles>>,
) -> Result<Vec<FilesEntry>, ConfigError> {
    let mut files = Vec::new();
    for entry in raw {
        let defined_at = source.location(&entry.span());
        let entry = entry.into_inner();
        let src = clean_source(entry.src.get_ref()).map_err(|reason| {
            source.error(
                &entry.src.span(),
                reason,
                Some(
                    "`src` is a file or folder of the project, e.g. `src = \"static\"`".to_owned(),
                ),
            )
        })?;
        let dest = entry.dest.get_ref();
        ImagePath::parse_absolute(dest)
            .map_err(|error| image_path_error(source, "dest", &entry.dest, &error))?;
        let mode = entry
            .mode
            .as_ref()
            .map(|mode| parse_mode(source, mode))
            .transpose()?;
        let include = entry
            .include
            .unwrap_or_default()
            .iter()
            .map(|glob| check_glob(source, glob))
            .collect::<Result<_, _>>()?;
        let exclude = entry
            .exclude
            .unwrap_or_default()
            .iter()
            .map(|glob| check_glob(source, glob))
            .collect::<Result<_, _>>()?;
        files.push(FilesEntry {
            src,
            dest: dest.clone(),
            mode,
            uid: parse_id(source, entry.uid.as_ref())?,
            gid: parse_id(source, entry.gid.as_ref())?,
            include,
            exclude,
            defined_at,
        });
    }
    Ok(files)
}

/// `[[images.NAME.dirs]]`: each below the image root (mode 0755 unless given).
pub(super) fn dirs(
    source: &SourceFile,
    raw: Vec<Spanned<RawDir>>,
) -> Result<Vec<DirEntry>, ConfigError> {
    let mut dirs = Vec::new();
    for entry in raw {
        let entry = entry.into_inner();
        let path = ImagePath::parse_absolute(entry.path.get_ref())
            .map_err(|error| image_path_error(source, "path", &entry.path, &error))?;
        if path.is_root() {
            return Err(source.error(
                &entry.path.span(),
                "the image root is not a folder kiln can set",
                Some("name a folder below it, e.g. `path = \"/var/lib/app\"`".to_owned()),
            ));
        }
        dirs.push(DirEntry {
            path,
            mode: entry
                .mode
                .as_ref()
                .map(|mode| parse_mode(source, mode))
                .transpose()?
                .unwrap_or(0o755),
            uid: parse_id(source, entry.uid.as_ref())?,
            gid: parse_id(source, entry.gid.as_ref())?,
        });
    }
    Ok(dirs)
}

/// `[[images.NAME.symlinks]]`: each below the image root, with a non-empty target.
pub(super) fn symlinks(
    source: &SourceFile,
    raw: Vec<Spanned<RawSymlink>>,
) -> Result<Vec<SymlinkEntry>, ConfigError> {
    let mut symlinks = Vec::new();
    for entry in raw {
        let entry = entry.into_inner();
        let path = ImagePath::parse_absolute(entry.path.get_ref())
            .map_err(|error| image_path_error(source, "path", &entry.path, &error))?;
        let target = entry.target.get_ref();
        if path.is_root() || target.is_empty() || target.contains('\0') {
            return Err(source.error(
                &entry.target.span(),
                "a symlink has a path below the root and a non-empty target",
                Some("e.g. `path = \"/usr/local/bin/app\"` and `target = \"/bin/app\"`".to_owned()),
            ));
        }
        symlinks.push(SymlinkEntry {
            path,
            target: target.clone(),
        });
    }
    Ok(symlinks)
}

/// A bad image path at `key` (`dest`, `path`), in kiln.toml's words: `dest = "etc/passwd"` is
/// "not an absolute image path", its hint `dest = "/etc/passwd"`.
fn image_path_error(
    source: &SourceFile,
    key: &str,
    written: &Spanned<String>,
    error: &TreeError,
) -> ConfigError {
    let text = written.get_ref();
    match error {
        TreeError::RelativeDestination(_) => {
            let absolute = format!("/{}", text.trim_start_matches("./"));
            let hint = match ImagePath::parse_absolute(&absolute) {
                Ok(fixed) => format!("write `{key} = \"{fixed}\"`"),
                Err(_) => format!("image paths start with `/`, e.g. `{key} = \"/srv/static\"`"),
            };
            source.error(
                &written.span(),
                format!("{key} `{text}` is not an absolute image path"),
                Some(hint),
            )
        }
        _ => source.error(
            &written.span(),
            error.to_string(),
            Some(format!(
                "image paths are absolute, without `..`, e.g. `{key} = \"/srv/static\"`"
            )),
        ),
    }
}

/// An octal mode, `"0644"`, `"755"` or TOML's `0o644`; permission, setuid, setgid and sticky
/// bits only.
fn parse_mode(source: &SourceFile, mode: &Spanned<RawMode>) -> Result<u32, ConfigError> {
    let value = match mode.get_ref() {
        RawMode::Number(number) => u32::try_from(*number).ok(),
        RawMode::Text(text) => u32::from_str_radix(text.trim_start_matches("0o"), 8).ok(),
    };
    match value {
        Some(value) if value <= 0o7777 => Ok(value),
        _ => Err(source.error(
            &mode.span(),
            "a mode is octal permission bits, at most 7777",
            Some("write it as a string, e.g. `mode = \"0644\"`, or as `mode = 0o644`".to_owned()),
        )),
    }
}

/// A uid or gid: 0 to 2^32 - 2 (4294967295 means "no id").
fn parse_id(source: &SourceFile, id: Option<&Spanned<i64>>) -> Result<u32, ConfigError> {
    match id {
        None => Ok(0),
        Some(id) => u32::try_from(*id.get_ref())
            .ok()
            .filter(|value| *value != u32::MAX)
            .ok_or_else(|| {
                source.error(
                    &id.span(),
                    "an id is a number from 0 to 4294967294",
                    Some("e.g. `uid = 65532`, or 0 for root".to_owned()),
                )
            }),
    }
}

/// A project-relative source path, normalised; absolute paths and paths that climb out of
/// the project are refused here (links that escape are refused when the files are read).
fn clean_source(text: &str) -> Result<String, String> {
    if text.starts_with('/') {
        return Err(format!(
            "`{text}` is absolute; `src` is relative to the project"
        ));
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(format!("`{text}` is outside the project"));
                }
            }
            _ => parts.push(part),
        }
    }
    Ok(if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    })
}

fn check_glob(source: &SourceFile, glob: &Spanned<String>) -> Result<String, ConfigError> {
    globset::GlobBuilder::new(glob.get_ref())
        .literal_separator(true)
        .build()
        .map_err(|error| {
            source.error(
                &glob.span(),
                format!("glob: {error}"),
                Some("globs are relative to `src`, e.g. `exclude = [\"**/*.map\"]`".to_owned()),
            )
        })?;
    Ok(glob.get_ref().clone())
}
