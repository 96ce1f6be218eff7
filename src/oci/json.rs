//! Canonical JSON for every document kiln hashes (image config, manifest, index) and for the
//! docker-archive `manifest.json`.
//!
//! The form is pinned: object keys sorted by their UTF-8 bytes at every depth, no whitespace,
//! strings escaped the way `serde_json` escapes them (only `"`, `\` and control characters;
//! other characters as UTF-8), integers without exponent. The value is first turned into a
//! `serde_json::Value`, whose map is a `BTreeMap` as long as serde_json's `preserve_order`
//! feature is off; `canonical_keys_are_sorted` below fails if a dependency ever turns it on.
//!
//! This is not Go's `encoding/json` form (which escapes `<`, `>` and `&` and keeps struct field
//! order): kiln's documents only have to be stable for kiln, and readers accept any JSON.

use serde::Serialize;

/// Serialise `value` to canonical JSON bytes.
pub fn to_canonical_vec<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let value = serde_json::to_value(value)?;
    serde_json::to_vec(&value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Serialize)]
    struct Unsorted {
        zebra: u32,
        apple: Vec<&'static str>,
        middle: HashMap<&'static str, u32>,
    }

    #[test]
    fn canonical_keys_are_sorted() {
        let mut middle = HashMap::new();
        for (index, key) in ["q", "b", "x", "a", "m", "c", "z"].into_iter().enumerate() {
            middle.insert(key, index as u32);
        }
        let bytes = to_canonical_vec(&Unsorted {
            zebra: 1,
            apple: vec!["<&>", "é"],
            middle,
        })
        .unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"apple":["<&>","é"],"middle":{"a":3,"b":1,"c":5,"m":4,"q":0,"x":2,"z":6},"zebra":1}"#
        );
    }
}
