//! Go modules: go.mod and vendored dependencies. (Module zips, the `h1:` hash, the GOPROXY
//! protocol and the lock come with locked dependencies.)

pub mod modfile;
pub mod vendor;
