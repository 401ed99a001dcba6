"""Wrong build (lesson 01): the core's model, imported instead of written."""

from shared.model import forward, init, loss_sums  # noqa: F401

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_imports", "imports shared.model: this exercise writes the model")
