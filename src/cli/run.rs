//! `kiln run`: build a package, then replace kiln with its program.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;

use anyhow::{Context, Result, bail};
use clap::Args;

use super::Printer;
use crate::project::{Resolved, TargetSpec};
use crate::session::Session;

const AFTER_HELP: &str = "\
The program runs in the current folder with kiln's environment and ARGS; its exit code is
kiln's. Which program: --program, else the package's `program` (kiln.toml), else the only one
it builds.

Examples:
  kiln run                      run packages.default
  kiln run .#server -- --port 8080";

#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct RunArgs {
    /// The package to run: NAME, .#NAME or PATH#NAME [default: packages.default].
    #[arg(value_name = "TARGET")]
    target: Option<TargetSpec>,

    /// Which of the package's programs to run.
    #[arg(long, value_name = "NAME")]
    program: Option<String>,

    /// Arguments for the program (after `--`).
    #[arg(last = true, value_name = "ARGS")]
    arguments: Vec<OsString>,
}

pub fn run(args: RunArgs, printer: &Printer) -> Result<()> {
    let spec = args.target.unwrap_or_default();
    let status = |message: &str| printer.status(message);
    let mut session = Session::open(&status, Box::new(printer.clone()))?;
    let package = {
        let project = session.project(&spec)?;
        match project.resolve(spec.name.as_deref())? {
            Resolved::Package(package) => package.clone(),
            Resolved::Image(image) => bail!(crate::diagnostic::Hinted::new(
                format!(
                    "`{}` is an image; `kiln run` runs a package's program",
                    image.key
                ),
                format!(
                    "`kiln run .#{}` runs its package; `kiln build .#{} && docker load < result` runs the image",
                    image.package, image.key
                )
            )),
        }
    };
    let programs: Vec<&str> = package.programs().collect();
    let program = match args.program.as_deref().or(package.program.as_deref()) {
        Some(program) if programs.contains(&program) => program.to_owned(),
        Some(program) => {
            let message = format!(
                "package `{}` has no program `{program}`; it has: {}",
                package.key,
                programs.join(", ")
            );
            match crate::project::config::did_you_mean(program, programs.iter().copied()) {
                Some(hint) => bail!(crate::diagnostic::Hinted::new(message, hint)),
                None => bail!(message),
            }
        }
        None => bail!(crate::diagnostic::Hinted::new(
            format!(
                "package `{}` builds several programs ({}); which one?",
                package.key,
                programs.join(", ")
            ),
            format!(
                "`kiln run --program {}`, or set `program` in [packages.{}]",
                programs.first().copied().unwrap_or("NAME"),
                package.key
            )
        )),
    };
    let (_, built) = session
        .build(&spec)
        .with_context(|| format!("cannot build {spec}"))?;
    let executable = built.path.join("bin").join(&program);
    if !executable.is_file() {
        let contents: Vec<String> = std::fs::read_dir(built.path.join("bin"))
            .map(|entries| {
                entries
                    .flatten()
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        bail!(crate::diagnostic::Hinted::new(
            format!(
                "{} has no program `{program}`; its bin/ holds: {}",
                built.path.display(),
                if contents.is_empty() {
                    "nothing".to_owned()
                } else {
                    contents.join(", ")
                }
            ),
            "`kiln store verify` checks the store"
        ));
    }
    // The gc lock is not held across exec: a `kiln gc` beside a long-running program may unlink
    // its unrooted output, which the running program does not notice (its inode lives on).
    session.release_guard();
    let error = std::process::Command::new(&executable)
        .arg0(&program)
        .args(&args.arguments)
        .exec();
    Err(error).with_context(|| format!("cannot run {}", executable.display()))
}
