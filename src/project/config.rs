//! kiln.toml: a project's packages (Go programs) and images, possibly split across included
//! files.
//!
//! ```toml
//! schema = 1                      # the format version; required in kiln.toml
//! include = ["container.toml"]    # more definitions, relative to this file
//!
//! [packages.default]              # `kiln build`, `kiln run`
//! name = "example"                # default: the section's key
//! version = "0.1"
//! main = "."                      # or ["./cmd/server", "./cmd/cli"]
//! program = "example"             # what `kiln run` runs
//! ldflags = ["-s", "-w"]          # or one string
//! tags = ["netgo"]
//! env = { GOEXPERIMENT = "loopvar" }
//! platform = "linux/amd64"        # default: this machine's
//! # or platforms = ["linux/amd64", "linux/arm64"]: cross-compiled (CGO is always off)
//!
//! [images.container]              # `kiln build .#container`
//! package = "default"
//! name = "example"                # default: the package's name
//! tag = "0.1"                     # default: the package's version
//! paths = ["/bin"]                # package folders placed at the image root
//! cmd = ["/bin/example"]          # default: the package's program
//! # entrypoint, env, workdir, user, expose, labels, created, compression
//! base = "static"                 # kiln's own base, or an image: "ghcr.io/team/base:1"
//! platforms = ["linux/amd64", "linux/arm64"]   # default: the package's `platforms`
//! max_layers = 16                 # the base's layers included
//! annotations = { "org.example.team" = "payments" }
//! sbom = true
//!
//! [[images.container.files]]      # project files anywhere in the image
//! src = "static"                  # a file or folder of the project
//! dest = "/srv/static"            # a folder's contents go there
//! mode = "0644"                   # files; optional, as are uid, gid, include and exclude
//! exclude = ["**/*.map"]
//!
//! [[images.container.dirs]]       # empty folders, e.g. state a non-root user writes
//! path = "/var/lib/app"
//! mode = "0700"
//! uid = 65532
//! gid = 65532
//!
//! [[images.container.symlinks]]
//! path = "/usr/bin/app"
//! target = "/bin/app"
//! ```
//!
//! Every error names file:line:column; an unknown key suggests the closest known one. A
//! package or image defined twice, or a name used by both a package and an image, is an
//! error naming both places.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::oci::compression::Compression;
use crate::oci::container;
use crate::oci::reference::{Reference, is_tag};
use crate::oci::spec::Platform;
use crate::oci::timestamp::Created;
use crate::oci::tree::ImagePath;

/// The file name of a project.
pub const PROJECT_FILE: &str = "kiln.toml";
/// The format version this kiln reads.
pub const SCHEMA: u32 = 1;

/// A place in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{location}: {message}{}", hint.as_ref().map(|hint| format!("\nhint: {hint}")).unwrap_or_default())]
    At {
        location: Location,
        message: String,
        hint: Option<String>,
    },
    #[error("cannot read {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no {PROJECT_FILE} in {}\nhint: `kiln init` makes a project here", .0.display())]
    NoProject(PathBuf),
    #[error("{} is not a regular file\nhint: replace it with the file itself", .0.display())]
    NotRegular(PathBuf),
}

/// A source file's text, for turning byte spans into line:column.
struct SourceFile {
    path: PathBuf,
    text: String,
}

impl SourceFile {
    fn location(&self, span: &Range<usize>) -> Location {
        let before = &self.text[..span.start.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        // A byte order mark starts the file but no column: editors do not show it.
        let column = before.rsplit('\n').next().map_or(0, |rest| {
            rest.trim_start_matches('\u{feff}').chars().count()
        }) + 1;
        Location {
            file: self.path.clone(),
            line,
            column,
        }
    }

    fn error(
        &self,
        span: &Range<usize>,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> ConfigError {
        ConfigError::At {
            location: self.location(span),
            message: message.into(),
            hint,
        }
    }
}

/// The closest of `candidates` to `word`, if close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(word, candidate), candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| format!("did you mean `{candidate}`?"))
}

/// serde's "unknown field `x`, expected one of `a`, `b`" in kiln.toml's words: "unknown key
/// `x` (known keys: a, b)".
fn describe_toml_error(message: &str) -> String {
    let message = message.trim_end();
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_owned();
    };
    let Some((unknown, expected)) = rest.split_once('`') else {
        return message.to_owned();
    };
    let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    if known.is_empty() {
        format!("unknown key `{unknown}`")
    } else {
        format!("unknown key `{unknown}` (known keys: {})", known.join(", "))
    }
}

/// Turn serde's "unknown field `x`, expected `a` or `b`" into a hint.
fn hint_for_unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, expected) = rest.split_once('`')?;
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    did_you_mean(unknown, candidates.iter().copied())
        .or_else(|| Some(format!("known keys: {}", candidates.join(", "))))
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn has_nul(&self) -> bool {
        match self {
            OneOrMany::One(one) => one.contains('\0'),
            OneOrMany::Many(many) => many.iter().any(|item| item.contains('\0')),
        }
    }

    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    schema: Option<Spanned<u32>>,
    include: Option<Vec<Spanned<String>>>,
    packages: Option<BTreeMap<Spanned<String>, Spanned<RawPackage>>>,
    images: Option<BTreeMap<Spanned<String>, Spanned<RawImage>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPackage {
    name: Option<Spanned<String>>,
    version: Option<Spanned<String>>,
    main: Option<Spanned<OneOrMany>>,
    program: Option<Spanned<String>>,
    ldflags: Option<Spanned<OneOrMany>>,
    tags: Option<Vec<Spanned<String>>>,
    env: Option<BTreeMap<Spanned<String>, String>>,
    platform: Option<Spanned<String>>,
    platforms: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImage {
    package: Option<Spanned<String>>,
    name: Option<Spanned<String>>,
    tag: Option<Spanned<String>>,
    paths: Option<Vec<Spanned<String>>>,
    cmd: Option<Vec<String>>,
    entrypoint: Option<Vec<String>>,
    env: Option<BTreeMap<Spanned<String>, String>>,
    workdir: Option<Spanned<String>>,
    user: Option<Spanned<String>>,
    expose: Option<Vec<Spanned<String>>>,
    labels: Option<BTreeMap<String, String>>,
    created: Option<Spanned<String>>,
    compression: Option<Spanned<String>>,
    base: Option<Spanned<String>>,
    platforms: Option<Spanned<Vec<Spanned<String>>>>,
    files: Option<Vec<Spanned<RawFiles>>>,
    dirs: Option<Vec<Spanned<RawDir>>>,
    symlinks: Option<Vec<Spanned<RawSymlink>>>,
    max_layers: Option<Spanned<i64>>,
    annotations: Option<BTreeMap<Spanned<String>, String>>,
    sbom: Option<bool>,
}

/// `mode = "0644"` or `mode = 0o644` (TOML's octal integer).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawMode {
    Number(i64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFiles {
    src: Spanned<String>,
    dest: Spanned<String>,
    mode: Option<Spanned<RawMode>>,
    uid: Option<Spanned<i64>>,
    gid: Option<Spanned<i64>>,
    include: Option<Vec<Spanned<String>>>,
    exclude: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDir {
    path: Spanned<String>,
    mode: Option<Spanned<RawMode>>,
    uid: Option<Spanned<i64>>,
    gid: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSymlink {
    path: Spanned<String>,
    target: Spanned<String>,
}

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
    pub defined_at: Location,
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
    pub defined_at: Location,
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
    pub defined_at: Location,
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

/// Environment variables kiln sets for every build; a package may not change them.
const RESERVED_ENV: &[&str] = &[
    "CGO_ENABLED",
    "GOOS",
    "GOARCH",
    "GOPATH",
    "GOCACHE",
    "GOMODCACHE",
    "GOROOT",
    "HOME",
    "GOTOOLCHAIN",
    "GOWORK",
    "GOENV",
    "GOPROXY",
    "GOSUMDB",
    "GONOSUMDB",
    "GOPRIVATE",
    "GONOPROXY",
    "GOFLAGS",
    "GOINSECURE",
    "GOTMPDIR",
    "TMPDIR",
    "PATH",
];

struct Loader {
    packages: BTreeMap<String, (Package, Location)>,
    raw_images: Vec<(String, Location, RawImage, usize)>,
    sources: Vec<SourceFile>,
    files: Vec<PathBuf>,
}

impl Project {
    /// Load the project whose kiln.toml is in `folder`.
    pub fn load(folder: &Path) -> Result<Project, ConfigError> {
        let main_file = folder.join(PROJECT_FILE);
        if !main_file.is_file() {
            // A named pipe there would block the read forever.
            if main_file.exists() {
                return Err(ConfigError::NotRegular(main_file));
            }
            return Err(ConfigError::NoProject(folder.to_owned()));
        }
        let text = read_config(&main_file)?;
        Project::from_text(folder, text)
    }

    /// Load the project in `folder` whose kiln.toml holds `text`: what [`Project::load`]
    /// does once it has read the file. Files that `text` includes are read from `folder`.
    pub fn from_text(folder: &Path, text: String) -> Result<Project, ConfigError> {
        let mut loader = Loader {
            packages: BTreeMap::new(),
            raw_images: Vec::new(),
            sources: Vec::new(),
            files: Vec::new(),
        };
        let main_file = folder.join(PROJECT_FILE);
        loader.load_text(&main_file, text, true, folder, &mut Vec::new())?;
        loader.finish(folder)
    }
}

fn read_config(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })
}

impl Loader {
    fn load_file(
        &mut self,
        path: &Path,
        is_main: bool,
        project: &Path,
        stack: &mut Vec<PathBuf>,
    ) -> Result<(), ConfigError> {
        let text = read_config(path)?;
        self.load_text(path, text, is_main, project, stack)
    }

    fn load_text(
        &mut self,
        path: &Path,
        text: String,
        is_main: bool,
        project: &Path,
        stack: &mut Vec<PathBuf>,
    ) -> Result<(), ConfigError> {
        let display = path
            .strip_prefix(project)
            .map(Path::to_owned)
            .unwrap_or_else(|_| path.to_owned());
        let source = SourceFile {
            path: display,
            text,
        };
        let raw: RawFile = toml::from_str(&source.text).map_err(|error| {
            let span = error.span().unwrap_or(0..0);
            let hint = hint_for_unknown_field(error.message());
            source.error(&span, describe_toml_error(error.message()), hint)
        })?;
        match (&raw.schema, is_main) {
            (Some(schema), _) if *schema.get_ref() != SCHEMA => {
                return Err(source.error(
                    &schema.span(),
                    format!(
                        "schema {} is not one this kiln reads (it reads schema {SCHEMA})",
                        schema.get_ref()
                    ),
                    Some("a newer kiln may read it; or write `schema = 1`".to_owned()),
                ));
            }
            (None, true) => {
                return Err(source.error(
                    &(0..0),
                    format!("{PROJECT_FILE} has no `schema`"),
                    Some(format!("start the file with `schema = {SCHEMA}`")),
                ));
            }
            _ => {}
        }
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_owned());
        stack.push(canonical);
        self.files.push(path.to_owned());
        let index = self.sources.len();
        self.sources.push(source);
        for (key, package) in raw.packages.unwrap_or_default() {
            self.add_package(index, key, package)?;
        }
        for (key, image) in raw.images.unwrap_or_default() {
            let location = self.sources[index].location(&key.span());
            let name = key.into_inner();
            if let Some(other) = self.raw_images.iter().find(|(other, ..)| *other == name) {
                return Err(ConfigError::At {
                    location,
                    message: format!("image `{name}` is defined twice: here and at {}", other.1),
                    hint: Some("rename one of them".to_owned()),
                });
            }
            self.raw_images
                .push((name, location, image.into_inner(), index));
        }
        for include in raw.include.unwrap_or_default() {
            let folder = path.parent().unwrap_or(project);
            let included = folder.join(include.get_ref());
            let source = &self.sources[index];
            if !included.is_file() {
                let problem = if included.exists() {
                    "is not a regular file"
                } else {
                    "does not exist"
                };
                return Err(source.error(
                    &include.span(),
                    format!("included file `{}` {problem}", include.get_ref()),
                    None,
                ));
            }
            let canonical = included.canonicalize().unwrap_or_else(|_| included.clone());
            if stack.contains(&canonical) {
                return Err(source.error(
                    &include.span(),
                    format!("`{}` includes itself", include.get_ref()),
                    None,
                ));
            }
            if !canonical.starts_with(
                project
                    .canonicalize()
                    .unwrap_or_else(|_| project.to_owned()),
            ) {
                return Err(source.error(
                    &include.span(),
                    format!("`{}` is outside the project", include.get_ref()),
                    None,
                ));
            }
            self.load_file(&included, false, project, stack)?;
        }
        stack.pop();
        Ok(())
    }

    fn add_package(
        &mut self,
        index: usize,
        key: Spanned<String>,
        raw: Spanned<RawPackage>,
    ) -> Result<(), ConfigError> {
        let source = &self.sources[index];
        let location = source.location(&key.span());
        let key_name = key.get_ref().clone();
        if let Some((_, other)) = self.packages.get(&key_name) {
            return Err(ConfigError::At {
                location,
                message: format!("package `{key_name}` is defined twice: here and at {other}"),
                hint: Some("rename one of them".to_owned()),
            });
        }
        let raw = raw.into_inner();
        let name = match &raw.name {
            Some(name) => {
                check_name(name.get_ref())
                    .map_err(|reason| source.error(&name.span(), reason, None))?;
                name.get_ref().clone()
            }
            None => key_name.clone(),
        };
        check_name(&name).map_err(|reason| source.error(&key.span(), reason, None))?;
        let mains_raw = raw
            .main
            .map(|main| (main.span(), main.into_inner().into_vec()));
        let mut mains = Vec::new();
        match mains_raw {
            None => mains.push(MainPackage {
                folder: ".".to_owned(),
                program: name.clone(),
            }),
            Some((span, folders)) => {
                if folders.is_empty() {
                    return Err(source.error(&span, "`main` lists no package", None));
                }
                for folder in folders {
                    let cleaned = clean_folder(&folder)
                        .map_err(|reason| source.error(&span, reason, None))?;
                    let program = if cleaned == "." {
                        name.clone()
                    } else {
                        cleaned.rsplit('/').next().unwrap_or(&cleaned).to_owned()
                    };
                    if let Some(other) = mains
                        .iter()
                        .find(|main: &&MainPackage| main.program == program)
                    {
                        return Err(source.error(
                            &span,
                            format!(
                                "`{folder}` and `{}` would both build a program named `{program}`",
                                other.folder
                            ),
                            Some("put them in separate packages".to_owned()),
                        ));
                    }
                    mains.push(MainPackage {
                        folder: cleaned,
                        program,
                    });
                }
            }
        }
        let program = match raw.program {
            Some(program) => {
                if !mains.iter().any(|main| &main.program == program.get_ref()) {
                    let programs: Vec<&str> =
                        mains.iter().map(|main| main.program.as_str()).collect();
                    return Err(source.error(
                        &program.span(),
                        format!(
                            "package `{key_name}` builds no program `{}`; it builds: {}",
                            program.get_ref(),
                            programs.join(", ")
                        ),
                        did_you_mean(program.get_ref(), programs.iter().copied()),
                    ));
                }
                Some(program.into_inner())
            }
            None if mains.len() == 1 => Some(mains[0].program.clone()),
            None => mains
                .iter()
                .find(|main| main.program == name)
                .map(|main| main.program.clone()),
        };
        let platforms = match (raw.platform, raw.platforms) {
            (Some(_), Some(platforms)) => {
                return Err(source.error(
                    &platforms.span(),
                    "a package has `platform` or `platforms`, not both",
                    Some("list every platform in `platforms`".to_owned()),
                ));
            }
            (Some(platform), None) => vec![
                platform
                    .get_ref()
                    .parse::<Platform>()
                    .map_err(|error| source.error(&platform.span(), error.to_string(), None))?,
            ],
            (None, Some(platforms)) => parse_platforms(source, platforms)?,
            (None, None) => vec![Platform::host()],
        };
        let host = Platform::host();
        let platform = platforms
            .iter()
            .find(|platform| **platform == host)
            .unwrap_or(&platforms[0])
            .clone();
        let mut env = BTreeMap::new();
        for (variable, value) in raw.env.unwrap_or_default() {
            // `A=B` as a name would set A; no process environment holds a NUL byte.
            let name = variable.get_ref();
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                return Err(source.error(
                    &variable.span(),
                    format!("`{name}` is not a valid environment variable name (non-empty, without `=` or NUL)"),
                    None,
                ));
            }
            if value.contains('\0') {
                return Err(source.error(
                    &variable.span(),
                    format!(
                        "the value of `{name}` holds a NUL byte, which no environment can hold"
                    ),
                    None,
                ));
            }
            if RESERVED_ENV.contains(&variable.get_ref().as_str()) {
                return Err(source.error(
                    &variable.span(),
                    format!(
                        "kiln sets `{}` itself for a hermetic build",
                        variable.get_ref()
                    ),
                    Some("set the platform with `platform`; CGO is always off".to_owned()),
                ));
            }
            env.insert(variable.into_inner(), value);
        }
        if let Some(ldflags) = &raw.ldflags
            && ldflags.get_ref().has_nul()
        {
            return Err(source.error(
                &ldflags.span(),
                "ldflags hold a NUL byte, which no command line can hold",
                None,
            ));
        }
        if let Some(tag) = raw
            .tags
            .iter()
            .flatten()
            .find(|tag| tag.get_ref().contains('\0'))
        {
            return Err(source.error(
                &tag.span(),
                "a build tag holds a NUL byte, which no command line can hold",
                None,
            ));
        }
        let package = Package {
            key: key_name.clone(),
            name,
            version: raw.version.map(Spanned::into_inner),
            mains,
            program,
            ldflags: raw
                .ldflags
                .map(|flags| flags.into_inner().into_vec())
                .unwrap_or_default(),
            tags: raw
                .tags
                .unwrap_or_default()
                .into_iter()
                .map(Spanned::into_inner)
                .collect(),
            env,
            platform,
            platforms,
            defined_at: location.clone(),
        };
        self.packages.insert(key_name, (package, location));
        Ok(())
    }

    fn finish(self, folder: &Path) -> Result<Project, ConfigError> {
        let Loader {
            packages,
            raw_images,
            sources,
            files,
        } = self;
        let packages: BTreeMap<String, Package> = packages
            .into_iter()
            .map(|(key, (package, _))| (key, package))
            .collect();
        let mut images = BTreeMap::new();
        for (key, location, raw, index) in raw_images {
            let source = &sources[index];
            if let Some(package) = packages.get(&key) {
                return Err(ConfigError::At {
                    location,
                    message: format!(
                        "`{key}` names both an image (here) and a package (at {}); targets must be unambiguous",
                        package.defined_at
                    ),
                    hint: Some("rename one of them".to_owned()),
                });
            }
            let image = build_image(source, &key, location, raw, &packages)?;
            images.insert(key, image);
        }
        Ok(Project {
            root: folder.to_owned(),
            files,
            packages,
            images,
        })
    }
}

fn build_image(
    source: &SourceFile,
    key: &str,
    location: Location,
    raw: RawImage,
    packages: &BTreeMap<String, Package>,
) -> Result<Image, ConfigError> {
    let (package_name, package_span) = match &raw.package {
        Some(package) => (package.get_ref().clone(), package.span()),
        None => ("default".to_owned(), 0..0),
    };
    let Some(package) = packages.get(&package_name) else {
        let known: Vec<&str> = packages.keys().map(String::as_str).collect();
        let message = format!(
            "image `{key}` is of package `{package_name}`, which is not defined (packages: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        );
        return Err(match raw.package {
            Some(_) => source.error(
                &package_span,
                message,
                did_you_mean(&package_name, known.iter().copied()),
            ),
            None => ConfigError::At {
                location,
                message,
                hint: Some("say which with `package = \"…\"`".to_owned()),
            },
        });
    };
    let platforms = match raw.platforms {
        Some(platforms) => parse_platforms(source, platforms)?,
        None => package.platforms.clone(),
    };
    if let Some(other) = platforms.iter().find(|platform| platform.os != "linux") {
        return Err(ConfigError::At {
            location,
            message: format!(
                "image `{key}` is of package `{package_name}`, built for {other}; images run Linux programs"
            ),
            hint: None,
        });
    }
    let name_text = raw
        .name
        .as_ref()
        .map(|name| name.get_ref().clone())
        .unwrap_or_else(|| package.name.clone());
    let name_span = raw.name.as_ref().map_or(0..0, Spanned::span);
    let mut reference: Reference =
        name_text
            .parse()
            .map_err(|error: crate::oci::reference::ReferenceError| {
                if raw.name.is_some() {
                    source.error(&name_span, error.to_string(), None)
                } else {
                    ConfigError::At {
                        location: location.clone(),
                        message: format!(
                            "the image name defaults to the package's name, and: {error}"
                        ),
                        hint: Some("give the image a `name`".to_owned()),
                    }
                }
            })?;
    if reference.tag.is_some() || reference.digest.is_some() {
        return Err(source.error(
            &name_span,
            "an image `name` has no tag or digest; use `tag`",
            None,
        ));
    }
    let tag = match &raw.tag {
        Some(tag) => {
            if !is_tag(tag.get_ref()) {
                return Err(source.error(
                    &tag.span(),
                    format!(
                        "`{}` is not a valid tag (letters, digits, `_`, `.` and `-`, at most 128)",
                        tag.get_ref()
                    ),
                    None,
                ));
            }
            tag.get_ref().clone()
        }
        None => match &package.version {
            Some(version) if is_tag(version) => version.clone(),
            Some(version) => {
                return Err(ConfigError::At {
                    location,
                    message: format!(
                        "the tag defaults to the package's version `{version}`, which is not a valid tag"
                    ),
                    hint: Some("give the image a `tag`".to_owned()),
                });
            }
            None => "latest".to_owned(),
        },
    };
    reference.tag = Some(tag);
    let mut paths = Vec::new();
    for path in raw
        .paths
        .unwrap_or_else(|| vec![Spanned::new(0..0, "/bin".to_owned())])
    {
        paths.push(
            ImagePath::parse_absolute(path.get_ref())
                .map_err(|error| source.error(&path.span(), error.to_string(), None))?,
        );
    }
    let mut env = BTreeMap::new();
    for (variable, value) in raw.env.unwrap_or_default() {
        if variable.get_ref().is_empty() || variable.get_ref().contains('=') {
            return Err(source.error(
                &variable.span(),
                "an environment variable name is non-empty, without `=`",
                None,
            ));
        }
        env.insert(variable.into_inner(), value);
    }
    if let Some(workdir) = &raw.workdir {
        container::check_workdir(workdir.get_ref()).map_err(|reason| {
            source.error(
                &workdir.span(),
                format!("workdir `{}` is {reason}", workdir.get_ref()),
                None,
            )
        })?;
    }
    if let Some(user) = &raw.user {
        container::check_user(user.get_ref()).map_err(|reason| {
            source.error(
                &user.span(),
                format!("user `{}`: {reason}", user.get_ref()),
                None,
            )
        })?;
    }
    let mut expose = Vec::new();
    for port in raw.expose.unwrap_or_default() {
        expose.extend(container::exposed_ports(port.get_ref()).map_err(|reason| {
            source.error(
                &port.span(),
                format!("expose `{}`: {reason}", port.get_ref()),
                None,
            )
        })?);
    }
    let created = match &raw.created {
        Some(created) => created
            .get_ref()
            .parse::<Created>()
            .map_err(|error| source.error(&created.span(), error.to_string(), None))?,
        None => Created::Epoch,
    };
    let compression = match &raw.compression {
        Some(compression) => compression
            .get_ref()
            .parse::<Compression>()
            .map_err(|error| source.error(&compression.span(), error.to_string(), None))?,
        None => Compression::Gzip,
    };
    let base = match &raw.base {
        Some(base) if base.get_ref() == STATIC_BASE => Some(Base::Static),
        Some(base) => Some(Base::Image(base.get_ref().parse::<Reference>().map_err(|error| {
            source.error(
                &base.span(),
                format!("base: {error}"),
                Some("a base is `static` (kiln's own) or an image reference, e.g. `gcr.io/distroless/static:nonroot` or `localhost:5000/base:1`".to_owned()),
            )
        })?)),
        None => None,
    };
    let mut files = Vec::new();
    for entry in raw.files.unwrap_or_default() {
        let defined_at = source.location(&entry.span());
        let entry = entry.into_inner();
        let src = clean_source(entry.src.get_ref())
            .map_err(|reason| source.error(&entry.src.span(), reason, None))?;
        let dest = entry.dest.get_ref();
        ImagePath::parse_absolute(dest)
            .map_err(|error| source.error(&entry.dest.span(), error.to_string(), None))?;
        let mode = entry
            .mode
            .as_ref()
            .map(|mode| parse_mode(source, mode))
            .transpose()?;
        let include = entry
            .include
            .unwrap_or_default()
            .iter()
            .map(|glob| check_glob(source, glob))
            .collect::<Result<_, _>>()?;
        let exclude = entry
            .exclude
            .unwrap_or_default()
            .iter()
            .map(|glob| check_glob(source, glob))
            .collect::<Result<_, _>>()?;
        files.push(FilesEntry {
            src,
            dest: dest.clone(),
            mode,
            uid: parse_id(source, entry.uid.as_ref())?,
            gid: parse_id(source, entry.gid.as_ref())?,
            include,
            exclude,
            defined_at,
        });
    }
    let mut dirs = Vec::new();
    for entry in raw.dirs.unwrap_or_default() {
        let entry = entry.into_inner();
        let path = ImagePath::parse_absolute(entry.path.get_ref())
            .map_err(|error| source.error(&entry.path.span(), error.to_string(), None))?;
        if path.is_root() {
            return Err(source.error(
                &entry.path.span(),
                "the image root is not a folder kiln can set",
                None,
            ));
        }
        dirs.push(DirEntry {
            path,
            mode: entry
                .mode
                .as_ref()
                .map(|mode| parse_mode(source, mode))
                .transpose()?
                .unwrap_or(0o755),
            uid: parse_id(source, entry.uid.as_ref())?,
            gid: parse_id(source, entry.gid.as_ref())?,
        });
    }
    let mut symlinks = Vec::new();
    for entry in raw.symlinks.unwrap_or_default() {
        let entry = entry.into_inner();
        let path = ImagePath::parse_absolute(entry.path.get_ref())
            .map_err(|error| source.error(&entry.path.span(), error.to_string(), None))?;
        let target = entry.target.get_ref();
        if path.is_root() || target.is_empty() || target.contains('\0') {
            return Err(source.error(
                &entry.target.span(),
                "a symlink has a path below the root and a non-empty target",
                None,
            ));
        }
        symlinks.push(SymlinkEntry {
            path,
            target: target.clone(),
        });
    }
    let max_layers = match &raw.max_layers {
        Some(max) => usize::try_from(*max.get_ref())
            .ok()
            .filter(|max| (1..=120).contains(max))
            .ok_or_else(|| {
                source.error(
                    &max.span(),
                    "max_layers is from 1 to 120",
                    Some("Docker refuses images of more than about 125 layers".to_owned()),
                )
            })?,
        None => DEFAULT_MAX_LAYERS,
    };
    let mut annotations = BTreeMap::new();
    for (name, value) in raw.annotations.unwrap_or_default() {
        if name.get_ref().is_empty() {
            return Err(source.error(&name.span(), "an annotation has a name", None));
        }
        annotations.insert(name.into_inner(), value);
    }
    Ok(Image {
        key: key.to_owned(),
        package: package_name,
        base,
        platforms,
        files,
        dirs,
        symlinks,
        max_layers,
        annotations,
        sbom: raw.sbom.unwrap_or(true),
        reference,
        paths,
        cmd: raw.cmd,
        entrypoint: raw.entrypoint,
        env,
        workdir: raw.workdir.map(Spanned::into_inner),
        user: raw.user.map(Spanned::into_inner),
        expose,
        labels: raw.labels.unwrap_or_default(),
        created,
        compression,
        defined_at: location,
    })
}

/// `platforms = ["linux/amd64", …]`: at least one, each once.
fn parse_platforms(
    source: &SourceFile,
    platforms: Spanned<Vec<Spanned<String>>>,
) -> Result<Vec<Platform>, ConfigError> {
    let span = platforms.span();
    let mut parsed: Vec<Platform> = Vec::new();
    for text in platforms.into_inner() {
        let platform = text
            .get_ref()
            .parse::<Platform>()
            .map_err(|error| source.error(&text.span(), error.to_string(), None))?;
        if parsed.contains(&platform) {
            return Err(source.error(&text.span(), format!("{platform} is listed twice"), None));
        }
        parsed.push(platform);
    }
    if parsed.is_empty() {
        return Err(source.error(&span, "`platforms` lists no platform", None));
    }
    Ok(parsed)
}

/// An octal mode, `"0644"`, `"755"` or TOML's `0o644`; permission, setuid, setgid and sticky
/// bits only.
fn parse_mode(source: &SourceFile, mode: &Spanned<RawMode>) -> Result<u32, ConfigError> {
    let value = match mode.get_ref() {
        RawMode::Number(number) => u32::try_from(*number).ok(),
        RawMode::Text(text) => u32::from_str_radix(text.trim_start_matches("0o"), 8).ok(),
    };
    match value {
        Some(value) if value <= 0o7777 => Ok(value),
        _ => Err(source.error(
            &mode.span(),
            "a mode is octal permission bits, at most 7777",
            Some("write it as a string, e.g. mode = \"0644\", or as 0o644".to_owned()),
        )),
    }
}

/// A uid or gid: 0 to 2^32 - 2 (4294967295 means "no id").
fn parse_id(source: &SourceFile, id: Option<&Spanned<i64>>) -> Result<u32, ConfigError> {
    match id {
        None => Ok(0),
        Some(id) => u32::try_from(*id.get_ref())
            .ok()
            .filter(|value| *value != u32::MAX)
            .ok_or_else(|| {
                source.error(&id.span(), "an id is a number from 0 to 4294967294", None)
            }),
    }
}

/// A project-relative source path, normalised; absolute paths and paths that climb out of
/// the project are refused here (links that escape are refused when the files are read).
fn clean_source(text: &str) -> Result<String, String> {
    if text.starts_with('/') {
        return Err(format!(
            "`{text}` is absolute; `src` is relative to the project"
        ));
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(format!("`{text}` is outside the project"));
                }
            }
            _ => parts.push(part),
        }
    }
    Ok(if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    })
}

fn check_glob(source: &SourceFile, glob: &Spanned<String>) -> Result<String, ConfigError> {
    globset::GlobBuilder::new(glob.get_ref())
        .literal_separator(true)
        .build()
        .map_err(|error| source.error(&glob.span(), format!("glob: {error}"), None))?;
    Ok(glob.get_ref().clone())
}

/// Package and program names become store path and file names.
fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "-_.+".contains(character))
        && !name.starts_with('.');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid name (letters, digits, `-`, `_`, `.`, `+`; not starting with `.`)"
        ))
    }
}

/// `./cmd/server/` → `cmd/server`; `.` stays; no absolute paths or `..`.
fn clean_folder(folder: &str) -> Result<String, String> {
    if folder.starts_with('/') {
        return Err(format!(
            "`{folder}` is absolute; `main` folders are relative to the project"
        ));
    }
    if folder.contains('\0') {
        return Err("a `main` folder holds a NUL byte".to_owned());
    }
    let mut parts = Vec::new();
    for part in folder.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(format!("`{folder}` leaves the project")),
            _ => parts.push(part),
        }
    }
    Ok(if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(files: &[(&str, &str)]) -> (tempfile::TempDir, Result<Project, ConfigError>) {
        let temp = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = temp.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let loaded = Project::load(temp.path());
        (temp, loaded)
    }

    fn error(files: &[(&str, &str)]) -> String {
        project(files).1.unwrap_err().to_string()
    }

    /// `env = { "GOFLAGS=-toolexec" = "…" }` passed the reserved-name check and reached the
    /// Go command's environment as `GOFLAGS=-toolexec=…`; an empty name or a NUL byte made
    /// spawning Go fail with a message naming no file.
    #[test]
    fn package_env_name_with_equals_is_refused() {
        let package = |line: &str| {
            error(&[(
                "kiln.toml",
                &format!("schema = 1\n[packages.default]\nname = \"app\"\n{line}\n"),
            )])
        };
        let message = package(r#"env = { "GOFLAGS=-toolexec" = "/tmp/evil" }"#);
        assert!(
            message.starts_with(
                "kiln.toml:4:9: `GOFLAGS=-toolexec` is not a valid environment variable name"
            ),
            "{message}"
        );
        let message = package(r#"env = { "" = "x" }"#);
        assert!(
            message.contains("`` is not a valid environment variable name"),
            "{message}"
        );
        let message = package(r#"env = { GOEXPERIMENT = "a\u0000b" }"#);
        assert!(
            message.contains("kiln.toml:4:9: the value of `GOEXPERIMENT` holds a NUL byte"),
            "{message}"
        );
        let message = package(r#"ldflags = ["-X", "main.v=a\u0000b"]"#);
        assert!(
            message.starts_with("kiln.toml:4:11: ldflags hold a NUL byte"),
            "{message}"
        );
        let message = package(r#"tags = ["a\u0000b"]"#);
        assert!(
            message.starts_with("kiln.toml:4:9: a build tag holds a NUL byte"),
            "{message}"
        );
        let message = package(r#"main = "cmd/a\u0000b""#);
        assert!(
            message.contains("a `main` folder holds a NUL byte"),
            "{message}"
        );
    }

    /// A byte order mark before `schema = 2` put the error at column 11.
    #[test]
    fn byte_order_mark_does_not_shift_columns() {
        let message = error(&[("kiln.toml", "\u{feff}schema = 2\n")]);
        assert!(
            message.starts_with("kiln.toml:1:10: schema 2 is not one this kiln reads"),
            "{message}"
        );
    }

    /// An included named pipe or folder was reported as a file that "does not exist"; a
    /// kiln.toml that is a named pipe, as a folder with no kiln.toml.
    #[test]
    fn include_that_is_not_a_regular_file_says_so() {
        let temp = tempfile::tempdir().unwrap();
        std::fs::write(
            temp.path().join("kiln.toml"),
            "schema = 1\ninclude = [\"sub\"]\n",
        )
        .unwrap();
        std::fs::create_dir(temp.path().join("sub")).unwrap();
        let message = Project::load(temp.path()).unwrap_err().to_string();
        assert_eq!(
            message,
            "kiln.toml:2:12: included file `sub` is not a regular file"
        );
        std::fs::remove_file(temp.path().join("kiln.toml")).unwrap();
        std::fs::create_dir(temp.path().join("kiln.toml")).unwrap();
        let message = Project::load(temp.path()).unwrap_err().to_string();
        assert!(
            message.contains("kiln.toml is not a regular file"),
            "{message}"
        );
    }

    #[test]
    fn a_full_project() {
        let (_temp, loaded) = project(&[
            (
                "kiln.toml",
                "schema = 1\ninclude = [\"container.toml\"]\n[packages.default]\nname = \"app\"\nversion = \"1.2\"\nmain = [\".\", \"./cmd/tool/\"]\nldflags = [\"-s\", \"-w\"]\ntags = [\"netgo\"]\nenv = { GOAMD64 = \"v3\" }\nplatform = \"linux/arm64\"\n",
            ),
            (
                "container.toml",
                "[images.container]\nexpose = [\"8080\"]\nenv = { MODE = \"prod\" }\ncreated = \"now\"\ncompression = \"zstd\"\n",
            ),
        ]);
        let project = loaded.unwrap();
        let package = &project.packages["default"];
        assert_eq!(
            package.mains,
            [
                MainPackage {
                    folder: ".".into(),
                    program: "app".into()
                },
                MainPackage {
                    folder: "cmd/tool".into(),
                    program: "tool".into()
                },
            ]
        );
        assert_eq!(package.program.as_deref(), Some("app"));
        assert_eq!(package.store_label(), "app-1.2");
        assert_eq!(package.platform.to_string(), "linux/arm64");
        let image = &project.images["container"];
        assert_eq!(image.reference.to_string(), "docker.io/library/app:1.2");
        assert_eq!(image.paths[0].to_string(), "/bin");
        assert_eq!(image.expose, ["8080/tcp"]);
        assert_eq!(image.compression, Compression::Zstd);
        assert_eq!(project.files.len(), 2);
    }

    #[test]
    fn errors_point_at_the_place() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[(
                    "kiln.toml",
                    "schema = 1\n[packages.default]\nnmae = \"x\"\n",
                )],
                "kiln.toml:3:1: unknown key `nmae` (known keys: name, version, main, program, ldflags, tags, env, platform, platforms)",
            ),
            (
                &[(
                    "kiln.toml",
                    "schema = 1\n[packages.default]\nnmae = \"x\"\n",
                )],
                "hint: did you mean `name`?",
            ),
            (
                &[("kiln.toml", "[packages.default]\n")],
                "kiln.toml:1:1: kiln.toml has no `schema`",
            ),
            (
                &[("kiln.toml", "schema = 2\n")],
                "kiln.toml:1:10: schema 2 is not one this kiln reads",
            ),
            (
                &[("kiln.toml", "schema = 1\n[packages.a]\nversion = 3\n")],
                "kiln.toml:3:11: invalid type: integer `3`, expected a string",
            ),
            (
                &[("kiln.toml", "schema = 1\n[packages.a]\nprogram = \"b\"\n")],
                "kiln.toml:3:11: package `a` builds no program `b`; it builds: a",
            ),
            (
                &[("kiln.toml", "schema = 1\n[packages.a]\nmain = \"../x\"\n")],
                "`../x` leaves the project",
            ),
            (
                &[(
                    "kiln.toml",
                    "schema = 1\n[packages.a]\nenv = { GOOS = \"x\" }\n",
                )],
                "kiln.toml:3:9: kiln sets `GOOS` itself",
            ),
            (
                &[(
                    "kiln.toml",
                    "schema = 1\n[packages.a]\nplatform = \"linux\"\n",
                )],
                "kiln.toml:3:12: invalid platform `linux`",
            ),
            (
                &[(
                    "kiln.toml",
                    "schema = 1\n[packages.default]\n[images.c]\ntag = \"-x\"\n",
                )],
                "kiln.toml:4:7: `-x` is not a valid tag",
            ),
            (
                &[(
                    "kiln.toml",
                    "schema = 1\n[packages.default]\n[images.c]\npackage = \"defualt\"\n",
                )],
                "did you mean `default`?",
            ),
            (
                &[("kiln.toml", "schema = 1\n[packages.x]\n[images.c]\n")],
                "image `c` is of package `default`, which is not defined (packages: x)",
            ),
            (
                &[(
                    "kiln.toml",
                    "schema = 1\n[packages.x]\n[images.x]\npackage = \"x\"\n",
                )],
                "`x` names both an image (here) and a package",
            ),
            (
                &[
                    (
                        "kiln.toml",
                        "schema = 1\ninclude = [\"more.toml\"]\n[packages.x]\n",
                    ),
                    ("more.toml", "[packages.x]\n"),
                ],
                "more.toml:1:11: package `x` is defined twice: here and at kiln.toml:3:11",
            ),
            (
                &[("kiln.toml", "schema = 1\ninclude = [\"missing.toml\"]\n")],
                "kiln.toml:2:12: included file `missing.toml` does not exist",
            ),
            (
                &[("kiln.toml", "schema = 1\ninclude = [\"kiln.toml\"]\n")],
                "`kiln.toml` includes itself",
            ),
            (
                &[("kiln.toml", "schema = 1\n[packages.a\n")],
                "kiln.toml:2:12: unclosed table",
            ),
        ];
        for (files, expected) in cases {
            let message = error(files);
            assert!(
                message.contains(expected),
                "expected `{expected}` in:\n{message}"
            );
        }
        let (temp, loaded) = project(&[]);
        assert!(
            loaded
                .unwrap_err()
                .to_string()
                .contains(&format!("no kiln.toml in {}", temp.path().display()))
        );
    }
}

#[cfg(test)]
mod readme {
    /// The kiln.toml shown in README.md loads as written.
    #[test]
    fn readme_example_loads() {
        let readme = include_str!("../../README.md");
        let section = &readme[readme.find("## kiln.toml").unwrap()..];
        let start = section.find("```toml\n").unwrap() + "```toml\n".len();
        let text = &section[start..start + section[start..].find("```").unwrap()];
        let temp = tempfile::tempdir().unwrap();
        std::fs::write(temp.path().join("kiln.toml"), text).unwrap();
        std::fs::write(temp.path().join("container.toml"), "").unwrap();
        let project = super::Project::load(temp.path()).unwrap();
        let image = &project.images["container"];
        assert_eq!(image.reference.to_string(), "docker.io/library/example:0.1");
        assert_eq!(
            project.packages["default"].program.as_deref(),
            Some("example")
        );
    }
}
