//! dr-replay and the files it is given: the output never replaces the input, and is written
//! whole or not at all; a corrupt record and a missing output directory are named.

use dr_fixtures::frames::{SYN, tcp4};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const CONFIG: &str = r#"
[director]
mac = "02:00:00:00:00:01"
capacity = 1024

[[service]]
proto = "tcp"
vip = "10.0.0.100"
port = 80
scheduler = "rr"

[[service.real]]
ip = "10.0.0.11"
mac = "02:00:00:00:00:11"
"#;

/// A scratch directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("dr-replay-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("c.toml"), CONFIG).unwrap();
        Self(dir)
    }
    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
    /// The names in the directory, sorted.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The length of each test frame: Ethernet 14, IPv4 20, TCP 20 (no options, no payload).
const FRAME_LEN: u64 = 54;

/// `clients` SYNs to the service, one per client, as a classic pcap file.
fn capture(clients: u8) -> Vec<u8> {
    let mut writer = PcapWriter::with_header(Vec::new(), PcapHeader::default()).unwrap();
    for c in 1..=clients {
        let frame = tcp4(&format!("192.0.2.{c}"), 40000, "10.0.0.100", 80, SYN);
        assert_eq!(frame.len() as u64, FRAME_LEN);
        let ts = Duration::new(1_700_000_000, 0) + Duration::from_millis(u64::from(c));
        writer.write_packet(&PcapPacket::new(ts, frame.len() as u32, &frame)).unwrap();
    }
    writer.into_writer()
}

fn dr_replay(dir: &Scratch, input: &Path, output: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dr-replay"))
        .arg("--config")
        .arg(dir.path("c.toml"))
        .arg(input)
        .arg("-o")
        .arg(output)
        .output()
        .unwrap()
}

fn stderr(run: &Output) -> String {
    String::from_utf8_lossy(&run.stderr).into_owned()
}

#[test]
fn an_output_that_is_the_input_is_refused() {
    let dir = Scratch::new("same");
    let input = dir.path("in.pcap");
    let bytes = capture(3);
    std::fs::write(&input, &bytes).unwrap();
    std::os::unix::fs::symlink(&input, dir.path("link.pcap")).unwrap();
    std::fs::hard_link(&input, dir.path("hard.pcap")).unwrap();
    std::fs::create_dir(dir.path("sub")).unwrap();
    let names = dir.names();
    let same =
        [input.clone(), dir.path("sub/../in.pcap"), dir.path("link.pcap"), dir.path("hard.pcap")];
    for output in &same {
        let run = dr_replay(&dir, &input, output);
        assert!(!run.status.success(), "{}", output.display());
        let err = stderr(&run);
        assert!(err.contains("is the input"), "{}: {err}", output.display());
        assert!(err.contains(&output.display().to_string()), "{}: {err}", output.display());
        assert_eq!(std::fs::read(&input).unwrap(), bytes, "{}", output.display());
        assert_eq!(dir.names(), names, "{}", output.display());
    }
    // The other way round: the input named through the link, the output the file itself.
    let run = dr_replay(&dir, &dir.path("link.pcap"), &input);
    assert!(stderr(&run).contains("is the input"), "{}", stderr(&run));
    assert_eq!(std::fs::read(&input).unwrap(), bytes);
}

#[test]
fn the_output_is_replaced_whole_on_success_and_untouched_on_failure() {
    let dir = Scratch::new("whole");
    let (good, cut, out) = (dir.path("good.pcap"), dir.path("cut.pcap"), dir.path("out.pcap"));
    let bytes = capture(3);
    std::fs::write(&good, &bytes).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();

    // No output yet, and the replay fails: no file by that name, nothing left behind.
    let names = dir.names();
    let run = dr_replay(&dir, &cut, &out);
    assert!(!run.status.success());
    assert_eq!(dir.names(), names, "a failed run leaves nothing in the output's directory");

    // An output from before stays as it was when a replay fails.
    std::fs::write(&out, b"an earlier output").unwrap();
    let before = std::fs::metadata(&out).unwrap();
    let names = dir.names();
    let run = dr_replay(&dir, &cut, &out);
    assert!(!run.status.success());
    assert_eq!(std::fs::read(&out).unwrap(), b"an earlier output");
    assert_eq!(std::fs::metadata(&out).unwrap().ino(), before.ino());
    assert_eq!(dir.names(), names);

    // A replay that succeeds replaces it with the whole capture, keeping its permissions.
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o640)).unwrap();
    let run = dr_replay(&dir, &good, &out);
    assert!(run.status.success(), "{}", stderr(&run));
    let written = std::fs::read(&out).unwrap();
    assert_eq!(written.len() as u64, 24 + 3 * (16 + FRAME_LEN), "three SYNs forwarded");
    assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o640);
    assert_eq!(dir.names(), names);

    // Through a symbolic link, the file it points to is replaced and the link stays.
    std::os::unix::fs::symlink(&out, dir.path("latest.pcap")).unwrap();
    std::fs::write(&out, b"older").unwrap();
    let run = dr_replay(&dir, &good, &dir.path("latest.pcap"));
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(std::fs::symlink_metadata(dir.path("latest.pcap")).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read(&out).unwrap(), written);

    // A device is written as it is, never renamed over.
    let run = dr_replay(&dir, &good, Path::new("/dev/null"));
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
}

#[test]
fn a_corrupt_record_is_named_after_the_report_of_what_came_before() {
    let dir = Scratch::new("corrupt");
    let (cut, out) = (dir.path("cut.pcap"), dir.path("out.pcap"));
    let bytes = capture(5);
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    let run = dr_replay(&dir, &cut, &out);
    assert!(!run.status.success());
    // Record 5 starts after the 24-byte file header and four records of 16 + 54 bytes.
    let err = stderr(&run);
    assert_eq!(
        err.lines().last().unwrap(),
        format!(
            "dr-replay: {}: record 5 (at byte 304) is corrupt: the file ends before the \
             record does (cut short, or a damaged length); the 4 records before it were replayed",
            cut.display()
        ),
        "{err}"
    );
    let stdout = String::from_utf8(run.stdout).unwrap();
    assert!(stdout.contains("frames: 4 forwarded, 0 replies, 0 passed, 0 dropped\n"), "{stdout}");
    // ipvsadm --stats: the address in 28 columns, then Conns, InPkts, OutPkts, InBytes and
    // OutBytes in 9 each; the bytes are the IP packets' (4 of 20 + 20).
    assert!(
        stdout.contains(
            "  -> 10.0.0.11:80                        4        4        0      160        0\n"
        ),
        "{stdout}"
    );

    // The first record cut: nothing processed, and the report says so.
    std::fs::write(&cut, &bytes[..30]).unwrap();
    let run = dr_replay(&dir, &cut, &out);
    assert!(!run.status.success());
    assert!(stderr(&run).contains("record 1 (at byte 24) is corrupt"), "{}", stderr(&run));
    assert!(stderr(&run).ends_with("; no record before it was replayed\n"), "{}", stderr(&run));
    let stdout = String::from_utf8(run.stdout).unwrap();
    assert!(stdout.contains("frames: 0 forwarded"), "{stdout}");
    assert!(!out.exists());
}

#[test]
fn a_missing_output_directory_is_named() {
    let dir = Scratch::new("nodir");
    let input = dir.path("in.pcap");
    std::fs::write(&input, capture(1)).unwrap();
    let out = dir.path("missing/out.pcap");
    let run = dr_replay(&dir, &input, &out);
    assert!(!run.status.success());
    let err = stderr(&run);
    assert_eq!(
        err.trim_end(),
        format!(
            "dr-replay: -o {}: the directory {} does not exist; create it (mkdir -p) or write the output elsewhere",
            out.display(),
            dir.path("missing").display()
        )
    );
    assert!(run.stdout.is_empty(), "no report when nothing ran");
    // A relative output in the current directory needs no directory part.
    let run = Command::new(env!("CARGO_BIN_EXE_dr-replay"))
        .current_dir(&dir.0)
        .args(["--config", "c.toml", "in.pcap", "-o", "here.pcap"])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(dir.path("here.pcap").exists());
}
