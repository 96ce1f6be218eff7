//! Targets: what `kiln build`, `run` and `store path` act on.
//!
//! `NAME` or `.#NAME` is a package or image of the project in the current folder;
//! `path/to/project#NAME` one of another project; `path#` or nothing is the package
//! `default`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::config::{ConfigError, Image, PROJECT_FILE, Package, Project, did_you_mean};
use crate::diagnostic::Hint;

/// A target as written on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetSpec {
    /// The project folder (`.` when not given).
    pub project: PathBuf,
    /// The package or image; `None` for `packages.default`.
    pub name: Option<String>,
}

impl Default for TargetSpec {
    fn default() -> Self {
        TargetSpec {
            project: PathBuf::from("."),
            name: None,
        }
    }
}

impl FromStr for TargetSpec {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (project, name) = match text.split_once('#') {
            Some((project, name)) => (if project.is_empty() { "." } else { project }, name),
            None => (".", text),
        };
        Ok(TargetSpec {
            project: PathBuf::from(project),
            name: (!name.is_empty()).then(|| name.to_owned()),
        })
    }
}

impl std::fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}#{}",
            self.project.display(),
            self.name.as_deref().unwrap_or("default")
        )
    }
}

/// What a target names.
#[derive(Clone, Copy, Debug)]
pub enum Resolved<'a> {
    Package(&'a Package),
    Image(&'a Image),
}

impl Resolved<'_> {
    pub fn key(&self) -> &str {
        match self {
            Resolved::Package(package) => &package.key,
            Resolved::Image(image) => &image.key,
        }
    }
}

/// A target the project does not define. A variant's hint is [`Hint::hint`]'s, not part of
/// its message.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{} has no package or image `{name}`; it has: {}", .file.display(), .targets.join(", "))]
    Unknown {
        file: PathBuf,
        name: String,
        targets: Vec<String>,
        /// The target probably meant.
        hint: Option<String>,
    },
    #[error("{} has no `packages.default`; name a target: {}", .file.display(), .targets.join(", "))]
    NoDefault { file: PathBuf, targets: Vec<String> },
}

impl Hint for TargetError {
    fn hint(&self) -> Option<String> {
        match self {
            TargetError::Unknown { hint, .. } => hint.clone(),
            TargetError::NoDefault { targets, .. } => {
                // `targets` reads `name (package)`; the example names the first.
                let first = targets
                    .first()
                    .map(|target| target.split(' ').next().unwrap_or(""))
                    .unwrap_or("NAME");
                Some(format!("e.g. `kiln build .#{first}`"))
            }
        }
    }
}

impl Project {
    /// Every target, as `name (package)` / `name (image)`.
    pub fn target_list(&self) -> Vec<String> {
        self.packages
            .keys()
            .map(|key| format!("{key} (package)"))
            .chain(self.images.keys().map(|key| format!("{key} (image)")))
            .collect()
    }

    /// Resolve a target name (`None` for the default package).
    pub fn resolve(&self, name: Option<&str>) -> Result<Resolved<'_>, TargetError> {
        let file = self.root.join(super::config::PROJECT_FILE);
        let Some(name) = name else {
            return self
                .packages
                .get("default")
                .map(Resolved::Package)
                .ok_or_else(|| TargetError::NoDefault {
                    file,
                    targets: self.target_list(),
                });
        };
        if let Some(package) = self.packages.get(name) {
            return Ok(Resolved::Package(package));
        }
        if let Some(image) = self.images.get(name) {
            return Ok(Resolved::Image(image));
        }
        let names = self
            .packages
            .keys()
            .chain(self.images.keys())
            .map(String::as_str);
        Err(TargetError::Unknown {
            file,
            name: name.to_owned(),
            targets: self.target_list(),
            hint: did_you_mean(name, names),
        })
    }
}

/// Which image a command that takes one acts on when none is named.
#[derive(Debug, PartialEq, Eq)]
pub enum OnlyImage<'a> {
    /// The project's one image.
    Only(&'a str),
    /// The project defines none.
    None,
    /// The project defines several, sorted: the user must say which.
    Several(Vec<&'a str>),
}

impl Project {
    /// The project's only image, if it has exactly one.
    pub fn only_image(&self) -> OnlyImage<'_> {
        let images: Vec<&str> = self.images.keys().map(String::as_str).collect();
        match images.as_slice() {
            [only] => OnlyImage::Only(only),
            [] => OnlyImage::None,
            _ => OnlyImage::Several(images),
        }
    }
}

/// Projects loaded once per run, found from a target's folder.
#[derive(Debug, Default)]
pub struct Projects {
    loaded: BTreeMap<PathBuf, Project>,
}

impl Projects {
    pub fn new() -> Self {
        Projects::default()
    }

    /// The project a target names: the folder given (relative to `current`), or for `.` the
    /// nearest folder upwards holding kiln.toml.
    pub fn load(&mut self, spec: &TargetSpec, current: &Path) -> Result<&Project, ConfigError> {
        let folder = project_folder(spec, current);
        let folder = if spec.project == Path::new(".") {
            folder
                .ancestors()
                .find(|ancestor| ancestor.join(PROJECT_FILE).is_file())
                .map(Path::to_owned)
                .unwrap_or(folder)
        } else {
            folder
        };
        if !self.loaded.contains_key(&folder) {
            let project = Project::load(&folder)?;
            self.loaded.insert(folder.clone(), project);
        }
        Ok(&self.loaded[&folder])
    }
}

/// The project folder of a target, made absolute against `current` (and canonical when it
/// exists, so messages name `/work/app`, not `/work/app/./sub/..`).
pub fn project_folder(spec: &TargetSpec, current: &Path) -> PathBuf {
    let joined = if spec.project.is_absolute() {
        spec.project.clone()
    } else {
        current.join(&spec.project)
    };
    std::fs::canonicalize(&joined).unwrap_or(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_forms() {
        let cases = [
            ("", ".", None),
            ("container", ".", Some("container")),
            (".#container", ".", Some("container")),
            ("#container", ".", Some("container")),
            ("../other#app", "../other", Some("app")),
            ("../other#", "../other", None),
        ];
        for (text, project, name) in cases {
            let spec: TargetSpec = text.parse().unwrap();
            assert_eq!(spec.project, PathBuf::from(project), "{text}");
            assert_eq!(spec.name.as_deref(), name, "{text}");
        }
    }
}
