//! dr-director's optional Prometheus endpoint (`--metrics ADDR`): the counters of the
//! director in the Prometheus text format (version 0.0.4), served over plain HTTP at
//! `/metrics` by the director's loop without blocking the workers.
//!
//! The names follow the Prometheus conventions and node_exporter's IPVS collector where it
//! has the same quantity: one metric per quantity, in base units (bytes), counters ending
//! in `_total`, and labels that split what a listing glues together:
//!
//! - `protocol` (`tcp` or `udp`, as in the configuration), `vip` and `port` name a service;
//! - `real` names one of its real servers, by address alone: in Direct Routing a real
//!   server is reached on the service's port, so its port is always the `port` label;
//! - addresses are written as they are (`2001:db8::1`), never joined to a port;
//! - with `--workers N` every sample also has `worker="0"` … (sums over workers are the
//!   director's totals), except `dr_real_up` and `dr_service_info`, which are the
//!   director's, once.
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `dr_frames_transmitted_total` | counter | `verdict` | frames sent back out: `forwarded` to a real server, `replied` (ARP, Neighbor Advertisement, echo reply) |
//! | `dr_frames_dropped_total` | counter | `reason` | frames dropped, by reason |
//! | `dr_frames_passed_total` | counter | `reason` | frames left to the host, by reason |
//! | `dr_connections_created_total` | counter | | connection entries created |
//! | `dr_connections_expired_total` | counter | | connection entries expired or removed |
//! | `dr_connections_evicted_total` | counter | | unproven entries evicted from a full table |
//! | `dr_connections_reused_total` | counter | | entries a SYN expired to be scheduled afresh |
//! | `dr_one_packet_scheduled_total` | counter | | UDP datagrams of one-packet (`ops`) services scheduled on their own, leaving no entry |
//! | `dr_templates_created_total` | counter | | persistence templates created |
//! | `dr_templates_expired_total` | counter | | persistence templates expired or removed |
//! | `dr_icmp_errors_relayed_total` | counter | | ICMP errors relayed to a real server |
//! | `dr_fragments_forwarded_total` | counter | | later fragments forwarded after their first |
//! | `dr_echo_replies_total` | counter | | pings to a VIP answered |
//! | `dr_icmp_unreachable_queued_total` | counter | | ICMP port-unreachable replies queued |
//! | `dr_icmp_unreachable_suppressed_total` | counter | | ICMP port-unreachable replies not sent |
//! | `dr_neighbours_learned_total` | counter | | real servers' MACs learned or changed |
//! | `dr_neighbour_messages_rejected_total` | counter | | ARP / ND messages not taken |
//! | `dr_connection_table_entries` | gauge | | entries in the connection table, templates included |
//! | `dr_connection_table_templates` | gauge | | persistence templates among them |
//! | `dr_connection_table_capacity` | gauge | | the table's fixed capacity |
//! | `dr_service_connections_total` | counter | service | connections scheduled |
//! | `dr_service_incoming_packets_total` | counter | service | packets forwarded |
//! | `dr_service_incoming_bytes_total` | counter | service | bytes of those packets (IP length) |
//! | `dr_real_connections_total` | counter | service, `real` | connections scheduled to the real server |
//! | `dr_real_incoming_packets_total` | counter | service, `real` | packets forwarded to it |
//! | `dr_real_incoming_bytes_total` | counter | service, `real` | bytes of those packets (IP length) |
//! | `dr_real_connections_active` | gauge | service, `real` | active connections (`ActiveConn`) |
//! | `dr_real_connections_inactive` | gauge | service, `real` | inactive connections (`InActConn`) |
//! | `dr_real_connections_persistent` | gauge | service, `real` | persistence templates bound to it (`PersistConn`) |
//! | `dr_real_weight` | gauge | service, `real` | the weight in effect (0 when quiesced) |
//! | `dr_real_up` | gauge | service, `real` | 1 when its health check passes (or it has none), 0 when down |
//! | `dr_service_info` | gauge | service, `scheduler`, `flags`, `persistent` | 1 per service: its scheduler (`mh`), flags as ipvsadm names them (`mh-fallback,mh-port`, then `ops` for one-packet scheduling; empty for none) and persistence timeout in seconds (0 for none) |
//! | `dr_ring_frames_received_total` | counter | | frames the kernel handed to the receive ring, dropped ones included |
//! | `dr_ring_frames_dropped_total` | counter | | frames dropped because the ring was full |
//! | `dr_ring_frames_truncated_total` | counter | | frames larger than a ring frame, not processed |
//! | `dr_ring_frames_vlan_lost_total` | counter | | frames whose VLAN tag could not be put back, not processed |
//! | `dr_ring_frames_unsent_total` | counter | | frames to transmit that the kernel refused |
//! | `dr_ring_freezes_total` | counter | | times the ring froze, its next block still in use |
//! | `dr_xdp_rx_ring_full_total` | counter | | `--backend afxdp`: of the dropped frames, those the full receive ring had no room for |
//! | `dr_xdp_fill_ring_empty_total` | counter | | `--backend afxdp`: times the fill ring held no free UMEM frame (in copy mode, one dropped frame each) |
//! | `dr_xdp_invalid_descriptors_total` | counter | `ring` (`rx`, `tx`) | `--backend afxdp`: descriptors found invalid (never expected) |
//!
//! "service" stands for the labels `protocol`, `vip` and `port`.

use dr_core::{Director, Protocol, ServiceKey};
use dr_io_afpacket::RingStats;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// The Content-Type of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One metric family: its HELP and TYPE lines, then its samples (`labels`, value).
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: Vec<(String, u64)>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

/// A family of one sample without labels.
fn single(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    family(out, name, kind, help, vec![(String::new(), value)]);
}

/// `key="value"`.
fn label(key: &str, value: &dyn std::fmt::Display) -> String {
    format!("{key}=\"{value}\"")
}

fn protocol(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    }
}

/// A service's labels: `protocol="tcp",vip="10.0.0.100",port="80"`.
fn service_labels(key: ServiceKey) -> String {
    format!(
        "{},{},{}",
        label("protocol", &protocol(key.protocol)),
        label("vip", &key.vip),
        label("port", &key.port)
    )
}

/// A real server's labels: its service's, then `real="10.0.0.11"`.
fn real_labels(key: ServiceKey, real: IpAddr) -> String {
    format!("{},{}", service_labels(key), label("real", &real))
}

/// The receive ring's counts as Prometheus text: what the kernel put in it, dropped for
/// want of room, and froze; what was truncated or lost its VLAN tag; what the kernel
/// refused to send. Rendered after [`render`]'s families.
pub fn render_ring(stats: RingStats, truncated: u64, vlan_lost: u64, unsent: u64) -> String {
    let mut out = String::new();
    let counter = |out: &mut String, name, help, value| single(out, name, "counter", help, value);
    counter(
        &mut out,
        "dr_ring_frames_received_total",
        "Frames the kernel handed to the receive ring, those it dropped included.",
        stats.received,
    );
    counter(
        &mut out,
        "dr_ring_frames_dropped_total",
        "Frames dropped because the receive ring was full (the director fell behind).",
        stats.dropped,
    );
    counter(
        &mut out,
        "dr_ring_frames_truncated_total",
        "Frames larger than a ring frame, truncated by the kernel and not processed.",
        truncated,
    );
    counter(
        &mut out,
        "dr_ring_frames_vlan_lost_total",
        "Frames whose VLAN tag the kernel had taken out and that could not be put back, not \
         processed.",
        vlan_lost,
    );
    counter(
        &mut out,
        "dr_ring_frames_unsent_total",
        "Frames to transmit that the kernel refused (a full device queue, a frame over the MTU).",
        unsent,
    );
    counter(
        &mut out,
        "dr_ring_freezes_total",
        "Times the receive ring froze because its next block was still being processed.",
        stats.freezes,
    );
    out
}

/// The AF_XDP socket's own counters (the `dr_xdp_*` family), beside its `dr_ring_*` ones.
pub fn render_xdp(stats: &dr_io_afxdp::XdpStats) -> String {
    let mut out = String::new();
    single(
        &mut out,
        "dr_xdp_rx_ring_full_total",
        "counter",
        "Frames dropped because the AF_XDP receive ring was full (the director fell behind).",
        stats.ring_full,
    );
    single(
        &mut out,
        "dr_xdp_fill_ring_empty_total",
        "counter",
        "Frames dropped because the fill ring held no free UMEM frame to receive them into.",
        stats.fill_empty,
    );
    family(
        &mut out,
        "dr_xdp_invalid_descriptors_total",
        "counter",
        "AF_XDP descriptors found invalid, by ring (never expected).",
        vec![(label("ring", &"rx"), stats.invalid_rx), (label("ring", &"tx"), stats.invalid_tx)],
    );
    out
}

/// The director's metrics as Prometheus text.
pub fn render(director: &Director) -> String {
    let mut out = String::new();
    let c = director.counters();
    family(
        &mut out,
        "dr_frames_transmitted_total",
        "counter",
        "Frames sent back out, by verdict: forwarded to a real server, or replied (an ARP \
         reply, Neighbor Advertisement or echo reply written in the frame's place).",
        vec![
            (label("verdict", &"forwarded"), c.forwarded()),
            (label("verdict", &"replied"), c.replies()),
        ],
    );
    family(
        &mut out,
        "dr_frames_dropped_total",
        "counter",
        "Frames dropped, by reason.",
        c.drop_counts().map(|(r, n)| (label("reason", &r), n)).collect(),
    );
    family(
        &mut out,
        "dr_frames_passed_total",
        "counter",
        "Frames left to the host, by reason.",
        c.pass_counts().map(|(r, n)| (label("reason", &r), n)).collect(),
    );
    for (name, help, value) in [
        ("dr_connections_created_total", "Connection entries created.", c.conns_created()),
        (
            "dr_connections_expired_total",
            "Connection entries expired or removed.",
            c.conns_expired(),
        ),
        (
            "dr_connections_evicted_total",
            "Unproven connection entries evicted to make room in a full table (also counted \
             as expired).",
            c.conns_evicted(),
        ),
        (
            "dr_connections_reused_total",
            "Live connection entries a SYN expired to be scheduled afresh (also counted as \
             expired).",
            c.conns_reused(),
        ),
        (
            "dr_one_packet_scheduled_total",
            "UDP datagrams of one-packet services scheduled on their own, without an entry.",
            c.one_packet_scheduled(),
        ),
        ("dr_templates_created_total", "Persistence templates created.", c.templates_created()),
        (
            "dr_templates_expired_total",
            "Persistence templates expired or removed.",
            c.templates_expired(),
        ),
        (
            "dr_icmp_errors_relayed_total",
            "ICMP and ICMPv6 errors relayed to the real server of the connection they quote \
             (also counted as forwarded).",
            c.icmp_relayed(),
        ),
        (
            "dr_fragments_forwarded_total",
            "Later fragments forwarded to the real server of their first fragment (also \
             counted as forwarded).",
            c.fragments_forwarded(),
        ),
        (
            "dr_echo_replies_total",
            "Echo requests to a VIP answered (also counted as replied).",
            c.echo_replies(),
        ),
        (
            "dr_icmp_unreachable_queued_total",
            "ICMP port-unreachable replies queued for clients that found no real server.",
            c.icmp_replies(),
        ),
        (
            "dr_icmp_unreachable_suppressed_total",
            "ICMP port-unreachable replies not sent: over the rate limit or the queue full.",
            c.icmp_suppressed(),
        ),
        (
            "dr_neighbours_learned_total",
            "Real servers' MACs learned or changed, from answers to the director's requests.",
            c.neighbours_learned(),
        ),
        (
            "dr_neighbour_messages_rejected_total",
            "ARP and Neighbor Discovery messages that would have set or changed a real \
             server's MAC and were not taken.",
            c.neighbours_rejected(),
        ),
    ] {
        single(&mut out, name, "counter", help, value);
    }
    if director.sync_config().is_some() {
        family(
            &mut out,
            "dr_sync_events_total",
            "counter",
            "Connection sync, by event: messages and records sent, queue drops, datagrams \
             received, bad or ignored, records imported, updated, replaced, stale, skipped, \
             without a real server here, refused by a full table, bulk resync requests, \
             records and requests ignored, messages the socket could not take, datagrams \
             dropped on a full worker queue.",
            director
                .sync_counters()
                .fields()
                .into_iter()
                .map(|(event, n)| (label("event", &event), n))
                .collect(),
        );
    }
    for (name, help, value) in [
        (
            "dr_connection_table_entries",
            "Entries in the connection table, persistence templates included.",
            director.connection_count(),
        ),
        (
            "dr_connection_table_templates",
            "Persistence templates in the connection table.",
            director.template_count(),
        ),
        (
            "dr_connection_table_capacity",
            "The connection table's capacity, fixed at start.",
            director.capacity(),
        ),
    ] {
        single(&mut out, name, "gauge", help, value as u64);
    }

    let services: Vec<_> = director.services().map(|(_, s)| s).collect();
    let reals: Vec<_> = services
        .iter()
        .flat_map(|s| {
            let key = s.key();
            s.reals().iter().filter_map(move |&id| Some((key, director.real(id)?)))
        })
        .collect();
    let per_service = |value: &dyn Fn(&dr_core::Stats) -> u64| {
        services.iter().map(|s| (service_labels(s.key()), value(s.stats()))).collect()
    };
    family(
        &mut out,
        "dr_service_connections_total",
        "counter",
        "Connections scheduled, per service.",
        per_service(&|s| s.conns),
    );
    family(
        &mut out,
        "dr_service_incoming_packets_total",
        "counter",
        "Packets forwarded to the service's real servers.",
        per_service(&|s| s.inpkts),
    );
    family(
        &mut out,
        "dr_service_incoming_bytes_total",
        "counter",
        "Bytes of the packets forwarded to the service's real servers (IP datagram length).",
        per_service(&|s| s.inbytes),
    );
    let per_real = |value: &dyn Fn(&dr_core::RealServer) -> u64| {
        reals.iter().map(|(key, r)| (real_labels(*key, r.addr()), value(r))).collect()
    };
    family(
        &mut out,
        "dr_real_connections_total",
        "counter",
        "Connections scheduled to the real server.",
        per_real(&|r| r.stats().conns),
    );
    family(
        &mut out,
        "dr_real_incoming_packets_total",
        "counter",
        "Packets forwarded to the real server.",
        per_real(&|r| r.stats().inpkts),
    );
    family(
        &mut out,
        "dr_real_incoming_bytes_total",
        "counter",
        "Bytes of the packets forwarded to the real server (IP datagram length).",
        per_real(&|r| r.stats().inbytes),
    );
    family(
        &mut out,
        "dr_real_connections_active",
        "gauge",
        "The real server's active connections (ipvsadm's ActiveConn).",
        per_real(&|r| u64::from(r.active_conns())),
    );
    family(
        &mut out,
        "dr_real_connections_inactive",
        "gauge",
        "The real server's inactive connections (ipvsadm's InActConn).",
        per_real(&|r| u64::from(r.inactive_conns())),
    );
    family(
        &mut out,
        "dr_real_connections_persistent",
        "gauge",
        "Persistence templates bound to the real server (ipvsadm's PersistConn).",
        per_real(&|r| u64::from(r.persistent_conns())),
    );
    family(
        &mut out,
        "dr_real_weight",
        "gauge",
        "The real server's weight in effect (0 when quiesced).",
        per_real(&|r| u64::from(r.weight())),
    );
    out
}

/// What is the director's rather than a worker's, as Prometheus text, rendered once after
/// the workers' families: `dr_service_info`, each service's scheduler, flags and
/// persistence; and `dr_real_up`, the health of every real server: 0 for those in `down`
/// (by service and address: their check failed) and 1 for the others (their check passes,
/// or they have none).
pub fn render_health(director: &Director, down: &HashSet<(ServiceKey, IpAddr)>) -> String {
    let mut out = String::new();
    let info = director
        .services()
        .map(|(_, s)| {
            let persistent = s.persistence().map_or(0, |p| p.timeout_secs);
            let mut flags = s.flags().names(s.scheduler()).to_string();
            if s.one_packet() {
                flags.push_str(if flags.is_empty() { "ops" } else { ",ops" });
            }
            let labels = format!(
                "{},{},{},{}",
                service_labels(s.key()),
                label("scheduler", &s.scheduler()),
                label("flags", &flags),
                label("persistent", &persistent)
            );
            (labels, 1)
        })
        .collect();
    family(
        &mut out,
        "dr_service_info",
        "gauge",
        "Always 1: the service's scheduler, its flags as ipvsadm names them (and ops for \
         one-packet scheduling), and its persistence timeout in seconds (0 when not \
         persistent).",
        info,
    );
    let mut samples = Vec::new();
    for (_, service) in director.services() {
        let key = service.key();
        for real in service.reals().iter().filter_map(|&id| director.real(id)) {
            let up = !down.contains(&(key, real.addr()));
            samples.push((real_labels(key, real.addr()), u64::from(up)));
        }
    }
    family(
        &mut out,
        "dr_real_up",
        "gauge",
        "1 when the real server's health check passes (or it has none), 0 when the check \
         took it down (quiesced).",
        samples,
    );
    out
}

/// Several workers' metrics as one exposition: each family once, each sample labelled with
/// its worker (`worker="0"`, …), so that sums over workers are the director's totals. One
/// worker's text is returned as it is.
pub fn merge(texts: &[String]) -> String {
    if let [one] = texts {
        return one.clone();
    }
    let mut out = String::new();
    let Some(first) = texts.first() else { return out };
    // Every worker renders the same families in the same order: walk them together.
    let headers: Vec<&str> = first.lines().filter(|l| l.starts_with("# TYPE ")).collect();
    for header in headers {
        let name = header.split_whitespace().nth(2).unwrap_or("");
        if let Some(help) = first.lines().find(|l| l.starts_with(&format!("# HELP {name} "))) {
            let _ = writeln!(out, "{help}");
        }
        let _ = writeln!(out, "{header}");
        for (worker, text) in texts.iter().enumerate() {
            for line in text.lines() {
                let Some(rest) = line.strip_prefix(name) else { continue };
                if let Some(rest) = rest.strip_prefix('{') {
                    let sep = if rest.starts_with('}') { "" } else { "," };
                    let _ = writeln!(out, "{name}{{worker=\"{worker}\"{sep}{rest}");
                } else if let Some(value) = rest.strip_prefix(' ') {
                    let _ = writeln!(out, "{name}{{worker=\"{worker}\"}} {value}");
                }
            }
        }
    }
    out
}

/// The answer to one request, whose head (request line and headers) is `head`: the
/// exposition for `GET /metrics` (`HEAD` gives its headers alone), 404 for any other path,
/// 405 for another method, 400 for what is not an HTTP request. `render` is called only
/// when the metrics are wanted.
pub fn respond(head: &[u8], render: impl FnOnce() -> String) -> Vec<u8> {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = std::str::from_utf8(line).unwrap_or_default().trim_end_matches('\r');
    let mut words = line.split(' ');
    let (method, target, version) = (words.next(), words.next(), words.next());
    let request = match (method, target, version, words.next()) {
        (Some(m), Some(t), Some(v), None) if !m.is_empty() && v.starts_with("HTTP/") => {
            Some((m, t.split('?').next().unwrap_or_default()))
        }
        _ => None,
    };
    let plain = "text/plain; charset=utf-8";
    let (status, extra, content_type, body, with_body) = match request {
        None => ("400 Bad Request", "", plain, "Bad request.\n".to_string(), true),
        Some((_, path)) if path != "/metrics" => {
            ("404 Not Found", "", plain, "Not found: the metrics are at /metrics.\n".into(), true)
        }
        Some(("GET", _)) => ("200 OK", "", CONTENT_TYPE, render(), true),
        Some(("HEAD", _)) => ("200 OK", "", CONTENT_TYPE, render(), false),
        Some(_) => (
            "405 Method Not Allowed",
            "Allow: GET, HEAD\r\n",
            plain,
            "Method not allowed: GET /metrics.\n".into(),
            true,
        ),
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}\
         Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if with_body {
        response.extend_from_slice(body.as_bytes());
    }
    response
}

/// Reads a request head: up to the blank line after the headers, at most 8 KiB, within a
/// second.
fn read_head(stream: &mut TcpStream) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let complete =
        |h: &[u8]| h.windows(4).any(|w| w == b"\r\n\r\n") || h.windows(2).any(|w| w == b"\n\n");
    while head.len() < 8192 && !complete(&head) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    head
}

/// The listening side, polled by the director's loop.
#[derive(Debug)]
pub struct MetricsEndpoint {
    listener: TcpListener,
}

impl MetricsEndpoint {
    /// Listens on `addr`.
    ///
    /// # Errors
    ///
    /// A message naming the address.
    pub fn bind(addr: SocketAddr) -> Result<Self, String> {
        let listener = TcpListener::bind(addr).map_err(|e| format!("metrics on {addr}: {e}"))?;
        listener.set_nonblocking(true).map_err(|e| format!("metrics on {addr}: {e}"))?;
        Ok(Self { listener })
    }

    /// The address it listens on.
    ///
    /// # Errors
    ///
    /// When the socket cannot say.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Answers every request waiting now (see [`respond`]), rendering the metrics with
    /// `render` for each that wants them.
    pub fn serve(&self, render: impl Fn() -> String) {
        while let Ok((mut stream, _)) = self.listener.accept() {
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let head = read_head(&mut stream);
            let _ = stream.write_all(&respond(&head, &render));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dr_core::{Config, Instant as At, MacAddr, RealConfig, SchedulerKind, ServiceConfig};
    use dr_fixtures::frames::{ACK, SYN, tcp4, udp6};

    #[test]
    fn workers_are_labelled_and_families_kept_once() {
        let a = "# HELP m Things.\n# TYPE m counter\nm{kind=\"x\"} 1\n".to_string();
        let b = "# HELP m Things.\n# TYPE m counter\nm{kind=\"x\"} 2\n".to_string();
        assert_eq!(merge(std::slice::from_ref(&a)), a);
        assert_eq!(
            merge(&[a, b]),
            "# HELP m Things.\n# TYPE m counter\nm{worker=\"0\",kind=\"x\"} 1\nm{worker=\"1\",kind=\"x\"} 2\n"
        );
    }

    #[test]
    fn ring_counts_render_and_merge() {
        let stats = RingStats { received: 10, dropped: 2, freezes: 1 };
        let text = render_ring(stats, 3, 4, 5);
        let expected = "\
# HELP dr_ring_frames_received_total Frames the kernel handed to the receive ring, those it dropped included.
# TYPE dr_ring_frames_received_total counter
dr_ring_frames_received_total 10
# HELP dr_ring_frames_dropped_total Frames dropped because the receive ring was full (the director fell behind).
# TYPE dr_ring_frames_dropped_total counter
dr_ring_frames_dropped_total 2
# HELP dr_ring_frames_truncated_total Frames larger than a ring frame, truncated by the kernel and not processed.
# TYPE dr_ring_frames_truncated_total counter
dr_ring_frames_truncated_total 3
# HELP dr_ring_frames_vlan_lost_total Frames whose VLAN tag the kernel had taken out and that could not be put back, not processed.
# TYPE dr_ring_frames_vlan_lost_total counter
dr_ring_frames_vlan_lost_total 4
# HELP dr_ring_frames_unsent_total Frames to transmit that the kernel refused (a full device queue, a frame over the MTU).
# TYPE dr_ring_frames_unsent_total counter
dr_ring_frames_unsent_total 5
# HELP dr_ring_freezes_total Times the receive ring froze because its next block was still being processed.
# TYPE dr_ring_freezes_total counter
dr_ring_freezes_total 1
";
        assert_eq!(text, expected);
        let merged = merge(&[text.clone(), render_ring(RingStats::default(), 0, 0, 0)]);
        assert!(merged.contains("\ndr_ring_freezes_total{worker=\"0\"} 1\n"), "{merged}");
        assert!(merged.contains("\ndr_ring_freezes_total{worker=\"1\"} 0\n"), "{merged}");
        assert!(merged.contains("\ndr_ring_frames_received_total{worker=\"1\"} 0\n"), "{merged}");
        assert_eq!(merged.matches("# TYPE dr_ring_freezes_total counter\n").count(), 1);
    }

    #[test]
    fn xdp_counts_render_by_cause_and_ring() {
        let mut stats = dr_io_afxdp::XdpStats::default();
        (stats.ring_full, stats.fill_empty, stats.invalid_rx, stats.invalid_tx) = (1, 2, 3, 4);
        let text = render_xdp(&stats);
        let expected = "\
# HELP dr_xdp_rx_ring_full_total Frames dropped because the AF_XDP receive ring was full (the director fell behind).
# TYPE dr_xdp_rx_ring_full_total counter
dr_xdp_rx_ring_full_total 1
# HELP dr_xdp_fill_ring_empty_total Frames dropped because the fill ring held no free UMEM frame to receive them into.
# TYPE dr_xdp_fill_ring_empty_total counter
dr_xdp_fill_ring_empty_total 2
# HELP dr_xdp_invalid_descriptors_total AF_XDP descriptors found invalid, by ring (never expected).
# TYPE dr_xdp_invalid_descriptors_total counter
dr_xdp_invalid_descriptors_total{ring=\"rx\"} 3
dr_xdp_invalid_descriptors_total{ring=\"tx\"} 4
";
        assert_eq!(text, expected);
    }

    /// A director with an IPv4 TCP service of two real servers and an IPv6 UDP service of
    /// one, after a known exchange: one TCP connection established (SYN, then ACK), one
    /// UDP datagram, and a spoofed ARP reply.
    fn exercised() -> Director {
        let mac: MacAddr = "02:00:00:00:00:01".parse().unwrap();
        let mut d = Director::new(Config::new(mac, [1, 2, 3, 4])).unwrap();
        let web = d
            .add_service(ServiceConfig::new(
                Protocol::Tcp,
                "10.0.0.100".parse().unwrap(),
                80,
                SchedulerKind::Rr,
            ))
            .unwrap();
        let real_mac = |last: u8| MacAddr([2, 0, 0, 0, 0, last]);
        let r1 = RealConfig::new("10.0.0.11".parse().unwrap()).with_weight(3);
        d.add_real(web, r1.with_mac(real_mac(0x11))).unwrap();
        let r2 = RealConfig::new("10.0.0.12".parse().unwrap()).with_weight(2);
        d.add_real(web, r2.with_mac(real_mac(0x12))).unwrap();
        let dns = d
            .add_service(ServiceConfig::new(
                Protocol::Udp,
                "2001:db8::100".parse().unwrap(),
                53,
                SchedulerKind::Rr,
            ))
            .unwrap();
        let r6 = RealConfig::new("2001:db8::11".parse().unwrap());
        d.add_real(dns, r6.with_mac(real_mac(0x21))).unwrap();
        let at = At::from_secs(1);
        // rr walks the newest-added first: 10.0.0.12 gets the connection.
        for flags in [SYN, ACK] {
            let mut frame = tcp4("192.0.2.7", 40_000, "10.0.0.100", 80, flags);
            assert!(d.process(at, &mut frame).is_transmit());
        }
        let mut frame = udp6("2001:db8:1::7", 5353, "2001:db8::100", 53, b"0123456789");
        assert!(d.process(at, &mut frame).is_transmit());
        // A reply the director never asked for: refused, and counted.
        let mut spoof = dr_fixtures::frames::arp(
            dr_fixtures::frames::ArpOperation::Reply,
            mac.0,
            [2, 0, 0, 0, 0, 0x66],
            "10.0.0.11",
            mac.0,
            "0.0.0.0",
        );
        let _ = d.process(at, &mut spoof);
        d
    }

    #[test]
    fn a_director_with_known_counts_renders_exactly() {
        let text = render(&exercised());
        // Counted by hand: a SYN and an ACK of 40 bytes each (20 of IPv4 header, 20 of
        // TCP), one UDP datagram of 58 (40 of IPv6 header, 8 of UDP, 10 of payload).
        let services = "\
# HELP dr_service_connections_total Connections scheduled, per service.
# TYPE dr_service_connections_total counter
dr_service_connections_total{protocol=\"tcp\",vip=\"10.0.0.100\",port=\"80\"} 1
dr_service_connections_total{protocol=\"udp\",vip=\"2001:db8::100\",port=\"53\"} 1
# HELP dr_service_incoming_packets_total Packets forwarded to the service's real servers.
# TYPE dr_service_incoming_packets_total counter
dr_service_incoming_packets_total{protocol=\"tcp\",vip=\"10.0.0.100\",port=\"80\"} 2
dr_service_incoming_packets_total{protocol=\"udp\",vip=\"2001:db8::100\",port=\"53\"} 1
# HELP dr_service_incoming_bytes_total Bytes of the packets forwarded to the service's real servers (IP datagram length).
# TYPE dr_service_incoming_bytes_total counter
dr_service_incoming_bytes_total{protocol=\"tcp\",vip=\"10.0.0.100\",port=\"80\"} 80
dr_service_incoming_bytes_total{protocol=\"udp\",vip=\"2001:db8::100\",port=\"53\"} 58
";
        let tcp1 = "protocol=\"tcp\",vip=\"10.0.0.100\",port=\"80\",real=\"10.0.0.11\"";
        let tcp2 = "protocol=\"tcp\",vip=\"10.0.0.100\",port=\"80\",real=\"10.0.0.12\"";
        let udp = "protocol=\"udp\",vip=\"2001:db8::100\",port=\"53\",real=\"2001:db8::11\"";
        // Real servers in the kernel's list order: the newest added first.
        let reals = format!(
            "\
# HELP dr_real_connections_total Connections scheduled to the real server.
# TYPE dr_real_connections_total counter
dr_real_connections_total{{{tcp2}}} 1
dr_real_connections_total{{{tcp1}}} 0
dr_real_connections_total{{{udp}}} 1
# HELP dr_real_incoming_packets_total Packets forwarded to the real server.
# TYPE dr_real_incoming_packets_total counter
dr_real_incoming_packets_total{{{tcp2}}} 2
dr_real_incoming_packets_total{{{tcp1}}} 0
dr_real_incoming_packets_total{{{udp}}} 1
# HELP dr_real_incoming_bytes_total Bytes of the packets forwarded to the real server (IP datagram length).
# TYPE dr_real_incoming_bytes_total counter
dr_real_incoming_bytes_total{{{tcp2}}} 80
dr_real_incoming_bytes_total{{{tcp1}}} 0
dr_real_incoming_bytes_total{{{udp}}} 58
# HELP dr_real_connections_active The real server's active connections (ipvsadm's ActiveConn).
# TYPE dr_real_connections_active gauge
dr_real_connections_active{{{tcp2}}} 1
dr_real_connections_active{{{tcp1}}} 0
dr_real_connections_active{{{udp}}} 0
# HELP dr_real_connections_inactive The real server's inactive connections (ipvsadm's InActConn).
# TYPE dr_real_connections_inactive gauge
dr_real_connections_inactive{{{tcp2}}} 0
dr_real_connections_inactive{{{tcp1}}} 0
dr_real_connections_inactive{{{udp}}} 1
# HELP dr_real_connections_persistent Persistence templates bound to the real server (ipvsadm's PersistConn).
# TYPE dr_real_connections_persistent gauge
dr_real_connections_persistent{{{tcp2}}} 0
dr_real_connections_persistent{{{tcp1}}} 0
dr_real_connections_persistent{{{udp}}} 0
# HELP dr_real_weight The real server's weight in effect (0 when quiesced).
# TYPE dr_real_weight gauge
dr_real_weight{{{tcp2}}} 2
dr_real_weight{{{tcp1}}} 3
dr_real_weight{{{udp}}} 1
"
        );
        assert!(text.ends_with(&format!("{services}{reals}")), "{text}");
        for line in [
            "# TYPE dr_frames_transmitted_total counter",
            "dr_frames_transmitted_total{verdict=\"forwarded\"} 3",
            "dr_frames_transmitted_total{verdict=\"replied\"} 0",
            "# TYPE dr_frames_dropped_total counter",
            "dr_frames_dropped_total{reason=\"conn-table-full\"} 0",
            "# TYPE dr_frames_passed_total counter",
            "dr_frames_passed_total{reason=\"arp\"} 1",
            "# TYPE dr_connections_created_total counter",
            "dr_connections_created_total 2",
            "dr_connections_expired_total 0",
            "dr_connections_evicted_total 0",
            "dr_connections_reused_total 0",
            "dr_templates_created_total 0",
            "dr_templates_expired_total 0",
            "dr_icmp_errors_relayed_total 0",
            "dr_fragments_forwarded_total 0",
            "dr_echo_replies_total 0",
            "dr_icmp_unreachable_queued_total 0",
            "dr_icmp_unreachable_suppressed_total 0",
            "dr_neighbours_learned_total 0",
            "# TYPE dr_neighbour_messages_rejected_total counter",
            "dr_neighbour_messages_rejected_total 1",
            "# TYPE dr_connection_table_entries gauge",
            "dr_connection_table_entries 2",
            "dr_connection_table_templates 0",
            "# TYPE dr_connection_table_capacity gauge",
            "dr_connection_table_capacity 1048576",
        ] {
            assert!(text.lines().any(|l| l == line), "no line {line:?} in\n{text}");
        }
    }

    #[test]
    fn every_sample_under_its_family_with_help_and_type() {
        let d = exercised();
        let text = render(&d)
            + &render_ring(RingStats::default(), 0, 0, 0)
            + &render_health(&d, &HashSet::new());
        let mut names = HashSet::new();
        let (mut help, mut family) = (String::new(), String::new());
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                help = rest.split(' ').next().unwrap().to_string();
                assert!(names.insert(help.clone()), "{help} twice");
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert_eq!(name, help, "TYPE right after its HELP");
                assert!(kind == "counter" || kind == "gauge", "{line}");
                // Prometheus: counters end in _total, and nothing else does.
                assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
                family = name.to_string();
            } else {
                let name = line.split(['{', ' ']).next().unwrap();
                assert_eq!(name, family, "{line} outside its family");
                assert!(line.rsplit(' ').next().unwrap().parse::<u64>().is_ok(), "{line}");
            }
        }
        // One family per quantity: no sample's labels repeat within a family.
        let mut seen = HashSet::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let series = line.rsplit_once(' ').unwrap().0;
            assert!(seen.insert(series.to_string()), "{series} twice");
        }
    }

    #[test]
    fn health_is_up_unless_down_and_labels_split_ipv6() {
        let d = exercised();
        let web =
            ServiceKey { protocol: Protocol::Tcp, vip: "10.0.0.100".parse().unwrap(), port: 80 };
        let down = HashSet::from([(web, "10.0.0.11".parse().unwrap())]);
        assert_eq!(
            render_health(&d, &down),
            "\
# HELP dr_service_info Always 1: the service's scheduler, its flags as ipvsadm names them (and ops for one-packet scheduling), and its persistence timeout in seconds (0 when not persistent).
# TYPE dr_service_info gauge
dr_service_info{protocol=\"tcp\",vip=\"10.0.0.100\",port=\"80\",scheduler=\"rr\",flags=\"\",persistent=\"0\"} 1
dr_service_info{protocol=\"udp\",vip=\"2001:db8::100\",port=\"53\",scheduler=\"rr\",flags=\"\",persistent=\"0\"} 1
# HELP dr_real_up 1 when the real server's health check passes (or it has none), 0 when the check took it down (quiesced).
# TYPE dr_real_up gauge
dr_real_up{protocol=\"tcp\",vip=\"10.0.0.100\",port=\"80\",real=\"10.0.0.12\"} 1
dr_real_up{protocol=\"tcp\",vip=\"10.0.0.100\",port=\"80\",real=\"10.0.0.11\"} 0
dr_real_up{protocol=\"udp\",vip=\"2001:db8::100\",port=\"53\",real=\"2001:db8::11\"} 1
"
        );
    }

    #[test]
    fn service_info_names_scheduler_flags_and_persistence() {
        let mac: MacAddr = "02:00:00:00:00:01".parse().unwrap();
        let mut d = Director::new(Config::new(mac, [1, 2, 3, 4])).unwrap();
        let vip = "10.0.0.100".parse().unwrap();
        let flags = dr_core::SchedFlags { mh_fallback: true, mh_port: true, ..Default::default() };
        let mh = ServiceConfig::new(Protocol::Tcp, vip, 443, SchedulerKind::Mh).with_flags(flags);
        d.add_service(mh).unwrap();
        let sh = ServiceConfig::new(Protocol::Udp, vip, 53, SchedulerKind::Sh)
            .with_flags(dr_core::SchedFlags { sh_port: true, ..Default::default() })
            .with_persistence(dr_core::Persistence::new(300));
        d.add_service(sh).unwrap();
        let ops =
            ServiceConfig::new(Protocol::Udp, vip, 54, SchedulerKind::Rr).with_one_packet(true);
        d.add_service(ops).unwrap();
        let both = ServiceConfig::new(Protocol::Udp, vip, 55, SchedulerKind::Sh)
            .with_flags(dr_core::SchedFlags { sh_port: true, ..Default::default() })
            .with_one_packet(true);
        d.add_service(both).unwrap();
        let text = render_health(&d, &HashSet::new());
        // As `ipvsadm -L -n` prints them: `mh (mh-fallback,mh-port)`, `sh (sh-port)
        // persistent 300`.
        assert!(text.contains(
            "dr_service_info{protocol=\"tcp\",vip=\"10.0.0.100\",port=\"443\",\
             scheduler=\"mh\",flags=\"mh-fallback,mh-port\",persistent=\"0\"} 1\n"
        ));
        assert!(text.contains(
            "dr_service_info{protocol=\"udp\",vip=\"10.0.0.100\",port=\"53\",\
             scheduler=\"sh\",flags=\"sh-port\",persistent=\"300\"} 1\n"
        ));
        // `rr ops`, `sh (sh-port) ops`.
        assert!(text.contains(
            "dr_service_info{protocol=\"udp\",vip=\"10.0.0.100\",port=\"54\",\
             scheduler=\"rr\",flags=\"ops\",persistent=\"0\"} 1\n"
        ));
        assert!(text.contains(
            "dr_service_info{protocol=\"udp\",vip=\"10.0.0.100\",port=\"55\",\
             scheduler=\"sh\",flags=\"sh-port,ops\",persistent=\"0\"} 1\n"
        ));
    }

    #[test]
    fn only_get_and_head_of_metrics_are_answered() {
        let text = |r: Vec<u8>| String::from_utf8(r).unwrap();
        let body = || "m 1\n".to_string();
        assert_eq!(
            text(respond(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", body)),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
             Content-Length: 4\r\nConnection: close\r\n\r\nm 1\n"
        );
        assert_eq!(
            text(respond(b"GET /metrics?debug=1 HTTP/1.0\r\n\r\n", body)),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
             Content-Length: 4\r\nConnection: close\r\n\r\nm 1\n"
        );
        assert_eq!(
            text(respond(b"HEAD /metrics HTTP/1.1\r\n\r\n", body)),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
             Content-Length: 4\r\nConnection: close\r\n\r\n"
        );
        let unwanted = || -> String { panic!("rendered for a request that does not want it") };
        for path in ["/", "/metrics/", "/metricsx", "/favicon.ico"] {
            let request = format!("GET {path} HTTP/1.1\r\n\r\n");
            let answer = text(respond(request.as_bytes(), unwanted));
            assert!(answer.starts_with("HTTP/1.1 404 Not Found\r\n"), "{path}: {answer}");
        }
        let answer = text(respond(b"POST /metrics HTTP/1.1\r\n\r\n", unwanted));
        assert!(answer.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"), "{answer}");
        assert!(answer.contains("\r\nAllow: GET, HEAD\r\n"), "{answer}");
        for junk in [&b""[..], b"\r\n\r\n", b"GET\r\n\r\n", b"GET /metrics\r\n\r\n", b"\xff\xfe"] {
            let answer = text(respond(junk, unwanted));
            assert!(answer.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{junk:?}: {answer}");
        }
    }

    #[test]
    fn the_endpoint_answers_over_tcp() {
        let endpoint = MetricsEndpoint::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = endpoint.local_addr().unwrap();
        let ask = |request: &'static [u8]| {
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                // The request in two pieces: the head is read whole.
                stream.write_all(&request[..5]).unwrap();
                std::thread::sleep(Duration::from_millis(50));
                stream.write_all(&request[5..]).unwrap();
                let mut answer = String::new();
                stream.read_to_string(&mut answer).unwrap();
                answer
            })
        };
        for (request, status, body) in [
            (&b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"[..], "200 OK", "m 1\n"),
            (
                b"GET / HTTP/1.1\r\n\r\n",
                "404 Not Found",
                "Not found: the metrics are at /metrics.\n",
            ),
        ] {
            let client = ask(request);
            let deadline = Instant::now() + Duration::from_secs(5);
            while !client.is_finished() && Instant::now() < deadline {
                endpoint.serve(|| "m 1\n".to_string());
                std::thread::sleep(Duration::from_millis(10));
            }
            let answer = client.join().unwrap();
            assert!(answer.starts_with(&format!("HTTP/1.1 {status}\r\n")), "{answer}");
            assert!(answer.ends_with(&format!("\r\n\r\n{body}")), "{answer}");
        }
    }
}
