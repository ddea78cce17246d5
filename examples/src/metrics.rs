//! dr-director's optional Prometheus endpoint (`--metrics ADDR`): the counters of the
//! director in the Prometheus text format, served over plain HTTP by the director's loop
//! without blocking it.

use dr_core::Director;
use dr_io_afpacket::RingStats;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

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

/// The receive ring's counts as Prometheus text: what the kernel put in it, dropped for
/// want of room, and froze; and what was truncated. Rendered after [`render`]'s families.
pub fn render_ring(stats: RingStats, truncated: u64, vlan_lost: u64, unsent: u64) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "dr_ring_frames_total",
        "counter",
        "Frames at the receive ring, by fate: received by the socket, dropped because the ring \
         was full (the director fell behind), truncated (larger than a ring frame), vlan_lost \
         (a VLAN tag the kernel had taken out could not be put back), unsent (to be transmitted, \
         refused by the kernel: a full device queue, a frame over the MTU).",
        vec![
            ("fate=\"received\"".into(), stats.received),
            ("fate=\"dropped\"".into(), stats.dropped),
            ("fate=\"truncated\"".into(), truncated),
            ("fate=\"vlan_lost\"".into(), vlan_lost),
            ("fate=\"unsent\"".into(), unsent),
        ],
    );
    family(
        &mut out,
        "dr_ring_freezes_total",
        "counter",
        "Times the receive ring froze because its next block was still being processed.",
        vec![(String::new(), stats.freezes)],
    );
    out
}

/// The director's metrics as Prometheus text.
pub fn render(director: &Director) -> String {
    let mut out = String::new();
    let c = director.counters();
    let label = |key: &str, value: &dyn std::fmt::Display| format!("{key}=\"{value}\"");
    family(
        &mut out,
        "dr_frames_total",
        "counter",
        "Frames transmitted, by verdict.",
        vec![
            (label("verdict", &"forwarded"), c.forwarded()),
            (label("verdict", &"replied"), c.replies()),
        ],
    );
    family(
        &mut out,
        "dr_drops_total",
        "counter",
        "Frames dropped, by reason.",
        c.drop_counts().map(|(r, n)| (label("reason", &r), n)).collect(),
    );
    family(
        &mut out,
        "dr_passes_total",
        "counter",
        "Frames passed to the host, by reason.",
        c.pass_counts().map(|(r, n)| (label("reason", &r), n)).collect(),
    );
    family(
        &mut out,
        "dr_connection_events_total",
        "counter",
        "Connection table events.",
        [
            ("created", c.conns_created()),
            ("expired", c.conns_expired()),
            ("evicted", c.conns_evicted()),
            ("reused", c.conns_reused()),
            ("templates_created", c.templates_created()),
            ("icmp_relayed", c.icmp_relayed()),
            ("fragments_forwarded", c.fragments_forwarded()),
        ]
        .into_iter()
        .map(|(event, n)| (label("event", &event), n))
        .collect(),
    );
    family(
        &mut out,
        "dr_neighbour_events_total",
        "counter",
        "Real servers' MACs learned from answers to the director's requests; messages refused.",
        [("learned", c.neighbours_learned()), ("rejected", c.neighbours_rejected())]
            .into_iter()
            .map(|(event, n)| (label("event", &event), n))
            .collect(),
    );
    family(
        &mut out,
        "dr_connection_entries",
        "gauge",
        "Entries in the connection table, templates among them, and its capacity.",
        vec![
            (label("kind", &"all"), director.connection_count() as u64),
            (label("kind", &"templates"), director.template_count() as u64),
            (label("kind", &"capacity"), director.capacity() as u64),
        ],
    );
    let (mut services, mut reals, mut conns, mut weights) = (vec![], vec![], vec![], vec![]);
    for (_, service) in director.services() {
        let key = service.key();
        let svc = label("service", &format_args!("{} {}:{}", key.protocol, key.vip, key.port));
        let s = service.stats();
        for (what, n) in [("conns", s.conns), ("inpkts", s.inpkts), ("inbytes", s.inbytes)] {
            services.push((format!("{svc},{}", label("counter", &what)), n));
        }
        for real in service.reals().iter().filter_map(|&id| director.real(id)) {
            let at = format!("{svc},{}", label("real", &real.addr()));
            let s = real.stats();
            for (what, n) in [("conns", s.conns), ("inpkts", s.inpkts), ("inbytes", s.inbytes)] {
                reals.push((format!("{at},{}", label("counter", &what)), n));
            }
            for (state, n) in [
                ("active", real.active_conns()),
                ("inactive", real.inactive_conns()),
                ("persistent", real.persistent_conns()),
            ] {
                conns.push((format!("{at},{}", label("state", &state)), u64::from(n)));
            }
            weights.push((at, u64::from(real.weight())));
        }
    }
    family(
        &mut out,
        "dr_service_stats_total",
        "counter",
        "Per service: conns, inpkts, inbytes.",
        services,
    );
    family(
        &mut out,
        "dr_real_stats_total",
        "counter",
        "Per real server: conns, inpkts, inbytes.",
        reals,
    );
    family(
        &mut out,
        "dr_real_connections",
        "gauge",
        "Per real server: active, inactive and persistent connections.",
        conns,
    );
    family(
        &mut out,
        "dr_real_weight",
        "gauge",
        "Per real server: the weight in effect (0 when quiesced).",
        weights,
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

    /// Answers every scrape waiting now with `render()`.
    pub fn serve(&self, render: impl Fn() -> String) {
        while let Ok((mut stream, _)) = self.listener.accept() {
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let body = render();
            let _ = write!(
                stream,
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dr_core::{Config, MacAddr, Protocol, RealConfig, SchedulerKind, ServiceConfig};

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
        assert!(text.contains("dr_ring_frames_total{fate=\"dropped\"} 2\n"), "{text}");
        assert!(text.contains("dr_ring_frames_total{fate=\"vlan_lost\"} 4\n"), "{text}");
        assert!(text.contains("dr_ring_frames_total{fate=\"unsent\"} 5\n"), "{text}");
        assert!(text.contains("dr_ring_frames_total{fate=\"truncated\"} 3\n"), "{text}");
        assert!(text.contains("\ndr_ring_freezes_total 1\n"), "{text}");
        let merged = merge(&[text.clone(), render_ring(RingStats::default(), 0, 0, 0)]);
        assert!(merged.contains("dr_ring_freezes_total{worker=\"0\"} 1\n"), "{merged}");
        assert!(merged.contains("dr_ring_freezes_total{worker=\"1\"} 0\n"), "{merged}");
        assert!(
            merged.contains("dr_ring_frames_total{worker=\"1\",fate=\"received\"} 0\n"),
            "{merged}"
        );
    }

    #[test]
    fn every_sample_under_its_family() {
        let mac: MacAddr = "02:00:00:00:00:01".parse().unwrap();
        let mut d = Director::new(Config::new(mac, [1, 2, 3, 4])).unwrap();
        let s = d
            .add_service(ServiceConfig::new(
                Protocol::Tcp,
                "10.0.0.100".parse().unwrap(),
                80,
                SchedulerKind::Rr,
            ))
            .unwrap();
        d.add_real(s, RealConfig::new("10.0.0.11".parse().unwrap()).with_weight(3)).unwrap();
        // A reply the director never asked for: refused, and counted.
        let mut spoof = crate::frames::arp(
            crate::frames::ArpOperation::Reply,
            mac.0,
            [2, 0, 0, 0, 0, 0x66],
            "10.0.0.11",
            mac.0,
            "0.0.0.0",
        );
        let _ = d.process(dr_core::Instant::from_secs(1), &mut spoof);
        let text = render(&d);
        assert!(text.contains("dr_neighbour_events_total{event=\"learned\"} 0\n"), "{text}");
        assert!(text.contains("dr_neighbour_events_total{event=\"rejected\"} 1\n"), "{text}");
        assert!(text.contains("dr_drops_total{reason=\"conn-table-full\"} 0\n"), "{text}");
        assert!(
            text.contains("dr_real_weight{service=\"TCP 10.0.0.100:80\",real=\"10.0.0.11\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("dr_connection_entries{kind=\"capacity\"} 1048576\n"), "{text}");
        // Each family's HELP and TYPE come right before its samples.
        let mut family = "";
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                family = rest.split_whitespace().next().unwrap();
            } else if !line.starts_with('#') {
                assert!(line.starts_with(family), "{line} outside {family}");
            }
        }
    }
}
