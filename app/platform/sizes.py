"""Every request-size threshold of the service, in one place.

Two kinds: limits a client meets (an answer of 413 past them), and the sizes at which the service
changes how it does the same work (on the event loop or in a worker thread; record by record or as
arrays), which a client notices only as speed. The measurements behind the second kind are in
bench/README.md.
"""

from __future__ import annotations

# Limits a client meets.
MAX_RECORDS = 10_000  # records in one score request (CIVICRISK_MAX_RECORDS may lower it)
# Default of CIVICRISK_MAX_BODY_BYTES: 10,000 records of ~60 features is ~20 MB of JSON; anything much
# larger is refused unread.
MAX_BODY_BYTES = 32 * 1024 * 1024
# An outcomes post (POST /v1/inspections/{city}/outcomes): at most 1,000 outcomes (OutcomesIn); a
# Chicago outcome with its violations text is ~1 KB, so 8 MiB leaves room for long texts, and nothing
# larger is read.
OUTCOMES_MAX_BODY_BYTES = 8 * 1024 * 1024
# A Lead Safe request: the contract allows 20,000 characters; a little headroom for long visit and
# lab arrays.
LEAD_SAFE_MAX_BODY_BYTES = 64 * 1024
# The Lead Safe drop-in (`POST /upload/insert/`) holds to the contract's own limit, in characters:
# refused by Content-Length or while reading past 4 bytes a character (UTF-8's most), then counted.
LEAD_SAFE_MAX_CHARACTERS = 20_000
# A token request (`/oauth/token`): form parameters, a SMART client assertion (a JWT of ~1-2 KB).
OAUTH_MAX_BODY_BYTES = 16 * 1024

# Where the same work is done, by size. Up to FEW_RECORDS records take the per-record path (plain
# Python: numpy's per-call overhead costs more than the arithmetic of a few records).
FEW_RECORDS = 8
# Score bodies up to this size (about FEW_RECORDS Chicago records) are decoded and scored on the event
# loop: one record takes ~50 µs, less than a hop to a worker thread and back. Larger ones go to a thread
# so the loop stays responsive.
INLINE_SCORE_BYTES = 16 * 1024
# JSON bodies up to this size are parsed on the event loop (orjson: ~1 ms per 30 KB here); larger ones
# in a worker thread, so a 20 MB batch does not hold up every other request.
INLINE_PARSE_BYTES = 64 * 1024
