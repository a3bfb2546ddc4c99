"""Faults under load: the portal in its production shape while things break underneath.

Run (see bench/README.md, "Faults under load"; never in CI)::

    make bench-faults                                        # the full run (~10 min)
    .venv/bin/python bench/faults.py --phase-seconds 10 --redis-outage 10 \\
        --sink-outage 15 --pg-outage 5                       # a short one (~3 min)
    .venv/bin/python bench/faults.py --minutes 6             # fit the calm phases to 6 min

It starts, in a temporary folder, everything of its own: a PostgreSQL cluster
(``initdb``, as the ``postgres`` user when run as root) and a ``redis-server`` on free
ports (never the machine's shared ones), an SMTP sink (aiosmtpd) and a webhook
receiver in this process; then the portal as the README's "Running in production" says:
``VRM_ENV=production``, ``flask vrm init-db``, gunicorn with ``--web-workers`` (2)
workers and one ``flask vrm worker``, rate limits and the job queue in that Redis.

A mixed load runs the whole time (bench/faults_load.py): consumers sign in and give and
withdraw consents through the real forms, confirm email consents from the link in the
email, download their export; each brand's CRM follows ``/api/v1/changes`` and pages
through ``/api/v1/consumers``; the worker sends the emails and the webhooks; a probe
reads ``/readyz``. During the load, one at a time, with ``--phase-seconds`` of calm
before each:

- ``worker-kill``: SIGKILL the job worker while a job runs, start it again after
  ``--worker-down`` s;
- ``pg-terminate``: ``pg_terminate_backend`` on every connection of the portal;
- ``pg-restart``: stop PostgreSQL (``pg_ctl stop -m fast``), ``--pg-outage`` s, start it;
- ``web-kill``: SIGKILL a gunicorn worker in the middle of requests (gunicorn starts
  another);
- ``redis-stop``: stop Redis for ``--redis-outage`` s (30), start it again (empty: it
  keeps nothing on disk, so the queue's pending hand-overs are gone too);
- ``redis-hang``: SIGSTOP Redis for half of ``--redis-outage``, then SIGCONT: it accepts
  connections but answers nothing, like a partitioned or stuck server;
- ``sinks-stop``: stop the SMTP sink and the webhook receiver for ``--sink-outage`` s
  (60), start them again.

Then the load stops, the backlog drains (``--drain-seconds`` at most), and the checks
run; the table says what was found. The exit status is 0 when every check passed.
"""

# The bench runs as a script from anywhere: put the repository root on sys.path first.

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.faults_load import BrandReader, ConsumerLoad, Probe, Recorder, Request
from bench.faults_services import (
    Portal,
    PostgresCluster,
    RedisServer,
    SmtpSink,
    WebhookReceiver,
    free_port,
    log,
    rss_kib,
    tail,
    wait_for,
)

DATABASE = "vrm_faults"
PASSWORD = "Fault-harness-passphrase-2026"
FAULTS = (
    "worker-kill",
    "pg-terminate",
    "pg-restart",
    "web-kill",
    "redis-stop",
    "redis-hang",
    "sinks-stop",
)
#: After a fault is lifted, this long still counts as "during" it (requests under way).
SETTLE = 5.0


@dataclass
class Fault:
    name: str
    started: float
    lifted: float = 0.0
    note: str = ""
    #: name -> seconds after ``lifted`` (None: not seen within the run).
    recovery: dict[str, float | None] = field(default_factory=dict)

    def window(self) -> tuple[float, float]:
        return self.started, self.lifted + SETTLE


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


# ---- setting up -------------------------------------------------------------------------


def write_key(path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def portal_environment(
    folder: Path, database_url: str, redis_url: str, web_port: int, smtp_port: int, args: Any
) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("VRM_")}
    instance = folder / "instance"
    instance.mkdir(parents=True, exist_ok=True)
    write_key(folder / "receipts.pem")
    write_key(folder / "log.pem")
    env.update(
        {
            "VRM_ENV": "production",
            "VRM_SECRET_KEY": secrets.token_urlsafe(48),
            "VRM_DATABASE_URL": database_url,
            "VRM_REDIS_URL": redis_url,
            "VRM_JOBS_QUEUE": "vrm-faults",
            "VRM_PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}",
            "VRM_INSTANCE_PATH": str(instance),
            "VRM_SMTP_HOST": "127.0.0.1",
            "VRM_SMTP_PORT": str(smtp_port),
            "VRM_SMTP_TIMEOUT_SECONDS": "5",
            "VRM_RECEIPT_SIGNING_KEY_FILE": str(folder / "receipts.pem"),
            "VRM_LOG_SIGNING_KEY_FILE": str(folder / "log.pem"),
            "VRM_OPERATOR_NAME": "Fault Harness SAS",
            "VRM_OPERATOR_ADDRESS": "1 rue des Pannes, 69002 Lyon, France",
            "VRM_DPO_CONTACT": "dpo@faults.vrm.example",
            "VRM_SUPERVISORY_AUTHORITY_NAME": "CNIL",
            "VRM_SUPERVISORY_AUTHORITY_URL": "https://www.cnil.fr/",
            # Every consumer signs in from 127.0.0.1: the per-address sign-in limit would
            # otherwise be the first thing the load measures.
            "VRM_LOGIN_RATE_LIMIT": "1000 per minute;50000 per hour",
            # A killed worker's jobs are taken over once their lease ends: the default
            # (5 min for most kinds) would outlast a short run.
            "VRM_JOBS_LEASE_SECONDS": str(args.job_lease),
            # A checkpoint of the public log every minute (production: every 5), so the
            # feeds and webhooks carry log.checkpoint entries within the run.
            "VRM_SCHEDULE_CHECKPOINT": "* * * * *",
        }
    )
    return env


# ---- the run ----------------------------------------------------------------------------


class Harness:
    def __init__(self, args: argparse.Namespace, folder: Path) -> None:
        self.args = args
        self.folder = folder
        self.recorder = Recorder()
        self.faults: list[Fault] = []
        self.stop_load = threading.Event()
        self.stop_sampling = threading.Event()
        #: pid -> [(time, rss KiB)]
        self.memory: dict[int, list[tuple[float, int]]] = defaultdict(list)
        self.warm_until = 0.0
        self.load_started = 0.0
        self.load_stopped = 0.0
        self.drained_in: float | None = None
        pg_port = free_port(args.pg_port)
        redis_port = free_port(args.redis_port)
        smtp_port = free_port(None)
        hook_port = free_port(None)
        web_port = free_port(None)
        self.pg = PostgresCluster(folder / "pg", pg_port)
        self.redis = RedisServer(folder / "redis", redis_port)
        self.smtp = SmtpSink(smtp_port)
        self.hooks = WebhookReceiver(hook_port)
        env = portal_environment(
            folder, self.pg.url(DATABASE), self.redis.url(0), web_port, smtp_port, args
        )
        logs = folder / "logs"
        logs.mkdir()
        self.portal = Portal(env, web_port, args.web_workers, logs)
        self.base = f"http://127.0.0.1:{web_port}"
        self.seed: dict[str, Any] = {}
        self.readers: list[BrandReader] = []
        self.probe: Probe | None = None

    # -- services ------------------------------------------------------------------------

    def start(self) -> None:
        log(f"run folder {self.folder}")
        log(f"PostgreSQL {self.pg.bin} on port {self.pg.port} (the run's own cluster)")
        self.pg.init()
        self.pg.start()
        self.pg.create_database(DATABASE)
        log(f"redis-server on port {self.redis.port} (the run's own)")
        self.redis.start()
        self.smtp.start()
        self.hooks.start()
        log("vrm init-db")
        self.portal.flask("init-db")
        log(f"seeding {self.args.consumers} consumers, API clients, webhook endpoints")
        output = self.portal.python(
            "import runpy, sys; sys.argv = sys.argv[1:]; "
            "runpy.run_path('bench/faults_seed.py', run_name='__main__')",
            "bench/faults_seed.py",
            str(self.args.consumers),
            f"http://127.0.0.1:{self.hooks.port}",
            PASSWORD,
        )
        self.seed = json.loads(output.strip().splitlines()[-1])
        for slug, brand in self.seed["brands"].items():
            self.hooks.secrets[slug] = brand["webhook_secret"]
        log(f"gunicorn -w {self.args.web_workers} on {self.base}, and vrm worker")
        self.portal.start_gunicorn()
        self.portal.start_job_worker()
        wait_for(self.ready, 60, "/readyz")

    def ready(self) -> bool:
        import requests

        try:
            return requests.get(self.base + "/readyz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        self.stop_load.set()
        self.stop_sampling.set()
        self.portal.stop()
        self.smtp.stop()
        self.hooks.stop()
        self.redis.stop()
        self.pg.destroy()

    # -- memory ----------------------------------------------------------------------------

    def sample_memory(self) -> None:
        while not self.stop_sampling.is_set():
            now = time.time()
            for pid in self.portal.processes():
                rss = rss_kib(pid)
                if rss is not None:
                    self.memory[pid].append((now, rss))
            self.stop_sampling.wait(2.0)

    # -- load --------------------------------------------------------------------------------

    def start_load(self) -> list[threading.Thread]:
        emails: list[str] = self.seed["emails"]
        brands = sorted(self.seed["brands"])
        threads: list[threading.Thread] = []
        per = max(1, len(emails) // self.args.consumer_threads)
        for number in range(self.args.consumer_threads):
            mine = emails[number * per : (number + 1) * per]
            threads.append(
                ConsumerLoad(
                    f"consumers-{number}",
                    self.base,
                    mine,
                    PASSWORD,
                    brands,
                    self.recorder,
                    self.smtp,
                    self.stop_load,
                    seed=number,
                    think=self.args.think,
                )
            )
        for slug, brand in self.seed["brands"].items():
            reader = BrandReader(
                self.base,
                slug,
                brand["client_id"],
                brand["client_secret"],
                self.recorder,
                self.stop_load,
                self.args.reader_interval,
            )
            self.readers.append(reader)
            threads.append(reader)
        self.probe = Probe(self.base, self.recorder, self.stop_load, 0.5)
        threads.append(self.probe)
        for thread in threads:
            thread.start()
        return threads

    # -- faults ------------------------------------------------------------------------------

    def calm(self, seconds: float) -> None:
        self.stop_load.wait(seconds)

    def fault(self, name: str) -> Fault:
        fault = Fault(name, time.time())
        self.faults.append(fault)
        log(f"fault {name}")
        getattr(self, "fault_" + name.replace("-", "_"))(fault)
        log(f"fault {name} lifted{': ' + fault.note if fault.note else ''}")
        return fault

    def db(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.pg.dsn(DATABASE), autocommit=True, connect_timeout=5)

    def fault_worker_kill(self, fault: Fault) -> None:
        """SIGKILL the job worker while it holds a job or webhook deliveries (waits up to
        15 s for that moment), start it again ``--worker-down`` s later."""
        deadline = time.time() + 15
        running: list[str] = []
        hooks = 0
        while time.time() < deadline:
            with self.db() as connection:
                running = [
                    row[0]
                    for row in connection.execute("SELECT id FROM jobs WHERE status = 'running'")
                ]
                # Claimed deliveries: pending, their next attempt pushed to the lease's end.
                row = connection.execute(
                    "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending' "
                    "AND next_attempt_at > now() + interval '60 seconds'"
                ).fetchone()
                hooks = row[0] if row else 0
            if running or hooks:
                break
            time.sleep(0.02)
        fault.started = time.time()
        self.portal.kill_job_worker()
        fault.note = (
            f"killed holding {len(running)} running job(s) and {hooks} claimed webhook deliveries"
        )
        self.killed_jobs = running
        time.sleep(self.args.worker_down)
        self.portal.start_job_worker()
        fault.lifted = time.time()

    def fault_pg_terminate(self, fault: Fault) -> None:
        count = self.pg.terminate_backends(DATABASE)
        fault.lifted = time.time()
        fault.note = f"{count} connection(s) terminated"

    def fault_pg_restart(self, fault: Fault) -> None:
        self.pg.stop("fast")
        stopped = time.time()
        time.sleep(self.args.pg_outage)
        self.pg.start()
        fault.lifted = time.time()
        fault.note = f"down {fault.lifted - stopped:.1f} s (pg_ctl stop -m fast, then start)"

    def fault_web_kill(self, fault: Fault) -> None:
        workers = self.portal.web_workers()
        victim = workers[0]
        # In the middle of a request: a sync worker that runs (state R) is serving one.
        deadline = time.time() + 10
        busy = False
        while time.time() < deadline and not busy:
            busy = _process_state(victim) == "R"
            if not busy:
                time.sleep(0.002)
        fault.started = time.time()
        os.kill(victim, signal.SIGKILL)
        wait_for(
            lambda: (
                len([p for p in self.portal.web_workers() if p != victim]) >= self.args.web_workers
            ),
            60,
            "gunicorn's new worker",
        )
        fault.lifted = time.time()
        fault.recovery["workers back"] = fault.lifted - fault.started
        fault.note = f"worker {victim} killed {'while running' if busy else 'while idle'}"

    def fault_redis_stop(self, fault: Fault) -> None:
        self.redis.stop()
        fault.started = time.time()
        time.sleep(self.args.redis_outage)
        self.redis.start()
        fault.lifted = time.time()

    def fault_redis_hang(self, fault: Fault) -> None:
        """Redis stops answering without closing anything (SIGSTOP): a network partition
        or a stuck server, where connections hang instead of being refused."""
        process = self.redis.process
        assert process is not None
        os.kill(process.pid, signal.SIGSTOP)
        fault.started = time.time()
        time.sleep(self.args.redis_outage / 2)
        os.kill(process.pid, signal.SIGCONT)
        fault.lifted = time.time()

    def fault_sinks_stop(self, fault: Fault) -> None:
        self.smtp.stop()
        self.hooks.stop()
        fault.started = time.time()
        time.sleep(self.args.sink_outage)
        self.smtp.start()
        self.hooks.start()
        fault.lifted = time.time()

    # -- drain -------------------------------------------------------------------------------

    def backlog(self) -> dict[str, int]:
        with self.db() as connection:
            jobs = connection.execute(
                "SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')"
            ).fetchone()
            hooks = connection.execute(
                "SELECT count(*) FROM webhook_deliveries "
                "WHERE status NOT IN ('delivered', 'failed')"
            ).fetchone()
            # Consent changes committed but not yet given their place by the sequencer
            # (docs/write-path.md): their events, feed entries and webhooks are to come.
            intake = connection.execute("SELECT count(*) FROM consent_event_intake").fetchone()
            # The log's last checkpoint (it adds an entry to every brand's feed) is still
            # to come while it does not cover every event.
            unsigned = connection.execute(
                "SELECT (SELECT count(*) FROM consent_events) "
                "- coalesce((SELECT max(size) FROM log_checkpoints), 0)"
            ).fetchone()
        feeds = 0
        for reader in self.readers:
            if not reader.poll():
                feeds += 1
        return {
            "checkpoint": 1 if unsigned and unsigned[0] else 0,
            "intake": intake[0] if intake else -1,
            "jobs": jobs[0] if jobs else -1,
            "webhooks": hooks[0] if hooks else -1,
            "feeds": feeds,
        }

    def drain(self) -> dict[str, int]:
        started = time.time()
        last: dict[str, int] = {}
        while time.time() - started < self.args.drain_seconds:
            try:
                last = self.backlog()
            except psycopg.Error as exc:
                last = {"error": 1}
                log(f"drain: {exc}")
            if not any(last.values()):
                self.drained_in = time.time() - started
                return last
            time.sleep(2)
        return last

    # -- the whole run ---------------------------------------------------------------------

    def run(self) -> int:
        self.start()
        sampler = threading.Thread(target=self.sample_memory, daemon=True)
        sampler.start()
        self.load_started = time.time()
        threads = self.start_load()
        self.warm_until = self.load_started + self.args.phase_seconds
        for name in self.args.faults:
            self.calm(self.args.phase_seconds)
            self.fault(name)
        self.calm(self.args.phase_seconds)
        self.stop_load.set()
        for thread in threads:
            thread.join(timeout=60)
        self.load_stopped = time.time()
        log("load stopped; draining the backlog")
        left = self.drain()
        log(f"backlog after drain: {left}")
        self.stop_sampling.set()
        checks = self.checks(left)
        with (self.folder / "requests.jsonl").open("w") as dump:
            for r in self.recorder.requests:
                dump.write(json.dumps(r.__dict__) + "\n")
        self.report(checks)
        return 0 if all(check.ok for check in checks) else 1

    # ---- checks --------------------------------------------------------------------------

    def in_fault(self, r: Request) -> Fault | None:
        """The fault whose window the request overlaps (it was under way, or began, then)."""
        for fault in self.faults:
            start, end = fault.window()
            if r.started <= end and r.ended >= start:
                return fault
        return None

    def checks(self, left: dict[str, int]) -> list[Check]:
        self.recovery_times()
        checks = [
            *self.consent_checks(),
            *self.ledger_checks(),
            *self.feed_checks(),
            *self.webhook_checks(),
            *self.email_checks(),
            self.jobs_check(),
            self.access_records_check(),
            *self.http_checks(),
            self.memory_check(),
        ]
        if any(left.values()):
            with self.db() as connection:
                row = connection.execute(
                    "SELECT min(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'"
                ).fetchone()
            waiting = (
                f"; the first pending webhook waits until {row[0]:%H:%M:%S}"
                if row and row[0]
                else ""
            )
            checks.append(Check("backlog drained", False, f"left after drain: {left}{waiting}"))
        else:
            checks.append(
                Check("backlog drained", True, f"in {self.drained_in or 0:.0f} s after the load")
            )
        return checks

    def accounts(self, connection: psycopg.Connection[Any]) -> dict[str, str]:
        rows = connection.execute(
            "SELECT email, subject_key FROM accounts WHERE email LIKE '%%@faults.vrm.example'"
        )
        return {email: key for email, key in rows}

    def consent_checks(self) -> list[Check]:
        with self.db() as connection:
            subjects = self.accounts(connection)
            by_subject = {key: email for email, key in subjects.items()}
            ledger: dict[tuple[str, str, str], list[str]] = defaultdict(list)
            for subject, brand, purpose, action in connection.execute(
                "SELECT subject_key, brand_slug, purpose_key, action FROM consent_events "
                "ORDER BY seq"
            ):
                if subject in by_subject:
                    ledger[(by_subject[subject], brand, purpose)].append(action)
        seen = self.recorder.seen
        lost, extra, matched, changes = [], [], 0, 0
        for key in sorted(set(seen) | set(ledger)):
            want, have = seen.get(key, []), ledger.get(key, [])
            changes += len(want)
            if want == have:
                matched += len(want)
                continue
            if len(have) < len(want):
                lost.append(f"{key}: saw {want}, ledger {have}")
            else:
                extra.append(f"{key}: saw {want}, ledger {have}")
        after_error = self.recorder.recorded_after_error
        answered = [a for a, _ in after_error if a.request.status >= 400]
        dropped = [a for a, _ in after_error if a.request.status == 0]
        checks = [
            Check(
                "consents seen recorded are in the ledger, once, in order",
                not lost and not extra,
                f"{changes} changes seen recorded (303 + page), {matched} matched; "
                f"{len(lost)} keys short, {len(extra)} keys with more"
                + (f"; e.g. {(lost + extra)[0]}" if lost or extra else ""),
            ),
            Check(
                "a change answered with an error left nothing behind",
                not answered,
                f"{self.recorder.clean_after_error} errored changes left nothing; "
                f"{len(answered)} answered 4xx/5xx yet recorded"
                + (
                    f" (e.g. {answered[0].key} status {answered[0].request.status})"
                    if answered
                    else ""
                )
                + f"; {len(dropped)} recorded whose answer was lost with a killed process "
                "(the consumer saw no answer, the page shows it given)",
            ),
        ]
        if self.recorder.flash_mismatch:
            checks.append(
                Check(
                    "the page after a 303 says what was recorded",
                    False,
                    f"{len(self.recorder.flash_mismatch)}: {self.recorder.flash_mismatch[0]}",
                )
            )
        return checks

    def ledger_checks(self) -> list[Check]:
        checks = []
        for command in ("verify-ledger", "verify-log"):
            result = self.portal.flask(command, check=False)
            text = (result.stdout + result.stderr).strip().splitlines()
            checks.append(Check(f"vrm {command}", result.returncode == 0, text[-1] if text else ""))
        with self.db() as connection:
            events = connection.execute("SELECT count(*) FROM consent_events").fetchone()[0]
            bad_receipts = connection.execute(
                "SELECT count(*) FROM (SELECT e.seq FROM consent_events e "
                "LEFT JOIN consent_receipts r ON r.event_seq = e.seq "
                "GROUP BY e.seq HAVING count(r.id) <> 1) AS bad"
            ).fetchone()[0]
            # Each consent event of a brand has its feed entry (kind, consumer, purpose).
            feed_missing = connection.execute(
                """
                WITH events AS (
                  SELECT e.brand_slug, e.purpose_key, e.action, r.pairwise_id,
                         row_number() OVER (PARTITION BY e.subject_key, e.brand_slug,
                                            e.purpose_key ORDER BY e.seq) AS n
                  FROM consent_events e
                  JOIN accounts a ON a.subject_key = e.subject_key
                  JOIN brands b ON b.slug = e.brand_slug
                  JOIN brand_relationships r ON r.account_id = a.id AND r.brand_id = b.id
                ), entries AS (
                  SELECT b.slug AS brand_slug, c.data->>'purpose' AS purpose_key,
                         substr(c.kind, 9) AS action, c.pairwise_id,
                         row_number() OVER (PARTITION BY c.brand_id, c.pairwise_id,
                                            c.data->>'purpose' ORDER BY c.seq) AS n
                  FROM brand_changes c JOIN brands b ON b.id = c.brand_id
                  WHERE c.kind IN ('consent.granted', 'consent.withdrawn', 'consent.expired')
                )
                SELECT
                  (SELECT count(*) FROM events ev WHERE NOT EXISTS (
                     SELECT 1 FROM entries en WHERE en.brand_slug = ev.brand_slug
                       AND en.purpose_key = ev.purpose_key AND en.pairwise_id = ev.pairwise_id
                       AND en.n = ev.n AND en.action = ev.action)),
                  (SELECT count(*) FROM entries en WHERE NOT EXISTS (
                     SELECT 1 FROM events ev WHERE en.brand_slug = ev.brand_slug
                       AND en.purpose_key = ev.purpose_key AND en.pairwise_id = ev.pairwise_id
                       AND en.n = ev.n AND en.action = ev.action))
                """
            ).fetchone()
        checks.append(
            Check(
                "one receipt per ledger event",
                bad_receipts == 0,
                f"{events} events, {bad_receipts} without exactly one receipt",
            )
        )
        checks.append(
            Check(
                "one feed entry per consent event, in the same order",
                feed_missing == (0, 0),
                f"{feed_missing[0]} events without their entry, "
                f"{feed_missing[1]} entries without their event",
            )
        )
        return checks

    def feed_checks(self) -> list[Check]:
        with self.db() as connection:
            heads = dict(connection.execute("SELECT slug, feed_seq FROM brands"))
        problems = list(self.recorder.feed_problems)
        details = []
        for reader in self.readers:
            seen = self.recorder.feed_seen[reader.brand]
            head = heads[reader.brand]
            if seen != list(range(1, head + 1)):
                duplicates = sum(n - 1 for n in Counter(seen).values() if n > 1)
                missing = head - len(set(seen))
                problems.append(
                    f"{reader.brand}: {len(seen)} entries read, feed at {head}, "
                    f"{duplicates} twice, {missing} missing"
                )
            details.append(f"{reader.brand} {len(seen)}/{head}")
        return [
            Check(
                "every feed reader saw every entry once, in order",
                not problems,
                "; ".join(problems[:3]) if problems else ", ".join(details),
            )
        ]

    def webhook_checks(self) -> list[Check]:
        deliveries = self.hooks.snapshot()
        with self.db() as connection:
            feeds: dict[str, list[int]] = defaultdict(list)
            for slug, seq in connection.execute(
                "SELECT b.slug, d.change_seq FROM webhook_deliveries d "
                "JOIN brands b ON b.id = d.brand_id ORDER BY d.change_seq"
            ):
                feeds[slug].append(seq)
            unqueued = connection.execute(
                "SELECT count(*) FROM brand_changes c WHERE NOT EXISTS (SELECT 1 FROM "
                "webhook_deliveries d WHERE d.brand_id = c.brand_id AND d.change_seq = c.seq)"
            ).fetchone()[0]
            statuses = dict(
                connection.execute(
                    "SELECT status, count(*) FROM webhook_deliveries GROUP BY status"
                ).fetchall()
            )
        missing, twice, redelivered, bad_signature = 0, 0, 0, 0
        for slug, seqs in feeds.items():
            mine = [d for d in deliveries if d.path == slug]
            ids_by_seq: dict[int, set[str]] = defaultdict(set)
            posts: Counter[int] = Counter()
            for delivery in mine:
                ids_by_seq[delivery.seq].add(delivery.webhook_id)
                posts[delivery.seq] += 1
                bad_signature += not delivery.signature_ok
            missing += sum(1 for seq in seqs if seq not in ids_by_seq)
            twice += sum(1 for ids in ids_by_seq.values() if len(ids) > 1)
            redelivered += sum(posts[seq] - len(ids) for seq, ids in ids_by_seq.items())
        total = sum(len(seqs) for seqs in feeds.values())
        return [
            Check(
                "every webhook delivered, once per Webhook-Id",
                missing == 0 and twice == 0 and bad_signature == 0 and unqueued == 0,
                f"{total} deliveries queued ({unqueued} feed entries without one), "
                f"{missing} never delivered, {twice} delivered under two "
                f"ids, {redelivered} re-sent with the same Webhook-Id (absorbed), "
                f"{bad_signature} bad signatures; outbox {statuses}",
            )
        ]

    def email_checks(self) -> list[Check]:
        mails = self.smtp.snapshot()
        with self.db() as connection:
            jobs = {
                job_id: status
                for job_id, status in connection.execute(
                    "SELECT id, status FROM jobs WHERE kind = 'mail.send'"
                )
            }
        received = Counter(mail.message_id.strip("<>").split("@")[0] for mail in mails)
        done = {job_id for job_id, status in jobs.items() if status == "done"}
        lost = sorted(done - set(received))
        unknown = sorted(set(received) - set(jobs))
        again = sum(n - 1 for n in received.values() if n > 1)
        asked = sum(self.recorder.confirmations_asked.values())
        confirmations = sum(1 for mail in mails if "Confirm that you want emails" in mail.subject)
        distinct_confirmations = len(
            {mail.message_id for mail in mails if "Confirm that you want emails" in mail.subject}
        )
        unclear = self.recorder.confirmations_unclear
        ok_count = asked <= distinct_confirmations <= asked + unclear
        return [
            Check(
                "every email sent once per Message-ID (its job)",
                not lost and not unknown and len(done) == len(jobs),
                f"{len(jobs)} mail jobs, {len(done)} done, {len(received)} Message-IDs received, "
                f"{len(lost)} done but never received, {again} received again under the same "
                f"Message-ID (absorbed), {len(unknown)} with no job",
            ),
            Check(
                "one confirmation email per 'Almost done' page",
                ok_count,
                f"{asked} asked (+{unclear} unclear answers), {distinct_confirmations} received "
                f"({confirmations} with repeats)",
            ),
        ]

    def access_records_check(self) -> Check:
        """Each API read answered with items leaves one access record (written in batches
        by each gunicorn worker; a SIGKILLed worker may lose its last half second)."""
        with self.db() as connection:
            rows = dict(
                connection.execute(
                    "SELECT kind, count(*) FROM access_records GROUP BY kind"
                ).fetchall()
            )
        kills = [f.started for f in self.faults if f.name == "web-kill"]
        parts, ok = [], True
        for kind, ends in sorted(self.recorder.api_reads.items()):
            have = rows.get(kind, 0)
            missing = len(ends) - have
            excusable = sum(1 for end in ends for kill in kills if kill - 1.0 <= end <= kill)
            ok = ok and 0 <= missing <= excusable
            parts.append(
                f"{kind}: {len(ends)} reads, {have} records"
                + (
                    f" ({missing} missing, {excusable} ended <= 1 s before a kill)"
                    if missing
                    else ""
                )
            )
        return Check("every API read left its access record", ok, "; ".join(parts))

    def jobs_check(self) -> Check:
        with self.db() as connection:
            counts = dict(
                connection.execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall()
            )
            failed = connection.execute(
                "SELECT kind, last_error FROM jobs WHERE status = 'failed' LIMIT 3"
            ).fetchall()
        ok = not counts.get("failed") and not counts.get("queued") and not counts.get("running")
        return Check(
            "no job failed or left behind",
            ok,
            f"{counts}" + (f"; failed: {failed}" if failed else ""),
        )

    def http_checks(self) -> list[Check]:
        outside_5xx = [
            r for r in self.recorder.requests if r.status >= 500 and not self.in_fault(r)
        ]
        outside_transport = [
            r for r in self.recorder.requests if r.status == 0 and not self.in_fault(r)
        ]
        five_hundreds = [r for r in self.recorder.requests if r.status == 500]
        bad_503 = [
            r
            for r in self.recorder.requests
            if r.status == 503
            and r.kind != "readyz"
            and (
                not r.retry_after
                or r.traceback
                or (
                    r.content_type != "application/problem+json"
                    if r.kind.startswith("api")
                    else r.content_type != "text/html"
                )
            )
        ]
        exports_bad = self.recorder.exports_bad
        return [
            Check(
                "no 5xx outside the injected faults",
                not outside_5xx,
                f"{len(outside_5xx)}" + (f": {_describe(outside_5xx[0])}" if outside_5xx else ""),
            ),
            Check(
                "no transport error outside the injected faults",
                not outside_transport,
                f"{len(outside_transport)}"
                + (f": {_describe(outside_transport[0])}" if outside_transport else ""),
            ),
            Check(
                "never a 500 (outages answer 503)",
                not five_hundreds,
                f"{len(five_hundreds)}"
                + (f": {_describe(five_hundreds[0])}" if five_hundreds else ""),
            ),
            Check(
                "every 503 has Retry-After; pages HTML, API problem+json, no trace",
                not bad_503,
                f"{len(bad_503)} not so" + (f": {_describe(bad_503[0])}" if bad_503 else ""),
            ),
            Check(
                "every export that answered 200 is whole JSON",
                not exports_bad,
                f"{self.recorder.exports_ok} whole"
                + (f"; {exports_bad[0]}" if exports_bad else ""),
            ),
        ]

    def memory_check(self) -> Check:
        growths = []
        for pid, samples in self.memory.items():
            after = self.after_warm_up(samples)
            if len(after) < 5 or after[-1][0] - after[0][0] < 60:
                continue  # too short-lived to say
            growths.append((after[-1][1] / after[0][1] - 1, pid, after[0][1], after[-1][1]))
        worst = max(growths, default=(0.0, 0, 0, 0))
        return Check(
            "memory flat (RSS growth < 10% after warm-up)",
            worst[0] < 0.10,
            f"worst {worst[0] * 100:+.1f}% ({self.portal.roles.get(worst[1], '?')} {worst[1]}: "
            f"{worst[2] / 1024:.0f} -> {worst[3] / 1024:.0f} MiB)",
        )

    def after_warm_up(self, samples: list[tuple[float, int]]) -> list[tuple[float, int]]:
        """A process's samples once warm: after the run's warm-up phase and after its own
        first ``--phase-seconds`` (30 s at least: a process started mid-run loads its code
        paths then)."""
        if not samples:
            return []
        since = max(self.warm_until, samples[0][0] + max(self.args.phase_seconds, 30.0))
        return [(t, rss) for t, rss in samples if t >= since]

    # ---- recovery ------------------------------------------------------------------------

    def first_success_after(self, moment: float, kinds: tuple[str, ...]) -> float | None:
        times = [
            r.started
            for r in self.recorder.requests
            if r.kind in kinds and r.started >= moment and 200 <= r.status < 400
        ]
        return min(times) - moment if times else None

    def last_error_after(self, moment: float, until: float) -> float | None:
        """When the last error began after ``moment``, among requests over before ``until``
        (the next fault's start)."""
        times = [
            r.started
            for r in self.recorder.requests
            if moment <= r.started and r.ended < until and (r.status >= 500 or r.status == 0)
        ]
        return max(times) - moment if times else None

    def recovery_times(self) -> None:
        answers = self.probe.answers if self.probe else []
        for fault in self.faults:
            lifted = fault.lifted
            fault.recovery["first consent 303"] = self.first_success_after(lifted, ("consent",))
            fault.recovery["first API 200"] = self.first_success_after(lifted, ("api-changes",))
            ready = [t for t, status, _ in answers if t >= lifted and status == 200]
            fault.recovery["readyz ready"] = min(ready) - lifted if ready else None
            if fault.name in ("redis-stop",):
                redis_ok = [
                    t
                    for t, _, checks in answers
                    if t >= lifted and all(v == "ok" for v in checks.values()) and checks
                ]
                fault.recovery["readyz all ok"] = min(redis_ok) - lifted if redis_ok else None
            if fault.name in ("pg-restart", "pg-terminate"):
                following = [f.started for f in self.faults if f.started > fault.started]
                until = min(following, default=self.load_stopped)
                fault.recovery["last error began"] = self.last_error_after(lifted, until)
            if fault.name == "worker-kill" and getattr(self, "killed_jobs", None):
                with self.db() as connection:
                    row = connection.execute(
                        "SELECT max(extract(epoch FROM finished_at)), count(*) FILTER "
                        "(WHERE status = 'done') FROM jobs WHERE id = ANY(%s)",
                        (self.killed_jobs,),
                    ).fetchone()
                if row and row[0] is not None and row[1] == len(self.killed_jobs):
                    fault.recovery["killed jobs done"] = float(row[0]) - lifted
                else:
                    fault.recovery["killed jobs done"] = None
            if fault.name in ("redis-stop", "pg-restart"):
                # Jobs committed during the outage (their hand-over to the queue failed
                # or was lost with Redis's memory): done how long after it was lifted?
                with self.db() as connection:
                    row = connection.execute(
                        "SELECT max(extract(epoch FROM finished_at)), count(*), "
                        "count(*) FILTER (WHERE status = 'done') FROM jobs "
                        "WHERE created_at BETWEEN to_timestamp(%s) AND to_timestamp(%s)",
                        (fault.started, lifted),
                    ).fetchone()
                if row and row[1]:
                    fault.recovery[f"its {row[1]} jobs done"] = (
                        float(row[0]) - lifted if row[2] == row[1] and row[0] else None
                    )
            if fault.name == "sinks-stop":
                mails = [m.at for m in self.smtp.snapshot() if m.at >= lifted]
                hooks = [d.at for d in self.hooks.snapshot() if d.at >= lifted]
                with self.db() as connection:
                    backlog = connection.execute(
                        "SELECT count(*) FROM brand_changes WHERE occurred_at < to_timestamp(%s)",
                        (lifted,),
                    ).fetchone()[0]
                delivered = {(d.path, d.seq) for d in self.hooks.snapshot() if d.at < lifted}
                fault.recovery["webhook backlog sent"] = self.backlog_time(lifted, backlog)
                fault.note = f"{backlog - len(delivered)} webhook(s) waited for the receiver"
            if fault.name == "sinks-stop":
                mails = [m.at for m in self.smtp.snapshot() if m.at >= lifted]
                hooks = [d.at for d in self.hooks.snapshot() if d.at >= lifted]
                fault.recovery["first email after"] = min(mails) - lifted if mails else None
                fault.recovery["first webhook after"] = min(hooks) - lifted if hooks else None

    def backlog_time(self, lifted: float, entries_before: int) -> float | None:
        """When the receiver had every feed entry that existed when it came back."""
        first: dict[tuple[str, int], float] = {}
        for delivery in self.hooks.snapshot():
            first.setdefault((delivery.path, delivery.seq), delivery.at)
        if len(first) < entries_before:
            return None
        times = sorted(first.values())
        return max(0.0, times[entries_before - 1] - lifted)

    # ---- the table -------------------------------------------------------------------------

    def report(self, checks: list[Check]) -> None:
        requests_ = self.recorder.requests
        print()
        print(f"Faults under load — {time.strftime('%Y-%m-%d %H:%M')}, "
              f"{self.args.web_workers} gunicorn workers, 1 job worker (2 threads), "
              f"{self.args.consumer_threads} consumer threads, {len(self.readers)} brand readers, "
              f"load {self.load_stopped - self.load_started:.0f} s")  # fmt: skip
        print()
        print("Requests by kind")
        print(f"  {'kind':<14}{'total':>8}{'2xx/3xx':>9}{'4xx':>6}{'5xx':>6}{'no answer':>11}")
        kinds = sorted({r.kind for r in requests_})
        for kind in kinds:
            mine = [r for r in requests_ if r.kind == kind]
            ok = sum(1 for r in mine if 200 <= r.status < 400)
            c4 = sum(1 for r in mine if 400 <= r.status < 500)
            c5 = sum(1 for r in mine if r.status >= 500)
            c0 = sum(1 for r in mine if r.status == 0)
            print(f"  {kind:<14}{len(mine):>8}{ok:>9}{c4:>6}{c5:>6}{c0:>11}")
        print()
        print("Errors by kind, during each fault (start to lifted + 5 s) and outside")
        print(f"  {'window':<14}{'length':>8}  errors")
        for fault in self.faults:
            start, end = fault.window()
            mine = [r for r in requests_ if r.started <= end and r.ended >= start]
            print(f"  {fault.name:<14}{end - start:>7.0f}s  {_errors(mine)}")
        outside = [r for r in requests_ if self.in_fault(r) is None]
        print(f"  {'outside':<14}{'':>8}  {_errors(outside)}")
        print()
        print("Recovery after each fault (seconds after it was lifted)")
        for fault in self.faults:
            parts = [f"{name} {_seconds(name, value)}" for name, value in fault.recovery.items()]
            print(f"  {fault.name:<14}{', '.join(parts)}")
            if fault.note:
                print(f"  {'':<14}({fault.note})")
        print()
        print("Memory (RSS, MiB: after warm-up -> end)")
        for pid, samples in sorted(self.memory.items()):
            after = [rss for _, rss in self.after_warm_up(samples)]
            if not after:
                continue
            role = self.portal.roles.get(pid, "?")
            span = samples[-1][0] - samples[0][0]
            print(
                f"  {role:<16}{pid:>8}  {after[0] / 1024:6.1f} -> {after[-1] / 1024:6.1f}"
                f"  ({(after[-1] / after[0] - 1) * 100:+.1f}%, lived {span:.0f} s)"
            )
        print()
        print("End checks")
        for check in checks:
            print(f"  {'PASS' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
        print()


def _seconds(name: str, value: float | None) -> str:
    if value is None:
        return "none" if name.startswith("last error") else "—"
    return f"{value:.1f}"


def _process_state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "?"


def _describe(r: Request) -> str:
    what = f"{r.status}" if r.status else r.error
    return f"{r.kind} {what} at +{r.started:.0f} {r.content_type} {r.snippet[:120]!r}"


def _errors(requests_: list[Request]) -> str:
    counts: Counter[str] = Counter()
    for r in requests_:
        if r.status >= 500 or r.status == 0:
            counts[f"{r.kind} {r.status or r.error}"] += 1
    return ", ".join(f"{k} x{n}" for k, n in sorted(counts.items())) or "none"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, help="fit the calm phases to this total")
    parser.add_argument("--phase-seconds", type=float, default=45, help="calm before each fault")
    parser.add_argument("--pg-outage", type=float, default=15)
    parser.add_argument("--redis-outage", type=float, default=30)
    parser.add_argument("--sink-outage", type=float, default=60)
    parser.add_argument("--worker-down", type=float, default=10)
    parser.add_argument("--drain-seconds", type=float, default=420)
    parser.add_argument("--faults", default=",".join(FAULTS), help="which, in order")
    parser.add_argument("--consumers", type=int, default=60)
    parser.add_argument("--consumer-threads", type=int, default=4)
    parser.add_argument("--think", type=float, default=0.3, help="mean pause between steps")
    parser.add_argument("--reader-interval", type=float, default=1.0)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--job-lease", type=int, default=30, help="VRM_JOBS_LEASE_SECONDS")
    parser.add_argument("--pg-port", type=int, default=55432)
    parser.add_argument("--redis-port", type=int, default=56379)
    parser.add_argument("--keep", action="store_true", help="keep the run folder (logs)")
    args = parser.parse_args()
    args.faults = [name for name in args.faults.split(",") if name]
    for name in args.faults:
        if name not in FAULTS:
            parser.error(f"unknown fault {name!r}: {', '.join(FAULTS)}")
    if args.minutes:
        outages = {
            "pg-restart": args.pg_outage,
            "redis-stop": args.redis_outage,
            "redis-hang": args.redis_outage / 2,
            "sinks-stop": args.sink_outage,
            "worker-kill": args.worker_down,
        }
        busy = sum(outages.get(name, 2) for name in args.faults)
        args.phase_seconds = max(5.0, (args.minutes * 60 - busy) / (len(args.faults) + 1))
    return args


def main() -> int:
    args = parse_args()
    folder = Path(tempfile.mkdtemp(prefix="vrm_faults_"))
    os.chmod(folder, 0o755)  # noqa: S103  (the postgres user reaches its cluster inside)
    harness = Harness(args, folder)
    status = 2
    try:
        status = harness.run()
    except KeyboardInterrupt:
        log("interrupted")
    except Exception:
        log("the harness failed; the last lines of the portal's logs:")
        for name in ("gunicorn.log", "worker.log"):
            print(f"--- {name}\n{tail(harness.portal.logs / name)}")
        raise
    finally:
        harness.stop()
        if args.keep or status != 0:
            log(f"run folder kept: {folder} (logs/)")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
