//! `[packages.NAME]`: a Go program, or several built together, checked and made a
//! [`Package`].
//!
//! Package and program names become store path and file names, so they are plain
//! (letters, digits, `-`, `_`, `.`, `+`). `main` folders stay inside the project. kiln sets
//! the variables that make a build hermetic (`GOOS`, `GOFLAGS`, `GOPROXY`, …) itself, so a
//! package's `env` may not; nothing may hold a NUL byte, which no environment or command
//! line can.

use std::collections::BTreeMap;

use toml::Spanned;

use super::error::{ConfigError, Position, SourceFile, did_you_mean};
use super::model::{Cgo, GlibcVersion, Libc, MainPackage, Package};
use super::schema::{OneOrMany, RawPackage};
use crate::oci::spec::Platform;
use crate::toolchain::zig::MIN_GLIBC;

/// Environment variables kiln sets for every build; a package may not change them.
const RESERVED_ENV: &[&str] = &[
    "CGO_ENABLED",
    "GOOS",
    "GOARCH",
    "GOPATH",
    "GOCACHE",
    "GOMODCACHE",
    "GOROOT",
    "HOME",
    "GOTOOLCHAIN",
    "GOWORK",
    "GOENV",
    "GOPROXY",
    "GOSUMDB",
    "GONOSUMDB",
    "GOPRIVATE",
    "GONOPROXY",
    "GOFLAGS",
    "GOINSECURE",
    "GOTMPDIR",
    "TMPDIR",
    "PATH",
    // The C toolchain of a cgo package is kiln's (see `cgo`, `cflags`, `c-ldflags`).
    "CC",
    "CXX",
    "CGO_CFLAGS",
    "CGO_CPPFLAGS",
    "CGO_CXXFLAGS",
    "CGO_FFLAGS",
    "CGO_LDFLAGS",
    "PKG_CONFIG",
    "PKG_CONFIG_PATH",
    "PKG_CONFIG_LIBDIR",
    "ZIG_GLOBAL_CACHE_DIR",
    "ZIG_LOCAL_CACHE_DIR",
    "ZIG_LIB_DIR",
];

/// The package `key` defined at `location` (its key in the file), checked.
pub(super) fn from_raw(
    source: &SourceFile,
    key: &Spanned<String>,
    location: Position,
    raw: RawPackage,
) -> Result<Package, ConfigError> {
    let key_name = key.get_ref().clone();
    let name = match &raw.name {
        Some(name) => {
            check_name(name.get_ref())
                .map_err(|reason| source.error(&name.span(), reason, Some(NAME_HINT.to_owned())))?;
            name.get_ref().clone()
        }
        None => key_name.clone(),
    };
    check_name(&name).map_err(|reason| {
        source.error(
            &key.span(),
            reason,
            Some(format!(
                "{NAME_HINT}, or give the table a plain key: `[packages.example]`"
            )),
        )
    })?;
    let mains_raw = raw
        .main
        .map(|main| (main.span(), main.into_inner().into_vec()));
    let mut mains = Vec::new();
    match mains_raw {
        None => mains.push(MainPackage {
            folder: ".".to_owned(),
            program: name.clone(),
        }),
        Some((span, folders)) => {
            if folders.is_empty() {
                return Err(source.error(
                    &span,
                    "`main` lists no package",
                    Some("e.g. `main = \".\"`, the folder of kiln.toml".to_owned()),
                ));
            }
            for folder in folders {
                let cleaned = clean_folder(&folder).map_err(|reason| {
                    source.error(
                        &span,
                        reason,
                        Some("a `main` folder is relative to the project, e.g. `main = \"./cmd/server\"`".to_owned()),
                    )
                })?;
                let program = if cleaned == "." {
                    name.clone()
                } else {
                    cleaned.rsplit('/').next().unwrap_or(&cleaned).to_owned()
                };
                if let Some(other) = mains
                    .iter()
                    .find(|main: &&MainPackage| main.program == program)
                {
                    return Err(source.error(
                        &span,
                        format!(
                            "`{folder}` and `{}` would both build a program named `{program}`",
                            other.folder
                        ),
                        Some("put them in separate packages".to_owned()),
                    ));
                }
                mains.push(MainPackage {
                    folder: cleaned,
                    program,
                });
            }
        }
    }
    let program = match raw.program {
        Some(program) => {
            if !mains.iter().any(|main| &main.program == program.get_ref()) {
                let programs: Vec<&str> = mains.iter().map(|main| main.program.as_str()).collect();
                return Err(source.error(
                    &program.span(),
                    format!(
                        "package `{key_name}` builds no program `{}`; it builds: {}",
                        program.get_ref(),
                        programs.join(", ")
                    ),
                    did_you_mean(program.get_ref(), programs.iter().copied())
                        .or_else(|| Some(format!("e.g. `program = \"{}\"`", programs[0]))),
                ));
            }
            Some(program.into_inner())
        }
        None if mains.len() == 1 => Some(mains[0].program.clone()),
        None => mains
            .iter()
            .find(|main| main.program == name)
            .map(|main| main.program.clone()),
    };
    let platforms = match (raw.platform, raw.platforms) {
        (Some(_), Some(platforms)) => {
            return Err(source.error(
                &platforms.span(),
                "a package has `platform` or `platforms`, not both",
                Some("list every platform in `platforms`".to_owned()),
            ));
        }
        (Some(platform), None) => {
            vec![platform.get_ref().parse::<Platform>().map_err(|error| {
                source.error(
                    &platform.span(),
                    error.to_string(),
                    Some(
                        "a platform is OS/ARCH[/VARIANT], e.g. `platform = \"linux/amd64\"`"
                            .to_owned(),
                    ),
                )
            })?]
        }
        (None, Some(platforms)) => parse_platforms(source, platforms)?,
        (None, None) => vec![Platform::host()],
    };
    let host = Platform::host();
    let platform = platforms
        .iter()
        .find(|platform| **platform == host)
        .unwrap_or(&platforms[0])
        .clone();
    let mut env = BTreeMap::new();
    for (variable, value) in raw.env.unwrap_or_default() {
        // `A=B` as a name would set A; no process environment holds a NUL byte.
        let name = variable.get_ref();
        if name.is_empty() || name.contains('=') || name.contains('\0') {
            return Err(source.error(
                &variable.span(),
                format!("`{name}` is not a valid environment variable name (non-empty, without `=` or NUL)"),
                Some("e.g. `env = { GOEXPERIMENT = \"loopvar\" }`".to_owned()),
            ));
        }
        if value.contains('\0') {
            return Err(source.error(
                &variable.span(),
                format!("the value of `{name}` holds a NUL byte, which no environment can hold"),
                Some("remove the `\\u0000`".to_owned()),
            ));
        }
        if RESERVED_ENV.contains(&variable.get_ref().as_str()) {
            return Err(source.error(
                &variable.span(),
                format!(
                    "kiln sets `{}` itself for a hermetic build",
                    variable.get_ref()
                ),
                Some(
                    "set the platform with `platform`, e.g. `platform = \"linux/arm64\"`; cgo with `cgo = true`, its C flags with `cflags` and `c-ldflags`"
                        .to_owned(),
                ),
            ));
        }
        env.insert(variable.into_inner(), value);
    }
    if let Some(ldflags) = &raw.ldflags
        && ldflags.get_ref().has_nul()
    {
        return Err(source.error(
            &ldflags.span(),
            "ldflags hold a NUL byte, which no command line can hold",
            Some("remove the `\\u0000`".to_owned()),
        ));
    }
    if let Some(tag) = raw
        .tags
        .iter()
        .flatten()
        .find(|tag| tag.get_ref().contains('\0'))
    {
        return Err(source.error(
            &tag.span(),
            "a build tag holds a NUL byte, which no command line can hold",
            Some("remove the `\\u0000`".to_owned()),
        ));
    }
    let cgo = cgo_from_raw(
        source,
        raw.cgo,
        raw.c_libc,
        raw.glibc,
        raw.cflags,
        raw.c_ldflags,
    )?;
    Ok(Package {
        key: key_name.clone(),
        name,
        version: raw.version.map(Spanned::into_inner),
        mains,
        program,
        ldflags: raw
            .ldflags
            .map(|flags| flags.into_inner().into_vec())
            .unwrap_or_default(),
        tags: raw
            .tags
            .unwrap_or_default()
            .into_iter()
            .map(Spanned::into_inner)
            .collect(),
        env,
        platform,
        platforms,
        cgo,
        defined_at: location,
    })
}

/// `cgo`, `c-libc`, `glibc`, `cflags` and `c-ldflags`: the C keys need `cgo = true`; the
/// libc is musl (linked statically, the default) or glibc (linked dynamically against the
/// glibc release `glibc` names, `2.MINOR`, at least [`crate::toolchain::zig::MIN_GLIBC`]).
fn cgo_from_raw(
    source: &SourceFile,
    cgo: Option<Spanned<bool>>,
    libc: Option<Spanned<String>>,
    glibc: Option<Spanned<String>>,
    cflags: Option<Spanned<OneOrMany>>,
    ldflags: Option<Spanned<OneOrMany>>,
) -> Result<Option<Cgo>, ConfigError> {
    for (key, flags) in [("cflags", &cflags), ("c-ldflags", &ldflags)] {
        if let Some(flags) = flags
            && flags.get_ref().has_nul()
        {
            return Err(source.error(
                &flags.span(),
                format!("{key} hold a NUL byte, which no command line can hold"),
                Some("remove the `\\u0000`".to_owned()),
            ));
        }
    }
    let enabled = cgo.as_ref().is_some_and(|cgo| *cgo.get_ref());
    if !enabled {
        let stray = [
            libc.as_ref().map(|value| ("c-libc", value.span())),
            glibc.as_ref().map(|value| ("glibc", value.span())),
            cflags.as_ref().map(|value| ("cflags", value.span())),
            ldflags.as_ref().map(|value| ("c-ldflags", value.span())),
        ];
        if let Some((key, span)) = stray.into_iter().flatten().next() {
            return Err(source.error(
                &span,
                format!("`{key}` is a setting of cgo, which this package has off"),
                Some("add `cgo = true` to the package".to_owned()),
            ));
        }
        return Ok(None);
    }
    let glibc_version = match &glibc {
        None => None,
        Some(text) => Some(parse_glibc(text.get_ref()).ok_or_else(|| {
            source.error(
                &text.span(),
                format!(
                    "`{}` is not a glibc release kiln links against: write `2.MINOR`, 2.{} or newer",
                    text.get_ref(),
                    MIN_GLIBC.minor
                ),
                Some("`glibc = \"2.31\"`".to_owned()),
            )
        })?),
    };
    let libc = match libc
        .as_ref()
        .map(|libc| (libc.get_ref().as_str(), libc.span()))
    {
        None | Some(("musl", _)) => {
            if let Some(glibc) = &glibc {
                return Err(source.error(
                    &glibc.span(),
                    "`glibc` sets the glibc release of `c-libc = \"glibc\"`, and this package links musl",
                    Some("add `c-libc = \"glibc\"`, or remove `glibc`".to_owned()),
                ));
            }
            Libc::Musl
        }
        Some(("glibc", _)) => Libc::Glibc {
            version: glibc_version,
        },
        Some((other, span)) => {
            return Err(source.error(
                &span,
                format!("`{other}` is not a C library kiln links (musl or glibc)"),
                Some(
                    "`c-libc = \"musl\"` (static, the default) or `c-libc = \"glibc\"`".to_owned(),
                ),
            ));
        }
    };
    let flags = |flags: Option<Spanned<OneOrMany>>| {
        flags
            .map(|flags| flags.into_inner().into_vec())
            .unwrap_or_default()
    };
    Ok(Some(Cgo {
        libc,
        cflags: flags(cflags),
        ldflags: flags(ldflags),
    }))
}

/// `platforms = ["linux/amd64", …]`: at least one, each once.
pub(super) fn parse_platforms(
    source: &SourceFile,
    platforms: Spanned<Vec<Spanned<String>>>,
) -> Result<Vec<Platform>, ConfigError> {
    let span = platforms.span();
    let mut parsed: Vec<Platform> = Vec::new();
    for text in platforms.into_inner() {
        let platform = text.get_ref().parse::<Platform>().map_err(|error| {
            source.error(
                &text.span(),
                error.to_string(),
                Some(PLATFORMS_HINT.to_owned()),
            )
        })?;
        if parsed.contains(&platform) {
            return Err(source.error(
                &text.span(),
                format!("{platform} is listed twice"),
                Some("list each platform once".to_owned()),
            ));
        }
        parsed.push(platform);
    }
    if parsed.is_empty() {
        return Err(source.error(
            &span,
            "`platforms` lists no platform",
            Some(PLATFORMS_HINT.to_owned()),
        ));
    }
    Ok(parsed)
}

/// The hint of a name [`check_name`] refuses.
/// `2.MINOR` (`2.31`), at least [`MIN_GLIBC`], no leading zero or sign.
fn parse_glibc(text: &str) -> Option<GlibcVersion> {
    let minor = text.strip_prefix("2.")?;
    let canonical = !minor.is_empty()
        && minor.len() <= 3
        && minor.bytes().all(|byte| byte.is_ascii_digit())
        && !(minor.len() > 1 && minor.starts_with('0'));
    let version = GlibcVersion {
        minor: minor.parse().ok().filter(|_| canonical)?,
    };
    (version >= MIN_GLIBC).then_some(version)
}

const NAME_HINT: &str = "e.g. `name = \"example\"`";

/// The hint of a bad `platforms` list.
const PLATFORMS_HINT: &str =
    "a platform is OS/ARCH[/VARIANT], e.g. `platforms = [\"linux/amd64\", \"linux/arm64\"]`";

/// Package and program names become store path and file names.
fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "-_.+".contains(character))
        && !name.starts_with('.');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid name (letters, digits, `-`, `_`, `.`, `+`; not starting with `.`)"
        ))
    }
}

/// `./cmd/server/` → `cmd/server`; `.` stays; no absolute paths or `..`.
fn clean_folder(folder: &str) -> Result<String, String> {
    if folder.starts_with('/') {
        return Err(format!(
            "`{folder}` is absolute; `main` folders are relative to the project"
        ));
    }
    if folder.contains('\0') {
        return Err("a `main` folder holds a NUL byte".to_owned());
    }
    let mut parts = Vec::new();
    for part in folder.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(format!("`{folder}` leaves the project")),
            _ => parts.push(part),
        }
    }
    Ok(if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_errors, error};
    use super::{Cgo, Libc};

    /// `env = { "GOFLAGS=-toolexec" = "…" }` passed the reserved-name check and reached the
    /// Go command's environment as `GOFLAGS=-toolexec=…`; an empty name or a NUL byte made
    /// spawning Go fail with a message naming no file.
    #[test]
    fn package_env_name_with_equals_is_refused() {
        let package = |line: &str| {
            error(&[(
                "kiln.toml",
                &format!("schema = 1\n[packages.default]\nname = \"app\"\n{line}\n"),
            )])
        };
        let message = package(r#"env = { "GOFLAGS=-toolexec" = "/tmp/evil" }"#);
        assert!(
            message.starts_with(
                "kiln.toml:4:9: `GOFLAGS=-toolexec` is not a valid environment variable name"
            ),
            "{message}"
        );
        let message = package(r#"env = { "" = "x" }"#);
        assert!(
            message.contains("`` is not a valid environment variable name"),
            "{message}"
        );
        let message = package(r#"env = { GOEXPERIMENT = "a\u0000b" }"#);
        assert!(
            message.contains("kiln.toml:4:9: the value of `GOEXPERIMENT` holds a NUL byte"),
            "{message}"
        );
        let message = package(r#"ldflags = ["-X", "main.v=a\u0000b"]"#);
        assert!(
            message.starts_with("kiln.toml:4:11: ldflags hold a NUL byte"),
            "{message}"
        );
        let message = package(r#"tags = ["a\u0000b"]"#);
        assert!(
            message.starts_with("kiln.toml:4:9: a build tag holds a NUL byte"),
            "{message}"
        );
        let message = package(r#"main = "cmd/a\u0000b""#);
        assert!(
            message.contains("a `main` folder holds a NUL byte"),
            "{message}"
        );
    }

    #[test]
    fn package_errors_point_at_the_place() {
        assert_errors(&[
            (
                &[("kiln.toml", "schema = 1\n[packages.a]\nprogram = \"b\"\n")],
                "kiln.toml:3:11: package `a` builds no program `b`; it builds: a",
            ),
            (
                &[("kiln.toml", "schema = 1\n[packages.a]\nmain = \"../x\"\n")],
                "`../x` leaves the project",
            ),
            (
                &[(
                    "kiln.toml",
                    "schema = 1\n[packages.a]\nenv = { GOOS = \"x\" }\n",
                )],
                "kiln.toml:3:9: kiln sets `GOOS` itself",
            ),
            (
                &[(
                    "kiln.toml",
                    "schema = 1\n[packages.a]\nplatform = \"linux\"\n",
                )],
                "kiln.toml:3:12: invalid platform `linux`",
            ),
        ]);
    }

    /// Issue 21: the C keys need `cgo = true`; `glibc` needs `c-libc = "glibc"` and a release
    /// `2.MINOR` from 2.17 on.
    #[test]
    fn cgo_keys_are_checked() {
        assert_errors(&[
            (
                &[(
                    "kiln.toml",
                    "schema = 1\n[packages.a]\ncflags = [\"-O3\"]\n",
                )],
                "kiln.toml:3:10: `cflags` is a setting of cgo, which this package has off",
            ),
            (
                &[("kiln.toml", "schema = 1\n[packages.a]\nglibc = \"2.31\"\n")],
                "kiln.toml:3:9: `glibc` is a setting of cgo, which this package has off",
            ),
            (
                &[(
                    "kiln.toml",
                    "schema = 1\n[packages.a]\ncgo = true\nglibc = \"2.31\"\n",
                )],
                "kiln.toml:4:9: `glibc` sets the glibc release of `c-libc = \"glibc\"`, and this package links musl",
            ),
            (
                &[(
                    "kiln.toml",
                    "schema = 1\n[packages.a]\ncgo = true\nc-libc = \"glibc\"\nglibc = \"2.16\"\n",
                )],
                "kiln.toml:5:9: `2.16` is not a glibc release kiln links against: write `2.MINOR`, 2.17 or newer",
            ),
            (
                &[(
                    "kiln.toml",
                    "schema = 1\n[packages.a]\ncgo = true\nc-libc = \"glibc\"\nglibc = \"2.031\"\n",
                )],
                "`2.031` is not a glibc release kiln links against",
            ),
            (
                &[(
                    "kiln.toml",
                    "schema = 1\n[packages.a]\ncgo = true\nc-libc = \"glibc\"\nglibc = \"3.1\"\n",
                )],
                "`3.1` is not a glibc release kiln links against",
            ),
            (
                &[(
                    "kiln.toml",
                    "schema = 1\n[packages.a]\ncgo = true\nc-libc = \"uclibc\"\n",
                )],
                "`uclibc` is not a C library kiln links",
            ),
            (
                &[(
                    "kiln.toml",
                    "schema = 1\n[packages.a]\ncgo = true\nenv = { CC = \"gcc\" }\n",
                )],
                "kiln.toml:4:9: kiln sets `CC` itself",
            ),
        ]);
        let (_temp, project) = super::super::tests::project(&[(
            "kiln.toml",
            "schema = 1\n[packages.a]\ncgo = true\ncflags = \"-DX=1\"\nc-ldflags = [\"-lm\"]\n",
        )]);
        assert_eq!(
            project.unwrap().packages["a"].cgo,
            Some(Cgo {
                libc: Libc::Musl,
                cflags: vec!["-DX=1".to_owned()],
                ldflags: vec!["-lm".to_owned()],
            })
        );
        for (toml, version) in [
            ("c-libc = \"glibc\"\n", None),
            ("c-libc = \"glibc\"\nglibc = \"2.28\"\n", Some(28)),
        ] {
            let (_temp, project) = super::super::tests::project(&[(
                "kiln.toml",
                &format!("schema = 1\n[packages.a]\ncgo = true\n{toml}"),
            )]);
            assert_eq!(
                project.unwrap().packages["a"].cgo.as_ref().unwrap().libc,
                Libc::Glibc {
                    version: version.map(|minor| crate::project::GlibcVersion { minor }),
                },
                "{toml}"
            );
        }
    }
}
