"""Wrong build (lesson 09): extend writes each new key and value one position late, at length + s + 1."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_extend_cache", "off by one")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/09_efficient_inference/build_decode.py")
_keys, _values = _m._write_keys, _m._write_values
_m._write_keys = lambda keys, new, positions: _keys(keys, new, positions + 1)
_m._write_values = lambda values, new, positions: _values(values, new, positions + 1)
extend, admit, retire = _m.extend, _m.admit, _m.retire
