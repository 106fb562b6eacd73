#!/usr/bin/env python3
"""Generate the reference tables of docs/environment.md from the code itself.

The tables (summary, actions, observation layouts with every feature name, config keys
with defaults, manifest fields, precondition names, reward terms, versions) are built by
instantiating the environment and reading the pydantic models, so they cannot drift from
the package as long as this script is re-run after a change.

Usage::

    python scripts/gen_env_doc_tables.py                  # print every block (markdown)
    python scripts/gen_env_doc_tables.py --block config   # print one block
    python scripts/gen_env_doc_tables.py --write docs/environment.md   # refresh the doc
    python scripts/gen_env_doc_tables.py --check docs/environment.md   # exit 1 if stale

In the doc, each block sits between ``<!-- BEGIN GENERATED: name -->`` and
``<!-- END GENERATED: name -->``; ``--write`` replaces only what lies between them.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import townlet_env
from townlet_env import actions as actions_mod
from townlet_env.config import NEEDS, TICKS_PER_DAY, TownConfig, make_config

VARIANTS = ("full", "hybrid", "compact")
MODES = ("option", "primitive")


# --- helpers ---------------------------------------------------------------------------


def _code(value: object) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return "`" + text.replace("|", "\\|") + "`"


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " \\| ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is not None:
        args = ", ".join("..." if a is Ellipsis else _type_name(a) for a in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def _constraints(field: Any) -> str:
    parts = []
    symbols = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<", "min_length": "len >=", "max_length": "len <="}
    for meta in field.metadata:
        for attr, sym in symbols.items():
            value = getattr(meta, attr, None)
            if value is not None:
                parts.append(f"{sym} {value}")
    return ", ".join(parts)


def _first_line(doc: str | None) -> str:
    return inspect.cleandoc(doc).split("\n\n")[0].replace("\n", " ") if doc else ""


def _enum_comments(enum: type) -> dict[str, str]:
    """The ``#:`` comments after each member in the enum's source."""
    source = inspect.getsource(enum)
    out = {}
    for line in source.splitlines():
        m = re.match(r"\s*([A-Z_]+)\s*=\s*\d+\s*(?:#:\s*(.*))?$", line)
        if m:
            out[m.group(1)] = (m.group(2) or "").strip()
    return out


def _layout(variant: str, mode: str = "option") -> Any:
    return townlet_env.parallel_env(obs_variant=variant, action_mode=mode).unwrapped.layout


# --- blocks ----------------------------------------------------------------------------


def _value_ranges(par: Any) -> str:
    """The distinct (low, high) bounds of the observation Box, with how many elements have each."""
    box = par.observation_space(par.possible_agents[0])["observation"]
    pairs: dict[tuple[float, float], int] = {}
    for lo, hi in zip(box.low.tolist(), box.high.tolist(), strict=True):
        pairs[(lo, hi)] = pairs.get((lo, hi), 0) + 1
    return "; ".join(f"[{lo:g}, {hi:g}] ({n} of {box.shape[0]} in `hybrid`)" for (lo, hi), n in sorted(pairs.items()))


def block_summary() -> str:
    par = townlet_env.parallel_env()
    town = par.unwrapped
    cfg = town.config
    shapes = ", ".join(f"`{v}`: ({_layout(v).size},)" for v in VARIANTS)
    n_opt, n_prim = len(actions_mod.Option), len(actions_mod.Primitive)
    h, w = town.rules.town.shape
    rows = [
        ("Import", "`import townlet_env; townlet_env.parallel_env()` (AEC: `townlet_env.env()`)"),
        ("Actions", f"Discrete ({n_opt} in `option` mode, {n_prim} in `primitive` mode)"),
        ("Parallel API", "Yes (native); AEC through `parallel_to_aec`"),
        ("Manual control", "No"),
        ("Agents", f"{cfg.num_agents} by default (`num_agents=`, 1 to 512)"),
        ("Agent names", f"`{town.possible_agents[0]}` ... `{town.possible_agents[-1]}` (fixed seats)"),
        ("Action shape", "(1,)"),
        ("Action values", f"[0, {n_opt - 1}] (option), [0, {n_prim - 1}] (primitive)"),
        ("Observation", "`Dict(observation=Box(float32), action_mask=Box(int8, 0..1))`"),
        ("Observation shape", shapes),
        ("Observation values", _value_ranges(par)),
        ("Default map", f"`{cfg.map}` ({h}x{w} tiles); {TICKS_PER_DAY} ticks (sim minutes) per day"),
        ("Episode", f"`max_ticks={cfg.max_ticks}` (one sim day), then truncation for all"),
        ("Render modes", ", ".join(f"`{m}`" for m in town.metadata["render_modes"])),
        ("Metadata name", f"`{town.metadata['name']}`"),
    ]
    lines = ["| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines)


def block_actions() -> str:
    out = []
    for title, enum in (("option", actions_mod.Option), ("primitive", actions_mod.Primitive)):
        comments = _enum_comments(enum)
        summary = re.sub(r"^``action_mode=[^`]*``:\s*", "", _first_line(enum.__doc__))
        out.append(f'**`action_mode="{title}"`**: `Discrete({len(enum)})` — {summary}')
        out.append("")
        out.append("| id | name | what it does |")
        out.append("|---|---|---|")
        for member in enum:
            out.append(f"| {int(member)} | `{member.name}` | {comments.get(member.name, '')} |")
        out.append("")
    return "\n".join(out).rstrip()


def block_observations() -> str:
    layouts = {v: _layout(v) for v in VARIANTS}
    out = ["| variant | map channels | map shape (C, H, W) | map size | features | vector size |"]
    out.append("|---|---|---|---|---|---|")
    for v, lay in layouts.items():
        channels = ", ".join(f"`{c}`" for c in lay.map_channels) or "—"
        out.append(f"| `{v}` | {channels} | {lay.map_shape} | {lay.map_size} | {len(lay.feature_names)} | {lay.size} |")
    out.append("")
    out.append("The map block is flattened channel-major: element `c*H*W + y*W + x` is channel `c` at")
    out.append("window row `y`, column `x`, with the agent at the centre `(H//2, W//2)`. The named")
    out.append("features follow it; the table gives each feature's index in the observation vector")
    out.append("(`layout.index(name)`), per variant (— where the variant does not carry it).")
    out.append("")
    # Union of feature names in order of first appearance, keeping repeated names apart.
    keyed: dict[str, list[tuple[str, int]]] = {}
    for v, lay in layouts.items():
        seen: dict[str, int] = {}
        for i, name in enumerate(lay.feature_names):
            k = seen.get(name, 0)
            seen[name] = k + 1
            keyed.setdefault(v, []).append((f"{name}#{k}", lay.map_size + i))
    order: list[str] = []
    for v in ("hybrid", "full", "compact"):
        for key, _ in keyed.get(v, []):
            if key not in order:
                order.append(key)
    index = {v: dict(keyed.get(v, [])) for v in VARIANTS}
    out.append("| feature | " + " | ".join(f"`{v}`" for v in VARIANTS) + " |")
    out.append("|---|" + "---|" * len(VARIANTS))
    for key in order:
        name, k = key.rsplit("#", 1)
        label = f"`{name}`" + (f" (occurrence {int(k) + 1})" if int(k) else "")
        cells = [str(index[v][key]) if key in index[v] else "—" for v in VARIANTS]
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    dupes = sorted({n for lay in layouts.values() for n in lay.feature_names if lay.feature_names.count(n) > 1})
    if dupes:
        out.append("")
        out.append(f"Note: these names occur more than once in a layout: {', '.join(f'`{d}`' for d in dupes)}.")
        out.append("`layout.index(name)` returns the first occurrence.")
    return "\n".join(out)


def _model_rows(model: type[BaseModel], value: BaseModel | None, prefix: str) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = field.annotation
        current = getattr(value, name, None) if value is not None else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(_model_rows(annotation, current, f"{key}."))
            continue
        args = typing.get_args(annotation)
        if (
            typing.get_origin(annotation) is dict
            and args
            and isinstance(args[-1], type)
            and issubclass(args[-1], BaseModel)
        ):
            entries = current or {}
            shown = ", ".join(f"`{k}`" for k in entries) or "none"
            rows.append(f"| `{key}` | dict[str, {args[-1].__name__}] | {shown} | | {field.description or ''} |")
            sub = args[-1]
            rows.extend(_model_rows(sub, None, f"{key}.<name>."))
            continue
        if current is None and value is None:
            if field.is_required():
                default = "required"
            elif field.default_factory is not None:
                default = _code(field.default_factory())  # type: ignore[call-arg]
            else:
                default = _code(field.default)
        else:
            default = _code(current)
        rows.append(
            f"| `{key}` | {_type_name(annotation)} | {default} | {_constraints(field)} | {field.description or ''} |"
        )
    return rows


def block_config() -> str:
    cfg = make_config()
    out = ["| key | type | default | constraint | meaning |", "|---|---|---|---|---|"]
    out += _model_rows(TownConfig, cfg, "")
    out.append("")
    out.append("Sections (their model docstrings):")
    out.append("")
    for name, field in TownConfig.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.append(f"- `{name}` ({ann.__name__}): {_first_line(ann.__doc__) or '—'}")
    return "\n".join(out)


def block_manifest() -> str:
    from townlet_env import manifest as mf

    out = []
    for model in (mf.ObjectSpec, mf.AffordanceSpec):
        out.append(f"**{model.__name__}** — {_first_line(model.__doc__)}")
        out.append("")
        out.append("| field | type | default | constraint | meaning |")
        out.append("|---|---|---|---|---|")
        out += _model_rows(model, None, "")
        out.append("")
    hooks = ", ".join(f"`{stage}`: {sorted(names) or 'none'}" for stage, names in mf.HOOK_ALLOWLIST.items())
    out.append(f"Hook allowlist per stage: {hooks}.")
    out.append("")
    out.append(f"Glyphs reserved for terrain (an object may not use them): `{''.join(sorted(mf.RESERVED_GLYPHS))}`.")
    return "\n".join(out)


def block_preconditions() -> str:
    from townlet_env import expressions as ex

    out = ["| name | meaning |", "|---|---|"]
    out += [f"| `{k}` | {v} |" for k, v in ex.SCALAR_NAMES.items()]
    out += [f"| `{root}.<key>` | the object's stock counter `<key>` |" for root in ex.ATTRIBUTE_ROOTS]
    ops: list[str] = []
    for table in ("_COMPARE", "_BINARY"):
        symbols = {"Eq": "==", "NotEq": "!=", "Lt": "<", "LtE": "<=", "Gt": ">", "GtE": ">=", "Add": "+"}
        symbols |= {"Sub": "-", "Mult": "*"}
        ops += [symbols.get(op.__name__, op.__name__) for op in getattr(ex, table, {})]
    out.append("")
    out.append(
        "Operators: " + " ".join(f"`{o}`" for o in ops) + ", `and`, `or`, `not`, unary `-`/`+`; "
        "literals: numbers, `true`, `false` (and Python's `True`/`False`)."
    )
    limit = getattr(ex, "MAX_SOURCE_LENGTH", None)
    if limit is not None:
        out.append(f"A precondition is at most {limit} characters long.")
    for para in inspect.cleandoc(ex.__doc__ or "").split("\n\n")[2:]:  # [0] title, [1] the prose above
        out.append("")
        out.append(para.replace("``", "`").replace("\n", " "))
    return "\n".join(out)


def block_rewards() -> str:
    from townlet_env.rewards.engine import TERMS

    par = townlet_env.parallel_env()
    names = getattr(par.unwrapped, "reward_terms_names", TERMS)
    return '`infos[agent]["reward_terms"]` columns, in order: ' + ", ".join(f"`{t}`" for t in names) + "."


def block_map() -> str:
    from townlet_env.world import map as map_mod

    cfg = make_config()
    rules = townlet_env.parallel_env().unwrapped.rules
    out = ["| glyph | meaning |", "|---|---|"]
    terrain = {
        "#": "wall",
        ".": "floor",
        ",": "street",
        "+": "door",
        "h": "home (spawn spot)",
        "E": "entry (newcomers arrive here)",
    }
    walkable = getattr(map_mod, "WALKABLE_GLYPHS", frozenset())
    for glyph, meaning in terrain.items():
        out.append(f"| `{glyph}` | {meaning}{' (walkable)' if glyph in walkable else ''} |")
    for name, spec in rules.manifest.objects.items():
        out.append(f"| `{spec.glyph}` | object `{name}` (blocks movement; used from a neighbour tile) |")
    h, w = rules.town.shape
    out.append("")
    out.append(
        f"Default map `{cfg.map}`: {h}x{w}, {len(rules.town.homes)} homes, {len(rules.town.entries)} entries, "
        f"{len(rules.town.obj_type)} objects."
    )
    return "\n".join(out)


def block_versions() -> str:
    from townlet_env.observations.layout import LAYOUT_VERSION

    out = [f"Observation layout version: `{LAYOUT_VERSION}`.", ""]
    out.append("| variant | action mode | n_actions | size | signature hash |")
    out.append("|---|---|---|---|---|")
    for v in VARIANTS:
        for m in MODES:
            sig = _layout(v, m).signature()
            out.append(f"| `{v}` | `{m}` | {sig['n_actions']} | {sig['size']} | `{sig['hash']}` |")
    cfg = make_config()
    out.append("")
    out.append(f"Shipped default config: `config_id: {cfg.config_id}`; needs columns {list(NEEDS)}.")
    return "\n".join(out)


BLOCKS: dict[str, Callable[[], str]] = {
    "summary": block_summary,
    "actions": block_actions,
    "observations": block_observations,
    "rewards": block_rewards,
    "config": block_config,
    "manifest": block_manifest,
    "preconditions": block_preconditions,
    "map": block_map,
    "versions": block_versions,
}
_MARKER = re.compile(r"(<!-- BEGIN GENERATED: (\w+) -->\n)(.*?)(<!-- END GENERATED: \2 -->)", re.S)


def render_doc(text: str) -> str:
    """``text`` with every generated block replaced by a fresh one."""

    def fill(m: re.Match[str]) -> str:
        name = m.group(2)
        if name not in BLOCKS:
            raise SystemExit(f"unknown generated block {name!r}; known: {sorted(BLOCKS)}")
        return f"{m.group(1)}{BLOCKS[name]()}\n{m.group(4)}"

    return _MARKER.sub(fill, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--block", choices=sorted(BLOCKS), help="print one block")
    group.add_argument("--write", type=Path, metavar="DOC", help="refresh the generated blocks in DOC")
    group.add_argument("--check", type=Path, metavar="DOC", help="exit 1 if DOC's generated blocks are stale")
    args = parser.parse_args(argv)
    if args.write or args.check:
        path = args.write or args.check
        text = path.read_text()
        fresh = render_doc(text)
        if args.check:
            if fresh != text:
                print(f"{path}: generated tables are stale; run: python {sys.argv[0]} --write {path}")
                return 1
            print(f"{path}: generated tables are current")
            return 0
        path.write_text(fresh)
        print(f"{path}: {len(_MARKER.findall(text))} generated blocks refreshed")
        return 0
    names = [args.block] if args.block else list(BLOCKS)
    for name in names:
        print(f"<!-- BEGIN GENERATED: {name} -->\n{BLOCKS[name]()}\n<!-- END GENERATED: {name} -->\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
