//! data::fetch: download the official files of a dataset into the cache, verified.
//!
//! Each file streams into `<name>.part`; an interrupted transfer keeps the part and the next run resumes
//! it with an HTTP Range request (or restarts cleanly when the server ignores the range). The finished part
//! is checked against the MD5 kept in this file (the values torchvision and the dataset pages publish) and
//! only then renamed into place, atomically. A mismatch deletes the part and says so. Archives of binary
//! files (CIFAR) are unpacked after verification; zip (Tiny ImageNet) is read in place by the loaders.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use super::Known;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: {msg}")]
    Http { url: String, msg: String },
    #[error("{file}: checksum mismatch (expected MD5 {expected}, got {got}); the corrupt download was deleted, run the command again")]
    Checksum { file: String, expected: String, got: String },
    #[error("{url}: the transfer broke off after {bytes} bytes ({msg}); run the command again to resume it")]
    Interrupted { url: String, bytes: u64, msg: String },
    #[error("{url}: timed out: {what} ({secs} s); {kept}run the command again to retry, or allow longer with {flag}")]
    TimedOut { url: String, what: String, secs: u64, kept: String, flag: &'static str },
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{0}")]
    Archive(String),
}

fn io(path: &Path, source: std::io::Error) -> FetchError {
    FetchError::Io { path: path.display().to_string(), source }
}

/// One file to fetch.
#[derive(Clone, Debug)]
pub struct Resource {
    pub file: String,
    pub url: String,
    pub md5: String,
}

fn res(base: &str, file: &str, md5: &str) -> Resource {
    Resource { file: file.to_string(), url: format!("{base}{file}"), md5: md5.to_string() }
}

/// The official files of each dataset.
pub fn resources(k: Known) -> Vec<Resource> {
    match k {
        Known::Mnist => {
            let b = "https://ossci-datasets.s3.amazonaws.com/mnist/";
            vec![
                res(b, "train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
                res(b, "train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
                res(b, "t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
                res(b, "t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
            ]
        }
        Known::FashionMnist => {
            let b = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";
            vec![
                res(b, "train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
                res(b, "train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
                res(b, "t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
                res(b, "t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
            ]
        }
        Known::Cifar10 => vec![res("https://www.cs.toronto.edu/~kriz/", "cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530")],
        Known::Cifar100 => vec![res("https://www.cs.toronto.edu/~kriz/", "cifar-100-binary.tar.gz", "03b5dce01913d631647c71ecec9e9cb8")],
        Known::Svhn => {
            let b = "http://ufldl.stanford.edu/housenumbers/";
            vec![res(b, "train_32x32.mat", "e26dedcc434d2e4c54c9b2d4a06d8373"), res(b, "test_32x32.mat", "eb5a983be6a315427106f1b164d9cef3")]
        }
        Known::TinyImageNet => vec![res("http://cs231n.stanford.edu/", "tiny-imagenet-200.zip", "90528d7ca1a48142e341f4ef8d21d0de")],
    }
}

/// The default cache: $HYPERDISTILL_CACHE, else the platform cache dir + "hyperdistill".
pub fn default_cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("HYPERDISTILL_CACHE") {
        return PathBuf::from(p);
    }
    dirs::cache_dir().unwrap_or_else(|| PathBuf::from(".cache")).join("hyperdistill")
}

/// MD5 of a file, hex.
pub fn md5_file(path: &Path) -> Result<String, FetchError> {
    let mut f = std::fs::File::open(path).map_err(|e| io(path, e))?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// How long a download waits: for the connection, and for each read of the response (its headers, then every piece
/// of the body). A server that accepts and never answers, or stalls mid-body, ends the download after the read
/// timeout with the part kept for a resume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: std::time::Duration,
    pub read: std::time::Duration,
}

impl Default for Timeouts {
    /// 30 s to connect and 60 s per read, or `HYPERDISTILL_CONNECT_TIMEOUT` / `HYPERDISTILL_READ_TIMEOUT` (seconds).
    fn default() -> Self {
        let secs = |var: &str, default: u64| {
            std::time::Duration::from_secs(std::env::var(var).ok().and_then(|v| v.trim().parse().ok()).filter(|&v| v > 0).unwrap_or(default))
        };
        Timeouts { connect: secs("HYPERDISTILL_CONNECT_TIMEOUT", 30), read: secs("HYPERDISTILL_READ_TIMEOUT", 60) }
    }
}

/// Fetch dataset `k` into `<cache>/<name>/` with the default timeouts; `mirror` replaces the base URL of every file.
pub fn fetch(k: Known, cache: &Path, mirror: Option<&str>, log: &mut dyn FnMut(&str)) -> Result<PathBuf, FetchError> {
    fetch_with(k, cache, mirror, Timeouts::default(), log)
}

/// `fetch` with the given timeouts.
pub fn fetch_with(k: Known, cache: &Path, mirror: Option<&str>, timeouts: Timeouts, log: &mut dyn FnMut(&str)) -> Result<PathBuf, FetchError> {
    let dest = cache.join(k.name());
    let list: Vec<Resource> = resources(k)
        .into_iter()
        .map(|r| match mirror {
            Some(m) => Resource { url: format!("{}/{}", m.trim_end_matches('/'), r.file), ..r },
            None => r,
        })
        .collect();
    install(&list, &dest, timeouts, log)?;
    Ok(dest)
}

/// Download and verify `list` into `dest`, then unpack the .tar.gz archives among them.
pub fn install(list: &[Resource], dest: &Path, timeouts: Timeouts, log: &mut dyn FnMut(&str)) -> Result<(), FetchError> {
    fetch_resources(list, dest, timeouts, log)?;
    for r in list {
        if r.file.ends_with(".tar.gz") {
            unpack_tar_gz(&dest.join(&r.file), dest, log)?;
        }
    }
    Ok(())
}

/// Download and verify each resource into `dest` (see the module comment for the protocol).
pub fn fetch_resources(list: &[Resource], dest: &Path, timeouts: Timeouts, log: &mut dyn FnMut(&str)) -> Result<(), FetchError> {
    std::fs::create_dir_all(dest).map_err(|e| io(dest, e))?;
    for r in list {
        let target = dest.join(&r.file);
        if target.exists() {
            if md5_file(&target)? == r.md5 {
                log(&format!("{}: present, checksum ok", r.file));
                continue;
            }
            log(&format!("{}: present but its checksum is wrong; downloading again", r.file));
            std::fs::remove_file(&target).map_err(|e| io(&target, e))?;
        }
        let part = dest.join(format!("{}.part", r.file));
        download(&r.url, &part, timeouts)?;
        let got = md5_file(&part)?;
        if got != r.md5 {
            std::fs::remove_file(&part).map_err(|e| io(&part, e))?;
            return Err(FetchError::Checksum { file: target.display().to_string(), expected: r.md5.clone(), got });
        }
        std::fs::rename(&part, &target).map_err(|e| io(&target, e))?;
        log(&format!("{}: downloaded, checksum ok", r.file));
    }
    Ok(())
}

/// Whether an error from ureq (directly, or wrapped in an io::Error by its body reader) is a timeout.
fn is_timeout(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Timeout(_) => true,
        ureq::Error::Io(io) => matches!(io.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock),
        _ => false,
    }
}

/// Stream `url` into `part`, resuming from its current length when the server honours Range.
fn download(url: &str, part: &Path, t: Timeouts) -> Result<(), FetchError> {
    let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let http = |msg: String| FetchError::Http { url: url.to_string(), msg };
    let kept = |bytes: u64| if bytes > 0 { format!("the {bytes} bytes received are kept in {}; ", part.display()) } else { String::new() };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(t.connect))
        .timeout_per_read(Some(t.read))
        .build()
        .into();
    let mut req = agent.get(url);
    if have > 0 {
        req = req.header("Range", format!("bytes={have}-"));
    }
    let mut resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Timeout(ureq::Timeout::Connect)) => {
            return Err(FetchError::TimedOut { url: url.into(), what: "no connection".into(), secs: t.connect.as_secs(), kept: kept(have), flag: "--connect-timeout" });
        }
        Err(e) if is_timeout(&e) => {
            return Err(FetchError::TimedOut { url: url.into(), what: "no answer from the server".into(), secs: t.read.as_secs(), kept: kept(have), flag: "--read-timeout" });
        }
        Err(e) => return Err(http(e.to_string())),
    };
    let status = resp.status().as_u16();
    let (append, start) = match status {
        206 if have > 0 => (true, have),
        200 => (false, 0),
        416 if have > 0 => {
            // the range is past the end: the part is complete or bigger than the file; start over
            std::fs::remove_file(part).map_err(|e| io(part, e))?;
            return download(url, part, t);
        }
        s => return Err(http(format!("HTTP status {s}"))),
    };
    let total = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map(|l| l + start);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(part)
        .map_err(|e| io(part, e))?;
    let bar = indicatif::ProgressBar::new(total.unwrap_or(0)).with_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} {bar:30} {bytes}/{total_bytes} ({bytes_per_sec}, ETA {eta})")
            .expect("valid template"),
    );
    bar.set_message(part.file_name().map(|n| n.to_string_lossy().trim_end_matches(".part").to_string()).unwrap_or_default());
    bar.set_position(start);
    let mut reader = resp.body_mut().as_reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut written = start;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                file.flush().ok();
                bar.abandon();
                let e = ureq::Error::from(e);
                if is_timeout(&e) {
                    return Err(FetchError::TimedOut {
                        url: url.into(),
                        what: format!("the transfer stalled after {written} bytes"),
                        secs: t.read.as_secs(),
                        kept: kept(written),
                        flag: "--read-timeout",
                    });
                }
                return Err(FetchError::Interrupted { url: url.to_string(), bytes: written, msg: e.to_string() });
            }
        };
        file.write_all(&buf[..n]).map_err(|e| io(part, e))?;
        written += n as u64;
        bar.set_position(written);
    }
    file.sync_all().map_err(|e| io(part, e))?;
    bar.finish_and_clear();
    if let Some(t) = total {
        if written < t {
            return Err(FetchError::Interrupted { url: url.to_string(), bytes: written, msg: format!("expected {t} bytes") });
        }
    }
    Ok(())
}

/// Unpack the regular files of a verified .tar.gz into `dest`, refusing paths that leave it.
fn unpack_tar_gz(archive: &Path, dest: &Path, log: &mut dyn FnMut(&str)) -> Result<(), FetchError> {
    let f = std::fs::File::open(archive).map_err(|e| io(archive, e))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let err = |e: std::io::Error| FetchError::Archive(format!("{}: {e}", archive.display()));
    let mut count = 0;
    for entry in tar.entries().map_err(err)? {
        let mut entry = entry.map_err(err)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let rel = entry.path().map_err(err)?.into_owned();
        if rel.is_absolute() || rel.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
            return Err(FetchError::Archive(format!("{}: unsafe member path {}", archive.display(), rel.display())));
        }
        let out = dest.join(&rel);
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        let tmp = out.with_extension("unpacking");
        let mut w = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
        std::io::copy(&mut entry, &mut w).map_err(err)?;
        std::fs::rename(&tmp, &out).map_err(|e| io(&out, e))?;
        count += 1;
    }
    log(&format!("{}: unpacked {count} files", archive.display()));
    Ok(())
}
