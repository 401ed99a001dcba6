"""The lessons' figures, drawn from measurements on this machine or from the course's cost
models: `python -m shared.figures [NN ...]` regenerates lessons/NN_slug/figures/*.png.

Each lesson has one module here, lessonNN.py, with FIGURES: a dict from a PNG's file name
to the function that draws it, `draw(path: Path) -> None`. A figure that measures says so
in its title or caption (machine and what was timed); a diagram is drawn from the shapes and
cost formulas it illustrates, never from numbers typed in by hand.
"""
