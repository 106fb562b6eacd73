"""A restricted expression language for affordance preconditions.

Preconditions such as ``"stock.meals >= 1 and wallet >= price"`` are parsed once with
:mod:`ast`, checked against an allowlist of node types (no calls, no subscripts, no
attribute access except ``stock.<key>``) and compiled to closures that evaluate
element-wise over numpy arrays, so a whole batch of agents is checked in one call.

The language is typed: names, ``stock.<key>`` and number literals are numbers; comparisons,
``true``/``false`` and ``and``/``or``/``not`` are truth values. Arithmetic (``+ - *``, unary
``-``/``+``) takes numbers, ``and``/``or``/``not`` take truth values, ordering comparisons take
numbers, ``==``/``!=`` take two of a kind, and the whole precondition must be a truth value
(write ``wallet > 0``, not ``wallet``).
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
#: Longest precondition accepted (characters); keeps parsing and evaluation shallow.
MAX_SOURCE_LENGTH = 500

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
_EQUALITY = (ast.Eq, ast.NotEq)
_ALLOWED = (
    "numbers, true/false, the names " + ", ".join(SCALAR_NAMES) + ", stock.<key>, + - *, "
    "comparisons (== != < <= > >=, chains allowed), and/or/not, parentheses"
)
#: Readable names for constructs people try and the language refuses.
_REFUSED: dict[type[ast.AST], str] = {
    ast.Call: "function calls",
    ast.Subscript: "subscripts ([...])",
    ast.Lambda: "lambda expressions",
    ast.IfExp: "conditional expressions (x if c else y)",
    ast.NamedExpr: "assignment expressions (:=)",
    ast.List: "lists",
    ast.Tuple: "tuples",
    ast.Set: "sets",
    ast.Dict: "dicts",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "generator expressions",
    ast.JoinedStr: "f-strings",
    ast.Starred: "starred expressions",
    ast.Await: "await expressions",
    ast.Yield: "yield expressions",
    ast.YieldFrom: "yield expressions",
    ast.Slice: "slices",
}
_OPERATOR_TEXT: dict[type[ast.AST], str] = {
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.Invert: "~",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}


class ExpressionError(ValueError):
    """The precondition text is not in the allowed language."""


@dataclass(frozen=True)
class Expression:
    """A compiled precondition.

    Attributes:
        source: the text it was compiled from.
        names: the context keys it reads (``"wallet"``, ``"stock.meals"``, ...).

    """

    source: str
    names: frozenset[str]
    _fn: _Fn

    def evaluate(self, ctx: Context) -> np.ndarray:
        """Evaluate to a boolean array (broadcast over the arrays in ``ctx``)."""
        return np.asarray(self._fn(ctx), dtype=bool)


def compile_expression(source: str) -> Expression:
    """Parse, type-check and compile a precondition.

    Args:
        source: the precondition text, e.g. ``"stock.meals >= 1 and wallet >= price"``.

    Returns:
        The compiled :class:`Expression`.

    Raises:
        ExpressionError: the text is not valid syntax, uses a construct or name outside the
            language, or is not a truth value.

    """
    if not isinstance(source, str):
        raise ExpressionError(f"a precondition must be a string, got {type(source).__name__}")
    text = source.strip()
    if len(text) > MAX_SOURCE_LENGTH:
        raise ExpressionError(f"precondition is {len(text)} characters; at most {MAX_SOURCE_LENGTH} are allowed")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"syntax error in {source!r}: {exc.msg}") from None
    except ValueError as exc:  # e.g. a NUL character in the text
        raise ExpressionError(f"cannot parse {source!r}: {exc}") from None
    except RecursionError:
        raise ExpressionError(f"{source!r} is nested too deeply") from None
    names: set[str] = set()
    fn, kind = _compile(tree.body, names)
    if kind != "bool":
        raise ExpressionError(f"{source!r} is a number, not true/false; compare it (for example `wallet > 0`)")
    return Expression(source, frozenset(names), fn)


def _expect(kind: str, wanted: str, node: ast.expr, context: str) -> None:
    if kind != wanted:
        what = "a number" if kind == "num" else "true/false"
        need = "numbers" if wanted == "num" else "true/false values"
        raise ExpressionError(f"{context} takes {need}, but {ast.unparse(node)!r} is {what}")


def _refuse(node: ast.AST) -> ExpressionError:
    label = _REFUSED.get(type(node))
    if label is None:
        label = f"{type(node).__name__} expressions"
    return ExpressionError(f"{label} are not allowed in a precondition; allowed: {_ALLOWED}")


def _compile(node: ast.expr, names: set[str]) -> tuple[_Fn, str]:
    """Compile ``node`` to a closure and its kind, ``"num"`` or ``"bool"``."""
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool):
            flag = node.value
            return (lambda ctx: flag), "bool"
        if isinstance(node.value, int | float):
            number = node.value
            return (lambda ctx: number), "num"
        raise ExpressionError(
            f"constant {node.value!r} is not allowed; only numbers and true/false are (allowed: {_ALLOWED})"
        )
    if isinstance(node, ast.Name):
        if node.id in ("true", "false"):
            flag = node.id == "true"
            return (lambda ctx: flag), "bool"
        if node.id not in SCALAR_NAMES:
            raise ExpressionError(f"unknown name {node.id!r}; allowed: {sorted(SCALAR_NAMES)} and stock.<key>")
        key = node.id
        names.add(key)
        return (lambda ctx: ctx[key]), "num"
    if isinstance(node, ast.Attribute):
        if not (isinstance(node.value, ast.Name) and node.value.id in ATTRIBUTE_ROOTS):
            raise ExpressionError(f"attribute access {ast.unparse(node)!r} is not allowed; only stock.<key> is")
        if node.attr.startswith("_"):
            raise ExpressionError(f"stock key {node.attr!r} is not allowed; stock keys do not start with '_'")
        key = f"{node.value.id}.{node.attr}"
        names.add(key)
        return (lambda ctx: ctx[key]), "num"
    if isinstance(node, ast.BoolOp):
        word = "and" if isinstance(node.op, ast.And) else "or"
        parts = []
        for value in node.values:
            part, kind = _compile(value, names)
            _expect(kind, "bool", value, f"`{word}`")
            parts.append(part)
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or

        def boolop(ctx: Context) -> Value:
            out = np.asarray(parts[0](ctx), dtype=bool)
            for part in parts[1:]:
                out = combine(out, part(ctx))
            return out

        return boolop, "bool"
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.Not):
            inner, kind = _compile(node.operand, names)
            _expect(kind, "bool", node.operand, "`not`")
            return (lambda ctx: np.logical_not(inner(ctx))), "bool"
        if isinstance(node.op, ast.USub | ast.UAdd):
            inner, kind = _compile(node.operand, names)
            _expect(kind, "num", node.operand, "unary minus/plus")
            sign = -1.0 if isinstance(node.op, ast.USub) else 1.0
            return (lambda ctx: sign * inner(ctx)), "num"
        raise ExpressionError(f"operator {_OPERATOR_TEXT.get(type(node.op), type(node.op).__name__)!r} is not allowed")
    if isinstance(node, ast.BinOp):
        op_type = type(node.op)
        if op_type not in _BINARY:
            text = _OPERATOR_TEXT.get(op_type, op_type.__name__)
            raise ExpressionError(f"operator {text!r} is not allowed; arithmetic may use + - *")
        op = _BINARY[op_type]
        left, left_kind = _compile(node.left, names)
        right, right_kind = _compile(node.right, names)
        _expect(left_kind, "num", node.left, "arithmetic")
        _expect(right_kind, "num", node.right, "arithmetic")
        return (lambda ctx: op(left(ctx), right(ctx))), "num"
    if isinstance(node, ast.Compare):
        for cmp in node.ops:
            if type(cmp) not in _COMPARE:
                text = _OPERATOR_TEXT.get(type(cmp), type(cmp).__name__)
                raise ExpressionError(f"comparison {text!r} is not allowed; use == != < <= > >=")
        exprs = [node.left, *node.comparators]
        compiled = [_compile(e, names) for e in exprs]
        for i, cmp in enumerate(node.ops):
            (_, a), (_, b) = compiled[i], compiled[i + 1]
            if isinstance(cmp, _EQUALITY):
                if a != b:
                    raise ExpressionError(
                        f"`==`/`!=` compares two numbers or two true/false values, not "
                        f"{ast.unparse(exprs[i])!r} with {ast.unparse(exprs[i + 1])!r}"
                    )
            else:
                _expect(a, "num", exprs[i], "an ordering comparison")
                _expect(b, "num", exprs[i + 1], "an ordering comparison")
        operands = [fn for fn, _ in compiled]
        ops = [_COMPARE[type(o)] for o in node.ops]

        def compare(ctx: Context) -> Value:
            values = [f(ctx) for f in operands]
            out = np.asarray(ops[0](values[0], values[1]), dtype=bool)
            for i, op in enumerate(ops[1:], start=1):
                out = out & op(values[i], values[i + 1])
            return out

        return compare, "bool"
    raise _refuse(node)
