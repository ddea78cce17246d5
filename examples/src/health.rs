//! Health checks of real servers, off the packet path: one thread per real server probes it
//! (a TCP connect to its address and the service port, or an HTTP GET with an expected
//! status) and reports each change of state on a channel. The director's loop quiesces a
//! server that went down (weight 0: its connections continue) and restores its weight when
//! it comes back.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
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
}

impl Default for HealthCheck {
    fn default() -> Self {
        Self {
            probe: Probe::Tcp,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            fall: 3,
            rise: 2,
        }
    }
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
}

/// One probe: true when the server answered as expected within the timeout.
pub fn probe_once(target: SocketAddr, check: &HealthCheck) -> bool {
    match &check.probe {
        Probe::None => true,
        Probe::Tcp => TcpStream::connect_timeout(&target, check.timeout).is_ok(),
        Probe::Http { path, expect } => http_status(target, path, check.timeout) == Some(*expect),
    }
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
pub fn spawn<K: Copy + Send + 'static>(
    key: K,
    target: SocketAddr,
    check: HealthCheck,
    healthy: bool,
    events: Sender<HealthEvent<K>>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name(format!("health {target}")).spawn(move || {
        let mut state = Hysteresis::starting(healthy);
        while !stop.load(Ordering::Relaxed) {
            let started = std::time::Instant::now();
            let ok = probe_once(target, &check);
            if let Some(healthy) = state.record(ok, &check)
                && events.send(HealthEvent { key, target, healthy }).is_err()
            {
                return;
            }
            let elapsed = started.elapsed();
            // Sleep in short steps, so a stop is noticed quickly.
            let mut left = check.interval.saturating_sub(elapsed);
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
}
