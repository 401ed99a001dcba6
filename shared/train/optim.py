"""The optimizer and its learning-rate schedule (lesson 01; the settings are TrainConfig's)."""

from __future__ import annotations

import jax
import optax

from shared import config as cfg


def learning_rate(tc: cfg.TrainConfig) -> optax.Schedule:
    """Linear warmup to tc.lr, then cosine decay to tc.lr * tc.min_lr_ratio at tc.steps."""
    return optax.warmup_cosine_decay_schedule(
        0.0, tc.lr, tc.warmup_steps, max(tc.steps, tc.warmup_steps + 1), tc.lr * tc.min_lr_ratio)


def optimizer(tc: cfg.TrainConfig) -> optax.GradientTransformation:
    """AdamW with global-norm clipping; weight decay on matrices only (not norms' scales)."""
    decay_mask = lambda params: jax.tree.map(lambda p: p.ndim >= 2 and p.shape[-1] > 1, params)
    return optax.chain(
        optax.clip_by_global_norm(tc.grad_clip),
        optax.adamw(learning_rate(tc), b1=0.9, b2=0.95, weight_decay=tc.weight_decay,
                    mask=decay_mask))
