//! Recursive-descent / precedence-climbing LogQL parser following Loki's
//! goyacc grammar (`pkg/logql/syntax/syntax.y`): same accepted language,
//! same `syntax error: unexpected X, expecting Y` wording for the common
//! cases, same semantic checks (reported without position).
//!
//! Nesting is bounded by [`MAX_DEPTH`] (recursion and AST depth alike), so
//! no input can overflow the stack while parsing, printing or dropping.

use crate::ast::{
    BinOp, BinOpExpr, Cardinality, CmpOp, Expr, Grouping, LabelExtraction, LabelFilter,
    LabelFormat, LabelReplace, LogExpr, LogRange, LogfmtParser, NamedMatcher, RangeAggregation,
    RangeOp, Stage, Unwrap, UnwrapConversion, VectorAggregation, VectorMatching, VectorOp,
};
use crate::error::{regex_error_message, ParseError, EMPTY_COMPATIBLE_SELECTOR};
use crate::filter::{LineFilter, LineFilterAlt, LineFilterOp};
use crate::ip::{IpPattern, INVALID_IP_PATTERN};
use crate::lexer::{Lexer, Tok, Token};
use crate::matcher::{has_non_empty_matcher, MatchOp, Matcher};
use crate::pattern::parse_pattern;

/// Maximum nesting depth of expressions and label filters.
pub const MAX_DEPTH: usize = 256;

/// Parses and validates a query.
pub(crate) fn parse(input: &str) -> Result<Expr, ParseError> {
    let mut parser = Parser::new(input)?;
    let (expr, _) = parser.parse_binary(0)?;
    if parser.cur.tok != Tok::Eof {
        return Err(parser.unexpected(&[]));
    }
    validate_selectors(&expr)?;
    Ok(*expr)
}

/// Loki's post-parse check: every selector needs a matcher that rejects "".
fn validate_selectors(expr: &Expr) -> Result<(), ParseError> {
    let mut valid = true;
    expr.for_each_log_expr(&mut |log| valid &= has_non_empty_matcher(&log.matchers));
    if valid {
        Ok(())
    } else {
        Err(ParseError::semantic(EMPTY_COMPATIBLE_SELECTOR))
    }
}

/// What precedes the argument of a vector aggregation.
struct VectorAggregationHead {
    grouping_before: Option<Grouping>,
    param_text: Option<String>,
}

/// A label filter and the depth of its tree.
type FilterNode = (Box<LabelFilter>, usize);

/// An expression and the depth of its tree. Boxed so that the recursive
/// descent keeps small stack frames (debug builds reserve a slot per temporary).
type Node = (Box<Expr>, usize);

#[derive(Clone, Copy, PartialEq, Eq)]
enum FilterJoin {
    And,
    Or,
    /// `,` or juxtaposition: no precedence, so yacc always shifts.
    Unordered,
}

impl FilterJoin {
    fn precedence(self) -> Option<u8> {
        match self {
            FilterJoin::Or => Some(1),
            FilterJoin::And => Some(2),
            FilterJoin::Unordered => None,
        }
    }
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    cur: Token,
    next: Option<Token>,
    depth: usize,
}

fn binop_of(tok: &Tok) -> Option<BinOp> {
    Some(match tok {
        Tok::Or => BinOp::Or,
        Tok::And => BinOp::And,
        Tok::Unless => BinOp::Unless,
        Tok::CmpEq => BinOp::Eq,
        Tok::Neq => BinOp::Neq,
        Tok::Gt => BinOp::Gt,
        Tok::Gte => BinOp::Gte,
        Tok::Lt => BinOp::Lt,
        Tok::Lte => BinOp::Lte,
        Tok::Add => BinOp::Add,
        Tok::Sub => BinOp::Sub,
        Tok::Mul => BinOp::Mul,
        Tok::Div => BinOp::Div,
        Tok::Mod => BinOp::Mod,
        Tok::Pow => BinOp::Pow,
        _ => return None,
    })
}

/// Go's `%T` of a log expression in Loki's binary-operation type errors.
fn go_type_name(log: &LogExpr) -> &'static str {
    if log.pipeline.is_empty() {
        "*syntax.MatchersExpr"
    } else {
        "*syntax.PipelineExpr"
    }
}

/// Parses a number literal like Go's `strconv.ParseFloat`.
fn parse_float(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        Ok(_) => Err(format!(
            "strconv.ParseFloat: parsing \"{text}\": value out of range"
        )),
        Err(_) => Err(format!(
            "strconv.ParseFloat: parsing \"{text}\": invalid syntax"
        )),
    }
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Result<Self, ParseError> {
        let mut lexer = Lexer::new(input);
        let cur = lexer.next_token()?;
        Ok(Parser {
            lexer,
            cur,
            next: None,
            depth: 0,
        })
    }

    /// Moves to the next token, returning the current one.
    fn advance(&mut self) -> Result<Tok, ParseError> {
        let next = match self.next.take() {
            Some(token) => token,
            None => self.lexer.next_token()?,
        };
        Ok(std::mem::replace(&mut self.cur, next).tok)
    }

    /// The token after the current one.
    fn peek(&mut self) -> Result<&Tok, ParseError> {
        if self.next.is_none() {
            self.next = Some(self.lexer.next_token()?);
        }
        match &self.next {
            Some(token) => Ok(&token.tok),
            None => Ok(&Tok::Eof),
        }
    }

    /// `syntax error: unexpected <cur>[, expecting a or b]` at the current token.
    /// Like goyacc, the expected list is only given when it has ≤ 4 entries.
    fn unexpected(&self, expecting: &[&str]) -> ParseError {
        let mut message = format!("syntax error: unexpected {}", self.cur.tok);
        if !expecting.is_empty() && expecting.len() <= 4 {
            message.push_str(", expecting ");
            message.push_str(&expecting.join(" or "));
        }
        ParseError::at(self.cur.line, self.cur.col, message)
    }

    fn expect(&mut self, tok: Tok, expecting: &[&str]) -> Result<(), ParseError> {
        if self.cur.tok == tok {
            self.advance()?;
            Ok(())
        } else {
            Err(self.unexpected(expecting))
        }
    }

    fn expect_string(&mut self) -> Result<String, ParseError> {
        match &mut self.cur.tok {
            Tok::Str(value) => {
                let value = std::mem::take(value);
                self.advance()?;
                Ok(value)
            }
            _ => Err(self.unexpected(&["STRING"])),
        }
    }

    fn expect_ident(&mut self, expecting: &[&str]) -> Result<String, ParseError> {
        match &mut self.cur.tok {
            Tok::Ident(name) => {
                let name = std::mem::take(name);
                self.advance()?;
                Ok(name)
            }
            _ => Err(self.unexpected(expecting)),
        }
    }

    fn too_deep(&self) -> ParseError {
        ParseError::at(
            self.cur.line,
            self.cur.col,
            format!("syntax error: expression nested deeper than {MAX_DEPTH} levels"),
        )
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.too_deep());
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn check_depth(&self, depth: usize) -> Result<usize, ParseError> {
        if depth > MAX_DEPTH {
            Err(self.too_deep())
        } else {
            Ok(depth)
        }
    }

    // ----- expressions -------------------------------------------------

    fn parse_binary(&mut self, min_precedence: u8) -> Result<Node, ParseError> {
        self.enter()?;
        let mut lhs = self.parse_operand()?;
        while let Some(op) = binop_of(&self.cur.tok) {
            if op.precedence() < min_precedence {
                break;
            }
            lhs = self.parse_binary_rhs(op, lhs)?;
        }
        self.leave();
        Ok(lhs)
    }

    /// After `lhs`, the current token being `op`: modifiers, right operand.
    fn parse_binary_rhs(&mut self, op: BinOp, lhs: Node) -> Result<Node, ParseError> {
        self.advance()?;
        let return_bool = if self.cur.tok == Tok::Bool {
            self.advance()?;
            true
        } else {
            false
        };
        let matching = self.parse_vector_matching()?;
        let next_min = if op.is_right_associative() {
            op.precedence()
        } else {
            op.precedence() + 1
        };
        let rhs = self.parse_binary(next_min)?;
        self.make_binop(op, return_bool, matching, lhs, rhs)
    }

    fn make_binop(
        &self,
        op: BinOp,
        return_bool: bool,
        matching: Option<VectorMatching>,
        (lhs, lhs_depth): Node,
        (rhs, rhs_depth): Node,
    ) -> Result<Node, ParseError> {
        let symbol = op.as_str();
        if let Expr::Log(log) = &*lhs {
            return Err(ParseError::semantic(format!(
                "unexpected type for left leg of binary operation ({symbol}): {}",
                go_type_name(log)
            )));
        }
        if let Expr::Log(log) = &*rhs {
            return Err(ParseError::semantic(format!(
                "unexpected type for right leg of binary operation ({symbol}): {}",
                go_type_name(log)
            )));
        }
        if op.is_set_operator() {
            for (side, leg) in [("left", &lhs), ("right", &rhs)] {
                if let Expr::Literal(value) = &**leg {
                    return Err(ParseError::semantic(format!(
                        "unexpected literal for {side} leg of logical/set binary operation ({symbol}): {value:.6}"
                    )));
                }
            }
        }
        if return_bool && !op.is_comparison() {
            return Err(ParseError::semantic(
                "bool modifier can only be used on comparison operators",
            ));
        }
        if let (Expr::Literal(left), Expr::Literal(right)) = (&*lhs, &*rhs) {
            return Ok((Box::new(Expr::Literal(op.apply_scalar(*left, *right))), 1));
        }
        let depth = self.check_depth(lhs_depth.max(rhs_depth) + 1)?;
        Ok((
            Box::new(Expr::BinOp(BinOpExpr {
                op,
                return_bool,
                matching,
                lhs,
                rhs,
            })),
            depth,
        ))
    }

    fn parse_vector_matching(&mut self) -> Result<Option<VectorMatching>, ParseError> {
        let on = match self.cur.tok {
            Tok::On => true,
            Tok::Ignoring => false,
            _ => return Ok(None),
        };
        self.advance()?;
        self.expect(Tok::LParen, &["("])?;
        let labels = self.parse_label_list_body()?;
        let card = match self.cur.tok {
            Tok::GroupLeft => Cardinality::ManyToOne,
            Tok::GroupRight => Cardinality::OneToMany,
            _ => {
                return Ok(Some(VectorMatching {
                    on,
                    labels,
                    card: Cardinality::OneToOne,
                    include: Vec::new(),
                }))
            }
        };
        self.advance()?;
        let include = if self.cur.tok == Tok::LParen {
            self.advance()?;
            self.parse_label_list_body()?
        } else {
            Vec::new()
        };
        Ok(Some(VectorMatching {
            on,
            labels,
            card,
            include,
        }))
    }

    /// Parses `a, b)` or `)` after an opening parenthesis.
    fn parse_label_list_body(&mut self) -> Result<Vec<String>, ParseError> {
        let mut labels = Vec::new();
        if self.cur.tok == Tok::RParen {
            self.advance()?;
            return Ok(labels);
        }
        labels.push(self.expect_ident(&["IDENTIFIER", ")"])?);
        loop {
            match self.cur.tok {
                Tok::RParen => {
                    self.advance()?;
                    return Ok(labels);
                }
                Tok::Comma => {
                    self.advance()?;
                    labels.push(self.expect_ident(&["IDENTIFIER"])?);
                }
                _ => return Err(self.unexpected(&[",", ")"])),
            }
        }
    }

    fn parse_grouping(&mut self) -> Result<Option<Grouping>, ParseError> {
        let without = match self.cur.tok {
            Tok::By => false,
            Tok::Without => true,
            _ => return Ok(None),
        };
        self.advance()?;
        self.expect(Tok::LParen, &["("])?;
        let labels = self.parse_label_list_body()?;
        Ok(Some(Grouping { without, labels }))
    }

    fn parse_operand(&mut self) -> Result<Node, ParseError> {
        match self.cur.tok {
            Tok::LBrace => self.parse_log_operand(),
            Tok::LParen => self.parse_parenthesized_operand(),
            Tok::Number(_) | Tok::Add | Tok::Sub => self.parse_literal_operand(),
            Tok::RangeFn(op) => self.parse_range_aggregation(op),
            Tok::VectorFn(op) => self.parse_vector_aggregation(op),
            Tok::LabelReplace => self.parse_label_replace(),
            Tok::Vector => self.parse_vector_operand(),
            _ => Err(self.unexpected(&[])),
        }
    }

    fn parse_log_operand(&mut self) -> Result<Node, ParseError> {
        let log = self.parse_log_expr()?;
        if self.cur.tok == Tok::Pipe {
            // `| unwrap` outside of a range aggregation.
            self.advance()?;
            return Err(self.unexpected(&[]));
        }
        Ok((Box::new(Expr::Log(log)), 1))
    }

    fn parse_parenthesized_operand(&mut self) -> Result<Node, ParseError> {
        self.advance()?;
        let inner = self.parse_binary(0)?;
        self.expect(Tok::RParen, &[])?;
        Ok(inner)
    }

    fn parse_literal_operand(&mut self) -> Result<Node, ParseError> {
        Ok((Box::new(Expr::Literal(self.parse_signed_number()?)), 1))
    }

    fn parse_vector_operand(&mut self) -> Result<Node, ParseError> {
        self.advance()?;
        self.expect(Tok::LParen, &["("])?;
        let text = match &self.cur.tok {
            Tok::Number(text) => text.clone(),
            _ => return Err(self.unexpected(&["NUMBER"])),
        };
        self.advance()?;
        self.expect(Tok::RParen, &[")"])?;
        let value = parse_float(&text).map_err(|err| {
            ParseError::semantic(format!("unable to parse vector as a float: {err}"))
        })?;
        Ok((Box::new(Expr::Vector(value)), 1))
    }

    /// `NUMBER`, `+NUMBER` or `-NUMBER` (Loki's `literalExpr`).
    fn parse_signed_number(&mut self) -> Result<f64, ParseError> {
        let negative = match self.cur.tok {
            Tok::Add => {
                self.advance()?;
                false
            }
            Tok::Sub => {
                self.advance()?;
                true
            }
            _ => false,
        };
        let text = match &self.cur.tok {
            Tok::Number(text) => text.clone(),
            _ => return Err(self.unexpected(&["NUMBER"])),
        };
        self.advance()?;
        let value = parse_float(&text).map_err(|err| {
            ParseError::semantic(format!("unable to parse literal as a float: {err}"))
        })?;
        Ok(if negative { -value } else { value })
    }

    /// Requires a metric expression (vector aggregation and label_replace
    /// arguments): a bare log query there is a syntax error at the token
    /// after it, as in Loki's grammar.
    fn parse_metric_argument(&mut self) -> Result<Node, ParseError> {
        let node = self.parse_binary(0)?;
        if matches!(*node.0, Expr::Log(_)) {
            return Err(self.unexpected(&[]));
        }
        Ok(node)
    }

    fn parse_vector_aggregation(&mut self, op: VectorOp) -> Result<Node, ParseError> {
        // Kept minimal: this frame is on the recursion path.
        let head = self.parse_vector_aggregation_head()?;
        let inner = self.parse_metric_argument()?;
        self.finish_vector_aggregation(op, *head, inner)
    }

    /// `op [grouping] ( [NUMBER ,]`: returns the grouping and the parameter.
    fn parse_vector_aggregation_head(&mut self) -> Result<Box<VectorAggregationHead>, ParseError> {
        self.advance()?;
        let grouping_before = self.parse_grouping()?;
        self.expect(Tok::LParen, &["("])?;
        let mut param_text = None;
        if let Tok::Number(text) = &self.cur.tok {
            let text = text.clone();
            if *self.peek()? == Tok::Comma {
                self.advance()?;
                self.advance()?;
                param_text = Some(text);
            }
        }
        Ok(Box::new(VectorAggregationHead {
            grouping_before,
            param_text,
        }))
    }

    fn finish_vector_aggregation(
        &mut self,
        op: VectorOp,
        head: VectorAggregationHead,
        (inner, inner_depth): Node,
    ) -> Result<Node, ParseError> {
        let VectorAggregationHead {
            grouping_before,
            param_text,
        } = head;
        self.expect(Tok::RParen, &[])?;
        let grouping = match grouping_before {
            Some(grouping) => Some(grouping),
            None => self.parse_grouping()?,
        };
        let param = vector_param(op, param_text)?;
        let depth = self.check_depth(inner_depth + 1)?;
        Ok((
            Box::new(Expr::VectorAggregation(VectorAggregation {
                op,
                param,
                grouping,
                inner,
            })),
            depth,
        ))
    }
}

/// Loki's `mustNewVectorAggregationExpr` parameter checks.
fn vector_param(op: VectorOp, param_text: Option<String>) -> Result<Option<i64>, ParseError> {
    let name = op.as_str();
    let param = match (op, param_text) {
        (VectorOp::Topk | VectorOp::Bottomk, None) => {
            return Err(ParseError::semantic(format!(
                "parameter required for operation {name}"
            )))
        }
        (VectorOp::Topk | VectorOp::Bottomk, Some(text)) => {
            let k: i64 = text
                .parse()
                .map_err(|_| ParseError::semantic(format!("invalid parameter {name}({text},")))?;
            if k <= 0 {
                return Err(ParseError::semantic(format!(
                    "invalid parameter (must be greater than 0) {name}({text}"
                )));
            }
            Some(k)
        }
        (_, Some(text)) => {
            return Err(ParseError::semantic(format!(
                "unsupported parameter for operation {name}({text},"
            )))
        }
        (_, None) => None,
    };
    Ok(param)
}

impl Parser<'_> {
    fn parse_label_replace(&mut self) -> Result<Node, ParseError> {
        self.advance()?;
        self.expect(Tok::LParen, &["("])?;
        let (inner, inner_depth) = self.parse_metric_argument()?;
        let mut strings = Vec::with_capacity(4);
        for _ in 0..4 {
            self.expect(Tok::Comma, &[","])?;
            strings.push(self.expect_string()?);
        }
        self.expect(Tok::RParen, &[")"])?;
        let [dst, replacement, src, regex]: [String; 4] = strings
            .try_into()
            .map_err(|_| ParseError::semantic("label_replace needs 4 string arguments"))?;
        if let Err(err) = regex::Regex::new(&format!("^(?:{regex})$")) {
            return Err(ParseError::semantic(format!(
                "invalid regex in label_replace: {}",
                regex_error_message(&regex, &err)
            )));
        }
        let depth = self.check_depth(inner_depth + 1)?;
        Ok((
            Box::new(Expr::LabelReplace(LabelReplace {
                inner,
                dst,
                replacement,
                src,
                regex,
            })),
            depth,
        ))
    }

    fn parse_range_aggregation(&mut self, op: RangeOp) -> Result<Node, ParseError> {
        self.advance()?;
        self.expect(Tok::LParen, &["("])?;
        let param_text = match &self.cur.tok {
            Tok::Number(text) => {
                let text = text.clone();
                self.advance()?;
                self.expect(Tok::Comma, &[","])?;
                Some(text)
            }
            _ => None,
        };
        let range = self.parse_log_range(param_text.is_none())?;
        self.expect(Tok::RParen, &[])?;
        let grouping = self.parse_grouping()?;
        let name = op.as_str();
        let param = match param_text {
            Some(text) if op != RangeOp::QuantileOverTime => {
                return Err(ParseError::semantic(format!(
                    "parameter {text} not supported for operation {name}"
                )))
            }
            Some(text) => Some(parse_float(&text).map_err(|err| {
                ParseError::semantic(format!("invalid parameter for operation {name}: {err}"))
            })?),
            None if op == RangeOp::QuantileOverTime => {
                return Err(ParseError::semantic(format!(
                    "parameter required for operation {name}"
                )))
            }
            None => None,
        };
        if grouping.is_some() && !op.allows_grouping() {
            return Err(ParseError::semantic(format!(
                "grouping not allowed for {name} aggregation"
            )));
        }
        if range.unwrap.is_some() {
            if !op.allows_unwrap() {
                return Err(ParseError::semantic(format!(
                    "invalid aggregation {name} with unwrap"
                )));
            }
        } else if !op.allows_no_unwrap() {
            return Err(ParseError::semantic(format!(
                "invalid aggregation {name} without unwrap"
            )));
        }
        Ok((
            Box::new(Expr::RangeAggregation(RangeAggregation {
                op,
                param,
                range,
                grouping,
            })),
            1,
        ))
    }

    // ----- log ranges ----------------------------------------------------

    fn parse_log_range(&mut self, param_allowed: bool) -> Result<LogRange, ParseError> {
        self.enter()?;
        let range = match self.cur.tok {
            Tok::LBrace => {
                let matchers = self.parse_selector()?;
                self.finish_log_range(matchers)?
            }
            Tok::LParen => {
                self.advance()?;
                match self.cur.tok {
                    Tok::LParen => {
                        let inner = self.parse_log_range(false)?;
                        self.expect(Tok::RParen, &[])?;
                        inner
                    }
                    Tok::LBrace => self.parse_parenthesized_log_range()?,
                    _ => return Err(self.unexpected(&["{", "("])),
                }
            }
            _ if param_allowed => return Err(self.unexpected(&["NUMBER", "{", "("])),
            _ => return Err(self.unexpected(&["{", "("])),
        };
        self.leave();
        Ok(range)
    }

    /// After `(`: `selector [pipeline] [unwrap] ) RANGE [offset]`, or a whole
    /// log range inside the parenthesis.
    fn parse_parenthesized_log_range(&mut self) -> Result<LogRange, ParseError> {
        let matchers = self.parse_selector()?;
        if matches!(self.cur.tok, Tok::Range(_)) {
            let range = self.finish_log_range(matchers)?;
            self.expect(Tok::RParen, &[])?;
            return Ok(range);
        }
        let pipeline = self.parse_pipeline()?;
        let unwrap = self.parse_unwrap_opt()?;
        self.expect(Tok::RParen, &[])?;
        let range = self.expect_range()?;
        let offset = self.parse_offset_opt()?;
        Ok(LogRange {
            log: LogExpr { matchers, pipeline },
            range,
            offset,
            unwrap,
        })
    }

    /// After a selector: `RANGE [offset] [pipeline] [unwrap]` or
    /// `[pipeline] [unwrap] RANGE [offset]`.
    fn finish_log_range(&mut self, matchers: Vec<Matcher>) -> Result<LogRange, ParseError> {
        if let Tok::Range(range) = self.cur.tok {
            self.advance()?;
            let offset = self.parse_offset_opt()?;
            let pipeline = self.parse_pipeline()?;
            let unwrap = self.parse_unwrap_opt()?;
            return Ok(LogRange {
                log: LogExpr { matchers, pipeline },
                range,
                offset,
                unwrap,
            });
        }
        let pipeline = self.parse_pipeline()?;
        let unwrap = self.parse_unwrap_opt()?;
        let range = self.expect_range()?;
        let offset = self.parse_offset_opt()?;
        Ok(LogRange {
            log: LogExpr { matchers, pipeline },
            range,
            offset,
            unwrap,
        })
    }

    fn expect_range(&mut self) -> Result<i64, ParseError> {
        match self.cur.tok {
            Tok::Range(range) => {
                self.advance()?;
                Ok(range)
            }
            _ => Err(self.unexpected(&[])),
        }
    }

    fn parse_offset_opt(&mut self) -> Result<i64, ParseError> {
        if self.cur.tok != Tok::Offset {
            return Ok(0);
        }
        self.advance()?;
        match self.cur.tok {
            Tok::Duration(offset) => {
                self.advance()?;
                Ok(offset)
            }
            _ => Err(self.unexpected(&["DURATION"])),
        }
    }

    fn parse_unwrap_opt(&mut self) -> Result<Option<Unwrap>, ParseError> {
        if self.cur.tok != Tok::Pipe {
            return Ok(None);
        }
        // parse_pipeline stops at `|` only when `unwrap` follows.
        self.advance()?;
        self.expect(Tok::Unwrap, &[])?;
        let conversion = match self.cur.tok {
            Tok::BytesConv => Some(UnwrapConversion::Bytes),
            Tok::DurationConv => Some(UnwrapConversion::Duration),
            Tok::DurationSecondsConv => Some(UnwrapConversion::DurationSeconds),
            _ => None,
        };
        let label = match conversion {
            None => self.expect_ident(&[
                "IDENTIFIER",
                "BYTES_CONV",
                "DURATION_CONV",
                "DURATION_SECONDS_CONV",
            ])?,
            Some(_) => {
                self.advance()?;
                self.expect(Tok::LParen, &["("])?;
                let label = self.expect_ident(&["IDENTIFIER"])?;
                self.expect(Tok::RParen, &[")"])?;
                label
            }
        };
        let mut post_filters = Vec::new();
        while self.cur.tok == Tok::Pipe {
            self.advance()?;
            post_filters.push(self.parse_label_filter()?);
        }
        Ok(Some(Unwrap {
            label,
            conversion,
            post_filters,
        }))
    }

    // ----- log expressions -------------------------------------------------

    fn parse_log_expr(&mut self) -> Result<LogExpr, ParseError> {
        let matchers = self.parse_selector()?;
        let pipeline = self.parse_pipeline()?;
        Ok(LogExpr { matchers, pipeline })
    }

    /// `{ a="b", … }` (the current token is `{`).
    fn parse_selector(&mut self) -> Result<Vec<Matcher>, ParseError> {
        self.expect(Tok::LBrace, &["{"])?;
        let mut matchers = Vec::new();
        if self.cur.tok == Tok::RBrace {
            self.advance()?;
            return Ok(matchers);
        }
        let mut expecting: &[&str] = &["IDENTIFIER", "}"];
        loop {
            let name = self.expect_ident(expecting)?;
            matchers.push(self.parse_matcher_rest(name)?);
            match self.cur.tok {
                Tok::RBrace => {
                    self.advance()?;
                    return Ok(matchers);
                }
                Tok::Comma => {
                    self.advance()?;
                    expecting = &["IDENTIFIER"];
                }
                _ => return Err(self.unexpected(&["}", ","])),
            }
        }
    }

    /// `op STRING` after a label name.
    fn parse_matcher_rest(&mut self, name: String) -> Result<Matcher, ParseError> {
        let op = match self.cur.tok {
            Tok::Eq => MatchOp::Eq,
            Tok::Neq => MatchOp::Neq,
            Tok::Re => MatchOp::Re,
            Tok::Nre => MatchOp::Nre,
            _ => return Err(self.unexpected(&["=", "=~", "!~", "!="])),
        };
        self.advance()?;
        let value = self.expect_string()?;
        Matcher::new(name, op, value)
    }

    fn parse_pipeline(&mut self) -> Result<Vec<Stage>, ParseError> {
        let mut stages = Vec::new();
        loop {
            match self.cur.tok {
                Tok::PipeExact | Tok::Neq | Tok::PipeMatch | Tok::Nre => {
                    stages.push(Stage::LineFilter(self.parse_line_filter()?));
                }
                Tok::Pipe => {
                    if *self.peek()? == Tok::Unwrap {
                        return Ok(stages);
                    }
                    self.advance()?;
                    stages.push(self.parse_pipe_stage()?);
                }
                _ => return Ok(stages),
            }
        }
    }

    fn parse_line_filter(&mut self) -> Result<LineFilter, ParseError> {
        let op = match self.advance()? {
            Tok::PipeExact => LineFilterOp::Contains,
            Tok::Neq => LineFilterOp::NotContains,
            Tok::PipeMatch => LineFilterOp::Match,
            _ => LineFilterOp::NotMatch,
        };
        let first = self.parse_line_filter_value()?;
        let mut alternatives = Vec::new();
        while self.cur.tok == Tok::Or {
            self.advance()?;
            alternatives.push(self.parse_line_filter_value()?);
        }
        LineFilter::with_alternatives(op, first, alternatives)
    }

    fn parse_line_filter_value(&mut self) -> Result<LineFilterAlt, ParseError> {
        match self.cur.tok {
            Tok::Str(_) => Ok(LineFilterAlt {
                pattern: self.expect_string()?,
                ip: false,
            }),
            Tok::Ip => Ok(LineFilterAlt {
                pattern: self.parse_ip_call()?,
                ip: true,
            }),
            _ => Err(self.unexpected(&["STRING", "ip"])),
        }
    }

    /// `ip ( STRING )`, the current token being `ip`.
    fn parse_ip_call(&mut self) -> Result<String, ParseError> {
        self.advance()?;
        self.expect(Tok::LParen, &["("])?;
        let pattern = self.expect_string()?;
        self.expect(Tok::RParen, &[")"])?;
        Ok(pattern)
    }

    /// A stage after `|`.
    fn parse_pipe_stage(&mut self) -> Result<Stage, ParseError> {
        match self.cur.tok {
            Tok::Json => {
                self.advance()?;
                Ok(Stage::Json(self.parse_extractions_opt()?))
            }
            Tok::Logfmt => {
                self.advance()?;
                let mut parser = LogfmtParser::default();
                while let Tok::ParserFlag(flag) = &self.cur.tok {
                    match flag.as_str() {
                        "--strict" => parser.strict = true,
                        _ => parser.keep_empty = true,
                    }
                    self.advance()?;
                }
                parser.params = self.parse_extractions_opt()?;
                Ok(Stage::Logfmt(parser))
            }
            Tok::Regexp => {
                self.advance()?;
                let regex = self.expect_string()?;
                validate_regexp_parser(&regex)?;
                Ok(Stage::Regexp(regex))
            }
            Tok::Pattern => {
                self.advance()?;
                let pattern = self.expect_string()?;
                parse_pattern(&pattern).map_err(|err| {
                    ParseError::semantic(format!("invalid pattern parser: {err}"))
                })?;
                Ok(Stage::Pattern(pattern))
            }
            Tok::Unpack => {
                self.advance()?;
                Ok(Stage::Unpack)
            }
            Tok::Decolorize => {
                self.advance()?;
                Ok(Stage::Decolorize)
            }
            Tok::LineFormat => {
                self.advance()?;
                Ok(Stage::LineFormat(self.expect_string()?))
            }
            Tok::LabelFormat => {
                self.advance()?;
                self.parse_label_formats()
            }
            Tok::Drop => {
                self.advance()?;
                Ok(Stage::Drop(self.parse_named_matchers()?))
            }
            Tok::Keep => {
                self.advance()?;
                Ok(Stage::Keep(self.parse_named_matchers()?))
            }
            Tok::Ident(_) | Tok::LParen => Ok(Stage::LabelFilter(self.parse_label_filter()?)),
            _ => Err(self.unexpected(&[])),
        }
    }

    /// Optional `a="x.y", b` list of `json`/`logfmt`.
    fn parse_extractions_opt(&mut self) -> Result<Vec<LabelExtraction>, ParseError> {
        let mut params = Vec::new();
        if !matches!(self.cur.tok, Tok::Ident(_)) {
            return Ok(params);
        }
        loop {
            let name = self.expect_ident(&["IDENTIFIER"])?;
            let expression = if self.cur.tok == Tok::Eq {
                self.advance()?;
                self.expect_string()?
            } else {
                name.clone()
            };
            params.push(LabelExtraction { name, expression });
            if self.cur.tok != Tok::Comma {
                return Ok(params);
            }
            self.advance()?;
        }
    }

    fn parse_label_formats(&mut self) -> Result<Stage, ParseError> {
        let mut formats: Vec<LabelFormat> = Vec::new();
        loop {
            let dst = self.expect_ident(&["IDENTIFIER"])?;
            self.expect(Tok::Eq, &["="])?;
            let format = match &mut self.cur.tok {
                Tok::Ident(src) => {
                    let src = std::mem::take(src);
                    self.advance()?;
                    LabelFormat::Rename { dst, src }
                }
                Tok::Str(template) => {
                    let template = std::mem::take(template);
                    self.advance()?;
                    LabelFormat::Template { dst, template }
                }
                _ => return Err(self.unexpected(&["IDENTIFIER", "STRING"])),
            };
            if formats
                .iter()
                .any(|existing| existing.dst() == format.dst())
            {
                return Err(ParseError::bare(format!(
                    "multiple label name '{}' not allowed in a single format operation",
                    format.dst()
                )));
            }
            formats.push(format);
            if self.cur.tok != Tok::Comma {
                return Ok(Stage::LabelFormat(formats));
            }
            self.advance()?;
        }
    }

    fn parse_named_matchers(&mut self) -> Result<Vec<NamedMatcher>, ParseError> {
        let mut entries = Vec::new();
        loop {
            let name = self.expect_ident(&["IDENTIFIER"])?;
            let entry = if matches!(self.cur.tok, Tok::Eq | Tok::Neq | Tok::Re | Tok::Nre) {
                NamedMatcher::Matcher(self.parse_matcher_rest(name)?)
            } else {
                NamedMatcher::Name(name)
            };
            entries.push(entry);
            if self.cur.tok != Tok::Comma {
                return Ok(entries);
            }
            self.advance()?;
        }
    }

    // ----- label filters -----------------------------------------------------

    /// Parses a label filter expression, combining operands exactly as
    /// Loki's LALR parser resolves its conflicts: `or` < `and` (both left
    /// associative) while `,` and juxtaposition have no precedence, so the
    /// parser shifts and they group to the right of their neighbours.
    fn parse_label_filter(&mut self) -> Result<LabelFilter, ParseError> {
        Ok(*self.parse_label_filter_node()?.0)
    }

    fn parse_label_filter_node(&mut self) -> Result<FilterNode, ParseError> {
        let mut stacks = (vec![self.parse_label_filter_primary()?], Vec::new());
        while let Some(join) = self.label_filter_join()? {
            self.shift_label_filter_join(&mut stacks, join)?;
            stacks.0.push(self.parse_label_filter_primary()?);
        }
        let (operands, joins) = &mut stacks;
        while !joins.is_empty() {
            self.reduce_label_filter(operands, joins)?;
        }
        operands
            .pop()
            .ok_or_else(|| self.unexpected(&["IDENTIFIER", "("]))
    }

    /// Consumes the operator joining two label filters, if any.
    fn label_filter_join(&mut self) -> Result<Option<FilterJoin>, ParseError> {
        let join = match self.cur.tok {
            Tok::And => FilterJoin::And,
            Tok::Or => FilterJoin::Or,
            Tok::Comma => FilterJoin::Unordered,
            // Juxtaposition: the next filter starts right away.
            Tok::Ident(_) | Tok::LParen => return Ok(Some(FilterJoin::Unordered)),
            _ => return Ok(None),
        };
        self.advance()?;
        Ok(Some(join))
    }

    /// Reduces what yacc would reduce before shifting `join`, then shifts it.
    fn shift_label_filter_join(
        &self,
        (operands, joins): &mut (Vec<FilterNode>, Vec<FilterJoin>),
        join: FilterJoin,
    ) -> Result<(), ParseError> {
        while let Some(&top) = joins.last() {
            let reduce = match (top.precedence(), join.precedence()) {
                (Some(top_precedence), Some(next_precedence)) => top_precedence >= next_precedence,
                _ => false,
            };
            if !reduce {
                break;
            }
            self.reduce_label_filter(operands, joins)?;
        }
        joins.push(join);
        Ok(())
    }

    fn reduce_label_filter(
        &self,
        operands: &mut Vec<FilterNode>,
        joins: &mut Vec<FilterJoin>,
    ) -> Result<(), ParseError> {
        let (Some(join), Some((right, right_depth)), Some((left, left_depth))) =
            (joins.pop(), operands.pop(), operands.pop())
        else {
            return Err(self.unexpected(&[]));
        };
        let depth = self.check_depth(left_depth.max(right_depth) + 1)?;
        let combined = match join {
            FilterJoin::Or => LabelFilter::Or(left, right),
            FilterJoin::And | FilterJoin::Unordered => LabelFilter::And(left, right),
        };
        operands.push((Box::new(combined), depth));
        Ok(())
    }

    fn parse_label_filter_primary(&mut self) -> Result<FilterNode, ParseError> {
        match self.cur.tok {
            Tok::LParen => self.parse_parenthesized_label_filter(),
            Tok::Ident(_) => self.parse_label_comparison_node(),
            _ => Err(self.unexpected(&["IDENTIFIER", "("])),
        }
    }

    fn parse_label_comparison_node(&mut self) -> Result<FilterNode, ParseError> {
        let name = self.expect_ident(&["IDENTIFIER"])?;
        Ok((Box::new(self.parse_label_comparison(name)?), 1))
    }

    fn parse_parenthesized_label_filter(&mut self) -> Result<FilterNode, ParseError> {
        self.enter()?;
        self.advance()?;
        let inner = self.parse_label_filter_node()?;
        self.expect(Tok::RParen, &[])?;
        self.leave();
        Ok(inner)
    }

    fn parse_label_comparison(&mut self, name: String) -> Result<LabelFilter, ParseError> {
        let op = match self.cur.tok {
            Tok::Re | Tok::Nre => return Ok(LabelFilter::Matcher(self.parse_matcher_rest(name)?)),
            Tok::Eq => CmpOp::Eq,
            Tok::Neq => CmpOp::Neq,
            Tok::CmpEq => CmpOp::Eq,
            Tok::Gt => CmpOp::Gt,
            Tok::Gte => CmpOp::Gte,
            Tok::Lt => CmpOp::Lt,
            Tok::Lte => CmpOp::Lte,
            _ => return Err(self.unexpected(&[])),
        };
        let equality = matches!(self.cur.tok, Tok::Eq | Tok::Neq);
        if equality && matches!(self.peek()?, Tok::Str(_)) {
            return Ok(LabelFilter::Matcher(self.parse_matcher_rest(name)?));
        }
        self.advance()?;
        match self.cur.tok {
            Tok::Ip if equality => {
                let pattern = self.parse_ip_call()?;
                if IpPattern::parse(&pattern).is_none() {
                    return Err(ParseError::semantic(INVALID_IP_PATTERN));
                }
                Ok(LabelFilter::Ip {
                    name,
                    equal: op == CmpOp::Eq,
                    pattern,
                })
            }
            Tok::Duration(value) => {
                self.advance()?;
                Ok(LabelFilter::Duration { name, op, value })
            }
            Tok::Bytes(value) => {
                self.advance()?;
                Ok(LabelFilter::Bytes { name, op, value })
            }
            Tok::Number(_) | Tok::Add | Tok::Sub => Ok(LabelFilter::Number {
                name,
                op,
                value: self.parse_signed_number()?,
            }),
            _ => Err(self.unexpected(&[])),
        }
    }
}

/// Loki's `NewRegexpParser` checks.
fn validate_regexp_parser(regex: &str) -> Result<(), ParseError> {
    let invalid =
        |message: String| ParseError::semantic(format!("invalid regexp parser: {message}"));
    let compiled =
        regex::Regex::new(regex).map_err(|err| invalid(regex_error_message(regex, &err)))?;
    let mut names: Vec<&str> = Vec::new();
    for name in compiled.capture_names().flatten() {
        let mut chars = name.chars();
        let valid = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(invalid(format!("invalid extracted label name '{name}'")));
        }
        if names.contains(&name) {
            return Err(invalid(format!("duplicate extracted label name '{name}'")));
        }
        names.push(name);
    }
    if names.is_empty() {
        return Err(invalid(
            "at least one named capture must be supplied".to_string(),
        ));
    }
    Ok(())
}
