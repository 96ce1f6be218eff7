//! The built-in `static` base (`base = "static"`): one layer kiln makes itself holding what a
//! static Go binary expects of an operating system, and nothing else (distroless/static's
//! idea, made from pinned sources so every byte is kiln's to decide).
//!
//! The layer (paths in the image; owner root and mode 0755 for folders, 0644 for files unless
//! said otherwise):
//!
//! ```text
//! /etc/passwd, /etc/group           root (0) and nonroot (65532), see PASSWD and GROUP below
//! /etc/nsswitch.conf                `hosts: files dns`: Go's resolver reads it for the order
//! /etc/ssl/certs/ca-certificates.crt  Mozilla's CA bundle, the first file Go's crypto/x509
//!                                   reads on Linux
//! /usr/share/zoneinfo/**            the IANA time zone database as TZif files, the first
//!                                   place Go's time.LoadLocation looks
//! /home/nonroot                     0700, owned by 65532:65532
//! /root                             0700
//! /tmp                              1777 (sticky, writable by all)
//! ```
//!
//! The CA bundle and the zones come from two PyPI wheels, pinned by sha256 in kiln.lock
//! (`[[static]]`, see [`StaticSource`]): `certifi` (its `certifi/cacert.pem`, Mozilla's
//! bundle as curl and requests ship it) and `tzdata` (its `tzdata/zoneinfo/**`, compiled by
//! zic from the IANA release). PyPI never serves other bytes under a file's name once it is
//! uploaded and keeps old releases, which is what a pin needs; Debian's and Alpine's mirrors
//! keep only current versions. From the `tzdata` wheel kiln takes every file under
//! `tzdata/zoneinfo/` except Python's (`__init__.py` in each folder, `__pycache__`,
//! `*.py[cio]`, `py.typed`): the TZif zones and the tables beside them (`tzdata.zi`,
//! `zone.tab`, `zone1970.tab`, `zonenow.tab`, `iso3166.tab`, `leapseconds`). Its
//! `tzdata/zones` (the package's list of zone names) lies outside `zoneinfo/` and is not
//! taken: neither Go nor libc reads it.
//!
//! A wheel is a zip from the network, hostile until checked: its sha256 is compared with the
//! pin before any byte of it is parsed. Then every entry (not just the ones taken) must have
//! a relative name without `.`, `..` or empty elements, backslashes, control characters or
//! elements starting with `.wh.` (layer whiteouts), and must be a regular file or a folder
//! (no links); no name may come twice. Sizes are bounded (see [`LIMITS`]), and every file
//! taken must not carry a second name (an Info-ZIP Unicode Path field) and is read through a
//! limit of its declared size, its CRC-32 checked (the checks every zip from the network
//! gets, [`crate::zip_hygiene`]).
//!
//! In the store the root filesystem is one output (`static-base`), built once per pin set and
//! named by the recipe `{"kiln":"static-base/1","sources":[{"name","sha256"}…]}` (sorted by
//! name). The recipe holds the digests, not the URLs or versions: the bytes decide the output,
//! so a mirror's URL for the same wheel finds the same output, offline. With the output in the
//! store nothing is fetched; without it both wheels are (a few hundred kB; they are not kept
//! apart from the output).
//!
//! The layer's bytes depend on nothing but the pins: every entry's mtime is [`LAYER_MTIME`],
//! whatever `SOURCE_DATE_EPOCH` says, so the layer is the same blob in every project and
//! every build, and registries and engines store it once.

use std::io::{self, Cursor};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use zip::ZipArchive;
use zip::result::ZipError;

// Credentials never reach a message or kiln.lock: the one redaction every client uses.
use crate::http::{self, AgentOptions, Attempt, Client, HttpError, RetryPolicy, redact};
use crate::oci::tree::{Attributes, FileTree, ImagePath, Node, TreeError, WHITEOUT_PREFIX};
use crate::recipes;
use crate::store::{Recipe, Store, StoreError};
use crate::zip_hygiene::{
    Budget, Irregular, PATH_MAX, has_second_name, irregular_kind, read_declared,
};

/// The uid (and gid) of the `nonroot` user, distroless's choice, so `USER 65532` means the
/// same in images on kiln's base and on distroless.
pub const NONROOT_UID: u32 = 65532;
/// The gid of the `nonroot` group.
pub const NONROOT_GID: u32 = 65532;

/// The mtime of every entry of the static layer: 1970-01-01T00:00:01Z, kiln's default source
/// time (`oci::timestamp`: one second because some tar readers take zero for "unset"). Pinned
/// here rather than taken from `SOURCE_DATE_EPOCH`, so the layer is byte-identical across
/// projects and build times.
pub const LAYER_MTIME: u64 = 1;

/// The environment an image on the static base starts with (the image's own `env` is merged
/// over it): the usual PATH, and SSL_CERT_FILE naming the bundle for programs that do not
/// look in /etc/ssl/certs themselves (Go does).
pub const ENV: &[&str] = &[
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
];

/// The source of the CA bundle, and the PyPI project it comes from.
pub const CA_CERTIFICATES: &str = "ca-certificates";
const CA_CERTIFICATES_PROJECT: &str = "certifi";
/// The source of the time zone database, and the PyPI project it comes from.
pub const TZDATA: &str = "tzdata";
const TZDATA_PROJECT: &str = "tzdata";

/// The package index [`latest_sources`] asks when `KILN_PYPI_URL` is unset.
pub const DEFAULT_PYPI_URL: &str = "https://pypi.org";
/// The variable naming another index (a mirror with PyPI's JSON API).
pub const PYPI_URL_ENV: &str = "KILN_PYPI_URL";

/// `/etc/passwd`. The shells do not exist in the image: nobody logs in.
pub const PASSWD: &str = "\
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
";
/// `/etc/group`.
pub const GROUP: &str = "\
root:x:0:
nonroot:x:65532:
";
/// `/etc/nsswitch.conf`: Go's resolver reads the `hosts` line to decide whether /etc/hosts
/// comes before DNS. Without the file Go follows glibc's default, DNS first, so names the
/// engine writes into /etc/hosts would be asked of DNS before being read (distroless ships
/// the same line for this reason).
pub const NSSWITCH_CONF: &str = "hosts: files dns\n";

/// Folders with attributes of their own; all three are empty in the layer.
const SPECIAL_FOLDERS: [(&str, Attributes); 3] = [
    (
        "home/nonroot",
        Attributes {
            mode: 0o700,
            uid: NONROOT_UID,
            gid: NONROOT_GID,
        },
    ),
    (
        "root",
        Attributes {
            mode: 0o700,
            uid: 0,
            gid: 0,
        },
    ),
    (
        "tmp",
        Attributes {
            mode: 0o1777,
            uid: 0,
            gid: 0,
        },
    ),
];

/// Where the CA bundle goes, relative to the root.
const CA_BUNDLE_PATH: &str = "etc/ssl/certs/ca-certificates.crt";
/// Where the zones go, relative to the root.
const ZONEINFO_PATH: &str = "usr/share/zoneinfo";

/// Bounds on what a wheel can make kiln read; far above what certifi and tzdata need (0.2 MB
/// and 0.6 MB unpacked, 12 and 633 entries) and far below what could hurt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The wheel as downloaded; it is held in memory.
    pub wheel: u64,
    /// Entries in the zip.
    pub entries: usize,
    /// One file taken from it, unpacked.
    pub file: u64,
    /// The files taken from it together, unpacked.
    pub total: u64,
}

/// The limits [`realise`] applies.
pub const LIMITS: Limits = Limits {
    wheel: 64 << 20,
    entries: 10_000,
    file: 16 << 20,
    total: 64 << 20,
};
/// The most bytes of a PyPI JSON page read.
const MAX_INDEX_PAGE: u64 = 16 << 20;
/// The longest entry name accepted, Linux's `PATH_MAX`.
const MAX_ENTRY_NAME: usize = PATH_MAX;

/// The hint after a failed download of a wheel.
const WHEEL_HINT: &str = "kiln.lock pins the static base's sources; they are fetched once into the store, and builds after that need no network";
/// The hint after a failed request to the package index.
const INDEX_HINT: &str =
    "KILN_PYPI_URL names another index (a mirror serving PyPI's JSON API, `/pypi/PROJECT/json`)";

/// One pinned source of the static base: a `[[static]]` entry of kiln.lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticSource {
    /// What it provides: [`CA_CERTIFICATES`] or [`TZDATA`].
    pub name: String,
    /// Where the wheel is downloaded from.
    pub url: String,
    /// The wheel's sha256, lower-case hex: what decides the base's bytes.
    pub sha256: String,
    /// The wheel's version on PyPI, for people reading the lock.
    pub version: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StaticBaseError {
    #[error("GET {url}: {message}{}\nhint: {hint}", attempts_note(*.attempts))]
    Fetch {
        url: String,
        message: String,
        attempts: u32,
        hint: String,
    },
    #[error("GET {url}: {status}{}\nhint: {hint}", attempts_note(*.attempts))]
    Status {
        url: String,
        status: String,
        attempts: u32,
        hint: String,
    },
    #[error("GET {url}: the answer is larger than the limit of {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error(
        "{url} is not the file kiln.lock pins: its sha256 is {actual}, the pin says {expected}\nhint: the server, a proxy or the pin changed; `kiln lock --update-bases` pins what the index serves now"
    )]
    DigestMismatch {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("{url} is not a PyPI JSON project page: {source}")]
    InvalidIndexPage {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{url} lists no pure-Python wheel (`…-none-any.whl`) with a sha256 for {project}")]
    NoWheel { url: String, project: String },
    #[error("static base source `{name}`: {problem}")]
    InvalidSource { name: String, problem: String },
    #[error(
        "the static base needs one `ca-certificates` and one `tzdata` source: {problem}\nhint: `kiln lock --update-bases` writes both"
    )]
    SourceSet { problem: String },
    #[error("the wheel {url} cannot be read as a zip archive")]
    Unreadable {
        url: String,
        #[source]
        source: ZipError,
    },
    #[error("the wheel {url} has more than {limit} entries")]
    TooManyEntries { url: String, limit: usize },
    #[error("the wheel {url} has the entry {entry:?}, which kiln refuses: {reason}")]
    HostileEntry {
        url: String,
        entry: String,
        reason: String,
    },
    #[error("the wheel {url} names the entry {entry:?} more than once")]
    DuplicateEntry { url: String, entry: String },
    #[error("the wheel {url} has the entry {entry:?} of {size} bytes, over the limit of {limit}")]
    EntryTooLarge {
        url: String,
        entry: String,
        size: u64,
        limit: u64,
    },
    #[error(
        "the files kiln takes from the wheel {url} add up to more than {limit} bytes (passed at {entry:?})"
    )]
    TotalTooLarge {
        url: String,
        entry: String,
        limit: u64,
    },
    #[error("the wheel {url} has the entry {entry:?}, which cannot be read: {reason}")]
    EntryUnreadable {
        url: String,
        entry: String,
        reason: String,
    },
    #[error("the wheel {url} has no {file}\nhint: is the `{name}` source a {project} wheel?")]
    MissingFile {
        url: String,
        file: String,
        name: String,
        project: String,
    },
    #[error("the wheel {url} has {file}, but {problem}")]
    UnexpectedContent {
        url: String,
        file: String,
        problem: String,
    },
    #[error("cannot write {}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} holds {path}, {kind}, which the static base never has", .rootfs.display())]
    UnexpectedEntry {
        rootfs: PathBuf,
        path: ImagePath,
        kind: &'static str,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tree(#[from] TreeError),
}

fn attempts_note(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    }
}

fn write_error(path: &Path) -> impl FnOnce(io::Error) -> StaticBaseError + '_ {
    move |source| StaticBaseError::Write {
        path: path.to_owned(),
        source,
    }
}

/// The PyPI project a `[[static]]` source's wheel comes from, by its name.
pub fn pypi_project(name: &str) -> Option<&'static str> {
    match name {
        CA_CERTIFICATES => Some(CA_CERTIFICATES_PROJECT),
        TZDATA => Some(TZDATA_PROJECT),
        _ => None,
    }
}

/// What the image takes from a `[[static]]` source, for people reading an SBOM.
pub fn provides(name: &str) -> Option<String> {
    match name {
        CA_CERTIFICATES => Some(format!("the CA bundle at /{CA_BUNDLE_PATH}")),
        TZDATA => Some(format!("the time zone database under /{ZONEINFO_PATH}")),
        _ => None,
    }
}

/// kiln's built-in pins: the newest `certifi` and `tzdata` wheels on PyPI when this kiln was
/// made (2026-11), each checked by downloading it. `kiln lock` writes these into a new
/// kiln.lock; `kiln lock --update-bases` asks PyPI for newer ones ([`latest_sources`]).
pub fn default_sources() -> Vec<StaticSource> {
    vec![
        StaticSource {
            name: CA_CERTIFICATES.to_owned(),
            url: "https://files.pythonhosted.org/packages/7a/3e/9ddb6d78c2ffd17604c05745f553614bfbecd2cc6741bbaa5181bc8b2496/certifi-2026.10.19.post1-py3-none-any.whl".to_owned(),
            sha256: "1324c476b4811eff41a8bc2122cd0bbd4d9c7234c725446d99ab1612b3a7fdd2".to_owned(),
            version: "2026.10.19.post1".to_owned(),
        },
        StaticSource {
            name: TZDATA.to_owned(),
            url: "https://files.pythonhosted.org/packages/0a/66/9a06c2227fedfd4919f0eaaa8b94377d9730882a7e4f95823c9a331ab5e1/tzdata-2026.6-py2.py3-none-any.whl".to_owned(),
            sha256: "0a10eec6e13ef16b627fabed9a5f2ba61a62b1c67f327305f4e7e412a70b4aec".to_owned(),
            version: "2026.6".to_owned(),
        },
    ]
}

/// The package index to ask for the newest wheels: `$KILN_PYPI_URL` when set and not empty,
/// else [`DEFAULT_PYPI_URL`].
pub fn pypi_url() -> String {
    std::env::var(PYPI_URL_ENV)
        .ok()
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| DEFAULT_PYPI_URL.to_owned())
}

/// The newest wheel of each source on the index at `index_url` (PyPI's JSON API,
/// `{index}/pypi/{project}/json`): its `urls[]` entry of `packagetype` `bdist_wheel` that is
/// pure Python (`…-none-any.whl`) and not yanked, with `digests.sha256`. A relative file URL
/// (mirrors serve them) is resolved against the page's URL, as pip does. Nothing is
/// downloaded but the two pages; [`realise`] checks the wheels against these digests.
pub fn latest_sources(index_url: &str) -> Result<Vec<StaticSource>, StaticBaseError> {
    let index = index_url.trim_end_matches('/');
    let mut sources = Vec::new();
    for (name, project) in [
        (CA_CERTIFICATES, CA_CERTIFICATES_PROJECT),
        (TZDATA, TZDATA_PROJECT),
    ] {
        let page_url = format!("{index}/pypi/{project}/json");
        let bytes = get(&page_url, MAX_INDEX_PAGE, INDEX_HINT)?;
        sources.push(newest_wheel(&bytes, &page_url, name, project)?);
    }
    // A page could name a `file:` URL or an odd digest; refuse what `realise` would.
    check_sources(&sources)?;
    Ok(sources)
}

/// What [`latest_sources`] reads of a PyPI JSON page.
#[derive(Deserialize)]
struct ProjectPage {
    info: ProjectInfo,
    urls: Vec<ReleaseFile>,
}

#[derive(Deserialize)]
struct ProjectInfo {
    version: String,
}

#[derive(Deserialize)]
struct ReleaseFile {
    packagetype: String,
    filename: String,
    url: String,
    digests: FileDigests,
    #[serde(default)]
    yanked: bool,
}

#[derive(Deserialize)]
struct FileDigests {
    sha256: Option<String>,
}

fn newest_wheel(
    page: &[u8],
    page_url: &str,
    name: &str,
    project: &str,
) -> Result<StaticSource, StaticBaseError> {
    let page: ProjectPage =
        serde_json::from_slice(page).map_err(|source| StaticBaseError::InvalidIndexPage {
            url: redact(page_url),
            source,
        })?;
    let mut wheels: Vec<ReleaseFile> = page
        .urls
        .into_iter()
        .filter(|file| {
            file.packagetype == "bdist_wheel"
                && file.filename.ends_with("-none-any.whl")
                && !file.yanked
                && file.digests.sha256.as_deref().is_some_and(is_sha256_hex)
        })
        .collect();
    // A release may have a `py2` and a `py3` wheel; kiln takes the one a Python 3 would.
    let chosen = wheels
        .iter()
        .position(|file| file.filename.contains("py3"))
        .unwrap_or(0);
    if wheels.is_empty() {
        return Err(StaticBaseError::NoWheel {
            url: redact(page_url),
            project: project.to_owned(),
        });
    }
    let wheel = wheels.swap_remove(chosen);
    Ok(StaticSource {
        name: name.to_owned(),
        url: redact(&resolve_url(page_url, &wheel.url)),
        sha256: wheel
            .digests
            .sha256
            .unwrap_or_default()
            .to_ascii_lowercase(),
        version: page.info.version,
    })
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// The two sources of a valid pin set.
struct Pins<'a> {
    ca_certificates: &'a StaticSource,
    tzdata: &'a StaticSource,
}

fn check_sources(sources: &[StaticSource]) -> Result<Pins<'_>, StaticBaseError> {
    let mut ca_certificates = None;
    let mut tzdata = None;
    for source in sources {
        let slot = match source.name.as_str() {
            CA_CERTIFICATES => &mut ca_certificates,
            TZDATA => &mut tzdata,
            other => {
                return Err(StaticBaseError::SourceSet {
                    problem: format!("`{other}` is not one of them"),
                });
            }
        };
        if slot.is_some() {
            return Err(StaticBaseError::SourceSet {
                problem: format!("`{}` is given twice", source.name),
            });
        }
        let invalid = |problem: String| StaticBaseError::InvalidSource {
            name: source.name.clone(),
            problem,
        };
        if !(is_sha256_hex(&source.sha256)
            && source.sha256.bytes().all(|byte| !byte.is_ascii_uppercase()))
        {
            return Err(invalid(format!(
                "sha256 `{}` is not 64 lower-case hex digits",
                source.sha256
            )));
        }
        if !(source.url.starts_with("https://") || source.url.starts_with("http://")) {
            return Err(invalid(format!(
                "url `{}` is not an http(s) URL",
                source.url
            )));
        }
        *slot = Some(source);
    }
    match (ca_certificates, tzdata) {
        (Some(ca_certificates), Some(tzdata)) => Ok(Pins {
            ca_certificates,
            tzdata,
        }),
        (None, _) => Err(StaticBaseError::SourceSet {
            problem: "`ca-certificates` is missing".to_owned(),
        }),
        (_, None) => Err(StaticBaseError::SourceSet {
            problem: "`tzdata` is missing".to_owned(),
        }),
    }
}

/// The store recipe of the root filesystem for `sources` (see the module doc, and
/// [`recipes::static_base`] for its format; it changes when what kiln writes into the root
/// filesystem does).
pub fn recipe(sources: &[StaticSource]) -> Result<Recipe, StaticBaseError> {
    let pins = check_sources(sources)?;
    Ok(recipe_of(&pins))
}

fn recipe_of(pins: &Pins<'_>) -> Recipe {
    recipes::static_base(&pins.ca_certificates.sha256, &pins.tzdata.sha256)
}

/// The root filesystem of the static base for `sources`, from the store, made there first if
/// it is missing (the only case that uses the network). The caller holds the store's build
/// guard, as for every output. `status` hears about waits and downloads.
pub fn realise(
    store: &Store,
    sources: &[StaticSource],
    status: &dyn Fn(&str),
) -> Result<PathBuf, StaticBaseError> {
    let pins = check_sources(sources)?;
    let realised = store.realise(
        &recipe_of(&pins),
        || status("waiting for another kiln making the static base"),
        |temp| {
            build_rootfs(temp, &pins, status, LIMITS)?;
            Ok::<_, StaticBaseError>(temp.to_owned())
        },
    )?;
    Ok(realised.path)
}

fn build_rootfs(
    rootfs: &Path,
    pins: &Pins<'_>,
    status: &dyn Fn(&str),
    limits: Limits,
) -> Result<(), StaticBaseError> {
    fs_err::create_dir_all(rootfs).map_err(write_error(rootfs))?;
    for (source, project) in [
        (pins.ca_certificates, CA_CERTIFICATES_PROJECT),
        (pins.tzdata, TZDATA_PROJECT),
    ] {
        status(&format!(
            "fetching {} {} ({project} wheel)",
            source.name, source.version
        ));
        let wheel = download_verified(source, limits.wheel)?;
        let files = read_wheel(&wheel, &redact(&source.url), limits, |entry| {
            destination(&source.name, entry)
        })?;
        check_content(source, project, &files)?;
        for (relative, content) in &files {
            write_file(&rootfs.join(relative), content)?;
        }
    }
    for (relative, content) in [
        ("etc/passwd", PASSWD),
        ("etc/group", GROUP),
        ("etc/nsswitch.conf", NSSWITCH_CONF),
    ] {
        write_file(&rootfs.join(relative), content.as_bytes())?;
    }
    for (relative, _) in SPECIAL_FOLDERS {
        let folder = rootfs.join(relative);
        fs_err::create_dir_all(&folder).map_err(write_error(&folder))?;
    }
    Ok(())
}

/// Where a wheel's entry (a file path) lands in the root filesystem, if it is taken.
fn destination(source_name: &str, entry: &str) -> Option<String> {
    match source_name {
        CA_CERTIFICATES => (entry == "certifi/cacert.pem").then(|| CA_BUNDLE_PATH.to_owned()),
        TZDATA => {
            let zone = entry.strip_prefix("tzdata/zoneinfo/")?;
            let file_name = zone.rsplit('/').next().unwrap_or(zone);
            let python = zone.split('/').any(|element| element == "__pycache__")
                || file_name == "py.typed"
                || [".py", ".pyc", ".pyo", ".pyi"]
                    .iter()
                    .any(|extension| file_name.ends_with(extension));
            (!zone.is_empty() && !python).then(|| format!("{ZONEINFO_PATH}/{zone}"))
        }
        _ => None,
    }
}

/// The checks that a pin names the right project's wheel, beyond its digest: the bundle holds
/// certificates, `UTC` is a TZif file.
fn check_content(
    source: &StaticSource,
    project: &str,
    files: &[(String, Vec<u8>)],
) -> Result<(), StaticBaseError> {
    let (wanted, wheel_file) = match source.name.as_str() {
        CA_CERTIFICATES => (CA_BUNDLE_PATH.to_owned(), "certifi/cacert.pem"),
        _ => (format!("{ZONEINFO_PATH}/UTC"), "tzdata/zoneinfo/UTC"),
    };
    let Some((_, content)) = files.iter().find(|(path, _)| *path == wanted) else {
        return Err(StaticBaseError::MissingFile {
            url: redact(&source.url),
            file: wheel_file.to_owned(),
            name: source.name.clone(),
            project: project.to_owned(),
        });
    };
    let problem = match source.name.as_str() {
        CA_CERTIFICATES => {
            let pem = b"-----BEGIN CERTIFICATE-----";
            (!content.windows(pem.len()).any(|window| window == pem))
                .then_some("it holds no PEM certificate")
        }
        _ => (!content.starts_with(b"TZif")).then_some("it is not a TZif file"),
    };
    match problem {
        Some(problem) => Err(StaticBaseError::UnexpectedContent {
            url: redact(&source.url),
            file: wheel_file.to_owned(),
            problem: problem.to_owned(),
        }),
        None => Ok(()),
    }
}

fn write_file(path: &Path, content: &[u8]) -> Result<(), StaticBaseError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(parent) = path.parent() {
        fs_err::create_dir_all(parent).map_err(write_error(parent))?;
    }
    // `create_new`: a wheel naming a file twice (or a file and a folder alike) fails here
    // rather than overwriting what came first.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .map_err(write_error(path))?;
    file.write_all(content).map_err(write_error(path))
}

/// Download `source`'s wheel and check its sha256 before anything reads it.
fn download_verified(source: &StaticSource, limit: u64) -> Result<Vec<u8>, StaticBaseError> {
    let bytes = get(&source.url, limit, WHEEL_HINT)?;
    verify_sha256(&redact(&source.url), &source.sha256, &bytes)?;
    Ok(bytes)
}

fn verify_sha256(url: &str, expected: &str, bytes: &[u8]) -> Result<(), StaticBaseError> {
    let actual = hex::encode(Sha256::digest(bytes));
    if actual != expected {
        return Err(StaticBaseError::DigestMismatch {
            url: url.to_owned(),
            expected: expected.to_owned(),
            actual,
        });
    }
    Ok(())
}

/// Why an entry name is refused, if it is. A folder's name ends in `/`.
fn name_problem(name: &str) -> Option<&'static str> {
    let path = name.strip_suffix('/').unwrap_or(name);
    if path.is_empty() {
        return Some("its name is empty");
    }
    if name.len() > MAX_ENTRY_NAME {
        return Some("its name is longer than Linux's PATH_MAX");
    }
    if path.starts_with('/') {
        return Some("its name is absolute");
    }
    if path.contains('\\') {
        return Some("its name has a backslash, a separator on Windows");
    }
    if path.chars().any(char::is_control) {
        return Some("its name has a control character");
    }
    for element in path.split('/') {
        match element {
            "" => return Some("its name has an empty element (`//`)"),
            "." | ".." => return Some("its name has a `.` or `..` element"),
            _ if element.starts_with(WHITEOUT_PREFIX) => {
                return Some("its name has an element starting with `.wh.`, a layer whiteout");
            }
            _ => {}
        }
    }
    None
}

/// Check every entry of the wheel `bytes` (see the module doc) and return the files `select`
/// maps to a destination, as (destination, content), sorted by destination.
fn read_wheel(
    bytes: &[u8],
    url: &str,
    limits: Limits,
    select: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(String, Vec<u8>)>, StaticBaseError> {
    let mut archive =
        ZipArchive::new(Cursor::new(bytes)).map_err(|source| StaticBaseError::Unreadable {
            url: url.to_owned(),
            source,
        })?;
    if archive.len() > limits.entries {
        return Err(StaticBaseError::TooManyEntries {
            url: url.to_owned(),
            limit: limits.entries,
        });
    }
    // The zip crate keeps one entry per name and only flags that a name came twice.
    if archive.has_duplicate_names() {
        let mut seen = std::collections::BTreeSet::new();
        let duplicate = (0..archive.len())
            .filter_map(|index| archive.by_index_data(index).ok())
            .map(|entry| String::from_utf8_lossy(entry.name_raw()).into_owned())
            .find(|name| !seen.insert(name.clone()))
            .unwrap_or_default();
        return Err(StaticBaseError::DuplicateEntry {
            url: url.to_owned(),
            entry: duplicate,
        });
    }

    // First every name, type and declared size, reading no contents.
    let mut taken = Vec::new();
    let mut total = Budget::new(limits.total);
    for index in 0..archive.len() {
        let entry = archive
            .by_index_data(index)
            .map_err(|source| StaticBaseError::Unreadable {
                url: url.to_owned(),
                source,
            })?;
        let lossy_name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        let hostile = |reason: &str| StaticBaseError::HostileEntry {
            url: url.to_owned(),
            entry: lossy_name.clone(),
            reason: reason.to_owned(),
        };
        let name = std::str::from_utf8(entry.name_raw())
            .map_err(|_| hostile("its name is not valid UTF-8"))?;
        if let Some(problem) = name_problem(name) {
            return Err(hostile(problem));
        }
        let is_folder = name.ends_with('/');
        match irregular_kind(entry.unix_mode().unwrap_or(0), is_folder) {
            None => {}
            Some(Irregular::FolderWithoutSlash) => {
                return Err(hostile(
                    "it is a folder by its mode but its name has no `/`",
                ));
            }
            Some(kind) => return Err(hostile(&format!("it is a {kind}"))),
        }
        if is_folder {
            continue;
        }
        let Some(destination) = select(name) else {
            continue;
        };
        let declared = entry.size();
        if declared > limits.file {
            return Err(StaticBaseError::EntryTooLarge {
                url: url.to_owned(),
                entry: lossy_name,
                size: declared,
                limit: limits.file,
            });
        }
        if total.take(declared).is_err() {
            return Err(StaticBaseError::TotalTooLarge {
                url: url.to_owned(),
                entry: lossy_name,
                limit: limits.total,
            });
        }
        taken.push((index, name.to_owned(), destination, declared));
    }

    // Then the contents of what is taken, each bounded by its declared size.
    let mut files = Vec::with_capacity(taken.len());
    for (index, name, destination, declared) in taken {
        let unreadable = |reason: String| StaticBaseError::EntryUnreadable {
            url: url.to_owned(),
            entry: name.clone(),
            reason,
        };
        let mut file = archive
            .by_index(index)
            .map_err(|error| unreadable(error.to_string()))?;
        if has_second_name(&file) {
            return Err(StaticBaseError::HostileEntry {
                url: url.to_owned(),
                entry: name,
                reason: "it carries a second name (an Info-ZIP Unicode Path field)".to_owned(),
            });
        }
        let content =
            read_declared(&mut file, declared).map_err(|error| unreadable(error.to_string()))?;
        files.push((destination, content));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

/// The file tree of the static layer from the root filesystem [`realise`] made: every folder
/// 0755 and file 0644, owned by root, except three folders
/// (`/home/nonroot` 0700 65532:65532, `/root` 0700, `/tmp` 1777). The store's read-only
/// modes never reach the layer. Write it with [`LAYER_MTIME`].
pub fn layer_tree(rootfs: &Path) -> Result<FileTree, StaticBaseError> {
    let mut tree = FileTree::new();
    tree.add(rootfs, "/")?;
    let mut attributes = Vec::with_capacity(tree.len());
    for (path, node) in tree.entries() {
        match node {
            Node::Directory { .. } => attributes.push((path.clone(), Attributes::DIRECTORY)),
            Node::File { .. } => attributes.push((path.clone(), Attributes::REGULAR)),
            Node::Symlink { .. } => {
                return Err(StaticBaseError::UnexpectedEntry {
                    rootfs: rootfs.to_owned(),
                    path: path.clone(),
                    kind: "a symlink",
                });
            }
        }
    }
    for (relative, special) in SPECIAL_FOLDERS {
        let path = ImagePath::parse_absolute(&format!("/{relative}"))?;
        if let Some((_, folder_attributes)) =
            attributes.iter_mut().find(|(entry, _)| *entry == path)
        {
            *folder_attributes = special;
        } else {
            return Err(TreeError::NotInTree(path).into());
        }
    }
    for (path, attributes) in attributes {
        tree.set_attributes(&path, attributes)?;
    }
    Ok(tree)
}

/// Resolve `reference` (a URL from a JSON page) against `base` (the page's URL) as RFC 3986
/// does for the forms an index uses: absolute, scheme-relative (`//host/…`), host-relative
/// (`/…`) and path-relative (`../../packages/…`), dot segments removed.
fn resolve_url(base: &str, reference: &str) -> String {
    let has_scheme = reference.split_once(':').is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'-' | b'.'))
            && !scheme.contains('/')
    });
    if has_scheme {
        return reference.to_owned();
    }
    let Some(scheme_end) = base.find("://") else {
        return reference.to_owned();
    };
    let scheme = &base[..scheme_end];
    if reference.starts_with("//") {
        return format!("{scheme}:{reference}");
    }
    let authority_start = scheme_end + 3;
    let authority_end = base[authority_start..]
        .find(['/', '?', '#'])
        .map_or(base.len(), |index| authority_start + index);
    let origin = &base[..authority_end];
    let (reference_path, suffix) = match reference.find(['?', '#']) {
        Some(index) => reference.split_at(index),
        None => (reference, ""),
    };
    let merged = if reference_path.starts_with('/') {
        reference_path.to_owned()
    } else {
        let base_path = &base[authority_end..];
        let base_path = base_path
            .find(['?', '#'])
            .map_or(base_path, |index| &base_path[..index]);
        let folder = base_path
            .rfind('/')
            .map_or("/", |index| &base_path[..=index]);
        format!("{folder}{reference_path}")
    };
    // Remove dot segments; `..` above the root stays at the root.
    let mut segments: Vec<&str> = Vec::new();
    let parts: Vec<&str> = merged.split('/').skip(1).collect();
    for (position, segment) in parts.iter().enumerate() {
        let last = position + 1 == parts.len();
        match *segment {
            "." => {
                if last {
                    segments.push("");
                }
            }
            ".." => {
                segments.pop();
                if last {
                    segments.push("");
                }
            }
            other => segments.push(other),
        }
    }
    format!("{origin}/{}{suffix}", segments.join("/"))
}

/// The host (and port) of `url`, without userinfo.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority.rsplit('@').next().unwrap_or(authority)
}

/// GET `url`, at most `limit` bytes, retrying as [`RetryPolicy::static_base`] says (on
/// connection failures, 5xx and 429), with the settings of [`AgentOptions::static_base`].
fn get(url: &str, limit: u64, hint: &str) -> Result<Vec<u8>, StaticBaseError> {
    let client = Client::new(&AgentOptions::static_base().for_host(host_of(url)));
    let retry = RetryPolicy::static_base();
    retry.run(|attempt| get_once(&retry, &client, url, limit, attempt, hint))
}

fn get_once(
    retry: &RetryPolicy,
    client: &Client,
    url: &str,
    limit: u64,
    attempt: u32,
    hint: &str,
) -> Attempt<Vec<u8>, StaticBaseError> {
    let shown = redact(url);
    let response = match client.get(url).call() {
        Ok(response) => response,
        Err(error) => {
            let tls = matches!(error, ureq::Error::Tls(_) | ureq::Error::Rustls(_));
            let hint = if tls {
                format!("{}\nhint: {hint}", crate::http::tls::roots_hint())
            } else {
                hint.to_owned()
            };
            let failure = StaticBaseError::Fetch {
                url: shown,
                message: error.to_string(),
                attempts: attempt,
                hint,
            };
            return if retry.retries_error(&error) {
                Attempt::Retry(failure)
            } else {
                Attempt::Fail(failure)
            };
        }
    };
    let status = response.status();
    if !status.is_success() {
        let failure = StaticBaseError::Status {
            url: shown,
            status: http::status_text(status),
            attempts: attempt,
            hint: hint.to_owned(),
        };
        return if retry.retries_status(status) {
            Attempt::Retry(failure)
        } else {
            Attempt::Fail(failure)
        };
    }
    match http::read_limited(response, limit) {
        Ok(bytes) => Attempt::Done(bytes),
        Err(HttpError::TooLarge { limit }) => {
            Attempt::Fail(StaticBaseError::TooLarge { url: shown, limit })
        }
        Err(HttpError::Read(error)) => Attempt::Retry(StaticBaseError::Fetch {
            url: shown,
            message: format!("reading the answer: {error}"),
            attempts: attempt,
            hint: hint.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use zip::ZipWriter;
    use zip::write::SimpleFileOptions;

    use crate::http::test_server::{Reply, TestServer};
    use crate::oci::compression::Compression;
    use crate::oci::layer::{LayerOptions, write_layer};

    const URL: &str = "https://files.example/wheel.whl";

    fn options() -> SimpleFileOptions {
        SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated)
    }

    /// A zip of `entries`; a name ending in `/` is a folder entry.
    fn wheel(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        for (name, content) in entries {
            if name.ends_with('/') {
                writer.add_directory(*name, options()).unwrap();
            } else {
                writer.start_file(*name, options()).unwrap();
                writer.write_all(content).unwrap();
            }
        }
        writer.finish().unwrap().into_inner()
    }

    const PEM: &[u8] = b"# Issuer: CN=Example Root\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    /// A wheel laid out as certifi's.
    fn certifi_wheel() -> Vec<u8> {
        wheel(&[
            ("certifi/__init__.py", b"from .core import where\n"),
            ("certifi/cacert.pem", PEM),
            ("certifi/py.typed", b""),
            ("certifi-1.0.dist-info/RECORD", b"certifi/cacert.pem,,\n"),
        ])
    }

    /// A wheel laid out as tzdata's.
    fn tzdata_wheel() -> Vec<u8> {
        wheel(&[
            ("tzdata/__init__.py", b"IANA_VERSION = \"2026f\"\n"),
            ("tzdata/zones", b"Europe/Berlin\nUTC\n"),
            ("tzdata/zoneinfo/__init__.py", b""),
            ("tzdata/zoneinfo/UTC", b"TZif2 utc"),
            ("tzdata/zoneinfo/Zulu", b"TZif2 utc"),
            ("tzdata/zoneinfo/Europe/__init__.py", b""),
            ("tzdata/zoneinfo/Europe/Berlin", b"TZif2 berlin"),
            (
                "tzdata/zoneinfo/Europe/__pycache__/x.cpython-312.pyc",
                b"\0",
            ),
            ("tzdata/zoneinfo/tzdata.zi", b"# version 2026f\n"),
            (
                "tzdata/zoneinfo/zone1970.tab",
                b"DE\t+5230+01322\tEurope/Berlin\n",
            ),
            ("tzdata-1.0.dist-info/WHEEL", b"Wheel-Version: 1.0\n"),
        ])
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    /// A loopback HTTP server answering `routes` (path → body; other paths 404) and counting
    /// the requests it answers.
    fn serve(routes: Vec<(String, Vec<u8>)>) -> TestServer {
        let routes = routes
            .into_iter()
            .map(|(path, body)| (path, vec![Reply::ok(body)]));
        TestServer::routes(routes, Reply::new(404, "not found")).unwrap()
    }

    fn sources_on(server: &TestServer, certifi: &[u8], tzdata: &[u8]) -> Vec<StaticSource> {
        vec![
            StaticSource {
                name: CA_CERTIFICATES.to_owned(),
                url: format!("{}/certifi-1.0-py3-none-any.whl", server.url()),
                sha256: sha256_hex(certifi),
                version: "1.0".to_owned(),
            },
            StaticSource {
                name: TZDATA.to_owned(),
                url: format!("{}/tzdata-1.0-py2.py3-none-any.whl", server.url()),
                sha256: sha256_hex(tzdata),
                version: "1.0".to_owned(),
            },
        ]
    }

    fn serve_wheels() -> (TestServer, Vec<StaticSource>) {
        let (certifi, tzdata) = (certifi_wheel(), tzdata_wheel());
        let server = serve(vec![
            ("/certifi-1.0-py3-none-any.whl".to_owned(), certifi.clone()),
            (
                "/tzdata-1.0-py2.py3-none-any.whl".to_owned(),
                tzdata.clone(),
            ),
        ]);
        let sources = sources_on(&server, &certifi, &tzdata);
        (server, sources)
    }

    /// Every path under `root`, `/`-separated, folders ending in `/`.
    fn listing(root: &Path) -> Vec<String> {
        let mut paths = Vec::new();
        let mut pending = vec![root.to_owned()];
        while let Some(folder) = pending.pop() {
            for entry in std::fs::read_dir(&folder).unwrap() {
                let path = entry.unwrap().path();
                let relative = path.strip_prefix(root).unwrap().display().to_string();
                if path.is_dir() {
                    paths.push(format!("{relative}/"));
                    pending.push(path);
                } else {
                    paths.push(relative);
                }
            }
        }
        paths.sort();
        paths
    }

    #[test]
    fn generated_files_are_pinned() {
        assert_eq!(
            PASSWD,
            "root:x:0:0:root:/root:/sbin/nologin\n\
             nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
        );
        assert_eq!(GROUP, "root:x:0:\nnonroot:x:65532:\n");
        assert_eq!(NSSWITCH_CONF, "hosts: files dns\n");
        assert!(PASSWD.contains(&format!(":{NONROOT_UID}:{NONROOT_GID}:")));
    }

    #[test]
    fn default_sources_are_a_valid_pin_set() {
        let sources = default_sources();
        assert!(check_sources(&sources).is_ok());
        for source in &sources {
            assert!(
                source
                    .url
                    .starts_with("https://files.pythonhosted.org/packages/")
            );
            assert!(source.url.ends_with("-none-any.whl"), "{}", source.url);
            assert!(source.url.contains(&source.version), "{}", source.url);
        }
    }

    #[test]
    fn recipe_holds_digests_sorted_by_name() {
        let source = |name: &str, digit: char, url: &str| StaticSource {
            name: name.to_owned(),
            url: url.to_owned(),
            sha256: digit.to_string().repeat(64),
            version: "1".to_owned(),
        };
        let sources = [
            source(TZDATA, 'b', "https://a.example/t.whl"),
            source(CA_CERTIFICATES, 'a', "https://a.example/c.whl"),
        ];
        let pinned = recipe(&sources).unwrap();
        let text =
            String::from_utf8(crate::oci::json::to_canonical_vec(pinned.document()).unwrap())
                .unwrap();
        assert_eq!(
            text,
            format!(
                r#"{{"kiln":"static-base/1","sources":[{{"name":"ca-certificates","sha256":"{}"}},{{"name":"tzdata","sha256":"{}"}}]}}"#,
                "a".repeat(64),
                "b".repeat(64)
            )
        );
        // A mirror's URL for the same bytes is the same output.
        let mirrored = [
            source(CA_CERTIFICATES, 'a', "https://mirror.example/c.whl"),
            source(TZDATA, 'b', "https://mirror.example/t.whl"),
        ];
        assert_eq!(
            recipe(&mirrored).unwrap().name(),
            recipe(&sources).unwrap().name()
        );
    }

    #[test]
    fn pin_sets_are_checked() {
        let valid = default_sources();
        let cases: Vec<(&str, Vec<StaticSource>, &str)> = vec![
            ("empty", vec![], "`ca-certificates` is missing"),
            ("no tzdata", valid[..1].to_vec(), "`tzdata` is missing"),
            (
                "twice",
                vec![valid[0].clone(), valid[0].clone(), valid[1].clone()],
                "`ca-certificates` is given twice",
            ),
            (
                "unknown",
                vec![
                    valid[0].clone(),
                    valid[1].clone(),
                    StaticSource {
                        name: "busybox".to_owned(),
                        ..valid[1].clone()
                    },
                ],
                "`busybox` is not one of them",
            ),
            (
                "short digest",
                vec![
                    StaticSource {
                        sha256: "abc".to_owned(),
                        ..valid[0].clone()
                    },
                    valid[1].clone(),
                ],
                "static base source `ca-certificates`: sha256 `abc` is not 64 lower-case hex digits",
            ),
            (
                "upper-case digest",
                vec![
                    valid[0].clone(),
                    StaticSource {
                        sha256: valid[1].sha256.to_ascii_uppercase(),
                        ..valid[1].clone()
                    },
                ],
                "is not 64 lower-case hex digits",
            ),
            (
                "file URL",
                vec![
                    valid[0].clone(),
                    StaticSource {
                        url: "file:///etc/passwd".to_owned(),
                        ..valid[1].clone()
                    },
                ],
                "url `file:///etc/passwd` is not an http(s) URL",
            ),
        ];
        for (case, sources, expected) in cases {
            let error = check_sources(&sources).err().unwrap().to_string();
            assert!(error.contains(expected), "{case}: {error}");
        }
    }

    #[test]
    fn sources_round_trip_through_serde() {
        let source = &default_sources()[0];
        let text = serde_json::to_string(source).unwrap();
        assert_eq!(
            serde_json::from_str::<StaticSource>(&text).unwrap(),
            *source
        );
        let unknown = text.replace("\"version\"", "\"extra\":1,\"version\"");
        assert!(serde_json::from_str::<StaticSource>(&unknown).is_err());
    }

    #[test]
    fn digest_mismatch_names_the_url_and_both_digests() {
        let expected = "0".repeat(64);
        let error = verify_sha256(URL, &expected, b"other bytes")
            .unwrap_err()
            .to_string();
        let actual = sha256_hex(b"other bytes");
        assert!(
            error.starts_with(&format!(
                "{URL} is not the file kiln.lock pins: its sha256 is {actual}, the pin says {expected}\nhint: "
            )),
            "{error}"
        );
        assert!(verify_sha256(URL, &actual, b"other bytes").is_ok());
    }

    #[test]
    fn entry_names_are_checked() {
        for (name, expected) in [
            ("tzdata/zoneinfo/America/Argentina/Buenos_Aires", None),
            ("tzdata/zoneinfo/", None),
            ("certifi-2026.1.dist-info/RECORD", None),
            ("", Some("its name is empty")),
            ("/", Some("its name is empty")),
            ("/etc/passwd", Some("its name is absolute")),
            ("../etc/passwd", Some("its name has a `.` or `..` element")),
            ("tzdata/../../x", Some("its name has a `.` or `..` element")),
            ("tzdata/./x", Some("its name has a `.` or `..` element")),
            ("tzdata//x", Some("its name has an empty element (`//`)")),
            (
                "tzdata\\..\\x",
                Some("its name has a backslash, a separator on Windows"),
            ),
            ("tzdata/x\0y", Some("its name has a control character")),
            ("tzdata/x\ny", Some("its name has a control character")),
            (
                "tzdata/zoneinfo/.wh.UTC",
                Some("its name has an element starting with `.wh.`, a layer whiteout"),
            ),
        ] {
            assert_eq!(name_problem(name), expected, "{name:?}");
        }
        assert_eq!(
            name_problem(&"a/".repeat(2100)),
            Some("its name is longer than Linux's PATH_MAX")
        );
    }

    fn take_everything(name: &str) -> Option<String> {
        Some(name.to_owned())
    }

    /// The error `read_wheel` gives for `bytes`, which must name the URL and contain
    /// `expected`.
    fn refusal(bytes: &[u8], limits: Limits, expected: &str) -> StaticBaseError {
        let error = read_wheel(bytes, URL, limits, take_everything).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains(URL) && message.contains(expected),
            "{message:?} should name {URL} and contain {expected:?}"
        );
        error
    }

    #[test]
    fn hostile_wheels_are_refused() {
        // Names: refused in any entry, even one kiln would not take.
        for name in ["../evil", "/etc/passwd", "a/../../evil", "a\\b", "a//b"] {
            let bytes = wheel(&[("tzdata/zoneinfo/UTC", b"TZif"), (name, b"x")]);
            let error = read_wheel(&bytes, URL, LIMITS, |_| None).unwrap_err();
            assert!(
                matches!(&error, StaticBaseError::HostileEntry { entry, .. } if entry == name),
                "{name:?}: {error}"
            );
        }

        // Links and other non-regular files.
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        writer
            .add_symlink("tzdata/zoneinfo/localtime", "/etc/shadow", options())
            .unwrap();
        let bytes = writer.finish().unwrap().into_inner();
        refusal(
            &bytes,
            LIMITS,
            "\"tzdata/zoneinfo/localtime\", which kiln refuses: it is a symlink",
        );

        // The zip crate writes only files, folders and symlinks; a FIFO's mode is patched into
        // the central directory's external attributes (offset 38, the Unix mode in the high
        // 16 bits).
        let mut bytes = wheel(&[("tzdata/zoneinfo/fifo", b"")]);
        let central = bytes
            .windows(4)
            .position(|window| window == b"PK\x01\x02")
            .unwrap();
        bytes[central + 38..central + 42].copy_from_slice(&(0o010_644u32 << 16).to_le_bytes());
        refusal(&bytes, LIMITS, "it is a named pipe");

        // Not a zip at all.
        refusal(
            b"PK\x03\x04 not really",
            LIMITS,
            "cannot be read as a zip archive",
        );
    }

    #[test]
    fn wheel_sizes_are_bounded() {
        let bytes = wheel(&[("a", b"1"), ("b", b"2"), ("c", b"3")]);
        let limits = |entries, file, total| Limits {
            wheel: LIMITS.wheel,
            entries,
            file,
            total,
        };
        refusal(&bytes, limits(2, 10, 10), "has more than 2 entries");
        assert_eq!(
            read_wheel(&bytes, URL, limits(3, 10, 10), take_everything)
                .unwrap()
                .len(),
            3
        );

        let big = vec![b'z'; 4096];
        let bytes = wheel(&[("tzdata/zoneinfo/Big", &big), ("small", b"x")]);
        refusal(
            &bytes,
            limits(10, 4095, 1 << 20),
            "\"tzdata/zoneinfo/Big\" of 4096 bytes, over the limit of 4095",
        );
        refusal(
            &bytes,
            limits(10, 4096, 4096),
            "add up to more than 4096 bytes (passed at \"small\")",
        );
        // Sizes count only for what is taken: a large file left out is never read.
        let taken = read_wheel(&bytes, URL, limits(10, 16, 16), |name| {
            (name == "small").then(|| name.to_owned())
        })
        .unwrap();
        assert_eq!(taken, [("small".to_owned(), b"x".to_vec())]);
    }

    #[test]
    fn a_declared_size_is_not_trusted() {
        let stored_wheel = || {
            let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
            let stored =
                SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
            writer.start_file("tzdata/zoneinfo/UTC", stored).unwrap();
            writer.write_all(b"TZif2").unwrap();
            writer.finish().unwrap().into_inner()
        };
        // Content changed after its CRC-32 was written.
        let mut bytes = stored_wheel();
        let position = bytes
            .windows(5)
            .position(|window| window == b"TZif2")
            .unwrap();
        bytes[position + 4] = b'3';
        refusal(&bytes, LIMITS, "which cannot be read");

        // Headers that declare 3 bytes where 5 follow (uncompressed size at offset 22 of the
        // local header and 24 of the central directory's).
        let mut bytes = stored_wheel();
        for (signature, offset) in [(b"PK\x03\x04", 22), (b"PK\x01\x02", 24)] {
            let header = bytes
                .windows(4)
                .position(|window| window == signature)
                .unwrap();
            bytes[header + offset..header + offset + 4].copy_from_slice(&3u32.to_le_bytes());
        }
        refusal(&bytes, LIMITS, "which cannot be read");
    }

    #[test]
    fn wheels_unpack_to_their_destinations() {
        let files = read_wheel(&tzdata_wheel(), URL, LIMITS, |entry| {
            destination(TZDATA, entry)
        })
        .unwrap();
        let paths: Vec<&str> = files.iter().map(|(path, _)| path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "usr/share/zoneinfo/Europe/Berlin",
                "usr/share/zoneinfo/UTC",
                "usr/share/zoneinfo/Zulu",
                "usr/share/zoneinfo/tzdata.zi",
                "usr/share/zoneinfo/zone1970.tab",
            ]
        );
        let files = read_wheel(&certifi_wheel(), URL, LIMITS, |entry| {
            destination(CA_CERTIFICATES, entry)
        })
        .unwrap();
        assert_eq!(files, [(CA_BUNDLE_PATH.to_owned(), PEM.to_vec())]);
    }

    #[test]
    fn a_wheel_of_the_wrong_project_is_named() {
        let (server, mut sources) = serve_wheels();
        // The tzdata wheel pinned as the CA bundle: its digest matches, its content does not.
        sources[0].url = sources[1].url.clone();
        sources[0].sha256 = sources[1].sha256.clone();
        let temp = tempfile::tempdir().unwrap();
        let store = Store::open_at(temp.path()).unwrap();
        let error = realise(&store, &sources, &|_| {}).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!(
                "the wheel {}/tzdata-1.0-py2.py3-none-any.whl has no certifi/cacert.pem\nhint: is the `ca-certificates` source a certifi wheel?",
                server.url()
            )),
            "{error}"
        );
        // Nothing is left behind.
        assert_eq!(
            std::fs::read_dir(store.root().join("tmp")).unwrap().count(),
            0
        );
        assert_eq!(std::fs::read_dir(store.store_dir()).unwrap().count(), 0);
    }

    #[test]
    fn a_changed_download_is_refused() {
        let (server, mut sources) = serve_wheels();
        sources[1].sha256 = "f".repeat(64);
        let temp = tempfile::tempdir().unwrap();
        let store = Store::open_at(temp.path()).unwrap();
        let error = realise(&store, &sources, &|_| {}).unwrap_err();
        let actual = sha256_hex(&tzdata_wheel());
        assert!(
            matches!(&error, StaticBaseError::DigestMismatch { url, expected, actual: got }
                if *url == format!("{}/tzdata-1.0-py2.py3-none-any.whl", server.url())
                    && *expected == "f".repeat(64)
                    && *got == actual),
            "{error}"
        );
        // A 404 names the URL and does not retry.
        sources[1].url = format!("{}/missing.whl", server.url());
        let before = server.count();
        let error = realise(&store, &sources, &|_| {}).unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "GET {}/missing.whl: 404 Not Found\nhint: {WHEEL_HINT}",
                server.url()
            )
        );
        assert_eq!(server.count() - before, 2, "the CA wheel, then one 404");
    }

    #[test]
    fn realise_builds_once_and_then_needs_no_network() {
        let (server, sources) = serve_wheels();
        let temp = tempfile::tempdir().unwrap();
        let store = Store::open_at(temp.path()).unwrap();
        let messages = std::sync::Mutex::new(Vec::new());
        let status = |message: &str| messages.lock().unwrap().push(message.to_owned());
        let rootfs = realise(&store, &sources, &status).unwrap();
        assert_eq!(server.count(), 2);
        assert_eq!(
            *messages.lock().unwrap(),
            [
                "fetching ca-certificates 1.0 (certifi wheel)",
                "fetching tzdata 1.0 (tzdata wheel)"
            ]
        );
        assert_eq!(rootfs, store.path(recipe(&sources).unwrap().name()));
        assert_eq!(
            listing(&rootfs),
            [
                "etc/",
                "etc/group",
                "etc/nsswitch.conf",
                "etc/passwd",
                "etc/ssl/",
                "etc/ssl/certs/",
                "etc/ssl/certs/ca-certificates.crt",
                "home/",
                "home/nonroot/",
                "root/",
                "tmp/",
                "usr/",
                "usr/share/",
                "usr/share/zoneinfo/",
                "usr/share/zoneinfo/Europe/",
                "usr/share/zoneinfo/Europe/Berlin",
                "usr/share/zoneinfo/UTC",
                "usr/share/zoneinfo/Zulu",
                "usr/share/zoneinfo/tzdata.zi",
                "usr/share/zoneinfo/zone1970.tab",
            ]
        );
        assert_eq!(
            std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap(),
            PASSWD
        );
        assert_eq!(std::fs::read(rootfs.join(CA_BUNDLE_PATH)).unwrap(), PEM);

        // Again, with the sources listed the other way round: the store has it.
        let reversed: Vec<StaticSource> = sources.iter().rev().cloned().collect();
        assert_eq!(
            realise(&store, &reversed, &|_| panic!("no status")).unwrap(),
            rootfs
        );
        assert_eq!(server.count(), 2);
        // Even with the server unreachable.
        let offline: Vec<StaticSource> = sources
            .iter()
            .map(|source| StaticSource {
                url: "http://127.0.0.1:9/gone.whl".to_owned(),
                ..source.clone()
            })
            .collect();
        assert_eq!(realise(&store, &offline, &|_| {}).unwrap(), rootfs);
    }

    /// The layer of the static base, as `tar` reads it: owners, modes and the pinned mtime.
    #[test]
    fn layer_golden() {
        let (_server, sources) = serve_wheels();
        let temp = tempfile::tempdir().unwrap();
        let store = Store::open_at(temp.path()).unwrap();
        let rootfs = realise(&store, &sources, &|_| {}).unwrap();
        let tree = layer_tree(&rootfs).unwrap();
        let options = LayerOptions {
            compression: Compression::None,
            mtime: LAYER_MTIME,
            threads: 1,
        };
        let (summary, bytes) = write_layer(&tree, &options, Vec::new(), &mut |_| {}).unwrap();
        let mut archive = tar::Archive::new(&bytes[..]);
        let listing: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let header = entry.header();
                format!(
                    "{:?} {:o} {}:{} {} {}{}",
                    header.entry_type(),
                    header.mode().unwrap(),
                    header.uid().unwrap(),
                    header.gid().unwrap(),
                    header.mtime().unwrap(),
                    entry.path().unwrap().display(),
                    entry
                        .link_name()
                        .unwrap()
                        .map(|link| format!(" -> {}", link.display()))
                        .unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            listing,
            [
                "Directory 755 0:0 1 etc/",
                "Regular 644 0:0 1 etc/group",
                "Regular 644 0:0 1 etc/nsswitch.conf",
                "Regular 644 0:0 1 etc/passwd",
                "Directory 755 0:0 1 etc/ssl/",
                "Directory 755 0:0 1 etc/ssl/certs/",
                "Regular 644 0:0 1 etc/ssl/certs/ca-certificates.crt",
                "Directory 755 0:0 1 home/",
                "Directory 700 65532:65532 1 home/nonroot/",
                "Directory 700 0:0 1 root/",
                "Directory 1777 0:0 1 tmp/",
                "Directory 755 0:0 1 usr/",
                "Directory 755 0:0 1 usr/share/",
                "Directory 755 0:0 1 usr/share/zoneinfo/",
                "Directory 755 0:0 1 usr/share/zoneinfo/Europe/",
                "Regular 644 0:0 1 usr/share/zoneinfo/Europe/Berlin",
                "Regular 644 0:0 1 usr/share/zoneinfo/UTC",
                "Link 644 0:0 1 usr/share/zoneinfo/Zulu -> usr/share/zoneinfo/UTC",
                "Regular 644 0:0 1 usr/share/zoneinfo/tzdata.zi",
                "Regular 644 0:0 1 usr/share/zoneinfo/zone1970.tab",
            ]
        );
        assert_eq!(
            summary.diff_id.to_string(),
            "sha256:95d07c5bbc25d0ea99fe2aebe4f54838ceaa12622a63de9e9efa42fafe606a00"
        );
    }

    #[test]
    fn layer_tree_needs_the_special_folders() {
        let temp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(temp.path().join("tmp")).unwrap();
        let error = layer_tree(temp.path()).unwrap_err().to_string();
        assert_eq!(
            error,
            "cannot set the attributes of /home/nonroot: it is not in the layer"
        );
        std::fs::create_dir_all(temp.path().join("home/nonroot")).unwrap();
        std::fs::create_dir_all(temp.path().join("root")).unwrap();
        std::os::unix::fs::symlink("/etc", temp.path().join("link")).unwrap();
        let error = layer_tree(temp.path()).unwrap_err().to_string();
        assert!(
            error.ends_with("holds /link, a symlink, which the static base never has"),
            "{error}"
        );
    }

    #[test]
    fn latest_sources_reads_pypi_json() {
        let page = |project: &str, version: &str, files: serde_json::Value| {
            serde_json::to_vec(&serde_json::json!({
                "info": { "name": project, "version": version },
                "urls": files,
            }))
            .unwrap()
        };
        let file = |packagetype: &str, filename: &str, url: &str, sha256: &str, yanked: bool| {
            serde_json::json!({
                "packagetype": packagetype,
                "filename": filename,
                "url": url,
                "digests": { "md5": "x", "sha256": sha256 },
                "yanked": yanked,
            })
        };
        let digest = |digit: &str| digit.repeat(64);
        let server = serve(vec![
            (
                "/pypi/certifi/json".to_owned(),
                page(
                    "certifi",
                    "2026.1.1",
                    serde_json::json!([
                        file(
                            "sdist",
                            "certifi-2026.1.1.tar.gz",
                            "https://files.example/c.tar.gz",
                            &digest("1"),
                            false
                        ),
                        file(
                            "bdist_wheel",
                            "certifi-2026.1.1-py3-none-any.whl",
                            "https://files.example/packages/c.whl",
                            &digest("A"),
                            false
                        ),
                    ]),
                ),
            ),
            (
                "/pypi/tzdata/json".to_owned(),
                page(
                    "tzdata",
                    "2026.2",
                    serde_json::json!([
                        file(
                            "bdist_wheel",
                            "tzdata-2026.2-py2-none-any.whl",
                            "../../packages/py2.whl",
                            &digest("2"),
                            false
                        ),
                        file(
                            "bdist_wheel",
                            "tzdata-2026.2-py3-none-any.whl",
                            "../../packages/yanked.whl",
                            &digest("3"),
                            true
                        ),
                        file(
                            "bdist_wheel",
                            "tzdata-2026.2-py2.py3-none-any.whl",
                            "../../packages/t.whl",
                            &digest("4"),
                            false
                        ),
                    ]),
                ),
            ),
        ]);
        let sources = latest_sources(&format!("{}/", server.url())).unwrap();
        assert_eq!(
            sources,
            [
                StaticSource {
                    name: CA_CERTIFICATES.to_owned(),
                    url: "https://files.example/packages/c.whl".to_owned(),
                    sha256: digest("a"),
                    version: "2026.1.1".to_owned(),
                },
                StaticSource {
                    name: TZDATA.to_owned(),
                    url: format!("{}/packages/t.whl", server.url()),
                    sha256: digest("4"),
                    version: "2026.2".to_owned(),
                },
            ]
        );

        let empty = serve(vec![(
            "/pypi/certifi/json".to_owned(),
            page("certifi", "1", serde_json::json!([])),
        )]);
        let error = latest_sources(empty.url()).unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "{}/pypi/certifi/json lists no pure-Python wheel (`…-none-any.whl`) with a sha256 for certifi",
                empty.url()
            )
        );
        let broken = serve(vec![("/pypi/certifi/json".to_owned(), b"<html>".to_vec())]);
        let error = latest_sources(broken.url()).unwrap_err().to_string();
        assert!(
            error.contains("/pypi/certifi/json is not a PyPI JSON project page"),
            "{error}"
        );
    }

    #[test]
    fn urls_resolve_as_pip_resolves_them() {
        let base = "https://pypi.org/pypi/certifi/json";
        for (reference, expected) in [
            (
                "https://files.pythonhosted.org/packages/a/b.whl",
                "https://files.pythonhosted.org/packages/a/b.whl",
            ),
            (
                "../../packages/packages/7a/c.whl",
                "https://pypi.org/packages/packages/7a/c.whl",
            ),
            ("../../../../../x.whl", "https://pypi.org/x.whl"),
            (
                "./c.whl#sha256=00",
                "https://pypi.org/pypi/certifi/c.whl#sha256=00",
            ),
            ("/simple/c.whl", "https://pypi.org/simple/c.whl"),
            ("//mirror.example/c.whl", "https://mirror.example/c.whl"),
        ] {
            assert_eq!(resolve_url(base, reference), expected, "{reference}");
        }
        assert_eq!(
            redact("https://user:token@mirror.example/pypi/certifi/json"),
            "https://mirror.example/pypi/certifi/json"
        );
        assert_eq!(host_of("http://user@127.0.0.1:8080/x"), "127.0.0.1:8080");
    }

    #[test]
    fn pypi_url_defaults_to_pypi() {
        // Tests share one environment, which they must not change: where the variable is
        // set, this test runs again in a process of its own without it.
        if std::env::var_os(PYPI_URL_ENV).is_some_and(|value| !value.is_empty()) {
            let status = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "static_base::tests::pypi_url_defaults_to_pypi",
                    "--quiet",
                ])
                .env_remove(PYPI_URL_ENV)
                .status()
                .unwrap();
            assert!(status.success(), "without {PYPI_URL_ENV}: {status}");
            return;
        }
        assert_eq!(pypi_url(), DEFAULT_PYPI_URL);
    }

    /// The real pins, fetched from PyPI:
    /// `cargo test --lib default_sources_realise_from_pypi -- --ignored`.
    #[test]
    #[ignore = "reaches PyPI: cargo test --lib default_sources_realise_from_pypi -- --ignored"]
    fn default_sources_realise_from_pypi() {
        let temp = tempfile::tempdir().unwrap();
        let store = Store::open_at(temp.path()).unwrap();
        let rootfs = realise(&store, &default_sources(), &|message| {
            eprintln!("{message}")
        })
        .unwrap();
        let bundle = std::fs::read_to_string(rootfs.join(CA_BUNDLE_PATH)).unwrap();
        let certificates = bundle.matches("-----BEGIN CERTIFICATE-----").count();
        assert!(certificates > 100, "{certificates} certificates");
        let berlin = std::fs::read(rootfs.join("usr/share/zoneinfo/Europe/Berlin")).unwrap();
        assert!(berlin.starts_with(b"TZif"));
        assert!(rootfs.join("usr/share/zoneinfo/zone1970.tab").is_file());
        assert!(!rootfs.join("usr/share/zoneinfo/__init__.py").exists());

        let tree = layer_tree(&rootfs).unwrap();
        let options = LayerOptions {
            compression: Compression::Gzip,
            mtime: LAYER_MTIME,
            threads: 2,
        };
        let (summary, _) = write_layer(&tree, &options, io::sink(), &mut |_| {}).unwrap();
        eprintln!(
            "static base: {certificates} certificates, {} entries, {} content bytes; layer tar {} bytes, gzip {} bytes ({} hard links saving {} bytes)\n  digest {}\n  diff_id {}",
            tree.len(),
            tree.content_bytes(),
            summary.uncompressed_size,
            summary.size,
            summary.hard_links,
            summary.deduplicated_bytes,
            summary.digest,
            summary.diff_id,
        );
        // The index answers with a pin set `realise` accepts (newer than the defaults, later).
        let latest = latest_sources(&pypi_url()).unwrap();
        eprintln!("latest on {}: {latest:#?}", pypi_url());
        assert!(check_sources(&latest).is_ok());

        // The layer of kiln's own pins is the same blob on every machine.
        assert_eq!(
            summary.diff_id.to_string(),
            "sha256:1c6c88a6722d10e136f8a94355e77ea24ebe3a8a92b87676d0fb1569ec4f2877"
        );
        assert_eq!(
            summary.digest.to_string(),
            "sha256:0a6d06c4f83805769f896749f4297e224f6352bb6a0dd237f6dad0188bb18f6c"
        );
    }
}
