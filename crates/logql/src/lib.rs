//! LogQL for Sluice: lexer, parser, AST, canonical printer, label matchers
//! and line filters, compatible with Loki 2.8 (plus the 2.9/3.x parser
//! additions `logfmt` flags/params, `keep` and line-filter `or`).
//!
//! The crate is pure: no I/O, no async. Entry points:
//! - [`parse_expr`] parses and validates a query into an [`Expr`];
//! - [`parse_selector`] parses a bare stream selector (`match[]`, `query`);
//! - [`format_query`] re-prints a query canonically;
//! - [`Matcher::matches`] and [`LineFilterChain::matches`] are the hot-path
//!   predicates used by ingesters and queriers;
//! - [`template::RuleTemplate`] expands alerting rules' labels and
//!   annotations with the Go template engine of `line_format`.
//!
//! Errors render exactly like Loki's (`parse error at line 1, col 11: syntax
//! error: unexpected $end, expecting } or ,`), so handlers can return
//! `err.to_string()` as the 400 body.

mod ast;
mod binop;
mod engine;
mod entry_filter;
mod error;
mod extract;
mod filter;
mod ip;
pub mod labelset;
mod lexer;
mod matcher;
mod parser;
mod pattern;
pub mod pipeline;
mod plan;
mod print;
mod range_agg;
mod shard;
mod stages;
pub mod template;
mod units;
mod value;
mod vector_agg;

#[cfg(test)]
mod parser_tests;

pub use ast::{
    BinOp, BinOpExpr, Cardinality, CmpOp, Expr, Grouping, LabelExtraction, LabelFilter,
    LabelFormat, LabelReplace, LogExpr, LogRange, LogfmtParser, NamedMatcher, RangeAggregation,
    RangeOp, Stage, Unwrap, UnwrapConversion, VectorAggregation, VectorMatching, VectorOp,
};
pub use engine::evaluate;
pub use entry_filter::{EntryFilter, StreamEntryFilter};
pub use error::{ParseError, EMPTY_COMPATIBLE_SELECTOR, ONLY_LABEL_MATCHERS};
pub use extract::{SampleExtractor, StreamSamples};
pub use filter::{LineFilter, LineFilterAlt, LineFilterChain, LineFilterOp};
pub use ip::IpPattern;
pub use labelset::LabelSet;
pub use matcher::{has_non_empty_matcher, MatchOp, Matcher};
pub use parser::MAX_DEPTH;
pub use pattern::{parse_pattern, PatternNode};
pub use pipeline::{Pipeline, PipelineError, Processed, StreamPipeline};
pub use plan::{default_step_ns, plan, without_counted_filters};
pub use print::quote;
pub use shard::{shard_merge, ShardMerge};
pub use stages::{
    ERROR_DETAILS_LABEL, ERROR_LABEL, ERR_JSON, ERR_LABEL_FILTER, ERR_LOGFMT,
    ERR_SAMPLE_EXTRACTION, ERR_TEMPLATE_FORMAT,
};
pub use units::{format_bytes, format_duration, format_float};
pub use value::{
    format_sample_value, DataRequest, Direction, EvalError, EvalErrorKind, EvalLimits, Input,
    InputStream, QueryKind, QueryParams, QueryValue, ResultStream, Sample, SampleSeries, Series,
};

/// Parses and validates a LogQL query (log or metric).
pub fn parse_expr(input: &str) -> Result<Expr, ParseError> {
    parser::parse(input)
}

/// Parses a bare stream selector `{…}` (validated like a query: at least one
/// matcher must reject the empty string). Anything else, including a
/// selector with a pipeline, fails with [`ONLY_LABEL_MATCHERS`].
///
/// Callers implementing `/series` treat a lone `{}` as "all series" before
/// calling this, as Loki does.
pub fn parse_selector(input: &str) -> Result<Vec<Matcher>, ParseError> {
    match parse_expr(input)? {
        Expr::Log(LogExpr { matchers, pipeline }) if pipeline.is_empty() => Ok(matchers),
        _ => Err(ParseError::bare(ONLY_LABEL_MATCHERS)),
    }
}

/// Parses a query and prints it back canonically (`/loki/api/v1/format_query`).
pub fn format_query(input: &str) -> Result<String, ParseError> {
    parse_expr(input).map(|expr| expr.to_string())
}
