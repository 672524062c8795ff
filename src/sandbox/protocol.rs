//! The messages between the runner and the sandbox helper, over the control socket that is
//! the helper's stdin. Each frame is a little-endian `u32` length and that many bytes of JSON.
//!
//! runner → helper: [`Start`].
//! helper → runner: [`HelperMessage::InitStarted`] once it forked the sandbox's init (a
//! helper that fails before or after sends [`HelperMessage::SetupFailed`]); the init then
//! sends [`HelperMessage::SetupFailed`], [`HelperMessage::HandlerMissing`] or
//! [`HelperMessage::Finished`]. The socket is close-on-exec in the command, so a command
//! that execs cleanly never sees it.
//!
//! helper → init, on a socket of their own: [`Proceed`] once the id maps are written,
//! carrying the idmapped lower layers as `SCM_RIGHTS` descriptors (the first batch with the
//! frame's first byte, further batches of at most [`sys::MAX_RIGHTS_PER_MESSAGE`] each on
//! one [`RIGHTS_MARKER`] byte).
//!
//! init's network child → init, on a socket of their own: [`NetworkReply`].

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;

use serde::{Deserialize, Serialize};

use super::spec::SandboxSpec;
use crate::sys;

/// Frames larger than this are refused (a spec is a few kilobytes).
pub const MAX_FRAME: usize = 16 << 20;

/// The first frame: what to build.
#[derive(Debug, Serialize, Deserialize)]
pub struct Start {
    /// The sandbox.
    pub spec: SandboxSpec,
    /// The runner's pid, to detect a runner that died before `PR_SET_PDEATHSIG` took hold.
    pub runner_pid: i32,
    /// Enforce the memory limit with `RLIMIT_AS` (no memory cgroup).
    pub rlimit_memory: bool,
    /// Enforce the pids limit with `RLIMIT_NPROC` (no pids cgroup).
    pub rlimit_pids: bool,
    /// The run's v2 cgroup directory, which the helper forks the init into.
    pub cgroup: Option<std::path::PathBuf>,
    /// The v1 cgroup `tasks` files the init writes `0` to, moving itself into the run's
    /// cgroups before it forks anything (see `LimitPlan::self_join_files`).
    pub join_cgroups: Vec<std::path::PathBuf>,
}

/// The helper's go-ahead to the init after writing its id maps and putting it in the run's
/// cgroups.
#[derive(Debug, Serialize, Deserialize)]
pub struct Proceed {
    /// How many idmapped mounts travel with this frame: one per
    /// [`SandboxSpec::idmap_groups`], in that order.
    pub idmapped_lowers: usize,
}

/// The init's network child → the init, on a socket of their own: the new network namespace
/// (one `SCM_RIGHTS` descriptor with [`NetworkReply::Ready`]) or why it could not be made.
#[derive(Debug, Serialize, Deserialize)]
pub enum NetworkReply {
    /// The namespace, its loopback up, travels with this frame.
    Ready,
    /// A step failed.
    Failed {
        /// What was being done.
        step: String,
        /// The errno.
        errno: i32,
    },
}

/// The byte that carries a further batch of descriptors after a frame.
pub const RIGHTS_MARKER: u8 = b'F';

/// What the helper reports.
#[derive(Debug, Serialize, Deserialize)]
pub enum HelperMessage {
    /// A setup step failed.
    SetupFailed {
        /// What was being done.
        step: String,
        /// The errno.
        errno: i32,
    },
    /// The helper forked the sandbox's init, in its new namespaces, as the runner's child
    /// (`CLONE_PARENT`): the runner waits for the init itself.
    InitStarted {
        /// The init's pid (as the runner sees it).
        pid: i32,
    },
    /// The command ended.
    Finished(HookStatus),
    /// Handler lookup found neither `dispatch` nor the hook: nothing was run.
    HandlerMissing,
}

/// How the sandboxed command ended, as its init saw it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub enum HookStatus {
    /// Exit code.
    Exited(i32),
    /// Killing signal.
    Signaled(i32),
}

/// Encodes one frame.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let body = serde_json::to_vec(value).expect("protocol messages always serialise");
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// Decodes a frame body.
pub fn decode<T: for<'de> Deserialize<'de>>(body: &[u8]) -> io::Result<T> {
    serde_json::from_slice(body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Writes one frame with blocking I/O (helper side).
pub fn send<T: Serialize>(mut out: impl Write, value: &T) -> io::Result<()> {
    out.write_all(&encode(value))
}

/// Reads one frame with blocking I/O (helper side).
pub fn receive<T: for<'de> Deserialize<'de>>(mut input: impl Read) -> io::Result<T> {
    let mut len = [0u8; 4];
    input.read_exact(&mut len)?;
    let mut body = vec![0u8; frame_len(u32::from_le_bytes(len))?];
    input.read_exact(&mut body)?;
    decode(&body)
}

/// A frame's announced body length, refused beyond [`MAX_FRAME`].
pub fn frame_len(len: u32) -> io::Result<usize> {
    let len = len as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    Ok(len)
}

/// Writes one frame with blocking I/O and `fds` attached: the first batch with the frame,
/// each further batch on one [`RIGHTS_MARKER`] byte.
pub fn send_with_rights<T: Serialize>(
    socket: &UnixStream,
    value: &T,
    fds: &[OwnedFd],
) -> io::Result<()> {
    let frame = encode(value);
    let mut batches = fds.chunks(sys::MAX_RIGHTS_PER_MESSAGE);
    let first = batches.next().unwrap_or_default();
    let sent = send_batch(socket, &frame, first)?;
    (&*socket).write_all(&frame[sent..])?;
    for batch in batches {
        send_batch(socket, &[RIGHTS_MARKER], batch)?;
    }
    Ok(())
}

fn send_batch(socket: &UnixStream, bytes: &[u8], fds: &[OwnedFd]) -> io::Result<usize> {
    let fds: Vec<_> = fds.iter().map(AsFd::as_fd).collect();
    loop {
        match sys::send_with_rights(socket.as_fd(), bytes, &fds) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => return result,
        }
    }
}

/// Reads one frame with blocking I/O (helper side), with the descriptors that arrive with
/// it, then `expected(&frame)` descriptors in all (further batches on [`RIGHTS_MARKER`]
/// bytes).
pub fn receive_with_rights<T: for<'de> Deserialize<'de>>(
    socket: &UnixStream,
    expected: impl FnOnce(&T) -> usize,
) -> io::Result<(T, Vec<OwnedFd>)> {
    let mut fds = Vec::new();
    let mut len = [0u8; 4];
    read_exact_with_rights(socket, &mut len, &mut fds)?;
    let mut body = vec![0u8; frame_len(u32::from_le_bytes(len))?];
    read_exact_with_rights(socket, &mut body, &mut fds)?;
    let value: T = decode(&body)?;
    let count = expected(&value);
    while fds.len() < count {
        let mut marker = [0u8; 1];
        read_exact_with_rights(socket, &mut marker, &mut fds)?;
        if marker[0] != RIGHTS_MARKER {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "expected a batch of descriptors",
            ));
        }
    }
    if fds.len() != count {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("expected {count} descriptors, got {}", fds.len()),
        ));
    }
    Ok((value, fds))
}

fn read_exact_with_rights(
    socket: &UnixStream,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let (n, received) = match sys::receive_with_rights(socket.as_fd(), &mut buf[filled..]) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => result?,
        };
        fds.extend(received);
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        filled += n;
    }
    Ok(())
}
