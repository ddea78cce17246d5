//! `dr-replay`: replays a capture through an LVS Direct Routing director and writes what it
//! transmits. The clock is the capture's timestamps, so the same capture and configuration
//! always give a byte-identical output.

use clap::Parser;
use dr_core::{Config, Director, Driver, DriverOptions, MacAddr};
use dr_examples::config::{LoadOptions, load_all};
use dr_examples::output::OutputFile;
use dr_examples::{keepalived, report, rules};
use dr_io_pcap::{PcapIoError, PcapReplay, PcapSink, PcapSource};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// The replay's hash seed. A replay is deterministic whatever the seed; a fixed one keeps
/// runs comparable. (Live directors take theirs from the operating system.)
const SEED: [u64; 4] = [0x6472_2d72_6570_6c61, 0x7920_6861_7368_2073, 0x6565_6420_3031, 0x2c];
/// Frames per batch (the output does not depend on it).
const BATCH: usize = 64;

/// Replay a pcap or pcapng capture through an LVS-DR director and write the frames it
/// transmits (forwarded frames and ARP/ND replies, in input order, each with the timestamp
/// of the input record that produced it) to a classic pcap file.
#[derive(Debug, Parser)]
#[command(name = "dr-replay", version)]
#[command(group(
    clap::ArgGroup::new("services").required(true).args(["config", "rules", "keepalived"])
))]
struct Args {
    /// The director's configuration (TOML, see examples/director.toml); every real server
    /// needs a mac.
    #[arg(long, value_name = "CONFIG.toml")]
    config: Option<PathBuf>,
    /// Rules instead of a configuration file: ipvsadm command lines, as `ipvsadm-save`
    /// writes them or an rc script runs them (`/sbin/ipvsadm -A -t VIP:80 -s rr`).
    #[arg(long, value_name = "FILE", requires = "mac")]
    rules: Option<PathBuf>,
    /// keepalived's configuration instead: its DR virtual servers, every real server alive
    /// (a replay runs no checks).
    #[arg(long, value_name = "FILE", requires = "mac")]
    keepalived: Option<PathBuf>,
    /// With --keepalived: the config id its `@ID` / `@^ID` lines and `${_INSTANCE}` are
    /// compared with, as keepalived's `-i` / `--config-id` (default: the host name up to its
    /// first dot, as keepalived's).
    #[arg(long, value_name = "ID", requires = "keepalived")]
    keepalived_config_id: Option<String>,
    /// With --rules or --keepalived: a real server's MAC (repeatable).
    #[arg(long, value_name = "IP=MAC", value_parser = rules::parse_neighbour)]
    neigh: Vec<(IpAddr, MacAddr)>,
    /// With --rules or --keepalived: the director's MAC.
    #[arg(long, value_name = "MAC")]
    mac: Option<MacAddr>,
    /// The capture to replay (pcap or pcapng, Ethernet link type).
    #[arg(value_name = "INPUT.pcap")]
    input: PathBuf,
    /// Where to write the transmitted frames: written beside it and renamed into place when
    /// the replay succeeds, so a failed run leaves an earlier output as it was. It cannot be
    /// the input.
    #[arg(short, long, value_name = "OUTPUT.pcap")]
    output: PathBuf,
    /// Print the report as one JSON object instead of the listing.
    #[arg(long)]
    json: bool,
    /// No progress bar, and no report; only errors.
    #[arg(short, long)]
    quiet: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut director = match director(&args) {
        Ok(director) => director,
        Err(message) => {
            eprintln!("dr-replay: {message}");
            return ExitCode::FAILURE;
        }
    };
    let result = run(&args, &mut director);
    // A replay that stopped at a corrupt record reports what it did before it.
    if result.as_ref().map_or_else(|f| f.in_capture, |()| true) {
        if args.json {
            println!("{}", report::json(&director));
        } else if !args.quiet {
            print!("{}", report::text(&director));
        }
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("dr-replay: {}", failure.message);
            ExitCode::FAILURE
        }
    }
}

/// Why a run failed, and whether it stopped inside the capture, after replaying records.
struct Failure {
    message: String,
    in_capture: bool,
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self { message, in_capture: false }
    }
}

/// The director, from the configuration file or the rules, with a warning on standard error
/// for each scheduler flag its service's scheduler ignores.
fn director(args: &Args) -> Result<Director, String> {
    let director = load_director(args)?;
    for warning in dr_examples::flags::ignored_flags(&director) {
        eprintln!("dr-replay: warning: {warning}");
    }
    Ok(director)
}

/// The director, from the configuration file or the rules.
fn load_director(args: &Args) -> Result<Director, String> {
    let read = |path: &PathBuf| {
        std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
    };
    if let Some(path) = &args.config {
        let options = LoadOptions {
            hash_seed: SEED,
            require_real_macs: true,
            default_mac: None,
            default_capacity: None,
        };
        let loaded =
            load_all(&read(path)?, options).map_err(|e| format!("{}: {e}", path.display()))?;
        for warning in &loaded.warnings {
            eprintln!("dr-replay: warning: {}: {warning}", path.display());
        }
        return Ok(loaded.director);
    }
    if let (Some(path), Some(mac)) = (&args.keepalived, args.mac) {
        let id = args.keepalived_config_id.clone().or_else(keepalived::default_config_id);
        let plan = keepalived::read_as(&keepalived::Disk, path, id).map_err(|e| e.to_string())?;
        for warning in &plan.warnings {
            eprintln!("dr-replay: warning: {warning}");
        }
        let options = keepalived::BuildOptions {
            config: Config::new(mac, SEED),
            neighbours: args.neigh.iter().copied().collect(),
            require_real_macs: true,
        };
        let config = plan.config(&options);
        let pool = keepalived::Pool::all_alive(&plan);
        return plan.build(&pool, &options, config).map_err(|e| e.to_string());
    }
    let (Some(path), Some(mac)) = (&args.rules, args.mac) else {
        return Err("give --config FILE, or --rules FILE or --keepalived FILE with --mac".into());
    };
    let options = rules::RulesOptions {
        config: Config::new(mac, SEED),
        neighbours: args.neigh.iter().copied().collect::<HashMap<_, _>>(),
        require_real_macs: true,
    };
    rules::load(&read(path)?, &options).map_err(|e| format!("{}: {e}", path.display()))
}

/// Replays the capture into `director`; the output is in place only if everything
/// succeeded.
fn run(args: &Args, director: &mut Director) -> Result<(), Failure> {
    let file = File::open(&args.input).map_err(|e| format!("{}: {e}", args.input.display()))?;
    let (output, out_file) = OutputFile::create(&args.output, &file, &args.input)?;
    let progress = progress_bar(&file, args.quiet);
    let reader = BufReader::with_capacity(1 << 16, progress.wrap_read(file));
    let source = PcapSource::from_reader(reader, &args.input).map_err(|e| e.to_string())?;
    let writer = BufWriter::with_capacity(1 << 16, out_file);
    let sink = PcapSink::from_writer(writer, &args.output).map_err(|e| e.to_string())?;
    let mut io = PcapReplay::new(source, sink, BATCH).map_err(|e| e.to_string())?;
    let mut driver_options = DriverOptions::default();
    driver_options.announce = false;
    driver_options.solicit_neighbours = false;
    let outcome = Driver::new(driver_options).run(director, &mut io);
    progress.finish_and_clear();
    if let Err(e) = outcome {
        let replayed = io.records_read();
        return Err(match e {
            PcapIoError::Corrupt { .. } => {
                let before = match replayed {
                    0 => "no record before it was replayed".to_string(),
                    1 => "the record before it was replayed".to_string(),
                    n => format!("the {n} records before it were replayed"),
                };
                Failure { message: format!("{e}; {before}"), in_capture: true }
            }
            e => e.to_string().into(),
        });
    }
    io.finish().map_err(|e| e.to_string())?;
    output.commit()?;
    Ok(())
}

/// A bar over the capture's bytes on stderr, cleared at the end; hidden when stderr is not a
/// terminal (indicatif checks) or with `--quiet`.
fn progress_bar(file: &File, quiet: bool) -> ProgressBar {
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let target = if quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    let style = ProgressStyle::with_template(
        "{spinner} replaying [{bar:40}] {bytes}/{total_bytes} ({eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar
}
