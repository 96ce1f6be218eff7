//! Image references: `[registry/]repository[:tag][@digest]`, following the grammar of the
//! distribution project's `reference` package, with Docker Hub's normalisation (`example` is
//! `docker.io/library/example`).
//!
//! The first path component is a registry when it contains `.` or `:` or is `localhost`, as in
//! Docker. Repository components are lowercase alphanumerics joined by `.`, `_`, `__` or runs
//! of `-`; a tag is `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`; the whole name is at most 255 bytes.

use std::fmt;
use std::str::FromStr;

use super::digest::Digest;

pub const DOCKER_HUB: &str = "docker.io";
const NAME_MAX: usize = 255;
const TAG_MAX: usize = 128;

/// A parsed, normalised image reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `docker.io`, `ghcr.io`, `localhost:5000`, …
    pub registry: String,
    /// `library/example`, `team/app`, …
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid image reference `{reference}`: {reason}")]
    Invalid { reference: String, reason: String },
}

fn invalid(reference: &str, reason: impl Into<String>) -> ReferenceError {
    ReferenceError::Invalid {
        reference: reference.to_owned(),
        reason: reason.into(),
    }
}

/// Whether `component` is one `/`-separated part of a repository name: lowercase letters and
/// digits, joined by `.`, `_`, `__` or runs of `-`.
pub fn is_path_component(component: &str) -> bool {
    // alpha-numeric (separator alpha-numeric)*, separator := [_.] | __ | [-]+
    let bytes = component.as_bytes();
    let alphanumeric = |byte: u8| byte.is_ascii_lowercase() || byte.is_ascii_digit();
    if bytes.is_empty() || !alphanumeric(bytes[0]) || !alphanumeric(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut index = 0;
    while index < bytes.len() {
        if alphanumeric(bytes[index]) {
            index += 1;
            continue;
        }
        let start = index;
        while index < bytes.len() && !alphanumeric(bytes[index]) {
            index += 1;
        }
        let separator = &component[start..index];
        let valid = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !valid {
            return false;
        }
    }
    true
}

fn is_domain(domain: &str) -> bool {
    let (host, port) = if domain.starts_with('[') {
        // An IPv6 literal: `[::1]` or `[::1]:5000`.
        let Some(close) = domain.find(']') else {
            return false;
        };
        let (host, rest) = domain.split_at(close + 1);
        match rest.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if rest.is_empty() => (host, None),
            None => return false,
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (domain, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|byte| byte.is_ascii_digit()))
    {
        return false;
    }
    if let Some(inner) = host
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
    {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let bytes = label.as_bytes();
            !bytes.is_empty()
                && bytes[0].is_ascii_alphanumeric()
                && bytes[bytes.len() - 1].is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|byte| byte.is_ascii_alphanumeric() || *byte == b'-')
        })
}

/// Whether `tag` is a valid tag.
pub fn is_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= TAG_MAX
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-'))
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() {
            return Err(invalid(text, "it is empty"));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                let digest = digest
                    .parse::<Digest>()
                    .map_err(|error| invalid(text, error.to_string()))?;
                (rest, Some(digest))
            }
            None => (text, None),
        };
        // A tag follows the last `:` that comes after the last `/` (a registry port has a `/`
        // after it).
        let last_slash = rest.rfind('/').map_or(0, |index| index + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(colon) => {
                let tag = &rest[last_slash + colon + 1..];
                if !is_tag(tag) {
                    return Err(invalid(
                        text,
                        format!(
                            "`{tag}` is not a valid tag (letters, digits, `_`, `.` and `-`, at most 128, not starting with `.` or `-`)"
                        ),
                    ));
                }
                (&rest[..last_slash + colon], Some(tag.to_owned()))
            }
            None => (rest, None),
        };
        if name.len() > NAME_MAX {
            return Err(invalid(
                text,
                format!("the name is longer than {NAME_MAX} bytes"),
            ));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                if !is_domain(first) {
                    return Err(invalid(
                        text,
                        format!("`{first}` is not a valid registry host"),
                    ));
                }
                (first.to_owned(), remainder.to_owned())
            }
            Some(_) => (DOCKER_HUB.to_owned(), name.to_owned()),
            None => (DOCKER_HUB.to_owned(), format!("library/{name}")),
        };
        if let Some(component) = repository
            .split('/')
            .find(|component| !is_path_component(component))
        {
            let reason = if component.bytes().any(|byte| byte.is_ascii_uppercase()) {
                "repository names must be lowercase".to_owned()
            } else {
                format!(
                    "`{component}` is not a valid name component (lowercase letters and digits, joined by `.`, `_`, `__` or `-`)"
                )
            };
            return Err(invalid(text, reason));
        }
        let registry = if registry == "index.docker.io" || registry == "registry-1.docker.io" {
            DOCKER_HUB.to_owned()
        } else {
            registry
        };
        // Docker Hub's official images live under `library/`, however the name was written.
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

impl Reference {
    /// `registry/repository`, fully qualified (`docker.io/library/example`).
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The short form Docker prints and writes in `RepoTags`: `example`, `team/app`,
    /// `localhost:5000/app`.
    pub fn familiar_name(&self) -> String {
        if self.registry == DOCKER_HUB {
            self.repository
                .strip_prefix("library/")
                .filter(|rest| !rest.contains('/'))
                .unwrap_or(&self.repository)
                .to_owned()
        } else {
            self.name()
        }
    }

    /// The familiar name with its tag (`example:0.1`), as in a docker-archive's `RepoTags`.
    pub fn familiar_tagged(&self) -> String {
        match &self.tag {
            Some(tag) => format!("{}:{tag}", self.familiar_name()),
            None => self.familiar_name(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_docker() {
        let cases = [
            ("example", "docker.io/library/example", "example"),
            (
                "example:0.1",
                "docker.io/library/example:0.1",
                "example:0.1",
            ),
            ("team/app:v1", "docker.io/team/app:v1", "team/app:v1"),
            ("localhost/app", "localhost/app", "localhost/app"),
            (
                "localhost:5000/a/b:c",
                "localhost:5000/a/b:c",
                "localhost:5000/a/b:c",
            ),
            ("ghcr.io/o/r", "ghcr.io/o/r", "ghcr.io/o/r"),
            ("index.docker.io/library/x", "docker.io/library/x", "x"),
            ("docker.io/example", "docker.io/library/example", "example"),
            (
                "index.docker.io/example:1",
                "docker.io/library/example:1",
                "example:1",
            ),
            (
                "docker.io/library/a/b",
                "docker.io/library/a/b",
                "library/a/b",
            ),
            ("[::1]:5000/app:1", "[::1]:5000/app:1", "[::1]:5000/app:1"),
            (
                "a__b-c---d/e.f_g:T.1-x",
                "docker.io/a__b-c---d/e.f_g:T.1-x",
                "a__b-c---d/e.f_g:T.1-x",
            ),
        ];
        for (input, full, familiar) in cases {
            let reference: Reference = input
                .parse()
                .unwrap_or_else(|error| panic!("{input}: {error}"));
            assert_eq!(reference.to_string(), full, "{input}");
            assert_eq!(reference.familiar_tagged(), familiar, "{input}");
        }
    }

    #[test]
    fn digest_references() {
        let digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let reference: Reference = format!("reg.example:443/app:1@{digest}").parse().unwrap();
        assert_eq!(reference.registry, "reg.example:443");
        assert_eq!(reference.tag.as_deref(), Some("1"));
        assert_eq!(reference.digest.unwrap().to_string(), digest);
    }

    #[test]
    fn rejects_bad_references() {
        let cases = [
            ("", "empty"),
            ("Example", "lowercase"),
            ("example:", "tag"),
            ("example:.x", "tag"),
            ("exa mple", "component"),
            ("-example", "component"),
            ("example-", "component"),
            ("a//b", "component"),
            ("a/b/", "component"),
            ("example@sha256:abc", "digest"),
            ("bad_host.example:x/app", "registry"),
        ];
        for (input, reason) in cases {
            let error = input.parse::<Reference>().expect_err(input).to_string();
            assert!(error.contains(reason), "{input}: {error}");
        }
        let long = "a".repeat(256);
        assert!(long.parse::<Reference>().is_err());
        assert!(
            format!("x:{}", "t".repeat(129))
                .parse::<Reference>()
                .is_err()
        );
    }
}
