"""Rate estimates in bits per symbol and bits per pixel (paper Section 3.1, Eq. (1)).

The differentiable estimate is the entropy of the *soft* histogram (Agustsson et al., 2017):
p_j = mean of w_j over every entry of the batch, H = -sum_j p_j log2 p_j bits/symbol. The batch
is the global one: under a distribution strategy the per-replica counts are all-reduced
(summed) across replicas before the entropy, so Eq. (1) and Eq. (2) see the same H on 8 GPUs
as on one (the all-reduce is differentiable: its gradient is the all-reduced gradient). The hard
histogram's entropy (counts of the symbols actually chosen) is reported beside it. Neither is
the size of a file: real bytes come from the entropy coder.

The encoder subsamples by 8 in each direction, so an image of h x w pixels has
(h/8)(w/8)C symbols and bits per pixel = H * C / 64.
"""

import tensorflow as tf

SUBSAMPLING = 8


def entropy_bits(probabilities):
    """-sum p log2 p over the last axis, with 0 log 0 = 0."""
    p = tf.convert_to_tensor(probabilities, tf.float32)
    safe = tf.where(p > 0, p, tf.ones_like(p))
    return -tf.reduce_sum(p * tf.math.log(safe), axis=-1) / tf.math.log(2.0)


def global_sum(x):
    """`x` summed over the replicas when called by one of several replicas (in
    `strategy.run`), else `x`; differentiable."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return x
    return context.all_reduce(tf.distribute.ReduceOp.SUM, x)


def _relative(counts, floor=0.0):
    """Counts [..., L] summed over the replicas, as frequencies over the last axis (the total
    taken at least `floor`)."""
    counts = global_sum(counts)
    return counts / tf.maximum(tf.reduce_sum(counts, axis=-1, keepdims=True), floor)


def soft_histogram(assignment, per_channel=False):
    """p_j: the mean soft assignment over every entry of the global batch, shape [L] (with
    `per_channel`, each channel's own, [C, L]; `assignment`: [..., C, L]); differentiable.
    (Each entry's assignment sums to 1, so the counts sum to the entries.)"""
    num_centers = assignment.shape[-1] or tf.shape(assignment)[-1]  # static where known (XLA)
    rows = [-1, assignment.shape[-2] or tf.shape(assignment)[-2]] if per_channel else [-1]
    return _relative(tf.reduce_sum(tf.reshape(assignment, rows + [num_centers]), axis=0))


def hard_histogram(symbols, num_centers, per_channel=False):
    """Relative frequency of each symbol over the global batch, shape [num_centers] (with
    `per_channel`, each channel's own, [C, num_centers]; `symbols`: [..., C])."""
    # A sum of one-hot rows rather than tf.math.bincount, whose output size is not static (XLA).
    rows = [-1, symbols.shape[-1] or tf.shape(symbols)[-1]] if per_channel else [-1]
    one_hot = tf.one_hot(tf.reshape(symbols, rows), num_centers)
    return _relative(tf.reduce_sum(one_hot, axis=0), floor=1.0)


def soft_entropy(assignment):
    """Differentiable rate estimate H(q) in bits/symbol."""
    return entropy_bits(soft_histogram(assignment))


def hard_entropy(symbols, num_centers):
    """Empirical entropy of the chosen symbols in bits/symbol (no gradient)."""
    return entropy_bits(hard_histogram(symbols, num_centers))


def channel_soft_entropy(assignment):
    """H of each channel's own soft histogram, bits/symbol, shape [C]. A channel whose entropy
    is ~0 has every assignment one-hot on one center: the quantizer gives its y no gradient."""
    return entropy_bits(soft_histogram(assignment, per_channel=True))


def channel_hard_entropy(symbols, num_centers):
    """H of each channel's own histogram of chosen symbols, bits/symbol, shape [C]. Their mean
    is what the entropy coder's per-channel tables spend per symbol at best; the pooled
    `hard_entropy` is never below it (a mixture's entropy is at least the mean of its parts'),
    and is far above it when channels use different centers, e.g. a channel stuck on one."""
    return entropy_bits(hard_histogram(symbols, num_centers, per_channel=True))


def bits_per_pixel(bits_per_symbol, channels):
    """bpp = H * C / 64: (h/8)(w/8)C symbols of H bits each for h*w pixels."""
    return bits_per_symbol * channels / float(SUBSAMPLING * SUBSAMPLING)


def bits_per_symbol_for_bpp(bpp, channels):
    """Inverse of `bits_per_pixel`: the entropy target that gives `bpp` with C channels."""
    return bpp * SUBSAMPLING * SUBSAMPLING / channels
