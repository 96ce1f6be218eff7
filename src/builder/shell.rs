//! The environment `kiln shell` gives: Go's settings for a package exactly as its build runs
//! Go with them ([`go::settings`], the recipe's own), the same module mode (vendoring decided
//! from the same source tree the build hashes, so a git-ignored `vendor/` is ignored by both),
//! the Go release and modules its kiln.lock pins, served from the same store proxy folder.
//!
//! A shell is for working on a project whose lock may be stale or missing; rather than
//! refuse, it falls back to the local go without locked modules and says why
//! ([`ShellEnvironment::fallback`]). A build in the same state is an error.

use std::collections::BTreeMap;
use std::path::Path;

use super::go::{self, ModMode};
use super::{BuildError, Builder};
use crate::diagnostic::Hint;
use crate::lock::lockfile::LockFile;
use crate::lock::{self, LockError};
use crate::project::{Package, Project};
use crate::toolchain::Toolchain;

/// Why a shell has the local go and no locked modules.
#[derive(Debug, thiserror::Error)]
pub enum ShellFallback {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("kiln.lock is out of date: {}", .0.join("; "))]
    StaleLock(Vec<String>),
}

impl Hint for ShellFallback {
    fn hint(&self) -> Option<String> {
        match self {
            ShellFallback::Lock(inner) => inner.hint(),
            _ => None,
        }
    }
}

/// What a shell for one package runs with.
#[derive(Debug)]
pub struct ShellEnvironment {
    pub toolchain: Toolchain,
    /// Go's variables, GOPROXY included when the lock pins modules.
    pub variables: BTreeMap<String, String>,
    /// Set when the lock could not be used.
    pub fallback: Option<ShellFallback>,
    /// For a cgo package, the folder of the Zig compiler scripts `CC` and `CXX` name: first
    /// on the shell's PATH.
    pub compilers: Option<std::path::PathBuf>,
}

impl Builder<'_> {
    /// The environment of a shell for `package` of `project`.
    pub fn shell_environment(
        &self,
        project: &Project,
        package: &Package,
    ) -> Result<ShellEnvironment, BuildError> {
        let tree = self.sources(&project.root)?;
        let mod_mode = super::mod_mode(&tree);
        let mut variables = go::settings(package, mod_mode);
        let (toolchain, fallback) = match current_lock(&project.root) {
            Ok(Some(locked)) if mod_mode == ModMode::Readonly => {
                if !locked.modules.is_empty() {
                    let proxy = lock::proxy_folder(&self.store, &locked.modules)?;
                    variables.insert("GOPROXY".to_owned(), go::proxy_url(&proxy));
                }
                (self.pinned_toolchain(&locked.go)?, None)
            }
            Ok(_) => (self.toolchain()?.clone(), None),
            Err(fallback) => (self.toolchain()?.clone(), Some(fallback)),
        };
        // A cgo package's shell has the C toolchain its builds have, planned and realised as
        // a build realises it (fetched into the store if kiln.lock pins it and it is missing;
        // the caller holds the store's build guard, as a build does), and Zig's cache in the
        // kiln home.
        let compilers = match self.zig_plan(project, package)? {
            None => None,
            Some(zig) => {
                let compilers = crate::toolchain::zig::compilers(
                    &self.store,
                    &zig.pin,
                    &zig.target,
                    self.status,
                )?;
                let cache = crate::toolchain::zig::cache_dir(&self.store);
                std::fs::create_dir_all(&cache)
                    .map_err(crate::diagnostic::PathError::write(&cache))?;
                let cache_text = cache.to_string_lossy().into_owned();
                variables.insert("ZIG_GLOBAL_CACHE_DIR".to_owned(), cache_text.clone());
                variables.insert("ZIG_LOCAL_CACHE_DIR".to_owned(), cache_text);
                Some(compilers)
            }
        };
        Ok(ShellEnvironment {
            toolchain,
            variables,
            fallback,
            compilers,
        })
    }
}

/// The project's kiln.lock when it is up to date with go.mod and go.sum.
fn current_lock(root: &Path) -> Result<Option<LockFile>, ShellFallback> {
    let wants = lock::wants(root)?;
    wants.require_pins()?;
    let Some(locked) = lock::read_lock(root)? else {
        return Ok(None);
    };
    let differences = lock::differences(&wants, &locked);
    if !differences.is_empty() {
        return Err(ShellFallback::StaleLock(differences));
    }
    Ok(Some(locked))
}
