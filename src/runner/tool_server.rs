//! The hook-tool server for one hook run: a unix socket the sandbox has bound in, serving
//! the tools' requests one at a time (as Juju's uniter does) against the hook's
//! [`HookSession`], and handing back the [`HookEffects`] when the hook ends so the runner
//! applies them only if the hook succeeded.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::exit::{ClassifyExit, ExitStatus};
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
    /// Listens on `socket_path` (a filesystem socket, mode 0666: the context id is the
    /// credential) and serves the tools of the hook described by `context`. Must be called
    /// within a tokio runtime.
    pub fn start(
        socket_path: &Path,
        context: HookContext,
    ) -> Result<ToolServerHandle, ToolServerError> {
        let bind_error = |source| ToolServerError::Bind {
            path: socket_path.to_owned(),
            source,
        };
        let listener = UnixListener::bind(socket_path).map_err(bind_error)?;
        std::fs::set_permissions(socket_path, std::fs::Permissions::from_mode(0o666))
            .map_err(bind_error)?;
        let state = Arc::new(Mutex::new(ServerState {
            session: HookSession::new(context),
            finished: false,
        }));
        let accept_state = Arc::clone(&state);
        let accept = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        tokio::spawn(serve_connection(stream, Arc::clone(&accept_state)));
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

async fn serve_connection(stream: UnixStream, state: Arc<Mutex<ServerState>>) {
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
    let expected = if state.finished {
        ""
    } else {
        state.session.context.context_id.as_str()
    };
    if request.context_id != expected {
        return ToolResponse::Error(format!(
            "bad request: expected context id {:?}, got {:?}",
            expected, request.context_id
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
