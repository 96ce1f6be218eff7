//! The documents of the OCI image spec (v1.1) and their Docker schema 2 twins: descriptors,
//! manifests, indexes and the image config.
//!
//! kiln owns these structs rather than using `oci-spec` because its maps are `HashMap`s (key
//! order would change digests) and because images kiln did not make must be read without
//! losing anything: every struct keeps unknown fields in `extra`, so a base image's config
//! (issue: base images) can be inherited field for field. Maps are `BTreeMap`s; optional
//! fields are omitted when empty, and JSON `null` (which Docker writes for empty lists and
//! maps) reads as empty. All writing goes through [`super::json::to_canonical_vec`].

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::digest::Digest;

/// Media types kiln writes or reads.
pub mod media_type {
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
    /// The config of an artifact that needs none: the blob `{}` (image-spec v1.1).
    pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
    /// An SPDX JSON document: the SBOM kiln stores beside an image.
    pub const SPDX_JSON: &str = "application/spdx+json";

    /// Whether `media_type` names an image manifest (OCI or Docker).
    pub fn is_manifest(media_type: &str) -> bool {
        media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
    }

    /// Whether `media_type` names an index or manifest list (OCI or Docker).
    pub fn is_index(media_type: &str) -> bool {
        media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
    }
}

/// Annotation keys kiln writes or reads.
pub mod annotation {
    /// The tag of a manifest in an OCI layout's `index.json` (OCI image-layout spec).
    pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
    /// The full image name, as containerd and Docker 25+ write it in `index.json`.
    pub const CONTAINERD_IMAGE_NAME: &str = "io.containerd.image.name";
    /// The base image an image starts from, and its manifest digest (image-spec).
    pub const BASE_NAME: &str = "org.opencontainers.image.base.name";
    pub const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";
    /// When the content was made (image-spec); on an SBOM artifact, the image's `created`.
    pub const CREATED: &str = "org.opencontainers.image.created";
}

/// Reads JSON `null` as the type's default (Docker writes `"Env": null`).
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// An OCI content descriptor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub urls: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Self {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            platform: None,
            artifact_type: None,
        }
    }
}

/// An operating system and architecture, as in a config or an index entry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "invalid platform `{0}`: expected OS/ARCH or OS/ARCH/VARIANT, e.g. linux/amd64 or linux/arm64/v8"
)]
pub struct PlatformError(String);

impl Platform {
    /// The platform of the machine kiln runs on, in Go's and OCI's names.
    pub fn host() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "powerpc64" => "ppc64",
            "loongarch64" => "loong64",
            other => other,
        };
        Platform {
            architecture: architecture.to_owned(),
            os: "linux".to_owned(),
            os_version: None,
            os_features: Vec::new(),
            variant: None,
        }
    }
}

impl Platform {
    /// Whether an image for `candidate` serves this platform, with variants normalised as
    /// containerd does: `arm` without a variant is v7, `arm64` without one is v8; a wanted
    /// platform without a variant takes the default one (or any, for other architectures).
    pub fn accepts(&self, candidate: &Platform) -> bool {
        if self.os != candidate.os || self.architecture != candidate.architecture {
            return false;
        }
        let default = match self.architecture.as_str() {
            "arm" => Some("v7"),
            "arm64" => Some("v8"),
            _ => None,
        };
        let wanted = self.variant.as_deref().or(default);
        let offered = candidate.variant.as_deref().or(default);
        wanted.is_none() || wanted == offered
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = PlatformError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = text.split('/').collect();
        let valid_part = |part: &&str| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(valid_part) {
            return Err(PlatformError(text.to_owned()));
        }
        Ok(Platform {
            os: parts[0].to_owned(),
            architecture: parts[1].to_owned(),
            os_version: None,
            os_features: Vec::new(),
            variant: parts.get(2).map(|variant| (*variant).to_owned()),
        })
    }
}

/// An image manifest (OCI, or Docker schema 2 which has the same shape).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default, deserialize_with = "null_as_default")]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Index {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub manifests: Vec<Descriptor>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// The value of an `ExposedPorts` or `Volumes` entry: always `{}` (Go's `struct{}`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Empty;

impl Serialize for Empty {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        serializer.serialize_map(Some(0))?.end()
    }
}

impl<'de> Deserialize<'de> for Empty {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer)?;
        Ok(Empty)
    }
}

/// The image configuration (OCI image config, identical in shape to Docker's).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub config: ContainerConfig,
    pub rootfs: RootFs,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub history: Vec<History>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl ImageConfig {
    pub fn platform(&self) -> Platform {
        Platform {
            architecture: self.architecture.clone(),
            os: self.os.clone(),
            os_version: self.os_version.clone(),
            os_features: self.os_features.clone(),
            variant: self.variant.clone(),
        }
    }
}

/// What a container started from the image runs with (`config` in the image config).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ContainerConfig {
    #[serde(
        rename = "User",
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub user: String,
    #[serde(
        rename = "ExposedPorts",
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub exposed_ports: BTreeMap<String, Empty>,
    #[serde(
        rename = "Env",
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub env: Vec<String>,
    #[serde(
        rename = "Entrypoint",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(
        rename = "Volumes",
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub volumes: BTreeMap<String, Empty>,
    #[serde(
        rename = "WorkingDir",
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub working_dir: String,
    #[serde(
        rename = "Labels",
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(
        rename = "StopSignal",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stop_signal: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub diff_ids: Vec<Digest>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// One entry of a docker-archive's `manifest.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DockerArchiveEntry {
    #[serde(rename = "Config")]
    pub config: String,
    #[serde(rename = "RepoTags", default, deserialize_with = "null_as_default")]
    pub repo_tags: Vec<String>,
    #[serde(rename = "Layers", default, deserialize_with = "null_as_default")]
    pub layers: Vec<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_match_with_default_variants() {
        let platform = |text: &str| text.parse::<Platform>().unwrap();
        assert!(platform("linux/arm64").accepts(&platform("linux/arm64/v8")));
        assert!(platform("linux/arm64/v8").accepts(&platform("linux/arm64")));
        assert!(platform("linux/arm").accepts(&platform("linux/arm/v7")));
        assert!(!platform("linux/arm").accepts(&platform("linux/arm/v6")));
        assert!(platform("linux/arm/v6").accepts(&platform("linux/arm/v6")));
        assert!(platform("linux/amd64").accepts(&platform("linux/amd64/v3")));
        assert!(!platform("linux/amd64").accepts(&platform("linux/arm64")));
        assert!(!platform("linux/amd64").accepts(&platform("windows/amd64")));
    }

    #[test]
    fn docker_nulls_read_as_empty() {
        let config: ImageConfig = serde_json::from_str(
            r#"{"architecture":"amd64","os":"linux","config":{"Env":null,"Cmd":null,"Labels":null,"ExposedPorts":null,"Healthcheck":{"Test":["NONE"]}},"rootfs":{"type":"layers","diff_ids":null},"history":null}"#,
        )
        .unwrap();
        assert!(config.config.env.is_empty());
        assert_eq!(config.config.cmd, None);
        assert!(config.rootfs.diff_ids.is_empty());
        // Unknown fields survive a round trip.
        let bytes = crate::oci::json::to_canonical_vec(&config).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"architecture":"amd64","config":{"Healthcheck":{"Test":["NONE"]}},"os":"linux","rootfs":{"diff_ids":[],"type":"layers"}}"#
        );
    }

    #[test]
    fn platform_parses_and_prints() {
        for text in [
            "linux/amd64",
            "linux/arm64/v8",
            "linux/arm/v7",
            "linux/ppc64le",
        ] {
            assert_eq!(text.parse::<Platform>().unwrap().to_string(), text);
        }
        for text in [
            "linux",
            "linux/",
            "/amd64",
            "Linux/amd64",
            "linux/amd64/v8/x",
            "",
        ] {
            assert!(text.parse::<Platform>().is_err(), "{text:?}");
        }
    }
}
