//! A kiln project: its kiln.toml read and checked (`config`, a folder by stage: the file's
//! serde shape, loading and includes, packages, images and their entries, the validated
//! model and the errors that name file:line:column), the targets it defines (`target`), and
//! the git checkout it may be in (`git`).

pub mod config;
pub mod git;
pub mod target;

pub use config::{Cgo, ConfigError, GlibcVersion, Image, Libc, MainPackage, Package, Project};
pub use target::{OnlyImage, Projects, Resolved, TargetError, TargetSpec};
