//! `/ring` (and `/ingester/ring`, `/distributor/ring`): the members of a
//! ring as an HTML table with a Forget button for unhealthy members, or as
//! JSON (`Accept: application/json`) in the shape Loki's UI reads.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::{Deserialize, Serialize};
use sluice_ring::lifecycler::now_ms;
use sluice_ring::{AnyKv, KvStore, Ring, RingWatcher};

/// One ring as the page shows it.
#[derive(Clone)]
pub(crate) struct RingPage {
    /// Page title, e.g. "Ingester ring".
    pub(crate) title: &'static str,
    pub(crate) kv: AnyKv,
    pub(crate) key: &'static str,
    pub(crate) watcher: Arc<RingWatcher>,
    pub(crate) heartbeat_timeout: Duration,
}

/// Serves `page` on each of `paths`.
pub(crate) fn router(page: RingPage, paths: &[&'static str]) -> Router {
    let mut router = Router::new();
    for path in paths {
        router = router.route(path, get(show).post(forget));
    }
    router.with_state(page)
}

#[derive(Serialize)]
struct RingResponse {
    shards: Vec<Shard>,
    now: String,
}

#[derive(Serialize)]
struct Shard {
    id: String,
    state: String,
    address: String,
    timestamp: String,
    registered_timestamp: String,
    zone: String,
    tokens: Vec<u32>,
    ownership: String,
    healthy: bool,
}

#[derive(Deserialize)]
struct ForgetForm {
    forget: String,
}

fn format_ms(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn shards(ring: &Ring, heartbeat_timeout: Duration, now: i64) -> Vec<Shard> {
    let ownership = ring.token_ownership();
    ring.members()
        .iter()
        .map(|member| Shard {
            id: member.id.clone(),
            state: member.state.to_string(),
            address: member.addr.clone(),
            timestamp: format_ms(member.heartbeat_ms),
            registered_timestamp: format_ms(member.registered_ms),
            zone: member.zone.clone(),
            tokens: member.tokens.clone(),
            ownership: format!("{:.2}", ownership.get(&member.id).copied().unwrap_or(0.0)),
            healthy: Ring::healthy(member, now, heartbeat_timeout),
        })
        .collect()
}

async fn show(State(page): State<RingPage>, headers: HeaderMap) -> Response {
    let now = now_ms();
    let ring = page.watcher.ring();
    let shards = shards(&ring, page.heartbeat_timeout, now);
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json"));
    if wants_json {
        return axum::Json(RingResponse {
            shards,
            now: format_ms(now),
        })
        .into_response();
    }
    Html(render_html(page.title, &shards, now)).into_response()
}

async fn forget(State(page): State<RingPage>, Form(form): Form<ForgetForm>) -> Response {
    let id = form.forget;
    let result = page
        .kv
        .update(page.key, |desc| {
            let mut desc = desc.unwrap_or_default();
            desc.members.remove(&id);
            desc
        })
        .await;
    match result {
        Ok(_) => {
            tracing::info!(instance = %id, ring = page.key, "forgot ring member");
            page.watcher.refresh().await;
            // Back to the page, as a browser form post expects.
            (StatusCode::SEE_OTHER, [(header::LOCATION, "?")]).into_response()
        }
        Err(err) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("forgetting {id}: {err}\n"),
        )
            .into_response(),
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn render_html(title: &str, shards: &[Shard], now: i64) -> String {
    let mut html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:sans-serif}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:4px 8px}}.unhealthy{{background:#fdd}}</style>\
         </head><body><h1>{title}</h1><p>Current time: {}</p>\n<table><thead><tr>\
         <th>Instance ID</th><th>Availability Zone</th><th>State</th><th>Address</th>\
         <th>Registered At</th><th>Last Heartbeat</th><th>Tokens</th><th>Ownership</th>\
         <th>Actions</th></tr></thead><tbody>\n",
        format_ms(now)
    );
    for shard in shards {
        let state = if shard.healthy {
            shard.state.clone()
        } else {
            "UNHEALTHY".to_string()
        };
        let action = if shard.healthy {
            String::new()
        } else {
            format!(
                "<form method=\"post\"><input type=\"hidden\" name=\"forget\" value=\"{}\">\
                 <button type=\"submit\">Forget</button></form>",
                escape(&shard.id)
            )
        };
        html.push_str(&format!(
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}%</td><td>{}</td></tr>\n",
            if shard.healthy {
                "healthy"
            } else {
                "unhealthy"
            },
            escape(&shard.id),
            escape(&shard.zone),
            state,
            escape(&shard.address),
            shard.registered_timestamp,
            shard.timestamp,
            shard.tokens.len(),
            shard.ownership,
            action,
        ));
    }
    html.push_str("</tbody></table></body></html>\n");
    html
}
