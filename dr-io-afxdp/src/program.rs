//! The XDP program: it redirects to the director's sockets only the frames the director
//! handles and passes everything else to the kernel, so the host keeps its own traffic.
//!
//! The rule, for an Ethernet frame with up to two VLAN tags (802.1Q or 802.1ad):
//!
//! - IPv4 or IPv6 whose destination address is a VIP: redirected (every protocol, every
//!   fragment, ICMP errors and echo requests for the VIP);
//! - ARP whose target protocol address is a VIP (requests for it), or `0.0.0.0`: the
//!   answers to the director's own ARP requests, which it sends as RFC 5227 probes from
//!   `0.0.0.0` and which the kernel, never asking from there, has no use for;
//! - an ICMPv6 Neighbor Solicitation (no extension headers) whose target is a VIP;
//! - an ICMPv6 Neighbor Advertisement addressed to the director's own solicitations'
//!   source (the EUI-64 link-local address of its MAC): the answers it learns real
//!   servers' MACs from;
//! - everything else, and every frame too short for the field the rule reads: `XDP_PASS`.
//!
//! A redirected frame goes to the socket bound to the queue it arrived on; if there is
//! none, it is dropped (the kernel does not hold the VIPs, and passing it would only have
//! the host answer for them).
//!
//! The VIPs are in two hash maps (IPv4 and IPv6 addresses, as they are on the wire), so
//! services come and go without reloading the program. The program is assembled in
//! [`crate::asm`] and loaded with `bpf()`; it is attached with a BPF link, which detaches
//! it when the last socket of the backend closes, or the process ends.

use crate::asm::{Asm, Cond, R0, R1, R2, R3, R6, R7, R8, R9, R10, Size};
use crate::sys::{self, BpfMap};
use dr_core::MacAddr;
use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::OwnedFd;
use std::sync::Mutex;

/// A map value: the address is a VIP; everything to it is the director's.
const KIND_VIP: u8 = 1;
/// A map value: only the neighbour answers to the address are the director's (IPv4
/// `0.0.0.0` for ARP, its IPv6 link-local address for Neighbor Advertisements).
const KIND_NEIGHBOUR: u8 = 2;

/// The helpers called.
const MAP_LOOKUP_ELEM: i32 = 1;
const REDIRECT_MAP: i32 = 51;

/// XDP actions.
pub(crate) const XDP_DROP: u32 = 1;
/// The kernel takes the frame.
pub(crate) const XDP_PASS: u32 = 2;

/// Room in the VIP maps (addresses).
const MAX_ADDRESSES: u32 = 4096;

/// A 16-bit field as the program loads it from the frame: wire bytes in the machine's
/// order.
fn wire16(value: u16) -> i32 {
    i32::from(u16::from_ne_bytes(value.to_be_bytes()))
}

/// The program's instructions for these maps.
fn assemble(xsks: i32, v4: i32, v6: i32) -> Result<Vec<[u8; 8]>, crate::asm::AsmError> {
    let mut a = Asm::default();
    let (pass, redirect) = (a.label(), a.label());
    let (ipv4, ipv6, arp, untagged) = (a.label(), a.label(), a.label(), a.label());
    let solicitation = a.label();

    // r6 = ctx, r7 = data, r8 = data_end, r9 = the Ethernet header, moved past the tags.
    a.mov(R6, R1);
    a.load(Size::W, R7, R6, 0);
    a.load(Size::W, R8, R6, 4);
    a.mov(R9, R7);
    let header = |a: &mut Asm, len: i32| {
        a.mov(R2, R9);
        a.add_imm(R2, len);
        a.jump_if(Cond::GtReg(R2, R8), pass);
    };
    header(&mut a, 14);
    a.load(Size::H, R3, R9, 12);
    for _ in 0..2 {
        let tagged = a.label();
        a.jump_if(Cond::EqImm(R3, wire16(0x8100)), tagged);
        a.jump_if(Cond::NeImm(R3, wire16(0x88a8)), untagged);
        a.place(tagged);
        a.add_imm(R9, 4);
        header(&mut a, 14);
        a.load(Size::H, R3, R9, 12);
    }
    a.place(untagged);
    a.jump_if(Cond::EqImm(R3, wire16(0x0800)), ipv4);
    a.jump_if(Cond::EqImm(R3, wire16(0x86dd)), ipv6);
    a.jump_if(Cond::EqImm(R3, wire16(0x0806)), arp);
    a.jump(pass);

    // Looks the 4-byte address at r9 + at up in the IPv4 map; r0 = the value or null.
    let lookup4 = |a: &mut Asm, at: i16| {
        a.load(Size::W, R1, R9, at);
        a.store(Size::W, R10, -4, R1);
        a.load_map(R1, v4);
        a.mov(R2, R10);
        a.add_imm(R2, -4);
        a.call(MAP_LOOKUP_ELEM);
    };
    // The same for the 16-byte address at r9 + at, in the IPv6 map.
    let lookup6 = |a: &mut Asm, at: i16| {
        for word in 0..4 {
            a.load(Size::W, R1, R9, at + 4 * word);
            a.store(Size::W, R10, -16 + 4 * word, R1);
        }
        a.load_map(R1, v6);
        a.mov(R2, R10);
        a.add_imm(R2, -16);
        a.call(MAP_LOOKUP_ELEM);
    };

    // IPv4: the destination (IP header offset 16) is a VIP.
    a.place(ipv4);
    header(&mut a, 14 + 20);
    lookup4(&mut a, 14 + 16);
    a.jump_if(Cond::EqImm(R0, 0), pass);
    a.load(Size::B, R1, R0, 0);
    a.jump_if(Cond::EqImm(R1, i32::from(KIND_VIP)), redirect);
    a.jump(pass);

    // ARP: the target protocol address (ARP offset 24) is in the map, either kind.
    a.place(arp);
    header(&mut a, 14 + 28);
    lookup4(&mut a, 14 + 24);
    a.jump_if(Cond::EqImm(R0, 0), pass);
    a.jump(redirect);

    // IPv6: the destination (offset 24) is a VIP, or the director's own address and the
    // packet a Neighbor Advertisement.
    a.place(ipv6);
    header(&mut a, 14 + 40);
    lookup6(&mut a, 14 + 24);
    a.jump_if(Cond::EqImm(R0, 0), solicitation);
    a.load(Size::B, R1, R0, 0);
    a.jump_if(Cond::EqImm(R1, i32::from(KIND_VIP)), redirect);
    a.load(Size::B, R1, R9, 14 + 6);
    a.jump_if(Cond::NeImm(R1, 58), pass);
    header(&mut a, 14 + 40 + 1);
    a.load(Size::B, R1, R9, 14 + 40);
    a.jump_if(Cond::EqImm(R1, 136), redirect);
    a.jump(pass);

    // A Neighbor Solicitation whose target (ICMPv6 offset 8) is a VIP.
    a.place(solicitation);
    a.load(Size::B, R1, R9, 14 + 6);
    a.jump_if(Cond::NeImm(R1, 58), pass);
    header(&mut a, 14 + 40 + 24);
    a.load(Size::B, R1, R9, 14 + 40);
    a.jump_if(Cond::NeImm(R1, 135), pass);
    lookup6(&mut a, 14 + 40 + 8);
    a.jump_if(Cond::EqImm(R0, 0), pass);
    a.load(Size::B, R1, R0, 0);
    a.jump_if(Cond::EqImm(R1, i32::from(KIND_VIP)), redirect);
    a.jump(pass);

    // To the socket of the frame's queue; dropped if it has none.
    a.place(redirect);
    a.load(Size::W, R2, R6, 16);
    a.load_map(R1, xsks);
    a.mov_imm(R3, XDP_DROP as i32);
    a.call(REDIRECT_MAP);
    a.exit();

    a.place(pass);
    a.mov_imm(R0, XDP_PASS as i32);
    a.exit();
    Ok(a.finish()?.into_iter().map(|i| i.encode()).collect())
}

/// The EUI-64 link-local address of `mac` (RFC 4291 appendix A): the source of the
/// director's Neighbor Solicitations.
pub(crate) fn link_local(mac: MacAddr) -> Ipv6Addr {
    let m = mac.0;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        m[0] ^ 2,
        m[1],
        m[2],
        0xff,
        0xfe,
        m[3],
        m[4],
        m[5],
    ])
}

/// How the program is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum XdpMode {
    /// In the driver (native XDP), falling back to the kernel's generic path when the
    /// driver has no XDP support.
    Auto,
    /// In the driver only.
    Driver,
    /// In the kernel's generic receive path (`XDP_FLAGS_SKB_MODE`), on any interface.
    Generic,
}

/// The loaded program and its maps, shared by the sockets of one interface.
#[derive(Debug)]
pub(crate) struct Program {
    prog: OwnedFd,
    xsks: BpfMap,
    v4: BpfMap,
    v6: BpfMap,
    /// What the address maps hold now.
    held: Mutex<BTreeMap<IpAddr, u8>>,
    /// The attachment, while attached.
    link: Option<OwnedFd>,
    /// The mode it was attached in.
    attached: Option<XdpMode>,
}

/// Why the program could not be set up.
#[derive(Debug)]
pub(crate) enum ProgramError {
    /// A map could not be created.
    Map(io::Error),
    /// The verifier refused the program; its log.
    Load(io::Error, String),
    /// No mode could attach it; the refusal of the last one tried.
    Attach(io::Error),
}

impl Program {
    /// Creates the maps (room for `queues` sockets) and loads the program.
    pub(crate) fn load(queues: u32) -> Result<Self, ProgramError> {
        let xsks = BpfMap::create(sys::MAP_XSK, 4, 4, queues.max(1), "dr_xsks")
            .map_err(ProgramError::Map)?;
        let v4 = BpfMap::create(sys::MAP_HASH, 4, 1, MAX_ADDRESSES, "dr_vip4")
            .map_err(ProgramError::Map)?;
        let v6 = BpfMap::create(sys::MAP_HASH, 16, 1, MAX_ADDRESSES, "dr_vip6")
            .map_err(ProgramError::Map)?;
        let insns = assemble(xsks.raw(), v4.raw(), v6.raw())
            .map_err(|e| ProgramError::Load(io::Error::other(format!("{e:?}")), String::new()))?;
        let prog =
            sys::prog_load(&insns, "dr_director").map_err(|(e, log)| ProgramError::Load(e, log))?;
        Ok(Self { prog, xsks, v4, v6, held: Mutex::default(), link: None, attached: None })
    }

    /// Attaches the program to interface `ifindex`.
    pub(crate) fn attach(&mut self, ifindex: u32, mode: XdpMode) -> Result<XdpMode, ProgramError> {
        let tries: &[(XdpMode, u32)] = match mode {
            XdpMode::Auto => &[
                (XdpMode::Driver, sys::XDP_FLAGS_DRV_MODE),
                (XdpMode::Generic, sys::XDP_FLAGS_SKB_MODE),
            ],
            XdpMode::Driver => &[(XdpMode::Driver, sys::XDP_FLAGS_DRV_MODE)],
            XdpMode::Generic => &[(XdpMode::Generic, sys::XDP_FLAGS_SKB_MODE)],
        };
        let mut last = io::Error::from(io::ErrorKind::Unsupported);
        for &(mode, flags) in tries {
            match sys::xdp_link(&self.prog, ifindex, flags) {
                Ok(link) => {
                    self.link = Some(link);
                    self.attached = Some(mode);
                    return Ok(mode);
                }
                Err(e) => last = e,
            }
        }
        Err(ProgramError::Attach(last))
    }

    /// Sends queue `queue`'s redirected frames to socket `fd`.
    pub(crate) fn register(&self, queue: u32, fd: i32) -> io::Result<()> {
        self.xsks.update(&queue.to_ne_bytes(), &fd.to_ne_bytes())
    }

    /// Makes the maps hold exactly `vips`, and the addresses the director's neighbour
    /// answers come to for `mac`.
    pub(crate) fn set_vips(&self, vips: &[IpAddr], mac: MacAddr) -> io::Result<()> {
        let mut wanted = BTreeMap::new();
        wanted.insert(IpAddr::V4(Ipv4Addr::UNSPECIFIED), KIND_NEIGHBOUR);
        wanted.insert(IpAddr::V6(link_local(mac)), KIND_NEIGHBOUR);
        for vip in vips {
            wanted.insert(*vip, KIND_VIP);
        }
        let mut held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for addr in held.keys().filter(|a| !wanted.contains_key(a)) {
            match self.delete(*addr) {
                Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
                _ => {}
            }
        }
        held.retain(|addr, _| wanted.contains_key(addr));
        for (addr, kind) in &wanted {
            if held.get(addr) != Some(kind) {
                match addr {
                    IpAddr::V4(a) => self.v4.update(&a.octets(), &[*kind])?,
                    IpAddr::V6(a) => self.v6.update(&a.octets(), &[*kind])?,
                }
                held.insert(*addr, *kind);
            }
        }
        Ok(())
    }

    fn delete(&self, addr: IpAddr) -> io::Result<()> {
        match addr {
            IpAddr::V4(a) => self.v4.delete(&a.octets()),
            IpAddr::V6(a) => self.v6.delete(&a.octets()),
        }
    }

    /// Runs the program once on `frame`: its XDP action.
    #[cfg(test)]
    pub(crate) fn run(&self, frame: &[u8]) -> io::Result<u32> {
        sys::test_run(&self.prog, frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dr_fixtures::frames::{self as f, ArpOperation};

    #[test]
    fn the_program_assembles_with_every_jump_forward() {
        let insns = assemble(3, 4, 5).unwrap();
        assert!(insns.len() < 200, "{} instructions", insns.len());
        assert_eq!(insns[insns.len() - 1][0], 0x95, "it ends with the pass exit");
    }

    #[test]
    fn link_local_is_modified_eui64() {
        let mac = MacAddr([0x02, 0x00, 0x5e, 0x10, 0x20, 0x30]);
        assert_eq!(link_local(mac), "fe80::5eff:fe10:2030".parse::<Ipv6Addr>().unwrap());
    }

    const VIP4: &str = "10.0.0.100";
    const VIP6: &str = "2001:db8::100";

    /// The rule of the module's documentation, read off the frame's bytes by hand: true
    /// when the frame is the director's.
    fn rule(frame: &[u8], vips: &[IpAddr], mac: MacAddr) -> bool {
        let be16 = |at: usize| frame.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
        let v4 = |at: usize| frame.get(at..at + 4).map(|b| Ipv4Addr::new(b[0], b[1], b[2], b[3]));
        let v6 = |at: usize| {
            frame.get(at..at + 16).map(|b| Ipv6Addr::from(<[u8; 16]>::try_from(b).unwrap()))
        };
        let is_vip = |a: IpAddr| vips.contains(&a);
        let mut l3 = 14;
        let mut ethertype = be16(12);
        for _ in 0..2 {
            if matches!(ethertype, Some(0x8100 | 0x88a8)) {
                l3 += 4;
                ethertype = be16(l3 - 2);
            }
        }
        if frame.len() < l3 {
            return false;
        }
        match ethertype {
            Some(0x0800) => frame.len() >= l3 + 20 && v4(l3 + 16).is_some_and(|a| is_vip(a.into())),
            Some(0x0806) => {
                frame.len() >= l3 + 28
                    && v4(l3 + 24).is_some_and(|a| is_vip(a.into()) || a.is_unspecified())
            }
            Some(0x86dd) if frame.len() >= l3 + 40 => {
                let dst = v6(l3 + 24).unwrap();
                let icmp_type =
                    (frame[l3 + 6] == 58).then(|| frame.get(l3 + 40).copied()).flatten();
                if is_vip(dst.into()) {
                    return true;
                }
                if dst == link_local(mac) {
                    return icmp_type == Some(136);
                }
                icmp_type == Some(135)
                    && frame.len() >= l3 + 64
                    && v6(l3 + 48).is_some_and(|t| is_vip(t.into()))
            }
            _ => false,
        }
    }

    /// Frames of every kind the rule tells apart, and their tagged, cut and malformed
    /// variants.
    fn frames(mac: MacAddr) -> Vec<(String, Vec<u8>)> {
        let ll = link_local(mac).to_string();
        let other = [0x02, 0, 0, 0, 0, 0x42];
        let mut base = vec![
            ("tcp4 to the VIP", f::tcp4("192.0.2.7", 4000, VIP4, 80, f::SYN)),
            ("tcp4 to the host", f::tcp4("192.0.2.7", 4000, "10.0.0.2", 22, f::SYN)),
            ("udp4 to the VIP", f::udp4("192.0.2.7", 53, VIP4, 53, b"q")),
            ("tcp6 to the VIP", f::tcp6("2001:db8::7", 4000, VIP6, 80, f::SYN)),
            ("tcp6 to the host", f::tcp6("2001:db8::7", 4000, "2001:db8::2", 22, f::SYN)),
            ("udp6 to the VIP", f::udp6("2001:db8::7", 53, VIP6, 53, b"q")),
            ("ping4 to the VIP", f::icmp4_echo("192.0.2.7", VIP4)),
            ("ping4 to the host", f::icmp4_echo("192.0.2.7", "10.0.0.2")),
            ("ping6 to the VIP", f::icmp6_echo("2001:db8::7", VIP6)),
            ("ping6 to the host", f::icmp6_echo("2001:db8::7", "2001:db8::2")),
            ("arp request for the VIP", f::arp_request(VIP4)),
            ("arp request for the host", f::arp_request("10.0.0.2")),
            (
                "arp reply to a probe",
                f::arp(ArpOperation::Reply, mac.0, other, "10.0.0.11", mac.0, "0.0.0.0"),
            ),
            (
                "arp reply to the host",
                f::arp(ArpOperation::Reply, mac.0, other, "10.0.0.11", mac.0, "10.0.0.2"),
            ),
            ("ns for the VIP", f::neighbor_solicitation(other, "2001:db8::7", VIP6)),
            ("ns for the host", f::neighbor_solicitation(other, "2001:db8::7", "2001:db8::2")),
            ("ns for the director's link-local", f::neighbor_solicitation(other, "fe80::42", &ll)),
            (
                "na to the director's link-local",
                f::neighbor_advertisement(other, "2001:db8::11", &ll),
            ),
            ("na to the host", f::neighbor_advertisement(other, "2001:db8::11", "2001:db8::2")),
            ("icmp6 echo to the director's link-local", f::icmp6_echo("fe80::42", &ll)),
        ]
        .into_iter()
        .map(|(name, frame)| (name.to_string(), frame))
        .collect::<Vec<_>>();
        for fragment in f::udp4_fragments("192.0.2.7", 53, VIP4, 53, &[7; 64], 9, 16) {
            base.push(("udp4 fragment to the VIP".into(), fragment));
        }
        let mut all = base.clone();
        for (name, frame) in &base {
            for tags in [&[(0x8100, 5)][..], &[(0x88a8, 5), (0x8100, 6)], &[(0x8100, 5); 3]] {
                all.push((format!("{name}, tags {tags:x?}"), f::with_vlans(frame, tags)));
            }
            // A test run needs at least an Ethernet header.
            for cut in [14, 20, 33, 34, 41, 42, 53, 54, 55, 61, 62, 77, 78] {
                if cut < frame.len() {
                    all.push((format!("{name}, cut to {cut}"), frame[..cut].to_vec()));
                }
            }
        }
        let good = f::tcp4("192.0.2.7", 4000, VIP4, 80, f::SYN);
        // A test run needs at least an Ethernet header (as the kernel never runs XDP on
        // less).
        for (i, frame) in f::malformed_variants(&good).into_iter().enumerate() {
            if frame.len() < 14 {
                continue;
            }
            all.push((format!("malformed variant {i}"), frame));
        }
        all
    }

    #[test]
    #[cfg_attr(not(dr_root), ignore = "needs root (CAP_BPF, CAP_NET_ADMIN)")]
    fn the_program_redirects_exactly_what_the_rule_says() {
        if !crate::tests::privileged() {
            return;
        }
        let mac = MacAddr(f::DIRECTOR_MAC);
        let program = Program::load(1).unwrap();
        let vips = [f::ip(VIP4), f::ip(VIP6)];
        program.set_vips(&vips, mac).unwrap();
        let frames = frames(mac);
        let mut redirected = 0;
        for (name, frame) in &frames {
            // With no socket in the map, a frame for the director is dropped by the
            // redirect's fallback; everything else passes.
            let action = program.run(frame).unwrap_or_else(|e| panic!("{name}: {e}"));
            let expected = if rule(frame, &vips, mac) { XDP_DROP } else { XDP_PASS };
            assert_eq!(action, expected, "{name}: {frame:02x?}");
            redirected += usize::from(expected == XDP_DROP);
        }
        assert!(redirected > 30 && frames.len() - redirected > 30, "both kinds covered");

        // Services change: the maps follow without reloading the program.
        program.set_vips(&[f::ip(VIP6)], mac).unwrap();
        let tcp4 = f::tcp4("192.0.2.7", 4000, VIP4, 80, f::SYN);
        assert_eq!(program.run(&tcp4).unwrap(), XDP_PASS, "a VIP removed is the host's");
        let probe_reply = &frames.iter().find(|(n, _)| n == "arp reply to a probe").unwrap().1;
        assert_eq!(program.run(probe_reply).unwrap(), XDP_DROP, "probe replies stay ours");
        program.set_vips(&[], mac).unwrap();
        assert_eq!(program.run(&f::tcp6("2001:db8::7", 1, VIP6, 80, f::SYN)).unwrap(), XDP_PASS);
    }
}
