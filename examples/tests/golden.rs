//! Golden replays: `testdata/<case>/input.pcap` is exactly what `dr_fixtures::golden` builds,
//! and `dr-replay` on it with `testdata/director.toml` gives exactly `expected.pcap`.
//!
//! `DR_UPDATE_GOLDEN=1 cargo test -p dr-examples --test golden` rewrites both files; review
//! the difference (`tcpdump -nn -r`) before committing it.

#[path = "golden/model.rs"]
mod model;

use dr_core::Instant;
use dr_fixtures::golden::{EPOCH_MS, cases};
use dr_io_pcap::PcapSink;
use std::path::{Path, PathBuf};
use std::process::Command;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata")
}

fn capture(frames: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut sink = PcapSink::from_writer(Vec::new(), "input.pcap").unwrap();
    for (ms, frame) in frames {
        sink.write(Instant::from_millis(EPOCH_MS + ms), frame).unwrap();
    }
    sink.finish().unwrap()
}

fn replay(config: &Path, input: &Path, output: &Path) {
    let run = Command::new(env!("CARGO_BIN_EXE_dr-replay"))
        .arg("--quiet")
        .arg("--config")
        .arg(config)
        .arg(input)
        .arg("-o")
        .arg(output)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
}

/// Frames the director transmits for each case (see testdata/README.md for why).
const TRANSMITTED: &[(&str, usize)] = &[
    ("tcp-lifecycle", 20),
    ("udp", 4),
    ("ipv6", 5),
    ("vlan", 5),
    ("arp-nd", 2),
    ("non-vip", 0),
    ("malformed", 1),
    ("persistence", 32),
    ("icmp", 9),
    ("fragments", 11),
    ("syn-flood", 707),
    ("sched-rr", 120),
    ("sched-wrr", 120),
    ("sched-lc", 120),
    ("sched-wlc", 120),
    ("sched-sh", 120),
    ("sched-sed", 120),
    ("sched-nq", 120),
    ("sched-mh", 282),
    ("sched-dh", 159),
    ("sched-fo", 240),
    ("sched-ovf", 112),
    ("sched-lblc", 255),
    ("sched-lblcr", 297),
    ("sched-twos", 750),
];

/// The cases whose picks [`model::Model`] checks.
const MODELLED: &[&str] =
    &["sched-mh", "sched-dh", "sched-fo", "sched-ovf", "sched-lblc", "sched-lblcr", "sched-twos"];

/// The frames of a capture.
fn records(pcap: &[u8]) -> Vec<Vec<u8>> {
    let mut reader = pcap_file::pcap::PcapReader::new(pcap).unwrap();
    let mut frames = Vec::new();
    while let Some(packet) = reader.next_packet() {
        frames.push(packet.unwrap().data.into_owned());
    }
    frames
}

/// Checks every frame of `output` (what dr transmitted for `case`) against the kernel's
/// model: each input frame either forwarded, unchanged but for its Ethernet addresses, to
/// the server the model names, or not transmitted where the model has no server. For twos
/// each server's share of the picks is also held to the kernel's chances: within 5 standard
/// deviations of the sum of its chance at each pick.
fn check_model(case: &dr_fixtures::golden::Case, output: &[u8]) {
    let mut model = model::Model::new(case.config.as_deref().unwrap());
    let output = records(output);
    let mut sent = output.iter().peekable();
    for (i, (ms, frame)) in case.frames.iter().enumerate() {
        let forwarded = sent
            .next_if(|out| out.len() == frame.len() && out[12..] == frame[12..])
            .map(|out| <[u8; 6]>::try_from(&out[..6]).unwrap());
        model.frame(*ms, frame, forwarded, &format!("{} frame {i} at {ms} ms", case.name));
    }
    assert!(sent.next().is_none(), "{}: transmitted frames the input does not explain", case.name);
    if !model.draws.is_empty() {
        let servers = model.draws[0].servers.len();
        for s in 0..servers {
            let addr = model.draws[0].servers[s].0;
            let picked = model.draws.iter().filter(|d| d.servers[s].2).count() as f64;
            let expected: f64 = model.draws.iter().map(|d| d.servers[s].1).sum();
            let variance: f64 =
                model.draws.iter().map(|d| d.servers[s].1 * (1.0 - d.servers[s].1)).sum();
            let bound = 5.0 * variance.sqrt();
            assert!(
                (picked - expected).abs() <= bound,
                "{}: {addr} picked {picked} times, the kernel's chances give {expected:.1} ± {bound:.1}",
                case.name
            );
        }
    }
}

#[test]
fn golden_replays() {
    let update = std::env::var_os("DR_UPDATE_GOLDEN").is_some();
    let cases = cases();
    assert_eq!(cases.len(), TRANSMITTED.len());
    for (case, (name, transmitted)) in cases.iter().zip(TRANSMITTED) {
        assert_eq!(case.name, *name);
        let dir = testdata().join(&case.name);
        let (input, expected) = (dir.join("input.pcap"), dir.join("expected.pcap"));
        let config = match &case.config {
            Some(_) => dir.join("director.toml"),
            None => testdata().join("director.toml"),
        };
        let built = capture(&case.frames);
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&input, &built).unwrap();
            if let Some(text) = &case.config {
                std::fs::write(&config, text).unwrap();
            }
            replay(&config, &input, &expected);
            if MODELLED.contains(&case.name.as_str()) {
                check_model(case, &std::fs::read(&expected).unwrap());
            }
            continue;
        }
        if let Some(text) = &case.config {
            let committed = std::fs::read_to_string(&config).unwrap_or_default();
            assert!(
                committed == *text,
                "{}: director.toml differs from what golden.rs writes",
                case.name
            );
        }
        let committed = std::fs::read(&input).unwrap_or_default();
        assert!(committed == built, "{}: input.pcap differs from what golden.rs builds", case.name);
        let output = std::env::temp_dir().join(format!(
            "dr-golden-{}-{}.pcap",
            case.name,
            std::process::id()
        ));
        replay(&config, &input, &output);
        let got = std::fs::read(&output).unwrap();
        let _ = std::fs::remove_file(&output);
        let want = std::fs::read(&expected).unwrap_or_default();
        if MODELLED.contains(&case.name.as_str()) {
            check_model(case, &got);
        }
        assert!(got == want, "{}: the replay differs from expected.pcap", case.name);
        let mut reader = pcap_file::pcap::PcapReader::new(&got[..]).unwrap();
        let mut records = 0;
        while let Some(packet) = reader.next_packet() {
            let packet = packet.unwrap();
            if case.name.starts_with("sched-") {
                assert_ne!(
                    &packet.data[0..6],
                    &[2, 0, 0, 0, 0, 0x14],
                    "{}: weight-0 server picked",
                    case.name
                );
            }
            records += 1;
        }
        assert_eq!(records, *transmitted, "{}", case.name);
    }
}
