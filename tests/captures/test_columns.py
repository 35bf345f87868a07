"""ByteColumns and Window read the same integers as struct does, at any offset and alignment."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from protoscope.captures.columns import ByteColumns, Window

DTYPES = {">u2": ">H", "<u4": "<I", ">u4": ">I", ">u8": ">Q", "u1": "B"}


@st.composite
def buffers_and_reads(draw: st.DrawFn) -> tuple[bytes, list[int], list[int], str]:
    buf = draw(st.binary(min_size=8, max_size=300))
    dtype = draw(st.sampled_from(sorted(DTYPES)))
    width = struct.calcsize(DTYPES[dtype])
    offsets = draw(st.lists(st.integers(0, len(buf) - 1), min_size=1, max_size=40))
    rels = [draw(st.integers(0, max(0, len(buf) - o - width))) for o in offsets]
    keep = [i for i, (o, r) in enumerate(zip(offsets, rels, strict=True)) if o + r + width <= len(buf)]
    return buf, [offsets[i] for i in keep], [rels[i] for i in keep], dtype


@given(buffers_and_reads(), st.sampled_from([1, 4, 16, 48]))
def test_window_and_columns_equal_struct(case: tuple[bytes, list[int], list[int], str], width: int) -> None:
    buf, offsets, rels, dtype = case
    fmt = DTYPES[dtype]
    expected = [struct.unpack_from(fmt, buf, o + r)[0] for o, r in zip(offsets, rels, strict=True)]
    cols = ByteColumns(buf)
    off = np.array(offsets, dtype=np.int64)
    rel = np.array(rels, dtype=np.int64)
    assert cols.read(off + rel, dtype).tolist() == expected
    win = Window(cols, off, width)
    assert win.read(slice(None), rel, dtype).tolist() == expected
    if len(off):
        picked = np.arange(0, len(off), 2)
        assert win.read(picked, rel, dtype).tolist() == expected[::2]


def test_window_over_a_mapped_file_releases_pages_and_reads_the_same(tmp_path: object) -> None:
    """A gather over an mmap lets go of the pages it has read past (chunk by chunk); what it
    read equals a gather over the same bytes held in memory, and the file still reads after."""
    import mmap
    from pathlib import Path

    from protoscope.captures import columns

    path = Path(str(tmp_path)) / "blob"
    rng = np.random.default_rng(7)
    blob = rng.integers(0, 256, 3 * columns.GATHER_CHUNK * 16, dtype=np.uint8).tobytes()
    path.write_bytes(blob)
    offsets = np.arange(0, len(blob) - 48, 16, dtype=np.int64)
    with open(path, "rb") as fh:
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        released: list[tuple[int, int]] = []

        class Watched(ByteColumns):
            def release(self, start: int, end: int) -> int:
                released.append((start, end))
                return super().release(start, end)

        mapped = Watched(mm)
        win = Window(mapped, offsets, 48)
        assert len(released) >= 3 and released[-1][1] == len(blob)  # given back chunk by chunk
        plain = Window(ByteColumns(blob), offsets, 48, release=False)
        every = slice(None)
        for rel in (0, 7, 44):
            assert (win.read(every, rel, "<u4") == plain.read(every, rel, "<u4")).all()
        assert mapped.read(offsets[:5], ">u2").tolist() == [
            int.from_bytes(blob[o : o + 2], "big") for o in offsets[:5]
        ]
        del win, mapped
        mm.close()
