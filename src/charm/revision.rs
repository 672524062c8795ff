//! The charm's `revision` file: one non-negative integer, surrounding whitespace allowed.

use std::path::Path;

use super::CharmError;

/// Parses the content of a `revision` file; `file` names it in errors.
pub fn parse_revision(text: &str, file: &Path) -> Result<u64, CharmError> {
    let trimmed = text.trim();
    let digits_only = !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit());
    match digits_only.then(|| trimmed.parse::<u64>()) {
        Some(Ok(revision)) => Ok(revision),
        _ => Err(CharmError::BadRevision {
            file: file.to_owned(),
            content: trimmed.chars().take(40).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<u64, CharmError> {
        parse_revision(text, Path::new("revision"))
    }

    #[test]
    fn integers_with_whitespace() {
        assert_eq!(parse("7").unwrap(), 7);
        assert_eq!(parse("  12\n").unwrap(), 12);
        assert_eq!(parse("\t0\r\n").unwrap(), 0);
    }

    #[test]
    fn garbage_is_refused_naming_the_file() {
        for bad in [
            "",
            "\n",
            "seven",
            "-1",
            "+1",
            "1.5",
            "1 2",
            "0x10",
            "99999999999999999999999",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(
                matches!(&err, CharmError::BadRevision { file, .. } if file == Path::new("revision")),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse("seven\n").unwrap_err().to_string(),
            "revision: expected a non-negative integer revision, found \"seven\""
        );
    }
}
