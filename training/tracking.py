"""Weights & Biases tracking: the one place W&B is switched on, plus a reader for offline runs.

Every stage logs through one :class:`Tracker`. Mode ``"offline"`` (the default) writes the
run under the experiment folder and needs no account; ``"online"`` streams to W&B;
``"auto"`` goes online when an API key is configured (``WANDB_API_KEY`` or a ``wandb
login`` entry in ``~/.netrc``) and offline otherwise; ``"disabled"`` logs nothing. An
explicit ``WANDB_MODE`` in the environment wins, so CI can force ``disabled``.

PPO metrics reach W&B through SB3's own logger (:class:`WandbOutputFormat` is an SB3
``KVWriter``), so nothing in SB3 is forked. Offline runs can be read back with
:func:`read_offline_run` (wandb 0.31 ships no reader for its transaction log, so this
module parses the log's record framing itself; each record is W&B's own protobuf).
"""

from __future__ import annotations

import io
import json
import netrc
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict
from stable_baselines3.common.logger import KVWriter

from townlet_env.atomic import write_bytes_atomic

Mode = Literal["offline", "online", "auto", "disabled"]
_BLOCK = 32768  # the transaction log's block size
_HEADER = 7  # b":W&B" + 2-byte magic + 1-byte version; also the size of a record header


class TrackingConfig(BaseModel):
    """How an experiment reports to W&B."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode = "offline"
    project: str = "townlet"
    entity: str | None = None
    videos: bool = True
    artifacts: bool = True


def resolve_mode(mode: Mode) -> str:
    """The W&B mode to use: ``WANDB_MODE`` if set, else ``mode`` with ``auto`` resolved."""
    forced = os.environ.get("WANDB_MODE")
    if forced:
        return forced
    if mode != "auto":
        return mode
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    try:
        logged_in = netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        logged_in = False
    return "online" if logged_in else "offline"


class Tracker:
    """A W&B run for one experiment; every stage logs through it."""

    def __init__(self, cfg: TrackingConfig, run_dir: Path, name: str, config: Mapping[str, Any]) -> None:
        import wandb  # heavy; only the training side imports it

        self._wandb = wandb
        self.mode = resolve_mode(cfg.mode)
        self.cfg = cfg
        run_dir.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=cfg.project,
            entity=cfg.entity,
            name=name,
            dir=str(run_dir),
            mode=self.mode,  # type: ignore[arg-type]
            config=dict(config),
            reinit="finish_previous",
        )

    @property
    def enabled(self) -> bool:
        return self.mode != "disabled"

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        self.run.log(dict(metrics), step=step)

    def summary(self, values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            self.run.summary[key] = value

    def table(self, key: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.run.log({key: self._wandb.Table(columns=list(columns), data=[list(r) for r in rows])})

    def video(self, key: str, frames: Sequence[np.ndarray], path: Path, fps: int = 8) -> None:
        """Log ``frames`` (uint8 HxWx3) as a GIF written with Pillow (no moviepy needed)."""
        if not (self.cfg.videos and self.enabled and frames):
            return
        from PIL import Image

        path.parent.mkdir(parents=True, exist_ok=True)
        images = [Image.fromarray(f) for f in frames]
        buffer = io.BytesIO()
        images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=1000 // fps, loop=0)
        write_bytes_atomic(path, buffer.getvalue())
        self.run.log({key: self._wandb.Video(str(path), format="gif")})

    def artifact(self, path: Path, name: str, kind: str) -> None:
        """Log a file or folder (dataset, checkpoint) as a W&B artifact."""
        if not (self.cfg.artifacts and self.enabled):
            return
        art = self._wandb.Artifact(name, type=kind)
        if path.is_dir():
            art.add_dir(str(path))
        else:
            art.add_file(str(path))
        self.run.log_artifact(art)

    def sb3_output(self, prefix: str) -> WandbOutputFormat:
        """An SB3 logger output that forwards PPO metrics to this run under ``prefix/``."""
        return WandbOutputFormat(self, prefix)

    def finish(self) -> None:
        """Finish the run and wait until W&B has written everything to disk.

        ``run.finish()`` returns once the run is marked finished, but wandb-core closes the
        offline transaction log (``run-*.wandb``) a moment later in its own process; a reader
        that looks straight away (``wandb sync``, :func:`read_offline_run`, a test) can see a
        log without its last rows. ``wandb.teardown()`` waits for the service to shut down,
        which closes every stream first; the next :class:`Tracker` starts a fresh service.
        """
        self.run.finish()
        self._wandb.teardown()


class WandbOutputFormat(KVWriter):
    """SB3 ``KVWriter`` that sends each ``logger.dump`` to W&B."""

    def __init__(self, tracker: Tracker, prefix: str) -> None:
        self.tracker = tracker
        self.prefix = prefix

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        metrics = {
            f"{self.prefix}/{k}": v
            for k, v in key_values.items()
            if isinstance(v, int | float | np.integer | np.floating) and "wandb" not in (key_excluded.get(k) or ())
        }
        metrics[f"{self.prefix}/timesteps"] = step
        self.tracker.log(metrics)

    def close(self) -> None:
        pass


@dataclass
class OfflineRun:
    """What an offline run recorded: config, every history row, and the summary."""

    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def series(self, key: str) -> list[Any]:
        return [row[key] for row in self.history if key in row]


def _records(path: Path) -> Iterator[bytes]:
    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path}: not a W&B transaction log (bad header)")
    pos, pending = _HEADER, b""
    while pos + _HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER:  # block trailer: zero padding
            pos += left
            continue
        length = int.from_bytes(data[pos + 4 : pos + 6], "little")
        kind = data[pos + 6]
        if pos + _HEADER + length > len(data):
            break  # a record cut short: the log is still being written, or was truncated
        payload = data[pos + _HEADER : pos + _HEADER + length]
        pos += _HEADER + length
        if kind == 1:  # FULL
            yield payload
        elif kind == 2:  # FIRST
            pending = payload
        elif kind == 3:  # MIDDLE
            pending += payload
        elif kind == 4:  # LAST
            yield pending + payload
            pending = b""
        else:
            break  # zero-filled tail


def _key(item: Any) -> str:
    return "/".join(item.nested_key) if item.nested_key else item.key


def read_offline_run(run_dir: Path) -> OfflineRun:
    """Parse ``run-*.wandb`` in an offline run folder (``.../wandb/offline-run-*``)."""
    from wandb.proto import wandb_internal_pb2 as pb

    logs = sorted(run_dir.glob("run-*.wandb"))
    if not logs:
        raise FileNotFoundError(f"{run_dir}: no run-*.wandb transaction log")
    out, finished = OfflineRun(), False
    for raw in _records(logs[0]):
        record = pb.Record.FromString(raw)  # type: ignore[attr-defined]
        kind = record.WhichOneof("record_type")
        if kind == "history":
            out.history.append({_key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "summary":
            out.summary.update({_key(i): json.loads(i.value_json) for i in record.summary.update})
        elif kind == "config":
            out.config.update({_key(i): json.loads(i.value_json) for i in record.config.update})
        elif kind == "run":
            out.config.update({_key(i): json.loads(i.value_json) for i in record.run.config.update})
        elif kind == "exit":
            finished = True
    if not finished:  # a run still writing (or killed) would silently lose its last rows
        raise ValueError(f"{logs[0]}: the log has no exit record; the run has not finished writing (or was killed)")
    return out
