//! `hookbox log UNIT`.

use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

use clap::Args;
use hookbox::exit::ExitStatus;
use hookbox::model::{Unit, UnitName};
use hookbox::runner::output_log::{self, LogLine, LogSource};
use hookbox::store::StateRoot;

/// Show what a unit's hooks wrote: stdout, stderr and juju-log lines, timestamped.
///
/// Each line shows when it arrived, the hook, where it came from (stdout, stderr,
/// juju-log with its level, hookbox for the outcome) and the text. Failed hooks keep their
/// output. --follow keeps printing lines as later hooks finish (until interrupted).
#[derive(Debug, Args)]
pub struct LogArgs {
    /// The unit, e.g. hello/0.
    pub unit: UnitName,
    /// Only lines of this hook.
    #[arg(long, value_name = "HOOK")]
    pub hook: Option<String>,
    /// Keep printing new lines as they are written.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Print each line as a JSON object (one per line).
    #[arg(long)]
    pub json: bool,
}

fn print_line(line: &LogLine, args: &LogArgs) -> anyhow::Result<()> {
    if args.hook.as_ref().is_some_and(|h| *h != line.hook) {
        return Ok(());
    }
    if args.json {
        println!("{}", serde_json::to_string(line)?);
        return Ok(());
    }
    let source = match line.source {
        LogSource::Stdout => "stdout".to_owned(),
        LogSource::Stderr => "stderr".to_owned(),
        LogSource::JujuLog => format!("juju-log {}", line.level.clone().unwrap_or_default()),
        LogSource::Hookbox => "hookbox".to_owned(),
    };
    println!("{} {} [{source}] {}", line.time, line.hook, line.text);
    Ok(())
}

/// Runs `hookbox log`.
pub fn run(root: &StateRoot, args: LogArgs) -> anyhow::Result<ExitStatus> {
    Unit::peek(root, &args.unit)?;
    let path = output_log::log_path(root, &args.unit);
    let mut offset = 0u64;
    let mut pending = String::new();
    loop {
        if let Ok(mut file) = std::fs::File::open(&path) {
            file.seek(SeekFrom::Start(offset))?;
            let mut text = String::new();
            let read = file.read_to_string(&mut text)?;
            offset += read as u64;
            pending.push_str(&text);
            if let Some(end) = pending.rfind('\n') {
                let complete: String = pending.drain(..=end).collect();
                for line in output_log::parse(&complete) {
                    print_line(&line, &args)?;
                }
            }
        }
        if !args.follow {
            return Ok(ExitStatus::Success);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
