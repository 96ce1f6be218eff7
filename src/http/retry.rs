//! When kiln asks a server again: one policy type, [`RetryPolicy`], whose fields say how
//! often, how long to wait, and which failures another attempt may cure.
//!
//! The waits grow exponentially: `first_delay` before the second attempt, then twice as long
//! before each later one (200 ms, 400 ms for a GOPROXY; 250 ms, 500 ms, 1 s, 2 s for a
//! registry). There is no jitter: kiln makes few requests to any one server at once, and
//! tests can count attempts and shorten the waits without randomness.
//!
//! Only what another attempt can change is retried: a 5xx (the server's trouble), 429 (it
//! asks us to slow down), and a transport failure that may be transient. A 4xx other than
//! 429 says the request is wrong and is final at once.

use std::io;
use std::time::Duration;

/// Which answers are worth another attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryStatuses {
    /// 5xx and 429 Too Many Requests.
    ServerErrorsAndTooManyRequests,
    /// 5xx only: a 429 is final.
    ServerErrors,
}

/// Which transport failures (no answer at all) are worth another attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryTransport {
    /// Timeouts, I/O errors, a host name that does not resolve, a refused connection and a
    /// broken HTTP exchange; other ureq errors (a bad URL, TLS, too many redirects) are final.
    Transient,
    /// Every failure: the caller cannot tell a broken stream from a broken server and sends
    /// the whole request again anyway.
    Any,
    /// Every failure but the signs that the scheme is wrong for the server (TLS to a plain
    /// HTTP server or the reverse, a refused or failed connection, a redirect loop): those
    /// are final at once, so the caller tries the next scheme rather than waiting.
    UnlessWrongScheme,
}

/// How often to try a request, how long to wait between tries, and what to try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least one is made).
    pub attempts: u32,
    /// The wait before the second attempt; it doubles before each later one.
    pub first_delay: Duration,
    pub statuses: RetryStatuses,
    pub transport: RetryTransport,
}

impl RetryPolicy {
    /// A GOPROXY: three attempts, the first wait 200 ms.
    pub const fn goproxy() -> Self {
        RetryPolicy {
            attempts: 3,
            first_delay: Duration::from_millis(200),
            statuses: RetryStatuses::ServerErrorsAndTooManyRequests,
            transport: RetryTransport::Transient,
        }
    }

    /// The static base's package index and wheels: the same numbers as a GOPROXY.
    pub const fn static_base() -> Self {
        RetryPolicy::goproxy()
    }

    /// A registry request: five attempts, the first wait 250 ms, every transport failure
    /// retried (a push streams gigabytes, and a dropped connection is the common failure).
    pub const fn registry() -> Self {
        RetryPolicy {
            attempts: 5,
            first_delay: Duration::from_millis(250),
            statuses: RetryStatuses::ServerErrorsAndTooManyRequests,
            transport: RetryTransport::Any,
        }
    }

    /// A registry's token service: as [`RetryPolicy::registry`], but a 429 is final.
    pub const fn registry_token() -> Self {
        RetryPolicy {
            statuses: RetryStatuses::ServerErrors,
            ..RetryPolicy::registry()
        }
    }

    /// The `GET /v2/` that finds a registry's scheme: as [`RetryPolicy::registry`], but a
    /// 429 is final and a sign of the wrong scheme ends the attempts at once.
    pub const fn registry_ping() -> Self {
        RetryPolicy {
            statuses: RetryStatuses::ServerErrors,
            transport: RetryTransport::UnlessWrongScheme,
            ..RetryPolicy::registry()
        }
    }

    /// This policy with another first wait (tests make it a millisecond).
    pub const fn with_first_delay(self, first_delay: Duration) -> Self {
        RetryPolicy {
            first_delay,
            ..self
        }
    }

    /// Whether an answer with `status` is worth another attempt.
    pub fn retries_status(&self, status: ureq::http::StatusCode) -> bool {
        status.is_server_error()
            || status.as_u16() == 429
                && self.statuses == RetryStatuses::ServerErrorsAndTooManyRequests
    }

    /// Whether a request that failed with `error` is worth another attempt.
    pub fn retries_error(&self, error: &ureq::Error) -> bool {
        match self.transport {
            RetryTransport::Transient => matches!(
                error,
                ureq::Error::Timeout(_)
                    | ureq::Error::Io(_)
                    | ureq::Error::HostNotFound
                    | ureq::Error::ConnectionFailed
                    | ureq::Error::Protocol(_)
            ),
            RetryTransport::Any => true,
            RetryTransport::UnlessWrongScheme => {
                !(matches!(
                    error,
                    ureq::Error::Tls(_)
                        | ureq::Error::Rustls(_)
                        | ureq::Error::Protocol(_)
                        | ureq::Error::TooManyRedirects
                        | ureq::Error::ConnectionFailed
                ) || matches!(error, ureq::Error::Io(io_error)
                    if io_error.kind() == io::ErrorKind::ConnectionRefused))
            }
        }
    }

    /// The wait after failed attempt `attempt` (counting from 1).
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.first_delay.saturating_mul(1 << doublings)
    }

    /// Call `attempt` with the attempt number (from 1) until it is done or fails, or has
    /// been tried [`RetryPolicy::attempts`] times; then the last retryable failure is the
    /// answer. Waits as the module doc says between attempts.
    pub fn run<T, E>(&self, mut attempt: impl FnMut(u32) -> Attempt<T, E>) -> Result<T, E> {
        let mut number = 1;
        loop {
            match attempt(number) {
                Attempt::Done(value) => return Ok(value),
                Attempt::Fail(error) => return Err(error),
                Attempt::Retry(error) if number >= self.attempts => return Err(error),
                Attempt::Retry(_) => {
                    std::thread::sleep(self.delay_after(number));
                    number += 1;
                }
            }
        }
    }
}

/// What one attempt came to.
#[derive(Debug)]
pub enum Attempt<T, E> {
    Done(T),
    /// Another attempt may cure this; it is the answer if none is left.
    Retry(E),
    /// Final, whatever the attempt number.
    Fail(E),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> ureq::http::StatusCode {
        ureq::http::StatusCode::from_u16(code).unwrap()
    }

    #[test]
    fn policies_are_pinned() {
        for (name, policy, attempts, first_ms, too_many_requests) in [
            ("goproxy", RetryPolicy::goproxy(), 3, 200, true),
            ("static base", RetryPolicy::static_base(), 3, 200, true),
            ("registry", RetryPolicy::registry(), 5, 250, true),
            (
                "registry token",
                RetryPolicy::registry_token(),
                5,
                250,
                false,
            ),
            ("registry ping", RetryPolicy::registry_ping(), 5, 250, false),
        ] {
            assert_eq!(policy.attempts, attempts, "{name}");
            assert_eq!(
                policy.first_delay,
                Duration::from_millis(first_ms),
                "{name}"
            );
            assert_eq!(
                policy.retries_status(status(429)),
                too_many_requests,
                "{name}"
            );
            for code in [500, 502, 503, 599] {
                assert!(policy.retries_status(status(code)), "{name} {code}");
            }
            for code in [200, 301, 400, 401, 403, 404, 410, 413] {
                assert!(!policy.retries_status(status(code)), "{name} {code}");
            }
        }
    }

    #[test]
    fn transport_errors_by_kind() {
        let refused = || ureq::Error::Io(io::Error::from(io::ErrorKind::ConnectionRefused));
        let reset = || ureq::Error::Io(io::Error::from(io::ErrorKind::ConnectionReset));
        let goproxy = RetryPolicy::goproxy();
        assert!(goproxy.retries_error(&refused()));
        assert!(goproxy.retries_error(&ureq::Error::HostNotFound));
        assert!(goproxy.retries_error(&ureq::Error::ConnectionFailed));
        assert!(!goproxy.retries_error(&ureq::Error::TooManyRedirects));
        assert!(!goproxy.retries_error(&ureq::Error::BadUri("x".to_owned())));
        let registry = RetryPolicy::registry();
        assert!(registry.retries_error(&ureq::Error::TooManyRedirects));
        let ping = RetryPolicy::registry_ping();
        assert!(!ping.retries_error(&refused()));
        assert!(!ping.retries_error(&ureq::Error::ConnectionFailed));
        assert!(!ping.retries_error(&ureq::Error::TooManyRedirects));
        assert!(ping.retries_error(&reset()));
        assert!(ping.retries_error(&ureq::Error::HostNotFound));
    }

    #[test]
    fn waits_double() {
        let policy = RetryPolicy::registry();
        let waits: Vec<u128> = (1..5)
            .map(|attempt| policy.delay_after(attempt).as_millis())
            .collect();
        assert_eq!(waits, [250, 500, 1000, 2000]);
        // No overflow, however many attempts a policy allows.
        assert!(policy.delay_after(u32::MAX) > Duration::from_secs(1 << 20));
    }

    #[test]
    fn run_stops_at_done_fail_or_the_last_attempt() {
        let quick = RetryPolicy::goproxy().with_first_delay(Duration::from_millis(1));
        let mut calls = Vec::new();
        let outcome: Result<u32, String> = quick.run(|attempt| {
            calls.push(attempt);
            Attempt::Retry(format!("attempt {attempt}"))
        });
        assert_eq!(outcome, Err("attempt 3".to_owned()));
        assert_eq!(calls, [1, 2, 3]);
        let outcome: Result<u32, String> = quick.run(|attempt| {
            if attempt == 2 {
                Attempt::Done(attempt)
            } else {
                Attempt::Retry(String::new())
            }
        });
        assert_eq!(outcome, Ok(2));
        let mut calls = 0;
        let outcome: Result<u32, &str> = quick.run(|_| {
            calls += 1;
            Attempt::Fail("final")
        });
        assert_eq!((outcome, calls), (Err("final"), 1));
    }
}
