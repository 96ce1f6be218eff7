//! Reading kiln.toml and the files it includes into a [`Project`].
//!
//! kiln.toml must say `schema = 1`; an included file may leave it out. Includes are relative
//! to the file naming them, must stay inside the project and must not include themselves;
//! each file's packages are checked as they are read, its images once every file is read
//! (an image may be of a package another file defines). A package or image defined twice,
//! or a name used by both a package and an image, is an error naming both places.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::error::{ConfigError, Position, SourceFile};
use super::model::{Package, Project};
use super::schema::{RawFile, RawImage, RawPackage};
use super::{PROJECT_FILE, SCHEMA, image, keys, package};

struct Loader {
    packages: BTreeMap<String, (Package, Position)>,
    raw_images: Vec<(String, Position, RawImage, usize)>,
    sources: Vec<SourceFile>,
    files: Vec<PathBuf>,
}

impl Project {
    /// Load the project whose kiln.toml is in `folder`.
    pub fn load(folder: &Path) -> Result<Project, ConfigError> {
        let main_file = folder.join(PROJECT_FILE);
        if !main_file.is_file() {
            // A named pipe there would block the read forever.
            if main_file.exists() {
                return Err(ConfigError::NotRegular(main_file));
            }
            return Err(ConfigError::NoProject(folder.to_owned()));
        }
        let text = read_config(&main_file)?;
        Project::from_text(folder, text)
    }

    /// Load the project in `folder` whose kiln.toml holds `text`: what [`Project::load`]
    /// does once it has read the file. Files that `text` includes are read from `folder`.
    pub fn from_text(folder: &Path, text: String) -> Result<Project, ConfigError> {
        let mut loader = Loader {
            packages: BTreeMap::new(),
            raw_images: Vec::new(),
            sources: Vec::new(),
            files: Vec::new(),
        };
        let main_file = folder.join(PROJECT_FILE);
        loader.load_text(&main_file, text, true, folder, &mut Vec::new())?;
        loader.finish(folder)
    }
}

fn read_config(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })
}

impl Loader {
    fn load_file(
        &mut self,
        path: &Path,
        is_main: bool,
        project: &Path,
        stack: &mut Vec<PathBuf>,
    ) -> Result<(), ConfigError> {
        let text = read_config(path)?;
        self.load_text(path, text, is_main, project, stack)
    }

    fn load_text(
        &mut self,
        path: &Path,
        text: String,
        is_main: bool,
        project: &Path,
        stack: &mut Vec<PathBuf>,
    ) -> Result<(), ConfigError> {
        let display = path
            .strip_prefix(project)
            .map(Path::to_owned)
            .unwrap_or_else(|_| path.to_owned());
        let source = SourceFile {
            path: display,
            text,
        };
        let raw: RawFile = toml::from_str(&source.text).map_err(|error| {
            let span = error.span().unwrap_or(0..0);
            let (message, hint) = keys::describe(&error, &source.text);
            source.error(&span, message, hint)
        })?;
        match (&raw.schema, is_main) {
            (Some(schema), _) if *schema.get_ref() != SCHEMA => {
                return Err(source.error(
                    &schema.span(),
                    format!(
                        "schema {} is not one this kiln reads (it reads schema {SCHEMA})",
                        schema.get_ref()
                    ),
                    Some("a newer kiln may read it; or write `schema = 1`".to_owned()),
                ));
            }
            (None, true) => {
                return Err(source.error(
                    &(0..0),
                    format!("{PROJECT_FILE} has no `schema`"),
                    Some(format!("start the file with `schema = {SCHEMA}`")),
                ));
            }
            _ => {}
        }
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_owned());
        stack.push(canonical);
        self.files.push(path.to_owned());
        let index = self.sources.len();
        self.sources.push(source);
        for (key, package) in raw.packages.unwrap_or_default() {
            self.add_package(index, key, package)?;
        }
        for (key, image) in raw.images.unwrap_or_default() {
            let location = self.sources[index].location(&key.span());
            let name = key.into_inner();
            if let Some(other) = self.raw_images.iter().find(|(other, ..)| *other == name) {
                return Err(ConfigError::At {
                    location,
                    message: format!("image `{name}` is defined twice: here and at {}", other.1),
                    hint: Some("rename one of them".to_owned()),
                });
            }
            self.raw_images
                .push((name, location, image.into_inner(), index));
        }
        for include in raw.include.unwrap_or_default() {
            let folder = path.parent().unwrap_or(project);
            let included = folder.join(include.get_ref());
            let source = &self.sources[index];
            if !included.is_file() {
                let problem = if included.exists() {
                    "is not a regular file"
                } else {
                    "does not exist"
                };
                return Err(source.error(
                    &include.span(),
                    format!("included file `{}` {problem}", include.get_ref()),
                    Some(
                        "`include` names files relative to this one, e.g. `include = [\"container.toml\"]`"
                            .to_owned(),
                    ),
                ));
            }
            let canonical = included.canonicalize().unwrap_or_else(|_| included.clone());
            if stack.contains(&canonical) {
                return Err(source.error(
                    &include.span(),
                    format!("`{}` includes itself", include.get_ref()),
                    Some(format!("take `\"{}\"` out of `include`", include.get_ref())),
                ));
            }
            if !canonical.starts_with(
                project
                    .canonicalize()
                    .unwrap_or_else(|_| project.to_owned()),
            ) {
                return Err(source.error(
                    &include.span(),
                    format!("`{}` is outside the project", include.get_ref()),
                    Some("include files of the project's folder and below, e.g. `include = [\"container.toml\"]`".to_owned()),
                ));
            }
            self.load_file(&included, false, project, stack)?;
        }
        stack.pop();
        Ok(())
    }

    fn add_package(
        &mut self,
        index: usize,
        key: Spanned<String>,
        raw: Spanned<RawPackage>,
    ) -> Result<(), ConfigError> {
        let source = &self.sources[index];
        let location = source.location(&key.span());
        let key_name = key.get_ref().clone();
        if let Some((_, other)) = self.packages.get(&key_name) {
            return Err(ConfigError::At {
                location,
                message: format!("package `{key_name}` is defined twice: here and at {other}"),
                hint: Some("rename one of them".to_owned()),
            });
        }
        let package = package::from_raw(source, &key, location.clone(), raw.into_inner())?;
        self.packages.insert(key_name, (package, location));
        Ok(())
    }

    fn finish(self, folder: &Path) -> Result<Project, ConfigError> {
        let Loader {
            packages,
            raw_images,
            sources,
            files,
        } = self;
        let packages: BTreeMap<String, Package> = packages
            .into_iter()
            .map(|(key, (package, _))| (key, package))
            .collect();
        let mut images = BTreeMap::new();
        for (key, location, raw, index) in raw_images {
            let source = &sources[index];
            if let Some(package) = packages.get(&key) {
                return Err(ConfigError::At {
                    location,
                    message: format!(
                        "`{key}` names both an image (here) and a package (at {}); targets must be unambiguous",
                        package.defined_at
                    ),
                    hint: Some("rename one of them".to_owned()),
                });
            }
            let image = image::from_raw(source, &key, location, raw, &packages)?;
            images.insert(key, image);
        }
        Ok(Project {
            root: folder.to_owned(),
            files,
            packages,
            images,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_errors, project};
    use super::*;
    use crate::diagnostic::Hint;

    /// An included named pipe or folder was reported as a file that "does not exist"; a
    /// kiln.toml that is a named pipe, as a folder with no kiln.toml.
    #[test]
    fn include_that_is_not_a_regular_file_says_so() {
        let temp = tempfile::tempdir().unwrap();
        std::fs::write(
            temp.path().join("kiln.toml"),
            "schema = 1\ninclude = [\"sub\"]\n",
        )
        .unwrap();
        std::fs::create_dir(temp.path().join("sub")).unwrap();
        let message = Project::load(temp.path()).unwrap_err().to_string();
        assert_eq!(
            message,
            "kiln.toml:2:12: included file `sub` is not a regular file"
        );
        std::fs::remove_file(temp.path().join("kiln.toml")).unwrap();
        std::fs::create_dir(temp.path().join("kiln.toml")).unwrap();
        let error = Project::load(temp.path()).unwrap_err();
        let message = error.to_string();
        assert!(
            message.ends_with("kiln.toml is not a regular file"),
            "{message}"
        );
        assert_eq!(
            error.hint().as_deref(),
            Some("replace it with the file itself")
        );
    }

    #[test]
    fn load_errors_point_at_the_place() {
        assert_errors(&[
            (
                &[("kiln.toml", "[packages.default]\n")],
                "kiln.toml:1:1: kiln.toml has no `schema`",
            ),
            (
                &[("kiln.toml", "schema = 2\n")],
                "kiln.toml:1:10: schema 2 is not one this kiln reads",
            ),
            (
                &[("kiln.toml", "schema = 1\n[packages.a]\nversion = 3\n")],
                "kiln.toml:3:11: `version` must be a string, not a number",
            ),
            (
                &[(
                    "kiln.toml",
                    "schema = 1\n[packages.x]\n[images.x]\npackage = \"x\"\n",
                )],
                "`x` names both an image (here) and a package",
            ),
            (
                &[
                    (
                        "kiln.toml",
                        "schema = 1\ninclude = [\"more.toml\"]\n[packages.x]\n",
                    ),
                    ("more.toml", "[packages.x]\n"),
                ],
                "more.toml:1:11: package `x` is defined twice: here and at kiln.toml:3:11",
            ),
            (
                &[("kiln.toml", "schema = 1\ninclude = [\"missing.toml\"]\n")],
                "kiln.toml:2:12: included file `missing.toml` does not exist",
            ),
            (
                &[("kiln.toml", "schema = 1\ninclude = [\"kiln.toml\"]\n")],
                "`kiln.toml` includes itself",
            ),
            (
                &[("kiln.toml", "schema = 1\n[packages.a\n")],
                "kiln.toml:2:12: unclosed table",
            ),
        ]);
        let (temp, loaded) = project(&[]);
        let error = loaded.unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("no kiln.toml in {}", temp.path().display())
        );
        assert_eq!(
            error.hint().as_deref(),
            Some("`kiln init` makes a project here")
        );
    }
}
