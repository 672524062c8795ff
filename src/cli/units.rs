//! Helpers shared by the unit commands: the runner, the wait notice, default parallelism,
//! `K=V` parsing and the text rendering of hook runs.

use hookbox::exit::ExitStatus;
use hookbox::model::history::Outcome;
use hookbox::runner::lifecycle::UnitReport;
use hookbox::runner::{HookReport, Runner};
use hookbox::store::StateRoot;

/// The global `--verbose`: hooks' output streams live (set once, by `main`).
static LIVE_OUTPUT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records the global `--verbose` for [`runner`].
pub fn set_live_output(live: bool) {
    LIVE_OUTPUT.store(live, std::sync::atomic::Ordering::Relaxed);
}

/// The runner over `root` (streaming hooks' output live under `--verbose`).
pub fn runner(root: &StateRoot) -> anyhow::Result<Runner> {
    let live = LIVE_OUTPUT.load(std::sync::atomic::Ordering::Relaxed);
    Ok(Runner::new(root)?.with_live_output(live))
}

/// Prints what a command waits for (another hookbox process holding a unit or app lock).
pub fn print_wait(message: &str) {
    eprintln!("{message}");
}

/// Parses `KEY=VALUE`.
pub fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

/// One line for a hook run: `hello/0 install: ok (0.2s)`.
pub fn describe_run(run: &HookReport) -> String {
    let record = &run.record;
    let outcome = match record.outcome {
        Some(Outcome::Ok) => "ok".to_owned(),
        Some(Outcome::Missing) => "missing (no handler)".to_owned(),
        Some(Outcome::Failed) => format!(
            "FAILED: {}",
            record.reason.clone().unwrap_or_else(|| "failed".to_owned())
        ),
        None => "?".to_owned(),
    };
    format!(
        "{} {}: {outcome} ({:.1}s)",
        run.unit,
        record.hook,
        record.duration_ms as f64 / 1000.0
    )
}

/// Prints the runs of each unit and what is left, and returns the exit status: 1 when a
/// unit ended in error, the class of a unit's own error otherwise.
pub fn print_unit_reports(reports: &[UnitReport]) -> ExitStatus {
    let mut status = ExitStatus::Success;
    for report in reports {
        for run in &report.runs {
            println!("{}", describe_run(run));
        }
        if let Some(error) = &report.error {
            eprintln!("error: unit {}: {error}", report.unit);
        }
        if report.in_error {
            // The unit's own error; failing that, a hook that could not run at all heads
            // the queue, else the last run failed.
            let error = match &report.unit_error {
                Some(error) => error.to_string(),
                None => {
                    let hook = if report.error.is_some() {
                        report.queued.first().cloned()
                    } else {
                        report.runs.last().map(|r| r.record.hook.clone())
                    }
                    .unwrap_or_default();
                    format!("hook failed: {hook:?}")
                }
            };
            println!(
                "{} is in error ({error}); fix it with `hookbox shell {}`, then `hookbox resolved {} [--retry]`{}",
                report.unit,
                report.unit,
                report.unit,
                if report.queued.len() > 1 {
                    format!("; queued: {}", report.queued[1..].join(", "))
                } else {
                    String::new()
                }
            );
        }
        status = worst(status, unit_status(report));
    }
    status
}

/// The exit status one unit's report calls for.
pub fn unit_status(report: &UnitReport) -> ExitStatus {
    if let Some(status) = report.error_status {
        status
    } else if report.in_error {
        ExitStatus::HookFailed
    } else {
        ExitStatus::Success
    }
}

/// The more serious of two statuses (a hook failure outranks success; any other error
/// outranks a hook failure).
pub fn worst(a: ExitStatus, b: ExitStatus) -> ExitStatus {
    match (a, b) {
        (ExitStatus::Success, x) | (x, ExitStatus::Success) => x,
        (ExitStatus::HookFailed, x) | (x, ExitStatus::HookFailed) => x,
        (x, _) => x,
    }
}
