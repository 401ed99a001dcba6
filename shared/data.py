"""Text to tokens to batches.

The tokenizer is byte-level: a token is one byte of UTF-8, so the vocabulary is
256 and any text round-trips exactly. The default corpus is the Python standard
library's own source code, which every learner already has and which needs no
download.
"""

from __future__ import annotations

import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VOCAB_SIZE = 256
TEST_FOLDERS = {"test", "tests", "idle_test"}


class DataError(ValueError):
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
    return sorted(p for p in root.rglob("*.py")
                  if not skip & set(p.relative_to(root).parts[:-1]))


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


def load_corpus(path: str | Path | None = None) -> np.ndarray:
    """All tokens of the corpus as uint8 [N].

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
    tokens = encode("\n".join(texts))
    if tokens.size == 0:
        raise DataError(f"the corpus from {source} is empty")
    return tokens


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
