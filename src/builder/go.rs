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
    /// HOME for Go: shared by builds and outside their scratch folders (see [`build`]).
    pub home: &'a Path,
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
        die_with_kiln(&mut command);
        let output = command.output().map_err(PathError::run(&toolchain.go))?;
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

/// A hint for what Go said, when kiln knows one: its own errors name the file but not the cure.
impl crate::diagnostic::Hint for GoError {
    fn hint(&self) -> Option<String> {
        match self {
            GoError::Failed { output, .. } if output.contains("no space left on device") => {
                Some(crate::output::DISK_FULL_HINT.to_owned())
            }
            _ => None,
        }
    }
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
