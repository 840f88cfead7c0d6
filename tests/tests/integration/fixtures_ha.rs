//! The fixtures for Redis Cluster, Sentinel and TLS work: each test starts one fixture
//! and checks, in sequence, what the fixture promises (one fixture per test, as they
//! take seconds to start and a failover changes them).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use workq_tests::cluster::{key_slot, queue_slot, SLOTS};
use workq_tests::{ClientAuth, RedisCluster, SentinelSetup, TlsServer};

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let v = f();
    eprintln!("fixtures_ha: {what} took {:?}", t.elapsed());
    v
}

#[test]
fn cluster_fixture_covers_slots_spreads_queues_migrates_and_fails_over() {
    workq_tests::init_logs();
    let mut c = timed("RedisCluster::start", RedisCluster::start);

    // All 16384 slots, in contiguous ranges, on 3 primaries with one replica each.
    let map = c.slot_map();
    let mut next = 0u32;
    for &(a, b, _) in &map {
        assert_eq!(u32::from(a), next, "gap or overlap in {map:?}");
        next = u32::from(b) + 1;
    }
    assert_eq!(next, u32::from(SLOTS), "{map:?}");
    let primaries = c.primaries();
    let owners: BTreeSet<u16> = map.iter().map(|&(_, _, p)| p).collect();
    assert_eq!(primaries.len(), 3);
    assert_eq!(owners, primaries.iter().copied().collect());
    let replicas = c.replicas();
    assert_eq!(replicas.len(), 3);
    for &p in &primaries {
        assert_eq!(c.replicas_of(p).len(), 1, "replicas of {p}");
    }
    assert_eq!(c.urls().len(), 6);

    // The Rust slot function agrees with CLUSTER KEYSLOT, hash tags included.
    for key in [
        "workq:{default}:ready",
        "{}x",
        "a{b}c{d}",
        "plain",
        "workq:{q7}:",
    ] {
        assert_eq!(key_slot(key), c.keyslot(key), "{key}");
    }

    // 12 queue names, 4 on each primary.
    let names = c.spread_queue_names(4);
    assert_eq!(names.len(), 12);
    let mut per_owner: BTreeMap<u16, usize> = BTreeMap::new();
    for n in &names {
        let owner = c.owner_of_key(&format!("workq:{{{n}}}:ready"));
        assert_eq!(owner, c.owner_of_slot(queue_slot(n)));
        *per_owner.entry(owner).or_default() += 1;
    }
    assert_eq!(per_owner.len(), 3, "{per_owner:?}");
    assert!(per_owner.values().all(|&n| n == 4), "{per_owner:?}");

    // Migrating one queue's slot moves its keys and its owner.
    let queue = &names[0];
    let slot = queue_slot(queue);
    let from = c.owner_of_slot(slot);
    let to = primaries.iter().copied().find(|&p| p != from).unwrap();
    let mut con = c.node_client(from).get_connection().unwrap();
    for i in 0..150 {
        let _: () = redis::cmd("SET")
            .arg(format!("workq:{{{queue}}}:k{i}"))
            .arg(i)
            .query(&mut con)
            .unwrap();
    }
    let moved = timed("migrate_slot", || {
        c.begin_migration(slot, from, to);
        let moved = c.move_keys(slot, from, to);
        c.finish_migration(slot, to);
        moved
    });
    assert_eq!(moved, 150);
    assert_eq!(c.owner_of_slot(slot), to);
    let mut on_to = c.node_client(to).get_connection().unwrap();
    let v: i64 = redis::cmd("GET")
        .arg(format!("workq:{{{queue}}}:k149"))
        .query(&mut on_to)
        .unwrap();
    assert_eq!(v, 149);
    let err = redis::cmd("GET")
        .arg(format!("workq:{{{queue}}}:k149"))
        .query::<Option<i64>>(&mut con)
        .unwrap_err();
    assert!(err.to_string().to_lowercase().contains("moved"), "{err}");
    // Back again with the one-call form.
    c.migrate_slot(slot, to, from);
    assert_eq!(c.owner_of_slot(slot), from);

    // Kill a primary: its replica takes over its slots, with what was replicated.
    let victim = primaries[1];
    let its_replica = c.replicas_of(victim)[0];
    let key = names
        .iter()
        .map(|n| format!("workq:{{{n}}}:marker"))
        .find(|k| c.owner_of_key(k) == victim)
        .unwrap();
    let mut vc = c.node_client(victim).get_connection().unwrap();
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("kept")
        .query(&mut vc)
        .unwrap();
    let acked: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut vc).unwrap();
    assert_eq!(acked, 1);
    c.kill_primary(victim);
    let new = timed("kill_primary + wait_for_failover", || {
        c.wait_for_failover(victim)
    });
    assert_eq!(new, its_replica);
    assert_eq!(c.owner_of_key(&key), new);
    assert!(!c.primaries().contains(&victim));
    assert_eq!(c.primaries().len(), 3);
    let mut nc = c.node_client(new).get_connection().unwrap();
    let v: String = redis::cmd("GET").arg(&key).query(&mut nc).unwrap();
    assert_eq!(v, "kept");
}

#[test]
fn sentinel_fixture_fails_over_on_request_and_on_a_kill() {
    workq_tests::init_logs();
    let mut s = timed("SentinelSetup::start", SentinelSetup::start);
    assert_eq!(s.sentinel_urls().len(), 3);
    assert_eq!(s.master_name(), "mymaster");
    let first = s.primary();
    assert_eq!(first, s.server_ports()[0]);

    // A connection to the primary from before the failover.
    let mut before = redis::Client::open(format!("redis://127.0.0.1:{first}"))
        .unwrap()
        .get_connection()
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("k0")
        .arg("v0")
        .query(&mut before)
        .unwrap();

    let second = timed("failover", || s.failover());
    assert_ne!(second, first);
    assert_eq!(s.primary(), second);
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{second}"))
        .unwrap()
        .get_connection()
        .unwrap();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
    let acked: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut con).unwrap();
    assert_eq!(acked, 1, "the old primary replicates from the new one");

    // The sentinels demote the old primary with CLIENT KILL TYPE normal after REPLICAOF:
    // the connection from before is closed rather than left on a replica.
    let after = redis::cmd("SET")
        .arg("k0")
        .arg("v1")
        .query::<()>(&mut before);
    eprintln!("fixtures_ha: a write on a connection to the demoted primary: {after:?}");
    assert!(after.is_err(), "a write on the demoted primary succeeded");

    let killed = s.kill_primary();
    assert_eq!(killed, second);
    let third = timed("kill_primary + wait_for_new_primary", || {
        s.wait_for_new_primary(killed)
    });
    assert_eq!(third, first);
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{third}"))
        .unwrap()
        .get_connection()
        .unwrap();
    let v: String = redis::cmd("GET").arg("k").query(&mut con).unwrap();
    assert_eq!(v, "v");
}

#[test]
fn tls_fixture_answers_over_tls_only() {
    let s = timed("TlsServer::start", || {
        TlsServer::start(ClientAuth::Required)
    });
    assert!(s.url().starts_with("rediss://127.0.0.1:"));
    assert_eq!(s.cli(&["PING"]).unwrap().trim(), "PONG");
    assert!(s.plain_ping_fails(), "a plain-TCP PING got an answer");
    // tls-auth-clients yes: without the client certificate the server refuses.
    let out = std::process::Command::new("redis-cli")
        .args(["--tls", "--cacert"])
        .arg(s.certs().ca_cert())
        .args(["-h", "127.0.0.1", "-p", &s.port().to_string(), "PING"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("PONG"),
        "PONG without a client certificate"
    );
    for f in [
        s.certs().server_cert(),
        s.certs().server_key(),
        s.certs().client_cert(),
        s.certs().client_key(),
    ] {
        assert!(f.is_file(), "{}", f.display());
    }
}
