//! What to do about an error: the hint printed after it, and the path error every module
//! shares.
//!
//! A hint is a field of the error, not part of its message: [`Hint::hint`] gives it, and the
//! printer at the command edge (`cli::style`) walks the cause chain, asks each error it knows
//! for its hint and prints them after the message:
//!
//! ```text
//! error: kiln.toml:3: unknown field `platfroms`
//! hint: did you mean `platforms`?
//! ```
//!
//! So an error's `Display` is one sentence that reads right inside another error's message,
//! in a log or in `--json` output, and a test can assert the hint without parsing text.
//!
//! [`PathError`] is the one I/O error with a path: it names what kiln was doing (reading,
//! writing, running a program, walking a folder), so a failed read never says "cannot
//! write". A leaf: it imports nothing of kiln.

use std::fmt;
use std::path::{Path, PathBuf};

/// An error that may know what the user can do about it.
pub trait Hint {
    /// The advice printed after the error as `hint: …`, if there is one for this case; each
    /// line of it is a `hint:` line of its own.
    fn hint(&self) -> Option<String>;
}

/// An error made where no module's enum fits (the command edge): a message and its hint.
#[derive(Debug)]
pub struct Hinted {
    message: String,
    hint: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Hinted {
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Hinted {
            message: message.into(),
            hint: hint.into(),
            source: None,
        }
    }

    /// The same error, caused by `source` (printed after it, as a context's cause is).
    pub fn caused_by(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }
}

impl fmt::Display for Hinted {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.message)
    }
}

impl std::error::Error for Hinted {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}

impl Hint for Hinted {
    fn hint(&self) -> Option<String> {
        Some(self.hint.clone())
    }
}

/// What kiln was doing to a path when the operating system said no.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Reading a file or a link, or its metadata.
    Read,
    /// Writing, creating, renaming or changing a file or folder.
    Write,
    /// Removing a file or folder.
    Remove,
    /// Listing a folder.
    Walk,
    /// Starting a program (`go`, `git`).
    Run,
}

impl Operation {
    fn verb(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::Write => "write",
            Operation::Remove => "remove",
            Operation::Walk => "list",
            Operation::Run => "run",
        }
    }
}

/// An I/O error on a path: `cannot read /x/go.mod: No such file or directory`.
///
/// The message ends with the operating system's own reason, so a wrapper does not repeat it
/// and the printer's `io_hint` (disk full, read-only file system) still finds the
/// [`std::io::Error`] as its source.
#[derive(Debug, thiserror::Error)]
#[error("cannot {} {}", .operation.verb(), .path.display())]
pub struct PathError {
    pub operation: Operation,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl PathError {
    pub fn new(operation: Operation, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        PathError {
            operation,
            path: path.into(),
            source,
        }
    }

    /// The closure `map_err` takes: `fs::read(path).map_err(PathError::read(path))`.
    pub fn read(path: &Path) -> impl FnOnce(std::io::Error) -> PathError + '_ {
        move |source| PathError::new(Operation::Read, path, source)
    }

    /// See [`PathError::read`].
    pub fn write(path: &Path) -> impl FnOnce(std::io::Error) -> PathError + '_ {
        move |source| PathError::new(Operation::Write, path, source)
    }

    /// See [`PathError::read`].
    pub fn remove(path: &Path) -> impl FnOnce(std::io::Error) -> PathError + '_ {
        move |source| PathError::new(Operation::Remove, path, source)
    }

    /// See [`PathError::read`].
    pub fn walk(path: &Path) -> impl FnOnce(std::io::Error) -> PathError + '_ {
        move |source| PathError::new(Operation::Walk, path, source)
    }

    /// See [`PathError::read`]: `path` is the program.
    pub fn run(path: &Path) -> impl FnOnce(std::io::Error) -> PathError + '_ {
        move |source| PathError::new(Operation::Run, path, source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_error_names_what_kiln_was_doing() {
        let gone = || std::io::Error::from(std::io::ErrorKind::NotFound);
        let path = Path::new("/x/go.mod");
        let cases = [
            (PathError::read(path)(gone()), "cannot read /x/go.mod"),
            (PathError::write(path)(gone()), "cannot write /x/go.mod"),
            (PathError::remove(path)(gone()), "cannot remove /x/go.mod"),
            (PathError::walk(path)(gone()), "cannot list /x/go.mod"),
            (PathError::run(Path::new("go"))(gone()), "cannot run go"),
        ];
        for (error, expected) in cases {
            assert_eq!(error.to_string(), expected);
            let source = std::error::Error::source(&error).expect("the io error is the source");
            assert!(source.downcast_ref::<std::io::Error>().is_some());
        }
    }

    #[test]
    fn a_hinted_error_keeps_its_hint_out_of_its_message() {
        let error = Hinted::new("kiln.lock does not exist", "run `kiln lock`");
        assert_eq!(error.to_string(), "kiln.lock does not exist");
        assert_eq!(error.hint().as_deref(), Some("run `kiln lock`"));
    }
}
