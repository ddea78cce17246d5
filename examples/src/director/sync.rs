//! dr-director's connection sync daemon: the UDP multicast sockets around dr-core's sans-I/O
//! sync ([`dr_core::sync`]), configured as `ipvsadm --start-daemon` is.
//!
//! - `--sync master`: every worker sends the messages its director queues
//!   ([`Director::poll_sync`]) after each batch, to the group (224.0.0.81:8848 by default,
//!   TTL 1, multicast loop off) out of the sync interface.
//! - `--sync backup`: a receiving thread hands every datagram from the group to every
//!   worker's director ([`Director::import_sync`]): each worker holds the whole synced
//!   table, since the worker a flow will reach is chosen per packet. At start the backup
//!   sends one bulk resync request, so that a restarted backup gets the live table back.
//! - A master listens to the group as well, for the resync requests only.

use dr_core::sync::wire::{DEFAULT_MAXLEN, MAX_MAXLEN, SYNC_GROUP, SYNC_PORT};
use dr_core::{Director, SyncConfig, SyncMode};
use rustix::net::{AddressFamily, SocketType, sockopt};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::Duration;

use super::workers::Job;

/// The command-line flags of the sync daemon, as `ipvsadm --start-daemon` names them.
#[derive(Clone, Debug, clap::Args)]
pub struct SyncArgs {
    /// Run the connection sync daemon: master (send this director's connections) or
    /// backup (import a master's), wire-compatible with the kernel's.
    #[arg(long, value_name = "master|backup", value_parser = parse_mode)]
    pub sync: Option<SyncMode>,
    /// The interface the sync messages go out of and come in on (default: --iface).
    #[arg(long, value_name = "IF", requires = "sync")]
    pub sync_iface: Option<String>,
    /// The sync ID sent, and the one a backup takes (0 there: every ID).
    #[arg(long, value_name = "N", default_value_t = 0, requires = "sync")]
    pub syncid: u8,
    /// The multicast group.
    #[arg(long, value_name = "ADDR", default_value_t = SYNC_GROUP, requires = "sync")]
    pub sync_group: Ipv4Addr,
    /// The UDP port.
    #[arg(long, value_name = "N", default_value_t = SYNC_PORT, requires = "sync",
          value_parser = clap::value_parser!(u16).range(1..))]
    pub sync_port: u16,
    /// The multicast TTL.
    #[arg(long, value_name = "N", default_value_t = 1, requires = "sync",
          value_parser = clap::value_parser!(u8).range(1..))]
    pub sync_ttl: u8,
    /// The largest message, in bytes of UDP payload.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAXLEN, requires = "sync",
          value_parser = clap::value_parser!(u16).range(1..=i64::from(MAX_MAXLEN)))]
    pub sync_maxlen: u16,
}

fn parse_mode(text: &str) -> Result<SyncMode, String> {
    match text {
        "master" => Ok(SyncMode::Master),
        "backup" => Ok(SyncMode::Backup),
        other => Err(format!("{other:?} is not a sync mode: give master or backup")),
    }
}

impl SyncArgs {
    /// The core's settings these flags give.
    pub fn config(&self) -> Option<SyncConfig> {
        let mut config = SyncConfig::new(self.sync?);
        config.syncid = self.syncid;
        config.maxlen = self.sync_maxlen;
        Some(config)
    }

    /// Checks what clap cannot: the group is a multicast address.
    ///
    /// # Errors
    ///
    /// The flag and the fix.
    pub fn validate(&self) -> Result<(), String> {
        if self.sync.is_some() && !self.sync_group.is_multicast() {
            return Err(format!(
                "--sync-group {}: not a multicast address; give one in 224.0.0.0/4 (the \
                 kernel's is {SYNC_GROUP})",
                self.sync_group
            ));
        }
        Ok(())
    }

    /// `ipvsadm -L --daemon`'s line for the running daemon: `master sync daemon
    /// (mcast=eth0, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)`; empty
    /// without one.
    pub fn describe(&self, iface: &str) -> String {
        let Some(mode) = self.sync else { return String::new() };
        format!(
            "{mode} sync daemon (mcast={}, syncid={}, maxlen={}, group={}, port={}, ttl={})\n",
            self.sync_iface.as_deref().unwrap_or(iface),
            self.syncid,
            self.sync_maxlen,
            self.sync_group,
            self.sync_port,
            self.sync_ttl
        )
    }
}

/// The running daemon's sockets and receiving thread.
#[derive(Debug)]
pub struct SyncDaemon {
    send: UdpSocket,
    receive: Option<UdpSocket>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn io_error(what: &str, iface: &str, e: impl std::fmt::Display) -> String {
    format!("sync on {iface}: {what}: {e}")
}

impl SyncDaemon {
    /// Opens the sending socket (TTL, loop off, out of `iface`, connected to the group) and
    /// the receiving one (bound to the group's port, address reuse, the group joined on
    /// `iface`).
    ///
    /// # Errors
    ///
    /// What failed, naming the interface.
    pub fn open(args: &SyncArgs, iface: &str) -> Result<Self, String> {
        let group = SocketAddrV4::new(args.sync_group, args.sync_port);
        let send = rustix::net::socket(AddressFamily::INET, SocketType::DGRAM, None)
            .map_err(|e| io_error("creating the sending socket", iface, e))?;
        let index = rustix::net::netdevice::name_to_index(&send, iface)
            .map_err(|e| io_error("no such interface", iface, e))?;
        sockopt::set_ip_multicast_if_with_ifindex(
            &send,
            &args.sync_group,
            &Ipv4Addr::UNSPECIFIED,
            index,
        )
        .map_err(|e| io_error("choosing the multicast interface", iface, e))?;
        sockopt::set_ip_multicast_loop(&send, false)
            .map_err(|e| io_error("turning multicast loop off", iface, e))?;
        sockopt::set_ip_multicast_ttl(&send, u32::from(args.sync_ttl))
            .map_err(|e| io_error("setting the multicast TTL", iface, e))?;
        let send = UdpSocket::from(send);
        send.connect(group).map_err(|e| io_error("connecting to the group", iface, e))?;
        let receive = rustix::net::socket(AddressFamily::INET, SocketType::DGRAM, None)
            .map_err(|e| io_error("creating the receiving socket", iface, e))?;
        sockopt::set_socket_reuseaddr(&receive, true)
            .map_err(|e| io_error("allowing address reuse", iface, e))?;
        rustix::net::bind(&receive, &SocketAddrV4::new(args.sync_group, args.sync_port))
            .map_err(|e| io_error(&format!("binding {group}"), iface, e))?;
        sockopt::set_ip_add_membership_with_ifindex(
            &receive,
            &args.sync_group,
            &Ipv4Addr::UNSPECIFIED,
            index,
        )
        .map_err(|e| io_error(&format!("joining {}", args.sync_group), iface, e))?;
        let receive = UdpSocket::from(receive);
        receive
            .set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(|e| io_error("setting the receive timeout", iface, e))?;
        Ok(Self { send, receive: Some(receive), stop: Arc::default(), thread: None })
    }

    /// A sending socket for one worker.
    ///
    /// # Errors
    ///
    /// When the socket cannot be duplicated.
    pub fn sender(&self) -> Result<UdpSocket, String> {
        self.send.try_clone().map_err(|e| format!("sync: duplicating the sending socket: {e}"))
    }

    /// Starts the thread that hands every datagram received to every worker.
    ///
    /// # Errors
    ///
    /// When the thread cannot be started.
    pub fn start_receiving(&mut self, workers: Vec<Sender<Job>>) -> Result<(), String> {
        let Some(socket) = self.receive.take() else { return Ok(()) };
        let stop = Arc::clone(&self.stop);
        let thread = std::thread::Builder::new()
            .name("sync receive".into())
            .spawn(move || receive(&socket, &workers, &stop))
            .map_err(|e| format!("starting the sync receiver: {e}"))?;
        self.thread = Some(thread);
        Ok(())
    }
}

impl Drop for SyncDaemon {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn receive(socket: &UdpSocket, workers: &[Sender<Job>], stop: &AtomicBool) {
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        let len = match socket.recv(&mut buf) {
            Ok(len) => len,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) => {
                tracing::warn!("sync: receiving: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let datagram: Arc<[u8]> = Arc::from(&buf[..len]);
        for worker in workers {
            let datagram = Arc::clone(&datagram);
            let job: Job = Box::new(move |d, io| {
                if let Err(e) = d.import_sync(dr_core::FrameIo::now(io), &datagram) {
                    tracing::debug!("sync: a datagram dropped: {e}");
                }
            });
            let _ = worker.send(job);
        }
    }
}

/// Sends every message the director has ready; a send that fails is logged and the
/// message dropped (the kernel's master does the same with an error other than a full
/// socket buffer).
pub fn send_ready(director: &mut Director, now: dr_core::Instant, socket: &UdpSocket) {
    while let Some(message) = director.poll_sync(now) {
        if let Err(e) = socket.send(message) {
            tracing::warn!("sync: sending a message: {e}");
        }
    }
}
