//! Running `go build` hermetically.
//!
//! The environment is cleared and rebuilt from nothing but what the build needs:
//! `GOTOOLCHAIN=local GOWORK=off GOENV=off GOPROXY=off GOSUMDB=off GOFLAGS=` (GOPROXY is the
//! `file://` folder of the locked modules when there are any), `CGO_ENABLED=0`,
//! GOOS/GOARCH from the platform and its instruction-set level at Go's default
//! (`GOAMD64=v1`, `GOARM64=v8.0`, `GOARM=7`, …) unless the package sets one, a private HOME,
//! GOPATH and TMPDIR inside the build folder, and Go's build cache in the store (it is keyed
//! by content, so sharing it only saves time). Flags: `-trimpath -buildvcs=false`, `-mod=vendor`
//! when the sources vendor their dependencies, else `-mod=readonly`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::oci::spec::Platform;
use crate::project::Package;

use super::toolchain::Toolchain;

/// How Go finds dependencies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModMode {
    Readonly,
    Vendor,
}

impl ModMode {
    pub fn flag(self) -> &'static str {
        match self {
            ModMode::Readonly => "-mod=readonly",
            ModMode::Vendor => "-mod=vendor",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GoError {
    #[error("cannot run {}", .go.display())]
    Spawn {
        go: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("go build of package `{package}` ({folder}) failed ({status}):\n{output}")]
    Failed {
        package: String,
        folder: String,
        status: String,
        output: String,
    },
    #[error("go build of package `{package}` ({folder}) succeeded but wrote no {}", .program.display())]
    NoOutput {
        package: String,
        folder: String,
        program: PathBuf,
    },
}

/// The instruction-set level variables for a platform, at Go's defaults.
fn level_defaults(platform: &Platform) -> Vec<(&'static str, String)> {
    let variant = platform.variant.as_deref().unwrap_or("");
    match platform.architecture.as_str() {
        "amd64" => vec![("GOAMD64", "v1".to_owned())],
        "arm64" => vec![("GOARM64", "v8.0".to_owned())],
        "arm" => vec![(
            "GOARM",
            variant
                .strip_prefix('v')
                .filter(|level| !level.is_empty())
                .unwrap_or("7")
                .to_owned(),
        )],
        "386" => vec![("GO386", "sse2".to_owned())],
        "ppc64" | "ppc64le" => vec![("GOPPC64", "power8".to_owned())],
        "mips" | "mipsle" => vec![("GOMIPS", "hardfloat".to_owned())],
        "mips64" | "mips64le" => vec![("GOMIPS64", "hardfloat".to_owned())],
        "riscv64" => vec![("GORISCV64", "rva20u64".to_owned())],
        _ => Vec::new(),
    }
}

/// The Go settings of a package build that decide its output (no paths): part of its recipe
/// and what `kiln shell` exports.
pub fn settings(package: &Package, mod_mode: ModMode) -> BTreeMap<String, String> {
    let mut settings = BTreeMap::new();
    settings.insert("CGO_ENABLED".to_owned(), "0".to_owned());
    settings.insert("GOOS".to_owned(), package.platform.os.clone());
    settings.insert("GOARCH".to_owned(), package.platform.architecture.clone());
    for (variable, value) in level_defaults(&package.platform) {
        settings.insert(variable.to_owned(), value);
    }
    settings.insert("GOTOOLCHAIN".to_owned(), "local".to_owned());
    settings.insert("GOWORK".to_owned(), "off".to_owned());
    settings.insert("GOPROXY".to_owned(), "off".to_owned());
    settings.insert("GOSUMDB".to_owned(), "off".to_owned());
    settings.insert(
        "GOFLAGS".to_owned(),
        format!("{} -trimpath -buildvcs=false", mod_mode.flag()),
    );
    for (variable, value) in &package.env {
        settings.insert(variable.clone(), value.clone());
    }
    settings
}

/// The GOPROXY value of a local module proxy folder: a `file://` URL, its path
/// percent-encoded (a kiln home with `,`, `|`, `%` or spaces in its path stays one entry).
pub fn proxy_url(folder: &Path) -> String {
    use std::os::unix::ffi::OsStrExt as _;
    let mut url = String::from("file://");
    for &byte in folder.as_os_str().as_bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            url.push(byte as char);
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    url
}

/// The arguments of `go build` for one main package, after `-o OUTPUT`.
fn build_arguments(package: &Package, mod_mode: ModMode, folder: &str) -> Vec<String> {
    let mut arguments = vec![
        "-trimpath".to_owned(),
        "-buildvcs=false".to_owned(),
        mod_mode.flag().to_owned(),
    ];
    if !package.tags.is_empty() {
        arguments.push(format!("-tags={}", package.tags.join(",")));
    }
    if !package.ldflags.is_empty() {
        arguments.push(format!("-ldflags={}", package.ldflags.join(" ")));
    }
    arguments.push(if folder == "." {
        ".".to_owned()
    } else {
        format!("./{folder}")
    });
    arguments
}

/// Where a build runs.
pub struct Workspace<'a> {
    /// The copied sources; `go build` runs here.
    pub sources: &'a Path,
    /// `bin/` of the output.
    pub bin: &'a Path,
    /// Private HOME, GOPATH and TMPDIR go here.
    pub scratch: &'a Path,
    /// Go's build cache.
    pub cache: &'a Path,
    /// The `file://` module proxy of the locked modules, when there are any.
    pub proxy: Option<&'a Path>,
}

/// Build every main package of `package` into `workspace.bin`.
pub fn build(
    toolchain: &Toolchain,
    package: &Package,
    mod_mode: ModMode,
    workspace: &Workspace<'_>,
) -> Result<(), GoError> {
    let home = workspace.scratch.join("home");
    let gopath = workspace.scratch.join("gopath");
    let tmp = workspace.scratch.join("tmp");
    for folder in [&home, &gopath, &tmp, &workspace.bin.to_path_buf()] {
        std::fs::create_dir_all(folder).map_err(|source| GoError::Spawn {
            go: folder.clone(),
            source,
        })?;
    }
    let path_variable = std::env::join_paths(
        [
            toolchain.goroot.join("bin"),
            toolchain
                .go
                .parent()
                .map(Path::to_owned)
                .unwrap_or_default(),
        ]
        .into_iter()
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/bin")]),
    )
    .unwrap_or_default();
    for main in &package.mains {
        let output_path = workspace.bin.join(&main.program);
        let mut command = Command::new(&toolchain.go);
        command
            .arg("build")
            .arg("-o")
            .arg(&output_path)
            .args(build_arguments(package, mod_mode, &main.folder))
            .current_dir(workspace.sources)
            .env_clear()
            .envs(settings(package, mod_mode))
            // GOFLAGS repeats the flags given on the command line; keep it empty so a flag
            // cannot be given twice.
            .env("GOFLAGS", "")
            .env("PATH", &path_variable)
            .env("HOME", &home)
            .env("GOPATH", &gopath)
            .env("GOMODCACHE", gopath.join("pkg/mod"))
            .env("GOCACHE", workspace.cache)
            .env("GOTMPDIR", &tmp)
            .env("TMPDIR", &tmp)
            .env("GOENV", "off");
        if let Some(proxy) = workspace.proxy {
            command.env("GOPROXY", proxy_url(proxy));
        }
        let output = command.output().map_err(|source| GoError::Spawn {
            go: toolchain.go.clone(),
            source,
        })?;
        if !output.status.success() {
            let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
            text.push_str(&String::from_utf8_lossy(&output.stdout));
            return Err(GoError::Failed {
                package: package.key.clone(),
                folder: main.folder.clone(),
                status: output.status.to_string(),
                output: text.trim_end().to_owned(),
            });
        }
        if !output_path.is_file() {
            return Err(GoError::NoOutput {
                package: package.key.clone(),
                folder: main.folder.clone(),
                program: output_path,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls_are_escaped() {
        assert_eq!(
            proxy_url(Path::new("/home/a b/k,i|l%n/v1/go/proxy/x")),
            "file:///home/a%20b/k%2Ci%7Cl%25n/v1/go/proxy/x"
        );
    }

    #[test]
    fn levels_are_pinned() {
        let level = |text: &str| level_defaults(&text.parse().unwrap());
        assert_eq!(level("linux/amd64"), [("GOAMD64", "v1".to_owned())]);
        assert_eq!(level("linux/arm/v6"), [("GOARM", "6".to_owned())]);
        assert_eq!(level("linux/arm"), [("GOARM", "7".to_owned())]);
        assert_eq!(level("linux/arm64"), [("GOARM64", "v8.0".to_owned())]);
    }
}
