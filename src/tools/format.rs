//! Output values and the three hook-tool output formats (`smart`, `yaml`, `json`), byte for
//! byte as Juju's `juju/cmd` formatters print them (Go `encoding/json`, Juju's yaml.v2 fork).

use std::collections::BTreeMap;

use super::yaml_emit;

/// A value a hook tool prints, typed the way the Go tool would hold it (the type decides the
/// `smart` rendering: a `[]string` prints one item per line, a `[]interface{}` as yaml).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Go `nil`: smart and yaml print nothing, json prints `null`.
    Null,
    /// A boolean (`True`/`False` in smart).
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float, printed in Go's shortest form.
    Float(f64),
    /// A string.
    String(String),
    /// A Go `[]string`: smart prints one per line.
    Strings(Vec<String>),
    /// A Go `[]interface{}`: smart prints it as yaml.
    List(Vec<Value>),
    /// A Go map: keys sorted.
    Map(BTreeMap<String, Value>),
    /// A Go struct: fields in declaration order, some present only in yaml.
    Struct(Vec<Field>),
}

/// One field of a [`Value::Struct`].
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The serialised key.
    pub name: &'static str,
    /// The field's value.
    pub value: Value,
    /// Whether the field is tagged `json:"-"` (printed by yaml and smart only).
    pub yaml_only: bool,
}

impl Field {
    /// A field printed in every format.
    pub fn new(name: &'static str, value: Value) -> Self {
        Self {
            name,
            value,
            yaml_only: false,
        }
    }

    /// A legacy field printed only in yaml.
    pub fn yaml_only(name: &'static str, value: Value) -> Self {
        Self {
            name,
            value,
            yaml_only: true,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<&BTreeMap<String, String>> for Value {
    fn from(map: &BTreeMap<String, String>) -> Self {
        Value::Map(
            map.iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        )
    }
}

impl From<&serde_json::Value> for Value {
    fn from(value: &serde_json::Value) -> Self {
        match value {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(items) => Value::List(items.iter().map(Value::from).collect()),
            serde_json::Value::Object(map) => Value::Map(
                map.iter()
                    .map(|(k, v)| (k.clone(), Value::from(v)))
                    .collect(),
            ),
        }
    }
}

/// The output formats a tool's `--format` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Strings raw, lists one per line, bools `True`/`False`, the rest as yaml.
    Smart,
    /// Juju's yaml.v2.
    Yaml,
    /// Go `encoding/json`.
    Json,
}

impl Format {
    /// Parses a `--format` value.
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "smart" => Some(Format::Smart),
            "yaml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    /// Renders `value` in this format, exactly as the Go formatter writes it.
    pub fn render(self, value: &Value) -> String {
        match self {
            Format::Smart => render_smart(value),
            Format::Yaml => render_yaml(value),
            Format::Json => render_json(value),
        }
    }
}

/// `cmd.FormatSmart`.
pub fn render_smart(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) if s.is_empty() => String::new(),
        Value::String(s) => format!("{s}\n"),
        Value::Strings(items) if items.is_empty() => String::new(),
        Value::Strings(items) => format!("{}\n", items.join("\n")),
        Value::Bool(true) => "True\n".to_owned(),
        Value::Bool(false) => "False\n".to_owned(),
        _ => render_yaml(value),
    }
}

/// `cmd.FormatYaml`: nothing for nil, else the document with trailing newlines trimmed to one.
pub fn render_yaml(value: &Value) -> String {
    if *value == Value::Null {
        return String::new();
    }
    let mut text = yaml_emit::to_yaml(value);
    while text.len() > 1 && text.ends_with('\n') {
        text.pop();
    }
    if !text.is_empty() {
        text.push('\n');
    }
    text
}

/// `cmd.FormatJson`: compact Go `encoding/json` plus one newline; nil prints `null`.
pub fn render_json(value: &Value) -> String {
    let mut out = String::new();
    write_json(&mut out, value);
    out.push('\n');
    out
}

fn write_json(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) => out.push_str(&go_json_float(*f)),
        Value::String(s) => write_json_string(out, s),
        Value::Strings(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(out, item);
            }
            out.push(']');
        }
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item);
            }
            out.push(']');
        }
        Value::Map(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(out, k);
                out.push(':');
                write_json(out, v);
            }
            out.push('}');
        }
        Value::Struct(fields) => {
            out.push('{');
            let mut first = true;
            for field in fields.iter().filter(|f| !f.yaml_only) {
                if !first {
                    out.push(',');
                }
                first = false;
                write_json_string(out, field.name);
                out.push(':');
                write_json(out, &field.value);
            }
            out.push('}');
        }
    }
}

/// Go `encoding/json` string escaping with HTML escaping on (the `json.Marshal` default).
fn write_json_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let code = c as u32;
                out.push_str("\\u");
                for shift in [12, 8, 4, 0] {
                    out.push(HEX[((code >> shift) & 0xF) as usize] as char);
                }
            }
            c if (c as u32) < 0x20 => {
                let b = c as u32;
                out.push_str("\\u00");
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 0xF) as usize] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The shortest decimal digits of `f` (no sign) and the decimal point position: the value
/// is `0.DIGITS × 10^point`.
fn shortest_digits(f: f64) -> (String, i32) {
    // Rust's `{:e}` prints the shortest round-tripping digits, like Go's precision -1.
    let text = format!("{:e}", f.abs());
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let exponent: i32 = exponent.parse().unwrap_or(0);
    (digits, exponent + 1)
}

/// Go `strconv.FormatFloat(f, 'e', -1, 64)`.
fn go_format_e(negative: bool, digits: &str, point: i32) -> String {
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    out.push_str(&digits[..1]);
    if digits.len() > 1 {
        out.push('.');
        out.push_str(&digits[1..]);
    }
    let exp = if digits == "0" { 0 } else { point - 1 };
    out.push('e');
    out.push(if exp < 0 { '-' } else { '+' });
    let abs = exp.unsigned_abs();
    if abs < 10 {
        out.push('0');
    }
    out.push_str(&abs.to_string());
    out
}

/// Go `strconv.FormatFloat(f, 'f', -1, 64)`.
fn go_format_f(negative: bool, digits: &str, point: i32) -> String {
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if point <= 0 {
        out.push_str("0.");
        for _ in 0..(-point) {
            out.push('0');
        }
        out.push_str(digits);
    } else {
        let point = point as usize;
        if digits.len() <= point {
            out.push_str(digits);
            for _ in digits.len()..point {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..point]);
            out.push('.');
            out.push_str(&digits[point..]);
        }
    }
    out
}

/// Go `strconv.FormatFloat(f, 'g', -1, 64)`, as yaml.v2 prints floats (`1e+06`, `0.5`, `2`).
pub fn go_yaml_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.to_owned();
    }
    let negative = f.is_sign_negative();
    if f == 0.0 {
        return if negative { "-0" } else { "0" }.to_owned();
    }
    let (digits, point) = shortest_digits(f);
    let exp = point - 1;
    // Go's shortest 'g' form switches to an exponent at 1e-5 and at 1e+06 (eprec = 6).
    let eprec = 6;
    if exp < -4 || exp >= eprec {
        go_format_e(negative, &digits, point)
    } else {
        go_format_f(negative, &digits, point)
    }
}

/// Go `encoding/json` float formatting: `%f` style unless tiny or huge, `e-7` not `e-07`.
pub fn go_json_float(f: f64) -> String {
    if !f.is_finite() {
        // encoding/json refuses these; hook tools never produce them.
        return "null".to_owned();
    }
    let negative = f.is_sign_negative();
    if f == 0.0 {
        return if negative { "-0" } else { "0" }.to_owned();
    }
    let abs = f.abs();
    let (digits, point) = shortest_digits(f);
    if !(1e-6..1e21).contains(&abs) {
        let mut text = go_format_e(negative, &digits, point);
        let n = text.len();
        let bytes = text.as_bytes();
        if n >= 4 && bytes[n - 4] == b'e' && bytes[n - 3] == b'-' && bytes[n - 2] == b'0' {
            text.remove(n - 2);
        }
        text
    } else {
        go_format_f(negative, &digits, point)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, Value)]) -> Value {
        Value::Map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn smart_strings_lists_bools_and_nil() {
        assert_eq!(render_smart(&"hello".into()), "hello\n");
        assert_eq!(render_smart(&"".into()), "");
        assert_eq!(render_smart(&"ends\n".into()), "ends\n\n");
        assert_eq!(
            render_smart(&Value::Strings(vec!["db:0".into(), "db:1".into()])),
            "db:0\ndb:1\n"
        );
        assert_eq!(render_smart(&Value::Strings(vec![])), "");
        assert_eq!(render_smart(&Value::Bool(true)), "True\n");
        assert_eq!(render_smart(&Value::Bool(false)), "False\n");
        assert_eq!(render_smart(&Value::Null), "");
        assert_eq!(render_smart(&Value::Int(45)), "45\n");
        assert_eq!(render_smart(&Value::Float(0.5)), "0.5\n");
        assert_eq!(
            render_smart(&Value::List(vec!["a".into(), Value::Int(1)])),
            "- a\n- 1\n"
        );
    }

    #[test]
    fn smart_map_is_yaml() {
        let config = map(&[
            ("title", "My Title".into()),
            ("spline-reticulation", Value::Int(45)),
            ("monsters", Value::Bool(false)),
        ]);
        assert_eq!(
            render_smart(&config),
            "monsters: false\nspline-reticulation: 45\ntitle: My Title\n"
        );
        assert_eq!(
            render_json(&config),
            "{\"monsters\":false,\"spline-reticulation\":45,\"title\":\"My Title\"}\n"
        );
    }

    #[test]
    fn json_conventions() {
        assert_eq!(render_json(&Value::Null), "null\n");
        assert_eq!(render_json(&Value::Map(BTreeMap::new())), "{}\n");
        assert_eq!(render_json(&Value::Strings(vec![])), "[]\n");
        assert_eq!(render_json(&Value::Bool(true)), "true\n");
        assert_eq!(
            render_json(&"<a href=\"x\">&</a>".into()),
            "\"\\u003ca href=\\\"x\\\"\\u003e\\u0026\\u003c/a\\u003e\"\n"
        );
        assert_eq!(
            render_json(&"tab\there\nnl\u{1}\u{2028}".into()),
            "\"tab\\there\\nnl\\u0001\\u2028\"\n"
        );
        assert_eq!(render_json(&"é☃".into()), "\"é☃\"\n");
        assert_eq!(
            render_json(&Value::Strings(vec!["db:0".into(), "db:3".into()])),
            "[\"db:0\",\"db:3\"]\n"
        );
    }

    #[test]
    fn floats_follow_go() {
        assert_eq!(go_yaml_float(0.5), "0.5");
        assert_eq!(go_yaml_float(2.0), "2");
        assert_eq!(go_yaml_float(1e6), "1e+06");
        assert_eq!(go_yaml_float(123456.0), "123456");
        assert_eq!(go_yaml_float(0.0001), "0.0001");
        assert_eq!(go_yaml_float(0.00001), "1e-05");
        assert_eq!(go_yaml_float(-1.5), "-1.5");
        assert_eq!(go_yaml_float(1.25e21), "1.25e+21");
        assert_eq!(go_json_float(2.0), "2");
        assert_eq!(go_json_float(1e6), "1000000");
        assert_eq!(go_json_float(0.5), "0.5");
        assert_eq!(go_json_float(1e21), "1e+21");
        assert_eq!(go_json_float(1e-7), "1e-7");
        assert_eq!(go_json_float(0.000001), "0.000001");
        assert_eq!(render_json(&Value::Float(2.0)), "2\n");
    }

    #[test]
    fn struct_fields_keep_order_and_yaml_only_fields() {
        let value = Value::Struct(vec![
            Field::new("b", "1".into()),
            Field::new("a", "2".into()),
            Field::yaml_only("legacy", "3".into()),
        ]);
        assert_eq!(render_json(&value), "{\"b\":\"1\",\"a\":\"2\"}\n");
        assert_eq!(render_yaml(&value), "b: \"1\"\na: \"2\"\nlegacy: \"3\"\n");
    }
}
