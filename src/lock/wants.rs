//! What a project wants pinned: every module go.mod's build list may use, with the hashes
//! go.sum (or gomod2nix.toml) pins for it, and how that differs from a kiln.lock.
//!
//! A vendored project (one with `vendor/modules.txt`) wants every go.sum entry pinned as it
//! is, fetching none: vendor/modules.txt must agree with go.mod as Go requires, and each
//! module vendor/ holds packages of (after go.mod's replacements, local folders aside) must
//! have go.sum's `h1:` for its zip and its go.mod, since those are what `go mod verify` and
//! the SBOM name it by.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::lockfile::{LockFile, LockedModule, VendorPin};
use super::{GOMOD2NIX_FILE, LockError, read_project_file};
use crate::gomod::gomod2nix::{self};
use crate::gomod::modfile::{self, ModFile};
use crate::gomod::sumfile;
use crate::gomod::vendor;

/// Where Go's vendoring writes its list of modules, relative to the project.
pub const MODULES_TXT: &str = "vendor/modules.txt";

/// A module version the project needs, with what its pins say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub path: String,
    pub version: String,
    /// Whether its code is used (a zip is fetched).
    pub code: bool,
    /// go.sum's zip hash.
    pub h1: Option<String>,
    /// go.sum's go.mod hash.
    pub go_mod: Option<String>,
    /// gomod2nix.toml's NAR hash.
    pub nar: Option<String>,
    /// Whether vendor/ holds its code.
    pub vendored: bool,
}

impl Wanted {
    pub fn id(&self) -> String {
        format!("{}@{}", self.path, self.version)
    }
}

/// Where the pins come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinOrigin {
    GoSum,
    Gomod2nix,
    /// Nothing is required.
    Nothing,
    /// go.mod requires modules and neither go.sum nor gomod2nix.toml pins them (fine for a
    /// vendored project, an error for locking).
    Missing,
}

impl PinOrigin {
    pub fn file_name(self) -> &'static str {
        match self {
            PinOrigin::GoSum => "go.sum",
            PinOrigin::Gomod2nix => GOMOD2NIX_FILE,
            PinOrigin::Nothing | PinOrigin::Missing => "go.mod",
        }
    }
}

/// What a project's go.mod and pins ask for.
#[derive(Clone, Debug)]
pub struct Wants {
    pub go_mod: ModFile,
    pub source: PinOrigin,
    /// Sorted by path, then version.
    pub modules: Vec<Wanted>,
    /// Local-folder replacements: (module path, folder relative to the project).
    pub local_replaces: Vec<(String, String)>,
    /// `PATH VERSION` of each requirement nothing pins (source [`PinOrigin::Missing`]).
    pub unpinned: Vec<String>,
    /// Present when the modules come from vendor/: modules.txt's digest.
    pub vendor: Option<VendorPin>,
}

impl Wants {
    /// Also check the modules go.sum pins against the NAR hashes gomod2nix.toml beside it
    /// gives (`kiln init --from-nix`: the flake's modules must be the ones kiln locks); the
    /// number of modules it pins that way. gomod2nix.toml's other entries are ignored. Only a
    /// project locked from go.sum has anything to add: one locked from gomod2nix.toml checks
    /// those hashes already, and a vendored one has no module to unpack.
    pub fn check_gomod2nix_too(&mut self, root: &Path) -> Result<usize, LockError> {
        if self.source != PinOrigin::GoSum || self.vendor.is_some() {
            return Ok(0);
        }
        let Some(text) = read_project_file(&root.join(GOMOD2NIX_FILE))? else {
            return Ok(0);
        };
        let entries = gomod2nix::parse(&text, Path::new(GOMOD2NIX_FILE))?;
        let mut pinned = 0;
        for wanted in self.modules.iter_mut().filter(|wanted| wanted.code) {
            if let Some(entry) = entries.iter().find(|entry| {
                entry.fetched_path() == wanted.path && entry.version == wanted.version
            }) {
                wanted.nar = Some(entry.hash.clone());
                pinned += 1;
            }
        }
        Ok(pinned)
    }

    /// An error unless go.sum (or gomod2nix.toml) pins what go.mod requires.
    pub fn require_pins(&self) -> Result<(), LockError> {
        if self.source == PinOrigin::Missing {
            return Err(LockError::NoGoSum {
                requirements: self.unpinned.join(", "),
            });
        }
        Ok(())
    }
}

/// Read and parse the go.mod of the project at `root`.
pub fn read_go_mod(root: &Path) -> Result<ModFile, LockError> {
    let Some(go_mod_text) = read_project_file(&root.join("go.mod"))? else {
        return Err(LockError::NoGoMod(root.to_owned()));
    };
    Ok(modfile::parse(&go_mod_text, Path::new("go.mod"))?)
}

/// Read go.mod and go.sum (or gomod2nix.toml) of the project at `root`.
pub fn wants(root: &Path) -> Result<Wants, LockError> {
    let go_mod = read_go_mod(root)?;
    let mut local_replaces = Vec::new();
    for replace in &go_mod.replaces {
        if replace.new_version.is_none() {
            if Path::new(&replace.new_path).is_absolute() {
                return Err(LockError::AbsoluteReplace {
                    old: replace.old_path.clone(),
                    new: replace.new_path.clone(),
                    line: replace.line,
                });
            }
            local_replaces.push((replace.old_path.clone(), replace.new_path.clone()));
        }
    }
    // What go.mod requires after replacements; local folders need nothing fetched.
    let mut required = Vec::new();
    for require in &go_mod.requires {
        match go_mod.replacement(&require.path, &require.version) {
            Some(replace) if replace.new_version.is_none() => {}
            Some(replace) => required.push((
                replace.new_path.clone(),
                replace.new_version.clone().unwrap_or_default(),
                require.line,
            )),
            None => required.push((require.path.clone(), require.version.clone(), require.line)),
        }
    }
    let sum_text = read_project_file(&root.join("go.sum"))?;
    if let Some(modules_txt) = read_project_file(&root.join(MODULES_TXT))? {
        return vendored_wants(go_mod, local_replaces, &modules_txt, sum_text.as_deref());
    }
    let sum_text = sum_text.filter(|text| !(required.is_empty() && text.trim().is_empty()));
    let (source, modules) = if let Some(text) = sum_text {
        let sums = sumfile::parse(&text, Path::new("go.sum"))?;
        for (path, version, line) in &required {
            let pinned = sums
                .modules
                .get(&(path.clone(), version.clone()))
                .is_some_and(|sums| sums.go_mod.is_some() || sums.zip.is_some());
            if !pinned {
                return Err(LockError::MissingSum {
                    module: path.clone(),
                    version: version.clone(),
                    line: *line,
                });
            }
        }
        (PinOrigin::GoSum, sum_wants(sums, |_, _| false))
    } else if let Some(text) = read_project_file(&root.join(GOMOD2NIX_FILE))? {
        let entries = gomod2nix::parse(&text, Path::new(GOMOD2NIX_FILE))?;
        for (path, version, line) in &required {
            let pinned = entries
                .iter()
                .any(|entry| entry.fetched_path() == path && &entry.version == version);
            if !pinned {
                return Err(LockError::MissingGomod2nix {
                    module: path.clone(),
                    version: version.clone(),
                    line: *line,
                });
            }
        }
        let mut modules: Vec<Wanted> = entries
            .into_iter()
            .map(|entry| Wanted {
                path: entry.fetched_path().to_owned(),
                version: entry.version,
                code: true,
                h1: None,
                go_mod: None,
                nar: Some(entry.hash),
                vendored: false,
            })
            .collect();
        modules.sort_by(|a, b| (&a.path, &a.version).cmp(&(&b.path, &b.version)));
        (PinOrigin::Gomod2nix, modules)
    } else if required.is_empty() {
        (PinOrigin::Nothing, Vec::new())
    } else {
        (PinOrigin::Missing, Vec::new())
    };
    let unpinned = if source == PinOrigin::Missing {
        required
            .iter()
            .map(|(path, version, _)| format!("{path} {version}"))
            .collect()
    } else {
        Vec::new()
    };
    Ok(Wants {
        go_mod,
        source,
        modules,
        local_replaces,
        unpinned,
        vendor: None,
    })
}

/// go.sum's entries as wants, in go.sum's order (by path, then version): a zip hash means
/// the code is used, and `is_vendored(path, version)` says whether vendor/ holds it (never,
/// for a project that does not vendor).
fn sum_wants(sums: sumfile::SumFile, is_vendored: impl Fn(&str, &str) -> bool) -> Vec<Wanted> {
    sums.modules
        .into_iter()
        .map(|((path, version), sums)| Wanted {
            vendored: is_vendored(&path, &version),
            code: sums.zip.is_some(),
            h1: sums.zip.map(|(hash, _)| hash),
            go_mod: sums.go_mod.map(|(hash, _)| hash),
            nar: None,
            path,
            version,
        })
        .collect()
}

/// What a vendored project wants (see the module doc): go.sum's entries as they are, the
/// ones vendor/ holds the code of marked, and modules.txt's digest.
fn vendored_wants(
    go_mod: ModFile,
    local_replaces: Vec<(String, String)>,
    modules_txt: &str,
    sum_text: Option<&str>,
) -> Result<Wants, LockError> {
    let listed = vendor::parse(modules_txt, Path::new(MODULES_TXT))?;
    vendor::check_consistency(&go_mod, &listed)?;
    let sums = sumfile::parse(sum_text.unwrap_or(""), Path::new("go.sum"))?;
    let mut vendored = BTreeSet::new();
    for module in &listed {
        let Some((path, version)) = module.vendored_code() else {
            continue;
        };
        let pinned = sums.modules.get(&(path.to_owned(), version.to_owned()));
        for (what, present) in [
            ("its zip", pinned.is_some_and(|sums| sums.zip.is_some())),
            (
                "its go.mod",
                pinned.is_some_and(|sums| sums.go_mod.is_some()),
            ),
        ] {
            if !present {
                return Err(LockError::VendoredWithoutSum {
                    module: path.to_owned(),
                    version: version.to_owned(),
                    line: module.line,
                    what,
                });
            }
        }
        vendored.insert((path.to_owned(), version.to_owned()));
    }
    let modules = sum_wants(sums, |path, version| {
        vendored.contains(&(path.to_owned(), version.to_owned()))
    });
    Ok(Wants {
        go_mod,
        source: PinOrigin::GoSum,
        modules,
        local_replaces,
        unpinned: Vec::new(),
        vendor: Some(VendorPin {
            modules_txt: crate::oci::digest::Digest::of(modules_txt.as_bytes()).to_string(),
        }),
    })
}

impl Wants {
    /// The lock of a vendored project (see [`super::lockfile`]): go.sum's entries as they
    /// are, nothing fetched. `None` for a project that does not vendor.
    pub fn vendored_lock(&self, go: super::lockfile::GoPin) -> Result<Option<LockFile>, LockError> {
        let Some(vendor) = &self.vendor else {
            return Ok(None);
        };
        let mut modules = Vec::new();
        for wanted in &self.modules {
            let Some(go_mod) = wanted.go_mod.clone() else {
                return Err(LockError::SumWithoutGoMod {
                    module: wanted.path.clone(),
                    version: wanted.version.clone(),
                });
            };
            modules.push(LockedModule {
                path: wanted.path.clone(),
                version: wanted.version.clone(),
                h1: wanted.h1.clone(),
                go_mod,
                nar: None,
                vendored: wanted.vendored,
                origin: None,
            });
        }
        Ok(Some(LockFile {
            go,
            modules,
            bases: Vec::new(),
            statics: Vec::new(),
            zig: Vec::new(),
            vendor: Some(vendor.clone()),
        }))
    }

    /// How many modules vendor/ holds the code of.
    pub fn vendored_count(&self) -> usize {
        self.modules.iter().filter(|module| module.vendored).count()
    }
}

/// The differences between the lock and what go.mod and its pins ask for, one line each
/// (`+` wanted and not locked, `-` locked and not wanted); empty when the lock is current.
pub fn differences(wants: &Wants, lock: &LockFile) -> Vec<String> {
    let source = wants.source.file_name();
    let mut lines = Vec::new();
    if lock.go.go != wants.go_mod.go {
        lines.push(format!(
            "go line: go.mod says {}, kiln.lock has {}",
            wants.go_mod.go.as_deref().unwrap_or("none"),
            lock.go.go.as_deref().unwrap_or("none")
        ));
    }
    if let Some(toolchain) = &wants.go_mod.toolchain
        && toolchain != &lock.go.toolchain
    {
        lines.push(format!(
            "toolchain: go.mod says {toolchain}, kiln.lock has {}",
            lock.go.toolchain
        ));
    }
    match (&wants.vendor, &lock.vendor) {
        (Some(_), None) => lines.push(format!(
            "vendor: the project vendors its modules ({MODULES_TXT}), and kiln.lock pins fetched ones"
        )),
        (None, Some(_)) => lines.push(format!(
            "vendor: kiln.lock was made from {MODULES_TXT}, and the project no longer vendors its modules"
        )),
        (Some(wanted), Some(locked)) if wanted != locked => lines.push(format!(
            "~ {MODULES_TXT} changed: it is {}, kiln.lock has {}",
            wanted.modules_txt, locked.modules_txt
        )),
        _ => {}
    }
    let locked: BTreeMap<(&str, &str), &LockedModule> = lock
        .modules
        .iter()
        .map(|module| ((module.path.as_str(), module.version.as_str()), module))
        .collect();
    let mut seen = BTreeSet::new();
    for wanted in &wants.modules {
        let key = (wanted.path.as_str(), wanted.version.as_str());
        seen.insert(key);
        let Some(locked) = locked.get(&key) else {
            lines.push(format!("+ {} (in {source}, not in kiln.lock)", wanted.id()));
            continue;
        };
        let same = match wants.source {
            PinOrigin::Gomod2nix => wanted.nar == locked.nar,
            _ => {
                wanted.h1 == locked.h1
                    && wanted
                        .go_mod
                        .as_ref()
                        .is_none_or(|hash| hash == &locked.go_mod)
            }
        };
        if !same {
            lines.push(format!(
                "~ {} (its hashes in {source} differ from kiln.lock)",
                wanted.id()
            ));
        } else if wants.vendor.is_some()
            && lock.vendor.is_some()
            && wanted.vendored != locked.vendored
        {
            lines.push(format!(
                "~ {} ({} in {MODULES_TXT}, {} in kiln.lock)",
                wanted.id(),
                if wanted.vendored {
                    "vendored"
                } else {
                    "not vendored"
                },
                if locked.vendored {
                    "vendored"
                } else {
                    "not vendored"
                },
            ));
        }
    }
    for module in &lock.modules {
        if !seen.contains(&(module.path.as_str(), module.version.as_str())) {
            lines.push(format!("- {} (in kiln.lock, not in {source})", module.id()));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::super::{LOCK_FILE, read_lock};
    use super::*;
    use crate::lock::lockfile::GoPin;

    const H1: &str = "h1:A+z+XjcWgiIhrZH1NmkoHg4TTnckCc3ZrNLbNMO2ifs=";
    const H1_B: &str = "h1:sfFeq1j53UAvm7kJIVee8/n0tgz8AJ5n76uwmRv7Tic=";
    const NAR: &str = "sha256-FIwyH67KryRWI9Bk4R8s1zFP0IgKR4L66wNQJYQZLeg=";

    fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
        let folder = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(folder.path().join(name), text).unwrap();
        }
        folder
    }

    fn locked(path: &str, version: &str, code: bool) -> LockedModule {
        LockedModule {
            path: path.to_owned(),
            version: version.to_owned(),
            h1: code.then(|| H1.to_owned()),
            go_mod: H1_B.to_owned(),
            nar: code.then(|| NAR.to_owned()),
            vendored: false,
            origin: None,
        }
    }

    #[test]
    fn wants_come_from_go_sum() {
        let folder = project(&[
            (
                "go.mod",
                "module app\n\ngo 1.21\n\nrequire (\n\tex.com/a v1.0.0\n\tex.com/old v1.0.0\n)\n\nreplace ex.com/old => ex.com/new v1.1.0\n",
            ),
            (
                "go.sum",
                &format!(
                    "ex.com/a v1.0.0 {H1}\nex.com/a v1.0.0/go.mod {H1_B}\nex.com/c v0.9.0/go.mod {H1_B}\nex.com/new v1.1.0 {H1}\nex.com/new v1.1.0/go.mod {H1_B}\n"
                ),
            ),
        ]);
        let wants = wants(folder.path()).unwrap();
        assert_eq!(wants.source, PinOrigin::GoSum);
        let ids: Vec<(String, bool)> = wants
            .modules
            .iter()
            .map(|module| (module.id(), module.code))
            .collect();
        assert_eq!(
            ids,
            [
                ("ex.com/a@v1.0.0".to_owned(), true),
                ("ex.com/c@v0.9.0".to_owned(), false),
                ("ex.com/new@v1.1.0".to_owned(), true),
            ]
        );
        // A requirement go.sum does not pin names its go.mod line.
        std::fs::write(
            folder.path().join("go.sum"),
            format!("ex.com/a v1.0.0 {H1}\nex.com/a v1.0.0/go.mod {H1_B}\n"),
        )
        .unwrap();
        let error = wants_error(folder.path());
        assert!(
            error.starts_with("go.mod:7: ex.com/new v1.1.0 has no go.sum entry"),
            "{error}"
        );
    }

    /// Issue 17: a vendored project's wants are go.sum's entries, marked where vendor/ holds
    /// the code: a module replaced by another version is pinned under the replacement, one
    /// replaced by a local folder and one without packages need no zip hash.
    #[test]
    fn vendored_wants_mark_what_vendor_holds() {
        let folder = project(&[
            (
                "go.mod",
                "module app\n\ngo 1.22\n\nrequire (\n\tex.com/a v1.0.0\n\tex.com/old v1.0.0\n\tex.com/local v0.0.0\n\tex.com/nopkg v1.0.0\n)\n\nreplace ex.com/old => ex.com/new v1.1.0\n\nreplace ex.com/local => ./local\n",
            ),
            (
                "go.sum",
                &format!(
                    "ex.com/a v1.0.0 {H1}\nex.com/a v1.0.0/go.mod {H1_B}\nex.com/a v0.9.0/go.mod {H1_B}\nex.com/new v1.1.0 {H1}\nex.com/new v1.1.0/go.mod {H1_B}\nex.com/nopkg v1.0.0/go.mod {H1_B}\n"
                ),
            ),
        ]);
        write_modules_txt(
            folder.path(),
            "# ex.com/a v1.0.0\n## explicit; go 1.21\nex.com/a\n# ex.com/local v0.0.0 => ./local\n## explicit\nex.com/local\n# ex.com/nopkg v1.0.0\n## explicit; go 1.21\n# ex.com/old v1.0.0 => ex.com/new v1.1.0\n## explicit; go 1.21\nex.com/old\n",
        );
        let wants = wants(folder.path()).unwrap();
        assert!(wants.vendor.is_some());
        let marked: Vec<(String, bool, bool)> = wants
            .modules
            .iter()
            .map(|module| (module.id(), module.code, module.vendored))
            .collect();
        assert_eq!(
            marked,
            [
                ("ex.com/a@v0.9.0".to_owned(), false, false),
                ("ex.com/a@v1.0.0".to_owned(), true, true),
                ("ex.com/new@v1.1.0".to_owned(), true, true),
                ("ex.com/nopkg@v1.0.0".to_owned(), false, false),
            ]
        );
        let lock = wants
            .vendored_lock(GoPin {
                go: wants.go_mod.go.clone(),
                ..GoPin::default()
            })
            .unwrap()
            .expect("a vendored lock");
        assert!(differences(&wants, &lock).is_empty());
        assert!(lock.modules.iter().all(|module| module.nar.is_none()));
        // The replacement's go.mod line gone: named by modules.txt's line.
        std::fs::write(
            folder.path().join("go.sum"),
            format!(
                "ex.com/a v1.0.0 {H1}\nex.com/a v1.0.0/go.mod {H1_B}\nex.com/new v1.1.0 {H1}\n"
            ),
        )
        .unwrap();
        assert_eq!(
            wants_error(folder.path()),
            "vendor/modules.txt:9: ex.com/new v1.1.0 is vendored, and go.sum has no `h1:` line for its go.mod"
        );
    }

    /// One mapping from go.sum to wants: the same go.sum gives the same wants, hashes and
    /// all, whether vendor/ holds the code or not; only the vendored marks differ.
    #[test]
    fn go_sum_entries_are_wanted_alike_with_and_without_vendor() {
        let folder = project(&[
            (
                "go.mod",
                "module app\n\ngo 1.22\n\nrequire (\n\tex.com/a v1.0.0\n\tex.com/b v1.0.0\n)\n",
            ),
            (
                "go.sum",
                &format!(
                    "ex.com/a v1.0.0 {H1}\nex.com/a v1.0.0/go.mod {H1_B}\nex.com/b v1.0.0 {H1_B}\nex.com/b v1.0.0/go.mod {H1}\nex.com/c v0.9.0/go.mod {H1_B}\n"
                ),
            ),
        ]);
        let fetched = wants(folder.path()).unwrap();
        let wanted = |id: &str, h1: Option<&str>, go_mod: &str, vendored: bool| Wanted {
            path: id.split_once('@').unwrap().0.to_owned(),
            version: id.split_once('@').unwrap().1.to_owned(),
            code: h1.is_some(),
            h1: h1.map(str::to_owned),
            go_mod: Some(go_mod.to_owned()),
            nar: None,
            vendored,
        };
        assert_eq!(
            fetched.modules,
            [
                wanted("ex.com/a@v1.0.0", Some(H1), H1_B, false),
                wanted("ex.com/b@v1.0.0", Some(H1_B), H1, false),
                wanted("ex.com/c@v0.9.0", None, H1_B, false),
            ]
        );
        write_modules_txt(
            folder.path(),
            "# ex.com/a v1.0.0\n## explicit; go 1.21\nex.com/a\n# ex.com/b v1.0.0\n## explicit; go 1.21\n",
        );
        let vendored = wants(folder.path()).unwrap();
        assert_eq!(
            vendored.modules,
            [
                wanted("ex.com/a@v1.0.0", Some(H1), H1_B, true),
                wanted("ex.com/b@v1.0.0", Some(H1_B), H1, false),
                wanted("ex.com/c@v0.9.0", None, H1_B, false),
            ]
        );
    }

    /// Make the project at `root` vendored, with `text` as its vendor/modules.txt.
    fn write_modules_txt(root: &Path, text: &str) {
        std::fs::create_dir_all(root.join("vendor")).unwrap();
        std::fs::write(root.join(MODULES_TXT), text).unwrap();
    }

    fn wants_error(root: &Path) -> String {
        match wants(root) {
            Ok(_) => panic!("expected an error"),
            Err(error) => error.to_string(),
        }
    }

    /// A go.sum or kiln.lock that is a named pipe (planted by an unpacked tarball) made
    /// `kiln lock` and `kiln build` block forever reading it.
    #[test]
    fn project_files_that_are_named_pipes_are_refused() {
        let folder = project(&[("go.mod", "module app\n\ngo 1.21\n")]);
        for name in ["go.sum", LOCK_FILE] {
            let status = std::process::Command::new("mkfifo")
                .arg(folder.path().join(name))
                .status()
                .unwrap();
            assert!(status.success());
        }
        let error = wants_error(folder.path());
        assert!(error.ends_with("go.sum is not a regular file"), "{error}");
        let hint = crate::diagnostic::Hint::hint(&wants(folder.path()).unwrap_err());
        assert_eq!(hint.as_deref(), Some("replace it with the file itself"));
        let error = read_lock(folder.path()).unwrap_err().to_string();
        assert!(error.contains("kiln.lock is not a regular file"), "{error}");
        let folder = project(&[]);
        std::fs::create_dir(folder.path().join("go.mod")).unwrap();
        let error = wants_error(folder.path());
        assert!(error.contains("go.mod is not a regular file"), "{error}");
    }

    #[test]
    fn an_empty_go_sum_with_nothing_required_needs_no_lock() {
        let folder = project(&[("go.mod", "module app\n\ngo 1.21\n"), ("go.sum", "")]);
        assert_eq!(wants(folder.path()).unwrap().source, PinOrigin::Nothing);
        let folder = project(&[(
            "go.mod",
            "module app\n\ngo 1.21\n\nrequire ex.com/a v1.0.0\n",
        )]);
        let wants = wants(folder.path()).unwrap();
        assert_eq!(wants.source, PinOrigin::Missing);
        assert!(
            wants
                .require_pins()
                .unwrap_err()
                .to_string()
                .starts_with("go.mod requires ex.com/a v1.0.0, and nothing pins them")
        );
    }

    #[test]
    fn gomod2nix_must_pin_every_requirement() {
        let folder = project(&[
            (
                "go.mod",
                "module app\n\ngo 1.21\n\nrequire ex.com/a v1.0.0\nrequire ex.com/b v1.0.0\n",
            ),
            (
                GOMOD2NIX_FILE,
                &format!("schema = 3\n[mod.'ex.com/a']\nversion = 'v1.0.0'\nhash = '{NAR}'\n"),
            ),
        ]);
        assert_eq!(
            wants_error(folder.path()).lines().next().unwrap(),
            "go.mod:6: ex.com/b v1.0.0 is not in gomod2nix.toml"
        );
    }

    #[test]
    fn differences_name_each_change() {
        let folder = project(&[
            (
                "go.mod",
                "module app\n\ngo 1.22\n\nrequire ex.com/a v1.0.0\n",
            ),
            (
                "go.sum",
                &format!(
                    "ex.com/a v1.0.0 {H1}\nex.com/a v1.0.0/go.mod {H1_B}\nex.com/c v1.0.0/go.mod {H1_B}\n"
                ),
            ),
        ]);
        let wants = wants(folder.path()).unwrap();
        let mut lock = LockFile {
            bases: Vec::new(),
            statics: Vec::new(),
            zig: Vec::new(),
            vendor: None,
            go: GoPin {
                go: Some("1.22".to_owned()),
                toolchain: "go1.27.3".to_owned(),
                toolchain_h1: BTreeMap::new(),
            },
            modules: vec![
                locked("ex.com/a", "v1.0.0", true),
                locked("ex.com/c", "v1.0.0", false),
            ],
        };
        assert!(differences(&wants, &lock).is_empty());
        lock.go.go = Some("1.21".to_owned());
        lock.modules[1] = locked("ex.com/c", "v1.0.0", true);
        lock.modules.push(locked("ex.com/gone", "v0.1.0", true));
        assert_eq!(
            differences(&wants, &lock),
            [
                "go line: go.mod says 1.22, kiln.lock has 1.21",
                "~ ex.com/c@v1.0.0 (its hashes in go.sum differ from kiln.lock)",
                "- ex.com/gone@v0.1.0 (in kiln.lock, not in go.sum)",
            ]
        );
        lock.modules.remove(0);
        assert!(
            differences(&wants, &lock)
                .contains(&"+ ex.com/a@v1.0.0 (in go.sum, not in kiln.lock)".to_owned())
        );
    }

    #[test]
    fn gomod2nix_entries_follow_go_mod() {
        let go_mod = modfile::parse(
            "module app\n\ngo 1.21\n\nrequire (\n\tex.com/a v1.3.0\n\tex.com/old v1.0.0\n\tex.com/local v0.0.0\n)\n\nreplace ex.com/old v1.0.0 => ex.com/fork v2.0.0+incompatible\nreplace ex.com/local => ../local\n",
            Path::new("go.mod"),
        )
        .unwrap();
        let lock = LockFile {
            bases: Vec::new(),
            statics: Vec::new(),
            zig: Vec::new(),
            vendor: None,
            go: GoPin::default(),
            modules: vec![
                locked("ex.com/a", "v1.10.0", true),
                locked("ex.com/a", "v1.3.0", true),
                locked("ex.com/fork", "v2.0.0+incompatible", true),
                locked("ex.com/x", "v1.9.0", true),
                locked("ex.com/x", "v1.10.0", true),
                locked("ex.com/y", "v1.0.0", false),
            ],
        };
        let entries: Vec<(String, String, Option<String>)> = lock
            .gomod2nix_entries(&go_mod)
            .into_iter()
            .map(|entry| (entry.path, entry.version, entry.replaced))
            .collect();
        assert_eq!(
            entries,
            [
                ("ex.com/a".to_owned(), "v1.3.0".to_owned(), None),
                (
                    "ex.com/old".to_owned(),
                    "v2.0.0+incompatible".to_owned(),
                    Some("ex.com/fork".to_owned())
                ),
                ("ex.com/x".to_owned(), "v1.10.0".to_owned(), None),
            ]
        );
    }
}
