"""Build exercise (3.6-3.7): how every weight and every activation is split, written by you.

You write the two functions the training job asks when it runs on several devices: which mesh
axis splits which dimension of each weight (`param_specs`) and of each activation the model
names (`activation_spec`), for each of the course's four strategies. They have exactly the
contracts of shared.sharding.param_specs and shared.sharding.activation_spec, so they are
drop-in replacements: once the tests pass,

    python -m shared.train --mine --devices 8 --strategy fsdp    # or dp, tp, fsdp_tp

trains the model on 8 simulated CPU devices split as your specs say. Check them with
`python -m pytest exercises/03_sharding_collectives/test_build_specs.py`.

The mesh has two axes, "data" and "model" (DATA and MODEL below); an axis of size 1 splits
nothing. On n devices, dp and fsdp use {data: n, model: 1}, tp uses {data: 1, model: n}, and
fsdp_tp {data: n / m, model: m} (m = 2 unless --model-axis says otherwise). What each
strategy is for:

    dp       data parallel: the batch is split over data; every device holds every weight whole.
    fsdp     fully sharded data parallel: the batch as in dp, and every weight matrix is split
             over data along its model width E (the one dimension all of them have), so each
             device keeps 1/data of it; the compiler gathers a weight where it is used.
    tp       tensor parallel: the batch is not split; attention heads, the MLP width and the
             vocabulary are split over model, so each device computes its own heads, its own
             slice of the MLP hidden layer and its own slice of the logits, and attention and
             the MLP each end in one all-reduce over model: no weight moves.
    fsdp_tp  both at once: fsdp's splits over data, tp's over model.

Under every strategy the norms' scales stay whole (they are tiny) and nothing splits the
stacked layers' L, a head's width D or the sequence.

Letters, as in shared/model.py; the parameter tree (each block weight stacked over the L
layers, a leading L axis):

    B  batch          S  sequence        E  model width     V  vocabulary
    H  query heads    K  key/value heads D  head width      F  MLP width   L  layers

    embed       [V, E]          token embedding (a lookup table)
    blocks      attn_norm [L, E]    wq [L, E, H, D]    wk [L, E, K, D]    wv [L, E, K, D]
                wo [L, H, D, E]     mlp_norm [L, E]    w_up [L, E, F]     w_down [L, F, E]
    final_norm  [E]
    unembed     [E, V]          output projection

A spec is a jax.sharding.PartitionSpec with one entry per dimension: None (not split) or a
mesh axis name; a mesh axis splits at most one dimension of an array.

Imports: jax, numpy, the standard library and shared.config, nothing else from the course.
The tests read this file's imports and fail on shared.sharding and shared.params (they hold
the course's answer: its rules and each weight's logical axes) and on the modules built on
them (shared.model, shared.train). Helper functions and tables are yours to add; name them
with a leading underscore.
"""

from __future__ import annotations

from typing import Sequence

from jax.sharding import PartitionSpec

DATA, MODEL = "data", "model"  # the mesh axes of shared.sharding (the tests check the names)
STRATEGIES = ("dp", "fsdp", "tp", "fsdp_tp")


def param_specs(params: dict, strategy: str) -> dict:
    """Exercise 3.6: the PartitionSpec of every weight of the model under `strategy`.

    params: the parameter tree above, as arrays or as jax.ShapeDtypeStructs (the training job
    passes the abstract state: only .shape and .ndim may be read). strategy: one of
    STRATEGIES. Returns a tree of the same structure (same dict keys) with a PartitionSpec in
    place of each array, one entry per dimension, as each strategy above says.

    Raise a ValueError (one line) for a strategy not in STRATEGIES, and for a weight this
    function does not know (say a new "blocks/w_gate"), naming it: a weight nobody decided
    on must not end up whole on every device by accident.
    """
    raise NotImplementedError("Exercise 3.6: the partition spec of every weight under each strategy")


def activation_spec(logical: Sequence[str | None], strategy: str) -> PartitionSpec:
    """Exercise 3.7: the PartitionSpec of an activation whose dimensions have these logical names.

    logical: one name per dimension, as the model hints its activations (shared.sharding.hint):
    "batch", "sequence", "embed", "heads", "kv_heads", "mlp", "vocab", or None (a dimension
    that is never split, e.g. a head's width). For example the residual stream
    ("batch", "sequence", "embed"), queries ("batch", "sequence", "heads", None), the MLP
    hidden layer ("batch", "sequence", "mlp"), the logits ("batch", "sequence", "vocab"),
    and a batch of tokens ("batch", "sequence"). A name not in that list is not split.
    strategy: one of STRATEGIES (raise a one-line ValueError for another).

    Returns a PartitionSpec with one entry per logical name: the mesh axis that splits that
    dimension under the strategy, or None.
    """
    raise NotImplementedError("Exercise 3.7: the partition spec of each activation under each strategy")
