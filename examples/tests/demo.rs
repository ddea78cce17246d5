//! The bundled demo: the README's command on it gives the expected outcome (that the
//! committed capture is exactly what its generator writes is checked in dr-fixtures).

use std::process::Command;

fn scratch(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("dr-demo-{name}-{}.pcap", std::process::id()))
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

/// The README's demo command, as written there.
fn readme_demo_command() -> String {
    let readme = include_str!("../../README.md");
    let prefix = "cargo run --release -p dr-examples --bin dr-replay -- ";
    let lines: Vec<&str> = readme.lines().filter(|l| l.starts_with(prefix)).collect();
    assert_eq!(lines.len(), 1, "one demo command in the README: {lines:?}");
    lines[0].to_string()
}

#[test]
fn the_readme_demo_command_needs_no_target_directory() {
    let command = readme_demo_command();
    let args: Vec<&str> = command.split_once(" -- ").unwrap().1.split_whitespace().collect();
    let out = args[args.iter().position(|a| *a == "-o").unwrap() + 1];
    let readme = include_str!("../../README.md");
    assert!(readme.contains(&format!("transmitted to `{out}`")), "the README names {out}");
    let ci = include_str!("../../.ci/run");
    assert!(ci.contains(&command), ".ci/run runs the README's command");

    // A checkout whose build directory is elsewhere (CARGO_TARGET_DIR): only the sources.
    let dir = std::env::temp_dir().join(format!("dr-demo-checkout-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_MANIFEST_DIR"), dir.join("examples")).unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_dr-replay"))
        .current_dir(&dir)
        .args(&args)
        .output()
        .unwrap();
    let written = std::fs::metadata(dir.join(out)).map(|m| m.len());
    let _ = std::fs::remove_dir_all(&dir);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(written.unwrap() > 24, "the output capture holds the transmitted frames");
}
