//! `sluice canary` against a distributed cluster while an ingester is
//! killed: the short form of `make canary-soak`. Memcached holds the ring;
//! three ingesters (replication factor 3, WAL with fsync `always`), a
//! distributor and a querier behind a query frontend are separate
//! processes. Two canaries push to the distributor and read back through
//! the frontend, one over live tail and one by polling query_range. One
//! ingester is killed with SIGKILL mid-run, left down until the ring calls
//! it unhealthy and restarted on its directory (WAL replay) under the same
//! instance id. Once the canaries are suspended
//! and every line is decided, none may be missing or duplicated, and the
//! lines written while the ingester was down must be readable.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sluice_integration_tests::cluster::{
    ring_states, start_node, start_read_path, store_dir, wait_ring_active, ClusterConfig, Memcached,
};
use sluice_integration_tests::{
    free_port, http_client, now_ns, prom, sluice_bin, tail, Failures, SluiceProcess, SEC,
};

const INGESTERS: [&str; 3] = ["ingester-0", "ingester-1", "ingester-2"];
const RING_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines each canary writes in each phase (before, during and after the
/// outage), at one line per 100 ms.
const LINES_PER_PHASE: f64 = 80.0;

/// One `sluice canary` process, killed when the test ends.
struct Canary {
    name: &'static str,
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Canary {
    fn spawn(
        name: &'static str,
        tail: bool,
        frontend: &SluiceProcess,
        distributor: &SluiceProcess,
        dir: &Path,
    ) -> Canary {
        let port = free_port();
        let log = dir.join(format!("{name}.log"));
        let stderr = std::fs::File::create(&log).expect("canary log");
        let child = Command::new(sluice_bin())
            .args([
                "canary".to_owned(),
                format!("-addr=127.0.0.1:{}", frontend.http_port()),
                format!("-write-addr=127.0.0.1:{}", distributor.http_port()),
                format!("-port={port}"),
                format!("-labelvalue={name}"),
                format!("-tail={tail}"),
                "-interval=100ms".to_owned(),
                // Longer than the tail's 10 s reconnection pause: a tail
                // that goes quiet for a second under a loaded suite
                // reconnects and gets the lines it missed by backfill
                // before they count as missing from it.
                "-wait=12s".to_owned(),
                "-max-wait=30s".to_owned(),
                "-pruneinterval=1s".to_owned(),
                "-query-interval=500ms".to_owned(),
                "-spot-check-interval=5s".to_owned(),
                "-spot-check-query-rate=3s".to_owned(),
                "-spot-check-initial-wait=2s".to_owned(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn sluice canary");
        Canary {
            name,
            child,
            port,
            log,
        }
    }

    fn metrics(&mut self) -> String {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "canary {} exited with {status}:\n{}",
                self.name,
                self.log_text()
            );
        }
        http_client()
            .get(format!("http://127.0.0.1:{}/metrics", self.port))
            .send()
            .and_then(|resp| resp.text())
            .unwrap_or_default()
    }

    fn value(&mut self, name: &str) -> f64 {
        prom::find(&self.metrics(), name, &[]).unwrap_or(0.0)
    }

    fn written(&mut self) -> f64 {
        self.value("loki_canary_entries_total")
    }

    fn suspend(&self) {
        let resp = http_client()
            .get(format!("http://127.0.0.1:{}/suspend", self.port))
            .send()
            .expect("suspend");
        assert_eq!(resp.status(), 200);
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until every canary has written `lines` more than `from` (its
/// count when the phase began).
fn write_more(canaries: &mut [Canary], from: &[f64], lines: f64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for (canary, from) in canaries.iter_mut().zip(from) {
        while canary.written() < from + lines {
            assert!(
                Instant::now() < deadline,
                "{}: fewer than {lines} lines written {what}\n{}",
                canary.name,
                tail(&canary.log_text(), 4000)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn written(canaries: &mut [Canary]) -> Vec<f64> {
    canaries.iter_mut().map(Canary::written).collect()
}

/// Canary timestamps of `name`'s lines in `[start, end]`, read through
/// `frontend` in pages, oldest first.
fn read_lines(frontend: &SluiceProcess, name: &str, start: i64, end: i64) -> Vec<i64> {
    let query = format!(r#"{{name="{name}", stream="stdout"}}"#);
    let mut lines = Vec::new();
    let mut from = start;
    loop {
        let (from_s, end_s) = (from.to_string(), end.to_string());
        let json = frontend
            .query_range(
                &[
                    ("query", &query),
                    ("start", &from_s),
                    ("end", &end_s),
                    ("limit", "1000"),
                    ("direction", "forward"),
                ],
                None,
            )
            .ok_json();
        let mut page: Vec<i64> = json["data"]["result"]
            .as_array()
            .expect("streams")
            .iter()
            .flat_map(|stream| stream["values"].as_array().expect("values").iter())
            .map(|value| {
                let line = value[1].as_str().expect("line");
                line.split_once(' ')
                    .and_then(|(ts, _)| ts.parse().ok())
                    .unwrap_or_else(|| panic!("not a canary line: {line}"))
            })
            .collect();
        page.sort_unstable();
        let full = page.len() == 1000;
        let last = page.last().copied();
        lines.extend(page);
        match last {
            Some(last) if full => from = last + 1,
            _ => return lines,
        }
    }
}

#[test]
fn canary_misses_nothing_while_an_ingester_is_killed_and_restarted() {
    let root = tempfile::tempdir().expect("tempdir");
    let memcached = Memcached::start();
    let config = ClusterConfig {
        memcached: memcached.addr(),
        store_dir: store_dir(root.path()),
        extra_yaml: "ingester:\n  wal:\n    enabled: true\n    fsync: always\n".to_owned(),
    };
    let mut ingesters: Vec<SluiceProcess> = INGESTERS
        .iter()
        .map(|id| start_node(&config, "ingester", id))
        .collect();
    let distributor = start_node(&config, "distributor", "distributor-0");
    let (frontend, querier) = start_read_path(&config);
    wait_ring_active(&distributor, &INGESTERS, RING_TIMEOUT);
    wait_ring_active(&querier, &INGESTERS, RING_TIMEOUT);

    let started = now_ns();
    let mut canaries = [
        Canary::spawn("canary-tail", true, &frontend, &distributor, root.path()),
        Canary::spawn("canary-query", false, &frontend, &distributor, root.path()),
    ];
    write_more(&mut canaries, &[0.0, 0.0], LINES_PER_PHASE, "at first");

    // SIGKILL: no flush, no goodbye to the ring.
    ingesters[1].kill();
    let killed_at = now_ns();
    let before_outage = written(&mut canaries);
    write_more(
        &mut canaries,
        &before_outage,
        LINES_PER_PHASE,
        "with ingester-1 down",
    );
    // Down long enough for the ring to call it unhealthy (heartbeat
    // timeout 10 s): reads and writes then skip it instead of failing on it.
    let deadline = Instant::now() + RING_TIMEOUT;
    while ring_states(&distributor, "/ring")
        .get("ingester-1")
        .is_none_or(|(_, healthy)| *healthy)
    {
        assert!(
            Instant::now() < deadline,
            "ingester-1 never turned unhealthy"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let during_outage: Vec<f64> = written(&mut canaries)
        .iter()
        .zip(&before_outage)
        .map(|(now, before)| now - before)
        .collect();
    let restarted_at = now_ns();
    // Same directory and instance id: it replays its WAL and rejoins.
    ingesters[1].restart();
    // A debug build replaying its WAL while the rest of the suite runs on
    // the same two cores once took over 30 s to show healthy again.
    wait_ring_active(&distributor, &INGESTERS, 2 * RING_TIMEOUT);
    wait_ring_active(&querier, &INGESTERS, 2 * RING_TIMEOUT);
    let after_restart = written(&mut canaries);
    write_more(
        &mut canaries,
        &after_restart,
        LINES_PER_PHASE,
        "after the restart",
    );

    // Stop writing; every line written is then received or, after
    // -max-wait, reported missing.
    for canary in &canaries {
        canary.suspend();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for canary in &mut canaries {
        while canary.value("loki_canary_outstanding_entries") > 0.0 {
            assert!(
                Instant::now() < deadline,
                "{}: lines still undecided a minute after suspending\n{}",
                canary.name,
                tail(&canary.log_text(), 4000)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    let mut failures = Failures::new();
    for (canary, during) in canaries.iter_mut().zip(&during_outage) {
        let text = canary.metrics();
        let value = |name: &str| {
            prom::find(&text, name, &[]).unwrap_or_else(|| panic!("{name} missing:\n{text}"))
        };
        let name = canary.name;
        let written = value("loki_canary_entries_total");
        let received = value("loki_canary_response_latency_seconds_count");
        failures.check(
            &format!("{name}: lines written"),
            written >= 3.0 * LINES_PER_PHASE,
            written,
        );
        failures.eq(&format!("{name}: lines received"), received, written);
        for metric in [
            "loki_canary_missing_entries_total",
            "loki_canary_duplicate_entries_total",
            "loki_canary_unexpected_entries_total",
            "loki_canary_spot_check_missing_entries_total",
            "loki_canary_push_errors_total",
        ] {
            failures.eq(&format!("{name}: {metric}"), value(metric), 0.0);
        }
        failures.check(
            &format!("{name}: spot checks ran"),
            value("loki_canary_spot_check_entries_total") >= 1.0,
            value("loki_canary_spot_check_entries_total"),
        );

        // The lines written while ingester-1 was down are stored once
        // each (the canaries counted them as written after the kill and
        // before the restart; the one being written at the kill may fall
        // either side).
        let down = read_lines(&frontend, name, killed_at, restarted_at);
        let unique: BTreeSet<i64> = down.iter().copied().collect();
        failures.eq(
            &format!("{name}: copies of lines written while down"),
            down.len(),
            unique.len(),
        );
        failures.check(
            &format!("{name}: lines written while down read back"),
            unique.len() as f64 >= during - 1.0,
            format!("{} of at least {during}", unique.len()),
        );
        // And every line of the run is there exactly once.
        let all = read_lines(&frontend, name, started, now_ns() + SEC);
        let unique_all: BTreeSet<i64> = all.iter().copied().collect();
        failures.eq(
            &format!("{name}: copies of all lines"),
            all.len(),
            unique_all.len(),
        );
        failures.eq(
            &format!("{name}: all lines read back"),
            unique_all.len() as f64,
            written,
        );
    }
    // Shown by the test runner when the test fails.
    for canary in &canaries {
        eprintln!(
            "--- {} ---\n{}",
            canary.name,
            tail(&canary.log_text(), 4000)
        );
    }
    eprintln!("--- querier ---\n{}", tail(&querier.stderr_text(), 4000));
    failures.finish();
}
