//! Image archives as `kiln inspect`, `kiln load` and `kiln push` read them: the input is
//! written to a file and opened with `ImageReader::open` (docker-archive, OCI archive, either
//! compressed), then `inspect` lists every image and reads every layer (digests, diff_ids,
//! entries). First byte: flags (1: fix tar checksums of the uncompressed archive).
#![no_main]

use kiln::oci::inspect;
use kiln::oci::reader::ImageReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((_, archive)) = kiln_fuzz::tar_input(data) else {
        return;
    };
    let path = kiln_fuzz::scratch_dir().join("image.tar");
    std::fs::write(&path, &archive).expect("write the archive");
    if let Ok(source) = ImageReader::open(&path) {
        let _ = source.docker_entries();
        let _ = source.index_entries();
        let _ = inspect::inspect(&source);
    }
});
