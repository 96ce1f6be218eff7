//! Building targets into the store.
//!
//! A target is first *planned*: its recipe (every input that can change the output, as
//! canonical JSON) and the store name that recipe hashes to are computed without building
//! anything. An output already in the store is used as it is, with no `go` run at all.
//! Otherwise it is *realised* under its lock: sources copied into `tmp/`, Go run
//! hermetically, the result published.
//!
//! Package recipe (`go-package/1`): the toolchain identity and version, the platform and Go
//! settings, the package's section (name, version, mains, ldflags, tags, env), the module
//! mode, the sources' hash, the locked modules (their store names, which are their hashes) and
//! the sources of every folder a `replace` directive points go.mod at.
//!
//! Dependencies come from vendor/ when the project vendors them, else from kiln.lock: Go gets
//! a `file://` GOPROXY holding exactly the locked modules (links into the store), an empty
//! module cache of its own, `-mod=readonly` and `GOSUMDB=off`, so go.sum is checked by Go
//! itself and nothing reaches the network. A lock that no longer matches go.mod and go.sum is
//! an error asking for `kiln lock`. Image recipe (`image/2`): the package's store name for each
//! platform, the image's section, each platform's pinned base, the static base's sources, the
//! digests of the placed files and of the declared folders and links, the annotations (git's
//! revision and source among them), the source time (`SOURCE_DATE_EPOCH`) and the resolved
//! `created`.

pub mod files;
pub mod go;
pub mod shell;
pub mod sources;
pub mod toolchain;

use std::cell::{OnceCell, RefCell};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::gomod::{modfile, vendor};
use crate::lock::lockfile::{GoPin, LockedModule};
use crate::lock::{self, LockError, PinSource};
use crate::oci::archive::{ArchiveKind, ArchiveWriter};
use crate::oci::image::{ImageRequest, RequestLayer, build_image};
use crate::oci::spec::{ContainerConfig, annotation};
use crate::oci::timestamp::source_date_epoch;
use crate::oci::tree::FileTree;
use crate::project::config::Base;
use crate::project::{Image, Package, Project};
use crate::recipes;
use crate::store::{Realised, Recipe, Store, StoreError, StoreName};

use self::go::{GoError, ModMode, Workspace};
use self::sources::{SourceError, SourceTree};
use self::toolchain::{Toolchain, ToolchainError};
use crate::lock::Wanted;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Toolchain(#[from] ToolchainError),
    #[error("no go.mod in {}\nhint: `kiln init` makes a Go project; or run `go mod init MODULE` there", .0.display())]
    NoGoMod(PathBuf),
    #[error(transparent)]
    ModFile(#[from] modfile::ModFileError),
    #[error(transparent)]
    Vendor(#[from] vendor::VendorError),
    #[error(
        "the project needs {requirements} (go.mod and its pins), and there is no kiln.lock (nor vendor/)\nhint: run `kiln lock` to fetch and pin them; builds then run offline"
    )]
    Unlocked { requirements: String },
    #[error(
        "kiln.lock is out of date:\n  {}\nhint: run `kiln lock`", .differences.join("\n  ")
    )]
    StaleLock { differences: Vec<String> },
    #[error(
        "the project builds with {pinned} (go.mod, kiln.lock), and the go here is {local}\nhint: run `kiln lock` to fetch {pinned}, or put {pinned} first on PATH (or in KILN_GO)"
    )]
    ToolchainPin { pinned: String, local: String },
    #[error(transparent)]
    Lock(Box<LockError>),
    #[error(
        "image `{image}` starts from {base}, which kiln.lock does not pin for {platform}\nhint: run `kiln lock` to resolve it to a digest"
    )]
    UnpinnedBase {
        image: String,
        base: String,
        platform: String,
    },
    #[error("cannot fetch the base image {base}@{digest}")]
    FetchBase {
        base: String,
        digest: String,
        #[source]
        source: Box<crate::transport::TransportError>,
    },
    #[error(
        "go.mod:{line}: replace {module} => {folder}: {} is a link\nhint: point the replace directive at the real folder",
        .link.display()
    )]
    ReplaceThroughLink {
        module: String,
        folder: String,
        line: usize,
        link: PathBuf,
    },
    #[error("go.mod:{line}: replace {module} => {folder}: {} is not a folder\nhint: the folder must exist beside the project wherever it is built", .path.display())]
    ReplaceFolder {
        module: String,
        folder: String,
        line: usize,
        path: PathBuf,
    },
    #[error(
        "go.mod:{line}: replace {module} => {folder}: it {reason}, so kiln would hash and copy the whole disk\nhint: point the replace directive at the module's folder beside the project"
    )]
    ReplaceAtRoot {
        module: String,
        folder: String,
        line: usize,
        reason: &'static str,
    },
    #[error(transparent)]
    Sources(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Go(#[from] GoError),
    #[error("image `{image}`: path {path} is not in package `{package}` (it has {})", .has.join(", "))]
    MissingImagePath {
        image: String,
        package: String,
        path: String,
        has: Vec<String>,
    },
    #[error("image `{image}` needs a `cmd`: package `{package}` builds several programs ({})\nhint: e.g. cmd = [\"/bin/{}\"]", .programs.join(", "), .programs.first().map(String::as_str).unwrap_or("PROGRAM"))]
    NoCommand {
        image: String,
        package: String,
        programs: Vec<String>,
    },
    #[error(transparent)]
    Image(#[from] crate::oci::image::ImageError),
    #[error(transparent)]
    Files(#[from] files::FilesError),
    #[error("cannot make the SBOM of image `{image}`")]
    Sbom {
        image: String,
        #[source]
        source: Box<crate::sbom::SbomError>,
    },
    #[error(transparent)]
    StaticBase(#[from] crate::static_base::StaticBaseError),
    #[error(
        "image `{image}` starts from kiln's static base, and kiln.lock does not pin its sources\nhint: run `kiln lock` to pin them (the CA bundle and tzdata, by sha256)"
    )]
    UnpinnedStatic { image: String },
    #[error(
        "image `{image}` may have {max} layers (max_layers), and its base alone has {base}\nhint: raise max_layers, or start from a base with fewer layers"
    )]
    LayerBudget {
        image: String,
        max: usize,
        base: usize,
    },
    #[error(transparent)]
    Tree(#[from] crate::oci::tree::TreeError),
    #[error(transparent)]
    Timestamp(#[from] crate::oci::timestamp::TimestampError),
    #[error("cannot write {}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<LockError> for BuildError {
    fn from(error: LockError) -> Self {
        BuildError::Lock(Box::new(error))
    }
}

/// A missing go.mod is the build's own error (with its `kiln init` hint).
fn no_go_mod(error: LockError) -> BuildError {
    match error {
        LockError::NoGoMod(root) => BuildError::NoGoMod(root),
        other => other.into(),
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_owned(),
        source,
    }
}

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
    /// go.sum text to give Go when the project has none (locked from gomod2nix.toml).
    pub go_sum: Option<String>,
    /// Folders go.mod's `replace` directives point at, relative to the project, and their
    /// sources.
    pub local_replaces: Vec<(String, SourceTree)>,
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
    pub static_sources: Option<Vec<crate::static_base::StaticSource>>,
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

/// Where the sources go in a build folder, and where each local `replace` folder goes, so
/// every `replace` path (`../lib`, `../../shared/x`) resolves inside the build folder as it
/// does beside the project: the sources sit as many folders deep as the longest climb, under
/// the project's own folder names (so a sibling can never land on the project itself).
/// `-trimpath` keeps these paths out of the binary.
fn sandbox_layout(
    base: &Path,
    project_root: &Path,
    replaces: &[(String, SourceTree)],
) -> (PathBuf, Vec<PathBuf>) {
    let climb = |folder: &str| {
        let mut height: isize = 0;
        let mut lowest: isize = 0;
        for component in Path::new(folder).components() {
            match component {
                std::path::Component::ParentDir => height -= 1,
                std::path::Component::Normal(_) => height += 1,
                _ => {}
            }
            lowest = lowest.min(height);
        }
        lowest.unsigned_abs()
    };
    let levels = replaces
        .iter()
        .map(|(folder, _)| climb(folder))
        .max()
        .unwrap_or(0)
        .max(1);
    let canonical = std::fs::canonicalize(project_root).unwrap_or_else(|_| project_root.to_owned());
    let names: Vec<&std::ffi::OsStr> = canonical
        .components()
        .filter_map(|component| match component {
            std::path::Component::Normal(name) => Some(name),
            _ => None,
        })
        .collect();
    let mut sources = base.to_owned();
    for level in (0..levels).rev() {
        match names.len().checked_sub(level + 1) {
            Some(index) => sources.push(names[index]),
            None => sources.push(format!("level{level}")),
        }
    }
    let copies = replaces
        .iter()
        .map(|(folder, _)| normalise(&sources.join(folder)))
        .collect();
    (sources, copies)
}

/// Why `relative` (a replace folder) reaches the file system root from the absolute `root`:
/// it climbs above it, or ends there. `None` for a folder below the root.
fn climb_to_root(root: &Path, relative: &str) -> Option<&'static str> {
    let root = std::path::absolute(root).unwrap_or_else(|_| root.to_owned());
    let mut depth: usize = 0;
    for component in root.join(relative).components() {
        match component {
            std::path::Component::Normal(_) => depth += 1,
            std::path::Component::ParentDir if depth == 0 => {
                return Some("climbs above the file system root");
            }
            std::path::Component::ParentDir => depth -= 1,
            _ => {}
        }
    }
    (depth == 0).then_some("is the file system root")
}

/// How Go reads a project's modules: from vendor/ when the sources (as hashed, .gitignore
/// honoured) hold vendor/modules.txt, else from the lock's module proxy. Builds and shells
/// decide it the same way.
fn mod_mode(tree: &SourceTree) -> ModMode {
    if tree.contains("vendor/modules.txt") {
        ModMode::Vendor
    } else {
        ModMode::Readonly
    }
}

/// `path` with `.` and `..` resolved lexically.
fn normalise(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::ParentDir => {
                normal.pop();
            }
            std::path::Component::CurDir => {}
            other => normal.push(other),
        }
    }
    normal
}

/// Builds into one store, reporting progress through `status`.
pub struct Builder<'a> {
    store: Store,
    status: &'a dyn Fn(&str),
    toolchain: OnceCell<Toolchain>,
    /// Each project's sources, scanned and hashed once per run however many of its targets
    /// are built.
    scanned: RefCell<BTreeMap<PathBuf, SourceTree>>,
}

impl<'a> Builder<'a> {
    pub fn new(store: Store, status: &'a dyn Fn(&str)) -> Self {
        Builder {
            store,
            status,
            toolchain: OnceCell::new(),
            scanned: RefCell::new(BTreeMap::new()),
        }
    }

    /// The store it builds into.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The toolchain (found and identified once per run).
    pub fn toolchain(&self) -> Result<&Toolchain, BuildError> {
        if let Some(toolchain) = self.toolchain.get() {
            return Ok(toolchain);
        }
        let go = toolchain::find_go()?;
        let _lock = self.store.lock_toolchains(|| {
            (self.status)("waiting for another kiln identifying the Go toolchain");
        })?;
        let resolved = toolchain::resolve(&go, &self.store.toolchain_cache())?;
        Ok(self.toolchain.get_or_init(|| resolved))
    }

    /// The folders outside the project that go.mod's `replace` directives point at, with
    /// their sources. A folder inside the project is part of its sources already. The path is
    /// taken as written: a link on its way out of the project is refused, so what is hashed and
    /// copied is what the path names.
    fn replace_folders(
        &self,
        root: &Path,
        go_mod: &modfile::ModFile,
    ) -> Result<Vec<(String, SourceTree)>, BuildError> {
        let mut folders: Vec<(String, SourceTree)> = Vec::new();
        for replace in go_mod
            .replaces
            .iter()
            .filter(|replace| replace.new_version.is_none())
        {
            // `..` past the root stays at the root, so a climb of forty levels is the root
            // (or a folder under it) wherever the project sits.
            if let Some(reason) = climb_to_root(root, &replace.new_path) {
                return Err(BuildError::ReplaceAtRoot {
                    module: replace.old_path.clone(),
                    folder: replace.new_path.clone(),
                    line: replace.line,
                    reason,
                });
            }
            let folder = normalise(&root.join(&replace.new_path));
            if folder.starts_with(root) {
                continue;
            }
            let mut walked = PathBuf::new();
            for component in folder.components() {
                walked.push(component);
                if !root.starts_with(&walked) && walked.is_symlink() {
                    return Err(BuildError::ReplaceThroughLink {
                        module: replace.old_path.clone(),
                        folder: replace.new_path.clone(),
                        line: replace.line,
                        link: walked,
                    });
                }
            }
            if !folder.is_dir() {
                return Err(BuildError::ReplaceFolder {
                    module: replace.old_path.clone(),
                    folder: replace.new_path.clone(),
                    line: replace.line,
                    path: folder,
                });
            }
            if folders
                .iter()
                .any(|(written, _)| written == &replace.new_path)
            {
                continue;
            }
            folders.push((replace.new_path.clone(), self.sources(&folder)?));
        }
        Ok(folders)
    }

    /// The toolchain kiln.lock pins: the local one when it is that release, else the release
    /// `kiln lock` fetched into the store.
    pub fn pinned_toolchain(&self, pin: &GoPin) -> Result<Toolchain, BuildError> {
        let local = self.toolchain();
        if let Ok(local) = &local
            && local.version == pin.toolchain
        {
            return Ok((*local).clone());
        }
        if let Some(go) = lock::fetched_toolchain(&self.store, pin) {
            let _lock = self.store.lock_toolchains(|| {
                (self.status)("waiting for another kiln identifying the Go toolchain");
            })?;
            return Ok(toolchain::resolve(&go, &self.store.toolchain_cache())?);
        }
        Err(BuildError::ToolchainPin {
            pinned: pin.toolchain.clone(),
            local: match local {
                Ok(local) => local.version.clone(),
                Err(_) => "missing".to_owned(),
            },
        })
    }

    /// The sources of the project at `root` (the kiln home left out when it lies inside).
    fn sources(&self, root: &Path) -> Result<SourceTree, BuildError> {
        if let Some(tree) = self.scanned.borrow().get(root) {
            return Ok(tree.clone());
        }
        let home = self.store.root().parent().unwrap_or(self.store.root());
        let home = std::fs::canonicalize(home).unwrap_or_else(|_| home.to_owned());
        let tree = sources::scan(root, &[home])?;
        self.scanned
            .borrow_mut()
            .insert(root.to_owned(), tree.clone());
        Ok(tree)
    }

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
        let toolchain_line;
        let mod_mode = if mod_mode(&tree) == ModMode::Vendor {
            // Vendored: go.mod and vendor/ are all Go reads (no go.sum, lock or replace folder).
            let go_mod = lock::read_go_mod(&project.root).map_err(no_go_mod)?;
            toolchain_line = go_mod.toolchain.clone();
            let modules_path = project.root.join("vendor/modules.txt");
            let text = std::fs::read_to_string(&modules_path).map_err(io_error(&modules_path))?;
            let vendored = vendor::parse(&text, Path::new("vendor/modules.txt"))?;
            vendor::check_consistency(&go_mod, &vendored)?;
            ModMode::Vendor
        } else {
            let wants = lock::wants(&project.root).map_err(no_go_mod)?;
            toolchain_line = wants.go_mod.toolchain.clone();
            wants.require_pins()?;
            // A lock pins the toolchain even when no module is required.
            let locked = lock::read_lock(&project.root)?;
            if wants.source != PinSource::Nothing || locked.is_some() {
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
                if wants.source == PinSource::Gomod2nix {
                    go_sum = Some(lock::go_sum_text(&locked));
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
            },
        );
        Ok(PackagePlan {
            package: package.clone(),
            recipe,
            tree,
            mod_mode,
            toolchain,
            modules,
            go_sum,
            local_replaces,
        })
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
        let annotations = annotations(project, image, package, &created);
        let image_fields = json!({
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
        Ok(ImagePlan {
            image: image.clone(),
            platforms,
            files: placed,
            declared,
            static_sources,
            annotations,
            recipe,
            created,
            mtime: epoch as u64,
        })
    }

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
                    std::fs::write(&path, go_sum).map_err(io_error(&path))?;
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

    /// Build the image of `plan` (and its packages) unless the store has it: one manifest per
    /// platform, under an index when there are several, in a docker-archive that is also an
    /// OCI layout.
    pub fn realise_image(&self, plan: &ImagePlan) -> Result<Realised, BuildError> {
        let mut packages = Vec::new();
        for platform in &plan.platforms {
            packages.push(self.realise_package(&platform.package)?);
        }
        let label = format!(
            "{}:{}",
            plan.image.reference.familiar_name(),
            plan.image.tag()
        );
        self.store.realise(
            &plan.recipe,
            || (self.status)(&format!("waiting for another kiln building image {label}")),
            |temp| {
                (self.status)(&format!(
                    "building image {label} (image `{}`{})",
                    plan.image.key,
                    if plan.platforms.len() > 1 {
                        format!(
                            ", {}",
                            plan.platforms
                                .iter()
                                .map(|platform| platform.package.package.platform.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    } else {
                        String::new()
                    }
                ));
                self.write_image(plan, &packages, temp)?;
                Ok(temp.to_owned())
            },
        )
    }

    /// Write the image archive of `plan` at `temp`, its packages built.
    fn write_image(
        &self,
        plan: &ImagePlan,
        packages: &[Realised],
        temp: &Path,
    ) -> Result<(), BuildError> {
        let static_layer = match &plan.static_sources {
            Some(sources) => {
                let rootfs = crate::static_base::realise(&self.store, sources, self.status)?;
                Some(crate::static_base::layer_tree(&rootfs)?)
            }
            None => None,
        };
        let mut requests = Vec::new();
        for (platform, package) in plan.platforms.iter().zip(packages) {
            let base = match &platform.base {
                Some((reference, digest)) => Some(self.realise_base(reference, digest)?),
                None => None,
            };
            let base_layers = match &base {
                Some(base) => base.manifest.layers.len(),
                None => usize::from(static_layer.is_some()),
            };
            let mut request = self.image_request(
                plan,
                platform,
                &package.path,
                static_layer.as_ref(),
                base_layers,
            )?;
            request.base = base;
            requests.push(request);
        }
        let file = std::fs::File::create(temp).map_err(io_error(temp))?;
        let mut archive = ArchiveWriter::to_file(file, ArchiveKind::Docker, plan.mtime)
            .map_err(io_error(temp))?;
        let mut images = Vec::new();
        let mut referrers = Vec::new();
        for ((request, platform), package) in requests.iter().zip(&plan.platforms).zip(packages) {
            let image =
                build_image(request, &mut archive, &mut |_| {}).map_err(writing_to(temp))?;
            if plan.image.sbom {
                let document =
                    sbom_document(plan, platform, &package.path, &image, &self.store.go_home())?;
                referrers.push(
                    crate::sbom::write_artifact(
                        &mut archive,
                        &image.manifest_descriptor,
                        &document,
                        &plan.created,
                    )
                    .map_err(|source| BuildError::Sbom {
                        image: plan.image.key.clone(),
                        source: Box::new(source),
                    })?,
                );
            }
            images.push(image);
        }
        let entry = if images.len() == 1 {
            images[0].layout_entry()
        } else {
            let (_, descriptor) =
                crate::oci::image::build_index(&images, &plan.annotations, &mut archive)
                    .map_err(writing_to(temp))?;
            crate::oci::layout::index_entry(&descriptor, &plan.image.reference, &images)
        };
        let mut entries = vec![entry];
        entries.extend(referrers);
        archive.finish(&entries).map_err(io_error(temp))?;
        Ok(())
    }

    /// The base image `reference` pinned at `digest`: fetched once into the store (every blob
    /// verified) as an OCI layout, then read from there.
    pub fn realise_base(
        &self,
        reference: &crate::oci::reference::Reference,
        digest: &crate::oci::digest::Digest,
    ) -> Result<crate::oci::image::BaseImage, BuildError> {
        let realised = self.store.realise(
            &recipes::base_image(digest),
            || (self.status)(&format!("waiting for another kiln fetching {reference}")),
            |temp| {
                (self.status)(&format!("fetching base image {reference}@{digest}"));
                let fetched = (|| -> Result<(), crate::transport::TransportError> {
                    let options = crate::registry::client::ClientOptions::from_env(false);
                    let remote = crate::transport::RemoteSource::connect(reference, &options)?;
                    let pinned = crate::oci::reference::Reference {
                        tag: None,
                        digest: Some(*digest),
                        ..reference.clone()
                    };
                    let root = remote.resolve(&pinned)?;
                    let graph = crate::transport::walk(&remote, root, Default::default())?;
                    let entry = graph.layout_entry(None, Some("base".to_owned()));
                    crate::transport::write_layout(&remote, &graph, temp, entry)
                })();
                fetched.map_err(|source| BuildError::FetchBase {
                    base: reference.to_string(),
                    digest: digest.to_string(),
                    source: Box::new(source),
                })?;
                Ok::<_, BuildError>(temp.to_owned())
            },
        )?;
        let path = realised.path;
        let read_error = |source| BuildError::FetchBase {
            base: reference.to_string(),
            digest: digest.to_string(),
            source: Box::new(source),
        };
        let local = crate::transport::LocalSource::open(&path, path.display().to_string())
            .map_err(read_error)?;
        let descriptor = local
            .source
            .index_entries()
            .map_err(|error| read_error(error.into()))?
            .and_then(|entries| entries.into_iter().next())
            .map(|(descriptor, _)| descriptor)
            .filter(|descriptor| descriptor.digest == *digest)
            .ok_or_else(|| {
                read_error(crate::transport::TransportError::Invalid {
                    location: path.display().to_string(),
                    message: format!("the store's copy does not hold {digest}"),
                })
            })?;
        use crate::transport::BlobSource;
        let bytes = local.read_document(&descriptor).map_err(read_error)?;
        let invalid = |message: String| {
            read_error(crate::transport::TransportError::Invalid {
                location: format!("{reference}@{digest}"),
                message,
            })
        };
        if !crate::oci::spec::media_type::is_manifest(&descriptor.media_type) {
            return Err(invalid(format!(
                "it is a {}, not an image manifest",
                descriptor.media_type
            )));
        }
        let manifest: crate::oci::spec::Manifest = serde_json::from_slice(&bytes)
            .map_err(|error| invalid(format!("its manifest is not valid: {error}")))?;
        let config_bytes = local.read_document(&manifest.config).map_err(read_error)?;
        let config: crate::oci::spec::ImageConfig = serde_json::from_slice(&config_bytes)
            .map_err(|error| invalid(format!("its config is not valid: {error}")))?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(invalid(format!(
                "its manifest lists {} layers and its config {} diff_ids",
                manifest.layers.len(),
                config.rootfs.diff_ids.len()
            )));
        }
        Ok(crate::oci::image::BaseImage {
            reference: reference.clone(),
            descriptor,
            manifest,
            config,
            layout: path,
        })
    }

    /// The request for one platform's image: the layers from least to most often changing
    /// (kiln's static base, the declared folders and links, each `[[files]]` entry, the
    /// package's programs), merged to fit `max_layers`.
    fn image_request(
        &self,
        plan: &ImagePlan,
        platform: &PlatformPlan,
        package_path: &Path,
        static_layer: Option<&FileTree>,
        base_layers: usize,
    ) -> Result<ImageRequest, BuildError> {
        let image = &plan.image;
        let package = &platform.package.package;
        let mut tree = FileTree::new();
        for path in &image.paths {
            let source = package_path.join(path.as_str());
            if std::fs::symlink_metadata(&source).is_err() {
                let has = std::fs::read_dir(package_path)
                    .map(|entries| {
                        entries
                            .flatten()
                            .map(|entry| format!("/{}", entry.file_name().to_string_lossy()))
                            .collect()
                    })
                    .unwrap_or_default();
                return Err(BuildError::MissingImagePath {
                    image: image.key.clone(),
                    package: package.key.clone(),
                    path: path.to_string(),
                    has,
                });
            }
            tree.add(&source, &path.to_string())?;
        }
        let in_bin = image.paths.iter().any(|path| path.as_str() == "bin");
        let cmd = match (&image.cmd, &package.program) {
            (Some(cmd), _) => Some(cmd.clone()),
            (None, Some(program)) if in_bin => Some(vec![format!("/bin/{program}")]),
            (None, None) if in_bin && package.mains.len() > 1 => {
                return Err(BuildError::NoCommand {
                    image: image.key.clone(),
                    package: package.key.clone(),
                    programs: package.programs().map(str::to_owned).collect(),
                });
            }
            (None, _) => None,
        };
        let on_static = plan.static_sources.is_some();
        let user = match image.user.as_deref() {
            // Numeric, so Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
            Some("nonroot") if on_static => {
                format!("{uid}:{uid}", uid = crate::static_base::NONROOT_UID)
            }
            Some(user) => user.to_owned(),
            None => String::new(),
        };
        let mut container = ContainerConfig {
            user,
            exposed_ports: image
                .expose
                .iter()
                .map(|port| (port.clone(), Default::default()))
                .collect(),
            env: image
                .env
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect(),
            entrypoint: image.entrypoint.clone(),
            cmd,
            working_dir: image.workdir.clone().unwrap_or_default(),
            labels: image.labels.clone(),
            ..ContainerConfig::default()
        };
        if on_static {
            container = crate::oci::image::inherit(
                &ContainerConfig {
                    env: crate::static_base::ENV
                        .iter()
                        .map(|&text| text.to_owned())
                        .collect(),
                    ..ContainerConfig::default()
                },
                &container,
            );
        }
        // Ours, least often changing first; none may place what another places.
        let mut ours: Vec<RequestLayer> = Vec::new();
        ours.push(RequestLayer {
            tree: plan.declared.tree.clone(),
            created_by: "kiln: dirs and symlinks".to_owned(),
            mtime: None,
        });
        for (entry, placed) in image.files.iter().zip(&plan.files) {
            ours.push(RequestLayer {
                tree: placed.tree.clone(),
                created_by: format!("kiln: files {} -> {}", entry.src, entry.dest),
                mtime: None,
            });
        }
        ours.push(RequestLayer {
            tree,
            created_by: format!("kiln: package {}", package.key),
            mtime: None,
        });
        ours.retain(|layer| !layer.tree.is_empty());
        let mut all = FileTree::new();
        for layer in &ours {
            all.merge(layer.tree.clone())?;
        }
        let ours = match image
            .max_layers
            .checked_sub(base_layers)
            .filter(|left| *left > 0)
        {
            Some(left) => fit_layers(ours, left)?,
            None => {
                return Err(BuildError::LayerBudget {
                    image: image.key.clone(),
                    max: image.max_layers,
                    base: base_layers,
                });
            }
        };
        let mut layers = Vec::new();
        if let Some(static_tree) = static_layer {
            layers.push(RequestLayer {
                tree: static_tree.clone(),
                created_by: "kiln: static base".to_owned(),
                mtime: Some(crate::static_base::LAYER_MTIME),
            });
        }
        layers.extend(ours);
        Ok(ImageRequest {
            reference: image.reference.clone(),
            platform: package.platform.clone(),
            created: plan.created.clone(),
            mtime: plan.mtime,
            compression: image.compression,
            container,
            layers,
            annotations: plan.annotations.clone(),
            base: None,
        })
    }
}

/// The SPDX document of one platform's image: kiln.lock's modules and what `go version -m`
/// reads from each program the package built.
fn sbom_document(
    plan: &ImagePlan,
    platform: &PlatformPlan,
    package_path: &Path,
    image: &crate::oci::image::BuiltImage,
    go_home: &Path,
) -> Result<Vec<u8>, BuildError> {
    let sbom_error = |source: crate::sbom::SbomError| BuildError::Sbom {
        image: plan.image.key.clone(),
        source: Box::new(source),
    };
    let bin = package_path.join("bin");
    let mut programs: Vec<String> = std::fs::read_dir(&bin)
        .map_err(io_error(&bin))?
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .map(|name| format!("bin/{name}"))
        .collect();
    programs.sort();
    let toolchain = &platform.package.toolchain;
    let output = std::process::Command::new(&toolchain.go)
        .arg("version")
        .arg("-m")
        .args(&programs)
        .current_dir(package_path)
        // Cleared as for every Go run kiln makes: nothing of the user's environment
        // (GOFLAGS, GOENV files, GOTOOLCHAIN) decides what it prints.
        .env_clear()
        .env("GOTOOLCHAIN", "local")
        .env("GOROOT", &toolchain.goroot)
        .env("GOFLAGS", "")
        .env("GOENV", "off")
        .env("HOME", go_home)
        .output()
        .map_err(io_error(&toolchain.go))?;
    if !output.status.success() {
        return Err(BuildError::Io {
            path: toolchain.go.clone(),
            source: std::io::Error::other(format!(
                "`go version -m` failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )),
        });
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let programs = crate::sbom::parse_go_version_m(&text).map_err(sbom_error)?;
    let input = crate::sbom::SbomInput {
        image: &plan.image.reference,
        version: plan.image.tag(),
        created: &plan.created,
        manifest_digest: image.manifest_descriptor.digest,
        platform: &platform.package.package.platform,
        programs: &programs,
        locked_modules: &platform.package.modules,
        base: match (&plan.static_sources, &platform.base) {
            (Some(sources), _) => Some(crate::sbom::SbomBase::Static(sources)),
            (None, Some((reference, digest))) => Some(crate::sbom::SbomBase::Image {
                reference,
                digest: *digest,
            }),
            (None, None) => None,
        },
    };
    crate::sbom::spdx_bytes(&input).map_err(sbom_error)
}

/// An image error while writing the archive at `path`: a failed write (a full disk) names
/// the file; other errors stay as they are.
fn writing_to(path: &Path) -> impl Fn(crate::oci::image::ImageError) -> BuildError + '_ {
    use crate::oci::image::ImageError;
    use crate::oci::layer::LayerError;
    move |error| match error {
        ImageError::Sink(source) | ImageError::Layer(LayerError::Write(source)) => BuildError::Io {
            path: path.to_owned(),
            source,
        },
        other => BuildError::Image(other),
    }
}

/// Fit `layers` (bottom first) into `budget` layers: the top one (the programs, which change
/// most) stays alone, the bottom ones stay as they are, and those that do not fit in between
/// merge into one.
fn fit_layers(layers: Vec<RequestLayer>, budget: usize) -> Result<Vec<RequestLayer>, BuildError> {
    if layers.len() <= budget {
        return Ok(layers);
    }
    let mut layers = layers;
    let merge = |group: Vec<RequestLayer>| -> Result<RequestLayer, BuildError> {
        let mut tree = FileTree::new();
        let mut created_by = Vec::new();
        for layer in group {
            tree.merge(layer.tree)?;
            created_by.push(layer.created_by);
        }
        Ok(RequestLayer {
            tree,
            created_by: created_by.join("; "),
            mtime: None,
        })
    };
    if budget == 1 {
        return Ok(vec![merge(layers)?]);
    }
    let top = layers.pop().expect("more layers than the budget");
    let overflow = layers.split_off(budget - 2);
    layers.push(merge(overflow)?);
    layers.push(top);
    Ok(layers)
}

/// The `org.opencontainers.image.*` annotations of an image: `created`, `version` (the
/// package's version, else the tag), `title` (the image's name), and `revision` and `source`
/// from a clean git checkout; then the image's own `annotations`, which win.
fn annotations(
    project: &Project,
    image: &Image,
    package: &Package,
    created: &str,
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
    if let Some(git) = crate::project::git::describe(&project.root) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(name: &str) -> RequestLayer {
        let mut tree = FileTree::new();
        tree.insert_node(
            crate::oci::tree::ImagePath::parse_absolute(&format!("/{name}")).unwrap(),
            crate::oci::tree::Node::Directory {
                attributes: crate::oci::tree::Attributes::DIRECTORY,
                origin: None,
            },
        )
        .unwrap();
        RequestLayer {
            tree,
            created_by: name.to_owned(),
            mtime: None,
        }
    }

    fn names(layers: &[RequestLayer]) -> Vec<String> {
        layers
            .iter()
            .map(|layer| layer.created_by.clone())
            .collect()
    }

    #[test]
    fn layers_beyond_the_budget_merge_below_the_programs() {
        let all = || ["dirs", "a", "b", "c", "programs"].map(layer).to_vec();
        assert_eq!(
            names(&fit_layers(all(), 5).unwrap()),
            ["dirs", "a", "b", "c", "programs"]
        );
        assert_eq!(
            names(&fit_layers(all(), 4).unwrap()),
            ["dirs", "a", "b; c", "programs"]
        );
        assert_eq!(
            names(&fit_layers(all(), 2).unwrap()),
            ["dirs; a; b; c", "programs"]
        );
        let one = fit_layers(all(), 1).unwrap();
        assert_eq!(names(&one), ["dirs; a; b; c; programs"]);
        assert_eq!(one[0].tree.len(), 5);
    }

    fn tree() -> SourceTree {
        SourceTree {
            root: PathBuf::new(),
            entries: Vec::new(),
            digest: crate::oci::digest::Digest::from_raw([0; 32]),
        }
    }

    /// `replace x => ../../../../../../..` made kiln hash and copy the whole disk (and
    /// `…/../etc` read /etc), wherever the project sat.
    #[test]
    fn replace_climbing_to_the_root_is_refused() {
        let root = Path::new("/home/user/project");
        assert_eq!(climb_to_root(root, "../lib"), None);
        assert_eq!(climb_to_root(root, "../../../srv/lib"), None);
        assert_eq!(
            climb_to_root(root, "../../.."),
            Some("is the file system root")
        );
        assert_eq!(
            climb_to_root(root, "../../../../etc"),
            Some("climbs above the file system root")
        );
        assert_eq!(
            climb_to_root(root, &"../".repeat(40)),
            Some("climbs above the file system root")
        );
    }

    #[test]
    fn replace_folders_land_where_their_paths_point() {
        let base = Path::new("/b/src");
        let root = Path::new("/nonexistent/work/team/app");
        let (sources, copies) = sandbox_layout(base, root, &[]);
        assert_eq!(sources, Path::new("/b/src/app"));
        assert!(copies.is_empty());
        let replaces = vec![
            ("../lib".to_owned(), tree()),
            ("../../shared/x".to_owned(), tree()),
            ("./../lib2/./y".to_owned(), tree()),
        ];
        let (sources, copies) = sandbox_layout(base, root, &replaces);
        assert_eq!(sources, Path::new("/b/src/team/app"));
        assert_eq!(
            copies,
            [
                Path::new("/b/src/team/lib"),
                Path::new("/b/src/shared/x"),
                Path::new("/b/src/team/lib2/y"),
            ]
        );
        // A sibling named like the project's folder cannot be: the names are the real ones.
        let (sources, copies) =
            sandbox_layout(base, root, &[("../../team2/app".to_owned(), tree())]);
        assert_eq!(sources, Path::new("/b/src/team/app"));
        assert_eq!(copies, [Path::new("/b/src/team2/app")]);
    }
}
