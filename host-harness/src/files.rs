//! Files like a security tool: secrets and digits are written owner-only, outputs appear
//! whole or not at all, inputs are bounded.
//!
//! - [`write_atomic`] writes through a temporary file created exclusively (`O_EXCL`, never
//!   following a planted link) with an unpredictable name next to the target, removed on any
//!   failure, then renamed over the target;
//! - [`open_append_private`] opens an events file for appending, owner-only, refusing a link;
//! - [`check_private`] refuses a key file that group or others can read (as ssh does);
//! - [`read_input`] reads a call or capture: its first bytes must be a WAV or capture header
//!   (else it stops there); regular files up to [`MAX_INPUT_BYTES`], anything else (a pipe, a
//!   device such as `/dev/zero`) cut at [`MAX_STREAM_BYTES`] with a warning; [`open_input`]
//!   opens a regular WAV file as a stream instead.

use crate::wav::WavReader;
use anyhow::{bail, Context, Result};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// Largest call or capture file read: 2 GiB (about 37 hours of 8 kHz 16-bit audio).
pub const MAX_INPUT_BYTES: u64 = 2 << 30;
/// Most read from an input that is not a regular file: 256 MiB.
pub const MAX_STREAM_BYTES: u64 = 256 << 20;

/// Owner read/write only.
pub const PRIVATE: u32 = 0o600;
/// Owner read/write, everyone read: outputs that hold no digit (masked audio, reports).
pub const PUBLIC: u32 = 0o644;

/// Writes `bytes` to `path` with permissions `mode`, all or nothing.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut f = AtomicFile::create(path, mode)?;
    f.append(bytes)?;
    f.commit()
}

/// A file written in parts that appears whole or not at all: written to a temporary file
/// (created exclusively, never following a planted link, with an unpredictable name next to
/// the target), synced and renamed over the target by [`AtomicFile::commit`]; removed if it is
/// dropped before that, or on any failure.
pub struct AtomicFile {
    file: std::io::BufWriter<std::fs::File>,
    tmp: PathBuf,
    path: PathBuf,
    done: bool,
}

impl AtomicFile {
    /// Starts writing `path`, with permissions `mode` once it is there.
    pub fn create(path: &Path, mode: u32) -> Result<AtomicFile> {
        let tmp = temp_name(path)?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc_nofollow())
            .open(&tmp)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(AtomicFile {
            file: std::io::BufWriter::with_capacity(1 << 16, file),
            tmp,
            path: path.to_path_buf(),
            done: false,
        })
    }

    /// Appends `bytes` (an error names the file).
    pub fn append(&mut self, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all(bytes)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    /// Puts the file in place: everything written, synced, then renamed over the target.
    pub fn commit(mut self) -> Result<()> {
        let placed = (|| -> std::io::Result<()> {
            self.file.flush()?;
            self.file.get_ref().sync_all()?;
            std::fs::rename(&self.tmp, &self.path)
        })();
        placed.with_context(|| format!("cannot write {}", self.path.display()))?;
        self.done = true;
        Ok(())
    }
}

impl std::io::Write for AtomicFile {
    /// Appends (for writers that take a `Write`: their errors do not name the file).
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Drop for AtomicFile {
    /// An unfinished file is removed.
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// `.NAME.RANDOM.tmp` in the target's directory.
fn temp_name(path: &Path) -> Result<PathBuf> {
    let r = crate::keys::random_bytes::<8>("a temporary file name")?;
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?;
    Ok(path.with_file_name(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        hex::encode(r)
    )))
}

/// `O_NOFOLLOW`: opening a symbolic link fails instead of writing where it points.
fn libc_nofollow() -> i32 {
    libc::O_NOFOLLOW
}

/// Opens `path` for appending events: created owner-only, a link refused, an existing file
/// that group or others may read refused.
pub fn open_append_private(path: &Path) -> Result<std::fs::File> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(PRIVATE)
        .custom_flags(libc_nofollow())
        .open(path)
        .with_context(|| format!("cannot open events file {}", path.display()))?;
    let mode = f.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        bail!(
            "events file {} is readable by others (mode {:o}): events carry digits; chmod 600 it or choose another file",
            path.display(),
            mode & 0o777
        );
    }
    Ok(f)
}

/// Refuses a secret file that group or others may read or write.
pub fn check_private(path: &Path, what: &str) -> Result<()> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "{what} {} is accessible by group or others (mode {mode:o}); run: chmod 600 {}",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

/// Reads a call or capture. Bytes that do not start like a WAV file or a capture are refused
/// after 12 bytes; a regular file larger than [`MAX_INPUT_BYTES`] is refused; anything else
/// is read up to [`MAX_STREAM_BYTES`], with a warning when it was cut.
pub fn read_input(path: &Path) -> Result<Vec<u8>> {
    let (f, meta, head) = open_input_file(path)?;
    read_rest(f, &meta, head, path)
}

/// Regular-file captures at least this large are mapped into memory rather than read.
pub const MAP_FROM_BYTES: u64 = 1 << 20;

/// A call or capture, opened by [`open_input`].
pub enum Input {
    /// A WAV file (a regular file), its headers checked, to be read as it is processed.
    Wav(WavReader),
    /// A capture (pcap or pcapng). A regular file of at least [`MAP_FROM_BYTES`] is mapped
    /// into memory read-only: its pages are read where they lie as they are used, never
    /// copied (reading a 41 MB capture into fresh memory cost a tenth of masking it); any
    /// other is read whole as [`read_input`] reads it.
    Capture(tonemask_capture::Bytes),
    /// Anything else, read whole as [`read_input`] reads it.
    Bytes(Vec<u8>),
}

/// As [`read_input`], except that a regular file holding a WAV recording is opened as a
/// stream ([`WavReader`]: its chunk headers checked now, its samples read as they are
/// processed) rather than read into memory, and a large regular-file capture is mapped
/// ([`Input::Capture`]).
pub fn open_input(path: &Path) -> Result<Input> {
    let (f, meta, head) = open_input_file(path)?;
    if meta.is_file() && head.starts_with(b"RIFF") {
        let wav = WavReader::open(f, meta.size()).with_context(|| path.display().to_string())?;
        return Ok(Input::Wav(wav));
    }
    if meta.is_file() && meta.size() >= MAP_FROM_BYTES && tonemask_capture::is_capture(&head) {
        // SAFETY: the map is private and read-only, and read only through `Bytes`, as any
        // bytes are: the capture code takes whatever it finds. What the map cannot guard
        // against is another process shortening the file meanwhile — reading past the new
        // end raises SIGBUS and ends the run; no output is left behind (outputs are renamed
        // into place only when whole).
        let map = unsafe { memmap2::Mmap::map(&f) }
            .with_context(|| format!("cannot read {}", path.display()))?;
        return Ok(Input::Capture(tonemask_capture::Bytes::from_owner(map)));
    }
    let bytes = read_rest(f, &meta, head, path)?;
    Ok(if tonemask_capture::is_capture(&bytes) {
        Input::Capture(bytes.into())
    } else {
        Input::Bytes(bytes)
    })
}

/// Opens an input: not a directory, a regular file within [`MAX_INPUT_BYTES`], and its first
/// 12 bytes (fewer if it is shorter) those of a WAV file or a capture.
fn open_input_file(path: &Path) -> Result<(std::fs::File, std::fs::Metadata, Vec<u8>)> {
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let meta = f
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_dir() {
        bail!("{} is a directory, not a call", path.display());
    }
    if meta.is_file() && meta.size() > MAX_INPUT_BYTES {
        bail!(
            "{} is {} bytes; the largest input read is {MAX_INPUT_BYTES} bytes",
            path.display(),
            meta.size()
        );
    }
    let mut head = Vec::new();
    (&mut f)
        .take(12)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let wav = head.starts_with(b"RIFF");
    if !head.is_empty() && !wav && !tonemask_capture::is_capture(&head) {
        bail!(
            "{}: not a WAV file (RIFF/WAVE) or a packet capture (pcap, pcapng)",
            path.display()
        );
    }
    Ok((f, meta, head))
}

/// The rest of an input opened by [`open_input_file`], after its first bytes `head`.
fn read_rest(
    f: std::fs::File,
    meta: &std::fs::Metadata,
    mut bytes: Vec<u8>,
    path: &Path,
) -> Result<Vec<u8>> {
    let limit = if meta.is_file() {
        MAX_INPUT_BYTES
    } else {
        MAX_STREAM_BYTES
    };
    if meta.is_file() {
        // Read in one go into room of the file's size (growing by doubling copied the bytes
        // read so far over and over).
        let rest = meta.size().min(limit).saturating_sub(bytes.len() as u64);
        bytes.reserve_exact(usize::try_from(rest).unwrap_or(0) + 1);
    }
    f.take(limit + 1 - bytes.len() as u64)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > limit {
        bytes.truncate(limit as usize);
        eprintln!(
            "tonemask: warning: {} did not end; read its first {limit} bytes",
            path.display()
        );
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_written_owner_only_and_links_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("events.jsonl");
        write_atomic(&out, b"x\n", PRIVATE).unwrap();
        let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Nothing but the target is left in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // An events file planted as a link to a victim file is refused.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let link = dir.path().join("planted.jsonl");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(open_append_private(&link).is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    }

    #[test]
    fn a_file_written_in_parts_appears_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("masked.wav");
        std::fs::write(&out, "old").unwrap();
        let mut f = AtomicFile::create(&out, PUBLIC).unwrap();
        f.append(b"half").unwrap();
        drop(f); // a failure on the way: the target keeps what it had, nothing else is left
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let mut f = AtomicFile::create(&out, PUBLIC).unwrap();
        f.append(b"whole ").unwrap();
        std::io::Write::write_all(&mut f, b"file").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "whole file");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn key_files_readable_by_others_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.key");
        std::fs::write(&key, "k1 00").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = check_private(&key, "key file").unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        check_private(&key, "key file").unwrap();
    }

    #[test]
    fn endless_or_foreign_inputs_stop_early_and_directories_are_refused() {
        assert!(read_input(Path::new("/")).is_err());
        assert!(read_input(Path::new("/nonexistent/x.wav")).is_err());
        // /dev/zero: not a WAV or a capture, refused after its first bytes.
        let e = read_input(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(e.contains("not a WAV file"), "{e}");
    }
}
