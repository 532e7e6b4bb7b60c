//! Table-driven tests of log pipeline evaluation: query + stream labels +
//! line → expected line and labels, or dropped.

use sluice_logql::labelset::LabelSet;
use sluice_logql::{parse_expr, Pipeline};

const TS: i64 = 1_700_000_000_123_456_789;

/// Runs `query`'s pipeline on one entry of stream `{app="svc", level="info"}`
/// (or the given stream): `None` when dropped, else `(line, labels)`.
fn run_on(query: &str, stream: &str, line: &str) -> Option<(String, String)> {
    let expr = parse_expr(query).unwrap_or_else(|e| panic!("{query}: {e}"));
    let log = expr.as_log().expect("log query");
    let pipeline = Pipeline::new(&log.pipeline).unwrap_or_else(|e| panic!("{query}: {e}"));
    let stream_expr = parse_expr(stream).expect("stream");
    let stream: LabelSet = stream_expr
        .as_log()
        .expect("selector")
        .matchers
        .iter()
        .map(|m| (m.name.as_str(), m.value.as_str()))
        .collect();
    let mut sp = pipeline.for_stream(&stream);
    let out = sp.process(TS, line)?;
    Some((out.line.to_string(), out.labels.to_string()))
}

const STREAM: &str = r#"{app="svc", level="info"}"#;

fn run(query: &str, line: &str) -> Option<(String, String)> {
    run_on(query, STREAM, line)
}

/// `(query, line, expected labels or None when dropped)`; the line must be unchanged.
fn check_labels(cases: &[(&str, &str, Option<&str>)]) {
    for (query, line, want) in cases {
        let got = run(query, line);
        match want {
            None => assert_eq!(got, None, "{query} on {line}"),
            Some(labels) => {
                let (out_line, out_labels) =
                    got.unwrap_or_else(|| panic!("{query} dropped {line}"));
                assert_eq!(&out_labels, labels, "{query} on {line}");
                assert_eq!(&out_line, line, "{query} on {line}: line changed");
            }
        }
    }
}

/// `(query, line, expected line and labels)`.
type LineCase<'a> = (&'a str, &'a str, Option<(&'a str, &'a str)>);

fn check_lines(cases: &[LineCase<'_>]) {
    for (query, line, want) in cases {
        let got = run(query, line);
        let want = want.map(|(l, s)| (l.to_string(), s.to_string()));
        assert_eq!(got, want, "{query} on {line}");
    }
}

#[test]
fn line_filters() {
    check_labels(&[
        (
            r#"{a="b"} |= "err""#,
            "an error",
            Some(r#"{app="svc", level="info"}"#),
        ),
        (r#"{a="b"} |= "err""#, "all good", None),
        (r#"{a="b"} != "err""#, "an error", None),
        (
            r#"{a="b"} |~ "e.r+or""#,
            "an error",
            Some(r#"{app="svc", level="info"}"#),
        ),
        (r#"{a="b"} !~ "^an""#, "an error", None),
        (
            r#"{a="b"} |= "x" or "err""#,
            "an error",
            Some(r#"{app="svc", level="info"}"#),
        ),
        (r#"{a="b"} != "x" or "err""#, "an error", None),
        (
            r#"{a="b"} |= ip("10.0.0.0/8")"#,
            "from 10.1.2.3 ok",
            Some(r#"{app="svc", level="info"}"#),
        ),
        (r#"{a="b"} |= ip("10.0.0.0/8")"#, "from 11.1.2.3 ok", None),
        (
            r#"{a="b"} != ip("10.0.0.1-10.0.0.5")"#,
            "from 10.0.0.3",
            None,
        ),
        (
            r#"{a="b"} |= "a" |= "b" != "c""#,
            "a b",
            Some(r#"{app="svc", level="info"}"#),
        ),
        (r#"{a="b"} |= "a" |= "b" != "c""#, "a b c", None),
    ]);
}

#[test]
fn json_parser() {
    check_labels(&[
        (
            r#"{a="b"} | json"#,
            r#"{"msg":"hi \"there\"","n":1.50,"ok":true,"bad":false,"nil":null,"arr":[1,2],"obj":{"x":{"y":"z"},"1num":"d"},"a-b":"c","1num":2}"#,
            Some(
                r#"{_1num="2", a_b="c", app="svc", bad="false", level="info", msg="hi \"there\"", n="1.50", obj_1num="d", obj_x_y="z", ok="true"}"#,
            ),
        ),
        // Clash with a stream label: `_extracted`.
        (
            r#"{a="b"} | json"#,
            r#"{"level":"error","app":"other"}"#,
            Some(r#"{app="svc", app_extracted="other", level="info", level_extracted="error"}"#),
        ),
        // Bad JSON keeps the line, sets the error pair.
        (
            r#"{a="b"} | json"#,
            "not json",
            Some(
                r#"{__error__="JSONParserErr", __error_details__="Value looks like object, but can't find closing '}' symbol", app="svc", level="info"}"#,
            ),
        ),
        // Labels before the error stay.
        (
            r#"{a="b"} | json"#,
            r#"{"a":"x","b":"#,
            Some(
                r#"{__error__="JSONParserErr", __error_details__="Malformed JSON error", a="x", app="svc", level="info"}"#,
            ),
        ),
        (
            r#"{a="b"} | json"#,
            r#"{"a":"x" "b":1}"#,
            Some(
                r#"{__error__="JSONParserErr", __error_details__="Value looks like object, but can't find closing '}' symbol", a="x", app="svc", level="info"}"#,
            ),
        ),
        (
            r#"{a="b"} | json"#,
            r#"{"a":tru}"#,
            Some(
                r#"{__error__="JSONParserErr", __error_details__="Unknown value type", app="svc", level="info"}"#,
            ),
        ),
        // Unicode escapes and an invalid escape (value becomes empty).
        (
            r#"{a="b"} | json"#,
            r#"{"u":"caf\u00e9 \ud83d\ude00","bad":"\q"}"#,
            Some(r#"{app="svc", bad="", level="info", u="café 😀"}"#),
        ),
        (
            r#"{a="b"} | json"#,
            "{}",
            Some(r#"{app="svc", level="info"}"#),
        ),
        // Trailing garbage after the object is ignored (jsonparser).
        (
            r#"{a="b"} | json"#,
            r#"{"a":1} trailing"#,
            Some(r#"{a="1", app="svc", level="info"}"#),
        ),
    ]);
}

#[test]
fn json_expressions() {
    check_labels(&[
        (
            r#"{a="b"} | json first="servers[0]", ua="request.headers[\"User-Agent\"]", lvl="level", obj="request", miss="nope.x""#,
            r#"{"servers":["s1","s2"],"request":{"headers":{"User-Agent":"curl"}},"level":"warn"}"#,
            Some(
                r#"{app="svc", first="s1", level="info", lvl="warn", miss="", obj="{\"headers\":{\"User-Agent\":\"curl\"}}", ua="curl"}"#,
            ),
        ),
        // Name clashing with a stream label.
        (
            r#"{a="b"} | json level"#,
            r#"{"level":"warn"}"#,
            Some(r#"{app="svc", level="info", level_extracted="warn"}"#),
        ),
        (
            r#"{a="b"} | json x="a""#,
            "plain text",
            Some(r#"{__error__="JSONParserErr", app="svc", level="info"}"#),
        ),
        (
            r#"{a="b"} | json x="a.b""#,
            r#"{"a":{"b":null}}"#,
            Some(r#"{app="svc", level="info", x=""}"#),
        ),
        (
            r#"{a="b"} | json x="a[1]""#,
            r#"{"a":[1,{"k":2}]}"#,
            Some(r#"{app="svc", level="info", x="{\"k\":2}"}"#),
        ),
    ]);
    let expr = parse_expr(r#"{a="b"} | json x="a..b""#).expect("parses");
    let err = Pipeline::new(&expr.as_log().expect("log").pipeline).expect_err("bad path");
    assert!(
        err.to_string()
            .starts_with("cannot parse expression [a..b]"),
        "{err}"
    );
}

#[test]
fn logfmt_parser() {
    check_labels(&[
        (
            r#"{a="b"} | logfmt"#,
            r#"ts=2024 level=error msg="hello world" dur=5ms 1x=y a-b=c"#,
            Some(
                r#"{_1x="y", a_b="c", app="svc", dur="5ms", level="info", level_extracted="error", msg="hello world", ts="2024"}"#,
            ),
        ),
        // Non-strict (2.9+): bad pairs are skipped, no error; bare keys dropped.
        (
            r#"{a="b"} | logfmt"#,
            r#"a=1 =bad b="x c"d e=2 bare f= g"h i=3"#,
            Some(r#"{a="1", app="svc", b="x c", e="2", i="3", level="info"}"#),
        ),
        // --strict stops at the first error.
        (
            r#"{a="b"} | logfmt --strict"#,
            r#"a=1 =bad e=2"#,
            Some(
                r#"{__error__="LogfmtParserErr", __error_details__="logfmt syntax error at pos 5 : unexpected '='", a="1", app="svc", level="info"}"#,
            ),
        ),
        (
            r#"{a="b"} | logfmt --strict"#,
            r#"a=1 b="unterminated"#,
            Some(
                r#"{__error__="LogfmtParserErr", __error_details__="logfmt syntax error at pos 20 : unterminated quoted value", a="1", app="svc", level="info"}"#,
            ),
        ),
        // --keep-empty keeps bare keys and empty values.
        (
            r#"{a="b"} | logfmt --keep-empty"#,
            r#"a=1 bare c="#,
            Some(r#"{a="1", app="svc", bare="", c="", level="info"}"#),
        ),
        // Escapes in quoted values.
        (
            r#"{a="b"} | logfmt"#,
            r#"m="a\"b\nc""#,
            Some(r#"{app="svc", level="info", m="a\"b\nc"}"#),
        ),
        // Extraction parameters.
        (
            r#"{a="b"} | logfmt lvl="level", msg, nope"#,
            r#"level=warn msg=hi other=1"#,
            Some(r#"{app="svc", level="info", lvl="warn", msg="hi", nope=""}"#),
        ),
    ]);
}

#[test]
fn regexp_and_pattern() {
    check_labels(&[
        (
            r#"{a="b"} | regexp "(?P<method>\\w+) (?P<path>\\S+) (?P<level>\\d+)?""#,
            "GET /x 200",
            Some(r#"{app="svc", level="info", level_extracted="200", method="GET", path="/x"}"#),
        ),
        // No match: unchanged.
        (
            r#"{a="b"} | regexp "(?P<method>POST) (?P<path>\\S+)""#,
            "GET /x 200",
            Some(r#"{app="svc", level="info"}"#),
        ),
        (
            r#"{a="b"} | pattern "<ip> - <_> [<ts>] \"<method> <path> <_>\" <status>""#,
            r#"1.2.3.4 - - [01/Jan/2024] "GET /a HTTP/1.1" 200"#,
            Some(
                r#"{app="svc", ip="1.2.3.4", level="info", method="GET", path="/a", status="200", ts="01/Jan/2024"}"#,
            ),
        ),
        // Leading literal must start the line.
        (
            r#"{a="b"} | pattern "GET <path>""#,
            "POST /x",
            Some(r#"{app="svc", level="info"}"#),
        ),
        // Missing literal: the capture takes the rest.
        (
            r#"{a="b"} | pattern "<a> | <b>""#,
            "no pipe",
            Some(r#"{a="no pipe", app="svc", level="info"}"#),
        ),
        (
            r#"{a="b"} | pattern "<level>: <msg>""#,
            "warn: x",
            Some(r#"{app="svc", level="info", level_extracted="warn", msg="x"}"#),
        ),
    ]);
}

#[test]
fn unpack() {
    check_lines(&[
        (
            r#"{a="b"} | unpack"#,
            r#"{"_entry":"the \"line\"","pod":"p1","n":1,"level":"warn"}"#,
            Some((
                r#"the "line""#,
                r#"{app="svc", level="info", level_extracted="warn", pod="p1"}"#,
            )),
        ),
        // No packed entry: nothing changes.
        (
            r#"{a="b"} | unpack"#,
            r#"{"pod":"p1"}"#,
            Some((r#"{"pod":"p1"}"#, r#"{app="svc", level="info"}"#)),
        ),
        (
            r#"{a="b"} | unpack"#,
            r#"["x"]"#,
            Some((
                r#"["x"]"#,
                r#"{__error__="JSONParserErr", __error_details__="expecting json object(6), but it is not", app="svc", level="info"}"#,
            )),
        ),
        // Line filters after unpack test the unpacked line.
        (
            r#"{a="b"} | unpack |= "pod""#,
            r#"{"_entry":"x","pod":"p"}"#,
            None,
        ),
    ]);
}

#[test]
fn label_filters() {
    check_labels(&[
        (
            r#"{a="b"} | logfmt | x="1""#,
            "x=1",
            Some(r#"{app="svc", level="info", x="1"}"#),
        ),
        (r#"{a="b"} | logfmt | x!="1""#, "x=1", None),
        (
            r#"{a="b"} | logfmt | x=~"1|2""#,
            "x=2",
            Some(r#"{app="svc", level="info", x="2"}"#),
        ),
        (r#"{a="b"} | logfmt | x=~"1""#, "x=12", None),
        (r#"{a="b"} | logfmt | x!~"1.*""#, "x=12", None),
        // Missing label reads as "" for string matchers.
        (
            r#"{a="b"} | logfmt | missing="""#,
            "x=1",
            Some(r#"{app="svc", level="info", x="1"}"#),
        ),
        (
            r#"{a="b"} | logfmt | missing!="a""#,
            "x=1",
            Some(r#"{app="svc", level="info", x="1"}"#),
        ),
        // Numbers.
        (
            r#"{a="b"} | logfmt | x > 10"#,
            "x=12.5",
            Some(r#"{app="svc", level="info", x="12.5"}"#),
        ),
        (r#"{a="b"} | logfmt | x > 10"#, "x=9", None),
        (
            r#"{a="b"} | logfmt | x == 9"#,
            "x=9",
            Some(r#"{app="svc", level="info", x="9"}"#),
        ),
        (r#"{a="b"} | logfmt | x != 9"#, "x=9", None),
        (r#"{a="b"} | logfmt | x <= 9"#, "x=1e1", None),
        (
            r#"{a="b"} | logfmt | x >= 9 and x < 10"#,
            "x=9",
            Some(r#"{app="svc", level="info", x="9"}"#),
        ),
        // Missing label: dropped for numeric filters.
        (r#"{a="b"} | logfmt | y > 1"#, "x=9", None),
        (r#"{a="b"} | logfmt | y != 1"#, "x=9", None),
        // Unconvertible: LabelFilterErr, kept.
        (
            r#"{a="b"} | logfmt | x > 1"#,
            "x=abc",
            Some(
                r#"{__error__="LabelFilterErr", __error_details__="strconv.ParseFloat: parsing \"abc\": invalid syntax", app="svc", level="info", x="abc"}"#,
            ),
        ),
        // Already in error: non-string filters pass.
        (
            r#"{a="b"} | json | x > 1"#,
            "x=abc",
            Some(
                r#"{__error__="JSONParserErr", __error_details__="Value looks like object, but can't find closing '}' symbol", app="svc", level="info"}"#,
            ),
        ),
        (r#"{a="b"} | json | __error__="" | x > 1"#, "oops", None),
        (r#"{a="b"} | json | __error__!="" "#, r#"{"x":1}"#, None),
        (
            r#"{a="b"} | json | __error_details__=~"Value.*""#,
            "oops",
            Some(
                r#"{__error__="JSONParserErr", __error_details__="Value looks like object, but can't find closing '}' symbol", app="svc", level="info"}"#,
            ),
        ),
        // Durations.
        (
            r#"{a="b"} | logfmt | d > 5s"#,
            "d=5.5s",
            Some(r#"{app="svc", d="5.5s", level="info"}"#),
        ),
        (r#"{a="b"} | logfmt | d > 5s"#, "d=500ms", None),
        (
            r#"{a="b"} | logfmt | d >= 1m30s"#,
            "d=1m30s",
            Some(r#"{app="svc", d="1m30s", level="info"}"#),
        ),
        (
            r#"{a="b"} | logfmt | d > 5s"#,
            "d=5",
            Some(
                r#"{__error__="LabelFilterErr", __error_details__="time: missing unit in duration \"5\"", app="svc", d="5", level="info"}"#,
            ),
        ),
        // Bytes.
        (
            r#"{a="b"} | logfmt | s > 1KB"#,
            "s=1.5KiB",
            Some(r#"{app="svc", level="info", s="1.5KiB"}"#),
        ),
        (r#"{a="b"} | logfmt | s <= 1KiB"#, "s=1025B", None),
        (
            r#"{a="b"} | logfmt | s > 1KB"#,
            "s=big",
            Some(
                r#"{__error__="LabelFilterErr", __error_details__="strconv.ParseFloat: parsing \"\": invalid syntax", app="svc", level="info", s="big"}"#,
            ),
        ),
        // ip().
        (
            r#"{a="b"} | logfmt | addr = ip("10.0.0.0/8")"#,
            "addr=10.2.3.4",
            Some(r#"{addr="10.2.3.4", app="svc", level="info"}"#),
        ),
        (
            r#"{a="b"} | logfmt | addr = ip("10.0.0.0/8")"#,
            "addr=11.2.3.4",
            None,
        ),
        (
            r#"{a="b"} | logfmt | addr != ip("10.0.0.0/8")"#,
            "addr=11.2.3.4",
            Some(r#"{addr="11.2.3.4", app="svc", level="info"}"#),
        ),
        (
            r#"{a="b"} | logfmt | addr != ip("10.0.0.0/8")"#,
            "other=1",
            None,
        ),
        // and / or / comma / parentheses.
        (
            r#"{a="b"} | logfmt | x="1" or x="2""#,
            "x=2",
            Some(r#"{app="svc", level="info", x="2"}"#),
        ),
        (
            r#"{a="b"} | logfmt | x="1", y="2""#,
            "x=1 y=2",
            Some(r#"{app="svc", level="info", x="1", y="2"}"#),
        ),
        (r#"{a="b"} | logfmt | x="1", y="2""#, "x=1 y=3", None),
        (
            r#"{a="b"} | logfmt | (x="1" or x="2") and y > 1"#,
            "x=2 y=3",
            Some(r#"{app="svc", level="info", x="2", y="3"}"#),
        ),
        // Or: the right side's conversion error keeps the line.
        (
            r#"{a="b"} | logfmt | x="9" or y > 1"#,
            "x=1 y=z",
            Some(
                r#"{__error__="LabelFilterErr", __error_details__="strconv.ParseFloat: parsing \"z\": invalid syntax", app="svc", level="info", x="1", y="z"}"#,
            ),
        ),
        // Stream labels are filterable.
        (
            r#"{a="b"} | level="info""#,
            "x",
            Some(r#"{app="svc", level="info"}"#),
        ),
    ]);
}

#[test]
fn line_format() {
    check_lines(&[
        (
            r#"{a="b"} | logfmt | line_format "{{.level_extracted}}: {{.msg | ToUpper}}""#,
            "level=warn msg=hi",
            Some((
                "warn: HI",
                r#"{app="svc", level="info", level_extracted="warn", msg="hi"}"#,
            )),
        ),
        (
            r#"{a="b"} | line_format "{{ __line__ }} @ {{ __timestamp__ | unixEpochMillis }}""#,
            "x",
            Some(("x @ 1700000000123", r#"{app="svc", level="info"}"#)),
        ),
        (
            r#"{a="b"} | line_format "{{ if eq .level \"info\" }}I{{ else }}O{{ end }}{{ .missing }}""#,
            "x",
            Some(("I", r#"{app="svc", level="info"}"#)),
        ),
        // Template error: line kept, TemplateFormatErr.
        (
            r#"{a="b"} | line_format "{{ div 1 0 }}""#,
            "x",
            Some((
                "x",
                r#"{__error__="TemplateFormatErr", __error_details__="template: line:1:3: executing \"line\" at <div>: error calling div: runtime error: integer divide by zero", app="svc", level="info"}"#,
            )),
        ),
        // Line filters after line_format test the new line.
        (
            r#"{a="b"} | line_format "{{.app}}" |= "svc""#,
            "x",
            Some(("svc", r#"{app="svc", level="info"}"#)),
        ),
        (r#"{a="b"} | line_format "{{.app}}" |= "x""#, "x", None),
        // Templates see __error__.
        (
            r#"{a="b"} | json | line_format "{{.__error__}}""#,
            "oops",
            Some((
                "JSONParserErr",
                r#"{__error__="JSONParserErr", __error_details__="Value looks like object, but can't find closing '}' symbol", app="svc", level="info"}"#,
            )),
        ),
        // Two line_formats chain.
        (
            r#"{a="b"} | line_format "a{{__line__}}" | line_format "b{{__line__}}""#,
            "x",
            Some(("bax", r#"{app="svc", level="info"}"#)),
        ),
    ]);
    let expr = parse_expr(r#"{a="b"} | line_format "{{ nope }}""#).expect("parses");
    let err = Pipeline::new(&expr.as_log().expect("log").pipeline).expect_err("undefined function");
    assert_eq!(
        err.to_string(),
        "template: line:1: function \"nope\" not defined"
    );
}

#[test]
fn label_format() {
    check_labels(&[
        // Rename removes the source.
        (
            r#"{a="b"} | label_format service=app"#,
            "x",
            Some(r#"{level="info", service="svc"}"#),
        ),
        // Rename of a missing label does nothing.
        (
            r#"{a="b"} | label_format service=nope"#,
            "x",
            Some(r#"{app="svc", level="info"}"#),
        ),
        // Template overrides a stream label (no _extracted).
        (
            r#"{a="b"} | label_format level="{{ .level | ToUpper }}", both="{{.app}}-{{.level}}""#,
            "x",
            Some(r#"{app="svc", both="svc-info", level="INFO"}"#),
        ),
        // Templates read the labels as of the first template of the stage.
        (
            r#"{a="b"} | label_format x="1", y="{{.x}}""#,
            "x",
            Some(r#"{app="svc", level="info", x="1", y=""}"#),
        ),
        // ...but a later stage sees them.
        (
            r#"{a="b"} | label_format x="1" | label_format y="{{.x}}""#,
            "x",
            Some(r#"{app="svc", level="info", x="1", y="1"}"#),
        ),
    ]);
    check_labels(&[(
        r#"{a="b"} | label_format x="{{ div 1 0 }}""#,
        "x",
        Some(
            r#"{__error__="TemplateFormatErr", __error_details__="template: label:1:3: executing \"label\" at <div>: error calling div: runtime error: integer divide by zero", app="svc", level="info"}"#,
        ),
    )]);
}

#[test]
fn drop_keep_decolorize() {
    check_labels(&[
        (
            r#"{a="b"} | logfmt | drop x, app"#,
            "x=1 y=2",
            Some(r#"{level="info", y="2"}"#),
        ),
        (
            r#"{a="b"} | logfmt | drop x="1", y="3""#,
            "x=1 y=2",
            Some(r#"{app="svc", level="info", y="2"}"#),
        ),
        (
            r#"{a="b"} | logfmt | drop x=~"\\d+""#,
            "x=1 y=2",
            Some(r#"{app="svc", level="info", y="2"}"#),
        ),
        (
            r#"{a="b"} | json | drop __error__, __error_details__"#,
            "oops",
            Some(r#"{app="svc", level="info"}"#),
        ),
        (
            r#"{a="b"} | json | drop __error__"#,
            "oops",
            Some(
                r#"{__error_details__="Value looks like object, but can't find closing '}' symbol", app="svc", level="info"}"#,
            ),
        ),
        (
            r#"{a="b"} | logfmt | keep x, level"#,
            "x=1 y=2",
            Some(r#"{level="info", x="1"}"#),
        ),
        (
            r#"{a="b"} | logfmt | keep x="2", y"#,
            "x=1 y=2",
            Some(r#"{y="2"}"#),
        ),
        // keep never drops the error pair.
        (
            r#"{a="b"} | json | keep app"#,
            "oops",
            Some(
                r#"{__error__="JSONParserErr", __error_details__="Value looks like object, but can't find closing '}' symbol", app="svc"}"#,
            ),
        ),
    ]);
    check_lines(&[
        (
            r#"{a="b"} | decolorize"#,
            "\u{1b}[31mred\u{1b}[0m and \u{1b}[1;32mgreen\u{1b}[0m",
            Some(("red and green", r#"{app="svc", level="info"}"#)),
        ),
        (
            r#"{a="b"} | decolorize"#,
            "plain",
            Some(("plain", r#"{app="svc", level="info"}"#)),
        ),
    ]);
}

#[test]
fn combined_pipelines() {
    check_lines(&[
        (
            r#"{a="b"} |= "error" | json | level_extracted="error" and status >= 500 | line_format "{{.status}} {{.msg}}" | label_format msg="" | drop __error__"#,
            r#"{"level":"error","status":503,"msg":"upstream down"}"#,
            Some((
                "503 upstream down",
                r#"{app="svc", level="info", level_extracted="error", msg="", status="503"}"#,
            )),
        ),
        (
            r#"{a="b"} | logfmt | duration > 5s | line_format "{{.path}} took {{.duration}}""#,
            "path=/a duration=7.2s",
            Some((
                "/a took 7.2s",
                r#"{app="svc", duration="7.2s", level="info", path="/a"}"#,
            )),
        ),
        (
            r#"{a="b"} | json | line_format "{{.inner}}" | logfmt | k="v""#,
            r#"{"inner":"k=v z=1"}"#,
            Some((
                "k=v z=1",
                r#"{app="svc", inner="k=v z=1", k="v", level="info", z="1"}"#,
            )),
        ),
    ]);
}

#[test]
fn required_labels_hints() {
    let stream = LabelSet::from_iter([("app", "svc")]);
    let expr = parse_expr(r#"{a="b"} | json | level="error""#).expect("parses");
    let stages = &expr.as_log().expect("log").pipeline;
    let line = r#"{"level":"error","msg":"m","trace":"t"}"#;
    // Log query: everything.
    let full = Pipeline::new(stages).expect("valid");
    let mut sp = full.for_stream(&stream);
    let out = sp.process(0, line).expect("kept");
    assert_eq!(
        out.labels.to_string(),
        r#"{app="svc", level="error", msg="m", trace="t"}"#
    );
    // Metric query grouping by nothing: only the filter's label.
    let lean = Pipeline::new_with_required(stages, Some(&[])).expect("valid");
    let mut sp = lean.for_stream(&stream);
    let out = sp.process(0, line).expect("kept");
    assert_eq!(out.labels.to_string(), r#"{app="svc", level="error"}"#);
    // Grouping label requested.
    let some = Pipeline::new_with_required(stages, Some(&["trace"])).expect("valid");
    let mut sp = some.for_stream(&stream);
    let out = sp.process(0, line).expect("kept");
    assert_eq!(
        out.labels.to_string(),
        r#"{app="svc", level="error", trace="t"}"#
    );
    // A template reading labels forces full extraction of what it reads.
    let expr = parse_expr(r#"{a="b"} | json | line_format "{{.msg}}""#).expect("parses");
    let tpl = Pipeline::new_with_required(&expr.as_log().expect("log").pipeline, Some(&[]))
        .expect("valid");
    let mut sp = tpl.for_stream(&stream);
    let out = sp.process(0, line).expect("kept");
    assert_eq!(out.line, "m");
    // No labels needed: the parser is skipped (no error either, like Loki).
    let expr = parse_expr(r#"{a="b"} | json"#).expect("parses");
    let none = Pipeline::new_with_required(&expr.as_log().expect("log").pipeline, Some(&[]))
        .expect("valid");
    let mut sp = none.for_stream(&stream);
    let out = sp.process(0, "not json").expect("kept");
    assert_eq!(out.labels.to_string(), r#"{app="svc"}"#);
    // ...unless __error__ is read downstream.
    let expr = parse_expr(r#"{a="b"} | json | __error__="""#).expect("parses");
    let errs = Pipeline::new_with_required(&expr.as_log().expect("log").pipeline, Some(&[]))
        .expect("valid");
    let mut sp = errs.for_stream(&stream);
    assert!(sp.process(0, "not json").is_none());
}

#[test]
fn label_sets_are_cached_and_reset() {
    let stream = LabelSet::from_iter([("app", "svc")]);
    let expr = parse_expr(r#"{a="b"} | logfmt"#).expect("parses");
    let pipeline = Pipeline::new(&expr.as_log().expect("log").pipeline).expect("valid");
    assert!(!pipeline.is_noop());
    let mut sp = pipeline.for_stream(&stream);
    let first = sp.process(0, "a=1").expect("kept").labels.clone();
    let second = sp.process(1, "b=2").expect("kept").labels.clone();
    let third = sp.process(2, "a=1").expect("kept").labels.clone();
    assert_eq!(first, third);
    assert_ne!(first, second);
    assert_eq!(
        first.hash64(),
        LabelSet::from_iter([("a", "1"), ("app", "svc")]).hash64()
    );
    let plain = sp.process(3, "no pairs here").expect("kept").labels.clone();
    assert_eq!(plain, stream);
    let noop = Pipeline::new(&[]).expect("valid");
    assert!(noop.is_noop());
}

/// A stream pipeline reused over many entries (name order reused between
/// lines, label-set cache bypassed while it misses and re-enabled) gives
/// the same labels as a fresh pipeline per entry.
#[test]
fn reused_stream_pipeline_matches_fresh() {
    let stream = LabelSet::from_iter([("app", "svc"), ("level", "info")]);
    let line = |i: usize| -> String {
        let id = if (i / 700) % 2 == 0 { i } else { i % 5 };
        match i % 7 {
            0 => format!(r#"{{"b":"{id}","a":"x","level":"warn"}}"#),
            1 => format!(r#"{{"a":"x","b":"{id}"}}"#),
            2 => format!(r#"{{"a":"x","b":"{id}","c":{{"d":1}}}}"#),
            3 => format!(r#"{{"b":"{id}","a":"\ufffd","z":true}}"#),
            4 => format!(r#"{{"b":"{id}","a":"é�x","z":"ü"}}"#),
            5 => format!(r#"{{"b":"{id}","a":"x""#),
            6 if i % 2 == 0 => format!("b={id} a=x level=warn q=�"),
            _ => format!("b={id} a=x level=warn"),
        }
    };
    for query in [
        r#"{app="svc"} | json"#,
        r#"{app="svc"} | json | b!="3""#,
        r#"{app="svc"} | logfmt"#,
        r#"{app="svc"} | json | drop a"#,
    ] {
        let expr = parse_expr(query).expect("valid");
        let pipeline = Pipeline::new(&expr.as_log().expect("log").pipeline).expect("compiles");
        let mut reused = pipeline.for_stream(&stream);
        for i in 0..3000 {
            let line = line(i);
            let got = reused
                .process(TS, &line)
                .map(|out| (out.line.to_string(), out.labels.clone()));
            let mut fresh = pipeline.for_stream(&stream);
            let want = fresh
                .process(TS, &line)
                .map(|out| (out.line.to_string(), out.labels.clone()));
            assert_eq!(got, want, "{query} on {line}");
            if let Some((_, labels)) = &got {
                let names: Vec<&str> = labels.iter().map(|(n, _)| n).collect();
                assert!(names.windows(2).all(|w| w[0] <= w[1]), "{labels}");
                if labels.iter().all(|(_, v)| !v.is_empty()) {
                    let rebuilt: LabelSet = labels.iter().collect();
                    assert_eq!(labels.hash64(), rebuilt.hash64());
                }
            }
        }
    }
}
