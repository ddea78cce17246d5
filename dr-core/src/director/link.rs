//! Layer 2 ownership of the VIPs: ARP and Neighbor Discovery answers, announcements, and
//! learning the real servers' MAC addresses.
//!
//! The host's kernel never holds a VIP, so the director answers for it: ARP requests for an
//! IPv4 VIP and Neighbor Solicitations for an IPv6 VIP are turned into replies in place. At
//! start-up it announces each VIP (gratuitous ARP, unsolicited Neighbor Advertisement). It
//! learns a real server's MAC from any valid ARP packet or Neighbor Discovery message that
//! real server sends, and asks for the ones it lacks.

use super::Director;
use crate::mac::MacAddr;
use crate::neigh::Learned;
use crate::time::Instant;
use crate::verdict::{DropReason, PassReason, Verdict};
use crate::wire::{
    ArpInfo, GeneratedFrame, IpPacket, NdMessage, Packet, link_local, parse_neighbor_message,
    write_arp_announcement, write_arp_reply, write_arp_request, write_neighbor_advertisement,
    write_neighbor_solicitation, write_unsolicited_advertisement,
};
use core::net::IpAddr;

const ARP_REQUEST: u16 = 1;

impl Director {
    pub(super) fn handle_arp(
        &mut self,
        frame: &mut [u8],
        packet: &Packet,
        arp: &ArpInfo,
    ) -> Verdict {
        if arp.sender_mac == packet.src_mac {
            self.learn(IpAddr::V4(arp.sender_ip), arp.sender_mac);
        }
        let for_vip = arp.operation == ARP_REQUEST
            && arp.sender_ip != arp.target_ip
            && self.vips.contains_key(&IpAddr::V4(arp.target_ip))
            && (packet.dst_mac.is_broadcast() || packet.dst_mac == self.config.mac);
        if for_vip {
            return if write_arp_reply(frame, packet.l3_offset, self.config.mac, arp.target_ip) {
                Verdict::Reply
            } else {
                Verdict::Drop(DropReason::MalformedArp)
            };
        }
        match self.link_drop(packet) {
            Some(reason) => Verdict::Drop(reason),
            None => Verdict::Pass(PassReason::Arp),
        }
    }

    pub(super) fn handle_icmpv6(
        &mut self,
        frame: &mut [u8],
        packet: &Packet,
        ip: &IpPacket,
    ) -> Verdict {
        let message = match parse_neighbor_message(frame, packet.l3_offset, ip) {
            Ok(message) => message,
            Err(reason) => return Verdict::Drop(reason),
        };
        match message {
            Some(NdMessage::Solicitation { target, source_mac }) => {
                if let Some(mac) = source_mac {
                    self.learn(ip.src, mac);
                }
                let to_us = packet.dst_mac.is_multicast() || packet.dst_mac == self.config.mac;
                let IpAddr::V6(solicitor) = ip.src else {
                    return Verdict::Drop(DropReason::MalformedNeighborDiscovery);
                };
                // A solicitation from the unspecified address is another node's duplicate
                // address detection; it is not answered.
                if to_us
                    && !solicitor.is_unspecified()
                    && self.vips.contains_key(&IpAddr::V6(target))
                {
                    return if write_neighbor_advertisement(
                        frame,
                        packet.l3_offset,
                        self.config.mac,
                        target,
                        solicitor,
                    ) {
                        Verdict::Reply
                    } else {
                        Verdict::Drop(DropReason::MalformedNeighborDiscovery)
                    };
                }
            }
            Some(NdMessage::Advertisement { target, target_mac: Some(mac) }) => {
                self.learn(IpAddr::V6(target), mac);
            }
            Some(NdMessage::Advertisement { target_mac: None, .. }) => {}
            // Not Neighbor Discovery: errors and echo requests to a VIP are ours.
            None if self.link_drop(packet).is_none() => return self.handle_icmp(frame, packet, ip),
            None => {}
        }
        match self.link_drop(packet) {
            Some(reason) => Verdict::Drop(reason),
            None if self.vips.contains_key(&ip.dst) => Verdict::Pass(PassReason::Icmp),
            None => Verdict::Pass(PassReason::NotVip),
        }
    }

    /// Tells the director that real server `addr` is at `mac`, as an ARP reply or Neighbor
    /// Advertisement would: for embedders that learn MACs elsewhere (several directors
    /// sharing an interface, each seeing only some of the replies). A statically configured
    /// MAC is kept; an address that is no real server's is ignored.
    /// A MAC it already holds is left as it is (and not counted as a confirmation).
    pub fn learn_neighbour(&mut self, addr: IpAddr, mac: MacAddr) {
        let known = self.neighbours.find(addr).and_then(|id| self.neighbours.get(id).mac);
        if known != Some(mac) {
            self.learn(addr, mac);
        }
    }

    /// Records `addr` at `mac` if `addr` is a real server's (not configured statically).
    fn learn(&mut self, addr: IpAddr, mac: MacAddr) {
        if let Learned::Changed(id, mac) = self.neighbours.learn(addr, mac, self.clock) {
            for real in self.reals.iter_mut().filter(|r| r.neighbour == id) {
                real.mac = Some(mac);
            }
            self.counters.neighbours_learned = self.counters.neighbours_learned.wrapping_add(1);
        }
    }

    /// The frames that announce every VIP at the director's MAC, one per VIP in the order
    /// the VIPs were first configured: a gratuitous ARP (an RFC 5227 announcement) for IPv4,
    /// an unsolicited Neighbor Advertisement with the override flag for IPv6. Send them at
    /// start-up so that neighbours' caches point at the director.
    pub fn announcements(&self) -> impl Iterator<Item = GeneratedFrame> + '_ {
        let mac = self.config.mac;
        self.vip_order.iter().filter_map(move |vip| match *vip {
            IpAddr::V4(v4) => GeneratedFrame::build(|buf| write_arp_announcement(buf, mac, v4)),
            IpAddr::V6(v6) => {
                GeneratedFrame::build(|buf| write_unsolicited_advertisement(buf, mac, v6))
            }
        })
    }

    /// The next ARP request or Neighbor Solicitation for a real server whose MAC is not yet
    /// known (at most one per server per `neighbour_retry`), or whose learned MAC is due for
    /// its refresh (`neighbour_refresh` after it was last confirmed). Call it until it returns `None`
    /// whenever [`poll_timeout`](Self::poll_timeout) comes due. A real server whose MAC is
    /// unknown is never scheduled.
    pub fn poll_neighbour_request(&mut self, now: Instant) -> Option<GeneratedFrame> {
        let now = self.advance_clock(now);
        let addr = self.neighbours.next_request(now, self.config.neighbour_retry)?;
        let mac = self.config.mac;
        match addr {
            IpAddr::V4(target) => {
                let sender = self.config.ipv4.unwrap_or(core::net::Ipv4Addr::UNSPECIFIED);
                GeneratedFrame::build(|buf| write_arp_request(buf, mac, sender, target))
            }
            IpAddr::V6(target) => {
                let source = self.config.ipv6.unwrap_or_else(|| link_local(mac));
                GeneratedFrame::build(|buf| write_neighbor_solicitation(buf, mac, source, target))
            }
        }
    }
}
