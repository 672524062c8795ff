//! A unit's history: `history.jsonl`, one JSON object per line, one line per hook run and per
//! resolution, appended and fsync'd. The reader is tolerant: a torn last line (a crash mid
//! append) is skipped, and the next append starts on a fresh line.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::store::StoreError;
use crate::store::clock::civil_from_days;
use crate::store::layers::LayerId;

/// What a history line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordKind {
    /// One hook run.
    Hook,
    /// `resolved` (commit the operator layer and go on).
    Resolved,
    /// `resolved --retry` (the retried run gets its own `hook` line).
    Retry,
}

/// How a hook run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The handler exited 0.
    Ok,
    /// Non-zero exit, signal, timeout, resource limit, setup failure or a killed runner.
    Failed,
    /// No handler for the hook: success, logged as missing (rule 1).
    Missing,
}

/// One line of `history.jsonl`. Optional fields are omitted when absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRecord {
    /// What the line records.
    pub kind: RecordKind,
    /// The hook (for resolutions: the hook the unit was in error for, if any).
    pub hook: String,
    /// How the run ended (resolutions: absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// The handler's exit code, when it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The signal that killed the handler, when it was killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// Why it failed, in words (`timeout after 30s`, `hookbox was killed ...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The run's `JUJU_CONTEXT_ID` (for a resolution: an id of the same form that marks
    /// its line written, `<unit>-resolved-<random>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_id: Option<String>,
    /// The charm's revision, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charm_revision: Option<u64>,
    /// When the run (or resolution) started.
    pub started: Timestamp,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// The layer the run committed (absent when it wrote nothing or failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<LayerId>,
}

/// Appends `record` as one line to `path` and fsyncs it. If the file ends with a torn line
/// (a crash mid append), a newline is written first so the new record stands on its own.
pub fn append(path: &Path, record: &HistoryRecord) -> Result<(), StoreError> {
    let mut line = serde_json::to_vec(record).map_err(|source| StoreError::Json {
        path: path.to_owned(),
        source,
    })?;
    line.push(b'\n');
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(StoreError::io("open", path))?;
    let len = file.metadata().map_err(StoreError::io("stat", path))?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        file.read_exact_at(&mut last, len - 1)
            .map_err(StoreError::io("read", path))?;
        if last[0] != b'\n' {
            line.insert(0, b'\n');
        }
    }
    file.write_all(&line)
        .map_err(StoreError::io("append to", path))?;
    file.sync_data().map_err(StoreError::io("fsync", path))
}

/// Reads every record of `path` (none when it does not exist). A line that does not parse
/// (a torn last line, or damage) is skipped with a warning naming the line.
pub fn read(path: &Path) -> Result<Vec<HistoryRecord>, StoreError> {
    let text = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io("read", path)(e)),
    };
    Ok(parse_lines(path, &text))
}

/// How much of the end of a history file [`read_tail`] reads.
pub const TAIL_BYTES: u64 = 64 * 1024;

/// Reads the records whose lines lie whole in the last [`TAIL_BYTES`] of `path` (none when it
/// does not exist): the newest records, without reading a long history whole. Torn and
/// damaged lines are skipped as in [`read`].
pub fn read_tail(path: &Path) -> Result<Vec<HistoryRecord>, StoreError> {
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io("open", path)(e)),
    };
    let len = file.metadata().map_err(StoreError::io("stat", path))?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    let mut bytes = vec![0u8; (len - start) as usize];
    file.read_exact_at(&mut bytes, start)
        .map_err(StoreError::io("read", path))?;
    let whole = if start == 0 {
        &bytes[..]
    } else {
        // The first line is cut unless the byte before it ends a line.
        let mut before = [0u8; 1];
        file.read_exact_at(&mut before, start - 1)
            .map_err(StoreError::io("read", path))?;
        match (before[0], bytes.iter().position(|b| *b == b'\n')) {
            (b'\n', _) => &bytes[..],
            (_, Some(newline)) => &bytes[newline + 1..],
            (_, None) => &[][..],
        }
    };
    Ok(parse_lines(path, whole))
}

/// The records of `text`, one per line; a line that does not parse is skipped (the last one
/// quietly: it may be torn).
fn parse_lines(path: &Path, text: &[u8]) -> Vec<HistoryRecord> {
    let mut records = Vec::new();
    let lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
    let last = lines.len().saturating_sub(1);
    for (number, line) in lines.iter().enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice(line) {
            Ok(record) => records.push(record),
            Err(e) if number == last => {
                tracing::debug!(path = %path.display(), error = %e, "skipping torn last history line");
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), line = number + 1, error = %e, "skipping damaged history line");
            }
        }
    }
    records
}

/// A UTC instant with millisecond precision, written as RFC 3339 (`2026-01-31T09:05:03.120Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    unix_ms: i64,
}

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    /// The instant `time`.
    pub fn from_system_time(time: SystemTime) -> Self {
        let unix_ms = match time.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_millis() as i64,
            Err(e) => -(e.duration().as_millis() as i64),
        };
        Self { unix_ms }
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_ms(&self) -> i64 {
        self.unix_ms
    }

    /// The time elapsed since this instant (zero if it is in the future).
    pub fn elapsed(&self) -> Duration {
        let now = Self::now().unix_ms;
        Duration::from_millis(now.saturating_sub(self.unix_ms).max(0) as u64)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.unix_ms.div_euclid(86_400_000);
        let ms_of_day = self.unix_ms.rem_euclid(86_400_000);
        let (year, month, day) = civil_from_days(days);
        let secs = ms_of_day / 1000;
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            ms_of_day % 1000
        )
    }
}

/// Why a string is not an RFC 3339 UTC timestamp.
#[derive(Debug, thiserror::Error)]
#[error("{text:?} is not a UTC timestamp like 2026-01-31T09:05:03.120Z")]
pub struct InvalidTimestamp {
    /// The text that did not parse.
    pub text: String,
}

impl FromStr for Timestamp {
    type Err = InvalidTimestamp;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidTimestamp {
            text: text.to_owned(),
        };
        let body = text.strip_suffix('Z').ok_or_else(invalid)?;
        let (date, time) = body.split_once('T').ok_or_else(invalid)?;
        let num = |s: &str| -> Result<i64, InvalidTimestamp> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            s.parse().map_err(|_| invalid())
        };
        let mut date_parts = date.splitn(3, '-');
        let year = num(date_parts.next().unwrap_or_default())?;
        let month = num(date_parts.next().unwrap_or_default())?;
        let day = num(date_parts.next().unwrap_or_default())?;
        let (hms, fraction) = time.split_once('.').unwrap_or((time, "0"));
        let mut time_parts = hms.splitn(3, ':');
        let hour = num(time_parts.next().unwrap_or_default())?;
        let minute = num(time_parts.next().unwrap_or_default())?;
        let second = num(time_parts.next().unwrap_or_default())?;
        let millis = num(&format!("{fraction:0<3}")[..3])?;
        if !(1..=12).contains(&month)
            || !(1..=31).contains(&day)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return Err(invalid());
        }
        let days = days_from_civil(year, month, day);
        Ok(Self {
            unix_ms: ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis,
        })
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

// Howard Hinnant's inverse of civil_from_days.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(hook: &str, outcome: Outcome) -> HistoryRecord {
        HistoryRecord {
            kind: RecordKind::Hook,
            hook: hook.to_owned(),
            outcome: Some(outcome),
            exit_code: Some(if outcome == Outcome::Failed { 3 } else { 0 }),
            signal: None,
            reason: None,
            context_id: Some(format!("wp-0-{hook}-1234")),
            charm_revision: Some(7),
            started: "2026-01-31T09:05:03.120Z".parse().unwrap(),
            duration_ms: 42,
            layer: Some(LayerId::new(3, 0xbeef)),
        }
    }

    #[test]
    fn records_round_trip_with_stable_field_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        append(&path, &record("install", Outcome::Ok)).unwrap();
        append(&path, &record("start", Outcome::Failed)).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.starts_with(r#"{"kind":"hook","hook":"install","outcome":"ok","exit_code":0,"context_id":"wp-0-install-1234","charm_revision":7,"started":"2026-01-31T09:05:03.120Z","duration_ms":42,"layer":"00000003-0000beef"}"#), "{text}");
        assert_eq!(
            read(&path).unwrap(),
            vec![
                record("install", Outcome::Ok),
                record("start", Outcome::Failed)
            ]
        );
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_the_next_append_is_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        append(&path, &record("install", Outcome::Ok)).unwrap();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"kind":"hook","hook":"sta"#).unwrap();
        assert_eq!(read(&path).unwrap(), vec![record("install", Outcome::Ok)]);
        append(&path, &record("start", Outcome::Missing)).unwrap();
        assert_eq!(
            read(&path).unwrap(),
            vec![
                record("install", Outcome::Ok),
                record("start", Outcome::Missing)
            ]
        );
        assert_eq!(read(&dir.path().join("none")).unwrap(), vec![]);
    }

    #[test]
    fn the_tail_holds_the_newest_whole_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        assert_eq!(read_tail(&path).unwrap(), vec![]);
        let mut all = Vec::new();
        for n in 0..2000 {
            let mut r = record(&format!("hook-{n}"), Outcome::Ok);
            r.context_id = Some(format!("ctx-{n}"));
            append(&path, &r).unwrap();
            all.push(r);
        }
        assert!(fs::metadata(&path).unwrap().len() > TAIL_BYTES);
        let tail = read_tail(&path).unwrap();
        assert!(tail.len() > 100 && tail.len() < all.len(), "{}", tail.len());
        assert_eq!(tail[..], all[all.len() - tail.len()..]);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"kind":"hook","hook":"sta"#).unwrap();
        assert_eq!(read_tail(&path).unwrap().last(), all.last());
    }

    #[test]
    fn timestamps_format_as_rfc3339() {
        let t = Timestamp { unix_ms: 0 };
        assert_eq!(t.to_string(), "1970-01-01T00:00:00.000Z");
        let t: Timestamp = "2000-02-29T23:59:59.999Z".parse().unwrap();
        assert_eq!(t.unix_ms(), 951_868_799_999);
        assert_eq!(t.to_string(), "2000-02-29T23:59:59.999Z");
        for bad in [
            "",
            "2000-02-29",
            "2000-13-01T00:00:00Z",
            "x000-01-01T00:00:00Z",
        ] {
            assert!(bad.parse::<Timestamp>().is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn timestamps_round_trip(ms in -62_135_596_800_000i64..253_402_300_799_999i64) {
            let t = Timestamp { unix_ms: ms };
            prop_assert_eq!(t.to_string().parse::<Timestamp>().unwrap(), t);
        }
    }
}
