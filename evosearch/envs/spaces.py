"""What an environment's observations and actions are: one description, one table.

Everything that needs to know an environment's spaces without stepping it reads them here: the
referee checks a policy's answers against them, GP policies size their genomes from them, and a
policy export embeds the ids whose actions are discrete. :func:`spaces` gives an
:class:`EnvSpaces`: the length of the flat float32 observation the harness hands a policy (a
dict observation is flattened the way :mod:`evosearch.envs.vector` does it: its array fields
concatenated in key order), and the action space, discrete (``act_dim`` actions, ``0 ..
act_dim - 1``) or continuous (a vector of ``act_dim`` values within ``low``/``high``).

:data:`SPACES` covers every environment a packaged suite names. They agree with EnvPool's and
gymnasium's own spaces and with the torch-native envs (``tests/envs/test_spaces.py`` checks each
against the real thing). Any other id is read from EnvPool once, on first use, and remembered.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

#: What an environment id looks like (EnvPool's and gymnasium's ids all do); anything else is refused unread.
ENV_ID_PATTERN = re.compile(r"[A-Za-z][\w.:/\-]*")


class UnknownEnvError(KeyError, ValueError):
    """No spaces for this id: not in the table, and EnvPool could not say; a KeyError that reads as a ValueError."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


@dataclass(frozen=True)
class EnvSpaces:
    """An environment's observation length and action space, as the harness presents them to a program."""

    env_id: str
    obs_dim: int  # length of the flat float32 observation
    discrete: bool
    act_dim: int  # number of discrete actions, or the length of the continuous action vector
    low: tuple[float, ...] = ()  # continuous only: per-dimension bounds (may be infinite)
    high: tuple[float, ...] = ()
    obs_fields: tuple[str, ...] = ()  # dict observations only: the fields, in the order they are concatenated

    def __post_init__(self) -> None:
        if self.obs_dim < 1 or self.act_dim < 1:
            raise ValueError(f"{self.env_id}: obs_dim and act_dim must be positive, got {self.obs_dim}, {self.act_dim}")
        if self.discrete and (self.low or self.high):
            raise ValueError(f"{self.env_id}: a discrete action space has no bounds")
        if not self.discrete and not len(self.low) == len(self.high) == self.act_dim:
            raise ValueError(f"{self.env_id}: a continuous action of {self.act_dim} values needs that many bounds, "
                             f"got {len(self.low)} low and {len(self.high)} high")

    @property
    def action_low(self) -> np.ndarray | None:
        """The lower bounds as a float32 array (what actions are clipped to), or None for a discrete space."""
        return None if self.discrete else np.asarray(self.low, dtype=np.float32)

    @property
    def action_high(self) -> np.ndarray | None:
        """The upper bounds as a float32 array, or None for a discrete space."""
        return None if self.discrete else np.asarray(self.high, dtype=np.float32)


def _discrete(env_id: str, obs_dim: int, n: int, obs_fields: tuple[str, ...] = ()) -> EnvSpaces:
    return EnvSpaces(env_id, obs_dim=obs_dim, discrete=True, act_dim=n, obs_fields=obs_fields)


#: MiniGrid's dict observation as EnvPool gives it: direction (1) + image 7x7x3 (147) + mission (96).
_MINIGRID_FIELDS = ("direction", "image", "mission")

#: Every environment a packaged suite names (classic control, Box2D, MiniGrid and MinAtar, via EnvPool or natively).
SPACES: dict[str, EnvSpaces] = {s.env_id: s for s in (
    _discrete("CartPole-v1", obs_dim=4, n=2),
    _discrete("Acrobot-v1", obs_dim=6, n=3),
    _discrete("MountainCar-v0", obs_dim=2, n=3),
    EnvSpaces("Pendulum-v1", obs_dim=3, discrete=False, act_dim=1, low=(-2.0,), high=(2.0,)),
    _discrete("LunarLander-v3", obs_dim=8, n=4),
    _discrete("MiniGrid-Empty-5x5-v0", obs_dim=244, n=7, obs_fields=_MINIGRID_FIELDS),
    _discrete("MiniGrid-Empty-6x6-v0", obs_dim=244, n=7, obs_fields=_MINIGRID_FIELDS),
    _discrete("MiniGrid-Empty-Random-6x6-v0", obs_dim=244, n=7, obs_fields=_MINIGRID_FIELDS),
    # MinAtar (torch-native only): channels x 10 x 10 booleans as float32, channels-first; minimal action sets
    _discrete("MinAtar/Asterix-v1", obs_dim=4 * 100, n=5),
    _discrete("MinAtar/Breakout-v1", obs_dim=4 * 100, n=3),
    _discrete("MinAtar/Freeway-v1", obs_dim=7 * 100, n=3),
    _discrete("MinAtar/Seaquest-v1", obs_dim=10 * 100, n=6),
    _discrete("MinAtar/SpaceInvaders-v1", obs_dim=6 * 100, n=4),
)}

_LOOKED_UP: dict[str, EnvSpaces | str] = {}  # ids read from EnvPool; a failure is kept as its message


def known_env_ids() -> tuple[str, ...]:
    """The ids :data:`SPACES` describes, in table order; :func:`spaces` reads others from EnvPool."""
    return tuple(SPACES)


def _flat_size(space: object) -> int:
    """How many float32 values an observation from ``space`` flattens to (numeric fields of a dict only)."""
    fields = getattr(space, "spaces", None)
    if isinstance(fields, Mapping):
        return sum(_flat_size(sub) for sub in fields.values())
    shape = getattr(space, "shape", None)
    return 0 if shape is None else int(np.prod(shape))  # a shapeless field (text) is left out, as vector.py does


def from_gym_spaces(env_id: str, observation_space: object, action_space: object) -> EnvSpaces:
    """The :class:`EnvSpaces` of gymnasium-style spaces (EnvPool's spec, or a gymnasium env's)."""
    fields = getattr(observation_space, "spaces", None)
    obs_fields = tuple(sorted(fields)) if isinstance(fields, Mapping) else ()
    obs_dim = _flat_size(observation_space)
    if hasattr(action_space, "n"):
        return EnvSpaces(env_id, obs_dim=obs_dim, discrete=True, act_dim=int(action_space.n), obs_fields=obs_fields)
    shape = tuple(action_space.shape)
    low = np.broadcast_to(np.asarray(action_space.low, dtype=np.float64), shape).ravel()
    high = np.broadcast_to(np.asarray(action_space.high, dtype=np.float64), shape).ravel()
    return EnvSpaces(env_id, obs_dim=obs_dim, discrete=False, act_dim=int(low.size),
                     low=tuple(float(v) for v in low), high=tuple(float(v) for v in high), obs_fields=obs_fields)


def _read_envpool(env_id: str) -> EnvSpaces:
    """Ask EnvPool for ``env_id``'s spaces (its spec, else one env built and closed); raises on failure."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import envpool  # imported late: ids in the table need no envpool

        try:
            spec = envpool.make_spec(env_id)
            obs_space = getattr(spec, "gymnasium_observation_space", None) or spec.observation_space
            act_space = getattr(spec, "gymnasium_action_space", None) or spec.action_space
        except Exception:  # older envpool: build one env and ask it
            env = envpool.make(env_id, env_type="gymnasium", num_envs=1)
            obs_space, act_space = env.observation_space, env.action_space
            env.close()
    return from_gym_spaces(env_id, obs_space, act_space)


def spaces(env_id: str) -> EnvSpaces:
    """The spaces of ``env_id``: from :data:`SPACES`, else read from EnvPool (once; a failure is remembered too).

    Raises :class:`UnknownEnvError` when ``env_id`` is not an id or EnvPool cannot describe it.
    """
    if env_id in SPACES:
        return SPACES[env_id]
    if not isinstance(env_id, str) or not ENV_ID_PATTERN.fullmatch(env_id):
        raise UnknownEnvError(f"{env_id!r} is not an environment id")
    if env_id not in _LOOKED_UP:
        try:
            _LOOKED_UP[env_id] = _read_envpool(env_id)
        except Exception as err:  # any failure means the same to every caller: no spaces for this id
            _LOOKED_UP[env_id] = (f"no spaces for {env_id!r}: not one of {', '.join(SPACES)}, and EnvPool could not "
                                  f"describe it ({type(err).__name__}: {err})")
    found = _LOOKED_UP[env_id]
    if isinstance(found, str):
        raise UnknownEnvError(found)
    return found


__all__ = ["ENV_ID_PATTERN", "SPACES", "EnvSpaces", "UnknownEnvError", "from_gym_spaces", "known_env_ids", "spaces"]
