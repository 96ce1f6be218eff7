//! OCI registries, one module per concern:
//! - [`client`]: the distribution-spec client: connecting, authenticated requests and their
//!   retries, manifests, blob downloads.
//! - [`token`]: `WWW-Authenticate` challenges, token scopes and the bearer-token service.
//! - [`upload`]: the blob upload protocol: sessions, monolithic and chunked `PUT`, resuming.
//! - [`error`]: [`RegistryError`](error::RegistryError), which the three above share.
//! - [`auth`]: where credentials come from (Docker and podman config files, helpers).
//! - [`push`]: pushing an image graph and its referrers.

pub mod auth;
pub mod client;
pub mod error;
pub mod push;
pub mod token;
pub mod upload;
