//! `kiln lock`'s rules, apart from its arguments and printing: which Go release a lock pins,
//! which base images and static-base sources, where the project is, and what `--check`
//! compares.
//!
//! The Go release is go.mod's toolchain line, else the release pinned before (while go.mod's
//! go line is unchanged), else the local go, else the first release of the go line; never one
//! older than the go line (Go refuses to build with it). A release other than the local go is
//! fetched into the store as Go fetches it ([`crate::toolchain::fetch_release`]) unless GOTOOLCHAIN is
//! `local`. Bases and static-base sources stay as pinned until an update is asked for.

use std::path::{Path, PathBuf};

use super::lockfile::{GoPin, LockFile, LockedBase};
use super::{LOCK_FILE, LockError, Wants};
use crate::diagnostic::Hint;
use crate::gomod::proxy::ProxyClient;
use crate::oci::reference::Reference;
use crate::oci::spec::Platform;
use crate::project::config::{Base, PROJECT_FILE};
use crate::project::{ConfigError, Project};
use crate::registry::client::ClientOptions;
use crate::static_base::{StaticBaseError, StaticWheel};
use crate::store::Store;
use crate::toolchain::zig::{ZigError, ZigPin};
use crate::transport::{RemoteSource, TransportError};

#[derive(Debug, thiserror::Error)]
pub enum LockerError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot read the current folder")]
    CurrentFolder(#[source] std::io::Error),
    #[error("cannot resolve the base image {name}")]
    Base {
        name: String,
        #[source]
        source: Box<TransportError>,
    },
    #[error("cannot resolve the static base's sources on {index}")]
    StaticSources {
        index: String,
        #[source]
        source: Box<StaticBaseError>,
    },
    #[error(transparent)]
    Zig(#[from] ZigError),
    #[error("go.mod has neither a go nor a toolchain line and no Go toolchain was found to pin")]
    NoRelease,
    #[error(
        "the project builds with {pinned} and the go here is {local}; GOTOOLCHAIN=local forbids fetching it"
    )]
    FetchForbidden { pinned: String, local: String },
}

impl Hint for LockerError {
    fn hint(&self) -> Option<String> {
        match self {
            LockerError::Lock(inner) => inner.hint(),
            LockerError::Config(inner) => inner.hint(),
            LockerError::Zig(inner) => inner.hint(),
            LockerError::NoRelease => Some(
                "add `toolchain go1.N.M` to go.mod, or put go on PATH (or set KILN_GO)".to_owned(),
            ),
            LockerError::FetchForbidden { pinned, .. } => Some(format!(
                "put {pinned} on PATH (or in KILN_GO), or unset GOTOOLCHAIN to let kiln fetch it"
            )),
            _ => None,
        }
    }
}

/// The project folder: `path`, or the nearest folder upwards holding kiln.toml, else go.mod,
/// else the current folder.
pub fn project_root(path: Option<&Path>) -> Result<PathBuf, LockerError> {
    if let Some(path) = path {
        return Ok(path.to_owned());
    }
    let current = std::env::current_dir().map_err(LockerError::CurrentFolder)?;
    for marker in [PROJECT_FILE, "go.mod"] {
        if let Some(found) = current
            .ancestors()
            .find(|ancestor| ancestor.join(marker).is_file())
        {
            return Ok(found.to_owned());
        }
    }
    Ok(current)
}

/// What the project's images need pinned besides modules (from kiln.toml, if there is one).
#[derive(Debug, Default)]
pub struct ImageInputs {
    /// Each `base = "REF"` with each platform it is built for, in kiln.toml's order, once.
    pub bases: Vec<(Reference, Platform)>,
    /// Whether an image starts from kiln's static base.
    pub static_base: bool,
    /// Whether a package has `cgo = true` (and so needs the Zig toolchain pinned).
    pub cgo: bool,
}

impl ImageInputs {
    /// The inputs of the images of the project at `root`; none without a kiln.toml.
    pub fn of(root: &Path) -> Result<Self, LockerError> {
        if !root.join(PROJECT_FILE).is_file() {
            return Ok(ImageInputs::default());
        }
        let project = Project::load(root)?;
        let mut inputs = ImageInputs {
            cgo: project
                .packages
                .values()
                .any(|package| package.cgo.is_some()),
            ..ImageInputs::default()
        };
        for image in project.images.values() {
            match &image.base {
                Some(Base::Image(base)) => {
                    for platform in &image.platforms {
                        let pair = (base.clone(), platform.clone());
                        if !inputs.bases.contains(&pair) {
                            inputs.bases.push(pair);
                        }
                    }
                }
                Some(Base::Static) => inputs.static_base = true,
                None => {}
            }
        }
        Ok(inputs)
    }
}

/// What `kiln lock --check` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    /// There is no kiln.lock.
    Missing,
    /// kiln.lock pins everything the project needs; it holds this many modules.
    Current { modules: usize },
    /// What differs, a line each (`+ …` missing from kiln.lock, `- …` only in it).
    Stale(Vec<String>),
}

/// Compare the project's kiln.lock with what go.mod, go.sum and kiln.toml want, fetching
/// nothing.
pub fn check(root: &Path, wants: &Wants) -> Result<Check, LockerError> {
    let Some(locked) = super::read_lock(root)? else {
        return Ok(Check::Missing);
    };
    let inputs = ImageInputs::of(root)?;
    let mut differences = super::differences(wants, &locked);
    if inputs.static_base && locked.statics.is_empty() {
        differences.push(
            "+ the static base's sources (an image has base = \"static\", kiln.lock pins none)"
                .to_owned(),
        );
    }
    let host = crate::toolchain::zig::zig_host();
    if inputs.cgo && locked.zig_for(&host).is_none() {
        differences.push(format!(
            "+ the Zig C toolchain for {host} (a package has cgo = true, kiln.lock pins none)"
        ));
    }
    for (reference, platform) in &inputs.bases {
        if locked
            .base(&reference.to_string(), &platform.to_string())
            .is_none()
        {
            differences.push(format!(
                "+ base {reference} for {platform} (in kiln.toml, not in {LOCK_FILE})"
            ));
        }
    }
    Ok(if differences.is_empty() {
        Check::Current {
            modules: locked.modules.len(),
        }
    } else {
        Check::Stale(differences)
    })
}

/// The first release of a go line: `1.22` → `go1.22.0`, `1.22.3` → `go1.22.3`.
pub fn minimum_release(line: &str) -> String {
    let numeric = line.chars().all(|c| c.is_ascii_digit() || c == '.');
    if numeric && line.matches('.').count() == 1 {
        format!("go{line}.0")
    } else {
        format!("go{line}")
    }
}

/// The Go release to pin (see the module doc); `local` is the local go's version.
pub fn pin_release(
    wants: &Wants,
    previous: Option<&LockFile>,
    local: Option<&str>,
) -> Result<String, LockerError> {
    let pinned = match (&wants.go_mod.toolchain, previous, local) {
        (Some(line), _, _) => line.clone(),
        (None, Some(previous), _) if previous.go.go == wants.go_mod.go => {
            previous.go.toolchain.clone()
        }
        (None, _, Some(local)) => local.to_owned(),
        (None, _, None) => match wants.go_mod.go.as_deref() {
            Some(line) => minimum_release(line),
            None => return Err(LockerError::NoRelease),
        },
    };
    Ok(match wants.go_mod.go.as_deref() {
        Some(line) if wants.go_mod.toolchain.is_none() => {
            let minimum = minimum_release(line);
            let older = crate::gomod::module::compare_versions(
                &pinned.replacen("go", "v", 1),
                &minimum.replacen("go", "v", 1),
            )
            .is_lt();
            if older { minimum } else { pinned }
        }
        _ => pinned,
    })
}

/// The pin of release `pinned`: its `h1:` stays pinned once kiln fetched it, whoever locks
/// next.
pub fn go_pin(wants: &Wants, previous: Option<&LockFile>, pinned: &str) -> GoPin {
    GoPin {
        go: wants.go_mod.go.clone(),
        toolchain: pinned.to_owned(),
        toolchain_h1: previous
            .filter(|previous| previous.go.toolchain == pinned)
            .map(|previous| previous.go.toolchain_h1.clone())
            .unwrap_or_default(),
    }
}

/// The `go` of the release `pin` names, chosen as a build chooses it
/// ([`crate::builder::Builder::pinned_toolchain`]): the local go (`local_go`, whose release
/// is `local`) when it is that release, else the release `kiln lock` fetched into the store
/// for this host ([`ensure_release`] runs first). `None` when neither is there. `kiln lock`
/// runs it for modules that go `direct` ([`crate::gomod::direct`]).
pub fn pinned_go(
    store: &Store,
    pin: &GoPin,
    local_go: Option<&std::path::Path>,
    local: Option<&str>,
) -> Option<std::path::PathBuf> {
    if let Some(go) = local_go
        && local == Some(pin.toolchain.as_str())
    {
        return Some(go.to_owned());
    }
    pin.toolchain_h1
        .get(&crate::toolchain::go_host())
        .and_then(|h1| crate::toolchain::fetched_release(store, &pin.toolchain, h1))
}

/// Make sure the store has the pinned release when the local go is another one (or there is
/// none), fetching it unless GOTOOLCHAIN=local; records its `h1:` for this host in `pin`.
/// `status` hears about a fetch.
pub fn ensure_release(
    store: &Store,
    client: &ProxyClient,
    pin: &mut GoPin,
    local: Option<&str>,
    status: &dyn Fn(&str),
) -> Result<(), LockerError> {
    let pinned = pin.toolchain.clone();
    if local == Some(pinned.as_str()) {
        return Ok(());
    }
    let host = crate::toolchain::go_host();
    let missing = pin
        .toolchain_h1
        .get(&host)
        .and_then(|h1| crate::toolchain::fetched_release(store, &pinned, h1))
        .is_none();
    let local_only = std::env::var("GOTOOLCHAIN").is_ok_and(|value| value == "local");
    if local_only && missing {
        return Err(LockerError::FetchForbidden {
            pinned,
            local: local.unwrap_or("missing").to_owned(),
        });
    }
    if missing {
        status(&format!(
            "fetching {pinned} for {host} (the go here is {})",
            local.unwrap_or("missing")
        ));
    }
    let h1 = crate::toolchain::fetch_release(
        store,
        client,
        &pinned,
        pin.toolchain_h1.get(&host).map(String::as_str),
    )
    .map_err(LockError::from)?;
    pin.toolchain_h1.insert(host, h1);
    Ok(())
}

/// Pin the `h1:` of the pinned Go release for each of `hosts` (`kiln lock --host`, as
/// `linux-arm64`) that kiln.lock has none for, so a machine of that host whose go is another
/// release verifies the one it fetches at its own `kiln lock` without changing kiln.lock.
pub fn pin_release_hosts(
    client: &ProxyClient,
    pin: &mut GoPin,
    hosts: &[String],
    status: &dyn Fn(&str),
) -> Result<(), LockerError> {
    for host in hosts
        .iter()
        .map(|host| crate::toolchain::go_release_host(host))
    {
        if pin.toolchain_h1.contains_key(&host) {
            continue;
        }
        status(&format!(
            "pinning {} for {host}: fetching its zip to record its h1",
            pin.toolchain
        ));
        let h1 =
            crate::toolchain::release_h1(client, &pin.toolchain, &host).map_err(LockError::from)?;
        pin.toolchain_h1.insert(host, h1);
    }
    Ok(())
}

/// Pin each wanted base: the previous pin when there is one (unless `update`), else the
/// registry's answer for its tag (or digest), down to the platform's manifest. Sorted.
pub fn resolve_bases(
    wanted: &[(Reference, Platform)],
    previous: Option<&LockFile>,
    update: bool,
    insecure: bool,
    status: &dyn Fn(&str),
) -> Result<Vec<LockedBase>, LockerError> {
    let options = ClientOptions::from_env(insecure);
    let mut bases = Vec::new();
    for (reference, platform) in wanted {
        let name = reference.to_string();
        let platform_text = platform.to_string();
        if !update && let Some(pinned) = previous.and_then(|lock| lock.base(&name, &platform_text))
        {
            bases.push(pinned.clone());
            continue;
        }
        let unresolved = |source| LockerError::Base {
            name: name.clone(),
            source: Box::new(source),
        };
        let remote = RemoteSource::connect(reference, &options).map_err(unresolved)?;
        let digest = remote
            .resolve_platform(reference, platform)
            .map_err(unresolved)?
            .digest;
        status(&format!("pinned base {name} ({platform_text}) to {digest}"));
        bases.push(LockedBase {
            name,
            platform: platform_text,
            digest: digest.to_string(),
        });
    }
    bases.sort();
    Ok(bases)
}

/// The static base's sources: none when no image uses it; else the previous pins (unless
/// `update`), else kiln's own pins, or with `update` the newest on PyPI.
pub fn resolve_statics(
    wanted: bool,
    previous: Option<&LockFile>,
    update: bool,
    status: &dyn Fn(&str),
) -> Result<Vec<StaticWheel>, LockerError> {
    if !wanted {
        return Ok(Vec::new());
    }
    if !update && let Some(previous) = previous.filter(|previous| !previous.statics.is_empty()) {
        return Ok(previous.statics.clone());
    }
    let sources = if update {
        let index = crate::static_base::pypi_url();
        crate::static_base::latest_sources(&index).map_err(|source| LockerError::StaticSources {
            index: index.clone(),
            source: Box::new(source),
        })?
    } else {
        crate::static_base::default_sources()
    };
    for source in &sources {
        status(&format!(
            "pinned static base source {} {} (sha256 {})",
            source.name, source.version, source.sha256
        ));
    }
    Ok(sources)
}

/// The Zig wheels of cgo builds: none when no package has cgo; else the previous pins (every
/// host's), with kiln's own pin ([`crate::toolchain::zig::default_pin`]) added for this host
/// and for each of `hosts` (`kiln lock --host`, as `[[zig]]` names them: `linux-arm64`) that
/// has none.
pub fn resolve_zig(
    wanted: bool,
    previous: Option<&LockFile>,
    hosts: &[String],
    status: &dyn Fn(&str),
) -> Result<Vec<ZigPin>, LockerError> {
    if !wanted {
        return Ok(Vec::new());
    }
    let mut pins = previous.map(|lock| lock.zig.clone()).unwrap_or_default();
    let this_host = crate::toolchain::zig::zig_host();
    for host in std::iter::once(&this_host).chain(hosts) {
        if pins.iter().any(|pin| &pin.host == host) {
            continue;
        }
        let pin = crate::toolchain::zig::default_pin(host)?;
        status(&format!(
            "pinned the Zig C toolchain {} for {host} (ziglang wheel, sha256 {})",
            pin.version, pin.sha256
        ));
        pins.push(pin);
    }
    pins.sort();
    Ok(pins)
}

/// A host as `kiln lock --host` takes it, Go's `OS/ARCH` (`linux/arm64`), in the form
/// `[[zig]]` records it (`linux-arm64`).
pub fn lock_host(value: &str) -> Result<String, String> {
    match value.split_once('/') {
        Some((os, architecture))
            if !os.is_empty()
                && !architecture.is_empty()
                && !architecture.contains('/')
                && value
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'/') =>
        {
            Ok(format!("{os}-{architecture}"))
        }
        _ => Err(format!(
            "`{value}` is not a host: give Go's OS/ARCH, as in linux/arm64"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_hosts_are_go_platforms() {
        assert_eq!(lock_host("linux/arm64").unwrap(), "linux-arm64");
        for bad in [
            "linux",
            "linux-arm64",
            "/arm64",
            "linux/",
            "linux/arm/v7",
            "linux/ arm",
        ] {
            let error = lock_host(bad).unwrap_err();
            assert!(error.contains(&format!("`{bad}`")), "{error}");
        }
    }

    /// `--host` adds kiln's pin for another host beside this host's, keeps what kiln.lock
    /// pins already, and names the hosts it has no pin for.
    #[test]
    fn zig_pins_for_other_hosts() {
        let this_host = crate::toolchain::zig::zig_host();
        let other = if this_host == "linux-arm64" {
            "linux-amd64"
        } else {
            "linux-arm64"
        };
        let heard = std::cell::RefCell::new(Vec::new());
        let status = |line: &str| heard.borrow_mut().push(line.to_owned());
        let pins = resolve_zig(true, None, &[other.to_owned()], &status).unwrap();
        let hosts: Vec<&str> = pins.iter().map(|pin| pin.host.as_str()).collect();
        let mut expected = vec![this_host.as_str(), other];
        expected.sort();
        assert_eq!(hosts, expected);
        assert_eq!(heard.borrow().len(), 2);
        assert!(heard.borrow()[1].contains(&format!("for {other} (ziglang wheel")));

        assert!(
            resolve_zig(false, None, &[other.to_owned()], &status)
                .unwrap()
                .is_empty()
        );
        let error = resolve_zig(true, None, &["darwin-arm64".to_owned()], &status).unwrap_err();
        assert!(error.to_string().contains("darwin-arm64"), "{error}");
    }

    #[test]
    fn minimum_releases_of_go_lines() {
        for (line, release) in [
            ("1.22", "go1.22.0"),
            ("1.22.3", "go1.22.3"),
            ("1.21rc2", "go1.21rc2"),
        ] {
            assert_eq!(minimum_release(line), release, "{line}");
        }
    }
}
