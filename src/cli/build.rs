//! `kiln build`: build targets into the store and link them.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use super::Printer;
use crate::oci::reference::Reference;
use crate::project::TargetSpec;
use crate::session::Session;
use crate::store::{Realised, Store, replace_symlink};

const AFTER_HELP: &str = "\
Targets: NAME or .#NAME is a package or image of this project (kiln.toml here or in a parent
folder); PATH#NAME one of the project at PATH; nothing is `packages.default`.

The Go build is hermetic (a cleared environment, GOPROXY=off, -trimpath, CGO off unless the
package has `cgo = true`) and its output lands in the store at <hash>-<name>-<version>, the
hash covering every input: sources as git sees them, the kiln.toml section, go.mod, go.sum and
vendor/, the toolchain, the platform and flags. An unchanged target is not rebuilt, and Go
does not run.

A `cgo = true` package builds with CGO_ENABLED=1 and the Zig release kiln.lock pins ([[zig]],
written by `kiln lock`) as its C compiler, for every platform (Linux: amd64, arm64, arm, 386,
riscv64, ppc64le, s390x), linked statically against musl, or with `c-libc = \"glibc\"`
dynamically against glibc 2.31 (or `glibc = \"2.MINOR\"`); the Zig identity is part of its
hash. No C flag, pkg-config path or compiler of this machine reaches the build. An image of a
dynamically linked program must have its loader (PT_INTERP, /lib64/ld-linux-x86-64.so.2, …)
in its base: scratch and `static` have none, and the image is refused before it is made.

An image target's output is a docker-archive tar: `docker load < result` works; --push REF
sends it on to a registry (see `kiln push --help`).";

#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct BuildArgs {
    /// What to build: NAME, .#NAME or PATH#NAME [default: packages.default].
    #[arg(value_name = "TARGET")]
    targets: Vec<TargetSpec>,

    /// The link to the output; with several targets, LINK-NAME for each.
    #[arg(
        short = 'o',
        long = "out-link",
        value_name = "LINK",
        default_value = "result"
    )]
    out_link: PathBuf,

    /// Make no link (the output can then be garbage-collected).
    #[arg(long)]
    no_link: bool,

    /// Print each output's store path on stdout.
    #[arg(long)]
    print_out_paths: bool,

    /// Print what was built as JSON on stdout: target, store path, link, whether it was built
    /// now.
    #[arg(long, conflicts_with = "print_out_paths")]
    json: bool,

    /// Push the image to REF once built (one image target only; see `kiln push`).
    #[arg(long, value_name = "REF")]
    push: Option<String>,

    /// With --push: allow plain HTTP and unverified TLS for a registry not on loopback.
    #[arg(long, requires = "push")]
    insecure: bool,
}

pub fn run(args: BuildArgs, printer: &Printer) -> Result<()> {
    let status = |message: &str| printer.status(message);
    let mut session = Session::open(&status, Box::new(printer.clone()))?;
    let targets = if args.targets.is_empty() {
        vec![TargetSpec::default()]
    } else {
        args.targets.clone()
    };
    let mut outputs = Vec::new();
    for spec in &targets {
        let (key, built) = session
            .build(spec)
            .with_context(|| format!("cannot build {spec}"))?;
        outputs.push((key, built));
    }
    if let Some(text) = &args.push {
        let [(_, built)] = outputs.as_slice() else {
            bail!(
                "--push takes one image target; {} were given",
                outputs.len()
            );
        };
        if !built.path.is_file() {
            bail!(
                "--push needs an image target, and {} is a package",
                targets[0]
            );
        }
        let reference: Reference = text.strip_prefix("docker://").unwrap_or(text).parse()?;
        let options = super::push::RegistryArgs {
            tags: Vec::new(),
            insecure: args.insecure,
            jobs: 4,
            json: false,
            compression: None,
        };
        // The link is made first, so what was pushed is also what `result` holds.
        finish_links(&args, session.store(), &outputs, &targets, printer)?;
        return super::push::push_path(&built.path, &reference, &options, printer);
    }
    finish_links(&args, session.store(), &outputs, &targets, printer)
}

fn finish_links(
    args: &BuildArgs,
    store: &Store,
    outputs: &[(String, Realised)],
    targets: &[TargetSpec],
    printer: &Printer,
) -> Result<()> {
    let several = outputs.len() > 1;
    let mut report = Vec::new();
    for ((key, built), spec) in outputs.iter().zip(targets) {
        let mut link = None;
        if !args.no_link {
            let path = if several {
                PathBuf::from(format!("{}-{key}", args.out_link.display()))
            } else {
                args.out_link.clone()
            };
            replace_symlink(&built.path, &path)?;
            store.add_root(&path)?;
            printer.status(format!(
                "{} {} -> {}",
                if built.fresh { "built" } else { "up to date:" },
                path.display(),
                built.path.display()
            ));
            link = Some(path);
        } else {
            printer.status(format!(
                "{} {}",
                if built.fresh { "built" } else { "up to date:" },
                built.path.display()
            ));
        }
        if args.print_out_paths {
            writeln!(std::io::stdout(), "{}", built.path.display())?;
        }
        report.push(serde_json::json!({
            "target": spec.to_string(),
            "name": key,
            "path": built.path,
            "link": link,
            "built": built.fresh,
        }));
    }
    if args.json {
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut stdout, &report)?;
        writeln!(stdout)?;
    }
    Ok(())
}
