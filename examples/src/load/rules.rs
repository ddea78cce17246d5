//! Rules files, so LVS users can bring theirs unchanged: `ipvsadm-save` / `ipvsadm -Sn`
//! output, or the ipvsadm lines of an rc script (`/sbin/ipvsadm -A -t VIP:80 -s rr`).
//!
//! Each line is one ipvsadm command as [`crate::ipvsadm`] reads it, applied in order as
//! `ipvsadm -R` applies them: `-A`/`-E`/`-D`, `-a`/`-e`/`-d`, `-C` (removes everything before
//! it), `--set` and `-Z`. Blank lines and `#` comments are skipped; a listing (`-L`, `-S`)
//! or `-R` is refused, naming its line. Every line is read before any is applied. Real
//! servers have no MAC in this format: the caller gives them (`--neigh IP=MAC`) or the
//! director learns them.

use crate::LineError;
use crate::ipvsadm::{self, Command, Macs, Rule};
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
    apply(&mut director, &parse(text)?, &macs)?;
    Ok(director)
}

/// The commands of rules text, each with its 1-based line: every line read before any is
/// applied, so a line that does not parse changes nothing.
///
/// # Errors
///
/// A [`LineError`] naming the line and the option at fault; a listing (`-L`), `-S` or
/// `-R` is refused, naming its line.
pub fn parse(text: &str) -> Result<Vec<(usize, Rule)>, LineError> {
    let mut rules = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let err = |message: String| LineError { line: Some(n + 1), message };
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let rule = ipvsadm::parse(content).map_err(err)?;
        let refused = match rule.command {
            Command::List(_) => "-L (list) prints the table",
            Command::Save => "-S (save) prints the rules",
            Command::Restore => "-R (restore) reads rules",
            _ => "",
        };
        if !refused.is_empty() {
            return Err(err(format!(
                "{refused}: a rules file holds the commands that build the table; remove the \
                 line"
            )));
        }
        rules.push((n + 1, rule));
    }
    Ok(rules)
}

/// Applies parsed rules in order, as `ipvsadm -R` applies them; stops at the first that
/// fails (those before it stay applied).
///
/// # Errors
///
/// A [`LineError`] naming the line and what the director refused.
pub fn apply(
    director: &mut Director,
    rules: &[(usize, Rule)],
    macs: &Macs,
) -> Result<(), LineError> {
    for (line, rule) in rules {
        ipvsadm::apply(director, rule, macs, Instant::ZERO)
            .map_err(|message| LineError { line: Some(*line), message })?;
    }
    Ok(())
}
