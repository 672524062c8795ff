//! hookbox's integration tests: one binary, a util module, the real CLI in real sandboxes.

mod bundle;
mod doctor;
mod hostile;
mod ingest;
mod layers;
mod merge;
mod sandbox;
mod security;
mod tools;
mod units;
mod util;
