//! The `hookbox` binary: a thin shell over the library.
//!
//! `hookbox __sandbox-init` is the sandbox helper the runner re-executes; everything else is
//! the CLI. Errors are printed once, as a chain, and mapped to the documented exit codes.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
