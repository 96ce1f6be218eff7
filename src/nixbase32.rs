//! Nix's base32: the alphabet `0123456789abcdfghijklmnpqrsvwxyz` (no `e`, `o`, `u`, `t`),
//! digits taken from the last byte first, as `nix-hash --type sha256 --base32` prints and as
//! store path names carry them.
//!
//! Written here because it is one short function and the only crate with it (nix-compat) is
//! not published.

const ALPHABET: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// Encode `bytes` the way Nix does.
pub fn encode(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return String::new();
    }
    let length = (bytes.len() * 8 - 1) / 5 + 1;
    let mut text = String::with_capacity(length);
    for digit in (0..length).rev() {
        let bit = digit * 5;
        let index = bit / 8;
        let shift = bit % 8;
        let low = u16::from(bytes[index]) >> shift;
        let high = bytes
            .get(index + 1)
            .map_or(0, |byte| u16::from(*byte) << (8 - shift));
        text.push(ALPHABET[usize::from((low | high) & 0x1f)] as char);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors from `echo -n … | nix-hash --type sha256 --flat --base32 /dev/stdin`
    /// (nix 2.8), and the empty string's sha256 as Nix prints it.
    #[test]
    fn matches_nix() {
        use sha2::Digest;
        let empty = sha2::Sha256::digest(b"");
        assert_eq!(
            encode(&empty),
            "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"
        );
        let hello = sha2::Sha256::digest(b"hello");
        assert_eq!(
            encode(&hello),
            "094qif9n4cq4fdg459qzbhg1c6wywawwaaivx0k0x8xhbyx4vwic"
        );
        assert_eq!(encode(&[0xff]), "7z");
        assert_eq!(encode(&[]), "");
    }
}
