"""Wrong build (lesson 06): the core's step and remat wrapper, imported instead of written."""

from shared.backward import remat  # noqa: F401
from shared.train.step import make_step  # noqa: F401

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_imports", "imports shared.backward: it holds the course's remat wrapper")
