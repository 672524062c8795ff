//! The hook-tool client: hookbox run under a tool's name. It knows nothing about the tools;
//! it forwards argv, cwd and (on demand) stdin or a file to the runner's socket and prints
//! the answer. It is synchronous and small because charms call `juju-log` dozens of times
//! per hook.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use super::protocol::{FileRead, ToolRequest, ToolResponse};

/// Why the client could not complete a call; printed as `ERROR <message>`, exit 1.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A required environment variable is missing or empty.
    #[error("{name} not set")]
    NotSet {
        /// The variable.
        name: &'static str,
    },
    /// The socket network is not `unix` (hookbox serves no tcp tools).
    #[error("unsupported socket network {network:?}")]
    UnsupportedNetwork {
        /// `JUJU_AGENT_SOCKET_NETWORK`.
        network: String,
    },
    /// The working directory could not be read.
    #[error("cannot get working directory: {}", go_error_text(source))]
    WorkingDirectory {
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Connecting to the socket failed.
    #[error("dial unix {address}: connect: {}", go_error_text(source))]
    Connect {
        /// The socket path.
        address: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The connection broke or the server sent something unreadable.
    #[error("hook tool server at {address}: {}", go_error_text(source))]
    Transport {
        /// The socket path.
        address: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// stdin could not be read.
    #[error("cannot read stdin: {}", go_error_text(source))]
    Stdin {
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The server refused the call.
    #[error("{message}")]
    Refused {
        /// The server's text.
        message: String,
    },
    /// The server kept asking for input.
    #[error("hook tool server asked for input too many times")]
    TooManyRoundTrips,
    /// The `-o` file could not be written.
    #[error("open {path}: {}", go_error_text(source))]
    OutputFile {
        /// The path.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// An io error as Go prints an errno: `no such file or directory`.
pub fn go_error_text(err: &std::io::Error) -> String {
    let text = err.to_string();
    let text = match text.find(" (os error ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

fn required_env(name: &'static str) -> Result<String, ClientError> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Ok(value),
        _ => Err(ClientError::NotSet { name }),
    }
}

/// Runs the tool `command` with `args` and returns the process exit code.
pub fn run(command: &str, args: Vec<String>) -> i32 {
    match call(command, args) {
        Ok(code) => code,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "ERROR {err}");
            1
        }
    }
}

fn call(command: &str, args: Vec<String>) -> Result<i32, ClientError> {
    let context_id = required_env("JUJU_CONTEXT_ID")?;
    let address = required_env("JUJU_AGENT_SOCKET_ADDRESS")?;
    let network = required_env("JUJU_AGENT_SOCKET_NETWORK")?;
    if network != "unix" {
        return Err(ClientError::UnsupportedNetwork { network });
    }
    let dir = std::env::current_dir().map_err(|source| ClientError::WorkingDirectory { source })?;
    let stream = UnixStream::connect(&address).map_err(|source| ClientError::Connect {
        address: address.clone(),
        source,
    })?;
    let transport = |source| ClientError::Transport {
        address: address.clone(),
        source,
    };
    let mut writer = stream.try_clone().map_err(transport)?;
    let mut reader = BufReader::new(stream);
    let mut request = ToolRequest {
        context_id,
        dir: dir.to_string_lossy().into_owned(),
        command: command.to_owned(),
        args,
        ..ToolRequest::default()
    };
    for _ in 0..16 {
        let mut line = serde_json::to_vec(&request).map_err(|e| transport(e.into()))?;
        line.push(b'\n');
        writer.write_all(&line).map_err(transport)?;
        let mut answer = String::new();
        if reader.read_line(&mut answer).map_err(transport)? == 0 {
            return Err(transport(std::io::ErrorKind::UnexpectedEof.into()));
        }
        let response: ToolResponse =
            serde_json::from_str(&answer).map_err(|e| transport(e.into()))?;
        match response {
            ToolResponse::Done {
                code,
                stdout,
                stderr,
                output_file,
            } => {
                match output_file {
                    Some(path) => std::fs::write(&path, stdout.as_bytes())
                        .map_err(|source| ClientError::OutputFile { path, source })?,
                    None => {
                        let _ = std::io::stdout().write_all(stdout.as_bytes());
                        let _ = std::io::stdout().flush();
                    }
                }
                let _ = std::io::stderr().write_all(stderr.as_bytes());
                return Ok(code);
            }
            ToolResponse::Error(message) => return Err(ClientError::Refused { message }),
            ToolResponse::NeedStdin => {
                let mut input = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut input)
                    .map_err(|source| ClientError::Stdin { source })?;
                request.stdin = Some(String::from_utf8_lossy(&input).into_owned());
            }
            ToolResponse::NeedFile(path) => {
                let read = match std::fs::read(Path::new(&path)) {
                    Ok(bytes) => FileRead::Content(String::from_utf8_lossy(&bytes).into_owned()),
                    Err(err) => FileRead::Error(format!("open {path}: {}", go_error_text(&err))),
                };
                request.files.insert(path, read);
            }
        }
    }
    Err(ClientError::TooManyRoundTrips)
}
