//! Shared helpers for the integration tests: a private state root per test, the real
//! binary, the sandbox probe and the rootless (uid 65534) runner.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// The uid and gid the rootless tests run as.
pub const NOBODY: u32 = 65534;

/// One test's world: a private temp directory holding the state root and scratch files.
pub struct TestEnv {
    dir: TempDir,
}

impl TestEnv {
    /// A fresh environment; its directory is world-traversable so uid 65534 can use it.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("hookbox-test-")
            .tempdir()
            .expect("create test dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod test dir");
        Self { dir }
    }

    /// The test's scratch directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The state root this test's commands use.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// `hookbox --root <root> ARGS...`, as the current user.
    pub fn hookbox(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::new(binary());
        cmd.arg("--root").arg(self.root());
        cmd.env_remove("HOOKBOX_ROOT").env_remove("HOOKBOX_LOG");
        cmd
    }

    /// `hookbox --root <root> ARGS...` as uid/gid 65534, from a copy of the binary in a fresh
    /// directory that uid can reach (the checkout may sit where it cannot).
    pub fn hookbox_as_nobody(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::from_std(as_nobody(self.nobody_binary()));
        cmd.arg("--root").arg(self.root());
        cmd.env_remove("HOOKBOX_ROOT")
            .env_remove("HOOKBOX_LOG")
            .env("HOME", self.path());
        cmd
    }

    /// A copy of the hookbox binary in this test's directory, where uid 65534 can run it.
    pub fn nobody_binary(&self) -> PathBuf {
        let copy = self.path().join("bin/hookbox");
        if !copy.exists() {
            std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
            std::fs::copy(binary(), &copy).expect("copy hookbox binary");
            std::fs::set_permissions(
                copy.parent().unwrap(),
                std::fs::Permissions::from_mode(0o755),
            )
            .unwrap();
        }
        copy
    }
}

/// Who runs hookbox in a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// The test's own user (root in CI).
    Caller,
    /// uid/gid 65534 through setpriv: the rootless path.
    Nobody,
}

/// The identities a test can run under here: the caller, and uid 65534 when the tests run
/// as root (see [`require_root`]).
pub fn identities() -> Vec<Identity> {
    if require_root() {
        vec![Identity::Caller, Identity::Nobody]
    } else {
        vec![Identity::Caller]
    }
}

/// `program` run as uid/gid 65534 with no supplementary groups (`setpriv`); the program
/// must sit where that uid can reach it.
pub fn as_nobody(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid",
        "65534",
        "--regid",
        "65534",
        "--clear-groups",
        "--",
    ])
    .arg(program);
    cmd
}

/// Runs the tests matching `filter` again as uid 65534, from a copy of this test binary,
/// with `child_marker` set in their environment (the test calling this returns at once when
/// it sees it), and checks they pass and that `witness` (one of them) ran.
pub fn rerun_tests_as_nobody(filter: &str, child_marker: &str, witness: &str) {
    let env = TestEnv::new();
    let copy = env.path().join("tests-binary");
    std::fs::copy(std::env::current_exe().unwrap(), &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = as_nobody(&copy)
        .args([filter, "--test-threads=2"])
        .env(child_marker, "1")
        .env("TMPDIR", env.path())
        .env("HOME", env.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{filter} tests failed as uid 65534:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(&format!("{witness} ... ok")), "{stdout}");
}

/// The hookbox binary under test.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hookbox"))
}

/// Whether a test that needs user namespaces can run here. Under `HOOKBOX_REQUIRE_SANDBOX=1`
/// (CI) a missing feature fails the test instead of skipping it.
pub fn sandbox_available() -> bool {
    let ok = Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--mount",
            "--pid",
            "--fork",
            "true",
        ])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        let reason = "unprivileged user namespaces are not available (unshare -Ur failed)";
        if std::env::var_os("HOOKBOX_REQUIRE_SANDBOX").is_some_and(|v| v == "1") {
            panic!("HOOKBOX_REQUIRE_SANDBOX=1 but {reason}");
        }
        eprintln!("skipping: {reason}");
    }
    ok
}

/// Whether the tests run as root (the uid 65534 variants and the range id mapping need it).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Whether a test that needs root can run: `false` with a printed reason when the tests do
/// not run as root, except under `HOOKBOX_REQUIRE_SANDBOX=1` (CI), where it panics.
pub fn require_root() -> bool {
    if is_root() {
        return true;
    }
    let reason = "the tests do not run as root";
    if std::env::var_os("HOOKBOX_REQUIRE_SANDBOX").is_some_and(|v| v == "1") {
        panic!("HOOKBOX_REQUIRE_SANDBOX=1 but {reason}");
    }
    eprintln!("skipping: {reason}");
    false
}
