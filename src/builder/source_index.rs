//! kiln's record of files it has hashed, so that an unchanged file is not read again: git's
//! index idea, with git's rule for edits made within one clock tick.
//!
//! A record holds what `lstat` says of a file (device, inode, mode, size, mtime and ctime to
//! the nanosecond) and the sha256 of its bytes. A later scan trusts the digest only when
//! `lstat` still says exactly that, and the record is *settled*: its mtime and ctime are
//! older than [`SETTLE_MARGIN_NANOS`] (two seconds) before the moment the scan that took it began ([`Clock`]).
//!
//! Why that is enough: the kernel sets a file's ctime to the current time on every change of
//! its bytes, its mode or its name, and no system call sets ctime to anything else (`touch -r`
//! and `utimensat` restore mtime, never ctime). A record is taken after its scan began, so
//! a change after the record was taken gets a ctime no earlier than the scan's start, which is
//! later than a settled record's ctime: `lstat` differs and the file is read again. A change
//! in the same clock tick as the record, or an inode reused for a new file, looks identical
//! only when the record's ctime is that recent, and such records are never trusted (git
//! calls them "racily clean" and re-reads them). The margin also covers a project on a
//! filesystem whose clock runs a little behind this machine's. What it assumes: a clock that
//! does not step back by more than the margin, and nobody with the power to reset the clock
//! rewriting files to defeat kiln.
//!
//! A wrong digest could only make kiln miss an edit, never build bytes other than the ones
//! named: every file that reaches a build folder is hashed again as it is copied
//! ([`super::worktree`]), and the build's recipe names those bytes.
//!
//! Format (version 2), written whole and renamed into place, without waiting for the disk:
//!
//! ```text
//! kiln stat index 2
//! boot <the boot's id, `crate::output::boot_id`>
//! started <seconds> <nanoseconds>
//! <device> <inode> <mode> <size> <mtime s> <mtime ns> <ctime s> <ctime ns> <sha256 hex> <path>
//! …
//! end <sha256 hex of every byte above this line>
//! ```
//!
//! Paths are relative, UTF-8 and free of newlines (the scan refuses others). A file that does
//! not parse, or whose last line does not match, is ignored whole: every file is read again.
//! So is an index of another boot: neither the index nor the files it describes were synced,
//! and after a power loss a file's bytes may not be the ones its unchanged `lstat` suggests
//! (a build folder's copy, say); after a reboot, one full scan costs less than a sync on every
//! build (and the machine has no way to tell a reboot from a power loss).

use std::collections::HashMap;
use std::fs::Metadata;
use std::io::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use sha2::Digest as _;

use crate::oci::digest::Digest;
use crate::output::{AtomicFile, OutputError};

const HEADER: &str = "kiln stat index 2\n";

/// How long a record must have been settled before the scan that took it began.
pub const SETTLE_MARGIN_NANOS: i128 = 2_000_000_000;

/// A moment in the filesystem's time, in nanoseconds since the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Clock(i128);

impl Clock {
    /// 1970: before every file, so nothing is settled against it.
    pub const EPOCH: Clock = Clock(0);

    /// The filesystem's time now: the mtime of a file made for the purpose in `folder` (the
    /// kernel stamps files with a coarse clock that can lag the system clock by a tick, and
    /// comparing like with like is the point). Falls back to the system clock.
    pub fn now(folder: &Path) -> Clock {
        let system = || {
            let elapsed = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            Clock(elapsed.as_nanos() as i128)
        };
        match tempfile::Builder::new()
            .prefix(crate::output::TEMP_PREFIX)
            .tempfile_in(folder)
        {
            Ok(file) => match file.as_file().metadata() {
                Ok(metadata) => Clock::of(metadata.mtime(), metadata.mtime_nsec()),
                Err(_) => system(),
            },
            Err(_) => system(),
        }
    }

    fn of(seconds: i64, nanoseconds: i64) -> Clock {
        Clock(i128::from(seconds) * 1_000_000_000 + i128::from(nanoseconds))
    }

    fn parts(self) -> (i64, i64) {
        (
            (self.0.div_euclid(1_000_000_000)) as i64,
            (self.0.rem_euclid(1_000_000_000)) as i64,
        )
    }
}

/// What `lstat` says of a file, as far as it tells whether the bytes may have changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStat {
    pub device: u64,
    pub inode: u64,
    pub mode: u32,
    pub size: u64,
    pub mtime: Clock,
    pub ctime: Clock,
}

impl FileStat {
    pub fn of(metadata: &Metadata) -> FileStat {
        FileStat {
            device: metadata.dev(),
            inode: metadata.ino(),
            mode: metadata.mode(),
            size: metadata.size(),
            mtime: Clock::of(metadata.mtime(), metadata.mtime_nsec()),
            ctime: Clock::of(metadata.ctime(), metadata.ctime_nsec()),
        }
    }

    /// The same as [`FileStat::of`] for what `fstatat` gave (`source_walk`): the same fields,
    /// so records taken either way compare equal.
    pub fn of_stat(stat: &rustix::fs::Stat) -> FileStat {
        FileStat {
            device: stat.st_dev,
            inode: stat.st_ino,
            mode: stat.st_mode,
            size: stat.st_size as u64,
            mtime: Clock::of(stat.st_mtime, stat.st_mtime_nsec as i64),
            ctime: Clock::of(stat.st_ctime, stat.st_ctime_nsec as i64),
        }
    }

    /// Whether a record with this stat, taken by a scan that began at `started`, is old
    /// enough to trust (see the module docs).
    pub fn is_settled(&self, started: Clock) -> bool {
        let limit = started.0 - SETTLE_MARGIN_NANOS;
        self.mtime.0 < limit && self.ctime.0 < limit
    }
}

/// One file as it was hashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub stat: FileStat,
    pub digest: Digest,
}

/// The records of one folder (a project's sources, or a build folder kiln keeps).
#[derive(Clone, Debug)]
pub struct StatIndex {
    started: Clock,
    records: HashMap<String, Record>,
}

impl StatIndex {
    /// An index of the scan that begins at `started`.
    pub fn new(started: Clock) -> StatIndex {
        StatIndex {
            started,
            records: HashMap::new(),
        }
    }

    /// The index at `path`, or `None` when there is none or it cannot be trusted as a whole
    /// (torn, another version, garbage, written in another boot): then every file is read
    /// again.
    pub fn read(path: &Path) -> Option<StatIndex> {
        let bytes = std::fs::read(path).ok()?;
        parse(&bytes, crate::output::boot_id()?)
    }

    /// The digest of the file at `path` (relative) when the record says its bytes cannot
    /// have changed since it was hashed.
    pub fn trusted(&self, path: &str, stat: &FileStat) -> Option<Digest> {
        let record = self.records.get(path)?;
        (record.stat == *stat && record.stat.is_settled(self.started)).then_some(record.digest)
    }

    /// The record of `path`, trusted or not.
    pub fn get(&self, path: &str) -> Option<&Record> {
        self.records.get(path)
    }

    /// Whether a record with `stat` is settled with respect to this index's scan.
    pub fn is_settled(&self, stat: &FileStat) -> bool {
        stat.is_settled(self.started)
    }

    pub fn insert(&mut self, path: String, record: Record) {
        self.records.insert(path, record);
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The bytes of the index (records sorted by path, so equal indexes are equal files).
    fn to_bytes(&self, boot: Option<&str>) -> Vec<u8> {
        let mut text = String::with_capacity(HEADER.len() + self.records.len() * 140);
        text.push_str(HEADER);
        text.push_str(&format!("boot {}\n", boot.unwrap_or("-")));
        let (seconds, nanoseconds) = self.started.parts();
        text.push_str(&format!("started {seconds} {nanoseconds}\n"));
        let mut paths: Vec<&String> = self.records.keys().collect();
        paths.sort();
        for path in paths {
            let Record { stat, digest } = &self.records[path];
            let (mtime_s, mtime_ns) = stat.mtime.parts();
            let (ctime_s, ctime_ns) = stat.ctime.parts();
            text.push_str(&format!(
                "{} {} {} {} {mtime_s} {mtime_ns} {ctime_s} {ctime_ns} {} {path}\n",
                stat.device,
                stat.inode,
                stat.mode,
                stat.size,
                digest.hex()
            ));
        }
        let check = hex::encode(sha2::Sha256::digest(text.as_bytes()));
        text.push_str(&format!("end {check}\n"));
        text.into_bytes()
    }

    /// Write the index to `path` whole (a temporary in `temp_folder`, renamed over `path`), so
    /// a reader sees the old index or the new one, never a mixture, and a second kiln writing
    /// beside this one leaves one of the two.
    pub fn write(&self, path: &Path, temp_folder: &Path) -> Result<(), OutputError> {
        let mut file = AtomicFile::create_in(temp_folder, path)?;
        file.file()
            .write_all(&self.to_bytes(crate::output::boot_id()))
            .map_err(crate::diagnostic::PathError::write(path))?;
        file.commit_unsynced()
    }
}

/// The index in `bytes`, if it is whole and was written in `boot`.
fn parse(bytes: &[u8], boot: &str) -> Option<StatIndex> {
    let body_end = bytes.strip_suffix(b"\n")?;
    let end_start = body_end.iter().rposition(|&byte| byte == b'\n')? + 1;
    let (body, end) = bytes.split_at(end_start);
    let check = end.strip_prefix(b"end ")?.strip_suffix(b"\n")?;
    let mut actual = [0u8; 64];
    hex::encode_to_slice(sha2::Sha256::digest(body), &mut actual).ok()?;
    if actual.as_slice() != check {
        return None;
    }
    let rest = std::str::from_utf8(body.strip_prefix(HEADER.as_bytes())?).ok()?;
    let mut lines = rest.lines();
    if lines.next()?.strip_prefix("boot ")? != boot {
        return None;
    }
    let started = lines.next()?.strip_prefix("started ")?;
    let (seconds, nanoseconds) = started.split_once(' ')?;
    let mut index = StatIndex::new(Clock::of(seconds.parse().ok()?, nanoseconds.parse().ok()?));
    // Each record line is about 140 bytes: room for all without rehashing.
    index.records.reserve(rest.len() / 100);
    for line in lines {
        let mut fields = line.splitn(10, ' ');
        let mut number = || fields.next().and_then(|field| field.parse::<i64>().ok());
        let device = number()? as u64;
        let inode = number()? as u64;
        let mode = u32::try_from(number()?).ok()?;
        let size = u64::try_from(number()?).ok()?;
        let mtime = Clock::of(number()?, number()?);
        let ctime = Clock::of(number()?, number()?);
        let digest_hex = fields.next()?;
        let path = fields.next()?;
        let mut raw = [0u8; 32];
        hex::decode_to_slice(digest_hex, &mut raw).ok()?;
        index.insert(
            path.to_owned(),
            Record {
                stat: FileStat {
                    device,
                    inode,
                    mode,
                    size,
                    mtime,
                    ctime,
                },
                digest: Digest::from_raw(raw),
            },
        );
    }
    Some(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(ctime_seconds: i64) -> FileStat {
        FileStat {
            device: 2049,
            inode: 1234,
            mode: 0o100644,
            size: 13,
            mtime: Clock::of(ctime_seconds - 5, 7),
            ctime: Clock::of(ctime_seconds, 999_999_999),
        }
    }

    #[test]
    fn records_round_trip_and_damage_discards_the_whole_index() {
        let temp = tempfile::tempdir().unwrap();
        let mut index = StatIndex::new(Clock::of(1_800_000_000, 5));
        index.insert(
            "vendor/a b/c.go".to_owned(),
            Record {
                stat: stat(1_700_000_000),
                digest: Digest::of(b"package c\n"),
            },
        );
        index.insert(
            "main.go".to_owned(),
            Record {
                stat: stat(1_700_000_001),
                digest: Digest::of(b"package main\n"),
            },
        );
        let path = temp.path().join("index");
        index.write(&path, temp.path()).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        let boot = crate::output::boot_id().expect("Linux gives a boot id");
        assert!(text.starts_with(&format!("kiln stat index 2\nboot {boot}\nstarted 1800000000 5\n2049 1234 33188 13 1699999996 7 1700000001 999999999 ")), "{text}");
        let read = StatIndex::read(&path).unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(
            read.trusted("vendor/a b/c.go", &stat(1_700_000_000)),
            Some(Digest::of(b"package c\n"))
        );
        // Written again, the same bytes (sorted records).
        read.write(&path, temp.path()).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        // One flipped byte, a torn end, another version, or another boot (its checksum made
        // right): nothing is trusted.
        let resealed = |text: &str| {
            let body = &text[..text.rfind("end ").unwrap()];
            format!("{body}end {}\n", hex::encode(sha2::Sha256::digest(body)))
        };
        assert_eq!(resealed(&text), text);
        let other_boot = "00000000-1111-2222-3333-444444444444";
        assert_ne!(boot, other_boot);
        for damaged in [
            text.replacen("13 1699999996", "14 1699999996", 1),
            text[..text.len() - 10].to_owned(),
            resealed(&text.replacen("index 2", "index 1", 1)),
            resealed(&text.replacen(boot, other_boot, 1)),
        ] {
            std::fs::write(&path, damaged).unwrap();
            assert!(StatIndex::read(&path).is_none());
        }
    }

    #[test]
    fn only_settled_records_that_match_exactly_are_trusted() {
        let started = Clock::of(1_000, 0);
        let mut index = StatIndex::new(started);
        let digest = Digest::of(b"x");
        let old = stat(990);
        index.insert("old".to_owned(), Record { stat: old, digest });
        // Changed in the same second as the scan that recorded it (a racily clean entry).
        let racy = stat(999);
        index.insert("racy".to_owned(), Record { stat: racy, digest });
        assert_eq!(index.trusted("old", &old), Some(digest));
        assert_eq!(index.trusted("racy", &racy), None);
        assert_eq!(index.trusted("missing", &old), None);
        // Any field differing: read again.
        let mut changed = old;
        changed.ctime = Clock::of(995, 0);
        assert_eq!(index.trusted("old", &changed), None);
        let mut replaced = old;
        replaced.inode += 1;
        assert_eq!(index.trusted("old", &replaced), None);
        let mut chmod = old;
        chmod.mode |= 0o111;
        assert_eq!(index.trusted("old", &chmod), None);
        // The margin: a record whose ctime is just under two seconds before the scan is not
        // settled, one just over is.
        assert!(
            !FileStat {
                ctime: Clock::of(998, 1),
                ..old
            }
            .is_settled(started)
        );
        assert!(
            FileStat {
                ctime: Clock::of(997, 999_999_999),
                ..old
            }
            .is_settled(started)
        );
    }
}
