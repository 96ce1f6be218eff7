//! A repository of a registry as a [`BlobSource`]: every document and blob read through the
//! distribution client, which checks each against its digest.

use std::io::Read;

use super::{BlobSource, TransportError, check};
use crate::oci::reader::DOCUMENT_LIMIT;
use crate::oci::reference::Reference;
use crate::oci::spec::{Descriptor, media_type};
use crate::registry::client::{ClientOptions, MANIFEST_LIMIT, Registry};

/// A repository of a registry as a blob source.
pub struct RemoteSource {
    pub registry: Registry,
    pub repository: String,
    location: String,
}

impl RemoteSource {
    pub fn connect(reference: &Reference, options: &ClientOptions) -> Result<Self, TransportError> {
        let registry = Registry::connect(&reference.registry, &reference.repository, options)?;
        Ok(RemoteSource {
            registry,
            repository: reference.repository.clone(),
            location: format!("docker://{}", reference.name()),
        })
    }

    /// The descriptor `reference` names: by digest when it has one, else by tag (`latest`
    /// when it has neither).
    pub fn resolve(&self, reference: &Reference) -> Result<Descriptor, TransportError> {
        let wanted = match (&reference.digest, &reference.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => "latest".to_owned(),
        };
        let fetched = self.registry.get_manifest(&self.repository, &wanted)?;
        Ok(Descriptor::new(
            fetched.media_type,
            fetched.digest,
            fetched.bytes.len() as u64,
        ))
    }
}

impl RemoteSource {
    /// The image manifest `reference` names for `platform`: the reference's own when it names
    /// a manifest, else the matching entry of the index it names.
    pub fn resolve_platform(
        &self,
        reference: &Reference,
        platform: &crate::oci::spec::Platform,
    ) -> Result<Descriptor, TransportError> {
        let root = self.resolve(reference)?;
        match super::pick_platform(self, &root, platform)? {
            super::PlatformPick::Image => Ok(root),
            super::PlatformPick::Picked { entry, .. } => Ok(*entry),
            super::PlatformPick::Missing { listing } => Err(TransportError::Invalid {
                location: format!("docker://{reference}"),
                message: format!("it has no {platform} image (it has {listing})"),
            }),
        }
    }
}

impl BlobSource for RemoteSource {
    fn describe(&self) -> String {
        self.location.clone()
    }

    fn read_document(&self, descriptor: &Descriptor) -> Result<Vec<u8>, TransportError> {
        if media_type::is_index(&descriptor.media_type)
            || media_type::is_manifest(&descriptor.media_type)
        {
            let fetched = self
                .registry
                .get_manifest(&self.repository, &descriptor.digest.to_string())?;
            check(&self.location, "manifest", descriptor, &fetched.bytes)?;
            return Ok(fetched.bytes);
        }
        if descriptor.size > DOCUMENT_LIMIT.max(MANIFEST_LIMIT) {
            return Err(TransportError::Invalid {
                location: self.location.clone(),
                message: format!(
                    "{} is {} bytes, more than a JSON document may have",
                    descriptor.digest, descriptor.size
                ),
            });
        }
        let mut bytes = Vec::with_capacity(descriptor.size as usize);
        self.registry
            .open_blob(&self.repository, &descriptor.digest, descriptor.size)?
            .read_to_end(&mut bytes)
            .map_err(|source| TransportError::Invalid {
                location: self.location.clone(),
                message: source.to_string(),
            })?;
        Ok(bytes)
    }

    fn open_blob(
        &self,
        descriptor: &Descriptor,
    ) -> Result<Box<dyn Read + Send + '_>, TransportError> {
        Ok(Box::new(self.registry.open_blob(
            &self.repository,
            &descriptor.digest,
            descriptor.size,
        )?))
    }

    fn registry_repository(&self) -> Option<(&str, &str)> {
        Some((&self.registry.host, &self.repository))
    }
}
