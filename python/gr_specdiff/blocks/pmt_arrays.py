# SPDX-License-Identifier: GPL-3.0-or-later
"""Fast numpy <-> PMT uniform vectors for 256 x 256 images in messages.

``pmt.init_f32vector`` / ``pmt.f32vector_elements`` convert element by element through Python
lists (~20-40 ms for 65536 values); going through PMT's own serialisation format (a fixed
8-byte header, then big-endian elements) is a memcpy. Falls back to the slow path for any
array the format does not cover.
"""

from __future__ import annotations

import struct

import numpy as np
import pmt

_UVECTOR = 0x0A
# PMT uniform-vector subtypes (pmt_serial_tags) and their element dtypes.
_SUBTYPES = {np.dtype(np.uint8): 0x00, np.dtype(np.int8): 0x01, np.dtype(np.uint16): 0x02,
             np.dtype(np.int16): 0x03, np.dtype(np.uint32): 0x04, np.dtype(np.int32): 0x05,
             np.dtype(np.float32): 0x08, np.dtype(np.float64): 0x09}
_DTYPES = {v: k for k, v in _SUBTYPES.items()}


def to_uvector(arr):
    """1-D numpy array -> PMT uniform vector (u8, s8, u16, s16, u32, s32, f32, f64)."""
    a = np.ascontiguousarray(np.asarray(arr).ravel())
    sub = _SUBTYPES.get(a.dtype)
    if sub is None:
        return pmt.to_pmt(a)
    blob = (bytes([_UVECTOR, sub]) + struct.pack(">I", a.size) + b"\x01\x00"
            + a.astype(a.dtype.newbyteorder(">"), copy=False).tobytes())
    return pmt.deserialize_str(blob)


def from_uvector(v) -> np.ndarray:
    """PMT uniform vector -> numpy array (native byte order)."""
    if not pmt.is_uniform_vector(v):
        raise ValueError("not a PMT uniform vector")
    blob = pmt.serialize_str(v)
    if len(blob) >= 8 and blob[0] == _UVECTOR and blob[1] in _DTYPES:
        dt = _DTYPES[blob[1]]
        n = struct.unpack(">I", blob[2:6])[0]
        off = len(blob) - n * dt.itemsize
        if off >= 6:
            return np.frombuffer(blob, dtype=dt.newbyteorder(">"), offset=off).astype(dt)
    return np.asarray(pmt.to_python(v))


def dict_to_python(msg) -> dict:
    """A PMT dict -> Python dict; uniform vectors become numpy arrays via :func:`from_uvector`
    (``pmt.to_python`` would take ~20 ms per 65536-value image), nested dicts likewise."""
    if not pmt.is_dict(msg):
        raise ValueError("not a PMT dict")
    out = {}
    items = pmt.dict_items(msg)
    for i in range(pmt.length(items)):
        kv = pmt.nth(i, items)
        key = pmt.car(kv)
        val = pmt.cdr(kv)
        k = pmt.symbol_to_string(key) if pmt.is_symbol(key) else str(pmt.to_python(key))
        if pmt.is_uniform_vector(val):
            out[k] = from_uvector(val)
        elif pmt.is_dict(val):
            out[k] = dict_to_python(val)
        else:
            out[k] = pmt.to_python(val)
    return out
