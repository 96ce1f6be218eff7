//! The validated project the rest of kiln uses: packages, images and what an image holds.
//! Every value here has passed kiln.toml's checks, so a builder reads names, paths and modes
//! without checking them again, and an error found later can still name the place in
//! kiln.toml a package, image or file entry came from (`defined_at`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::error::Position;
use crate::oci::compression::Compression;
use crate::oci::reference::Reference;
use crate::oci::spec::Platform;
use crate::oci::timestamp::Created;
use crate::oci::tree::ImagePath;

/// One Go main package of a package, and the program it becomes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MainPackage {
    /// The folder relative to the project, `.` for the root (`cmd/server`).
    pub folder: String,
    /// The program's file name under `bin/`.
    pub program: String,
}

/// A Go program, or several built together.
#[derive(Clone, Debug)]
pub struct Package {
    pub key: String,
    pub name: String,
    pub version: Option<String>,
    pub mains: Vec<MainPackage>,
    /// What `kiln run` runs, when the configuration says or it is unambiguous.
    pub program: Option<String>,
    pub ldflags: Vec<String>,
    pub tags: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// The platform `kiln build`, `run` and `shell` use: this machine's when `platforms` lists
    /// it, else the first listed.
    pub platform: Platform,
    /// Every platform the package is built for (`platforms = [...]`), `platform` among them;
    /// the default for its images.
    pub platforms: Vec<Platform>,
    /// `cgo = true`: built with `CGO_ENABLED=1` and kiln's pinned C toolchain; `None` builds
    /// with `CGO_ENABLED=0`.
    pub cgo: Option<Cgo>,
    pub defined_at: Position,
}

/// A cgo package's C settings (`cgo = true`, `c-libc`, `glibc`, `cflags`, `c-ldflags`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cgo {
    pub libc: Libc,
    /// Added to `CGO_CFLAGS` and `CGO_CXXFLAGS` after kiln's own.
    pub cflags: Vec<String>,
    /// Added to `CGO_LDFLAGS` after kiln's own.
    pub ldflags: Vec<String>,
}

/// The C library a cgo package links (`c-libc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Libc {
    /// musl, linked statically: the program runs on any base, `scratch` included.
    Musl,
    /// glibc, linked dynamically against the symbols of `version` (kiln.toml's `glibc`, else
    /// kiln's default for the platform, see [`crate::toolchain::zig::glibc_version`]): the
    /// program runs on a base with glibc that version or newer, and needs its loader.
    Glibc { version: Option<GlibcVersion> },
}

impl Libc {
    /// kiln.toml's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Libc::Musl => "musl",
            Libc::Glibc { .. } => "glibc",
        }
    }
}

/// A glibc release, `2.MINOR` (glibc's major has been 2 since 1997).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GlibcVersion {
    pub minor: u32,
}

impl std::fmt::Display for GlibcVersion {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "2.{}", self.minor)
    }
}

impl Package {
    /// The package as built for `platform` (which changes its store name).
    pub fn for_platform(&self, platform: &Platform) -> Package {
        Package {
            platform: platform.clone(),
            ..self.clone()
        }
    }

    pub fn programs(&self) -> impl Iterator<Item = &str> {
        self.mains.iter().map(|main| main.program.as_str())
    }

    /// `name-version` or `name`: the readable part of its store path.
    pub fn store_label(&self) -> String {
        match &self.version {
            Some(version) => format!("{}-{version}", self.name),
            None => self.name.clone(),
        }
    }
}

/// What an image starts from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Base {
    /// kiln's own base (`base = "static"`): users, CA certificates, tzdata, /tmp; its sources
    /// pinned in kiln.lock.
    Static,
    /// An image from a registry, pinned per platform in kiln.lock.
    Image(Reference),
}

/// The name of kiln's own base in `base = "…"`.
pub const STATIC_BASE: &str = "static";

/// The default `max_layers`: the base's layers and the image's own together. Docker refuses
/// images of more than about 125 layers, and every layer costs a mount at run time.
pub const DEFAULT_MAX_LAYERS: usize = 16;

/// `[[images.NAME.files]]`: a file or folder of the project placed in the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilesEntry {
    /// Relative to the project, normalised (`static`, `config/app.yaml`).
    pub src: String,
    /// An absolute image path; for a folder, where its contents go; for a file, its path, or
    /// the folder it goes into when it ends with `/`.
    pub dest: String,
    /// The mode of every regular file placed (default: 0755 if executable, else 0644).
    pub mode: Option<u32>,
    pub uid: u32,
    pub gid: u32,
    /// Globs over paths relative to `src` (`**/*.html`); empty means everything.
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub defined_at: Position,
}

/// `[[images.NAME.dirs]]`: an empty folder with an owner and mode (state a non-root user may
/// write).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub path: ImagePath,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// `[[images.NAME.symlinks]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymlinkEntry {
    pub path: ImagePath,
    pub target: String,
}

/// An image of a package.
#[derive(Clone, Debug)]
pub struct Image {
    pub key: String,
    pub package: String,
    pub reference: Reference,
    pub paths: Vec<ImagePath>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub expose: Vec<String>,
    /// Folders the image declares as volumes (`Volumes` of its config), sorted, each once.
    pub volumes: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub created: Created,
    pub compression: Compression,
    /// The image this one starts from (`base = "REF"` or `"static"`).
    pub base: Option<Base>,
    /// The platforms it is built for: one image manifest each, under an index when several.
    pub platforms: Vec<Platform>,
    pub files: Vec<FilesEntry>,
    pub dirs: Vec<DirEntry>,
    pub symlinks: Vec<SymlinkEntry>,
    /// At most this many layers, the base's included; the image's own layers beyond it merge.
    pub max_layers: usize,
    /// Manifest annotations added to those kiln sets (`org.opencontainers.image.*`).
    pub annotations: BTreeMap<String, String>,
    /// Whether an SPDX SBOM is stored beside the image.
    pub sbom: bool,
    pub defined_at: Position,
}

impl Image {
    pub fn tag(&self) -> &str {
        self.reference.tag.as_deref().unwrap_or("latest")
    }
}

/// A loaded project.
#[derive(Clone, Debug)]
pub struct Project {
    /// The folder holding kiln.toml.
    pub root: PathBuf,
    /// kiln.toml and every included file, in load order.
    pub files: Vec<PathBuf>,
    pub packages: BTreeMap<String, Package>,
    pub images: BTreeMap<String, Image>,
}
