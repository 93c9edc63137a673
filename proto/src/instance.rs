//! One process per socket: a lock file beside each listening socket.
//!
//! `mimamori-gw run` and `mimamori-cp serve` hold an exclusive advisory lock on
//! `<socket>.lock` for their whole life. The kernel drops it when the process ends,
//! however it ends (a `kill -9` included), so a lock nobody holds means the socket beside
//! it is stale and may be replaced, and a lock someone holds means the socket is in use and
//! must never be unlinked. Unlike a connect probe this has no window between the check and
//! the bind: two processes starting at once cannot both win.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Held for as long as the process serves `socket`; dropping it releases the lock.
#[derive(Debug)]
pub struct InstanceLock {
    path: PathBuf,
    _file: File,
}

impl InstanceLock {
    /// Takes the lock beside `socket`. `what` names the holder in the error ("gateway",
    /// "control plane"). The file records the holder's pid for whoever looks.
    pub fn acquire(socket: &Path, what: &str) -> Result<InstanceLock, String> {
        let path = lock_path(socket);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("{}: cannot open the lock file: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                return Err(format!(
                    "{}: another {what} is running (pid {}) and holds {} — stop it first, or give this one another socket",
                    socket.display(),
                    if holder.is_empty() { "unknown" } else { holder },
                    path.display()
                ));
            }
            Err(TryLockError::Error(e)) => {
                return Err(format!("{}: cannot lock: {e}", path.display()));
            }
        }
        // Ours now: record who holds it (best effort; the lock is what counts).
        let _ = file.set_len(0);
        let _ = writeln!(file, "{}", std::process::id());
        Ok(InstanceLock { path, _file: file })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `<socket>.lock`, in the socket's own folder.
pub fn lock_path(socket: &Path) -> PathBuf {
    let mut p = socket.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = std::env::temp_dir().join(format!("mm-instance-{}", std::process::id()));
        let sock = dir.join("gw.sock");
        let first = InstanceLock::acquire(&sock, "gateway").unwrap();
        assert_eq!(first.path(), dir.join("gw.sock.lock"));
        let err = InstanceLock::acquire(&sock, "gateway").unwrap_err();
        assert!(err.contains("another gateway is running"), "{err}");
        assert!(err.contains(&std::process::id().to_string()), "{err}");
        drop(first);
        let again = InstanceLock::acquire(&sock, "gateway").unwrap();
        drop(again);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
