"""`evosearch doctor`: the sandbox mode, its layers and a live check, as a table or JSON."""

import json
import subprocess
import sys


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evosearch.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_doctor_names_the_mode_and_every_layer_and_runs_a_live_check():
    proc = run_cli("doctor", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["mode"] in ("bubblewrap", "namespaces", "rlimits")
    assert {layer["name"] for layer in report["layers"]} >= {"seccomp", "bubblewrap", "cgroups", "rlimits"}
    live = report["live"]
    assert "OPENAI_API_KEY" not in live["environment variables"]
    from evosearch.sandbox.gpu import present

    assert (report["gpu"] is None) == (not present())  # CUDA is checked in a job whenever the machine has a GPU
    if report["strong"]:  # what a strong mode promises, seen from inside a real job
        for attempt in ("write the evosearch package", "fork a process", "open an internet socket",
                        "signal the worker", "open the worker's reply pipe"):
            assert live[attempt].startswith("blocked"), (attempt, live[attempt])


def test_doctor_has_no_csv():
    proc = run_cli("doctor", "--no-live", "--csv", timeout=60)
    assert proc.returncode == 2 and "no CSV output" in proc.stderr


def test_doctor_gpu_starts_cuda_in_a_job_and_says_why_not(tmp_path):
    """--gpu on a machine without one: the check job runs and reports the driver's refusal; no GPU row otherwise."""
    import os

    import torch

    if torch.cuda.is_available():
        import pytest

        pytest.skip("CUDA starts here: tests/train/test_gpu.py covers it")
    modes = ["namespaces"] if os.geteuid() == 0 and sys.platform.startswith("linux") else []
    for mode in [None, *modes]:
        proc = run_cli("doctor", "--gpu", "--json", *(["--sandbox", mode] if mode else []))
        assert proc.returncode == 0, proc.stderr
        report = json.loads(proc.stdout)["gpu"]
        assert report["starts"] is False and "this torch build has no CUDA" in report["error"], report
        if mode == "namespaces":  # the layer-by-layer diagnosis: nothing to blame on a layer here
            assert report["diagnosis"]["culprit"] == "none (unconfined child)"
            assert report["diagnosis"]["summary"].startswith("CUDA does not start even without the sandbox")
    table = run_cli("doctor", "--gpu")
    assert "GPU: CUDA does not start inside a sandboxed job" in " ".join(table.stdout.split())
