//! dr-director's control socket: a Unix socket, readable and writable by its owner only,
//! that takes one ipvsadm command line per connection (see [`crate::ipvsadm`]) and answers
//! `OK` or `ERR` on the first line, then the command's output or the error. After a `-R`
//! (restore) line come the rules, up to the end of the client's stream.
//!
//! [`execute`] runs a command on the directors of every worker: changes go to each, and a
//! listing is one listing of them all, the workers' counters, rates and connection counts
//! added up ([`dr_core::Table::add`]); `--per-worker` lists each worker apart. A restore is
//! checked whole on a copy of the services first, so a line that fails changes nothing.
//!
//! A connection whose line is [`routes::WATCH_REQUEST`] stays open instead: it is told the
//! VIPs announced and then every change ([`ControlSocket::publish`]), for
//! `dr-director ctl watch`.

use crate::ipvsadm::{self, Command, Macs, Rule};
use crate::routes::{self, Change};
use crate::rules;
use dr_core::{Director, Instant, Listing, ListingFormat, Table};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The socket dr-director listens on unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/dr-director.sock";

/// The most rules a restore takes, in bytes.
pub const MAX_RESTORE: u64 = 1 << 20;

/// The listening side, polled by the director's loop without blocking it.
#[derive(Debug)]
pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
    /// The socket file's device and inode, so that only our own file is removed.
    file: (u64, u64),
    /// The watch connections, told each change of the announced VIPs.
    watchers: RefCell<Vec<UnixStream>>,
    /// The VIPs announced now, told to each new watcher first.
    announced: RefCell<BTreeSet<IpAddr>>,
    /// When the watchers were last told anything.
    last_said: std::cell::Cell<std::time::Instant>,
}

/// A file's device and inode.
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl ControlSocket {
    /// Listens on `path`, mode 0600. A socket file left there by a director that is gone is
    /// replaced; one a running director answers on is never taken over, nor is any other
    /// file.
    ///
    /// # Errors
    ///
    /// A message naming the path and what failed.
    pub fn bind(path: &Path) -> Result<Self, String> {
        use std::os::unix::fs::FileTypeExt;
        let fail = |e: std::io::Error| format!("control socket {}: {e}", path.display());
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(format!(
                    "control socket {}: the path exists and is not a socket; remove it or give \
                     another --control",
                    path.display()
                ));
            }
            if UnixStream::connect(path).is_ok() {
                return Err(format!(
                    "control socket {}: a running dr-director answers on it; stop that one or \
                     give this one another --control",
                    path.display()
                ));
            }
            // Nobody listens: a director that is gone left it.
            std::fs::remove_file(path).map_err(fail)?;
        }
        let listener = UnixListener::bind(path).map_err(fail)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
        listener.set_nonblocking(true).map_err(fail)?;
        let file = identity(path).ok_or_else(|| fail(std::io::Error::other("it vanished")))?;
        Ok(Self {
            listener,
            path: path.to_path_buf(),
            file,
            watchers: RefCell::default(),
            announced: RefCell::default(),
            last_said: std::cell::Cell::new(std::time::Instant::now()),
        })
    }

    /// Serves every request waiting now with `handle`, which turns a request (a command
    /// line; for `-R`, the line, a newline and the rules) into its output or an error.
    /// Returns how many were served.
    pub fn serve(&self, mut handle: impl FnMut(&str) -> Result<String, String>) -> usize {
        let mut served = 0;
        while let Ok((stream, _)) = self.listener.accept() {
            served += 1;
            // A client that does not send its line within a second is dropped.
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let mut line = String::new();
            let mut reader = BufReader::new(&stream).take(4096);
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut request = line.trim().to_string();
            if request == routes::WATCH_REQUEST {
                self.add_watcher(stream);
                continue;
            }
            let restore = ipvsadm::parse(&request).is_ok_and(|r| r.command == Command::Restore);
            let mut input = String::new();
            let reply = if restore
                && ({
                    reader.set_limit(MAX_RESTORE + 1);
                    reader.read_to_string(&mut input).is_err()
                } || input.len() as u64 > MAX_RESTORE)
            {
                format!(
                    "ERR\nthe rules did not arrive whole (at most {MAX_RESTORE} bytes, sent with \
                     {})\n",
                    ipvsadm::RESTORE_HOW
                )
            } else {
                if restore {
                    request.push('\n');
                    request.push_str(&input);
                }
                match handle(&request) {
                    Ok(output) => format!("OK\n{output}"),
                    Err(message) => format!("ERR\n{message}\n"),
                }
            };
            let _ = (&stream).write_all(reply.as_bytes());
        }
        served
    }
}

impl ControlSocket {
    /// A new watcher: `OK`, then the VIPs announced now. It is written to without
    /// blocking from then on; one that does not keep up is dropped (it reconnects and is
    /// told the whole state again).
    fn add_watcher(&self, stream: UnixStream) {
        let mut text = String::from("OK\n");
        for vip in self.announced.borrow().iter() {
            text.push_str(&Change::Announce(*vip).line());
            text.push('\n');
        }
        if (&stream).write_all(text.as_bytes()).is_ok() && stream.set_nonblocking(true).is_ok() {
            self.watchers.borrow_mut().push(stream);
        }
    }

    /// Tells every watcher `changes` (and, when nothing was said for a
    /// [`routes::HEARTBEAT`], that the director is alive). Returns how many watch.
    pub fn publish(&self, changes: &[Change]) -> usize {
        let mut announced = self.announced.borrow_mut();
        let mut text = String::new();
        for change in changes {
            match change {
                Change::Announce(vip) => announced.insert(*vip),
                Change::Withdraw(vip) => announced.remove(vip),
            };
            text.push_str(&change.line());
            text.push('\n');
        }
        if text.is_empty() && self.last_said.get().elapsed() >= routes::HEARTBEAT {
            text.push_str("alive\n");
        }
        let mut watchers = self.watchers.borrow_mut();
        if !text.is_empty() {
            self.last_said.set(std::time::Instant::now());
            watchers.retain(|mut w| w.write_all(text.as_bytes()).is_ok());
        }
        watchers.len()
    }
}

impl Drop for ControlSocket {
    /// Withdraws what is announced from the watchers, and removes the socket file if it
    /// is still the one this director made.
    fn drop(&mut self) {
        let withdrawn: Vec<Change> =
            self.announced.borrow().iter().map(|&vip| Change::Withdraw(vip)).collect();
        self.publish(&withdrawn);
        for watcher in self.watchers.borrow().iter() {
            let _ = watcher.set_nonblocking(false);
            let _ = watcher.shutdown(std::net::Shutdown::Both);
        }
        if identity(&self.path) == Some(self.file) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The client side (`dr-director ctl`): sends one command line, returns the output. For
/// `-R` the rules are read from `stdin` and sent after it.
///
/// # Errors
///
/// The director's error message, or why the socket or `stdin` could not be used.
pub fn command(path: &Path, command: &str, mut stdin: impl Read) -> Result<String, String> {
    let restore = ipvsadm::parse(command).is_ok_and(|r| r.command == Command::Restore);
    if !restore {
        return request_with(path, command, None);
    }
    let mut rules = String::new();
    stdin.read_to_string(&mut rules).map_err(|e| format!("reading the rules: {e}"))?;
    request_with(path, command, Some(&rules))
}

/// Sends one command line, returns the output.
///
/// # Errors
///
/// The director's error message, or why the socket could not be used.
pub fn request(path: &Path, command: &str) -> Result<String, String> {
    request_with(path, command, None)
}

fn request_with(path: &Path, command: &str, input: Option<&str>) -> Result<String, String> {
    let mut stream = UnixStream::connect(path).map_err(|e| {
        format!(
            "control socket {}: {e} (is dr-director running, and are you root?)",
            path.display()
        )
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    writeln!(stream, "{command}").map_err(|e| e.to_string())?;
    if let Some(input) = input {
        stream.write_all(input.as_bytes()).map_err(|e| e.to_string())?;
    }
    stream.shutdown(std::net::Shutdown::Write).map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).map_err(|e| e.to_string())?;
    let mut body = String::new();
    reader.read_to_string(&mut body).map_err(|e| e.to_string())?;
    match status.trim() {
        "OK" => Ok(body),
        "ERR" => Err(body.trim_end().to_string()),
        other => Err(format!("unexpected answer from the director: {other:?}")),
    }
}

/// The directors a control command runs on: dr-director's workers, each with its own
/// director, or directors in hand.
pub trait Directors {
    /// Runs `f` on every director with the current time, in order; `None` for one that
    /// did not answer.
    fn on_each<T: Send + 'static>(
        &self,
        f: impl Fn(&mut Director, Instant) -> T + Send + Sync + 'static,
    ) -> Vec<Option<T>>;
}

/// What a control command did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// What it prints.
    pub output: String,
    /// The command lines that changed the directors, in order (each line of a restore).
    pub applied: Vec<String>,
    /// Those of them that change the configuration (all but `-Z`), which reloading the
    /// configuration file would undo.
    pub configured: Vec<String>,
}

/// Every director's answer, or the first error or silence.
fn answers<T>(results: Vec<Option<Result<T, String>>>) -> Result<Vec<T>, String> {
    results
        .into_iter()
        .enumerate()
        .map(|(i, result)| result.ok_or(format!("worker {i} did not answer"))?)
        .collect()
}

/// Whether a request is `-L --daemon` (`--list`, `-n` and `--numeric` allowed): the sync
/// daemon's line, which the application answers.
pub fn is_daemon_listing(request: &str) -> bool {
    let line = request.lines().next().unwrap_or("");
    let words: Vec<&str> = line.split_whitespace().collect();
    words.contains(&"--daemon")
        && words.iter().any(|w| *w == "-L" || *w == "--list" || *w == "-Ln")
        && words.iter().all(|w| ["-L", "--list", "-Ln", "-n", "--numeric", "--daemon"].contains(w))
}

/// Runs one control request (a command line; for `-R`, the line, a newline and the rules)
/// on every director.
///
/// # Errors
///
/// What is wrong with the command, or a director's refusal.
pub fn execute(directors: &impl Directors, request: &str) -> Result<Outcome, String> {
    let (line, input) = request.split_once('\n').unwrap_or((request, ""));
    let line = line.trim();
    let rule = ipvsadm::parse(line)?;
    match rule.command {
        Command::Restore => restore(directors, input),
        Command::List(_) | Command::Save => {
            Ok(Outcome { output: list(directors, rule)?, ..Outcome::default() })
        }
        command => {
            answers(
                directors.on_each(move |d, now| ipvsadm::apply(d, &rule, &Macs::default(), now)),
            )?;
            let configured =
                if command == Command::Zero { Vec::new() } else { vec![line.to_string()] };
            Ok(Outcome { output: String::new(), applied: vec![line.to_string()], configured })
        }
    }
}

/// A listing of every director: one, added up, or each apart with `--per-worker`.
fn list(directors: &impl Directors, rule: Rule) -> Result<String, String> {
    if rule.per_worker {
        let outputs = answers(
            directors.on_each(move |d, now| ipvsadm::apply(d, &rule, &Macs::default(), now)),
        )?;
        return Ok(outputs
            .into_iter()
            .enumerate()
            .map(|(i, text)| format!("worker {i}:\n{text}"))
            .collect());
    }
    let Some(options) = rule.listing_options() else {
        // -c: every worker's entries under one title (each worker has its own).
        let texts = answers(directors.on_each(|d, now| Ok(d.connection_listing(now).to_string())))?;
        let mut text = String::new();
        for (i, listing) in texts.iter().enumerate() {
            let skip = if i == 0 { 0 } else { 2 };
            for line in listing.split_inclusive('\n').skip(skip) {
                text.push_str(line);
            }
        }
        return Ok(text);
    };
    let tables = answers(directors.on_each(|d, _| Ok(d.table())))?;
    let mut tables = tables.into_iter();
    let mut table: Table = tables.next().ok_or("no worker answered")?;
    for other in tables {
        table.add(&other);
    }
    if let Some(key) = options.service
        && table.service(&key).is_none()
    {
        return Err(ipvsadm::no_such_service(key));
    }
    Ok(Listing::new(table, options).to_string())
}

/// `-R`: the rules read whole, tried on a copy of the services (rebuilt from their `-S`
/// rules in a director with the smallest tables), then applied to every director.
fn restore(directors: &impl Directors, input: &str) -> Result<Outcome, String> {
    let parsed = rules::parse(input).map_err(|e| format!("-R: {e}; nothing was changed"))?;
    if parsed.is_empty() {
        return Ok(Outcome::default());
    }
    let (saved, mut config) = directors
        .on_each(|d, _| (d.listing(ListingFormat::Rules).to_string(), d.config().clone()))
        .into_iter()
        .next()
        .flatten()
        .ok_or("no worker answered")?;
    config.capacity = 1;
    config.fragment_capacity = 0;
    let options =
        rules::RulesOptions { config, neighbours: Default::default(), require_real_macs: false };
    let mut copy = rules::load(&saved, &options)
        .map_err(|e| format!("-R: the running services do not rebuild from their rules: {e}"))?;
    rules::apply(&mut copy, &parsed, &Macs::default())
        .map_err(|e| format!("-R: {e}; nothing was changed"))?;
    let lines: Vec<&str> = input.lines().collect();
    let text = |n: usize| lines.get(n - 1).map_or("", |l| l.split('#').next().unwrap_or("").trim());
    let applied: Vec<String> = parsed.iter().map(|(n, _)| text(*n).to_string()).collect();
    let configured = parsed
        .iter()
        .filter(|(_, rule)| rule.command != Command::Zero)
        .map(|(n, _)| text(*n).to_string())
        .collect();
    let parsed = std::sync::Arc::new(parsed);
    answers(directors.on_each(move |d, _| {
        rules::apply(d, &parsed, &Macs::default()).map_err(|e| format!("-R: {e}"))
    }))?;
    Ok(Outcome { output: String::new(), applied, configured })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Directors in hand, as the workers would hold them.
    struct InHand(RefCell<Vec<Director>>);

    impl Directors for InHand {
        fn on_each<T: Send + 'static>(
            &self,
            f: impl Fn(&mut Director, Instant) -> T + Send + Sync + 'static,
        ) -> Vec<Option<T>> {
            self.0.borrow_mut().iter_mut().map(|d| Some(f(d, Instant::from_secs(1)))).collect()
        }
    }

    fn workers(n: usize) -> InHand {
        let mac: dr_core::MacAddr = "02:00:00:00:00:01".parse().unwrap();
        let mut config = dr_core::Config::new(mac, [1, 2, 3, 4]);
        config.capacity = 1000;
        InHand(RefCell::new((0..n).map(|_| Director::new(config.clone()).unwrap()).collect()))
    }

    fn ok(directors: &InHand, request: &str) -> String {
        execute(directors, request).unwrap_or_else(|e| panic!("{request}: {e}")).output
    }

    /// A TCP SYN from a client to 10.0.0.1:80, built by hand (Ethernet, IPv4, TCP).
    fn syn(client_port: u16) -> Vec<u8> {
        let mut f = vec![0u8; 54];
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 0x99]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&40u16.to_be_bytes());
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&[192, 0, 2, 7]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 1]);
        let sum = checksum(ip);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        let tcp = &mut f[34..54];
        tcp[0..2].copy_from_slice(&client_port.to_be_bytes());
        tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
        tcp[12] = 0x50;
        tcp[13] = 0x02;
        f
    }

    fn checksum(header: &[u8]) -> u16 {
        let mut sum: u32 =
            header.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn ctl_sets_and_clears_ops_on_every_worker() {
        let w = workers(2);
        ok(&w, "-A -u 10.0.0.1:53 -s rr -o");
        ok(&w, "-A -u 10.0.0.1:54 -s rr");
        ok(&w, "-E -u 10.0.0.1:54 -s rr --ops");
        ok(&w, "-E -u 10.0.0.1:53 -s rr");
        for d in w.0.borrow().iter() {
            let ops: Vec<(u16, bool)> =
                d.services().map(|(_, s)| (s.key().port, s.one_packet())).collect();
            assert_eq!(ops, [(53, false), (54, true)]);
        }
        assert_eq!(ok(&w, "-S -n"), "-A -u 10.0.0.1:53 -s rr\n-A -u 10.0.0.1:54 -s rr -o\n");
        let refused = execute(&w, "-A -t 10.0.0.1:80 -o").unwrap_err();
        assert!(refused.contains("One-Packet Scheduling is only for UDP"), "{refused}");
    }

    #[test]
    fn a_listing_adds_up_the_workers() {
        let w = workers(2);
        for line in [
            "-A -t 10.0.0.1:80 -s rr",
            "-a -t 10.0.0.1:80 -r 10.0.0.11 -g -w 1",
            "-a -t 10.0.0.1:80 -r 10.0.0.12 -g -w 2",
        ] {
            let done = execute(&w, line).unwrap();
            assert_eq!(done.applied, [line]);
        }
        // Worker 0 gets two SYNs, worker 1 one: rr per worker, newest (.12) first.
        let mac: dr_core::MacAddr = "02:00:00:00:00:11".parse().unwrap();
        for (i, d) in w.0.borrow_mut().iter_mut().enumerate() {
            d.learn_neighbour("10.0.0.11".parse().unwrap(), mac);
            d.learn_neighbour("10.0.0.12".parse().unwrap(), mac);
            for port in 0..(2 - i as u16) {
                assert!(d.process(Instant::from_secs(1), &mut syn(1000 + port)).is_transmit());
            }
        }
        let expected = "\
IP Virtual Server version 1.2.1 (size=2000)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.0.1:80 rr
  -> 10.0.0.11:80                 Route   1      1          0         
  -> 10.0.0.12:80                 Route   2      2          0         
";
        assert_eq!(ok(&w, "-L -n"), expected);
        let expected = "\
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  10.0.0.1:80                         3        3        0      120        0
  -> 10.0.0.11:80                        1        1        0       40        0
  -> 10.0.0.12:80                        2        2        0       80        0
";
        assert_eq!(ok(&w, "-L -n --stats --exact -t 10.0.0.1:80"), expected);
        // Each worker apart on request.
        let apart = ok(&w, "-L -n --per-worker");
        assert!(apart.starts_with("worker 0:\nIP Virtual Server version 1.2.1 (size=1000)\n"));
        assert!(apart.contains("worker 1:\n"), "{apart}");
        assert!(apart.contains("  -> 10.0.0.12:80                 Route   2      1          0 "));
        // The connection entries of both under one title.
        let conns = ok(&w, "-L -n -c");
        assert_eq!(conns.matches("IPVS connection entries").count(), 1, "{conns}");
        assert_eq!(conns.lines().filter(|l| l.starts_with("TCP ")).count(), 3, "{conns}");
        let err = execute(&w, "-L -n -t 10.0.0.1:81").unwrap_err();
        assert_eq!(err, "No such service: -t 10.0.0.1:81 is not defined: add it with -A first");
        // -Z changes the counters, not the configuration a reload would put back.
        let done = execute(&w, "-Z").unwrap();
        assert_eq!((done.applied.len(), done.configured.len()), (1, 0));
    }

    #[test]
    fn a_restore_is_checked_whole_then_applied_to_every_worker() {
        let w = workers(2);
        ok(&w, "-A -t 10.0.0.1:80 -s wrr");
        let rules = "\
# the web service
-A -u 10.0.0.1:53 -s rr
-a -u 10.0.0.1:53 -r 10.0.0.11:53 -g -w 1
-a -t 10.0.0.1:80 -r 10.0.0.12 -w 4
-Z
";
        let done = execute(&w, &format!("-R\n{rules}")).unwrap();
        assert_eq!(done.applied.len(), 4);
        assert_eq!(done.configured.len(), 3);
        assert_eq!(done.applied[0], "-A -u 10.0.0.1:53 -s rr");
        for d in w.0.borrow().iter() {
            assert_eq!(d.services().count(), 2);
        }
        // A line that fails: nothing changes, and the error names the line.
        let before = ok(&w, "-S -n");
        let bad =
            "-A -t 10.0.0.2:80\n-a -t 10.0.0.2:80 -r 10.0.0.13\n-a -t 10.0.0.3:80 -r 10.0.0.14\n";
        let err = execute(&w, &format!("-R\n{bad}")).unwrap_err();
        assert!(err.starts_with("-R: line 3: Service not defined: -t 10.0.0.3:80"), "{err}");
        assert!(err.ends_with("nothing was changed"), "{err}");
        assert_eq!(ok(&w, "-S -n"), before);
        let err = execute(&w, "-R\n-A -t 10.0.0.2:80\n-L -n\n").unwrap_err();
        assert!(err.contains("line 2: -L (list) prints the table"), "{err}");
        assert_eq!(ok(&w, "-S -n"), before);
        // -C in a restore clears what came before, as ipvsadm -R does.
        execute(&w, "-R\n-C\n-A -t 10.0.0.9:80 -s lc\n").unwrap();
        assert_eq!(ok(&w, "-S -n"), "-A -t 10.0.0.9:80 -s lc\n");
    }

    #[test]
    fn restore_rules_travel_after_the_command_line() {
        let dir = std::env::temp_dir().join(format!("dr-control-restore-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ctl.sock");
        let socket = ControlSocket::bind(&path).unwrap();
        let client = std::thread::spawn({
            let path = path.clone();
            move || {
                let rules = "-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.0.2\n";
                (command(&path, "-R", rules.as_bytes()), command(&path, "-L -n", &b"ignored"[..]))
            }
        });
        let mut requests = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while requests.len() < 2 && std::time::Instant::now() < deadline {
            socket.serve(|request| {
                requests.push(request.to_string());
                Ok(String::new())
            });
            std::thread::sleep(Duration::from_millis(10));
        }
        let (restore, list) = client.join().unwrap();
        assert!(restore.is_ok() && list.is_ok());
        assert_eq!(requests, ["-R\n-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.0.2\n", "-L -n"]);
        drop(socket);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn one_command_per_connection_owner_only() {
        let dir = std::env::temp_dir().join(format!("dr-control-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ctl.sock");
        let socket = ControlSocket::bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let client = std::thread::spawn({
            let path = path.clone();
            move || (request(&path, "-L -n"), request(&path, "-X"))
        });
        let mut served = 0;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while served < 2 && std::time::Instant::now() < deadline {
            served += socket.serve(|line| {
                if line == "-L -n" { Ok("listing\n".into()) } else { Err("no".into()) }
            });
            std::thread::sleep(Duration::from_millis(10));
        }
        let (ok, err) = client.join().unwrap();
        assert_eq!(ok.unwrap(), "listing\n");
        assert_eq!(err.unwrap_err(), "no");
        drop(socket);
        assert!(!path.exists(), "the socket file goes with the director");
        let mut nothing = String::new();
        let _ = std::fs::File::open(&path).map(|mut f| f.read_to_string(&mut nothing));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Serves until `n` watchers are connected (at most 5 s).
    fn until_watched(socket: &ControlSocket, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while socket.publish(&[]) < n && std::time::Instant::now() < deadline {
            socket.serve(|_| Err("not a watch".into()));
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(socket.publish(&[]), n, "the watch did not connect");
    }

    #[test]
    fn a_watch_is_told_the_state_then_each_change_and_everything_is_withdrawn_at_the_end() {
        use crate::routes::{Change, Format, watch_once};
        let dir = std::env::temp_dir().join(format!("dr-control-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ctl.sock");
        let vip4: IpAddr = "10.0.0.100".parse().unwrap();
        let vip6: IpAddr = "2001:db8::100".parse().unwrap();
        let watch = |path: PathBuf| {
            std::thread::spawn(move || {
                let mut out = Vec::new();
                let why = watch_once(&path, Format::Exabgp, &mut out, &mut BTreeSet::new());
                (String::from_utf8(out).unwrap(), why.unwrap())
            })
        };

        // Announced before the watch starts: it is told at once. The director stops: what
        // is announced is withdrawn, then the watch ends.
        let socket = ControlSocket::bind(&path).unwrap();
        socket.publish(&[Change::Announce(vip4)]);
        let client = watch(path.clone());
        until_watched(&socket, 1);
        socket.publish(&[Change::Announce(vip6), Change::Withdraw(vip4)]);
        // Longer than the watch waits for a word: the heartbeat keeps it.
        let deadline = std::time::Instant::now() + routes::SILENCE + Duration::from_millis(500);
        while std::time::Instant::now() < deadline {
            assert_eq!(socket.publish(&[]), 1, "the watch is still there");
            std::thread::sleep(Duration::from_millis(100));
        }
        drop(socket);
        let (out, why) = client.join().unwrap();
        assert_eq!(
            out,
            "announce route 10.0.0.100/32 next-hop self\n\
             announce route 2001:db8::100/128 next-hop self\n\
             withdraw route 10.0.0.100/32 next-hop self\n\
             withdraw route 2001:db8::100/128 next-hop self\n"
        );
        assert_eq!(why, "the director closed the watch");

        // The director dies without a word (its connections close): the watch withdraws
        // what it had announced itself.
        let socket = ControlSocket::bind(&path).unwrap();
        let client = watch(path.clone());
        until_watched(&socket, 1);
        socket.publish(&[Change::Announce(vip4)]);
        std::thread::sleep(Duration::from_millis(100));
        socket.watchers.borrow_mut().clear();
        let (out, _) = client.join().unwrap();
        assert_eq!(
            out,
            "announce route 10.0.0.100/32 next-hop self\n\
             withdraw route 10.0.0.100/32 next-hop self\n"
        );

        // A director that hangs (says nothing, not even alive) is taken for gone; the new
        // watch was told what the director had announced.
        let client = watch(path.clone());
        until_watched(&socket, 1);
        socket.publish(&[Change::Withdraw(vip4), Change::Announce(vip6)]);
        let started = std::time::Instant::now();
        let (out, why) = client.join().unwrap();
        assert!(started.elapsed() >= routes::SILENCE - Duration::from_millis(200));
        assert_eq!(
            out,
            "announce route 10.0.0.100/32 next-hop self\n\
             withdraw route 10.0.0.100/32 next-hop self\n\
             announce route 2001:db8::100/128 next-hop self\n\
             withdraw route 2001:db8::100/128 next-hop self\n"
        );
        assert_eq!(why, "the director said nothing for 3 s");
        // No director at all: nothing printed, and why.
        drop(socket);
        let (out, why) = watch(path.clone()).join().unwrap();
        assert_eq!(out, "");
        assert!(why.starts_with("control socket"), "{why}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_live_socket_is_never_taken_over_and_a_stale_one_is_replaced() {
        let dir = std::env::temp_dir().join(format!("dr-control-live-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ctl.sock");
        let first = ControlSocket::bind(&path).unwrap();
        let err = ControlSocket::bind(&path).unwrap_err();
        assert!(err.contains("a running dr-director answers on it"), "{err}");
        assert!(path.exists(), "the refused one removed nothing");
        drop(first);
        // A socket file nobody listens on (a director that was killed) is replaced.
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let second = ControlSocket::bind(&path).unwrap();
        // A file that is not a socket is never removed.
        let other = dir.join("not-a-socket");
        std::fs::write(&other, b"keep").unwrap();
        let err = ControlSocket::bind(&other).unwrap_err();
        assert!(err.contains("is not a socket"), "{err}");
        assert_eq!(std::fs::read(&other).unwrap(), b"keep");
        // A socket file replaced under a director is not removed by it.
        std::fs::remove_file(&path).unwrap();
        let replacement = UnixListener::bind(&path).unwrap();
        drop(second);
        assert!(path.exists(), "the other director's socket stays");
        drop(replacement);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
