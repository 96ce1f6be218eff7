//! go.mod: directives, blocks, comments, quoted strings.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = kiln::gomod::modfile::parse(text, Path::new("go.mod"));
});
