//! One command's run against the store: what `kiln build`, `run`, `shell`, `load`, `push`,
//! `image --base` and `store path` share.
//!
//! A session opens the store, takes a build's share of the gc lock (so a `kiln gc` beside it
//! waits, and it waits for one already running; see [`Store::build_guard`]), keeps the
//! projects it loaded and one [`Builder`] for the whole run (the toolchain is identified and
//! each project's sources hashed once, however many targets are built), and reports progress
//! through one `status` function. Commands are left with their arguments and their printing.

use std::path::{Path, PathBuf};

use crate::builder::{BuildError, Builder};
use crate::diagnostic::Hint;
use crate::project::{ConfigError, Project, Projects, Resolved, TargetError, TargetSpec};
use crate::store::{BuildGuard, Realised, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read the current folder")]
    CurrentFolder(#[source] std::io::Error),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Build(Box<BuildError>),
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
}

/// `Config`, `Target`, `Store` and `Build` are transparent, which hides the inner error from
/// the cause chain the printer walks: its hint is asked for here.
impl Hint for SessionError {
    fn hint(&self) -> Option<String> {
        match self {
            SessionError::Store(inner) => inner.hint(),
            SessionError::Build(inner) => inner.hint(),
            SessionError::Config(inner) => inner.hint(),
            SessionError::Target(inner) => inner.hint(),
            SessionError::Cache(inner) => inner.hint(),
            _ => None,
        }
    }
}

impl From<BuildError> for SessionError {
    fn from(error: BuildError) -> Self {
        SessionError::Build(Box::new(error))
    }
}

/// The store, its gc lock, the projects loaded and the builder of one run.
pub struct Session<'a> {
    builder: Builder<'a>,
    projects: Projects,
    guard: Option<BuildGuard>,
    current: Option<PathBuf>,
}

impl<'a> Session<'a> {
    /// Open the kiln home's store and take a build's share of the gc lock; `status` hears
    /// about waits and builds.
    ///
    /// With `KILN_CACHE` set, the store asks those caches before it builds an output, and
    /// with `KILN_CACHE_SECRET_KEY_FILE` it pushes what it built ([`crate::cache`]); the
    /// caches tell `reporter` what they did.
    pub fn open(
        status: &'a dyn Fn(&str),
        reporter: Box<dyn crate::cache::CacheReporter>,
    ) -> Result<Self, SessionError> {
        let mut store = Store::open()?;
        if let Some(cache) = crate::cache::Cache::from_env(reporter)? {
            store = store.with_substituter(std::sync::Arc::new(cache));
        }
        let guard = store.build_guard(|| status("waiting for `kiln gc` to finish"))?;
        Ok(Self::with_store(store, Some(guard), status))
    }

    /// Open the store without the gc lock: for a command that only reads names and paths
    /// (`kiln store path`) or hands the store to a long-lived process (`kiln shell`).
    pub fn open_unguarded(status: &'a dyn Fn(&str)) -> Result<Self, SessionError> {
        Ok(Self::with_store(Store::open()?, None, status))
    }

    fn with_store(store: Store, guard: Option<BuildGuard>, status: &'a dyn Fn(&str)) -> Self {
        Session {
            builder: Builder::new(store, status),
            projects: Projects::new(),
            guard,
            current: None,
        }
    }

    pub fn store(&self) -> &Store {
        self.builder.store()
    }

    pub fn builder(&self) -> &Builder<'a> {
        &self.builder
    }

    /// Give up the gc lock early: before `exec`ing a long-running program, which keeps an
    /// output it runs even if a `kiln gc` then unlinks it (its inode lives on).
    pub fn release_guard(&mut self) {
        self.guard = None;
    }

    fn current_folder(&mut self) -> Result<&Path, SessionError> {
        if self.current.is_none() {
            self.current = Some(std::env::current_dir().map_err(SessionError::CurrentFolder)?);
        }
        Ok(self.current.as_deref().unwrap_or(Path::new(".")))
    }

    /// The project a target names (loaded once per run).
    pub fn project(&mut self, spec: &TargetSpec) -> Result<&Project, SessionError> {
        let current = self.current_folder()?.to_owned();
        Ok(self.projects.load(spec, &current)?)
    }

    /// Build one target unless the store has it; returns its name (the package's or image's
    /// key) and the output.
    pub fn build(&mut self, spec: &TargetSpec) -> Result<(String, Realised), SessionError> {
        let current = self.current_folder()?.to_owned();
        let project = self.projects.load(spec, &current)?;
        let resolved = project.resolve(spec.name.as_deref())?;
        let key = resolved.key().to_owned();
        root_lock(self.builder.store(), project)?;
        let built = match resolved {
            Resolved::Package(package) => {
                let plan = self.builder.plan_package(project, package)?;
                self.builder.realise_package(&plan)?
            }
            Resolved::Image(image) => {
                let plan = self.builder.plan_image(project, image)?;
                self.builder.realise_image(&plan)?
            }
        };
        Ok((key, built))
    }

    /// The project of a target and the builder, together (a plan needs both).
    pub fn project_and_builder(
        &mut self,
        spec: &TargetSpec,
    ) -> Result<(&Project, &Builder<'a>), SessionError> {
        let current = self.current_folder()?.to_owned();
        let project = self.projects.load(spec, &current)?;
        Ok((project, &self.builder))
    }
}

/// Keep what the project's kiln.lock pins (its modules, Go release, C toolchain and bases)
/// through `kiln gc` for as long as the file exists, as `kiln lock` does: a fresh clone that
/// is built, or entered with `kiln shell`, without `kiln lock` ever running on this machine
/// would otherwise lose those inputs to the next `kiln gc` and need the network again (and a
/// shell would lose the Go and Zig on its PATH).
pub fn root_lock(store: &Store, project: &Project) -> Result<(), StoreError> {
    let lock = project.root.join(crate::lock::LOCK_FILE);
    if lock.is_file() {
        store.add_pins_root(&lock)?;
    }
    Ok(())
}
