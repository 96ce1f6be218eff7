//! Writing an [`ImageGraph`] into an OCI layout or a new archive: every blob hashed on the
//! way and checked against its descriptor, an archive replaced whole only once complete.

use std::io;
use std::path::Path;

use super::{BlobSource, ImageGraph, TransportError};
use crate::diagnostic::PathError;
use crate::oci::archive::{ArchiveKind, ArchiveWriter};
use crate::oci::digest::HashingWriter;
use crate::oci::image::BlobSink;
use crate::oci::layout::{LayoutEntry, LayoutWriter};
use crate::oci::spec::Descriptor;

/// Copy one blob into a layout or archive, hashing it on the way.
fn copy_blob<S: BlobSink>(
    source: &dyn BlobSource,
    descriptor: &Descriptor,
    sink: &mut S,
    destination: &Path,
) -> Result<(), TransportError> {
    let mut reader = source.open_blob(descriptor)?;
    let pending = sink.begin_blob().map_err(PathError::write(destination))?;
    let mut hashing = HashingWriter::new(pending);
    let copied = io::copy(&mut reader, &mut hashing);
    let (pending, digest, size) = hashing.finish();
    copied.map_err(|error| TransportError::Invalid {
        location: source.describe(),
        message: format!("reading blob {}: {error}", descriptor.digest),
    })?;
    if digest != descriptor.digest || size != descriptor.size {
        return Err(TransportError::Mismatch {
            location: source.describe(),
            what: "blob".to_owned(),
            digest: descriptor.digest,
            detail: format!("{size} bytes hashing to {digest}"),
        });
    }
    sink.commit_blob(pending, &digest, size)
        .map_err(PathError::write(destination))?;
    Ok(())
}

fn copy_graph<S: BlobSink>(
    source: &dyn BlobSource,
    graph: &ImageGraph,
    sink: &mut S,
    destination: &Path,
) -> Result<(), TransportError> {
    for blob in &graph.blobs {
        copy_blob(source, blob, sink, destination)?;
    }
    for (descriptor, bytes) in &graph.documents {
        sink.put_blob(&descriptor.digest, bytes)
            .map_err(PathError::write(destination))?;
    }
    Ok(())
}

/// Write `graph` into an OCI layout folder (added to one already there).
pub fn write_layout(
    source: &dyn BlobSource,
    graph: &ImageGraph,
    folder: &Path,
    entry: LayoutEntry,
) -> Result<(), TransportError> {
    let mut layout = LayoutWriter::open(folder)?;
    copy_graph(source, graph, &mut layout, folder)?;
    layout.finish(&[entry])?;
    Ok(())
}

/// Write `graph` into a new archive at `path`, replaced whole only once complete.
pub fn write_archive(
    source: &dyn BlobSource,
    graph: &ImageGraph,
    path: &Path,
    kind: ArchiveKind,
    entry: LayoutEntry,
) -> Result<(), TransportError> {
    let mut file = crate::output::AtomicFile::create(path)?;
    let handle = file.file().try_clone().map_err(PathError::write(path))?;
    let mut archive = ArchiveWriter::to_file(handle, kind, 0).map_err(PathError::write(path))?;
    copy_graph(source, graph, &mut archive, path)?;
    if let Some(handle) = archive.finish(&[entry]).map_err(PathError::write(path))? {
        handle.sync_all().map_err(PathError::write(path))?;
    }
    file.commit()?;
    Ok(())
}
