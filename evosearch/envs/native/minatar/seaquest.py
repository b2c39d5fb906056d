"""MinAtar Seaquest as a batched torch environment.

Reproduces ``minatar`` 1.0.15's ``environments/seaquest.py`` with difficulty ramping on. The player's
two-cell submarine moves on rows 0-8 and fires bullets along its heading; enemy fish and enemy subs
(which shoot) cross rows 1-8; divers cross too and are picked up by touching them. Oxygen runs down
below the surface; surfacing with at least one diver refills it (and drops one diver, or all six for
a bonus of ``oxygen // 20``) and ramps the difficulty. Touching an enemy or an enemy bullet, running
out of oxygen or surfacing without a diver ends the episode.

The reference keeps variable-length Python lists; here each is a fixed set of slots with an
``alive`` mask (a slot's other fields mean nothing while it is dead). The capacities are the most
the game can ever hold, so a spawn never finds the slots full:

* **Friendly bullets, 2 slots** (``fb_*``), kept in list order (slot 0 the older). A bullet is fired
  at most every 5 steps (``shot_cool_down``) and moves one cell a step; the sub faces right only at
  ``x >= 1`` and left only at ``x <= 8``, so a bullet leaves the grid within 9 steps of being fired
  and is alive at the end of at most 8 steps: never three at once.
* **Divers, 2 slots** (``dv_*``), in list order (slot 0 the older). One spawns exactly every 30
  steps and moves every 6 (``diver_move_interval + 1``), so it leaves 59 steps after its spawn, before
  the spawn after next: at most 2 alive.
* **Enemies, 33 slots** (``en_*``) shared by fish and subs (``en_sub``), each with ``en_seq``, its
  spawn number: the reference's two lists are each in spawn order, so ``en_seq`` recovers both
  orders. At most one enemy spawns per step. An enemy spawned at move period ``m`` (``move_speed``)
  makes its first move after ``m`` steps and later ones at most 6 apart, so it is alive for at most 59
  step ends; with ``m = 2`` (which, once reached, stays) exactly 29. The period only drops below 3
  after 6 surfacings, while the spawn period is still at least 15, so at most 4 enemies spawned at a
  period of 3 or more can be alive (59-step window, spawns at least 15 apart), plus at most 29 spawned
  at period 2: 33.
* **Enemy bullets** as a count grid ``eb`` ``[n, 2 (0 = moving left, 1 = right), 10, 10]``: each
  bullet moves on its own, never interacts with another and can only end the episode, so the list's
  order is irrelevant and a grid of counts holds exactly the same information, with no capacity.

Order. The reference iterates each list newest first (``reversed``) and removes as it goes; the
order decides *which* entity a collision removes where several share a cell, which happens once the
periods are short (three enemies spawned on consecutive steps in one lane can share a cell). The
rules kept here, each the reference's:

* A friendly bullet (newest first) that moves onto enemies removes the *oldest fish* there, else the
  *oldest sub* there, and itself. Two bullets can only share a cell heading opposite ways; each then
  removes one enemy.
* An enemy that moves onto friendly bullets removes itself and the *older* bullet there; enemies are
  handled newest first (all subs, then enemy bullets, then all fish), so the newest mover onto the
  older bullet's cell takes it and the newest mover left on the other bullet's cell takes that one
  (the second newest when both bullets share the cell): two masked ``amax`` over the slots.
* A diver on (or moving onto) the player is picked up while fewer than 6 are on board, newest first.

``list.remove(x)`` removes the first element *equal* to ``x``, not ``x`` itself. Elements are never
equal (two enemies of a kind can only share a cell at different move timers; same-direction divers
and friendly bullets are always a cell or more apart) with one exception: a bullet fired right
behind the previous one (the sub having moved along with it every step) can move onto the cell the
older bullet has not left yet; if it hits an enemy there, the *older* bullet is removed and the newer
one moves on a second time. That enemy must have spawned there this very step (otherwise the older
bullet would have hit it), i.e. on an edge column, so the newer bullet's second move takes it off the
grid: both bullets go, as in the plain rule, and the outcome is the same.

Other quirks kept: a sub removed in a step (shot, or off the grid) still fires if its shot timer is
up, from where it ended (off-grid shots vanish at once); surfacing with six divers leaves
``diver_count`` at -1 (it is zeroed, then decremented), so later surfacings need no diver and count
further down, with an empty diver gauge; the episode's end never stops the step, so the terminal
step's rewards and observation include everything after the cause.

Randomness: the reference draws only when a spawn is due (enemy: ``rand() < 1/2`` for the side,
``rand() < 1/3`` for a sub, ``randint(1, 9)`` for the row, even when the spawn is then refused; diver:
side and row). Here every env draws all five on every step (:meth:`Seaquest._spawn_draws`). The
uniforms are float32 where numpy's are float64, which moves ``P(sub)`` from 1/3 by about 1e-8.
"""

from __future__ import annotations

import torch

from evosearch.envs.native.minatar.base import GRID, GameState, MinAtarEnv

MAX_OXYGEN = 200
INIT_SPAWN_SPEED = 20
DIVER_SPAWN_SPEED = 30
INIT_MOVE_INTERVAL = 5
SHOT_COOL_DOWN = 5
ENEMY_SHOT_INTERVAL = 10
DIVER_MOVE_INTERVAL = 5
MAX_DIVERS = 6
BULLET_SLOTS = 2  # see the module docstring for each capacity
DIVER_SLOTS = 2
ENEMY_SLOTS = 33
START_X = 5
SUB_BOTTOM_ROW = 8
SPAWN_ROWS = (1, 9)  # ``randint(low=1, high=9)``

# channels, minatar's order
SUB_FRONT, SUB_BACK, FRIENDLY_BULLET, TRAIL, ENEMY_BULLET, ENEMY_FISH, ENEMY_SUB, OXYGEN, DIVER_GAUGE, DIVER = range(10)


class Seaquest(MinAtarEnv):
    """Shoot fish and subs (+1 each), rescue divers and surface with them before the oxygen runs out."""

    env_id = "MinAtar/Seaquest-v1"
    channels = 10
    action_set = (0, 1, 2, 3, 4, 5)  # n l u r d f: minatar's minimal set for Seaquest is all six

    def setup(self) -> None:
        device = self.device
        self._cols = torch.arange(GRID, device=device)
        self._enemy_slots = torch.arange(ENEMY_SLOTS, device=device)
        self.k = self._constants(
            torch.int64,
            zero=0,
            one=1,
            two=2,
            grid=GRID,
            last_col=GRID - 1,
            max_oxygen=MAX_OXYGEN,
            max_divers=MAX_DIVERS,
            shot_cool_down=SHOT_COOL_DOWN,
            enemy_shot_interval=ENEMY_SHOT_INTERVAL,
            diver_move_interval=DIVER_MOVE_INTERVAL,
            diver_spawn_speed=DIVER_SPAWN_SPEED,
            bonus_divisor=MAX_OXYGEN // 10,
            never=2**62,  # larger than any spawn number
            enemy_fish=ENEMY_FISH,
            enemy_sub=ENEMY_SUB,
            spare=10 * GRID * GRID,  # observe's spare cell, past the image (channels * 100)
        )
        self.p = self._constants(torch.float32, right=1 / 2, sub=1 / 3)
        # observe's entity order: sub, 2 bullets, enemies, divers, sub back, trails of enemies and divers
        head = [SUB_FRONT] + [FRIENDLY_BULLET] * BULLET_SLOTS
        tail = [DIVER] * DIVER_SLOTS + [SUB_BACK] + [TRAIL] * (ENEMY_SLOTS + DIVER_SLOTS)
        self._head_channels = torch.tensor([head], device=device)
        self._tail_channels = torch.tensor([tail], device=device)
        self._true = torch.ones(1, 1, dtype=torch.bool, device=device)

    # ----------------------------------------------------------------- state

    def initial_state(self, n: int) -> GameState:
        """The reference's ``reset``: fixed, no randomness."""

        def full(value: int, dtype: torch.dtype = torch.int64) -> torch.Tensor:
            return torch.full((n,), value, dtype=dtype, device=self.device)

        def slots(count: int, dtype: torch.dtype = torch.int64) -> torch.Tensor:
            return self._zeros(n, count, dtype=dtype)

        return {
            "sub_x": full(START_X),
            "sub_y": full(0),
            "sub_or": full(False, torch.bool),  # heading right
            "oxygen": full(MAX_OXYGEN),
            "diver_count": full(0),
            "e_spawn_speed": full(INIT_SPAWN_SPEED),
            "e_spawn_timer": full(INIT_SPAWN_SPEED),
            "d_spawn_timer": full(DIVER_SPAWN_SPEED),
            "move_speed": full(INIT_MOVE_INTERVAL),
            "ramp_index": full(0),
            "shot_timer": full(0),
            "surface": full(True, torch.bool),
            # friendly bullets [x, y, right], slot 0 the older
            "fb_alive": slots(BULLET_SLOTS, torch.bool),
            "fb_x": slots(BULLET_SLOTS),
            "fb_y": slots(BULLET_SLOTS),
            "fb_right": slots(BULLET_SLOTS, torch.bool),
            # divers [x, y, right, move_timer], slot 0 the older
            "dv_alive": slots(DIVER_SLOTS, torch.bool),
            "dv_x": slots(DIVER_SLOTS),
            "dv_y": slots(DIVER_SLOTS),
            "dv_right": slots(DIVER_SLOTS, torch.bool),
            "dv_move": slots(DIVER_SLOTS),
            # fish [x, y, right, move_timer] and subs [..., shot_timer], any slot, ordered by en_seq
            "en_alive": slots(ENEMY_SLOTS, torch.bool),
            "en_sub": slots(ENEMY_SLOTS, torch.bool),
            "en_seq": slots(ENEMY_SLOTS),
            "en_x": slots(ENEMY_SLOTS),
            "en_y": slots(ENEMY_SLOTS),
            "en_right": slots(ENEMY_SLOTS, torch.bool),
            "en_move": slots(ENEMY_SLOTS),
            "en_shot": slots(ENEMY_SLOTS),
            # enemy bullets: how many are on each cell, per direction (0 = left, 1 = right)
            "eb": self._zeros(n, 2, GRID, GRID),
        }

    def _spawn_draws(self, n: int) -> dict[str, torch.Tensor]:
        """Everything a spawn needs, drawn for every env on every step (used only where one is due).

        ``enemy_right``/``enemy_sub``/``diver_right`` are bool ``[n]`` (probabilities 1/2, 1/3,
        1/2), ``enemy_y``/``diver_y`` int64 ``[n]`` in ``[1, 9)``. A method of its own so a test can
        substitute the reference's own draws and compare spawning steps exactly.
        """
        u = self._rand(n, 3)
        rows = self._randint(*SPAWN_ROWS, n, 2)
        return {
            "enemy_right": u[:, 0] < self.p.right,
            "enemy_sub": u[:, 1] < self.p.sub,
            "enemy_y": rows[:, 0],
            "diver_right": u[:, 2] < self.p.right,
            "diver_y": rows[:, 1],
        }

    # ----------------------------------------------------------------- helpers

    def _step_x(self, x: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        """``x += 1 if right else -1``."""
        return x + torch.where(right, self.k.one, -self.k.one)

    def _off_grid(self, x: torch.Tensor) -> torch.Tensor:
        return (x < self.k.zero) | (x > self.k.last_col)

    def _oldest(self, mask: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
        """One-hot ``[n, slots]``: the ``mask``ed slot with the smallest spawn number (none if no slot)."""
        first = torch.where(mask, seq, self.k.never).amin(1, keepdim=True)
        return mask & (seq == first)

    @staticmethod
    def _compact(fields: dict[str, torch.Tensor], alive_key: str) -> None:
        """Two slots in list order: move slot 1 into slot 0 where slot 0 died (in place in ``fields``)."""
        alive = fields[alive_key]
        shift = ~alive[:, 0] & alive[:, 1]
        for key, value in fields.items():
            first = torch.where(shift, value[:, 1], value[:, 0])
            second = value[:, 1] & ~shift if key == alive_key else value[:, 1]
            fields[key] = torch.stack((first, second), 1)

    def _newest(self, mask: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
        """One-hot ``[n, slots]``: the ``mask``ed slot with the largest spawn number (none if no slot)."""
        last = torch.where(mask, seq, -self.k.one).amax(1, keepdim=True)
        return mask & (seq == last)

    def _take_bullets(self, movers: torch.Tensor, x: torch.Tensor, y: torch.Tensor, seq: torch.Tensor,
                      fb: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Enemies that moved onto friendly bullets: ``(killed [n, E], bullet 0 taken, bullet 1 taken)``.

        The reference handles the movers one at a time, newest first, each taking the first (older)
        bullet left on its cell. So the newest mover on bullet 0's cell takes bullet 0, and the newest
        mover left on bullet 1's cell takes bullet 1: when both bullets share a cell, that is the
        second newest mover there, as in the reference; otherwise the first newest of its own cell.
        """
        on0 = movers & fb["fb_alive"][:, :1] & (x == fb["fb_x"][:, :1]) & (y == fb["fb_y"][:, :1])
        on1 = movers & fb["fb_alive"][:, 1:] & (x == fb["fb_x"][:, 1:]) & (y == fb["fb_y"][:, 1:])
        take0 = self._newest(on0, seq)
        take1 = self._newest(on1 & ~take0, seq)
        return take0 | take1, take0.any(1), take1.any(1)

    # ----------------------------------------------------------------- the game

    def dynamics(self, state: GameState, actions: torch.Tensor  # type: ignore[override]
                 ) -> tuple[GameState, torch.Tensor, torch.Tensor]:
        k = self.k
        n = actions.shape[0]
        draws = self._spawn_draws(n)
        s = dict(state)
        sub_x, sub_y, sub_or = s["sub_x"], s["sub_y"], s["sub_or"]
        en_alive, en_sub, en_seq = s["en_alive"], s["en_sub"], s["en_seq"]
        en_x, en_y, en_right, en_move, en_shot = s["en_x"], s["en_y"], s["en_right"], s["en_move"], s["en_shot"]
        move_speed = s["move_speed"]

        # ---- if(e_spawn_timer==0): _spawn_enemy(); e_spawn_timer = e_spawn_speed
        # _spawn_enemy: no spawn if an enemy in row y heads the other way; else append to e_subs / e_fish
        spawn = s["e_spawn_timer"] == k.zero
        right, y = draws["enemy_right"].unsqueeze(1), draws["enemy_y"].unsqueeze(1)
        blocked = (en_alive & (en_y == y) & (en_right != right)).any(1)
        free = ~en_alive
        slot = free.long().argmax(1, keepdim=True)  # the first free slot (one always is: see capacity)
        new = (self._enemy_slots == slot) & (spawn & ~blocked & free.any(1)).unsqueeze(1)
        next_seq = torch.where(en_alive, en_seq, -k.one).amax(1, keepdim=True) + k.one
        en_alive = en_alive | new
        en_seq = torch.where(new, next_seq, en_seq)
        en_sub = torch.where(new, draws["enemy_sub"].unsqueeze(1), en_sub)
        en_x = torch.where(new, torch.where(right, k.zero, k.last_col), en_x)
        en_y = torch.where(new, y, en_y)
        en_right = torch.where(new, right, en_right)
        en_move = torch.where(new, move_speed.unsqueeze(1), en_move)
        en_shot = torch.where(new, k.enemy_shot_interval, en_shot)
        e_spawn_timer = torch.where(spawn, s["e_spawn_speed"], s["e_spawn_timer"])

        # ---- if(d_spawn_timer==0): _spawn_diver(); d_spawn_timer = diver_spawn_speed (appended)
        dv = {key: s[key] for key in ("dv_alive", "dv_x", "dv_y", "dv_right", "dv_move")}
        spawn = s["d_spawn_timer"] == k.zero
        slot_one = dv["dv_alive"][:, 0]  # slots are compact: append after the one alive, if any
        new = torch.stack((~slot_one, slot_one & ~dv["dv_alive"][:, 1]), 1) & spawn.unsqueeze(1)
        right = draws["diver_right"].unsqueeze(1)
        dv["dv_alive"] = dv["dv_alive"] | new
        dv["dv_x"] = torch.where(new, torch.where(right, k.zero, k.last_col), dv["dv_x"])
        dv["dv_y"] = torch.where(new, draws["diver_y"].unsqueeze(1), dv["dv_y"])
        dv["dv_right"] = torch.where(new, right, dv["dv_right"])
        dv["dv_move"] = torch.where(new, k.diver_move_interval, dv["dv_move"])
        d_spawn_timer = torch.where(spawn, k.diver_spawn_speed, s["d_spawn_timer"])

        # ---- the player: f (if the gun is ready) appends a bullet at the sub; else l r u d move it
        fb = {key: s[key] for key in ("fb_alive", "fb_x", "fb_y", "fb_right")}
        fire = (actions == 5) & (s["shot_timer"] == k.zero)
        slot_one = fb["fb_alive"][:, 0]
        new = torch.stack((~slot_one, slot_one & ~fb["fb_alive"][:, 1]), 1) & fire.unsqueeze(1)
        fb["fb_alive"] = fb["fb_alive"] | new
        fb["fb_x"] = torch.where(new, sub_x.unsqueeze(1), fb["fb_x"])
        fb["fb_y"] = torch.where(new, sub_y.unsqueeze(1), fb["fb_y"])
        fb["fb_right"] = torch.where(new, sub_or.unsqueeze(1), fb["fb_right"])
        shot_timer = torch.where(fire, k.shot_cool_down, s["shot_timer"])
        left, right = actions == 1, actions == 3
        sub_x = torch.where(left, (sub_x - k.one).clamp(min=0), torch.where(right, (sub_x + k.one).clamp(max=9), sub_x))
        sub_or = torch.where(left, False, torch.where(right, True, sub_or))
        sub_y = torch.where(actions == 2, (sub_y - k.one).clamp(min=0), sub_y)
        sub_y = torch.where(actions == 4, (sub_y + k.one).clamp(max=SUB_BOTTOM_ROW), sub_y)
        px, py = sub_x.unsqueeze(1), sub_y.unsqueeze(1)

        # ---- friendly bullets, newest first: move; off the grid -> gone; else remove the first fish on
        # the cell, else the first sub on it, and the bullet (r += 1)
        reward = k.zero.expand(n)
        fb["fb_x"] = torch.where(fb["fb_alive"], self._step_x(fb["fb_x"], fb["fb_right"]), fb["fb_x"])
        fb["fb_alive"] = fb["fb_alive"] & ~self._off_grid(fb["fb_x"])
        hits = []
        for b in (1, 0):
            on_cell = en_alive & (en_x == fb["fb_x"][:, b:b + 1]) & (en_y == fb["fb_y"][:, b:b + 1])
            on_cell = on_cell & fb["fb_alive"][:, b:b + 1]
            fish = on_cell & ~en_sub
            target = torch.where(fish.any(1, keepdim=True), self._oldest(fish, en_seq), self._oldest(on_cell, en_seq))
            en_alive = en_alive & ~target
            hits.append(target.any(1))
            reward = reward + hits[-1]
        fb["fb_alive"] = fb["fb_alive"] & ~torch.stack((hits[1], hits[0]), 1)

        # ---- divers, newest first: picked up when on the player with fewer than 6 aboard; else move
        # every diver_move_interval + 1 steps, leave off the grid, or get picked up where they arrive
        diver_count = s["diver_count"]
        alive_cols, x_cols, move_cols = [], [], []
        for d in (1, 0):
            alive, x, y = dv["dv_alive"][:, d], dv["dv_x"][:, d], dv["dv_y"][:, d]
            move = dv["dv_move"][:, d]
            picked = alive & (x == sub_x) & (y == sub_y) & (diver_count < k.max_divers)
            diver_count = diver_count + picked
            alive = alive & ~picked
            moving = alive & (move == k.zero)
            move = torch.where(moving, k.diver_move_interval, torch.where(alive, move - k.one, move))
            x = torch.where(moving, self._step_x(x, dv["dv_right"][:, d]), x)
            alive = alive & ~self._off_grid(x)
            picked = moving & alive & (x == sub_x) & (y == sub_y) & (diver_count < k.max_divers)
            diver_count = diver_count + picked
            alive_cols.append(alive & ~picked)
            x_cols.append(x)
            move_cols.append(move)
        dv["dv_alive"] = torch.stack(alive_cols[::-1], 1)
        dv["dv_x"] = torch.stack(x_cols[::-1], 1)
        dv["dv_move"] = torch.stack(move_cols[::-1], 1)

        # ---- enemy subs, newest first: touching the player (before or after moving) ends the episode;
        # move every move_speed + 1 steps (the timer restarts at the *current* move_speed), leave off the
        # grid, or take a friendly bullet where they arrive (r += 1); fire every enemy_shot_interval + 1
        # steps from where they are, even if removed this step
        terminal = torch.zeros(n, dtype=torch.bool, device=self.device)
        subs = en_alive & en_sub
        terminal = terminal | (subs & (en_x == px) & (en_y == py)).any(1)
        moving = subs & (en_move == k.zero)
        en_move = torch.where(moving, move_speed.unsqueeze(1), torch.where(subs, en_move - k.one, en_move))
        en_x = torch.where(moving, self._step_x(en_x, en_right), en_x)
        gone = moving & self._off_grid(en_x)
        crash = moving & ~gone & (en_x == px) & (en_y == py)
        terminal = terminal | crash.any(1)
        killed, took0, took1 = self._take_bullets(moving & ~gone & ~crash, en_x, en_y, en_seq, fb)
        fb["fb_alive"] = fb["fb_alive"] & ~torch.stack((took0, took1), 1)
        reward = reward + killed.sum(1)
        shoots = subs & (en_shot == k.zero)
        en_shot = torch.where(shoots, k.enemy_shot_interval, torch.where(subs, en_shot - k.one, en_shot))
        en_alive = en_alive & ~gone & ~killed
        # e_bullets += [[x, y, right]]; from off the grid a shot leaves at once without touching anything
        shots = shoots & ~self._off_grid(en_x)
        index = (en_right.long() * GRID + en_y) * GRID + en_x.clamp(0, GRID - 1)
        eb = s["eb"].reshape(n, 2 * GRID * GRID).scatter_add(1, index, shots.long()).view(n, 2, GRID, GRID)

        # ---- enemy bullets: on the player before or after moving ends the episode; off the grid: gone
        player = (sub_y * k.grid + sub_x).unsqueeze(1).unsqueeze(1).expand(n, 2, 1)
        terminal = terminal | (eb.reshape(n, 2, -1).gather(2, player) > 0).any(1).squeeze(1)
        zero_col = torch.zeros_like(eb[:, 0, :, :1])
        eb = torch.stack((torch.cat((eb[:, 0, :, 1:], zero_col), 2), torch.cat((zero_col, eb[:, 1, :, :-1]), 2)), 1)
        terminal = terminal | (eb.reshape(n, 2, -1).gather(2, player) > 0).any(1).squeeze(1)

        # ---- enemy fish, newest first: as the subs, without shooting
        fish = en_alive & ~en_sub
        terminal = terminal | (fish & (en_x == px) & (en_y == py)).any(1)
        moving = fish & (en_move == k.zero)
        en_move = torch.where(moving, move_speed.unsqueeze(1), torch.where(fish, en_move - k.one, en_move))
        en_x = torch.where(moving, self._step_x(en_x, en_right), en_x)
        gone = moving & self._off_grid(en_x)
        crash = moving & ~gone & (en_x == px) & (en_y == py)
        terminal = terminal | crash.any(1)
        killed, took0, took1 = self._take_bullets(moving & ~gone & ~crash, en_x, en_y, en_seq, fb)
        fb["fb_alive"] = fb["fb_alive"] & ~torch.stack((took0, took1), 1)
        reward = reward + killed.sum(1)
        en_alive = en_alive & ~gone & ~killed

        # ---- timers, oxygen, surfacing
        e_spawn_timer = e_spawn_timer - (e_spawn_timer > k.zero).long()
        d_spawn_timer = d_spawn_timer - (d_spawn_timer > k.zero).long()
        shot_timer = shot_timer - (shot_timer > k.zero).long()
        oxygen = s["oxygen"]
        terminal = terminal | (oxygen <= k.zero)
        below = sub_y > k.zero
        oxygen = torch.where(below, oxygen - k.one, oxygen)
        arriving = ~below & ~s["surface"]
        terminal = terminal | (arriving & (diver_count == k.zero))
        surfaced = arriving & (diver_count != k.zero)
        # _surface: six divers pay oxygen*10//max_oxygen and are all dropped (count 0, then -1 below)
        full = surfaced & (diver_count == k.max_divers)
        reward = reward + torch.where(full, torch.div(oxygen, k.bonus_divisor, rounding_mode="floor"), k.zero)
        diver_count = torch.where(full, k.zero, diver_count) - surfaced.long()
        oxygen = torch.where(surfaced, k.max_oxygen, oxygen)
        surface = (s["surface"] & ~below) | surfaced
        # the ramp: while either can still drop, the spawn period drops, the move period every other time
        e_spawn_speed = s["e_spawn_speed"]
        ramp = surfaced & ((e_spawn_speed > k.one) | (move_speed > k.two))
        ramp_index = s["ramp_index"]
        move_speed = move_speed - (ramp & (move_speed > k.two) & (ramp_index % k.two == k.one)).long()
        e_spawn_speed = e_spawn_speed - (ramp & (e_spawn_speed > k.one)).long()
        ramp_index = ramp_index + ramp.long()

        self._compact(fb, "fb_alive")
        self._compact(dv, "dv_alive")
        next_state = {
            "sub_x": sub_x, "sub_y": sub_y, "sub_or": sub_or, "oxygen": oxygen, "diver_count": diver_count,
            "e_spawn_speed": e_spawn_speed, "e_spawn_timer": e_spawn_timer, "d_spawn_timer": d_spawn_timer,
            "move_speed": move_speed, "ramp_index": ramp_index, "shot_timer": shot_timer, "surface": surface,
            **fb, **dv,
            "en_alive": en_alive, "en_sub": en_sub, "en_seq": en_seq, "en_x": en_x, "en_y": en_y,
            "en_right": en_right, "en_move": en_move, "en_shot": en_shot, "eb": eb,
        }
        return next_state, reward.to(torch.float32), terminal

    # ----------------------------------------------------------------- observation

    def observe(self, state: GameState) -> torch.Tensor:  # type: ignore[override]
        """The reference's ``state()``: every entity painted with one ``scatter`` into the flat image.

        Each entity becomes the flat index ``channel * 100 + y * 10 + x``; dead slots and cells off the
        grid (only a trail can fall there) go to one spare cell past the image, dropped at the end.
        """
        k = self.k
        n = state["sub_x"].shape[0]
        en_alive, en_sub, dv_alive = state["en_alive"], state["en_sub"], state["dv_alive"]
        en_x, en_y, dv_x, dv_y = state["en_x"], state["en_y"], state["dv_x"], state["dv_y"]
        sub_x, sub_y = state["sub_x"].unsqueeze(1), state["sub_y"].unsqueeze(1)
        # back_x = sub_x-1 if sub_or else sub_x+1: always on the grid (the sub faces right only at
        # x >= 1, left only at x <= 8); trails: the cell behind each enemy and diver, when on the grid
        right = torch.cat((state["sub_or"].unsqueeze(1), state["en_right"], state["dv_right"]), 1)
        behind = self._step_x(torch.cat((sub_x, en_x, dv_x), 1), ~right)
        x = torch.cat((sub_x, state["fb_x"], en_x, dv_x, behind), 1)
        y = torch.cat((sub_y, state["fb_y"], en_y, dv_y, sub_y, en_y, dv_y), 1)
        enemy_channel = torch.where(en_sub, k.enemy_sub, k.enemy_fish)
        channel = torch.cat((self._head_channels.expand(n, -1), enemy_channel, self._tail_channels.expand(n, -1)), 1)
        alive = torch.cat((self._true.expand(n, 1), state["fb_alive"], en_alive, dv_alive,
                           self._true.expand(n, 1), en_alive, dv_alive), 1)
        on = alive & (x >= k.zero) & (x <= k.last_col)
        index = torch.where(on, (channel * k.grid + y) * k.grid + x, k.spare)
        image = torch.zeros(n, self.obs_dim + 1, dtype=torch.bool, device=self.device)
        image.scatter_(1, index, True)
        image = image[:, : self.obs_dim].view(n, self.channels, GRID * GRID)
        image[:, ENEMY_BULLET] = (state["eb"] > 0).any(1).view(n, GRID * GRID)
        # row 9: oxygen gauge in columns [0, max(0, oxygen)*10//max_oxygen), divers in [9-count, 9)
        bottom = slice((GRID - 1) * GRID, GRID * GRID)
        oxygen_cols = torch.div(state["oxygen"].clamp(min=0), k.bonus_divisor, rounding_mode="floor").unsqueeze(1)
        image[:, OXYGEN, bottom] = self._cols < oxygen_cols
        diver_count = state["diver_count"].unsqueeze(1)
        image[:, DIVER_GAUGE, bottom] = (self._cols >= k.last_col - diver_count) & (self._cols < k.last_col)
        return self._flat(image)
