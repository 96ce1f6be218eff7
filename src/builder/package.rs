//! Realising a package: the sources brought into a build folder the project keeps
//! ([`super::worktree`]), Go run there hermetically ([`super::go`]), its programs copied into
//! `bin/` of the output and published.

use std::path::Path;

use super::go::{self, Workspace};
use super::plan::PackagePlan;
use super::sandbox::sandbox_layout;
use super::worktree::{BuildFolder, Layout, WorktreeError};
use super::{BuildError, Builder};
use crate::diagnostic::PathError;
use crate::lock;
use crate::store::{Realised, Staged};

impl Builder<'_> {
    /// Build the package of `plan` unless the store has it.
    pub fn realise_package(&self, plan: &PackagePlan) -> Result<Realised, BuildError> {
        Ok(self.stage_package(plan)?.publish()?)
    }

    /// Build the package of `plan` unless the store has it, and leave it unpublished: an
    /// image reads its programs from there and publishes it beside its own publishing.
    pub(super) fn stage_package(&self, plan: &PackagePlan) -> Result<Staged<'_>, BuildError> {
        let label = plan.package.store_label();
        self.store.stage(
            &plan.recipe,
            || (self.status)(&format!("waiting for another kiln building {label}")),
            |temp| {
                (self.status)(&format!(
                    "building {label} (package `{}`, {}, {})",
                    plan.package.key, plan.package.platform, plan.toolchain.version
                ));
                std::fs::create_dir_all(temp).map_err(PathError::write(temp))?;
                let folder = BuildFolder::take(&self.store, &plan.tree.root, temp)?;
                let (source_copy, replace_copies) =
                    sandbox_layout(&folder.src, &plan.tree.root, &plan.local_replaces);
                let mut layout = Layout::default();
                layout.add_tree(&relative(&folder.src, &source_copy)?, &plan.tree)?;
                for ((_, tree), destination) in plan.local_replaces.iter().zip(&replace_copies) {
                    layout.add_tree(&relative(&folder.src, destination)?, tree)?;
                }
                if let Some(go_sum) = &plan.go_sum {
                    let prefix = relative(&folder.src, &source_copy)?;
                    let path = if prefix.is_empty() {
                        "go.sum".to_owned()
                    } else {
                        format!("{prefix}/go.sum")
                    };
                    layout.add_bytes(&path, go_sum.clone().into_bytes());
                }
                let index = folder.sync(&layout, &self.store.root().join("tmp"))?;
                let proxy = if plan.modules.is_empty() {
                    None
                } else {
                    Some(lock::proxy_folder(&self.store, &plan.modules)?)
                };
                // Go's outputs stay in the build folder, one folder per package and platform,
                // so Go can see an unchanged program is up to date and not link it again.
                let variant = crate::store::sanitise_name(&format!(
                    "{}-{}",
                    plan.package.key, plan.package.platform
                ));
                let go_bin = folder.bin.join(variant);
                let compilers = match &plan.zig {
                    Some(zig) => Some(crate::toolchain::zig::compilers(
                        &self.store,
                        &zig.pin,
                        &zig.target,
                        self.status,
                    )?),
                    None => None,
                };
                let zig_cache = crate::toolchain::zig::cache_dir(&self.store);
                if compilers.is_some() {
                    std::fs::create_dir_all(&zig_cache).map_err(PathError::write(&zig_cache))?;
                }
                let workspace = Workspace {
                    sources: &source_copy,
                    bin: &go_bin,
                    scratch: temp,
                    cache: &self.store.go_cache(),
                    home: &self.store.go_home(),
                    proxy: proxy.as_deref(),
                    zig: compilers
                        .as_deref()
                        .map(|compilers| (compilers, zig_cache.as_path())),
                };
                // The build folder's new record is written beside Go, before its lock goes.
                std::thread::scope(|scope| {
                    let indexed = scope.spawn(move || index.write());
                    let built =
                        go::build(&plan.toolchain, &plan.package, plan.mod_mode, &workspace);
                    let indexed = indexed
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                    built?;
                    indexed?;
                    Ok::<_, BuildError>(())
                })?;
                let output = temp.join("out");
                let bin = output.join("bin");
                std::fs::create_dir_all(&bin).map_err(PathError::write(&bin))?;
                // Each program enters the output as a second link to Go's file: nothing is
                // written again (on this scale, a program of tens of MB, the write is what
                // an edit costs beyond Go). That is safe because Go never writes into an
                // existing `-o` file: it renames its new link output over it, or removes it
                // and creates a new one (cmd/go/internal/work/shell.go, moveOrCopyFile and
                // CopyFile), and when the program is up to date it only sets its mtime,
                // which no store hash records. Where links cannot be made (another file
                // system), the programs are copied, hashed on the way.
                let linked = plan.package.mains.iter().try_for_each(|main| {
                    std::fs::hard_link(go_bin.join(&main.program), bin.join(&main.program))
                });
                if linked.is_ok() {
                    return Ok(output.into());
                }
                crate::store::remove_tree(&output)?;
                let programs: Vec<(String, std::path::PathBuf)> = plan
                    .package
                    .mains
                    .iter()
                    .map(|main| (format!("bin/{}", main.program), go_bin.join(&main.program)))
                    .collect();
                let nar_hash = crate::nar::copy_files_hashed(
                    programs
                        .iter()
                        .map(|(path, source)| (path.as_str(), source.as_path())),
                    &output,
                )
                .map_err(crate::store::StoreError::from)?;
                Ok(crate::store::Built {
                    path: output,
                    nar_hash: Some(nar_hash),
                })
            },
        )
    }
}

/// `path` relative to `base`, `/`-separated ("" for `base` itself).
fn relative(base: &Path, path: &Path) -> Result<String, WorktreeError> {
    path.strip_prefix(base)
        .ok()
        .and_then(Path::to_str)
        .map(str::to_owned)
        .ok_or_else(|| WorktreeError::Occupied(path.to_owned()))
}
