"""Wrong build (lesson 10): lse is log(running sum), without the running max added back."""

import jax.numpy as jnp

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_logsumexp", "short by each query's largest score")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/10_pallas_aot/build_pallas.py")
_m._finish = lambda acc, m, l: (acc / l, jnp.log(l))
flash_forward = _m.flash_forward
