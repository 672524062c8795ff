//! Tar and gzip-compressed tar sources, streamed once: decompress, check, hash and write in
//! one pass.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::Path;
use std::rc::Rc;

use tar::EntryType;

use super::error::{IngestError, show};
use super::limits::Limits;
use super::sink::Sink;

/// Tar block size.
const BLOCK: usize = 512;

/// Buffer for reading the compressed file.
const READ_BUFFER: usize = 1 << 20;

/// Faults the stream layers raise inside `io::Error`s, so the member being read at the time
/// can be named.
#[derive(Debug, thiserror::Error)]
enum StreamFault {
    #[error("compression ratio over the limit")]
    Ratio,
    #[error("trailing garbage at compressed byte {offset}")]
    TrailingGarbage { offset: u64 },
}

/// Whether a first block looks like a tar header (ustar magic, an end-of-archive block, or an
/// old v7 header with a valid checksum).
pub fn looks_like_tar(block: &[u8]) -> bool {
    if block.len() < BLOCK {
        return false;
    }
    if &block[257..262] == b"ustar" || block[..BLOCK].iter().all(|&b| b == 0) {
        return true;
    }
    let stored = std::str::from_utf8(&block[148..156])
        .ok()
        .map(|s| s.trim_matches(|c: char| c == '\0' || c == ' '))
        .and_then(|s| u32::from_str_radix(s, 8).ok());
    let sum: u32 = block[..148]
        .iter()
        .chain(&block[156..BLOCK])
        .map(|&b| u32::from(b))
        .sum::<u32>()
        + 8 * 32;
    stored == Some(sum)
}

/// Counts bytes read from the compressed file.
struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Every gzip member of a stream, in order (concatenated gzip is valid gzip); zero padding
/// after the last member is accepted, like gzip(1) does; anything else is trailing garbage.
struct GzMembers<R: BufRead> {
    decoder: Option<flate2::bufread::GzDecoder<R>>,
    consumed: Rc<Cell<u64>>,
}

impl<R: BufRead> Read for GzMembers<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(decoder) = self.decoder.as_mut() else {
                return Ok(0);
            };
            let n = decoder.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let mut inner = self.decoder.take().expect("decoder present").into_inner();
            loop {
                let rest = inner.fill_buf()?;
                if rest.is_empty() {
                    return Ok(0);
                }
                if rest.starts_with(&[0x1f, 0x8b]) {
                    self.decoder = Some(flate2::bufread::GzDecoder::new(inner));
                    break;
                }
                match rest.iter().position(|&b| b != 0) {
                    None => {
                        let len = rest.len();
                        inner.consume(len);
                    }
                    Some(_) => {
                        let offset = self.consumed.get() - rest.len() as u64;
                        return Err(io::Error::other(StreamFault::TrailingGarbage { offset }));
                    }
                }
            }
        }
    }
}

/// What the tar reader knows about the stream below it, shared with the error mapping.
#[derive(Default)]
struct Track {
    /// Bytes of the tar stream consumed.
    offset: Cell<u64>,
    /// Whether the stream ended (a read returned 0).
    eof: Cell<bool>,
    /// The last block's worth of bytes read, to name a header that fails its checksum.
    window: RefCell<Vec<u8>>,
}

/// The tar stream as the tar crate reads it, with the ratio check.
struct Tracked<R> {
    inner: R,
    track: Rc<Track>,
    compressed: Option<Rc<Cell<u64>>>,
    max_ratio: u64,
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.track.eof.set(true);
        }
        let offset = self.track.offset.get() + n as u64;
        self.track.offset.set(offset);
        let mut window = self.track.window.borrow_mut();
        if n >= BLOCK {
            window.clear();
            window.extend_from_slice(&buf[n - BLOCK..n]);
        } else {
            window.extend_from_slice(&buf[..n]);
            let excess = window.len().saturating_sub(BLOCK);
            window.drain(..excess);
        }
        if let Some(compressed) = &self.compressed
            && offset > Limits::RATIO_GRACE_BYTES
            && offset / compressed.get().max(1) > self.max_ratio
        {
            return Err(io::Error::other(StreamFault::Ratio));
        }
        Ok(n)
    }
}

/// Reads an uncompressed tar file.
pub fn read_tar(
    archive: &Path,
    file: File,
    sink: &mut Sink<'_>,
    limits: &Limits,
) -> Result<(), IngestError> {
    let reader = BufReader::with_capacity(READ_BUFFER, file);
    read_stream(archive, reader, None, sink, limits)
}

/// Reads a gzip-compressed tar file.
pub fn read_tar_gz(
    archive: &Path,
    file: File,
    sink: &mut Sink<'_>,
    limits: &Limits,
) -> Result<(), IngestError> {
    let consumed = Rc::new(Cell::new(0));
    let counting = Counting {
        inner: file,
        count: consumed.clone(),
    };
    let mut members = GzMembers {
        decoder: Some(flate2::bufread::GzDecoder::new(BufReader::with_capacity(
            READ_BUFFER,
            counting,
        ))),
        consumed: consumed.clone(),
    };
    // Peek the first block: a gzip stream of something other than a tar is refused by name.
    let mut first = Vec::with_capacity(BLOCK);
    (&mut members)
        .take(BLOCK as u64)
        .read_to_end(&mut first)
        .map_err(|source| IngestError::Corrupt {
            archive: archive.to_owned(),
            member: "(gzip header)".to_owned(),
            offset: 0,
            source,
        })?;
    if !looks_like_tar(&first) {
        return Err(IngestError::GzipNotTar {
            path: archive.to_owned(),
        });
    }
    read_stream(
        archive,
        Cursor::new(first).chain(members),
        Some(consumed),
        sink,
        limits,
    )
}

fn read_stream<R: Read>(
    archive: &Path,
    reader: R,
    compressed: Option<Rc<Cell<u64>>>,
    sink: &mut Sink<'_>,
    limits: &Limits,
) -> Result<(), IngestError> {
    let track = Rc::new(Track::default());
    let tracked = Tracked {
        inner: reader,
        track: track.clone(),
        compressed,
        max_ratio: limits.max_ratio,
    };
    let mut last = String::from("(start of archive)");
    let read_error =
        |source: io::Error, member: &str| map_error(archive, member, &track, limits, source);
    let mut tar = tar::Archive::new(tracked);
    let entries = tar
        .entries()
        .map_err(|e| read_error(e, "(start of archive)"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| {
            let window = track.window.borrow();
            let name = header_name(&window);
            // The tar crate fails on some sparse headers before yielding them: a sparse
            // member is refused as such, whatever its sparse map says.
            if let (Some(member), Some(b'S')) = (&name, window.get(156)) {
                return IngestError::Sparse {
                    member: member.clone(),
                };
            }
            let member = match name {
                Some(name) => name,
                None => format!("after {last}"),
            };
            read_error(e, &member)
        })?;
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            // `git archive` writes its commit id here; it names no member.
            continue;
        }
        let raw = entry.path_bytes().into_owned();
        let member = show(&raw);
        let sparse_pax = entry
            .pax_extensions()
            .map_err(|e| read_error(e, &member))?
            .is_some_and(|mut pax| {
                pax.any(|ext| ext.is_ok_and(|ext| ext.key_bytes().starts_with(b"GNU.sparse.")))
            });
        if sparse_pax || kind == EntryType::GNUSparse {
            return Err(IngestError::Sparse { member });
        }
        let Some(path) = sink.begin(&raw)? else {
            last = member;
            continue;
        };
        match kind {
            EntryType::Regular | EntryType::Continuous if raw.ends_with(b"/") => {
                sink.add_dir(&path)?
            }
            EntryType::Regular | EntryType::Continuous => {
                let mode = entry.header().mode().map_err(|e| read_error(e, &member))?;
                let size = entry.size();
                let mut on_error = |e: io::Error, m: &str| read_error(e, m);
                sink.add_file(&path, mode, size, &mut entry, &mut on_error)?;
            }
            EntryType::Directory => sink.add_dir(&path)?,
            EntryType::Symlink => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                sink.add_symlink(&path, &target)?;
            }
            EntryType::Link => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                sink.add_hardlink(&path, &target)?;
            }
            EntryType::Char => return Err(special(member, "character device")),
            EntryType::Block => return Err(special(member, "block device")),
            EntryType::Fifo => return Err(special(member, "fifo")),
            other => {
                return Err(IngestError::UnsupportedEntry {
                    member,
                    entry_type: char::from(other.as_byte()),
                });
            }
        }
        last = member;
    }
    if sink.members() == 0 {
        return Err(IngestError::NoMembers {
            archive: archive.to_owned(),
        });
    }
    if track.eof.get() {
        return Err(IngestError::TruncatedArchive {
            archive: archive.to_owned(),
            member: last,
        });
    }
    // After the end-of-archive block only zero padding may follow (GNU tar pads to its
    // 10240-byte record); reading to the end also checks the gzip trailers.
    let mut rest = tar.into_inner();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match rest.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(map_error(archive, &last, &track, limits, e)),
        };
        if let Some(i) = buf[..n].iter().position(|&b| b != 0) {
            return Err(IngestError::TrailingGarbage {
                archive: archive.to_owned(),
                member: last,
                offset: track.offset.get() - (n - i) as u64,
            });
        }
    }
    Ok(())
}

fn special(member: String, kind: &'static str) -> IngestError {
    IngestError::SpecialFile { member, kind }
}

/// The name field of the last header block read, if it holds one.
fn header_name(window: &[u8]) -> Option<String> {
    if window.len() < BLOCK {
        return None;
    }
    let name = &window[..100];
    let end = name.iter().position(|&b| b == 0).unwrap_or(100);
    (end > 0).then(|| show(&name[..end]))
}

fn map_error(
    archive: &Path,
    member: &str,
    track: &Track,
    limits: &Limits,
    source: io::Error,
) -> IngestError {
    let member = member.to_owned();
    match source
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<StreamFault>())
    {
        Some(StreamFault::Ratio) => IngestError::CompressionRatio {
            member,
            limit: limits.max_ratio,
        },
        Some(StreamFault::TrailingGarbage { offset }) => IngestError::TrailingGarbage {
            archive: archive.to_owned(),
            member,
            offset: *offset,
        },
        None => IngestError::Corrupt {
            archive: archive.to_owned(),
            member,
            offset: track.offset.get(),
            source,
        },
    }
}
