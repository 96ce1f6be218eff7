//! kiln's one HTTP stack: every request kiln makes (to a GOPROXY, an OCI registry, the
//! package index and files host of the static base) goes through a [`Client`] made here.
//!
//! Why one stack: the three clients were three copies of the same agent settings and three
//! hand-written retry loops, so a fix to one (a timeout, the loopback rule, a redaction) had
//! to be made three times and their differences could only be found by reading the loops.
//! Here each difference is a field of plain data, set by a named constructor, so it can be
//! read, compared and tested:
//!
//! - [`AgentOptions`] ([`agent`]): timeouts, redirects, TLS verification and the loopback
//!   rule. GOPROXY: 30 s to connect, 2 min without data, 1 h in all, credentials kept on a
//!   same-host redirect. Registry: 30 s, 5 min, no overall limit, 5 redirects without
//!   credentials. Static base: 30 s, 2 min, 10 min in all, 5 redirects without credentials.
//! - [`RetryPolicy`] ([`retry`]): attempts, back-off, which statuses and transport errors
//!   are tried again. GOPROXY and static base: 3 attempts, waits from 200 ms doubling, on
//!   5xx, 429 and transient transport errors. Registry: 5 attempts, waits from 250 ms
//!   doubling, on 5xx, 429 and any transport error; its token service and its `/v2/` probe
//!   take a 429 as final, and the probe gives up at once on a sign of the wrong scheme. The
//!   blob upload runs the registry policy by hand, as a 413 is not an attempt there.
//! - [`redact`](fn@redact) and [`without_queries`] ([`redact`](mod@redact)): what a message
//!   may show of a URL.
//! - [`status_text`] and [`read_limited`] ([`response`]): a status as messages quote it, a
//!   body read to a limit.
//! - [`tls`]: the certificate authorities trusted, the system's as Go does.
//!
//! These numbers are pinned by the tests beside them: a change shows in what users read
//! (`(after 3 attempts)`, `failed after 5 attempts`), so it is a decision, not a refactor.
//!
//! What stays with each caller is what its protocol means: which statuses are "not found",
//! how authentication works, and every message a user reads. This module's errors
//! ([`HttpError`]) are mapped by callers into their own, so those messages do not depend on
//! it. `test_server` (hidden from the docs) is the canned HTTP server the tests of all three
//! callers, and `tests/cli`, use.

pub mod agent;
pub mod redact;
pub mod response;
pub mod retry;
#[doc(hidden)]
pub mod test_server;
pub mod tls;

pub use agent::{AgentOptions, Client, RedirectCredentials, USER_AGENT, is_loopback};
pub use redact::{redact, redact_text, without_queries};
pub use response::{read_limited, status_text};
pub use retry::{Attempt, RetryPolicy, RetryStatuses, RetryTransport};

/// Why reading an answer failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("the answer is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("cannot read the answer")]
    Read(#[source] std::io::Error),
}
