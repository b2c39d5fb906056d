"""``evosearch eval FILE``: score one program on a suite, as a table or one JSON object.

An evaluation takes minutes, so it shows its progress on stderr (``--json`` keeps stdout to
the one object): the stage, each task and its seeds as it starts and ends, in plain lines, and
on a terminal also a live line with the clock and what is running. The evaluators have no
progress hook and are not the CLI's to change; their stages are steps the CLI can observe
(``_smoke``, ``_train_and_score``, ``_play``), so :class:`EvalProgress` wraps those on the one
evaluator instance it was given. If an evaluator lacks one, that stage goes unreported: the
evaluation itself never depends on the display.
"""

from __future__ import annotations

import functools
import json
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import click

from evosearch import fmt
from evosearch.cli.options import device_option, output_options, warn_if_weak
from evosearch.cli.render import indented, labelled, markup, plain


def _print_eval_table(result, program_name: str) -> None:
    """The result for people; the error and the output tail are the candidate's text, shown safe."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if result.tasks:
        table = Table(title=plain(f"{program_name} on {result.suite}"))
        for col, justify in (("task", "left"), ("mean return", "right"), ("normalised", "right"),
                             ("95% CI", "right"), ("seeds", "right"), ("job s", "right")):
            table.add_column(col, justify=justify)
        rows = list(result.tasks.values()) + list(result.held_out.values())
        for t in rows:
            name = t.env_id + (" (held-out)" if t.env_id in result.held_out else "")
            table.add_row(plain(name), fmt.score(t.mean_return, 1), fmt.score(t.normalized_mean), fmt.ci(*t.ci),
                          str(len(t.returns)), fmt.duration(t.train_wall_s))
        console.print(table)
    style = "green" if result.ok else "red"
    console.print(f"outcome [bold {style}]{markup(result.outcome)}[/] at stage [bold]{markup(result.stage)}[/]"
                  f"   fingerprint {markup(result.fingerprint or '-')}   wall {fmt.duration(result.wall_s)}"
                  f"   cpu {fmt.duration(result.cpu_s)}   peak memory {result.peak_rss_mb:.0f} MiB")
    if result.score is not None:
        console.print(f"score ({result.fitness.upper()} of normalised returns over tasks x seeds): "
                      f"[bold]{fmt.score(result.score)}[/]  95% CI {fmt.ci(*result.ci)}"
                      f"   AUC {fmt.score(result.auc)}")
    confirmed = result.confirmed
    if confirmed.get("outcome") == "ok":
        gap = result.score - confirmed["score"]
        console.print(f"confirmed on {confirmed['seeds']} fresh seeds (from seed {confirmed['first_seed']}): "
                      f"[bold]{fmt.score(confirmed['score'])}[/]  95% CI {fmt.ci(*confirmed['ci'])}   "
                      f"search score minus confirmed: {fmt.score(gap)}")
        for env_id, task in confirmed["held_out"].items():
            console.print(f"  held-out {plain(env_id)}: {fmt.score(task['normalized_mean'])}  {fmt.ci(*task['ci'])}")
    elif confirmed:
        console.print(labelled("confirmation failed:", f"{confirmed.get('outcome')}: {confirmed.get('error', '')}"))
    if result.error:
        console.print(labelled("error:", result.error))
        _print_tail(console, result.output_tail)


def _print_tail(console, tail: str, limit: int = 1500) -> None:
    """The end of the job's traceback and output, indented under a heading: no line of it can pass for ours."""
    tail = tail.strip()
    if not tail:
        return
    cut = len(tail) > limit
    console.print(f"the job's traceback and output{' (last ' + str(limit) + ' characters)' if cut else ''}:",
                  style="dim", markup=False, highlight=False)
    console.print(indented(tail[-limit:]))


def _seeds(seeds: list[int] | int) -> str:
    """``seeds 0-9`` for a range, ``seed 3`` for one; a count stands for seeds 0..count-1."""
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"seeds {seeds[0]}-{seeds[-1]}"
    return "seeds " + ",".join(map(str, seeds))


class EvalProgress:
    """Context manager: reports an evaluator's stages and tasks on ``stream`` while it runs.

    Plain lines ``[H:MM:SS] stage: what`` as things start and end; on a terminal also a live
    line below them, redrawn with a carriage return four times a second. It uses ``\r`` and
    spaces only, never cursor escapes, so a terminal's output stays plain text (what
    ``tests/cli/test_cli_terminal_safety.py`` holds every command to). Tasks of a stage train
    in parallel threads, so every change is made under one lock.
    """

    def __init__(self, evaluator: Any, stream: IO[str] | None = None, live: bool | None = None) -> None:
        self.evaluator = evaluator
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.start = time.monotonic()
        self.stage = "static"
        # What runs now, for the live line: env_id -> "training CartPole-v1 (seeds 0-9)"
        self.running: dict[str, str] = {"static": "checking the source"}
        self._finished = False  # after the last line, nothing is drawn
        self._lock = threading.Lock()
        self._drawn = 0  # characters of the live line now on screen
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._wrapped: list[str] = []

    def __enter__(self) -> EvalProgress:
        self._wrap("_smoke", self._smoke)
        self._wrap("_train_and_score", self._train)
        self._wrap("_play", self._play)
        self.say("static", "checking the source")
        if self.live:
            self._ticker = threading.Thread(target=self._tick, name="eval-progress", daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        for name in self._wrapped:  # the instance attribute shadowed the class's method: uncover it
            delattr(self.evaluator, name)
        if self.live:  # leave the terminal as it was: the live line wiped, the cursor at its start
            with self._lock:
                self.stream.write("\r" + " " * self._drawn + "\r")
                self.stream.flush()
                self._drawn = 0

    def done(self, result: Any) -> None:
        """The last line: how the evaluation ended."""
        score = f", score {fmt.score(result.score)} {fmt.ci(*result.ci)}" if result.score is not None else ""
        with self._lock:
            self.running.clear()
            self._finished = True
        self.say("done", f"{result.outcome} at stage {result.stage}{score} in {fmt.duration(result.wall_s)}")

    def say(self, stage: str, what: str) -> None:
        """One plain line; on a terminal the live line is redrawn below it."""
        with self._lock:
            self.stage = stage
            self._write(f"[{fmt.clock(time.monotonic() - self.start)}] {stage}: {what}", end="\n")
            if self.live and not self._finished:
                self._write(self._live_line())

    # -- what is observed --------------------------------------------------------------------

    def _wrap(self, name: str, around: Any) -> None:
        method = getattr(self.evaluator, name, None)
        if method is None:
            return
        setattr(self.evaluator, name, functools.partial(around, method))
        self._wrapped.append(name)

    def _smoke(self, method: Any, *args: Any, **kwargs: Any) -> str:
        with self._lock:
            self.running = {"smoke": "probe job"}
        self.say("smoke", "probe job (runs the program once, takes its behavioural fingerprint)")
        try:
            fingerprint = method(*args, **kwargs)
        finally:
            with self._lock:
                self.running.pop("smoke", None)
        self.say("smoke", f"passed, fingerprint {fingerprint}")
        return fingerprint

    def _train(self, method: Any, program: Any, task: Any, seeds: list[int], stage: str, *args: Any,
               **kwargs: Any) -> Any:
        return self._task(stage, task.env_id, f"training {task.env_id} ({_seeds(seeds)})",
                          lambda: method(program, task, seeds, stage, *args, **kwargs))

    def _play(self, method: Any, program: Any, task: Any, *args: Any, **kwargs: Any) -> Any:
        seeds, episodes = getattr(self.evaluator, "seeds", 1), self.evaluator.suite.eval_episodes
        return self._task("full", task.env_id, f"playing {task.env_id} ({_seeds(seeds)}, {episodes} episodes each)",
                          lambda: method(program, task, *args, **kwargs))

    def _task(self, stage: str, env_id: str, doing: str, run: Any) -> Any:
        with self._lock:
            self.running.pop("static", None)
            self.running[env_id] = doing
        self.say(stage, doing)
        try:
            result = run()
        except BaseException:
            with self._lock:
                self.running.pop(env_id, None)
            self.say(stage, f"{env_id} failed")
            raise
        with self._lock:
            self.running.pop(env_id, None)
        normalised = getattr(result, "normalized_mean", None)  # a rule's TaskResult; a policy's job has none
        self.say(stage, f"{env_id} done" + (f", normalised score {fmt.score(normalised)}"
                                            if normalised is not None else ""))
        return result

    # -- the terminal's live line ------------------------------------------------------------

    def _live_line(self) -> str:
        now = ", ".join(self.running.values())  # empty only between two steps
        return f"[{fmt.clock(time.monotonic() - self.start)}] {self.stage}" + (f": {now}" if now else "") + " ..."

    def _tick(self) -> None:
        while not self._stop.wait(0.25):
            with self._lock:
                if not self._finished:
                    self._write(self._live_line())

    def _write(self, line: str, end: str = "") -> None:
        """``line`` then ``end``; on a terminal over the live line: ``\r``, the text, spaces over what was left.

        The live line (no ``end``) is cut to the terminal's width: one that wrapped could not be
        redrawn with a carriage return.
        """
        line = fmt.terminal_text(line)  # task names come from a suite file: shown, never obeyed
        if self.live:
            if not end:
                line = line[:max(20, shutil.get_terminal_size((100, 24)).columns - 1)]
            self.stream.write("\r" + line.ljust(self._drawn) + end)
            self._drawn = 0 if end else len(line)
        else:
            self.stream.write(line + end)
        self.stream.flush()


@click.command("eval")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--suite", default=None, help="Suite name or YAML path (default: classic-quick for a rule, "
              "policies for a policy).")
@click.option("--seeds", type=click.IntRange(1, 1024), default=None, help="Seeds per task (default: the suite's).")
@click.option("--workers", type=click.IntRange(1, 256), default=None, help="Parallel training jobs (default: cores).")
@click.option("--no-hurdle", is_flag=True, help="Skip the hurdle stage.")
@click.option("--held-out", is_flag=True, help="Also train and score the suite's held-out tasks (report only).")
@click.option("--confirm", is_flag=True, help="If it passes, evaluate it again on fresh seeds (twice as many) and "
              "the held-out tasks, and show that confirmed score beside the first (rules only).")
@click.option("--fitness", type=click.Choice(["iqm", "auc"]), default="iqm", show_default=True)
@click.option("--timeout", "timeout_s", type=float, default=600.0, show_default=True, help="Seconds per job.")
@click.option("--memory-mb", type=click.IntRange(700, 1 << 20), default=4096, show_default=True)
@device_option(default="auto", help="Where training runs; auto: the GPU for torch-native tasks if there is one.")
@output_options(formats=("table", "json"), json_help="one object: outcome, score, each task.")
def eval_command(file: Path, suite: str | None, seeds: int | None, workers: int | None, no_hurdle: bool, held_out: bool,
                 confirm: bool, fitness: str, timeout_s: float, memory_mb: int, device: str, output: str) -> None:
    """Score the program FILE on a suite: train agents with a rule (loss), or play a policy (act)."""
    from evosearch import kinds
    from evosearch.devices import DeviceError
    from evosearch.envs.suites import SuiteError, load_suite
    from evosearch.evaluate import CascadeConfig
    from evosearch.program import Program
    from evosearch.sandbox import SandboxUnavailable, current_mode

    try:
        source = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise click.UsageError(f"{file} is not UTF-8 text: {err}") from err
    kind = kinds.detect(source)
    suite = suite or kind.default_suite
    try:
        loaded = load_suite(suite)
    except SuiteError as err:
        raise click.UsageError(str(err)) from err
    cfg = CascadeConfig(suite=suite, seeds=seeds, hurdle=not no_hurdle, held_out=held_out, fitness=fitness,
                        task_timeout_s=timeout_s, memory_mb=memory_mb, device=device,
                        **({"workers": workers} if workers else {}))
    if loaded.kind != kind.name:
        raise click.UsageError(f"{file.name} is a {kind.name} program but suite {loaded.name!r} scores "
                               f"{loaded.kind}s")
    program = Program(source=source, kind=kind.name, name=str(file))
    try:
        evaluator = kind.evaluator(cfg, loaded)
    except (SuiteError, SandboxUnavailable, DeviceError) as err:
        raise click.UsageError(str(err)) from err
    warn_if_weak(current_mode())  # the evaluator chose the mode; say so before the candidate runs
    if confirm and not hasattr(evaluator, "confirm"):
        raise click.UsageError(f"--confirm is for rules; {file.name} is a {kind.name}")
    with EvalProgress(evaluator, sys.stderr) as progress:
        result = evaluator.evaluate(program)
        if confirm and result.ok:
            evaluator.confirm(program, result)
        progress.done(result)
    if output == "json":
        click.echo(json.dumps(result.to_dict(), allow_nan=False))
    else:
        _print_eval_table(result, file.name)
    sys.exit(0 if result.ok else 1)
