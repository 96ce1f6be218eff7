//! `kiln cache`: signing keys for the shared build cache, and pushing outputs to it.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use super::Printer;
use super::style::format_bytes;
use crate::cache::key::SecretKey;
use crate::cache::{Cache, Pushed, read_secret_key};
use crate::store::{Store, StoreName};

const CACHE_AFTER_HELP: &str = "\
A shared build cache is a repository of any OCI registry holding store outputs, each signed.
Configure it per machine:

  KILN_CACHE                  caches asked in order, comma-separated: oci://HOST[:PORT]/REPOSITORY
  KILN_CACHE_TRUSTED_KEYS     public keys NAME:BASE64, space-separated; only entries one of
                              them signed are used
  KILN_CACHE_SECRET_KEY_FILE  when set, builds sign what they build and push it to the first
                              cache
  KILN_CACHE_TIMEOUT          seconds a silent cache may keep kiln waiting before it is
                              taken for down (default 30)

With KILN_CACHE set, `kiln build` (and run, load, push…) asks the caches for each output
before building it; a verified hit is published into the store as if built here, without
running Go. A refused entry (unsigned, untrusted key, bad signature, truncated, wrong
content) is named, and built. A cache that is unreachable, refuses the credentials, fails
with 5xx, times out or drops a download is reported once and not asked again in that run.
Credentials and HTTPS as for `kiln push`.";

#[derive(Debug, Args)]
#[command(after_help = CACHE_AFTER_HELP)]
pub struct CacheArgs {
    #[command(subcommand)]
    command: CacheCommand,
}

#[derive(Debug, Subcommand)]
enum CacheCommand {
    /// Signing keys (ed25519, in Nix's formats).
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Sign outputs already in the store and push them to the first cache of KILN_CACHE.
    #[command(after_help = "\
TARGET is a `result` link or a store path (default: ./result). Needs KILN_CACHE and
KILN_CACHE_SECRET_KEY_FILE. An output the cache has (its tag exists) is not sent again; of
the others, blobs the registry has are skipped (HEAD first). Prints STORE-NAME REF@DIGEST
for each output sent. Only the outputs named are pushed: an image holds its programs, so
pushing an image is enough to substitute it.")]
    Push {
        /// `result` links or store paths.
        #[arg(value_name = "TARGET")]
        targets: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Make a key pair: the secret key into FILE (mode 0600, never overwritten), the public
    /// key `NAME:BASE64` on stdout.
    #[command(after_help = "\
The file holds NAME:BASE64(seed || public key), as `nix key generate-secret` writes it; the
public key is what `nix key convert-secret-to-public` prints. Give the public key to every
machine that pulls (KILN_CACHE_TRUSTED_KEYS), the file only to machines that push
(KILN_CACHE_SECRET_KEY_FILE). Name keys after who signs and a version, so one can be
replaced without distrusting the other: ci.example.com-1.

Example:
  kiln cache key generate --name ci.example.com-1 --secret-key-file /secrets/kiln-cache.key")]
    Generate {
        /// The key's name, recorded with every signature.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// Where to write the secret key (must not exist).
        #[arg(long, value_name = "FILE")]
        secret_key_file: PathBuf,
    },
    /// Print the public key `NAME:BASE64` of a secret key file.
    Public {
        #[arg(long, value_name = "FILE")]
        secret_key_file: PathBuf,
    },
}

pub fn run(args: CacheArgs, printer: &Printer) -> Result<()> {
    match args.command {
        CacheCommand::Key {
            command:
                KeyCommand::Generate {
                    name,
                    secret_key_file,
                },
        } => generate(&name, &secret_key_file),
        CacheCommand::Key {
            command: KeyCommand::Public { secret_key_file },
        } => {
            let key = read_secret_key(&secret_key_file)?;
            println!("{}", key.public());
            Ok(())
        }
        CacheCommand::Push { targets } => push(targets, printer),
    }
}

fn generate(name: &str, file: &Path) -> Result<()> {
    let key = SecretKey::generate(name)?;
    let mut output = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .with_context(|| {
            if file.exists() {
                format!(
                    "{} exists already; kiln never overwrites a key",
                    file.display()
                )
            } else {
                format!("cannot create {}", file.display())
            }
        })?;
    output
        .write_all(format!("{}\n", key.to_file_text()).as_bytes())
        .and_then(|()| output.sync_all())
        .with_context(|| format!("cannot write {}", file.display()))?;
    println!("{}", key.public());
    Ok(())
}

fn push(targets: Vec<PathBuf>, printer: &Printer) -> Result<()> {
    let targets = if targets.is_empty() {
        vec![PathBuf::from("result")]
    } else {
        targets
    };
    let Some(cache) = Cache::from_env(Box::new(printer.clone()))? else {
        bail!("KILN_CACHE is not set: there is no cache to push to");
    };
    if !cache.can_push() {
        bail!("KILN_CACHE_SECRET_KEY_FILE is not set: kiln pushes only what it can sign");
    }
    let store = Store::open()?;
    let _guard = store.build_guard(|| printer.status("waiting for `kiln gc` to finish"))?;
    let store_dir = std::fs::canonicalize(store.store_dir())?;
    let location = cache
        .push_location()
        .map(ToString::to_string)
        .unwrap_or_default();
    for target in &targets {
        let resolved = std::fs::canonicalize(target)
            .with_context(|| format!("cannot read {}", target.display()))?;
        let name = resolved
            .strip_prefix(&store_dir)
            .ok()
            .and_then(|rest| rest.components().next())
            .and_then(|first| StoreName::parse(&first.as_os_str().to_string_lossy()))
            .filter(|name| store.contains(name))
            .ok_or_else(|| crate::cache::CacheError::NotInStore(target.clone()))?;
        match cache
            .push_output(&store, &name)
            .with_context(|| format!("cannot push {} to {location}", name.basename()))?
        {
            Pushed::Present => printer.status(format!("{}: {location} has it", name.basename())),
            Pushed::Uploaded { bytes, digest } => {
                printer.status(format!(
                    "{}: sent {} to {location}",
                    name.basename(),
                    format_bytes(bytes)
                ));
                println!(
                    "{} {}:{}@{digest}",
                    name.basename(),
                    location.trim_start_matches("oci://"),
                    crate::cache::tag(&name)
                );
            }
        }
    }
    Ok(())
}
