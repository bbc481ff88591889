//! The thin binary: parse config, open the store, start the root supervisor,
//! serve HTTP, shut down cleanly on SIGINT/SIGTERM; and `schedule next`, so
//! anyone can ask when a spec fires. Everything else is the crate.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Parser, Subcommand};
use ringmaster::config::Config;
use ringmaster::http::serve::Limits;
use ringmaster::schedule::{DstPolicy, ScheduleSpec, SpecError};
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
    /// Ask about schedule specs without a database.
    Schedule {
        #[command(subcommand)]
        command: ScheduleCommand,
    },
    /// Create or upgrade the database schema, then exit.
    Migrate {
        #[arg(long)]
        database: Option<String>,
        #[arg(long, env = "RINGMASTER_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ScheduleCommand {
    /// Print the next fire instants strictly after --after, one per line, RFC 3339 in UTC.
    Next {
        /// Cron (5 or 6 fields), a macro (@hourly…), `every 15m` or `daily 07:00,13:00`.
        spec: String,
        /// IANA timezone the spec's wall-clock times are read in.
        #[arg(long, default_value = "UTC")]
        tz: String,
        /// RFC 3339 instant to count from (default: now).
        #[arg(long)]
        after: Option<String>,
        /// How many instants to print.
        #[arg(short = 'n', default_value_t = 5)]
        n: usize,
        /// What fixed-time jobs do in DST gaps and overlaps: vixie or literal.
        #[arg(long, default_value = "vixie")]
        dst: String,
    },
}

/// `schedule next`: the spec's next `n` fires, one per line.
fn schedule_next(
    spec: &str,
    tz: &str,
    after: Option<&str>,
    n: usize,
    dst: &str,
) -> Result<(), String> {
    let dst: DstPolicy = dst.parse().map_err(|e: SpecError| e.to_string())?;
    let spec = ScheduleSpec::parse(spec, tz, dst).map_err(|e| e.to_string())?;
    let after = match after {
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map_err(|e| format!("--after: {text:?} is not an RFC 3339 instant ({e})"))?
            .with_timezone(&Utc),
        None => Utc::now(),
    };
    let fires = spec.upcoming(after, n);
    if fires.len() < n {
        return Err(format!(
            "only {} fire(s) within the search horizon after {}",
            fires.len(),
            after.to_rfc3339_opts(SecondsFormat::AutoSi, true)
        ));
    }
    for fire in fires {
        println!("{}", fire.to_rfc3339_opts(SecondsFormat::AutoSi, true));
    }
    Ok(())
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
    // Test builds only: fail points named in FAILPOINTS (see Cargo.toml).
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
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
        Command::Schedule {
            command:
                ScheduleCommand::Next {
                    spec,
                    tz,
                    after,
                    n,
                    dst,
                },
        } => schedule_next(&spec, &tz, after.as_deref(), n, &dst),
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
    let limits = Limits {
        max_connections: usize::try_from(config.max_connections).unwrap_or(usize::MAX),
        header_timeout: config.header_timeout,
        drain_timeout: config.shutdown_timeout,
        ..Limits::default()
    };
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
    let server = tokio::spawn(ringmaster::http::serve::serve(
        listener,
        app,
        limits,
        async {
            let _ = http_stopped.await;
        },
    ));

    let outcome = tokio::select! {
        signal = shutdown_signal() => {
            tracing::info!(signal, "shutting down");
            Ok(())
        }
        _ = ringmaster.stopped() => Err("root supervisor stopped (restart intensity exceeded?); see the log".to_string()),
    };
    // A second signal while stopping means now.
    tokio::spawn(async {
        let signal = shutdown_signal().await;
        eprintln!("ringmaster: {signal} again; exiting without waiting");
        std::process::exit(130);
    });
    let _ = stop_http.send(());
    // Open requests (some wait for deliveries) and the drain's quiesce end
    // together; both are bounded by the shutdown timeout.
    let (_, ()) = tokio::join!(server, ringmaster.shutdown());
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
