//! Bounded YAML reading for charm files: a small located node tree built from the
//! saphyr event stream, with alias-bomb, depth and size limits and serde-saphyr's budget.
//!
//! Why not `serde_saphyr::from_str` straight into the types: charm YAML needs what a typed
//! deserializer throws away. A string option's `default: 0.10` must stay `"0.10"` (serde
//! would hand out `0.1`), `!!bool "false"` must be a boolean (serde-saphyr refuses tagged
//! scalars outside `deserialize_bool`), and a duplicate key must be named in a warning
//! (serde-saphyr's `LastWins` policy passes duplicates through silently). The tree keeps the
//! text, style, tag and position of every scalar, so the schema code in `metadata.rs` and
//! `config.rs` can apply Juju's rules and point at `file:line:column` in every error.

use std::collections::HashMap;
use std::path::Path;

use saphyr_parser::{Event, Parser, ScalarStyle};
use serde_saphyr::Budget;
use serde_saphyr::budget::{BudgetBreach, EnforcingPolicy, check_yaml_budget};

use super::CharmError;

/// Limits every charm YAML file is read under; the ingest command may widen them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlLimits {
    /// Largest file accepted, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting of sequences and mappings accepted.
    pub max_depth: usize,
    /// Most alias (`*name`) uses accepted in one file.
    pub max_aliases: usize,
    /// Most nodes that alias uses may add to the document in total (the "billion laughs"
    /// guard: each alias costs the size of the subtree it repeats).
    pub max_alias_expansion: usize,
    /// Most nodes (scalars, sequences, mappings) accepted in one file.
    pub max_nodes: usize,
}

impl Default for YamlLimits {
    fn default() -> Self {
        Self {
            max_bytes: 1024 * 1024,
            max_depth: 64,
            max_aliases: 256,
            max_alias_expansion: 10_000,
            max_nodes: 200_000,
        }
    }
}

/// How a scalar was written; plain scalars are the only ones YAML resolves to null,
/// booleans or numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// Unquoted.
    Plain,
    /// Single- or double-quoted.
    Quoted,
    /// Literal (`|`) or folded (`>`) block.
    Block,
}

/// A YAML core-schema tag written on a node (`!!str`, `!!bool`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tag {
    /// `!!str`
    Str,
    /// `!!int`
    Int,
    /// `!!float`
    Float,
    /// `!!bool`
    Bool,
    /// `!!null`
    Null,
    /// Any other tag, kept as written.
    Other(String),
}

/// A scalar exactly as written in the file (escapes in quoted styles already decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scalar {
    /// The scalar's text.
    pub(crate) text: String,
    /// How it was written.
    pub(crate) style: Style,
    /// Its explicit tag, if any.
    pub(crate) tag: Option<Tag>,
}

impl Scalar {
    /// Whether YAML reads this scalar as null (`~`, `null`, empty, or `!!null`).
    pub(crate) fn is_null(&self) -> bool {
        match &self.tag {
            Some(Tag::Null) => true,
            Some(_) => false,
            None => {
                self.style == Style::Plain
                    && (self.text.is_empty()
                        || self.text == "~"
                        || self.text.eq_ignore_ascii_case("null"))
            }
        }
    }
}

/// The content of a node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// A scalar.
    Scalar(Scalar),
    /// A sequence.
    Sequence(Vec<Node>),
    /// A mapping with unique scalar keys, in file order (duplicates resolved: last wins).
    Mapping(Vec<Entry>),
}

/// One key/value pair of a mapping.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    /// The key's text.
    pub(crate) key: String,
    /// Where the key is written.
    pub(crate) key_line: usize,
    /// Where the key is written.
    pub(crate) key_column: usize,
    /// The value.
    pub(crate) value: Node,
}

/// A YAML node with the position it starts at (1-based line and column).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    /// The content.
    pub(crate) value: Value,
    /// 1-based line.
    pub(crate) line: usize,
    /// 1-based column.
    pub(crate) column: usize,
}

impl Node {
    /// Whether the node is a null scalar.
    pub(crate) fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar(s) if s.is_null())
    }

    /// A schema error located at this node.
    pub(crate) fn schema_error(&self, file: &Path, field: &str, reason: String) -> CharmError {
        CharmError::Schema {
            file: file.to_owned(),
            line: self.line,
            column: self.column,
            field: field.to_owned(),
            reason,
        }
    }

    /// The entries of a mapping; a null node reads as an empty mapping.
    pub(crate) fn entries(&self, file: &Path, field: &str) -> Result<&[Entry], CharmError> {
        match &self.value {
            Value::Mapping(entries) => Ok(entries),
            _ if self.is_null() => Ok(&[]),
            other => Err(self.schema_error(
                file,
                field,
                format!("expected a mapping, found {}", describe(other)),
            )),
        }
    }

    /// The value under `key` when this node is a mapping.
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Mapping(entries) => entries.iter().find(|e| e.key == key).map(|e| &e.value),
            _ => None,
        }
    }

    /// The text of a non-null scalar (numbers and booleans as written).
    pub(crate) fn text(&self, file: &Path, field: &str) -> Result<&str, CharmError> {
        match &self.value {
            Value::Scalar(s) if !s.is_null() => Ok(&s.text),
            other => Err(self.schema_error(
                file,
                field,
                format!("expected a string, found {}", describe(other)),
            )),
        }
    }

    /// The text of a scalar, or `None` when the node is null.
    pub(crate) fn optional_text(
        &self,
        file: &Path,
        field: &str,
    ) -> Result<Option<&str>, CharmError> {
        if self.is_null() {
            return Ok(None);
        }
        self.text(file, field).map(Some)
    }

    /// A YAML 1.1 boolean (`true`/`false`/`yes`/`no`/`on`/`off`/`y`/`n`, any case).
    pub(crate) fn boolean(&self, file: &Path, field: &str) -> Result<bool, CharmError> {
        let text = self.text(file, field)?;
        parse_yaml_bool(text).ok_or_else(|| {
            self.schema_error(file, field, format!("expected a boolean, found {text:?}"))
        })
    }

    /// Scalars of a sequence; a single scalar reads as a one-item list and null as empty.
    pub(crate) fn string_list(&self, file: &Path, field: &str) -> Result<Vec<String>, CharmError> {
        match &self.value {
            Value::Sequence(items) => items
                .iter()
                .map(|item| item.text(file, field).map(str::to_owned))
                .collect(),
            _ if self.is_null() => Ok(Vec::new()),
            Value::Scalar(s) => Ok(vec![s.text.clone()]),
            other @ Value::Mapping(_) => Err(self.schema_error(
                file,
                field,
                format!("expected a list of strings, found {}", describe(other)),
            )),
        }
    }
}

/// A short name for a node kind, for error messages.
pub(crate) fn describe(value: &Value) -> &'static str {
    match value {
        Value::Scalar(s) if s.is_null() => "null",
        Value::Scalar(_) => "a scalar",
        Value::Sequence(_) => "a sequence",
        Value::Mapping(_) => "a mapping",
    }
}

/// YAML 1.1 booleans, which Juju's YAML library (go-yaml v2) still reads, plus the forms
/// Go's `strconv.ParseBool` accepts for quoted strings (`t`, `f`, `1`, `0`).
pub(crate) fn parse_yaml_bool(text: &str) -> Option<bool> {
    const TRUE: [&str; 6] = ["true", "yes", "on", "y", "t", "1"];
    const FALSE: [&str; 6] = ["false", "no", "off", "n", "f", "0"];
    let text = text.trim();
    if TRUE.iter().any(|t| text.eq_ignore_ascii_case(t)) {
        Some(true)
    } else if FALSE.iter().any(|f| text.eq_ignore_ascii_case(f)) {
        Some(false)
    } else {
        None
    }
}

/// Parses one YAML document under `limits`; an empty file is a null node.
pub(crate) fn parse_document(
    text: &str,
    file: &Path,
    limits: &YamlLimits,
) -> Result<Node, CharmError> {
    if text.len() > limits.max_bytes {
        return Err(CharmError::YamlTooLarge {
            file: file.to_owned(),
            size: text.len() as u64,
            limit: limits.max_bytes as u64,
        });
    }
    // A UTF-8 byte-order mark is not part of the first key.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let root = Builder::new(file, limits).build(text)?;
    check_budget(text, file, limits)?;
    Ok(root)
}

/// serde-saphyr's streaming budget (events, nodes, anchors, merge keys, alias ratio), as a
/// second guard after the builder's own located checks.
fn check_budget(text: &str, file: &Path, limits: &YamlLimits) -> Result<(), CharmError> {
    let budget = Budget {
        max_reader_input_bytes: Some(limits.max_bytes),
        max_depth: limits.max_depth,
        max_aliases: limits.max_aliases,
        max_nodes: limits.max_nodes,
        max_documents: 1,
        max_total_scalar_bytes: limits.max_bytes,
        ..Budget::default()
    };
    let report = check_yaml_budget(text, budget, EnforcingPolicy::AllContent).map_err(|e| {
        yaml_error(
            file,
            e.marker().line(),
            e.marker().col() + 1,
            e.info().to_owned(),
        )
    })?;
    match report.breached {
        None => Ok(()),
        Some(breach) => Err(CharmError::YamlBudget {
            file: file.to_owned(),
            reason: describe_breach(&breach),
        }),
    }
}

/// A sentence for a serde-saphyr budget breach.
fn describe_breach(breach: &BudgetBreach) -> String {
    match breach {
        BudgetBreach::Events { events } => format!("too many YAML events ({events})"),
        BudgetBreach::Aliases { aliases } => format!("too many aliases ({aliases})"),
        BudgetBreach::Anchors { anchors } => format!("too many anchors ({anchors})"),
        BudgetBreach::Depth { depth } => format!("nesting too deep ({depth})"),
        BudgetBreach::Documents { documents } => format!("too many documents ({documents})"),
        BudgetBreach::Nodes { nodes } => format!("too many nodes ({nodes})"),
        BudgetBreach::ScalarBytes { total_scalar_bytes } => {
            format!("too much scalar text ({total_scalar_bytes} bytes)")
        }
        BudgetBreach::MergeKeys { merge_keys } => format!("too many merge keys ({merge_keys})"),
        BudgetBreach::AliasAnchorRatio { aliases, anchors } => {
            format!("{aliases} aliases for {anchors} anchors looks like an alias bomb")
        }
        BudgetBreach::SequenceUnbalanced => "unbalanced structure".to_owned(),
        BudgetBreach::InputBytes { input_bytes } => {
            format!("input too large ({input_bytes} bytes)")
        }
    }
}

fn yaml_error(file: &Path, line: usize, column: usize, message: String) -> CharmError {
    CharmError::Yaml {
        file: file.to_owned(),
        line,
        column,
        message,
    }
}

/// A collection being built, with what is needed to finish it.
enum Frame {
    Sequence {
        start: Position,
        anchor: usize,
        items: Vec<Node>,
        size: usize,
    },
    Mapping {
        start: Position,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        size: usize,
    },
}

#[derive(Debug, Clone, Copy)]
struct Position {
    line: usize,
    column: usize,
}

/// Turns the event stream into a [`Node`] tree, enforcing depth and alias limits.
struct Builder<'a> {
    file: &'a Path,
    limits: &'a YamlLimits,
    stack: Vec<Frame>,
    /// Anchored nodes by anchor id, with their node count.
    anchors: HashMap<usize, (Node, usize)>,
    aliases: usize,
    expansion: usize,
    nodes: usize,
    documents: usize,
    root: Option<Node>,
}

impl<'a> Builder<'a> {
    fn new(file: &'a Path, limits: &'a YamlLimits) -> Self {
        Self {
            file,
            limits,
            stack: Vec::new(),
            anchors: HashMap::new(),
            aliases: 0,
            expansion: 0,
            nodes: 0,
            documents: 0,
            root: None,
        }
    }

    fn error(&self, at: Position, message: String) -> CharmError {
        yaml_error(self.file, at.line, at.column, message)
    }

    fn build(mut self, text: &str) -> Result<Node, CharmError> {
        for item in Parser::new_from_str(text) {
            let (event, span) = item.map_err(|e| {
                yaml_error(
                    self.file,
                    e.marker().line(),
                    e.marker().col() + 1,
                    e.info().to_owned(),
                )
            })?;
            let at = Position {
                line: span.start.line(),
                column: span.start.col() + 1,
            };
            match event {
                Event::DocumentStart(_) => {
                    self.documents += 1;
                    if self.documents > 1 {
                        return Err(self.error(at, "more than one YAML document".to_owned()));
                    }
                }
                Event::Scalar(value, style, anchor, tag) => {
                    let scalar = Scalar {
                        text: value.into_owned(),
                        style: match style {
                            ScalarStyle::Plain => Style::Plain,
                            ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => Style::Quoted,
                            ScalarStyle::Literal | ScalarStyle::Folded => Style::Block,
                        },
                        tag: tag.map(|t| core_tag(&t)),
                    };
                    let node = Node {
                        value: Value::Scalar(scalar),
                        line: at.line,
                        column: at.column,
                    };
                    self.count_node(at)?;
                    self.complete(node, anchor, 1)?;
                }
                Event::SequenceStart(anchor, _) => {
                    self.open(at)?;
                    self.stack.push(Frame::Sequence {
                        start: at,
                        anchor,
                        items: Vec::new(),
                        size: 1,
                    });
                }
                Event::MappingStart(anchor, _) => {
                    self.open(at)?;
                    self.stack.push(Frame::Mapping {
                        start: at,
                        anchor,
                        entries: Vec::new(),
                        key: None,
                        size: 1,
                    });
                }
                Event::SequenceEnd => match self.stack.pop() {
                    Some(Frame::Sequence {
                        start,
                        anchor,
                        items,
                        size,
                    }) => {
                        let node = Node {
                            value: Value::Sequence(items),
                            line: start.line,
                            column: start.column,
                        };
                        self.complete(node, anchor, size)?;
                    }
                    _ => return Err(self.error(at, "unbalanced sequence end".to_owned())),
                },
                Event::MappingEnd => match self.stack.pop() {
                    Some(Frame::Mapping {
                        start,
                        anchor,
                        entries,
                        size,
                        ..
                    }) => {
                        let entries = self.finish_mapping(entries)?;
                        let node = Node {
                            value: Value::Mapping(entries),
                            line: start.line,
                            column: start.column,
                        };
                        self.complete(node, anchor, size)?;
                    }
                    _ => return Err(self.error(at, "unbalanced mapping end".to_owned())),
                },
                Event::Alias(id) => {
                    self.aliases += 1;
                    if self.aliases > self.limits.max_aliases {
                        return Err(self
                            .error(at, format!("more than {} aliases", self.limits.max_aliases)));
                    }
                    let Some((node, size)) = self.anchors.get(&id).cloned() else {
                        return Err(self.error(at, "alias to an unknown anchor".to_owned()));
                    };
                    self.expansion = self.expansion.saturating_add(size);
                    if self.expansion > self.limits.max_alias_expansion {
                        return Err(self.error(
                            at,
                            format!(
                                "aliases expand to more than {} nodes (alias bomb?)",
                                self.limits.max_alias_expansion
                            ),
                        ));
                    }
                    self.complete(node, 0, size)?;
                }
                Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
            }
        }
        Ok(self.root.unwrap_or(Node {
            value: Value::Scalar(Scalar {
                text: String::new(),
                style: Style::Plain,
                tag: None,
            }),
            line: 1,
            column: 1,
        }))
    }

    fn count_node(&mut self, at: Position) -> Result<(), CharmError> {
        self.nodes += 1;
        if self.nodes > self.limits.max_nodes {
            return Err(self.error(at, format!("more than {} nodes", self.limits.max_nodes)));
        }
        Ok(())
    }

    /// A collection starts: check depth and node count.
    fn open(&mut self, at: Position) -> Result<(), CharmError> {
        self.count_node(at)?;
        if self.stack.len() >= self.limits.max_depth {
            return Err(self.error(
                at,
                format!("nesting deeper than {} levels", self.limits.max_depth),
            ));
        }
        Ok(())
    }

    /// A node is complete: remember its anchor and hand it to its parent.
    fn complete(&mut self, node: Node, anchor: usize, size: usize) -> Result<(), CharmError> {
        if anchor != 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Sequence {
                items, size: total, ..
            }) => {
                items.push(node);
                *total = total.saturating_add(size);
            }
            Some(Frame::Mapping {
                entries,
                key,
                size: total,
                ..
            }) => {
                *total = total.saturating_add(size);
                match key.take() {
                    None => *key = Some(node),
                    Some(k) => entries.push((k, node)),
                }
            }
        }
        Ok(())
    }

    /// Scalar keys only; `<<` merge keys applied; duplicate keys: last wins, with a warning.
    fn finish_mapping(&self, pairs: Vec<(Node, Node)>) -> Result<Vec<Entry>, CharmError> {
        let mut entries: Vec<Entry> = Vec::with_capacity(pairs.len());
        let mut index: HashMap<String, usize> = HashMap::with_capacity(pairs.len());
        let mut merges = Vec::new();
        for (key, value) in pairs {
            let Value::Scalar(scalar) = &key.value else {
                return Err(self.error(
                    Position {
                        line: key.line,
                        column: key.column,
                    },
                    "mapping keys must be scalars".to_owned(),
                ));
            };
            if scalar.text == "<<" && scalar.style == Style::Plain && scalar.tag.is_none() {
                merges.push(value);
                continue;
            }
            let entry = Entry {
                key: scalar.text.clone(),
                key_line: key.line,
                key_column: key.column,
                value,
            };
            match index.get(&entry.key).map(|&i| &mut entries[i]) {
                Some(earlier) => {
                    tracing::warn!(
                        file = %self.file.display(),
                        key = %entry.key,
                        line = entry.key_line,
                        column = entry.key_column,
                        first_line = earlier.key_line,
                        "duplicate YAML key, the last one wins"
                    );
                    *earlier = entry;
                }
                None => {
                    index.insert(entry.key.clone(), entries.len());
                    entries.push(entry);
                }
            }
        }
        for merge in merges {
            let sources: Vec<&Node> = match &merge.value {
                Value::Mapping(_) => vec![&merge],
                Value::Sequence(items) => items.iter().collect(),
                Value::Scalar(_) => vec![&merge],
            };
            for source in sources {
                let Value::Mapping(merged) = &source.value else {
                    return Err(self.error(
                        Position {
                            line: source.line,
                            column: source.column,
                        },
                        "a merge key (<<) needs a mapping or a list of mappings".to_owned(),
                    ));
                };
                for entry in merged {
                    if !index.contains_key(&entry.key) {
                        index.insert(entry.key.clone(), entries.len());
                        entries.push(entry.clone());
                    }
                }
            }
        }
        Ok(entries)
    }
}

/// Maps a parsed tag onto the core-schema tags charm code cares about.
fn core_tag(tag: &saphyr_parser::Tag) -> Tag {
    if tag.is_yaml_core_schema() {
        match tag.suffix.as_str() {
            "str" => return Tag::Str,
            "int" => return Tag::Int,
            "float" => return Tag::Float,
            "bool" => return Tag::Bool,
            "null" => return Tag::Null,
            _ => {}
        }
    }
    Tag::Other(tag.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Node, CharmError> {
        parse_document(text, Path::new("test.yaml"), &YamlLimits::default())
    }

    fn scalar(node: &Node) -> &Scalar {
        match &node.value {
            Value::Scalar(s) => s,
            other => panic!("expected a scalar, got {other:?}"),
        }
    }

    #[test]
    fn scalars_keep_text_style_tag_and_position() {
        let root = parse("a: 0.10\nb: 'x'\nc: !!bool \"false\"\nd: |\n  text\n").unwrap();
        let a = root.get("a").unwrap();
        assert_eq!(scalar(a).text, "0.10");
        assert_eq!(scalar(a).style, Style::Plain);
        assert_eq!((a.line, a.column), (1, 4));
        assert_eq!(scalar(root.get("b").unwrap()).style, Style::Quoted);
        let c = scalar(root.get("c").unwrap());
        assert_eq!((c.text.as_str(), &c.tag), ("false", &Some(Tag::Bool)));
        let d = scalar(root.get("d").unwrap());
        assert_eq!((d.text.as_str(), d.style), ("text\n", Style::Block));
    }

    #[test]
    fn crlf_bom_and_explicit_document_markers() {
        for text in [
            "name: x\r\nsummary: y\r\n",
            "\u{feff}name: x\nsummary: y\n",
            "---\nname: x\nsummary: y\n...\n",
        ] {
            let root = parse(text).map_err(|e| e.to_string()).unwrap();
            assert_eq!(scalar(root.get("name").unwrap()).text, "x", "{text:?}");
            assert_eq!(scalar(root.get("summary").unwrap()).text, "y", "{text:?}");
        }
    }

    #[test]
    fn empty_document_is_null() {
        assert!(parse("").unwrap().is_null());
        assert!(parse("# only a comment\n").unwrap().is_null());
    }

    #[test]
    fn null_forms() {
        let root = parse("a:\nb: ~\nc: NULL\nd: !!null x\ne: 'null'\n").unwrap();
        for key in ["a", "b", "c", "d"] {
            assert!(root.get(key).unwrap().is_null(), "{key}");
        }
        assert!(!root.get("e").unwrap().is_null());
    }

    #[test]
    fn duplicate_keys_last_wins() {
        let root = parse("a: 1\nb: 2\na: 3\n").unwrap();
        let Value::Mapping(entries) = &root.value else {
            panic!("not a mapping")
        };
        assert_eq!(entries.len(), 2);
        assert_eq!(scalar(root.get("a").unwrap()).text, "3");
        assert_eq!(entries[0].key_line, 3);
    }

    /// Collects what the tracing subscriber writes, for asserting on warnings.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn duplicate_keys_warn_naming_file_and_key() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            parse_document(
                "name: a\nname: b\n",
                Path::new("metadata.yaml"),
                &YamlLimits::default(),
            )
            .map(|_| ())
            .unwrap();
        });
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(log.contains("WARN"), "{log}");
        assert!(log.contains("duplicate YAML key"), "{log}");
        assert!(log.contains("file=metadata.yaml"), "{log}");
        assert!(log.contains("key=name"), "{log}");
        assert!(log.contains("line=2"), "{log}");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_input_never_panics(text in "[-a-z0-9:&*\\[\\]{}, \n'\"!|>#~.]{0,200}") {
            let _ = parse(&text);
        }
    }

    #[test]
    fn aliases_and_merge_keys_resolve() {
        let root = parse("base: &b {x: 1, y: 2}\nuse: *b\nmerged:\n  <<: *b\n  y: 3\n").unwrap();
        assert_eq!(scalar(root.get("use").unwrap().get("x").unwrap()).text, "1");
        let merged = root.get("merged").unwrap();
        assert_eq!(scalar(merged.get("x").unwrap()).text, "1");
        assert_eq!(scalar(merged.get("y").unwrap()).text, "3");
    }

    #[test]
    fn billion_laughs_is_refused_with_location() {
        let mut text = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        let names = ["b", "c", "d", "e", "f", "g", "h", "i"];
        let mut previous = "a";
        for name in names {
            text.push_str(&format!(
                "{name}: &{name} [*{previous},*{previous},*{previous},*{previous},*{previous},*{previous},*{previous},*{previous},*{previous}]\n"
            ));
            previous = name;
        }
        let err = parse(&text).unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("test.yaml:"), "{message}");
        assert!(message.contains("alias bomb"), "{message}");
        assert!(matches!(err, CharmError::Yaml { line, .. } if line > 1));
    }

    #[test]
    fn too_many_aliases_is_refused() {
        let limits = YamlLimits {
            max_aliases: 3,
            ..YamlLimits::default()
        };
        let text = "a: &a 1\nb: [*a, *a, *a, *a]\n";
        let err = parse_document(text, Path::new("x.yaml"), &limits).unwrap_err();
        assert_eq!(err.to_string(), "x.yaml:2:17: more than 3 aliases");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = format!("{}{}", "[".repeat(100), "]".repeat(100));
        let err = parse(&text).map(|_| ()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "test.yaml:1:65: nesting deeper than 64 levels"
        );
        let text = "a:\n".to_owned()
            + &(1..70)
                .map(|i| format!("{}a:\n", "  ".repeat(i)))
                .collect::<String>();
        let err = parse(&text).map(|_| ()).unwrap_err();
        assert!(
            err.to_string().contains("nesting deeper than 64 levels"),
            "{err}"
        );
        // Far deeper input stops in the parser, still located.
        let text = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let err = parse(&text).map(|_| ()).unwrap_err();
        assert!(matches!(err, CharmError::Yaml { line: 1, .. }), "{err}");
    }

    #[test]
    fn oversized_input_is_refused() {
        let limits = YamlLimits {
            max_bytes: 10,
            ..YamlLimits::default()
        };
        let err = parse_document("name: much-too-long\n", Path::new("m.yaml"), &limits)
            .map(|_| ())
            .unwrap_err();
        assert!(matches!(
            err,
            CharmError::YamlTooLarge {
                size: 20,
                limit: 10,
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "m.yaml: file is 20 bytes, over the 10 byte limit"
        );
    }

    #[test]
    fn budget_breach_is_reported() {
        // Within the builder's alias count and expansion limits, but serde-saphyr's
        // alias/anchor ratio heuristic refuses 150 uses of a single anchor.
        let text = format!("a: &a 1\nb: [{}]\n", vec!["*a"; 150].join(","));
        let err = parse(&text).map(|_| ()).unwrap_err();
        assert!(matches!(err, CharmError::YamlBudget { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "test.yaml: refused: 150 aliases for 1 anchors looks like an alias bomb"
        );
    }

    #[test]
    fn syntax_errors_name_file_line_column() {
        let err = parse("name: x\nsummary: [unclosed\n").unwrap_err();
        let CharmError::Yaml { line, column, .. } = &err else {
            panic!("{err:?}")
        };
        assert!(*line >= 2 && *column >= 1, "{err}");
        assert!(err.to_string().starts_with("test.yaml:"));
    }

    #[test]
    fn two_documents_are_refused() {
        let err = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "test.yaml:2:1: more than one YAML document"
        );
    }

    #[test]
    fn complex_keys_are_refused() {
        let err = parse("? [a, b]\n: c\n").unwrap_err();
        assert!(
            err.to_string().contains("mapping keys must be scalars"),
            "{err}"
        );
    }

    #[test]
    fn yaml11_booleans() {
        for t in ["yes", "Yes", "YES", "on", "ON", "y", "Y", "true", "True"] {
            assert_eq!(parse_yaml_bool(t), Some(true), "{t}");
        }
        for f in ["no", "No", "off", "OFF", "n", "N", "false", "FALSE"] {
            assert_eq!(parse_yaml_bool(f), Some(false), "{f}");
        }
        assert_eq!(parse_yaml_bool("maybe"), None);
    }
}
