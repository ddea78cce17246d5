//! Replays through `dr-replay`, which calls `handle_timeout` only before each frame, whose
//! expected outputs follow from the kernel's rules (written out per frame below), not from
//! a previous run: port reuse on CLOSE, a template due while it controls a connection, and
//! the expire-later chain continuing from the template's deadline.

use dr_core::Instant;
use dr_fixtures::frames::*;
use dr_io_pcap::PcapSink;
use std::process::Command;

const VIP: &str = "10.0.0.100";

const CONFIG: &str = r#"
[director]
mac = "02:00:00:00:00:01"

[[service]]
proto = "tcp"
vip = "10.0.0.100"
port = 80
scheduler = "rr"
persistent = 66

[[service.real]]
ip = "10.0.0.11"
mac = "02:00:00:00:00:11"

[[service.real]]
ip = "10.0.0.12"
mac = "02:00:00:00:00:12"

[[service]]
proto = "tcp"
vip = "10.0.0.100"
port = 81
scheduler = "rr"

[[service.real]]
ip = "10.0.0.11"
mac = "02:00:00:00:00:11"

[[service.real]]
ip = "10.0.0.12"
mac = "02:00:00:00:00:12"
"#;

/// Where a forwarded frame must go, by the rule, relative to an earlier frame's server.
#[derive(Clone, Copy, Debug)]
enum Goes {
    /// Wherever the scheduler sends it (the first of a series).
    Scheduled,
    /// To the same real server as frame `i`.
    SameAs(usize),
    /// To the other real server than frame `i`'s.
    OtherThan(usize),
}

#[test]
fn replayed_timers_follow_the_kernel() {
    use Goes::*;
    let frames: Vec<(u64, Vec<u8>, Goes)> = vec![
        // Port reuse on CLOSE (service 81): ESTABLISHED + RST is CLOSE (10 s); the SYN 2.8 s
        // later expires it and rr picks the other server.
        (1_000, tcp4("192.0.2.5", 5000, VIP, 81, SYN), Scheduled),
        (1_100, tcp4("192.0.2.5", 5000, VIP, 81, ACK), SameAs(0)),
        (1_200, tcp4("192.0.2.5", 5000, VIP, 81, RST), SameAs(0)),
        (4_000, tcp4("192.0.2.5", 5000, VIP, 81, SYN), OtherThan(0)),
        (4_100, tcp4("192.0.2.5", 5000, VIP, 81, ACK), OtherThan(0)),
        // Persistence 66 s (service 80). The template of 192.0.2.7 is due at 306.714 s;
        // its connection, re-armed by its second SYN, at 308.285 s. The template still
        // controls it at its deadline, so it lives to 366.714 s: the next connection at
        // 317.868 s keeps the server.
        (240_714, tcp4("192.0.2.7", 1000, VIP, 80, SYN), Scheduled),
        (248_285, tcp4("192.0.2.7", 1000, VIP, 80, SYN), SameAs(5)),
        (317_868, tcp4("192.0.2.7", 1001, VIP, 80, SYN), SameAs(5)),
        // 192.0.2.8: ESTABLISHED at 400.5 s, so live until 1300.5 s; its template (due
        // 466 s) comes up every 60 s from its deadline: 466 + 14 × 60 = 1306 s is the first
        // at or after 1300.5 s. At 1305.999 s it still holds.
        (400_000, tcp4("192.0.2.8", 1000, VIP, 80, SYN), Scheduled),
        (400_500, tcp4("192.0.2.8", 1000, VIP, 80, ACK), SameAs(8)),
        // 192.0.2.9: the same, 10 s later: its template goes at 1316 s, so a connection at
        // exactly 1316 s is scheduled afresh, and rr, whose last pick was frame 10's,
        // takes the other server.
        (410_000, tcp4("192.0.2.9", 1000, VIP, 80, SYN), Scheduled),
        (410_500, tcp4("192.0.2.9", 1000, VIP, 80, ACK), SameAs(10)),
        (1_305_999, tcp4("192.0.2.8", 1001, VIP, 80, SYN), SameAs(8)),
        (1_316_000, tcp4("192.0.2.9", 1001, VIP, 80, SYN), OtherThan(10)),
    ];

    let dir = std::env::temp_dir().join(format!("dr-replay-timers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (config, input, output) =
        (dir.join("director.toml"), dir.join("input.pcap"), dir.join("output.pcap"));
    std::fs::write(&config, CONFIG).unwrap();
    let mut sink = PcapSink::from_writer(Vec::new(), "input.pcap").unwrap();
    for (ms, frame, _) in &frames {
        sink.write(Instant::from_millis(1_700_000_000_000 + ms), frame).unwrap();
    }
    std::fs::write(&input, sink.finish().unwrap()).unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_dr-replay"))
        .args(["--quiet", "--config"])
        .arg(&config)
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let out = std::fs::read(&output).unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    let mut reader = pcap_file::pcap::PcapReader::new(&out[..]).unwrap();
    let mut macs: Vec<[u8; 6]> = Vec::new();
    while let Some(packet) = reader.next_packet() {
        macs.push(packet.unwrap().data[0..6].try_into().unwrap());
    }
    assert_eq!(macs.len(), frames.len(), "every frame is forwarded");
    let reals = [[2, 0, 0, 0, 0, 0x11], [2, 0, 0, 0, 0, 0x12]];
    for (i, (mac, (ms, _, goes))) in macs.iter().zip(&frames).enumerate() {
        assert!(reals.contains(mac), "frame {i} at {ms} ms went to {mac:02x?}");
        match *goes {
            Scheduled => {}
            SameAs(j) => assert_eq!(mac, &macs[j], "frame {i} at {ms} ms"),
            OtherThan(j) => assert_ne!(mac, &macs[j], "frame {i} at {ms} ms"),
        }
    }
}
