//! Opening a segment to inspect it: `O_RDONLY | O_NOFOLLOW | O_NONBLOCK` (through `sys`, like
//! every system call), then mapped `PROT_READ` (`shm::mapping`), so that a ring can be
//! inspected by anyone who may read it, without write access and without any way to disturb it.

use crate::error::{Error, Result};
use crate::shm::segment::validate_name;
use crate::shm::sys;

/// Opens `name` read-only (never following a symlink, never blocking on a FIFO) and returns the
/// descriptor and the object's size. Anything but a regular file is `Corrupt`.
pub(crate) fn open(name: &str) -> Result<(sys::Handle, u64)> {
    validate_name(name)?;
    let fd = sys::open_to_inspect(name).map_err(|e| match e {
        rustix::io::Errno::LOOP => Error::Corrupt {
            name: name.into(),
            reason: "it is a symbolic link, not a segment".into(),
        },
        e => sys::error(e, "open", name),
    })?;
    match sys::regular_file_size(&fd).map_err(|e| sys::error(e, "stat", name))? {
        Some(size) => Ok((fd, size)),
        None => Err(Error::Corrupt {
            name: name.into(),
            reason: "it is not a regular file".into(),
        }),
    }
}

#[cfg(all(test, not(miri)))]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use crate::error::Error;
    use crate::shm::sys::SHM_DIR;

    /// Opens `name` on another thread: a planted FIFO that blocked the open would hang it, so
    /// it gives `None` after a bound instead of hanging the run.
    fn open_bounded(name: &str) -> Option<crate::error::Result<u64>> {
        let (tx, rx) = mpsc::channel();
        let n = name.to_owned();
        std::thread::spawn(move || {
            let _ = tx.send(super::open(&n).map(|(_, size)| size));
        });
        rx.recv_timeout(Duration::from_secs(10)).ok()
    }

    /// Whatever is planted under a name in place of a segment (a FIFO nobody writes, a
    /// directory) is refused as not a regular file, at once.
    #[test]
    fn a_fifo_or_directory_under_a_name_is_refused_without_blocking() {
        let fifo = format!("/ndr-map-fifo-{}", std::process::id());
        let path = format!("{SHM_DIR}{fifo}");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            path.as_str(),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let got = open_bounded(&fifo);
        std::fs::remove_file(&path).unwrap();
        let got = got.expect("opening a planted FIFO to inspect it blocked");
        assert!(
            matches!(&got, Err(Error::Corrupt { reason, .. }) if reason.contains("not a regular file")),
            "{got:?}"
        );

        let dir = format!("/ndr-map-dir-{}", std::process::id());
        let path = format!("{SHM_DIR}{dir}");
        std::fs::create_dir(&path).unwrap();
        let got = open_bounded(&dir);
        std::fs::remove_dir(&path).unwrap();
        assert!(matches!(&got, Some(Err(Error::Corrupt { .. }))), "{got:?}");
    }
}
