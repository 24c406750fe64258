//! The message as the verifiers and the evidence read it: one contiguous byte string, bounded
//! in memory.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::sync::Arc;

use tempfile::SpooledTempFile;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::Error;
use crate::message::SPOOL_IN_MEMORY;

/// The message as received (header section as rendered, then the body), as the verifier and
/// the evidence need it: one contiguous byte string. Up to [`SPOOL_IN_MEMORY`] it is on the
/// heap; beyond, it is copied from the spool into an unlinked temporary file that is mapped
/// read-only, so its bytes live in the page cache (evictable, file-backed), not on the heap.
pub(crate) enum Raw {
    Memory(Vec<u8>),
    Mapped(Mapped),
}

impl Raw {
    pub(crate) fn assemble(
        head: &[u8],
        body: &mut SpooledTempFile,
        body_len: u64,
    ) -> Result<Raw, Error> {
        body.seek(SeekFrom::Start(0)).map_err(Error::Spool)?;
        let len = head.len() as u64 + body_len;
        if len <= SPOOL_IN_MEMORY as u64 {
            let mut raw = Vec::with_capacity(len as usize);
            raw.extend_from_slice(head);
            body.read_to_end(&mut raw).map_err(Error::Spool)?;
            return Ok(Raw::Memory(raw));
        }
        let mut file = tempfile::tempfile().map_err(Error::Spool)?;
        file.write_all(head).map_err(Error::Spool)?;
        std::io::copy(body, &mut file).map_err(Error::Spool)?;
        Mapped::new(file).map(Raw::Mapped)
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Raw::Memory(v) => v,
            Raw::Mapped(m) => m.bytes(),
        }
    }
}

impl AsRef<[u8]> for Raw {
    fn as_ref(&self) -> &[u8] {
        self.bytes()
    }
}

/// A private read-only mapping of a whole file (never empty: it holds at least the header).
pub(crate) struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
    _file: std::fs::File,
}

// SAFETY: the mapping is read-only and owned by this value alone; the file is an unlinked
// temporary file nobody else can open or write.
unsafe impl Send for Mapped {}

impl Mapped {
    fn new(file: std::fs::File) -> Result<Mapped, Error> {
        let len = file.metadata().map_err(Error::Spool)?.len();
        let len = usize::try_from(len)
            .ok()
            .filter(|l| *l > 0)
            .ok_or(Error::State("spooled message has no mappable size"))?;
        // SAFETY: a fresh mapping of `len` bytes of an open file; the pointer is checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(Error::Spool(std::io::Error::last_os_error()));
        }
        Ok(Mapped {
            ptr,
            len,
            _file: file,
        })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes for as long as `self` lives, and the file
        // behind it is not written any more.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`, once.
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
    }
}

/// A verification slot for a message of `len` bytes beyond [`SPOOL_IN_MEMORY`] (none needed
/// below): what parsing such a message costs on the heap (decoded MIME parts) is then bounded
/// by slots x `max_message_size`, however many connections deliver at once.
pub(crate) async fn slot(
    slots: &Arc<Semaphore>,
    len: u64,
) -> Result<Option<OwnedSemaphorePermit>, Error> {
    if len <= SPOOL_IN_MEMORY as u64 {
        return Ok(None);
    }
    Arc::clone(slots)
        .acquire_owned()
        .await
        .map(Some)
        .map_err(|_| Error::State("verification slots closed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spool(body: &[u8]) -> SpooledTempFile {
        let mut s = SpooledTempFile::new(SPOOL_IN_MEMORY);
        // In pieces, as the body callback writes it.
        for chunk in body.chunks(65_535) {
            s.write_all(chunk).unwrap();
        }
        s
    }

    /// The bytes the verifier sees are head + body exactly, on either side of the threshold;
    /// beyond it they are not on the heap.
    #[test]
    fn raw_is_head_and_body_in_memory_or_mapped() {
        let head = b"From: a@example.org\r\nSubject: x\r\n\r\n".to_vec();
        let limit = SPOOL_IN_MEMORY - head.len();
        for (body_len, mapped) in [
            (0, false),
            (1, false),
            (limit, false),
            (limit + 1, true),
            (3 * SPOOL_IN_MEMORY + 7, true),
        ] {
            let body: Vec<u8> = (0..body_len).map(|i| (i % 251) as u8).collect();
            let mut s = spool(&body);
            let raw = Raw::assemble(&head, &mut s, body_len as u64).unwrap();
            assert_eq!(matches!(raw, Raw::Mapped(_)), mapped, "body of {body_len}");
            let bytes = raw.bytes();
            assert_eq!(bytes.len(), head.len() + body_len);
            assert_eq!(&bytes[..head.len()], head.as_slice());
            assert!(bytes[head.len()..] == body[..], "body of {body_len} intact");
            // A raw that moved to another thread (verification, then the evidence) still reads.
            let len = std::thread::spawn(move || raw.bytes().len())
                .join()
                .unwrap();
            assert_eq!(len, head.len() + body_len);
        }
    }
}
