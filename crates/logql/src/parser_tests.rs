//! Golden tables for the parser: valid queries with their canonical print,
//! invalid queries with Loki's exact error text.

use crate::ast::*;
use crate::filter::{LineFilter, LineFilterOp};
use crate::matcher::{MatchOp, Matcher};
use crate::{format_query, parse_expr, parse_selector, MAX_DEPTH};

fn m(name: &str, op: MatchOp, value: &str) -> Matcher {
    Matcher::new(name, op, value).expect("valid matcher")
}

fn parse_ok(query: &str) -> Expr {
    match parse_expr(query) {
        Ok(expr) => expr,
        Err(err) => panic!("{query:?} should parse: {err}"),
    }
}

/// (query, canonical print). Every canonical print must parse to the same AST.
const VALID: &[(&str, &str)] = &[
    // selectors and line filters
    (r#"{app="foo"}"#, r#"{app="foo"}"#),
    (
        r#"{ app = "foo" , env =~ "prod.*" }"#,
        r#"{app="foo", env=~"prod.*"}"#,
    ),
    (r#"{app!="foo", x="y"}"#, r#"{app!="foo", x="y"}"#),
    (r#"{a!~"b", c=~".+"}"#, r#"{a!~"b", c=~".+"}"#),
    (
        r#"{app="foo"} |= "x" != "y""#,
        r#"{app="foo"} |= "x" != "y""#,
    ),
    (
        r#"{app="foo"} |~ `\d+` !~ "a\"b""#,
        r#"{app="foo"} |~ "\\d+" !~ "a\"b""#,
    ),
    (
        "{app=\"foo\"}\n  |= \"x\" # comment\n",
        r#"{app="foo"} |= "x""#,
    ),
    (
        r#"{app="foo"} |= "a" or "b" != "c""#,
        r#"{app="foo"} |= "a" or "b" != "c""#,
    ),
    (
        r#"{app="foo"} |= ip("10.0.0.0/8") != ip("1.1.1.1") or "x""#,
        r#"{app="foo"} |= ip("10.0.0.0/8") != ip("1.1.1.1") or "x""#,
    ),
    (r#"{app="foo"} |= """#, r#"{app="foo"} |= """#),
    (r#"{app="é\u00e9\x41"}"#, r#"{app="ééA"}"#),
    (r#"({app="foo"})"#, r#"{app="foo"}"#),
    // parsers and formatting
    (r#"{a="b"} | json"#, r#"{a="b"} | json"#),
    (
        r#"{a="b"} | json x="a.b", y"#,
        r#"{a="b"} | json x="a.b", y="y""#,
    ),
    (r#"{a="b"} | logfmt"#, r#"{a="b"} | logfmt"#),
    (
        r#"{a="b"} | logfmt --strict --keep-empty x="k", y"#,
        r#"{a="b"} | logfmt --strict --keep-empty x="k", y="y""#,
    ),
    (
        r#"{a="b"} | regexp "(?P<x>\\w+)""#,
        r#"{a="b"} | regexp "(?P<x>\\w+)""#,
    ),
    (
        r#"{a="b"} | pattern "<ip> - <_>""#,
        r#"{a="b"} | pattern "<ip> - <_>""#,
    ),
    (
        r#"{a="b"} | unpack | decolorize"#,
        r#"{a="b"} | unpack | decolorize"#,
    ),
    (
        r#"{a="b"} | line_format "{{.x}}""#,
        r#"{a="b"} | line_format "{{.x}}""#,
    ),
    (
        r#"{a="b"} | label_format x=y, z="{{.w}}""#,
        r#"{a="b"} | label_format x=y, z="{{.w}}""#,
    ),
    (
        r#"{a="b"} | drop x, y="z", w=~"v""#,
        r#"{a="b"} | drop x, y="z", w=~"v""#,
    ),
    (r#"{a="b"} | keep x,y!="z""#, r#"{a="b"} | keep x, y!="z""#),
    // label filters
    (r#"{a="b"} | x="y""#, r#"{a="b"} | x="y""#),
    (
        r#"{a="b"} | x > 1 and y <= -2.5"#,
        r#"{a="b"} | x>1 and y<=-2.5"#,
    ),
    (r#"{a="b"} | x == 1, y != 2"#, r#"{a="b"} | x==1 and y!=2"#),
    (r#"{a="b"} | x = 1"#, r#"{a="b"} | x==1"#),
    (r#"{a="b"} | latency > 250ms"#, r#"{a="b"} | latency>250ms"#),
    (
        r#"{a="b"} | latency >= 1.5s"#,
        r#"{a="b"} | latency>=1s500ms"#,
    ),
    (
        r#"{a="b"} | size < 1KB or size > 1KiB"#,
        r#"{a="b"} | size<1KB or size>1KiB"#,
    ),
    (
        r#"{a="b"} | addr = ip("10.0.0.0/8")"#,
        r#"{a="b"} | addr=ip("10.0.0.0/8")"#,
    ),
    (
        r#"{a="b"} | addr != ip("::1")"#,
        r#"{a="b"} | addr!=ip("::1")"#,
    ),
    (
        r#"{a="b"} | a="1" or b="2" and c="3""#,
        r#"{a="b"} | a="1" or b="2" and c="3""#,
    ),
    (
        r#"{a="b"} | (a="1" or b="2") and c="3""#,
        r#"{a="b"} | (a="1" or b="2") and c="3""#,
    ),
    // `,` and juxtaposition group to the right (yacc shifts).
    (
        r#"{a="b"} | a="1" or b="2", c="3""#,
        r#"{a="b"} | a="1" or b="2" and c="3""#,
    ),
    (
        r#"{a="b"} | a="1", b="2" or c="3""#,
        r#"{a="b"} | a="1" and (b="2" or c="3")"#,
    ),
    (
        r#"{a="b"} | a="1" b="2" or c="3""#,
        r#"{a="b"} | a="1" and (b="2" or c="3")"#,
    ),
    (
        r#"{a="b"} | a="1" and b="2" or c="3""#,
        r#"{a="b"} | a="1" and b="2" or c="3""#,
    ),
    (r#"{a="b"} | __error__="""#, r#"{a="b"} | __error__="""#),
    // range aggregations
    (
        r#"count_over_time({a="b"}[5m])"#,
        r#"count_over_time({a="b"}[5m])"#,
    ),
    (
        r#"rate({a="b"} |= "x" [1h30m])"#,
        r#"rate({a="b"} |= "x" [1h30m])"#,
    ),
    (
        r#"rate({a="b"}[5m] |= "x")"#,
        r#"rate({a="b"} |= "x" [5m])"#,
    ),
    (
        r#"count_over_time({a="b"}[5m] offset 1h)"#,
        r#"count_over_time({a="b"}[5m] offset 1h)"#,
    ),
    (
        r#"count_over_time({a="b"}[5m] offset -5m |= "x")"#,
        r#"count_over_time({a="b"} |= "x" [5m] offset -5m)"#,
    ),
    (
        r#"bytes_rate(({a="b"} |= "x")[1d])"#,
        r#"bytes_rate({a="b"} |= "x" [1d])"#,
    ),
    (
        r#"bytes_over_time(({a="b"}[1w]))"#,
        r#"bytes_over_time({a="b"}[1w])"#,
    ),
    (
        r#"sum_over_time({a="b"} | json | unwrap x [5m])"#,
        r#"sum_over_time({a="b"} | json | unwrap x [5m])"#,
    ),
    (
        r#"avg_over_time({a="b"} | unwrap duration(x) | __error__="" [5m]) by (a)"#,
        r#"avg_over_time({a="b"} | unwrap duration(x) | __error__="" [5m]) by (a)"#,
    ),
    (
        r#"max_over_time({a="b"}[5m] offset 1m | unwrap bytes(x)) without (b, c)"#,
        r#"max_over_time({a="b"} | unwrap bytes(x) [5m] offset 1m) without (b, c)"#,
    ),
    (
        r#"quantile_over_time(0.99, ({a="b"} | unwrap duration_seconds(x))[5m]) by ()"#,
        r#"quantile_over_time(0.99, {a="b"} | unwrap duration_seconds(x) [5m]) by ()"#,
    ),
    (
        r#"rate({a="b"} | unwrap x [5m])"#,
        r#"rate({a="b"} | unwrap x [5m])"#,
    ),
    (
        r#"absent_over_time({a="b"}[5m])"#,
        r#"absent_over_time({a="b"}[5m])"#,
    ),
    (
        r#"count_over_time({a="b"}[0s])"#,
        r#"count_over_time({a="b"}[0s])"#,
    ),
    // vector aggregations
    (
        r#"sum by (a) (count_over_time({a="b"}[5m]))"#,
        r#"sum by (a) (count_over_time({a="b"}[5m]))"#,
    ),
    (
        r#"sum(count_over_time({a="b"}[5m])) without (a,b)"#,
        r#"sum without (a, b) (count_over_time({a="b"}[5m]))"#,
    ),
    (
        r#"topk(5, rate({a="b"}[5m]))"#,
        r#"topk(5, rate({a="b"}[5m]))"#,
    ),
    (
        r#"bottomk by (x) (2, rate({a="b"}[5m]))"#,
        r#"bottomk by (x) (2, rate({a="b"}[5m]))"#,
    ),
    (
        r#"sort_desc(sum(rate({a="b"}[5m])))"#,
        r#"sort_desc(sum(rate({a="b"}[5m])))"#,
    ),
    (r#"sum((vector(1)))"#, r#"sum(vector(1))"#),
    (r#"sum(1)"#, r#"sum(1)"#),
    (r#"count by() (vector(1))"#, r#"count by () (vector(1))"#),
    // binary operations, literals, vector, label_replace
    ("vector(1)+vector(1)", "vector(1) + vector(1)"),
    ("1 + 1", "2"),
    ("-1 ^ 2", "1"),
    ("2 ^ 3 ^ 2", "512"),
    ("1 > 2", "0"),
    ("vector(1) - 1", "vector(1) - 1"),
    ("vector(1) -1", "vector(1) - 1"),
    ("vector(1) - -1", "vector(1) - -1"),
    ("vector(1) * -0.5e3", "vector(1) * -500"),
    (
        "vector(1) + vector(2) * vector(3)",
        "vector(1) + vector(2) * vector(3)",
    ),
    (
        "(vector(1) + vector(2)) * vector(3)",
        "(vector(1) + vector(2)) * vector(3)",
    ),
    (
        "vector(1) - (vector(2) - vector(3))",
        "vector(1) - (vector(2) - vector(3))",
    ),
    (
        "vector(1) - vector(2) - vector(3)",
        "vector(1) - vector(2) - vector(3)",
    ),
    (
        "vector(2) ^ vector(3) ^ vector(2)",
        "vector(2) ^ vector(3) ^ vector(2)",
    ),
    (
        "(vector(2) ^ vector(3)) ^ vector(2)",
        "(vector(2) ^ vector(3)) ^ vector(2)",
    ),
    (
        "vector(1) or vector(2) and vector(3) unless vector(4)",
        "vector(1) or vector(2) and vector(3) unless vector(4)",
    ),
    ("vector(1) > bool 2", "vector(1) > bool 2"),
    (
        "vector(1) / on(a, b) group_left(c) vector(2)",
        "vector(1) / on(a, b) group_left(c) vector(2)",
    ),
    (
        "vector(1) * ignoring() group_right vector(2)",
        "vector(1) * ignoring() group_right() vector(2)",
    ),
    ("vector(1) == on() vector(2)", "vector(1) == on() vector(2)"),
    (
        r#"label_replace(rate({a="b"}[5m]), "dst", "$1", "src", "(.*)")"#,
        r#"label_replace(rate({a="b"}[5m]), "dst", "$1", "src", "(.*)")"#,
    ),
    ("vector(0.5)", "vector(0.5)"),
    ("+5", "5"),
    (
        r#"sum by (level) (count_over_time({job="x"} | drop __error__[1m]))"#,
        r#"sum by (level) (count_over_time({job="x"} | drop __error__ [1m]))"#,
    ),
    // function names are identifiers unless followed by `(`
    (
        r#"{sum="x", rate="y", bytes="z"} | vector="w""#,
        r#"{sum="x", rate="y", bytes="z"} | vector="w""#,
    ),
];

#[test]
fn valid_queries_print_canonically_and_round_trip() {
    for (query, canonical) in VALID {
        let expr = parse_ok(query);
        let printed = expr.to_string();
        if !canonical.is_empty() {
            assert_eq!(&printed, canonical, "printing {query:?}");
        }
        let reparsed = parse_ok(&printed);
        assert_eq!(reparsed, expr, "round trip of {query:?} via {printed:?}");
        assert_eq!(format_query(query).as_deref(), Ok(printed.as_str()));
    }
}

/// (query, exact error text).
const INVALID: &[(&str, &str)] = &[
    ("", "parse error : syntax error: unexpected $end"),
    (
        r#"{app="foo""#,
        "parse error at line 1, col 11: syntax error: unexpected $end, expecting } or ,",
    ),
    (
        "{app=foo}",
        "parse error at line 1, col 6: syntax error: unexpected IDENTIFIER, expecting STRING",
    ),
    (
        "{",
        "parse error at line 1, col 2: syntax error: unexpected $end, expecting IDENTIFIER or }",
    ),
    (
        r#"{app="foo",}"#,
        "parse error at line 1, col 12: syntax error: unexpected }, expecting IDENTIFIER",
    ),
    (
        r#"{app}"#,
        "parse error at line 1, col 5: syntax error: unexpected }, expecting = or =~ or !~ or !=",
    ),
    (
        "{app=\"foo\"\n,x=\"y\" x}",
        "parse error at line 2, col 8: syntax error: unexpected IDENTIFIER, expecting } or ,",
    ),
    (r#"{app="foo"} x"#, "parse error at line 1, col 13: syntax error: unexpected IDENTIFIER"),
    ("}", "parse error at line 1, col 1: syntax error: unexpected }"),
    ("   ", "parse error at line 1, col 4: syntax error: unexpected $end"),
    (r#"{app="foo"} |="#, "parse error at line 1, col 15: syntax error: unexpected $end, expecting STRING or ip"),
    (r#"{app="foo"} |"#, "parse error at line 1, col 14: syntax error: unexpected $end"),
    (r#"{app="foo"} != 1"#, "parse error at line 1, col 16: syntax error: unexpected NUMBER, expecting STRING or ip"),
    (r#"{app="fo"#, "parse error at line 1, col 6: literal not terminated"),
    (r#"{app="\q"}"#, "parse error at line 1, col 6: invalid char escape"),
    (
        r#"{app=~".*"}"#,
        r#"parse error : queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~".*" does not meet this requirement, but app=~".+" will"#,
    ),
    (
        "{}",
        r#"parse error : queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~".*" does not meet this requirement, but app=~".+" will"#,
    ),
    (
        r#"{app!="x", b=~""}"#,
        r#"parse error : queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~".*" does not meet this requirement, but app=~".+" will"#,
    ),
    (
        r#"sum(count_over_time({app=~".*"}[5m]))"#,
        r#"parse error : queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~".*" does not meet this requirement, but app=~".+" will"#,
    ),
    (r#"{app=~"(foo"}"#, "parse error : error parsing regexp: missing closing ): `(foo`"),
    (r#"{a="b"} |~ "(""#, "parse error : error parsing regexp: missing closing ): `(`"),
    // metric errors
    (
        r#"count_over_time({a="b"}[5m]) by (x)"#,
        "parse error : grouping not allowed for count_over_time aggregation",
    ),
    (
        r#"count_over_time({a="b"} | unwrap x [5m])"#,
        "parse error : invalid aggregation count_over_time with unwrap",
    ),
    (
        r#"sum_over_time({a="b"}[5m])"#,
        "parse error : invalid aggregation sum_over_time without unwrap",
    ),
    (
        r#"quantile_over_time({a="b"} | unwrap x [5m])"#,
        "parse error : parameter required for operation quantile_over_time",
    ),
    (
        r#"rate(1, {a="b"}[5m])"#,
        "parse error : parameter 1 not supported for operation rate",
    ),
    (r#"topk(rate({a="b"}[5m]))"#, "parse error : parameter required for operation topk"),
    (r#"topk(1.5, rate({a="b"}[5m]))"#, "parse error : invalid parameter topk(1.5,"),
    (
        r#"topk(0, rate({a="b"}[5m]))"#,
        "parse error : invalid parameter (must be greater than 0) topk(0",
    ),
    (r#"sum(1, rate({a="b"}[5m]))"#, "parse error : unsupported parameter for operation sum(1,"),
    (
        "-vector(1)",
        "parse error at line 1, col 2: syntax error: unexpected VECTOR, expecting NUMBER",
    ),
    (
        r#"{a="b"} + 1"#,
        "parse error : unexpected type for left leg of binary operation (+): *syntax.MatchersExpr",
    ),
    (
        r#"1 + {a="b"} |= "x""#,
        "parse error : unexpected type for right leg of binary operation (+): *syntax.PipelineExpr",
    ),
    (
        "1 and vector(1)",
        "parse error : unexpected literal for left leg of logical/set binary operation (and): 1.000000",
    ),
    (r#"sum({a="b"})"#, "parse error at line 1, col 12: syntax error: unexpected )"),
    (r#"rate({a="b"})"#, "parse error at line 1, col 13: syntax error: unexpected )"),
    (r#"{a="b"}[5m]"#, "parse error at line 1, col 8: syntax error: unexpected RANGE"),
    (r#"rate({a="b"}[5x])"#, "parse error at line 1, col 13: not a valid duration string: \"5x\""),
    (r#"rate({a="b"}[1.5m])"#, "parse error at line 1, col 13: not a valid duration string: \"1.5m\""),
    (r#"rate({a="b"}[5m"#, "parse error at line 1, col 13: missing closing ']' in duration"),
    (
        r#"rate({a="b"}[5m] offset x)"#,
        "parse error at line 1, col 25: syntax error: unexpected IDENTIFIER, expecting DURATION",
    ),
    (
        r#"sum_over_time({a="b"} | unwrap [5m])"#,
        "parse error at line 1, col 32: syntax error: unexpected RANGE, expecting IDENTIFIER or BYTES_CONV or DURATION_CONV or DURATION_SECONDS_CONV",
    ),
    (r#"{a="b"} | unwrap x"#, "parse error at line 1, col 11: syntax error: unexpected unwrap"),
    // `sum` is a function name only when `(` or `by (` follows.
    (r#"sum by x (vector(1))"#, "parse error at line 1, col 1: syntax error: unexpected IDENTIFIER"),
    (r#"rate({a="b"}[5m]) by x"#, "parse error at line 1, col 22: syntax error: unexpected IDENTIFIER, expecting ("),
    (r#"sum by (x (vector(1))"#, "parse error at line 1, col 11: syntax error: unexpected (, expecting , or )"),
    (
        r#"{a="b"} | regexp "(\\w+)""#,
        "parse error : invalid regexp parser: at least one named capture must be supplied",
    ),
    (
        r#"{a="b"} | pattern "<a><b>""#,
        "parse error : invalid pattern parser: found consecutive capture '<a><b>': invalid expression",
    ),
    (
        r#"{a="b"} | label_format a=b, a="c""#,
        "multiple label name 'a' not allowed in a single format operation",
    ),
    (r#"{a="b"} | x=ip("nope")"#, "parse error : ip: invalid pattern"),
    (r#"{a="b"} | x > "y""#, "parse error at line 1, col 15: syntax error: unexpected STRING"),
    (r#"{a="b"} | x =~ 1"#, "parse error at line 1, col 16: syntax error: unexpected NUMBER, expecting STRING"),
    (
        r#"label_replace(vector(1), "a", "b", "c", "(")"#,
        "parse error : invalid regex in label_replace: error parsing regexp: missing closing ): `(`",
    ),
    ("vector(1) + bool vector(1)", "parse error : bool modifier can only be used on comparison operators"),
    ("vector(", "parse error at line 1, col 8: syntax error: unexpected $end, expecting NUMBER"),
    ("1e999", "parse error : unable to parse literal as a float: strconv.ParseFloat: parsing \"1e999\": value out of range"),
    ("vector(1) @ 1", "parse error at line 1, col 11: syntax error: unexpected IDENTIFIER"),
];

#[test]
fn invalid_queries_report_loki_errors() {
    for (query, expected) in INVALID {
        match parse_expr(query) {
            Ok(expr) => panic!("{query:?} should fail, parsed as {expr}"),
            Err(err) => assert_eq!(&err.to_string(), expected, "error for {query:?}"),
        }
    }
}

#[test]
fn ast_shapes() {
    let expr = parse_ok(r#"{app="foo", env=~"prod.*"} |= "x" != "y""#);
    let expected = Expr::Log(LogExpr {
        matchers: vec![
            m("app", MatchOp::Eq, "foo"),
            m("env", MatchOp::Re, "prod.*"),
        ],
        pipeline: vec![
            Stage::LineFilter(LineFilter::new(LineFilterOp::Contains, "x").expect("valid")),
            Stage::LineFilter(LineFilter::new(LineFilterOp::NotContains, "y").expect("valid")),
        ],
    });
    assert_eq!(expr, expected);

    let expr = parse_ok(r#"sum by (a) (rate({app="foo"}[5m] offset 1m))"#);
    let Expr::VectorAggregation(agg) = expr else {
        panic!("vector aggregation expected");
    };
    assert_eq!(agg.op, VectorOp::Sum);
    assert_eq!(
        agg.grouping,
        Some(Grouping {
            without: false,
            labels: vec!["a".into()]
        })
    );
    let Expr::RangeAggregation(range) = *agg.inner else {
        panic!("range aggregation expected");
    };
    assert_eq!(range.op, RangeOp::Rate);
    assert_eq!(range.range.range, 300_000_000_000);
    assert_eq!(range.range.offset, 60_000_000_000);

    let expr = parse_ok(r#"{a="b"} | x > 1s | y = 5KiB"#);
    let Expr::Log(log) = expr else {
        panic!("log expected");
    };
    assert_eq!(
        log.pipeline,
        vec![
            Stage::LabelFilter(LabelFilter::Duration {
                name: "x".into(),
                op: CmpOp::Gt,
                value: 1_000_000_000
            }),
            Stage::LabelFilter(LabelFilter::Bytes {
                name: "y".into(),
                op: CmpOp::Eq,
                value: 5120
            }),
        ]
    );
}

#[test]
fn binary_precedence_shapes() {
    let expr = parse_ok("vector(1) + vector(2) * vector(3) > bool vector(4) or vector(5)");
    let Expr::BinOp(or) = expr else {
        panic!("binop expected");
    };
    assert_eq!(or.op, BinOp::Or);
    let Expr::BinOp(cmp) = *or.lhs else {
        panic!("binop expected");
    };
    assert_eq!(cmp.op, BinOp::Gt);
    assert!(cmp.return_bool);
    let Expr::BinOp(add) = *cmp.lhs else {
        panic!("binop expected");
    };
    assert_eq!(add.op, BinOp::Add);
    assert!(matches!(
        *add.rhs,
        Expr::BinOp(BinOpExpr { op: BinOp::Mul, .. })
    ));
}

#[test]
fn label_filter_grouping_follows_yacc() {
    let expr = parse_ok(r#"{a="b"} | x="1", y="2" or z="3""#);
    let Expr::Log(log) = expr else {
        panic!("log expected");
    };
    let Stage::LabelFilter(LabelFilter::And(_, right)) = &log.pipeline[0] else {
        panic!("and expected");
    };
    assert!(matches!(**right, LabelFilter::Or(..)));
}

#[test]
fn selectors() {
    assert_eq!(
        parse_selector(r#"{app="foo", env!="dev"}"#),
        Ok(vec![
            m("app", MatchOp::Eq, "foo"),
            m("env", MatchOp::Neq, "dev")
        ])
    );
    assert_eq!(
        parse_selector(r#"{app="foo"} |= "x""#)
            .expect_err("pipeline")
            .to_string(),
        "only label matchers are supported"
    );
    assert_eq!(
        parse_selector("rate({app=\"foo\"}[1m])")
            .expect_err("metric")
            .to_string(),
        "only label matchers are supported"
    );
    assert_eq!(
        parse_selector(r#"{app="foo""#)
            .expect_err("syntax")
            .to_string(),
        "parse error at line 1, col 11: syntax error: unexpected $end, expecting } or ,"
    );
}

#[test]
fn line_filter_chain_from_query() {
    let expr = parse_ok(r#"{a="b"} |= "foo" != "bar" |~ "b.z" | json | line_format "x" |= "nope""#);
    let log = expr.as_log().expect("log");
    assert!(!log.has_only_line_filters());
    let chain = log.line_filters();
    assert_eq!(chain.len(), 3);
    assert!(chain.matches(b"foo baz"));
    assert!(!chain.matches(b"foo bar baz"));
    assert!(!chain.matches(b"foo"));
}

fn nested(depth: usize, open: &str, inner: &str, close: &str) -> String {
    format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
}

#[test]
fn nesting_is_bounded() {
    // Just inside the limit parses.
    let ok = nested(MAX_DEPTH / 2, "sum(", "vector(1)", ")");
    assert!(parse_expr(&ok).is_ok());
    for deep in [
        nested(100_000, "(", "vector(1)", ")"),
        nested(100_000, "sum(", "vector(1)", ")"),
        nested(100_000, "(", "1", ")"),
        format!("{}vector(1)", "vector(1) + ".repeat(100_000)),
        format!("{}vector(1)", "vector(1) ^ ".repeat(100_000)),
        format!(r#"{{a="b"}} | {}x="1""#, "x=\"1\", ".repeat(100_000)),
        format!(r#"{{a="b"}} | {}"#, nested(100_000, "(", "x=\"1\"", ")")),
        format!(r#"{{a="b"}} | {}x="1""#, "x=\"1\" and ".repeat(100_000)),
        format!("rate({})", nested(100_000, "(", r#"{a="b"}[1m]"#, ")")),
    ] {
        let err = parse_expr(&deep).expect_err("too deep");
        assert!(
            err.message.contains("nested deeper than 256"),
            "unexpected error {err}"
        );
    }
    // Long flat pipelines are fine.
    let long = format!(r#"{{a="b"}}{}"#, r#" |= "x""#.repeat(10_000));
    assert!(parse_expr(&long).is_ok());
}
