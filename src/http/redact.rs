//! What a message may show of a URL. Two kinds of secret travel in URLs kiln fetches:
//!
//! - **Userinfo** (`https://user:token@host/`): GOPROXY entries and `KILN_PYPI_URL` carry
//!   credentials this way, as Go and pip accept them. [`redact`] drops it; every message,
//!   log line and kiln.lock entry goes through it.
//! - **Queries**: a registry's upload `Location` carries a session token, and a blob download
//!   redirects to object storage with a signature (`X-Amz-Signature=…`). [`without_queries`]
//!   cuts them out of an error's text, which may quote such a URL anywhere.

/// `scheme://userinfo@host/…` → `scheme://host/…`: what every message shows of a URL.
pub fn redact(url: &str) -> String {
    let Some(start) = url.find("://").map(|index| index + 3) else {
        return url.to_owned();
    };
    let authority_end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |index| start + index);
    match url[start..authority_end].rfind('@') {
        Some(at) => format!("{}{}", &url[..start], &url[start + at + 1..]),
        None => url.to_owned(),
    }
}

/// `text` with the query of every URL in it cut off: upload locations carry state tokens and
/// redirects to object storage carry signatures, neither of which belongs in a message.
pub fn without_queries(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_url = false;
    let mut skipping = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if !in_url && (rest.starts_with("http://") || rest.starts_with("https://")) {
            in_url = true;
        }
        if c.is_whitespace() || c == '"' || c == '\'' || c == '>' {
            if skipping {
                out.push_str("?…");
            }
            in_url = false;
            skipping = false;
        } else if in_url && c == '?' {
            skipping = true;
        }
        if !skipping {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    if skipping {
        out.push_str("?…");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_drops_userinfo_only() {
        for (url, shown) in [
            ("https://u:p@host/path", "https://host/path"),
            ("https://a@b@host:8080", "https://host:8080"),
            ("https://host/a@b", "https://host/a@b"),
            ("https://host?to=a@b", "https://host?to=a@b"),
            ("file:///srv", "file:///srv"),
            ("not a url", "not a url"),
            (
                "https://user:token@mirror.example/pypi/certifi/json",
                "https://mirror.example/pypi/certifi/json",
            ),
        ] {
            assert_eq!(redact(url), shown, "{url}");
        }
    }

    #[test]
    fn messages_lose_url_queries() {
        assert_eq!(
            without_queries(
                "io: https://s3.example/blob?X-Amz-Signature=abc&X-Amz-Credential=def failed"
            ),
            "io: https://s3.example/blob?… failed"
        );
        assert_eq!(
            without_queries("PUT http://r/v2/a/blobs/uploads/1?_state=tok"),
            "PUT http://r/v2/a/blobs/uploads/1?…"
        );
        assert_eq!(without_queries("what? no url here"), "what? no url here");
    }
}
