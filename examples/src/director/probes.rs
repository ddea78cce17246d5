//! keepalived's checkers as probes of the director's health checker: `HTTP_GET` and
//! `SSL_GET` (every url's status among the expected ones and, with `digest`, the MD5 of its
//! body; over TLS without verifying the server's certificate, as keepalived does not),
//! `MISC_CHECK` (a program's exit status, with `misc_dynamic` the weight from it; the
//! program leads a process group of its own, ended whole at `misc_timeout`) and
//! `DNS_CHECK` (a query answered with the same id and no error code). A response's status
//! line and headers are read as bytes, as keepalived reads them.

use md5::{Digest, Md5};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most of a response read (keepalived reads the whole body to hash it).
const MAX_RESPONSE: usize = 16 << 20;

/// The HTTP version of the request (`http_protocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpVersion {
    /// `1.0` (the default).
    V1_0,
    /// `1.0C`: 1.0 with `Connection: close`.
    V1_0Close,
    /// `1.1`, with `Connection: close`.
    V1_1,
}

/// One `url { }` of an `HTTP_GET` or `SSL_GET`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// `path`.
    pub path: String,
    /// `status_code`: the statuses that pass, as inclusive ranges (default 200-299).
    pub status: Vec<(u16, u16)>,
    /// `digest`: the MD5 the body must have.
    pub digest: Option<[u8; 16]>,
    /// `virtualhost` of this url.
    pub host: Option<String>,
}

/// TLS for `SSL_GET`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tls {
    /// The server name to send (`enable_sni`, `sni_name`); none: no SNI.
    pub sni: Option<String>,
}

/// An `HTTP_GET` or `SSL_GET` checker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpGet {
    /// The urls, each checked in turn; all must pass.
    pub urls: Vec<Url>,
    /// The request's version.
    pub version: HttpVersion,
    /// The `Host:` header (`virtualhost`); none: the address and port.
    pub host: Option<String>,
    /// TLS (`SSL_GET`).
    pub tls: Option<Tls>,
}

/// A `MISC_CHECK`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Misc {
    /// The program and its arguments (`misc_path`).
    pub argv: Vec<String>,
    /// How long it may run (`misc_timeout`, default `delay_loop`); then it is killed and
    /// the check fails.
    pub timeout: Duration,
    /// `misc_dynamic`: exit status 2 to 255 passes and sets the weight to status - 2.
    pub dynamic: bool,
}

/// A `DNS_CHECK` query type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsType {
    /// A.
    A,
    /// NS.
    Ns,
    /// CNAME.
    Cname,
    /// SOA (the default).
    Soa,
    /// MX.
    Mx,
    /// TXT.
    Txt,
    /// AAAA.
    Aaaa,
}

impl DnsType {
    /// The query type's number.
    pub const fn code(self) -> u16 {
        match self {
            Self::A => 1,
            Self::Ns => 2,
            Self::Cname => 5,
            Self::Soa => 6,
            Self::Mx => 15,
            Self::Txt => 16,
            Self::Aaaa => 28,
        }
    }
}

impl std::str::FromStr for DnsType {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "A" => Self::A,
            "NS" => Self::Ns,
            "CNAME" => Self::Cname,
            "SOA" => Self::Soa,
            "MX" => Self::Mx,
            "TXT" => Self::Txt,
            "AAAA" => Self::Aaaa,
            _ => return Err("not a query type: give A, NS, CNAME, SOA, MX, TXT or AAAA"),
        })
    }
}

/// A `DNS_CHECK`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dns {
    /// `type`.
    pub qtype: DnsType,
    /// `name` (default `.`).
    pub name: String,
}

/// The weight a `misc_dynamic` program's exit status 2 to 255 asks for: status - 2. Exit
/// status 0 asks for none: the weight stays as the last status set it, as keepalived's
/// `misc_check_child_thread` calls `update_svr_wgt` only for a status other than 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DynamicWeight(pub u32);

/// Whether every url answers as expected.
pub fn http_get(target: SocketAddr, check: &HttpGet, timeout: Duration) -> bool {
    check.urls.iter().all(|url| http_url(target, check, url, timeout).unwrap_or(false))
}

fn request(target: SocketAddr, check: &HttpGet, url: &Url) -> String {
    let (minor, close) = match check.version {
        HttpVersion::V1_0 => (0, ""),
        HttpVersion::V1_0Close => (0, "Connection: close\r\n"),
        HttpVersion::V1_1 => (1, "Connection: close\r\n"),
    };
    let host = match url.host.as_ref().or(check.host.as_ref()) {
        Some(host) => host.clone(),
        None => match target.ip() {
            IpAddr::V4(a) => format!("{a}:{}", target.port()),
            IpAddr::V6(a) => format!("[{a}]:{}", target.port()),
        },
    };
    format!(
        "GET {} HTTP/1.{minor}\r\nUser-Agent: KeepAliveClient\r\n{close}Host: {host}\r\n\r\n",
        url.path
    )
}

fn http_url(target: SocketAddr, check: &HttpGet, url: &Url, timeout: Duration) -> Option<bool> {
    let deadline = Instant::now() + timeout;
    let tcp = TcpStream::connect_timeout(&target, timeout).ok()?;
    tcp.set_read_timeout(Some(timeout)).ok()?;
    tcp.set_write_timeout(Some(timeout)).ok()?;
    let request = request(target, check, url);
    let response = match &check.tls {
        None => exchange(tcp, &request, deadline)?,
        Some(tls) => {
            let name = match &tls.sni {
                Some(name) => rustls::pki_types::ServerName::try_from(name.clone()).ok()?,
                None => rustls::pki_types::ServerName::IpAddress(target.ip().into()),
            };
            let conn = rustls::ClientConnection::new(tls_config()?, name).ok()?;
            let stream = rustls::StreamOwned::new(conn, tcp);
            exchange(stream, &request, deadline)?
        }
    };
    Some(judge(&response, url))
}

/// Whether a whole response passes the url: its status, and its body's MD5.
///
/// Read as bytes, as keepalived's `extract_html` and `extract_status_code` (`lib/html.c`)
/// read them, so a status line or header that is not UTF-8 does not fail the check: the
/// head must end (`\r\n\r\n`); the status is the three digits after the first space of
/// the first line, followed by a space.
pub fn judge(response: &[u8], url: &Url) -> bool {
    let Some(head_end) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let Some(status) = status_code(&response[..head_end]) else { return false };
    if !url.status.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status)) {
        return false;
    }
    match url.digest {
        None => true,
        Some(want) => Md5::digest(&response[head_end + 4..]).as_slice() == want,
    }
}

/// The status code of a response head, as `extract_status_code` finds it: the first word of
/// the first line, a space, exactly three digits, a space.
fn status_code(head: &[u8]) -> Option<u16> {
    let space = head.iter().position(|&b| b == b' ' || b == b'\r')?;
    if head[space] != b' ' {
        return None;
    }
    match head.get(space + 1..space + 5)? {
        [a, b, c, b' '] if [a, b, c].iter().all(|d| d.is_ascii_digit()) => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

/// Sends the request and reads until the server closes (or the limit or the deadline).
fn exchange<S: Read + Write>(mut stream: S, request: &str, deadline: Instant) -> Option<Vec<u8>> {
    stream.write_all(request.as_bytes()).ok()?;
    stream.flush().ok()?;
    let mut response = Vec::new();
    let mut buf = [0u8; 8192];
    while response.len() < MAX_RESPONSE && Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            // A TLS peer that closes without close_notify: what came is what there is.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(_) if !response.is_empty() => break,
            Err(_) => return None,
        }
    }
    Some(response)
}

/// The TLS client of `SSL_GET`: any certificate is taken (keepalived does not verify the
/// server's either); the handshake's signatures are still checked.
fn tls_config() -> Option<Arc<rustls::ClientConfig>> {
    static CONFIG: std::sync::OnceLock<Option<Arc<rustls::ClientConfig>>> =
        std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let verifier = Arc::new(AnyCertificate(Arc::clone(&provider)));
            let builder = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .ok()?;
            Some(Arc::new(
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(verifier)
                    .with_no_client_auth(),
            ))
        })
        .clone()
}

#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Runs the program: passes on exit status 0 (and, with `misc_dynamic`, 2 to 255, with the
/// weight status - 2); fails on 1, any other status, a signal, or running past the timeout.
///
/// As keepalived runs a script (`check_misc.c`, `notify.c`), the program is the leader of a
/// process group of its own; past the timeout the whole group gets `SIGTERM`, and `SIGKILL`
/// [`MISC_GRACE`] later (at once if the program is gone by then, so that no child it started
/// outlives it). keepalived sends the `SIGKILL` only to a group whose leader has not exited.
pub fn misc(check: &Misc) -> (bool, Option<DynamicWeight>) {
    let Some((program, args)) = check.argv.split_first() else { return (false, None) };
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    let Ok(mut child) = child else { return (false, None) };
    let deadline = Instant::now() + check.timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                kill_group(&child);
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => break None,
        }
    };
    match status.and_then(|s| s.code()) {
        Some(0) => (true, None),
        Some(code @ 2..=255) if check.dynamic => {
            (true, Some(DynamicWeight(u32::try_from(code - 2).unwrap_or(0))))
        }
        _ => (false, None),
    }
}

/// How long a timed-out `MISC_CHECK`'s group has between `SIGTERM` and `SIGKILL`
/// (keepalived's 2 seconds).
pub const MISC_GRACE: Duration = Duration::from_secs(2);

/// Ends the process group `child` leads: `SIGTERM`, then `SIGKILL` once the leader has
/// exited or [`MISC_GRACE`] has passed. The leader is not reaped here (the caller waits for
/// it), so while it is a zombie its pid, the group's id, cannot be another group's.
fn kill_group(child: &std::process::Child) {
    use rustix::process::{Pid, Signal, WaitId, WaitIdOptions, kill_process_group, waitid};
    let group = Pid::from_child(child);
    let _ = kill_process_group(group, Signal::TERM);
    let grace = Instant::now() + MISC_GRACE;
    while Instant::now() < grace {
        let exited = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT | WaitIdOptions::NOHANG;
        match waitid(WaitId::Pid(group), exited) {
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            _ => break,
        }
    }
    let _ = kill_process_group(group, Signal::KILL);
}

/// The query of a `DNS_CHECK` with id `id`: recursion desired, one question of class IN.
pub fn dns_query(check: &Dns, id: u16) -> Vec<u8> {
    let mut q = Vec::with_capacity(32 + check.name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&0x0100u16.to_be_bytes());
    q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    for label in check.name.split('.').filter(|l| !l.is_empty()) {
        let label = &label.as_bytes()[..label.len().min(63)];
        q.push(label.len() as u8);
        q.extend_from_slice(label);
    }
    q.push(0);
    q.extend_from_slice(&check.qtype.code().to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    q
}

/// Whether `reply` answers query `id`: the same id, the response bit, and no error code.
pub fn dns_answers(reply: &[u8], id: u16) -> bool {
    reply.len() >= 12
        && u16::from_be_bytes([reply[0], reply[1]]) == id
        && reply[2] & 0x80 != 0
        && reply[3] & 0x0f == 0
}

/// Sends the query over UDP and waits for its answer.
pub fn dns(target: SocketAddr, check: &Dns, timeout: Duration) -> bool {
    let any: SocketAddr = match target {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let Ok(socket) = UdpSocket::bind(any) else { return false };
    if socket.connect(target).is_err() {
        return false;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let id = (nanos ^ std::process::id().rotate_left(16)) as u16;
    if socket.send(&dns_query(check, id)).is_err() {
        return false;
    }
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || socket.set_read_timeout(Some(left)).is_err() {
            return false;
        }
        match socket.recv(&mut buf) {
            Ok(n) if dns_answers(&buf[..n], id) => return true,
            // Another id: a late answer to an earlier query; wait on.
            Ok(n) if n >= 2 && u16::from_be_bytes([buf[0], buf[1]]) != id => {}
            Ok(_) | Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_ranges_and_the_body_digest() {
        let url = |digest| Url {
            path: "/".into(),
            status: vec![(200, 299), (304, 304)],
            digest,
            host: None,
        };
        // MD5("hello") = 5d41402abc4b2a76b9719d911017c592.
        let md5 = [
            0x5d, 0x41, 0x40, 0x2a, 0xbc, 0x4b, 0x2a, 0x76, 0xb9, 0x71, 0x9d, 0x91, 0x10, 0x17,
            0xc5, 0x92,
        ];
        assert!(judge(b"HTTP/1.0 204 No Content\r\n\r\n", &url(None)));
        assert!(judge(b"HTTP/1.1 304 Not Modified\r\n\r\n", &url(None)));
        assert!(!judge(b"HTTP/1.0 500 Oops\r\n\r\n", &url(None)));
        assert!(judge(b"HTTP/1.0 200 OK\r\nX: y\r\n\r\nhello", &url(Some(md5))));
        assert!(!judge(b"HTTP/1.0 200 OK\r\n\r\nhello!", &url(Some(md5))));
    }

    #[test]
    fn the_status_line_and_headers_are_read_as_bytes() {
        let url = Url { path: "/".into(), status: vec![(200, 299)], digest: None, host: None };
        // A header and a reason phrase in Latin-1 (not UTF-8): keepalived reads bytes.
        assert!(judge(b"HTTP/1.1 200 Gr\xfc\xdfe\r\nX-Name: caf\xe9\r\n\r\nbody", &url));
        assert!(judge(b"HTTP/1.1 200 OK\r\nServer: \xff\xfe\r\n\r\n", &url));
        assert!(!judge(b"HTTP/1.1 500 \xff\r\n\r\n", &url));
        // extract_status_code's rules, worked from lib/html.c: three digits between the
        // first space and another space on the first line; the head must be complete.
        assert!(!judge(b"HTTP/1.1 200\r\n\r\n", &url), "no space after the code");
        assert!(!judge(b"HTTP/1.1 2000 OK\r\n\r\n", &url), "four digits");
        assert!(!judge(b"HTTP/1.1  200 OK\r\n\r\n", &url), "two spaces");
        assert!(!judge(b"HTTP/1.1\r\n200 OK\r\n\r\n", &url), "not on the first line");
        assert!(!judge(b"HTTP/1.1 200 OK\r\n", &url), "the head does not end");
        assert!(judge(b"\xffTTP/1.1 200 OK\r\n\r\n", &url), "keepalived checks no version");
    }

    #[test]
    fn the_dns_query_and_its_answer() {
        let q = dns_query(&Dns { qtype: DnsType::A, name: "example.com".into() }, 0x1234);
        assert_eq!(
            q,
            b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01"
        );
        let mut answer = q.clone();
        answer[2] |= 0x80;
        assert!(dns_answers(&answer, 0x1234));
        assert!(!dns_answers(&answer, 0x1235), "another id");
        assert!(!dns_answers(&q, 0x1234), "not a response");
        answer[3] |= 3;
        assert!(!dns_answers(&answer, 0x1234), "NXDOMAIN");
    }

    #[test]
    fn misc_exit_statuses() {
        let run = |script: &str, dynamic| {
            misc(&Misc {
                argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
                timeout: Duration::from_secs(5),
                dynamic,
            })
        };
        assert_eq!(run("exit 0", false), (true, None));
        assert_eq!(run("exit 1", false), (false, None));
        assert_eq!(run("exit 12", false), (false, None));
        assert_eq!(run("exit 12", true), (true, Some(DynamicWeight(10))));
        // 0 passes and sets no weight (keepalived's "legacy case of status being 0").
        assert_eq!(run("exit 0", true), (true, None));
        assert_eq!(run("exit 1", true), (false, None));
        let slow = Misc {
            argv: vec!["/bin/sh".into(), "-c".into(), "sleep 5".into()],
            timeout: Duration::from_millis(100),
            dynamic: false,
        };
        assert_eq!(misc(&slow), (false, None), "killed at its timeout");
    }

    #[test]
    fn a_timed_out_misc_check_leaves_no_child_behind() {
        // The script starts a child that would outlive it and records its pid; the timeout
        // ends the script's whole process group, as keepalived's kill(-pid, sig) does.
        let dir = std::env::temp_dir().join(format!("dr-misc-group-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("sleep.pid");
        let script = format!("sleep 60 & echo $! > {}; wait", pidfile.display());
        let check = Misc {
            argv: vec!["/bin/sh".into(), "-c".into(), script],
            timeout: Duration::from_millis(300),
            dynamic: false,
        };
        assert_eq!(misc(&check), (false, None));
        let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        // The sleep got SIGTERM with its group; it is gone (or a zombie reparented to init,
        // which /proc shows as state Z) within a moment.
        let gone = || match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat.rsplit(')').next().is_some_and(|s| s.trim_start().starts_with('Z')),
        };
        let until = Instant::now() + Duration::from_secs(5);
        while !gone() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(gone(), "the script's sleep {pid} outlived its timeout");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
