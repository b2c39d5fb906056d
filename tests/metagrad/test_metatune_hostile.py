"""A hostile rule under metatune is contained like any candidate: a clear outcome, the host unchanged.

Metatune differs from training in two ways an attacker who read the code would go for: the
rule runs in the tuning job's own process (there is no companion: second-order gradients do not
cross processes), so it can rewrite what the job reports; and one job's state file is the next
job's input. So each attack here targets one of those: a forged report (code where numbers
belong, or numbers chosen to be extreme), a state file that is a symlink to a host file, one
that unpickles code, one too large to carry. Each runs with the static check off (``import``
allowed), so the OS layers and the host's checks are what is tested, and must end in a
``MetatuneError`` or, for numbers that are merely chosen, in a child that is only numbers.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import ROOT, job_processes

from evosearch.metagrad.constants import lift
from evosearch.metagrad.run import MetatuneError, MetatuneSettings, metatune
from evosearch.metagrad.tuner import TunerConfig
from evosearch.train.harness import TrainConfig

A2C = (ROOT / "programs" / "rules" / "a2c.py").read_text()
TASK = TrainConfig(env_id="CartPole-v1", total_steps=2048, num_envs=2, num_steps=32)
SETTINGS = MetatuneSettings(meta_steps=2, steps_per_job=1, tuner=TunerConfig(population=2),
                            minimal_builtins=False)


def with_attack(attack: str) -> str:
    """A2C with ``attack`` run when the rule is loaded (inside the EVOLVE-BLOCK, so it is part of the program)."""
    return A2C.replace("# EVOLVE-BLOCK-START\n", "# EVOLVE-BLOCK-START\n" + attack.strip() + "\n", 1)


@pytest.fixture
def canary():
    """A file in $HOME the attacks aim at; it must keep its bytes."""
    path = Path.home() / f".evosearch-metatune-canary-{os.getpid()}-{secrets.token_hex(4)}"
    path.write_text("original\n")
    yield path
    path.unlink(missing_ok=True)


def run(source: str) -> object:
    return metatune(source, [TASK], SETTINGS)


def assert_host_clean(canary: Path) -> None:
    assert canary.read_text() == "original\n"
    assert job_processes() == [], "job processes left running"


def test_a_forged_report_with_code_for_numbers_is_refused(canary):
    source = with_attack("""
import json, os
def _forge(payload='__import__("os").system("touch /tmp/evosearch-pwned")'):
    with open('result.json', 'w') as f:
        json.dump({'status': 'ok', 'result': {'records': [{'values': [payload] * 3, 'gradient': [0] * 3,
                   'by_es': [False] * 3, 'returns': {}}]}}, f)
    os._exit(0)
_forge()
""")
    with pytest.raises(MetatuneError, match="malformed"):
        run(source)
    assert not Path("/tmp/evosearch-pwned").exists()
    assert_host_clean(canary)


def test_numbers_an_attacker_chooses_come_back_as_numbers_only(canary):
    # Valid records with extreme values: the child is the same program with those literals, no more.
    source = with_attack("""
import json, os
def _forge():
    # (no float literals here: they would be lifted as constants of this program too)
    big, tiny, seven = float('1e300'), -float('1e-300'), float(7)
    records = [{'step': 1, 'values': [big, tiny, seven], 'gradient': [0] * 3, 'by_es': [False] * 3,
                'returns': {'x' * 10_000: 1}, 'objective_gain': 0, 'seconds': 0}]
    with open('result.json', 'w') as f:
        json.dump({'status': 'ok', 'result': {'records': records}}, f)
    os._exit(0)
_forge()
""")
    result = metatune(source, [TASK], replace(SETTINGS, meta_steps=1))
    tuned = lift(result.child_source)
    assert [c.value for c in tuned.constants] == pytest.approx([1e300, -1e-300, 7.0])
    original_lines = set(source.splitlines())
    changed = [line for line in result.child_source.splitlines() if line not in original_lines]
    assert len(changed) == 3 and all(len(line) < 80 for line in changed)
    assert all(len(k) <= 100 for r in result.records for k in r["returns"])  # bounded, whatever it sent
    assert_host_clean(canary)


def test_a_state_file_that_links_to_a_host_file_is_not_carried(canary):
    # The rule replaces numpy.savez, so the job's state file becomes a symlink to the canary: the
    # next job would read (or write through) a host file if the host carried it over.
    source = with_attack(f"""
import os, numpy
def _link(path, **arrays):
    os.symlink({str(canary)!r}, path)
numpy.savez = _link
""")
    with pytest.raises(MetatuneError, match="state file was refused"):
        run(source)
    assert_host_clean(canary)


def test_a_state_file_that_would_unpickle_code_is_never_unpickled(canary, tmp_path):
    marker = tmp_path / "unpickled"
    source = with_attack(f"""
import numpy
_real = numpy.savez
class _Boom:
    def __reduce__(self):
        return (open, ({str(marker)!r}, 'w'))
def _evil(path, **arrays):
    arrays['theta'] = numpy.array([_Boom()], dtype=object)
    _real(path, **arrays)
numpy.savez = _evil
""")
    with pytest.raises(MetatuneError, match="allow_pickle"):
        run(source)
    assert not marker.exists()
    assert_host_clean(canary)


def test_a_state_file_too_large_to_carry_ends_the_run(canary):
    source = with_attack("""
import numpy
def _huge(path, **arrays):
    with open(path, 'wb') as f:
        for _ in range(100):
            f.write(b'0' * (1 << 20))
numpy.savez = _huge
""")
    with pytest.raises(MetatuneError) as err:
        run(source)
    assert err.value.outcome in ("killed", "candidate_error")  # the file-size limit, or the host's copy bound
    assert_host_clean(canary)


def test_writing_into_home_is_stopped(canary):
    source = with_attack(f"""
with open({str(canary)!r}, 'w') as f:
    f.write('pwned\\n')
""")
    with pytest.raises(MetatuneError):
        run(source)
    assert_host_clean(canary)
