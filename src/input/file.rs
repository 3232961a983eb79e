//! Opening an input file: a regular file is memory-mapped (never copied whole into memory), its
//! range registered for the SIGBUS message; a FIFO, a character device (`/dev/stdin`,
//! `/dev/null`: empty) or a socket is read to its end; a directory is refused, by name.

use std::fs::{File, Metadata};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use memmap2::Mmap;

use super::sigbus::{self, Registration};
use crate::error::{Error, Result};

/// A file's bytes: mapped, or read when it cannot be mapped.
pub(crate) enum Contents {
    Mapped(MappedFile),
    Read(Vec<u8>),
}

impl Contents {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Contents::Mapped(m) => &m.map,
            Contents::Read(bytes) => bytes,
        }
    }
}

/// A mapped regular file and what it was when mapped, to tell whether it changed since.
pub(crate) struct MappedFile {
    // Declared first, dropped first: the range is unregistered before it is unmapped.
    _registration: Option<Registration>,
    map: Mmap,
    file: File,
    path: PathBuf,
    len: u64,
    modified: Option<SystemTime>,
}

impl MappedFile {
    /// Asks the kernel to map the first `bytes` of the file into the process now, reading
    /// them from disk if they are not cached (Linux's `MADV_POPULATE_READ`), so that a pass
    /// over them later takes no page faults. A hint: where it fails (an older kernel, or a
    /// file truncated meanwhile, which the pass reports itself) nothing changes.
    pub fn populate(&self, bytes: usize) {
        #[cfg(target_os = "linux")]
        self.map
            .advise_range(memmap2::Advice::PopulateRead, 0, bytes.min(self.map.len()))
            .ok();
        #[cfg(not(target_os = "linux"))]
        let _ = bytes;
    }

    /// An error when the file's length or modification time is no longer what it was when
    /// mapped: it was truncated in place (the bytes past its end inside the last page read as
    /// zeros, with no SIGBUS) or rewritten, and what was read may be a mix of two files.
    pub fn check_unchanged(&self) -> Result<()> {
        let now = self.file.metadata().map_err(|e| Error::io(&self.path, e))?;
        if now.len() != self.len || now.modified().ok() != self.modified {
            return Err(Error::Data(changed_message(&self.path)));
        }
        Ok(())
    }
}

/// The one message for a file that changed under divgpu, from the handler or from a check.
pub(crate) fn changed_message(path: &Path) -> String {
    format!(
        "{}: the file changed while being read (truncated or rewritten); nothing was computed from it",
        path.display()
    )
}

/// What a file that is neither regular nor a directory is, for messages.
fn kind(meta: &Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO";
        } else if t.is_char_device() {
            return "a character device";
        } else if t.is_block_device() {
            return "a block device";
        } else if t.is_socket() {
            return "a socket";
        }
    }
    let _ = meta;
    "not a regular file"
}

/// Opens `path` for reading its bytes.
pub(crate) fn open(path: &Path) -> Result<Contents> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::Data(format!(
            "{}: is a directory, not a file",
            path.display()
        )));
    }
    if !meta.is_file() {
        // A stream: read what it holds (a block device would be read whole too: refused, as
        // its length is not known before and it is never an array file).
        #[cfg(unix)]
        if std::os::unix::fs::FileTypeExt::is_block_device(&meta.file_type()) {
            return Err(Error::Data(format!(
                "{}: is a block device; divgpu reads regular files, FIFOs and character devices",
                path.display()
            )));
        }
        let mut bytes = Vec::new();
        (&file).read_to_end(&mut bytes).map_err(|e| {
            Error::Data(format!(
                "{}: is {} and could not be read: {e}",
                path.display(),
                kind(&meta)
            ))
        })?;
        return Ok(Contents::Read(bytes));
    }
    if meta.len() == 0 {
        return Ok(Contents::Read(Vec::new()));
    }
    // SAFETY: the map is read-only. A file truncated while mapped is a SIGBUS, which
    // `sigbus` turns into this file's message; one rewritten in place is caught by
    // `check_unchanged` after the run.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    let range = map.as_ptr() as usize..map.as_ptr() as usize + map.len();
    let registration = sigbus::register(range, format!("divgpu: {}\n", changed_message(path)));
    Ok(Contents::Mapped(MappedFile {
        _registration: registration,
        map,
        file,
        path: path.to_path_buf(),
        len: meta.len(),
        modified: meta.modified().ok(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_named_as_one() {
        let dir = std::env::temp_dir();
        let Err(e) = open(&dir) else {
            panic!("a directory opened")
        };
        assert!(e.to_string().contains("is a directory"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn dev_null_is_empty() {
        let contents = open(Path::new("/dev/null")).unwrap();
        assert!(contents.bytes().is_empty());
    }

    #[test]
    fn a_mapped_file_that_changes_is_reported() {
        let dir = std::env::temp_dir().join(format!("divgpu-file-test-{}", std::process::id()));
        std::fs::write(&dir, [1u8; 10000]).unwrap();
        let Contents::Mapped(mapped) = open(&dir).unwrap() else {
            panic!("a regular file is mapped")
        };
        assert!(mapped.check_unchanged().is_ok());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&dir)
            .unwrap()
            .set_len(9999)
            .unwrap();
        let e = mapped.check_unchanged().unwrap_err().to_string();
        assert!(e.contains("changed while being read"), "{e}");
        drop(mapped);
        std::fs::remove_file(&dir).unwrap();
    }
}
