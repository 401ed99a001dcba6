"""Wrong build (lesson 03): the core's specs, imported instead of written."""

from shared.sharding import activation_spec, param_specs  # noqa: F401

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_imports", "imports shared.sharding: it holds the course's strategies")
