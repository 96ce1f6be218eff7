//! `kiln gc` and `kiln store`: look after the store.

use std::io::Write;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};

use super::Printer;
use super::style::format_bytes;
use crate::project::{Resolved, TargetSpec};
use crate::session::Session;
use crate::store::Store;

const GC_AFTER_HELP: &str = "\
Roots are the `result` links `kiln build` made (and -o links); an output a live link points
at is kept, with everything else in the store removed, as are links that no longer point into
the store and debris of interrupted builds. Builds wait while gc runs and gc waits for running
builds, so it is safe beside them.";

#[derive(Debug, Args)]
#[command(after_help = GC_AFTER_HELP)]
pub struct GcArgs {
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    command: StoreCommand,
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Re-hash every output and compare it with what was recorded when it was built.
    ///
    /// Exits 1 when an output is corrupt or unrecorded.
    Verify {
        /// Print the report as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Print the store path a target builds to (building nothing).
    Path {
        /// NAME, .#NAME or PATH#NAME [default: packages.default].
        #[arg(value_name = "TARGET")]
        target: Option<TargetSpec>,
    },
    /// Print the kiln home (`$KILN_HOME`, else `$XDG_CACHE_HOME/kiln`, else `~/.cache/kiln`).
    Home,
    /// Print the NAR hash of any file or folder in SRI form (`sha256-…`), as `nix hash path`
    /// prints it and gomod2nix.toml records it.
    Hash {
        /// The file or folder.
        path: std::path::PathBuf,
    },
}

pub fn gc(args: GcArgs, printer: &Printer) -> Result<()> {
    let store = Store::open()?;
    let report = store.gc(&crate::lock::pinned_outputs, || {
        printer.status("waiting for running builds to finish")
    })?;
    if args.json {
        serde_json::to_writer_pretty(std::io::stdout().lock(), &report)?;
        writeln!(std::io::stdout())?;
    }
    for path in &report.removed_paths {
        printer.status(format!("removed {path}"));
    }
    printer.status(format!(
        "freed {} ({} removed, {} kept, {} stale links and {} interrupted builds cleared)",
        format_bytes(report.freed_bytes),
        report.removed_paths.len(),
        report.kept_paths,
        report.stale_roots,
        report.debris
    ));
    if report.projects_removed + report.build_folders_removed > 0 {
        printer.status(format!(
            "cleared the folders of {} projects that are gone and {} spare build folders",
            report.projects_removed, report.build_folders_removed
        ));
    }
    Ok(())
}

pub fn store(args: StoreArgs, printer: &Printer) -> Result<()> {
    match args.command {
        StoreCommand::Verify { json } => verify(json, printer),
        StoreCommand::Path { target } => path(target.unwrap_or_default(), printer),
        StoreCommand::Hash { path } => {
            let hash = crate::nar::nar_hash(&path)?;
            writeln!(std::io::stdout(), "{}", hash.sri())?;
            Ok(())
        }
        StoreCommand::Home => {
            writeln!(
                std::io::stdout(),
                "{}",
                crate::store::kiln_home()?.display()
            )?;
            Ok(())
        }
    }
}

fn verify(json: bool, printer: &Printer) -> Result<()> {
    let store = Store::open()?;
    let report = store.verify()?;
    if json {
        serde_json::to_writer_pretty(std::io::stdout().lock(), &report)?;
        writeln!(std::io::stdout())?;
    }
    for corruption in &report.corrupt {
        printer.status(format!(
            "corrupt: {} (recorded {}, now {})",
            corruption.path, corruption.expected, corruption.actual
        ));
    }
    for path in &report.unrecorded {
        printer.status(format!("unrecorded: {path}"));
    }
    for path in &report.debris {
        printer.status(format!(
            "debris of an interrupted build: {path} (`kiln gc` removes it)"
        ));
    }
    if !report.is_clean() {
        bail!(crate::diagnostic::Hinted::new(
            format!(
                "{} of {} outputs corrupt, {} unrecorded in {}",
                report.corrupt.len(),
                report.checked,
                report.unrecorded.len(),
                store.store_dir().display()
            ),
            "`kiln gc` after removing their links, then rebuild"
        ));
    }
    printer.status(format!("{} outputs verified, all intact", report.checked));
    Ok(())
}

fn path(spec: TargetSpec, printer: &Printer) -> Result<()> {
    let status = |message: &str| printer.status(message);
    let mut session = Session::open_unguarded(&status)?;
    let (project, builder) = session.project_and_builder(&spec)?;
    let name = match project.resolve(spec.name.as_deref())? {
        Resolved::Package(package) => builder.plan_package(project, package)?.name().clone(),
        Resolved::Image(image) => builder.plan_image(project, image)?.name().clone(),
    };
    let store = session.store();
    if !store.contains(&name) {
        printer.warn(format!("not built yet; `kiln build {spec}` builds it"));
    }
    writeln!(std::io::stdout(), "{}", store.path(&name).display())?;
    Ok(())
}
