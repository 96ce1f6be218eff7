//! Interface of kiln's static base while its implementation is written on another branch;
//! this file is replaced wholesale when that lands.

use std::path::{Path, PathBuf};

use crate::oci::tree::FileTree;
use crate::store::Store;

pub const NONROOT_UID: u32 = 65532;
pub const LAYER_MTIME: u64 = 0;
pub const ENV: &[&str] = &[
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
];

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StaticSource {
    pub name: String,
    pub url: String,
    pub sha256: String,
    pub version: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StaticBaseError {
    #[error("the static base is not available in this build")]
    Unavailable,
}

pub fn realise(
    _store: &Store,
    _sources: &[StaticSource],
    _status: &dyn Fn(&str),
) -> Result<PathBuf, StaticBaseError> {
    Err(StaticBaseError::Unavailable)
}

pub fn layer_tree(_rootfs: &Path) -> Result<FileTree, StaticBaseError> {
    Err(StaticBaseError::Unavailable)
}

pub fn default_sources() -> Vec<StaticSource> {
    Vec::new()
}

pub fn latest_sources(_index: &str) -> Result<Vec<StaticSource>, StaticBaseError> {
    Err(StaticBaseError::Unavailable)
}

pub fn pypi_url() -> String {
    "https://pypi.org".to_owned()
}
