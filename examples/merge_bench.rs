//! The library path of a charm upgrade's merge, as one process, for `scripts/bench.sh
//! bench_merge` (issue 5) until `hookbox upgrade` exists:
//!
//! ```text
//! merge_bench ROOT OLD_DIGEST NEW_DIGEST OUT_DIR LAYER...
//! ```
//!
//! `ROOT` is a state root holding both charms (ingested, so each has its cached listing);
//! `LAYER...` are the unit's runtime layers, newest first. It does what an upgrade does
//! between its journal steps: the old and new bases' listings from the store
//! ([`CharmStore::listing`]: the cache, digest-checked), the runtime layers flattened, the
//! three-way merge, and the merged diff materialised as a new layer in a fresh staging
//! directory under `OUT_DIR` (never used before, so every run pays the same). It prints the
//! time of each step; a conflict or any error exits 1.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use hookbox::store::StateRoot;
use hookbox::store::charms::CharmStore;
use hookbox::store::digest::CharmDigest;
use hookbox::store::merge::{MergeOutcome, flatten_layers, materialize, merge};
use hookbox::store::squash::OverlayXattrs;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, old, new, out, layers @ ..] = args.as_slice() else {
        eprintln!("usage: merge_bench ROOT OLD_DIGEST NEW_DIGEST OUT_DIR LAYER...");
        return ExitCode::from(2);
    };
    let (Some(old), Some(new)) = (CharmDigest::parse(old), CharmDigest::parse(new)) else {
        eprintln!("merge_bench: OLD_DIGEST and NEW_DIGEST must be sha256-<hex>");
        return ExitCode::from(2);
    };
    let layers: Vec<PathBuf> = layers.iter().map(PathBuf::from).collect();
    let store = CharmStore::new(&StateRoot::at(root));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let staging = PathBuf::from(out).join(format!("layer-{}-{nanos}", std::process::id()));

    let mut steps = Vec::new();
    let mut lap = {
        let mut last = Instant::now();
        move |name: &'static str| {
            let now = Instant::now();
            steps.push((name, now - last));
            last = now;
            steps.clone()
        }
    };
    let result = (|| -> Result<_, Box<dyn std::error::Error>> {
        let old_listing = store.listing(&old)?;
        let new_listing = store.listing(&new)?;
        lap("listings");
        let runtime = flatten_layers(&layers, OverlayXattrs::User)?;
        lap("flatten");
        let merged = match merge(&old_listing, &runtime, &new_listing) {
            MergeOutcome::Merged(diff) => diff,
            MergeOutcome::Conflicts(conflicts) => {
                return Err(
                    format!("{} conflicts, first {:?}", conflicts.len(), conflicts[0]).into(),
                );
            }
        };
        lap("merge");
        let report = materialize(&merged, &layers, &staging, OverlayXattrs::User)?;
        Ok((runtime.len(), merged.len(), report, lap("materialise")))
    })();
    match result {
        Ok((runtime, merged, report, steps)) => {
            let times: Vec<String> = steps
                .iter()
                .map(|(name, d)| format!("{name} {:.1} ms", d.as_secs_f64() * 1e3))
                .collect();
            println!(
                "runtime diff {runtime} entries, merged {merged}, {} linked, {} copied; {}",
                report.linked,
                report.copied,
                times.join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("merge_bench: {err}");
            ExitCode::from(1)
        }
    }
}
