//! Content digests as the OCI image spec writes them: `sha256:` followed by 64 lowercase hex
//! digits.
//!
//! Only `sha256` is accepted. The spec also registers `sha512`, but no engine or registry that
//! kiln targets produces it, and refusing it loudly is better than mis-verifying it. Parsing is
//! strict (lowercase hex, exact length) because a digest read from an image names a file path
//! (`blobs/sha256/<hex>`): anything looser would let a hostile `index.json` point outside
//! `blobs/`.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// A sha256 content digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("invalid digest `{0}`: expected `sha256:` followed by 64 lowercase hex digits")]
    Malformed(String),
    #[error("unsupported digest algorithm in `{0}`: kiln reads sha256 digests only")]
    UnsupportedAlgorithm(String),
}

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Digest(Sha256::digest(bytes).into())
    }

    pub fn from_raw(raw: [u8; 32]) -> Self {
        Digest(raw)
    }

    /// The 32 bytes of the sha256.
    pub fn raw(&self) -> [u8; 32] {
        self.0
    }

    /// The 64 hex digits, which are also the blob's file name in an OCI layout.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// `blobs/sha256/<hex>`: where an OCI layout keeps this blob.
    pub fn blob_path(&self) -> String {
        format!("blobs/sha256/{}", self.hex())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some((algorithm, encoded)) = text.split_once(':') else {
            return Err(DigestError::Malformed(text.to_owned()));
        };
        if algorithm != "sha256" {
            let known_shape = !algorithm.is_empty()
                && algorithm
                    .bytes()
                    .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'+');
            return Err(if known_shape {
                DigestError::UnsupportedAlgorithm(text.to_owned())
            } else {
                DigestError::Malformed(text.to_owned())
            });
        }
        let valid = encoded.len() == 64
            && encoded
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
        if !valid {
            return Err(DigestError::Malformed(text.to_owned()));
        }
        let mut raw = [0u8; 32];
        hex::decode_to_slice(encoded, &mut raw)
            .map_err(|_| DigestError::Malformed(text.to_owned()))?;
        Ok(Digest(raw))
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A writer that hashes and counts everything passing through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// The inner writer, the digest of what was written and its length.
    pub fn finish(self) -> (W, Digest, u64) {
        (
            self.inner,
            Digest(self.hasher.finalize().into()),
            self.bytes,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A writer that hashes and counts everything passing through it, as [`HashingWriter`] does,
/// with the hashing on a thread of its own: for the large streams of a build (a program's
/// layer, a NAR of its output), where sha256 at ~1.5 GB/s costs more than the writing, so the
/// two overlap on two cores. The bytes hashed are the bytes handed to `inner`: each write's
/// accepted prefix is copied into a 1 MiB chunk, and full chunks go to the hashing thread in
/// order (at most [`BACKGROUND_CHUNKS`] in flight, so memory stays bounded).
pub struct BackgroundHashingWriter<W> {
    /// `None` only once finished.
    inner: Option<W>,
    chunk: Vec<u8>,
    bytes: u64,
    allocated: usize,
    full: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    empty: std::sync::mpsc::Receiver<Vec<u8>>,
    worker: Option<std::thread::JoinHandle<Sha256>>,
}

const BACKGROUND_CHUNK: usize = 1 << 20;
/// Chunks a [`BackgroundHashingWriter`] allocates at most (one filling, the rest queued or
/// being hashed).
pub const BACKGROUND_CHUNKS: usize = 4;

impl<W: Write> BackgroundHashingWriter<W> {
    /// Fails only when no thread can be started.
    pub fn new(inner: W) -> io::Result<Self> {
        let (full, chunks) = std::sync::mpsc::sync_channel::<Vec<u8>>(BACKGROUND_CHUNKS);
        let (recycle, empty) = std::sync::mpsc::sync_channel::<Vec<u8>>(BACKGROUND_CHUNKS);
        let worker = std::thread::Builder::new()
            .name("kiln-sha256".to_owned())
            .spawn(move || {
                let mut hasher = Sha256::new();
                for mut chunk in chunks {
                    hasher.update(&chunk);
                    chunk.clear();
                    // The writer may be gone (finished or dropped): the chunk is then freed.
                    let _ = recycle.try_send(chunk);
                }
                hasher
            })?;
        Ok(BackgroundHashingWriter {
            inner: Some(inner),
            chunk: Vec::with_capacity(BACKGROUND_CHUNK),
            bytes: 0,
            allocated: 1,
            full: Some(full),
            empty,
            worker: Some(worker),
        })
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Hand the filled chunk to the hashing thread and take an empty one.
    fn send_chunk(&mut self) -> io::Result<()> {
        let next = match self.empty.try_recv() {
            Ok(chunk) => chunk,
            Err(_) if self.allocated < BACKGROUND_CHUNKS => {
                self.allocated += 1;
                Vec::with_capacity(BACKGROUND_CHUNK)
            }
            Err(_) => self.empty.recv().map_err(|_| hashing_thread_gone())?,
        };
        let full = std::mem::replace(&mut self.chunk, next);
        self.full
            .as_ref()
            .ok_or_else(hashing_thread_gone)?
            .send(full)
            .map_err(|_| hashing_thread_gone())
    }

    /// The inner writer, the digest of what was written and its length.
    pub fn finish(mut self) -> io::Result<(W, Digest, u64)> {
        if !self.chunk.is_empty() {
            let last = std::mem::take(&mut self.chunk);
            self.full
                .as_ref()
                .ok_or_else(hashing_thread_gone)?
                .send(last)
                .map_err(|_| hashing_thread_gone())?;
        }
        drop(self.full.take());
        let hasher = self
            .worker
            .take()
            .ok_or_else(hashing_thread_gone)?
            .join()
            .map_err(|_| hashing_thread_gone())?;
        let inner = self.inner.take().ok_or_else(hashing_thread_gone)?;
        Ok((inner, Digest(hasher.finalize().into()), self.bytes))
    }
}

fn hashing_thread_gone() -> io::Error {
    io::Error::other("the sha256 thread stopped")
}

impl<W: Write> Write for BackgroundHashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let inner = self.inner.as_mut().ok_or_else(hashing_thread_gone)?;
        let written = inner.write(buf)?;
        let mut rest = &buf[..written];
        while !rest.is_empty() {
            let room = BACKGROUND_CHUNK - self.chunk.len();
            let (now, later) = rest.split_at(room.min(rest.len()));
            self.chunk.extend_from_slice(now);
            rest = later;
            if self.chunk.len() == BACKGROUND_CHUNK {
                self.send_chunk()?;
            }
        }
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.inner.as_mut() {
            Some(inner) => inner.flush(),
            None => Ok(()),
        }
    }
}

impl<W> Drop for BackgroundHashingWriter<W> {
    fn drop(&mut self) {
        // Unfinished (an error on the way): stop the thread; what it hashed is thrown away.
        drop(self.full.take());
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// A reader that hashes and counts everything read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The inner reader, the digest of what was read and its length.
    pub fn finish(self) -> (R, Digest, u64) {
        (
            self.inner,
            Digest(self.hasher.finalize().into()),
            self.bytes,
        )
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.hasher.update(&buf[..read]);
        self.bytes += read as u64;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most 1000 bytes a call, as a pipe may.
    struct Partial(Vec<u8>);

    impl Write for Partial {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let taken = buf.len().min(1000);
            self.0.extend_from_slice(&buf[..taken]);
            Ok(taken)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn background_hashing_hashes_exactly_what_the_inner_writer_took() {
        let chunk = BACKGROUND_CHUNK;
        for size in [0, 1, chunk - 1, chunk, chunk + 1, 7 * chunk + 12_345] {
            let bytes: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
            // Whole writes, odd-sized writes and a writer that takes part of each write.
            let mut whole = BackgroundHashingWriter::new(Vec::new()).unwrap();
            whole.write_all(&bytes).unwrap();
            let (out, digest, length) = whole.finish().unwrap();
            assert_eq!(
                (out.as_slice(), digest, length),
                (bytes.as_slice(), Digest::of(&bytes), size as u64)
            );
            let mut pieces = BackgroundHashingWriter::new(Partial(Vec::new())).unwrap();
            for piece in bytes.chunks(8191) {
                pieces.write_all(piece).unwrap();
            }
            assert_eq!(pieces.bytes(), size as u64);
            let (out, digest, length) = pieces.finish().unwrap();
            assert_eq!(out.0, bytes);
            assert_eq!(
                (digest, length),
                (Digest::of(&bytes), size as u64),
                "{size} bytes"
            );
        }
        // Dropped unfinished: the thread stops, nothing hangs.
        let mut dropped = BackgroundHashingWriter::new(io::sink()).unwrap();
        dropped.write_all(&vec![7; 3 * chunk]).unwrap();
        drop(dropped);
    }

    #[test]
    fn digest_of_empty_input() {
        assert_eq!(
            Digest::of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parse_round_trips() {
        let text = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let digest: Digest = text.parse().unwrap();
        assert_eq!(digest.to_string(), text);
        assert_eq!(
            digest.blob_path(),
            "blobs/sha256/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parse_rejects() {
        let cases = [
            (
                "no colon",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            (
                "uppercase hex",
                "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            ),
            ("short", "sha256:e3b0c442"),
            (
                "path traversal",
                "sha256:../../../../etc/passwd/000000000000000000000000000000000000000000",
            ),
            ("empty", ""),
            (
                "trailing newline",
                "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n",
            ),
        ];
        for (name, text) in cases {
            assert!(
                matches!(text.parse::<Digest>(), Err(DigestError::Malformed(_))),
                "{name}: {text:?} should be malformed"
            );
        }
        assert!(matches!(
            "sha512:abcd".parse::<Digest>(),
            Err(DigestError::UnsupportedAlgorithm(_))
        ));
    }

    #[test]
    fn hashing_writer_and_reader_agree() {
        let mut writer = HashingWriter::new(Vec::new());
        writer.write_all(b"hello ").unwrap();
        writer.write_all(b"world").unwrap();
        let (bytes, written_digest, written) = writer.finish();
        let mut reader = HashingReader::new(&bytes[..]);
        io::copy(&mut reader, &mut io::sink()).unwrap();
        let (_, read_digest, read) = reader.finish();
        assert_eq!(written_digest, Digest::of(b"hello world"));
        assert_eq!(read_digest, written_digest);
        assert_eq!((written, read), (11, 11));
    }
}
