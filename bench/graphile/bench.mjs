#!/usr/bin/env node
// Runs ringmaster's queue workloads (examples/queue_bench.rs, BENCHMARKS.md
// "Delivery queue") against graphile-worker, so both can be compared in the
// same session on the same Postgres:
//   W1  bulk-enqueue 20,000 jobs in batches of 1,000, no worker running;
//   W1s enqueue 2,000 jobs one at a time, each awaited;
//   W2  start the worker (concurrency 10, no-op task) and time until the
//       database holds none of the W1 jobs (graphile deletes completed jobs);
//   W3  enqueue 500 jobs one at a time at 50/s into the idle running worker
//       and measure enqueue -> task-start latency.
// It works in a fresh database it creates on the given server and always
// drops it again. It prints one JSON line on stdout; diagnostics go to stderr.
//
//   node bench.mjs --database postgres://root@127.0.0.1:5432/test

import { EventEmitter } from "node:events";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import pg from "pg";

// graphile-worker reads NO_LOG_SUCCESS when its modules load and otherwise
// formats an info line for every completed job even when the logger drops it;
// its docs recommend setting it for high throughput. Hence the late import.
process.env.NO_LOG_SUCCESS ??= "1";
const { run, makeWorkerUtils, Logger } = await import("graphile-worker");

const GRAPHILE_VERSION = JSON.parse(
  readFileSync(
    new URL("./node_modules/graphile-worker/package.json", import.meta.url),
  ),
).version;

const { values: args } = parseArgs({
  options: {
    database: { type: "string" },
    jobs: { type: "string", default: "20000" },
    concurrency: { type: "string", default: "10" },
    // Tuning knobs, defaults being the "tuned" configuration (see README).
    "local-queue": { type: "string", default: "100" },
    "batch-delay": { type: "string", default: "0" },
    "pool-size": { type: "string" },
    "use-node-time": { type: "boolean", default: false },
  },
  strict: true,
});
if (!args.database) {
  console.error(
    "usage: node bench.mjs --database postgres://USER@HOST:PORT/ADMIN_DB " +
      "[--jobs N] [--concurrency N] [--local-queue N] [--batch-delay MS] " +
      "[--pool-size N] [--use-node-time]",
  );
  process.exit(2);
}
const JOBS = int(args.jobs);
const CONCURRENCY = int(args.concurrency);
const LOCAL_QUEUE = int(args["local-queue"]);
const BATCH_DELAY = int(args["batch-delay"]);
// graphile's docs: "10 or concurrentJobs + 2, whichever is larger"; with a
// no-op task the pool only serves fetches, completions and LISTEN.
const POOL_SIZE = args["pool-size"]
  ? int(args["pool-size"])
  : Math.max(10, CONCURRENCY + 2);
if (JOBS < 1 || CONCURRENCY < 1) {
  console.error("--jobs and --concurrency must be at least 1");
  process.exit(2);
}
const BATCH = 1000;
const W1S_JOBS = 2000;
const W3_JOBS = 500;
const W3_INTERVAL_MS = 20;
const W2_TIMEOUT_MS = 300_000;
const SCHEMA = "graphile_worker";

function int(s) {
  const n = Number.parseInt(s, 10);
  if (!Number.isFinite(n)) throw new Error(`not an integer: ${s}`);
  return n;
}

// Same payload shape as ringmaster's `a2a_message(id, "bench")`, so both
// queues store and ship comparable JSON.
function a2aMessage(id, text) {
  return {
    jsonrpc: "2.0",
    id,
    method: "message/send",
    params: {
      message: { role: "user", messageId: id, parts: [{ kind: "text", text }] },
    },
  };
}

// Nearest-rank on the sorted list, exactly as queue_bench.rs computes it.
function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const rank = Math.round((p / 100) * (sorted.length - 1));
  return sorted[Math.min(rank, sorted.length - 1)];
}

function round(x, places) {
  if (x == null || !Number.isFinite(x)) return null;
  const f = 10 ** places;
  return Math.round(x * f) / f;
}

// Keep warnings and errors (stderr), drop the rest: a per-job info line
// would cost more than the no-op task being measured.
const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") {
    console.error(`[graphile-worker ${level}] ${message}`);
  }
});

// --- scratch database --------------------------------------------------------

const dbName = `ringmaster_bench_graphile_${randomBytes(8).toString("hex")}`;
let dbCreated = false;

async function createDatabase(adminUrl) {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${dbName}"`);
    dbCreated = true;
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${dbName}`;
  return url.toString();
}

async function dropDatabase(adminUrl) {
  if (!dbCreated) return;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    // FORCE (Postgres 13+) ends any connection a crashed run left behind;
    // older servers get the plain form.
    try {
      await admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    } catch (e) {
      if (e.code !== "42601") throw e; // syntax error: server without FORCE
      await admin.query(`DROP DATABASE IF EXISTS "${dbName}"`);
    }
    dbCreated = false;
  } finally {
    await admin.end();
  }
}

// --- the run -------------------------------------------------------------------

let utils = null;
let runner = null;

// A wedged worker (say, a pool too small to release its jobs) never finishes
// a graceful stop; the database must be dropped all the same, and FORCE ends
// whatever connections are left.
const CLOSE_TIMEOUT_MS = 10_000;

// Idempotent: reached from the normal end, from an error and from a signal.
let cleaning = null;
function cleanup() {
  cleaning ??= (async () => {
    for (const [what, close] of [
      ["worker", () => runner?.stop()],
      ["enqueue pool", () => utils?.release()],
    ]) {
      try {
        const gaveUp = sleep(CLOSE_TIMEOUT_MS, "timeout", { ref: false });
        if ((await Promise.race([close(), gaveUp])) === "timeout") {
          console.error(`cleanup: ${what} did not close in ${CLOSE_TIMEOUT_MS} ms`);
        }
      } catch (e) {
        console.error(`cleanup: ${what}: ${e?.message ?? e}`);
      }
    }
    try {
      await dropDatabase(args.database);
    } catch (e) {
      console.error(`cleanup: could not drop database ${dbName}: ${e.message}`);
      process.exitCode = 1;
    }
  })();
  return cleaning;
}

let interrupted = false;
for (const [signal, code] of [
  ["SIGINT", 130],
  ["SIGTERM", 143],
]) {
  process.once(signal, () => {
    interrupted = true;
    console.error(`${signal}: dropping ${dbName}`);
    cleanup().finally(() => process.exit(code));
  });
}

async function main() {
  const url = await createDatabase(args.database);

  // Everything is passed explicitly so that DATABASE_URL, GRAPHILE_WORKER_*
  // or a stray .graphile-workerrc cannot change what is measured.
  const sharedPreset = {
    worker: {
      connectionString: url,
      schema: SCHEMA,
      logger,
      useNodeTime: args["use-node-time"],
    },
  };
  utils = await makeWorkerUtils({ preset: sharedPreset });
  // Untimed: schema install, as ringmaster's harness migrates before W1.
  await utils.migrate();

  // W1: bulk enqueue, batches of 1,000 through graphile's add_jobs().
  const w1Start = performance.now();
  for (let from = 0; from < JOBS; from += BATCH) {
    const specs = [];
    for (let i = from; i < Math.min(from + BATCH, JOBS); i++) {
      specs.push({ identifier: "w1", payload: a2aMessage(`w1-${i}`, "bench") });
    }
    await utils.addJobs(specs);
  }
  const w1 = (performance.now() - w1Start) / 1000;

  // W1s: one at a time. The "w1s" task has no executor in the worker, so
  // these 2,000 rows stay queued through W2 and W3, as ringmaster's W1s items
  // stay queued for a workspace with no room.
  const w1sStart = performance.now();
  for (let i = 0; i < W1S_JOBS; i++) {
    await utils.addJob("w1s", a2aMessage(`w1s-${i}`, "bench"));
  }
  const w1s = (performance.now() - w1sStart) / 1000;

  // W2: start the worker and time until the database holds no W1 job.
  const w3Started = new Map(); // message id -> performance.now() at task start
  const taskList = {
    w1: async () => {},
    w3: async (payload) => {
      w3Started.set(payload.id, performance.now());
    },
  };
  const events = new EventEmitter();
  let completedInProcess = 0;
  let firstJobAt = null;
  let allCompletedInProcess;
  const allCompletedPromise = new Promise((r) => (allCompletedInProcess = r));
  events.on("job:start", () => {
    firstJobAt ??= performance.now();
  });
  events.on("job:complete", ({ job, error }) => {
    if (job.task_identifier === "w1" && !error && ++completedInProcess === JOBS) {
      allCompletedInProcess();
    }
  });

  const w2Start = performance.now();
  runner = await run({
    noHandleSignals: true, // this script owns the signals (to drop the database)
    taskList,
    preset: {
      extends: [sharedPreset],
      worker: {
        events,
        concurrentJobs: CONCURRENCY,
        maxPoolSize: POOL_SIZE,
        // LISTEN/NOTIFY wakes the worker for new jobs; the poll is only the
        // fallback, left at its default.
        pollInterval: 2000,
        ...(LOCAL_QUEUE > 0 ? { localQueue: { size: LOCAL_QUEUE } } : {}),
        completeJobBatchDelay: BATCH_DELAY,
        failJobBatchDelay: BATCH_DELAY,
      },
    },
  });
  runner.promise.catch((e) => console.error(`worker stopped: ${e?.message ?? e}`));

  // The in-process "job:complete" event fires before a batched completion is
  // written, so it cannot end the timing; it only gates the database poll, so
  // the drain is not slowed by a count running every 2 ms from the start
  // (queue_bench.rs avoids heavy polling for the same reason).
  const deadline = w2Start + W2_TIMEOUT_MS;
  const timedOut = sleep(W2_TIMEOUT_MS, "timeout", { ref: false });
  await Promise.race([allCompletedPromise, timedOut]);
  let drained = false;
  const { rows: taskRows } = await utils.withPgClient((c) =>
    c.query(`select id from "${SCHEMA}"._private_tasks where identifier = 'w1'`),
  );
  const w1TaskId = taskRows[0].id;
  while (performance.now() < deadline) {
    const { rows } = await utils.withPgClient((c) =>
      c.query(
        `select count(*)::int as n from "${SCHEMA}"._private_jobs where task_id = $1`,
        [w1TaskId],
      ),
    );
    if (rows[0].n === 0) {
      drained = true;
      break;
    }
    await sleep(2);
  }
  const w2 = (performance.now() - w2Start) / 1000;
  const w2FirstJobMs = firstJobAt == null ? null : firstJobAt - w2Start;

  // W3: 500 at 50/s into the idle worker; enqueue -> task start. Ticks are
  // scheduled from a fixed origin so a slow enqueue does not stretch the rate.
  const sent = [];
  const replies = [];
  const w3Origin = performance.now();
  for (let i = 0; i < W3_JOBS; i++) {
    const wait = w3Origin + i * W3_INTERVAL_MS - performance.now();
    if (wait > 0) await sleep(wait);
    const id = `w3-${i}`;
    const start = performance.now();
    await utils.addJob("w3", a2aMessage(id, "bench"));
    replies.push(performance.now() - start);
    sent.push([id, start]);
  }
  await sleep(200); // as queue_bench.rs: let the last ones start
  const latencies = sent
    .filter(([id]) => w3Started.has(id))
    .map(([id, at]) => w3Started.get(id) - at)
    .sort((a, b) => a - b);
  replies.sort((a, b) => a - b);

  return {
    peer: "graphile-worker",
    version: GRAPHILE_VERSION,
    w1_per_s: round(JOBS / w1, 0),
    w1s_per_s: round(W1S_JOBS / w1s, 0),
    w2_per_s: round(JOBS / w2, 0),
    w3_p50_ms: round(percentile(latencies, 50), 3),
    w3_p99_ms: round(percentile(latencies, 99), 3),
    // Detail beyond the comparison figures.
    config: {
      backend: "postgres",
      node: process.versions.node,
      concurrency: CONCURRENCY,
      local_queue: LOCAL_QUEUE,
      complete_job_batch_delay_ms: BATCH_DELAY,
      fail_job_batch_delay_ms: BATCH_DELAY,
      max_pool_size: POOL_SIZE,
      use_node_time: args["use-node-time"],
      batch: BATCH,
    },
    w1: { jobs: JOBS, seconds: round(w1, 4) },
    w1s: { jobs: W1S_JOBS, seconds: round(w1s, 4) },
    w2: {
      jobs: JOBS,
      seconds: round(w2, 4),
      drained,
      // Worker start-up (pool, schema check, task ids) is inside W2, which
      // ringmaster's W2 does not pay; this shows how much of it that is.
      first_job_ms: round(w2FirstJobMs, 3),
    },
    w3: {
      jobs: W3_JOBS,
      p90_ms: round(percentile(latencies, 90), 3),
      max_ms: round(latencies.at(-1), 3),
      seen: latencies.length,
      enqueue_reply_p50_ms: round(percentile(replies, 50), 3),
    },
  };
}

try {
  const line = await main();
  await cleanup();
  console.log(JSON.stringify(line));
} catch (e) {
  // After a signal, the run fails on the pools being closed under it; that
  // error is a consequence, not news.
  if (!interrupted) console.error(e?.stack ?? String(e));
  process.exitCode = 1;
  await cleanup();
}
// If a pool could not be closed its sockets would keep the process alive;
// the result is out and the database gone, so do not wait for them.
setTimeout(() => process.exit(), 1000).unref();
