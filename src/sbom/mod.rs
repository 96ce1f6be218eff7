//! The software bill of materials of an image: an SPDX 2.3 JSON document made from kiln.lock
//! and from the build information Go embeds in every program (`go version -m`), and the OCI
//! artifact that carries it beside the image.
//!
//! One module per concern:
//! - [`crate::gomod::buildinfo`] reads what `go version -m` prints (a Go format, so it lives
//!   beside the other Go formats); [`parse_go_version_m`] here is that parser with this
//!   module's error.
//! - [`spdx`]: the document, and every choice it pins ([`spdx_document`], [`spdx_bytes`]).
//! - [`purl`]: the package URLs the document names packages by.
//! - [`artifact`]: the OCI artifact that carries the document, in a layout or to a registry
//!   ([`artifact_manifest`], [`write_artifact`]).
//!
//! [`SbomError`] is the one error of all three.

pub mod artifact;
pub mod purl;
pub mod spdx;

use std::io;

use crate::diagnostic::Hint;
use crate::gomod::buildinfo::BuildInfoError;
pub use crate::gomod::buildinfo::{BuildInfo, GoModule};
use crate::oci::spec::media_type;
pub use artifact::{EMPTY_JSON, artifact_manifest, empty_descriptor, write_artifact};
pub use spdx::{SbomBase, SbomCgo, SbomInput, TOOL, spdx_bytes, spdx_document};

/// The media type of an SPDX JSON document, and the `artifactType` of its OCI artifact.
pub const SPDX_MEDIA_TYPE: &str = media_type::SPDX_JSON;

#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    #[error(transparent)]
    BuildInfo(#[from] BuildInfoError),
    #[error("the image's created time `{0}` is not an RFC 3339 time")]
    Created(String),
    #[error(
        "module {module}: the program {program} was built with {program_sum}, but kiln.lock pins {locked_sum}"
    )]
    SumMismatch {
        module: String,
        program: String,
        program_sum: String,
        locked_sum: String,
    },
    #[error("cannot encode the SBOM")]
    Json(#[source] serde_json::Error),
    #[error("cannot store the SBOM artifact")]
    Store(#[source] io::Error),
}

impl Hint for SbomError {
    fn hint(&self) -> Option<String> {
        match self {
            SbomError::SumMismatch { .. } => {
                Some("the program was not built from this kiln.lock; rebuild it".to_owned())
            }
            _ => None,
        }
    }
}

/// Parse the output of `go version -m FILE…`: each program's file name (as Go printed it)
/// and its build information ([`crate::gomod::buildinfo::parse_go_version_m`], whose error
/// becomes an [`SbomError`]).
pub fn parse_go_version_m(text: &str) -> Result<Vec<(String, BuildInfo)>, SbomError> {
    Ok(crate::gomod::buildinfo::parse_go_version_m(text)?)
}
