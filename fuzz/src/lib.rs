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

/// A folder of this process's own, `$TMPDIR/kiln-fuzz-<pid>`, for targets that read from the
/// filesystem. libFuzzer ends processes with `exit`, which runs no destructors, and its fork
/// mode starts a process per job, so each process first removes the folders of processes
/// that are gone.
pub fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let temp = std::env::temp_dir();
        if let Ok(entries) = std::fs::read_dir(&temp) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(pid) = name
                    .to_str()
                    .and_then(|name| name.strip_prefix("kiln-fuzz-"))
                else {
                    continue;
                };
                if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = temp.join(format!("kiln-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch folder for the fuzz target");
        dir
    })
}
