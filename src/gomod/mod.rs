//! Go modules: go.mod, go.sum, vendored dependencies and the `h1:` hash go.sum records. (Module
//! zips, the GOPROXY protocol and the lock come with locked dependencies.)

pub mod dirhash;
pub mod modfile;
pub mod sumfile;
pub mod vendor;
