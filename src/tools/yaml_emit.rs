//! A port of the parts of Go yaml.v2's encoder and emitter that hook-tool output reaches:
//! block maps and sequences, `{}`/`[]`, the scalar style choice (plain, single-quoted,
//! double-quoted, literal), the implicit-type resolver that forces quoting of strings such
//! as `"123"` or `"true"`, and folding of long scalars at 80 columns.

use super::format::{Value, go_yaml_float};

const BEST_INDENT: i32 = 2;
const BEST_WIDTH: i32 = 80;

/// Serialises `value` as one yaml.v2 document (the bytes `yaml.Marshal` returns).
pub fn to_yaml(value: &Value) -> String {
    let mut emitter = Emitter {
        out: String::new(),
        column: 0,
        indent: -1,
        indents: Vec::new(),
        whitespace: true,
        indention: true,
        mapping_context: false,
        simple_key_context: false,
    };
    emitter.emit_node(value, false, false);
    emitter.write_indent();
    emitter.out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
}

struct Emitter {
    out: String,
    column: i32,
    indent: i32,
    indents: Vec<i32>,
    whitespace: bool,
    indention: bool,
    mapping_context: bool,
    simple_key_context: bool,
}

/// What `yaml_emitter_analyze_scalar` finds out about a scalar.
struct Analysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

impl Emitter {
    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    fn write_break(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            self.out.push(c);
            self.column = 0;
        }
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        if self.indent < 0 {
            self.indent = if flow { BEST_INDENT } else { 0 };
        } else if !indentless {
            self.indent += BEST_INDENT;
        }
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().unwrap_or(-1);
    }

    fn write_indent(&mut self) {
        let indent = self.indent.max(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn write_indicator(
        &mut self,
        indicator: &str,
        need_whitespace: bool,
        is_whitespace: bool,
        is_indention: bool,
    ) {
        if need_whitespace && !self.whitespace {
            self.put(' ');
        }
        for c in indicator.chars() {
            self.put(c);
        }
        self.whitespace = is_whitespace;
        self.indention = self.indention && is_indention;
    }

    fn emit_node(&mut self, value: &Value, mapping: bool, simple_key: bool) {
        self.mapping_context = mapping;
        self.simple_key_context = simple_key;
        match value {
            Value::Null => self.emit_scalar("null", Style::Plain),
            Value::Bool(b) => self.emit_scalar(if *b { "true" } else { "false" }, Style::Plain),
            Value::Int(i) => self.emit_scalar(&i.to_string(), Style::Plain),
            Value::Float(f) => self.emit_scalar(&go_yaml_float(*f), Style::Plain),
            Value::String(s) => self.emit_string(s),
            Value::Strings(items) => {
                let items: Vec<Value> = items.iter().map(|s| Value::String(s.clone())).collect();
                self.emit_sequence(&items);
            }
            Value::List(items) => self.emit_sequence(items),
            Value::Map(map) => {
                let pairs: Vec<(&str, &Value)> = map.iter().map(|(k, v)| (k.as_str(), v)).collect();
                self.emit_mapping(&pairs);
            }
            Value::Struct(fields) => {
                let pairs: Vec<(&str, &Value)> =
                    fields.iter().map(|f| (f.name, &f.value)).collect();
                self.emit_mapping(&pairs);
            }
        }
    }

    /// `encoder.stringv`: quote what would read back as another type, literal for newlines.
    fn emit_string(&mut self, s: &str) {
        let can_use_plain = resolves_to_string(s) && !is_base60_float(s);
        let style = if s.contains('\n') {
            Style::Literal
        } else if can_use_plain {
            Style::Plain
        } else {
            Style::DoubleQuoted
        };
        self.emit_scalar(s, style);
    }

    fn emit_sequence(&mut self, items: &[Value]) {
        if items.is_empty() {
            self.write_indicator("[", true, true, false);
            self.write_indicator("]", false, false, false);
            return;
        }
        let indentless = self.mapping_context && !self.indention;
        self.increase_indent(false, indentless);
        for item in items {
            self.write_indent();
            self.write_indicator("-", true, false, true);
            self.emit_node(item, false, false);
        }
        self.pop_indent();
    }

    fn emit_mapping(&mut self, pairs: &[(&str, &Value)]) {
        if pairs.is_empty() {
            self.write_indicator("{", true, true, false);
            self.write_indicator("}", false, false, false);
            return;
        }
        self.increase_indent(false, false);
        for (key, value) in pairs {
            self.write_indent();
            let simple = key.len() <= 128 && !analyze(key).multiline;
            if simple {
                self.emit_node(&Value::String((*key).to_owned()), false, true);
                self.write_indicator(":", false, false, false);
            } else {
                self.write_indicator("?", true, false, true);
                self.emit_node(&Value::String((*key).to_owned()), false, false);
                self.write_indent();
                self.write_indicator(":", true, false, true);
            }
            self.emit_node(value, true, false);
        }
        self.pop_indent();
    }

    /// `yaml_emitter_emit_scalar` with `yaml_emitter_select_scalar_style`.
    fn emit_scalar(&mut self, value: &str, requested: Style) {
        let analysis = analyze(value);
        let mut style = requested;
        if self.simple_key_context && analysis.multiline {
            style = Style::DoubleQuoted;
        }
        if style == Style::Plain
            && (!analysis.block_plain_allowed || (value.is_empty() && self.simple_key_context))
        {
            style = Style::SingleQuoted;
        }
        if style == Style::SingleQuoted && !analysis.single_quoted_allowed {
            style = Style::DoubleQuoted;
        }
        if style == Style::Literal && (!analysis.block_allowed || self.simple_key_context) {
            style = Style::DoubleQuoted;
        }
        self.increase_indent(true, false);
        let allow_breaks = !self.simple_key_context;
        let chars: Vec<char> = value.chars().collect();
        match style {
            Style::Plain => self.write_plain(&chars, allow_breaks),
            Style::SingleQuoted => self.write_single_quoted(&chars, allow_breaks),
            Style::DoubleQuoted => self.write_double_quoted(&chars, allow_breaks),
            Style::Literal => self.write_literal(&chars),
        }
        self.pop_indent();
    }

    fn write_plain(&mut self, value: &[char], allow_breaks: bool) {
        if !self.whitespace {
            self.put(' ');
        }
        let mut spaces = false;
        let mut breaks = false;
        for (i, &c) in value.iter().enumerate() {
            if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && value.get(i + 1) != Some(&' ')
                {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.put(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        self.whitespace = false;
        self.indention = false;
    }

    fn write_single_quoted(&mut self, value: &[char], allow_breaks: bool) {
        self.write_indicator("'", true, false, false);
        let mut spaces = false;
        let mut breaks = false;
        let len = value.len();
        for (i, &c) in value.iter().enumerate() {
            if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i + 1 < len
                    && value.get(i + 1) != Some(&' ')
                {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        self.write_indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_double_quoted(&mut self, value: &[char], allow_breaks: bool) {
        let mut spaces = false;
        self.write_indicator("\"", true, false, false);
        let len = value.len();
        for (i, &c) in value.iter().enumerate() {
            if !is_printable(c) || c == '\u{FEFF}' || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                match c {
                    '\0' => self.put('0'),
                    '\u{7}' => self.put('a'),
                    '\u{8}' => self.put('b'),
                    '\t' => self.put('t'),
                    '\n' => self.put('n'),
                    '\u{b}' => self.put('v'),
                    '\u{c}' => self.put('f'),
                    '\r' => self.put('r'),
                    '\u{1b}' => self.put('e'),
                    '"' => self.put('"'),
                    '\\' => self.put('\\'),
                    '\u{85}' => self.put('N'),
                    '\u{a0}' => self.put('_'),
                    '\u{2028}' => self.put('L'),
                    '\u{2029}' => self.put('P'),
                    other => {
                        let v = other as u32;
                        let (letter, width) = if v <= 0xFF {
                            ('x', 2)
                        } else if v <= 0xFFFF {
                            ('u', 4)
                        } else {
                            ('U', 8)
                        };
                        self.put(letter);
                        for k in (0..width).rev() {
                            let digit = (v >> (k * 4)) & 0xF;
                            self.put(
                                char::from_digit(digit, 16)
                                    .unwrap_or('0')
                                    .to_ascii_uppercase(),
                            );
                        }
                    }
                }
                spaces = false;
            } else if c == ' ' {
                if allow_breaks && !spaces && self.column > BEST_WIDTH && i > 0 && i + 1 < len {
                    self.write_indent();
                    if value.get(i + 1) == Some(&' ') {
                        self.put('\\');
                    }
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
        }
        self.write_indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_literal(&mut self, value: &[char]) {
        self.write_indicator("|", true, false, false);
        // Block scalar hints: an indentation indicator for a leading space or break, then
        // the chomping indicator.
        if value.first().is_some_and(|&c| c == ' ' || is_break(c)) {
            self.write_indicator(&BEST_INDENT.to_string(), false, false, false);
        }
        let chomp = match value {
            [] => Some("-"),
            [.., last] if !is_break(*last) => Some("-"),
            [_] => Some("+"),
            [.., before, _] if is_break(*before) => Some("+"),
            _ => None,
        };
        if let Some(chomp) = chomp {
            self.write_indicator(chomp, false, false, false);
        }
        self.put_break();
        self.indention = true;
        self.whitespace = true;
        let mut breaks = true;
        for &c in value {
            if is_break(c) {
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
    }
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blank_or_break(c: char) -> bool {
    c == ' ' || c == '\t' || is_break(c) || c == '\0'
}

/// libyaml's `is_printable` (4-byte UTF-8 sequences are not "printable").
fn is_printable(c: char) -> bool {
    let v = c as u32;
    v == 0x0A
        || (0x20..=0x7E).contains(&v)
        || (0xA0..=0xD7FF).contains(&v)
        || ((0xE000..=0xFFFD).contains(&v) && v != 0xFEFF)
}

/// `yaml_emitter_analyze_scalar`, reduced to the block context hook tools print in.
fn analyze(value: &str) -> Analysis {
    if value.is_empty() {
        return Analysis {
            multiline: false,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let chars: Vec<char> = value.chars().collect();
    let mut block_indicators = value.starts_with("---") || value.starts_with("...");
    let mut line_breaks = false;
    let mut special_characters = false;
    let mut leading_space = false;
    let mut leading_break = false;
    let mut trailing_space = false;
    let mut trailing_break = false;
    let mut break_space = false;
    let mut space_break = false;
    let mut preceded_by_whitespace = true;
    let mut previous_space = false;
    let mut previous_break = false;
    let len = chars.len();
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_whitespace = i + 1 >= len || chars[i + 1] == ' ' || chars[i + 1] == '\t';
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => block_indicators = true,
                '?' | ':' | '-' if followed_by_whitespace => block_indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_whitespace => block_indicators = true,
                '#' if preceded_by_whitespace => block_indicators = true,
                _ => {}
            }
        }
        if !is_printable(c) {
            special_characters = true;
        }
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i + 1 == len {
                trailing_space = true;
            }
            if previous_break {
                break_space = true;
            }
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            line_breaks = true;
            if i == 0 {
                leading_break = true;
            }
            if i + 1 == len {
                trailing_break = true;
            }
            if previous_space {
                space_break = true;
            }
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = is_blank_or_break(c);
    }
    let mut analysis = Analysis {
        multiline: line_breaks,
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        analysis.block_plain_allowed = false;
    }
    if trailing_space {
        analysis.block_allowed = false;
    }
    if break_space {
        analysis.block_plain_allowed = false;
        analysis.single_quoted_allowed = false;
    }
    if space_break || special_characters {
        analysis.block_plain_allowed = false;
        analysis.single_quoted_allowed = false;
        analysis.block_allowed = false;
    }
    if line_breaks || block_indicators {
        analysis.block_plain_allowed = false;
    }
    analysis
}

/// Whether yaml.v2's `resolve("", s)` reads a plain `s` back as a string (`!!str`).
pub fn resolves_to_string(s: &str) -> bool {
    resolve_tag(s) == "!!str"
}

/// The tag yaml.v2's `resolve("", s)` gives a plain scalar: `!!null`, `!!bool`, `!!int`,
/// `!!float`, `!!timestamp`, `!!merge` or `!!str`.
pub fn resolve_tag(s: &str) -> &'static str {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" | "n"
        | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return "!!bool";
        }
        "" | "~" | "null" | "Null" | "NULL" => return "!!null",
        ".nan" | ".NaN" | ".NAN" | ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF"
        | "-.inf" | "-.Inf" | "-.INF" => return "!!float",
        "<<" => return "!!merge",
        _ => {}
    }
    match s.as_bytes()[0] {
        b'.' if is_go_float_starting_with_dot(s) => "!!float",
        b'+' | b'-' | b'0'..=b'9' => {
            if is_timestamp(s) {
                return "!!timestamp";
            }
            let plain: String = s.chars().filter(|c| *c != '_').collect();
            if is_go_int(&plain) {
                "!!int"
            } else if is_yaml_style_float(&plain) {
                "!!float"
            } else {
                "!!str"
            }
        }
        _ => "!!str",
    }
}

/// `strconv.ParseFloat` success for text starting with `.` (`.5`, `.5e3`).
fn is_go_float_starting_with_dot(s: &str) -> bool {
    let rest = &s[1..];
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    if mantissa.is_empty() || !mantissa.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    match exponent {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
        }
    }
}

/// `strconv.ParseInt(s, 0, 64)` or `strconv.ParseUint(s, 0, 64)` succeeds.
fn is_go_int(s: &str) -> bool {
    let (negative, signed, body) = match s.as_bytes().first() {
        Some(b'-') => (true, true, &s[1..]),
        Some(b'+') => (false, true, &s[1..]),
        _ => (false, false, s),
    };
    let (radix, digits) = if let Some(d) = body.strip_prefix("0x").or(body.strip_prefix("0X")) {
        (16, d)
    } else if let Some(d) = body.strip_prefix("0o").or(body.strip_prefix("0O")) {
        (8, d)
    } else if let Some(d) = body.strip_prefix("0b").or(body.strip_prefix("0B")) {
        (2, d)
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..])
    } else {
        (10, body)
    };
    if digits.is_empty() {
        return false;
    }
    let Ok(magnitude) = u128::from_str_radix(digits, radix) else {
        return false;
    };
    if negative {
        magnitude <= 1u128 << 63
    } else if signed {
        magnitude < 1u128 << 63
    } else {
        magnitude <= u128::from(u64::MAX)
    }
}

/// yaml.v2's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_style_float(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => !frac.is_empty() && frac.bytes().all(|b| b.is_ascii_digit()),
        Some((int, frac)) => {
            !int.is_empty()
                && int.bytes().all(|b| b.is_ascii_digit())
                && frac.bytes().all(|b| b.is_ascii_digit())
        }
        None => !mantissa.is_empty() && mantissa.bytes().all(|b| b.is_ascii_digit()),
    };
    let exponent_ok = match exponent {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
        }
    };
    mantissa_ok && exponent_ok
}

/// yaml.v2's `isBase60Float`: `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`.
pub fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    if i >= b.len() || !b[i].is_ascii_digit() {
        return false;
    }
    i += 1;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while i < b.len() && b[i] == b':' {
        i += 1;
        // [0-5]?[0-9]: one digit, or a 0-5 digit followed by a digit.
        if i + 1 < b.len() && (b'0'..=b'5').contains(&b[i]) && b[i + 1].is_ascii_digit() {
            i += 2;
        } else if i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        } else {
            return false;
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

/// yaml.v2's `parseTimestamp` for unquoted scalars: `2006-1-2`, with an optional
/// `[Tt ]15:4:5[.frac]` time and, after `T`/`t`, a `Z` or `±07:00` zone.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits != 4 || b.get(4) != Some(&b'-') {
        return false;
    }
    let mut i = 5;
    let number = |i: &mut usize, max_len: usize| -> Option<u32> {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() && *i - start < max_len {
            *i += 1;
        }
        if *i == start {
            None
        } else {
            s[start..*i].parse().ok()
        }
    };
    let Some(month) = number(&mut i, 2) else {
        return false;
    };
    if b.get(i) != Some(&b'-') {
        return false;
    }
    i += 1;
    let Some(day) = number(&mut i, 2) else {
        return false;
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return false;
    }
    if i == b.len() {
        return true;
    }
    let separator = b[i];
    if !matches!(separator, b'T' | b't' | b' ') {
        return false;
    }
    i += 1;
    let Some(hour) = number(&mut i, 2) else {
        return false;
    };
    if b.get(i) != Some(&b':') {
        return false;
    }
    i += 1;
    let Some(minute) = number(&mut i, 2) else {
        return false;
    };
    if b.get(i) != Some(&b':') {
        return false;
    }
    i += 1;
    let Some(second) = number(&mut i, 2) else {
        return false;
    };
    if hour > 23 || minute > 59 || second > 59 {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    if i == b.len() {
        return true;
    }
    if separator == b' ' {
        return false;
    }
    match &s[i..] {
        "Z" => true,
        zone => {
            let z = zone.as_bytes();
            z.len() == 6
                && (z[0] == b'+' || z[0] == b'-')
                && z[1].is_ascii_digit()
                && z[2].is_ascii_digit()
                && z[3] == b':'
                && z[4].is_ascii_digit()
                && z[5].is_ascii_digit()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::format::{Field, render_yaml};
    use super::*;

    fn yaml(value: Value) -> String {
        render_yaml(&value)
    }

    fn s(text: &str) -> Value {
        Value::String(text.to_owned())
    }

    #[test]
    fn strings_that_read_back_as_other_types_are_double_quoted() {
        for text in [
            "123",
            "true",
            "True",
            "yes",
            "on",
            "off",
            "null",
            "~",
            "",
            "1.5",
            "-1",
            "+1",
            "0x1F",
            "1e5",
            ".5",
            ".inf",
            "2024-01-02",
            "2001-12-14t21:59:43.10-05:00",
            "00:11:22:33:44:22",
            "1_000",
            "<<",
            "012",
            "08",
        ] {
            assert_eq!(yaml(s(text)), format!("\"{text}\"\n"), "for {text:?}");
        }
    }

    #[test]
    fn plain_strings_stay_plain() {
        for text in [
            "hello",
            "My Title",
            "10.0.0.5",
            "db:1",
            "app/0",
            "1.2.3",
            "a: b c",
            "x#y",
            "aa:bb:cc",
            "yesterday",
            "-foo",
            "éé",
            "http://x/y?z",
        ] {
            let expected = if text == "a: b c" {
                "'a: b c'\n".to_owned()
            } else {
                format!("{text}\n")
            };
            assert_eq!(yaml(s(text)), expected, "for {text:?}");
        }
    }

    #[test]
    fn indicators_force_single_quotes() {
        assert_eq!(yaml(s("foo: bar")), "'foo: bar'\n");
        assert_eq!(yaml(s("- item")), "'- item'\n");
        assert_eq!(yaml(s("-")), "'-'\n");
        assert_eq!(yaml(s("*star")), "'*star'\n");
        assert_eq!(yaml(s("[x]")), "'[x]'\n");
        assert_eq!(yaml(s("it's")), "it's\n");
        assert_eq!(yaml(s("'quoted'")), "'''quoted'''\n");
        assert_eq!(yaml(s(" lead")), "' lead'\n");
        assert_eq!(yaml(s("trail ")), "'trail '\n");
        assert_eq!(yaml(s("a #b")), "'a #b'\n");
        assert_eq!(yaml(s("---")), "'---'\n");
    }

    #[test]
    fn special_characters_force_double_quotes() {
        assert_eq!(yaml(s("tab\there")), "\"tab\\there\"\n");
        assert_eq!(yaml(s("cr\r")), "\"cr\\r\"\n");
        assert_eq!(yaml(s("smile😀")), "\"smile\\U0001F600\"\n");
        assert_eq!(yaml(s("bell\u{7}")), "\"bell\\a\"\n");
    }

    #[test]
    fn newlines_use_literal_blocks() {
        assert_eq!(yaml(s("a\nb")), "|-\n  a\n  b\n");
        assert_eq!(yaml(s("a\nb\n")), "|\n  a\n  b\n");
        let map = Value::Map(BTreeMap::from([
            ("cert".to_owned(), s("line1\nline2\n")),
            ("key".to_owned(), s("x\n\ny")),
        ]));
        assert_eq!(
            yaml(map),
            "cert: |\n  line1\n  line2\nkey: |-\n  x\n\n  y\n"
        );
        assert_eq!(yaml(s(" lead\nx")), "|2-\n   lead\n  x\n");
        assert_eq!(yaml(s("space \nbreak")), "\"space \\nbreak\"\n");
    }

    #[test]
    fn block_collections() {
        let value = Value::Map(BTreeMap::from([
            (
                "b".to_owned(),
                Value::Strings(vec!["x".into(), "y".into(), "z".into()]),
            ),
            (
                "a".to_owned(),
                Value::Map(BTreeMap::from([("c".to_owned(), Value::Int(1))])),
            ),
            ("e".to_owned(), Value::Map(BTreeMap::new())),
            ("f".to_owned(), Value::List(vec![])),
            (
                "g".to_owned(),
                Value::List(vec![Value::Map(BTreeMap::from([
                    ("k".to_owned(), s("v")),
                    ("l".to_owned(), Value::Bool(true)),
                ]))]),
            ),
        ]));
        assert_eq!(
            yaml(value),
            "a:\n  c: 1\nb:\n- x\n- \"y\"\n- z\ne: {}\nf: []\ng:\n- k: v\n  l: true\n"
        );
        assert_eq!(yaml(Value::Map(BTreeMap::new())), "{}\n");
        assert_eq!(yaml(Value::Strings(vec![])), "[]\n");
        assert_eq!(yaml(Value::Strings(vec!["db:0".into()])), "- db:0\n");
        assert_eq!(yaml(Value::Null), "");
        assert_eq!(
            yaml(Value::List(vec![Value::List(vec![Value::Int(1)])])),
            "- - 1\n"
        );
    }

    #[test]
    fn network_get_example_from_the_reference() {
        let address = Value::Struct(vec![
            Field::new("hostname", s("")),
            Field::new("value", s("10.20.1.42")),
            Field::new("cidr", s("10.20.1.0/24")),
            Field::yaml_only("address", s("10.20.1.42")),
        ]);
        let bind = Value::Struct(vec![
            Field::new("mac-address", s("00:11:22:33:44:22")),
            Field::new("interface-name", s("eth2")),
            Field::new("addresses", Value::List(vec![address])),
            Field::yaml_only("macaddress", s("00:11:22:33:44:22")),
            Field::yaml_only("interfacename", s("eth2")),
        ]);
        let info = Value::Struct(vec![
            Field::new("bind-addresses", Value::List(vec![bind])),
            Field::new(
                "egress-subnets",
                Value::Strings(vec!["10.20.1.42/32".into()]),
            ),
            Field::new(
                "ingress-addresses",
                Value::Strings(vec!["10.20.1.42".into()]),
            ),
        ]);
        assert_eq!(
            yaml(info),
            "bind-addresses:\n- mac-address: \"00:11:22:33:44:22\"\n  interface-name: eth2\n  addresses:\n  - hostname: \"\"\n    value: 10.20.1.42\n    cidr: 10.20.1.0/24\n    address: 10.20.1.42\n  macaddress: \"00:11:22:33:44:22\"\n  interfacename: eth2\negress-subnets:\n- 10.20.1.42/32\ningress-addresses:\n- 10.20.1.42\n"
        );
    }

    #[test]
    fn long_scalars_fold_at_80_columns() {
        let words = "word ".repeat(20);
        let text = words.trim_end();
        let folded = yaml(Value::Map(BTreeMap::from([("k".to_owned(), s(text))])));
        let expected_first = format!("k: {}", "word ".repeat(16).trim_end());
        let mut lines = folded.lines();
        assert_eq!(lines.next().unwrap(), expected_first);
        assert_eq!(lines.next().unwrap(), "  word word word word");
        let quoted = yaml(Value::Map(BTreeMap::from([(
            "k".to_owned(),
            s(&format!("{} 123", "x ".repeat(45))),
        )])));
        assert!(quoted.contains("\n  "), "{quoted:?}");
    }

    #[test]
    fn empty_and_special_keys() {
        let value = Value::Map(BTreeMap::from([
            ("".to_owned(), s("v")),
            ("123".to_owned(), s("n")),
        ]));
        assert_eq!(yaml(value), "\"\": v\n\"123\": \"n\"\n");
    }
}
