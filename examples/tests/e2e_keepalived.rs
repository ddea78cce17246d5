//! End to end, as root (CI runs it so): `dr-director --keepalived FILE` on the LAN of
//! network namespaces of `lan/mod.rs`, with keepalived's checkers against the real servers'
//! HTTP servers: the services come up and forward; a real server whose server stops is
//! removed (with `inhibit_on_failure`, set to weight 0) and comes back when its check
//! passes; `alpha` starts the real servers down until their first check passes; an HTTP
//! body that no longer has its `digest` takes its server out; SIGHUP applies an edited file
//! while a connection open to a kept server goes on.
//!
//! It runs on both backends, as the tests of `e2e.rs` do. Only addresses inside those
//! namespaces are used; everything is torn down when the test ends, even when it fails;
//! every wait is bounded.

mod lan;

use lan::{Backend, Lan, VIP, ip, ready, run};
use std::ffi::OsStr;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A second VIP, on the real servers' `lo` too, for the service with `inhibit_on_failure`.
const VIP2: &str = "10.77.0.101";

/// The MD5 of r2's `/who` ("r2"), as `genhash` prints it.
const R2_DIGEST: &str = "d279186428a75016b17e4df5ea43d080";

/// The file dr-director starts with. 10.77.0.100:80: `alpha`, rr, r1 by a TCP connect, r2
/// by HTTP_GET with its status and digest, r3 by a TCP connect. 10.77.0.101:80:
/// `inhibit_on_failure`, wrr, r1 (weight 1) and r3 (weight 2) by HTTP_GET's status.
fn config() -> String {
    format!(
        r#"! dr-director's end-to-end test
global_defs {{
    router_id dr_e2e     # read, and of no consequence to a director
}}

virtual_server {VIP} 80 {{
    delay_loop 1
    lb_algo rr
    lb_kind DR
    protocol TCP
    alpha
    retry 1
    delay_before_retry 0.2

    real_server 10.77.0.11 80 {{
        weight 1
        TCP_CHECK {{
            connect_timeout 1
        }}
    }}
    real_server 10.77.0.12 80 {{
        weight 1
        HTTP_GET {{
            url {{
                path /who
                status_code 200
                digest {R2_DIGEST}
            }}
            connect_timeout 1
        }}
    }}
    real_server 10.77.0.13 80 {{
        weight 1
        TCP_CHECK {{
            connect_timeout 1
        }}
    }}
}}

virtual_server {VIP2} 80 {{
    delay_loop 1
    lb_algo wrr
    lb_kind DR
    protocol TCP
    inhibit_on_failure
    retry 1
    delay_before_retry 0.2

    real_server 10.77.0.11 80 {{
        weight 1
        HTTP_GET {{
            url {{
                path /who
                status_code 200
            }}
            connect_timeout 1
        }}
    }}
    real_server 10.77.0.13 80 {{
        weight 2
        HTTP_GET {{
            url {{
                path /who
                status_code 200
            }}
            connect_timeout 1
        }}
    }}
}}
"#
    )
}

/// The file after the edit SIGHUP applies: r1 weight 3 in the second service, and r2 added
/// to it (weight 1, a TCP connect).
fn edited() -> String {
    let config = config();
    let (first, second) = config.split_at(config.find(&format!("virtual_server {VIP2}")).unwrap());
    let second = second.replacen("        weight 1\n", "        weight 3\n", 1).replacen(
        "    real_server 10.77.0.13 80 {",
        "    real_server 10.77.0.12 80 {\n        weight 1\n        TCP_CHECK {\n            \
         connect_timeout 1\n        }\n    }\n    real_server 10.77.0.13 80 {",
        1,
    );
    format!("{first}{second}")
}

/// Opens a connection to the VIP given, says so, waits for a file to appear, then sends a
/// request on it and prints the body of the answer.
const HELD_CLIENT: &str = r#"
import os, socket, sys, time
s = socket.create_connection((sys.argv[1], 80), timeout=10)
print("connected", flush=True)
deadline = time.time() + 20
while not os.path.exists(sys.argv[2]) and time.time() < deadline:
    time.sleep(0.05)
s.sendall(b"GET /who HTTP/1.0\r\n\r\n")
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print(data.split(b"\r\n\r\n", 1)[-1].decode())
"#;

/// Each service's real servers and their weights, from `ctl -L -n`:
/// `("10.77.0.100:80", "10.77.0.11:80", 1)`; None while the control socket does not answer.
fn table(lan: &Lan) -> Option<Vec<(String, String, u32)>> {
    let out = lan.ctl(&["-L", "-n"]);
    if !out.status.success() {
        return None;
    }
    let mut service = String::new();
    let mut rows = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["TCP", vip, ..] => service = vip.to_string(),
            ["->", real, "Route", weight, ..] => {
                rows.push((service.clone(), real.to_string(), weight.parse().unwrap()));
            }
            _ => {}
        }
    }
    Some(rows)
}

/// The weight of `real` (port 80) in the service of `vip` (port 80), if it is in the table.
fn weight(rows: &[(String, String, u32)], vip: &str, real: &str) -> Option<u32> {
    let (service, real) = (format!("{vip}:80"), format!("{real}:80"));
    rows.iter().find(|(s, r, _)| *s == service && *r == real).map(|(_, _, w)| *w)
}

/// Waits (at most 15 s) until the table is as `wanted` says: each (VIP, real server,
/// weight), `None` for a real server not in the table.
fn wait_table(lan: &Lan, wanted: &[(&str, &str, Option<u32>)], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let rows = table(lan).unwrap_or_default();
        if !rows.is_empty() && wanted.iter().all(|(vip, real, w)| weight(&rows, vip, real) == *w) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: the table is {rows:#?}\n{}", lan.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// How many lines of the log say `message` of `real` in the service of `vip`.
fn said(log: &str, message: &str, vip: &str, real: &str) -> usize {
    let (service, real) = (format!(" {vip}:80 "), format!("real={real}"));
    log.lines().filter(|l| l.contains(message) && l.contains(&service) && l.contains(&real)).count()
}

/// The real servers that answer `count` new connections to `vip`, in order.
fn answers(lan: &Lan, vip: &str, count: usize) -> Vec<String> {
    let url = format!("http://{vip}/who");
    (0..count)
        .map(|_| lan.get(&url).unwrap_or_else(|| panic!("a request failed:\n{}", lan.log())))
        .collect()
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

#[test]
#[cfg_attr(not(dr_root), ignore = "needs root (CAP_NET_ADMIN, CAP_NET_RAW)")]
fn keepalived_checkers_drive_the_table_on_afpacket() {
    keepalived_checkers_drive_the_table(Backend::AfPacket);
}

#[test]
#[cfg_attr(not(dr_root), ignore = "needs root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF)")]
fn keepalived_checkers_drive_the_table_on_afxdp() {
    keepalived_checkers_drive_the_table(Backend::AfXdp);
}

fn keepalived_checkers_drive_the_table(backend: Backend) {
    if !ready() {
        return;
    }
    let started = Instant::now();
    let mut lan = Lan::new("k", backend, 1);
    for i in 1..=3 {
        ip(&["-n", &lan.ns(&format!("r{i}")), "addr", "add", &format!("{VIP2}/32"), "dev", "lo"]);
    }
    // r3 serves nothing yet.
    lan.stop_serving("r3");
    let file = lan.dir.join("keepalived.conf");
    std::fs::write(&file, config()).unwrap();
    let pid = lan.director_with(&[OsStr::new("--keepalived"), file.as_os_str()], &[]);
    let (r1, r2, r3) = ("10.77.0.11", "10.77.0.12", "10.77.0.13");

    // alpha: every real server of the first service starts down and is added once its
    // first check passes; r3's never does, so it never is. The second service's start up:
    // r3 is inhibited when its check fails, not removed.
    wait_table(
        &lan,
        &[
            (VIP, r1, Some(1)),
            (VIP, r2, Some(1)),
            (VIP, r3, None),
            (VIP2, r1, Some(1)),
            (VIP2, r3, Some(0)),
        ],
        "the services up, r3 down in both",
    );
    let log = lan.log();
    assert_eq!(said(&log, "real server is up: added", VIP, r1), 1, "{log}");
    assert_eq!(said(&log, "real server is up: added", VIP, r2), 1, "{log}");
    assert_eq!(said(&log, "real server is down", VIP, r3), 0, "never up, never removed: {log}");
    assert_eq!(said(&log, "real server is up", VIP2, r1), 0, "up from the start: {log}");
    assert_eq!(said(&log, "real server is down: inhibited (weight 0)", VIP2, r3), 1, "{log}");
    // Both forward; rr takes r1 and r2 in turn.
    assert_eq!(sorted(answers(&lan, VIP, 4)), ["r1", "r1", "r2", "r2"], "{}", lan.log());
    assert_eq!(answers(&lan, VIP2, 3), ["r1", "r1", "r1"], "r3 at weight 0: {}", lan.log());

    // r3 serves: added to the first service, its weight back in the second.
    lan.serve("r3");
    wait_table(&lan, &[(VIP, r3, Some(1)), (VIP2, r3, Some(2))], "r3 up");
    assert_eq!(sorted(answers(&lan, VIP, 3)), ["r1", "r2", "r3"], "{}", lan.log());
    assert_eq!(sorted(answers(&lan, VIP2, 3)), ["r1", "r3", "r3"], "{}", lan.log());

    // r3 stops: removed from the first, weight 0 in the second; back when it serves again.
    lan.stop_serving("r3");
    wait_table(&lan, &[(VIP, r3, None), (VIP2, r3, Some(0))], "r3 down again");
    let log = lan.log();
    assert_eq!(said(&log, "real server is down: removed", VIP, r3), 1, "{log}");
    assert_eq!(said(&log, "real server is down: inhibited (weight 0)", VIP2, r3), 2, "{log}");
    for who in answers(&lan, VIP, 4).into_iter().chain(answers(&lan, VIP2, 3)) {
        assert_ne!(who, "r3", "a server down got a connection:\n{}", lan.log());
    }
    lan.serve("r3");
    wait_table(&lan, &[(VIP, r3, Some(1)), (VIP2, r3, Some(2))], "r3 back");
    assert_eq!(said(&lan.log(), "real server is up: added", VIP, r3), 2, "{}", lan.log());

    // HTTP_GET's digest: r2's body changes, r2 is removed; its body back, r2 is back.
    let who = lan.dir.join("r2/who");
    std::fs::write(&who, "r2, changed").unwrap();
    wait_table(&lan, &[(VIP, r2, None)], "r2's digest no longer matches");
    std::fs::write(&who, "r2").unwrap();
    wait_table(&lan, &[(VIP, r2, Some(1))], "r2's digest matches again");

    // SIGHUP with an edited file (r1 weight 3 in the second service, r2 added to it) while
    // a connection to the second service is open: the kept servers stay as they are (r3
    // up, no alpha replayed), the connection goes on.
    let go = lan.dir.join("send-now");
    let mut held = lan
        .exec("c", "python3")
        .args(["-c", HELD_CLIENT, VIP2])
        .arg(&go)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 client");
    let mut out = std::io::BufReader::new(held.stdout.take().unwrap());
    lan.children.push(held);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "connected\n", "the held connection: {}", lan.log());
    std::fs::write(&file, edited()).unwrap();
    run(Command::new("kill").args(["-HUP", &pid.to_string()]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lan.log().contains("configuration reloaded") {
        assert!(Instant::now() < deadline, "no reload:\n{}", lan.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_table(
        &lan,
        &[
            (VIP, r1, Some(1)),
            (VIP, r2, Some(1)),
            (VIP, r3, Some(1)),
            (VIP2, r1, Some(3)),
            (VIP2, r2, Some(1)),
            (VIP2, r3, Some(2)),
        ],
        "the edited file applied",
    );
    assert_eq!(
        sorted(answers(&lan, VIP2, 6)),
        ["r1", "r1", "r1", "r2", "r3", "r3"],
        "wrr 3:1:2, one whole cycle: {}",
        lan.log()
    );
    std::fs::write(&go, b"").unwrap();
    let mut body = String::new();
    std::io::Read::read_to_string(&mut out, &mut body).unwrap();
    assert!(
        matches!(body.trim(), "r1" | "r3"),
        "the connection opened before the reload: {body:?}\n{}",
        lan.log()
    );

    lan.stop_director(pid);
    let log = lan.log();
    assert!(!log.contains(" ERROR "), "{log}");
    eprintln!("the keepalived end-to-end test on {} took {:?}", backend.name(), started.elapsed());
}
