//! How kiln talks on stderr: errors with their causes and hints, status lines, sizes.
//!
//! An error's hint is a field of the error ([`crate::diagnostic::Hint`]): the printer asks
//! every error in the cause chain for its hint and prints them after the message. Errors
//! and warnings quote what kiln read (entry names, module paths), so control characters and
//! invisible or bidirectional formatting characters in them are printed escaped (`\u{202e}`):
//! a hostile name must not rewrite the terminal or reorder the line it is shown in.
//!
//! ```text
//! error: cannot add ./missing: ./missing does not exist
//! hint: …
//! ```

use std::io::{IsTerminal, Write};

#[derive(Clone)]
pub struct Printer {
    quiet: bool,
    color: bool,
    /// Library hints this command words with its own flags: (the library's, the command's).
    flag_hints: &'static [(&'static str, &'static str)],
}

impl Printer {
    pub fn new(quiet: bool) -> Self {
        let color = std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
            && std::io::stderr().is_terminal();
        Printer {
            quiet,
            color,
            flag_hints: &[],
        }
    }

    /// The same printer, printing `flag_hints`' wording for the library hints they name: the
    /// library says what to do without knowing kiln's flags (`NO_TLS_HINT`), the command
    /// that has the flag says it (`pass --insecure`).
    pub fn with_flag_hints(self, flag_hints: &'static [(&'static str, &'static str)]) -> Self {
        Printer { flag_hints, ..self }
    }

    pub fn quiet(&self) -> bool {
        self.quiet
    }

    fn paint(&self, text: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// A status line on stderr, unless quiet.
    pub fn status(&self, message: impl std::fmt::Display) {
        if !self.quiet {
            let _ = writeln!(std::io::stderr(), "{message}");
        }
    }

    /// A warning on stderr, unless quiet.
    pub fn warn(&self, message: impl std::fmt::Display) {
        if !self.quiet {
            let prefix = self.paint("warning:", "1;33");
            let message = escape_hidden(&message.to_string());
            let _ = writeln!(std::io::stderr(), "{prefix} {message}");
        }
    }

    /// A warning and what to do about it, unless quiet.
    pub fn warn_with_hint(&self, message: impl std::fmt::Display, hint: impl std::fmt::Display) {
        if !self.quiet {
            let mut stderr = std::io::stderr().lock();
            let prefix = self.paint("warning:", "1;33");
            let _ = writeln!(stderr, "{prefix} {}", escape_hidden(&message.to_string()));
            let prefix = self.paint("hint:", "1;36");
            let _ = writeln!(stderr, "{prefix} {}", escape_hidden(&hint.to_string()));
        }
    }

    /// `hints` with each library hint this command words with its flag replaced.
    fn worded(&self, hints: Vec<String>) -> Vec<String> {
        hints
            .into_iter()
            .map(
                |hint| match self.flag_hints.iter().find(|(library, _)| *library == hint) {
                    Some((_, flag_hint)) => (*flag_hint).to_owned(),
                    None => hint,
                },
            )
            .collect()
    }

    /// Print an error and its causes, then any hints.
    pub fn error(&self, error: &anyhow::Error) {
        let (message, hints) = describe(error);
        let hints = self.worded(hints);
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(
            stderr,
            "{} {}",
            self.paint("error:", "1;31"),
            escape_hidden(&message)
        );
        for hint in hints {
            let hint = escape_hidden(&hint);
            let _ = writeln!(stderr, "{} {hint}", self.paint("hint:", "1;36"));
        }
    }
}

/// An error's message (its causes joined by `: `) and its hints, in the chain's order.
fn describe(error: &anyhow::Error) -> (String, Vec<String>) {
    let mut messages: Vec<String> = Vec::new();
    let mut hints: Vec<String> = Vec::new();
    for cause in error.chain() {
        let message = cause.to_string();
        // A wrapper that repeats its cause (`#[error(transparent)]`-like), or a message
        // that already ends with its cause's text, adds nothing.
        let repeated = messages
            .last()
            .is_some_and(|last| *last == message || last.ends_with(&format!(": {message}")));
        if !repeated && !message.is_empty() {
            messages.push(message);
        }
        if let Some(hint) = hint_of(cause) {
            hints.extend(hint.lines().map(str::to_owned));
        }
        if let Some(hint) = cause.downcast_ref::<std::io::Error>().and_then(io_hint) {
            hints.push(hint.to_owned());
        }
    }
    hints.dedup();
    (messages.join(": "), hints)
}

/// The hint of one error in a cause chain. An error's type is not known behind `dyn Error`,
/// so each of kiln's error types that has hints is asked in turn; the test
/// `every_error_type_with_hints_is_asked` fails when one is missing here.
fn hint_of(cause: &(dyn std::error::Error + 'static)) -> Option<String> {
    use crate::diagnostic::Hint;
    // A boxed source (`source: Box<ProxyError>`) is in the chain as the box, whose type is
    // not the error's: both are asked.
    macro_rules! ask {
        ($($type:ty),* $(,)?) => {$(
            if let Some(error) = cause.downcast_ref::<$type>() {
                return error.hint();
            }
            if let Some(error) = cause.downcast_ref::<Box<$type>>() {
                return error.hint();
            }
        )*};
    }
    ask!(
        crate::builder::BuildError,
        crate::cache::CacheError,
        crate::builder::files::FilesError,
        crate::builder::executable::ExecutableError,
        crate::builder::go::GoError,
        crate::builder::shell::ShellFallback,
        crate::toolchain::zig::ZigError,
        crate::builder::sources::SourcesError,
        crate::builder::worktree::WorktreeError,
        crate::diagnostic::Hinted,
        crate::engine::EngineError,
        crate::gomod::direct::DirectError,
        crate::gomod::goauth::GoAuthError,
        crate::gomod::gomod2nix::Gomod2nixError,
        crate::gomod::proxy::ProxyError,
        crate::gomod::vendor::VendorError,
        crate::lock::LockError,
        crate::nixfile::eval::EvalError,
        crate::nixfile::literal::LiteralError,
        crate::nixfile::mapping::MappingError,
        crate::lock::locker::LockerError,
        crate::lock::lockfile::LockFileError,
        crate::oci::image::ImageError,
        crate::oci::layout::LayoutError,
        crate::oci::tree::TreeError,
        crate::output::OutputError,
        crate::project::ConfigError,
        crate::project::TargetError,
        crate::registry::auth::AuthError,
        crate::registry::error::RegistryError,
        crate::sbom::SbomError,
        crate::session::SessionError,
        crate::static_base::StaticBaseError,
        crate::static_base::pypi::PypiError,
        crate::static_base::rootfs::RootfsError,
        crate::store::StoreError,
        crate::toolchain::ToolchainError,
        crate::transport::TransportError,
    );
    None
}

/// What to do about an I/O error whatever file it hit: a full disk, a read-only file system.
fn io_hint(error: &std::io::Error) -> Option<&'static str> {
    match error.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
            Some(crate::output::DISK_FULL_HINT)
        }
        std::io::ErrorKind::ReadOnlyFilesystem => {
            Some("that file system is read-only; for the store, set KILN_HOME to a writable folder")
        }
        _ => None,
    }
}

/// `text` with control characters (but newlines and tabs) and invisible or bidirectional
/// formatting characters written as `\u{…}` escapes.
fn escape_hidden(text: &str) -> String {
    let hidden = |character: char| {
        (character.is_control() && character != '\n' && character != '\t')
            || matches!(
                character,
                '\u{ad}'
                    | '\u{61c}'
                    | '\u{200b}'..='\u{200f}'
                    | '\u{2028}'..='\u{202e}'
                    | '\u{2060}'..='\u{2064}'
                    | '\u{2066}'..='\u{2069}'
                    | '\u{feff}'
            )
    };
    if !text.contains(hidden) {
        return text.to_owned();
    }
    let mut escaped = String::with_capacity(text.len() + 16);
    for character in text.chars() {
        if hidden(character) {
            escaped.push_str(&format!("\\u{{{:x}}}", u32::from(character)));
        } else {
            escaped.push(character);
        }
    }
    escaped
}

/// Bytes in binary units with one decimal: `512 B`, `2.2 MiB`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The shared cache's warnings and status lines (`substituted …`, `pushed …`) are printed
/// as every other: painted, escaped, and not at all with `--quiet`.
impl crate::cache::CacheReporter for Printer {
    fn warn(&self, message: &str) {
        Printer::warn(self, message);
    }

    fn status(&self, message: &str) {
        Printer::status(self, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A go.sum line with a right-to-left override, or an image entry with an escape
    /// sequence, was echoed raw in the error: the terminal reordered or rewrote the line.
    #[test]
    fn errors_escape_control_and_bidi_characters() {
        assert_eq!(
            escape_hidden("invalid module path `example.com/\u{202e}liam`"),
            "invalid module path `example.com/\\u{202e}liam`"
        );
        assert_eq!(
            escape_hidden("entry `a\u{1b}[2Jb\0c\u{feff}`\nhint\tok"),
            "entry `a\\u{1b}[2Jb\\u{0}c\\u{feff}`\nhint\tok"
        );
        assert_eq!(escape_hidden("plain: ünïcode"), "plain: ünïcode");
    }

    #[test]
    fn hints_come_from_the_errors_of_the_chain() {
        let error = anyhow::Error::new(crate::diagnostic::Hinted::new(
            "kiln.lock does not exist",
            "run `kiln lock`",
        ))
        .context("cannot build .#server");
        let (message, hints) = describe(&error);
        assert_eq!(message, "cannot build .#server: kiln.lock does not exist");
        assert_eq!(hints, ["run `kiln lock`"]);
    }

    #[test]
    fn a_command_words_library_hints_with_its_flags() {
        const FLAGS: &[(&str, &str)] = &[("allow plain HTTP", "pass --insecure")];
        let printer = Printer::new(true).with_flag_hints(FLAGS);
        assert_eq!(
            printer.worded(vec!["allow plain HTTP".to_owned(), "other".to_owned()]),
            ["pass --insecure", "other"]
        );
        assert_eq!(
            Printer::new(true).worded(vec!["allow plain HTTP".to_owned()]),
            ["allow plain HTTP"]
        );
    }

    /// `hint_of` can only ask the types it names: a module's error enum that implements
    /// `Hint` but is missing from its list would have its hints silently dropped.
    #[test]
    fn every_error_type_with_hints_is_asked() {
        let source = include_str!("style.rs");
        let asked = &source[source.find("ask!(").expect("the list")..];
        let asked = &asked[..asked.find(");").expect("its end")];
        let mut folders = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
        let mut missing = Vec::new();
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    folders.push(path);
                    continue;
                }
                if path.extension().is_none_or(|extension| extension != "rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for (at, _) in text.match_indices("Hint for ") {
                    let name: String = text[at + "Hint for ".len()..]
                        .chars()
                        .take_while(|character| character.is_alphanumeric() || *character == '_')
                        .collect();
                    if !asked.contains(&format!("::{name}")) {
                        missing.push(format!("{name} ({})", path.display()));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "not asked by hint_of: {missing:?}");
    }

    /// A source held in a box (`source: Box<ProxyError>`) is in the chain as the box.
    #[test]
    fn a_boxed_source_is_asked_for_its_hint() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot build")]
        struct Wrapper {
            #[source]
            source: Box<crate::gomod::vendor::VendorError>,
        }
        let inconsistent = crate::gomod::vendor::VendorError::Inconsistent("x".to_owned());
        let error = anyhow::Error::new(Wrapper {
            source: Box::new(inconsistent),
        });
        let (message, hints) = describe(&error);
        assert_eq!(
            message,
            "cannot build: vendor/modules.txt disagrees with go.mod: x"
        );
        assert_eq!(
            hints,
            ["run `go mod vendor` to refresh vendor/, or fix go.mod"]
        );
    }

    #[test]
    fn byte_formatting() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(1023), "1023 B");
        assert_eq!(format_bytes(1024), "1.0 KiB");
        assert_eq!(format_bytes(2_338_028), "2.2 MiB");
        assert_eq!(format_bytes(512 << 20), "512.0 MiB");
    }
}
