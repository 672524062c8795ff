//! The member sink every source (tar, zip, directory) feeds: it checks each member name and
//! type against the rules, keeps the in-memory listing the digest and the checks use, and —
//! when it has a staging tree — writes the member there.
//!
//! Writes are safe by construction: every parent directory is opened with `openat2(2)` and
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` from the staging tree's fd, and every entry is
//! created with `O_CREAT | O_EXCL | O_NOFOLLOW`, `mkdirat`, `symlinkat` or `linkat` relative
//! to that parent fd. No host path is ever joined and opened, so no symlink a charm ships can
//! redirect a write (CVE-2007-4131, CVE-2018-20482 class of tar bugs).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use rustix::fs::{AtFlags, Mode, OFlags};
use sha2::{Digest, Sha256};

use super::error::{IngestError, show};
use super::limits::Limits;
use crate::store::digest::{EntryKind, TreeEntry};
use crate::store::fsops;
use crate::store::merge::{LISTING_CACHE_FILE, Listing};

/// NAME_MAX on Linux.
pub const NAME_MAX: usize = 255;

/// Symlink hops allowed when resolving a target (Linux's MAXSYMLINKS).
const MAX_SYMLINK_HOPS: usize = 40;

/// Files whose content the checks need, captured while they stream past.
const CAPTURED_NAMES: [&[u8]; 5] = [
    b"metadata.yaml",
    b"charmcraft.yaml",
    b"config.yaml",
    b"actions.yaml",
    b"revision",
];

/// Bytes of each hook kept for the shebang check.
const HEAD_BYTES: usize = 4;

/// Read/write buffer size: large enough that a syscall moves a lot of data.
const BUFFER_BYTES: usize = 1 << 20;

/// One path of the charm as the sink recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A directory; `explicit` when the archive had a member for it (not only children).
    Dir {
        /// Whether a member named it.
        explicit: bool,
    },
    /// A regular file.
    File {
        /// sha256 of its content.
        sha256: [u8; 32],
        /// Its size.
        size: u64,
        /// Its stored permission bits ([`file_mode`]).
        mode: u32,
    },
    /// A symlink, kept as a symlink.
    Symlink {
        /// Its target bytes.
        target: Vec<u8>,
    },
}

impl Node {
    fn describe(&self) -> &'static str {
        match self {
            Node::Dir { .. } => "a directory",
            Node::File { .. } => "a file",
            Node::Symlink { .. } => "a symlink",
        }
    }
}

/// The stored mode of a member: the tree is read-only, so directories are 0555, files keep
/// their read and execute bits as shipped with every write bit removed (a 0600 file is
/// stored 0400, never world-readable), symlinks 0777. setuid, setgid and sticky are gone.
/// The digest covers this mode, so two archives that differ only in r/x bits are two charms.
pub fn stored_mode(node: &Node) -> u32 {
    match node {
        Node::Dir { .. } => 0o555,
        Node::File { mode, .. } => *mode,
        Node::Symlink { .. } => 0o777,
    }
}

/// The stored mode of a regular file member whose archive mode is `mode`.
pub fn file_mode(mode: u32) -> u32 {
    mode & 0o555
}

/// Content captured from small files the checks read (YAML, `revision`) and hook heads.
#[derive(Debug, Default)]
pub struct Captured {
    /// Whole content of captured files no larger than the YAML limit, by path.
    pub content: HashMap<Vec<u8>, Vec<u8>>,
    /// The first bytes of every file under `hooks/` and of `dispatch`, by path.
    pub heads: HashMap<Vec<u8>, Vec<u8>>,
}

/// What a finished sink holds.
#[derive(Debug)]
pub struct Extracted {
    /// Every path, relative to the charm root.
    pub nodes: HashMap<Vec<u8>, Node>,
    /// Captured content, keyed like `nodes`.
    pub captured: Captured,
    /// The wrapper directory that was stripped, if the charm came inside one.
    pub stripped: Option<String>,
    /// Members seen (including the root `.` entry, if any).
    pub members: u64,
    /// Bytes of regular-file content.
    pub bytes: u64,
}

impl Extracted {
    /// The canonical listing for [`crate::store::digest::digest_entries`].
    pub fn entries(&self) -> Vec<TreeEntry> {
        entries_of(&self.nodes)
    }

    /// Regular files in the charm.
    pub fn file_count(&self) -> u64 {
        self.nodes
            .values()
            .filter(|n| matches!(n, Node::File { .. }))
            .count() as u64
    }
}

/// The canonical listing of the charm's nodes.
fn entries_of(nodes: &HashMap<Vec<u8>, Node>) -> Vec<TreeEntry> {
    nodes
        .iter()
        .map(|(path, node)| TreeEntry {
            path: path.clone(),
            mode: stored_mode(node),
            kind: match node {
                Node::Dir { .. } => EntryKind::Dir,
                Node::File { sha256, size, .. } => EntryKind::File {
                    sha256: *sha256,
                    size: *size,
                },
                Node::Symlink { target } => EntryKind::Symlink {
                    target: target.clone(),
                },
            },
        })
        .collect()
}

/// The staging tree the sink writes into.
#[derive(Debug)]
pub struct Writer {
    /// The staging entry directory (parent of `tree`).
    entry: OwnedFd,
    /// `tree/`, the charm root.
    tree: Arc<OwnedFd>,
    /// Open parent directories by charm path (bounded; cleared when full).
    dirs: HashMap<Vec<u8>, Arc<OwnedFd>>,
    /// Threads creating small files (file creation is the kernel's slow part).
    pool: Option<Pool>,
}

/// Files no larger than this are handed to the writer threads whole.
const POOLED_FILE_BYTES: u64 = 1 << 20;

/// One small file for a writer thread to create.
struct Job {
    dir: Arc<OwnedFd>,
    name: Vec<u8>,
    member: Vec<u8>,
    mode: u32,
    data: Vec<u8>,
}

/// Writer threads, fed round-robin over bounded channels; the first failure is kept.
#[derive(Debug)]
struct Pool {
    senders: Vec<SyncSender<Job>>,
    handles: Vec<JoinHandle<()>>,
    next: usize,
    failure: Arc<Mutex<Option<IngestError>>>,
}

impl Pool {
    fn spawn() -> Self {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4));
        let failure = Arc::new(Mutex::new(None));
        let mut senders = Vec::new();
        let mut handles = Vec::new();
        for _ in 0..workers {
            let (sender, receiver) = mpsc::sync_channel::<Job>(16);
            let failure = failure.clone();
            handles.push(std::thread::spawn(move || {
                for job in receiver {
                    if let Err(err) = create_file(job.dir.as_fd(), &job.name, job.mode, &job.data)
                        .map_err(stage("create file", &job.member))
                    {
                        failure
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .get_or_insert(err);
                    }
                }
            }));
            senders.push(sender);
        }
        Self {
            senders,
            handles,
            next: 0,
            failure,
        }
    }

    fn failed(&self) -> bool {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Waits for every queued file; the first failure, if any.
    fn join(self) -> Result<(), IngestError> {
        drop(self.senders);
        for handle in self.handles {
            let _ = handle.join();
        }
        match self
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

/// Creates `name` in `dir` (never following or replacing anything) and writes `data`.
fn create_file(dir: BorrowedFd<'_>, name: &[u8], mode: u32, data: &[u8]) -> io::Result<()> {
    File::from(create_with_mode(dir, name, mode)?).write_all(data)
}

/// Creates `name` in `dir` like [`fsops::create_exclusive`], with exactly `mode` whatever
/// the umask (the digest records the mode).
fn create_with_mode(dir: BorrowedFd<'_>, name: &[u8], mode: u32) -> io::Result<OwnedFd> {
    let fd = fsops::create_exclusive(dir, name, mode)?;
    // One syscall less per member when the umask cannot have stripped any of its bits.
    if process_umask().is_none_or(|umask| mode & umask != 0) {
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
    }
    Ok(fd)
}

/// The process umask, read once from /proc/self/status (reading it with umask(2) would
/// briefly change it under the writer threads); `None` when it cannot be read.
fn process_umask() -> Option<u32> {
    static UMASK: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    *UMASK.get_or_init(|| {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("Umask:"))?;
        u32::from_str_radix(line.trim_start_matches("Umask:").trim(), 8).ok()
    })
}

impl Writer {
    /// Writes below `tree`, a directory inside `entry`, named `tree`.
    pub fn new(entry: OwnedFd, tree: OwnedFd) -> Self {
        Self {
            entry,
            tree: Arc::new(tree),
            dirs: HashMap::new(),
            pool: None,
        }
    }

    fn parent(&mut self, parent: &[u8]) -> io::Result<Arc<OwnedFd>> {
        if parent.is_empty() {
            return Ok(self.tree.clone());
        }
        if let Some(fd) = self.dirs.get(parent) {
            return Ok(fd.clone());
        }
        if self.dirs.len() >= 256 {
            self.dirs.clear();
        }
        let fd = Arc::new(open_beneath(self.tree.as_fd(), parent, OFlags::DIRECTORY)?);
        self.dirs.insert(parent.to_vec(), fd.clone());
        Ok(fd)
    }

    fn submit(&mut self, job: Job) -> Result<(), IngestError> {
        let pool = self.pool.get_or_insert_with(Pool::spawn);
        if pool.failed() {
            return self.drain();
        }
        let index = pool.next % pool.senders.len();
        pool.next += 1;
        if pool.senders[index].send(job).is_err() {
            return self.drain();
        }
        Ok(())
    }

    /// Waits until every file handed to the writer threads exists.
    fn drain(&mut self) -> Result<(), IngestError> {
        match self.pool.take() {
            Some(pool) => pool.join(),
            None => Ok(()),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // No thread may still be creating files when the staging directory is removed.
        let _ = self.drain();
    }
}

/// Opens `path` below `dir` without following any symlink and without leaving `dir`.
pub fn open_beneath(dir: BorrowedFd<'_>, path: &[u8], extra: OFlags) -> io::Result<OwnedFd> {
    fsops::open_beneath(dir, path, OFlags::RDONLY | extra).map_err(io::Error::from)
}

/// Checks and records members; writes them when it has a [`Writer`].
pub struct Sink<'a> {
    limits: &'a Limits,
    writer: Option<Writer>,
    nodes: HashMap<Vec<u8>, Node>,
    captured: Captured,
    members: u64,
    bytes: u64,
    buf: Vec<u8>,
}

/// Maps a read error of a member's data to the source's own error (it knows the archive
/// and the offset).
pub type ReadErrorMap<'m> = &'m mut dyn FnMut(io::Error, &str) -> IngestError;

impl<'a> Sink<'a> {
    /// A sink that only checks and hashes (for `verify`), or also writes (for `ingest`).
    pub fn new(limits: &'a Limits, writer: Option<Writer>) -> Self {
        Self {
            limits,
            writer,
            nodes: HashMap::new(),
            captured: Captured::default(),
            members: 0,
            bytes: 0,
            buf: Vec::new(),
        }
    }

    /// Members seen so far.
    pub fn members(&self) -> u64 {
        self.members
    }

    /// Counts a member and checks its name; `None` for the charm root itself (`./`).
    pub fn begin(&mut self, raw: &[u8]) -> Result<Option<Vec<u8>>, IngestError> {
        self.members += 1;
        if self.members > self.limits.max_members {
            return Err(IngestError::TooManyMembers {
                member: show(raw),
                limit: self.limits.max_members,
            });
        }
        normalize(raw, self.limits)
    }

    /// A directory member.
    pub fn add_dir(&mut self, path: &[u8]) -> Result<(), IngestError> {
        self.make_parents(path)?;
        match self.nodes.get_mut(path) {
            Some(Node::Dir { explicit }) if !*explicit => {
                *explicit = true;
                return Ok(());
            }
            Some(other) => {
                return Err(IngestError::Duplicate {
                    member: show(path),
                    earlier: other.describe(),
                });
            }
            None => {}
        }
        self.make_dir(path)?;
        self.nodes
            .insert(path.to_vec(), Node::Dir { explicit: true });
        Ok(())
    }

    /// A regular-file member of `declared` bytes, read from `reader`.
    pub fn add_file(
        &mut self,
        path: &[u8],
        mode: u32,
        declared: u64,
        reader: &mut dyn Read,
        on_error: ReadErrorMap<'_>,
    ) -> Result<(), IngestError> {
        self.make_parents(path)?;
        self.check_new(path)?;
        if self.bytes.saturating_add(declared) > self.limits.max_bytes {
            return Err(IngestError::TooLarge {
                member: show(path),
                limit: self.limits.max_bytes,
            });
        }
        let node_mode = file_mode(mode);
        let (parent, name) = split(path);
        let pooled = self.writer.is_some() && declared <= POOLED_FILE_BYTES;
        let mut out = match &mut self.writer {
            Some(w) if !pooled => {
                let dir = w.parent(parent).map_err(stage("open directory", parent))?;
                let fd = create_with_mode(dir.as_fd(), name, node_mode)
                    .map_err(stage("create file", path))?;
                Some(File::from(fd))
            }
            _ => None,
        };
        let mut data = Vec::with_capacity(if pooled { declared as usize } else { 0 });
        let capture = wants_content(path) && declared <= self.limits.max_yaml_bytes;
        let head = wants_head(path);
        let mut content = Vec::new();
        let mut head_bytes = Vec::new();
        if self.buf.is_empty() {
            self.buf = vec![0u8; BUFFER_BYTES];
        }
        let mut hasher = Sha256::new();
        let mut actual = 0u64;
        let mut limited = reader.take(declared.saturating_add(1));
        loop {
            let n = match limited.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(on_error(e, &show(path))),
            };
            let chunk = &self.buf[..n];
            hasher.update(chunk);
            if let Some(file) = &mut out {
                file.write_all(chunk).map_err(stage("write file", path))?;
            } else if pooled {
                data.extend_from_slice(chunk);
            }
            if capture {
                content.extend_from_slice(chunk);
            }
            if head && head_bytes.len() < HEAD_BYTES {
                let take = (HEAD_BYTES - head_bytes.len()).min(n);
                head_bytes.extend_from_slice(&chunk[..take]);
            }
            actual += n as u64;
        }
        if actual != declared {
            return Err(IngestError::SizeMismatch {
                member: show(path),
                declared,
                actual,
            });
        }
        self.bytes += actual;
        if let (true, Some(w)) = (pooled, &mut self.writer) {
            let dir = w.parent(parent).map_err(stage("open directory", parent))?;
            w.submit(Job {
                dir,
                name: name.to_vec(),
                member: path.to_vec(),
                mode: node_mode,
                data,
            })?;
        }
        if capture {
            self.captured.content.insert(path.to_vec(), content);
        }
        if head {
            self.captured.heads.insert(path.to_vec(), head_bytes);
        }
        self.nodes.insert(
            path.to_vec(),
            Node::File {
                sha256: hasher.finalize().into(),
                size: actual,
                mode: node_mode,
            },
        );
        Ok(())
    }

    /// A symlink member; its target is checked lexically now and resolved at the end.
    pub fn add_symlink(&mut self, path: &[u8], target: &[u8]) -> Result<(), IngestError> {
        if target.is_empty() || target.contains(&0) {
            return Err(IngestError::InvalidName {
                member: show(path),
                reason: "empty symlink target",
            });
        }
        if target.starts_with(b"/") {
            return Err(IngestError::SymlinkAbsolute {
                member: show(path),
                target: show(target),
            });
        }
        if target.len() > self.limits.max_path_bytes {
            return Err(IngestError::PathTooLong {
                member: show(path),
                length: target.len(),
                limit: self.limits.max_path_bytes,
            });
        }
        self.make_parents(path)?;
        self.check_new(path)?;
        if let Some(w) = &mut self.writer {
            let (parent, name) = split(path);
            let dir = w.parent(parent).map_err(stage("open directory", parent))?;
            rustix::fs::symlinkat(target, dir, name)
                .map_err(|e| stage("create symlink", path)(e.into()))?;
        }
        self.nodes.insert(
            path.to_vec(),
            Node::Symlink {
                target: target.to_vec(),
            },
        );
        Ok(())
    }

    /// A hardlink member: `target` must be an earlier regular-file member, reached without
    /// going through a symlink.
    pub fn add_hardlink(&mut self, path: &[u8], raw_target: &[u8]) -> Result<(), IngestError> {
        let outside = || IngestError::HardlinkOutside {
            member: show(path),
            target: show(raw_target),
        };
        let target = match normalize(raw_target, self.limits) {
            Ok(Some(t)) => t,
            Ok(None) => {
                return Err(IngestError::HardlinkNotFile {
                    member: show(path),
                    target: show(raw_target),
                });
            }
            Err(IngestError::AbsolutePath { .. } | IngestError::ParentComponent { .. }) => {
                return Err(outside());
            }
            Err(e) => return Err(e),
        };
        for prefix in prefixes(&target) {
            if let Some(Node::Symlink { .. }) = self.nodes.get(prefix) {
                return Err(IngestError::HardlinkThroughSymlink {
                    member: show(path),
                    target: show(raw_target),
                    symlink: show(prefix),
                });
            }
        }
        let node = match self.nodes.get(&target) {
            Some(node @ Node::File { .. }) => node.clone(),
            Some(_) => {
                return Err(IngestError::HardlinkNotFile {
                    member: show(path),
                    target: show(raw_target),
                });
            }
            None => {
                return Err(IngestError::HardlinkMissing {
                    member: show(path),
                    target: show(raw_target),
                });
            }
        };
        self.make_parents(path)?;
        self.check_new(path)?;
        if let Some(w) = &mut self.writer {
            // The target may still be queued on a writer thread.
            w.drain()?;
            let (from_parent, from_name) = split(&target);
            let (to_parent, to_name) = split(path);
            let from = open_beneath(w.tree.as_fd(), dot_if_empty(from_parent), OFlags::DIRECTORY)
                .map_err(stage("open directory", from_parent))?;
            let to = w
                .parent(to_parent)
                .map_err(stage("open directory", to_parent))?;
            // No AT_SYMLINK_FOLLOW: the link is made to `from_name` itself, a regular file
            // by the listing above.
            rustix::fs::linkat(&from, from_name, to, to_name, AtFlags::empty())
                .map_err(|e| stage("create hardlink", path)(e.into()))?;
        }
        if let (Some(content), true) = (self.captured.content.get(&target), wants_content(path)) {
            let content = content.clone();
            self.captured.content.insert(path.to_vec(), content);
        }
        if let (Some(head), true) = (self.captured.heads.get(&target), wants_head(path)) {
            let head = head.clone();
            self.captured.heads.insert(path.to_vec(), head);
        }
        self.nodes.insert(path.to_vec(), node);
        Ok(())
    }

    /// Finishes: strips a single wrapper directory, resolves every symlink.
    pub fn finish(mut self) -> Result<(Extracted, Option<Writer>), IngestError> {
        if let Some(w) = &mut self.writer {
            w.drain()?;
        }
        let stripped = self.strip_wrapper()?;
        check_symlinks(&self.nodes)?;
        Ok((
            Extracted {
                nodes: self.nodes,
                captured: self.captured,
                stripped,
                members: self.members,
                bytes: self.bytes,
            },
            self.writer,
        ))
    }

    /// A charm packed as `name/metadata.yaml` (what `tar czf x.tgz name/` and GitHub's
    /// archive download produce) is stored as its inner directory, so it gets the digest
    /// of the charm itself.
    fn strip_wrapper(&mut self) -> Result<Option<String>, IngestError> {
        let has_metadata = |nodes: &HashMap<Vec<u8>, Node>, dir: &[u8]| -> bool {
            [b"metadata.yaml".as_slice(), b"charmcraft.yaml"]
                .iter()
                .any(|name| nodes.contains_key(&join(dir, name)))
        };
        if has_metadata(&self.nodes, b"") {
            return Ok(None);
        }
        let mut top = self.nodes.keys().filter(|p| !p.contains(&b'/'));
        let (Some(wrapper), None) = (top.next().cloned(), top.next()) else {
            return Ok(None);
        };
        if !matches!(self.nodes.get(&wrapper), Some(Node::Dir { .. }))
            || !has_metadata(&self.nodes, &wrapper)
        {
            return Ok(None);
        }
        let prefix_len = wrapper.len() + 1;
        self.nodes = std::mem::take(&mut self.nodes)
            .into_iter()
            .filter(|(p, _)| p.len() > wrapper.len())
            .map(|(p, n)| (p[prefix_len..].to_vec(), n))
            .collect();
        let strip = |map: &mut HashMap<Vec<u8>, Vec<u8>>| {
            *map = std::mem::take(map)
                .into_iter()
                .filter(|(p, _)| p.len() > prefix_len && p.starts_with(&wrapper))
                .map(|(p, v)| (p[prefix_len..].to_vec(), v))
                .collect();
        };
        strip(&mut self.captured.content);
        strip(&mut self.captured.heads);
        if let Some(w) = &mut self.writer {
            let err = |action| stage(action, &wrapper);
            w.dirs.clear();
            rustix::fs::renameat(&w.tree, wrapper.as_slice(), &w.entry, "tree.inner")
                .map_err(|e| err("move wrapper directory")(e.into()))?;
            rustix::fs::unlinkat(&w.entry, "tree", AtFlags::REMOVEDIR)
                .map_err(|e| err("remove wrapper directory")(e.into()))?;
            rustix::fs::renameat(&w.entry, "tree.inner", &w.entry, "tree")
                .map_err(|e| err("move wrapper directory")(e.into()))?;
            w.tree = Arc::new(
                open_beneath(w.entry.as_fd(), b"tree", OFlags::DIRECTORY)
                    .map_err(err("open tree"))?,
            );
        }
        Ok(Some(show(&wrapper)))
    }

    fn make_parents(&mut self, path: &[u8]) -> Result<(), IngestError> {
        for prefix in prefixes(path) {
            match self.nodes.get(prefix) {
                Some(Node::Dir { .. }) => continue,
                Some(Node::Symlink { .. }) => {
                    return Err(IngestError::ThroughSymlink {
                        member: show(path),
                        symlink: show(prefix),
                    });
                }
                Some(Node::File { .. }) => {
                    return Err(IngestError::ParentNotDirectory {
                        member: show(path),
                        parent: show(prefix),
                    });
                }
                None => {
                    self.make_dir(prefix)?;
                    self.nodes
                        .insert(prefix.to_vec(), Node::Dir { explicit: false });
                }
            }
        }
        Ok(())
    }

    fn make_dir(&mut self, path: &[u8]) -> Result<(), IngestError> {
        if let Some(w) = &mut self.writer {
            let (parent, name) = split(path);
            let dir = w.parent(parent).map_err(stage("open directory", parent))?;
            rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700))
                .map_err(|e| stage("create directory", path)(e.into()))?;
        }
        Ok(())
    }

    fn check_new(&self, path: &[u8]) -> Result<(), IngestError> {
        match self.nodes.get(path) {
            Some(earlier) => Err(IngestError::Duplicate {
                member: show(path),
                earlier: earlier.describe(),
            }),
            None => Ok(()),
        }
    }
}

impl Writer {
    /// Makes every directory of the tree read-only (0555), children first is not needed:
    /// changing a directory's mode needs ownership, not write access to its parent.
    pub fn seal(&mut self, nodes: &HashMap<Vec<u8>, Node>) -> Result<(), IngestError> {
        self.drain()?;
        self.dirs.clear();
        for (path, node) in nodes {
            if let Node::Dir { .. } = node {
                let fd = open_beneath(self.tree.as_fd(), path, OFlags::DIRECTORY)
                    .map_err(stage("open directory", path))?;
                rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o555))
                    .map_err(|e| stage("make read-only", path)(e.into()))?;
            }
        }
        rustix::fs::fchmod(&self.tree, Mode::from_raw_mode(0o555))
            .map_err(|e| stage("make read-only", b"")(e.into()))?;
        self.save_listing(nodes)
    }

    /// Writes the charm's listing beside `tree/` as [`LISTING_CACHE_FILE`] (read-only), so
    /// an upgrade loads it ([`Listing::load`] checks it against the digest) instead of
    /// hashing the charm base again. It is written before the staging directory is renamed
    /// into the store, and made durable by the same `syncfs`: every store entry has one.
    fn save_listing(&self, nodes: &HashMap<Vec<u8>, Node>) -> Result<(), IngestError> {
        let name = LISTING_CACHE_FILE.as_bytes();
        let listing =
            Listing::new(entries_of(nodes)).map_err(|e| stage("list", b"")(io::Error::other(e)))?;
        let fd = fsops::create_exclusive(&self.entry, name, 0o444)
            .map_err(|e| stage("create", name)(e.into()))?;
        File::from(fd)
            .write_all(&listing.encode())
            .map_err(stage("write", name))
    }
}

/// Checks a raw member name and returns its normal form: no leading `./`, no empty or `.`
/// components, no trailing `/`. `None` is the charm root itself.
pub fn normalize(raw: &[u8], limits: &Limits) -> Result<Option<Vec<u8>>, IngestError> {
    let member = || show(raw);
    if raw.is_empty() {
        return Err(IngestError::InvalidName {
            member: member(),
            reason: "empty name",
        });
    }
    if raw.starts_with(b"/") {
        return Err(IngestError::AbsolutePath { member: member() });
    }
    if std::str::from_utf8(raw).is_err() {
        return Err(IngestError::InvalidName {
            member: member(),
            reason: "not UTF-8",
        });
    }
    if raw.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(IngestError::InvalidName {
            member: member(),
            reason: "control character",
        });
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut depth = 0usize;
    for component in raw.split(|&b| b == b'/') {
        match component {
            b"" | b"." => continue,
            b".." => return Err(IngestError::ParentComponent { member: member() }),
            name if name.len() > NAME_MAX => {
                return Err(IngestError::NameTooLong {
                    member: member(),
                    length: name.len(),
                    limit: NAME_MAX,
                });
            }
            name => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(name);
                depth += 1;
            }
        }
    }
    if depth > limits.max_depth {
        return Err(IngestError::TooDeep {
            member: member(),
            depth,
            limit: limits.max_depth,
        });
    }
    if out.len() > limits.max_path_bytes {
        return Err(IngestError::PathTooLong {
            member: member(),
            length: out.len(),
            limit: limits.max_path_bytes,
        });
    }
    Ok((!out.is_empty()).then_some(out))
}

/// Every symlink must resolve inside the charm, following the charm's own symlinks the way
/// the kernel would (a lexical check alone misses `a -> sub/up/..` with `sub/up -> ..`).
/// Targets that do not exist are fine as long as they stay inside (dangling is allowed).
fn check_symlinks(nodes: &HashMap<Vec<u8>, Node>) -> Result<(), IngestError> {
    for (path, node) in nodes {
        let Node::Symlink { target } = node else {
            continue;
        };
        let escapes = || IngestError::SymlinkEscapes {
            member: show(path),
            target: show(target),
        };
        let mut stack: Vec<&[u8]> = split(path)
            .0
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        let mut pending: Vec<&[u8]> = target.rsplit(|&b| b == b'/').collect();
        let mut hops = 0usize;
        while let Some(component) = pending.pop() {
            match component {
                b"" | b"." => {}
                b".." => {
                    if stack.pop().is_none() {
                        return Err(escapes());
                    }
                }
                name => {
                    stack.push(name);
                    if let Some(Node::Symlink { target: next }) = nodes.get(&stack.join(&b'/')) {
                        hops += 1;
                        if hops > MAX_SYMLINK_HOPS {
                            return Err(IngestError::SymlinkLoop {
                                member: show(path),
                                target: show(target),
                            });
                        }
                        if next.starts_with(b"/") {
                            return Err(escapes());
                        }
                        stack.pop();
                        pending.extend(next.rsplit(|&b| b == b'/'));
                    }
                }
            }
        }
    }
    Ok(())
}

/// `a`, `a/b` for `a/b/c`: the parent directories of a path, outermost first.
fn prefixes(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.iter()
        .enumerate()
        .filter(|(_, b)| **b == b'/')
        .map(move |(i, _)| &path[..i])
}

/// (parent, name) of a normal path; the parent of a top-level name is empty.
pub fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (b"", path),
    }
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        name.to_vec()
    } else {
        [dir, b"/", name].concat()
    }
}

fn dot_if_empty(path: &[u8]) -> &[u8] {
    if path.is_empty() { b"." } else { path }
}

/// Files whose content the checks read: the charm YAML and `revision`, at the root or one
/// level down (a wrapper directory is stripped later).
fn wants_content(path: &[u8]) -> bool {
    let (parent, name) = split(path);
    !parent.contains(&b'/') && CAPTURED_NAMES.contains(&name)
}

/// Hooks and `dispatch`, at the root or one level down.
fn wants_head(path: &[u8]) -> bool {
    let (parent, name) = split(path);
    let (grand, dir) = split(parent);
    (name == b"dispatch" && !parent.contains(&b'/')) || (dir == b"hooks" && !grand.contains(&b'/'))
}

fn stage(action: &'static str, path: &[u8]) -> impl FnOnce(io::Error) -> IngestError {
    let member = if path.is_empty() {
        ".".to_owned()
    } else {
        show(path)
    };
    move |source| IngestError::Stage {
        action,
        member,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(raw: &[u8]) -> Result<Option<Vec<u8>>, IngestError> {
        normalize(raw, &Limits::default())
    }

    #[test]
    fn names_are_normalized_or_refused() {
        assert_eq!(norm(b"./a//b/").unwrap(), Some(b"a/b".to_vec()));
        assert_eq!(norm(b"./").unwrap(), None);
        assert!(matches!(
            norm(b"/etc"),
            Err(IngestError::AbsolutePath { .. })
        ));
        assert!(matches!(
            norm(b"a/../../b"),
            Err(IngestError::ParentComponent { .. })
        ));
        assert!(matches!(
            norm(b"a\x01"),
            Err(IngestError::InvalidName { .. })
        ));
        assert!(matches!(
            norm(b"a\xff"),
            Err(IngestError::InvalidName { .. })
        ));
        assert!(matches!(
            norm(&[b'x'; 300]),
            Err(IngestError::NameTooLong { .. })
        ));
    }

    fn links(pairs: &[(&str, &str)]) -> HashMap<Vec<u8>, Node> {
        let mut nodes = HashMap::new();
        for (path, target) in pairs {
            nodes.insert(
                path.as_bytes().to_vec(),
                Node::Symlink {
                    target: target.as_bytes().to_vec(),
                },
            );
        }
        nodes.insert(b"sub".to_vec(), Node::Dir { explicit: true });
        nodes
    }

    #[test]
    fn symlink_resolution_follows_the_charms_own_links() {
        assert!(check_symlinks(&links(&[("sub/up", ".."), ("a", "sub/x/../b")])).is_ok());
        assert!(check_symlinks(&links(&[("dangling", "sub/nothing/here")])).is_ok());
        assert!(matches!(
            check_symlinks(&links(&[("sub/l", "../../x")])),
            Err(IngestError::SymlinkEscapes { .. })
        ));
        assert!(matches!(
            check_symlinks(&links(&[("sub/up", ".."), ("a", "sub/up/..")])),
            Err(IngestError::SymlinkEscapes { .. })
        ));
        assert!(matches!(
            check_symlinks(&links(&[("l1", "l2"), ("l2", "l1/x")])),
            Err(IngestError::SymlinkLoop { .. })
        ));
    }
}
