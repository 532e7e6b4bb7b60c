//! Query parameters with Loki's defaults, formats and error messages.

use std::collections::HashMap;

use sluice_common::duration::parse_duration;
use sluice_common::time::{now_nanos, parse_timestamp};
use sluice_common::HttpError;

/// Loki's default `limit`.
const DEFAULT_LIMIT: u32 = 100;
/// Loki's default look-back when `start` is absent.
const DEFAULT_SINCE_NANOS: i64 = 3600 * 1_000_000_000;

/// Decoded form or query-string parameters; repeated keys keep every value.
#[derive(Debug, Default)]
pub(crate) struct Params {
    values: HashMap<String, Vec<String>>,
}

/// Which way a log query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Forward,
    Backward,
}

/// `[start, end)` in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeRange {
    pub(crate) start: i64,
    pub(crate) end: i64,
}

impl Params {
    /// Collects parameters from the URL query string and, for POSTs, the
    /// form body (both may be present, as with Loki).
    pub(crate) fn parse(query: Option<&str>, form_body: Option<&[u8]>) -> Params {
        let mut values: HashMap<String, Vec<String>> = HashMap::new();
        let sources = query.map(str::as_bytes).into_iter().chain(form_body);
        for source in sources {
            for (key, value) in form_urlencoded::parse(source) {
                values
                    .entry(key.into_owned())
                    .or_default()
                    .push(value.into_owned());
            }
        }
        Params { values }
    }

    /// Returns the first value of a parameter; an empty value counts as
    /// absent, as in Go's `r.Form.Get`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .and_then(|values| values.first())
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }

    /// Returns every value of a parameter.
    pub(crate) fn all(&self, key: &str) -> &[String] {
        self.values.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The required `query` parameter.
    pub(crate) fn query(&self) -> Result<&str, HttpError> {
        self.get("query")
            .ok_or_else(|| HttpError::bad_request("query parameter is required"))
    }

    /// `limit`: default 100, must be positive and within the tenant's
    /// `max_entries_limit_per_query`.
    pub(crate) fn limit(&self, max_entries: u32) -> Result<u32, HttpError> {
        let limit = match self.get("limit") {
            None => DEFAULT_LIMIT,
            Some(text) => {
                let parsed: i64 = text.parse().map_err(|_| {
                    HttpError::bad_request(format!(
                        "strconv.ParseUint: parsing {text:?}: invalid syntax"
                    ))
                })?;
                if parsed <= 0 {
                    return Err(HttpError::bad_request("limit must be a positive value"));
                }
                u32::try_from(parsed).unwrap_or(u32::MAX)
            }
        };
        if max_entries > 0 && limit > max_entries {
            return Err(HttpError::bad_request(format!(
                "max entries limit per query exceeded, limit > max_entries_limit ({limit} > {max_entries})"
            )));
        }
        Ok(limit)
    }

    /// `shards`: the one shard of the streams to read (`<index>_of_<n>`,
    /// as the query frontend sends it), or none.
    pub(crate) fn shard(&self) -> Result<Option<sluice_chunk::Shard>, HttpError> {
        match self.get("shards") {
            None | Some("") => Ok(None),
            Some(text) => text
                .parse()
                .map(Some)
                .map_err(|err: sluice_chunk::ShardError| HttpError::bad_request(err.to_string())),
        }
    }

    /// `direction`: forward or backward (default), case-insensitive.
    pub(crate) fn direction(&self) -> Result<Direction, HttpError> {
        match self.get("direction") {
            None => Ok(Direction::Backward),
            Some(text) if text.eq_ignore_ascii_case("backward") => Ok(Direction::Backward),
            Some(text) if text.eq_ignore_ascii_case("forward") => Ok(Direction::Forward),
            Some(text) => Err(HttpError::bad_request(format!(
                "invalid direction '{text}'"
            ))),
        }
    }

    fn timestamp(&self, key: &str) -> Result<Option<i64>, HttpError> {
        self.get(key)
            .map(|text| {
                parse_timestamp(text).map_err(|err| {
                    HttpError::bad_request(format!("could not parse '{key}' parameter: {err}"))
                })
            })
            .transpose()
    }

    /// `start`/`end`/`since` of a range request: end defaults to now, start
    /// to min(end, now) − since (default 1h); end before start is an error.
    pub(crate) fn range(&self) -> Result<TimeRange, HttpError> {
        let now = now_nanos();
        let end = self.timestamp("end")?.unwrap_or(now);
        let since = match self.get("since") {
            None => DEFAULT_SINCE_NANOS,
            Some(text) => parse_duration(text).map_err(|err| {
                HttpError::bad_request(format!("could not parse 'since' parameter: {err}"))
            })?,
        };
        let start = match self.timestamp("start")? {
            Some(start) => start,
            None => end.min(now).saturating_sub(since),
        };
        if end < start {
            return Err(HttpError::bad_request(
                "end timestamp must not be before or equal to start time",
            ));
        }
        Ok(TimeRange { start, end })
    }

    /// `time` of an instant request, default now.
    pub(crate) fn time(&self) -> Result<i64, HttpError> {
        Ok(self.timestamp("time")?.unwrap_or_else(now_nanos))
    }

    /// A duration given as float seconds or a Prometheus/Go duration
    /// (`step`, `interval`), in ns; `None` when absent.
    fn seconds_or_duration(&self, key: &str) -> Result<Option<i64>, HttpError> {
        let Some(text) = self.get(key) else {
            return Ok(None);
        };
        if let Ok(seconds) = text.parse::<f64>() {
            if seconds.is_finite() {
                return Ok(Some((seconds * 1e9).round() as i64));
            }
        }
        parse_duration(text).map(Some).map_err(|_| {
            HttpError::bad_request(format!("cannot parse \"{text}\" to a valid duration"))
        })
    }

    /// `step` of a metric range query (0 when absent: the engine picks
    /// Loki's default); must be positive.
    pub(crate) fn step(&self) -> Result<i64, HttpError> {
        match self.seconds_or_duration("step")? {
            None => Ok(0),
            Some(step) if step <= 0 => Err(HttpError::bad_request(
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            )),
            Some(step) => Ok(step),
        }
    }

    /// `interval` of a log range query (0 when absent).
    pub(crate) fn interval(&self) -> Result<i64, HttpError> {
        match self.seconds_or_duration("interval")? {
            None => Ok(0),
            Some(interval) if interval < 0 => {
                Err(HttpError::bad_request("interval must be a positive value"))
            }
            Some(interval) => Ok(interval),
        }
    }

    /// `match[]` (or `match`) selectors of a series request.
    pub(crate) fn matches(&self) -> Vec<String> {
        self.all("match[]")
            .iter()
            .chain(self.all("match"))
            .filter(|selector| !selector.is_empty())
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let params = Params::parse(Some("query=%7Ba%3D%22b%22%7D"), None);
        assert_eq!(params.query().unwrap(), "{a=\"b\"}");
        assert_eq!(params.limit(5000).unwrap(), 100);
        assert_eq!(params.direction().unwrap(), Direction::Backward);
        let range = params.range().unwrap();
        assert_eq!(range.end - range.start, DEFAULT_SINCE_NANOS);
    }

    #[test]
    fn loki_errors() {
        let cases = [
            ("limit=0", "limit must be a positive value"),
            ("limit=-4", "limit must be a positive value"),
            (
                "limit=6000",
                "max entries limit per query exceeded, limit > max_entries_limit (6000 > 5000)",
            ),
            ("direction=sideways", "invalid direction 'sideways'"),
        ];
        for (query, message) in cases {
            let params = Params::parse(Some(query), None);
            let err = params
                .limit(5000)
                .and_then(|_| params.direction())
                .unwrap_err();
            assert_eq!(err.message, message, "{query}");
        }
        let params = Params::parse(Some("start=20&end=10"), None);
        assert_eq!(
            params.range().unwrap_err().message,
            "end timestamp must not be before or equal to start time"
        );
        let params = Params::parse(Some("start=abc"), None);
        assert_eq!(
            params.range().unwrap_err().message,
            "could not parse 'start' parameter: strconv.ParseInt: parsing \"abc\": invalid syntax"
        );
    }

    #[test]
    fn form_and_query_string_merge_and_repeat() {
        let params = Params::parse(
            Some("match[]=%7Ba%3D%221%22%7D"),
            Some(b"match[]=%7Bb%3D%222%22%7D&direction=FORWARD"),
        );
        assert_eq!(params.matches(), vec!["{a=\"1\"}", "{b=\"2\"}"]);
        assert_eq!(params.direction().unwrap(), Direction::Forward);
    }

    #[test]
    fn step_forms() {
        assert_eq!(
            Params::parse(Some("step=15"), None).step().unwrap(),
            15_000_000_000
        );
        assert_eq!(
            Params::parse(Some("step=0.5"), None).step().unwrap(),
            500_000_000
        );
        assert_eq!(
            Params::parse(Some("step=1m"), None).step().unwrap(),
            60_000_000_000
        );
        assert_eq!(Params::parse(None, None).step().unwrap(), 0);
        assert_eq!(
            Params::parse(Some("step=0"), None).step().unwrap_err().message,
            "zero or negative query resolution step widths are not accepted. Try a positive integer"
        );
        assert!(Params::parse(Some("step=abc"), None).step().is_err());
    }

    #[test]
    fn since_sets_start() {
        let params = Params::parse(Some("end=1700000000&since=5m"), None);
        let range = params.range().unwrap();
        assert_eq!(range.end, 1_700_000_000_000_000_000);
        assert_eq!(range.start, range.end - 300 * 1_000_000_000);
    }
}
