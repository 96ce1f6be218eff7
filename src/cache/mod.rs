//! The shared build cache: store outputs kept in an OCI registry, signed, so a CI fleet (or a
//! team) builds each output once and every other machine substitutes it, as Nix's binary
//! caches do, on a registry every team already runs (GHCR, ECR, Harbor, GitLab, the CNCF
//! distribution registry, zot, Artifactory).
//!
//! ## Configuration (environment, per machine)
//!
//! - `KILN_CACHE`: caches asked in order, comma-separated, each `oci://HOST[:PORT]/REPOSITORY`.
//! - `KILN_CACHE_TRUSTED_KEYS`: public keys `NAME:BASE64`, space-separated; an entry is used
//!   only with a valid signature by one of them.
//! - `KILN_CACHE_SECRET_KEY_FILE`: when set, what a build makes is signed with this key and
//!   pushed to the first cache. Keys: `kiln cache key generate` ([`key`]).
//! - `KILN_CACHE_TIMEOUT`: seconds a cache may keep kiln waiting (to connect, at most 5, or
//!   for the next bytes of an answer) before it is taken for down; 30 by default.
//!
//! Registries are reached as `kiln push` reaches them: the same credentials (Docker and podman
//! auth files, helpers), HTTPS, plain HTTP only for loopback (`localhost`, 127.0.0.0/8).
//!
//! ## One entry per output
//!
//! Each store output `<hash>-<name>` is one OCI artifact in the repository, under the tag
//! [`tag`]: the store name with every character a tag may not hold (`+`, `?`, `=`) made `_`
//! and cut at 128 characters. The 32-character hash leads and starts with a digit or a
//! lower-case letter, so every store name has a valid tag, and the name after it keeps tags
//! readable for people cleaning the repository. The tag is only where to look: the entry's
//! config names the exact store name, which must be the one asked for. No listing of the
//! repository and no referrers API is needed: a lookup is one `GET` of the tag's manifest, and
//! a miss's 404 is read to its end so that the run's lookups share one connection (against a
//! remote cache, one TLS handshake per run rather than per output).
//!
//! ```text
//! manifest  application/vnd.oci.image.manifest.v1+json
//!   artifactType  application/vnd.kiln.store-output.v1
//!   annotations   dev.kiln.store-name: <hash>-<name>
//!   config  application/vnd.kiln.store-output.config.v1+json     (EntryConfig, JSON)
//!   layers  [application/vnd.kiln.nar.v1+zstd]                   (the output)
//! ```
//!
//! The config ([`EntryConfig`], canonical JSON): `schema` (`kiln-cache-entry/1`),
//! `store_name`, `kind`, `recipe` (the whole recipe, for people reading it; not trusted),
//! `recipe_hash` (`sha256:` + hex of the recipe's canonical JSON), `nar_hash` (SRI),
//! `nar_size`, and `signatures`, `[{"key": NAME, "sig": BASE64}]`, each over the fingerprint
//! [`key::fingerprint`] of store name, NAR hash, NAR size and recipe hash.
//!
//! The output is its NAR (Nix's archive, [`crate::nar`]), compressed with kiln's pinned zstd
//! (level 3, multi-threaded mode: the same bytes on every machine). NAR rather than tar: a
//! tree has exactly one NAR, and its sha256 is the NAR hash the store already records and
//! `kiln store verify` checks, so what is signed is checked while the blob is unpacked, with
//! no second format to canonicalise. Blobs are streamed both ways: pushed from a spooled file
//! in the store's `tmp/`, unpacked while downloaded; no output is held in memory.
//!
//! ## Substituting
//!
//! Before building an output the store asks [`Cache`] (a [`Substituter`]) under the output's
//! lock and the build's gc guard, as a build would be made, into the output's folder in
//! `tmp/`. An entry is used when: its config names the store name asked for and its recipe
//! hash is the recipe's; a trusted key signed its fingerprint; its blob has the digest and
//! size of its descriptor; the blob is a valid NAR whose sha256 and size are the signed NAR
//! hash; and the store, hashing the unpacked tree again to publish it, finds that hash too.
//! Anything else is refused with one message naming the cache, the reference and why; what was
//! unpacked is removed and the output is built. A cache that cannot be reached, refuses
//! kiln's credentials, answers 5xx after the retries, times out, or drops the connection in
//! the middle of a blob is reported once and not asked again for the rest of the run: what
//! failed there is the connection, not the entry, and every later output would fail the same
//! way. (A blob whose complete answer has the wrong bytes is a refused entry.)
//!
//! ## Uploading
//!
//! With a secret key, each output built here is pushed to the first cache once published: a
//! `HEAD` of its tag first (an output already there costs nothing more), then its blobs (each
//! `HEAD` first, as `kiln push` does), then the manifest under the tag. A failure is a warning;
//! the build has succeeded already.

pub mod key;

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use self::key::{PublicKey, SecretKey, Signature};
use crate::diagnostic::{Hint, PathError};
use crate::http::AgentOptions;
use crate::nar::{NarError, NarHash, unpack_nar, write_nar};
use crate::oci::compression::{Compression, Compressor, compression_threads};
use crate::oci::digest::{Digest, HashingReader, HashingWriter};
use crate::oci::json::to_canonical_vec;
use crate::oci::spec::{Descriptor, Manifest, media_type};
use crate::registry::client::{ClientOptions, Registry, RegistryError, VerifiedBlob};
use crate::registry::push::{PushRequest, Silent, push};
use crate::store::{Expected, OutputKind, Recipe, Store, StoreError, StoreName, Substituter};
use crate::transport::{BlobSource, ImageGraph, TransportError};

/// The manifest's `artifactType`.
pub const ARTIFACT_TYPE: &str = "application/vnd.kiln.store-output.v1";
/// The config blob's media type.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.kiln.store-output.config.v1+json";
/// The output's blob: its NAR, zstd-compressed.
pub const NAR_MEDIA_TYPE: &str = "application/vnd.kiln.nar.v1+zstd";
/// The config's `schema`.
pub const ENTRY_SCHEMA: &str = "kiln-cache-entry/1";
/// The manifest annotation that names the store output.
pub const STORE_NAME_ANNOTATION: &str = "dev.kiln.store-name";
/// The largest config kiln reads (a recipe is a few KiB).
const CONFIG_LIMIT: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("KILN_CACHE: `{text}` is not oci://HOST[:PORT]/REPOSITORY: {reason}")]
    Location { text: String, reason: &'static str },
    #[error("KILN_CACHE_TRUSTED_KEYS")]
    TrustedKeys(#[source] key::KeyError),
    #[error("cannot read the secret key {}", .path.display())]
    SecretKeyFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the secret key {}", .path.display())]
    SecretKey {
        path: PathBuf,
        #[source]
        source: key::KeyError,
    },
    #[error("KILN_CACHE_TIMEOUT: `{text}` is not a whole number of seconds above 0")]
    Timeout { text: String },
    #[error("KILN_CACHE_SECRET_KEY_FILE is set, and KILN_CACHE names no cache to push to")]
    NoCacheToPush,
    #[error("{0} is not in the store")]
    NotInStore(PathBuf),
    #[error(
        "{name}: its record's recipe does not hash to its name, so it cannot be shared (run `kiln store verify`)"
    )]
    RecipeName { name: String },
    #[error(
        "{name} hashes to {got}, and the store recorded {expected}: it is corrupt and is not pushed"
    )]
    Corrupt {
        name: String,
        expected: String,
        got: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Nar(#[from] NarError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Path(#[from] PathError),
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
    #[error("cannot encode the cache entry of {name}: {source}")]
    Encode {
        name: String,
        #[source]
        source: serde_json::Error,
    },
}

impl Hint for CacheError {
    fn hint(&self) -> Option<String> {
        match self {
            CacheError::Location { .. } => {
                Some("e.g. KILN_CACHE=oci://ghcr.io/team/kiln-cache".to_owned())
            }
            CacheError::TrustedKeys(_) => Some(
                "KILN_CACHE_TRUSTED_KEYS holds what `kiln cache key generate` printed, NAME:BASE64, space-separated".to_owned(),
            ),
            CacheError::SecretKey { .. } | CacheError::SecretKeyFile { .. } => Some(
                "make one with `kiln cache key generate --name NAME --secret-key-file FILE`"
                    .to_owned(),
            ),
            CacheError::NoCacheToPush => {
                Some("set KILN_CACHE=oci://HOST/REPOSITORY, or unset KILN_CACHE_SECRET_KEY_FILE".to_owned())
            }
            _ => None,
        }
    }
}

/// One cache: a repository of a registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheLocation {
    pub host: String,
    pub repository: String,
}

impl std::str::FromStr for CacheLocation {
    type Err = CacheError;

    fn from_str(text: &str) -> Result<Self, CacheError> {
        let error = |reason| CacheError::Location {
            text: text.to_owned(),
            reason,
        };
        let rest = text
            .trim()
            .strip_prefix("oci://")
            .ok_or_else(|| error("it must start with oci://"))?;
        let (host, repository) = rest
            .split_once('/')
            .ok_or_else(|| error("it names no repository"))?;
        let repository = repository.trim_end_matches('/');
        if host.is_empty() || host.contains('@') {
            return Err(error("the host is empty or holds credentials"));
        }
        if repository.is_empty()
            || !repository.split('/').all(|part| {
                !part.is_empty()
                    && part.bytes().all(|byte| {
                        byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"._-".contains(&byte)
                    })
            })
        {
            return Err(error(
                "the repository must be lower-case letters, digits, `.`, `_`, `-` and `/`",
            ));
        }
        Ok(CacheLocation {
            host: host.to_owned(),
            repository: repository.to_owned(),
        })
    }
}

impl std::fmt::Display for CacheLocation {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "oci://{}/{}", self.host, self.repository)
    }
}

/// The tag of a store output's entry (see the module documentation).
pub fn tag(name: &StoreName) -> String {
    name.basename()
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || "._-".contains(character) {
                character
            } else {
                '_'
            }
        })
        .take(128)
        .collect()
}

/// `sha256:` and the hex sha256 of a recipe's canonical JSON.
pub fn recipe_hash(recipe: &serde_json::Value) -> String {
    let bytes = to_canonical_vec(recipe).unwrap_or_default();
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)))
}

/// An entry's config blob.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EntryConfig {
    pub schema: String,
    pub store_name: String,
    pub kind: OutputKind,
    pub recipe_hash: String,
    pub nar_hash: String,
    pub nar_size: u64,
    pub recipe: serde_json::Value,
    #[serde(default)]
    pub signatures: Vec<Signature>,
}

impl EntryConfig {
    pub fn fingerprint(&self) -> String {
        key::fingerprint(
            &self.store_name,
            &self.nar_hash,
            self.nar_size,
            &self.recipe_hash,
        )
    }
}

/// What the environment configures.
#[derive(Debug)]
pub struct Settings {
    pub caches: Vec<CacheLocation>,
    pub trusted: Vec<PublicKey>,
    pub secret: Option<SecretKey>,
    /// How long a cache may leave kiln waiting for a connection or for the next bytes of an
    /// answer before it is taken for down (`KILN_CACHE_TIMEOUT`, seconds; 30 by default):
    /// a cache is an optimisation, so kiln gives up on it sooner than on a registry it pushes
    /// to.
    pub timeout: Duration,
}

/// The cache's timeout when `KILN_CACHE_TIMEOUT` does not set one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Read a secret key file.
pub fn read_secret_key(path: &Path) -> Result<SecretKey, CacheError> {
    let text = std::fs::read_to_string(path).map_err(|source| CacheError::SecretKeyFile {
        path: path.to_owned(),
        source,
    })?;
    SecretKey::parse(&text).map_err(|source| CacheError::SecretKey {
        path: path.to_owned(),
        source,
    })
}

impl Settings {
    /// `KILN_CACHE`, `KILN_CACHE_TRUSTED_KEYS`, `KILN_CACHE_SECRET_KEY_FILE`,
    /// `KILN_CACHE_TIMEOUT`; `None` when no cache is configured.
    pub fn from_env() -> Result<Option<Self>, CacheError> {
        let variable = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.trim().is_empty())
        };
        let caches = variable("KILN_CACHE")
            .map(|text| {
                text.split(',')
                    .filter(|part| !part.trim().is_empty())
                    .map(str::parse)
                    .collect::<Result<Vec<CacheLocation>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        let secret = variable("KILN_CACHE_SECRET_KEY_FILE")
            .map(|path| read_secret_key(Path::new(&path)))
            .transpose()?;
        if caches.is_empty() {
            return match secret {
                Some(_) => Err(CacheError::NoCacheToPush),
                None => Ok(None),
            };
        }
        let trusted = variable("KILN_CACHE_TRUSTED_KEYS")
            .map(|text| PublicKey::parse_list(&text))
            .transpose()
            .map_err(CacheError::TrustedKeys)?
            .unwrap_or_default();
        let timeout = match variable("KILN_CACHE_TIMEOUT") {
            None => DEFAULT_TIMEOUT,
            Some(text) => match text.trim().parse::<u64>() {
                Ok(seconds) if seconds > 0 => Duration::from_secs(seconds),
                _ => return Err(CacheError::Timeout { text }),
            },
        };
        Ok(Some(Settings {
            caches,
            trusted,
            secret,
            timeout,
        }))
    }
}

enum RemoteState {
    Untried,
    Up(Arc<Registry>),
    Down,
}

struct Remote {
    location: CacheLocation,
    state: Mutex<RemoteState>,
}

/// Why one cache did not give an output.
enum Failure {
    /// The cache is not usable this run (down, refusing us, timing out).
    Unreachable(String),
    /// This entry is not used.
    Refused(String),
}

/// The download of `blob` (of `descriptor`) failed in the connection, not in its bytes (reset,
/// timed out, cut short of its length): the cache is not usable this run, as when it cannot
/// be reached, rather than this entry refused; asking it for the next output would only fail
/// the same way, once per output.
fn broke_off(blob: &VerifiedBlob, descriptor: &Descriptor, timeout: Duration) -> Option<Failure> {
    blob.transport_failure().map(|(kind, failure)| {
        let why = if kind == io::ErrorKind::TimedOut {
            format!(
                "nothing more came for {} s (KILN_CACHE_TIMEOUT)",
                timeout.as_secs()
            )
        } else {
            failure.to_owned()
        };
        Failure::Unreachable(format!(
            "the download of blob {} broke off after {} of its {} bytes: {why}",
            descriptor.digest,
            blob.bytes_read(),
            descriptor.size
        ))
    })
}

/// How a cache reports, on stderr (a warning, or a status line).
pub trait CacheReporter: Send + Sync {
    fn warn(&self, message: &str);
    fn status(&self, message: &str);
}

/// The caches of one run: asked before building, given what was built.
pub struct Cache {
    remotes: Vec<Remote>,
    trusted: Vec<PublicKey>,
    secret: Option<SecretKey>,
    options: ClientOptions,
    reporter: Box<dyn CacheReporter>,
}

/// What pushing one output did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// The cache had its tag already.
    Present,
    /// Sent: the bytes of the blobs uploaded.
    Uploaded { bytes: u64, digest: Digest },
}

impl Cache {
    pub fn new(settings: Settings, reporter: Box<dyn CacheReporter>) -> Self {
        // The first lookup comes once the project is planned: the roots are read meanwhile.
        crate::http::tls::read_roots_in_background();
        let mut options = ClientOptions::from_env(false);
        // A cache is an optimisation: give up on it sooner than on a registry being pushed to.
        options.agent = AgentOptions {
            connect_timeout: settings.timeout.min(Duration::from_secs(5)),
            read_timeout: settings.timeout,
            ..AgentOptions::registry()
        };
        options.first_retry_delay = Duration::from_millis(100);
        if let Some(delay) = std::env::var("KILN_TEST_RETRY_DELAY_MS")
            .ok()
            .and_then(|text| text.parse().ok())
        {
            options.first_retry_delay = Duration::from_millis(delay);
        }
        Cache {
            remotes: settings
                .caches
                .into_iter()
                .map(|location| Remote {
                    location,
                    state: Mutex::new(RemoteState::Untried),
                })
                .collect(),
            trusted: settings.trusted,
            secret: settings.secret,
            options,
            reporter,
        }
    }

    /// From the environment, or `None` when no cache is configured.
    pub fn from_env(reporter: Box<dyn CacheReporter>) -> Result<Option<Self>, CacheError> {
        Ok(Settings::from_env()?.map(|settings| Cache::new(settings, reporter)))
    }

    pub fn can_push(&self) -> bool {
        self.secret.is_some()
    }

    /// The registry of cache `index`, connected on first use; `None` once it is down.
    fn registry(&self, index: usize) -> Option<Arc<Registry>> {
        let remote = self.remotes.get(index)?;
        let mut state = remote
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match &*state {
            RemoteState::Up(registry) => return Some(registry.clone()),
            RemoteState::Down => return None,
            RemoteState::Untried => {}
        }
        match Registry::connect(
            &remote.location.host,
            &remote.location.repository,
            &self.options,
        ) {
            Ok(registry) => {
                let registry = Arc::new(registry);
                *state = RemoteState::Up(registry.clone());
                Some(registry)
            }
            Err(error) => {
                *state = RemoteState::Down;
                self.unreachable(&remote.location, &error.to_string());
                None
            }
        }
    }

    fn unreachable(&self, location: &CacheLocation, message: &str) {
        self.reporter.warn(&format!(
            "cache {location} unreachable: {message}; building locally (kiln asks it no more in this run)"
        ));
    }

    fn mark_down(&self, index: usize, message: &str) {
        let Some(remote) = self.remotes.get(index) else {
            return;
        };
        let mut state = remote
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !matches!(*state, RemoteState::Down) {
            *state = RemoteState::Down;
            self.unreachable(&remote.location, message);
        }
    }

    /// Look for `recipe`'s output in cache `index` and unpack it at `temp`.
    fn fetch_from(
        &self,
        registry: &Registry,
        location: &CacheLocation,
        recipe: &Recipe,
        temp: &Path,
    ) -> Result<Option<Expected>, Failure> {
        let name = recipe.name();
        let tag = tag(name);
        let repository = &location.repository;
        let timeout = self.options.agent.read_timeout;
        let registry_failure = |error: RegistryError| match error {
            RegistryError::DigestMismatch { .. } | RegistryError::Protocol { .. } => {
                Failure::Refused(error.to_string())
            }
            other => Failure::Unreachable(other.to_string()),
        };
        let Some(fetched) = registry
            .find_manifest(repository, &tag)
            .map_err(registry_failure)?
        else {
            return Ok(None);
        };
        let refused = |message: String| Failure::Refused(message);
        let manifest: Manifest = serde_json::from_slice(&fetched.bytes)
            .map_err(|error| refused(format!("its manifest is not valid JSON: {error}")))?;
        if manifest.config.media_type != CONFIG_MEDIA_TYPE {
            return Err(refused(format!(
                "it is not a kiln cache entry (its config is {})",
                manifest.config.media_type
            )));
        }
        let [layer] = manifest.layers.as_slice() else {
            return Err(refused(format!(
                "it has {} blobs, and an entry has one",
                manifest.layers.len()
            )));
        };
        if layer.media_type != NAR_MEDIA_TYPE {
            return Err(refused(format!("its blob is {}", layer.media_type)));
        }
        if manifest.config.size > CONFIG_LIMIT {
            return Err(refused(format!(
                "its config is {} bytes",
                manifest.config.size
            )));
        }
        let mut config_bytes = Vec::new();
        let mut config_blob = registry
            .open_blob(repository, &manifest.config.digest, manifest.config.size)
            .map_err(registry_failure)?;
        if let Err(error) = config_blob.read_to_end(&mut config_bytes) {
            return Err(broke_off(&config_blob, &manifest.config, timeout)
                .unwrap_or_else(|| refused(format!("reading its config: {error}"))));
        }
        let config: EntryConfig = serde_json::from_slice(&config_bytes)
            .map_err(|error| refused(format!("its config is not valid: {error}")))?;
        if config.schema != ENTRY_SCHEMA {
            return Err(refused(format!(
                "its config is schema `{}`, and kiln reads {ENTRY_SCHEMA}",
                config.schema
            )));
        }
        if config.store_name != name.basename() {
            return Err(refused(format!(
                "it is the entry of {}, not of {}",
                config.store_name,
                name.basename()
            )));
        }
        let wanted_recipe = recipe_hash(recipe.document());
        if config.recipe_hash != wanted_recipe {
            return Err(refused(format!(
                "its recipe hash is {}, and the recipe here hashes to {wanted_recipe}",
                config.recipe_hash
            )));
        }
        let signer =
            key::check_signatures(&config.fingerprint(), &config.signatures, &self.trusted)
                .map_err(|untrusted| refused(untrusted.to_string()))?;
        let signer = signer.name.clone();
        let mut blob = registry
            .open_blob(repository, &layer.digest, layer.size)
            .map_err(registry_failure)?;
        let unpacked = (|| -> Result<NarHash, String> {
            let decoder = zstd::stream::read::Decoder::new(&mut blob)
                .map_err(|error| format!("its blob is not zstd: {error}"))?;
            let mut hashing = HashingReader::new(decoder);
            unpack_nar(&mut hashing, temp).map_err(|error| {
                let mut message = format!("its blob {}: {error}", layer.digest);
                let mut source = std::error::Error::source(&error);
                while let Some(inner) = source {
                    message.push_str(&format!(": {inner}"));
                    source = inner.source();
                }
                message
            })?;
            let mut extra = [0u8; 1];
            if hashing
                .read(&mut extra)
                .map_err(|error| format!("its blob {}: {error}", layer.digest))?
                != 0
            {
                return Err(format!("its blob {} has bytes after its NAR", layer.digest));
            }
            let (_, digest, size) = hashing.finish();
            Ok(NarHash { digest, size })
        })()
        .map_err(|message| broke_off(&blob, layer, timeout).unwrap_or_else(|| refused(message)))?;
        // The rest of the blob (the zstd frame's end), so its digest and size are checked.
        if let Err(error) = io::copy(&mut blob, &mut io::sink()) {
            return Err(broke_off(&blob, layer, timeout)
                .unwrap_or_else(|| refused(format!("its blob {}: {error}", layer.digest))));
        }
        if unpacked.sri() != config.nar_hash || unpacked.size != config.nar_size {
            return Err(refused(format!(
                "its content has NAR hash {} ({} bytes), and it is signed for {} ({} bytes)",
                unpacked.sri(),
                unpacked.size,
                config.nar_hash,
                config.nar_size
            )));
        }
        self.reporter.status(&format!(
            "substituted {} from {location} (signed by {signer})",
            name.basename()
        ));
        Ok(Some(Expected {
            nar_hash: config.nar_hash,
            nar_size: config.nar_size,
        }))
    }

    /// Push the output `name` of the store (published at `path`) to the first cache.
    pub fn push_output(&self, store: &Store, name: &StoreName) -> Result<Pushed, CacheError> {
        let Some(secret) = &self.secret else {
            return Err(CacheError::NoCacheToPush);
        };
        let Some(remote) = self.remotes.first() else {
            return Err(CacheError::NoCacheToPush);
        };
        let registry = match self.registry(0) {
            Some(registry) => registry,
            None => {
                return Err(CacheError::Registry(RegistryError::Unreachable {
                    registry: remote.location.host.clone(),
                    message: "it did not answer earlier in this run".to_owned(),
                }));
            }
        };
        let repository = &remote.location.repository;
        let tag = tag(name);
        if registry.manifest_digest(repository, &tag)?.is_some() {
            return Ok(Pushed::Present);
        }
        let record = store.record(name)?;
        if StoreName::new(&record.recipe, "x").hash() != name.hash() {
            return Err(CacheError::RecipeName {
                name: name.basename(),
            });
        }
        let path = store.path(name);
        // Spool the compressed NAR in the store's tmp/ (owned, removed when dropped), hashing
        // the NAR on the way so a corrupt output is never signed.
        let scratch = crate::output::ScratchDir::new_in(&store.root().join("tmp"), "cache-push-")?;
        let blob_path = scratch.path().join("blob");
        let file = std::fs::File::create(&blob_path).map_err(PathError::write(&blob_path))?;
        let compressor = Compressor::new(
            Compression::Zstd,
            HashingWriter::new(io::BufWriter::new(file)),
            compression_threads(),
        )
        .map_err(PathError::write(&blob_path))?;
        let mut nar = HashingWriter::new(compressor);
        write_nar(&path, &mut nar)?;
        let (compressor, nar_digest, nar_size) = nar.finish();
        let hashing = compressor.finish().map_err(PathError::write(&blob_path))?;
        let (mut buffered, blob_digest, blob_size) = hashing.finish();
        buffered.flush().map_err(PathError::write(&blob_path))?;
        let nar_hash = NarHash {
            digest: nar_digest,
            size: nar_size,
        };
        if nar_hash.sri() != record.nar_hash || nar_size != record.nar_size {
            return Err(CacheError::Corrupt {
                name: name.basename(),
                expected: record.nar_hash,
                got: nar_hash.sri(),
            });
        }
        let mut config = EntryConfig {
            schema: ENTRY_SCHEMA.to_owned(),
            store_name: name.basename(),
            kind: record.kind,
            recipe_hash: recipe_hash(&record.recipe),
            nar_hash: record.nar_hash.clone(),
            nar_size,
            recipe: record.recipe.clone(),
            signatures: Vec::new(),
        };
        config.signatures = vec![secret.sign(config.fingerprint().as_bytes())];
        let encode = |source| CacheError::Encode {
            name: name.basename(),
            source,
        };
        let config_bytes = to_canonical_vec(&config).map_err(encode)?;
        let config_descriptor = Descriptor::new(
            CONFIG_MEDIA_TYPE,
            Digest::of(&config_bytes),
            config_bytes.len() as u64,
        );
        let blob_descriptor = Descriptor::new(NAR_MEDIA_TYPE, blob_digest, blob_size);
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media_type::OCI_MANIFEST.to_owned()),
            artifact_type: Some(ARTIFACT_TYPE.to_owned()),
            config: config_descriptor.clone(),
            layers: vec![blob_descriptor.clone()],
            subject: None,
            annotations: [(STORE_NAME_ANNOTATION.to_owned(), name.basename())]
                .into_iter()
                .collect(),
            extra: Default::default(),
        };
        let manifest_bytes = to_canonical_vec(&manifest).map_err(encode)?;
        let manifest_descriptor = Descriptor::new(
            media_type::OCI_MANIFEST,
            Digest::of(&manifest_bytes),
            manifest_bytes.len() as u64,
        );
        let source = EntrySource {
            name: name.basename(),
            config: config_bytes,
            config_digest: config_descriptor.digest,
            blob_path: blob_path.clone(),
        };
        let graph = ImageGraph {
            root: manifest_descriptor.clone(),
            names: Default::default(),
            documents: vec![(manifest_descriptor.clone(), manifest_bytes)],
            blobs: vec![config_descriptor.clone(), blob_descriptor.clone()],
            images: vec![(
                manifest_descriptor.digest,
                vec![config_descriptor.digest, blob_descriptor.digest],
            )],
        };
        let report = push(
            &registry,
            &source,
            &graph,
            &PushRequest {
                repository,
                tags: std::slice::from_ref(&tag),
                mount_from: None,
                jobs: 2,
                first_retry_delay: self.options.first_retry_delay,
            },
            &Silent,
        )?;
        drop(scratch);
        Ok(Pushed::Uploaded {
            bytes: report.bytes_uploaded,
            digest: manifest_descriptor.digest,
        })
    }

    /// Where pushes go: the first cache.
    pub fn push_location(&self) -> Option<&CacheLocation> {
        self.remotes.first().map(|remote| &remote.location)
    }
}

/// The blobs of one entry being pushed: the config in memory, the NAR blob spooled on disk.
struct EntrySource {
    name: String,
    config: Vec<u8>,
    config_digest: Digest,
    blob_path: PathBuf,
}

impl BlobSource for EntrySource {
    fn describe(&self) -> String {
        format!("the cache entry of {}", self.name)
    }

    fn read_document(&self, _descriptor: &Descriptor) -> Result<Vec<u8>, TransportError> {
        Ok(self.config.clone())
    }

    fn open_blob(
        &self,
        descriptor: &Descriptor,
    ) -> Result<Box<dyn Read + Send + '_>, TransportError> {
        if descriptor.digest == self.config_digest {
            return Ok(Box::new(io::Cursor::new(self.config.as_slice())));
        }
        let file =
            std::fs::File::open(&self.blob_path).map_err(|error| TransportError::Invalid {
                location: self.describe(),
                message: format!("cannot open {}: {error}", self.blob_path.display()),
            })?;
        Ok(Box::new(io::BufReader::new(file)))
    }
}

impl Substituter for Cache {
    fn fetch(&self, recipe: &Recipe, temp: &Path) -> Option<Expected> {
        for index in 0..self.remotes.len() {
            let Some(registry) = self.registry(index) else {
                continue;
            };
            let location = &self.remotes[index].location;
            match self.fetch_from(&registry, location, recipe, temp) {
                Ok(Some(expected)) => return Some(expected),
                Ok(None) => {}
                Err(Failure::Unreachable(message)) => self.mark_down(index, &message),
                Err(Failure::Refused(reason)) => self.reporter.warn(&format!(
                    "cache {location}: refused {}/{}:{}: {reason}; building it locally",
                    location.host,
                    location.repository,
                    tag(recipe.name())
                )),
            }
            let _ = crate::store::remove_tree(temp);
        }
        None
    }

    fn refused(&self, recipe: &Recipe, reason: &str) {
        self.reporter.warn(&format!(
            "cache: refused {}: {reason}; building it locally",
            recipe.name().basename()
        ));
    }

    fn built(&self, store: &Store, recipe: &Recipe, _path: &Path) {
        if self.secret.is_none() {
            return;
        }
        let Some(location) = self.push_location() else {
            return;
        };
        // A cache found down this run has been reported once already.
        if matches!(
            self.remotes.first().map(|remote| remote
                .state
                .lock()
                .map(|state| matches!(*state, RemoteState::Down))),
            Some(Ok(true))
        ) {
            return;
        }
        let name = recipe.name();
        match self.push_output(store, name) {
            Ok(Pushed::Present) => {}
            Ok(Pushed::Uploaded { bytes, .. }) => self.reporter.status(&format!(
                "pushed {} to {location} ({bytes} bytes sent)",
                name.basename()
            )),
            Err(error) => {
                let mut message = error.to_string();
                let mut source = std::error::Error::source(&error);
                while let Some(inner) = source {
                    message.push_str(&format!(": {inner}"));
                    source = inner.source();
                }
                self.reporter.warn(&format!(
                    "cannot push {} to {location}: {message} (the build itself succeeded)",
                    name.basename()
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_locations_parse() {
        let location: CacheLocation = "oci://localhost:5000/team/kiln-cache".parse().unwrap();
        assert_eq!(location.host, "localhost:5000");
        assert_eq!(location.repository, "team/kiln-cache");
        assert_eq!(location.to_string(), "oci://localhost:5000/team/kiln-cache");
        for (text, needle) in [
            ("localhost:5000/x", "must start with oci://"),
            ("oci://localhost:5000", "names no repository"),
            ("oci:///x", "host is empty"),
            ("oci://user@host/x", "holds credentials"),
            ("oci://host/Upper", "lower-case"),
            ("oci://host/a//b", "lower-case"),
        ] {
            let error = text.parse::<CacheLocation>().unwrap_err().to_string();
            assert!(error.contains(needle), "{text}: {error}");
        }
    }

    /// Every store name has a valid tag: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}.
    #[test]
    fn tags_are_valid_for_every_store_name() {
        let long = "n".repeat(300);
        for label in [
            "app-0.1.tar",
            "go-example.com_x-v1.2.3+incompatible",
            "a?b=c",
            &long,
        ] {
            let name = StoreName::new(&serde_json::json!({ "label": label }), label);
            let tag = tag(&name);
            assert!(tag.len() <= 128, "{tag}");
            let mut bytes = tag.bytes();
            let first = bytes.next().unwrap();
            assert!(first.is_ascii_alphanumeric() || first == b'_', "{tag}");
            assert!(
                bytes.all(|byte| byte.is_ascii_alphanumeric() || b"._-".contains(&byte)),
                "{tag}"
            );
            assert!(tag.starts_with(name.hash()), "{tag}");
        }
        let name = StoreName::new(&serde_json::json!(1), "go-x-v1.0.0+incompatible");
        assert_eq!(
            tag(&name),
            format!("{}-go-x-v1.0.0_incompatible", name.hash())
        );
    }

    #[test]
    fn recipe_hashes_are_of_canonical_json() {
        let recipe = serde_json::json!({ "b": 1, "a": [true] });
        assert_eq!(
            recipe_hash(&recipe),
            format!(
                "sha256:{}",
                hex::encode(sha2::Sha256::digest(br#"{"a":[true],"b":1}"#))
            )
        );
        // The store name's hash is the first 160 bits of the same digest.
        let name = StoreName::new(&recipe, "x");
        let digest = hex::decode(&recipe_hash(&recipe)["sha256:".len()..]).unwrap();
        assert_eq!(name.hash(), crate::nixbase32::encode(&digest[..20]));
    }
}
