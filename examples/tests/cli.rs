//! The binaries' command lines, run as built: what `--help` says, and the metrics address
//! the documentation gives.

use std::process::{Command, Output};

fn director(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dr-director")).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The address after each `--metrics` in `text`.
fn metrics_addresses(text: &str) -> Vec<String> {
    text.match_indices("--metrics ")
        .map(|(at, flag)| {
            let rest = &text[at + flag.len()..];
            let end = rest.find(|c: char| c.is_whitespace() || "`,)".contains(c));
            rest[..end.unwrap_or(rest.len())].to_string()
        })
        .collect()
}

#[test]
fn the_documented_metrics_address_is_the_same_everywhere() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let files = ["README.md", "examples/director.toml", "examples/dr-director.service"];
    for file in files {
        let text = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
        let addresses = metrics_addresses(&text);
        assert!(!addresses.is_empty(), "{file} gives no --metrics address");
        for addr in addresses {
            assert_eq!(addr, "127.0.0.1:9813", "{file}");
        }
        assert!(text.contains("http://127.0.0.1:9813/metrics") || file == "README.md", "{file}");
    }
    let help = text(&director(&["--help"]).stdout);
    assert!(help.contains("Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9813)"));
}
