//! What can go wrong opening or running the backend, each saying what to do about it.

use std::fmt;
use std::io;

/// An error of the `AF_PACKET` backend.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The process may not open packet sockets.
    Permission {
        /// What was refused.
        operation: &'static str,
    },
    /// No interface has this name.
    NoSuchInterface(String),
    /// The interface is administratively down.
    InterfaceDown(String),
    /// The interface went away while the backend ran (deleted, or moved to another
    /// namespace): nothing more will arrive.
    InterfaceGone(String),
    /// The kernel refused every receive ring size tried.
    RingSetup {
        /// `(block size, blocks)` pairs tried, largest first.
        tried: Vec<(u32, u32)>,
        /// The last refusal.
        source: io::Error,
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
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Permission { operation } => write!(
                f,
                "{operation}: not permitted: run as root or give the binary CAP_NET_RAW \
                 (setcap cap_net_raw+ep)"
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
            Self::RingSetup { tried, source } => {
                write!(f, "the kernel refused a receive ring ({source}); tried")?;
                for (size, blocks) in tried {
                    write!(f, " {blocks}x{} KiB", size / 1024)?;
                }
                f.write_str(": free memory or raise the locked-memory limit (ulimit -l)")
            }
            Self::Io { operation, source } => write!(f, "{operation}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::RingSetup { source, .. } | Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
