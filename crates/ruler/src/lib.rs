//! The ruler: Loki's alerting and recording rules on LogQL.
//!
//! Rule groups in Prometheus' rule-file format ([`rulefmt`]), per tenant
//! and namespace, come from a local directory or an object store
//! ([`store`]); each group the ruler owns ([`sharding`], on the ruler
//! ring) runs on its interval ([`group`], [`manager`]), evaluating its
//! LogQL queries through the querier path ([`evaluator`]). Alerting rules
//! move alerts through pending → firing → resolved ([`alerting`]),
//! templating labels and annotations with `sluice_logql`'s Go template
//! engine ([`sluice_logql::template::RuleTemplate`]), and send them to
//! Alertmanager's v2 API ([`notifier`], [`discovery`]). Recording rules'
//! samples go through a write-ahead log ([`sample_wal`]) to Prometheus
//! remote-write receivers ([`remote_write`], [`prompb`]). [`api`] serves
//! Loki's rules API; [`ruler`] ties it together.

pub mod alerting;
mod api;
pub mod config;
pub mod discovery;
pub mod evaluator;
pub mod group;
pub mod manager;
pub mod metrics;
pub mod notifier;
pub mod prompb;
pub mod remote_write;
pub mod rulefmt;
pub mod ruler;
pub mod sample_wal;
pub mod sharding;
pub mod store;

pub use config::RulerConfig;
pub use evaluator::{LocalEvaluator, QueryEvaluator, RemoteEvaluator};
pub use ruler::{Ruler, RulerDeps, RulerError};
pub use sharding::{Sharding, RULER_RING_KEY};
pub use store::RuleStore;
