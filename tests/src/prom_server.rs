//! A real Prometheus server for the tests (Debian's `prometheus` binary, which
//! tests/run.sh installs), on a free port with a generated configuration, and the small
//! HTTP GET client the tests use to talk to it and to workq's endpoints.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::server::{free_port, temp_dir};
use crate::HANG;

/// `GET http://<addr><path>`, HTTP/1.1 with `Connection: close`: the status code and the
/// body. `None` when nothing answers (refused, reset, or no status line).
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Some((status, body))
}

/// The body of a chunked response.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// Percent-encodes a query string value.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A Prometheus process, stopped on drop.
#[derive(Debug)]
pub struct PrometheusServer {
    child: Child,
    addr: String,
    dir: PathBuf,
}

impl PrometheusServer {
    /// Starts Prometheus with `config` (prometheus.yml's text; `rule_files` paths are
    /// relative to the directory it is written in, given to `files` as (name, text)),
    /// and waits until it is ready. Panics, saying how to install it, if the binary is
    /// missing.
    pub fn start(config: &str, files: &[(&str, &str)]) -> Self {
        let dir = temp_dir("prometheus");
        std::fs::write(dir.join("prometheus.yml"), config).expect("write config");
        for (name, text) in files {
            std::fs::write(dir.join(name), text).expect("write a config file");
        }
        let addr = format!("127.0.0.1:{}", free_port());
        let child = match Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "prometheus is not installed: run tests/run.sh, which installs it (Debian's \
                 `prometheus` package)"
            ),
            Err(e) => panic!("cannot start prometheus: {e}"),
        };
        let p = PrometheusServer { child, addr, dir };
        p.until("Prometheus is ready", || {
            matches!(http_get(&p.addr, "/-/ready"), Some((200, _)))
        });
        p
    }

    /// `host:port` it listens on.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The `data` of an instant query (`/api/v1/query`); panics on an error status.
    pub fn query(&self, promql: &str) -> serde_json::Value {
        let path = format!("/api/v1/query?query={}", url_encode(promql));
        let (status, body) = http_get(&self.addr, &path).expect("Prometheus answers");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(status, 200, "{promql}: {body}");
        v["data"].clone()
    }

    /// The single value of an instant query whose result is one sample, if there is one.
    pub fn value(&self, promql: &str) -> Option<f64> {
        let data = self.query(promql);
        let result = data["result"].as_array()?;
        let sample = match result.as_slice() {
            [one] => one["value"][1].as_str()?.to_owned(),
            _ => return None,
        };
        sample.parse().ok()
    }

    /// The alerts (`/api/v1/alerts`): (name, state) pairs.
    pub fn alerts(&self) -> Vec<(String, String)> {
        let (_, body) = http_get(&self.addr, "/api/v1/alerts").expect("Prometheus answers");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        v["data"]["alerts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| {
                        (
                            x["labels"]["alertname"].as_str().unwrap_or("").to_owned(),
                            x["state"].as_str().unwrap_or("").to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Polls `done` until it holds (Prometheus' state changes on its own clock: scrapes
    /// and rule evaluations), panicking after [`HANG`] with `what`.
    pub fn until(&self, what: &str, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < HANG, "timed out waiting: {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
