//! `kiln lock`: fetch, verify and pin the project's Go modules in kiln.lock.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Result, bail};
use clap::Args;

use super::Printer;
use super::style::format_bytes;
use crate::gomod::direct::DirectFetcher;
use crate::gomod::gomod2nix;
use crate::gomod::proxy::{GoEnv, ProxyClient};
use crate::lock::locker::{self, Check, ImageInputs};
use crate::lock::lockfile;
use crate::lock::{self, FetchProgress, Fetched, GOMOD2NIX_FILE, LOCK_FILE, PinOrigin};
use crate::store::Store;
use crate::toolchain;

const AFTER_HELP: &str = "\
kiln lock reads go.mod and go.sum, fetches every module go.sum pins through the GOPROXY
protocol ($GOPROXY: `,` falls through on not-found, `|` on any error; file:// and http(s)://
proxies; `off`; `direct`), checks each .mod and .zip against go.sum's h1: hashes before it
enters the store (zips are checked for unsafe names, links, case collisions and Go's size
limits), and writes kiln.lock: each module's path, version, h1: of its zip and go.mod, and the
NAR hash of the unpacked module. Builds then run offline from the lock. A project with no
go.sum but a gomod2nix.toml is locked from that file, its NAR hashes verified. HTTPS proxies
get the credentials GOAUTH gives (as go: netrc, `git DIR`, or a command printing credential
sets, run again with the URL after a 4xx); none are ever printed.

Modules GOPROXY sends `direct`, and those matching GONOPROXY (default GOPRIVATE) whatever
GOPROXY says, come from version control: kiln runs the pinned `go mod download -json` with a
private temporary module cache, GOPROXY=direct, GOSUMDB=off (go.sum is checked by kiln, and is
mandatory) and your credentials' settings (HOME, .netrc/NETRC, GOAUTH, git config and
credential helpers, SSH_AUTH_SOCK, GIT_*, GOVCS, GOINSECURE, proxies, SSL_CERT_*; git never
prompts), then verifies the .mod and .zip Go wrote exactly like a proxied module's. kiln.lock
marks them `origin = \"direct\"`; builds need neither the network nor the credentials.

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

A package with `cgo = true` has its C toolchain pinned as a [[zig]] entry: the ziglang wheel
from PyPI for this host (Zig 0.17.1 unless kiln.lock pins another), by URL and sha256. It is
fetched, checked against the sha256 (another file is refused) and unpacked into the store, so
cgo builds run offline. Pins of other hosts in kiln.lock are kept.

--host OS/ARCH (repeatable) pins for another host too, so a team on two kinds of machines
shares one kiln.lock that neither changes: the Go release's h1 for that host (its zip fetched
from the GOPROXY and checked, not kept) and, with a cgo package, kiln's pin of the ziglang
wheel for it (linux/amd64, linux/arm64; not fetched here, but fetched and checked against its
sha256 where it is used). Pins kiln.lock has already are kept.

A vendored project (vendor/modules.txt) is locked without fetching any module: vendor/ is
their source. vendor/modules.txt must agree with go.mod, every vendored module must have its
h1: lines in go.sum, and kiln.lock records go.sum's entries as they are (vendored ones marked
`vendored = true`, no NAR hashes) and vendor/modules.txt's sha256. --gomod2nix is refused
there: gomod2nix.toml needs the NAR hash of each module as Go downloads it, which vendor/
(only the imported packages) cannot give.

--check fetches nothing and writes nothing: it prints what differs and exits 1 when kiln.lock
is out of date with go.mod and go.sum (and vendor/modules.txt) (for CI).";

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

    /// Also pin for this host (Go's OS/ARCH, as in linux/arm64): the Go release's h1 and the
    /// C toolchain of cgo packages, so its machines lock and build without changing
    /// kiln.lock; repeatable.
    #[arg(long = "host", value_name = "OS/ARCH", value_parser = locker::lock_host, conflicts_with = "check")]
    hosts: Vec<String>,

    /// Also check go.sum's modules against gomod2nix.toml's NAR hashes (`kiln init
    /// --from-nix`, not a flag of `kiln lock`).
    #[arg(skip)]
    check_gomod2nix: bool,
}

impl LockArgs {
    /// The lock `kiln init --from-nix` makes of the project in `folder`: as `kiln lock`
    /// there, with gomod2nix.toml's NAR hashes checked too.
    pub(super) fn after_from_nix(folder: &std::path::Path) -> LockArgs {
        LockArgs {
            path: Some(folder.to_owned()),
            check: false,
            gomod2nix: false,
            jobs: 8,
            json: false,
            update_bases: false,
            insecure: false,
            hosts: Vec::new(),
            check_gomod2nix: true,
        }
    }
}

/// A progress bar over modules, when stderr is a terminal.
struct Bar {
    bar: Option<indicatif::ProgressBar>,
    bytes: AtomicU64,
}

impl FetchProgress for Bar {
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

pub fn run(args: LockArgs, printer: &Printer) -> Result<()> {
    let root = locker::project_root(args.path.as_deref())?;
    let mut wants = lock::wants(&root)?;
    wants.require_pins()?;
    if args.check_gomod2nix {
        let checked = wants.check_gomod2nix_too(&root)?;
        if checked > 0 {
            printer.status(format!(
                "checking {checked} module{} against gomod2nix.toml's NAR hashes too",
                if checked == 1 { "" } else { "s" }
            ));
        }
    }
    if args.gomod2nix && wants.vendor.is_some() {
        return Err(lock::LockError::Gomod2nixVendored.into());
    }
    let lock_path = root.join(LOCK_FILE);
    let compared = if wants.vendor.is_some() {
        format!("go.mod, go.sum and {}", lock::wants::MODULES_TXT)
    } else {
        format!("go.mod and {}", wants.source.file_name())
    };
    if args.check {
        return match locker::check(&root, &wants)? {
            Check::Missing => bail!(crate::diagnostic::Hinted::new(
                format!("{} does not exist", lock_path.display()),
                "run `kiln lock` and commit kiln.lock"
            )),
            Check::Current { modules } => {
                printer.status(format!("{LOCK_FILE} is up to date ({modules} modules)"));
                Ok(())
            }
            Check::Stale(differences) => {
                let mut stdout = std::io::stdout().lock();
                for line in &differences {
                    writeln!(stdout, "{line}")?;
                }
                bail!(crate::diagnostic::Hinted::new(
                    format!(
                        "{} is out of date with {compared} ({} differences)",
                        lock_path.display(),
                        differences.len()
                    ),
                    "run `kiln lock`"
                ))
            }
        };
    }
    let previous = match lock::read_lock(&root) {
        Ok(previous) => previous,
        Err(error) => {
            printer.warn(format!("{error}; writing a new one"));
            None
        }
    };
    let local_go = toolchain::find_go().ok();
    let local = local_go.as_deref().and_then(|go| {
        let store = Store::open().ok()?;
        toolchain::version(go, &store.toolchain_cache()).ok()
    });
    let pinned = locker::pin_release(&wants, previous.as_ref(), local.as_deref())?;
    let mut go_pin = locker::go_pin(&wants, previous.as_ref(), &pinned);
    let status = |message: &str| printer.status(message);
    let store = Store::open()?;
    let _guard = store.build_guard(|| printer.status("waiting for `kiln gc` to finish"))?;
    let env = GoEnv::from_env();
    let client = ProxyClient::new(&env)?;
    locker::ensure_release(&store, &client, &mut go_pin, local.as_deref(), &status)?;
    let inputs = ImageInputs::of(&root)?;
    // A host kiln has no C toolchain for is refused before anything is fetched for it.
    if inputs.cgo {
        for host in &args.hosts {
            let pinned = previous.as_ref().and_then(|lock| lock.zig_for(host));
            if pinned.is_none() {
                toolchain::zig::default_pin(host)?;
            }
        }
    }
    locker::pin_release_hosts(&client, &mut go_pin, &args.hosts, &status)?;
    // Modules that go `direct` are downloaded by the pinned Go, as the build would run it.
    let direct = DirectFetcher::new(
        locker::pinned_go(&store, &go_pin, local_go.as_deref(), local.as_deref()),
        &store.root().join("tmp"),
        std::env::vars_os(),
    );
    let vendored = wants.vendored_lock(go_pin.clone())?;
    let bar = Bar {
        bar: (super::progress_allowed(printer) && vendored.is_none() && !wants.modules.is_empty())
            .then(|| {
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
    // A vendored project's modules are vendor/'s: nothing to fetch.
    let locked = match vendored {
        Some(lock) => Ok(lock::Locked {
            lock,
            fetched: Vec::new(),
        }),
        None => lock::lock(
            &store,
            lock::Sources {
                proxies: &client,
                direct: &direct,
            },
            &wants,
            previous.as_ref(),
            go_pin,
            &bar,
            args.jobs,
        ),
    };
    if let Some(bar) = &bar.bar {
        bar.finish_and_clear();
    }
    let mut locked = locked?;
    locked.lock.bases = locker::resolve_bases(
        &inputs.bases,
        previous.as_ref(),
        args.update_bases,
        args.insecure,
        &status,
    )?;
    locked.lock.statics = locker::resolve_statics(
        inputs.static_base,
        previous.as_ref(),
        args.update_bases,
        &status,
    )?;
    // Everything a build reads besides the project goes into the store now, so builds need
    // no network: the static base and each pinned base image (modules and the Go release
    // are there already).
    if !locked.lock.statics.is_empty() {
        crate::static_base::realise(&store, &locked.lock.statics, &status)?;
        printer.status(format!(
            "stored for offline builds: kiln's static base ({})",
            locked
                .lock
                .statics
                .iter()
                .map(|source| format!("{} {}", source.name, source.version))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    locked.lock.zig = locker::resolve_zig(inputs.cgo, previous.as_ref(), &args.hosts, &status)?;
    if !inputs.cgo && !args.hosts.is_empty() {
        printer.status(format!(
            "--host {}: no package has cgo = true, so there is no C toolchain to pin",
            args.hosts.join(", ")
        ));
    }
    if let Some(pin) = locked.lock.zig_for(&toolchain::zig::zig_host()) {
        toolchain::zig::realise(&store, pin, &status)?;
        printer.status(format!(
            "stored for offline builds: the Zig C toolchain {} for {}",
            pin.version, pin.host
        ));
    }
    if !locked.lock.bases.is_empty() {
        let builder = crate::builder::Builder::new(store.clone(), &status);
        for base in &locked.lock.bases {
            let reference: crate::oci::reference::Reference = base.name.parse()?;
            let digest: crate::oci::digest::Digest = base.digest.parse()?;
            builder.realise_base(&reference, &digest)?;
            printer.status(format!(
                "stored for offline builds: base image {} ({}) at {}",
                base.name, base.platform, base.digest
            ));
        }
    }
    let text = lockfile::render(&locked.lock);
    let changed = std::fs::read_to_string(&lock_path).ok().as_deref() != Some(text.as_str());
    if changed {
        crate::output::write_atomic(&lock_path, text.as_bytes())?;
    }
    store.add_pins_root(&lock_path)?;
    if args.gomod2nix {
        let entries = locked.lock.gomod2nix_entries(&wants.go_mod);
        let path = root.join(GOMOD2NIX_FILE);
        if wants.source == PinOrigin::Gomod2nix {
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
    if wants.vendor.is_some() {
        printer.status(format!(
            "{} {} ({} modules from go.sum, {} of them vendored: taken from {} and go.sum as they are, none fetched)",
            if changed { "wrote" } else { "up to date:" },
            lock_path.display(),
            locked.lock.modules.len(),
            wants.vendored_count(),
            lock::wants::MODULES_TXT,
        ));
    } else {
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
    }
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
                    "vendored": module.vendored,
                    "origin": module.origin.map(|origin| origin.as_str()),
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
