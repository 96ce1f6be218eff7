//! Go releases fetched as Go fetches them: the module `golang.org/toolchain` from the GOPROXY,
//! checked like any module zip, pinned by its `h1:` in kiln.lock, unpacked into the store.

use std::path::{Path, PathBuf};

use super::ToolchainError;
use crate::diagnostic::PathError;
use crate::gomod::modzip::{self, ZipLimits};
use crate::gomod::proxy::{ProxyClient, ProxyFile};
use crate::recipes;
use crate::store::Store;

/// The host as Go names its release downloads (`linux-amd64`), for toolchain module
/// versions: the host platform's architecture ([`crate::oci::spec::Platform::host`], OCI's and GOARCH's name),
/// except 32-bit ARM, whose releases are built for ARMv6 and named `armv6l`.
pub fn go_host() -> String {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let architecture = crate::oci::spec::Platform::host().architecture;
    match architecture.as_str() {
        "arm" => format!("{os}-armv6l"),
        other => format!("{os}-{other}"),
    }
}

/// The module Go distributes a release as: `golang.org/toolchain@v0.0.1-go1.27.3.linux-amd64`.
pub const TOOLCHAIN_MODULE: &str = "golang.org/toolchain";

fn toolchain_module_version(release: &str, host: &str) -> String {
    format!("v0.0.1-{release}.{host}")
}

/// Go's name for the release downloads of `host` as kiln.lock's other pins name hosts
/// (`linux-arm64` stays; 32-bit ARM, `linux-arm`, is `linux-armv6l`).
pub fn go_release_host(host: &str) -> String {
    match host.strip_suffix("-arm") {
        Some(os) => format!("{os}-armv6l"),
        None => host.to_owned(),
    }
}

/// The `h1:` of the release `release` for another host (`kiln lock --host`): its zip fetched
/// and checked like any module zip, then dropped (that host unpacks it at its own lock).
pub fn release_h1(
    client: &ProxyClient,
    release: &str,
    host: &str,
) -> Result<String, ToolchainError> {
    Ok(fetch_release_zip(client, release, host)?.1.h1())
}

/// The release zip of `release` for `host` from the GOPROXY, read and checked like any module
/// zip, with its module id (`golang.org/toolchain@v0.0.1-go1.22.3.linux-amd64`).
fn fetch_release_zip(
    client: &ProxyClient,
    release: &str,
    host: &str,
) -> Result<(String, modzip::ModuleZip), ToolchainError> {
    let version = toolchain_module_version(release, host);
    let id = format!("{TOOLCHAIN_MODULE}@{version}");
    let bytes = client
        .fetch(
            TOOLCHAIN_MODULE,
            &version,
            ProxyFile::Zip,
            modzip::MAX_ZIP_FILE,
        )
        .map_err(|source| ToolchainError::Fetch {
            module: id.clone(),
            source: Box::new(source),
        })?;
    let module_zip = modzip::read(&bytes, TOOLCHAIN_MODULE, &version, ZipLimits::default())?;
    Ok((id, module_zip))
}

/// The `go` of the release `release` whose zip for this host has `h1`, if it is in the
/// store.
pub fn fetched_release(store: &Store, release: &str, h1: &str) -> Option<PathBuf> {
    let name = recipes::go_toolchain(release, &go_host(), h1)
        .name()
        .clone();
    store
        .contains(&name)
        .then(|| store.path(&name).join("bin/go"))
}

/// Fetch the Go release `release` for this host as Go itself does (the module
/// `golang.org/toolchain@v0.0.1-<release>.<os>-<arch>` from the GOPROXY), check it like any
/// module zip and against `expected` (the `h1:` kiln.lock recorded when it first fetched it),
/// and keep it unpacked in the store (`_go.mod` files copied back to `go.mod`, `bin/` and
/// `pkg/tool/` executable). Returns its `h1:`.
///
/// Go verifies a release against the checksum database; kiln does not speak to one, so the
/// first fetch is trusted and pinned (the `h1:` in kiln.lock), and every later fetch must
/// match it.
pub fn fetch_release(
    store: &Store,
    client: &ProxyClient,
    release: &str,
    expected: Option<&str>,
) -> Result<String, ToolchainError> {
    let host = go_host();
    if let Some(h1) = expected
        && store.contains(recipes::go_toolchain(release, &host, h1).name())
    {
        return Ok(h1.to_owned());
    }
    let (id, module_zip) = fetch_release_zip(client, release, &host)?;
    let h1 = module_zip.h1();
    if let Some(expected) = expected
        && h1 != expected
    {
        return Err(ToolchainError::Mismatch {
            module: id,
            actual: h1,
            expected: expected.to_owned(),
        });
    }
    store.realise(
        &recipes::go_toolchain(release, &host, &h1),
        || {},
        |temp| {
            module_zip.extract(temp)?;
            restore_go_mod_files(temp)?;
            make_tools_executable(temp)?;
            Ok::<_, ToolchainError>(temp.to_owned())
        },
    )?;
    Ok(h1)
}

/// A release zip holds its go.mod files (`src/go.mod`, `src/cmd/go.mod`, testdata) as
/// `_go.mod`, since a module zip may have no go.mod below its root; as Go does after
/// downloading a release, each is copied back to `go.mod` beside it.
fn restore_go_mod_files(folder: &Path) -> Result<(), PathError> {
    let entries = std::fs::read_dir(folder).map_err(PathError::walk(folder))?;
    for entry in entries {
        let entry = entry.map_err(PathError::walk(folder))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(PathError::read(&path))?;
        if kind.is_dir() {
            restore_go_mod_files(&path)?;
        } else if kind.is_file() && entry.file_name() == "_go.mod" {
            let go_mod = folder.join("go.mod");
            std::fs::copy(&path, &go_mod).map_err(PathError::write(&go_mod))?;
        }
    }
    Ok(())
}

/// Module zips carry no file modes: as Go does for a downloaded release, the files of `bin/`
/// and `pkg/tool/<host>/` become executable.
fn make_tools_executable(root: &Path) -> Result<(), PathError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut folders = vec![root.join("bin")];
    if let Ok(entries) = std::fs::read_dir(root.join("pkg/tool")) {
        folders.extend(entries.flatten().map(|entry| entry.path()));
    }
    for folder in folders {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                    .map_err(PathError::write(&path))?;
            }
        }
    }
    Ok(())
}
