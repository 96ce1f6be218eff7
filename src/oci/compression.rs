//! Layer compression and decompression.
//!
//! Pinned, because every layer digest depends on it (the canary tests below fail if any of it
//! changes, including a dependency unifying another libdeflate build or zstd feature in):
//! - gzip: one gzip member per 256 KiB block of the tar, each block deflated on its own by
//!   libdeflate 1.26 (bundled, `libdeflater` =1.26.1) at level 5, members compressed in
//!   parallel and written in order (see `oci::gzip` for the exact bytes and the measurements
//!   behind the choice). The output is the same for any number of threads; kiln uses every
//!   core. (Before image recipe `image/4`: one member of 128 KiB blocks primed with the
//!   previous 32 KiB, deflated by zlib-rs at level 6.)
//! - zstd: level 3, libzstd 1.5.7 (bundled) in multi-threaded mode, checksum on. zstd's
//!   multi-threaded output does not depend on the worker count but differs from its
//!   single-threaded output, so kiln always runs it multi-threaded, even with one worker.
//! - none: the tar as it is.
//!
//! Reading accepts all three whatever the media type says, by magic number, because images
//! from other tools sometimes store gzip layers under plain tar media types and vice versa.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::str::FromStr;

use super::gzip::ParallelGzip;
use super::spec::media_type;

pub const ZSTD_LEVEL: i32 = 3;

/// How layers are compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Compression {
    #[default]
    Gzip,
    Zstd,
    None,
}

#[derive(Debug, thiserror::Error)]
#[error("unknown compression `{0}`: expected gzip, zstd or none")]
pub struct UnknownCompression(String);

impl FromStr for Compression {
    type Err = UnknownCompression;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            "none" => Ok(Compression::None),
            _ => Err(UnknownCompression(text.to_owned())),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::None => "none",
        })
    }
}

impl Compression {
    /// The OCI layer media type for this compression.
    pub fn oci_layer_media_type(self) -> &'static str {
        match self {
            Compression::Gzip => media_type::OCI_LAYER_GZIP,
            Compression::Zstd => media_type::OCI_LAYER_ZSTD,
            Compression::None => media_type::OCI_LAYER_TAR,
        }
    }

    /// The name of this compression's pinned scheme, which a kept compressed layer is filed
    /// under (`store::layer_cache`): it changes whenever the canaries below do, so a layer
    /// compressed by an earlier scheme is never taken for this one's. `None` for an
    /// uncompressed layer, which is the tar itself.
    pub fn cache_scheme(self) -> Option<&'static str> {
        match self {
            Compression::Gzip => Some(GZIP_SCHEME),
            Compression::Zstd => Some(ZSTD_SCHEME),
            Compression::None => None,
        }
    }
}

/// The gzip scheme of `oci::gzip`: libdeflate 1.26, level 5, a member per 256 KiB block.
pub const GZIP_SCHEME: &str = "gzip-libdeflate1.26-5-256k";
/// zstd's: libzstd 1.5.7, level 3, multi-threaded mode, checksum.
pub const ZSTD_SCHEME: &str = "zstd-1.5.7-3-mt";

/// How many threads compression uses: every core. The bytes do not depend on it.
pub fn compression_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// A compressing writer. Call [`Compressor::finish`]; dropping it discards the stream's end.
pub enum Compressor<W: Write> {
    Gzip(ParallelGzip<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    None(W),
}

impl<W: Write> Compressor<W> {
    pub fn new(compression: Compression, out: W, threads: usize) -> io::Result<Self> {
        let threads = threads.max(1);
        Ok(match compression {
            Compression::Gzip => Compressor::Gzip(ParallelGzip::new(out, threads)?),
            Compression::Zstd => {
                let mut encoder = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
                encoder.multithread(threads as u32)?;
                encoder.include_checksum(true)?;
                Compressor::Zstd(encoder)
            }
            Compression::None => Compressor::None(out),
        })
    }

    /// End the stream and return the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Compressor::Gzip(writer) => writer.finish(),
            Compressor::Zstd(encoder) => encoder.finish(),
            Compressor::None(out) => Ok(out),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Gzip(writer) => writer.write(buf),
            Compressor::Zstd(encoder) => encoder.write(buf),
            Compressor::None(out) => out.write(buf),
        }
    }

    /// Does nothing: a flush in the middle of a gzip stream would end a block early and
    /// change the bytes. The stream is complete after [`Compressor::finish`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A decompressing reader chosen by the stream's first bytes.
pub enum Decompressor<R: Read> {
    Gzip(Box<flate2::bufread::MultiGzDecoder<BufReader<R>>>),
    Zstd(Box<zstd::stream::read::Decoder<'static, BufReader<R>>>),
    None(BufReader<R>),
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

impl<R: Read> Decompressor<R> {
    pub fn new(reader: R) -> io::Result<Self> {
        let mut reader = BufReader::with_capacity(256 * 1024, reader);
        let head = reader.fill_buf()?;
        Ok(if head.starts_with(&GZIP_MAGIC) {
            Decompressor::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(reader)))
        } else if head.starts_with(&ZSTD_MAGIC) {
            Decompressor::Zstd(Box::new(zstd::stream::read::Decoder::with_buffer(reader)?))
        } else {
            Decompressor::None(reader)
        })
    }

    pub fn compression(&self) -> Compression {
        match self {
            Decompressor::Gzip(_) => Compression::Gzip,
            Decompressor::Zstd(_) => Compression::Zstd,
            Decompressor::None(_) => Compression::None,
        }
    }

    /// The underlying reader, positioned wherever decompression stopped.
    pub fn into_inner(self) -> R {
        match self {
            Decompressor::Gzip(decoder) => decoder.into_inner().into_inner(),
            Decompressor::Zstd(decoder) => decoder.finish().into_inner(),
            Decompressor::None(reader) => reader.into_inner(),
        }
    }
}

impl<R: Read> Read for Decompressor<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decompressor::Gzip(decoder) => decoder.read(buf),
            Decompressor::Zstd(decoder) => decoder.read(buf),
            Decompressor::None(reader) => reader.read(buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::digest::Digest;

    /// 3 MiB of mixed input: text-like runs and pseudo-random bytes from a fixed LCG, so
    /// several gzip blocks and zstd jobs are exercised.
    fn canary_input() -> Vec<u8> {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut bytes = Vec::with_capacity(3 << 20);
        while bytes.len() < 3 << 20 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            if (state >> 60) < 10 {
                bytes.extend_from_slice(b"the quick brown fox jumps over the lazy dog ");
            } else {
                bytes.extend_from_slice(&state.to_le_bytes());
            }
        }
        bytes.truncate(3 << 20);
        bytes
    }

    fn compress(compression: Compression, input: &[u8], threads: usize, chunk: usize) -> Vec<u8> {
        let mut compressor = Compressor::new(compression, Vec::new(), threads).unwrap();
        for piece in input.chunks(chunk) {
            compressor.write_all(piece).unwrap();
        }
        compressor.finish().unwrap()
    }

    fn round_trip(compressed: &[u8]) -> Vec<u8> {
        let mut output = Vec::new();
        Decompressor::new(compressed)
            .unwrap()
            .read_to_end(&mut output)
            .unwrap();
        output
    }

    /// The canary: if this fails, every gzip layer digest kiln produces has changed. Check
    /// `cargo tree -i libdeflate-sys -e features` (another version, or the `dynamic` feature
    /// that links the system's libdeflate) and `oci::gzip`'s constants; a deliberate change
    /// bumps the image recipe version (`recipes::image`) and the goldens with it.
    #[test]
    fn gzip_canary() {
        let input = canary_input();
        let one = compress(Compression::Gzip, &input, 1, 4096);
        let two = compress(Compression::Gzip, &input, 2, 1 << 20);
        let four = compress(Compression::Gzip, &input, 4, 77);
        assert_eq!(one, two, "thread count changed the bytes");
        assert_eq!(one, four, "write sizes changed the bytes");
        assert_eq!(round_trip(&one), input);
        assert_eq!(&one[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
        // A new digest here is a new scheme: rename it, so kept layers of the old one are
        // never reused (and bump the image recipe version, `recipes::image`).
        assert_eq!(
            GZIP_SCHEME,
            format!(
                "gzip-libdeflate1.26-{}-{}k",
                super::super::gzip::LEVEL,
                super::super::gzip::BLOCK_SIZE / 1024
            )
        );
        assert_eq!(
            Digest::of(&one).to_string(),
            "sha256:ac9880c4eb55fdc73b762085961e6c08d42da9f3bf7c31e9be9f21119a59a869"
        );
    }

    #[test]
    fn zstd_canary() {
        let input = canary_input();
        let one = compress(Compression::Zstd, &input, 1, 4096);
        let two = compress(Compression::Zstd, &input, 2, 1 << 20);
        assert_eq!(one, two, "worker count changed the bytes");
        assert_eq!(ZSTD_SCHEME, format!("zstd-1.5.7-{ZSTD_LEVEL}-mt"));
        assert_eq!(round_trip(&one), input);
        assert_eq!(
            Digest::of(&one).to_string(),
            "sha256:7e77db7b16d46140e909b703c927ece7ee80f871340f0eb060420500769fe928"
        );
    }

    #[test]
    fn gzip_output_is_read_by_gzip() {
        let input = canary_input();
        let compressed = compress(Compression::Gzip, &input, 2, 65536);
        let mut child = std::process::Command::new("gzip")
            .args(["-d", "-c"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || stdin.write_all(&compressed));
        let output = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        assert!(output.status.success());
        assert_eq!(output.stdout, input);
    }

    #[test]
    fn empty_and_plain_streams() {
        for compression in [Compression::Gzip, Compression::Zstd, Compression::None] {
            let compressed = compress(compression, b"", 2, 1);
            assert_eq!(round_trip(&compressed), b"", "{compression}");
            let decompressor = Decompressor::new(&compressed[..]).unwrap();
            if compression != Compression::None {
                assert_eq!(decompressor.compression(), compression);
            }
        }
        assert_eq!(round_trip(b"plain tar bytes"), b"plain tar bytes");
    }
}
