//! dr-replay's parts beyond the pcap backend: writing the output capture safely
//! ([`output`]).

pub mod output;
