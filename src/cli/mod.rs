//! The command line: argument definitions, dispatch, and the one place that prints errors and
//! picks the exit code.
//!
//! Conventions: data on stdout, logs and progress on stderr; progress bars only when stderr is
//! a terminal; `NO_COLOR` turns colour off; `--quiet` leaves only errors and data. Exit codes:
//! 0 success, 1 error, 2 bad usage, 130 interrupted.

mod build;
mod cache;
mod image;
mod init;
mod inspect;
mod load;
mod lock;
mod push;
mod run;
mod sbom;
mod shell;
mod store;
mod style;
mod target;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use style::Printer;

/// kiln builds Go applications into minimal, bit-for-bit reproducible container images.
#[derive(Debug, Parser)]
#[command(name = "kiln", version, about, max_term_width = 100)]
struct Cli {
    /// Print only errors and data: no progress bars, no summaries.
    #[arg(short, long, global = true)]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a Go project: go.mod, main.go, main_test.go, kiln.toml, .gitignore.
    Init(init::InitArgs),
    /// Fetch, verify and pin the project's Go modules and base images in kiln.lock.
    Lock(lock::LockArgs),
    /// Build packages and images of a project into the store and link them (`result`).
    Build(build::BuildArgs),
    /// Build a package, then run its program.
    Run(run::RunArgs),
    /// Enter the project's development environment: kiln's Go and its settings.
    Shell(shell::ShellArgs),
    /// Build an image from files: no project, no engine.
    Image(Box<image::ImageArgs>),
    /// Load an image into the Docker Engine or podman (at DOCKER_HOST).
    Load(load::LoadArgs),
    /// Push an image to a registry.
    Push(push::PushArgs),
    /// Copy an image between registries, OCI layouts and archives, digests preserved.
    Copy(push::CopyArgs),
    /// Show what an image holds: names, config, layers, files, and the bytes it wastes.
    Inspect(inspect::InspectArgs),
    /// Print an image's SBOM: the SPDX 2.3 JSON document stored beside it.
    Sbom(sbom::SbomArgs),
    /// Remove store outputs no `result` link needs.
    Gc(store::GcArgs),
    /// Look after the store: verify it, print paths, hash files as Nix does.
    Store(store::StoreArgs),
    /// The shared build cache in an OCI registry: signing keys, pushing outputs.
    Cache(cache::CacheArgs),
}

/// Run kiln with the process's arguments.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    crate::output::install_interrupt_handler();
    let printer = Printer::new(cli.quiet).with_flag_hints(flag_hints(&cli.command));
    // A reader that stops early (`kiln inspect … | head`) has what it wanted; an image
    // stream whose reader dies (`kiln image -o - | docker load` failing) is an error.
    let broken_pipe_is_success = matches!(cli.command, Command::Inspect(_) | Command::Sbom(_));
    let result = match cli.command {
        Command::Init(args) => init::run(args, &printer),
        Command::Lock(args) => lock::run(args, &printer),
        Command::Build(args) => build::run(args, &printer),
        Command::Run(args) => run::run(args, &printer),
        Command::Shell(args) => shell::run(args, &printer),
        Command::Gc(args) => store::gc(args, &printer),
        Command::Store(args) => store::store(args, &printer),
        Command::Image(args) => image::run(*args, &printer),
        Command::Inspect(args) => inspect::run(args, &printer),
        Command::Sbom(args) => sbom::run(args, &printer),
        Command::Load(args) => load::run(args, &printer),
        Command::Push(args) => push::run(args, &printer),
        Command::Copy(args) => push::copy(args, &printer),
        Command::Cache(args) => cache::run(args, &printer),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if broken_pipe_is_success && is_broken_pipe(&error) {
                return ExitCode::SUCCESS;
            }
            printer.error(&error);
            ExitCode::from(1)
        }
    }
}

/// The library's hints that a command's own flag answers, worded with the flag.
fn flag_hints(command: &Command) -> &'static [(&'static str, &'static str)] {
    const INSECURE: (&str, &str) = (
        crate::registry::error::NO_TLS_HINT,
        "for a registry without TLS, pass --insecure",
    );
    match command {
        Command::Lock(_) | Command::Inspect(_) | Command::Push(_) | Command::Copy(_) => &[INSECURE],
        Command::Image(_) => &[
            INSECURE,
            (
                crate::output::ONE_FILE_HINT,
                "this format writes one file; give a file name, or use `--format oci` for a folder",
            ),
        ],
        _ => &[],
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|error| error.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Whether progress bars may be drawn.
fn progress_allowed(printer: &Printer) -> bool {
    !printer.quiet() && std::io::stderr().is_terminal()
}
