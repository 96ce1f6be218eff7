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

/// For an archive holding an index of several platforms: a temporary docker-archive of the
/// engine's platform alone, named as the index is (`app:1`, not `app:1-linux-amd64`). `None`
/// for a single image, which loads as it is.
fn engine_platform_image(
    host: &Host,
    archive: &std::path::Path,
    printer: &Printer,
) -> Result<Option<tempfile::NamedTempFile>> {
    use crate::oci::spec::{Index, media_type};
    use crate::transport::{BlobSource, LocalSource, walk, write_archive};
    let mut source = LocalSource::open(archive, archive.display().to_string())?;
    let (root, names) = source.select(None)?;
    if !media_type::is_index(&root.media_type) {
        return Ok(None);
    }
    let index: Index = serde_json::from_slice(&source.read_document(&root)?)
        .with_context(|| format!("{}: the image index is not valid", archive.display()))?;
    let platform = engine::platform(host)?;
    let Some(chosen) = index.manifest_for(&platform) else {
        bail!(
            "{} has no image for the engine's platform {platform} (it has {})\nhint: add \"{platform}\" to the image's `platforms`",
            archive.display(),
            index.platforms_listing()
        );
    };
    printer.status(format!(
        "picked {} of {} (the engine's platform)",
        chosen
            .platform
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        index.platforms_listing()
    ));
    let graph = walk(&source, chosen.clone(), Default::default())?;
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
