"""Checks for exercises 10.1-10.4 against numpy / jax.nn oracles, in interpret mode on the CPU.

The values say whether an answer computes the right thing; the jaxpr says whether it computes
it the way the exercise teaches: the matmul's K loop on the grid, the activation fused into the
matmul's kernel, the softmax inside its kernel (the work, not only a copy, is the pallas_call's).

Every check_* function takes the module under test, so tests/test_wrong_answers.py runs the
same checks on kept wrong answers (tests/wrong/kernels_*.py) and proves each is rejected by the
check about its mistake; the test_* functions at the bottom are thin wrappers over them.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from shared.course.jaxprs import primitives, sub_jaxprs

# float32 inputs of unit scale, sums of up to 48 products: blocking only reorders the
# additions, so results agree to a few float32 ulps of values of size ~10.
ATOL = 1e-4
MATMUL_BLOCKS = [(16, 16, 16), (32, 16, 8), (8, 32, 48)]


def _inputs(M, K, N, seed=0):
    kx, ky = jax.random.split(jax.random.key(seed))
    return jax.random.normal(kx, (M, K), jnp.float32), jax.random.normal(ky, (K, N), jnp.float32)


# ---- the jaxpr: which work runs inside the kernel ----
def _kernels(jaxpr) -> list:
    """Every pallas_call in jaxpr and the jaxprs inside it (not inside a kernel)."""
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "pallas_call":
            found.append(eqn)
            continue
        for sub in sub_jaxprs(eqn):
            found += _kernels(sub)
    return found

def _one_kernel(task: str, fn, *args):
    """(the jaxpr of fn(*args), its one pallas_call), or an AssertionError that says why not."""
    jaxpr = jax.make_jaxpr(fn)(*args).jaxpr
    kernels = _kernels(jaxpr)
    assert kernels, f"{task}: no pallas_call in the jaxpr: write it as a pl.pallas_call"
    assert len(kernels) == 1, (f"{task}: {len(kernels)} pallas_calls in the jaxpr, a pass over memory "
                               "each: the exercise is one kernel")
    return jaxpr, kernels[0]


def _outside(task: str, jaxpr, kernel, work: dict[str, str]):
    """Fails when a primitive of `work` (name -> what it is) runs outside the kernel or not in it."""
    outside = primitives(jaxpr, into_kernels=False)
    for name, what in work.items():
        assert name not in outside, (f"{task}: {what} ({name}) runs outside the kernel, in a separate "
                                     "pass over memory: the exercise is to do it inside the pallas_call")
    inside = primitives(kernel.params["jaxpr"], into_kernels=True)
    missing = [name for name in work if name not in inside]
    assert not missing, f"{task}: the kernel has no {', '.join(missing)}: it does not do the work itself"


# ---- 10.1: the tiled matmul with K on the grid ----

def check_matmul_kgrid(m):
    x, y = _inputs(32, 48, 32)
    want = np.asarray(x, np.float64) @ np.asarray(y, np.float64)
    for bm, bn, bk in MATMUL_BLOCKS:
        got = np.asarray(m.matmul_kgrid(x, y, bm, bn, bk))
        assert got.shape == want.shape, f"matmul_kgrid: shape: expected {want.shape}, got {got.shape}"
        assert got.dtype == np.float32, f"matmul_kgrid: dtype: expected float32 accumulation, got {got.dtype}"
        err = np.abs(got - want).max()
        assert err < ATOL, (f"matmul_kgrid, blocks {(bm, bn, bk)}: max |error| {err:.2e} vs numpy > {ATOL} "
                            "(float32 rounding only); check the k == 0 zeroing and the index maps")


def check_matmul_kgrid_kernel(m):
    (M, K), N, (bm, bn, bk) = (32, 48), 32, (16, 16, 8)
    x, y = _inputs(M, K, N)
    jaxpr, kernel = _one_kernel("matmul_kgrid", lambda a, b: m.matmul_kgrid(a, b, bm, bn, bk), x, y)
    grid, want = tuple(kernel.params["grid_mapping"].grid), (M // bm, N // bn, K // bk)
    assert grid == want, (f"matmul_kgrid: grid {grid} for [{M}, {K}] @ [{K}, {N}] in blocks (bm, bn, bk) = "
                          f"{(bm, bn, bk)}; the exercise's grid is (M // bm, N // bn, K // bk) = {want}, "
                          "one program per (i, j, k) block")
    _outside("matmul_kgrid", jaxpr, kernel, {"dot_general": "the matmul"})


# ---- 10.2: the fused epilogue ----

def check_matmul_activation(m):
    x, y = _inputs(32, 48, 16, seed=1)
    exact = np.asarray(x, np.float64) @ np.asarray(y, np.float64)
    for activation in (jax.nn.relu, jnp.tanh):
        got = np.asarray(m.matmul_activation(x, y, 16, 16, 16, activation))
        want = np.asarray(activation(jnp.asarray(exact, jnp.float32)))
        assert got.shape == want.shape, f"matmul_activation: shape: expected {want.shape}, got {got.shape}"
        err = np.abs(got - want).max()
        assert err < ATOL, (f"matmul_activation ({activation.__name__}): max |error| {err:.2e} vs "
                            f"activation(x @ y) > {ATOL}: the activation must be applied once, to the "
                            "finished sum, not to each partial sum")


def check_matmul_activation_fused(m):
    x, y = _inputs(32, 48, 16, seed=1)
    jaxpr, kernel = _one_kernel("matmul_activation",
                                lambda a, b: m.matmul_activation(a, b, 16, 16, 16, jnp.tanh), x, y)
    _outside("matmul_activation", jaxpr, kernel, {"dot_general": "the matmul", "tanh": "the activation"})


# ---- 10.3: the row softmax ----

def check_row_softmax(m):
    for scale in (1.0, 100.0):
        x = scale * jax.random.normal(jax.random.key(2), (24, 40), jnp.float32)
        got = np.asarray(m.row_softmax(x, 8))
        want = np.asarray(jax.nn.softmax(x, axis=-1))
        assert got.shape == want.shape, f"row_softmax: shape: expected {want.shape}, got {got.shape}"
        assert np.isfinite(got).all(), \
            f"row_softmax: non-finite output at input scale {scale}: subtract each row's maximum before exp"
        err = np.abs(got - want).max()
        assert err < 1e-6, \
            f"row_softmax: max |error| {err:.2e} vs jax.nn.softmax > 1e-6 (float32 probabilities <= 1)"


def check_row_softmax_kernel(m):
    (R, N), block_rows = (24, 40), 8
    x = jax.random.normal(jax.random.key(2), (R, N), jnp.float32)
    jaxpr, kernel = _one_kernel("row_softmax", lambda a: m.row_softmax(a, block_rows), x)
    grid, want = tuple(kernel.params["grid_mapping"].grid), (R // block_rows,)
    assert grid == want, (f"row_softmax: grid {grid} for [{R}, {N}] in blocks of {block_rows} rows; the "
                          f"exercise's grid is (R // block_rows,) = {want}, one program per block of rows")
    _outside("row_softmax", jaxpr, kernel, {"reduce_max": "the row maximum", "exp": "exp",
                                            "reduce_sum": "the row sum", "div": "the normalisation"})


# ---- 10.4: choosing a block ----

def _brute_force(n, target, multiple):
    fits = [b for b in range(1, target + 1) if n % b == 0 and b % multiple == 0]
    return max(fits) if fits else None


def check_choose_block(m, n, target, multiple):
    want = _brute_force(n, target, multiple)
    got = m.choose_block(n, target, multiple)
    assert got == want, (f"choose_block({n}, {target}, {multiple}): expected {want} (largest divisor "
                         f"<= target that is a multiple), got {got}")


def check_choose_block_error(m, n, target, multiple):
    assert _brute_force(n, target, multiple) is None  # the case really has no answer
    with pytest.raises(ValueError) as info:
        m.choose_block(n, target, multiple)
    message = str(info.value)
    assert "\n" not in message.strip(), f"choose_block: the error must be one line, got {message!r}"
    for value in (n, target, multiple):
        assert str(value) in message, \
            f"choose_block: the error must name n, target and multiple; {value} missing in {message!r}"


# ---- the tests: thin wrappers over the checks ----

def test_matmul_kgrid(answers):
    check_matmul_kgrid(answers)


def test_matmul_kgrid_kernel(answers):
    check_matmul_kgrid_kernel(answers)


def test_matmul_activation(answers):
    check_matmul_activation(answers)


def test_matmul_activation_fused(answers):
    check_matmul_activation_fused(answers)


def test_row_softmax(answers):
    check_row_softmax(answers)


def test_row_softmax_kernel(answers):
    check_row_softmax_kernel(answers)


@pytest.mark.parametrize("n,target,multiple", [(96, 64, 1), (96, 64, 16), (100, 64, 1), (4096, 512, 128),
                                               (384, 256, 128), (30, 100, 1), (7, 4, 1), (48, 40, 16)])
def test_choose_block(answers, n, target, multiple):
    check_choose_block(answers, n, target, multiple)


@pytest.mark.parametrize("n,target,multiple", [(100, 64, 16), (96, 100, 128), (7, 6, 2)])
def test_choose_block_error(answers, n, target, multiple):
    check_choose_block_error(answers, n, target, multiple)
