//! GOAUTH's command methods: running the command and reading what it prints, as the go
//! command does (cmd/go/internal/auth/userauth.go and `go help goauth`, read at Go 1.27.3).
//!
//! **Running:** the GOAUTH element is split into words ([`super::goauth`]'s `quoted.Split`);
//! the first word is the program (looked up on PATH as `exec.Command` does), the others its
//! arguments. Go runs it once with no further argument and no input before its first HTTPS
//! request, and again after an HTTPS request got a 4xx answer, with the request's URL as one
//! more argument and the answer's status line and headers on stdin
//! (`HTTP/1.1 401 Unauthorized\nName: value\n…\n\n`, see [`response_head`]). It inherits
//! the environment. A command that cannot start, or exits non-zero, gives no credentials;
//! its error (with what it wrote to stderr) is kept for the message of a refusal.
//!
//! **Output** (Go's `parseUserAuth`, [`parse_output`]): any number of credential sets, each
//! one or more URL lines, a blank line, zero or more header lines, a blank line:
//!
//! ```text
//! https://example.com
//! https://example.net/api/
//!
//! Authorization: Basic <token>
//!
//! ```
//!
//! Lines end at `\n` only (a `\r` stays part of the line, as in Go). A URL line must parse as
//! Go's `url.ParseRequestURI` parses it (a scheme and no control bytes, or an absolute path);
//! Go does not require `https://`, but it matches only what starts with it (the scheme is
//! dropped to make the prefix; any other stays, so it never matches an HTTPS request). A header
//! line is `Name: value` split at the first `": "`, the value trimmed, the name an RFC 7230
//! token and the value free of control bytes other than tab. Anything else makes the whole
//! output unusable, as in Go, and the error names the line, never quoting a header line (it
//! may hold the secret). Each URL of a set is a prefix (without `https://` and a trailing `/`)
//! that gets the set's headers; a set with no header lines *removes* what an earlier method
//! stored for its prefixes (Go's `storeCredential` with an empty header).

use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};

/// What a GOAUTH command printed about stderr, at most.
const STDERR_QUOTE_BYTES: usize = 1024;

/// One set of the output: the prefixes (as printed) and the headers they get. `Debug` shows
/// the header names only.
#[derive(Clone, PartialEq, Eq)]
pub struct CredentialSet {
    pub urls: Vec<String>,
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for CredentialSet {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        formatter
            .debug_struct("CredentialSet")
            .field("urls", &self.urls)
            .field("header_names", &names)
            .finish()
    }
}

/// Output a GOAUTH command printed that Go would not accept.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OutputError {
    #[error(
        "line {line}: the output ends before the blank line that must follow a set's URL lines"
    )]
    NoBlankAfterUrls { line: usize },
    #[error(
        "line {line}: the output ends before the blank line that must follow a set's header lines"
    )]
    NoBlankAfterHeaders { line: usize },
    #[error("line {line}: {} is not a URL ({reason})", quoted_url(url.as_deref()))]
    Url {
        line: usize,
        /// The line, redacted of any userinfo, when it looks like a URL (holds `://`).
        url: Option<String>,
        reason: &'static str,
    },
    #[error(
        "line {line}: not a header line `Name: value` with a valid name and value (the line is not shown: it may hold a secret)"
    )]
    Header { line: usize },
}

/// Why a GOAUTH command gave no credentials.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("cannot run `{program}`: {source}{}", not_found_note(source))]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{program}` failed ({status}){stderr}")]
    Failed {
        program: String,
        status: std::process::ExitStatus,
        /// `: ` and the start of its stderr, on one line, or nothing.
        stderr: String,
    },
    #[error("`{program}` printed what GOAUTH does not accept: {error}")]
    Output {
        program: String,
        #[source]
        error: OutputError,
    },
}

fn quoted_url(url: Option<&str>) -> String {
    match url {
        Some(url) => format!("`{url}`"),
        None => "the line (not shown: it may hold a secret)".to_owned(),
    }
}

fn not_found_note(error: &std::io::Error) -> &'static str {
    if error.kind() == std::io::ErrorKind::NotFound {
        " (no such program: is it installed, and on PATH or named by an absolute path?)"
    } else {
        ""
    }
}

/// Run a GOAUTH command (`words`, never empty) as Go does: `url` appended as the last
/// argument when given, `stdin` (a [`response_head`]) as its input, else no input.
pub fn run(
    words: &[String],
    url: Option<&str>,
    stdin: Option<&str>,
) -> Result<Vec<CredentialSet>, CommandError> {
    // GOAUTH's parsing never gives an empty command; refused rather than trusted.
    let Some((program, arguments)) = words.split_first() else {
        return Err(CommandError::Spawn {
            program: String::new(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"),
        });
    };
    let mut command = Command::new(program);
    command
        .args(arguments)
        .args(url)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let spawn_error = |source| CommandError::Spawn {
        program: program.clone(),
        source,
    };
    let mut child = command.spawn().map_err(spawn_error)?;
    if let (Some(mut input), Some(text)) = (child.stdin.take(), stdin) {
        // A command that does not read its input may exit first: that is its business (the
        // head is far smaller than a pipe's buffer, so this cannot block on it).
        let _ = input.write_all(text.as_bytes());
    }
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    // stderr from a thread: a command filling one pipe while kiln waits on the other would
    // never finish.
    let stderr_pipe = child.stderr.take();
    let stderr_reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = stderr_pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    });
    if let Some(mut pipe) = child.stdout.take() {
        pipe.read_to_end(&mut stdout).map_err(spawn_error)?;
    }
    if let Ok(bytes) = stderr_reader.join() {
        stderr = bytes;
    }
    let status = child.wait().map_err(spawn_error)?;
    if !status.success() {
        return Err(CommandError::Failed {
            program: program.clone(),
            status,
            stderr: stderr_quote(&stderr),
        });
    }
    parse_output(&String::from_utf8_lossy(&stdout)).map_err(|error| CommandError::Output {
        program: program.clone(),
        error,
    })
}

fn stderr_quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(STDERR_QUOTE_BYTES)]);
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() {
        String::new()
    } else {
        format!(": {}", crate::http::redact_text(&words.join(" ")))
    }
}

/// Go's `parseUserAuth`: the credential sets in a command's output (none for an empty one).
pub fn parse_output(text: &str) -> Result<Vec<CredentialSet>, OutputError> {
    let mut lines = Lines {
        rest: text,
        line: 0,
    };
    let mut sets = Vec::new();
    while !lines.rest.is_empty() {
        let mut urls = Vec::new();
        loop {
            let Some(text) = lines.next() else {
                return Err(OutputError::NoBlankAfterUrls {
                    line: lines.line + 1,
                });
            };
            if text.is_empty() {
                break;
            }
            urls.push(parse_request_uri(text).map_err(|reason| OutputError::Url {
                line: lines.line,
                // Only what looks like a URL is quoted: a misplaced header line may hold the
                // secret.
                url: text.contains("://").then(|| crate::http::redact(text)),
                reason,
            })?);
        }
        let mut headers = Vec::new();
        loop {
            let Some(text) = lines.next() else {
                return Err(OutputError::NoBlankAfterHeaders {
                    line: lines.line + 1,
                });
            };
            if text.is_empty() {
                break;
            }
            let header = text.split_once(": ").and_then(|(name, value)| {
                let value = value.trim_matches(|character: char| character.is_whitespace());
                (valid_header_name(name) && valid_header_value(value))
                    .then(|| (name.to_owned(), value.to_owned()))
            });
            headers.push(header.ok_or(OutputError::Header { line: lines.line })?);
        }
        sets.push(CredentialSet { urls, headers });
    }
    Ok(sets)
}

/// Go's `strings.Cut(data, "\n")` in a loop: the next line while a `\n` is left, counting.
struct Lines<'a> {
    rest: &'a str,
    /// The number of the line last returned (1-based).
    line: usize,
}

impl<'a> Lines<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let (first, after) = self.rest.split_once('\n')?;
        self.rest = after;
        self.line += 1;
        Some(first)
    }
}

/// What Go's `url.ParseRequestURI` accepts and how `URL.String` prints it back, for the
/// URLs of GOAUTH output: no ASCII control bytes; an absolute path, or a scheme
/// (`ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`, printed in lower case) and a `:`. The rest
/// is kept as written (Go re-escapes some characters on printing; a prefix with such
/// characters would not match a request kiln makes either way).
fn parse_request_uri(text: &str) -> Result<String, &'static str> {
    if text.bytes().any(|byte| byte < b' ' || byte == 0x7f) {
        return Err("it holds a control character");
    }
    if text.starts_with('/') {
        return Ok(text.to_owned());
    }
    let Some(colon) = text.find(':') else {
        return Err("no scheme such as https:// and not an absolute path");
    };
    let scheme = &text[..colon];
    let valid_scheme = scheme
        .chars()
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "+-.".contains(character));
    if !valid_scheme {
        return Err("missing or invalid scheme before `:`");
    }
    Ok(format!("{}{}", scheme.to_ascii_lowercase(), &text[colon..]))
}

/// RFC 7230's token, as Go's `validHeaderFieldName`.
fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}

/// Go's `validHeaderFieldValue`: no control byte except space and tab.
fn valid_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|byte| !(byte < b' ' || byte == 0x7f) || byte == b'\t')
}

/// What Go writes to a command's stdin after a 4xx answer (`writeResponseToStdin`): the
/// protocol and status, the headers (names in Go's canonical form, repeated ones joined
/// with `, `), a blank line.
pub fn response_head(protocol: &str, status: &str, headers: &[(String, String)]) -> String {
    let mut grouped: Vec<(String, Vec<&str>)> = Vec::new();
    for (name, value) in headers {
        let name = canonical_header_name(name);
        match grouped.iter_mut().find(|(known, _)| *known == name) {
            Some((_, values)) => values.push(value),
            None => grouped.push((name, vec![value])),
        }
    }
    let mut text = format!("{protocol} {status}\n");
    for (name, values) in grouped {
        text.push_str(&format!("{name}: {}\n", values.join(", ")));
    }
    text.push('\n');
    text
}

/// Go's `textproto.CanonicalMIMEHeaderKey` for token names: upper case after each `-` and at
/// the start, lower case elsewhere.
fn canonical_header_name(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|character| {
            let mapped = if upper {
                character.to_ascii_uppercase()
            } else {
                character.to_ascii_lowercase()
            };
            upper = character == '-';
            mapped
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(urls: &[&str], headers: &[(&str, &str)]) -> CredentialSet {
        CredentialSet {
            urls: urls.iter().map(|url| (*url).to_owned()).collect(),
            headers: headers
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
        }
    }

    /// Go's own TestParseUserAuth input (cmd/go/internal/auth/userauth_test.go).
    #[test]
    fn output_parses_as_go_parses_it() {
        let data = "https://example.com\n\nAuthorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l\nAuthorization: Basic jpvcGVuc2VzYW1lYWxhZGRpb\n\nhttps://hello.com\n\nAuthorization: Basic GVuc2VzYW1lYWxhZGRpbjpvc\nAuthorization: Basic 1lYWxhZGRplW1lYWxhZGRpbs\nData: Test567\n\n";
        assert_eq!(
            parse_output(data).unwrap(),
            vec![
                set(
                    &["https://example.com"],
                    &[
                        ("Authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l"),
                        ("Authorization", "Basic jpvcGVuc2VzYW1lYWxhZGRpb")
                    ]
                ),
                set(
                    &["https://hello.com"],
                    &[
                        ("Authorization", "Basic GVuc2VzYW1lYWxhZGRpbjpvc"),
                        ("Authorization", "Basic 1lYWxhZGRplW1lYWxhZGRpbs"),
                        ("Data", "Test567")
                    ]
                ),
            ]
        );
        // The example of `go help goauth`: two URLs share a set; a set with no headers.
        assert_eq!(
            parse_output("https://example.com\nhttps://example.net/api/\n\nAuthorization: Basic <token>\n\nhttps://another-example.org/\n\nExample: Data\n\n").unwrap(),
            vec![
                set(&["https://example.com", "https://example.net/api/"], &[("Authorization", "Basic <token>")]),
                set(&["https://another-example.org/"], &[("Example", "Data")]),
            ]
        );
        assert_eq!(parse_output("").unwrap(), vec![]);
        assert_eq!(
            parse_output("HTTPS://x.example\n\n\n").unwrap(),
            vec![set(&["https://x.example"], &[])]
        );
        // The value is trimmed; the split is at the first ": ".
        assert_eq!(
            parse_output("https://x.example\n\nX-Token: a: b  \n\n").unwrap(),
            vec![set(&["https://x.example"], &[("X-Token", "a: b")])]
        );
    }

    /// Go's TestParseUserAuthInvalid inputs, each refused, with the line named.
    #[test]
    fn output_go_refuses_is_refused_naming_the_line() {
        for (data, expected) in [
            (
                "https://example.com\nAuthorization: Basic AVuc2VzYW1lYWxhZGRpbjpvc\n\n",
                OutputError::NoBlankAfterHeaders { line: 4 },
            ),
            (
                "Authorization: Basic AVuc2VzYW1lYWxhZGRpbjpvc\n\n",
                OutputError::NoBlankAfterHeaders { line: 3 },
            ),
            (
                "https://example.com\n\nAuthorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l\nAuthorization: Basic jpvcGVuc2VzYW1lYWxhZGRpb\n\nAuthorization: Basic GVuc2VzYW1lYWxhZGRpbjpvc\nAuthorization: Basic 1lYWxhZGRplW1lYWxhZGRpbs\nData: Test567\n\n",
                OutputError::NoBlankAfterHeaders { line: 10 },
            ),
            (
                "https://example.com\n",
                OutputError::NoBlankAfterUrls { line: 2 },
            ),
            (
                "https://example.com",
                OutputError::NoBlankAfterUrls { line: 1 },
            ),
            (
                "https://example.com\n\n",
                OutputError::NoBlankAfterHeaders { line: 3 },
            ),
            (
                "https://example.com\n\nAuthorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l\nhttps://hello.com\n\n",
                OutputError::Header { line: 4 },
            ),
            (
                "https://example.com/\n Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l\n",
                OutputError::Url {
                    line: 2,
                    url: None,
                    reason: "missing or invalid scheme before `:`",
                },
            ),
            (
                "https://example.com\n\nAuthorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l\n Authorization: Basic jpvcGVuc2VzYW1lYWxhZGRpb\n",
                OutputError::Header { line: 4 },
            ),
            (
                "https://example.com\n\nAuthorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l\n\tAuthorization: Basic jpvcGVuc2VzYW1lYWxhZGRpb\n",
                OutputError::Header { line: 4 },
            ),
            (
                " https://example.com\n\nAuthorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l\n",
                OutputError::Url {
                    line: 1,
                    url: Some(" https://example.com".to_owned()),
                    reason: "missing or invalid scheme before `:`",
                },
            ),
            (
                // Go reads the header after the second blank line as the next set's URL.
                "https://example.com\n\n\nAuthorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l\n",
                OutputError::NoBlankAfterUrls { line: 5 },
            ),
            (
                "https://example.com\r\n\r\nAuthorization: x\r\n\r\n",
                OutputError::Url {
                    line: 1,
                    url: Some("https://example.com\r".to_owned()),
                    reason: "it holds a control character",
                },
            ),
            (
                "example.com\n\n\n",
                OutputError::Url {
                    line: 1,
                    url: None,
                    reason: "no scheme such as https:// and not an absolute path",
                },
            ),
        ] {
            assert_eq!(parse_output(data).unwrap_err(), expected, "{data:?}");
        }
    }

    #[test]
    fn header_errors_never_quote_the_line_and_urls_lose_their_userinfo() {
        let error = parse_output("https://x.example\n\nAuthorization Bearer s3cret-token\n\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "line 3: not a header line `Name: value` with a valid name and value (the line is not shown: it may hold a secret)"
        );
        let error = parse_output("https://user:s3cret@x.example\x01\n\n\n")
            .unwrap_err()
            .to_string();
        assert!(!error.contains("s3cret"), "{error}");
    }

    #[test]
    fn the_response_head_is_what_go_writes_to_stdin() {
        assert_eq!(
            response_head(
                "HTTP/1.1",
                "401 Unauthorized",
                &[
                    ("content-type".to_owned(), "text/plain".to_owned()),
                    (
                        "www-authenticate".to_owned(),
                        "Basic realm=\"a\"".to_owned()
                    ),
                    ("www-authenticate".to_owned(), "Bearer".to_owned()),
                ]
            ),
            "HTTP/1.1 401 Unauthorized\nContent-Type: text/plain\nWww-Authenticate: Basic realm=\"a\", Bearer\n\n"
        );
    }

    fn script(folder: &std::path::Path, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt as _;
        let path = folder.join("helper");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.to_str().unwrap().to_owned()
    }

    #[test]
    fn commands_run_with_the_url_and_the_response_on_stdin() {
        let folder = tempfile::tempdir().unwrap();
        // The helper prints its arguments and its input back as a header, as one value.
        let helper = script(
            folder.path(),
            "input=$(tr '\\n' '|')\nprintf 'https://x.example\\n\\nX-Args: %s\\nX-Input: %s\\n\\n' \"$*\" \"$input\"",
        );
        let words = vec![helper, "--flag".to_owned()];
        let first = run(&words, None, None).unwrap();
        assert_eq!(
            first,
            vec![set(
                &["https://x.example"],
                &[("X-Args", "--flag"), ("X-Input", "")]
            )]
        );
        let again = run(
            &words,
            Some("https://x.example/mod/@v/v1.0.0.mod"),
            Some("HTTP/1.1 401 Unauthorized\n\n"),
        )
        .unwrap();
        assert_eq!(
            again,
            vec![set(
                &["https://x.example"],
                &[
                    ("X-Args", "--flag https://x.example/mod/@v/v1.0.0.mod"),
                    ("X-Input", "HTTP/1.1 401 Unauthorized||")
                ]
            )]
        );
    }

    #[test]
    fn command_failures_are_explained() {
        let folder = tempfile::tempdir().unwrap();
        let missing = folder.path().join("no-such-helper");
        let error = run(&[missing.display().to_string()], None, None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            format!(
                "cannot run `{}`: No such file or directory (os error 2) (no such program: is it installed, and on PATH or named by an absolute path?)",
                missing.display()
            )
        );
        let failing = script(folder.path(), "echo 'token expired' >&2\nexit 3");
        let error = run(std::slice::from_ref(&failing), None, None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            format!("`{failing}` failed (exit status: 3): token expired")
        );
        let garbled = script(
            folder.path(),
            "echo 'https://x.example'; echo 'Bearer s3cret'",
        );
        let error = run(std::slice::from_ref(&garbled), None, None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            format!(
                "`{garbled}` printed what GOAUTH does not accept: line 2: the line (not shown: it may hold a secret) is not a URL (no scheme such as https:// and not an absolute path)"
            )
        );
    }
}
