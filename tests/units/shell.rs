//! `hookbox shell UNIT` without a command: an interactive shell on the caller's stdio
//! (tested with commands piped in, no pseudo-terminal), its exit code passed through, its
//! edits thrown away outside error and kept in the operator layer in error (rule 6).

use super::{Units, write_charm};
use crate::util::Identity as Mode;

fn piped_shell(mode: Mode) {
    let Some(u) = Units::new(mode) else { return };
    let charm = write_charm(
        &u.env,
        "piped",
        "",
        &[("hooks/update-status", "#!/bin/sh\nexit 1\n", 0o755)],
    );
    u.expect(&["deploy", charm.to_str().unwrap(), "piped"], 0);

    // Outside error: stdout and stderr are ours, the exit code passes through, the writes
    // are thrown away.
    let out = u
        .hb()
        .args(["shell", "piped/0"])
        .env("SHELL", "/nonexistent/shell")
        .write_stdin("echo hi > f; cat f; echo oops >&2; exit 3\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    assert_eq!(u.read("piped/0", "f"), None);

    // $SHELL is used when the sandbox has it.
    let out = u
        .hb()
        .args(["shell", "piped/0"])
        .env("SHELL", "/bin/sh")
        .write_stdin("echo \"$0\"; pwd\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "/bin/sh\n/var/lib/juju/agents/unit-piped-0/charm\n"
    );

    // In error: the edits go to the operator layer and `resolved` commits them.
    u.expect(&["run", "piped/0", "update-status"], 1);
    let out = u
        .hb()
        .args(["shell", "piped/0"])
        .write_stdin("echo fixed > fix; exit 0\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(u.read("piped/0", "fix").as_deref(), Some("fixed\n"));
    let operator = u.env.root().join("units/piped-0/operator/fix");
    assert_eq!(std::fs::read_to_string(&operator).unwrap(), "fixed\n");
    u.expect(&["resolved", "piped/0"], 0);
    assert_eq!(u.read("piped/0", "fix").as_deref(), Some("fixed\n"));
}

#[test]
fn a_shell_without_command_runs_on_the_callers_stdio_as_caller() {
    piped_shell(Mode::Caller);
}

#[test]
fn a_shell_without_command_runs_on_the_callers_stdio_as_nobody() {
    piped_shell(Mode::Nobody);
}
