//! The shape of a kiln.toml file as serde reads it: every key, with its span for the error
//! that names it, before any check. Every table denies unknown keys, so a misspelt key is an
//! error (with the known key suggested) rather than a setting silently ignored.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(super) fn has_nul(&self) -> bool {
        match self {
            OneOrMany::One(one) => one.contains('\0'),
            OneOrMany::Many(many) => many.iter().any(|item| item.contains('\0')),
        }
    }

    pub(super) fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub(super) schema: Option<Spanned<u32>>,
    pub(super) include: Option<Vec<Spanned<String>>>,
    pub(super) packages: Option<BTreeMap<Spanned<String>, Spanned<RawPackage>>>,
    pub(super) images: Option<BTreeMap<Spanned<String>, Spanned<RawImage>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPackage {
    pub(super) name: Option<Spanned<String>>,
    pub(super) version: Option<Spanned<String>>,
    pub(super) main: Option<Spanned<OneOrMany>>,
    pub(super) program: Option<Spanned<String>>,
    pub(super) ldflags: Option<Spanned<OneOrMany>>,
    pub(super) tags: Option<Vec<Spanned<String>>>,
    pub(super) env: Option<BTreeMap<Spanned<String>, String>>,
    pub(super) platform: Option<Spanned<String>>,
    pub(super) platforms: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) cgo: Option<Spanned<bool>>,
    #[serde(rename = "c-libc")]
    pub(super) c_libc: Option<Spanned<String>>,
    pub(super) glibc: Option<Spanned<String>>,
    pub(super) cflags: Option<Spanned<OneOrMany>>,
    #[serde(rename = "c-ldflags")]
    pub(super) c_ldflags: Option<Spanned<OneOrMany>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawImage {
    pub(super) package: Option<Spanned<String>>,
    pub(super) name: Option<Spanned<String>>,
    pub(super) tag: Option<Spanned<String>>,
    pub(super) paths: Option<Vec<Spanned<String>>>,
    pub(super) cmd: Option<Vec<String>>,
    pub(super) entrypoint: Option<Vec<String>>,
    pub(super) env: Option<BTreeMap<Spanned<String>, String>>,
    pub(super) workdir: Option<Spanned<String>>,
    pub(super) user: Option<Spanned<String>>,
    pub(super) expose: Option<Vec<Spanned<String>>>,
    pub(super) volumes: Option<Vec<Spanned<String>>>,
    pub(super) labels: Option<BTreeMap<String, String>>,
    pub(super) created: Option<Spanned<String>>,
    pub(super) compression: Option<Spanned<String>>,
    pub(super) base: Option<Spanned<String>>,
    pub(super) platforms: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) files: Option<Vec<Spanned<RawFiles>>>,
    pub(super) dirs: Option<Vec<Spanned<RawDir>>>,
    pub(super) symlinks: Option<Vec<Spanned<RawSymlink>>>,
    pub(super) max_layers: Option<Spanned<i64>>,
    pub(super) annotations: Option<BTreeMap<Spanned<String>, String>>,
    pub(super) sbom: Option<bool>,
}

/// `mode = "0644"` or `mode = 0o644` (TOML's octal integer).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawMode {
    Number(i64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFiles {
    pub(super) src: Spanned<String>,
    pub(super) dest: Spanned<String>,
    pub(super) mode: Option<Spanned<RawMode>>,
    pub(super) uid: Option<Spanned<i64>>,
    pub(super) gid: Option<Spanned<i64>>,
    pub(super) include: Option<Vec<Spanned<String>>>,
    pub(super) exclude: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDir {
    pub(super) path: Spanned<String>,
    pub(super) mode: Option<Spanned<RawMode>>,
    pub(super) uid: Option<Spanned<i64>>,
    pub(super) gid: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSymlink {
    pub(super) path: Spanned<String>,
    pub(super) target: Spanned<String>,
}
