//! `dr-director --iface IF --config CONFIG.toml` (or `--rules RULES --neigh IP=MAC…`): an
//! LVS Direct Routing director on a live interface.
//!
//! It owns the VIPs at layer 2 (answers ARP and Neighbor Solicitations, announces them at
//! start), learns the real servers' MACs by ARP or Neighbor Discovery unless the
//! configuration gives them, and forwards every connection to its real server by rewriting
//! only the MAC addresses, on an `AF_PACKET` ring.
//!
//! Every real server is health checked off the packet path (`[service.health]`; by
//! default a TCP connect to its address and the service port every second, down after 3
//! failures, up after 2 successes): a server that goes down is quiesced (weight 0, its
//! connections continue) and gets its weight back when it recovers; each change is logged.
//!
//! A control socket (`--control`, default `/run/dr-director.sock`, mode 0600) takes ipvsadm
//! command lines: `dr-director ctl -L -n` (or `--stats`, `--rate`, `-c`, `--timeout`,
//! `--json`), `ctl -A/-E/-D …`, `ctl -a/-e/-d …`, `ctl -Z`. `--metrics ADDR` serves the
//! counters to Prometheus (off by default).
//!
//! Signals: SIGINT and SIGTERM stop it cleanly, printing the `--stats` listing; SIGUSR1
//! prints the listing and the counters while it runs; SIGHUP reads the configuration again
//! and applies only the difference, as `ipvsadm -A/-E/-D/-a/-e/-d` would: connections of
//! what stays survive. A file that does not load is reported and changes nothing.

use clap::Parser;
use dr_core::{Config, Director, Driver, DriverOptions, FrameIo, ListingFormat};
use dr_core::{RealEdit, RealId, ServiceKey};
use dr_examples::config::{LoadOptions, Loaded, load_all};
use dr_examples::control::{self, ControlSocket};
use dr_examples::health::{self, HealthCheck, HealthEvent, Probe};
use dr_examples::ipvsadm::{self, Command, Macs};
use dr_examples::metrics::MetricsEndpoint;
use dr_examples::{preflight, reload, report, rules};
use dr_io_afpacket::{AfPacket, AfPacketConfig};
use std::collections::HashMap;
use std::collections::HashSet;
use std::net::IpAddr;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel};
use tracing::{error, info, warn};

/// A live LVS Direct Routing director.
#[derive(Debug, Parser)]
#[command(version, about)]
#[command(group(clap::ArgGroup::new("services").required(true).args(["config", "rules"])))]
struct Args {
    /// The interface to own the VIPs on and forward through.
    #[arg(long, value_name = "IF")]
    iface: String,
    /// The configuration (see examples/director.toml).
    #[arg(long, value_name = "CONFIG.toml")]
    config: Option<PathBuf>,
    /// Rules in the `ipvsadm-save -n` format instead of a configuration file.
    #[arg(long, value_name = "FILE")]
    rules: Option<PathBuf>,
    /// A real server's MAC, for rules (otherwise learned by ARP / ND); repeatable.
    #[arg(long, value_name = "IP=MAC", value_parser = rules::parse_neighbour, requires = "rules")]
    neigh: Vec<(IpAddr, dr_core::MacAddr)>,
    /// Skip the host checks (a VIP held by the host, IPv4 forwarding on the interface).
    #[arg(long)]
    no_preflight: bool,
    /// The control socket `dr-director ctl` talks to.
    #[arg(long, value_name = "PATH", default_value = control::DEFAULT_SOCKET)]
    control: PathBuf,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9100); off by default.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Log level: error, warn, info, debug or trace (or a tracing filter).
    #[arg(long, default_value = "info", env = "DR_LOG")]
    log: String,
}

/// `dr-director ctl [--socket PATH] IPVSADM-ARGS…`: one command to a running director.
#[derive(Debug, Parser)]
#[command(name = "dr-director ctl", about = "Send an ipvsadm command to a running dr-director")]
struct CtlArgs {
    /// The director's control socket.
    #[arg(long, value_name = "PATH", default_value = control::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// The command, as ipvsadm takes it: -L -n, -A -t VIP:PORT -s wrr, -a … -r IP -w 2, -Z …
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

fn ctl(args: &[String]) -> ExitCode {
    let args = CtlArgs::parse_from(
        std::iter::once("dr-director ctl".to_string()).chain(args.iter().cloned()),
    );
    match control::request(&args.socket, &args.command.join(" ")) {
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

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("ctl") {
        return ctl(&argv[2..]);
    }
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            error!("{message}");
            eprintln!("dr-director: {message}");
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

fn director(args: &Args, mac: dr_core::MacAddr) -> Result<Loaded, String> {
    let read = |path: &PathBuf| {
        std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
    };
    let hash_seed = seed()?;
    if let Some(path) = &args.config {
        let options = LoadOptions { hash_seed, require_real_macs: false, default_mac: Some(mac) };
        return load_all(&read(path)?, options).map_err(|e| format!("{}: {e}", path.display()));
    }
    let Some(path) = &args.rules else { return Err("give --config FILE or --rules FILE".into()) };
    let options = rules::RulesOptions {
        config: Config::new(mac, hash_seed),
        neighbours: args.neigh.iter().copied().collect::<HashMap<_, _>>(),
        require_real_macs: false,
    };
    let director =
        rules::load(&read(path)?, &options).map_err(|e| format!("{}: {e}", path.display()))?;
    let health = director.services().map(|(id, _)| (id, HealthCheck::default())).collect();
    Ok(Loaded { director, health })
}

/// After services changed: the filter lets the VIPs' traffic in, and every VIP is announced
/// again (gratuitous ARP, unsolicited NA), so new ones reach neighbours' caches at once.
fn follow_vips(director: &Director, io: &mut AfPacket) -> Result<(), String> {
    let vips: Vec<_> = director.vips().collect();
    io.set_vips(&vips).map_err(|e| e.to_string())?;
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
        .map(|(id, _)| {
            let check = known.iter().find(|(k, _)| *k == id).map(|(_, c)| c.clone());
            (id, check.unwrap_or_default())
        })
        .collect()
}

/// SIGHUP: the configuration again, and only the difference applied.
fn reload(
    args: &Args,
    running: &mut Director,
) -> Result<Vec<(dr_core::ServiceId, HealthCheck)>, String> {
    let wanted = director(args, running.config().mac)?;
    let changes = reload::apply(running, &wanted.director).map_err(|e| e.to_string())?;
    for change in &changes {
        info!("reload: {change}");
    }
    info!(changes = changes.len(), "configuration reloaded");
    // The running director's handles for the wanted health checks.
    Ok(wanted
        .health
        .into_iter()
        .filter_map(|(id, check)| {
            let key = wanted.director.service(id)?.key();
            Some((running.find_service(&key)?, check))
        })
        .collect())
}

/// The health checkers, the weights to give back to servers that recover, and the servers
/// now down.
struct Health {
    events: Receiver<HealthEvent<RealId>>,
    weights: HashMap<RealId, u32>,
    down: HashSet<(ServiceKey, IpAddr)>,
    stop: Arc<AtomicBool>,
}

impl Health {
    /// One checker thread per real server of every service with checks. Servers in `down`
    /// (down before a reload) stay quiesced until their checks pass again.
    fn start(
        director: &mut Director,
        checks: &[(dr_core::ServiceId, HealthCheck)],
        down: HashSet<(ServiceKey, IpAddr)>,
    ) -> Result<Self, String> {
        let (tx, events) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let mut weights = HashMap::new();
        let mut still_down = HashSet::new();
        for (service, check) in checks {
            let Some(svc) = director.service(*service) else { continue };
            let key = svc.key();
            if check.probe == Probe::None || key.port == 0 {
                continue;
            }
            for id in svc.reals().to_vec() {
                let Some(real) = director.real(id) else { continue };
                let (addr, edit) = (real.addr(), RealEdit::of(real));
                weights.insert(id, real.weight());
                let healthy = !down.contains(&(key, addr));
                if !healthy {
                    still_down.insert((key, addr));
                    director.edit_real(id, edit.with_weight(0)).map_err(|e| e.to_string())?;
                }
                let target = SocketAddr::new(addr, key.port);
                health::spawn(id, target, check.clone(), healthy, tx.clone(), Arc::clone(&stop))
                    .map_err(|e| format!("starting the health check of {target}: {e}"))?;
            }
        }
        Ok(Self { events, weights, down: still_down, stop })
    }

    /// Applies the changes reported since the last call.
    fn apply(&mut self, director: &mut Director) {
        while let Ok(event) = self.events.try_recv() {
            let Some(real) = director.real(event.key) else { continue };
            let Some(key) = director.service(real.service()).map(|s| s.key()) else { continue };
            if event.healthy {
                self.down.remove(&(key, real.addr()));
            } else {
                self.down.insert((key, real.addr()));
            }
            let weight =
                if event.healthy { self.weights.get(&event.key).copied().unwrap_or(1) } else { 0 };
            match director.edit_real(event.key, RealEdit::of(real).with_weight(weight)) {
                Ok(()) if event.healthy => {
                    info!(real = %event.target, weight, "real server is up: weight restored");
                }
                Ok(()) => {
                    warn!(
                        real = %event.target,
                        "real server is down: quiesced (weight 0, its connections continue)"
                    );
                }
                Err(e) => warn!(real = %event.target, "health change not applied: {e}"),
            }
        }
    }
}

impl Drop for Health {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn run(args: &Args) -> Result<(), String> {
    // The interface's MAC first: the configuration may leave the director's MAC to it.
    let probe = AfPacket::open(&AfPacketConfig::new(&args.iface)).map_err(|e| e.to_string())?;
    let Loaded { mut director, health } = director(args, probe.mac())?;
    drop(probe);
    let vips: Vec<_> = director.vips().collect();
    if !args.no_preflight {
        let problems = preflight::problems(&args.iface, &vips);
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
    }
    let config = AfPacketConfig::new(&args.iface).with_vips(vips.clone());
    let mut io = AfPacket::open(&config).map_err(|e| e.to_string())?;
    info!(
        interface = %args.iface,
        mac = %io.mac(),
        vips = ?vips,
        services = director.services().count(),
        "director up"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let dump = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| format!("installing the signal handlers: {e}"))?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&dump))
        .map_err(|e| format!("installing the signal handlers: {e}"))?;
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup))
        .map_err(|e| format!("installing the signal handlers: {e}"))?;

    let mut settings = health;
    let mut checks = Health::start(&mut director, &settings, HashSet::new())?;
    let control = ControlSocket::bind(&args.control)?;
    let metrics = args.metrics.map(MetricsEndpoint::bind).transpose()?;
    let mut driver = Driver::new(DriverOptions::default());
    while !stop.load(Ordering::Relaxed) {
        checks.apply(&mut director);
        let now = io.now();
        let mut changed = false;
        control.serve(|line| {
            let rule = ipvsadm::parse(line)?;
            let output = ipvsadm::apply(&mut director, &rule, &Macs::default(), now)?;
            if !matches!(rule.command, Command::List(_)) {
                info!("control: {line}");
                changed = true;
            }
            Ok(output)
        });
        if changed {
            // New services get the default checks; the filter follows the VIPs.
            settings = with_default_checks(&director, &settings);
            let down = std::mem::take(&mut checks.down);
            drop(checks);
            checks = Health::start(&mut director, &settings, down)?;
            follow_vips(&director, &mut io)?;
        }
        if let Some(metrics) = &metrics {
            metrics.serve(&director);
        }
        if let Err(e) = driver.step(&mut director, &mut io) {
            warn!("{e}");
        }
        if dump.swap(false, Ordering::Relaxed) {
            print!("{}", report::text(&director));
        }
        if hup.swap(false, Ordering::Relaxed) {
            match reload(args, &mut director) {
                Ok(health) => {
                    // New checkers for the servers as they are now; those down stay down.
                    settings = health;
                    let down = std::mem::take(&mut checks.down);
                    drop(checks);
                    checks = Health::start(&mut director, &settings, down)?;
                    follow_vips(&director, &mut io)?;
                }
                Err(e) => error!("reload refused, nothing changed: {e}"),
            }
        }
    }
    info!(frames = driver.stats().frames, "stopping");
    print!("{}", director.listing(ListingFormat::Stats));
    Ok(())
}
