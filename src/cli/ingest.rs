//! `hookbox ingest PATH`: store a charm (directory, .tar, .tar.gz/.tgz, .charm) by digest.

use std::path::PathBuf;

use clap::Args;
use hookbox::charm::ingest::{self, Limits, Warning};
use hookbox::exit::ExitStatus;
use hookbox::store::StateRoot;
use hookbox::store::charms::Committed;

use super::output::print_json;
use super::parse::parse_bytes;

/// Store a charm in the charm store, keyed by the sha256 of its canonical content.
///
/// PATH is a charm directory, a .tar, a .tar.gz/.tgz or a .charm (zip); the format is read
/// from the content, not the name. The charm is checked and written into a private staging
/// directory, then renamed into charms/sha256-<hex>/ read-only: all or nothing. Absolute or
/// `..` paths, symlinks leaving the charm, hardlinks outside it, device nodes, fifos,
/// duplicate members, over-long names, archives over the limits below, bad YAML and a
/// missing metadata.yaml are refused (exit 3) with the member named. setuid/setgid/sticky
/// and write bits are dropped; symlinks stay symlinks; a charm inside a single top-level
/// directory is stored without it. The same content again changes nothing.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The charm: a directory, .tar, .tar.gz/.tgz or .charm (zip).
    pub path: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// The ingest limits, shared by `ingest` and `verify`.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Refuse charms with more file content than this (suffixes K, M, G).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, default_value = "1G")]
    pub max_bytes: u64,
    /// Refuse archives with more members than this.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_members)]
    pub max_members: u64,
    /// Refuse members nested deeper than this many directories.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_depth)]
    pub max_depth: usize,
    /// Refuse member paths (and symlink targets) longer than this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_path_bytes)]
    pub max_path_bytes: usize,
    /// Refuse compressed data that expands more than this many times (compression bombs).
    #[arg(long, value_name = "RATIO", default_value_t = Limits::default().max_ratio)]
    pub max_ratio: u64,
    /// Refuse metadata.yaml, charmcraft.yaml or config.yaml larger than this (suffixes K, M, G).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, default_value = "1M")]
    pub max_yaml_bytes: u64,
}

impl LimitArgs {
    /// The limits these flags describe.
    pub fn limits(&self) -> Limits {
        Limits {
            max_bytes: self.max_bytes,
            max_members: self.max_members,
            max_depth: self.max_depth,
            max_path_bytes: self.max_path_bytes,
            max_ratio: self.max_ratio,
            max_yaml_bytes: self.max_yaml_bytes,
        }
    }
}

/// Runs `hookbox ingest`.
pub fn run(root: &StateRoot, args: IngestArgs) -> anyhow::Result<ExitStatus> {
    let report = ingest::ingest(root, &args.path, &args.limits.limits())?;
    if args.json {
        print_json(&report)?;
    } else {
        print_warnings(&report.warnings);
        let revision = report
            .revision
            .map_or_else(|| "none".to_owned(), |r| r.to_string());
        match report.outcome {
            Committed::Stored => println!("stored {} (revision {revision})", report.name),
            Committed::AlreadyStored => println!(
                "{} (revision {revision}) is already stored; nothing changed",
                report.name
            ),
        }
        println!("digest:   {}", report.digest);
        println!("name:     {}", report.name);
        println!("revision: {revision}");
        println!("tree:     {}", report.tree.display());
    }
    Ok(ExitStatus::Success)
}

/// Prints warnings on stderr, one line each.
pub fn print_warnings(warnings: &[Warning]) {
    for warning in warnings {
        eprintln!("warning: {}", warning.message);
    }
}
