//! Stream and entry validation with Loki's rules and messages. Invalid items
//! are dropped, counted by reason, and the last error is kept for the
//! reply; valid ones go on.

use sluice_chunk::Labels;
use sluice_common::{DiscardReason, LimitsConfig};
use sluice_proto::logproto::{EntryAdapter, PushRequest, StreamAdapter};

/// The valid part of a push, and what was wrong with the rest.
#[derive(Debug, Default)]
pub(crate) struct Validated {
    /// Streams with canonical labels, their hash set, and only valid entries.
    pub(crate) request: PushRequest,
    /// Entries kept.
    pub(crate) lines: u64,
    /// Line bytes kept.
    pub(crate) bytes: u64,
    /// The last validation error, as Loki reports it.
    pub(crate) last_error: Option<String>,
    /// Entries and line bytes dropped, by reason.
    pub(crate) discarded: Vec<(DiscardReason, u64, u64)>,
}

impl Validated {
    fn discard(&mut self, reason: DiscardReason, lines: u64, bytes: u64, message: String) {
        match self
            .discarded
            .iter_mut()
            .find(|(existing, _, _)| *existing == reason)
        {
            Some((_, total_lines, total_bytes)) => {
                *total_lines += lines;
                *total_bytes += bytes;
            }
            None => self.discarded.push((reason, lines, bytes)),
        }
        self.last_error = Some(message);
    }
}

fn line_bytes(entries: &[EntryAdapter]) -> u64 {
    entries.iter().map(|entry| entry.line.len() as u64).sum()
}

/// Validates every stream and entry of a push against `now_ns`.
pub(crate) fn validate(request: PushRequest, limits: &LimitsConfig, now_ns: i64) -> Validated {
    let mut validated = Validated::default();
    let nanos =
        |duration: std::time::Duration| i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX);
    let oldest = limits
        .reject_old_samples
        .then(|| now_ns.saturating_sub(nanos(limits.reject_old_samples_max_age)));
    let newest = now_ns.saturating_add(nanos(limits.creation_grace_period));
    for stream in request.streams {
        let labels = match validate_labels(&stream.labels, limits) {
            Ok(labels) => labels,
            Err((reason, message)) => {
                validated.discard(
                    reason,
                    stream.entries.len() as u64,
                    line_bytes(&stream.entries),
                    message,
                );
                continue;
            }
        };
        let labels_text = labels.to_string();
        let mut entries = stream.entries;
        let mut rejected: Vec<(DiscardReason, u64, String)> = Vec::new();
        entries.retain_mut(|entry| {
            let timestamp = sluice_proto::timestamp_to_nanos(entry.timestamp.as_ref());
            if let Some(oldest) = oldest.filter(|oldest| timestamp < *oldest) {
                rejected.push((
                    DiscardReason::GreaterThanMaxSampleAge,
                    entry.line.len() as u64,
                    format!(
                        "entry for stream '{}' has timestamp too old: {}, oldest acceptable timestamp is: {}",
                        labels_text,
                        format_rfc3339_seconds(timestamp),
                        format_rfc3339_seconds(oldest)
                    ),
                ));
                return false;
            }
            if timestamp > newest {
                rejected.push((
                    DiscardReason::TooFarInFuture,
                    entry.line.len() as u64,
                    format!(
                        "entry for stream '{}' has timestamp too new: {}",
                        labels_text,
                        format_rfc3339_seconds(timestamp)
                    ),
                ));
                return false;
            }
            if limits.max_line_size > 0 && entry.line.len() > limits.max_line_size {
                if limits.max_line_size_truncate {
                    let mut cut = limits.max_line_size;
                    while !entry.line.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    entry.line.truncate(cut);
                } else {
                    rejected.push((
                        DiscardReason::LineTooLong,
                        entry.line.len() as u64,
                        format!(
                            "Max entry size '{}' bytes exceeded for stream '{}' while adding an entry with length '{}' bytes",
                            limits.max_line_size,
                            labels_text,
                            entry.line.len()
                        ),
                    ));
                    return false;
                }
            }
            true
        });
        for (reason, bytes, message) in rejected {
            validated.discard(reason, 1, bytes, message);
        }
        if entries.is_empty() {
            continue;
        }
        validated.lines += entries.len() as u64;
        validated.bytes += line_bytes(&entries);
        validated.request.streams.push(StreamAdapter {
            hash: labels.fingerprint(),
            labels: labels_text,
            entries,
        });
    }
    validated
}

/// Formats a timestamp as Go's `time.RFC3339` (whole seconds), as Loki's
/// messages do.
fn format_rfc3339_seconds(nanos: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_nanos(nanos)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Parses and checks one stream's labels; the error text is Loki's.
fn validate_labels(text: &str, limits: &LimitsConfig) -> Result<Labels, (DiscardReason, String)> {
    let labels =
        Labels::parse(text).map_err(|err| (DiscardReason::InvalidLabels, err.to_string()))?;
    if labels.is_empty() {
        return Err((
            DiscardReason::MissingLabels,
            "error at least one label pair is required per stream".to_string(),
        ));
    }
    if labels.len() > limits.max_label_names_per_series {
        return Err((
            DiscardReason::MaxLabelNamesPerSeries,
            format!(
                "entry for stream '{}' has {} label names; limit {}",
                labels,
                labels.len(),
                limits.max_label_names_per_series
            ),
        ));
    }
    for label in labels.iter() {
        if label.name.len() > limits.max_label_name_length {
            return Err((
                DiscardReason::LabelNameTooLong,
                format!(
                    "stream '{labels}' has label name too long: '{}'",
                    label.name
                ),
            ));
        }
        if label.value.len() > limits.max_label_value_length {
            return Err((
                DiscardReason::LabelValueTooLong,
                format!(
                    "stream '{labels}' has label value too long: '{}'",
                    label.value
                ),
            ));
        }
    }
    if let Some(name) = labels.first_duplicate_name() {
        return Err((
            DiscardReason::DuplicateLabelNames,
            format!("stream '{labels}' has duplicate label name: '{name}'"),
        ));
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_proto::logproto::EntryAdapter;

    fn stream(labels: &str, lines: &[&str]) -> StreamAdapter {
        StreamAdapter {
            labels: labels.to_string(),
            entries: lines
                .iter()
                .map(|line| EntryAdapter {
                    timestamp: Some(sluice_proto::timestamp_from_nanos(1)),
                    line: line.to_string(),
                    structured_metadata: Vec::new(),
                })
                .collect(),
            hash: 0,
        }
    }

    #[test]
    fn canonicalizes_and_keeps_valid_streams() {
        let request = PushRequest {
            streams: vec![
                stream("{b=\"2\",a=\"1\"}", &["x", "yy"]),
                stream("{}", &["z"]),
            ],
        };
        let validated = validate(request, &LimitsConfig::default(), 1);
        assert_eq!(validated.request.streams.len(), 1);
        assert_eq!(validated.request.streams[0].labels, "{a=\"1\", b=\"2\"}");
        assert_ne!(validated.request.streams[0].hash, 0);
        assert_eq!((validated.lines, validated.bytes), (2, 3));
        assert_eq!(
            validated.last_error.as_deref(),
            Some("error at least one label pair is required per stream")
        );
    }

    #[test]
    fn loki_messages() {
        let limits = LimitsConfig {
            max_label_names_per_series: 2,
            max_label_name_length: 5,
            max_label_value_length: 5,
            max_line_size: 3,
            ..LimitsConfig::default()
        };
        let cases = [
            (
                "{a=\"1\", b=\"2\", c=\"3\"}",
                "entry for stream '{a=\"1\", b=\"2\", c=\"3\"}' has 3 label names; limit 2",
                DiscardReason::MaxLabelNamesPerSeries,
            ),
            (
                "{abcdefg=\"1\"}",
                "stream '{abcdefg=\"1\"}' has label name too long: 'abcdefg'",
                DiscardReason::LabelNameTooLong,
            ),
            (
                "{a=\"1234567\"}",
                "stream '{a=\"1234567\"}' has label value too long: '1234567'",
                DiscardReason::LabelValueTooLong,
            ),
            (
                "{a=\"1\", a=\"2\"}",
                "stream '{a=\"1\", a=\"2\"}' has duplicate label name: 'a'",
                DiscardReason::DuplicateLabelNames,
            ),
            ("{a-b=\"1\"}", "", DiscardReason::InvalidLabels),
            (
                "{}",
                "error at least one label pair is required per stream",
                DiscardReason::MissingLabels,
            ),
        ];
        for (labels, message, reason) in cases {
            let validated = validate(
                PushRequest {
                    streams: vec![stream(labels, &["x"])],
                },
                &limits,
                1,
            );
            assert!(validated.request.streams.is_empty(), "{labels}");
            if !message.is_empty() {
                assert_eq!(validated.last_error.as_deref(), Some(message));
            }
            assert_eq!(validated.discarded, vec![(reason, 1, 1)], "{labels}");
        }
        let validated = validate(
            PushRequest {
                streams: vec![stream("{a=\"1\"}", &["ok", "toolong"])],
            },
            &limits,
            1,
        );
        assert_eq!(validated.lines, 1);
        assert_eq!(
            validated.last_error.as_deref(),
            Some("Max entry size '3' bytes exceeded for stream '{a=\"1\"}' while adding an entry with length '7' bytes")
        );
        assert_eq!(
            validated.discarded,
            vec![(DiscardReason::LineTooLong, 1, 7)]
        );
    }

    #[test]
    fn too_old_and_too_new_use_loki_wording() {
        let day = 24 * 3600 * 1_000_000_000_i64;
        let now = 1_700_000_000_000_000_000;
        let mut request = PushRequest {
            streams: vec![stream("{job=\"t\"}", &["old"])],
        };
        request.streams[0].entries[0].timestamp =
            Some(sluice_proto::timestamp_from_nanos(now - 8 * day));
        let validated = validate(request.clone(), &LimitsConfig::default(), now);
        assert!(validated.request.streams.is_empty());
        assert_eq!(
            validated.discarded,
            vec![(DiscardReason::GreaterThanMaxSampleAge, 1, 3)]
        );
        assert_eq!(
            validated.last_error.as_deref(),
            Some("entry for stream '{job=\"t\"}' has timestamp too old: 2023-11-06T22:13:20Z, oldest acceptable timestamp is: 2023-11-07T22:13:20Z")
        );
        let lenient = LimitsConfig {
            reject_old_samples: false,
            ..LimitsConfig::default()
        };
        assert_eq!(validate(request, &lenient, now).lines, 1);
        let mut request = PushRequest {
            streams: vec![stream("{job=\"t\"}", &["future"])],
        };
        request.streams[0].entries[0].timestamp =
            Some(sluice_proto::timestamp_from_nanos(now + day / 24));
        let validated = validate(request, &LimitsConfig::default(), now);
        assert_eq!(
            validated.last_error.as_deref(),
            Some("entry for stream '{job=\"t\"}' has timestamp too new: 2023-11-14T23:13:20Z")
        );
        assert_eq!(
            validated.discarded,
            vec![(DiscardReason::TooFarInFuture, 1, 6)]
        );
    }

    #[test]
    fn truncation_instead_of_rejection() {
        let limits = LimitsConfig {
            max_line_size: 3,
            max_line_size_truncate: true,
            ..LimitsConfig::default()
        };
        let validated = validate(
            PushRequest {
                streams: vec![stream("{a=\"1\"}", &["abcdef"])],
            },
            &limits,
            1,
        );
        assert_eq!(validated.request.streams[0].entries[0].line, "abc");
        assert!(validated.last_error.is_none());
    }
}
