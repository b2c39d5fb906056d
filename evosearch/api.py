"""The Python API: evaluate a program file, run a campaign, open an archive.

For people who script experiments (sweeps, notebooks, their own analysis) instead of calling
the CLI. It is the CLI's work without the CLI's printing: the same configs (frozen dataclasses,
checked as a config file is), the same evaluators and campaign loop, and the result objects the
CLI itself prints (:class:`~evosearch.evaluate.EvalResult`, :class:`~evosearch.campaign.RunSummary`,
:class:`~evosearch.archive.Archive`). Options are keyword-only, so a call reads as its settings.
Bad settings raise: ``ValueError`` (a suite, kind or device that does not fit),
:class:`~evosearch.config.ConfigError` (every bad config key at once).

Candidate programs run in the sandbox exactly as from the CLI; unlike the CLI, nothing warns on
stderr in a weak sandbox mode: ``result.sandbox`` names the mode each evaluation ran under.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evosearch.archive import Archive
    from evosearch.campaign import Progress, RunSummary
    from evosearch.config import CampaignConfig
    from evosearch.evaluate import CascadeConfig, EvalResult


def evaluate_file(path: str | Path, *, suite: str | Path | None = None,
                  config: CascadeConfig | None = None) -> EvalResult:
    """Score the program in ``path`` on a suite, as ``evosearch eval PATH --json`` does.

    ``suite`` is a suite name (``classic-quick``) or a suite YAML path; it overrides
    ``config.suite``. Without either, the program's kind picks its default suite (rules:
    ``classic-quick``, policies: ``policies``). ``config`` holds the cascade's other settings
    (seeds, hurdle, fitness, timeouts, device): ``CascadeConfig(seeds=2, hurdle=False)``.
    A program that fails is a result with its outcome and error, never an exception.
    """
    from evosearch import kinds
    from evosearch.envs.suites import load_suite
    from evosearch.evaluate import CascadeConfig
    from evosearch.program import Program

    path = Path(path)
    source = path.read_text(encoding="utf-8")
    kind = kinds.detect(source)
    config = config or CascadeConfig(suite=kind.default_suite)
    config = dataclasses.replace(config, suite=str(suite) if suite is not None else config.suite)
    loaded = load_suite(config.suite)
    if loaded.kind != kind.name:
        raise ValueError(f"{path.name} is a {kind.name} program but suite {loaded.name!r} scores "
                         f"{loaded.kind} programs")
    evaluator = kind.evaluator(config, loaded)
    return evaluator.evaluate(Program(source=source, kind=kind.name, name=str(path)))


def run_campaign(config: CampaignConfig | Mapping[str, Any] | str | Path, *, db: str | Path | None = None,
                 max_evals: int | None = None, minutes: float | None = None,
                 on_progress: Callable[[Progress], None] | None = None) -> RunSummary:
    """Start the campaign ``config`` describes, or resume it, as ``evosearch run CONFIG`` does.

    ``config`` is a :class:`~evosearch.config.CampaignConfig`, a mapping with a config file's
    keys, or the path of a config file; it is checked the same way in each case. Relative seed
    paths start at the config file's directory, else the current one. ``db`` overrides the
    config's database, ``max_evals`` and ``minutes`` its budget for this run. ``on_progress`` is
    called with a :class:`~evosearch.campaign.Progress` snapshot as the campaign moves.
    Raises :class:`~evosearch.campaign.BudgetReached` if the budget is already spent.
    """
    from evosearch.campaign import Campaign
    from evosearch.config import config_from_dict, load_config

    if isinstance(config, str | Path):
        config = load_config(config)
    elif isinstance(config, Mapping):
        config = config_from_dict(dict(config))
    else:  # built in Python, where types are hints only: checked as the same keys in a file are
        config = config_from_dict(json.loads(json.dumps(config.to_dict())))
    campaign = Campaign(config, db_path=db)
    try:
        return campaign.run(max_evals=max_evals, minutes=minutes, on_progress=on_progress)
    finally:
        campaign.close()


def open_archive(path: str | Path, *, readonly: bool = True) -> Archive:
    """The archive database at ``path``, for reading a campaign's programs and results.

    Read-only by default, like the browsing commands: a wrong path is refused, never turned
    into an archive. Close it when done (``archive.close()`` or ``contextlib.closing``).
    """
    from evosearch.archive import Archive

    if readonly and not Path(path).is_file():
        raise FileNotFoundError(f"no archive database at {path}")
    return Archive(path, readonly=readonly)
