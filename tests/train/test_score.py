"""The trusted scorer reads weights as data: whatever a file holds, a bad one is the candidate's BadWeights."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from evosearch.train.networks import Ensemble, Spec
from evosearch.train.score import BadWeights, NonFiniteWeights, check_weights, load_weights, score_weights

SPEC = Spec(obs_dim=4, act_dim=2, discrete=True, hidden=64)  # CartPole-v1's network


def weights(seeds: int = 3) -> dict[str, np.ndarray]:
    return Ensemble(SPEC, list(range(seeds))).to_numpy()


def test_the_harness_network_passes():
    check_weights(weights(3), SPEC, 3)


@pytest.mark.parametrize(("change", "message"), [
    (lambda w: w.pop("actor_w0"), "lacks actor_w0"),
    (lambda w: w.update(extra=np.zeros(3, np.float32)), "unexpected arrays extra"),
    (lambda w: w.update(actor_w0=w["actor_w0"][:2]), "(3, 4, 64)"),
    (lambda w: w.update(critic_w1=w["critic_w1"][..., :-1]), "expected"),
])
def test_weights_that_are_not_the_network_are_named(change, message):
    w = weights(3)
    change(w)
    with pytest.raises(BadWeights, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_weights(w, SPEC, 3)


def test_non_finite_weights_are_their_own_error():
    w = weights(2)
    w["actor_w0"][0, 0, 0] = np.nan
    with pytest.raises(NonFiniteWeights):
        check_weights(w, SPEC, 2)


def test_weights_of_zero_seeds_are_refused_before_any_environment_runs(tmp_path):
    w = {k: v[:0] for k, v in weights(2).items()}
    with pytest.raises(BadWeights, match="no seed"):
        score_weights(w, "CartPole-v1", episodes=2, seed=0)


def test_seed_counts_that_disagree_with_the_job_are_refused():
    with pytest.raises(BadWeights, match=r"have shape \(5, 4, 64\), expected \(6, 4, 64\)"):
        score_weights(weights(5), "CartPole-v1", episodes=2, seed=0, seeds=6)


def test_a_pickle_a_zip_bomb_and_a_text_file_are_not_weights(tmp_path):
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, actor_w0=np.array([object()], dtype=object))
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("actor_w0.npy", b"\0" * 1_000_000)
    text = tmp_path / "text.npz"
    text.write_text("not a zip")
    for path, message in ((pickled, "not a readable"), (bomb, "compressed members"), (text, "not a readable")):
        with pytest.raises(BadWeights, match=message):
            load_weights(str(path))


def test_weights_written_by_the_harness_load_back(tmp_path):
    path = tmp_path / "weights.npz"
    np.savez(path, **weights(2))
    loaded = load_weights(str(path))
    check_weights(loaded, SPEC, 2)
