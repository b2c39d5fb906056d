"""Job start-up latency: submission to candidate code running, fork from the warm worker vs a fresh interpreter.

Why: every evaluation runs several sandboxed jobs (smoke probe, one training job per task,
scoring), and a campaign runs thousands of evaluations, many of which end at the cheap static
or smoke stage. The sandbox forks each job from a warm worker that has already imported torch,
EnvPool and the harness, instead of starting an interpreter per job; issue 6 sets the target
that this is at least 50x faster than a fresh interpreter. This measures both in the same run:

* **Warm (fork).** A valid A2C rule (``programs/rules/a2c.py``) whose first top-level statement
  prints ``time.monotonic()`` is run as a real ``probe`` job with
  ``evosearch.sandbox.run_job(..., Limits(wall_s=60))``; its stdout comes back in
  ``JobOutcome.output_tail``. Latency = that timestamp minus ``time.monotonic()`` taken just
  before ``run_job`` is called. CLOCK_MONOTONIC is system-wide on Linux (bubblewrap does not
  unshare the time namespace), so timestamps from different processes compare. One untimed job
  first starts the worker: that is reported apart, as the start-up a pool slot pays once.
* **Fresh (reference).** ``subprocess.run([sys.executable, "-c", ...])`` per job, doing what a
  sandbox without a warm worker must do before the candidate can run: start an interpreter,
  ``from evosearch.evaluate import jobs`` (torch, EnvPool, the harness), then
  ``evosearch.train.rule.load_rule`` on the same source. Same environment variables as the
  worker (one OpenMP/MKL thread), same latency measurement. It applies no isolation (rlimits,
  namespaces, seccomp), which the warm path's figure includes, so the ratio is conservative.

Where the warm path spends its time is observed without touching ``evosearch/``: timers wrapped
from outside around ``runner.Worker.run`` (the request is written to the worker's pipe on entry)
and ``runner.Worker._read`` (the worker's "started" reply), the candidate's own CPU time and
rusage at its first statement (a forked child's CPU clock starts at zero, so that is the child's
set-up work: setsid, output redirection, rlimits, isolation, compiling the rule), the worker's
CPU time and page faults per job from ``/proc/<pid>/stat``, a separate process with the worker's
imports that only forks (what ``fork()`` of a process that size costs, parent and child side),
and a pipe round trip to an idle Python process that parses a request-sized JSON line and
answers (the worker's request loop without the fork).
These hooks are optional: if the sandbox internals change, the breakdown shrinks, the figures stay.

Figures are printed, never asserted: they depend on the machine and on what else runs on it.

    .venv/bin/python bench/job_start.py [--reps 30] [--fresh-reps 5] [--fork-reps 30] [--json [PATH]]
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import select
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # works without PYTHONPATH and from any working directory
    sys.path.insert(0, str(ROOT))

from _common import no_nan  # noqa: E402

import evosearch.sandbox as sandbox  # noqa: E402
from evosearch.evaluate.jobs import ProbeJob  # noqa: E402
from evosearch.machine import cpu_model  # noqa: E402
from evosearch.sandbox import Limits, run_job  # noqa: E402

RULE_PATH = ROOT / "programs" / "rules" / "a2c.py"
TARGET = 50.0  # issue 6: fork from the warm worker at least 50x faster than a fresh interpreter
MARK = "JOB_START_BENCH"
# The first statement prints the clock; the second what the process did before it (for a forked
# child: its own set-up since fork, as its CPU clock and rusage start from zero at fork).
PROBE_HEAD = f"""\
print("{MARK}", __import__("time").monotonic(), __import__("time").process_time())
import json as _bench_json, resource as _bench_resource
_bench_ru = _bench_resource.getrusage(_bench_resource.RUSAGE_SELF)
print("{MARK}_RUSAGE", _bench_json.dumps({{"minflt": _bench_ru.ru_minflt, "majflt": _bench_ru.ru_majflt,
      "nvcsw": _bench_ru.ru_nvcsw, "nivcsw": _bench_ru.ru_nivcsw}}))
"""
# The worker's environment variables that matter to start-up (the sandbox sets these for its worker).
FRESH_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2",
             "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1"}
FRESH_SCRIPT = f"""\
import time; t_first = time.monotonic()
import sys
from evosearch.evaluate import jobs  # noqa: F401 - what the job needs: torch, EnvPool, the harness
t_imported = time.monotonic()
print("{MARK}_FRESH", t_first, t_imported, flush=True)
from evosearch.train.rule import load_rule
load_rule(sys.argv[1], "<rule>")
sys.stdout.flush()
"""
FORK_SCRIPT = """\
import json, os, resource, sys, time
os.environ["OMP_NUM_THREADS"] = "1"
from evosearch.evaluate import jobs  # noqa: F401 - the warm worker's imports
reps = int(sys.argv[1])
r, w = os.pipe()
rows = []
minflt = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(reps):
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        t, cpu, faults = time.monotonic(), time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        os.write(w, f"{t} {cpu} {faults}\\n".encode())
        os._exit(0)
    t1 = time.monotonic()
    child_t, child_cpu, child_minflt = map(float, os.read(r, 200).split())
    os.waitpid(pid, 0)
    rows.append({"fork_parent_s": t1 - t0, "child_first_s": child_t - t0, "child_cpu_s": child_cpu,
                 "child_exists_s": child_t - child_cpu - t0, "child_minflt": child_minflt,
                 "reaped_s": time.monotonic() - t0})
minflt = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - minflt) / reps
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
print(json.dumps({"rows": rows, "parent_minflt_per_fork": minflt, "vm_rss_mb": int(status["VmRSS"].split()[0]) / 1024,
                  "vm_size_mb": int(status["VmSize"].split()[0]) / 1024}))
"""

# The worker's request loop without the fork: read a JSON line, answer with a JSON line.
IDLE_S = 0.005  # before each ping: the worker has been idle a few ms when a request arrives
ECHO_SCRIPT = """\
import json, os, sys
reader = os.fdopen(os.dup(sys.stdin.fileno()), "r", encoding="utf-8")
writer = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
for line in reader:
    request = json.loads(line)
    writer.write(json.dumps({"id": request["id"], "pid": os.getpid()}) + "\\n")
"""


# -- host-side hooks ---------------------------------------------------------------------------


class Hooks:
    """Timestamps from timers wrapped around sandbox internals from outside; each is optional."""

    def __init__(self) -> None:
        self.events: list[tuple[str, float, Any]] = []
        self.installed: list[str] = []

    def install(self) -> None:
        runner = sys.modules.get("evosearch.sandbox.runner")
        worker_cls = getattr(runner, "Worker", None)
        if worker_cls is None:
            return
        if callable(getattr(worker_cls, "run", None)):
            original_run = worker_cls.run

            @functools.wraps(original_run)
            def run(worker: Any, *args: Any, **kwargs: Any) -> Any:
                self.events.append(("request", time.monotonic(), None))  # run() writes the request first
                return original_run(worker, *args, **kwargs)

            worker_cls.run = run
            self.installed.append("Worker.run")
        if callable(getattr(worker_cls, "_read", None)):
            original_read = worker_cls._read

            @functools.wraps(original_read)
            def read(worker: Any, *args: Any, **kwargs: Any) -> Any:
                reply = original_read(worker, *args, **kwargs)
                self.events.append(("reply", time.monotonic(), reply))
                return reply

            worker_cls._read = read
            self.installed.append("Worker._read")

    def first(self, kind: str, key: str | None = None) -> float | None:
        for name, t, reply in self.events:
            if name == kind and (key is None or (isinstance(reply, dict) and key in reply)):
                return t
        return None


def worker_pids() -> list[int]:
    """The sandbox workers among this process's descendants (found in /proc, so no runner internals).

    A worker may sit below a launcher (``sh`` joining cgroups, ``bwrap``) whose command line names
    it too, so only interpreter processes count.
    """
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                children.setdefault(int(stat[stat.rindex(")") + 2:].split()[1]), []).append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    found, todo = [], list(children.get(os.getpid(), []))
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"evosearch.sandbox.worker" in argv and os.path.basename(argv[0]).startswith(b"python"):
            found.append(pid)
    return found


def proc_counters(pid: int) -> tuple[int, int] | None:
    """(utime + stime in clock ticks, usually 10 ms; minor page faults) of ``pid``, or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()
        return int(fields[11]) + int(fields[12]), int(fields[7])
    except (OSError, ValueError, IndexError):
        return None


def memory_mb(pid: int) -> dict[str, float]:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    status = dict(line.split(":", 1) for line in lines if ":" in line)
    return {key: int(status[key].split()[0]) / 1024 for key in ("VmRSS", "VmSize") if key in status}


# -- measurements --------------------------------------------------------------------------------


def probe_source() -> str:
    return PROBE_HEAD + RULE_PATH.read_text(encoding="utf-8")


def parse_marks(text: str) -> dict[str, Any]:
    """The candidate's own lines in a job's output."""
    found: dict[str, Any] = {}
    for line in text.splitlines():
        head, _, rest = line.partition(" ")
        if head == MARK:
            t, cpu = rest.split()
            found["t_candidate"], found["candidate_cpu_s"] = float(t), float(cpu)
        elif head == f"{MARK}_RUSAGE":
            found["rusage"] = json.loads(rest)
        elif head == f"{MARK}_FRESH":
            t_first, t_imported = rest.split()
            found["t_first"], found["t_imported"] = float(t_first), float(t_imported)
    if "t_candidate" not in found:
        raise RuntimeError(f"the candidate's timestamp is not in the job's output:\n{text[-2000:]}")
    return found


def warm_job(source: str, hooks: Hooks) -> dict[str, Any]:
    """One job through the sandbox: latency and the timestamps around it."""
    hooks.events.clear()
    t_submit = time.monotonic()
    outcome = run_job(ProbeJob(source=source), Limits(wall_s=60))
    t_returned = time.monotonic()
    if outcome.status != "ok":
        raise RuntimeError(f"the probe job failed: {outcome.status} {outcome.error}\n{outcome.output_tail[-2000:]}")
    marks = parse_marks(outcome.output_tail)
    t_cand, child_cpu = marks["t_candidate"], marks["candidate_cpu_s"]
    row: dict[str, Any] = {"latency_s": t_cand - t_submit, "job_wall_s": t_returned - t_submit,
                           "child_cpu_s": child_cpu, "rusage": marks.get("rusage", {})}
    t_request, t_started = hooks.first("request"), hooks.first("reply", "pid")
    t_ready = hooks.first("reply", "ready")
    if t_ready is not None:
        row["worker_ready_s"] = t_ready - t_submit
    if t_request is not None:
        row["host_prep_s"] = t_request - t_submit
        row["to_child_s"] = (t_cand - child_cpu) - t_request  # pipe, worker parses, fork (parent side)
        if t_started is not None:
            row["started_reply_s"] = t_started - t_request
    return row


def fresh_job(source: str) -> dict[str, Any]:
    env = {**os.environ, **FRESH_ENV, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                                                     os.environ.get("PYTHONPATH")]))}
    t_submit = time.monotonic()
    done = subprocess.run([sys.executable, "-c", FRESH_SCRIPT, source], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)
    t_returned = time.monotonic()
    if done.returncode != 0:
        raise RuntimeError(f"the fresh interpreter failed ({done.returncode}):\n{done.stderr[-2000:]}")
    marks = parse_marks(done.stdout)
    return {"latency_s": marks["t_candidate"] - t_submit, "process_wall_s": t_returned - t_submit,
            "startup_s": marks["t_first"] - t_submit, "imports_s": marks["t_imported"] - marks["t_first"],
            "load_rule_s": marks["t_candidate"] - marks["t_imported"], "cpu_s": marks["candidate_cpu_s"]}


def fork_only(reps: int) -> dict[str, Any]:
    """fork() alone, in a process with the worker's imports."""
    env = {**os.environ, **FRESH_ENV, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                                                     os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", FORK_SCRIPT, str(reps)], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"the fork measurement failed ({done.returncode}):\n{done.stderr[-2000:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    rows = data.pop("rows")
    data["stats"] = {key: summary([r[key] for r in rows]) for key in rows[0]}
    return data


def pipe_round_trip(reps: int, source: str) -> dict[str, float]:
    """A request-sized JSON line to an idle Python process that parses it and answers, as the worker does."""
    request = {"id": 0, "job": "probe", "payload": {"source": source}, "scratch": "/tmp/evosearch-probe-xxxxxxxx",
               "limits": Limits(wall_s=60).for_worker() if hasattr(Limits, "for_worker") else {}}
    echo = subprocess.Popen([sys.executable, "-c", ECHO_SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            bufsize=0)
    fd, times = echo.stdout.fileno(), []
    try:
        for i in range(reps + 1):  # the first wakes a process that just started
            time.sleep(IDLE_S)
            request["id"] = i
            line = (json.dumps(request) + "\n").encode()
            t0 = time.monotonic()
            echo.stdin.write(line)
            buffer = b""
            while b"\n" not in buffer:
                if not select.select([fd], [], [], 30.0)[0]:
                    raise RuntimeError("the echo process did not answer")
                buffer += os.read(fd, 65536)
            times.append(time.monotonic() - t0)
    finally:
        echo.stdin.close()
        echo.wait(10)
    return summary(times[1:])


def summary(values: list[float]) -> dict[str, float]:
    s = sorted(values)  # p90 by nearest rank: the smallest value with at least 90% of them at or below it
    return {"median": statistics.median(s), "p90": s[math.ceil(0.9 * len(s)) - 1], "mean": statistics.fmean(s),
            "min": s[0], "max": s[-1], "n": len(s)}


# -- report ------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = cpu_model()
    try:
        torch_version = metadata.version("torch")  # not imported here: the host stays as light as a campaign's
    except metadata.PackageNotFoundError:
        torch_version = "not installed"
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": f"{platform.system()} {platform.release()}",
            "torch": torch_version, "python": platform.python_version(),
            "loadavg_1m_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}


def ms(x: float | None, spec: str = "8.2f") -> str:
    return "n/a".rjust(int(spec.split(".")[0])) if x is None or not math.isfinite(x) else format(1000 * x, spec)


def column(rows: list[dict], key: str) -> list[float] | None:
    values = [r[key] for r in rows if key in r]
    return values if len(values) == len(rows) and values else None


def print_breakdown(title: str, parts: list[tuple[str, str, list[float] | None]], total: list[float]) -> dict:
    """One row per (JSON key, label, samples) part, then the total; returns the parts' summaries by key."""
    print(f"\n   {title:<58}{'median ms':>10}{'mean ms':>10}{'p90 ms':>10}")
    out = {}
    for key, label, values in parts:
        if values is None:
            continue
        s = summary(values)
        out[key] = s
        print(f"   {label:<58}{ms(s['median'], '10.2f')}{ms(s['mean'], '10.2f')}{ms(s['p90'], '10.2f')}")
    s = summary(total)
    print(f"   {'= submission -> candidate code':<58}{ms(s['median'], '10.2f')}{ms(s['mean'], '10.2f')}"
          f"{ms(s['p90'], '10.2f')}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=30, help="timed warm (forked) jobs after one warm-up (default 30)")
    parser.add_argument("--fresh-reps", type=int, default=5, help="fresh-interpreter jobs (default 5)")
    parser.add_argument("--fork-reps", type=int, default=30,
                        help="bare forks of a process with the worker's imports, for the breakdown (0 skips them)")
    parser.add_argument("--json", nargs="?", const="-", default=None, metavar="PATH",
                        help="also write the figures as one JSON object to PATH (stdout without PATH)")
    args = parser.parse_args(argv)
    if args.reps < 1 or args.fresh_reps < 1:
        parser.error("--reps and --fresh-reps must be at least 1")

    started = time.perf_counter()
    info = machine()
    mode = sandbox.current_mode().name
    mode_text = sandbox.current_mode().summary()
    load = info["loadavg_1m_at_start"]
    print(f"machine: {info['cpu']} | {info['cores']} cores | {info['platform']} | torch {info['torch']} | "
          f"python {info['python']} | load avg {load if load is not None else float('nan'):.2f}")
    print(f"sandbox mode: {mode_text}")
    print(f"candidate: {RULE_PATH.relative_to(ROOT)} with a first statement that prints time.monotonic(); "
          f"probe jobs, Limits(wall_s=60)", flush=True)

    hooks = Hooks()
    hooks.install()
    source = probe_source()

    print("starting the warm worker (first job) ...", flush=True)
    first = warm_job(source, hooks)
    workers = worker_pids()
    worker_memory = memory_mb(workers[0]) if len(workers) == 1 else {}

    print(f"timing {args.reps} warm jobs ...", flush=True)
    before = proc_counters(workers[0]) if len(workers) == 1 else None
    warm = [warm_job(source, hooks) for _ in range(args.reps)]
    after = proc_counters(workers[0]) if len(workers) == 1 else None
    worker_per_job = None
    if before is not None and after is not None:
        worker_per_job = {"cpu_s": (after[0] - before[0]) / os.sysconf("SC_CLK_TCK") / args.reps,
                          "minflt": (after[1] - before[1]) / args.reps}

    print(f"timing {args.fresh_reps} fresh interpreters ...", flush=True)
    fresh = [fresh_job(source) for _ in range(args.fresh_reps)]
    fork = None
    if args.fork_reps > 0:
        print(f"timing {args.fork_reps} bare forks of a process with the worker's imports ...", flush=True)
        fork = fork_only(args.fork_reps)
        fork["pipe_round_trip_s"] = pipe_round_trip(args.fork_reps, source)

    warm_lat = summary([r["latency_s"] for r in warm])
    fresh_lat = summary([r["latency_s"] for r in fresh])
    ratio = fresh_lat["median"] / warm_lat["median"]
    met = ratio >= TARGET

    print("\nsubmission -> candidate code running")
    head = f"   {'path':<44}{'median ms':>11}{'p90 ms':>10}{'min ms':>10}{'max ms':>10}{'n':>5}"
    print(head)
    print("   " + "-" * (len(head) - 3))
    for label, s in ((f"warm: fork from the worker ({mode})", warm_lat),
                     ("fresh interpreter per job (reference)", fresh_lat)):
        print(f"   {label:<44}{ms(s['median'], '11.2f')}{ms(s['p90'], '10.2f')}{ms(s['min'], '10.2f')}"
              f"{ms(s['max'], '10.2f')}{s['n']:>5}")
    startup = first.get("worker_ready_s")
    print(f"   worker start-up (paid once per slot): first job's latency {ms(first['latency_s'], '.0f')} ms"
          + (f", of which starting the worker until it is ready {ms(startup, '.0f')} ms" if startup else ""))
    print(f"\n   ratio fresh / warm (medians): {ratio:.1f}x; target >= {TARGET:g}x: {'MET' if met else 'NOT MET'}")

    warm_parts = [
        ("host_prep_s", "host: submission -> request on the worker's pipe", column(warm, "host_prep_s")),
        ("to_child_s", "pipe -> worker parses -> fork() until the child exists (*)", column(warm, "to_child_s")),
        ("child_cpu_s", "child: its CPU time until the candidate's 1st statement", column(warm, "child_cpu_s")),
    ]
    if warm_parts[0][2] is None:
        warm_parts = [("to_child_s", "submission -> child exists (*)",
                       [r["latency_s"] - r["child_cpu_s"] for r in warm]),
                      warm_parts[2]]
    warm_breakdown = print_breakdown("warm path, where the time goes", warm_parts, [r["latency_s"] for r in warm])
    started_reply = column(warm, "started_reply_s")
    if started_reply is not None:
        label = '(cross-check) request -> host reads the "started" reply'
        s = summary(started_reply)
        print(f"   {label:<58}{ms(s['median'], '10.2f')}{ms(s['mean'], '10.2f')}{ms(s['p90'], '10.2f')}")
    rus = [r["rusage"] for r in warm if r.get("rusage")]
    if rus:
        print(f"   child at its 1st statement: {statistics.median(r['minflt'] for r in rus):,.0f} minor page faults "
              f"(copy-on-write), {statistics.median(r['majflt'] for r in rus):.0f} major, "
              f"{statistics.median(r['nvcsw'] for r in rus):.0f} voluntary / "
              f"{statistics.median(r['nivcsw'] for r in rus):.0f} involuntary context switches (medians)")
    if worker_per_job is not None:
        print(f"   worker per job (read, parse, fork, reply, wait4), from /proc over {args.reps} jobs: "
              f"{1000 * worker_per_job['cpu_s']:.1f} ms CPU (10 ms ticks), {worker_per_job['minflt']:,.0f} minor "
              f"faults; worker RSS {worker_memory.get('VmRSS', math.nan):.0f} MB, "
              f"address space {worker_memory.get('VmSize', math.nan):,.0f} MB")
    if fork is not None:
        st = fork["stats"]
        print(f"   bare fork() of a process with the worker's imports (RSS {fork['vm_rss_mb']:.0f} MB), medians of "
              f"{st['reaped_s']['n']}: fork() returns in the parent after "
              f"{ms(st['fork_parent_s']['median'], '.2f')} ms; the child exists (*) after "
              f"{ms(st['child_exists_s']['median'], '.2f')} ms and runs its 1st Python "
              f"statement after {ms(st['child_first_s']['median'], '.2f')} ms, having used "
              f"{ms(st['child_cpu_s']['median'], '.2f')} ms CPU and {st['child_minflt']['median']:,.0f} minor faults; "
              f"reaped after {ms(st['reaped_s']['median'], '.2f')} ms; {fork['parent_minflt_per_fork']:,.0f} minor "
              f"faults in the parent per fork")
        rtt = fork["pipe_round_trip_s"]["median"]
        print(f"   pipe round trip to an idle Python process that parses a request-sized JSON line and answers (the "
              f"worker's loop without the fork), after {1000 * IDLE_S:g} ms idle: {ms(rtt, '.2f')} ms (median of "
              f"{fork['pipe_round_trip_s']['n']})")
        to_child = column(warm, "to_child_s")
        if to_child is not None:
            rest = statistics.median(to_child) - st["child_exists_s"]["median"]
            print(f"   so of the warm path's 'pipe -> ... child exists' {ms(statistics.median(to_child), '.2f')} ms, "
                  f"a bare fork accounts for ~{ms(st['child_exists_s']['median'], '.2f')} ms; the other "
                  f"~{ms(rest, '.2f')} ms is the pipe and parse (~{ms(rtt, '.2f')} ms above) and the worker's own fork"
                  f"\n   costing more than the bare one (compare the minor faults); differences of medians")
    print("   (*) the child's start is estimated as its 1st-statement time minus its CPU time so far: an upper "
          "bound for\n       this row, as any time the child spent waiting for a CPU is counted here.")
    if not hooks.installed:
        print("   (runner.Worker internals not found: host-side split unavailable)")

    fresh_breakdown = print_breakdown("fresh path, where the time goes", [
        ("startup_s", "exec + interpreter start-up until its 1st statement", [r["startup_s"] for r in fresh]),
        ("imports_s", "from evosearch.evaluate import jobs (torch, EnvPool, harness)", [r["imports_s"] for r in fresh]),
        ("load_rule_s", "import rule, load_rule: compile + exec to the 1st statement",
         [r["load_rule_s"] for r in fresh]),
    ], [r["latency_s"] for r in fresh])
    job_wall = summary([r["job_wall_s"] for r in warm])
    fresh_wall = summary([r["process_wall_s"] for r in fresh])
    print(f"\n   for scale: a whole warm probe job (submission -> run_job returns) takes "
          f"{ms(job_wall['median'], '.0f')} ms (median); a fresh reference process ran "
          f"{ms(fresh_wall['median'], '.0f')} ms until it exited after load_rule, without the probe.")
    total = time.perf_counter() - started
    print(f"\nTotal {total:.0f} s.")

    if args.json is not None:
        payload = {
            "machine": info, "sandbox_mode": mode, "sandbox_mode_summary": mode_text, "target_ratio": TARGET,
            "ratio_fresh_over_warm": ratio,
            "target_met": met, "total_s": total, "hooks": hooks.installed,
            "warm": {"latency_s": warm_lat, "breakdown_s": warm_breakdown, "rows": warm,
                     "worker_startup": first, "worker_per_job": worker_per_job,
                     "worker_memory_mb": worker_memory, "job_wall_s": job_wall},
            "fresh": {"latency_s": fresh_lat, "breakdown_s": fresh_breakdown, "rows": fresh},
            "bare_fork": fork,
        }
        text = json.dumps(no_nan(payload), allow_nan=False)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
            print(f"wrote {args.json}")
    return 0




if __name__ == "__main__":
    raise SystemExit(main())
