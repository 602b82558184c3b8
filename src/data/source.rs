//! data::source: one view over "a directory" and "a .zip archive", so that every loader reads both.
//! Paths are '/'-separated and relative to the root (for a single file: just its name).

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{bad, io_err, DataError};

pub enum Source {
    Dir { root: PathBuf, files: Vec<String> },
    Zip { path: PathBuf, archive: std::sync::Mutex<zip::ZipArchive<std::fs::File>>, files: Vec<String> },
    /// Files handed over as bytes (the browser's file picker): `name` is what messages call the set.
    Memory { name: String, files: Vec<String>, data: std::collections::HashMap<String, Vec<u8>> },
}

impl Source {
    /// Files given as (name, bytes); a single .zip is opened and its members become the files.
    pub fn from_memory(name: &str, given: Vec<(String, Vec<u8>)>) -> Result<Source, DataError> {
        let mut data = std::collections::HashMap::new();
        if let [(zip_name, bytes)] = &given[..]
            && zip_name.to_ascii_lowercase().ends_with(".zip")
        {
            let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.as_slice()))
                .map_err(|e| bad(zip_name, format!("not a readable zip archive: {e}")))?;
            for i in 0..archive.len() {
                let mut f = archive.by_index(i).map_err(|e| bad(zip_name, format!("unreadable member: {e}")))?;
                if f.is_dir() {
                    continue;
                }
                let member = f.name().map_err(|e| bad(zip_name, format!("unreadable member name: {e}")))?.into_owned();
                let mut buf = Vec::with_capacity(f.size() as usize);
                f.read_to_end(&mut buf).map_err(|e| io_err(format!("{zip_name}:{member}"), e))?;
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
            walk(path, "", &mut files)?;
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

    pub fn read(&self, rel: &str) -> Result<Vec<u8>, DataError> {
        match self {
            Source::Dir { root, .. } => std::fs::read(root.join(rel)).map_err(|e| io_err(self.display(rel), e)),
            Source::Zip { archive, .. } => {
                let mut a = archive.lock().unwrap_or_else(|p| p.into_inner());
                let mut f = a.by_name(rel).map_err(|e| bad(self.display(rel), format!("cannot open archive member: {e}")))?;
                let mut buf = Vec::with_capacity(f.size() as usize);
                f.read_to_end(&mut buf).map_err(|e| io_err(self.display(rel), e))?;
                Ok(buf)
            }
            Source::Memory { data, .. } => data.get(rel).cloned().ok_or_else(|| bad(self.display(rel), "no such file")),
        }
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

fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<(), DataError> {
    let rd = std::fs::read_dir(dir).map_err(|e| io_err(dir.display(), e))?;
    for entry in rd {
        let entry = entry.map_err(|e| io_err(dir.display(), e))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        let rel = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
        let ft = entry.file_type().map_err(|e| io_err(entry.path().display(), e))?;
        if ft.is_dir() {
            walk(&entry.path(), &rel, out)?;
        } else {
            out.push(rel);
        }
    }
    Ok(())
}

/// Gunzip when the bytes start with the gzip magic, else return them unchanged.
pub fn maybe_gunzip(file: &str, bytes: Vec<u8>) -> Result<Vec<u8>, DataError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut out).map_err(|e| bad(file, format!("corrupt gzip data: {e}")))?;
        Ok(out)
    } else {
        Ok(bytes)
    }
}
