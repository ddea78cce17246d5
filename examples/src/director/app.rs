//! `dr-director --iface IF --config CONFIG.toml` (or `--rules RULES --neigh IP=MAC…`, or
//! `--keepalived /etc/keepalived/keepalived.conf`): an LVS Direct Routing director on a
//! live interface. `dr-director --check-config` with any of the three loads it, prints the
//! `ipvsadm -L -n` listing of what would run, and exits.
//!
//! It owns the VIPs at layer 2 (answers ARP and Neighbor Solicitations, announces them at
//! start), learns the real servers' MACs from the answers to its own ARP requests and
//! Neighbor Solicitations (never from gratuitous ARP or unsolicited advertisements) unless
//! the configuration gives them, and forwards every connection to its real server by
//! rewriting only the MAC addresses, on an `AF_PACKET` ring (the default) or, with
//! `--backend afxdp`, on `AF_XDP` sockets fed by an XDP program that redirects only the
//! director's traffic (the VIPs', their ARP and ND) and leaves the rest to the host.
//!
//! Every real server is health checked off the packet path (`[service.health]`; by
//! default a TCP connect to its address and the service port every second, down after 3
//! failures, up after 2 successes): a server that goes down is quiesced (weight 0, its
//! connections continue) and gets its weight back when it recovers; each change is logged.
//! From a keepalived configuration the checks are its checkers, with keepalived's rules: a
//! failing real server is removed (with `inhibit_on_failure`, set to weight 0), `alpha`
//! starts it down, and below `quorum` the `sorry_server` replaces the real servers.
//!
//! A control socket (`--control`, default `/run/dr-director.sock`, mode 0600) takes ipvsadm
//! command lines: `dr-director ctl -L -n` (or `--stats`, `--rate`, `--thresholds`,
//! `--persistent-conn`, `-c`, `--timeout`, `--json`; `-t VIP:PORT` for one service,
//! `--exact`, `--nosort`), `ctl -A/-E/-D …`, `ctl -a/-e/-d …`, `ctl -C`, `ctl --set …`,
//! `ctl -Z`, `ctl -S -n` (the rules of the running services), `ctl -R < RULES`.
//! `dr-director ctl watch --exabgp` runs as long as it is left to, printing for ExaBGP's
//! process API which VIPs to announce (`announce route VIP/32 next-hop self`) and withdraw:
//! a VIP is announced when every service on it has its `quorum` of healthy real servers,
//! after `[director] announce_delay` from start, and withdrawn when not, or when the
//! director stops (see [`routes`]).
//! `--metrics ADDR` serves the counters, and each real server's health (`dr_real_up`), to
//! Prometheus at `http://ADDR/metrics` (off by default; the names are in
//! `dr_examples::metrics`).
//!
//! `--workers N` runs N threads. On `AF_XDP` each has the socket of one receive queue, and
//! N must be the interface's number of queues (the NIC's receive-side scaling keeps a flow
//! on one queue). On `AF_PACKET` each has its own ring in a `PACKET_FANOUT` group (the
//! worker is chosen from the packet's IP addresses alone, so every packet of a client, each
//! fragment of a datagram too, reaches the same worker, and nothing is reassembled) and its own
//! director and connection table. Control commands, reloads and health changes apply to all
//! of them; a listing is one listing of them all, their counts added up (`--per-worker`
//! lists each apart); metrics carry a `worker` label (health aside, which is the
//! director's); MACs learned by one are given to all. What changes: each worker schedules
//! its own share of the new connections, so rr and wrr follow their sequence per worker,
//! not across the whole director, and lc/wlc/sed/nq compare the counts of that worker's
//! connections only. Over many connections the proportions are the same; connection by
//! connection they are not.
//!
//! `--ring frames` (the default) hands each frame to the director the moment the kernel has
//! written it (TPACKET_V2); `--ring blocks --block-timeout MS` hands over a block of frames
//! at a time, when it is full or MS after it opened (TPACKET_V3), and a lone frame waits that
//! long. `--busy-poll USEC` spins on the ring that long before sleeping; `--frame-size BYTES`
//! sizes the TPACKET_V2 slots. BENCHMARKS.md has what each costs.
//!
//! Signals: SIGINT and SIGTERM stop it cleanly, printing the `--stats` listing; SIGUSR1
//! prints the listing and the counters while it runs; SIGHUP reads the configuration again
//! and applies only the difference, as `ipvsadm -A/-E/-D/-a/-e/-d` would: connections of
//! what stays survive. A file that does not load is reported and changes nothing.

use crate::backend::{self, Backend, Io, RingOptions};
use crate::config::{LoadOptions, Loaded, load_all};
use crate::control::{self, ControlSocket};
use crate::health::{self, HealthCheck};
use crate::metrics::{self, MetricsEndpoint};
use crate::routes::{self, Announcer};
use crate::sync::{SyncArgs, SyncDaemon};
use crate::workers::Workers;
use crate::{preflight, reload, report, rules};
use clap::Parser;
use dr_core::ServiceKey;
use dr_core::{Config, Director, DriverOptions, FrameIo};
use dr_io_afpacket::RxRing;
use std::collections::HashMap;
use std::collections::HashSet;
use std::net::IpAddr;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing::{error, info, warn};

use super::checks::{Health, Held, HoldDown, hold_down, publish_macs, share_macs};
use super::keepalived::Checkers;
use crate::keepalived::{BuildOptions, Plan, Pool};

/// A live LVS Direct Routing director.
#[derive(Debug, Parser)]
#[command(name = "dr-director", version)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
#[command(disable_help_subcommand = true)]
#[command(group(
    clap::ArgGroup::new("services").required(true).args(["config", "rules", "keepalived"])
))]
struct Args {
    #[command(subcommand)]
    command: Option<Subcommand>,
    /// The interface to own the VIPs on and forward through.
    #[arg(long, value_name = "IF", required_unless_present = "check_config")]
    iface: Option<String>,
    /// The configuration (see examples/director.toml).
    #[arg(long, value_name = "CONFIG.toml")]
    config: Option<PathBuf>,
    /// Rules instead of a configuration file: ipvsadm command lines, as `ipvsadm-save`
    /// writes them or an rc script runs them (`/sbin/ipvsadm -A -t VIP:80 -s rr`).
    #[arg(long, value_name = "FILE")]
    rules: Option<PathBuf>,
    /// keepalived's configuration instead (/etc/keepalived/keepalived.conf): its DR
    /// virtual servers, real servers and checkers.
    #[arg(long, value_name = "FILE")]
    keepalived: Option<PathBuf>,
    /// With --keepalived: the config id its `@ID` / `@^ID` lines and `${_INSTANCE}` are
    /// compared with, as keepalived's `-i` / `--config-id` (default: the host name up to its
    /// first dot, as keepalived's).
    #[arg(long, value_name = "ID", requires = "keepalived")]
    keepalived_config_id: Option<String>,
    /// A real server's MAC, for rules or keepalived.conf (otherwise asked for by ARP / ND);
    /// repeatable.
    #[arg(long, value_name = "IP=MAC", value_parser = rules::parse_neighbour)]
    neigh: Vec<(IpAddr, dr_core::MacAddr)>,
    /// Load the configuration (--config, --rules or --keepalived), print the `ipvsadm -L -n`
    /// listing of what would run, and exit: 0 when it loads, 1 when it does not.
    #[arg(long)]
    check_config: bool,
    /// Skip the host checks (a VIP held by the host, IPv4 forwarding on the interface).
    #[arg(long)]
    no_preflight: bool,
    /// The control socket `dr-director ctl` talks to.
    #[arg(long, value_name = "PATH", default_value = control::DEFAULT_SOCKET)]
    control: PathBuf,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9813); off by default.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Worker threads, each with its own ring in a fanout group and its own connection
    /// table; a flow always reaches the same worker.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    workers: u16,
    /// How the receive ring hands frames over: `frames` (TPACKET_V2: each frame the moment
    /// it arrives) or `blocks` (TPACKET_V3: a block of frames when it is full or
    /// --block-timeout after it opened; at low rates each frame waits that long).
    #[arg(long, value_enum, default_value_t = Ring::Frames)]
    ring: Ring,
    /// With --ring blocks: how long a block may wait half full, in milliseconds (1 to 1000;
    /// default 1).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u32).range(1..=1000))]
    block_timeout: Option<u32>,
    /// With --ring frames: the bytes of a frame's slot in the ring, its header included (a
    /// multiple of 16, 2048 to 1048576; default 2048). A frame longer than its slot (an
    /// offloaded segment of up to 64 KiB) is read whole from the socket, one more copy;
    /// 69632 fits such segments in the ring, at 15 slots per MiB of ring instead of 512.
    #[arg(long, value_name = "BYTES",
          value_parser = clap::value_parser!(u32).range(2048..=1_048_576))]
    frame_size: Option<u32>,
    /// Microseconds each worker checks its ring for the next frame before it sleeps (0 to
    /// 1000; 0 sleeps at once), on either backend. Saves the wakeup on a frame that comes
    /// within the time, and spends the time's CPU when none does: for a director with a
    /// CPU of its own.
    #[arg(long, value_name = "USEC", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=1000))]
    busy_poll: u32,
    /// The backend: afpacket (any interface) or afxdp (an XDP program and AF_XDP sockets,
    /// one worker per receive queue; zero-copy where the driver supports it).
    #[arg(long, value_enum, default_value_t = Backend::Afpacket)]
    backend: Backend,
    /// Connection sync, as `ipvsadm --start-daemon`.
    #[command(flatten)]
    sync: SyncArgs,
    /// Log level: error, warn, info, debug or trace (or a tracing filter).
    #[arg(long, default_value = "info", env = "DR_LOG")]
    log: String,
}

/// `--ring`: how the kernel hands received frames over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Ring {
    /// TPACKET_V2: every frame as it arrives.
    Frames,
    /// TPACKET_V3: a block of frames at a time.
    Blocks,
}

impl Args {
    /// The receive ring the options ask for.
    fn rx_ring(&self) -> Result<RingOptions, String> {
        let ring_options =
            self.ring == Ring::Blocks || self.block_timeout.is_some() || self.frame_size.is_some();
        if self.backend != Backend::Afpacket && ring_options {
            return Err("--ring, --block-timeout and --frame-size apply to --backend afpacket \
                        only (AF_XDP has no ring of that kind)"
                .into());
        }
        match (self.ring, self.frame_size) {
            (Ring::Blocks, Some(_)) => {
                return Err("--frame-size applies to --ring frames only (blocks hold frames of \
                            any size)"
                    .into());
            }
            (Ring::Frames, Some(size)) if size % 16 != 0 => {
                return Err(format!("--frame-size {size}: not a multiple of 16"));
            }
            _ => {}
        }
        let ring = match (self.ring, self.block_timeout) {
            (Ring::Blocks, timeout) => RxRing::Blocks { timeout_ms: timeout.unwrap_or(1) },
            (Ring::Frames, None) => RxRing::Frames,
            (Ring::Frames, Some(_)) => {
                return Err("--block-timeout applies to --ring blocks only (frames never wait \
                            for a block)"
                    .into());
            }
        };
        Ok(RingOptions { ring, frame_size: self.frame_size, busy_poll_us: self.busy_poll })
    }
}

/// What else dr-director does.
#[derive(Debug, clap::Subcommand)]
enum Subcommand {
    /// Send an ipvsadm command to a running dr-director: ctl -L -n, ctl -a -t VIP:PORT -r IP …;
    /// or `ctl watch [--exabgp]`: print the VIPs to announce and withdraw, as they change.
    Ctl(CtlArgs),
}

/// `dr-director ctl [--socket PATH] IPVSADM-ARGS…`: one command to a running director.
#[derive(Debug, clap::Args)]
struct CtlArgs {
    /// The director's control socket.
    #[arg(long, value_name = "PATH", default_value = control::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// The command, as ipvsadm takes it: -L -n, -A -t VIP:PORT -s wrr, -a … -r IP -w 2, -Z …;
    /// or watch [--exabgp], which runs until stopped, printing the VIPs to announce
    #[arg(
        value_name = "IPVSADM-ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true
    )]
    command: Vec<String>,
}

fn ctl(args: &CtlArgs) -> ExitCode {
    if args.command.first().is_some_and(|c| c == "watch") {
        let format = match routes::parse_args(&args.command[1..]) {
            Ok(format) => format,
            Err(message) => {
                eprintln!("dr-director ctl: {message}");
                return ExitCode::FAILURE;
            }
        };
        let e = routes::watch(&args.socket, format, &mut std::io::stdout().lock());
        eprintln!("dr-director ctl watch: writing the routes: {e}");
        return ExitCode::FAILURE;
    }
    match control::command(&args.socket, &args.command.join(" "), std::io::stdin()) {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("dr-director ctl: {message}");
            ExitCode::FAILURE
        }
    }
}

/// dr-director's `main`.
pub fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Subcommand::Ctl(ctl_args)) = &args.command {
        return ctl(ctl_args);
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
    if args.check_config {
        return check_config(&args);
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            // Once, on standard error with the rest of the log.
            error!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// A fresh hash seed: colliding flows cannot be worked out in advance.
fn seed() -> Result<[u64; 4], String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| format!("reading randomness for the hash seed: {e}"))?;
    Ok(std::array::from_fn(|i| {
        u64::from_ne_bytes(bytes[8 * i..8 * i + 8].try_into().unwrap_or_default())
    }))
}

/// `--check-config`: the configuration loaded, its warnings on standard error and the
/// listing of what would run on standard output.
fn check_config(args: &Args) -> ExitCode {
    // No interface is opened: the MAC only has to be a valid one.
    let mac = dr_core::MacAddr([0x02, 0, 0, 0, 0, 0]);
    match director(args, mac, false, None, true) {
        Ok((loaded, _)) => {
            print!("{}", loaded.director.listing(dr_core::ListingFormat::Plain));
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("dr-director: {message}");
            ExitCode::FAILURE
        }
    }
}

/// What a reload gives: the health checks by the running directors' handles, the weights
/// held for servers that are down, and a keepalived configuration's plan and states.
type Reloaded = (Checks, Held, Option<Keepalived>, Quorum);

/// A keepalived configuration and its checkers' states.
struct Keepalived {
    plan: Arc<Plan>,
    pool: Pool,
}

/// The director a keepalived configuration describes, with the table its checkers' states
/// (`before`'s, for those that stay, on a reload) give; its warnings are logged.
fn keepalived_director(
    args: &Args,
    path: &std::path::Path,
    config: Config,
    small: bool,
    before: Option<&Pool>,
    warnings: &mut Vec<String>,
) -> Result<(Loaded, Option<Keepalived>), String> {
    let id = args.keepalived_config_id.clone().or_else(crate::keepalived::default_config_id);
    let plan = crate::keepalived::read_as(&crate::keepalived::Disk, path, id)
        .map_err(|e| e.to_string())?;
    warnings.extend(plan.warnings.iter().map(ToString::to_string));
    let options = BuildOptions {
        config,
        neighbours: args.neigh.iter().copied().collect(),
        require_real_macs: false,
    };
    let pool = match before {
        Some(before) => Pool::carried(&plan, before),
        None => Pool::new(&plan),
    };
    let config = plan.config(&options);
    let mut built = config.clone();
    if small {
        built.capacity = 1;
        built.fragment_capacity = 0;
    }
    let director = plan.build(&pool, &options, built).map_err(|e| e.to_string())?;
    let loaded = Loaded {
        director,
        health: Vec::new(),
        routes: Default::default(),
        config,
        warnings: Vec::new(),
    };
    Ok((loaded, Some(Keepalived { plan: Arc::new(plan), pool })))
}

/// The director the configuration describes; with `small`, built with the smallest tables
/// (to compare with a running one on reload), the file's own values in [`Loaded::config`].
/// From a keepalived configuration, its plan and checkers' states too. With `say`, the
/// file's warnings are logged, a scheduler flag that a service's scheduler ignores
/// included, whichever file gave it (once: not again for each further worker).
fn director(
    args: &Args,
    mac: dr_core::MacAddr,
    small: bool,
    before: Option<&Pool>,
    say: bool,
) -> Result<(Loaded, Option<Keepalived>), String> {
    let mut warnings = Vec::new();
    let loaded = load_director(args, mac, small, before, &mut warnings)?;
    if say {
        warnings.extend(crate::flags::ignored_flags(&loaded.0.director));
        for warning in warnings {
            warn!("{warning}");
        }
    }
    Ok(loaded)
}

/// [`director`], its file's warnings put in `warnings`.
fn load_director(
    args: &Args,
    mac: dr_core::MacAddr,
    small: bool,
    before: Option<&Pool>,
    warnings: &mut Vec<String>,
) -> Result<(Loaded, Option<Keepalived>), String> {
    let read = |path: &PathBuf| {
        std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
    };
    let hash_seed = seed()?;
    if let Some(path) = &args.keepalived {
        return keepalived_director(
            args,
            path,
            Config::new(mac, hash_seed),
            small,
            before,
            warnings,
        );
    }
    if let Some(path) = &args.config {
        let options = LoadOptions {
            hash_seed,
            require_real_macs: false,
            default_mac: Some(mac),
            default_capacity: None,
        };
        let load = if small { crate::config::load_small } else { load_all };
        let loaded = load(&read(path)?, options).map_err(|e| format!("{}: {e}", path.display()))?;
        warnings.extend(loaded.warnings.iter().map(|w| format!("{}: {w}", path.display())));
        return Ok((loaded, None));
    }
    let Some(path) = &args.rules else {
        return Err("give --config FILE, --rules FILE or --keepalived FILE".into());
    };
    let config = Config::new(mac, hash_seed);
    let mut built = config.clone();
    if small {
        built.capacity = 1;
        built.fragment_capacity = 0;
    }
    let options = rules::RulesOptions {
        config: built,
        neighbours: args.neigh.iter().copied().collect::<HashMap<_, _>>(),
        require_real_macs: false,
    };
    let director =
        rules::load(&read(path)?, &options).map_err(|e| format!("{}: {e}", path.display()))?;
    let health = director
        .services()
        .map(|(id, s)| (id, HealthCheck::for_protocol(s.key().protocol)))
        .collect();
    let loaded =
        Loaded { director, health, routes: Default::default(), config, warnings: Vec::new() };
    Ok((loaded, None))
}

/// After services changed: the filter lets the VIPs' traffic in, and every VIP is announced
/// again (gratuitous ARP, unsolicited NA), so new ones reach neighbours' caches at once.
fn follow_vips(director: &Director, io: &mut Io) -> Result<(), String> {
    let vips: Vec<_> = director.vips().collect();
    io.set_vips(&vips)?;
    let now = io.now();
    for frame in director.announcements() {
        if let Err(e) = io.send(now, &frame) {
            warn!("announcing the VIPs: {e}");
        }
    }
    Ok(())
}

/// The checks of every service: those known, the defaults for the others.
fn with_default_checks(
    director: &Director,
    known: &[(dr_core::ServiceId, HealthCheck)],
) -> Vec<(dr_core::ServiceId, HealthCheck)> {
    director
        .services()
        .map(|(id, service)| {
            let check = known.iter().find(|(k, _)| *k == id).map(|(_, c)| c.clone());
            (id, check.unwrap_or_else(|| HealthCheck::for_protocol(service.key().protocol)))
        })
        .collect()
}

/// SIGHUP: the configuration again, checked once, then only the difference applied by each
/// worker to its director. Returns the health checks, by the running directors' handles.
fn reload(
    args: &Args,
    workers: &Workers,
    mac: dr_core::MacAddr,
    undone: &[String],
    down: &HashSet<(ServiceKey, IpAddr)>,
    before: Option<&Pool>,
) -> Result<Reloaded, String> {
    // One small director for every worker to compare itself with: no second table.
    let (Loaded { director: wanted, health, routes, config, .. }, keepalived) =
        director(args, mac, true, before, true)?;
    let quorum = quorum_by_key(&wanted, &routes);
    let checks: Vec<(ServiceKey, HealthCheck)> = health
        .iter()
        .filter_map(|(id, check)| Some((wanted.service(*id)?.key(), check.clone())))
        .collect();
    let wanted = Arc::new((wanted, config));
    let down = Arc::new(down.clone());
    let results = workers.each(move |_, running, io| {
        let (wanted, config) = &*wanted;
        let changes = reload::apply(running, wanted, config).map_err(|e| e.to_string())?;
        // In the same step: the servers down stay at 0, whatever weight the file gives.
        let held = hold_down(running, &down, Some(wanted));
        follow_vips(running, io)?;
        let handles: Vec<_> = checks
            .iter()
            .filter_map(|(key, check)| Some((running.find_service(key)?, check.clone())))
            .collect();
        Ok::<_, String>((changes, handles, held))
    });
    let mut health = Vec::new();
    let mut held_first = Vec::new();
    for (i, result) in results.into_iter().enumerate() {
        let (changes, handles, held) = result.ok_or(format!("worker {i} did not answer"))??;
        if i == 0 {
            held_first = held;
        }
        if i == 0 {
            for line in undone {
                info!("reload: the file replaces what this control command changed: {line}");
            }
            for change in &changes {
                info!("reload: {change}");
            }
            info!(changes = changes.len(), "configuration reloaded");
            health = handles;
        }
    }
    Ok((health, held_first, keepalived, quorum))
}

/// Each service's health check, by the running directors' handles.
type Checks = Vec<(dr_core::ServiceId, HealthCheck)>;

/// Each service's quorum, by its key (what stays the same across reloads).
type Quorum = HashMap<ServiceKey, u32>;

fn quorum_by_key(director: &Director, routes: &crate::config::RouteSettings) -> Quorum {
    routes.quorum.iter().filter_map(|(id, n)| Some((director.service(*id)?.key(), *n))).collect()
}

/// The changes of the VIPs to announce, by the first worker's director (all are alike)
/// and the servers down; each is logged.
fn announcements(
    workers: &Workers,
    announcer: &mut Announcer,
    down: &HashSet<(ServiceKey, IpAddr)>,
    quorum: &Quorum,
) -> Vec<routes::Change> {
    let (down, quorum) = (Arc::new(down.clone()), Arc::new(quorum.clone()));
    let wanted = workers.each(move |_, d, _| routes::wanted(d, &down, &quorum));
    let Some(Some(wanted)) = wanted.into_iter().next() else { return Vec::new() };
    let changes = announcer.update(std::time::Instant::now(), &wanted);
    for change in &changes {
        info!("route: {}", change.line());
    }
    changes
}

/// Tells the announcer whether the bulk resync is still under way on any worker; logs its
/// end (worker 0's) once.
fn resync_over(workers: &Workers, announcer: &mut Announcer) {
    let status = workers.each(|_, d, io| d.resync_status(io.now()));
    let waiting = status.iter().flatten().flatten().any(|s| !s.phase.is_over());
    if !waiting
        && announcer.is_resyncing()
        && let Some(Some(Some(s))) = status.first()
    {
        info!("sync: {s}");
    }
    announcer.resyncing(waiting);
}

/// Joins each worker's output of one listing or report, naming the workers when several.
fn joined(outputs: Vec<Option<Result<String, String>>>) -> Result<String, String> {
    let many = outputs.len() > 1;
    let mut text = String::new();
    for (i, output) in outputs.into_iter().enumerate() {
        let output = output.ok_or(format!("worker {i} did not answer"))??;
        if many && !output.is_empty() {
            text.push_str(&format!("worker {i}:\n"));
        }
        text.push_str(&output);
    }
    Ok(text)
}

fn run(args: &Args) -> Result<(), String> {
    let Some(iface) = args.iface.as_deref() else { return Err("give --iface IF".into()) };
    args.sync.validate()?;
    let ring = args.rx_ring()?;
    // One director per interface: a second would forward every frame a second time.
    let _lock = crate::instance::InterfaceLock::take(iface)?;
    // Nor is a live director's control socket ever taken over.
    let control = ControlSocket::bind(&args.control)?;
    // The interface's MAC first: the configuration may leave the director's MAC to it.
    let mac = backend::interface_mac(iface)?;
    let sync_iface = args.sync.sync_iface.as_deref().unwrap_or(iface);
    let mut daemon =
        args.sync.sync.map(|_| SyncDaemon::open(&args.sync, sync_iface)).transpose()?;
    let origin = crate::sync::origin();
    let mut directors = Vec::new();
    let mut settings = Vec::new();
    let mut route_settings = None;
    let mut keepalived: Option<Keepalived> = None;
    for worker in 0..args.workers {
        let (Loaded { mut director, health, routes, .. }, plan) =
            director(args, mac, false, None, worker == 0)?;
        if route_settings.is_none() {
            route_settings = Some((
                quorum_by_key(&director, &routes),
                routes.announce_delay,
                args.sync.resync_wait(routes.resync_wait),
            ));
        }
        if keepalived.is_none() {
            keepalived = plan;
        }
        if let Some(mut config) =
            args.sync.config(origin, args.sync.resync_wait(routes.resync_wait))
        {
            // Each worker answers a resync request with its own table, as one part of this
            // process's answer.
            config.part = u8::try_from(worker).unwrap_or(u8::MAX);
            config.parts = u8::try_from(args.workers).unwrap_or(u8::MAX);
            director.start_sync(config).map_err(|e| format!("--sync: {e}"))?;
        }
        let vips: Vec<_> = director.vips().collect();
        if directors.is_empty() && !args.no_preflight {
            let problems = preflight::problems(iface, &vips);
            if !problems.is_empty() {
                return Err(problems.join("; "));
            }
        }
        settings = health;
        directors.push(director);
    }
    let vips: Vec<_> = directors.first().map(|d| d.vips().collect()).unwrap_or_default();
    let ios = backend::open(args.backend, iface, &vips, args.workers, ring)?;
    let parts: Vec<(Director, Io)> = directors.into_iter().zip(ios).collect();
    let services = parts.first().map_or(0, |(d, _)| d.services().count());
    let backend = args.backend;
    info!(interface = %iface, %mac, ?vips, services, workers = args.workers, ?backend, "director up");
    let shares = match &mut daemon {
        Some(daemon) => (0..parts.len()).map(|_| daemon.worker()).collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let workers = Workers::start(parts, DriverOptions::default(), shares)?;
    if let Some(daemon) = &mut daemon {
        daemon.start_receiving()?;
        info!("{}", args.sync.describe(iface).trim_end());
        if args.sync.resyncs() {
            // One request: every worker imports the answer, and waits for its end.
            let asked = workers.each(|i, d, io| {
                if i == 0 { d.request_resync(io.now()) } else { d.await_resync(io.now()) }
            });
            if asked.first().copied().flatten() == Some(true) {
                info!(origin, "sync: bulk resync requested; nothing is announced until it ends");
            }
        }
    }
    let (mut quorum, delay, resync_wait) = route_settings.unwrap_or_default();
    let mut announcer = Announcer::new(std::time::Instant::now(), delay);
    announcer.resyncing(args.sync.resyncs());
    if !delay.is_zero() {
        info!(delay_secs = delay.as_secs(), "the VIPs are announced after the announce delay");
    }
    if args.sync.resyncs() {
        info!(
            resync_wait_secs = resync_wait.as_secs(),
            "and after the bulk resync, at most the resync wait"
        );
    }

    let stop = Arc::new(AtomicBool::new(false));
    let dump = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    for (signal, flag) in [
        (signal_hook::consts::SIGINT, &stop),
        (signal_hook::consts::SIGTERM, &stop),
        (signal_hook::consts::SIGUSR1, &dump),
        (signal_hook::consts::SIGHUP, &hup),
    ] {
        signal_hook::flag::register(signal, Arc::clone(flag))
            .map_err(|e| format!("installing the signal handlers: {e}"))?;
    }

    // The real servers' MACs, for the checks that go through the VIP.
    let macs: health::Macs = Arc::default();
    let mut checks =
        Health::start(&workers, settings.clone(), HashSet::new(), HashMap::new(), iface, &macs)?;
    let neighbours: Arc<HashMap<IpAddr, dr_core::MacAddr>> =
        Arc::new(args.neigh.iter().copied().collect());
    let mut checkers = match keepalived {
        Some(k) => Some(Checkers::start(k.plan, k.pool, Arc::clone(&neighbours))?),
        None => None,
    };
    let mut next_share = std::time::Instant::now();
    // Control commands that changed the director since the file was last applied: a
    // reload puts the file's state back, and says which of them it undoes.
    let mut ctl_edits: Vec<String> = Vec::new();
    let metrics = args.metrics.map(MetricsEndpoint::bind).transpose()?;
    let mut failure = None;
    // `ctl -L --daemon`'s lines that do not change while the director runs.
    let daemon_line = args.sync.describe(iface);
    let resyncs = args.sync.resyncs();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(10));
        if let Some(e) = workers.failure() {
            failure = Some(e);
            break;
        }
        checks.apply(&workers);
        if let Some(checkers) = &mut checkers {
            checkers.apply(&workers);
        }
        if std::time::Instant::now() >= next_share {
            if workers.len() > 1 {
                share_macs(&workers);
            }
            publish_macs(&workers, &macs);
            if args.sync.resyncs() {
                resync_over(&workers, &mut announcer);
            }
            let changes = announcements(&workers, &mut announcer, &checks.down, &quorum);
            control.publish(&changes);
            next_share = std::time::Instant::now() + std::time::Duration::from_millis(200);
        }
        control.publish(&[]);
        let mut changed = false;
        let edits = &mut ctl_edits;
        let holding = HoldDown {
            workers: &workers,
            down: Arc::new(checks.down.clone()),
            held: std::cell::RefCell::default(),
        };
        let own_dropped = daemon.as_ref().map_or(0, SyncDaemon::own_dropped);
        control.serve(|request| {
            if control::is_daemon_listing(request) {
                if !resyncs {
                    return Ok(daemon_line.clone());
                }
                let status = workers.each(|_, d, io| d.resync_status(io.now()));
                let status = status.into_iter().next().flatten().flatten();
                return Ok(daemon_line.clone()
                    + &crate::sync::describe_resync(status.as_ref(), own_dropped));
            }
            let done = control::execute(&holding, request)?;
            for line in &done.applied {
                info!("control: {line}");
            }
            // What a reload would put back (zeroed counters stay zeroed).
            edits.extend(done.configured);
            changed |= !done.applied.is_empty();
            Ok(done.output)
        });
        let held_now = holding.held.into_inner();
        if changed && checkers.is_some() {
            // keepalived's checkers stay as the file gives them; the filters follow the VIPs.
            for result in workers.each(|_, d, io| follow_vips(d, io)) {
                if let Some(Err(e)) = result {
                    warn!("{e}");
                }
            }
        } else if changed {
            // New services get the default checks; the filters follow the VIPs.
            let known = settings.clone();
            let results = workers.each(move |_, d, io| {
                follow_vips(d, io)?;
                Ok::<_, String>(with_default_checks(d, &known))
            });
            settings = results.into_iter().next().flatten().ok_or("no worker answered")??;
            let down = std::mem::take(&mut checks.down);
            let mut held = std::mem::take(&mut checks.held);
            held.extend(held_now);
            drop(checks);
            checks = Health::start(&workers, settings.clone(), down, held, iface, &macs)?;
        }
        if let Some(metrics) = &metrics {
            metrics.serve(|| {
                // The health of the real servers is the director's, not a worker's: once.
                let mut down = checks.down.clone();
                if let Some(checkers) = &checkers {
                    down.extend(checkers.down());
                }
                let down = Arc::new(down);
                let texts: Vec<(String, Option<String>)> = workers
                    .each(move |i, d, io| {
                        let text = metrics::render(d) + &io.render_metrics();
                        (text, (i == 0).then(|| metrics::render_health(d, &down)))
                    })
                    .into_iter()
                    .flatten()
                    .collect();
                let health: String = texts.iter().filter_map(|(_, h)| h.clone()).collect();
                let texts: Vec<String> = texts.into_iter().map(|(t, _)| t).collect();
                metrics::merge(&texts) + &health
            });
        }
        if dump.swap(false, Ordering::Relaxed) {
            let reports = workers.each(|_, d, _| Ok(report::text(d)));
            match joined(reports) {
                Ok(text) => print!("{text}"),
                Err(e) => warn!("{e}"),
            }
        }
        if hup.swap(false, Ordering::Relaxed) {
            let before = checkers.as_ref().map(|c| c.pool.clone());
            match reload(args, &workers, mac, &ctl_edits, &checks.down, before.as_ref()) {
                Ok((health, held_now, keepalived, new_quorum)) => {
                    quorum = new_quorum;
                    if let Some(k) = keepalived {
                        drop(checkers.take());
                        checkers = Some(Checkers::start(k.plan, k.pool, Arc::clone(&neighbours))?);
                    }
                    ctl_edits.clear();
                    // New checkers for the servers as they are now; those down stay down,
                    // with the file's weight to give back.
                    settings = health;
                    let down = std::mem::take(&mut checks.down);
                    let mut held = std::mem::take(&mut checks.held);
                    held.extend(held_now);
                    drop(checks);
                    checks = Health::start(&workers, settings.clone(), down, held, iface, &macs)?;
                }
                Err(e) => error!("reload refused, nothing changed: {e}"),
            }
        }
    }
    drop(checks);
    drop(checkers);
    let withdrawn = announcer.withdraw_all();
    for change in &withdrawn {
        info!("route: {}", change.line());
    }
    control.publish(&withdrawn);
    drop(control);
    let directors = workers.stop();
    drop(daemon);
    let frames: u64 = directors.iter().map(|d| d.counters().forwarded()).sum();
    info!(forwarded = frames, "stopping");
    let many = directors.len() > 1;
    for (i, d) in directors.iter().enumerate() {
        if many {
            println!("worker {i}:");
        }
        print!("{}", report::text(d));
    }
    failure.map_or(Ok(()), Err)
}
