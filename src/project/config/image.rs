//! `[images.NAME]`: an image of a package, checked and made an [`Image`].
//!
//! What the image config holds (`workdir`, `user`, `expose`, `env`, …) is checked here with
//! `oci::container`'s rules, so a bad value is an error naming its place in kiln.toml rather
//! than an image an engine refuses. The name defaults to the package's name, the tag to its
//! version and the platforms to its platforms, all of them Linux. What the image holds
//! besides its packages (`files`, `dirs`, `symlinks`) is checked in `entries`.

use std::collections::BTreeMap;

use toml::Spanned;

use super::entries;
use super::error::{ConfigError, Position, SourceFile, did_you_mean};
use super::model::{Base, DEFAULT_MAX_LAYERS, Image, Package, STATIC_BASE};
use super::package::parse_platforms;
use super::schema::RawImage;
use crate::oci::compression::Compression;
use crate::oci::container;
use crate::oci::reference::{Reference, is_tag};
use crate::oci::timestamp::Created;
use crate::oci::tree::ImagePath;

/// The image `key` defined at `location`, checked against the packages of the whole project.
pub(super) fn from_raw(
    source: &SourceFile,
    key: &str,
    location: Position,
    raw: RawImage,
    packages: &BTreeMap<String, Package>,
) -> Result<Image, ConfigError> {
    let (package_name, package_span) = match &raw.package {
        Some(package) => (package.get_ref().clone(), package.span()),
        None => ("default".to_owned(), 0..0),
    };
    let Some(package) = packages.get(&package_name) else {
        let known: Vec<&str> = packages.keys().map(String::as_str).collect();
        let message = format!(
            "image `{key}` is of package `{package_name}`, which is not defined (packages: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        );
        return Err(match raw.package {
            Some(_) => source.error(
                &package_span,
                message,
                did_you_mean(&package_name, known.iter().copied()),
            ),
            None => ConfigError::At {
                location,
                message,
                hint: Some("say which with `package = \"…\"`".to_owned()),
            },
        });
    };
    let platforms = match raw.platforms {
        Some(platforms) => parse_platforms(source, platforms)?,
        None => package.platforms.clone(),
    };
    if let Some(other) = platforms.iter().find(|platform| platform.os != "linux") {
        return Err(ConfigError::At {
            location,
            message: format!(
                "image `{key}` is of package `{package_name}`, built for {other}; images run Linux programs"
            ),
            hint: None,
        });
    }
    let name_text = raw
        .name
        .as_ref()
        .map(|name| name.get_ref().clone())
        .unwrap_or_else(|| package.name.clone());
    let name_span = raw.name.as_ref().map_or(0..0, Spanned::span);
    let mut reference: Reference =
        name_text
            .parse()
            .map_err(|error: crate::oci::reference::ReferenceError| {
                if raw.name.is_some() {
                    source.error(&name_span, error.to_string(), None)
                } else {
                    ConfigError::At {
                        location: location.clone(),
                        message: format!(
                            "the image name defaults to the package's name, and: {error}"
                        ),
                        hint: Some("give the image a `name`".to_owned()),
                    }
                }
            })?;
    if reference.tag.is_some() || reference.digest.is_some() {
        return Err(source.error(
            &name_span,
            "an image `name` has no tag or digest; use `tag`",
            None,
        ));
    }
    let tag = match &raw.tag {
        Some(tag) => {
            if !is_tag(tag.get_ref()) {
                return Err(source.error(
                    &tag.span(),
                    format!(
                        "`{}` is not a valid tag (letters, digits, `_`, `.` and `-`, at most 128)",
                        tag.get_ref()
                    ),
                    None,
                ));
            }
            tag.get_ref().clone()
        }
        None => match &package.version {
            Some(version) if is_tag(version) => version.clone(),
            Some(version) => {
                return Err(ConfigError::At {
                    location,
                    message: format!(
                        "the tag defaults to the package's version `{version}`, which is not a valid tag"
                    ),
                    hint: Some("give the image a `tag`".to_owned()),
                });
            }
            None => "latest".to_owned(),
        },
    };
    reference.tag = Some(tag);
    let mut paths = Vec::new();
    for path in raw
        .paths
        .unwrap_or_else(|| vec![Spanned::new(0..0, "/bin".to_owned())])
    {
        paths.push(
            ImagePath::parse_absolute(path.get_ref())
                .map_err(|error| source.error(&path.span(), error.to_string(), None))?,
        );
    }
    let mut env = BTreeMap::new();
    for (variable, value) in raw.env.unwrap_or_default() {
        if variable.get_ref().is_empty() || variable.get_ref().contains('=') {
            return Err(source.error(
                &variable.span(),
                "an environment variable name is non-empty, without `=`",
                None,
            ));
        }
        env.insert(variable.into_inner(), value);
    }
    if let Some(workdir) = &raw.workdir {
        container::check_workdir(workdir.get_ref()).map_err(|reason| {
            source.error(
                &workdir.span(),
                format!("workdir `{}` is {reason}", workdir.get_ref()),
                None,
            )
        })?;
    }
    if let Some(user) = &raw.user {
        container::check_user(user.get_ref()).map_err(|reason| {
            source.error(
                &user.span(),
                format!("user `{}`: {reason}", user.get_ref()),
                None,
            )
        })?;
    }
    let mut expose = Vec::new();
    for port in raw.expose.unwrap_or_default() {
        expose.extend(container::exposed_ports(port.get_ref()).map_err(|reason| {
            source.error(
                &port.span(),
                format!("expose `{}`: {reason}", port.get_ref()),
                None,
            )
        })?);
    }
    let created = match &raw.created {
        Some(created) => created
            .get_ref()
            .parse::<Created>()
            .map_err(|error| source.error(&created.span(), error.to_string(), None))?,
        None => Created::Epoch,
    };
    let compression = match &raw.compression {
        Some(compression) => compression
            .get_ref()
            .parse::<Compression>()
            .map_err(|error| source.error(&compression.span(), error.to_string(), None))?,
        None => Compression::Gzip,
    };
    let base = match &raw.base {
        Some(base) if base.get_ref() == STATIC_BASE => Some(Base::Static),
        Some(base) => Some(Base::Image(base.get_ref().parse::<Reference>().map_err(|error| {
            source.error(
                &base.span(),
                format!("base: {error}"),
                Some("a base is `static` (kiln's own) or an image reference, e.g. `gcr.io/distroless/static:nonroot` or `localhost:5000/base:1`".to_owned()),
            )
        })?)),
        None => None,
    };
    let files = entries::files(source, raw.files.unwrap_or_default())?;
    let dirs = entries::dirs(source, raw.dirs.unwrap_or_default())?;
    let symlinks = entries::symlinks(source, raw.symlinks.unwrap_or_default())?;
    let max_layers = match &raw.max_layers {
        Some(max) => usize::try_from(*max.get_ref())
            .ok()
            .filter(|max| (1..=120).contains(max))
            .ok_or_else(|| {
                source.error(
                    &max.span(),
                    "max_layers is from 1 to 120",
                    Some("Docker refuses images of more than about 125 layers".to_owned()),
                )
            })?,
        None => DEFAULT_MAX_LAYERS,
    };
    let mut annotations = BTreeMap::new();
    for (name, value) in raw.annotations.unwrap_or_default() {
        if name.get_ref().is_empty() {
            return Err(source.error(&name.span(), "an annotation has a name", None));
        }
        annotations.insert(name.into_inner(), value);
    }
    Ok(Image {
        key: key.to_owned(),
        package: package_name,
        base,
        platforms,
        files,
        dirs,
        symlinks,
        max_layers,
        annotations,
        sbom: raw.sbom.unwrap_or(true),
        reference,
        paths,
        cmd: raw.cmd,
        entrypoint: raw.entrypoint,
        env,
        workdir: raw.workdir.map(Spanned::into_inner),
        user: raw.user.map(Spanned::into_inner),
        expose,
        labels: raw.labels.unwrap_or_default(),
        created,
        compression,
        defined_at: location,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_errors, failure};
    use crate::diagnostic::Hint;

    #[test]
    fn image_errors_point_at_the_place() {
        assert_errors(&[
            (
                &[(
                    "kiln.toml",
                    "schema = 1\n[packages.default]\n[images.c]\ntag = \"-x\"\n",
                )],
                "kiln.toml:4:7: `-x` is not a valid tag",
            ),
            (
                &[("kiln.toml", "schema = 1\n[packages.x]\n[images.c]\n")],
                "image `c` is of package `default`, which is not defined (packages: x)",
            ),
        ]);
    }

    /// A misspelt package is named with its place, the package meant as the hint.
    #[test]
    fn an_unknown_package_suggests_the_one_meant() {
        let error = failure(&[(
            "kiln.toml",
            "schema = 1\n[packages.default]\n[images.c]\npackage = \"defualt\"\n",
        )]);
        assert_eq!(
            error.to_string(),
            "kiln.toml:4:11: image `c` is of package `defualt`, which is not defined (packages: default)"
        );
        assert_eq!(error.hint().as_deref(), Some("did you mean `default`?"));
    }
}
