//! The SBOM of one platform of an image: `go version -m` of its programs (run as every Go run
//! kiln makes, with a cleared environment), kiln.lock's modules and the base, as
//! [`crate::sbom`] writes them.

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
    let toolchain = &platform.package.toolchain;
    let output = std::process::Command::new(&toolchain.go)
        .arg("version")
        .arg("-m")
        .args(&programs)
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
    let text = String::from_utf8_lossy(&output.stdout);
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
    };
    crate::sbom::spdx_bytes(&input).map_err(sbom_error)
}
