//! One hook run: context, environment, tools server, commit or discard.

pub mod tool_server;
