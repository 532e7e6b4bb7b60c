//! `sluice`: one binary for every Sluice service, chosen with `-target`.

mod app;
mod cli;
mod compactor_module;
mod config;
mod ops;
mod ring_page;
mod ring_setup;
mod ruler_module;
mod self_metrics;
mod targets;
mod telemetry;
mod traces;

use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::cli::Cli;
use crate::config::Config;

fn main() -> ExitCode {
    // `sluice canary …`: Loki canary's end-to-end check, with its own flags.
    if std::env::args().nth(1).as_deref() == Some("canary") {
        return sluice_loadgen::canary::main(std::env::args().skip(2));
    }
    let cli = match Cli::parse(std::env::args().skip(1)) {
        Ok(cli) => cli,
        Err(err) => {
            eprintln!("{err}\n\n{}", Cli::usage());
            return ExitCode::from(2);
        }
    };
    if cli.help {
        print!("{}", Cli::usage());
        return ExitCode::SUCCESS;
    }
    if cli.version {
        println!(
            "sluice, version {} (branch: {}, revision: {})\n  build user: {}\n  build date: {}\n  toolchain: {}",
            env!("CARGO_PKG_VERSION"),
            env!("SLUICE_BRANCH"),
            env!("SLUICE_REVISION"),
            env!("SLUICE_BUILD_USER"),
            env!("SLUICE_BUILD_DATE"),
            env!("SLUICE_RUSTC_VERSION"),
        );
        return ExitCode::SUCCESS;
    }
    let config = match Config::load(&cli, |name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error loading config: {err}");
            return ExitCode::FAILURE;
        }
    };
    if cli.verify {
        print!("{}", config.to_yaml());
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("starting the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let export = traces::resolve(&config.tracing, &config.target, |name| {
        std::env::var(name).ok()
    });
    let (tracer, otel_tracer) = match export.as_ref().map(|export| {
        // The exporter's connections belong to the runtime.
        let _runtime = runtime.enter();
        traces::Tracer::start(export)
    }) {
        None => (None, None),
        Some(Ok((tracer, otel_tracer))) => (Some(tracer), Some(otel_tracer)),
        Some(Err(err)) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    telemetry::init_logging(
        config.server.log_level,
        config.server.log_format,
        otel_tracer,
    );
    if let Some(export) = &export {
        tracing::info!(
            endpoint = %export.endpoint,
            protocol = ?export.protocol,
            sampling_ratio = export.sampling_ratio,
            service_name = %export.service_name,
            "exporting traces"
        );
    }
    let result = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        app::run(config, shutdown).await
    });
    if let Some(tracer) = tracer {
        tracer.shutdown();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "sluice failed");
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Cancels `shutdown` on SIGTERM or SIGINT.
async fn cancel_on_signal(shutdown: CancellationToken) {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                return;
            }
        };
    tokio::select! {
        _ = terminate.recv() => tracing::info!(signal = "SIGTERM", "received signal"),
        _ = tokio::signal::ctrl_c() => tracing::info!(signal = "SIGINT", "received signal"),
    }
    shutdown.cancel();
}
