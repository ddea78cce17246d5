//! Health checks of real servers, off the packet path: one thread per real server probes it
//! and reports each change of state on a channel. The director's loop quiesces a server
//! that went down (weight 0: its connections continue) and restores its weight when it
//! comes back.
//!
//! The probes: a TCP connect to the real server's address and the service port (the default
//! of a TCP service), an HTTP GET with an expected status, a UDP datagram (the default of a
//! UDP service: down on an ICMP port unreachable, and with `expect_reply` on no answer), or
//! a TCP handshake *through the VIP* (`through_vip`): a SYN addressed to VIP:port and sent
//! to the real server's MAC, exactly as forwarded traffic is, so a real server that does not
//! hold the VIP on `lo` (the commonest LVS-DR mistake), which answers its own address but
//! drops the VIP's traffic, is marked down.

use dr_core::MacAddr;
use dr_io_afpacket::LinkSocket;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::Duration;

/// How to probe one service's real servers (`[service.health]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// No checks: the servers are always taken as healthy.
    None,
    /// A TCP connection to the real server's address and the service port.
    Tcp,
    /// An HTTP/1.0 GET of `path`, healthy when the status is `expect`.
    Http {
        /// The path to get.
        path: String,
        /// The status that means healthy.
        expect: u16,
    },
    /// A UDP datagram of `payload` to the real server's address and the service port:
    /// unhealthy when an ICMP port unreachable comes back, and, with `expect_reply`, when
    /// no datagram does within the timeout.
    Udp {
        /// The datagram's bytes.
        payload: Vec<u8>,
        /// A reply is required.
        expect_reply: bool,
    },
    /// keepalived's `HTTP_GET` / `SSL_GET`: every url's status and digest.
    HttpGet(crate::probes::HttpGet),
    /// keepalived's `MISC_CHECK`: a program's exit status.
    Misc(crate::probes::Misc),
    /// keepalived's `DNS_CHECK`: a query answered without error.
    Dns(crate::probes::Dns),
}

/// A service's health check settings; the defaults are DESIGN.md's: TCP, every second, a
/// second's timeout, down after 3 failures, up after 2 successes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    /// What to probe.
    pub probe: Probe,
    /// Time between probes.
    pub interval: Duration,
    /// How long a probe may take.
    pub timeout: Duration,
    /// Consecutive failures that take a healthy server down.
    pub fall: u32,
    /// Consecutive successes that bring a down server back.
    pub rise: u32,
    /// Probe through the VIP: a TCP handshake with VIP:port sent to the real server's MAC
    /// (only with [`Probe::Tcp`]).
    pub through_vip: bool,
    /// While a healthy server's failures are counted towards `fall`, the time to the next
    /// probe (keepalived's `delay_before_retry`); `None`: `interval`.
    pub retry_interval: Option<Duration>,
}

impl Default for HealthCheck {
    fn default() -> Self {
        Self {
            probe: Probe::Tcp,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            fall: 3,
            rise: 2,
            through_vip: false,
            retry_interval: None,
        }
    }
}

impl HealthCheck {
    /// The default check of a service of `protocol`: a TCP connect for TCP, a UDP datagram
    /// (down on ICMP port unreachable) for UDP.
    pub fn for_protocol(protocol: dr_core::Protocol) -> Self {
        match protocol {
            dr_core::Protocol::Tcp => Self::default(),
            dr_core::Protocol::Udp => Self {
                probe: Probe::Udp { payload: Vec::new(), expect_reply: false },
                ..Self::default()
            },
        }
    }
}

/// The real servers' MACs as the director knows them, for probes through the VIP.
pub type Macs = Arc<Mutex<HashMap<IpAddr, MacAddr>>>;

/// Where a probe through the VIP goes: the interface, and the VIP and port it is addressed
/// to (the real server's address finds its MAC in [`Macs`]).
#[derive(Clone, Debug)]
pub struct ThroughVip {
    /// The director's interface.
    pub interface: String,
    /// The service's VIP and port.
    pub vip: SocketAddr,
    /// The MACs of the real servers.
    pub macs: Macs,
}

/// A change of a real server's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthEvent<K> {
    /// Which server (the caller's key).
    pub key: K,
    /// Its address and the service port.
    pub target: SocketAddr,
    /// Whether it is now healthy.
    pub healthy: bool,
    /// The weight a `misc_dynamic` check asks for now.
    pub weight: Option<crate::probes::DynamicWeight>,
}

/// One probe: true when the server answered as expected within the timeout.
pub fn probe_once(target: SocketAddr, check: &HealthCheck) -> bool {
    probe_weighted(target, check).0
}

/// One probe, and the weight a `misc_dynamic` check's program asks for.
pub fn probe_weighted(
    target: SocketAddr,
    check: &HealthCheck,
) -> (bool, Option<crate::probes::DynamicWeight>) {
    let ok = match &check.probe {
        Probe::Misc(misc) => return crate::probes::misc(misc),
        Probe::HttpGet(get) => crate::probes::http_get(target, get, check.timeout),
        Probe::Dns(dns) => crate::probes::dns(target, dns, check.timeout),
        Probe::None => true,
        Probe::Tcp => TcpStream::connect_timeout(&target, check.timeout).is_ok(),
        Probe::Http { path, expect } => http_status(target, path, check.timeout) == Some(*expect),
        Probe::Udp { payload, expect_reply } => {
            udp_probe(target, payload, *expect_reply, check.timeout)
        }
    };
    (ok, None)
}

/// A UDP datagram to `target`: false on an ICMP port unreachable (a connected UDP socket
/// reports it as a refused connection), or with `expect_reply` on no answer in time.
fn udp_probe(target: SocketAddr, payload: &[u8], expect_reply: bool, timeout: Duration) -> bool {
    let any: SocketAddr = match target {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let Ok(socket) = UdpSocket::bind(any) else { return false };
    if socket.connect(target).is_err() || socket.set_read_timeout(Some(timeout)).is_err() {
        return false;
    }
    if socket.send(payload).is_err() {
        return false;
    }
    let mut buf = [0u8; 1500];
    match socket.recv(&mut buf) {
        Ok(_) => true,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            !expect_reply
        }
        Err(_) => false,
    }
}

/// A TCP handshake with the VIP through the real server at `real` (its MAC from `route`):
/// true on a SYN-ACK from VIP:port, false on a reset, no answer, or no MAC known yet.
/// The half-open connection is reset at once.
pub fn probe_through_vip(
    link: &LinkSocket,
    real: IpAddr,
    route: &ThroughVip,
    timeout: Duration,
) -> bool {
    let Some(mac) = route.macs.lock().ok().and_then(|m| m.get(&real).copied()) else {
        return false;
    };
    let vip = route.vip;
    let Some(source) = link.address_like(vip.ip()) else { return false };
    let port = 32768 + (std::process::id() as u16 ^ real_port_salt(real)) % 28000;
    let seq = u32::from(port).wrapping_mul(0x9e37_79b1) ^ 0x5a5a_5a5a;
    let frame = |flags: Flags, seq: u32, ack: u32| {
        tcp_frame(link.mac(), mac, source, vip, port, seq, ack, flags)
    };
    if link.send(&frame(Flags::Syn, seq, 0)).is_err() {
        return false;
    }
    let deadline = std::time::Instant::now() + timeout;
    let answer = link.wait_for(deadline, |bytes| answer_to(bytes, vip, source, port));
    match answer {
        Ok(Some(Answer::SynAck { seq: theirs })) => {
            let _ = link.send(&frame(Flags::Rst, seq.wrapping_add(1), theirs.wrapping_add(1)));
            true
        }
        _ => false,
    }
}

/// A salt from the real server's address, so probes of different servers use different
/// source ports.
fn real_port_salt(real: IpAddr) -> u16 {
    match real {
        IpAddr::V4(a) => u16::from_be_bytes([a.octets()[2], a.octets()[3]]),
        IpAddr::V6(a) => a.segments()[7],
    }
}

#[derive(Clone, Copy)]
enum Flags {
    Syn,
    Rst,
}

enum Answer {
    SynAck { seq: u32 },
    Reset,
}

/// A TCP segment from `source`:`port` to `vip`, in a frame from `from` to `to`.
#[allow(clippy::too_many_arguments)]
fn tcp_frame(
    from: MacAddr,
    to: MacAddr,
    source: IpAddr,
    vip: SocketAddr,
    port: u16,
    seq: u32,
    ack: u32,
    flags: Flags,
) -> Vec<u8> {
    let builder = etherparse::PacketBuilder::ethernet2(from.0, to.0);
    let builder = match (source, vip.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => builder.ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => builder.ipv6(s.octets(), d.octets(), 64),
        _ => return Vec::new(),
    };
    let builder = builder.tcp(port, vip.port(), seq, 1024);
    let builder = match flags {
        Flags::Syn => builder.syn(),
        Flags::Rst => builder.rst().ack(ack),
    };
    let mut out = Vec::with_capacity(80);
    if builder.write(&mut out, &[]).is_err() {
        return Vec::new();
    }
    out
}

/// What a frame says about our probe: a SYN-ACK or a reset from `vip` to `source`:`port`.
fn answer_to(bytes: &[u8], vip: SocketAddr, source: IpAddr, port: u16) -> Option<Answer> {
    let packet = etherparse::SlicedPacket::from_ethernet(bytes).ok()?;
    let (src, dst) = match packet.net? {
        etherparse::NetSlice::Ipv4(ip) => {
            (IpAddr::V4(ip.header().source_addr()), IpAddr::V4(ip.header().destination_addr()))
        }
        etherparse::NetSlice::Ipv6(ip) => {
            (IpAddr::V6(ip.header().source_addr()), IpAddr::V6(ip.header().destination_addr()))
        }
        _ => return None,
    };
    let etherparse::TransportSlice::Tcp(tcp) = packet.transport? else { return None };
    let ours = src == vip.ip()
        && dst == source
        && tcp.source_port() == vip.port()
        && tcp.destination_port() == port;
    if !ours {
        return None;
    }
    if tcp.rst() {
        return Some(Answer::Reset);
    }
    (tcp.syn() && tcp.ack()).then(|| Answer::SynAck { seq: tcp.sequence_number() })
}

fn http_status(target: SocketAddr, path: &str, timeout: Duration) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&target, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {}\r\nUser-Agent: dr-director\r\n\r\n",
        target.ip()
    )
    .ok()?;
    let mut head = [0u8; 32];
    let mut read = 0;
    while read < 12 {
        let n = stream.read(&mut head[read..]).ok()?;
        if n == 0 {
            break;
        }
        read += n;
    }
    // "HTTP/1.x NNN"
    let line = std::str::from_utf8(&head[..read]).ok()?;
    line.strip_prefix("HTTP/")?.split(' ').nth(1)?.get(..3)?.parse().ok()
}

/// Counts consecutive results into state changes: `fall` failures take a healthy server
/// down, `rise` successes bring it back. Servers start healthy.
#[derive(Clone, Copy, Debug)]
pub struct Hysteresis {
    healthy: bool,
    streak: u32,
}

impl Default for Hysteresis {
    fn default() -> Self {
        Self { healthy: true, streak: 0 }
    }
}

impl Hysteresis {
    /// Whether a healthy server's failures are being counted (the next probe is a retry).
    pub fn retrying(&self) -> bool {
        self.healthy && self.streak > 0
    }

    /// A server taken to be healthy or not to begin with.
    pub fn starting(healthy: bool) -> Self {
        Self { healthy, streak: 0 }
    }

    /// Takes one result; returns the new state when it changes.
    pub fn record(&mut self, ok: bool, check: &HealthCheck) -> Option<bool> {
        if ok == self.healthy {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = if self.healthy { check.fall } else { check.rise };
        if self.streak >= needed.max(1) {
            self.healthy = ok;
            self.streak = 0;
            return Some(ok);
        }
        None
    }
}

/// Starts a checker thread for one real server, taken to be `healthy` or not to begin
/// with; it reports changes on `events` until `stop` is set or the receiver is gone.
#[allow(clippy::too_many_arguments)]
pub fn spawn<K: Copy + Send + 'static>(
    key: K,
    target: SocketAddr,
    check: HealthCheck,
    through: Option<ThroughVip>,
    healthy: bool,
    events: Sender<HealthEvent<K>>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    // A probe through the VIP needs its own packet socket (each sees every answer).
    let link = match &through {
        Some(route) => Some(LinkSocket::open(&route.interface).map_err(std::io::Error::other)?),
        None => None,
    };
    std::thread::Builder::new().name(format!("health {target}")).spawn(move || {
        let mut state = Hysteresis::starting(healthy);
        let mut weight = None;
        while !stop.load(Ordering::Relaxed) {
            let started = std::time::Instant::now();
            let (ok, asked) = match (&link, &through) {
                (Some(link), Some(route)) => {
                    (probe_through_vip(link, target.ip(), route, check.timeout), None)
                }
                _ => probe_weighted(target, &check),
            };
            let changed = state.record(ok, &check);
            let reweighted = ok && asked.is_some() && asked != weight;
            if reweighted {
                weight = asked;
            }
            if (changed.is_some() || reweighted)
                && events.send(HealthEvent { key, target, healthy: state.healthy, weight }).is_err()
            {
                return;
            }
            let elapsed = started.elapsed();
            // Sleep in short steps, so a stop is noticed quickly.
            let wait = match check.retry_interval {
                Some(retry) if state.retrying() => retry,
                _ => check.interval,
            };
            let mut left = wait.saturating_sub(elapsed);
            while !left.is_zero() && !stop.load(Ordering::Relaxed) {
                let step = left.min(Duration::from_millis(100));
                std::thread::sleep(step);
                left = left.saturating_sub(step);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn fall_and_rise_counts() {
        let check = HealthCheck::default();
        let mut h = Hysteresis::default();
        assert_eq!(h.record(false, &check), None);
        assert_eq!(h.record(false, &check), None);
        assert_eq!(h.record(true, &check), None, "a success resets the streak");
        assert_eq!(h.record(false, &check), None);
        assert_eq!(h.record(false, &check), None);
        assert_eq!(h.record(false, &check), Some(false), "down after 3 in a row");
        assert_eq!(h.record(true, &check), None);
        assert_eq!(h.record(true, &check), Some(true), "up after 2 in a row");
    }

    #[test]
    fn tcp_and_http_probes_on_loopback() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            for stream in listener.incoming().take(3) {
                let mut stream = stream.unwrap();
                // The whole request head, however it arrives (the TCP probe sends none).
                let mut request = Vec::new();
                let mut buf = [0u8; 256];
                while !request.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let request = String::from_utf8_lossy(&request).into_owned();
                let status =
                    if request.starts_with("GET /ok ") { "200 OK" } else { "404 Not Found" };
                let _ = write!(stream, "HTTP/1.0 {status}\r\n\r\n");
            }
        });
        let tcp = HealthCheck::default();
        assert!(probe_once(addr, &tcp));
        let http = |path: &str| HealthCheck {
            probe: Probe::Http { path: path.into(), expect: 200 },
            ..HealthCheck::default()
        };
        assert!(probe_once(addr, &http("/ok")));
        assert!(!probe_once(addr, &http("/missing")));
        server.join().unwrap();
        // Nobody listening any more.
        let closed = HealthCheck { timeout: Duration::from_millis(200), ..HealthCheck::default() };
        assert!(!probe_once(addr, &closed));
    }

    #[test]
    fn udp_probes_on_loopback() {
        let check = |expect_reply| HealthCheck {
            probe: Probe::Udp { payload: b"ping".to_vec(), expect_reply },
            timeout: Duration::from_millis(300),
            ..HealthCheck::default()
        };
        // A server that answers: healthy either way.
        let echo = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = echo.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            for _ in 0..2 {
                let (n, peer) = echo.recv_from(&mut buf).unwrap();
                assert_eq!(&buf[..n], b"ping", "the configured payload");
                echo.send_to(&buf[..n], peer).unwrap();
            }
        });
        assert!(probe_once(addr, &check(false)));
        assert!(probe_once(addr, &check(true)));
        server.join().unwrap();
        // A server that takes the datagram and says nothing: healthy unless a reply is
        // expected.
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap();
        assert!(probe_once(addr, &check(false)));
        assert!(!probe_once(addr, &check(true)));
        drop(silent);
        // Nobody on the port: the ICMP port unreachable takes it down.
        assert!(!probe_once(addr, &check(false)));
    }

    #[test]
    fn the_default_check_fits_the_protocol() {
        assert_eq!(HealthCheck::for_protocol(dr_core::Protocol::Tcp).probe, Probe::Tcp);
        assert_eq!(
            HealthCheck::for_protocol(dr_core::Protocol::Udp).probe,
            Probe::Udp { payload: Vec::new(), expect_reply: false }
        );
    }
}
