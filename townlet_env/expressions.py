"""A restricted expression language for affordance preconditions.

Preconditions such as ``"stock.meals >= 1 and wallet >= price"`` are parsed once with
:mod:`ast`, checked against an allowlist of node types (no calls, no subscripts, no
attribute access except ``stock.<key>`` and ``needs.<need>``) and compiled to closures that
evaluate element-wise over numpy arrays, so a whole batch of agents is checked in one call.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

Value = np.ndarray | float | bool
Context = Mapping[str, Value]
_Fn = Callable[[Context], Value]

#: Plain names a precondition may use, with their meaning (documented in docs/environment.md).
SCALAR_NAMES: dict[str, str] = {
    "hunger": "agent's hunger satiation in [0, 1]",
    "hygiene": "agent's hygiene satiation in [0, 1]",
    "energy": "agent's energy satiation in [0, 1]",
    "wallet": "agent's money",
    "price": "the affordance's price (0 if it names none)",
    "minute": "minute of the sim day, 0-1439",
    "on_shift": "1 if the agent's shift is running now",
}
#: Attribute roots: ``stock.<key>`` reads the object's stock counter.
ATTRIBUTE_ROOTS = ("stock",)

_COMPARE: dict[type[ast.cmpop], Callable[[Value, Value], Value]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_BINARY: dict[type[ast.operator], Callable[[Value, Value], Value]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
}


class ExpressionError(ValueError):
    """The precondition text is not in the allowed language."""


@dataclass(frozen=True)
class Expression:
    """A compiled precondition."""

    source: str
    names: frozenset[str]
    _fn: _Fn

    def evaluate(self, ctx: Context) -> np.ndarray:
        """Evaluate to a boolean array (broadcast over the arrays in ``ctx``)."""
        return np.asarray(self._fn(ctx), dtype=bool)


def compile_expression(source: str) -> Expression:
    """Parse and compile ``source``; raise :class:`ExpressionError` on anything not allowed."""
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"syntax error in {source!r}: {exc.msg}") from None
    names: set[str] = set()
    fn = _compile(tree.body, names)
    return Expression(source, frozenset(names), fn)


def _compile(node: ast.expr, names: set[str]) -> _Fn:
    if isinstance(node, ast.Constant) and isinstance(node.value, bool | int | float):
        value = node.value
        return lambda ctx: value
    if isinstance(node, ast.Name):
        if node.id in ("true", "false"):
            flag = node.id == "true"
            return lambda ctx: flag
        if node.id not in SCALAR_NAMES:
            raise ExpressionError(f"unknown name {node.id!r}; allowed: {sorted(SCALAR_NAMES)}")
        key = node.id
        names.add(key)
        return lambda ctx: ctx[key]
    if isinstance(node, ast.Attribute):
        if not (isinstance(node.value, ast.Name) and node.value.id in ATTRIBUTE_ROOTS):
            raise ExpressionError("attribute access is allowed only as stock.<key>")
        key = f"{node.value.id}.{node.attr}"
        names.add(key)
        return lambda ctx: ctx[key]
    if isinstance(node, ast.BoolOp):
        parts = [_compile(v, names) for v in node.values]
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or

        def boolop(ctx: Context) -> Value:
            out = np.asarray(parts[0](ctx), dtype=bool)
            for part in parts[1:]:
                out = combine(out, part(ctx))
            return out

        return boolop
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.USub | ast.UAdd):
        inner = _compile(node.operand, names)
        if isinstance(node.op, ast.Not):
            return lambda ctx: np.logical_not(inner(ctx))
        sign = -1.0 if isinstance(node.op, ast.USub) else 1.0
        return lambda ctx: sign * inner(ctx)  # type: ignore[operator]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        op = _BINARY[type(node.op)]
        left, right = _compile(node.left, names), _compile(node.right, names)
        return lambda ctx: op(left(ctx), right(ctx))
    if isinstance(node, ast.Compare) and all(type(o) in _COMPARE for o in node.ops):
        operands = [_compile(node.left, names)] + [_compile(c, names) for c in node.comparators]
        ops = [_COMPARE[type(o)] for o in node.ops]

        def compare(ctx: Context) -> Value:
            values = [f(ctx) for f in operands]
            out = np.asarray(ops[0](values[0], values[1]), dtype=bool)
            for i, op in enumerate(ops[1:], start=1):
                out = out & op(values[i], values[i + 1])
            return out

        return compare
    raise ExpressionError(f"{type(node).__name__} is not allowed in a precondition")
