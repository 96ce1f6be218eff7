//! A canned HTTP/1.1 server on 127.0.0.1, for kiln's own tests (unit tests here and the
//! integration tests in `tests/cli`, hence public but hidden from the docs).
//!
//! Each connection carries one request and is closed after the answer (`Connection:
//! close`), so every request a client makes is seen and counted, retries included. Answers
//! come from a handler, or from a table of canned replies per path; a reply can also be a
//! fault: any status, a body without `Content-Length` (ended by closing the connection), or
//! a connection closed without an answer. The server lives as long as the test process, as
//! each test has its own port.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};

/// The largest request body read (tests send small ones).
const MAX_BODY: u64 = 1 << 20;

/// A request as the server saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The request target as sent: path and query, still percent-encoded.
    pub path: String,
    /// Names in lower case, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// One canned answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Send `Content-Length`; without it the body ends when the connection closes.
    pub length: bool,
    /// Close the connection without answering at all.
    pub hang_up: bool,
}

impl Reply {
    /// `status` with `body` and its `Content-Length`.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
            length: true,
            hang_up: false,
        }
    }

    /// 200 with `body`.
    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        Reply::new(200, body)
    }

    /// A connection closed as soon as the request is read, without an answer.
    pub fn hang_up() -> Self {
        Reply {
            hang_up: true,
            ..Reply::new(0, Vec::new())
        }
    }

    /// This reply with one more header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// This reply without `Content-Length`: the body ends when the connection closes.
    pub fn without_length(self) -> Self {
        Reply {
            length: false,
            ..self
        }
    }

    fn write_to(&self, stream: &mut TcpStream) -> io::Result<()> {
        let reason = ureq::http::StatusCode::from_u16(self.status)
            .ok()
            .and_then(|status| status.canonical_reason())
            .unwrap_or("Canned");
        let mut head = format!("HTTP/1.1 {} {reason}\r\n", self.status);
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if self.length {
            head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        head.push_str("Connection: close\r\n\r\n");
        stream.write_all(head.as_bytes())?;
        stream.write_all(&self.body)?;
        stream.flush()
    }
}

type Handler = dyn Fn(&Request, usize) -> Reply + Send + Sync;

/// A server on a free loopback port; see the module doc.
pub struct TestServer {
    url: String,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl TestServer {
    /// Answer every request with `handler`, given the request and how many requests for the
    /// same path came before it.
    pub fn start(
        handler: impl Fn(&Request, usize) -> Reply + Send + Sync + 'static,
    ) -> io::Result<TestServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let seen: Arc<Mutex<Vec<Request>>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let recorder = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let recorder = Arc::clone(&recorder);
                let handler = Arc::clone(&handler);
                std::thread::spawn(move || {
                    // A client that goes away mid-request only loses its own answer.
                    let _ = answer(stream, &recorder, &*handler);
                });
            }
        });
        Ok(TestServer { url, seen })
    }

    /// Answer from `routes`: each path's replies in turn, the last one repeating; any other
    /// path gets `otherwise`.
    pub fn routes<P: Into<String>>(
        routes: impl IntoIterator<Item = (P, Vec<Reply>)>,
        otherwise: Reply,
    ) -> io::Result<TestServer> {
        let routes: HashMap<String, Vec<Reply>> = routes
            .into_iter()
            .map(|(path, replies)| (path.into(), replies))
            .collect();
        TestServer::start(move |request, before| {
            match routes
                .get(&request.path)
                .and_then(|replies| replies.get(before).or_else(|| replies.last()).cloned())
            {
                Some(reply) => reply,
                None => otherwise.clone(),
            }
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// Every request seen so far, in the order they arrived.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.seen).clone()
    }

    /// How many requests were seen.
    pub fn count(&self) -> usize {
        lock(&self.seen).len()
    }

    /// How many requests for `path` were seen.
    pub fn count_path(&self, path: &str) -> usize {
        lock(&self.seen)
            .iter()
            .filter(|request| request.path == path)
            .count()
    }
}

fn lock(seen: &Mutex<Vec<Request>>) -> MutexGuard<'_, Vec<Request>> {
    // A test that panicked while holding it must not hide what was seen.
    seen.lock().unwrap_or_else(|poison| poison.into_inner())
}

fn answer(mut stream: TcpStream, seen: &Mutex<Vec<Request>>, handler: &Handler) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut words = request_line.split_whitespace();
    let method = words.next().unwrap_or_default().to_owned();
    let path = words.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let mut request = Request {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    let length = request
        .header("content-length")
        .and_then(|length| length.parse::<u64>().ok())
        .unwrap_or(0);
    reader
        .take(length.min(MAX_BODY))
        .read_to_end(&mut request.body)?;
    let before = {
        let mut seen = lock(seen);
        let before = seen
            .iter()
            .filter(|earlier| earlier.path == request.path)
            .count();
        seen.push(request.clone());
        before
    };
    let reply = handler(&request, before);
    if reply.hang_up {
        return stream.shutdown(std::net::Shutdown::Both);
    }
    reply.write_to(&mut stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{AgentOptions, Client, read_limited};

    #[test]
    fn canned_replies_in_turn_then_faults() {
        let server = TestServer::routes(
            [
                ("/a", vec![Reply::new(503, "busy"), Reply::ok("a")]),
                ("/gone", vec![Reply::hang_up()]),
                ("/stream", vec![Reply::ok("streamed").without_length()]),
            ],
            Reply::new(404, "not found").header("Content-Type", "text/plain"),
        )
        .unwrap();
        let client = Client::new(&AgentOptions::goproxy().for_host(server.address()));
        let get = |path: &str| client.get(&format!("{}{path}", server.url())).call();
        let first = get("/a").unwrap();
        assert_eq!(first.status().as_u16(), 503);
        let second = get("/a").unwrap();
        assert_eq!(read_limited(second, 10).unwrap(), b"a");
        assert_eq!(read_limited(get("/a").unwrap(), 10).unwrap(), b"a");
        let streamed = get("/stream").unwrap();
        assert_eq!(streamed.body().content_length(), None);
        assert_eq!(read_limited(streamed, 100).unwrap(), b"streamed");
        let missing = get("/missing?x=1").unwrap();
        assert_eq!(missing.status().as_u16(), 404);
        assert_eq!(missing.body().mime_type(), Some("text/plain"));
        assert!(get("/gone").is_err());
        assert_eq!(server.count_path("/a"), 3);
        assert_eq!(server.count(), 6);
        let requests = server.requests();
        assert_eq!(requests[0].method, "GET");
        assert_eq!(requests[4].path, "/missing?x=1");
        assert_eq!(
            requests[0].header("User-Agent"),
            Some(crate::http::USER_AGENT)
        );
    }

    #[test]
    fn limits_are_enforced_with_and_without_length() {
        let server = TestServer::routes(
            [
                ("/declared", vec![Reply::ok("x".repeat(100))]),
                (
                    "/streamed",
                    vec![Reply::ok("x".repeat(100)).without_length()],
                ),
            ],
            Reply::new(404, ""),
        )
        .unwrap();
        let client = Client::new(&AgentOptions::static_base().for_host(server.address()));
        for path in ["/declared", "/streamed"] {
            let url = format!("{}{path}", server.url());
            let error = read_limited(client.get(&url).call().unwrap(), 99).unwrap_err();
            assert!(
                matches!(error, crate::http::HttpError::TooLarge { limit: 99 }),
                "{path}: {error}"
            );
            let bytes = read_limited(client.get(&url).call().unwrap(), 100).unwrap();
            assert_eq!(bytes.len(), 100, "{path}");
        }
    }

    #[test]
    fn request_bodies_are_recorded() {
        let server = TestServer::start(|request, _| Reply::ok(request.body.clone())).unwrap();
        let client = Client::new(&AgentOptions::registry().for_host(server.address()));
        let response = client
            .post(&format!("{}/echo", server.url()))
            .send(&b"hello"[..])
            .unwrap();
        assert_eq!(read_limited(response, 10).unwrap(), b"hello");
        assert_eq!(server.requests()[0].body, b"hello");
        assert_eq!(server.requests()[0].method, "POST");
    }
}
