//! Pushing an image graph to a registry repository.
//!
//! First the cheap case: when the repository already has the image (a `HEAD` of each tag, or
//! of the digest, answers with its digest) nothing is sent but the tags that are missing.
//! Otherwise, in an order where a tag never names an incomplete image: every blob (in
//! parallel), then the manifests of an index by digest, then the root under each tag. A blob the repository
//! has (`HEAD`) is skipped; a blob that lives in another repository of the same registry is
//! mounted (`POST ?mount=&from=`, which costs what opening an upload costs, so it is always
//! tried when a repository is known); the rest are uploaded (see `upload` for the protocol).
//! A failed upload is retried with back-off, resuming from the session's `Range` when the
//! registry kept part of it.
//!
//! Referrers (an image's SBOM) go after the image and its tags ([`push_referrer`]): their
//! blobs, then their manifest by digest. A registry that answers that PUT with `OCI-Subject`
//! lists them in its referrers API and nothing more is needed; for one that does not (the
//! CNCF distribution registry before v3), kiln keeps the distribution spec's referrers tag
//! schema: the image index at tag `sha256-<hex of the subject>` lists every referrer of that
//! subject, and kiln adds the artifact's descriptor (media type, digest, size,
//! `artifactType`, annotations) when it is not there yet. Two clients adding to one such
//! index at the same moment can lose one addition; the spec accepts that race, and a second
//! `kiln push` repairs it.

use std::io::{self, Read};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::client::{Registry, RegistryError};
use super::upload::Session;
use crate::http::RetryPolicy;
use crate::oci::digest::Digest;
use crate::oci::json::to_canonical_vec;
use crate::oci::spec::{Descriptor, Index, Manifest, media_type};
use crate::transport::{BlobSource, ImageGraph, TransportError};

/// What happened to each blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobOutcome {
    Present,
    Mounted,
    Uploaded,
}

/// Reports progress: called with a blob and the bytes of it sent so far.
pub trait PushProgress: Sync {
    fn started(&self, _blob: &Descriptor) {}
    fn advanced(&self, _blob: &Descriptor, _sent: u64) {}
    fn finished(&self, _blob: &Descriptor, _outcome: BlobOutcome) {}
}

/// No progress reports.
pub struct Silent;
impl PushProgress for Silent {}

#[derive(Clone, Debug, Default)]
pub struct PushReport {
    pub present: Vec<Digest>,
    pub mounted: Vec<Digest>,
    pub uploaded: Vec<Digest>,
    pub bytes_uploaded: u64,
}

/// Push options.
pub struct PushRequest<'a> {
    pub repository: &'a str,
    /// Tags for the root; with none, the root is pushed by digest only.
    pub tags: &'a [String],
    /// Another repository of the same registry to mount blobs from.
    pub mount_from: Option<&'a str>,
    /// Blobs sent at once.
    pub jobs: usize,
    pub first_retry_delay: Duration,
}

/// Push `graph`, reading blobs from `source`.
pub fn push(
    registry: &Registry,
    source: &dyn BlobSource,
    graph: &ImageGraph,
    request: &PushRequest<'_>,
    progress: &dyn PushProgress,
) -> Result<PushReport, TransportError> {
    // An image the repository already holds needs no blob sent; tags already naming it need
    // no manifest either. A registry guarantees a stored manifest's blobs are there.
    let root_digest = graph.root.digest;
    let root_digest_text = root_digest.to_string();
    let mut untagged = Vec::new();
    for tag in request.tags {
        if registry.manifest_digest(request.repository, tag)? != Some(root_digest) {
            untagged.push(tag.clone());
        }
    }
    let stored = (!request.tags.is_empty() && untagged.is_empty())
        || registry.manifest_digest(request.repository, &root_digest_text)? == Some(root_digest);
    if stored {
        let (descriptor, bytes) = graph
            .documents
            .last()
            .expect("a walked graph has its root document");
        let media_type = content_type(descriptor, bytes);
        for tag in &untagged {
            registry.put_manifest(request.repository, tag, &media_type, bytes, &root_digest)?;
        }
        for blob in &graph.blobs {
            progress.finished(blob, BlobOutcome::Present);
        }
        return Ok(PushReport {
            present: graph.blobs.iter().map(|blob| blob.digest).collect(),
            ..PushReport::default()
        });
    }
    let report = Mutex::new(PushReport::default());
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<TransportError>> = Mutex::new(None);
    let jobs = request.jobs.clamp(1, 16).min(graph.blobs.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    if failure
                        .lock()
                        .map(|failed| failed.is_some())
                        .unwrap_or(true)
                    {
                        return;
                    }
                    let index = next.fetch_add(1, Ordering::SeqCst);
                    let Some(blob) = graph.blobs.get(index) else {
                        return;
                    };
                    progress.started(blob);
                    match push_blob(registry, source, blob, request, progress) {
                        Ok(outcome) => {
                            progress.finished(blob, outcome);
                            let mut report = report.lock().unwrap_or_else(|p| p.into_inner());
                            match outcome {
                                BlobOutcome::Present => report.present.push(blob.digest),
                                BlobOutcome::Mounted => report.mounted.push(blob.digest),
                                BlobOutcome::Uploaded => {
                                    report.uploaded.push(blob.digest);
                                    report.bytes_uploaded =
                                        report.bytes_uploaded.saturating_add(blob.size);
                                }
                            }
                        }
                        Err(error) => {
                            let mut failed = failure.lock().unwrap_or_else(|p| p.into_inner());
                            failed.get_or_insert(error);
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(error) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(error);
    }
    let (root, children) = graph
        .documents
        .split_last()
        .expect("a walked graph has its root document");
    for (descriptor, bytes) in children {
        registry.put_manifest(
            request.repository,
            &descriptor.digest.to_string(),
            &content_type(descriptor, bytes),
            bytes,
            &descriptor.digest,
        )?;
    }
    let (descriptor, bytes) = root;
    let media_type = content_type(descriptor, bytes);
    if request.tags.is_empty() {
        registry.put_manifest(
            request.repository,
            &descriptor.digest.to_string(),
            &media_type,
            bytes,
            &descriptor.digest,
        )?;
    }
    for tag in request.tags {
        registry.put_manifest(
            request.repository,
            tag,
            &media_type,
            bytes,
            &descriptor.digest,
        )?;
    }
    Ok(report.into_inner().unwrap_or_else(|p| p.into_inner()))
}

/// How the registry lists a pushed referrer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReferrersListing {
    /// The registry answered `OCI-Subject`: its referrers API lists the artifact.
    Api,
    /// No referrers API: kiln added the artifact to the referrers index at this tag.
    TagAdded(String),
    /// No referrers API, and the referrers index at this tag already listed the artifact.
    TagListed(String),
}

/// One referrer pushed.
#[derive(Clone, Debug)]
pub struct ReferrerReport {
    /// The artifact manifest's digest.
    pub digest: Digest,
    pub artifact_type: String,
    /// The manifest it refers to.
    pub subject: Digest,
    pub listing: ReferrersListing,
    /// Its blobs: sent, or already there.
    pub blobs: PushReport,
}

/// Push `graph`, an artifact manifest whose `subject` the repository already holds, by
/// digest (the request's tags are not used), and make sure the registry lists it among the
/// subject's referrers.
pub fn push_referrer(
    registry: &Registry,
    source: &dyn BlobSource,
    graph: &ImageGraph,
    request: &PushRequest<'_>,
    progress: &dyn PushProgress,
) -> Result<ReferrerReport, TransportError> {
    let invalid = |message: String| TransportError::Invalid {
        location: source.describe(),
        message,
    };
    let (descriptor, bytes) = graph
        .documents
        .last()
        .ok_or_else(|| invalid(format!("referrer {} has no manifest", graph.root.digest)))?;
    let manifest: Manifest =
        serde_json::from_slice(bytes).map_err(|source_error| TransportError::Json {
            location: source.describe(),
            what: "artifact manifest",
            digest: descriptor.digest,
            source: source_error,
        })?;
    let subject = manifest
        .subject
        .as_ref()
        .ok_or_else(|| invalid(format!("referrer {} names no subject", descriptor.digest)))?
        .digest;
    // As the referrers API reports it: `artifactType`, else the config's media type.
    let artifact_type = manifest
        .artifact_type
        .clone()
        .unwrap_or_else(|| manifest.config.media_type.clone());
    let mut blobs = PushReport::default();
    for blob in &graph.blobs {
        progress.started(blob);
        let outcome = push_blob(registry, source, blob, request, progress)?;
        progress.finished(blob, outcome);
        match outcome {
            BlobOutcome::Present => blobs.present.push(blob.digest),
            BlobOutcome::Mounted => blobs.mounted.push(blob.digest),
            BlobOutcome::Uploaded => {
                blobs.uploaded.push(blob.digest);
                blobs.bytes_uploaded = blobs.bytes_uploaded.saturating_add(blob.size);
            }
        }
    }
    let media_type = content_type(descriptor, bytes);
    let put = registry.put_manifest(
        request.repository,
        &descriptor.digest.to_string(),
        &media_type,
        bytes,
        &descriptor.digest,
    )?;
    let listing = if put.subject == Some(subject) {
        ReferrersListing::Api
    } else {
        let mut entry = Descriptor::new(media_type, descriptor.digest, descriptor.size);
        entry.artifact_type = Some(artifact_type.clone());
        entry.annotations = manifest.annotations.clone();
        add_to_referrers_tag(registry, request.repository, &subject, entry)?
    };
    Ok(ReferrerReport {
        digest: descriptor.digest,
        artifact_type,
        subject,
        listing,
        blobs,
    })
}

/// The tag of the referrers index of `subject` (distribution spec: `<alg>-<hex>`).
pub fn referrers_tag(subject: &Digest) -> String {
    format!("sha256-{}", subject.hex())
}

/// Add `entry` to the referrers index at `subject`'s referrers tag, unless it lists it.
fn add_to_referrers_tag(
    registry: &Registry,
    repository: &str,
    subject: &Digest,
    entry: Descriptor,
) -> Result<ReferrersListing, TransportError> {
    let tag = referrers_tag(subject);
    let location = format!("docker://{}/{repository}:{tag}", registry.host);
    let mut index = match registry.find_manifest(repository, &tag)? {
        None => Index {
            schema_version: 2,
            media_type: Some(media_type::OCI_INDEX.to_owned()),
            manifests: Vec::new(),
            annotations: Default::default(),
            extra: Default::default(),
        },
        Some(fetched) if media_type::is_index(&fetched.media_type) => {
            serde_json::from_slice(&fetched.bytes).map_err(|source| TransportError::Json {
                location: location.clone(),
                what: "referrers index",
                digest: fetched.digest,
                source,
            })?
        }
        Some(fetched) => {
            return Err(TransportError::Invalid {
                location,
                message: format!(
                    "the tag holds a {}, not a referrers index; kiln leaves it as it is",
                    fetched.media_type
                ),
            });
        }
    };
    if index
        .manifests
        .iter()
        .any(|listed| listed.digest == entry.digest)
    {
        return Ok(ReferrersListing::TagListed(tag));
    }
    index.manifests.push(entry);
    let bytes = to_canonical_vec(&index).map_err(|error| TransportError::Invalid {
        location: location.clone(),
        message: format!("cannot encode the referrers index: {error}"),
    })?;
    registry.put_manifest(
        repository,
        &tag,
        media_type::OCI_INDEX,
        &bytes,
        &Digest::of(&bytes),
    )?;
    Ok(ReferrersListing::TagAdded(tag))
}

/// The Content-Type of a manifest: the `mediaType` its own bytes declare (which registries
/// check the header against), else its descriptor's.
fn content_type(descriptor: &Descriptor, bytes: &[u8]) -> String {
    super::client::media_type_of(bytes).unwrap_or_else(|| descriptor.media_type.clone())
}

/// Counts what passes, for progress.
struct Counting<'a, R> {
    inner: R,
    sent: u64,
    blob: &'a Descriptor,
    progress: &'a dyn PushProgress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.sent += read as u64;
        self.progress.advanced(self.blob, self.sent);
        Ok(read)
    }
}

fn open_at<'s>(
    source: &'s dyn BlobSource,
    blob: &Descriptor,
    offset: u64,
) -> Result<Box<dyn Read + Send + 's>, TransportError> {
    let mut reader = source.open_blob(blob)?;
    if offset > 0 {
        let skipped =
            io::copy(&mut (&mut reader).take(offset), &mut io::sink()).map_err(|error| {
                TransportError::Invalid {
                    location: source.describe(),
                    message: format!("reading blob {}: {error}", blob.digest),
                }
            })?;
        if skipped != offset {
            return Err(TransportError::Invalid {
                location: source.describe(),
                message: format!("blob {} ended before byte {offset}", blob.digest),
            });
        }
    }
    Ok(reader)
}

fn push_blob(
    registry: &Registry,
    source: &dyn BlobSource,
    blob: &Descriptor,
    request: &PushRequest<'_>,
    progress: &dyn PushProgress,
) -> Result<BlobOutcome, TransportError> {
    let repository = request.repository;
    if registry.blob_size(repository, &blob.digest)?.is_some() {
        return Ok(BlobOutcome::Present);
    }
    let mount_from = request
        .mount_from
        .or_else(|| {
            source
                .registry_repository()
                .filter(|(host, _)| *host == registry.host)
                .map(|(_, repository)| repository)
        })
        .filter(|from| *from != repository);
    let mut session: Option<Session> = None;
    let mut chunked = false;
    let mut offset = 0u64;
    // The registry's policy, run by hand: a 413 is not an attempt, and the session's state is
    // asked for between attempts.
    let retry = RetryPolicy::registry().with_first_delay(request.first_retry_delay);
    let mut last_message = String::new();
    let mut attempt = 0;
    while attempt < retry.attempts {
        attempt += 1;
        let current = match session.take() {
            Some(current) => current,
            None => {
                offset = 0;
                let mount = mount_from.map(|from| (&blob.digest, from));
                let started = match registry.start_upload(repository, mount) {
                    // A token service that will not grant pull on the other repository:
                    // upload instead, as Docker does.
                    Err(RegistryError::Unauthorized { .. }) if mount.is_some() => {
                        registry.start_upload(repository, None)?
                    }
                    other => other?,
                };
                match started {
                    None => return Ok(BlobOutcome::Mounted),
                    Some(started) => {
                        chunked |= started.min_chunk.is_some();
                        started
                    }
                }
            }
        };
        let mut current = current;
        let result = if !chunked && offset == 0 {
            let mut reader = Counting {
                inner: open_at(source, blob, 0)?,
                sent: 0,
                blob,
                progress,
            };
            match registry.put_whole(repository, &current, &blob.digest, &mut reader, blob.size)? {
                Ok(true) => return Ok(BlobOutcome::Uploaded),
                Ok(false) => {
                    // 413: the registry takes this blob only in chunks; not a failed attempt.
                    chunked = true;
                    attempt -= 1;
                    session = Some(current);
                    continue;
                }
                Err(message) => Err(message),
            }
        } else {
            send_chunks(
                registry,
                source,
                blob,
                repository,
                &mut current,
                offset,
                progress,
            )?
        };
        match result {
            Ok(()) => return Ok(BlobOutcome::Uploaded),
            Err(message) => last_message = message,
        }
        if attempt == retry.attempts {
            break;
        }
        std::thread::sleep(retry.delay_after(attempt));
        // Resume where the registry says the session stands; a session it forgot starts over.
        match registry.session_offset(repository, &mut current)? {
            Some(kept) if kept > 0 && kept < blob.size => {
                offset = kept;
                chunked = true;
                session = Some(current);
            }
            Some(0) => {
                offset = 0;
                session = Some(current);
            }
            _ => session = None,
        }
    }
    Err(RegistryError::GaveUp {
        registry: registry.host.clone(),
        operation: format!("the upload of {} to {repository}", blob.digest),
        attempts: retry.attempts,
        message: last_message,
    }
    .into())
}

/// Send the blob from `offset` as PATCH chunks, then close the session.
fn send_chunks(
    registry: &Registry,
    source: &dyn BlobSource,
    blob: &Descriptor,
    repository: &str,
    session: &mut Session,
    offset: u64,
    progress: &dyn PushProgress,
) -> Result<Result<(), String>, TransportError> {
    let chunk = session.chunk_size();
    let mut reader = Counting {
        inner: open_at(source, blob, offset)?,
        sent: offset,
        blob,
        progress,
    };
    let mut position = offset;
    while position < blob.size {
        let length = chunk.min(blob.size - position);
        let mut part = (&mut reader).take(length);
        if let Err(message) =
            registry.patch_chunk(repository, session, &mut part, position, length)?
        {
            return Ok(Err(message));
        }
        position += length;
    }
    Ok(registry.finish_chunks(repository, session, &blob.digest)?)
}
