"""Wrong build (lesson 05): the core's blockwise attention, imported instead of written."""

from shared.attention import blockwise as flash_attention  # noqa: F401

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_imports", "imports shared.attention: this exercise writes attention")
