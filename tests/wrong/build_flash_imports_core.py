"""Wrong build (lesson 05): the core's blockwise attention, imported instead of written."""

from shared.attention import blockwise as flash_attention  # noqa: F401
