"""Real bitstreams: range coding of the quantizer's symbols and the `.tfc` file format.

File layout (version 1), all integers big-endian, 32-byte header then the payload:

    offset size field
     0     4    magic b"TFC1"
     4     1    format version (1)
     5     1    L, number of quantization centers
     6     2    C, latent channels
     8     4    image height in pixels
    12     4    image width in pixels
    16     8    codec model id: first 8 bytes of SHA-256 over the codec's weights, the
                integer entropy tables included (`model_id`)
    24     4    payload length in bytes (a multiple of 4)
    28     4    CRC-32 of bytes 0..27 followed by the payload
    32     ...  payload: range-coder words (uint32, little-endian)

The payload holds ceil(height/8) * ceil(width/8) * C symbols, channel after channel, each in
raster order, coded with `constriction`'s range coder under the channel's table of
`entropy_model.EntropyModel`. Every field is checked before the payload is decoded: a short
file, a wrong magic, a newer version, a CRC mismatch (any flipped bit of header or payload),
another codec's file, or sizes that disagree with the payload raise `FormatError` naming what
is wrong. Symbols and z decode bit-exactly on every machine (integer tables, integer coder);
the decoder network's pixels are float32 convolutions and may differ by rounding across
hardware.
"""

import hashlib
import struct
import zlib

import constriction
import numpy as np

from tfcomp.codec import rate

MAGIC = b"TFC1"
VERSION = 1
HEADER = struct.Struct(">4sBBHII8sII")
HEADER_SIZE = HEADER.size  # 32 bytes
MAX_SIDE = 1 << 16


class FormatError(ValueError):
    """A `.tfc` file that cannot be decoded; the message says which field and why."""


def model_id(codec):
    """8 bytes identifying a codec: SHA-256 over its weights (entropy tables included)."""
    digest = hashlib.sha256()
    for weight in codec.get_weights():
        array = np.ascontiguousarray(weight)
        digest.update(str(array.dtype).encode() + str(array.shape).encode())
        digest.update(array.tobytes())
    return digest.digest()[:8]


def latent_shape(height, width, channels):
    step = rate.SUBSAMPLING
    return (-(-height // step), -(-width // step), channels)


def _channel_model(probabilities):
    return constriction.stream.model.Categorical(probabilities, perfect=False)


def encode_symbols(symbols, probabilities):
    """Symbols [h', w', C] -> payload bytes, one table per channel (float64 [C, L])."""
    encoder = constriction.stream.queue.RangeEncoder()
    for c in range(symbols.shape[-1]):
        encoder.encode(
            np.ascontiguousarray(symbols[..., c].reshape(-1), np.int32),
            _channel_model(probabilities[c]),
        )
    return encoder.get_compressed().astype("<u4").tobytes()


def decode_symbols(payload, shape, probabilities):
    """Payload bytes -> symbols int32 [h', w', C]."""
    words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
    decoder = constriction.stream.queue.RangeDecoder(words)
    count = shape[0] * shape[1]
    channels = [decoder.decode(_channel_model(probabilities[c]), count) for c in range(shape[2])]
    if not decoder.maybe_exhausted():
        raise FormatError(f"payload holds more data than {count * shape[2]} symbols")
    return np.stack(channels, axis=-1).reshape(shape).astype(np.int32)


def pack(symbols, height, width, num_centers, probabilities, codec_id):
    """A whole file: header + payload for symbols [h', w', C] of an image of height x width."""
    payload = encode_symbols(symbols, probabilities)
    head = HEADER.pack(
        MAGIC, VERSION, num_centers, symbols.shape[-1], height, width, codec_id, len(payload), 0
    )[:28]
    crc = zlib.crc32(payload, zlib.crc32(head))
    return head + struct.pack(">I", crc) + payload


def read_header(data):
    """dict of the header fields; raises FormatError for anything but a well-formed file."""
    data = bytes(data)
    if len(data) < HEADER_SIZE:
        raise FormatError(
            f"compressed file truncated at byte {len(data)} of header "
            f"(expected {HEADER_SIZE} bytes)"
        )
    magic, version, num_centers, channels, height, width, codec_id, length, crc = HEADER.unpack(
        data[:HEADER_SIZE]
    )
    if magic != MAGIC:
        raise FormatError(f"not a tfcomp file: magic {magic!r}, expected {MAGIC!r}")
    if version > VERSION:
        raise FormatError(
            f"format version {version} is newer than this tfcomp reads (up to {VERSION}); "
            "upgrade tfcomp"
        )
    if version < 1:
        raise FormatError(f"invalid format version {version}")
    if len(data) != HEADER_SIZE + length:
        raise FormatError(
            f"payload is {len(data) - HEADER_SIZE} bytes, header says {length}: "
            "the file is truncated or has trailing bytes"
        )
    actual = zlib.crc32(data[HEADER_SIZE:], zlib.crc32(data[:28]))
    if actual != crc:
        raise FormatError(f"checksum mismatch (CRC-32 {actual:08x}, header says {crc:08x})")
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE) or channels < 1:
        raise FormatError(f"invalid image size {height}x{width} or channels {channels}")
    if length % 4:
        raise FormatError(f"payload length {length} is not a multiple of 4")
    return {
        "version": version,
        "num_centers": num_centers,
        "channels": channels,
        "height": height,
        "width": width,
        "model_id": codec_id.hex(),
        "payload_bytes": length,
        "file_bytes": len(data),
        "bpp": 8.0 * len(data) / (height * width),
    }


def unpack(data, num_centers, channels, probabilities, codec_id):
    """(header dict, symbols [h', w', C]) after checking the file belongs to this codec."""
    header = read_header(data)
    if header["model_id"] != codec_id.hex():
        raise FormatError(
            f"file was made by codec model {header['model_id']}, not by this one "
            f"({codec_id.hex()}); decode it with the model that wrote it"
        )
    if (header["num_centers"], header["channels"]) != (num_centers, channels):
        raise FormatError(
            f"file has L={header['num_centers']}, C={header['channels']}; "
            f"the codec has L={num_centers}, C={channels}"
        )
    shape = latent_shape(header["height"], header["width"], channels)
    try:
        symbols = decode_symbols(bytes(data)[HEADER_SIZE:], shape, probabilities)
    except FormatError:
        raise
    except Exception as error:  # constriction raises on exhausted or inconsistent streams
        raise FormatError(f"payload does not decode: {error}") from None
    return header, symbols
