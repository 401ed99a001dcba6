"""Checks for exercises 7.1-7.3 against shared.data's packed rows and shared.goodput."""

import numpy as np
import pytest

from shared import data
from shared.goodput import Goodput


def documents(*lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(1, 256, n).astype(np.uint8) for n in lengths]


@pytest.mark.parametrize("lengths, S", [((10, 40, 5), 16), ((3, 3, 3, 3), 7), ((100,), 31),
                                        ((17, 1, 16, 50, 2), 16)])
def test_pack(answers, lengths, S):
    docs = documents(*lengths)
    got = answers.pack(docs, S + 1)
    rows = data.Rows(data.Stream.of(docs), S)
    want = rows.get(np.arange(len(rows)))  # oracle: the course's loader, rows of S + 1 tokens
    for key in ("tokens", "segment_ids", "positions"):
        assert got[key].shape == (len(rows), S + 1), \
            f"{key}: expected [{len(rows)}, {S + 1}] for {sum(lengths)} tokens, got {got[key].shape}"
    np.testing.assert_array_equal(got["tokens"][:, :-1], want["inputs"], "tokens differ")
    np.testing.assert_array_equal(got["tokens"][:, 1:], want["targets"], "tokens differ")
    np.testing.assert_array_equal(got["segment_ids"][:, :-1], want["segment_ids"],
                                  f"segment ids of documents {lengths} in rows of {S + 1}")
    real = want["segment_ids"] > 0  # positions in the padding are never used
    np.testing.assert_array_equal(got["positions"][:, :-1][real], want["positions"][real],
                                  f"positions of documents {lengths} in rows of {S + 1}")


def test_pack_last_column(answers):
    # By hand: documents of 3 and 4 tokens in rows of 4: [a a a b] [b b b pad].
    got = answers.pack(documents(3, 4), 4)
    np.testing.assert_array_equal(got["segment_ids"], [[1, 1, 1, 2], [1, 1, 1, 0]], "segment ids")
    np.testing.assert_array_equal(got["positions"][:, :3], [[0, 1, 2], [0, 1, 2]], "positions")
    assert got["positions"][0, 3] == 0, "document 2 starts at position 0"
    assert got["tokens"][1, 3] == 0, "padding is token 0"


@pytest.mark.parametrize("lengths, S", [([10, 40, 5], 16), ([300, 20, 7, 1000, 64], 128),
                                        ([5] * 50, 256)])
def test_wasted_fraction(answers, lengths, S):
    padded, packed = data.padding_waste(lengths, S)  # oracle: shared.data
    got_padded = answers.wasted_fraction(lengths, S, packed=False)
    got_packed = answers.wasted_fraction(lengths, S, packed=True)
    assert got_padded == pytest.approx(padded), f"{lengths}, S={S}: padded waste {padded:.4f}, got {got_padded!r}"
    assert got_packed == pytest.approx(packed), f"{lengths}, S={S}: packed waste {packed:.4f}, got {got_packed!r}"


def test_goodput(answers):
    seconds = {"step": 70.0, "startup": 5.0, "compile": 12.0, "data": 3.0, "checkpoint": 6.0, "eval": 4.0}
    clock = Goodput()  # oracle: shared.goodput, fed the same breakdown
    clock.start, clock.end = 0.0, sum(seconds.values())
    for k, v in seconds.items():
        if k != "step":
            clock.add(k, v)
    got = answers.goodput(seconds)
    assert got == pytest.approx(clock.goodput()), f"expected {clock.goodput():.3f}, got {got!r}"


def test_goodput_restart(answers):
    # 20 s of steps redone after a failure are badput: 60 / (60 + 20 + 20).
    got = answers.goodput({"step": 60.0, "restart": 20.0, "compile": 20.0})
    assert got == pytest.approx(0.6), f"expected 0.6, got {got!r}"
