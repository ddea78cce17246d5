//! Two directors behind a router doing ECMP, end to end, as root (CI runs it so).
//!
//! A router namespace runs BIRD 2 with a BGP session to each of two director namespaces;
//! each director runs dr-director (`mh`, `sloppy_tcp`) and ExaBGP, whose process is
//! `dr-director ctl watch --exabgp`. The router installs the VIP's /32 with one next hop
//! per director that announces it, and spreads flows over them by their ports
//! (`fib_multipath_hash_policy=1`). Three real servers echo lines, prefixed with their
//! name. A client holds long-lived connections through the VIP while it opens new ones.
//!
//! One dr-director is killed (SIGKILL): its watch withdraws the VIP, the router moves that
//! director's flows to the other one, which has never seen them and, with `sloppy_tcp`,
//! schedules their next segment to the server `mh` picked on the first director: no held
//! connection is lost, and new connections succeed again once the route has converged (the
//! times are printed). Restarted, it announces the VIP again only after its
//! `announce_delay`, and the flows that move back keep their servers too.
//!
//! With `--sync both` on the two directors, the killed one, restarted after a fourth real
//! server joined the service on both (so `mh` picks change), asks the other for a bulk
//! resync and holds the live connections before it announces the VIP; the flows that move
//! back keep their servers (the resync's time is printed).
//!
//! Only addresses inside these namespaces are used; everything is torn down when the test
//! ends, even when it fails; every wait is bounded in time.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const VIP: &str = "10.88.100.1";
const PORT: u16 = 7000;
const DIRECTORS: [(&str, &str); 2] = [("d1", "10.88.0.2"), ("d2", "10.88.0.3")];
const ANNOUNCE_DELAY: u64 = 3;

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

fn now_secs() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// The namespaces, processes and files of the test, removed on drop.
struct Net {
    prefix: String,
    namespaces: Vec<String>,
    children: Vec<(String, Child)>,
    dir: PathBuf,
}

impl Net {
    fn ns(&self, host: &str) -> String {
        format!("{}{host}", self.prefix)
    }

    fn exec(&self, host: &str, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(host), program]);
        cmd
    }

    fn sysctl(&self, host: &str, setting: &str) {
        run(self.exec(host, "sysctl").args(["-q", "-w", setting]));
    }

    fn netns(&mut self, host: &str) -> String {
        let ns = self.ns(host);
        ip(&["netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        ns
    }

    /// A host on the LAN bridge: `eth0` addressed `addr`/24.
    fn on_lan(&mut self, host: &str, addr: &str) -> String {
        let ns = self.netns(host);
        let lan = self.ns("lan");
        let port = format!("{host}p");
        ip(&[
            "link", "add", "eth0", "netns", &ns, "type", "veth", "peer", "name", &port, "netns",
            &lan,
        ]);
        ip(&["-n", &lan, "link", "set", &port, "master", "br0", "up"]);
        ip(&["-n", &ns, "addr", "add", &format!("{addr}/24"), "dev", "eth0"]);
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        ns
    }

    fn spawn(&mut self, name: &str, mut cmd: Command) -> u32 {
        let log = std::fs::File::create(self.dir.join(format!("{name}.log"))).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: {cmd:?}: {e}"));
        let pid = child.id();
        self.children.push((name.to_string(), child));
        pid
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    fn logs(&self) -> String {
        let mut text = String::new();
        for (name, _) in &self.children {
            text.push_str(&format!("--- {name}\n{}\n", self.log(name)));
        }
        text
    }

    fn kill(&mut self, name: &str) {
        let (_, child) = self.children.iter_mut().find(|(n, _)| n == name).unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The LAN (router, two directors, three real servers) and the client behind the
    /// router, in namespaces named after `tag` and this process.
    fn new(tag: &str) -> Self {
        let prefix = format!("drx{tag}{}", std::process::id() % 100_000);
        let dir = std::env::temp_dir().join(format!("{prefix}-ecmp"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut net = Self { prefix, namespaces: Vec::new(), children: Vec::new(), dir };
        let lan = net.netns("lan");
        ip(&["-n", &lan, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &lan, "link", "set", "br0", "up"]);
        // br_netfilter would hand the bridged frames to this namespace's iptables.
        let _ = net
            .exec("lan", "sysctl")
            .args(["-q", "-w", "net.bridge.bridge-nf-call-iptables=0"])
            .output();
        let rt = net.on_lan("rt", "10.88.0.1");
        let c = net.netns("c");
        ip(&[
            "link", "add", "eth1", "netns", &rt, "type", "veth", "peer", "name", "eth0", "netns",
            &c,
        ]);
        ip(&["-n", &rt, "addr", "add", "10.88.1.1/24", "dev", "eth1"]);
        ip(&["-n", &rt, "link", "set", "eth1", "up"]);
        ip(&["-n", &c, "addr", "add", "10.88.1.10/24", "dev", "eth0"]);
        ip(&["-n", &c, "link", "set", "eth0", "up"]);
        ip(&["-n", &c, "route", "add", "default", "via", "10.88.1.1"]);
        for setting in [
            "net.ipv4.ip_forward=1",
            "net.ipv4.fib_multipath_hash_policy=1",
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0",
        ] {
            net.sysctl("rt", setting);
        }
        for (host, addr) in DIRECTORS {
            net.on_lan(host, addr);
            net.sysctl(host, "net.ipv4.ip_forward=0");
        }
        for i in 1..=3 {
            net.real(i);
        }
        net
    }

    /// Real server `i` on the LAN (10.88.0.1`i`), the VIP on its loopback, echoing.
    fn real(&mut self, i: u8) {
        let host = format!("r{i}");
        let ns = self.on_lan(&host, &format!("10.88.0.1{i}"));
        ip(&["-n", &ns, "addr", "add", &format!("{VIP}/32"), "dev", "lo"]);
        ip(&["-n", &ns, "route", "add", "default", "via", "10.88.0.1"]);
        for setting in [
            "net.ipv4.conf.all.arp_ignore=1",
            "net.ipv4.conf.all.arp_announce=2",
            "net.ipv4.conf.eth0.arp_ignore=1",
            "net.ipv4.conf.eth0.arp_announce=2",
        ] {
            self.sysctl(&host, setting);
        }
        let mut echo = self.exec(&host, "python3");
        echo.args(["-c", ECHO_SERVER, &host, &PORT.to_string()]);
        self.spawn(&host, echo);
    }

    /// BIRD 2 in the router: BGP with both directors, their routes merged into one
    /// multipath route in the kernel.
    fn router(&mut self) {
        let conf = self.dir.join("bird.conf");
        std::fs::write(&conf, BIRD_ROUTER).unwrap();
        let mut bird = self.exec("rt", "bird");
        bird.arg("-f").arg("-c").arg(&conf).arg("-s").arg(self.dir.join("bird.ctl"));
        bird.arg("-P").arg(self.dir.join("bird.pid"));
        self.spawn("bird", bird);
    }

    /// ExaBGP in a director's namespace, its process the director's watch.
    fn exabgp(&mut self, host: &str, addr: &str) {
        let socket = self.dir.join(format!("{host}.sock"));
        let conf = self.dir.join(format!("{host}-exabgp.conf"));
        let watch = format!(
            "{} ctl --socket {} watch",
            env!("CARGO_BIN_EXE_dr-director"),
            socket.to_str().unwrap()
        );
        let text = EXABGP_CONF
            .replace("/usr/local/bin/dr-director ctl watch", &watch)
            .replace("10.88.0.2", addr);
        std::fs::write(&conf, text).unwrap();
        let mut exabgp = self.exec(host, "exabgp");
        exabgp.arg("--env").arg(example("exabgp.env")).arg(&conf);
        self.spawn(&format!("{host}-exabgp"), exabgp);
    }

    /// BIRD 2 in a director's namespace, fed by dr-routes-bird.
    fn bird(&mut self, host: &str, addr: &str) {
        let conf = self.dir.join(format!("{host}-bird.conf"));
        std::fs::write(&conf, BIRD_DIRECTOR.replace("10.88.0.3", addr)).unwrap();
        let mut bird = self.exec(host, "bird");
        bird.arg("-f").arg("-c").arg(&conf);
        bird.arg("-s").arg(self.dir.join(format!("{host}-bird.ctl")));
        bird.arg("-P").arg(self.dir.join(format!("{host}-bird.pid")));
        self.spawn(&format!("{host}-bird"), bird);
        let mut routes = self.exec(host, "sh");
        routes.arg(example("dr-routes-bird"));
        routes.arg("--socket").arg(self.dir.join(format!("{host}.sock")));
        routes.env("DR_DIRECTOR", env!("CARGO_BIN_EXE_dr-director"));
        self.spawn(&format!("{host}-routes"), routes);
    }

    fn director(&mut self, host: &str) -> u32 {
        self.director_with(host, DIRECTOR_CONF, &[])
    }

    /// dr-director on `host` with the configuration `conf` and more flags.
    fn director_with(&mut self, host: &str, conf: &str, flags: &[&str]) -> u32 {
        let config = self.dir.join(format!("{host}-director.toml"));
        std::fs::write(&config, conf).unwrap();
        let mut d = self.exec(host, env!("CARGO_BIN_EXE_dr-director"));
        d.args(["--iface", "eth0", "--config"]).arg(&config);
        d.arg("--control").arg(self.dir.join(format!("{host}.sock")));
        d.args(flags);
        self.spawn(host, d)
    }

    /// `dr-director ctl …` on a director, its output.
    fn ctl(&self, host: &str, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_dr-director"))
            .arg("ctl")
            .arg("--socket")
            .arg(self.dir.join(format!("{host}.sock")))
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }

    /// The next hops the router's kernel has for the VIP.
    fn next_hops(&self) -> Vec<String> {
        let out = self.exec("rt", "ip").args(["-4", "route", "show", VIP]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let words: Vec<&str> = text.split_whitespace().collect();
        let mut hops: Vec<String> =
            words.windows(2).filter(|w| w[0] == "via").map(|w| w[1].to_string()).collect();
        hops.sort();
        hops
    }

    /// Waits (at most `limit`) until the router's next hops for the VIP are `hops`;
    /// returns when they were first seen so.
    fn wait_hops(&self, hops: &[&str], limit: Duration) -> Option<Instant> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.next_hops() == hops {
                return Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// `dr-director ctl … -L -n -c` on a director: its connection entries.
    fn entries(&self, host: &str) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_dr-director"))
            .arg("ctl")
            .arg("--socket")
            .arg(self.dir.join(format!("{host}.sock")))
            .args(["-L", "-n", "-c"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The example configurations this test runs (README "Several directors").
const BIRD_ROUTER: &str = include_str!("../ecmp/bird-router.conf");
const BIRD_DIRECTOR: &str = include_str!("../ecmp/bird-director.conf");
const EXABGP_CONF: &str = include_str!("../ecmp/exabgp.conf");
const DIRECTOR_CONF: &str = include_str!("../ecmp/director.toml");

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ecmp").join(name)
}

/// What announces a director's VIPs to the router.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Daemon {
    /// ExaBGP, its process `dr-director ctl watch --exabgp` (exabgp.conf).
    Exabgp,
    /// BIRD 2, fed by dr-routes-bird through kernel table 100 (bird-director.conf).
    Bird,
}

/// Echoes each line back prefixed with the server's name, one thread per connection.
const ECHO_SERVER: &str = r#"
import socket, sys, threading
name, port = sys.argv[1].encode(), int(sys.argv[2])
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", port))
srv.listen(256)
def serve(c):
    with c:
        f = c.makefile("rb")
        for line in f:
            c.sendall(name + b" " + line)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// Holds `n` connections to the VIP and sends a line on each, in turn, every 50 ms, until
/// the stop file appears; a connection is lost when it fails, or when its answer comes
/// from another server than its first. Meanwhile a second thread opens a new connection
/// every 50 ms (a 500 ms connect and answer timeout) and logs each attempt as
/// "time ok|fail". Writes `ready` once every held connection has answered, and at the end
/// "held N lost M servers S".
const CLIENT: &str = r#"
import os, socket, sys, threading, time
vip, port, n, dir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
stop = os.path.join(dir, "stop")
def ask(s, line):
    s.sendall(line + b"\n")
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(256)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data.split(b" ")[0].decode()
def probe():
    with open(os.path.join(dir, "probes"), "w") as log:
        i = 0
        while not os.path.exists(stop):
            i += 1
            ok = "fail"
            try:
                with socket.create_connection((vip, port), timeout=0.5) as s:
                    s.settimeout(0.5)
                    ask(s, b"new %d" % i)
                    ok = "ok"
            except OSError:
                pass
            log.write("%f %s\n" % (time.time(), ok))
            log.flush()
            time.sleep(0.05)
held, first, lost = [], [], 0
for i in range(n):
    s = socket.create_connection((vip, port), timeout=5)
    s.settimeout(20)
    held.append(s)
    first.append(ask(s, b"hello"))
open(os.path.join(dir, "ready.tmp"), "w").write(" ".join(first))
os.rename(os.path.join(dir, "ready.tmp"), os.path.join(dir, "ready"))
threading.Thread(target=probe, daemon=True).start()
alive = [True] * n
while not os.path.exists(stop):
    for i, s in enumerate(held):
        if not alive[i]:
            continue
        try:
            if ask(s, b"held %d" % i) != first[i]:
                alive[i] = False
                lost += 1
        except OSError:
            alive[i] = False
            lost += 1
    time.sleep(0.05)
open(os.path.join(dir, "result.tmp"), "w").write("held %d lost %d servers %d\n" % (n, lost, len(set(first))))
os.rename(os.path.join(dir, "result.tmp"), os.path.join(dir, "result"))
"#;

/// Root, `ip`, `python3`, `bird` and `exabgp` are needed; in CI their absence is a failure.
fn ready() -> bool {
    let have = |program: &str, arg: &str| {
        Command::new(program).arg(arg).output().is_ok_and(|o| o.status.success())
    };
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout == b"0\n");
    let tools = have("ip", "-V") && have("python3", "-V") && have("bird", "--version");
    let exabgp = have("exabgp", "--version");
    if root && tools && exabgp {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run the ECMP test as root with ip, python3, bird (bird2) and exabgp"
    );
    eprintln!("skipped: the ECMP test needs root, ip, python3, bird (bird2) and exabgp");
    false
}

/// Waits (at most `limit`) for a file.
fn wait_file(path: &Path, limit: Duration) -> Option<String> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(path) {
            return Some(text);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// How many new-connection attempts failed since `since` (seconds since the epoch), and
/// when the last of them was made.
fn failures(dir: &Path, since: f64) -> (usize, Option<f64>) {
    let failed: Vec<f64> =
        probes(dir, since).into_iter().filter(|(_, ok)| !ok).map(|(t, _)| t).collect();
    (failed.len(), failed.last().copied())
}

/// The new-connection attempts logged since `since` (seconds since the epoch).
fn probes(dir: &Path, since: f64) -> Vec<(f64, bool)> {
    let text = std::fs::read_to_string(dir.join("probes")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (t, ok) = l.split_once(' ')?;
            Some((t.parse().ok()?, ok == "ok"))
        })
        .filter(|(t, _)| *t >= since)
        .collect()
}

#[test]
#[cfg_attr(not(dr_root), ignore = "needs root (CAP_NET_ADMIN, CAP_NET_RAW)")]
fn a_director_killed_behind_ecmp_loses_no_connection_and_announces_again_after_its_delay() {
    failover(Daemon::Exabgp);
}

/// The same with BIRD 2 announcing the killed director's VIP (d2), fed by dr-routes-bird.
#[test]
#[cfg_attr(not(dr_root), ignore = "needs root (CAP_NET_ADMIN, CAP_NET_RAW)")]
fn the_same_with_bird_announcing_for_the_killed_director() {
    failover(Daemon::Bird);
}

/// Both directors up; the one `daemon` announces for (d1 with ExaBGP, d2 with BIRD; the
/// other always runs ExaBGP) killed, then restarted.
fn failover(daemon: Daemon) {
    if !ready() {
        return;
    }
    let started = Instant::now();
    let mut net = Net::new(match daemon {
        Daemon::Exabgp => "e",
        Daemon::Bird => "b",
    });
    net.router();
    for (host, addr) in DIRECTORS {
        net.director(host);
        if daemon == Daemon::Bird && host == "d2" {
            net.bird(host, addr);
        } else {
            net.exabgp(host, addr);
        }
    }
    let (victim, survivor, survivor_addr) = match daemon {
        Daemon::Exabgp => ("d1", "d2", "10.88.0.3"),
        Daemon::Bird => ("d2", "d1", "10.88.0.2"),
    };
    // Both announce, after their delay and the BGP sessions.
    let both = ["10.88.0.2", "10.88.0.3"];
    assert!(net.wait_hops(&both, Duration::from_secs(30)).is_some(), "{}", net.logs());

    let n = 24;
    let mut client = net.exec("c", "python3");
    client.args(["-c", CLIENT, VIP, &PORT.to_string(), &n.to_string()]).arg(&net.dir);
    net.spawn("client", client);
    let ready = wait_file(&net.dir.join("ready"), Duration::from_secs(15));
    let ready = ready.unwrap_or_else(|| panic!("the held connections: {}", net.logs()));
    let servers: std::collections::HashSet<&str> = ready.split_whitespace().collect();
    assert!(servers.len() > 1, "mh spread the flows: {ready}");
    // The router spread them over both directors.
    let on = |net: &Net, host: &str| net.entries(host).matches("ESTABLISHED").count();
    let (on1, on2) = (on(&net, "d1"), on(&net, "d2"));
    assert!(on1 > 0 && on2 > 0, "d1 {on1}, d2 {on2} held connections\n{}", net.logs());
    std::thread::sleep(Duration::from_secs(1));

    // The victim dies at once: its watch withdraws the VIP, the router moves its flows to
    // the survivor.
    let killed_at = now_secs();
    let killed = Instant::now();
    net.kill(victim);
    let converged = net.wait_hops(&[survivor_addr], Duration::from_secs(10));
    let converged =
        converged.unwrap_or_else(|| panic!("the route did not converge\n{}", net.logs()));
    let convergence = converged - killed;
    std::thread::sleep(Duration::from_secs(2));
    let (failed, last_failure) = failures(&net.dir, killed_at);
    eprintln!(
        "{daemon:?}: {victim}'s dr-director killed: the route converged in {} ms; {failed} new \
         connections failed, the last {} ms after the kill",
        convergence.as_millis(),
        last_failure.map_or(0, |t| ((t - killed_at) * 1000.0) as u64),
    );
    assert!(
        last_failure.is_none_or(|t| t - killed_at < 2.0),
        "new connections failed for {last_failure:?} s after the kill"
    );
    // The survivor took over the moved flows mid-stream, ESTABLISHED from their first
    // segment.
    let entries = net.entries(survivor);
    assert!(on(&net, survivor) >= n, "{survivor} holds every connection now:\n{entries}");

    // The victim restarted: it announces only after its delay.
    let restarted = Instant::now();
    net.children.retain(|(name, _)| name != victim);
    net.director(victim);
    let back = net.wait_hops(&both, Duration::from_secs(ANNOUNCE_DELAY + 10));
    let back = back.unwrap_or_else(|| panic!("{victim} did not announce again\n{}", net.logs()));
    let waited = back - restarted;
    eprintln!("{daemon:?}: {victim} restarted: announced again after {} ms", waited.as_millis());
    assert!(waited >= Duration::from_secs(ANNOUNCE_DELAY), "announced after {waited:?}");
    std::thread::sleep(Duration::from_secs(2));
    let entries = net.entries(victim);
    assert!(on(&net, victim) > 0, "flows moved back to {victim}:\n{entries}");
    let mut settled = now_secs();

    if daemon == Daemon::Exabgp {
        // The victim's host vanishes (its link cut, ExaBGP and all): the router drops its
        // session after the 3 s hold time, and the connections move again. New
        // connections to the vanished director fail until then.
        let cut_at = now_secs();
        let cut = Instant::now();
        ip(&["-n", &net.ns(victim), "link", "set", "eth0", "down"]);
        let gone = net.wait_hops(&[survivor_addr], Duration::from_secs(10));
        let gone = gone.unwrap_or_else(|| panic!("the session did not expire\n{}", net.logs()));
        std::thread::sleep(Duration::from_secs(2));
        let (failed, last_failure) = failures(&net.dir, cut_at);
        eprintln!(
            "{daemon:?}: {victim}'s host cut off: the route converged in {} ms (hold time 3 s); \
             {failed} new connections failed, the last {} ms after the cut",
            (gone - cut).as_millis(),
            last_failure.map_or(0, |t| ((t - cut_at) * 1000.0) as u64),
        );
        assert!(last_failure.is_none_or(|t| t - cut_at < 5.0), "{last_failure:?}");
        settled = now_secs();
    }

    std::fs::write(net.dir.join("stop"), "").unwrap();
    let result = wait_file(&net.dir.join("result"), Duration::from_secs(30));
    let result = result.unwrap_or_else(|| panic!("the client did not finish\n{}", net.logs()));
    assert_eq!(
        result.trim(),
        format!("held {n} lost 0 servers {}", servers.len()),
        "{}",
        net.logs()
    );
    let (failed, _) = failures(&net.dir, settled);
    assert_eq!(failed, 0, "new connections failed once the routes had settled");
    eprintln!("the test took {} s", started.elapsed().as_secs());
}

/// Both directors run `--sync both`: each sends its connections and imports the other's.
const SYNC_BOTH: [&str; 4] = ["--sync", "both", "--syncid", "1"];

/// With `--sync both`, d1 killed, a fourth real server added to the service on both
/// directors (so mh picks change), and d1 restarted: it asks d2 for a bulk resync, holds
/// every held connection before `ctl watch` says announce, logs the resync's end before its
/// announcement, and once announced the flows ECMP moves back to it keep their servers:
/// none is lost.
#[test]
#[cfg_attr(not(dr_root), ignore = "needs root (CAP_NET_ADMIN, CAP_NET_RAW)")]
fn with_sync_both_a_restarted_director_has_the_table_back_before_it_announces() {
    if !ready() {
        return;
    }
    let started = Instant::now();
    let mut net = Net::new("s");
    net.router();
    for (host, addr) in DIRECTORS {
        net.director_with(host, DIRECTOR_CONF, &SYNC_BOTH);
        net.exabgp(host, addr);
    }
    // Each answered the other's resync request at once.
    let answered = Instant::now();
    let both = ["10.88.0.2", "10.88.0.3"];
    assert!(net.wait_hops(&both, Duration::from_secs(30)).is_some(), "{}", net.logs());
    let n = 24;
    let mut client = net.exec("c", "python3");
    client.args(["-c", CLIENT, VIP, &PORT.to_string(), &n.to_string()]).arg(&net.dir);
    net.spawn("client", client);
    let ready = wait_file(&net.dir.join("ready"), Duration::from_secs(15));
    let ready = ready.unwrap_or_else(|| panic!("the held connections: {}", net.logs()));
    let servers: std::collections::HashSet<&str> = ready.split_whitespace().collect();
    let held = |net: &Net, host: &str| {
        net.entries(host).lines().filter(|l| l.contains("ESTABLISHED")).count()
    };
    // Each director holds its own flows and the other's (sent at their 3rd packet, in a
    // message at most 2 s later).
    let deadline = Instant::now() + Duration::from_secs(8);
    while (held(&net, "d1") < n || held(&net, "d2") < n) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (on1, on2) = (held(&net, "d1"), held(&net, "d2"));
    assert!(on1 >= n && on2 >= n, "synced: d1 {on1}, d2 {on2}\n{}", net.logs());

    // d1 dies; d2 has every flow already.
    net.kill("d1");
    assert!(net.wait_hops(&["10.88.0.3"], Duration::from_secs(10)).is_some(), "{}", net.logs());
    // A fourth server joins the service on both: d2 now, d1's file for its restart.
    net.real(4);
    let added = net.ctl("d2", &["-a", "-t", &format!("{VIP}:{PORT}"), "-r", "10.88.0.14", "-g"]);
    assert!(!added.contains("rror"), "{added}");
    // An announce delay of 1 s: the resync alone would let it announce within a few ms of
    // its end, quicker than a listing can be polled.
    let four = DIRECTOR_CONF.replace("announce_delay = 3", "announce_delay = 1")
        + "\n[[service.real]]\nip = \"10.88.0.14\"\n";
    // d2 sends one bulk resync per 10 s: if it answered d1's first request less than 10 s
    // ago, it defers this one until 10 s after that answer, within d1's resync_wait (15 s).
    eprintln!("d1 restarts {} ms after d2's first answer", answered.elapsed().as_millis());

    // d1 restarted, a timestamped watch of its announcements beside ExaBGP's.
    let watch_log = net.dir.join("d1-watch");
    let mut watch = Command::new("sh");
    watch.arg("-c").arg(format!(
        "{} ctl --socket {} watch | while read -r l; do echo \"$(date +%s.%N) $l\"; done > {}",
        env!("CARGO_BIN_EXE_dr-director"),
        net.dir.join("d1.sock").to_str().unwrap(),
        watch_log.to_str().unwrap()
    ));
    net.spawn("d1-watch", watch);
    net.children.retain(|(name, _)| name != "d1");
    let restarted = now_secs();
    net.director_with("d1", &four, &SYNC_BOTH);
    let mut full_at = None;
    let mut announced_at = None;
    let announce_line = format!("route: announce {VIP}");
    let deadline = Instant::now() + Duration::from_secs(15);
    while announced_at.is_none() && Instant::now() < deadline {
        if full_at.is_none() && held(&net, "d1") >= n {
            full_at = Some(now_secs());
            // Read after the listing: the director had not announced when it listed.
            let log = net.log("d1");
            assert!(!log.contains(&announce_line), "announced before the table was back\n{log}");
        }
        let text = std::fs::read_to_string(&watch_log).unwrap_or_default();
        announced_at = text
            .lines()
            .find(|l| l.ends_with(&format!("announce {VIP}")))
            .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok());
        std::thread::sleep(Duration::from_millis(20));
    }
    let announced_at =
        announced_at.unwrap_or_else(|| panic!("d1 did not announce again\n{}", net.logs()));
    let log = net.log("d1");
    let resync = log.lines().find(|l| l.contains("sync: resync ")).unwrap_or("").to_string();
    let daemon = net.ctl("d1", &["-L", "--daemon"]);
    eprintln!(
        "d1 restarted: its table held the {n} connections {} ms after the start, it announced \
         {} ms after the start; {}",
        full_at.map_or(-1, |t| ((t - restarted) * 1000.0) as i64),
        ((announced_at - restarted) * 1000.0) as i64,
        resync.split("sync: ").nth(1).unwrap_or("(no resync line)")
    );
    let full_at = full_at.unwrap_or_else(|| panic!("d1's table before the announce\n{log}"));
    assert!(full_at <= announced_at, "announced before the table was back:\n{daemon}");
    assert!(resync.contains("resync done in"), "{resync}\n{log}");
    // The director announced (what its watches are told) only after the resync ended.
    let order = |needle: &str| log.find(needle).unwrap_or(usize::MAX);
    assert!(order("sync: resync done") < order(&announce_line), "{log}");
    assert!(daemon.contains("resync done in") && daemon.contains("1 of 1 peers ended"), "{daemon}");

    // ECMP sends some held flows back to d1: they keep their servers.
    assert!(net.wait_hops(&both, Duration::from_secs(10)).is_some(), "{}", net.logs());
    std::thread::sleep(Duration::from_secs(2));
    let stats = net.ctl("d1", &["-L", "-n", "--stats"]);
    std::fs::write(net.dir.join("stop"), "").unwrap();
    let result = wait_file(&net.dir.join("result"), Duration::from_secs(30));
    let result = result.unwrap_or_else(|| panic!("the client did not finish\n{}", net.logs()));
    assert_eq!(
        result.trim(),
        format!("held {n} lost 0 servers {}", servers.len()),
        "{stats}\n{}",
        net.logs()
    );
    eprintln!("d1 after its return:\n{stats}the test took {} s", started.elapsed().as_secs());
}
