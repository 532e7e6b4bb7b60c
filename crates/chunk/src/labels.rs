//! Label sets: parsing Loki's push-path label strings, the canonical string form,
//! and the stable fingerprint used in object keys.

mod parser;
mod quote;

use std::fmt;

pub use quote::go_quote;

/// One `name="value"` pair of a stream's label set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Label {
    /// The label name, `[a-zA-Z_][a-zA-Z0-9_]*` once validated.
    pub name: String,
    /// The label value, any UTF-8 text (never empty in a [`Labels`]).
    pub value: String,
}

/// A stream's label set: pairs sorted by name, without empty values.
///
/// Duplicate names are kept (sorted next to each other, in input order) so that
/// validation can report them with [`Labels::first_duplicate_name`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Labels {
    pairs: Vec<Label>,
}

/// A syntax error in a label string, positioned like Prometheus' parser errors.
///
/// Displays as `<line>:<col>: parse error: <message>`, with a 1-based line and a
/// 1-based byte column of the offending character, e.g.
/// `1:3: parse error: unexpected character inside braces: '-'`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: parse error: {message}")]
pub struct LabelsError {
    line: usize,
    column: usize,
    message: String,
}

impl LabelsError {
    /// Builds an error for the byte `offset` of `input`.
    pub(crate) fn at(input: &str, offset: usize, message: String) -> LabelsError {
        let before = input.as_bytes().get(..offset).unwrap_or(input.as_bytes());
        let line = 1 + before.iter().filter(|&&byte| byte == b'\n').count();
        let line_start = before
            .iter()
            .rposition(|&byte| byte == b'\n')
            .map_or(0, |newline| newline + 1);
        LabelsError {
            line,
            column: before.len() - line_start + 1,
            message,
        }
    }

    /// Returns the 1-based line of the offending character.
    pub fn line(&self) -> usize {
        self.line
    }

    /// Returns the 1-based byte column of the offending character.
    pub fn column(&self) -> usize {
        self.column
    }

    /// Returns the message without its position prefix.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl Labels {
    /// Builds a label set from `(name, value)` pairs: sorts by name (stable, so
    /// duplicates keep their input order) and drops pairs with an empty value.
    pub fn from_pairs<I, N, V>(pairs: I) -> Labels
    where
        I: IntoIterator<Item = (N, V)>,
        N: Into<String>,
        V: Into<String>,
    {
        Labels::from_unsorted(
            pairs
                .into_iter()
                .map(|(name, value)| Label {
                    name: name.into(),
                    value: value.into(),
                })
                .collect(),
        )
    }

    fn from_unsorted(mut pairs: Vec<Label>) -> Labels {
        pairs.retain(|label| !label.value.is_empty());
        pairs.sort_by(|left, right| left.name.cmp(&right.name));
        Labels { pairs }
    }

    /// Parses a label string as Loki's push path does (Prometheus metric syntax).
    ///
    /// Accepts `{a="1", b='2', c=`3`}` with optional whitespace, a trailing comma,
    /// and an optional metric name prefix (`foo{…}` adds `__name__="foo"`).
    /// Double- and single-quoted values take Go escapes (`\n \t \\ \" \xNN \uNNNN
    /// \UNNNNNNNN \NNN` …); backtick values are raw. Only `=` is accepted: the push
    /// path needs equality pairs, so `!=`, `=~` and `!~` are errors. The result is
    /// sorted with empty values dropped and duplicates kept; `{}` (or an empty
    /// string) yields an empty set, which the caller must reject itself.
    pub fn parse(input: &str) -> Result<Labels, LabelsError> {
        parser::parse(input).map(Labels::from_unsorted)
    }

    /// Parses a label string like [`Labels::parse`] but keeps pairs with
    /// empty values (log pipelines produce them), sorted by name.
    pub fn parse_pairs(input: &str) -> Result<Vec<Label>, LabelsError> {
        let mut pairs = parser::parse(input)?;
        pairs.sort_by(|left, right| left.name.cmp(&right.name));
        Ok(pairs)
    }

    /// Returns the value of the first label called `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|label| label.name == name)
            .map(|label| label.value.as_str())
    }

    /// Returns an iterator over the pairs, sorted by name.
    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.pairs.iter()
    }

    /// Returns the pairs as owned `(name, value)` tuples, sorted by name.
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        self.pairs
            .iter()
            .map(|label| (label.name.clone(), label.value.clone()))
            .collect()
    }

    /// Returns the number of pairs (duplicates included).
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Returns whether the set has no pairs.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Returns the first label name that occurs more than once, if any.
    pub fn first_duplicate_name(&self) -> Option<&str> {
        self.pairs
            .windows(2)
            .find(|pair| pair[0].name == pair[1].name)
            .map(|pair| pair[0].name.as_str())
    }

    /// Returns the pairs as a vector, sorted by name.
    pub fn into_vec(self) -> Vec<Label> {
        self.pairs
    }

    /// Returns the pairs as a slice, sorted by name.
    pub fn as_slice(&self) -> &[Label] {
        &self.pairs
    }

    /// Returns the stable 64-bit fingerprint of the label set.
    ///
    /// The algorithm is FNV-1a 64 (offset basis `0xcbf29ce484222325`, prime
    /// `0x100000001b3`) over, for each pair in sorted order, the name bytes, one
    /// `0xff` byte, the value bytes and one `0xff` byte. `0xff` never occurs in
    /// UTF-8, so distinct label sets cannot produce the same byte stream. The value
    /// appears in object keys: it must never change.
    pub fn fingerprint(&self) -> u64 {
        const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        const SEPARATOR: u8 = 0xff;
        let mut hash = OFFSET_BASIS;
        let mut feed = |byte: u8| {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        };
        for label in &self.pairs {
            label.name.bytes().for_each(&mut feed);
            feed(SEPARATOR);
            label.value.bytes().for_each(&mut feed);
            feed(SEPARATOR);
        }
        hash
    }
}

impl fmt::Display for Labels {
    /// Writes the canonical form `{a="1", b="2"}` (Go-quoted values).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (index, label) in self.pairs.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            f.write_str(&label.name)?;
            f.write_str("=")?;
            f.write_str(&go_quote(&label.value))?;
        }
        f.write_str("}")
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;

    fn into_iter(self) -> Self::IntoIter {
        self.pairs.iter()
    }
}

impl FromIterator<Label> for Labels {
    /// Collects pairs with the same normalisation as [`Labels::from_pairs`].
    fn from_iter<T: IntoIterator<Item = Label>>(iter: T) -> Labels {
        Labels::from_unsorted(iter.into_iter().collect())
    }
}

/// Returns whether `name` is a valid label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(first) if first.is_ascii_alphabetic() || first == b'_' => {}
        _ => return false,
    }
    bytes.all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn pairs(labels: &Labels) -> Vec<(&str, &str)> {
        labels
            .iter()
            .map(|label| (label.name.as_str(), label.value.as_str()))
            .collect()
    }

    #[test]
    fn parses_valid_forms() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            (r#"{a="1", b="2"}"#, &[("a", "1"), ("b", "2")]),
            (r#"{b="2",a="1"}"#, &[("a", "1"), ("b", "2")]),
            (
                r#"  {  a = "1" ,  b = "2" , }  "#,
                &[("a", "1"), ("b", "2")],
            ),
            ("{\n\ta=\"1\",\r\n}", &[("a", "1")]),
            (r#"{a='1'}"#, &[("a", "1")]),
            ("{a=`x\\ny`}", &[("a", "x\\ny")]),
            ("{a=`multi\nline`}", &[("a", "multi\nline")]),
            (
                r#"{a="\n\t\\\"\x41\u00e9\U0001F600\101\a"}"#,
                &[("a", "\n\t\\\"Aé😀A\u{7}")],
            ),
            (r#"{a='it\'s "ok"'}"#, &[("a", "it's \"ok\"")]),
            (r#"{a="\xc3\xa9"}"#, &[("a", "é")]),
            (r#"{a="héllo 世界"}"#, &[("a", "héllo 世界")]),
            (r#"up{job="x"}"#, &[("__name__", "up"), ("job", "x")]),
            (
                r#"ns:metric_total {job="x"}"#,
                &[("__name__", "ns:metric_total"), ("job", "x")],
            ),
            ("up", &[("__name__", "up")]),
            ("{}", &[]),
            ("", &[]),
            ("  { } ", &[]),
            (r#"{a="", b="2"}"#, &[("b", "2")]),
            (
                r#"{b="2", a="x", a="y"}"#,
                &[("a", "x"), ("a", "y"), ("b", "2")],
            ),
            (
                r#"{_a1="1", by="2", sum="3"}"#,
                &[("_a1", "1"), ("by", "2"), ("sum", "3")],
            ),
        ];
        for (input, expected) in cases {
            let parsed =
                Labels::parse(input).unwrap_or_else(|error| panic!("{input:?} failed: {error}"));
            assert_eq!(pairs(&parsed), *expected, "input {input:?}");
        }
    }

    #[test]
    fn reports_errors_like_prometheus() {
        let cases = [
            (
                r#"{a-b="1"}"#,
                "1:3: parse error: unexpected character inside braces: '-'",
            ),
            (
                r#"{a="1""#,
                "1:7: parse error: unexpected end of input inside braces",
            ),
            (
                "{a=1}",
                "1:4: parse error: unexpected character inside braces: '1'",
            ),
            (
                "{",
                "1:2: parse error: unexpected end of input inside braces",
            ),
            (r#"{a="1}"#, "1:4: parse error: unterminated quoted string"),
            (
                "{a=\"1\n\"}",
                "1:4: parse error: unterminated quoted string",
            ),
            ("{a=`1}", "1:4: parse error: unterminated raw string"),
            (
                r#"{a!="1"}"#,
                r#"1:3: parse error: unexpected "!=" in label set, expected "=""#,
            ),
            (
                r#"{a=~"1"}"#,
                r#"1:3: parse error: unexpected "=~" in label set, expected "=""#,
            ),
            (
                r#"{a!~"1"}"#,
                r#"1:3: parse error: unexpected "!~" in label set, expected "=""#,
            ),
            (
                r#"{a!x"1"}"#,
                "1:3: parse error: unexpected character after '!' inside braces: 'x'",
            ),
            (
                r#"{a="1" b="2"}"#,
                r#"1:8: parse error: unexpected identifier "b" in label set, expected "," or "}""#,
            ),
            (
                r#"{a=b}"#,
                r#"1:4: parse error: unexpected identifier "b" in label set, expected string"#,
            ),
            (
                r#"{a}"#,
                r#"1:3: parse error: unexpected "}" in label set, expected "=""#,
            ),
            (
                r#"{="1"}"#,
                r#"1:2: parse error: unexpected "=" in label set, expected identifier or "}""#,
            ),
            (
                r#"{,}"#,
                r#"1:2: parse error: unexpected "," in label set, expected identifier or "}""#,
            ),
            (
                r#"{a="1",,}"#,
                r#"1:8: parse error: unexpected "," in label set, expected identifier or "}""#,
            ),
            (
                r#"{"a"="1"}"#,
                r#"1:2: parse error: unexpected string "a" in label set, expected identifier or "}""#,
            ),
            (
                r#"{a="1"} x"#,
                r#"1:9: parse error: unexpected identifier "x""#,
            ),
            (r#"{a="1"}{}"#, r#"1:8: parse error: unexpected "{""#),
            (
                r#"up job"#,
                r#"1:4: parse error: unexpected identifier "job""#,
            ),
            (r#"{{"#, "1:2: parse error: unexpected left brace '{'"),
            (r#"}"#, "1:1: parse error: unexpected right brace '}'"),
            (r#"="#, "1:1: parse error: unexpected character: '='"),
            (
                r#"{a:b="1"}"#,
                "1:3: parse error: unexpected character inside braces: ':'",
            ),
            (
                r#"{é="1"}"#,
                "1:2: parse error: unexpected character inside braces: 'é'",
            ),
            (
                r#"{a="1",é="1"}"#,
                "1:8: parse error: unexpected character inside braces: 'é'",
            ),
            (
                "{a=\"1\",\n b-=\"2\"}",
                "2:3: parse error: unexpected character inside braces: '-'",
            ),
            (
                r#"{a="\q"}"#,
                "1:5: parse error: unknown escape sequence U+0071",
            ),
            (
                r#"{a='\"'}"#,
                "1:5: parse error: unknown escape sequence U+0022",
            ),
            (
                r#"{a="\x4"}"#,
                "1:5: parse error: escape sequence not terminated",
            ),
            (
                r#"{a="\xZZ"}"#,
                "1:5: parse error: illegal character U+005A in escape sequence",
            ),
            (
                r#"{a="\400"}"#,
                "1:5: parse error: escape sequence is an invalid Unicode code point",
            ),
            (
                r#"{a="\ud800"}"#,
                "1:5: parse error: escape sequence is an invalid Unicode code point",
            ),
            (
                r#"{a="\U00110000"}"#,
                "1:5: parse error: escape sequence is an invalid Unicode code point",
            ),
            (
                r#"{a="\"#,
                "1:5: parse error: escape sequence not terminated",
            ),
            (
                r#"{a="\xff"}"#,
                "1:4: parse error: invalid UTF-8 in quoted string",
            ),
        ];
        for (input, expected) in cases {
            match Labels::parse(input) {
                Ok(labels) => panic!("{input:?} parsed to {labels}, expected {expected}"),
                Err(error) => assert_eq!(error.to_string(), expected, "input {input:?}"),
            }
        }
    }

    #[test]
    fn error_exposes_position_parts() {
        let error = Labels::parse("{a-b=\"1\"}").expect_err("invalid");
        assert_eq!((error.line(), error.column()), (1, 3));
        assert_eq!(error.message(), "unexpected character inside braces: '-'");
    }

    #[test]
    fn displays_canonical_form() {
        let labels = Labels::from_pairs([("b", "2"), ("a", "x\"y\\z\n")]);
        assert_eq!(labels.to_string(), r#"{a="x\"y\\z\n", b="2"}"#);
        assert_eq!(Labels::default().to_string(), "{}");
        let parsed = Labels::parse(r#"{job="app",env='prod'}"#).expect("valid");
        assert_eq!(parsed.to_string(), r#"{env="prod", job="app"}"#);
    }

    #[test]
    fn display_round_trips_through_parse() {
        let values = [
            "plain",
            "quo\"te",
            "back\\slash",
            "nl\n\ttab",
            "é 世界 🎉",
            "\u{0}\u{7f}\u{a0}\u{feff}",
            "'single'",
            "`tick`",
        ];
        for value in values {
            let labels = Labels::from_pairs([("a", value), ("z", "1")]);
            let reparsed = Labels::parse(&labels.to_string()).expect("canonical form parses");
            assert_eq!(reparsed, labels, "value {value:?}");
        }
    }

    #[test]
    fn from_pairs_sorts_stably_and_drops_empty_values() {
        let labels = Labels::from_pairs([("b", "1"), ("a", "first"), ("c", ""), ("a", "second")]);
        assert_eq!(
            pairs(&labels),
            [("a", "first"), ("a", "second"), ("b", "1")]
        );
        assert_eq!(labels.first_duplicate_name(), Some("a"));
        assert_eq!(labels.get("a"), Some("first"));
        assert_eq!(labels.get("c"), None);
        assert_eq!(labels.len(), 3);
        assert!(!labels.is_empty());
        assert_eq!(labels.as_slice().len(), 3);
        assert_eq!(labels.clone().into_vec().len(), 3);
        assert_eq!(
            Labels::from_pairs([("a", "1"), ("b", "2")]).first_duplicate_name(),
            None
        );
        let collected: Labels = labels.iter().cloned().collect();
        assert_eq!(collected, labels);
    }

    #[test]
    fn fingerprint_is_stable() {
        // Hard-coded values: these land in object keys and must never change.
        assert_eq!(Labels::default().fingerprint(), 0xcbf2_9ce4_8422_2325);
        let labels = Labels::from_pairs([("job", "app"), ("env", "prod")]);
        assert_eq!(labels.fingerprint(), FINGERPRINT_ENV_PROD_JOB_APP);
        assert_eq!(
            Labels::parse(r#"{job="app", env="prod"}"#)
                .expect("valid")
                .fingerprint(),
            FINGERPRINT_ENV_PROD_JOB_APP
        );
        // The separator keeps `a="bc"` and `ab="c"` apart.
        assert_ne!(
            Labels::from_pairs([("a", "bc")]).fingerprint(),
            Labels::from_pairs([("ab", "c")]).fingerprint()
        );
    }

    /// FNV-1a 64 of `env\xffprod\xffjob\xffapp\xff`, computed once independently.
    const FINGERPRINT_ENV_PROD_JOB_APP: u64 = 0x0586_69f0_5a43_dd0d;

    #[test]
    fn validates_label_names() {
        for valid in ["a", "_", "A_1", "__name__", "job"] {
            assert!(is_valid_label_name(valid), "{valid}");
        }
        for invalid in ["", "1a", "a-b", "a:b", "é", "a b"] {
            assert!(!is_valid_label_name(invalid), "{invalid}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(input in "\\PC{0,64}") {
            let _ = Labels::parse(&input);
        }

        #[test]
        fn parse_never_panics_on_label_like_input(input in r#"[{}a-z_=!~,"'`\\ \nxu0-9é]{0,40}"#) {
            let _ = Labels::parse(&input);
        }

        #[test]
        fn display_parse_round_trip(
            pairs in proptest::collection::vec(("[a-zA-Z_][a-zA-Z0-9_]{0,8}", any::<String>()), 0..6)
        ) {
            let labels = Labels::from_pairs(pairs);
            let reparsed = Labels::parse(&labels.to_string());
            prop_assert_eq!(reparsed, Ok(labels));
        }
    }
}
