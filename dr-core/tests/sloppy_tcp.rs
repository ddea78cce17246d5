//! `sloppy_tcp`, as `tcp_conn_schedule` (`ip_vs_proto_tcp.c`) decides which segment that
//! finds no connection is scheduled:
//!
//! ```c
//! if (th->rst || !(sysctl_sloppy_tcp(ipvs) || th->syn))
//!         return 1;   /* NF_ACCEPT: not scheduled */
//! ```
//!
//! and as `ip_vs_in_hook` then applies the segment's transition to the new entry, which
//! `ip_vs_conn_new` creates in state NONE (`tcp_states`, INPUT-ONLY rows, NONE column:
//! SYN → SYN_RECV, FIN → CLOSE, ACK → ESTABLISHED, RST → CLOSE; none of the four flags →
//! CLOSE; precedence RST > SYN > FIN > ACK). The expected states and timeouts below are
//! read from those tables and `tcp_timeouts` (ESTABLISHED 900 s, SYN_RECV 60 s, CLOSE 10 s),
//! not from dr's code.

mod support;

use dr_core::{
    Config, ConnState, Director, Instant, PassReason, Protocol, RealConfig, RealId, SchedulerKind,
    ServiceConfig, Verdict,
};
use support::*;

const VIP: &str = "10.0.0.100";
const CLIENT: &str = "192.0.2.7";

fn at(secs: u64) -> Instant {
    Instant::from_secs(secs)
}

/// A director with one `scheduler` service on VIP:80 and three real servers, built with
/// `seed` and `sloppy_tcp` as given.
fn director(sloppy: bool, scheduler: SchedulerKind, seed: [u64; 4]) -> (Director, Vec<RealId>) {
    let mut config = Config::new(mac(DIRECTOR_MAC), seed);
    config.capacity = 256;
    config.sloppy_tcp = sloppy;
    let mut d = Director::new(config).unwrap();
    let svc = d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, scheduler)).unwrap();
    let reals = ["10.0.0.11", "10.0.0.12", "10.0.0.13"]
        .iter()
        .enumerate()
        .map(|(i, a)| d.add_real(svc, RealConfig::new(ip(a)).with_mac(mac(REAL_MACS[i]))).unwrap())
        .collect();
    (d, reals)
}

fn only_state(d: &Director) -> ConnState {
    let conns: Vec<_> = d.connections().collect();
    assert_eq!(conns.len(), 1, "{conns:?}");
    conns[0].state
}

#[test]
fn without_sloppy_tcp_only_a_syn_without_rst_is_scheduled() {
    let (mut d, _) = director(false, SchedulerKind::Rr, [1, 2, 3, 4]);
    for flags in [ACK, ACK | PSH, FIN, FIN | ACK, PSH, 0, RST, RST | ACK, SYN | RST] {
        let verdict = d.process(at(1), &mut tcp4_payload(CLIENT, 40000, VIP, 80, flags, b"x"));
        assert_eq!(verdict, Verdict::Pass(PassReason::NoConnection), "flags {flags:#04x}");
    }
    assert_eq!(d.connection_count(), 0);
    // A SYN+ACK is scheduled: the kernel has no ACK check ("for Active FTP").
    assert!(d.process(at(1), &mut tcp4(CLIENT, 40000, VIP, 80, SYN | ACK)).is_transmit());
    assert_eq!(only_state(&d), ConnState::SynRecv);
}

#[test]
fn with_sloppy_tcp_any_segment_without_rst_is_scheduled_in_its_states_from_none() {
    // (flags, state from NONE by the INPUT-ONLY rows, active by tcp_state_active_table,
    // timeout in seconds by tcp_timeouts)
    let cases: [(u8, ConnState, bool, u64); 7] = [
        (ACK, ConnState::Established, true, 900),
        (ACK | PSH, ConnState::Established, true, 900),
        (SYN, ConnState::SynRecv, true, 60),
        (SYN | ACK, ConnState::SynRecv, true, 60),
        (FIN, ConnState::Close, false, 10),
        (FIN | ACK, ConnState::Close, false, 10),
        (PSH, ConnState::Close, false, 10),
    ];
    for (flags, state, active, timeout) in cases {
        let (mut d, reals) = director(true, SchedulerKind::Rr, [1, 2, 3, 4]);
        let verdict = d.process(at(5), &mut tcp4_payload(CLIENT, 40000, VIP, 80, flags, b"x"));
        let Verdict::Forward { real } = verdict else {
            panic!("flags {flags:#04x}: {verdict:?}");
        };
        assert!(reals.contains(&real));
        let conn = d.connections().next().unwrap();
        assert_eq!(conn.state, state, "flags {flags:#04x}");
        assert_eq!(conn.expires, at(5 + timeout), "flags {flags:#04x}");
        let r = d.real(real).unwrap();
        assert_eq!((r.active_conns(), r.inactive_conns()), (u32::from(active), u32::from(!active)));
        assert_eq!(d.counters().conns_created(), 1);
    }
}

#[test]
fn with_sloppy_tcp_a_reset_still_opens_nothing() {
    let (mut d, _) = director(true, SchedulerKind::Rr, [1, 2, 3, 4]);
    for flags in [RST, RST | ACK, RST | SYN, RST | FIN] {
        let verdict = d.process(at(1), &mut tcp4(CLIENT, 40000, VIP, 80, flags));
        assert_eq!(verdict, Verdict::Pass(PassReason::NoConnection), "flags {flags:#04x}");
    }
    assert_eq!(d.connection_count(), 0);
}

#[test]
fn a_sloppy_entry_lives_on_as_any_established_one() {
    let (mut d, _) = director(true, SchedulerKind::Rr, [1, 2, 3, 4]);
    let first = d.process(at(0), &mut tcp4_payload(CLIENT, 40000, VIP, 80, ACK, b"data"));
    // Later segments find the entry: same server, ESTABLISHED re-armed by each.
    let again = d.process(at(100), &mut tcp4_payload(CLIENT, 40000, VIP, 80, ACK, b"more"));
    assert_eq!(first, again);
    let conn = d.connections().next().unwrap();
    assert_eq!((conn.state, conn.expires), (ConnState::Established, at(1000)));
    // The client's FIN: ESTABLISHED → FIN_WAIT (120 s).
    assert_eq!(d.process(at(200), &mut tcp4(CLIENT, 40000, VIP, 80, FIN | ACK)), first);
    let conn = d.connections().next().unwrap();
    assert_eq!((conn.state, conn.expires), (ConnState::FinWait, at(320)));
    assert_eq!(d.counters().conns_created(), 1);
}

/// The point of `sloppy_tcp` with `mh`: a flow that began on one director and is moved by
/// the router to another, which has never seen it, reaches the same real server there,
/// whatever each director's hash seed.
#[test]
fn with_mh_a_flow_moved_mid_stream_to_another_director_keeps_its_server() {
    let (mut a, reals_a) = director(true, SchedulerKind::Mh, [1, 2, 3, 4]);
    let (mut b, reals_b) = director(true, SchedulerKind::Mh, [9, 8, 7, 6]);
    let mut servers = std::collections::HashSet::new();
    // mh hashes the client's address (no mh-port flag): one flow per client.
    for host in 1..=200u8 {
        let client = format!("192.0.2.{host}");
        let port = 30000 + u16::from(host);
        let Verdict::Forward { real: on_a } =
            a.process(at(1), &mut tcp4(&client, port, VIP, 80, SYN))
        else {
            panic!("{client}: the SYN was not forwarded");
        };
        let mid_stream = &mut tcp4_payload(&client, port, VIP, 80, ACK | PSH, b"GET /");
        let Verdict::Forward { real: on_b } = b.process(at(2), mid_stream) else {
            panic!("{client}: the mid-stream segment was not forwarded");
        };
        let index_a = reals_a.iter().position(|&r| r == on_a).unwrap();
        let index_b = reals_b.iter().position(|&r| r == on_b).unwrap();
        assert_eq!(index_a, index_b, "{client}");
        servers.insert(index_a);
        let entry = b.connections().find(|c| c.key.client_port == port).unwrap();
        assert_eq!(entry.state, ConnState::Established);
    }
    assert_eq!(servers.len(), 3, "the flows spread over every server");
    // Without sloppy_tcp the second director passes them to its host instead.
    let (mut strict, _) = director(false, SchedulerKind::Mh, [9, 8, 7, 6]);
    let verdict = strict.process(at(2), &mut tcp4_payload(CLIENT, 30000, VIP, 80, ACK, b"GET /"));
    assert_eq!(verdict, Verdict::Pass(PassReason::NoConnection));
}

#[test]
fn sloppy_tcp_changes_on_reconfigure() {
    let (mut d, _) = director(false, SchedulerKind::Rr, [1, 2, 3, 4]);
    let mut config = d.config().clone();
    config.sloppy_tcp = true;
    assert_eq!(d.reconfigure(&config).unwrap(), ["sloppy_tcp"]);
    assert!(d.process(at(1), &mut tcp4(CLIENT, 40000, VIP, 80, ACK)).is_transmit());
    assert_eq!(only_state(&d), ConnState::Established);
}
