//! One dr-director per interface: a lock that a second director on the same interface of
//! the same network namespace cannot take.
//!
//! The lock is a listening Unix socket in the abstract namespace, named after the
//! interface. Abstract sockets belong to the network namespace, so directors on `eth0` of
//! two namespaces do not conflict, and the kernel releases the name when the process ends
//! however it ends: there is no stale lock to clean up. The director that holds it can be
//! named: a second one connects and reads its process ID (`SO_PEERCRED`).

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};

/// The lock on one interface, held while this value lives.
#[derive(Debug)]
pub struct InterfaceLock {
    _listener: UnixListener,
}

impl InterfaceLock {
    /// Takes the lock on `interface`.
    ///
    /// # Errors
    ///
    /// A message naming the interface and, when it can be read, the process ID of the
    /// director that holds it.
    pub fn take(interface: &str) -> Result<Self, String> {
        let name = format!("dr-director/interface/{interface}");
        let addr = SocketAddr::from_abstract_name(name.as_bytes())
            .map_err(|e| format!("locking interface {interface}: {e}"))?;
        match UnixListener::bind_addr(&addr) {
            Ok(listener) => Ok(Self { _listener: listener }),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                let holder = UnixStream::connect_addr(&addr)
                    .ok()
                    .and_then(|stream| peer_pid(&stream))
                    .map_or_else(String::new, |pid| format!(" (process {pid})"));
                Err(format!(
                    "another dr-director already runs on {interface}{holder}: two directors on \
                     one interface would each forward every frame; stop it first, or use \
                     --workers to share the interface"
                ))
            }
            Err(e) => Err(format!("locking interface {interface}: {e}")),
        }
    }
}

/// The process ID at the other end of a Unix stream.
fn peer_pid(stream: &UnixStream) -> Option<i32> {
    rustix::net::sockopt::socket_peercred(stream).ok().map(|cred| cred.pid.as_raw_nonzero().get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_interface_is_refused_and_names_the_holder() {
        let name = format!("drlock{}", std::process::id());
        let held = InterfaceLock::take(&name).unwrap();
        let err = InterfaceLock::take(&name).unwrap_err();
        assert!(err.contains(&format!("already runs on {name}")), "{err}");
        assert!(err.contains(&format!("process {}", std::process::id())), "{err}");
        assert!(InterfaceLock::take(&format!("{name}x")).is_ok(), "another interface is free");
        drop(held);
        assert!(InterfaceLock::take(&name).is_ok(), "released with its holder");
    }
}
