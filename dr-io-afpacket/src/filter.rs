//! The classic BPF programs of the backend.
//!
//! [`program`] lets through only what a director needs: ARP, IPv4 to a VIP, IPv6 to a VIP
//! or carrying ICMPv6 (Neighbor Discovery), and frames with an in-band VLAN tag (judged by
//! the director). Everything else stays with the host's stack alone, and never crosses into
//! the ring.
//!
//! [`fanout_program`] picks the worker of a fanout group for each frame from its IP
//! addresses alone, so every fragment of a datagram, which only the first carries ports
//! for, goes where its first fragment went, and every packet of a flow with it, without the
//! kernel reassembling anything.

use std::net::IpAddr;

const LD_H_ABS: u16 = 0x28; // BPF_LD | BPF_H | BPF_ABS
const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const LD_B_ABS: u16 = 0x30; // BPF_LD | BPF_B | BPF_ABS
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JA: u16 = 0x05; // BPF_JMP | BPF_JA
const RET_K: u16 = 0x06; // BPF_RET | BPF_K
const RET_A: u16 = 0x16; // BPF_RET | BPF_A
const TAX: u16 = 0x07; // BPF_MISC | BPF_TAX
const XOR_X: u16 = 0xac; // BPF_ALU | BPF_XOR | BPF_X
const MUL_K: u16 = 0x24; // BPF_ALU | BPF_MUL | BPF_K
const RSH_K: u16 = 0x74; // BPF_ALU | BPF_RSH | BPF_K

/// `SKF_AD_OFF + SKF_AD_PROTOCOL`: loads the frame's EtherType (after any VLAN tag the
/// kernel took out), as a number.
const AD_PROTOCOL: u32 = (-0x1000_i32) as u32;
/// `SKF_AD_OFF + SKF_AD_RXHASH`: the kernel's flow hash.
const AD_RXHASH: u32 = (-0x1000_i32 + 32) as u32;
/// `SKF_NET_OFF`: loads relative to the network header, wherever the frame starts.
const NET_OFF: u32 = (-0x10_0000_i32) as u32;

const ACCEPT: u32 = 0x0004_0000; // 256 KiB: the whole frame
const REJECT: u32 = 0;

/// One instruction, before the jumps are resolved.
#[derive(Clone, Copy)]
enum Insn {
    Load {
        code: u16,
        offset: u32,
    },
    /// Compare with `k`; on equal go to label `then`, else fall through.
    IfEq {
        k: u32,
        then: Label,
    },
    /// On not equal go to `otherwise`, else fall through.
    IfNe {
        k: u32,
        otherwise: Label,
    },
    Jump(Label),
    Ret(u32),
    /// Any instruction without a jump.
    Op {
        code: u16,
        k: u32,
    },
    Mark(Label),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Label {
    Accept,
    Reject,
    NotIpv4,
    NotIpv6,
    Mix,
    Next(usize),
}

/// The fanout program: for IPv4 and IPv6, the two addresses XORed word by word, mixed by a
/// multiplication and its high half taken (the kernel takes the result modulo the number of
/// workers); for anything else (ARP, QinQ), the kernel's own flow hash.
pub(crate) fn fanout_program() -> Vec<libc::sock_filter> {
    let mut p = vec![
        Insn::Load { code: LD_W_ABS, offset: AD_PROTOCOL },
        Insn::IfEq { k: 0x0800, then: Label::NotIpv4 },
        Insn::IfEq { k: 0x86dd, then: Label::NotIpv6 },
        Insn::Load { code: LD_W_ABS, offset: AD_RXHASH },
        Insn::Op { code: RET_A, k: 0 },
        // IPv4: source and destination (header bytes 12..20).
        Insn::Mark(Label::NotIpv4),
        Insn::Load { code: LD_W_ABS, offset: NET_OFF + 12 },
        Insn::Op { code: TAX, k: 0 },
        Insn::Load { code: LD_W_ABS, offset: NET_OFF + 16 },
        Insn::Op { code: XOR_X, k: 0 },
        Insn::Jump(Label::Mix),
        // IPv6: source and destination (header bytes 8..40), eight words.
        Insn::Mark(Label::NotIpv6),
        Insn::Load { code: LD_W_ABS, offset: NET_OFF + 8 },
    ];
    for word in 1..8 {
        p.push(Insn::Op { code: TAX, k: 0 });
        p.push(Insn::Load { code: LD_W_ABS, offset: NET_OFF + 8 + 4 * word });
        p.push(Insn::Op { code: XOR_X, k: 0 });
    }
    p.extend([
        Insn::Mark(Label::Mix),
        Insn::Op { code: MUL_K, k: 0x9e37_79b1 },
        Insn::Op { code: RSH_K, k: 16 },
        Insn::Op { code: RET_A, k: 0 },
    ]);
    assemble(&p).unwrap_or_default()
}

/// The program for a director owning `vips`.
pub(crate) fn program(vips: &[IpAddr]) -> Vec<libc::sock_filter> {
    let mut p = vec![
        Insn::Load { code: LD_H_ABS, offset: 12 },
        Insn::IfEq { k: 0x0806, then: Label::Accept },
        Insn::IfEq { k: 0x8100, then: Label::Accept },
        Insn::IfEq { k: 0x88a8, then: Label::Accept },
        Insn::IfEq { k: 0x9100, then: Label::Accept },
        Insn::IfNe { k: 0x0800, otherwise: Label::NotIpv4 },
        Insn::Load { code: LD_W_ABS, offset: 30 },
    ];
    for vip in vips {
        if let IpAddr::V4(v4) = vip {
            p.push(Insn::IfEq { k: u32::from(*v4), then: Label::Accept });
        }
    }
    p.extend([
        Insn::Jump(Label::Reject),
        Insn::Mark(Label::NotIpv4),
        Insn::Load { code: LD_H_ABS, offset: 12 },
        Insn::IfNe { k: 0x86dd, otherwise: Label::Reject },
        Insn::Load { code: LD_B_ABS, offset: 20 },
        Insn::IfEq { k: 58, then: Label::Accept },
    ]);
    let v6: Vec<_> = vips
        .iter()
        .filter_map(|v| match v {
            IpAddr::V6(a) => Some(a.octets()),
            IpAddr::V4(_) => None,
        })
        .collect();
    for (n, octets) in v6.iter().enumerate() {
        let next = Label::Next(n);
        for word in 0..4 {
            let k = u32::from_be_bytes([
                octets[4 * word],
                octets[4 * word + 1],
                octets[4 * word + 2],
                octets[4 * word + 3],
            ]);
            p.push(Insn::Load { code: LD_W_ABS, offset: 38 + 4 * word as u32 });
            p.push(Insn::IfNe { k, otherwise: next });
        }
        p.push(Insn::Jump(Label::Accept));
        p.push(Insn::Mark(next));
    }
    p.extend([
        Insn::Mark(Label::NotIpv6),
        Insn::Mark(Label::Reject),
        Insn::Ret(REJECT),
        Insn::Mark(Label::Accept),
        Insn::Ret(ACCEPT),
    ]);
    // Conditional jumps reach 255 instructions at most: with very many VIPs, let every IP
    // packet through and leave the choice to the director.
    assemble(&p).unwrap_or_else(program_without_vips)
}

/// TCP over IPv4 (without options or with) and over IPv6 (no extension headers): what a
/// probe's answer is.
pub(crate) fn tcp_program() -> Vec<libc::sock_filter> {
    let p = [
        Insn::Load { code: LD_H_ABS, offset: 12 },
        Insn::IfNe { k: 0x0800, otherwise: Label::NotIpv4 },
        Insn::Load { code: LD_B_ABS, offset: 23 },
        Insn::IfEq { k: 6, then: Label::Accept },
        Insn::Ret(REJECT),
        Insn::Mark(Label::NotIpv4),
        Insn::IfNe { k: 0x86dd, otherwise: Label::Reject },
        Insn::Load { code: LD_B_ABS, offset: 20 },
        Insn::IfEq { k: 6, then: Label::Accept },
        Insn::Mark(Label::Reject),
        Insn::Ret(REJECT),
        Insn::Mark(Label::Accept),
        Insn::Ret(ACCEPT),
    ];
    assemble(&p).unwrap_or_default()
}

/// ARP, IPv4, IPv6 and tagged frames, whatever their destination.
fn program_without_vips() -> Vec<libc::sock_filter> {
    let p = [
        Insn::Load { code: LD_H_ABS, offset: 12 },
        Insn::IfEq { k: 0x0806, then: Label::Accept },
        Insn::IfEq { k: 0x0800, then: Label::Accept },
        Insn::IfEq { k: 0x86dd, then: Label::Accept },
        Insn::IfEq { k: 0x8100, then: Label::Accept },
        Insn::IfEq { k: 0x88a8, then: Label::Accept },
        Insn::IfEq { k: 0x9100, then: Label::Accept },
        Insn::Ret(REJECT),
        Insn::Mark(Label::Accept),
        Insn::Ret(ACCEPT),
    ];
    assemble(&p).unwrap_or_default()
}

/// Resolves labels into relative jumps; `None` when a conditional jump is too long.
fn assemble(program: &[Insn]) -> Option<Vec<libc::sock_filter>> {
    // The index each label stands at, counting real instructions only.
    let mut at = Vec::new();
    let mut index = 0usize;
    for insn in program {
        match insn {
            Insn::Mark(label) => at.push((*label, index)),
            _ => index += 1,
        }
    }
    let target = |label: Label| at.iter().find(|(l, _)| *l == label).map_or(0, |(_, i)| *i);
    let mut out = Vec::with_capacity(index);
    for insn in program {
        let here = out.len();
        let rel = |label: Label| target(label).saturating_sub(here + 1);
        let short = |label: Label| u8::try_from(rel(label)).ok();
        let (code, jt, jf, k) = match *insn {
            Insn::Load { code, offset } => (code, 0, 0, offset),
            Insn::IfEq { k, then } => (JEQ_K, short(then)?, 0, k),
            Insn::IfNe { k, otherwise } => (JEQ_K, 0, short(otherwise)?, k),
            Insn::Jump(label) => (JA, 0, 0, u32::try_from(rel(label)).ok()?),
            Insn::Ret(k) => (RET_K, 0, 0, k),
            Insn::Op { code, k } => (code, 0, 0, k),
            Insn::Mark(_) => continue,
        };
        out.push(libc::sock_filter { code, jt, jf, k });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A classic BPF interpreter for the instructions the programs use, over an untagged
    /// Ethernet frame (the network header at 14; `rxhash` for the kernel's flow hash).
    fn run_with(program: &[libc::sock_filter], frame: &[u8], rxhash: u32) -> u32 {
        let mut pc = 0;
        let (mut a, mut x) = (0u32, 0u32);
        while let Some(i) = program.get(pc) {
            let load = |size: usize| -> Option<u32> {
                if i.k == AD_PROTOCOL {
                    return Some(u32::from(u16::from_be_bytes(
                        frame.get(12..14)?.try_into().ok()?,
                    )));
                }
                if i.k == AD_RXHASH {
                    return Some(rxhash);
                }
                let at = match i.k.checked_sub(NET_OFF) {
                    Some(net) => 14 + net as usize,
                    None => i.k as usize,
                };
                let bytes = frame.get(at..at + size)?;
                Some(bytes.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
            };
            match i.code {
                LD_H_ABS | LD_W_ABS | LD_B_ABS => {
                    let size = match i.code {
                        LD_H_ABS => 2,
                        LD_W_ABS => 4,
                        _ => 1,
                    };
                    match load(size) {
                        Some(v) => a = v,
                        None => return 0,
                    }
                }
                JEQ_K => pc += usize::from(if a == i.k { i.jt } else { i.jf }),
                JA => pc += i.k as usize,
                RET_K => return i.k,
                RET_A => return a,
                TAX => x = a,
                XOR_X => a ^= x,
                MUL_K => a = a.wrapping_mul(i.k),
                RSH_K => a >>= i.k,
                other => panic!("unexpected opcode {other:#x}"),
            }
            pc += 1;
        }
        panic!("fell off the end");
    }

    fn run(program: &[libc::sock_filter], frame: &[u8]) -> u32 {
        run_with(program, frame, 0)
    }

    fn frame(ether_type: u16, body: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ether_type.to_be_bytes());
        f.extend_from_slice(body);
        f
    }

    fn ipv4_to(dst: [u8; 4]) -> Vec<u8> {
        let mut ip = vec![0x45, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0, 192, 0, 2, 7];
        ip.extend_from_slice(&dst);
        frame(0x0800, &ip)
    }

    fn ipv6(next: u8, dst: std::net::Ipv6Addr) -> Vec<u8> {
        let mut ip = vec![0x60, 0, 0, 0, 0, 0, next, 64];
        ip.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7]);
        ip.extend_from_slice(&dst.octets());
        frame(0x86dd, &ip)
    }

    #[test]
    fn lets_through_what_the_director_needs_and_nothing_else() {
        let vips: Vec<IpAddr> = vec![
            "10.0.0.100".parse().unwrap(),
            "2001:db8::100".parse().unwrap(),
            "10.0.0.101".parse().unwrap(),
        ];
        let p = program(&vips);
        assert_eq!(run(&p, &frame(0x0806, &[0; 28])), ACCEPT);
        assert_eq!(run(&p, &frame(0x8100, &[0; 28])), ACCEPT);
        assert_eq!(run(&p, &ipv4_to([10, 0, 0, 100])), ACCEPT);
        assert_eq!(run(&p, &ipv4_to([10, 0, 0, 101])), ACCEPT);
        assert_eq!(run(&p, &ipv4_to([10, 0, 0, 2])), REJECT);
        assert_eq!(run(&p, &ipv6(6, "2001:db8::100".parse().unwrap())), ACCEPT);
        assert_eq!(run(&p, &ipv6(6, "2001:db8::101".parse().unwrap())), REJECT);
        assert_eq!(run(&p, &ipv6(58, "ff02::1:ff00:100".parse().unwrap())), ACCEPT);
        assert_eq!(run(&p, &frame(0x88cc, &[0; 40])), REJECT);
        assert_eq!(run(&p, &[0u8; 10]), REJECT);
    }

    #[test]
    fn very_many_vips_fall_back_to_every_ip_packet() {
        let vips: Vec<IpAddr> = (0..100u32)
            .map(|i| IpAddr::V6(std::net::Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(i))))
            .collect();
        let p = program(&vips);
        assert_eq!(run(&p, &ipv4_to([10, 0, 0, 2])), ACCEPT);
        assert_eq!(run(&p, &frame(0x88cc, &[0; 40])), REJECT);
    }

    #[test]
    fn the_probe_filter_takes_tcp_only() {
        let p = tcp_program();
        assert_eq!(run(&p, &ipv4_to([10, 0, 0, 100])), ACCEPT, "protocol 6");
        let mut udp = ipv4_to([10, 0, 0, 100]);
        udp[23] = 17;
        assert_eq!(run(&p, &udp), REJECT);
        assert_eq!(run(&p, &ipv6(6, "2001:db8::100".parse().unwrap())), ACCEPT);
        assert_eq!(run(&p, &ipv6(58, "2001:db8::100".parse().unwrap())), REJECT);
        assert_eq!(run(&p, &frame(0x0806, &[0; 28])), REJECT);
    }

    #[test]
    fn no_vips_takes_only_arp_nd_and_tags() {
        let p = program(&[]);
        assert_eq!(run(&p, &ipv4_to([10, 0, 0, 100])), REJECT);
        assert_eq!(run(&p, &frame(0x0806, &[0; 28])), ACCEPT);
    }

    /// An IPv4 datagram's header from `src` to `dst`, fragment offset `offset` (8-byte
    /// units), with more fragments to come or not, and `ports` after it when it has them.
    fn ipv4(src: [u8; 4], dst: [u8; 4], offset: u16, more: bool, ident: u16) -> Vec<u8> {
        let flags = if more { 0x2000 } else { 0 } | offset;
        let mut ip = vec![0x45, 0, 0, 60];
        ip.extend_from_slice(&ident.to_be_bytes());
        ip.extend_from_slice(&flags.to_be_bytes());
        ip.extend_from_slice(&[64, 17, 0, 0]);
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        ip.extend_from_slice(&[0x13, 0x88, 0x00, 0x35, 0, 40, 0, 0]);
        frame(0x0800, &ip)
    }

    #[test]
    fn the_fanout_hash_is_of_the_addresses_alone() {
        let p = fanout_program();
        let hash = |frame: &[u8]| run_with(&p, frame, 0xdead_beef);
        // By hand: 192.0.2.7 ^ 10.0.0.100, times 0x9e3779b1, the high half.
        let expected = ((0xc000_0207_u32 ^ 0x0a00_0064).wrapping_mul(0x9e37_79b1)) >> 16;
        let (src, dst) = ([192, 0, 2, 7], [10, 0, 0, 100]);
        assert_eq!(hash(&ipv4(src, dst, 0, true, 1)), expected, "a first fragment");
        assert_eq!(hash(&ipv4(src, dst, 185, true, 1)), expected, "a later one");
        assert_eq!(hash(&ipv4(src, dst, 370, false, 1)), expected, "the last one");
        assert_eq!(hash(&ipv4(src, dst, 0, false, 2)), expected, "a whole datagram");
        assert_ne!(hash(&ipv4([192, 0, 2, 8], dst, 0, false, 2)), expected, "another client");
        // Both ends swapped: the same worker (XOR is symmetric).
        assert_eq!(hash(&ipv4(dst, src, 0, false, 3)), expected);
        // IPv6: the eight address words.
        let v6 = ipv6(17, "2001:db8::100".parse().unwrap());
        let words: Vec<u32> =
            v6[22..54].chunks(4).map(|w| u32::from_be_bytes(w.try_into().unwrap())).collect();
        let folded = words.iter().fold(0, |a, w| a ^ w);
        assert_eq!(hash(&v6), folded.wrapping_mul(0x9e37_79b1) >> 16);
        // Anything else: the kernel's hash.
        assert_eq!(hash(&frame(0x0806, &[0; 28])), 0xdead_beef);
    }
}
