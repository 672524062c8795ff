//! SIGINT and SIGTERM to the runner while sandboxes run: forwarded to their inits, which pass
//! them to the commands, so a hook ends on its own terms (its traps run) and its run is
//! cleaned up and reported as usual. Received when no run is going, or before the next run
//! starts, such a signal ends the process as it would have without hookbox's handler.
//!
//! The handlers are installed by the first run and stay: the runtime's signal streams cannot
//! be given back, so [`end_if_received`] stands in for the default action between runs.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, Once};

use nix::sys::signal::Signal;
use tokio::signal::unix::{SignalKind, signal};

use crate::sys;

/// The pidfds of the inits of the runs going on, by run.
static RUNNING: Mutex<Vec<(u64, OwnedFd)>> = Mutex::new(Vec::new());
/// The last signal received, 0 if none.
static RECEIVED: AtomicI32 = AtomicI32::new(0);
static WATCH: Once = Once::new();

/// Installs the handlers (once per process) and starts forwarding; inside the runtime. A
/// signal we were started with ignored stays ignored.
pub fn watch() {
    WATCH.call_once(|| {
        let listen = |kind: SignalKind, which: Signal| {
            if sys::signal_ignored(which) {
                return Ok(None);
            }
            signal(kind).map(Some)
        };
        match (
            listen(SignalKind::terminate(), Signal::SIGTERM),
            listen(SignalKind::interrupt(), Signal::SIGINT),
        ) {
            (Ok(terminate), Ok(interrupt)) => {
                tokio::spawn(forward(terminate, interrupt));
            }
            _ => tracing::warn!("SIGINT and SIGTERM cannot be forwarded to sandboxes"),
        }
    });
}

/// The next signal of `stream`; never, without one.
async fn next(stream: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match stream {
        Some(stream) => stream.recv().await,
        None => std::future::pending().await,
    }
}

async fn forward(
    mut terminate: Option<tokio::signal::unix::Signal>,
    mut interrupt: Option<tokio::signal::unix::Signal>,
) {
    loop {
        let signal = tokio::select! {
            Some(()) = next(&mut terminate) => Signal::SIGTERM,
            Some(()) = next(&mut interrupt) => Signal::SIGINT,
            else => return,
        };
        RECEIVED.store(signal as i32, Ordering::SeqCst);
        let running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        if running.is_empty() {
            sys::die_by_signal(signal);
        }
        tracing::debug!(%signal, runs = running.len(), "forwarding to the sandboxes");
        let signal = match signal {
            Signal::SIGTERM => rustix::process::Signal::TERM,
            _ => rustix::process::Signal::INT,
        };
        for (_, init) in running.iter() {
            let _ = rustix::process::pidfd_send_signal(init, signal);
        }
    }
}

/// Ends the process by the SIGINT or SIGTERM it received while a run was going (and
/// forwarded to it), if any.
pub fn end_if_received() {
    if let Ok(signal) = Signal::try_from(RECEIVED.load(Ordering::SeqCst)) {
        sys::die_by_signal(signal);
    }
}

/// A run whose init receives the signals forwarded while it is held.
pub struct Forwarding(u64);

impl Forwarding {
    /// Forwards to the init behind `pidfd` (a pidfd cannot reach another process once that
    /// init is reaped).
    pub fn to(pidfd: &OwnedFd) -> std::io::Result<Self> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let pidfd = pidfd.try_clone()?;
        RUNNING
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, pidfd));
        Ok(Self(id))
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        RUNNING
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(id, _)| *id != self.0);
    }
}
