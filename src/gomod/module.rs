//! Module paths and versions as Go defines them (go.dev/ref/mod, "Module paths", "Versions" and
//! "Case-encoding"; golang.org/x/mod/module and golang.org/x/mod/semver).
//!
//! These rules decide which URL kiln asks a module proxy for and which folder a module lands
//! in, so they follow Go exactly rather than approximately: a path Go accepts and kiln refused
//! (or the reverse) would make kiln disagree with `go mod download` about the same go.sum.
//!
//! - A module path is slash-separated elements of ASCII letters, digits and `-._~`; no element
//!   is empty, `.`-only, starts with `.` or ends with `.`, is a Windows reserved name (`con`,
//!   `nul.txt`, ...) or ends in `~` and digits (a Windows short name). The first element is a
//!   lower-case domain name with at least one dot that does not start with `-`. A final `/vN`
//!   must have N ≥ 2 without a leading zero; `gopkg.in/` paths end in `.vN` instead.
//! - A version is canonical semver with a leading `v`: `vMAJOR.MINOR.PATCH`, an optional
//!   `-PRERELEASE` and no build metadata except `+incompatible` (for v2 and above). Queries
//!   (`latest`, branches, `v1.2`) are not versions: kiln fetches exactly what go.mod names.
//! - Case-encoding: proxies and the module cache may live on case-insensitive file systems, so
//!   every upper-case letter is written `!` + its lower-case letter
//!   (`github.com/Azure/x` → `github.com/!azure/x`). `!` never appears in a path or version,
//!   which keeps the encoding reversible.
//! - [`Patterns`] is GOPRIVATE's glob list (Go's `MatchPrefixPatterns`): comma-separated
//!   `path.Match` globs, each matched against the prefix of a module path that has as many
//!   elements as the glob; malformed globs are ignored, as Go ignores them.

// The names Windows reserves (compared case-insensitively, before the first dot): one list
// for module paths and the file paths in a module.
use super::filepath::WINDOWS_RESERVED;

#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error("invalid module path `{path}`: {reason}")]
    Path { path: String, reason: String },
    #[error("invalid version `{version}`: {reason}")]
    Version { version: String, reason: String },
    #[error("{path}@{version}: the version does not fit the path: {reason}")]
    PathMajor {
        path: String,
        version: String,
        reason: String,
    },
    #[error("invalid escaped module path `{escaped}`: {reason}")]
    EscapedPath { escaped: String, reason: String },
}

/// Which of Go's element rules apply: module paths, or file names (versions are checked as
/// file names by `EscapeVersion`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum ElementKind {
    ModulePath,
    FileName,
}

/// Check that `path` is a valid module path (Go's `module.CheckPath`).
pub fn check_path(path: &str) -> Result<(), ModuleError> {
    check_path_reason(path).map_err(|reason| ModuleError::Path {
        path: path.to_owned(),
        reason,
    })
}

fn check_path_reason(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("empty string".to_owned());
    }
    if path.starts_with('-') {
        return Err("leading dash".to_owned());
    }
    if path.contains("//") {
        return Err("double slash".to_owned());
    }
    if path.ends_with('/') {
        return Err("trailing slash".to_owned());
    }
    for element in path.split('/') {
        check_element(element, ElementKind::ModulePath)?;
    }
    // Not empty: the element checks above refuse empty elements.
    let first = path.split('/').next().unwrap_or_default();
    if !first.contains('.') {
        return Err(format!(
            "missing dot in first path element `{first}` (module paths start with a domain name)"
        ));
    }
    if let Some(bad) = first
        .chars()
        .find(|&character| !matches!(character, '-' | '.' | '0'..='9' | 'a'..='z'))
    {
        return Err(format!(
            "invalid char {bad:?} in first path element (a lower-case domain name)"
        ));
    }
    if split_path_version(path).is_none() {
        return Err(
            "invalid major version suffix (use /vN with N >= 2, or .vN for gopkg.in)".to_owned(),
        );
    }
    Ok(())
}

fn check_element(element: &str, kind: ElementKind) -> Result<(), String> {
    if element.is_empty() {
        return Err("empty path element".to_owned());
    }
    if element.bytes().all(|byte| byte == b'.') {
        return Err(format!("invalid path element `{element}`"));
    }
    if kind == ElementKind::ModulePath && element.starts_with('.') {
        return Err(format!("leading dot in path element `{element}`"));
    }
    if element.ends_with('.') {
        return Err(format!("trailing dot in path element `{element}`"));
    }
    let allowed = |character: char| match kind {
        ElementKind::ModulePath => {
            character.is_ascii_alphanumeric() || matches!(character, '-' | '.' | '_' | '~')
        }
        // Go also allows Unicode letters in file names, but its case-encoding refuses them,
        // so kiln does not accept what it could never encode.
        ElementKind::FileName => {
            character.is_ascii_alphanumeric() || "!#$%&()+,-.=@[]^_{}~ ".contains(character)
        }
    };
    if let Some(bad) = element.chars().find(|&character| !allowed(character)) {
        return Err(format!("invalid char {bad:?}"));
    }
    let short = element.split('.').next().unwrap_or_default();
    if WINDOWS_RESERVED
        .iter()
        .any(|reserved| reserved.eq_ignore_ascii_case(short))
    {
        return Err(format!(
            "`{short}` is a reserved file name on Windows and cannot be a path element"
        ));
    }
    if kind == ElementKind::ModulePath
        && let Some((_, suffix)) = short.rsplit_once('~')
        && !suffix.is_empty()
        && suffix.bytes().all(|byte| byte.is_ascii_digit())
    {
        return Err(format!(
            "path element `{element}` ends in a tilde and digits, like a Windows short name"
        ));
    }
    Ok(())
}

/// Split `path` into its prefix and major-version suffix (`/v2`, or `.v1` for gopkg.in);
/// `None` if the suffix breaks Go's rules (`/v1`, `/v0`, `/v02`, `/v2.1`).
fn split_path_version(path: &str) -> Option<(&str, &str)> {
    if path.starts_with("gopkg.in/") {
        return split_gopkg_in(path);
    }
    let bytes = path.as_bytes();
    let mut index = bytes.len();
    let mut has_dot = false;
    while index > 0 && (bytes[index - 1].is_ascii_digit() || bytes[index - 1] == b'.') {
        has_dot |= bytes[index - 1] == b'.';
        index -= 1;
    }
    if index <= 1 || index == bytes.len() || bytes[index - 1] != b'v' || bytes[index - 2] != b'/' {
        return Some((path, ""));
    }
    let (prefix, major) = path.split_at(index - 2);
    if has_dot || major.len() <= 2 || major.as_bytes()[2] == b'0' || major == "/v1" {
        return None;
    }
    Some((prefix, major))
}

fn split_gopkg_in(path: &str) -> Option<(&str, &str)> {
    let bytes = path.as_bytes();
    let mut index = path.strip_suffix("-unstable").unwrap_or(path).len();
    while index > 0 && bytes[index - 1].is_ascii_digit() {
        index -= 1;
    }
    if index <= 1 || bytes[index - 1] != b'v' || bytes[index - 2] != b'.' {
        // Every gopkg.in path ends in .vN.
        return None;
    }
    let (prefix, major) = path.split_at(index - 2);
    if major.len() <= 2 || (major.as_bytes()[2] == b'0' && major != ".v0") {
        return None;
    }
    Some((prefix, major))
}

/// A semantic version split into its parts (golang.org/x/mod/semver's grammar).
struct Semver<'a> {
    major: &'a str,
    /// `None` for the shorthands `v1` and `v1.2`, which are valid but not canonical.
    minor: Option<&'a str>,
    patch: Option<&'a str>,
    build: &'a str,
}

fn parse_semver(version: &str) -> Option<Semver<'_>> {
    let rest = version.strip_prefix('v')?;
    let (major, rest) = parse_number(rest)?;
    let Some(rest) = rest.strip_prefix('.') else {
        return rest.is_empty().then_some(Semver {
            major,
            minor: None,
            patch: None,
            build: "",
        });
    };
    let (minor, rest) = parse_number(rest)?;
    let Some(rest) = rest.strip_prefix('.') else {
        return rest.is_empty().then_some(Semver {
            major,
            minor: Some(minor),
            patch: None,
            build: "",
        });
    };
    let (patch, mut rest) = parse_number(rest)?;
    if let Some(after) = rest.strip_prefix('-') {
        let end = after.find('+').unwrap_or(after.len());
        let (prerelease, after_prerelease) = after.split_at(end);
        if !identifiers_valid(prerelease, true) {
            return None;
        }
        rest = after_prerelease;
    }
    let mut build = "";
    if let Some(after) = rest.strip_prefix('+') {
        if !identifiers_valid(after, false) {
            return None;
        }
        build = rest;
        rest = "";
    }
    rest.is_empty().then_some(Semver {
        major,
        minor: Some(minor),
        patch: Some(patch),
        build,
    })
}

/// A decimal number without a leading zero, and what follows it.
fn parse_number(text: &str) -> Option<(&str, &str)> {
    let end = text
        .find(|character: char| !character.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, rest) = text.split_at(end);
    if number.is_empty() || (number.len() > 1 && number.starts_with('0')) {
        return None;
    }
    Some((number, rest))
}

/// Dot-separated non-empty identifiers of `[0-9A-Za-z-]`; numeric pre-release identifiers
/// have no leading zero.
fn identifiers_valid(text: &str, is_prerelease: bool) -> bool {
    text.split('.').all(|identifier| {
        !identifier.is_empty()
            && identifier
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
            && !(is_prerelease
                && identifier.len() > 1
                && identifier.starts_with('0')
                && identifier.bytes().all(|byte| byte.is_ascii_digit()))
    })
}

/// Check that `version` is a canonical semantic version, as go.mod and go.sum record them:
/// `vMAJOR.MINOR.PATCH[-PRERELEASE][+incompatible]`.
pub fn check_version(version: &str) -> Result<(), ModuleError> {
    let error = |reason: String| ModuleError::Version {
        version: version.to_owned(),
        reason,
    };
    let Some(semver) = parse_semver(version) else {
        return Err(error(
            "not a semantic version (expected an exact version such as v1.2.3, not a query or branch)"
                .to_owned(),
        ));
    };
    if semver.minor.is_none() || semver.patch.is_none() {
        return Err(error(format!(
            "not canonical: write it as {version}{}",
            if semver.minor.is_none() { ".0.0" } else { ".0" }
        )));
    }
    match semver.build {
        "" => {}
        "+incompatible" => {
            if semver.major == "0" || semver.major == "1" {
                return Err(error(format!(
                    "+incompatible is only for major versions v2 and above, and v{} is compatible",
                    semver.major
                )));
            }
        }
        build => {
            return Err(error(format!(
                "build metadata `{build}` is not allowed in a module version (only +incompatible)"
            )));
        }
    }
    Ok(())
}

/// Check that `path` and `version` are valid and fit each other: a path ending in `/vN`
/// (or gopkg.in's `.vN`) takes only vN versions, other paths v0, v1 or `+incompatible`
/// (Go's `module.Check`).
pub fn check(path: &str, version: &str) -> Result<(), ModuleError> {
    check_path(path)?;
    check_version(version)?;
    let (_, path_major) = split_path_version(path).unwrap_or((path, ""));
    let path_major = if path_major.starts_with(".v") {
        path_major.strip_suffix("-unstable").unwrap_or(path_major)
    } else {
        path_major
    };
    // Go accepts v0.0.0- pseudo-versions for gopkg.in .v1 paths: old tools generated them.
    if version.starts_with("v0.0.0-") && path_major == ".v1" {
        return Ok(());
    }
    let semver = parse_semver(version).ok_or_else(|| ModuleError::Version {
        version: version.to_owned(),
        reason: "not a semantic version".to_owned(),
    })?;
    let version_major = format!("v{}", semver.major);
    let expected = match path_major {
        "" if matches!(semver.major, "0" | "1") || semver.build == "+incompatible" => return Ok(()),
        "" => "v0 or v1",
        suffix if suffix[1..] == version_major => return Ok(()),
        suffix => &suffix[1..],
    };
    Err(ModuleError::PathMajor {
        path: path.to_owned(),
        version: version.to_owned(),
        reason: format!("should be {expected}, not {version_major}"),
    })
}

/// Case-encode a module path for a proxy URL or the module cache (Go's `module.EscapePath`).
pub fn escape_path(path: &str) -> Result<String, ModuleError> {
    check_path(path)?;
    Ok(escape_upper(path))
}

/// Case-encode a version (Go's `module.EscapeVersion`): any file-name-safe string without `!`.
pub fn escape_version(version: &str) -> Result<String, ModuleError> {
    let checked = check_element(version, ElementKind::FileName).and_then(|()| {
        if version.contains('!') {
            Err("`!` is not allowed in a version".to_owned())
        } else {
            Ok(())
        }
    });
    checked.map_err(|reason| ModuleError::Version {
        version: version.to_owned(),
        reason,
    })?;
    Ok(escape_upper(version))
}

/// `!` + lower case for each upper-case ASCII letter; callers have checked that the input is
/// ASCII without `!`.
fn escape_upper(text: &str) -> String {
    debug_assert!(text.is_ascii() && !text.contains('!'));
    let mut escaped = String::with_capacity(text.len() + 8);
    for character in text.chars() {
        if character.is_ascii_uppercase() {
            escaped.push('!');
            escaped.push(character.to_ascii_lowercase());
        } else {
            escaped.push(character);
        }
    }
    escaped
}

/// Decode a case-encoded module path (Go's `module.UnescapePath`); the result must be a valid
/// module path.
pub fn unescape_path(escaped: &str) -> Result<String, ModuleError> {
    let error = |reason: String| ModuleError::EscapedPath {
        escaped: escaped.to_owned(),
        reason,
    };
    let mut path = String::with_capacity(escaped.len());
    let mut after_bang = false;
    for character in escaped.chars() {
        if after_bang {
            if !character.is_ascii_lowercase() {
                return Err(error(format!(
                    "`!` must be followed by a lower-case letter, not {character:?}"
                )));
            }
            path.push(character.to_ascii_uppercase());
            after_bang = false;
        } else if character == '!' {
            after_bang = true;
        } else if character.is_ascii_uppercase() {
            return Err(error(format!(
                "upper-case {character:?} (escaped paths write `!` + lower case)"
            )));
        } else if !character.is_ascii() {
            return Err(error(format!("non-ASCII {character:?}")));
        } else {
            path.push(character);
        }
    }
    if after_bang {
        return Err(error("ends in `!`".to_owned()));
    }
    check_path_reason(&path).map_err(error)?;
    Ok(path)
}

/// A GOPRIVATE-style list of module path prefix globs (Go's `module.MatchPrefixPatterns`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Patterns {
    patterns: Vec<Pattern>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Pattern {
    /// As written, without a trailing slash.
    text: String,
    tokens: Vec<Token>,
    /// How many `/` the glob has: it matches the module path's first `slashes + 1` elements.
    slashes: usize,
}

/// One piece of a `path.Match` glob.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `*`: any run of characters other than `/`.
    AnyRun,
    /// `?`: one character other than `/`.
    AnyOne,
    /// `[...]` or `[^...]`: one character in (or not in) the inclusive ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Patterns {
    /// Parse a comma-separated list such as GOPRIVATE's. Empty entries and malformed globs
    /// are skipped and a trailing `/` is ignored, as Go does; spaces are not trimmed (Go does
    /// not trim them either, so ` b.com` never matches).
    pub fn parse(list: &str) -> Self {
        let patterns = list
            .split(',')
            .filter_map(|entry| {
                let text = entry.strip_suffix('/').unwrap_or(entry);
                if text.is_empty() {
                    return None;
                }
                Some(Pattern {
                    text: text.to_owned(),
                    tokens: parse_glob(text)?,
                    slashes: text.matches('/').count(),
                })
            })
            .collect();
        Patterns { patterns }
    }

    /// Whether any glob matches a prefix of `module` (whole elements only).
    pub fn matches(&self, module: &str) -> bool {
        self.matching(module).is_some()
    }

    /// The first glob (as written) that matches a prefix of `module`, for messages.
    pub fn matching(&self, module: &str) -> Option<&str> {
        self.patterns
            .iter()
            .find(|pattern| {
                // The prefix with as many elements as the glob: up to its (slashes + 1)th `/`.
                let prefix = match module.match_indices('/').nth(pattern.slashes) {
                    Some((index, _)) => &module[..index],
                    None if module.matches('/').count() >= pattern.slashes => module,
                    None => return false,
                };
                glob_matches(&pattern.tokens, prefix)
            })
            .map(|pattern| pattern.text.as_str())
    }

    /// Whether the list has no usable glob.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

/// Parse `path.Match` syntax; `None` for a malformed glob (an unclosed `[`, an empty class,
/// a trailing `\`, a bare `-` or `]` as a class bound).
fn parse_glob(glob: &str) -> Option<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut characters = glob.chars().peekable();
    while let Some(character) = characters.next() {
        let token = match character {
            '*' => Token::AnyRun,
            '?' => Token::AnyOne,
            '\\' => Token::Literal(characters.next()?),
            '[' => {
                let negated = characters.next_if_eq(&'^').is_some();
                let mut ranges = Vec::new();
                loop {
                    if !ranges.is_empty() && characters.next_if_eq(&']').is_some() {
                        break;
                    }
                    let low = class_character(&mut characters)?;
                    let high = if characters.next_if_eq(&'-').is_some() {
                        class_character(&mut characters)?
                    } else {
                        low
                    };
                    ranges.push((low, high));
                }
                Token::Class { negated, ranges }
            }
            literal => Token::Literal(literal),
        };
        tokens.push(token);
    }
    Some(tokens)
}

/// One (possibly `\`-escaped) bound of a class range; the class must go on after it.
fn class_character(characters: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<char> {
    let character = match characters.next()? {
        '-' | ']' => return None,
        '\\' => characters.next()?,
        character => character,
    };
    characters.peek()?;
    Some(character)
}

/// Whether the glob matches all of `text` (dynamic programming, so many `*` stay cheap).
fn glob_matches(tokens: &[Token], text: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    // matched[j]: tokens[i..] matches text[j..], computed from the last token backwards.
    let mut matched = vec![false; text.len() + 1];
    matched[text.len()] = true;
    for token in tokens.iter().rev() {
        let mut next = vec![false; text.len() + 1];
        for start in (0..=text.len()).rev() {
            next[start] = match token {
                Token::AnyRun => {
                    matched[start] || (start < text.len() && text[start] != '/' && next[start + 1])
                }
                _ => {
                    start < text.len()
                        && matched[start + 1]
                        && match token {
                            Token::Literal(literal) => text[start] == *literal,
                            Token::AnyOne => text[start] != '/',
                            Token::Class { negated, ranges } => {
                                ranges
                                    .iter()
                                    .any(|(low, high)| (*low..=*high).contains(&text[start]))
                                    != *negated
                            }
                            Token::AnyRun => false,
                        }
                }
            };
        }
        matched = next;
    }
    matched[0]
}

/// Semantic-version order for canonical module versions (`v1.10.0` after `v1.9.0`; a
/// pre-release before its release; build metadata such as `+incompatible` ignored).
///
/// Pre-releases compare as semver 2.0.0 (§11) and Go's `golang.org/x/mod/semver` do: by
/// dot-separated identifiers, left to right; numeric ones numerically, and before
/// alphanumeric ones, which compare in ASCII order; when one list is a prefix of the other,
/// the shorter sorts first (`alpha < alpha.1 < alpha.beta < beta < beta.2 < beta.11 < rc.1`).
/// Pseudo-versions (`v0.0.0-20240102150405-abcdef123456`) are pre-releases too, so they
/// order by their timestamp.
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    fn parts(version: &str) -> (Vec<u64>, Option<&str>) {
        let version = version.trim_start_matches('v');
        let version = version.split('+').next().unwrap_or(version);
        let (core, pre) = match version.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (version, None),
        };
        (
            core.split('.')
                .map(|number| number.parse().unwrap_or(0))
                .collect(),
            pre,
        )
    }
    /// Digits only: compared by value, as Go does, by length first (no leading zeros in a
    /// valid version, and no overflow for long ones).
    fn identifier(a: &str, b: &str) -> Ordering {
        let numeric =
            |text: &str| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
        match (numeric(a), numeric(b)) {
            (true, true) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => a.cmp(b),
        }
    }
    fn prerelease(a: &str, b: &str) -> Ordering {
        let mut a = a.split('.');
        let mut b = b.split('.');
        loop {
            match (a.next(), b.next()) {
                (None, None) => return Ordering::Equal,
                (None, Some(_)) => return Ordering::Less,
                (Some(_), None) => return Ordering::Greater,
                (Some(a), Some(b)) => match identifier(a, b) {
                    Ordering::Equal => continue,
                    unequal => return unequal,
                },
            }
        }
    }
    let (a_core, a_pre) = parts(a);
    let (b_core, b_pre) = parts(b);
    a_core.cmp(&b_core).then_with(|| match (a_pre, b_pre) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => prerelease(a, b),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_path_accepts_go_valid_paths() {
        for path in [
            "github.com/Azure/azure-sdk-for-go",
            "golang.org/x/text",
            "rsc.io/quote/v3",
            "example.com/a~b_c-d.e",
            "gopkg.in/yaml.v2",
            "gopkg.in/check.v1",
            "gopkg.in/yaml.v0",
            "gopkg.in/natefinch/lumberjack.v2",
            "gopkg.in/vmihailenco/msgpack.v2-unstable",
            "example.com/v2x",
            "example.com/a/v10",
            "x.y",
        ] {
            assert!(check_path(path).is_ok(), "{path}: {:?}", check_path(path));
        }
    }

    #[test]
    fn check_path_rejects_what_go_rejects() {
        for (path, reason) in [
            ("", "empty string"),
            ("-x.com/a", "leading dash"),
            ("x.com//a", "double slash"),
            ("x.com/a/", "trailing slash"),
            ("/x.com", "empty path element"),
            ("localhost/a", "missing dot in first path element"),
            ("Example.com/a", "invalid char 'E' in first path element"),
            ("ex_ample.com/a", "invalid char '_' in first path element"),
            ("x.com/.hidden", "leading dot"),
            ("x.com/a./b", "trailing dot"),
            ("x.com/../b", "invalid path element `..`"),
            ("x.com/a b", "invalid char ' '"),
            ("x.com/a!b", "invalid char '!'"),
            ("x.com/a+b", "invalid char '+'"),
            ("x.com/café", "invalid char 'é'"),
            ("x.com/con", "reserved file name on Windows"),
            ("x.com/NUL.txt", "reserved file name on Windows"),
            ("x.com/abcdef~1", "tilde and digits"),
            ("x.com/a/v1", "invalid major version suffix"),
            ("x.com/a/v0", "invalid major version suffix"),
            ("x.com/a/v02", "invalid major version suffix"),
            ("x.com/a/v2.1", "invalid major version suffix"),
            ("gopkg.in/yaml", "invalid major version suffix"),
            ("gopkg.in/yaml.v01", "invalid major version suffix"),
        ] {
            let error = check_path(path).expect_err(path).to_string();
            assert!(error.contains(reason), "{path}: {error}");
            assert!(error.contains(&format!("`{path}`")), "{error}");
        }
    }

    #[test]
    fn check_version_takes_canonical_semver_only() {
        for version in [
            "v0.0.0",
            "v1.2.3",
            "v1.2.3-pre",
            "v1.2.3-rc.1",
            "v0.0.0-20191109021931-daa7c04131f5",
            "v1.2.4-0.20191109021931-daa7c04131f5",
            "v2.0.0+incompatible",
            "v2.1.0-beta.1+incompatible",
        ] {
            assert!(check_version(version).is_ok(), "{version}");
        }
        for (version, reason) in [
            ("latest", "not a semantic version"),
            ("master", "not a semantic version"),
            ("1.2.3", "not a semantic version"),
            ("v1.02.3", "not a semantic version"),
            ("v1.2.3-01", "not a semantic version"),
            ("v1.2.3-", "not a semantic version"),
            ("v1.2.3-a..b", "not a semantic version"),
            ("v1.2.3 ", "not a semantic version"),
            ("v1", "write it as v1.0.0"),
            ("v1.2", "write it as v1.2.0"),
            ("v1.2.3+meta", "build metadata `+meta`"),
            ("v1.0.0+incompatible", "v1 is compatible"),
        ] {
            let error = check_version(version).expect_err(version).to_string();
            assert!(error.contains(reason), "{version}: {error}");
            assert!(error.contains(&format!("`{version}`")), "{error}");
        }
    }

    #[test]
    fn check_matches_path_major_to_version() {
        for (path, version) in [
            ("rsc.io/quote", "v1.5.2"),
            ("rsc.io/quote", "v0.1.0"),
            ("github.com/docker/docker", "v20.10.7+incompatible"),
            ("rsc.io/quote/v3", "v3.1.0"),
            ("gopkg.in/yaml.v2", "v2.4.0"),
            ("gopkg.in/check.v1", "v0.0.0-20161208181325-20d25e280405"),
            ("gopkg.in/vmihailenco/msgpack.v2-unstable", "v2.9.1"),
        ] {
            assert!(check(path, version).is_ok(), "{path}@{version}");
        }
        for (path, version, reason) in [
            ("rsc.io/quote", "v2.0.0", "should be v0 or v1, not v2"),
            ("rsc.io/quote/v3", "v1.5.2", "should be v3, not v1"),
            ("gopkg.in/yaml.v2", "v3.0.0", "should be v2, not v3"),
        ] {
            let error = check(path, version).expect_err(path).to_string();
            assert!(error.contains(reason), "{error}");
            assert!(error.contains(&format!("{path}@{version}")), "{error}");
        }
    }

    #[test]
    fn escapes_upper_case_as_go_does() {
        // The examples from golang.org/x/mod/module's documentation.
        for (path, escaped) in [
            (
                "github.com/Azure/azure-sdk-for-go",
                "github.com/!azure/azure-sdk-for-go",
            ),
            (
                "github.com/GoogleCloudPlatform/cloudsql-proxy",
                "github.com/!google!cloud!platform/cloudsql-proxy",
            ),
            ("github.com/Sirupsen/logrus", "github.com/!sirupsen/logrus"),
            ("golang.org/x/text", "golang.org/x/text"),
        ] {
            assert_eq!(escape_path(path).unwrap(), escaped);
            assert_eq!(unescape_path(escaped).unwrap(), path);
        }
        assert_eq!(escape_version("v1.2.3-RC1").unwrap(), "v1.2.3-!r!c1");
        assert_eq!(
            escape_version("v2.0.0+incompatible").unwrap(),
            "v2.0.0+incompatible"
        );
    }

    #[test]
    fn escaping_refuses_bad_input() {
        assert!(escape_path("github.com/a!b/c").is_err());
        assert!(escape_path("github.com/Azure/").is_err());
        for version in ["v1.0.0!", "", "v1/x", "v1.0.", "con", "v1:0"] {
            assert!(escape_version(version).is_err(), "{version:?}");
        }
        for (escaped, reason) in [
            (
                "github.com/!Azure/x",
                "`!` must be followed by a lower-case letter",
            ),
            (
                "github.com/!!azure/x",
                "`!` must be followed by a lower-case letter",
            ),
            ("github.com/Azure/x", "upper-case 'A'"),
            ("github.com/azure!", "ends in `!`"),
            ("github.com/!", "ends in `!`"),
            ("!github.com/x", "invalid char 'G' in first path element"),
        ] {
            let error = unescape_path(escaped).expect_err(escaped).to_string();
            assert!(error.contains(reason), "{escaped}: {error}");
            assert!(error.contains(escaped), "{error}");
        }
    }

    #[test]
    fn prefix_patterns_match_like_go() {
        // Cases from `go help private` and golang.org/x/mod's MatchPrefixPatterns tests.
        let cases: &[(&str, &str, bool)] = &[
            ("*.corp.example.com", "git.corp.example.com/team/repo", true),
            ("*.corp.example.com", "corp.example.com/team/repo", false),
            ("*.corp.example.com", "git.corp.example.com", true),
            ("rsc.io/private", "rsc.io/private", true),
            ("rsc.io/private", "rsc.io/private/quux", true),
            ("rsc.io/private", "rsc.io/privateer", false),
            ("rsc.io/private", "rsc.io", false),
            (
                "*.corp.example.com,rsc.io/private",
                "rsc.io/private/x",
                true,
            ),
            ("example.com/*/x", "example.com/a/x", true),
            ("example.com/*/x", "example.com/a/x/y", true),
            ("example.com/*/x", "example.com/a/b/x", false),
            ("example.com/*/x", "example.com/a", false),
            ("example.com/", "example.com/a", true),
            ("*", "anything.com/a/b", true),
            ("*/quote", "rsc.io/quote", true),
            ("*/quote", "rsc.io/quote/v3", true),
            ("", "example.com", false),
            (",,", "example.com", false),
            ("example.com/a?c", "example.com/abc", true),
            ("example.com/a?c", "example.com/a/c", false),
            ("example.com/[a-c]x", "example.com/bx", true),
            ("example.com/[^a-c]x", "example.com/bx", false),
            ("example.com/[^a-c]x", "example.com/dx", true),
            ("example.com/\\*", "example.com/*", true),
            ("example.com/\\*", "example.com/x", false),
            // Malformed globs are skipped, not errors; the next one still counts.
            ("example.com/[", "example.com/[", false),
            ("example.com/[]a]", "example.com/]", false),
            ("example.com/[,example.com", "example.com/x", true),
            // Go does not trim spaces around entries.
            ("a.com, example.com", "example.com", false),
        ];
        for &(list, module, expected) in cases {
            assert_eq!(
                Patterns::parse(list).matches(module),
                expected,
                "{list:?} against {module:?}"
            );
        }
    }

    #[test]
    fn patterns_report_the_matching_glob() {
        let patterns = Patterns::parse("a.com,*.corp.example.com/");
        assert_eq!(
            patterns.matching("git.corp.example.com/x"),
            Some("*.corp.example.com")
        );
        assert_eq!(patterns.matching("b.com"), None);
        assert!(!patterns.is_empty());
        assert!(Patterns::parse("").is_empty());
        assert!(Patterns::parse(",[,").is_empty());
    }

    #[test]
    fn versions_order_as_semver() {
        use std::cmp::Ordering::*;
        assert_eq!(compare_versions("v1.10.0", "v1.9.0"), Greater);
        assert_eq!(compare_versions("v1.0.0-rc.1", "v1.0.0"), Less);
        assert_eq!(compare_versions("v2.0.0+incompatible", "v2.0.0"), Equal);
    }

    /// Pre-releases in semver's order, which `golang.org/x/mod/semver`'s `comparePrerelease`
    /// implements: each list is ascending, and every pair in it is checked both ways.
    #[test]
    fn prereleases_order_by_identifiers_as_semver_and_go_do() {
        use std::cmp::Ordering::*;
        let ascending: &[(&str, &[&str])] = &[
            (
                "semver 2.0.0's example, then the release",
                &[
                    "v1.0.0-alpha",
                    "v1.0.0-alpha.1",
                    "v1.0.0-alpha.beta",
                    "v1.0.0-beta",
                    "v1.0.0-beta.2",
                    "v1.0.0-beta.11",
                    "v1.0.0-rc.1",
                    "v1.0.0",
                ],
            ),
            (
                "numeric identifiers by value",
                &[
                    "v1.0.0-rc.1",
                    "v1.0.0-rc.2",
                    "v1.0.0-rc.9",
                    "v1.0.0-rc.10",
                    "v1.0.0-rc.100",
                ],
            ),
            (
                "numeric before alphanumeric",
                &[
                    "v1.0.0-1",
                    "v1.0.0-2",
                    "v1.0.0-10",
                    "v1.0.0-1a",
                    "v1.0.0-a",
                    "v1.0.0-a.1",
                ],
            ),
            (
                "alphanumeric in ASCII order (upper case first); `-` is part of an identifier",
                &[
                    "v1.0.0-RC",
                    "v1.0.0-pre",
                    "v1.0.0-pre.1",
                    "v1.0.0-pre-1",
                    "v1.0.0-rc",
                ],
            ),
            (
                "a shorter prefix first",
                &["v1.0.0-x", "v1.0.0-x.0", "v1.0.0-x.0.0", "v1.0.0-x.1"],
            ),
            (
                "pseudo-versions by timestamp, before the tag they lead to",
                &[
                    "v0.0.0-20191109021931-daa7c04131f5",
                    "v0.0.0-20200102150405-000000000000",
                    "v0.1.0",
                    "v1.2.4-0.20200102150405-abcdefabcdef",
                    "v1.2.4",
                ],
            ),
            (
                "the release core first",
                &["v1.9.0-rc.10", "v1.9.0", "v1.10.0-alpha", "v1.10.0"],
            ),
            (
                "numbers longer than u64",
                &[
                    "v1.0.0-99999999999999999999",
                    "v1.0.0-100000000000000000000",
                ],
            ),
        ];
        for (case, versions) in ascending {
            for (i, lower) in versions.iter().enumerate() {
                assert_eq!(compare_versions(lower, lower), Equal, "{case}: {lower}");
                for higher in &versions[i + 1..] {
                    assert_eq!(
                        compare_versions(lower, higher),
                        Less,
                        "{case}: {lower} < {higher}"
                    );
                    assert_eq!(
                        compare_versions(higher, lower),
                        Greater,
                        "{case}: {higher} > {lower}"
                    );
                }
            }
        }
        // Equal: build metadata does not count, in a pre-release either.
        for (a, b) in [
            ("v1.0.0-rc.1+build.5", "v1.0.0-rc.1"),
            ("v2.0.0-beta+incompatible", "v2.0.0-beta"),
        ] {
            assert_eq!(compare_versions(a, b), Equal, "{a} = {b}");
        }
    }
}
