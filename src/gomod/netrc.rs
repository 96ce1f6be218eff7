//! The `.netrc` file as the go command reads it (cmd/go/internal/auth/netrc.go, Go 1.27):
//! where it is, how its tokens are read, and which entry a URL gets. kiln reads it the same
//! way so that a `.netrc` that works for `go` works for kiln, quirks included.
//!
//! **Where:** the file `NETRC` names when that variable is set and not empty, else
//! `$HOME/.netrc` (Go's `os.UserHomeDir`: `HOME`, and no home when it is unset or empty). A
//! missing file is no credentials, not an error; any other read error is kept and reported
//! only when a host then refuses kiln (Go ignores it silently unless `-x`).
//!
//! **Tokens** (Go's reading, which is simpler than GNU inetutils' `.netrc`):
//! - the file is split into lines at `\n`; each line into whitespace-separated words
//!   (Unicode white space, as Go's `strings.Fields`; no quoting, so no token holds a space);
//! - the words of a line are taken in *pairs* `KEY VALUE`: `machine NAME` starts a new entry
//!   (forgetting an unfinished one), `login NAME` and `password SECRET` fill it; `account`
//!   and any other key are skipped with their value; an odd word at the end of a line is
//!   ignored;
//! - an entry is complete, and recorded, as soon as it has a machine, a login and a password;
//!   a later `login`/`password` without a new `machine` starts an entry with no machine, which
//!   is never recorded. Entries span lines: the state carries over;
//! - `macdef NAME` makes the following lines a macro body, skipped up to the first line that
//!   is exactly empty (a line holding only `\r` or spaces does not end it); the rest of the
//!   `macdef` line itself is still read;
//! - `default`: Go never uses its credentials. A line whose last, unpaired word is
//!   `default` (in practice `default` alone on its line, where the format puts it) ends the
//!   reading: entries after it are ignored. A `default` paired with a word on its line is
//!   skipped like an unknown key, which shifts the pairs after it on that line.
//!
//! **Matching** (cmd/go/internal/auth/auth.go, `loadCredential`): a machine name is a URL
//! prefix without its scheme: `HOST[:PORT][/PATH]` (a trailing `/` and a leading `https://`
//! dropped). A URL's key is its host as written (with the port only when the URL has one) and
//! its escaped path; the longest key prefix at a `/` boundary that names a machine wins, so
//! `machine corp.example/team` beats `machine corp.example` under `/team/`, and
//! `machine corp.example` does not match `https://corp.example:8443/`. Names compare exactly
//! (Go does not fold case). When a machine is listed twice, the first entry wins.
//!
//! Go sends these credentials only over HTTPS (never over plain HTTP, even with GOINSECURE),
//! as `Authorization: Basic base64(login:password)`. A file that is not UTF-8 is read with
//! invalid bytes replaced (Go would send them raw); such a file is not one any tool writes.
//!
//! Passwords never leave this module except inside the `Authorization` value:
//! [`Entry`]'s `Debug` hides it, and no error here quotes the file's content.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;

/// Why the `.netrc` file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum NetrcError {
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no .netrc to read: NETRC is not set and neither is HOME")]
    NoHome,
}

/// One complete `machine` entry.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    /// The machine name as written (`HOST[:PORT][/PATH]`).
    pub machine: String,
    pub login: String,
    password: String,
}

impl Entry {
    /// The `Authorization` header value Go sends for this entry.
    pub fn basic_authorization(&self) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", self.login, self.password))
        )
    }

    /// Whether `text` contains this entry's password (for tests that prove it is not shown).
    pub fn password_appears_in(&self, text: &str) -> bool {
        text.contains(&self.password)
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Entry")
            .field("machine", &self.machine)
            .field("login", &self.login)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The complete entries of a `.netrc` text, in file order, as Go reads them (see the module
/// documentation for every rule).
pub fn parse(text: &str) -> Vec<Entry> {
    #[derive(Default)]
    struct Partial {
        machine: String,
        login: String,
        password: String,
    }
    let mut entries = Vec::new();
    let mut partial = Partial::default();
    let mut in_macro = false;
    for line in text.split('\n') {
        if in_macro {
            if line.is_empty() {
                in_macro = false;
            }
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let mut index = 0;
        while index + 1 < words.len() {
            let value = words[index + 1];
            match words[index] {
                "machine" => {
                    partial = Partial {
                        machine: value.to_owned(),
                        ..Partial::default()
                    };
                }
                "login" => partial.login = value.to_owned(),
                "password" => partial.password = value.to_owned(),
                "macdef" => in_macro = true,
                // `default`, `account` and unknown keys: skipped with the word after them.
                _ => {}
            }
            if !partial.machine.is_empty()
                && !partial.login.is_empty()
                && !partial.password.is_empty()
            {
                let complete = std::mem::take(&mut partial);
                entries.push(Entry {
                    machine: complete.machine,
                    login: complete.login,
                    password: complete.password,
                });
            }
            index += 2;
        }
        if words.get(index) == Some(&"default") {
            break;
        }
    }
    entries
}

/// Where Go looks for the file: NETRC when set and not empty, else `$HOME/.netrc`
/// (`None`: no NETRC and no HOME).
pub fn location(lookup: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let get = |name: &str| lookup(name).filter(|value| !value.is_empty());
    get("NETRC")
        .map(PathBuf::from)
        .or_else(|| get("HOME").map(|home| Path::new(&home).join(".netrc")))
}

/// A `.netrc` file's entries, with the file's path for messages.
#[derive(Clone, Debug)]
pub struct Netrc {
    path: PathBuf,
    /// Whether the file exists (a missing one has no entries).
    exists: bool,
    entries: Vec<Entry>,
}

impl Netrc {
    /// Read `path`; a missing file is an empty one.
    pub fn read(path: &Path) -> Result<Netrc, NetrcError> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(Netrc {
                path: path.to_owned(),
                exists: true,
                entries: parse(&String::from_utf8_lossy(&bytes)),
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Netrc {
                path: path.to_owned(),
                exists: false,
                entries: Vec::new(),
            }),
            Err(source) => Err(NetrcError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// The file's entries from `text` (for tests).
    pub fn from_text(path: &Path, text: &str) -> Netrc {
        Netrc {
            path: path.to_owned(),
            exists: true,
            entries: parse(text),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn exists(&self) -> bool {
        self.exists
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry for a URL whose authority is `host` (as written in the URL, with its port
    /// when it has one, without userinfo) and whose escaped path is `path`: the longest
    /// machine-name prefix at a `/` boundary, the first entry for a name (Go's
    /// `loadCredential` over the cache `storeCredential` filled in reverse file order).
    pub fn lookup(&self, host: &str, path: &str) -> Option<&Entry> {
        let key = format!("{host}{path}");
        let mut prefix = key.trim_end_matches('/');
        loop {
            if let Some(entry) = self
                .entries
                .iter()
                .find(|entry| machine_key(&entry.machine) == prefix)
            {
                return Some(entry);
            }
            prefix = &prefix[..prefix.rfind('/')?];
        }
    }
}

/// A machine name as Go stores it: without a leading `https://` and a trailing `/`.
fn machine_key(machine: &str) -> &str {
    let machine = machine.strip_prefix("https://").unwrap_or(machine);
    machine.strip_suffix('/').unwrap_or(machine)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// cmd/go/internal/auth/netrc_test.go's `testNetrc` (Go 1.27.3), and what Go reads from it.
    const GO_TEST_NETRC: &str = "
machine incomplete
password none

machine api.github.com
  login user
  password pwd

machine incomlete.host
  login justlogin

machine test.host
login user2
password pwd2

machine oneline login user3 password pwd3

machine ignore.host macdef ignore
  login nobody
  password nothing

machine hasmacro.too macdef ignore-next-lines login user4 password pwd4
  login nobody
  password nothing

default
login anonymous
password gopher@golang.org

machine after.default
login oops
password too-late-in-file
";

    fn triples(text: &str) -> Vec<(String, String, String)> {
        parse(text)
            .into_iter()
            .map(|entry| (entry.machine, entry.login, entry.password))
            .collect()
    }

    fn owned(expected: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
        expected
            .iter()
            .map(|(machine, login, password)| {
                (
                    (*machine).to_owned(),
                    (*login).to_owned(),
                    (*password).to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn parses_gos_own_test_file_as_go_does() {
        assert_eq!(
            triples(GO_TEST_NETRC),
            owned(&[
                ("api.github.com", "user", "pwd"),
                ("test.host", "user2", "pwd2"),
                ("oneline", "user3", "pwd3"),
                ("hasmacro.too", "user4", "pwd4"),
            ])
        );
    }

    #[test]
    fn token_rules_match_go() {
        for (name, text, expected) in [
            (
                "account is skipped with its value",
                "machine a.example login u account acct password p\n",
                vec![("a.example", "u", "p")],
            ),
            (
                "an unfinished entry is forgotten at the next machine",
                "machine a.example login u\nmachine b.example login v password q\n",
                vec![("b.example", "v", "q")],
            ),
            (
                "tabs, carriage returns and other white space separate words",
                "machine\ta.example\r\nlogin u\u{a0}password p\r\n",
                vec![("a.example", "u", "p")],
            ),
            (
                "an odd word at the end of a line is dropped: the next line does not pair with it",
                "machine a.example login\nu password p\n",
                vec![],
            ),
            (
                "default paired with a word shifts the line's pairs and does not stop reading",
                "default login x password y\nmachine a.example login u password p\n",
                vec![("a.example", "u", "p")],
            ),
            (
                "default alone on its line ends the file",
                "machine a.example login u password p\ndefault\nmachine b.example login v password q\n",
                vec![("a.example", "u", "p")],
            ),
            (
                "a macro ends only at an exactly empty line",
                "macdef init\ncd /\n\r\nmachine hidden login h password h\n\nmachine a.example login u password p\n",
                vec![("a.example", "u", "p")],
            ),
            (
                "login and password after a complete entry belong to no machine",
                "machine a.example login u password p login v password q\n",
                vec![("a.example", "u", "p")],
            ),
            (
                "the same machine twice gives two entries (the first wins in lookups)",
                "machine a.example login u password p\nmachine a.example login v password q\n",
                vec![("a.example", "u", "p"), ("a.example", "v", "q")],
            ),
            (
                "quotes are not special",
                "machine a.example login \"u\" password 'p q'\n",
                vec![("a.example", "\"u\"", "'p")],
            ),
            ("an empty file has no entries", "", vec![]),
        ] {
            assert_eq!(triples(text), owned(&expected), "{name}");
        }
    }

    #[test]
    fn lookup_takes_the_longest_machine_prefix_and_the_first_entry() {
        let netrc = Netrc::from_text(
            Path::new("/home/user/.netrc"),
            "machine corp.example login first password one\n\
             machine corp.example login second password two\n\
             machine corp.example/team login team password three\n\
             machine https://secure.example/ login secure password four\n\
             machine ported.example:8443 login ported password five\n",
        );
        let login =
            |host: &str, path: &str| netrc.lookup(host, path).map(|entry| entry.login.clone());
        for (host, path, expected) in [
            ("corp.example", "/mod/@v/v1.0.0.zip", Some("first")),
            ("corp.example", "", Some("first")),
            ("corp.example", "/team/lib/@v/list", Some("team")),
            ("corp.example", "/team", Some("team")),
            ("corp.example", "/teammate/x", Some("first")),
            ("secure.example", "/x", Some("secure")),
            ("corp.example:443", "/x", None),
            ("ported.example:8443", "/x", Some("ported")),
            ("ported.example", "/x", None),
            ("CORP.example", "/x", None),
            ("other.example", "/corp.example", None),
        ] {
            assert_eq!(login(host, path).as_deref(), expected, "{host}{path}");
        }
    }

    #[test]
    fn basic_authorization_is_login_colon_password_and_debug_hides_the_password() {
        let entry = &parse("machine a.example login kiln@ci password s3cr:t\n")[0];
        assert_eq!(
            entry.basic_authorization(),
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("kiln@ci:s3cr:t")
            )
        );
        let debug = format!("{entry:?}");
        assert!(!debug.contains("s3cr"), "{debug}");
        assert!(entry.password_appears_in("xx s3cr:t xx"));
    }

    #[test]
    fn location_is_netrc_else_home() {
        let lookup = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            }
        };
        assert_eq!(
            location(lookup(&[("NETRC", "/etc/kiln-netrc"), ("HOME", "/home/u")])),
            Some(PathBuf::from("/etc/kiln-netrc"))
        );
        assert_eq!(
            location(lookup(&[("NETRC", ""), ("HOME", "/home/u")])),
            Some(PathBuf::from("/home/u/.netrc"))
        );
        assert_eq!(location(lookup(&[("HOME", "")])), None);
    }

    #[test]
    fn a_missing_file_is_empty_and_an_unreadable_one_an_error() {
        let folder = tempfile::tempdir().unwrap();
        let missing = Netrc::read(&folder.path().join("absent")).unwrap();
        assert!(!missing.exists());
        assert!(missing.entries().is_empty());
        let error = Netrc::read(folder.path()).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!("cannot read {}: ", folder.path().display())),
            "{error}"
        );
    }
}
