//! Reading `relation-set --file` input the way Juju does: yaml.v2 `Unmarshal` of the first
//! document into a `map[string]string`, with its type errors (`yaml: unmarshal errors:`).

use std::collections::BTreeMap;

use saphyr_parser::{Event, Parser, ScalarStyle};

use super::yaml_emit::resolve_tag;

/// A parsed YAML node with the line (1-based) it starts on.
#[derive(Debug, Clone)]
enum Node {
    Scalar {
        value: String,
        tag: &'static str,
        line: usize,
    },
    Sequence {
        line: usize,
    },
    Mapping {
        pairs: Vec<(Node, Node)>,
        line: usize,
    },
}

/// Decodes YAML (or JSON) text into string settings. `null` values become empty strings
/// (which `relation-set` treats as deletions); other scalars keep their literal text. The
/// error text is what Juju prints after `ERROR `.
pub fn parse_settings(text: &str) -> Result<BTreeMap<String, String>, String> {
    let Some(root) = load_first_document(text)? else {
        return Ok(BTreeMap::new());
    };
    let mut errors = Vec::new();
    let mut settings = BTreeMap::new();
    match &root {
        Node::Scalar { tag: "!!null", .. } => {}
        Node::Scalar { value, tag, line } => errors.push(format!(
            "line {line}: cannot unmarshal {tag} `{}` into map[string]string",
            short_value(value)
        )),
        Node::Sequence { line } => errors.push(format!(
            "line {line}: cannot unmarshal !!seq into map[string]string"
        )),
        Node::Mapping { pairs, .. } => {
            for (key, value) in pairs {
                let key = match scalar_as_string(key, &mut errors) {
                    Some(k) => k,
                    None => continue,
                };
                if let Some(value) = scalar_as_string(value, &mut errors) {
                    settings.insert(key, value);
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(settings)
    } else {
        Err(format!(
            "yaml: unmarshal errors:\n  {}",
            errors.join("\n  ")
        ))
    }
}

/// yaml.v2 shortens long values in type errors to their first 7 characters.
fn short_value(value: &str) -> String {
    if value.len() > 10 {
        let cut: String = value.chars().take(7).collect();
        format!("{cut}...")
    } else {
        value.to_owned()
    }
}

fn scalar_as_string(node: &Node, errors: &mut Vec<String>) -> Option<String> {
    match node {
        Node::Scalar { tag: "!!null", .. } => Some(String::new()),
        Node::Scalar { value, .. } => Some(value.clone()),
        Node::Sequence { line } => {
            errors.push(format!("line {line}: cannot unmarshal !!seq into string"));
            None
        }
        Node::Mapping { line, .. } => {
            errors.push(format!("line {line}: cannot unmarshal !!map into string"));
            None
        }
    }
}

fn load_first_document(text: &str) -> Result<Option<Node>, String> {
    let mut parser = Parser::new_from_str(text);
    let mut anchors: BTreeMap<usize, Node> = BTreeMap::new();
    // Stack of open collections: (node under construction, anchor id, pending key).
    let mut stack: Vec<(Node, usize, Option<Node>)> = Vec::new();
    let mut in_document = false;
    while let Some(event) = parser.next_event() {
        let (event, span) =
            event.map_err(|e| format!("yaml: line {}: {}", e.marker().line(), e.info()))?;
        let line = span.start.line();
        let complete = match event {
            Event::StreamStart | Event::Nothing => continue,
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                in_document = true;
                continue;
            }
            Event::DocumentEnd => break,
            Event::Alias(id) => match anchors.get(&id) {
                Some(node) => node.clone(),
                None => return Err(format!("yaml: line {line}: unknown anchor referenced")),
            },
            Event::Scalar(value, style, anchor, tag) => {
                let tag = match (&tag, style) {
                    (Some(tag), _) if tag.handle == "!!" || tag.handle == "tag:yaml.org,2002:" => {
                        match tag.suffix.as_str() {
                            "null" => "!!null",
                            "bool" => "!!bool",
                            "int" => "!!int",
                            "float" => "!!float",
                            "binary" => "!!binary",
                            "timestamp" => "!!timestamp",
                            _ => "!!str",
                        }
                    }
                    (Some(_), _) => "!!str",
                    (None, ScalarStyle::Plain) => resolve_tag(&value),
                    (None, _) => "!!str",
                };
                let node = Node::Scalar {
                    value: value.into_owned(),
                    tag,
                    line,
                };
                if anchor > 0 {
                    anchors.insert(anchor, node.clone());
                }
                node
            }
            Event::SequenceStart(anchor, _) => {
                stack.push((Node::Sequence { line }, anchor, None));
                continue;
            }
            Event::MappingStart(anchor, _) => {
                stack.push((
                    Node::Mapping {
                        pairs: Vec::new(),
                        line,
                    },
                    anchor,
                    None,
                ));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some((node, anchor, _)) = stack.pop() else {
                    continue;
                };
                if anchor > 0 {
                    anchors.insert(anchor, node.clone());
                }
                node
            }
        };
        if !in_document {
            continue;
        }
        match stack.last_mut() {
            None => return Ok(Some(complete)),
            Some((Node::Sequence { .. }, _, _)) => {}
            Some((Node::Mapping { pairs, .. }, _, pending)) => match pending.take() {
                None => *pending = Some(complete),
                Some(key) => pairs.push((key, complete)),
            },
            Some((Node::Scalar { .. }, _, _)) => {}
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn yaml_and_json_maps() {
        assert_eq!(
            parse_settings("a: b\nn: 123\nt: true\nz: null\nq: '5'\n").unwrap(),
            settings(&[
                ("a", "b"),
                ("n", "123"),
                ("t", "true"),
                ("z", ""),
                ("q", "5")
            ])
        );
        assert_eq!(
            parse_settings("{\"a\": \"b\", \"c\": 1.50, \"d\": null}").unwrap(),
            settings(&[("a", "b"), ("c", "1.50"), ("d", "")])
        );
        assert_eq!(parse_settings("").unwrap(), settings(&[]));
        assert_eq!(parse_settings("~\n").unwrap(), settings(&[]));
        assert_eq!(
            parse_settings("a: 1\n---\nb: 2\n").unwrap(),
            settings(&[("a", "1")])
        );
        assert_eq!(
            parse_settings("cert: |\n  x\n  y\n").unwrap(),
            settings(&[("cert", "x\ny\n")])
        );
    }

    #[test]
    fn type_errors_match_yaml_v2() {
        assert_eq!(
            parse_settings("haha").unwrap_err(),
            "yaml: unmarshal errors:\n  line 1: cannot unmarshal !!str `haha` into map[string]string"
        );
        assert_eq!(
            parse_settings("a: b\nc:\n  d: e\n").unwrap_err(),
            "yaml: unmarshal errors:\n  line 3: cannot unmarshal !!map into string"
        );
        assert_eq!(
            parse_settings("a: [1, 2]\nb: {x: y}\n").unwrap_err(),
            "yaml: unmarshal errors:\n  line 1: cannot unmarshal !!seq into string\n  line 2: cannot unmarshal !!map into string"
        );
        assert_eq!(
            parse_settings("- a\n").unwrap_err(),
            "yaml: unmarshal errors:\n  line 1: cannot unmarshal !!seq into map[string]string"
        );
        assert_eq!(
            parse_settings("12345678901").unwrap_err(),
            "yaml: unmarshal errors:\n  line 1: cannot unmarshal !!int `1234567...` into map[string]string"
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = parse_settings("a: b\n  c: d: e\n").unwrap_err();
        assert!(err.starts_with("yaml: line "), "{err}");
    }
}
