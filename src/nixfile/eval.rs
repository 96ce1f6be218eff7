//! Reading a flake with real Nix: `nix-instantiate --eval --strict --json` of `standin.nix`,
//! which imports the user's flake.nix and calls its `outputs` with stand-in inputs (see that
//! file), then walks `packages.SYSTEM` and `apps.SYSTEM` into JSON: paths as
//! `{"__kiln_path": …}` (never copied into a store), functions as `{"__kiln_function": true}`,
//! the functions kiln maps as `{"__kiln_call", "__kiln_args", "__kiln_positions"}`, known
//! packages as `{"__kiln_pkg": NAME}`. Offline and without a store: nothing is built or
//! fetched, `NIX_PATH` is empty (a `<nixpkgs>` the user's files name is an error, not the
//! machine's nixpkgs) and the evaluation is read-only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Call, FlakeOutputs, Location, Value};

const STANDIN: &str = include_str!("standin.nix");
const STANDIN_NIXPKGS: &str = include_str!("nixpkgs/default.nix");

/// The system the stand-ins evaluate for (`packages.SYSTEM`): what a Linux amd64 machine
/// builds. The image's platform comes from kiln.toml, not from this.
pub const SYSTEM: &str = "x86_64-linux";

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot run nix-instantiate: {0}")]
    Spawn(std::io::Error),
    #[error("cannot write the stand-ins for nixpkgs: {0}")]
    Scratch(std::io::Error),
    #[error("Nix could not evaluate {} with kiln's stand-ins for nixpkgs, flake-utils, gomod2nix and nix2container:\n{message}", .flake.display())]
    Nix { flake: PathBuf, message: String },
    #[error("nix-instantiate printed what kiln cannot read: {0}")]
    Json(serde_json::Error),
}

impl crate::diagnostic::Hint for EvalError {
    fn hint(&self) -> Option<String> {
        match self {
            EvalError::Nix { .. } => Some(
                "kiln's stand-ins know buildGoApplication, buildGoModule, buildEnv, callPackage, dockerTools.{buildImage,buildLayeredImage,streamLayeredImage,fakeNss,caCertificates,binSh}, cacert, tzdata, go_1_*, flake-utils' eachDefaultSystem/eachSystem/mkApp, gomod2nix's overlay and legacyPackages, nix2container's buildImage; anything else has no kiln equivalent to map it to".to_owned(),
            ),
            _ => None,
        }
    }
}

/// Whether `nix-instantiate` is on PATH.
pub fn available() -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|folder| folder.join("nix-instantiate").is_file())
    })
}

/// Evaluate the flake in `folder` with real Nix.
pub fn evaluate(folder: &Path) -> Result<FlakeOutputs, EvalError> {
    let scratch = tempfile::Builder::new()
        .prefix("kiln-nix-standin-")
        .tempdir()
        .map_err(EvalError::Scratch)?;
    let write = |relative: &str, text: &str| -> Result<PathBuf, EvalError> {
        let path = scratch.path().join(relative);
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent).map_err(EvalError::Scratch)?;
        }
        fs_err::write(&path, text).map_err(EvalError::Scratch)?;
        Ok(path)
    };
    let standin = write("standin.nix", STANDIN)?;
    write("nixpkgs/default.nix", STANDIN_NIXPKGS)?;
    let output = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "--readonly-mode"])
        .arg(&standin)
        .arg("--argstr")
        .arg("flakeDir")
        .arg(folder)
        .args(["--argstr", "system", SYSTEM])
        .env("NIX_PATH", "")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(EvalError::Spawn)?;
    if !output.status.success() {
        return Err(EvalError::Nix {
            flake: folder.join("flake.nix"),
            message: nix_message(&String::from_utf8_lossy(&output.stderr), scratch.path()),
        });
    }
    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(EvalError::Json)?;
    Ok(FlakeOutputs::from_value(&from_json(&json)))
}

/// Nix's error, without its warnings about the machine's Nix setup, and with the stand-ins'
/// scratch folder named as such.
fn nix_message(stderr: &str, scratch: &Path) -> String {
    let scratch = scratch.display().to_string();
    stderr
        .lines()
        .filter(|line| !line.starts_with("warning: "))
        .filter(|line| !line.contains("--show-trace"))
        .map(|line| line.replace(&scratch, "<kiln stand-ins>"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

/// The walked JSON as a [`Value`].
pub fn from_json(json: &serde_json::Value) -> Value {
    use serde_json::Value as Json;
    match json {
        Json::Null => Value::Null,
        Json::Bool(value) => Value::Bool(*value),
        Json::Number(number) => number
            .as_i64()
            .map(Value::Int)
            .unwrap_or_else(|| Value::Float(number.as_f64().unwrap_or_default())),
        Json::String(text) => Value::Str(text.clone()),
        Json::Array(items) => Value::List(items.iter().map(from_json).collect()),
        Json::Object(map) => {
            if let Some(Json::String(path)) = map.get("__kiln_path") {
                return Value::Path(PathBuf::from(path));
            }
            if map.contains_key("__kiln_function") {
                return Value::Function;
            }
            if let Some(Json::String(name)) = map.get("__kiln_pkg") {
                return Value::Package(name.clone());
            }
            if let Some(Json::String(name)) = map.get("__kiln_input") {
                return Value::Input(name.clone());
            }
            if let Some(Json::String(function)) = map.get("__kiln_call") {
                let positions = map
                    .get("__kiln_positions")
                    .and_then(Json::as_object)
                    .map(|positions| {
                        positions
                            .iter()
                            .filter_map(|(name, position)| {
                                Some((name.clone(), location(position)?))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                return Value::Call(Box::new(Call {
                    function: function.clone(),
                    args: map.get("__kiln_args").map_or(Value::Null, from_json),
                    positions,
                }));
            }
            Value::Attrs(
                map.iter()
                    .map(|(name, value)| (name.clone(), from_json(value)))
                    .collect::<BTreeMap<_, _>>(),
            )
        }
    }
}

fn location(position: &serde_json::Value) -> Option<Location> {
    Some(Location {
        file: PathBuf::from(position.get("file")?.as_str()?),
        line: u32::try_from(position.get("line")?.as_u64()?).ok()?,
        column: u32::try_from(position.get("column")?.as_u64()?).ok()?,
    })
}
