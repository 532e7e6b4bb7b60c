//! The memcached backend against a real memcached server, which each test
//! starts itself on a free loopback port (`make test-deps` installs it).

use std::time::{Duration, Instant};

use sluice_integration_tests::cluster::Memcached;

use sluice_ring::{
    KvStore, Lifecycler, Member, MemberState, MemcachedConfig, MemcachedKv, RingConfig, RingError,
};

/// A client of `server` with a timeout generous enough for a busy CI box.
fn client(server: &Memcached) -> MemcachedKv {
    MemcachedKv::new(&MemcachedConfig {
        addresses: vec![server.addr()],
        timeout: Duration::from_secs(2),
    })
    .expect("client")
}

#[tokio::test]
async fn text_protocol_operations() {
    let server = Memcached::start();
    let kv = client(&server);
    assert_eq!(kv.get("missing").await.expect("gets"), None);
    assert!(kv.add("k", b"first").await.expect("add"));
    assert!(!kv.add("k", b"second").await.expect("add existing"));
    let (value, cas) = kv.get("k").await.expect("gets").expect("present");
    assert_eq!(value, b"first");
    // Values may contain the protocol's line terminator.
    let binary = b"a\r\nEND\r\nb".to_vec();
    assert!(kv.cas("k", &binary, cas).await.expect("cas"));
    assert!(!kv.cas("k", b"stale", cas).await.expect("stale cas"));
    assert!(!kv
        .cas("absent", b"x", cas)
        .await
        .expect("cas on absent key"));
    let (value, _) = kv.get("k").await.expect("gets").expect("present");
    assert_eq!(value, binary);
    // A ring of a few hundred members is a few hundred KB.
    let large = vec![b'x'; 600 * 1024];
    kv.set("large", &large).await.expect("set");
    assert_eq!(
        kv.get("large").await.expect("gets").expect("present").0,
        large
    );
    // Over memcached's 1 MB default item limit: a clear server error, and the
    // connection recovers.
    let too_large = vec![b'x'; 2 << 20];
    let err = kv.set("huge", &too_large).await.expect_err("too large");
    assert!(err.to_string().contains(&server.addr()), "{err}");
    assert!(kv.get("k").await.expect("after error").is_some());
}

fn joining(id: &str) -> Member {
    Member {
        id: id.to_owned(),
        addr: format!("{id}:9095"),
        zone: String::new(),
        state: MemberState::Joining,
        tokens: vec![],
        heartbeat_ms: 0,
        registered_ms: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_joiners_lose_nobody() {
    let server = Memcached::start();
    let mut tasks = Vec::new();
    for index in 0..16 {
        // One client (connection) per joiner, as separate processes would.
        let kv = client(&server);
        tasks.push(tokio::spawn(async move {
            let id = format!("ingester-{index}");
            kv.update("ring", |desc| {
                let mut desc = desc.unwrap_or_default();
                desc.members.insert(id.clone(), joining(&id));
                desc
            })
            .await
        }));
    }
    for task in tasks {
        task.await.expect("join").expect("update");
    }
    let desc = client(&server)
        .get_desc("ring")
        .await
        .expect("get")
        .expect("present");
    assert_eq!(
        desc.members.len(),
        16,
        "{:?}",
        desc.members.keys().collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_survives_a_memcached_restart() {
    let mut server = Memcached::start();
    let config = |id: &str| RingConfig {
        instance_id: id.to_owned(),
        instance_addr: format!("{id}:9095"),
        heartbeat_period: Duration::from_millis(100),
        heartbeat_timeout: Duration::from_secs(60),
        replication_factor: 2,
        ..RingConfig::default()
    };
    let first = Lifecycler::new(client(&server), "ring", config("a")).expect("config");
    let second = Lifecycler::new(client(&server), "ring", config("b")).expect("config");
    first.start().await.expect("start");
    second.start().await.expect("start");
    first.set_state(MemberState::Active).await.expect("active");
    second.set_state(MemberState::Active).await.expect("active");
    let tokens_before = (first.tokens(), second.tokens());
    assert_eq!(tokens_before.0.len(), 128);
    // Let a heartbeat show `a` that `b` became ACTIVE too.
    tokio::time::sleep(Duration::from_millis(300)).await;

    server.stop();
    let err = first.heartbeat().await.expect_err("memcached is down");
    assert!(
        matches!(
            err,
            RingError::MemcachedIo { .. } | RingError::MemcachedTimeout { .. }
        ),
        "{err}"
    );
    assert!(err.to_string().contains(&server.addr()), "{err}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The last ring is still served.
    let ring = first.ring();
    assert_eq!(ring.members().len(), 2);
    assert!(ring
        .get(
            42,
            2,
            sluice_ring::lifecycler::now_ms(),
            Duration::from_secs(60)
        )
        .is_ok());

    // Restart empty on the same port: heartbeats re-register both members
    // with their old tokens and states.
    server.start_again();
    let kv = client(&server);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(desc)) = kv.get_desc("ring").await {
            if desc.members.len() == 2 {
                assert_eq!(desc.members["a"].tokens, tokens_before.0);
                assert_eq!(desc.members["b"].tokens, tokens_before.1);
                assert!(desc
                    .members
                    .values()
                    .all(|m| m.state == MemberState::Active));
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "ring not rebuilt after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.leave().await.expect("leave");
    second.leave().await.expect("leave");
    let desc = kv.get_desc("ring").await.expect("get").expect("present");
    assert!(desc.members.is_empty());
}
