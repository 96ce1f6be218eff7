//! Go's build information: what `go version -m` prints about the programs it built.
//!
//! [`parse_go_version_m`] reads the text `go version -m FILE…` prints: per program a
//! `FILE: goVERSION` line, then tab-indented lines as Go's `debug.BuildInfo.String` writes them
//! (`path`, `mod`, `dep`, `=>` for a replacement, which Go follows with a line holding only a
//! tab, and `build KEY=VALUE`, key and value quoted the way Go's `strconv.Quote` quotes when
//! they hold spaces, tabs, quotes or `=`). Anything else is refused, naming the line, rather
//! than skipped: the SBOM made from it ([`crate::sbom`]) must not leave a module out.

/// Why `go version -m` output was refused: the line, its text, and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum BuildInfoError {
    #[error("`go version -m` output, line {line}: {message}: `{text}`")]
    Malformed {
        line: usize,
        text: String,
        message: String,
    },
}

/// A module as Go's build information records it (`debug.Module`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoModule {
    pub path: String,
    /// A version, or `(devel)` for the main module of a build from a working tree, or for a
    /// replacement by a local folder.
    pub version: String,
    /// The `h1:` of the module zip; none for the main module, a local folder, or a vendored
    /// build.
    pub sum: Option<String>,
    /// The module whose code was used instead (`replace` in go.mod).
    pub replacement: Option<Box<GoModule>>,
}

impl GoModule {
    /// The module whose code the program holds: the replacement when there is one.
    pub fn effective(&self) -> &GoModule {
        match &self.replacement {
            Some(replacement) => replacement,
            None => self,
        }
    }
}

/// What Go embeds in a program about how it was built (`debug.BuildInfo`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildInfo {
    /// The Go release that built it (`go1.22.1`).
    pub go_version: String,
    /// The main package's import path.
    pub path: String,
    /// The main module; none for a program built outside module mode.
    pub main: Option<GoModule>,
    /// The modules whose packages it holds, as Go lists them (sorted by path).
    pub deps: Vec<GoModule>,
    /// Build settings in Go's order: `-ldflags`, `CGO_ENABLED`, `GOARCH`, `vcs.revision`, …
    pub settings: Vec<(String, String)>,
}

/// Parse the output of `go version -m FILE…`: each program's file name (as Go printed it)
/// and its build information.
pub fn parse_go_version_m(text: &str) -> Result<Vec<(String, BuildInfo)>, BuildInfoError> {
    let mut programs: Vec<(String, BuildInfo)> = Vec::new();
    // The `mod` or `dep` line just read had no sum: its `=>` replacement line comes next.
    let mut awaiting_replacement: Option<Replaced> = None;
    for (index, line) in text.lines().enumerate() {
        let error = |message: &str| BuildInfoError::Malformed {
            line: index + 1,
            text: line.to_owned(),
            message: message.to_owned(),
        };
        let Some(body) = line.strip_prefix('\t') else {
            if line.trim().is_empty() {
                continue;
            }
            if awaiting_replacement.is_some() {
                return Err(error("a module without a sum is not followed by `=>`"));
            }
            // `FILE: goVERSION`; a file name may itself hold `: `.
            let (file, go_version) = line
                .rsplit_once(": ")
                .filter(|(file, version)| !file.is_empty() && !version.trim().is_empty())
                .ok_or_else(|| error("expected `FILE: goVERSION`"))?;
            programs.push((
                file.to_owned(),
                BuildInfo {
                    go_version: go_version.trim().to_owned(),
                    ..BuildInfo::default()
                },
            ));
            continue;
        };
        let Some((_, info)) = programs.last_mut() else {
            return Err(error(
                "a build information line before any `FILE: goVERSION`",
            ));
        };
        if body.is_empty() {
            // Go ends a replaced module with an empty line (`\t` once indented).
            continue;
        }
        let (word, rest) = body.split_once('\t').unwrap_or((body, ""));
        let fields: Vec<&str> = rest.split('\t').collect();
        match (word, awaiting_replacement.take()) {
            ("=>", Some(replaced)) => {
                let [path, version, sum] = fields.as_slice() else {
                    return Err(error("expected PATH, VERSION and SUM after `=>`"));
                };
                if path.is_empty() || version.is_empty() {
                    return Err(error("expected PATH, VERSION and SUM after `=>`"));
                }
                let replacement = Some(Box::new(GoModule {
                    path: (*path).to_owned(),
                    version: (*version).to_owned(),
                    sum: (!sum.is_empty()).then(|| (*sum).to_owned()),
                    replacement: None,
                }));
                let module = match replaced {
                    Replaced::Main => info.main.as_mut(),
                    Replaced::Dep => info.deps.last_mut(),
                };
                if let Some(module) = module {
                    module.replacement = replacement;
                }
            }
            ("=>", None) => return Err(error("`=>` without a module to replace")),
            (_, Some(_)) => return Err(error("a module without a sum is not followed by `=>`")),
            ("go", None) => info.go_version = rest.to_owned(),
            ("path", None) => info.path = rest.to_owned(),
            ("mod" | "dep", None) => {
                let (module, replaced) = match fields.as_slice() {
                    [path, version] if !path.is_empty() && !version.is_empty() => (
                        GoModule {
                            path: (*path).to_owned(),
                            version: (*version).to_owned(),
                            sum: None,
                            replacement: None,
                        },
                        true,
                    ),
                    [path, version, sum] if !path.is_empty() && !version.is_empty() => (
                        GoModule {
                            path: (*path).to_owned(),
                            version: (*version).to_owned(),
                            sum: (!sum.is_empty()).then(|| (*sum).to_owned()),
                            replacement: None,
                        },
                        false,
                    ),
                    _ => return Err(error("expected PATH, VERSION and an optional SUM")),
                };
                if word == "mod" {
                    if info.main.is_some() {
                        return Err(error("a second `mod` line"));
                    }
                    info.main = Some(module);
                    awaiting_replacement = replaced.then_some(Replaced::Main);
                } else {
                    info.deps.push(module);
                    awaiting_replacement = replaced.then_some(Replaced::Dep);
                }
            }
            ("build", None) => {
                let (key, value) =
                    parse_setting(rest).ok_or_else(|| error("expected KEY=VALUE"))?;
                info.settings.push((key, value));
            }
            (_, None) => return Err(error("unknown build information line")),
        }
    }
    if awaiting_replacement.is_some() {
        return Err(BuildInfoError::Malformed {
            line: text.lines().count(),
            text: text.lines().last().unwrap_or_default().to_owned(),
            message: "the output ends before the `=>` of a replaced module".to_owned(),
        });
    }
    Ok(programs)
}

/// Which module a `=>` line replaces.
#[derive(Clone, Copy, Debug)]
enum Replaced {
    Main,
    Dep,
}

/// `KEY=VALUE`, either side possibly a Go-quoted string.
fn parse_setting(text: &str) -> Option<(String, String)> {
    let (key, rest) = if text.starts_with('"') {
        let (key, consumed) = unquote_go(text)?;
        (key, &text[consumed..])
    } else {
        let (key, _) = text.split_once('=')?;
        (key.to_owned(), &text[key.len()..])
    };
    let value = rest.strip_prefix('=')?;
    if key.is_empty() {
        return None;
    }
    let value = if value.starts_with('"') {
        let (value, consumed) = unquote_go(value)?;
        if consumed != rest.len() - 1 {
            return None;
        }
        value
    } else {
        value.to_owned()
    };
    Some((key, value))
}

/// A Go double-quoted string literal at the start of `text` (as `strconv.Quote` writes it):
/// its value and the number of bytes it spans.
fn unquote_go(text: &str) -> Option<(String, usize)> {
    let bytes = text.as_bytes();
    if bytes.first() != Some(&b'"') {
        return None;
    }
    let mut value = Vec::new();
    let mut index = 1;
    let hex = |from: usize, digits: usize| -> Option<u32> {
        let slice = text.get(from..from + digits)?;
        if !slice.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(slice, 16).ok()
    };
    while index < bytes.len() {
        match bytes[index] {
            b'"' => {
                return String::from_utf8(value)
                    .ok()
                    .map(|value| (value, index + 1));
            }
            b'\\' => {
                let escape = *bytes.get(index + 1)?;
                index += 2;
                let simple = match escape {
                    b'a' => Some(0x07),
                    b'b' => Some(0x08),
                    b'f' => Some(0x0c),
                    b'n' => Some(b'\n'),
                    b'r' => Some(b'\r'),
                    b't' => Some(b'\t'),
                    b'v' => Some(0x0b),
                    b'\\' => Some(b'\\'),
                    b'"' => Some(b'"'),
                    _ => None,
                };
                if let Some(byte) = simple {
                    value.push(byte);
                    continue;
                }
                match escape {
                    b'x' => {
                        value.push(u8::try_from(hex(index, 2)?).ok()?);
                        index += 2;
                    }
                    b'0'..=b'7' => {
                        let digits = text.get(index - 1..index + 2)?;
                        if !digits.bytes().all(|byte| (b'0'..=b'7').contains(&byte)) {
                            return None;
                        }
                        value.push(u8::try_from(u32::from_str_radix(digits, 8).ok()?).ok()?);
                        index += 2;
                    }
                    b'u' | b'U' => {
                        let digits = if escape == b'u' { 4 } else { 8 };
                        let character = char::from_u32(hex(index, digits)?)?;
                        let mut buffer = [0u8; 4];
                        value.extend_from_slice(character.encode_utf8(&mut buffer).as_bytes());
                        index += digits;
                    }
                    _ => return None,
                }
            }
            b'\n' => return None,
            byte => {
                value.push(byte);
                index += 1;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// `go version -m app hello` on two programs built by Go 1.27.3 (see
    /// tests/fixtures/sbom/README.md for the commands): `app` has a dependency from a proxy, one
    /// replaced by a local folder and one replaced by another module version, and quoted
    /// build settings; `hello` has none.
    const GO_VERSION_M: &str = include_str!("../../tests/fixtures/sbom/go-version-m.txt");

    fn module(path: &str, version: &str, sum: Option<&str>) -> GoModule {
        GoModule {
            path: path.to_owned(),
            version: version.to_owned(),
            sum: sum.map(str::to_owned),
            replacement: None,
        }
    }

    #[test]
    fn parses_real_go_version_m_output() {
        let programs = parse_go_version_m(GO_VERSION_M).unwrap();
        assert_eq!(programs.len(), 2);
        let (file, app) = &programs[0];
        assert_eq!(file, "app");
        assert_eq!(app.go_version, "go1.27.3");
        assert_eq!(app.path, "example.com/app");
        assert_eq!(app.main, Some(module("example.com/app", "(devel)", None)));
        let mut local = module("example.com/local", "v0.0.0", None);
        local.replacement = Some(Box::new(module("../local", "(devel)", None)));
        let mut old = module("example.com/old", "v1.0.0", None);
        old.replacement = Some(Box::new(module(
            "example.com/fork",
            "v1.3.0",
            Some("h1:5hXKlj8j/pm0qFboHrdEpQqv2PgNVZDUAmStNr0G2A0="),
        )));
        assert_eq!(
            app.deps,
            vec![
                module(
                    "example.com/greet",
                    "v1.2.0",
                    Some("h1:dEAhs2KzHCTG4oNpr6RpV/i/OHSbxIm9tkVgi+24MK4=")
                ),
                local,
                old,
            ]
        );
        let settings: BTreeMap<&str, &str> = app
            .settings
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        assert_eq!(settings["-ldflags"], r#"-s -w -X "main.v=a b""#);
        assert_eq!(settings["-tags"], "netgo,osusergo");
        assert_eq!(settings["CGO_ENABLED"], "0");
        assert_eq!(settings["GOARCH"], "amd64");
        assert_eq!(app.settings.first().unwrap().0, "-buildmode");
        assert_eq!(app.settings.len(), 9);

        let (file, hello) = &programs[1];
        assert_eq!(file, "hello");
        assert_eq!(hello.path, "example.com/hello");
        assert!(hello.deps.is_empty());
        assert!(
            hello
                .settings
                .contains(&("-trimpath".to_owned(), "true".to_owned()))
        );
    }

    #[test]
    fn go_quoted_settings() {
        let cases = [
            ("CGO_ENABLED=0", Some(("CGO_ENABLED", "0"))),
            (r#"-ldflags="-s -w""#, Some(("-ldflags", "-s -w"))),
            (r#""a=b"=c"#, Some(("a=b", "c"))),
            (r#""a b"="tab\there""#, Some(("a b", "tab\there"))),
            (r#"k="\u00e9\x41\101\\\"""#, Some(("k", "éAA\\\""))),
            ("vcs.modified=", Some(("vcs.modified", ""))),
            ("novalue", None),
            ("=value", None),
            (r#"k="unterminated"#, None),
            (r#"k="a"b"#, None),
            (r#"k="\q""#, None),
        ];
        for (text, expected) in cases {
            let parsed = parse_setting(text);
            let expected = expected.map(|(key, value)| (key.to_owned(), value.to_owned()));
            assert_eq!(parsed, expected, "{text}");
        }
    }

    #[test]
    fn malformed_build_information_is_refused() {
        let cases = [
            ("\tpath\tx\n", "before any"),
            ("app go1.22\n", "expected `FILE: goVERSION`"),
            ("app: go1.22\n\tdep\tx\n", "expected PATH"),
            ("app: go1.22\n\tdep\tx\tv1\n", "ends before the `=>`"),
            (
                "app: go1.22\n\tdep\tx\tv1\n\tbuild\ta=b\n",
                "not followed by `=>`",
            ),
            ("app: go1.22\n\t=>\ty\tv1\t\n", "without a module"),
            (
                "app: go1.22\n\tmod\tm\tv1\t\n\tmod\tm\tv1\t\n",
                "second `mod`",
            ),
            ("app: go1.22\n\tbuild\tnovalue\n", "KEY=VALUE"),
            ("app: go1.22\n\tweird\tx\n", "unknown"),
        ];
        for (text, needle) in cases {
            let error = parse_go_version_m(text).unwrap_err().to_string();
            assert!(error.contains(needle), "{text:?}: {error}");
        }
        // Blank lines and a `FILE` holding `: ` are fine.
        let programs = parse_go_version_m("dir: x/app: go1.22.1\n\n\tpath\tm\n").unwrap();
        assert_eq!(programs[0].0, "dir: x/app");
        assert_eq!(programs[0].1.go_version, "go1.22.1");
    }
}
