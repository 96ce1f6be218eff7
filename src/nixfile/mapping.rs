//! From a flake's outputs ([`FlakeOutputs`]) to kiln.toml: what each Nix setting becomes,
//! and what is not carried over, with where it was written.
//!
//! - **Packages** (`buildGoApplication`, `buildGoModule`) become `[packages.KEY]` (the
//!   flake's attribute name): `pname` → `name`, `version`, `subPackages` → `main`,
//!   `ldflags`, `tags`, `CGO_ENABLED` (top level or in `env`) → `cgo`, `env` → `env`,
//!   `meta.mainProgram` and the flake's `apps.default` → `program`. `go` (a toolchain) is a
//!   note: go.mod's `toolchain` line pins kiln's. `doCheck` is ignored (kiln runs no tests),
//!   `vendorHash`/`vendorSha256`/`modules` are replaced by kiln.lock, `src`/`pwd` by the
//!   project folder.
//! - **The program's name:** Go names a root main package's program after the module path's
//!   last element and `cmd/x`'s after `x`; kiln names the root one after the package's
//!   `name`. When `pname` differs from what Go builds (the image runs
//!   `${package}/bin/GO_NAME`), kiln.toml's `name` is Go's, and both names are reported.
//! - **Images** (`dockerTools.buildImage`, `buildLayeredImage`, `streamLayeredImage`,
//!   nix2container's `buildImage`) become `[images.KEY]`: `name`, `tag`, `created` (`now`,
//!   Nix's default date → `epoch`, else as written), `copyToRoot`/`contents` (the package,
//!   or a `buildEnv` of it whose `pathsToLink` become `paths`), `config.Cmd`/`Entrypoint`
//!   (`${package}/bin/NAME` → `/bin/NAME`), `Env`, `ExposedPorts`, `Volumes`, `User`,
//!   `WorkingDir`, `Labels`, `maxLayers` → `max_layers`, `architecture` → `platforms`. `cacert`, `tzdata`,
//!   `dockerTools.caCertificates` and `fakeNss` in the contents become `base = "static"`
//!   (kiln's static base has the CA bundle, tzdata, passwd and group), and
//!   `${pkgs.cacert}/etc/ssl/certs/ca-bundle.crt` its bundle's path. A shell (`binSh`,
//!   busybox, bash) has no kiln equivalent. An image defined in its own file (container.nix)
//!   goes to its own kiln file (container.toml), included from kiln.toml.
//! - **Anything else** (`runAsRoot`, `extraCommands`, `fakeRootCommands`, `fromImage`,
//!   `nativeBuildInputs`, a package kiln does not know, …) is listed as not carried
//!   over, with its position; `kiln init --from-nix` then writes nothing unless
//!   `--allow-partial`.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Call, FlakeOutputs, Location, Value};

/// Nix's default `created` for dockerTools images.
const NIX_EPOCH: &str = "1970-01-01T00:00:01Z";

/// The static base's CA bundle (see `static_base`).
const STATIC_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error(
        "the flake's packages hold no Go program built by buildGoApplication or buildGoModule (packages: {})",
        if .0.is_empty() { "none".to_owned() } else { .0.join(", ") }
    )]
    NoGoPackage(Vec<String>),
}

impl crate::diagnostic::Hint for MappingError {
    fn hint(&self) -> Option<String> {
        Some("kiln init --from-nix converts flakes whose packages.default is a gomod2nix buildGoApplication or a buildGoModule; for another project, `kiln init` writes a new kiln.toml".to_owned())
    }
}

/// A flake, converted.
#[derive(Debug, Default)]
pub struct Conversion {
    /// kiln.toml's text.
    pub kiln_toml: String,
    /// Files kiln.toml includes (`container.toml`), name and text.
    pub included: Vec<(String, String)>,
    /// What each Nix setting became, one line each.
    pub mapped: Vec<String>,
    /// What was ignored on purpose, and why.
    pub notes: Vec<String>,
    /// What has no kiln equivalent: `LOCATION: what` (or just `what`).
    pub not_carried: Vec<String>,
}

/// What the project's go.mod says, for the program names.
#[derive(Clone, Debug, Default)]
pub struct GoModule {
    /// The module path (`example.com/hello`).
    pub path: String,
}

/// Convert `outputs` for the project in `folder` (locations are shown relative to it).
pub fn convert(
    outputs: &FlakeOutputs,
    folder: &Path,
    module: Option<&GoModule>,
) -> Result<Conversion, MappingError> {
    let mut conversion = Conversion::default();
    let mut context = Context {
        folder,
        conversion: &mut conversion,
    };
    let go_packages: Vec<(&String, &Call)> = outputs
        .packages
        .iter()
        .filter_map(|(key, value)| {
            let call = value.call()?;
            is_go_build(&call.function).then_some((key, call))
        })
        .collect();
    if go_packages.is_empty() {
        return Err(MappingError::NoGoPackage(
            outputs.packages.keys().cloned().collect(),
        ));
    }
    let mut toml =
        String::from("# Converted from a Nix flake by `kiln init --from-nix`.\nschema = 1\n");
    let mut packages = Vec::new();
    for (key, call) in &go_packages {
        let package = context.package(key, call, outputs, module);
        packages.push(package);
    }
    let mut images = Vec::new();
    for (key, value) in &outputs.packages {
        let Some(call) = value.call() else {
            if !go_packages.iter().any(|(known, _)| known == &key) {
                context.not_carried(
                    None,
                    format!("packages.{key}: {} kiln does not build", value.kind()),
                );
            }
            continue;
        };
        if is_go_build(&call.function) {
            continue;
        }
        if is_image(&call.function) {
            images.push(context.image(key, call, &packages));
        } else {
            context.not_carried(
                first_location(call),
                format!("packages.{key}: `{}` has no kiln equivalent", call.function),
            );
        }
    }
    for other in &outputs.others {
        let text = match other.as_str() {
            "devShells" | "devShell" => format!(
                "{other}: not converted; `kiln shell` opens the package's own environment (its pinned Go, and CC for cgo); tools a dev shell adds (gopls, linters, …) stay yours to install"
            ),
            _ => format!("{other}: not converted (neither the build nor the image depends on it)"),
        };
        context.note(None, text);
    }
    let mut included: BTreeMap<String, String> = BTreeMap::new();
    let mut inline_images = String::new();
    for image in &images {
        match &image.file {
            Some(file) => {
                let entry = included.entry(file.clone()).or_insert_with(|| {
                    "# Converted from a Nix flake by `kiln init --from-nix`; included from kiln.toml.\n"
                        .to_owned()
                });
                entry.push_str(&image.toml);
            }
            None => inline_images.push_str(&image.toml),
        }
    }
    if !included.is_empty() {
        let names: Vec<String> = included.keys().map(|name| quote(name)).collect();
        toml.push_str(&format!("include = [{}]\n", names.join(", ")));
    }
    for package in &packages {
        toml.push_str(&package.toml);
    }
    toml.push_str(&inline_images);
    conversion.kiln_toml = toml;
    conversion.included = included.into_iter().collect();
    Ok(conversion)
}

fn is_go_build(function: &str) -> bool {
    matches!(function, "buildGoApplication" | "buildGoModule")
}

fn is_image(function: &str) -> bool {
    matches!(
        function,
        "dockerTools.buildImage"
            | "dockerTools.buildLayeredImage"
            | "dockerTools.streamLayeredImage"
            | "nix2container.buildImage"
    )
}

fn first_location(call: &Call) -> Option<Location> {
    call.positions.values().min().cloned()
}

struct Context<'a> {
    folder: &'a Path,
    conversion: &'a mut Conversion,
}

/// A package as converted: its kiln key, the `pname` Nix gave it (whose output marker the
/// image's strings hold), the programs it builds.
struct Package {
    key: String,
    pname: String,
    programs: Vec<String>,
    toml: String,
}

struct Image {
    /// The kiln file it goes to (`container.toml`), when Nix had it in its own file.
    file: Option<String>,
    toml: String,
}

impl Context<'_> {
    fn at(&self, location: Option<&Location>) -> String {
        match location {
            Some(location) => format!("{}: ", self.relative(location)),
            None => String::new(),
        }
    }

    fn relative(&self, location: &Location) -> String {
        let file = location
            .file
            .strip_prefix(self.folder)
            .unwrap_or(&location.file);
        format!("{}:{}:{}", file.display(), location.line, location.column)
    }

    fn mapped(&mut self, location: Option<&Location>, text: String) {
        let at = self.at(location);
        self.conversion.mapped.push(format!("{at}{text}"));
    }

    fn note(&mut self, location: Option<&Location>, text: String) {
        let at = self.at(location);
        self.conversion.notes.push(format!("{at}{text}"));
    }

    fn not_carried(&mut self, location: Option<Location>, text: String) {
        let at = self.at(location.as_ref());
        self.conversion.not_carried.push(format!("{at}{text}"));
    }

    fn package(
        &mut self,
        key: &str,
        call: &Call,
        outputs: &FlakeOutputs,
        module: Option<&GoModule>,
    ) -> Package {
        let empty = BTreeMap::new();
        let args = call.args.attrs().unwrap_or(&empty);
        let position = |name: &str| call.positions.get(name).cloned();
        let mut lines: Vec<String> = Vec::new();
        let pname = args
            .get("pname")
            .or_else(|| args.get("name"))
            .and_then(Value::as_str)
            .unwrap_or(key)
            .to_owned();
        let mains: Vec<String> = match args.get("subPackages") {
            Some(Value::List(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(|main| {
                    let main = main.trim_start_matches("./").trim_end_matches('/');
                    if main.is_empty() || main == "." {
                        ".".to_owned()
                    } else {
                        format!("./{main}")
                    }
                })
                .collect(),
            _ => vec![".".to_owned()],
        };
        // What Go names each program: a folder's last element; the root's, the module's.
        let go_root_name = module.map(|module| go_program_name(&module.path));
        let mut name = pname.clone();
        if let Some(go_name) = go_root_name
            .as_ref()
            .filter(|go_name| **go_name != pname && mains.iter().any(|main| main == "."))
        {
            self.mapped(
                        position("pname").as_ref(),
                        format!(
                            "pname = \"{pname}\" is not the program go builds (`{go_name}`, after module {}): kiln names the package `{go_name}`, so its program is bin/{go_name} as in the Nix build",
                            module.map_or("", |module| module.path.as_str())
                        ),
                    );
            name = go_name.clone();
        }
        let programs: Vec<String> = mains
            .iter()
            .map(|main| {
                if main == "." {
                    name.clone()
                } else {
                    main.rsplit('/').next().unwrap_or(main).to_owned()
                }
            })
            .collect();
        lines.push(format!("name = {}", quote(&name)));
        if name == pname {
            self.mapped(
                position("pname").as_ref(),
                format!("pname = \"{pname}\" → [packages.{key}] name"),
            );
        }
        if let Some(version) = args.get("version").and_then(Value::as_str) {
            lines.push(format!("version = {}", quote(version)));
            self.mapped(
                position("version").as_ref(),
                format!("version = \"{version}\" → version"),
            );
        }
        if mains != ["."] {
            lines.push(format!("main = {}", quote_list(&mains)));
            self.mapped(
                position("subPackages").as_ref(),
                format!("subPackages → main = {}", quote_list(&mains)),
            );
        }
        for (nix, kiln) in [("ldflags", "ldflags"), ("tags", "tags")] {
            match args.get(nix) {
                None => {}
                Some(Value::List(items)) if items.iter().all(|item| item.as_str().is_some()) => {
                    let items: Vec<String> = items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect();
                    lines.push(format!("{kiln} = {}", quote_list(&items)));
                    self.mapped(position(nix).as_ref(), format!("{nix} → {kiln}"));
                }
                Some(other) => self.not_carried(
                    position(nix),
                    format!("{nix}: {} (kiln takes a list of strings)", other.kind()),
                ),
            }
        }
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        let mut cgo = None;
        let mut cgo_position = position("CGO_ENABLED");
        match args.get("env") {
            None => {}
            Some(Value::Attrs(variables)) => {
                for (variable, value) in variables {
                    let text = match value {
                        Value::Str(text) => text.clone(),
                        Value::Int(number) => number.to_string(),
                        Value::Bool(value) => if *value { "1" } else { "" }.to_owned(),
                        other => {
                            self.not_carried(
                                position("env"),
                                format!("env.{variable}: {}", other.kind()),
                            );
                            continue;
                        }
                    };
                    if variable == "CGO_ENABLED" {
                        cgo = Some(text);
                        cgo_position = cgo_position.or_else(|| position("env"));
                    } else {
                        env.insert(variable.clone(), text);
                    }
                }
            }
            Some(other) => self.not_carried(position("env"), format!("env: {}", other.kind())),
        }
        if let Some(value) = args.get("CGO_ENABLED") {
            cgo = Some(match value {
                Value::Int(number) => number.to_string(),
                Value::Str(text) => text.clone(),
                Value::Bool(value) => if *value { "1" } else { "0" }.to_owned(),
                _ => String::new(),
            });
        }
        match cgo.as_deref() {
            None => {}
            Some("1") => {
                lines.push("cgo = true".to_owned());
                self.mapped(
                    cgo_position.as_ref(),
                    "CGO_ENABLED = 1 → cgo = true (kiln's pinned Zig is the C compiler)".to_owned(),
                );
            }
            Some(_) => self.mapped(
                cgo_position.as_ref(),
                "CGO_ENABLED = 0 → cgo off (kiln's default)".to_owned(),
            ),
        }
        if !env.is_empty() {
            let pairs: Vec<String> = env
                .iter()
                .map(|(variable, value)| format!("{} = {}", quote_key(variable), quote(value)))
                .collect();
            lines.push(format!("env = {{ {} }}", pairs.join(", ")));
            self.mapped(position("env").as_ref(), "env → env".to_owned());
        }
        // The program `nix run` runs: apps.default, else meta.mainProgram.
        let main_program = args
            .get("meta")
            .and_then(|meta| meta.get("mainProgram"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let app_program = outputs
            .apps
            .get("default")
            .and_then(|app| app.get("program"))
            .and_then(Value::as_str)
            .and_then(|program| program_in(program, &pname));
        let chosen = app_program
            .clone()
            .map(|program| (program, "apps.default"))
            .or_else(|| {
                main_program
                    .clone()
                    .map(|program| (program, "meta.mainProgram"))
            });
        if let Some((program, source)) = chosen {
            if programs.contains(&program) {
                if programs.len() > 1 {
                    lines.push(format!("program = {}", quote(&program)));
                }
                self.mapped(
                    position("meta").as_ref(),
                    format!("{source} runs bin/{program} → `kiln run` runs it"),
                );
            } else if programs.len() == 1 {
                self.mapped(
                    position("meta").as_ref(),
                    format!(
                        "{source} runs bin/{program}, which Go does not build (it builds bin/{}): `kiln run` runs bin/{}",
                        programs[0], programs[0]
                    ),
                );
            }
        }
        for (argument, value) in args {
            let location = position(argument);
            match argument.as_str() {
                "pname" | "name" | "version" | "subPackages" | "ldflags" | "tags" | "env"
                | "CGO_ENABLED" => {}
                "src" | "pwd" => self.note(
                    location.as_ref(),
                    format!("{argument}: kiln builds the project folder's sources (git-ignored files left out)"),
                ),
                "modules" => self.note(
                    location.as_ref(),
                    "modules = ./gomod2nix.toml: replaced by kiln.lock (written next from go.sum, or from gomod2nix.toml when there is none; every module gomod2nix.toml lists checked against its NAR hash)".to_owned(),
                ),
                "vendorHash" | "vendorSha256" => self.note(
                    location.as_ref(),
                    format!("{argument}: replaced by kiln.lock, which pins every module by hash"),
                ),
                "doCheck" => self.note(
                    location.as_ref(),
                    "doCheck: ignored (kiln builds, it does not run the tests; `go test` in `kiln shell` does)".to_owned(),
                ),
                "go" => self.note(
                    location.as_ref(),
                    format!(
                        "go = {}: kiln builds with the release go.mod's `toolchain` line names (else its `go` line's, or the local go): add `toolchain go1.X.Y` to go.mod to pin it",
                        describe(value)
                    ),
                ),
                "meta" => {
                    if let Some(meta) = value.attrs() {
                        for name in meta.keys().filter(|name| {
                            !matches!(name.as_str(), "mainProgram" | "description" | "license" | "homepage" | "maintainers" | "platforms")
                        }) {
                            self.not_carried(location.clone(), format!("meta.{name}"));
                        }
                    }
                }
                _ => self.not_carried(
                    location,
                    format!("{} argument `{argument}` ({})", call.function, value.kind()),
                ),
            }
        }
        let mut toml = format!("\n[packages.{}]\n", quote_key(key));
        for line in lines {
            toml.push_str(&line);
            toml.push('\n');
        }
        Package {
            key: key.to_owned(),
            pname,
            programs,
            toml,
        }
    }

    fn image(&mut self, key: &str, call: &Call, packages: &[Package]) -> Image {
        let empty = BTreeMap::new();
        let args = call.args.attrs().unwrap_or(&empty);
        let position = |name: &str| call.positions.get(name).cloned();
        let mut lines: Vec<String> = Vec::new();
        let mut base_static = Vec::new();
        let mut package: Option<&Package> = None;
        let mut paths: Option<Vec<String>> = None;
        let contents_key = if args.contains_key("copyToRoot") {
            "copyToRoot"
        } else {
            "contents"
        };
        let mut contents = Vec::new();
        if let Some(value) = args.get(contents_key) {
            flatten(value, &mut contents);
        }
        for item in &contents {
            match item {
                Value::Call(inner) if is_go_build(&inner.function) => {
                    package = find_package(packages, &inner.args);
                }
                Value::Call(inner) if inner.function == "buildEnv" => {
                    let mut inner_items = Vec::new();
                    if let Some(value) = inner.args.get("paths") {
                        flatten(value, &mut inner_items);
                    }
                    for inner_item in inner_items {
                        match &inner_item {
                            Value::Call(go) if is_go_build(&go.function) => {
                                package = find_package(packages, &go.args);
                            }
                            other => {
                                self.contents_item(other, &mut base_static, position(contents_key))
                            }
                        }
                    }
                    if let Some(Value::List(links)) = inner.args.get("pathsToLink") {
                        let links: Vec<String> = links
                            .iter()
                            .filter_map(Value::as_str)
                            .filter(|link| *link != "/etc" || base_static.is_empty())
                            .map(str::to_owned)
                            .collect();
                        self.mapped(
                            inner.positions.get("pathsToLink"),
                            format!("buildEnv pathsToLink = {} → paths", quote_list(&links)),
                        );
                        paths = Some(links);
                    }
                }
                other => self.contents_item(other, &mut base_static, position(contents_key)),
            }
        }
        let package_key = match package {
            Some(package) => package.key.clone(),
            None => {
                let first = packages
                    .first()
                    .map_or("default".to_owned(), |package| package.key.clone());
                if !contents.is_empty() {
                    self.note(
                        position(contents_key).as_ref(),
                        format!("{contents_key} holds no Go package of this flake: the image holds [packages.{first}]"),
                    );
                }
                first
            }
        };
        let package = packages.iter().find(|package| package.key == package_key);
        if let Some(package) = package.filter(|_| !contents.is_empty()) {
            self.mapped(
                position(contents_key).as_ref(),
                format!(
                    "{contents_key} holds packages.{} → package = \"{}\" (its programs under /bin, each file once)",
                    package.key, package.key
                ),
            );
        }
        lines.push(format!("package = {}", quote(&package_key)));
        if let Some(name) = args.get("name").and_then(Value::as_str) {
            lines.push(format!("name = {}", quote(name)));
            self.mapped(
                position("name").as_ref(),
                format!("name = \"{name}\" → [images.{key}] name"),
            );
        }
        match args.get("tag") {
            Some(Value::Str(tag)) => {
                lines.push(format!("tag = {}", quote(tag)));
                self.mapped(position("tag").as_ref(), format!("tag = \"{tag}\" → tag"));
            }
            Some(Value::Null) | None => self.note(
                position("tag").as_ref(),
                "no tag: Nix tags the image with its output hash; kiln with the package's version"
                    .to_owned(),
            ),
            Some(other) => self.not_carried(position("tag"), format!("tag: {}", other.kind())),
        }
        if let Some(created) = args.get("created").and_then(Value::as_str) {
            let kiln = match created {
                "now" => "now",
                NIX_EPOCH => "epoch",
                other => other,
            };
            lines.push(format!("created = {}", quote(kiln)));
            self.mapped(
                position("created").as_ref(),
                format!("created = \"{created}\" → created = \"{kiln}\""),
            );
        }
        if let Some(paths) = paths.filter(|paths| paths != &["/bin"] && !paths.is_empty()) {
            let paths: Vec<String> = paths.into_iter().filter(|path| path != "/").collect();
            if !paths.is_empty() {
                lines.push(format!("paths = {}", quote_list(&paths)));
            }
        }
        if !base_static.is_empty() {
            lines.push("base = \"static\"".to_owned());
            self.mapped(
                position(contents_key).as_ref(),
                format!(
                    "{} in {contents_key} → base = \"static\" (kiln's base: CA bundle at {STATIC_CA_BUNDLE}, tzdata, /etc/passwd and /etc/group with root and nonroot, /tmp)",
                    base_static.join(", ")
                ),
            );
        }
        let config = args
            .get("config")
            .and_then(Value::attrs)
            .cloned()
            .unwrap_or_default();
        let config_position = position("config");
        for (field, value) in &config {
            match field.as_str() {
                "Cmd" | "Entrypoint" => {
                    let kiln = if field == "Cmd" { "cmd" } else { "entrypoint" };
                    match strings(value) {
                        Some(items) => {
                            let items: Vec<String> = items
                                .iter()
                                .map(|item| {
                                    self.image_string(item, package, config_position.clone())
                                })
                                .collect();
                            let program =
                                items.first().and_then(|first| first.strip_prefix("/bin/"));
                            let foreign = package.zip(program).filter(|(package, program)| {
                                !package.programs.iter().any(|known| known == program)
                            });
                            if let Some((package, program)) = foreign {
                                self.not_carried(
                                    config_position.clone(),
                                    format!(
                                        "config.{field} runs /bin/{program}, which the package does not build (it builds {})",
                                        package.programs.join(", ")
                                    ),
                                );
                            }
                            lines.push(format!("{kiln} = {}", quote_list(&items)));
                            self.mapped(
                                config_position.as_ref(),
                                format!("config.{field} → {kiln} = {}", quote_list(&items)),
                            );
                        }
                        None => self.not_carried(
                            config_position.clone(),
                            format!("config.{field}: {}", value.kind()),
                        ),
                    }
                }
                "Env" => match strings(value) {
                    Some(items) => {
                        let mut pairs = Vec::new();
                        for item in items {
                            let item = self.image_string(&item, package, config_position.clone());
                            match item.split_once('=') {
                                Some((variable, value)) => pairs.push(format!(
                                    "{} = {}",
                                    quote_key(variable),
                                    quote(value)
                                )),
                                None => self.not_carried(
                                    config_position.clone(),
                                    format!("config.Env entry `{item}` (no `=`)"),
                                ),
                            }
                        }
                        lines.push(format!("env = {{ {} }}", pairs.join(", ")));
                        self.mapped(config_position.as_ref(), "config.Env → env".to_owned());
                    }
                    None => self.not_carried(
                        config_position.clone(),
                        format!("config.Env: {}", value.kind()),
                    ),
                },
                "ExposedPorts" => match value.attrs() {
                    Some(ports) => {
                        let ports: Vec<String> = ports.keys().cloned().collect();
                        lines.push(format!("expose = {}", quote_list(&ports)));
                        self.mapped(
                            config_position.as_ref(),
                            format!("config.ExposedPorts → expose = {}", quote_list(&ports)),
                        );
                    }
                    None => self.not_carried(
                        config_position.clone(),
                        format!("config.ExposedPorts: {}", value.kind()),
                    ),
                },
                // Nix writes `Volumes."/data" = { };`, the OCI config's own shape.
                "Volumes" => match value.attrs() {
                    Some(volumes) => {
                        let volumes: Vec<String> = volumes.keys().cloned().collect();
                        match volumes.iter().find_map(|volume| {
                            crate::oci::container::check_volume(volume)
                                .err()
                                .map(|reason| (volume, reason))
                        }) {
                            Some((volume, reason)) => self.not_carried(
                                config_position.clone(),
                                format!("config.Volumes entry `{volume}`: {reason}"),
                            ),
                            None => {
                                lines.push(format!("volumes = {}", quote_list(&volumes)));
                                self.mapped(
                                    config_position.as_ref(),
                                    format!("config.Volumes → volumes = {}", quote_list(&volumes)),
                                );
                            }
                        }
                    }
                    None => self.not_carried(
                        config_position.clone(),
                        format!("config.Volumes: {}", value.kind()),
                    ),
                },
                "User" | "WorkingDir" => {
                    let kiln = if field == "User" { "user" } else { "workdir" };
                    match value.as_str() {
                        Some(text) => {
                            lines.push(format!("{kiln} = {}", quote(text)));
                            self.mapped(
                                config_position.as_ref(),
                                format!("config.{field} → {kiln}"),
                            );
                        }
                        None => self.not_carried(
                            config_position.clone(),
                            format!("config.{field}: {}", value.kind()),
                        ),
                    }
                }
                "Labels" => match value.attrs() {
                    Some(labels) => {
                        let pairs: Vec<String> = labels
                            .iter()
                            .filter_map(|(label, value)| {
                                Some(format!("{} = {}", quote_key(label), quote(value.as_str()?)))
                            })
                            .collect();
                        lines.push(format!("labels = {{ {} }}", pairs.join(", ")));
                        self.mapped(
                            config_position.as_ref(),
                            "config.Labels → labels".to_owned(),
                        );
                    }
                    None => self.not_carried(
                        config_position.clone(),
                        format!("config.Labels: {}", value.kind()),
                    ),
                },
                _ => self.not_carried(
                    config_position.clone(),
                    format!("config.{field} (kiln.toml has no equivalent)"),
                ),
            }
        }
        for (argument, value) in args {
            let location = position(argument);
            match argument.as_str() {
                "name" | "tag" | "created" | "config" | "copyToRoot" | "contents" => {}
                "maxLayers" => match value {
                    Value::Int(layers) => {
                        lines.push(format!("max_layers = {layers}"));
                        self.mapped(location.as_ref(), format!("maxLayers = {layers} → max_layers"));
                    }
                    other => self.not_carried(location, format!("maxLayers: {}", other.kind())),
                },
                "architecture" => match value.as_str() {
                    Some(architecture) => {
                        lines.push(format!("platforms = [\"linux/{architecture}\"]"));
                        self.mapped(location.as_ref(), format!("architecture = \"{architecture}\" → platforms = [\"linux/{architecture}\"]"));
                    }
                    None => self.not_carried(location, format!("architecture: {}", value.kind())),
                },
                "compressor" => match value.as_str() {
                    Some(compressor @ ("none" | "zstd")) => {
                        lines.push(format!("compression = \"{compressor}\""));
                        self.mapped(location.as_ref(), format!("compressor → compression = \"{compressor}\""));
                    }
                    Some("gz") => self.mapped(location.as_ref(), "compressor = \"gz\" → gzip (kiln's default)".to_owned()),
                    _ => self.not_carried(location, format!("compressor: {}", describe(value))),
                },
                "runAsRoot" | "extraCommands" | "fakeRootCommands" | "enableFakechroot" => self.not_carried(
                    location,
                    format!("{argument}: shell commands run while the image is made; kiln runs none (put files in [[images.{key}.files]], folders in [[images.{key}.dirs]], links in [[images.{key}.symlinks]])"),
                ),
                "fromImage" => self.not_carried(
                    location,
                    "fromImage: a base image from Nix; give kiln the registry reference as base = \"REGISTRY/NAME:TAG\" (pinned in kiln.lock)".to_owned(),
                ),
                "diskSize" | "buildVMMemorySize" | "keepContentsDirlinks" => self.note(location.as_ref(), format!("{argument}: ignored (kiln builds no VM)")),
                _ => self.not_carried(location, format!("{} argument `{argument}` ({})", call.function, value.kind())),
            }
        }
        // An image written in its own file goes to its own kiln file, as the user had it.
        let file = call
            .positions
            .values()
            .map(|location| location.file.clone())
            .find(|file| file.file_name().is_some_and(|name| name != "flake.nix"))
            .and_then(|file| {
                let stem = file.file_stem()?.to_string_lossy().into_owned();
                Some(format!("{stem}.toml"))
            });
        let mut toml = format!("\n[images.{}]\n", quote_key(key));
        for line in lines {
            toml.push_str(&line);
            toml.push('\n');
        }
        Image { file, toml }
    }

    /// A string of the image's config: `${package}/bin/NAME` → `/bin/NAME`, the cacert
    /// bundle → the static base's; another package's path is not carried over.
    fn image_string(
        &mut self,
        text: &str,
        package: Option<&Package>,
        location: Option<Location>,
    ) -> String {
        let mut text = text.to_owned();
        if let Some(package) = package {
            text = text.replace(&super::out_marker(&package.pname), "");
        }
        for bundle in [
            "/etc/ssl/certs/ca-bundle.crt",
            "/etc/ssl/certs/ca-certificates.crt",
        ] {
            for name in ["cacert", "dockerTools.caCertificates"] {
                let marked = format!("{}{bundle}", super::pkg_marker(name));
                if text.contains(&marked) {
                    text = text.replace(&marked, STATIC_CA_BUNDLE);
                    self.mapped(
                        location.as_ref(),
                        format!("{name}'s {bundle} → {STATIC_CA_BUNDLE} (the static base's)"),
                    );
                }
            }
        }
        if text.contains("@kiln-") {
            self.not_carried(location, format!("`{text}` names a Nix package's path"));
        }
        text
    }

    fn contents_item(
        &mut self,
        item: &Value,
        base_static: &mut Vec<String>,
        location: Option<Location>,
    ) {
        match item {
            Value::Package(name)
                if matches!(
                    name.as_str(),
                    "cacert" | "tzdata" | "dockerTools.caCertificates" | "dockerTools.fakeNss"
                ) =>
            {
                if !base_static.contains(name) {
                    base_static.push(name.clone());
                }
            }
            Value::Package(name)
                if matches!(
                    name.as_str(),
                    "dockerTools.binSh" | "busybox" | "bash" | "bashInteractive" | "coreutils"
                ) =>
            {
                self.not_carried(
                    location,
                    format!("{name}: a shell and its tools; kiln's static base has none (kiln images hold the program, its files and the static base)"),
                );
            }
            other => self.not_carried(
                location,
                format!("{} in the image's contents", describe(other)),
            ),
        }
    }
}

/// The package among `packages` whose Nix arguments are `args` (by pname).
fn find_package<'a>(packages: &'a [Package], args: &Value) -> Option<&'a Package> {
    let pname = args
        .get("pname")
        .or_else(|| args.get("name"))
        .and_then(Value::as_str)?;
    packages.iter().find(|package| package.pname == pname)
}

/// `BIN` when `program` is `@kiln-out:PNAME@/bin/BIN`.
fn program_in(program: &str, pname: &str) -> Option<String> {
    let rest = program.strip_prefix(&super::out_marker(pname))?;
    Some(rest.strip_prefix("/bin/")?.to_owned())
}

fn flatten(value: &Value, into: &mut Vec<Value>) {
    match value {
        Value::List(items) => items.iter().for_each(|item| flatten(item, into)),
        other => into.push(other.clone()),
    }
}

fn strings(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::List(items) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect(),
        Value::Str(text) => Some(vec![text.clone()]),
        _ => None,
    }
}

/// A value, shortly, for messages.
fn describe(value: &Value) -> String {
    match value {
        Value::Package(name) => format!("pkgs.{name}"),
        Value::Call(call) => format!("the result of {}", call.function),
        Value::Str(text) => format!("\"{text}\""),
        Value::Input(name) => format!("the flake input `{name}`"),
        other => other.kind().to_owned(),
    }
}

/// What Go names the program of a root main package: the module path's last element, a
/// `/vN` major version suffix skipped (`example.com/tool/v2` → `tool`).
pub fn go_program_name(module: &str) -> String {
    let mut parts = module.rsplit('/');
    let last = parts.next().unwrap_or(module);
    let is_major = last.len() > 1
        && last.starts_with('v')
        && last[1..].bytes().all(|byte| byte.is_ascii_digit());
    match (is_major, parts.next()) {
        (true, Some(previous)) => previous.to_owned(),
        _ => last.to_owned(),
    }
}

/// A TOML basic string.
fn quote(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

fn quote_list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|item| quote(item)).collect();
    format!("[{}]", items.join(", "))
}

/// A TOML key: bare when it can be.
fn quote_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
    {
        key.to_owned()
    } else {
        quote(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nixfile::eval::from_json;
    use crate::nixfile::{out_marker, pkg_marker};

    fn outputs(json: serde_json::Value) -> FlakeOutputs {
        FlakeOutputs::from_value(&from_json(&json))
    }

    fn position(file: &str, line: u32) -> serde_json::Value {
        serde_json::json!({"file": format!("/project/{file}"), "line": line, "column": 3})
    }

    fn package(args: serde_json::Value) -> serde_json::Value {
        let positions: serde_json::Map<String, serde_json::Value> = args
            .as_object()
            .unwrap()
            .keys()
            .enumerate()
            .map(|(index, key)| (key.clone(), position("default.nix", index as u32 + 2)))
            .collect();
        serde_json::json!({"__kiln_call": "buildGoApplication", "__kiln_args": args, "__kiln_positions": positions})
    }

    fn image(function: &str, args: serde_json::Value) -> serde_json::Value {
        let positions: serde_json::Map<String, serde_json::Value> = args
            .as_object()
            .unwrap()
            .keys()
            .enumerate()
            .map(|(index, key)| (key.clone(), position("flake.nix", index as u32 + 10)))
            .collect();
        serde_json::json!({"__kiln_call": function, "__kiln_args": args, "__kiln_positions": positions})
    }

    fn module() -> GoModule {
        GoModule {
            path: "example.com/tool/v2".to_owned(),
        }
    }

    #[test]
    fn packages_map_their_go_settings() {
        let flake = outputs(
            serde_json::json!({"packages": {"default": package(serde_json::json!({
                "pname": "tool", "version": "2.1", "subPackages": ["cmd/server", "./cmd/cli/"],
                "tags": ["netgo"], "env": {"CGO_ENABLED": "1", "GOEXPERIMENT": "loopvar"},
                "go": {"__kiln_pkg": "go_1_22"}, "vendorHash": null, "nativeBuildInputs": [],
                "meta": {"mainProgram": "server", "description": "a tool"}
            }))}}),
        );
        let conversion = convert(&flake, Path::new("/project"), Some(&module())).unwrap();
        assert_eq!(
            conversion.kiln_toml,
            "# Converted from a Nix flake by `kiln init --from-nix`.\nschema = 1\n\n[packages.default]\nname = \"tool\"\nversion = \"2.1\"\nmain = [\"./cmd/server\", \"./cmd/cli\"]\ntags = [\"netgo\"]\ncgo = true\nenv = { GOEXPERIMENT = \"loopvar\" }\nprogram = \"server\"\n"
        );
        assert_eq!(
            conversion.not_carried,
            vec!["default.nix:5:3: buildGoApplication argument `nativeBuildInputs` (a list)"]
        );
        assert!(
            conversion.notes.iter().any(|note| note.starts_with("default.nix:3:3: go = pkgs.go_1_22: kiln builds with the release go.mod's `toolchain` line names")),
            "{:?}",
            conversion.notes
        );
        crate::project::config::Project::from_text(Path::new("/project"), conversion.kiln_toml)
            .unwrap();
    }

    #[test]
    fn the_static_base_stands_in_for_cacert_and_a_shell_is_not_carried_over() {
        let program = out_marker("tool");
        let flake = outputs(serde_json::json!({"packages": {
            "default": package(serde_json::json!({"pname": "tool", "version": "1"})),
            "image": image("dockerTools.streamLayeredImage", serde_json::json!({
                "name": "tool", "tag": null,
                "contents": [{"__kiln_pkg": "cacert"}, {"__kiln_pkg": "dockerTools.fakeNss"}, [{"__kiln_call": "buildGoApplication", "__kiln_args": {"pname": "tool"}, "__kiln_positions": {}}]],
                "config": {"Entrypoint": [format!("{program}/bin/tool")], "Env": [format!("SSL_CERT_FILE={}/etc/ssl/certs/ca-bundle.crt", pkg_marker("cacert"))], "Volumes": {"/data": {}}},
                "fakeRootCommands": "chown 1000 /data",
                "architecture": "arm64"
            })),
            "shell": image("dockerTools.buildImage", serde_json::json!({"name": "shell", "tag": "1", "copyToRoot": [{"__kiln_pkg": "dockerTools.binSh"}]})),
        }}));
        let conversion = convert(&flake, Path::new("/project"), Some(&module())).unwrap();
        assert!(
            conversion.kiln_toml.contains("\n[images.image]\npackage = \"default\"\nname = \"tool\"\nbase = \"static\"\nentrypoint = [\"/bin/tool\"]\nenv = { SSL_CERT_FILE = \"/etc/ssl/certs/ca-certificates.crt\" }\nvolumes = [\"/data\"]\nplatforms = [\"linux/arm64\"]\n"),
            "{}",
            conversion.kiln_toml
        );
        assert_eq!(
            conversion.not_carried,
            vec![
                "flake.nix:13:3: fakeRootCommands: shell commands run while the image is made; kiln runs none (put files in [[images.image.files]], folders in [[images.image.dirs]], links in [[images.image.symlinks]])".to_owned(),
                "flake.nix:10:3: dockerTools.binSh: a shell and its tools; kiln's static base has none (kiln images hold the program, its files and the static base)".to_owned(),
            ]
        );
    }

    #[test]
    fn a_flake_without_a_go_package_is_refused() {
        let flake = outputs(serde_json::json!({"packages": {"docs": {"__kiln_pkg": "hugo"}}}));
        assert_eq!(
            convert(&flake, Path::new("/project"), None)
                .unwrap_err()
                .to_string(),
            "the flake's packages hold no Go program built by buildGoApplication or buildGoModule (packages: docs)"
        );
    }

    #[test]
    fn go_names_root_programs_after_the_module() {
        assert_eq!(go_program_name("example.com/hello"), "hello");
        assert_eq!(go_program_name("example.com/tool/v2"), "tool");
        assert_eq!(go_program_name("hello"), "hello");
    }
}
