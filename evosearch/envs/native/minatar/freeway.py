"""MinAtar Freeway as a batched torch environment.

Reproduces ``minatar/environments/freeway.py`` (minatar 1.0.15). A chicken crosses eight lanes of
traffic from the bottom row to the top: +1 for each crossing, after which it starts again at the
bottom and every car gets a new speed and direction; a car that hits it sends it back to the
bottom. The chicken may move only once every three steps. The game ends itself after 2,500 steps.

Each reference line is quoted in a comment above its batched form. Where the batched form differs:

* **Cars are a fixed-size dim** ``[n, 8]`` instead of the reference's Python loop over a list. The
  loop is order dependent only through ``self.pos``, which a collision sets to 9, and no car drives
  in row 9 (car ``i`` drives in row ``i + 1``), so after the first collision no other car can
  collide: "any car hits the chicken's row at x = 4, before or after its move" is the same test.
* **Car re-randomisation on a crossing** draws new speeds and directions for every env and car on
  every step and keeps them only where the chicken crossed (fixed-rate randomness; see
  :mod:`evosearch.envs.native.minatar.base`). The reference draws speeds (``randint(1, 6, 8)``) and
  directions (``sign(rand(8) - 0.5)``) separately; here one ``randint(0, 10)`` per car picks one of
  the ten signed speeds -5..-1, 1..5, the same uniform product distribution with one draw. (The
  reference's ``rand() == 0.5`` gives a direction of 0 with probability 2^-53; a speed-0 car would
  break its ``state()``, so that case is left out.)
* The state keeps cars as three ``[n, 8]`` fields, ``car_x``, ``car_timer`` and ``car_speed``
  (the reference's ``car[0]``, ``car[2]``, ``car[3]``); ``car[1]``, the lane, is always ``i + 1``.

Episode length: ``terminate_timer`` starts at 2500 and the episode terminates when it drops below 0,
i.e. on step 2501. ``max_episode_steps`` is one more than that, so the base class's time limit
(1,000 steps for the other games) never cuts an episode short and never marks one as truncated:
Freeway episodes end only by termination, as in the reference.
"""

from __future__ import annotations

import torch

from evosearch.envs.native.minatar.base import GRID, GameState, MinAtarEnv

# MinAtar's action indices (``n l u r d f``) that move the chicken.
UP, DOWN = 2, 4
PLAYER_SPEED = 3  # the chicken moves at most once every this many steps
TIME_LIMIT = 2500  # freeway.py's own ``time_limit``
NUM_CARS = 8
CHICKEN_X = 4  # the chicken's column
BOTTOM = GRID - 1
# The ten signed car speeds: a speed 1-5 (steps between moves) times a direction (-1 left, +1 right).
SIGNED_SPEEDS = (-5, -4, -3, -2, -1, 1, 2, 3, 4, 5)
# Observation channels: chicken, car, then the trail in channel ``TRAIL_BASE + |speed|``.
CHICKEN, CAR, TRAIL_BASE = 0, 1, 1


class Freeway(MinAtarEnv):
    """Cross eight lanes of traffic, +1 a crossing; the game stops itself after 2,500 steps."""

    env_id = "MinAtar/Freeway-v1"
    channels = 7  # chicken, car, speed1..speed5 (minatar's order)
    action_set = (0, 2, 4)  # minimal_action_set(): ['n', 'u', 'd']
    # The game terminates on step TIME_LIMIT + 1 (its timer runs 2500 -> -1); a limit one step later is
    # never reached, so episodes end by termination only (see the module docstring).
    max_episode_steps = TIME_LIMIT + 2

    def setup(self) -> None:
        self._signed_speeds = torch.tensor(SIGNED_SPEEDS, dtype=torch.int64, device=self.device)
        lanes = torch.arange(1, NUM_CARS + 1, dtype=torch.int64, device=self.device)
        self._car_y = lanes  # car i drives in row i + 1
        # Flat offsets into the [7 * 100] observation of each car's row in the car channel.
        self._car_row_offset = CAR * GRID * GRID + lanes * GRID

    def _random_speeds(self, n: int) -> torch.Tensor:
        """``_randomize_cars``: ``speeds = randint(1,6,8) * sign(rand(8) - 0.5)`` for ``n`` envs, int64 [n, 8]."""
        return self._signed_speeds.index_select(0, self._randint(0, 10, n * NUM_CARS)).view(n, NUM_CARS)

    def initial_state(self, n: int) -> GameState:
        """``reset()``: cars at x = 0 with random speeds, the chicken at the bottom, full timers."""
        speeds = self._random_speeds(n)
        return {
            "pos": torch.full((n,), BOTTOM, dtype=torch.int64, device=self.device),
            "move_timer": torch.full((n,), PLAYER_SPEED, dtype=torch.int64, device=self.device),
            "terminate_timer": torch.full((n,), TIME_LIMIT, dtype=torch.int64, device=self.device),
            # _randomize_cars(initialize=True): cars += [[0, i+1, abs(speeds[i]), speeds[i]]]
            "car_x": self._zeros(n, NUM_CARS),
            "car_timer": speeds.abs(),
            "car_speed": speeds,
        }

    def dynamics(self, state: GameState, actions: torch.Tensor) -> tuple[GameState, torch.Tensor, torch.Tensor]:
        n = actions.shape[0]
        # Drawn on every step for every env (fixed rate), used only where the chicken crosses.
        new_speeds = self._random_speeds(n)

        # if a=='u' and move_timer==0: move_timer = 3; pos = max(0, pos-1)
        # elif a=='d' and move_timer==0: move_timer = 3; pos = min(9, pos+1)
        move_timer = state["move_timer"]
        ready = move_timer == 0
        up = ready & (actions == UP)
        down = ready & (actions == DOWN)
        move_timer = torch.where(up | down, PLAYER_SPEED, move_timer)
        pos = (state["pos"] - up.long() + down.long()).clamp(0, BOTTOM)

        # if pos==0: r += 1; _randomize_cars(initialize=False); pos = 9
        # (_randomize_cars with initialize=False sets each car's [timer, speed] and keeps its x.)
        win = pos == 0
        pos = torch.where(win, BOTTOM, pos)
        car_speed = torch.where(win.unsqueeze(1), new_speeds, state["car_speed"])
        car_timer = torch.where(win.unsqueeze(1), new_speeds.abs(), state["car_timer"])

        # for car in cars:
        #     if car[0:2]==[4,pos]: pos = 9
        #     if car[2]==0:
        #         car[2] = abs(car[3]); car[0] += 1 if car[3]>0 else -1; wrap car[0] into 0..9
        #         if car[0:2]==[4,pos]: pos = 9
        #     else: car[2] -= 1
        car_x = state["car_x"]
        moves = car_timer == 0
        heading = torch.where(car_speed > 0, 1, -1)
        new_x = torch.where(moves, torch.remainder(car_x + heading, GRID), car_x)
        car_timer = torch.where(moves, car_speed.abs(), car_timer - 1)
        in_lane = self._car_y == pos.unsqueeze(1)
        hit = (in_lane & ((car_x == CHICKEN_X) | (new_x == CHICKEN_X))).any(1)
        pos = torch.where(hit, BOTTOM, pos)

        # move_timer -= move_timer>0; terminate_timer -= 1; if terminate_timer<0: terminal = True
        move_timer = move_timer - (move_timer > 0).long()
        terminate_timer = state["terminate_timer"] - 1
        terminated = terminate_timer < 0

        next_state = {
            "pos": pos,
            "move_timer": move_timer,
            "terminate_timer": terminate_timer,
            "car_x": new_x,
            "car_timer": car_timer,
            "car_speed": car_speed,
        }
        return next_state, win.to(torch.float32), terminated

    def observe(self, state: GameState) -> torch.Tensor:
        """``state()``: the chicken at (pos, 4); each car at (lane, x) with its trail one cell behind it.

        The trail's channel encodes the car's speed (``speed1``..``speed5``), its side the direction:
        ``back_x = car[0]-1 if car[3]>0 else car[0]+1``, wrapped into 0..9.
        """
        n = state["pos"].shape[0]
        car_x, car_speed = state["car_x"], state["car_speed"]
        chicken = (CHICKEN * GRID * GRID + state["pos"] * GRID + CHICKEN_X).unsqueeze(1)
        cars = self._car_row_offset + car_x
        back_x = torch.remainder(car_x - torch.where(car_speed > 0, 1, -1), GRID)
        trails = (TRAIL_BASE + car_speed.abs()) * (GRID * GRID) + self._car_y * GRID + back_x
        cells = torch.cat((chicken, cars, trails), dim=1)
        obs = torch.zeros(n, self.obs_dim, dtype=torch.float32, device=self.device)
        return obs.scatter_(1, cells, 1.0)
