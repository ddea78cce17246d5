//! The bundled demo: the committed capture is exactly what its generator writes, and the
//! README's command on it gives the expected outcome.

use std::process::Command;

fn scratch(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("dr-demo-{name}-{}.pcap", std::process::id()))
}

#[test]
fn the_committed_capture_is_what_the_generator_writes() {
    let out = scratch("gen");
    let run = Command::new(env!("CARGO_BIN_EXE_dr-demo-capture")).arg(&out).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let generated = std::fs::read(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    let committed = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/data/demo.pcap")).unwrap();
    assert!(
        generated == committed,
        "examples/data/demo.pcap is stale: regenerate it with dr-demo-capture"
    );
}

#[test]
fn the_readme_command_on_the_demo() {
    let out = scratch("replay");
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/data");
    let run = Command::new(env!("CARGO_BIN_EXE_dr-replay"))
        .arg("--config")
        .arg(format!("{data}/demo.toml"))
        .arg(format!("{data}/demo.pcap"))
        .arg("-o")
        .arg(&out)
        .arg("--json")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&out);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["frames"]["replies"], 3, "ARP and ND for the VIPs, and the ping");
    assert_eq!(report["events"]["icmp_relayed"], 1);
    assert_eq!(report["events"]["fragments_forwarded"], 2);
    // Every real server's MAC is configured, and nothing in the capture claims one.
    assert_eq!(report["events"]["neighbours_learned"], 0);
    assert_eq!(report["events"]["neighbours_rejected"], 0);
    assert_eq!(report["services"][0]["conns"], 401);
    assert_eq!(report["services"][0]["reals"][0]["conns"], 0, "the quiesced real server");
    assert_eq!(report["services"][2]["conns"], 60);
    for reason in
        ["malformed-ethernet", "too-many-vlan-tags", "ipv4-checksum", "malformed-tcp", "own-frame"]
    {
        assert_eq!(report["drops"][reason], 1, "{reason}");
    }
    for reason in ["not-vip", "no-service", "icmp", "no-connection"] {
        assert_eq!(report["passes"][reason], 1, "{reason}");
    }
}
