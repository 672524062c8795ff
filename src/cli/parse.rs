//! Argument parsers and conversions shared by the commands that build a sandbox spec
//! (`sandbox-run`, `export-bundle`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use hookbox::sandbox::{IdMapping, Lower};

/// `--network`: the sandbox's network, for every command that has the flag.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum NetworkArg {
    /// A private network namespace with loopback only.
    None,
    /// The host's network.
    Host,
}

impl From<NetworkArg> for hookbox::sandbox::Network {
    fn from(arg: NetworkArg) -> Self {
        match arg {
            NetworkArg::None => Self::None,
            NetworkArg::Host => Self::Host,
        }
    }
}

/// A size flag (`--memory`, `--max-bytes`, ...): bytes, or with a K, M or G suffix (binary
/// multiples); more than zero.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, multiplier) = match text.char_indices().last() {
        Some((i, 'K' | 'k')) => (&text[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&text[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&text[..i], 1 << 30),
        _ => (text, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{text:?} is not a size like 536870912, 512M or 2G"))
}

/// `--env KEY=VALUE`, with a non-empty key.
pub fn parse_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

/// `path` made absolute against the working directory (not canonicalised).
pub fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolve {}", path.display()))
}

/// The command's environment: PATH and LANG=C.UTF-8, then `extra` (later keys win).
pub fn command_env(extra: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut env = vec![
        (
            "PATH".to_owned(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
        ),
        ("LANG".to_owned(), "C.UTF-8".to_owned()),
    ];
    for (key, value) in extra {
        env.retain(|(k, _)| *k != key);
        env.push((key, value));
    }
    env
}

/// The `--lower` directories as layers: absolute, and (as root) idmapped when host uid 0 owns
/// them (a charm base), as they are when the id range's root does (a committed layer); see
/// [`Lower::by_owner`].
pub fn lowers(paths: &[PathBuf], ids: &IdMapping) -> anyhow::Result<Vec<Lower>> {
    paths
        .iter()
        .map(|path| Ok(Lower::by_owner(absolute(path)?, ids)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_bytes("512M"), Ok(512 << 20));
        assert_eq!(parse_bytes("1024"), Ok(1024));
        assert_eq!(parse_bytes("2g"), Ok(2 << 30));
        assert!(parse_bytes("12X").is_err());
        assert!(parse_bytes("lots").is_err());
        assert_eq!(parse_bytes("64K"), Ok(64 << 10));
        assert!(parse_bytes("0").is_err());
    }

    #[test]
    fn env_needs_a_key() {
        assert_eq!(parse_env("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert!(parse_env("=x").is_err());
        assert!(parse_env("novalue").is_err());
    }

    #[test]
    fn later_env_wins() {
        let env = command_env(vec![("LANG".into(), "C".into())]);
        assert_eq!(env.iter().filter(|(k, _)| k == "LANG").count(), 1);
        assert!(env.contains(&("LANG".into(), "C".into())));
    }
}
