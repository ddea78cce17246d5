//! What the example binaries share: loading the configuration file into a director.

pub mod config;
pub mod frames;
pub mod golden;
pub mod report;
pub mod rules;
