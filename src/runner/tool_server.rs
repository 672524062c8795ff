//! The hook-tool server for one hook run: a unix socket the sandbox has bound in, serving
//! the tools' requests one at a time (as Juju's uniter does) against the hook's
//! [`HookSession`], and handing back the [`HookEffects`] when the hook ends so the runner
//! applies them only if the hook succeeded.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::exit::{ClassifyExit, ExitStatus};
use crate::sandbox::IdMapping;
use crate::store::fsops::remove_tree;
use crate::tools::context::{HookContext, HookEffects};
use crate::tools::protocol::{ToolRequest, ToolResponse};
use crate::tools::session::HookSession;

/// The largest request line accepted (a `relation-set --file -` payload included).
const MAX_REQUEST_BYTES: u64 = 16 * 1024 * 1024;

/// Errors starting the tool server.
#[derive(Debug, thiserror::Error)]
pub enum ToolServerError {
    /// The socket could not be created.
    #[error("cannot listen on hook tool socket {path}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A socket directory left by a killed runner could not be removed.
    #[error("cannot remove a stale hook tool directory")]
    ClearAgentDir {
        /// The removal's error (it names the path).
        #[source]
        source: crate::store::fsops::FsError,
    },
    /// The private directory holding the socket could not be made.
    #[error("cannot {action} the hook tool directory {path}")]
    AgentDir {
        /// What failed (`create`, `restrict`, `list`).
        action: &'static str,
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl ClassifyExit for ToolServerError {
    fn exit_status(&self) -> ExitStatus {
        ExitStatus::Sandbox
    }
}

/// The hook-tool server.
pub struct ToolServer;

struct ServerState {
    session: HookSession,
    /// Set once the hook has ended: every later call is refused.
    finished: bool,
}

/// A running tool server; dropping it stops accepting and removes the socket.
pub struct ToolServerHandle {
    state: Arc<Mutex<ServerState>>,
    accept: tokio::task::JoinHandle<()>,
    socket_path: PathBuf,
}

impl ToolServer {
    /// Listens on `socket_path` and serves the tools of the hook described by `context` to
    /// callers whose uid (`SO_PEERCRED`, as the host sees it) is `peer_uid`: the host uid the
    /// sandbox's root maps to ([`IdMapping::host_root`]). The socket belongs to `peer_uid`,
    /// mode 0600, in a directory only the sandbox can search ([`create_agent_dir`]); the
    /// context id is checked on every call too. Must be called within a tokio runtime.
    pub fn start(
        socket_path: &Path,
        context: HookContext,
        peer_uid: u32,
    ) -> Result<ToolServerHandle, ToolServerError> {
        let bind_error = |source| ToolServerError::Bind {
            path: socket_path.to_owned(),
            source,
        };
        let listener = bind(socket_path).map_err(bind_error)?;
        std::fs::set_permissions(socket_path, std::fs::Permissions::from_mode(0o600))
            .map_err(bind_error)?;
        std::os::unix::fs::lchown(socket_path, Some(peer_uid), None).map_err(bind_error)?;
        let state = Arc::new(Mutex::new(ServerState {
            session: HookSession::new(context),
            finished: false,
        }));
        let accept_state = Arc::clone(&state);
        let accept = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        tokio::spawn(serve_connection(
                            stream,
                            Arc::clone(&accept_state),
                            peer_uid,
                        ));
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "hook tool socket accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                }
            }
        });
        Ok(ToolServerHandle {
            state,
            accept,
            socket_path: socket_path.to_owned(),
        })
    }
}

/// Binds `path`; a path longer than a socket address holds (108 bytes, `unix(7)`) is bound
/// through `/proc/self/fd/<its directory>/<name>`, which names the same place.
fn bind(path: &Path) -> std::io::Result<UnixListener> {
    const SUN_PATH_MAX: usize = 107;
    if path.as_os_str().len() <= SUN_PATH_MAX {
        return UnixListener::bind(path);
    }
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return UnixListener::bind(path);
    };
    let dir = std::fs::File::open(parent)?;
    let short = Path::new("/proc/self/fd")
        .join(std::os::fd::AsRawFd::as_raw_fd(&dir).to_string())
        .join(name);
    UnixListener::bind(short)
}

/// The directory of the name `run` in a unit's directory (`units/<u>/run/`) that holds the
/// hook-tool socket directory of its hook runs.
pub const AGENT_DIRS: &str = "run";

/// The name of the socket directory under [`AGENT_DIRS`].
const AGENT_DIR: &str = "agent";

/// The private directory the hook-tool socket of a hook run lives in, bound into its
/// sandbox: `<unit_dir>/run/agent/`.
#[derive(Debug)]
pub struct AgentDir {
    path: PathBuf,
}

impl AgentDir {
    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for AgentDir {
    /// Empties the directory (the sockets of the run); the directory stays for the next run.
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(&self.path) {
            for entry in entries.flatten() {
                let _ = remove_tree(&entry.path());
            }
        }
    }
}

/// Prepares `<unit_dir>/run/agent/` for a hook run: mode 0700 rootless (the caller is the
/// sandbox's root); as root, group = the id range's root gid and mode 0710 (on `run/` too),
/// so the sandbox can reach the socket and no other host user can. The directory is the
/// unit's, reused by every run (the caller holds the unit's lock, so no other run of the
/// unit is using it; a directory created and removed per run would cost an inode each
/// time); whatever a runner that was killed left in it, or beside it, is removed first.
pub fn create_agent_dir(unit_dir: &Path, ids: &IdMapping) -> Result<AgentDir, ToolServerError> {
    let parent = unit_dir.join(AGENT_DIRS);
    let dir = parent.join(AGENT_DIR);
    let error = |action, path: &Path| {
        let path = path.to_owned();
        move |source| ToolServerError::AgentDir {
            action,
            path,
            source,
        }
    };
    let clear = |entries: std::fs::ReadDir, keep: Option<&Path>, at: &Path| {
        for entry in entries {
            let stale = entry.map_err(error("list", at))?.path();
            if Some(stale.as_path()) != keep {
                remove_tree(&stale).map_err(|source| ToolServerError::ClearAgentDir { source })?;
            }
        }
        Ok::<(), ToolServerError>(())
    };
    // Neither may be a symlink: they are listed, emptied and chowned as the caller.
    let real_dir = |path: &Path| match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.is_dir() => Err(error("use", path)(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a directory (a symlink?)",
        ))),
        _ => Ok(()),
    };
    real_dir(&parent)?;
    real_dir(&dir)?;
    // `run/` keeps only `agent/`, and `agent/` starts empty; each is created if missing.
    for (path, keep) in [(&parent, Some(dir.as_path())), (&dir, None)] {
        match std::fs::read_dir(path) {
            Ok(entries) => clear(entries, keep, path)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                create_private_dir(path).map_err(error("create", path))?
            }
            Err(e) => return Err(error("list", path)(e)),
        }
    }
    if let IdMapping::Range { .. } = ids {
        use std::os::unix::fs::MetadataExt;
        let (_, gid) = ids.host_root();
        for path in [parent.as_path(), dir.as_path()] {
            let meta = std::fs::symlink_metadata(path).map_err(error("restrict", path))?;
            if meta.gid() == gid && meta.mode() & 0o7777 == 0o710 {
                continue;
            }
            std::os::unix::fs::lchown(path, None, Some(gid)).map_err(error("restrict", path))?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o710))
                .map_err(error("restrict", path))?;
        }
    }
    Ok(AgentDir { path: dir })
}

/// `mkdir(2)` with mode 0700; one that exists (a racing creator) is fine, a symlink is not.
fn create_private_dir(path: &Path) -> std::io::Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if std::fs::symlink_metadata(path)?.is_dir() {
                Ok(())
            } else {
                Err(e)
            }
        }
        result => result,
    }
}

impl ToolServerHandle {
    /// The socket path tools connect to (`JUJU_AGENT_SOCKET_ADDRESS`).
    pub fn socket_path(&self) -> &Path {
        &self.socket_path
    }

    /// Ends the hook: every later call fails, and the effects the tools produced are
    /// returned (a second call returns empty effects).
    pub fn finish(&self) -> HookEffects {
        let mut state = lock(&self.state);
        state.finished = true;
        std::mem::take(&mut state.session.effects)
    }
}

impl Drop for ToolServerHandle {
    fn drop(&mut self) {
        self.accept.abort();
        lock(&self.state).finished = true;
        let _ = std::fs::remove_file(&self.socket_path);
    }
}

fn lock(state: &Mutex<ServerState>) -> MutexGuard<'_, ServerState> {
    // A panic while serving one call must not wedge the hook's other calls.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn serve_connection(stream: UnixStream, state: Arc<Mutex<ServerState>>, peer_uid: u32) {
    // Only the hook's own processes may call: the socket's mode keeps others out, and this
    // keeps out whoever else can reach it (root, or a process that was handed the fd).
    let caller = stream.peer_cred().map(|cred| cred.uid());
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut line = String::new();
        let read = (&mut reader)
            .take(MAX_REQUEST_BYTES)
            .read_line(&mut line)
            .await;
        let response = match read {
            Ok(0) => return,
            Ok(_) if !line.ends_with('\n') => {
                ToolResponse::Error("bad request: request too large or truncated".to_owned())
            }
            Ok(_) if caller.as_ref().ok() != Some(&peer_uid) => {
                let caller = caller
                    .as_ref()
                    .map_or_else(|e| e.to_string(), u32::to_string);
                let refusal = format!("bad request: caller uid {caller} is not the hook's");
                let mut bytes =
                    serde_json::to_vec(&ToolResponse::Error(refusal)).unwrap_or_default();
                bytes.push(b'\n');
                let _ = write.write_all(&bytes).await;
                return;
            }
            Ok(_) => match serde_json::from_str::<ToolRequest>(&line) {
                Ok(request) => answer(&state, &request),
                Err(err) => ToolResponse::Error(format!("bad request: {err}")),
            },
            Err(err) => {
                tracing::debug!(error = %err, "hook tool connection read failed");
                return;
            }
        };
        let close = matches!(response, ToolResponse::Error(_)) && !line.ends_with('\n');
        let Ok(mut bytes) = serde_json::to_vec(&response) else {
            return;
        };
        bytes.push(b'\n');
        if write.write_all(&bytes).await.is_err() || close {
            return;
        }
    }
}

/// Juju's server-side checks, then the command, under the one-call-at-a-time lock.
fn answer(state: &Mutex<ServerState>, request: &ToolRequest) -> ToolResponse {
    if request.command.is_empty() {
        return ToolResponse::Error("bad request: command not specified".to_owned());
    }
    if !Path::new(&request.dir).is_absolute() {
        return ToolResponse::Error("bad request: Dir is not absolute".to_owned());
    }
    let mut state = lock(state);
    // Juju says `expected context id "<want>", got "<got>"`: that would hand the hook's
    // credential to anyone who asks, so only the caller's own id is echoed. Once the hook
    // has ended no id is valid.
    if state.finished || request.context_id != state.session.context.context_id {
        return ToolResponse::Error(format!(
            "bad request: unknown context id {:?}",
            request.context_id
        ));
    }
    let response = crate::tools::execute(&mut state.session, request);
    if let ToolResponse::Done { code, .. } = &response {
        tracing::debug!(
            tool = %request.command,
            code,
            context_id = %request.context_id,
            "hook tool call"
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::sandbox::IdRange;

    #[test]
    fn the_agent_dir_is_private_to_the_unit_and_replaces_stale_ones() {
        let unit = tempfile::tempdir().unwrap();
        let stale = unit.path().join(AGENT_DIRS).join("left-by-a-killed-runner");
        std::fs::create_dir_all(&stale).unwrap();
        std::fs::write(stale.join("agent.socket"), "").unwrap();
        let ids = IdMapping::Rootless {
            uid: rustix::process::getuid().as_raw(),
            gid: rustix::process::getgid().as_raw(),
        };
        let dir = create_agent_dir(unit.path(), &ids).unwrap();
        assert!(!stale.exists());
        assert_eq!(dir.path().parent().unwrap(), unit.path().join(AGENT_DIRS));
        assert_eq!(
            std::fs::metadata(dir.path()).unwrap().mode() & 0o7777,
            0o700
        );
        // A socket a killed runner left in the directory is gone at the next run, and the
        // directory itself is reused.
        std::fs::write(dir.path().join("agent.socket"), "").unwrap();
        let ino = std::fs::metadata(dir.path()).unwrap().ino();
        let first = dir.path().to_owned();
        std::mem::forget(dir);
        let again = create_agent_dir(unit.path(), &ids).unwrap();
        assert_eq!(again.path(), first);
        assert_eq!(std::fs::metadata(again.path()).unwrap().ino(), ino);
        assert_eq!(std::fs::read_dir(again.path()).unwrap().count(), 0);
        // Dropped, it is emptied and kept.
        std::fs::write(again.path().join("stdio.socket"), "").unwrap();
        let path = again.path().to_owned();
        drop(again);
        assert_eq!(std::fs::read_dir(&path).unwrap().count(), 0);
    }

    #[test]
    fn a_symlink_in_place_of_the_agent_dir_is_refused_and_its_target_untouched() {
        let unit = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep"), "x").unwrap();
        std::fs::create_dir(unit.path().join(AGENT_DIRS)).unwrap();
        std::os::unix::fs::symlink(outside.path(), unit.path().join(AGENT_DIRS).join("agent"))
            .unwrap();
        let ids = IdMapping::Rootless {
            uid: rustix::process::getuid().as_raw(),
            gid: rustix::process::getgid().as_raw(),
        };
        let err = create_agent_dir(unit.path(), &ids).unwrap_err();
        assert!(err.to_string().contains("agent"), "{err}");
        assert_eq!(std::fs::read(outside.path().join("keep")).unwrap(), b"x");
    }

    #[test]
    fn as_root_the_agent_dir_is_searchable_by_the_range_group_only() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipping: chown to the id range needs root");
            return;
        }
        let unit = tempfile::tempdir().unwrap();
        let range = |outside| IdRange {
            inside: 0,
            outside,
            count: 65536,
        };
        let ids = IdMapping::Range {
            uid: range(2_000_000),
            gid: range(3_000_000),
        };
        let dir = create_agent_dir(unit.path(), &ids).unwrap();
        for path in [unit.path().join(AGENT_DIRS), dir.path().to_owned()] {
            let meta = std::fs::metadata(&path).unwrap();
            assert_eq!((meta.mode() & 0o7777, meta.gid()), (0o710, 3_000_000));
        }
    }
}
