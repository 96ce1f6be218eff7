//! `kiln load`: put an image into the Docker Engine (or podman's Docker-compatible socket).

use anyhow::{Context, Result, bail};
use clap::Args;

use super::Printer;
use super::target::image_archive;
use crate::engine::{self, Host};

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
    // A multi-platform image: only the engine's platform, under the image's own name.
    let picked = engine_platform_image(&host, &archive, printer)
        .with_context(|| format!("cannot load {}", archive.display()))?;
    let loaded = picked
        .as_ref()
        .map_or(archive.as_path(), |file| file.path());
    printer.status(format!("loading {} into {host}", archive.display()));
    let messages = engine::load(&host, loaded)
        .with_context(|| format!("cannot load {}", archive.display()))?;
    for message in messages {
        println!("{message}");
    }
    Ok(())
}

/// For an archive holding an index of several platforms: a temporary docker-archive of the
/// engine's platform alone, named as the index is (`app:1`, not `app:1-linux-amd64`). `None`
/// for a single image, which loads as it is.
fn engine_platform_image(
    host: &Host,
    archive: &std::path::Path,
    printer: &Printer,
) -> Result<Option<tempfile::NamedTempFile>> {
    use crate::transport::{LocalSource, PlatformPick, pick_platform, walk, write_archive};
    let mut source = LocalSource::open(archive, archive.display().to_string())?;
    let (root, names) = source.select(None)?;
    let platform = engine::platform(host)?;
    let (chosen, listing) = match pick_platform(&source, &root, &platform)? {
        PlatformPick::Image => return Ok(None),
        PlatformPick::Picked { entry, listing } => (*entry, listing),
        PlatformPick::Missing { listing } => bail!(crate::diagnostic::Hinted::new(
            format!(
                "{} has no image for the engine's platform {platform} (it has {listing})",
                archive.display()
            ),
            format!("add \"{platform}\" to the image's `platforms`")
        )),
    };
    printer.status(format!(
        "picked {} of {listing} (the engine's platform)",
        chosen
            .platform
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
    ));
    let graph = walk(&source, chosen, Default::default())?;
    let name = names
        .references
        .first()
        .map(|text| text.parse::<crate::oci::reference::Reference>())
        .transpose()
        .with_context(|| format!("{}: the image's name is not valid", archive.display()))?;
    let temp = tempfile::Builder::new()
        .prefix("kiln-load-")
        .suffix(".tar")
        .tempfile()
        .context("cannot make a temporary file for the engine's platform")?;
    write_archive(
        &source,
        &graph,
        temp.path(),
        crate::oci::archive::ArchiveKind::Docker,
        graph.layout_entry(name, None),
    )?;
    Ok(Some(temp))
}
