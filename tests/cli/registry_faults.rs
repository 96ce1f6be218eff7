//! `kiln push` against an in-process fake registry that misbehaves on purpose: 5xx answers,
//! a connection dropped in the middle of an upload, 413 for a blob in one PUT, Basic and
//! Bearer authentication. The fake speaks enough of the OCI distribution spec, answers as the
//! CNCF distribution registry does (an empty upload session reports `Range: 0-0`; a manifest
//! naming a blob the repository lacks is refused), and records every request and what it
//! stored, so the tests can say what went over the wire.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine;
use kiln::oci::digest::Digest;
use serde_json::Value;

use crate::harness::*;

/// The repository every test pushes to.
const REPOSITORY: &str = "app";

// ------------------------------------------------------------------------------------------
// The fake registry
// ------------------------------------------------------------------------------------------

/// One request as the fake saw it, and what it answered.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    /// The path, without the query.
    path: String,
    /// The query, percent-decoded.
    query: HashMap<String, String>,
    /// Header names in lower case.
    headers: HashMap<String, String>,
    /// The body bytes the fake read: all of them, unless it dropped the connection.
    body_len: usize,
    /// The status answered; 0 when the fake dropped the connection instead.
    status: u16,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    fn line(&self) -> String {
        let query = if self.query.is_empty() {
            String::new()
        } else {
            let mut pairs: Vec<String> = self
                .query
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect();
            pairs.sort();
            format!("?{}", pairs.join("&"))
        };
        format!(
            "{} {}{query} [{} bytes] -> {}",
            self.method, self.path, self.body_len, self.status
        )
    }
}

#[derive(Clone, Debug, Default)]
enum Auth {
    #[default]
    Anonymous,
    /// Every request must carry these credentials as Basic auth.
    Basic { user: String, password: String },
    /// Every `/v2/` request must carry `Bearer TOKEN`; `/token` hands TOKEN out for these
    /// credentials (as Basic auth).
    Bearer {
        user: String,
        password: String,
        token: String,
    },
}

/// What the fake does wrong, on purpose.
#[derive(Debug, Default)]
struct Faults {
    /// Answer 500 to this many upload-opening POSTs (counted across all blobs).
    post_500: usize,
    /// Answer 500 to the first this-many upload-closing PUTs of each blob.
    blob_put_500_each: usize,
    /// Answer 500 to every upload-closing PUT of this digest.
    blob_put_500_always: Option<String>,
    /// Answer 500 to this many manifest PUTs (`usize::MAX`: always).
    manifest_put_500: usize,
    /// Once: close the connection after reading this many bytes of an upload body longer
    /// than that. The bytes read stay in the session, as a registry writing to storage
    /// while it reads would keep them.
    drop_upload_after: Option<usize>,
    /// Answer 413 to a PUT that carries the blob itself (a monolithic upload).
    reject_monolithic: bool,
    /// Support the referrers API: answer a manifest PUT that names a `subject` with
    /// `OCI-Subject` (distribution spec v1.1). Without it the fake is a registry of the older
    /// kind, which stores `subject` as any other field.
    referrers_api: bool,
    auth: Auth,
}

#[derive(Default)]
struct State {
    faults: Faults,
    log: Vec<Seen>,
    /// `REPOSITORY@DIGEST` → bytes.
    blobs: HashMap<String, Vec<u8>>,
    /// `REPOSITORY:REFERENCE` (a tag or a digest) → (media type, bytes).
    manifests: HashMap<String, (String, Vec<u8>)>,
    /// Upload session id → the bytes received so far.
    sessions: HashMap<String, Vec<u8>>,
    /// Upload-closing PUTs seen, per digest.
    blob_puts: HashMap<String, usize>,
    sessions_opened: usize,
}

struct Fake {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl Fake {
    fn start(faults: Faults) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            faults,
            ..State::default()
        }));
        let shared = Arc::clone(&state);
        // The listener lives as long as the test process; each test has its own port.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, &shared, port));
            }
        });
        Fake { port, state }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn log(&self) -> Vec<Seen> {
        self.state().log.clone()
    }

    /// The log, one request a line, for assertion messages.
    fn transcript(&self) -> String {
        self.log()
            .iter()
            .map(Seen::line)
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn count(&self, method: &str, path_part: &str) -> usize {
        self.log()
            .iter()
            .filter(|seen| seen.method == method && seen.path.contains(path_part))
            .count()
    }

    fn manifest(&self, reference: &str) -> Option<Vec<u8>> {
        self.state()
            .manifests
            .get(&format!("{REPOSITORY}:{reference}"))
            .map(|(_, bytes)| bytes.clone())
    }

    fn blob(&self, digest: &str) -> Option<Vec<u8>> {
        self.state()
            .blobs
            .get(&format!("{REPOSITORY}@{digest}"))
            .cloned()
    }
}

/// An answer.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn new(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self.header("Content-Type", content_type)
    }

    /// A distribution-spec error: `{"errors":[{"code","message"}]}`.
    fn error(status: u16, code: &str, message: &str) -> Self {
        let body = serde_json::json!({"errors": [{"code": code, "message": message}]});
        Reply::new(status).body("application/json", body.to_string())
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        _ => "Whatever",
    }
}

/// One connection: one request, one answer, then close.
fn serve(stream: TcpStream, state: &Mutex<State>, port: u16) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path.to_owned(), parse_query(query)),
        None => (target.clone(), HashMap::new()),
    };
    let chunked = headers
        .get("transfer-encoding")
        .is_some_and(|value| value.to_ascii_lowercase().contains("chunked"));
    let length: usize = headers
        .get("content-length")
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    let lock = || state.lock().unwrap_or_else(|poison| poison.into_inner());

    // The dropped connection: read part of an upload body, keep it, hang up.
    let is_upload_body = (method == "PUT" || method == "PATCH") && path.contains("/blobs/uploads/");
    let drop_at = {
        let mut state = lock();
        match state.faults.drop_upload_after {
            Some(limit) if is_upload_body && !chunked && length > limit => {
                state.faults.drop_upload_after = None;
                Some(limit)
            }
            _ => None,
        }
    };
    if let Some(limit) = drop_at {
        let mut body = vec![0; limit];
        reader.read_exact(&mut body).unwrap();
        let mut state = lock();
        let session = path.rsplit('/').next().unwrap_or_default();
        if let Some(received) = state.sessions.get_mut(session) {
            received.extend_from_slice(&body);
        }
        state.log.push(Seen {
            method,
            path,
            query,
            headers,
            body_len: limit,
            status: 0,
        });
        drop(state);
        let _ = stream.shutdown(Shutdown::Both);
        return;
    }

    let body = if chunked {
        read_chunked(&mut reader)
    } else {
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        body
    };
    let reply = {
        let mut state = lock();
        let reply = handle(&mut state, port, &method, &path, &query, &headers, &body);
        state.log.push(Seen {
            method: method.clone(),
            path,
            query,
            headers,
            body_len: body.len(),
            status: reply.status,
        });
        reply
    };
    let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if reply.status != 204
        && !reply
            .headers
            .iter()
            .any(|(name, _)| name == "Content-Length")
    {
        head.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    let _ = stream.write_all(head.as_bytes());
    if method != "HEAD" {
        let _ = stream.write_all(&reply.body);
    }
    let _ = stream.flush();
}

fn read_chunked(reader: &mut impl BufRead) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return body;
        }
        let size =
            usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
        if size == 0 {
            // Trailers, then the blank line.
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    return body;
                }
            }
        }
        let mut chunk = vec![0; size + 2];
        if reader.read_exact(&mut chunk).is_err() {
            return body;
        }
        body.extend_from_slice(&chunk[..size]);
    }
}

fn parse_query(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' if index + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3])
                    .ok()
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                match hex {
                    Some(byte) => {
                        out.push(byte);
                        index += 3;
                    }
                    None => {
                        out.push(b'%');
                        index += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                index += 1;
            }
            byte => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn handle(
    state: &mut State,
    port: u16,
    method: &str,
    path: &str,
    query: &HashMap<String, String>,
    headers: &HashMap<String, String>,
    body: &[u8],
) -> Reply {
    let authorization = headers.get("authorization").map(String::as_str);
    if path == "/token" {
        return match &state.faults.auth {
            Auth::Bearer {
                user,
                password,
                token,
            } if authorization == Some(basic(user, password).as_str()) => Reply::new(200).body(
                "application/json",
                serde_json::json!({"token": token}).to_string(),
            ),
            Auth::Bearer { .. } => Reply::error(401, "UNAUTHORIZED", "bad credentials"),
            _ => Reply::new(404),
        };
    }
    match &state.faults.auth {
        Auth::Anonymous => {}
        Auth::Basic { user, password } => {
            if authorization != Some(basic(user, password).as_str()) {
                return Reply::error(401, "UNAUTHORIZED", "authentication required")
                    .header("WWW-Authenticate", r#"Basic realm="fake""#);
            }
        }
        Auth::Bearer { token, .. } => {
            if authorization != Some(format!("Bearer {token}").as_str()) {
                let mut challenge =
                    format!(r#"Bearer realm="http://127.0.0.1:{port}/token",service="fake""#);
                if path != "/v2/" {
                    challenge.push_str(&format!(r#",scope="repository:{REPOSITORY}:pull,push""#));
                }
                return Reply::error(401, "UNAUTHORIZED", "authentication required")
                    .header("WWW-Authenticate", challenge);
            }
        }
    }
    if path == "/v2/" || path == "/v2" {
        return Reply::new(200).body("application/json", "{}");
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return Reply::new(404);
    };
    if let Some((name, session)) = rest.split_once("/blobs/uploads/") {
        return upload(state, method, name, session, query, headers, body);
    }
    if let Some((name, digest)) = rest.rsplit_once("/blobs/") {
        let Some(bytes) = state.blobs.get(&format!("{name}@{digest}")) else {
            return Reply::error(404, "BLOB_UNKNOWN", "blob unknown to registry");
        };
        return match method {
            "HEAD" | "GET" => Reply::new(200)
                .body("application/octet-stream", bytes.clone())
                .header("Docker-Content-Digest", digest),
            _ => Reply::new(405),
        };
    }
    if let Some((name, reference)) = rest.rsplit_once("/manifests/") {
        return manifest(state, method, name, reference, headers, body);
    }
    Reply::new(404)
}

/// What distribution answers for a session's state: `Range: 0-END`, where an empty session
/// gives `0-0` too.
fn session_headers(reply: Reply, name: &str, session: &str, received: usize, step: usize) -> Reply {
    reply
        .header(
            "Location",
            format!("/v2/{name}/blobs/uploads/{session}?_state=step{step}"),
        )
        .header("Docker-Upload-UUID", session)
        .header("Range", format!("0-{}", received.saturating_sub(1)))
}

fn upload(
    state: &mut State,
    method: &str,
    name: &str,
    session: &str,
    query: &HashMap<String, String>,
    headers: &HashMap<String, String>,
    body: &[u8],
) -> Reply {
    if session.is_empty() {
        if method != "POST" {
            return Reply::new(405);
        }
        if state.faults.post_500 > 0 {
            state.faults.post_500 -= 1;
            return Reply::error(500, "UNKNOWN", "POST fault");
        }
        if let (Some(digest), Some(from)) = (query.get("mount"), query.get("from"))
            && let Some(bytes) = state.blobs.get(&format!("{from}@{digest}")).cloned()
        {
            state.blobs.insert(format!("{name}@{digest}"), bytes);
            return Reply::new(201)
                .header("Location", format!("/v2/{name}/blobs/{digest}"))
                .header("Docker-Content-Digest", digest.as_str());
        }
        state.sessions_opened += 1;
        let id = format!("session-{}", state.sessions_opened);
        state.sessions.insert(id.clone(), Vec::new());
        return session_headers(Reply::new(202), name, &id, 0, 0);
    }
    let step = state.log.len();
    let Some(received_len) = state.sessions.get(session).map(Vec::len) else {
        return Reply::error(
            404,
            "BLOB_UPLOAD_UNKNOWN",
            "blob upload unknown to registry",
        );
    };
    // A Content-Range must continue where the session stands.
    if let Some(range) = headers.get("content-range") {
        let start = range
            .trim_start_matches("bytes=")
            .split('-')
            .next()
            .and_then(|start| start.parse::<usize>().ok());
        if start != Some(received_len) {
            return session_headers(
                Reply::error(416, "BLOB_UPLOAD_INVALID", "content range out of order"),
                name,
                session,
                received_len,
                step,
            );
        }
    }
    match method {
        "GET" => session_headers(Reply::new(204), name, session, received_len, step),
        "DELETE" => {
            state.sessions.remove(session);
            Reply::new(204)
        }
        "PATCH" => {
            let received = state.sessions.get_mut(session).unwrap();
            received.extend_from_slice(body);
            let len = received.len();
            session_headers(Reply::new(202), name, session, len, step)
        }
        "PUT" => {
            let Some(digest) = query.get("digest").cloned() else {
                return Reply::error(400, "DIGEST_INVALID", "no digest");
            };
            let puts = state.blob_puts.entry(digest.clone()).or_default();
            *puts += 1;
            if *puts <= state.faults.blob_put_500_each
                || state.faults.blob_put_500_always.as_ref() == Some(&digest)
            {
                return Reply::error(500, "UNKNOWN", "PUT fault");
            }
            if state.faults.reject_monolithic && !body.is_empty() {
                return Reply::error(413, "SIZE_INVALID", "send chunks");
            }
            let mut received = state.sessions.remove(session).unwrap();
            received.extend_from_slice(body);
            let actual = Digest::of(&received).to_string();
            if actual != digest {
                return Reply::error(400, "DIGEST_INVALID", "digest did not match content");
            }
            state.blobs.insert(format!("{name}@{digest}"), received);
            Reply::new(201)
                .header("Location", format!("/v2/{name}/blobs/{digest}"))
                .header("Docker-Content-Digest", digest)
        }
        _ => Reply::new(405),
    }
}

fn manifest(
    state: &mut State,
    method: &str,
    name: &str,
    reference: &str,
    headers: &HashMap<String, String>,
    body: &[u8],
) -> Reply {
    match method {
        "PUT" => {
            if state.faults.manifest_put_500 > 0 {
                state.faults.manifest_put_500 -= 1;
                return Reply::error(500, "UNKNOWN", "manifest PUT fault");
            }
            let digest = Digest::of(body).to_string();
            if reference.starts_with("sha256:") && reference != digest {
                return Reply::error(400, "DIGEST_INVALID", "manifest digest mismatch");
            }
            let Ok(document) = serde_json::from_slice::<Value>(body) else {
                return Reply::error(400, "MANIFEST_INVALID", "not JSON");
            };
            // As distribution does: every blob (and child manifest) must be there first.
            let mut blobs: Vec<&Value> = document["layers"]
                .as_array()
                .map(|layers| layers.iter().map(|layer| &layer["digest"]).collect())
                .unwrap_or_default();
            if !document["config"].is_null() {
                blobs.push(&document["config"]["digest"]);
            }
            for blob in blobs {
                let blob = blob.as_str().unwrap_or_default();
                if !state.blobs.contains_key(&format!("{name}@{blob}")) {
                    return Reply::error(400, "MANIFEST_BLOB_UNKNOWN", blob);
                }
            }
            for child in document["manifests"].as_array().into_iter().flatten() {
                let child = child["digest"].as_str().unwrap_or_default();
                if !state.manifests.contains_key(&format!("{name}:{child}")) {
                    return Reply::error(400, "MANIFEST_UNKNOWN", child);
                }
            }
            let media_type = headers.get("content-type").cloned().unwrap_or_default();
            for key in [reference, digest.as_str()] {
                state
                    .manifests
                    .insert(format!("{name}:{key}"), (media_type.clone(), body.to_vec()));
            }
            let reply = Reply::new(201)
                .header("Location", format!("/v2/{name}/manifests/{digest}"))
                .header("Docker-Content-Digest", digest);
            match document["subject"]["digest"].as_str() {
                Some(subject) if state.faults.referrers_api => reply.header("OCI-Subject", subject),
                _ => reply,
            }
        }
        "GET" | "HEAD" => match state.manifests.get(&format!("{name}:{reference}")) {
            Some((media_type, bytes)) => Reply::new(200)
                .body(media_type, bytes.clone())
                .header("Docker-Content-Digest", Digest::of(bytes).to_string()),
            None => Reply::error(404, "MANIFEST_UNKNOWN", "manifest unknown"),
        },
        _ => Reply::new(405),
    }
}

// ------------------------------------------------------------------------------------------
// The image and the kiln runs
// ------------------------------------------------------------------------------------------

/// `app.tar`, made by `kiln image`, and what is in it.
struct Image {
    /// The manifest digest, as `kiln image` printed it.
    manifest: String,
    config: String,
    layer: String,
    /// Every file of the archive, by path.
    files: HashMap<String, Vec<u8>>,
}

impl Image {
    fn blob(&self, digest: &str) -> &[u8] {
        let path = format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
        &self.files[&path]
    }
}

/// Bytes that do not compress (xorshift64), so the layer is about `size` bytes.
fn noise(size: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut bytes = Vec::with_capacity(size + 8);
    while bytes.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(size);
    bytes
}

/// A plain tar reader: path → content.
fn untar(bytes: &[u8]) -> HashMap<String, Vec<u8>> {
    let mut files = HashMap::new();
    let mut offset = 0;
    while offset + 512 <= bytes.len() {
        let header = &bytes[offset..offset + 512];
        if header.iter().all(|byte| *byte == 0) {
            break;
        }
        let field = |range: std::ops::Range<usize>| {
            let raw = &header[range];
            let end = raw.iter().position(|byte| *byte == 0).unwrap_or(raw.len());
            String::from_utf8_lossy(&raw[..end]).trim().to_owned()
        };
        let prefix = field(345..500);
        let name = field(0..100);
        let path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let size = usize::from_str_radix(&field(124..136), 8).unwrap();
        let start = offset + 512;
        if header[156] == b'0' || header[156] == 0 {
            files.insert(path, bytes[start..start + size].to_vec());
        }
        offset = start + size.div_ceil(512) * 512;
    }
    files
}

/// Make `app.tar`: one layer holding `size` bytes of noise.
fn image(dir: &TestDir, size: usize) -> Image {
    dir.write("payload", noise(size), 0o755);
    let printed = success(dir.kiln([
        "image",
        "--name",
        "app",
        "--tag",
        "1",
        "--add",
        "./payload:/bin/payload",
        "--cmd",
        "/bin/payload",
        "-o",
        "app.tar",
    ]));
    let manifest = printed.trim().to_owned();
    let files = untar(&std::fs::read(dir.join("app.tar")).unwrap());
    let index: Value = serde_json::from_slice(&files["index.json"]).unwrap();
    assert_eq!(index["manifests"][0]["digest"], manifest.as_str());
    let path = format!("blobs/sha256/{}", manifest.trim_start_matches("sha256:"));
    let document: Value = serde_json::from_slice(&files[&path]).unwrap();
    let config = document["config"]["digest"].as_str().unwrap().to_owned();
    let layers = document["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    let layer = layers[0]["digest"].as_str().unwrap().to_owned();
    Image {
        manifest,
        config,
        layer,
        files,
    }
}

/// `kiln push app.tar 127.0.0.1:PORT/app:1 EXTRA…` (with no credentials from the machine:
/// the harness clears their variables).
fn push(dir: &TestDir, fake: &Fake, extra: &[&str]) -> Command {
    let mut command = dir.kiln([
        "push",
        "app.tar",
        &format!("{}/{REPOSITORY}:1", fake.host()),
    ]);
    command.args(extra);
    command
}

/// `push`, reading credentials from an auth file naming `user` and `password`.
fn push_with_credentials(dir: &TestDir, fake: &Fake, user: &str, password: &str) -> Command {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let file = dir.write(
        "auth.json",
        serde_json::json!({"auths": {fake.host(): {"auth": auth}}}).to_string(),
        0o600,
    );
    let mut command = push(dir, fake, &[]);
    command.env("REGISTRY_AUTH_FILE", file);
    command
}

/// What `kiln push` prints for tag 1.
fn pushed_line(fake: &Fake, image: &Image) -> String {
    format!("{}/{REPOSITORY}:1@{}\n", fake.host(), image.manifest)
}

/// The tag holds the archive's manifest, and the blobs are the archive's.
fn assert_stored(fake: &Fake, image: &Image) {
    let stored = fake
        .manifest("1")
        .unwrap_or_else(|| panic!("no tag 1 stored:\n{}", fake.transcript()));
    assert_eq!(Digest::of(&stored).to_string(), image.manifest);
    assert_eq!(stored, image.blob(&image.manifest));
    for digest in [&image.config, &image.layer] {
        let blob = fake
            .blob(digest)
            .unwrap_or_else(|| panic!("blob {digest} not stored:\n{}", fake.transcript()));
        assert_eq!(Digest::of(&blob).to_string(), *digest);
        assert_eq!(blob, image.blob(digest));
    }
}

/// The requests made on the upload session whose first (closing or chunk) request matched.
fn session_of(log: &[Seen], found: impl Fn(&Seen) -> bool) -> Vec<Seen> {
    let first = log
        .iter()
        .find(|seen| seen.path.contains("/blobs/uploads/session-") && found(seen))
        .expect("no such upload request");
    log.iter()
        .filter(|seen| seen.path == first.path)
        .cloned()
        .collect()
}

fn output_of(command: &mut Command) -> (Option<i32>, String, String) {
    let output = run(command);
    (output.status.code(), stdout(&output), stderr(&output))
}

// ------------------------------------------------------------------------------------------
// The tests
// ------------------------------------------------------------------------------------------

/// 500s to upload POSTs, to each blob's closing PUT and to a manifest PUT are tried again;
/// the push completes and prints the digest the registry stored.
#[test]
fn server_errors_are_retried() {
    let dir = TestDir::new();
    let image = image(&dir, 64 << 10);
    let fake = Fake::start(Faults {
        post_500: 2,
        blob_put_500_each: 2,
        manifest_put_500: 1,
        ..Faults::default()
    });
    let printed = success(push(&dir, &fake, &[]));
    assert_eq!(printed, pushed_line(&fake, &image), "{}", fake.transcript());
    assert_stored(&fake, &image);

    // Two refused POSTs, then one session per blob, each closed on its third PUT (the
    // session survives a 500: kiln asks where it stands and PUTs again).
    assert_eq!(
        fake.count("POST", "/blobs/uploads/"),
        4,
        "{}",
        fake.transcript()
    );
    let log = fake.log();
    for digest in [&image.config, &image.layer] {
        let puts: Vec<u16> = log
            .iter()
            .filter(|seen| seen.method == "PUT" && seen.query.get("digest") == Some(digest))
            .map(|seen| seen.status)
            .collect();
        assert_eq!(puts, [500, 500, 201], "{digest}:\n{}", fake.transcript());
    }
    assert_eq!(
        fake.count("PATCH", ""),
        0,
        "nothing was kept, so nothing is resumed:\n{}",
        fake.transcript()
    );
    let manifest_puts: Vec<u16> = log
        .iter()
        .filter(|seen| seen.method == "PUT" && seen.path.contains("/manifests/"))
        .map(|seen| seen.status)
        .collect();
    assert_eq!(manifest_puts, [500, 201]);
}

/// A registry that always fails the manifest PUT: kiln gives up after 5 attempts, says so
/// with the registry's name, and no tag exists.
#[test]
fn manifest_put_that_always_fails_gives_up_after_five_attempts() {
    let dir = TestDir::new();
    let image = image(&dir, 4 << 10);
    let fake = Fake::start(Faults {
        manifest_put_500: usize::MAX,
        ..Faults::default()
    });
    let output = run(push(&dir, &fake, &[]));
    assert!(stdout(&output).is_empty(), "{}", stdout(&output));
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("error: "), "{text}");
    for needle in [
        fake.host().as_str(),
        "the manifest app:1",
        "failed after 5 attempts",
        "500 Internal Server Error",
        "manifest PUT fault",
    ] {
        assert!(text.contains(needle), "stderr lacks `{needle}`:\n{text}");
    }
    assert_eq!(fake.count("PUT", "/manifests/"), 5, "{}", fake.transcript());
    assert!(fake.state().manifests.is_empty());
    // The blobs went up; only the tag is missing.
    assert!(fake.blob(&image.layer).is_some());
}

/// The connection drops after 1 MiB of a 4 MiB layer: kiln asks the session where it stands
/// and sends the rest as a PATCH from there, in the same session, and closes it.
#[test]
fn dropped_upload_resumes_from_the_kept_range() {
    let dir = TestDir::new();
    let image = image(&dir, 4 << 20);
    let layer_size = image.blob(&image.layer).len();
    assert!(layer_size > 4 << 20, "the noise compressed: {layer_size}");
    let kept = 1 << 20;
    let fake = Fake::start(Faults {
        drop_upload_after: Some(kept),
        ..Faults::default()
    });
    let printed = success(push(&dir, &fake, &["--json"]));
    let report: Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(report["digest"], image.manifest.as_str());
    assert_eq!(
        report["references"],
        serde_json::json!([pushed_line(&fake, &image).trim_end()])
    );
    assert_eq!(report["blobs"]["uploaded"], 2);
    assert_stored(&fake, &image);

    let log = fake.log();
    let session = session_of(&log, |seen| seen.status == 0);
    let steps: Vec<String> = session
        .iter()
        .map(|seen| {
            format!(
                "{} {} {} {}",
                seen.method,
                seen.header("content-range").unwrap_or("-"),
                seen.body_len,
                seen.status
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            format!("PUT - {kept} 0"),
            "GET - 0 204".to_owned(),
            format!("PATCH {kept}-{} {} 202", layer_size - 1, layer_size - kept),
            "PUT - 0 201".to_owned(),
        ],
        "{}",
        fake.transcript()
    );
    assert_eq!(session[0].query["digest"], image.layer);
    assert_eq!(session[3].query["digest"], image.layer);
    assert_eq!(
        fake.count("POST", "/blobs/uploads/"),
        2,
        "no fresh session for the layer:\n{}",
        fake.transcript()
    );
}

/// 413 to a blob in one PUT: kiln sends it as PATCH chunks in the same session and closes
/// the session with an empty PUT.
#[test]
fn monolithic_upload_refused_goes_in_chunks() {
    let dir = TestDir::new();
    let image = image(&dir, 256 << 10);
    let fake = Fake::start(Faults {
        reject_monolithic: true,
        ..Faults::default()
    });
    let printed = success(push(&dir, &fake, &[]));
    assert_eq!(printed, pushed_line(&fake, &image));
    assert_stored(&fake, &image);

    let log = fake.log();
    for digest in [&image.config, &image.layer] {
        let size = image.blob(digest).len();
        let session = session_of(&log, |seen| seen.query.get("digest") == Some(digest));
        let steps: Vec<String> = session
            .iter()
            .map(|seen| {
                format!(
                    "{} {} {} {}",
                    seen.method,
                    seen.header("content-range").unwrap_or("-"),
                    seen.body_len,
                    seen.status
                )
            })
            .collect();
        assert_eq!(
            steps,
            [
                format!("PUT - {size} 413"),
                format!("PATCH 0-{} {size} 202", size - 1),
                "PUT - 0 201".to_owned(),
            ],
            "{digest}:\n{}",
            fake.transcript()
        );
    }
    assert_eq!(fake.count("PATCH", ""), 2);
    assert_eq!(fake.count("POST", "/blobs/uploads/"), 2);
}

/// Basic auth: without credentials, and with wrong ones, kiln fails with a hint and sends
/// no manifest; with the right ones the push succeeds. No run prints the password.
#[test]
fn basic_auth_needs_the_right_credentials_and_never_prints_them() {
    let dir = TestDir::new();
    let image = image(&dir, 4 << 10);
    let (user, password) = ("kiln-user", "Pa55word-SECRET-basic");
    let wrong = "Wr0ng-SECRET-basic";
    let fake = Fake::start(Faults {
        auth: Auth::Basic {
            user: user.into(),
            password: password.into(),
        },
        ..Faults::default()
    });
    let secrets = [
        password.to_owned(),
        wrong.to_owned(),
        basic(user, password)["Basic ".len()..].to_owned(),
        basic(user, wrong)["Basic ".len()..].to_owned(),
    ];
    let assert_no_secrets = |stdout: &str, stderr: &str| {
        for secret in &secrets {
            assert!(
                !stdout.contains(secret.as_str()),
                "stdout shows a secret:\n{stdout}"
            );
            assert!(
                !stderr.contains(secret.as_str()),
                "stderr shows a secret:\n{stderr}"
            );
        }
    };

    let (code, out, err) = output_of(&mut push(&dir, &fake, &[]));
    assert_eq!(code, Some(1), "{err}");
    for needle in [
        "authentication required",
        "kiln found no credentials",
        "hint: ",
        &format!("docker login {}", fake.host()),
    ] {
        assert!(err.contains(needle), "stderr lacks `{needle}`:\n{err}");
    }
    assert!(out.is_empty(), "{out}");
    assert_no_secrets(&out, &err);

    let (code, out, err) = output_of(&mut push_with_credentials(&dir, &fake, user, wrong));
    assert_eq!(code, Some(1), "{err}");
    for needle in [
        "authentication required",
        "the credentials kiln found were not accepted",
        "hint: ",
    ] {
        assert!(err.contains(needle), "stderr lacks `{needle}`:\n{err}");
    }
    assert_no_secrets(&out, &err);

    assert_eq!(fake.count("PUT", "/manifests/"), 0, "{}", fake.transcript());
    assert!(fake.state().manifests.is_empty());
    assert!(fake.state().blobs.is_empty());

    let (code, out, err) = output_of(&mut push_with_credentials(&dir, &fake, user, password));
    assert_eq!(code, Some(0), "{err}\n{}", fake.transcript());
    assert_eq!(out, pushed_line(&fake, &image));
    assert_no_secrets(&out, &err);
    assert_stored(&fake, &image);
    // In the good run every request but the first ping carried the credentials.
    let log = fake.log();
    let good_run = &log[log.iter().rposition(|seen| seen.path == "/v2/").unwrap()..];
    assert!(good_run.len() > 4);
    for seen in &good_run[1..] {
        assert_eq!(
            seen.header("authorization"),
            Some(basic(user, password).as_str()),
            "{}",
            seen.line()
        );
    }
}

/// Bearer auth: kiln gets a token from the realm with the credentials as Basic auth, for
/// the repository's pull,push scope, and sends it on every request; neither the password
/// nor the token is printed. Without credentials, the token service's refusal is reported.
#[test]
fn bearer_token_flow() {
    let dir = TestDir::new();
    let image = image(&dir, 4 << 10);
    let (user, password, token) = ("kiln-user", "Pa55word-SECRET-bearer", "t0ken-SECRET-bearer");
    let fake = Fake::start(Faults {
        auth: Auth::Bearer {
            user: user.into(),
            password: password.into(),
            token: token.into(),
        },
        ..Faults::default()
    });
    let secrets = [password, token];

    let (code, out, err) = output_of(&mut push(&dir, &fake, &[]));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("authentication required"), "{err}");
    assert!(err.contains("kiln found no credentials"), "{err}");
    assert!(fake.state().manifests.is_empty());

    let (code, out2, err2) = output_of(&mut push_with_credentials(&dir, &fake, user, password));
    assert_eq!(code, Some(0), "{err2}\n{}", fake.transcript());
    assert_eq!(out2, pushed_line(&fake, &image));
    assert_stored(&fake, &image);
    for text in [&out, &err, &out2, &err2] {
        for secret in secrets {
            assert!(!text.contains(secret), "a secret was printed:\n{text}");
        }
    }

    let log = fake.log();
    let good_run = &log[log.iter().rposition(|seen| seen.path == "/v2/").unwrap()..];
    let token_requests: Vec<&Seen> = good_run
        .iter()
        .filter(|seen| seen.path == "/token")
        .collect();
    assert!(!token_requests.is_empty(), "{}", fake.transcript());
    for request in &token_requests {
        assert_eq!(request.method, "GET");
        assert_eq!(request.status, 200);
        assert_eq!(
            request.header("authorization"),
            Some(basic(user, password).as_str())
        );
        assert_eq!(request.query["service"], "fake");
        assert_eq!(
            request.query["scope"],
            format!("repository:{REPOSITORY}:pull,push")
        );
    }
    for seen in good_run
        .iter()
        .skip(1)
        .filter(|seen| seen.path.starts_with("/v2/"))
    {
        assert_eq!(
            seen.header("authorization"),
            Some(format!("Bearer {token}").as_str()),
            "{}",
            seen.line()
        );
        assert_ne!(seen.status, 401, "{}", seen.line());
    }
}

/// A blob that can never be uploaded: kiln gives up on it and no manifest PUT reaches the
/// registry, so no tag names a half-pushed image.
#[test]
fn failed_blob_means_no_manifest_is_sent() {
    let dir = TestDir::new();
    let image = image(&dir, 64 << 10);
    let fake = Fake::start(Faults {
        blob_put_500_always: Some(image.layer.clone()),
        ..Faults::default()
    });
    failure(
        push(&dir, &fake, &[]),
        &[
            &fake.host(),
            &format!("the upload of {} to app", image.layer),
            "failed after 5 attempts",
            "500 Internal Server Error",
        ],
    );
    let puts = fake
        .log()
        .iter()
        .filter(|seen| seen.method == "PUT" && seen.query.get("digest") == Some(&image.layer))
        .count();
    assert_eq!(puts, 5, "{}", fake.transcript());
    assert_eq!(
        fake.count("PUT", "/manifests/"),
        0,
        "a manifest was sent:\n{}",
        fake.transcript()
    );
    assert!(fake.state().manifests.is_empty());
    assert!(fake.blob(&image.layer).is_none());
}

/// `kiln push LAYOUT 127.0.0.1:PORT/app:1 EXTRA…` for an OCI layout holding an image and its
/// SBOM (with no credentials from the machine: the harness clears their variables).
fn push_layout(dir: &TestDir, fake: &Fake, extra: &[&str]) -> Command {
    let mut command = dir.kiln(["push", "layout", &format!("{}/{REPOSITORY}:1", fake.host())]);
    command.args(extra);
    command
}

/// A registry with the referrers API (it answers `OCI-Subject`): the SBOM artifact goes up
/// after the image, by digest, and kiln writes no referrers tag.
#[test]
fn referrers_api_needs_no_referrers_tag() {
    let dir = TestDir::new();
    let stored = crate::sbom::image_with_sbom(&dir, "layout", "linux/amd64");
    let fake = Fake::start(Faults {
        referrers_api: true,
        ..Faults::default()
    });
    let report: Value = serde_json::from_str(&success(push_layout(&dir, &fake, &["--json"])))
        .unwrap_or_else(|error| panic!("{error}:\n{}", fake.transcript()));
    assert_eq!(report["digest"], stored.image.digest.to_string());
    let referrers = report["referrers"].as_array().unwrap();
    assert_eq!(referrers.len(), 1, "{report}");
    assert_eq!(referrers[0]["digest"], stored.artifact.digest.to_string());
    assert_eq!(referrers[0]["artifactType"], "application/spdx+json");
    assert_eq!(referrers[0]["subject"], stored.image.digest.to_string());
    assert_eq!(referrers[0]["listing"], "api");
    assert!(fake.manifest(&stored.artifact.digest.to_string()).is_some());
    assert_eq!(
        fake.blob(&Digest::of(&stored.sbom).to_string()),
        Some(stored.sbom.clone())
    );
    assert_eq!(
        fake.log()
            .iter()
            .filter(|seen| seen.path.contains("/manifests/sha256-"))
            .count(),
        0,
        "no referrers tag is read or written:\n{}",
        fake.transcript()
    );
    // The image went first: its tag is there, and the artifact's PUT came after it.
    let log = fake.log();
    let position = |path: &str| {
        log.iter()
            .position(|seen| seen.method == "PUT" && seen.path.ends_with(path))
            .unwrap_or_else(|| panic!("no PUT {path}:\n{}", fake.transcript()))
    };
    assert!(position("/manifests/1") < position(&format!("/manifests/{}", stored.artifact.digest)));
}

/// A registry without the referrers API: kiln adds the artifact to the index at the
/// referrers tag `sha256-<hex>`; a second push finds it listed and writes nothing.
#[test]
fn referrers_tag_schema_without_the_api() {
    let dir = TestDir::new();
    let stored = crate::sbom::image_with_sbom(&dir, "layout", "linux/amd64");
    let fake = Fake::start(Faults::default());
    let tag = format!("sha256-{}", stored.image.digest.hex());
    let report: Value =
        serde_json::from_str(&success(push_layout(&dir, &fake, &["--json"]))).unwrap();
    assert_eq!(report["referrers"][0]["listing"], "tag-added", "{report}");
    assert_eq!(report["referrers"][0]["tag"], tag.as_str());
    let index: Value = serde_json::from_slice(
        &fake
            .manifest(&tag)
            .unwrap_or_else(|| panic!("no referrers tag:\n{}", fake.transcript())),
    )
    .unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let listed = index["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{index}");
    assert_eq!(listed[0]["digest"], stored.artifact.digest.to_string());
    assert_eq!(listed[0]["artifactType"], "application/spdx+json");
    assert_eq!(
        listed[0]["annotations"]["org.opencontainers.image.created"],
        "1970-01-01T00:00:01Z"
    );
    assert_eq!(
        fake.state().manifests[&format!("{REPOSITORY}:{tag}")].0,
        "application/vnd.oci.image.index.v1+json"
    );

    let puts_before = fake.count("PUT", &format!("/manifests/{tag}"));
    let report: Value =
        serde_json::from_str(&success(push_layout(&dir, &fake, &["--json"]))).unwrap();
    assert_eq!(report["referrers"][0]["listing"], "tag-listed", "{report}");
    assert_eq!(report["referrers"][0]["blobsUploaded"], 0);
    assert_eq!(fake.count("PUT", &format!("/manifests/{tag}")), puts_before);
    let index: Value = serde_json::from_slice(&fake.manifest(&tag).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
}
