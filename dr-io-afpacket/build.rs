//! Decides whether the tests that need root are compiled to run: `cfg(dr_root)` when this
//! build runs as root (uid 0) or under CI (`CI` set, where those tests insist on root and
//! fail without it). Without it they are compiled `#[ignore]`d, so a `cargo test` by
//! another user counts them as ignored rather than passing them unrun.
//!
//! Cargo runs this script again when the user may have changed: when `USER`, `LOGNAME`,
//! `HOME`, `SUDO_UID` or `CI` differ from the last build's (su, sudo and login shells set
//! them). The examples crate builds with this same file.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(dr_root)");
    for var in ["USER", "LOGNAME", "HOME", "SUDO_UID", "CI"] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    // The owner of a file this build creates is the user it runs as.
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let probe = out.join("owner-probe");
    let _ = std::fs::remove_file(&probe);
    std::fs::write(&probe, b"").expect("writing a file in OUT_DIR");
    let uid = std::fs::metadata(&probe).expect("reading a file in OUT_DIR").uid();
    if uid == 0 || std::env::var_os("CI").is_some() {
        println!("cargo::rustc-cfg=dr_root");
    }
}
