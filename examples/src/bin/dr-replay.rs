//! `dr-replay`: replays a capture through an LVS Direct Routing director and writes what it
//! transmits. The clock is the capture's timestamps, so the same capture and configuration
//! always give a byte-identical output.

use clap::Parser;
use dr_core::{Director, Driver, DriverOptions, DropReason, ListingFormat};
use dr_examples::config::{LoadOptions, load};
use dr_io_pcap::{PcapReplay, PcapSink, PcapSource};
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
struct Args {
    /// The director's configuration (TOML, as in DESIGN.md); every real server needs a mac.
    #[arg(long, value_name = "CONFIG.toml")]
    config: PathBuf,
    /// The capture to replay (pcap or pcapng, Ethernet link type).
    #[arg(value_name = "INPUT.pcap")]
    input: PathBuf,
    /// Where to write the transmitted frames.
    #[arg(short, long, value_name = "OUTPUT.pcap")]
    output: PathBuf,
    /// Print nothing but errors.
    #[arg(short, long)]
    quiet: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(director) => {
            if !args.quiet {
                print!("{}", report(&director));
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("dr-replay: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<Director, String> {
    let text = std::fs::read_to_string(&args.config)
        .map_err(|e| format!("{}: {e}", args.config.display()))?;
    let options = LoadOptions { hash_seed: SEED, require_real_macs: true, default_mac: None };
    let mut director =
        load(&text, options).map_err(|e| format!("{}: {e}", args.config.display()))?;
    let source = PcapSource::open(&args.input).map_err(|e| e.to_string())?;
    let sink = PcapSink::create(&args.output).map_err(|e| e.to_string())?;
    let mut io = PcapReplay::new(source, sink, BATCH).map_err(|e| e.to_string())?;
    let mut driver_options = DriverOptions::default();
    driver_options.announce = false;
    driver_options.solicit_neighbours = false;
    Driver::new(driver_options).run(&mut director, &mut io).map_err(|e| e.to_string())?;
    io.finish().map_err(|e| e.to_string())?;
    Ok(director)
}

/// The `ipvsadm -L -n --stats` listing, the frame counts and a line per drop reason.
fn report(director: &Director) -> String {
    let c = director.counters();
    let mut out = director.listing(ListingFormat::Stats).to_string();
    out.push_str(&format!(
        "\nframes: {} forwarded, {} replies, {} passed, {} dropped\n",
        c.forwarded(),
        c.replies(),
        c.passed(),
        c.dropped()
    ));
    for &reason in DropReason::ALL {
        out.push_str(&format!("drop {:<28} {}\n", reason.name(), c.drops(reason)));
    }
    out
}
