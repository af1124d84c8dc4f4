//! # swarmd
//!
//! The daemon's faces, everything around the engine: configuration ([`config`], [`paths`]), the
//! control socket ([`control`]), the watch directory ([`watch`]), systemd integration
//! ([`systemd`]), logging ([`logging`]), the state directory's lock ([`state_lock`]) and the
//! settings changed at run time ([`runtime_settings`]), and the wiring that runs them together
//! ([`daemon`]).
//! They reach the engine only through the [`engine::Engine`] trait; the binary's
//! `engine_adapter.rs` implements it over the actor tree of `swarm-engine`.
//!
//! This library is not the engine, and holds no torrent state of its own.

pub mod config;
pub mod control;
pub mod daemon;
pub mod engine;
pub mod http_rpc;
pub mod intake;
pub mod logging;
pub mod paths;
pub mod runtime_settings;
pub mod state_lock;
pub mod systemd;
pub mod users;
pub mod watch;

#[cfg(test)]
mod fake_engine;
#[cfg(test)]
mod tests;

pub use daemon::{serve, Daemon};
pub use engine::{AddTorrent, Engine, EngineError, EngineResult, NewTorrent};
