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

/// "outer: inner: innermost": an error and its sources joined by `": "`, the one way
/// hookbox renders an error chain (the binary's `error:` line, a failed hook's reason, the
/// doctor's details). Each module error's message never repeats its source, so each cause
/// appears once.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Implemented by every module error so the binary can pick the exit code from the chain.
pub trait ClassifyExit {
    /// The exit code class this error belongs to.
    fn exit_status(&self) -> ExitStatus;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open {path}")]
    struct Outer {
        path: &'static str,
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn a_chain_is_each_message_once_outer_first() {
        let error = Outer {
            path: "/x",
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        };
        assert_eq!(error_chain(&error), "cannot open /x: no such file");
        let wrapped = anyhow::Error::new(error).context("deploy web");
        assert_eq!(
            error_chain(wrapped.as_ref()),
            "deploy web: cannot open /x: no such file"
        );
    }
}
