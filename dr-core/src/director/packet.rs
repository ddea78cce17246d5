//! The packet path.
//!
//! Order of the checks for an IP packet, after IPVS's `ip_vs_in_hook` where it has one:
//! link layer (own frames, group and foreign destinations), Neighbor Discovery, then for TCP
//! and UDP the connection lookup, and only on a miss the service lookup and the scheduler.
//!
//! The steps a packet of an established connection takes (classification, lookup, state,
//! counters, rewrite) are `#[inline(always)]` down to the table: they become one function
//! with no calls and no copies of the classified packet between them, which measured a fifth
//! fewer instructions per frame than the compiler's own choices. New connections, layer 2
//! and ICMP stay out of line.

use super::{Director, release};
use crate::conn::{
    Conn, ConnId, ConnState, FLAG_ASSURED, FLAG_EXPIRE_LATER, FLAG_INACTIVE, TEMPLATE_EXPIRE_LATER,
    expiry,
};
use crate::flow::{FlowKey, Protocol};
use crate::fragments::{DatagramId, FragmentTarget};
use crate::mac::MacAddr;
use crate::sched::Dests;
use crate::service::{Persistence, RealId, RealServer, Service, ServiceId, ServiceKey};
use crate::time::{Duration, Instant};
use crate::verdict::{DropReason, PassReason, Verdict};
use crate::wire::{self, IpPacket, Network, Packet, Transport, classify};

impl Director {
    /// Decides what happens to one Ethernet frame (without FCS), rewriting it in place when
    /// the verdict is to transmit it.
    ///
    /// - A packet of a connection, or a TCP SYN (with `sloppy_tcp`, any segment without
    ///   RST) / UDP datagram that opens one, is
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
        let packet = classify(frame);
        self.decide_counted(now, frame, packet.as_ref(), None)
    }

    /// Decides for a frame already classified (`packet` is `classify(frame)`), and counts
    /// the verdict. `now` has been through [`advance_clock`](Self::advance_clock);
    /// `key_hash`, when the caller has it, is the hash of the packet's flow key.
    #[inline(always)]
    pub(super) fn decide_counted(
        &mut self,
        now: Instant,
        frame: &mut [u8],
        packet: Result<&Packet, &DropReason>,
        key_hash: Option<u64>,
    ) -> Verdict {
        let verdict = match packet {
            Ok(packet) => self.decide(now, frame, packet, key_hash),
            Err(reason) => Verdict::Drop(*reason),
        };
        self.counters.record(verdict);
        verdict
    }

    #[inline(always)]
    fn decide(
        &mut self,
        now: Instant,
        frame: &mut [u8],
        packet: &Packet,
        key_hash: Option<u64>,
    ) -> Verdict {
        if packet.src_mac == self.config.mac {
            return Verdict::Drop(DropReason::OwnFrame);
        }
        if packet.src_mac.is_multicast() {
            return Verdict::Drop(DropReason::InvalidSourceMac);
        }
        if !self.config.vlans.serves(&packet.vlans) {
            return Verdict::Pass(PassReason::VlanNotServed);
        }
        match &packet.network {
            Network::Arp(arp) => self.handle_arp(frame, packet, arp),
            Network::Ip(ip) => self.handle_ip(now, frame, packet, ip, key_hash),
            Network::Other { .. } => match self.link_drop(packet) {
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

    #[inline(always)]
    fn handle_ip(
        &mut self,
        now: Instant,
        frame: &mut [u8],
        packet: &Packet,
        ip: &IpPacket,
        key_hash: Option<u64>,
    ) -> Verdict {
        if let Some(reason) = self.martian_source(packet, ip) {
            return Verdict::Drop(reason);
        }
        if let Transport::Icmpv6 { .. } = ip.transport {
            return self.handle_icmpv6(frame, packet, ip);
        }
        if let Some(reason) = self.link_drop(packet) {
            return Verdict::Drop(reason);
        }
        match ip.transport {
            Transport::Tcp { .. } | Transport::Udp { .. } => match ip.fragment {
                None => self.handle_flow(now, frame, packet, ip, key_hash),
                Some(_) => self.handle_first_fragment(now, frame, packet, ip, key_hash),
            },
            Transport::Fragment { protocol } if self.vips.contains_key(&ip.dst) => {
                self.handle_later_fragment(now, frame, packet, ip, protocol)
            }
            Transport::Icmpv4 { .. } => self.handle_icmp(frame, packet, ip),
            _ if !self.vips.contains_key(&ip.dst) => Verdict::Pass(PassReason::NotVip),
            _ => Verdict::Pass(PassReason::OtherProtocol),
        }
    }

    /// The first fragment of a TCP or UDP datagram carries the ports: it is handled as the
    /// whole datagram would be, and where it goes is remembered for the later fragments.
    fn handle_first_fragment(
        &mut self,
        now: Instant,
        frame: &mut [u8],
        packet: &Packet,
        ip: &IpPacket,
        key_hash: Option<u64>,
    ) -> Verdict {
        let verdict = self.handle_flow(now, frame, packet, ip, key_hash);
        let target = match verdict {
            Verdict::Forward { real } => FragmentTarget::Real(real),
            Verdict::Pass(PassReason::NotVip) => return verdict,
            Verdict::Pass(_) => FragmentTarget::Host,
            Verdict::Drop(_) | Verdict::Reply => return verdict,
        };
        self.fragments.insert(datagram_id(ip, ip_protocol(ip.transport)), target, now);
        verdict
    }

    /// A later fragment to a VIP goes where its first fragment went; it adds its data to
    /// the byte counts (the datagram was counted as one packet with its first fragment).
    fn handle_later_fragment(
        &mut self,
        now: Instant,
        frame: &mut [u8],
        packet: &Packet,
        ip: &IpPacket,
        protocol: u8,
    ) -> Verdict {
        let real_id = match self.fragments.get(&datagram_id(ip, protocol), now) {
            Some(FragmentTarget::Real(real)) => real,
            Some(FragmentTarget::Host) => return Verdict::Pass(PassReason::Fragment),
            None if protocol == 6 || protocol == 17 => {
                return Verdict::Drop(DropReason::FragmentUnmatched);
            }
            None if protocol == 1 || protocol == 58 => return Verdict::Pass(PassReason::Icmp),
            None => return Verdict::Pass(PassReason::OtherProtocol),
        };
        let Some(real) = self.reals.get_mut(real_id.index()) else {
            return Verdict::Drop(DropReason::FragmentUnmatched);
        };
        if !real.available && !self.config.expire_nodest_conn {
            return Verdict::Drop(DropReason::RealRemoved);
        }
        let Some(mac) = real.mac.filter(|_| real.available) else {
            return Verdict::Drop(DropReason::FragmentUnmatched);
        };
        self.count_in(real_id, ip.stats_len(), false);
        let verdict = self.transmit(frame, packet, ip, real_id, mac);
        if verdict.is_transmit() {
            self.counters.fragments_forwarded = self.counters.fragments_forwarded.wrapping_add(1);
        }
        verdict
    }

    /// A complete TCP segment or UDP datagram, to a unicast destination at our MAC.
    ///
    /// In the order of `ip_vs_in_hook`: the connection lookup; a SYN that finds a
    /// connection the port-reuse rules expire starts afresh; a connection whose server was
    /// removed drops its packets or, with `expire_nodest_conn`, gives way to a new one; what
    /// found no connection is scheduled. Entries that came due were expired before the frame
    /// was decided, so every entry found is live.
    #[inline(always)]
    fn handle_flow(
        &mut self,
        now: Instant,
        frame: &mut [u8],
        packet: &Packet,
        ip: &IpPacket,
        key_hash: Option<u64>,
    ) -> Verdict {
        let Some(key) = ip.flow_key() else {
            return Verdict::Pass(PassReason::OtherProtocol);
        };
        let hash = key_hash.unwrap_or_else(|| self.conns.hash(&key));
        if let Some(id) = self.conns.find(hash, &key, false) {
            let conn = self.conns.get(id);
            let real = self.reals.get(conn.real.index());
            let available = real.is_some_and(|r| r.available);
            let syn = matches!(ip.transport, Transport::Tcp { flags, .. } if flags.syn());
            let reused = syn && self.reschedules(conn, real);
            if !reused {
                if available {
                    return self.forward(now, frame, packet, ip, id);
                }
                if !self.config.expire_nodest_conn {
                    // ip_vs_in_hook: the server was removed; its packets are dropped.
                    return Verdict::Drop(DropReason::RealRemoved);
                }
            }
            // A SYN reuses its port, or its server was removed with expire_nodest_conn: the
            // entry is expired now, and the packet is new.
            let conn = self.conns.remove(id);
            release(&mut self.reals, &mut self.counters, &conn);
            if reused {
                self.counters.conns_reused = self.counters.conns_reused.wrapping_add(1);
            }
        }
        self.new_connection(now, frame, packet, ip, key, hash)
    }

    /// Whether a SYN that finds this connection expires it and is scheduled afresh (the
    /// reuse block of `ip_vs_in_hook`, kernel 5.16 and later):
    ///
    /// - with `expire_nodest_conn`, when its server's weight is 0, whatever
    ///   `conn_reuse_mode` says;
    /// - with `conn_reuse_mode` not 0, when `is_new_conn_expected`: the connection is not
    ///   controlled by a template and is in TIME_WAIT or CLOSE, or in FIN_WAIT when bit 2 of
    ///   the mode is set (Direct Routing connections never see output, so FIN_WAIT is their
    ///   last state).
    ///
    /// This comes before the check of the server's availability, so a reused port of a
    /// removed server is scheduled afresh rather than dropped.
    fn reschedules(&self, conn: &Conn, real: Option<&RealServer>) -> bool {
        if self.config.expire_nodest_conn && real.is_some_and(|r| r.weight == 0) {
            return true;
        }
        let mode = self.config.conn_reuse_mode;
        mode != 0
            && conn.controller().is_none()
            && match conn.state {
                ConnState::TimeWait | ConnState::Close => true,
                ConnState::FinWait => mode & 2 != 0,
                _ => false,
            }
    }

    /// The service a new connection to `key` belongs to: `(protocol, VIP, port)`, or the
    /// VIP's port-0 service (`ip_vs_service_find`).
    pub(super) fn find_service_for(&self, key: &FlowKey) -> Option<ServiceId> {
        let exact = ServiceKey { protocol: key.protocol, vip: key.vip, port: key.vip_port };
        self.service_index.get(&exact).copied().or_else(|| {
            (self.port_zero_services > 0)
                .then(|| self.service_index.get(&ServiceKey { port: 0, ..exact }).copied())
                .flatten()
        })
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
        let Some(service_id) = self.find_service_for(&key) else {
            let vip = self.vips.contains_key(&key.vip);
            return Verdict::Pass(if vip { PassReason::NoService } else { PassReason::NotVip });
        };
        // tcp_conn_schedule: a reset never opens a connection; without sloppy_tcp only a
        // SYN does (a SYN+ACK too: the kernel has no ACK check there).
        if let Transport::Tcp { flags, .. } = ip.transport
            && (flags.rst() || !(self.config.sloppy_tcp || flags.syn()))
        {
            return Verdict::Pass(PassReason::NoConnection);
        }
        let service = &self.services[service_id.index()];
        // ip_vs_schedule, ip_vs_sched_persist: IP_VS_CONN_F_ONE_PACKET only for UDP.
        let one_packet = service.one_packet && key.protocol == Protocol::Udp;
        let entries = usize::from(!one_packet);
        let pick = match service.persistence {
            Some(persistence) => self.persistent_pick(now, service_id, persistence, &key, entries),
            None => self.pick(now, service_id, &key, entries).map(|real| (real, None)),
        };
        let (real_id, template) = match pick {
            Ok(pick) => pick,
            Err(reason) => {
                if reason == DropReason::NoRealAvailable && self.config.icmp_port_unreachable {
                    self.queue_port_unreachable(now, frame, packet, ip);
                }
                return Verdict::Drop(reason);
            }
        };
        let conn = match template {
            Some(template) => Conn::controlled_by(key, real_id, template),
            None => Conn::new(key, real_id),
        };
        if one_packet {
            return self.forward_one_packet(now, frame, packet, ip, service_id, &conn);
        }
        // Room was made before the pick; forward() applies the first packet's transition and
        // arms the timer.
        let Ok(id) = self.conns.insert(hash, conn) else {
            if let Some(template) = template {
                self.conns.unhold(template);
            }
            return Verdict::Drop(DropReason::ConnTableFull);
        };
        self.bind_new(now, service_id, real_id, template);
        self.counters.conns_created = self.counters.conns_created.wrapping_add(1);
        self.forward(now, frame, packet, ip, id)
    }

    /// A new connection of `service` to `real` (`ip_vs_bind_dest`): bound to the real
    /// server, counted as a connection of it, its service and the totals, and its template
    /// re-armed (`ip_vs_sched_persist`: each new connection re-arms its template).
    fn bind_new(
        &mut self,
        now: Instant,
        service: ServiceId,
        real: RealId,
        template: Option<ConnId>,
    ) {
        let r = &mut self.reals[real.index()];
        r.bind(false);
        r.stats.count_conn();
        self.services[service.index()].stats.count_conn();
        self.totals.count_conn();
        if let Some(template) = template {
            let timeout = self.template_timeout(self.conns.get(template));
            self.conns.rearm(template, expiry(now, timeout));
        }
    }

    /// One-packet scheduling (`IP_VS_CONN_F_ONE_PACKET`): the datagram was scheduled on its
    /// own, and its entry lives only as long as the packet, as the kernel's does
    /// (`ip_vs_conn_hash` never hashes it, `ip_vs_conn_put` expires it at once). What the
    /// entry leaves behind is kept: a connection and the packet counted, its real server's
    /// bind and unbind (which may set and clear the overload flag), the template re-armed,
    /// and for the sync master the template that controls it (`ip_vs_sync_conn` skips the
    /// entry itself). No entry is made, so no table space is needed and nothing expires.
    fn forward_one_packet(
        &mut self,
        now: Instant,
        frame: &mut [u8],
        packet: &Packet,
        ip: &IpPacket,
        service: ServiceId,
        conn: &Conn,
    ) -> Verdict {
        let (real_id, template) = (conn.real, conn.controller());
        self.bind_new(now, service, real_id, template);
        let real = &mut self.reals[real_id.index()];
        real.unbind(conn);
        let mac = real.mac;
        self.counters.one_packet = self.counters.one_packet.wrapping_add(1);
        self.count_in(real_id, ip.stats_len(), true);
        if let Some(template) = template
            && self.sync.is_some()
        {
            self.sync_controller(now, template);
        }
        let Some(mac) = mac else {
            return Verdict::Drop(DropReason::NoRealAvailable);
        };
        self.transmit(frame, packet, ip, real_id, mac)
    }

    /// Makes room for `entries` new entries, then runs the service's scheduler. Room is
    /// made first so that a refused connection does not move the scheduler.
    fn pick(
        &mut self,
        now: Instant,
        service: ServiceId,
        key: &FlowKey,
        entries: usize,
    ) -> Result<RealId, DropReason> {
        if !self.make_room(entries) {
            return Err(DropReason::ConnTableFull);
        }
        let Service { scheduler, reals: order, .. } = &mut self.services[service.index()];
        let real = scheduler.schedule(&Dests { order, reals: &self.reals }, key, now);
        real.ok_or(DropReason::NoRealAvailable)
    }

    /// `ip_vs_sched_persist`: the real server of the client's template, or a scheduled one
    /// with a new template. Returns the server and the template. `entries` is the room the
    /// connection needs besides the template: 1, or 0 for a one-packet datagram, which
    /// makes none (a template it finds is then proven: the client network sent again).
    fn persistent_pick(
        &mut self,
        now: Instant,
        service: ServiceId,
        persistence: Persistence,
        key: &FlowKey,
        entries: usize,
    ) -> Result<(RealId, Option<ConnId>), DropReason> {
        let port = self.services[service.index()].key.port;
        let template_key = FlowKey {
            client: persistence.mask(key.client),
            client_port: 0,
            vip_port: port,
            ..*key
        };
        let template_hash = self.conns.hash(&template_key);
        if let Some(id) = self.conns.find(template_hash, &template_key, true) {
            let template = self.conns.get(id);
            if self.template_is_valid(template) {
                let real = template.real;
                if entries == 0 {
                    self.conns.prove(id);
                    return Ok((real, Some(id)));
                }
                // Room for the connection, but never by evicting the template it needs.
                self.conns.hold(id);
                if self.make_room(1) {
                    return Ok((real, Some(id)));
                }
                self.conns.unhold(id);
                return Err(DropReason::ConnTableFull);
            } else {
                self.conns.retire(id);
            }
        }
        let real = self.pick(now, service, key, 1 + entries)?;
        let template = Conn::template(template_key, real);
        let id =
            self.conns.insert(template_hash, template).map_err(|_| DropReason::ConnTableFull)?;
        self.reals[real.index()].bind(true);
        self.counters.templates_created = self.counters.templates_created.wrapping_add(1);
        let timeout = self.template_timeout(self.conns.get(id));
        self.conns.rearm(id, expiry(now, timeout));
        Ok((real, Some(id)))
    }

    /// `ip_vs_check_template`: a template holds while its server is in its service, and,
    /// with `expire_quiescent_template`, while its weight is not 0. Overload does not count.
    fn template_is_valid(&self, template: &Conn) -> bool {
        self.reals.get(template.real.index()).is_some_and(|r| {
            r.available && !(self.config.expire_quiescent_template && r.weight == 0)
        })
    }

    /// A template's timeout: its service's persistence, or 60 s once it has outlived that.
    pub(super) fn template_timeout(&self, template: &Conn) -> Duration {
        if template.flags & FLAG_EXPIRE_LATER != 0 {
            return TEMPLATE_EXPIRE_LATER;
        }
        let secs = self
            .reals
            .get(template.real.index())
            .and_then(|r| self.services.get(r.service.index()))
            .and_then(|s| s.persistence)
            .map_or(0, |p| p.timeout_secs);
        Duration::from_secs(u64::from(secs))
    }

    /// Frees slots until `entries` are free, evicting the oldest unproven entries (see
    /// [`ConnTable::prove`](crate::conn::ConnTable::prove)): whatever a flood of spoofed
    /// sources sends, its entries give way, and a connection that carried data never does.
    /// False when no unproven entry is left.
    pub(super) fn make_room(&mut self, entries: usize) -> bool {
        while self.conns.free() < entries {
            let Self { conns, reals, counters, .. } = self;
            let evicted = conns.evict(|conn| {
                if !conn.is_template() {
                    counters.conns_evicted = counters.conns_evicted.wrapping_add(1);
                }
                release(reals, counters, conn);
            });
            if !evicted {
                return false;
            }
        }
        true
    }

    /// Counts the packet, moves the connection's state, re-arms its timer and rewrites the
    /// frame for its real server, in the order of `ip_vs_in_hook`.
    #[inline(always)]
    fn forward(
        &mut self,
        now: Instant,
        frame: &mut [u8],
        packet: &Packet,
        ip: &IpPacket,
        id: ConnId,
    ) -> Verdict {
        let conn = self.conns.get_mut(id);
        let real_id = conn.real;
        let previous = conn.state;
        let next = match ip.transport {
            Transport::Tcp { flags, .. } => conn.state.next_tcp(flags),
            _ => ConnState::Udp,
        };
        let template = conn.controller();
        let unproven = !conn.is_proven();
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
        if next == ConnState::Established
            && let Some(template) = template
        {
            // ip_vs_control_assure_ct: a template whose connection got through is assured.
            self.conns.get_mut(template).flags |= FLAG_ASSURED;
        }
        let mac = real.mac;
        self.count_in(real_id, ip.stats_len(), true);
        self.conns.rearm(id, expiry(now, self.timeouts.of(next)));
        if unproven && proves(frame, ip, previous, next) {
            self.conns.prove(id);
        }
        if self.sync.is_some() {
            self.sync_forwarded(now, id);
        }

        // Only servers with a MAC are scheduled, and a MAC once known is never forgotten.
        let Some(mac) = mac else {
            return Verdict::Drop(DropReason::NoRealAvailable);
        };
        self.transmit(frame, packet, ip, real_id, mac)
    }

    /// `ip_vs_in_stats`: traffic counted for a real server, its service and the totals;
    /// `packet` is false for the later fragments of a datagram already counted.
    #[inline(always)]
    pub(super) fn count_in(&mut self, real: RealId, bytes: u32, packet: bool) {
        let count = |stats: &mut crate::stats::Stats| {
            if packet {
                stats.count_packet(bytes);
            } else {
                stats.count_bytes(bytes);
            }
        };
        let Some(r) = self.reals.get_mut(real.index()) else { return };
        count(&mut r.stats);
        if let Some(service) = self.services.get_mut(r.service.index()) {
            count(&mut service.stats);
        }
        count(&mut self.totals);
    }

    /// `ip_vs_dr_xmit`: the frame leaves for the real server's MAC from the director's,
    /// with the TTL decremented in `decrement_ttl` mode, nothing else changed.
    #[inline(always)]
    pub(super) fn transmit(
        &self,
        frame: &mut [u8],
        packet: &Packet,
        ip: &IpPacket,
        real: RealId,
        mac: MacAddr,
    ) -> Verdict {
        if self.config.decrement_ttl
            && let Err(reason) = wire::decrement_ttl(frame, packet.l3_offset, ip.src.is_ipv4())
        {
            return Verdict::Drop(reason);
        }
        frame[0..6].copy_from_slice(&mac.0);
        frame[6..12].copy_from_slice(&self.config.mac.0);
        Verdict::Forward { real }
    }
}

/// Whether this packet proves that a client is behind its connection: a TCP segment
/// without SYN or RST that carries data and leaves the connection ESTABLISHED (the
/// handshake's ACK, or anything after it), or a UDP datagram after the first. A spoofed
/// source can send these too, but only by sending what a real client sends; a SYN, a reset
/// or a bare ACK proves nothing.
#[inline(never)]
fn proves(frame: &[u8], ip: &IpPacket, previous: ConnState, next: ConnState) -> bool {
    match ip.transport {
        Transport::Tcp { flags, .. } => {
            next == ConnState::Established
                && !flags.syn()
                && !flags.rst()
                && wire::tcp_payload_len(frame, ip) > 0
        }
        Transport::Udp { .. } => previous == ConnState::Udp,
        _ => false,
    }
}

/// The identity the fragments of `ip`'s datagram share.
fn datagram_id(ip: &IpPacket, protocol: u8) -> DatagramId {
    DatagramId { src: ip.src, dst: ip.dst, protocol, ident: ip.ident }
}

/// The IP protocol number of a transport.
fn ip_protocol(transport: Transport) -> u8 {
    match transport {
        Transport::Tcp { .. } => 6,
        Transport::Udp { .. } => 17,
        Transport::Icmpv4 { .. } => 1,
        Transport::Icmpv6 { .. } => 58,
        Transport::Fragment { protocol } | Transport::Other { protocol } => protocol,
    }
}
