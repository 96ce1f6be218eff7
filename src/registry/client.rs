//! A client for the OCI distribution spec (v1.1), the HTTP API every registry speaks: Docker
//! Hub, GHCR, ECR, Harbor, the CNCF distribution registry, zot.
//!
//! Pinned behaviour, each as the spec or Docker does it:
//! - **Scheme.** HTTPS trusting the system's root certificates (see [`crate::http::tls`]). Plain
//!   HTTP only for a loopback host (`localhost`, `127.0.0.0/8`, `::1`, as Docker treats them)
//!   or with `--insecure`; those try HTTP first and HTTPS second (unverified only with
//!   `--insecure`).
//! - **Auth.** `GET /v2/` tells: 200 is anonymous, 401 carries `WWW-Authenticate`; challenges,
//!   scopes and bearer tokens are [`super::token`]'s. A 401 on a request renews the token once.
//! - **Retries.** 5xx, 429 and dropped connections are tried again, five attempts in all,
//!   waiting 250 ms, then twice as long each time ([`RetryPolicy::registry`]; the token
//!   service and the `/v2/` probe take a 429 as final, see [`RetryPolicy::registry_token`] and
//!   [`RetryPolicy::registry_ping`]). A request whose body is a stream is retried by its
//!   caller, which reopens the stream. Timeouts and redirects: [`AgentOptions::registry`].
//! - **Uploads.** Sessions, monolithic and chunked `PUT`s and resuming are
//!   [`super::upload`]'s, methods of [`Registry`] like the rest.
//! - **Verification.** Blobs and manifests fetched by digest are hashed while read and refused
//!   when the digest or size differs; the `Docker-Content-Digest` a registry returns for a
//!   pushed manifest or blob must be the digest kiln computed.
//! - **Referrers.** A manifest PUT reports the `OCI-Subject` header a registry with the
//!   referrers API answers; [`Registry::find_manifest`] reads a tag that may not exist (the
//!   referrers tag schema's index), a 404 being `None`.
//! - **Secrets** stay in headers: no error or log line carries a credential or token, and a
//!   redirect to another host loses the `Authorization` header.
//!
//! Errors: [`RegistryError`] (in [`super::error`], shared with `token` and `upload`), re-exported
//! here for callers.

use std::io::{self, Read};
use std::time::Duration;

use super::auth::CredentialFiles;
pub use super::error::RegistryError;
use super::error::error_detail;
use super::token::{Authenticator, Scope, parse_challenge};
use crate::http::{self, AgentOptions, Client, RetryPolicy, is_loopback, without_queries};
use crate::oci::digest::Digest;
use crate::oci::reference::DOCKER_HUB;
use crate::oci::spec::media_type;

/// The largest manifest or index kiln reads (the distribution spec's limit is 4 MiB).
pub const MANIFEST_LIMIT: u64 = 4 << 20;
/// What kiln accepts when it reads a manifest.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// How to reach registries.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Allow plain HTTP and unverified TLS for every registry, not only loopback ones.
    pub insecure: bool,
    pub credentials: CredentialFiles,
    /// The first wait of [`RetryPolicy::registry`] (tests make it short).
    pub first_retry_delay: Duration,
    /// Timeouts and redirects: [`AgentOptions::registry`], or a caller's own (the shared
    /// build cache gives up sooner).
    pub agent: AgentOptions,
}

impl ClientOptions {
    pub fn from_env(insecure: bool) -> Self {
        ClientOptions {
            insecure,
            credentials: CredentialFiles::from_env(),
            first_retry_delay: RetryPolicy::registry().first_delay,
            agent: AgentOptions::registry(),
        }
    }
}

/// A connection to one registry.
pub struct Registry {
    /// As written in references: `docker.io`, `localhost:5000`.
    pub host: String,
    /// `https://registry-1.docker.io`, `http://127.0.0.1:5000`.
    base: String,
    client: Client,
    /// The credentials, the challenge and the tokens of this registry.
    auth: Authenticator,
    /// [`RetryPolicy::registry`] with [`ClientOptions::first_retry_delay`].
    retry: RetryPolicy,
}

/// A request body.
pub enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// A stream of `length` bytes; not re-sent on a 401.
    Stream(&'a mut (dyn Read + Send), u64),
}

pub(super) type Response = ureq::http::Response<ureq::Body>;

/// Read what is left of `response` (up to 64 KiB, an error's JSON) and drop it: ureq returns
/// a connection to its pool only once its answer has been read to the end, so an answer left
/// unread would make the next request open a connection (and a TLS session) of its own.
fn read_to_end(response: Response) {
    let _ = io::copy(
        &mut response.into_body().into_reader().take(64 << 10),
        &mut io::sink(),
    );
}

/// The value of header `name`, when it is there and ASCII.
pub(super) fn header<'r>(response: &'r Response, name: &str) -> Option<&'r str> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
}

/// What one attempt came to.
pub(super) enum Attempt<T> {
    Done(T),
    Retry(String),
    Fail(RegistryError),
}

impl Registry {
    /// Connect to `host` (a reference's registry): find the scheme, ping `/v2/`, learn how it
    /// authenticates, and look up credentials for `repository`.
    pub fn connect(
        host: &str,
        repository: &str,
        options: &ClientOptions,
    ) -> Result<Self, RegistryError> {
        let api_host = if host == DOCKER_HUB {
            "registry-1.docker.io"
        } else {
            host
        };
        let loopback = is_loopback(host);
        let credentials = options.credentials.lookup(host, repository)?;
        // Loopback: plain HTTP first, as Docker allows (nothing leaves the machine). With
        // --insecure elsewhere: HTTPS without verification first, plain HTTP only after.
        let schemes: &[&str] = if loopback {
            &["http", "https"]
        } else if options.insecure {
            &["https", "http"]
        } else {
            &["https"]
        };
        let mut last_error = String::new();
        for scheme in schemes {
            let verify = *scheme == "http" || !options.insecure;
            let client = Client::new(&options.agent.clone().verify_tls(verify).for_host(host));
            let base = format!("{scheme}://{api_host}");
            let retry = RetryPolicy::registry().with_first_delay(options.first_retry_delay);
            let mut registry = Registry {
                host: host.to_owned(),
                base,
                client,
                auth: Authenticator::new(host, credentials.clone(), retry.first_delay),
                retry,
            };
            match registry.ping() {
                Ok(()) => return Ok(registry),
                Err(PingError::Transport(message)) => last_error = message,
                Err(PingError::Fatal(error)) => return Err(error),
            }
        }
        if options.insecure || loopback {
            Err(RegistryError::Unreachable {
                registry: host.to_owned(),
                message: last_error,
            })
        } else {
            Err(RegistryError::NoTls {
                registry: host.to_owned(),
                message: last_error,
            })
        }
    }

    fn ping(&mut self) -> Result<(), PingError> {
        let url = format!("{}/v2/", self.base);
        // TLS to a plain-HTTP server, or the reverse, fails at once: the policy ends the
        // attempts so the next scheme is tried rather than waiting.
        let retry = RetryPolicy::registry_ping().with_first_delay(self.retry.first_delay);
        let outcome = retry.run(|_| {
            // A redirected ping (http → https) means this scheme is not the registry's.
            let result = self
                .client
                .get(&url)
                .config()
                .max_redirects(0)
                .build()
                .call();
            match result {
                Ok(response) if response.status().is_redirection() => {
                    http::Attempt::Fail(PingFailure::Error(PingError::Transport(format!(
                        "GET /v2/ redirects ({})",
                        http::status_text(response.status())
                    ))))
                }
                Ok(response) if retry.retries_status(response.status()) => {
                    http::Attempt::Retry(PingFailure::Answer(response))
                }
                Ok(response) => http::Attempt::Done(response),
                Err(error) => {
                    let failure = PingFailure::Error(PingError::Transport(without_queries(
                        &error.to_string(),
                    )));
                    if retry.retries_error(&error) {
                        http::Attempt::Retry(failure)
                    } else {
                        http::Attempt::Fail(failure)
                    }
                }
            }
        });
        // A 5xx on the last attempt is the answer, judged below like any other.
        let response = match outcome {
            Ok(response) | Err(PingFailure::Answer(response)) => response,
            Err(PingFailure::Error(error)) => return Err(error),
        };
        let status = response.status();
        let challenge = header(&response, "www-authenticate").and_then(parse_challenge);
        read_to_end(response);
        if status.as_u16() == 401 {
            match challenge {
                Some(challenge) => self.auth.challenged(challenge),
                None => {
                    return Err(PingError::Fatal(RegistryError::Protocol {
                        registry: self.host.clone(),
                        message:
                            "GET /v2/ answered 401 without a usable WWW-Authenticate challenge"
                                .to_owned(),
                    }));
                }
            }
            return Ok(());
        }
        if status.is_success() {
            return Ok(());
        }
        if status.as_u16() == 400 {
            // "Client sent an HTTP request to an HTTPS server."
            return Err(PingError::Transport(format!(
                "GET /v2/ gave {}",
                http::status_text(status)
            )));
        }
        Err(PingError::Fatal(RegistryError::NotARegistry {
            registry: self.host.clone(),
            status: http::status_text(status),
        }))
    }

    /// The URL of an API path (`/v2/…`), or of a `Location` the registry returned.
    pub(super) fn url(&self, path_or_location: &str) -> String {
        if path_or_location.starts_with("http://") || path_or_location.starts_with("https://") {
            path_or_location.to_owned()
        } else {
            format!("{}{path_or_location}", self.base)
        }
    }

    /// One request, authenticated; a 401 renews the token and tries once more when the body
    /// can be sent again. Transport errors are returned for the caller to retry.
    pub(super) fn send(
        &self,
        method: &str,
        url: &str,
        scope: &Scope,
        headers: &[(&str, String)],
        mut body: Body<'_>,
    ) -> Result<Result<Response, String>, RegistryError> {
        let mut scope = scope.clone();
        for round in 0..2 {
            // Credentials go only to the registry itself: an upload Location naming another
            // host (or scheme) gets none.
            let same_origin = url
                .strip_prefix(self.base.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
            let authorization = if same_origin {
                self.auth.authorization(&self.client, &scope)?
            } else {
                None
            };
            let mut builder = ureq::http::Request::builder().method(method).uri(url);
            for (name, value) in headers {
                builder = builder.header(*name, value);
            }
            if let Some(authorization) = &authorization {
                builder = builder.header("Authorization", authorization);
            }
            let result = match &mut body {
                Body::Empty => {
                    let request = builder.body(()).map_err(|error| self.protocol(error))?;
                    self.client.run(request)
                }
                Body::Bytes(bytes) => {
                    let request = builder
                        .header("Content-Length", bytes.len().to_string())
                        .body(*bytes)
                        .map_err(|error| self.protocol(error))?;
                    self.client.run(request)
                }
                Body::Stream(reader, length) => {
                    let request = builder
                        .header("Content-Length", length.to_string())
                        .body(ureq::SendBody::from_reader(reader))
                        .map_err(|error| self.protocol(error))?;
                    self.client.run(request)
                }
            };
            let response = match result {
                Ok(response) => response,
                Err(error) if self.retry.retries_error(&error) => {
                    return Ok(Err(without_queries(&error.to_string())));
                }
                Err(error) => return Err(self.unreachable(&error)),
            };
            if response.status().as_u16() == 401 && round == 0 {
                let resendable = !matches!(body, Body::Stream(..));
                match self
                    .auth
                    .renew(&scope, header(&response, "www-authenticate"))
                {
                    Some(renewed) if resendable => {
                        scope = renewed;
                        continue;
                    }
                    // A token that expired mid-upload: renewed, and the caller sends the
                    // stream again.
                    Some(_) => {
                        return Ok(Err(
                            "the registry refused an expired token (renewed)".to_owned()
                        ));
                    }
                    None => {}
                }
            }
            return Ok(Ok(response));
        }
        unreachable!("the loop returns on its second round")
    }

    pub(super) fn protocol(&self, error: impl std::fmt::Display) -> RegistryError {
        RegistryError::Protocol {
            registry: self.host.clone(),
            message: error.to_string(),
        }
    }

    /// A transport failure the retry policy does not try again (none, with
    /// [`RetryPolicy::registry`], which retries them all).
    fn unreachable(&self, error: &ureq::Error) -> RegistryError {
        RegistryError::Unreachable {
            registry: self.host.clone(),
            message: without_queries(&error.to_string()),
        }
    }

    fn unauthorized(&self, operation: &str) -> RegistryError {
        RegistryError::Unauthorized {
            registry: self.host.clone(),
            operation: operation.to_owned(),
            had_credentials: self.auth.has_credentials(),
        }
    }

    /// Classify a response: `Ok` for the statuses `accept` takes, retry on 5xx/429, else an
    /// error naming the operation.
    pub(super) fn check<T>(
        &self,
        operation: &str,
        result: Result<Response, String>,
        accept: impl FnOnce(Response) -> Result<Result<T, Response>, RegistryError>,
    ) -> Attempt<T> {
        let response = match result {
            Ok(response) => response,
            Err(message) => return Attempt::Retry(message),
        };
        let status = response.status();
        if status.as_u16() == 401 || status.as_u16() == 403 && !self.auth.has_credentials() {
            return Attempt::Fail(self.unauthorized(operation));
        }
        if self.retry.retries_status(status) {
            let text = http::status_text(status);
            return Attempt::Retry(format!("{text}{}", error_detail(response)));
        }
        match accept(response) {
            Ok(Ok(value)) => Attempt::Done(value),
            Ok(Err(response)) => {
                let status = http::status_text(response.status());
                Attempt::Fail(RegistryError::Status {
                    registry: self.host.clone(),
                    operation: operation.to_owned(),
                    status,
                    detail: error_detail(response),
                })
            }
            Err(error) => Attempt::Fail(error),
        }
    }

    /// Run `attempt` until it is done, fails, or has been tried as often as the retry
    /// policy allows.
    pub(super) fn retry<T>(
        &self,
        operation: &str,
        mut attempt: impl FnMut() -> Result<Attempt<T>, RegistryError>,
    ) -> Result<T, RegistryError> {
        self.retry.run(|number| match attempt() {
            Ok(Attempt::Done(value)) => http::Attempt::Done(value),
            Ok(Attempt::Fail(error)) | Err(error) => http::Attempt::Fail(error),
            Ok(Attempt::Retry(message)) => http::Attempt::Retry(RegistryError::GaveUp {
                registry: self.host.clone(),
                operation: operation.to_owned(),
                attempts: number,
                message,
            }),
        })
    }

    /// The size of blob `digest` in `repository`, if the registry has it there.
    pub fn blob_size(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<u64>, RegistryError> {
        let url = self.url(&format!("/v2/{repository}/blobs/{digest}"));
        let operation = format!("HEAD {repository}@{digest}");
        let scope = Scope::push(repository);
        self.retry(&operation, || {
            let result = self.send("HEAD", &url, &scope, &[], Body::Empty)?;
            Ok(self.check(&operation, result, |response| {
                Ok(match response.status().as_u16() {
                    200 => Ok(Some(
                        header(&response, "content-length")
                            .and_then(|length| length.parse().ok())
                            .unwrap_or(0),
                    )),
                    404 => Ok(None),
                    _ => Err(response),
                })
            }))
        })
    }

    /// Refuse a `Docker-Content-Digest` answer that is not `digest`, the digest kiln computed.
    pub(super) fn check_digest_header(
        &self,
        response: &Response,
        digest: &Digest,
        operation: &str,
    ) -> Result<(), RegistryError> {
        match header(response, "docker-content-digest") {
            Some(returned) if returned != digest.to_string() => {
                Err(RegistryError::DigestMismatch {
                    registry: self.host.clone(),
                    what: format!("the digest it reports for {operation}"),
                    expected: digest.to_string(),
                    got: returned.to_owned(),
                })
            }
            _ => Ok(()),
        }
    }

    /// PUT a manifest (or index) under `reference` (a tag or digest); the digest the
    /// registry reports must be `digest`. The answer says whether the registry took the
    /// manifest's `subject` into its referrers API (`OCI-Subject`, distribution spec v1.1).
    pub fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
        digest: &Digest,
    ) -> Result<ManifestPut, RegistryError> {
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"));
        let operation = format!("the manifest {repository}:{reference}");
        let headers = [("Content-Type", media_type.to_owned())];
        let scope = Scope::push(repository);
        self.retry(&operation, || {
            let result = self.send("PUT", &url, &scope, &headers, Body::Bytes(bytes))?;
            Ok(self.check(&operation, result, |response| {
                match response.status().as_u16() {
                    200 | 201 | 202 | 204 => {
                        self.check_digest_header(&response, digest, &operation)?;
                        Ok(Ok(ManifestPut {
                            subject: header(&response, "oci-subject")
                                .and_then(|subject| subject.trim().parse().ok()),
                        }))
                    }
                    _ => Ok(Err(response)),
                }
            }))
        })
    }

    /// The digest `reference` (a tag or digest) names in `repository`, from a `HEAD`; `None`
    /// when the registry has no such manifest or does not say its digest.
    pub fn manifest_digest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<Digest>, RegistryError> {
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"));
        let operation = format!("HEAD {repository}:{reference}");
        let scope = Scope::push(repository);
        let headers = [("Accept", MANIFEST_ACCEPT.to_owned())];
        self.retry(&operation, || {
            let result = self.send("HEAD", &url, &scope, &headers, Body::Empty)?;
            Ok(self.check(&operation, result, |response| {
                Ok(match response.status().as_u16() {
                    200 => Ok(header(&response, "docker-content-digest")
                        .and_then(|digest| digest.parse().ok())),
                    404 => Ok(None),
                    _ => Err(response),
                })
            }))
        })
    }

    /// GET a manifest or index by tag or digest: its bytes, media type and digest. A digest
    /// reference is verified; for a tag, a `Docker-Content-Digest` must match the bytes.
    pub fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<FetchedManifest, RegistryError> {
        self.fetch_manifest(repository, reference, false)?
            .ok_or_else(|| RegistryError::Protocol {
                registry: self.host.clone(),
                message: format!("GET {repository}:{reference} found nothing"),
            })
    }

    /// [`Registry::get_manifest`], or `None` when the registry has no such manifest (404).
    pub fn find_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<FetchedManifest>, RegistryError> {
        self.fetch_manifest(repository, reference, true)
    }

    fn fetch_manifest(
        &self,
        repository: &str,
        reference: &str,
        missing_is_none: bool,
    ) -> Result<Option<FetchedManifest>, RegistryError> {
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"));
        let operation = format!("GET {repository}:{reference}");
        let scope = Scope::pull(repository);
        let headers = [("Accept", MANIFEST_ACCEPT.to_owned())];
        self.retry(&operation, || {
            let result = self.send("GET", &url, &scope, &headers, Body::Empty)?;
            Ok(self.check(&operation, result, |response| {
                match response.status().as_u16() {
                    200 => {}
                    404 if missing_is_none => {
                        // A miss is the common answer of a shared cache: the connection is
                        // kept for the next lookup (a new one would cost a TLS handshake).
                        read_to_end(response);
                        return Ok(Ok(None));
                    }
                    _ => return Ok(Err(response)),
                }
                let content_type = header(&response, "content-type")
                    .map(|value| value.split(';').next().unwrap_or("").trim().to_owned());
                let returned = header(&response, "docker-content-digest").map(str::to_owned);
                let mut bytes = Vec::new();
                response
                    .into_body()
                    .into_reader()
                    .take(MANIFEST_LIMIT + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|error| self.protocol(format!("reading {operation}: {error}")))?;
                if bytes.len() as u64 > MANIFEST_LIMIT {
                    return Err(
                        self.protocol(format!("{operation} is larger than {MANIFEST_LIMIT} bytes"))
                    );
                }
                let digest = Digest::of(&bytes);
                let expected = reference
                    .parse::<Digest>()
                    .ok()
                    .map(|digest| digest.to_string())
                    .or(returned);
                if let Some(expected) = expected
                    && expected != digest.to_string()
                {
                    return Err(RegistryError::DigestMismatch {
                        registry: self.host.clone(),
                        what: format!("the manifest served for {repository}:{reference}"),
                        expected,
                        got: digest.to_string(),
                    });
                }
                let media_type = media_type_of(&bytes)
                    .or(content_type)
                    .unwrap_or_else(|| media_type::OCI_MANIFEST.to_owned());
                Ok(Ok(Some(FetchedManifest {
                    bytes,
                    media_type,
                    digest,
                })))
            }))
        })
    }

    /// Open blob `digest` of `repository` for reading. The reader fails at its end unless the
    /// bytes have `size` and hash to `digest`.
    pub fn open_blob(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<VerifiedBlob, RegistryError> {
        let url = self.url(&format!("/v2/{repository}/blobs/{digest}"));
        let operation = format!("GET {repository}@{digest}");
        let scope = Scope::pull(repository);
        let reader = self.retry(&operation, || {
            let result = self.send("GET", &url, &scope, &[], Body::Empty)?;
            Ok(self.check(&operation, result, |response| {
                if response.status().as_u16() != 200 {
                    return Ok(Err(response));
                }
                Ok(Ok(response.into_body().into_reader()))
            }))
        })?;
        Ok(VerifiedBlob {
            inner: Box::new(reader.take(size.saturating_add(1))),
            hasher: <sha2::Sha256 as sha2::Digest>::new(),
            read: 0,
            size,
            digest: *digest,
            registry: self.host.clone(),
            transport_failure: None,
        })
    }
}

enum PingError {
    Transport(String),
    Fatal(RegistryError),
}

/// How one ping attempt fell short: an answer to try again for (the last one is judged as
/// any other), or an error.
enum PingFailure {
    Answer(Response),
    Error(PingError),
}

/// What a registry answered to a manifest PUT.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ManifestPut {
    /// The `OCI-Subject` header: the registry indexed the manifest's subject for the
    /// referrers API, and no referrers tag is needed.
    pub subject: Option<Digest>,
}

/// A manifest fetched from a registry.
#[derive(Clone, Debug)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

/// The `mediaType` a manifest or index declares in its own bytes.
pub fn media_type_of(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct MediaType {
        #[serde(rename = "mediaType", default)]
        media_type: Option<String>,
    }
    serde_json::from_slice::<MediaType>(bytes)
        .ok()
        .and_then(|parsed| parsed.media_type)
}

/// A blob being read from a registry, checked at its end.
///
/// Its errors are of two kinds a caller may treat differently: the connection failing under
/// it (reset, a read timing out, the body cut short of its `Content-Length`), which says
/// nothing of the blob and is kept in [`VerifiedBlob::transport_failure`], and the bytes
/// themselves being wrong (too many, too few in a complete answer, another digest).
pub struct VerifiedBlob {
    inner: Box<dyn Read + Send>,
    hasher: sha2::Sha256,
    read: u64,
    size: u64,
    digest: Digest,
    registry: String,
    transport_failure: Option<(io::ErrorKind, String)>,
}

impl VerifiedBlob {
    /// How the connection failed while the blob was read, if it did: `None` when every
    /// error it gave was about the bytes.
    pub fn transport_failure(&self) -> Option<(io::ErrorKind, &str)> {
        self.transport_failure
            .as_ref()
            .map(|(kind, message)| (*kind, message.as_str()))
    }

    /// How many bytes of the blob have been read.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }
}

impl Read for VerifiedBlob {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = match self.inner.read(buf) {
            Ok(read) => read,
            Err(error) => {
                if error.kind() != io::ErrorKind::Interrupted {
                    // ureq's own timeouts come as `Other` wrapping its error.
                    let timed_out = error
                        .get_ref()
                        .and_then(|inner| inner.downcast_ref::<ureq::Error>())
                        .is_some_and(|inner| matches!(inner, ureq::Error::Timeout(_)));
                    let kind = if timed_out {
                        io::ErrorKind::TimedOut
                    } else {
                        error.kind()
                    };
                    self.transport_failure = Some((kind, error.to_string()));
                }
                return Err(error);
            }
        };
        self.read += read as u64;
        if self.read > self.size {
            return Err(io::Error::other(format!(
                "{}: blob {} is longer than its {} bytes",
                self.registry, self.digest, self.size
            )));
        }
        sha2::Digest::update(&mut self.hasher, &buf[..read]);
        if read == 0 && !buf.is_empty() {
            if self.read != self.size {
                return Err(io::Error::other(format!(
                    "{}: blob {} ended after {} of its {} bytes",
                    self.registry, self.digest, self.read, self.size
                )));
            }
            let actual = Digest::from_raw(sha2::Digest::finalize(self.hasher.clone()).into());
            if actual != self.digest {
                return Err(io::Error::other(format!(
                    "{}: blob {} hashes to {actual}",
                    self.registry, self.digest
                )));
            }
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verified_blobs_check_size_and_digest() {
        let bytes = b"hello".to_vec();
        let make = |data: Vec<u8>, size: u64| VerifiedBlob {
            inner: Box::new(io::Cursor::new(data)),
            hasher: <sha2::Sha256 as sha2::Digest>::new(),
            read: 0,
            size,
            digest: Digest::of(b"hello"),
            registry: "r".into(),
            transport_failure: None,
        };
        let mut out = Vec::new();
        make(bytes.clone(), 5).read_to_end(&mut out).unwrap();
        assert_eq!(out, b"hello");
        let error = make(b"hellO".to_vec(), 5)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(error.to_string().contains("hashes to"), "{error}");
        let error = make(b"hell".to_vec(), 5)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(error.to_string().contains("ended after 4"), "{error}");
    }
}
