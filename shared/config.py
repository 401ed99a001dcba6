"""Model and training settings, with named presets (lesson 01).

Nothing here touches JAX: a config is plain data that can be printed, saved as
JSON next to a checkpoint, compared on resume and validated before any work.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field


class Error(ValueError):
    """A one-line error the command lines print and exit 2 on: bad input, not a bug.

    Every module's own error class (ConfigError, DataError, CheckpointError, ...)
    subclasses it, so a command line catches this one class."""


class ConfigError(Error):
    """A setting is wrong; the message is one line naming the field."""


# Rematerialisation policies of the scanned layer (shared.model applies them):
# none keeps every activation for the backward pass; full keeps only each layer's
# input and recomputes the rest; matmuls keeps the outputs of the weight matmuls and
# recomputes the cheap elementwise work (norms, RoPE, GELU, softmax) between them.
REMAT = ("none", "full", "matmuls")
MLPS = ("autodiff", "manual")  # how the MLP's backward pass is computed (shared.backward)
# Attention implementations (shared.attention.IMPLEMENTATIONS, whose keys these must be). Each
# serves any seq_len: blockwise and pallas cut a length into power-of-two blocks, or pad it to
# whole blocks and mask the padding when none divides it (shared.attention.tile). cudnn runs
# on an NVIDIA GPU only, in bfloat16 or float16 (shared.attention.GPU_ONLY).
ATTENTIONS = ("reference", "dense", "blockwise", "pallas", "xla", "cudnn")


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 256  # bytes: the tokenizer is byte-level, so 256 covers any text
    seq_len: int = 256  # context length S: the longest sequence the model ever sees
    d_model: int = 384  # width E of the residual stream
    n_layers: int = 6  # L transformer blocks, stacked and run with lax.scan
    n_heads: int = 6  # H query heads; head width D = d_model / n_heads
    n_kv_heads: int = 0  # K key/value heads; 0 means n_heads (plain multi-head attention)
    d_ff: int = 1536  # MLP width F, 4 * d_model as in GPT-2
    rope_base: float = 10000.0  # rotary position base; larger spreads the slowest frequencies further
    attention: str = "reference"  # implementation in shared.attention (lesson 05); presets: "dense"
    mlp: str = "autodiff"  # "manual": the MLP's hand-written backward pass (shared.backward, lesson 06)
    dtype: str = "float32"  # compute dtype of matmuls (summed in float32); parameters stay float32
    remat: str = "none"  # what the backward pass recomputes: none, full, or everything but matmuls
    # Mixture of experts (shared.moe, lesson 06): X expert MLPs per layer, each token sent to
    # top_k of them by a learned router. 0 keeps the dense MLP and the parameter tree unchanged.
    n_experts: int = 0  # X experts; each token's MLP costs top_k / X of the experts' parameters
    top_k: int = 1  # experts per token: 1 is Switch Transformer, 2 is GShard and Mixtral
    capacity_factor: float = 1.25  # expert slots per sequence: ceil(this * S * top_k / X)
    aux_loss: float = 0.01  # weight of the load-balancing loss added to the cross-entropy (Switch)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    def validate(self) -> "ModelConfig":
        positive = ("vocab_size", "seq_len", "d_model", "n_layers", "n_heads", "d_ff")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.d_model % self.n_heads:
            raise ConfigError(
                f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})"
            )
        if self.head_dim % 2:
            raise ConfigError(
                f"head width d_model/n_heads = {self.head_dim} must be even for rotary positions"
            )
        if self.n_kv_heads < 0 or self.n_heads % self.kv_heads:
            raise ConfigError(
                f"n_heads ({self.n_heads}) must be a multiple of n_kv_heads ({self.n_kv_heads})"
            )
        if self.dtype not in ("float32", "bfloat16"):
            raise ConfigError(f"dtype must be 'float32' or 'bfloat16', got {self.dtype!r}")
        if self.attention not in ATTENTIONS:
            raise ConfigError(f"attention must be one of {', '.join(ATTENTIONS)}, got {self.attention!r}")
        if self.mlp not in MLPS:
            raise ConfigError(f"mlp must be one of {', '.join(MLPS)}, got {self.mlp!r}")
        if self.remat not in REMAT:
            raise ConfigError(f"remat must be one of {', '.join(REMAT)}, got {self.remat!r}")
        if self.n_experts < 0:
            raise ConfigError(f"n_experts must be >= 0 (0: the dense MLP), got {self.n_experts}")
        if self.n_experts and not 1 <= self.top_k <= self.n_experts:
            raise ConfigError(f"top_k must be in [1, n_experts={self.n_experts}], got {self.top_k}")
        if self.capacity_factor <= 0:
            raise ConfigError(f"capacity_factor must be > 0, got {self.capacity_factor}")
        if self.aux_loss < 0:
            raise ConfigError(f"aux_loss must be >= 0, got {self.aux_loss}")
        return self


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 16  # sequences per step
    steps: int = 1000  # optimizer steps in the whole run
    lr: float = 1e-3  # peak learning rate, reached after warmup
    warmup_steps: int = 100  # linear ramp from 0: early Adam steps are noisy
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    weight_decay: float = 0.1  # AdamW decoupled decay, matrices only
    grad_clip: float = 1.0  # global-norm clip: one bad batch cannot blow up the weights
    eval_every: int = 100  # steps between validation-loss estimates
    eval_batches: int = 8  # batches averaged per validation estimate
    checkpoint_every: int = 200  # steps between checkpoints (the last step is always saved)
    keep_checkpoints: int = 3  # the newest checkpoints kept; older ones are deleted
    grad_accum: int = 1  # micro-batches per step: batch_size is split into this many
    seed: int = 0  # initialisation and batch order

    def validate(self) -> "TrainConfig":
        for name in ("batch_size", "steps", "eval_every", "eval_batches", "checkpoint_every",
                     "keep_checkpoints", "grad_accum"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.warmup_steps < 0:
            raise ConfigError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.batch_size % self.grad_accum:
            raise ConfigError(f"batch_size ({self.batch_size}) must be divisible by grad_accum "
                              f"({self.grad_accum})")
        return self


@dataclass(frozen=True)
class Preset:
    model: ModelConfig
    train: TrainConfig
    about: str = field(default="", compare=False)


# The presets train with lesson 06's hand-written backward passes (shared.backward); the
# ModelConfig defaults are lesson 01's plain model, differentiated by autodiff.
FAST = {"attention": "dense", "mlp": "manual"}

PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        ModelConfig(seq_len=128, d_model=128, n_layers=4, n_heads=4, d_ff=512, **FAST),
        TrainConfig(batch_size=8, steps=1500, lr=2e-3, warmup_steps=50, eval_every=250,
                    checkpoint_every=500),
        "0.85M parameters; about three minutes on a 2-core CPU",
    ),
    "small": Preset(
        ModelConfig(**FAST),
        TrainConfig(batch_size=32, steps=5000, lr=1e-3, warmup_steps=100, eval_every=250,
                    checkpoint_every=500),
        "nanoGPT's character-level Shakespeare shape: 10.8M parameters",
    ),
    "125m": Preset(
        ModelConfig(seq_len=1024, d_model=768, n_layers=18, n_heads=12, d_ff=3072,
                    dtype="bfloat16", **FAST),
        TrainConfig(batch_size=32, steps=20000, lr=6e-4, warmup_steps=1000, eval_every=1000,
                    checkpoint_every=2000),
        "GPT-2 small's width, 18 layers: 128M parameters; for one accelerator",
    ),
    "1b": Preset(
        ModelConfig(seq_len=2048, d_model=2048, n_layers=20, n_heads=16, n_kv_heads=8,
                    d_ff=8192, dtype="bfloat16", **FAST),
        TrainConfig(batch_size=64, steps=50000, lr=3e-4, warmup_steps=2000, eval_every=2000,
                    checkpoint_every=2000),
        "0.92B parameters with grouped-query attention; for a TPU slice or several GPUs",
    ),
}


def preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}")
    return PRESETS[name]


def to_dict(model: ModelConfig, train: TrainConfig) -> dict:
    return {"model": dataclasses.asdict(model), "train": dataclasses.asdict(train)}


def from_dict(d: dict) -> tuple[ModelConfig, TrainConfig]:
    try:
        return ModelConfig(**d["model"]).validate(), TrainConfig(**d["train"]).validate()
    except (KeyError, TypeError) as e:
        raise ConfigError(f"saved config is not a course config: {e}") from None


def differences(a: object, b: object, ignore: tuple[str, ...] = ()) -> list[str]:
    """Fields where two configs of the same class differ, as 'name: a -> b'."""
    return [
        f"{f.name}: {getattr(a, f.name)!r} -> {getattr(b, f.name)!r}"
        for f in dataclasses.fields(a)
        if f.name not in ignore and getattr(a, f.name) != getattr(b, f.name)
    ]


def dumps(model: ModelConfig, train: TrainConfig) -> str:
    return json.dumps(to_dict(model, train), indent=2)
