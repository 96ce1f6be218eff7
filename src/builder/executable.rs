//! The program an image starts must be in the image.
//!
//! An absolute `entrypoint` (or, without one, `cmd`) executable that no layer places, the
//! base's included, is an error before the image is made: an engine would only say so when
//! the container starts (`exec /usr/bin/example: no such file or directory`), in production.
//! A relative one (`cmd = ["example"]`) is looked up in PATH by the runtime and stays
//! allowed; so does an executable the image's own base names, which kiln.toml did not set.
//!
//! The path is resolved as the kernel resolves it: through symlinks at any component
//! (absolute targets from the image root, relative ones from the link's folder; `..` stops
//! at the root), at most [`MAX_LINKS`] of them, over the image's files as the layers leave
//! them (the base's whiteouts applied). kiln's own layers are looked at first; the base's
//! files only when the program is not among kiln's. Those are listed once per base, from its
//! layers, into the store (`base-files/1`, named by the base's manifest digest, see
//! [`crate::recipes`]): a rebuild on the same base reads the listing, not the base's layers
//! again. What the listing holds depends on nothing but the base, so it cannot go stale.
//!
//! The package's programs must also be able to start: a dynamically linked one (a cgo program
//! linked against glibc) names its loader in a `PT_INTERP` header ([`crate::oci::elf`]), and
//! the kernel fails with the same `no such file or directory` when the image lacks that file.
//! So each program of the package's layer that asks for a loader must find it, resolved the
//! same way, as a regular executable file; `scratch` and kiln's static base have none, and
//! the error names the program, the loader and the base. The libraries the loader then
//! looks for are not checked (their search path is the loader's and the base's business).
//!
//! The listing is the JSON of a map, keys sorted: each absolute path to `"directory"`,
//! `"other"`, `{"file":{"mode":493}}` or `{"symlink":"TARGET"}` (no whitespace, as
//! `serde_json` writes it), so the same base gives the same bytes on every machine.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::diagnostic::{Hint, PathError};
use crate::oci::image::{BaseImage, ImageRequest, RequestLayer};
use crate::oci::inspect::{FileKind, FileRecord};
use crate::oci::tree::Node;
use crate::store::{Store, StoreError};

/// Symlinks followed while resolving one path, as Linux's `MAXSYMLINKS` (40).
pub const MAX_LINKS: usize = 40;

/// How many of the image's executables an error lists.
const LISTED: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum ExecutableError {
    #[error("image `{image}`: `{key}` starts {path}, which is in no layer of the image{}", listing(.executables))]
    Missing {
        image: String,
        key: &'static str,
        path: String,
        /// The image's executables, those with the same file name first.
        executables: Vec<String>,
    },
    #[error("image `{image}`: `{key}` starts {path}, which is {what} in the image, not a program")]
    NotAProgram {
        image: String,
        key: &'static str,
        path: String,
        what: &'static str,
    },
    #[error("image `{image}`: `{key}` starts {path}, which is not executable (mode {mode:04o})")]
    NotExecutable {
        image: String,
        key: &'static str,
        path: String,
        mode: u32,
    },
    #[error(
        "image `{image}`: `{key}` starts {path}, whose symlinks do not resolve within {MAX_LINKS} links"
    )]
    Loop {
        image: String,
        key: &'static str,
        path: String,
    },
    #[error(
        "image `{image}`: {program} is dynamically linked and needs the loader {interpreter}, which {problem} (base: {base})"
    )]
    MissingLoader {
        image: String,
        /// The program's path in the image.
        program: String,
        interpreter: String,
        /// `is not in the image`, `is a folder in the image`, …
        problem: String,
        /// The base as kiln.toml names it (`scratch`, `static`, a reference).
        base: String,
    },
    #[error("cannot read the base image's layers at {} to find {what}", .layout.display())]
    Base {
        /// `` `entrypoint`'s program ``, `the loader /lib64/ld-linux-x86-64.so.2`.
        what: String,
        layout: std::path::PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{} is not a valid listing of a base image's files", .path.display())]
    InvalidListing {
        path: std::path::PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Path(#[from] PathError),
}

fn listing(executables: &[String]) -> String {
    if executables.is_empty() {
        "; it holds no executable file".to_owned()
    } else {
        let more = if executables.len() > LISTED {
            ", …"
        } else {
            ""
        };
        format!(
            "; its executables: {}{more}",
            executables[..executables.len().min(LISTED)].join(", ")
        )
    }
}

impl Hint for ExecutableError {
    fn hint(&self) -> Option<String> {
        match self {
            ExecutableError::Missing {
                key,
                path,
                executables,
                ..
            } => {
                let name = path.rsplit('/').next().unwrap_or_default();
                let same = executables
                    .iter()
                    .find(|candidate| candidate.rsplit('/').next() == Some(name));
                Some(match same {
                    Some(candidate) => format!("{key} = [\"{candidate}\"]"),
                    None => format!(
                        "name a program the image holds, or a bare name (`{key} = [\"{name}\"]`) for the runtime to look up in PATH"
                    ),
                })
            }
            ExecutableError::NotExecutable { .. } => {
                Some("set the file's mode in [[files]] (`mode = \"0755\"`)".to_owned())
            }
            ExecutableError::MissingLoader { .. } => Some(
                "link the package statically (`c-libc = \"musl\"`, kiln's default: it runs on any base), or build on a base with glibc, such as `base = \"gcr.io/distroless/base-debian12\"` or `base = \"debian:12-slim\"`"
                    .to_owned(),
            ),
            ExecutableError::Store(inner) => inner.hint(),
            _ => None,
        }
    }
}

/// An entry of the image's file system as the layers leave it (its JSON in a listing: see
/// the module doc).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Entry {
    File {
        mode: u32,
    },
    Directory,
    Symlink(String),
    /// A device, fifo or other entry that is not a program.
    Other,
}

/// The image's files by absolute path (`/bin/example`), the root implied.
#[derive(Default, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
struct Files(BTreeMap<String, Entry>);

impl Files {
    fn from_layers(layers: &[RequestLayer]) -> Files {
        let mut files = Files::default();
        for layer in layers {
            for (path, node) in layer.tree.entries() {
                let entry = match node {
                    Node::File { attributes, .. } => Entry::File {
                        mode: attributes.mode,
                    },
                    Node::Directory { .. } => Entry::Directory,
                    Node::Symlink { target, .. } => Entry::Symlink(target.clone()),
                };
                files.0.insert(format!("/{}", path.as_str()), entry);
            }
        }
        files
    }

    /// Apply one layer of `records` (a base layer, as `kiln inspect` reads it) on top:
    /// whiteouts remove what is below, an opaque whiteout empties its folder.
    fn apply_records(&mut self, records: &[FileRecord]) {
        for record in records {
            let path = record.path.trim_end_matches('/');
            let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
            if name == ".wh..wh..opq" {
                let prefix = format!("{parent}/");
                self.0.retain(|existing, _| !existing.starts_with(&prefix));
                continue;
            }
            if let Some(hidden) = name.strip_prefix(".wh.") {
                let hidden = format!("{parent}/{hidden}");
                let prefix = format!("{hidden}/");
                self.0
                    .retain(|existing, _| *existing != hidden && !existing.starts_with(&prefix));
                continue;
            }
        }
        for record in records {
            let path = record.path.trim_end_matches('/');
            let name = path.rsplit('/').next().unwrap_or_default();
            if name.starts_with(".wh.") || path.is_empty() {
                continue;
            }
            let entry = match record.kind {
                FileKind::File => Entry::File { mode: record.mode },
                // A hard link is the file it links, which is listed before it.
                FileKind::HardLink => {
                    let target = record.link_target.as_deref().unwrap_or_default();
                    let target = format!("/{}", target.trim_start_matches("./").trim_matches('/'));
                    match self.0.get(&target) {
                        Some(Entry::File { mode }) => Entry::File { mode: *mode },
                        _ => Entry::File { mode: record.mode },
                    }
                }
                FileKind::Directory => Entry::Directory,
                FileKind::Symlink => Entry::Symlink(record.link_target.clone().unwrap_or_default()),
                _ => Entry::Other,
            };
            self.0.insert(path.to_owned(), entry);
        }
    }

    /// Resolve `path` through symlinks: the final path and its entry, `Ok(None)` when a
    /// component is missing, `Err(())` past [`MAX_LINKS`] links.
    fn resolve(&self, path: &str) -> Result<Option<(String, &Entry)>, ()> {
        let mut pending: Vec<String> = components(path).into_iter().rev().collect();
        let mut resolved: Vec<String> = Vec::new();
        let mut links = 0;
        while let Some(component) = pending.pop() {
            if component == ".." {
                resolved.pop();
                continue;
            }
            resolved.push(component);
            let current = format!("/{}", resolved.join("/"));
            match self.0.get(&current) {
                None => return Ok(None),
                Some(Entry::Symlink(target)) => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(());
                    }
                    resolved.pop();
                    if target.starts_with('/') {
                        resolved.clear();
                    }
                    pending.extend(components(target).into_iter().rev());
                }
                Some(entry) if pending.is_empty() => return Ok(Some((current, entry))),
                Some(Entry::Directory) => {}
                // A file in the middle of a path: nothing is below it.
                Some(_) => return Ok(None),
            }
        }
        Ok(None)
    }

    /// Every executable regular file, those named `name` first, each group sorted.
    fn executables(&self, name: &str) -> Vec<String> {
        let mut found: Vec<&String> = self
            .0
            .iter()
            .filter(|(_, entry)| matches!(entry, Entry::File { mode } if mode & 0o111 != 0))
            .map(|(path, _)| path)
            .collect();
        found.sort_by_key(|path| (path.rsplit('/').next() != Some(name), path.as_str()));
        found.into_iter().cloned().collect()
    }
}

fn components(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|component| !component.is_empty() && *component != ".")
        .map(str::to_owned)
        .collect()
}

/// The executable that kiln.toml makes the image start, and the key that names it: the
/// entrypoint's first word when the image (with its base's config) has an entrypoint and
/// kiln.toml set it, else the command's when kiln set the command and there is no entrypoint.
fn declared_program<'a>(
    ours: &'a crate::oci::spec::ContainerConfig,
    merged: &'a crate::oci::spec::ContainerConfig,
) -> Option<(&'static str, &'a str)> {
    let first = |words: &'a Option<Vec<String>>| {
        words
            .as_ref()
            .and_then(|words| words.first())
            .map(String::as_str)
    };
    match first(&merged.entrypoint) {
        Some(program) => ours.entrypoint.is_some().then_some(("entrypoint", program)),
        None => ours
            .cmd
            .is_some()
            .then_some(first(&merged.cmd).map(|program| ("cmd", program)))
            .flatten(),
    }
}

/// The image's files as [`check`] needs them: kiln's layers, with the base's under them
/// once a path is not found among kiln's (listed from its layout the first time).
struct ImageFiles<'a> {
    files: Files,
    base: Option<&'a BaseImage>,
    store: &'a Store,
    status: &'a dyn Fn(&str),
}

impl ImageFiles<'_> {
    /// Resolve `path` over kiln's files, and over the base's too when it is not among them
    /// (`what` names what is looked for, for an unreadable base).
    fn resolve(
        &mut self,
        path: &str,
        what: impl FnOnce() -> String,
    ) -> Result<Result<Option<(String, Entry)>, ()>, ExecutableError> {
        let found = |files: &Files| {
            files
                .resolve(path)
                .map(|found| found.map(|(path, entry)| (path, entry.clone())))
        };
        let ours = found(&self.files);
        if matches!(ours, Ok(Some(_))) {
            return Ok(ours);
        }
        let Some(base) = self.base.take() else {
            return Ok(ours);
        };
        // kiln's files over the base's (kiln's layers hold no whiteouts).
        let mut all = base_files(self.store, base, &what(), self.status)?;
        all.0.append(&mut self.files.0);
        self.files = all;
        Ok(found(&self.files))
    }
}

/// Check that the program `request` starts is in the image: in `request`'s layers, else in
/// the base's (listed from its layout into `store` the first time, see `base_files`); and
/// that every program of the package (the files of `request`'s layers that come from
/// `package`, its output folder) that asks for a loader finds it in the image. `base` names
/// the base as kiln.toml does, for the error. `status` hears of a wait for another kiln
/// listing the same base.
pub fn check(
    image: &str,
    request: &ImageRequest,
    package: &Path,
    base: &str,
    store: &Store,
    status: &dyn Fn(&str),
) -> Result<(), ExecutableError> {
    let mut files = ImageFiles {
        files: Files::from_layers(&request.layers),
        base: request.base.as_ref(),
        store,
        status,
    };
    check_program(image, request, &mut files)?;
    check_loaders(image, request, package, base, &mut files)
}

/// The program the image starts (see the module doc).
fn check_program(
    image: &str,
    request: &ImageRequest,
    files: &mut ImageFiles<'_>,
) -> Result<(), ExecutableError> {
    let merged = match &request.base {
        Some(base) => crate::oci::image::inherit(&base.config.config, &request.container),
        None => request.container.clone(),
    };
    let Some((key, program)) = declared_program(&request.container, &merged) else {
        return Ok(());
    };
    if !program.starts_with('/') {
        return Ok(());
    }
    let error_fields = || (image.to_owned(), key, program.to_owned());
    match files.resolve(program, || format!("`{key}`'s program"))? {
        Ok(Some((_, Entry::File { mode }))) if mode & 0o111 == 0 => {
            let (image, key, path) = error_fields();
            Err(ExecutableError::NotExecutable {
                image,
                key,
                path,
                mode,
            })
        }
        Ok(Some((_, Entry::File { .. }))) => Ok(()),
        Ok(Some((_, entry))) => {
            let (image, key, path) = error_fields();
            Err(ExecutableError::NotAProgram {
                image,
                key,
                path,
                what: match entry {
                    Entry::Directory => "a folder",
                    _ => "a device or fifo",
                },
            })
        }
        Ok(None) => {
            let (image, key, path) = error_fields();
            let name = path.rsplit('/').next().unwrap_or_default().to_owned();
            Err(ExecutableError::Missing {
                image,
                key,
                executables: files.files.executables(&name),
                path,
            })
        }
        Err(()) => {
            let (image, key, path) = error_fields();
            Err(ExecutableError::Loop { image, key, path })
        }
    }
}

/// The loader of each dynamically linked program of the package (see the module doc).
fn check_loaders(
    image: &str,
    request: &ImageRequest,
    package: &Path,
    base: &str,
    files: &mut ImageFiles<'_>,
) -> Result<(), ExecutableError> {
    let mut programs: Vec<(String, &Path)> = Vec::new();
    for layer in &request.layers {
        for (path, node) in layer.tree.entries() {
            if let Node::File {
                attributes, source, ..
            } = node
                && attributes.mode & 0o111 != 0
                && source.starts_with(package)
            {
                programs.push((format!("/{}", path.as_str()), source));
            }
        }
    }
    programs.sort();
    for (program, source) in programs {
        let Some(interpreter) =
            crate::oci::elf::interpreter_of(source).map_err(PathError::read(source))?
        else {
            continue;
        };
        let problem = match files.resolve(&interpreter, || format!("the loader {interpreter}"))? {
            Ok(Some((_, Entry::File { mode }))) if mode & 0o111 != 0 => continue,
            Ok(Some((_, Entry::File { mode }))) => {
                format!("is not executable in the image (mode {mode:04o})")
            }
            Ok(Some((_, Entry::Directory))) => "is a folder in the image".to_owned(),
            Ok(Some(_)) => "is a device or fifo in the image".to_owned(),
            Ok(None) => "is not in the image".to_owned(),
            Err(()) => format!("does not resolve within {MAX_LINKS} links in the image"),
        };
        return Err(ExecutableError::MissingLoader {
            image: image.to_owned(),
            program,
            interpreter,
            problem,
            base: base.to_owned(),
        });
    }
    Ok(())
}

/// The files `base`'s layers leave: the store's listing of them, made from the base's layout
/// the first time (by manifest digest, so one listing serves every image and rebuild on it).
fn base_files(
    store: &Store,
    base: &BaseImage,
    what: &str,
    status: &dyn Fn(&str),
) -> Result<Files, ExecutableError> {
    let base_error = |source| ExecutableError::Base {
        what: what.to_owned(),
        layout: base.layout.clone(),
        source,
    };
    let realised = store.realise(
        &crate::recipes::base_files(&base.descriptor.digest),
        || {
            status(&format!(
                "waiting for another kiln listing the files of {}",
                base.reference
            ))
        },
        |temp| {
            let mut files = Files::default();
            for records in base_layers(&base.layout).map_err(base_error)? {
                files.apply_records(&records);
            }
            let bytes = serde_json::to_vec(&files).map_err(|error| base_error(Box::new(error)))?;
            std::fs::write(temp, bytes).map_err(PathError::write(temp))?;
            Ok::<_, ExecutableError>(temp.to_owned())
        },
    )?;
    let bytes = std::fs::read(&realised.path).map_err(PathError::read(&realised.path))?;
    serde_json::from_slice(&bytes).map_err(|source| ExecutableError::InvalidListing {
        path: realised.path,
        source,
    })
}

/// The entries of each layer of the one image in the base's layout, bottom first.
fn base_layers(
    layout: &Path,
) -> Result<Vec<Vec<FileRecord>>, Box<dyn std::error::Error + Send + Sync>> {
    let reader = crate::oci::reader::ImageReader::open(layout)?;
    let reports = crate::oci::inspect::inspect(&reader)?;
    let report = reports
        .into_iter()
        .next()
        .ok_or("the base's layout holds no image")?;
    Ok(report.layers.into_iter().map(|layer| layer.files).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: &str, kind: FileKind, mode: u32, link: Option<&str>) -> FileRecord {
        FileRecord {
            path: path.to_owned(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            size: 0,
            link_target: link.map(str::to_owned),
            content_digest: None,
        }
    }

    fn usr_merged() -> Files {
        let mut files = Files::default();
        files.apply_records(&[
            record("/usr", FileKind::Directory, 0o755, None),
            record("/usr/bin", FileKind::Directory, 0o755, None),
            record("/usr/bin/dash", FileKind::File, 0o755, None),
            record("/usr/bin/sh", FileKind::Symlink, 0o777, Some("dash")),
            record("/bin", FileKind::Symlink, 0o777, Some("usr/bin")),
            record(
                "/usr/bin/loop",
                FileKind::Symlink,
                0o777,
                Some("/usr/bin/loop"),
            ),
            record("/etc", FileKind::Directory, 0o755, None),
            record("/etc/motd", FileKind::File, 0o644, None),
            record(
                "/usr/bin/rbash",
                FileKind::HardLink,
                0o644,
                Some("usr/bin/dash"),
            ),
        ]);
        files
    }

    #[test]
    fn paths_resolve_through_symlinks_as_the_kernel_resolves_them() {
        let files = usr_merged();
        let resolved = |path: &str| {
            files
                .resolve(path)
                .map(|found| found.map(|(path, entry)| (path, entry.clone())))
        };
        let dash = Entry::File { mode: 0o755 };
        assert_eq!(
            resolved("/bin/sh"),
            Ok(Some(("/usr/bin/dash".to_owned(), dash.clone())))
        );
        assert_eq!(
            resolved("/etc/../bin/./dash"),
            Ok(Some(("/usr/bin/dash".to_owned(), dash.clone())))
        );
        assert_eq!(
            resolved("/usr/bin/rbash"),
            Ok(Some(("/usr/bin/rbash".to_owned(), dash)))
        );
        assert_eq!(resolved("/bin/example"), Ok(None));
        assert_eq!(resolved("/etc/motd/x"), Ok(None), "a file is no folder");
        assert_eq!(resolved("/usr/bin/loop"), Err(()));
        assert_eq!(files.executables("sh"), ["/usr/bin/dash", "/usr/bin/rbash"]);
        assert_eq!(files.executables("dash")[0], "/usr/bin/dash");
    }

    #[test]
    fn whiteouts_remove_what_the_layers_below_placed() {
        let mut files = usr_merged();
        files.apply_records(&[record("/usr/bin/.wh.dash", FileKind::File, 0o644, None)]);
        assert_eq!(files.resolve("/bin/sh"), Ok(None));
        files.apply_records(&[record("/etc/.wh..wh..opq", FileKind::File, 0o644, None)]);
        assert_eq!(files.resolve("/etc/motd"), Ok(None));
        assert!(files.resolve("/etc").unwrap().is_some(), "the folder stays");
    }

    /// `text` at `path`, with `mode` whatever the umask.
    fn write_file(path: &Path, text: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A base image in a layout folder under `folder`, as the store keeps one: a layer with
    /// /usr/bin/tool (0755), /usr/bin/tool-link (a symlink to it), /etc/motd (0644), /opt.
    fn base_image(folder: &Path) -> BaseImage {
        base_image_with(folder, &[])
    }

    /// [`base_image`] with more files: each absolute path with its text and mode, or a
    /// symlink to the text when the mode is 0.
    fn base_image_with(folder: &Path, extra: &[(&str, &str, u32)]) -> BaseImage {
        let rootfs = folder.join("rootfs");
        std::fs::create_dir_all(rootfs.join("usr/bin")).unwrap();
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        std::fs::create_dir_all(rootfs.join("opt")).unwrap();
        write_file(&rootfs.join("usr/bin/tool"), "#!/bin/sh\n", 0o755);
        std::os::unix::fs::symlink("tool", rootfs.join("usr/bin/tool-link")).unwrap();
        write_file(&rootfs.join("etc/motd"), "hello\n", 0o644);
        for (path, text, mode) in extra {
            let path = rootfs.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            if *mode == 0 {
                std::os::unix::fs::symlink(text, &path).unwrap();
            } else {
                write_file(&path, text, *mode);
            }
        }
        let mut tree = crate::oci::tree::FileTree::new();
        let mut names: Vec<String> = std::fs::read_dir(&rootfs)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        for name in names {
            tree.add(&rootfs.join(&name), &format!("/{name}")).unwrap();
        }
        let request = request(tree, &["/usr/bin/tool"], None);
        let layout = folder.join("base");
        let mut writer = crate::oci::layout::LayoutWriter::open(&layout).unwrap();
        let image = crate::oci::image::build_image(&request, &mut writer, &mut |_| {}).unwrap();
        writer.finish(&[image.layout_entry()]).unwrap();
        BaseImage {
            reference: "registry.example/base:1".parse().unwrap(),
            descriptor: image.manifest_descriptor,
            manifest: image.manifest,
            config: image.config,
            layout,
        }
    }

    /// An image request with one layer of `tree` whose entrypoint is `entrypoint`.
    fn request(
        tree: crate::oci::tree::FileTree,
        entrypoint: &[&str],
        base: Option<BaseImage>,
    ) -> ImageRequest {
        ImageRequest {
            reference: "example.com/app:1".parse().unwrap(),
            platform: "linux/amd64".parse().unwrap(),
            created: "1970-01-01T00:00:01Z".to_owned(),
            mtime: 1,
            compression: crate::oci::compression::Compression::Gzip,
            container: crate::oci::spec::ContainerConfig {
                entrypoint: Some(entrypoint.iter().map(|word| word.to_string()).collect()),
                ..Default::default()
            },
            layers: vec![RequestLayer {
                tree,
                created_by: "test".to_owned(),
                mtime: None,
            }],
            annotations: Default::default(),
            base,
        }
    }

    /// kiln's layer: /bin/app (0755).
    fn app_tree(folder: &Path) -> crate::oci::tree::FileTree {
        let app = folder.join("app");
        write_file(&app, "the program", 0o755);
        let mut tree = crate::oci::tree::FileTree::new();
        tree.add(&app, "/bin/app").unwrap();
        tree
    }

    /// A program the base holds is found in the store's listing of the base's files, made
    /// the first time (golden bytes) and read after: with the base's layer gone, the check of
    /// a rebuild still answers, errors included.
    #[test]
    fn programs_in_the_base_are_checked_against_its_listing_made_once() {
        let temp = tempfile::tempdir().unwrap();
        let store = Store::open_at(&temp.path().join("home")).unwrap();
        let base = base_image(temp.path());
        let check_program = |program: &str| {
            let request = request(app_tree(temp.path()), &[program], Some(base.clone()));
            check(
                "container",
                &request,
                &temp.path().join("package"),
                "`registry.example/base:1`",
                &store,
                &|_| {},
            )
        };
        check_program("/usr/bin/tool-link").unwrap();
        let listing = store.path(crate::recipes::base_files(&base.descriptor.digest).name());
        assert_eq!(
            std::fs::read_to_string(&listing).unwrap(),
            r#"{"/etc":"directory","/etc/motd":{"file":{"mode":420}},"/opt":"directory","/usr":"directory","/usr/bin":"directory","/usr/bin/tool":{"file":{"mode":493}},"/usr/bin/tool-link":{"symlink":"tool"}}"#
        );
        // The base's layers are not read again.
        for layer in &base.manifest.layers {
            std::fs::remove_file(base.layout.join(layer.digest.blob_path())).unwrap();
        }
        check_program("/usr/bin/tool").unwrap();
        check_program("/usr/bin/tool-link").unwrap();
        check_program("/bin/app").unwrap();
        let error = |program: &str| check_program(program).unwrap_err().to_string();
        assert_eq!(
            error("/etc/motd"),
            "image `container`: `entrypoint` starts /etc/motd, which is not executable (mode 0644)"
        );
        assert_eq!(
            error("/opt"),
            "image `container`: `entrypoint` starts /opt, which is a folder in the image, not a program"
        );
        assert_eq!(
            error("/usr/local/bin/tool"),
            "image `container`: `entrypoint` starts /usr/local/bin/tool, which is in no layer of the image; its executables: /usr/bin/tool, /bin/app"
        );
    }

    /// A base whose layers cannot be read is an error naming its layout, and no listing is
    /// kept; a listing in the store that is not one is an error naming it.
    #[test]
    fn unreadable_bases_and_listings_are_errors() {
        let temp = tempfile::tempdir().unwrap();
        let store = Store::open_at(&temp.path().join("home")).unwrap();
        let base = base_image(temp.path());
        for layer in &base.manifest.layers {
            std::fs::remove_file(base.layout.join(layer.digest.blob_path())).unwrap();
        }
        let request = request(
            app_tree(temp.path()),
            &["/usr/bin/tool"],
            Some(base.clone()),
        );
        let error = check(
            "container",
            &request,
            &temp.path().join("package"),
            "`registry.example/base:1`",
            &store,
            &|_| {},
        )
        .unwrap_err();
        assert!(matches!(error, ExecutableError::Base { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            format!(
                "cannot read the base image's layers at {} to find `entrypoint`'s program",
                base.layout.display()
            )
        );
        let recipe = crate::recipes::base_files(&base.descriptor.digest);
        assert!(!store.contains(recipe.name()));
        store
            .realise(
                &recipe,
                || {},
                |temp| {
                    std::fs::write(temp, "not a listing").unwrap();
                    Ok::<_, StoreError>(temp.to_owned())
                },
            )
            .unwrap();
        let error = check(
            "container",
            &request,
            &temp.path().join("package"),
            "`registry.example/base:1`",
            &store,
            &|_| {},
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "{} is not a valid listing of a base image's files",
                store.path(recipe.name()).display()
            )
        );
    }

    /// Issue 21: a dynamically linked program of the package needs its loader in the image.
    /// Without a base it is missing (the error names the program, the loader and the base);
    /// a base with the loader (through a symlink, as Debian's /lib64 has it) passes; a
    /// loader that is not executable is named as such. Files not from the package are not
    /// looked at, nor are static programs.
    #[test]
    fn dynamically_linked_programs_need_their_loader_in_the_image() {
        let temp = tempfile::tempdir().unwrap();
        let store = Store::open_at(&temp.path().join("home")).unwrap();
        // This test's own binary is a dynamically linked program on a glibc host.
        let test_binary = std::env::current_exe().unwrap();
        let Some(loader) = crate::oci::elf::interpreter_of(&test_binary).unwrap() else {
            return;
        };
        let package = temp.path().join("package");
        std::fs::create_dir_all(package.join("bin")).unwrap();
        std::fs::copy(&test_binary, package.join("bin/app")).unwrap();
        write_file(&temp.path().join("static"), "#!/bin/sh\n", 0o755);
        let tree = |with_program: bool| {
            let mut tree = crate::oci::tree::FileTree::new();
            if with_program {
                tree.add(&package.join("bin/app"), "/bin/app").unwrap();
            }
            // Not the package's: a dynamically linked file placed by [[files]] is left alone.
            tree.add(&test_binary, "/opt/tool").unwrap();
            tree
        };
        let run_check = |request: &ImageRequest, base: &str| {
            check("container", request, &package, base, &store, &|_| {})
        };
        let scratch = request(tree(true), &["/bin/app"], None);
        let error = run_check(&scratch, "`scratch`, no base").unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "image `container`: /bin/app is dynamically linked and needs the loader {loader}, which is not in the image (base: `scratch`, no base)"
            )
        );
        assert!(error.hint().unwrap().contains("c-libc = \"musl\""));
        run_check(
            &request(tree(false), &["/opt/tool"], None),
            "`scratch`, no base",
        )
        .unwrap();

        let real = format!("/usr/lib/loader/{}", loader.rsplit('/').next().unwrap());
        // Relative, from the loader's folder: `../usr/lib/loader/…` for /lib64/….
        let up = "../".repeat(loader.matches('/').count() - 1);
        let target = format!("{up}{}", real.trim_start_matches('/'));
        let linked = base_image_with(
            &temp.path().join("linked"),
            &[(&real, "loader", 0o755), (&loader, &target, 0)],
        );
        run_check(
            &request(tree(true), &["/bin/app"], Some(linked)),
            "`registry.example/base:1`",
        )
        .unwrap();
        let unexecutable = base_image_with(&temp.path().join("plain"), &[(&loader, "x", 0o644)]);
        let error = run_check(
            &request(tree(true), &["/bin/app"], Some(unexecutable)),
            "`registry.example/base:1`",
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "image `container`: /bin/app is dynamically linked and needs the loader {loader}, which is not executable in the image (mode 0644) (base: `registry.example/base:1`)"
            )
        );
    }

    #[test]
    fn the_missing_program_error_names_what_is_there() {
        let error = ExecutableError::Missing {
            image: "container".to_owned(),
            key: "cmd",
            path: "/usr/bin/example".to_owned(),
            executables: vec!["/bin/example".to_owned(), "/bin/other".to_owned()],
        };
        assert_eq!(
            error.to_string(),
            "image `container`: `cmd` starts /usr/bin/example, which is in no layer of the image; its executables: /bin/example, /bin/other"
        );
        assert_eq!(error.hint().as_deref(), Some("cmd = [\"/bin/example\"]"));
    }
}
