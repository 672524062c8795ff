//! The unit's output log, `units/<app>-<n>/log.jsonl`: one JSON object per line for every
//! line a hook wrote on stdout or stderr and every `juju-log` call, stamped with the time
//! it arrived, the hook and the context id. Kept for failed hooks too (it is how the
//! operator learns why). Read by `hookbox log`.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::{Timestamp, UnitName, UnitPaths};
use crate::sandbox::RunReport;
use crate::store::{StateRoot, StoreError};
use crate::tools::context::LogRecord;

/// Where a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogSource {
    /// The handler's standard output.
    Stdout,
    /// The handler's standard error.
    Stderr,
    /// A `juju-log` call.
    JujuLog,
    /// hookbox itself (the outcome of the run).
    Hookbox,
}

/// One line of the unit's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    /// When the line arrived.
    pub time: Timestamp,
    /// The hook.
    pub hook: String,
    /// The run's context id.
    pub context_id: String,
    /// Where it came from.
    pub source: LogSource,
    /// The `juju-log` level (`juju-log` lines only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// The text.
    pub text: String,
}

/// `units/<app>-<n>/log.jsonl`.
pub fn log_path(root: &StateRoot, unit: &UnitName) -> PathBuf {
    UnitPaths::new(root, unit).dir().join("log.jsonl")
}

/// The lines of one run, in arrival order: output lines by their stamps, then the
/// `juju-log` lines and the outcome at `ended`.
pub fn lines_of_run(
    hook: &str,
    context_id: &str,
    started: Timestamp,
    ended: Timestamp,
    report: Option<&RunReport>,
    juju_log: &[LogRecord],
    outcome: &str,
) -> Vec<LogLine> {
    let line = |time, source, level: Option<String>, text: String| LogLine {
        time,
        hook: hook.to_owned(),
        context_id: context_id.to_owned(),
        source,
        level,
        text,
    };
    let mut out = Vec::new();
    if let Some(report) = report {
        let mut stamped: Vec<(f64, LogSource, &str)> = report
            .stdout
            .iter()
            .map(|l| (l.at_ms, LogSource::Stdout, l.text.as_str()))
            .chain(
                report
                    .stderr
                    .iter()
                    .map(|l| (l.at_ms, LogSource::Stderr, l.text.as_str())),
            )
            .collect();
        stamped.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (at_ms, source, text) in stamped {
            let time = Timestamp::from_system_time(
                std::time::UNIX_EPOCH
                    + std::time::Duration::from_millis(
                        (started.unix_ms().max(0) as u64).saturating_add(at_ms as u64),
                    ),
            );
            out.push(line(time, source, None, text.to_owned()));
        }
    }
    for record in juju_log {
        let level = serde_json::to_value(record.level)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned));
        out.push(line(
            ended,
            LogSource::JujuLog,
            level,
            record.message.clone(),
        ));
    }
    out.push(line(ended, LogSource::Hookbox, None, outcome.to_owned()));
    out
}

/// Appends `lines` to the unit's log. Not fsync'd: the log is for people; what the state
/// depends on (the journal, the history) is made durable on its own.
pub fn append(path: &Path, lines: &[LogLine]) -> Result<(), StoreError> {
    let mut bytes = Vec::new();
    for line in lines {
        serde_json::to_writer(&mut bytes, line).map_err(|source| StoreError::Json {
            path: path.to_owned(),
            source,
        })?;
        bytes.push(b'\n');
    }
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(StoreError::io("open", path))?;
    file.write_all(&bytes)
        .map_err(StoreError::io("append to", path))
}

/// Parses the lines of `text` (a torn or damaged line is skipped).
pub fn parse(text: &str) -> Vec<LogLine> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
