//! Realising a package: the sources copied into a build folder of `tmp/`, Go run there
//! hermetically ([`super::go`]), `bin/` published.

use super::go::{self, Workspace};
use super::plan::PackagePlan;
use super::sandbox::sandbox_layout;
use super::sources;
use super::{BuildError, Builder};
use crate::diagnostic::PathError;
use crate::lock;
use crate::store::Realised;

impl Builder<'_> {
    /// Build the package of `plan` unless the store has it.
    pub fn realise_package(&self, plan: &PackagePlan) -> Result<Realised, BuildError> {
        let label = plan.package.store_label();
        self.store.realise(
            &plan.recipe,
            || (self.status)(&format!("waiting for another kiln building {label}")),
            |temp| {
                (self.status)(&format!(
                    "building {label} (package `{}`, {}, {})",
                    plan.package.key, plan.package.platform, plan.toolchain.version
                ));
                let (source_copy, replace_copies) =
                    sandbox_layout(&temp.join("src"), &plan.tree.root, &plan.local_replaces);
                let output = temp.join("out");
                sources::copy(&plan.tree, &source_copy)?;
                for ((_, tree), destination) in plan.local_replaces.iter().zip(&replace_copies) {
                    sources::copy(tree, destination)?;
                }
                if let Some(go_sum) = &plan.go_sum {
                    let path = source_copy.join("go.sum");
                    std::fs::write(&path, go_sum).map_err(PathError::write(&path))?;
                }
                let proxy = if plan.modules.is_empty() {
                    None
                } else {
                    Some(lock::proxy_folder(&self.store, &plan.modules)?)
                };
                let workspace = Workspace {
                    sources: &source_copy,
                    bin: &output.join("bin"),
                    scratch: temp,
                    cache: &self.store.go_cache(),
                    home: &self.store.go_home(),
                    proxy: proxy.as_deref(),
                };
                go::build(&plan.toolchain, &plan.package, plan.mod_mode, &workspace)?;
                Ok(output)
            },
        )
    }
}
