//! `StreamPipeline::process` never panics, whatever the line.

use proptest::prelude::*;
use sluice_logql::labelset::LabelSet;
use sluice_logql::{parse_expr, Pipeline};

const QUERIES: &[&str] = &[
    r#"{a="b"} | json"#,
    r#"{a="b"} | json x="a.b[0]", y="c[\"d\"]" | x > 1"#,
    r#"{a="b"} | logfmt | level="error" or duration > 5s"#,
    r#"{a="b"} | logfmt --strict --keep-empty | size > 1KB"#,
    r#"{a="b"} | logfmt a="b", c"#,
    r#"{a="b"} | unpack | line_format "{{.app}} {{__line__}}""#,
    r#"{a="b"} | regexp "(?P<w>\\w+)=(?P<v>\\S*)" | label_format n="{{ .v | len }}""#,
    r#"{a="b"} | pattern "<a> <_> [<b>] <c>" | decolorize | keep a, b"#,
    r#"{a="b"} |= "a" or "{" | json | line_format "{{ .a | printf \"%05.2f\" }}{{ if .b }}{{ .b | ToUpper | trunc 3 }}{{ end }}" | drop __error__"#,
    r#"{a="b"} | json | label_format x="{{ (fromJson __line__).a }}", y=app | addr = ip("10.0.0.0/8")"#,
];

fn line_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[{}\\[\\]\":,= a-z0-9\\\\]{0,60}",
        "\\{(\"[a-z_]{1,3}\":(\"[^\"]{0,5}\"|[0-9.e-]{1,4}|true|null|\\{\\}|\\[1\\]),?){0,5}\\}?",
        "([a-z_]{1,4}=(\"[^\"]{0,6}\"?|[a-z0-9.]{0,4}) ?){0,6}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn process_never_panics(line in line_strategy(), ts in any::<i64>()) {
        let stream = LabelSet::from_iter([("app", "svc"), ("level", "info")]);
        for query in QUERIES {
            let expr = parse_expr(query).expect("valid query");
            let pipeline = Pipeline::new(&expr.as_log().expect("log").pipeline).expect("compiles");
            let mut sp = pipeline.for_stream(&stream);
            for _ in 0..2 {
                if let Some(out) = sp.process(ts, &line) {
                    prop_assert!(out.labels.iter().all(|(n, _)| !n.is_empty()));
                }
            }
        }
    }
}
