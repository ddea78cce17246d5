//! The frame classifier: Ethernet II, up to two VLAN tags, ARP, IPv4, IPv6 with its
//! extension headers, TCP, UDP, ICMP and ICMPv6.

use super::checksum::ipv4_header_checksum_ok;
use crate::flow::{FlowKey, Protocol};
use crate::mac::MacAddr;
use crate::verdict::DropReason;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use etherparse::{
    ArpPacketSlice, Ethernet2Slice, IpAuthHeaderSlice, Ipv4HeaderSlice, Ipv6FragmentHeaderSlice,
    Ipv6HeaderSlice, Ipv6RawExtHeaderSlice, SingleVlanSlice, TcpHeaderSlice, UdpHeaderSlice,
};

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;
/// 802.1Q customer tag.
const TPID_8021Q: u16 = 0x8100;
/// 802.1ad service tag.
const TPID_8021AD: u16 = 0x88a8;
/// The pre-standard QinQ tag some switches still send.
const TPID_QINQ: u16 = 0x9100;
/// The most VLAN tags a frame may carry.
const MAX_VLAN_TAGS: usize = 2;
const IPV4_HEADER_LEN: usize = 20;
const IPV6_HEADER_LEN: usize = 40;
/// IPv4 option End of Option List.
const IPV4_OPTION_END: u8 = 0;
/// IPv4 option No Operation.
const IPV4_OPTION_NOOP: u8 = 1;
const UDP_HEADER_LEN: usize = 8;
/// A bound on the IPv6 extension header chain, far above any real packet.
const MAX_IPV6_EXTENSIONS: usize = 12;

const IP_HOP_BY_HOP: u8 = 0;
const IP_ICMP: u8 = 1;
const IP_TCP: u8 = 6;
const IP_UDP: u8 = 17;
const IP_ROUTING: u8 = 43;
const IP_FRAGMENT: u8 = 44;
const IP_AUTH: u8 = 51;
const IP_ICMPV6: u8 = 58;
const IP_DEST_OPTIONS: u8 = 60;
const IP_MOBILITY: u8 = 135;
const IP_HIP: u8 = 139;
const IP_SHIM6: u8 = 140;

/// One VLAN tag, as it stands in the frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VlanTag {
    /// The tag protocol identifier (0x8100, 0x88a8 or 0x9100).
    pub tpid: u16,
    /// The 12-bit VLAN identifier.
    pub id: u16,
}

/// TCP header flags (the 8 bits of byte 13).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN: the sender has finished sending.
    pub const FIN: u8 = 0x01;
    /// SYN: synchronise sequence numbers (opens a connection).
    pub const SYN: u8 = 0x02;
    /// RST: reset the connection.
    pub const RST: u8 = 0x04;
    /// PSH: push.
    pub const PSH: u8 = 0x08;
    /// ACK: the acknowledgment field is significant.
    pub const ACK: u8 = 0x10;

    /// FIN is set.
    pub const fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    /// SYN is set.
    pub const fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    /// RST is set.
    pub const fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    /// ACK is set.
    pub const fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
}

/// Where a datagram stands in its fragment series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fragment {
    /// The first fragment: offset 0, more fragments follow. It carries the transport header.
    First,
    /// A later fragment: no transport header.
    Later,
}

/// The transport layer of an IP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A TCP segment.
    Tcp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// Header flags.
        flags: TcpFlags,
    },
    /// A UDP datagram.
    Udp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
    },
    /// An ICMP (IPv4) message.
    Icmpv4 {
        /// ICMP type.
        icmp_type: u8,
        /// ICMP code.
        code: u8,
    },
    /// An ICMPv6 message.
    Icmpv6 {
        /// ICMPv6 type.
        icmp_type: u8,
        /// ICMPv6 code.
        code: u8,
    },
    /// A later fragment of a datagram of this IP protocol: there is no transport header.
    Fragment {
        /// The IP protocol of the fragmented datagram.
        protocol: u8,
    },
    /// Another IP protocol (or an IPv6 chain that ends in "no next header" or ESP).
    Other {
        /// The IP protocol number.
        protocol: u8,
    },
}

/// An IPv4 or IPv6 packet, validated down to its transport header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpPacket {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit.
    pub hop_limit: u8,
    /// The IP datagram length the header declares (header and payload, no link layer and no
    /// Ethernet padding): the byte count IPVS adds to `inbytes`.
    pub datagram_len: u32,
    /// Fragment position, if the datagram is fragmented.
    pub fragment: Option<Fragment>,
    /// The identification that ties fragments together: the IPv4 header's, or the IPv6
    /// fragment header's (0 for an IPv6 packet without one).
    pub ident: u32,
    /// Offset of the IP header in the frame.
    pub l3_offset: usize,
    /// Offset of the transport header (after IPv4 options or IPv6 extension headers); of
    /// the fragment data in a later fragment.
    pub l4_offset: usize,
    /// The transport layer.
    pub transport: Transport,
}

impl IpPacket {
    /// The connection key for a TCP or UDP packet that carries its ports.
    pub fn flow_key(&self) -> Option<FlowKey> {
        let (protocol, client_port, vip_port) = match self.transport {
            Transport::Tcp { src_port, dst_port, .. } => (Protocol::Tcp, src_port, dst_port),
            Transport::Udp { src_port, dst_port } => (Protocol::Udp, src_port, dst_port),
            _ => return None,
        };
        Some(FlowKey { protocol, client: self.src, client_port, vip: self.dst, vip_port })
    }

    /// The bytes this packet adds to IPVS's `inbytes`, which counts each datagram once at
    /// its reassembled length: the whole datagram when unfragmented; for a first fragment,
    /// the datagram less the IPv6 fragment header reassembly removes; for a later fragment,
    /// its fragment data only. The fragments of a datagram thus add up to its reassembled
    /// length.
    pub fn stats_len(&self) -> u32 {
        match self.fragment {
            None => self.datagram_len,
            Some(Fragment::First) if self.src.is_ipv4() => self.datagram_len,
            Some(Fragment::First) => self.datagram_len.saturating_sub(IPV6_FRAGMENT_HEADER_LEN),
            Some(Fragment::Later) => {
                let header = (self.l4_offset - self.l3_offset) as u32;
                self.datagram_len.saturating_sub(header)
            }
        }
    }
}

/// The length of the IPv6 fragment header.
const IPV6_FRAGMENT_HEADER_LEN: u32 = 8;

/// An Ethernet/IPv4 ARP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpInfo {
    /// Operation: 1 request, 2 reply.
    pub operation: u16,
    /// Sender hardware address.
    pub sender_mac: MacAddr,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address.
    pub target_mac: MacAddr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

/// The network layer of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    /// ARP for IPv4 over Ethernet.
    Arp(ArpInfo),
    /// IPv4 or IPv6.
    Ip(IpPacket),
    /// Any other EtherType (or an 802.3 length field).
    Other {
        /// The EtherType (or length) after the VLAN tags.
        ether_type: u16,
    },
}

/// The VLAN tags of a frame, outermost first: a slice of at most two (it dereferences to
/// `[VlanTag]`), kept inline so that a [`Packet`] is `Copy`.
#[derive(Clone, Copy, Debug, Default)]
pub struct VlanTags {
    tags: [VlanTag; MAX_VLAN_TAGS],
    len: u8,
}

impl VlanTags {
    /// Adds the next inner tag; a frame may carry at most two.
    fn push(&mut self, tag: VlanTag) -> Result<(), DropReason> {
        let slot = self.tags.get_mut(usize::from(self.len)).ok_or(DropReason::TooManyVlanTags)?;
        *slot = tag;
        self.len += 1;
        Ok(())
    }
}

impl core::ops::Deref for VlanTags {
    type Target = [VlanTag];

    fn deref(&self) -> &[VlanTag] {
        self.tags.get(..usize::from(self.len)).unwrap_or_default()
    }
}

impl PartialEq for VlanTags {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for VlanTags {}

/// A classified frame: link layer fields, offsets and the network layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Destination MAC.
    pub dst_mac: MacAddr,
    /// Source MAC.
    pub src_mac: MacAddr,
    /// VLAN tags, outermost first.
    pub vlans: VlanTags,
    /// Offset of the network header (after the VLAN tags).
    pub l3_offset: usize,
    /// The network layer.
    pub network: Network,
}

impl Packet {
    /// The connection key of a TCP or UDP packet that carries its ports.
    pub fn flow_key(&self) -> Option<FlowKey> {
        match &self.network {
            Network::Ip(ip) => ip.flow_key(),
            Network::Arp(_) | Network::Other { .. } => None,
        }
    }
}

/// Classifies an Ethernet frame (without FCS).
///
/// # Errors
///
/// The [`DropReason`] for the first malformed layer: a short or inconsistent header, a bad
/// IPv4 header checksum, malformed IPv4 options, a third VLAN tag, a broken IPv6 extension
/// chain. Transport
/// checksums are not verified (IPVS does not verify them for Direct Routing either, and
/// frames taken from a packet socket often carry offloaded, not yet computed, checksums).
#[inline(always)]
pub fn classify(frame: &[u8]) -> Result<Packet, DropReason> {
    let eth =
        Ethernet2Slice::from_slice_without_fcs(frame).map_err(|_| DropReason::MalformedEthernet)?;
    let mut ether_type = eth.ether_type().0;
    let mut rest = eth.payload_slice();
    let mut vlans = VlanTags::default();
    while matches!(ether_type, TPID_8021Q | TPID_8021AD | TPID_QINQ) {
        let vlan = SingleVlanSlice::from_slice(rest).map_err(|_| DropReason::MalformedVlan)?;
        let tag = VlanTag { tpid: ether_type, id: vlan.vlan_identifier().value() };
        vlans.push(tag)?;
        ether_type = vlan.ether_type().0;
        rest = vlan.payload_slice();
    }
    let l3_offset = frame.len() - rest.len();
    let network = match ether_type {
        ETHERTYPE_ARP => Network::Arp(classify_arp(rest)?),
        ETHERTYPE_IPV4 => Network::Ip(classify_ipv4(rest, l3_offset)?),
        ETHERTYPE_IPV6 => Network::Ip(classify_ipv6(rest, l3_offset)?),
        ether_type => Network::Other { ether_type },
    };
    Ok(Packet {
        dst_mac: MacAddr(eth.destination()),
        src_mac: MacAddr(eth.source()),
        vlans,
        l3_offset,
        network,
    })
}

fn classify_arp(bytes: &[u8]) -> Result<ArpInfo, DropReason> {
    let arp = ArpPacketSlice::from_slice(bytes).map_err(|_| DropReason::MalformedArp)?;
    if arp.hw_addr_type() != etherparse::ArpHardwareId::ETHERNET
        || arp.proto_addr_type() != etherparse::EtherType::IPV4
        || arp.hw_addr_size() != 6
        || arp.proto_addr_size() != 4
    {
        return Err(DropReason::MalformedArp);
    }
    let mac = |b: &[u8]| b.try_into().map(MacAddr).map_err(|_| DropReason::MalformedArp);
    let ip =
        |b: &[u8]| <[u8; 4]>::try_from(b).map(Ipv4Addr::from).map_err(|_| DropReason::MalformedArp);
    Ok(ArpInfo {
        operation: arp.operation().0,
        sender_mac: mac(arp.sender_hw_addr())?,
        sender_ip: ip(arp.sender_protocol_addr())?,
        target_mac: mac(arp.target_hw_addr())?,
        target_ip: ip(arp.target_protocol_addr())?,
    })
}

#[inline(always)]
fn classify_ipv4(bytes: &[u8], l3_offset: usize) -> Result<IpPacket, DropReason> {
    use etherparse::err::ipv4::HeaderSliceError;
    let header = Ipv4HeaderSlice::from_slice(bytes).map_err(|e| match e {
        HeaderSliceError::Len(_) => DropReason::Ipv4Length,
        HeaderSliceError::Content(_) => DropReason::MalformedIpv4,
    })?;
    let header_len = header.slice().len();
    if !ipv4_header_checksum_ok(header.slice()) {
        return Err(DropReason::Ipv4Checksum);
    }
    if header_len > IPV4_HEADER_LEN && !ipv4_options_ok(&header.slice()[IPV4_HEADER_LEN..]) {
        return Err(DropReason::MalformedIpv4Options);
    }
    let total_len = usize::from(header.total_len());
    if total_len < header_len || total_len > bytes.len() {
        return Err(DropReason::Ipv4Length);
    }
    let fragment = if header.fragments_offset().value() != 0 {
        Some(Fragment::Later)
    } else if header.more_fragments() {
        Some(Fragment::First)
    } else {
        None
    };
    let protocol = header.protocol().0;
    let payload = &bytes[header_len..total_len];
    let transport = classify_transport(protocol, payload, fragment, false)?;
    Ok(IpPacket {
        src: IpAddr::V4(header.source_addr()),
        dst: IpAddr::V4(header.destination_addr()),
        hop_limit: header.ttl(),
        datagram_len: total_len as u32,
        fragment,
        ident: u32::from(header.identification()),
        l3_offset,
        l4_offset: l3_offset + header_len,
        transport,
    })
}

/// Whether the options of an IPv4 header (the bytes after its first 20, at most 40) are
/// well formed, walked as `ip_options_compile` (net/ipv4/ip_options.c) walks them on
/// input: End of Option List ends the list (whatever follows it is padding), No Operation
/// is one byte, and every other option has a length byte counting its type and length
/// bytes, so a length below 2, or one that runs past the header, is malformed. The kernel
/// drops such a packet (`ip_rcv_options`) before IPVS sees it. The contents of the options
/// it knows (record route, timestamps, source routes) are not checked here.
fn ipv4_options_ok(mut options: &[u8]) -> bool {
    // Each turn consumes at least one byte, so the loop ends within the header's 40 bytes.
    while let [kind, rest @ ..] = options {
        options = match *kind {
            IPV4_OPTION_END => return true,
            IPV4_OPTION_NOOP => rest,
            _ => {
                let Some(&len) = rest.first() else {
                    return false;
                };
                let len = usize::from(len);
                if len < 2 || len > options.len() {
                    return false;
                }
                &options[len..]
            }
        };
    }
    true
}

fn classify_ipv6(bytes: &[u8], l3_offset: usize) -> Result<IpPacket, DropReason> {
    let header = Ipv6HeaderSlice::from_slice(bytes).map_err(|_| DropReason::MalformedIpv6)?;
    let total_len = IPV6_HEADER_LEN + usize::from(header.payload_length());
    if total_len > bytes.len() {
        return Err(DropReason::Ipv6Length);
    }
    let mut offset = IPV6_HEADER_LEN;
    let mut next = header.next_header().0;
    let mut fragment = None;
    let mut ident = 0;
    let mut extensions = 0;
    let transport = loop {
        let rest = &bytes[offset..total_len];
        let (len, following) = match next {
            IP_HOP_BY_HOP if offset != IPV6_HEADER_LEN => {
                return Err(DropReason::MalformedIpv6Extension);
            }
            IP_HOP_BY_HOP | IP_ROUTING | IP_DEST_OPTIONS | IP_MOBILITY | IP_HIP | IP_SHIM6 => {
                let ext = Ipv6RawExtHeaderSlice::from_slice(rest)
                    .map_err(|_| DropReason::MalformedIpv6Extension)?;
                (ext.slice().len(), ext.next_header().0)
            }
            IP_AUTH => {
                let ext = IpAuthHeaderSlice::from_slice(rest)
                    .map_err(|_| DropReason::MalformedIpv6Extension)?;
                (ext.slice().len(), ext.next_header().0)
            }
            IP_FRAGMENT => {
                let ext = Ipv6FragmentHeaderSlice::from_slice(rest)
                    .map_err(|_| DropReason::MalformedIpv6Extension)?;
                ident = ext.identification();
                if ext.fragment_offset().value() != 0 {
                    fragment = Some(Fragment::Later);
                } else if ext.more_fragments() {
                    fragment = Some(Fragment::First);
                }
                (ext.slice().len(), ext.next_header().0)
            }
            protocol => break classify_transport(protocol, rest, fragment, true)?,
        };
        offset += len;
        next = following;
        extensions += 1;
        if extensions > MAX_IPV6_EXTENSIONS {
            return Err(DropReason::MalformedIpv6Extension);
        }
        if fragment == Some(Fragment::Later) {
            break Transport::Fragment { protocol: next };
        }
    };
    Ok(IpPacket {
        src: IpAddr::V6(Ipv6Addr::from(header.source())),
        dst: IpAddr::V6(Ipv6Addr::from(header.destination())),
        hop_limit: header.hop_limit(),
        datagram_len: total_len as u32,
        fragment,
        ident,
        l3_offset,
        l4_offset: l3_offset + offset,
        transport,
    })
}

/// Parses the transport header. `payload` runs from the transport header to the end of the
/// IP datagram.
#[inline(always)]
fn classify_transport(
    protocol: u8,
    payload: &[u8],
    fragment: Option<Fragment>,
    ipv6: bool,
) -> Result<Transport, DropReason> {
    if fragment == Some(Fragment::Later) {
        return Ok(Transport::Fragment { protocol });
    }
    Ok(match protocol {
        IP_TCP => {
            let tcp = TcpHeaderSlice::from_slice(payload).map_err(|_| DropReason::MalformedTcp)?;
            Transport::Tcp {
                src_port: tcp.source_port(),
                dst_port: tcp.destination_port(),
                flags: TcpFlags(tcp.slice()[13]),
            }
        }
        IP_UDP => {
            let udp = UdpHeaderSlice::from_slice(payload).map_err(|_| DropReason::MalformedUdp)?;
            let len = usize::from(udp.length());
            // A first fragment carries only part of the datagram the length field covers.
            if len < UDP_HEADER_LEN || (fragment.is_none() && len > payload.len()) {
                return Err(DropReason::MalformedUdp);
            }
            Transport::Udp { src_port: udp.source_port(), dst_port: udp.destination_port() }
        }
        IP_ICMP if !ipv6 => {
            let [icmp_type, code, ..] = *payload else {
                return Err(DropReason::MalformedIcmp);
            };
            if payload.len() < 8 {
                return Err(DropReason::MalformedIcmp);
            }
            Transport::Icmpv4 { icmp_type, code }
        }
        IP_ICMPV6 if ipv6 => {
            let [icmp_type, code, ..] = *payload else {
                return Err(DropReason::MalformedIcmp);
            };
            if payload.len() < 8 {
                return Err(DropReason::MalformedIcmp);
            }
            Transport::Icmpv6 { icmp_type, code }
        }
        protocol => Transport::Other { protocol },
    })
}
