//! `kiln lock`: fetch, verify and pin the project's Go modules in kiln.lock.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use clap::Args;

use super::Printer;
use super::style::format_bytes;
use crate::build::toolchain;
use crate::gomod::gomod2nix;
use crate::gomod::proxy::{GoEnv, ProxyClient};
use crate::lock::lockfile::{self, GoPin, LockedBase};
use crate::lock::{self, Fetched, GOMOD2NIX_FILE, LOCK_FILE, PinSource, Progress};
use crate::oci::reference::Reference;
use crate::oci::spec::Platform;
use crate::registry::client::ClientOptions;
use crate::store::Store;
use crate::transport::RemoteSource;

const AFTER_HELP: &str = "\
kiln lock reads go.mod and go.sum, fetches every module go.sum pins through the GOPROXY
protocol ($GOPROXY: `,` falls through on not-found, `|` on any error; file:// and http(s)://
proxies; `off`; `direct` and GOPRIVATE/GONOPROXY modules need a proxy, as kiln does not fetch
from version control), checks each .mod and .zip against go.sum's h1: hashes before it enters
the store (zips are checked for unsafe names, links, case collisions and Go's size limits), and
writes kiln.lock: each module's path, version, h1: of its zip and go.mod, and the NAR hash of
the unpacked module. Builds then run offline from the lock. A project with no go.sum but a
gomod2nix.toml is locked from that file, its NAR hashes verified.

The lock pins the Go release: go.mod's toolchain line, else the one pinned before, else the
local go, never one older than go.mod's go line. When the local go is not that release (or
there is none) kiln fetches it as Go does (golang.org/toolchain from the GOPROXY), keeps it in
the store and pins its h1: for this host; GOTOOLCHAIN=local forbids the fetch.

Each `base = \"REF\"` of the project's images is pinned too: the image manifest its tag names
for the package's platform (from an index, for a multi-platform base), as a [[base]] entry. A
pinned base stays pinned until --update-bases resolves the tags again.

An image with `base = \"static\"` has the static base's sources pinned as [[static]] entries: the
CA bundle (certifi) and tzdata wheels from PyPI, by URL and sha256. kiln's own pins are used
until --update-bases resolves the newest on PyPI (KILN_PYPI_URL, default https://pypi.org).

--check fetches nothing and writes nothing: it prints what differs and exits 1 when kiln.lock
is out of date with go.mod and go.sum (for CI).";

#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct LockArgs {
    /// The project folder [default: the nearest folder upwards with kiln.toml or go.mod].
    #[arg(value_name = "PATH")]
    path: Option<PathBuf>,

    /// Write nothing; exit 1, printing the differences, when kiln.lock is out of date.
    #[arg(long)]
    check: bool,

    /// Also write gomod2nix.toml (schema 3) for Nix's buildGoApplication.
    #[arg(long, conflicts_with = "check")]
    gomod2nix: bool,

    /// Downloads at once (at most 16).
    #[arg(short, long, default_value_t = 8, value_name = "N")]
    jobs: usize,

    /// Print the locked modules as JSON on stdout.
    #[arg(long)]
    json: bool,

    /// Resolve every base image's tag again (a pinned base otherwise stays as it is).
    #[arg(long, conflicts_with = "check")]
    update_bases: bool,

    /// Allow plain HTTP and unverified TLS for base-image registries not on loopback.
    #[arg(long)]
    insecure: bool,
}

/// The base images the project's images start from: (reference, platform) pairs.
fn wanted_bases(root: &Path) -> Result<Vec<(Reference, Platform)>> {
    if !root.join(crate::project::config::PROJECT_FILE).is_file() {
        return Ok(Vec::new());
    }
    let project = crate::project::Project::load(root)?;
    let mut wanted = Vec::new();
    for image in project.images.values() {
        if let Some(crate::project::config::Base::Image(base)) = &image.base {
            for platform in &image.platforms {
                let pair = (base.clone(), platform.clone());
                if !wanted.contains(&pair) {
                    wanted.push(pair);
                }
            }
        }
    }
    Ok(wanted)
}

/// Whether an image of the project starts from kiln's static base.
fn wants_static(root: &Path) -> Result<bool> {
    if !root.join(crate::project::config::PROJECT_FILE).is_file() {
        return Ok(false);
    }
    let project = crate::project::Project::load(root)?;
    Ok(project
        .images
        .values()
        .any(|image| image.base == Some(crate::project::config::Base::Static)))
}

/// The static base's sources: none when no image uses it; else the previous pins (unless
/// `update`), else kiln's own pins, or with `update` the newest on PyPI.
fn resolve_statics(
    root: &Path,
    previous: Option<&lockfile::LockFile>,
    update: bool,
    printer: &Printer,
) -> Result<Vec<crate::static_base::StaticSource>> {
    if !wants_static(root)? {
        return Ok(Vec::new());
    }
    if !update && let Some(previous) = previous.filter(|previous| !previous.statics.is_empty()) {
        return Ok(previous.statics.clone());
    }
    let sources = if update {
        let index = crate::static_base::pypi_url();
        crate::static_base::latest_sources(&index)
            .with_context(|| format!("cannot resolve the static base's sources on {index}"))?
    } else {
        crate::static_base::default_sources()
    };
    for source in &sources {
        printer.status(format!(
            "pinned static base source {} {} (sha256 {})",
            source.name, source.version, source.sha256
        ));
    }
    Ok(sources)
}

/// Pin each wanted base: the previous pin when there is one (unless `update`), else the
/// registry's answer for its tag (or digest), down to the platform's manifest.
fn resolve_bases(
    wanted: &[(Reference, Platform)],
    previous: Option<&lockfile::LockFile>,
    update: bool,
    insecure: bool,
    printer: &Printer,
) -> Result<Vec<LockedBase>> {
    let options = ClientOptions::from_env(insecure);
    let mut bases = Vec::new();
    for (reference, platform) in wanted {
        let name = reference.to_string();
        let platform_text = platform.to_string();
        if !update && let Some(pinned) = previous.and_then(|lock| lock.base(&name, &platform_text))
        {
            bases.push(pinned.clone());
            continue;
        }
        let remote = RemoteSource::connect(reference, &options)
            .with_context(|| format!("cannot resolve the base image {name}"))?;
        let digest = remote
            .resolve_platform(reference, platform)
            .with_context(|| format!("cannot resolve the base image {name}"))?
            .digest;
        printer.status(format!("pinned base {name} ({platform_text}) to {digest}"));
        bases.push(LockedBase {
            name,
            platform: platform_text,
            digest: digest.to_string(),
        });
    }
    bases.sort();
    Ok(bases)
}

/// The project folder: `path`, or the nearest folder upwards holding kiln.toml, else go.mod.
fn project_root(path: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = path {
        return Ok(path.to_owned());
    }
    let current = std::env::current_dir().context("cannot read the current folder")?;
    for marker in [crate::project::config::PROJECT_FILE, "go.mod"] {
        if let Some(found) = current
            .ancestors()
            .find(|ancestor| ancestor.join(marker).is_file())
        {
            return Ok(found.to_owned());
        }
    }
    Ok(current)
}

/// A progress bar over modules, when stderr is a terminal.
struct Bar {
    bar: Option<indicatif::ProgressBar>,
    bytes: AtomicU64,
}

impl Progress for Bar {
    fn start(&self, modules: usize) {
        if let Some(bar) = &self.bar {
            bar.set_length(modules as u64);
        }
    }

    fn done(&self, module: &str, fetched: Fetched) {
        if let Fetched::Downloaded(bytes) = fetched {
            self.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        if let Some(bar) = &self.bar {
            bar.set_message(module.to_owned());
            bar.inc(1);
        }
    }
}

/// The first release of a go line: `1.22` → `go1.22.0`, `1.22.3` → `go1.22.3`.
fn minimum_release(line: &str) -> String {
    let numeric = line.chars().all(|c| c.is_ascii_digit() || c == '.');
    if numeric && line.matches('.').count() == 1 {
        format!("go{line}.0")
    } else {
        format!("go{line}")
    }
}

pub fn run(args: LockArgs, printer: &Printer) -> Result<()> {
    let root = project_root(args.path.as_deref())?;
    let wants = lock::wants(&root)?;
    wants.require_pins()?;
    let lock_path = root.join(LOCK_FILE);
    if args.check {
        let Some(locked) = lock::read_lock(&root)? else {
            bail!(
                "{} does not exist\nhint: run `kiln lock` and commit kiln.lock",
                lock_path.display()
            );
        };
        let mut differences = lock::differences(&wants, &locked);
        if wants_static(&root)? && locked.statics.is_empty() {
            differences.push(
                "+ the static base's sources (an image has base = \"static\", kiln.lock pins none)"
                    .to_owned(),
            );
        }
        for (reference, platform) in wanted_bases(&root)? {
            if locked
                .base(&reference.to_string(), &platform.to_string())
                .is_none()
            {
                differences.push(format!(
                    "+ base {reference} for {platform} (in kiln.toml, not in kiln.lock)"
                ));
            }
        }
        if differences.is_empty() {
            printer.status(format!(
                "{LOCK_FILE} is up to date ({} modules)",
                locked.modules.len()
            ));
            return Ok(());
        }
        let mut stdout = std::io::stdout().lock();
        for line in &differences {
            writeln!(stdout, "{line}")?;
        }
        bail!(
            "{} is out of date with go.mod and {} ({} differences)\nhint: run `kiln lock`",
            lock_path.display(),
            wants.source.file_name(),
            differences.len()
        );
    }
    let previous = match lock::read_lock(&root) {
        Ok(previous) => previous,
        Err(error) => {
            printer.warn(format!("{error}; writing a new one"));
            None
        }
    };
    let local = toolchain::find_go().ok().and_then(|go| {
        let store = Store::open().ok()?;
        toolchain::version(&go, &store.toolchain_cache()).ok()
    });
    let pinned = match (&wants.go_mod.toolchain, &previous, &local) {
        (Some(line), _, _) => line.clone(),
        (None, Some(previous), _) if previous.go.go == wants.go_mod.go => {
            previous.go.toolchain.clone()
        }
        (None, _, Some(local)) => local.clone(),
        (None, _, None) => match wants.go_mod.go.as_deref() {
            Some(line) => minimum_release(line),
            None => bail!(
                "go.mod has neither a go nor a toolchain line and no Go toolchain was found to pin\nhint: add `toolchain go1.N.M` to go.mod, or put go on PATH (or set KILN_GO)"
            ),
        },
    };
    // Never a release older than go.mod's go line: Go would refuse to build with it.
    let pinned = match wants.go_mod.go.as_deref() {
        Some(line) if wants.go_mod.toolchain.is_none() => {
            let minimum = minimum_release(line);
            let older = lock::compare_versions(
                &pinned.replacen("go", "v", 1),
                &minimum.replacen("go", "v", 1),
            )
            .is_lt();
            if older { minimum } else { pinned }
        }
        _ => pinned,
    };
    // The release's h1: stays pinned once kiln fetched it, whoever locks next.
    let mut go_pin = GoPin {
        go: wants.go_mod.go.clone(),
        toolchain: pinned.clone(),
        toolchain_h1: previous
            .as_ref()
            .filter(|previous| previous.go.toolchain == pinned)
            .map(|previous| previous.go.toolchain_h1.clone())
            .unwrap_or_default(),
    };
    let store = Store::open()?;
    let _guard = store.build_guard(|| printer.status("waiting for `kiln gc` to finish"))?;
    let env = GoEnv::from_env();
    let client = ProxyClient::new(&env)?;
    if local.as_deref() != Some(pinned.as_str()) {
        let local_only = std::env::var("GOTOOLCHAIN").is_ok_and(|value| value == "local");
        if local_only && lock::fetched_toolchain(&store, &go_pin).is_none() {
            bail!(
                "the project builds with {pinned} and the go here is {}; GOTOOLCHAIN=local forbids fetching it\nhint: put {pinned} on PATH (or in KILN_GO), or unset GOTOOLCHAIN to let kiln fetch it",
                local.as_deref().unwrap_or("missing")
            );
        }
        if lock::fetched_toolchain(&store, &go_pin).is_none() {
            printer.status(format!(
                "fetching {pinned} for {} (the go here is {})",
                lock::go_host(),
                local.as_deref().unwrap_or("missing")
            ));
        }
        let host = lock::go_host();
        let h1 = lock::fetch_toolchain(
            &store,
            &client,
            &pinned,
            go_pin.toolchain_h1.get(&host).map(String::as_str),
        )?;
        go_pin.toolchain_h1.insert(host, h1);
    }
    let bar = Bar {
        bar: (super::progress_allowed(printer) && !wants.modules.is_empty()).then(|| {
            let bar = indicatif::ProgressBar::with_draw_target(
                None,
                indicatif::ProgressDrawTarget::stderr(),
            );
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("locking [{bar:30}] {pos}/{len} {msg}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        }),
        bytes: AtomicU64::new(0),
    };
    let locked = lock::lock(
        &store,
        &client,
        &wants,
        previous.as_ref(),
        go_pin,
        &bar,
        args.jobs,
    );
    if let Some(bar) = &bar.bar {
        bar.finish_and_clear();
    }
    let mut locked = locked?;
    locked.lock.bases = resolve_bases(
        &wanted_bases(&root)?,
        previous.as_ref(),
        args.update_bases,
        args.insecure,
        printer,
    )?;
    locked.lock.statics = resolve_statics(&root, previous.as_ref(), args.update_bases, printer)?;
    let text = lockfile::render(&locked.lock);
    let changed = std::fs::read_to_string(&lock_path).ok().as_deref() != Some(text.as_str());
    if changed {
        crate::output::write_atomic(&lock_path, text.as_bytes())?;
    }
    store.add_lock_root(&lock_path)?;
    if args.gomod2nix {
        let entries = lock::gomod2nix_entries(&wants.go_mod, &locked.lock);
        let path = root.join(GOMOD2NIX_FILE);
        if wants.source == PinSource::Gomod2nix {
            printer.status(format!(
                "{GOMOD2NIX_FILE} is what kiln.lock was locked from; left as it is"
            ));
        } else {
            crate::output::write_atomic(&path, gomod2nix::render(&entries).as_bytes())?;
            printer.status(format!(
                "wrote {} ({} modules)",
                path.display(),
                entries.len()
            ));
        }
    }
    let downloaded = locked
        .fetched
        .iter()
        .filter(|(_, how)| matches!(how, Fetched::Downloaded(_)))
        .count();
    printer.status(format!(
        "{} {} ({} modules from {}: {} fetched, {}; {} already in the store)",
        if changed { "wrote" } else { "up to date:" },
        lock_path.display(),
        locked.lock.modules.len(),
        wants.source.file_name(),
        downloaded,
        format_bytes(bar.bytes.load(Ordering::Relaxed)),
        locked.fetched.len() - downloaded,
    ));
    if args.json {
        let fetched: std::collections::BTreeMap<String, Fetched> =
            locked.fetched.iter().cloned().collect();
        let report = serde_json::json!({
            "lock": lock_path,
            "changed": changed,
            "toolchain": locked.lock.go.toolchain,
            "modules": locked.lock.modules.iter().map(|module| {
                let how = fetched.get(&module.id());
                serde_json::json!({
                    "path": module.path,
                    "version": module.version,
                    "h1": module.h1,
                    "go_mod": module.go_mod,
                    "nar": module.nar,
                    "fetched_bytes": match how { Some(Fetched::Downloaded(bytes)) => Some(*bytes), _ => None },
                })
            }).collect::<Vec<_>>(),
        });
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut stdout, &report)?;
        writeln!(stdout)?;
    }
    Ok(())
}
