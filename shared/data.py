"""Text to tokens to batches (lesson 01).

The tokenizer is byte-level: a token is one byte of UTF-8, so the vocabulary is
256 and any text round-trips exactly. The default corpus is the Python standard
library's own source code, which every learner already has and which needs no
download.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.config import Error

VOCAB_SIZE = 256
TEST_FOLDERS = {"test", "tests", "idle_test"}


class DataError(Error):
    """The corpus cannot be used; the message is one line naming the file or path."""


def encode(text: str) -> np.ndarray:
    """UTF-8 bytes as uint8 token ids [N]."""
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy()


def decode(tokens) -> str:
    """Token ids back to text. A model can emit byte sequences that are not valid UTF-8;
    those bytes show as U+FFFD instead of failing."""
    return bytes(np.asarray(tokens, dtype=np.uint8).tolist()).decode("utf-8", errors="replace")


def stdlib_files() -> list[Path]:
    """The standard library's .py files in sorted order, without tests or installed packages."""
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = TEST_FOLDERS | {"site-packages", "dist-packages"}
    files = []
    for folder, subfolders, names in os.walk(root):
        # Pruned, not walked and then filtered: site-packages sits inside the stdlib folder and
        # may hold tens of thousands of files (listing them all took 0.35 s on a 2-core Zen 5).
        subfolders[:] = [d for d in subfolders if d not in skip]
        files += [Path(folder, name) for name in names if name.endswith(".py")]
    return sorted(files)


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}") from None
    if b"\0" in raw:
        raise DataError(f"{path} looks binary (it contains NUL bytes); give text files only")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not UTF-8 text (bad byte at offset {e.start})") from None


def load_documents(path: str | Path | None = None) -> list[np.ndarray]:
    """Each file of the corpus as uint8 tokens, in sorted file order.

    path None: the standard library's sources (files that are not UTF-8 are skipped).
    A file: its text. A folder: every file below it in sorted order; a file that is
    binary or not UTF-8 is an error naming it.
    """
    if path is None:
        texts = []
        for f in stdlib_files():
            try:
                texts.append(_read_text(f))
            except DataError:
                continue
        source = f"the Python {sys.version_info.major}.{sys.version_info.minor} standard library"
    else:
        p = Path(path)
        if not p.exists():
            raise DataError(f"data path {p} does not exist")
        files = [p] if p.is_file() else sorted(
            f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
        texts = [_read_text(f) for f in files]
        source = str(p)
    documents = [encode(t) for t in texts if t]
    if not documents:
        raise DataError(f"the corpus from {source} is empty")
    return documents


def load_corpus(path: str | Path | None = None) -> np.ndarray:
    """All tokens of the corpus as uint8 [N]: the documents joined by newlines."""
    joined = b"\n".join(d.tobytes() for d in load_documents(path))
    return np.frombuffer(joined, dtype=np.uint8).copy()


@dataclass(frozen=True)
class Split:
    train: np.ndarray  # uint8 [N_train]
    val: np.ndarray  # uint8 [N_val]


def split(tokens: np.ndarray, seq_len: int, val_fraction: float = 0.1) -> Split:
    """The last val_fraction of the corpus for validation; both parts must hold a sequence."""
    n_val = max(int(len(tokens) * val_fraction), seq_len + 1)
    train, val = tokens[:-n_val], tokens[-n_val:]
    if len(train) < seq_len + 1:
        raise DataError(f"the corpus has {len(tokens)} tokens, too few for a training "
                        f"sequence of {seq_len + 1} plus a validation split of {n_val}")
    return Split(train, val)


def batch(tokens: np.ndarray, batch_size: int, seq_len: int, seed: int, step: int):
    """Random windows (inputs, targets), each int32 [B, S], targets shifted by one.

    The batch depends only on (seed, step), so a run resumed at step n sees exactly
    the batches an uninterrupted run would have seen.
    """
    rng = np.random.default_rng([seed, step])
    starts = rng.integers(0, len(tokens) - seq_len, size=batch_size)
    windows = tokens[starts[:, None] + np.arange(seq_len + 1)].astype(np.int32)  # [B, S+1]
    return windows[:, :-1], windows[:, 1:]


def unigram_entropy(tokens: np.ndarray) -> float:
    """Entropy in nats of the byte frequencies: the loss of the best model that ignores context."""
    p = np.bincount(tokens, minlength=VOCAB_SIZE) / len(tokens)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


# ---- packing documents into rows ----

@dataclass(frozen=True)
class Stream:
    """Documents laid end to end: tokens uint8 [N] and the offset where each one starts."""
    tokens: np.ndarray  # uint8 [N]
    starts: np.ndarray  # int64 [n_docs], increasing, starts[0] == 0

    @classmethod
    def of(cls, documents: list[np.ndarray]) -> "Stream":
        lengths = np.array([len(d) for d in documents], np.int64)
        return cls(np.concatenate(documents), np.concatenate([[0], np.cumsum(lengths)[:-1]]))

    def split(self, seq_len: int, val_fraction: float = 0.1) -> tuple["Stream", "Stream"]:
        """(train, validation) cut where `split` cuts the tokens; a document cut in two
        continues as a new document at the start of the validation part."""
        parts = split(self.tokens, seq_len, val_fraction)
        cut = len(parts.train)
        val_starts = np.concatenate([[0], self.starts[self.starts > cut] - cut])
        return Stream(parts.train, self.starts[self.starts < cut]), Stream(parts.val, val_starts)


@dataclass(frozen=True)
class Rows:
    """The stream cut into rows of S + 1 tokens (S inputs, their S targets shifted by one).

    Documents run on from row to row, so no token is wasted on padding except at the
    very end; segment ids (1, 2, ... within a row, 0 for padding) keep attention and
    the loss inside one document, and positions restart at 0 where a document starts.
    """
    stream: Stream
    seq_len: int

    def __len__(self) -> int:
        return -(-len(self.stream.tokens) // (self.seq_len + 1))  # the last row padded

    def get(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The packed batch for these row indices: inputs, targets, positions, segment_ids
        (int32 [n, S]) and weights (float32 [n, S]: 1 where the target is a real next
        token of the same document, 0 at document ends and padding)."""
        R, N = self.seq_len + 1, len(self.stream.tokens)
        index = np.asarray(rows)[:, None] * R + np.arange(R)  # [n, S+1] positions in the stream
        real = index < N
        tokens = np.where(real, self.stream.tokens[np.minimum(index, N - 1)], 0).astype(np.int32)
        is_start = np.zeros(N + 1, bool)
        is_start[self.stream.starts] = True
        starts_here = is_start[np.minimum(index, N)]
        starts_here[:, 0] = True  # a row begins a segment even mid-document
        segment = np.cumsum(starts_here, axis=1, dtype=np.int32) * real  # [n, S+1], 0 for padding
        start_col = np.maximum.accumulate(np.where(starts_here, np.arange(R), 0), axis=1)
        positions = (np.arange(R) - start_col).astype(np.int32)  # [n, S+1], from each segment start
        weights = (segment[:, 1:] == segment[:, :-1]) & (segment[:, 1:] > 0)
        return {"inputs": tokens[:, :-1], "targets": tokens[:, 1:],
                "positions": positions[:, :-1], "segment_ids": segment[:, :-1],
                "weights": weights.astype(np.float32)}


def padding_waste(lengths: list[int], seq_len: int) -> tuple[float, float]:
    """Fraction of target slots that train on nothing, (padded, packed), for documents
    of these lengths in rows of S + 1 tokens (S targets each).

    padded: every document starts a new row, its last row padded to the end.
    packed: documents run on from row to row as `Rows` lays them out.
    A row piece of m tokens trains m - 1 targets either way.
    """
    R = seq_len + 1
    rows = [-(-n // R) for n in lengths]  # rows per document when each starts a row
    padded = 1 - sum(n - r for n, r in zip(lengths, rows)) / (sum(rows) * seq_len)
    stream = Stream.of([np.zeros(n, np.uint8) for n in lengths])
    packed_rows = Rows(stream, seq_len)
    trained = packed_rows.get(np.arange(len(packed_rows)))["weights"].sum()
    return padded, 1 - float(trained) / (len(packed_rows) * seq_len)
