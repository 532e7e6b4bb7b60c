//! Property tests: the parser never panics (arbitrary strings, LogQL-ish
//! character soups, token soups, mutated valid queries), and printing a
//! generated AST parses back to the same AST.

use proptest::prelude::*;
use sluice_logql::{
    format_query, parse_expr, parse_selector, BinOp, BinOpExpr, Cardinality, CmpOp, Expr, Grouping,
    LabelExtraction, LabelFilter, LabelFormat, LabelReplace, LineFilter, LineFilterAlt,
    LineFilterOp, LogExpr, LogRange, LogfmtParser, MatchOp, Matcher, NamedMatcher,
    RangeAggregation, RangeOp, Stage, Unwrap, UnwrapConversion, VectorAggregation, VectorMatching,
    VectorOp,
};

const TOKENS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[5m]",
    "[1",
    "]",
    ",",
    "=",
    "!=",
    "=~",
    "!~",
    "|=",
    "|~",
    "|",
    "==",
    ">",
    ">=",
    "<",
    "<=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "^",
    "by",
    "without",
    "bool",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "or",
    "and",
    "unless",
    "offset",
    "json",
    "logfmt",
    "regexp",
    "pattern",
    "unpack",
    "line_format",
    "label_format",
    "drop",
    "keep",
    "decolorize",
    "unwrap",
    "ip",
    "sum",
    "rate",
    "count_over_time",
    "quantile_over_time",
    "topk",
    "vector",
    "label_replace",
    "bytes",
    "duration",
    "app",
    "x",
    "\"foo\"",
    "\"(?P<a>x)\"",
    "`raw`",
    "\"",
    "1",
    "0.5",
    "-1",
    "5m",
    "-5m",
    "1KB",
    "--strict",
    "#",
    "\n",
    "@",
];

const REGEXES: &[&str] = &[".*", ".+", "a|b", "[0-9]+", "foo.*bar", "\\d", ""];
const IPS: &[&str] = &["10.0.0.0/8", "192.168.0.1", "10.0.0.1-10.0.0.9", "::1"];

fn label_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("sum".to_string()),
        Just("rate".to_string()),
        Just("bytes".to_string()),
        Just("__error__".to_string()),
        "l_[a-z0-9_]{0,4}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z ]{0,6}", "\\PC{0,6}", "[\"\\\\\n\t\u{1}a]{0,4}"]
}

fn regex_source() -> impl Strategy<Value = String> {
    prop::sample::select(REGEXES).prop_map(str::to_string)
}

fn matcher() -> impl Strategy<Value = Matcher> {
    (label_name(), 0..4u8, text(), regex_source()).prop_map(|(name, op, value, regex)| {
        let result = match op {
            0 => Matcher::new(name, MatchOp::Eq, value),
            1 => Matcher::new(name, MatchOp::Neq, value),
            2 => Matcher::new(name, MatchOp::Re, regex),
            _ => Matcher::new(name, MatchOp::Nre, regex),
        };
        result.expect("generated matchers are valid")
    })
}

fn selector() -> impl Strategy<Value = Vec<Matcher>> {
    (
        label_name(),
        "[a-z]{1,5}",
        prop::collection::vec(matcher(), 0..3),
    )
        .prop_map(|(name, value, rest)| {
            let mut matchers = vec![Matcher::new(name, MatchOp::Eq, value).expect("valid")];
            matchers.extend(rest);
            matchers
        })
}

fn line_filter() -> impl Strategy<Value = LineFilter> {
    let alternative = (any::<bool>(), text(), prop::sample::select(IPS));
    (0..4u8, prop::collection::vec(alternative, 1..3)).prop_map(|(op, alternatives)| {
        let op = [
            LineFilterOp::Contains,
            LineFilterOp::NotContains,
            LineFilterOp::Match,
            LineFilterOp::NotMatch,
        ][usize::from(op)];
        let regex = matches!(op, LineFilterOp::Match | LineFilterOp::NotMatch);
        let mut alts: Vec<LineFilterAlt> = alternatives
            .into_iter()
            .enumerate()
            .map(|(index, (ip, value, ip_pattern))| {
                if regex {
                    LineFilterAlt {
                        pattern: REGEXES[index % REGEXES.len()].to_string(),
                        ip: false,
                    }
                } else if ip {
                    LineFilterAlt {
                        pattern: ip_pattern.to_string(),
                        ip: true,
                    }
                } else {
                    LineFilterAlt {
                        pattern: value,
                        ip: false,
                    }
                }
            })
            .collect();
        let first = alts.remove(0);
        LineFilter::with_alternatives(op, first, alts).expect("generated filters are valid")
    })
}

fn cmp_op() -> impl Strategy<Value = CmpOp> {
    prop::sample::select(vec![
        CmpOp::Eq,
        CmpOp::Neq,
        CmpOp::Gt,
        CmpOp::Gte,
        CmpOp::Lt,
        CmpOp::Lte,
    ])
}

fn finite_float() -> impl Strategy<Value = f64> {
    prop_oneof![
        -1e3f64..1e3f64,
        any::<f64>().prop_filter("finite", |v| v.is_finite()),
        Just(0.5),
        Just(-0.0),
    ]
}

fn label_filter_leaf() -> impl Strategy<Value = LabelFilter> {
    prop_oneof![
        matcher().prop_map(LabelFilter::Matcher),
        (label_name(), cmp_op(), finite_float())
            .prop_map(|(name, op, value)| LabelFilter::Number { name, op, value }),
        (label_name(), cmp_op(), any::<i64>())
            .prop_map(|(name, op, value)| LabelFilter::Duration { name, op, value }),
        (label_name(), cmp_op(), 0u64..(1u64 << 53))
            .prop_map(|(name, op, value)| LabelFilter::Bytes { name, op, value }),
        (label_name(), any::<bool>(), prop::sample::select(IPS)).prop_map(
            |(name, equal, pattern)| LabelFilter::Ip {
                name,
                equal,
                pattern: pattern.to_string()
            }
        ),
    ]
}

fn label_filter() -> impl Strategy<Value = LabelFilter> {
    label_filter_leaf().prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone())
                .prop_map(|(l, r)| LabelFilter::And(Box::new(l), Box::new(r))),
            (inner.clone(), inner).prop_map(|(l, r)| LabelFilter::Or(Box::new(l), Box::new(r))),
        ]
    })
}

fn extractions() -> impl Strategy<Value = Vec<LabelExtraction>> {
    prop::collection::vec(
        (label_name(), text()).prop_map(|(name, expression)| LabelExtraction { name, expression }),
        0..3,
    )
}

fn named_matchers() -> impl Strategy<Value = Vec<NamedMatcher>> {
    prop::collection::vec(
        prop_oneof![
            label_name().prop_map(NamedMatcher::Name),
            matcher().prop_map(NamedMatcher::Matcher)
        ],
        1..3,
    )
}

fn stage() -> impl Strategy<Value = Stage> {
    prop_oneof![
        3 => line_filter().prop_map(Stage::LineFilter),
        1 => extractions().prop_map(Stage::Json),
        1 => (any::<bool>(), any::<bool>(), extractions()).prop_map(|(strict, keep_empty, params)| {
            Stage::Logfmt(LogfmtParser { strict, keep_empty, params })
        }),
        1 => Just(Stage::Regexp("(?P<x>\\w+) (?P<y>.*)".into())),
        1 => Just(Stage::Pattern("<ip> - <_> \"<method>\"".into())),
        1 => Just(Stage::Unpack),
        1 => Just(Stage::Decolorize),
        2 => label_filter().prop_map(Stage::LabelFilter),
        1 => text().prop_map(Stage::LineFormat),
        1 => (label_name(), label_name(), text()).prop_map(|(a, b, template)| {
            let mut formats = vec![LabelFormat::Rename { dst: a.clone(), src: b }];
            if a != "l_x" {
                formats.push(LabelFormat::Template { dst: "l_x".into(), template });
            }
            Stage::LabelFormat(formats)
        }),
        1 => named_matchers().prop_map(Stage::Drop),
        1 => named_matchers().prop_map(Stage::Keep),
    ]
}

/// `drop a` / `keep a` directly followed by `!= "x"` or `!~ "x"` reads back as
/// the matcher `a!="x"` (the same ambiguity exists in Loki's grammar).
fn printable_pipeline(stages: &[Stage]) -> bool {
    stages.windows(2).all(|pair| {
        let ends_with_name = matches!(
            &pair[0],
            Stage::Drop(names) | Stage::Keep(names)
                if matches!(names.last(), Some(NamedMatcher::Name(_)))
        );
        let negated_filter = matches!(
            &pair[1],
            Stage::LineFilter(filter) if filter.op.is_negated()
        );
        !(ends_with_name && negated_filter)
    })
}

fn log_expr() -> impl Strategy<Value = LogExpr> {
    (selector(), prop::collection::vec(stage(), 0..4))
        .prop_filter("ambiguous print", |(_, stages)| printable_pipeline(stages))
        .prop_map(|(matchers, pipeline)| LogExpr { matchers, pipeline })
}

fn grouping() -> impl Strategy<Value = Grouping> {
    (any::<bool>(), prop::collection::vec(label_name(), 0..3))
        .prop_map(|(without, labels)| Grouping { without, labels })
}

fn range_aggregation() -> impl Strategy<Value = RangeAggregation> {
    (
        prop::sample::select(RangeOp::ALL),
        log_expr(),
        1i64..1_000_000_000,
        any::<i64>(),
        (
            label_name(),
            0..4u8,
            prop::collection::vec(label_filter(), 0..2),
        ),
        prop::option::of(grouping()),
        0.0f64..1.0,
        any::<bool>(),
    )
        .prop_map(
            |(
                op,
                log,
                range_ms,
                offset,
                (label, conv, post_filters),
                grouping,
                phi,
                pick_unwrap,
            )| {
                let unwrap =
                    (op.allows_unwrap() && (pick_unwrap || !op.allows_no_unwrap())).then(|| {
                        Unwrap {
                            label,
                            conversion: [
                                None,
                                Some(UnwrapConversion::Bytes),
                                Some(UnwrapConversion::Duration),
                                Some(UnwrapConversion::DurationSeconds),
                            ][usize::from(conv)],
                            post_filters,
                        }
                    });
                RangeAggregation {
                    op,
                    param: (op == RangeOp::QuantileOverTime).then_some(phi),
                    range: LogRange {
                        log,
                        range: range_ms * 1_000_000,
                        offset,
                        unwrap,
                    },
                    grouping: grouping.filter(|_| op.allows_grouping()),
                }
            },
        )
}

fn metric_leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        3 => range_aggregation().prop_map(Expr::RangeAggregation),
        1 => (0.0f64..1e6).prop_map(Expr::Vector),
    ]
}

fn vector_matching() -> impl Strategy<Value = Option<VectorMatching>> {
    prop::option::of(
        (
            any::<bool>(),
            prop::collection::vec(label_name(), 0..3),
            0..3u8,
            prop::collection::vec(label_name(), 0..2),
        )
            .prop_map(|(on, labels, card, include)| {
                let card = [
                    Cardinality::OneToOne,
                    Cardinality::ManyToOne,
                    Cardinality::OneToMany,
                ][usize::from(card)];
                let include = if card == Cardinality::OneToOne {
                    Vec::new()
                } else {
                    include
                };
                VectorMatching {
                    on,
                    labels,
                    card,
                    include,
                }
            }),
    )
}

const BINOPS: &[BinOp] = &[
    BinOp::Or,
    BinOp::And,
    BinOp::Unless,
    BinOp::Eq,
    BinOp::Neq,
    BinOp::Gt,
    BinOp::Gte,
    BinOp::Lt,
    BinOp::Lte,
    BinOp::Add,
    BinOp::Sub,
    BinOp::Mul,
    BinOp::Div,
    BinOp::Mod,
    BinOp::Pow,
];

fn metric_expr() -> impl Strategy<Value = Expr> {
    metric_leaf().prop_recursive(3, 16, 2, |inner| {
        prop_oneof![
            (
                prop::sample::select(BINOPS),
                any::<bool>(),
                vector_matching(),
                inner.clone(),
                inner.clone()
            )
                .prop_map(|(op, bool_flag, matching, lhs, rhs)| {
                    Expr::BinOp(BinOpExpr {
                        op,
                        return_bool: bool_flag && op.is_comparison(),
                        matching,
                        lhs: Box::new(lhs),
                        rhs: Box::new(rhs),
                    })
                }),
            (
                prop::sample::select(VectorOp::ALL),
                prop::option::of(grouping()),
                1i64..100,
                inner.clone()
            )
                .prop_map(|(op, grouping, k, inner)| {
                    Expr::VectorAggregation(VectorAggregation {
                        op,
                        param: matches!(op, VectorOp::Topk | VectorOp::Bottomk).then_some(k),
                        grouping,
                        inner: Box::new(inner),
                    })
                }),
            (inner, label_name(), text(), label_name(), regex_source()).prop_map(
                |(inner, dst, replacement, src, regex)| {
                    Expr::LabelReplace(LabelReplace {
                        inner: Box::new(inner),
                        dst,
                        replacement,
                        src,
                        regex,
                    })
                }
            ),
        ]
    })
}

fn any_expr() -> impl Strategy<Value = Expr> {
    prop_oneof![
        1 => log_expr().prop_map(Expr::Log),
        3 => metric_expr(),
        1 => finite_float().prop_map(Expr::Literal),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Arbitrary bytes (as the HTTP layer may pass them on, lossily
    /// decoded), long enough to reach deep into the grammar.
    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let input = String::from_utf8_lossy(&bytes);
        let _ = parse_expr(&input);
        let _ = parse_selector(&input);
        let _ = format_query(&input);
    }

    #[test]
    fn never_panics_on_arbitrary_strings(input in "\\PC{0,80}") {
        let _ = parse_expr(&input);
        let _ = parse_selector(&input);
    }

    #[test]
    fn never_panics_on_logql_characters(input in "[{}()\\[\\]a-z0-9=~!|\",.+*/%^<>#`\\\\ \n-]{0,80}") {
        let _ = parse_expr(&input);
    }

    #[test]
    fn never_panics_on_token_soup(tokens in prop::collection::vec(prop::sample::select(TOKENS), 0..40)) {
        let input = tokens.join(" ");
        let _ = parse_expr(&input);
        let glued = tokens.concat();
        let _ = parse_expr(&glued);
    }

    #[test]
    fn errors_have_consistent_positions(input in "[{}()a-z=\"|, \n]{0,40}") {
        if let Err(err) = parse_expr(&input) {
            let text = err.to_string();
            prop_assert!(text.starts_with("parse error") || text.starts_with("only") || text.starts_with("multiple"));
            if err.has_position() {
                prop_assert!(err.line >= 1 && err.col >= 1);
                prop_assert!(err.line <= input.lines().count() + 1);
            }
        }
    }

    #[test]
    fn printed_ast_parses_back(expr in any_expr()) {
        let printed = expr.to_string();
        let reparsed = parse_expr(&printed);
        prop_assert!(reparsed.is_ok(), "{printed:?} failed: {:?}", reparsed.err().map(|e| e.to_string()));
        let reparsed = reparsed.unwrap_or(Expr::Literal(0.0));
        prop_assert_eq!(&reparsed, &expr, "printed as {:?}", printed);
        prop_assert_eq!(format_query(&printed), Ok(printed.clone()));
    }

    #[test]
    fn mutated_valid_queries_never_panic(expr in any_expr(), cut in any::<prop::sample::Index>(), insert in prop::sample::select(TOKENS)) {
        let printed = expr.to_string();
        let chars: Vec<char> = printed.chars().collect();
        let at = cut.index(chars.len() + 1);
        let mutated: String = chars[..at].iter().collect::<String>() + insert + &chars[at..].iter().collect::<String>();
        let _ = parse_expr(&mutated);
        let truncated: String = chars[..at].iter().collect();
        let _ = parse_expr(&truncated);
    }
}
