//! The lock that keeps a SQLite database to one canaryd process. SQLite cannot share
//! leases between machines, so a second process on the same file must refuse to start
//! rather than resume every analysis and drive their routers too.
//!
//! An advisory `flock` on `<database>.lock`, held for the life of the process: the
//! kernel drops it when the process dies, even by `kill -9`, so a crash never leaves a
//! stale lock behind. The file holds the holder's host and pid, for the refusal message.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::ports::StoreError;

#[derive(Debug)]
pub struct ProcessLock {
    _file: File,
    pub path: PathBuf,
}

/// `host pid N`, naming this process to others.
pub fn describe_self() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string());
    format!("{host} pid {}", std::process::id())
}

impl ProcessLock {
    /// Takes the lock of the database at `database`, or says who holds it.
    pub fn acquire(database: &Path) -> Result<Self, StoreError> {
        let mut path = database.as_os_str().to_owned();
        path.push(".lock");
        let path = PathBuf::from(path);
        let backend = |e: std::io::Error| {
            StoreError::Backend(format!("cannot open lock file {}: {e}", path.display()))
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(backend)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(StoreError::InUse {
                    path: database.display().to_string(),
                    holder: if holder.is_empty() {
                        "a process that has not written its name yet".to_string()
                    } else {
                        holder.to_string()
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(backend(e)),
        }
        file.set_len(0).map_err(backend)?;
        file.seek(SeekFrom::Start(0)).map_err(backend)?;
        file.write_all(format!("{}\n", describe_self()).as_bytes())
            .map_err(backend)?;
        file.sync_all().map_err(backend)?;
        Ok(Self { _file: file, path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_name() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("canaryd.db");
        let first = ProcessLock::acquire(&database).unwrap();
        // flock locks belong to the open file: a second open is a second holder.
        let error = ProcessLock::acquire(&database).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains(&database.display().to_string()),
            "{message}"
        );
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        drop(first);
        assert!(ProcessLock::acquire(&database).is_ok());
    }
}
