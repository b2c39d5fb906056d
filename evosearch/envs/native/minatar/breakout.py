"""MinAtar Breakout as a batched torch environment.

Reproduces ``minatar/environments/breakout.py`` (minatar 1.0.15). The player moves a paddle along
the bottom row to keep a ball, which travels only along diagonals, in play; each brick the ball
breaks is worth +1, a fresh three rows of bricks appear once the wall is cleared and the ball
reaches the bottom row, and the episode ends when the ball gets past the paddle.

The reference resolves a step with an ``if``/``elif`` chain on the ball's next cell. Here every
branch is computed for the whole batch and the chain becomes masks, each one excluding the
branches before it (``top``, then ``brick``, then ``bottom``). Each reference line is quoted in a
comment above its batched form. Quirks kept on purpose:

* ``strike``: the step after breaking a brick, a ball that moves into another brick passes into it
  without breaking it or bouncing (the flag clears on the first step that touches no brick).
* A wall bounce and a top or brick bounce can happen in the same step (the corner case), as can a
  wall bounce and a paddle bounce; the later rule sees the direction the earlier one set.
* The paddle test compares the paddle (already moved by this step's action) with the ball's *old*
  column first ("hit the paddle's face": straight back up) and its new column second ("clipped the
  paddle's corner": back the way it came).
* Bricks refill only when a ball reaches the bottom row with none left, before the paddle test, so
  they also refill on the step the episode ends.

Breakout has no randomness inside a step; a reset draws which top corner the ball starts from.
"""

from __future__ import annotations

import torch

from evosearch.envs.native.minatar.base import GRID, GameState, MinAtarEnv

# MinAtar's action indices (``n l u r d f``) that move the paddle.
LEFT, RIGHT = 1, 3
# ``ball_dir`` 0-3 is up-left, up-right, down-right, down-left; the step each one takes.
DIR_DX = (-1, 1, 1, -1)
DIR_DY = (-1, -1, 1, 1)
BRICK_ROWS = slice(1, 4)  # ``brick_map[1:4, :] = 1``
START_Y = 3
PADDLE_START = 4
BOTTOM = GRID - 1


class Breakout(MinAtarEnv):
    """Bounce a ball off a paddle into rows of bricks; +1 a brick, over when the ball is missed."""

    env_id = "MinAtar/Breakout-v1"
    channels = 4  # paddle, ball, trail, brick (minatar's order)
    action_set = (0, 1, 3)  # minimal_action_set(): ['n', 'l', 'r']

    def setup(self) -> None:
        self._dx = torch.tensor(DIR_DX, dtype=torch.int64, device=self.device)
        self._dy = torch.tensor(DIR_DY, dtype=torch.int64, device=self.device)
        wall = torch.zeros(GRID, GRID, dtype=torch.bool, device=self.device)
        wall[BRICK_ROWS] = True
        self._wall = wall
        # reset(): ``self.ball_x, self.ball_dir = [(0,2),(9,3)][ball_start]``
        self._start_x = torch.tensor((0, GRID - 1), dtype=torch.int64, device=self.device)
        self._start_dir = torch.tensor((2, 3), dtype=torch.int64, device=self.device)

    def initial_state(self, n: int) -> GameState:
        """``reset()``: the ball starts in row 3 at the left or right wall, heading down and inwards."""
        ball_start = self._randint(0, 2, n)
        ball_x = self._start_x.index_select(0, ball_start)
        ball_y = torch.full((n,), START_Y, dtype=torch.int64, device=self.device)
        return {
            "ball_x": ball_x,
            "ball_y": ball_y,
            "ball_dir": self._start_dir.index_select(0, ball_start),
            "pos": torch.full((n,), PADDLE_START, dtype=torch.int64, device=self.device),
            "brick_map": self._wall.expand(n, GRID, GRID).clone(),
            "strike": self._zeros(n, dtype=torch.bool),
            "last_x": ball_x.clone(),
            "last_y": ball_y.clone(),
        }

    def dynamics(self, state: GameState, actions: torch.Tensor) -> tuple[GameState, torch.Tensor, torch.Tensor]:
        n = actions.shape[0]
        # if a=='l': pos = max(0, pos-1)  elif a=='r': pos = min(9, pos+1)
        step = (actions == RIGHT).long() - (actions == LEFT).long()
        pos = (state["pos"] + step).clamp(0, GRID - 1)

        # last_x, last_y = ball_x, ball_y; new_x, new_y = one diagonal step in ball_dir
        last_x, last_y, ball_dir = state["ball_x"], state["ball_y"], state["ball_dir"]
        new_x = last_x + self._dx.index_select(0, ball_dir)
        new_y = last_y + self._dy.index_select(0, ball_dir)

        # if new_x<0 or new_x>9: clamp new_x; ball_dir = [1,0,3,2][ball_dir]
        side = (new_x < 0) | (new_x > GRID - 1)
        new_x = new_x.clamp(0, GRID - 1)
        ball_dir = torch.where(side, ball_dir ^ 1, ball_dir)

        # if new_y<0: new_y = 0; ball_dir = [3,2,1,0][ball_dir]
        top = new_y < 0
        new_y = new_y.clamp(min=0)
        ball_dir = torch.where(top, 3 - ball_dir, ball_dir)

        # elif brick_map[new_y,new_x]==1: strike_toggle = True; and unless strike is already set,
        # r += 1; strike = True; brick_map[new_y,new_x] = 0; new_y = last_y; ball_dir = [3,2,1,0][ball_dir]
        cell = new_y * GRID + new_x
        bricks = state["brick_map"].reshape(n, GRID * GRID)
        brick = ~top & bricks.gather(1, cell.unsqueeze(1)).squeeze(1)
        hit = brick & ~state["strike"]
        cells = torch.arange(GRID * GRID, device=self.device)
        bricks = bricks & ~(hit.unsqueeze(1) & (cells == cell.unsqueeze(1)))
        new_y = torch.where(hit, last_y, new_y)
        ball_dir = torch.where(hit, 3 - ball_dir, ball_dir)
        # if not strike_toggle: strike = False. So strike ends up True exactly when the ball met a brick.
        strike = brick

        # elif new_y == 9:
        bottom = ~top & ~brick & (new_y == BOTTOM)
        #   if count_nonzero(brick_map)==0: brick_map[1:4,:] = 1
        refill = bottom & ~bricks.any(1)
        brick_map = bricks.reshape(n, GRID, GRID) | (refill.view(n, 1, 1) & self._wall)
        #   if ball_x == pos: ball_dir = [3,2,1,0][ball_dir]; new_y = last_y   (ball_x is still the old x)
        face = bottom & (last_x == pos)
        #   elif new_x == pos: ball_dir = [2,3,0,1][ball_dir]; new_y = last_y
        corner = bottom & ~face & (new_x == pos)
        #   else: terminal = True
        terminated = bottom & ~face & ~corner
        ball_dir = torch.where(face, 3 - ball_dir, torch.where(corner, ball_dir ^ 2, ball_dir))
        new_y = torch.where(face | corner, last_y, new_y)

        next_state = {
            "ball_x": new_x,
            "ball_y": new_y,
            "ball_dir": ball_dir,
            "pos": pos,
            "brick_map": brick_map,
            "strike": strike,
            # Sharing the previous state's tensors is safe: no state tensor is ever modified in place.
            "last_x": last_x,
            "last_y": last_y,
        }
        return next_state, hit.to(torch.float32), terminated

    def observe(self, state: GameState) -> torch.Tensor:
        """``state()``: paddle at (9, pos), ball at (ball_y, ball_x), trail at (last_y, last_x), the bricks."""
        n = state["pos"].shape[0]
        # One cell each in the paddle, ball and trail channels, as flat indices into the 10x10 image.
        cells = torch.stack(
            (BOTTOM * GRID + state["pos"], state["ball_y"] * GRID + state["ball_x"],
             state["last_y"] * GRID + state["last_x"]),
            dim=1,
        )
        sprites = torch.zeros(n, 3 * GRID * GRID, dtype=torch.float32, device=self.device)
        sprites.view(n, 3, GRID * GRID).scatter_(2, cells.unsqueeze(2), 1.0)
        return torch.cat((sprites, state["brick_map"].reshape(n, GRID * GRID).to(torch.float32)), dim=1)
