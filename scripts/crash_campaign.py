"""Kill a running campaign with SIGKILL at random moments, restart it each time, and check the archive.

    .venv/bin/python scripts/crash_campaign.py --kills 20 --evals 24 --seed 0

What it does (issue 6, "Crash safety"): writes a tiny-suite campaign config (the tests'
``campaign_config()`` as a YAML file: hurdle off, 2 evaluations at once), runs it once
uninterrupted to ``--evals`` evaluations for the reference count, then runs the same campaign
in a fresh database as ``evosearch run CFG --db DB --max-evals N`` in its own process group and
SIGKILLs the whole group at a random moment, at least ``--kills`` times, restarting it with the
same command each time; finally it lets the campaign finish. Kills are spread over three
phases: *startup* (a random delay from launch: imports, opening the database, starting the
sandbox workers), *evaluating* (a random delay after the first sandbox job started) and
*writing* (the instant the database's WAL file changes for the k-th time, k random). Within
three evaluations of the budget, kills come only before an evaluation can finish (start-up, or
one of the start-up writes), so the campaign never completes before the last kill.

After every kill: ``PRAGMA integrity_check`` is ``ok``; every evaluation seen complete before
the kill (the last snapshot taken while the campaign ran, and every earlier one) is still
there and unchanged (program id, source, outcome, stage, score, fingerprint, metrics, per-seed
rows); nothing is repeated (one completion per program, ``eval_seq`` 1..n without gaps, the
per-seed rows unique and complete, no behaviour trained twice); the stored counters agree with
the rows; the seed programs are in the archive; and the sandbox processes of the killed
campaign (they run in their own sessions, out of reach of the group kill) exit on their own
within a few seconds (they are found as descendants of the campaign, and by a working
directory under that launch's own ``EVOSEARCH_SCRATCH``). At the end the campaign has exactly as
many evaluations as the uninterrupted one and no sandbox process is left. Also reported, not
checked: the scratch entries and cgroup directories the killed launches left behind (the
cgroups, empty, are removed afterwards).

``--sandbox MODE`` sets the config's ``evaluation.sandbox``; ``--workdir DIR`` keeps the config,
databases, campaign logs and each launch's output there.

Exit status 0 when every check held, 1 otherwise. ``run()`` is the same thing as a function
(the slow test calls it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGN = "crash"
PHASES = ("startup", "evaluating", "writing")
WORKER_MODULE = "evosearch.sandbox.worker"
#: How long the sandbox processes of a killed campaign may take to exit on their own.
SANDBOX_EXIT_S = 5.0


# -- processes ------------------------------------------------------------------------------------


def proc_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, start time in clock ticks) for every process we can read."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        table[int(entry.name)] = (int(fields[1]), int(fields[19]))
    return table


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def descendants(table: dict[int, tuple[int, int]], root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, stack = set(), [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _runs_worker(argv: list[str]) -> bool:
    """A Python interpreter running the worker module, or a fork of one (a job).

    bubblewrap's command line names the module too (it is what bwrap starts): bwrap and its init
    are neither workers nor jobs.
    """
    return any(WORKER_MODULE in a for a in argv) and "python" in os.path.basename(argv[0] if argv else "")


def _answers_on_a_pipe(pid: int) -> bool:
    """A worker answers its host on stdout; a job's stdout is its output file."""
    try:
        return os.readlink(f"/proc/{pid}/fd/1").startswith(("pipe:", "socket:"))
    except OSError:
        return False


def sandbox_workers(table: dict[int, tuple[int, int]] | None = None, under: int | None = None) -> list[int]:
    """Warm sandbox workers below ``under`` (default: this process).

    A worker is an interpreter running ``evosearch.sandbox.worker`` whose parent is not one and
    which answers on a pipe. It may sit inside bubblewrap: host -> bwrap -> bwrap (init) ->
    python worker -> job.
    """
    table = proc_table() if table is None else table
    below = descendants(table, os.getpid() if under is None else under)
    return sorted(pid for pid in below if _runs_worker(cmdline(pid)) and not _runs_worker(cmdline(table[pid][0]))
                  and _answers_on_a_pipe(pid))


def sandbox_jobs(table: dict[int, tuple[int, int]] | None = None, under: int | None = None) -> list[int]:
    """Every process below a sandbox worker: its forked jobs and anything they started."""
    table = proc_table() if table is None else table
    found: set[int] = set()
    for worker in sandbox_workers(table, under):
        found |= descendants(table, worker)
    return sorted(found)


def processes_in(directory: Path, table: dict[int, tuple[int, int]] | None = None) -> dict[int, int]:
    """pid -> start time of every process whose working directory is ``directory`` or below it.

    Sandbox workers start in their scratch root and jobs work in their scratch directory, both
    under ``EVOSEARCH_SCRATCH``: this finds them even when they are no longer below the host.
    """
    table = proc_table() if table is None else table
    prefix = str(directory).rstrip("/") + "/"
    found = {}
    for pid, (_, start) in table.items():
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if (cwd + "/").startswith(prefix):
            found[pid] = start
    return found


def alive(pid: int, start: int) -> bool:
    """The process ``pid`` that started at ``start`` still exists (and is not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return False
    return int(fields[19]) == start and fields[0] != b"Z"


def describe(pid: int) -> str:
    return f"pid {pid} ({' '.join(cmdline(pid))[:120] or '?'})"


# -- the archive as the checks see it -------------------------------------------------------------


@dataclass
class Snapshot:
    """The completed evaluations of the campaign, and the counters stored beside them."""

    done: dict[int, tuple] = field(default_factory=dict)  # program id -> its record's fields
    per_seed: dict[int, tuple] = field(default_factory=dict)  # program id -> its per-seed rows
    state: dict = field(default_factory=dict)
    pending: int = 0
    shas: set[str] = field(default_factory=set)  # every program's source hash, pending ones too
    exists: bool = False  # the campaign row is there

    @property
    def evaluations(self) -> int:
        return sum(1 for r in self.done.values() if r[2] != "duplicate")


PROGRAM_FIELDS = ("id", "sha", "outcome", "stage", "score", "ci_low", "ci_high", "eval_seq", "fingerprint",
                  "duplicate_of", "descriptors", "metrics", "error")
SEED_FIELDS = ("task", "seed", "held_out", "mean_return", "normalized", "auc", "curve", "train_wall_s")


def snapshot(conn: sqlite3.Connection) -> Snapshot:
    """Read everything in one read transaction, so the rows and counters belong together."""
    snap = Snapshot()
    conn.execute("BEGIN")
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'campaigns'").fetchone() is None:
            return snap  # killed before the first migration committed: an empty file, which is fine
        row = conn.execute("SELECT id, state FROM campaigns WHERE name = ?", (CAMPAIGN,)).fetchone()
        if row is None:
            return snap
        snap.exists, campaign_id, snap.state = True, row[0], json.loads(row[1])
        for r in conn.execute(f"SELECT {', '.join(PROGRAM_FIELDS)}, status FROM programs WHERE campaign_id = ?",
                              (campaign_id,)):
            snap.shas.add(r[1])
            if r[-1] == "done":
                snap.done[r[0]] = tuple(r[:-1])
            else:
                snap.pending += 1
        rows: dict[int, list[tuple]] = {}
        for r in conn.execute(f"SELECT program_id, {', '.join(SEED_FIELDS)} FROM evaluations "
                              "ORDER BY program_id, held_out, task, seed, id"):
            rows.setdefault(r[0], []).append(tuple(r[1:]))
        snap.per_seed = {k: tuple(v) for k, v in rows.items()}
    finally:
        conn.execute("COMMIT")
    return snap


def live_snapshot(db: Path) -> Snapshot | None:
    """What a running campaign has committed so far (None while its database is not there yet)."""
    if not db.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.5, isolation_level=None)
        try:
            return snapshot(conn)
        finally:
            conn.close()
    except sqlite3.Error:  # being created, or locked for a moment
        return None


def check_archive(db: Path, seed_shas: set[str], earlier: list[tuple[str, Snapshot]],
                  per_seed_rows: int | None) -> tuple[str, Snapshot | None, list[str]]:
    """Open the archive as a restart would and check it; return (integrity, snapshot, problems)."""
    if not db.exists():
        lost = [f"the database is gone but {name} had {s.evaluations} evaluations" for name, s in earlier
                if s.done]
        return "no database yet", None, lost
    problems: list[str] = []
    conn = sqlite3.connect(db, isolation_level=None, timeout=30)
    try:
        integrity = "; ".join(r[0] for r in conn.execute("PRAGMA integrity_check"))
        if integrity != "ok":
            problems.append(f"PRAGMA integrity_check: {integrity[:300]}")
        try:
            snap = snapshot(conn)
        except sqlite3.Error as err:
            problems.append(f"reading the archive failed: {err}")
            return integrity, None, problems
        fk = conn.execute("PRAGMA foreign_key_check").fetchall()
        if fk:
            problems.append(f"foreign key violations: {fk[:5]}")
        if snap.exists:
            dup_seed = conn.execute("SELECT program_id, task, seed, held_out, COUNT(*) FROM evaluations "
                                    "GROUP BY program_id, task, seed, held_out HAVING COUNT(*) > 1").fetchall()
            if dup_seed:
                problems.append(f"per-seed rows repeated: {dup_seed[:5]}")
    finally:
        conn.close()
    problems += compare(snap, earlier)
    problems += consistency(snap, seed_shas, per_seed_rows)
    return integrity, snap, problems


def compare(now: Snapshot, earlier: list[tuple[str, Snapshot]]) -> list[str]:
    """Every completed evaluation of an earlier snapshot is still there, unchanged."""
    problems = []
    for name, before in earlier:
        lost = sorted(set(before.done) - set(now.done))
        if lost:
            problems.append(f"lost evaluations (complete {name}): programs {lost}")
        changed = sorted(p for p in set(before.done) & set(now.done)
                         if before.done[p] != now.done[p] or before.per_seed.get(p) != now.per_seed.get(p))
        for p in changed[:5]:
            diff = [f"{k}: {a!r:.60} -> {b!r:.60}" for k, a, b in zip(PROGRAM_FIELDS, before.done[p], now.done[p],
                                                                     strict=True) if a != b]
            if before.per_seed.get(p) != now.per_seed.get(p):
                diff.append(f"per-seed rows {len(before.per_seed.get(p, ()))} -> {len(now.per_seed.get(p, ()))}")
            problems.append(f"evaluation of program {p} changed since {name}: {'; '.join(diff)}")
        if len(changed) > 5:
            problems.append(f"... and {len(changed) - 5} more changed evaluations")
    return problems


def consistency(snap: Snapshot, seed_shas: set[str], per_seed_rows: int | None) -> list[str]:
    """Counters agree with the rows; nothing completed twice; the seed programs are there."""
    problems = []
    if not snap.exists:
        return problems
    state = snap.state
    duplicates = sum(1 for r in snap.done.values() if r[2] == "duplicate")
    if state.get("evaluations") != snap.evaluations:
        problems.append(f"state says {state.get('evaluations')} evaluations, the table has {snap.evaluations}")
    if state.get("duplicates") != duplicates:
        problems.append(f"state says {state.get('duplicates')} duplicates, the table has {duplicates}")
    seqs = sorted(r[7] for r in snap.done.values())
    if seqs != list(range(1, len(seqs) + 1)):
        problems.append(f"eval_seq is not 1..{len(seqs)}: {seqs}")
    for program_id, rows in snap.per_seed.items():
        record = snap.done.get(program_id)
        if record is None:
            problems.append(f"per-seed rows for program {program_id}, which is not complete")
        elif record[2] != "ok":
            problems.append(f"per-seed rows for program {program_id}, whose outcome is {record[2]}")
        elif per_seed_rows is not None and len(rows) != per_seed_rows:
            problems.append(f"program {program_id} has {len(rows)} per-seed rows, not {per_seed_rows}")
    missing = sorted(p for p, r in snap.done.items() if r[2] == "ok" and p not in snap.per_seed)
    if missing:
        problems.append(f"ok evaluations without per-seed rows: {missing}")
    trained: dict[str, list[int]] = {}
    for p, r in snap.done.items():
        if r[8] and r[2] not in ("duplicate", "sandbox_failure", "infra_error"):
            trained.setdefault(r[8], []).append(p)
    twice = {fp[:12]: ps for fp, ps in trained.items() if len(ps) > 1}
    if twice:
        problems.append(f"the same behaviour (fingerprint) evaluated more than once: {twice}")
    failures = sorted(p for p, r in snap.done.items() if r[2] in ("sandbox_failure", "infra_error"))
    if failures:
        problems.append(f"sandbox_failure or infra_error outcomes (the machinery failed, not the program): {failures} "
                        f"({snap.done[failures[0]][12][:200]})")
    missing_seeds = len(seed_shas - snap.shas)
    if missing_seeds:
        problems.append(f"{missing_seeds} of the {len(seed_shas)} seed programs are not in the archive "
                        f"(programs: {len(snap.shas)}, pending {snap.pending})")
    return problems


# -- running the campaign ---------------------------------------------------------------------------


@dataclass
class Plan:
    """When to kill one run: ``phase`` and its parameter (seconds, or the k-th WAL change)."""

    phase: str
    delay_s: float = 0.0
    wal_changes: int = 0
    deadline_s: float = float("inf")  # kill by then whatever happened (seconds after launch)


@dataclass
class Run:
    """What one launch of the campaign did, as seen from outside."""

    killed: bool
    rc: int | None
    wall_s: float
    detail: str = ""  # when and how it was killed
    jobs_at_kill: int = 0
    wal_changes: int = 0
    first_job_s: float | None = None
    first_done_s: float | None = None
    last_live: Snapshot | None = None
    tracked: int = 0  # processes it started (workers, bubblewrap, jobs) that were watched
    sandbox_exit_s: float = 0.0  # how long they took to exit after it died
    survivors: list[str] = field(default_factory=list)
    output: str = ""


@dataclass
class Kill:
    index: int
    phase: str
    detail: str
    jobs: int  # sandbox job processes running at the kill
    tracked: int  # processes of the campaign watched (they must exit on their own)
    before: int  # evaluations in the archive before this launch
    seen: int  # evaluations seen complete while it ran
    after: int  # evaluations in the archive after the kill
    integrity: str
    sandbox_exit_s: float
    problems: list[str]
    broken_pipes: int = 0  # workers that were starting and exited on a broken pipe (fine)

    def line(self, total: int) -> str:
        status = "ok" if not self.problems else "PROBLEM: " + " | ".join(self.problems)
        return (f"kill {self.index:2d}/{total} {self.phase:<10} {self.detail:<28} jobs {self.jobs}  "
                f"evaluations {self.before:2d} -> {self.after:2d} (seen {self.seen:2d})  "
                f"integrity {self.integrity}  {self.tracked} sandbox processes gone in {self.sandbox_exit_s:.2f} s"
                + (f" ({self.broken_pipes} starting worker(s) exited on a broken pipe)" if self.broken_pipes else "")
                + f"  {status}")


@dataclass
class Report:
    requested_kills: int
    evals: int
    seed: int
    reference_evaluations: int | None = None
    reference_s: float = 0.0
    final_evaluations: int | None = None
    final_outcomes: dict[str, int] = field(default_factory=dict)
    final_s: float = 0.0
    kills: list[Kill] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # every failed check, kills included
    leftover_scratch: int = 0  # scratch directories the killed launches left (nobody removes them)
    leftover_cgroups: list[str] = field(default_factory=list)  # their sandbox slots' cgroups, still there
    sandbox: str = ""  # the mode the campaign reported
    wall_s: float = 0.0
    workdir: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems and len(self.kills) >= self.requested_kills

    @property
    def phases(self) -> dict[str, int]:
        return dict(Counter(k.phase for k in self.kills))

    def summary(self) -> str:
        exits = [k.sandbox_exit_s for k in self.kills]
        lines = [
            f"sandbox: {self.sandbox}",
            f"reference (uninterrupted): {self.reference_evaluations} evaluations in {self.reference_s:.1f} s",
            f"killed {len(self.kills)} times (asked for {self.requested_kills}): "
            + ", ".join(f"{p} {n}" for p, n in sorted(self.phases.items())),
            f"after the final run: {self.final_evaluations} evaluations (final run {self.final_s:.1f} s); "
            f"outcomes: {', '.join(f'{k} {v}' for k, v in sorted(self.final_outcomes.items()))}",
            f"integrity ok after {sum(k.integrity in ('ok', 'no database yet') for k in self.kills)} of "
            f"{len(self.kills)} kills; sandbox processes gone within {max(exits, default=0):.2f} s of a kill "
            f"(mean {sum(exits) / max(1, len(exits)):.2f} s)",
            f"workers that were starting at a kill and exited on a broken pipe (fine): "
            f"{sum(k.broken_pipes for k in self.kills)}",
            f"left behind by the killed launches (not checked, for information): {self.leftover_scratch} scratch "
            f"entries, {len(self.leftover_cgroups)} cgroup directories",
            f"total {self.wall_s:.1f} s",
        ]
        lines += [f"PROBLEM: {p}" for p in self.problems]
        lines.append("RESULT: " + ("PASS, every check held" if self.ok else
                                   f"FAIL ({len(self.problems)} problem(s))"))
        return "\n".join(lines)


def campaign_yaml(evals: int, sandbox: str | None = None) -> str:
    """The tests' tiny-suite campaign (``conftest.campaign_config``) as a YAML file: hurdle off, 2 at once."""
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    scratch = os.environ.get("EVOSEARCH_SCRATCH")
    fresh = "conftest" not in sys.modules
    from conftest import campaign_config  # on first import it sets up a scratch root for a test session

    if fresh:  # not a test session: undo that
        made = os.environ.get("EVOSEARCH_SCRATCH")
        if made and made != scratch:
            shutil.rmtree(made, ignore_errors=True)
            if scratch is None:
                os.environ.pop("EVOSEARCH_SCRATCH")
            else:
                os.environ["EVOSEARCH_SCRATCH"] = scratch
    config = campaign_config(CAMPAIGN, parallel=2, budget={"max_evals": evals})
    assert not config.evaluation.hurdle and config.parallel == 2
    raw = json.loads(json.dumps(config.to_dict()))
    raw.pop("source_path", None)
    if sandbox:
        raw["evaluation"]["sandbox"] = sandbox
    return yaml.safe_dump(raw, sort_keys=False)


def evosearch_command() -> list[str]:
    script = Path(sys.executable).with_name("evosearch")
    return [str(script)] if script.exists() else [sys.executable, "-m", "evosearch.cli"]


def wal_signature(db: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(f"{db}-wal")
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


class Crasher:
    def __init__(self, kills: int, evals: int, seed: int, workdir: Path, log: Callable[[str], None],
                 sandbox: str | None = None) -> None:
        self.kills, self.evals, self.rng, self.workdir, self.log = kills, evals, random.Random(seed), workdir, log
        self.sandbox = sandbox
        self.report = Report(kills, evals, seed, workdir=str(workdir))
        self.config = workdir / "campaign.yaml"
        self.config.write_text(campaign_yaml(evals, sandbox), encoding="utf-8")
        self.scratch = workdir / "scratch"
        self.scratch.mkdir(exist_ok=True)
        for d in (workdir, self.scratch):  # jobs that run as an unprivileged uid must pass through
            d.chmod(0o711)
        self.seed_shas = self._seed_shas()
        self.per_seed_rows: int | None = None
        self.launches: list[int] = []  # campaign pids, in order
        self.first_job = 5.0

    def _seed_shas(self) -> set[str]:
        from evosearch.config import load_config
        from evosearch.program import Program

        config = load_config(self.config)
        return {Program(p.read_text(encoding="utf-8")).sha for p in config.seed_paths()}

    def command(self, db: Path) -> list[str]:
        return [*evosearch_command(), "run", str(self.config), "--db", str(db), "--max-evals", str(self.evals)]

    # -- one launch -------------------------------------------------------------------------------

    def launch(self, db: Path, plan: Plan | None, guard: bool = False, timeout_s: float = 1200.0) -> Run:
        """Start the campaign; with a plan, SIGKILL its process group when the plan says, else let it finish."""
        number = len(self.launches) + 1
        scratch = self.scratch / f"run{number}"  # this launch's workers and jobs work below here
        scratch.mkdir(mode=0o711)
        scratch.chmod(0o711)
        env = dict(os.environ, EVOSEARCH_SCRATCH=str(scratch))
        if self.sandbox:  # the config's evaluation.sandbox says it too
            env["EVOSEARCH_SANDBOX"] = self.sandbox
        out_path = self.workdir / f"run{number}.out"
        start = time.monotonic()
        with open(out_path, "wb") as out:
            proc = subprocess.Popen(self.command(db), stdout=out, stderr=subprocess.STDOUT, env=env,
                                    cwd=self.workdir, start_new_session=True)
        self.launches.append(proc.pid)
        seen: dict[int, int] = {}  # every process the campaign started: pid -> start time

        def look() -> dict[int, tuple[int, int]]:
            table = proc_table()
            for pid in descendants(table, proc.pid):
                seen.setdefault(pid, table[pid][1])
            for pid, started in processes_in(scratch, table).items():
                seen.setdefault(pid, started)
            return table

        run = Run(killed=False, rc=None, wall_s=0.0)
        before = live.evaluations if guard and (live := live_snapshot(db)) is not None else 0
        last_wal = wal_signature(db)
        next_look = 0.0
        reason = ""
        while proc.poll() is None:
            now = time.monotonic() - start
            sig = wal_signature(db)
            if sig != last_wal:
                last_wal = sig
                run.wal_changes += 1
                if plan and plan.phase == "writing" and run.wal_changes >= plan.wal_changes:
                    reason = f"WAL change {run.wal_changes} at {now:.2f} s"
                    break
            if now >= next_look:
                table = look()
                if run.first_job_s is None and sandbox_jobs(table, proc.pid):
                    run.first_job_s = now
                live = live_snapshot(db)
                if live is not None and live.exists:
                    run.last_live = live
                    if live.done and run.first_done_s is None:
                        run.first_done_s = now
                    if guard and live.evaluations >= self.evals - 1 > before:  # one more would finish it
                        reason = f"guard: {live.evaluations} evaluations ({now:.2f} s)"
                        break
                next_look = now + 0.1
            if plan and plan.phase == "startup" and now >= plan.delay_s:
                reason = f"{now:.2f} s after launch"
                break
            if plan and plan.phase == "evaluating" and run.first_job_s is not None \
                    and now >= run.first_job_s + plan.delay_s:
                reason = f"1st job +{now - run.first_job_s:.2f} s ({now:.2f} s)"
                break
            if plan and now >= plan.deadline_s:
                reason = f"deadline, {run.wal_changes} WAL changes ({now:.2f} s)"
                break
            if now > timeout_s:
                reason = f"timeout after {now:.0f} s"
                run.survivors.append(f"the campaign did not finish within {timeout_s:.0f} s")
                break
            time.sleep(0.001 if plan and plan.phase == "writing" else 0.01)
        if proc.poll() is None:
            table = look()  # the last look before the kill: what it has started by now
            run.jobs_at_kill = len(sandbox_jobs(table, proc.pid))
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the campaign's group; its workers have sessions of their own
                run.killed = True
            except ProcessLookupError:
                pass
        run.rc = proc.wait()
        run.wall_s = time.monotonic() - start
        run.detail = reason
        if not run.killed:  # it ended by itself: the last thing it wrote counts as seen
            live = live_snapshot(db)
            run.last_live = live if live is not None and live.exists else run.last_live
        for pid, started in processes_in(scratch).items():  # any started after the last look
            seen.setdefault(pid, started)
        run.tracked = len(seen)
        run.sandbox_exit_s, left = wait_for_exit(seen, SANDBOX_EXIT_S)
        run.survivors += [f"{describe(pid)} still running {SANDBOX_EXIT_S:.0f} s after the campaign "
                          f"{'was killed' if run.killed else 'exited'}" for pid in left]
        for pid in left:  # ours: started by the campaign we launched; do not let them skew what follows
            if alive(pid, seen[pid]):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        run.output = out_path.read_text(encoding="utf-8", errors="replace")
        return run

    # -- the experiment ---------------------------------------------------------------------------

    def reference(self) -> Run:
        db = self.workdir / "reference.db"
        self.log(f"uninterrupted reference run to {self.evals} evaluations ...")
        run = self.launch(db, None)
        integrity, snap, problems = check_archive(db, self.seed_shas, [], None)
        problems = [f"reference run: {p}" for p in problems + run.survivors]
        if run.rc != 0:
            problems.append(f"reference run exited with {run.rc}: {run.output[-500:]}")
        problems += [f"reference run: a traceback in its output: {t}" for t in tracebacks(run.output)[0]]
        self.report.problems += problems
        self.report.reference_s = run.wall_s
        self.report.sandbox = next((line.split(":", 1)[1].strip() for line in run.output.splitlines()
                                    if line.startswith("sandbox:")), "?")
        if snap is not None:
            self.report.reference_evaluations = snap.evaluations
            counts = {len(rows) for rows in snap.per_seed.values()}
            self.per_seed_rows = counts.pop() if len(counts) == 1 else None
        self.first_job = run.first_job_s or self.first_job
        self.log(f"reference: {self.report.reference_evaluations} evaluations in {run.wall_s:.1f} s "
                 f"(sandbox: {self.report.sandbox}); first job {_s(run.first_job_s)}, first completed evaluation "
                 f"{_s(run.first_done_s)} after launch" + "".join(f"\n  PROBLEM: {p}" for p in problems))
        return run

    def plans(self, ref: Run) -> list[Plan]:
        one_eval = max(1.0, (ref.first_done_s or self.first_job + 8.0) - self.first_job)
        phases = [PHASES[i % len(PHASES)] for i in range(self.kills)]
        self.rng.shuffle(phases)
        plans = []
        for phase in phases:
            if phase == "startup":  # imports, opening the archive, starting the workers
                plans.append(Plan(phase, delay_s=self.rng.uniform(0.05, self.first_job)))
            elif phase == "evaluating":  # up to two evaluations' time after the first job started
                plans.append(Plan(phase, delay_s=self.rng.uniform(0.0, 2 * one_eval)))
            else:  # the k-th write: opening, start-up records, proposals, finished evaluations
                plans.append(Plan(phase, wal_changes=self.rng.randint(1, 10),
                                  deadline_s=self.first_job + 3 * one_eval))
        return plans

    def near_the_end(self) -> Plan:
        """A kill before any evaluation can finish: at start-up, or at one of the start-up writes."""
        if self.rng.random() < 0.5:
            return Plan("startup", delay_s=self.rng.uniform(0.05, self.first_job))
        return Plan("writing", wal_changes=self.rng.randint(1, 4), deadline_s=self.first_job)

    def crash(self, plans: list[Plan]) -> None:
        db = self.workdir / "crashed.db"
        earlier: list[tuple[str, Snapshot]] = []  # snapshots whose completed evaluations must stay
        evaluations = 0
        for index, plan in enumerate(plans, 1):
            if self.evals - evaluations <= 3:  # keep the campaign from finishing before the last kill
                plan = self.near_the_end()
            run = self.launch(db, plan, guard=True)
            problems = list(run.survivors)
            if not run.killed:
                problems.append(f"the campaign exited by itself (status {run.rc}) before the kill: "
                                f"{run.output.strip()[-300:]}")
            found, broken_pipes = tracebacks(run.output)
            problems += [f"a traceback in the campaign's output: {t}" for t in found]
            seen = run.last_live
            if seen is not None:
                earlier.append((f"before kill {index}", seen))
            integrity, snap, found = check_archive(db, self.seed_shas, earlier, self.per_seed_rows)
            problems += found
            if snap is not None:
                earlier = [(f"after kill {index}", snap)]  # holds every earlier one, unchanged (checked)
            kill = Kill(index, plan.phase, run.detail, run.jobs_at_kill, run.tracked, evaluations,
                        seen.evaluations if seen else 0, snap.evaluations if snap else 0, integrity,
                        run.sandbox_exit_s, problems, broken_pipes)
            evaluations = kill.after
            self.report.kills.append(kill)
            self.report.problems += [f"kill {index}: {p}" for p in problems]
            self.log(kill.line(len(plans)))
            if not run.killed and run.rc == 0:
                break
        self.log("letting the campaign finish ...")
        run = self.launch(db, None)
        self.report.final_s = run.wall_s
        problems = list(run.survivors)
        if run.rc != 0:
            problems.append(f"the final run exited with {run.rc}: {run.output[-500:]}")
        problems += [f"a traceback in the final run's output: {t}" for t in tracebacks(run.output)[0]]
        integrity, snap, found = check_archive(db, self.seed_shas, earlier, self.per_seed_rows)
        problems += found
        if snap is not None:
            self.report.final_evaluations = snap.evaluations
            self.report.final_outcomes = dict(Counter(r[2] for r in snap.done.values()))
            if snap.pending:
                problems.append(f"{snap.pending} programs still pending after the campaign finished")
        if self.report.final_evaluations != self.report.reference_evaluations:
            problems.append(f"the campaign ended with {self.report.final_evaluations} evaluations, the "
                            f"uninterrupted one with {self.report.reference_evaluations}")
        self.report.problems += [f"final: {p}" for p in problems]
        self.log(f"final run: {run.wall_s:.1f} s, {self.report.final_evaluations} evaluations, integrity {integrity}"
                 + "".join(f"\n  PROBLEM: {p}" for p in problems))

    def finish(self) -> None:
        """Nothing of any launch may be running; count what the killed launches left on disk."""
        left = sorted(set(sandbox_jobs()) | set(processes_in(self.scratch)) |
                      {p for p in self.launches if alive(p, proc_table().get(p, (0, -1))[1])})
        if left:
            self.report.problems.append("processes left at the end: " + ", ".join(map(describe, left)))
        self.report.leftover_scratch = sum(1 for run in self.scratch.iterdir() for _ in run.iterdir())
        self.report.leftover_cgroups = leftover_cgroups(self.launches)
        for path in reversed(self.report.leftover_cgroups):  # empty groups of our launches: do not leak them
            try:
                os.rmdir(path)
            except OSError:
                pass


def tracebacks(output: str) -> tuple[list[str], int]:
    """(the tracebacks in a launch's output that matter, how many were a sandbox worker's broken pipe).

    A worker whose host died while it started up finds out by failing to write its "ready" line:
    it exits, with a ``BrokenPipeError`` traceback on the stderr it shares with the host. That is
    the worker doing the right thing, so it is counted, not reported as a problem.
    """
    found, broken_pipes = [], 0
    for block in output.split("Traceback (most recent call last):")[1:]:
        last = next((line for line in block.strip("\n").splitlines() if line and not line[0].isspace()), "")
        frames = block.split(last, 1)[0] if last else block
        if "evosearch/sandbox/worker.py" in frames and last.startswith("BrokenPipeError"):
            broken_pipes += 1
        else:
            found.append("Traceback (most recent call last):" + frames[-600:] + last)
    return found, broken_pipes


def _s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f} s"


def wait_for_exit(processes: dict[int, int], limit_s: float) -> tuple[float, list[int]]:
    """Wait up to ``limit_s`` for ``processes`` (pid -> start time) to exit; (seconds waited, pids left)."""
    start = time.monotonic()
    left = {p: s for p, s in processes.items() if alive(p, s)}
    while left and time.monotonic() - start < limit_s:
        time.sleep(0.02)
        left = {p: s for p, s in left.items() if alive(p, s)}
    return time.monotonic() - start, sorted(left)


def leftover_cgroups(hosts: list[int], root: str = "/sys/fs/cgroup", depth: int = 6) -> list[str]:
    """cgroup directories of the sandbox slots of ``hosts`` (named ``evosearch_worker-PID-N-...``) that still exist."""
    prefixes = tuple(f"evosearch_worker-{pid}-" for pid in hosts)
    found = []
    base = root.rstrip("/").count("/")
    for path, dirs, _ in os.walk(root):
        if path.count("/") - base >= depth:
            dirs[:] = []
            continue
        for d in dirs:
            if d.startswith(prefixes):
                found.append(os.path.join(path, d))
    return sorted(found)


def run(kills: int = 20, evals: int = 24, seed: int = 0, workdir: str | Path | None = None,
        log: Callable[[str], None] = print, sandbox: str | None = None) -> Report:
    """The whole experiment; returns its report (``report.ok`` when every check held).

    ``sandbox`` asks the campaigns for a sandbox mode (the config's ``evaluation.sandbox``); None: auto.
    """
    if kills < 1 or evals < 2:
        raise ValueError("need at least 1 kill and 2 evaluations")
    started = time.monotonic()
    own = workdir is None
    path = Path(tempfile.mkdtemp(prefix="crash-campaign-") if own else workdir)
    path.mkdir(parents=True, exist_ok=True)
    crasher = Crasher(kills, evals, seed, path, log, sandbox)
    try:
        ref = crasher.reference()
        crasher.crash(crasher.plans(ref))
        crasher.finish()
    finally:
        crasher.report.wall_s = time.monotonic() - started
    if own and crasher.report.ok:
        shutil.rmtree(path, ignore_errors=True)
    return crasher.report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs at least (default 20)")
    parser.add_argument("--evals", type=int, default=24, help="the campaign's evaluation budget (default 24)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill timing (default 0)")
    parser.add_argument("--sandbox", help="the campaigns' evaluation.sandbox (default: auto, the strongest that works)")
    parser.add_argument("--workdir", type=Path, help="keep config, databases and logs here "
                        "(default: a temporary directory, removed if every check held)")
    args = parser.parse_args(argv)
    report = run(args.kills, args.evals, args.seed, args.workdir, log=lambda line: print(line, flush=True),
                 sandbox=args.sandbox)
    print(report.summary())
    if not report.ok:
        print(f"files: {report.workdir}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
