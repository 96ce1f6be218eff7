//! `vendor/modules.txt` and its agreement with go.mod.
//!
//! The file lists each vendored module as `# PATH VERSION [=> NEW [VERSION]]`, annotations
//! as `## explicit[; go X]`, then its packages. Since Go 1.14 every requirement in go.mod
//! must appear with `## explicit` at the same version, every `## explicit` module must be
//! required, and replacements must match; otherwise Go stops with "inconsistent vendoring".
//! kiln checks the same before building so the error names the module and both sides.

use std::path::{Path, PathBuf};

use super::modfile::ModFile;

#[derive(Debug, thiserror::Error)]
pub enum VendorError {
    #[error("{}:{line}: {message}", .file.display())]
    Malformed {
        file: PathBuf,
        line: usize,
        message: String,
    },
    #[error("vendor/modules.txt disagrees with go.mod: {0}")]
    Inconsistent(String),
}

impl crate::diagnostic::Hint for VendorError {
    fn hint(&self) -> Option<String> {
        match self {
            VendorError::Inconsistent(_) => {
                Some("run `go mod vendor` to refresh vendor/, or fix go.mod".to_owned())
            }
            _ => None,
        }
    }
}

/// One module listed in modules.txt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VendoredModule {
    pub path: String,
    pub version: Option<String>,
    pub replacement: Option<(String, Option<String>)>,
    pub explicit: bool,
    pub packages: Vec<String>,
    /// The line of its `# PATH VERSION` header (1-based), for errors.
    pub line: usize,
}

impl VendoredModule {
    /// The module version whose code vendor/ holds, as go.sum names it: the replacement when
    /// go.mod replaces the module with another module version; `None` when vendor/ holds no
    /// package of it, or its code comes from a local folder (neither is pinned by go.sum's
    /// zip hash).
    pub fn vendored_code(&self) -> Option<(&str, &str)> {
        if self.packages.is_empty() {
            return None;
        }
        match &self.replacement {
            Some((path, Some(version))) => Some((path, version)),
            Some((_, None)) => None,
            None => self
                .version
                .as_deref()
                .map(|version| (self.path.as_str(), version)),
        }
    }
}

/// Parse modules.txt.
pub fn parse(text: &str, file: &Path) -> Result<Vec<VendoredModule>, VendorError> {
    let mut modules: Vec<VendoredModule> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let malformed = |message: &str| VendorError::Malformed {
            file: file.to_owned(),
            line: index + 1,
            message: message.to_owned(),
        };
        if let Some(annotations) = line.strip_prefix("## ") {
            let module = modules
                .last_mut()
                .ok_or_else(|| malformed("an annotation before any module"))?;
            if annotations
                .split(';')
                .any(|annotation| annotation.trim() == "explicit")
            {
                module.explicit = true;
            }
        } else if let Some(header) = line.strip_prefix("# ") {
            let fields: Vec<&str> = header.split_whitespace().collect();
            let (head, replacement) = match fields.iter().position(|field| *field == "=>") {
                Some(arrow) => (&fields[..arrow], Some(&fields[arrow + 1..])),
                None => (&fields[..], None),
            };
            let (path, version) = match head {
                [path] => (*path, None),
                [path, version] => (*path, Some((*version).to_owned())),
                _ => return Err(malformed("expected `# PATH VERSION`")),
            };
            let replacement = match replacement {
                None => None,
                Some([new]) => Some(((*new).to_owned(), None)),
                Some([new, version]) => Some(((*new).to_owned(), Some((*version).to_owned()))),
                Some(_) => return Err(malformed("expected `=> PATH [VERSION]`")),
            };
            modules.push(VendoredModule {
                path: path.to_owned(),
                version,
                replacement,
                explicit: false,
                packages: Vec::new(),
                line: index + 1,
            });
        } else if !line.trim().is_empty() && !line.starts_with('#') {
            let module = modules
                .last_mut()
                .ok_or_else(|| malformed("a package before any module"))?;
            module.packages.push(line.trim().to_owned());
        }
    }
    Ok(modules)
}

/// Check that `modules` (from modules.txt) agree with go.mod the way Go requires.
pub fn check_consistency(modfile: &ModFile, modules: &[VendoredModule]) -> Result<(), VendorError> {
    let mut problems = Vec::new();
    for require in &modfile.requires {
        match modules.iter().find(|module| module.path == require.path) {
            None => problems.push(format!(
                "go.mod requires {} {} (go.mod line {}), which vendor/modules.txt does not list",
                require.path, require.version, require.line
            )),
            Some(module) if module.version.as_deref() != Some(require.version.as_str()) => {
                problems.push(format!(
                    "go.mod requires {} {} but vendor/modules.txt has {}",
                    require.path,
                    require.version,
                    module.version.as_deref().unwrap_or("no version")
                ));
            }
            Some(module) if !module.explicit => problems.push(format!(
                "go.mod requires {} {} but vendor/modules.txt does not mark it `## explicit`",
                require.path, require.version
            )),
            Some(_) => {}
        }
    }
    for module in modules.iter().filter(|module| module.explicit) {
        if module.version.is_some()
            && !modfile
                .requires
                .iter()
                .any(|require| require.path == module.path)
        {
            problems.push(format!(
                "vendor/modules.txt has {} {} as explicitly required, but go.mod does not require it",
                module.path,
                module.version.as_deref().unwrap_or("")
            ));
        }
    }
    for replace in &modfile.replaces {
        let Some(module) = modules.iter().find(|module| {
            module.path == replace.old_path
                && replace
                    .old_version
                    .as_ref()
                    .is_none_or(|version| module.version.as_ref() == Some(version))
        }) else {
            continue;
        };
        let expected = (replace.new_path.clone(), replace.new_version.clone());
        if module.replacement.as_ref() != Some(&expected) {
            problems.push(format!(
                "go.mod replaces {} with {}{}, but vendor/modules.txt {}",
                replace.old_path,
                replace.new_path,
                replace
                    .new_version
                    .as_ref()
                    .map(|version| format!(" {version}"))
                    .unwrap_or_default(),
                match &module.replacement {
                    Some((path, version)) => format!(
                        "has {path}{}",
                        version
                            .as_ref()
                            .map(|version| format!(" {version}"))
                            .unwrap_or_default()
                    ),
                    None => "has no replacement".to_owned(),
                }
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(VendorError::Inconsistent(problems.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gomod::modfile;

    const MODULES: &str = "# example.com/greet v1.0.0\n## explicit; go 1.21\nexample.com/greet\nexample.com/greet/internal/words\n# example.com/local v0.0.0 => ./local\n## explicit\nexample.com/local\n";

    fn modfile(text: &str) -> ModFile {
        modfile::parse(text, Path::new("go.mod")).unwrap()
    }

    #[test]
    fn consistent_vendor_passes() {
        let modules = parse(MODULES, Path::new("vendor/modules.txt")).unwrap();
        assert_eq!(modules[0].packages.len(), 2);
        assert_eq!(modules[1].replacement, Some(("./local".to_owned(), None)));
        let go_mod = modfile(
            "module app\nrequire (\n example.com/greet v1.0.0\n example.com/local v0.0.0\n)\nreplace example.com/local => ./local\n",
        );
        check_consistency(&go_mod, &modules).unwrap();
    }

    #[test]
    fn disagreements_name_the_module() {
        let modules = parse(MODULES, Path::new("vendor/modules.txt")).unwrap();
        let go_mod = modfile(
            "module app\nrequire (\n example.com/greet v1.1.0\n example.com/local v0.0.0\n example.com/new v1.0.0\n)\n",
        );
        let error = check_consistency(&go_mod, &modules).unwrap_err();
        let hint = crate::diagnostic::Hint::hint(&error);
        let error = error.to_string();
        assert!(
            error.contains(
                "go.mod requires example.com/greet v1.1.0 but vendor/modules.txt has v1.0.0"
            ),
            "{error}"
        );
        assert!(
            error.contains(
                "example.com/new v1.0.0 (go.mod line 5), which vendor/modules.txt does not list"
            ),
            "{error}"
        );
        assert!(!error.contains("hint:"), "{error}");
        assert!(
            hint.is_some_and(|hint| hint.starts_with("run `go mod vendor`")),
            "{error}"
        );
    }
}
