//! `[images.NAME]`: an image of a package, checked and made an [`Image`].
//!
//! What the image config holds (`workdir`, `user`, `expose`, `env`, …) is checked here with
//! `oci::container`'s rules, so a bad value is an error naming its place in kiln.toml rather
//! than an image an engine refuses. The name defaults to the package's name made a valid image
//! name ([`image_name_for`]: `HelloWorld` → `helloworld`), the tag to its version and the
//! platforms to its platforms, all of them Linux. What the image holds
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
use crate::oci::reference::{Reference, ReferenceError, is_path_component, is_tag};
use crate::oci::timestamp::Created;
use crate::oci::tree::{ImagePath, TreeError};

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
    let name_span = raw.name.as_ref().map_or(0..0, Spanned::span);
    let mut reference: Reference = match &raw.name {
        Some(name) => name.get_ref().parse().map_err(|error: ReferenceError| {
            let hint = suggested_name(name.get_ref())
                .map(|suggested| format!("image names are lowercase: `name = \"{suggested}\"`"));
            source.error(&name_span, error.to_string(), hint)
        })?,
        None => {
            let derived = image_name_for(&package.name).ok_or_else(|| ConfigError::At {
                location: location.clone(),
                message: format!(
                    "image `{key}` has no `name`, and package `{package_name}`'s name `{}` has no letter or digit to make one from",
                    package.name
                ),
                hint: Some("give the image a name, e.g. `name = \"example\"`".to_owned()),
            })?;
            derived.parse().map_err(|error: ReferenceError| ConfigError::At {
                location: location.clone(),
                message: format!(
                    "image `{key}` has no `name`, and the one made from package `{package_name}`'s name is not valid: {error}"
                ),
                hint: Some("give the image a name, e.g. `name = \"example\"`".to_owned()),
            })?
        }
    };
    if reference.tag.is_some() || reference.digest.is_some() {
        let hint = match &reference.tag {
            Some(tag) => format!(
                "write `name = \"{}\"` and `tag = \"{tag}\"`",
                reference.familiar_name()
            ),
            None => format!(
                "write `name = \"{}\"`; an image's digest is what kiln makes",
                reference.familiar_name()
            ),
        };
        return Err(source.error(
            &name_span,
            "an image `name` has no tag or digest; use `tag`",
            Some(hint),
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
                    Some("e.g. `tag = \"0.1\"`".to_owned()),
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
                    hint: Some("give the image a `tag`, e.g. `tag = \"0.1\"`".to_owned()),
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
        paths.push(ImagePath::parse_absolute(path.get_ref()).map_err(|error| {
            let written = path.get_ref();
            let message = match &error {
                TreeError::RelativeDestination(_) => {
                    format!("`{written}` in `paths` is not an absolute image path")
                }
                _ => error.to_string(),
            };
            let absolute = format!("/{}", written.trim_start_matches("./"));
            let hint = match ImagePath::parse_absolute(&absolute) {
                Ok(fixed) => format!("write `paths = [\"{fixed}\"]`"),
                Err(_) => "e.g. `paths = [\"/bin\"]`".to_owned(),
            };
            source.error(&path.span(), message, Some(hint))
        })?);
    }
    let mut env = BTreeMap::new();
    for (variable, value) in raw.env.unwrap_or_default() {
        if variable.get_ref().is_empty() || variable.get_ref().contains('=') {
            return Err(source.error(
                &variable.span(),
                "an environment variable name is non-empty, without `=`",
                Some("e.g. `env = { MODE = \"production\" }`".to_owned()),
            ));
        }
        env.insert(variable.into_inner(), value);
    }
    if let Some(workdir) = &raw.workdir {
        container::check_workdir(workdir.get_ref()).map_err(|reason| {
            source.error(
                &workdir.span(),
                format!("workdir `{}` is {reason}", workdir.get_ref()),
                Some("e.g. `workdir = \"/srv\"`".to_owned()),
            )
        })?;
    }
    if let Some(user) = &raw.user {
        container::check_user(user.get_ref()).map_err(|reason| {
            source.error(
                &user.span(),
                format!("user `{}`: {reason}", user.get_ref()),
                Some("e.g. `user = \"65532:65532\"` or `user = \"nonroot\"`".to_owned()),
            )
        })?;
    }
    let mut expose = Vec::new();
    for port in raw.expose.unwrap_or_default() {
        expose.extend(container::exposed_ports(port.get_ref()).map_err(|reason| {
            source.error(
                &port.span(),
                format!("expose `{}`: {reason}", port.get_ref()),
                Some("e.g. `expose = [\"8080/tcp\", \"53/udp\"]`".to_owned()),
            )
        })?);
    }
    let mut volumes = std::collections::BTreeSet::new();
    for volume in raw.volumes.unwrap_or_default() {
        container::check_volume(volume.get_ref()).map_err(|reason| {
            source.error(
                &volume.span(),
                format!("volume `{}` is {reason}", volume.get_ref()),
                Some("e.g. `volumes = [\"/data\"]`".to_owned()),
            )
        })?;
        volumes.insert(volume.into_inner());
    }
    let created = match &raw.created {
        Some(created) => created
            .get_ref()
            .parse::<Created>()
            .map_err(|error| {
                source.error(
                    &created.span(),
                    error.to_string(),
                    Some("`created = \"epoch\"`, `\"now\"` or an RFC 3339 time, e.g. `\"2024-05-01T12:00:00Z\"`".to_owned()),
                )
            })?,
        None => Created::Epoch,
    };
    let compression = match &raw.compression {
        Some(compression) => compression
            .get_ref()
            .parse::<Compression>()
            .map_err(|error| {
                source.error(
                    &compression.span(),
                    error.to_string(),
                    Some("`compression = \"gzip\"`, `\"zstd\"` or `\"none\"`".to_owned()),
                )
            })?,
        None => Compression::Gzip,
    };
    let base = match &raw.base {
        Some(base) if base.get_ref() == STATIC_BASE => Some(Base::Static),
        Some(base) => Some(Base::Image(base.get_ref().parse::<Reference>().map_err(|error| {
            source.error(
                &base.span(),
                format!("base: {error}"),
                Some("a base is kiln's own, `base = \"static\"`, or an image reference, e.g. `base = \"gcr.io/distroless/static:nonroot\"`".to_owned()),
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
                    Some(
                        "e.g. `max_layers = 16`; Docker refuses images of more than about 125 layers"
                            .to_owned(),
                    ),
                )
            })?,
        None => DEFAULT_MAX_LAYERS,
    };
    let mut annotations = BTreeMap::new();
    for (name, value) in raw.annotations.unwrap_or_default() {
        if name.get_ref().is_empty() {
            return Err(source.error(
                &name.span(),
                "an annotation has a name",
                Some("e.g. `annotations = { \"org.example.team\" = \"payments\" }`".to_owned()),
            ));
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
        volumes: volumes.into_iter().collect(),
        labels: raw.labels.unwrap_or_default(),
        created,
        compression,
        defined_at: location,
    })
}

/// The image name kiln gives a package's image when kiln.toml names none, and the one
/// `kiln init` writes: the package's name as a repository name, which Docker's grammar
/// (`[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`) allows only in lowercase.
///
/// Letters are lowercased (`HelloWorld` → `helloworld`), as ko does with the import path it
/// names an image after (`strings.ToLower` in ko's `publish.Publish`, for
/// go-containerregistry issue 212; ko leaves any other character for the reference parser to
/// refuse). Every other character the grammar refuses (`+`, or any that is not ASCII) becomes
/// `-`, a run of them one `-` (`g++tool` → `g-tool`); a run of separators the grammar allows
/// (`.`, `_`, `__`, `-`…) is kept as written, any other run becomes one `-` (`a._b` → `a-b`),
/// and separators at either end go (`_tool_` → `tool`). A package name that is already a valid image name
/// is kept as it is. `None` when no letter or digit is left: the image needs a `name` then.
///
/// The package's and program's names keep their case: only the image name is changed.
pub fn image_name_for(package_name: &str) -> Option<String> {
    let mut name = String::new();
    let mut separators = String::new();
    // Whether the run of separators held a character the grammar refuses.
    let mut mapped = false;
    for character in package_name.chars() {
        if character.is_ascii_alphanumeric() {
            if !separators.is_empty() {
                if !name.is_empty() {
                    let allowed = !mapped
                        && (matches!(separators.as_str(), "." | "_" | "__")
                            || separators.bytes().all(|byte| byte == b'-'));
                    name.push_str(if allowed { &separators } else { "-" });
                }
                separators.clear();
                mapped = false;
            }
            name.push(character.to_ascii_lowercase());
        } else if matches!(character, '.' | '_' | '-') {
            separators.push(character);
        } else {
            separators.push('-');
            mapped = true;
        }
    }
    debug_assert!(name.is_empty() || is_path_component(&name), "{name}");
    (!name.is_empty()).then_some(name)
}

/// A valid spelling of the image name `text` for a hint: each repository component made a
/// valid one as [`image_name_for`] does, a registry host kept. `None` when that is no
/// valid name, or is `text` itself.
fn suggested_name(text: &str) -> Option<String> {
    let last_component = text.rsplit('/').next().unwrap_or(text);
    if text.contains('@') || last_component.contains(':') {
        // A tag or digest is refused on its own, with its own hint.
        return None;
    }
    let (registry, path) = match text.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (Some(first), rest)
        }
        _ => (None, text),
    };
    let components: Option<Vec<String>> = path.split('/').map(image_name_for).collect();
    let mut suggested = components?.join("/");
    if let Some(registry) = registry {
        suggested = format!("{registry}/{suggested}");
    }
    let reference: Reference = suggested.parse().ok()?;
    (suggested != text && reference.tag.is_none() && reference.digest.is_none())
        .then_some(suggested)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_errors, failure, project};
    use super::image_name_for;
    use crate::diagnostic::Hint;
    use crate::oci::reference::Reference;

    /// Package names (letters, digits, `-`, `_`, `.`, `+`) as image names: lowercased, what
    /// the grammar refuses made `-`, valid names kept as they are.
    #[test]
    fn image_names_from_package_names() {
        let cases = [
            ("example", Some("example")),
            ("HelloWorld", Some("helloworld")),
            ("WebApp", Some("webapp")),
            ("API2", Some("api2")),
            ("my-app", Some("my-app")),
            ("my--app", Some("my--app")),
            ("my_app", Some("my_app")),
            ("my__app", Some("my__app")),
            ("yaml.v3", Some("yaml.v3")),
            ("My.App_Server", Some("my.app_server")),
            ("c++", Some("c")),
            ("g++tool", Some("g-tool")),
            ("a-+b", Some("a-b")),
            ("a+b", Some("a-b")),
            ("a._b", Some("a-b")),
            ("a___b", Some("a-b")),
            ("a-.b", Some("a-b")),
            ("_tool_", Some("tool")),
            ("-tool-", Some("tool")),
            ("tool.", Some("tool")),
            ("Ünïcode", Some("n-code")),
            ("___", None),
            ("+", None),
            ("", None),
        ];
        for (package, expected) in cases {
            let derived = image_name_for(package);
            assert_eq!(derived.as_deref(), expected, "{package}");
            if let Some(name) = derived {
                name.parse::<Reference>()
                    .unwrap_or_else(|error| panic!("{package} → {name}: {error}"));
            }
        }
    }

    /// A package named `HelloWorld` gave its image the name `HelloWorld`, an invalid
    /// reference, so the whole project failed to load ("the image name defaults to the
    /// package's name, and: invalid image reference …").
    #[test]
    fn a_capitalised_package_gets_a_lowercase_image_name() {
        let (_temp, loaded) = project(&[(
            "kiln.toml",
            "schema = 1\n[packages.default]\nname = \"HelloWorld\"\nversion = \"0.1\"\n[images.container]\n",
        )]);
        let project = loaded.unwrap();
        assert_eq!(project.packages["default"].name, "HelloWorld");
        assert_eq!(
            project.images["container"].reference.to_string(),
            "docker.io/library/helloworld:0.1"
        );
        let error = failure(&[(
            "kiln.toml",
            "schema = 1\n[packages.default]\nname = \"___\"\n[images.container]\n",
        )]);
        assert_eq!(
            error.to_string(),
            "kiln.toml:4:9: image `container` has no `name`, and package `default`'s name `___` has no letter or digit to make one from"
        );
        assert_eq!(
            error.hint().as_deref(),
            Some("give the image a name, e.g. `name = \"example\"`")
        );
    }

    /// A `name` given explicitly is not changed: an invalid one is an error at its place,
    /// the valid spelling as the hint.
    #[test]
    fn an_invalid_explicit_name_suggests_the_valid_one() {
        let cases = [
            (
                "Example/App",
                "kiln.toml:4:8: invalid image reference `Example/App`: repository names must be lowercase",
                Some("image names are lowercase: `name = \"example/app\"`"),
            ),
            (
                "ghcr.io/Acme/WebApp",
                "kiln.toml:4:8: invalid image reference `ghcr.io/Acme/WebApp`: repository names must be lowercase",
                Some("image names are lowercase: `name = \"ghcr.io/acme/webapp\"`"),
            ),
            (
                "example:0.2",
                "kiln.toml:4:8: an image `name` has no tag or digest; use `tag`",
                Some("write `name = \"example\"` and `tag = \"0.2\"`"),
            ),
        ];
        for (name, message, hint) in cases {
            let error = failure(&[(
                "kiln.toml",
                &format!("schema = 1\n[packages.default]\n[images.container]\nname = \"{name}\"\n"),
            )]);
            assert_eq!(error.to_string(), message, "{name}");
            assert_eq!(error.hint().as_deref(), hint, "{name}");
        }
    }

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
