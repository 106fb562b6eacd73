"""The console's commands by name: the role each needs, its arguments, and its function."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from townlet_env.console import admin, perturb, possession, storage, views
from townlet_env.console.auth import Role


@dataclass(frozen=True)
class Command:
    """One console command. Viewer commands return their result; admin ones a :class:`admin.Plan`."""

    name: str
    role: Role
    args: type[BaseModel]
    run: Callable[..., Any]

    def usage(self) -> str:
        """``cmd {arg: type, ...}``: the arguments as a client writes them (``?`` optional)."""
        fields = self.args.model_fields
        parts = [f"{k}{'' if f.is_required() else '?'}" for k, f in fields.items()]
        return f"{self.name} {{{', '.join(parts)}}}" if parts else f"{self.name} {{}}"


def _table() -> dict[str, Command]:
    viewer: list[tuple[str, type[BaseModel], Callable[..., Any]]] = [
        ("snapshot", views.SnapshotArgs, views.snapshot),
        ("health", views.NoArgs, views.health),
        ("employment", views.NoArgs, views.employment),
        ("queues", views.NoArgs, views.queues),
        ("relationships", views.RelationshipArgs, views.relationships),
        ("stability", views.NoArgs, views.stability),
        ("narration", views.NarrationArgs, views.narration),
        ("perturbations", perturb.NoArgs, perturb.perturbations),
    ]
    admin_cmds: list[tuple[str, type[BaseModel], Callable[..., Any]]] = [
        ("spawn", admin.SpawnArgs, admin.spawn),
        ("teleport", admin.TeleportArgs, admin.teleport),
        ("set_need", admin.NeedArgs, admin.set_need),
        ("set_price", admin.PriceArgs, admin.set_price),
        ("set_relationship", admin.TieArgs, admin.set_relationship),
        ("kill", admin.AgentArgs, admin.kill),
        ("toggle_mortality", admin.MortalityArgs, admin.toggle_mortality),
        ("set_exit_cap", admin.ExitCapArgs, admin.set_exit_cap),
        ("possess", admin.AgentArgs, possession.possess),
        ("release", admin.AgentArgs, possession.release),
        ("control", possession.ControlArgs, possession.control),
        ("approve_exit", admin.AgentArgs, admin.approve_exit),
        ("defer_exit", admin.AgentArgs, admin.defer_exit),
        ("save_snapshot", storage.SnapshotArgs, storage.save_snapshot),
        ("load_snapshot", storage.SnapshotArgs, storage.load_snapshot),
        ("perturb", perturb.PerturbArgs, perturb.perturb),
        ("end_perturbation", perturb.EndArgs, perturb.end_perturbation),
    ]
    table = {name: Command(name, "viewer", args, run) for name, args, run in viewer}
    table.update({name: Command(name, "admin", args, run) for name, args, run in admin_cmds})
    return table


COMMANDS: dict[str, Command] = _table()
VIEWER_COMMANDS = tuple(n for n, c in COMMANDS.items() if c.role == "viewer")
ADMIN_COMMANDS = tuple(n for n, c in COMMANDS.items() if c.role == "admin")
