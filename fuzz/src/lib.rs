//! Helpers shared by kiln's fuzz targets.
//!
//! Tar headers carry a checksum, so almost every mutation of a header makes it "not a tar" and
//! the reader stops at the first block. Targets that read tars take a first byte of flags and,
//! when asked, rewrite the checksum of every 512-byte block first, so mutations reach the
//! parsing behind the checksum; inputs without that flag still exercise the checksum check.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Flag: rewrite tar checksums before reading.
pub const FIX_CHECKSUMS: u8 = 1;

const BLOCK: usize = 512;
const CHECKSUM: std::ops::Range<usize> = 148..156;

/// Give every non-zero 512-byte block the checksum it would have as a tar header (as the
/// `tar` crate computes it: the header's bytes summed with the checksum field as spaces,
/// written as six octal digits, a NUL and a space). Content blocks change only in those
/// eight bytes, which is as arbitrary as any other content.
pub fn fix_tar_checksums(bytes: &mut [u8]) {
    for block in bytes.chunks_exact_mut(BLOCK) {
        if block.iter().all(|byte| *byte == 0) {
            continue;
        }
        block[CHECKSUM].fill(b' ');
        let sum: u32 = block.iter().map(|byte| u32::from(*byte)).sum();
        let field = format!("{sum:06o}\0 ");
        block[CHECKSUM].copy_from_slice(&field.as_bytes()[..8]);
    }
}

/// Split a tar target's input into its flags and the archive, fixing checksums if asked.
pub fn tar_input(data: &[u8]) -> Option<(u8, Vec<u8>)> {
    let (&flags, archive) = data.split_first()?;
    let mut archive = archive.to_vec();
    if flags & FIX_CHECKSUMS != 0 {
        fix_tar_checksums(&mut archive);
    }
    Some((flags, archive))
}

/// A folder of this process's own, for targets that read from the filesystem. It lives
/// until the process ends (libFuzzer runs every input in one process).
pub fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("kiln-fuzz-")
            .tempdir()
            .expect("a temporary folder for the fuzz target");
        let path = dir.path().to_owned();
        (dir, path)
    });
    path
}
