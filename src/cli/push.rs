//! `kiln push` and `kiln copy`: images to and from registries, layouts and archives.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use clap::Args;

use super::Printer;
use super::style::format_bytes;
use super::target::image_archive;
use crate::oci::archive::ArchiveKind;
use crate::oci::compression::Compression;
use crate::oci::reference::{Reference, is_tag};
use crate::oci::spec::{Descriptor, Platform, annotation};
use crate::registry::client::{ClientOptions, Registry};
use crate::registry::push::{
    BlobOutcome, PushProgress, PushReport, PushRequest, ReferrerReport, ReferrersListing, Silent,
    push, push_referrer,
};
use crate::transport::{
    BlobSource, ImageGraph, Location, PlatformPick, compress, walk, write_archive, write_layout,
};

const PUSH_AFTER_HELP: &str = "\
IMAGE is an image target of the project (NAME, .#NAME or PATH#NAME; built first if needed) or
an image archive or OCI layout (such as `result`); with only REF given, the project's only
image. REF is registry/repository[:tag] (Docker Hub short names work: `team/app:1`); --tag
adds more tags in the same repository. Blobs the registry has are not sent again; blobs from
another repository of the same registry are mounted. Prints REF@DIGEST for each tag.

kiln keeps an image's own layers uncompressed in the store (as `docker save` does), and
compresses them here, as the project's `compression` says (gzip by default; --compression
overrides). Compression is pinned, so the pushed digest is the same from every machine; the
config, and so the image ID and the diff_ids, is the one `kiln build` made. Compressed layers
are kept by the tar they compress, so an unchanged layer is compressed once, not per push.

Referrers stored beside the image (its SBOM) follow the image: by digest, listed through the
registry's referrers API, or where a registry has none, in the referrers index at tag
sha256-<hex of the image manifest> (the distribution spec's referrers tag schema).

Credentials come from `docker login` / `podman login`: ~/.docker/config.json (auths,
credsStore, credHelpers), $DOCKER_CONFIG, podman's auth.json, REGISTRY_AUTH_FILE. HTTPS is
required except for localhost and 127.0.0.0/8, or with --insecure.

Examples:
  kiln push ghcr.io/me/app:1.0
  kiln push .#container localhost:5000/app:1.0 --tag latest
  kiln push result registry.example/team/app:v2";

/// The two positionals as the usage line reads them. clap cannot declare an optional
/// positional before a required one, so the arguments are parsed as FIRST [SECOND] and listed
/// here by hand, where they agree with the usage line.
const PUSH_HELP_TEMPLATE: &str = "\
{about-with-newline}
{usage-heading} {usage}

Arguments:
  [IMAGE]  The image to push: a target, an image archive or an OCI layout [default: the
           project's only image]
  <REF>    Where to push: registry/repository[:tag]

{all-args}{after-help}";

#[derive(Debug, Args)]
#[command(
    after_help = PUSH_AFTER_HELP,
    override_usage = "kiln push [OPTIONS] [IMAGE] <REF>",
    help_template = PUSH_HELP_TEMPLATE
)]
pub struct PushArgs {
    /// IMAGE, or REF when given alone (listed in the help template).
    #[arg(value_name = "IMAGE", hide = true)]
    first: String,

    /// REF, when IMAGE is given (listed in the help template).
    #[arg(value_name = "REF", hide = true)]
    second: Option<String>,

    #[command(flatten)]
    registry: RegistryArgs,
}

/// Options shared by every command that talks to registries.
#[derive(Debug, Args, Clone)]
pub struct RegistryArgs {
    /// More tags for the same repository.
    #[arg(short = 't', long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,

    /// Allow plain HTTP and unverified TLS for registries that are not on loopback.
    #[arg(long)]
    pub insecure: bool,

    /// Blobs sent at once.
    #[arg(short = 'j', long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub jobs: u16,

    /// Print what was pushed as JSON on stdout.
    #[arg(long)]
    pub json: bool,

    /// How uncompressed layers are compressed before they are sent (layers already
    /// compressed go as they are) [default: what the image asks for (kiln's images: the
    /// project's `compression`, gzip unless set), else none].
    #[arg(long, value_name = "gzip|zstd|none")]
    pub compression: Option<Compression>,
}

pub fn run(args: PushArgs, printer: &Printer) -> Result<()> {
    let (image, reference) = match &args.second {
        None => (None, &args.first),
        Some(reference) => (Some(args.first.as_str()), reference),
    };
    let reference: Reference = reference
        .strip_prefix("docker://")
        .unwrap_or(reference)
        .parse()?;
    let path = match image {
        Some(text) if Path::new(text).is_dir() => {
            if let Some(error) = super::target::not_an_image(Path::new(text), "push") {
                return Err(error.into());
            }
            Path::new(text).to_owned()
        }
        other => image_archive(other, "push", printer)?,
    };
    push_path(&path, &reference, &args.registry, printer)
}

/// Push the image at `path` (an archive or layout) to `reference` and the extra tags.
pub fn push_path(
    path: &Path,
    reference: &Reference,
    options: &RegistryArgs,
    printer: &Printer,
) -> Result<()> {
    let opened = crate::transport::open_local(path, path.display().to_string(), None)?;
    push_graph(
        opened.source.as_ref(),
        &opened.graph,
        &opened.referrers,
        Some(path),
        reference,
        options,
        printer,
    )
}

fn tags_of(reference: &Reference, extra: &[String]) -> Result<Vec<String>> {
    let mut tags = Vec::new();
    if let Some(tag) = &reference.tag {
        tags.push(tag.clone());
    } else if reference.digest.is_none() {
        tags.push("latest".to_owned());
    }
    for tag in extra {
        if !is_tag(tag) {
            bail!("`{tag}` is not a valid tag (letters, digits, `_`, `.` and `-`, at most 128)");
        }
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
    Ok(tags)
}

/// Push the image `graph` (read from `source`, at the local `origin` if it is local) to
/// `reference` and the extra tags, its uncompressed layers compressed first as `--compression`
/// or the image itself asks (`transport::compress`).
fn push_graph(
    source: &dyn BlobSource,
    graph: &ImageGraph,
    referrers: &[ImageGraph],
    origin: Option<&Path>,
    reference: &Reference,
    options: &RegistryArgs,
    printer: &Printer,
) -> Result<()> {
    let compression = match options.compression {
        Some(compression) => Some(compression),
        None => compress::requested_compression(graph, &source.describe())?,
    };
    let Some(compression) = compression
        .filter(|compression| *compression != Compression::None)
        .filter(|_| compress::has_plain_layers(graph))
    else {
        return send_graph(source, graph, referrers, reference, options, printer);
    };
    let store = crate::store::Store::open()?;
    let _guard = store.build_guard(|| {
        printer.status("waiting for `kiln gc` to finish with the store");
    })?;
    let image = origin.and_then(|path| store.output_at(path));
    let status = |message: &str| printer.status(message);
    let cache = store.layer_cache(image, &status);
    let compressed = compress::compress_layers(source, graph, referrers, compression, &cache)
        .with_context(|| format!("cannot compress the layers of {}", source.describe()))?;
    let layers = compressed.compressed + compressed.reused;
    printer.status(format!(
        "{layers} layer{} in {compression} ({} to {}): {} compressed now{}",
        if layers == 1 { "" } else { "s" },
        format_bytes(compressed.plain_bytes),
        format_bytes(compressed.compressed_bytes),
        compressed.compressed,
        match compressed.reused {
            0 => String::new(),
            reused => format!(", {reused} kept from an earlier push, not compressed again"),
        }
    ));
    send_graph(
        &compressed.source,
        &compressed.graph,
        &compressed.referrers,
        reference,
        options,
        printer,
    )
}

/// Push `graph` as it is.
fn send_graph(
    source: &dyn BlobSource,
    graph: &ImageGraph,
    referrers: &[ImageGraph],
    reference: &Reference,
    options: &RegistryArgs,
    printer: &Printer,
) -> Result<()> {
    if let Some(digest) = reference.digest
        && digest != graph.root.digest
    {
        bail!(
            "{reference} names digest {digest}, but the image is {}",
            graph.root.digest
        );
    }
    let tags = tags_of(reference, &options.tags)?;
    // A base on the same registry: its blobs are mounted rather than sent.
    let mount_from = graph
        .root
        .annotations
        .get(annotation::BASE_NAME)
        .and_then(|name| name.parse::<Reference>().ok())
        .filter(|base| base.registry == reference.registry)
        .map(|base| base.repository);
    let client = ClientOptions::from_env(options.insecure);
    let registry = Registry::connect(&reference.registry, &reference.repository, &client)?;
    printer.status(format!(
        "pushing {} ({} blobs, {}) to {}",
        source.describe(),
        graph.blobs.len(),
        format_bytes(graph.total_blob_bytes()),
        reference.name()
    ));
    let bars = Bars::new(printer);
    let progress: &dyn PushProgress = match &bars {
        Some(bars) => bars,
        None => &Silent,
    };
    let request = PushRequest {
        repository: &reference.repository,
        tags: &tags,
        mount_from: mount_from.as_deref(),
        jobs: usize::from(options.jobs),
        first_retry_delay: client.first_retry_delay,
    };
    let report = push(&registry, source, graph, &request, progress)
        .with_context(|| format!("cannot push to {}", reference.name()))?;
    // Referrers after the image: the subject they name is in the repository by now.
    let mut referrer_reports = Vec::new();
    for referrer in referrers {
        let pushed =
            push_referrer(&registry, source, referrer, &request, progress).with_context(|| {
                format!(
                    "the image is pushed, but not its referrer {}",
                    referrer.root.digest
                )
            })?;
        referrer_reports.push(pushed);
    }
    if let Some(bars) = bars {
        bars.multi.clear().ok();
    }
    print_report(&report, printer);
    for referrer in &referrer_reports {
        print_referrer(referrer, printer);
    }
    let digest = graph.root.digest;
    let pushed: Vec<String> = if tags.is_empty() {
        vec![format!("{}@{digest}", reference.name())]
    } else {
        tags.iter()
            .map(|tag| format!("{}:{tag}@{digest}", reference.name()))
            .collect()
    };
    let mut stdout = std::io::stdout().lock();
    if options.json {
        serde_json::to_writer_pretty(
            &mut stdout,
            &serde_json::json!({
                "digest": digest.to_string(),
                "mediaType": graph.root.media_type,
                "references": pushed,
                "blobs": {
                    "uploaded": report.uploaded.len(),
                    "mounted": report.mounted.len(),
                    "present": report.present.len(),
                    "bytesUploaded": report.bytes_uploaded,
                },
                "referrers": referrer_reports.iter().map(referrer_json).collect::<Vec<_>>(),
            }),
        )?;
        writeln!(stdout)?;
    } else {
        for line in pushed {
            writeln!(stdout, "{line}")?;
        }
    }
    Ok(())
}

fn print_report(report: &PushReport, printer: &Printer) {
    printer.status(format!(
        "{} blobs uploaded ({}), {} mounted, {} already there",
        report.uploaded.len(),
        format_bytes(report.bytes_uploaded),
        report.mounted.len(),
        report.present.len()
    ));
}

fn print_referrer(referrer: &ReferrerReport, printer: &Printer) {
    let listing = match &referrer.listing {
        ReferrersListing::Api => "listed by the registry's referrers API".to_owned(),
        ReferrersListing::TagAdded(tag) => format!("added to the referrers index at tag {tag}"),
        ReferrersListing::TagListed(tag) => {
            format!("already in the referrers index at tag {tag}")
        }
    };
    let uploaded = referrer.blobs.uploaded.len();
    printer.status(format!(
        "referrer {} ({}) of {}: {uploaded} blob{} uploaded, {listing}",
        referrer.digest,
        referrer.artifact_type,
        referrer.subject,
        if uploaded == 1 { "" } else { "s" }
    ));
}

/// A referrer in `--json`: `listing` is `api`, `tag-added` or `tag-listed`, with the tag.
fn referrer_json(referrer: &ReferrerReport) -> serde_json::Value {
    let (listing, tag) = match &referrer.listing {
        ReferrersListing::Api => ("api", None),
        ReferrersListing::TagAdded(tag) => ("tag-added", Some(tag)),
        ReferrersListing::TagListed(tag) => ("tag-listed", Some(tag)),
    };
    serde_json::json!({
        "digest": referrer.digest.to_string(),
        "artifactType": referrer.artifact_type,
        "subject": referrer.subject.to_string(),
        "listing": listing,
        "tag": tag,
        "blobsUploaded": referrer.blobs.uploaded.len(),
    })
}

/// Progress bars for blobs of 1 MiB and more, when stderr is a terminal.
struct Bars {
    multi: indicatif::MultiProgress,
    bars: Mutex<HashMap<crate::oci::digest::Digest, indicatif::ProgressBar>>,
}

impl Bars {
    fn new(printer: &Printer) -> Option<Self> {
        if !super::progress_allowed(printer) {
            return None;
        }
        Some(Bars {
            multi: indicatif::MultiProgress::with_draw_target(
                indicatif::ProgressDrawTarget::stderr(),
            ),
            bars: Mutex::new(HashMap::new()),
        })
    }
}

impl PushProgress for Bars {
    fn started(&self, blob: &Descriptor) {
        if blob.size < 1 << 20 {
            return;
        }
        let bar = self.multi.add(indicatif::ProgressBar::new(blob.size));
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(blob.digest.hex()[..12].to_owned());
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(blob.digest, bar);
        }
    }

    fn advanced(&self, blob: &Descriptor, sent: u64) {
        if let Ok(bars) = self.bars.lock()
            && let Some(bar) = bars.get(&blob.digest)
        {
            bar.set_position(sent);
        }
    }

    fn finished(&self, blob: &Descriptor, _outcome: BlobOutcome) {
        if let Ok(mut bars) = self.bars.lock()
            && let Some(bar) = bars.remove(&blob.digest)
        {
            bar.finish_and_clear();
        }
    }
}

/// For an index, the graph of its image for this machine's platform.
fn one_platform(source: &dyn BlobSource, graph: &ImageGraph) -> Result<Option<ImageGraph>> {
    let host = Platform::host();
    match graph.pick_platform(&source.describe(), &host)? {
        PlatformPick::Image => Ok(None),
        PlatformPick::Picked { entry, .. } => Ok(Some(walk(source, *entry, graph.names.clone())?)),
        PlatformPick::Missing { .. } => bail!(
            "{} is an index without a {host} image, and a docker-archive holds one platform",
            source.describe()
        ),
    }
}

const COPY_AFTER_HELP: &str = "\
Locations, as skopeo names them:
  docker-archive:PATH   an image tar as `docker save` writes it (kiln's `result` is one)
  oci:DIR[:REF]         an OCI layout folder; REF picks or names an image in it
  oci-archive:PATH      an OCI layout in a tar
  docker://REF          a registry (credentials as for `kiln push`)

Manifests and blobs are copied byte for byte, so the image keeps its digest (a docker-archive
of the older form has no manifest; kiln writes the one it implies). Into a registry, the
uncompressed layers of a kiln image are compressed first, as `kiln push` does (--compression
none sends them as they are). A multi-platform index is
copied whole, except into a docker-archive, which gets this machine's platform. Archives are written
whole or not at all; a layout gains the image beside those it holds. The SBOM kept beside an
image in a layout or archive goes along: to a registry as a referrer (as `kiln push` sends it),
into a layout or archive stored beside the image.

Examples:
  kiln copy docker-archive:result oci:layout:app
  kiln copy docker://localhost:5000/app:1 oci-archive:app.tar
  kiln copy oci:layout:app docker://ghcr.io/me/app:1";

#[derive(Debug, Args)]
#[command(after_help = COPY_AFTER_HELP)]
pub struct CopyArgs {
    /// Where the image is.
    #[arg(value_name = "SOURCE")]
    source: Location,
    /// Where it goes.
    #[arg(value_name = "DESTINATION")]
    destination: Location,

    #[command(flatten)]
    registry: RegistryArgs,
}

pub fn copy(args: CopyArgs, printer: &Printer) -> Result<()> {
    let client = ClientOptions::from_env(args.registry.insecure);
    // Referrers (SBOMs) travel from a layout or archive: to a registry as referrers, into a
    // layout or archive stored beside the image; a registry's own referrers are not copied.
    let crate::transport::OpenedImage {
        source,
        graph,
        referrers,
    } = crate::transport::open(&args.source, &client)?;
    // The name the image carries into an archive: the destination's, else the source's.
    let source_name = || -> Option<Reference> {
        match &args.source {
            Location::Docker(reference) => Some(Reference {
                digest: None,
                ..reference.clone()
            }),
            _ => graph
                .names
                .references
                .first()
                .and_then(|name| name.parse().ok()),
        }
    };
    match &args.destination {
        Location::Docker(reference) => {
            let origin = match &args.source {
                Location::DockerArchive(path)
                | Location::OciArchive(path)
                | Location::Oci(path, _) => Some(path.as_path()),
                Location::Docker(_) => None,
            };
            push_graph(
                source.as_ref(),
                &graph,
                &referrers,
                origin,
                reference,
                &args.registry,
                printer,
            )?;
            return Ok(());
        }
        Location::Oci(path, ref_name) => {
            let entry = match ref_name {
                Some(ref_name) => graph.layout_entry(None, Some(ref_name.clone())),
                None => graph.layout_entry(source_name(), None),
            };
            write_layout(
                source.as_ref(),
                &graph.with_referrers(&referrers),
                path,
                entry,
            )?;
        }
        Location::OciArchive(path) => {
            let entry = graph.layout_entry(source_name(), None);
            let graph = graph.with_referrers(&referrers);
            write_archive(source.as_ref(), &graph, path, ArchiveKind::Oci, entry)?;
        }
        Location::DockerArchive(path) => {
            // `docker load` takes images, not indexes: one platform's, this machine's, as
            // skopeo does.
            let graph = match one_platform(source.as_ref(), &graph)? {
                Some(platform_graph) => platform_graph,
                None => graph.clone(),
            };
            let entry = graph.layout_entry(source_name(), None);
            // The SBOM of the platform taken, none of the others.
            let graph = graph.with_referrers(&referrers);
            write_archive(source.as_ref(), &graph, path, ArchiveKind::Docker, entry)?;
        }
    }
    printer.status(format!(
        "copied {} ({} blobs, {}) to {}",
        args.source,
        graph.blobs.len(),
        format_bytes(graph.total_blob_bytes()),
        args.destination
    ));
    writeln!(std::io::stdout(), "{}", graph.root.digest)?;
    Ok(())
}
