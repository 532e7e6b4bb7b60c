//! Which entries a log pipeline keeps, decided where the data lives.
//!
//! A query such as `{app="api"} | json | level="error"` drops most lines in
//! its pipeline. Ingesters and the store run an [`EntryFilter`] over the
//! raw entries and send only those the pipeline would keep, unchanged; the
//! querier then runs the whole pipeline on what arrives. Only the stages up
//! to the last filter are compiled, and parsers extract just the labels
//! those filters read, so deciding costs less than processing.
//!
//! The decision is exact: an entry is kept exactly when the full pipeline
//! returns it, so a source can apply a query's limit to the kept entries.

use crate::ast::Stage;
use crate::filter::LineFilterChain;
use crate::labelset::LabelSet;
use crate::pipeline::{Pipeline, PipelineError, StreamPipeline};

/// The keep-or-drop part of a pipeline, shared by every stream of a query.
#[derive(Debug, Clone)]
pub struct EntryFilter {
    kind: Kind,
    /// What every kept line contains (see [`EntryFilter::required_substrings`]).
    required: Vec<Vec<u8>>,
}

#[derive(Debug, Clone)]
enum Kind {
    /// Only line filters: the line alone decides.
    Lines(LineFilterChain),
    /// Parsers, label filters or rewrites before a filter.
    Pipeline(Pipeline),
}

impl EntryFilter {
    /// Compiles the stages of a pipeline up to its last line or label
    /// filter (the later ones never drop an entry).
    pub fn new(stages: &[Stage]) -> Result<EntryFilter, PipelineError> {
        let end = stages
            .iter()
            .rposition(|stage| matches!(stage, Stage::LineFilter(_) | Stage::LabelFilter(_)))
            .map_or(0, |last| last + 1);
        let stages = &stages[..end];
        let required = LineFilterChain::new(stages).required_substrings();
        let kind = if stages
            .iter()
            .all(|stage| matches!(stage, Stage::LineFilter(_)))
        {
            Kind::Lines(LineFilterChain::new(stages))
        } else {
            Kind::Pipeline(Pipeline::new_with_required(stages, Some(&[]))?)
        };
        Ok(EntryFilter { kind, required })
    }

    /// The byte strings every kept entry's line contains: the patterns of
    /// the case-sensitive `|=` filters that test the original line.
    pub fn required_substrings(&self) -> &[Vec<u8>] {
        &self.required
    }

    /// Binds the filter to one stream; `stream_labels` is only called when
    /// the decision depends on labels.
    pub fn for_stream(&self, stream_labels: impl FnOnce() -> LabelSet) -> StreamEntryFilter<'_> {
        StreamEntryFilter {
            kind: match &self.kind {
                Kind::Lines(filters) => StreamKind::Lines(filters),
                Kind::Pipeline(pipeline) => {
                    StreamKind::Pipeline(Box::new(pipeline.for_stream(&stream_labels())))
                }
            },
        }
    }
}

/// An [`EntryFilter`] bound to one stream.
pub struct StreamEntryFilter<'p> {
    kind: StreamKind<'p>,
}

enum StreamKind<'p> {
    Lines(&'p LineFilterChain),
    Pipeline(Box<StreamPipeline<'p>>),
}

impl StreamEntryFilter<'_> {
    /// Whether the pipeline keeps the entry.
    pub fn keeps(&mut self, ts_ns: i64, line: &str) -> bool {
        match &mut self.kind {
            StreamKind::Lines(filters) => filters.matches(line.as_bytes()),
            StreamKind::Pipeline(pipeline) => pipeline.process(ts_ns, line).is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::{Expr, LogExpr};

    fn log(query: &str) -> LogExpr {
        match crate::parse_expr(query).unwrap() {
            Expr::Log(log) => log,
            other => panic!("not a log query: {other}"),
        }
    }

    fn labels() -> LabelSet {
        LabelSet::new(vec![("app".to_string(), "api".to_string())])
    }

    /// The filter keeps exactly the entries the whole pipeline returns.
    fn assert_agrees(query: &str, lines: &[&str]) {
        let log = log(query);
        let filter = EntryFilter::new(&log.pipeline).unwrap();
        let pipeline = Pipeline::new(&log.pipeline).unwrap();
        let labels = labels();
        let mut keep = filter.for_stream(|| labels.clone());
        let mut full = pipeline.for_stream(&labels);
        for (ts, line) in lines.iter().enumerate() {
            assert_eq!(
                keep.keeps(ts as i64, line),
                full.process(ts as i64, line).is_some(),
                "{query} on {line}"
            );
        }
    }

    const LINES: &[&str] = &[
        r#"{"level":"error","duration":"7s","status":500,"msg":"boom"}"#,
        r#"{"level":"info","duration":"1s","status":200,"msg":"ok"}"#,
        r#"{"level":"error","duration":"1s","status":503"#,
        r#"{"duration":1, "level":"warn" garbage"#,
        "level=error duration=9s status=500 msg=\"logfmt line\"",
        "level=info duration=x status=oops",
        "not structured at all",
        "",
    ];

    #[test]
    fn keeps_what_the_pipeline_keeps() {
        for query in [
            r#"{app="api"} | json | level="error""#,
            r#"{app="api"} | json | status >= 500"#,
            r#"{app="api"} | json | duration > 5s"#,
            r#"{app="api"} | json | __error__="""#,
            r#"{app="api"} | json | __error__!="""#,
            r#"{app="api"} | logfmt | level=~"err.*" or status > 499"#,
            r#"{app="api"} | logfmt | line_format "{{.level}}" |= "error""#,
            r#"{app="api"} |= "error" | json | line_format "{{.msg}}""#,
            r#"{app="api"} | json | label_format lvl=level | lvl="info""#,
            r#"{app="api"} | regexp "level=(?P<lvl>\\w+)" | lvl="error""#,
            r#"{app="api"} | json | drop level | level="""#,
            r#"{app="api"} |= "error" != "boom""#,
            r#"{app="api"} |~ "duration=[0-9]s" or "status\":5""#,
        ] {
            assert_agrees(query, LINES);
        }
    }

    #[test]
    fn a_number_filter_sees_the_error_of_a_malformed_tail() {
        // The parser finds `duration` and must still read on to the
        // malformed tail: the error makes the number filter pass the entry.
        let query = r#"{app="api"} | json | duration < 0"#;
        assert_agrees(query, &[r#"{"duration":1, "level":"warn" garbage"#]);
        let filter = EntryFilter::new(&log(query).pipeline).unwrap();
        assert!(filter
            .for_stream(labels)
            .keeps(0, r#"{"duration":1, "level":"warn" garbage"#));
    }

    #[test]
    fn stages_after_the_last_filter_are_not_run() {
        let filter = EntryFilter::new(
            &log(r#"{app="api"} |= "x" | json | line_format "{{.msg}}""#).pipeline,
        )
        .unwrap();
        let mut keep = filter.for_stream(labels);
        assert!(keep.keeps(0, "x but not json"));
        assert!(!keep.keeps(1, "nothing"));
    }
}
