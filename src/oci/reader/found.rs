//! What reading an image folder or archive finds: the images, their manifests and layers,
//! and the names each image is known by (references and ref names).

use super::*;

/// The names an image is known by.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageNames {
    /// Full references, in familiar form (`example:0.1`).
    pub references: Vec<String>,
    /// Bare OCI ref names that are not references (`org.opencontainers.image.ref.name`
    /// holding only a tag, as skopeo's `oci:DIR:TAG` writes).
    pub ref_names: Vec<String>,
    /// The platform an index entry declares.
    pub platform: Option<Platform>,
}

impl ImageNames {
    pub(super) fn add_reference(&mut self, text: &str) {
        let familiar = match text.parse::<Reference>() {
            Ok(reference) => reference.familiar_tagged(),
            Err(_) => text.to_owned(),
        };
        if !self.references.contains(&familiar) {
            self.references.push(familiar);
        }
    }

    pub(super) fn merge(&mut self, other: ImageNames) {
        for reference in other.references {
            if !self.references.contains(&reference) {
                self.references.push(reference);
            }
        }
        for ref_name in other.ref_names {
            if !self.ref_names.contains(&ref_name) {
                self.ref_names.push(ref_name);
            }
        }
        if other.platform.is_some() {
            self.platform = other.platform;
        }
    }
}

pub(super) fn names_of(descriptor: &Descriptor) -> ImageNames {
    let mut names = ImageNames {
        platform: descriptor.platform.clone(),
        ..ImageNames::default()
    };
    let full_name = descriptor
        .annotations
        .get(annotation::CONTAINERD_IMAGE_NAME);
    if let Some(full_name) = full_name {
        names.add_reference(full_name);
    }
    if let Some(ref_name) = descriptor.annotations.get(annotation::REF_NAME) {
        let is_reference = ref_name.contains('/') || ref_name.contains(':');
        if is_reference {
            names.add_reference(ref_name);
        } else if full_name.is_none_or(|full| !full.ends_with(&format!(":{ref_name}"))) {
            names.ref_names.push(ref_name.clone());
        }
    }
    names
}

/// An image found in a source.
#[derive(Clone, Debug)]
pub struct FoundImage {
    pub names: ImageNames,
    /// `None` for a docker-archive without an OCI index (Docker before 25, podman, skopeo):
    /// such an archive holds no manifest, and a registry push computes one.
    pub manifest: Option<FoundManifest>,
    pub config_digest: Digest,
    pub config_size: u64,
    pub config: ImageConfig,
    pub layers: Vec<FoundLayer>,
}

#[derive(Clone, Debug)]
pub struct FoundManifest {
    pub descriptor: Descriptor,
    pub manifest: Manifest,
}

/// A layer of a found image.
#[derive(Clone, Debug)]
pub struct FoundLayer {
    /// The file holding it in the source.
    pub name: String,
    pub media_type: Option<String>,
    /// Digest and size from the manifest, when there is one.
    pub expected: Option<(Digest, u64)>,
    /// The uncompressed digest the config declares.
    pub diff_id: Digest,
}
