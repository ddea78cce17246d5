//! Rules files, so LVS users can bring theirs unchanged: `ipvsadm-save` / `ipvsadm -Sn`
//! output, or the ipvsadm lines of an rc script (`/sbin/ipvsadm -A -t VIP:80 -s rr`).
//!
//! Each line is one ipvsadm command as [`crate::ipvsadm`] reads it, applied in order as
//! `ipvsadm -R` applies them: `-A`/`-E`/`-D`, `-a`/`-e`/`-d`, `-C` (removes everything before
//! it), `--set` and `-Z`. Blank lines and `#` comments are skipped; a listing (`-L`) is
//! refused, naming its line. Real servers have no MAC in this format: the caller gives them
//! (`--neigh IP=MAC`) or the director learns them.

use crate::LineError;
use crate::ipvsadm::{self, Command, Macs};
use dr_core::{Config, Director, Instant, MacAddr};
use std::collections::HashMap;
use std::net::IpAddr;

/// Where the MAC addresses come from.
#[derive(Debug, Clone)]
pub struct RulesOptions {
    /// The director's configuration (MAC, seed, capacity, timeouts).
    pub config: Config,
    /// Real servers' MACs by address.
    pub neighbours: HashMap<IpAddr, MacAddr>,
    /// Whether every real server needs a MAC from `neighbours` (a replay cannot ask by ARP).
    pub require_real_macs: bool,
}

/// Parses `IP=MAC`, as `--neigh` takes it.
///
/// # Errors
///
/// A message saying which half is wrong.
pub fn parse_neighbour(text: &str) -> Result<(IpAddr, MacAddr), String> {
    let (ip, mac) = text.split_once('=').ok_or_else(|| format!("{text:?}: expected IP=MAC"))?;
    let ip = ip.parse().map_err(|_| format!("{ip:?} is not an IP address"))?;
    let mac = mac.parse().map_err(|e| format!("{mac:?}: {e}"))?;
    Ok((ip, mac))
}

/// Builds a director from rules text, applying its lines in order.
///
/// # Errors
///
/// A [`LineError`] naming the line and the option at fault.
pub fn load(text: &str, options: &RulesOptions) -> Result<Director, LineError> {
    let mut director = Director::new(options.config.clone())
        .map_err(|e| LineError { line: None, message: e.to_string() })?;
    let macs = Macs { known: options.neighbours.clone(), required: options.require_real_macs };
    for (n, raw) in text.lines().enumerate() {
        let err = |message: String| LineError { line: Some(n + 1), message };
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let rule = ipvsadm::parse(content).map_err(err)?;
        if let Command::List(_) = rule.command {
            return Err(err(
                "-L (list) prints the table: a rules file holds the commands that build it; \
                 remove the line"
                    .into(),
            ));
        }
        ipvsadm::apply(&mut director, &rule, &macs, Instant::ZERO).map_err(err)?;
    }
    Ok(director)
}
