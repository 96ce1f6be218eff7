//! kiln builds Go applications into minimal, bit-for-bit reproducible container images.
//!
//! The binary is a thin layer over this library: [`cli`] parses arguments and prints; every
//! rule lives below it. The pipeline, in the order data flows through it:
//!
//! - [`project`]: kiln.toml (schema, loading, model, diagnostics) and the targets it defines.
//! - [`gomod`]: Go's module formats (go.mod, go.sum, vendor/modules.txt, `h1:` dirhash,
//!   module zips, gomod2nix.toml), the GOPROXY client, and `direct` fetches from version
//!   control through Go itself.
//! - [`lock`]: kiln.lock, what go.sum wants pinned, fetching and verifying modules into the
//!   store, and `kiln lock`'s rules ([`lock::locker`]).
//! - [`static_base`]: the built-in `static` base, made from pinned PyPI wheels.
//! - [`toolchain`]: the Go toolchain kiln builds with (found, identified by a manifest of its
//!   GOROOT) and Go releases fetched into the store as Go fetches them.
//! - [`builder`]: plans and builds packages (Go, in a sandbox of the sources) and images into
//!   the store; the environment `kiln shell` gives.
//! - [`recipes`]: every store recipe, and so every store name.
//! - [`store`]: where outputs live, named by their recipes; the one publish protocol, gc and
//!   verify. A leaf: it knows nothing of what an output means.
//! - [`session`]: one command's store, gc lock, projects and builder.
//! - [`oci`]: the image engine: deterministic layers, image documents, archives and layouts,
//!   reading images back.
//! - [`sbom`]: the SPDX document of what an image holds.
//! - [`transport`]: images between registries, layouts and archives, as skopeo names them;
//!   opening an image wherever it lives and picking one platform of an index.
//! - [`registry`]: the OCI distribution client, credentials and pushes.
//! - [`cache`]: the shared build cache: store outputs as signed artifacts in an OCI registry,
//!   substituted before a build, pushed after one.
//! - [`engine`]: the Docker Engine API (`kiln load`).
//! - [`http`]: the one HTTP stack: agent, retry policy, URL redaction, TLS roots.
//! - [`nixfile`]: reading a Nix flake (gomod2nix, dockerTools) for `kiln init --from-nix`,
//!   with real Nix or rnix.
//! - [`diagnostic`]: an error's hint (a field, not text), and the one path error.
//! - [`zip_hygiene`]: the checks every zip from the network gets (entry types, second names,
//!   declared sizes), shared by module zips and wheels.
//!
//! Formats kiln implements by hand, each in a module named after it: [`nar`] (Nix's archive
//! and its hash), [`nixbase32`]. [`output`] makes every file kiln writes appear whole or not
//! at all.

pub mod builder;
pub mod cache;
pub mod cli;
pub mod diagnostic;
pub mod engine;
pub mod gomod;
pub mod http;
pub mod lock;
pub mod nar;
pub mod nixbase32;
pub mod nixfile;
pub mod oci;
pub mod output;
pub mod project;
pub mod recipes;
pub mod registry;
pub mod sbom;
pub mod session;
pub mod static_base;
pub mod store;
pub mod toolchain;
pub mod transport;
pub mod zip_hygiene;

/// The Go toolchain tests that use Go as the oracle run (`KILN_TEST_GO`, else `go` on PATH);
/// without one, the test `test` is skipped ([`skip_test`]) and this is `None`.
#[cfg(test)]
#[track_caller]
pub(crate) fn test_go(test: &str) -> Option<std::path::PathBuf> {
    let go = std::env::var_os("KILN_TEST_GO")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|folder| folder.join("go"))
                .find(|path| path.is_file())
        });
    if go.is_none() {
        skip_test(test, "no Go toolchain (scripts/test installs one)");
    }
    go
}

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
