"""Wrong build (lesson 09): the core's cached forward, imported instead of written."""

from shared.inference import extend  # noqa: F401

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_imports", "uses shared.inference.extend")
