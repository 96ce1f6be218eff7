//! Garbage collection and verification: what the roots reach stays, everything else (and
//! stale roots, orphan records, debris) goes; verify re-hashes every output against its
//! record. Which outputs a root pins beyond the one it links to is the caller's answer
//! ([`RootPins`]), so the store reads no kiln.lock.

use std::os::unix::ffi::OsStringExt as _;
use std::path::Path;

use serde::Serialize;
use sha2::Digest as _;

use super::*;

/// What a garbage-collection root pins besides the store output it links to, as the caller
/// of [`Store::gc`] reads it (the store does not know what a kiln.lock is).
#[derive(Clone, Debug)]
pub enum RootPins {
    /// The root is a file that pins these outputs (a kiln.lock's modules and releases).
    Outputs(Vec<StoreName>),
    /// The root pins outputs but cannot be read now (mid-merge, or from a newer kiln): gc
    /// keeps every fetched output rather than guess.
    Unreadable,
    /// The root is a link to an output (a `result` link), or stale.
    Link,
}

/// What a garbage collection did.
#[derive(Debug, Default, Serialize)]
pub struct GcReport {
    pub removed_paths: Vec<String>,
    pub freed_bytes: u64,
    pub kept_paths: usize,
    pub stale_roots: usize,
    pub debris: usize,
    /// Folders kept for projects (`projects/<key>/`) whose project folder is gone.
    pub projects_removed: usize,
    /// Spare build folders (every one but the first of a project that still exists).
    pub build_folders_removed: usize,
    /// Layer cache files (records whose image is gone, blobs no record keeps;
    /// `store::layer_cache`).
    pub layer_records_removed: usize,
}

/// What verification found.
#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    pub checked: usize,
    pub corrupt: Vec<Corruption>,
    pub unrecorded: Vec<String>,
    pub debris: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Corruption {
    pub path: String,
    pub expected: String,
    pub actual: String,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.corrupt.is_empty() && self.unrecorded.is_empty()
    }
}

impl Store {
    /// Record `link` (a `result` symlink) as a garbage-collection root.
    pub fn add_root(&self, link: &Path) -> Result<(), StoreError> {
        let absolute = std::path::absolute(link).map_err(PathError::read(link))?;
        let digest = sha2::Sha256::digest(absolute.as_os_str().as_encoded_bytes());
        let root = self
            .root
            .join("roots")
            .join(crate::nixbase32::encode(&digest[..20]));
        replace_symlink(&absolute, &root)
    }

    /// Record a file that pins outputs (a project's kiln.lock) as a garbage-collection root:
    /// what it pins, as the `pins` function given to [`Store::gc`] reads it, stays while the
    /// file exists, so a project's builds keep working offline after `kiln gc`.
    pub fn add_pins_root(&self, pins_file: &Path) -> Result<(), StoreError> {
        self.add_root(pins_file)
    }

    /// Remove every output no root reaches, stale roots, orphan records and debris. `pins`
    /// tells what a root's target (the file or link a root points at) pins besides itself.
    pub fn gc(
        &self,
        pins: &dyn Fn(&Path) -> RootPins,
        waiting: impl FnOnce(),
    ) -> Result<GcReport, StoreError> {
        // Held until gc returns: builds wait for it, and it waits for running builds.
        let _lock = self.acquire("gc.lock", false, waiting)?;
        let mut report = GcReport::default();
        let store_dir = self.store_dir();
        let mut live = BTreeSet::new();
        let mut keep_fetched = false;
        let roots = self.root.join("roots");
        for entry in std::fs::read_dir(&roots).map_err(PathError::walk(&roots))? {
            let root = entry.map_err(PathError::walk(&roots))?.path();
            let pinned = match std::fs::read_link(&root) {
                Ok(target) => pins(&target),
                Err(_) => RootPins::Link,
            };
            match pinned {
                RootPins::Outputs(outputs) => {
                    live.extend(outputs.iter().map(StoreName::basename));
                    continue;
                }
                // Keep every fetched output rather than guess, so builds still run offline
                // once the root is readable again.
                RootPins::Unreadable => {
                    keep_fetched = true;
                    continue;
                }
                RootPins::Link => {}
            }
            let reached = std::fs::read_link(&root)
                .ok()
                .and_then(|link| std::fs::read_link(&link).ok())
                .filter(|target| target.parent() == Some(store_dir.as_path()))
                .and_then(|target| {
                    target
                        .file_name()
                        .map(|name| name.to_string_lossy().into_owned())
                });
            match reached {
                Some(name) => {
                    live.insert(name);
                }
                None => {
                    std::fs::remove_file(&root).map_err(PathError::remove(&root))?;
                    report.stale_roots += 1;
                }
            }
        }
        let mut live_hashes = BTreeSet::new();
        for entry in std::fs::read_dir(&store_dir).map_err(PathError::walk(&store_dir))? {
            let path = entry.map_err(PathError::walk(&store_dir))?.path();
            let basename = path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            let kept_fetched = keep_fetched
                && StoreName::parse(&basename).is_some_and(|name| {
                    std::fs::read(self.meta_path(&name))
                        .ok()
                        .and_then(|bytes| serde_json::from_slice::<OutputRecord>(&bytes).ok())
                        .is_some_and(|record| record.kind.is_fetched())
                });
            if live.contains(&basename) || kept_fetched {
                report.kept_paths += 1;
                if let Some(name) = StoreName::parse(&basename) {
                    live_hashes.insert(name.hash);
                }
                continue;
            }
            report.freed_bytes += remove_tree(&path)?;
            report.removed_paths.push(basename);
        }
        let meta = self.root.join("meta");
        for entry in std::fs::read_dir(&meta).map_err(PathError::walk(&meta))? {
            let path = entry.map_err(PathError::walk(&meta))?.path();
            let hash = path
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !live_hashes.contains(&hash) {
                std::fs::remove_file(&path).map_err(PathError::remove(&path))?;
            }
        }
        let tmp = self.root.join("tmp");
        for entry in std::fs::read_dir(&tmp).map_err(PathError::walk(&tmp))? {
            let path = entry.map_err(PathError::walk(&tmp))?.path();
            report.freed_bytes += remove_tree(&path)?;
            report.debris += 1;
        }
        self.collect_projects(&mut report)?;
        // Layer cache records that name an image just removed go with it.
        report.layer_records_removed = self.prune_layer_cache()?;
        // Module proxy folders are links into the store: one left half-made, or pointing at a
        // module removed above, goes (a build makes it again from its lock).
        let proxies = self.root.join("go/proxy");
        if let Ok(entries) = std::fs::read_dir(&proxies) {
            for entry in entries {
                let path = entry.map_err(PathError::walk(&proxies))?.path();
                let half_made = path.file_name().is_some_and(|name| {
                    name.as_encoded_bytes()
                        .starts_with(crate::output::TEMP_PREFIX.as_bytes())
                });
                if half_made || has_dangling_link(&path) {
                    report.freed_bytes += remove_tree(&path)?;
                    report.debris += usize::from(half_made);
                }
            }
        }
        Ok(report)
    }

    /// What kiln keeps per project (`projects/<key>/`): all of it goes when the project's
    /// folder is gone (or the record of which folder it was cannot be read), and the spare
    /// build folders go (those beyond the first exist only while kilns ran side by side).
    /// The caller holds the gc lock exclusively, so no build is using any of them.
    fn collect_projects(&self, report: &mut GcReport) -> Result<(), StoreError> {
        let projects = self.projects_dir();
        let entries = match std::fs::read_dir(&projects) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(PathError::walk(&projects)(error).into()),
        };
        for entry in entries {
            let folder = entry.map_err(PathError::walk(&projects))?.path();
            let root = std::fs::read(folder.join("root"))
                .ok()
                .map(|bytes| PathBuf::from(std::ffi::OsString::from_vec(bytes)));
            if !root.is_some_and(|root| root.is_dir()) {
                report.freed_bytes += remove_tree(&folder)?;
                report.projects_removed += 1;
                continue;
            }
            for inner in std::fs::read_dir(&folder).map_err(PathError::walk(&folder))? {
                let path = inner.map_err(PathError::walk(&folder))?.path();
                let name = path
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let Some(slot) = name.strip_prefix("build-") else {
                    continue;
                };
                let first = slot == "0" || slot == "0.index";
                if !first {
                    let is_folder = path.is_dir();
                    report.freed_bytes += remove_tree(&path)?;
                    report.build_folders_removed += usize::from(is_folder);
                }
            }
        }
        Ok(())
    }

    /// Re-hash every output and compare with its record.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport::default();
        let store_dir = self.store_dir();
        let mut names: Vec<PathBuf> = std::fs::read_dir(&store_dir)
            .map_err(PathError::walk(&store_dir))?
            .map(|entry| entry.map(|entry| entry.path()))
            .collect::<Result<_, _>>()
            .map_err(PathError::walk(&store_dir))?;
        names.sort();
        for path in names {
            let basename = path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            let Some(name) = StoreName::parse(&basename) else {
                report.unrecorded.push(basename);
                continue;
            };
            let meta = self.meta_path(&name);
            let record: OutputRecord = match std::fs::read(&meta) {
                Ok(bytes) => {
                    serde_json::from_slice(&bytes).map_err(|source| StoreError::InvalidMeta {
                        path: meta.clone(),
                        source,
                    })?
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    report.unrecorded.push(basename);
                    continue;
                }
                Err(error) => return Err(PathError::read(&meta)(error).into()),
            };
            report.checked += 1;
            let actual = match nar_hash(&path) {
                Ok(hash) => hash.sri(),
                Err(error) => format!("unreadable: {error}"),
            };
            if actual != record.nar_hash || record.path != basename {
                report.corrupt.push(Corruption {
                    path: path.display().to_string(),
                    expected: record.nar_hash,
                    actual,
                });
            }
        }
        let tmp = self.root.join("tmp");
        for entry in std::fs::read_dir(&tmp).map_err(PathError::walk(&tmp))? {
            report.debris.push(
                entry
                    .map_err(PathError::walk(&tmp))?
                    .path()
                    .display()
                    .to_string(),
            );
        }
        Ok(report)
    }
}

/// Whether a link under `folder` points nowhere.
fn has_dangling_link(folder: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let path = entry.path();
        match entry.file_type() {
            Ok(kind) if kind.is_symlink() => !path.exists(),
            Ok(kind) if kind.is_dir() => has_dangling_link(&path),
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{package_recipe, realise_tool, recipe};
    use super::*;

    /// Issue 18: what kiln keeps per project goes with the project; of a live project only
    /// the first build folder stays (the others exist while kilns run side by side).
    #[test]
    fn gc_clears_the_state_of_projects_that_are_gone_and_spare_build_folders() {
        let temp = tempfile::tempdir().unwrap();
        let store = Store::open_at(&temp.path().join("home")).unwrap();
        let live = temp.path().join("live");
        let gone = temp.path().join("gone");
        let mut states = Vec::new();
        for project in [&live, &gone] {
            std::fs::create_dir(project).unwrap();
            let state = store.project_state(project).unwrap();
            // Read-only files, as kiln writes them.
            for file in [
                "sources.index",
                "build-0.index",
                "build-0/src/main.go",
                "build-1.index",
                "build-1/src/main.go",
                "build-1/bin/app/app",
            ] {
                let path = state.join(file);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, "x").unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
            }
            states.push(state);
        }
        // The same folder by another path is the same state.
        assert_eq!(
            store
                .project_state(&temp.path().join("live/../live"))
                .unwrap(),
            states[0]
        );
        std::fs::remove_dir(&gone).unwrap();
        let report = store.gc(&|_| RootPins::Link, || {}).unwrap();
        assert_eq!(
            (report.projects_removed, report.build_folders_removed),
            (1, 1)
        );
        assert!(!states[1].exists());
        let mut left: Vec<String> = std::fs::read_dir(&states[0])
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["build-0", "build-0.index", "root", "sources.index"]);
        assert_eq!(
            std::fs::read(states[0].join("root")).unwrap(),
            std::fs::canonicalize(&live)
                .unwrap()
                .as_os_str()
                .as_encoded_bytes()
        );
    }

    #[test]
    fn publish_verify_and_gc() {
        let temp = tempfile::tempdir().unwrap();
        let store = Store::open_at(temp.path()).unwrap();
        let recipe = package_recipe("pkg");
        let name = recipe.name().clone();
        let path = realise_tool(&store, &recipe).path;
        assert!(store.contains(&name));
        let mode = std::fs::metadata(path.join("bin/tool"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o555);
        assert!(store.verify().unwrap().is_clean());

        // Corruption is found.
        std::fs::set_permissions(
            path.join("bin/tool"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::write(path.join("bin/tool"), b"tampered").unwrap();
        let report = store.verify().unwrap();
        assert_eq!(report.corrupt.len(), 1, "{report:?}");

        // A root keeps it; without the root, gc removes it.
        let no_pins = |_: &Path| RootPins::Link;
        let link = temp.path().join("result");
        replace_symlink(&path, &link).unwrap();
        store.add_root(&link).unwrap();
        let report = store.gc(&no_pins, || {}).unwrap();
        assert_eq!((report.kept_paths, report.removed_paths.len()), (1, 0));
        std::fs::remove_file(&link).unwrap();
        let report = store.gc(&no_pins, || {}).unwrap();
        assert_eq!(report.removed_paths, [name.basename()]);
        assert_eq!(report.stale_roots, 1);
        assert!(report.freed_bytes >= 8);
        assert!(!store.contains(&name));
        assert!(store.verify().unwrap().is_clean());
    }

    /// gc asks its caller what a root's file pins: the store reads no lock file itself.
    #[test]
    fn gc_keeps_what_a_pins_root_pins_and_all_fetched_outputs_when_it_is_unreadable() {
        let temp = tempfile::tempdir().unwrap();
        let store = Store::open_at(temp.path()).unwrap();
        let module = Recipe::new(OutputKind::GoModule, recipe("module"), "go-m-v1");
        let other = Recipe::new(OutputKind::GoModule, recipe("other"), "go-o-v1");
        let package = package_recipe("pkg");
        for output in [&module, &other, &package] {
            realise_tool(&store, output);
        }
        let pins_file = temp.path().join("pins");
        std::fs::write(&pins_file, b"").unwrap();
        store.add_pins_root(&pins_file).unwrap();
        let pinned = module.name().clone();
        let asked = std::cell::RefCell::new(Vec::new());
        let pins = |target: &Path| {
            asked.borrow_mut().push(target.to_owned());
            RootPins::Unreadable
        };
        let report = store.gc(&pins, || {}).unwrap();
        assert_eq!(*asked.borrow(), vec![pins_file]);
        assert_eq!(report.removed_paths, [package.name().basename()]);
        let pins = |_: &Path| RootPins::Outputs(vec![pinned.clone()]);
        let report = store.gc(&pins, || {}).unwrap();
        assert_eq!(report.removed_paths, [other.name().basename()]);
        assert!(store.contains(module.name()));
    }
}
