"""Wrong build (lesson 07): the core's Rows.get, imported instead of written."""

from pathlib import Path

from shared import data
from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_imports", "imports shared.data: it holds Rows.get")

batch_indices = load_module(Path(__file__).resolve().parents[2]
                            / "solutions/07_training_end_to_end/build_loader.py").batch_indices


def pack_rows(tokens, starts, seq_len, rows):
    return data.Rows(data.Stream(tokens, starts), seq_len).get(rows)
