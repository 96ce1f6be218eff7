//! kiln builds Go applications into minimal, bit-for-bit reproducible container images.
//!
//! The binary is a thin layer over this library: [`cli`] parses arguments and prints, [`oci`]
//! is the image engine, [`sbom`] describes what an image holds, [`output`] makes every file
//! kiln writes appear whole or not at all.

pub mod build;
pub mod cli;
pub mod engine;
pub mod gomod;
pub mod http;
pub mod lock;
pub mod nar;
pub mod nixbase32;
pub mod oci;
pub mod output;
pub mod project;
pub mod registry;
pub mod sbom;
pub mod static_base;
pub mod store;
pub mod transport;
