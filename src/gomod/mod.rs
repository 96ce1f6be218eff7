//! Go modules: go.mod, go.sum, vendored dependencies, the `h1:` hash go.sum records, module
//! paths and their escaping, the file paths a module may hold, the GOPROXY protocol, modules
//! fetched `direct` from version control (by Go itself), module zips and gomod2nix.toml, and
//! the build information Go embeds in a program (`go version -m`).

pub mod authcommand;
pub mod buildinfo;
pub mod direct;
pub mod dirhash;
pub mod filepath;
pub mod goauth;
pub mod goelf;
pub mod gomod2nix;
pub mod modfile;
pub mod module;
pub mod modzip;
pub mod netrc;
pub mod proxy;
pub mod sumfile;
pub mod vendor;
