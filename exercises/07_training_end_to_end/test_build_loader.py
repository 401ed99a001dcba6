"""Checks for the build exercise 7.7-7.8 (build_loader.py): the training job's packed loader.

pack_rows: the oracle is the course core, shared.data.Rows.get, on the same stream (documents
longer than a row, a document filling a row exactly, one starting in a row's last column,
one-token documents, the padded last row, rows asked in a shuffled order). Direct properties
computed from the stream say which mistake a difference is: the shift of the targets, loss
weights at document ends, positions that do not restart, segment ids.

batch_indices: the properties of the core's order (shared.pipeline.Loader): no row twice in an
epoch, rows left out of one epoch coming in later ones, seeds and epochs shuffled apart, and a
run resumed in a fresh copy of the module (as in a new process) seeing the batches the
uninterrupted run saw. Last, the core's own Loader with your two functions in it, the drop-in
the training job runs, resumed from its saved state.

Every check_* function takes the module under test, so tests/test_wrong_answers.py runs the
same checks on kept wrong builds (tests/wrong/build_loader_*.py) and proves each is rejected by
the check about its mistake; the test_* functions at the bottom are thin wrappers over them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shared import data, pipeline
from shared.course import imports
from shared.course.pytest_plugin import load_module

FIELDS = {"inputs": np.int32, "targets": np.int32, "positions": np.int32,
          "segment_ids": np.int32, "weights": np.float32}
PACK, ORDER = "pack_rows", "batch_indices"


# ---- the answer is not one import away ----

ALLOWED = ("numpy", "jax", "jaxlib", "stdlib", "shared.config")
NOT_ALLOWED = {
    "shared.data": "it holds Rows.get, which is pack_rows (pack_rows is handed the stream as "
                   "arrays, so nothing else there is needed)",
    "shared.pipeline": "it holds the core's Loader, whose indices is batch_indices",
    "shared.train": "it builds the core's loader, which this exercise writes",
}


def check_imports(m):
    """Fails on the first module the answer's file imports that it may not; returns m."""
    return imports.check(m, ALLOWED, NOT_ALLOWED)


# ---- streams, and what a row of them holds ----

# name -> (document lengths, S). Rows hold R = S + 1 tokens.
CASES = {
    "a document filling a row exactly": ((9, 5, 13), 8),  # 27 tokens, 3 full rows: no padding
    "a document starting in a row's last column": ((8, 3, 20), 8),  # its first token is only a target
    "documents longer than a row": ((30, 25, 40), 8),  # rows that start mid-document, the last padded
    "one-token documents": ((1, 4, 1, 1, 9, 1, 2, 1), 8),
    "random documents": (tuple(int(n) for n in np.random.default_rng(7).integers(1, 60, 14)), 16),
}


def _stream(lengths: tuple[int, ...], seed: int = 0) -> data.Stream:
    """Documents of these lengths end to end, tokens 1..255 (0 is the padding)."""
    rng = np.random.default_rng(seed)
    return data.Stream.of([rng.integers(1, 256, n).astype(np.uint8) for n in lengths])


def _asked(n_rows: int) -> np.ndarray:
    """Every row in a shuffled order, and the first of them again."""
    order = np.random.default_rng(n_rows).permutation(n_rows)
    return np.concatenate([order, order[:1]])


def _slots(stream: data.Stream, S: int, rows: np.ndarray):
    """For each asked row's R slots: the stream offset [n, R], whether a token is there, the
    token (0 past the end), and whether a document starts there."""
    N = len(stream.tokens)
    offset = rows[:, None] * (S + 1) + np.arange(S + 1)
    real = offset < N
    token = np.where(real, stream.tokens[np.minimum(offset, N - 1)], 0)
    return offset, real, token, np.isin(offset, stream.starts)


def _run(m, name: str):
    """(stream, S, rows asked, m.pack_rows on them as numpy arrays), checked for keys, shapes
    and dtypes."""
    lengths, S = CASES[name]
    stream = _stream(lengths)
    rows = _asked(len(data.Rows(stream, S)))
    got = m.pack_rows(stream.tokens, stream.starts, S, rows)
    assert isinstance(got, dict) and set(got) == set(FIELDS), \
        f"{PACK}: returned {sorted(got) if isinstance(got, dict) else type(got).__name__}, " \
        f"want a dict of {sorted(FIELDS)}"
    out = {}
    for key, dtype in FIELDS.items():
        value = np.asarray(got[key])
        assert value.shape == (len(rows), S), \
            f"{PACK}: {name}: {key} has shape {list(value.shape)}, want [n, S] = [{len(rows)}, {S}]"
        assert value.dtype == dtype, f"{PACK}: {key} is {value.dtype}, want {np.dtype(dtype)}"
        out[key] = value
    return stream, S, rows, out


def _first(wrong: np.ndarray) -> tuple[int, int]:
    """(line, column) of the first True in a [n, S] mask."""
    i, c = np.argwhere(wrong)[0]
    return int(i), int(c)


def _where(rows: np.ndarray, wrong: np.ndarray) -> str:
    i, c = _first(wrong)
    return f"row {rows[i]}, column {c}"


# ---- pack_rows ----

def check_pack_rows_matches_core(m):
    for name in CASES:
        stream, S, rows, got = _run(m, name)
        want = data.Rows(stream, S).get(rows)
        used = want["segment_ids"] > 0  # positions in the padding are never used
        for key in FIELDS:
            wrong = (got[key] != want[key]) & (used if key == "positions" else True)
            if wrong.any():
                i, c = _first(wrong)
                raise AssertionError(f"{PACK}: {name} (S={S}): {key} of row {rows[i]}, column {c} is "
                                     f"{got[key][i, c]}, shared.data.Rows.get's is {want[key][i, c]}")


def check_pack_rows_shift(m):
    for name in ("documents longer than a row", "random documents"):
        stream, S, rows, got = _run(m, name)
        _, _, token, _ = _slots(stream, S, rows)
        if (got["inputs"] != token[:, :-1]).any():
            i, c = _first(got["inputs"] != token[:, :-1])
            raise AssertionError(f"{PACK}: {name}: input {c} of row {rows[i]} is not the stream's token "
                                 f"{rows[i]} * (S + 1) + {c}: a row's inputs are its first S tokens, "
                                 "rows asked in any order")
        if (got["targets"] == token[:, 1:]).all():
            continue
        if (got["targets"] == got["inputs"]).all():
            raise AssertionError(f"{PACK}: {name}: the targets equal the inputs: each target is the "
                                 "next token, so the targets are the row shifted by one")
        if (got["targets"][:, 1:] == got["inputs"][:, :-1]).all():
            raise AssertionError(f"{PACK}: {name}: target j is input j - 1: the targets are shifted "
                                 "the wrong way (target j is the token after input j)")
        i, c = _first(got["targets"] != token[:, 1:])
        raise AssertionError(f"{PACK}: {name}: target {c} of row {rows[i]} is not the token after "
                             f"input {c}: the targets are the row's tokens shifted by one")


def check_pack_rows_weights(m):
    for name in CASES:
        stream, S, rows, got = _run(m, name)
        _, real, _, start = _slots(stream, S, rows)
        w = got["weights"]
        bad = (w != 0) & start[:, 1:]
        assert not bad.any(), (
            f"{PACK}: {name}: weight {w[bad][0]:g} at {_where(rows, bad)}, whose target is the first "
            "token of the next document: a document's last token has no next token in that document, "
            "so the loss must not train it")
        bad = (w != 0) & ~real[:, 1:]
        assert not bad.any(), f"{PACK}: {name}: weight {w[bad][0]:g} on padding at {_where(rows, bad)}"
        bad = (w != 1) & real[:, 1:] & ~start[:, 1:]
        assert not bad.any(), (f"{PACK}: {name}: weight {w[bad][0]:g} at {_where(rows, bad)}, whose "
                               "target is a real next token of the same document: it trains with weight 1")


def check_pack_rows_positions(m):
    for name in CASES:
        stream, S, rows, got = _run(m, name)
        _, real, _, start = _slots(stream, S, rows)
        used = real[:, :-1]
        p = got["positions"]
        begins = (start | (np.arange(S + 1) == 0))[:, :-1]  # where a position is 0
        wrong_start = used & begins & (p != 0)
        counts = np.zeros_like(p, bool)
        counts[:, 1:] = used[:, 1:] & ~begins[:, 1:] & (p[:, 1:] != p[:, :-1] + 1)
        if not (wrong_start | counts).any():
            continue
        i, c = _first(wrong_start | counts)
        at = f"row {rows[i]}, column {c}"
        if wrong_start[i, c] and c > 0:
            raise AssertionError(f"{PACK}: {name}: position {p[i, c]} at {at}, where a document starts: "
                                 "positions do not restart at 0 at a document start (RoPE would see "
                                 "the document run on from the one before)")
        if wrong_start[i, c]:
            raise AssertionError(f"{PACK}: {name}: position {p[i, c]} at {at}: positions do not restart "
                                 "at 0 at the start of a row (the row's first segment is all the model "
                                 "sees of its document)")
        raise AssertionError(f"{PACK}: {name}: position {p[i, c]} at {at} after {p[i, c - 1]} in the same "
                             "document: positions count up by one")


def check_pack_rows_segment_ids(m):
    for name in CASES:
        stream, S, rows, got = _run(m, name)
        _, real, _, start = _slots(stream, S, rows)
        seg = got["segment_ids"]
        want = np.cumsum(start[:, :-1] | (np.arange(S) == 0), axis=1) * real[:, :-1]
        if (seg == want).all():
            continue
        i, c = _first(seg != want)
        at = f"row {rows[i]}, column {c}"
        if not real[i, c]:
            raise AssertionError(f"{PACK}: {name}: segment id {seg[i, c]} on padding at {at}: padding "
                                 "is segment 0")
        if c == 0:
            raise AssertionError(f"{PACK}: {name}: segment id {seg[i, c]} at {at}: a row's first "
                                 "segment is 1, even when the row starts inside a document")
        raise AssertionError(f"{PACK}: {name}: segment id {seg[i, c]} at {at} after {seg[i, c - 1]}: "
                             "each document starting in a row takes the next id, and only there")


# ---- batch_indices ----

def _fresh(m):
    """Another copy of the module under test, with none of m's module state: a new process."""
    return load_module(Path(m.__file__))


def _batch(m, num_rows: int, batch_size: int, seed: int, position: int) -> np.ndarray:
    got = np.asarray(m.batch_indices(num_rows, batch_size, seed, position))
    assert got.shape == (batch_size,) and np.issubdtype(got.dtype, np.integer), \
        f"{ORDER}: returned {got.dtype} {list(got.shape)}, want integers [batch_size] = [{batch_size}]"
    assert ((got >= 0) & (got < num_rows)).all(), \
        f"{ORDER}: row {got[(got < 0) | (got >= num_rows)][0]} of {num_rows} rows is out of range"
    return got


def _epoch(m, num_rows: int, batch_size: int, seed: int, epoch: int) -> np.ndarray:
    per_epoch = num_rows // batch_size
    return np.concatenate([_batch(m, num_rows, batch_size, seed, p)
                           for p in range(epoch * per_epoch, (epoch + 1) * per_epoch)])


def check_batch_indices_epoch(m):
    for num_rows, batch_size in ((12, 4), (10, 4), (37, 5), (7, 7)):
        per_epoch = num_rows // batch_size
        for epoch in range(3):
            rows = _epoch(m, num_rows, batch_size, 1, epoch)
            values, counts = np.unique(rows, return_counts=True)
            if (counts > 1).any():
                raise AssertionError(
                    f"{ORDER}: {num_rows} rows in batches of {batch_size}: epoch {epoch} (positions "
                    f"{epoch * per_epoch}-{(epoch + 1) * per_epoch - 1}) has row {values[counts > 1][0]} "
                    "twice: an epoch's batches take each row at most once")


def check_batch_indices_leftover(m):
    num_rows, batch_size, epochs = 10, 4, 25  # each epoch leaves 2 rows out
    seen = np.concatenate([_epoch(m, num_rows, batch_size, 2, e) for e in range(epochs)])
    never = sorted(set(range(num_rows)) - set(seen.tolist()))
    assert not never, (f"{ORDER}: over {epochs} epochs of {num_rows} rows in batches of {batch_size}, "
                       f"rows {never} never come: the rows one epoch leaves out must come in later ones "
                       "(shuffle afresh each epoch)")


def check_batch_indices_seeds(m):
    num_rows, batch_size = 37, 5
    first = _epoch(m, num_rows, batch_size, 0, 0)
    assert not (np.diff(first) == 1).all(), \
        f"{ORDER}: epoch 0 with seed 0 takes the rows in order {first[:8].tolist()}...: shuffle them"
    for seed in (1, 2, 3):
        assert not np.array_equal(_epoch(m, num_rows, batch_size, seed, 0), first), \
            f"{ORDER}: seed {seed} gives seed 0's order: the seed must choose the shuffle"
    for epoch in (1, 2):
        assert not np.array_equal(_epoch(m, num_rows, batch_size, 0, epoch), first), \
            f"{ORDER}: epoch {epoch} repeats epoch 0's order: shuffle afresh each epoch"


def check_batch_indices_resume(m):
    num_rows, batch_size, seed = 23, 4, 11  # 5 batches an epoch
    run = _fresh(m)
    saved = np.random.get_state()
    try:
        np.random.seed(1)
        straight = [_batch(run, num_rows, batch_size, seed, p) for p in range(18)]
        for resume_at in (12, 7, 15):  # a later epoch's start, mid-epoch, a later epoch again
            resumed = _fresh(m)  # a new process that knows only (seed, position)
            np.random.seed(resume_at)
            for p in range(resume_at, 18):
                got = _batch(resumed, num_rows, batch_size, seed, p)
                assert np.array_equal(got, straight[p]), (
                    f"{ORDER}: a run resumed at position {resume_at} (a new process) gets rows "
                    f"{got.tolist()} at position {p}, the uninterrupted run got {straight[p].tolist()}: "
                    "the batch must depend on (seed, position) alone, not on the calls before it")
        for p in (0, 13):
            assert np.array_equal(_batch(run, num_rows, batch_size, seed, p), straight[p]), \
                f"{ORDER}: asked again for position {p}, it gives other rows: no state may survive a call"
        np.random.seed(5)
        before = np.random.get_state()
        _batch(run, num_rows, batch_size, seed, 3)
        after = np.random.get_state()
        assert np.array_equal(after[1], before[1]) and after[2] == before[2], (
            f"{ORDER}: it changes numpy's global random state (np.random.seed or np.random.*): other "
            "code's draws would then depend on the loader; use a generator of its own")
    finally:
        np.random.set_state(saved)


def _core_loader(m, rows: data.Rows, batch_size: int, seed: int, position: int) -> pipeline.Loader:
    """The core's Loader reading through m's two functions: the drop-in the training job runs."""
    class Rows(data.Rows):
        def get(self, asked):
            return m.pack_rows(self.stream.tokens, self.stream.starts, self.seq_len, asked)

    class Loader(pipeline.Loader):
        def indices(self, position):
            return m.batch_indices(len(self.rows), self.batch_size, self.seed, position)

    return Loader(Rows(rows.stream, rows.seq_len), batch_size, seed, position)


def check_batch_indices_core_loader(m):
    lengths, S = CASES["random documents"]
    rows = data.Rows(_stream(lengths, 3), S)  # 29 rows: 4 batches of 6 an epoch
    batch_size, seed, steps = 6, 4, 11
    loader = _core_loader(_fresh(m), rows, batch_size, seed, 0)
    straight = [batch for _, batch in zip(range(steps), loader)]
    resume_at = loader.state()["position"] - 5  # what a checkpoint 5 batches back saved
    resumed = _core_loader(_fresh(m), rows, batch_size, seed, resume_at)
    for p, batch in zip(range(resume_at, steps), resumed):
        for key in FIELDS:
            assert np.array_equal(np.asarray(batch[key]), straight[p][key]), (
                f"{ORDER}: the core's Loader on your functions, restarted at position {resume_at} in a "
                f"new process, gives another {key} at position {p} than the uninterrupted run")


# ---- the tests: your answers (or the solution's, with --solutions) through every check ----

def test_pack_rows_matches_core(answers):
    check_pack_rows_matches_core(check_imports(answers))


def test_pack_rows_shift(answers):
    check_pack_rows_shift(check_imports(answers))


def test_pack_rows_weights(answers):
    check_pack_rows_weights(check_imports(answers))


def test_pack_rows_positions(answers):
    check_pack_rows_positions(check_imports(answers))


def test_pack_rows_segment_ids(answers):
    check_pack_rows_segment_ids(check_imports(answers))


def test_batch_indices_epoch(answers):
    check_batch_indices_epoch(check_imports(answers))


def test_batch_indices_leftover(answers):
    check_batch_indices_leftover(check_imports(answers))


def test_batch_indices_seeds(answers):
    check_batch_indices_seeds(check_imports(answers))


def test_batch_indices_resume(answers):
    check_batch_indices_resume(check_imports(answers))


def test_batch_indices_core_loader(answers):
    check_batch_indices_core_loader(check_imports(answers))
