//! Process exit codes, as documented in DESIGN.md ("Exit codes").

/// The exit code classes hookbox reports; every error type maps onto one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything worked.
    Success = 0,
    /// A hook failed or a unit ended in error.
    HookFailed = 1,
    /// Bad command-line usage.
    Usage = 2,
    /// An invalid charm or archive.
    InvalidCharm = 3,
    /// Refused: incompatible upgrade, unit not in error, unknown unit.
    Refused = 4,
    /// The sandbox is unavailable or its setup failed.
    Sandbox = 5,
    /// The state store could not be read or written.
    State = 6,
}

impl ExitStatus {
    /// The numeric process exit code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Implemented by every module error so the binary can pick the exit code from the chain.
pub trait ClassifyExit {
    /// The exit code class this error belongs to.
    fn exit_status(&self) -> ExitStatus;
}
