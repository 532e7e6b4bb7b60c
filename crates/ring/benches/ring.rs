//! Ring lookup cost per stream: hashing the stream (FNV-1 of tenant and
//! canonical labels) and walking the ring to its replication set, for rings
//! of 3 and 30 ingesters with Loki's 128 tokens each.

use std::collections::BTreeMap;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use sluice_ring::{generate_tokens, stream_token, Member, MemberState, Ring, RingDesc};

const NOW: i64 = 1_700_000_000_000;

fn ring(members: usize, zones: usize) -> Ring {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut taken = std::collections::HashSet::new();
    let mut all = BTreeMap::new();
    for index in 0..members {
        let tokens = generate_tokens(128, &taken, &mut rng).expect("tokens");
        taken.extend(tokens.iter().copied());
        let id = format!("ingester-{index}");
        all.insert(
            id.clone(),
            Member {
                id,
                addr: format!("10.0.0.{index}:9095"),
                zone: if zones > 0 {
                    format!("zone-{}", index % zones)
                } else {
                    String::new()
                },
                state: MemberState::Active,
                tokens,
                heartbeat_ms: NOW,
                registered_ms: NOW,
            },
        );
    }
    Ring::new(&RingDesc { members: all }, zones > 0)
}

fn lookups(c: &mut Criterion) {
    let labels: Vec<String> = (0..1024)
        .map(|i| {
            format!(
                r#"{{app="api-{}", namespace="prod", pod="api-{i}-7f9c"}}"#,
                i % 40
            )
        })
        .collect();
    let timeout = Duration::from_secs(60);
    let mut group = c.benchmark_group("ring_lookup_per_stream");
    for (name, ring) in [
        ("3_ingesters", ring(3, 0)),
        ("30_ingesters", ring(30, 0)),
        ("30_ingesters_3_zones", ring(30, 3)),
    ] {
        group.bench_function(name, |b| {
            let mut next = 0usize;
            b.iter(|| {
                next = (next + 1) % labels.len();
                let token = stream_token("tenant-a", &labels[next]);
                black_box(ring.get(token, 3, NOW, timeout).expect("set"))
            })
        });
    }
    group.bench_function("hash_only", |b| {
        let mut next = 0usize;
        b.iter(|| {
            next = (next + 1) % labels.len();
            black_box(stream_token("tenant-a", &labels[next]))
        })
    });
    group.finish();
}

criterion_group!(benches, lookups);
criterion_main!(benches);
