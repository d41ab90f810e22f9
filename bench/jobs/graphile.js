// graphile-worker's side of bench/jobs.py, on the PostgreSQL at DATABASE_URL.
//
//   node graphile.js drain N CONCURRENCY    -> {"jobs":N,"seconds":S}
//   node graphile.js latency N RATE CONCURRENCY -> {"latencies_ms":[...]}
//
// drain: the worker runs (idle), N no-op jobs are added in one statement (addJobs), and the
// time from its commit to the last job's completion is measured.
// latency: the worker runs; N jobs are added one by one at RATE per second, each carrying
// the time it was added (Date.now()); the task records when it starts.
const { run, makeWorkerUtils } = require("graphile-worker");

const connectionString = process.env.DATABASE_URL;
const [mode, nText, a, b] = process.argv.slice(2);
const n = Number(nText);

async function main() {
  const utils = await makeWorkerUtils({ connectionString });
  await utils.migrate();
  await utils.withPgClient((c) => c.query("DELETE FROM graphile_worker._private_jobs"));
  let done = 0;
  let finished;
  const allDone = new Promise((resolve) => (finished = resolve));
  const latencies = [];
  const taskList = {
    noop: async () => {
      if (++done === n) finished();
    },
    timed: async (payload) => {
      latencies.push(Date.now() - payload.t);
      if (++done === n) finished();
    },
  };
  const concurrency = Number(mode === "drain" ? a : b);
  const runner = await run({
    connectionString,
    concurrency,
    noHandleSignals: true,
    pollInterval: 2000,
    taskList,
    logger: new (require("graphile-worker").Logger)(() => () => {}),
  });
  if (mode === "drain") {
    const specs = Array.from({ length: n }, () => ({ identifier: "noop", payload: {} }));
    await utils.addJobs(specs);
    const start = process.hrtime.bigint();
    await allDone;
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    console.log(JSON.stringify({ jobs: n, seconds }));
  } else {
    const rate = Number(a);
    for (let i = 0; i < n; i++) {
      await utils.addJob("timed", { t: Date.now() });
      await new Promise((r) => setTimeout(r, 1000 / rate));
    }
    await allDone;
    console.log(JSON.stringify({ latencies_ms: latencies }));
  }
  await runner.stop();
  await utils.release();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
