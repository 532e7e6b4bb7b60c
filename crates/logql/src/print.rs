//! Canonical LogQL printing (`Display` impls). Strings are re-quoted with Go
//! escaping, matchers are joined by `", "`, parentheses appear only where
//! precedence needs them, and `parse_expr(&e.to_string()) == Ok(e)`.

use std::fmt::{self, Display, Formatter, Write as _};

use crate::ast::{
    BinOpExpr, Cardinality, Expr, Grouping, LabelExtraction, LabelFilter, LabelFormat,
    LabelReplace, LogExpr, LogRange, LogfmtParser, NamedMatcher, RangeAggregation, Stage, Unwrap,
    VectorAggregation,
};
use crate::filter::{LineFilter, LineFilterAlt};
use crate::matcher::Matcher;
use crate::units::{format_bytes, format_duration, format_float};

/// Quotes a string like Go's `strconv.Quote`.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if !is_go_printable(c) => {
                if (c as u32) < 0x10000 {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                } else {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Approximates Go's `unicode.IsPrint` (graphic characters and ASCII space).
fn is_go_printable(c: char) -> bool {
    !(c.is_control()
        || c.is_whitespace() && c != ' '
        || matches!(
            c,
            '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2064}'
                | '\u{feff}' | '\u{fff9}'..='\u{fffb}'
        )
        || ('\u{e000}'..='\u{f8ff}').contains(&c)
        || ('\u{f0000}'..).contains(&c))
}

fn write_joined<T: Display>(f: &mut Formatter<'_>, items: &[T], separator: &str) -> fmt::Result {
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            f.write_str(separator)?;
        }
        item.fmt(f)?;
    }
    Ok(())
}

impl Display for Matcher {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.name, self.op.as_str(), quote(&self.value))
    }
}

impl Display for LineFilterAlt {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.ip {
            write!(f, "ip({})", quote(&self.pattern))
        } else {
            f.write_str(&quote(&self.pattern))
        }
    }
}

impl Display for LineFilter {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let first = LineFilterAlt {
            pattern: self.pattern.clone(),
            ip: self.ip,
        };
        write!(f, "{} {first}", self.op.as_str())?;
        for alternative in &self.or {
            write!(f, " or {alternative}")?;
        }
        Ok(())
    }
}

impl Display for LabelExtraction {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, quote(&self.expression))
    }
}

impl Display for LabelFormat {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            LabelFormat::Rename { dst, src } => write!(f, "{dst}={src}"),
            LabelFormat::Template { dst, template } => write!(f, "{dst}={}", quote(template)),
        }
    }
}

impl Display for NamedMatcher {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            NamedMatcher::Name(name) => f.write_str(name),
            NamedMatcher::Matcher(matcher) => matcher.fmt(f),
        }
    }
}

fn label_filter_precedence(filter: &LabelFilter) -> u8 {
    match filter {
        LabelFilter::Or(..) => 1,
        LabelFilter::And(..) => 2,
        _ => 3,
    }
}

fn write_label_filter_child(
    f: &mut Formatter<'_>,
    child: &LabelFilter,
    needs_parens: bool,
) -> fmt::Result {
    if needs_parens {
        write!(f, "({child})")
    } else {
        child.fmt(f)
    }
}

impl Display for LabelFilter {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            LabelFilter::Matcher(matcher) => matcher.fmt(f),
            LabelFilter::Number { name, op, value } => {
                write!(f, "{name}{}{}", op.as_str(), format_float(*value))
            }
            LabelFilter::Duration { name, op, value } => {
                write!(f, "{name}{}{}", op.as_str(), format_duration(*value))
            }
            LabelFilter::Bytes { name, op, value } => {
                write!(f, "{name}{}{}", op.as_str(), format_bytes(*value))
            }
            LabelFilter::Ip {
                name,
                equal,
                pattern,
            } => {
                let op = if *equal { "=" } else { "!=" };
                write!(f, "{name}{op}ip({})", quote(pattern))
            }
            LabelFilter::And(left, right) | LabelFilter::Or(left, right) => {
                let precedence = label_filter_precedence(self);
                write_label_filter_child(f, left, label_filter_precedence(left) < precedence)?;
                f.write_str(if precedence == 2 { " and " } else { " or " })?;
                write_label_filter_child(f, right, label_filter_precedence(right) <= precedence)
            }
        }
    }
}

impl Display for LogfmtParser {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("logfmt")?;
        if self.strict {
            f.write_str(" --strict")?;
        }
        if self.keep_empty {
            f.write_str(" --keep-empty")?;
        }
        if !self.params.is_empty() {
            f.write_str(" ")?;
            write_joined(f, &self.params, ", ")?;
        }
        Ok(())
    }
}

impl Display for Stage {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Stage::LineFilter(filter) => filter.fmt(f),
            Stage::Json(params) => {
                f.write_str("| json")?;
                if !params.is_empty() {
                    f.write_str(" ")?;
                    write_joined(f, params, ", ")?;
                }
                Ok(())
            }
            Stage::Logfmt(parser) => write!(f, "| {parser}"),
            Stage::Regexp(regex) => write!(f, "| regexp {}", quote(regex)),
            Stage::Pattern(pattern) => write!(f, "| pattern {}", quote(pattern)),
            Stage::Unpack => f.write_str("| unpack"),
            Stage::LabelFilter(filter) => write!(f, "| {filter}"),
            Stage::LineFormat(template) => write!(f, "| line_format {}", quote(template)),
            Stage::LabelFormat(formats) => {
                f.write_str("| label_format ")?;
                write_joined(f, formats, ", ")
            }
            Stage::Drop(names) => {
                f.write_str("| drop ")?;
                write_joined(f, names, ", ")
            }
            Stage::Keep(names) => {
                f.write_str("| keep ")?;
                write_joined(f, names, ", ")
            }
            Stage::Decolorize => f.write_str("| decolorize"),
        }
    }
}

impl Display for LogExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        write_joined(f, &self.matchers, ", ")?;
        f.write_str("}")?;
        for stage in &self.pipeline {
            write!(f, " {stage}")?;
        }
        Ok(())
    }
}

impl Display for Unwrap {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.conversion {
            Some(conversion) => write!(f, "| unwrap {}({})", conversion.as_str(), self.label)?,
            None => write!(f, "| unwrap {}", self.label)?,
        }
        for filter in &self.post_filters {
            write!(f, " | {filter}")?;
        }
        Ok(())
    }
}

impl Display for LogRange {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        self.log.fmt(f)?;
        if let Some(unwrap) = &self.unwrap {
            write!(f, " {unwrap}")?;
        }
        if !self.log.pipeline.is_empty() || self.unwrap.is_some() {
            f.write_str(" ")?;
        }
        write!(f, "[{}]", format_duration(self.range))?;
        if self.offset != 0 {
            write!(f, " offset {}", format_duration(self.offset))?;
        }
        Ok(())
    }
}

impl Display for Grouping {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(if self.without { "without (" } else { "by (" })?;
        write_joined(f, &self.labels, ", ")?;
        f.write_str(")")
    }
}

impl Display for RangeAggregation {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.op.as_str())?;
        if let Some(param) = self.param {
            write!(f, "{}, ", format_float(param))?;
        }
        write!(f, "{})", self.range)?;
        if let Some(grouping) = &self.grouping {
            write!(f, " {grouping}")?;
        }
        Ok(())
    }
}

impl Display for VectorAggregation {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.op.as_str())?;
        if let Some(grouping) = &self.grouping {
            write!(f, " {grouping} ")?;
        }
        f.write_str("(")?;
        if let Some(param) = self.param {
            write!(f, "{param}, ")?;
        }
        write!(f, "{})", self.inner)
    }
}

impl Display for LabelReplace {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "label_replace({}, {}, {}, {}, {})",
            self.inner,
            quote(&self.dst),
            quote(&self.replacement),
            quote(&self.src),
            quote(&self.regex)
        )
    }
}

fn expr_precedence(expr: &Expr) -> u8 {
    match expr {
        Expr::BinOp(bin) => bin.op.precedence(),
        // Non-finite literals print as parenthesized divisions.
        _ => 10,
    }
}

fn write_operand(f: &mut Formatter<'_>, operand: &Expr, needs_parens: bool) -> fmt::Result {
    if needs_parens {
        write!(f, "({operand})")
    } else {
        operand.fmt(f)
    }
}

fn write_labels(f: &mut Formatter<'_>, labels: &[String]) -> fmt::Result {
    f.write_str("(")?;
    write_joined(f, labels, ", ")?;
    f.write_str(")")
}

impl Display for BinOpExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let precedence = self.op.precedence();
        let right_assoc = self.op.is_right_associative();
        let lhs_precedence = expr_precedence(&self.lhs);
        let rhs_precedence = expr_precedence(&self.rhs);
        write_operand(
            f,
            &self.lhs,
            lhs_precedence < precedence || (lhs_precedence == precedence && right_assoc),
        )?;
        write!(f, " {}", self.op.as_str())?;
        if self.return_bool {
            f.write_str(" bool")?;
        }
        if let Some(matching) = &self.matching {
            f.write_str(if matching.on { " on" } else { " ignoring" })?;
            write_labels(f, &matching.labels)?;
            let group = match matching.card {
                Cardinality::OneToOne => None,
                Cardinality::ManyToOne => Some(" group_left"),
                Cardinality::OneToMany => Some(" group_right"),
            };
            if let Some(group) = group {
                // Always with parenthesis: `group_left (x)` would read a
                // parenthesized right operand as the include list.
                f.write_str(group)?;
                write_labels(f, &matching.include)?;
            }
        }
        f.write_str(" ")?;
        write_operand(
            f,
            &self.rhs,
            rhs_precedence < precedence || (rhs_precedence == precedence && !right_assoc),
        )
    }
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Log(log) => log.fmt(f),
            Expr::RangeAggregation(agg) => agg.fmt(f),
            Expr::VectorAggregation(agg) => agg.fmt(f),
            Expr::BinOp(bin) => bin.fmt(f),
            Expr::Literal(value) => f.write_str(&format_float(*value)),
            Expr::Vector(value) => write!(f, "vector({})", format_float(*value)),
            Expr::LabelReplace(replace) => replace.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_quoting() {
        assert_eq!(quote("a"), r#""a""#);
        assert_eq!(quote("a\"b"), r#""a\"b""#);
        assert_eq!(quote("a\\d"), r#""a\\d""#);
        assert_eq!(quote("\n\t\u{1}\u{7f}"), r#""\n\t\x01\x7f""#);
        assert_eq!(quote("é日本"), "\"é日本\"");
        assert_eq!(quote("\u{200b}"), r#""\u200b""#);
    }
}
