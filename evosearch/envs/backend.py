"""One tensor interface over the two environment backends: torch-native envs and EnvPool.

The trainer and the trusted scorer step environments through ``TensorEnv`` and never see
which backend runs underneath. Torch-native envs (``evosearch.envs.native``) keep the whole
loop on one torch device, CPU or CUDA, with no host round trip per step; EnvPool runs every
other task on CPU threads and its arrays are wrapped as tensors (and copied to the device
when training runs on a GPU). A suite task may name its backend; ``auto`` takes the native
one on a GPU, and on CPU where it is never slower than EnvPool (docs/evaluator.md has the
figures): not for Acrobot, whose RK4 step is ~130 tensor ops, 2.4x slower than EnvPool's at
128 envs on one core, unless EnvPool does not import here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from evosearch.envs.native import is_native, is_native_only, make_native
from evosearch.train.networks import Spec

BACKENDS = ("auto", "native", "envpool")
#: Native envs that ``auto`` also uses on CPU: with PPO-clip at 2-64 seeds on one core the harness
#: trains as fast or faster on them than on EnvPool (CartPole-v1 +23% at 64 seeds); Acrobot-v1 is
#: 45% slower native at 6 seeds, so it stays on EnvPool there.
NATIVE_ON_CPU = frozenset({"CartPole-v1", "MountainCar-v0", "Pendulum-v1"})


class BackendError(ValueError):
    """A task asked for a backend that cannot run it."""


@dataclass(frozen=True)
class Transition:
    """One step of all environments, as tensors on the env's device (leading dim ``num_envs``).

    ``obs`` is what the agent acts on next: after an episode ended, the next episode's first
    observation (native envs reset on the same step) or, for EnvPool, the final observation
    (EnvPool resets on the step after). ``final_obs`` is the observation the step produced
    before any reset, which a truncated episode bootstraps from. ``real`` is False where the
    transition must not be learned from (EnvPool's autoreset step); None means all are real.
    """

    obs: torch.Tensor
    reward: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    final_obs: torch.Tensor
    real: torch.Tensor | None


class TensorEnv(Protocol):
    """What the harness and the scorer need from a batch of environments."""

    env_id: str
    backend: str
    num_envs: int
    device: torch.device
    spec: Spec
    action_low: torch.Tensor | None
    action_high: torch.Tensor | None

    def reset(self) -> torch.Tensor: ...

    def step(self, actions: torch.Tensor) -> Transition: ...

    def close(self) -> None: ...


class NativeTensorEnv:
    """A torch-native env: everything stays on ``device``; every transition is real."""

    backend = "native"

    def __init__(self, env_id: str, num_envs: int, seed: int, device: torch.device) -> None:
        self._env = make_native(env_id, num_envs, seed, device=device)
        self.env_id, self.num_envs, self.device = env_id, num_envs, torch.device(device)
        self.spec = Spec(obs_dim=self._env.obs_dim, act_dim=self._env.act_dim, discrete=self._env.discrete,
                         obs_shape=self._env.obs_shape)
        self.action_low, self.action_high = self._env.action_low, self._env.action_high

    def reset(self) -> torch.Tensor:
        return self._env.reset()

    def step(self, actions: torch.Tensor) -> Transition:
        out = self._env.step(actions)
        return Transition(out.obs, out.reward, out.terminated, out.truncated, out.final_obs, None)

    def close(self) -> None:
        pass


class EnvPoolTensorEnv:
    """EnvPool on CPU threads, its arrays handed over as tensors on ``device``."""

    backend = "envpool"

    def __init__(self, env_id: str, num_envs: int, seed: int, device: torch.device) -> None:
        from evosearch.envs.vector import VectorEnv  # imports envpool, which native-only jobs skip

        self._env = VectorEnv(env_id, num_envs, seed)
        self.env_id, self.num_envs, self.device = env_id, num_envs, torch.device(device)
        self.spec = self._env.spec
        low, high = self._env.action_low, self._env.action_high
        self.action_low = None if low is None else torch.as_tensor(low, device=self.device)
        self.action_high = None if high is None else torch.as_tensor(high, device=self.device)

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array).to(self.device, non_blocking=True)

    def reset(self) -> torch.Tensor:
        return self._tensor(self._env.reset())

    def step(self, actions: torch.Tensor) -> Transition:
        obs, reward, terminated, truncated, real = self._env.step(actions.cpu().numpy())
        obs_t = self._tensor(obs)
        return Transition(obs_t, self._tensor(reward), self._tensor(terminated), self._tensor(truncated), obs_t,
                          self._tensor(real))

    def close(self) -> None:
        self._env.close()


@functools.cache
def envpool_available() -> bool:
    """Whether EnvPool imports here; ``auto`` runs a task with a native version natively where it does not.

    EnvPool's wheel does not import on every machine (on some GPU hosts its asset packages are
    missing); its tasks with a torch-native version still run there, natively.
    """
    try:
        import envpool  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means "not here"
        return False
    return True


def resolve_backend(env_id: str, backend: str = "auto", device: str | torch.device = "cpu") -> str:
    """The backend that will run ``env_id`` on ``device``: ``native`` or ``envpool``."""
    if backend not in BACKENDS:
        raise BackendError(f"unknown env backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        on_cpu = torch.device(device).type == "cpu"
        preferred = not on_cpu or env_id in NATIVE_ON_CPU or is_native_only(env_id) or not envpool_available()
        return "native" if is_native(env_id) and preferred else "envpool"
    if backend == "native" and not is_native(env_id):
        raise BackendError(f"{env_id} has no torch-native implementation; use backend envpool or auto")
    if backend == "envpool" and is_native_only(env_id):
        raise BackendError(f"EnvPool has no {env_id}; it runs natively (backend native or auto)")
    return backend


def make_env(env_id: str, num_envs: int, seed: int, *, backend: str = "auto",
             device: str | torch.device = "cpu") -> TensorEnv:
    """``num_envs`` copies of ``env_id`` on the chosen backend, seeded deterministically."""
    device = torch.device(device)
    if resolve_backend(env_id, backend, device) == "native":
        return NativeTensorEnv(env_id, num_envs, seed, device)
    return EnvPoolTensorEnv(env_id, num_envs, seed, device)
