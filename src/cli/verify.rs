//! `hookbox verify PATH`: the integrity report of a charm without storing it.

use std::path::PathBuf;

use clap::Args;
use hookbox::charm::verify;
use hookbox::exit::{ClassifyExit, ExitStatus};
use serde::Serialize;

use super::ingest::{LimitArgs, print_warnings};
use super::output::print_json;

/// Check a charm against every ingest rule without storing it.
///
/// Reports what `ingest` would refuse (exit 3, the member named) and what it would accept
/// with warnings (exit 0): hooks without an exec bit or a #! line, hook files with identical
/// content (symlinks flattened by a copy such as `scp -r`), and files a charm should not
/// ship (.pyc, __pycache__/, .git/).
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The charm: a directory, .tar, .tar.gz/.tgz or .charm (zip).
    pub path: PathBuf,
    /// Print the report as JSON (also when the charm is refused).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// The `--json` shape of a refusal.
#[derive(Serialize)]
struct Refusal {
    source: PathBuf,
    refused: bool,
    error: String,
}

/// Runs `hookbox verify`.
pub fn run(args: VerifyArgs) -> anyhow::Result<ExitStatus> {
    let report = match verify::verify(&args.path, &args.limits.limits()) {
        Ok(report) => report,
        Err(err) if args.json && err.exit_status() == ExitStatus::InvalidCharm => {
            print_json(&Refusal {
                source: args.path.clone(),
                refused: true,
                error: hookbox::exit::error_chain(&err),
            })?;
            return Ok(ExitStatus::InvalidCharm);
        }
        Err(err) => return Err(err.into()),
    };
    if args.json {
        #[derive(Serialize)]
        struct Accepted<'a> {
            refused: bool,
            #[serde(flatten)]
            report: &'a verify::VerifyReport,
        }
        print_json(&Accepted {
            refused: false,
            report: &report,
        })?;
    } else {
        print_warnings(&report.warnings);
        let revision = report
            .revision
            .map_or_else(|| "none".to_owned(), |r| r.to_string());
        println!(
            "ok: {} (revision {revision}), {} files, {} bytes, {} warning(s)",
            report.name,
            report.files,
            report.bytes,
            report.warnings.len()
        );
        println!("digest: {}", report.digest);
    }
    Ok(ExitStatus::Success)
}
