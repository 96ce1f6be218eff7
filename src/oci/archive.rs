//! Image archives: one tar holding an OCI image layout, plus Docker's `manifest.json` for the
//! docker-archive format. This is the tar `docker save` writes since Docker 25: `docker load`
//! and `podman load` read its `manifest.json`, OCI tools (skopeo `oci-archive:`, containerd)
//! read its `index.json`. Layers are stored as they were made: kiln's builds keep theirs
//! uncompressed (compressed on push, `transport::compress`), `kiln image` compresses as told.
//!
//! Layout of the tar, pinned: `blobs/`, `blobs/sha256/`, then the blobs in the order they were
//! produced (layers bottom first, then the config, then the manifest), then `index.json`,
//! `manifest.json` (docker-archive only) and `oci-layout`. Entries are ustar with mode 0644
//! (folders 0755), uid/gid 0 and the image's source time as mtime (see `oci::tar`).
//!
//! A blob's tar entry is named by its digest, which is known only after the blob is written.
//! Into a file, kiln writes a placeholder header, streams the blob behind it and then seeks
//! back to write the real header (the name `blobs/sha256/<64 hex>` always fits the ustar name
//! field, so the header is one block whatever the digest): one pass, no copy. Into a pipe
//! (`-o -`), which cannot seek, each compressed blob is first written to a temporary file and
//! then copied out.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};

use super::digest::Digest;
use super::image::BlobSink;
use super::json::to_canonical_vec;
use super::layout::{
    DOCKER_MANIFEST_FILE, INDEX_FILE, LayoutEntry, OCI_LAYOUT_CONTENT, OCI_LAYOUT_FILE,
    docker_manifest_for, index_for,
};
use super::tar::{BLOCK, END_OF_ARCHIVE, EntryHeader, EntryKind, header_blocks, padding};

/// Which archive to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveKind {
    /// OCI layout + `manifest.json`: what `docker load` and `podman load` read.
    Docker,
    /// The OCI layout alone.
    Oci,
}

enum Target {
    /// A seekable file, positioned at its end.
    File(File),
    /// A pipe; blobs are staged in temporary files first.
    Stream(Box<dyn Write>),
}

/// Writes an image archive.
pub struct ArchiveWriter {
    target: Target,
    kind: ArchiveKind,
    mtime: u64,
    written: BTreeSet<Digest>,
}

fn file_header(path: &str, size: u64, mtime: u64) -> Vec<u8> {
    header_blocks(&EntryHeader {
        path,
        kind: EntryKind::File { size },
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime,
    })
}

impl ArchiveWriter {
    /// Write into `file` (from its current position, which must be 0).
    pub fn to_file(file: File, kind: ArchiveKind, mtime: u64) -> io::Result<Self> {
        Self::start(Target::File(file), kind, mtime)
    }

    /// Write into a pipe or any other non-seekable writer.
    pub fn to_stream(out: Box<dyn Write>, kind: ArchiveKind, mtime: u64) -> io::Result<Self> {
        Self::start(Target::Stream(out), kind, mtime)
    }

    fn start(target: Target, kind: ArchiveKind, mtime: u64) -> io::Result<Self> {
        let mut writer = ArchiveWriter {
            target,
            kind,
            mtime,
            written: BTreeSet::new(),
        };
        for folder in ["blobs", "blobs/sha256"] {
            let header = header_blocks(&EntryHeader {
                path: folder,
                kind: EntryKind::Directory,
                mode: 0o755,
                uid: 0,
                gid: 0,
                mtime,
            });
            writer.out().write_all(&header)?;
        }
        Ok(writer)
    }

    fn out(&mut self) -> &mut dyn Write {
        match &mut self.target {
            Target::File(file) => file,
            Target::Stream(out) => out,
        }
    }

    fn write_file_entry(&mut self, path: &str, bytes: &[u8]) -> io::Result<()> {
        let header = file_header(path, bytes.len() as u64, self.mtime);
        let out = self.out();
        out.write_all(&header)?;
        out.write_all(bytes)?;
        out.write_all(padding(bytes.len() as u64))
    }

    /// Write the layout's files and the end of the archive; returns the file when writing
    /// to one (for the caller to sync and rename).
    pub fn finish(mut self, entries: &[LayoutEntry]) -> io::Result<Option<File>> {
        let index = to_canonical_vec(&index_for(entries, None)).map_err(io::Error::other)?;
        self.write_file_entry(INDEX_FILE, &index)?;
        if self.kind == ArchiveKind::Docker {
            let manifest =
                to_canonical_vec(&docker_manifest_for(entries)).map_err(io::Error::other)?;
            self.write_file_entry(DOCKER_MANIFEST_FILE, &manifest)?;
        }
        self.write_file_entry(OCI_LAYOUT_FILE, OCI_LAYOUT_CONTENT)?;
        self.out().write_all(&END_OF_ARCHIVE)?;
        self.out().flush()?;
        Ok(match self.target {
            Target::File(file) => Some(file),
            Target::Stream(_) => None,
        })
    }
}

/// A blob being written into the archive.
pub enum PendingArchiveBlob {
    /// Written in place behind a placeholder header at `header_offset`.
    InPlace {
        writer: BufWriter<File>,
        header_offset: u64,
    },
    /// Staged in an anonymous temporary file (unlinked from the start, so even a SIGKILL
    /// leaves nothing behind), copied into the stream on commit.
    Staged(BufWriter<File>),
}

impl Write for PendingArchiveBlob {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            PendingArchiveBlob::InPlace { writer, .. } => writer.write(buf),
            PendingArchiveBlob::Staged(writer) => writer.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            PendingArchiveBlob::InPlace { writer, .. } => writer.flush(),
            PendingArchiveBlob::Staged(writer) => writer.flush(),
        }
    }
}

impl BlobSink for ArchiveWriter {
    type Pending = PendingArchiveBlob;

    fn begin_blob(&mut self) -> io::Result<PendingArchiveBlob> {
        match &mut self.target {
            Target::File(file) => {
                let header_offset = file.stream_position()?;
                file.write_all(&[0u8; BLOCK])?;
                // A second handle on the same open file shares its offset, so the blob lands
                // right behind the placeholder; it moves to the compression threads.
                let handle = file.try_clone()?;
                Ok(PendingArchiveBlob::InPlace {
                    writer: BufWriter::with_capacity(256 * 1024, handle),
                    header_offset,
                })
            }
            Target::Stream(_) => {
                let staged = tempfile::tempfile()?;
                Ok(PendingArchiveBlob::Staged(BufWriter::with_capacity(
                    256 * 1024,
                    staged,
                )))
            }
        }
    }

    fn commit_blob(
        &mut self,
        pending: PendingArchiveBlob,
        digest: &Digest,
        size: u64,
    ) -> io::Result<()> {
        let duplicate = !self.written.insert(*digest);
        let mtime = self.mtime;
        match (pending, &mut self.target) {
            (
                PendingArchiveBlob::InPlace {
                    writer,
                    header_offset,
                },
                Target::File(file),
            ) => {
                drop(
                    writer
                        .into_inner()
                        .map_err(io::IntoInnerError::into_error)?,
                );
                let end = file.stream_position()?;
                if end != header_offset + BLOCK as u64 + size {
                    return Err(io::Error::other(format!(
                        "blob {digest}: wrote {} bytes, expected {size}",
                        end - header_offset - BLOCK as u64
                    )));
                }
                if duplicate {
                    file.set_len(header_offset)?;
                    file.seek(SeekFrom::Start(header_offset))?;
                    return Ok(());
                }
                file.write_all(padding(size))?;
                let header = file_header(&digest.blob_path(), size, mtime);
                debug_assert_eq!(header.len(), BLOCK);
                file.seek(SeekFrom::Start(header_offset))?;
                file.write_all(&header)?;
                file.seek(SeekFrom::End(0))?;
                Ok(())
            }
            (PendingArchiveBlob::Staged(writer), Target::Stream(out)) => {
                let mut staged = writer
                    .into_inner()
                    .map_err(io::IntoInnerError::into_error)?;
                if duplicate {
                    return Ok(());
                }
                out.write_all(&file_header(&digest.blob_path(), size, mtime))?;
                staged.seek(SeekFrom::Start(0))?;
                let copied = io::copy(&mut staged, out)?;
                if copied != size {
                    return Err(io::Error::other(format!(
                        "blob {digest}: staged {copied} bytes, expected {size}"
                    )));
                }
                out.write_all(padding(size))
            }
            _ => Err(io::Error::other(
                "blob committed to a different archive target",
            )),
        }
    }

    fn put_blob(&mut self, digest: &Digest, bytes: &[u8]) -> io::Result<()> {
        if !self.written.insert(*digest) {
            return Ok(());
        }
        self.write_file_entry(&digest.blob_path(), bytes)
    }
}
