"""GPU jobs in the sandbox, tested where no GPU is: the limits and layers a CUDA job needs, the mode
chosen for GPU jobs (with real jobs in every mode), and the layer-by-layer diagnosis."""

from __future__ import annotations

import os
import stat
import sys

import pytest

from evosearch.sandbox import Limits, gpu, modes, namespaces, run_job
from evosearch.sandbox.selfcheck import GpuCheck

LINUX_ROOT = sys.platform.startswith("linux") and os.geteuid() == 0


def available_modes() -> list[str]:
    """The modes that run on this machine, strongest first."""
    names = []
    for name in modes.MODES:
        try:
            modes.detect(name)
        except modes.SandboxUnavailable:
            continue
        names.append(name)
    return names


@pytest.fixture(autouse=True)
def fresh_verdicts():
    gpu.forget()
    before = modes.requested_mode()
    yield
    gpu.forget()
    from evosearch.sandbox import configure

    configure(before)


@pytest.mark.parametrize("mode", available_modes())
def test_a_gpu_job_starts_in_every_mode_with_the_gpu_limits(mode):
    """The check job with ``Limits(gpu=True)`` (device groups, thread room, no address-space limit) runs in
    each mode; on the CPU it starts torch on the CPU, which proves the path, not CUDA."""
    why, found = gpu.job_check(modes.detect(mode), "cpu")
    assert why is None and found["device"] == "cpu" and found["finite"] is True, why


def test_no_mode_can_start_cuda_on_a_cpu_build_and_the_error_names_each_mode():
    with pytest.raises(modes.SandboxUnavailable) as refused:
        gpu.sandbox_for_gpu("cuda", "auto")
    message = str(refused.value)
    assert "CUDA does not start on cuda inside any sandbox mode" in message and "--device cpu" in message
    for mode in available_modes():
        assert f"in {mode}:" in message
    assert modes.requested_mode() == "auto"  # the mode in force is left as it was asked for


def fake_check(broken: set[str]):
    tried = []

    def check(mode, device):
        tried.append(mode.name)
        return (f"CUDA error 304 in {mode.name}", {}) if mode.name in broken else (None, {"name": "H200"})
    return check, tried


@pytest.mark.skipif(len(available_modes()) < 2, reason="needs two sandbox modes on this machine")
def test_auto_falls_back_to_the_strongest_mode_where_cuda_starts_and_says_so_loudly():
    strongest, second = available_modes()[:2]
    check, tried = fake_check({strongest})
    warnings: list[str] = []
    verdict = gpu.sandbox_for_gpu("cuda:0", "auto", check=check, warn=warnings.append)
    assert verdict.mode.name == second and verdict.fell_back and tried == [strongest, second]
    assert len(warnings) == 1 and f"in {strongest}: CUDA error 304" in warnings[0]
    assert f"GPU jobs run in sandbox mode {second}" in warnings[0] and "evosearch doctor --gpu" in warnings[0]
    assert modes.current().name == second
    # Decided once: a second evaluator asks again and starts nothing, and a mode switched meanwhile is put back.
    from evosearch.sandbox import configure

    configure(strongest)
    assert gpu.sandbox_for_gpu("cuda:0", "auto", check=check).mode.name == second and tried == [strongest, second]
    assert modes.current().name == second


def test_an_explicit_mode_where_cuda_does_not_start_is_refused_not_weakened():
    mode = available_modes()[0]
    check, tried = fake_check({mode})
    with pytest.raises(modes.SandboxUnavailable) as refused:
        gpu.sandbox_for_gpu("cuda", mode, check=check)
    assert tried == [mode]
    assert f"inside sandbox mode {mode}" in str(refused.value) and "--sandbox auto falls back" in str(refused.value)


def test_a_weak_fallback_is_called_weak():
    check, _ = fake_check(set(modes.MODES) - {"rlimits"})
    verdict = gpu.sandbox_for_gpu("cuda", "auto", check=check)
    assert verdict.mode.name == "rlimits"
    if len(available_modes()) > 1:
        assert "WEAK" in verdict.warning()


# -- device nodes, groups and mounts -----------------------------------------------------------------


def node(tmp_path, name: str, mode: int) -> str:
    path = tmp_path / name
    path.write_text("")
    path.chmod(mode)
    return str(path)


def test_device_groups_are_only_those_that_open_group_only_nodes(tmp_path):
    everyone = node(tmp_path, "nvidiactl", 0o666)
    group_only = node(tmp_path, "nvidia0", 0o660)
    os.chown(group_only, -1, 44) if LINUX_ROOT else None
    root_only = node(tmp_path, "nvidia1", 0o600)
    assert gpu.device_groups([everyone]) == []
    assert gpu.device_groups([everyone, group_only, root_only]) == [os.stat(group_only).st_gid]


def test_obstacles_name_root_only_nodes_for_a_mode_that_drops_the_uid(tmp_path):
    root_only = node(tmp_path, "nvidia0", 0o600)
    uvm = node(tmp_path, "nvidia-uvm", 0o666)
    found = gpu.obstacles(drops_uid=True, nodes=[root_only, uvm])
    assert len(found) == 1 and "may be opened by root only" in found[0] and "chmod 660" in found[0]
    assert gpu.obstacles(drops_uid=False, nodes=[root_only, uvm]) == []
    assert stat.filemode(os.stat(root_only).st_mode) in found[0]


def test_a_read_only_remount_keeps_each_mounts_flags_and_never_adds_nodev():
    base = namespaces.MS_REMOUNT | namespaces.MS_BIND | namespaces.MS_RDONLY
    assert namespaces.remount_read_only_flags("rw,nosuid,relatime") == base | namespaces.MS_NOSUID | \
        namespaces.MS_RELATIME  # /dev: its device nodes must stay usable
    assert namespaces.remount_read_only_flags("rw,nosuid,nodev,noexec,relatime") & namespaces.MS_NODEV


@pytest.mark.skipif(not LINUX_ROOT, reason="mount namespaces need root")
def test_the_remount_fallback_leaves_device_nodes_usable():
    """Where mount_setattr is refused, each mount is remounted read-only: /dev/null must still open."""

    class NoMountSetattr:
        def __getattr__(self, name):
            return getattr(real, name)

        @staticmethod
        def syscall(*args):
            return -1

    real = namespaces._libc

    def confined() -> None:
        namespaces.unshare(namespaces.CLONE_NEWNS)
        namespaces.mount(None, "/", None, namespaces.MS_REC | namespaces.MS_PRIVATE)
        namespaces._libc = NoMountSetattr()
        namespaces._read_only_everywhere()
        with open(os.devnull, "w") as f:  # a device node on the remounted /dev
            f.write("x")
        try:
            open("/evosearch-should-be-read-only", "w").close()
        except OSError:
            return
        os.unlink("/evosearch-should-be-read-only")
        raise AssertionError("the root stayed writable")

    assert gpu._in_child(confined, timeout_s=60) is None


# -- the diagnosis: which layer of namespaces mode stops CUDA ------------------------------------------


@pytest.mark.skipif(not LINUX_ROOT, reason="the namespaces mode's layers need root")
def test_diagnosis_names_the_first_layer_after_which_the_start_fails(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    os.chown(scratch, 65534, 65534)

    def start_needing_root(device: str) -> None:  # what root-only device nodes do to CUDA
        if os.getuid() != 0:
            raise RuntimeError("CUDA error: OS call failed or operation not supported on this OS")

    steps = gpu.namespace_steps(str(scratch), uid=65534)
    diagnosis = gpu.diagnose("cuda", steps, start=start_needing_root, timeout_s=60)
    assert diagnosis.culprit == "unprivileged uid", diagnosis.results
    assert [name for name, _ in diagnosis.results][:2] == ["none (unconfined child)",
                                                          "mount, network, IPC and UTS namespaces"]
    assert "stops starting at the layer 'unprivileged uid': RuntimeError: CUDA error" in diagnosis.describe()

    everything = gpu.diagnose("cuda", steps, start=lambda device: None, timeout_s=60)
    assert everything.culprit is None and len(everything.results) == len(steps) + 1
    assert everything.describe() == "CUDA starts after every layer of namespaces mode"


def test_diagnosis_of_a_start_that_fails_unconfined_blames_no_layer():
    def broken(device: str) -> None:
        raise RuntimeError("no driver")

    diagnosis = gpu.diagnose("cuda", [], start=broken, timeout_s=60)
    assert diagnosis.describe() == "CUDA does not start even without the sandbox: RuntimeError: no driver"


def test_the_gpu_check_job_reports_a_cuda_that_will_not_start():
    job = run_job(GpuCheck(device="cuda"), Limits(wall_s=60, gpu=True))
    assert job.status == "error" and "CUDA" in job.error["message"]
