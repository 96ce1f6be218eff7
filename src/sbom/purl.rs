//! Package URLs (purls, <https://github.com/package-url/purl-spec>) as the SBOM writes them:
//! `pkg:golang/PATH@VERSION#SUBPATH` for Go modules, programs and the standard library,
//! `pkg:oci/NAME@DIGEST?arch=…&repository_url=…&tag=…` for images.
//!
//! Pinned, so the same module always gets the same purl:
//! - Module purls keep the module path's case (`pkg:golang/github.com/Azure/…`): the purl
//!   type definition asks for lowercase, but Go module paths are case-sensitive (the proxy
//!   escapes capitals as `!a`), so lowercasing would merge distinct modules.
//! - Percent-encoding is packageurl-python's canonical form (unreserved characters and `:`
//!   kept, `/` kept in qualifier values); each path segment is encoded on its own.
//! - An `oci` purl's name is the repository's last path segment, lowercased, as the purl
//!   spec's `oci` type says; qualifiers go sorted by key.

use crate::oci::digest::Digest;
use crate::oci::reference::Reference;
use crate::oci::spec::Platform;

/// Percent-encode for a purl component: unreserved characters and `:` stay (and `/` when
/// `keep_slash`), as packageurl-python writes its canonical form.
pub(super) fn purl_encode(text: &str, keep_slash: bool) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        let keep = byte.is_ascii_alphanumeric()
            || matches!(byte, b'.' | b'-' | b'_' | b'~' | b':')
            || (keep_slash && byte == b'/');
        if keep {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Percent-encode for a URI path: unreserved characters and `/` stay.
pub(super) fn uri_path_encode(text: &str) -> String {
    purl_encode(text, true).replace(':', "%3A")
}

/// `pkg:golang/PATH[@VERSION][#SUBPATH]`, each path segment encoded on its own.
pub(super) fn golang_purl(path: &str, version: Option<&str>, subpath: Option<&str>) -> String {
    let segments = |text: &str| {
        text.split('/')
            .filter(|segment| !segment.is_empty())
            .map(|segment| purl_encode(segment, false))
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut purl = format!("pkg:golang/{}", segments(path));
    if let Some(version) = version {
        purl.push('@');
        purl.push_str(&purl_encode(version, false));
    }
    if let Some(subpath) = subpath.filter(|subpath| !subpath.is_empty()) {
        purl.push('#');
        purl.push_str(&segments(subpath));
    }
    purl
}

/// `pkg:oci/NAME@sha256:HEX?arch=…&repository_url=…&tag=…`, qualifiers sorted by key.
/// `pkg:oci/NAME@DIGEST?arch=…&repository_url=…[&tag=…]` (the purl spec's `oci` type: the
/// last path segment, lowercase, as the name).
pub(super) fn oci_purl(
    image: &Reference,
    digest: &Digest,
    platform: &Platform,
    tag: &str,
) -> String {
    let repository = &image.repository;
    let name = repository.rsplit('/').next().unwrap_or(repository);
    let mut qualifiers = vec![
        format!("arch={}", purl_encode(&platform.architecture, false)),
        format!("repository_url={}", purl_encode(&image.name(), true)),
    ];
    if !tag.is_empty() {
        qualifiers.push(format!("tag={}", purl_encode(tag, false)));
    }
    format!(
        "pkg:oci/{}@{}?{}",
        purl_encode(&name.to_ascii_lowercase(), false),
        purl_encode(&digest.to_string(), false),
        qualifiers.join("&")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_are_encoded_as_packageurl_python_writes_them() {
        assert_eq!(
            golang_purl("example.com/a b~!", Some("v2.0.0+incompatible"), None),
            "pkg:golang/example.com/a%20b~%21@v2.0.0%2Bincompatible"
        );
        assert_eq!(
            golang_purl("example.com/shop", None, Some("cmd/shop")),
            "pkg:golang/example.com/shop#cmd/shop"
        );
        assert_eq!(
            golang_purl("github.com/Azure/go-autorest/v14", Some("v14.2.0"), None),
            "pkg:golang/github.com/Azure/go-autorest/v14@v14.2.0"
        );
    }
}
