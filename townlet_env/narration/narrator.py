"""The narrator: an attachment that turns each tick's events and tie changes into lines.

``Narrator(env)`` attaches to a town as ``"narration"``. After every tick it reads
``env.last_events`` (conflicts, social moments, perturbations, arrivals, departures,
faints) and compares the relationship store with the last tick's (a tie's trust or
rivalry crossing its threshold upward is a friendship or a rivalry), offers the candidate
lines to the :class:`~townlet_env.narration.throttle.Throttle` (priority lines first, then
in event order) and keeps the emitted ones: ``lines`` (this tick's) and ``history`` (the
last ``narration.history``). It only reads the town: attaching it never changes what the
town does. Its state (throttle memory, the tie baseline, the lines) travels in snapshots.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from townlet_env.config import NEEDS, TICKS_PER_DAY
from townlet_env.narration.config import CATEGORY_OF, NarrationConfig
from townlet_env.narration.templates import load_templates
from townlet_env.narration.throttle import Throttle
from townlet_env.world.events import EventKind

STATE_FORMAT = 1
#: Events told as lines, by the line kind they become (perturbation starts are handled apart).
EVENT_LINES: dict[EventKind, str] = {
    EventKind.QUEUE_CONFLICT: "queue_conflict",
    EventKind.QUEUE_CUT_IN: "queue_cut_in",
    EventKind.OBJECT_BLOCKED: "object_blocked",
    EventKind.SHARED_MEAL: "shared_meal",
    EventKind.COWORKER_HELPED: "coworker_helped",
    EventKind.SHIFT_COVERED: "shift_covered",
    EventKind.QUEUE_HANDOVER: "queue_handover",
    EventKind.CHAT_BLOCKED: "chat_blocked",
    EventKind.PERTURBATION_END: "perturbation_end",
    EventKind.RESPAWN: "arrival",
    EventKind.ARRIVAL: "arrival",
    EventKind.EVICTION: "departure",
    EventKind.DEPARTURE: "departure",
    EventKind.FAINT: "faint",
}


@dataclass(frozen=True)
class Line:
    """One narration line as readers get it (telemetry, the console, snapshots)."""

    tick: int
    kind: str  #: a :data:`~townlet_env.narration.config.LineKind`
    category: str  #: its throttle category
    text: str
    agents: tuple[str, ...]  #: the seats it is about (``agent_3``), in the line's order
    priority: bool

    def to_json(self) -> dict[str, Any]:
        """The line as a JSON object (``agents`` a list)."""
        out = asdict(self)
        out["agents"] = list(self.agents)
        return out

    def __str__(self) -> str:
        """``day 1 07:32  text`` (day 1 starts at tick 0)."""
        day, minute = divmod(self.tick, TICKS_PER_DAY)
        return f"day {day + 1} {minute // 60:02d}:{minute % 60:02d}  {self.text}"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Line:
        return cls(
            int(data["tick"]),
            str(data["kind"]),
            str(data["category"]),
            str(data["text"]),
            tuple(str(a) for a in data["agents"]),
            bool(data["priority"]),
        )


@dataclass(frozen=True)
class _Candidate:
    kind: str
    seats: tuple[int, ...]
    obj: int = -1
    value: int = 0


class Narrator:
    """Tells what happens in a town, within the throttle's limits; attaches as ``"narration"``.

    Args:
        env: a Townlet env (wrapped or not).
        config: the section; default: the town config's ``narration``.

    Attributes:
        lines: the lines emitted at the last tick narrated (a tuple, fresh each tick).
        history: the most recent lines, oldest first.
        throttle: the throttle (``emitted`` and ``dropped`` count what it decided).

    """

    def __init__(self, env: Any, config: NarrationConfig | None = None) -> None:
        town = env.unwrapped
        self.config = config if config is not None else town.config.narration
        self.seats: tuple[str, ...] = tuple(town.possible_agents)
        self.templates = load_templates(self.config.templates, self.seats)
        self.throttle = Throttle(self.config.throttle)
        self._priority = frozenset(self.config.throttle.priority)
        self._object_names = tuple(town.rules.manifest.object_types[int(t)] for t in town.rules.town.obj_type)
        self.lines: tuple[Line, ...] = ()
        self.history: deque[Line] = deque(maxlen=self.config.history)
        self._tick = -1
        self._baseline(town.world)
        town.attachments.attach("narration", self)

    def _baseline(self, world: Any) -> None:
        self._tie_other = world.tie_other.copy()
        self._tie_vals = world.tie_vals.copy()

    # --- hooks -------------------------------------------------------------------------------
    def after_reset(self, env: Any) -> None:
        """A new episode: its clock starts again, so the throttle forgets its ticks."""
        self.throttle.reset()
        self._baseline(env.world)
        self.lines = ()
        self._tick = env.world.tick

    def after_step(self, env: Any) -> None:
        self.update(env)

    def update(self, env: Any) -> tuple[Line, ...]:
        """Narrate the tick that just ran, once (later calls in the same tick return its lines).

        The telemetry publisher calls it too, so its frames carry the tick's lines whichever
        of the two attached first.
        """
        world = env.world
        if world.tick == self._tick:
            return self.lines
        self._tick = world.tick
        candidates = self._from_events(env.last_events) + self._from_ties(world)
        candidates.sort(key=lambda c: c.kind not in self._priority)  # stable: priority first
        lines = []
        for c in candidates:
            line = self._offer(world.tick, c)
            if line is not None:
                lines.append(line)
        self.lines = tuple(lines)
        self.history.extend(lines)
        return self.lines

    # --- candidates --------------------------------------------------------------------------
    def _from_events(self, events: Any) -> list[_Candidate]:
        out = []
        for e in events:
            if e.kind == EventKind.PERTURBATION_START:
                kind = "perturbation_targeted" if e.agent >= 0 else "perturbation_start"
                out.append(_Candidate(kind, (e.agent,) if e.agent >= 0 else (), value=int(e.value)))
            elif e.kind == EventKind.PERTURBATION_END:
                out.append(_Candidate("perturbation_end", (), value=int(e.value)))
            elif e.kind in EVENT_LINES:
                seats = (e.agent,) if e.other < 0 else (e.agent, e.other)
                out.append(_Candidate(EVENT_LINES[e.kind], seats, e.obj, int(e.value)))
        return out

    def _from_ties(self, world: Any) -> list[_Candidate]:
        """Ties whose trust or rivalry crossed its threshold upward since the last tick."""
        other, vals = world.tie_other, world.tie_vals
        if other.tobytes() == self._tie_other.tobytes() and vals.tobytes() == self._tie_vals.tobytes():
            return []  # most ticks: no tie moved (a byte compare is far cheaper than array reductions)
        moved = (other != self._tie_other).any(axis=1) | (vals != self._tie_vals).any(axis=(1, 2))
        out = []
        trust_at, rivalry_at = self.config.friendship_trust, self.config.rivalry
        for i in np.flatnonzero(moved).tolist():
            before = {
                o: (float(v[0]), float(v[2]))
                for o, v in zip(self._tie_other[i].tolist(), self._tie_vals[i], strict=True)
                if o >= 0
            }
            for o, v in zip(other[i].tolist(), vals[i].tolist(), strict=True):
                if o < 0:
                    continue
                trust0, rivalry0 = before.get(o, (0.0, 0.0))
                if trust0 < trust_at <= v[0]:
                    out.append(_Candidate("friendship", (i, o)))
                if rivalry0 < rivalry_at <= v[2]:
                    out.append(_Candidate("rivalry", (i, o)))
        self._baseline(world)
        return out

    def _offer(self, tick: int, c: _Candidate) -> Line | None:
        names = [self.seats[s] for s in c.seats]
        extra = f"{c.value}:" if c.kind.startswith("perturbation") else ""
        key = f"{c.kind}:{extra}{','.join(sorted(names))}"
        category = CATEGORY_OF[c.kind]
        priority = c.kind in self._priority
        if self.throttle.offer(tick, key, category, priority) is not None:
            return None
        fields = {
            "agent": self.templates.name(c.seats[0]) if c.seats else "someone",
            "other": self.templates.name(c.seats[1]) if len(c.seats) > 1 else "someone",
            "object": self._object_names[c.obj] if c.obj >= 0 else "shared spot",
            "perturbation": self.templates.perturbation(c.value),
            "need": NEEDS[c.value] if 0 <= c.value < len(NEEDS) else "a need",
        }
        text = self.templates.render(c.kind, key, tick, fields)
        return Line(tick, c.kind, category, text, tuple(names), priority)

    # --- state -------------------------------------------------------------------------------
    def recent(self, limit: int) -> list[Line]:
        """The last ``limit`` lines of the history, oldest first."""
        return list(self.history)[-limit:] if limit > 0 else []

    def state_dict(self) -> dict[str, Any]:
        """Throttle memory, tie baseline, this tick's lines and the history."""
        return {
            "format": STATE_FORMAT,
            "tick": self._tick,
            "throttle": self.throttle.state_dict(),
            "tie_other": self._tie_other.copy(),
            "tie_vals": self._tie_vals.copy(),
            "lines": [line.to_json() for line in self.lines],
            "history": [line.to_json() for line in self.history],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state_dict`'s output.

        Raises:
            ValueError: the state has another format or another number of seats.

        """
        if int(state.get("format", -1)) != STATE_FORMAT:
            raise ValueError(f"narration state: format {state.get('format')!r}, this townlet reads {STATE_FORMAT}")
        tie_other = np.asarray(state["tie_other"], dtype=self._tie_other.dtype)
        if tie_other.shape != self._tie_other.shape:
            raise ValueError(f"narration state: ties of shape {tie_other.shape}, the town has {self._tie_other.shape}")
        self._tie_other = tie_other
        self._tie_vals = np.asarray(state["tie_vals"], dtype=self._tie_vals.dtype).reshape(self._tie_vals.shape)
        self._tick = int(state["tick"])
        self.throttle.load_state_dict(state["throttle"])
        self.lines = tuple(Line.from_json(d) for d in state["lines"])
        self.history = deque((Line.from_json(d) for d in state["history"]), maxlen=self.config.history)
