//! Shared helpers for the integration tests: a private state root per test, the real
//! binary, the sandbox probe and the rootless (uid 65534) runner.

#![allow(dead_code)]

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
        let mut cmd = assert_cmd::Command::new("setpriv");
        cmd.args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "--",
        ])
        .arg(&copy)
        .arg("--root")
        .arg(self.root());
        cmd.env_remove("HOOKBOX_ROOT")
            .env_remove("HOOKBOX_LOG")
            .env("HOME", self.path());
        cmd
    }
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

/// Whether the tests run as root (needed for the uid 65534 variants).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}
