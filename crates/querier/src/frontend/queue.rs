//! The frontend's request queue: one FIFO per tenant, served round-robin
//! across tenants, so a tenant with thousands of queued sub-queries delays
//! another tenant by at most one sub-query per turn. A tenant over
//! `max_outstanding_per_tenant` gets 429 without queueing.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use sluice_proto::frontend::{HttpRequest, HttpResponse};
use tokio::sync::{oneshot, Notify};

/// One queued HTTP request and where its answer goes.
pub(crate) struct Job {
    pub(crate) tenant: String,
    pub(crate) request: HttpRequest,
    pub(crate) reply: oneshot::Sender<HttpResponse>,
    pub(crate) enqueued: Instant,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct UserLabel {
    user: String,
}

#[derive(Default)]
struct State {
    /// Tenants with queued jobs, in serving order.
    order: VecDeque<String>,
    queues: HashMap<String, VecDeque<Job>>,
}

pub(crate) struct Queue {
    state: Mutex<State>,
    ready: Notify,
    max_per_tenant: usize,
    length: Family<UserLabel, Gauge>,
    discarded: Family<UserLabel, Counter>,
    wait: Histogram,
}

/// The queue is full for this tenant.
#[derive(Debug)]
pub(crate) struct TooManyOutstanding;

impl Queue {
    pub(crate) fn new(max_per_tenant: usize, registry: &mut Registry) -> Queue {
        let queue = Queue {
            state: Mutex::new(State::default()),
            ready: Notify::new(),
            max_per_tenant: max_per_tenant.max(1),
            length: Family::default(),
            discarded: Family::default(),
            wait: Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.001, 4.0, 9,
            )),
        };
        registry.register(
            "loki_query_frontend_queue_length",
            "Number of queries in the frontend queue, per tenant.",
            queue.length.clone(),
        );
        registry.register(
            "loki_query_frontend_discarded_requests",
            "Requests refused because the tenant's queue was full.",
            queue.discarded.clone(),
        );
        registry.register(
            "loki_query_frontend_queue_duration_seconds",
            "Time requests spent queued.",
            queue.wait.clone(),
        );
        queue
    }

    /// Queues `job` behind the tenant's earlier jobs.
    pub(crate) fn enqueue(&self, job: Job) -> Result<(), TooManyOutstanding> {
        let label = UserLabel {
            user: job.tenant.clone(),
        };
        {
            let mut state = self.state.lock();
            let tenant = job.tenant.clone();
            let queue = state.queues.entry(tenant.clone()).or_default();
            if queue.len() >= self.max_per_tenant {
                drop(state);
                self.discarded.get_or_create(&label).inc();
                return Err(TooManyOutstanding);
            }
            queue.push_back(job);
            let queued = queue.len();
            if queued == 1 {
                state.order.push_back(tenant);
            }
            self.length.get_or_create(&label).set(queued as i64);
        }
        self.ready.notify_one();
        Ok(())
    }

    /// Puts a job whose querier went away back at the head of its queue.
    pub(crate) fn requeue(&self, job: Job) {
        {
            let mut state = self.state.lock();
            let tenant = job.tenant.clone();
            let queue = state.queues.entry(tenant.clone()).or_default();
            queue.push_front(job);
            if queue.len() == 1 {
                state.order.push_front(tenant);
            }
        }
        self.ready.notify_one();
    }

    /// Waits for the next job, taking tenants in turn.
    pub(crate) async fn dequeue(&self) -> Job {
        loop {
            let notified = self.ready.notified();
            if let Some(job) = self.try_dequeue() {
                return job;
            }
            notified.await;
        }
    }

    fn try_dequeue(&self) -> Option<Job> {
        let mut state = self.state.lock();
        while let Some(tenant) = state.order.pop_front() {
            let Some(queue) = state.queues.get_mut(&tenant) else {
                continue;
            };
            let Some(job) = queue.pop_front() else {
                state.queues.remove(&tenant);
                continue;
            };
            let left = queue.len();
            if left > 0 {
                state.order.push_back(tenant.clone());
            } else {
                state.queues.remove(&tenant);
            }
            drop(state);
            self.length
                .get_or_create(&UserLabel { user: tenant })
                .set(left as i64);
            self.wait.observe(job.enqueued.elapsed().as_secs_f64());
            if left > 0 {
                // Another waiting worker may take the next one.
                self.ready.notify_one();
            }
            return Some(job);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(tenant: &str, n: usize) -> (Job, oneshot::Receiver<HttpResponse>) {
        let (reply, rx) = oneshot::channel();
        (
            Job {
                tenant: tenant.to_string(),
                request: HttpRequest {
                    url: format!("/{n}"),
                    ..HttpRequest::default()
                },
                reply,
                enqueued: Instant::now(),
            },
            rx,
        )
    }

    #[tokio::test]
    async fn tenants_take_turns_and_a_full_queue_refuses() {
        let queue = Queue::new(3, &mut Registry::default());
        let mut receivers = Vec::new();
        for n in 0..3 {
            let (job, rx) = job("flood", n);
            queue.enqueue(job).expect("room");
            receivers.push(rx);
        }
        assert!(queue.enqueue(job("flood", 9).0).is_err(), "4th refused");
        let (quiet, _rx) = job("quiet", 0);
        queue.enqueue(quiet).expect("other tenant unaffected");
        let order: Vec<String> = [
            queue.dequeue().await,
            queue.dequeue().await,
            queue.dequeue().await,
        ]
        .into_iter()
        .map(|job| format!("{}{}", job.tenant, job.request.url))
        .collect();
        assert_eq!(order, ["flood/0", "quiet/0", "flood/1"]);
    }
}
