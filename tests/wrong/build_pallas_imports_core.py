"""Wrong build (lesson 10): the core's kernel, imported instead of written."""

from shared.flash_pallas import flash_forward  # noqa: F401

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_imports", "imports shared.flash_pallas: it holds the core's flash-attention kernel")
