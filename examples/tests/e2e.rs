//! End to end, as root (CI runs it so): a LAN of network namespaces joined by a bridge, a
//! client, dr-director on its own namespace's interface (the VIP not on its kernel, IPv4
//! forwarding off), and three real servers with the VIP on `lo`, `arp_ignore=1`,
//! `arp_announce=2`, each serving HTTP. Real TCP connections from the client to the VIP.
//!
//! Every test runs on both backends (`afpacket::…` and `afxdp::…`). On AF_XDP the hosts
//! that send to the VIP complete their checksums (`tx off`) and put VLAN tags in the frame
//! (`txvlan off`), as frames on a physical LAN are and as XDP needs them; the director's
//! interface has as many queues as it has workers.
//!
//! Only addresses inside those namespaces are used; everything is torn down when the test
//! ends, even when it fails; every wait is bounded (the LAN is in `lan/mod.rs`).

mod lan;

use lan::{Backend, Lan, VIP, VIP6, ip, ready, root, run};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

impl Lan {
    /// `dr-director ctl` with `input` on its standard input.
    fn ctl_with_input(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut child = Command::new(env!("CARGO_BIN_EXE_dr-director"))
            .arg("ctl")
            .arg("--socket")
            .arg(self.dir.join("ctl.sock"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    /// The whole answer (status line, headers, body) to `GET /metrics` on the director.
    fn scrape(&self) -> String {
        let url = "http://127.0.0.1:9813/metrics";
        let out = run(self.exec("d", "curl").args(["-s", "-i", "--max-time", "3", url]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Opens a connection to the VIP, waits for a file to appear, then sends a request on it
/// and prints the body of the answer.
const HELD_CLIENT: &str = r#"
import os, socket, sys, time
s = socket.create_connection((sys.argv[1], 80), timeout=10)
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

const CONFIG: &str = r#"
[director]
# mac: the interface's
# A client may reuse the port of an attempt that r3 refused while it was still being
# checked; that entry (SYN_RECV, 60 s) would keep sending the port to r3 even once it is
# quiesced, as in the kernel. With expire_nodest_conn a SYN for a quiesced server's entry is
# scheduled afresh: the setting health-checked directors use.
expire_nodest_conn = true

[[service]]
proto = "tcp"
vip = "10.77.0.100"
port = 80
scheduler = "wrr"

[[service.real]]
ip = "10.77.0.11"
weight = 3

[[service.real]]
ip = "10.77.0.12"
weight = 2

[[service.real]]
ip = "10.77.0.13"
weight = 1

[[service]]
proto = "tcp"
vip = "2001:db8:77::100"
port = 80
scheduler = "rr"

[[service.real]]
ip = "2001:db8:77::11"

[[service.real]]
ip = "2001:db8:77::12"
"#;

fn http_through_the_director_in_namespaces(backend: Backend) {
    if !ready() {
        return;
    }
    let mut lan = Lan::new("e", backend, 1);
    // Watch the director's interface: replies must never cross it. AF_XDP frames pass no
    // packet taps on the director (XDP runs before them), so there the capture is of its
    // link, on the bridge's side.
    let capture = lan.dir.join("director.pcap");
    let (host, interface) = match backend {
        Backend::AfPacket => ("d", "eth0"),
        Backend::AfXdp => ("lan", "dp"),
    };
    let tcpdump = lan
        .exec(host, "tcpdump")
        .args(["-i", interface, "-n", "-U", "-w"])
        .arg(&capture)
        .arg("tcp")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tcpdump");
    lan.children.push(tcpdump);
    // A director host that routes IPv4 on the interface is refused, with the fix.
    lan.sysctl("d", "net.ipv4.conf.eth0.forwarding=1");
    let config = lan.dir.join("refused.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let refused = lan
        .exec("d", env!("CARGO_BIN_EXE_dr-director"))
        .args(["--iface", "eth0", "--config"])
        .arg(&config)
        .arg("--control")
        .arg(lan.dir.join("refused.sock"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let says = String::from_utf8_lossy(&refused.stderr);
    assert!(says.contains("sysctl -w net.ipv4.conf.eth0.forwarding=0"), "{says}");
    lan.sysctl("d", "net.ipv4.conf.eth0.forwarding=0");

    let pid = lan.director(CONFIG, &[]);
    let url = format!("http://{VIP}/who");
    assert!(lan.wait_for(&url, Duration::from_secs(15)), "no answer from the VIP:\n{}", lan.log());

    // wrr 3:2:1: any six consecutive new connections are one whole cycle.
    let mut counts = std::collections::BTreeMap::new();
    for _ in 0..6 {
        let who = lan.get(&url).unwrap_or_else(|| panic!("a request failed:\n{}", lan.log()));
        *counts.entry(who).or_insert(0) += 1;
    }
    let counts: Vec<_> = counts.into_iter().collect();
    assert_eq!(
        counts,
        [("r1".to_string(), 3), ("r2".to_string(), 2), ("r3".to_string(), 1)],
        "{}",
        lan.log()
    );
    // The control socket: listings in ipvsadm's layouts, and errors that say why.
    let ctl = |args: &[&str]| lan.ctl(args);
    let listing = ctl(&["-L", "-n"]);
    assert!(listing.status.success(), "{}", String::from_utf8_lossy(&listing.stderr));
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    assert!(listing.contains("TCP  10.77.0.100:80 wrr\n"), "{listing}");
    assert!(listing.contains("  -> 10.77.0.11:80                Route   3"), "{listing}");
    let stats = String::from_utf8_lossy(&ctl(&["-L", "-n", "--stats"]).stdout).into_owned();
    assert!(stats.contains("Conns"), "{stats}");
    let missing = ctl(&["-D", "-t", "10.77.0.200:80"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not defined"));
    // Prometheus metrics, from inside the director's namespace, at /metrics only.
    let scrape = lan.scrape();
    assert!(scrape.starts_with("HTTP/1.1 200 OK\r\n"), "{scrape}");
    assert!(
        scrape.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
        "{scrape}"
    );
    for line in [
        "# TYPE dr_frames_transmitted_total counter",
        "# TYPE dr_real_connections_total counter",
        "dr_real_weight{protocol=\"tcp\",vip=\"10.77.0.100\",port=\"80\",real=\"10.77.0.11\"} 3",
        "dr_real_weight{protocol=\"tcp\",vip=\"2001:db8:77::100\",port=\"80\",real=\"2001:db8:77::11\"} 1",
        "dr_real_up{protocol=\"tcp\",vip=\"10.77.0.100\",port=\"80\",real=\"10.77.0.13\"} 1",
        "dr_service_info{protocol=\"tcp\",vip=\"10.77.0.100\",port=\"80\",scheduler=\"wrr\",flags=\"\",persistent=\"0\"} 1",
    ] {
        assert!(scrape.lines().any(|l| l == line), "no {line:?} in\n{scrape}");
    }
    // r1 had three of the six connections (and maybe some while the director started).
    let r1 = "dr_real_connections_total{protocol=\"tcp\",vip=\"10.77.0.100\",port=\"80\",real=\"10.77.0.11\"} ";
    let conns =
        scrape.lines().find_map(|l| l.strip_prefix(r1)).unwrap_or_else(|| panic!("{scrape}"));
    assert!(conns.parse::<u64>().is_ok_and(|n| n >= 3), "{conns}\n{scrape}");
    let elsewhere = run(lan.exec("d", "curl").args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "3",
        "http://127.0.0.1:9813/",
    ]));
    assert_eq!(String::from_utf8_lossy(&elsewhere.stdout), "404");

    // Many more, all answered.
    for _ in 0..30 {
        assert!(lan.get(&url).is_some(), "a request failed:\n{}", lan.log());
    }

    // r3's server stops: the health check quiesces it within a bounded time (fall 3 at
    // 1 s intervals), and requests keep succeeding meanwhile and after.
    lan.stop_serving("r3");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut failures = 0;
    let down = |log: String| {
        log.lines().any(|l| l.contains("real server is down") && l.contains("real=10.77.0.13:80"))
    };
    while !down(lan.log()) && Instant::now() < deadline {
        // A connection scheduled to r3 before it is quiesced is refused by its kernel; the
        // client would retry: count, do not fail.
        if lan.get(&url).is_none() {
            failures += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let quiesced = Instant::now() + Duration::from_secs(10) - deadline;
    assert!(down(lan.log()), "r3 never quiesced:\n{}", lan.log());
    assert!(quiesced < Duration::from_secs(5), "r3 took {quiesced:?} to be quiesced");
    let scrape = lan.scrape();
    for line in [
        "dr_real_up{protocol=\"tcp\",vip=\"10.77.0.100\",port=\"80\",real=\"10.77.0.13\"} 0",
        "dr_real_weight{protocol=\"tcp\",vip=\"10.77.0.100\",port=\"80\",real=\"10.77.0.13\"} 0",
        "dr_real_up{protocol=\"tcp\",vip=\"10.77.0.100\",port=\"80\",real=\"10.77.0.12\"} 1",
    ] {
        assert!(scrape.lines().any(|l| l == line), "no {line:?} in\n{scrape}");
    }
    for _ in 0..12 {
        let who = lan
            .get(&url)
            .unwrap_or_else(|| panic!("a request failed after r3 was quiesced:\n{}", lan.log()));
        assert_ne!(who, "r3");
    }
    eprintln!("r3 quiesced after {quiesced:?}; {failures} requests failed before that");

    // A connection opened before a SIGHUP keeps working after it, while new connections
    // follow the new weights (r3 stays quiesced: its server is still down).
    let trigger = lan.dir.join("send-now");
    let held = lan
        .exec("c", "python3")
        .args(["-c", HELD_CLIENT, VIP])
        .arg(&trigger)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 client");
    lan.children.push(held);
    std::thread::sleep(Duration::from_millis(500));
    // A control command the reload will undo, and a [director] field it must apply.
    assert!(
        lan.ctl(&["-e", "-t", "10.77.0.100:80", "-r", "10.77.0.11", "-w", "7"]).status.success()
    );
    let reweighted = CONFIG
        .replace("weight = 3", "weight = 1")
        .replace("weight = 2", "weight = 3")
        .replace("weight = 1\n\n[[service]]", "weight = 5\n\n[[service]]")
        .replace("[director]\n", "[director]\ndecrement_ttl = true\n");
    std::fs::write(lan.dir.join("director.toml"), reweighted).unwrap();
    run(Command::new("kill").args(["-HUP", &pid.to_string()]));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !lan.log().contains("configuration reloaded") {
        assert!(Instant::now() < deadline, "no reload:\n{}", lan.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = lan.log();
    assert!(log.contains("reload: set director.decrement_ttl"), "{log}");
    assert!(
        log.contains(
            "reload: the file replaces what this control command changed: -e -t 10.77.0.100:80"
        ),
        "{log}"
    );
    let mut counts = std::collections::BTreeMap::new();
    for _ in 0..4 {
        let who = lan.get(&url).unwrap_or_else(|| panic!("a request failed:\n{}", lan.log()));
        *counts.entry(who).or_insert(0) += 1;
    }
    let counts: Vec<_> = counts.into_iter().collect();
    assert_eq!(counts, [("r1".to_string(), 1), ("r2".to_string(), 3)], "{}", lan.log());
    std::fs::write(&trigger, b"").unwrap();
    let held = lan.children.last_mut().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while held.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the held connection never finished");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut body = String::new();
    std::io::Read::read_to_string(&mut held.stdout.take().unwrap(), &mut body).unwrap();
    assert!(
        matches!(body.trim(), "r1" | "r2"),
        "the connection opened before the reload: {body:?}"
    );

    // IPv6 through the same topology.
    let url6 = format!("http://[{VIP6}]/who");
    assert!(
        lan.wait_for(&url6, Duration::from_secs(10)),
        "no answer from the IPv6 VIP:\n{}",
        lan.log()
    );
    let mut seen6 = std::collections::BTreeSet::new();
    for _ in 0..4 {
        seen6.insert(lan.get(&url6).expect("an IPv6 request failed"));
    }
    assert_eq!(seen6.len(), 2, "rr over both IPv6 real servers: {seen6:?}");

    // Stop cleanly: SIGTERM, and the listing on the way out.
    lan.stop_director(pid);
    assert!(lan.log().contains("TCP  10.77.0.100:80"), "the listing on exit:\n{}", lan.log());

    // The director saw the clients' segments but none of the servers' replies to them (its
    // own health checks get replies, to its own address).
    std::thread::sleep(Duration::from_millis(300));
    let read = |filter: &str| {
        let out =
            Command::new("tcpdump").args(["-n", "-r"]).arg(&capture).arg(filter).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    assert!(
        read("dst port 80 and src host 10.77.0.10") > 0,
        "the director's capture saw no requests"
    );
    assert_eq!(
        read("src port 80 and (dst host 10.77.0.10 or dst host 2001:db8:77::10)"),
        0,
        "a reply crossed the director"
    );
}

fn several_workers_share_the_interface(backend: Backend) {
    if !ready() {
        return;
    }
    let mut lan = Lan::new("w", backend, 2);
    let pid = lan.director(CONFIG, &["--workers", "2"]);
    let url = format!("http://{VIP}/who");
    assert!(lan.wait_for(&url, Duration::from_secs(15)), "no answer from the VIP:\n{}", lan.log());
    // Every request is answered, whichever worker its flow hashes to, and wrr still uses
    // every server (each worker runs its own wrr: see dr-director's documentation).
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..40 {
        seen.insert(lan.get(&url).unwrap_or_else(|| panic!("a request failed:\n{}", lan.log())));
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    // The control socket answers for both workers, and changes reach both: one listing of
    // the two added up, each apart with --per-worker.
    let listing = String::from_utf8_lossy(&lan.ctl(&["-L", "-n"]).stdout).into_owned();
    assert_eq!(listing.matches("TCP  10.77.0.100:80 ").count(), 1, "{listing}");
    let stats =
        String::from_utf8_lossy(&lan.ctl(&["-L", "-n", "--stats", "--exact"]).stdout).into_owned();
    let conns: u64 = stats
        .lines()
        .find(|l| l.starts_with("TCP  10.77.0.100:80"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stats}"));
    assert!(conns >= 40, "the connections of both workers: {stats}");
    assert!(
        lan.ctl(&["-e", "-t", "10.77.0.100:80", "-r", "10.77.0.13", "-w", "0"]).status.success()
    );
    let listing =
        String::from_utf8_lossy(&lan.ctl(&["-L", "-n", "--per-worker"]).stdout).into_owned();
    assert!(listing.contains("worker 0:") && listing.contains("worker 1:"), "{listing}");
    assert_eq!(
        listing.matches("  -> 10.77.0.13:80                Route   0").count(),
        2,
        "{listing}"
    );
    // The saved rules restore through ctl -R, to both workers.
    let saved = lan.ctl(&["-S", "-n"]);
    assert!(saved.status.success());
    let saved = String::from_utf8_lossy(&saved.stdout).into_owned();
    assert!(saved.contains("-a -t 10.77.0.100:80 -r 10.77.0.13:80 -g -w 0\n"), "{saved}");
    let restore = lan.ctl_with_input(&["-R"], "-A -u 10.77.0.100:53 -s rr\n");
    assert!(restore.status.success(), "{}", String::from_utf8_lossy(&restore.stderr));
    let listing =
        String::from_utf8_lossy(&lan.ctl(&["-L", "-n", "--per-worker"]).stdout).into_owned();
    assert_eq!(listing.matches("UDP  10.77.0.100:53 rr").count(), 2, "{listing}");
    for _ in 0..12 {
        assert_ne!(lan.get(&url).as_deref(), Some("r3"), "a quiesced server got a new connection");
    }
    let scrape = lan.scrape();
    assert!(
        scrape.contains("\ndr_frames_transmitted_total{worker=\"1\",verdict=\"forwarded\"} "),
        "{scrape}"
    );
    // Health is the director's, not a worker's: once per real server, without a worker.
    let up = "dr_real_up{protocol=\"tcp\",vip=\"10.77.0.100\",port=\"80\",real=\"10.77.0.13\"} 1";
    assert_eq!(scrape.lines().filter(|l| *l == up).count(), 1, "{scrape}");
    assert!(!scrape.contains("dr_real_up{worker="), "{scrape}");
    lan.stop_director(pid);
    assert!(lan.log().contains("worker 1:"), "{}", lan.log());
}

/// The director's configuration with `vlans` in its `[director]` section.
fn on_vlans(vlans: &str) -> String {
    CONFIG.replacen("[director]\n", &format!("[director]\nvlans = {vlans}\n"), 1)
}

/// Sends each frame (hex) from `eth0` of the namespace through a raw packet socket.
const SEND_FRAMES: &str = r#"
import binascii, socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
for frame in sys.argv[1:]:
    s.send(binascii.unhexlify(frame))
"#;

impl Lan {
    /// The MAC of `eth0` in `host`'s namespace.
    fn mac_of(&self, host: &str) -> [u8; 6] {
        let out = run(self.exec(host, "cat").arg("/sys/class/net/eth0/address"));
        let text = String::from_utf8_lossy(&out.stdout);
        let bytes: Vec<u8> =
            text.trim().split(':').map(|b| u8::from_str_radix(b, 16).unwrap()).collect();
        bytes.try_into().unwrap()
    }

    /// Starts tcpdump on `host`'s `eth0`, writing what `filter` matches to `name`.pcap, and
    /// waits (at most 5 s) until it listens.
    fn capture(&mut self, host: &str, name: &str, filter: &str) -> PathBuf {
        let file = self.dir.join(format!("{name}.pcap"));
        let log = self.dir.join(format!("{name}.log"));
        let child = self
            .exec(host, "tcpdump")
            .args(["-i", "eth0", "-n", "-U", "-w"])
            .arg(&file)
            .arg(filter)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("tcpdump");
        self.children.push(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !std::fs::read_to_string(&log).unwrap_or_default().contains("listening on") {
            assert!(Instant::now() < deadline, "tcpdump did not start on {host}");
            std::thread::sleep(Duration::from_millis(50));
        }
        file
    }

    /// What a capture holds so far, as `tcpdump -r -nn -e` prints it.
    fn captured(&self, file: &PathBuf) -> String {
        let out = Command::new("tcpdump").args(["-nn", "-e", "-r"]).arg(file).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn send_frames(&self, host: &str, frames: &[Vec<u8>]) {
        let hex: Vec<String> =
            frames.iter().map(|f| f.iter().map(|b| format!("{b:02x}")).collect()).collect();
        run(self.exec(host, "python3").args(["-c", SEND_FRAMES]).args(&hex));
    }
}

fn a_vlan_is_served_only_when_configured_and_frames_keep_their_tags(backend: Backend) {
    use dr_fixtures::frames::{SYN, arp_request, tcp4, with_vlans};
    if !ready() {
        return;
    }
    // The kernel here may have no VLAN devices, so the client sends tagged frames itself and
    // the real servers' interfaces are watched: the frame the director forwards must carry
    // the client's tag (a real server with a VLAN device would take it from there).
    let mut lan = Lan::new("v", backend, 1);
    let url = format!("http://{VIP}/who");
    let (client, director) = (lan.mac_of("c"), lan.mac_of("d"));
    let from_client = |mut frame: Vec<u8>| {
        frame[0..6].copy_from_slice(&director);
        frame[6..12].copy_from_slice(&client);
        frame
    };
    let syn = |port| {
        with_vlans(&from_client(tcp4("10.77.0.10", port, VIP, 80, SYN)), &[(0x8100, 0x2000 | 10)])
    };
    let mut arp = arp_request(VIP);
    arp[6..12].copy_from_slice(&client);
    arp[22..28].copy_from_slice(&client);
    let arp = with_vlans(&arp, &[(0x8100, 10)]);

    for (round, vlans) in [(0, "[0, 10]"), (1, "[0]")] {
        let pid = lan.director(&on_vlans(vlans), &[]);
        // The untagged LAN works either way (and the real servers' MACs are learned).
        assert!(lan.wait_for(&url, Duration::from_secs(15)), "no answer:\n{}", lan.log());
        let reals: Vec<PathBuf> = (1..=3)
            .map(|i| {
                lan.capture(&format!("r{i}"), &format!("r{i}-{round}"), "vlan and tcp port 80")
            })
            .collect();
        let answers = lan.capture("c", &format!("c-{round}"), "vlan and arp");
        lan.send_frames("c", &[arp.clone(), syn(50_000 + round), syn(50_100 + round)]);
        std::thread::sleep(Duration::from_millis(1_000));
        let at_reals: String = reals.iter().map(|f| lan.captured(f)).collect();
        let answered = lan.captured(&answers);
        if round == 0 {
            // Forwarded with the tag it came with, priority bits too, to a real server.
            assert_eq!(at_reals.matches("vlan 10, p 1").count(), 2, "{at_reals}\n{}", lan.log());
            assert_eq!(at_reals.lines().count(), 2, "and nothing untagged: {at_reals}");
            assert!(answered.contains("is-at"), "the ARP on VLAN 10 is answered: {answered}");
            assert!(answered.contains("vlan 10"), "on VLAN 10: {answered}");
        } else {
            assert_eq!(at_reals, "", "VLAN 10 is not served, tagged or untagged: {at_reals}");
            assert!(!answered.contains("is-at"), "nor answered on: {answered}");
        }
        lan.stop_director(pid);
        if round == 1 {
            let log = lan.log();
            let line = log.lines().find(|l| l.contains("pass vlan-not-served")).unwrap_or("");
            assert!(line.ends_with(" 3"), "three frames left to the host: {line:?}\n{log}");
        }
    }
}

fn a_second_director_on_the_interface_or_the_control_socket_is_refused(backend: Backend) {
    if !ready() {
        return;
    }
    let mut lan = Lan::new("s", backend, 1);
    let pid = lan.director(CONFIG, &[]);
    let url = format!("http://{VIP}/who");
    assert!(lan.wait_for(&url, Duration::from_secs(15)), "no answer from the VIP:\n{}", lan.log());
    let config = lan.dir.join("director.toml");
    let second = |iface: &str, control: &std::path::Path| {
        lan.exec("d", env!("CARGO_BIN_EXE_dr-director"))
            .args(["--iface", iface, "--no-preflight", "--config"])
            .arg(&config)
            .arg("--control")
            .arg(control)
            .output()
            .unwrap()
    };
    // The same interface: refused, naming the director that has it.
    let out = second("eth0", &lan.dir.join("other.sock"));
    let says = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        says.contains(&format!("another dr-director already runs on eth0 (process {pid})")),
        "{says}"
    );
    assert_eq!(says.matches("already runs").count(), 1, "said once: {says}");
    // Another interface, the same control socket: refused, and the socket stays the first's.
    ip(&["-n", &lan.ns("d"), "link", "add", "x0", "type", "veth", "peer", "name", "x1"]);
    ip(&["-n", &lan.ns("d"), "link", "set", "x0", "up"]);
    ip(&["-n", &lan.ns("d"), "link", "set", "x1", "up"]);
    let out = second("x0", &lan.dir.join("ctl.sock"));
    let says = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(says.contains("a running dr-director answers on it"), "{says}");
    assert!(lan.ctl(&["-L", "-n"]).status.success(), "the first director's socket still answers");
    // And the first still forwards, each request once.
    assert!(lan.get(&url).is_some(), "{}", lan.log());
    lan.stop_director(pid);
}

fn a_director_whose_interface_goes_away_stops_and_says_so_once(backend: Backend) {
    if !ready() {
        return;
    }
    let mut lan = Lan::new("g", backend, 2);
    let pid = lan.director(CONFIG, &["--workers", "2"]);
    let url = format!("http://{VIP}/who");
    assert!(lan.wait_for(&url, Duration::from_secs(15)), "no answer from the VIP:\n{}", lan.log());
    ip(&["-n", &lan.ns("d"), "link", "del", "eth0"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    let director = lan.children.iter_mut().find(|c| c.id() == pid).unwrap();
    let status = loop {
        if let Some(status) = director.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            panic!("dr-director still runs without its interface:\n{}", lan.log());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = lan.log();
    assert!(!status.success(), "{log}");
    // Both workers lost the interface; the director says it once.
    assert_eq!(log.matches("interface eth0 went away").count(), 1, "{log}");
}

/// Echoes every UDP datagram to port 5000 of each address given back to its sender, from
/// the address it came to (the VIP, or the real server's own, where health checks go).
const UDP_ECHO: &str = r#"
import select, socket, sys
socks = []
for addr in sys.argv[1:]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 5000))
    socks.append(s)
while True:
    for s in select.select(socks, [], [])[0]:
        data, peer = s.recvfrom(65535)
        s.sendto(data, peer)
"#;

/// Sends datagrams of `size` bytes to VIP:5000, each from a new socket (a new flow), and
/// prints how many came back whole.
const UDP_CLIENT: &str = r#"
import socket, sys
vip, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
whole = 0
for i in range(count):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.connect((vip, 5000))
    payload = bytes([i % 251]) * size
    s.send(payload)
    try:
        whole += s.recv(65535) == payload
    except socket.timeout:
        pass
    s.close()
print(whole)
"#;

fn fragmented_udp_goes_through_several_workers_whole(backend: Backend) {
    if !ready() {
        return;
    }
    let mut lan = Lan::new("f", backend, 2);
    // r1 and r2 serve UDP port 5000; r3 does not: its default check (a UDP datagram, down on
    // ICMP port unreachable) takes it out. A TCP connect, the check of TCP services, would
    // take every UDP server out.
    for i in 1..=2 {
        let echo = lan
            .exec(&format!("r{i}"), "python3")
            .args(["-c", UDP_ECHO, VIP, &format!("10.77.0.1{i}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 UDP echo");
        lan.children.push(echo);
    }
    let config = format!(
        "{CONFIG}\n[[service]]\nproto = \"udp\"\nvip = \"{VIP}\"\nport = 5000\nscheduler = \"rr\"\n\n\
         [[service.real]]\nip = \"10.77.0.11\"\n\n[[service.real]]\nip = \"10.77.0.12\"\n\n\
         [[service.real]]\nip = \"10.77.0.13\"\n"
    );
    let pid = lan.director(&config, &["--workers", "2"]);
    let url = format!("http://{VIP}/who");
    assert!(lan.wait_for(&url, Duration::from_secs(15)), "no answer from the VIP:\n{}", lan.log());
    let down = |log: &str, real: &str| {
        log.lines().any(|l| l.contains("real server is down") && l.contains(real))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !down(&lan.log(), "10.77.0.13:5000") {
        assert!(Instant::now() < deadline, "r3 was not found down:\n{}", lan.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = lan.log();
    assert!(!down(&log, "10.77.0.11:5000") && !down(&log, "10.77.0.12:5000"), "{log}");
    assert!(log.contains("service=UDP"), "log lines name the service: {log}");
    // 3000 bytes: three fragments each way on a 1500-byte LAN. Every datagram comes back
    // whole: its fragments all reached one worker, which sent them on as they came.
    let out = run(lan.exec("c", "python3").args(["-c", UDP_CLIENT, VIP, "12", "3000"]));
    let whole = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(whole, "12", "datagrams echoed whole:\n{}", lan.log());
    lan.stop_director(pid);
    let log = lan.log();
    let forwarded: u64 = log
        .lines()
        .filter(|l| l.starts_with("templates:"))
        .filter_map(|l| {
            l.rsplit("fragments: ").next()?.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum();
    assert_eq!(forwarded, 24, "two later fragments of each datagram forwarded:\n{log}");
}

/// Answers every UDP datagram to port 5000 of each address given with the first address
/// given (the real server's own), from the address it came to.
const UDP_WHO: &str = r#"
import select, socket, sys
socks = []
for addr in sys.argv[2:]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 5000))
    socks.append(s)
while True:
    for s in select.select(socks, [], [])[0]:
        data, peer = s.recvfrom(65535)
        s.sendto(sys.argv[1].encode(), peer)
"#;

/// Sends `count` datagrams to VIP:5000 from one socket (one flow) and prints who answered
/// each, in order ("-" for no answer).
const UDP_ONE_FLOW: &str = r#"
import socket, sys
vip, count = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect((vip, 5000))
who = []
for i in range(count):
    s.send(b"who")
    try:
        who.append(s.recv(100).decode())
    except socket.timeout:
        who.append("-")
print(" ".join(who))
"#;

fn an_ops_service_schedules_each_datagram_of_a_flow(backend: Backend) {
    if !ready() {
        return;
    }
    let mut lan = Lan::new("o", backend, 1);
    for i in 1..=2 {
        let own = format!("10.77.0.1{i}");
        let who = lan
            .exec(&format!("r{i}"), "python3")
            .args(["-c", UDP_WHO, &own, VIP, &own])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 UDP responder");
        lan.children.push(who);
    }
    let config = format!(
        "{CONFIG}\n[[service]]\nproto = \"udp\"\nvip = \"{VIP}\"\nport = 5000\nscheduler = \"rr\"\n\
         ops = true\n\n[[service.real]]\nip = \"10.77.0.11\"\n\n[[service.real]]\nip = \"10.77.0.12\"\n"
    );
    let pid = lan.director(&config, &[]);
    let url = format!("http://{VIP}/who");
    assert!(lan.wait_for(&url, Duration::from_secs(15)), "no answer from the VIP:\n{}", lan.log());
    // Both UDP servers learned and checked before the flow starts.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listing = String::from_utf8_lossy(&lan.ctl(&["-L", "-n"]).stdout).into_owned();
        if listing.contains("UDP  10.77.0.100:5000 rr ops\n") {
            break;
        }
        assert!(Instant::now() < deadline, "{listing}\n{}", lan.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    // rr per datagram of the one flow, newest added (.12) first.
    let out = run(lan.exec("c", "python3").args(["-c", UDP_ONE_FLOW, VIP, "6"]));
    let who = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(
        who,
        "10.77.0.12 10.77.0.11 10.77.0.12 10.77.0.11 10.77.0.12 10.77.0.11",
        "{}",
        lan.log()
    );
    // No entry of the flow in the table; six connections counted.
    let conns = String::from_utf8_lossy(&lan.ctl(&["-L", "-n", "-c"]).stdout).into_owned();
    assert!(!conns.contains(":5000"), "{conns}");
    let stats = String::from_utf8_lossy(
        &lan.ctl(&["-L", "-n", "--stats", "-u", "10.77.0.100:5000"]).stdout,
    )
    .into_owned();
    let line = stats.lines().find(|l| l.starts_with("UDP  10.77.0.100:5000")).unwrap_or_default();
    assert_eq!(line.split_whitespace().nth(2), Some("6"), "{stats}");
    lan.stop_director(pid);
}

fn a_check_through_the_vip_finds_a_real_server_without_the_vip(backend: Backend) {
    if !ready() {
        return;
    }
    let mut lan = Lan::new("t", backend, 1);
    // The commonest LVS-DR mistake: r3 lacks the VIP on lo. It still answers on its own
    // address, so a plain TCP check passes; a SYN to the VIP at its MAC finds nobody.
    ip(&["-n", &lan.ns("r3"), "addr", "del", &format!("{VIP}/32"), "dev", "lo"]);
    let config = CONFIG.replacen(
        "scheduler = \"wrr\"\n",
        "scheduler = \"wrr\"\n\n[service.health]\nkind = \"tcp\"\nthrough_vip = true\n",
        1,
    );
    let pid = lan.director(&config, &[]);
    let url = format!("http://{VIP}/who");
    assert!(lan.wait_for(&url, Duration::from_secs(15)), "no answer from the VIP:\n{}", lan.log());
    let down = |log: &str, real: &str| {
        log.lines().any(|l| l.contains("real server is down") && l.contains(real))
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while !down(&lan.log(), "10.77.0.13:80") {
        assert!(Instant::now() < deadline, "r3 was not found down:\n{}", lan.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = lan.log();
    assert!(!down(&log, "10.77.0.11:80") && !down(&log, "10.77.0.12:80"), "{log}");
    for _ in 0..6 {
        let who = lan.get(&url).unwrap_or_else(|| panic!("a request failed:\n{}", lan.log()));
        assert_ne!(who, "r3");
    }
    lan.stop_director(pid);
}

#[test]
fn the_root_only_tests_are_ignored_exactly_when_the_build_is_neither_root_nor_ci() {
    let expected = root() || std::env::var_os("CI").is_some();
    assert_eq!(
        cfg!(dr_root),
        expected,
        "built by another user than the one running the tests: rebuild (touch dr-io-afpacket/build.rs)"
    );
}

/// Opens a connection to the VIP and sends the first line of a request at once (the third
/// packet of the connection, which a sync master sends), waits for a file to appear, then
/// ends the request and prints the body of the answer.
const HELD_HALF_REQUEST: &str = r#"
import os, socket, sys, time
s = socket.create_connection((sys.argv[1], 80), timeout=10)
s.sendall(b"GET /who HTTP/1.0\r\n")
deadline = time.time() + 30
while not os.path.exists(sys.argv[2]) and time.time() < deadline:
    time.sleep(0.05)
s.sendall(b"\r\n")
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print(data.split(b"\r\n\r\n", 1)[-1].decode())
"#;

const SYNC_CONFIG: &str = r#"
[[service]]
proto = "tcp"
vip = "10.77.0.100"
port = 80
scheduler = "rr"

[[service.real]]
ip = "10.77.0.11"

[[service.real]]
ip = "10.77.0.12"

[[service.real]]
ip = "10.77.0.13"
"#;

/// The MAC of `host`'s `eth0`.
fn mac_of(lan: &Lan, host: &str) -> String {
    let out = run(lan.exec(host, "cat").arg("/sys/class/net/eth0/address"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The client's established connections in a director's `-L -n -c`: the client's address
/// and port, and the real server.
fn connections_of_client(lan: &Lan, host: &str) -> Vec<(String, String)> {
    let out = lan.ctl_on(host, &["-L", "-n", "-c"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .filter(|l| l.contains("ESTABLISHED"))
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let client = words.iter().find(|w| w.starts_with("10.77.0.10:"))?;
            let dest = words.last()?;
            let real = dest.rsplit_once(':').map_or(*dest, |(a, _)| a);
            Some((client.to_string(), real.to_string()))
        })
        .collect()
}

fn a_backup_director_continues_the_flows_of_a_master_that_died(backend: Backend) {
    if !ready() {
        return;
    }
    let mut lan = Lan::new("y", backend, 1);
    lan.host("b", "10.77.0.3", "2001:db8:77::3");
    lan.sysctl("b", "net.ipv4.ip_forward=0");
    let backup = lan.director_on("b", SYNC_CONFIG, &["--sync", "backup"]);
    let master = lan.director_on("d", SYNC_CONFIG, &["--sync", "master"]);
    let url = format!("http://{VIP}/who");
    // The client reaches the VIP through the master, as the VRRP owner's MAC: pinned, or
    // the backup's own announcement as it comes up could take the client.
    let (master_mac, backup_mac) = (mac_of(&lan, "d"), mac_of(&lan, "b"));
    ip(&[
        "-n",
        &lan.ns("c"),
        "neigh",
        "replace",
        VIP,
        "lladdr",
        &master_mac,
        "dev",
        "eth0",
        "nud",
        "permanent",
    ]);
    assert!(lan.wait_for(&url, Duration::from_secs(15)), "{}", lan.log());
    for (host, mode) in [("d", "master"), ("b", "backup")] {
        let out = lan.ctl_on(host, &["-L", "--daemon"]);
        let text = String::from_utf8_lossy(&out.stdout);
        let (daemon, resync) = text.split_once('\n').unwrap_or((&text, ""));
        assert_eq!(
            daemon,
            format!(
                "{mode} sync daemon (mcast=eth0, syncid=0, maxlen=1472, group=224.0.0.81, \
                 port=8848, ttl=1)"
            )
        );
        // A backup's resync: where it stands, and its own datagrams dropped (none here).
        if mode == "backup" {
            assert!(resync.starts_with("resync "), "{text}");
            assert!(resync.ends_with("; 0 own messages dropped\n"), "{text}");
        } else {
            assert_eq!(resync, "", "{text}");
        }
    }

    // What the master lists before the held connection opens (an earlier request's entry
    // may still be ESTABLISHED there, a curl given up on mid-connection under load).
    let before = connections_of_client(&lan, "d");
    let go = lan.dir.join("go");
    let client = lan
        .exec("c", "python3")
        .args(["-c", HELD_HALF_REQUEST, VIP])
        .arg(&go)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The master's record reaches the backup within the 2 s a partly filled message waits.
    let deadline = Instant::now() + Duration::from_secs(20);
    // The held connection is the master's one established connection of the client that
    // was not there before (the backup may still list the first request's as established:
    // its end is synced later).
    let (on_master, on_backup) = loop {
        let new: Vec<_> =
            connections_of_client(&lan, "d").into_iter().filter(|c| !before.contains(c)).collect();
        let held = match new.as_slice() {
            [held] => Some(held.clone()),
            _ => None,
        };
        let synced = held.as_ref().filter(|h| connections_of_client(&lan, "b").contains(h));
        if synced.is_some() || Instant::now() > deadline {
            break (held.clone().map(|h| h.1), synced.map(|h| h.1.clone()));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let on_master = on_master.unwrap_or_else(|| {
        let listing = lan.ctl_on("d", &["-L", "-n", "-c"]);
        panic!(
            "the master lists the held connection:\n{}\n{}",
            String::from_utf8_lossy(&listing.stdout),
            lan.log()
        )
    });
    assert_eq!(on_backup.as_deref(), Some(on_master.as_str()), "{}", lan.log());
    let json = lan.ctl_on("b", &["-L", "-n", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["sync"]["mode"], "backup");
    assert!(json["sync"]["imported"].as_u64().unwrap() >= 1, "{json}");
    assert!(lan.scrape().contains("dr_sync_events_total{"));

    // The master dies; the backup takes the VIP over with a gratuitous ARP, sent when its
    // services change (what a VRRP notify script does with any no-op edit).
    run(Command::new("kill").args(["-KILL", &master.to_string()]));
    // The pin goes, as a client's entry for a dead director's MAC would; the backup's
    // gratuitous ARP updates entries that exist, and its answers make new ones.
    ip(&["-n", &lan.ns("c"), "neigh", "del", VIP, "dev", "eth0"]);
    let out = lan.ctl_on("b", &["-E", "-t", &format!("{VIP}:80"), "-s", "rr"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = run(lan.exec("c", "ip").args(["neigh", "show", VIP]));
        if String::from_utf8_lossy(&out.stdout).contains(&backup_mac) {
            break;
        }
        assert!(Instant::now() < deadline, "the client never learned the backup's MAC");
        let _ = lan.exec("c", "ping").args(["-c", "1", "-W", "1", VIP]).output();
    }
    std::fs::write(&go, "").unwrap();
    let out = client.wait_with_output().unwrap();
    let body = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let expected = format!("r{}", on_master.trim_start_matches("10.77.0.1"));
    assert_eq!(body, expected, "{}", String::from_utf8_lossy(&out.stderr));
    // New connections go through the backup too.
    assert!(lan.get(&url).is_some());
    lan.stop_director(backup);
}

/// Each test above, once on each backend.
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod afpacket {
            $(
                #[test]
                #[cfg_attr(not(dr_root), ignore = "needs root (CAP_NET_ADMIN, CAP_NET_RAW)")]
                fn $test() {
                    super::$test(super::Backend::AfPacket);
                }
            )*
        }
        mod afxdp {
            $(
                #[test]
                #[cfg_attr(not(dr_root), ignore = "needs root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF)")]
                fn $test() {
                    super::$test(super::Backend::AfXdp);
                }
            )*
        }
    };
}

on_both_backends!(
    http_through_the_director_in_namespaces,
    several_workers_share_the_interface,
    a_vlan_is_served_only_when_configured_and_frames_keep_their_tags,
    a_second_director_on_the_interface_or_the_control_socket_is_refused,
    a_director_whose_interface_goes_away_stops_and_says_so_once,
    fragmented_udp_goes_through_several_workers_whole,
    an_ops_service_schedules_each_datagram_of_a_flow,
    a_check_through_the_vip_finds_a_real_server_without_the_vip,
    a_backup_director_continues_the_flows_of_a_master_that_died,
);
