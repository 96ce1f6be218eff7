//! kiln builds Go applications into minimal, bit-for-bit reproducible container images.
//!
//! The binary is a thin layer over this library: [`cli`] parses arguments and prints, [`oci`]
//! is the image engine, [`sbom`] describes what an image holds, [`output`] makes every file
//! kiln writes appear whole or not at all.

pub mod build;
pub mod cli;
pub mod engine;
pub mod gomod;
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
pub mod tls;
pub mod transport;

/// A unit test that needs a tool kiln did not write (Go, git) and cannot find it: in CI
/// (`CI` or `KILN_TEST_REQUIRE_TOOLS` set) that fails the test; elsewhere the test returns
/// after this prints a SKIPPED line to stderr itself, past the output cargo test captures,
/// so plain `cargo test` shows it (as `skip` in tests/cli/harness.rs does for the cli tests).
#[cfg(test)]
#[track_caller]
pub(crate) fn skip_test(test: &str, why: &str) {
    use std::io::Write as _;
    let required = ["CI", "KILN_TEST_REQUIRE_TOOLS"].iter().any(|name| {
        std::env::var_os(name)
            .is_some_and(|value| !value.is_empty() && value != "0" && value != "false")
    });
    let message = format!("SKIPPED {test}: {why}");
    assert!(!required, "{message}; CI must run every test");
    let _ = writeln!(std::io::stderr(), "\n!!!!!!!! {message}\n");
}
