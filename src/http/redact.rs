//! What a message may show of a URL. Two kinds of secret travel in URLs kiln fetches:
//!
//! - **Userinfo** (`https://user:token@host/`): GOPROXY entries and `KILN_PYPI_URL` carry
//!   credentials this way, as Go and pip accept them. [`redact`] drops it; every message,
//!   log line and kiln.lock entry goes through it.
//! - **Queries**: a registry's upload `Location` carries a session token, and a blob download
//!   redirects to object storage with a signature (`X-Amz-Signature=…`). [`without_queries`]
//!   cuts them out of an error's text, which may quote such a URL anywhere.
//!
//! Text kiln did not write (Go's and git's error messages, which quote the repository URL a
//! user configured with `https://user:token@host/`) goes through [`redact_text`], which drops
//! the userinfo of every URL in it.

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

/// `text` with the userinfo of every `scheme://user:password@host` in it removed, wherever the
/// URL stands (quoted, in parentheses, at the end of a line). The authority ends at the first
/// `/`, `?`, `#`, quote, bracket or white space, so `user@host` in a path is left alone.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(index) = rest.find("://") {
        let start = index + 3;
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let authority_end = rest
            .find(|character: char| {
                character.is_whitespace() || "/?#'\"`<>()[]{}".contains(character)
            })
            .unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            rest = &rest[at + 1..];
        }
    }
    out.push_str(rest);
    out
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
    fn userinfo_is_cut_from_every_url_in_a_text() {
        for (text, shown) in [
            (
                "fatal: could not read Password for 'https://kiln:s3cret@git.corp.example': terminal prompts disabled",
                "fatal: could not read Password for 'https://git.corp.example': terminal prompts disabled",
            ),
            (
                "git ls-remote https://u:p@a.example/x and ssh://git@b.example:22/y (z@c)",
                "git ls-remote https://a.example/x and ssh://b.example:22/y (z@c)",
            ),
            ("https://host/a@b", "https://host/a@b"),
            ("ends with https://t@host", "ends with https://host"),
            ("no url, a@b", "no url, a@b"),
        ] {
            assert_eq!(redact_text(text), shown, "{text}");
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
