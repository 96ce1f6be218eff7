//! The index of an image tar: every entry's name, kind and place in the file, read once
//! without unpacking, refusing names that leave the archive, names given twice and entries
//! under a link or a file.

use super::*;

pub(super) fn index_tar(
    file: &File,
    path: &Path,
) -> Result<HashMap<String, TarEntry>, ReaderError> {
    let length = file.metadata().map_err(PathError::read(path))?.len();
    let not_a_tar = |reason: String| ReaderError::NotAnImage {
        path: path.to_owned(),
        reason,
    };
    if length == 0 {
        return Err(not_a_tar("it is empty".to_owned()));
    }
    let mut reader = TarReader::new_seekable(file);
    let mut index = HashMap::new();
    loop {
        let entry = match reader.next_entry() {
            Ok(Some(entry)) => entry,
            Ok(None) => break,
            Err(TarReadError::Malformed { offset: 0, .. }) => {
                return Err(not_a_tar(
                    "it is neither a folder nor a tar archive".to_owned(),
                ));
            }
            Err(source) => {
                return Err(ReaderError::Tar {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let raw_name = String::from_utf8_lossy(&entry.path).into_owned();
        let Some(name) = normalise_entry_name(&raw_name) else {
            return Err(ReaderError::EntryEscapes {
                path: path.to_owned(),
                entry: raw_name,
            });
        };
        let link = || {
            entry
                .link
                .as_ref()
                .map(|link| String::from_utf8_lossy(link).into_owned())
                .unwrap_or_default()
        };
        let kind = match entry.kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => TarEntryKind::File,
            tar::EntryType::Directory => TarEntryKind::Directory,
            tar::EntryType::Symlink => TarEntryKind::Symlink(link()),
            tar::EntryType::Link => TarEntryKind::HardLink(link()),
            _ => TarEntryKind::Other,
        };
        if matches!(kind, TarEntryKind::File)
            && entry.data_offset.saturating_add(entry.size) > length
        {
            return Err(ReaderError::Truncated {
                path: path.to_owned(),
                entry: raw_name,
                size: entry.size,
            });
        }
        if name.is_empty() {
            continue;
        }
        let is_folder = matches!(kind, TarEntryKind::Directory);
        let previous = index.insert(
            name.clone(),
            TarEntry {
                offset: entry.data_offset,
                size: entry.size,
                kind,
            },
        );
        // A folder may be listed twice; anything else twice is two different archives to
        // readers that take the first and readers that take the last.
        if previous
            .is_some_and(|previous| !is_folder || !matches!(previous.kind, TarEntryKind::Directory))
        {
            return Err(ReaderError::DuplicateEntry {
                path: path.to_owned(),
                entry: name,
            });
        }
    }
    if index.is_empty() {
        return Err(not_a_tar("the archive has no entries".to_owned()));
    }
    // Nothing may lie under a link or a file: `tar x` would write through a link, and kiln,
    // which resolves only the last component, would see another archive than it.
    let mut names: Vec<&String> = index.keys().collect();
    names.sort();
    for name in names {
        for (position, _) in name.match_indices('/') {
            let parent = &name[..position];
            let kind = match index.get(parent).map(|entry| &entry.kind) {
                None | Some(TarEntryKind::Directory) => continue,
                Some(TarEntryKind::Symlink(_)) => "symlink",
                Some(TarEntryKind::HardLink(_)) => "hard link",
                Some(TarEntryKind::File) => "file",
                Some(TarEntryKind::Other) => "special file",
            };
            return Err(ReaderError::UnderNonFolder {
                path: path.to_owned(),
                entry: name.clone(),
                parent: parent.to_owned(),
                kind,
            });
        }
    }
    Ok(index)
}

/// Reads `size` bytes at `offset` of a file, without moving any shared file offset.
pub struct RangeReader<'a> {
    pub(super) file: &'a File,
    pub(super) offset: u64,
    pub(super) remaining: u64,
}

impl Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(self.remaining.min(usize::MAX as u64) as usize);
        let read = self.file.read_at(&mut buf[..want], self.offset)?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive ends early",
            ));
        }
        self.offset += read as u64;
        self.remaining -= read as u64;
        Ok(read)
    }
}
