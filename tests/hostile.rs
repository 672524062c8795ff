//! Hostile archives, built in memory: each is refused with exit 3 and an error naming the
//! member, and leaves nothing behind — no staging directory, no store entry, and nothing in
//! the canary directory beside the state root that the archive aims at.

use std::fs;
use std::io::Write;

use tar::EntryType;

use crate::ingest::{TarBuilder, entries_of, gz, write_source, zip};
use crate::util::TestEnv;

/// A test world with a canary directory beside the state root.
struct Hostile {
    env: TestEnv,
}

impl Hostile {
    fn new() -> Self {
        let env = TestEnv::new();
        fs::create_dir_all(env.path().join("canary")).unwrap();
        Self { env }
    }

    /// `../` enough times to climb from the staging tree
    /// (`<root>/staging/<entry>/tree/`) to the test directory, then into the canary.
    fn up_to_canary(&self) -> &'static str {
        "../../../../canary"
    }

    fn canary(&self) -> std::path::PathBuf {
        self.env.path().join("canary")
    }

    /// Ingests `bytes` as `name` and checks the refusal: exit 3, `fragments` in the error,
    /// nothing stored, nothing staged, the canary untouched; then `verify` refuses it too.
    fn refuse(&self, name: &str, bytes: &[u8], fragments: &[&str]) {
        self.refuse_with(name, bytes, &[], fragments);
    }

    fn refuse_with(&self, name: &str, bytes: &[u8], flags: &[&str], fragments: &[&str]) {
        let source = write_source(&self.env, name, bytes);
        for command in ["ingest", "verify"] {
            let out = self
                .env
                .hookbox()
                .arg(command)
                .args(flags)
                .arg(&source)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(3), "{command} {name}: {stderr}");
            for fragment in fragments {
                assert!(
                    stderr.contains(fragment),
                    "{command} {name}: {fragment:?} not in {stderr}"
                );
            }
            self.assert_nothing_left();
        }
    }

    fn assert_nothing_left(&self) {
        let root = self.env.root();
        assert!(
            entries_of(&root.join("charms")).is_empty(),
            "store entry left"
        );
        assert!(entries_of(&root.join("staging")).is_empty(), "staging left");
        assert!(
            entries_of(&self.canary()).is_empty(),
            "written outside the root"
        );
        let mut around = entries_of(self.env.path());
        around.sort();
        around.retain(|n| {
            !n.ends_with(".tar")
                && !n.ends_with(".gz")
                && !n.ends_with(".tgz")
                && !n.ends_with(".charm")
                && !n.ends_with(".zip")
                && !n.ends_with(".xz")
                && n != "bin"
        });
        assert!(
            around.iter().all(|n| n == "canary" || n == "root"),
            "unexpected files beside the root: {around:?}"
        );
    }
}

#[test]
fn dotdot_traversal_plain() {
    let h = Hostile::new();
    let evil = format!("{}/evil", h.up_to_canary());
    let mut tar = TarBuilder::charm();
    tar.raw(evil.as_bytes(), EntryType::Regular, 0o644, b"pwned", None);
    h.refuse(
        "plain.tar",
        &tar.finish(),
        &[&format!("member {evil}: `..` path component")],
    );
}

#[test]
fn dotdot_traversal_embedded_in_a_path() {
    let h = Hostile::new();
    let evil = "hooks/../../../../../canary/evil";
    let mut tar = TarBuilder::charm();
    tar.raw(evil.as_bytes(), EntryType::Regular, 0o644, b"pwned", None);
    h.refuse(
        "embedded.tar",
        &tar.finish(),
        &[&format!("member {evil}: `..`")],
    );
}

#[test]
fn dotdot_traversal_in_a_pax_header_overriding_the_ustar_name() {
    let h = Hostile::new();
    let evil = format!("{}/evil", h.up_to_canary());
    let mut tar = TarBuilder::charm();
    tar.pax(&[("path", evil.as_bytes())]);
    tar.raw(b"innocent.txt", EntryType::Regular, 0o644, b"pwned", None);
    h.refuse(
        "pax.tar.gz",
        &gz(&tar.finish()),
        &[&format!("member {evil}: `..`")],
    );
}

#[test]
fn absolute_names() {
    let h = Hostile::new();
    let evil = format!("{}/evil", h.canary().display());
    let mut tar = TarBuilder::charm();
    tar.raw(evil.as_bytes(), EntryType::Regular, 0o644, b"pwned", None);
    h.refuse(
        "absolute.tar",
        &tar.finish(),
        &[&format!("member {evil}: absolute path")],
    );
}

#[test]
fn write_through_an_absolute_symlink() {
    let h = Hostile::new();
    let target = h.canary().display().to_string();
    let mut tar = TarBuilder::charm();
    tar.symlink("out", &target);
    tar.raw(b"out/evil", EntryType::Regular, 0o644, b"pwned", None);
    h.refuse(
        "abs-link.tar",
        &tar.finish(),
        &["member out: symlink to an absolute path"],
    );
}

#[test]
fn write_through_a_relative_symlink() {
    let h = Hostile::new();
    let mut tar = TarBuilder::charm();
    tar.symlink("out", h.up_to_canary());
    tar.raw(b"out/evil", EntryType::Regular, 0o644, b"pwned", None);
    h.refuse(
        "rel-link.tar",
        &tar.finish(),
        &["member out/evil: path goes through the symlink out"],
    );
}

#[test]
fn write_through_chained_symlinks() {
    let h = Hostile::new();
    let mut tar = TarBuilder::charm();
    tar.dir("a", 0o755);
    tar.symlink("a/l1", "../l2");
    tar.symlink("l2", h.up_to_canary());
    tar.raw(b"a/l1/evil", EntryType::Regular, 0o644, b"pwned", None);
    h.refuse(
        "chain.tar",
        &tar.finish(),
        &["member a/l1/evil: path goes through the symlink a/l1"],
    );
}

#[test]
fn symlink_that_leaves_the_charm_through_another_symlink() {
    let h = Hostile::new();
    let mut tar = TarBuilder::charm();
    tar.dir("sub", 0o755);
    tar.symlink("sub/up", "..");
    tar.symlink("escape", "sub/up/..");
    h.refuse(
        "sneaky.tar",
        &tar.finish(),
        &["member escape: symlink target sub/up/.. leaves the charm"],
    );
}

#[test]
fn symlink_followed_by_a_regular_file_of_the_same_name() {
    let h = Hostile::new();
    let mut tar = TarBuilder::charm();
    tar.symlink("hooks/start", "install");
    tar.raw(
        b"hooks/start",
        EntryType::Regular,
        0o755,
        b"#!/bin/sh\n",
        None,
    );
    h.refuse(
        "replace.tar",
        &tar.finish(),
        &["member hooks/start: duplicate member (the path was already given as a symlink)"],
    );
}

#[test]
fn hardlink_to_an_outside_file() {
    let h = Hostile::new();
    for (i, target) in ["/etc/passwd".to_owned(), format!("{}/x", h.up_to_canary())]
        .iter()
        .enumerate()
    {
        let mut tar = TarBuilder::charm();
        tar.hardlink("passwd", target);
        h.refuse(
            &format!("hardlink{i}.tar"),
            &tar.finish(),
            &[&format!(
                "member passwd: hardlink to {target}, outside the charm"
            )],
        );
    }
}

#[test]
fn hardlink_through_a_symlink() {
    let h = Hostile::new();
    let mut tar = TarBuilder::charm();
    tar.symlink("h", "hooks");
    tar.hardlink("copy", "h/install");
    h.refuse(
        "hardlink-symlink.tar",
        &tar.finish(),
        &["member copy: hardlink target h/install goes through the symlink h"],
    );
}

#[test]
fn device_nodes_and_fifos() {
    let h = Hostile::new();
    for (name, kind, label) in [
        ("chr", EntryType::Char, "character device"),
        ("blk", EntryType::Block, "block device"),
        ("fifo", EntryType::Fifo, "fifo"),
    ] {
        let mut tar = TarBuilder::charm();
        tar.raw(format!("dev/{name}").as_bytes(), kind, 0o666, b"", None);
        h.refuse(
            &format!("{name}.tar"),
            &tar.finish(),
            &[&format!("member dev/{name}: {label}")],
        );
    }
}

#[test]
fn duplicate_members_file_then_dir_and_file_then_symlink() {
    let h = Hostile::new();
    let mut tar = TarBuilder::charm();
    tar.file("lib", 0o644, b"x").dir("lib", 0o755);
    h.refuse(
        "file-dir.tar",
        &tar.finish(),
        &["member lib: duplicate member (the path was already given as a file)"],
    );
    let mut tar = TarBuilder::charm();
    tar.symlink("hooks/install", "start");
    h.refuse(
        "file-symlink.tar",
        &tar.finish(),
        &["member hooks/install: duplicate member (the path was already given as a file)"],
    );
}

#[test]
fn non_utf8_and_control_character_names() {
    let h = Hostile::new();
    let mut tar = TarBuilder::charm();
    tar.raw(b"bad\xffname", EntryType::Regular, 0o644, b"x", None);
    h.refuse(
        "latin1.tar",
        &tar.finish(),
        &["member bad\\xffname: invalid name (not UTF-8)"],
    );
    let mut tar = TarBuilder::charm();
    tar.raw(b"bad\x1b[31mname", EntryType::Regular, 0o644, b"x", None);
    h.refuse(
        "escape.tar",
        &tar.finish(),
        &["member bad\\u{1b}[31mname: invalid name (control character)"],
    );
}

#[test]
fn a_300_byte_component() {
    let h = Hostile::new();
    let long = "x".repeat(300);
    let mut tar = TarBuilder::charm();
    tar.file(&format!("lib/{long}"), 0o644, b"x");
    h.refuse(
        "long.tar",
        &tar.finish(),
        &[&format!(
            "member lib/{long}: a path component is 300 bytes, over NAME_MAX (255)"
        )],
    );
}

#[test]
fn a_gzip_bomb() {
    let h = Hostile::new();
    // A 16 MiB member of zeros as concatenated gzip members (valid gzip): 1 MiB of zeros
    // compresses to about 1 KiB, so the whole bomb is some 20 KiB.
    let mut prefix = TarBuilder::charm().finish();
    prefix.truncate(prefix.len() - 1024);
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..9].copy_from_slice(b"lib/zeros");
    header.set_entry_type(EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(16 << 20);
    header.set_cksum();
    prefix.extend_from_slice(header.as_bytes());
    let mut bomb = gz(&prefix);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&vec![0u8; 1 << 20]).unwrap();
    let mebibyte = enc.finish().unwrap();
    for _ in 0..16 {
        bomb.extend_from_slice(&mebibyte);
    }
    bomb.extend_from_slice(&gz(&[0u8; 1024]));
    assert!(bomb.len() < 64 << 10, "the bomb is small: {}", bomb.len());
    h.refuse(
        "bomb.tar.gz",
        &bomb,
        &["member lib/zeros: data expands more than 200x its compressed size (--max-ratio)"],
    );
}

#[test]
fn a_hundred_thousand_files() {
    let h = Hostile::new();
    let mut tar = TarBuilder::charm();
    for i in 0..100_000 {
        tar.raw(
            format!("f/{i}").as_bytes(),
            EntryType::Regular,
            0o644,
            b"",
            None,
        );
    }
    h.refuse(
        "many.tar",
        &tar.finish(),
        &[
            "member f/",
            "archive has more than 50000 members (--max-members)",
        ],
    );
}

#[test]
fn two_thousand_one_hundred_nested_directories() {
    let h = Hostile::new();
    let mut tar = TarBuilder::charm();
    let mut path = String::new();
    for _ in 0..2_100 {
        path.push_str("d/");
        tar.dir(&path, 0o755);
    }
    let deep = "d/".repeat(65);
    h.refuse(
        "deep.tar",
        &tar.finish(),
        &[&format!(
            "member {deep}: nested 65 levels deep, over the limit of 64 (--max-depth)"
        )],
    );
}

#[test]
fn a_sparse_file_bomb() {
    let h = Hostile::new();
    let tar = TarBuilder::charm();
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..9].copy_from_slice(b"lib/holes");
    header.set_entry_type(EntryType::GNUSparse);
    header.set_mode(0o644);
    header.set_size(0);
    let gnu = header.as_gnu_mut().unwrap();
    gnu.set_real_size(1 << 40);
    gnu.sparse[0].offset = *b"77777777777\0";
    gnu.sparse[0].numbytes = *b"00000000000\0";
    header.set_cksum();
    let mut bytes = tar.finish();
    // Put the sparse member before the end-of-archive blocks.
    let end = bytes.len() - 1024;
    let mut tail = bytes.split_off(end);
    bytes.extend_from_slice(header.as_bytes());
    bytes.append(&mut tail);
    h.refuse(
        "sparse.tar",
        &bytes,
        &["member lib/holes: sparse files are not accepted"],
    );
}

#[test]
fn a_yaml_alias_bomb() {
    let h = Hostile::new();
    let mut yaml = String::from("name: bomb\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        yaml.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let mut tar = TarBuilder::new();
    tar.file("metadata.yaml", 0o644, yaml.as_bytes());
    h.refuse(
        "alias.tar",
        &tar.finish(),
        &["member metadata.yaml: invalid charm file"],
    );
}

#[test]
fn yaml_over_the_size_limit() {
    let h = Hostile::new();
    let mut tar = TarBuilder::charm();
    tar.file("config.yaml", 0o644, &vec![b'#'; 4096]);
    h.refuse_with(
        "big-yaml.tar",
        &tar.finish(),
        &["--max-yaml-bytes", "1K"],
        &["member config.yaml: 4096 bytes, over the YAML size limit of 1024"],
    );
}

#[test]
fn content_over_the_size_limit() {
    let h = Hostile::new();
    let mut tar = TarBuilder::charm();
    tar.file("lib/big", 0o644, &vec![7u8; 100_000]);
    h.refuse_with(
        "big.tar",
        &tar.finish(),
        &["--max-bytes", "64K"],
        &["member lib/big: charm content exceeds 65536 bytes (--max-bytes)"],
    );
}

#[test]
fn truncated_gzip() {
    let h = Hostile::new();
    let mut tar = TarBuilder::charm();
    let noise: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    tar.file("lib/noise", 0o644, &noise);
    let whole = gz(&tar.finish());
    let cut = &whole[..whole.len() * 2 / 3];
    h.refuse(
        "cut.tar.gz",
        cut,
        &["corrupt or truncated archive at member lib/noise"],
    );
}

#[test]
fn truncated_tar() {
    let h = Hostile::new();
    let mut tar = TarBuilder::charm();
    tar.file("lib/data", 0o644, &vec![1u8; 10_000]);
    let whole = tar.finish();
    // Cut inside the data of lib/data.
    let at = whole.len() - 1024 - 5_000;
    h.refuse("cut-data.tar", &whole[..at], &["member lib/data: holds"]);
    // Cut exactly after the last member: no end-of-archive marker.
    h.refuse(
        "cut-end.tar",
        &whole[..whole.len() - 1024],
        &["archive is truncated after member lib/data"],
    );
}

#[test]
fn a_bad_header_checksum() {
    let h = Hostile::new();
    let mut bytes = TarBuilder::charm().finish();
    // The second member's header starts after metadata.yaml's header and one data block.
    let header = 1024;
    assert_eq!(&bytes[header..header + 13], b"hooks/install");
    bytes[header + 148..header + 154].copy_from_slice(b"000001");
    h.refuse(
        "checksum.tar",
        &bytes,
        &["corrupt or truncated archive at member hooks/install"],
    );
}

#[test]
fn trailing_garbage() {
    let h = Hostile::new();
    let mut bytes = TarBuilder::charm().finish();
    bytes.extend_from_slice(b"#!/bin/sh\nrm -rf /\n");
    h.refuse(
        "garbage.tar",
        &bytes,
        &["trailing garbage after the end of the archive (after member hooks/install"],
    );
    let mut bytes = gz(&TarBuilder::charm().finish());
    bytes.extend_from_slice(b"garbage after the gzip stream");
    h.refuse(
        "garbage.tgz",
        &bytes,
        &["trailing garbage after the end of the archive"],
    );
}

#[test]
fn an_empty_file_and_an_empty_tar() {
    let h = Hostile::new();
    h.refuse(
        "empty.tar",
        b"",
        &["empty.tar is an empty file, not a charm archive"],
    );
    h.refuse(
        "nothing.tar",
        &TarBuilder::new().finish(),
        &["nothing.tar: archive has no members"],
    );
    h.refuse(
        "empty.charm",
        &zip(&[]),
        &["empty.charm: archive has no members"],
    );
}

#[test]
fn no_metadata_yaml() {
    let h = Hostile::new();
    let mut tar = TarBuilder::new();
    tar.file("hooks/install", 0o755, b"#!/bin/sh\n");
    h.refuse(
        "nometa.tar",
        &tar.finish(),
        &["no metadata.yaml (or charmcraft.yaml) at the charm root"],
    );
    // Two levels down is not a wrapper: refused, with a hint.
    let mut tar = TarBuilder::new();
    tar.file("a/b/metadata.yaml", 0o644, b"name: deep\n");
    h.refuse(
        "buried.tar",
        &tar.finish(),
        &["found a/b/metadata.yaml: point hookbox at that directory"],
    );
}

#[test]
fn not_an_archive_and_gzip_of_not_a_tar() {
    let h = Hostile::new();
    h.refuse(
        "notes.tar.gz",
        b"just some text\n",
        &["is not a charm directory, tar, tar.gz or zip"],
    );
    h.refuse(
        "yaml.tar.gz",
        &gz(b"name: x\n"),
        &["yaml.tar.gz is gzip-compressed but does not contain a tar archive"],
    );
    h.refuse(
        "x.tar.xz",
        b"\xfd7zXZ\0rest",
        &["x.tar.xz is xz-compressed"],
    );
}

#[test]
fn zip_with_hostile_members() {
    let h = Hostile::new();
    let evil = format!("{}/evil", h.up_to_canary());
    let base: [(&str, u32, &[u8]); 1] = [("metadata.yaml", 0o100644, b"name: z\n")];
    let with = |extra: (&str, u32, &[u8])| {
        let mut entries = base.to_vec();
        entries.push(extra);
        zip(&entries)
    };
    h.refuse(
        "dotdot.charm",
        &with((&evil, 0o100644, b"x")),
        &[&format!("member {evil}: `..`")],
    );
    h.refuse(
        "link.charm",
        &with(("out", 0o120777, b"/etc")),
        &["member out: symlink to an absolute path (/etc)"],
    );
    let mut fifo = with(("p", 0o100644, b""));
    set_zip_mode(&mut fifo, b"p", 0o010644);
    h.refuse("fifo.charm", &fifo, &["member p: fifo"]);
    // Two entries with the same name: the writer refuses, so rename one in the bytes.
    let mut bytes = zip(&[
        ("metadata.yaml", 0o100644, b"name: z\n"),
        ("metadatb.yaml", 0o100644, b"name: evil\n"),
    ]);
    let mut i = 0;
    while let Some(at) = bytes[i..].windows(13).position(|w| w == b"metadatb.yaml") {
        bytes[i + at + 7] = b'a';
        i += at + 13;
    }
    h.refuse(
        "dup.charm",
        &bytes,
        &["lists 2 entries but only 1 distinct names"],
    );
}

/// Sets the unix mode of the central-directory entry `name` (the zip writer only takes
/// permission bits).
fn set_zip_mode(bytes: &mut [u8], name: &[u8], mode: u32) {
    let mut at = 0;
    while let Some(found) = bytes[at..].windows(4).position(|w| w == b"PK\x01\x02") {
        let header = at + found;
        let name_len = u16::from_le_bytes([bytes[header + 28], bytes[header + 29]]) as usize;
        if &bytes[header + 46..header + 46 + name_len] == name {
            bytes[header + 5] = 3; // made by: unix
            bytes[header + 38..header + 42].copy_from_slice(&(mode << 16).to_le_bytes());
            return;
        }
        at = header + 4;
    }
    panic!("no central directory entry for {name:?}");
}
