//! The worked examples of the spec (§1), pick for pick, and sequences of our own.

use super::*;
use crate::flow::Protocol;
use crate::mac::MacAddr;
use crate::neigh::NeighbourId;
use crate::service::ServiceId;
use crate::stats::Stats;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr};

/// Real servers in list order, named A, B, C, … by position.
struct List {
    reals: Vec<RealServer>,
    order: Vec<RealId>,
}

fn real(weight: u32, active: u32, inactive: u32) -> RealServer {
    RealServer {
        addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        service: ServiceId::from_index(0),
        weight,
        mac: Some(MacAddr([2, 0, 0, 0, 0, 1])),
        neighbour: NeighbourId(0),
        active,
        inactive,
        persistent: 0,
        u_threshold: 0,
        l_threshold: 0,
        overloaded: false,
        available: true,
        stats: Stats::default(),
    }
}

impl List {
    /// `(weight, active, inactive)` in list order.
    fn new(servers: &[(u32, u32, u32)]) -> Self {
        let reals: Vec<RealServer> = servers.iter().map(|&(w, a, i)| real(w, a, i)).collect();
        let order = (0..reals.len()).map(RealId::from_index).collect();
        Self { reals, order }
    }

    fn weights(weights: &[u32]) -> Self {
        Self::new(&weights.iter().map(|&w| (w, 0, 0)).collect::<Vec<_>>())
    }

    fn dests(&self) -> Dests<'_> {
        Dests { order: &self.order, reals: &self.reals }
    }

    /// `n` picks as letters; with `stay_active`, each pick adds an active connection.
    fn picks(&mut self, scheduler: &mut Scheduler, n: usize, stay_active: bool) -> String {
        let flow = flow([192, 0, 2, 1], 1000);
        let mut out = String::new();
        for _ in 0..n {
            match scheduler.schedule(&self.dests(), &flow) {
                Some(pos) => {
                    out.push((b'A' + pos as u8) as char);
                    if stay_active {
                        self.reals[pos].active += 1;
                    }
                }
                None => out.push('-'),
            }
        }
        out
    }
}

fn flow(client: [u8; 4], port: u16) -> FlowKey {
    FlowKey {
        protocol: Protocol::Tcp,
        client: IpAddr::V4(Ipv4Addr::from(client)),
        client_port: port,
        vip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)),
        vip_port: 80,
    }
}

fn scheduler(kind: SchedulerKind, list: &List) -> Scheduler {
    Scheduler::new(kind, SchedFlags::NONE, &list.dests())
}

#[test]
fn rr_skips_weight_zero() {
    let mut list = List::weights(&[1, 0, 5]);
    let mut s = scheduler(SchedulerKind::Rr, &list);
    assert_eq!(list.picks(&mut s, 4, false), "ACAC");
}

#[test]
fn wrr_from_init_with_servers_present() {
    let mut list = List::weights(&[4, 3, 2]);
    let mut s = scheduler(SchedulerKind::Wrr, &list);
    assert_eq!(list.picks(&mut s, 18, false), "AABABCABCAABABCABC");
    // Added A, B, C, so the list is C=2, B=3, A=4: the spec's A B A C B A C B A (as names
    // A=4, B=3, C=2), here as positions C->A, B->B, A->C.
    let mut list = List::weights(&[2, 3, 4]);
    let mut s = scheduler(SchedulerKind::Wrr, &list);
    assert_eq!(list.picks(&mut s, 9, false), "CBCABCABC");
}

#[test]
fn wrr_gcd_above_one() {
    let mut list = List::weights(&[4, 2, 6]);
    let mut s = scheduler(SchedulerKind::Wrr, &list);
    assert_eq!(list.picks(&mut s, 12, false), "CACABCCACABC");
}

#[test]
fn wrr_built_one_server_at_a_time_starts_at_cw_one() {
    // ipvsadm -A, then -a C, -a B, -a A: the list is A=4, B=3, C=2.
    let empty = List::weights(&[]);
    let mut s = scheduler(SchedulerKind::Wrr, &empty);
    let mut list = List::weights(&[]);
    for w in [2, 3, 4] {
        list.reals.insert(0, real(w, 0, 0));
        list.order = (0..list.reals.len()).map(RealId::from_index).collect();
        s.added(&list.dests());
    }
    assert_eq!(list.picks(&mut s, 12, false), "ABCAABABCABC");
}

#[test]
fn wrr_weight_change_mid_stream() {
    let mut list = List::weights(&[4, 3, 2]);
    let mut s = scheduler(SchedulerKind::Wrr, &list);
    assert_eq!(list.picks(&mut s, 4, false), "AABA");
    list.reals[1].weight = 1;
    s.edited(&list.dests());
    assert_eq!(list.picks(&mut s, 13, false), "ACABCAAACABCA");
}

#[test]
fn wrr_with_nothing_eligible_fails_and_recovers() {
    let mut list = List::weights(&[0, 0]);
    let mut s = scheduler(SchedulerKind::Wrr, &list);
    assert_eq!(list.picks(&mut s, 2, false), "--");
    let mut list2 = List::weights(&[3, 1]);
    let mut s2 = scheduler(SchedulerKind::Wrr, &list2);
    list2.reals[0].overloaded = true;
    list2.reals[1].overloaded = true;
    assert_eq!(list2.picks(&mut s2, 2, false), "--");
    list2.reals[1].overloaded = false;
    assert_eq!(list2.picks(&mut s2, 3, false), "BBB");
    list.reals[1].weight = 2;
    s.edited(&list.dests());
    assert_eq!(list.picks(&mut s, 2, false), "BB");
}

#[test]
fn lc_spec_example() {
    // A(1 active, 10 inactive: 266), B(0, 300: 300), C(1, 0: 256).
    let mut list = List::new(&[(1, 1, 10), (1, 0, 300), (1, 1, 0)]);
    let mut s = scheduler(SchedulerKind::Lc, &list);
    assert_eq!(list.picks(&mut s, 1, false), "C");
}

#[test]
fn lc_ties_go_to_the_earlier_server_and_weight_zero_is_skipped() {
    let mut list = List::new(&[(0, 0, 0), (5, 1, 0), (1, 1, 0)]);
    let mut s = scheduler(SchedulerKind::Lc, &list);
    assert_eq!(list.picks(&mut s, 1, false), "B");
}

#[test]
fn wlc_spec_examples() {
    let mut list = List::new(&[(1, 10, 0), (2, 15, 100), (3, 20, 500)]);
    let mut s = scheduler(SchedulerKind::Wlc, &list);
    assert_eq!(list.picks(&mut s, 1, false), "C");
    let mut list = List::new(&[(1, 1, 0), (2, 2, 0), (2, 1, 300)]);
    assert_eq!(list.picks(&mut s, 1, false), "A");
    let mut list = List::weights(&[1, 2]);
    assert_eq!(list.picks(&mut s, 9, true), "ABBABBABB");
}

#[test]
fn wlc_never_picks_weight_zero_even_when_idle() {
    let mut list = List::new(&[(1, 5, 0), (0, 0, 0)]);
    let mut s = scheduler(SchedulerKind::Wlc, &list);
    assert_eq!(list.picks(&mut s, 1, false), "A");
    assert_eq!(SchedulerKind::default(), SchedulerKind::Wlc);
}

#[test]
fn sed_spec_example() {
    let mut list = List::weights(&[1, 2]);
    let mut s = scheduler(SchedulerKind::Sed, &list);
    assert_eq!(list.picks(&mut s, 9, true), "BABBABBAB");
}

#[test]
fn nq_prefers_the_first_idle_server() {
    let mut list = List::new(&[(1, 3, 0), (1, 0, 50), (5, 0, 0)]);
    let mut s = scheduler(SchedulerKind::Nq, &list);
    assert_eq!(list.picks(&mut s, 1, false), "B");
    // Nobody idle: minimise (active + 1) / weight, like sed.
    let mut list = List::new(&[(1, 1, 0), (3, 4, 0)]);
    assert_eq!(list.picks(&mut s, 1, false), "B");
}

#[test]
fn sh_hash_values_from_the_spec() {
    for (addr, bucket) in [
        ([192, 0, 2, 1], 50),
        ([192, 0, 2, 2], 148),
        ([198, 51, 100, 10], 208),
        ([203, 0, 113, 77], 57),
    ] {
        assert_eq!(hash_32_8(u32::from(Ipv4Addr::from(addr))), bucket, "{addr:?}");
    }
}

#[test]
fn sh_table_fill_and_fallback_from_the_spec() {
    let list = List::weights(&[1, 2, 1]);
    let Scheduler::Sh(table) = scheduler(SchedulerKind::Sh, &list) else { panic!() };
    let client = |b| flow([192, 0, 2, b], 0);
    // A B B C A B B C ...: bucket 50 = 50 % 4 = 2 -> B.
    assert_eq!(table.schedule(&list.dests(), &client(1)), Some(1));

    // A(1), B(0), C(1): table A B C A B C ...; 192.0.2.2 hashes to bucket 148 = B.
    let list = List::weights(&[1, 0, 1]);
    let plain = Scheduler::new(SchedulerKind::Sh, SchedFlags::NONE, &list.dests());
    let Scheduler::Sh(plain) = plain else { panic!() };
    assert_eq!(plain.schedule(&list.dests(), &client(2)), None, "weight 0: no destination");
    let flags = SchedFlags { sh_port: false, sh_fallback: true, flag_3: false };
    let Scheduler::Sh(fallback) = Scheduler::new(SchedulerKind::Sh, flags, &list.dests()) else {
        panic!()
    };
    // Probes bucket (148 + 148) & 255 = 40 (B again), then 41 (C).
    assert_eq!(fallback.schedule(&list.dests(), &client(2)), Some(2));
}

#[test]
fn sh_port_flag_spreads_one_client() {
    let list = List::weights(&[1, 1, 1, 1]);
    let flags = SchedFlags { sh_port: true, sh_fallback: false, flag_3: false };
    let Scheduler::Sh(table) = Scheduler::new(SchedulerKind::Sh, flags, &list.dests()) else {
        panic!()
    };
    let picks: Vec<_> =
        (0..16).map(|port| table.schedule(&list.dests(), &flow([192, 0, 2, 1], port))).collect();
    assert!(picks.iter().any(|p| *p != picks[0]), "the port changes the bucket");
    let Scheduler::Sh(plain) = scheduler(SchedulerKind::Sh, &list) else { panic!() };
    let same: Vec<_> =
        (0..16).map(|port| plain.schedule(&list.dests(), &flow([192, 0, 2, 1], port))).collect();
    assert!(same.iter().all(|p| *p == same[0]), "without sh-port the port does not count");
}

#[test]
fn every_scheduler_skips_overloaded_and_unresolved_servers() {
    for &kind in SchedulerKind::ALL {
        let mut list = List::weights(&[1, 1, 1]);
        list.reals[0].overloaded = true;
        list.reals[1].mac = None;
        let flags = SchedFlags { sh_port: true, sh_fallback: true, flag_3: false };
        let mut s = Scheduler::new(kind, flags, &list.dests());
        for port in 0..20 {
            let pick = s.schedule(&list.dests(), &flow([192, 0, 2, 1], port));
            assert_eq!(pick, Some(2), "{kind}");
        }
    }
}

#[test]
fn flags_display_as_ipvsadm_lists_them() {
    extern crate alloc;
    use alloc::string::ToString;
    assert_eq!(
        SchedFlags { sh_port: true, sh_fallback: true, flag_3: false }.to_string(),
        "sh-fallback,sh-port"
    );
    assert_eq!(
        SchedFlags { sh_port: true, sh_fallback: false, flag_3: false }.to_string(),
        "sh-port"
    );
    assert_eq!(SchedFlags::NONE.to_string(), "");
    // print_sched_flags: sh names the first two bits, other schedulers number them.
    let all = SchedFlags { sh_port: true, sh_fallback: true, flag_3: true };
    assert_eq!(all.names(SchedulerKind::Sh).to_string(), "sh-fallback,sh-port");
    assert_eq!(all.names(SchedulerKind::Rr).to_string(), "flag-1,flag-2,flag-3");
    let port = SchedFlags::NONE.with_named("sh-port", SchedulerKind::Sh).unwrap();
    assert_eq!(port.names(SchedulerKind::Wlc).to_string(), "flag-2");
    assert_eq!(
        SchedFlags::NONE.with_named("sh-port", SchedulerKind::Rr),
        Err(SchedFlagError::Incompatible)
    );
    assert_eq!(
        SchedFlags::NONE.with_named("flag-1", SchedulerKind::Rr).unwrap(),
        SchedFlags { sh_fallback: true, ..SchedFlags::NONE }
    );
    assert!(SchedFlags::NONE.with_named("mh-port", SchedulerKind::Sh).is_err());
}

#[test]
fn rr_delete_moves_the_pointer_to_the_predecessor() {
    // A B C D, last pick B; delete B: the scan continues with B's successor, C.
    let mut list = List::weights(&[1, 1, 1, 1]);
    let mut s = scheduler(SchedulerKind::Rr, &list);
    assert_eq!(list.picks(&mut s, 2, false), "AB");
    list.reals.remove(1);
    list.order = (0..list.reals.len()).map(RealId::from_index).collect();
    s.removed(1, &list.dests());
    // Positions are now A C D (printed A B C): the next pick is C, then D, then A.
    assert_eq!(list.picks(&mut s, 3, false), "BCA");
    // Deleting the head server while it is the last pick: the pointer goes to the head.
    let mut list = List::weights(&[1, 1, 1]);
    let mut s = scheduler(SchedulerKind::Rr, &list);
    assert_eq!(list.picks(&mut s, 1, false), "A");
    list.reals.remove(0);
    list.order = (0..list.reals.len()).map(RealId::from_index).collect();
    s.removed(0, &list.dests());
    assert_eq!(list.picks(&mut s, 2, false), "AB");
}

#[test]
fn wrr_delete_resets_the_position_and_keeps_cw() {
    let mut list = List::weights(&[4, 3, 2]);
    let mut s = scheduler(SchedulerKind::Wrr, &list);
    assert_eq!(list.picks(&mut s, 4, false), "AABA"); // cw is now 2, at A
    list.reals.remove(1);
    list.order = (0..list.reals.len()).map(RealId::from_index).collect();
    s.removed(1, &list.dests());
    // A=4, C=2 (gcd 2: mw = 3, cw 2 -> (2/2)*2+1 = 3); from the head: A (4 >= 3), then
    // cw 1: A C; cw 3: A; cw 1: A C. C is now at position 1, printed as B.
    assert_eq!(list.picks(&mut s, 6, false), "AABAAB");
}
