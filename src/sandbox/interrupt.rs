//! SIGINT and SIGTERM to the runner while sandboxes run: forwarded to their inits, which pass
//! them to the commands, so a hook ends on its own terms (its traps run) and its run is
//! cleaned up and reported as usual. Received when no run is going, such a signal ends the
//! process as it would have without hookbox's handler; received during a run, it ends the
//! process before the next run starts, or when the command is done ([`end_if_received`]).
//!
//! The forwarding is done by the signal handler itself ([`sys::forward_signals`]), not by a
//! task of an async runtime: the unit commands run hooks on several runtimes, one per
//! worker thread, which come and go.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Once;

use nix::sys::signal::Signal;

use crate::sys;

static WATCH: Once = Once::new();

/// Installs the handlers, once per process. A signal we were started with ignored stays
/// ignored.
pub fn watch() {
    WATCH.call_once(|| {
        if let Err(error) = sys::forward_signals(&[Signal::SIGINT, Signal::SIGTERM]) {
            tracing::warn!(%error, "SIGINT and SIGTERM cannot be forwarded to sandboxes");
        }
    });
}

/// Ends the process by the SIGINT or SIGTERM it received while a run was going (and
/// forwarded to it), if any.
pub fn end_if_received() {
    if let Some(signal) = sys::forwarded_signal() {
        sys::die_by_signal(signal);
    }
}

/// A run whose init receives the signals forwarded while it is held.
pub struct Forwarding {
    slot: Option<usize>,
    /// Our own descriptor of the init's pidfd, open while the handler may use it.
    _pidfd: OwnedFd,
}

impl Forwarding {
    /// Forwards to the init behind `pidfd` (a pidfd cannot reach another process once that
    /// init is reaped).
    pub fn to(pidfd: &OwnedFd) -> std::io::Result<Self> {
        let pidfd = pidfd.try_clone()?;
        let slot = sys::forward_to(pidfd.as_fd());
        if slot.is_none() {
            tracing::warn!("too many sandboxes at once: SIGINT and SIGTERM do not reach this one");
        }
        Ok(Self {
            slot,
            _pidfd: pidfd,
        })
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            sys::stop_forwarding(slot);
        }
    }
}
