"""The append-only log of one run: a data file plus a fixed-width offset index.

File format
-----------
``<name>.log`` (data), one record per line, UTF-8::

    <ts_ns> <o|e|a> <escaped text>\\n

``ts_ns`` is the decimal timestamp in nanoseconds since the epoch (UTC), ``o`` is
stdout, ``e`` stderr and ``a`` a line the run posted through the local Picsellia
API (not the container's output: counted apart, so resuming a stream by lines per
stream never skips container lines for them). The text is stored as is except
for three escapes, so a record never spans two physical lines and any Python
string round-trips exactly:

- ``\\`` -> ``\\\\``
- newline -> ``\\n``
- a lone surrogate (U+D800..U+DFFF, not encodable in UTF-8) -> ``\\uXXXX``

``\\r``, NUL, escape sequences and every other character are stored raw.

``<name>.log.idx`` (index): one little-endian uint64 per complete record, the byte
offset in the data file just *after* that record's ``\\n``. Record ``i`` spans
``idx[i-1] .. idx[i]`` (``0`` for the first). The writer writes the data and then
the index, so whatever the index lists is complete in the data file; readers in
other processes only ever trust the index. Memory is O(index): 8 bytes a line.

Crash safety: opening a :class:`~.writer.LogWriter` on an existing log drops a torn last
record, trims index entries that point past the data or are not on a record
boundary, and rebuilds the missing tail of the index from the data file.

Modules: :mod:`.record` (the record and index formats), :mod:`.writer`
(:class:`~.writer.LogWriter`), :mod:`.reader` (:class:`~.reader.LogReader`) and
:mod:`.search` (search, export, the error tail). This package imports nothing
from ``engine`` or ``tui``. Functions that produce text
for people (:func:`.search.export`, :func:`error_tail`, :func:`.search.search`)
take a ``clean`` callable; pass ``picsellia_tui.engine.logtext.strip_ansi``. The
default, :func:`.record.basic_clean`, is a conservative fallback that removes every escape
sequence and control character.
"""
