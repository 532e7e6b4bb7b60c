//! Log pipeline evaluation: runs the stages of a [`LogExpr`](crate::LogExpr)
//! pipeline on log entries, as Loki 2.9 does.
//!
//! [`Pipeline::new`] compiles the stages once (regexes, templates, patterns,
//! json paths); [`Pipeline::for_stream`] binds them to one stream's labels;
//! [`StreamPipeline::process`] runs them on one entry.
//!
//! Semantics (Loki 2.9; where Loki is ambiguous the choice is noted):
//! - Line filters test the current line (the rewritten one after
//!   `line_format`/`decolorize`/`unpack`); a failing filter drops the entry.
//! - Parsers never drop entries. Extracted names are sanitized; a name equal
//!   to a *stream* label gets the `_extracted` suffix (labels extracted by an
//!   earlier parser are overwritten instead, as in Loki where the check is
//!   `BaseHas`). `label_format` never suffixes: it overrides stream labels.
//! - `json`: nested keys joined by `_`, arrays and nulls skipped, numbers
//!   verbatim, booleans `true`/`false`; an invalid escape or U+FFFD gives
//!   `""`; malformed JSON sets `JSONParserErr` with jsonparser's message
//!   (labels found before the error stay). `json a="x.y"` extracts only the
//!   paths (objects/arrays as raw JSON; strings are unescaped — Loki 2.9
//!   keeps the raw escaped text, unescaping is the later behaviour); missing
//!   paths give `a=""`; a line not starting with `{`, `[` or `"` sets
//!   `JSONParserErr` without details.
//! - `logfmt`: non-strict (bad pairs skipped, empty values dropped unless
//!   `--keep-empty`), `--strict` stops at the first error and sets
//!   `LogfmtParserErr` with the decoder's message. `logfmt a="k"` presets
//!   every parameter label to `""` like Loki.
//! - `unpack`: only string members become labels, and only when the object
//!   has an `_entry` string, which replaces the line (Loki's "no packed
//!   entry ⇒ unchanged"); keys are not sanitized.
//! - Label filters: string matchers read a missing label as `""` and are the
//!   only filters that see `__error__`/`__error_details__`. Numeric,
//!   duration, bytes and ip filters pass an entry that already has an error,
//!   drop it when the label is missing, and on an unconvertible value set
//!   `LabelFilterErr` (unless an error is already set) and keep the entry.
//!   `and` evaluates both sides (so the right side may still set an error),
//!   `or` stops at the first passing side.
//! - Templates (`line_format`, `label_format`) see every label including the
//!   error pair; a failure sets `TemplateFormatErr` with the Go-style message
//!   and keeps the line / leaves the label. In one `label_format`, templates
//!   read the labels as they were at the first template (Loki builds the map
//!   once per stage); renames remove the source label and do nothing when
//!   the source is missing.
//! - `drop`/`keep`: `keep` never removes the error pair; `drop __error__`
//!   clears it.
//! - Output labels keep empty values the stages produced (`--keep-empty`,
//!   missing json paths), as Loki does.
//!
//! Performance: no allocation on the hot path once buffers are warm (values
//! live in an arena, names are interned per stream, result label sets are
//! cached by hash); parsers extract only the labels later stages and the
//! caller need ([`Pipeline::new_with_required`]), and stop early when all
//! are found and nothing reads `__error__`.

use std::collections::HashMap;

use crate::ast::{CmpOp, LabelFilter, LabelFormat, NamedMatcher, Stage};
use crate::filter::LineFilter;
use crate::ip::IpPattern;
use crate::labelset::{Hash64, IdentityBuild, LabelSet};
use crate::matcher::Matcher;
use crate::stages::json::{parse_path, JsonExprParser, JsonParser, PathStep, UnpackParser};
use crate::stages::logfmt::{LogfmtExprParser, LogfmtParser};
use crate::stages::text::{decolorize, PatternRt, PatternStage, RegexpRt, RegexpStage};
use crate::stages::{
    Entry, LabelState, Need, ERROR_DETAILS_LABEL, ERROR_LABEL, ERR_LABEL_FILTER,
    ERR_TEMPLATE_FORMAT,
};
use crate::template::funcs::{parse_bytes_go, parse_duration_go, parse_float_go, RegexCache};
use crate::template::{Data, Refs, Template};

/// An error compiling a pipeline; `Display` is Loki's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PipelineError(pub String);

/// A compiled label filter.
#[derive(Debug, Clone)]
enum Filter {
    Matcher(Matcher),
    Number(String, CmpOp, f64),
    Duration(String, CmpOp, i64),
    Bytes(String, CmpOp, u64),
    Ip(String, IpPattern, bool),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
}

#[derive(Debug, Clone)]
enum Format {
    Rename(String, String),
    Template(String, Template),
}

#[derive(Debug, Clone)]
enum Compiled {
    LineFilter(LineFilter),
    Json(Need, bool),
    JsonExpr(Vec<(String, Vec<PathStep>)>),
    Logfmt {
        strict: bool,
        keep_empty: bool,
        need: Need,
        early: bool,
    },
    LogfmtExpr {
        strict: bool,
        params: Vec<(String, String)>,
    },
    Regexp(RegexpStage, Need),
    Pattern(PatternStage, Need),
    Unpack(Need),
    LabelFilter(Filter),
    LineFormat(Template),
    LabelFormat(Vec<Format>),
    Drop(Vec<NamedMatcher>),
    Keep(Vec<NamedMatcher>),
    Decolorize,
}

/// A compiled log pipeline, shared by every stream of a query.
#[derive(Debug, Clone)]
pub struct Pipeline {
    stages: Vec<Compiled>,
}

impl Pipeline {
    /// Compiles the stages of a log query: every label is extracted.
    pub fn new(stages: &[Stage]) -> Result<Pipeline, PipelineError> {
        Pipeline::new_with_required(stages, None)
    }

    /// Compiles the stages for a caller that only needs the labels in
    /// `required` in its output (`None`: all labels). Later stages' needs
    /// are added automatically; with `Some(&[])` and no stage reading
    /// labels, parsers are skipped entirely (Loki's `NoLabels` hint).
    pub fn new_with_required(
        stages: &[Stage],
        required: Option<&[&str]>,
    ) -> Result<Pipeline, PipelineError> {
        let plan = plan_needs(stages, required);
        let mut compiled = Vec::with_capacity(stages.len());
        for (index, stage) in stages.iter().enumerate() {
            let (need, early) = plan[index].clone();
            let stage = match stage {
                Stage::LineFilter(filter) => Compiled::LineFilter(filter.clone()),
                Stage::Json(params) if params.is_empty() => Compiled::Json(need, early),
                Stage::Json(params) => Compiled::JsonExpr(
                    params
                        .iter()
                        .map(|p| {
                            parse_path(&p.expression)
                                .map(|path| (p.name.clone(), path))
                                .map_err(|err| {
                                    PipelineError(format!(
                                        "cannot parse expression [{}]: {err}",
                                        p.expression
                                    ))
                                })
                        })
                        .collect::<Result<_, _>>()?,
                ),
                Stage::Logfmt(parser) if parser.params.is_empty() => Compiled::Logfmt {
                    strict: parser.strict,
                    keep_empty: parser.keep_empty,
                    need,
                    early,
                },
                Stage::Logfmt(parser) => Compiled::LogfmtExpr {
                    strict: parser.strict,
                    params: parser
                        .params
                        .iter()
                        .map(|p| (p.name.clone(), p.expression.clone()))
                        .collect(),
                },
                Stage::Regexp(source) => {
                    Compiled::Regexp(RegexpStage::new(source).map_err(PipelineError)?, need)
                }
                Stage::Pattern(source) => Compiled::Pattern(
                    PatternStage::new(source)
                        .map_err(|err| PipelineError(format!("invalid pattern parser: {err}")))?,
                    need,
                ),
                Stage::Unpack => Compiled::Unpack(need),
                Stage::LabelFilter(filter) => Compiled::LabelFilter(compile_filter(filter)?),
                Stage::LineFormat(source) => {
                    Compiled::LineFormat(Template::parse("line", source).map_err(PipelineError)?)
                }
                Stage::LabelFormat(formats) => Compiled::LabelFormat(
                    formats
                        .iter()
                        .map(|format| match format {
                            LabelFormat::Rename { dst, src } => {
                                Ok(Format::Rename(dst.clone(), src.clone()))
                            }
                            LabelFormat::Template { dst, template } => {
                                Template::parse("label", template)
                                    .map(|t| Format::Template(dst.clone(), t))
                                    .map_err(PipelineError)
                            }
                        })
                        .collect::<Result<_, _>>()?,
                ),
                Stage::Drop(matchers) => Compiled::Drop(matchers.clone()),
                Stage::Keep(matchers) => Compiled::Keep(matchers.clone()),
                Stage::Decolorize => Compiled::Decolorize,
            };
            compiled.push(stage);
        }
        Ok(Pipeline { stages: compiled })
    }

    /// Returns true when processing returns every entry unchanged.
    pub fn is_noop(&self) -> bool {
        self.stages.is_empty()
    }

    /// Binds the pipeline to one stream.
    pub fn for_stream(&self, stream_labels: &LabelSet) -> StreamPipeline<'_> {
        let mut state = LabelState::new(stream_labels);
        let stages = self
            .stages
            .iter()
            .map(|stage| match stage {
                Compiled::LineFilter(filter) => Rt::LineFilter(filter),
                Compiled::Json(need, early) => Rt::Json(JsonParser::new(need.clone(), *early)),
                Compiled::JsonExpr(exprs) => Rt::JsonExpr(JsonExprParser::new(exprs, &mut state)),
                Compiled::Logfmt {
                    strict,
                    keep_empty,
                    need,
                    early,
                } => Rt::Logfmt(LogfmtParser::new(
                    *strict,
                    *keep_empty,
                    need.clone(),
                    *early,
                )),
                Compiled::LogfmtExpr { strict, params } => {
                    Rt::LogfmtExpr(LogfmtExprParser::new(*strict, params))
                }
                Compiled::Regexp(stage, need) => Rt::Regexp(RegexpRt::new(stage, need, &mut state)),
                Compiled::Pattern(stage, need) => {
                    Rt::Pattern(PatternRt::new(stage, need, &mut state))
                }
                Compiled::Unpack(need) => Rt::Unpack(UnpackParser::new(need.clone())),
                Compiled::LabelFilter(filter) => Rt::LabelFilter(bind_filter(filter, &mut state)),
                Compiled::LineFormat(template) => Rt::LineFormat(template),
                Compiled::LabelFormat(formats) => {
                    let first_template = formats
                        .iter()
                        .position(|f| matches!(f, Format::Template(..)));
                    let snapshot = first_template.is_some_and(|i| i + 1 < formats.len());
                    Rt::LabelFormat(
                        formats
                            .iter()
                            .map(|format| match format {
                                Format::Rename(dst, src) => {
                                    RtFormat::Rename(state.intern(dst), state.intern(src))
                                }
                                Format::Template(dst, template) => {
                                    RtFormat::Template(state.intern(dst), template)
                                }
                            })
                            .collect(),
                        snapshot,
                    )
                }
                Compiled::Drop(matchers) => Rt::Drop(bind_matchers(matchers, &mut state)),
                Compiled::Keep(matchers) => Rt::Keep(bind_matchers(matchers, &mut state)),
                Compiled::Decolorize => Rt::Decolorize,
            })
            .collect();
        StreamPipeline {
            stream: stream_labels.clone(),
            state,
            stages,
            line_buf: String::new(),
            scratch: String::new(),
            results: ResultLabels::default(),
            regex_cache: RegexCache::default(),
            ids: Vec::new(),
            snapshot: Snapshot::default(),
            rename_buf: String::new(),
        }
    }
}

/// For each stage: what a parser there must produce, and whether it may
/// stop early (nothing downstream reads `__error__`).
fn plan_needs(stages: &[Stage], required: Option<&[&str]>) -> Vec<(Need, bool)> {
    let mut need = match required {
        None => Need::All,
        Some(names) => Need::Some(names.iter().map(|n| n.to_string()).collect()),
    };
    let mut reads_error = false;
    let mut plan = vec![(Need::All, false); stages.len()];
    let add = |need: &mut Need, reads_error: &mut bool, name: &str| {
        if name == ERROR_LABEL || name == ERROR_DETAILS_LABEL {
            *reads_error = true;
            return;
        }
        if let Need::Some(names) = need {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
    };
    let add_refs = |need: &mut Need, reads_error: &mut bool, source: &str| match Template::parse(
        "line", source,
    ) {
        Ok(template) => match template.refs() {
            Refs::All => {
                *need = Need::All;
                *reads_error = true;
            }
            Refs::Names(names) => {
                for name in names {
                    add(need, reads_error, name);
                }
            }
        },
        Err(_) => *need = Need::All,
    };
    for (index, stage) in stages.iter().enumerate().rev() {
        match stage {
            Stage::LabelFilter(filter) => {
                // Numeric, duration, bytes and ip filters pass an entry that
                // has an error: they read `__error__`, so a parser before
                // them must not stop early and miss a malformed tail.
                if !only_string_matchers(filter) {
                    reads_error = true;
                }
                let mut names = Vec::new();
                filter_names(filter, &mut names);
                for name in names {
                    add(&mut need, &mut reads_error, name);
                }
            }
            Stage::LineFormat(source) => add_refs(&mut need, &mut reads_error, source),
            Stage::LabelFormat(formats) => {
                for format in formats {
                    match format {
                        LabelFormat::Rename { src, dst } => {
                            add(&mut need, &mut reads_error, src);
                            add(&mut need, &mut reads_error, dst);
                        }
                        LabelFormat::Template { template, .. } => {
                            add_refs(&mut need, &mut reads_error, template)
                        }
                    }
                }
            }
            Stage::Drop(matchers) => {
                for m in matchers {
                    match m {
                        NamedMatcher::Name(name) => {
                            if name == ERROR_LABEL || name == ERROR_DETAILS_LABEL {
                                reads_error = true;
                            }
                        }
                        NamedMatcher::Matcher(m) => add(&mut need, &mut reads_error, &m.name),
                    }
                }
            }
            Stage::Keep(matchers) => {
                let kept: Vec<String> = matchers
                    .iter()
                    .map(|m| match m {
                        NamedMatcher::Name(name) => name.clone(),
                        NamedMatcher::Matcher(m) => m.name.clone(),
                    })
                    .collect();
                need = match need {
                    Need::All => Need::Some(kept),
                    Need::Some(names) => {
                        Need::Some(names.into_iter().filter(|n| kept.contains(n)).collect())
                    }
                };
            }
            Stage::Json(_)
            | Stage::Logfmt(_)
            | Stage::Regexp(_)
            | Stage::Pattern(_)
            | Stage::Unpack => {
                let early = matches!(need, Need::Some(_)) && !reads_error;
                plan[index] = (need.clone(), early);
            }
            Stage::LineFilter(_) | Stage::Decolorize => {}
        }
    }
    plan
}

fn only_string_matchers(filter: &LabelFilter) -> bool {
    match filter {
        LabelFilter::Matcher(_) => true,
        LabelFilter::Number { .. }
        | LabelFilter::Duration { .. }
        | LabelFilter::Bytes { .. }
        | LabelFilter::Ip { .. } => false,
        LabelFilter::And(a, b) | LabelFilter::Or(a, b) => {
            only_string_matchers(a) && only_string_matchers(b)
        }
    }
}

fn filter_names<'f>(filter: &'f LabelFilter, out: &mut Vec<&'f str>) {
    match filter {
        LabelFilter::Matcher(m) => out.push(&m.name),
        LabelFilter::Number { name, .. }
        | LabelFilter::Duration { name, .. }
        | LabelFilter::Bytes { name, .. }
        | LabelFilter::Ip { name, .. } => out.push(name),
        LabelFilter::And(a, b) | LabelFilter::Or(a, b) => {
            filter_names(a, out);
            filter_names(b, out);
        }
    }
}

fn compile_filter(filter: &LabelFilter) -> Result<Filter, PipelineError> {
    Ok(match filter {
        LabelFilter::Matcher(m) => Filter::Matcher(m.clone()),
        LabelFilter::Number { name, op, value } => Filter::Number(name.clone(), *op, *value),
        LabelFilter::Duration { name, op, value } => Filter::Duration(name.clone(), *op, *value),
        LabelFilter::Bytes { name, op, value } => Filter::Bytes(name.clone(), *op, *value),
        LabelFilter::Ip {
            name,
            equal,
            pattern,
        } => Filter::Ip(
            name.clone(),
            IpPattern::parse(pattern).ok_or_else(|| PipelineError("ip: invalid pattern".into()))?,
            *equal,
        ),
        LabelFilter::And(a, b) => {
            Filter::And(Box::new(compile_filter(a)?), Box::new(compile_filter(b)?))
        }
        LabelFilter::Or(a, b) => {
            Filter::Or(Box::new(compile_filter(a)?), Box::new(compile_filter(b)?))
        }
    })
}

/// What a matcher or filter reads.
#[derive(Debug, Clone, Copy)]
enum Target {
    Err,
    Details,
    Label(u32),
}

fn target(name: &str, state: &mut LabelState) -> Target {
    match name {
        ERROR_LABEL => Target::Err,
        ERROR_DETAILS_LABEL => Target::Details,
        _ => Target::Label(state.intern(name)),
    }
}

fn read(target: Target, state: &LabelState) -> Option<&str> {
    match target {
        Target::Err => state.err(),
        Target::Details => state.details(),
        Target::Label(id) => state.get(id),
    }
}

enum RtFilter<'p> {
    Matcher(&'p Matcher, Target),
    Number(u32, CmpOp, f64),
    Duration(u32, CmpOp, i64),
    Bytes(u32, CmpOp, u64),
    Ip(u32, &'p IpPattern, bool),
    And(Box<RtFilter<'p>>, Box<RtFilter<'p>>),
    Or(Box<RtFilter<'p>>, Box<RtFilter<'p>>),
}

fn bind_filter<'p>(filter: &'p Filter, state: &mut LabelState) -> RtFilter<'p> {
    match filter {
        Filter::Matcher(m) => RtFilter::Matcher(m, target(&m.name, state)),
        Filter::Number(name, op, value) => RtFilter::Number(state.intern(name), *op, *value),
        Filter::Duration(name, op, value) => RtFilter::Duration(state.intern(name), *op, *value),
        Filter::Bytes(name, op, value) => RtFilter::Bytes(state.intern(name), *op, *value),
        Filter::Ip(name, pattern, equal) => RtFilter::Ip(state.intern(name), pattern, *equal),
        Filter::And(a, b) => RtFilter::And(
            Box::new(bind_filter(a, state)),
            Box::new(bind_filter(b, state)),
        ),
        Filter::Or(a, b) => RtFilter::Or(
            Box::new(bind_filter(a, state)),
            Box::new(bind_filter(b, state)),
        ),
    }
}

/// Converts a label for a numeric/duration/bytes comparison: `None` when
/// the filter has decided (error already set ⇒ pass, missing ⇒ drop, or
/// unconvertible ⇒ `LabelFilterErr` and pass).
fn convert<T>(
    id: u32,
    state: &mut LabelState,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<T, bool> {
    if state.has_err() {
        return Err(true);
    }
    let Some(value) = state.get(id) else {
        return Err(false);
    };
    match parse(value) {
        Ok(parsed) => Ok(parsed),
        Err(message) => {
            state.set_error(ERR_LABEL_FILTER, &message);
            Err(true)
        }
    }
}

fn eval_filter(filter: &RtFilter<'_>, state: &mut LabelState) -> bool {
    match filter {
        RtFilter::Matcher(m, target) => m.matches(read(*target, state).unwrap_or("")),
        RtFilter::Number(id, op, value) => match convert(*id, state, parse_float_go) {
            Ok(parsed) => op.compare(parsed, *value),
            Err(decided) => decided,
        },
        RtFilter::Duration(id, op, value) => match convert(*id, state, parse_duration_go) {
            Ok(parsed) => op.compare(parsed, *value),
            Err(decided) => decided,
        },
        RtFilter::Bytes(id, op, value) => match convert(*id, state, parse_bytes_go) {
            Ok(parsed) => op.compare(parsed, *value),
            Err(decided) => decided,
        },
        RtFilter::Ip(id, pattern, equal) => {
            if state.has_err() {
                return true;
            }
            match state.get(*id) {
                None => false,
                Some(value) => pattern.matches_str(value) == *equal,
            }
        }
        RtFilter::And(a, b) => {
            let left = eval_filter(a, state);
            let right = eval_filter(b, state);
            left && right
        }
        RtFilter::Or(a, b) => eval_filter(a, state) || eval_filter(b, state),
    }
}

enum RtMatcher<'p> {
    Name(Target),
    Matcher(&'p Matcher, Target),
}

fn bind_matchers<'p>(matchers: &'p [NamedMatcher], state: &mut LabelState) -> Vec<RtMatcher<'p>> {
    matchers
        .iter()
        .map(|m| match m {
            NamedMatcher::Name(name) => RtMatcher::Name(target(name, state)),
            NamedMatcher::Matcher(m) => RtMatcher::Matcher(m, target(&m.name, state)),
        })
        .collect()
}

fn remove(target: Target, state: &mut LabelState) {
    match target {
        Target::Err => state.reset_err(),
        Target::Details => state.reset_details(),
        Target::Label(id) => state.del(id),
    }
}

enum RtFormat<'p> {
    Rename(u32, u32),
    Template(u32, &'p Template),
}

enum Rt<'p> {
    LineFilter(&'p LineFilter),
    Json(JsonParser),
    JsonExpr(JsonExprParser<'p>),
    Logfmt(LogfmtParser),
    LogfmtExpr(LogfmtExprParser<'p>),
    Regexp(RegexpRt<'p>),
    Pattern(PatternRt<'p>),
    Unpack(UnpackParser),
    LabelFilter(RtFilter<'p>),
    LineFormat(&'p Template),
    LabelFormat(Vec<RtFormat<'p>>, bool),
    Drop(Vec<RtMatcher<'p>>),
    Keep(Vec<RtMatcher<'p>>),
    Decolorize,
}

/// Template data over the live label state.
struct StateView<'s>(&'s LabelState);

impl Data for StateView<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get_by_name(name)
    }

    fn each(&self, visit: &mut dyn FnMut(&str, &str)) {
        self.0.for_each(|n, v| visit(n, v));
    }
}

/// A copy of the labels (label_format templates after the first one).
#[derive(Default)]
struct Snapshot {
    text: String,
    spans: Vec<(u32, u32, u32)>,
}

impl Snapshot {
    fn fill(&mut self, state: &LabelState) {
        self.text.clear();
        self.spans.clear();
        let (text, spans) = (&mut self.text, &mut self.spans);
        state.for_each(|name, value| {
            let start = text.len() as u32;
            text.push_str(name);
            let mid = text.len() as u32;
            text.push_str(value);
            spans.push((start, mid, text.len() as u32));
        });
    }
}

impl Data for Snapshot {
    fn get(&self, name: &str) -> Option<&str> {
        self.spans
            .iter()
            .find(|(s, m, _)| &self.text[*s as usize..*m as usize] == name)
            .map(|(_, m, e)| &self.text[*m as usize..*e as usize])
    }

    fn each(&self, visit: &mut dyn FnMut(&str, &str)) {
        for (s, m, e) in &self.spans {
            visit(
                &self.text[*s as usize..*m as usize],
                &self.text[*m as usize..*e as usize],
            );
        }
    }
}

/// Bound on the per-stream cache of result label sets.
const LABEL_CACHE_CAP: usize = 4096;

/// A pipeline bound to one stream; keeps reusable buffers between entries.
pub struct StreamPipeline<'p> {
    stream: LabelSet,
    state: LabelState,
    stages: Vec<Rt<'p>>,
    line_buf: String,
    scratch: String,
    results: ResultLabels,
    regex_cache: RegexCache,
    ids: Vec<u32>,
    snapshot: Snapshot,
    rename_buf: String,
}

/// One processed entry: the (possibly rewritten) line and its labels.
#[derive(Debug, Clone, Copy)]
pub struct Processed<'a> {
    /// The line after every stage.
    pub line: &'a str,
    /// Stream labels plus extracted ones, minus dropped, with the error pair.
    pub labels: &'a LabelSet,
}

impl<'p> StreamPipeline<'p> {
    /// The stream labels this pipeline was bound to.
    pub fn stream_labels(&self) -> &LabelSet {
        &self.stream
    }

    /// Runs every stage on one entry; `None` when a filter drops it. The
    /// labels are the stream labels plus extracted ones, minus dropped, with
    /// `__error__` / `__error_details__` exactly when Loki sets them.
    pub fn process<'a>(&'a mut self, ts_ns: i64, line: &'a str) -> Option<Processed<'a>> {
        let StreamPipeline {
            stream,
            state,
            stages,
            line_buf,
            scratch,
            results,
            regex_cache,
            ids,
            snapshot,
            rename_buf,
        } = self;
        state.reset();
        let mut rewritten = false;
        for stage in stages.iter_mut() {
            let current: &str = if rewritten { line_buf.as_str() } else { line };
            match stage {
                Rt::LineFilter(filter) => {
                    if !filter.matches(current.as_bytes()) {
                        return None;
                    }
                }
                Rt::Json(parser) => parser.process(current, state),
                Rt::JsonExpr(parser) => parser.process(current, state),
                Rt::Logfmt(parser) => parser.process(current, state),
                Rt::LogfmtExpr(parser) => parser.process(current, state),
                Rt::Regexp(parser) => parser.process(current, state),
                Rt::Pattern(parser) => parser.process(current, state),
                Rt::Unpack(parser) => {
                    if parser.process(current, state, scratch) {
                        std::mem::swap(line_buf, scratch);
                        rewritten = true;
                    }
                }
                Rt::LabelFilter(filter) => {
                    if !eval_filter(filter, state) {
                        return None;
                    }
                }
                Rt::LineFormat(template) => {
                    match template.execute(&StateView(state), current, ts_ns, regex_cache, scratch)
                    {
                        Ok(()) => {
                            std::mem::swap(line_buf, scratch);
                            rewritten = true;
                        }
                        Err(message) => state.set_error(ERR_TEMPLATE_FORMAT, &message),
                    }
                }
                Rt::LabelFormat(formats, use_snapshot) => {
                    let mut frozen = false;
                    for format in formats.iter() {
                        match format {
                            RtFormat::Rename(dst, src) => {
                                if let Some(value) = state.get(*src) {
                                    rename_buf.clear();
                                    rename_buf.push_str(value);
                                    state.set(*dst, rename_buf);
                                    state.del(*src);
                                }
                            }
                            RtFormat::Template(dst, template) => {
                                let result = if *use_snapshot {
                                    if !frozen {
                                        snapshot.fill(state);
                                        frozen = true;
                                    }
                                    template.execute(
                                        &*snapshot,
                                        current,
                                        ts_ns,
                                        regex_cache,
                                        scratch,
                                    )
                                } else {
                                    template.execute(
                                        &StateView(state),
                                        current,
                                        ts_ns,
                                        regex_cache,
                                        scratch,
                                    )
                                };
                                match result {
                                    Ok(()) => state.set(*dst, scratch),
                                    Err(message) => state.set_error(ERR_TEMPLATE_FORMAT, &message),
                                }
                            }
                        }
                    }
                }
                Rt::Drop(matchers) => {
                    for m in matchers.iter() {
                        match m {
                            RtMatcher::Name(target) => remove(*target, state),
                            RtMatcher::Matcher(m, target) => {
                                if m.matches(read(*target, state).unwrap_or("")) {
                                    remove(*target, state);
                                }
                            }
                        }
                    }
                }
                Rt::Keep(matchers) => {
                    if !matchers.is_empty() {
                        state.visible_ids(ids);
                        for &id in ids.iter() {
                            let value = state.get(id).unwrap_or("");
                            let keep = matchers.iter().any(|m| match m {
                                RtMatcher::Name(Target::Label(k)) => *k == id,
                                RtMatcher::Matcher(m, Target::Label(k)) => {
                                    *k == id && m.matches(value)
                                }
                                _ => false,
                            });
                            if !keep {
                                state.del(id);
                            }
                        }
                    }
                }
                Rt::Decolorize => {
                    if decolorize(current, scratch) {
                        std::mem::swap(line_buf, scratch);
                        rewritten = true;
                    }
                }
            }
        }
        let labels = results.labels(stream, state);
        let line = if rewritten { line_buf.as_str() } else { line };
        Some(Processed { line, labels })
    }
}

/// Probes of the label-set cache per adaptation window.
const CACHE_WINDOW: u32 = 256;
/// A window with fewer hits than this turns the cache off for a while.
const CACHE_MIN_HITS: u32 = CACHE_WINDOW / 8;
/// Entries built without the cache after a window that kept missing.
const CACHE_BYPASS: u32 = 16 * CACHE_WINDOW;

/// Builds the label sets of a stream's entries.
///
/// The visible labels of an entry come unsorted from the [`LabelState`]
/// (stream labels, then extracted ones in line order). Consecutive lines of
/// a stream nearly always carry the same names in the same order, so the
/// name order is computed once per distinct name sequence and reused. Equal
/// sets are shared through a bounded cache keyed by hash, which is bypassed
/// while it keeps missing (e.g. a unique trace id per line): then every set
/// is built directly and nothing else is retained.
#[derive(Default)]
struct ResultLabels {
    /// Visible labels of the current entry, unsorted.
    entries: Vec<Entry>,
    /// Name keys of the entry sequence `order` was computed for.
    order_keys: Vec<u32>,
    /// Positions into that sequence, in name order.
    order: Vec<u32>,
    /// The current entry's labels in name order.
    sorted: Vec<Entry>,
    cache: HashMap<u64, LabelSet, IdentityBuild>,
    /// The last set built while the cache is bypassed.
    last: LabelSet,
    probes: u32,
    hits: u32,
    /// Entries left to build without the cache.
    bypass: u32,
}

/// The key of an entry's name (the order of entries depends only on it).
#[inline]
fn name_key(entry: Entry) -> u32 {
    match entry {
        Entry::Base(id, _) | Entry::Added(id, _, _) => id,
        Entry::Err => u32::MAX - 1,
        Entry::Details => u32::MAX - 2,
    }
}

impl ResultLabels {
    /// The label set of the current entry (the stream's own set when the
    /// stages changed nothing, a cached equal set when there is one).
    fn labels<'s>(&'s mut self, stream: &'s LabelSet, state: &LabelState) -> &'s LabelSet {
        if state.is_unchanged() {
            return stream;
        }
        state.entries(&mut self.entries);
        self.sort(state);
        let mut hasher = Hash64::default();
        let mut total = 0usize;
        for entry in &self.sorted {
            let (name, value) = state.entry(*entry);
            hasher.write_str(name);
            hasher.write_str(value);
            total += name.len() + value.len();
        }
        let hash = hasher.finish64();
        let build = |sorted: &[Entry]| {
            LabelSet::from_sorted_parts(
                sorted.len(),
                total,
                sorted.iter().map(|e| state.entry(*e)),
                hash,
            )
        };
        if self.bypass > 0 {
            self.bypass -= 1;
            self.last = build(&self.sorted);
            return &self.last;
        }
        let sorted = &self.sorted;
        let hit = self.cache.get(&hash).is_some_and(|cached| {
            cached.len() == sorted.len()
                && cached
                    .iter()
                    .zip(sorted.iter())
                    .all(|(pair, entry)| pair == state.entry(*entry))
        });
        self.probes += 1;
        self.hits += u32::from(hit);
        if self.probes == CACHE_WINDOW {
            if self.hits < CACHE_MIN_HITS {
                self.bypass = CACHE_BYPASS;
                self.cache.clear();
            }
            self.probes = 0;
            self.hits = 0;
        }
        if hit {
            return self.cache.get(&hash).unwrap_or(stream);
        }
        let set = build(sorted);
        if self.bypass > 0 {
            self.last = set;
            return &self.last;
        }
        if self.cache.len() >= LABEL_CACHE_CAP {
            self.cache.clear();
        }
        self.cache.entry(hash).insert_entry(set).into_mut()
    }

    /// Fills `sorted` with `entries` in name order (ties keep their
    /// order), reusing the order of the previous entry when the names are
    /// the same sequence.
    fn sort(&mut self, state: &LabelState) {
        let entries = &self.entries;
        let same = self.order_keys.len() == entries.len()
            && entries
                .iter()
                .zip(&self.order_keys)
                .all(|(entry, key)| name_key(*entry) == *key);
        if !same {
            self.order_keys.clear();
            self.order_keys.extend(entries.iter().map(|e| name_key(*e)));
            self.order.clear();
            self.order.extend(0..entries.len() as u32);
            self.order.sort_by(|a, b| {
                let a = state.entry(entries[*a as usize]).0;
                let b = state.entry(entries[*b as usize]).0;
                a.cmp(b)
            });
        }
        self.sorted.clear();
        self.sorted
            .extend(self.order.iter().map(|&i| entries[i as usize]));
    }
}
