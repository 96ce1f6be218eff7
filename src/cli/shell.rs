//! `kiln shell`: the project's development environment.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use super::Printer;
use crate::project::{Resolved, TargetSpec};
use crate::session::Session;

const AFTER_HELP: &str = "\
The shell has the Go toolchain kiln builds with first on PATH and the package's Go settings
exported (CGO_ENABLED=0, or for a `cgo = true` package CGO_ENABLED=1 with CC/CXX naming
kiln's Zig compiler scripts (zig-cc-x86_64-linux-musl, …, on PATH), CGO_CFLAGS, CGO_LDFLAGS,
PKG_CONFIG_LIBDIR and ZIG_GLOBAL_CACHE_DIR as builds have them; GOOS, GOARCH and its level,
GOTOOLCHAIN=local, GOWORK=off,
GOPROXY=off, or the file:// folder of the modules kiln.lock pins, GOFLAGS with -trimpath
-buildvcs=false and the module mode, the package's env), so `go build`, `go test` and `go vet`
there see what `kiln build` sees, offline. KILN_SHELL is set to
the package. The shell is $SHELL (else /bin/sh); -c runs one command in it and exits with its
status.";

#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct ShellArgs {
    /// The package whose settings to use: NAME, .#NAME or PATH#NAME [default: packages.default].
    #[arg(value_name = "TARGET")]
    target: Option<TargetSpec>,

    /// Run CMD in the shell instead of an interactive session.
    #[arg(short = 'c', long = "command", value_name = "CMD")]
    command: Option<String>,
}

pub fn run(args: ShellArgs, printer: &Printer) -> Result<()> {
    let spec = args.target.unwrap_or_default();
    let status = |message: &str| printer.status(message);
    // The gc lock is held while the shell's Go and compilers are made ready, and given up
    // before the shell starts; what it uses stays through `kiln gc` as what kiln.lock pins.
    let mut session = Session::open(&status, Box::new(printer.clone()))?;
    let (project, builder) = session.project_and_builder(&spec)?;
    crate::session::root_lock(builder.store(), project)?;
    let package = match project.resolve(spec.name.as_deref())? {
        Resolved::Package(package) => package,
        Resolved::Image(image) => bail!(crate::diagnostic::Hinted::new(
            format!("`{}` is an image; `kiln shell` takes a package", image.key),
            format!("`kiln shell .#{}`", image.package)
        )),
    };
    // Builds use the lock's modules and Go release; so does the shell.
    let environment = builder.shell_environment(project, package)?;
    if let Some(fallback) = &environment.fallback {
        use crate::diagnostic::Hint as _;
        let hint = fallback
            .hint()
            .map(|hint| format!("; {hint}"))
            .unwrap_or_default();
        printer.warn(format!(
            "the shell has the local go and no locked modules: {fallback}{hint}"
        ));
    }
    let toolchain = &environment.toolchain;
    let mut path: Vec<PathBuf> = environment.compilers.iter().cloned().collect();
    path.push(toolchain.goroot.join("bin"));
    if let Some(folder) = toolchain.go.parent() {
        path.push(folder.to_owned());
    }
    path.extend(
        std::env::var_os("PATH")
            .map(|value| std::env::split_paths(&value).collect::<Vec<_>>())
            .unwrap_or_default(),
    );
    let path = std::env::join_paths(path).context("PATH holds a folder with `:` in its name")?;
    let shell = std::env::var_os("SHELL")
        .filter(|shell| !shell.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/bin/sh"));
    let mut command = std::process::Command::new(&shell);
    if let Some(text) = &args.command {
        command.arg("-c").arg(text);
    } else {
        printer.status(format!(
            "kiln shell: {} for {} (package `{}`); `exit` leaves",
            toolchain.version, package.platform, package.key
        ));
    }
    command.envs(&environment.variables);
    command.env("PATH", path).env("KILN_SHELL", &package.key);
    session.release_guard();
    let error = command.exec();
    Err(error).with_context(|| format!("cannot start the shell {}", shell.display()))
}
