//! dr-director, the live director: the application ([`app`]) and its parts. Each part owns
//! one piece of the running director: the backend each worker forwards through
//! ([`backend`]), the worker threads that drive a [`Director`] each ([`workers`]), the
//! control socket ([`control`]), health checks ([`health`], keepalived's checkers in
//! [`probes`]), Prometheus metrics ([`metrics`]), reloads ([`reload`]), the VIPs it
//! announces to routers ([`routes`]), the checks before start ([`preflight`]) and
//! the lock that keeps one director per interface ([`instance`]).
//!
//! [`Director`]: dr_core::Director

pub mod app;
pub mod backend;
mod checks;
pub mod control;
pub mod health;
pub mod instance;
mod keepalived;
pub mod metrics;
pub mod preflight;
pub mod probes;
pub mod reload;
pub mod routes;
pub mod sync;
pub mod workers;
