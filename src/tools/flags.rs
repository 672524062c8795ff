//! Command-line parsing the way Juju's hook tools do it: `juju/gnuflag` in "GNU style"
//! (bundled one-letter flags, `--long=value`, interleaved flags and positionals, `--`), and
//! the help text `juju/cmd` prints for `-h`/`--help`.

use std::collections::BTreeMap;

/// How a flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// A boolean: no separate value; `--x=<Go ParseBool spelling>` also works.
    Bool,
    /// A string (help shows the default quoted).
    Str,
    /// A value with its own `Set` (format, relation id, storage id, file): help shows the
    /// default unquoted, after two spaces.
    Value,
}

/// One flag group: every name that sets the same value.
#[derive(Debug, Clone, Copy)]
pub struct FlagSpec {
    /// The names, without dashes; the first is the key the parsed value is stored under.
    pub names: &'static [&'static str],
    /// How the flag takes its value.
    pub kind: FlagKind,
    /// The usage line printed under the flag in `--help`.
    pub usage: &'static str,
}

/// What a flag's value setter reports when it refuses a value (`invalid value "v" for
/// option -x: <reason>`).
pub type SetError = String;

/// The result of parsing: flag values by their first name, and the positional arguments.
#[derive(Debug, Default)]
pub struct Parsed {
    values: BTreeMap<&'static str, String>,
    /// The positional arguments, in order.
    pub args: Vec<String>,
}

impl Parsed {
    /// Whether a boolean flag was set true.
    pub fn flag(&self, key: &str) -> bool {
        self.values.get(key).is_some_and(|v| v == "true")
    }

    /// The value given for a flag, if any.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }
}

/// Why parsing stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum ParseOutcome {
    /// `-h` or `--help`: print help, exit 0.
    Help,
    /// A usage error: `ERROR <message>`, exit 2.
    Error(String),
}

/// `flagWithMinus`: one-letter names take one dash, longer names two.
fn with_minus(name: &str) -> String {
    if name.chars().count() == 1 {
        format!("-{name}")
    } else {
        format!("--{name}")
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Parses `args` against `specs` with interspersed flags allowed. `set` validates and
/// normalises each value given to a [`FlagKind::Value`] or [`FlagKind::Str`] flag, keyed by
/// the flag's first name.
pub fn parse(
    specs: &[FlagSpec],
    args: &[String],
    set: &mut dyn FnMut(&'static str, &str) -> Result<String, SetError>,
) -> Result<Parsed, ParseOutcome> {
    let lookup = |name: &str| specs.iter().find(|s| s.names.contains(&name));
    let mut parsed = Parsed::default();
    let mut rest: std::collections::VecDeque<String> = args.iter().cloned().collect();
    while let Some(arg) = rest.pop_front() {
        if arg == "-" || arg.is_empty() || !arg.starts_with('-') {
            parsed.args.push(arg);
            continue;
        }
        if arg == "--" {
            parsed.args.extend(rest.drain(..));
            break;
        }
        // Each element: (name, long, attached value).
        let mut pending: Vec<(String, bool, Option<String>)> = Vec::new();
        if let Some(long) = arg.strip_prefix("--") {
            match long.split_once('=') {
                None => pending.push((long.to_owned(), true, None)),
                Some(("", _)) => {
                    return Err(ParseOutcome::Error(format!(
                        "empty flag in argument {}",
                        go_quote(&arg)
                    )));
                }
                Some((name, value)) => {
                    pending.push((name.to_owned(), true, Some(value.to_owned())));
                }
            }
        } else {
            // A bundle of one-letter flags; a flag that takes a value eats the rest.
            let bundle: Vec<char> = arg[1..].chars().collect();
            let mut i = 0;
            while i < bundle.len() {
                let name = bundle[i].to_string();
                let rest_of_bundle: String = bundle[i + 1..].iter().collect();
                let takes_value = lookup(&name).is_some_and(|s| s.kind != FlagKind::Bool)
                    || rest_of_bundle.starts_with('=');
                if takes_value && !rest_of_bundle.is_empty() {
                    pending.push((name, false, Some(rest_of_bundle)));
                    break;
                }
                pending.push((name, false, None));
                i += 1;
            }
        }
        for (name, long, attached) in pending {
            let Some(spec) = lookup(&name) else {
                if name == "help" || name == "h" {
                    return Err(ParseOutcome::Help);
                }
                return Err(ParseOutcome::Error(format!(
                    "option provided but not defined: {}",
                    with_minus(&name)
                )));
            };
            let key = spec.names[0];
            let attached_is_explicit = long && attached.is_some()
                || attached.as_deref().is_some_and(|a| a.starts_with('='));
            if spec.kind == FlagKind::Bool && !attached_is_explicit {
                parsed.values.insert(key, "true".to_owned());
                continue;
            }
            let value = match attached {
                Some(v) => v,
                None => match rest.pop_front() {
                    Some(v) => v,
                    None => {
                        return Err(ParseOutcome::Error(format!(
                            "option needs an argument: {}",
                            with_minus(&name)
                        )));
                    }
                },
            };
            let invalid = |reason: String| {
                ParseOutcome::Error(format!(
                    "invalid value {} for option {}: {reason}",
                    go_quote(&value),
                    with_minus(&name)
                ))
            };
            let stored = if spec.kind == FlagKind::Bool {
                match parse_go_bool(&value) {
                    Some(b) => b.to_string(),
                    None => {
                        return Err(invalid(format!(
                            "strconv.ParseBool: parsing {}: invalid syntax",
                            go_quote(&value)
                        )));
                    }
                }
            } else {
                set(key, &value).map_err(invalid)?
            };
            parsed.values.insert(key, stored);
        }
    }
    Ok(parsed)
}

/// Go's `%q` for a string: double quotes, Go escapes, printable Unicode kept.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%q` for a `[]string`: `["a" "b"]`.
pub fn go_quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}

/// What `cmd.Info` says about a tool for its help text.
#[derive(Debug, Clone, Copy)]
pub struct HelpInfo {
    /// The tool's name.
    pub name: &'static str,
    /// The positional-argument synopsis (may be empty).
    pub args: &'static str,
    /// One-line summary.
    pub purpose: &'static str,
    /// Longer description (may be empty).
    pub doc: &'static str,
}

/// `cmd.Info.Help`: usage, summary, options (gnuflag `PrintDefaults`), details. `default`
/// gives each flag's displayed default by its first name.
pub fn help_text(info: &HelpInfo, specs: &[FlagSpec], default: &dyn Fn(&str) -> String) -> String {
    let mut out = format!("Usage: {}", info.name);
    if !specs.is_empty() {
        out.push_str(" [options]");
    }
    if !info.args.is_empty() {
        out.push(' ');
        out.push_str(info.args);
    }
    out.push('\n');
    if !info.purpose.is_empty() {
        out.push_str(&format!("\nSummary:\n{}\n", info.purpose));
    }
    if !specs.is_empty() {
        out.push_str("\nOptions:\n");
        // Within a group the shortest name comes first; groups sort by that name.
        let mut groups: Vec<(Vec<&str>, &FlagSpec)> = specs
            .iter()
            .map(|spec| {
                let mut names: Vec<&str> = spec.names.to_vec();
                names.sort_by(|a, b| a.len().cmp(&b.len()).then(a.cmp(b)));
                (names, spec)
            })
            .collect();
        groups.sort_by(|a, b| a.0[0].cmp(b.0[0]));
        for (names, spec) in groups {
            let line: Vec<String> = names.iter().map(|n| with_minus(n)).collect();
            let value = default(spec.names[0]);
            match spec.kind {
                FlagKind::Str => out.push_str(&format!(
                    "{} (= {})\n    {}\n",
                    line.join(", "),
                    go_quote(&value),
                    spec.usage
                )),
                _ => out.push_str(&format!(
                    "{}  (= {})\n    {}\n",
                    line.join(", "),
                    value,
                    spec.usage
                )),
            }
        }
    }
    if !info.doc.is_empty() {
        out.push_str(&format!("\nDetails:\n{}\n", info.doc.trim()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[FlagSpec] = &[
        FlagSpec {
            names: &["format"],
            kind: FlagKind::Value,
            usage: "Specify output format (json|smart|yaml)",
        },
        FlagSpec {
            names: &["output", "o"],
            kind: FlagKind::Str,
            usage: "Specify an output file",
        },
        FlagSpec {
            names: &["relation", "r"],
            kind: FlagKind::Value,
            usage: "Specify a relation by id",
        },
        FlagSpec {
            names: &["app"],
            kind: FlagKind::Bool,
            usage: "Get the relation data for the overall application, not just a unit",
        },
        FlagSpec {
            names: &["all", "a"],
            kind: FlagKind::Bool,
            usage: "print all keys",
        },
    ];

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn run(list: &[&str]) -> Result<Parsed, ParseOutcome> {
        parse(SPECS, &args(list), &mut |key, value| match key {
            "format" if !["json", "smart", "yaml"].contains(&value) => {
                Err(format!("unknown format {}", go_quote(value)))
            }
            "relation" => {
                let id = value.rsplit(':').next().unwrap_or(value);
                id.parse::<u32>()
                    .map(|n| n.to_string())
                    .map_err(|_| "invalid relation id".to_owned())
            }
            _ => Ok(value.to_owned()),
        })
    }

    #[test]
    fn long_short_and_attached_values() {
        let p = run(&["--format", "json", "-r3", "key"]).unwrap();
        assert_eq!(p.value("format"), Some("json"));
        assert_eq!(p.value("relation"), Some("3"));
        assert_eq!(p.args, args(&["key"]));
        let p = run(&["--format=json", "-r", "db:1", "-", "app/0"]).unwrap();
        assert_eq!(p.value("relation"), Some("1"));
        assert_eq!(p.args, args(&["-", "app/0"]));
        let p = run(&["--o=out.txt", "--r", "4"]).unwrap();
        assert_eq!(p.value("output"), Some("out.txt"));
        assert_eq!(p.value("relation"), Some("4"));
    }

    #[test]
    fn interleaved_flags_and_double_dash() {
        let p = run(&["key", "--format=json", "unit/0", "--app"]).unwrap();
        assert_eq!(p.args, args(&["key", "unit/0"]));
        assert!(p.flag("app"));
        let p = run(&["--", "--format", "-x"]).unwrap();
        assert_eq!(p.args, args(&["--format", "-x"]));
        assert_eq!(p.value("format"), None);
    }

    #[test]
    fn bundled_bools_and_value_at_the_end() {
        let p = run(&["-ar", "5"]).unwrap();
        assert!(p.flag("all"));
        assert_eq!(p.value("relation"), Some("5"));
        let p = run(&["-ar5"]).unwrap();
        assert_eq!(p.value("relation"), Some("5"));
    }

    #[test]
    fn go_parse_bool_spellings() {
        for t in ["1", "t", "T", "true", "TRUE", "True"] {
            assert!(run(&[&format!("--app={t}")]).unwrap().flag("app"), "{t}");
        }
        for f in ["0", "f", "F", "false", "FALSE", "False"] {
            assert!(!run(&[&format!("--app={f}")]).unwrap().flag("app"), "{f}");
        }
        assert_eq!(
            run(&["--app=yes"]).unwrap_err(),
            ParseOutcome::Error(
                "invalid value \"yes\" for option --app: strconv.ParseBool: parsing \"yes\": invalid syntax"
                    .into()
            )
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            run(&["-format=json"]).unwrap_err(),
            ParseOutcome::Error("option provided but not defined: -f".into())
        );
        assert_eq!(
            run(&["--foo"]).unwrap_err(),
            ParseOutcome::Error("option provided but not defined: --foo".into())
        );
        assert_eq!(
            run(&["--format"]).unwrap_err(),
            ParseOutcome::Error("option needs an argument: --format".into())
        );
        assert_eq!(
            run(&["-r"]).unwrap_err(),
            ParseOutcome::Error("option needs an argument: -r".into())
        );
        assert_eq!(
            run(&["--format", "xml"]).unwrap_err(),
            ParseOutcome::Error(
                "invalid value \"xml\" for option --format: unknown format \"xml\"".into()
            )
        );
        assert_eq!(
            run(&["--relation=x"]).unwrap_err(),
            ParseOutcome::Error(
                "invalid value \"x\" for option --relation: invalid relation id".into()
            )
        );
        assert_eq!(
            run(&["-r", "db:x"]).unwrap_err(),
            ParseOutcome::Error("invalid value \"db:x\" for option -r: invalid relation id".into())
        );
        assert_eq!(
            run(&["--=x"]).unwrap_err(),
            ParseOutcome::Error("empty flag in argument \"--=x\"".into())
        );
    }

    #[test]
    fn help_requests() {
        assert_eq!(run(&["-h"]).unwrap_err(), ParseOutcome::Help);
        assert_eq!(run(&["x", "--help"]).unwrap_err(), ParseOutcome::Help);
        assert_eq!(run(&["--", "--help"]).unwrap().args, args(&["--help"]));
    }

    #[test]
    fn help_layout() {
        let info = HelpInfo {
            name: "relation-get",
            args: "<key> <unit id>",
            purpose: "Get relation settings.",
            doc: "\nSome details.\n",
        };
        let text = help_text(&info, SPECS, &|key| match key {
            "format" => "smart".into(),
            "relation" => "db:1".into(),
            "output" => String::new(),
            _ => "false".into(),
        });
        assert_eq!(
            text,
            "Usage: relation-get [options] <key> <unit id>\n\nSummary:\nGet relation settings.\n\nOptions:\n-a, --all  (= false)\n    print all keys\n--app  (= false)\n    Get the relation data for the overall application, not just a unit\n--format  (= smart)\n    Specify output format (json|smart|yaml)\n-o, --output (= \"\")\n    Specify an output file\n-r, --relation  (= db:1)\n    Specify a relation by id\n\nDetails:\nSome details.\n"
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(go_quote("a\"b\n"), "\"a\\\"b\\n\"");
        assert_eq!(go_quote_list(&args(&["x", "y"])), "[\"x\" \"y\"]");
    }
}
