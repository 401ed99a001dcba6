"""The real jobs on the learner's pieces (shared.course.mine): the reference answers of the
build exercises plugged in train as the core does, and the command says whose pieces run."""

import dataclasses
import importlib
import types

import numpy as np
import pytest

from shared import config as cfg
from shared import model, train
from shared.course import mine
from shared.train import __main__ as train_cli

# Python source with some structure: enough for a tiny model to learn in a hundred steps.
TEXT = "".join(f"def f{i % 13}(x, y):\n    return x * {i % 7} + y - {i % 5}\n\n" for i in range(2000))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text(TEXT)
    return str(path)


def test_the_stubs_are_not_pieces_and_the_answers_are():
    for build in mine.BUILDS:
        assert not mine.written(build), f"{build.path()} is a stub in the repository"
        assert mine.written(build, solutions=True), f"{build.path(True)} should answer every function"
    assert set(mine.pieces(solutions=True)) == {b.piece for b in mine.BUILDS}
    assert mine.pieces() == {}


def test_training_on_the_answers_reaches_the_core_loss(corpus, tmp_path):
    """The main job (train.train) on every answer it runs at once (model, loader, step; the
    model's own attention), from the core's initial parameters, so that the two runs differ
    only in the code. Measured on a 2-core CPU with the model alone plugged in: 150 tiny
    steps on this corpus bring the core to a validation loss of 0.1632 and the answers to
    0.1625; a model without the causal mask reaches 0.113, one without RoPE on the keys
    0.217. A tolerance of 0.01 sits between."""
    mc = cfg.preset("tiny").model
    tc = dataclasses.replace(cfg.preset("tiny").train, steps=150, eval_every=150,
                             checkpoint_every=150, warmup_steps=10)
    answers = mine.pieces(solutions=True, command=train_cli.COMMAND)
    assert {"model", "loader", "step"} <= answers.keys()
    net = types.ModuleType("answers_from_the_core_init")
    net.init, net.forward, net.loss_sums = model.init, answers["model"].forward, answers["model"].loss_sums
    core = train.train(mc, tc, tmp_path / "core", data_path=corpus, progress=False)
    with mine.plugged_in({k: answers[k] for k in ("loader", "step")}, mc):
        ours = train.train(mc, tc, tmp_path / "ours", data_path=corpus, progress=False, net=net)
    loss = lambda r: [h["val_loss"] for h in r.history if "val_loss" in h][-1]
    assert abs(loss(ours) - loss(core)) < 0.01, \
        f"validation loss with the answers' pieces {loss(ours):.4f}, with the core's {loss(core):.4f}"
    assert loss(core) < 1.0, f"the core did not learn this corpus in 150 steps: {loss(core):.3f}"


def test_the_command_says_whose_pieces_run(corpus, tmp_path, capsys):
    args = ["--out", str(tmp_path), "--data", corpus, "--steps", "3", "--sample-tokens", "4"]
    assert train_cli.main(args + ["--name", "answers", "--solutions"]) == 0
    out = capsys.readouterr().out
    assert "your model: model: the reference answers' (solutions/01_llm_from_scratch/build_model.py)" in out
    assert train_cli.main(args + ["--name", "stubs", "--mine"]) == 0
    out = capsys.readouterr().out
    assert "model: the core's (exercises/01_llm_from_scratch/build_model.py is not written yet)" in out


def test_the_answers_attention_runs_in_the_real_job(corpus, tmp_path):
    """Lesson 05's piece plugged in place of the preset's attention: the job traces it, and
    with the same initial parameters and data it trains as the core does (the two differ
    by float32 rounding: the losses of 20 steps agree to 1e-3)."""
    mc = cfg.preset("tiny").model
    tc = dataclasses.replace(cfg.preset("tiny").train, steps=20, eval_every=20,
                             checkpoint_every=20, warmup_steps=5)
    flash = mine.pieces(solutions=True)["attention"].flash_attention
    traced = []

    def watched(*args, **kwargs):
        traced.append(args[0].shape)
        return flash(*args, **kwargs)

    core = train.train(mc, tc, tmp_path / "core", data_path=corpus, progress=False)
    with mine.plugged_in({"attention": types.SimpleNamespace(flash_attention=watched)}, mc) as net:
        ours = train.train(mc, tc, tmp_path / "ours", data_path=corpus, progress=False, net=net)
    assert traced, "the training step never called the plugged-in attention"
    losses = lambda r: [h["loss"] for h in r.history if "loss" in h]
    for step, (a, b) in enumerate(zip(losses(ours), losses(core))):
        assert abs(a - b) < 1e-3, f"logged loss {step}: {a:.5f} with the answers' attention, {b:.5f} with the core's"


def test_a_broken_piece_is_one_line(monkeypatch, tmp_path, capsys):
    broken = tmp_path / "01_llm_from_scratch" / "build_model.py"
    broken.parent.mkdir()
    broken.write_text("def init(config, key):\n    return {\n\ndef forward(p, t, c):\n    pass\n")
    build = dataclasses.replace(mine.BUILDS[0])
    monkeypatch.setattr(mine.Build, "path", lambda self, solutions=False: broken)
    monkeypatch.setattr(mine, "ROOT", tmp_path)
    assert train_cli.main(["--out", str(tmp_path), "--mine", "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "01_llm_from_scratch/build_model.py line" in err and len(err.strip().splitlines()) == 1, err
    broken.write_text("import not_a_module\ndef init(c, k): return 1\ndef forward(p, t, c): return 1\n"
                      "def loss_sums(p, b, c): return 1\n")
    with pytest.raises(cfg.Error, match="cannot be imported: ModuleNotFoundError"):
        mine.load(build)


def test_plugs_put_the_core_back():
    """Every piece swapped in by a Plug is where the core calls it inside plugged_in, and the
    core's own function is back afterwards."""
    answers = mine.pieces(solutions=True)
    plugged = [(b, plug) for b in mine.BUILDS for plug in b.plugs]
    assert plugged, "no build exercise plugs in by swapping a core function"

    def current(plug):
        module, _, path = plug.target.partition(":")
        owner = importlib.import_module(module)
        for part in path.split("."):
            owner = getattr(owner, part)
        return owner

    before = {plug.target: current(plug) for _, plug in plugged}
    with mine.plugged_in(answers, cfg.preset("tiny").model):
        for build, plug in plugged:
            assert current(plug) is not before[plug.target], f"{build.piece}: {plug.target} was not swapped"
    for _, plug in plugged:
        assert current(plug) is before[plug.target], f"{plug.target} was not put back"


def test_the_answers_loader_feeds_the_real_job(corpus, tmp_path):
    """Lesson 07's piece (packed rows, batch order) in place of the core's: the job reads
    every batch through it, and since the answers draw the core's order, training and
    validation losses are the core's exactly."""
    mc = cfg.preset("tiny").model
    tc = dataclasses.replace(cfg.preset("tiny").train, steps=12, eval_every=6,
                             checkpoint_every=12, warmup_steps=2)
    loader = mine.pieces(solutions=True)["loader"]
    calls = []
    counted = types.SimpleNamespace(
        pack_rows=lambda *a: calls.append("rows") or loader.pack_rows(*a),
        batch_indices=lambda *a: calls.append("order") or loader.batch_indices(*a))
    core = train.train(mc, tc, tmp_path / "core", data_path=corpus, progress=False)
    with mine.plugged_in({"loader": counted}, mc):
        ours = train.train(mc, tc, tmp_path / "ours", data_path=corpus, progress=False)
    assert {"rows", "order"} <= set(calls), f"the job called only {set(calls)} of the plugged loader"
    assert ours.history == core.history, "the answers' loader changed the losses"


def test_the_answers_roofline_draws_the_benchmarks_points():
    """Lesson 02's piece in the roofline benchmark's analysis: the answers' cost, timing and
    verdict are the ones the benchmark reads, and on the same program they agree with the core's."""
    import jax.numpy as jnp

    from shared import roofline

    a = jnp.ones((128, 128), jnp.float32)
    core = roofline.analyze(jnp.matmul, a, a, runs=3)
    called = []
    answers = mine.pieces(solutions=True)["roofline"]
    watched = types.SimpleNamespace(**{name: (lambda f: lambda *x, **k: called.append(f.__name__) or f(*x, **k))(
        getattr(answers, name)) for name in ("cost", "timeit", "roofline_point")})
    with mine.plugged_in({"roofline": watched}):
        ours = roofline.analyze(jnp.matmul, a, a, runs=3)
        verdict = (ours.intensity, ours.ridge, ours.bound, ours.bound_s)
    assert set(called) == {"cost", "timeit", "roofline_point"}, f"the benchmark called only {set(called)}"
    assert ours.cost == core.cost
    assert verdict == (core.intensity, core.ridge, core.bound, core.bound_s)


def test_the_answers_fsdp_is_the_benchmarks_fsdp_row():
    """Lesson 04's piece stands in for the FSDP strategy of the sharding benchmark's stack of
    layers (and only for it): same values, and the gathers the ring model predicts."""
    import jax
    import numpy as np

    from shared import collectives, devices, sharding

    devices.simulate_cpu_devices(8)
    if jax.device_count() < 8:
        pytest.skip("needs 8 simulated devices (set before the first JAX operation)")
    mesh = sharding.stack_mesh("fsdp", jax.devices())
    x, ws = sharding.stack_init(jax.random.key(0), 64, 32, 2, "fsdp", mesh, "float32")
    core = np.asarray(sharding.stack_forward(x, ws, "fsdp", mesh))
    with mine.plugged_in({"fsdp": mine.pieces(solutions=True)["fsdp"]}):
        f = jax.jit(lambda x, ws: sharding.stack_forward(x, ws, "fsdp", mesh))
        ours = np.asarray(f(x, ws))
        found = collectives.compiled_collectives(f, x, ws)
    np.testing.assert_allclose(ours, core, rtol=1e-5, atol=1e-6)
    predicted = sharding.stack_prediction("fsdp", 64, 32, 2, mesh, "float32")
    assert sum(c.bytes_sent for c in found) == sum(c.bytes_sent for c in predicted), \
        f"the plugged FSDP row sends {collectives.summarize(found)}, predicted {collectives.summarize(predicted)}"


def _watched(piece, names):
    """The piece with each named function counting its calls in `calls`."""
    calls = []
    wrap = lambda name: lambda *a, **k: calls.append(name) or getattr(piece, name)(*a, **k)
    return types.SimpleNamespace(**{n: wrap(n) for n in names}), calls


def test_the_answers_step_and_specs_run_the_real_job(corpus, tmp_path):
    """Lessons 03 and 06: the training job compiles the answers' step (one device) and places
    a sharded run by the answers' specs; either way it trains as the core does."""
    mc = cfg.preset("tiny").model
    tc = dataclasses.replace(cfg.preset("tiny").train, steps=12, eval_every=12,
                             checkpoint_every=12, warmup_steps=2)
    answers = mine.pieces(solutions=True)
    core = train.train(mc, tc, tmp_path / "core", data_path=corpus, progress=False)
    step_piece, calls = _watched(answers["step"], ("make_step", "remat"))
    with mine.plugged_in({"step": step_piece}, mc):
        ours = train.train(mc, tc, tmp_path / "ours", data_path=corpus, progress=False)
    assert "make_step" in calls, "the training job did not build the answers' step"
    losses = lambda r: [h["loss"] for h in r.history if "loss" in h]
    np.testing.assert_allclose(losses(ours), losses(core), rtol=1e-5,
                               err_msg="the answers' step trains differently from the core's")

    import jax
    from shared import sharding
    from shared.train import step as train_step
    mesh = sharding.strategy_mesh("fsdp", jax.devices()[:8])
    placement = train_step.Placement(mesh, "fsdp")
    want = placement.state(train_step.abstract_state(mc, tc), tc)["params"]
    specs_piece, calls = _watched(answers["specs"], ("param_specs", "activation_spec"))
    with mine.plugged_in({"specs": specs_piece}, mc):
        got = placement.state(train_step.abstract_state(mc, tc), tc)["params"]
        sharded = train.train(mc, dataclasses.replace(tc, steps=4), tmp_path / "fsdp",
                              data_path=corpus, progress=False, placement=placement)
    assert {"param_specs", "activation_spec"} <= set(calls), f"the sharded job called only {set(calls)}"
    assert jax.tree.map(lambda a, b: a.spec == b.spec, got, want) == jax.tree.map(lambda _: True, want)
    assert np.isfinite(sharded.history[-1].get("loss", sharded.history[-1].get("val_loss")))


def test_the_answers_decode_and_scheduler_serve_the_cores_tokens():
    """Lesson 09: generation and the engine on the answers' cached forward and scheduler give
    the core's greedy tokens."""
    import jax

    from shared import engine, inference, model as core_model
    from shared.config import FAST, ModelConfig

    config = ModelConfig(vocab_size=64, seq_len=64, d_model=32, n_layers=2, n_heads=4, d_ff=64, **FAST)
    params = core_model.init(config, jax.random.key(0))
    rng = np.random.default_rng(0)
    prompts = [rng.integers(0, 64, n).astype(np.int32) for n in (5, 11, 3, 8, 7)]
    requests = lambda: [engine.Request(i, p, max_new_tokens=6 + i) for i, p in enumerate(prompts)]
    tokens = lambda done: {c.id: c.tokens.tolist() for c in done}
    want_gen = inference.generate(params, config, prompts[:2], 6)
    want_eng = tokens(engine.Engine(params, config, slots=2, max_len=32).run(requests()))
    answers = mine.pieces(solutions=True)
    decode, calls = _watched(answers["decode"], ("extend",))
    scheduler, more = _watched(answers["scheduler"], ("admit", "retire"))
    with mine.plugged_in({"decode": decode, "scheduler": scheduler}, config):
        got_gen = inference.generate(params, config, prompts[:2], 6)
        got_eng = tokens(engine.Engine(params, config, slots=2, max_len=32).run(requests()))
    assert {"extend"} <= set(calls) and {"admit", "retire"} <= set(more), \
        f"serving called {set(calls) | set(more)} of the answers' pieces"
    assert [list(map(int, a)) for a in got_gen] == [list(map(int, a)) for a in want_gen]
    assert got_eng == want_eng


def test_the_answers_kernel_and_profile_reader_are_what_the_benchmarks_run(tmp_path):
    """Lessons 08 and 10: the "pallas" attention runs the answers' forward kernel (with the
    core's backward), and the profile report reads the trace with the answers' reader."""
    import jax
    import jax.numpy as jnp

    from shared import attention, profiling

    answers = mine.pieces(solutions=True)
    q = jax.random.normal(jax.random.key(0), (1, 128, 2, 16))
    want = attention.attention(q, q, q, causal=True, impl="reference")
    kernel, calls = _watched(answers["kernel"], ("flash_forward",))
    with mine.plugged_in({"kernel": kernel}):
        got = attention.attention(q, q, q, causal=True, impl="pallas")
    assert calls, "the pallas attention did not run the answers' kernel"
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)

    f = jax.jit(lambda a: jnp.tanh(a @ a))
    a = jnp.ones((64, 64))
    f(a).block_until_ready()
    with profiling.trace(tmp_path):
        f(a).block_until_ready()
    reader, calls = _watched(answers["profile"], ("op_times", "categorize", "breakdown", "summarize"))
    with mine.plugged_in({"profile": reader}):
        profiling.summarize(tmp_path, steps=1, hlo=f.lower(a).compile().as_text())
    assert "summarize" in calls, "the profile report did not use the answers' reader"
