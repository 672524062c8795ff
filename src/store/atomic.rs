//! Atomic state files: write a temp file in the same directory, fsync it, rename it over the
//! target, fsync the directory. A reader sees the old content or the new, never a mix, and a
//! crash at any point leaves one of the two (rename(2) is atomic within a filesystem).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;

/// Replaces `path` with `bytes` atomically and durably.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = parent_of(path);
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(StoreError::io("create temp file in", dir))?;
    temp.write_all(bytes)
        .map_err(StoreError::io("write", temp.path()))?;
    temp.as_file()
        .sync_all()
        .map_err(StoreError::io("fsync", temp.path()))?;
    temp.persist(path)
        .map_err(|e| StoreError::io("rename temp file to", path)(e.error))?;
    sync_dir(dir)
}

/// Serialises `value` as pretty JSON and writes it atomically to `path`.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StoreError> {
    write_file(path, &json_bytes(path, value)?)
}

/// `value` as pretty JSON and a newline.
fn json_bytes<T: Serialize>(path: &Path, value: &T) -> Result<Vec<u8>, StoreError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| StoreError::Json {
        path: path.to_owned(),
        source,
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Replaces `path` with `bytes` atomically and durably, like [`write_file`], without
/// creating or deleting an inode: the new content goes into a spare file beside `path`
/// (`.<name>.spare`, the previous content of `path`), which `renameat2(RENAME_EXCHANGE)`
/// then swaps with `path`. For the files written at every step of a hook run (the unit
/// journal): each inode freed and allocated per write costs, on some filesystems (ext4
/// without a journal scans recently deleted inodes at every allocation), more than the
/// write. Only for files whose writers are serialised (the unit lock): two concurrent
/// writers would share the spare.
pub fn write_file_in_place(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    let dir = parent_of(path);
    let name = path.file_name().ok_or_else(|| {
        StoreError::io("name the spare of", path)(std::io::ErrorKind::InvalidInput.into())
    })?;
    let mut spare_name = std::ffi::OsString::from(".");
    spare_name.push(name);
    spare_name.push(".spare");
    let spare = dir.join(spare_name);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&spare)
        .map_err(StoreError::io("open", &spare))?;
    // Overwrite, then cut to length: a shorter content never frees the file's only block.
    file.write_all(bytes)
        .and_then(|()| file.set_len(bytes.len() as u64))
        .and_then(|()| file.sync_data())
        .map_err(StoreError::io("write", &spare))?;
    match renameat_with(CWD, &spare, CWD, path, RenameFlags::EXCHANGE) {
        Ok(()) => {}
        Err(rustix::io::Errno::NOENT) => {
            fs::rename(&spare, path).map_err(StoreError::io("rename spare file to", path))?
        }
        Err(e) => return Err(StoreError::io("exchange spare file with", path)(e.into())),
    }
    sync_dir(dir)
}

/// [`write_json`] through [`write_file_in_place`].
pub fn write_json_in_place<T: Serialize>(path: &Path, value: &T) -> Result<(), StoreError> {
    write_file_in_place(path, &json_bytes(path, value)?)
}

/// Reads a JSON state file; `Ok(None)` when it does not exist.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, StoreError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| StoreError::Json {
                path: path.to_owned(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io("read", path)(e)),
    }
}

/// Fsyncs a directory so that renames and creations in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)
        .and_then(|d: File| d.sync_all())
        .map_err(StoreError::io("fsync directory", dir))
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_file(&path, b"one").unwrap();
        write_file(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    #[test]
    fn in_place_writes_swap_two_inodes_and_never_allocate_another() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let spare = dir.path().join(".state.json.spare");
        write_file_in_place(&path, b"a long first content").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"a long first content");
        write_file_in_place(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read(&spare).unwrap(), b"a long first content");
        let inodes = |p: &Path| fs::metadata(p).unwrap().ino();
        let pair = [inodes(&path), inodes(&spare)];
        for content in [&b"three"[..], b"4", b"a fifth, longer than all before it"] {
            write_file_in_place(&path, content).unwrap();
            assert_eq!(fs::read(&path).unwrap(), content);
            let mut now = [inodes(&path), inodes(&spare)];
            now.sort_unstable();
            let mut before = pair;
            before.sort_unstable();
            assert_eq!(now, before, "the same two inodes take turns");
        }
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, [".state.json.spare", "state.json"]);
    }

    #[test]
    fn an_in_place_write_through_a_symlinked_spare_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        fs::write(&outside, b"untouched").unwrap();
        let path = dir.path().join("state.json");
        std::os::unix::fs::symlink(&outside, dir.path().join(".state.json.spare")).unwrap();
        write_file_in_place(&path, b"new").unwrap_err();
        assert_eq!(fs::read(&outside).unwrap(), b"untouched");
    }

    #[test]
    fn json_round_trips_and_missing_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        assert_eq!(read_json::<Vec<u32>>(&path).unwrap(), None);
        write_json(&path, &vec![1u32, 2, 3]).unwrap();
        assert_eq!(read_json::<Vec<u32>>(&path).unwrap(), Some(vec![1, 2, 3]));
    }

    #[test]
    fn corrupt_json_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        fs::write(&path, b"{not json").unwrap();
        let err = read_json::<Vec<u32>>(&path).unwrap_err();
        assert!(err.to_string().contains("bad.json"), "{err}");
    }
}
