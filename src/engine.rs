//! The Docker Engine API, as far as kiln speaks it: `POST /images/load` with an image archive
//! streamed as the request body (docs.docker.com/engine/api, "Import images"). podman's
//! Docker-compatible socket answers the same request.
//!
//! Where the engine is: `DOCKER_HOST` (`unix:///path/to/socket` or `tcp://host:port`, plain
//! HTTP), else the usual `unix:///var/run/docker.sock`. Written by hand over a `UnixStream` or
//! `TcpStream`: one HTTP/1.1 request with `Content-Length` and `Connection: close`, the answer
//! read to its end (chunked or not) and parsed as the engine's stream of JSON messages
//! (`{"stream": "Loaded image: …"}`, `{"error": …, "errorDetail": …}`). The URL path has no API
//! version, so the engine uses its own.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use crate::diagnostic::{Hint, PathError};

/// The default engine socket.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("DOCKER_HOST is `{0}`, which kiln cannot reach")]
    UnsupportedHost(String),
    #[error("cannot connect to the engine at {host}")]
    Connect {
        host: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("the engine at {host} dropped the connection while loading")]
    Transfer {
        host: String,
        #[source]
        source: io::Error,
    },
    #[error("the engine at {host} answered {status}: {message}")]
    Status {
        host: String,
        status: u16,
        message: String,
    },
    #[error("the engine at {host} refused the image: {message}")]
    Refused { host: String, message: String },
    #[error("the engine at {host} sent an answer kiln cannot read: {message}")]
    Protocol { host: String, message: String },
}

impl Hint for EngineError {
    fn hint(&self) -> Option<String> {
        match self {
            EngineError::UnsupportedHost(_) => Some("kiln speaks to unix:///path and tcp://host:port (plain HTTP) engines".to_owned()),
            EngineError::Connect { .. } => Some("is the Docker daemon (or `podman system service`) running? DOCKER_HOST selects another engine".to_owned()),
            _ => None,
        }
    }
}

/// Where an engine listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    Unix(PathBuf),
    Tcp(String),
}

impl Host {
    /// `DOCKER_HOST`, else the default socket.
    pub fn from_env() -> Result<Self, EngineError> {
        let value = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|value| !value.is_empty())
            .unwrap_or_else(|| DEFAULT_HOST.to_owned());
        Host::parse(&value)
    }

    pub fn parse(value: &str) -> Result<Self, EngineError> {
        if let Some(path) = value.strip_prefix("unix://") {
            if path.starts_with('/') {
                return Ok(Host::Unix(PathBuf::from(path)));
            }
        } else if let Some(address) = value.strip_prefix("tcp://") {
            let address = address.trim_end_matches('/');
            if !address.is_empty() && !address.contains('/') {
                return Ok(Host::Tcp(address.to_owned()));
            }
        }
        Err(EngineError::UnsupportedHost(value.to_owned()))
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Unix(path) => write!(formatter, "unix://{}", path.display()),
            Host::Tcp(address) => write!(formatter, "tcp://{address}"),
        }
    }
}

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

fn connect(host: &Host) -> Result<Box<dyn Stream>, EngineError> {
    let connect_error = |source| EngineError::Connect {
        host: host.to_string(),
        source,
    };
    Ok(match host {
        Host::Unix(path) => Box::new(UnixStream::connect(path).map_err(connect_error)?),
        Host::Tcp(address) => {
            Box::new(std::net::TcpStream::connect(address).map_err(connect_error)?)
        }
    })
}

/// Load the image archive (docker-archive tar) at `archive` into the engine at `host`,
/// streaming it; returns the engine's messages (`Loaded image: example:0.1`).
pub fn load(host: &Host, archive: &Path) -> Result<Vec<String>, EngineError> {
    let mut file = std::fs::File::open(archive).map_err(PathError::read(archive))?;
    let size = file.metadata().map_err(PathError::read(archive))?.len();
    let mut stream = connect(host)?;
    let transfer = |source| EngineError::Transfer {
        host: host.to_string(),
        source,
    };
    let head = format!(
        "POST /images/load HTTP/1.1\r\nHost: docker\r\nUser-Agent: kiln/{}\r\nContent-Type: application/x-tar\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    stream.write_all(head.as_bytes()).map_err(transfer)?;
    let copied = io::copy(&mut (&mut file).take(size), &mut stream).map_err(transfer)?;
    if copied != size {
        return Err(PathError::read(archive)(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the file shrank while loading",
        ))
        .into());
    }
    stream.flush().map_err(transfer)?;
    let (status, body) = read_response(BufReader::new(stream), host)?;
    let messages = messages(&body, host)?;
    if status != 200 {
        return Err(EngineError::Status {
            host: host.to_string(),
            status,
            message: if messages.is_empty() {
                String::from_utf8_lossy(&body).trim().to_owned()
            } else {
                messages.join("; ")
            },
        });
    }
    Ok(messages)
}

/// The engine's own platform, from `GET /version` (`Os`, `Arch`): what `kiln load` picks
/// from a multi-platform image.
pub fn platform(host: &Host) -> Result<crate::oci::spec::Platform, EngineError> {
    let mut stream = connect(host)?;
    let transfer = |source| EngineError::Transfer {
        host: host.to_string(),
        source,
    };
    let head = format!(
        "GET /version HTTP/1.1\r\nHost: docker\r\nUser-Agent: kiln/{}\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    stream.write_all(head.as_bytes()).map_err(transfer)?;
    stream.flush().map_err(transfer)?;
    let (status, body) = read_response(BufReader::new(stream), host)?;
    let protocol = |message: String| EngineError::Protocol {
        host: host.to_string(),
        message,
    };
    if status != 200 {
        return Err(EngineError::Status {
            host: host.to_string(),
            status,
            message: String::from_utf8_lossy(&body).trim().to_owned(),
        });
    }
    #[derive(serde::Deserialize)]
    struct Version {
        #[serde(rename = "Os")]
        os: String,
        #[serde(rename = "Arch")]
        architecture: String,
    }
    let version: Version = serde_json::from_slice(&body)
        .map_err(|error| protocol(format!("GET /version: {error}")))?;
    Ok(crate::oci::spec::Platform {
        architecture: version.architecture,
        os: version.os,
        os_version: None,
        os_features: Vec::new(),
        variant: None,
    })
}

/// The status and body of an HTTP/1.1 response read to its end.
fn read_response(mut reader: impl BufRead, host: &Host) -> Result<(u16, Vec<u8>), EngineError> {
    let protocol = |message: String| EngineError::Protocol {
        host: host.to_string(),
        message,
    };
    let transfer = |source| EngineError::Transfer {
        host: host.to_string(),
        source,
    };
    let mut line = String::new();
    reader.read_line(&mut line).map_err(transfer)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| protocol(format!("status line {:?}", line.trim_end())))?;
    let mut chunked = false;
    let mut length: Option<usize> = None;
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(transfer)? == 0 {
            return Err(protocol("the headers never ended".to_owned()));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().ok();
            }
        }
    }
    // The engine's answer is a few messages; anything huge is not one.
    const LIMIT: u64 = 16 << 20;
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line).map_err(transfer)?;
            let size_text = line.trim_end().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| protocol(format!("chunk size {size_text:?}")))?;
            if size == 0 {
                break;
            }
            if body.len() + size > LIMIT as usize {
                return Err(protocol("an answer over 16 MiB".to_owned()));
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..]).map_err(transfer)?;
            line.clear();
            reader.read_line(&mut line).map_err(transfer)?;
        }
    } else if let Some(length) = length {
        (&mut reader)
            .take(length.min(LIMIT as usize) as u64)
            .read_to_end(&mut body)
            .map_err(transfer)?;
    } else {
        (&mut reader)
            .take(LIMIT)
            .read_to_end(&mut body)
            .map_err(transfer)?;
    }
    Ok((status, body))
}

/// The engine's JSON messages: `stream` texts, or the error of an `error` message.
fn messages(body: &[u8], host: &Host) -> Result<Vec<String>, EngineError> {
    let mut messages = Vec::new();
    let stream = serde_json::Deserializer::from_slice(body).into_iter::<serde_json::Value>();
    for value in stream {
        let Ok(value) = value else {
            // Not JSON (a plain-text error page): the caller shows the body.
            return Ok(Vec::new());
        };
        if let Some(error) = value
            .get("errorDetail")
            .and_then(|detail| detail.get("message"))
            .or_else(|| value.get("error"))
            .or_else(|| value.get("message"))
            .and_then(|message| message.as_str())
        {
            return Err(EngineError::Refused {
                host: host.to_string(),
                message: error.trim().to_owned(),
            });
        }
        if let Some(text) = value.get("stream").and_then(|text| text.as_str()) {
            messages.extend(
                text.lines()
                    .map(str::to_owned)
                    .filter(|line| !line.is_empty()),
            );
        }
    }
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_parse() {
        assert_eq!(
            Host::parse("unix:///run/podman/podman.sock").unwrap(),
            Host::Unix(PathBuf::from("/run/podman/podman.sock"))
        );
        assert_eq!(
            Host::parse("tcp://127.0.0.1:2375").unwrap(),
            Host::Tcp("127.0.0.1:2375".to_owned())
        );
        for bad in [
            "ssh://me@host",
            "unix://relative",
            "npipe:////./pipe/docker",
            "tcp://",
        ] {
            let error = Host::parse(bad).unwrap_err().to_string();
            assert!(
                error.starts_with(&format!("DOCKER_HOST is `{bad}`")),
                "{error}"
            );
        }
    }

    #[test]
    fn responses_chunked_and_plain() {
        let host = Host::Tcp("x:1".to_owned());
        let message = "{\"stream\":\"Loaded image: example:0.1\\n\"}\n";
        let chunked = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{message}\r\n0\r\n\r\n",
            message.len()
        );
        let (status, body) = read_response(chunked.as_bytes(), &host).unwrap();
        assert_eq!(status, 200);
        assert_eq!(
            messages(&body, &host).unwrap(),
            ["Loaded image: example:0.1"]
        );
        let error_message = "{\"errorDetail\":{\"message\":\"unexpected EOF\"},\"error\":\"x\"}\n";
        let refused = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{error_message}",
            error_message.len()
        );
        let (_, body) = read_response(refused.as_bytes(), &host).unwrap();
        let error = messages(&body, &host).unwrap_err().to_string();
        assert_eq!(
            error,
            "the engine at tcp://x:1 refused the image: unexpected EOF"
        );
        let garbage = b"SSH-2.0-OpenSSH\r\n";
        assert!(read_response(&garbage[..], &host).is_err());
    }
}
