"""``townlet serve``: run a live town with the whole ops stack until interrupted.

The town runs under a policy (``--policy``: the scripted expert, random valid actions, or
with the training extras a trained checkpoint on every seat or on a share of them; see
:mod:`townlet_env.policies`) with the stability monitor, the narrator (its lines ride in
the telemetry diffs), the console (admin commands land at the start of the next tick), the
telemetry stream and the console on one WebSocket server bound to localhost
(``ws://127.0.0.1:PORT/telemetry`` and ``/console``), and autosaved snapshots. Episodes
restart when they end. Ctrl-C (SIGINT) or SIGTERM stops it after the current tick, saves a
final snapshot and closes the stream.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, get_args

import townlet_env
from townlet_env.config import TICKS_PER_DAY, ObsVariant
from townlet_env.controllers import drive
from townlet_env.policies import PolicyError, PolicyOptions, add_policy_arguments, make_controller


@dataclass(frozen=True)
class ServeOptions:
    """What ``townlet serve`` runs (each field is a command-line option)."""

    config: str | None = None
    obs_variant: str | None = None  # None: the config's (a checkpoint needs the layout it was trained on)
    policy: str = "scripted"
    checkpoint: str | None = None  # learned / mixed: the trained policy
    learned_fraction: float = 0.5  # mixed: share of seats the checkpoint drives
    seed: int = 0
    port: int = 8765
    snapshot_root: str = "snapshots"
    autosave_ticks: int = TICKS_PER_DAY
    keep: int = 3
    resume: str | None = None
    audit_log: str = "logs/console.jsonl"
    ticks_per_second: float = 0.0  # 0: as fast as it goes
    max_ticks: int = 0  # 0: until interrupted


def serve(opts: ServeOptions, *, ready: Any = None) -> int:
    """Run the town until interrupted (or ``opts.max_ticks`` ticks); returns ticks run.

    Args:
        opts: the options.
        ready: called with the running server once it listens (tests use it to connect).

    Raises:
        PolicyError: the policy cannot be built (unknown, extras missing, bad checkpoint);
            raised before the server starts or any file is written.

    """
    from townlet_env.console import Console
    from townlet_env.narration.narrator import Narrator
    from townlet_env.snapshots import Autosaver
    from townlet_env.stability import StabilityMonitor
    from townlet_env.telemetry.publisher import TelemetryPublisher
    from townlet_env.telemetry.server import TelemetryServer

    root = Path(opts.snapshot_root)
    if opts.resume:
        env = townlet_env.load_snapshot(opts.resume, root=root)
    else:
        env = townlet_env.parallel_env(opts.config, max_ticks=10**9, obs_variant=opts.obs_variant)
    policy = PolicyOptions(checkpoint=opts.checkpoint, learned_fraction=opts.learned_fraction, seed=opts.seed)
    controller = make_controller(opts.policy, env, policy)
    root.mkdir(parents=True, exist_ok=True)
    Path(opts.audit_log).parent.mkdir(parents=True, exist_ok=True)
    server = TelemetryServer(port=opts.port)
    StabilityMonitor(env)
    Narrator(env)
    publisher = TelemetryPublisher(env, [server])
    saver = Autosaver(env, root, every_ticks=opts.autosave_ticks, keep=opts.keep)
    console = Console(env, audit_path=opts.audit_log, snapshot_root=root)
    server.console_handler = console.handle_text
    server.start()
    if opts.resume:
        obs = env.unwrapped.current_observations()
    else:
        obs, _ = env.reset(seed=opts.seed)
    stop = _StopFlag()
    if ready is not None:
        ready(server)
    ticks, period = 0, (1.0 / opts.ticks_per_second if opts.ticks_per_second > 0 else 0.0)
    try:
        while not stop.set and (opts.max_ticks == 0 or ticks < opts.max_ticks):
            t0 = time.perf_counter()
            if not env.agents:
                obs, _ = env.reset()
            obs, *_ = env.step(drive(controller, env, obs))
            ticks += 1
            if period:
                time.sleep(max(0.0, period - (time.perf_counter() - t0)))
    finally:
        stop.restore()
        saver.save_now()
        publisher.close()
        server.close()
    return ticks


class _StopFlag:
    """Turns SIGINT and SIGTERM into a flag the loop checks after each tick (main thread only:
    Python delivers signals there, so a town served from another thread stops by ``max_ticks``).
    """

    def __init__(self) -> None:
        self.set = False
        main = threading.current_thread() is threading.main_thread()
        signals = (signal.SIGINT, signal.SIGTERM) if main else ()
        self._old = {s: signal.signal(s, self._handle) for s in signals}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.set = True

    def restore(self) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)


def _arguments(p: argparse.ArgumentParser) -> None:
    defaults = ServeOptions()
    p.add_argument("--config", default=None, help="town config YAML (default: the shipped town)")
    p.add_argument(
        "--obs-variant", choices=get_args(ObsVariant), default=None, help="observations (default: the config's)"
    )
    add_policy_arguments(p, defaults.policy)
    p.add_argument("--seed", type=int, default=defaults.seed, help="episode and policy seed")
    p.add_argument("--port", type=int, default=defaults.port, help="WebSocket port on 127.0.0.1 (default 8765)")
    p.add_argument("--snapshot-root", default=defaults.snapshot_root, help="autosaves and console snapshots")
    p.add_argument("--autosave-ticks", type=int, default=defaults.autosave_ticks, help="ticks between autosaves")
    p.add_argument("--keep", type=int, default=defaults.keep, help="autosaves kept")
    p.add_argument("--resume", default=None, help="a snapshot (inside --snapshot-root) to continue from")
    p.add_argument("--audit-log", default=defaults.audit_log, help="the console's JSONL audit log")
    p.add_argument("--ticks-per-second", type=float, default=0.0, help="pace the town (0: as fast as it goes)")
    p.add_argument("--max-ticks", type=int, default=0, help="stop after this many ticks (0: until Ctrl-C)")


def _command(args: argparse.Namespace) -> int:
    opts = ServeOptions(**{k: v for k, v in vars(args).items() if k in ServeOptions.__dataclass_fields__})
    try:
        ticks = serve(opts, ready=lambda server: print(f"serving {server.url} and /console; Ctrl-C stops", flush=True))
    except PolicyError as exc:
        print(f"townlet serve: {exc}", file=sys.stderr)
        return 2
    print(f"stopped after {ticks} ticks; last snapshot in {opts.snapshot_root}")
    return 0


#: ``townlet serve``: (help, handler, arguments), as the command line's table wants it.
COMMAND = ("run a live town: telemetry and the console on localhost, autosaved snapshots", _command, _arguments)
