//! Go modules: go.mod, go.sum, vendored dependencies, the `h1:` hash go.sum records, module
//! paths and their escaping, the GOPROXY protocol and module zips.

pub mod dirhash;
pub mod modfile;
pub mod module;
pub mod modzip;
pub mod proxy;
pub mod sumfile;
pub mod vendor;
