//! File paths inside a module, as Go's `module.CheckFilePath` (golang.org/x/mod
//! `module/module.go`) checks them: the rule every entry of a module zip passes
//! ([`super::modzip`]) and every file kiln unpacks from one passes again.
//!
//! A path is valid UTF-8, non-empty, without a leading or trailing `/` or empty elements; no
//! element is made only of dots (`.`, `..`) or ends in a dot; only ASCII letters, digits and
//! `!#$%&()+,-.=@[]^_{}~ ` and non-ASCII letters appear (so no `\`, `:`, control characters or
//! NUL); and no element's part before its first dot is a name Windows reserves (`CON`, `NUL`,
//! `COM1`, … in any case). Stricter than Go: a path is at most [`MAX_FILE_PATH`] bytes, what
//! Linux can open.
//!
//! One approximation, as Rust's standard library has no Unicode general categories: Go allows
//! non-ASCII characters that are Unicode letters (category L); kiln allows alphabetic
//! characters that are not numeric, which also lets through a few letter-like marks and
//! symbols (`Ⓐ`, combining vowel signs) that Go refuses. Such a name is still a plain name
//! (no separator, dot or control character).

use std::fmt;

use crate::zip_hygiene::PATH_MAX;

/// The longest file path (after `module@version/`) kiln accepts, Linux's `PATH_MAX`.
pub const MAX_FILE_PATH: usize = PATH_MAX;

/// Windows reserves these names, whatever follows a dot and in any case (Go's
/// `badWindowsNames`); Go refuses them in module file paths so every module unpacks
/// everywhere.
pub const WINDOWS_RESERVED: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Why a file path is not valid in a module (Go's `CheckFilePath`, and [`MAX_FILE_PATH`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathProblem {
    InvalidUtf8,
    Empty,
    TooLong(usize),
    Absolute,
    TrailingSlash,
    EmptyElement,
    DotsElement(String),
    TrailingDot(String),
    Backslash,
    ControlCharacter(char),
    DisallowedCharacter(char),
    WindowsReserved(String),
}

impl fmt::Display for PathProblem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathProblem::InvalidUtf8 => write!(formatter, "it is not valid UTF-8"),
            PathProblem::Empty => write!(formatter, "it is empty"),
            PathProblem::TooLong(length) => write!(
                formatter,
                "it is {length} bytes long, more than the {MAX_FILE_PATH} Linux can open"
            ),
            PathProblem::Absolute => write!(formatter, "it is absolute (starts with `/`)"),
            PathProblem::TrailingSlash => write!(formatter, "it ends with `/`"),
            PathProblem::EmptyElement => write!(formatter, "it has an empty element (`//`)"),
            PathProblem::DotsElement(element) => {
                write!(formatter, "it has the element {element:?}, only dots")
            }
            PathProblem::TrailingDot(element) => {
                write!(formatter, "its element {element:?} ends with a dot")
            }
            PathProblem::Backslash => write!(formatter, "it has a backslash"),
            PathProblem::ControlCharacter(character) => {
                write!(formatter, "it has the control character {character:?}")
            }
            PathProblem::DisallowedCharacter(character) => {
                write!(
                    formatter,
                    "it has the character {character:?}, not allowed by Go"
                )
            }
            PathProblem::WindowsReserved(name) => {
                write!(
                    formatter,
                    "it has the element {name:?}, a name Windows reserves"
                )
            }
        }
    }
}

/// Check `path`, a file path relative to a module's folder, as Go's `CheckFilePath` does,
/// and against [`MAX_FILE_PATH`].
pub fn check_file_path(path: &str) -> Result<(), PathProblem> {
    if path.is_empty() {
        return Err(PathProblem::Empty);
    }
    if path.len() > MAX_FILE_PATH {
        return Err(PathProblem::TooLong(path.len()));
    }
    if path.starts_with('/') {
        return Err(PathProblem::Absolute);
    }
    if path.ends_with('/') {
        return Err(PathProblem::TrailingSlash);
    }
    path.split('/').try_for_each(check_element)
}

fn check_element(element: &str) -> Result<(), PathProblem> {
    if element.is_empty() {
        return Err(PathProblem::EmptyElement);
    }
    if element.bytes().all(|byte| byte == b'.') {
        return Err(PathProblem::DotsElement(element.to_owned()));
    }
    if element.ends_with('.') {
        return Err(PathProblem::TrailingDot(element.to_owned()));
    }
    for character in element.chars() {
        if character == '\\' {
            return Err(PathProblem::Backslash);
        }
        if character.is_control() {
            return Err(PathProblem::ControlCharacter(character));
        }
        if !file_name_character_ok(character) {
            return Err(PathProblem::DisallowedCharacter(character));
        }
    }
    let stem = element.split('.').next().unwrap_or(element);
    if WINDOWS_RESERVED
        .iter()
        .any(|reserved| reserved.eq_ignore_ascii_case(stem))
    {
        return Err(PathProblem::WindowsReserved(stem.to_owned()));
    }
    Ok(())
}

/// Go's `fileNameOK`: ASCII letters, digits and a few punctuation characters that no shell
/// or file system treats specially, and (approximately, see the module doc) letters.
fn file_name_character_ok(character: char) -> bool {
    if character.is_ascii() {
        character.is_ascii_alphanumeric() || "!#$%&()+,-.=@[]^_{}~ ".contains(character)
    } else {
        character.is_alphabetic() && !character.is_numeric()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_paths() {
        let good = [
            "a.go",
            "a/b/c.go",
            "with space/x",
            "!#$%&()+,-.=@[]^_{}~",
            ".hidden",
            "...x",
            "CONSOLE",
            "Ünïcödé",
            "a..b",
        ];
        for path in good {
            assert_eq!(check_file_path(path), Ok(()), "{path:?}");
        }
        let long = "a/".repeat(MAX_FILE_PATH / 2) + "b";
        let bad: [(&str, &str, PathProblem); 21] = [
            ("empty", "", PathProblem::Empty),
            ("absolute", "/etc/passwd", PathProblem::Absolute),
            ("trailing slash", "a/", PathProblem::TrailingSlash),
            ("double slash", "a//b", PathProblem::EmptyElement),
            ("dot", "./a", PathProblem::DotsElement(".".into())),
            (
                "dot dot",
                "a/../../b",
                PathProblem::DotsElement("..".into()),
            ),
            ("only dots", "a/...", PathProblem::DotsElement("...".into())),
            (
                "trailing dot",
                "a./b",
                PathProblem::TrailingDot("a.".into()),
            ),
            ("backslash", "a\\b", PathProblem::Backslash),
            ("windows parent", "..\\x", PathProblem::Backslash),
            ("nul", "a\0b", PathProblem::ControlCharacter('\0')),
            ("newline", "a\nb", PathProblem::ControlCharacter('\n')),
            ("delete", "a\u{7f}", PathProblem::ControlCharacter('\u{7f}')),
            ("colon", "c:x", PathProblem::DisallowedCharacter(':')),
            ("star", "a*", PathProblem::DisallowedCharacter('*')),
            ("quote", "a'b", PathProblem::DisallowedCharacter('\'')),
            (
                "digit not letter",
                "a\u{0663}",
                PathProblem::DisallowedCharacter('\u{0663}'),
            ),
            ("con", "x/con", PathProblem::WindowsReserved("con".into())),
            (
                "nul with extension",
                "NUL.txt",
                PathProblem::WindowsReserved("NUL".into()),
            ),
            (
                "lpt9",
                "Lpt9.a.b/c",
                PathProblem::WindowsReserved("Lpt9".into()),
            ),
            ("too long", &long, PathProblem::TooLong(long.len())),
        ];
        for (case, path, problem) in bad {
            assert_eq!(check_file_path(path), Err(problem), "{case}");
        }
    }
}
