//! The `hookbox` binary: a thin shell over the library.
//!
//! Invoked under a hook tool's name (`config-get`, `juju-log`, ...) it is that tool's client;
//! `hookbox __sandbox-init` is the sandbox helper the runner re-executes; everything else is
//! the CLI. Errors are printed once, as a chain, and mapped to the documented exit codes.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    if let Some(tool) = hook_tool_name() {
        let args = std::env::args_os()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let code = hookbox::tools::client::run(&tool, args);
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    cli::main()
}

/// The hook tool this process runs as, when argv[0]'s basename names one.
fn hook_tool_name() -> Option<String> {
    let argv0 = std::env::args_os().next()?;
    let name = std::path::Path::new(&argv0).file_name()?.to_str()?;
    hookbox::tools::is_tool_name(name).then(|| name.to_owned())
}
