//! One tenant's streams.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use sluice_chunk::Labels;
use sluice_common::TenantId;
use sluice_logql::Matcher;
use sluice_proto::logproto::PushRequest;
use sluice_proto::timestamp_to_nanos;

use crate::config::IngesterConfig;
use crate::error::IngesterError;
use crate::metrics::{IngesterMetrics, TenantLabel};
use crate::stream::Stream;

/// The streams of one tenant, by fingerprint (a bucket holds the rare
/// label sets whose fingerprints collide).
#[derive(Debug)]
pub(crate) struct Instance {
    tenant: TenantId,
    streams: RwLock<HashMap<u64, Vec<Arc<Stream>>>>,
}

impl Instance {
    pub(crate) fn new(tenant: TenantId) -> Instance {
        Instance {
            tenant,
            streams: RwLock::new(HashMap::new()),
        }
    }

    /// Appends every stream of the request. A stream whose labels do not
    /// parse is skipped and reported; the others are kept (Loki's partial
    /// success).
    pub(crate) fn push(
        &self,
        request: &PushRequest,
        config: &IngesterConfig,
        metrics: &IngesterMetrics,
    ) -> Result<(), IngesterError> {
        let mut last_error = None;
        for stream_request in &request.streams {
            let labels = match Labels::parse(&stream_request.labels) {
                Ok(labels) if !labels.is_empty() => labels,
                Ok(_) => {
                    last_error = Some(IngesterError::InvalidLabels(
                        "error at least one label pair is required per stream".to_string(),
                    ));
                    continue;
                }
                Err(err) => {
                    last_error = Some(IngesterError::InvalidLabels(err.to_string()));
                    continue;
                }
            };
            let stream = self.get_or_create(labels, config, metrics);
            let outcome = stream
                .data
                .lock()
                .append(stream_request.entries.iter().map(|entry| {
                    (
                        timestamp_to_nanos(entry.timestamp.as_ref()),
                        entry.line.as_str(),
                    )
                }));
            if outcome.chunks_created > 0 {
                metrics.chunks_created.inc_by(outcome.chunks_created as u64);
                metrics.memory_chunks.inc_by(outcome.chunks_created as i64);
            }
        }
        match last_error {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    fn get_or_create(
        &self,
        labels: Labels,
        config: &IngesterConfig,
        metrics: &IngesterMetrics,
    ) -> Arc<Stream> {
        let fingerprint = labels.fingerprint();
        if let Some(stream) = self.find(fingerprint, &labels) {
            return stream;
        }
        let mut streams = self.streams.write();
        let bucket = streams.entry(fingerprint).or_default();
        if let Some(stream) = bucket.iter().find(|stream| stream.labels == labels) {
            return Arc::clone(stream);
        }
        let stream = Arc::new(Stream::new(labels, config));
        bucket.push(Arc::clone(&stream));
        let tenant = TenantLabel {
            tenant: self.tenant.to_string(),
        };
        metrics.memory_streams.get_or_create(&tenant).inc();
        metrics.streams_created.get_or_create(&tenant).inc();
        stream
    }

    fn find(&self, fingerprint: u64, labels: &Labels) -> Option<Arc<Stream>> {
        self.streams
            .read()
            .get(&fingerprint)?
            .iter()
            .find(|stream| &stream.labels == labels)
            .cloned()
    }

    /// Returns the streams whose labels satisfy every matcher.
    pub(crate) fn matching(&self, matchers: &[Matcher]) -> Vec<Arc<Stream>> {
        let streams = self.streams.read();
        let mut matched: Vec<Arc<Stream>> = streams
            .values()
            .flatten()
            .filter(|stream| {
                matchers
                    .iter()
                    .all(|matcher| matcher.matches(stream.labels.get(&matcher.name).unwrap_or("")))
            })
            .cloned()
            .collect();
        matched.sort_by(|a, b| a.labels.cmp(&b.labels));
        matched
    }
}
