//! kiln.lock: parsing, and for a lock that parses, rendering it must give text that parses
//! back to the same lock (kiln rewrites kiln.lock from what it read).
#![no_main]

use std::path::Path;

use kiln::lock::lockfile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("kiln.lock");
    if let Ok(lock) = lockfile::parse(text, file) {
        let rendered = lockfile::render(&lock);
        match lockfile::parse(&rendered, file) {
            Ok(again) => assert_eq!(again, lock, "render changed the lock:\n{rendered}"),
            Err(error) => panic!("a rendered lock does not parse: {error}\n{rendered}"),
        }
    }
});
