//! Downloads against a local HTTP server on 127.0.0.1 that this test runs (bounded: a fixed number of
//! connections, each with a read timeout): a clean download, a corrupted file, a transfer that breaks off
//! and resumes with a Range request, a server that ignores Range, and a CIFAR archive that unpacks into a
//! loadable dataset.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use hyperdistill::data::fetch::{self, FetchError, Resource};

#[derive(Clone, Copy)]
enum Mode {
    Normal,
    /// The first request sends the headers of the full body and then only half of it.
    BreakOnce,
    /// Always answers 200 with the whole file.
    IgnoreRange,
    /// The first request reads the request and never answers (for longer than the client waits).
    SilentOnce,
    /// The first request sends the headers and half of the body, then stalls (longer than the client waits).
    StallOnce,
}

/// How long the stalling modes hold a connection silent: well past the 1-second read timeout of the test.
const STALL: std::time::Duration = std::time::Duration::from_secs(4);

struct Server {
    base: String,
    /// (path, Range header) of every request seen
    log: Arc<Mutex<Vec<(String, Option<String>)>>>,
}

fn serve(files: HashMap<String, (Vec<u8>, Mode)>, max_connections: usize) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(vec![]));
    let log2 = log.clone();
    std::thread::spawn(move || {
        let mut broke = std::collections::HashSet::new();
        for stream in listener.incoming().take(max_connections) {
            let Ok(mut stream) = stream else { continue };
            stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).ok();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            let mut range = None;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    if k.eq_ignore_ascii_case("range") {
                        range = Some(v.trim().to_string());
                    }
                }
            }
            log2.lock().unwrap().push((path.clone(), range.clone()));
            let Some((body, mode)) = files.get(&path) else {
                let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                continue;
            };
            if matches!(mode, Mode::SilentOnce) && broke.insert(path.clone()) {
                // held open, silent, on a thread of its own so that the next connection is served
                std::thread::spawn(move || {
                    std::thread::sleep(STALL);
                    drop(stream);
                });
                continue;
            }
            let start = match (mode, &range) {
                (Mode::IgnoreRange, _) | (_, None) => 0,
                (_, Some(r)) => r.trim_start_matches("bytes=").trim_end_matches('-').parse::<usize>().unwrap_or(0),
            };
            let part = &body[start.min(body.len())..];
            let status = if start > 0 { "206 Partial Content" } else { "200 OK" };
            let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", part.len());
            let _ = stream.write_all(head.as_bytes());
            if matches!(mode, Mode::StallOnce) && broke.insert(path.clone()) {
                let _ = stream.write_all(&part[..part.len() / 2]);
                let _ = stream.flush();
                std::thread::spawn(move || {
                    std::thread::sleep(STALL);
                    drop(stream);
                });
                continue;
            }
            if matches!(mode, Mode::BreakOnce) && broke.insert(path.clone()) {
                let _ = stream.write_all(&part[..part.len() / 2]);
                let _ = stream.flush();
                drop(stream); // the connection closes mid-body
                continue;
            }
            let _ = stream.write_all(part);
        }
    });
    Server { base, log }
}

fn md5_hex(b: &[u8]) -> String {
    use md5::Digest;
    md5::Md5::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

fn payload(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn tmp(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("hd-fetch-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    p
}

fn res(server: &Server, file: &str, md5: String) -> Resource {
    Resource { file: file.to_string(), url: format!("{}/{file}", server.base), md5 }
}

#[test]
fn download_verify_resume_and_reject() {
    let good = payload(300_000, 1);
    let flaky = payload(200_000, 2);
    let norange = payload(150_000, 3);
    let corrupt_served = payload(1000, 4);
    let mut files = HashMap::new();
    files.insert("/good.bin".to_string(), (good.clone(), Mode::Normal));
    files.insert("/flaky.bin".to_string(), (flaky.clone(), Mode::BreakOnce));
    files.insert("/norange.bin".to_string(), (norange.clone(), Mode::IgnoreRange));
    files.insert("/corrupt.bin".to_string(), (corrupt_served, Mode::Normal));
    let server = serve(files, 20);
    let dir = tmp("main");
    let mut log = |m: &str| println!("{m}");

    // 1. a clean download lands verified, with no .part left
    fetch::fetch_resources(&[res(&server, "good.bin", md5_hex(&good))], &dir, fetch::Timeouts::default(), &mut log).unwrap();
    assert_eq!(std::fs::read(dir.join("good.bin")).unwrap(), good);
    assert!(!dir.join("good.bin.part").exists());
    // present and valid: no second request
    let before = server.log.lock().unwrap().len();
    fetch::fetch_resources(&[res(&server, "good.bin", md5_hex(&good))], &dir, fetch::Timeouts::default(), &mut log).unwrap();
    assert_eq!(server.log.lock().unwrap().len(), before);

    // 2. corrupted content: refused, nothing left behind
    let e = fetch::fetch_resources(&[res(&server, "corrupt.bin", md5_hex(b"what it should be"))], &dir, fetch::Timeouts::default(), &mut log).unwrap_err();
    println!("{e}");
    assert!(matches!(e, FetchError::Checksum { .. }), "{e:?}");
    assert!(!dir.join("corrupt.bin").exists() && !dir.join("corrupt.bin.part").exists());

    // 3. a transfer that breaks off keeps its part; the next run resumes it with a Range request
    let r = res(&server, "flaky.bin", md5_hex(&flaky));
    let e = fetch::fetch_resources(std::slice::from_ref(&r), &dir, fetch::Timeouts::default(), &mut log).unwrap_err();
    println!("{e}");
    assert!(matches!(e, FetchError::Interrupted { .. }), "{e:?}");
    let partial = std::fs::metadata(dir.join("flaky.bin.part")).unwrap().len();
    assert_eq!(partial, 100_000);
    assert!(!dir.join("flaky.bin").exists());
    fetch::fetch_resources(&[r], &dir, fetch::Timeouts::default(), &mut log).unwrap();
    assert_eq!(std::fs::read(dir.join("flaky.bin")).unwrap(), flaky);
    let seen = server.log.lock().unwrap().clone();
    assert!(seen.contains(&("/flaky.bin".to_string(), Some("bytes=100000-".to_string()))), "{seen:?}");

    // 4. a server that ignores Range: the stale part is restarted from zero, not appended to
    std::fs::write(dir.join("norange.bin.part"), payload(5000, 9)).unwrap();
    fetch::fetch_resources(&[res(&server, "norange.bin", md5_hex(&norange))], &dir, fetch::Timeouts::default(), &mut log).unwrap();
    assert_eq!(std::fs::read(dir.join("norange.bin")).unwrap(), norange);

    // 5. an unknown file is an HTTP error naming the URL
    let e = fetch::fetch_resources(&[res(&server, "missing.bin", md5_hex(b""))], &dir, fetch::Timeouts::default(), &mut log).unwrap_err();
    assert!(e.to_string().contains("missing.bin") && e.to_string().contains("404"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn silent_and_stalled_servers_time_out_and_the_retry_resumes() {
    let silent = payload(50_000, 5);
    let stall = payload(80_000, 6);
    let mut files = HashMap::new();
    files.insert("/silent.bin".to_string(), (silent.clone(), Mode::SilentOnce));
    files.insert("/stall.bin".to_string(), (stall.clone(), Mode::StallOnce));
    let server = serve(files, 6);
    let dir = tmp("timeouts");
    let mut log = |m: &str| println!("{m}");
    let t = fetch::Timeouts { connect: std::time::Duration::from_secs(5), read: std::time::Duration::from_secs(1) };
    // a server that accepts and never answers
    let clock = std::time::Instant::now();
    let e = fetch::fetch_resources(&[res(&server, "silent.bin", md5_hex(&silent))], &dir, t, &mut log).unwrap_err();
    println!("{e} (after {:.1} s)", clock.elapsed().as_secs_f64());
    assert!(matches!(e, FetchError::TimedOut { .. }) && e.to_string().contains("--read-timeout"), "{e:?}");
    assert!(clock.elapsed() < STALL, "the client waited for the server to give up");
    fetch::fetch_resources(&[res(&server, "silent.bin", md5_hex(&silent))], &dir, t, &mut log).unwrap();
    assert_eq!(std::fs::read(dir.join("silent.bin")).unwrap(), silent);
    // a server that stalls mid-body: the part is kept and the next run resumes it
    let e = fetch::fetch_resources(&[res(&server, "stall.bin", md5_hex(&stall))], &dir, t, &mut log).unwrap_err();
    println!("{e}");
    assert!(matches!(e, FetchError::TimedOut { .. }) && e.to_string().contains("40000 bytes"), "{e:?}");
    assert_eq!(std::fs::metadata(dir.join("stall.bin.part")).unwrap().len(), 40_000);
    fetch::fetch_resources(&[res(&server, "stall.bin", md5_hex(&stall))], &dir, t, &mut log).unwrap();
    assert_eq!(std::fs::read(dir.join("stall.bin")).unwrap(), stall);
    let seen = server.log.lock().unwrap().clone();
    assert!(seen.contains(&("/stall.bin".to_string(), Some("bytes=40000-".to_string()))), "{seen:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn cifar_archive_unpacks_into_a_dataset() {
    // a CIFAR-10-binary.tar.gz in the official layout, 20 + 10 records
    let record = |i: usize| {
        let mut r = vec![(i % 10) as u8];
        r.extend((0..3072).map(|j| ((i + j) % 251) as u8));
        r
    };
    let mut tarball = vec![];
    {
        let gz = flate2::write::GzEncoder::new(&mut tarball, flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        for (name, range) in [("data_batch_1.bin", 0..20), ("test_batch.bin", 20..30)] {
            let data: Vec<u8> = range.flat_map(record).collect();
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, format!("cifar-10-batches-bin/{name}"), &data[..]).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap();
    }
    let mut files = HashMap::new();
    files.insert("/cifar-10-binary.tar.gz".to_string(), (tarball.clone(), Mode::Normal));
    let server = serve(files, 5);
    let dest = tmp("cifar");
    fetch::install(&[res(&server, "cifar-10-binary.tar.gz", md5_hex(&tarball))], &dest, fetch::Timeouts::default(), &mut |m| println!("{m}")).unwrap();
    let ds = hyperdistill::data::open_path(&dest).unwrap();
    assert_eq!((ds.name.as_str(), ds.train.len(), ds.test.len()), ("cifar10", 20, 10));
    assert_eq!(ds.train.labels[13], 3);
    std::fs::remove_dir_all(&dest).ok();
}

#[test]
fn official_resources_are_complete() {
    for k in hyperdistill::data::Known::ALL {
        let list = fetch::resources(k);
        assert!(!list.is_empty());
        for r in list {
            assert_eq!(r.md5.len(), 32, "{}", r.file);
            assert!(r.md5.chars().all(|c| c.is_ascii_hexdigit()));
            assert!(r.url.ends_with(&r.file) && r.url.starts_with("http"));
        }
    }
}
