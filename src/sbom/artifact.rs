//! The OCI artifact that carries an image's SBOM beside the image.
//!
//! The artifact ([`artifact_manifest`]) is an OCI image manifest with `artifactType`
//! `application/spdx+json`, the empty config (`{}`), the document as its one layer, the image
//! manifest as `subject`, and the image's `created` as `org.opencontainers.image.created`. In
//! an OCI layout or archive its blobs are stored and `index.json` does not list it: its
//! `subject` is how readers find it ([`write_artifact`]; `oci::layout` says why); a registry
//! gets it through the referrers API or the referrers tag schema (see `registry::push`).
//!
//! This module returns the SBOM's [`SbomError`]: storing the artifact is one step of writing
//! the SBOM, and its failures read as the SBOM's.

use std::collections::BTreeMap;

use super::{SPDX_MEDIA_TYPE, SbomError};
use crate::oci::digest::Digest;
use crate::oci::image::BlobSink;
use crate::oci::json::to_canonical_vec;
use crate::oci::spec::{Descriptor, Manifest, annotation, media_type};

/// The content of the OCI empty descriptor (image-spec v1.1).
pub const EMPTY_JSON: &[u8] = b"{}";

/// The descriptor of [`EMPTY_JSON`]: `application/vnd.oci.empty.v1+json`, sha256:44136fa…,
/// 2 bytes.
pub fn empty_descriptor() -> Descriptor {
    Descriptor::new(
        media_type::OCI_EMPTY,
        Digest::of(EMPTY_JSON),
        EMPTY_JSON.len() as u64,
    )
}

/// The SBOM artifact's manifest for the image manifest `subject`, and the manifest's
/// descriptor as a referrers index lists it (`artifactType` and the manifest's annotations
/// included, as the referrers API reports them).
///
/// Pinned: schemaVersion 2, `mediaType` OCI manifest, `artifactType`
/// `application/spdx+json`, config the empty descriptor, one layer `application/spdx+json`,
/// `subject` reduced to media type, digest and size, one annotation
/// `org.opencontainers.image.created` = the image's `created` (so the SBOM's date is the
/// image's, never the wall clock).
pub fn artifact_manifest(
    subject: &Descriptor,
    sbom: &[u8],
    created: &str,
) -> Result<(Vec<u8>, Descriptor), SbomError> {
    let mut annotations = BTreeMap::new();
    annotations.insert(annotation::CREATED.to_owned(), created.to_owned());
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.to_owned()),
        artifact_type: Some(SPDX_MEDIA_TYPE.to_owned()),
        config: empty_descriptor(),
        layers: vec![Descriptor::new(
            SPDX_MEDIA_TYPE,
            Digest::of(sbom),
            sbom.len() as u64,
        )],
        subject: Some(Descriptor::new(
            subject.media_type.clone(),
            subject.digest,
            subject.size,
        )),
        annotations: annotations.clone(),
        extra: BTreeMap::new(),
    };
    let bytes = to_canonical_vec(&manifest).map_err(SbomError::Json)?;
    let mut descriptor = Descriptor::new(
        media_type::OCI_MANIFEST,
        Digest::of(&bytes),
        bytes.len() as u64,
    );
    descriptor.artifact_type = Some(SPDX_MEDIA_TYPE.to_owned());
    descriptor.annotations = annotations;
    Ok((bytes, descriptor))
}

/// Store the SBOM artifact for `subject` in `sink` (its empty config, the document, the
/// manifest) and return the artifact's descriptor as the referrers API lists it. Nothing is
/// added to `index.json`: the artifact is found by its `subject`
/// ([`referrer_descriptor`](crate::oci::layout::referrer_descriptor)), so a layout holding an
/// image and its SBOMs still has one entry, the image.
pub fn write_artifact<S: BlobSink>(
    sink: &mut S,
    subject: &Descriptor,
    sbom: &[u8],
    created: &str,
) -> Result<Descriptor, SbomError> {
    let (manifest, descriptor) = artifact_manifest(subject, sbom, created)?;
    sink.put_blob(&Digest::of(EMPTY_JSON), EMPTY_JSON)
        .map_err(SbomError::Store)?;
    sink.put_blob(&Digest::of(sbom), sbom)
        .map_err(SbomError::Store)?;
    sink.put_blob(&descriptor.digest, &manifest)
        .map_err(SbomError::Store)?;
    Ok(descriptor)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The artifact manifest's bytes are pinned.
    #[test]
    fn artifact_manifest_golden() {
        let subject = Descriptor {
            platform: "linux/amd64".parse().ok(),
            annotations: [("a".to_owned(), "b".to_owned())].into_iter().collect(),
            ..Descriptor::new(
                media_type::OCI_MANIFEST,
                Digest::of(b"the image manifest"),
                1234,
            )
        };
        let (bytes, descriptor) = artifact_manifest(
            &subject,
            b"{\"spdxVersion\":\"SPDX-2.3\"}",
            "1970-01-01T00:00:01Z",
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            format!(
                concat!(
                    r#"{{"annotations":{{"org.opencontainers.image.created":"1970-01-01T00:00:01Z"}},"#,
                    r#""artifactType":"application/spdx+json","#,
                    r#""config":{{"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","mediaType":"application/vnd.oci.empty.v1+json","size":2}},"#,
                    r#""layers":[{{"digest":"{}","mediaType":"application/spdx+json","size":26}}],"#,
                    r#""mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2,"#,
                    r#""subject":{{"digest":"{}","mediaType":"application/vnd.oci.image.manifest.v1+json","size":1234}}}}"#
                ),
                Digest::of(b"{\"spdxVersion\":\"SPDX-2.3\"}"),
                Digest::of(b"the image manifest"),
            )
        );
        assert_eq!(
            descriptor.digest.to_string(),
            "sha256:6bab7b96ced9c829a815d1b32e8a370ffd47f4f803f431b075cb1a719e54e2f1"
        );
        assert_eq!(descriptor.size, bytes.len() as u64);
        assert_eq!(
            descriptor.artifact_type.as_deref(),
            Some("application/spdx+json")
        );
        assert_eq!(
            descriptor.annotations[annotation::CREATED],
            "1970-01-01T00:00:01Z"
        );
        assert!(crate::oci::layout::is_artifact_entry(&descriptor));
        // What a reader finds by the subject is the same descriptor.
        assert_eq!(
            crate::oci::layout::referrer_descriptor(descriptor.digest, &bytes),
            Some((Digest::of(b"the image manifest"), descriptor.clone()))
        );
    }

    #[test]
    fn empty_descriptor_is_the_specs() {
        let empty = empty_descriptor();
        assert_eq!(
            empty.digest.to_string(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(empty.size, 2);
    }
}
