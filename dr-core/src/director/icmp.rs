//! ICMP to a VIP (spec §3.4): errors about a connection are relayed to its real server,
//! echo requests are answered (or passed to the host), everything else goes to the host.

use super::Director;
use crate::verdict::{DropReason, PassReason, Verdict};
use crate::wire::{
    IcmpKind, IpPacket, Packet, icmp_checksum_ok, icmp_kind, quoted_flow, write_echo_reply,
};

impl Director {
    /// An ICMP or ICMPv6 message (not Neighbor Discovery) to a unicast destination at our
    /// MAC.
    pub(super) fn handle_icmp(
        &mut self,
        frame: &mut [u8],
        packet: &Packet,
        ip: &IpPacket,
    ) -> Verdict {
        if !self.vips.contains_key(&ip.dst) {
            return Verdict::Pass(PassReason::NotVip);
        }
        let kind = icmp_kind(ip.transport);
        if kind == IcmpKind::Other || ip.fragment.is_some() {
            // A fragmented ICMPv6 message is dropped (`ip_vs_in_icmp_v6`); a fragmented IPv4
            // one would need reassembly first: the host's stack has it.
            return if ip.fragment.is_some() && !ip.src.is_ipv4() {
                Verdict::Drop(DropReason::Fragment)
            } else {
                Verdict::Pass(PassReason::Icmp)
            };
        }
        if !icmp_checksum_ok(frame, packet, ip) {
            return Verdict::Drop(DropReason::IcmpChecksum);
        }
        match kind {
            IcmpKind::Error => self.relay_icmp_error(frame, packet, ip),
            IcmpKind::EchoRequest if self.config.icmp_echo => {
                if write_echo_reply(frame, packet, ip, self.config.mac) {
                    self.counters.echo_replies = self.counters.echo_replies.wrapping_add(1);
                    Verdict::Reply
                } else {
                    Verdict::Drop(DropReason::MalformedIcmp)
                }
            }
            _ => Verdict::Pass(PassReason::Icmp),
        }
    }

    /// `ip_vs_in_icmp`: the connection the error quotes gets it, unchanged but for the MACs
    /// (and the TTL in `decrement_ttl` mode). Its state and timer do not change; the packet
    /// counts in the statistics of a server still in its service.
    fn relay_icmp_error(&mut self, frame: &mut [u8], packet: &Packet, ip: &IpPacket) -> Verdict {
        let Some(key) = quoted_flow(frame, packet, ip) else {
            return Verdict::Pass(PassReason::Icmp);
        };
        let hash = self.conns.hash(&key);
        let Some(id) = self.conns.find(hash, &key, false) else {
            return Verdict::Pass(PassReason::Icmp);
        };
        let real_id = self.conns.get(id).real;
        let Some(real) = self.reals.get(real_id.index()) else {
            return Verdict::Pass(PassReason::Icmp);
        };
        let Some(mac) = real.mac else {
            return Verdict::Drop(DropReason::NoRealAvailable);
        };
        if real.available {
            self.count_in(real_id, ip.datagram_len, true);
        }
        let verdict = self.transmit(frame, packet, ip, real_id, mac);
        if verdict.is_transmit() {
            self.counters.icmp_relayed = self.counters.icmp_relayed.wrapping_add(1);
        }
        verdict
    }
}
