"""Checks for strategies.py on 8 simulated CPU devices (exercises/04_sharding_strategies/conftest.py).

Oracles: XLA's cost analysis and the collectives in the compiled HLO of each strategy,
compiled here on N of the simulated devices; the chip table in shared.hardware.
"""

import jax
import jax.numpy as jnp
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from shared import collectives, sharding
from shared.hardware import CHIPS

CPUS = jax.devices("cpu")


def compiled_fsdp_layer(B, E, N, dtype=jnp.float32):
    """One FSDP layer x @ W on N devices: x split by batch, W split by rows."""
    mesh = sharding.make_mesh({"data": N}, CPUS[:N])
    rows = NamedSharding(mesh, P("data", None))
    x = jax.device_put(jnp.ones((B, E), dtype), rows)
    w = jax.device_put(jnp.ones((E, E), dtype), rows)
    return jax.jit(jnp.matmul, out_shardings=rows).lower(x, w).compile()


SIZES = [(64, 32, 2), (128, 64, 4), (256, 128, 8), (64, 64, 8)]


@pytest.mark.parametrize("B, E, N", SIZES)
def test_fsdp_flops_per_chip(answers, B, E, N):
    want = compiled_fsdp_layer(B, E, N).cost_analysis()["flops"]
    got = answers.fsdp_flops_per_chip(B, E, N)
    assert got == pytest.approx(want, rel=1e-9), \
        f"FSDP layer B={B} E={E} on {N} chips: XLA's cost analysis says {want:.0f} FLOPs per chip, got {got}"


@pytest.mark.parametrize("B, E, N", SIZES)
def test_fsdp_gather_bytes(answers, B, E, N):
    found = collectives.hlo_collectives(compiled_fsdp_layer(B, E, N).as_text())
    gathers = [c for c in found if c.kind == "all-gather"]
    assert len(gathers) == 1, f"oracle: expected XLA to gather the weight once, found {collectives.summarize(found)}"
    want = gathers[0].bytes_sent  # float32; the CPU gathers bfloat16 in float32, so only float32 is compiled
    got = answers.fsdp_gather_bytes(E, N, 4)
    assert got == pytest.approx(want, rel=1e-9), \
        f"gathering a [{E},{E}] float32 weight over {N} chips: {want:.0f} bytes each (HLO), got {got}"
    got = answers.fsdp_gather_bytes(E, N, 2)
    assert got == pytest.approx(want / 2, rel=1e-9), \
        f"2-byte params move half the bytes of float32: want {want / 2:.0f}, got {got}"


H100, V5E = CHIPS["H100"], CHIPS["TPU v5e"]


@pytest.mark.parametrize("flops, comm_bytes, peak, bw", [
    (2e12, 9e11, 1e12, 4.5e11),  # 2 s of compute, exactly 2 s of communication
    (2e12, 9.1e11, 1e12, 4.5e11),
    (2 * 1024 * 8192**2 / 8, 8192**2 * 2 * 7 / 8, H100.flops("bfloat16"), H100.link_bw),  # FSDP, 128 tokens/chip
    (2 * 65536 * 8192**2 / 8, 8192**2 * 2 * 7 / 8, H100.flops("bfloat16"), H100.link_bw),  # 8192 tokens/chip
    (2 * 16384 * 4096**2 / 16, 4096**2 * 2 * 15 / 16, V5E.flops("bfloat16"), V5E.link_bw),
    (1e9, 0.0, 1e12, 1e9),
])
def test_comm_hidden(answers, flops, comm_bytes, peak, bw):
    t_compute, t_comm = flops / peak, comm_bytes / bw
    want = t_comm <= t_compute
    got = answers.comm_hidden(flops, comm_bytes, peak, bw)
    assert bool(got) == want, (f"{flops:.3g} FLOPs at {peak:.3g} FLOP/s take {t_compute:.3g} s; {comm_bytes:.3g} "
                               f"bytes at {bw:.3g} B/s take {t_comm:.3g} s: hidden={want}, got {got}")


def hlo_bytes_per_layer(strategy, B, E, N):
    L = 2  # one Megatron pair
    mesh = sharding.stack_mesh(strategy, CPUS[:N])
    x, ws = sharding.stack_init(jax.random.key(0), B, E, L, strategy, mesh)
    f = jax.jit(lambda x, ws: sharding.stack_forward(x, ws, strategy, mesh))
    return sum(c.bytes_sent for c in collectives.compiled_collectives(f, x, ws)) / L


@pytest.mark.parametrize("B, E, N", [(64, 32, 8), (32, 64, 8), (128, 256, 4), (256, 64, 2), (64, 64, 4)])
def test_least_communication(answers, B, E, N):
    fsdp, tp = hlo_bytes_per_layer("fsdp", B, E, N), hlo_bytes_per_layer("tp", B, E, N)
    want = "fsdp" if fsdp <= tp else "tp"
    got = answers.least_communication(B, E, N)
    assert got == want, (f"B={B} E={E} N={N}: compiled HLO sends {fsdp:.0f} bytes/chip/layer for FSDP, "
                         f"{tp:.0f} for TP, so {want!r}; got {got!r}")
