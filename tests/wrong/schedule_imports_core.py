"""Wrong answer (exercise 4.9): the right time, read off the course's simulator instead of
written in closed form."""

from shared import timeline

# the check that rejects this answer, and words its one-line reason must say
REJECTED_BY = ("check_imports", "imports shared.timeline")


def fsdp_forward_overlapped(B, E, L, n, peak, link, itemsize):
    stack = timeline.Stack(B, E, L, n, peak, link, itemsize)
    return timeline.step("fsdp", stack, "on", backward=False).time
