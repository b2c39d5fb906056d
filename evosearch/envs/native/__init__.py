"""Environments written as batched torch code, so a whole rollout can stay on one device.

``make_native(env_id, num_envs, seed, device)`` builds one; ``is_native(env_id)`` says whether an id has a
native version (the others go through EnvPool). The classic-control envs reproduce gymnasium's dynamics
and ``gymnasium.make``'s time limit (see :mod:`evosearch.envs.native.base` for the episode rules); the
MinAtar games reproduce the ``minatar`` package's (:mod:`evosearch.envs.native.minatar`) and exist only
here, EnvPool has no MinAtar.
"""

from __future__ import annotations

import torch

from evosearch.envs.native.acrobot import Acrobot
from evosearch.envs.native.base import NativeEnv, NativeStep
from evosearch.envs.native.cartpole import CartPole
from evosearch.envs.native.minatar import MINATAR_GAMES
from evosearch.envs.native.mountain_car import MountainCar
from evosearch.envs.native.pendulum import Pendulum

NATIVE_ENVS: dict[str, type[NativeEnv]] = {
    cls.env_id: cls for cls in (CartPole, Acrobot, MountainCar, Pendulum, *MINATAR_GAMES)
}
#: Ids that only a native env runs (EnvPool has no version of them): ``auto`` picks native for them everywhere.
NATIVE_ONLY = frozenset(cls.env_id for cls in MINATAR_GAMES)


class UnknownNativeEnvError(KeyError, ValueError):
    """An env id with no native version; a KeyError (a failed lookup) that also reads as a ValueError."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


def is_native_only(env_id: str) -> bool:
    return env_id in NATIVE_ONLY


def is_native(env_id: str) -> bool:
    return env_id in NATIVE_ENVS


def make_native(
    env_id: str,
    num_envs: int,
    seed: int,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> NativeEnv:
    """``num_envs`` copies of ``env_id`` on ``device``, already reset; the generator is seeded with ``seed``."""
    try:
        cls = NATIVE_ENVS[env_id]
    except KeyError:
        available = ", ".join(sorted(NATIVE_ENVS))
        raise UnknownNativeEnvError(f"no native environment {env_id!r}; available: {available}") from None
    return cls(num_envs, seed, device=device, dtype=dtype)


__all__ = [
    "NATIVE_ENVS",
    "NATIVE_ONLY",
    "Acrobot",
    "CartPole",
    "MountainCar",
    "NativeEnv",
    "NativeStep",
    "Pendulum",
    "UnknownNativeEnvError",
    "is_native",
    "is_native_only",
    "make_native",
]
