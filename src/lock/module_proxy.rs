//! The `file://` GOPROXY folder a build hands Go: exactly the locked modules, as links into
//! their store outputs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::LockError;
use super::lockfile::LockedModule;
use crate::diagnostic::PathError;
use crate::store::{Store, StoreName};

/// The `file://` module proxy folder holding exactly `modules` (links into their store
/// outputs), made once per module set under `go/proxy/` of the kiln home and shared by builds
/// and `kiln shell`. Layout (the GOPROXY protocol): `<escaped path>/@v/list` and
/// `<escaped version>.info`, `.mod`, `.zip`.
pub fn proxy_folder(store: &Store, modules: &[LockedModule]) -> Result<PathBuf, LockError> {
    use sha2::Digest as _;
    let mut names: Vec<(StoreName, &LockedModule)> = modules
        .iter()
        .map(|module| (module.store_name(), module))
        .collect();
    names.sort_by_key(|(name, _)| name.basename());
    let mut hasher = sha2::Sha256::new();
    for (name, _) in &names {
        hasher.update(name.basename().as_bytes());
        hasher.update(b"\n");
    }
    let digest = hasher.finalize();
    let proxies = store.root().join("go/proxy");
    let folder = proxies.join(crate::nixbase32::encode(&digest[..20]));
    // Reused only when whole: every module's .mod there and leading into the store (a
    // crash or gc can leave one that is not).
    let whole = |folder: &Path| {
        names.iter().all(|(_, module)| {
            match (
                crate::gomod::module::escape_path(&module.path),
                crate::gomod::module::escape_version(&module.version),
            ) {
                (Ok(path), Ok(version)) => folder
                    .join(path)
                    .join("@v")
                    .join(format!("{version}.mod"))
                    .is_file(),
                _ => false,
            }
        })
    };
    if folder.is_dir() {
        if whole(&folder) {
            return Ok(folder);
        }
        let _ = crate::store::remove_tree(&folder);
    }
    std::fs::create_dir_all(&proxies).map_err(PathError::write(&proxies))?;
    let temp = crate::output::ScratchDir::new_in(&proxies, "proxy-")?;
    let mut lists: BTreeMap<PathBuf, Vec<&str>> = BTreeMap::new();
    for (name, module) in &names {
        let stored = store.path(name);
        if !stored.is_dir() {
            return Err(LockError::NotFetched {
                module: module.id(),
            });
        }
        let escaped = crate::gomod::module::escape_path(&module.path)?;
        let version = crate::gomod::module::escape_version(&module.version)?;
        let at_v = temp.path().join(&escaped).join("@v");
        std::fs::create_dir_all(&at_v).map_err(PathError::write(&at_v))?;
        let link = |target: PathBuf, file: String| {
            let link = at_v.join(file);
            std::os::unix::fs::symlink(target, &link).map_err(PathError::write(&link))
        };
        link(stored.join("go.mod"), format!("{version}.mod"))?;
        if module.h1.is_some() {
            link(stored.join("module.zip"), format!("{version}.zip"))?;
        }
        let info = at_v.join(format!("{version}.info"));
        std::fs::write(&info, format!("{{\"Version\":\"{}\"}}\n", module.version))
            .map_err(PathError::write(&info))?;
        lists.entry(at_v).or_default().push(&module.version);
    }
    for (at_v, versions) in lists {
        let list = at_v.join("list");
        std::fs::write(&list, versions.join("\n") + "\n").map_err(PathError::write(&list))?;
    }
    match temp.rename_to(&folder) {
        Ok(()) => Ok(folder),
        // Another kiln made it first: the same links.
        Err(_) if folder.is_dir() => Ok(folder),
        Err(source) => Err(PathError::write(&folder)(source).into()),
    }
}
