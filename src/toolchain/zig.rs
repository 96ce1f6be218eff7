//! The C toolchain of cgo packages: Zig, pinned like the Go toolchain and fetched once into the
//! store.
//!
//! Zig is a complete C/C++ cross compiler (clang, lld, and the sources of musl, which it
//! compiles for a target on first use) in one archive, and PyPI distributes it as the
//! `ziglang` wheel, one per host. kiln.lock pins the wheel for a host by URL and sha256 as a
//! `[[zig]]` entry ([`ZigPin`]); kiln's built-in pins are [`default_pin`]. The wheel is
//! downloaded, its sha256 checked against the pin before any byte of it is parsed (a wheel
//! that is not the pinned one is refused, naming the URL and both digests), its entries
//! checked like every wheel's ([`crate::static_base::wheel`]), and what lies under
//! `ziglang/` (the `zig` executable and its `lib/`, Python's launcher files left out) is
//! unpacked into one store output named by `{"kiln":"zig-toolchain/1","version","host",
//! "sha256"}` ([`crate::recipes::zig_toolchain`]). Builds find it there and need no network.
//!
//! Beside `zig` the output holds one small shell script per target in `bin/`
//! (`zig-cc-x86_64-linux-musl`, `zig-c++-x86_64-linux-musl`, …, see [`TARGETS`]): Go's `CC`
//! and `CXX` name them by their bare names, found on PATH. That is the reason for the
//! scripts: Go hashes `CC`, `CGO_CFLAGS` and `CGO_LDFLAGS` into its action IDs (and so into
//! the program's build ID and the C compiler's `-frandom-seed`), so none of them may hold a
//! path of this machine. The script finds Zig from its own place and adds
//! `-ffile-prefix-map` for the Zig folder and Zig's cache, so neither reaches a program's
//! bytes; the script's text holds no path, so the output is the same bytes on every machine.
//!
//! Zig's caches (the musl it compiles per target) live in the kiln home, `zig/cache`
//! ([`cache_dir`]), never under HOME: Zig keys them by content, so their state changes how
//! long a build takes, not what it makes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::diagnostic::PathError;
use crate::http::redact;
use crate::oci::spec::Platform;
use crate::project::{GlibcVersion, Libc};
use crate::recipes;
use crate::static_base::{PypiError, WheelError, WheelLimits};
use crate::store::{Recipe, Store, StoreError};

/// The Zig release kiln pins by default.
pub const DEFAULT_VERSION: &str = "0.17.1";

/// Bounds on the ziglang wheel (0.17.1: 101 MB, 19,540 entries, 376 MB unpacked, its `zig`
/// 186 MB), with room for later releases.
pub const LIMITS: WheelLimits = WheelLimits {
    wheel: 512 << 20,
    entries: 100_000,
    file: 1 << 30,
    total: 4 << 30,
};

/// The hint after a failed download of the wheel.
const FETCH_HINT: &str = "run `kiln lock` where PyPI is reachable: it fetches the Zig toolchain into the store, and builds after that need no network";

/// One `[[zig]]` entry of kiln.lock: the ziglang wheel for one host.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZigPin {
    /// The host the wheel runs on, as Go names it (`linux-amd64`).
    pub host: String,
    /// Zig's release (`0.17.1`), for people reading the lock; the sha256 decides.
    pub version: String,
    /// Where the wheel is downloaded from.
    pub url: String,
    /// The wheel's sha256, lower-case hex.
    pub sha256: String,
}

impl ZigPin {
    /// The store recipe of the unpacked release.
    pub fn recipe(&self) -> Recipe {
        recipes::zig_toolchain(&self.version, &self.host, &self.sha256)
    }

    /// The `zig` object of a cgo package's recipe: what identifies the compiler.
    pub fn identity(&self) -> serde_json::Value {
        serde_json::json!({
            "version": self.version,
            "host": self.host,
            "sha256": self.sha256,
        })
    }

    /// Whether the entry is well formed: an http(s) URL, a sha256 of 64 lower-case hex digits.
    pub fn problem(&self) -> Option<String> {
        let valid_sha256 = self.sha256.len() == 64
            && self
                .sha256
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
        if !valid_sha256 {
            return Some(format!(
                "sha256 `{}` is not 64 lower-case hex digits",
                self.sha256
            ));
        }
        if !(self.url.starts_with("https://") || self.url.starts_with("http://")) {
            return Some(format!("url `{}` is not an http(s) URL", self.url));
        }
        None
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ZigError {
    #[error(
        "kiln has no Zig pin for the host {host} (it pins the ziglang wheels of linux-amd64 and linux-arm64)"
    )]
    NoDefaultPin { host: String },
    #[error(
        "cgo builds for {platform} are not supported: kiln's C toolchain targets Linux on amd64, arm64, arm, 386, riscv64, ppc64le and s390x"
    )]
    UnsupportedPlatform { platform: String },
    #[error(
        "package `{package}` links glibc {version} for {platform}, and Zig links glibc there from {oldest} on"
    )]
    GlibcTooOld {
        package: String,
        platform: String,
        version: String,
        oldest: String,
    },
    #[error("the Zig toolchain {version} is not in the store, and its wheel cannot be fetched")]
    Fetch {
        version: String,
        #[source]
        source: Box<PypiError>,
    },
    /// The wheel is not the pinned one (its sha256 differs).
    #[error(transparent)]
    Mismatch(PypiError),
    #[error(transparent)]
    Wheel(#[from] WheelError),
    #[error("the wheel {url} holds no `ziglang/zig`: it is not a ziglang wheel")]
    NotZig { url: String },
    #[error(transparent)]
    Path(#[from] PathError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl crate::diagnostic::Hint for ZigError {
    fn hint(&self) -> Option<String> {
        match self {
            ZigError::Fetch { .. } => Some(FETCH_HINT.to_owned()),
            ZigError::Mismatch(_) => Some(
                "the server, a proxy or the pin changed; to pin kiln's own wheel again, remove the [[zig]] entry from kiln.lock and run `kiln lock`"
                    .to_owned(),
            ),
            ZigError::NoDefaultPin { .. } => Some(
                "add a [[zig]] entry for this host to kiln.lock (host, version, url and sha256 of its ziglang wheel on PyPI)"
                    .to_owned(),
            ),
            ZigError::UnsupportedPlatform { .. } => {
                Some("build this platform with cgo off, or pick a Linux platform".to_owned())
            }
            ZigError::GlibcTooOld { oldest, .. } => Some(format!("`glibc = \"{oldest}\"`")),
            _ => None,
        }
    }
}

/// The ziglang wheels kiln pins, by host: PyPI's `ziglang` 0.17.1 (each checked by
/// downloading it, 2026-12).
const DEFAULT_PINS: &[(&str, &str, &str)] = &[
    (
        "linux-amd64",
        "https://files.pythonhosted.org/packages/59/e3/2a34676370a11c36b7cd04ffb2439c1089c0530cf4b01408c77cf7f8d9c3/ziglang-0.17.1-py3-none-manylinux_2_12_x86_64.manylinux2010_x86_64.musllinux_1_1_x86_64.whl",
        "ea6cc5d87b033cf0aedfbc8f9549a908cae6c50ac31f1698188fa48a74524b54",
    ),
    (
        "linux-arm64",
        "https://files.pythonhosted.org/packages/91/72/bb7c4f098ba3e535fa2ebefd9f26327ba63fb0672562959255cb5dd37aff/ziglang-0.17.1-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64.whl",
        "b7c5f02fccd40f89b999ee16a1f5ddced56e6182370f8affe494bcf8a28cf07e",
    ),
];

/// kiln's pin of the ziglang wheel for `host` (`linux-amd64`), which `kiln lock` writes into
/// a kiln.lock that has none.
pub fn default_pin(host: &str) -> Result<ZigPin, ZigError> {
    DEFAULT_PINS
        .iter()
        .find(|(pinned_host, _, _)| *pinned_host == host)
        .map(|(host, url, sha256)| ZigPin {
            host: (*host).to_owned(),
            version: DEFAULT_VERSION.to_owned(),
            url: (*url).to_owned(),
            sha256: (*sha256).to_owned(),
        })
        .ok_or_else(|| ZigError::NoDefaultPin {
            host: host.to_owned(),
        })
}

/// The host kiln runs on, as `[[zig]]` names it: Go's `GOOS-GOARCH`.
pub fn zig_host() -> String {
    super::go_host()
}

/// Zig's target triples kiln writes compiler scripts for, by Go's platform: every Linux
/// architecture both Go and Zig's musl support.
pub const TARGETS: &[(&str, &str)] = &[
    ("amd64", "x86_64-linux-musl"),
    ("arm64", "aarch64-linux-musl"),
    ("arm", "arm-linux-musleabihf"),
    ("386", "x86-linux-musl"),
    ("riscv64", "riscv64-linux-musl"),
    ("ppc64le", "powerpc64le-linux-musl"),
    ("s390x", "s390x-linux-musl"),
];

/// The oldest glibc kiln links against (CentOS 7's): Zig 0.17.1 links 2.17 to 2.44.
pub const MIN_GLIBC: GlibcVersion = GlibcVersion { minor: 17 };

/// The glibc a `c-libc = "glibc"` package links against without `glibc = "…"`: 2.31, which
/// Debian 11, Ubuntu 20.04, RHEL 9 and every later release have (and Zig's own default), or
/// the architecture's oldest when that is newer ([`GLIBC_TARGETS`]). Pinned, so a new Zig
/// does not move a program's requirement.
pub const DEFAULT_GLIBC: GlibcVersion = GlibcVersion { minor: 31 };

/// Zig's glibc triples (without the release) by Go architecture, with the oldest glibc Zig
/// links for it: riscv64's glibc starts at 2.27, and ppc64le needs 2.32 (the first with IEEE
/// 128-bit `long double`, which Zig's headers assume).
pub const GLIBC_TARGETS: &[(&str, &str, u32)] = &[
    ("amd64", "x86_64-linux-gnu", 17),
    ("arm64", "aarch64-linux-gnu", 17),
    ("arm", "arm-linux-gnueabihf", 17),
    ("386", "x86-linux-gnu", 17),
    ("riscv64", "riscv64-linux-gnu", 27),
    ("ppc64le", "powerpc64le-linux-gnu", 32),
    ("s390x", "s390x-linux-gnu", 17),
];

/// The glibc release a package with `libc` links against on `platform`: `None` for musl.
pub fn glibc_version(platform: &Platform, libc: Libc) -> Option<GlibcVersion> {
    match libc {
        Libc::Musl => None,
        Libc::Glibc {
            version: Some(version),
        } => Some(version),
        Libc::Glibc { version: None } => {
            let oldest = GLIBC_TARGETS
                .iter()
                .find(|(architecture, _, _)| *architecture == platform.architecture)
                .map_or(MIN_GLIBC.minor, |(_, _, oldest)| *oldest);
            Some(GlibcVersion {
                minor: DEFAULT_GLIBC.minor.max(oldest),
            })
        }
    }
}

/// Zig's target triple for a Go platform and C library (`linux/arm64` with musl →
/// `aarch64-linux-musl`; `linux/amd64` with glibc 2.31 → `x86_64-linux-gnu.2.31`). `package`
/// names the package in errors.
pub fn target(platform: &Platform, libc: Libc, package: &str) -> Result<String, ZigError> {
    let unsupported = || ZigError::UnsupportedPlatform {
        platform: platform.to_string(),
    };
    if platform.os != "linux" {
        return Err(unsupported());
    }
    let Some(version) = glibc_version(platform, libc) else {
        return TARGETS
            .iter()
            .find(|(architecture, _)| *architecture == platform.architecture)
            .map(|(_, triple)| (*triple).to_owned())
            .ok_or_else(unsupported);
    };
    let (_, triple, oldest) = GLIBC_TARGETS
        .iter()
        .find(|(architecture, _, _)| *architecture == platform.architecture)
        .ok_or_else(unsupported)?;
    if version.minor < *oldest {
        return Err(ZigError::GlibcTooOld {
            package: package.to_owned(),
            platform: platform.to_string(),
            version: version.to_string(),
            oldest: GlibcVersion { minor: *oldest }.to_string(),
        });
    }
    Ok(format!("{triple}.{version}"))
}

/// The file names, in the output's `bin/`, of the C and C++ compiler scripts for `target`.
pub fn compiler_names(target: &str) -> (String, String) {
    (format!("zig-cc-{target}"), format!("zig-c++-{target}"))
}

/// The folder of the compiler scripts for `target`, for Go's PATH: `bin/` of the Zig output
/// for the musl targets it holds scripts for ([`TARGETS`]); for any other (a glibc release's)
/// a small store output of its own (`zig-compilers/1`, [`crate::recipes::zig_compilers`])
/// beside the Zig output, whose scripts find Zig as `../../<its store basename>` from their
/// folder, so they too hold no path of this machine. Zig is fetched first if it is missing;
/// the caller holds the store's build guard.
pub fn compilers(
    store: &Store,
    pin: &ZigPin,
    target: &str,
    status: &dyn Fn(&str),
) -> Result<PathBuf, ZigError> {
    let root = realise(store, pin, status)?;
    if TARGETS.iter().any(|(_, triple)| *triple == target) {
        return Ok(root.join("bin"));
    }
    let zig_name = pin.recipe().name().basename();
    let recipe = recipes::zig_compilers(&zig_name, target);
    let realised = store.realise(
        &recipe,
        || {
            status(&format!(
                "waiting for another kiln writing the compilers for {target}"
            ))
        },
        |temp| {
            let bin = temp.join("bin");
            std::fs::create_dir_all(&bin).map_err(PathError::write(&bin))?;
            let (cc, cxx) = compiler_names(target);
            for (name, driver) in [(cc, "cc"), (cxx, "c++")] {
                let path = bin.join(name);
                let zig_root = format!("$bin/../../{zig_name}");
                std::fs::write(&path, script(target, driver, &zig_root))
                    .map_err(PathError::write(&path))?;
                set_mode(&path, 0o755)?;
            }
            Ok::<_, ZigError>(temp.to_owned())
        },
    )?;
    Ok(realised.path.join("bin"))
}

/// Where Zig keeps its caches: in the kiln home, beside Go's build cache.
pub fn cache_dir(store: &Store) -> PathBuf {
    store.root().join("zig/cache")
}

/// The store output of `pin`, if it is there.
pub fn stored(store: &Store, pin: &ZigPin) -> Option<PathBuf> {
    let recipe = pin.recipe();
    store
        .contains(recipe.name())
        .then(|| store.path(recipe.name()))
}

/// The unpacked release of `pin`, from the store, fetched and unpacked there first if it is
/// missing (the only case that uses the network). The caller holds the store's build guard.
pub fn realise(store: &Store, pin: &ZigPin, status: &dyn Fn(&str)) -> Result<PathBuf, ZigError> {
    let realised = store.realise(
        &pin.recipe(),
        || status("waiting for another kiln fetching the Zig toolchain"),
        |temp| {
            status(&format!(
                "fetching Zig {} for {} (ziglang wheel, {})",
                pin.version,
                pin.host,
                redact(&pin.url)
            ));
            let wheel = crate::static_base::pypi::download_pinned(
                &pin.url,
                &pin.sha256,
                LIMITS.wheel,
                FETCH_HINT,
            )
            .map_err(|error| match error {
                // A wheel that is not the pinned one is not a missing input.
                PypiError::DigestMismatch { .. } => ZigError::Mismatch(error),
                error => ZigError::Fetch {
                    version: pin.version.clone(),
                    source: Box::new(error),
                },
            })?;
            status(&format!("unpacking Zig {}", pin.version));
            unpack(&wheel, &redact(&pin.url), temp)?;
            Ok::<_, ZigError>(temp.to_owned())
        },
    )?;
    Ok(realised.path)
}

/// Where a wheel entry goes in the output, if it is taken: what lies under `ziglang/`, but
/// for Python's launcher (`__init__.py`, `__main__.py`, `__pycache__`).
fn destination(entry: &str) -> Option<String> {
    let rest = entry.strip_prefix("ziglang/")?;
    let python = rest == "__init__.py"
        || rest == "__main__.py"
        || rest.starts_with("__pycache__/")
        || (!rest.contains('/') && rest.ends_with(".pyc"));
    (!python && !rest.is_empty()).then(|| rest.to_owned())
}

/// Unpack the checked wheel `bytes` into `output` and write the compiler scripts.
fn unpack(bytes: &[u8], url: &str, output: &Path) -> Result<(), ZigError> {
    let files = crate::static_base::wheel::read_wheel(bytes, url, LIMITS, destination)?;
    if !files.iter().any(|(name, _)| name == "zig") {
        return Err(ZigError::NotZig {
            url: url.to_owned(),
        });
    }
    std::fs::create_dir_all(output).map_err(PathError::write(output))?;
    for (name, content) in &files {
        // `read_wheel` refused every name with `..`, an absolute path or an empty element.
        let path = output.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(PathError::write(parent))?;
        }
        std::fs::write(&path, content).map_err(PathError::write(&path))?;
        // The wheel has one executable, `zig`; its mode in the zip is not trusted.
        set_mode(&path, if name == "zig" { 0o755 } else { 0o644 })?;
    }
    let bin = output.join("bin");
    std::fs::create_dir_all(&bin).map_err(PathError::write(&bin))?;
    for (_, target) in TARGETS {
        let (cc, cxx) = compiler_names(target);
        for (name, driver) in [(cc, "cc"), (cxx, "c++")] {
            let path = bin.join(name);
            std::fs::write(&path, compiler_script(target, driver))
                .map_err(PathError::write(&path))?;
            set_mode(&path, 0o755)?;
        }
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<(), ZigError> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(PathError::write(path))?;
    Ok(())
}

/// The compiler script for `target` and Zig's `driver` (`cc` or `c++`) in the Zig output's
/// `bin/`: Zig found from the script's own folder, the build's paths mapped away. No path is
/// written into it (see the module doc).
pub fn compiler_script(target: &str, driver: &str) -> String {
    script(target, driver, "$bin/..")
}

/// The compiler script with Zig's folder at `zig_root`, a shell word relative to `$bin`, the
/// script's folder.
fn script(target: &str, driver: &str, zig_root: &str) -> String {
    format!(
        r#"#!/bin/sh
# Written by kiln: Zig's C compiler for {target} (`zig {driver} -target {target}`), as Go's
# CC/CXX of cgo builds. Zig is found from this file's folder; the -ffile-prefix-map flags keep
# the Zig folder and Zig's cache out of what it compiles.
case $0 in
*/*) bin=${{0%/*}} ;;
*) bin=. ;;
esac
zig_root=$(cd "{zig_root}" && pwd -P) || exit 1
if [ -n "$ZIG_GLOBAL_CACHE_DIR" ]; then
    set -- "-ffile-prefix-map=$ZIG_GLOBAL_CACHE_DIR=/_/zig-cache" "$@"
fi
exec "$zig_root/zig" {driver} -target {target} "-ffile-prefix-map=$zig_root=/_/zig" "$@"
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_of_go_platforms() {
        let target_of =
            |text: &str| target(&text.parse().unwrap(), Libc::Musl, "a").map_err(|e| e.to_string());
        assert_eq!(target_of("linux/amd64").unwrap(), "x86_64-linux-musl");
        assert_eq!(target_of("linux/arm64").unwrap(), "aarch64-linux-musl");
        assert_eq!(target_of("linux/arm/v7").unwrap(), "arm-linux-musleabihf");
        let error = target_of("darwin/arm64").unwrap_err();
        assert!(
            error.starts_with("cgo builds for darwin/arm64 are not supported"),
            "{error}"
        );
    }

    /// Issue 21: glibc targets carry the release, kiln's default or the package's; a release
    /// older than Zig links for the architecture is refused, naming the oldest.
    #[test]
    fn glibc_targets_name_their_release() {
        let glibc = |minor: Option<u32>| Libc::Glibc {
            version: minor.map(|minor| GlibcVersion { minor }),
        };
        let target_of = |text: &str, libc: Libc| {
            target(&text.parse().unwrap(), libc, "app").map_err(|e| e.to_string())
        };
        for (platform, libc, expected) in [
            ("linux/amd64", glibc(None), "x86_64-linux-gnu.2.31"),
            ("linux/arm64", glibc(None), "aarch64-linux-gnu.2.31"),
            ("linux/ppc64le", glibc(None), "powerpc64le-linux-gnu.2.32"),
            ("linux/amd64", glibc(Some(17)), "x86_64-linux-gnu.2.17"),
            ("linux/arm64", glibc(Some(36)), "aarch64-linux-gnu.2.36"),
            ("linux/arm/v7", glibc(Some(28)), "arm-linux-gnueabihf.2.28"),
            ("linux/riscv64", glibc(Some(27)), "riscv64-linux-gnu.2.27"),
        ] {
            assert_eq!(target_of(platform, libc).unwrap(), expected, "{platform}");
        }
        assert_eq!(
            target_of("linux/riscv64", glibc(Some(26))).unwrap_err(),
            "package `app` links glibc 2.26 for linux/riscv64, and Zig links glibc there from 2.27 on"
        );
        assert_eq!(
            glibc_version(&"linux/amd64".parse().unwrap(), Libc::Musl),
            None
        );
    }

    #[test]
    fn default_pins_are_well_formed() {
        for host in ["linux-amd64", "linux-arm64"] {
            let pin = default_pin(host).unwrap();
            assert_eq!(pin.problem(), None, "{host}");
            assert!(pin.url.contains(&format!("ziglang-{DEFAULT_VERSION}-")));
        }
        assert!(matches!(
            default_pin("plan9-386"),
            Err(ZigError::NoDefaultPin { .. })
        ));
    }

    #[test]
    fn only_zig_is_taken_from_the_wheel() {
        for (entry, expected) in [
            ("ziglang/zig", Some("zig")),
            (
                "ziglang/lib/libc/musl/src/string/memcpy.c",
                Some("lib/libc/musl/src/string/memcpy.c"),
            ),
            ("ziglang/__init__.py", None),
            ("ziglang/__main__.py", None),
            ("ziglang/__pycache__/__init__.cpython-311.pyc", None),
            ("ziglang-0.17.1.dist-info/RECORD", None),
        ] {
            assert_eq!(destination(entry).as_deref(), expected, "{entry}");
        }
    }

    /// A wheel laid out as ziglang's, served on loopback.
    fn serve_wheel(body: Vec<u8>) -> crate::http::test_server::TestServer {
        use crate::http::test_server::{Reply, TestServer};
        TestServer::routes(
            [("/ziglang-0.0.1-py3-none-any.whl", vec![Reply::ok(body)])],
            Reply::new(404, "not found"),
        )
        .unwrap()
    }

    fn fake_wheel() -> Vec<u8> {
        use std::io::Write as _;
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, content) in [
            ("ziglang/__init__.py", &b"import os\n"[..]),
            ("ziglang/zig", b"#!/bin/sh\necho zig\n"),
            ("ziglang/lib/libc/musl/include/stdio.h", b"/* stdio */\n"),
            ("ziglang-0.0.1.dist-info/RECORD", b"ziglang/zig,,\n"),
        ] {
            writer.start_file(name, options).unwrap();
            writer.write_all(content).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(bytes))
    }

    /// The pinned wheel is unpacked with its compiler scripts; a wheel with other bytes than
    /// the pin is refused, naming the URL and both digests, and the store stays without it.
    #[test]
    fn the_pinned_wheel_is_stored_and_a_tampered_one_refused() {
        use crate::diagnostic::Hint as _;
        use std::os::unix::fs::PermissionsExt as _;
        let home = tempfile::tempdir().unwrap();
        let store = Store::open_at(home.path()).unwrap();
        let wheel = fake_wheel();
        let server = serve_wheel(wheel.clone());
        let pin = ZigPin {
            host: "linux-amd64".to_owned(),
            version: "0.0.1".to_owned(),
            url: format!("{}/ziglang-0.0.1-py3-none-any.whl", server.url()),
            sha256: sha256_hex(&wheel),
        };
        let root = realise(&store, &pin, &|_| {}).unwrap();
        assert_eq!(stored(&store, &pin).as_deref(), Some(root.as_path()));
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o111;
        assert_ne!(mode(&root.join("zig")), 0);
        assert!(root.join("lib/libc/musl/include/stdio.h").is_file());
        assert!(!root.join("__init__.py").exists());
        let script = root.join("bin/zig-cc-x86_64-linux-musl");
        assert_eq!(
            std::fs::read_to_string(&script).unwrap(),
            compiler_script("x86_64-linux-musl", "cc")
        );
        assert_ne!(mode(&script), 0);

        let tampered_home = tempfile::tempdir().unwrap();
        let tampered_store = Store::open_at(tampered_home.path()).unwrap();
        let mut tampered = wheel.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        let tampered_server = serve_wheel(tampered.clone());
        let tampered_pin = ZigPin {
            url: format!("{}/ziglang-0.0.1-py3-none-any.whl", tampered_server.url()),
            ..pin.clone()
        };
        let error = realise(&tampered_store, &tampered_pin, &|_| {}).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "{} is not the file kiln.lock pins: its sha256 is {}, the pin says {}",
                tampered_pin.url,
                sha256_hex(&tampered),
                pin.sha256
            )
        );
        assert!(error.hint().unwrap().contains("[[zig]]"));
        assert_eq!(stored(&tampered_store, &tampered_pin), None);
    }

    /// Issue 21: a glibc target's scripts are an output of their own beside Zig's, holding no
    /// path, that finds and runs the Zig output's `zig`; a musl target's are the Zig output's.
    #[test]
    fn glibc_compilers_find_zig_beside_them() {
        let home = tempfile::tempdir().unwrap();
        let store = Store::open_at(home.path()).unwrap();
        let wheel = fake_wheel();
        let server = serve_wheel(wheel.clone());
        let pin = ZigPin {
            host: "linux-amd64".to_owned(),
            version: "0.0.1".to_owned(),
            url: format!("{}/ziglang-0.0.1-py3-none-any.whl", server.url()),
            sha256: sha256_hex(&wheel),
        };
        let musl = compilers(&store, &pin, "x86_64-linux-musl", &|_| {}).unwrap();
        assert_eq!(musl, stored(&store, &pin).unwrap().join("bin"));
        let glibc = compilers(&store, &pin, "x86_64-linux-gnu.2.31", &|_| {}).unwrap();
        assert_ne!(glibc, musl);
        let script = glibc.join("zig-cc-x86_64-linux-gnu.2.31");
        let text = std::fs::read_to_string(&script).unwrap();
        assert!(!text.contains(home.path().to_str().unwrap()), "{text}");
        assert!(text.contains("-target x86_64-linux-gnu.2.31"), "{text}");
        assert!(glibc.join("zig-c++-x86_64-linux-gnu.2.31").is_file());
        // The stand-in `zig` of the fake wheel says its name.
        let output = std::process::Command::new(&script).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&output.stdout), "zig\n");
        // Made once: the same output the second time.
        assert_eq!(
            compilers(&store, &pin, "x86_64-linux-gnu.2.31", &|_| {}).unwrap(),
            glibc
        );
    }

    /// The script holds no path, and runs the `zig` beside its folder with the target and
    /// the prefix maps (checked with a stand-in `zig` that prints its arguments).
    #[test]
    fn the_compiler_script_finds_zig_from_its_place() {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("bin")).unwrap();
        let zig = root.join("zig");
        std::fs::write(&zig, "#!/bin/sh\nprintf '%s\\n' \"$@\"\n").unwrap();
        set_mode(&zig, 0o755).unwrap();
        let script = root.join("bin/zig-cc-aarch64-linux-musl");
        let text = compiler_script("aarch64-linux-musl", "cc");
        assert!(!text.contains(root.to_str().unwrap()));
        std::fs::write(&script, text).unwrap();
        set_mode(&script, 0o755).unwrap();
        let output = std::process::Command::new(&script)
            .args(["-c", "x.c"])
            .env("ZIG_GLOBAL_CACHE_DIR", "/cache/zig")
            .output()
            .unwrap();
        assert!(output.status.success());
        let arguments = String::from_utf8(output.stdout).unwrap();
        assert_eq!(
            arguments.lines().collect::<Vec<_>>(),
            [
                "cc",
                "-target",
                "aarch64-linux-musl",
                &format!("-ffile-prefix-map={}=/_/zig", root.display()),
                "-ffile-prefix-map=/cache/zig=/_/zig-cache",
                "-c",
                "x.c",
            ]
        );
    }
}
