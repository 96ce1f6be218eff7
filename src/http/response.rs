//! Reading an answer: the status as messages show it, and a body read to a limit.

use std::io::Read;

use super::HttpError;

/// `404 Not Found`: the code and its canonical reason (the server's own reason phrase is not
/// shown, so a message does not depend on it), or the bare code for one without a reason.
pub fn status_text(status: ureq::http::StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// The whole body of `response`, at most `limit` bytes: a declared `Content-Length` over the
/// limit is refused before reading, and a body without one is never buffered beyond
/// `limit + 1` bytes. Memory is reserved for the declared length up to 64 MiB, so a lying
/// header cannot make kiln allocate more than that up front.
pub fn read_limited(
    response: ureq::http::Response<ureq::Body>,
    limit: u64,
) -> Result<Vec<u8>, HttpError> {
    let declared = response.body().content_length();
    if declared.is_some_and(|length| length > limit) {
        return Err(HttpError::TooLarge { limit });
    }
    let capacity = declared.unwrap_or(0).min(limit).min(64 << 20);
    let mut bytes = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    response
        .into_body()
        .into_reader()
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(HttpError::Read)?;
    if bytes.len() as u64 > limit {
        return Err(HttpError::TooLarge { limit });
    }
    Ok(bytes)
}
