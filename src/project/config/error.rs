//! kiln.toml's errors: where a problem is (file:line:column), what it is, and the key the
//! user probably meant.
//!
//! A problem inside a file is [`ConfigError::At`], its [`Position`] computed from the byte
//! span toml reports: lines count from 1, and the column counts characters, not bytes, from
//! 1, with a byte order mark at the start of the file not counted (editors do not show it).
//! serde's message for an unknown key is put in kiln.toml's words ("unknown key", not
//! "unknown field"), and its list of expected keys becomes a "did you mean" hint.

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

/// The closest of `candidates` to `word`, if close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(word, candidate), candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| format!("did you mean `{candidate}`?"))
}

/// serde's "unknown field `x`, expected one of `a`, `b`" in kiln.toml's words: "unknown key
/// `x` (known keys: a, b)".
pub(super) fn describe_toml_error(message: &str) -> String {
    let message = message.trim_end();
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_owned();
    };
    let Some((unknown, expected)) = rest.split_once('`') else {
        return message.to_owned();
    };
    let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    if known.is_empty() {
        format!("unknown key `{unknown}`")
    } else {
        format!("unknown key `{unknown}` (known keys: {})", known.join(", "))
    }
}

/// Turn serde's "unknown field `x`, expected `a` or `b`" into a hint.
pub(super) fn hint_for_unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, expected) = rest.split_once('`')?;
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    did_you_mean(unknown, candidates.iter().copied())
        .or_else(|| Some(format!("known keys: {}", candidates.join(", "))))
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

    /// serde's "unknown field" in kiln.toml's words, the known keys listed, the nearest one
    /// suggested as the hint.
    #[test]
    fn an_unknown_key_is_named_with_the_known_ones() {
        let error = failure(&[(
            "kiln.toml",
            "schema = 1\n[packages.default]\nnmae = \"x\"\n",
        )]);
        assert_eq!(
            error.to_string(),
            "kiln.toml:3:1: unknown key `nmae` (known keys: name, version, main, program, ldflags, tags, env, platform, platforms)"
        );
        assert_eq!(error.hint().as_deref(), Some("did you mean `name`?"));
    }
}
