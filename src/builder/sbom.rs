//! The SBOM of one platform of an image: what `go version -m` says of its programs, kiln.lock's
//! modules and the base, as [`crate::sbom`] writes them. The programs' build information is
//! read in-process ([`crate::gomod::goelf`], the same text `go version -m` prints, without
//! starting Go on every image build); a program it cannot read is left to the pinned
//! toolchain's own `go version -m`, run as every Go run kiln makes, with a cleared
//! environment.

use std::path::Path;

use super::BuildError;
use super::plan::{ImagePlan, PlatformPlan};
use crate::diagnostic::PathError;

/// The SPDX document of one platform's image: kiln.lock's modules and what `go version -m`
/// reads from each program the package built.
pub(super) fn sbom_document(
    plan: &ImagePlan,
    platform: &PlatformPlan,
    package_path: &Path,
    image: &crate::oci::image::BuiltImage,
    go_home: &Path,
) -> Result<Vec<u8>, BuildError> {
    let sbom_error = |source: crate::sbom::SbomError| BuildError::Sbom {
        image: plan.image.key.clone(),
        source: Box::new(source),
    };
    let bin = package_path.join("bin");
    let mut programs: Vec<String> = std::fs::read_dir(&bin)
        .map_err(PathError::walk(&bin))?
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .map(|name| format!("bin/{name}"))
        .collect();
    programs.sort();
    let text = match in_process(package_path, &programs)? {
        Some(text) => text,
        None => go_version_m(
            &platform.package.toolchain,
            package_path,
            &programs,
            go_home,
        )?,
    };
    let programs = crate::sbom::parse_go_version_m(&text).map_err(sbom_error)?;
    let input = crate::sbom::SbomInput {
        image: &plan.image.reference,
        version: plan.image.tag(),
        created: &plan.created,
        manifest_digest: image.manifest_descriptor.digest,
        platform: &platform.package.package.platform,
        programs: &programs,
        locked_modules: if platform.package.modules.is_empty() {
            &platform.package.vendored_modules
        } else {
            &platform.package.modules
        },
        application_version: platform.package.package.version.as_deref(),
        base: match (&plan.static_sources, &platform.base) {
            (Some(sources), _) => Some(crate::sbom::SbomBase::Static(sources)),
            (None, Some((reference, digest))) => Some(crate::sbom::SbomBase::Image {
                reference,
                digest: *digest,
            }),
            (None, None) => None,
        },
        cgo: match (&platform.package.zig, &platform.package.package.cgo) {
            (Some(zig), Some(cgo)) => Some(crate::sbom::SbomCgo {
                zig: &zig.pin,
                target: &zig.target,
                glibc: crate::toolchain::zig::glibc_version(
                    &platform.package.package.platform,
                    cgo.libc,
                ),
            }),
            _ => None,
        },
    };
    crate::sbom::spdx_bytes(&input).map_err(sbom_error)
}

/// `go version -m` text of `programs` (relative to `package_path`) read in-process, or `None`
/// when one of them has a record [`crate::gomod::goelf`] does not read.
fn in_process(package_path: &Path, programs: &[String]) -> Result<Option<String>, BuildError> {
    let mut text = String::new();
    for program in programs {
        let path = package_path.join(program);
        match crate::gomod::goelf::go_version_m_text(&path, program)
            .map_err(PathError::read(&path))?
        {
            Some(part) => text.push_str(&part),
            None => return Ok(None),
        }
    }
    Ok(Some(text))
}

/// What the toolchain's `go version -m` prints of `programs`.
fn go_version_m(
    toolchain: &crate::toolchain::Toolchain,
    package_path: &Path,
    programs: &[String],
    go_home: &Path,
) -> Result<String, BuildError> {
    let output = std::process::Command::new(&toolchain.go)
        .arg("version")
        .arg("-m")
        .args(programs)
        .current_dir(package_path)
        // Cleared as for every Go run kiln makes: nothing of the user's environment
        // (GOFLAGS, GOENV files, GOTOOLCHAIN) decides what it prints.
        .env_clear()
        .env("GOTOOLCHAIN", "local")
        .env("GOROOT", &toolchain.goroot)
        .env("GOFLAGS", "")
        .env("GOENV", "off")
        .env("HOME", go_home)
        .output()
        .map_err(PathError::run(&toolchain.go))?;
    if !output.status.success() {
        return Err(PathError::run(&toolchain.go)(std::io::Error::other(format!(
            "`go version -m` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )))
        .into());
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
