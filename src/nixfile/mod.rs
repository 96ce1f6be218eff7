//! Reading a Nix flake that builds a Go program and its image (gomod2nix's
//! `buildGoApplication` or nixpkgs' `buildGoModule`, `dockerTools.buildImage` and its kin,
//! nix2container), for `kiln init --from-nix` (issue 22).
//!
//! Two ways to read the user's files, giving the same [`Value`] tree:
//! - [`eval`]: with `nix-instantiate` on PATH, real Nix evaluates flake.nix (and whatever its
//!   outputs import) offline, with stand-ins for nixpkgs, flake-utils, gomod2nix and
//!   nix2container whose functions return the arguments they were given, marked with the
//!   function's name and each argument's position (`standin.nix`). let, inherit, rec,
//!   imports, overlays and interpolation are then exactly Nix's.
//! - [`literal`]: without Nix, rnix parses the files and a small lazy evaluator accepts the
//!   literal forms such flakes are written in, with the same stand-ins written in Rust;
//!   anything else is an error at file:line:column naming the construct.
//!
//! [`mapping`] turns the tree into kiln.toml (and says, for each Nix setting, what it became
//! or that it was not carried over, with its position).

pub mod eval;
pub mod literal;
pub mod mapping;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// What a flake's outputs are, as kiln reads them: JSON's values, plus paths, the calls of
/// functions kiln maps (with their arguments' positions), packages it knows by name, and
/// functions (which it does not look into).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Path(PathBuf),
    List(Vec<Value>),
    Attrs(BTreeMap<String, Value>),
    /// `function ARGS` for a function kiln maps (`buildGoApplication`,
    /// `dockerTools.buildImage`, `buildEnv`, …).
    Call(Box<Call>),
    /// A package kiln knows by name (`cacert`, `dockerTools.fakeNss`, `go_1_22`, …).
    Package(String),
    /// An input kiln has no stand-in for.
    Input(String),
    Function,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// As nixpkgs names it: `buildGoApplication`, `dockerTools.buildImage`.
    pub function: String,
    pub args: Value,
    /// Where each argument was written.
    pub positions: BTreeMap<String, Location>,
}

impl Value {
    pub fn attrs(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Attrs(attrs) => Some(attrs),
            _ => None,
        }
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.attrs()?.get(name)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(text) => Some(text),
            _ => None,
        }
    }

    pub fn call(&self) -> Option<&Call> {
        match self {
            Value::Call(call) => Some(call),
            _ => None,
        }
    }

    /// What it is, in Nix's words, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a Boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::Path(_) => "a path",
            Value::List(_) => "a list",
            Value::Attrs(_) => "an attribute set",
            Value::Call(_) => "a function's result",
            Value::Package(_) => "a package",
            Value::Input(_) => "a flake input",
            Value::Function => "a function",
        }
    }
}

/// A position in a Nix file, as Nix reports it (line and column from 1).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    pub file: PathBuf,
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{}:{}:{}",
            self.file.display(),
            self.line,
            self.column
        )
    }
}

/// What a flake's outputs hold for one system: `packages` and `apps` (the flake's
/// `packages.SYSTEM` and `apps.SYSTEM`, or the sets themselves when not per system).
#[derive(Clone, Debug, PartialEq)]
pub struct FlakeOutputs {
    pub packages: BTreeMap<String, Value>,
    pub apps: BTreeMap<String, Value>,
    /// The flake's other outputs (`devShells`, `checks`, `overlays`, …), by name: read by
    /// neither way (unevaluated), listed by the conversion.
    pub others: Vec<String>,
}

/// Where standin.nix and [`literal`] put the names of the other outputs.
pub const OTHER_OUTPUTS: &str = "__kiln_other_outputs";

impl FlakeOutputs {
    pub fn from_value(value: &Value) -> FlakeOutputs {
        let set = |name: &str| {
            value
                .get(name)
                .and_then(Value::attrs)
                .cloned()
                .unwrap_or_default()
        };
        let mut packages = set("packages");
        if let Some(package) = value.get("defaultPackage") {
            packages
                .entry("default".to_owned())
                .or_insert_with(|| package.clone());
        }
        let others = match value.get(OTHER_OUTPUTS) {
            Some(Value::List(names)) => names
                .iter()
                .filter_map(|name| name.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        FlakeOutputs {
            packages,
            apps: set("apps"),
            others,
        }
    }
}

/// The marker a package's output path becomes in strings (`"${package}/bin/NAME"`):
/// `@kiln-out:PNAME@`, as standin.nix and [`literal`] write it.
pub fn out_marker(name: &str) -> String {
    format!("@kiln-out:{name}@")
}

/// The marker of a known package's path (`"${pkgs.cacert}/etc/…"`): `@kiln-pkg:NAME@`.
pub fn pkg_marker(name: &str) -> String {
    format!("@kiln-pkg:{name}@")
}
