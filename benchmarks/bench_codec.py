"""Clarity codec speed on the sync hot paths, as ratios to hand-written baselines.

- Decoding ``get-balance`` results, ``(ok uint)`` hex strings as the node sends them:
  ``decode_ok_uint`` (the fast path) and the general ``deserialize`` + ``unwrap_ok``
  + ``expect_uint``, against plain ``int.from_bytes(bytes.fromhex(h[6:]))``, which
  checks nothing.
- Serialising the principal argument of ``get-balance`` with ``to_hex``, against
  formatting the same bytes by hand.

Each timed call handles a batch of distinct inputs; figures are per item.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from balances.chain.clarity import (
    ResponseOk,
    StandardPrincipal,
    UInt,
    decode_ok_uint,
    deserialize,
    expect_uint,
    to_hex,
    unwrap_ok,
)
from benchmarks.harness import Result, best_seconds_per_call

BATCH = 1000
NS = 1e9


def _ok_uint_hexes(rng: random.Random) -> list[str]:
    # Balances of every magnitude, from dust to near u128 max.
    return [to_hex(ResponseOk(UInt(rng.getrandbits(rng.randint(1, 128))))) for _ in range(BATCH)]


def _principals(rng: random.Random) -> list[StandardPrincipal]:
    return [
        StandardPrincipal(rng.choice((22, 20, 26, 21)), rng.randbytes(20)) for _ in range(BATCH)
    ]


def _per_item_ns(batch: Callable[[], object], number: int, repeat: int) -> float:
    return best_seconds_per_call(batch, number=number, repeat=repeat) / BATCH * NS


def _decode_rows(hexes: list[str], number: int, repeat: int) -> list[Result]:
    expected = [int.from_bytes(bytes.fromhex(h[6:]), "big") for h in hexes]
    assert [decode_ok_uint(h) for h in hexes] == expected
    assert [expect_uint(unwrap_ok(deserialize(h))) for h in hexes] == expected

    baseline = _per_item_ns(
        lambda: [int.from_bytes(bytes.fromhex(h[6:]), "big") for h in hexes], number, repeat
    )
    fast = _per_item_ns(lambda: [decode_ok_uint(h) for h in hexes], number, repeat)
    general = _per_item_ns(
        lambda: [expect_uint(unwrap_ok(deserialize(h))) for h in hexes], number, repeat
    )
    name = "int.from_bytes(fromhex)"
    return [
        Result(
            name="decode (ok uint) hex: decode_ok_uint",
            figure=fast,
            unit="ns/item",
            baseline=baseline,
            baseline_name=name,
            target=3.0,
            note="validated fast path for get-balance results",
        ),
        Result(
            name="decode (ok uint) hex: deserialize+unwrap",
            figure=general,
            unit="ns/item",
            baseline=baseline,
            baseline_name=name,
            target=25.0,
            note="general decoder: a loose bound that catches regressions",
        ),
    ]


def _encode_row(principals: list[StandardPrincipal], number: int, repeat: int) -> Result:
    def by_hand() -> list[str]:
        return ["0x05" + bytes((p.version,)).hex() + p.hash160.hex() for p in principals]

    assert [to_hex(p) for p in principals] == by_hand()
    baseline = _per_item_ns(by_hand, number, repeat)
    figure = _per_item_ns(lambda: [to_hex(p) for p in principals], number, repeat)
    return Result(
        name="encode principal arg: to_hex",
        figure=figure,
        unit="ns/item",
        baseline=baseline,
        baseline_name="hand-formatted hex",
        target=3.0,
        note="get-balance argument",
    )


def run(quick: bool) -> list[Result]:
    rng = random.Random(20240601)
    number, repeat = (3, 3) if quick else (30, 7)
    hexes = _ok_uint_hexes(rng)
    principals = _principals(rng)
    return [*_decode_rows(hexes, number, repeat), _encode_row(principals, number, repeat)]
