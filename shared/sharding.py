"""Meshes, sharding strategies, and placing the model's arrays on many devices (lesson 03).

A mesh arranges devices in a grid with named axes. Every strategy here uses the
same two axes, so one set of rules serves all of them:

    data   splits the batch (and, for FSDP, the parameters' model width E)
    model  splits heads, MLP width and vocabulary (tensor parallelism)

An axis of size 1 splits nothing: DP on 8 devices is the mesh {data: 8, model: 1},
TP is {data: 1, model: 8}, FSDP+TP on 8 could be {data: 4, model: 2}.

Arrays are described by logical axes, one name per dimension ("batch", "embed",
"heads", ...); a strategy's rules map logical axes to mesh axes, and unmapped axes
are replicated. Parameters and activations have separate rules because FSDP splits
the parameters' E over `data` while the activations' batch already uses `data`.

Meshes are built with Auto axes: the compiler propagates shardings from the inputs
and from `with_sharding_constraint`, and inserts the collectives it needs, which is
what lessons 03-04 look at. (`jax.make_mesh` defaults to Explicit axes, where the
sharding is part of each array's type and `with_sharding_constraint` is rejected.)
The same Auto mesh works with `jax.shard_map`, where we write the collectives by hand.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import jax
import jax.numpy as jnp
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from shared.collectives import Collective
from shared.config import Error, ModelConfig
from shared.params import logical_axes

DATA, MODEL = "data", "model"


class ShardingError(Error):
    """A mesh, strategy or spec does not fit the arrays; the message is one line."""


def make_mesh(shape: dict[str, int], devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A mesh with Auto axes, e.g. make_mesh({"data": 4, "model": 2}) over 8 devices."""
    devices = list(jax.devices() if devices is None else devices)
    if math.prod(shape.values()) != len(devices):
        raise ShardingError(f"mesh {shape} needs {math.prod(shape.values())} devices, "
                            f"got {len(devices)}")
    return jax.make_mesh(tuple(shape.values()), tuple(shape), devices=devices,
                         axis_types=(AxisType.Auto,) * len(shape))


# ---- strategies: logical axis -> mesh axis ----

@dataclass(frozen=True)
class Strategy:
    name: str
    about: str
    params: dict[str, str]  # logical axis -> mesh axis, for parameters
    activations: dict[str, str]  # logical axis -> mesh axis, for batches and activations


_TP = {"heads": MODEL, "kv_heads": MODEL, "mlp": MODEL, "vocab": MODEL}
# A mixture of experts (shared.moe) adds two logical axes, used only when config.n_experts > 0:
# "experts" (X) of the expert weights and of the tokens dispatched to them, and "expert_groups",
# the dispatched tokens' batch dimension. FSDP puts the experts on the data axis (expert
# parallelism: each device holds X / n_data experts whole, and the compiler moves each token to
# its expert's device with an all-to-all); DP keeps the experts replicated and every token on its
# own device, so there the dispatched tokens stay split by batch.
_EP = {"experts": DATA}
STRATEGIES: dict[str, Strategy] = {s.name: s for s in [
    Strategy("dp", "data parallel: batch split, parameters replicated", {},
             {"batch": DATA, "expert_groups": DATA}),
    Strategy("fsdp", "fully sharded data parallel: batch split, parameters split along E",
             {"embed": DATA, **_EP}, {"batch": DATA, **_EP}),
    Strategy("tp", "tensor parallel: heads, MLP width and vocabulary split", _TP, _TP),
    Strategy("fsdp_tp", "FSDP over data and tensor parallel over model",
             {"embed": DATA, **_EP, **_TP}, {"batch": DATA, **_EP, **_TP}),
]}

# Logical axes of every parameter, from the one table of weights (shared.params); the experts'
# weights (shared.params.MOE) have an extra dimension, and are looked up there by it.
PARAM_AXES = logical_axes()
MOE_PARAM_AXES = logical_axes(ModelConfig(n_experts=1))


def get_strategy(strategy: str | Strategy) -> Strategy:
    if isinstance(strategy, Strategy):
        return strategy
    if strategy not in STRATEGIES:
        raise ShardingError(f"unknown strategy {strategy!r}; valid: {', '.join(STRATEGIES)}")
    return STRATEGIES[strategy]


def strategy_mesh(strategy: str | Strategy, devices: Sequence[jax.Device] | None = None,
                  model: int | None = None) -> Mesh:
    """The {data, model} mesh a strategy uses on these devices (fsdp_tp: model=2 by default)."""
    name = get_strategy(strategy).name
    n = len(jax.devices() if devices is None else devices)
    model = {"dp": 1, "fsdp": 1, "tp": n}.get(name, model or 2)
    if n % model:
        raise ShardingError(f"{name}: a model axis of {model} does not divide {n} devices")
    return make_mesh({DATA: n // model, MODEL: model}, devices)


def logical_to_spec(logical: Sequence[str | None], rules: dict[str, str]) -> P:
    """PartitionSpec for an array whose dimensions have these logical names."""
    mesh_axes = [rules.get(name) if name else None for name in logical]
    used = [a for a in mesh_axes if a]
    if len(used) != len(set(used)):
        raise ShardingError(f"logical axes {tuple(logical)} map two dimensions to one mesh axis: "
                            f"{tuple(mesh_axes)}")
    return P(*mesh_axes)


def check_divisible(name: str, shape: Sequence[int], spec: P, mesh: Mesh) -> None:
    """Raise a one-line ShardingError unless every sharded dimension divides evenly."""
    if len(spec) > len(shape):
        raise ShardingError(f"{name}: spec {spec} has {len(spec)} entries but the array has "
                            f"shape {tuple(shape)}")
    for dim, axes in enumerate(spec):
        axes = () if axes is None else (axes,) if isinstance(axes, str) else tuple(axes)
        missing = [a for a in axes if a not in mesh.shape]
        if missing:
            raise ShardingError(f"{name}: spec {spec} names mesh axis {missing[0]!r}, "
                                f"but the mesh has {tuple(mesh.axis_names)}")
        ways = math.prod(mesh.shape[a] for a in axes)
        if shape[dim] % ways:
            raise ShardingError(f"{name}: dimension {dim} of shape {tuple(shape)} has size "
                                f"{shape[dim]}, not divisible by mesh axis {'x'.join(axes)} "
                                f"of size {ways}")


def _sharding(name: str, shape, spec: P, mesh: Mesh) -> NamedSharding:
    check_divisible(name, shape, spec, mesh)
    return NamedSharding(mesh, spec)


# ---- parameters ----

def param_specs(params: dict, strategy: str | Strategy) -> dict:
    """The PartitionSpec of every parameter (same tree structure as params)."""
    rules = get_strategy(strategy).params

    def lookup(tree, path):
        for key in path:
            tree = tree.get(key.key) if isinstance(tree, dict) else None
        return tree

    def spec(path, leaf):
        axes = lookup(PARAM_AXES, path)
        if not isinstance(axes, tuple) or len(axes) != leaf.ndim:
            axes = lookup(MOE_PARAM_AXES, path)
        if not isinstance(axes, tuple) or len(axes) != leaf.ndim:
            raise ShardingError(f"no logical axes for parameter {jax.tree_util.keystr(path)} of "
                                f"shape {leaf.shape}; add its row to shared.params")
        return logical_to_spec(axes, rules)

    return jax.tree_util.tree_map_with_path(spec, params)


def param_shardings(params: dict, strategy: str | Strategy, mesh: Mesh) -> dict:
    """NamedSharding of every parameter, checked to divide (for jit's in/out_shardings)."""
    specs = param_specs(params, strategy)
    return jax.tree_util.tree_map_with_path(
        lambda path, x, s: _sharding(f"param {jax.tree_util.keystr(path)}", x.shape, s, mesh),
        params, specs)


def shard_params(params: dict, strategy: str | Strategy, mesh: Mesh) -> dict:
    """Place every parameter on the mesh as the strategy says."""
    return jax.device_put(params, param_shardings(params, strategy, mesh))


# ---- batches and activations ----

def activation_spec(logical: Sequence[str | None], strategy: str | Strategy) -> P:
    """PartitionSpec of an activation, e.g. activation_spec(("batch", "sequence", "embed"), "dp")."""
    return logical_to_spec(logical, get_strategy(strategy).activations)


def activation_sharding(logical: Sequence[str | None], strategy: str | Strategy,
                        mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, activation_spec(logical, strategy))


def constrain(x: jax.Array, logical: Sequence[str | None], strategy: str | Strategy,
              mesh: Mesh) -> jax.Array:
    """with_sharding_constraint by logical axes, inside jit: the compiler must shard x so."""
    spec = activation_spec(logical, strategy)
    check_divisible(f"activation {tuple(logical)}", x.shape, spec, mesh)
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))


# ---- the model's hook: sharding hints on activations while a sharded step traces ----

_hints: contextvars.ContextVar = contextvars.ContextVar("sharding_hints", default=None)


@contextlib.contextmanager
def hints(fn: Callable[[jax.Array, tuple], jax.Array]) -> Iterator[None]:
    """While the model traces, pass its main activations through fn(x, logical_axes).

    shared.train uses hints(lambda x, logical: constrain(x, logical, strategy, mesh)), so
    the compiler is told how the residual stream, heads, MLP hidden and logits are split.
    """
    token = _hints.set(fn)
    try:
        yield
    finally:
        _hints.reset(token)


def hint(x: jax.Array, *logical: str | None) -> jax.Array:
    """x unchanged, or constrained as the active `hints` say (e.g. "batch", "sequence", "embed")."""
    fn = _hints.get()
    return x if fn is None else fn(x, logical)


def shard_batch(batch: jax.Array, strategy: str | Strategy, mesh: Mesh) -> jax.Array:
    """Place a [B, S, ...] batch (tokens, targets, segment ids) with its B split as the strategy says."""
    logical = ("batch", "sequence") + (None,) * (batch.ndim - 2)
    spec = activation_spec(logical, strategy)
    return jax.device_put(batch, _sharding(f"batch of shape {batch.shape}", batch.shape, spec, mesh))


def describe_placement(tree: dict) -> list[str]:
    """One line per array of a placed tree: name, global shape, spec, each device's shard shape."""
    lines = []
    for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]:
        spec = x.sharding.spec if isinstance(x.sharding, NamedSharding) else "(not named)"
        lines.append(f"{jax.tree_util.keystr(path):22s} {str(list(x.shape)):18s} {str(spec):36s} "
                     f"per device {list(x.sharding.shard_shape(x.shape))}")
    return lines


# ---- lesson 04: a stack of square matmul layers under each strategy ----
#
# x: [B, E], L weights [E, E]; layer l computes x = relu(x @ W_l). Per strategy:
# (x's spec, W's spec on even and odd layers, the layer output's spec on even and odd).

STACK: dict[str, tuple[P, tuple[P, P], tuple[P, P]]] = {
    # batch split, weights replicated: no communication in the forward pass
    "dp": (P(DATA, None), (P(), P()), (P(DATA, None), P(DATA, None))),
    # batch split, weights split by rows: gather each weight just before its layer
    "fsdp": (P(DATA, None), (P(DATA, None), P(DATA, None)), (P(DATA, None), P(DATA, None))),
    # Megatron pairs: W split by columns then by rows, one all-reduce of x per pair
    "tp": (P(), (P(None, MODEL), P(MODEL, None)), (P(None, MODEL), P())),
    # both: FSDP over data on the weights' other dimension, TP pairs over model
    "fsdp_tp": (P(DATA, None), (P(DATA, MODEL), P(MODEL, DATA)), (P(DATA, MODEL), P(DATA, None))),
    # activations and weights split by columns: every layer must all-gather x first
    "tp_gather": (P(None, MODEL), (P(None, MODEL), P(None, MODEL)),
                  (P(None, MODEL), P(None, MODEL))),
}


def stack_mesh(strategy: str, devices: Sequence[jax.Device] | None = None,
               model: int | None = None) -> Mesh:
    if strategy not in STACK:
        raise ShardingError(f"unknown stack strategy {strategy!r}; valid: {', '.join(STACK)}")
    n = len(jax.devices() if devices is None else devices)
    model = {"dp": 1, "fsdp": 1, "tp": n, "tp_gather": n}.get(strategy, model or 2)
    if n % model:
        raise ShardingError(f"{strategy}: a model axis of {model} does not divide {n} devices")
    return make_mesh({DATA: n // model, MODEL: model}, devices)


def stack_init(key: jax.Array, B: int, E: int, L: int, strategy: str, mesh: Mesh,
               dtype=jnp.float32) -> tuple[jax.Array, list[jax.Array]]:
    """Random x [B, E] and L weights [E, E], placed as the strategy says."""
    x_spec, w_specs, _ = STACK[strategy]
    kx, *kw = jax.random.split(key, L + 1)
    x = jax.random.normal(kx, (B, E), dtype)
    ws = [jax.random.normal(k, (E, E), dtype) / math.sqrt(E) for k in kw]
    x = jax.device_put(x, _sharding(f"{strategy} x", x.shape, x_spec, mesh))
    ws = [jax.device_put(w, _sharding(f"{strategy} W{l}", w.shape, w_specs[l % 2], mesh))
          for l, w in enumerate(ws)]
    return x, ws


def stack_forward(x: jax.Array, ws: list[jax.Array], strategy: str, mesh: Mesh) -> jax.Array:
    """relu(x @ W) layer by layer, each output constrained to the strategy's spec. Use under jit."""
    out_specs = STACK[strategy][2]
    for l, w in enumerate(ws):
        x = jax.nn.relu(x @ w)  # [B, E]
        x = jax.lax.with_sharding_constraint(x, NamedSharding(mesh, out_specs[l % 2]))
    return x


def stack_prediction(strategy: str, B: int, E: int, L: int, mesh: Mesh,
                     dtype=jnp.float32) -> list[Collective]:
    """The collectives each strategy needs in the forward pass, as shared.collectives.Collective."""
    d, m, b = mesh.shape[DATA], mesh.shape[MODEL], jnp.dtype(dtype).itemsize
    name = jnp.dtype(dtype).name.replace("float", "f").replace("bfloat16", "bf16")

    def c(kind, rows, cols, group, count):
        return Collective(kind, f"{name}[{rows},{cols}]", rows * cols * b, group, count)

    return {
        "dp": [],
        "fsdp": [c("all-gather", E, E, d, L)],  # each weight, whole, once per layer
        "tp": [c("all-reduce", B, E, m, L // 2)],  # x after each row-split layer
        "fsdp_tp": [c("all-gather", E, E // m, d, L),  # each device's model column block
                    c("all-reduce", B // d, E, m, L // 2)],
        "tp_gather": [c("all-gather", B, E, m, L)],  # x before each layer
    }[strategy]
