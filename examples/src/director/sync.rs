//! dr-director's connection sync daemon: the UDP multicast sockets around dr-core's sans-I/O
//! sync ([`dr_core::sync`]), configured as `ipvsadm --start-daemon` is.
//!
//! - `--sync master`: every worker sends the messages its director queues
//!   ([`Director::poll_sync`]) after each batch, at most [`SEND_BATCH`] a batch and never
//!   waiting for the socket (a full socket buffer drops the message, counted in
//!   `send_drops`), to the group (224.0.0.81:8848 by default, TTL 1, multicast loop off)
//!   out of the sync interface. A bulk resync thus goes out over many batches.
//! - `--sync backup`: a receiving thread hands every datagram from the group to every
//!   worker's director ([`Director::import_sync`]) through a queue of [`RECEIVE_QUEUE`]
//!   datagrams per worker; one that finds it full is dropped for that worker and counted
//!   in `receive_drops`. Each worker holds the whole synced table, since the worker a flow
//!   will reach is chosen per packet. At start the backup sends one bulk resync request,
//!   so that a restarted backup gets the live table back.
//! - A master listens to the group as well, for the resync requests only (of its sync ID
//!   or of 0); one that comes while it answers one or within 10 s after waits, and is
//!   answered when the 10 s are over. Its answer goes between a start and an end mark
//!   naming the request's origin.
//! - `--sync both`: master and backup at once, as the kernel runs both daemons, for
//!   directors that share the traffic (ECMP): each sends its connections and imports its
//!   peers'. Give every director of one cluster the same `--syncid` (it names the cluster
//!   on the sync LAN; a backup at 0 takes every ID). A director never imports its own
//!   messages: the sending socket has multicast loop off, the receiving thread drops any
//!   datagram from the sending socket's own address and port (a bridge or a second socket
//!   could bring it back; counted as `own` in `ctl -L --daemon`), and the resync request
//!   and marks carry the director's origin (random at start), which it ignores.
//! - With backup or both, the director asks for a bulk resync at start and, until every
//!   peer that started an answer ended it (or `[director] resync_wait` passed), announces
//!   no VIP: a restarted director has the live table back before routers send it flows.

use dr_core::sync::wire::{DEFAULT_MAXLEN, MAX_MAXLEN, SYNC_GROUP, SYNC_PORT};
use dr_core::{Director, SyncConfig, SyncMode};
use rustix::net::{AddressFamily, SocketType, sockopt};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

/// The most sync messages a worker sends after one batch.
pub const SEND_BATCH: usize = 64;
/// The sync datagrams waiting for each worker, at most.
pub const RECEIVE_QUEUE: usize = 256;

/// The command-line flags of the sync daemon, as `ipvsadm --start-daemon` names them.
#[derive(Clone, Debug, clap::Args)]
pub struct SyncArgs {
    /// Run the connection sync daemon, wire-compatible with the kernel's: master (send
    /// this director's connections), backup (import a master's), or both (send its own and
    /// import its peers', for directors sharing the traffic behind ECMP; give them all the
    /// same --syncid). backup and both ask for a bulk resync at start and announce no VIP
    /// until it ended (at most --sync-resync-wait, or the resync_wait of the file's
    /// director table).
    #[arg(long, value_name = "master|backup|both", value_parser = parse_mode)]
    pub sync: Option<SyncMode>,
    /// The interface the sync messages go out of and come in on (default: --iface).
    #[arg(long, value_name = "IF", requires = "sync")]
    pub sync_iface: Option<String>,
    /// The sync ID sent, and the one a backup takes (0 there: every ID); with both, the
    /// same on every director of the cluster.
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
    /// With backup or both: the most seconds to wait for the bulk resync before announcing
    /// (0 to 3600; default the configuration file's `[director] resync_wait`, 15 s
    /// without one). 0 with kernel masters only, which do not answer.
    #[arg(long, value_name = "SECS", requires = "sync",
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub sync_resync_wait: Option<u64>,
}

fn parse_mode(text: &str) -> Result<SyncMode, String> {
    match text {
        "master" => Ok(SyncMode::Master),
        "backup" => Ok(SyncMode::Backup),
        "both" => Ok(SyncMode::Both),
        other => Err(format!("{other:?} is not a sync mode: give master, backup or both")),
    }
}

impl SyncArgs {
    /// The core's settings these flags give, with this director's `origin` (see
    /// [`origin`]) and `[director] resync_wait`.
    pub fn config(&self, origin: u32, resync_wait: Duration) -> Option<SyncConfig> {
        let mut config = SyncConfig::new(self.sync?);
        config.syncid = self.syncid;
        config.maxlen = self.sync_maxlen;
        config.origin = origin;
        config.resync_wait = resync_wait;
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
    /// (mcast=eth0, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)`; with both,
    /// a master and a backup line, as ipvsadm lists the kernel's two daemons; empty
    /// without one.
    pub fn describe(&self, iface: &str) -> String {
        let Some(mode) = self.sync else { return String::new() };
        let modes: &[SyncMode] = match mode {
            SyncMode::Both => &[SyncMode::Master, SyncMode::Backup],
            _ => &[mode],
        };
        modes
            .iter()
            .map(|mode| {
                format!(
                    "{mode} sync daemon (mcast={}, syncid={}, maxlen={}, group={}, port={}, \
                     ttl={})\n",
                    self.sync_iface.as_deref().unwrap_or(iface),
                    self.syncid,
                    self.sync_maxlen,
                    self.sync_group,
                    self.sync_port,
                    self.sync_ttl
                )
            })
            .collect()
    }
}

/// A random origin for this director's resync messages (never 0), so that it tells its
/// own from its peers'.
pub fn origin() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    let value = hasher.finish();
    ((value >> 32) as u32 ^ value as u32).max(1)
}

/// Whether a datagram from `from` is this director's own: sent by its sending socket,
/// whose address is `own` (a multicast loop, a bridge, or a second socket brought it back).
pub fn is_own(from: std::net::SocketAddr, own: Option<std::net::SocketAddr>) -> bool {
    own.is_some_and(|own| own == from)
}

/// `ctl -L --daemon`'s line of the resync (backup or both): `resync done in 12 ms: 2 of
/// 2 peers ended, 48 records announced, 48 imported; 0 own messages dropped`.
pub fn describe_resync(status: Option<&dr_core::sync::ResyncStatus>, own: u64) -> String {
    match status {
        Some(s) if s.phase != dr_core::sync::ResyncPhase::Idle => {
            format!("{s}; {own} own messages dropped\n")
        }
        _ => format!("{own} own messages dropped\n"),
    }
}

impl SyncArgs {
    /// How long to wait for the bulk resync at most: `--sync-resync-wait`, else `file`'s.
    pub fn resync_wait(&self, file: Duration) -> Duration {
        self.sync_resync_wait.map_or(file, Duration::from_secs)
    }

    /// Whether this daemon asks for a bulk resync at start and waits for it.
    pub fn resyncs(&self) -> bool {
        self.sync.is_some_and(|m| m.is_backup())
    }
}

/// The running daemon's sockets and receiving thread.
#[derive(Debug)]
pub struct SyncDaemon {
    send: UdpSocket,
    /// Datagrams from the sending socket's own address and port, dropped.
    own: Arc<AtomicU64>,
    receive: Option<UdpSocket>,
    /// Where the receiving thread hands each worker the datagrams.
    outlets: Vec<Outlet>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The receiving thread's end of one worker's queue.
#[derive(Debug)]
struct Outlet {
    queue: SyncSender<Arc<[u8]>>,
    drops: Arc<AtomicU64>,
}

impl Outlet {
    /// Queues a datagram for the worker, or counts it dropped when its queue is full.
    fn offer(&self, datagram: &Arc<[u8]>) {
        match self.queue.try_send(Arc::clone(datagram)) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => {
                self.drops.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// A worker's end of its queue of received sync datagrams.
#[derive(Debug)]
pub struct Inbox {
    queue: Receiver<Arc<[u8]>>,
    drops: Arc<AtomicU64>,
}

/// A bounded queue of `capacity` datagrams between the receiving thread and a worker.
fn queue(capacity: usize) -> (Outlet, Inbox) {
    let (tx, rx) = sync_channel(capacity);
    let drops = Arc::new(AtomicU64::new(0));
    (Outlet { queue: tx, drops: Arc::clone(&drops) }, Inbox { queue: rx, drops })
}

impl Inbox {
    /// Imports what is queued (at most [`RECEIVE_QUEUE`] datagrams) and counts the drops
    /// since the last call in the director's sync counters.
    pub fn import(&self, director: &mut Director, now: dr_core::Instant) {
        let drops = self.drops.swap(0, Ordering::Relaxed);
        if drops > 0 {
            director.count_sync_receive_drops(drops);
        }
        for _ in 0..RECEIVE_QUEUE {
            let Ok(datagram) = self.queue.try_recv() else { break };
            if let Err(e) = director.import_sync(now, &datagram) {
                tracing::debug!("sync: a datagram dropped: {e}");
            }
        }
    }
}

/// What a worker needs of the sync daemon: its sending socket and its queue of datagrams
/// received.
#[derive(Debug)]
pub struct WorkerSync {
    /// The sending socket (non-blocking).
    pub socket: UdpSocket,
    /// The datagrams received for this worker.
    pub inbox: Inbox,
}

impl WorkerSync {
    /// One turn: imports what was received, then sends what is ready.
    pub fn step(&self, director: &mut Director, now: dr_core::Instant) {
        self.inbox.import(director, now);
        send_ready(director, now, &self.socket);
    }
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
        // A worker never waits for the socket: a full buffer drops the message.
        send.set_nonblocking(true)
            .map_err(|e| io_error("making the sending socket non-blocking", iface, e))?;
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
        Ok(Self {
            send,
            own: Arc::default(),
            receive: Some(receive),
            outlets: Vec::new(),
            stop: Arc::default(),
            thread: None,
        })
    }

    /// A sending socket and a queue of received datagrams for one more worker; call once
    /// per worker before [`start_receiving`](Self::start_receiving).
    ///
    /// # Errors
    ///
    /// When the socket cannot be duplicated.
    pub fn worker(&mut self) -> Result<WorkerSync, String> {
        let socket = self
            .send
            .try_clone()
            .map_err(|e| format!("sync: duplicating the sending socket: {e}"))?;
        let (outlet, inbox) = queue(RECEIVE_QUEUE);
        self.outlets.push(outlet);
        Ok(WorkerSync { socket, inbox })
    }

    /// Starts the thread that hands every datagram received to every worker's queue.
    ///
    /// # Errors
    ///
    /// When the thread cannot be started.
    pub fn start_receiving(&mut self) -> Result<(), String> {
        let Some(socket) = self.receive.take() else { return Ok(()) };
        let stop = Arc::clone(&self.stop);
        let outlets = std::mem::take(&mut self.outlets);
        let own = (self.send.local_addr().ok(), Arc::clone(&self.own));
        let thread = std::thread::Builder::new()
            .name("sync receive".into())
            .spawn(move || receive(&socket, &outlets, &stop, &own))
            .map_err(|e| format!("starting the sync receiver: {e}"))?;
        self.thread = Some(thread);
        Ok(())
    }
}

impl SyncDaemon {
    /// How many of its own datagrams came back and were dropped.
    pub fn own_dropped(&self) -> u64 {
        self.own.load(Ordering::Relaxed)
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

fn receive(
    socket: &UdpSocket,
    workers: &[Outlet],
    stop: &AtomicBool,
    (own, own_dropped): &(Option<std::net::SocketAddr>, Arc<AtomicU64>),
) {
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        let len = match socket.recv_from(&mut buf) {
            Ok((_, from)) if is_own(from, *own) => {
                own_dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Ok((len, _)) => len,
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
            worker.offer(&datagram);
        }
    }
}

/// Sends the messages the director has ready, at most [`SEND_BATCH`], without waiting: a
/// message the socket buffer has no room for is dropped and counted in the director's
/// `send_drops` (the kernel's master would wait; a worker has packets to forward); one
/// that fails otherwise is logged and dropped, as the kernel's master does.
pub fn send_ready(director: &mut Director, now: dr_core::Instant, socket: &UdpSocket) {
    send_with(director, now, |message| socket.send(message));
}

/// [`send_ready`] with the sending given.
fn send_with(
    director: &mut Director,
    now: dr_core::Instant,
    mut send: impl FnMut(&[u8]) -> std::io::Result<usize>,
) {
    let mut would_block = 0;
    for _ in 0..SEND_BATCH {
        let Some(message) = director.poll_sync(now) else { break };
        match send(message) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => would_block += 1,
            Err(e) => tracing::warn!("sync: sending a message: {e}"),
        }
    }
    if would_block > 0 {
        director.count_sync_send_drops(would_block);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dr_core::Instant;

    /// A master with `ready` resync-request messages waiting (one message each).
    fn master_with(ready: usize) -> Director {
        let mac = dr_core::MacAddr([2, 0, 0, 0, 0, 1]);
        let mut d = Director::new(dr_core::Config::new(mac, [1, 2, 3, 4])).unwrap();
        let mut config = SyncConfig::new(SyncMode::Master);
        config.queue = 256;
        d.start_sync(config).unwrap();
        for _ in 0..ready {
            d.request_resync(Instant::from_millis(0));
        }
        d
    }

    #[test]
    fn a_turn_sends_at_most_a_batch_and_a_full_socket_buffer_drops_and_counts() {
        let mut d = master_with(100);
        let now = Instant::from_millis(0);
        let mut sent = 0;
        send_with(&mut d, now, |m| {
            sent += 1;
            Ok(m.len())
        });
        assert_eq!(sent, SEND_BATCH);
        // The socket buffer is full: the rest is dropped, counted, and the worker goes on.
        send_with(&mut d, now, |_| Err(std::io::ErrorKind::WouldBlock.into()));
        assert_eq!(d.sync_counters().send_drops, (100 - SEND_BATCH) as u64);
        assert!(d.poll_sync(now).is_none());
    }

    #[test]
    fn both_is_a_mode_listed_as_the_kernels_two_daemons() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            sync: SyncArgs,
        }
        let cli = Cli::try_parse_from(["x", "--sync", "both", "--syncid", "7"]).unwrap();
        assert_eq!(cli.sync.sync, Some(SyncMode::Both));
        assert!(cli.sync.resyncs());
        assert_eq!(
            cli.sync.describe("eth0"),
            "master sync daemon (mcast=eth0, syncid=7, maxlen=1472, group=224.0.0.81, \
             port=8848, ttl=1)\nbackup sync daemon (mcast=eth0, syncid=7, maxlen=1472, \
             group=224.0.0.81, port=8848, ttl=1)\n"
        );
        let config = cli.sync.config(9, Duration::from_secs(4)).unwrap();
        assert_eq!((config.origin, config.resync_wait), (9, Duration::from_secs(4)));
        // The file's resync_wait, unless --sync-resync-wait says otherwise (0 to 3600).
        assert_eq!(cli.sync.resync_wait(Duration::from_secs(15)), Duration::from_secs(15));
        let zero = Cli::try_parse_from(["x", "--sync", "backup", "--sync-resync-wait", "0"]);
        assert_eq!(zero.unwrap().sync.resync_wait(Duration::from_secs(15)), Duration::ZERO);
        for bad in [
            &["x", "--sync-resync-wait", "3"][..],
            &["x", "--sync", "both", "--sync-resync-wait", "3601"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
        let err = Cli::try_parse_from(["x", "--sync", "all"]).err().unwrap().to_string();
        assert!(err.contains("give master, backup or both"), "{err}");
        let master = Cli::try_parse_from(["x", "--sync", "master"]).unwrap();
        assert!(!master.sync.resyncs());
    }

    #[test]
    fn a_datagram_from_the_sending_sockets_own_address_and_port_is_its_own() {
        let own: std::net::SocketAddr = "10.0.0.2:40000".parse().unwrap();
        assert!(is_own(own, Some(own)));
        // Another director on the same host (another port), or another host: a peer.
        assert!(!is_own("10.0.0.2:40001".parse().unwrap(), Some(own)));
        assert!(!is_own("10.0.0.3:40000".parse().unwrap(), Some(own)));
        assert!(!is_own(own, None));
        assert_ne!(origin(), 0);
    }

    #[test]
    fn the_receiving_thread_drops_what_its_own_sending_socket_sent_and_counts_it() {
        // Real sockets on the loopback: the director's sending socket, a peer's, and the
        // receiving one both send to.
        let receiving = UdpSocket::bind("127.0.0.1:0").unwrap();
        receiving.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let to = receiving.local_addr().unwrap();
        let own = UdpSocket::bind("127.0.0.1:0").unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (outlet, inbox) = queue(16);
        let stop = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicU64::new(0));
        let state = (Some(own.local_addr().unwrap()), Arc::clone(&dropped));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || receive(&receiving, &[outlet], &stop, &state))
        };
        own.send_to(b"mine", to).unwrap();
        peer.send_to(b"theirs", to).unwrap();
        own.send_to(b"mine again", to).unwrap();
        let got = inbox.queue.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(&got[..], b"theirs");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while dropped.load(Ordering::Relaxed) < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        stop.store(true, Ordering::Relaxed);
        thread.join().unwrap();
        assert_eq!(dropped.load(Ordering::Relaxed), 2);
        assert!(inbox.queue.try_recv().is_err(), "only the peer's datagram reached the worker");
    }

    #[test]
    fn the_resync_line_tells_where_it_stands() {
        let mut d = master_with(0);
        let mut config = SyncConfig::new(SyncMode::Both);
        config.resync_wait = Duration::from_secs(2);
        d.start_sync(config).unwrap();
        assert_eq!(
            describe_resync(d.resync_status(Instant::from_millis(0)).as_ref(), 0),
            "0 own messages dropped\n"
        );
        d.request_resync(Instant::from_millis(0));
        assert_eq!(
            describe_resync(d.resync_status(Instant::from_millis(1)).as_ref(), 3),
            "resync waiting: 0 of 0 peers ended, 0 records announced, 0 imported; 3 own \
             messages dropped\n"
        );
        assert_eq!(
            describe_resync(d.resync_status(Instant::from_millis(2000)).as_ref(), 3),
            "resync timed-out in 2000 ms: 0 of 0 peers ended, 0 records announced, 0 \
             imported; 3 own messages dropped\n"
        );
    }

    #[test]
    fn a_full_receive_queue_drops_and_the_worker_counts_it() {
        let (outlet, inbox) = queue(2);
        let datagram: Arc<[u8]> = Arc::from(&[0u8; 8][..]);
        for _ in 0..5 {
            outlet.offer(&datagram);
        }
        let mut d = master_with(0);
        inbox.import(&mut d, Instant::from_millis(0));
        let c = d.sync_counters();
        assert_eq!((c.messages_received, c.receive_drops), (2, 3));
        assert!(c.fields().contains(&("receive_drops", 3)));
    }
}
