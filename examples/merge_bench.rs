//! Benchmark of the upgrade merge (issue 5): a unit with 1,000 runtime files over a
//! 20,000-file charm, against `git merge` of the same three trees.
//!
//! `cargo run --release --example merge_bench [-- RUNS]`; prints medians, asserts nothing.
//! The trees: 200 directories of 100 files (~200 bytes each); the new charm changes 500
//! files, adds 200 and deletes 100; the runtime layer adds 800 files (in 8 new directories
//! and beside the charm's), rewrites 200 charm files the new charm left alone and deletes
//! 20 (whiteouts). No conflict, so both tools do the whole merge.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hookbox::store::merge::{Listing, MergeOutcome, flatten_layers, materialize, merge};
use hookbox::store::squash::{OverlayXattrs, remove_tree};

fn content(seed: &str) -> String {
    format!("{seed}\n").repeat(200 / (seed.len() + 1) + 1)
}

fn write(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
}

fn build(root: &Path) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let old = root.join("old");
    let new = root.join("new");
    let layer = root.join("layer");
    let view = root.join("view"); // old base + runtime, for git
    for d in 0..200 {
        fs::create_dir_all(old.join(format!("d{d:03}"))).unwrap();
        for f in 0..100 {
            write(
                &old.join(format!("d{d:03}/f{f:03}")),
                &content(&format!("{d}-{f}")),
            );
        }
    }
    copy_tree(&old, &new);
    copy_tree(&old, &view);
    // The new charm: 500 changed, 200 added, 100 deleted (all in d000..d099, f000..f007).
    for i in 0..500 {
        let (d, f) = (i / 5, i % 5);
        write(
            &new.join(format!("d{d:03}/f{f:03}")),
            &content(&format!("new {i}")),
        );
    }
    for i in 0..200 {
        write(
            &new.join(format!("d{:03}/added{}", i / 2, i % 2)),
            &content(&format!("add {i}")),
        );
    }
    for i in 0..100 {
        fs::remove_file(new.join(format!("d{i:03}/f007"))).unwrap();
    }
    // The runtime layer: 800 added, 200 rewritten (d100..d199, f050..f051), 20 deleted.
    fs::create_dir_all(&layer).unwrap();
    for i in 0..800 {
        let dir = if i < 400 {
            format!("state{}", i / 50)
        } else {
            format!("d{:03}", 100 + (i - 400) / 4)
        };
        fs::create_dir_all(layer.join(&dir)).unwrap();
        fs::create_dir_all(view.join(&dir)).unwrap();
        let rel = format!("{dir}/runtime{i}");
        write(&layer.join(&rel), &content(&format!("rt {i}")));
        write(&view.join(&rel), &content(&format!("rt {i}")));
    }
    for i in 0..200 {
        let rel = format!("d{:03}/f{:03}", 100 + i / 2, 50 + i % 2);
        write(&layer.join(&rel), &content(&format!("mine {i}")));
        write(&view.join(&rel), &content(&format!("mine {i}")));
    }
    for i in 0..20 {
        let rel = format!("d{:03}/f090", 100 + i);
        rustix::fs::mknodat(
            rustix::fs::CWD,
            layer.join(&rel),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            0,
        )
        .unwrap();
        fs::remove_file(view.join(&rel)).unwrap();
    }
    (old, new, layer, view)
}

fn copy_tree(from: &Path, to: &Path) {
    assert!(
        Command::new("cp")
            .arg("-a")
            .arg(from)
            .arg(to)
            .status()
            .unwrap()
            .success()
    );
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@b",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A repository with `base`, `charm` (new base) and `runtime` (old base + runtime) commits.
fn git_repo(root: &Path, old: &Path, new: &Path, view: &Path) -> PathBuf {
    let repo = root.join("repo");
    fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    let load = |tree: &Path, msg: &str| {
        git(&repo, &["rm", "-rq", "--ignore-unmatch", "."]);
        assert!(
            Command::new("sh")
                .args(["-c", "cp -a \"$1\"/. .", "sh"])
                .arg(tree)
                .current_dir(&repo)
                .status()
                .unwrap()
                .success()
        );
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-qm", msg]);
    };
    load(old, "base");
    git(&repo, &["branch", "base"]);
    load(new, "charm");
    git(&repo, &["branch", "charm"]);
    git(&repo, &["checkout", "-q", "base"]);
    git(&repo, &["checkout", "-qb", "runtime"]);
    load(view, "runtime");
    // A tag: merging moves the `runtime` branch, every run must start from this commit.
    git(&repo, &["tag", "runtime-state"]);
    repo
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(7);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (old, new, layer, view) = build(root);
    let layers = vec![layer];
    let (old_cache, new_cache) = (root.join("old.listing"), root.join("new.listing"));
    let old_listing = Listing::read_tree(&old).unwrap();
    let new_listing = Listing::read_tree(&new).unwrap();
    old_listing.save(&old_cache).unwrap();
    new_listing.save(&new_cache).unwrap();
    let (old_digest, new_digest) = (old_listing.digest(), new_listing.digest());

    let mut t = std::collections::BTreeMap::<&str, Vec<Duration>>::new();
    let mut time = |name, f: &mut dyn FnMut()| {
        let start = Instant::now();
        f();
        t.entry(name).or_default().push(start.elapsed());
    };
    for run in 0..runs {
        let mut listings = None;
        time("1 list both bases (walk + hash, no cache)", &mut || {
            listings = Some((
                Listing::read_tree(&old).unwrap(),
                Listing::read_tree(&new).unwrap(),
            ));
        });
        time("2 load both cached listings (digest-checked)", &mut || {
            listings = Some((
                Listing::load(&old_cache, &old_digest).unwrap().unwrap(),
                Listing::load(&new_cache, &new_digest).unwrap().unwrap(),
            ));
        });
        let (o, n) = listings.take().unwrap();
        let mut runtime = None;
        time("3 flatten the runtime layer", &mut || {
            runtime = Some(flatten_layers(&layers, OverlayXattrs::User).unwrap());
        });
        let runtime = runtime.unwrap();
        let mut result = None;
        time("4 merge (pure)", &mut || {
            result = Some(merge(&o, &runtime, &n))
        });
        let MergeOutcome::Merged(result) = result.unwrap() else {
            panic!("conflicts")
        };
        let staging = root.join(format!("staging{run}"));
        time("5 materialise the new layer", &mut || {
            materialize(&result, &layers, &staging, OverlayXattrs::User).unwrap();
        });
        remove_tree(&staging).unwrap();
    }

    let repo = git_repo(root, &old, &new, &view);
    let mut git_times = Vec::new();
    for _ in 0..runs {
        git(&repo, &["reset", "-q", "--hard", "runtime-state"]);
        let start = Instant::now();
        git(&repo, &["merge", "-q", "--no-edit", "charm"]);
        git_times.push(start.elapsed());
        assert!(
            fs::read_to_string(repo.join("d000/f000"))
                .unwrap()
                .starts_with("new 0")
        );
    }

    println!("trees: 20,000-file charm, 1,000 runtime files; medians of {runs} runs");
    let mut total = Duration::ZERO;
    for (name, times) in &t {
        let m = median(times.clone());
        if !name.starts_with('1') {
            total += m;
        }
        println!("  {name:48} {}", ms(m));
    }
    let git_median = median(git_times);
    println!(
        "  {:48} {}",
        "hookbox total with cached listings (2+3+4+5)",
        ms(total)
    );
    println!(
        "  {:48} {}",
        "git merge (same three trees, commits prepared)",
        ms(git_median)
    );
    println!(
        "  ratio hookbox / git: {:.2}",
        total.as_secs_f64() / git_median.as_secs_f64()
    );
}
