//! `kiln load`: put an image into the Docker Engine (or podman's Docker-compatible socket).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use super::Printer;
use super::build::{Projects, build_target};
use crate::build::Builder;
use crate::engine::{self, Host};
use crate::project::{Resolved, TargetSpec};
use crate::store::Store;

const AFTER_HELP: &str = "\
IMAGE is an image target of the project (NAME, .#NAME or PATH#NAME; built first if needed) or
an image archive file (a docker-archive tar such as `result`). With nothing given, the
project's only image. The archive streams to the engine's `POST /images/load` at DOCKER_HOST
(unix:///path or tcp://host:port), else unix:///var/run/docker.sock; podman's
Docker-compatible socket works the same (`podman system service`). The engine's messages
(`Loaded image: NAME:TAG`) go to stdout.

Examples:
  kiln load                       build and load the project's image
  kiln load .#container
  DOCKER_HOST=unix://$XDG_RUNTIME_DIR/podman/podman.sock kiln load result";

#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct LoadArgs {
    /// An image target or an image archive file [default: the project's only image].
    #[arg(value_name = "IMAGE")]
    image: Option<String>,
}

pub fn run(args: LoadArgs, printer: &Printer) -> Result<()> {
    let host = Host::from_env()?;
    let archive = image_archive(args.image.as_deref(), "load", printer)?;
    printer.status(format!("loading {} into {host}", archive.display()));
    let messages = engine::load(&host, &archive)
        .with_context(|| format!("cannot load {}", archive.display()))?;
    for message in messages {
        println!("{message}");
    }
    Ok(())
}

/// The image archive a command works on: an archive file given by path, else an image target
/// of the project (its only image when none is named), built first if needed.
pub fn image_archive(given: Option<&str>, command: &str, printer: &Printer) -> Result<PathBuf> {
    if let Some(text) = given
        && PathBuf::from(text).is_file()
    {
        return Ok(PathBuf::from(text));
    }
    let mut spec: TargetSpec = match given {
        Some(text) => text.parse()?,
        None => TargetSpec::default(),
    };
    let store = Store::open()?;
    let _guard = store.build_guard(|| printer.status("waiting for `kiln gc` to finish"))?;
    let status = |message: &str| printer.status(message);
    let builder = Builder::new(&store, &status);
    let mut projects = Projects::new();
    let project = projects.load(&spec)?;
    if spec.name.is_none() {
        let images: Vec<&String> = project.images.keys().collect();
        match images.as_slice() {
            [only] => spec.name = Some((*only).clone()),
            [] => bail!(
                "the project at {} defines no image\nhint: add an [images.NAME] section to kiln.toml, or give an image archive",
                project.root.display()
            ),
            several => bail!(
                "the project defines several images ({}); say which\nhint: kiln {command} .#{}",
                several
                    .iter()
                    .map(|name| name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                several[0]
            ),
        }
    }
    if let Resolved::Package(package) = project.resolve(spec.name.as_deref())? {
        bail!(
            "`{}` is a package; `kiln {command}` takes an image\nhint: kiln {command} .#IMAGE, an [images.*] section whose package is `{}`",
            package.key,
            package.key
        );
    }
    let (_, built) = build_target(&builder, &mut projects, &spec)
        .with_context(|| format!("cannot build {spec}"))?;
    Ok(built.path)
}
