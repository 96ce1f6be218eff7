//! go.mod, as the Go module reference (go.dev/ref/mod#go-mod-file) defines it: line-based
//! directives (`module`, `go`, `toolchain`, `require`, `replace`, `exclude`, `retract`,
//! `godebug`, `tool`, `ignore`), each either on one line or as a parenthesised block, `//`
//! comments (`// indirect` marks a requirement), and arguments that are bare tokens or Go
//! string literals.
//!
//! kiln reads what it needs to build and to check vendored dependencies; Go itself stays the
//! judge of everything else in the file.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: {message}", .file.display())]
pub struct ModFileError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

/// A requirement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Require {
    pub path: String,
    pub version: String,
    pub indirect: bool,
    pub line: usize,
}

/// A replacement: `old [version] => new [version]`; a `new` without version is a folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replace {
    pub old_path: String,
    pub old_version: Option<String>,
    pub new_path: String,
    pub new_version: Option<String>,
    pub line: usize,
}

/// The parts of a go.mod kiln uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModFile {
    pub module: String,
    pub go: Option<String>,
    pub toolchain: Option<String>,
    pub requires: Vec<Require>,
    pub replaces: Vec<Replace>,
    pub excludes: Vec<(String, String)>,
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Open,
    Close,
}

/// Whether Go's lexer refuses `character` outside comments: control characters, spaces other
/// than ` `, tab and CR, and the invisible format characters (a byte order mark, zero-width
/// characters, bidirectional overrides) that make a line read otherwise than it parses.
fn is_hidden(character: char) -> bool {
    match character {
        ' ' | '\t' | '\r' => false,
        _ => {
            character.is_control()
                || character.is_whitespace()
                || matches!(
                    character,
                    '\u{ad}'
                        | '\u{200b}'..='\u{200f}'
                        | '\u{202a}'..='\u{202e}'
                        | '\u{2060}'..='\u{2064}'
                        | '\u{2066}'..='\u{2069}'
                        | '\u{feff}'
                )
        }
    }
}

fn check_visible(character: char) -> Result<(), String> {
    if is_hidden(character) {
        return Err(format!(
            "unexpected character U+{:04X} (a control character, an unusual space or an invisible character)",
            u32::from(character)
        ));
    }
    Ok(())
}

/// Split one line into tokens and its comment.
fn tokenize(line: &str) -> Result<(Vec<Token>, Option<String>), String> {
    let mut tokens = Vec::new();
    let mut chars = line.char_indices().peekable();
    while let Some(&(index, character)) = chars.peek() {
        if line[index..].starts_with("//") {
            return Ok((tokens, Some(line[index + 2..].trim().to_owned())));
        }
        check_visible(character)?;
        if character.is_whitespace() {
            chars.next();
            continue;
        }
        match character {
            '(' => {
                chars.next();
                tokens.push(Token::Open);
            }
            ')' => {
                chars.next();
                tokens.push(Token::Close);
            }
            '"' => {
                chars.next();
                let mut value = String::new();
                let mut closed = false;
                while let Some((_, character)) = chars.next() {
                    match character {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => match chars.next() {
                            Some((_, escaped @ ('"' | '\\'))) => value.push(escaped),
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, 't')) => value.push('\t'),
                            Some((_, other)) => {
                                return Err(format!("unsupported escape `\\{other}` in a string"));
                            }
                            None => break,
                        },
                        other => {
                            check_visible(other)?;
                            value.push(other);
                        }
                    }
                }
                if !closed {
                    return Err("unterminated string".to_owned());
                }
                tokens.push(Token::Word(value));
            }
            '`' => {
                chars.next();
                let mut value = String::new();
                let mut closed = false;
                for (_, character) in chars.by_ref() {
                    if character == '`' {
                        closed = true;
                        break;
                    }
                    check_visible(character)?;
                    value.push(character);
                }
                if !closed {
                    return Err("unterminated raw string".to_owned());
                }
                tokens.push(Token::Word(value));
            }
            _ => {
                let start = index;
                let mut end = line.len();
                while let Some(&(next, character)) = chars.peek() {
                    if character.is_whitespace()
                        || character == '('
                        || character == ')'
                        || line[next..].starts_with("//")
                    {
                        end = next;
                        break;
                    }
                    check_visible(character)?;
                    chars.next();
                }
                tokens.push(Token::Word(line[start..end].to_owned()));
            }
        }
    }
    Ok((tokens, None))
}

/// A number without leading zeros.
fn is_number(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().all(|byte| byte.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'))
}

/// Go's `GoVersionRE` for a main module's go line: `1.22`, `1.22.3`, `1.23rc1`.
fn is_go_version(text: &str) -> bool {
    // A prerelease: lower-case letters, then digits.
    let (numbers, prerelease) = match text.find(|character: char| character.is_ascii_lowercase()) {
        Some(position) => text.split_at(position),
        None => (text, ""),
    };
    if !prerelease.is_empty() {
        let digits =
            prerelease.trim_start_matches(|character: char| character.is_ascii_lowercase());
        if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
            return false;
        }
    }
    let parts: Vec<&str> = numbers.split('.').collect();
    (2..=3).contains(&parts.len()) && parts.iter().all(|part| is_number(part)) && parts[0] != "0"
}

/// Go's `ToolchainRE` (`default`, or `go1` then the end or a `.`), in characters a release
/// name has: never a path.
fn is_toolchain(text: &str) -> bool {
    text == "default"
        || (text
            .strip_prefix("go1")
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
            && text.bytes().all(|byte| {
                byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'+' | b'_')
            }))
}

fn words(tokens: &[Token]) -> Option<Vec<&str>> {
    tokens
        .iter()
        .map(|token| match token {
            Token::Word(word) => Some(word.as_str()),
            _ => None,
        })
        .collect()
}

/// Parse the go.mod text read from `file`.
pub fn parse(text: &str, file: &Path) -> Result<ModFile, ModFileError> {
    let error = |line: usize, message: String| ModFileError {
        file: file.to_owned(),
        line,
        message,
    };
    let mut modfile = ModFile::default();
    let mut block: Option<String> = None;
    let mut has_module = false;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let (tokens, comment) = tokenize(line).map_err(|message| error(number, message))?;
        if tokens.is_empty() {
            continue;
        }
        let (verb, arguments): (String, &[Token]) = match (&block, tokens.first()) {
            (Some(_), Some(Token::Close)) if tokens.len() == 1 => {
                block = None;
                continue;
            }
            (Some(verb), _) => (verb.clone(), &tokens[..]),
            (None, Some(Token::Word(verb))) => {
                if tokens.len() == 2 && tokens[1] == Token::Open {
                    block = Some(verb.clone());
                    continue;
                }
                (verb.clone(), &tokens[1..])
            }
            (None, _) => return Err(error(number, "expected a directive".to_owned())),
        };
        let Some(arguments) = words(arguments) else {
            return Err(error(number, format!("unexpected parenthesis in `{verb}`")));
        };
        let indirect = comment
            .as_deref()
            .is_some_and(|comment| comment == "indirect" || comment.starts_with("indirect;"));
        match (verb.as_str(), arguments.as_slice()) {
            ("module", [path]) => {
                modfile.module = (*path).to_owned();
                has_module = true;
            }
            ("go", [version]) => {
                if !is_go_version(version) {
                    return Err(error(
                        number,
                        format!("`{version}` is not a Go version (such as 1.22 or 1.22.3)"),
                    ));
                }
                modfile.go = Some((*version).to_owned());
            }
            ("toolchain", [name]) => {
                if !is_toolchain(name) {
                    return Err(error(
                        number,
                        format!("`{name}` is not a Go toolchain (such as go1.22.3, or default)"),
                    ));
                }
                modfile.toolchain = Some((*name).to_owned());
            }
            ("require", [path, version]) => modfile.requires.push(Require {
                path: (*path).to_owned(),
                version: (*version).to_owned(),
                indirect,
                line: number,
            }),
            ("exclude", [path, version]) => modfile
                .excludes
                .push(((*path).to_owned(), (*version).to_owned())),
            ("replace", arguments) => {
                let Some(arrow) = arguments.iter().position(|word| *word == "=>") else {
                    return Err(error(number, "replace needs `=>`".to_owned()));
                };
                let (old, new) = (&arguments[..arrow], &arguments[arrow + 1..]);
                let replace = match (old, new) {
                    ([old_path], [new_path]) => (old_path, None, new_path, None),
                    ([old_path, old_version], [new_path]) => {
                        (old_path, Some(old_version), new_path, None)
                    }
                    ([old_path], [new_path, new_version]) => {
                        (old_path, None, new_path, Some(new_version))
                    }
                    ([old_path, old_version], [new_path, new_version]) => {
                        (old_path, Some(old_version), new_path, Some(new_version))
                    }
                    _ => {
                        return Err(error(
                            number,
                            "replace must be `PATH [VERSION] => PATH [VERSION]`".to_owned(),
                        ));
                    }
                };
                modfile.replaces.push(Replace {
                    old_path: (*replace.0).to_owned(),
                    old_version: replace.1.map(|version| (*version).to_owned()),
                    new_path: (*replace.2).to_owned(),
                    new_version: replace.3.map(|version| (*version).to_owned()),
                    line: number,
                });
            }
            ("retract" | "godebug" | "tool" | "ignore", _) => {}
            ("module" | "go" | "toolchain" | "require" | "exclude", _) => {
                return Err(error(
                    number,
                    format!("wrong number of arguments to `{verb}`"),
                ));
            }
            (other, _) => return Err(error(number, format!("unknown directive `{other}`"))),
        }
    }
    if block.is_some() {
        return Err(error(
            text.lines().count(),
            "a `(` block is not closed".to_owned(),
        ));
    }
    if !has_module {
        return Err(error(1, "no `module` directive".to_owned()));
    }
    Ok(modfile)
}

impl ModFile {
    /// The replace directive that applies to `path`@`version`, if any (a versioned one wins).
    pub fn replacement(&self, path: &str, version: &str) -> Option<&Replace> {
        self.replaces
            .iter()
            .filter(|replace| replace.old_path == path)
            .find(|replace| replace.old_version.as_deref() == Some(version))
            .or_else(|| {
                self.replaces
                    .iter()
                    .find(|replace| replace.old_path == path && replace.old_version.is_none())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_directives_and_blocks() {
        let text = r#"// a comment
module example.com/app // trailing

go 1.22
toolchain go1.27.3

require example.com/one v1.0.0
require (
	example.com/two v0.2.0 // indirect
	"example.com/three" v3.0.0+incompatible
)

replace example.com/one => ./one
replace (
	example.com/two v0.2.0 => example.com/fork v0.2.1
)
exclude example.com/bad v1.0.0
retract [v1.0.0, v1.0.1] // oops
godebug default=go1.21
"#;
        let modfile = parse(text, Path::new("go.mod")).unwrap();
        assert_eq!(modfile.module, "example.com/app");
        assert_eq!(modfile.go.as_deref(), Some("1.22"));
        assert_eq!(modfile.toolchain.as_deref(), Some("go1.27.3"));
        let requires: Vec<(&str, &str, bool)> = modfile
            .requires
            .iter()
            .map(|require| {
                (
                    require.path.as_str(),
                    require.version.as_str(),
                    require.indirect,
                )
            })
            .collect();
        assert_eq!(
            requires,
            [
                ("example.com/one", "v1.0.0", false),
                ("example.com/two", "v0.2.0", true),
                ("example.com/three", "v3.0.0+incompatible", false),
            ]
        );
        assert_eq!(modfile.replaces[0].new_path, "./one");
        assert_eq!(modfile.replaces[1].new_version.as_deref(), Some("v0.2.1"));
        assert_eq!(
            modfile.excludes,
            [("example.com/bad".to_owned(), "v1.0.0".to_owned())]
        );
    }

    /// A byte order mark, a NUL or a bidirectional override in go.mod was taken as part of a
    /// word: the error quoted an invisible character ("unknown directive `module`"), or the
    /// word reached Go, which refuses it.
    #[test]
    fn go_mod_with_invisible_characters_is_refused() {
        for (text, expected) in [
            (
                "\u{feff}module a\n",
                "go.mod:1: unexpected character U+FEFF",
            ),
            ("module a\u{0}b\n", "go.mod:1: unexpected character U+0000"),
            (
                "module a\nrequire example.com/x\u{202e} v1.0.0\n",
                "go.mod:2: unexpected character U+202E",
            ),
            (
                "module \"a\u{200b}\"\n",
                "go.mod:1: unexpected character U+200B",
            ),
            ("module a\u{a0}b\n", "go.mod:1: unexpected character U+00A0"),
        ] {
            let error = parse(text, Path::new("go.mod")).unwrap_err().to_string();
            assert!(error.starts_with(expected), "{text:?}: {error}");
        }
        // Comments may hold anything; tabs and CRs are spaces.
        let modfile = parse(
            "module a // \u{feff}\u{202e}\r\n\tgo 1.22\r\n",
            Path::new("go.mod"),
        );
        assert!(modfile.is_ok(), "{modfile:?}");
    }

    /// `toolchain ../../../bin/sh` and `go 1.2x;rm` passed through to Go and kiln.lock.
    #[test]
    fn go_mod_go_and_toolchain_lines_must_be_versions() {
        for good in ["1.22", "1.22.3", "1.23rc1", "1.21.0", "1.9"] {
            assert!(is_go_version(good), "{good}");
        }
        for bad in [
            "1", "01.2", "1.02", "1.2x;rm", "1.2.3.4", "v1.22", "1.22rc", "0.1", "",
        ] {
            assert!(!is_go_version(bad), "{bad}");
        }
        for good in ["go1.22.3", "go1.21rc1", "default", "go1", "go1.22.0-custom"] {
            assert!(is_toolchain(good), "{good}");
        }
        for bad in [
            "../../../bin/sh",
            "go1.22/../../x",
            "go2",
            "go12",
            "go1.22 x",
        ] {
            assert!(!is_toolchain(bad), "{bad}");
        }
        let error = parse("module a\ntoolchain ../../../bin/sh\n", Path::new("go.mod"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "go.mod:2: `../../../bin/sh` is not a Go toolchain (such as go1.22.3, or default)"
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases = [
            (
                "module a\nrequire x\n",
                "go.mod:2: wrong number of arguments to `require`",
            ),
            (
                "module a\nfrobnicate x\n",
                "go.mod:2: unknown directive `frobnicate`",
            ),
            (
                "module a\nrequire (\n x v1\n",
                "go.mod:3: a `(` block is not closed",
            ),
            ("go 1.22\n", "go.mod:1: no `module` directive"),
            ("module \"a\n", "go.mod:1: unterminated string"),
            ("module a\nreplace x y\n", "go.mod:2: replace needs `=>`"),
        ];
        for (text, expected) in cases {
            let error = parse(text, Path::new("go.mod")).unwrap_err().to_string();
            assert_eq!(error, expected, "{text:?}");
        }
    }
}
