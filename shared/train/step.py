"""The training state and the step that updates it: where they live (Placement), how the
state is made (init_state), the jitted step (make_step; lesson 01's make_train_step),
and what the step reports (check_finite, memory_report).

Every function that builds or differentiates the model takes `net`: a module with the
model's `init(config, key)` and `loss_sums(params, batch, config)`, shared.model by default
or the learner's own (lesson 01's build exercise; `python -m shared.train --mine`). A net may
also say how its step compiles, `compiler_options(dtype)` (shared.qtrain does)."""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from types import ModuleType

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from shared import config as cfg
from shared import compile_options, model, sharding
from shared.train.errors import NonFiniteError
from shared.train.optim import optimizer


@dataclass(frozen=True)
class Placement:
    """A mesh and a strategy (shared.sharding), or neither for one device."""
    mesh: Mesh | None = None
    strategy: str | None = None

    def state(self, abstract_state: dict, tc: cfg.TrainConfig):
        """Shardings of the training state: parameters by the strategy's rules, the
        optimizer's moments like their parameters, counters replicated."""
        if self.mesh is None:
            return None
        params = sharding.param_shardings(abstract_state["params"], self.strategy, self.mesh)
        replicated = NamedSharding(self.mesh, P())
        opt_state = optax.tree_map_params(optimizer(tc), lambda _, s: s,
                                          abstract_state["opt_state"], params,
                                          transform_non_params=lambda _: replicated)
        return {"params": params, "opt_state": opt_state, "step": replicated}

    def batch(self):
        """Sharding of [B, S] batch arrays: B split over the data axis."""
        if self.mesh is None:
            return None
        return sharding.activation_sharding(("batch", "sequence"), self.strategy, self.mesh)

    def hints(self):
        """The model's activation hints for this placement (shared.sharding.hints), or None."""
        if self.mesh is None:
            return None
        return lambda x, logical: sharding.constrain(x, logical, self.strategy, self.mesh)

    @property
    def devices(self) -> int:
        return 1 if self.mesh is None else self.mesh.size


def init_state(mc: cfg.ModelConfig, tc: cfg.TrainConfig, placement: Placement = Placement(),
               net: ModuleType = model) -> dict:
    """The whole training state as one pytree, so one checkpoint call saves all of it.
    With a mesh, every array is created already split across the devices."""
    return _initializer(mc, tc, placement, net)()


@functools.cache  # one compilation per config, placement and model in a process (tests, notebooks)
def _initializer(mc: cfg.ModelConfig, tc: cfg.TrainConfig, placement: Placement,
                 net: ModuleType = model):
    def make():
        params = net.init(mc, jax.random.key(tc.seed))
        return {"params": params, "opt_state": optimizer(tc).init(params),
                "step": jnp.zeros((), jnp.int32)}

    return jax.jit(make, out_shardings=placement.state(jax.eval_shape(make), tc))


def abstract_state(mc: cfg.ModelConfig, tc: cfg.TrainConfig) -> dict:
    """init_state's shapes and dtypes (jax.ShapeDtypeStructs): nothing is computed or allocated."""
    return jax.eval_shape(_initializer(mc, tc, Placement()))


def param_names(params: dict) -> list[str]:
    """Names of the parameter arrays in tree order, e.g. "blocks/w_up"."""
    return ["/".join(str(k.key) for k in path) for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]]


def _step_fn(mc: cfg.ModelConfig, tc: cfg.TrainConfig, placement: Placement, net: ModuleType):
    """step(state, batch) -> (state, metrics), not jitted. batch: dict of [B, S] arrays.

    With tc.grad_accum = k the batch is split into k micro-batches (row i goes to
    micro-batch i mod k, so each device keeps its own rows) whose gradient sums a
    scan adds up: only one micro-batch's activations are alive at a time.
    """
    opt = optimizer(tc)
    grad_sums = jax.value_and_grad(net.loss_sums, has_aux=True)  # ((sum, count), grads of sum)
    hints = placement.hints()

    def gradients(params, batch):
        k = tc.grad_accum
        if k == 1:
            return grad_sums(params, batch, mc)
        micro = jax.tree.map(  # [B, S] -> [B/k, k, S] -> [k, B/k, S]
            lambda a: jnp.swapaxes(a.reshape(a.shape[0] // k, k, *a.shape[1:]), 0, 1), batch)
        add = lambda acc, mb: (jax.tree.map(jnp.add, acc, grad_sums(params, mb, mc)), None)
        zeros = ((jnp.zeros(()), jnp.zeros(())), jax.tree.map(jnp.zeros_like, params))
        return jax.lax.scan(add, zeros, micro)[0]

    def step(state, batch):
        params = state["params"]
        with sharding.hints(hints) if hints else contextlib.nullcontext():
            (total, count), grads = gradients(params, batch)
        grads = jax.tree.map(lambda g: g / count, grads)
        updates, opt_state = opt.update(grads, state["opt_state"], params)
        new = {"params": optax.apply_updates(params, updates), "opt_state": opt_state,
               "step": state["step"] + 1}
        sq = jnp.stack([jnp.sum(jnp.square(g)) for g in jax.tree.leaves(grads)])  # [n_arrays]
        return new, {"loss": total / count, "grad_norm": jnp.sqrt(sq.sum()), "grad_sq": sq}

    return step


def compiler_options(mc: cfg.ModelConfig, net: ModuleType = model) -> dict | None:
    """The step's XLA options: the net's own `compiler_options(dtype)` where it has one
    (shared.qtrain), else shared.compile_options.for_training's."""
    return getattr(net, "compiler_options", compile_options.for_training)(mc.dtype)


@functools.cache  # the same jitted function, so compiled once, for each config, placement, model
def make_step(mc: cfg.ModelConfig, tc: cfg.TrainConfig, placement: Placement = Placement(),
              net: ModuleType = model):
    """The loop's jitted step(state, batch) -> (state, metrics): loss, grad_norm and
    grad_sq (each gradient array's squared norm, to name the first non-finite one).

    The old state is donated: its buffers are reused for the new one instead of
    holding two copies. On a mesh, state and batch keep the placement's shardings.
    """
    step = _step_fn(mc, tc, placement, net)
    if placement.mesh is None:
        return jax.jit(step, donate_argnums=0, compiler_options=compiler_options(mc, net))
    state_sh = placement.state(abstract_state(mc, tc), tc)
    replicated = NamedSharding(placement.mesh, P())
    return jax.jit(step, donate_argnums=0, in_shardings=(state_sh, placement.batch()),
                   out_shardings=(state_sh, replicated), compiler_options=compiler_options(mc, net))


def forget() -> None:
    """Drop the cached builders (make_step, the initialiser): their programs hold the
    functions they traced, so a process that swaps a piece in (shared.course.mine) must
    build them again."""
    make_step.cache_clear()
    _initializer.cache_clear()


def make_train_step(mc: cfg.ModelConfig, tc: cfg.TrainConfig, net: ModuleType = model):
    """Lesson 01's form of the step: step(state, tokens, targets) -> (state, loss), every
    row one document. The loop uses make_step, which this wraps."""
    step = _step_fn(mc, tc, Placement(), net)

    def simple(state, tokens, targets):
        state, metrics = step(state, {"inputs": tokens, "targets": targets})
        return state, metrics["loss"]

    return jax.jit(simple, donate_argnums=0, compiler_options=compiler_options(mc, net))


def check_finite(metrics: dict, names: list[str], step: int) -> None:
    """Raise NonFiniteError naming the step and the first gradient array (tree order)
    that holds a NaN or an infinity. Reading the metrics waits for that step."""
    loss, norm = float(metrics["loss"]), float(metrics["grad_norm"])
    if np.isfinite(loss) and np.isfinite(norm):
        return
    bad = np.flatnonzero(~np.isfinite(np.asarray(metrics["grad_sq"])))
    first = f"first non-finite gradient: {names[bad[0]]}" if len(bad) else "gradients finite"
    raise NonFiniteError(f"step {step}: loss {loss}, gradient norm {norm}; {first}")


def memory_report(compiled, state: dict) -> dict[str, float]:
    """Bytes per device: parameters and optimizer state (their shards on device 0), and
    the compiled step's temporaries (activations kept for the backward pass, gradients)."""
    def on_first_device(tree) -> int:
        return sum(x.addressable_shards[0].data.nbytes for x in jax.tree.leaves(tree))

    analysis = compiled.memory_analysis()
    return {"parameters": on_first_device(state["params"]),
            "optimizer state": on_first_device(state["opt_state"]),
            "activations and temporaries": getattr(analysis, "temp_size_in_bytes", 0)}
