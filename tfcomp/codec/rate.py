"""Rate estimates in bits per symbol and bits per pixel (paper Section 3.1, Eq. (1)).

The differentiable estimate is the entropy of the *soft* histogram (Agustsson et al., 2017):
p_j = mean of w_j over every entry of the batch, H = -sum_j p_j log2 p_j bits/symbol. The hard
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


def soft_histogram(assignment):
    """p_j: the mean soft assignment over every entry, shape [L]; differentiable."""
    num_centers = tf.shape(assignment)[-1]
    return tf.reduce_mean(tf.reshape(assignment, [-1, num_centers]), axis=0)


def hard_histogram(symbols, num_centers):
    """Relative frequency of each symbol, shape [num_centers]."""
    counts = tf.math.bincount(
        tf.reshape(symbols, [-1]), minlength=num_centers, maxlength=num_centers, dtype=tf.float32
    )
    return counts / tf.maximum(tf.reduce_sum(counts), 1.0)


def soft_entropy(assignment):
    """Differentiable rate estimate H(q) in bits/symbol."""
    return entropy_bits(soft_histogram(assignment))


def hard_entropy(symbols, num_centers):
    """Empirical entropy of the chosen symbols in bits/symbol (no gradient)."""
    return entropy_bits(hard_histogram(symbols, num_centers))


def bits_per_pixel(bits_per_symbol, channels):
    """bpp = H * C / 64: (h/8)(w/8)C symbols of H bits each for h*w pixels."""
    return bits_per_symbol * channels / float(SUBSAMPLING * SUBSAMPLING)


def bits_per_symbol_for_bpp(bpp, channels):
    """Inverse of `bits_per_pixel`: the entropy target that gives `bpp` with C channels."""
    return bpp * SUBSAMPLING * SUBSAMPLING / channels
