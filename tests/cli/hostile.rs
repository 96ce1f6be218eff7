//! The hostile-input corpus (tests/hostile/, see its README): every case is run through the
//! real `kiln` binary in a sandbox of its own, and must give a clear error (exit code, an
//! `error:` line holding the expected words), never a panic, a hang or a signal, and must
//! write nothing outside the folders the command owns. All cases run (or those that
//! `KILN_HOSTILE_CASE`, a glob over `kind/name`, picks: see [`CaseFilter`]); every failure is
//! listed at the end.

mod formats;
mod image;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use sha2::Digest as _;

use crate::harness::TestDir;
use formats::{ZipEntry, ZipMethod};
use image::{Fill, ImageSpec};

/// Longer than any case needs (the bombs take a few seconds): reaching it is a hang.
const TIMEOUT: Duration = Duration::from_secs(30);

/// How deep the sandbox sits in the test folder: a path climbing out of the sandbox with
/// up to this many `..` lands where the snapshot sees it.
const SANDBOX: &str = "up1/up2/up3/up4/up5/sandbox";

/// The module every lock case fetches.
const MODULE: &str = "example.com/hostile";
const VERSION: &str = "v1.0.0";
/// The release the stub `go` claims to be, and the go.mod's toolchain line.
const GO_RELEASE: &str = "go1.22.0";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    KilnToml,
    GoMod,
    GoSum,
    KilnLock,
    ModuleZip,
    ImageArchive,
    OciLayout,
}

impl Kind {
    const ALL: [Kind; 7] = [
        Kind::KilnToml,
        Kind::GoMod,
        Kind::GoSum,
        Kind::KilnLock,
        Kind::ModuleZip,
        Kind::ImageArchive,
        Kind::OciLayout,
    ];

    fn folder(self) -> &'static str {
        match self {
            Kind::KilnToml => "kiln-toml",
            Kind::GoMod => "go-mod",
            Kind::GoSum => "go-sum",
            Kind::KilnLock => "kiln-lock",
            Kind::ModuleZip => "module-zip",
            Kind::ImageArchive => "image-archive",
            Kind::OciLayout => "oci-layout",
        }
    }

    /// Where a text input goes, relative to the sandbox.
    fn input_path(self) -> Option<&'static str> {
        match self {
            Kind::KilnToml => Some("app/kiln.toml"),
            Kind::GoMod => Some("app/go.mod"),
            Kind::GoSum => Some("app/go.sum"),
            Kind::KilnLock => Some("app/kiln.lock"),
            _ => None,
        }
    }

    fn default_args(self) -> Vec<String> {
        let args: &[&str] = match self {
            Kind::KilnToml | Kind::GoMod => &["build"],
            Kind::GoSum | Kind::ModuleZip => &["lock"],
            Kind::KilnLock => &["lock", "--check"],
            Kind::ImageArchive => &["inspect", "image.tar"],
            Kind::OciLayout => &["inspect", "layout"],
        };
        args.iter().map(|arg| (*arg).to_owned()).collect()
    }

    fn in_project(self) -> bool {
        !matches!(self, Kind::ImageArchive | Kind::OciLayout)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    case: Vec<Case>,
}

/// Text repeated into a template or input: `${NAME}` becomes `text` `times` times.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Repeat {
    text: String,
    times: usize,
}

/// A file placed in the sandbox before the run (relative to the sandbox).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Setup {
    path: String,
    text: Option<String>,
    symlink: Option<String>,
    #[serde(default)]
    dir: bool,
    #[serde(default)]
    fifo: bool,
}

/// One more run of the same input.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Run {
    args: Vec<String>,
    #[serde(default)]
    stderr: Vec<String>,
    exit: Option<i32>,
}

/// A zip entry of a module-zip case.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ZipEntrySpec {
    /// `${prefix}` is `example.com/hostile@v1.0.0/`.
    name: Option<String>,
    name_hex: Option<String>,
    text: Option<String>,
    fill: Option<Fill>,
    /// `deflate` (default) or `store`.
    method: Option<String>,
    /// The size the headers declare, as a decimal string (up to u64::MAX).
    size: Option<String>,
    /// A CRC-32 written instead of the data's.
    crc: Option<u32>,
    /// The Unix mode, file type bits included (0o120777 is a symlink).
    mode: Option<u32>,
    extra_hex: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    /// What the case attacks, in a line.
    about: String,
    /// The exit code (default 1).
    exit: Option<i32>,
    /// Substrings stderr must hold.
    #[serde(default)]
    stderr: Vec<String>,
    /// Text kinds: the input file, beside cases.toml.
    input: Option<String>,
    #[serde(default)]
    repeat: BTreeMap<String, Repeat>,
    #[serde(default)]
    setup: Vec<Setup>,
    /// The command instead of the kind's.
    args: Option<Vec<String>>,
    /// More runs of the same input.
    #[serde(default)]
    also: Vec<Run>,

    /// Module zips: the entries (default: an honest module).
    entry: Option<Vec<ZipEntrySpec>>,
    /// The `.mod` the proxy serves (default: the module's go.mod).
    #[serde(rename = "mod")]
    mod_text: Option<String>,
    /// A `.mod` of this many bytes of this byte.
    mod_fill: Option<Fill>,
    /// The zip as raw bytes (hex) instead of entries.
    zip_hex: Option<String>,
    /// Keep only the first bytes of the zip.
    zip_truncate: Option<usize>,
    /// go.sum's hashes: `honest` (the honest module's, default) or `match` (the hashes of
    /// the entries and the .mod as served, so they pass verification if kiln's checks let
    /// them).
    sum: Option<String>,

    /// Images: the archive or layout.
    image: Option<ImageSpec>,
}

/// A file system entry as the snapshot records it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    Folder,
    File(String),
    Link(PathBuf),
    Other,
}

/// Every entry under `root`, by path relative to it; file contents hashed.
fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    fn walk(root: &Path, folder: &Path, nodes: &mut BTreeMap<String, Node>) {
        let Ok(entries) = std::fs::read_dir(folder) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let Ok(metadata) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let node = if metadata.is_dir() {
                Node::Folder
            } else if metadata.is_symlink() {
                Node::Link(std::fs::read_link(&path).unwrap_or_default())
            } else if metadata.is_file() {
                let content = std::fs::read(&path).unwrap_or_default();
                Node::File(hex::encode(sha2::Sha256::digest(&content)))
            } else {
                Node::Other
            };
            let is_folder = node == Node::Folder;
            nodes.insert(relative, node);
            if is_folder {
                walk(root, &path, nodes);
            }
        }
    }
    let mut nodes = BTreeMap::new();
    walk(root, root, &mut nodes);
    nodes
}

/// What changed between two snapshots, outside the `allowed` folders.
fn changes(
    before: &BTreeMap<String, Node>,
    after: &BTreeMap<String, Node>,
    allowed: &[String],
) -> Vec<String> {
    let is_allowed = |path: &str| {
        allowed
            .iter()
            .any(|folder| path == folder || path.starts_with(&format!("{folder}/")))
    };
    let mut changed = Vec::new();
    for (path, node) in after {
        if is_allowed(path) {
            continue;
        }
        match before.get(path) {
            None => changed.push(format!("created {path}")),
            Some(old) if old != node => changed.push(format!("changed {path}")),
            _ => {}
        }
    }
    for path in before.keys() {
        if !is_allowed(path) && !after.contains_key(path) {
            changed.push(format!("removed {path}"));
        }
    }
    changed
}

/// The store's outputs and the kiln home's temporaries, which a failed command must leave as
/// they were (and empty).
fn store_state(sandbox: &Path) -> (Vec<String>, Vec<String>) {
    let list = |folder: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(folder)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    (
        list(&sandbox.join("kiln-home/v1/store")),
        list(&sandbox.join("kiln-home/v1/tmp")),
    )
}

fn expand(text: &str, repeats: &BTreeMap<String, String>) -> String {
    let mut text = text.to_owned();
    for (name, value) in repeats {
        text = text.replace(&format!("${{{name}}}"), value);
    }
    text
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A stand-in for `go`: `kiln lock` asks only for the release name; anything more is an
/// error a case that expects one can see.
fn go_stub() -> String {
    format!(
        "#!/bin/sh\nif [ \"$1\" = env ] && [ \"$2\" = GOVERSION ] && [ $# -eq 2 ]; then echo {GO_RELEASE}; exit 0; fi\necho \"hostile-test stub go: cannot run go $*\" >&2\nexit 3\n"
    )
}

const KILN_TOML: &str = "schema = 1\n\n[packages.default]\nname = \"app\"\n\n[images.container]\npackage = \"default\"\n";
const MAIN_GO: &str = "package main\n\nfunc main() {}\n";

fn go_mod(requires: bool) -> String {
    let mut text = format!("module example.com/app\n\ngo 1.21\n\ntoolchain {GO_RELEASE}\n");
    if requires {
        text.push_str(&format!("\nrequire {MODULE} {VERSION}\n"));
    }
    text
}

/// The module's honest files: (path in the module, content).
fn honest_files() -> Vec<(String, Vec<u8>)> {
    vec![
        ("go.mod".to_owned(), honest_mod().into_bytes()),
        (
            "hostile.go".to_owned(),
            b"package hostile\n\nfunc Hello() string { return \"hello\" }\n".to_vec(),
        ),
    ]
}

fn honest_mod() -> String {
    format!("module {MODULE}\n\ngo 1.21\n")
}

/// go.sum's `h1:` of files named `module@version/path`.
fn h1_of(files: &[(Vec<u8>, Vec<u8>)]) -> String {
    kiln::gomod::dirhash::hash1(files.iter().map(|(name, content)| {
        (
            String::from_utf8_lossy(name).into_owned(),
            sha2::Sha256::digest(content).into(),
        )
    }))
}

fn prefix() -> String {
    format!("{MODULE}@{VERSION}/")
}

/// The zip entries of a module-zip case.
fn zip_entries(case: &Case, repeats: &BTreeMap<String, String>) -> Vec<ZipEntry> {
    let Some(specs) = &case.entry else {
        return honest_files()
            .into_iter()
            .map(|(path, data)| ZipEntry {
                name: format!("{}{path}", prefix()).into_bytes(),
                data,
                fill: None,
                method: ZipMethod::Deflated,
                declared_size: None,
                crc: None,
                unix_mode: None,
                extra: Vec::new(),
            })
            .collect();
    };
    specs
        .iter()
        .map(|spec| {
            let name = match (&spec.name, &spec.name_hex) {
                (Some(name), None) => {
                    expand(&name.replace("${prefix}", &prefix()), repeats).into_bytes()
                }
                (None, Some(raw)) => hex::decode(raw).expect("name_hex in the corpus is hex"),
                _ => panic!("{}: a zip entry has `name` or `name_hex`", case.name),
            };
            ZipEntry {
                name,
                data: spec
                    .text
                    .as_deref()
                    .map(|text| expand(text, repeats).into_bytes())
                    .unwrap_or_default(),
                fill: spec.fill.as_ref().map(|fill| (fill.byte, fill.size)),
                method: match spec.method.as_deref() {
                    None | Some("deflate") => ZipMethod::Deflated,
                    Some("store") => ZipMethod::Stored,
                    Some(other) => panic!("{}: unknown zip method `{other}`", case.name),
                },
                declared_size: spec.size.as_ref().map(|size| size.parse().unwrap()),
                crc: spec.crc,
                unix_mode: spec.mode,
                extra: spec
                    .extra_hex
                    .as_ref()
                    .map(|raw| hex::decode(raw).unwrap())
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// The GOPROXY folder serving the case's module, and the go.sum pinning it.
fn write_module(case: &Case, repeats: &BTreeMap<String, String>, sandbox: &Path) {
    let at_v = sandbox.join(format!("proxy/{MODULE}/@v"));
    let mod_bytes = match (&case.mod_text, &case.mod_fill) {
        (Some(text), _) => expand(text, repeats).into_bytes(),
        (None, Some(fill)) => vec![fill.byte; fill.size as usize],
        (None, None) => honest_mod().into_bytes(),
    };
    let entries = zip_entries(case, repeats);
    let mut zip = match &case.zip_hex {
        Some(raw) => hex::decode(raw).expect("zip_hex in the corpus is hex"),
        None => formats::zip(&entries),
    };
    if let Some(length) = case.zip_truncate {
        zip.truncate(length);
    }
    write(&at_v.join(format!("{VERSION}.mod")), &mod_bytes);
    write(&at_v.join(format!("{VERSION}.zip")), &zip);
    write(&at_v.join("list"), format!("{VERSION}\n"));
    let zip_h1 = match case.sum.as_deref() {
        None | Some("honest") => {
            let files: Vec<(Vec<u8>, Vec<u8>)> = honest_files()
                .into_iter()
                .map(|(path, content)| (format!("{}{path}", prefix()).into_bytes(), content))
                .collect();
            h1_of(&files)
        }
        Some("match") => {
            let files: Vec<(Vec<u8>, Vec<u8>)> = entries
                .iter()
                .filter(|entry| entry.fill.is_none())
                .map(|entry| (entry.name.clone(), entry.data.clone()))
                .collect();
            h1_of(&files)
        }
        Some(other) => panic!("{}: unknown sum `{other}`", case.name),
    };
    let mod_h1 = match case.sum.as_deref() {
        Some("match") => kiln::gomod::dirhash::hash_go_mod(&mod_bytes),
        _ => kiln::gomod::dirhash::hash_go_mod(honest_mod().as_bytes()),
    };
    write(
        &sandbox.join("app/go.sum"),
        format!("{MODULE} {VERSION} {zip_h1}\n{MODULE} {VERSION}/go.mod {mod_h1}\n"),
    );
}

/// An honest go.sum for the module (the kiln-lock cases' project).
fn honest_go_sum() -> String {
    let files: Vec<(Vec<u8>, Vec<u8>)> = honest_files()
        .into_iter()
        .map(|(path, content)| (format!("{}{path}", prefix()).into_bytes(), content))
        .collect();
    format!(
        "{MODULE} {VERSION} {}\n{MODULE} {VERSION}/go.mod {}\n",
        h1_of(&files),
        kiln::gomod::dirhash::hash_go_mod(honest_mod().as_bytes())
    )
}

/// Lay out the sandbox for `case`.
fn repeats(case: &Case) -> BTreeMap<String, String> {
    case.repeat
        .iter()
        .map(|(name, repeat)| (name.clone(), repeat.text.repeat(repeat.times)))
        .collect()
}

fn prepare(kind: Kind, case: &Case, corpus: &Path, sandbox: &Path) {
    let repeats = repeats(case);
    std::fs::create_dir_all(sandbox.join("home")).unwrap();
    std::fs::create_dir_all(sandbox.join("proxy")).unwrap();
    write(&sandbox.join("tools/go"), go_stub());
    std::fs::set_permissions(
        sandbox.join("tools/go"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    if kind.in_project() {
        let requires = !matches!(kind, Kind::KilnToml | Kind::GoMod);
        write(&sandbox.join("app/kiln.toml"), KILN_TOML);
        write(&sandbox.join("app/main.go"), MAIN_GO);
        write(&sandbox.join("app/go.mod"), go_mod(requires));
        if kind == Kind::KilnLock {
            write(&sandbox.join("app/go.sum"), honest_go_sum());
        }
    }
    match (kind.input_path(), &case.input) {
        (Some(target), Some(input)) => {
            let bytes = std::fs::read(corpus.join(input))
                .unwrap_or_else(|error| panic!("{}: cannot read {input}: {error}", case.name));
            let bytes = if repeats.is_empty() {
                bytes
            } else {
                let text = String::from_utf8(bytes).expect("an input with repeats is UTF-8");
                expand(&text, &repeats).into_bytes()
            };
            write(&sandbox.join(target), bytes);
        }
        (Some(target), None) => assert!(
            case.setup.iter().any(|setup| setup.path == target),
            "{}: a {} case needs an `input`, or a `setup` entry at {target}",
            case.name,
            kind.folder()
        ),
        (None, Some(_)) => panic!("{}: `input` is for text kinds", case.name),
        (None, None) => {}
    }
    match kind {
        Kind::ModuleZip => write_module(case, &repeats, sandbox),
        Kind::ImageArchive => image::write_archive(
            case.image
                .as_ref()
                .expect("an image-archive case has an `image`"),
            &repeats,
            &sandbox.join("image.tar"),
        ),
        Kind::OciLayout => image::write_layout(
            case.image
                .as_ref()
                .expect("an oci-layout case has an `image`"),
            &repeats,
            &sandbox.join("layout"),
        ),
        _ => assert!(
            case.image.is_none() && case.entry.is_none(),
            "{}: `image` and `entry` are for binary kinds",
            case.name
        ),
    }
    for setup in &case.setup {
        let path = sandbox.join(&setup.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // A setup entry replaces what the kind put there (go.mod as a named pipe).
        if std::fs::symlink_metadata(&path).is_ok_and(|metadata| !metadata.is_dir()) {
            std::fs::remove_file(&path).unwrap();
        }
        if let Some(text) = &setup.text {
            std::fs::write(&path, expand(text, &repeats)).unwrap();
        } else if let Some(target) = &setup.symlink {
            std::os::unix::fs::symlink(target, &path).unwrap();
        } else if setup.dir {
            std::fs::create_dir_all(&path).unwrap();
        } else if setup.fifo {
            let status = Command::new("mkfifo").arg(&path).status().unwrap();
            assert!(status.success());
        } else {
            panic!(
                "{}: a setup entry has text, symlink, dir or fifo",
                case.name
            );
        }
    }
}

/// The outcome of one run.
struct Outcome {
    code: Option<i32>,
    stderr: String,
    timed_out: bool,
}

fn run_kiln(kind: Kind, sandbox: &Path, logs: &Path, args: &[String]) -> Outcome {
    let stdout_path = logs.join("stdout");
    let stderr_path = logs.join("stderr");
    let mut command = Command::new(env!("CARGO_BIN_EXE_kiln"));
    command
        .args(args)
        .current_dir(if kind.in_project() {
            sandbox.join("app")
        } else {
            sandbox.to_owned()
        })
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", sandbox.join("home"))
        .env("KILN_HOME", sandbox.join("kiln-home"))
        .env("KILN_GO", sandbox.join("tools/go"))
        .env(
            "GOPROXY",
            format!("file://{}", sandbox.join("proxy").display()),
        )
        .env("TMPDIR", logs)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap());
    let mut child = command.spawn().unwrap();
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            timed_out = true;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Outcome {
        code: status.code(),
        stderr: String::from_utf8_lossy(&std::fs::read(&stderr_path).unwrap()).into_owned(),
        timed_out,
    }
}

/// Run `case` and say what is wrong with how kiln handled it, if anything.
fn try_case(kind: Kind, case: &Case, corpus: &Path) -> Vec<String> {
    let dir = TestDir::new();
    let logs = tempfile::Builder::new()
        .prefix("kiln-hostile-logs-")
        .tempdir()
        .unwrap();
    let sandbox = dir.join(SANDBOX);
    prepare(kind, case, corpus, &sandbox);

    let mut runs = vec![Run {
        args: case.args.clone().unwrap_or_else(|| kind.default_args()),
        stderr: case.stderr.clone(),
        exit: case.exit,
    }];
    runs.extend(case.also.iter().cloned());
    // Expected messages may name the case's blobs (`${layer.digest}`).
    if let Some(image) = &case.image {
        let repeats = repeats(case);
        for run in &mut runs {
            for needle in &mut run.stderr {
                *needle = image::render(image, &repeats, needle);
            }
        }
    }

    let mut problems = Vec::new();
    for run in &runs {
        let label = run.args.join(" ");
        let before = snapshot(dir.path());
        let store_before = store_state(&sandbox);
        let outcome = run_kiln(kind, &sandbox, logs.path(), &run.args);
        if std::env::var_os("KILN_HOSTILE_SHOW").is_some() {
            eprintln!(
                "{}/{} `kiln {label}` -> {:?}\n{}",
                kind.folder(),
                case.name,
                outcome.code,
                outcome.stderr.trim_end()
            );
        }
        let after = snapshot(dir.path());
        let mut problem = |text: String| problems.push(format!("`kiln {label}`: {text}"));
        let stderr = &outcome.stderr;
        if outcome.timed_out {
            problem(format!("did not finish within {TIMEOUT:?}"));
        }
        let expected = run.exit.unwrap_or(1);
        match outcome.code {
            None => problem(format!("killed by a signal; stderr:\n{stderr}")),
            Some(code) if code != expected => problem(format!(
                "exit code {code}, expected {expected}; stderr:\n{stderr}"
            )),
            Some(_) => {}
        }
        if expected != 0 && !stderr.lines().any(|line| line.starts_with("error: ")) {
            problem(format!("no `error:` line; stderr:\n{stderr}"));
        }
        // What kiln quotes from a hostile input must not reach the terminal raw.
        if let Some(raw) = stderr.chars().find(|character| {
            (character.is_control() && *character != '\n' && *character != '\t')
                || matches!(character, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
        }) {
            problem(format!("stderr holds the raw character {raw:?}:\n{stderr}"));
        }
        for marker in ["panicked", "RUST_BACKTRACE", "stack overflow"] {
            if stderr.contains(marker) {
                problem(format!("stderr holds `{marker}`:\n{stderr}"));
            }
        }
        for needle in &run.stderr {
            if !stderr.contains(needle.as_str()) {
                problem(format!("stderr lacks `{needle}`:\n{stderr}"));
            }
        }
        let allowed = vec![format!("{SANDBOX}/kiln-home")];
        for change in changes(&before, &after, &allowed) {
            problem(format!("wrote outside what it owns: {change}"));
        }
        for path in after.keys() {
            if path.contains("escaped") && !before.contains_key(path) {
                problem(format!("a traversal target exists: {path}"));
            }
        }
        if expected != 0 {
            let (store, temporaries) = store_state(&sandbox);
            if store != store_before.0 {
                problem(format!(
                    "the store changed: {:?} -> {store:?}",
                    store_before.0
                ));
            }
            if !temporaries.is_empty() {
                problem(format!(
                    "temporaries left in kiln-home/v1/tmp: {temporaries:?}"
                ));
            }
        }
        // Names that escaping paths in the corpus aim at outside any sandbox.
        for absolute in ["/tmp/kiln-hostile-escaped", "/kiln-hostile-escaped"] {
            if Path::new(absolute).exists() {
                problem(format!("{absolute} exists"));
            }
        }
    }
    problems
}

/// `KILN_HOSTILE_CASE`, when set: a glob matched against each case's `kind/name` and against
/// its name alone, so `go-mod/bom` runs one case, `bom` the case of that name in every kind,
/// `'go-mod/*'` one kind and `'*traversal*'` every case so named (`*` stops at `/`).
struct CaseFilter {
    pattern: String,
    glob: globset::GlobMatcher,
}

impl CaseFilter {
    fn from_env() -> Option<Self> {
        let pattern = std::env::var("KILN_HOSTILE_CASE")
            .ok()
            .filter(|pattern| !pattern.is_empty())?;
        let glob = globset::GlobBuilder::new(&pattern)
            .literal_separator(true)
            .build()
            .unwrap_or_else(|error| panic!("KILN_HOSTILE_CASE={pattern:?}: {error}"))
            .compile_matcher();
        Some(CaseFilter { pattern, glob })
    }

    fn keeps(&self, id: &str, name: &str) -> bool {
        self.glob.is_match(id) || self.glob.is_match(name)
    }

    /// The failure when nothing matched, naming the closest cases.
    fn matched_nothing(&self, ids: &[String]) -> String {
        let mut closest: Vec<(f64, &String)> = ids
            .iter()
            .map(|id| (strsim::jaro_winkler(&self.pattern, id), id))
            .collect();
        closest.sort_by(|a, b| b.0.total_cmp(&a.0));
        let closest: Vec<&str> = closest.iter().take(3).map(|(_, id)| id.as_str()).collect();
        format!(
            "KILN_HOSTILE_CASE={:?} matches no case of the corpus (a glob over kind/name or over a name, e.g. go-mod/bom, bom, 'go-mod/*', '*traversal*'); closest: {}",
            self.pattern,
            closest.join(", ")
        )
    }
}

#[test]
fn hostile_inputs_give_clear_errors_and_write_nothing() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile");
    let filter = CaseFilter::from_env();
    let mut tried = 0;
    let mut failures = Vec::new();
    let mut per_kind = Vec::new();
    let mut every_id = Vec::new();
    let mut ran = Vec::new();
    for kind in Kind::ALL {
        let corpus = root.join(kind.folder());
        let text = std::fs::read_to_string(corpus.join("cases.toml"))
            .unwrap_or_else(|error| panic!("{}/cases.toml: {error}", kind.folder()));
        let file: CaseFile = toml::from_str(&text)
            .unwrap_or_else(|error| panic!("{}/cases.toml: {error}", kind.folder()));
        // Every input file belongs to exactly one case, and case names are unique.
        let mut inputs: Vec<String> = std::fs::read_dir(&corpus)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name != "cases.toml")
            .collect();
        inputs.sort();
        let mut used: Vec<String> = file
            .case
            .iter()
            .filter_map(|case| case.input.clone())
            .collect();
        used.sort();
        assert_eq!(
            inputs,
            used,
            "{}: every input file is one case's `input`",
            kind.folder()
        );
        let mut names: Vec<&str> = file.case.iter().map(|case| case.name.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(
            names.len(),
            file.case.len(),
            "{}: case names repeat",
            kind.folder()
        );

        let mut count = 0;
        for case in &file.case {
            let id = format!("{}/{}", kind.folder(), case.name);
            every_id.push(id.clone());
            if filter
                .as_ref()
                .is_some_and(|filter| !filter.keeps(&id, &case.name))
            {
                continue;
            }
            assert!(!case.about.trim().is_empty(), "{id}: say what it attacks");
            count += 1;
            ran.push(id.clone());
            let started = Instant::now();
            let problems = try_case(kind, case, &corpus);
            let took = started.elapsed();
            if took > Duration::from_secs(5) {
                eprintln!("slow hostile case {id}: {took:?}");
            }
            if !problems.is_empty() {
                failures.push(format!(
                    "{id} ({}):\n  {}",
                    case.about,
                    problems.join("\n  ")
                ));
            }
        }
        tried += count;
        per_kind.push(format!("{} {count}", kind.folder()));
    }
    if let Some(filter) = &filter {
        assert!(tried > 0, "{}", filter.matched_nothing(&every_id));
    }
    let handled = tried - failures.len();
    println!("hostile inputs: {tried} tried, {handled} handled");
    println!("  by kind: {}", per_kind.join(", "));
    if let Some(filter) = &filter {
        println!(
            "  KILN_HOSTILE_CASE={:?} chose: {}",
            filter.pattern,
            ran.join(", ")
        );
    }
    assert!(
        failures.is_empty(),
        "hostile inputs: {tried} tried, {handled} handled; not handled:\n\n{}",
        failures.join("\n\n")
    );
}
