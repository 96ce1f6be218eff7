//! `kiln inspect`: what an image holds and what it wastes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use super::Printer;
use super::style::format_bytes;
use crate::oci::inspect::{ImageReport, inspect};
use crate::oci::reader::ImageReader;
use crate::oci::reference::Reference;
use crate::registry::client::ClientOptions;
use crate::transport::{Location, write_layout};

const AFTER_HELP: &str = "\
Reads images made by any tool: kiln, `docker save` (before and since Docker 25), `podman save`,
skopeo's docker-archive: and oci-archive: outputs, OCI layout folders, and any of these tars
gzip- or zstd-compressed, and images in a registry (docker://REF, fetched and verified first;
credentials as for `kiln push`). Every blob is checked against its digest while it is read.

Waste is content stored more than once (within or across layers) and files a later layer
replaces or deletes; efficiency is 1 - wasted / stored bytes.";

#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct InspectArgs {
    /// An image tar (docker-archive or OCI archive), an OCI layout folder, or docker://REF.
    #[arg(value_name = "IMAGE")]
    image: String,

    /// With docker://: allow plain HTTP and unverified TLS for a registry not on loopback.
    #[arg(long)]
    insecure: bool,

    /// List every entry of every layer: mode, uid:gid, size, path, link target.
    #[arg(long)]
    files: bool,

    /// Print the report as JSON (a list with one object per image).
    #[arg(long)]
    json: bool,
}

pub fn run(args: InspectArgs, printer: &Printer) -> Result<()> {
    // A registry's image is fetched (every blob verified) into a temporary OCI layout first:
    // the report reads every layer anyway.
    let fetched = match args.image.parse::<Location>() {
        Ok(Location::Docker(reference)) => Some(fetch(&reference, args.insecure, printer)?),
        _ => None,
    };
    let path = match &fetched {
        Some(folder) => folder.path().join("layout"),
        None => PathBuf::from(
            ["docker-archive:", "oci-archive:", "oci:"]
                .iter()
                .find_map(|prefix| args.image.strip_prefix(prefix))
                .unwrap_or(&args.image),
        ),
    };
    if fetched.is_none()
        && let Some(error) = super::target::not_an_image(&path, "inspect")
    {
        return Err(error.into());
    }
    let source =
        ImageReader::open(&path).with_context(|| format!("cannot inspect {}", args.image))?;
    let mut reports = inspect(&source).with_context(|| format!("cannot inspect {}", args.image))?;
    if reports.is_empty() {
        // Said, not printed as an empty report: nothing there is an image.
        bail!(crate::diagnostic::Hinted::new(
            format!("{} holds no image", args.image),
            "its index lists no image manifest (artifacts and documents of other media types are not images)"
        ));
    }
    if !args.files {
        for report in &mut reports {
            for layer in &mut report.layers {
                layer.files.clear();
            }
        }
    }
    let indexes = indexes(&path).with_context(|| format!("cannot inspect {}", args.image))?;
    let mut stdout = std::io::stdout().lock();
    if args.json {
        if indexes.is_empty() {
            serde_json::to_writer_pretty(&mut stdout, &reports)?;
        } else {
            // An object only when there is an index, so single images keep their shape.
            serde_json::to_writer_pretty(
                &mut stdout,
                &serde_json::json!({"indexes": indexes, "images": reports}),
            )?;
        }
        writeln!(stdout)?;
        return Ok(());
    }
    for index in &indexes {
        print_index(&mut stdout, index)?;
        writeln!(stdout)?;
    }
    for (number, report) in reports.iter().enumerate() {
        if number > 0 {
            writeln!(stdout)?;
        }
        print_report(&mut stdout, report, args.files)?;
    }
    Ok(())
}

/// An image index at the top of a layout or archive.
#[derive(serde::Serialize)]
struct IndexReport {
    names: Vec<String>,
    digest: String,
    media_type: String,
    manifests: Vec<IndexEntryReport>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

#[derive(serde::Serialize)]
struct IndexEntryReport {
    platform: Option<String>,
    digest: String,
    media_type: String,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact_type: Option<String>,
}

/// The indexes among the top entries of the image at `path`.
fn indexes(path: &std::path::Path) -> Result<Vec<IndexReport>> {
    use crate::oci::spec::{Index, media_type};
    use crate::transport::{BlobSource, LocalSource};
    let mut source = LocalSource::open(path, path.display().to_string())?;
    let mut reports = Vec::new();
    for (descriptor, names) in source.roots()? {
        if !media_type::is_index(&descriptor.media_type) {
            continue;
        }
        let index: Index = serde_json::from_slice(&source.read_document(&descriptor)?)
            .with_context(|| format!("the image index {} is not valid", descriptor.digest))?;
        reports.push(IndexReport {
            names: names.references.clone(),
            digest: descriptor.digest.to_string(),
            media_type: descriptor.media_type.clone(),
            manifests: index
                .manifests
                .iter()
                .map(|entry| IndexEntryReport {
                    platform: entry.platform.as_ref().map(ToString::to_string),
                    digest: entry.digest.to_string(),
                    media_type: entry.media_type.clone(),
                    size: entry.size,
                    artifact_type: entry.artifact_type.clone(),
                })
                .collect(),
            annotations: index.annotations,
        });
    }
    Ok(reports)
}

fn print_index(out: &mut impl Write, index: &IndexReport) -> std::io::Result<()> {
    writeln!(out, "index       {}", list_or_dash(&index.names))?;
    writeln!(out, "digest      {} ({})", index.digest, index.media_type)?;
    writeln!(out, "platforms   {}", index.manifests.len())?;
    for entry in &index.manifests {
        writeln!(
            out,
            "   {:<14} {} ({} bytes)",
            entry.platform.as_deref().unwrap_or("-"),
            entry.digest,
            entry.size
        )?;
    }
    print_annotations(out, &index.annotations)
}

fn print_annotations(
    out: &mut impl Write,
    annotations: &BTreeMap<String, String>,
) -> std::io::Result<()> {
    if annotations.is_empty() {
        return Ok(());
    }
    writeln!(out, "annotations")?;
    for (name, value) in annotations {
        writeln!(out, "   {name} = {value}")?;
    }
    Ok(())
}

/// Copy `reference` into a new temporary folder's `layout/`.
fn fetch(reference: &Reference, insecure: bool, printer: &Printer) -> Result<tempfile::TempDir> {
    let options = ClientOptions::from_env(insecure);
    let opened = crate::transport::open(&Location::Docker(reference.clone()), &options)?;
    let graph = &opened.graph;
    printer.status(format!(
        "fetching {reference} ({} blobs, {})",
        graph.blobs.len(),
        format_bytes(graph.total_blob_bytes())
    ));
    let folder = tempfile::tempdir().context("cannot make a temporary folder")?;
    let name = Reference {
        digest: None,
        ..reference.clone()
    };
    write_layout(
        opened.source.as_ref(),
        graph,
        &folder.path().join("layout"),
        graph.layout_entry(Some(name), None),
    )
    .with_context(|| format!("cannot fetch {reference}"))?;
    Ok(folder)
}

fn list_or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(", ")
    }
}

fn json_or_dash(items: &Option<Vec<String>>) -> String {
    match items {
        None => "-".to_owned(),
        Some(items) => serde_json::to_string(items).unwrap_or_default(),
    }
}

fn text_or_dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

fn print_report(out: &mut impl Write, report: &ImageReport, files: bool) -> std::io::Result<()> {
    let mut names = report.names.clone();
    names.extend(
        report
            .ref_names
            .iter()
            .map(|name| format!("(ref name) {name}")),
    );
    writeln!(
        out,
        "image       {}",
        if names.is_empty() {
            "(no name)".to_owned()
        } else {
            names.join(", ")
        }
    )?;
    match (&report.manifest_digest, &report.manifest_media_type) {
        (Some(digest), Some(media_type)) => writeln!(out, "manifest    {digest} ({media_type})")?,
        _ => writeln!(
            out,
            "manifest    - (this docker-archive stores no manifest; a push computes one)"
        )?,
    }
    writeln!(out, "config      {}", report.config_digest)?;
    writeln!(out, "platform    {}", report.platform)?;
    writeln!(
        out,
        "created     {}",
        report.created.as_deref().unwrap_or("-")
    )?;
    writeln!(out, "entrypoint  {}", json_or_dash(&report.entrypoint))?;
    writeln!(out, "cmd         {}", json_or_dash(&report.cmd))?;
    writeln!(out, "env         {}", list_or_dash(&report.env))?;
    writeln!(out, "user        {}", text_or_dash(&report.user))?;
    writeln!(out, "workdir     {}", text_or_dash(&report.workdir))?;
    writeln!(out, "ports       {}", list_or_dash(&report.exposed_ports))?;
    writeln!(out, "volumes     {}", list_or_dash(&report.volumes))?;
    let labels: Vec<String> = report
        .labels
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    writeln!(out, "labels      {}", list_or_dash(&labels))?;
    print_annotations(out, &report.annotations)?;
    writeln!(
        out,
        "size        {} ({} bytes), {} compressed",
        format_bytes(report.size),
        report.size,
        format_bytes(report.compressed_size)
    )?;
    writeln!(out, "layers      {}", report.layers.len())?;
    for (index, layer) in report.layers.iter().enumerate() {
        writeln!(out, "  {:>2}  digest   {}", index + 1, layer.digest)?;
        writeln!(out, "      diff_id  {}", layer.diff_id)?;
        writeln!(
            out,
            "      size     {} ({} bytes), {} stored ({})",
            format_bytes(layer.size),
            layer.size,
            format_bytes(layer.compressed_size),
            layer.compression
        )?;
        writeln!(out, "      files    {}", layer.file_count)?;
        if files {
            for file in &layer.files {
                let link = match (&file.link_target, file.kind) {
                    (Some(target), crate::oci::inspect::FileKind::HardLink) => {
                        format!(" link to {target}")
                    }
                    (Some(target), _) => format!(" -> {target}"),
                    (None, _) => String::new(),
                };
                writeln!(
                    out,
                    "        {} {:>5}:{:<5} {:>10} {}{link}",
                    file.mode_string(),
                    file.uid,
                    file.gid,
                    file.size,
                    file.path
                )?;
            }
        }
    }
    let waste = &report.waste;
    writeln!(
        out,
        "efficiency  {:.1}%: {} wasted of {} stored ({} of {} bytes)",
        waste.efficiency * 100.0,
        format_bytes(waste.wasted_bytes),
        format_bytes(waste.stored_bytes),
        waste.wasted_bytes,
        waste.stored_bytes
    )?;
    for group in &waste.duplicates {
        writeln!(
            out,
            "  duplicate {} × {} copies, {} wasted ({})",
            format_bytes(group.size),
            group.copies.len(),
            format_bytes(group.wasted_bytes),
            group.content_digest
        )?;
        for copy in &group.copies {
            writeln!(out, "      layer {} {}", copy.layer, copy.path)?;
        }
    }
    for file in &waste.shadowed {
        writeln!(
            out,
            "  shadowed  {} (layer {}, {}) {} by layer {}",
            file.path,
            file.layer,
            format_bytes(file.size),
            if file.deleted { "deleted" } else { "replaced" },
            file.by_layer
        )?;
    }
    Ok(())
}
