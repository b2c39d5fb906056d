"""MinAtar's games as batched torch environments; see :mod:`evosearch.envs.native.minatar.base`.

Ids are ``minatar.gym``'s ``-v1`` ones (minimal action sets): ``MinAtar/Breakout-v1`` and so on.
"""

from evosearch.envs.native.minatar.asterix import Asterix
from evosearch.envs.native.minatar.base import MinAtarEnv
from evosearch.envs.native.minatar.breakout import Breakout
from evosearch.envs.native.minatar.freeway import Freeway
from evosearch.envs.native.minatar.seaquest import Seaquest
from evosearch.envs.native.minatar.space_invaders import SpaceInvaders

MINATAR_GAMES: tuple[type[MinAtarEnv], ...] = (Asterix, Breakout, Freeway, Seaquest, SpaceInvaders)

__all__ = ["MINATAR_GAMES", "Asterix", "Breakout", "Freeway", "MinAtarEnv", "Seaquest", "SpaceInvaders"]
