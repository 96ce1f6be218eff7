//! Planning: a target's recipe and store name, computed without building anything (see
//! the module doc of [`super`] for what each recipe holds).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;

use super::go::{self, ModMode};
use super::sources::SourceTree;
use super::{BuildError, Builder, files, mod_mode};
use crate::diagnostic::PathError;
use crate::gomod::vendor;
use crate::lock::lockfile::LockedModule;
use crate::lock::{self, LockError, PinOrigin, Wanted};
use crate::oci::spec::annotation;
use crate::oci::timestamp::source_date_epoch;
use crate::project::config::Base;
use crate::project::{Image, Package, Project};
use crate::recipes;
use crate::store::{Recipe, StoreName};
use crate::toolchain::{Toolchain, ToolchainError};

/// A package ready to build.
#[derive(Clone, Debug)]
pub struct PackagePlan {
    pub package: Package,
    pub recipe: Recipe,
    pub tree: SourceTree,
    pub mod_mode: ModMode,
    pub toolchain: Toolchain,
    /// The locked modules Go may use (none when vendored or when nothing is required).
    pub modules: Vec<LockedModule>,
    /// For a vendored project, the modules vendor/ holds with go.sum's hashes (from kiln.lock,
    /// else from go.sum when it pins them all): what the SBOM names them by. Not an input of
    /// the recipe (go.sum, kiln.lock and vendor/ are sources already).
    pub vendored_modules: Vec<LockedModule>,
    /// go.sum text to give Go when the project has none (locked from gomod2nix.toml).
    pub go_sum: Option<String>,
    /// Folders go.mod's `replace` directives point at, relative to the project, and their
    /// sources.
    pub local_replaces: Vec<(String, SourceTree)>,
    /// For a cgo package, the Zig release kiln.lock pins for this host and its target.
    pub zig: Option<ZigPlan>,
}

/// The C toolchain of a cgo package's build.
#[derive(Clone, Debug)]
pub struct ZigPlan {
    /// The Zig release kiln.lock pins for this host.
    pub pin: crate::toolchain::zig::ZigPin,
    /// Zig's target triple (`x86_64-linux-musl`, `x86_64-linux-gnu.2.31`).
    pub target: String,
}

impl PackagePlan {
    /// The store name the package builds to.
    pub fn name(&self) -> &StoreName {
        self.recipe.name()
    }
}

/// One platform of an image ready to build.
#[derive(Clone, Debug)]
pub struct PlatformPlan {
    pub package: PackagePlan,
    /// The base and the manifest digest kiln.lock pins it to for this platform.
    pub base: Option<(crate::oci::reference::Reference, crate::oci::digest::Digest)>,
}

/// An image ready to build.
#[derive(Clone, Debug)]
pub struct ImagePlan {
    pub image: Image,
    /// One per platform, in the image's order.
    pub platforms: Vec<PlatformPlan>,
    /// Each `[[files]]` entry placed, in order.
    pub files: Vec<files::Placed>,
    /// The `dirs` and `symlinks`.
    pub declared: files::Placed,
    /// The static base's pinned sources, for `base = "static"`.
    pub static_sources: Option<Vec<crate::static_base::StaticWheel>>,
    /// The manifest (and index) annotations.
    pub annotations: BTreeMap<String, String>,
    pub recipe: Recipe,
    /// RFC 3339 `created`.
    pub created: String,
    pub mtime: u64,
}

impl ImagePlan {
    /// The store name the image builds to.
    pub fn name(&self) -> &StoreName {
        self.recipe.name()
    }
}

impl Builder<'_> {
    /// Plan a package of `project`.
    pub fn plan_package(
        &self,
        project: &Project,
        package: &Package,
    ) -> Result<PackagePlan, BuildError> {
        let tree = self.sources(&project.root)?;
        let mut pinned_toolchain = None;
        let mut modules = Vec::new();
        let mut go_sum = None;
        let mut local_replaces = Vec::new();
        let mut vendored_modules = Vec::new();
        let toolchain_line;
        let mod_mode = if mod_mode(&tree) == ModMode::Vendor {
            // Vendored: go.mod and vendor/ are all Go reads (no go.sum, lock or replace folder).
            let go_mod = lock::read_go_mod(&project.root)?;
            toolchain_line = go_mod.toolchain.clone();
            let modules_path = project.root.join("vendor/modules.txt");
            let text =
                std::fs::read_to_string(&modules_path).map_err(PathError::read(&modules_path))?;
            let vendored = vendor::parse(&text, Path::new("vendor/modules.txt"))?;
            vendor::check_consistency(&go_mod, &vendored)?;
            // A kiln.lock pins the Go release (and go.sum's hashes) as for any project; a
            // vendored project needs none, and without one builds with the local go.
            if let Some(locked) = lock::read_lock(&project.root)? {
                let differences = lock::differences(&lock::wants(&project.root)?, &locked);
                if !differences.is_empty() {
                    return Err(BuildError::StaleLock { differences });
                }
                pinned_toolchain = Some(self.pinned_toolchain(&locked.go)?);
                vendored_modules = locked.modules;
            } else if let Ok(Some(from_sum)) =
                lock::wants(&project.root).and_then(|wants| wants.vendored_lock(Default::default()))
            {
                // Without a lock go.sum still names the vendored modules' hashes; a go.sum
                // that lacks some only leaves them out of the SBOM (Go never reads it here).
                vendored_modules = from_sum.modules;
            }
            vendored_modules.retain(|module| module.vendored);
            ModMode::Vendor
        } else {
            let wants = lock::wants(&project.root)?;
            toolchain_line = wants.go_mod.toolchain.clone();
            wants.require_pins()?;
            // A lock pins the toolchain even when no module is required.
            let locked = lock::read_lock(&project.root)?;
            if wants.source != PinOrigin::Nothing || locked.is_some() {
                let Some(locked) = locked else {
                    return Err(BuildError::Unlocked {
                        requirements: wants
                            .modules
                            .iter()
                            .take(5)
                            .map(Wanted::id)
                            .chain((wants.modules.len() > 5).then(|| "…".to_owned()))
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                };
                let differences = lock::differences(&wants, &locked);
                if !differences.is_empty() {
                    return Err(BuildError::StaleLock { differences });
                }
                pinned_toolchain = Some(self.pinned_toolchain(&locked.go)?);
                for module in &locked.modules {
                    if lock::locked_module_path(&self.store, module).is_none() {
                        return Err(LockError::NotFetched {
                            module: module.id(),
                        }
                        .into());
                    }
                }
                if wants.source == PinOrigin::Gomod2nix {
                    go_sum = Some(locked.go_sum_text());
                }
                modules = locked.modules;
            }
            local_replaces = self.replace_folders(&project.root, &wants.go_mod)?;
            ModMode::Readonly
        };
        let toolchain = match pinned_toolchain {
            Some(toolchain) => toolchain,
            None => match (self.toolchain(), &toolchain_line) {
                (Ok(toolchain), _) => toolchain.clone(),
                // go.mod names the release; `kiln lock` can fetch it.
                (Err(BuildError::Toolchain(ToolchainError::NotFound)), Some(release)) => {
                    return Err(BuildError::ToolchainPin {
                        pinned: release.clone(),
                        local: "missing".to_owned(),
                    });
                }
                (Err(error), _) => return Err(error),
            },
        };
        let (zig, cgo) = match (&package.cgo, self.zig_plan(project, package)?) {
            (Some(cgo), Some(zig)) => {
                let document = json!({
                    "zig": zig.pin.identity(),
                    "target": zig.target,
                    "libc": cgo.libc.as_str(),
                    "cflags": cgo.cflags,
                    "ldflags": cgo.ldflags,
                });
                (Some(zig), Some(document))
            }
            _ => (None, None),
        };
        let recipe = recipes::package(
            package,
            &recipes::PackageInputs {
                toolchain: recipes::ToolchainIdentity {
                    identity: &toolchain.identity,
                    version: &toolchain.version,
                },
                settings: go::settings(package, mod_mode),
                sources: tree.digest.to_string(),
                modules: modules
                    .iter()
                    .map(|module| module.store_name().basename())
                    .collect(),
                go_sum: go_sum.as_deref(),
                replaces: local_replaces
                    .iter()
                    .map(|(folder, tree)| (folder.clone(), tree.digest.to_string()))
                    .collect(),
                cgo,
            },
        );
        Ok(PackagePlan {
            package: package.clone(),
            recipe,
            tree,
            mod_mode,
            toolchain,
            modules,
            vendored_modules,
            go_sum,
            local_replaces,
            zig,
        })
    }

    /// The C toolchain of `package` when it has cgo: the Zig release kiln.lock pins for this
    /// host and Zig's target for the package's platform and C library. Builds and `kiln
    /// shell` both take it from here.
    pub fn zig_plan(
        &self,
        project: &Project,
        package: &Package,
    ) -> Result<Option<ZigPlan>, BuildError> {
        let Some(cgo) = &package.cgo else {
            return Ok(None);
        };
        let target = crate::toolchain::zig::target(&package.platform, cgo.libc, &package.key)?;
        let host = crate::toolchain::zig::zig_host();
        let pin = lock::read_lock(&project.root)?
            .and_then(|locked| locked.zig_for(&host).cloned())
            .ok_or_else(|| BuildError::ZigUnpinned {
                package: package.key.clone(),
                host: host.clone(),
            })?;
        Ok(Some(ZigPlan { pin, target }))
    }

    /// Plan an image of `project`: a package plan per platform, its base pins, the files it
    /// takes from the project (hashed), and its annotations.
    pub fn plan_image(&self, project: &Project, image: &Image) -> Result<ImagePlan, BuildError> {
        let package = &project.packages[&image.package];
        let epoch = source_date_epoch()?;
        let created = image.created.resolve(epoch);
        let locked = match &image.base {
            Some(_) => lock::read_lock(&project.root)?,
            None => None,
        };
        // `git` runs beside the planning of the packages (it reads the same files the scan
        // stats, and its start-up costs as much as a no-op build's walk).
        std::thread::scope(|scope| {
            let git = scope.spawn(|| crate::project::git::describe(&project.root));
            let planned = self.plan_image_with(project, image, package, epoch, created, locked);
            let git = git
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            planned.map(|finish| finish(git))
        })
    }

    /// [`Self::plan_image`] but for the annotations from git, which the returned function takes.
    fn plan_image_with(
        &self,
        project: &Project,
        image: &Image,
        package: &Package,
        epoch: i64,
        created: String,
        locked: Option<lock::lockfile::LockFile>,
    ) -> Result<impl FnOnce(Option<crate::project::git::GitInfo>) -> ImagePlan, BuildError> {
        let mut platforms = Vec::new();
        for platform in &image.platforms {
            let package_plan = self.plan_package(project, &package.for_platform(platform))?;
            let base = match &image.base {
                Some(Base::Image(reference)) => {
                    let platform = platform.to_string();
                    let pinned: Option<crate::oci::digest::Digest> = locked
                        .as_ref()
                        .and_then(|lock| lock.base(&reference.to_string(), &platform))
                        .and_then(|base| base.digest.parse().ok());
                    match pinned {
                        Some(digest) => Some((reference.clone(), digest)),
                        None => {
                            return Err(BuildError::UnpinnedBase {
                                image: image.key.clone(),
                                base: reference.to_string(),
                                platform,
                            });
                        }
                    }
                }
                _ => None,
            };
            platforms.push(PlatformPlan {
                package: package_plan,
                base,
            });
        }
        let static_sources = match &image.base {
            Some(Base::Static) => {
                let sources = locked
                    .as_ref()
                    .map(|lock| lock.statics.clone())
                    .unwrap_or_default();
                if sources.is_empty() {
                    return Err(BuildError::UnpinnedStatic {
                        image: image.key.clone(),
                    });
                }
                Some(sources)
            }
            _ => None,
        };
        let placed = image
            .files
            .iter()
            .map(|entry| files::place(&project.root, entry))
            .collect::<Result<Vec<_>, _>>()?;
        let declared = files::declared(&image.dirs, &image.symlinks)?;
        Ok(move |git| {
            let annotations = annotations(image, package, &created, git);
            let mut image_fields = json!({
                    "reference": image.reference.to_string(),
                    "paths": image.paths.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "cmd": image.cmd,
                    "entrypoint": image.entrypoint,
                    "env": image.env,
                    "workdir": image.workdir,
                    "user": image.user,
                    "expose": image.expose,
                    "labels": image.labels,
                    "compression": image.compression.to_string(),
                    "bases": platforms.iter().map(|plan| plan.base.as_ref().map(|(reference, digest)| json!({
                        "name": reference.to_string(),
                        "digest": digest.to_string(),
                    }))).collect::<Vec<_>>(),
                    "static": static_sources,
                    "files": placed.iter().map(|placed| placed.digest.to_string()).collect::<Vec<_>>(),
                    "declared": declared.digest.to_string(),
                    "max_layers": image.max_layers,
                    "annotations": annotations,
                    "sbom": image.sbom,
            });
            // Only when set: every image without volumes keeps the recipe (and store path) it had.
            if !image.volumes.is_empty() {
                image_fields["volumes"] = json!(image.volumes);
            }
            let label = format!("{}-{}.tar", image.reference.familiar_name(), image.tag());
            let recipe = recipes::image(
                platforms
                    .iter()
                    .map(|plan| plan.package.name().basename())
                    .collect(),
                image_fields,
                epoch,
                &created,
                &label,
            );
            ImagePlan {
                image: image.clone(),
                platforms,
                files: placed,
                declared,
                static_sources,
                annotations,
                recipe,
                created,
                mtime: epoch as u64,
            }
        })
    }
}

/// The `org.opencontainers.image.*` annotations of an image: `created`, `version` (the
/// package's version, else the tag), `title` (the image's name), and `revision` and `source`
/// from a clean git checkout; then the image's own `annotations`, which win.
pub(super) fn annotations(
    image: &Image,
    package: &Package,
    created: &str,
    git: Option<crate::project::git::GitInfo>,
) -> BTreeMap<String, String> {
    let mut annotations = BTreeMap::new();
    annotations.insert(annotation::CREATED.to_owned(), created.to_owned());
    annotations.insert(
        annotation::VERSION.to_owned(),
        package
            .version
            .clone()
            .unwrap_or_else(|| image.tag().to_owned()),
    );
    annotations.insert(
        annotation::TITLE.to_owned(),
        image.reference.familiar_name(),
    );
    if let Some(git) = git {
        annotations.insert(annotation::REVISION.to_owned(), git.revision);
        if let Some(source) = git.source {
            annotations.insert(annotation::SOURCE.to_owned(), source);
        }
    }
    annotations.extend(
        image
            .annotations
            .iter()
            .map(|(name, value)| (name.clone(), value.clone())),
    );
    annotations
}
