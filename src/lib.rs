//! hookbox: run Juju-style charm hooks in rootless Linux sandboxes.
//!
//! Data flows one way: `cli` (in the binary) → `model` → `runner` → `sandbox` → `sys`,
//! with `charm` and `store` as libraries underneath. See DESIGN.md for the contract.

pub mod charm;
pub mod exit;
pub mod model;
pub mod runner;
pub mod store;
pub mod tools;

pub use exit::ExitStatus;
