"""Wrong build (lesson 04): the core's FSDP stack, imported instead of written."""

from shared.sharding import stack_forward

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_imports", "imports shared.sharding: it holds the course's FSDP stack")


def fsdp_matmul(x, w_shard, axis):
    raise NotImplementedError


def fsdp_forward(x, ws, mesh, axis="data"):
    return stack_forward(x, ws, "fsdp", mesh)
