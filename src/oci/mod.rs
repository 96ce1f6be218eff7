//! The OCI image engine: deterministic layers, image documents, and the formats images travel
//! in (OCI layout folders and archives, docker-archive tars).
//!
//! Writing: [`tree`] collects files into a layer's entries, [`layer`] streams them through
//! [`tar`] and [`compression`] into a blob, [`image`] adds the config and manifest, and
//! [`layout`] / [`archive`] store the blobs. Reading: [`reader`] opens any image folder or
//! tar and [`inspect`] reports on it.

pub mod archive;
pub mod compression;
pub mod container;
pub mod digest;
pub mod elf;
pub mod gzip;
pub mod image;
pub mod inspect;
pub mod json;
pub mod layer;
pub mod layout;
pub mod reader;
pub mod reference;
pub mod spec;
pub mod tar;
pub mod timestamp;
pub mod tree;
