//! dr-replay over a capture of UDP datagrams to a one-packet (`ops`) rr service: every
//! datagram of the one flow is scheduled on its own, so the servers alternate, newest added
//! (.12) first; a fragmented datagram goes whole to one server; nothing is left in the
//! table. The same capture through the same services from a rules file and a keepalived
//! file gives the same output, byte for byte. Expected destinations are worked by hand.

use dr_fixtures::frames::{DIRECTOR_MAC, udp4, udp4_fragments};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const CONFIG: &str = r#"
[director]
mac = "02:00:00:00:00:01"
capacity = 1024

[[service]]
proto = "udp"
vip = "10.0.0.100"
port = 53
scheduler = "rr"
ops = true

[[service.real]]
ip = "10.0.0.11"
mac = "02:00:00:00:00:11"

[[service.real]]
ip = "10.0.0.12"
mac = "02:00:00:00:00:12"

[[service]]
proto = "tcp"
vip = "10.0.0.100"
port = 80
ops = true
"#;

const RULES: &str = "\
-A -u 10.0.0.100:53 -s rr -o
-a -u 10.0.0.100:53 -r 10.0.0.11:53 -g -w 1
-a -u 10.0.0.100:53 -r 10.0.0.12:53 -g -w 1
";

const KEEPALIVED: &str = "\
virtual_server 10.0.0.100 53 {
    lb_algo rr
    lb_kind DR
    protocol UDP
    ops
    real_server 10.0.0.11 53 {
    }
    real_server 10.0.0.12 53 {
    }
}
";

const R11: [u8; 6] = [2, 0, 0, 0, 0, 0x11];
const R12: [u8; 6] = [2, 0, 0, 0, 0, 0x12];

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dr-replay-ops-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Six datagrams of one flow, a datagram of the same flow in three fragments, one more.
fn write_input(path: &Path) {
    let mut frames: Vec<Vec<u8>> =
        (0..6).map(|_| udp4("192.0.2.1", 5353, "10.0.0.100", 53, b"q")).collect();
    let fragments = udp4_fragments("192.0.2.1", 5353, "10.0.0.100", 53, &[7; 3000], 77, 1480);
    assert_eq!(fragments.len(), 3);
    frames.extend(fragments);
    frames.push(udp4("192.0.2.1", 5353, "10.0.0.100", 53, b"q"));
    let file = std::fs::File::create(path).unwrap();
    let mut writer = PcapWriter::with_header(file, PcapHeader::default()).unwrap();
    for (i, frame) in frames.iter().enumerate() {
        let ts = Duration::new(1_700_000_000, 0) + Duration::from_millis(i as u64 * 10);
        writer.write_packet(&PcapPacket::new(ts, frame.len() as u32, frame)).unwrap();
    }
}

fn replay(loader: &[&str], input: &Path, output: &Path) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_dr-replay"))
        .args(loader)
        .arg(input)
        .arg("-o")
        .arg(output)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn each_datagram_of_an_ops_flow_is_scheduled_on_its_own() {
    let dir = scratch();
    let (config, input, out) = (dir.join("c.toml"), dir.join("in.pcap"), dir.join("out.pcap"));
    std::fs::write(&config, CONFIG).unwrap();
    write_input(&input);
    let run = replay(&["--config", config.to_str().unwrap()], &input, &out);

    let bytes = std::fs::read(&out).unwrap();
    let mut reader = PcapReader::new(&bytes[..]).unwrap();
    let mut sent_to = Vec::new();
    while let Some(packet) = reader.next_packet() {
        let data = packet.unwrap().data.into_owned();
        assert_eq!(&data[6..12], &DIRECTOR_MAC);
        sent_to.push(<[u8; 6]>::try_from(&data[0..6]).unwrap());
    }
    // rr per datagram, .12 first; the fragmented seventh datagram whole to .12.
    assert_eq!(sent_to, [R12, R11, R12, R11, R12, R11, R12, R12, R12, R11]);

    let stdout = String::from_utf8(run.stdout).unwrap();
    // 8 datagrams: 8 connections and packets; 7 × (20 + 8 + 1) + (20 + 8 + 3000) bytes.
    let line = format!("{:<33}{:>9}{:>9}{:>9}{:>9}{:>9}\n", "UDP  10.0.0.100:53", 8, 8, 0, 3231, 0);
    assert!(stdout.contains(&line), "{stdout}");
    assert!(
        stdout.contains("connections: 0 created, 0 expired (0 evicted, 0 reused), 0 in the table"),
        "{stdout}"
    );
    let stderr = String::from_utf8(run.stderr).unwrap();
    let json = Command::new(env!("CARGO_BIN_EXE_dr-replay"))
        .arg("--config")
        .arg(&config)
        .arg(&input)
        .arg("-o")
        .arg(dir.join("json.pcap"))
        .arg("--json")
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["events"]["one_packet_scheduled"], 8, "{report}");
    assert_eq!(report["events"]["conns_created"], 0, "{report}");
    assert!(
        stderr.contains(&format!(
            "dr-replay: warning: {}: line 25: service 2 (10.0.0.100:80): ops = true on a TCP \
             service is not applied",
            config.display()
        )),
        "{stderr}"
    );

    // The same services from ipvsadm rules and from keepalived.conf: the same output.
    let (rules, keepalived) = (dir.join("rules"), dir.join("keepalived.conf"));
    std::fs::write(&rules, RULES).unwrap();
    std::fs::write(&keepalived, KEEPALIVED).unwrap();
    let neigh = [
        "--mac",
        "02:00:00:00:00:01",
        "--neigh",
        "10.0.0.11=02:00:00:00:00:11",
        "--neigh",
        "10.0.0.12=02:00:00:00:00:12",
    ];
    for (flag, path) in [("--rules", &rules), ("--keepalived", &keepalived)] {
        let other = dir.join(format!("{}.pcap", &flag[2..]));
        let mut args = vec![flag, path.to_str().unwrap()];
        args.extend(neigh);
        replay(&args, &input, &other);
        assert_eq!(std::fs::read(&other).unwrap(), bytes, "{flag}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
