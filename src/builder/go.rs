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
//!
//! A cgo package (`cgo = true`) gets `CGO_ENABLED=1` and kiln's pinned Zig as its C
//! toolchain ([`crate::toolchain::zig`]): `CC=zig-cc-<triple>` and `CXX=zig-c++-<triple>`
//! (compiler scripts, by bare name on PATH, so no path enters Go's action IDs; the triple is
//! `x86_64-linux-musl`, or `x86_64-linux-gnu.2.31` for `c-libc = "glibc"`),
//! `CGO_CFLAGS`/`CGO_CXXFLAGS` `-O2 -g` then the package's `cflags`, `CGO_LDFLAGS`
//! `-O2 -g -Wl,--strip-debug` then its `c-ldflags` (Zig's musl carries the Zig folder's path
//! in its debug information, so cgo programs are linked without DWARF; Go's pclntab keeps
//! stack traces whole), `PKG_CONFIG_LIBDIR` empty (no library of this machine is found
//! through pkg-config), and `ZIG_GLOBAL_CACHE_DIR`/`ZIG_LOCAL_CACHE_DIR` in the kiln home.
//! musl is linked statically: the program needs nothing of its base. glibc is linked
//! dynamically against the symbols of the release the triple names (the program runs on that
//! glibc or a newer one); its image must have the loader ([`super::executable`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::diagnostic::PathError;
use crate::oci::spec::Platform;
use crate::project::Package;

use crate::toolchain::Toolchain;

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
    #[error(transparent)]
    Path(#[from] PathError),
    /// Writing Go's telemetry mode file (before Go starts): the output module's own error,
    /// so its message names the file and a full disk still finds its `io::Error`.
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
    #[error("go build of package `{package}` ({folder}) failed ({status}):\n{output}")]
    Failed {
        package: String,
        folder: String,
        status: String,
        output: String,
    },
    #[error(
        "package `{package}` has cgo off, and {file}:{line} imports \"C\" (Go leaves such files out without cgo); go build failed:\n{output}"
    )]
    CgoOff {
        package: String,
        file: String,
        line: usize,
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
    match &package.cgo {
        None => {
            settings.insert("CGO_ENABLED".to_owned(), "0".to_owned());
        }
        Some(cgo) => {
            settings.insert("CGO_ENABLED".to_owned(), "1".to_owned());
            // The platform was checked when the package was planned.
            if let Ok(target) =
                crate::toolchain::zig::target(&package.platform, cgo.libc, &package.key)
            {
                let (cc, cxx) = crate::toolchain::zig::compiler_names(&target);
                settings.insert("CC".to_owned(), cc);
                settings.insert("CXX".to_owned(), cxx);
            }
            let cflags = join_flags(
                ["-O2", "-g"]
                    .into_iter()
                    .chain(cgo.cflags.iter().map(String::as_str)),
            );
            settings.insert("CGO_CFLAGS".to_owned(), cflags.clone());
            settings.insert("CGO_CXXFLAGS".to_owned(), cflags);
            settings.insert(
                "CGO_LDFLAGS".to_owned(),
                join_flags(
                    ["-O2", "-g", "-Wl,--strip-debug"]
                        .into_iter()
                        .chain(cgo.ldflags.iter().map(String::as_str)),
                ),
            );
            settings.insert("PKG_CONFIG_LIBDIR".to_owned(), String::new());
        }
    }
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

/// Flags as one `CGO_*FLAGS` value: Go splits it at spaces and honours quotes, so a flag
/// with a space or a quote is quoted.
fn join_flags<'a>(flags: impl IntoIterator<Item = &'a str>) -> String {
    flags
        .into_iter()
        .map(|flag| {
            if flag.is_empty() || flag.contains([' ', '\t', '\n', '\'', '"']) {
                if flag.contains('\'') {
                    format!("\"{flag}\"")
                } else {
                    format!("'{flag}'")
                }
            } else {
                flag.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
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
    /// HOME for Go: shared by builds and outside their scratch folders (see [`build`]).
    pub home: &'a Path,
    /// The `file://` module proxy of the locked modules, when there are any.
    pub proxy: Option<&'a Path>,
    /// For a cgo package: the folder of its compiler scripts (first on PATH) and Zig's cache
    /// folder.
    pub zig: Option<(&'a Path, &'a Path)>,
}

/// Build every main package of `package` into `workspace.bin`.
pub fn build(
    toolchain: &Toolchain,
    package: &Package,
    mod_mode: ModMode,
    workspace: &Workspace<'_>,
) -> Result<(), GoError> {
    let home = workspace.home.to_path_buf();
    let gopath = workspace.scratch.join("gopath");
    let tmp = workspace.scratch.join("tmp");
    for folder in [&home, &gopath, &tmp, &workspace.bin.to_path_buf()] {
        std::fs::create_dir_all(folder).map_err(PathError::write(folder))?;
    }
    // Go telemetry off: the mode file `go telemetry off` writes, in Go's HOME. In its default
    // `local` mode the go command starts a detached child, and every compile writes counters
    // under HOME as it exits; a compile orphaned by a killed build would write after the next
    // kiln removed the scratch folder. So HOME is a fixed folder of the store, not the
    // scratch folder, and holds the mode file before Go starts.
    let telemetry = home.join(".config/go/telemetry");
    let mode = telemetry.join("mode");
    // Written whole (another build may be reading it), and only when it is not yet "off".
    if std::fs::read(&mode).ok().as_deref() != Some(b"off") {
        std::fs::create_dir_all(&telemetry).map_err(PathError::write(&telemetry))?;
        crate::output::write_atomic(&mode, b"off")?;
    }
    let path_variable = std::env::join_paths(
        workspace
            .zig
            .map(|(compilers, _)| compilers.to_owned())
            .into_iter()
            .chain([
                toolchain.goroot.join("bin"),
                toolchain
                    .go
                    .parent()
                    .map(Path::to_owned)
                    .unwrap_or_default(),
            ])
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
        if let Some((_, zig_cache)) = workspace.zig {
            command
                .env("ZIG_GLOBAL_CACHE_DIR", zig_cache)
                .env("ZIG_LOCAL_CACHE_DIR", zig_cache);
        }
        die_with_kiln(&mut command);
        let output = command.output().map_err(PathError::run(&toolchain.go))?;
        if !output.status.success() {
            let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
            text.push_str(&String::from_utf8_lossy(&output.stdout));
            // Go leaves out files that import "C" when cgo is off, and then fails on what
            // they defined: say what to set instead.
            if package.cgo.is_none()
                && let Some((file, line)) = cgo_file(workspace.sources)
            {
                return Err(GoError::CgoOff {
                    package: package.key.clone(),
                    file,
                    line,
                    output: text.trim_end().to_owned(),
                });
            }
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

/// A hint for what Go said, when kiln knows one: its own errors name the file but not the cure.
impl crate::diagnostic::Hint for GoError {
    fn hint(&self) -> Option<String> {
        match self {
            GoError::Failed { output, .. } if output.contains("no space left on device") => {
                Some(crate::output::DISK_FULL_HINT.to_owned())
            }
            GoError::CgoOff { package, .. } => Some(format!(
                "set `cgo = true` in kiln.toml for package `{package}` ([packages.{package}]): kiln then builds it with its pinned Zig C toolchain"
            )),
            GoError::Failed { output, .. }
                if output.contains("pkg-config search path")
                    || output.contains("unable to find")
                    || output.contains("cannot find -l")
                    || (output.contains("fatal error: '") && output.contains("' file not found")) =>
            {
                Some("kiln's C toolchain sees no library of this machine: vendor the C library's sources into the module (as go-sqlite3 does), or give its flags in `cflags` and `c-ldflags`".to_owned())
            }
            _ => None,
        }
    }
}

/// The first Go file of the sources (outside vendor/ and testdata/, tests left out) whose
/// import list holds `"C"` without a build constraint naming cgo (a `//go:build cgo` file
/// has a fallback on purpose), as (path relative to the sources, line).
fn cgo_file(sources: &Path) -> Option<(String, usize)> {
    let mut folders = vec![sources.to_path_buf()];
    let mut found: Vec<(String, usize)> = Vec::new();
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if !matches!(name.as_str(), "vendor" | "testdata") && !name.starts_with(['.', '_'])
                {
                    folders.push(path);
                }
                continue;
            }
            if !name.ends_with(".go") || name.ends_with("_test.go") {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            if let Some(line) = imports_c(&text) {
                let relative = path
                    .strip_prefix(sources)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                found.push((relative, line));
            }
        }
    }
    found.sort();
    found.into_iter().next()
}

/// The line of `import "C"` in a Go file (alone or in an import block), unless a
/// `//go:build` line names cgo.
fn imports_c(text: &str) -> Option<usize> {
    let mut in_block = false;
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with("//go:build") && line.contains("cgo") {
            return None;
        }
        if in_block {
            if line.starts_with(')') {
                in_block = false;
            } else if line == "\"C\"" || line.starts_with("\"C\" ") || line.starts_with("\"C\"//") {
                return Some(index + 1);
            }
            continue;
        }
        if line == "import \"C\""
            || line.starts_with("import \"C\" ")
            || line.starts_with("import \"C\"//")
        {
            return Some(index + 1);
        }
        if line.starts_with("import (") {
            in_block = true;
        }
        if line.starts_with("func ") || line.starts_with("type ") || line.starts_with("var ") {
            return None;
        }
    }
    None
}

/// Have the kernel kill `command`'s process when kiln dies, however it dies (SIGKILL, OOM):
/// a `go build` left running would go on writing into a temporary folder the next kiln has
/// already cleared and made anew. Linux's `PR_SET_PDEATHSIG`; a no-op elsewhere.
pub(crate) fn die_with_kiln(command: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: between fork and exec the closure only calls async-signal-safe functions
        // (prctl, getppid) and builds an io::Error from errno, allocating nothing.
        let parent = std::process::id();
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // kiln died before the prctl: the signal will never come.
                if libc::getppid() as u32 != parent {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parent half of `the_go_compiler_dies_with_kiln`: run as its own process, it starts
    /// `sleep 600` as kiln starts `go build`, prints its pid and waits to be killed.
    #[test]
    #[ignore = "the helper process of the_go_compiler_dies_with_kiln"]
    fn die_with_kiln_parent() {
        assert!(std::env::var_os("KILN_TEST_DIE_WITH_KILN_PARENT").is_some());
        let mut command = Command::new("sleep");
        command.arg("600");
        die_with_kiln(&mut command);
        let mut child = command.spawn().unwrap();
        println!("child pid {}", child.id());
        // Killed while waiting.
        let _ = child.wait();
    }

    /// Regression (crash tests): `go build` outlived a SIGKILLed kiln and went on writing into
    /// the store's temporary folder.
    #[test]
    fn the_go_compiler_dies_with_kiln() {
        use std::io::BufRead;
        let mut parent = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "--ignored",
                "builder::go::tests::die_with_kiln_parent",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("KILN_TEST_DIE_WITH_KILN_PARENT", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(parent.stdout.take().unwrap()).lines();
        let pid: u32 = lines
            .find_map(|line| {
                line.unwrap()
                    .split("child pid ")
                    .nth(1)
                    .map(|pid| pid.trim().parse().unwrap())
            })
            .expect("the parent prints its child's pid");
        let proc_entry = PathBuf::from(format!("/proc/{pid}"));
        assert!(proc_entry.exists());
        parent.kill().unwrap();
        parent.wait().unwrap();
        // The kernel kills the child at once; `sleep 600` would otherwise live on.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while proc_entry.exists()
            && !std::fs::read_to_string(proc_entry.join("stat"))
                .is_ok_and(|stat| stat.contains(") Z "))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the child {pid} outlived its killed parent"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    #[test]
    fn files_importing_c_are_found() {
        for (text, expected) in [
            (
                "package main\n\n// #include <stdio.h>\nimport \"C\"\n",
                Some(4),
            ),
            ("package main\n\nimport (\n\t\"fmt\"\n\t\"C\"\n)\n", Some(5)),
            ("//go:build cgo\n\npackage main\n\nimport \"C\"\n", None),
            (
                "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"C\") }\n",
                None,
            ),
        ] {
            assert_eq!(imports_c(text), expected, "{text}");
        }
        assert_eq!(
            join_flags(["-O2", "-DNAME=a b", "-DQ='x'"]),
            "-O2 '-DNAME=a b' \"-DQ='x'\""
        );
    }

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
