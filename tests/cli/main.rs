//! Integration tests: the real `kiln` binary, run in temporary folders, against real tools.
//! One test binary (as in ripgrep) so the build links once.

mod cache;
mod cgo;
mod clients;
mod concurrency;
mod config_names;
mod crash;
mod disk;
mod engines;
mod from_nix;
mod git_host;
mod goauth_host;
mod harness;
mod hostile;
mod image;
mod incremental;
mod inspect;
mod journey;
mod lock;
mod private;
mod private_host;
mod production;
mod project;
mod registry;
mod registry_faults;
mod sbom;
mod vendored;
