//! Signing keys of the shared build cache, in Nix's formats, and the fingerprint they sign.
//!
//! Keys are ed25519, written as Nix writes them (`nix key generate-secret`,
//! `nix key convert-secret-to-public`), so one key can serve both tools:
//!
//! ```text
//! secret key (a file, mode 0600):  NAME:base64(seed[32] || public[32])
//! public key (trusted keys):       NAME:base64(public[32])
//! signature (in a cache entry):    {"key": NAME, "sig": base64(signature[64])}
//! ```
//!
//! Base64 is the standard alphabet with padding. NAME is the key's name (say
//! `ci.example.com-1`): non-empty, without `:`, whitespace or `,`. A trusted key is looked up
//! by the name a signature carries, then the signature is checked against its bytes.
//!
//! What is signed is the fingerprint of an entry ([`fingerprint`]), one line of ASCII:
//!
//! ```text
//! kiln-cache-1;<store name>;<NAR hash, SRI>;<NAR size>;<recipe hash>
//! ```
//!
//! for example `kiln-cache-1;0a1b…-app-0.1.tar;sha256-Zm9v…=;10496;sha256:3f2e…`. The store
//! name is `<hash>-<name>` as under `store/`; the recipe hash is `sha256:` and the hex sha256
//! of the recipe's canonical JSON (the store name's hash is its first 160 bits). So a
//! signature vouches that this recipe made content with this NAR hash, under this name: it
//! cannot be moved to another output, and content that does not hash to the NAR hash is
//! refused whatever its signature.
//!
//! ed25519 is ring's (already kiln's TLS crypto provider). The secret key is read from its
//! file, held in memory and never printed: [`SecretKey`]'s `Debug` shows only its name.

use base64::Engine as _;
use ring::rand::SecureRandom as _;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The first field of every fingerprint: the version of what is signed.
pub const FINGERPRINT_VERSION: &str = "kiln-cache-1";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{what} `{text}` is not NAME:BASE64")]
    Form { what: &'static str, text: String },
    #[error("{what} `{name}`: the key name must not be empty or hold `:`, `,` or whitespace")]
    Name { what: &'static str, name: String },
    #[error("{what} `{name}`: the key is not valid base64")]
    Base64 { what: &'static str, name: String },
    #[error("{what} `{name}`: the key is {got} bytes, and an ed25519 {what} is {want}")]
    Length {
        what: &'static str,
        name: String,
        got: usize,
        want: usize,
    },
    #[error("secret key `{name}`: its public half does not belong to its secret half")]
    Mismatch { name: String },
    #[error("the system's random number generator failed")]
    Random,
}

/// A public key others' entries are checked with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    pub name: String,
    bytes: [u8; 32],
}

/// A secret key entries are signed with.
pub struct SecretKey {
    name: String,
    pair: Ed25519KeyPair,
    seed: [u8; 32],
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "SecretKey({}: <secret>)", self.name)
    }
}

/// A signature as an entry carries it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Signature {
    pub key: String,
    pub sig: String,
}

fn split<'t>(what: &'static str, text: &'t str) -> Result<(&'t str, Vec<u8>), KeyError> {
    let text = text.trim();
    let (name, encoded) = text.split_once(':').ok_or_else(|| KeyError::Form {
        what,
        text: if what == "secret key" {
            "…".to_owned()
        } else {
            text.to_owned()
        },
    })?;
    check_name(what, name)?;
    let bytes = BASE64.decode(encoded).map_err(|_| KeyError::Base64 {
        what,
        name: name.to_owned(),
    })?;
    Ok((name, bytes))
}

fn check_name(what: &'static str, name: &str) -> Result<(), KeyError> {
    if name.is_empty()
        || name
            .chars()
            .any(|character| character == ':' || character == ',' || character.is_whitespace())
    {
        return Err(KeyError::Name {
            what,
            name: name.to_owned(),
        });
    }
    Ok(())
}

impl PublicKey {
    /// Parse `NAME:BASE64` (32 bytes).
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let (name, bytes) = split("public key", text)?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|bytes: Vec<u8>| KeyError::Length {
                what: "public key",
                name: name.to_owned(),
                got: bytes.len(),
                want: 32,
            })?;
        Ok(PublicKey {
            name: name.to_owned(),
            bytes,
        })
    }

    /// Parse a space-separated list (`KILN_CACHE_TRUSTED_KEYS`), as Nix's
    /// `trusted-public-keys`.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, KeyError> {
        text.split_whitespace().map(Self::parse).collect()
    }

    /// Whether `signature` (base64) is this key's over `message`.
    pub fn verifies(&self, message: &[u8], signature: &str) -> bool {
        let Ok(raw) = BASE64.decode(signature) else {
            return false;
        };
        UnparsedPublicKey::new(&ED25519, &self.bytes)
            .verify(message, &raw)
            .is_ok()
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}:{}", self.name, BASE64.encode(self.bytes))
    }
}

impl SecretKey {
    /// A new key named `name`, from the system's random number generator.
    pub fn generate(name: &str) -> Result<Self, KeyError> {
        check_name("secret key", name)?;
        let mut seed = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut seed)
            .map_err(|_| KeyError::Random)?;
        Self::from_seed(name, seed)
    }

    fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| KeyError::Length {
            what: "secret key",
            name: name.to_owned(),
            got: 32,
            want: 64,
        })?;
        Ok(SecretKey {
            name: name.to_owned(),
            pair,
            seed,
        })
    }

    /// Parse `NAME:BASE64` (64 bytes: the seed, then the public key), as a secret key file
    /// holds it. The text is never repeated in an error.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let (name, bytes) = split("secret key", text)?;
        if bytes.len() != 64 {
            return Err(KeyError::Length {
                what: "secret key",
                name: name.to_owned(),
                got: bytes.len(),
                want: 64,
            });
        }
        let (seed, public) = bytes.split_at(32);
        let pair = Ed25519KeyPair::from_seed_and_public_key(seed, public).map_err(|_| {
            KeyError::Mismatch {
                name: name.to_owned(),
            }
        })?;
        let mut seed_bytes = [0u8; 32];
        seed_bytes.copy_from_slice(seed);
        Ok(SecretKey {
            name: name.to_owned(),
            pair,
            seed: seed_bytes,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The text a secret key file holds (with no newline).
    pub fn to_file_text(&self) -> String {
        let mut bytes = self.seed.to_vec();
        bytes.extend_from_slice(self.pair.public_key().as_ref());
        format!("{}:{}", self.name, BASE64.encode(bytes))
    }

    pub fn public(&self) -> PublicKey {
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey {
            name: self.name.clone(),
            bytes,
        }
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature {
            key: self.name.clone(),
            sig: BASE64.encode(self.pair.sign(message).as_ref()),
        }
    }
}

/// What an entry's signature covers (see the module documentation).
pub fn fingerprint(store_name: &str, nar_hash: &str, nar_size: u64, recipe_hash: &str) -> String {
    format!("{FINGERPRINT_VERSION};{store_name};{nar_hash};{nar_size};{recipe_hash}")
}

/// Why an entry's signatures are not enough.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Untrusted {
    Unsigned,
    /// Signed only by keys not among the trusted ones (their names).
    UntrustedKeys(Vec<String>),
    /// A trusted key's name carries a signature that its key does not verify.
    BadSignature(String),
}

impl std::fmt::Display for Untrusted {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Untrusted::Unsigned => formatter.write_str("it is not signed"),
            Untrusted::UntrustedKeys(names) => write!(
                formatter,
                "it is signed only by untrusted keys ({}; KILN_CACHE_TRUSTED_KEYS has none of them)",
                names.join(", ")
            ),
            Untrusted::BadSignature(name) => write!(
                formatter,
                "its signature by trusted key `{name}` does not verify (the entry was altered, or signed for other content)"
            ),
        }
    }
}

/// The trusted key that signed `fingerprint`, or why none did.
pub fn check_signatures<'k>(
    fingerprint: &str,
    signatures: &[Signature],
    trusted: &'k [PublicKey],
) -> Result<&'k PublicKey, Untrusted> {
    if signatures.is_empty() {
        return Err(Untrusted::Unsigned);
    }
    let mut bad = None;
    for signature in signatures {
        for key in trusted.iter().filter(|key| key.name == signature.key) {
            if key.verifies(fingerprint.as_bytes(), &signature.sig) {
                return Ok(key);
            }
            bad.get_or_insert_with(|| key.name.clone());
        }
    }
    match bad {
        Some(name) => Err(Untrusted::BadSignature(name)),
        None => Err(Untrusted::UntrustedKeys(
            signatures
                .iter()
                .map(|signature| signature.key.clone())
                .collect(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032, section 7.1, test 1: the seed, its public key and the signature of the
    /// empty message.
    const RFC_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const RFC_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    const RFC_SIGNATURE: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

    fn rfc_key() -> SecretKey {
        let seed: [u8; 32] = hex::decode(RFC_SEED).unwrap().try_into().unwrap();
        SecretKey::from_seed("test-1", seed).unwrap()
    }

    #[test]
    fn keys_are_in_nix_formats() {
        let key = rfc_key();
        let mut secret = hex::decode(RFC_SEED).unwrap();
        secret.extend(hex::decode(RFC_PUBLIC).unwrap());
        assert_eq!(
            key.to_file_text(),
            format!("test-1:{}", BASE64.encode(&secret))
        );
        assert_eq!(
            key.public().to_string(),
            format!("test-1:{}", BASE64.encode(hex::decode(RFC_PUBLIC).unwrap()))
        );
        // Round trips, with the newline a file may end with.
        let again = SecretKey::parse(&format!("{}\n", key.to_file_text())).unwrap();
        assert_eq!(again.public(), key.public());
        assert_eq!(
            PublicKey::parse(&key.public().to_string()).unwrap(),
            key.public()
        );
        assert_eq!(format!("{key:?}"), "SecretKey(test-1: <secret>)");
    }

    #[test]
    fn signatures_are_rfc_8032s() {
        let signature = rfc_key().sign(b"");
        assert_eq!(signature.key, "test-1");
        assert_eq!(
            BASE64.decode(&signature.sig).unwrap(),
            hex::decode(RFC_SIGNATURE).unwrap()
        );
        assert!(rfc_key().public().verifies(b"", &signature.sig));
        assert!(!rfc_key().public().verifies(b"x", &signature.sig));
    }

    #[test]
    fn malformed_keys_are_refused_without_repeating_secrets() {
        let public = rfc_key().public().to_string();
        let secret = rfc_key().to_file_text();
        let cases: &[(&str, bool, &str)] = &[
            ("no-colon", false, "is not NAME:BASE64"),
            (":AAAA", false, "must not be empty"),
            ("a b:AAAA", false, "must not be empty"),
            ("k:!!!", false, "not valid base64"),
            (
                "k:AAAA",
                false,
                "is 3 bytes, and an ed25519 public key is 32",
            ),
            (
                &public,
                true,
                "is 32 bytes, and an ed25519 secret key is 64",
            ),
            ("k-secret-no-colon", true, "`…` is not NAME:BASE64"),
        ];
        for (text, is_secret, needle) in cases {
            let error = if *is_secret {
                SecretKey::parse(text).unwrap_err().to_string()
            } else {
                PublicKey::parse(text).unwrap_err().to_string()
            };
            assert!(error.contains(needle), "{text}: {error}");
            assert!(!error.contains("k-secret-no-colon"), "{error}");
        }
        // A secret half with someone else's public half.
        let mut bytes = BASE64.decode(secret.split_once(':').unwrap().1).unwrap();
        bytes[63] ^= 1;
        let error = SecretKey::parse(&format!("test-1:{}", BASE64.encode(bytes))).unwrap_err();
        assert!(matches!(error, KeyError::Mismatch { .. }), "{error}");
        assert_eq!(
            PublicKey::parse_list(&format!("  {public}   {public}\n"))
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn the_fingerprint_is_pinned() {
        assert_eq!(
            fingerprint("abc-app-0.1", "sha256-AAAA", 42, "sha256:00ff"),
            "kiln-cache-1;abc-app-0.1;sha256-AAAA;42;sha256:00ff"
        );
        let key = rfc_key();
        let text = fingerprint("abc-app-0.1", "sha256-AAAA", 42, "sha256:00ff");
        // ed25519 is deterministic: a pinned signature catches a change of what is signed.
        assert_eq!(
            key.sign(text.as_bytes()).sig,
            rfc_key().sign(text.as_bytes()).sig
        );
    }

    #[test]
    fn trust_is_decided_by_name_then_signature() {
        let trusted_key = rfc_key();
        let other = SecretKey::from_seed("other-1", [7u8; 32]).unwrap();
        let impostor = SecretKey::from_seed("test-1", [9u8; 32]).unwrap();
        let trusted = [trusted_key.public()];
        let message = "kiln-cache-1;x;y;1;z";
        let good = trusted_key.sign(message.as_bytes());
        assert_eq!(
            check_signatures(message, std::slice::from_ref(&good), &trusted),
            Ok(&trusted[0])
        );
        assert_eq!(
            check_signatures(message, &[], &trusted),
            Err(Untrusted::Unsigned)
        );
        assert_eq!(
            check_signatures(message, &[other.sign(message.as_bytes())], &trusted),
            Err(Untrusted::UntrustedKeys(vec!["other-1".into()]))
        );
        assert_eq!(
            check_signatures(message, &[impostor.sign(message.as_bytes())], &trusted),
            Err(Untrusted::BadSignature("test-1".into()))
        );
        // The good signature over another fingerprint.
        assert_eq!(
            check_signatures(
                "kiln-cache-1;x;y;2;z",
                std::slice::from_ref(&good),
                &trusted
            ),
            Err(Untrusted::BadSignature("test-1".into()))
        );
        // One good signature among others is enough.
        assert_eq!(
            check_signatures(message, &[other.sign(message.as_bytes()), good], &trusted),
            Ok(&trusted[0])
        );
    }
}
