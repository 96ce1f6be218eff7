//! `kiln sbom`: print the SPDX document stored beside an image.

use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::Args;

use super::Printer;
use super::target::image_archive;
use crate::oci::spec::{Descriptor, Manifest, Platform, media_type};
use crate::sbom::SPDX_MEDIA_TYPE;
use crate::transport::{BlobSource, LocalSource};

const AFTER_HELP: &str = "\
IMAGE is an image target of the project (NAME, .#NAME or PATH#NAME; built first if needed), an
image archive (such as `result`) or an OCI layout folder; with nothing given, the project's
only image. The SBOM is the SPDX 2.3 JSON document kiln stored beside the image (an OCI
artifact whose subject is the image manifest); it is printed as stored, byte for byte. For a
multi-platform image, --platform picks the platform (default: this machine's).

Examples:
  kiln sbom                         the project's only image
  kiln sbom result > app.spdx.json
  kiln sbom .#container --platform linux/arm64";

#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct SbomArgs {
    /// An image target, image archive or OCI layout [default: the project's only image].
    #[arg(value_name = "IMAGE")]
    image: Option<String>,

    /// For a multi-platform image, the platform whose SBOM to print (OS/ARCH[/VARIANT]).
    #[arg(long, value_name = "OS/ARCH")]
    platform: Option<Platform>,
}

pub fn run(args: SbomArgs, printer: &Printer) -> Result<()> {
    let path = match args.image.as_deref() {
        Some(text) if Path::new(text).is_dir() => {
            if let Some(error) = super::target::not_an_image(Path::new(text), "sbom") {
                return Err(error.into());
            }
            Path::new(text).to_owned()
        }
        other => image_archive(other, "sbom", printer)?,
    };
    let bytes = read_sbom(&path, args.platform.as_ref(), printer)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&bytes)?;
    if std::io::stdout().is_terminal() {
        writeln!(stdout)?;
    }
    Ok(())
}

/// The SPDX document stored in the layout or archive at `path` for its image (for an index,
/// the manifest of `platform`, by default this machine's).
fn read_sbom(path: &Path, platform: Option<&Platform>, printer: &Printer) -> Result<Vec<u8>> {
    let location = path.display().to_string();
    let mut source = LocalSource::open(path, location.clone())?;
    let (root, _) = source.select(None)?;
    let subject = image_manifest(&source, &root, platform)
        .with_context(|| format!("cannot find the image of {location}"))?;
    let referrers: Vec<Descriptor> = source
        .referrers(&[subject.digest])?
        .into_iter()
        .filter(|referrer| referrer.artifact_type.as_deref() == Some(SPDX_MEDIA_TYPE))
        .collect();
    let Some(artifact) = referrers.first() else {
        bail!(
            "{location} holds no SBOM for {} (built with sbom = false?)",
            subject.digest
        );
    };
    if referrers.len() > 1 {
        printer.warn(format!(
            "{location} holds {} SBOMs for {}; printing the first, {}",
            referrers.len(),
            subject.digest,
            artifact.digest
        ));
    }
    let manifest_bytes = source.read_document(artifact)?;
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes).with_context(|| {
        format!(
            "{location}: the SBOM manifest {} is invalid",
            artifact.digest
        )
    })?;
    let Some(layer) = manifest
        .layers
        .iter()
        .find(|layer| layer.media_type == SPDX_MEDIA_TYPE)
    else {
        bail!(
            "{location}: the SBOM artifact {} has no `{SPDX_MEDIA_TYPE}` layer",
            artifact.digest
        );
    };
    // Read whole and checked against its digest.
    Ok(source.read_document(layer)?)
}

/// The image manifest the SBOM describes: `root` itself, or the entry of the index `root`
/// for `platform` (this machine's when none is asked for).
fn image_manifest(
    source: &LocalSource,
    root: &Descriptor,
    platform: Option<&Platform>,
) -> Result<Descriptor> {
    if media_type::is_manifest(&root.media_type) {
        if let Some(wanted) = platform
            && let Some(offered) = &root.platform
            && !wanted.accepts(offered)
        {
            bail!("the image is for {offered}, not {wanted}");
        }
        return Ok(root.clone());
    }
    if !media_type::is_index(&root.media_type) {
        bail!(
            "{} has media type `{}`, neither a manifest nor an index",
            root.digest,
            root.media_type
        );
    }
    use crate::transport::PlatformPick;
    let wanted = platform.cloned().unwrap_or_else(Platform::host);
    match crate::transport::pick_platform(source, root, &wanted)? {
        PlatformPick::Picked { entry, .. } => Ok(*entry),
        PlatformPick::Image => unreachable!("an index, checked above"),
        PlatformPick::Missing { listing } if platform.is_some() => {
            bail!("the image has no {wanted} manifest (it has {listing})")
        }
        PlatformPick::Missing { listing } => bail!(crate::diagnostic::Hinted::new(
            format!("the image has no manifest for this machine ({wanted}); it has {listing}"),
            "pick one with --platform OS/ARCH"
        )),
    }
}
