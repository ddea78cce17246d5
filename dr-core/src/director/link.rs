//! Layer 2 ownership of the VIPs: ARP and Neighbor Discovery answers, announcements, and
//! learning the real servers' MAC addresses.
//!
//! The host's kernel never holds a VIP, so the director answers for it: ARP requests for an
//! IPv4 VIP and Neighbor Solicitations for an IPv6 VIP are turned into replies in place. At
//! start-up it announces each VIP (gratuitous ARP, unsolicited Neighbor Advertisement).
//!
//! It asks for the real servers' MACs it lacks, and again once per refresh interval for
//! those it learned ([`poll_neighbour_request`](Director::poll_neighbour_request)), and
//! learns a MAC only from the answer to such a request while it is outstanding (see
//! `neigh.rs` for how long that is):
//!
//! - an ARP reply (operation 2) from the real server's address, addressed to the director
//!   (Ethernet destination and ARP target hardware address are the director's MAC), whose
//!   ARP sender hardware address is the frame's Ethernet source;
//! - a Neighbor Advertisement for the real server's address with the Solicited flag,
//!   unicast to the director's MAC, whose Target Link-Layer Address option is the frame's
//!   Ethernet source. As RFC 4861 §7.2.5 says, one without the Override flag teaches a MAC
//!   to an address that has none, and confirms one it already has, but does not replace a
//!   different one.
//!
//! Anything else that names a real server's address with another MAC than the one held (a
//! gratuitous ARP, an ARP request, a reply that fails those tests or comes unasked, an
//! unsolicited advertisement, the source link-layer option of a solicitation) changes
//! nothing and is counted in [`Counters::neighbours_rejected`]; the frame's verdict is the
//! same as it would be otherwise (an ARP request for a VIP is still answered).
//! [`Director::learn_neighbour`] lets an embedder that learned a MAC elsewhere say so.
//!
//! [`Counters::neighbours_rejected`]: crate::Counters::neighbours_rejected

use super::Director;
use crate::mac::MacAddr;
use crate::neigh::{Claim, Learned};
use crate::time::Instant;
use crate::verdict::{DropReason, PassReason, Verdict};
use crate::wire::{
    ArpInfo, GeneratedFrame, IpPacket, NdMessage, Packet, link_local, parse_neighbor_message,
    write_arp_announcement, write_arp_reply, write_arp_request, write_neighbor_advertisement,
    write_neighbor_solicitation, write_unsolicited_advertisement,
};
use core::net::IpAddr;

const ARP_REQUEST: u16 = 1;
const ARP_REPLY: u16 = 2;

impl Director {
    pub(super) fn handle_arp(
        &mut self,
        frame: &mut [u8],
        packet: &Packet,
        arp: &ArpInfo,
    ) -> Verdict {
        let answer = arp.operation == ARP_REPLY
            && packet.dst_mac == self.config.mac
            && arp.target_mac == self.config.mac
            && arp.sender_mac == packet.src_mac;
        let claim = if answer { Claim::Answer { overrides: true } } else { Claim::Unsolicited };
        self.hear(IpAddr::V4(arp.sender_ip), arp.sender_mac, claim);
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
                    self.hear(ip.src, mac, Claim::Unsolicited);
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
            Some(NdMessage::Advertisement { target, target_mac: Some(mac), flags }) => {
                let answer =
                    flags.solicited && packet.dst_mac == self.config.mac && mac == packet.src_mac;
                let claim = if answer {
                    Claim::Answer { overrides: flags.overrides }
                } else {
                    Claim::Unsolicited
                };
                self.hear(IpAddr::V6(target), mac, claim);
            }
            // Without a link-layer address it tells no MAC (RFC 4861 §7.2.5: an address
            // without one ignores it).
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

    /// Tells the director that real server `addr` is at `mac`, as the answer to its ARP
    /// request or Neighbor Solicitation would: for embedders that learn MACs elsewhere
    /// (several directors sharing an interface, each seeing only some of the replies). A
    /// statically configured MAC is kept; an address that is no real server's is ignored.
    /// A MAC it already holds is left as it is (and not counted as a confirmation).
    pub fn learn_neighbour(&mut self, addr: IpAddr, mac: MacAddr) {
        let known = self.neighbours.find(addr).and_then(|id| self.neighbours.get(id).mac);
        if known != Some(mac) {
            let learned = self.neighbours.learn(addr, mac, self.clock);
            self.apply(learned);
        }
    }

    /// What a frame that says `addr` is at `mac` does to the neighbour table.
    fn hear(&mut self, addr: IpAddr, mac: MacAddr, claim: Claim) {
        let retry = self.config.neighbour_retry;
        let learned = self.neighbours.hear(addr, mac, claim, self.clock, retry);
        self.apply(learned);
    }

    /// Gives a learned MAC to the real servers at its address, and counts the outcome.
    fn apply(&mut self, learned: Learned) {
        match learned {
            Learned::Changed(id, mac) => {
                for real in self.reals.iter_mut().filter(|r| r.neighbour == id) {
                    real.mac = Some(mac);
                }
                self.counters.neighbours_learned = self.counters.neighbours_learned.wrapping_add(1);
            }
            Learned::Refused => {
                self.counters.neighbours_rejected =
                    self.counters.neighbours_rejected.wrapping_add(1);
            }
            Learned::Nothing => {}
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
    /// its refresh (`neighbour_refresh` after it was last confirmed). Call it until it
    /// returns `None` whenever [`poll_timeout`](Self::poll_timeout) comes due, and send what
    /// it returns: a MAC is learned only from the answer to a request handed out here,
    /// arriving within `neighbour_retry` of it. A real server whose MAC is unknown is never
    /// scheduled.
    #[must_use]
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
