"""shared.attention: every implementation against the reference, the reference against
jax.nn, blockwise memory, the Pallas kernel (interpret mode here), and the model with each.

Tolerances. float32: sums of at most a few hundred products of O(1) numbers, added in
another order, differ by ~1e-6; 2e-5 leaves room. bfloat16 inputs (compared with the
float32 reference on the same rounded inputs): the output is rounded to bfloat16 and the
softmax weights are rounded before the PV matmul, two relative errors of at most 2^-8
each on values bounded by max|v|, so 2 * 2^-8 * max|v|; gradients get 2^-5 of their
largest entry, as several rounded operands meet in each of them.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from shared import attention as attn_lib
from shared import backward, flash_pallas, model
from shared.config import ModelConfig

# name: (B, S, T, H, K, D, causal, segments, dtype). K = H, H/2 and 1: MHA, GQA, MQA.
CASES = {
    "gqa2-causal-segments-f32": (1, 64, 64, 4, 2, 32, True, True, "float32"),
    "mqa-full-segments-S<T-f32": (1, 32, 128, 4, 1, 16, False, True, "float32"),
    "mha-causal-S<T-bf16": (2, 64, 128, 4, 4, 16, True, False, "bfloat16"),
    "mqa-causal-segments-bf16": (1, 128, 128, 2, 1, 32, True, True, "bfloat16"),
}
# Small blocks, so that every case crosses several query and key blocks.
IMPLS = {
    "dense": backward.dense,
    "blockwise": functools.partial(attn_lib.blockwise, block_q=16, block_k=32),
    "pallas": flash_pallas.flash_attention,  # blocks 128 x 64: several key blocks once T >= 128
    "xla": attn_lib.xla,
}


def make_inputs(B, S, T, H, K, D, segments, dtype, seed=0):
    kq, kk, kv, kw = jax.random.split(jax.random.key(seed), 4)
    q = jax.random.normal(kq, (B, S, H, D)).astype(dtype)
    k = jax.random.normal(kk, (B, T, K, D)).astype(dtype)
    v = jax.random.normal(kv, (B, T, K, D)).astype(dtype)
    w = jax.random.normal(kw, (B, S, H, D))  # weights of a loss that touches every output
    seg = None
    if segments:  # three packed documents of uneven lengths per row, different per row
        cuts = np.array([[T // 5, T // 2], [T // 3, 3 * T // 4]])[:B]
        seg = jnp.asarray((np.arange(T)[None, :, None] >= cuts[:, None, :]).sum(-1), jnp.int32)
    return q, k, v, w, seg


def tolerances(dtype, v):
    if dtype == "float32":
        return 2e-5, 2e-5
    return 2 * 2**-8 * float(jnp.abs(v.astype(jnp.float32)).max()), 2**-5


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("case", list(CASES))
def test_matches_reference_with_gradients(impl, case):
    check_against_reference(IMPLS[impl], impl, case)


def test_cudnn_matches_reference_with_gradients_on_a_gpu():
    """The one case cuDNN takes (bfloat16, S = T); off a GPU its lowering is checked below."""
    if jax.default_backend() != "gpu":
        pytest.skip("cuDNN's kernels need an NVIDIA GPU")
    check_against_reference(attn_lib.cudnn, "cudnn", "mqa-causal-segments-bf16")


def check_against_reference(fn, impl: str, case: str) -> None:
    B, S, T, H, K, D, causal, segments, dtype = CASES[case]
    q, k, v, w, seg = make_inputs(B, S, T, H, K, D, segments, dtype)
    f32 = lambda x: x.astype(jnp.float32)

    def loss(fn, q, k, v):
        out = fn(q, k, v, causal=causal, segment_ids=seg)
        return jnp.sum(f32(out) * w), out

    grads = lambda fn: jax.jit(jax.value_and_grad(functools.partial(loss, fn), (0, 1, 2),
                                                  has_aux=True))
    (_, got), got_grads = grads(fn)(q, k, v)
    (_, want), want_grads = grads(attn_lib.reference)(f32(q), f32(k), f32(v))
    out_tol, grad_tol = tolerances(dtype, v)
    assert got.shape == (B, S, H, D) and got.dtype == q.dtype, \
        f"{impl}: output {got.shape} {got.dtype}, expected {(B, S, H, D)} {q.dtype}"
    err = float(jnp.abs(f32(got) - want).max())
    assert err <= out_tol, f"{impl} {case}: output max error {err:.2e} > {out_tol:.2e}"
    for name, g, ref in zip("qkv", got_grads, want_grads):
        rel = float(jnp.abs(f32(g) - ref).max() / jnp.abs(ref).max())
        assert rel <= grad_tol, \
            f"{impl} {case}: d{name} error {rel:.2e} of its largest entry > {grad_tol:.0e}"


@pytest.mark.parametrize("causal, segments", [(True, False), (False, True), (True, True)])
def test_reference_matches_jax_nn(causal, segments):
    """The oracle itself against the library, with the mask built independently in numpy."""
    B, S, T, H, K, D = 2, 32, 48, 4, 2, 16
    q, k, v, _, seg = make_inputs(B, S, T, H, K, D, segments, "float32", seed=1)
    allowed = np.ones((B, 1, S, T), bool)
    if causal:
        allowed &= np.tril(np.ones((S, T), bool), k=T - S)  # query s is position T - S + s
    if segments:
        seg_np = np.asarray(seg)
        allowed &= (seg_np[:, -S:, None] == seg_np[:, None, :])[:, None]
    want = jax.nn.dot_product_attention(q, k, v, mask=jnp.asarray(allowed), implementation="xla")
    got = attn_lib.reference(q, k, v, causal=causal, segment_ids=seg)
    err = float(jnp.abs(got - want).max())
    assert err <= 2e-5, f"reference vs jax.nn.dot_product_attention: max error {err:.2e} > 2e-5"


def test_flash_kernel_output_and_logsumexp():
    """The Pallas forward with 16 x 16 blocks (4 x 4 tiles), including its log-sum-exp."""
    B, S, T, H, K, D = 1, 64, 64, 4, 2, 16
    q, k, v, _, seg = make_inputs(B, S, T, H, K, D, True, "float32", seed=2)
    out, lse = flash_pallas.flash_forward(q, k, v, segment_ids=seg, causal=True,
                                          block_q=16, block_k=16)
    want = attn_lib.reference(q, k, v, causal=True, segment_ids=seg)
    scores = np.einsum("bshd,bthd->bhst", np.asarray(q), np.repeat(np.asarray(k), H // K, axis=2))
    scores = np.where(np.asarray(attn_lib.mask(S, T, causal=True, segment_ids=seg))[:, None],
                      scores / np.sqrt(D), -np.inf)
    want_lse = np.log(np.exp(scores).sum(-1))  # [B, H, S]; the scores are O(1), no overflow
    assert lse.shape == (B, H, S), f"lse shape {lse.shape}, expected {(B, H, S)}"
    err, lse_err = float(jnp.abs(out - want).max()), float(np.abs(lse - want_lse).max())
    assert err <= 2e-5, f"flash kernel output max error {err:.2e} > 2e-5"
    assert lse_err <= 2e-5, f"flash kernel log-sum-exp max error {lse_err:.2e} > 2e-5"


def test_flash_kernel_lowers_to_triton_for_a_gpu():
    """Lowered (not run) for CUDA from this CPU: Pallas's Triton lowering accepts the kernel."""
    q = jax.ShapeDtypeStruct((1, 256, 4, 64), jnp.bfloat16)
    kv = jax.ShapeDtypeStruct((1, 256, 2, 64), jnp.bfloat16)
    seg = jax.ShapeDtypeStruct((1, 256), jnp.int32)
    fn = jax.jit(lambda q, k, v, s: flash_pallas.flash_forward(q, k, v, segment_ids=s,
                                                               interpret=False))
    exported = jax.export.export(fn, platforms=["cuda"], disabled_checks=[
        jax.export.DisabledSafetyCheck.custom_call("__gpu$xla.gpu.triton")])(q, kv, kv, seg)
    assert "__gpu$xla.gpu.triton" in exported.mlir_module(), "no Triton kernel in the lowered module"


def temp_bytes(fn, S, H=2, D=16):
    x = jax.ShapeDtypeStruct((1, S, H, D), jnp.float32)
    grad = jax.grad(lambda q, k, v: jnp.sum(fn(q, k, v, causal=True)), (0, 1, 2))
    return jax.jit(grad).lower(x, x, x).compile().memory_analysis().temp_size_in_bytes


def test_blockwise_memory_grows_linearly():
    """Forward + backward temp memory of the compiled program: x4 when S grows x4, not x16."""
    blockwise = functools.partial(attn_lib.blockwise, block_q=128, block_k=128)
    ours = [temp_bytes(blockwise, S) for S in (512, 2048)]
    ref = [temp_bytes(attn_lib.reference, S) for S in (512, 2048)]
    assert ours[1] / ours[0] <= 5, \
        f"blockwise temp bytes {ours} at S=512, 2048 grow {ours[1] / ours[0]:.1f}x; linear is 4x"
    assert ref[1] / ref[0] >= 10, \
        f"reference temp bytes {ref} grow {ref[1] / ref[0]:.1f}x; expected ~16x (the [S, S] scores)"
    assert ours[1] * 8 <= ref[1], f"blockwise {ours[1]} B vs reference {ref[1]} B at S=2048"


@pytest.mark.parametrize("call, match", [
    # Lengths no block divides are padded now (tests/test_faults_serving.py); wrong segment ids are not.
    (lambda q: attn_lib.blockwise(q, q, q, segment_ids=jnp.zeros((1, 48), int)), r"\(1, 48\) should be"),
    (lambda q: flash_pallas.flash_attention(q, q, q, segment_ids=jnp.zeros((1, 48), int)), r"\(1, 48\)"),
    (lambda q: attn_lib.attention(q, q, q, impl="flash"), "unknown attention impl 'flash'"),
    (lambda q: attn_lib.attention(q, q[:, :, :3], q[:, :, :3]), "multiple of key/value heads"),
    (lambda q: attn_lib.attention(q, q[:, :32], q[:, :32]), "S must be <= T"),
])
def test_bad_shapes_give_one_line_errors(call, match):
    q = jnp.zeros((1, 64, 4, 16))
    with pytest.raises(ValueError, match=match) as info:
        call(q)
    assert "\n" not in str(info.value), f"error message is not one line: {info.value}"


def test_gpu_tiles_must_be_powers_of_two():
    with pytest.raises(ValueError, match="head width D 24 must be a power of two"):
        flash_pallas._check_tiles(128, 128, 24, 128, 64, native_gpu=True)
    flash_pallas._check_tiles(128, 128, 24, 128, 64, native_gpu=False)  # interpret: any D


TINY = ModelConfig(vocab_size=32, seq_len=64, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2,
                   d_ff=128)


def train_losses(impl: str, steps: int = 3) -> list[float]:
    """Plain Adam on one packed batch (two documents per row) of a repeating pattern."""
    config = ModelConfig(**{**TINY.__dict__, "attention": impl})
    tokens = jnp.tile(jnp.arange(16) * 2 % config.vocab_size, (2, config.seq_len // 16 + 1))
    tokens = tokens[:, : config.seq_len + 1]  # [B, S + 1]
    segment_ids = (jnp.arange(config.seq_len) >= 24).astype(jnp.int32)[None].repeat(2, 0)
    params = model.init(config, jax.random.key(0))
    opt = optax.adam(1e-2)
    state = opt.init(params)

    def loss_fn(params):
        logits = model.forward(params, tokens[:, :-1], config, segment_ids=segment_ids)
        return optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:]).mean()

    @jax.jit
    def step(params, state):
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, state = opt.update(grads, state)
        return optax.apply_updates(params, updates), state, loss

    losses = []
    for _ in range(steps):
        params, state, loss = step(params, state)
        losses.append(float(loss))
    return losses


def test_model_trains_with_each_impl_to_the_same_losses():
    want = train_losses("reference")
    assert want[-1] < want[0] - 0.5, f"reference: loss did not fall over 3 Adam steps: {want}"
    for impl in ("dense", "blockwise", "pallas", "xla"):
        got = train_losses(impl)
        # float32 attention differs by ~1e-6; three Adam steps of lr 1e-2 amplify it a little.
        assert np.allclose(got, want, rtol=0, atol=1e-4), \
            f"{impl}: losses {got} vs reference {want} (atol 1e-4)"


CUDNN_FORWARD, CUDNN_BACKWARD = "__cudnn$fmhaScaleBiasSoftmax", "__cudnn$fmhaScaleBiasSoftmaxBackward"
# Without the segment mask (its bias) cuDNN's calls are these, which the test must reject by name.
CUDNN_CALLS = (CUDNN_FORWARD, CUDNN_BACKWARD, "__cudnn$fmhaSoftmax", "__cudnn$fmhaSoftmaxBackward")


def test_cudnn_lowers_to_cudnns_fused_kernels_forward_and_backward(monkeypatch):
    """Lowered (not run) for CUDA from this CPU: the model's loss and gradients with attention
    'cudnn' (bfloat16, GQA, two packed documents a row) call cuDNN's fused attention, forward
    and backward, once each in the scan over layers. Numbers need a GPU."""
    from jax._src.cudnn import fused_attention_stablehlo  # private: its version check needs a GPU
    monkeypatch.setattr(fused_attention_stablehlo, "check_cudnn_version", lambda: 90800)
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    config = ModelConfig(**{**TINY.__dict__, "attention": "cudnn", "dtype": "bfloat16"})
    params = jax.eval_shape(lambda: model.init(config, jax.random.key(0)))
    tokens = jax.ShapeDtypeStruct((2, config.seq_len), jnp.int32)
    grads = jax.jit(jax.value_and_grad(lambda p, x, y, s: model.loss_fn(p, x, y, config,
                                                                        segment_ids=s)))
    exported = jax.export.export(grads, platforms=["cuda"], disabled_checks=[
        jax.export.DisabledSafetyCheck.custom_call(t) for t in CUDNN_CALLS])(
        params, tokens, tokens, tokens)
    text = exported.mlir_module()
    calls = {t: text.count(f"@{t}(") for t in (CUDNN_FORWARD, CUDNN_BACKWARD)}
    assert calls == {CUDNN_FORWARD: 1, CUDNN_BACKWARD: 1}, \
        f"cudnn attention: cuDNN calls {calls}, expected one forward and one backward (the layer's)"


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_cudnn_off_a_gpu_is_one_line(dtype):
    q = jnp.zeros((1, 64, 4, 16), dtype)
    with pytest.raises(attn_lib.AttentionError, match="NVIDIA GPU only, not on this cpu") as info:
        attn_lib.attention(q, q, q, impl="cudnn")
    assert "\n" not in str(info.value)


def test_cudnn_asks_for_bfloat16_and_s_equal_t(monkeypatch):
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    q = jnp.zeros((1, 64, 4, 16))
    with pytest.raises(attn_lib.AttentionError, match="bfloat16 or float16, not float32"):
        attn_lib.attention(q, q, q, impl="cudnn")
    q = q.astype(jnp.bfloat16)
    with pytest.raises(attn_lib.AttentionError, match="S = T"):
        attn_lib.attention(q[:, :32], q, q, impl="cudnn")
