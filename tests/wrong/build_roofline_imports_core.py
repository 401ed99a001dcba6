"""Wrong build (lesson 02): the core's roofline and timer, imported instead of written."""

from shared import roofline
from shared.roofline import cost  # noqa: F401
from shared.timing import Timing, timeit  # noqa: F401

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_imports", "imports shared.roofline: this exercise writes the roofline")


def roofline_point(cost, chip, dtype, seconds=None):
    timing = Timing(seconds, seconds, seconds, 1) if seconds else None
    a = roofline.Analysis("", roofline.Cost(cost.flops, cost.bytes), chip, str(dtype), timing)
    return a.intensity, a.ridge, a.bound, a.bound_s, a.fraction
