//! kiln.toml's errors: where a problem is (file:line:column), what it is, and the key the
//! user probably meant.
//!
//! A problem inside a file is [`ConfigError::At`], its [`Position`] computed from the byte
//! span toml reports: lines count from 1, and the column counts characters, not bytes, from
//! 1, with a byte order mark at the start of the file not counted (editors do not show it).
//! What serde says of a value that does not fit is put in kiln.toml's words by `keys`; the
//! key probably meant is [`did_you_mean`]'s.

use std::ops::Range;
use std::path::PathBuf;

use super::PROJECT_FILE;
use crate::diagnostic::Hint;

/// A place in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// What is wrong with a project's configuration. A variant's hint, if it has one, is
/// [`Hint::hint`]'s, not part of its message.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{location}: {message}")]
    At {
        location: Position,
        message: String,
        /// What to do about it: the key probably meant, or how to write the value.
        hint: Option<String>,
    },
    #[error("cannot read {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no {PROJECT_FILE} in {}", .0.display())]
    NoProject(PathBuf),
    #[error("{} is not a regular file", .0.display())]
    NotRegular(PathBuf),
}

impl Hint for ConfigError {
    fn hint(&self) -> Option<String> {
        match self {
            ConfigError::At { hint, .. } => hint.clone(),
            ConfigError::NoProject(folder) if folder.join("flake.nix").is_file() => Some(
                "this is a Nix flake (it has flake.nix): `kiln init --from-nix` converts it to kiln.toml"
                    .to_owned(),
            ),
            ConfigError::NoProject(_) => Some("`kiln init` makes a project here".to_owned()),
            ConfigError::NotRegular(_) => Some("replace it with the file itself".to_owned()),
            ConfigError::Read { .. } => None,
        }
    }
}

/// A source file's text, for turning byte spans into line:column.
pub(super) struct SourceFile {
    pub(super) path: PathBuf,
    pub(super) text: String,
}

impl SourceFile {
    pub(super) fn location(&self, span: &Range<usize>) -> Position {
        let before = &self.text[..span.start.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        // A byte order mark starts the file but no column: editors do not show it.
        let column = before.rsplit('\n').next().map_or(0, |rest| {
            rest.trim_start_matches('\u{feff}').chars().count()
        }) + 1;
        Position {
            file: self.path.clone(),
            line,
            column,
        }
    }

    pub(super) fn error(
        &self,
        span: &Range<usize>,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> ConfigError {
        ConfigError::At {
            location: self.location(span),
            message: message.into(),
            hint,
        }
    }
}

/// The closest of `candidates` to `word`, if close enough to be a likely typo, as a hint:
/// "did you mean `tag`?".
///
/// Close is a small edit distance first (optimal string alignment, so `tga` is one swap from
/// `tag`; case ignored): at most one edit for a word of up to five characters, two up to
/// eight, and so on, the fewest edits winning and the first candidate among equals. Failing
/// that, a Jaro-Winkler similarity above 0.8, which finds a word sharing a long start
/// (`contianer-image` for `container-image`). A word of over 100 characters is no typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    if word.len() > 100 {
        return None;
    }
    let candidates: Vec<&str> = candidates.into_iter().collect();
    let lowered = word.to_lowercase();
    let most_edits = word.chars().count().max(3) / 3;
    let by_edits = candidates
        .iter()
        .map(|candidate| {
            (
                strsim::osa_distance(&lowered, &candidate.to_lowercase()),
                *candidate,
            )
        })
        .filter(|(edits, _)| *edits <= most_edits)
        .min_by_key(|(edits, _)| *edits)
        .map(|(_, candidate)| candidate);
    let by_similarity = || {
        candidates
            .iter()
            .map(|candidate| (strsim::jaro_winkler(word, candidate), *candidate))
            .filter(|(score, _)| *score > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, candidate)| candidate)
    };
    by_edits
        .or_else(by_similarity)
        .map(|candidate| format!("did you mean `{candidate}`?"))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{error, failure};
    use crate::diagnostic::Hint;

    /// A byte order mark before `schema = 2` put the error at column 11.
    #[test]
    fn byte_order_mark_does_not_shift_columns() {
        let message = error(&[("kiln.toml", "\u{feff}schema = 2\n")]);
        assert!(
            message.starts_with("kiln.toml:1:10: schema 2 is not one this kiln reads"),
            "{message}"
        );
    }

    /// serde's "unknown field" in kiln.toml's words, the nearest key as the hint.
    #[test]
    fn an_unknown_key_suggests_the_one_meant() {
        let error = failure(&[(
            "kiln.toml",
            "schema = 1\n[packages.default]\nnmae = \"x\"\n",
        )]);
        assert_eq!(
            error.to_string(),
            "kiln.toml:3:1: unknown key `nmae` in [packages.default]"
        );
        assert_eq!(error.hint().as_deref(), Some("did you mean `name`?"));
    }

    /// `tga` got no suggestion: Jaro-Winkler matches no letter of `tga` and `tag` out of
    /// place, so it scored the swap far below a typo. An edit distance counts it as one.
    #[test]
    fn typos_by_edit_distance() {
        let image_keys = [
            "package",
            "name",
            "tag",
            "paths",
            "cmd",
            "max_layers",
            "sbom",
        ];
        let cases = [
            ("tga", Some("tag")),
            ("nmae", Some("name")),
            ("Name", Some("name")),
            ("pacakge", Some("package")),
            ("max_layer", Some("max_layers")),
            ("cdm", Some("cmd")),
            ("pths", Some("paths")),
            ("sbomb", Some("sbom")),
            ("foo", None),
            ("entrypoint", None),
        ];
        for (word, expected) in cases {
            assert_eq!(
                super::did_you_mean(word, image_keys),
                expected.map(|key| format!("did you mean `{key}`?")),
                "{word}"
            );
        }
        assert_eq!(super::did_you_mean(&"k".repeat(1_000_000), ["k"]), None);
    }
}
