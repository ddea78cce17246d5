//! The binaries' command lines, run as built: what `--help` and `--version` say, errors said
//! once, and the metrics address the documentation gives.

use std::process::{Command, Output};

fn director(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dr-director")).args(args).output().unwrap()
}

fn replay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dr-replay")).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn scratch(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("dr-cli-{name}-{}", std::process::id()))
}

#[test]
fn version_names_the_binary() {
    let version = env!("CARGO_PKG_VERSION");
    let out = director(&["--version"]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), format!("dr-director {version}\n"));
    let out = replay(&["--version"]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), format!("dr-replay {version}\n"));
}

#[test]
fn help_shows_the_ctl_subcommand_and_its_usage() {
    let out = director(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    assert!(help.starts_with("A live LVS Direct Routing director\n"), "{help}");
    assert!(
        help.contains(
            "Usage: dr-director [OPTIONS] <--config <CONFIG.toml>|--rules <FILE>|--keepalived <FILE>>\n       dr-director <COMMAND>\n"
        ),
        "{help}"
    );
    assert!(
        help.lines()
            .any(|l| l.starts_with("  ctl  Send an ipvsadm command to a running dr-director")),
        "{help}"
    );
    let out = director(&["ctl", "--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    assert!(help.contains("Usage: dr-director ctl [OPTIONS] <IPVSADM-ARGS>...\n"), "{help}");
    assert!(help.contains("--socket <PATH>"), "{help}");
    // The subcommand and the director's own options do not mix.
    let out = director(&["--iface", "eth0", "ctl", "-L", "-n"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot be used with"), "{}", text(&out.stderr));
}

#[test]
fn ctl_takes_ipvsadm_options_and_says_an_error_once() {
    let socket = scratch("missing.sock");
    let socket = socket.to_str().unwrap();
    // -L and -n reach the control socket as ipvsadm options, not as ctl's own.
    let out = director(&["ctl", "--socket", socket, "-L", "-n"]);
    assert_eq!(out.status.code(), Some(1));
    let says = text(&out.stderr);
    assert_eq!(says.lines().count(), 1, "{says}");
    assert!(says.starts_with(&format!("dr-director ctl: control socket {socket}: ")), "{says}");
}

#[test]
fn a_fatal_error_of_the_director_is_said_once() {
    let control = scratch("control.sock");
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/director.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_dr-director"))
        .args(["--iface", "dr-none0", "--config", config, "--control"])
        .arg(&control)
        .env("DR_LOG", "info")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&control);
    assert_eq!(out.status.code(), Some(1));
    let says = text(&out.stderr);
    assert_eq!(says.lines().count(), 1, "{says}");
    assert!(says.contains(" ERROR "), "{says}");
    // Root is told the interface does not exist; anyone else, that packet sockets need root.
    assert!(
        says.contains("no interface named \"dr-none0\"") || says.contains("not permitted"),
        "{says}"
    );
}

#[test]
fn an_error_of_the_replay_is_said_once() {
    let missing = scratch("missing.toml");
    let out = replay(&["--config", missing.to_str().unwrap(), "in.pcap", "-o", "out.pcap"]);
    assert_eq!(out.status.code(), Some(1));
    let says = text(&out.stderr);
    assert_eq!(
        says,
        format!("dr-replay: {}: No such file or directory (os error 2)\n", missing.display())
    );
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

#[test]
fn receive_ring_options_are_checked_and_name_the_option() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/director.toml");
    let run = |extra: &[&str]| {
        let mut args = vec!["--iface", "dr-none0", "--config", config];
        args.extend_from_slice(extra);
        director(&args)
    };
    for (extra, names) in [
        (&["--busy-poll", "1001"][..], "--busy-poll <USEC>"),
        (&["--busy-poll", "many"][..], "--busy-poll <USEC>"),
        (&["--ring", "blocks", "--block-timeout", "0"][..], "--block-timeout <MS>"),
        (&["--ring", "v4"][..], "--ring <RING>"),
        (&["--frame-size", "1024"][..], "--frame-size <BYTES>"),
    ] {
        let out = run(extra);
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        let says = text(&out.stderr);
        assert!(says.contains(&format!("for '{names}'")), "{extra:?}: {says}");
    }
    // Options that do not go together are refused before anything is opened.
    for (extra, says_what) in [
        (&["--block-timeout", "5"][..], "--block-timeout applies to --ring blocks only"),
        (
            &["--ring", "blocks", "--frame-size", "4096"][..],
            "--frame-size applies to --ring frames",
        ),
        (&["--frame-size", "4100"][..], "--frame-size 4100: not a multiple of 16"),
        (&["--backend", "afxdp", "--frame-size", "4096"][..], "apply to --backend afpacket only"),
        (&["--backend", "afxdp", "--ring", "blocks"][..], "apply to --backend afpacket only"),
    ] {
        let control = scratch("ring.sock");
        let out = Command::new(env!("CARGO_BIN_EXE_dr-director"))
            .args(["--iface", "dr-none0", "--config", config])
            .args(extra)
            .arg("--control")
            .arg(&control)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&control);
        assert_eq!(out.status.code(), Some(1), "{extra:?}");
        let says = text(&out.stderr);
        assert!(says.contains(says_what), "{extra:?}: {says}");
    }
}

#[test]
fn check_config_prints_what_a_keepalived_file_would_run() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/keepalived/tgentimc-mysql.conf");
    let out = director(&["--check-config", "--keepalived", path]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "IP Virtual Server version 1.2.1 (size=1048576)\n\
         Prot LocalAddress:Port Scheduler Flags\n  \
         -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
         TCP  172.16.133.250:3306 rr persistent 60\n  \
         -> 172.16.133.200:3306          Route   3      0          0         \n"
    );
    // The warnings go to standard error, each with its line.
    assert!(text(&out.stderr).contains("line 91: TCP_CHECK: unknown keyword connetc_port"));
    // A file that does not load: the error with its line, and exit status 1.
    let path =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/keepalived/xusxlinux-apiserver.conf");
    let out = director(&["--check-config", "--keepalived", path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("line 22: lb_algo: loadbalance: unknown scheduler"));
    // The TOML file too.
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/director.toml");
    let out = director(&["--check-config", "--config", config]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("IP Virtual Server version 1.2.1"));
}

#[test]
fn sync_flags_that_cannot_work_are_refused_with_the_fix() {
    let config = scratch("sync.toml");
    std::fs::write(&config, "[[service]]\nproto = \"tcp\"\nvip = \"10.0.0.100\"\nport = 80\n")
        .unwrap();
    let path = config.to_str().unwrap();
    let out = director(&["--iface", "lo", "--config", path, "--sync", "sideways"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("\"sideways\" is not a sync mode: give master, backup or both"),
        "{}",
        text(&out.stderr)
    );
    let out = director(&[
        "--iface",
        "lo",
        "--config",
        path,
        "--sync",
        "backup",
        "--sync-group",
        "10.0.0.1",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(
            "--sync-group 10.0.0.1: not a multicast address; give one in 224.0.0.0/4 (the \
             kernel's is 224.0.0.81)"
        ),
        "{}",
        text(&out.stderr)
    );
    let out = director(&["--iface", "lo", "--config", path, "--sync-maxlen", "1000"]);
    assert!(!out.status.success(), "a sync flag without --sync");
    assert!(text(&out.stderr).contains("--sync <master|backup|both>"), "{}", text(&out.stderr));
    let _ = std::fs::remove_file(&config);
}

#[test]
fn check_config_warns_of_ops_on_a_tcp_service() {
    let config = scratch("ops.toml");
    std::fs::write(
        &config,
        "[[service]]\nproto = \"udp\"\nvip = \"10.0.0.100\"\nport = 53\nops = true\n\n\
         [[service]]\nproto = \"tcp\"\nvip = \"10.0.0.100\"\nport = 80\nops = true\n",
    )
    .unwrap();
    let path = config.to_str().unwrap();
    let out = director(&["--check-config", "--config", path]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "IP Virtual Server version 1.2.1 (size=1048576)\n\
         Prot LocalAddress:Port Scheduler Flags\n  \
         -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
         TCP  10.0.0.100:80 wlc\n\
         UDP  10.0.0.100:53 wlc ops\n"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{path}: line 11: service 2 (10.0.0.100:80): ops = true on a TCP service is not \
             applied"
        )),
        "{stderr}"
    );
    assert_eq!(stderr.matches("ops = true").count(), 1, "{stderr}");
    let _ = std::fs::remove_file(&config);
}

#[test]
fn the_keepalived_config_id_picks_the_conditional_lines() {
    // keepalived.conf(5): `@ID` lines are read only when ID is the config id (-i), `@^ID`
    // lines only when it is not; ${_INSTANCE} is the id.
    let dir = scratch("config-id");
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("keepalived.conf");
    std::fs::write(
        &conf,
        "$VIP=10.0.0.100\n@lb1 $REAL=10.0.0.11\n@^lb1 $REAL=10.0.0.12\n\
         virtual_server $VIP 80 {\n lb_algo rr\n lb_kind DR\n real_server $REAL 80 {\n }\n\
         @lb1 real_server 10.0.0.13 80 {\n @lb1 }\n}\n",
    )
    .unwrap();
    let path = conf.to_str().unwrap();
    let real = |out: &Output| -> Vec<String> {
        text(&out.stdout)
            .lines()
            .filter(|l| l.trim_start().starts_with("-> 10."))
            .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
            .collect()
    };
    let out = director(&["--check-config", "--keepalived", path, "--keepalived-config-id", "lb1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(real(&out), ["10.0.0.11:80", "10.0.0.13:80"]);
    let out = director(&["--check-config", "--keepalived", path, "--keepalived-config-id", "lb2"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(real(&out), ["10.0.0.12:80"]);
    // The replay takes it too; without --keepalived it is refused.
    let out = replay(&["--keepalived-config-id", "lb1", "in.pcap", "-o", "out.pcap"]);
    assert!(!out.status.success());
    let _ = std::fs::remove_dir_all(&dir);
}
