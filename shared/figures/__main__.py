"""python -m shared.figures [NN ...]: redraw the lessons' figures (all lessons by default)."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time

import matplotlib

matplotlib.use("Agg")  # files only: no window, works over ssh and in CI

import shared.figures  # noqa: E402
from shared.config import Error  # noqa: E402
from shared.course import ROOT  # noqa: E402


def lessons() -> dict[str, object]:
    """NN -> its figure module, for every lessonNN.py beside this file."""
    found = {}
    for info in pkgutil.iter_modules(shared.figures.__path__):
        if info.name.startswith("lesson"):
            found[info.name.removeprefix("lesson")] = importlib.import_module(f"shared.figures.{info.name}")
    return dict(sorted(found.items()))


def folder(number: str):
    matches = sorted(ROOT.glob(f"lessons/{number}_*"))
    if len(matches) != 1:
        raise Error(f"no lesson folder lessons/{number}_*")
    return matches[0] / "figures"


def main(argv: list[str] | None = None) -> int:
    modules = lessons()
    parser = argparse.ArgumentParser(prog="python -m shared.figures", description=__doc__)
    parser.add_argument("lessons", nargs="*", metavar="NN",
                        help=f"lesson numbers (default: all of {', '.join(modules)})")
    parser.add_argument("--only", help="draw only the figure with this file name")
    args = parser.parse_args(argv)
    unknown = [n for n in args.lessons if n.zfill(2) not in modules]
    if unknown:
        print(f"error: no figures for lesson {', '.join(unknown)}; lessons with figures: "
              f"{', '.join(modules)}", file=sys.stderr)
        return 2
    try:
        for number in [n.zfill(2) for n in args.lessons] or list(modules):
            out = folder(number)
            out.mkdir(exist_ok=True)
            for name, draw in modules[number].FIGURES.items():
                if args.only and name != args.only:
                    continue
                start = time.perf_counter()
                draw(out / name)
                print(f"wrote {(out / name).relative_to(ROOT)} ({time.perf_counter() - start:.1f} s)")
    except Error as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
