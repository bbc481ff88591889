//! Black-box HTTP benchmarks of the `ringmaster` binary (issue 11): it starts
//! the binary it is given on a fresh database, drives it over HTTP, prints
//! one JSON line of figures, and drops the database it made.
//!
//! ```sh
//! cargo build --release --bins --examples
//! B=target/release/ringmaster; E=target/release/examples/http_bench
//! $E ingest  --bin $B --database sqlite                         # 50 conns: POST 202 vs /healthz
//! $E ingest  --bin $B --database postgres://root@127.0.0.1:5432/test
//! $E metrics --bin $B --database postgres://root@127.0.0.1:5432/test --rows 3000000
//! $E soak    --bin $B --database postgres://root@127.0.0.1:5432/test --seconds 600 --rate 1000
//! ```
//!
//! `--database sqlite` means a new file in a temp dir; a Postgres URL names
//! the server, on which a scratch database is created and dropped.

mod agent;
mod db;
mod ingest;
mod load;
mod metrics;
mod node;
mod soak;

use std::collections::HashMap;

fn main() {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let mut flags = HashMap::new();
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        flags.insert(flag.trim_start_matches("--").to_string(), value);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let flag = |name: &str, default: &str| flags.get(name).cloned().unwrap_or(default.into());
    let num =
        |name: &str, default: u64| flag(name, &default.to_string()).parse::<u64>().expect(name);
    let opts = Opts {
        bin: flag("bin", "target/release/ringmaster"),
        database: flag("database", "sqlite"),
        conns: num("conns", 50) as usize,
        seconds: num("seconds", 10),
        rows: num("rows", 3_000_000),
        rate: num("rate", 1000),
    };
    let line = runtime.block_on(async {
        match command.as_str() {
            "ingest" => ingest::run(&opts).await,
            "metrics" => metrics::run(&opts).await,
            "soak" => soak::run(&opts).await,
            other => panic!("unknown command {other:?}: ingest, metrics or soak"),
        }
    });
    println!("{line}");
}

pub struct Opts {
    pub bin: String,
    pub database: String,
    pub conns: usize,
    pub seconds: u64,
    pub rows: u64,
    pub rate: u64,
}
