"""Trusted scoring: measure the returns of trained weights, never running candidate code.

The training job (which ran the candidate) only hands over a plain ``.npz`` of weights; this
module rebuilds the fixed CleanRL architecture from them and plays evaluation episodes with
its own environment and its own return accounting, so a candidate cannot forge its score.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch

from evosearch.envs.backend import TensorEnv, make_env
from evosearch.train.networks import Ensemble, Spec, parameter_shapes, sample_actions

#: Steps between checks that every episode has finished: on a GPU each check waits on the device.
CHECK_EVERY = 32


class BadWeights(ValueError):
    """The weights file a training job left is not the network the harness trains (the candidate's doing)."""


class NonFiniteWeights(BadWeights):
    """The trained weights hold NaN or infinite values: the candidate's training diverged."""


def load_weights(path: str) -> dict[str, np.ndarray]:
    """Read a weights file written by a training job; refuses pickled objects, and anything unreadable.

    ``np.savez`` stores its arrays uncompressed, so a compressed member can only be a file made to
    expand (a zip bomb would end this trusted job by its memory limit, a machine failure): refused.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            packed = [i.filename for i in archive.infolist() if i.compress_type != zipfile.ZIP_STORED]
        if packed:
            raise BadWeights(f"the weights file has compressed members ({', '.join(packed[:3])}); "
                             "np.savez writes none")
        with np.load(path, allow_pickle=False) as data:
            return {str(k): np.asarray(data[k], dtype=np.float32) for k in data.files}
    except BadWeights:
        raise
    except Exception as err:  # noqa: BLE001 - whatever the file is, it is not weights: say so, do not crash
        raise BadWeights(f"the weights file is not a readable .npz of float arrays ({type(err).__name__}: "
                         f"{str(err)[:200]})") from None


def check_weights(weights: dict[str, np.ndarray], spec: Spec, seeds: int) -> None:
    """Raise :class:`BadWeights` unless ``weights`` are exactly ``seeds`` copies of the harness's network."""
    shapes = parameter_shapes(spec)
    missing, extra = sorted(set(shapes) - set(weights)), sorted(set(weights) - set(shapes))
    if missing or extra:
        raise BadWeights("the weights file " + "; ".join(
            part for part in (f"lacks {', '.join(missing)}" if missing else "",
                              f"has unexpected arrays {', '.join(extra[:5])}" if extra else "") if part))
    for name, (a, b) in shapes.items():
        if weights[name].shape != (seeds, a, b):
            raise BadWeights(f"weights {name} have shape {tuple(weights[name].shape)}, expected {(seeds, a, b)} "
                             f"({seeds} seeds)")
    for name, array in weights.items():
        if not np.isfinite(array).all():
            raise NonFiniteWeights(f"weights {name} hold NaN or infinite values")


def first_episode_returns(env: TensorEnv, choose: Callable[[torch.Tensor], torch.Tensor]) -> np.ndarray:
    """Undiscounted return of each environment's first completed episode.

    Returns are summed here, from the environment's rewards, over real transitions only.
    """
    obs = env.reset()
    running = torch.zeros(env.num_envs, dtype=torch.float64, device=env.device)
    final = torch.zeros_like(running)
    finished = torch.zeros(env.num_envs, dtype=torch.bool, device=env.device)
    while not bool(finished.all()):
        for _ in range(CHECK_EVERY):
            step = env.step(choose(obs))
            reward = step.reward if step.real is None else step.reward * step.real
            running += torch.where(finished, 0.0, reward.double())
            ended = (step.terminated | step.truncated) & ~finished
            final = torch.where(ended, running, final)
            finished |= ended
            obs = step.obs
    return final.cpu().numpy()


def score_weights(
    weights: dict[str, np.ndarray], env_id: str, episodes: int, seed: int, hidden: int | None = None,
    *, seeds: int | None = None, backend: str = "auto", device: str | torch.device = "cpu",
) -> np.ndarray:
    """Mean undiscounted return per seed over ``episodes`` episodes, sampling from the policy.

    Each of the ``episodes`` environments of a seed contributes its first completed episode.
    ``seeds`` and ``hidden``, when given, are what the weights must hold (:func:`check_weights`);
    otherwise they are read from the weights themselves.
    """
    first = weights.get("actor_w0")
    if first is None or first.ndim != 3:
        raise BadWeights("the weights file lacks actor_w0 of shape (seeds, inputs, hidden)")
    seeds = int(first.shape[0]) if seeds is None else seeds
    env = make_env(env_id, max(1, seeds) * episodes, seed=10_000_019 + seed, backend=backend, device=device)
    hidden = hidden or int(first.shape[2])
    spec = replace(env.spec, hidden=hidden)
    try:
        if seeds < 1:
            raise BadWeights("the weights file holds no seed")
        check_weights(weights, spec, seeds)
    except BadWeights:
        env.close()
        raise
    model = Ensemble.from_numpy(spec, weights, device=env.device)
    generator = torch.Generator(device=env.device).manual_seed(seed)
    with torch.no_grad():
        actor = model.folded("actor")

    def choose(obs: torch.Tensor) -> torch.Tensor:
        actions, _ = sample_actions(model, obs.view(seeds, episodes, -1), generator, actor)
        return actions.reshape(seeds * episodes, *actions.shape[2:])

    returns = first_episode_returns(env, choose)
    env.close()
    return returns.reshape(seeds, episodes).mean(1)


def uniform_random_actions(env: TensorEnv, generator: torch.Generator) -> torch.Tensor:
    """One uniformly random action per environment (within the bounds for continuous actions)."""
    if env.spec.discrete:
        return torch.randint(0, env.spec.act_dim, (env.num_envs,), generator=generator)
    low, high = env.action_low, env.action_high
    return low + (high - low) * torch.rand(env.num_envs, env.spec.act_dim, generator=generator)


def random_returns(env_id: str, episodes: int, seed: int, *, backend: str = "auto") -> np.ndarray:
    """Returns of the uniform random policy, the 0 of the normalised score."""
    env = make_env(env_id, episodes, seed=20_000_003 + seed, backend=backend)
    generator = torch.Generator().manual_seed(seed)

    returns = first_episode_returns(env, lambda obs: uniform_random_actions(env, generator))
    env.close()
    return returns
