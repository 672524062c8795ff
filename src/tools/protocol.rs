//! The messages between a hook tool (the client, inside the sandbox) and the runner's tool
//! server: one JSON object per line over a unix stream socket.
//!
//! Like Juju's `Jujuc.Main`, a call carries no stdin at first; when the command needs it
//! the server answers [`ToolResponse::NeedStdin`] and the client repeats the call with its
//! stdin. Files named by `--file` live in the sandbox, so the client reads them the same way
//! ([`ToolResponse::NeedFile`]), and writes `-o/--output` files itself.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One tool invocation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ToolRequest {
    /// `JUJU_CONTEXT_ID` as the tool saw it.
    pub context_id: String,
    /// The tool's absolute working directory (relative paths resolve against it).
    pub dir: String,
    /// The tool's name (`basename(argv[0])`).
    pub command: String,
    /// `argv[1..]`.
    pub args: Vec<String>,
    /// The tool's whole stdin, once the server has asked for it.
    pub stdin: Option<String>,
    /// Files the server asked for, by absolute path.
    pub files: BTreeMap<String, FileRead>,
}

/// The client's reading of a file the server asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileRead {
    /// The file's content.
    Content(String),
    /// Why it could not be read, in Go's words (`open /x: no such file or directory`).
    Error(String),
}

/// The server's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolResponse {
    /// The command ran: write these out and exit with `code`.
    Done {
        /// Exit code.
        code: i32,
        /// Standard output (written to `output_file` instead when that is set).
        stdout: String,
        /// Standard error.
        stderr: String,
        /// `-o/--output`: the absolute path to write stdout to.
        output_file: Option<String>,
    },
    /// The call was refused (`ERROR <text>`, exit 1).
    Error(String),
    /// Repeat the call with stdin.
    NeedStdin,
    /// Repeat the call with this file's content.
    NeedFile(String),
}
