"""MinAtar Space Invaders as a batched torch environment.

Reproduces ``minatar`` 1.0.15's ``environments/space_invaders.py`` with difficulty ramping on. The
cannon sits on row 9 and shoots upward (one shot per 5 steps); a 4x6 block of aliens marches sideways,
steps down and turns at an edge, and the alien nearest the cannon shoots every 10 steps. Each alien
shot down gives +1; an alien or an alien's bullet on the cannon's cell ends the episode, and so does
an alien in row 9 when the block turns. The block's move period is ``min(aliens left, interval)``, so
a thin block speeds up; clearing a wave brings a new one and (down to 6) shortens the interval.

The reference's boolean-valued float maps become bool ``[n, 10, 10]`` tensors, its ``np.roll`` of a
map becomes a ``torch.cat`` with a zero row where the reference zeroes the row that wrapped, and its
``if``s become ``torch.where`` over per-env masks. The game has no randomness of its own: only the
sticky actions of :class:`MinAtarEnv` draw.

Quirks of the reference kept as they are:

* A shot is placed on row 9 and the bullets move in the same step, so it shows on row 8 at once.
* Bullets and aliens only collide where they share a cell after both moved: an alien stepping down
  onto the row a bullet just left swaps places with it unharmed. Alien bullets pass through the
  cannon's bullets.
* The block moving down uses ``np.roll`` without clearing the wrapped row, so aliens in row 9 would
  reappear in row 0; that only happens in a step that ends the episode.
* The shooting alien is the lowest one in the column nearest the cannon, a tie going to the left
  column (a stable sort of ``range(10)`` by distance); its bullet starts on the alien's own cell. The
  reference would crash with no alien left, which cannot happen (a new wave appears in the same step
  the last alien dies); here that case would shoot from (0, 0).
* Neither the direction nor the move timer resets with a new wave.
"""

from __future__ import annotations

import torch

from evosearch.envs.native.minatar.base import GRID, GameState, MinAtarEnv

SHOT_COOL_DOWN = 5
ENEMY_MOVE_INTERVAL = 12
ENEMY_SHOT_INTERVAL = 10
MIN_MOVE_INTERVAL = 6  # ramping stops once a cleared wave finds the interval at this
START_POS = 5
FIRE = 5  # MinAtar's 'f'
WAVE_ROWS, WAVE_COLS = slice(0, 4), slice(2, 8)


class SpaceInvaders(MinAtarEnv):
    """Shoot down the aliens (+1 each) before they or their bullets reach the cannon."""

    env_id = "MinAtar/SpaceInvaders-v1"
    channels = 6  # cannon, alien, alien_left, alien_right, friendly_bullet, enemy_bullet (minatar's order)
    action_set = (0, 1, 3, 5)  # n l r f

    def setup(self) -> None:
        device = self.device
        # per MinAtar action n l u r d f: the cannon's step ('f' only shoots)
        self._dx = torch.tensor([0, -1, 0, 1, 0, 0], device=device)
        self._cols = torch.arange(GRID, device=device)
        wave = torch.zeros(GRID, GRID, dtype=torch.bool, device=device)
        wave[WAVE_ROWS, WAVE_COLS] = True
        self._wave = wave
        self._bottom = self._cols == GRID - 1  # [10] over rows: the cannon's row
        self.k = self._constants(
            torch.int64,
            zero=0,
            one=1,
            cool_down=SHOT_COOL_DOWN,
            shot_interval=ENEMY_SHOT_INTERVAL,
            min_interval=MIN_MOVE_INTERVAL,
            no_column=4 * GRID,  # sorts after every column in _nearest_alien's order
        )

    def initial_state(self, n: int) -> GameState:
        def full(value: int) -> torch.Tensor:
            return torch.full((n,), value, dtype=torch.int64, device=self.device)

        def empty() -> torch.Tensor:
            return self._zeros(n, GRID, GRID, dtype=torch.bool)

        return {
            "pos": full(START_POS),
            "aliens": self._wave.expand(n, GRID, GRID).clone(),
            "friendly_bullets": empty(),
            "enemy_bullets": empty(),
            "alien_dir": full(-1),
            "enemy_move_interval": full(ENEMY_MOVE_INTERVAL),
            "alien_move_timer": full(ENEMY_MOVE_INTERVAL),
            "alien_shot_timer": full(ENEMY_SHOT_INTERVAL),
            "ramp_index": full(0),
            "shot_timer": full(0),
        }

    def dynamics(self, state: GameState, actions: torch.Tensor  # type: ignore[override]
                 ) -> tuple[GameState, torch.Tensor, torch.Tensor]:
        k = self.k
        cols = self._cols
        aliens, friendly, enemy = state["aliens"], state["friendly_bullets"], state["enemy_bullets"]
        alien_dir, interval = state["alien_dir"], state["enemy_move_interval"]
        move_timer, alien_shot_timer = state["alien_move_timer"], state["alien_shot_timer"]
        shot_timer = state["shot_timer"]
        no_row = torch.zeros_like(friendly[:, :1])

        # if(a=='f' and self.shot_timer == 0): f_bullet_map[9,pos]=1; shot_timer=shot_cool_down
        # elif(a=='l'): pos = max(0, pos-1)  elif(a=='r'): pos = min(9, pos+1)
        fire = (actions == FIRE) & (shot_timer == k.zero)
        shot_timer = torch.where(fire, k.cool_down, shot_timer)
        pos = (state["pos"] + self._dx.index_select(0, actions)).clamp(0, GRID - 1)
        at_pos = cols == pos.unsqueeze(1)  # [n, 10]: the cannon's column
        # f_bullet_map = np.roll(f_bullet_map, -1, axis=0); f_bullet_map[9,:] = 0  (the new shot on row 8)
        shot_row = friendly[:, GRID - 1] | (fire.unsqueeze(1) & at_pos)
        friendly = torch.cat([friendly[:, 1:GRID - 1], shot_row.unsqueeze(1), no_row], dim=1)
        # e_bullet_map = np.roll(e_bullet_map, 1, axis=0); e_bullet_map[0,:] = 0
        enemy = torch.cat([no_row, enemy[:, :GRID - 1]], dim=1)
        # if(e_bullet_map[9,pos]): terminal;  if(alien_map[9,pos]): terminal
        terminal = ((enemy[:, GRID - 1] | aliens[:, GRID - 1]) & at_pos).any(1)

        # if(alien_move_timer==0): alien_move_timer = min(count_nonzero(alien_map), enemy_move_interval)
        #   at an edge (alien in column 0 going left or in column 9 going right): turn, end the episode
        #   if an alien is in row 9, roll the block down a row; else roll it a column along alien_dir;
        #   then if(alien_map[9,pos]): terminal
        move = move_timer == k.zero
        move_timer = torch.where(move, torch.minimum(aliens.sum((1, 2)), interval), move_timer)
        going_right = alien_dir > k.zero
        at_edge = torch.where(going_right, aliens[:, :, GRID - 1].any(1), aliens[:, :, 0].any(1))
        turn = move & at_edge
        along = move & ~at_edge
        terminal = terminal | (turn & aliens[:, GRID - 1].any(1))
        alien_dir = torch.where(turn, -alien_dir, alien_dir)
        sideways = torch.where(going_right.view(-1, 1, 1), aliens.roll(1, 2), aliens.roll(-1, 2))
        aliens = torch.where(turn.view(-1, 1, 1), aliens.roll(1, 1), aliens)
        aliens = torch.where(along.view(-1, 1, 1), sideways, aliens)
        terminal = terminal | (move & (aliens[:, GRID - 1] & at_pos).any(1))

        # if(alien_shot_timer==0): alien_shot_timer = enemy_shot_interval; a bullet on the cell of
        # _nearest_alien(pos): the lowest alien of the first column with one, columns sorted (stably) by
        # their distance to the cannon
        shoot = alien_shot_timer == k.zero
        alien_shot_timer = torch.where(shoot, k.shot_interval, alien_shot_timer)
        offset = cols - pos.unsqueeze(1)
        order = offset.abs() * 2 + (offset > k.zero).long()  # the sort's rank of each column
        column = torch.where(aliens.any(1), order, k.no_column).argmin(1, keepdim=True)  # [n, 1]
        in_column = aliens.gather(2, column.unsqueeze(1).expand(-1, GRID, 1)).squeeze(2)  # [n, 10] rows
        row = (in_column * cols).amax(1, keepdim=True)  # the lowest alien's row (0 when none)
        enemy = enemy | (shoot.view(-1, 1, 1) & (cols == row).unsqueeze(2) & (cols == column).unsqueeze(1))

        # kill_locations = alien_map & f_bullet_map: +1 each, both removed
        kill = aliens & friendly
        reward = kill.sum((1, 2))
        aliens = aliens & ~kill
        friendly = friendly & ~kill

        # shot_timer -= shot_timer>0; alien_move_timer-=1; alien_shot_timer-=1
        shot_timer = shot_timer - (shot_timer > k.zero).long()
        move_timer = move_timer - k.one
        alien_shot_timer = alien_shot_timer - k.one

        # if(count_nonzero(alien_map)==0): if enemy_move_interval>6: interval-=1, ramp_index+=1;
        # alien_map[0:4,2:8] = 1
        cleared = ~aliens.any(2).any(1)
        ramp = (cleared & (interval > k.min_interval)).long()
        aliens = aliens | (cleared.view(-1, 1, 1) & self._wave)

        next_state = {
            "pos": pos,
            "aliens": aliens,
            "friendly_bullets": friendly,
            "enemy_bullets": enemy,
            "alien_dir": alien_dir,
            "enemy_move_interval": interval - ramp,
            "alien_move_timer": move_timer,
            "alien_shot_timer": alien_shot_timer,
            "ramp_index": state["ramp_index"] + ramp,
            "shot_timer": shot_timer,
        }
        return next_state, reward.to(torch.float32), terminal

    def observe(self, state: GameState) -> torch.Tensor:  # type: ignore[override]
        aliens = state["aliens"]
        left = (state["alien_dir"] < self.k.zero).view(-1, 1, 1)
        cannon = self._bottom.view(1, GRID, 1) & (self._cols == state["pos"].view(-1, 1, 1))
        # state[9,pos,cannon]=1; alien; alien_left if alien_dir<0 else alien_right; friendly; enemy bullets
        image = torch.stack(
            [cannon, aliens, aliens & left, aliens & ~left, state["friendly_bullets"], state["enemy_bullets"]],
            dim=1,
        )
        return self._flat(image)
