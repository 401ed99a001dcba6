"""Build exercise (7.7-7.8): the training job's data loader, packed rows in a resumable order.

You write the two functions behind the loader the training job reads its batches from:
`pack_rows` (the packed batch for any rows of the corpus: inputs, targets, positions,
segment ids, loss weights) and `batch_indices` (which rows make batch number `position`).
They have exactly the contracts of the course core's `shared.data.Rows.get` and
`shared.pipeline.Loader.indices`, so they are drop-in replacements: once the tests pass,

    python -m shared.train --mine

trains on batches your code packed, in your order; the core's Loader (its iteration, its
state, the per-device placement and the prefetch thread) calls your two functions. Check them
with `python -m pytest exercises/07_training_end_to_end/test_build_loader.py`.

Exercise 7.1 packed a whole corpus at once from a list of documents. The loader cannot: it
asks for a few rows at a time, in a shuffled order, from a corpus already laid end to end as
one stream of tokens, and the loss needs targets and weights as well.

Letters, in every shape below:

    N  tokens in the stream           S  sequence length (the model's seq_len)
    R  tokens per row, S + 1          n  rows asked for at once
    B  batch size (rows per batch)

The stream: `tokens` [N], the documents laid end to end, and `starts` [n_docs], the offset
where each document starts (increasing, starts[0] == 0; no document is empty). Row r is the
R tokens at offsets r R ... r R + S, so the stream makes ceil(N / R) rows; the last one runs
past the end of the stream and is padded.

Imports: numpy, jax, the standard library and shared.config, nothing else from the course.
The tests read this file's imports and fail on shared.data (its Rows.get is pack_rows) and
shared.pipeline (its Loader.indices is batch_indices): this exercise is where you write them.
Helper functions are yours to add; name them with a leading underscore.
"""

from __future__ import annotations

import numpy as np


def pack_rows(tokens: np.ndarray, starts: np.ndarray, seq_len: int,
              rows: np.ndarray) -> dict[str, np.ndarray]:
    """Exercise 7.7: the packed batch for the given rows of the stream.

    tokens: integer [N] (uint8 for the course's bytes); starts: integer [n_docs] as above;
    rows: integer [n], row numbers in 0 .. ceil(N / R) - 1, in any order, repeats allowed.
    Returns a dict of [n, S] arrays, line i for rows[i] (with the row's R tokens t_0 .. t_S,
    token 0 where the row is past the end of the stream):

      inputs       int32    t_0 .. t_{S-1}
      targets      int32    t_1 .. t_S: each input's next token
      positions    int32    0 at the row's first column and at each column where a
                            document starts; one more than the column before elsewhere
      segment_ids  int32    1 from the row's first column (a row that starts inside a
                            document starts at 1 too), one more at each document start in
                            the row; 0 in the padding
      weights      float32  1 where the target is a real token of the same document as
                            its input; 0 where the target is the first token of another
                            document, and in the padding

    Positions in the padding are never used; any value is right there. Build each row
    from the stream directly: the rows asked for are few, the stream is long.
    """
    raise NotImplementedError("Exercise 7.7: the packed rows, with targets, positions, segment ids "
                              "and loss weights")


def batch_indices(num_rows: int, batch_size: int, seed: int, position: int) -> np.ndarray:
    """Exercise 7.8: the rows (integer [batch_size], each in 0 .. num_rows - 1) of batch
    number `position` (0, 1, 2, ...) of a run with this seed; num_rows >= batch_size.

    - An epoch is P = num_rows // batch_size whole batches: positions e P .. e P + P - 1
      make epoch e, and within an epoch no row comes twice.
    - The order is shuffled, and shuffled afresh for each epoch: a row left out of one
      epoch (num_rows - P batch_size of them are) comes in later ones; different seeds
      give different orders.
    - The result is a function of (num_rows, batch_size, seed, position) alone, however
      many calls came before and in whatever order: a run resumed at position p in a new
      process sees exactly the batches the uninterrupted run saw from p on. So the loader's
      whole state is one integer, saved with each checkpoint. It reads and changes no
      random state outside the call (numpy's global one included).
    """
    raise NotImplementedError("Exercise 7.8: the rows of batch `position`, a pure function of "
                              "(seed, position)")
