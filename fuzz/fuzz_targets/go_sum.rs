//! go.sum: `module version[/go.mod] h1:hash` lines.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = kiln::gomod::sumfile::parse(text, Path::new("go.sum"));
});
