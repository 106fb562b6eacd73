"""Behaviour cloning of the scripted expert into the shared Maskable policy.

Reads top to bottom: audit the dataset, rebuild the env's spaces and layout from it, split
its seeds into training and *held-out* seeds (held-out episodes never reach the trainer),
train ``imitation``'s :class:`~imitation.algorithms.bc.BC` on the training decision
points with a mask-aware loss, evaluate on the held-out decision points with the masked
argmax (so every prediction is an allowed action), gate, and save the weights with the
observation signature.

The gate: held-out decision-point accuracy >= ``threshold`` and, by default, above the
*persistence baseline* (predict "keep the current option", read from the observation):
in this town most decisions continue what the agent is already doing, so a model that
only learnt that must not pass.

Run it: ``python -m training.bc DATASET OUT [--epochs 10]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from imitation.algorithms.bc import BC, BCTrainingMetrics
from imitation.data import types
from imitation.util import logger as imit_logger
from imitation.util import util
from pydantic import BaseModel, ConfigDict, Field

from townlet_env.atomic import write_json_atomic
from townlet_env.config import TownConfig
from townlet_env.env import TownletParallelEnv
from townlet_env.observations.layout import ObservationLayout, check_signature
from training.audit import audit
from training.datasets import Dataset, load_dataset, to_transitions
from training.policy import PolicyArch, make_policy, save_checkpoint
from training.progress import Progress


class BCConfig(BaseModel):
    """Behaviour-cloning settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(10, ge=1)
    batch_size: int = Field(256, ge=1)
    lr: float = Field(1e-3, gt=0.0)
    ent_weight: float = Field(0.0, ge=0.0)
    l2_weight: float = Field(0.0, ge=0.0)
    seed: int = 0
    holdout_seeds: tuple[int, ...] | None = Field(None, description="None: the last holdout_fraction of seeds")
    holdout_fraction: float = Field(0.25, gt=0.0, lt=1.0)
    max_train_samples: int | None = Field(None, ge=1, description="subsample training rows (CI-sized runs)")
    threshold: float = Field(0.90, ge=0.0, le=1.0, description="gate on held-out decision-point accuracy")
    require_beats_persistence: bool = True
    torch_threads: int = Field(1, ge=1)
    device: str = Field("cpu", description="torch device for training and evaluation")
    arch: dict[str, Any] = Field(default_factory=dict, description="PolicyArch overrides")


@dataclass(frozen=True)
class Evaluation:
    """Masked-argmax predictions scored against the expert's labels."""

    accuracy: float
    per_action: dict[str, float | None]  # recall per expert action (None: no support)
    support: dict[str, int]
    switch_accuracy: float | None  # on labels that change the current option
    persistence_baseline: float | None  # accuracy of "keep the current option"
    masked_violations: int  # predictions outside the mask (must be 0)
    n: int


@dataclass(frozen=True)
class BCResult:
    """Outcome of :func:`train_bc`; ``passed`` is the gate."""

    passed: bool
    reasons: tuple[str, ...]
    threshold: float
    held_out: Evaluation
    train_accuracy: float
    train_seeds: tuple[int, ...]
    eval_seeds: tuple[int, ...]
    n_train: int
    seconds: float
    checkpoint: str | None


@dataclass(frozen=True)
class MaskedBCLoss:
    """BC loss under the action mask (the loss ``imitation`` uses, with the mask applied):
    negative log-likelihood of the expert's action among the *allowed* actions.
    """

    ent_weight: float
    l2_weight: float

    def __call__(self, policy: Any, obs: Any, acts: Any) -> BCTrainingMetrics:
        raw = obs.unwrap() if isinstance(obs, types.DictObs) else obs
        tensor_obs = types.map_maybe_dict(util.safe_to_tensor, raw)
        acts = util.safe_to_tensor(acts)
        _, log_prob, entropy = policy.evaluate_actions(tensor_obs, acts, action_masks=tensor_obs["action_mask"])
        l2_norm = th.stack([th.sum(th.square(w)) for w in policy.parameters()]).sum() / 2
        neglogp = -log_prob.mean()
        ent_loss = -self.ent_weight * entropy.mean()
        l2_loss = self.l2_weight * l2_norm
        loss = neglogp + ent_loss + l2_loss
        return BCTrainingMetrics(  # detached copies for logging; only `loss` carries gradients
            neglogp=neglogp.detach(),
            entropy=entropy.mean().detach(),
            ent_loss=ent_loss.detach(),
            prob_true_act=th.exp(log_prob).mean().detach(),
            l2_norm=l2_norm.detach(),
            l2_loss=l2_loss.detach(),
            loss=loss,
        )


def env_for(dataset: Dataset) -> TownletParallelEnv:
    """A town built from the dataset's first scenario config, checked against its signature."""
    config = next(iter(dataset.manifest["scenarios"].values()))["config"]
    town = TownletParallelEnv(TownConfig.model_validate(config))
    check_signature(dataset.signature, town.layout)
    return town


def split_seeds(dataset: Dataset, cfg: BCConfig) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(training seeds, held-out seeds), disjoint and both non-empty."""
    seeds = sorted({int(s["seed"]) for s in dataset.shards})
    if cfg.holdout_seeds is not None:
        held = tuple(sorted(set(cfg.holdout_seeds) & set(seeds)))
    else:
        k = max(1, round(len(seeds) * cfg.holdout_fraction))
        held = tuple(seeds[-k:])
    train = tuple(s for s in seeds if s not in held)
    if not held or not train:
        raise ValueError(f"need at least one training and one held-out seed; dataset seeds {seeds}, held out {held}")
    return train, held


def predict(policy: Any, obs: np.ndarray, mask: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Masked argmax of the policy's action distribution, in chunks."""
    out = []
    policy.set_training_mode(False)
    with th.no_grad():
        for i in range(0, len(obs), chunk):
            batch = {
                "observation": th.as_tensor(obs[i : i + chunk], device=policy.device),
                "action_mask": th.as_tensor(mask[i : i + chunk], device=policy.device),
            }
            dist = policy.get_distribution(batch, action_masks=batch["action_mask"])
            out.append(dist.get_actions(deterministic=True).cpu().numpy())
    return np.concatenate(out).astype(np.int64)


def evaluate(policy: Any, data: types.Transitions, layout: ObservationLayout, names: Sequence[str]) -> Evaluation:
    """Score masked-argmax predictions on ``data`` (decision points of held-out seeds)."""
    if not isinstance(data.obs, types.DictObs):
        raise TypeError(f"expected DictObs observations (observation + action_mask), got {type(data.obs).__name__}")
    obs, mask, acts = data.obs.get("observation"), data.obs.get("action_mask"), data.acts
    pred = predict(policy, obs, mask)
    hit = pred == acts
    per_action: dict[str, float | None] = {}
    support: dict[str, int] = {}
    for a, name in enumerate(names):
        sel = acts == a
        support[name] = int(sel.sum())
        per_action[name] = float(hit[sel].mean()) if sel.any() else None
    switch = persistence = None
    option_cols = [f"option_{n}" for n in names]
    if all(c in layout.feature_names for c in option_cols):
        current = obs[:, [layout.index(c) for c in option_cols]].argmax(axis=1)
        persistence = float((current == acts).mean())
        changes = current != acts
        switch = float(hit[changes].mean()) if changes.any() else None
    violations = int((mask[np.arange(len(pred)), pred] == 0).sum())
    return Evaluation(float(hit.mean()), per_action, support, switch, persistence, violations, len(acts))


def gate(ev: Evaluation, cfg: BCConfig) -> tuple[bool, tuple[str, ...]]:
    """Whether ``ev`` passes, and why not."""
    reasons = []
    if ev.accuracy < cfg.threshold:
        reasons.append(f"held-out accuracy {ev.accuracy:.4f} < threshold {cfg.threshold}")
    baseline = ev.persistence_baseline
    if cfg.require_beats_persistence and baseline is not None and ev.accuracy <= baseline:
        reasons.append(f"held-out accuracy {ev.accuracy:.4f} does not beat keep-current-option {baseline:.4f}")
    if ev.masked_violations:
        reasons.append(f"{ev.masked_violations} predictions outside the action mask")
    return not reasons, tuple(reasons)


def train_bc(dataset_path: str | Path, cfg: BCConfig, out_dir: str | Path | None = None) -> tuple[BCResult, Any]:
    """Audit, split, train, evaluate on held-out seeds, gate and (with ``out_dir``) save.

    Returns:
        The result and the trained policy.

    Raises:
        DatasetError: the dataset fails its audit.

    """
    t0 = time.perf_counter()
    th.set_num_threads(cfg.torch_threads)
    th.manual_seed(cfg.seed)
    audit(dataset_path).raise_if_failed()
    dataset = load_dataset(dataset_path)
    town = env_for(dataset)
    layout, names = town.layout, dataset.action_names
    train_seeds, eval_seeds = split_seeds(dataset, cfg)
    train = to_transitions(dataset, decision_points_only=True, seeds=train_seeds)
    held_out = to_transitions(dataset, decision_points_only=True, seeds=eval_seeds)
    if cfg.max_train_samples is not None and len(train) > cfg.max_train_samples:
        pick = np.sort(np.random.default_rng(cfg.seed).choice(len(train), cfg.max_train_samples, replace=False))
        train = _rows(train, pick)

    arch = PolicyArch(**cfg.arch)
    obs_space, act_space = town.observation_space("agent_0"), town.action_space("agent_0")
    policy = make_policy(layout, obs_space, act_space, arch, lr=cfg.lr)
    with tempfile.TemporaryDirectory() as scratch:
        log_dir = Path(out_dir) / "bc_log" if out_dir is not None else Path(scratch)
        trainer = BC(
            observation_space=obs_space,
            action_space=act_space,
            rng=np.random.default_rng(cfg.seed),
            policy=policy,
            demonstrations=train,
            batch_size=min(cfg.batch_size, len(train)),
            optimizer_kwargs={"lr": cfg.lr},
            device=cfg.device,
            custom_logger=imit_logger.configure(folder=log_dir, format_strs=["csv"]),
        )
        trainer.loss_calculator = MaskedBCLoss(cfg.ent_weight, cfg.l2_weight)  # type: ignore[assignment]
        with warnings.catch_warnings():  # imitation logs float(loss) of the graph-carrying loss
            warnings.filterwarnings("ignore", "Converting a tensor with requires_grad=True", UserWarning)
            batches = cfg.epochs * max(1, len(train) // trainer.batch_size)
            with Progress("bc", batches, "batches") as progress:
                trainer.train(
                    n_epochs=cfg.epochs, progress_bar=False, log_interval=10**9, on_batch_end=progress.advance
                )

    ev = evaluate(policy, held_out, layout, names)
    train_ev = evaluate(policy, train, layout, names)
    passed, reasons = gate(ev, cfg)
    ckpt = None
    if out_dir is not None:
        out = Path(out_dir)
        meta = {"bc_config": cfg.model_dump(mode="json"), "dataset": str(dataset_path), "held_out": asdict(ev)}
        ckpt = str(save_checkpoint(out / "policy.pt", policy, layout, arch, meta))
    result = BCResult(
        passed,
        reasons,
        cfg.threshold,
        ev,
        train_ev.accuracy,
        train_seeds,
        eval_seeds,
        len(train),
        time.perf_counter() - t0,
        ckpt,
    )
    if out_dir is not None:
        write_json_atomic(Path(out_dir) / "bc_result.json", asdict(result))
    return result, policy


def _rows(data: types.Transitions, idx: np.ndarray) -> types.Transitions:
    if not (isinstance(data.obs, types.DictObs) and isinstance(data.next_obs, types.DictObs)):
        raise TypeError("expected DictObs observations (observation + action_mask)")
    return types.Transitions(
        obs=types.DictObs({k: v[idx] for k, v in data.obs.items()}),
        acts=data.acts[idx],
        infos=data.infos[idx],
        next_obs=types.DictObs({k: v[idx] for k, v in data.next_obs.items()}),
        dones=data.dones[idx],
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.bc", description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--max-train-samples", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    cfg = BCConfig(
        epochs=args.epochs, max_train_samples=args.max_train_samples, torch_threads=args.threads, device=args.device
    )
    result, _ = train_bc(args.dataset, cfg, args.out)
    ev = result.held_out
    print(
        f"held-out accuracy {ev.accuracy:.4f} on {ev.n} decision points (seeds {list(result.eval_seeds)}); "
        f"train {result.train_accuracy:.4f} on {result.n_train}; keep-current baseline {ev.persistence_baseline}; "
        f"switch accuracy {ev.switch_accuracy}; {result.seconds:.0f}s"
    )
    print("per action:", {k: (None if v is None else round(v, 4), ev.support[k]) for k, v in ev.per_action.items()})
    print("PASSED" if result.passed else "FAILED: " + "; ".join(result.reasons))
    return 0 if result.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
