//! The blob upload protocol of the distribution spec: upload sessions, the monolithic and the
//! chunked `PUT`, and resuming a session after a failure.
//!
//! Pinned behaviour, each as the spec or the CNCF distribution registry does it:
//! - **Sessions.** `POST …/blobs/uploads/` opens a session (or mounts, with `?mount=&from=`,
//!   a 201 meaning the blob is there and nothing is to send), answering 202 with a
//!   `Location`; every later request goes to the newest `Location` the registry gave.
//! - **Monolithic.** One `PUT <location>?digest=` with the whole blob: two round trips.
//! - **Chunked.** When a registry refuses a single PUT (413), or asks for chunks
//!   (`OCI-Chunk-Min-Length`), the blob goes as `PATCH` chunks of 16 MiB (or the registry's
//!   minimum, when larger) with `Content-Range`, and a final empty `PUT <location>?digest=`.
//! - **Resume.** After a failure mid-upload, the session's `Range` (from `GET <location>`)
//!   says where to resume; `0-0` counts as nothing kept. The push stage
//!   ([`super::push`]) decides when to resume and when to start over.
//! - **Verification.** The `Docker-Content-Digest` a registry returns for a finished upload
//!   must be the digest kiln computed.
//!
//! These are methods of [`Registry`], returning its [`RegistryError`]: they are one part of
//! that client and share its authenticated requests and retries. A method whose body is a
//! stream answers `Ok(Err(message))` for a failure worth another try; its caller reopens the
//! stream and tries again.

use std::io::Read;

use super::client::{Attempt, Body, Registry, header};
use super::error::RegistryError;
use super::token::Scope;
use crate::oci::digest::Digest;

/// Chunk size for chunked uploads, unless the registry asks for more.
const CHUNK_SIZE: u64 = 16 << 20;

/// An open upload session.
#[derive(Clone, Debug)]
pub struct Session {
    pub location: String,
    /// `OCI-Chunk-Min-Length`: the registry takes chunks only, at least this long.
    pub min_chunk: Option<u64>,
}

impl Session {
    pub fn chunk_size(&self) -> u64 {
        self.min_chunk.map_or(CHUNK_SIZE, |min| min.max(CHUNK_SIZE))
    }
}

impl Registry {
    /// Open an upload session, mounting `digest` from `from` (another repository of this
    /// registry) when given. `Ok(None)` means the mount succeeded and nothing is to upload.
    pub fn start_upload(
        &self,
        repository: &str,
        mount: Option<(&Digest, &str)>,
    ) -> Result<Option<Session>, RegistryError> {
        let (path, scope) = match mount {
            Some((digest, from)) => (
                format!("/v2/{repository}/blobs/uploads/?mount={digest}&from={from}"),
                Scope::push(repository).with_pull_from(from),
            ),
            None => (
                format!("/v2/{repository}/blobs/uploads/"),
                Scope::push(repository),
            ),
        };
        let url = self.url(&path);
        let operation = format!("POST {path}");
        self.retry(&operation, || {
            let result = self.send("POST", &url, &scope, &[], Body::Empty)?;
            Ok(self.check(&operation, result, |response| {
                match response.status().as_u16() {
                    201 if mount.is_some() => Ok(Ok(None)),
                    202 => {
                        let location = header(&response, "location").ok_or_else(|| {
                            self.protocol(format!("{operation} answered 202 without a Location"))
                        })?;
                        let min_chunk = header(&response, "oci-chunk-min-length")
                            .and_then(|length| length.parse().ok());
                        Ok(Ok(Some(Session {
                            location: self.url(location),
                            min_chunk,
                        })))
                    }
                    _ => Ok(Err(response)),
                }
            }))
        })
    }

    /// Send a blob into `session` in one PUT. `Ok(false)` when the registry wants chunks.
    pub fn put_whole(
        &self,
        repository: &str,
        session: &Session,
        digest: &Digest,
        reader: &mut (dyn Read + Send),
        size: u64,
    ) -> Result<Result<bool, String>, RegistryError> {
        let url = with_query(&session.location, &format!("digest={digest}"));
        let operation = format!("the upload of {digest} to {repository}");
        let headers = [("Content-Type", "application/octet-stream".to_owned())];
        let result = self.send(
            "PUT",
            &url,
            &Scope::push(repository),
            &headers,
            Body::Stream(reader, size),
        )?;
        match self.check(&operation, result, |response| {
            match response.status().as_u16() {
                201 | 204 => {
                    self.check_digest_header(&response, digest, &operation)?;
                    Ok(Ok(true))
                }
                413 => Ok(Ok(false)),
                _ => Ok(Err(response)),
            }
        }) {
            Attempt::Done(done) => Ok(Ok(done)),
            Attempt::Retry(message) => Ok(Err(message)),
            Attempt::Fail(error) => Err(error),
        }
    }

    /// How many bytes the session holds (`Range: 0-N` → N+1), or `None` if it is gone.
    pub fn session_offset(
        &self,
        repository: &str,
        session: &mut Session,
    ) -> Result<Option<u64>, RegistryError> {
        let result = self.send(
            "GET",
            &session.location.clone(),
            &Scope::push(repository),
            &[],
            Body::Empty,
        )?;
        let Ok(response) = result else {
            return Ok(None);
        };
        if response.status().as_u16() != 204 && !response.status().is_success() {
            return Ok(None);
        }
        // The session continues at the Location the status answer gives (distribution's
        // `_state` token changes with it).
        if let Some(location) = header(&response, "location") {
            session.location = self.url(location);
        }
        // The distribution registry answers `0-0` for an empty session too (zot: `0--1`), so
        // `0-0` counts as nothing kept: resuming at byte 1 of an empty session fails for good.
        Ok(Some(
            header(&response, "range")
                .and_then(|range| range.split_once('-'))
                .and_then(|(_, end)| end.parse::<u64>().ok())
                .map_or(0, |end| if end == 0 { 0 } else { end + 1 }),
        ))
    }

    /// Send `length` bytes at `offset` as one PATCH; the session moves to the new Location.
    pub fn patch_chunk(
        &self,
        repository: &str,
        session: &mut Session,
        reader: &mut (dyn Read + Send),
        offset: u64,
        length: u64,
    ) -> Result<Result<(), String>, RegistryError> {
        let operation = format!("PATCH of bytes {offset}.. to {repository}");
        let headers = [
            ("Content-Type", "application/octet-stream".to_owned()),
            (
                "Content-Range",
                format!("{offset}-{}", offset + length.saturating_sub(1)),
            ),
        ];
        let location = session.location.clone();
        let result = self.send(
            "PATCH",
            &location,
            &Scope::push(repository),
            &headers,
            Body::Stream(reader, length),
        )?;
        match self.check(&operation, result, |response| {
            if response.status().as_u16() == 202 {
                if let Some(location) = header(&response, "location") {
                    session.location = self.url(location);
                }
                Ok(Ok(()))
            } else {
                Ok(Err(response))
            }
        }) {
            Attempt::Done(()) => Ok(Ok(())),
            Attempt::Retry(message) => Ok(Err(message)),
            Attempt::Fail(error) => Err(error),
        }
    }

    /// Close a chunked session with the blob's digest.
    pub fn finish_chunks(
        &self,
        repository: &str,
        session: &Session,
        digest: &Digest,
    ) -> Result<Result<(), String>, RegistryError> {
        let url = with_query(&session.location, &format!("digest={digest}"));
        let operation = format!("the upload of {digest} to {repository}");
        let result = self.send("PUT", &url, &Scope::push(repository), &[], Body::Empty)?;
        match self.check(&operation, result, |response| {
            match response.status().as_u16() {
                201 | 204 => {
                    self.check_digest_header(&response, digest, &operation)?;
                    Ok(Ok(()))
                }
                _ => Ok(Err(response)),
            }
        }) {
            Attempt::Done(()) => Ok(Ok(())),
            Attempt::Retry(message) => Ok(Err(message)),
            Attempt::Fail(error) => Err(error),
        }
    }
}

/// `location` with `query` added; a session's Location may carry a query of its own
/// (distribution's `_state`).
fn with_query(location: &str, query: &str) -> String {
    if location.contains('?') {
        format!("{location}&{query}")
    } else {
        format!("{location}?{query}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_encoding() {
        assert_eq!(
            with_query("http://r/u/1", "digest=d"),
            "http://r/u/1?digest=d"
        );
        assert_eq!(
            with_query("http://r/u/1?_state=x", "digest=d"),
            "http://r/u/1?_state=x&digest=d"
        );
    }
}
