//! data::source: one read-only view over "a directory", "a .zip archive" and "files given as bytes", so that every
//! loader reads all three. Paths are '/'-separated and relative to the root (for a single file: just its name).
//!
//! Nothing a file claims about its own size is trusted for allocation: every read is bounded (`Limits`), gzip
//! streams (all members of a multi-member file) are decoded through the same bound, and directory walks follow
//! symbolic links to folders once each, so a link loop ends.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::{bad, io_err, DataError};

/// How much one dataset file may make the loaders hold: the bounds a hostile file runs into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes one file, archive member or decompressed stream may hold.
    pub file_bytes: u64,
    /// Pixel bytes a whole dataset (both splits) may hold.
    pub dataset_bytes: u64,
    /// Largest side of one image of an image-folder dataset.
    pub image_side: u32,
}

impl Limits {
    /// The defaults: 1 GiB per file (the largest official file a loader reads, SVHN's train_32x32.mat, is 182 MB),
    /// 16 GiB of pixels per dataset, images up to 4096 pixels a side. `HYPERDISTILL_MAX_FILE_MB` and
    /// `HYPERDISTILL_MAX_DATASET_MB` raise (or lower) the first two.
    pub fn get() -> Limits {
        let mb = |var: &str, default: u64| -> u64 {
            std::env::var(var).ok().and_then(|v| v.trim().parse::<u64>().ok()).filter(|&v| v > 0).unwrap_or(default).saturating_mul(1 << 20)
        };
        Limits { file_bytes: mb("HYPERDISTILL_MAX_FILE_MB", 1024), dataset_bytes: mb("HYPERDISTILL_MAX_DATASET_MB", 16 << 10), image_side: 4096 }
    }
}

/// The message of a file over `Limits::file_bytes`.
pub(crate) fn too_large(file: &str, cap: u64) -> DataError {
    bad(file, format!("holds more than {} MiB, the most a dataset file may hold here (set HYPERDISTILL_MAX_FILE_MB to allow more)", cap >> 20))
}

pub enum Source {
    Dir { root: PathBuf, files: Vec<String> },
    Zip { path: PathBuf, archive: std::sync::Mutex<zip::ZipArchive<std::fs::File>>, files: Vec<String> },
    /// Files handed over as bytes (the browser's file picker): `name` is what messages call the set.
    Memory { name: String, files: Vec<String>, data: std::collections::HashMap<String, Vec<u8>> },
}

impl Source {
    /// Files given as (name, bytes); a single .zip is opened and its members become the files (each member, and
    /// all of them together, bounded by `Limits::file_bytes`).
    pub fn from_memory(name: &str, given: Vec<(String, Vec<u8>)>) -> Result<Source, DataError> {
        let mut data = std::collections::HashMap::new();
        if let [(zip_name, bytes)] = &given[..]
            && zip_name.to_ascii_lowercase().ends_with(".zip")
        {
            let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.as_slice()))
                .map_err(|e| bad(zip_name, format!("not a readable zip archive: {e}")))?;
            let cap = Limits::get().file_bytes;
            let mut total = 0u64;
            for i in 0..archive.len() {
                let f = archive.by_index(i).map_err(|e| bad(zip_name, format!("unreadable member: {e}")))?;
                if f.is_dir() {
                    continue;
                }
                let member = f.name().map_err(|e| bad(zip_name, format!("unreadable member name: {e}")))?.into_owned();
                let label = format!("{zip_name}:{member}");
                let buf = read_bounded(&label, f, cap.saturating_sub(total))?;
                total += buf.len() as u64;
                data.insert(member, buf);
            }
        } else {
            data.extend(given);
        }
        let mut files: Vec<String> = data.keys().cloned().collect();
        files.sort();
        Ok(Source::Memory { name: name.to_string(), files, data })
    }

    pub fn open(path: &Path) -> Result<Source, DataError> {
        let is_zip = path.is_file() && path.extension().is_some_and(|e| e.eq_ignore_ascii_case("zip"));
        if is_zip {
            let f = std::fs::File::open(path).map_err(|e| io_err(path.display(), e))?;
            let archive = zip::ZipArchive::new(f).map_err(|e| bad(path.display(), format!("not a readable zip archive: {e}")))?;
            let mut files = vec![];
            for name in archive.file_names() {
                let name = name.map_err(|e| bad(path.display(), format!("unreadable member name: {e}")))?;
                if !name.ends_with('/') {
                    files.push(name.into_owned());
                }
            }
            files.sort();
            Ok(Source::Zip { path: path.to_path_buf(), archive: std::sync::Mutex::new(archive), files })
        } else if path.is_file() {
            let root = path.parent().unwrap_or(Path::new(".")).to_path_buf();
            let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            Ok(Source::Dir { root, files: vec![name] })
        } else {
            let mut files = vec![];
            let mut seen = vec![std::fs::canonicalize(path).map_err(|e| io_err(path.display(), e))?];
            walk(path, "", &mut files, &mut seen)?;
            files.sort();
            Ok(Source::Dir { root: path.to_path_buf(), files })
        }
    }

    /// Every file under the root, sorted.
    pub fn files(&self) -> &[String] {
        match self {
            Source::Dir { files, .. } | Source::Zip { files, .. } | Source::Memory { files, .. } => files,
        }
    }

    /// A name for messages: the directory, or archive.zip:member.
    pub fn display(&self, rel: &str) -> String {
        match self {
            Source::Dir { root, .. } => root.join(rel).display().to_string(),
            Source::Zip { path, .. } if rel.is_empty() => path.display().to_string(),
            Source::Zip { path, .. } => format!("{}:{rel}", path.display()),
            Source::Memory { name, .. } if rel.is_empty() => name.clone(),
            Source::Memory { name, .. } => format!("{name}:{rel}"),
        }
    }

    /// Read file `rel` as a stream (the archive stays locked meanwhile). `f` sees the bytes as stored.
    pub fn with_reader<T>(&self, rel: &str, f: impl FnOnce(&mut dyn Read) -> Result<T, DataError>) -> Result<T, DataError> {
        match self {
            Source::Dir { root, .. } => {
                let mut file = std::fs::File::open(root.join(rel)).map_err(|e| io_err(self.display(rel), e))?;
                f(&mut file)
            }
            Source::Zip { archive, .. } => {
                let mut a = archive.lock().unwrap_or_else(|p| p.into_inner());
                let mut member = a.by_name(rel).map_err(|e| bad(self.display(rel), format!("cannot open archive member: {e}")))?;
                f(&mut member)
            }
            Source::Memory { data, .. } => {
                let bytes = data.get(rel).ok_or_else(|| bad(self.display(rel), "no such file"))?;
                f(&mut &bytes[..])
            }
        }
    }

    /// The bytes of file `rel` as stored, at most `Limits::file_bytes` of them (a larger file is an error).
    pub fn read(&self, rel: &str) -> Result<Vec<u8>, DataError> {
        self.read_at_most(rel, Limits::get().file_bytes)
    }

    /// The bytes of file `rel` as stored, at most `cap` of them (a larger file is an error naming it).
    pub fn read_at_most(&self, rel: &str, cap: u64) -> Result<Vec<u8>, DataError> {
        let name = self.display(rel);
        self.with_reader(rel, |r| read_bounded(&name, r, cap))
    }

    /// The file whose path ends with `name` (any directory), preferring the shallowest.
    pub fn find(&self, name: &str) -> Option<&str> {
        self.files()
            .iter()
            .filter(|f| *f == name || f.ends_with(&format!("/{name}")))
            .min_by_key(|f| f.matches('/').count())
            .map(String::as_str)
    }
}

/// Everything `r` yields, refusing more than `cap` bytes. The buffer grows with what actually arrives, never
/// with what a header announces.
pub fn read_bounded(file: &str, r: impl Read, cap: u64) -> Result<Vec<u8>, DataError> {
    let mut buf = Vec::new();
    r.take(cap.saturating_add(1)).read_to_end(&mut buf).map_err(|e| read_err(file, e))?;
    if buf.len() as u64 > cap {
        return Err(too_large(file, cap));
    }
    Ok(buf)
}

/// A read error as a message: corrupt compressed data is the file's fault, anything else the system's.
pub(crate) fn read_err(file: &str, e: std::io::Error) -> DataError {
    match e.kind() {
        std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput => bad(file, e.to_string()),
        std::io::ErrorKind::UnexpectedEof => bad(file, format!("truncated ({e})")),
        _ => io_err(file, e),
    }
}

/// Every file below `dir`; a symbolic link to a folder is followed unless that folder was already walked (`seen`:
/// canonical paths), which ends link loops and reads a linked folder once.
fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>, seen: &mut Vec<PathBuf>) -> Result<(), DataError> {
    let rd = std::fs::read_dir(dir).map_err(|e| io_err(dir.display(), e))?;
    for entry in rd {
        let entry = entry.map_err(|e| io_err(dir.display(), e))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        let rel = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
        let path = entry.path();
        let mut ft = entry.file_type().map_err(|e| io_err(path.display(), e))?;
        if ft.is_symlink() {
            match std::fs::metadata(&path) {
                Ok(m) => ft = m.file_type(),
                // a dangling link: nothing to read, and not the dataset's fault to report here
                Err(_) => continue,
            }
        }
        if ft.is_dir() {
            let canon = std::fs::canonicalize(&path).map_err(|e| io_err(path.display(), e))?;
            if seen.contains(&canon) {
                log::warn!("{}: skipped, a link to a folder already read ({})", path.display(), canon.display());
                continue;
            }
            seen.push(canon);
            walk(&path, &rel, out, seen)?;
        } else if ft.is_file() {
            out.push(rel);
        }
    }
    Ok(())
}

/// A reader that decodes gzip when the stream starts with the gzip magic (every member of a multi-member file,
/// refusing bytes after the last member that are not another member), else passes the bytes through.
pub fn decoded<'a>(r: impl Read + 'a) -> std::io::Result<Box<dyn Read + 'a>> {
    let mut br = BufReader::new(r);
    let head = br.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(Gunzip { inner: flate2::bufread::MultiGzDecoder::new(br), out: 0 }))
    } else {
        Ok(Box::new(br))
    }
}

/// flate2's multi-member decoder with errors that say what went wrong in gzip terms.
struct Gunzip<R: BufRead> {
    inner: flate2::bufread::MultiGzDecoder<R>,
    /// bytes decoded so far (a header error after some output is data after the last member)
    out: u64,
}

impl<R: BufRead> Read for Gunzip<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.out += n as u64;
                Ok(n)
            }
            // a failure while reading a member's header, after a whole member: bytes that are not another member
            Err(_) if self.out > 0 && self.inner.header().is_none() => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("bytes after the end of the gzip data ({} decoded bytes) that are not another gzip member", self.out),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(std::io::Error::new(e.kind(), format!("the gzip data ends early, after {} decoded bytes", self.out)))
            }
            Err(e) => Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("corrupt gzip data: {e}"))),
        }
    }
}

/// Gunzip when the bytes start with the gzip magic (all members; at most `Limits::file_bytes` decoded), else return
/// them unchanged.
pub fn maybe_gunzip(file: &str, bytes: Vec<u8>) -> Result<Vec<u8>, DataError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let r = decoded(&bytes[..]).map_err(|e| read_err(file, e))?;
        read_bounded(file, r, Limits::get().file_bytes)
    } else {
        Ok(bytes)
    }
}
