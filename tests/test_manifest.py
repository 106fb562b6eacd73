"""The affordance manifest is validated fail-fast, naming file, entry and field.

Three layers: the shipped manifest loads and hashes its bytes; a table of hand-written
invalid manifests, one per rule; and a property test that mutates the shipped manifest in
ways that are invalid by construction (each mutation knows the entry and field it breaks)
and checks that the loader, and ``build_rules`` behind it, refuse every one.
"""

from __future__ import annotations

import copy
import hashlib
import keyword
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import event, given, note, settings
from hypothesis import strategies as st

from townlet_env.config import DATA_DIR, NEEDS, make_config
from townlet_env.expressions import SCALAR_NAMES
from townlet_env.manifest import HOOK_ALLOWLIST, RESERVED_GLYPHS, ManifestError, load_manifest
from townlet_env.world.rules import build_rules

SHIPPED = DATA_DIR / "affordances.yaml"
PRICES = {"meal", "ingredients", "shower"}  # the default config's economy prices


def shipped() -> dict[str, Any]:
    """The shipped manifest as a plain dict (a fresh copy every call)."""
    data = yaml.safe_load(SHIPPED.read_text())
    assert isinstance(data, dict)
    return data


BASE = shipped()
OBJECTS = list(BASE["objects"])
AFFORDANCES = list(BASE["affordances"])


def write(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


def refusal(path: Path, prices: set[str] | None = None) -> str:
    """The ManifestError message for ``path``, checking every line names the file."""
    with pytest.raises(ManifestError) as info:
        load_manifest(path, prices=prices)
    message = str(info.value)
    for line in message.splitlines():
        assert line.startswith(f"{path}: "), line
    return message


# --------------------------------------------------------------------------- the shipped file


def test_shipped_manifest_loads_and_hashes_its_bytes() -> None:
    manifest = load_manifest(SHIPPED, prices=PRICES)
    assert manifest.sha256 == hashlib.sha256(SHIPPED.read_bytes()).hexdigest()
    assert manifest.object_types == OBJECTS
    assert manifest.affordance_ids == AFFORDANCES
    # every affordance with a precondition has it compiled
    with_pre = {a for a, spec in BASE["affordances"].items() if "preconditions" in spec}
    assert set(manifest.preconditions) == with_pre


def test_sha256_follows_the_bytes_not_the_content(tmp_path: Path) -> None:
    # Same content, one more comment line: a different file, so a different identity.
    copy_path = tmp_path / "m.yaml"
    copy_path.write_bytes(SHIPPED.read_bytes() + b"# trailing comment\n")
    assert load_manifest(copy_path).sha256 == hashlib.sha256(copy_path.read_bytes()).hexdigest()
    assert load_manifest(copy_path).sha256 != load_manifest(SHIPPED).sha256


def test_shipped_manifest_reaches_the_simulation() -> None:
    rules = build_rules(make_config())
    assert rules.manifest.sha256 == hashlib.sha256(SHIPPED.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- one rule per row

Edit = Callable[[dict[str, Any]], None]


def _set(*keys: str, value: Any) -> Edit:
    def edit(d: dict[str, Any]) -> None:
        for key in keys[:-1]:
            d = d[key]
        d[keys[-1]] = value

    return edit


def _drop(*keys: str) -> Edit:
    def edit(d: dict[str, Any]) -> None:
        for key in keys[:-1]:
            d = d[key]
        del d[keys[-1]]

    return edit


def _rename_affordance(old: str, new: str) -> Edit:
    def edit(d: dict[str, Any]) -> None:
        d["affordances"][new] = d["affordances"].pop(old)

    return edit


def _pre(aff: str, text: Any) -> Edit:
    return _set("affordances", aff, "preconditions", value=text)


# (id, edit, substrings the message must contain: the entry.field, and what is wrong)
INVALID: list[tuple[str, Edit, list[str]]] = [
    ("missing version", _drop("version"), ["version: Field required"]),
    ("version 2", _set("version", value=2), ["version:", "unsupported version 2"]),
    ("version true", _set("version", value=True), ["version:", "valid integer"]),
    ("missing objects", _drop("objects"), ["objects: Field required"]),
    ("empty affordances", _set("affordances", value={}), ["affordances:", "at least 1"]),
    ("unknown top-level key", _set("extras", value=1), ["extras: unknown key"]),
    ("unknown object field", _set("objects", "fridge", "colour", value="red"), ["objects.fridge.colour: unknown key"]),
    (
        "unknown affordance field",
        _set("affordances", "eat_meal", "speed", value=2),
        ["affordances.eat_meal.speed: unknown key"],
    ),
    (
        "unknown hook stage",
        _set("affordances", "eat_meal", "hooks", "during", value=[]),
        ["affordances.eat_meal.hooks.during: unknown key"],
    ),
    ("missing object", _drop("affordances", "sleep", "object"), ["affordances.sleep.object: Field required"]),
    ("missing duration", _drop("affordances", "sleep", "duration"), ["affordances.sleep.duration: Field required"]),
    ("missing glyph", _drop("objects", "bed", "glyph"), ["objects.bed.glyph: Field required"]),
    (
        "zero duration",
        _set("affordances", "sleep", "duration", value=0),
        ["affordances.sleep.duration:", "greater than 0"],
    ),
    (
        "negative duration",
        _set("affordances", "sleep", "duration", value=-5),
        ["affordances.sleep.duration:", "greater than 0"],
    ),
    (
        "duration over a day",
        _set("affordances", "sleep", "duration", value=1441),
        ["affordances.sleep.duration:", "less than or equal to 1440"],
    ),
    (
        "duration as text",
        _set("affordances", "sleep", "duration", value="15"),
        ["affordances.sleep.duration:", "valid integer"],
    ),
    (
        "duration fractional",
        _set("affordances", "sleep", "duration", value=1.5),
        ["affordances.sleep.duration:", "valid integer"],
    ),
    (
        "effects unknown need",
        _set("affordances", "eat_meal", "effects", value={"happiness": 0.1}),
        ["affordances.eat_meal.effects:", "unknown needs ['happiness']"],
    ),
    (
        "effects too large",
        _set("affordances", "eat_meal", "effects", value={"hunger": 1.5}),
        ["affordances.eat_meal.effects:", "[-1.0, 1.0]"],
    ),
    (
        "effects too negative",
        _set("affordances", "eat_meal", "effects", value={"energy": -2}),
        ["affordances.eat_meal.effects:", "[-1.0, 1.0]"],
    ),
    (
        "effects not a number",
        _set("affordances", "eat_meal", "effects", value={"hunger": "lots"}),
        ["affordances.eat_meal.effects.hunger:", "valid number"],
    ),
    (
        "effects nan",
        _set("affordances", "eat_meal", "effects", value={"hunger": float("nan")}),
        ["affordances.eat_meal.effects:"],
    ),
    (
        "per_tick too large",
        _set("affordances", "sleep", "per_tick", value={"energy": 0.2}),
        ["affordances.sleep.per_tick:", "[-0.05, 0.05]"],
    ),
    (
        "per_tick unknown need",
        _set("affordances", "sleep", "per_tick", value={"mood": 0.01}),
        ["affordances.sleep.per_tick:", "unknown needs ['mood']"],
    ),
    (
        "negative stock",
        _set("objects", "fridge", "stock", value={"meals": -1}),
        ["objects.fridge.stock:", "[0, 10000]"],
    ),
    (
        "huge stock",
        _set("objects", "fridge", "stock", value={"meals": 10_001}),
        ["objects.fridge.stock:", "[0, 10000]"],
    ),
    (
        "stock as bool",
        _set("objects", "fridge", "stock", value={"meals": True}),
        ["objects.fridge.stock.meals:", "valid integer"],
    ),
    (
        "stock key not an identifier",
        _set("objects", "fridge", "stock", "hot meals", value=1),
        ["objects.fridge.stock:", "identifiers"],
    ),
    (
        "restock key not in stock",
        _set("objects", "fridge", "restock", value={"meals": 8, "soup": 2}),
        ["objects.fridge.restock:", "['soup'] are not in stock"],
    ),
    ("capacity 2", _set("objects", "bed", "capacity", value=2), ["objects.bed.capacity:", "less than or equal to 1"]),
    ("capacity true", _set("objects", "bed", "capacity", value=True), ["objects.bed.capacity:", "valid integer"]),
    (
        "duplicate glyph",
        _set("objects", "stove", "glyph", value="F"),
        ["objects.stove.glyph:", "already used by fridge"],
    ),
    ("reserved glyph", _set("objects", "bed", "glyph", value="#"), ["objects.bed.glyph:", "reserved"]),
    ("reserved glyph h", _set("objects", "bed", "glyph", value="h"), ["objects.bed.glyph:", "reserved"]),
    ("two-character glyph", _set("objects", "bed", "glyph", value="BB"), ["objects.bed.glyph:", "at most 1 character"]),
    ("non-ASCII glyph", _set("objects", "bed", "glyph", value="é"), ["objects.bed.glyph:", "printable ASCII"]),
    ("control glyph", _set("objects", "bed", "glyph", value="\t"), ["objects.bed.glyph:", "printable ASCII"]),
    (
        "object name not an identifier",
        _set("objects", "big bed", value={"glyph": "Z"}),
        ["objects.big bed:", "identifier"],
    ),
    (
        "affordance id not an identifier",
        _rename_affordance("sleep", "go-to-sleep"),
        ["affordances.go-to-sleep:", "identifier"],
    ),
    (
        "affordance id equals object type",
        _rename_affordance("sleep", "bed"),
        ["affordances.bed:", "also an object type"],
    ),
    (
        "unknown object",
        _set("affordances", "eat_meal", "object", value="freezer"),
        ["affordances.eat_meal.object:", "unknown object type 'freezer'"],
    ),
    (
        "empty object",
        _set("affordances", "eat_meal", "object", value=""),
        ["affordances.eat_meal.object:", "at least 1 character"],
    ),
    (
        "produces without produces_into",
        _drop("affordances", "cook_meal", "produces_into"),
        ["affordances.cook_meal.produces_into:", "required when produces is set"],
    ),
    (
        "produces_into without produces",
        _set("affordances", "sleep", "produces_into", value="fridge"),
        ["affordances.sleep.produces_into:", "produces is empty"],
    ),
    (
        "produces_into unknown",
        _set("affordances", "cook_meal", "produces_into", value="pantry"),
        ["affordances.cook_meal.produces_into:", "unknown object type 'pantry'"],
    ),
    (
        "produces a stock the target lacks",
        _set("affordances", "cook_meal", "produces", value={"cakes": 1}),
        ["affordances.cook_meal.produces:", "fridge has no stock ['cakes']"],
    ),
    (
        "produces zero",
        _set("affordances", "cook_meal", "produces", value={"meals": 0}),
        ["affordances.cook_meal.produces:", "[1, 100]"],
    ),
    (
        "consumes a stock the object lacks",
        _set("affordances", "take_shower", "consumes", value={"soap": 1}),
        ["affordances.take_shower.consumes:", "shower has no stock ['soap']"],
    ),
    (
        "consumes too many",
        _set("affordances", "eat_meal", "consumes", value={"meals": 101}),
        ["affordances.eat_meal.consumes:", "[1, 100]"],
    ),
    (
        "unknown hook",
        _set("affordances", "eat_meal", "hooks", value={"after": ["teleport"]}),
        ["affordances.eat_meal.hooks.after:", "'teleport' is not allowed"],
    ),
    (
        "hook in the wrong stage",
        _set("affordances", "eat_meal", "hooks", value={"before": ["shared_meal"]}),
        ["affordances.eat_meal.hooks.before:", "'shared_meal' is not allowed"],
    ),
    (
        "hook list as a string",
        _set("affordances", "eat_meal", "hooks", value={"after": "shared_meal"}),
        ["affordances.eat_meal.hooks.after:", "valid tuple"],
    ),
    (
        "hook name not a string",
        _set("affordances", "eat_meal", "hooks", value={"after": [3]}),
        ["affordances.eat_meal.hooks.after.0:", "valid string"],
    ),
    (
        "empty price",
        _set("affordances", "eat_meal", "price", value=""),
        ["affordances.eat_meal.price:", "at least 1 character"],
    ),
    ("precondition syntax", _pre("eat_meal", "wallet >="), ["affordances.eat_meal.preconditions:", "syntax error"]),
    ("precondition empty", _pre("eat_meal", ""), ["affordances.eat_meal.preconditions:", "syntax error"]),
    ("precondition not a string", _pre("eat_meal", 5), ["affordances.eat_meal.preconditions:", "valid string"]),
    ("precondition call", _pre("eat_meal", "f(x)"), ["affordances.eat_meal.preconditions:", "function calls"]),
    (
        "precondition import",
        _pre("eat_meal", "__import__('os').system('true') == 0"),
        ["affordances.eat_meal.preconditions:", "function calls"],
    ),
    (
        "precondition attribute escape",
        _pre("eat_meal", "wallet.__class__"),
        ["affordances.eat_meal.preconditions:", "attribute access 'wallet.__class__'"],
    ),
    (
        "precondition dunder stock",
        _pre("eat_meal", "stock.__class__ > 0"),
        ["affordances.eat_meal.preconditions:", "stock key '__class__'"],
    ),
    (
        "precondition subscript",
        _pre("eat_meal", "stock['meals'] > 0"),
        ["affordances.eat_meal.preconditions:", "subscripts"],
    ),
    ("precondition lambda", _pre("eat_meal", "lambda: true"), ["affordances.eat_meal.preconditions:", "lambda"]),
    (
        "precondition unknown name",
        _pre("eat_meal", "karma > 1"),
        ["affordances.eat_meal.preconditions:", "unknown name 'karma'"],
    ),
    ("precondition not true/false", _pre("eat_meal", "wallet"), ["affordances.eat_meal.preconditions:", "is a number"]),
    (
        "precondition unknown stock",
        _pre("eat_meal", "stock.soup >= 1"),
        ["affordances.eat_meal.preconditions:", "fridge has no stock 'soup'"],
    ),
    ("top level a list", lambda d: d.clear(), ["top level must be a mapping"]),
]


@pytest.mark.parametrize(("edit", "expected"), [(e, x) for _, e, x in INVALID], ids=[i for i, _, _ in INVALID])
def test_invalid_manifest_is_refused_naming_entry_and_field(tmp_path: Path, edit: Edit, expected: list[str]) -> None:
    data = shipped()
    edit(data)
    path = write(tmp_path / "m.yaml", data if data else [])
    message = refusal(path)
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in:\n{message}"


def test_price_must_be_an_economy_price_when_prices_are_given(tmp_path: Path) -> None:
    path = write(tmp_path / "m.yaml", shipped())
    message = refusal(path, prices={"meal", "shower"})
    assert "affordances.cook_meal.price: 'ingredients' is not an economy price" in message
    # without prices the same file is fine (the config check happens in build_rules)
    load_manifest(path)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    data = shipped()
    data["objects"]["stove"]["glyph"] = "#"
    data["affordances"]["eat_meal"]["object"] = "freezer"
    data["affordances"]["take_shower"]["hooks"] = {"fail": ["shared_meal"]}
    data["affordances"]["work_cafe"]["preconditions"] = "on_shift()"
    message = refusal(write(tmp_path / "m.yaml", data))
    lines = message.splitlines()
    assert len(lines) == 4, message
    for fragment in (
        "objects.stove.glyph",
        "affordances.eat_meal.object",
        "affordances.take_shower.hooks.fail",
        "affordances.work_cafe.preconditions",
    ):
        assert sum(fragment in line for line in lines) == 1, fragment


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "version: 1\nversion: 1\nobjects: {bed: {glyph: B}}\naffordances: {sleep: {object: bed, duration: 1}}\n",
            ["line 2: duplicate key 'version' (first on line 1)"],
        ),
        (
            "version: 1\nobjects: {bed: {glyph: B}}\naffordances:\n"
            "  sleep: {object: bed, duration: 1}\n  sleep: {object: bed, duration: 2}\n",
            ["line 5: duplicate key 'sleep' (first on line 4)"],
        ),
        (
            "version: 1\nobjects: {bed: {glyph: B, glyph: C}}\naffordances: {sleep: {object: bed, duration: 1}}\n",
            ["line 2: duplicate key 'glyph'"],
        ),
        ("version: 1\nobjects: [unclosed\n", ["not valid YAML", "line"]),
        ("", ["top level must be a mapping"]),
        ("- version: 1\n", ["top level must be a mapping"]),
        ("just a string\n", ["top level must be a mapping"]),
    ],
    ids=["dup-version", "dup-affordance", "dup-field", "bad-yaml", "empty", "list", "scalar"],
)
def test_file_level_problems(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    message = refusal(path)
    assert len(message.splitlines()) == 1, message
    for fragment in expected:
        assert fragment in message, message


def test_yaml_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "version: 1\nobjects:\n  bed: &base {glyph: B}\n  cot: {<<: *base, glyph: T}\n"
        "affordances: {sleep: {object: bed, duration: 1}}\n"
    )
    assert load_manifest(path).objects["cot"].glyph == "T"


def test_unreadable_paths(tmp_path: Path) -> None:
    assert "file not found" in refusal(tmp_path / "missing.yaml")
    assert "cannot read the file" in refusal(tmp_path)  # a directory


def test_non_utf8_bytes_are_a_yaml_error(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_bytes(b"version: 1\nobjects: {bed: {glyph: \xff}}\n")
    assert "not valid YAML" in refusal(path)


# --------------------------------------------------------------------------- property test
#
# Each mutation edits a fresh copy of the shipped manifest so that it is invalid for a reason
# we know, and returns the substring the error must contain ("<entry>.<field>", or the top
# level key) and whether the check needs the economy's prices.

Mutation = tuple[str, bool]  # (expected substring, needs prices)

_FIELDS = {
    "top": {"version", "objects", "affordances"},
    "object": {"glyph", "capacity", "stock", "restock"},
    "affordance": {
        "object",
        "duration",
        "price",
        "effects",
        "per_tick",
        "consumes",
        "produces",
        "produces_into",
        "preconditions",
        "hooks",
    },
    "hooks": {"before", "after", "fail"},
}
_IDENT = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True).filter(lambda s: not keyword.iskeyword(s))
_NON_IDENT = st.sampled_from(["", "two words", "dash-ed", "1st", "dot.ted", "ünï"])
# wrong for every field they are used in (no plain ints: 3 is a valid duration or count)
_JUNK = st.sampled_from([None, "text", 1.5, True, [1, 2], {"a": 1}])


def _not_a_str(v: Any) -> bool:
    return not isinstance(v, str)


def _drop_required(data: st.DataObject, d: dict[str, Any]) -> Mutation:
    where = data.draw(st.sampled_from(["top", "object", "affordance"]))
    if where == "top":
        key = data.draw(st.sampled_from(sorted(_FIELDS["top"])))
        del d[key]
        return key, False
    if where == "object":
        obj = data.draw(st.sampled_from(OBJECTS))
        del d["objects"][obj]["glyph"]
        return f"objects.{obj}.glyph", False
    aff = data.draw(st.sampled_from(AFFORDANCES))
    key = data.draw(st.sampled_from(["object", "duration"]))
    del d["affordances"][aff][key]
    return f"affordances.{aff}.{key}", False


def _bad_value(data: st.DataObject, d: dict[str, Any]) -> Mutation:
    """A field set to a wrong type or an out-of-range value."""
    target = data.draw(
        st.sampled_from(
            [
                "version",
                "objects",
                "affordances",
                "glyph",
                "capacity",
                "stock",
                "restock",
                "duration",
                "object",
                "price",
                "effects",
                "per_tick",
                "consumes",
                "produces",
                "preconditions",
                "hooks",
            ]
        )
    )
    if target == "version":
        d["version"] = data.draw(st.integers().filter(lambda v: v != 1) | _JUNK.filter(lambda v: v is not True))
        return "version", False
    if target in ("objects", "affordances"):
        d[target] = data.draw(st.sampled_from([None, [], {}, "x", 3]))
        return target, False
    if target in ("glyph", "capacity", "stock", "restock"):
        obj = data.draw(st.sampled_from(OBJECTS))
        spec = d["objects"][obj]
        where = f"objects.{obj}.{target}"
        if target == "glyph":
            spec["glyph"] = data.draw(
                st.sampled_from(["", "AB", "é", "\t", "\n", *sorted(RESERVED_GLYPHS)]) | _JUNK.filter(_not_a_str)
            )
        elif target == "capacity":
            spec["capacity"] = data.draw(st.integers().filter(lambda v: v not in (0, 1)) | _JUNK)
        else:
            count = data.draw(st.integers(max_value=-1) | st.integers(min_value=10_001) | _JUNK)
            # restock needs a stock key to be valid otherwise; give both a key
            spec["stock"] = {"meals": 1}
            spec[target] = {"meals": count} if data.draw(st.booleans()) else data.draw(_JUNK.filter(_not_dict))
        return where, False
    aff = data.draw(st.sampled_from(AFFORDANCES))
    spec = d["affordances"][aff]
    where = f"affordances.{aff}.{target}"
    if target == "duration":
        spec[target] = data.draw(st.integers(max_value=0) | st.integers(min_value=1441) | _JUNK)
    elif target == "object":
        spec[target] = data.draw(st.sampled_from(["", "nowhere"]) | _JUNK.filter(_not_a_str))
    elif target == "price":
        spec[target] = data.draw(st.sampled_from([""]) | _JUNK.filter(lambda v: v is not None and _not_a_str(v)))
    elif target in ("effects", "per_tick"):
        limit = 1.0 if target == "effects" else 0.05
        need = data.draw(st.sampled_from(NEEDS))
        choice = data.draw(st.sampled_from(["range", "need", "type", "container"]))
        if choice == "range":
            value = data.draw(
                st.floats(min_value=limit, exclude_min=True) | st.floats(max_value=-limit, exclude_max=True)
            )
            spec[target] = {need: value}
        elif choice == "need":
            spec[target] = {data.draw(_IDENT.filter(lambda s: s not in NEEDS)): 0.0}
        elif choice == "type":
            spec[target] = {need: data.draw(st.sampled_from(["0.1", True, None, [0.1]]))}
        else:
            spec[target] = data.draw(_JUNK.filter(_not_dict))
    elif target in ("consumes", "produces"):
        # keys that exist where they are needed, so only the count is wrong
        count = data.draw(st.integers(max_value=0) | st.integers(min_value=101) | _JUNK)
        spec[target] = {"meals": count}
        if target == "produces":
            spec["produces_into"] = "fridge"
    elif target == "preconditions":
        spec[target] = data.draw(_JUNK.filter(lambda v: v is not None and _not_a_str(v)))
    else:  # hooks
        spec[target] = data.draw(
            _JUNK.filter(_not_dict) | st.sampled_from([{"after": "shared_meal"}, {"after": [1]}, {"after": None}])
        )
    return where, False


def _not_dict(v: Any) -> bool:
    return not isinstance(v, dict)


def _unknown_key(data: st.DataObject, d: dict[str, Any]) -> Mutation:
    where = data.draw(st.sampled_from(["top", "object", "affordance", "hooks"]))
    key = data.draw(_IDENT.filter(lambda k: k not in _FIELDS[where]))
    value = data.draw(_JUNK)
    if where == "top":
        d[key] = value
        return f"{key}: unknown key", False
    if where == "object":
        obj = data.draw(st.sampled_from(OBJECTS))
        d["objects"][obj][key] = value
        return f"objects.{obj}.{key}: unknown key", False
    aff = data.draw(st.sampled_from(AFFORDANCES))
    if where == "affordance":
        d["affordances"][aff][key] = value
        return f"affordances.{aff}.{key}: unknown key", False
    d["affordances"][aff].setdefault("hooks", {})[key] = []
    return f"affordances.{aff}.hooks.{key}: unknown key", False


_BAD_SNIPPETS = [
    "wallet >",
    "(wallet",
    "wallet >= price;",
    "f(x)",
    "wallet(1) > 0",
    "min(wallet, 1) > 0",
    "__import__('os') == 0",
    "wallet.__class__ == 0",
    "wallet.real > 0",
    "stock.__dict__ > 0",
    "stock['meals'] > 0",
    "wallet[0] > 0",
    "lambda: true",
    "(lambda: 1)() > 0",
    "wallet if true else price",
    "(y := 1) > 0",
    "[1] == [1]",
    "'a' == 'a'",
    "None",
    "wallet / 2 > 1",
    "wallet ** 2 > 1",
    "wallet in stock",
    "wallet is 1",
    "wallet",
    "not wallet",
    "wallet + 1",
    "true + 1 > 0",
    "on_shift == true",
    "1 < wallet and",
    "1" + " + 1" * 300 + " > 0",
]


def _corrupt_precondition(data: st.DataObject, d: dict[str, Any]) -> Mutation:
    aff = data.draw(st.sampled_from(AFFORDANCES))
    spec = d["affordances"][aff]
    host_stock = set(d["objects"][spec["object"]].get("stock", {}))
    bad = data.draw(
        st.sampled_from(_BAD_SNIPPETS)
        | _IDENT.filter(lambda s: s not in SCALAR_NAMES and s not in ("true", "false")).map(lambda s: f"{s} > 0")
        | _IDENT.filter(lambda s: s not in host_stock).map(lambda s: f"stock.{s} >= 1")
    )
    current = spec.get("preconditions")
    if current is not None and data.draw(st.booleans()):
        bad = f"({current}) and ({bad})" if data.draw(st.booleans()) else f"({bad}) or ({current})"
    spec["preconditions"] = bad
    return f"affordances.{aff}.preconditions", False


def _break_reference(data: st.DataObject, d: dict[str, Any]) -> Mutation:
    kind = data.draw(
        st.sampled_from(
            [
                "object",
                "delete_object",
                "produces_into",
                "drop_produces_into",
                "produces_key",
                "consumes_key",
                "restock_key",
                "duplicate_glyph",
                "id_is_type",
                "hook",
                "price",
            ]
        )
    )
    objects, affs = d["objects"], d["affordances"]
    if kind == "object":
        aff = data.draw(st.sampled_from(AFFORDANCES))
        affs[aff]["object"] = data.draw(_IDENT.filter(lambda s: s not in objects))
        return f"affordances.{aff}.object", False
    if kind == "delete_object":
        obj = data.draw(st.sampled_from(OBJECTS))
        del objects[obj]
        first_user = next(a for a, spec in affs.items() if spec["object"] == obj)
        return f"affordances.{first_user}.object", False
    if kind == "produces_into":
        affs["cook_meal"]["produces_into"] = data.draw(_IDENT.filter(lambda s: s not in objects))
        return "affordances.cook_meal.produces_into", False
    if kind == "drop_produces_into":
        del affs["cook_meal"]["produces_into"]
        return "affordances.cook_meal.produces_into", False
    if kind == "produces_key":
        target = objects[affs["cook_meal"]["produces_into"]]
        affs["cook_meal"]["produces"] = {data.draw(_IDENT.filter(lambda s: s not in target.get("stock", {}))): 1}
        return "affordances.cook_meal.produces", False
    if kind == "consumes_key":
        aff = data.draw(st.sampled_from(AFFORDANCES))
        stock = objects[affs[aff]["object"]].get("stock", {})
        affs[aff]["consumes"] = {data.draw(_IDENT.filter(lambda s: s not in stock)): 1}
        return f"affordances.{aff}.consumes", False
    if kind == "restock_key":
        obj = data.draw(st.sampled_from(OBJECTS))
        stock = objects[obj].get("stock", {})
        objects[obj]["restock"] = {data.draw(_IDENT.filter(lambda s: s not in stock)): 1}
        return f"objects.{obj}.restock", False
    if kind == "duplicate_glyph":
        i, j = sorted(data.draw(st.lists(st.integers(0, len(OBJECTS) - 1), min_size=2, max_size=2, unique=True)))
        objects[OBJECTS[j]]["glyph"] = objects[OBJECTS[i]]["glyph"]
        return f"objects.{OBJECTS[j]}.glyph", False
    if kind == "id_is_type":
        aff = data.draw(st.sampled_from(AFFORDANCES))
        obj = data.draw(st.sampled_from(OBJECTS))
        affs[obj] = affs.pop(aff)
        return f"affordances.{obj}: id", False
    if kind == "hook":
        aff = data.draw(st.sampled_from(AFFORDANCES))
        stage = data.draw(st.sampled_from(sorted(HOOK_ALLOWLIST)))
        allowed = HOOK_ALLOWLIST[stage]
        name = data.draw(_IDENT.filter(lambda s: s not in allowed) | st.just("shared_meal"))
        if name in allowed:  # shared_meal is allowed after, so put it elsewhere
            stage = "before"
        affs[aff]["hooks"] = {stage: [name]}
        return f"affordances.{aff}.hooks.{stage}", False
    aff = data.draw(st.sampled_from(AFFORDANCES))
    affs[aff]["price"] = data.draw(_IDENT.filter(lambda s: s not in PRICES))
    return f"affordances.{aff}.price", True


MUTATIONS: dict[str, Callable[[st.DataObject, dict[str, Any]], Mutation]] = {
    "drop_required": _drop_required,
    "bad_value": _bad_value,
    "unknown_key": _unknown_key,
    "corrupt_precondition": _corrupt_precondition,
    "break_reference": _break_reference,
}


@pytest.mark.parametrize("snippet", _BAD_SNIPPETS)
@pytest.mark.parametrize("form", ["alone", "and", "or"])
def test_every_bad_precondition_snippet_is_refused(tmp_path: Path, snippet: str, form: str) -> None:
    # Deterministic companion of the property test: each snippet, alone and combined.
    text = {"alone": snippet, "and": f"(wallet >= price) and ({snippet})", "or": f"({snippet}) or true"}[form]
    data = shipped()
    data["affordances"]["take_shower"]["preconditions"] = text
    assert "affordances.take_shower.preconditions: " in refusal(write(tmp_path / "m.yaml", data))


@pytest.mark.parametrize("glyph", sorted(RESERVED_GLYPHS))
def test_every_reserved_glyph_is_refused(tmp_path: Path, glyph: str) -> None:
    data = shipped()
    data["objects"]["stove"]["glyph"] = glyph
    assert "objects.stove.glyph: " in refusal(write(tmp_path / "m.yaml", data))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mutations")


@pytest.mark.parametrize("name", sorted(MUTATIONS))
@settings(derandomize=True, max_examples=80, deadline=None)
@given(data=st.data())
def test_mutated_manifest_is_refused_and_never_reaches_the_simulation(
    workdir: Path, name: str, data: st.DataObject
) -> None:
    d = copy.deepcopy(BASE)
    expected, needs_prices = MUTATIONS[name](data, d)
    path = write(workdir / f"{name}.yaml", d)
    note(path.read_text())
    event(f"{name}: {expected}")
    message = refusal(path, prices=PRICES if needs_prices else None)
    assert expected in message, f"{expected!r} not in:\n{message}"
    # build_rules loads through load_manifest with the config's prices: refused there too.
    with pytest.raises(ManifestError):
        build_rules(make_config(manifest=str(path)))


@settings(derandomize=True, max_examples=30, deadline=None)
@given(
    duration=st.integers(1, 1440),
    effect=st.floats(-1.0, 1.0, allow_nan=False),
    per_tick=st.floats(-0.05, 0.05, allow_nan=False),
    stock=st.integers(0, 10_000),
    capacity=st.sampled_from([0, 1]),
    threshold=st.integers(0, 100),
)
def test_valid_edits_are_accepted(
    workdir: Path, duration: int, effect: float, per_tick: float, stock: int, capacity: int, threshold: int
) -> None:
    # The control for the test above: in-range edits load and keep their values.
    d = copy.deepcopy(BASE)
    d["affordances"]["eat_meal"]["duration"] = duration
    d["affordances"]["eat_meal"]["effects"] = {"hunger": effect}
    d["affordances"]["sleep"]["per_tick"] = {"energy": per_tick}
    d["affordances"]["eat_meal"]["preconditions"] = f"stock.meals >= {threshold} and not wallet < price"
    d["objects"]["fridge"]["stock"] = {"meals": stock}
    d["objects"]["bed"]["capacity"] = capacity
    manifest = load_manifest(write(workdir / "valid.yaml", d), prices=PRICES)
    assert manifest.affordances["eat_meal"].duration == duration
    assert manifest.affordances["eat_meal"].effects == {"hunger": effect}
    assert manifest.affordances["sleep"].per_tick == {"energy": per_tick}
    assert manifest.objects["fridge"].stock == {"meals": stock}
    assert manifest.objects["bed"].capacity == capacity
    assert manifest.preconditions["eat_meal"].names == {"stock.meals", "wallet", "price"}
