//! `kiln inspect`: what an image holds and what it wastes.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use super::Printer;
use super::style::format_bytes;
use crate::oci::inspect::{ImageReport, inspect};
use crate::oci::source::ImageSource;

const AFTER_HELP: &str = "\
Reads images made by any tool: kiln, `docker save` (before and since Docker 25), `podman save`,
skopeo's docker-archive: and oci-archive: outputs, OCI layout folders, and any of these tars
gzip- or zstd-compressed. Every blob is checked against its digest while it is read.

Waste is content stored more than once (within or across layers) and files a later layer
replaces or deletes; efficiency is 1 - wasted / stored bytes.";

#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct InspectArgs {
    /// An image tar (docker-archive or OCI archive) or an OCI layout folder.
    #[arg(value_name = "IMAGE")]
    image: PathBuf,

    /// List every entry of every layer: mode, uid:gid, size, path, link target.
    #[arg(long)]
    files: bool,

    /// Print the report as JSON (a list with one object per image).
    #[arg(long)]
    json: bool,
}

pub fn run(args: InspectArgs, _printer: &Printer) -> Result<()> {
    let source = ImageSource::open(&args.image)
        .with_context(|| format!("cannot inspect {}", args.image.display()))?;
    let mut reports =
        inspect(&source).with_context(|| format!("cannot inspect {}", args.image.display()))?;
    if !args.files {
        for report in &mut reports {
            for layer in &mut report.layers {
                layer.files.clear();
            }
        }
    }
    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, &reports)?;
        writeln!(stdout)?;
        return Ok(());
    }
    for (number, report) in reports.iter().enumerate() {
        if number > 0 {
            writeln!(stdout)?;
        }
        print_report(&mut stdout, report, args.files)?;
    }
    Ok(())
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
    let labels: Vec<String> = report
        .labels
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    writeln!(out, "labels      {}", list_or_dash(&labels))?;
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
