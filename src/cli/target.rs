//! What a command's IMAGE argument names: an image archive file, or an image target of a
//! project (its only image when none is named), built first if needed.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use super::Printer;
use crate::project::{OnlyImage, Resolved, TargetSpec};
use crate::session::Session;

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
    let status = |message: &str| printer.status(message);
    let mut session = Session::open(&status)?;
    let project = session.project(&spec)?;
    if spec.name.is_none() {
        match project.only_image() {
            OnlyImage::Only(only) => spec.name = Some(only.to_owned()),
            OnlyImage::None => bail!(crate::diagnostic::Hinted::new(
                format!("the project at {} defines no image", project.root.display()),
                "add an [images.NAME] section to kiln.toml, or give an image archive"
            )),
            OnlyImage::Several(several) => bail!(crate::diagnostic::Hinted::new(
                format!(
                    "the project defines several images ({}); say which",
                    several.join(", ")
                ),
                format!("kiln {command} .#{}", several[0])
            )),
        }
    }
    if let Resolved::Package(package) = project.resolve(spec.name.as_deref())? {
        bail!(crate::diagnostic::Hinted::new(
            format!(
                "`{}` is a package; `kiln {command}` takes an image",
                package.key
            ),
            format!(
                "kiln {command} .#IMAGE, an [images.*] section whose package is `{}`",
                package.key
            )
        ));
    }
    let (_, built) = session
        .build(&spec)
        .with_context(|| format!("cannot build {spec}"))?;
    Ok(built.path)
}
