"""What a score's `missing` / `unknown_categories` / `insufficient_data` cost (issue #21 item 4).

    .venv/bin/python bench/completeness_bench.py [--rounds 7]

The score route's work (`app.scoring.routes._answer`: decode, score, reasons, the fields, the JSON
answer) on serve_bench's 10,000 real feature rows, as JSON records and as Parquet, and on one
record, with the fields and with them switched off, taking turns; the best of the rounds each.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import serve_bench  # noqa: E402

from app.platform.registry import load_model  # noqa: E402
from app.scoring.completeness import Completeness  # noqa: E402
from app.scoring.formats import FORMATS  # noqa: E402
from app.scoring.routes import _answer  # noqa: E402


def _timed(step: Callable[[], object], repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        step()
    return (time.perf_counter() - started) / repeat


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    bundle = next((serve_bench.ROOT / "models" / serve_bench.MODEL).glob("*/manifest.json")).parent
    model = load_model(bundle)
    records = serve_bench.sample_records(10_000)
    buffer = io.BytesIO()
    pd.DataFrame(records).to_parquet(buffer, compression=None, index=False)
    bodies = {
        "10,000 records, JSON": ("application/json", orjson.dumps({"records": records}), 1),
        "10,000 records, Parquet": ("application/vnd.apache.parquet", buffer.getvalue(), 1),
        "1 record, JSON": ("application/json", orjson.dumps({"records": records[:1]}), 2000),
    }
    fields = (Completeness.annotate_batch, Completeness.annotate_rows)
    best: dict[tuple[str, bool], float] = {}
    sizes: dict[tuple[str, bool], int] = {}
    for _ in range(args.rounds):
        for on in (True, False):
            if not on:
                Completeness.annotate_batch = lambda self, answers, batch: answers  # type: ignore[method-assign]
                Completeness.annotate_rows = lambda self, answers, rows: answers  # type: ignore[method-assign]
            for name, (media, body, repeat) in bodies.items():

                def step(media: str = media, body: bytes = body) -> object:
                    return _answer(FORMATS[media], model, body, 10_000)

                best[(name, on)] = min(best.get((name, on), 1e9), _timed(step, repeat))
                sizes[(name, on)] = len(_answer(FORMATS[media], model, body, 10_000)[0])
            Completeness.annotate_batch, Completeness.annotate_rows = fields  # type: ignore[method-assign]
    print(f"bundle {bundle.name}; best of {args.rounds} rounds")
    print("| body | with the fields | without | answer bytes with / without |")
    print("|---|---|---|---|")
    for name in bodies:
        on, off = best[(name, True)], best[(name, False)]
        print(
            f"| {name} | {on * 1e3:.3f} ms | {off * 1e3:.3f} ms | "
            f"{sizes[(name, True)]:,} / {sizes[(name, False)]:,} |"
        )


if __name__ == "__main__":
    main()
