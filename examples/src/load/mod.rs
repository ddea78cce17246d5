//! Loading a director's configuration: the TOML file ([`config`]), `ipvsadm` rules files
//! ([`rules`]), keepalived's configuration ([`keepalived`]) and the `ipvsadm` command language they and the control socket share
//! ([`ipvsadm`], parsed as ipvsadm's popt does in [`popt`]), with their address forms
//! ([`endpoint`], [`netmask`]).

pub mod config;
pub mod endpoint;
pub mod flags;
pub mod ipvsadm;
pub mod keepalived;
pub mod netmask;
pub mod popt;
pub mod rules;
