//! Templates of alerting rule labels and annotations, as Prometheus sets
//! them up: the same Go `text/template` engine as `line_format`, with
//! Prometheus' functions (`humanize`, `humanizePercentage`,
//! `humanizeDuration`, `humanize1024`, `toUpper`, `toLower`, `title`,
//! `reReplaceAll`, `match`) and Go's builtins instead of Loki's, and this
//! data:
//!
//! - `.Labels` / `$labels`: the alert's labels (`map[string]string`, a
//!   missing label reads as `""`);
//! - `.Value` / `$value`: the sample value (`float64`);
//! - `.ExternalURL` / `$externalURL`: `ruler.external_url`;
//! - `.ExternalLabels` / `$externalLabels`: always empty.

use std::collections::BTreeMap;

use super::funcs::{FuncSet, RegexCache};
use super::value::Value;
use super::{Data, Template};

const VARS: [&str; 4] = ["$labels", "$externalLabels", "$externalURL", "$value"];

/// What a rule template reads.
#[derive(Debug, Clone, Copy)]
pub struct RuleData<'a> {
    /// The alert's labels.
    pub labels: &'a BTreeMap<String, String>,
    /// The sample value.
    pub value: f64,
    /// `ruler.external_url`.
    pub external_url: &'a str,
}

/// A parsed rule label or annotation template.
#[derive(Debug, Clone)]
pub struct RuleTemplate(Template);

impl RuleTemplate {
    /// Parses `src`; the error says what is wrong and where, as Go does.
    pub fn parse(src: &str) -> Result<RuleTemplate, String> {
        Template::parse_with("__alert", src, FuncSet::Rules, &VARS).map(RuleTemplate)
    }

    /// Renders the template for one alert.
    pub fn execute(&self, data: &RuleData<'_>) -> Result<String, String> {
        let external_labels = Value::StrMap(Vec::new());
        let external_url = Value::Str(data.external_url.to_string());
        let value = Value::Float(data.value);
        let dot = Value::Map(vec![
            ("ExternalLabels".to_string(), external_labels.clone()),
            ("ExternalURL".to_string(), external_url.clone()),
            ("Labels".to_string(), Value::Labels),
            ("Value".to_string(), value.clone()),
        ]);
        let vars = VARS
            .iter()
            .map(|name| name.to_string())
            .zip([Value::Labels, external_labels, external_url, value])
            .collect();
        let mut out = String::new();
        self.0.execute_with(
            &Labels(data.labels),
            dot,
            vars,
            &mut RegexCache::default(),
            &mut out,
        )?;
        Ok(out)
    }
}

struct Labels<'a>(&'a BTreeMap<String, String>);

impl Data for Labels<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    fn each(&self, visit: &mut dyn FnMut(&str, &str)) {
        for (name, value) in self.0 {
            visit(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("service".to_string(), "ryot".to_string()),
            ("level".to_string(), "error".to_string()),
        ])
    }

    fn render(src: &str, value: f64) -> String {
        let labels = labels();
        let data = RuleData {
            labels: &labels,
            value,
            external_url: "http://sluice:3100",
        };
        RuleTemplate::parse(src)
            .and_then(|template| template.execute(&data))
            .unwrap_or_else(|err| panic!("{src}: {err}"))
    }

    #[test]
    fn variables_and_fields() {
        assert_eq!(
            render("High error rate in {{ $labels.service }}", 1.0),
            "High error rate in ryot"
        );
        assert_eq!(
            render("{{ .Labels.level }}/{{ .Value }}", 12.5),
            "error/12.5"
        );
        assert_eq!(render("{{ $value }}", 1e6), "1e+06");
        assert_eq!(render("{{ $value }}", 100000.0), "100000");
        assert_eq!(render("{{ $value }}", 0.25), "0.25");
        assert_eq!(render("{{ $labels.missing }}|", 0.0), "|");
        assert_eq!(
            render("{{ $labels }}", 0.0),
            "map[level:error service:ryot]"
        );
        assert_eq!(render("{{ $externalURL }}", 0.0), "http://sluice:3100");
        assert_eq!(render("{{ .ExternalURL }}", 0.0), "http://sluice:3100");
        assert_eq!(render("{{ $externalLabels }}", 0.0), "map[]");
        assert_eq!(render("{{ $externalLabels.dc }}|", 0.0), "|");
        assert_eq!(render("{{ .ExternalLabels.dc }}|", 0.0), "|");
        assert_eq!(render("{{ index $externalLabels \"dc\" }}|", 0.0), "|");
        assert_eq!(render("{{ len $externalLabels }}", 0.0), "0");
        assert_eq!(
            render("{{ if $externalLabels }}x{{ else }}none{{ end }}", 0.0),
            "none"
        );
        assert_eq!(render("{{ index $labels \"nope\" }}|", 0.0), "|");
        assert_eq!(render("{{ $.Labels.service }}", 0.0), "ryot");
        assert_eq!(render("{{ len $labels }}", 0.0), "2");
        assert_eq!(render("{{ index $labels \"service\" }}", 0.0), "ryot");
        assert_eq!(render("a {{- \" b \" -}} c", 0.0), "a b c");
        assert_eq!(render("x{{/* note */}}y", 0.0), "xy");
    }

    #[test]
    fn functions_format_like_prometheus() {
        assert_eq!(render("{{ printf \"%.2f\" $value }}", 12.3456), "12.35");
        assert_eq!(render("{{ $value | printf \"%.1f\" }}", 2.25), "2.2");
        assert_eq!(render("{{ humanize $value }}", 1234567.0), "1.235M");
        assert_eq!(render("{{ humanize $value }}", 0.0012), "1.2m");
        assert_eq!(render("{{ humanize $value }}", 12.0), "12");
        assert_eq!(render("{{ $value | humanize }}", 0.0), "0");
        assert_eq!(render("{{ humanize \"2000\" }}", 0.0), "2k");
        assert_eq!(render("{{ humanize1024 $value }}", 2048.0), "2ki");
        assert_eq!(render("{{ humanizePercentage $value }}", 0.1234), "12.34%");
        assert_eq!(
            render("{{ humanizeDuration $value }}", 90061.0),
            "1d 1h 1m 1s"
        );
        assert_eq!(render("{{ humanizeDuration $value }}", 1.5), "1.5s");
        assert_eq!(render("{{ humanizeDuration $value }}", 0.25), "250ms");
        assert_eq!(render("{{ toUpper $labels.service }}", 0.0), "RYOT");
        assert_eq!(render("{{ $labels.level | toLower }}", 0.0), "error");
        assert_eq!(render("{{ title \"hello world\" }}", 0.0), "Hello World");
        assert_eq!(render("{{ printf \"%d%%\" 5 }}", 0.0), "5%");
        assert_eq!(
            render("{{ printf \"%5.1f|%-4s|\" $value \"ab\" }}", 2.71),
            "  2.7|ab  |"
        );
        assert_eq!(render("{{ printf \"%e\" $value }}", 1234.5), "1.234500e+03");
        assert_eq!(
            render("{{ printf \"%s\" $value }}", 1.5),
            "%!s(float64=1.5)"
        );
        assert_eq!(
            render("{{ reReplaceAll \"(.*)-(.*)\" \"$2\" \"a-b\" }}", 0.0),
            "b"
        );
        assert_eq!(
            render("{{ if match \"^ry\" $labels.service }}yes{{ end }}", 0.0),
            "yes"
        );
    }

    #[test]
    fn printf_verbs_and_flags_like_go() {
        let cases: &[(&str, f64, &str)] = &[
            (
                "{{ printf \"%v|%g|%.3g\" $value $value $value }}",
                1234.5678,
                "1234.5678|1234.5678|1.23e+03",
            ),
            (
                "{{ printf \"%+.1f|% d|%+d\" $value 5 -3 }}",
                2.5,
                "+2.5| 5|-3",
            ),
            (
                "{{ printf \"%05.1f|%-6.1f|%6.1f|\" $value $value $value }}",
                -2.5,
                "-02.5|-2.5  |  -2.5|",
            ),
            (
                "{{ printf \"%g|%e|%.0f\" $value $value $value }}",
                1e-7,
                "1e-07|1.000000e-07|0",
            ),
            (
                "{{ printf \"%q|%.2s|%5s\" \"ab\" \"xyz\" \"c\" }}",
                0.0,
                "\"ab\"|xy|    c",
            ),
            ("{{ printf \"%d\" $value }}", 1.5, "%!d(float64=1.5)"),
            ("{{ printf \"%s %s\" \"a\" }}", 0.0, "a %!s(MISSING)"),
            (
                "{{ printf \"%s\" \"a\" \"b\" }}",
                0.0,
                "a%!(EXTRA string=b)",
            ),
            (
                "{{ printf \"%s\" $labels }}",
                0.0,
                "map[level:error service:ryot]",
            ),
        ];
        for (src, value, want) in cases {
            assert_eq!(render(src, *value), *want, "{src}");
        }
        assert_eq!(render("{{ print 1 2 \"a\" \"b\" 3 }}", 0.0), "1 2ab3");
        assert_eq!(render("{{ print $value \"|\" }}", 0.5), "0.5|");
        assert_eq!(
            render("{{ printf \"%s\" (humanize $value) | toUpper }}", 1500.0),
            "1.5K"
        );
        assert_eq!(
            render("{{ `raw\\n` }}|{{ \"tab\\there\" }}", 0.0),
            "raw\\n|tab\there"
        );
        assert_eq!(render("{{ printf \"%d-%.1f\" 42 -1.25 }}", 0.0), "42--1.2");
        assert_eq!(render("{{ humanize $value }}", f64::INFINITY), "+Inf");
        assert_eq!(render("{{ humanize $value }}", -1234.0), "-1.234k");
        assert_eq!(
            render("{{ humanizeDuration $value }}", -3725.0),
            "-1h 2m 5s"
        );
        assert_eq!(render("{{ humanizeDuration $value }}", 59.5), "59.5s");
        assert_eq!(render("{{ humanizePercentage \"0.5\" }}", 0.0), "50%");
        assert_eq!(
            render("{{ humanize1024 $value }}", 1536.0 * 1024.0),
            "1.5Mi"
        );
    }

    #[test]
    fn control_flow() {
        let src = "{{ if gt $value 1.0 }}high{{ else }}low{{ end }}";
        assert_eq!(render(src, 2.5), "high");
        assert_eq!(render(src, 0.5), "low");
        assert_eq!(
            render(
                "{{ range $k, $v := $labels }}{{ $k }}={{ $v }} {{ end }}",
                0.0
            ),
            "level=error service=ryot "
        );
        assert_eq!(
            render("{{ range .Labels }}[{{ . }}]{{ end }}", 0.0),
            "[error][ryot]"
        );
        assert_eq!(
            render("{{ with $labels.service }}svc {{ . }}{{ end }}", 0.0),
            "svc ryot"
        );
        assert_eq!(
            render("{{ with $labels.none }}x{{ else }}none{{ end }}", 0.0),
            "none"
        );
        assert_eq!(
            render("{{ $v := humanize $value }}{{ $v }}!", 1500.0),
            "1.5k!"
        );
    }

    #[test]
    fn function_sets_stay_apart() {
        // Loki's line_format functions are not Prometheus' and the other
        // way round.
        for src in ["{{ lower \"A\" }}", "{{ __line__ }}", "{{ ToUpper \"a\" }}"] {
            assert!(
                RuleTemplate::parse(src)
                    .unwrap_err()
                    .contains("not defined"),
                "{src}"
            );
        }
        for src in [
            "{{ humanize 1 }}",
            "{{ toUpper \"a\" }}",
            "{{ reReplaceAll \"a\" \"b\" \"c\" }}",
        ] {
            assert!(
                Template::parse("line", src)
                    .unwrap_err()
                    .contains("not defined"),
                "{src}"
            );
        }
    }

    #[test]
    fn errors_are_clear() {
        assert!(RuleTemplate::parse("{{ $value ")
            .unwrap_err()
            .contains("unclosed action"));
        assert!(RuleTemplate::parse("{{ nope $value }}")
            .unwrap_err()
            .contains("function \"nope\" not defined"));
        assert!(RuleTemplate::parse("{{ $other }}")
            .unwrap_err()
            .contains("undefined variable"));
        assert!(RuleTemplate::parse("{{ if $value }}x")
            .unwrap_err()
            .contains("unexpected EOF"));
        let labels = labels();
        let data = RuleData {
            labels: &labels,
            value: 1.0,
            external_url: "",
        };
        let err = RuleTemplate::parse("{{ printf }}")
            .unwrap()
            .execute(&data)
            .unwrap_err();
        assert!(
            err.contains("wrong number of args for printf: want at least 1 got 0"),
            "{err}"
        );
        let err = RuleTemplate::parse("{{ if gt $value 1 }}x{{ end }}")
            .unwrap()
            .execute(&data)
            .unwrap_err();
        assert!(err.contains("incompatible types for comparison"), "{err}");
        let err = RuleTemplate::parse("{{ reReplaceAll \"(\" \"\" \"a\" }}")
            .unwrap()
            .execute(&data)
            .unwrap_err();
        assert!(err.contains("error calling reReplaceAll"), "{err}");
        let err = RuleTemplate::parse("{{ humanize $labels }}")
            .unwrap()
            .execute(&data)
            .unwrap_err();
        assert!(
            err.contains("can't convert map[string]string to float"),
            "{err}"
        );
    }
}
