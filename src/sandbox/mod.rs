//! The sandbox: spec, setup plan, init helper, doctor probe and OCI bundle export.

pub mod doctor;
