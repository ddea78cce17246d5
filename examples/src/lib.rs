//! What the example binaries share: loading a configuration file or `ipvsadm-save` rules
//! into a director, the host checks of dr-director, the run report, dr-replay's output
//! file, and the frame builders of the demo and golden captures.

use std::fmt;

pub mod director;
pub mod load;
pub mod replay;
pub mod report;

pub use director::{
    backend, control, health, instance, metrics, preflight, probes, reload, routes, sync, workers,
};
pub use load::{config, endpoint, flags, ipvsadm, keepalived, netmask, popt, rules};
pub use replay::output;

/// A problem in a configuration or rules file, with the line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// The 1-based line, when the problem has one.
    pub line: Option<usize>,
    /// What is wrong and how to fix it, naming the field or option.
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for LineError {}
