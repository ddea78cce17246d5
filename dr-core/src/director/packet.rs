//! The packet path.
//!
//! Order of the checks for an IP packet, after IPVS's `ip_vs_in_hook` where it has one:
//! link layer (own frames, group and foreign destinations), Neighbor Discovery, then for TCP
//! and UDP the connection lookup, and only on a miss the service lookup and the scheduler.

use super::{Director, release};
use crate::conn::{Conn, ConnId, ConnState, FLAG_INACTIVE, expiry};
use crate::flow::FlowKey;
use crate::sched::Dests;
use crate::service::{Service, ServiceKey};
use crate::time::Instant;
use crate::verdict::{DropReason, PassReason, Verdict};
use crate::wire::{self, IpPacket, Network, Packet, Transport, classify};

impl Director {
    /// Decides what happens to one Ethernet frame (without FCS), rewriting it in place when
    /// the verdict is to transmit it.
    ///
    /// - A packet of a connection, or a TCP SYN / UDP datagram that opens one, is
    ///   [`Verdict::Forward`]ed: destination MAC = the real server's, source MAC = the
    ///   director's, nothing else changed (but the TTL in `decrement_ttl` mode).
    /// - An ARP request or Neighbor Solicitation for a VIP becomes the [`Verdict::Reply`].
    /// - Anything not for a VIP service is [`Verdict::Pass`]ed to the host; malformed frames,
    ///   our own frames and group or foreign destinations are [`Verdict::Drop`]ped.
    ///
    /// `now` earlier than a time seen before counts as that time. Every verdict is counted
    /// in [`counters`](Self::counters). This never allocates and never panics.
    pub fn process(&mut self, now: Instant, frame: &mut [u8]) -> Verdict {
        let now = self.advance_clock(now);
        let verdict = self.decide(now, frame);
        self.counters.record(verdict);
        verdict
    }

    fn decide(&mut self, now: Instant, frame: &mut [u8]) -> Verdict {
        let packet = match classify(frame) {
            Ok(packet) => packet,
            Err(reason) => return Verdict::Drop(reason),
        };
        if packet.src_mac == self.config.mac {
            return Verdict::Drop(DropReason::OwnFrame);
        }
        if packet.src_mac.is_multicast() {
            return Verdict::Drop(DropReason::InvalidSourceMac);
        }
        match packet.network {
            Network::Arp(arp) => self.handle_arp(frame, &packet, &arp),
            Network::Ip(ip) => self.handle_ip(now, frame, &packet, &ip),
            Network::Other { .. } => match self.link_drop(&packet) {
                Some(reason) => Verdict::Drop(reason),
                None => Verdict::Pass(PassReason::OtherEtherType),
            },
        }
    }

    /// Why a frame not meant for the director's layer 2 handling must be dropped, if it must.
    pub(super) fn link_drop(&self, packet: &Packet) -> Option<DropReason> {
        if packet.dst_mac.is_multicast() {
            Some(DropReason::NotUnicast)
        } else if packet.dst_mac != self.config.mac {
            Some(DropReason::OtherHost)
        } else {
            None
        }
    }

    fn handle_ip(
        &mut self,
        now: Instant,
        frame: &mut [u8],
        packet: &Packet,
        ip: &IpPacket,
    ) -> Verdict {
        if let Transport::Icmpv6 { .. } = ip.transport {
            return self.handle_icmpv6(frame, packet, ip);
        }
        if let Some(reason) = self.link_drop(packet) {
            return Verdict::Drop(reason);
        }
        let is_vip = self.vips.contains_key(&ip.dst);
        match ip.transport {
            Transport::Tcp { .. } | Transport::Udp { .. } if ip.fragment.is_none() => {
                self.handle_flow(now, frame, packet, ip)
            }
            Transport::Tcp { .. }
            | Transport::Udp { .. }
            | Transport::Fragment { protocol: 6 | 17 }
                if is_vip =>
            {
                Verdict::Drop(DropReason::Fragment)
            }
            _ if !is_vip => Verdict::Pass(PassReason::NotVip),
            Transport::Icmpv4 { .. } | Transport::Icmpv6 { .. } => Verdict::Pass(PassReason::Icmp),
            _ => Verdict::Pass(PassReason::OtherProtocol),
        }
    }

    /// A complete TCP segment or UDP datagram, to a unicast destination at our MAC.
    fn handle_flow(
        &mut self,
        now: Instant,
        frame: &mut [u8],
        packet: &Packet,
        ip: &IpPacket,
    ) -> Verdict {
        let Some(key) = ip.flow_key() else {
            return Verdict::Pass(PassReason::OtherProtocol);
        };
        let hash = self.conns.hash(&key);
        if let Some(id) = self.conns.find(hash, &key) {
            let conn = self.conns.get(id);
            let available = self.reals.get(conn.real.index()).is_some_and(|r| r.available);
            if conn.expires > now && available {
                return self.forward(now, frame, packet, ip, id);
            }
            if conn.expires > now && !self.config.expire_nodest_conn {
                // ip_vs_in_hook: the server was removed; its packets are dropped.
                return Verdict::Drop(DropReason::RealRemoved);
            }
            // Its timer ran out before handle_timeout came round, or its server was removed
            // with expire_nodest_conn: it is gone, and the packet is treated as new.
            let conn = self.conns.remove(id);
            release(&mut self.reals, &mut self.counters, &conn);
        }
        self.new_connection(now, frame, packet, ip, key, hash)
    }

    fn new_connection(
        &mut self,
        now: Instant,
        frame: &mut [u8],
        packet: &Packet,
        ip: &IpPacket,
        key: FlowKey,
        hash: u64,
    ) -> Verdict {
        let service_key = ServiceKey { protocol: key.protocol, vip: key.vip, port: key.vip_port };
        let Some(service_id) = self.service_index.get(&service_key).copied() else {
            let vip = self.vips.contains_key(&key.vip);
            return Verdict::Pass(if vip { PassReason::NoService } else { PassReason::NotVip });
        };
        if let Transport::Tcp { flags, .. } = ip.transport
            && (!flags.syn() || flags.rst())
        {
            return Verdict::Pass(PassReason::NoConnection);
        }
        // Checked before scheduling, so a refused connection does not move the scheduler.
        if self.conns.is_full() {
            return Verdict::Drop(DropReason::ConnTableFull);
        }
        let Service { scheduler, reals: order, stats, .. } = &mut self.services[service_id.index()];
        let Some(position) = scheduler.schedule(&Dests { order, reals: &self.reals }, &key) else {
            if self.config.icmp_port_unreachable {
                self.queue_port_unreachable(now, frame, packet, ip);
            }
            return Verdict::Drop(DropReason::NoRealAvailable);
        };
        let real_id = order[position];
        stats.count_conn();
        // forward() applies the first packet's transition and arms the timer.
        let Ok(id) = self.conns.insert(hash, Conn::new(key, service_id, real_id)) else {
            return Verdict::Drop(DropReason::ConnTableFull);
        };
        let real = &mut self.reals[real_id.index()];
        real.bind();
        real.stats.count_conn();
        self.totals.count_conn();
        self.counters.conns_created = self.counters.conns_created.wrapping_add(1);
        self.forward(now, frame, packet, ip, id)
    }

    /// Counts the packet, moves the connection's state, re-arms its timer and rewrites the
    /// frame for its real server, in the order of `ip_vs_in_hook`.
    fn forward(
        &mut self,
        now: Instant,
        frame: &mut [u8],
        packet: &Packet,
        ip: &IpPacket,
        id: ConnId,
    ) -> Verdict {
        let conn = self.conns.get_mut(id);
        let (real_id, service_id) = (conn.real, conn.service);
        let next = match ip.transport {
            Transport::Tcp { flags, .. } => conn.state.next_tcp(flags),
            _ => ConnState::Udp,
        };
        let real = &mut self.reals[real_id.index()];
        if next != conn.state && next != ConnState::Udp {
            // set_tcp_state: move the connection between the active and inactive counts.
            if !conn.is_inactive() && !next.is_active() {
                real.active = real.active.saturating_sub(1);
                real.inactive += 1;
                conn.flags |= FLAG_INACTIVE;
            } else if conn.is_inactive() && next.is_active() {
                real.inactive = real.inactive.saturating_sub(1);
                real.active += 1;
                conn.flags &= !FLAG_INACTIVE;
            }
        }
        conn.state = next;
        real.stats.count_packet(ip.datagram_len);
        self.services[service_id.index()].stats.count_packet(ip.datagram_len);
        self.totals.count_packet(ip.datagram_len);
        let mac = real.mac;
        self.conns.rearm(id, expiry(now, self.timeouts.of(next)));

        // Only servers with a MAC are scheduled, and a MAC once known is never forgotten.
        let Some(mac) = mac else {
            return Verdict::Drop(DropReason::NoRealAvailable);
        };
        if self.config.decrement_ttl
            && let Err(reason) = wire::decrement_ttl(frame, packet.l3_offset, ip.src.is_ipv4())
        {
            return Verdict::Drop(reason);
        }
        frame[0..6].copy_from_slice(&mac.0);
        frame[6..12].copy_from_slice(&self.config.mac.0);
        Verdict::Forward { real: real_id }
    }
}
