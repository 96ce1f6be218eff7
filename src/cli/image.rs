//! `kiln image`: build an image from files, without a project.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use serde::Serialize;

use super::Printer;
use super::style::format_bytes;
use crate::oci::archive::{ArchiveKind, ArchiveWriter};
use crate::oci::compression::Compression;
use crate::oci::container;
use crate::oci::elf;
use crate::oci::image::{BuiltImage, ImageRequest, build_image};
use crate::oci::layout::LayoutWriter;
use crate::oci::reference::{Reference, is_tag};
use crate::oci::spec::{ContainerConfig, Empty, Platform};
use crate::oci::timestamp::{Created, source_date_epoch};
use crate::oci::tree::{FileTree, ImagePath, Node};
use crate::output::AtomicFile;

const AFTER_HELP: &str = "\
Examples:
  kiln image --name example --tag 0.1 --add ./example:/bin/example --cmd /bin/example -o example.tar
  docker load < example.tar && docker run --rm example:0.1

  # A command with arguments: repeat --cmd, one argument each, or give a JSON array.
  kiln image --name web --add ./web:/bin/web --cmd /bin/web --cmd --port --cmd 8080 -o web.tar
  kiln image --name web --add ./web:/bin/web --cmd '[\"/bin/web\",\"--port\",\"8080\"]' -o web.tar

All --add sources go into one layer. The output is the same bytes on every machine for the same
files and flags: entries sorted, uid/gid 0, modes 0755/0644/0777, mtime SOURCE_DATE_EPOCH or
1970-01-01T00:00:01Z, identical files stored once (hard links), and the platform taken from the
executables' ELF headers rather than from this machine.";

#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct ImageArgs {
    /// Image name: `example`, `team/app`, `registry.example.com/team/app` (may end in `:TAG`).
    #[arg(long, value_name = "NAME")]
    name: String,

    /// Image tag [default: latest].
    #[arg(long, value_name = "TAG")]
    tag: Option<String>,

    /// Put SRC (a file, or a folder with everything in it) at DEST, an absolute path in the
    /// image. A DEST ending in `/` puts a file into that folder. Symlinks inside folders stay
    /// symlinks. Repeat for more.
    #[arg(long = "add", value_name = "SRC:DEST", required = true)]
    add: Vec<String>,

    /// One argument of the default command (Cmd). Repeat for each further argument, or give
    /// the whole command as one JSON array, e.g. '["/bin/app","--port","80"]'.
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    cmd: Vec<String>,

    /// One argument of the entrypoint, as for --cmd.
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    entrypoint: Vec<String>,

    /// An environment variable for the container. Repeat for more.
    #[arg(long, value_name = "KEY=VALUE")]
    env: Vec<String>,

    /// The container's working folder (absolute).
    #[arg(long, value_name = "DIR")]
    workdir: Option<String>,

    /// The user the container runs as: `NAME`, `UID`, `UID:GID`.
    #[arg(long, value_name = "USER")]
    user: Option<String>,

    /// A label on the image config. Repeat for more.
    #[arg(long, value_name = "KEY=VALUE")]
    label: Vec<String>,

    /// A port the container listens on: `8080`, `53/udp`, `8000-8010/tcp`. Repeat for more.
    #[arg(long, value_name = "PORT[/PROTO]")]
    expose: Vec<String>,

    /// The image's `created` time: `epoch` (SOURCE_DATE_EPOCH, else 1970-01-01T00:00:01Z),
    /// `now` (not reproducible), or an RFC 3339 time.
    #[arg(long, value_name = "WHEN", default_value = "epoch")]
    created: Created,

    /// Layer compression.
    #[arg(long, value_enum, default_value_t = CompressionArg::Gzip)]
    compression: CompressionArg,

    /// Output format: one tar for `docker load`/`podman load` that is also an OCI layout, an
    /// OCI layout folder, or an OCI layout as one tar.
    #[arg(long, value_enum, default_value_t = Format::DockerArchive)]
    format: Format,

    /// The platform the image declares, OS/ARCH[/VARIANT] [default: the one its ELF
    /// executables are built for, else linux/amd64; never this machine's].
    #[arg(long, value_name = "PLATFORM")]
    platform: Option<Platform>,

    /// Where to write the image; `-` streams an archive to stdout.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    output: PathBuf,

    /// Print what was built as JSON on stdout (instead of the manifest digest).
    #[arg(long)]
    json: bool,

    /// Start from this image (REF in a registry): its layers first, its config with ours
    /// merged in. The tag is resolved to the platform's manifest digest now, and printed.
    #[arg(long, value_name = "REF")]
    base: Option<Reference>,

    /// With --base: allow plain HTTP and unverified TLS for a registry not on loopback.
    #[arg(long, requires = "base")]
    insecure: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum CompressionArg {
    Gzip,
    Zstd,
    None,
}

impl From<CompressionArg> for Compression {
    fn from(value: CompressionArg) -> Self {
        match value {
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Zstd => Compression::Zstd,
            CompressionArg::None => Compression::None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Format {
    DockerArchive,
    Oci,
    OciArchive,
}

/// `--cmd`/`--entrypoint` values: one argument each, or a single JSON array.
fn command_line(flag: &str, values: Vec<String>, printer: &Printer) -> Result<Option<Vec<String>>> {
    if values.is_empty() {
        return Ok(None);
    }
    if let [only] = values.as_slice()
        && only.trim_start().starts_with('[')
    {
        let parsed: Vec<String> = serde_json::from_str(only).map_err(|error| {
            crate::diagnostic::Hinted::new(
                format!("--{flag} `{only}` starts like a JSON array but is not one"),
                format!(
                    "write a JSON array of strings, e.g. --{flag} '[\"/bin/app\",\"--verbose\"]'"
                ),
            )
            .caused_by(error)
        })?;
        return Ok(Some(parsed));
    }
    if values[0].contains(' ') && values.len() == 1 {
        printer.warn(format!(
            "--{flag} `{}` is one argument containing spaces; to pass several arguments, repeat --{flag} or give a JSON array",
            values[0]
        ));
    }
    Ok(Some(values))
}

fn key_values(flag: &str, values: &[String]) -> Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for value in values {
        let Some((key, item)) = value.split_once('=') else {
            bail!("--{flag} `{value}` is not KEY=VALUE");
        };
        if key.is_empty() || key.contains('\0') || item.contains('\0') {
            bail!("--{flag} `{value}` needs a non-empty KEY without NUL bytes");
        }
        if map.insert(key.to_owned(), item.to_owned()).is_some() {
            bail!("--{flag} sets `{key}` twice");
        }
    }
    Ok(map)
}

fn exposed_ports(values: &[String]) -> Result<BTreeMap<String, Empty>> {
    let mut ports = BTreeMap::new();
    for value in values {
        let keys = container::exposed_ports(value)
            .map_err(|reason| anyhow::anyhow!("--expose `{value}`: {reason}"))?;
        ports.extend(keys.into_iter().map(|key| (key, Empty)));
    }
    Ok(ports)
}

/// Split `SRC:DEST` at the first `:` followed by `/` (DEST is absolute, SRC rarely holds
/// `:/`).
fn split_add(value: &str) -> Result<(PathBuf, String)> {
    match value.find(":/") {
        Some(index) if index > 0 => Ok((
            PathBuf::from(&value[..index]),
            value[index + 1..].to_owned(),
        )),
        _ => match value.rsplit_once(':') {
            Some((source, destination)) if !source.is_empty() => {
                bail!(crate::diagnostic::Hinted::new(
                    format!("--add `{value}`: destination `{destination}` is not an absolute path"),
                    format!(
                        "image paths start with `/`, e.g. --add {source}:/bin/{}",
                        Path::new(source)
                            .file_name()
                            .map(|name| name.to_string_lossy())
                            .unwrap_or_default()
                    )
                ))
            }
            _ => bail!(crate::diagnostic::Hinted::new(
                format!("--add `{value}` is not SRC:DEST"),
                "e.g. --add ./example:/bin/example"
            )),
        },
    }
}

fn reference(args: &ImageArgs) -> Result<Reference> {
    let mut reference: Reference = args
        .name
        .parse()
        .with_context(|| format!("--name `{}`", args.name))?;
    if reference.digest.is_some() {
        bail!(
            "--name `{}` names a digest; an image being built gets its digest from its content",
            args.name
        );
    }
    match (&reference.tag, &args.tag) {
        (Some(_), Some(tag)) => bail!(
            "the tag is given twice: in --name `{}` and as --tag `{tag}`",
            args.name
        ),
        (None, Some(tag)) if !is_tag(tag) => bail!(
            "--tag `{tag}` is not a valid tag (letters, digits, `_`, `.` and `-`, at most 128, not starting with `.` or `-`)"
        ),
        (None, Some(tag)) => reference.tag = Some(tag.clone()),
        (None, None) => reference.tag = Some("latest".to_owned()),
        (Some(_), None) => {}
    }
    Ok(reference)
}

fn file_tree(adds: &[String]) -> Result<FileTree> {
    let mut tree = FileTree::new();
    // Where each --add landed: two sources at one path is an error even for folders, which
    // would otherwise merge (a folder inside another's folder is fine).
    let mut landed: BTreeMap<ImagePath, &str> = BTreeMap::new();
    for add in adds {
        let (source, destination) = split_add(add)?;
        let path = tree
            .add(&source, &destination)
            .with_context(|| format!("cannot add {}", source.display()))?;
        if let Some(previous) = landed.insert(path.clone(), add) {
            bail!("--add `{previous}` and --add `{add}` both put something at {path}");
        }
    }
    Ok(tree)
}

/// The platform the image declares when --platform is not given: the one every ELF
/// executable among its files is built for. Never the host's, so the same files give the
/// same image on any machine.
fn infer_platform(tree: &FileTree, printer: &Printer) -> Result<Platform> {
    let mut found: BTreeMap<String, (Platform, PathBuf)> = BTreeMap::new();
    for (_, node) in tree.entries() {
        if let Node::File {
            attributes, source, ..
        } = node
            && attributes.mode & 0o111 != 0
            && let Some(platform) = elf::platform_of(source)
                .with_context(|| format!("cannot read {}", source.display()))?
        {
            found
                .entry(platform.to_string())
                .or_insert_with(|| (platform, source.clone()));
        }
    }
    let mut platforms = found.into_values();
    match (platforms.next(), platforms.len()) {
        (None, _) => {
            printer.status(format!(
                "note: no ELF executable among the files; the image declares {FALLBACK_PLATFORM} (choose with --platform)"
            ));
            Ok(FALLBACK_PLATFORM.parse()?)
        }
        (Some((platform, _)), 0) => Ok(platform),
        (Some(first), _) => {
            let listed: Vec<String> = std::iter::once(first)
                .chain(platforms)
                .map(|(platform, example)| format!("{platform} ({})", example.display()))
                .collect();
            bail!(crate::diagnostic::Hinted::new(
                format!(
                    "the executables are built for several platforms: {}",
                    listed.join(", ")
                ),
                "an image has one platform; pass --platform, or build the files for one"
            ))
        }
    }
}

/// What an image without ELF executables declares.
const FALLBACK_PLATFORM: &str = "linux/amd64";

#[derive(Serialize)]
struct LayerJson {
    media_type: &'static str,
    digest: String,
    size: u64,
    diff_id: String,
    uncompressed_size: u64,
    entries: usize,
    hard_links: usize,
}

#[derive(Serialize)]
struct ImageJson<'a> {
    reference: String,
    name: String,
    tag: Option<&'a str>,
    manifest_digest: String,
    config_digest: String,
    platform: String,
    format: Format,
    output: String,
    layers: Vec<LayerJson>,
}

pub fn run(args: ImageArgs, printer: &Printer) -> Result<()> {
    let reference = reference(&args)?;
    let to_stdout = args.output.as_os_str() == "-";
    if to_stdout && args.format == Format::Oci {
        bail!(crate::diagnostic::Hinted::new(
            "--format oci writes a folder and cannot go to stdout",
            "use --format oci-archive for one stream"
        ));
    }
    if to_stdout && args.json {
        bail!("--json prints to stdout, where -o - is already writing the image");
    }
    if to_stdout && std::io::stdout().is_terminal() {
        bail!(crate::diagnostic::Hinted::new(
            "refusing to write an image archive to a terminal",
            "redirect stdout, e.g. `-o - | docker load`, or give a file with -o"
        ));
    }
    if let Some(workdir) = &args.workdir {
        container::check_workdir(workdir)
            .map_err(|reason| anyhow::anyhow!("--workdir `{workdir}` is {reason}"))?;
    }
    if let Some(user) = &args.user {
        container::check_user(user)
            .map_err(|reason| anyhow::anyhow!("--user `{user}`: {reason}"))?;
    }
    // Validated as KEY=VALUE without repeats; kept in the user's order.
    key_values("env", &args.env)?;
    let labels = key_values("label", &args.label)?;
    let container = ContainerConfig {
        user: args.user.clone().unwrap_or_default(),
        exposed_ports: exposed_ports(&args.expose)?,
        env: args.env.clone(),
        entrypoint: command_line("entrypoint", args.entrypoint.clone(), printer)?,
        cmd: command_line("cmd", args.cmd.clone(), printer)?,
        working_dir: args.workdir.clone().unwrap_or_default(),
        labels,
        ..ContainerConfig::default()
    };
    let tree = file_tree(&args.add)?;
    let epoch = source_date_epoch()?;
    let request = ImageRequest {
        reference: reference.clone(),
        platform: match &args.platform {
            Some(platform) => platform.clone(),
            None => infer_platform(&tree, printer)?,
        },
        created: args.created.resolve(epoch),
        mtime: epoch as u64,
        compression: args.compression.into(),
        container,
        layers: vec![crate::oci::image::RequestLayer {
            tree,
            created_by: "kiln image".to_owned(),
            mtime: None,
        }],
        annotations: Default::default(),
        base: None,
    };
    let mut request = request;
    if let Some(base) = &args.base {
        let options = crate::registry::client::ClientOptions::from_env(args.insecure);
        let remote = crate::transport::RemoteSource::connect(base, &options)
            .with_context(|| format!("cannot resolve the base image {base}"))?;
        let digest = remote
            .resolve_platform(base, &request.platform)
            .with_context(|| format!("cannot resolve the base image {base}"))?
            .digest;
        printer.status(format!("base {base} ({}) is {digest}", request.platform));
        let status = |message: &str| printer.status(message);
        // Holds the gc lock while the base is read: a `kiln gc` beside this waits.
        let session = crate::session::Session::open(&status, Box::new(printer.clone()))?;
        request.base = Some(session.builder().realise_base(base, &digest)?);
    }

    let total = request
        .layers
        .iter()
        .map(|layer| layer.tree.content_bytes())
        .sum();
    let progress = progress_bar(printer, total);
    let mut on_progress = |bytes| {
        if let Some(bar) = &progress {
            bar.inc(bytes);
        }
    };
    let output_display = if to_stdout {
        "stdout".to_owned()
    } else {
        args.output.display().to_string()
    };
    let image = write_image(&request, &args, to_stdout, &mut on_progress)
        .with_context(|| format!("cannot write the image to {output_display}"))?;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }

    let compressed: u64 = image.layers.iter().map(|layer| layer.size).sum();
    let links: usize = image.layers.iter().map(|layer| layer.hard_links).sum();
    printer.status(format!(
        "Wrote {} to {output_display} ({}): {} {}, {} compressed{}",
        reference.familiar_tagged(),
        format_name(args.format),
        image.manifest.layers.len(),
        if image.manifest.layers.len() == 1 {
            "layer"
        } else {
            "layers"
        },
        format_bytes(compressed),
        if links > 0 {
            format!(", {links} identical files stored once")
        } else {
            String::new()
        },
    ));
    if args.json {
        let json = ImageJson {
            reference: reference.familiar_tagged(),
            name: reference.name(),
            tag: reference.tag.as_deref(),
            manifest_digest: image.manifest_descriptor.digest.to_string(),
            config_digest: image.config_descriptor.digest.to_string(),
            platform: request.platform.to_string(),
            format: args.format,
            output: output_display,
            layers: image
                .layers
                .iter()
                .map(|layer| LayerJson {
                    media_type: layer.compression.oci_layer_media_type(),
                    digest: layer.digest.to_string(),
                    size: layer.size,
                    diff_id: layer.diff_id.to_string(),
                    uncompressed_size: layer.uncompressed_size,
                    entries: layer.entries,
                    hard_links: layer.hard_links,
                })
                .collect(),
        };
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut stdout, &json)?;
        writeln!(stdout)?;
    } else if !to_stdout {
        writeln!(std::io::stdout(), "{}", image.manifest_descriptor.digest)?;
    }
    Ok(())
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::DockerArchive => "docker-archive",
        Format::Oci => "OCI layout",
        Format::OciArchive => "OCI archive",
    }
}

/// Where the image goes.
enum Destination {
    /// A file or folder path, written beside itself and renamed into place.
    Path(PathBuf),
    /// A stream: stdout, or an existing path that is not a regular file or folder (a device
    /// such as /dev/null, a FIFO). Renaming over those would replace the device itself.
    Stream(Box<dyn Write>),
}

fn destination(output: &Path, to_stdout: bool) -> Result<Destination> {
    if to_stdout {
        let stdout = std::io::BufWriter::with_capacity(256 * 1024, std::io::stdout());
        return Ok(Destination::Stream(Box::new(stdout)));
    }
    match std::fs::metadata(output) {
        Ok(metadata) if !metadata.is_file() && !metadata.is_dir() => {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(output)
                .with_context(|| format!("cannot open {}", output.display()))?;
            Ok(Destination::Stream(Box::new(
                std::io::BufWriter::with_capacity(256 * 1024, file),
            )))
        }
        // A symlink is written through: the file or folder it names is replaced, not the link.
        Ok(_) if output.is_symlink() => {
            Ok(Destination::Path(output.canonicalize().with_context(
                || format!("cannot resolve {}", output.display()),
            )?))
        }
        _ => Ok(Destination::Path(output.to_owned())),
    }
}

fn write_image(
    request: &ImageRequest,
    args: &ImageArgs,
    to_stdout: bool,
    on_progress: &mut dyn FnMut(u64),
) -> Result<BuiltImage> {
    let mtime = request.mtime;
    let kind = match args.format {
        Format::DockerArchive => ArchiveKind::Docker,
        Format::OciArchive => ArchiveKind::Oci,
        Format::Oci => {
            let Destination::Path(output) = destination(&args.output, false)? else {
                bail!(
                    "--format oci writes a folder, and {} is not one",
                    args.output.display()
                );
            };
            let mut layout = LayoutWriter::open(&output)?;
            let image = build_image(request, &mut layout, on_progress)?;
            layout.finish(&[image.layout_entry()])?;
            return Ok(image);
        }
    };
    match destination(&args.output, to_stdout)? {
        Destination::Stream(stream) => {
            let mut archive = ArchiveWriter::to_stream(stream, kind, mtime)?;
            let image = build_image(request, &mut archive, on_progress)?;
            archive.finish(&[image.layout_entry()])?;
            Ok(image)
        }
        Destination::Path(output) => {
            let mut output = AtomicFile::create(&output)?;
            let mut archive = ArchiveWriter::to_file(output.file().try_clone()?, kind, mtime)?;
            let image = build_image(request, &mut archive, on_progress)?;
            archive.finish(&[image.layout_entry()])?;
            output.commit()?;
            Ok(image)
        }
    }
}

fn progress_bar(printer: &Printer, total: u64) -> Option<indicatif::ProgressBar> {
    // Small images finish before a bar would be readable.
    if !super::progress_allowed(printer) || total < 32 << 20 {
        return None;
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "packing [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    Some(bar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_values_split_at_the_destination() {
        let (source, destination) = split_add("./a:b:/bin/x").unwrap();
        assert_eq!(
            (source.to_str().unwrap(), destination.as_str()),
            ("./a:b", "/bin/x")
        );
        let error = split_add("./example:bin/example").unwrap_err().to_string();
        assert!(
            error.contains("destination `bin/example` is not an absolute path"),
            "{error}"
        );
        assert!(split_add("./example").is_err());
        assert!(split_add(":/x").is_err());
    }

    #[test]
    fn command_lines() {
        let printer = Printer::new(true);
        assert_eq!(command_line("cmd", vec![], &printer).unwrap(), None);
        assert_eq!(
            command_line("cmd", vec!["/bin/example".into()], &printer).unwrap(),
            Some(vec!["/bin/example".to_owned()])
        );
        assert_eq!(
            command_line(
                "cmd",
                vec![r#"["/bin/app", "--port", "80"]"#.into()],
                &printer
            )
            .unwrap(),
            Some(vec![
                "/bin/app".to_owned(),
                "--port".to_owned(),
                "80".to_owned()
            ])
        );
        assert_eq!(
            command_line("cmd", vec!["[]".into()], &printer).unwrap(),
            Some(vec![])
        );
        let error = command_line("cmd", vec!["[oops".into()], &printer).unwrap_err();
        assert!(format!("{error:#}").contains("starts like a JSON array"));
    }
}
