//! The per-unit lock: an exclusive `flock(2)` on `units/<app>-<n>/lock`, so two hookbox
//! processes never interleave on one unit. The kernel drops it when the holder exits, even
//! by SIGKILL, so a killed runner never leaves a unit locked. The holder writes its pid into
//! the file so that a waiter can say whom it waits for.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;
use rustix::io::Errno;

use super::{UnitError, UnitName};

/// A held unit lock; released on drop.
#[derive(Debug)]
pub struct UnitLock {
    file: File,
    path: PathBuf,
}

impl UnitLock {
    /// Takes the lock of `unit` at `path`, waiting for another process to release it; while
    /// waiting, logs `waiting for unit wp/0: locked by another hookbox process (pid N)` once
    /// and calls `on_wait` with that message (the CLI prints it).
    pub fn acquire(
        unit: &UnitName,
        path: &Path,
        on_wait: impl FnOnce(&str),
    ) -> Result<Self, UnitError> {
        let mut file = open(path)?;
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(Errno::WOULDBLOCK) => {
                let message = format!(
                    "waiting for unit {unit}: locked by another hookbox process{}",
                    holder_pid(&mut file)
                        .map(|p| format!(" (pid {p})"))
                        .unwrap_or_default()
                );
                tracing::info!(unit = %unit, "{message}");
                on_wait(&message);
                flock_retrying(&file, FlockOperation::LockExclusive)
                    .map_err(|e| lock_err(path)(e.into()))?;
            }
            Err(e) => return Err(lock_err(path)(e.into())),
        }
        Self::hold(file, path)
    }

    /// Takes the lock of `unit` at `path` if it is free; `UnitError::Locked` otherwise.
    pub fn try_acquire(unit: &UnitName, path: &Path) -> Result<Self, UnitError> {
        let mut file = open(path)?;
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Self::hold(file, path),
            Err(Errno::WOULDBLOCK) => Err(UnitError::Locked {
                unit: unit.clone(),
                pid: holder_pid(&mut file),
            }),
            Err(e) => Err(lock_err(path)(e.into())),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn hold(mut file: File, path: &Path) -> Result<Self, UnitError> {
        // The pid is informational (for waiters); the lock itself is the flock.
        let pid = std::process::id().to_string();
        // Overwritten, then cut to length: truncating to zero first would free and
        // reallocate the file's block at every command.
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.write_all(pid.as_bytes()))
            .and_then(|()| file.set_len(pid.len() as u64))
            .map_err(lock_err(path))?;
        Ok(Self {
            file,
            path: path.to_owned(),
        })
    }
}

impl Drop for UnitLock {
    fn drop(&mut self) {
        // Closing the fd releases the flock; unlocking first makes the release independent
        // of other fds to the same open file description.
        let _ = rustix::fs::flock(&self.file, FlockOperation::Unlock);
    }
}

/// `flock(file, op)`, repeated while a signal interrupts the wait (`EINTR`): the one way
/// hookbox waits for a lock file (the unit, application and relation-id locks).
pub fn flock_retrying(file: &File, op: FlockOperation) -> rustix::io::Result<()> {
    loop {
        match rustix::fs::flock(file, op) {
            Err(Errno::INTR) => continue,
            other => return other,
        }
    }
}

fn open(path: &Path) -> Result<File, UnitError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(lock_err(path))
}

fn holder_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(32).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

fn lock_err(path: &Path) -> impl FnOnce(std::io::Error) -> UnitError {
    let path = path.to_owned();
    move |source| UnitError::Lock { path, source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::time::{Duration, Instant};

    fn unit() -> UnitName {
        UnitName::parse("wp/0").unwrap()
    }

    #[test]
    fn a_second_process_is_refused_while_held_and_admitted_after_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let lock = UnitLock::try_acquire(&unit(), &path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            std::process::id().to_string()
        );
        let other = Command::new("flock")
            .arg("-n")
            .arg(&path)
            .arg("true")
            .status()
            .unwrap();
        assert!(!other.success(), "flock(1) got a held lock");
        drop(lock);
        let other = Command::new("flock")
            .arg("-n")
            .arg(&path)
            .arg("true")
            .status()
            .unwrap();
        assert!(other.success());
    }

    #[test]
    fn acquire_waits_for_another_process_and_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        // Another process takes the lock, records its pid and keeps it for a while.
        let ready = dir.path().join("ready");
        let mut holder = Command::new("flock")
            .arg(&path)
            .arg("sh")
            .arg("-c")
            .arg(format!(
                "echo $$ > {lock}; touch {ready}; sleep 0.6",
                lock = path.display(),
                ready = ready.display()
            ))
            .spawn()
            .unwrap();
        while !ready.exists() {
            std::thread::sleep(Duration::from_millis(10));
        }
        let err = UnitLock::try_acquire(&unit(), &path).unwrap_err();
        assert!(
            matches!(err, UnitError::Locked { pid: Some(_), .. }),
            "{err}"
        );
        let started = Instant::now();
        let mut said = String::new();
        let lock = UnitLock::acquire(&unit(), &path, |m| said = m.to_owned()).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(
            said.starts_with("waiting for unit wp/0: locked by another hookbox process (pid "),
            "{said}"
        );
        holder.wait().unwrap();
        drop(lock);
    }
}
