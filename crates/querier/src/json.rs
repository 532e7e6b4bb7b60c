//! Loki's JSON result shapes, written directly into a buffer with Go's
//! `encoding/json` string escaping (`<` as `\u003c` and so on), so bodies
//! are byte-for-byte what Loki sends.

use std::fmt::Write;

/// Appends `text` as a JSON string the way Go's encoding/json writes it.
pub(crate) fn write_string(out: &mut String, text: &str) {
    out.push('"');
    let mut start = 0;
    for (index, character) in text.char_indices() {
        let escape: Option<&str> = match character {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            '<' => Some("\\u003c"),
            '>' => Some("\\u003e"),
            '&' => Some("\\u0026"),
            '\u{2028}' => Some("\\u2028"),
            '\u{2029}' => Some("\\u2029"),
            c if (c as u32) < 0x20 => None,
            _ => continue,
        };
        out.push_str(&text[start..index]);
        match escape {
            Some(escaped) => out.push_str(escaped),
            None => {
                let _ = write!(out, "\\u{:04x}", character as u32);
            }
        }
        start = index + character.len_utf8();
    }
    out.push_str(&text[start..]);
    out.push('"');
}

/// Appends a label map `{"a":"1","b":"2"}` (keys in the given order).
pub(crate) fn write_labels<'a>(out: &mut String, labels: impl Iterator<Item = (&'a str, &'a str)>) {
    out.push('{');
    for (index, (name, value)) in labels.enumerate() {
        if index > 0 {
            out.push(',');
        }
        write_string(out, name);
        out.push(':');
        write_string(out, value);
    }
    out.push('}');
}

/// Appends a JSON array of strings.
pub(crate) fn write_string_array<'a>(out: &mut String, values: impl Iterator<Item = &'a str>) {
    out.push('[');
    for (index, value) in values.enumerate() {
        if index > 0 {
            out.push(',');
        }
        write_string(out, value);
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(text: &str) -> String {
        let mut out = String::new();
        write_string(&mut out, text);
        out
    }

    #[test]
    fn escapes_like_go() {
        assert_eq!(encoded("plain"), "\"plain\"");
        assert_eq!(encoded("<a & b>"), "\"\\u003ca \\u0026 b\\u003e\"");
        assert_eq!(encoded("q\"\\\n\t\r"), "\"q\\\"\\\\\\n\\t\\r\"");
        assert_eq!(encoded("\u{1}\u{1f}"), "\"\\u0001\\u001f\"");
        assert_eq!(encoded("é ✓ \u{2028}"), "\"é ✓ \\u2028\"");
    }

    #[test]
    fn output_is_valid_json() {
        let text = "mixed <tag> \"quote\" \u{7} done";
        let value: serde_json::Value = serde_json::from_str(&encoded(text)).unwrap();
        assert_eq!(value, serde_json::Value::String(text.to_string()));
    }
}
