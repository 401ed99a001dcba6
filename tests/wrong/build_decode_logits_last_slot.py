"""Wrong build (lesson 09): extend returns the logits of the chunk's last slot, which is padding
for a row with fewer valid tokens, instead of each row's last valid token."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_extend_prefill", "last slot")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/09_efficient_inference/build_decode.py")
_m._last_valid = lambda x, n_valid: x[:, -1:]
extend, admit, retire = _m.extend, _m.admit, _m.retire
