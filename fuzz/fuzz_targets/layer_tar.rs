//! Layer tars as `kiln inspect` reads them: gzip, zstd or plain, then kiln's tar reader
//! (ustar, GNU long names, PAX records), every entry's content read to the end.
//! First byte: flags (1: fix tar checksums, 2: the seeking reader).
#![no_main]

use std::io::{self, Cursor, Read};

use kiln::oci::compression::Decompressor;
use kiln::oci::tar::TarReader;
use libfuzzer_sys::fuzz_target;

fn read_all<R: Read>(mut archive: TarReader<R>) {
    loop {
        match archive.next_entry() {
            Ok(Some(_entry)) => {
                if io::copy(&mut archive.content(), &mut io::sink()).is_err() {
                    return;
                }
            }
            Ok(None) | Err(_) => return,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((flags, archive)) = kiln_fuzz::tar_input(data) else {
        return;
    };
    if flags & 2 != 0 {
        read_all(TarReader::new_seekable(Cursor::new(archive)));
    } else if let Ok(decompressor) = Decompressor::new(Cursor::new(archive)) {
        read_all(TarReader::new(decompressor));
    }
});
