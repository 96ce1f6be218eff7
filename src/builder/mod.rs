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
//! an error asking for `kiln lock`. Image recipe (`image/5`): the package's store name for each
//! platform, the image's section, each platform's pinned base, the static base's sources, the
//! digests of the placed files and of the declared folders and links, the annotations (git's
//! revision and source among them), the source time (`SOURCE_DATE_EPOCH`) and the resolved
//! `created`.
//!
//! The files, in pipeline order: [`plan`] (recipes and store names), [`sandbox`] (the build
//! folder's layout and which `replace` folders are allowed), [`package`] (Go in the build
//! folder, through [`go`] and [`crate::toolchain`], from [`sources`]), [`image`] (bases, layers
//! fitted to `max_layers`, the archive) with [`files`] (what `[[files]]` places) and
//! [`sbom`]; [`shell`] is the environment `kiln shell` gives.

pub mod executable;
pub mod files;
pub mod go;
pub mod image;
pub mod package;
pub mod plan;
pub mod sandbox;
pub mod sbom;
pub mod shell;
pub mod source_index;
pub mod source_walk;
pub mod sources;
pub mod worktree;

pub use plan::{ImagePlan, PackagePlan, PlatformPlan};

use std::cell::{OnceCell, RefCell};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::diagnostic::{Hint, PathError};
use crate::gomod::{modfile, vendor};
use crate::lock::LockError;
use crate::lock::lockfile::GoPin;
use crate::store::{Store, StoreError};

use self::go::{GoError, ModMode};
use self::sources::{SourceTree, SourcesError};
use crate::toolchain::{self, Toolchain, ToolchainError};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Toolchain(#[from] ToolchainError),
    #[error(transparent)]
    ModFile(#[from] modfile::ModFileError),
    #[error(transparent)]
    Vendor(#[from] vendor::VendorError),
    #[error(
        "the project needs {requirements} (go.mod and its pins), and there is no kiln.lock (nor vendor/)"
    )]
    Unlocked { requirements: String },
    #[error("kiln.lock is out of date:\n  {}", .differences.join("\n  "))]
    StaleLock { differences: Vec<String> },
    #[error("the project builds with {pinned} (go.mod, kiln.lock), and the go here is {local}")]
    ToolchainPin { pinned: String, local: String },
    #[error(transparent)]
    Lock(Box<LockError>),
    #[error("image `{image}` starts from {base}, which kiln.lock does not pin for {platform}")]
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
    #[error("go.mod:{line}: replace {module} => {folder}: {} is a link", .link.display())]
    ReplaceThroughLink {
        module: String,
        folder: String,
        line: usize,
        link: PathBuf,
    },
    #[error("go.mod:{line}: replace {module} => {folder}: {} is not a folder", .path.display())]
    ReplaceFolder {
        module: String,
        folder: String,
        line: usize,
        path: PathBuf,
    },
    #[error(
        "go.mod:{line}: replace {module} => {folder}: it {reason}, so kiln would hash and copy the whole disk"
    )]
    ReplaceAtRoot {
        module: String,
        folder: String,
        line: usize,
        reason: &'static str,
    },
    #[error(transparent)]
    Sources(#[from] SourcesError),
    #[error(transparent)]
    Worktree(#[from] worktree::WorktreeError),
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
    #[error("image `{image}` needs a `cmd`: package `{package}` builds several programs ({})", .programs.join(", "))]
    NoCommand {
        image: String,
        package: String,
        programs: Vec<String>,
    },
    #[error(transparent)]
    Image(#[from] crate::oci::image::ImageError),
    #[error(transparent)]
    Files(#[from] files::FilesError),
    #[error(transparent)]
    Executable(#[from] executable::ExecutableError),
    #[error(transparent)]
    Zig(#[from] crate::toolchain::zig::ZigError),
    #[error("package `{package}` has cgo = true, and kiln.lock pins no Zig C toolchain for {host}")]
    ZigUnpinned { package: String, host: String },
    #[error("cannot make the SBOM of image `{image}`")]
    Sbom {
        image: String,
        #[source]
        source: Box<crate::sbom::SbomError>,
    },
    #[error(transparent)]
    StaticBase(#[from] crate::static_base::StaticBaseError),
    #[error(
        "image `{image}` starts from kiln's static base, and kiln.lock does not pin its sources"
    )]
    UnpinnedStatic { image: String },
    #[error("image `{image}` may have {max} layers (max_layers), and its base alone has {base}")]
    LayerBudget {
        image: String,
        max: usize,
        base: usize,
    },
    #[error(transparent)]
    Tree(#[from] crate::oci::tree::TreeError),
    #[error(transparent)]
    Timestamp(#[from] crate::oci::timestamp::TimestampError),
    #[error(transparent)]
    Path(#[from] PathError),
}

impl Hint for BuildError {
    fn hint(&self) -> Option<String> {
        match self {
            BuildError::Vendor(inner) => inner.hint(),
            BuildError::StaticBase(inner) => inner.hint(),
            BuildError::Store(inner) => inner.hint(),
            BuildError::Go(inner) => inner.hint(),
            BuildError::Toolchain(inner) => inner.hint(),
            BuildError::Lock(inner) => inner.hint(),
            BuildError::Sources(inner) => inner.hint(),
            BuildError::Worktree(inner) => inner.hint(),
            BuildError::Image(inner) => inner.hint(),
            BuildError::Files(inner) => inner.hint(),
            BuildError::Executable(inner) => inner.hint(),
            BuildError::Tree(inner) => inner.hint(),
            BuildError::Zig(inner) => inner.hint(),
            BuildError::ZigUnpinned { .. } => Some(
                "run `kiln lock`: it pins the ziglang wheel and fetches it into the store".to_owned(),
            ),
            BuildError::Unlocked { .. } => {
                Some("run `kiln lock` to fetch and pin them; builds then run offline".to_owned())
            }
            BuildError::StaleLock { .. } => Some("run `kiln lock`".to_owned()),
            BuildError::ToolchainPin { pinned, .. } => Some(format!(
                "run `kiln lock` to fetch {pinned}, or put {pinned} first on PATH (or in KILN_GO)"
            )),
            BuildError::UnpinnedBase { .. } => {
                Some("run `kiln lock` to resolve it to a digest".to_owned())
            }
            BuildError::FetchBase { .. } => Some(
                "run `kiln lock` where the registry is reachable: it fetches the pinned base into the store, and builds after that need no network".to_owned(),
            ),
            BuildError::ReplaceThroughLink { .. } => {
                Some("point the replace directive at the real folder".to_owned())
            }
            BuildError::ReplaceFolder { .. } => {
                Some("the folder must exist beside the project wherever it is built".to_owned())
            }
            BuildError::ReplaceAtRoot { .. } => Some(
                "point the replace directive at the module's folder beside the project".to_owned(),
            ),
            BuildError::NoCommand { programs, .. } => Some(format!(
                "e.g. cmd = [\"/bin/{}\"]",
                programs.first().map(String::as_str).unwrap_or("PROGRAM")
            )),
            BuildError::UnpinnedStatic { .. } => {
                Some("run `kiln lock` to pin them (the CA bundle and tzdata, by sha256)".to_owned())
            }
            BuildError::LayerBudget { .. } => {
                Some("raise max_layers, or start from a base with fewer layers".to_owned())
            }
            _ => None,
        }
    }
}

impl From<LockError> for BuildError {
    fn from(error: LockError) -> Self {
        BuildError::Lock(Box::new(error))
    }
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

    /// The toolchain kiln.lock pins: the local one when it is that release, else the release
    /// `kiln lock` fetched into the store.
    pub fn pinned_toolchain(&self, pin: &GoPin) -> Result<Toolchain, BuildError> {
        let local = self.toolchain();
        if let Ok(local) = &local
            && local.version == pin.toolchain
        {
            return Ok((*local).clone());
        }
        let fetched = pin
            .toolchain_h1
            .get(&crate::toolchain::go_host())
            .and_then(|h1| crate::toolchain::fetched_release(&self.store, &pin.toolchain, h1));
        if let Some(go) = fetched {
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
        let state = self.store.project_state(root)?;
        let index = state.join("sources.index");
        let temp_folder = self.store.root().join("tmp");
        let tree = sources::scan(
            root,
            &[home],
            Some(sources::IndexPlace {
                index: &index,
                temp_folder: &temp_folder,
            }),
        )?;
        self.scanned
            .borrow_mut()
            .insert(root.to_owned(), tree.clone());
        Ok(tree)
    }
}
