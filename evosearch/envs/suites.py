"""Suites as data: YAML files beside this module, plus their measured calibration.

A suite's normalisation constants (random and PPO-clip returns under this very harness)
are measured by ``evosearch suite calibrate NAME`` and stored in ``NAME.calibration.json``
with the date and machine, so every score in an archive is comparable to the reference.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from evosearch.envs.backend import BackendError, resolve_backend

SUITE_DIR = Path(__file__).parent / "suites"


class SuiteError(ValueError):
    """A suite file is missing, malformed, or not calibrated."""


@dataclass(frozen=True)
class Task:
    env_id: str
    total_steps: int
    backend: str = "auto"  # env backend (evosearch.envs.backend): auto, native or envpool
    # R_ref to use where PPO-clip scores no better than random play (e.g. gymnasium's reward
    # threshold for MountainCar-v0); without one such a task cannot be calibrated.
    fallback_reference: float | None = None
    # Training settings for this task that differ from the harness's defaults (TrainConfig's
    # fields, e.g. num_envs and num_steps for MinAtar's longer budgets), as sorted (name, value) pairs.
    train: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True)
class Calibration:
    r_random: float
    r_ref: float


@dataclass(frozen=True)
class Suite:
    name: str
    tasks: tuple[Task, ...]
    held_out: tuple[Task, ...]
    hurdle: Task
    hurdle_seeds: int
    hurdle_threshold: float
    seeds: int
    eval_episodes: int
    description: str = ""
    kind: str = "rule"  # the program kind the suite scores: rule (trained) or policy (played)
    calibration: dict[str, Calibration] = field(default_factory=dict)
    calibration_info: dict = field(default_factory=dict)

    def calibrated(self, env_id: str) -> Calibration:
        if env_id not in self.calibration:
            raise SuiteError(
                f"suite {self.name!r} has no calibration for {env_id}: run `evosearch suite calibrate {self.name}`"
            )
        return self.calibration[env_id]


def available() -> list[str]:
    return sorted(p.stem for p in SUITE_DIR.glob("*.yaml"))


def calibration_path(name: str) -> Path:
    return SUITE_DIR / f"{name}.calibration.json"


def _task(raw: object, where: str) -> Task:
    if not isinstance(raw, dict) or "env_id" not in raw or "total_steps" not in raw:
        raise SuiteError(f"{where}: each task needs env_id and total_steps")
    env_id, backend = str(raw["env_id"]), str(raw.get("backend", "auto"))
    try:
        resolve_backend(env_id, backend)
    except BackendError as err:
        raise SuiteError(f"{where}: {err}") from err
    fallback = raw.get("fallback_reference")
    return Task(env_id=env_id, total_steps=int(raw["total_steps"]), backend=backend,
                fallback_reference=None if fallback is None else float(fallback),
                train=_train_settings(raw.get("train"), f"{where}: {env_id}"))


#: TrainConfig fields a task may set; the others (env_id, total_steps, backend) are the task's own keys.
TRAIN_SETTINGS = {"num_envs": int, "num_steps": int, "learning_rate": float, "anneal_lr": bool, "gamma": float,
                  "gae_lambda": float, "num_minibatches": int, "update_epochs": int, "max_grad_norm": float,
                  "hidden": int}


def _train_settings(raw: object, where: str) -> tuple[tuple[str, object], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise SuiteError(f"{where}: train must be a mapping of training settings")
    unknown = sorted(set(raw) - set(TRAIN_SETTINGS))
    if unknown:
        raise SuiteError(f"{where}: unknown training setting(s) {', '.join(map(str, unknown))}; "
                         f"known: {', '.join(TRAIN_SETTINGS)}")
    settings = []
    for name, value in sorted(raw.items()):
        kind = TRAIN_SETTINGS[name]
        if kind is bool and not isinstance(value, bool) or kind is not bool and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or kind is int and value != int(value)
                or value <= 0):
            raise SuiteError(f"{where}: train.{name} must be a positive {kind.__name__}, got {value!r}")
        settings.append((name, kind(value)))
    return tuple(settings)


def load_suite(name: str) -> Suite:
    """Load a suite by name (or from a path to a YAML file) with its calibration, if measured."""
    is_file = name.endswith((".yaml", ".yml"))
    path = Path(name) if is_file else SUITE_DIR / f"{name}.yaml"
    if is_file and not path.is_file():  # a path the user typed: what to fix is the file, not the name
        raise SuiteError(f"no suite file {name}: {'it is a directory' if path.exists() else 'it does not exist'}"
                         " (a suite is a shipped suite's name or the path of a YAML file)")
    if not path.exists():
        raise SuiteError(f"unknown suite {name!r}; available: {', '.join(available())}")
    raw = yaml.safe_load(path.read_text()) or {}
    where = str(path)
    tasks = tuple(_task(t, where) for t in raw.get("tasks") or [])
    if not tasks:
        raise SuiteError(f"{where}: a suite needs at least one task")
    hurdle_raw = raw.get("hurdle") or {"env_id": tasks[0].env_id, "total_steps": max(1, tasks[0].total_steps // 4)}
    calibration: dict[str, Calibration] = {}
    info: dict = {}
    for env_id, c in (raw.get("calibration") or {}).items():  # inline, for user and test suites
        calibration[env_id] = Calibration(r_random=float(c["r_random"]), r_ref=float(c["r_ref"]))
    cal_path = calibration_path(raw.get("name", path.stem))
    if not calibration and cal_path.exists():
        data = json.loads(cal_path.read_text())
        info = {k: v for k, v in data.items() if k != "tasks"}
        for env_id, c in data.get("tasks", {}).items():
            calibration[env_id] = Calibration(r_random=float(c["r_random"]), r_ref=float(c["r_ref"]))
    return Suite(
        name=str(raw.get("name", path.stem)),
        description=str(raw.get("description", "")),
        kind=str(raw.get("kind", "rule")),
        tasks=tasks,
        held_out=tuple(_task(t, where) for t in raw.get("held_out") or []),
        hurdle=_task(hurdle_raw, where),
        hurdle_seeds=int(hurdle_raw.get("seeds", 1)),
        hurdle_threshold=float(hurdle_raw.get("threshold", 0.0)),
        seeds=int(raw.get("seeds", 5)),
        eval_episodes=int(raw.get("eval_episodes", 10)),
        calibration=calibration,
        calibration_info=info,
    )
