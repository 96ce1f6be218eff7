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
//! (`[[static]]`, see [`StaticWheel`]): `certifi` (its `certifi/cacert.pem`, Mozilla's
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
//!
//! The parts, in the order a base is made: [`pypi`] finds the newest wheels on the index and
//! downloads a pinned one, checked against its sha256; [`wheel`] reads a wheel's entries,
//! hostile until checked; [`rootfs`] says which files land where, writes them with the files
//! kiln makes itself, and turns the result into the layer's file tree.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::http::redact;
use crate::oci::tree::FileTree;
use crate::recipes;
use crate::store::{Recipe, Store, StoreError};

pub mod pypi;
pub mod rootfs;
pub mod wheel;

pub use pypi::{DEFAULT_PYPI_URL, PYPI_URL_ENV, PypiError, pypi_url};
pub use rootfs::{GROUP, NSSWITCH_CONF, PASSWD, RootfsError};
pub use wheel::WheelError;

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

/// Bounds on what a wheel can make kiln read; far above what certifi and tzdata need (0.2 MB
/// and 0.6 MB unpacked, 12 and 633 entries) and far below what could hurt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WheelLimits {
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
pub const LIMITS: WheelLimits = WheelLimits {
    wheel: 64 << 20,
    entries: 10_000,
    file: 16 << 20,
    total: 64 << 20,
};

/// One pinned source of the static base: a `[[static]]` entry of kiln.lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticWheel {
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
    #[error("static base source `{name}`: {problem}")]
    InvalidSource { name: String, problem: String },
    #[error("the static base needs one `ca-certificates` and one `tzdata` source: {problem}")]
    SourceSet { problem: String },
    #[error(transparent)]
    Pypi(#[from] PypiError),
    #[error(
        "kiln's static base is not in the store, and its source {name} {version} cannot be fetched"
    )]
    FetchSource {
        name: String,
        version: String,
        #[source]
        source: Box<PypiError>,
    },
    #[error(transparent)]
    Wheel(#[from] WheelError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl crate::diagnostic::Hint for StaticBaseError {
    fn hint(&self) -> Option<String> {
        match self {
            StaticBaseError::SourceSet { .. } => {
                Some("`kiln lock --update-bases` writes both".to_owned())
            }
            StaticBaseError::Pypi(error) => error.hint(),
            // The download's own hint says what to do (`pypi::WHEEL_HINT`).
            StaticBaseError::FetchSource { .. } => None,
            StaticBaseError::Rootfs(error) => error.hint(),
            StaticBaseError::InvalidSource { .. }
            | StaticBaseError::Wheel(_)
            | StaticBaseError::Store(_) => None,
        }
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
        CA_CERTIFICATES => Some(format!("the CA bundle at /{}", rootfs::CA_BUNDLE_PATH)),
        TZDATA => Some(format!(
            "the time zone database under /{}",
            rootfs::ZONEINFO_PATH
        )),
        _ => None,
    }
}

/// kiln's built-in pins: the newest `certifi` and `tzdata` wheels on PyPI when this kiln was
/// made (2026-11), each checked by downloading it. `kiln lock` writes these into a new
/// kiln.lock; `kiln lock --update-bases` asks PyPI for newer ones ([`latest_sources`]).
pub fn default_sources() -> Vec<StaticWheel> {
    vec![
        StaticWheel {
            name: CA_CERTIFICATES.to_owned(),
            url: "https://files.pythonhosted.org/packages/7a/3e/9ddb6d78c2ffd17604c05745f553614bfbecd2cc6741bbaa5181bc8b2496/certifi-2026.10.19.post1-py3-none-any.whl".to_owned(),
            sha256: "1324c476b4811eff41a8bc2122cd0bbd4d9c7234c725446d99ab1612b3a7fdd2".to_owned(),
            version: "2026.10.19.post1".to_owned(),
        },
        StaticWheel {
            name: TZDATA.to_owned(),
            url: "https://files.pythonhosted.org/packages/0a/66/9a06c2227fedfd4919f0eaaa8b94377d9730882a7e4f95823c9a331ab5e1/tzdata-2026.6-py2.py3-none-any.whl".to_owned(),
            sha256: "0a10eec6e13ef16b627fabed9a5f2ba61a62b1c67f327305f4e7e412a70b4aec".to_owned(),
            version: "2026.6".to_owned(),
        },
    ]
}

/// The newest wheel of each source on the index at `index_url` (PyPI's JSON API,
/// `{index}/pypi/{project}/json`): its `urls[]` entry of `packagetype` `bdist_wheel` that is
/// pure Python (`…-none-any.whl`) and not yanked, with `digests.sha256`. A relative file URL
/// (mirrors serve them) is resolved against the page's URL, as pip does. Nothing is
/// downloaded but the two pages; [`realise`] checks the wheels against these digests.
pub fn latest_sources(index_url: &str) -> Result<Vec<StaticWheel>, StaticBaseError> {
    let index = index_url.trim_end_matches('/');
    let mut sources = Vec::new();
    for (name, project) in [
        (CA_CERTIFICATES, CA_CERTIFICATES_PROJECT),
        (TZDATA, TZDATA_PROJECT),
    ] {
        sources.push(pypi::newest_source(index, name, project)?);
    }
    // A page could name a `file:` URL or an odd digest; refuse what `realise` would.
    check_sources(&sources)?;
    Ok(sources)
}

/// The two sources of a valid pin set.
struct Pins<'a> {
    ca_certificates: &'a StaticWheel,
    tzdata: &'a StaticWheel,
}

fn check_sources(sources: &[StaticWheel]) -> Result<Pins<'_>, StaticBaseError> {
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
        if !(pypi::is_sha256_hex(&source.sha256)
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
pub fn recipe(sources: &[StaticWheel]) -> Result<Recipe, StaticBaseError> {
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
    sources: &[StaticWheel],
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
    limits: WheelLimits,
) -> Result<(), StaticBaseError> {
    rootfs::create(rootfs)?;
    for (source, project) in [
        (pins.ca_certificates, CA_CERTIFICATES_PROJECT),
        (pins.tzdata, TZDATA_PROJECT),
    ] {
        status(&format!(
            "fetching {} {} ({project} wheel)",
            source.name, source.version
        ));
        let wheel = pypi::download_verified(source, limits.wheel).map_err(|error| match error {
            // A wheel that is not the pinned one is not a missing input.
            PypiError::DigestMismatch { .. } => StaticBaseError::Pypi(error),
            error => StaticBaseError::FetchSource {
                name: source.name.clone(),
                version: source.version.clone(),
                source: Box::new(error),
            },
        })?;
        let files = wheel::read_wheel(&wheel, &redact(&source.url), limits, |entry| {
            rootfs::destination(&source.name, entry)
        })?;
        rootfs::check_content(source, project, &files)?;
        rootfs::write_files(rootfs, &files)?;
    }
    rootfs::write_system_files(rootfs)?;
    Ok(())
}

/// The file tree of the static layer from the root filesystem [`realise`] made: every folder
/// 0755 and file 0644, owned by root, except three folders
/// (`/home/nonroot` 0700 65532:65532, `/root` 0700, `/tmp` 1777). The store's read-only
/// modes never reach the layer. Write it with [`LAYER_MTIME`].
pub fn layer_tree(rootfs: &Path) -> Result<FileTree, StaticBaseError> {
    Ok(rootfs::layer_tree(rootfs)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest as _, Sha256};
    use std::io::{self, Cursor, Write};
    use zip::ZipWriter;
    use zip::write::SimpleFileOptions;

    use super::pypi::WHEEL_HINT;
    use super::rootfs::CA_BUNDLE_PATH;
    use crate::diagnostic::Hint as _;
    use crate::http::test_server::{Reply, TestServer};
    use crate::oci::compression::Compression;
    use crate::oci::layer::{LayerOptions, write_layer};

    pub(super) const URL: &str = "https://files.example/wheel.whl";

    pub(super) fn options() -> SimpleFileOptions {
        SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated)
    }

    /// A zip of `entries`; a name ending in `/` is a folder entry.
    pub(super) fn wheel(entries: &[(&str, &[u8])]) -> Vec<u8> {
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

    pub(super) const PEM: &[u8] = b"# Issuer: CN=Example Root\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    /// A wheel laid out as certifi's.
    pub(super) fn certifi_wheel() -> Vec<u8> {
        wheel(&[
            ("certifi/__init__.py", b"from .core import where\n"),
            ("certifi/cacert.pem", PEM),
            ("certifi/py.typed", b""),
            ("certifi-1.0.dist-info/RECORD", b"certifi/cacert.pem,,\n"),
        ])
    }

    /// A wheel laid out as tzdata's.
    pub(super) fn tzdata_wheel() -> Vec<u8> {
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

    pub(super) fn sha256_hex(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    /// A loopback HTTP server answering `routes` (path → body; other paths 404) and counting
    /// the requests it answers.
    pub(super) fn serve(routes: Vec<(String, Vec<u8>)>) -> TestServer {
        let routes = routes
            .into_iter()
            .map(|(path, body)| (path, vec![Reply::ok(body)]));
        TestServer::routes(routes, Reply::new(404, "not found")).unwrap()
    }

    fn sources_on(server: &TestServer, certifi: &[u8], tzdata: &[u8]) -> Vec<StaticWheel> {
        vec![
            StaticWheel {
                name: CA_CERTIFICATES.to_owned(),
                url: format!("{}/certifi-1.0-py3-none-any.whl", server.url()),
                sha256: sha256_hex(certifi),
                version: "1.0".to_owned(),
            },
            StaticWheel {
                name: TZDATA.to_owned(),
                url: format!("{}/tzdata-1.0-py2.py3-none-any.whl", server.url()),
                sha256: sha256_hex(tzdata),
                version: "1.0".to_owned(),
            },
        ]
    }

    fn serve_wheels() -> (TestServer, Vec<StaticWheel>) {
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
        let source = |name: &str, digit: char, url: &str| StaticWheel {
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
        let cases: Vec<(&str, Vec<StaticWheel>, &str)> = vec![
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
                    StaticWheel {
                        name: "busybox".to_owned(),
                        ..valid[1].clone()
                    },
                ],
                "`busybox` is not one of them",
            ),
            (
                "short digest",
                vec![
                    StaticWheel {
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
                    StaticWheel {
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
                    StaticWheel {
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
        assert_eq!(serde_json::from_str::<StaticWheel>(&text).unwrap(), *source);
        let unknown = text.replace("\"version\"", "\"extra\":1,\"version\"");
        assert!(serde_json::from_str::<StaticWheel>(&unknown).is_err());
    }

    #[test]
    fn a_wheel_of_the_wrong_project_is_named() {
        let (server, mut sources) = serve_wheels();
        // The tzdata wheel pinned as the CA bundle: its digest matches, its content does not.
        sources[0].url = sources[1].url.clone();
        sources[0].sha256 = sources[1].sha256.clone();
        let temp = tempfile::tempdir().unwrap();
        let store = Store::open_at(temp.path()).unwrap();
        let error = realise(&store, &sources, &|_| {}).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "the wheel {}/tzdata-1.0-py2.py3-none-any.whl has no certifi/cacert.pem",
                server.url()
            )
        );
        assert_eq!(
            error.hint().as_deref(),
            Some("is the `ca-certificates` source a certifi wheel?")
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
            matches!(&error, StaticBaseError::Pypi(PypiError::DigestMismatch { url, expected, actual: got })
                if *url == format!("{}/tzdata-1.0-py2.py3-none-any.whl", server.url())
                    && *expected == "f".repeat(64)
                    && *got == actual),
            "{error}"
        );
        // A 404 names the URL and does not retry.
        sources[1].url = format!("{}/missing.whl", server.url());
        let before = server.count();
        let error = realise(&store, &sources, &|_| {}).unwrap_err();
        // The error names the missing source; the download's hint says to run `kiln lock`.
        assert_eq!(
            error.to_string(),
            "kiln's static base is not in the store, and its source tzdata 1.0 cannot be fetched"
        );
        let StaticBaseError::FetchSource { source, .. } = &error else {
            panic!("{error:?}")
        };
        assert_eq!(
            source.to_string(),
            format!("GET {}/missing.whl: 404 Not Found", server.url())
        );
        assert_eq!(error.hint(), None);
        assert_eq!(source.hint().as_deref(), Some(WHEEL_HINT));
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
        let reversed: Vec<StaticWheel> = sources.iter().rev().cloned().collect();
        assert_eq!(
            realise(&store, &reversed, &|_| panic!("no status")).unwrap(),
            rootfs
        );
        assert_eq!(server.count(), 2);
        // Even with the server unreachable.
        let offline: Vec<StaticWheel> = sources
            .iter()
            .map(|source| StaticWheel {
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
            "sha256:6a3563afa24cf139cd1a7a1e35f4257ce775424b178759232b2ffa62d7d9274e"
        );
    }
}
