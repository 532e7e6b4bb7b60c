//! The ingester's gRPC face: `logproto.Pusher` and `logproto.Querier`.
//! Decodes the tenant from metadata, runs the core off the async runtime,
//! and encodes results.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use sluice_common::tenant::ORG_ID_HEADER;
use sluice_common::{stage_span, TenantId};
use sluice_proto::logproto::querier_server::{Querier, QuerierServer};
use sluice_proto::logproto::{
    ChunkStatsRequest, ChunkStatsResponse, IndexStatsRequest, IndexStatsResponse, LabelRequest,
    LabelResponse, QueryRequest, QueryResponse, SampleQueryRequest, SampleQueryResponse,
    SeriesRequest, SeriesResponse, TailRequest, TailResponse, TailersCountRequest,
    TailersCountResponse, VolumeRequest, VolumeResponse,
};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use crate::error::IngesterError;
use crate::ingester::Ingester;
use crate::push_server::PushServer;
use crate::tail::TAIL_BUFFER;

/// Batches buffered between the query thread and the gRPC stream.
const QUERY_STREAM_BUFFER: usize = 4;

/// Implements both gRPC services over one [`Ingester`].
#[derive(Debug, Clone)]
pub struct IngesterService {
    ingester: Arc<Ingester>,
}

impl IngesterService {
    /// Wraps an ingester.
    pub fn new(ingester: Arc<Ingester>) -> IngesterService {
        IngesterService { ingester }
    }

    /// Returns the Pusher server, with message size limits.
    pub fn pusher_server(&self, max_recv: usize, max_send: usize) -> PushServer {
        PushServer::new(Arc::clone(&self.ingester), max_recv, max_send)
    }

    /// Returns the generated Querier server, with message size limits.
    pub fn querier_server(
        &self,
        max_recv: usize,
        max_send: usize,
    ) -> QuerierServer<IngesterService> {
        QuerierServer::new(self.clone())
            .max_decoding_message_size(max_recv)
            .max_encoding_message_size(max_send)
    }
}

/// Reads the tenant the caller (distributor or querier) already validated.
pub(crate) fn tenant_of<T>(request: &Request<T>) -> Result<TenantId, IngesterError> {
    let value = request
        .metadata()
        .get(ORG_ID_HEADER)
        .ok_or(IngesterError::MissingTenant)?
        .to_str()
        .map_err(|_| IngesterError::MissingTenant)?;
    Ok(TenantId::new(value)?)
}

/// Runs CPU-bound ingester work on the blocking pool, inside `span`.
pub(crate) async fn blocking<T: Send + 'static>(
    span: tracing::Span,
    work: impl FnOnce() -> Result<T, IngesterError> + Send + 'static,
) -> Result<T, Status> {
    match tokio::task::spawn_blocking(move || span.in_scope(work)).await {
        Ok(result) => result.map_err(Status::from),
        Err(join_error) => Err(Status::internal(format!(
            "ingester task failed: {join_error}"
        ))),
    }
}

type QueryStream = Pin<Box<dyn Stream<Item = Result<QueryResponse, Status>> + Send>>;
type QuerySampleStream = Pin<Box<dyn Stream<Item = Result<SampleQueryResponse, Status>> + Send>>;
type TailStream = Pin<Box<dyn Stream<Item = Result<TailResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Querier for IngesterService {
    type QueryStream = QueryStream;
    type QuerySampleStream = QuerySampleStream;
    type TailStream = TailStream;

    async fn query(&self, request: Request<QueryRequest>) -> Result<Response<QueryStream>, Status> {
        let tenant = tenant_of(&request)?;
        let query = request.into_inner();
        let ingester = Arc::clone(&self.ingester);
        let (sender, receiver) = mpsc::channel(QUERY_STREAM_BUFFER);
        let span = stage_span!(
            "ingester.query",
            tenant = %tenant,
            selector = %query.selector,
            streams = tracing::field::Empty,
            entries = tracing::field::Empty,
        );
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let (mut streams, mut entries) = (0usize, 0usize);
            let result = ingester.query(&tenant, &query, |batch| {
                streams += batch.streams.len();
                entries += batch
                    .streams
                    .iter()
                    .map(|stream| stream.entries.len())
                    .sum::<usize>();
                sender.blocking_send(Ok(batch)).is_ok()
            });
            span.record("streams", streams);
            span.record("entries", entries);
            if let Err(err) = result {
                // The receiver may be gone already; nothing else to tell.
                let _ = sender.blocking_send(Err(Status::from(err)));
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        )))
    }

    async fn query_sample(
        &self,
        request: Request<SampleQueryRequest>,
    ) -> Result<Response<QuerySampleStream>, Status> {
        let tenant = tenant_of(&request)?;
        let query = request.into_inner();
        let ingester = Arc::clone(&self.ingester);
        let (sender, receiver) = mpsc::channel(QUERY_STREAM_BUFFER);
        let span = stage_span!(
            "ingester.query_sample",
            tenant = %tenant,
            selector = %query.selector,
            series = tracing::field::Empty,
            samples = tracing::field::Empty,
        );
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let (mut series, mut samples) = (0usize, 0usize);
            let result = ingester.query_samples(&tenant, &query, |batch| {
                series += batch.series.len();
                samples += batch
                    .series
                    .iter()
                    .map(|one| one.samples.len())
                    .sum::<usize>();
                sender.blocking_send(Ok(batch)).is_ok()
            });
            span.record("series", series);
            span.record("samples", samples);
            if let Err(err) = result {
                // The receiver may be gone already; nothing else to tell.
                let _ = sender.blocking_send(Err(Status::from(err)));
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        )))
    }

    async fn label(
        &self,
        request: Request<LabelRequest>,
    ) -> Result<Response<LabelResponse>, Status> {
        let tenant = tenant_of(&request)?;
        let label = request.into_inner();
        let ingester = Arc::clone(&self.ingester);
        let response = blocking(stage_span!("ingester.label", tenant = %tenant), move || {
            ingester.label(&tenant, &label)
        })
        .await?;
        Ok(Response::new(response))
    }

    async fn series(
        &self,
        request: Request<SeriesRequest>,
    ) -> Result<Response<SeriesResponse>, Status> {
        let tenant = tenant_of(&request)?;
        let series = request.into_inner();
        let ingester = Arc::clone(&self.ingester);
        let response = blocking(
            stage_span!("ingester.series", tenant = %tenant),
            move || ingester.series(&tenant, &series),
        )
        .await?;
        Ok(Response::new(response))
    }

    async fn tail(&self, request: Request<TailRequest>) -> Result<Response<TailStream>, Status> {
        let tenant = tenant_of(&request)?;
        let tail = request.into_inner();
        let (sender, receiver) = mpsc::channel(TAIL_BUFFER);
        self.ingester.tail(&tenant, &tail.query, sender)?;
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        )))
    }

    async fn tailers_count(
        &self,
        request: Request<TailersCountRequest>,
    ) -> Result<Response<TailersCountResponse>, Status> {
        let tenant = tenant_of(&request)?;
        let count = self.ingester.tailers_count(&tenant);
        Ok(Response::new(TailersCountResponse {
            count: u32::try_from(count).unwrap_or(u32::MAX),
        }))
    }

    async fn get_stats(
        &self,
        request: Request<IndexStatsRequest>,
    ) -> Result<Response<IndexStatsResponse>, Status> {
        let tenant = tenant_of(&request)?;
        let stats = request.into_inner();
        let ingester = Arc::clone(&self.ingester);
        let response = blocking(
            stage_span!("ingester.index_stats", tenant = %tenant),
            move || ingester.index_stats(&tenant, &stats),
        )
        .await?;
        Ok(Response::new(response))
    }

    async fn get_volume(
        &self,
        request: Request<VolumeRequest>,
    ) -> Result<Response<VolumeResponse>, Status> {
        let tenant = tenant_of(&request)?;
        let volume = request.into_inner();
        let ingester = Arc::clone(&self.ingester);
        let response = blocking(
            stage_span!("ingester.volume", tenant = %tenant),
            move || ingester.volume(&tenant, &volume),
        )
        .await?;
        Ok(Response::new(response))
    }

    async fn get_chunk_stats(
        &self,
        request: Request<ChunkStatsRequest>,
    ) -> Result<Response<ChunkStatsResponse>, Status> {
        let tenant = tenant_of(&request)?;
        let stats = request.into_inner();
        let ingester = Arc::clone(&self.ingester);
        let response = blocking(
            stage_span!("ingester.chunk_stats", tenant = %tenant),
            move || ingester.chunk_stats(&tenant, &stats),
        )
        .await?;
        Ok(Response::new(response))
    }
}
