//! The thin binary: parse config, open the store, start the root supervisor,
//! serve HTTP, shut down cleanly on SIGINT/SIGTERM. Everything else is the crate.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use ringmaster::config::Config;
use ringmaster::Ringmaster;

#[derive(Parser)]
#[command(
    name = "ringmaster",
    version,
    about = "Keeps the background work of an agent platform alive"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the supervisor and the HTTP API.
    Serve {
        /// sqlite://… (default: ringmaster.db in the working directory) or postgres://…
        #[arg(long)]
        database: Option<String>,
        /// Listen address (default 127.0.0.1:8080).
        #[arg(long)]
        bind: Option<String>,
        /// TOML config file (RINGMASTER_* environment variables win over it).
        #[arg(long, env = "RINGMASTER_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Everything ringmaster does, on a temporary database with simulated agents, until Ctrl-C.
    Demo {
        /// Where the demo's HTTP API listens (default: a free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        bind: String,
    },
    /// Create or upgrade the database schema, then exit.
    Migrate {
        #[arg(long)]
        database: Option<String>,
        #[arg(long, env = "RINGMASTER_CONFIG")]
        config: Option<PathBuf>,
    },
}

fn load_config(
    file: Option<PathBuf>,
    database: Option<String>,
    bind: Option<String>,
) -> Result<Config, String> {
    let mut config = Config::load(file.as_deref()).map_err(|e| format!("configuration: {e}"))?;
    if let Some(url) = database {
        config.database_url = url;
    }
    if let Some(bind) = bind {
        config.bind = bind
            .parse()
            .map_err(|_| format!("--bind: {bind:?} is not a socket address like 127.0.0.1:8080"))?;
    }
    Ok(config)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo prints its own summary; only warnings should interleave with it.
    let default_level = if matches!(cli.command, Command::Demo { .. }) {
        "warn"
    } else {
        "info"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Serve {
            database,
            bind,
            config,
        } => match load_config(config, database, bind) {
            Ok(config) => serve(config).await,
            Err(e) => Err(e),
        },
        Command::Demo { bind } => match bind.parse() {
            Ok(addr) => ringmaster::demo::run(addr, async {
                let _ = shutdown_signal().await;
            })
            .await
            .map_err(|e| e.to_string()),
            Err(_) => Err(format!(
                "--bind: {bind:?} is not a socket address like 127.0.0.1:8080"
            )),
        },
        Command::Migrate { database, config } => match load_config(config, database, None) {
            Ok(config) => migrate(config).await,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ringmaster: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(config: Config) -> Result<(), String> {
    let store = ringmaster::store::open(&config.database_url)
        .await
        .map_err(|e| e.to_string())?;
    store.close().await;
    println!(
        "migrated {}",
        ringmaster::store::redact(&config.database_url)
    );
    Ok(())
}

async fn serve(config: Config) -> Result<(), String> {
    let bind = config.bind;
    let database = ringmaster::store::redact(&config.database_url);
    let ringmaster = Arc::new(Ringmaster::start(config).await.map_err(|e| e.to_string())?);
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| format!("cannot listen on {bind}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%local, %database, "ringmaster serving");
    // Tests that start the binary with port 0 read the address from here.
    println!("listening on http://{local}");

    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let app = ringmaster::http::router(ringmaster.clone());
    let server = axum::serve(listener, app).with_graceful_shutdown(async {
        let _ = http_stopped.await;
    });
    let server = tokio::spawn(async move { server.await });

    let outcome = tokio::select! {
        signal = shutdown_signal() => {
            tracing::info!(signal, "shutting down");
            Ok(())
        }
        _ = ringmaster.stopped() => Err("root supervisor stopped (restart intensity exceeded?); see the log".to_string()),
    };
    let _ = stop_http.send(());
    let _ = server.await;
    ringmaster.shutdown().await;
    outcome
}

/// Resolves on SIGINT or SIGTERM, naming which.
async fn shutdown_signal() -> &'static str {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    };
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await,
            };
        tokio::select! {
            name = ctrl_c => name,
            _ = term.recv() => "SIGTERM",
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await
}
