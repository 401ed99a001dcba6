"""Wrong build (lesson 01): a Python `if` on array values, which works eagerly but not under jit."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_forward_jit", "fails under jax.jit")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/01_llm_from_scratch/build_model.py")
init, loss_sums = _m.init, _m.loss_sums


def forward(params, tokens, config, *, positions=None, segment_ids=None):
    if segment_ids is not None and (segment_ids == segment_ids[:, :1]).all():  # one document per row
        segment_ids = None
    return _m.forward(params, tokens, config, positions=positions, segment_ids=segment_ids)
