//! The `pattern` parser's expression language: literals and `<name>` /
//! `<_>` captures, with Loki's validation rules.

/// One element of a pattern expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternNode {
    /// Text that must appear verbatim.
    Literal(String),
    /// `<name>`, or `<_>` (`None`) whose text is discarded.
    Capture(Option<String>),
}

/// Parses and validates a pattern: at least one named capture, no two
/// adjacent captures, unique names.
pub fn parse_pattern(input: &str) -> Result<Vec<PatternNode>, String> {
    let mut nodes: Vec<PatternNode> = Vec::new();
    let mut literal = String::new();
    let mut rest = input;
    while let Some(c) = rest.chars().next() {
        if c == '<' {
            if let Some(name) = capture_name(&rest[1..]) {
                if !literal.is_empty() {
                    nodes.push(PatternNode::Literal(std::mem::take(&mut literal)));
                }
                let capture = (name != "_").then(|| name.to_string());
                nodes.push(PatternNode::Capture(capture));
                rest = &rest[name.len() + 2..];
                continue;
            }
        }
        literal.push(c);
        rest = &rest[c.len_utf8()..];
    }
    if !literal.is_empty() {
        nodes.push(PatternNode::Literal(literal));
    }
    validate(&nodes)?;
    Ok(nodes)
}

/// Returns the identifier of a capture starting right after `<`.
fn capture_name(after_open: &str) -> Option<&str> {
    let end = after_open.find('>')?;
    let name = &after_open[..end];
    let mut chars = name.chars();
    let first = chars.next()?;
    let valid = (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then_some(name)
}

fn validate(nodes: &[PatternNode]) -> Result<(), String> {
    let names: Vec<&str> = nodes
        .iter()
        .filter_map(|node| match node {
            PatternNode::Capture(Some(name)) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    if names.is_empty() {
        return Err("at least one capture is required".to_string());
    }
    for pair in nodes.windows(2) {
        if let [PatternNode::Capture(a), PatternNode::Capture(b)] = pair {
            let show = |c: &Option<String>| format!("<{}>", c.as_deref().unwrap_or("_"));
            return Err(format!(
                "found consecutive capture '{}{}': invalid expression",
                show(a),
                show(b)
            ));
        }
    }
    for (index, name) in names.iter().enumerate() {
        if names[..index].contains(name) {
            return Err(format!(
                "duplicate capture name ({name}): invalid expression"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_captures_and_literals() {
        let nodes = parse_pattern("<ip> - <_> [<ts>] <a<b>").expect("valid");
        assert_eq!(
            nodes,
            vec![
                PatternNode::Capture(Some("ip".into())),
                PatternNode::Literal(" - ".into()),
                PatternNode::Capture(None),
                PatternNode::Literal(" [".into()),
                PatternNode::Capture(Some("ts".into())),
                PatternNode::Literal("] <a".into()),
                PatternNode::Capture(Some("b".into())),
            ]
        );
    }

    #[test]
    fn validation() {
        assert_eq!(
            parse_pattern("foo <_>"),
            Err("at least one capture is required".into())
        );
        assert_eq!(
            parse_pattern("<a><b>"),
            Err("found consecutive capture '<a><b>': invalid expression".into())
        );
        assert_eq!(
            parse_pattern("<a> <a>"),
            Err("duplicate capture name (a): invalid expression".into())
        );
    }
}
