//! Connection states, IPVS's input-only TCP state table and the per-state timeouts.
//!
//! Source: `net/netfilter/ipvs/ip_vs_proto_tcp.c` (`tcp_states`, INPUT-ONLY rows;
//! `tcp_state_idx`; `set_tcp_state`; `tcp_timeouts`) and `ip_vs_proto_udp.c`.
//! A Direct Routing connection never sees the server's replies, so IPVS flags it
//! `NOOUTPUT` and moves it with the INPUT-ONLY rows only.

use crate::time::Duration;
use crate::wire::TcpFlags;
use core::fmt;

/// The state of a connection entry, with the kernel's numbering and names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ConnState {
    /// `NONE`: just created, before the first packet's transition.
    None = 0,
    /// `ESTABLISHED`.
    Established,
    /// `SYN_SENT`.
    SynSent,
    /// `SYN_RECV`: the client's SYN has been forwarded.
    SynRecv,
    /// `FIN_WAIT`: the client sent FIN.
    FinWait,
    /// `TIME_WAIT`.
    TimeWait,
    /// `CLOSE`: reset, or a segment with none of SYN/FIN/ACK/RST.
    Close,
    /// `CLOSE_WAIT`.
    CloseWait,
    /// `LAST_ACK`.
    LastAck,
    /// `LISTEN`.
    Listen,
    /// `SYNACK` (reached only with `secure_tcp`).
    SynAck,
    /// A UDP connection (state name `UDP`).
    Udp,
}

impl ConnState {
    /// Number of states.
    pub const COUNT: usize = 12;

    const ALL: [Self; Self::COUNT] = [
        Self::None,
        Self::Established,
        Self::SynSent,
        Self::SynRecv,
        Self::FinWait,
        Self::TimeWait,
        Self::Close,
        Self::CloseWait,
        Self::LastAck,
        Self::Listen,
        Self::SynAck,
        Self::Udp,
    ];

    /// The name `ipvsadm -L -c` prints.
    pub const fn name(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Established => "ESTABLISHED",
            Self::SynSent => "SYN_SENT",
            Self::SynRecv => "SYN_RECV",
            Self::FinWait => "FIN_WAIT",
            Self::TimeWait => "TIME_WAIT",
            Self::Close => "CLOSE",
            Self::CloseWait => "CLOSE_WAIT",
            Self::LastAck => "LAST_ACK",
            Self::Listen => "LISTEN",
            Self::SynAck => "SYNACK",
            Self::Udp => "UDP",
        }
    }

    /// Whether the kernel counts a connection in this state as active
    /// (`tcp_state_active_table`: ESTABLISHED, SYN_SENT, SYN_RECV and SYNACK). UDP
    /// connections are always inactive.
    pub const fn is_active(self) -> bool {
        matches!(self, Self::Established | Self::SynSent | Self::SynRecv | Self::SynAck)
    }

    /// The index of this state in timeout tables.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The next state of a TCP connection on a client-to-server segment with `flags`,
    /// by the INPUT-ONLY rows and the flag precedence RST > SYN > FIN > ACK. A segment with
    /// none of the four moves the connection to CLOSE.
    pub fn next_tcp(self, flags: TcpFlags) -> Self {
        let row = if flags.rst() {
            &INPUT_ONLY_RST
        } else if flags.syn() {
            &INPUT_ONLY_SYN
        } else if flags.fin() {
            &INPUT_ONLY_FIN
        } else if flags.ack() {
            &INPUT_ONLY_ACK
        } else {
            return Self::Close;
        };
        // A UDP entry never takes this path; treat it as NONE rather than index past the row.
        row.get(self.index()).copied().unwrap_or(row[0])
    }
}

impl fmt::Display for ConnState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

use ConnState::{
    Close as CL, CloseWait as CW, Established as ES, FinWait as FW, LastAck as LA, Listen as LI,
    SynRecv as SR, SynSent as SS, TimeWait as TW,
};

//                               NONE ESTAB SYN_S SYN_R FIN_W TIME_W CLOSE CL_W  L_ACK LISTEN SYNACK
const INPUT_ONLY_SYN: [ConnState; 11] = [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR];
const INPUT_ONLY_FIN: [ConnState; 11] = [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW];
const INPUT_ONLY_ACK: [ConnState; 11] = [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES];
const INPUT_ONLY_RST: [ConnState; 11] = [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL];

/// The three timeouts `ipvsadm --set tcp tcpfin udp` changes, in whole seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeoutSettings {
    /// ESTABLISHED (kernel default 900 s).
    pub tcp: u32,
    /// FIN_WAIT (kernel default 120 s).
    pub tcpfin: u32,
    /// UDP (kernel default 300 s).
    pub udp: u32,
}

impl Default for TimeoutSettings {
    fn default() -> Self {
        Self { tcp: 900, tcpfin: 120, udp: 300 }
    }
}

/// The timeout of every state, in seconds: the kernel's `tcp_timeouts` and `udp_timeouts`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    secs: [u32; ConnState::COUNT],
}

impl Default for Timeouts {
    fn default() -> Self {
        let mut timeouts = Self { secs: [0; ConnState::COUNT] };
        for state in ConnState::ALL {
            timeouts.secs[state.index()] = match state {
                ConnState::None => 2,
                ConnState::Established => 900,
                ConnState::SynSent => 120,
                ConnState::SynRecv => 60,
                ConnState::FinWait => 120,
                ConnState::TimeWait => 120,
                ConnState::Close => 10,
                ConnState::CloseWait => 60,
                ConnState::LastAck => 30,
                ConnState::Listen => 120,
                ConnState::SynAck => 120,
                ConnState::Udp => 300,
            };
        }
        timeouts
    }
}

impl Timeouts {
    /// The timeout of `state`.
    pub fn of(&self, state: ConnState) -> Duration {
        Duration::from_secs(u64::from(self.secs[state.index()]))
    }

    /// Applies `ipvsadm --set tcp tcpfin udp`: each non-zero value replaces the timeout of
    /// ESTABLISHED, FIN_WAIT and UDP; zero keeps the current one.
    pub fn apply(&mut self, settings: TimeoutSettings) {
        for (state, secs) in [
            (ConnState::Established, settings.tcp),
            (ConnState::FinWait, settings.tcpfin),
            (ConnState::Udp, settings.udp),
        ] {
            if secs != 0 {
                self.secs[state.index()] = secs;
            }
        }
    }

    /// The three settable timeouts, as `ipvsadm -L --timeout` shows them.
    pub fn settings(&self) -> TimeoutSettings {
        TimeoutSettings {
            tcp: self.secs[ConnState::Established.index()],
            tcpfin: self.secs[ConnState::FinWait.index()],
            udp: self.secs[ConnState::Udp.index()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConnState::*;

    const SYN: TcpFlags = TcpFlags(TcpFlags::SYN);
    const FIN: TcpFlags = TcpFlags(TcpFlags::FIN);
    const ACK: TcpFlags = TcpFlags(TcpFlags::ACK);
    const RST: TcpFlags = TcpFlags(TcpFlags::RST);

    /// The spec's §2.4 table, row by row, in the kernel's column order.
    #[test]
    fn input_only_table_matches_the_spec() {
        let columns = [
            None,
            Established,
            SynSent,
            SynRecv,
            FinWait,
            TimeWait,
            Close,
            CloseWait,
            LastAck,
            Listen,
            SynAck,
        ];
        let rows: [(TcpFlags, [ConnState; 11]); 4] = [
            (
                SYN,
                [
                    SynRecv,
                    Established,
                    Established,
                    SynRecv,
                    SynRecv,
                    SynRecv,
                    SynRecv,
                    SynRecv,
                    SynRecv,
                    SynRecv,
                    SynRecv,
                ],
            ),
            (
                FIN,
                [
                    Close, FinWait, SynSent, TimeWait, FinWait, TimeWait, Close, CloseWait,
                    LastAck, Listen, TimeWait,
                ],
            ),
            (
                ACK,
                [
                    Established,
                    Established,
                    SynSent,
                    Established,
                    FinWait,
                    TimeWait,
                    Close,
                    CloseWait,
                    Close,
                    Listen,
                    Established,
                ],
            ),
            (
                RST,
                [Close, Close, Close, SynRecv, Close, Close, Close, Close, LastAck, Listen, Close],
            ),
        ];
        for (flags, expected) in rows {
            for (from, to) in columns.iter().zip(expected) {
                assert_eq!(from.next_tcp(flags), to, "{from} on {flags:?}");
            }
        }
    }

    #[test]
    fn flag_precedence_is_rst_syn_fin_ack() {
        let all = TcpFlags(TcpFlags::RST | TcpFlags::SYN | TcpFlags::FIN | TcpFlags::ACK);
        assert_eq!(Established.next_tcp(all), Close);
        let syn_fin = TcpFlags(TcpFlags::SYN | TcpFlags::FIN);
        assert_eq!(Established.next_tcp(syn_fin), Established);
        assert_eq!(FinWait.next_tcp(syn_fin), SynRecv);
        let fin_ack = TcpFlags(TcpFlags::FIN | TcpFlags::ACK);
        assert_eq!(Established.next_tcp(fin_ack), FinWait);
        // No SYN, FIN, ACK or RST (e.g. a bare PSH): CLOSE.
        assert_eq!(Established.next_tcp(TcpFlags(TcpFlags::PSH)), Close);
        assert_eq!(Established.next_tcp(TcpFlags(0)), Close);
    }

    #[test]
    fn active_states() {
        let active: [ConnState; 4] = [Established, SynSent, SynRecv, SynAck];
        for state in ConnState::ALL {
            assert_eq!(state.is_active(), active.contains(&state), "{state}");
        }
    }

    #[test]
    fn kernel_default_timeouts() {
        let t = Timeouts::default();
        let expected = [
            (None, 2),
            (Established, 900),
            (SynSent, 120),
            (SynRecv, 60),
            (FinWait, 120),
            (TimeWait, 120),
            (Close, 10),
            (CloseWait, 60),
            (LastAck, 30),
            (Listen, 120),
            (SynAck, 120),
            (Udp, 300),
        ];
        for (state, secs) in expected {
            assert_eq!(t.of(state), Duration::from_secs(secs), "{state}");
        }
        assert_eq!(t.settings(), TimeoutSettings::default());
    }

    #[test]
    fn set_changes_exactly_three_and_zero_keeps() {
        let mut t = Timeouts::default();
        t.apply(TimeoutSettings { tcp: 100, tcpfin: 0, udp: 30 });
        assert_eq!(t.settings(), TimeoutSettings { tcp: 100, tcpfin: 120, udp: 30 });
        assert_eq!(t.of(Close), Duration::from_secs(10));
        assert_eq!(t.of(SynRecv), Duration::from_secs(60));
    }
}
