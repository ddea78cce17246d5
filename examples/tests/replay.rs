//! dr-replay end to end: a capture made here with smoltcp, replayed twice, the output read
//! back by two independent readers (tcpdump and etherparse over pcap-file's raw records).

use dr_fixtures::frames::{ACK, DIRECTOR_MAC, ROUTER_MAC, SYN, arp_request, tcp4};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const CONFIG: &str = r#"
[director]
mac = "02:00:00:00:00:01"
capacity = 1024

[[service]]
proto = "tcp"
vip = "10.0.0.100"
port = 80
scheduler = "rr"

[[service.real]]
ip = "10.0.0.11"
mac = "02:00:00:00:00:11"

[[service.real]]
ip = "10.0.0.12"
mac = "02:00:00:00:00:12"
"#;

/// A scratch directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("dr-replay-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Six clients' SYN and ACK, an ARP request for the VIP, a stray ACK and a runt frame.
fn write_input(path: &Path) -> usize {
    let mut frames = vec![arp_request("10.0.0.100")];
    for c in 1..=6 {
        let client = format!("192.0.2.{c}");
        frames.push(tcp4(&client, 40000, "10.0.0.100", 80, SYN));
        frames.push(tcp4(&client, 40000, "10.0.0.100", 80, ACK));
    }
    frames.push(tcp4("198.51.100.1", 1, "10.0.0.100", 80, ACK));
    frames.push(vec![0u8; 12]);
    let file = std::fs::File::create(path).unwrap();
    let mut writer = PcapWriter::with_header(file, PcapHeader::default()).unwrap();
    for (i, frame) in frames.iter().enumerate() {
        let ts = Duration::new(1_700_000_000, 0) + Duration::from_millis(i as u64 * 10);
        writer.write_packet(&PcapPacket::new(ts, frame.len() as u32, frame)).unwrap();
    }
    frames.len()
}

fn dr_replay(args: &[&Path]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dr-replay"));
    cmd.arg("--config").arg(args[0]).arg(args[1]).arg("-o").arg(args[2]);
    cmd.output().unwrap()
}

#[test]
fn replays_are_identical_and_readable_by_other_tools() {
    let dir = Scratch::new("golden");
    let (config, input, a, b) =
        (dir.path("c.toml"), dir.path("in.pcap"), dir.path("a.pcap"), dir.path("b.pcap"));
    std::fs::write(&config, CONFIG).unwrap();
    write_input(&input);
    let run = dr_replay(&[&config, &input, &a]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let stdout = String::from_utf8(run.stdout).unwrap();
    assert!(stdout.starts_with("IP Virtual Server version 1.2.1 (size=1024)\n"), "{stdout}");
    assert!(
        stdout.contains(
            "TCP  10.0.0.100:80                       6       12        0      480        0\n"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("frames: 12 forwarded, 1 replies, 1 passed, 1 dropped\n"), "{stdout}");
    assert!(stdout.contains("drop malformed-ethernet"), "{stdout}");
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("drop ")).count(),
        dr_core::DropReason::ALL.len()
    );
    assert!(dr_replay(&[&config, &input, &b]).status.success());
    let (a_bytes, b_bytes) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_eq!(a_bytes, b_bytes, "two replays of the same capture differ");

    // etherparse over pcap-file's records: 13 frames, the reply first, all with valid headers.
    let mut reader = PcapReader::new(&a_bytes[..]).unwrap();
    let mut records = Vec::new();
    while let Some(packet) = reader.next_packet() {
        let packet = packet.unwrap();
        etherparse::SlicedPacket::from_ethernet(&packet.data).unwrap();
        records.push((packet.timestamp, packet.data.into_owned()));
    }
    assert_eq!(records.len(), 13);
    assert_eq!(&records[0].1[0..6], &ROUTER_MAC, "the ARP reply goes back to the router");
    let reals = [[0x02, 0, 0, 0, 0, 0x11], [0x02, 0, 0, 0, 0, 0x12]];
    for (ts, frame) in &records[1..] {
        assert!(reals.iter().any(|m| frame[0..6] == *m));
        assert_eq!(&frame[6..12], &DIRECTOR_MAC);
        assert!(ts.as_secs() == 1_700_000_000);
    }

    // tcpdump, a reader that shares no code with us. CI installs it; elsewhere it is optional.
    match Command::new("tcpdump").arg("-nn").arg("-r").arg(&a).output() {
        Ok(out) => {
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let text = String::from_utf8_lossy(&out.stdout);
            assert_eq!(text.lines().count(), 13, "{text}");
            assert!(text.contains("ARP, Reply 10.0.0.100 is-at 02:00:00:00:00:01"), "{text}");
            assert!(text.contains("192.0.2.1.40000 > 10.0.0.100.80: Flags [S]"), "{text}");
        }
        Err(e) => assert!(std::env::var_os("CI").is_none(), "tcpdump is required in CI: {e}"),
    }
}

#[test]
fn json_report_carries_the_same_counts() {
    let dir = Scratch::new("json");
    let (config, input, out) = (dir.path("c.toml"), dir.path("in.pcap"), dir.path("out.pcap"));
    std::fs::write(&config, CONFIG).unwrap();
    write_input(&input);
    let run = Command::new(env!("CARGO_BIN_EXE_dr-replay"))
        .arg("--config")
        .arg(&config)
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .arg("--json")
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["services"][0]["conns"], 6);
    assert_eq!(report["services"][0]["inbytes"], 480);
    assert_eq!(report["services"][0]["reals"].as_array().unwrap().len(), 2);
    assert_eq!(report["frames"]["forwarded"], 12);
    assert_eq!(report["drops"]["malformed-ethernet"], 1);
    assert_eq!(report["passes"]["no-connection"], 1);
    assert!(run.stderr.is_empty(), "no progress bar when stderr is not a terminal");
}

#[test]
fn rules_give_the_same_replay_as_the_configuration() {
    let dir = Scratch::new("rules");
    let (config, rules, input) = (dir.path("c.toml"), dir.path("rules"), dir.path("in.pcap"));
    let (from_config, from_rules) = (dir.path("a.pcap"), dir.path("b.pcap"));
    std::fs::write(&config, CONFIG).unwrap();
    std::fs::write(&rules, "-A -t 10.0.0.100:80 -s rr\n-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 1\n-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 1\n").unwrap();
    write_input(&input);
    assert!(dr_replay(&[&config, &input, &from_config]).status.success());
    let run = Command::new(env!("CARGO_BIN_EXE_dr-replay"))
        .arg("--rules")
        .arg(&rules)
        .args([
            "--mac",
            "02:00:00:00:00:01",
            "--neigh",
            "10.0.0.11=02:00:00:00:00:11",
            "--neigh",
            "10.0.0.12=02:00:00:00:00:12",
        ])
        .arg(&input)
        .arg("-o")
        .arg(&from_rules)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(std::fs::read(&from_config).unwrap(), std::fs::read(&from_rules).unwrap());
    // --rules without --mac is a usage error.
    let run = Command::new(env!("CARGO_BIN_EXE_dr-replay"))
        .arg("--rules")
        .arg(&rules)
        .arg(&input)
        .arg("-o")
        .arg(&from_rules)
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("--mac"));
}

#[test]
fn errors_name_the_file_and_line() {
    let dir = Scratch::new("errors");
    let (config, input, out) = (dir.path("c.toml"), dir.path("in.pcap"), dir.path("out.pcap"));
    std::fs::write(&config, CONFIG.replace("port = 80", "port = 80\nweight = 2")).unwrap();
    write_input(&input);
    let run = dr_replay(&[&config, &input, &out]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("c.toml: line 10"), "{stderr}");
    assert!(stderr.contains("weight"), "{stderr}");

    std::fs::write(&config, CONFIG).unwrap();
    std::fs::write(&input, b"not a capture").unwrap();
    let run = dr_replay(&[&config, &input, &out]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("in.pcap: not a pcap or pcapng capture"));
}
