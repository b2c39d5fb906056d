"""``evosearch doctor --ray-address ...``: the sandbox check on every node of a Ray cluster.

A campaign with the Ray executor sandboxes candidates on whichever node runs them, so each
node must give the mode the campaign asks for (bubblewrap, ideally). This runs the doctor's
report (mode, layers, live check, CUDA in a job) as one Ray task pinned to each alive node.
"""

from __future__ import annotations

from evosearch.executor import ExecutorError, import_ray
from evosearch.executor.ray_pool import connect

#: How long the whole round may take: each node runs one live-check job (seconds), more with a GPU check.
DOCTOR_TIMEOUT_S = 600.0


def node_report(requested: str | None, live: bool, check_gpu: bool) -> dict:
    """The doctor's report on the node this runs on; ``error`` instead where the mode asked for is missing."""
    from evosearch.cli.doctor import diagnose
    from evosearch.sandbox import SandboxUnavailable

    try:
        return diagnose(requested, live=live, check_gpu=check_gpu)
    except SandboxUnavailable as err:
        return {"error": str(err), "strong": False}


def doctor_on_nodes(address: str, *, requested: str | None = None, live: bool = True,
                    check_gpu: bool = False) -> list[dict]:
    """One doctor report per alive node of the cluster at ``address``, each with its node address and hostname."""
    ray = import_ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    owns = connect(ray, address)
    try:
        nodes = sorted((n for n in ray.nodes() if n.get("Alive")), key=lambda n: n["NodeManagerAddress"])
        task = ray.remote(num_cpus=0, max_retries=0)(node_report)
        refs = [task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                .remote(requested, live, check_gpu) for n in nodes]
        try:
            reports = ray.get(refs, timeout=DOCTOR_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError as err:
            raise ExecutorError(f"the doctor did not report from every node within {DOCTOR_TIMEOUT_S:g} s") from err
    finally:
        if owns:
            ray.shutdown()
    return [{"node": n["NodeManagerAddress"], "hostname": n["NodeManagerHostname"], **report}
            for n, report in zip(nodes, reports, strict=True)]
