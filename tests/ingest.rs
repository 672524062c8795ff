//! `hookbox ingest` and `hookbox verify` on valid charms: every source format gives one
//! digest, the store entry is read-only and complete, the same content is a no-op, and the
//! valid edge cases (empty hooks/, hook without exec bit, hardlink to an earlier member,
//! dangling symlink inside the charm, wrapper directory) ingest. Archives are built in memory.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use hookbox::store::digest::tree_digest;
use tar::EntryType;

use crate::util::TestEnv;

/// An in-memory tar archive, written member by member; `raw` writes a header exactly as
/// given (names the tar crate would refuse to write: `..`, absolute, bad bytes).
pub struct TarBuilder {
    builder: tar::Builder<Vec<u8>>,
}

impl TarBuilder {
    pub fn new() -> Self {
        Self {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    /// The smallest valid charm: metadata.yaml and an executable install hook.
    pub fn charm() -> Self {
        let mut tar = Self::new();
        tar.file("metadata.yaml", 0o644, b"name: tiny\nsummary: t\n");
        tar.file("hooks/install", 0o755, b"#!/bin/sh\necho installed\n");
        tar
    }

    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> &mut Self {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(EntryType::Regular);
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        self.builder
            .append_data(&mut header, name, data)
            .expect("append file");
        self
    }

    pub fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(EntryType::Directory);
        header.set_mode(mode);
        header.set_size(0);
        self.builder
            .append_data(&mut header, name, &[][..])
            .expect("append dir");
        self
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(
            name.as_bytes(),
            EntryType::Symlink,
            0o777,
            b"",
            Some(target.as_bytes()),
        )
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(
            name.as_bytes(),
            EntryType::Link,
            0o644,
            b"",
            Some(target.as_bytes()),
        )
    }

    /// A ustar header written byte for byte (name and link name up to 100 bytes).
    pub fn raw(
        &mut self,
        name: &[u8],
        kind: EntryType,
        mode: u32,
        data: &[u8],
        link: Option<&[u8]>,
    ) -> &mut Self {
        let mut header = tar::Header::new_ustar();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        if let Some(link) = link {
            header.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        }
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_cksum();
        self.builder.append(&header, data).expect("append raw");
        self
    }

    /// A pax extended header (`x`) with `key=value` records for the next member.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut body = Vec::new();
        for (key, value) in records {
            let rest = key.len() + value.len() + 3; // ' ' '=' '\n'
            let mut len = rest + 1;
            while len != rest + len.to_string().len() {
                len = rest + len.to_string().len();
            }
            body.extend_from_slice(format!("{len} {key}=").as_bytes());
            body.extend_from_slice(value);
            body.push(b'\n');
        }
        self.raw(b"././@PaxHeader", EntryType::XHeader, 0o644, &body, None)
    }

    pub fn finish(self) -> Vec<u8> {
        self.builder.into_inner().expect("finish tar")
    }
}

/// gzip of `data`.
pub fn gz(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// A zip archive of (name, unix mode, content) files; a mode with S_IFLNK makes a symlink
/// whose content is its target, a name ending in `/` a directory.
pub fn zip(entries: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, mode, data) in entries {
        let options = zip::write::SimpleFileOptions::default().unix_permissions(*mode & 0o7777);
        if name.ends_with('/') {
            writer.add_directory(*name, options).unwrap();
        } else if mode & 0o170000 == 0o120000 {
            writer
                .add_symlink(*name, std::str::from_utf8(data).unwrap(), options)
                .unwrap();
        } else {
            writer.start_file(*name, options).unwrap();
            writer.write_all(data).unwrap();
        }
    }
    writer.finish().unwrap().into_inner()
}

/// Writes `bytes` to `name` in the test directory.
pub fn write_source(env: &TestEnv, name: &str, bytes: &[u8]) -> PathBuf {
    let path = env.path().join(name);
    fs::write(&path, bytes).unwrap();
    path
}

/// Runs `hookbox ingest --json PATH` and returns the parsed report.
pub fn ingest_json(env: &TestEnv, source: &Path) -> serde_json::Value {
    let out = env
        .hookbox()
        .args(["ingest", "--json"])
        .arg(source)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ingest failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The entries of `<root>/<dir>` (empty when it does not exist).
pub fn entries_of(dir: &Path) -> Vec<String> {
    match fs::read_dir(dir) {
        Ok(items) => items
            .map(|i| i.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The example charm shipped with the repository.
fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello")
}

/// A directory copy of the tiny charm, with a symlinked hook.
fn tiny_dir(env: &TestEnv) -> PathBuf {
    let dir = env.path().join("tiny");
    fs::create_dir_all(dir.join("hooks")).unwrap();
    fs::write(dir.join("metadata.yaml"), "name: tiny\nsummary: t\n").unwrap();
    fs::write(dir.join("hooks/install"), "#!/bin/sh\necho installed\n").unwrap();
    fs::set_permissions(dir.join("hooks/install"), fs::Permissions::from_mode(0o755)).unwrap();
    symlink("install", dir.join("hooks/start")).unwrap();
    dir
}

fn tiny_tar() -> TarBuilder {
    let mut tar = TarBuilder::charm();
    tar.symlink("hooks/start", "install");
    tar
}

#[test]
fn every_format_gives_the_same_digest_and_the_store_is_read_only() {
    let env = TestEnv::new();
    let dir = tiny_dir(&env);
    let tar_bytes = tiny_tar().finish();
    let tar = write_source(&env, "tiny.tar", &tar_bytes);
    let tgz = write_source(&env, "tiny.tgz", &gz(&tar_bytes));
    let charm = write_source(
        &env,
        "tiny.charm",
        &zip(&[
            ("metadata.yaml", 0o100644, b"name: tiny\nsummary: t\n"),
            ("hooks/", 0o040755, b""),
            ("hooks/install", 0o100755, b"#!/bin/sh\necho installed\n"),
            ("hooks/start", 0o120777, b"install"),
        ]),
    );
    let first = ingest_json(&env, &dir);
    assert_eq!(first["outcome"], "stored");
    assert_eq!(first["name"], "tiny");
    assert_eq!(first["format"], "directory");
    let digest = first["digest"].as_str().unwrap().to_owned();
    for source in [&tar, &tgz, &charm] {
        let again = ingest_json(&env, source);
        assert_eq!(again["digest"], digest.as_str(), "{}", source.display());
        assert_eq!(again["outcome"], "already_stored");
    }
    let charms = env.root().join("charms");
    assert_eq!(entries_of(&charms), vec![digest.clone()]);
    assert!(entries_of(&env.root().join("staging")).is_empty());

    let tree = charms.join(&digest).join("tree");
    assert_eq!(
        tree_digest(&tree).unwrap().to_string(),
        digest,
        "the stored tree hashes to its name"
    );
    let mode = |p: &str| fs::symlink_metadata(tree.join(p)).unwrap().mode() & 0o7777;
    assert_eq!(mode(""), 0o555);
    assert_eq!(mode("hooks"), 0o555);
    assert_eq!(mode("metadata.yaml"), 0o444);
    assert_eq!(mode("hooks/install"), 0o555);
    assert_eq!(
        fs::read_link(tree.join("hooks/start")).unwrap(),
        Path::new("install")
    );

    let record: serde_json::Value =
        serde_json::from_slice(&fs::read(charms.join(&digest).join("charm.json")).unwrap())
            .unwrap();
    assert_eq!(record["name"], "tiny");
    assert_eq!(record["digest"], digest.as_str());
    assert_eq!(record["format"], "directory");
    assert!(record["ingested_at"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn the_same_content_again_is_a_no_op_that_says_so() {
    let env = TestEnv::new();
    let dir = tiny_dir(&env);
    env.hookbox()
        .arg("ingest")
        .arg(&dir)
        .assert()
        .success()
        .stdout(predicates::str::contains("stored tiny"));
    let charms = env.root().join("charms");
    let entry = charms.join(&entries_of(&charms)[0]);
    let before = fs::metadata(entry.join("charm.json"))
        .unwrap()
        .modified()
        .unwrap();
    env.hookbox()
        .arg("ingest")
        .arg(&dir)
        .assert()
        .success()
        .stdout(predicates::str::contains("already stored; nothing changed"));
    assert_eq!(entries_of(&charms).len(), 1);
    let after = fs::metadata(entry.join("charm.json"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after, "charm.json was rewritten");
}

#[test]
fn text_output_names_digest_name_and_revision() {
    let env = TestEnv::new();
    env.hookbox()
        .arg("ingest")
        .arg(example())
        .assert()
        .success()
        .stdout(predicates::str::contains("digest:   sha256-"))
        .stdout(predicates::str::contains("name:     hello"))
        .stdout(predicates::str::contains("revision: 3"));
}

#[test]
fn the_example_charm_verifies_clean() {
    let env = TestEnv::new();
    let out = env
        .hookbox()
        .args(["verify", "--json"])
        .arg(example())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["refused"], false);
    assert_eq!(report["name"], "hello");
    assert_eq!(report["revision"], 3);
    assert_eq!(report["warnings"], serde_json::json!([]));
    assert!(
        !env.root().exists(),
        "verify must not create the state root"
    );
}

#[test]
fn setuid_sticky_and_world_writable_modes_are_stripped() {
    let env = TestEnv::new();
    let mut tar = TarBuilder::new();
    tar.dir("hooks", 0o1777)
        .file("metadata.yaml", 0o666, b"name: modes\n")
        .file("hooks/install", 0o4777, b"#!/bin/sh\n")
        .file("hooks/start", 0o2755, b"#!/bin/sh\n");
    let source = write_source(&env, "modes.tar", &tar.finish());
    let report = ingest_json(&env, &source);
    let tree = PathBuf::from(report["tree"].as_str().unwrap());
    let mode = |p: &str| fs::symlink_metadata(tree.join(p)).unwrap().mode() & 0o7777;
    assert_eq!(mode("hooks"), 0o555);
    assert_eq!(mode("metadata.yaml"), 0o444);
    assert_eq!(mode("hooks/install"), 0o555);
    assert_eq!(mode("hooks/start"), 0o555);
    let owner = fs::symlink_metadata(tree.join("hooks/install"))
        .unwrap()
        .uid();
    assert_eq!(
        owner,
        rustix::process::geteuid().as_raw(),
        "nothing is chowned"
    );
}

#[test]
fn valid_edge_cases_ingest() {
    let env = TestEnv::new();
    let mut tar = TarBuilder::new();
    tar.file("metadata.yaml", 0o644, b"name: edges\n")
        .dir("hooks", 0o755) // an empty hooks/ directory
        .dir("actions", 0o755)
        .file("actions/backup", 0o644, b"#!/bin/sh\n") // no exec bit: fails at run time
        .file("lib/data.txt", 0o644, b"shared\n")
        .hardlink("lib/copy.txt", "lib/data.txt") // hardlink to an earlier member
        .symlink("lib/later", "../missing/file") // dangling, but inside the charm
        .symlink("lib/self", "."); // points at its own directory
    let source = write_source(&env, "edges.tar.gz", &gz(&tar.finish()));
    let report = ingest_json(&env, &source);
    assert_eq!(report["name"], "edges");
    assert_eq!(report["revision"], serde_json::Value::Null);
    let tree = PathBuf::from(report["tree"].as_str().unwrap());
    assert!(tree.join("hooks").is_dir());
    assert_eq!(entries_of(&tree.join("hooks")), Vec::<String>::new());
    assert_eq!(fs::read(tree.join("lib/copy.txt")).unwrap(), b"shared\n");
    assert_eq!(
        fs::read_link(tree.join("lib/later")).unwrap(),
        Path::new("../missing/file")
    );
    assert_eq!(
        fs::symlink_metadata(tree.join("actions/backup"))
            .unwrap()
            .mode()
            & 0o777,
        0o444
    );
    assert_eq!(
        tree_digest(&tree).unwrap().to_string(),
        report["digest"].as_str().unwrap()
    );
}

#[test]
fn a_hook_without_exec_bit_ingests_with_a_warning() {
    let env = TestEnv::new();
    let mut tar = TarBuilder::new();
    tar.file("metadata.yaml", 0o644, b"name: lazy\n")
        .file("hooks/install", 0o644, b"#!/bin/sh\n");
    let source = write_source(&env, "lazy.tar", &tar.finish());
    env.hookbox()
        .arg("ingest")
        .arg(&source)
        .assert()
        .success()
        .stderr(predicates::str::contains(
            "hooks/install is not executable; it will fail when it runs",
        ));
}

#[test]
fn a_charm_inside_a_wrapper_directory_is_stored_without_it() {
    let env = TestEnv::new();
    let plain = write_source(&env, "plain.tar", &tiny_tar().finish());
    let mut wrapped = TarBuilder::new();
    wrapped
        .dir("tiny-main", 0o755)
        .file(
            "tiny-main/metadata.yaml",
            0o644,
            b"name: tiny\nsummary: t\n",
        )
        .file(
            "tiny-main/hooks/install",
            0o755,
            b"#!/bin/sh\necho installed\n",
        )
        .symlink("tiny-main/hooks/start", "install");
    let wrapped = write_source(&env, "wrapped.tgz", &gz(&wrapped.finish()));
    let a = ingest_json(&env, &plain);
    let out = env.hookbox().arg("ingest").arg(&wrapped).output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("inside the top-level directory tiny-main/"),
        "{stderr}"
    );
    let b = ingest_json(&env, &wrapped);
    assert_eq!(a["digest"], b["digest"]);
    let tree = PathBuf::from(b["tree"].as_str().unwrap());
    assert!(tree.join("metadata.yaml").is_file());
}

#[test]
fn a_plain_tar_named_tar_gz_is_read_as_the_tar_it_is() {
    let env = TestEnv::new();
    let source = write_source(&env, "liar.tar.gz", &tiny_tar().finish());
    let out = env.hookbox().arg("ingest").arg(&source).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("liar.tar.gz is named like a tar.gz but is a tar archive; read as tar"),
        "{stderr}"
    );
}

#[test]
fn a_directory_source_is_walked_without_following_symlinks() {
    let env = TestEnv::new();
    let dir = tiny_dir(&env);
    let elsewhere = env.path().join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    fs::write(elsewhere.join("secret"), "do not copy").unwrap();
    fs::create_dir_all(dir.join("lib")).unwrap();
    symlink("../hooks", dir.join("lib/hooks")).unwrap();
    let report = ingest_json(&env, &dir);
    let tree = PathBuf::from(report["tree"].as_str().unwrap());
    assert!(
        fs::symlink_metadata(tree.join("lib/hooks"))
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // A symlink out of the charm is refused, and what it points at is never read.
    symlink(&elsewhere, dir.join("lib/out")).unwrap();
    env.hookbox()
        .arg("ingest")
        .arg(&dir)
        .assert()
        .code(3)
        .stderr(predicates::str::contains(
            "member lib/out: symlink to an absolute path",
        ));
}

#[test]
fn verify_reports_warnings_and_stores_nothing() {
    let env = TestEnv::new();
    let mut tar = TarBuilder::new();
    tar.file("metadata.yaml", 0o644, b"name: sloppy\n")
        .file("hooks/install", 0o755, b"#!/bin/sh\necho hi\n")
        .file("hooks/start", 0o755, b"#!/bin/sh\necho hi\n") // flattened symlink
        .file("hooks/stop", 0o755, b"echo no shebang\n")
        .file("src/__pycache__/charm.cpython-312.pyc", 0o644, b"\x00")
        .file("src/stray.pyc", 0o644, b"\x00")
        .file(".git/HEAD", 0o644, b"ref: refs/heads/main\n");
    let source = write_source(&env, "sloppy.tar", &tar.finish());
    let out = env
        .hookbox()
        .args(["verify", "--json"])
        .arg(&source)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<(String, String)> = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["kind"].as_str().unwrap().to_owned(),
                w["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("identical-hooks", "hooks/install"),
        ("no-shebang", "hooks/stop"),
        ("should-not-ship", "src/__pycache__"),
        ("should-not-ship", "src/stray.pyc"),
        ("should-not-ship", ".git"),
    ] {
        assert!(
            kinds.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} missing from {kinds:?}"
        );
    }
    assert_eq!(kinds.len(), 5, "{kinds:?}");
    // Text output prints the warnings too.
    env.hookbox()
        .arg("verify")
        .arg(&source)
        .assert()
        .success()
        .stderr(predicates::str::contains(
            "hooks/install, hooks/start have identical content",
        ))
        .stdout(predicates::str::contains("ok: sloppy"));
    assert!(!env.root().exists());
}

#[test]
fn verify_refuses_what_ingest_refuses() {
    let env = TestEnv::new();
    let mut tar = TarBuilder::charm();
    tar.symlink("hooks/evil", "../../etc/passwd");
    let source = write_source(&env, "evil.tar", &tar.finish());
    let out = env
        .hookbox()
        .args(["verify", "--json"])
        .arg(&source)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["refused"], true);
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("member hooks/evil"),
        "{report}"
    );
    env.hookbox()
        .arg("verify")
        .arg(&source)
        .assert()
        .code(3)
        .stderr(predicates::str::contains(
            "member hooks/evil: symlink target ../../etc/passwd leaves the charm",
        ));
}

#[test]
fn ingest_works_rootless_and_leaves_nothing_on_refusal() {
    if !crate::util::require_root() {
        return;
    }
    let env = TestEnv::new();
    let good = write_source(&env, "good.tgz", &gz(&tiny_tar().finish()));
    let mut bad = TarBuilder::charm();
    bad.file("lib/a", 0o644, b"a").dir("lib/deeper", 0o755).raw(
        b"lib/deeper/../../../x",
        EntryType::Regular,
        0o644,
        b"x",
        None,
    );
    let bad = write_source(&env, "bad.tar", &bad.finish());
    for path in [&good, &bad] {
        fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
    }
    let out = env
        .hookbox_as_nobody()
        .arg("ingest")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(entries_of(&env.root().join("staging")).is_empty());
    assert!(entries_of(&env.root().join("charms")).is_empty());
    let out = env
        .hookbox_as_nobody()
        .args(["ingest", "--json"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tree = PathBuf::from(report["tree"].as_str().unwrap());
    let meta = fs::symlink_metadata(tree.join("hooks/install")).unwrap();
    assert_eq!(meta.uid(), crate::util::NOBODY);
    assert_eq!(meta.mode() & 0o7777, 0o555);
}

#[test]
fn a_charmcraft_yaml_charm_without_metadata_yaml_ingests() {
    let env = TestEnv::new();
    let mut tar = TarBuilder::new();
    tar.file(
        "charmcraft.yaml",
        0o644,
        b"name: crafty\ntype: charm\nsummary: s\nconfig:\n  options:\n    port: {type: int, default: 80}\n",
    )
    .file("hooks/install", 0o755, b"#!/bin/sh\n");
    let source = write_source(&env, "crafty.charm.tar", &tar.finish());
    let report = ingest_json(&env, &source);
    assert_eq!(report["name"], "crafty");
    // A config default that does not fit its type is refused, naming the file.
    let mut bad = TarBuilder::new();
    bad.file(
        "charmcraft.yaml",
        0o644,
        b"name: crafty\nconfig:\n  options:\n    port: {type: int, default: eighty}\n",
    );
    let bad = write_source(&env, "bad-crafty.tar", &bad.finish());
    env.hookbox()
        .arg("ingest")
        .arg(&bad)
        .assert()
        .code(3)
        .stderr(predicates::str::contains(
            "member charmcraft.yaml: invalid charm file",
        ))
        .stderr(predicates::str::contains("port"));
}

#[test]
fn file_modes_keep_their_read_and_execute_bits_and_lose_write_bits() {
    let env = TestEnv::new();
    let charm = |secret_mode: u32, tool_mode: u32| {
        let mut tar = TarBuilder::new();
        tar.file("metadata.yaml", 0o644, b"name: modes\n")
            .file("secret.key", secret_mode, b"key\n")
            .file("bin/tool", tool_mode, b"#!/bin/sh\n")
            .file("group-only", 0o750, b"#!/bin/sh\n")
            .file("exec-only", 0o711, b"#!/bin/sh\n");
        tar.finish()
    };
    let source = write_source(&env, "modes.tar", &charm(0o600, 0o755));
    let report = ingest_json(&env, &source);
    let tree = PathBuf::from(report["tree"].as_str().unwrap());
    let mode = |p: &str| fs::symlink_metadata(tree.join(p)).unwrap().mode() & 0o7777;
    assert_eq!(
        mode("secret.key"),
        0o400,
        "a 0600 file must not become world-readable"
    );
    assert_eq!(mode("bin/tool"), 0o555);
    assert_eq!(mode("group-only"), 0o550);
    assert_eq!(mode("exec-only"), 0o511);
    assert_eq!(mode("metadata.yaml"), 0o444);
    assert_eq!(mode("bin"), 0o555);
    assert_eq!(
        tree_digest(&tree).unwrap().to_string(),
        report["digest"].as_str().unwrap()
    );
    // Write bits do not count; read and execute bits do.
    let writable = write_source(&env, "writable.tar", &charm(0o600, 0o777));
    assert_eq!(ingest_json(&env, &writable)["digest"], report["digest"]);
    let readable = write_source(&env, "readable.tar", &charm(0o644, 0o755));
    assert_ne!(ingest_json(&env, &readable)["digest"], report["digest"]);
}
