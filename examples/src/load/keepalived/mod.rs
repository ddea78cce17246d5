//! keepalived.conf as a configuration: an LVS-DR operator points dr-director (or dr-replay)
//! at `/etc/keepalived/keepalived.conf` and gets the same services, real servers and health
//! checks.
//!
//! The file is read in four steps, each in a file of its own: `params` (`@` conditional
//! lines, `$NAME` parameters, `~SEQ` blocks), `lexer` (words, comments, quotes, `include`
//! globs), `tree` (keywords and their blocks), `translate` (the
//! `virtual_server` blocks into a [`Plan`]: services, real servers, their checkers, and
//! keepalived's `quorum`, `sorry_server`, `inhibit_on_failure` and `alpha`). What does not
//! apply to a DR director (`vrrp_*` blocks, `lb_kind NAT|TUN` services, fwmark services,
//! keywords dr does not know) is skipped with one [`Plan::warnings`] entry per kind, naming
//! the first line; what dr cannot do as keepalived would is an error naming the line.

mod lexer;
mod params;
mod plan;
mod translate;
mod tree;

pub use lexer::{Disk, Source};
pub use params::{MAX_DEPTH, MAX_LINE, MAX_MADE, MAX_WORK, default_config_id};
pub use plan::{
    BuildOptions, Checker, Entry, Plan, Pool, RealServer, SorryServer, VirtualServer, sync_service,
};

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a statement is: its file (the main one or an included one) and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The file.
    pub file: Arc<Path>,
    /// The 1-based line.
    pub line: usize,
}

/// A problem in a keepalived configuration (or a warning of what is skipped): the file,
/// the line and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepalivedError {
    /// The file the line is in (an included file's own name).
    pub file: PathBuf,
    /// The 1-based line, when the problem has one.
    pub line: Option<usize>,
    /// What is wrong and how to fix it, naming the keyword.
    pub message: String,
}

impl KeepalivedError {
    pub(crate) fn at(place: &Place, message: String) -> Self {
        Self { file: place.file.to_path_buf(), line: Some(place.line), message }
    }
}

impl fmt::Display for KeepalivedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}: line {line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for KeepalivedError {}

/// Reads a keepalived configuration and every file it includes from disk, `@` lines
/// compared with keepalived's default config id (the host name up to its first dot).
///
/// # Errors
///
/// The first problem, naming its file, line and keyword.
pub fn read(path: &Path) -> Result<Plan, KeepalivedError> {
    read_as(&Disk, path, default_config_id())
}

/// Reads a keepalived configuration from `source` (files on disk, or a map in tests), with
/// keepalived's default config id.
///
/// # Errors
///
/// The first problem, naming its file, line and keyword.
pub fn read_from(source: &dyn Source, path: &Path) -> Result<Plan, KeepalivedError> {
    read_as(source, path, default_config_id())
}

/// Reads a keepalived configuration from `source`, `@ID` and `@^ID` lines compared with
/// `config_id` (keepalived's `-i` / `--config-id`; none: no `@ID` line is read, every
/// `@^ID` line is).
///
/// # Errors
///
/// The first problem, naming its file, line and keyword.
pub fn read_as(
    source: &dyn Source,
    path: &Path,
    config_id: Option<String>,
) -> Result<Plan, KeepalivedError> {
    let (words, skipped) = lexer::words(source, path, config_id)?;
    let nodes = tree::parse(&words)?;
    let mut plan = translate::translate(&nodes, path)?;
    plan.warnings.splice(0..0, skipped);
    Ok(plan)
}
