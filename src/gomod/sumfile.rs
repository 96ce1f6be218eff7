//! go.sum (go.dev/ref/mod#go-sum-files): one line per hash, `MODULE VERSION HASH` for a module
//! zip and `MODULE VERSION/go.mod HASH` for its go.mod; blank lines are allowed. kiln reads
//! the `h1:` hashes (other algorithms are kept by Go for the future and skipped here). Two
//! different `h1:` hashes for one module and version are an error naming both lines: Go
//! would refuse such a go.sum at verification time, and kiln must not pick one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;

#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: {message}", .file.display())]
pub struct SumFileError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

/// The hashes go.sum holds for one module version.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModuleSums {
    /// `h1:` of the module zip, and the line it is on.
    pub zip: Option<(String, usize)>,
    /// `h1:` of its go.mod, and the line it is on.
    pub go_mod: Option<(String, usize)>,
}

/// A parsed go.sum: `(module, version)` → its hashes, sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SumFile {
    pub modules: BTreeMap<(String, String), ModuleSums>,
}

/// Whether `hash` is a well-formed `h1:` hash (standard base64 of 32 bytes).
pub fn is_h1(hash: &str) -> bool {
    hash.strip_prefix("h1:").is_some_and(|encoded| {
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .is_ok_and(|bytes| bytes.len() == 32)
    })
}

/// Parse go.sum `text`; `file` names it in errors.
pub fn parse(text: &str, file: &Path) -> Result<SumFile, SumFileError> {
    let error = |line: usize, message: String| SumFileError {
        file: file.to_owned(),
        line,
        message,
    };
    let mut sums = SumFile::default();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [] => continue,
            [module, version, hash] => {
                let Some(algorithm) = hash.split_once(':').map(|(algorithm, _)| algorithm) else {
                    return Err(error(
                        number,
                        format!("`{hash}` is not a hash (expected `h1:…`)"),
                    ));
                };
                if algorithm != "h1" {
                    continue;
                }
                if !is_h1(hash) {
                    return Err(error(
                        number,
                        format!("`{hash}` is not an h1: hash (base64 of 32 bytes)"),
                    ));
                }
                let (version, is_go_mod) = match version.strip_suffix("/go.mod") {
                    Some(version) => (version, true),
                    None => (*version, false),
                };
                if !version.starts_with('v') {
                    return Err(error(
                        number,
                        format!("`{version}` is not a module version (they start with `v`)"),
                    ));
                }
                // Checked here, where the line is known: each names proxy URLs and store
                // paths later, and a path that climbs (`../../x`) or hides a character must
                // not get that far.
                crate::gomod::module::check_path(module)
                    .and_then(|()| crate::gomod::module::check_version(version))
                    .map_err(|problem| error(number, problem.to_string()))?;
                let entry = sums
                    .modules
                    .entry(((*module).to_owned(), version.to_owned()))
                    .or_default();
                let slot = if is_go_mod {
                    &mut entry.go_mod
                } else {
                    &mut entry.zip
                };
                match slot {
                    Some((existing, line)) if existing != hash => {
                        return Err(error(
                            number,
                            format!(
                                "{module} {version}{} has two different hashes: {hash} here and {existing} on line {line}",
                                if is_go_mod { "/go.mod" } else { "" }
                            ),
                        ));
                    }
                    Some(_) => {}
                    None => *slot = Some(((*hash).to_owned(), number)),
                }
            }
            _ => {
                return Err(error(
                    number,
                    format!(
                        "expected `MODULE VERSION HASH`, found {} fields: `{}`",
                        fields.len(),
                        line.trim()
                    ),
                ));
            }
        }
    }
    Ok(sums)
}

/// go.sum text for modules given as (path, version, `h1:` of the zip when its code is used,
/// `h1:` of its go.mod), in the order given: what kiln hands Go for a project locked from
/// gomod2nix.toml, which has no go.sum.
pub fn render<'a>(
    modules: impl IntoIterator<Item = (&'a str, &'a str, Option<&'a str>, &'a str)>,
) -> String {
    let mut text = String::new();
    for (path, version, h1, go_mod) in modules {
        if let Some(h1) = h1 {
            text.push_str(&format!("{path} {version} {h1}\n"));
        }
        text.push_str(&format!("{path} {version}/go.mod {go_mod}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZIP: &str = "h1:A+z+XjcWgiIhrZH1NmkoHg4TTnckCc3ZrNLbNMO2ifs=";
    const MOD: &str = "h1:sfFeq1j53UAvm7kJIVee8/n0tgz8AJ5n76uwmRv7Tic=";

    #[test]
    fn reads_zip_and_go_mod_hashes() {
        let text = format!(
            "example.com/Fixture/lib v1.4.2 {ZIP}\nexample.com/Fixture/lib v1.4.2/go.mod {MOD}\n\n\
             golang.org/x/text v0.3.0/go.mod {MOD}\nexample.com/old v1.0.0 h2:future-algorithm\n"
        );
        let sums = parse(&text, Path::new("go.sum")).unwrap();
        let key = |module: &str, version: &str| (module.to_owned(), version.to_owned());
        assert_eq!(
            sums.modules[&key("example.com/Fixture/lib", "v1.4.2")],
            ModuleSums {
                zip: Some((ZIP.to_owned(), 1)),
                go_mod: Some((MOD.to_owned(), 2)),
            }
        );
        assert_eq!(sums.modules[&key("golang.org/x/text", "v0.3.0")].zip, None);
        assert!(!sums.modules.contains_key(&key("example.com/old", "v1.0.0")));
        // A repeated identical line is harmless, as in Go.
        let doubled = format!("a.com/m v1.0.0 {ZIP}\na.com/m v1.0.0 {ZIP}\n");
        assert_eq!(
            parse(&doubled, Path::new("go.sum")).unwrap().modules.len(),
            1
        );
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            (
                format!("a.com/m v1.0.0 {ZIP}\na.com/m v1.0.0\n"),
                "go.sum:2: expected `MODULE VERSION HASH`, found 2 fields: `a.com/m v1.0.0`",
            ),
            (
                "a.com/m v1.0.0 h1:short\n".to_owned(),
                "go.sum:1: `h1:short` is not an h1: hash (base64 of 32 bytes)",
            ),
            (
                format!("a.com/m 1.0.0 {ZIP}\n"),
                "go.sum:1: `1.0.0` is not a module version (they start with `v`)",
            ),
            (
                "a.com/m v1.0.0 nohash\n".to_owned(),
                "go.sum:1: `nohash` is not a hash (expected `h1:…`)",
            ),
            (
                format!("a.com/m v1.0.0/go.mod {MOD}\n\na.com/m v1.0.0/go.mod {ZIP}\n"),
                "go.sum:3: a.com/m v1.0.0/go.mod has two different hashes",
            ),
        ];
        for (text, expected) in cases {
            let message = parse(&text, Path::new("go.sum")).unwrap_err().to_string();
            assert!(
                message.starts_with(expected),
                "{message}\nexpected: {expected}"
            );
        }
    }

    /// A go.sum line for `../../escaped` (or a path with a byte order mark glued on) was
    /// accepted, and failed only when fetched, naming no line, or not at all when another
    /// module failed first.
    #[test]
    fn go_sum_line_with_invalid_module_path_is_refused() {
        let cases = [
            (
                format!("a.com/m v1.0.0 {ZIP}\n../../escaped v1.0.0 {ZIP}\n"),
                "go.sum:2: invalid module path `../../escaped`",
            ),
            (
                format!("\u{feff}a.com/m v1.0.0 {ZIP}\n"),
                "go.sum:1: invalid module path `\u{feff}a.com/m`",
            ),
            (
                format!("a.com/m v1.0.0/../../x {ZIP}\n"),
                "go.sum:1: invalid version `v1.0.0/../../x`",
            ),
        ];
        for (text, expected) in cases {
            let message = parse(&text, Path::new("go.sum")).unwrap_err().to_string();
            assert!(
                message.starts_with(expected),
                "{message}\nexpected: {expected}"
            );
        }
    }

    #[test]
    fn h1_shape() {
        assert!(is_h1(ZIP));
        assert!(!is_h1("h1:"));
        assert!(!is_h1(&ZIP.replace("h1:", "h2:")));
        assert!(!is_h1("h1:!!!!"));
    }
}
