"""``townlet_env.memo.once_per``: a value built once per owner, dropped with it."""

from __future__ import annotations

import gc

from townlet_env import memo


class _Owner:
    pass


def _build(owner: _Owner, tag: str) -> tuple[int, str]:
    return (id(owner), tag)


def test_built_once_per_owner() -> None:
    a, b = _Owner(), _Owner()
    first = memo.once_per(a, _build, "x")
    assert memo.once_per(a, _build, "ignored once built") is first
    assert memo.once_per(b, _build, "y") == (id(b), "y")


def test_an_entry_goes_with_its_owner() -> None:
    owner = _Owner()
    memo.once_per(owner, _build, "x")
    key = (id(owner), _build)
    assert key in memo._MEMO
    del owner
    gc.collect()
    assert key not in memo._MEMO
