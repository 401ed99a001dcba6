"""Checks for the build exercise 3.6-3.7 (build_specs.py): how every weight and activation is split.

Oracles: the course core's specs (shared.sharding, from the weights' table shared.params),
compared as shardings on the strategy's mesh; and properties measured on 8 simulated CPU
devices (exercises/03_sharding_collectives/conftest.py): the blocks each device holds of the
placed weights and batches (FSDP's memory, DP's and TP's batch), the collectives XLA puts in
the compiled MLP and attention under TP (shared.collectives: one all-reduce each, nothing
else), and the real training step (shared.train.make_step) on your specs, whose loss and
gradients must be those of one device.

Every check_* function takes the module under test, so tests/test_wrong_answers.py runs the
same checks on kept wrong builds (tests/wrong/build_specs_*.py) and proves each is rejected by
the check about its mistake; the test_* functions at the bottom are thin wrappers over them.
"""

import dataclasses
import functools
import math
from types import ModuleType

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec as P

from shared import collectives, model, sharding, train
from shared import params as table
from shared.config import ModelConfig, TrainConfig
from shared.course import imports
from shared.train.optim import optimizer

CPUS = jax.devices("cpu")
# Every dimension a strategy may split divides the 8 devices (V 64, E 32, H = K 8, F 64, batch 8);
# the ones never split do not: L = 2, D = 4 (so a split there shows as a shape it cannot divide).
CONFIG = ModelConfig(vocab_size=64, seq_len=8, d_model=32, n_layers=2, n_heads=8, d_ff=64)
BATCH = 8
TRAIN = TrainConfig(batch_size=BATCH, steps=10, lr=3e-3, warmup_steps=0)
STRATEGIES = tuple(sharding.STRATEGIES)  # dp, fsdp, tp, fsdp_tp
B, S, E, H, D, F, V = (BATCH, CONFIG.seq_len, CONFIG.d_model, CONFIG.n_heads, CONFIG.head_dim,
                       CONFIG.d_ff, CONFIG.vocab_size)
# The activations the model hints (shared.model: sharding.hint), with their shapes here.
ACTIVATIONS = {
    ("batch", "sequence"): (B, S),  # tokens, targets
    ("batch", "sequence", "embed"): (B, S, E),  # the residual stream
    ("batch", "sequence", "heads", None): (B, S, H, D),  # queries
    ("batch", "sequence", "kv_heads", None): (B, S, H, D),  # keys, values (K = H here)
    ("batch", "sequence", "mlp"): (B, S, F),  # the MLP's hidden layer
    ("batch", "sequence", "vocab"): (B, S, V),  # the logits
}


# ---- the answer is not one import away ----

ALLOWED = ("jax", "jaxlib", "numpy", "stdlib", "shared.config")
NOT_ALLOWED = {
    "shared.sharding": "it holds the course's strategies and every weight's logical axes, which "
                       "this exercise decides (write the axis names \"data\" and \"model\" yourself)",
    "shared.params": "its table gives every weight's logical axes, which this exercise decides",
    "shared.model": "it reaches shared.params and shared.sharding, which hold this exercise's answer",
    "shared.train": "it places the state with the course's specs, which this exercise writes",
    "shared.serving_tp": "it places weights with the course's specs, which this exercise writes",
}


def check_imports(m):
    """Fails on the first module the answer's file imports that it may not; returns m."""
    return imports.check(m, ALLOWED, NOT_ALLOWED)


# ---- the parameters, the meshes, and the answer's specs ----

@functools.cache
def _params() -> dict:
    return model.init(CONFIG, jax.random.key(0))


def _abstract() -> dict:
    """The parameter tree as jax.ShapeDtypeStructs, as the training job passes it."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), _params())


@functools.cache
def _mesh(strategy: str):
    return sharding.strategy_mesh(strategy, CPUS)  # fsdp_tp: {data: 4, model: 2}


# name -> (letters with the stacked L, shape), e.g. "blocks/wo" -> ("LHDE", (2, 8, 4, 32))
WEIGHTS = {"/".join(path): (("L" if stacked else "") + w.shape,
                            ((CONFIG.n_layers,) if stacked else ()) + w.dims(CONFIG))
           for path, w, stacked in table.rows()}
MATRICES = [name for name, (letters, _) in WEIGHTS.items() if len(letters.lstrip("L")) >= 2]


def _show(spec) -> str:
    return "P(" + ", ".join(repr(a) for a in spec) + ")" if isinstance(spec, P) else repr(spec)


def _specs(m, strategy: str) -> dict[str, P]:
    """m.param_specs on the abstract parameters, as {"blocks/wq": spec}; one-line failures for
    a result that is not the parameter tree with a PartitionSpec per weight."""
    got = m.param_specs(_abstract(), strategy)
    flat = {}
    for name in WEIGHTS:
        node = got
        for key in name.split("/"):
            if not isinstance(node, dict) or key not in node:
                raise AssertionError(f"param_specs: {strategy}: the result has no {name}: return a "
                                     "tree of the same structure as params, a spec per weight")
            node = node[key]
        if not isinstance(node, P):
            raise AssertionError(f"param_specs: {strategy}: {name} is a {type(node).__name__}, want a "
                                 "jax.sharding.PartitionSpec")
        flat[name] = node
    return flat


def _fitting_specs(m, strategy: str) -> dict[str, P]:
    """_specs, with a one-line failure for a spec that cannot split its weight (before placing it)."""
    specs = _specs(m, strategy)
    for name, spec in specs.items():
        if _problem(spec, WEIGHTS[name][1], _mesh(strategy)):
            raise AssertionError(f"param_specs: {strategy}: {name} gets {_show(spec)}, which does not fit "
                                 "it (test_param_specs_valid says why)")
    return specs


def _problem(spec: P, shape: tuple[int, ...], mesh) -> str | None:
    """Why `spec` cannot split an array of `shape` on `mesh`, or None."""
    if len(spec) > len(shape):
        return f"has {len(spec)} entries for {len(shape)} dimensions"
    used = []
    for dim, entry in enumerate(spec):
        axes = () if entry is None else (entry,) if isinstance(entry, str) else tuple(entry)
        for axis in axes:
            if axis not in mesh.shape:
                return f"names mesh axis {axis!r}, but the mesh has {tuple(mesh.axis_names)}"
            if axis in used:
                return f"names mesh axis {axis!r} twice: a mesh axis splits at most one dimension"
            used.append(axis)
        ways = math.prod(mesh.shape[a] for a in axes)
        if shape[dim] % ways:
            return (f"splits dimension {dim} (size {shape[dim]}) over {'x'.join(axes)} of size "
                    f"{ways}, which does not divide it")
    return None


def _differs(spec: P, want: P, labels, mesh) -> str:
    """The dimensions (by their letters or logical names) that two specs split differently on mesh."""
    n = len(labels)
    got, ref = tuple(spec) + (None,) * (n - len(spec)), tuple(want) + (None,) * (n - len(want))

    def split(entry) -> tuple:  # the mesh axes of more than one device that split a dimension
        axes = () if entry is None else (entry,) if isinstance(entry, str) else tuple(entry)
        return tuple(a for a in axes if mesh.shape[a] > 1)

    return ", ".join(str(labels[i]) for i in range(n) if split(got[i]) != split(ref[i]))


# ---- param_specs (exercise 3.6) ----

def check_param_specs_valid(m):
    for constant, want in (("DATA", sharding.DATA), ("MODEL", sharding.MODEL)):
        got = getattr(m, constant, want)
        assert got == want, f"build_specs: {constant} = {got!r}; the course's mesh axis is {want!r}"
    for strategy in STRATEGIES:
        mesh = _mesh(strategy)
        for name, spec in _specs(m, strategy).items():
            letters, shape = WEIGHTS[name]
            why = _problem(spec, shape, mesh)
            assert why is None, (f"param_specs: {strategy}: {name} [{', '.join(letters)}] = {shape} "
                                 f"gets {_show(spec)}, which {why}")


def check_param_specs_unknown(m):
    try:
        m.param_specs(_abstract(), "zero3")
    except ValueError as e:
        assert "\n" not in str(e).strip(), "param_specs: the error for an unknown strategy is not one line"
    else:
        raise AssertionError("param_specs: strategy 'zero3' gave specs: raise a ValueError naming it")
    extra = {**_abstract(), "blocks": {**_abstract()["blocks"],
                                       "w_gate": jax.ShapeDtypeStruct((CONFIG.n_layers, E, F), jnp.float32)}}
    try:
        m.param_specs(extra, "fsdp")
    except ValueError as e:
        assert "w_gate" in str(e), f"param_specs: the error for an unknown weight does not name it: {e}"
        return
    raise AssertionError("param_specs: a weight it does not know (blocks/w_gate) got a spec: raise a "
                         "ValueError naming it, so that no weight is replicated by accident")


def check_param_specs_match_core(m):
    for strategy in STRATEGIES:
        mesh = _mesh(strategy)
        want = sharding.param_specs(_params(), strategy)
        for name, spec in _fitting_specs(m, strategy).items():
            letters, shape = WEIGHTS[name]
            ref = want[name] if "/" not in name else want["blocks"][name.split("/")[1]]
            same = NamedSharding(mesh, spec).is_equivalent_to(NamedSharding(mesh, ref), len(shape))
            assert same, (f"param_specs: {strategy}: {name} [{', '.join(letters)}] gets {_show(spec)}, which "
                          f"splits {_differs(spec, ref, letters, mesh)} otherwise than the course does under "
                          f"{strategy} (the module docstring says what {strategy} splits)")


def check_param_specs_dp(m):
    mesh = _mesh("dp")
    for name, spec in _fitting_specs(m, "dp").items():
        shape = WEIGHTS[name][1]
        held = NamedSharding(mesh, spec).shard_shape(shape)
        assert held == shape, (f"param_specs: dp: each device holds {held} of {name} {shape}: with data "
                               "parallelism every weight is replicated, whole on every device")


def _placed_bytes(m, strategy: str) -> dict[str, tuple[int, int]]:
    """name -> (bytes on device 0, bytes of the whole weight), from the placed arrays' shards."""
    mesh, specs = _mesh(strategy), _fitting_specs(m, strategy)
    out = {}
    for path, x in jax.tree_util.tree_flatten_with_path(_params())[0]:
        name = "/".join(k.key for k in path)
        placed = jax.device_put(x, NamedSharding(mesh, specs[name]))
        out[name] = (placed.addressable_shards[0].data.nbytes, placed.nbytes)
    return out


def check_param_specs_fsdp_memory(m):
    for strategy, axes in (("fsdp", "data"), ("fsdp_tp", "data and model")):
        n = _mesh(strategy).size
        held = _placed_bytes(m, strategy)
        mine, whole = (sum(b[i] for b in held.values()) for i in (0, 1))
        for name in MATRICES:
            device, total = held[name]
            assert device * n == total, (
                f"param_specs: {strategy}: each device keeps {device} of the {total} bytes of {name} "
                f"(parameters: {mine} of {whole} bytes per device), want 1/{n}: every weight matrix is "
                f"split over {axes} (memory not reduced)")


def _compiled_tp(m, part: str) -> list:
    """The collectives of one layer's MLP or attention, compiled on the tp mesh with the answer's
    weight specs; the input and output [B, S, E] whole on every device (TP's residual stream)."""
    mesh, specs = _mesh("tp"), _fitting_specs(m, "tp")
    blocks = {k: jax.device_put(w, NamedSharding(mesh, specs[f"blocks/{k}"]))
              for k, w in _params()["blocks"].items()}
    whole = NamedSharding(mesh, P())
    x = jax.device_put(jax.random.normal(jax.random.key(1), (B, S, E)), whole)
    positions = jnp.broadcast_to(jnp.arange(S), (B, S))
    if part == "MLP":
        f = lambda x, p: model.mlp(x, p["w_up"][0], p["w_down"][0])  # noqa: E731
    else:
        f = lambda x, p: model.attention_block(  # noqa: E731
            x, jax.tree.map(lambda w: w[0], p), positions, None, CONFIG)[0]
    return collectives.compiled_collectives(jax.jit(f, out_shardings=whole), x, blocks)


def _check_one_all_reduce(m, part: str, meet: str):
    found = _compiled_tp(m, part)
    want = B * S * E * 4
    if [(c.kind, c.result_bytes, c.count) for c in found] == [("all-reduce", want, 1)]:
        return
    kinds = sorted({c.kind for c in found} - {"all-reduce"})
    extra = f" (extra collectives: {', '.join(kinds)})" if kinds else ""
    raise AssertionError(
        f"param_specs: tp: the compiled {part} runs {collectives.summarize(found)}; want one all-reduce "
        f"of its [B, S, E] output and nothing else{extra}: {meet}, so that no weight or activation moves")


def check_param_specs_tp_mlp(m):
    _check_one_all_reduce(m, "MLP", "each device's slice of the hidden layer must meet the matching "
                                    "slice of w_down")


def check_param_specs_tp_attention(m):
    _check_one_all_reduce(m, "attention", "each device's heads must meet the matching slice of wo")


# ---- activation_spec (exercise 3.7) ----

def _activation(m, logical: tuple, strategy: str) -> P:
    spec = m.activation_spec(logical, strategy)
    assert isinstance(spec, P), (f"activation_spec: {strategy} {logical} returned a {type(spec).__name__}, "
                                 "want a jax.sharding.PartitionSpec")
    return spec


def check_activation_spec_valid(m):
    for strategy in STRATEGIES:
        mesh = _mesh(strategy)
        for logical, shape in ACTIVATIONS.items():
            spec = _activation(m, logical, strategy)
            why = _problem(spec, shape, mesh)
            assert why is None, \
                f"activation_spec: {strategy}: {logical} {shape} gets {_show(spec)}, which {why}"
    try:
        m.activation_spec(("batch", "sequence"), "zero3")
    except ValueError:
        return
    raise AssertionError("activation_spec: strategy 'zero3' gave a spec: raise a ValueError naming it")


def check_activation_spec_matches_core(m):
    for strategy in STRATEGIES:
        mesh = _mesh(strategy)
        for logical, shape in ACTIVATIONS.items():
            spec, ref = _activation(m, logical, strategy), sharding.activation_spec(logical, strategy)
            if _problem(spec, shape, mesh):
                raise AssertionError(f"activation_spec: {strategy}: {logical} gets {_show(spec)}, which does "
                                     "not fit it (test_activation_spec_valid says why)")
            if not NamedSharding(mesh, spec).is_equivalent_to(NamedSharding(mesh, ref), len(shape)):
                raise AssertionError(f"activation_spec: {strategy}: {logical} gets {_show(spec)}, which "
                                     f"splits {_differs(spec, ref, logical, mesh)} otherwise than the "
                                     f"course does under {strategy} (the module docstring says what "
                                     f"{strategy} splits)")


def check_activation_spec_batch(m):
    tokens = jnp.zeros((B, S), jnp.int32)
    for strategy in STRATEGIES:
        mesh = _mesh(strategy)
        spec = _activation(m, ("batch", "sequence"), strategy)
        placed = jax.device_put(tokens, NamedSharding(mesh, spec))
        rows, cols = placed.addressable_shards[0].data.shape
        want = B // mesh.shape[sharding.DATA]
        why = ("tensor parallelism does not split the batch: every device reads every row"
               if strategy == "tp" else "the batch is split over data: each device reads its own rows")
        assert rows == want, (f"activation_spec: {strategy}: each device holds {rows} of the batch's "
                              f"{B} rows, want {want}: {why}")
        assert cols == S, (f"activation_spec: {strategy}: each device holds {cols} of the {S} positions of a "
                           "row: the sequence is not split")


# ---- the real training step on your specs ----

@dataclasses.dataclass(frozen=True)
class Yours(train.Placement):
    """The training job's Placement with the answer's specs in place of shared.sharding's."""
    specs: ModuleType | None = None

    def state(self, abstract_state: dict, tc: TrainConfig):
        specs = self.specs.param_specs(abstract_state["params"], self.strategy)
        params = jax.tree.map(lambda s: NamedSharding(self.mesh, s), specs,
                              is_leaf=lambda s: isinstance(s, P))
        replicated = NamedSharding(self.mesh, P())
        opt_state = optax.tree_map_params(optimizer(tc), lambda _, s: s, abstract_state["opt_state"],
                                          params, transform_non_params=lambda _: replicated)
        return {"params": params, "opt_state": opt_state, "step": replicated}

    def batch(self):
        return NamedSharding(self.mesh, self.specs.activation_spec(("batch", "sequence"), self.strategy))

    def hints(self):
        def constrain(x, logical):
            spec = self.specs.activation_spec(logical, self.strategy)
            return jax.lax.with_sharding_constraint(x, NamedSharding(self.mesh, spec))
        return constrain


def _batch() -> dict:
    tokens = np.random.default_rng(0).integers(0, V, (B, S + 1), dtype=np.int32)
    return {"inputs": tokens[:, :-1], "targets": tokens[:, 1:]}


@functools.cache
def _initial_state() -> dict:
    """The training job's initial state on one device (compiled once); steps donate their
    state, so callers place a copy."""
    return train.init_state(CONFIG, TRAIN)


def _two_steps(placement: train.Placement) -> tuple[list[float], np.ndarray, dict]:
    """Losses of two steps from the initial state (placed as `placement` says), the first step's
    squared gradient norms, and the state after them."""
    state = jax.tree.map(jnp.copy, _initial_state())
    batch = _batch()
    if placement.mesh is not None:
        state = jax.device_put(state, placement.state(jax.eval_shape(lambda: state), TRAIN))
        batch = jax.device_put(batch, placement.batch())
    step = train.make_step(CONFIG, TRAIN, placement)
    state, first = step(state, batch)
    state, second = step(state, batch)
    return [float(first["loss"]), float(second["loss"])], np.asarray(first["grad_sq"]), state


@functools.cache
def _one_device():
    losses, grad_sq, _ = _two_steps(train.Placement())
    return losses, grad_sq


def check_training_step(m):
    """The training job's step (shared.train.make_step) on 8 devices, FSDP over data = 4 and TP
    over model = 2, with the answer's specs for the state, the batch and the activation hints."""
    strategy = "fsdp_tp"
    mesh = _mesh(strategy)
    m.activation_spec(("batch", "sequence"), strategy)
    spec = m.param_specs(_abstract(), strategy)["blocks"]["w_up"]
    want, want_sq = _one_device()
    try:
        got, got_sq, state = _two_steps(Yours(mesh, strategy, m))
    except Exception as e:  # noqa: BLE001: one line, not XLA's page
        first = (str(e).strip().splitlines() or [""])[0][:160]
        raise AssertionError(f"training step: {strategy} on your specs fails: {type(e).__name__}: "
                             f"{first}") from None
    w = state["params"]["blocks"]["w_up"]
    assert w.sharding.is_equivalent_to(NamedSharding(mesh, spec), w.ndim), \
        f"training step: {strategy}: blocks/w_up came out as {w.sharding.spec}, not as your spec {spec}"
    # Sharded sums add partial results in another order: float32 rounding, ~1e-7 relative.
    err = max(abs(a - b) for a, b in zip(got, want))
    assert err < 1e-5, (f"training step: {strategy} on 8 devices gives losses {got}, one device {want}: "
                        "the same model on the same batch must give the same loss")
    rel = float(np.abs(got_sq - want_sq).max() / np.abs(want_sq).max())
    assert rel < 1e-4, (f"training step: {strategy}: the gradients' squared norms differ from one "
                        f"device's by {rel:.1e} (relative)")


# ---- the tests: your answers (or the solution's, with --solutions) through every check ----

def test_param_specs_valid(answers):
    check_param_specs_valid(check_imports(answers))


def test_param_specs_unknown(answers):
    check_param_specs_unknown(check_imports(answers))


def test_param_specs_match_core(answers):
    check_param_specs_match_core(check_imports(answers))


def test_param_specs_dp(answers):
    check_param_specs_dp(check_imports(answers))


def test_param_specs_fsdp_memory(answers):
    check_param_specs_fsdp_memory(check_imports(answers))


def test_param_specs_tp_mlp(answers):
    check_param_specs_tp_mlp(check_imports(answers))


def test_param_specs_tp_attention(answers):
    check_param_specs_tp_attention(check_imports(answers))


def test_activation_spec_valid(answers):
    check_activation_spec_valid(check_imports(answers))


def test_activation_spec_matches_core(answers):
    check_activation_spec_matches_core(check_imports(answers))


def test_activation_spec_batch(answers):
    check_activation_spec_batch(check_imports(answers))


def test_activation_spec_training_step(answers):
    check_training_step(check_imports(answers))
