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
