//! The README's first set-up command, run as written (with the built binary in place of
//! `cargo run --release --`), from a fresh directory holding a copy of `examples/`.

use std::path::Path;
use std::process::Command;

use crate::util::{self, TestEnv};

/// The first `sh` block of the README: the main job on the bundled example charm.
fn first_command() -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("read README.md");
    let block = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README.md has a ```sh block");
    block.trim().to_owned()
}

fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("run cp");
    assert!(
        status.success(),
        "cp -a {} {}",
        from.display(),
        to.display()
    );
}

#[test]
fn readme_main_job_deploys_the_example_and_shows_it_active() {
    if !util::sandbox_available() {
        return;
    }
    let env = TestEnv::new();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"),
        &env.path().join("examples"),
    );
    let command = first_command();
    assert!(command.contains("cargo run --release --"), "{command}");
    let command = command.replace(
        "cargo run --release --",
        &util::binary().display().to_string(),
    );
    let output = Command::new("sh")
        .arg("-c")
        .arg(&command)
        .current_dir(env.path())
        .env_remove("HOOKBOX_ROOT")
        .output()
        .expect("run the README command");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{command}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // The status table's unit row comes last; the deploy's per-hook lines come before it.
    let unit_line = stdout
        .lines()
        .rfind(|l| l.starts_with("hello/0"))
        .unwrap_or_else(|| panic!("no hello/0 line in status:\n{stdout}"));
    assert!(unit_line.contains("idle"), "{unit_line}");
    assert!(unit_line.contains("active"), "{unit_line}");
}
