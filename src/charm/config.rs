//! `config.yaml`: the charm's config options, their types and defaults, and settings
//! checked against them.
//!
//! Defaults follow Juju (go-yaml v2, YAML 1.1) rather than a YAML 1.2 reading: a string
//! option keeps its default exactly as written (`0.10` stays `"0.10"`, `0777` stays
//! `"0777"`), boolean options take `yes`/`no`/`on`/`off`/`y`/`n` in any case and
//! `!!bool "false"`, an int default `0777` is octal (511), and an empty or null default
//! means "no default".

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::CharmError;
use super::yaml::{self, Node, Style, Tag, Value, YamlLimits};

/// The type of a config option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptionType {
    /// Any text.
    String,
    /// A signed 64-bit integer.
    Int,
    /// A finite 64-bit float.
    Float,
    /// `true` or `false`.
    Boolean,
    /// A secret URI, held as text.
    Secret,
}

impl OptionType {
    /// The name used in `config.yaml`.
    pub fn as_str(self) -> &'static str {
        match self {
            OptionType::String => "string",
            OptionType::Int => "int",
            OptionType::Float => "float",
            OptionType::Boolean => "boolean",
            OptionType::Secret => "secret",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            // Juju (from pyjuju) reads a missing or empty type as string.
            "" | "string" => OptionType::String,
            "int" => OptionType::Int,
            "float" => OptionType::Float,
            "boolean" => OptionType::Boolean,
            "secret" => OptionType::Secret,
            _ => return None,
        })
    }
}

impl fmt::Display for OptionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A config value: a default or a user setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ConfigValue {
    /// A boolean option's value.
    Bool(bool),
    /// An int option's value.
    Int(i64),
    /// A float option's value (always finite).
    Float(f64),
    /// A string or secret option's value.
    String(String),
}

impl ConfigValue {
    /// Whether this value is of the kind an option of type `kind` holds.
    pub fn fits(&self, kind: OptionType) -> bool {
        matches!(
            (self, kind),
            (ConfigValue::Bool(_), OptionType::Boolean)
                | (ConfigValue::Int(_), OptionType::Int)
                | (ConfigValue::Float(_), OptionType::Float)
                | (
                    ConfigValue::String(_),
                    OptionType::String | OptionType::Secret
                )
        )
    }
}

impl fmt::Display for ConfigValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigValue::Bool(b) => write!(f, "{b}"),
            ConfigValue::Int(i) => write!(f, "{i}"),
            ConfigValue::Float(x) => write!(f, "{x}"),
            ConfigValue::String(s) => f.write_str(s),
        }
    }
}

/// One declared config option.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigOption {
    /// The option's type.
    #[serde(rename = "type")]
    pub kind: OptionType,
    /// The default, if the charm declares one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<ConfigValue>,
    /// Human description.
    #[serde(default)]
    pub description: String,
}

/// The parsed `config.yaml` (or the `config:` section of `charmcraft.yaml`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigSpec {
    /// Options by name.
    pub options: BTreeMap<String, ConfigOption>,
}

impl ConfigSpec {
    /// Parses `config.yaml` text under `limits`; `file` names the file in errors.
    pub fn parse(text: &str, file: &Path, limits: &YamlLimits) -> Result<Self, CharmError> {
        let root = yaml::parse_document(text, file, limits)?;
        Self::from_node(&root, file)
    }

    /// Parses the `config:` section of `charmcraft.yaml` text (empty when absent).
    pub fn parse_charmcraft(
        text: &str,
        file: &Path,
        limits: &YamlLimits,
    ) -> Result<Self, CharmError> {
        let root = yaml::parse_document(text, file, limits)?;
        match root.get("config") {
            Some(section) => Self::from_node(section, file),
            None => Ok(Self::default()),
        }
    }

    /// Reads the schema from a node holding `options:` (the whole `config.yaml`, or the
    /// `config:` value of `charmcraft.yaml`).
    pub(crate) fn from_node(root: &Node, file: &Path) -> Result<Self, CharmError> {
        root.entries(file, "config")?;
        let mut options = BTreeMap::new();
        let Some(section) = root.get("options") else {
            return Ok(Self { options });
        };
        for entry in section.entries(file, "options")? {
            let name = &entry.key;
            check_option_name(name).map_err(|rule| CharmError::InvalidName {
                file: file.to_owned(),
                line: entry.key_line,
                column: entry.key_column,
                kind: "option",
                name: name.clone(),
                rule,
            })?;
            let bad = |node: &Node, reason: String| CharmError::BadOption {
                file: file.to_owned(),
                line: node.line,
                column: node.column,
                option: name.clone(),
                reason,
            };
            let body = &entry.value;
            if !matches!(body.value, Value::Mapping(_)) && !body.is_null() {
                return Err(bad(
                    body,
                    format!("expected a mapping, found {}", yaml::describe(&body.value)),
                ));
            }
            let kind = match body.get("type") {
                None => OptionType::String,
                Some(node) => {
                    let written = node
                        .optional_text(file, &format!("options.{name}.type"))?
                        .unwrap_or("");
                    OptionType::from_name(written).ok_or_else(|| {
                        bad(node, format!("unknown type {written:?} (expected string, int, float, boolean or secret)"))
                    })?
                }
            };
            let description = match body.get("description") {
                None => String::new(),
                Some(node) => node
                    .optional_text(file, &format!("options.{name}.description"))?
                    .unwrap_or("")
                    .to_owned(),
            };
            let default = match body.get("default") {
                None => None,
                Some(node) => default_value(node, kind).map_err(|reason| bad(node, reason))?,
            };
            options.insert(
                name.clone(),
                ConfigOption {
                    kind,
                    default,
                    description,
                },
            );
        }
        Ok(Self { options })
    }

    /// Checks a `key=value` setting given on the command line against the option's type.
    pub fn validate_setting(&self, name: &str, raw: &str) -> Result<ConfigValue, CharmError> {
        let option = self
            .options
            .get(name)
            .ok_or_else(|| CharmError::UnknownOption {
                option: name.to_owned(),
            })?;
        let bad = || CharmError::BadSetting {
            option: name.to_owned(),
            kind: option.kind,
            value: raw.to_owned(),
        };
        Ok(match option.kind {
            OptionType::String | OptionType::Secret => ConfigValue::String(raw.to_owned()),
            // Juju parses command-line ints in base 10 (strconv.ParseInt(s, 10, 64)).
            OptionType::Int => ConfigValue::Int(raw.parse().map_err(|_| bad())?),
            OptionType::Float => ConfigValue::Float(parse_float(raw).ok_or_else(bad)?),
            OptionType::Boolean => ConfigValue::Bool(yaml::parse_yaml_bool(raw).ok_or_else(bad)?),
        })
    }

    /// The values a hook sees: each option's default overlaid by the user's value. Options
    /// with neither are absent; user values for options this charm lacks are ignored.
    pub fn effective(
        &self,
        user_set: &BTreeMap<String, ConfigValue>,
    ) -> BTreeMap<String, ConfigValue> {
        self.options
            .iter()
            .filter_map(|(name, option)| {
                user_set
                    .get(name)
                    .or(option.default.as_ref())
                    .map(|value| (name.clone(), value.clone()))
            })
            .collect()
    }

    /// The user-set values that survive an upgrade from `previous` to this charm (DESIGN
    /// rule 12): kept when this charm has an option of the same name and the same type.
    pub fn keep_compatible(
        &self,
        previous: &ConfigSpec,
        user_set: &BTreeMap<String, ConfigValue>,
    ) -> BTreeMap<String, ConfigValue> {
        user_set
            .iter()
            .filter(|(name, value)| {
                let Some(new) = self.options.get(*name) else {
                    return false;
                };
                let same_type = previous
                    .options
                    .get(*name)
                    .is_none_or(|old| old.kind == new.kind);
                same_type && value.fits(new.kind)
            })
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()
    }
}

/// Option names: what `hookbox config APP k=v` can address.
fn check_option_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("must not be empty");
    }
    if name.contains('=') {
        return Err("must not contain '='");
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain whitespace or control characters");
    }
    Ok(())
}

/// The default a node declares for an option of type `kind`; `Ok(None)` for no default.
fn default_value(node: &Node, kind: OptionType) -> Result<Option<ConfigValue>, String> {
    let scalar = match &node.value {
        Value::Scalar(s) => s,
        other => {
            return Err(format!(
                "default must be a scalar, found {}",
                yaml::describe(other)
            ));
        }
    };
    if scalar.is_null() {
        return Ok(None);
    }
    let text = scalar.text.as_str();
    let tag = scalar.tag.as_ref();
    let mismatch = || format!("default {text:?} is not a valid {kind}");
    match kind {
        // Exactly as written: `0.10` stays "0.10", `0777` stays "0777", `true` stays "true".
        OptionType::String | OptionType::Secret => Ok(Some(ConfigValue::String(text.to_owned()))),
        // A quoted empty string for a typed option reads as "no default", like a null.
        _ if text.is_empty() && scalar.style != Style::Plain => Ok(None),
        OptionType::Int => {
            if matches!(tag, Some(Tag::Float | Tag::Bool)) {
                return Err(mismatch());
            }
            parse_yaml_int(text)
                .map(|i| Some(ConfigValue::Int(i)))
                .ok_or_else(mismatch)
        }
        OptionType::Float => {
            if matches!(tag, Some(Tag::Bool)) {
                return Err(mismatch());
            }
            let cleaned: String = text.chars().filter(|c| *c != '_').collect();
            parse_float(&cleaned)
                .or_else(|| parse_yaml_int(text).map(|i| i as f64))
                .map(|x| Some(ConfigValue::Float(x)))
                .ok_or_else(mismatch)
        }
        OptionType::Boolean => {
            if matches!(tag, Some(Tag::Int | Tag::Float)) {
                return Err(mismatch());
            }
            yaml::parse_yaml_bool(text)
                .map(|b| Some(ConfigValue::Bool(b)))
                .ok_or_else(mismatch)
        }
    }
}

/// A YAML 1.1 / Go `ParseInt(s, 0, 64)` integer: optional sign, decimal, `0x` hex, `0o` or
/// leading-zero octal, `0b` binary, `_` separators between digits. `1.0` is not an integer.
fn parse_yaml_int(text: &str) -> Option<i64> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = rest.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let digits: String = digits.chars().filter(|c| *c != '_').collect();
    if !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(&digits, radix).ok()?;
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// A finite decimal float (`1`, `-2.5`, `.5`, `1e3`); refuses `inf`, `nan` and overflow,
/// which no JSON consumer could hold.
fn parse_float(text: &str) -> Option<f64> {
    let valid = text.chars().any(|c| c.is_ascii_digit())
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | 'e' | 'E'));
    if !valid {
        return None;
    }
    text.parse::<f64>().ok().filter(|x| x.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConfigSpec, CharmError> {
        ConfigSpec::parse(text, Path::new("config.yaml"), &YamlLimits::default())
    }

    fn default_of(text: &str, option: &str) -> Option<ConfigValue> {
        parse(text).unwrap().options[option].default.clone()
    }

    fn one(kind: &str, default: &str) -> Result<ConfigSpec, CharmError> {
        parse(&format!(
            "options:\n  opt:\n    type: {kind}\n    default: {default}\n"
        ))
    }

    #[test]
    fn real_world_config() {
        let spec = parse(
            r#"options:
  tuning-level:
    type: string
    default: safest
    description: |
      How tuned the database is.
  max-connections:
    type: int
    default: -1
    description: Maximum connections (-1 = auto).
  dataset-size:
    type: float
    default: 0.8
  enable-binlogs:
    type: boolean
    default: False
  admin-password:
    type: secret
    description: The admin password.
  untyped:
    default: hello
"#,
        )
        .unwrap();
        let o = &spec.options;
        assert_eq!(
            o["tuning-level"].default,
            Some(ConfigValue::String("safest".into()))
        );
        assert_eq!(
            o["tuning-level"].description,
            "How tuned the database is.\n"
        );
        assert_eq!(o["max-connections"].default, Some(ConfigValue::Int(-1)));
        assert_eq!(o["dataset-size"].default, Some(ConfigValue::Float(0.8)));
        assert_eq!(o["enable-binlogs"].default, Some(ConfigValue::Bool(false)));
        assert_eq!(o["admin-password"].kind, OptionType::Secret);
        assert_eq!(o["admin-password"].default, None);
        assert_eq!(o["untyped"].kind, OptionType::String);
    }

    #[test]
    fn charmcraft_config_section() {
        let file = Path::new("charmcraft.yaml");
        let text = "name: c\nconfig:\n  options:\n    port:\n      type: int\n      default: 0.5\n";
        let err = ConfigSpec::parse_charmcraft(text, file, &YamlLimits::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "charmcraft.yaml:6:16: option \"port\": default \"0.5\" is not a valid int"
        );
        let spec = ConfigSpec::parse_charmcraft("name: c\n", file, &YamlLimits::default()).unwrap();
        assert!(spec.options.is_empty());
    }

    #[test]
    fn empty_config_and_empty_options() {
        assert!(parse("").unwrap().options.is_empty());
        assert!(parse("options:\n").unwrap().options.is_empty());
        assert!(parse("options: {}\n").unwrap().options.is_empty());
    }

    #[test]
    fn yaml11_booleans_for_boolean_options() {
        for (written, value) in [
            ("yes", true),
            ("Yes", true),
            ("YES", true),
            ("on", true),
            ("On", true),
            ("y", true),
            ("Y", true),
            ("true", true),
            ("no", false),
            ("NO", false),
            ("off", false),
            ("OFF", false),
            ("n", false),
            ("N", false),
            ("False", false),
            ("!!bool \"false\"", false),
            ("!!bool \"true\"", true),
            ("\"yes\"", true),
        ] {
            let spec = one("boolean", written).unwrap();
            assert_eq!(
                spec.options["opt"].default,
                Some(ConfigValue::Bool(value)),
                "{written}"
            );
        }
    }

    #[test]
    fn string_defaults_stay_exactly_as_written() {
        for (written, text) in [
            ("0.10", "0.10"),
            ("0777", "0777"),
            ("1e3", "1e3"),
            ("yes", "yes"),
            ("true", "true"),
            ("'quoted'", "quoted"),
            ("\"a\\tb\"", "a\tb"),
            ("!!str 0.10", "0.10"),
            ("!!bool \"false\"", "false"),
            ("''", ""),
            ("'null'", "null"),
        ] {
            let spec = one("string", written).unwrap();
            assert_eq!(
                spec.options["opt"].default,
                Some(ConfigValue::String(text.to_owned())),
                "{written}"
            );
        }
    }

    #[test]
    fn empty_or_null_default_means_none() {
        for kind in ["string", "int", "float", "boolean", "secret"] {
            for written in ["", "~", "null", "Null"] {
                let spec = one(kind, written).unwrap();
                assert_eq!(spec.options["opt"].default, None, "{kind} {written:?}");
            }
        }
        assert_eq!(one("int", "''").unwrap().options["opt"].default, None);
        assert_eq!(default_of("options:\n  opt:\n    type: int\n", "opt"), None);
    }

    #[test]
    fn int_defaults() {
        for (written, value) in [
            ("42", 42),
            ("-7", -7),
            ("+7", 7),
            ("0", 0),
            ("0x1F", 31),
            ("0o17", 15),
            ("0777", 511),
            ("0b101", 5),
            ("1_000", 1000),
            ("\"5\"", 5),
            ("!!int 9", 9),
            ("9223372036854775807", i64::MAX),
            ("-9223372036854775808", i64::MIN),
        ] {
            let spec = one("int", written).unwrap();
            assert_eq!(
                spec.options["opt"].default,
                Some(ConfigValue::Int(value)),
                "{written}"
            );
        }
    }

    #[test]
    fn int_option_refuses_non_integers_naming_the_option() {
        for written in [
            "1.0",
            "1e3",
            "abc",
            "yes",
            "0x",
            "089",
            "9223372036854775808",
            "!!float 1",
            "[1]",
        ] {
            let err = one("int", written).unwrap_err();
            assert!(
                matches!(&err, CharmError::BadOption { option, .. } if option == "opt"),
                "{written}: {err:?}"
            );
            let message = err.to_string();
            assert!(message.starts_with("config.yaml:4:"), "{message}");
            assert!(message.contains(": option \"opt\": "), "{message}");
        }
        let err = one("int", "1.0").unwrap_err();
        assert_eq!(
            err.to_string(),
            "config.yaml:4:14: option \"opt\": default \"1.0\" is not a valid int"
        );
    }

    #[test]
    fn float_defaults() {
        for (written, value) in [
            ("0.10", 0.1),
            ("1", 1.0),
            ("-2.5e2", -250.0),
            (".5", 0.5),
            ("1_000.5", 1000.5),
        ] {
            let spec = one("float", written).unwrap();
            assert_eq!(
                spec.options["opt"].default,
                Some(ConfigValue::Float(value)),
                "{written}"
            );
        }
        for written in [
            ".inf", "-.inf", ".nan", "nan", "inf", "1e999", "abc", "true",
        ] {
            assert!(
                matches!(one("float", written), Err(CharmError::BadOption { .. })),
                "{written}"
            );
        }
    }

    #[test]
    fn boolean_option_refuses_other_values() {
        for written in ["maybe", "2", "!!int 1", "[true]"] {
            let err = one("boolean", written).unwrap_err();
            assert!(
                matches!(err, CharmError::BadOption { .. }),
                "{written}: {err:?}"
            );
        }
    }

    #[test]
    fn unknown_type_is_refused_naming_option_and_type() {
        let err = one("integer", "1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "config.yaml:3:11: option \"opt\": unknown type \"integer\" (expected string, int, float, boolean or secret)"
        );
    }

    #[test]
    fn bad_option_shapes() {
        let err = parse("options:\n  opt: 5\n").unwrap_err();
        assert!(
            matches!(err, CharmError::BadOption { ref option, .. } if option == "opt"),
            "{err}"
        );
        let err = parse("options: [a, b]\n").unwrap_err();
        assert!(matches!(err, CharmError::Schema { .. }), "{err}");
        let err = parse("options:\n  'a=b':\n    type: string\n").unwrap_err();
        assert!(
            matches!(err, CharmError::InvalidName { kind: "option", .. }),
            "{err}"
        );
    }

    #[test]
    fn duplicate_option_last_wins() {
        let spec = parse("options:\n  a:\n    type: int\n    default: 1\n  a:\n    type: string\n")
            .unwrap();
        assert_eq!(spec.options["a"].kind, OptionType::String);
        assert_eq!(spec.options["a"].default, None);
    }

    fn sample() -> ConfigSpec {
        parse(
            "options:\n  name: {type: string, default: x}\n  port: {type: int, default: 80}\n  ratio: {type: float}\n  debug: {type: boolean, default: false}\n  token: {type: secret}\n",
        )
        .unwrap()
    }

    #[test]
    fn validate_setting_accepts_typed_values() {
        let spec = sample();
        assert_eq!(
            spec.validate_setting("name", "0.10").unwrap(),
            ConfigValue::String("0.10".into())
        );
        assert_eq!(
            spec.validate_setting("name", "").unwrap(),
            ConfigValue::String(String::new())
        );
        assert_eq!(
            spec.validate_setting("port", "8080").unwrap(),
            ConfigValue::Int(8080)
        );
        assert_eq!(
            spec.validate_setting("port", "-1").unwrap(),
            ConfigValue::Int(-1)
        );
        assert_eq!(
            spec.validate_setting("ratio", "0.5").unwrap(),
            ConfigValue::Float(0.5)
        );
        assert_eq!(
            spec.validate_setting("ratio", "2").unwrap(),
            ConfigValue::Float(2.0)
        );
        assert_eq!(
            spec.validate_setting("debug", "true").unwrap(),
            ConfigValue::Bool(true)
        );
        assert_eq!(
            spec.validate_setting("debug", "No").unwrap(),
            ConfigValue::Bool(false)
        );
        assert_eq!(
            spec.validate_setting("token", "secret:abc").unwrap(),
            ConfigValue::String("secret:abc".into())
        );
    }

    #[test]
    fn validate_setting_refusals_name_option_type_and_value() {
        let spec = sample();
        let err = spec.validate_setting("nope", "1").unwrap_err();
        assert_eq!(err.to_string(), "charm has no config option \"nope\"");
        let err = spec.validate_setting("port", "80.0").unwrap_err();
        assert_eq!(
            err.to_string(),
            "option \"port\" is of type int; \"80.0\" is not a valid int"
        );
        for (option, raw) in [
            ("port", "abc"),
            ("port", ""),
            ("ratio", "inf"),
            ("ratio", "x"),
            ("debug", "maybe"),
        ] {
            assert!(
                matches!(
                    spec.validate_setting(option, raw),
                    Err(CharmError::BadSetting { .. })
                ),
                "{option}={raw}"
            );
        }
    }

    #[test]
    fn effective_overlays_user_values_on_defaults() {
        let spec = sample();
        let user = BTreeMap::from([
            ("port".to_owned(), ConfigValue::Int(8080)),
            ("token".to_owned(), ConfigValue::String("s".into())),
            ("stale".to_owned(), ConfigValue::Int(1)),
        ]);
        let effective = spec.effective(&user);
        assert_eq!(
            effective,
            BTreeMap::from([
                ("name".to_owned(), ConfigValue::String("x".into())),
                ("port".to_owned(), ConfigValue::Int(8080)),
                ("debug".to_owned(), ConfigValue::Bool(false)),
                ("token".to_owned(), ConfigValue::String("s".into())),
            ])
        );
        assert!(!effective.contains_key("ratio"));
    }

    #[test]
    fn keep_compatible_drops_renamed_and_retyped_options() {
        let old = sample();
        let new = parse(
            "options:\n  name: {type: string}\n  port: {type: string}\n  token: {type: string}\n",
        )
        .unwrap();
        let user = BTreeMap::from([
            ("name".to_owned(), ConfigValue::String("a".into())),
            ("port".to_owned(), ConfigValue::Int(1)),
            ("token".to_owned(), ConfigValue::String("t".into())),
            ("debug".to_owned(), ConfigValue::Bool(true)),
        ]);
        let kept = new.keep_compatible(&old, &user);
        assert_eq!(
            kept,
            BTreeMap::from([("name".to_owned(), ConfigValue::String("a".into()))])
        );
    }

    #[test]
    fn config_value_json_round_trip() {
        let values = vec![
            ConfigValue::Bool(true),
            ConfigValue::Int(-3),
            ConfigValue::Float(1.0),
            ConfigValue::Float(0.25),
            ConfigValue::String("0.10".into()),
            ConfigValue::String("true".into()),
        ];
        let json = serde_json::to_string(&values).unwrap();
        assert_eq!(json, r#"[true,-3,1.0,0.25,"0.10","true"]"#);
        let back: Vec<ConfigValue> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, values);
        let spec = sample();
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<ConfigSpec>(&json).unwrap(), spec);
    }
}
