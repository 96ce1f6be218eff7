//! The two times an image carries: the mtime of every layer entry and the config's `created`.
//!
//! Both come from one source time: `SOURCE_DATE_EPOCH` (reproducible-builds.org) when it is
//! set, else 1970-01-01T00:00:01Z. One second rather than zero because some tar readers treat
//! a zero mtime as "unset" (Jib made the same choice), and `created` matches it so an image
//! built twice is the same image. `created = now` exists, but only when asked for.

use std::fmt;
use std::str::FromStr;

/// The mtime and `created` used when `SOURCE_DATE_EPOCH` is not set.
pub const DEFAULT_EPOCH_SECONDS: i64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum TimestampError {
    #[error("SOURCE_DATE_EPOCH is `{0}`, not a number of seconds since 1970-01-01T00:00:00Z")]
    InvalidSourceDateEpoch(String),
    #[error(
        "invalid time `{0}`: expected `epoch`, `now` or an RFC 3339 time such as 2024-05-01T12:00:00Z"
    )]
    InvalidCreated(String),
}

/// The source time in seconds since the Unix epoch: `SOURCE_DATE_EPOCH`, else 1.
pub fn source_date_epoch() -> Result<i64, TimestampError> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) if text.is_empty() => Ok(DEFAULT_EPOCH_SECONDS),
        Ok(text) => parse_source_date_epoch(&text),
        Err(std::env::VarError::NotPresent) => Ok(DEFAULT_EPOCH_SECONDS),
        Err(std::env::VarError::NotUnicode(text)) => Err(TimestampError::InvalidSourceDateEpoch(
            text.to_string_lossy().into_owned(),
        )),
    }
}

fn parse_source_date_epoch(text: &str) -> Result<i64, TimestampError> {
    // A tar header's mtime field holds 11 octal digits; later than that is not a real build.
    const MAX: i64 = 0o77777777777;
    match text.parse::<i64>() {
        Ok(seconds) if (0..=MAX).contains(&seconds) && text.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(seconds)
        }
        _ => Err(TimestampError::InvalidSourceDateEpoch(text.to_owned())),
    }
}

/// What the user asked `created` to be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Created {
    /// The source time (`SOURCE_DATE_EPOCH` or 1970-01-01T00:00:01Z).
    #[default]
    Epoch,
    /// The wall clock at build time, to the second. Not reproducible.
    Now,
    /// A fixed time.
    At(jiff::Timestamp),
}

impl FromStr for Created {
    type Err = TimestampError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "epoch" => Ok(Created::Epoch),
            "now" => Ok(Created::Now),
            _ => text
                .parse::<jiff::Timestamp>()
                .map(Created::At)
                .map_err(|_| TimestampError::InvalidCreated(text.to_owned())),
        }
    }
}

impl fmt::Display for Created {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Created::Epoch => f.write_str("epoch"),
            Created::Now => f.write_str("now"),
            Created::At(timestamp) => write!(f, "{}", format_rfc3339(*timestamp)),
        }
    }
}

impl Created {
    /// The `created` string for an image whose source time is `epoch_seconds`.
    pub fn resolve(self, epoch_seconds: i64) -> String {
        let timestamp = match self {
            Created::Epoch => {
                jiff::Timestamp::from_second(epoch_seconds).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
            }
            Created::Now => {
                let now = jiff::Timestamp::now();
                jiff::Timestamp::from_second(now.as_second()).unwrap_or(now)
            }
            Created::At(timestamp) => timestamp,
        };
        format_rfc3339(timestamp)
    }
}

/// RFC 3339 in UTC with a `Z`: seconds always, fractional digits only when not zero
/// (`1970-01-01T00:00:01Z`).
pub fn format_rfc3339(timestamp: jiff::Timestamp) -> String {
    timestamp.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_forms() {
        assert_eq!(Created::Epoch.resolve(1), "1970-01-01T00:00:01Z");
        assert_eq!(
            Created::Epoch.resolve(1_700_000_000),
            "2023-11-14T22:13:20Z"
        );
        let at: Created = "2024-05-01T14:00:00+02:00".parse().unwrap();
        assert_eq!(at.resolve(1), "2024-05-01T12:00:00Z");
        let fractional: Created = "2024-05-01T12:00:00.5Z".parse().unwrap();
        assert_eq!(fractional.resolve(1), "2024-05-01T12:00:00.5Z");
        assert!("yesterday".parse::<Created>().is_err());
        assert!("2024-05-01".parse::<Created>().is_err());
        let now = Created::Now.resolve(1);
        assert!(now.ends_with('Z') && !now.contains('.'), "{now}");
    }

    #[test]
    fn source_date_epoch_values() {
        assert_eq!(parse_source_date_epoch("0").unwrap(), 0);
        assert_eq!(
            parse_source_date_epoch("1700000000").unwrap(),
            1_700_000_000
        );
        for bad in ["-1", "+5", "1.5", "abc", " 1", "99999999999999"] {
            assert!(parse_source_date_epoch(bad).is_err(), "{bad}");
        }
    }
}
