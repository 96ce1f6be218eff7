//! Realising an image: its packages, its base (a pinned registry image fetched into the store,
//! or the static base), the layers fitted to `max_layers`, one manifest per platform under an
//! index when there are several, and an SBOM beside each, in one docker-archive that is also
//! an OCI layout.

use std::path::{Path, PathBuf};

use super::plan::{ImagePlan, PlatformPlan};
use super::sbom::sbom_document;
use super::{BuildError, Builder};
use crate::diagnostic::PathError;
use crate::oci::archive::{ArchiveKind, ArchiveWriter};
use crate::oci::compression::Compression;
use crate::oci::image::{ImageRequest, RequestLayer, build_image};
use crate::oci::spec::ContainerConfig;
use crate::oci::tree::FileTree;
use crate::recipes;
use crate::store::{Realised, Staged, Unpublished};

impl Builder<'_> {
    /// Build the image of `plan` (and its packages) unless the store has it: one manifest per
    /// platform, under an index when there are several, in a docker-archive that is also an
    /// OCI layout.
    ///
    /// The packages are realised only when the image itself must be built: an image in the
    /// store, or substituted from a shared cache, needs none of them (its archive holds its
    /// programs). The image's lock is held meanwhile; a package build never takes an image's
    /// lock, and a kiln waits for a package's lock only while it holds no other package's
    /// (the last package built stays unpublished, its lock held, until the image is written,
    /// then both are published side by side), so the order cannot deadlock.
    pub fn realise_image(&self, plan: &ImagePlan) -> Result<Realised, BuildError> {
        let label = format!(
            "{}:{}",
            plan.image.reference.familiar_name(),
            plan.image.tag()
        );
        // The last package built here is published once the image is written, on a thread of
        // its own beside the image's publishing: hashing the package's programs (tens of MB)
        // then runs beside hashing the image that holds them, not before it (issue 18).
        let mut unpublished: Option<Unpublished<'_>> = None;
        let staged = self.store.stage(
            &plan.recipe,
            || (self.status)(&format!("waiting for another kiln building image {label}")),
            |temp| {
                let static_rootfs = match &plan.static_sources {
                    Some(sources) => Some(crate::static_base::realise(
                        &self.store,
                        sources,
                        self.status,
                    )?),
                    None => None,
                };
                let mut package_paths = Vec::new();
                // The static base's layer (hundreds of tzdata files) is laid out while Go runs.
                let static_layer = std::thread::scope(|scope| {
                    let static_layer = static_rootfs
                        .as_deref()
                        .map(|rootfs| scope.spawn(move || crate::static_base::layer_tree(rootfs)));
                    for platform in &plan.platforms {
                        // At most one package is held unpublished (its lock taken): two
                        // images staging the same packages in another order would otherwise
                        // each hold one the other waits for. The one held is the last so far.
                        if let Some(earlier) = unpublished.take()
                            && let Some(path) = package_paths.last_mut()
                        {
                            *path = earlier.publish()?.path;
                        }
                        match self.stage_package(&platform.package)? {
                            Staged::Present(realised) => package_paths.push(realised.path),
                            Staged::Built(package) => {
                                package_paths.push(package.path().to_owned());
                                unpublished = Some(package);
                            }
                        }
                    }
                    match static_layer.map(|layer| layer.join()) {
                        Some(Ok(layer)) => Ok::<_, BuildError>(Some(layer?)),
                        Some(Err(panic)) => std::panic::resume_unwind(panic),
                        None => Ok(None),
                    }
                })?;
                (self.status)(&format!(
                    "building image {label} (image `{}`{})",
                    plan.image.key,
                    if plan.platforms.len() > 1 {
                        format!(
                            ", {}",
                            plan.platforms
                                .iter()
                                .map(|platform| platform.package.package.platform.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    } else {
                        String::new()
                    }
                ));
                self.write_image(plan, &package_paths, static_layer.as_ref(), temp)?;
                Ok::<_, BuildError>(temp.to_owned())
            },
        );
        let image = match staged {
            // In the store already, or substituted: no package was built.
            Ok(Staged::Present(realised)) => return Ok(realised),
            Ok(Staged::Built(image)) => image,
            Err(error) => {
                // The package was built well; what failed was the image (a program its base
                // cannot run, say): it is kept, as when it was published first.
                if let Some(package) = unpublished {
                    let _ = package.publish();
                }
                return Err(error);
            }
        };
        std::thread::scope(|scope| {
            let package = unpublished.map(|package| scope.spawn(move || package.publish()));
            let image = image.publish();
            if let Some(package) = package {
                package
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            }
            Ok(image?)
        })
    }

    /// Write the image archive of `plan` at `temp`, its packages built (at `packages`, one
    /// per platform) and its static base's layer laid out. Its own layers are plain tars (a
    /// registry base's stay as they came): `kiln push` compresses them as the image's
    /// `compression` says, which its `index.json` entry carries (`transport::compress`).
    fn write_image(
        &self,
        plan: &ImagePlan,
        packages: &[PathBuf],
        static_layer: Option<&FileTree>,
        temp: &Path,
    ) -> Result<(), BuildError> {
        let mut requests = Vec::new();
        for (platform, package) in plan.platforms.iter().zip(packages) {
            let base = match &platform.base {
                Some((reference, digest)) => Some(self.realise_base(reference, digest)?),
                None => None,
            };
            let base_layers = match &base {
                Some(base) => base.manifest.layers.len(),
                None => usize::from(static_layer.is_some()),
            };
            let mut request =
                self.image_request(plan, platform, package, static_layer, base_layers)?;
            request.base = base;
            let base_name = match &plan.image.base {
                None => "`scratch`, no base".to_owned(),
                Some(crate::project::config::Base::Static) => {
                    format!("`{}`, kiln's own", crate::project::config::STATIC_BASE)
                }
                Some(crate::project::config::Base::Image(reference)) => format!("`{reference}`"),
            };
            super::executable::check(
                &plan.image.key,
                &request,
                package,
                &base_name,
                &self.store,
                self.status,
            )?;
            requests.push(request);
        }
        let file = std::fs::File::create(temp).map_err(PathError::write(temp))?;
        let mut archive = ArchiveWriter::to_file(file, ArchiveKind::Docker, plan.mtime)
            .map_err(PathError::write(temp))?;
        let mut images = Vec::new();
        for ((request, platform), package) in requests.iter().zip(&plan.platforms).zip(packages) {
            let image =
                build_image(request, &mut archive, &mut |_| {}).map_err(writing_to(temp))?;
            if plan.image.sbom {
                let document =
                    sbom_document(plan, platform, package, &image, &self.store.go_home())?;
                // Stored, not listed in index.json: found by its subject (see oci::layout).
                crate::sbom::write_artifact(
                    &mut archive,
                    &image.manifest_descriptor,
                    &document,
                    &plan.created,
                )
                .map_err(|source| BuildError::Sbom {
                    image: plan.image.key.clone(),
                    source: Box::new(source),
                })?;
            }
            images.push(image);
        }
        let mut entry = if images.len() == 1 {
            images[0].layout_entry()
        } else {
            let (_, descriptor) =
                crate::oci::image::build_index(&images, &plan.annotations, &mut archive)
                    .map_err(writing_to(temp))?;
            crate::oci::layout::index_entry(&descriptor, &plan.image.reference, &images)
        };
        entry.descriptor.annotations.insert(
            crate::transport::compress::COMPRESSION_ANNOTATION.to_owned(),
            plan.image.compression.to_string(),
        );
        archive.finish(&[entry]).map_err(PathError::write(temp))?;
        Ok(())
    }

    /// The base image `reference` pinned at `digest`: fetched once into the store (every blob
    /// verified) as an OCI layout, then read from there.
    pub fn realise_base(
        &self,
        reference: &crate::oci::reference::Reference,
        digest: &crate::oci::digest::Digest,
    ) -> Result<crate::oci::image::BaseImage, BuildError> {
        let realised = self.store.realise(
            &recipes::base_image(digest),
            || (self.status)(&format!("waiting for another kiln fetching {reference}")),
            |temp| {
                (self.status)(&format!("fetching base image {reference}@{digest}"));
                let fetched = (|| -> Result<(), crate::transport::TransportError> {
                    let options = crate::registry::client::ClientOptions::from_env(false);
                    let pinned = crate::oci::reference::Reference {
                        tag: None,
                        digest: Some(*digest),
                        ..reference.clone()
                    };
                    let location = crate::transport::Location::Docker(pinned);
                    let crate::transport::OpenedImage { source, graph, .. } =
                        crate::transport::open(&location, &options)?;
                    let entry = graph.layout_entry(None, Some("base".to_owned()));
                    crate::transport::write_layout(source.as_ref(), &graph, temp, entry)
                })();
                fetched.map_err(|source| BuildError::FetchBase {
                    base: reference.to_string(),
                    digest: digest.to_string(),
                    source: Box::new(source),
                })?;
                Ok::<_, BuildError>(temp.to_owned())
            },
        )?;
        let path = realised.path;
        let read_error = |source| BuildError::FetchBase {
            base: reference.to_string(),
            digest: digest.to_string(),
            source: Box::new(source),
        };
        let local = crate::transport::LocalSource::open(&path, path.display().to_string())
            .map_err(read_error)?;
        let descriptor = local
            .source
            .index_entries()
            .map_err(|error| read_error(error.into()))?
            .and_then(|entries| entries.into_iter().next())
            .map(|(descriptor, _)| descriptor)
            .filter(|descriptor| descriptor.digest == *digest)
            .ok_or_else(|| {
                read_error(crate::transport::TransportError::Invalid {
                    location: path.display().to_string(),
                    message: format!("the store's copy does not hold {digest}"),
                })
            })?;
        use crate::transport::BlobSource;
        let bytes = local.read_document(&descriptor).map_err(read_error)?;
        let invalid = |message: String| {
            read_error(crate::transport::TransportError::Invalid {
                location: format!("{reference}@{digest}"),
                message,
            })
        };
        if !crate::oci::spec::media_type::is_manifest(&descriptor.media_type) {
            return Err(invalid(format!(
                "it is a {}, not an image manifest",
                descriptor.media_type
            )));
        }
        let manifest: crate::oci::spec::Manifest = serde_json::from_slice(&bytes)
            .map_err(|error| invalid(format!("its manifest is not valid: {error}")))?;
        let config_bytes = local.read_document(&manifest.config).map_err(read_error)?;
        let config: crate::oci::spec::ImageConfig = serde_json::from_slice(&config_bytes)
            .map_err(|error| invalid(format!("its config is not valid: {error}")))?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(invalid(format!(
                "its manifest lists {} layers and its config {} diff_ids",
                manifest.layers.len(),
                config.rootfs.diff_ids.len()
            )));
        }
        Ok(crate::oci::image::BaseImage {
            reference: reference.clone(),
            descriptor,
            manifest,
            config,
            layout: path,
        })
    }

    /// The request for one platform's image: the layers from least to most often changing
    /// (kiln's static base, the declared folders and links, each `[[files]]` entry, the
    /// package's programs), merged to fit `max_layers`.
    fn image_request(
        &self,
        plan: &ImagePlan,
        platform: &PlatformPlan,
        package_path: &Path,
        static_layer: Option<&FileTree>,
        base_layers: usize,
    ) -> Result<ImageRequest, BuildError> {
        let image = &plan.image;
        let package = &platform.package.package;
        let mut tree = FileTree::new();
        for path in &image.paths {
            let source = package_path.join(path.as_str());
            if std::fs::symlink_metadata(&source).is_err() {
                let has = std::fs::read_dir(package_path)
                    .map(|entries| {
                        entries
                            .flatten()
                            .map(|entry| format!("/{}", entry.file_name().to_string_lossy()))
                            .collect()
                    })
                    .unwrap_or_default();
                return Err(BuildError::MissingImagePath {
                    image: image.key.clone(),
                    package: package.key.clone(),
                    path: path.to_string(),
                    has,
                });
            }
            tree.add(&source, &path.to_string())?;
        }
        let in_bin = image.paths.iter().any(|path| path.as_str() == "bin");
        let cmd = match (&image.cmd, &package.program) {
            (Some(cmd), _) => Some(cmd.clone()),
            (None, Some(program)) if in_bin => Some(vec![format!("/bin/{program}")]),
            (None, None) if in_bin && package.mains.len() > 1 => {
                return Err(BuildError::NoCommand {
                    image: image.key.clone(),
                    package: package.key.clone(),
                    programs: package.programs().map(str::to_owned).collect(),
                });
            }
            (None, _) => None,
        };
        let on_static = plan.static_sources.is_some();
        let user = match image.user.as_deref() {
            // Numeric, so Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
            Some("nonroot") if on_static => {
                format!("{uid}:{uid}", uid = crate::static_base::NONROOT_UID)
            }
            Some(user) => user.to_owned(),
            None => String::new(),
        };
        let mut container = ContainerConfig {
            user,
            exposed_ports: image
                .expose
                .iter()
                .map(|port| (port.clone(), Default::default()))
                .collect(),
            volumes: image
                .volumes
                .iter()
                .map(|volume| (volume.clone(), Default::default()))
                .collect(),
            env: image
                .env
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect(),
            entrypoint: image.entrypoint.clone(),
            cmd,
            working_dir: image.workdir.clone().unwrap_or_default(),
            labels: image.labels.clone(),
            ..ContainerConfig::default()
        };
        if on_static {
            container = crate::oci::image::inherit(
                &ContainerConfig {
                    env: crate::static_base::ENV
                        .iter()
                        .map(|&text| text.to_owned())
                        .collect(),
                    ..ContainerConfig::default()
                },
                &container,
            );
        }
        // Ours, least often changing first; none may place what another places.
        let mut ours: Vec<RequestLayer> = Vec::new();
        ours.push(RequestLayer {
            tree: plan.declared.tree.clone(),
            created_by: "kiln: dirs and symlinks".to_owned(),
            mtime: None,
        });
        for (entry, placed) in image.files.iter().zip(&plan.files) {
            ours.push(RequestLayer {
                tree: placed.tree.clone(),
                created_by: format!("kiln: files {} -> {}", entry.src, entry.dest),
                mtime: None,
            });
        }
        ours.push(RequestLayer {
            tree,
            created_by: format!("kiln: package {}", package.key),
            mtime: None,
        });
        ours.retain(|layer| !layer.tree.is_empty());
        let mut all = FileTree::new();
        for layer in &ours {
            all.merge(layer.tree.clone())?;
        }
        let ours = match image
            .max_layers
            .checked_sub(base_layers)
            .filter(|left| *left > 0)
        {
            Some(left) => fit_layers(ours, left)?,
            None => {
                return Err(BuildError::LayerBudget {
                    image: image.key.clone(),
                    max: image.max_layers,
                    base: base_layers,
                });
            }
        };
        let mut layers = Vec::new();
        if let Some(static_tree) = static_layer {
            layers.push(RequestLayer {
                tree: static_tree.clone(),
                created_by: "kiln: static base".to_owned(),
                mtime: Some(crate::static_base::LAYER_MTIME),
            });
        }
        layers.extend(ours);
        Ok(ImageRequest {
            reference: image.reference.clone(),
            platform: package.platform.clone(),
            created: plan.created.clone(),
            mtime: plan.mtime,
            // Plain tars in the store; compressed on the way to a registry (see write_image).
            compression: Compression::None,
            container,
            layers,
            annotations: plan.annotations.clone(),
            base: None,
        })
    }
}

/// An image error while writing the archive at `path`: a failed write (a full disk) names
/// the file; other errors stay as they are.
pub(super) fn writing_to(path: &Path) -> impl Fn(crate::oci::image::ImageError) -> BuildError + '_ {
    use crate::oci::image::ImageError;
    use crate::oci::layer::LayerError;
    move |error| match error {
        ImageError::Sink(source) | ImageError::Layer(LayerError::Write(source)) => {
            PathError::write(path)(source).into()
        }
        other => BuildError::Image(other),
    }
}

/// Fit `layers` (bottom first) into `budget` layers: the top one (the programs, which change
/// most) stays alone, the bottom ones stay as they are, and those that do not fit in between
/// merge into one.
pub(super) fn fit_layers(
    layers: Vec<RequestLayer>,
    budget: usize,
) -> Result<Vec<RequestLayer>, BuildError> {
    if layers.len() <= budget {
        return Ok(layers);
    }
    let mut layers = layers;
    let merge = |group: Vec<RequestLayer>| -> Result<RequestLayer, BuildError> {
        let mut tree = FileTree::new();
        let mut created_by = Vec::new();
        for layer in group {
            tree.merge(layer.tree)?;
            created_by.push(layer.created_by);
        }
        Ok(RequestLayer {
            tree,
            created_by: created_by.join("; "),
            mtime: None,
        })
    };
    if budget == 1 {
        return Ok(vec![merge(layers)?]);
    }
    let top = layers.pop().expect("more layers than the budget");
    let overflow = layers.split_off(budget - 2);
    layers.push(merge(overflow)?);
    layers.push(top);
    Ok(layers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(name: &str) -> RequestLayer {
        let mut tree = FileTree::new();
        tree.insert_node(
            crate::oci::tree::ImagePath::parse_absolute(&format!("/{name}")).unwrap(),
            crate::oci::tree::Node::Directory {
                attributes: crate::oci::tree::Attributes::DIRECTORY,
                origin: None,
            },
        )
        .unwrap();
        RequestLayer {
            tree,
            created_by: name.to_owned(),
            mtime: None,
        }
    }

    fn names(layers: &[RequestLayer]) -> Vec<String> {
        layers
            .iter()
            .map(|layer| layer.created_by.clone())
            .collect()
    }

    #[test]
    fn layers_beyond_the_budget_merge_below_the_programs() {
        let all = || ["dirs", "a", "b", "c", "programs"].map(layer).to_vec();
        assert_eq!(
            names(&fit_layers(all(), 5).unwrap()),
            ["dirs", "a", "b", "c", "programs"]
        );
        assert_eq!(
            names(&fit_layers(all(), 4).unwrap()),
            ["dirs", "a", "b; c", "programs"]
        );
        assert_eq!(
            names(&fit_layers(all(), 2).unwrap()),
            ["dirs; a; b; c", "programs"]
        );
        let one = fit_layers(all(), 1).unwrap();
        assert_eq!(names(&one), ["dirs; a; b; c; programs"]);
        assert_eq!(one[0].tree.len(), 5);
    }
}
