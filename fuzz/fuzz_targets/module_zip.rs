//! Module zips from a GOPROXY: every check of `modzip::read` (names under `module@version/`,
//! paths, types, duplicates, case-fold collisions, sizes) and the hashes of a zip that passes.
//! The limits are Go's divided by 1024 (512 KiB unpacked, 16 KiB go.mod and LICENSE): the
//! same code paths, without a legitimate 500 MiB module counting as a time-out.
#![no_main]

use kiln::gomod::modzip::{self, ZipLimits};
use libfuzzer_sys::fuzz_target;

const LIMITS: ZipLimits = ZipLimits {
    zip: 512 << 10,
    go_mod: 16 << 10,
    license: 16 << 10,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(module) = modzip::read(data, "example.com/m", "v1.0.0", LIMITS) {
        for file in &module.files {
            assert!(kiln::gomod::filepath::check_file_path(&file.path).is_ok(), "{}", file.path);
        }
        let _ = module.h1();
        let _ = module.nar_hash();
    }
});
