"""python -m shared.bench <what> [options]: discovers the benchmark modules beside this file.

Each module has HELP, add_arguments(parser) and run(args); a config.Error it raises (bad
flags, a missing run folder) is printed as one line and exits with status 2."""

import argparse
import importlib
import pkgutil
import sys

import shared.bench
from shared import host_memory
from shared.config import Error


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.bench", description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True, metavar="WHAT")
    modules = {}
    for info in sorted(pkgutil.iter_modules(shared.bench.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"shared.bench.{info.name}")
        modules[info.name] = module
        module.add_arguments(sub.add_parser(info.name, help=module.HELP, description=module.HELP))
    args = parser.parse_args(argv)
    try:
        modules[args.what].run(args)
    except Error as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] in (["train"], ["pytorch"]):  # pytorch: its JAX side trains as train does
        host_memory.relaunch_with_huge_pages()  # as python -m shared.train does (lesson 06)
    sys.exit(main())
