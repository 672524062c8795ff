//! Hook tools: `config-get`, `relation-set`, `juju-log` and the rest, with Juju's flags,
//! output formats, exit codes and error texts (DESIGN.md rule 3, HOOK-TOOLS.md).
//!
//! The tool a charm runs is the hookbox binary under the tool's name ([`client`]): it
//! forwards its argv and cwd over the runner's unix socket. Parsing and execution happen in
//! the runner's tool server ([`execute`]) against a [`session::HookSession`]: the
//! [`context::HookContext`] snapshot plus the [`context::HookEffects`] written so far.

pub mod client;
mod commands;
pub mod context;
mod flags;
pub mod format;
pub mod protocol;
pub mod session;
mod yaml_emit;
mod yaml_read;

pub use commands::{TOOL_NAMES, execute};
pub use context::{HookContext, HookEffects};

/// Whether `name` (the basename of argv[0]) is a hook tool hookbox serves.
pub fn is_tool_name(name: &str) -> bool {
    TOOL_NAMES.contains(&name)
}
