#!/usr/bin/env python3
"""The PostgreSQL queue's benchmarks (docs/queue.md, issue 15), printed as pool-bench's JSON lines.

Runs under scripts/with-postgres (PG* point at a throw-away cluster). Measures, on the
same cluster in the same run:
- throughput: N echo jobs inserted by one statement into idle pools (1, then 2), until the
  last is done, on the database's clock (created_at of the batch to the last finished_at);
- enqueue to start: single jobs enqueued one at a time into idle pools, each job's claim
  time minus its enqueue time (started_at - created_at, both the database's clock);
- procrastinate (PyPI), the Python PostgreSQL queue, doing the same with the same number
  of worker processes and concurrency: the floor each ratio is taken to.

Environment: POOLBENCH_QUEUE_POOLTOP (a pooltop built with the PostgresQueue trait),
POOLBENCH_RUNS (runs per figure, default 3), POOLBENCH_QUEUE_JOBS (default 20000).
"""
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

try:
    import psycopg
except ImportError:  # scripts/ensure-deps bench installs it; without it there is nothing to measure with
    print("# queue: skipped, psycopg is missing (pip install 'psycopg[binary]')", flush=True)
    sys.exit(0)

POOLTOP = os.environ.get("POOLBENCH_QUEUE_POOLTOP", ".build/queue/release/pooltop")
RUNS = max(int(os.environ.get("POOLBENCH_RUNS", "3")), 1)
JOBS = int(os.environ.get("POOLBENCH_QUEUE_JOBS", "20000"))
SINGLES = 200
CONCURRENCY = 64
SCHEMA = "qbench"


def percentile(values, p):
    """pool-bench's rank rule, so the figures read the same."""
    ordered = sorted(values)
    return ordered[int(round(p * (len(ordered) - 1)))] if ordered else float("nan")


def figure(name, unit, samples, floor=None, target=None, minimum=False, note=None):
    def fmt(value):
        return round(value, 3) if value == value and value not in (float("inf"), float("-inf")) else None

    median = percentile(samples, 0.5)
    line = {"bench": name, "unit": unit, "runs": len(samples), "median": fmt(median), "p90": fmt(percentile(samples, 0.9))}
    if floor:
        line["floor_median"] = fmt(percentile(floor, 0.5))
        line["ratio_to_floor"] = fmt(median / percentile(floor, 0.5))
    if target is not None:
        line["target"] = target
        line["meets_target"] = median >= target if minimum else median <= target
    if note:
        line["note"] = note
    print(json.dumps(line, separators=(",", ":")), flush=True)


def connect(database=None):
    return psycopg.connect(dbname=database, autocommit=True) if database else psycopg.connect(autocommit=True)


def wait_until(check, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise TimeoutError(f"{what} not reached in {timeout} s")


class Pools:
    """pooltop pools (`pooltop run`), each a job group of 2 demo job workers and a queue group."""

    def __init__(self, directory, count):
        self.processes = []
        self.names = [f"qbench-{os.getpid()}-{index}" for index in range(count)]
        for name in self.names:
            config = os.path.join(directory, f"{name}.yaml")
            with open(config, "w") as file:
                file.write(
                    f"""name: {name}
recordFor: off
groups:
  - name: jobs
    kind: job
    entryPoint: demo-job
    min: 2
    jobs: {{maxConcurrent: {CONCURRENCY}, maxQueued: 1000}}
  - name: queue
    kind: service
    entryPoint: postgres-queue
    settings: {{schema: {SCHEMA}, queues: {{bench: jobs}}, concurrency: {CONCURRENCY}, lease: 30s}}
"""
                )
            log = open(os.path.join(directory, f"{name}.log"), "w")
            self.processes.append(subprocess.Popen([POOLTOP, "run", "--config", config], stdout=log, stderr=subprocess.STDOUT))
        with connect() as db:
            # Ready once every pool's queue group has recorded its heartbeat (it listens by then).
            def ready():
                try:
                    return db.execute(f"SELECT count(*) FROM {SCHEMA}.pools").fetchone()[0] >= len(self.names)
                except psycopg.errors.UndefinedTable:
                    return False

            wait_until(ready, 60, "pools ready")

    def stop(self):
        stop_all(self.processes)


def stop_all(processes):
    """SIGTERM to every process, then wait for each: they stop in parallel."""
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait(timeout=60)


def pooltop_throughput(db):
    db.execute(f"TRUNCATE {SCHEMA}.jobs")
    db.execute(f"INSERT INTO {SCHEMA}.jobs (queue, payload) SELECT 'bench', convert_to('echo ' || n, 'UTF8') FROM generate_series(1, {JOBS}) AS n")
    wait_until(lambda: db.execute(f"SELECT count(*) FROM {SCHEMA}.jobs WHERE state = 'done'").fetchone()[0] == JOBS, 300, "every job done")
    seconds = db.execute(f"SELECT extract(epoch FROM max(finished_at) - min(created_at)) FROM {SCHEMA}.jobs").fetchone()[0]
    return JOBS / float(seconds)


def pooltop_latencies(db):
    db.execute(f"TRUNCATE {SCHEMA}.jobs")
    for index in range(SINGLES):
        db.execute(f"SELECT {SCHEMA}.enqueue('bench', 'echo single')")
        time.sleep(0.01)
    wait_until(lambda: db.execute(f"SELECT count(*) FROM {SCHEMA}.jobs WHERE state = 'done'").fetchone()[0] == SINGLES, 60, "singles done")
    rows = db.execute(f"SELECT extract(epoch FROM started_at - created_at) * 1000 FROM {SCHEMA}.jobs").fetchall()
    return [float(row[0]) for row in rows]


PROCRASTINATE_APP = """
from procrastinate import App, PsycopgConnector

app = App(connector=PsycopgConnector())


@app.task(queue="bench")
async def echo(text):
    return text
"""


class Procrastinate:
    """procrastinate workers (`procrastinate worker`) in a database of their own."""

    def __init__(self, directory, count):
        self.directory = directory
        with connect() as db:
            db.execute("DROP DATABASE IF EXISTS procrastinate_bench")
            db.execute("CREATE DATABASE procrastinate_bench")
        with open(os.path.join(directory, "bench_tasks.py"), "w") as file:
            file.write(PROCRASTINATE_APP)
        self.environment = dict(os.environ, PGDATABASE="procrastinate_bench", PYTHONPATH=directory)
        subprocess.run(
            [sys.executable, "-m", "procrastinate", "--app=bench_tasks.app", "schema", "--apply"],
            env=self.environment, check=True, capture_output=True)
        self.processes = []
        for index in range(count):
            log = open(os.path.join(directory, f"procrastinate-{index}.log"), "w")
            self.processes.append(subprocess.Popen(
                [sys.executable, "-m", "procrastinate", "--app=bench_tasks.app", "worker", "--queues", "bench",
                 "--concurrency", str(CONCURRENCY)],
                env=self.environment, stdout=log, stderr=subprocess.STDOUT))
        time.sleep(3)  # Its workers say nothing when they listen: give them the time to start.

    def stop(self):
        stop_all(self.processes)

    def database(self):
        return connect("procrastinate_bench")

    def defer(self, count, one_at_a_time):
        script = f"""
import asyncio, time
from bench_tasks import app, echo

async def main():
    async with app.open_async():
        if {one_at_a_time}:
            for _ in range({count}):
                await echo.defer_async(text="single")
                time.sleep(0.01)
        else:
            await echo.batch_defer_async(*[{{"text": str(n)}} for n in range({count})])

asyncio.run(main())
"""
        subprocess.run([sys.executable, "-c", script], env=self.environment, check=True, capture_output=True)

    def done(self, db):
        return db.execute("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'").fetchone()[0]

    def throughput(self):
        with self.database() as db:
            db.execute("TRUNCATE procrastinate_jobs CASCADE")
            self.defer(JOBS, one_at_a_time=False)
            wait_until(lambda: self.done(db) == JOBS, 600, "every procrastinate job done")
            seconds = db.execute(
                "SELECT extract(epoch FROM max(at) FILTER (WHERE type = 'succeeded') - min(at) FILTER (WHERE type = 'deferred')) FROM procrastinate_events"
            ).fetchone()[0]
            return JOBS / float(seconds)

    def latencies(self):
        with self.database() as db:
            db.execute("TRUNCATE procrastinate_jobs CASCADE")
            self.defer(SINGLES, one_at_a_time=True)
            wait_until(lambda: self.done(db) == SINGLES, 120, "procrastinate singles done")
            rows = db.execute(
                """SELECT extract(epoch FROM s.at - d.at) * 1000 FROM procrastinate_events d
                   JOIN procrastinate_events s ON s.job_id = d.job_id AND s.type = 'started'
                   WHERE d.type = 'deferred'"""
            ).fetchall()
            return [float(row[0]) for row in rows]


def main():
    if not os.path.exists(POOLTOP):
        print(f"# queue: skipped, no pooltop with the queue at {POOLTOP}", flush=True)
        return 0
    try:
        import procrastinate  # noqa: F401
    except ImportError:
        print("# queue: procrastinate is missing (pip install procrastinate 'psycopg[binary]'); the floor is left out", flush=True)
        procrastinate_available = False
    else:
        procrastinate_available = True
    directory = tempfile.mkdtemp(prefix="poolbench-queue-")
    settings = {}
    with connect() as db:
        for name in ("fsync", "synchronous_commit"):
            settings[name] = db.execute(f"SHOW {name}").fetchone()[0]
    where = f"PostgreSQL {'fsync ' + settings['fsync']}, synchronous_commit {settings['synchronous_commit']}, Unix socket, same host"
    try:
        floor = {1: [], 2: []}
        floor_latency = []
        if procrastinate_available:
            for workers in (1, 2):
                peer = Procrastinate(directory, workers)
                try:
                    for _ in range(RUNS):
                        floor[workers].append(peer.throughput())
                    if workers == 2:
                        floor_latency = peer.latencies()
                finally:
                    peer.stop()
        for count in (1, 2):
            pools = Pools(directory, count)
            try:
                with connect() as db:
                    rates = [pooltop_throughput(db) for _ in range(RUNS)]
                    latencies = pooltop_latencies(db) if count == 2 else []
            finally:
                pools.stop()
            figure(
                f"queue_jobs_per_second_{count}_pool{'s' if count > 1 else ''}", "jobs/s", rates, floor=floor[count],
                target=10000 if count == 2 else None, minimum=True,
                note=f"{JOBS} echo jobs inserted by one statement into {count} idle pool(s) (2 demo job workers, queue concurrency {CONCURRENCY} each), first created_at to last finished_at; {where}; floor: procrastinate {count} worker process(es), concurrency {CONCURRENCY}, batch_defer, deferred to last succeeded event")
            if latencies:
                how = f"{SINGLES} single jobs enqueued 10 ms apart into 2 idle pools, started_at - created_at on the database's clock (LISTEN/NOTIFY wake, then the claim); {where}; floor: procrastinate, 2 workers, deferred to started event"
                figure("queue_enqueue_to_start", "ms", latencies, floor=floor_latency or None, target=5,
                       note=f"median is p50 over the jobs; {how}")
                figure("queue_enqueue_to_start_p99", "ms", [percentile(latencies, 0.99)],
                       floor=[percentile(floor_latency, 0.99)] if floor_latency else None, note=how)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
