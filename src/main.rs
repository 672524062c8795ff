//! The `hookbox` binary: a thin shell over the library.
//!
//! `hookbox __sandbox-init` is the sandbox helper the runner re-executes; everything else is
//! the CLI. Errors are printed once, as a chain, and mapped to the documented exit codes.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    // The sandbox helper: before any runtime, thread or argument parsing.
    if std::env::args_os().nth(1).as_deref()
        == Some(std::ffi::OsStr::new(hookbox::sandbox::INIT_ARG))
    {
        hookbox::sandbox::init::main();
    }
    cli::main()
}
