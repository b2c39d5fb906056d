"""MinAtar Asterix as a batched torch environment.

Reproduces ``minatar`` 1.0.15's ``environments/asterix.py`` with difficulty ramping on. The player
moves freely on rows 1-8; enemies and gold spawn at either side of rows 1-8 and cross the screen.
Picking up gold gives +1, touching an enemy ends the episode. Every ``ramp_interval + 2`` steps the
spawn period (and every other time the move period) shrinks by one.

The reference keeps eight entity slots, slot ``i`` being ``None`` or ``[x, i + 1, lr, is_gold]``;
here a slot is four ``[n, 8]`` tensors (``alive``, ``entity_x``, ``right``, ``gold``) and its row is
implicit. A slot's ``entity_x``/``right``/``gold`` mean nothing while it is not ``alive``. The
reference's Python ``for`` loops over the slots become elementwise ops on those tensors: a slot only
ever touches its own row, so the iterations are independent and their order does not matter.

Randomness: the reference draws ``rand()`` (side), ``rand()`` (gold) and, if some slot is free,
``randint(len(free_slots))`` only when the spawn timer has run out. Here every env draws a side, a
gold flag and an integer in ``[0, 840)`` on every step (see :meth:`Asterix._spawn_draws`), used only
where a spawn happens. 840 is ``lcm(1, ..., 8)``, so ``rank % n_free`` is *exactly* uniform over the
free slots, the distribution of ``slot_options[randint(len(slot_options))]``. The two uniforms are
float32 where numpy's are float64, which moves ``P(gold)`` from 1/3 by about 1e-8.

Quirks of the reference kept as they are:

* The spawn happens before the player moves, and a spawned entity is checked against the player in
  the same step (it can be picked up or kill at once), and moves in it if the move timer is up.
* Collisions are checked twice: after the player moves (any entity on the player's cell) and, on a
  move step, after each entity moves. The episode's end does not stop the step: gold reached later in
  the same step still pays.
* An entity that walks off a side disappears; it can never hit the player on the way out.
* The ramp counts ``ramp_timer`` down to -1 and fires one step later, so it fires every 102 steps; it
  stops once both periods are at 1, and changing a period leaves the running timers alone.
"""

from __future__ import annotations

import torch

from evosearch.envs.native.minatar.base import GRID, GameState, MinAtarEnv

RAMP_INTERVAL = 100
INIT_SPAWN_SPEED = 10
INIT_MOVE_INTERVAL = 5
SLOTS = 8  # one per row 1-8; slot i lives on row i + 1
TOP_ROW, BOTTOM_ROW = 1, 8  # the rows the player may stand on
START_X = START_Y = 5
#: lcm(1, ..., 8): an integer below it, modulo any count of free slots, is exactly uniform
SLOT_RANK_RANGE = 840


class Asterix(MinAtarEnv):
    """Collect gold (+1), avoid enemies (episode ends); both come from the sides ever faster."""

    env_id = "MinAtar/Asterix-v1"
    channels = 4  # player, enemy, trail, gold (minatar's order)
    action_set = (0, 1, 2, 3, 4)  # n l u r d

    def setup(self) -> None:
        device = self.device
        # per MinAtar action n l u r d f: the player's step along x and y
        self._dx = torch.tensor([0, -1, 0, 1, 0, 0], device=device)
        self._dy = torch.tensor([0, 0, -1, 0, 1, 0], device=device)
        self._cols = torch.arange(GRID, device=device)
        self._slot_rows = torch.arange(TOP_ROW, TOP_ROW + SLOTS, device=device)
        self.k = self._constants(
            torch.int64,
            zero=0,
            one=1,
            last_col=GRID - 1,
            ramp_interval=RAMP_INTERVAL,
            rank_range=SLOT_RANK_RANGE,
        )
        self.p = self._constants(torch.float32, right=1 / 2, gold=1 / 3)

    def initial_state(self, n: int) -> GameState:
        def full(value: int) -> torch.Tensor:
            return torch.full((n,), value, dtype=torch.int64, device=self.device)

        return {
            "player_x": full(START_X),
            "player_y": full(START_Y),
            "alive": self._zeros(n, SLOTS, dtype=torch.bool),
            "entity_x": self._zeros(n, SLOTS),
            "right": self._zeros(n, SLOTS, dtype=torch.bool),  # the reference's ``lr``: moving right
            "gold": self._zeros(n, SLOTS, dtype=torch.bool),
            "spawn_speed": full(INIT_SPAWN_SPEED),
            "spawn_timer": full(INIT_SPAWN_SPEED),
            "move_speed": full(INIT_MOVE_INTERVAL),
            "move_timer": full(INIT_MOVE_INTERVAL),
            "ramp_timer": full(RAMP_INTERVAL),
            "ramp_index": full(0),
        }

    def _spawn_draws(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """What a spawn needs, drawn for every env on every step: ``(right, gold, rank)``.

        ``right`` and ``gold`` are bool ``[n]`` (probabilities 1/2 and 1/3), ``rank`` is int64 ``[n]``
        in ``[0, 840)``; the spawn takes the ``rank % n_free``-th free slot. A method of its own so a
        test can substitute the reference's own draws and compare spawning steps exactly.
        """
        u = self._rand(n, 2)
        rank = torch.randint(SLOT_RANK_RANGE, (n,), generator=self.generator, device=self.device)
        return u[:, 0] < self.p.right, u[:, 1] < self.p.gold, rank

    def dynamics(self, state: GameState, actions: torch.Tensor  # type: ignore[override]
                 ) -> tuple[GameState, torch.Tensor, torch.Tensor]:
        k = self.k
        draw_right, draw_gold, draw_rank = self._spawn_draws(actions.shape[0])
        alive, x, right, gold = state["alive"], state["entity_x"], state["right"], state["gold"]
        spawn_speed, spawn_timer = state["spawn_speed"], state["spawn_timer"]
        move_speed, move_timer = state["move_speed"], state["move_timer"]
        ramp_timer, ramp_index = state["ramp_timer"], state["ramp_index"]

        # if(self.spawn_timer==0): self._spawn_entity(); self.spawn_timer = self.spawn_speed
        # _spawn_entity: slot = slot_options[randint(len(slot_options))], no spawn if every slot is taken;
        # the chosen slot is the free one with exactly ``rank`` free slots before it.
        spawn = spawn_timer == k.zero
        free = ~alive
        rank = draw_rank.unsqueeze(1) % free.sum(1, keepdim=True).clamp(min=1)
        new = free & (free.cumsum(1) == rank + k.one) & spawn.unsqueeze(1)
        alive = alive | new
        # self.entities[slot] = [x, slot+1, lr, is_gold] with x = 0 if lr else 9
        x = torch.where(new, torch.where(draw_right, k.zero, k.last_col).unsqueeze(1), x)
        right = torch.where(new, draw_right.unsqueeze(1), right)
        gold = torch.where(new, draw_gold.unsqueeze(1), gold)
        spawn_timer = torch.where(spawn, spawn_speed, spawn_timer)

        # l: player_x = max(0, player_x-1); r: min(9, player_x+1); u: player_y = max(1, player_y-1);
        # d: min(8, player_y+1)
        player_x = (state["player_x"] + self._dx.index_select(0, actions)).clamp(0, GRID - 1)
        player_y = (state["player_y"] + self._dy.index_select(0, actions)).clamp(TOP_ROW, BOTTOM_ROW)
        player_row = self._slot_rows == player_y.unsqueeze(1)  # [n, 8]: the one slot on the player's row

        # First loop: an entity on the player's cell is picked up (gold, r+=1) or ends the episode.
        hit = alive & player_row & (x == player_x.unsqueeze(1))
        picked = hit & gold
        terminal = (hit & ~gold).any(1)
        alive = alive & ~picked
        reward = picked.sum(1)

        # if(self.move_timer==0): move_timer = move_speed; every entity steps one cell its way, leaves
        # when off the grid, and is checked against the player again.
        move = move_timer == k.zero
        move_timer = torch.where(move, move_speed, move_timer)
        moving = alive & move.unsqueeze(1)
        x = torch.where(moving, x + torch.where(right, k.one, -k.one), x)
        alive = alive & (x >= k.zero) & (x <= k.last_col)
        hit = moving & alive & player_row & (x == player_x.unsqueeze(1))
        picked = hit & gold
        terminal = terminal | (hit & ~gold).any(1)
        alive = alive & ~picked
        reward = reward + picked.sum(1)

        spawn_timer = spawn_timer - k.one
        move_timer = move_timer - k.one

        # if spawn_speed>1 or move_speed>1:
        #     if ramp_timer>=0: ramp_timer-=1
        #     else: move_speed-=1 if move_speed>1 and ramp_index%2; spawn_speed-=1 if spawn_speed>1;
        #           ramp_index+=1; ramp_timer=ramp_interval
        rampable = (spawn_speed > k.one) | (move_speed > k.one)
        counting = rampable & (ramp_timer >= k.zero)
        fire = rampable & ~counting
        move_speed = move_speed - (fire & (move_speed > k.one) & (ramp_index % 2 == k.one)).long()
        spawn_speed = spawn_speed - (fire & (spawn_speed > k.one)).long()
        ramp_index = ramp_index + fire.long()
        ramp_timer = torch.where(fire, k.ramp_interval, ramp_timer - counting.long())

        next_state = {
            "player_x": player_x,
            "player_y": player_y,
            "alive": alive,
            "entity_x": x,
            "right": right,
            "gold": gold,
            "spawn_speed": spawn_speed,
            "spawn_timer": spawn_timer,
            "move_speed": move_speed,
            "move_timer": move_timer,
            "ramp_timer": ramp_timer,
            "ramp_index": ramp_index,
        }
        return next_state, reward.to(torch.float32), terminal

    def observe(self, state: GameState) -> torch.Tensor:  # type: ignore[override]
        alive, x = state["alive"], state["entity_x"]
        gold = state["gold"].unsqueeze(2)
        cols = self._cols
        image = self._image(x.shape[0])
        # state[player_y, player_x, player] = 1
        image[:, 0] = (cols.view(GRID, 1) == state["player_y"].view(-1, 1, 1)) & (
            cols == state["player_x"].view(-1, 1, 1)
        )
        # an entity at (slot+1, x) on the gold or enemy channel, its trail one cell behind it (if on the grid)
        at = alive.unsqueeze(2) & (cols == x.unsqueeze(2))
        behind = x + torch.where(state["right"], -self.k.one, self.k.one)
        entity_rows = slice(TOP_ROW, TOP_ROW + SLOTS)
        image[:, 1, entity_rows] = at & ~gold
        image[:, 2, entity_rows] = alive.unsqueeze(2) & (cols == behind.unsqueeze(2))
        image[:, 3, entity_rows] = at & gold
        return self._flat(image)
