//! Reading a flake without Nix: rnix's parser and a small evaluator of the literal forms
//! gomod2nix flakes are written in. Work in progress: see [`read`].

use std::path::{Path, PathBuf};

use super::FlakeOutputs;

#[derive(Debug, thiserror::Error)]
pub enum LiteralError {
    #[error("{location}: {message}")]
    At { location: String, message: String },
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl crate::diagnostic::Hint for LiteralError {
    fn hint(&self) -> Option<String> {
        match self {
            LiteralError::At { .. } => Some(
                "install Nix (Debian's nix-bin gives nix-instantiate) and kiln evaluates the flake with real Nix".to_owned(),
            ),
            LiteralError::Read { .. } => None,
        }
    }
}

/// Read the flake in `folder` without Nix.
pub fn read(folder: &Path) -> Result<FlakeOutputs, LiteralError> {
    Err(LiteralError::At {
        location: folder.join("flake.nix").display().to_string(),
        message: "reading a flake without nix-instantiate is not implemented yet".to_owned(),
    })
}
