"""Architecture arithmetic: output sizes, parameter counts and MACs of layers.

One module per job: `formulas` (pure integer arithmetic), `summary` (any flax model, from shapes),
`exercise` (the notes' answers and the dense-vs-conv rows) and `tables` (formatting only).

This module answers the course notes' CNN exercise (TD-2, Exercise 1) and the
"Tensor size calculation" of the sequence-CNN note with small, pure functions
(tests/test_arith.py checks them against real flax.linen layers and jax.lax):

* :func:`conv_output_size` / :func:`conv_output_shape` / :func:`pool_output_size`
  -- feature-map sizes for VALID, SAME and explicit padding, strides, dilation;
* :func:`dense_params`, :func:`conv_params`, :func:`embedding_params` -- the
  number of trainable floats of a layer;
* :func:`dense_macs`, :func:`conv_macs` -- multiply-accumulates of one forward pass;
* :func:`summarize` / :func:`format_summary` -- a per-layer table (output shape,
  parameters, MACs) for any ``flax.linen`` model, computed with
  :func:`jax.eval_shape` so that nothing is allocated;
* :func:`dense_vs_conv_table` -- why a dense layer on images does not scale: its
  weights grow as n^4 with the image side n, a convolution's stay constant;
* :func:`notes_exercise_answers` -- the notes' four answers.

Shapes follow flax's channels-last convention: images are ``(N, H, W, C)``,
sequences ``(N, T, D)``, conv kernels ``(*kernel_size, C_in, C_out)``.
Nothing here reads flags or touches the file system.
"""

from vaecnn.arith.formulas import (  # noqa: F401 -- the package's public names
    AxisPadding, conv_macs, conv_output_shape, conv_output_size, conv_params, count_params, dense_macs,
    dense_params, embedding_params, pool_output_size)
from vaecnn.arith.summary import (  # noqa: F401 -- the package's public names
    LayerSummary, ModelSummary, summarize)
from vaecnn.arith.exercise import (  # noqa: F401 -- the package's public names
    DenseVsConvRow, dense_vs_conv_table, notes_exercise_answers)
from vaecnn.arith.tables import (  # noqa: F401 -- the package's public names
    format_bytes, format_dense_vs_conv_table, format_notes_exercise_answers, format_summary)
