//! The runner side of a sandbox: prepares the upper dir and the run's cgroups, spawns the
//! helper (`/proc/self/exe __sandbox-init`; the async process itself never forks), which
//! forks the sandbox's init as our child and writes its id maps; then watches the init,
//! captures the output, enforces the timeout and turns the end into a [`RunReport`].

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::cgroup::LimitPlan;
use super::interrupt;
use super::protocol::{self, HelperMessage, HookStatus, Start};
use super::spec::{IdMapping, SandboxSpec};
use super::{INIT_ARG, LimitKind, Outcome, SandboxError};
use crate::sys;

/// How [`run`] supervises a sandbox.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The executable re-executed as the helper; `/proc/self/exe` (hookbox itself) by default.
    pub helper: PathBuf,
    /// Copy the command's stdout and stderr to ours as they arrive.
    pub stream: bool,
    /// With `stream`, each line of either stream goes to our stderr after this prefix
    /// (`hello/0 install| `), so that runs side by side stay readable, instead of the raw
    /// bytes to the same stream.
    pub live_prefix: Option<String>,
    /// Bytes of each stream kept in the report; the rest is counted and dropped.
    pub output_limit: usize,
    /// Names the run's cgroups; a fresh id when `None`.
    pub run_id: Option<String>,
    /// Log a limit that falls back to an rlimit (no writable cgroup) as a warning; `false`
    /// logs it at debug level (the runner's default limits, which nobody asked for). The
    /// report's `warnings` hold it either way.
    pub warn_fallbacks: bool,
    /// A file that lists the run's v2 cgroup while it runs, for
    /// [`crate::sandbox::remove_stale_cgroups`] after a killed runner; none when `None`.
    pub cgroup_record: Option<PathBuf>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            helper: PathBuf::from("/proc/self/exe"),
            stream: false,
            live_prefix: None,
            output_limit: 1 << 20,
            run_id: None,
            warn_fallbacks: true,
            cgroup_record: None,
        }
    }
}

/// One captured output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line of output, stamped with when it arrived.
#[derive(Debug, Clone, Serialize)]
pub struct OutputLine {
    /// Milliseconds since the run started.
    pub at_ms: f64,
    /// The line, without its newline (invalid UTF-8 replaced).
    pub text: String,
}

/// What happened in one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// How the command ended.
    pub outcome: Outcome,
    /// `outcome` as a sentence ("timed out after 5s").
    pub reason: String,
    /// Wall time from spawning the helper to its exit.
    pub duration_ms: f64,
    /// Standard output lines.
    pub stdout: Vec<OutputLine>,
    /// Standard error lines.
    pub stderr: Vec<OutputLine>,
    /// Bytes of output dropped beyond [`RunOptions::output_limit`].
    pub dropped_bytes: u64,
    /// Limits that could not be enforced as asked.
    pub warnings: Vec<String>,
}

/// Runs `spec` to completion. A command that fails, is killed, times out or hits a limit is
/// an [`Outcome`]; an `Err` means the sandbox itself could not be set up or supervised.
pub async fn run(spec: &SandboxSpec, opts: &RunOptions) -> Result<RunReport, SandboxError> {
    // A SIGINT or SIGTERM forwarded to an earlier run ends the process before another.
    interrupt::end_if_received();
    interrupt::watch();
    spec.validate()
        .map_err(|reason| SandboxError::InvalidSpec { reason })?;
    prepare_upper(spec)?;
    // A run whose runner was killed left the overlay's `work/`, which the next mount
    // refuses (EINVAL): it goes aside as after any run.
    crate::store::layers::retire_overlay_work(&spec.work);
    let run_id = opts.run_id.clone().unwrap_or_else(fresh_run_id);
    let plan = LimitPlan::prepare(&spec.limits, &run_id)?;
    let recorded = match opts.cgroup_record.as_deref().map(|r| plan.record(r)) {
        Some(Ok(recorded)) => recorded,
        None => false,
        Some(Err(err)) => {
            plan.remove().await;
            return Err(err);
        }
    };
    for warning in &plan.warnings {
        if opts.warn_fallbacks {
            warn_once(warning);
        } else {
            tracing::debug!("{warning}");
        }
    }
    let result = supervise(spec, opts, &plan).await;
    let report = result.map(|(outcome, duration, output)| {
        let outcome = attribute_to_limit(outcome, &plan);
        RunReport {
            reason: outcome.to_string(),
            outcome,
            duration_ms: duration.as_secs_f64() * 1000.0,
            stdout: output.stdout,
            stderr: output.stderr,
            dropped_bytes: output.dropped,
            warnings: plan.warnings.clone(),
        }
    });
    if plan.remove().await
        && recorded
        && let Some(record) = &opts.cgroup_record
    {
        let _ = std::fs::remove_file(record);
    }
    // The overlay's `work/` goes aside for the next run (see
    // `store::layers::retire_overlay_work`).
    crate::store::layers::retire_overlay_work(&spec.work);
    report
}

/// Removes what earlier runs retired from the work dir `work` (the helper does, after
/// forking the init: off the runner's path).
pub(super) fn remove_retired_work(work: &std::path::Path) {
    for entry in crate::store::layers::retired_overlay_work(work) {
        if let Err(err) = crate::store::fsops::remove_tree(&entry) {
            tracing::debug!(path = %entry.display(), error = %err, "work dir not removed yet");
        }
    }
}

/// A failed command that the kernel's limit accounting explains is reported as that limit.
fn attribute_to_limit(outcome: Outcome, plan: &LimitPlan) -> Outcome {
    if outcome.success() || matches!(outcome, Outcome::TimedOut { .. }) {
        return outcome;
    }
    if plan.memory_limit_hit() {
        Outcome::KilledByLimit {
            limit: LimitKind::Memory,
        }
    } else if plan.pids_limit_hit() {
        Outcome::KilledByLimit {
            limit: LimitKind::Pids,
        }
    } else {
        outcome
    }
}

#[derive(Default)]
struct Captured {
    stdout: Vec<OutputLine>,
    stderr: Vec<OutputLine>,
    dropped: u64,
}

async fn supervise(
    spec: &SandboxSpec,
    opts: &RunOptions,
    plan: &LimitPlan,
) -> Result<(Outcome, Duration, Captured), SandboxError> {
    let protocol_error = |what| move |source| SandboxError::Protocol { what, source };
    let (ours, theirs) =
        std::os::unix::net::UnixStream::pair().map_err(protocol_error("create the socket"))?;
    // The spec goes into the socket before the helper exists, so the helper reads it at once
    // instead of waiting for the runner to be scheduled again; whatever does not fit in the
    // socket buffer follows once the helper runs.
    let start = protocol::encode(&Start {
        spec: spec.clone(),
        runner_pid: std::process::id() as i32,
        rlimit_memory: plan.rlimit_memory,
        rlimit_pids: plan.rlimit_pids,
        cgroup: plan.v2_dir(),
        join_cgroups: plan.self_join_files(),
    });
    ours.set_nonblocking(true)
        .map_err(protocol_error("configure the socket"))?;
    let written = match (&ours).write(&start) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
        Err(e) => return Err(protocol_error("send the spec")(e)),
    };
    let started = Instant::now();
    let mut command = tokio::process::Command::new(&opts.helper);
    command
        .arg(INIT_ARG)
        .env_clear()
        .stdin(Stdio::from(OwnedFd::from(theirs)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A process group of its own, which the init inherits: a terminal's Ctrl-C reaches
        // the sandbox once, forwarded by us, not also straight from the terminal.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|source| SandboxError::Spawn {
        helper: opts.helper.clone(),
        source,
    })?;
    // Our copy of the helper's end must close, or we would never see it hang up.
    drop(command);
    let mut control =
        tokio::net::UnixStream::from_std(ours).map_err(protocol_error("register the socket"))?;

    let stdout = tokio::spawn(capture(
        child.stdout.take().expect("stdout is piped"),
        Stream::Stdout,
        Live::new(opts),
        opts.output_limit,
        started,
    ));
    let stderr = tokio::spawn(capture(
        child.stderr.take().expect("stderr is piped"),
        Stream::Stderr,
        Live::new(opts),
        opts.output_limit,
        started,
    ));

    let send_rest = control.write_all(&start[written..]).await;
    if let Err(error) = send_rest {
        let _ = child.start_kill();
        let _ = child.wait().await;
        return Err(protocol_error("send the spec")(error));
    }

    // The helper forks the sandbox's init as our child and names it, then writes its id maps
    // and cgroups, removes what earlier runs retired from the work dir and exits; a helper
    // failing after naming the init says so after its name.
    let mut last = None;
    let init = loop {
        match receive(&mut control).await {
            Ok(HelperMessage::InitStarted { pid }) => break Some(pid),
            Ok(message) => last = Some(message),
            Err(_) => break None,
        }
    };
    let Some(init) = init else {
        let helper = child
            .wait()
            .await
            .map_err(protocol_error("wait for the helper"))?;
        return Err(match last {
            Some(HelperMessage::SetupFailed { step, errno }) => setup_failed(step, errno),
            _ => SandboxError::HelperDied {
                status: helper.to_string(),
            },
        });
    };
    let mut init = SandboxInit::adopt(init).map_err(protocol_error("watch the sandbox init"))?;
    let _forwarding = interrupt::Forwarding::to(init.pidfd.get_ref())
        .map_err(protocol_error("forward signals to the sandbox init"))?;

    let reports = tokio::spawn(async move {
        while let Ok(message) = receive(&mut control).await {
            last = Some(message);
        }
        last
    });

    let mut timed_out = None;
    let status = match spec.limits.timeout {
        Some(limit) => match tokio::time::timeout(limit, init.wait()).await {
            Ok(status) => status,
            Err(_) => {
                timed_out = Some(limit);
                // The death of pid 1 takes the whole pid namespace.
                init.kill();
                init.wait().await
            }
        },
        None => init.wait().await,
    }
    .map_err(protocol_error("wait for the sandbox init"))?;
    let duration = started.elapsed();
    // The helper is reaped if it is done; one still waiting on a removal in the work dir is
    // killed when `child` drops (tokio reaps it later), and the next run finishes the removal.
    let _ = child.try_wait();

    let last = reports.await.ok().flatten();
    let mut captured = Captured::default();
    for (task, stream) in [(stdout, Stream::Stdout), (stderr, Stream::Stderr)] {
        if let Ok((lines, dropped)) = task.await {
            captured.dropped += dropped;
            match stream {
                Stream::Stdout => captured.stdout = lines,
                Stream::Stderr => captured.stderr = lines,
            }
        }
    }

    if let Some(after) = timed_out {
        return Ok((Outcome::TimedOut { after }, duration, captured));
    }
    let outcome = match last {
        Some(HelperMessage::Finished(HookStatus::Exited(code))) => Outcome::Exited { code },
        Some(HelperMessage::Finished(HookStatus::Signaled(signal))) => Outcome::Signaled { signal },
        Some(HelperMessage::HandlerMissing) => Outcome::Missing,
        Some(HelperMessage::SetupFailed { step, errno }) => return Err(setup_failed(step, errno)),
        _ if plan.memory_limit_hit() => Outcome::KilledByLimit {
            limit: LimitKind::Memory,
        },
        _ => {
            return Err(SandboxError::HelperDied { status });
        }
    };
    Ok((outcome, duration, captured))
}

/// The sandbox's pid 1, our child (the helper forks it with `CLONE_PARENT`), watched through
/// a pidfd. Dropped before it was reaped (a cancelled run), it is killed, and with it its pid
/// namespace.
struct SandboxInit {
    pidfd: tokio::io::unix::AsyncFd<OwnedFd>,
    reaped: bool,
}

impl SandboxInit {
    /// Takes over the child `pid`. It cannot be another process: only we can reap our child,
    /// so its pid is not reused before we do.
    fn adopt(pid: i32) -> std::io::Result<Self> {
        let pid = rustix::process::Pid::from_raw(pid)
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
        let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::NONBLOCK)?;
        Ok(Self {
            pidfd: sys::watch_readable(pidfd)?,
            reaped: false,
        })
    }

    /// Waits for the init to end (its pidfd turns readable once the pid namespace is empty)
    /// and reaps it; returns its wait status as text.
    async fn wait(&mut self) -> std::io::Result<String> {
        loop {
            let mut ready = self.pidfd.readable().await?;
            if let Some(status) = reap(ready.get_inner(), rustix::process::WaitIdOptions::NOHANG)? {
                drop(ready);
                self.reaped = true;
                return Ok(status);
            }
            ready.clear_ready();
        }
    }

    /// SIGKILL to the init: the kernel then kills every process of its pid namespace.
    fn kill(&self) {
        let _ =
            rustix::process::pidfd_send_signal(self.pidfd.get_ref(), rustix::process::Signal::KILL);
    }
}

impl Drop for SandboxInit {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill();
            let _ = reap(
                self.pidfd.get_ref(),
                rustix::process::WaitIdOptions::empty(),
            );
        }
    }
}

/// waitid(2) `P_PIDFD` with `WEXITED | options`: the wait status as text once it ended.
fn reap(
    pidfd: &OwnedFd,
    options: rustix::process::WaitIdOptions,
) -> std::io::Result<Option<String>> {
    use rustix::process::{WaitId, WaitIdOptions, waitid};
    let status = waitid(
        WaitId::PidFd(pidfd.as_fd()),
        WaitIdOptions::EXITED | options,
    )?;
    Ok(status.map(
        |status| match (status.exit_status(), status.terminating_signal()) {
            (Some(code), _) => format!("exit status: {code}"),
            (None, Some(signal)) => format!("signal: {signal}"),
            (None, None) => "unknown status".to_owned(),
        },
    ))
}

fn setup_failed(step: String, errno: i32) -> SandboxError {
    SandboxError::Setup {
        step,
        source: nix::errno::Errno::from_raw(errno),
    }
}

async fn receive(input: &mut (impl AsyncRead + Unpin)) -> std::io::Result<HelperMessage> {
    let len = protocol::frame_len(input.read_u32_le().await?)?;
    let mut body = vec![0u8; len];
    input.read_exact(&mut body).await?;
    protocol::decode(&body)
}

/// Reads one output stream of the sandbox to its end: copied live to ours when `live`, and
/// kept as timestamped lines up to `limit` bytes ([`Lines`]).
async fn capture(
    mut pipe: impl AsyncRead + Unpin,
    stream: Stream,
    mut live: Live,
    limit: usize,
    started: Instant,
) -> (Vec<OutputLine>, u64) {
    let mut lines = Lines::new(limit, started);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        live.write(stream, &buf[..n]);
        lines.feed(&buf[..n], Instant::now());
    }
    live.finish();
    lines.finish(Instant::now())
}

/// Where a stream's bytes go as they arrive. Small blocking writes to our own stdio; a
/// terminal or pipe takes them at once.
enum Live {
    Off,
    /// To the same stream of ours, as they are.
    Raw,
    /// To our stderr, line by line, each after the prefix; a line is cut every
    /// [`Live::MAX_LINE`] bytes so that one without a newline is not held back.
    Prefixed {
        prefix: String,
        pending: Vec<u8>,
    },
}

impl Live {
    const MAX_LINE: usize = 4096;

    fn new(opts: &RunOptions) -> Self {
        match (&opts.live_prefix, opts.stream) {
            (_, false) => Live::Off,
            (None, true) => Live::Raw,
            (Some(prefix), true) => Live::Prefixed {
                prefix: prefix.clone(),
                pending: Vec::new(),
            },
        }
    }

    fn write(&mut self, stream: Stream, bytes: &[u8]) {
        use std::io::Write;
        match self {
            Live::Off => {}
            Live::Raw => {
                let _ = match stream {
                    Stream::Stdout => {
                        let mut out = std::io::stdout().lock();
                        out.write_all(bytes).and_then(|()| out.flush())
                    }
                    Stream::Stderr => std::io::stderr().lock().write_all(bytes),
                };
            }
            Live::Prefixed { prefix, pending } => {
                let mut out = std::io::stderr().lock();
                for &byte in bytes {
                    if byte != b'\n' {
                        pending.push(byte);
                    }
                    if byte == b'\n' || pending.len() >= Self::MAX_LINE {
                        let _ = out
                            .write_all(prefix.as_bytes())
                            .and_then(|()| out.write_all(pending))
                            .and_then(|()| out.write_all(b"\n"));
                        pending.clear();
                    }
                }
            }
        }
    }

    /// Writes out a last line without a newline.
    fn finish(&mut self) {
        if let Live::Prefixed { pending, .. } = self
            && !pending.is_empty()
        {
            self.write(Stream::Stderr, b"\n");
        }
    }
}

/// The first `limit` bytes of a stream (each line's newline counted), in at most `limit / 8`
/// lines, as lines stamped with the time their end arrived; the rest is counted, not kept.
/// The line being read is held within the same budget, so a stream without newlines costs
/// no more memory than `limit`, and each byte is looked at once.
struct Lines {
    lines: Vec<OutputLine>,
    /// The start of the current line.
    pending: Vec<u8>,
    /// Bytes of `lines`, newlines included.
    kept: usize,
    /// Bytes read but not kept.
    dropped: u64,
    limit: usize,
    started: Instant,
}

impl Lines {
    /// The budget's bytes per line kept: an average line of hook output is longer.
    const BYTES_PER_LINE: usize = 8;

    fn new(limit: usize, started: Instant) -> Self {
        Self {
            lines: Vec::new(),
            pending: Vec::new(),
            kept: 0,
            dropped: 0,
            limit,
            started,
        }
    }

    fn feed(&mut self, mut chunk: &[u8], at: Instant) {
        while !chunk.is_empty() {
            if self.kept >= self.limit {
                self.dropped += chunk.len() as u64;
                return;
            }
            let room = self.limit - self.kept - self.pending.len();
            let newline = chunk.iter().position(|&b| b == b'\n');
            let (line, ends) = match newline {
                Some(at) => (&chunk[..at], true),
                None => (chunk, false),
            };
            if line.len() + usize::from(ends) > room {
                // The budget ends in this line: keep what fits, and nothing after it.
                let fit = room.min(line.len());
                self.pending.extend_from_slice(&line[..fit]);
                self.dropped += (chunk.len() - fit) as u64;
                self.end_line(at, false);
                self.kept = self.limit;
                return;
            }
            self.pending.extend_from_slice(line);
            if !ends {
                return;
            }
            self.end_line(at, true);
            chunk = &chunk[line.len() + 1..];
        }
    }

    fn end_line(&mut self, at: Instant, newline: bool) {
        self.kept += self.pending.len() + usize::from(newline);
        self.lines.push(OutputLine {
            at_ms: at.duration_since(self.started).as_secs_f64() * 1000.0,
            text: String::from_utf8_lossy(&self.pending).into_owned(),
        });
        self.pending.clear();
        // Each line also costs its bookkeeping (~56 bytes): at most one line per
        // [`Lines::BYTES_PER_LINE`] bytes of the budget, so that a flood of empty lines
        // holds no more than a few times the limit.
        if self.lines.len() >= (self.limit / Self::BYTES_PER_LINE).max(1) {
            self.kept = self.kept.max(self.limit);
        }
    }

    /// The lines kept (a last line without a newline included) and the bytes dropped.
    fn finish(mut self, at: Instant) -> (Vec<OutputLine>, u64) {
        if !self.pending.is_empty() {
            self.end_line(at, false);
        }
        (self.lines, self.dropped)
    }
}

/// As root, the upper and work dirs belong to the id range's root so the hook (uid 0 inside)
/// can write them; rootless, they already belong to the caller, who is root inside.
fn prepare_upper(spec: &SandboxSpec) -> Result<(), SandboxError> {
    let IdMapping::Range { .. } = spec.ids else {
        return Ok(());
    };
    let (uid, gid) = spec.ids.host_root();
    for dir in [&spec.upper, &spec.work] {
        std::os::unix::fs::lchown(dir, Some(uid), Some(gid))
            .map_err(SandboxError::host("give the id range's root", dir))?;
    }
    Ok(())
}

fn fresh_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}-{:x}", std::process::id(), nanos)
}

/// Logs each distinct limit warning once per process.
fn warn_once(message: &str) {
    static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if !seen.iter().any(|m| m == message) {
        tracing::warn!("{message}");
        seen.push(message.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lines: &[OutputLine]) -> Vec<&str> {
        lines.iter().map(|l| l.text.as_str()).collect()
    }

    /// Feeds `chunks` to a [`Lines`] of `limit` bytes.
    fn captured(limit: usize, chunks: &[&[u8]]) -> (Vec<OutputLine>, u64) {
        let started = Instant::now();
        let mut lines = Lines::new(limit, started);
        for chunk in chunks {
            lines.feed(chunk, Instant::now());
        }
        lines.finish(Instant::now())
    }

    #[test]
    fn lines_split_across_reads_are_joined() {
        let (lines, dropped) = captured(100, &[b"ab", b"c\nde", b"\n\nf"]);
        assert_eq!(texts(&lines), ["abc", "de", "", "f"]);
        assert_eq!(dropped, 0);
    }

    #[test]
    fn the_first_limit_bytes_are_kept_and_the_rest_counted() {
        // "abc\n" and "de\n" are 7 bytes; of the 100-byte line only 73 fit in 80.
        let long = [b'f'; 100];
        let (lines, dropped) = captured(80, &[b"abc\nde\n", &long, b"\nk", b"lmn\n"]);
        assert_eq!(texts(&lines), ["abc", "de", &"f".repeat(73)]);
        assert_eq!(dropped, 27 + 2 + 4);
        // A line that fits but for its newline is kept whole; nothing after it is.
        let (lines, dropped) = captured(8, &[b"abcdefgh\nd\n"]);
        assert_eq!(texts(&lines), ["abcdefgh"]);
        assert_eq!(dropped, 3);
        // A shorter line after the budget ran out is not kept either.
        let (lines, _) = captured(16, &[b"abcdefghijklmnopq\n", b"x\n"]);
        assert_eq!(texts(&lines), ["abcdefghijklmnop"]);
    }

    #[test]
    fn lines_are_at_most_one_per_eight_bytes_of_the_limit() {
        let (lines, dropped) = captured(16, &[b"a\nb\nc\n"]);
        assert_eq!(texts(&lines), ["a", "b"]);
        assert_eq!(dropped, 2);
        // A million empty lines against 1 MiB: 131,072 kept.
        let (lines, dropped) = captured(1 << 20, &[&[b'\n'; 1_000_000]]);
        assert_eq!(lines.len(), 131_072);
        assert_eq!(dropped, 1_000_000 - 131_072);
    }

    #[test]
    fn a_stream_without_newlines_holds_no_more_than_the_limit() {
        let mut lines = Lines::new(1000, Instant::now());
        for _ in 0..1000 {
            lines.feed(&[b'x'; 4096], Instant::now());
            assert!(lines.pending.len() + lines.kept <= 1000);
        }
        let (kept, dropped) = lines.finish(Instant::now());
        assert_eq!(texts(&kept), ["x".repeat(1000)]);
        assert_eq!(dropped, 4096 * 1000 - 1000);
    }
}
