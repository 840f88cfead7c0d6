//! A private `redis-server` that speaks only TLS, with a throwaway CA, a server
//! certificate for 127.0.0.1/localhost and a client certificate, all made with the
//! `openssl` CLI in the fixture's temp dir; killed on drop.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::node::{self, args, Proc, TempDir};

/// Whether the server asks TLS clients for a certificate (`tls-auth-clients`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// `no`: no client certificate is asked for.
    No,
    /// `optional`: one is verified if sent, and may be left out.
    Optional,
    /// `yes`: a client without a certificate signed by the CA is refused.
    Required,
}

impl ClientAuth {
    fn arg(self) -> &'static str {
        match self {
            ClientAuth::No => "no",
            ClientAuth::Optional => "optional",
            ClientAuth::Required => "yes",
        }
    }
}

/// A CA and the certificates it signed, as PEM files in a directory.
#[derive(Debug)]
pub struct TlsCerts {
    dir: PathBuf,
}

fn openssl(dir: &Path, a: &[&str]) {
    let out = Command::new("openssl")
        .args(a)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl ({e})"));
    assert!(
        out.status.success(),
        "openssl {a:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TlsCerts {
    /// Makes in `dir`: ca.crt/ca.key (a self-signed CA), server.crt/server.key
    /// (subjectAltName IP:127.0.0.1, DNS:localhost; serverAuth) and client.crt/client.key
    /// (CN workq-test-client; clientAuth), EC P-256 keys in PKCS#8, valid for two days.
    pub fn generate(dir: &Path) -> Self {
        let key = |name: &str| {
            openssl(
                dir,
                &[
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-out",
                    name,
                ],
            );
        };
        key("ca.key");
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "ca.key",
                "-sha256",
                "-days",
                "2",
                "-subj",
                "/CN=workq test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-out",
                "ca.crt",
            ],
        );
        for (name, cn, ext) in [
            (
                "server",
                "localhost",
                "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
            ),
            (
                "client",
                "workq-test-client",
                "extendedKeyUsage=clientAuth\n",
            ),
        ] {
            key(&format!("{name}.key"));
            let ext_file = format!("{name}.ext");
            std::fs::write(
                dir.join(&ext_file),
                format!(
                    "basicConstraints=critical,CA:FALSE\n\
                     keyUsage=critical,digitalSignature,keyEncipherment\n{ext}"
                ),
            )
            .expect("extensions file");
            openssl(
                dir,
                &[
                    "req",
                    "-new",
                    "-key",
                    &format!("{name}.key"),
                    "-subj",
                    &format!("/CN={cn}"),
                    "-out",
                    &format!("{name}.csr"),
                ],
            );
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &format!("{name}.csr"),
                    "-CA",
                    "ca.crt",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-sha256",
                    "-extfile",
                    &ext_file,
                    "-out",
                    &format!("{name}.crt"),
                ],
            );
        }
        TlsCerts {
            dir: dir.to_owned(),
        }
    }

    /// The CA certificate (PEM).
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    /// The server certificate (PEM).
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("server.crt")
    }
    /// The server key (PEM, PKCS#8).
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server.key")
    }
    /// The client certificate (PEM).
    pub fn client_cert(&self) -> PathBuf {
        self.dir.join("client.crt")
    }
    /// The client key (PEM, PKCS#8).
    pub fn client_key(&self) -> PathBuf {
        self.dir.join("client.key")
    }

    /// The `redis-server` arguments for TLS on `tls_port` (and no plain port), with these
    /// certificates. They serve a cluster node's bus and a replica's link as well.
    pub fn server_args(&self, tls_port: u16, auth: ClientAuth) -> Vec<String> {
        vec![
            "--port".to_owned(),
            "0".to_owned(),
            "--tls-port".to_owned(),
            tls_port.to_string(),
            "--tls-cert-file".to_owned(),
            self.server_cert().display().to_string(),
            "--tls-key-file".to_owned(),
            self.server_key().display().to_string(),
            "--tls-ca-cert-file".to_owned(),
            self.ca_cert().display().to_string(),
            "--tls-auth-clients".to_owned(),
            auth.arg().to_owned(),
        ]
    }

    /// `redis-cli --tls` arguments that trust the CA and present the client certificate.
    pub fn cli_args(&self) -> Vec<String> {
        vec![
            "--tls".to_owned(),
            "--cacert".to_owned(),
            self.ca_cert().display().to_string(),
            "--cert".to_owned(),
            self.client_cert().display().to_string(),
            "--key".to_owned(),
            self.client_key().display().to_string(),
        ]
    }
}

/// A running TLS-only `redis-server`.
#[derive(Debug)]
pub struct TlsServer {
    proc: Proc,
    certs: TlsCerts,
    auth: ClientAuth,
    /// Last, so that the process is gone before its directory is.
    dir: TempDir,
}

impl TlsServer {
    /// Makes the certificates, starts the server on a free port with `tls-auth-clients`
    /// as given, and waits until `redis-cli --tls` (with the CA and the client
    /// certificate) gets PONG from it.
    pub fn start(auth: ClientAuth) -> Self {
        let dir = TempDir::new("tls");
        let certs = TlsCerts::generate(&dir.sub("certs"));
        for _ in 0..5 {
            let port = crate::free_port();
            let d = dir.sub(&format!("server-{port}"));
            let mut a = certs.server_args(port, auth);
            a.extend(
                [
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    &d.display().to_string(),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                    "--logfile",
                    "",
                ]
                .map(str::to_owned),
            );
            let mut proc = Proc::spawn(port, &d, &args(a));
            if wait_ready(&mut proc, &certs) {
                return TlsServer {
                    proc,
                    certs,
                    auth,
                    dir,
                };
            }
        }
        panic!("the TLS redis-server did not start (is redis-server built with TLS?)");
    }

    /// Runs `redis-cli --tls ... <command>` against the server (with the CA and the
    /// client certificate); its stdout, or its stderr as the error.
    pub fn cli(&self, command: &[&str]) -> Result<String, String> {
        cli(self.proc.port, &self.certs, command)
    }

    /// Its TLS port.
    pub fn port(&self) -> u16 {
        self.proc.port
    }

    /// `rediss://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.proc.port)
    }

    /// The certificates (CA, server, client).
    pub fn certs(&self) -> &TlsCerts {
        &self.certs
    }

    /// The `tls-auth-clients` it runs with.
    pub fn client_auth(&self) -> ClientAuth {
        self.auth
    }

    /// The server's log so far.
    pub fn log(&self) -> Vec<String> {
        self.proc.log()
    }

    /// Where the fixture's files are.
    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    /// Whether a plain-TCP PING to the TLS port fails (it should: the server reads the
    /// bytes as a TLS handshake and drops the connection).
    pub fn plain_ping_fails(&self) -> bool {
        node::query::<String>(self.proc.port, &redis::cmd("PING")).is_err()
    }
}

impl TlsServer {
    /// Starts a plain-TCP sentinel that monitors this server as `master` (quorum 1, no
    /// replicas: it never fails over), reaching it over TLS (`tls-replication`) with the
    /// client certificate, and waits until it answers PING.
    pub fn start_sentinel(&self, master: &str) -> TlsSentinel {
        let dir = TempDir::new("tls-sentinel");
        for _ in 0..5 {
            let port = crate::free_port();
            let d = dir.sub(&format!("sentinel-{port}"));
            let conf = d.join("sentinel.conf");
            let c = &self.certs;
            let text = format!(
                "port {port}\n\
                 bind 127.0.0.1\n\
                 daemonize no\n\
                 logfile \"\"\n\
                 dir \"{dir}\"\n\
                 tls-replication yes\n\
                 tls-cert-file \"{cert}\"\n\
                 tls-key-file \"{key}\"\n\
                 tls-ca-cert-file \"{ca}\"\n\
                 sentinel monitor {master} 127.0.0.1 {primary} 1\n",
                dir = d.display(),
                cert = c.client_cert().display(),
                key = c.client_key().display(),
                ca = c.ca_cert().display(),
                primary = self.proc.port,
            );
            std::fs::write(&conf, text).expect("sentinel.conf");
            let mut proc = Proc::spawn(
                port,
                &d,
                &args([conf.display().to_string(), "--sentinel".to_owned()]),
            );
            if proc.wait_ready() {
                return TlsSentinel { proc, _dir: dir };
            }
        }
        panic!("redis-server --sentinel did not start");
    }
}

/// A plain-TCP sentinel monitoring a [`TlsServer`]; killed on drop.
#[derive(Debug)]
pub struct TlsSentinel {
    proc: Proc,
    /// Last, so that the process is gone before its directory is.
    _dir: TempDir,
}

impl TlsSentinel {
    /// Its port.
    pub fn port(&self) -> u16 {
        self.proc.port
    }

    /// Its log so far.
    pub fn log(&self) -> Vec<String> {
        self.proc.log()
    }
}

/// Another CA and certificates it signed (see [`TlsCerts::generate`]), in a temp dir
/// removed on drop: a CA that did not sign a [`TlsServer`]'s certificate.
#[derive(Debug)]
pub struct OtherCa {
    certs: TlsCerts,
    _dir: TempDir,
}

impl OtherCa {
    /// Makes the CA and its certificates.
    pub fn generate() -> Self {
        let dir = TempDir::new("other-ca");
        let certs = TlsCerts::generate(&dir.sub("certs"));
        OtherCa { certs, _dir: dir }
    }

    /// The certificates.
    pub fn certs(&self) -> &TlsCerts {
        &self.certs
    }
}

/// `redis-cli --tls` with the CA and the client certificate, against `port`.
fn cli(port: u16, certs: &TlsCerts, command: &[&str]) -> Result<String, String> {
    let out = Command::new("redis-cli")
        .args(certs.cli_args())
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(command)
        .output()
        .map_err(|e| format!("cannot run redis-cli: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    // redis-cli exits 0 on a connection error in some versions, printing it instead.
    if out.status.success() && !stdout.starts_with("Error") && !stdout.starts_with("Could not") {
        Ok(stdout)
    } else {
        Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// Waits until `redis-cli --tls` gets this process's own `INFO server` (not another
/// server that holds the port); false if the server exited first.
fn wait_ready(proc: &mut Proc, certs: &TlsCerts) -> bool {
    let started = Instant::now();
    while started.elapsed() < crate::HANG {
        if !proc.running() {
            return false;
        }
        if proc.answers_as_itself(cli(proc.port, certs, &["INFO", "server"]).ok().as_deref()) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

/// A private Redis Cluster of three primaries (no replicas) that speaks only TLS, on the
/// client port and on the cluster bus (`tls-cluster yes`), every node requiring a client
/// certificate signed by the fixture's CA (`tls-auth-clients yes`; a node presents the
/// client certificate on its bus links); killed on drop.
#[derive(Debug)]
pub struct TlsCluster {
    nodes: Vec<Proc>,
    certs: TlsCerts,
    /// Last, so that the processes are gone before their directory is.
    _dir: TempDir,
}

impl TlsCluster {
    /// Makes the certificates, starts the three nodes, creates the cluster with
    /// `redis-cli --tls --cluster create` and waits until every node says
    /// `cluster_state:ok`.
    pub fn start() -> Self {
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start() {
                Ok(c) => return c,
                Err(e) => last = e,
            }
        }
        panic!("the TLS Redis Cluster did not start: {last}");
    }

    fn try_start() -> Result<Self, String> {
        let dir = TempDir::new("tls-cluster");
        let certs = TlsCerts::generate(&dir.sub("certs"));
        let mut held = Vec::new();
        let mut ports = Vec::new();
        for _ in 0..3 {
            let (p, ls) = node::free_port_pair(10000);
            ports.push(p);
            held.extend(ls);
        }
        drop(held);
        let mut nodes = Vec::new();
        for &port in &ports {
            let d = dir.sub(&port.to_string());
            let mut a = certs.server_args(port, ClientAuth::Required);
            a.extend([
                "--tls-client-cert-file".to_owned(),
                certs.client_cert().display().to_string(),
                "--tls-client-key-file".to_owned(),
                certs.client_key().display().to_string(),
                "--tls-cluster".to_owned(),
                "yes".to_owned(),
                "--tls-replication".to_owned(),
                "yes".to_owned(),
                "--cluster-enabled".to_owned(),
                "yes".to_owned(),
                "--cluster-config-file".to_owned(),
                d.join("nodes.conf").display().to_string(),
                "--cluster-node-timeout".to_owned(),
                "1000".to_owned(),
            ]);
            a.extend(
                [
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    &d.display().to_string(),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                    "--logfile",
                    "",
                ]
                .map(str::to_owned),
            );
            nodes.push(Proc::spawn(port, &d, &args(a)));
        }
        for n in &mut nodes {
            if !wait_ready(n, &certs) {
                return Err(format!("node {} did not come up: {:?}", n.port, n.log()));
            }
        }
        let out = Command::new("redis-cli")
            .args(certs.cli_args())
            .args(["--cluster", "create"])
            .args(ports.iter().map(|p| format!("127.0.0.1:{p}")))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .map_err(|e| format!("cannot run redis-cli: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let c = TlsCluster {
            nodes,
            certs,
            _dir: dir,
        };
        let started = Instant::now();
        loop {
            let ok = c.nodes.iter().all(|n| {
                cli(n.port, &c.certs, &["CLUSTER", "INFO"])
                    .is_ok_and(|o| o.contains("cluster_state:ok"))
            });
            if ok {
                return Ok(c);
            }
            if started.elapsed() > crate::HANG {
                return Err("the nodes never all said cluster_state:ok".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The nodes' TLS ports, each a primary.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// `rediss+cluster://127.0.0.1:<p>,...` with every node as a seed.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .ports()
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("rediss+cluster://{}", seeds.join(","))
    }

    /// The certificates (CA, server, client).
    pub fn certs(&self) -> &TlsCerts {
        &self.certs
    }

    /// Runs `redis-cli --tls ... <command>` against the node on `port` (without `-c`: a
    /// key another node owns gets MOVED).
    pub fn cli(&self, port: u16, command: &[&str]) -> Result<String, String> {
        cli(port, &self.certs, command)
    }

    /// The port of the node that owns `slot`, from the first node's `CLUSTER SLOTS` (which
    /// redis-cli prints flat, one value a line: start, end, the primary's host, port, id).
    pub fn owner_of_slot(&self, slot: u16) -> u16 {
        let out = self
            .cli(self.nodes[0].port, &["CLUSTER", "SLOTS"])
            .expect("CLUSTER SLOTS");
        let lines: Vec<&str> = out.lines().map(str::trim).collect();
        // Each range: start, end, host, port, id (redis-cli prints nested arrays flat).
        for w in lines.windows(4) {
            let (Ok(start), Ok(end), Ok(port)) = (
                w[0].parse::<u16>(),
                w[1].parse::<u16>(),
                w[3].parse::<u16>(),
            ) else {
                continue;
            };
            if w[2] == "127.0.0.1" && start <= slot && slot <= end {
                return port;
            }
        }
        panic!("no owner of slot {slot} in {out:?}");
    }
}
