//! gomod2nix.toml, schema 3 (github.com/nix-community/gomod2nix, `internal/schema`): what
//! Nix's `buildGoApplication` reads to fetch a project's modules.
//!
//! ```toml
//! schema = 3
//!
//! [mod]
//!   [mod."github.com/BurntSushi/toml"]
//!     version = "v1.3.2"
//!     hash = "sha256-FIwyH67KryRWI9Bk4R8s1zFP0IgKR4L66wNQJYQZLeg="
//!   [mod."example.com/old"]                # go.mod: replace example.com/old => example.com/new v1.1.0
//!     version = "v1.1.0"
//!     hash = "sha256-…"
//!     replaced = "example.com/new"
//! ```
//!
//! Keys are the module paths go.mod requires; `version` and `hash` are those of the module
//! actually fetched (the replacement, when `replaced` names one); `hash` is the NAR hash of the
//! unpacked module in SRI form. Modules replaced by a local folder are not listed (gomod2nix
//! leaves them out too). Optional keys of the schema (`goPackagePath`, `subPackages`,
//! `cachePackages`) are read and ignored; kiln writes none of them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::modfile::ModFile;
use super::module::compare_versions;

#[derive(Debug, thiserror::Error)]
pub enum Gomod2nixError {
    #[error("{}: {message}", .file.display())]
    Parse { file: PathBuf, message: String },
    #[error(
        "{}: schema {found} is not supported (kiln reads gomod2nix schema 3)",
        .file.display()
    )]
    Schema { file: PathBuf, found: i64 },
    #[error("{}: module {module}: {message}", .file.display())]
    Entry {
        file: PathBuf,
        module: String,
        message: String,
    },
}

impl crate::diagnostic::Hint for Gomod2nixError {
    fn hint(&self) -> Option<String> {
        match self {
            Gomod2nixError::Schema { .. } => {
                Some("regenerate it with a current `gomod2nix generate`".to_owned())
            }
            _ => None,
        }
    }
}

/// One `[mod."PATH"]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gomod2nixModule {
    /// The path go.mod requires (the table key).
    pub path: String,
    /// The version fetched.
    pub version: String,
    /// NAR hash of the unpacked module, `sha256-…`.
    pub hash: String,
    /// The module fetched instead of `path`, when go.mod replaces it.
    pub replaced: Option<String>,
}

impl Gomod2nixModule {
    /// The module path that is fetched.
    pub fn fetched_path(&self) -> &str {
        self.replaced.as_deref().unwrap_or(&self.path)
    }
}

#[derive(Deserialize)]
struct Document {
    schema: Option<i64>,
    #[serde(default)]
    r#mod: BTreeMap<String, Entry>,
}

#[derive(Deserialize)]
struct Entry {
    version: String,
    hash: String,
    replaced: Option<String>,
}

/// Parse gomod2nix.toml `text`; `file` names it in errors. Entries come sorted by path.
pub fn parse(text: &str, file: &Path) -> Result<Vec<Gomod2nixModule>, Gomod2nixError> {
    let document: Document = toml::from_str(text).map_err(|error| Gomod2nixError::Parse {
        file: file.to_owned(),
        message: toml_error(text, &error),
    })?;
    match document.schema {
        Some(3) => {}
        found => {
            return Err(Gomod2nixError::Schema {
                file: file.to_owned(),
                found: found.unwrap_or(0),
            });
        }
    }
    document
        .r#mod
        .into_iter()
        .map(|(path, entry)| {
            let entry_error = |message: String| Gomod2nixError::Entry {
                file: file.to_owned(),
                module: path.clone(),
                message,
            };
            if !is_sri_sha256(&entry.hash) {
                return Err(entry_error(format!(
                    "hash `{}` is not a NAR hash in SRI form (sha256-…)",
                    entry.hash
                )));
            }
            if entry.version.is_empty() {
                return Err(entry_error("empty version".to_owned()));
            }
            Ok(Gomod2nixModule {
                path,
                version: entry.version,
                hash: entry.hash,
                replaced: entry.replaced.filter(|replaced| !replaced.is_empty()),
            })
        })
        .collect()
}

/// Render `modules` as gomod2nix.toml, sorted by path, in the layout gomod2nix writes.
pub fn render(modules: &[Gomod2nixModule]) -> String {
    let mut sorted: Vec<&Gomod2nixModule> = modules.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut text = String::from("schema = 3\n\n[mod]\n");
    for module in sorted {
        text.push_str(&format!("  [mod.{}]\n", toml_string(&module.path)));
        text.push_str(&format!("    version = {}\n", toml_string(&module.version)));
        text.push_str(&format!("    hash = {}\n", toml_string(&module.hash)));
        if let Some(replaced) = &module.replaced {
            text.push_str(&format!("    replaced = {}\n", toml_string(replaced)));
        }
    }
    text
}

/// Whether `hash` is `sha256-` + standard base64 of 32 bytes (a NAR hash in SRI form).
pub fn is_sri_sha256(hash: &str) -> bool {
    use base64::Engine as _;
    hash.strip_prefix("sha256-").is_some_and(|encoded| {
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .is_ok_and(|bytes| bytes.len() == 32)
    })
}

/// A TOML parse error as `line N: message`.
pub(crate) fn toml_error(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim_end();
    match error.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            format!("line {line}: {message}")
        }
        None => message.to_owned(),
    }
}

/// A TOML basic string.
pub(crate) fn toml_string(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for character in value.chars() {
        match character {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            control if control.is_control() => {
                quoted.push_str(&format!("\\u{:04X}", control as u32));
            }
            other => quoted.push(other),
        }
    }
    quoted.push('"');
    quoted
}

/// A locked module as gomod2nix.toml entries need it.
#[derive(Clone, Copy, Debug)]
pub struct Pinned<'a> {
    pub path: &'a str,
    pub version: &'a str,
    /// The NAR hash of the unpacked module; `None` for a module whose code is not used.
    pub nar: Option<&'a str>,
}

/// gomod2nix.toml entries for the locked `modules`: one per module path, keyed by the path go.mod requires
/// (the replaced one, with `replaced` naming the module fetched) at the version go.mod selects;
/// then the other modules whose code is used (a go.mod before Go 1.17 lists only direct
/// requirements), at their highest locked version. Local-folder replacements are left out.
pub fn entries(go_mod: &ModFile, modules: &[Pinned<'_>]) -> Vec<Gomod2nixModule> {
    let coded: BTreeMap<(&str, &str), &str> = modules
        .iter()
        .filter_map(|module| module.nar.map(|nar| ((module.path, module.version), nar)))
        .collect();
    let mut entries: BTreeMap<String, Gomod2nixModule> = BTreeMap::new();
    let mut fetched = BTreeSet::new();
    for require in &go_mod.requires {
        let (path, version) = match go_mod.replacement(&require.path, &require.version) {
            Some(replace) => match &replace.new_version {
                Some(version) => (replace.new_path.as_str(), version.as_str()),
                None => continue,
            },
            None => (require.path.as_str(), require.version.as_str()),
        };
        let Some(nar) = coded.get(&(path, version)) else {
            continue;
        };
        fetched.insert(path.to_owned());
        entries.insert(
            require.path.clone(),
            Gomod2nixModule {
                path: require.path.clone(),
                version: version.to_owned(),
                hash: (*nar).to_owned(),
                replaced: (path != require.path).then(|| path.to_owned()),
            },
        );
    }
    // The rest, highest version last so it wins.
    let mut rest: Vec<&Pinned<'_>> = modules
        .iter()
        .filter(|module| module.nar.is_some() && !fetched.contains(module.path))
        .collect();
    rest.sort_by(|a, b| {
        a.path
            .cmp(b.path)
            .then_with(|| compare_versions(a.version, b.version))
    });
    for module in rest {
        if entries.contains_key(module.path) {
            keep_highest(&mut entries, module);
            continue;
        }
        entries.insert(
            module.path.to_owned(),
            Gomod2nixModule {
                path: module.path.to_owned(),
                version: module.version.to_owned(),
                hash: module.nar.unwrap_or_default().to_owned(),
                replaced: None,
            },
        );
    }
    entries.into_values().collect()
}

/// Replace an entry added from the rest of the lock by a higher version of its module.
fn keep_highest(entries: &mut BTreeMap<String, Gomod2nixModule>, module: &Pinned<'_>) {
    if let Some(entry) = entries.get_mut(module.path)
        && entry.replaced.is_none()
        && compare_versions(&entry.version, module.version).is_lt()
        && let Some(nar) = module.nar
    {
        entry.version = module.version.to_owned();
        entry.hash = nar.to_owned();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "sha256-FIwyH67KryRWI9Bk4R8s1zFP0IgKR4L66wNQJYQZLeg=";

    #[test]
    fn round_trip() {
        let modules = vec![
            Gomod2nixModule {
                path: "example.com/old".to_owned(),
                version: "v1.1.0".to_owned(),
                hash: HASH.to_owned(),
                replaced: Some("example.com/new".to_owned()),
            },
            Gomod2nixModule {
                path: "github.com/BurntSushi/toml".to_owned(),
                version: "v1.3.2".to_owned(),
                hash: HASH.to_owned(),
                replaced: None,
            },
        ];
        let text = render(&modules);
        assert_eq!(
            text,
            format!(
                "schema = 3\n\n[mod]\n  [mod.\"example.com/old\"]\n    version = \"v1.1.0\"\n    hash = \"{HASH}\"\n    replaced = \"example.com/new\"\n  [mod.\"github.com/BurntSushi/toml\"]\n    version = \"v1.3.2\"\n    hash = \"{HASH}\"\n"
            )
        );
        assert_eq!(parse(&text, Path::new("gomod2nix.toml")).unwrap(), modules);
    }

    #[test]
    fn reads_what_gomod2nix_writes() {
        // BurntSushi/toml's layout: single quotes, optional keys.
        let text = format!(
            "schema = 3\ngoPackagePath = 'example.com/app'\n\n[mod]\n\n[mod.'golang.org/x/sys']\nversion = 'v0.32.0'\nhash = '{HASH}'\n"
        );
        let modules = parse(&text, Path::new("gomod2nix.toml")).unwrap();
        assert_eq!(modules.len(), 1);
        assert_eq!(modules[0].fetched_path(), "golang.org/x/sys");
    }

    #[test]
    fn refuses_other_schemas_and_bad_hashes() {
        let error = parse("schema = 1\n", Path::new("gomod2nix.toml")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "gomod2nix.toml: schema 1 is not supported (kiln reads gomod2nix schema 3)"
        );
        assert_eq!(
            crate::diagnostic::Hint::hint(&error).as_deref(),
            Some("regenerate it with a current `gomod2nix generate`")
        );
        let text = "schema = 3\n[mod.'a.example/b']\nversion = 'v1.0.0'\nhash = 'sha256:abc'\n";
        let error = parse(text, Path::new("gomod2nix.toml")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "gomod2nix.toml: module a.example/b: hash `sha256:abc` is not a NAR hash in SRI form (sha256-…)"
        );
    }
}
