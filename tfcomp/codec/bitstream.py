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
`entropy_model.EntropyModel`. A file is decoded only if it passes, in this order:

1. header: at least 32 bytes, the magic, a version this tfcomp reads (1), a payload length
   equal to the bytes that follow the header, the CRC-32 (any flipped bit of header or
   payload), 1 <= height, width <= `MAX_SIDE`, height * width <= `MAX_IMAGE_PIXELS` (a
   decompression-bomb cap, as Pillow's), C >= 1, a payload length that is a multiple of 4;
2. the codec: its model id, L and C (a file of another codec model is refused);
3. before any symbol is decoded, the payload size against the image size: no symbols of that
   shape take fewer than `min_payload_bits` (count times the sum over channels of the
   information content of the channel's most probable symbol), so a payload with
   8 * bytes + `CODER_SLACK_BITS` below that cannot be ours -- a few bytes cannot claim a
   huge image;
4. after decoding, the payload must be exactly the canonical one: the symbols re-encoded
   (`encode_symbols`) give back the very same bytes, so every payload that tfcomp's encoder
   cannot have written (garbage, an empty or all-zero payload, a word more or less) is refused
   rather than decoded to a garbage image. Left through are only payloads that are some
   symbols' canonical encoding, i.e. valid files: zero words are that for a run of symbol 0
   where it is the most probable, and about 1 in 100 single bits flipped behind a recomputed
   CRC gives one (only the CRC guards against accidental corruption).

Any failure raises `FormatError` naming what is wrong. `pack` (and so `compress`) refuses the
sizes that step 1 refuses, so every file tfcomp writes decodes. Symbols and z decode bit-exactly
on every machine (integer tables, integer coder); the decoder network's pixels are float32
convolutions and may differ by rounding across hardware.
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
# Decompression-bomb cap on height * width: 178,956,970 pixels (0.5 GiB of RGB), the size above
# which Pillow refuses to open an image (2 * `PIL.Image.MAX_IMAGE_PIXELS`). Larger images are
# neither written nor decoded.
MAX_IMAGE_PIXELS = 2 * (1024 * 1024 * 1024 // 4 // 3)
# Bits by which a real payload may fall short of `min_payload_bits`: margin only. Measured over
# 3,000 random tables (L = 2..32, peaked ones included) coding 200k copies of their most probable
# symbol, the cheapest content there is, constriction's output was never below the bound (at
# least 1 bit above it).
CODER_SLACK_BITS = 64


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


def check_image_size(height, width):
    """Raises FormatError unless 1 <= height, width <= MAX_SIDE and the pixels fit the cap."""
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
        raise FormatError(
            f"invalid image size {height}x{width} (each side must be 1 to {MAX_SIDE} pixels)"
        )
    if height * width > MAX_IMAGE_PIXELS:
        raise FormatError(
            f"image size {height}x{width} ({height * width} pixels) exceeds the limit of "
            f"{MAX_IMAGE_PIXELS} pixels (bitstream.MAX_IMAGE_PIXELS), a decompression-bomb guard"
        )


def min_payload_bits(shape, probabilities):
    """Fewest bits any symbols of latent shape [h', w', C] can take under the tables [C, L].

    Each position of channel c costs at least -log2 of the channel's largest probability, so
    the bound is h' * w' * sum_c min_s(-log2 p_c(s)); the range coder's output is never shorter
    (up to `CODER_SLACK_BITS`).
    """
    p_max = np.max(np.asarray(probabilities, np.float64)[: shape[2]], axis=1)
    return shape[0] * shape[1] * float(np.sum(-np.log2(p_max)))


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
    check_image_size(height, width)
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
    check_image_size(height, width)
    if channels < 1:
        raise FormatError(f"invalid number of latent channels {channels}")
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
        "bpp_real": 8.0 * len(data) / (height * width),
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
    payload = bytes(data)[HEADER_SIZE:]
    needed = min_payload_bits(shape, probabilities)
    if 8 * len(payload) + CODER_SLACK_BITS < needed:
        raise FormatError(
            f"payload of {len(payload)} bytes is too short for a {header['height']}x"
            f"{header['width']} image: its {shape[0]}x{shape[1]}x{shape[2]} symbols take at least "
            f"{int(needed) // 8} bytes under this codec's tables"
        )
    try:
        symbols = decode_symbols(payload, shape, probabilities)
    except FormatError:
        raise
    except Exception as error:  # constriction raises on exhausted or inconsistent streams
        raise FormatError(f"payload does not decode: {error}") from None
    if encode_symbols(symbols, probabilities) != payload:
        raise FormatError(
            "payload is not the encoding tfcomp writes for the symbols it decodes to: "
            "the file is corrupted or was not written by tfcomp"
        )
    return header, symbols
