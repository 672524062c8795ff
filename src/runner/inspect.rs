//! The operator's views of a unit: `diff` (what runtime changed against the charm base,
//! like `git status`) and `shell` (the sandbox over the unit's charm dir).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::model::runtime::{AppRuntime, UnitRuntime};
use crate::model::{Unit, UnitName};
use crate::sandbox::{self, BindMount, Lower, RunOptions, RunReport, SandboxSpec};
use crate::store::digest::{EntryKind, TreeEntry};
use crate::store::merge::{Change, Listing, flatten_layers};
use crate::store::squash::OverlayXattrs;

use super::RunnerError;
use super::hook_run::{Runner, open_unit};

/// How a path differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiffStatus {
    /// Not in the charm; runtime created it.
    Added,
    /// In the charm with other content, type or mode.
    Modified,
    /// In the charm; runtime deleted it.
    Deleted,
}

/// One changed path.
#[derive(Debug, Clone, Serialize)]
pub struct DiffLine {
    /// The path relative to the charm dir.
    pub path: String,
    /// How it differs.
    pub status: DiffStatus,
    /// `file`, `dir`, `symlink` or `special` (what is there now; for deletions, what was).
    pub kind: &'static str,
    /// In error `upgrade failed`: the kind of the conflict this runtime change is part of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conflict: Option<crate::store::merge::ConflictKind>,
    /// Part of a conflict whose runtime side is only Python bytecode (`__pycache__/`,
    /// `*.pyc`): the likely cause, safe to delete.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub likely_bytecode: bool,
}

fn kind_name(entry: &TreeEntry) -> &'static str {
    match entry.kind {
        EntryKind::File { .. } => "file",
        EntryKind::Dir => "dir",
        EntryKind::Symlink { .. } => "symlink",
        EntryKind::Special { .. } => "special",
    }
}

/// The paths where `after` differs from `before`, in tree order.
pub fn compare(before: &Listing, after: &Listing) -> Vec<DiffLine> {
    let mut lines = Vec::new();
    let text = |p: &[u8]| String::from_utf8_lossy(p).into_owned();
    for entry in after.entries() {
        match before.get(&entry.path) {
            None => lines.push(DiffLine {
                path: text(&entry.path),
                status: DiffStatus::Added,
                kind: kind_name(entry),
                conflict: None,
                likely_bytecode: false,
            }),
            Some(old) if old != entry => lines.push(DiffLine {
                path: text(&entry.path),
                status: DiffStatus::Modified,
                kind: kind_name(entry),
                conflict: None,
                likely_bytecode: false,
            }),
            Some(_) => {}
        }
    }
    for entry in before.entries() {
        if after.get(&entry.path).is_none() {
            lines.push(DiffLine {
                path: text(&entry.path),
                status: DiffStatus::Deleted,
                kind: kind_name(entry),
                conflict: None,
                likely_bytecode: false,
            });
        }
    }
    lines.sort_by(|a, b| crate::store::merge::tree_order(a.path.as_bytes(), b.path.as_bytes()));
    lines
}

/// `diff UNIT`: the unit's charm dir (operator layer included) against its charm base; with
/// `failed`, what the last failed hook wrote, over the stack it ran on (`None` when no hook
/// has failed).
pub fn diff(
    runner: &Runner,
    name: &UnitName,
    failed: bool,
) -> Result<Option<Vec<DiffLine>>, RunnerError> {
    let root = runner.root();
    let journal = Unit::peek(root, name)?;
    let runtime = UnitRuntime::load(root, name)?;
    let charm = runner.charm(&runtime.charm, &name.to_string())?;
    let base = Listing::read_tree(&charm.tree)?;
    let paths = crate::model::UnitPaths::new(root, name);
    let mut stack: Vec<PathBuf> = journal.layers.iter().map(|id| paths.layer(id)).collect();
    if journal.operator && paths.operator_dir().is_dir() {
        stack.insert(0, paths.operator_dir());
    }
    let current = flatten_layers(&stack, OverlayXattrs::User)?.apply(&base);
    if !failed {
        let mut lines = compare(&base, &current);
        if let crate::model::UnitState::Error {
            error: crate::model::ErrorKind::Upgrade { conflicts, .. },
        } = &journal.state
        {
            mark_conflicts(&mut lines, conflicts);
        }
        return Ok(Some(lines));
    }
    let failed_root = paths.layer_dirs().failed_root();
    let Some(failed_layer) = std::fs::read_dir(&failed_root)
        .ok()
        .and_then(|mut entries| entries.next())
        .and_then(|e| e.ok())
        .map(|e| e.path())
    else {
        return Ok(None);
    };
    // Every entry the failed hook wrote (a rewrite with the same content included), judged
    // against the stack it ran on; directories it only passed through are left out.
    let runtime_only: Vec<PathBuf> = journal.layers.iter().map(|id| paths.layer(id)).collect();
    let before = flatten_layers(&runtime_only, OverlayXattrs::User)?.apply(&base);
    let written = flatten_layers(&[failed_layer], OverlayXattrs::User)?;
    let mut lines = Vec::new();
    for entry in written.entries() {
        let old = before.get(&entry.path);
        let (status, kind) = match (&entry.change, old) {
            (Change::Whiteout, Some(old)) => (DiffStatus::Deleted, kind_name(old)),
            (Change::Whiteout, None) => continue,
            (
                Change::Write {
                    kind: EntryKind::Dir,
                    ..
                },
                Some(old),
            ) if old.kind == EntryKind::Dir && old.mode == change_mode(&entry.change) => {
                continue;
            }
            (change, None) => (DiffStatus::Added, change_kind(change)),
            (change, Some(_)) => (DiffStatus::Modified, change_kind(change)),
        };
        lines.push(DiffLine {
            path: String::from_utf8_lossy(&entry.path).into_owned(),
            status,
            kind,
            conflict: None,
            likely_bytecode: false,
        });
    }
    Ok(Some(lines))
}

/// Marks the lines that are runtime sides of upgrade conflicts (rule 9), with the bytecode
/// hint of their conflict.
fn mark_conflicts(lines: &mut [DiffLine], conflicts: &[crate::model::Conflict]) {
    for line in lines {
        let path = line.path.as_bytes();
        let hit = conflicts.iter().find(|c| {
            c.runtime_paths.iter().any(|p| p == path)
                || (path.starts_with(&c.path) && path.get(c.path.len()) == Some(&b'/'))
                || c.path == path
        });
        if let Some(conflict) = hit {
            line.conflict = Some(conflict.kind);
            line.likely_bytecode = conflict.likely_bytecode;
        }
    }
}

fn change_mode(change: &Change) -> u32 {
    match change {
        Change::Write { mode, .. } | Change::OpaqueDir { mode } => *mode,
        Change::Whiteout => 0,
    }
}

fn change_kind(change: &Change) -> &'static str {
    match change {
        Change::Write { kind, .. } => match kind {
            EntryKind::File { .. } => "file",
            EntryKind::Dir => "dir",
            EntryKind::Symlink { .. } => "symlink",
            EntryKind::Special { .. } => "special",
        },
        Change::OpaqueDir { .. } => "dir",
        Change::Whiteout => "deleted",
    }
}

/// The file name of the socket through which [`shell`] lends the caller's stdio to an
/// interactive shell.
const STDIO_SOCKET: &str = "stdio.socket";

/// `shell UNIT -- CMD`: runs `argv` in the sandbox over the unit's charm dir, under the
/// unit's lock (no hook runs meanwhile). In error, the writes go to the operator layer
/// (rule 6); otherwise to a throwaway upper that is removed afterwards.
///
/// An empty `argv` is an interactive shell with the caller's stdin, stdout and stderr: the
/// sandbox runs the hookbox binary as `__attach-stdio`, which fetches the three descriptors
/// from a socket bound into the sandbox ([`attach_stdio`]), puts them on 0, 1 and 2 and
/// executes `shell` there (when it exists in the sandbox; else `/bin/sh`). The socket lends
/// them to one connection, from the sandbox's root user only.
pub fn shell(
    runner: &Runner,
    name: &UnitName,
    argv: Vec<String>,
    shell: Option<String>,
    on_wait: impl FnOnce(&str),
) -> Result<RunReport, RunnerError> {
    let root = runner.root();
    let (mut unit, _) = open_unit(root, name, on_wait)?;
    let runtime = UnitRuntime::load(root, name)?;
    let charm = runner.charm(&runtime.charm, &name.to_string())?;
    let app_runtime = AppRuntime::load(root, name.app())?;
    let scratch;
    let (upper, work, mut lowers) = match unit.operator_upper()? {
        Some((upper, work)) => {
            let lowers: Vec<Lower> = unit.runtime_lowers().into_iter().map(Lower::new).collect();
            (upper, work, lowers)
        }
        None => {
            scratch = tempfile::Builder::new()
                .prefix(".shell-")
                .tempdir_in(unit.paths().dir())
                .map_err(RunnerError::io(
                    "create a scratch layer in",
                    unit.paths().dir(),
                ))?;
            let upper = scratch.path().join("upper");
            let work = scratch.path().join("work");
            for dir in [&upper, &work] {
                std::fs::create_dir(dir).map_err(RunnerError::io("create", dir))?;
            }
            let lowers: Vec<Lower> = unit.lowers().into_iter().map(Lower::new).collect();
            (upper, work, lowers)
        }
    };
    lowers.push(Lower::idmapped(&charm.tree));
    super::hook_run::grant_traverse(root, &unit)?;
    let charm_path = sandbox::spec::default_charm_path(name.app().as_str(), name.number());
    let env = vec![
        ("CHARM_DIR".to_owned(), charm_path.display().to_string()),
        (
            "JUJU_CHARM_DIR".to_owned(),
            charm_path.display().to_string(),
        ),
        ("JUJU_UNIT_NAME".to_owned(), name.to_string()),
        (
            "PATH".to_owned(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
        ),
        ("LANG".to_owned(), "C.UTF-8".to_owned()),
        ("HOME".to_owned(), "/root".to_owned()),
        (
            "TERM".to_owned(),
            std::env::var("TERM").unwrap_or_else(|_| "dumb".to_owned()),
        ),
        ("PYTHONDONTWRITEBYTECODE".to_owned(), "1".to_owned()),
    ];
    let tokio = super::lifecycle::unit_runtime(&unit)?;
    let interactive = argv.is_empty();
    let ids = sandbox::IdMapping::for_current_user();
    let stdio_dir = if interactive {
        Some(super::tool_server::create_agent_dir(
            unit.paths().dir(),
            &ids,
        )?)
    } else {
        None
    };
    let mut binds = Vec::new();
    let argv = match &stdio_dir {
        Some(dir) => {
            let inside = super::context::agent_dir_in_sandbox(name);
            binds.push(BindMount {
                source: runner.binary().to_owned(),
                target: super::context::BINARY_IN_SANDBOX.into(),
                writable: false,
            });
            binds.push(BindMount {
                source: dir.path().to_owned(),
                target: inside.clone().into(),
                writable: false,
            });
            vec![
                super::context::BINARY_IN_SANDBOX.to_owned(),
                ATTACH_STDIO.to_owned(),
                format!("{inside}/{STDIO_SOCKET}"),
                shell.unwrap_or_else(|| "/bin/sh".to_owned()),
            ]
        }
        None => argv,
    };
    let mut spec = SandboxSpec::new(ids, lowers, upper, work, charm_path, argv, env);
    spec.hostname = name.dir_name();
    spec.network = app_runtime.run.network;
    spec.binds = binds;
    let options = RunOptions {
        stream: true,
        ..RunOptions::default()
    };
    let report = tokio
        .block_on(async {
            let lender = match &stdio_dir {
                Some(dir) => Some(lend_stdio(&dir.path().join(STDIO_SOCKET))?),
                None => None,
            };
            let report = sandbox::run(&spec, &options).await;
            if let Some(lender) = lender {
                lender.abort();
            }
            Ok::<_, RunnerError>(report)
        })?
        .map_err(|source| RunnerError::Sandbox {
            unit: name.to_string(),
            hook: "shell".to_owned(),
            source,
        })?;
    drop(unit);
    Ok(report)
}

/// The hidden command the sandbox of an interactive [`shell`] runs: `hookbox
/// __attach-stdio SOCKET SHELL`.
pub const ATTACH_STDIO: &str = "__attach-stdio";

/// Listens on `socket` (mode 0666 in a directory only the sandbox sees) and hands our
/// stdin, stdout and stderr to the first connection from the sandbox's root user.
fn lend_stdio(socket: &Path) -> Result<tokio::task::JoinHandle<()>, RunnerError> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::PermissionsExt;
    let listener =
        tokio::net::UnixListener::bind(socket).map_err(RunnerError::io("listen on", socket))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o666))
        .map_err(RunnerError::io("open up", socket))?;
    let (sandbox_root, _) = sandbox::IdMapping::for_current_user().host_root();
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            match stream.peer_cred() {
                Ok(cred) if cred.uid() == sandbox_root => {}
                Ok(cred) => {
                    tracing::warn!(
                        uid = cred.uid(),
                        "refused a stdio request from outside the sandbox"
                    );
                    continue;
                }
                Err(_) => continue,
            }
            let Ok(stream) = stream.into_std() else {
                return;
            };
            let stdin = std::io::stdin();
            let stdout = std::io::stdout();
            let stderr = std::io::stderr();
            let fds = [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()];
            if let Err(e) = crate::sys::send_with_rights(stream.as_fd(), b"s", &fds) {
                tracing::warn!(error = %e, "cannot lend stdio to the shell");
            }
            return;
        }
    }))
}

/// Why [`attach_stdio`] could not start the shell.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The socket could not be reached or read.
    #[error("fetch the terminal from {socket}")]
    Fetch {
        /// The socket.
        socket: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The runner sent something else than three descriptors.
    #[error("{socket} sent {count} descriptors, expected stdin, stdout and stderr")]
    Descriptors {
        /// The socket.
        socket: PathBuf,
        /// How many came.
        count: usize,
    },
    /// Putting them on 0, 1 and 2 or executing the shell failed.
    #[error("start {shell}")]
    Exec {
        /// The shell.
        shell: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl crate::exit::ClassifyExit for AttachError {
    fn exit_status(&self) -> crate::exit::ExitStatus {
        crate::exit::ExitStatus::Sandbox
    }
}

/// Inside the sandbox of an interactive [`shell`]: fetches the caller's stdin, stdout and
/// stderr from `socket`, puts them on descriptors 0, 1 and 2 and executes `shell` (or
/// `/bin/sh` when `shell` does not exist here). Returns only on failure.
pub fn attach_stdio(socket: &Path, shell: &str) -> AttachError {
    use std::os::fd::AsFd;
    use std::os::unix::process::CommandExt;
    let fetch = |source| AttachError::Fetch {
        socket: socket.to_owned(),
        source,
    };
    let stream = match std::os::unix::net::UnixStream::connect(socket) {
        Ok(stream) => stream,
        Err(e) => return fetch(e),
    };
    let mut byte = [0u8; 1];
    let fds = match crate::sys::receive_with_rights(stream.as_fd(), &mut byte) {
        Ok((_, fds)) => fds,
        Err(e) => return fetch(e),
    };
    let count = fds.len();
    let Ok([stdin, stdout, stderr]) = <[std::os::fd::OwnedFd; 3]>::try_from(fds) else {
        return AttachError::Descriptors {
            socket: socket.to_owned(),
            count,
        };
    };
    let shell = if Path::new(shell).is_file() {
        shell
    } else {
        "/bin/sh"
    };
    let exec = |source| AttachError::Exec {
        shell: shell.to_owned(),
        source,
    };
    let moved = nix::unistd::dup2_stdin(&stdin)
        .and_then(|()| nix::unistd::dup2_stdout(&stdout))
        .and_then(|()| nix::unistd::dup2_stderr(&stderr));
    if let Err(e) = moved {
        return exec(e.into());
    }
    drop((stdin, stdout, stderr, stream));
    exec(std::process::Command::new(shell).exec())
}
