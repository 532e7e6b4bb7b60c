//! Go `strconv.Quote` / `strconv.QuoteRune` compatible quoting.

use std::fmt::Write as _;

/// Returns `s` as a double-quoted Go string literal, as Go's `strconv.Quote` does.
///
/// `"` and `\` are backslash-escaped; printable characters (including non-ASCII
/// letters, marks, numbers, punctuation and symbols) are kept as they are; `\a \b
/// \f \n \r \t \v` use their short escapes; other non-printable characters become
/// `\xNN` (below U+0080), `\uNNNN` or `\UNNNNNNNN` with lowercase hex digits.
///
/// Printability follows Go's `unicode.IsPrint` for every assigned character class
/// that matters in practice (controls, format characters, separators other than
/// U+0020, private use, non-characters); code points unassigned in Unicode are
/// treated as printable, whereas Go would escape them.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_escaped(&mut out, c, '"');
    }
    out.push('"');
    out
}

/// Returns `c` as a single-quoted Go rune literal, as Go's `strconv.QuoteRune`
/// (and `%q` on a rune) does; used in parser error messages.
pub(crate) fn go_quote_rune(c: char) -> String {
    let mut out = String::with_capacity(8);
    out.push('\'');
    push_escaped(&mut out, c, '\'');
    out.push('\'');
    out
}

fn push_escaped(out: &mut String, c: char, quote: char) {
    if c == quote || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if is_go_printable(c) {
        out.push(c);
        return;
    }
    // Writing into a String cannot fail, so the fmt::Result is ignored on purpose.
    let _ = match c {
        '\u{7}' => out.write_str("\\a"),
        '\u{8}' => out.write_str("\\b"),
        '\u{c}' => out.write_str("\\f"),
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        '\t' => out.write_str("\\t"),
        '\u{b}' => out.write_str("\\v"),
        c if (c as u32) < 0x80 => write!(out, "\\x{:02x}", c as u32),
        c if (c as u32) < 0x10000 => write!(out, "\\u{:04x}", c as u32),
        c => write!(out, "\\U{:08x}", c as u32),
    };
}

/// Approximates Go's `unicode.IsPrint` without Unicode tables: see [`go_quote`].
pub(crate) fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_ascii() {
        return c.is_ascii_graphic();
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let code = c as u32;
    let format_or_private = matches!(
        code,
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
            | 0xE000..=0xF8FF
            | 0xF0000..=0x10FFFF
            | 0xFDD0..=0xFDEF
    );
    let non_character = code & 0xFFFE == 0xFFFE;
    !(format_or_private || non_character)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        // Expected values are what Go's strconv.Quote prints.
        let cases = [
            ("", r#""""#),
            ("plain", r#""plain""#),
            (r#"a"b\c"#, r#""a\"b\\c""#),
            ("tab\tnl\ncr\r", r#""tab\tnl\ncr\r""#),
            ("\u{7}\u{8}\u{c}\u{b}", r#""\a\b\f\v""#),
            ("\u{0}\u{1f}\u{7f}", r#""\x00\x1f\x7f""#),
            ("héllo 世界 🎉", "\"héllo 世界 🎉\""),
            ("\u{a0}\u{2028}\u{feff}", r#""\u00a0\u2028\ufeff""#),
            ("\u{e000}\u{10fffd}", r#""\ue000\U0010fffd""#),
            ("\u{85}", r#""\u0085""#),
            ("it's", r#""it's""#),
        ];
        for (input, expected) in cases {
            assert_eq!(go_quote(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn quotes_runes_like_go() {
        assert_eq!(go_quote_rune('-'), "'-'");
        assert_eq!(go_quote_rune('\''), r"'\''");
        assert_eq!(go_quote_rune('"'), "'\"'");
        assert_eq!(go_quote_rune('\n'), r"'\n'");
        assert_eq!(go_quote_rune('é'), "'é'");
    }
}
