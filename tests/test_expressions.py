"""The precondition language: element-wise semantics on numpy arrays, and what it refuses."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from townlet_env.expressions import MAX_SOURCE_LENGTH, SCALAR_NAMES, Context, ExpressionError, compile_expression

# Three agents with different wallets, needs and shift state, at one object with a stock.
CTX: Context = {
    "wallet": np.array([0.0, 1.0, 5.0]),
    "price": 1.0,
    "hunger": np.array([0.1, 0.5, 0.9]),
    "hygiene": np.array([0.2, 0.2, 0.8]),
    "energy": np.array([1.0, 0.0, 0.5]),
    "minute": np.array([0, 600, 1439]),
    "on_shift": np.array([0, 1, 1]),
    "stock.meals": np.array([0, 3, 1]),
}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("wallet >= price", [False, True, True]),
        ("wallet > price", [False, False, True]),
        ("wallet == 1", [False, True, False]),
        ("wallet != 1", [True, False, True]),
        ("wallet < 1", [True, False, False]),
        ("wallet <= 1", [True, True, False]),
        ("stock.meals >= 1 and wallet >= price", [False, True, True]),
        ("stock.meals >= 2 or hunger > 0.8", [False, True, True]),
        ("not on_shift == 1", [True, False, False]),
        ("not (wallet >= price and hunger < 0.6)", [True, False, True]),
        # chained comparisons mean a < b and b < c
        ("0.2 < hunger < 0.8", [False, True, False]),
        ("0 <= minute < 1440", [True, True, True]),
        ("1 < wallet < 6 > stock.meals", [False, False, True]),
        # arithmetic binds tighter than comparison
        ("wallet - price * 2 >= 0", [False, False, True]),
        ("wallet + 1 > 2 * price", [False, False, True]),
        ("-wallet < -0.5", [False, True, True]),
        ("+wallet >= 1", [False, True, True]),
        ("hunger + hygiene + energy > 1.4", [False, False, True]),
        # precedence: not > and > or
        ("wallet > 4 or stock.meals > 2 and on_shift == 1", [False, True, True]),
        ("(wallet > 4 or stock.meals > 2) and hunger < 0.6", [False, True, False]),
        ("true", [True, True, True]),
        ("false", [False, False, False]),
        ("True and wallet > 0", [False, True, True]),
        ("not false", [True, True, True]),
        ("true == (wallet > 0)", [False, True, True]),
        ("(wallet > 0) != (stock.meals > 0)", [False, False, False]),
        ("energy == 0 or energy == 1", [True, True, False]),
    ],
)
def test_evaluates_elementwise(source: str, expected: list[bool]) -> None:
    result = compile_expression(source).evaluate(CTX)
    assert result.dtype == np.bool_
    assert np.broadcast_to(result, (3,)).tolist() == expected


def test_constant_result_broadcasts_to_the_batch() -> None:
    # A constant precondition returns a 0-d array that numpy broadcasts over any batch.
    result = compile_expression("true").evaluate(CTX)
    assert result.shape == ()
    assert bool(result) is True


def test_names_lists_what_the_expression_reads() -> None:
    expr = compile_expression("stock.meals >= 1 and wallet >= price or true")
    assert expr.names == frozenset({"stock.meals", "wallet", "price"})
    assert expr.source == "stock.meals >= 1 and wallet >= price or true"


def test_missing_context_key_is_a_key_error_not_a_silent_false() -> None:
    expr = compile_expression("stock.water > 0")
    with pytest.raises(KeyError, match=r"stock\.water"):
        expr.evaluate(CTX)


def test_scalar_context_works_too() -> None:
    ctx: Context = {"wallet": 2.0, "price": 1.0}
    assert bool(compile_expression("wallet >= price").evaluate(ctx)) is True
    assert bool(compile_expression("wallet >= price + 2").evaluate(ctx)) is False


@pytest.mark.parametrize(
    ("source", "message"),
    [
        # syntax
        ("", "syntax error"),
        ("   ", "syntax error"),
        ("wallet >", "syntax error"),
        ("wallet >= price;", "syntax error"),
        ("import os", "syntax error"),
        ("a\x00", "null bytes"),
        ("(" * 250 + "1" + ")" * 250, "syntax error|characters"),
        # calls, attributes, subscripts
        ("f(x)", "function calls"),
        ("__import__('os')", "function calls"),
        ("stock.meals.bit_length() > 0", "function calls"),
        ("wallet.__class__", "attribute access"),
        ("wallet.real > 0", "attribute access"),
        ("stock.__class__ > 0", "stock key '__class__'"),
        ("stock._private > 0", "stock key '_private'"),
        ("stock.meals.real > 0", "attribute access"),
        ("(1).__class__", "attribute access"),
        ("stock['meals'] > 0", "subscripts"),
        ("wallet[0] > 0", "subscripts"),
        # other constructs
        ("lambda: 1", "lambda"),
        ("wallet if true else price", "conditional"),
        ("(y := 1) > 0", "assignment"),
        ("[1, 2]", "lists"),
        ("(1, 2)", "tuples"),
        ("{1}", "sets"),
        ("{1: 2}", "dicts"),
        ("[x for x in wallet]", "comprehensions"),
        ("f'{wallet}' == 1", "f-strings"),
        ("'meal' == 'meal'", "constant 'meal'"),
        ("b'x' == 1", "constant"),
        ("None", "constant None"),
        ("... == 1", "constant Ellipsis"),
        ("1j > 0", "constant 1j"),
        # operators outside the language
        ("wallet / 2 > 1", "'/'"),
        ("wallet // 2 > 1", "'//'"),
        ("wallet % 2 == 0", "'%'"),
        ("wallet ** 2 > 1", r"'\*\*'"),
        ("wallet & 1 == 1", "'&'"),
        ("~wallet > 1", "'~'"),
        ("wallet in stock", "'in'"),
        ("wallet not in stock", "'not in'"),
        ("wallet is 1", "'is'"),
        # names
        ("unknown_thing > 0", "unknown name 'unknown_thing'"),
        ("stock > 0", "unknown name 'stock'"),
        ("needs > 0", "unknown name 'needs'"),
        ("TRUE", "unknown name 'TRUE'"),
        ("null", "unknown name 'null'"),
        # types: the result must be true/false and operands must fit their operators
        ("wallet", "is a number"),
        ("wallet + 1", "is a number"),
        ("1", "is a number"),
        ("not wallet", "`not` takes true/false"),
        ("wallet and hunger > 0", "`and` takes true/false"),
        ("hunger > 0 or 1", "`or` takes true/false"),
        ("true + 1 > 0", "arithmetic takes numbers"),
        ("-true", "unary minus/plus takes numbers"),
        ("1 < true", "ordering comparison takes numbers"),
        ("on_shift == true", "compares two numbers or two true/false"),
        # size
        ("1" + " + 1" * MAX_SOURCE_LENGTH + " > 0", "characters"),
    ],
)
def test_refuses_disallowed_constructs(source: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        compile_expression(source)


def test_refuses_a_non_string() -> None:
    with pytest.raises(ExpressionError, match="must be a string"):
        compile_expression(5)  # type: ignore[arg-type]


_NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)


@settings(derandomize=True, max_examples=100, deadline=None)
@given(name=_NAME)
def test_any_name_outside_the_allowlist_is_refused(name: str) -> None:
    source = f"{name} > 0"
    if name in SCALAR_NAMES:
        assert compile_expression(source).names == {name}
    elif name in ("true", "false", "True", "False"):
        with pytest.raises(ExpressionError, match="ordering comparison takes numbers"):
            compile_expression(source)
    elif name == "None":
        with pytest.raises(ExpressionError, match="constant None"):
            compile_expression(source)
    else:
        # unknown names, and Python keywords (a syntax error), are both refused
        with pytest.raises(ExpressionError, match=r"unknown name|syntax error"):
            compile_expression(source)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(
    wallet=st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=8),
    threshold=st.floats(-10, 10, allow_nan=False),
)
def test_matches_numpy_on_random_batches(wallet: list[float], threshold: float) -> None:
    w = np.array(wallet)
    expr = compile_expression(f"wallet >= {threshold!r} and not wallet - 1 > {threshold!r} * 2")
    expected = (w >= threshold) & ~(w - 1 > threshold * 2)
    assert np.broadcast_to(expr.evaluate({"wallet": w}), w.shape).tolist() == expected.tolist()
