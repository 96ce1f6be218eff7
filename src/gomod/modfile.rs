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

/// Split one line into tokens and its comment.
fn tokenize(line: &str) -> Result<(Vec<Token>, Option<String>), String> {
    let mut tokens = Vec::new();
    let mut chars = line.char_indices().peekable();
    while let Some(&(index, character)) = chars.peek() {
        if character.is_whitespace() {
            chars.next();
            continue;
        }
        if line[index..].starts_with("//") {
            return Ok((tokens, Some(line[index + 2..].trim().to_owned())));
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
                        other => value.push(other),
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
                    chars.next();
                }
                tokens.push(Token::Word(line[start..end].to_owned()));
            }
        }
    }
    Ok((tokens, None))
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
            ("go", [version]) => modfile.go = Some((*version).to_owned()),
            ("toolchain", [name]) => modfile.toolchain = Some((*name).to_owned()),
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
