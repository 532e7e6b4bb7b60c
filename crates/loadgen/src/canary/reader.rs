//! Reading canary entries back through the query API, and the query-polling
//! receive path that hands each entry to the comparator once.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// Entries per query page.
const PAGE_LIMIT: usize = 1000;
/// Pages per read, so a flood of entries cannot keep one read busy forever.
const MAX_PAGES: usize = 100;

/// Parses a canary line (`<unix ns> <padding>`) into its timestamp.
pub fn parse_canary_line(line: &str) -> Result<i64, String> {
    let (ts, _) = line
        .split_once(' ')
        .ok_or_else(|| format!("received invalid entry: {line}"))?;
    ts.parse()
        .map_err(|_| format!("failed to parse timestamp: {ts}"))
}

/// A client for the query endpoints the canary uses.
#[derive(Debug, Clone)]
pub struct Reader {
    client: reqwest::Client,
    base_url: String,
    selector: String,
    tenant: Option<String>,
    basic_auth: Option<(String, String)>,
}

#[derive(Deserialize)]
struct QueryResponse {
    data: QueryData,
}

#[derive(Deserialize)]
struct QueryData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct StreamResult {
    values: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct VectorSample {
    value: (f64, String),
}

impl Reader {
    /// A reader of `selector` (a LogQL stream selector, optionally with
    /// pipeline stages) on the server at `base_url`.
    pub fn new(
        base_url: &str,
        selector: String,
        tenant: Option<String>,
        basic_auth: Option<(String, String)>,
        timeout: Duration,
    ) -> anyhow::Result<Reader> {
        Ok(Reader {
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(timeout)
                .user_agent(concat!("sluice-canary/", env!("CARGO_PKG_VERSION")))
                .build()?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            selector,
            tenant,
            basic_auth,
        })
    }

    /// The LogQL selector this reader queries.
    pub fn selector(&self) -> &str {
        &self.selector
    }

    fn get(&self, path: &str, params: &[(&str, String)]) -> reqwest::RequestBuilder {
        let mut request = self
            .client
            .get(format!("{}{path}", self.base_url))
            .query(params);
        if let Some((user, pass)) = &self.basic_auth {
            request = request.basic_auth(user, Some(pass));
        } else if let Some(tenant) = &self.tenant {
            request = request.header("X-Scope-OrgID", tenant);
        }
        request
    }

    async fn fetch(&self, path: &str, params: &[(&str, String)]) -> anyhow::Result<QueryData> {
        let response = self.get(path, params).send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        if !status.is_success() {
            anyhow::bail!(
                "error response from server: {status} {}",
                String::from_utf8_lossy(&body).trim()
            );
        }
        Ok(serde_json::from_slice::<QueryResponse>(&body)?.data)
    }

    /// Timestamps of every canary entry in `[start, end]` (nanoseconds),
    /// in the order the server returned them, read forward in pages.
    /// Lines that are not canary lines are reported in `invalid`.
    pub async fn entries(&self, start: i64, end: i64) -> anyhow::Result<Entries> {
        let mut entries = Entries::default();
        let mut page_start = start;
        for _ in 0..MAX_PAGES {
            let params = [
                ("query", self.selector.clone()),
                ("start", page_start.to_string()),
                ("end", end.to_string()),
                ("limit", PAGE_LIMIT.to_string()),
                ("direction", "forward".to_owned()),
            ];
            let data = self.fetch("/loki/api/v1/query_range", &params).await?;
            if data.result_type != "streams" {
                anyhow::bail!(
                    "unexpected result type {:?}, expected a log stream result",
                    data.result_type
                );
            }
            let streams: Vec<StreamResult> = serde_json::from_value(data.result)?;
            let mut returned = 0;
            let mut newest_entry = page_start;
            for stream in streams {
                for (entry_ts, line) in stream.values {
                    returned += 1;
                    if let Ok(entry_ts) = entry_ts.parse::<i64>() {
                        newest_entry = newest_entry.max(entry_ts);
                    }
                    match parse_canary_line(&line) {
                        Ok(ts) => entries.timestamps.push(ts),
                        Err(err) => entries.invalid.push(err),
                    }
                }
            }
            // A full page may have more after it; canary timestamps are
            // unique, so the next page starts just after the newest seen.
            if returned < PAGE_LIMIT || newest_entry >= end {
                return Ok(entries);
            }
            page_start = newest_entry + 1;
        }
        Ok(entries)
    }

    /// `count_over_time(<selector>[<range>])` at `at` (ns), as a number.
    pub async fn count_over_time(&self, range: Duration, at: i64) -> anyhow::Result<f64> {
        let query = format!(
            "count_over_time({}[{}s])",
            self.selector,
            range.as_secs().max(1)
        );
        let params = [
            ("query", query),
            ("time", at.to_string()),
            ("limit", "1000".to_owned()),
        ];
        let data = self.fetch("/loki/api/v1/query", &params).await?;
        if data.result_type != "vector" {
            anyhow::bail!(
                "unexpected result type {:?}, expected a vector",
                data.result_type
            );
        }
        let samples: Vec<VectorSample> = serde_json::from_value(data.result)?;
        match samples.as_slice() {
            [] => anyhow::bail!("expected to receive one sample in the result vector, received 0"),
            [sample] => Ok(sample.value.1.parse()?),
            more => anyhow::bail!(
                "expected only a single series result in the metric test query vector, instead received {}",
                more.len()
            ),
        }
    }
}

/// What one read returned.
#[derive(Debug, Default)]
pub struct Entries {
    /// Canary timestamps, as returned.
    pub timestamps: Vec<i64>,
    /// Lines that were not canary lines.
    pub invalid: Vec<String>,
}

/// Turns repeated reads of a sliding window into received entries: each
/// poll returns everything in the window, so an entry seen by an earlier
/// poll is not delivered again, but copies beyond those seen before are
/// (a duplicate stored by the server shows up as two copies).
#[derive(Debug, Default)]
pub struct PollDeliveries {
    /// Copies of each timestamp delivered so far.
    seen: BTreeMap<i64, usize>,
}

impl PollDeliveries {
    /// Takes one poll's result for the window starting at `window_start`
    /// and returns the timestamps to deliver, oldest first.
    pub fn deliver(&mut self, window_start: i64, mut timestamps: Vec<i64>) -> Vec<i64> {
        self.seen = self.seen.split_off(&window_start);
        timestamps.sort_unstable();
        let mut out = Vec::new();
        for group in timestamps.chunk_by(|a, b| a == b) {
            let seen = self.seen.entry(group[0]).or_insert(0);
            for _ in *seen..group.len() {
                out.push(group[0]);
            }
            *seen = (*seen).max(group.len());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canary_lines_parse() {
        assert_eq!(
            parse_canary_line("1557935669096040040 pppp"),
            Ok(1557935669096040040)
        );
        assert!(parse_canary_line("garbage").is_err());
        assert!(parse_canary_line("12x pppp").unwrap_err().contains("12x"));
    }

    #[test]
    fn overlapping_polls_deliver_each_entry_once() {
        let mut deliveries = PollDeliveries::default();
        assert_eq!(deliveries.deliver(0, vec![1, 3]), [1, 3]);
        assert_eq!(deliveries.deliver(0, vec![1, 3, 4]), [4]);
        // A late entry inside the window is delivered when it appears.
        assert_eq!(deliveries.deliver(1, vec![3, 4, 5, 2, 1, 6]), [2, 5, 6]);
    }

    #[test]
    fn copies_beyond_those_seen_are_duplicates_to_deliver() {
        let mut deliveries = PollDeliveries::default();
        assert_eq!(deliveries.deliver(0, vec![5, 5, 6]), [5, 5, 6]);
        assert_eq!(deliveries.deliver(0, vec![5, 5, 6, 6]), [6]);
        assert_eq!(deliveries.deliver(0, vec![5, 6]), Vec::<i64>::new());
    }

    #[test]
    fn entries_that_left_the_window_are_forgotten() {
        let mut deliveries = PollDeliveries::default();
        assert_eq!(deliveries.deliver(0, vec![1, 2]), [1, 2]);
        assert_eq!(deliveries.deliver(10, vec![11]), [11]);
        assert!(!deliveries.seen.contains_key(&1));
    }
}
