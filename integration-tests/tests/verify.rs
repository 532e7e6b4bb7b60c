//! `-config.verify`: load and validate the configuration, print the
//! effective config as YAML, exit, without starting anything. The Helm
//! chart's test (`make chart-test`) relies on exactly this.

use std::path::Path;
use std::process::{Command, Output};

use sluice_integration_tests::*;

fn verify(dir: &Path, yaml: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let config = dir.join("config.yaml");
    std::fs::write(&config, yaml).expect("write config");
    let mut command = Command::new(sluice_bin());
    command
        .arg(format!("-config.file={}", config.display()))
        .args(args)
        .arg("-config.verify")
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().copied());
    command.output().expect("run sluice")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn verify_prints_the_effective_config_and_starts_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let http = free_port();
    let grpc = free_port();
    let data = dir.path().join("state");
    let yaml = format!(
        "auth_enabled: false\n\
         server:\n  http_listen_port: {http}\n  grpc_listen_port: {grpc}\n\
         common:\n  path_prefix: {}\n  ring:\n    kvstore:\n      store: memcached\n      memcached:\n        addresses: [ring-0.ring:11211]\n\
         storage_config:\n  aws:\n    bucketnames: chunks\n    access_key_id: ${{KEY_ID}}\n    secret_access_key: ${{SECRET}}\n",
        data.display()
    );
    let output = verify(
        dir.path(),
        &yaml,
        &[
            "-config.expand-env=true",
            "-target=ingester",
            "-ring.instance-addr=10.1.2.3:9095",
            "-log.level=debug",
        ],
        &[("KEY_ID", "AKIDEXAMPLE"), ("SECRET", "s3cret")],
    );
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "verify failed: {}",
        text(&output.stderr)
    );
    for line in [
        "target: ingester",
        &format!("http_listen_port: {http}"),
        "log_level: debug",
        "instance_addr: 10.1.2.3:9095",
        "store: memcached",
        "- ring-0.ring:11211",
        "access_key_id: AKIDEXAMPLE",
        // A default the file does not mention: the whole effective config.
        "replication_factor: 3",
    ] {
        assert!(
            stdout.lines().any(|l| l.trim() == line),
            "`{line}` missing from:\n{stdout}"
        );
    }
    assert!(!data.exists(), "verify created common.path_prefix");
}

#[test]
fn verify_rejects_what_startup_would_reject() {
    let dir = tempfile::tempdir().expect("tempdir");
    let typo = verify(
        dir.path(),
        "common:\n  ring:\n    kvstore:\n      stor: memcached\n",
        &["-target=querier"],
        &[],
    );
    assert!(!typo.status.success(), "a typo passed verify");
    assert!(typo.stdout.is_empty(), "printed a config for a bad file");
    let stderr = text(&typo.stderr);
    assert!(stderr.contains("common.ring.kvstore.stor"), "{stderr}");

    let target = verify(dir.path(), "auth_enabled: false\n", &["-target=nope"], &[]);
    assert!(!target.status.success(), "an unknown target passed verify");
    let stderr = text(&target.stderr);
    assert!(stderr.contains("unknown target \"nope\""), "{stderr}");

    let flag = verify(dir.path(), "", &["-ring.instance-adr=x"], &[]);
    assert_eq!(
        flag.status.code(),
        Some(2),
        "an unknown flag is a usage error"
    );
    let stderr = text(&flag.stderr);
    assert!(
        stderr.contains("flag provided but not defined: -ring.instance-adr"),
        "{stderr}"
    );
}
