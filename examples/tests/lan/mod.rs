//! The LAN of network namespaces the end-to-end tests run on, as root: a bridge, a client,
//! a director host (the VIP not on its kernel, IPv4 forwarding off) and three real servers
//! with the VIP on `lo`, `arp_ignore=1`, `arp_announce=2`, each serving HTTP.
//!
//! Only addresses inside those namespaces are used; everything is torn down when the
//! [`Lan`] is dropped, even when a test fails; every wait is bounded.
//!
//! Each test file uses a part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) const VIP: &str = "10.77.0.100";
pub(crate) const VIP6: &str = "2001:db8:77::100";

/// The backend a test's director runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    AfPacket,
    AfXdp,
}

impl Backend {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::AfPacket => "afpacket",
            Self::AfXdp => "afxdp",
        }
    }
}

/// The namespaces, processes and files of one test, removed on drop.
pub(crate) struct Lan {
    pub(crate) backend: Backend,
    /// The director's workers, and so its interface's queues on AF_XDP.
    pub(crate) workers: u16,
    pub(crate) prefix: String,
    pub(crate) namespaces: Vec<String>,
    pub(crate) children: Vec<Child>,
    /// Each real server's HTTP server, by host.
    pub(crate) servers: HashMap<String, Child>,
    pub(crate) dir: PathBuf,
}

pub(crate) fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

pub(crate) fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

impl Lan {
    pub(crate) fn ns(&self, host: &str) -> String {
        format!("{}{host}", self.prefix)
    }

    pub(crate) fn exec(&self, host: &str, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(host), program]);
        cmd
    }

    pub(crate) fn sysctl(&self, host: &str, setting: &str) {
        run(self.exec(host, "sysctl").args(["-q", "-w", setting]));
    }

    /// The bridge, and one host on it with `eth0` addressed `v4`/24 and `v6`/64.
    pub(crate) fn host(&mut self, host: &str, v4: &str, v6: &str) {
        let ns = self.ns(host);
        ip(&["netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        let lan = self.ns("lan");
        let port = format!("{}p", host);
        let queues = if host == "d" { self.workers } else { 1 }.to_string();
        let q: &[&str] = &["numtxqueues", &queues, "numrxqueues", &queues];
        let link: Vec<&str> = ["link", "add", "eth0", "netns", &ns]
            .into_iter()
            .chain(q.iter().copied())
            .chain(["type", "veth", "peer", "name", &port, "netns", &lan])
            .chain(q.iter().copied())
            .collect();
        ip(&link);
        ip(&["-n", &lan, "link", "set", &port, "master", "br0", "up"]);
        if self.backend == Backend::AfXdp {
            // Checksums complete and VLAN tags in the frame, as on a physical LAN.
            run(self.exec(host, "ethtool").args(["-K", "eth0", "tx", "off", "txvlan", "off"]));
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", &lan, "ethtool", "-K", &port, "tx", "off", "txvlan", "off"]);
            run(&mut cmd);
        }
        for (addr, family) in [(format!("{v4}/24"), "-4"), (format!("{v6}/64"), "-6")] {
            let mut args = vec!["-n", &ns, family, "addr", "add", addr.as_str(), "dev", "eth0"];
            if family == "-6" {
                args.push("nodad");
            }
            ip(&args);
        }
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
    }

    /// A LAN whose namespaces are named after `tag`, the backend and this process, for a
    /// director with `workers` workers.
    pub(crate) fn new(tag: &str, backend: Backend, workers: u16) -> Self {
        let b = &backend.name()[2..3];
        let prefix = format!("dr{tag}{b}{}", std::process::id() % 100_000);
        let dir = std::env::temp_dir().join(format!("{prefix}-e2e"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut lan = Self {
            backend,
            workers,
            prefix,
            namespaces: Vec::new(),
            children: Vec::new(),
            servers: HashMap::new(),
            dir,
        };
        let ns = lan.ns("lan");
        ip(&["netns", "add", &ns]);
        lan.namespaces.push(ns.clone());
        ip(&["-n", &ns, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &ns, "link", "set", "br0", "up"]);
        // With br_netfilter loaded, bridged frames would cross the host's iptables (and
        // its connection tracking, which sees only one direction of a DR connection).
        for family in ["iptables", "ip6tables", "arptables"] {
            let setting = format!("net.bridge.bridge-nf-call-{family}");
            let path = format!("/proc/sys/{}", setting.replace('.', "/"));
            let present = lan.exec("lan", "test").args(["-e", &path]).status();
            if present.is_ok_and(|s| s.success()) {
                lan.sysctl("lan", &format!("{setting}=0"));
            }
        }
        lan.host("c", "10.77.0.10", "2001:db8:77::10");
        lan.host("d", "10.77.0.2", "2001:db8:77::2");
        lan.sysctl("d", "net.ipv4.ip_forward=0");
        for i in 1..=3 {
            let host = format!("r{i}");
            lan.host(&host, &format!("10.77.0.1{i}"), &format!("2001:db8:77::1{i}"));
            let ns = lan.ns(&host);
            ip(&["-n", &ns, "addr", "add", &format!("{VIP}/32"), "dev", "lo"]);
            ip(&["-n", &ns, "-6", "addr", "add", &format!("{VIP6}/128"), "dev", "lo", "nodad"]);
            for setting in [
                "net.ipv4.conf.all.arp_ignore=1",
                "net.ipv4.conf.all.arp_announce=2",
                "net.ipv4.conf.eth0.arp_ignore=1",
                "net.ipv4.conf.eth0.arp_announce=2",
            ] {
                lan.sysctl(&host, setting);
            }
            let root = lan.dir.join(&host);
            std::fs::create_dir_all(&root).unwrap();
            std::fs::write(root.join("who"), &host).unwrap();
            lan.serve(&host);
        }
        lan
    }

    /// Starts `host`'s HTTP server on port 80 (every address it has, the VIPs too), serving
    /// its directory: `/who` answers its name.
    pub(crate) fn serve(&mut self, host: &str) {
        let server = self
            .exec(host, "python3")
            .args(["-m", "http.server", "80", "--bind", "::", "--directory"])
            .arg(self.dir.join(host))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m http.server");
        assert!(self.servers.insert(host.to_string(), server).is_none(), "{host} serves already");
    }

    /// Stops `host`'s HTTP server: its kernel refuses connections to port 80 from then on.
    pub(crate) fn stop_serving(&mut self, host: &str) {
        let mut server = self.servers.remove(host).expect("a running server");
        server.kill().unwrap();
        let _ = server.wait();
    }

    /// Starts dr-director in its namespace with this configuration and these arguments.
    pub(crate) fn director(&mut self, config: &str, extra: &[&str]) -> u32 {
        self.director_on("d", config, extra)
    }

    /// The files of the director on `host`: its configuration, log and control socket.
    pub(crate) fn director_files(&self, host: &str) -> (PathBuf, PathBuf, PathBuf) {
        let name = |file: &str| {
            if host == "d" { self.dir.join(file) } else { self.dir.join(format!("{host}-{file}")) }
        };
        (name("director.toml"), name("director.log"), name("ctl.sock"))
    }

    /// Starts dr-director on `host`'s `eth0`.
    pub(crate) fn director_on(&mut self, host: &str, config: &str, extra: &[&str]) -> u32 {
        let path = self.director_files(host).0;
        std::fs::write(&path, config).unwrap();
        self.director_with_on(host, &[OsStr::new("--config"), path.as_os_str()], extra)
    }

    /// Starts dr-director in its namespace with `services` (`--config FILE`, `--keepalived
    /// FILE` …) and these arguments, its output in the log.
    pub(crate) fn director_with(&mut self, services: &[&OsStr], extra: &[&str]) -> u32 {
        self.director_with_on("d", services, extra)
    }

    fn director_with_on(&mut self, host: &str, services: &[&OsStr], extra: &[&str]) -> u32 {
        let (_, log, socket) = self.director_files(host);
        let log = std::fs::File::create(log).unwrap();
        let child = self
            .exec(host, env!("CARGO_BIN_EXE_dr-director"))
            .args(["--iface", "eth0", "--metrics", "127.0.0.1:9813"])
            .args(services)
            .args(["--backend", self.backend.name()])
            .arg("--control")
            .arg(socket)
            .args(extra)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("dr-director");
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// `dr-director ctl` on the director of `host`.
    pub(crate) fn ctl_on(&self, host: &str, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_dr-director"))
            .arg("ctl")
            .arg("--socket")
            .arg(self.director_files(host).2)
            .args(args)
            .output()
            .unwrap()
    }

    /// `dr-director ctl` on this LAN's director.
    pub(crate) fn ctl(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_dr-director"))
            .arg("ctl")
            .arg("--socket")
            .arg(self.dir.join("ctl.sock"))
            .args(args)
            .output()
            .unwrap()
    }

    /// Sends SIGTERM to the director and waits (at most 5 s) for a clean exit.
    pub(crate) fn stop_director(&mut self, pid: u32) {
        run(Command::new("kill").args(["-TERM", &pid.to_string()]));
        let deadline = Instant::now() + Duration::from_secs(5);
        let director = self.children.iter_mut().find(|c| c.id() == pid).unwrap();
        let status = loop {
            if let Some(status) = director.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "dr-director did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "{}", self.log());
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("director.log")).unwrap_or_default()
    }

    /// One HTTP request from the client, on a new connection: the body, or None.
    pub(crate) fn get(&self, url: &str) -> Option<String> {
        let out =
            self.exec("c", "curl").args(["-s", "-g", "--max-time", "3", url]).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Waits (at most `limit`) until a request to `url` succeeds.
    pub(crate) fn wait_for(&self, url: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.get(url).is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for child in self.children.iter_mut().chain(self.servers.values_mut()) {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether this process runs as root (`id -u` is 0).
pub(crate) fn root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout == b"0\n")
}

/// Root, `ip`, `python3`, `curl`, `tcpdump` and `ethtool` are needed; in CI their absence is a failure.
/// A build that is not root's compiles these tests ignored (see dr-io-afpacket/build.rs);
/// run all the same (`--include-ignored`), they skip, saying so.
pub(crate) fn ready() -> bool {
    let have = |program: &str, arg: &str| {
        Command::new(program).arg(arg).output().is_ok_and(|o| o.status.success())
    };
    let root = root();
    let tools = have("ip", "-V")
        && have("python3", "-V")
        && have("curl", "-V")
        && have("tcpdump", "--version")
        && have("ethtool", "--version");
    if root && tools {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run the end-to-end tests as root with ip, python3, curl, tcpdump and ethtool"
    );
    eprintln!("skipped: the end-to-end tests need root, ip, python3, curl, tcpdump and ethtool");
    false
}
