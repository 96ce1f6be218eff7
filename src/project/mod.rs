//! A kiln project: kiln.toml, and the targets it defines.

pub mod config;
pub mod git;
pub mod target;

pub use config::{ConfigError, Image, MainPackage, Package, Project};
pub use target::{OnlyImage, Projects, Resolved, TargetError, TargetSpec};
