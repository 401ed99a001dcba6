"""Benchmarks (lessons 02-10): `python -m shared.bench <what>`; each module here is one <what>.

A benchmark module defines HELP (one line), add_arguments(parser) and run(args).
Every figure it prints is measured in the same run, and ratios are taken against
the peak calibrated in that run (shared.hardware) or a baseline run beside it.
"""
