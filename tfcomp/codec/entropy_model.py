"""The probability model of the entropy coder: one integer frequency table per latent channel.

After training, the symbols of a dataset are counted per channel; each channel's counts become
integer frequencies summing to 2^16 with every symbol at least 1, so a symbol never seen while
fitting stays encodable. The tables are an int32 weight of the codec ([C, L]) and travel inside
`codec.keras`: encoder and decoder use the very same integers on every machine. The coder sees
probabilities freq / 2^16, which are exact in float64.

This is the *real* rate's model; the soft-histogram entropy of `rate.py` is only the training
estimate. `ideal_bits` gives the information content of symbols under these tables: the range
coder's output is never below it and within a few 32-bit words of it.
"""

import keras
import numpy as np

PRECISION_BITS = 16
TOTAL = 1 << PRECISION_BITS


@keras.saving.register_keras_serializable(package="tfcomp")
class EntropyModel(keras.layers.Layer):
    """Holds `frequencies`, int32 [channels, num_centers], each row summing to 2^16."""

    def __init__(self, channels, num_centers, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.num_centers = int(num_centers)
        uniform = counts_to_frequencies(np.ones((self.channels, self.num_centers)))
        self.frequencies = self.add_weight(
            name="frequencies",
            shape=(self.channels, self.num_centers),
            dtype="int32",
            trainable=False,
            initializer=keras.initializers.Constant(uniform),
        )
        self.built = True  # the shape is known from the constructor's arguments

    def call(self, inputs):
        return inputs

    def probabilities(self):
        """float64 [C, L]: freq / 2^16, exact."""
        return np.asarray(self.frequencies.numpy(), np.float64) / TOTAL

    def fit(self, symbol_counts):
        """Sets the tables from per-channel symbol counts [C, L]."""
        self.frequencies.assign(counts_to_frequencies(symbol_counts))

    def get_config(self):
        return {
            **super().get_config(),
            "channels": self.channels,
            "num_centers": self.num_centers,
        }


def counts_to_frequencies(counts, total=TOTAL):
    """Integer frequencies per row, summing to `total`, each >= 1, close to counts/sum.

    Every symbol first gets 1; the remaining total - L is shared in proportion to the counts
    by the largest-remainder method, so the result is deterministic and exact.
    """
    counts = np.asarray(counts, np.float64)
    rows, num = counts.shape
    spare = total - num
    out = np.ones((rows, num), np.int64)
    for r in range(rows):
        weights = counts[r] if counts[r].sum() > 0 else np.ones(num)
        share = weights / weights.sum() * spare
        floor = np.floor(share).astype(np.int64)
        missing = spare - floor.sum()
        # Largest remainders first; ties go to the lower symbol index (stable sort).
        order = np.argsort(-(share - floor), kind="stable")
        floor[order[:missing]] += 1
        out[r] += floor
    return out.astype(np.int32)


def count_symbols(symbols, num_centers):
    """Per-channel counts [C, L] of int symbols shaped [..., C]."""
    symbols = np.asarray(symbols)
    channels = symbols.shape[-1]
    flat = symbols.reshape(-1, channels)
    return np.stack([np.bincount(flat[:, c], minlength=num_centers) for c in range(channels)])


def ideal_bits(symbols, frequencies):
    """Information content in bits of symbols [..., C] under the integer tables [C, L]."""
    symbols = np.asarray(symbols)
    channels = symbols.shape[-1]
    p = np.asarray(frequencies, np.float64) / TOTAL
    flat = symbols.reshape(-1, channels)
    return float(-np.sum(np.log2(p[np.arange(channels), flat])))
