//! What a command's IMAGE argument names: an image archive file, or an image target of a
//! project (its only image when none is named), built first if needed.

use std::path::{Path, PathBuf};

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
    if let Some(text) = given
        && let Some(error) = not_an_image(Path::new(text), command)
    {
        return Err(error.into());
    }
    let mut spec: TargetSpec = match given {
        Some(text) => text.parse()?,
        None => TargetSpec::default(),
    };
    let status = |message: &str| printer.status(message);
    let mut session = Session::open(&status, Box::new(printer.clone()))?;
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

/// What a folder given as IMAGE is when it is no image: a package's output (a `result` link of
/// `kiln build` on a package, programs in bin/), or some other folder. `None` for a folder
/// with a layout's files (`oci-layout`, `index.json` or `manifest.json`), which the commands
/// that read layouts take, and whose faults the layout reader names.
pub fn not_an_image(path: &Path, command: &str) -> Option<crate::diagnostic::Hinted> {
    let layout_file = [
        crate::oci::layout::OCI_LAYOUT_FILE,
        crate::oci::layout::INDEX_FILE,
        crate::oci::layout::DOCKER_MANIFEST_FILE,
    ]
    .iter()
    .any(|name| path.join(name).is_file());
    if !path.is_dir() || layout_file {
        return None;
    }
    let programs: Vec<String> = std::fs::read_dir(path.join("bin"))
        .map(|entries| {
            let mut names: Vec<String> = entries
                .flatten()
                .map(|entry| format!("bin/{}", entry.file_name().to_string_lossy()))
                .collect();
            names.sort();
            names
        })
        .unwrap_or_default();
    let shown = path.display();
    if programs.is_empty() {
        return Some(crate::diagnostic::Hinted::new(
            format!(
                "{shown} is not an image: it has neither `index.json` (OCI layout) nor `manifest.json` (docker-archive)"
            ),
            format!(
                "give `kiln {command}` an image archive (`kiln build .#IMAGE` writes one at `result`), an OCI layout, or an image target"
            ),
        ));
    }
    // The images of the project here, to name the one to build.
    let images: Vec<String> = crate::project::Project::load(Path::new("."))
        .map(|project| project.images.keys().cloned().collect())
        .unwrap_or_default();
    let build = match images.as_slice() {
        [only] => format!("`kiln build .#{only}`"),
        [] => "an [images.NAME] section in kiln.toml, then `kiln build .#NAME`".to_owned(),
        several => format!("`kiln build .#IMAGE` (one of {})", several.join(", ")),
    };
    Some(crate::diagnostic::Hinted::new(
        format!(
            "{shown} is a package's output (its programs: {}), not an image",
            programs.join(", ")
        ),
        format!(
            "build an image of it with {build}; `result` then names the image, and `kiln {command} result` works"
        ),
    ))
}
