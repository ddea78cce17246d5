//! What can go wrong opening or running the backend, each saying what to do about it.

use std::fmt;
use std::io;

/// An error of the `AF_XDP` backend.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The process may not load XDP programs or open `AF_XDP` sockets.
    Permission {
        /// What was refused.
        operation: &'static str,
    },
    /// No interface has this name.
    NoSuchInterface(String),
    /// The interface is administratively down.
    InterfaceDown(String),
    /// The interface went away while the backend ran: nothing more will arrive.
    InterfaceGone(String),
    /// The interface (or this kernel) cannot run the XDP program or bind an `AF_XDP`
    /// socket in the mode asked for.
    XdpUnsupported {
        /// The interface.
        interface: String,
        /// What was refused.
        operation: &'static str,
        /// The kernel's refusal.
        source: io::Error,
    },
    /// The interface has another number of receive queues than there are sockets to
    /// open: each queue needs its own socket (one per worker).
    Queues {
        /// The interface.
        interface: String,
        /// Its receive queues.
        queues: u32,
        /// The sockets asked for.
        workers: u32,
    },
    /// The kernel's verifier refused the XDP program (a bug of this crate), with its log.
    Verifier {
        /// The refusal.
        source: io::Error,
        /// The verifier's log.
        log: String,
    },
    /// Any other system call failed.
    Io {
        /// What the backend was doing.
        operation: &'static str,
        /// The system's error.
        source: io::Error,
    },
}

impl Error {
    /// Whether the backend cannot go on: the interface is gone, or the process lost its
    /// permissions. Other errors may pass.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::InterfaceGone(_) | Self::Permission { .. })
    }

    /// Wraps an I/O error, recognising a permission problem.
    pub(crate) fn io(operation: &'static str, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::PermissionDenied
            || source.raw_os_error() == Some(libc::EPERM)
        {
            Self::Permission { operation }
        } else {
            Self::Io { operation, source }
        }
    }

    /// Wraps a refusal of an XDP operation on `interface`.
    pub(crate) fn xdp(interface: &str, operation: &'static str, source: io::Error) -> Self {
        match source.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => Self::Permission { operation },
            _ => Self::XdpUnsupported { interface: interface.into(), operation, source },
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Permission { operation } => write!(
                f,
                "{operation}: not permitted: run as root or give the binary CAP_NET_ADMIN, \
                 CAP_NET_RAW and CAP_BPF (and a locked-memory limit large enough for the UMEM)"
            ),
            Self::NoSuchInterface(name) => {
                write!(f, "no interface named {name:?}: list them with `ip link`")
            }
            Self::InterfaceDown(name) => {
                write!(f, "interface {name} is down: bring it up with `ip link set {name} up`")
            }
            Self::InterfaceGone(name) => write!(
                f,
                "interface {name} went away (deleted or moved to another namespace): \
                 restart the director once it is back"
            ),
            Self::XdpUnsupported { interface, operation, source } => write!(
                f,
                "XDP is not supported on interface {interface} ({operation}: {source}): \
                 use --backend afpacket"
            ),
            Self::Queues { interface, queues, workers } => write!(
                f,
                "interface {interface} has {queues} receive queues and the AF_XDP backend needs \
                 one worker per queue, {workers} asked: run with --workers {queues}, or change \
                 the queues with `ethtool -L {interface} combined {workers}`"
            ),
            Self::Verifier { source, log } => {
                write!(f, "the kernel refused the XDP program ({source}); verifier log:\n{log}")
            }
            Self::Io { operation, source } => write!(f, "{operation}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::XdpUnsupported { source, .. }
            | Self::Verifier { source, .. }
            | Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
