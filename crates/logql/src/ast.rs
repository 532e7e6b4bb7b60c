//! The LogQL abstract syntax tree. Parenthesis are not represented: the
//! printer adds them where precedence needs them. Durations are nanoseconds.

use crate::filter::{LineFilter, LineFilterChain};
use crate::matcher::Matcher;

/// A parsed LogQL query.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A log query: `{app="foo"} |= "x" | json`.
    Log(LogExpr),
    /// `count_over_time({…}[5m])`, `quantile_over_time(0.9, … | unwrap x [5m]) by (a)`.
    RangeAggregation(RangeAggregation),
    /// `sum by (a) (…)`, `topk(5, …)`.
    VectorAggregation(VectorAggregation),
    /// `a + b`, `a > bool 1`, `a / on(x) group_left b`.
    BinOp(BinOpExpr),
    /// A number literal (the sign is part of the literal: `-1`).
    Literal(f64),
    /// `vector(1)`.
    Vector(f64),
    /// `label_replace(…, "dst", "replacement", "src", "regex")`.
    LabelReplace(LabelReplace),
}

impl Expr {
    /// Returns true for sample (metric) expressions, false for log queries.
    pub fn is_metric(&self) -> bool {
        !matches!(self, Expr::Log(_))
    }

    /// Returns the log query if this is one.
    pub fn as_log(&self) -> Option<&LogExpr> {
        match self {
            Expr::Log(log) => Some(log),
            _ => None,
        }
    }

    /// Calls `visit` on every log expression (selector + pipeline) in the tree,
    /// left to right.
    pub fn for_each_log_expr<'a>(&'a self, visit: &mut dyn FnMut(&'a LogExpr)) {
        match self {
            Expr::Log(log) => visit(log),
            Expr::RangeAggregation(agg) => visit(&agg.range.log),
            Expr::VectorAggregation(agg) => agg.inner.for_each_log_expr(visit),
            Expr::BinOp(bin) => {
                bin.lhs.for_each_log_expr(visit);
                bin.rhs.for_each_log_expr(visit);
            }
            Expr::LabelReplace(replace) => replace.inner.for_each_log_expr(visit),
            Expr::Literal(_) | Expr::Vector(_) => {}
        }
    }

    /// Returns the longest `[range]` of any range aggregation in the tree,
    /// in nanoseconds (0 when there is none).
    pub fn max_range(&self) -> i64 {
        match self {
            Expr::RangeAggregation(agg) => agg.range.range,
            Expr::VectorAggregation(agg) => agg.inner.max_range(),
            Expr::BinOp(bin) => bin.lhs.max_range().max(bin.rhs.max_range()),
            Expr::LabelReplace(replace) => replace.inner.max_range(),
            Expr::Log(_) | Expr::Literal(_) | Expr::Vector(_) => 0,
        }
    }

    /// Returns true if the expression contains `sort` or `sort_desc`
    /// (instant query results keep their order then).
    pub fn has_sort(&self) -> bool {
        match self {
            Expr::VectorAggregation(agg) => {
                matches!(agg.op, VectorOp::Sort | VectorOp::SortDesc) || agg.inner.has_sort()
            }
            Expr::BinOp(bin) => bin.lhs.has_sort() || bin.rhs.has_sort(),
            Expr::LabelReplace(replace) => replace.inner.has_sort(),
            _ => false,
        }
    }
}

/// A stream selector followed by a (possibly empty) pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct LogExpr {
    /// The stream selector's matchers, in query order.
    pub matchers: Vec<Matcher>,
    /// Pipeline stages, in query order.
    pub pipeline: Vec<Stage>,
}

impl LogExpr {
    /// Returns the compiled chain of the line filters that test the original
    /// log line: those before the first stage that rewrites the line
    /// (`line_format`, `decolorize`, `unpack`). A line failing the chain is
    /// dropped by the whole pipeline.
    pub fn line_filters(&self) -> LineFilterChain {
        LineFilterChain::new(&self.pipeline)
    }

    /// Returns true if every pipeline stage is a line filter (so
    /// [`LogExpr::line_filters`] is the whole pipeline).
    pub fn has_only_line_filters(&self) -> bool {
        self.pipeline
            .iter()
            .all(|stage| matches!(stage, Stage::LineFilter(_)))
    }
}

/// One pipeline stage.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// `|= "x"`, `!~ "re"`, `|= ip("10.0.0.0/8")`, `|= "a" or "b"`.
    LineFilter(LineFilter),
    /// `| json` (no params: everything) or `| json a="x.y", b`.
    Json(Vec<LabelExtraction>),
    /// `| logfmt [--strict] [--keep-empty] [a="k", b]`.
    Logfmt(LogfmtParser),
    /// `| regexp "(?P<name>…)"` (validated: ≥1 named capture, unique valid names).
    Regexp(String),
    /// `| pattern "<ip> - <_>"` (validated).
    Pattern(String),
    /// `| unpack`.
    Unpack,
    /// `| level="error" and latency > 1s`.
    LabelFilter(LabelFilter),
    /// `| line_format "{{.msg}}"` (template kept as text).
    LineFormat(String),
    /// `| label_format a=b, c="{{.x}}"`.
    LabelFormat(Vec<LabelFormat>),
    /// `| drop a, b="v"`.
    Drop(Vec<NamedMatcher>),
    /// `| keep a, b="v"`.
    Keep(Vec<NamedMatcher>),
    /// `| decolorize`.
    Decolorize,
}

impl Stage {
    /// Returns true for stages that replace the log line.
    pub fn rewrites_line(&self) -> bool {
        matches!(
            self,
            Stage::LineFormat(_) | Stage::Decolorize | Stage::Unpack
        )
    }
}

/// `name="expression"` parameter of `json`/`logfmt`; a bare `name` has
/// `expression == name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelExtraction {
    /// The label to create.
    pub name: String,
    /// The JSON path / logfmt key to read.
    pub expression: String,
}

/// The `logfmt` parser stage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogfmtParser {
    /// `--strict`: stop and error on the first malformed pair.
    pub strict: bool,
    /// `--keep-empty`: keep standalone keys as empty labels.
    pub keep_empty: bool,
    /// Extraction parameters; empty means every key.
    pub params: Vec<LabelExtraction>,
}

/// One `label_format` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelFormat {
    /// `dst=src`: rename (the source label is removed).
    Rename {
        /// New label name.
        dst: String,
        /// Label renamed.
        src: String,
    },
    /// `dst="{{ template }}"`.
    Template {
        /// Label set.
        dst: String,
        /// Go text/template source.
        template: String,
    },
}

impl LabelFormat {
    /// The label the entry writes.
    pub fn dst(&self) -> &str {
        match self {
            LabelFormat::Rename { dst, .. } | LabelFormat::Template { dst, .. } => dst,
        }
    }
}

/// An entry of `drop`/`keep`: a bare name, or a matcher (acts only on match).
#[derive(Debug, Clone, PartialEq)]
pub enum NamedMatcher {
    /// `name`.
    Name(String),
    /// `name="v"`, `name=~"re"`…
    Matcher(Matcher),
}

/// Comparison operators of label filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=` or `==`.
    Eq,
    /// `!=`.
    Neq,
    /// `>`.
    Gt,
    /// `>=`.
    Gte,
    /// `<`.
    Lt,
    /// `<=`.
    Lte,
}

impl CmpOp {
    /// The canonical operator text.
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Neq => "!=",
            CmpOp::Gt => ">",
            CmpOp::Gte => ">=",
            CmpOp::Lt => "<",
            CmpOp::Lte => "<=",
        }
    }

    /// Applies the comparison.
    pub fn compare<T: PartialOrd>(self, left: T, right: T) -> bool {
        match self {
            CmpOp::Eq => left == right,
            CmpOp::Neq => left != right,
            CmpOp::Gt => left > right,
            CmpOp::Gte => left >= right,
            CmpOp::Lt => left < right,
            CmpOp::Lte => left <= right,
        }
    }
}

/// A label filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelFilter {
    /// String comparison `a="x"`, `a!="x"`, `a=~"re"`, `a!~"re"`.
    Matcher(Matcher),
    /// Numeric comparison `a > 1.5` (the label is parsed as a float).
    Number {
        /// Label name.
        name: String,
        /// Operator.
        op: CmpOp,
        /// Right-hand value.
        value: f64,
    },
    /// Duration comparison `latency > 250ms` (nanoseconds).
    Duration {
        /// Label name.
        name: String,
        /// Operator.
        op: CmpOp,
        /// Right-hand value in nanoseconds.
        value: i64,
    },
    /// Bytes comparison `size >= 1KB`.
    Bytes {
        /// Label name.
        name: String,
        /// Operator.
        op: CmpOp,
        /// Right-hand value in bytes.
        value: u64,
    },
    /// `addr = ip("10.0.0.0/8")` / `addr != ip(…)`; `equal` is false for `!=`.
    Ip {
        /// Label name.
        name: String,
        /// True for `=`, false for `!=`.
        equal: bool,
        /// The address, range or CIDR (validated).
        pattern: String,
    },
    /// Both sides must pass (`and`, `,` or juxtaposition).
    And(Box<LabelFilter>, Box<LabelFilter>),
    /// Either side passes.
    Or(Box<LabelFilter>, Box<LabelFilter>),
}

/// A log query over a range, the argument of a range aggregation.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRange {
    /// Selector and pipeline (without the unwrap).
    pub log: LogExpr,
    /// The `[range]`, in nanoseconds.
    pub range: i64,
    /// The `offset` in nanoseconds (0 when absent; may be negative).
    pub offset: i64,
    /// The `| unwrap …` stage and its post filters.
    pub unwrap: Option<Unwrap>,
}

/// `| unwrap [conv(]label[)] [| label filter …]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Unwrap {
    /// The label whose value becomes the sample.
    pub label: String,
    /// Conversion function, if any.
    pub conversion: Option<UnwrapConversion>,
    /// Label filters after the unwrap (`| unwrap x | __error__=""`).
    pub post_filters: Vec<LabelFilter>,
}

/// Conversion of an unwrapped value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnwrapConversion {
    /// `bytes(x)`: humanized bytes to a number.
    Bytes,
    /// `duration(x)`: Go duration to seconds.
    Duration,
    /// `duration_seconds(x)`: Go duration to seconds.
    DurationSeconds,
}

impl UnwrapConversion {
    /// The function name.
    pub fn as_str(self) -> &'static str {
        match self {
            UnwrapConversion::Bytes => "bytes",
            UnwrapConversion::Duration => "duration",
            UnwrapConversion::DurationSeconds => "duration_seconds",
        }
    }
}

macro_rules! named_ops {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal, $token:literal;)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// All operations.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The function name as written in LogQL.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }

            /// Looks an operation up by its LogQL name (case-sensitive).
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($text => Some($name::$variant),)* _ => None }
            }

            /// The token name Loki's parser prints in syntax errors.
            pub(crate) fn token_name(self) -> &'static str {
                match self { $($name::$variant => $token,)* }
            }
        }
    };
}

named_ops!(
    /// Range aggregation functions.
    RangeOp {
        /// `count_over_time`.
        CountOverTime => "count_over_time", "COUNT_OVER_TIME";
        /// `rate`.
        Rate => "rate", "RATE";
        /// `rate_counter` (unwrap).
        RateCounter => "rate_counter", "RATE_COUNTER";
        /// `bytes_over_time`.
        BytesOverTime => "bytes_over_time", "BYTES_OVER_TIME";
        /// `bytes_rate`.
        BytesRate => "bytes_rate", "BYTES_RATE";
        /// `avg_over_time` (unwrap).
        AvgOverTime => "avg_over_time", "AVG_OVER_TIME";
        /// `sum_over_time` (unwrap).
        SumOverTime => "sum_over_time", "SUM_OVER_TIME";
        /// `min_over_time` (unwrap).
        MinOverTime => "min_over_time", "MIN_OVER_TIME";
        /// `max_over_time` (unwrap).
        MaxOverTime => "max_over_time", "MAX_OVER_TIME";
        /// `stdvar_over_time` (unwrap).
        StdvarOverTime => "stdvar_over_time", "STDVAR_OVER_TIME";
        /// `stddev_over_time` (unwrap).
        StddevOverTime => "stddev_over_time", "STDDEV_OVER_TIME";
        /// `quantile_over_time(φ, …)` (unwrap).
        QuantileOverTime => "quantile_over_time", "QUANTILE_OVER_TIME";
        /// `first_over_time` (unwrap).
        FirstOverTime => "first_over_time", "FIRST_OVER_TIME";
        /// `last_over_time` (unwrap).
        LastOverTime => "last_over_time", "LAST_OVER_TIME";
        /// `absent_over_time`.
        AbsentOverTime => "absent_over_time", "ABSENT_OVER_TIME";
    }
);

impl RangeOp {
    /// Returns true if `by`/`without` may follow the call (Loki 2.8 list).
    pub fn allows_grouping(self) -> bool {
        matches!(
            self,
            RangeOp::AvgOverTime
                | RangeOp::StddevOverTime
                | RangeOp::StdvarOverTime
                | RangeOp::QuantileOverTime
                | RangeOp::MinOverTime
                | RangeOp::MaxOverTime
                | RangeOp::FirstOverTime
                | RangeOp::LastOverTime
        )
    }

    /// Returns true if the operation may be used with `| unwrap`.
    pub fn allows_unwrap(self) -> bool {
        !matches!(
            self,
            RangeOp::CountOverTime | RangeOp::BytesOverTime | RangeOp::BytesRate
        )
    }

    /// Returns true if the operation may be used without `| unwrap`.
    pub fn allows_no_unwrap(self) -> bool {
        matches!(
            self,
            RangeOp::CountOverTime
                | RangeOp::Rate
                | RangeOp::BytesOverTime
                | RangeOp::BytesRate
                | RangeOp::AbsentOverTime
        )
    }
}

named_ops!(
    /// Vector aggregation operators.
    VectorOp {
        /// `sum`.
        Sum => "sum", "SUM";
        /// `avg`.
        Avg => "avg", "AVG";
        /// `min`.
        Min => "min", "MIN";
        /// `max`.
        Max => "max", "MAX";
        /// `count`.
        Count => "count", "COUNT";
        /// `stddev`.
        Stddev => "stddev", "STDDEV";
        /// `stdvar`.
        Stdvar => "stdvar", "STDVAR";
        /// `topk(k, …)`.
        Topk => "topk", "TOPK";
        /// `bottomk(k, …)`.
        Bottomk => "bottomk", "BOTTOMK";
        /// `sort`.
        Sort => "sort", "SORT";
        /// `sort_desc`.
        SortDesc => "sort_desc", "SORT_DESC";
    }
);

/// `by (…)` / `without (…)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grouping {
    /// True for `without`.
    pub without: bool,
    /// The label names (may be empty: `by ()`).
    pub labels: Vec<String>,
}

/// A range aggregation.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeAggregation {
    /// The function.
    pub op: RangeOp,
    /// φ of `quantile_over_time` (the only function with a parameter).
    pub param: Option<f64>,
    /// The log range argument.
    pub range: LogRange,
    /// `by`/`without` after the call.
    pub grouping: Option<Grouping>,
}

/// A vector aggregation.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorAggregation {
    /// The operator.
    pub op: VectorOp,
    /// k of `topk`/`bottomk` (always > 0 there, `None` elsewhere).
    pub param: Option<i64>,
    /// `by`/`without` (before or after the arguments).
    pub grouping: Option<Grouping>,
    /// The aggregated expression.
    pub inner: Box<Expr>,
}

/// Binary operators, in LogQL spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinOp {
    /// `or`.
    Or,
    /// `and`.
    And,
    /// `unless`.
    Unless,
    /// `==`.
    Eq,
    /// `!=`.
    Neq,
    /// `>`.
    Gt,
    /// `>=`.
    Gte,
    /// `<`.
    Lt,
    /// `<=`.
    Lte,
    /// `+`.
    Add,
    /// `-`.
    Sub,
    /// `*`.
    Mul,
    /// `/`.
    Div,
    /// `%`.
    Mod,
    /// `^`.
    Pow,
}

impl BinOp {
    /// The operator text.
    pub fn as_str(self) -> &'static str {
        match self {
            BinOp::Or => "or",
            BinOp::And => "and",
            BinOp::Unless => "unless",
            BinOp::Eq => "==",
            BinOp::Neq => "!=",
            BinOp::Gt => ">",
            BinOp::Gte => ">=",
            BinOp::Lt => "<",
            BinOp::Lte => "<=",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Pow => "^",
        }
    }

    /// Precedence, 1 (`or`) to 6 (`^`).
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And | BinOp::Unless => 2,
            BinOp::Eq | BinOp::Neq | BinOp::Gt | BinOp::Gte | BinOp::Lt | BinOp::Lte => 3,
            BinOp::Add | BinOp::Sub => 4,
            BinOp::Mul | BinOp::Div | BinOp::Mod => 5,
            BinOp::Pow => 6,
        }
    }

    /// Returns true for `^`, the only right-associative operator.
    pub fn is_right_associative(self) -> bool {
        self == BinOp::Pow
    }

    /// Returns true for the set operators `and`, `or`, `unless`.
    pub fn is_set_operator(self) -> bool {
        matches!(self, BinOp::Or | BinOp::And | BinOp::Unless)
    }

    /// Returns true for comparison operators.
    pub fn is_comparison(self) -> bool {
        self.precedence() == 3
    }

    /// Applies the operator to two scalars, as Loki does when folding
    /// literals (comparisons give 1 or 0).
    pub fn apply_scalar(self, left: f64, right: f64) -> f64 {
        let truth = |b: bool| if b { 1.0 } else { 0.0 };
        match self {
            BinOp::Add => left + right,
            BinOp::Sub => left - right,
            BinOp::Mul => left * right,
            // Loki answers NaN for division and modulo by zero.
            BinOp::Div if right == 0.0 => f64::NAN,
            BinOp::Mod if right == 0.0 => f64::NAN,
            BinOp::Div => left / right,
            BinOp::Mod => left % right,
            BinOp::Pow => left.powf(right),
            BinOp::Eq => truth(left == right),
            BinOp::Neq => truth(left != right),
            BinOp::Gt => truth(left > right),
            BinOp::Gte => truth(left >= right),
            BinOp::Lt => truth(left < right),
            BinOp::Lte => truth(left <= right),
            // Set operators on scalars are rejected by the parser.
            BinOp::Or | BinOp::And | BinOp::Unless => f64::NAN,
        }
    }
}

/// Vector matching cardinality.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Cardinality {
    /// Default one-to-one.
    #[default]
    OneToOne,
    /// `group_left`.
    ManyToOne,
    /// `group_right`.
    OneToMany,
}

/// `on(…)`/`ignoring(…)` with optional `group_left(…)`/`group_right(…)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VectorMatching {
    /// True for `on`, false for `ignoring`.
    pub on: bool,
    /// The matching labels.
    pub labels: Vec<String>,
    /// Cardinality from `group_left`/`group_right`.
    pub card: Cardinality,
    /// Extra labels of `group_left(…)`/`group_right(…)`.
    pub include: Vec<String>,
}

/// A binary operation.
#[derive(Debug, Clone, PartialEq)]
pub struct BinOpExpr {
    /// The operator.
    pub op: BinOp,
    /// `bool` modifier of comparisons.
    pub return_bool: bool,
    /// `on`/`ignoring` clause, `None` when absent.
    pub matching: Option<VectorMatching>,
    /// Left operand.
    pub lhs: Box<Expr>,
    /// Right operand.
    pub rhs: Box<Expr>,
}

/// `label_replace(inner, dst, replacement, src, regex)`.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelReplace {
    /// The expression whose series are relabelled.
    pub inner: Box<Expr>,
    /// Destination label.
    pub dst: String,
    /// Replacement with `$1` references.
    pub replacement: String,
    /// Source label.
    pub src: String,
    /// The regex (anchored at evaluation; validated at parse time).
    pub regex: String,
}
