//! hookbox's integration tests: one binary, a util module, the real CLI in real sandboxes.

mod merge;
mod tools;
mod util;
