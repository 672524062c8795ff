//! A charm base's listing cached beside it, so an upgrade never hashes a charm base again.
//!
//! Ingest writes `charms/sha256-<hex>/listing.bin` ([`LISTING_CACHE_FILE`], [`Listing::encode`])
//! from the same listing it computed the digest from, before the staging directory is renamed
//! into the store, so every entry has one. An upgrade reads it with [`Listing::load`] (or
//! `CharmStore::listing`), which checks the cached listing hashes to the charm's digest (the
//! listing *is* the digest's input, so a stale or corrupt cache cannot pass);
//! `CharmStore::listing` falls back to [`Listing::read_tree`] when the file is missing or
//! rejected.
//!
//! The format is binary and length-prefixed: `HBLIST1\n`, the entry count (u64 BE), then per
//! entry the path (u32 BE length + bytes), the mode (u32 BE) and a tag: `f` + sha256 + size
//! (u64 BE), `d`, `l` + target (u32 BE length + bytes), `s` + file type (u32 BE) + rdev
//! (u64 BE).

use std::path::Path;

use crate::store::atomic::write_file;
use crate::store::digest::{CharmDigest, EntryKind, TreeEntry};

use super::MergeError;
use super::tree::Listing;

/// The cache file's name inside a charm's store directory.
pub const LISTING_CACHE_FILE: &str = "listing.bin";

const MAGIC: &[u8] = b"HBLIST1\n";

impl Listing {
    /// Encodes the listing in the cache format.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.len() * 80);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.len() as u64).to_be_bytes());
        for e in self.entries() {
            out.extend_from_slice(&(e.path.len() as u32).to_be_bytes());
            out.extend_from_slice(&e.path);
            out.extend_from_slice(&e.mode.to_be_bytes());
            match &e.kind {
                EntryKind::File { sha256, size } => {
                    out.push(b'f');
                    out.extend_from_slice(sha256);
                    out.extend_from_slice(&size.to_be_bytes());
                }
                EntryKind::Dir => out.push(b'd'),
                EntryKind::Symlink { target } => {
                    out.push(b'l');
                    out.extend_from_slice(&(target.len() as u32).to_be_bytes());
                    out.extend_from_slice(target);
                }
                EntryKind::Special { file_type, rdev } => {
                    out.push(b's');
                    out.extend_from_slice(&file_type.to_be_bytes());
                    out.extend_from_slice(&rdev.to_be_bytes());
                }
            }
        }
        out
    }

    /// Decodes a cached listing; `None` when the bytes are not one.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader(bytes);
        if r.take(MAGIC.len())? != MAGIC {
            return None;
        }
        let count = r.u64()?;
        // Every entry takes at least 9 bytes: a lying count cannot reserve gigabytes.
        let mut entries = Vec::with_capacity(usize::try_from(count).ok()?.min(bytes.len() / 9));
        for _ in 0..count {
            let len = r.u32()? as usize;
            let path = r.take(len)?.to_vec();
            let mode = r.u32()?;
            let kind = match r.take(1)?[0] {
                b'f' => EntryKind::File {
                    sha256: r.take(32)?.try_into().ok()?,
                    size: r.u64()?,
                },
                b'd' => EntryKind::Dir,
                b'l' => {
                    let len = r.u32()? as usize;
                    EntryKind::Symlink {
                        target: r.take(len)?.to_vec(),
                    }
                }
                b's' => EntryKind::Special {
                    file_type: r.u32()?,
                    rdev: r.u64()?,
                },
                _ => return None,
            };
            entries.push(TreeEntry { path, mode, kind });
        }
        if !r.0.is_empty() {
            return None;
        }
        Listing::new(entries).ok()
    }

    /// Writes the listing to `path` atomically (temp file, fsync, rename, fsync dir).
    pub fn save(&self, path: &Path) -> Result<(), MergeError> {
        Ok(write_file(path, &self.encode())?)
    }

    /// Reads a cached listing and checks that it is the listing of the charm `digest`.
    /// `Ok(None)` when there is no cache file.
    pub fn load(path: &Path, digest: &CharmDigest) -> Result<Option<Self>, MergeError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(MergeError::io("read", path)(e)),
        };
        let bad = |reason| MergeError::BadCache {
            path: path.to_owned(),
            reason,
        };
        let listing = Self::decode(&bytes).ok_or_else(|| bad("not a listing"))?;
        if &listing.digest() != digest {
            return Err(bad("it does not hash to the charm's digest"));
        }
        Ok(Some(listing))
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::digest::tree_digest;
    use std::fs;

    #[test]
    fn cached_listing_round_trips_and_is_checked_against_the_digest() {
        let tmp = tempfile::tempdir().unwrap();
        let tree = tmp.path().join("tree");
        fs::create_dir_all(tree.join("hooks")).unwrap();
        fs::write(tree.join("metadata.yaml"), "name: x\n").unwrap();
        std::os::unix::fs::symlink("../metadata.yaml", tree.join("hooks/link")).unwrap();
        let listing = Listing::read_tree(&tree).unwrap();
        let digest = tree_digest(&tree).unwrap();
        assert_eq!(listing.digest(), digest);

        let cache = tmp.path().join(LISTING_CACHE_FILE);
        assert!(Listing::load(&cache, &digest).unwrap().is_none());
        listing.save(&cache).unwrap();
        assert_eq!(
            Listing::load(&cache, &digest).unwrap(),
            Some(listing.clone())
        );

        let other = CharmDigest::parse(&"0".repeat(64)).unwrap();
        assert!(matches!(
            Listing::load(&cache, &other),
            Err(MergeError::BadCache { .. })
        ));
        let bytes = listing.encode();
        for cut in [0, 5, bytes.len() - 1] {
            assert!(Listing::decode(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(Listing::decode(&extra).is_none());
    }
}
