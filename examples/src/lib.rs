//! What the example binaries share: loading the configuration file into a director.

pub mod config;
pub mod report;
pub mod rules;
