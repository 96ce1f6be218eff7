//! The package index client of the static base: PyPI's JSON API (`{index}/pypi/{project}/json`)
//! to find the newest wheels, and the download of a pinned wheel, checked against its sha256
//! before any byte of it is parsed.
//!
//! Every request goes through [`crate::http`] with [`AgentOptions::static_base`] and
//! [`RetryPolicy::static_base`] (retried on connection failures, 5xx and 429); every URL in a
//! message or in kiln.lock is redacted ([`redact()`]). A relative file URL on a JSON page
//! (mirrors serve them) is resolved against the page's URL as RFC 3986 says, as pip does.

use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::StaticWheel;
// Credentials never reach a message or kiln.lock: the one redaction every client uses.
use crate::http::{self, AgentOptions, Attempt, Client, HttpError, RetryPolicy, redact};

/// The package index [`super::latest_sources`] asks when `KILN_PYPI_URL` is unset.
pub const DEFAULT_PYPI_URL: &str = "https://pypi.org";
/// The variable naming another index (a mirror with PyPI's JSON API).
pub const PYPI_URL_ENV: &str = "KILN_PYPI_URL";

/// The most bytes of a PyPI JSON page read.
const MAX_INDEX_PAGE: u64 = 16 << 20;

/// The hint after a failed download of a wheel.
pub(super) const WHEEL_HINT: &str = "run `kiln lock` where the network is reachable: it fetches the static base into the store, and builds after that need no network";
/// The hint after a failed request to the package index.
const INDEX_HINT: &str =
    "KILN_PYPI_URL names another index (a mirror serving PyPI's JSON API, `/pypi/PROJECT/json`)";

#[derive(Debug, thiserror::Error)]
pub enum PypiError {
    #[error("GET {url}: {message}{}", attempts_note(*.attempts))]
    Fetch {
        url: String,
        message: String,
        attempts: u32,
        /// What to do about a failed request for this file (`WHEEL_HINT`, `INDEX_HINT`).
        hint: &'static str,
        /// After a TLS failure, what kiln trusted ([`crate::http::tls::roots_hint`]).
        roots: Option<String>,
    },
    #[error("GET {url}: {status}{}", attempts_note(*.attempts))]
    Status {
        url: String,
        status: String,
        attempts: u32,
        hint: &'static str,
    },
    #[error("GET {url}: the answer is larger than the limit of {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error(
        "{url} is not the file kiln.lock pins: its sha256 is {actual}, the pin says {expected}"
    )]
    DigestMismatch {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("{url} is not a PyPI JSON project page: {source}")]
    InvalidIndexPage {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{url} lists no pure-Python wheel (`…-none-any.whl`) with a sha256 for {project}")]
    NoWheel { url: String, project: String },
}

/// The hint after a digest that is not the pin's.
const DIGEST_HINT: &str = "the server, a proxy or the pin changed; `kiln lock --update-bases` pins what the index serves now";

impl crate::diagnostic::Hint for PypiError {
    fn hint(&self) -> Option<String> {
        match self {
            // Two hints, each printed on a `hint:` line of its own.
            PypiError::Fetch {
                hint,
                roots: Some(roots),
                ..
            } => Some(format!("{roots}\n{hint}")),
            PypiError::Fetch { hint, .. } | PypiError::Status { hint, .. } => {
                Some((*hint).to_owned())
            }
            PypiError::DigestMismatch { .. } => Some(DIGEST_HINT.to_owned()),
            _ => None,
        }
    }
}

fn attempts_note(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    }
}

/// The package index to ask for the newest wheels: `$KILN_PYPI_URL` when set and not empty,
/// else [`DEFAULT_PYPI_URL`].
pub fn pypi_url() -> String {
    std::env::var(PYPI_URL_ENV)
        .ok()
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| DEFAULT_PYPI_URL.to_owned())
}

/// The newest wheel of `project` on the index at `index` (no trailing `/`), as the source
/// `name`: see [`super::latest_sources`].
pub(super) fn newest_source(
    index: &str,
    name: &str,
    project: &str,
) -> Result<StaticWheel, PypiError> {
    let page_url = format!("{index}/pypi/{project}/json");
    let bytes = get(&page_url, MAX_INDEX_PAGE, INDEX_HINT)?;
    newest_wheel(&bytes, &page_url, name, project)
}

/// What [`latest_sources`] reads of a PyPI JSON page.
#[derive(Deserialize)]
struct ProjectPage {
    info: ProjectInfo,
    urls: Vec<ReleaseFile>,
}

#[derive(Deserialize)]
struct ProjectInfo {
    version: String,
}

#[derive(Deserialize)]
struct ReleaseFile {
    packagetype: String,
    filename: String,
    url: String,
    digests: FileDigests,
    #[serde(default)]
    yanked: bool,
}

#[derive(Deserialize)]
struct FileDigests {
    sha256: Option<String>,
}

fn newest_wheel(
    page: &[u8],
    page_url: &str,
    name: &str,
    project: &str,
) -> Result<StaticWheel, PypiError> {
    let page: ProjectPage =
        serde_json::from_slice(page).map_err(|source| PypiError::InvalidIndexPage {
            url: redact(page_url),
            source,
        })?;
    let mut wheels: Vec<ReleaseFile> = page
        .urls
        .into_iter()
        .filter(|file| {
            file.packagetype == "bdist_wheel"
                && file.filename.ends_with("-none-any.whl")
                && !file.yanked
                && file.digests.sha256.as_deref().is_some_and(is_sha256_hex)
        })
        .collect();
    // A release may have a `py2` and a `py3` wheel; kiln takes the one a Python 3 would.
    let chosen = wheels
        .iter()
        .position(|file| file.filename.contains("py3"))
        .unwrap_or(0);
    if wheels.is_empty() {
        return Err(PypiError::NoWheel {
            url: redact(page_url),
            project: project.to_owned(),
        });
    }
    let wheel = wheels.swap_remove(chosen);
    Ok(StaticWheel {
        name: name.to_owned(),
        url: redact(&resolve_url(page_url, &wheel.url)),
        sha256: wheel
            .digests
            .sha256
            .unwrap_or_default()
            .to_ascii_lowercase(),
        version: page.info.version,
    })
}

pub(super) fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// Download `source`'s wheel and check its sha256 before anything reads it.
pub(super) fn download_verified(source: &StaticWheel, limit: u64) -> Result<Vec<u8>, PypiError> {
    let bytes = get(&source.url, limit, WHEEL_HINT)?;
    verify_sha256(&redact(&source.url), &source.sha256, &bytes)?;
    Ok(bytes)
}

/// Download `url` (at most `limit` bytes) and check it against `sha256` (lower-case hex)
/// before anything reads it: the download of any file kiln pins on PyPI by digest (the Zig
/// wheel of cgo builds as well as the static base's). `hint` says what to do when it cannot
/// be fetched.
pub fn download_pinned(
    url: &str,
    sha256: &str,
    limit: u64,
    hint: &'static str,
) -> Result<Vec<u8>, PypiError> {
    let bytes = get(url, limit, hint)?;
    verify_sha256(&redact(url), sha256, &bytes)?;
    Ok(bytes)
}

fn verify_sha256(url: &str, expected: &str, bytes: &[u8]) -> Result<(), PypiError> {
    let actual = hex::encode(Sha256::digest(bytes));
    if actual != expected {
        return Err(PypiError::DigestMismatch {
            url: url.to_owned(),
            expected: expected.to_owned(),
            actual,
        });
    }
    Ok(())
}

/// Resolve `reference` (a URL from a JSON page) against `base` (the page's URL) as RFC 3986
/// does for the forms an index uses: absolute, scheme-relative (`//host/…`), host-relative
/// (`/…`) and path-relative (`../../packages/…`), dot segments removed.
fn resolve_url(base: &str, reference: &str) -> String {
    let has_scheme = reference.split_once(':').is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'-' | b'.'))
            && !scheme.contains('/')
    });
    if has_scheme {
        return reference.to_owned();
    }
    let Some(scheme_end) = base.find("://") else {
        return reference.to_owned();
    };
    let scheme = &base[..scheme_end];
    if reference.starts_with("//") {
        return format!("{scheme}:{reference}");
    }
    let authority_start = scheme_end + 3;
    let authority_end = base[authority_start..]
        .find(['/', '?', '#'])
        .map_or(base.len(), |index| authority_start + index);
    let origin = &base[..authority_end];
    let (reference_path, suffix) = match reference.find(['?', '#']) {
        Some(index) => reference.split_at(index),
        None => (reference, ""),
    };
    let merged = if reference_path.starts_with('/') {
        reference_path.to_owned()
    } else {
        let base_path = &base[authority_end..];
        let base_path = base_path
            .find(['?', '#'])
            .map_or(base_path, |index| &base_path[..index]);
        let folder = base_path
            .rfind('/')
            .map_or("/", |index| &base_path[..=index]);
        format!("{folder}{reference_path}")
    };
    // Remove dot segments; `..` above the root stays at the root.
    let mut segments: Vec<&str> = Vec::new();
    let parts: Vec<&str> = merged.split('/').skip(1).collect();
    for (position, segment) in parts.iter().enumerate() {
        let last = position + 1 == parts.len();
        match *segment {
            "." => {
                if last {
                    segments.push("");
                }
            }
            ".." => {
                segments.pop();
                if last {
                    segments.push("");
                }
            }
            other => segments.push(other),
        }
    }
    format!("{origin}/{}{suffix}", segments.join("/"))
}

/// The host (and port) of `url`, without userinfo.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority.rsplit('@').next().unwrap_or(authority)
}

/// GET `url`, at most `limit` bytes, retrying as [`RetryPolicy::static_base`] says (on
/// connection failures, 5xx and 429), with the settings of [`AgentOptions::static_base`].
fn get(url: &str, limit: u64, hint: &'static str) -> Result<Vec<u8>, PypiError> {
    let client = Client::new(&AgentOptions::static_base().for_host(host_of(url)));
    let retry = RetryPolicy::static_base();
    retry.run(|attempt| get_once(&retry, &client, url, limit, attempt, hint))
}

fn get_once(
    retry: &RetryPolicy,
    client: &Client,
    url: &str,
    limit: u64,
    attempt: u32,
    hint: &'static str,
) -> Attempt<Vec<u8>, PypiError> {
    let shown = redact(url);
    let response = match client.get(url).call() {
        Ok(response) => response,
        Err(error) => {
            let tls = matches!(error, ureq::Error::Tls(_) | ureq::Error::Rustls(_));
            let failure = PypiError::Fetch {
                url: shown,
                message: error.to_string(),
                attempts: attempt,
                hint,
                roots: tls.then(crate::http::tls::roots_hint),
            };
            return if retry.retries_error(&error) {
                Attempt::Retry(failure)
            } else {
                Attempt::Fail(failure)
            };
        }
    };
    let status = response.status();
    if !status.is_success() {
        let failure = PypiError::Status {
            url: shown,
            status: http::status_text(status),
            attempts: attempt,
            hint,
        };
        return if retry.retries_status(status) {
            Attempt::Retry(failure)
        } else {
            Attempt::Fail(failure)
        };
    }
    match http::read_limited(response, limit) {
        Ok(bytes) => Attempt::Done(bytes),
        Err(HttpError::TooLarge { limit }) => {
            Attempt::Fail(PypiError::TooLarge { url: shown, limit })
        }
        Err(HttpError::Read(error)) => Attempt::Retry(PypiError::Fetch {
            url: shown,
            message: format!("reading the answer: {error}"),
            attempts: attempt,
            hint,
            roots: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Hint as _;
    use crate::static_base::tests::{URL, serve, sha256_hex};
    use crate::static_base::{CA_CERTIFICATES, TZDATA, latest_sources};

    #[test]
    fn digest_mismatch_names_the_url_and_both_digests() {
        let expected = "0".repeat(64);
        let error = verify_sha256(URL, &expected, b"other bytes").unwrap_err();
        let actual = sha256_hex(b"other bytes");
        assert_eq!(
            error.to_string(),
            format!(
                "{URL} is not the file kiln.lock pins: its sha256 is {actual}, the pin says {expected}"
            )
        );
        assert_eq!(error.hint().as_deref(), Some(DIGEST_HINT));
        assert!(verify_sha256(URL, &actual, b"other bytes").is_ok());
    }

    #[test]
    fn latest_sources_reads_pypi_json() {
        let page = |project: &str, version: &str, files: serde_json::Value| {
            serde_json::to_vec(&serde_json::json!({
                "info": { "name": project, "version": version },
                "urls": files,
            }))
            .unwrap()
        };
        let file = |packagetype: &str, filename: &str, url: &str, sha256: &str, yanked: bool| {
            serde_json::json!({
                "packagetype": packagetype,
                "filename": filename,
                "url": url,
                "digests": { "md5": "x", "sha256": sha256 },
                "yanked": yanked,
            })
        };
        let digest = |digit: &str| digit.repeat(64);
        let server = serve(vec![
            (
                "/pypi/certifi/json".to_owned(),
                page(
                    "certifi",
                    "2026.1.1",
                    serde_json::json!([
                        file(
                            "sdist",
                            "certifi-2026.1.1.tar.gz",
                            "https://files.example/c.tar.gz",
                            &digest("1"),
                            false
                        ),
                        file(
                            "bdist_wheel",
                            "certifi-2026.1.1-py3-none-any.whl",
                            "https://files.example/packages/c.whl",
                            &digest("A"),
                            false
                        ),
                    ]),
                ),
            ),
            (
                "/pypi/tzdata/json".to_owned(),
                page(
                    "tzdata",
                    "2026.2",
                    serde_json::json!([
                        file(
                            "bdist_wheel",
                            "tzdata-2026.2-py2-none-any.whl",
                            "../../packages/py2.whl",
                            &digest("2"),
                            false
                        ),
                        file(
                            "bdist_wheel",
                            "tzdata-2026.2-py3-none-any.whl",
                            "../../packages/yanked.whl",
                            &digest("3"),
                            true
                        ),
                        file(
                            "bdist_wheel",
                            "tzdata-2026.2-py2.py3-none-any.whl",
                            "../../packages/t.whl",
                            &digest("4"),
                            false
                        ),
                    ]),
                ),
            ),
        ]);
        let sources = latest_sources(&format!("{}/", server.url())).unwrap();
        assert_eq!(
            sources,
            [
                StaticWheel {
                    name: CA_CERTIFICATES.to_owned(),
                    url: "https://files.example/packages/c.whl".to_owned(),
                    sha256: digest("a"),
                    version: "2026.1.1".to_owned(),
                },
                StaticWheel {
                    name: TZDATA.to_owned(),
                    url: format!("{}/packages/t.whl", server.url()),
                    sha256: digest("4"),
                    version: "2026.2".to_owned(),
                },
            ]
        );

        let empty = serve(vec![(
            "/pypi/certifi/json".to_owned(),
            page("certifi", "1", serde_json::json!([])),
        )]);
        let error = latest_sources(empty.url()).unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "{}/pypi/certifi/json lists no pure-Python wheel (`…-none-any.whl`) with a sha256 for certifi",
                empty.url()
            )
        );
        let broken = serve(vec![("/pypi/certifi/json".to_owned(), b"<html>".to_vec())]);
        let error = latest_sources(broken.url()).unwrap_err().to_string();
        assert!(
            error.contains("/pypi/certifi/json is not a PyPI JSON project page"),
            "{error}"
        );
    }

    #[test]
    fn urls_resolve_as_pip_resolves_them() {
        let base = "https://pypi.org/pypi/certifi/json";
        for (reference, expected) in [
            (
                "https://files.pythonhosted.org/packages/a/b.whl",
                "https://files.pythonhosted.org/packages/a/b.whl",
            ),
            (
                "../../packages/packages/7a/c.whl",
                "https://pypi.org/packages/packages/7a/c.whl",
            ),
            ("../../../../../x.whl", "https://pypi.org/x.whl"),
            (
                "./c.whl#sha256=00",
                "https://pypi.org/pypi/certifi/c.whl#sha256=00",
            ),
            ("/simple/c.whl", "https://pypi.org/simple/c.whl"),
            ("//mirror.example/c.whl", "https://mirror.example/c.whl"),
        ] {
            assert_eq!(resolve_url(base, reference), expected, "{reference}");
        }
        assert_eq!(
            redact("https://user:token@mirror.example/pypi/certifi/json"),
            "https://mirror.example/pypi/certifi/json"
        );
        assert_eq!(host_of("http://user@127.0.0.1:8080/x"), "127.0.0.1:8080");
    }

    #[test]
    fn pypi_url_defaults_to_pypi() {
        // Tests share one environment, which they must not change: where the variable is
        // set, this test runs again in a process of its own without it.
        if std::env::var_os(PYPI_URL_ENV).is_some_and(|value| !value.is_empty()) {
            let status = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "static_base::pypi::tests::pypi_url_defaults_to_pypi",
                    "--quiet",
                ])
                .env_remove(PYPI_URL_ENV)
                .status()
                .unwrap();
            assert!(status.success(), "without {PYPI_URL_ENV}: {status}");
            return;
        }
        assert_eq!(pypi_url(), DEFAULT_PYPI_URL);
    }
}
