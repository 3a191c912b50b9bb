#!/usr/bin/env python3
"""Render each Grafana dashboard of the monitoring role to PNG from a live Prometheus.

No Grafana needed: every panel's PromQL is run as a range query and drawn with matplotlib, one
PNG per dashboard (panels laid out in a grid), so a reviewer sees what the dashboards show.
The PNGs are build output: never commit them.

    python scripts/dashboards_png.py --prometheus http://127.0.0.1:9090 --out build/dashboards
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from datetime import datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import requests

DASHBOARDS = Path(__file__).resolve().parents[1] / (
    "collections/ansible_collections/moodle/platform/roles/monitoring/files/dashboards")


def legend(fmt: str, labels: dict[str, str]) -> str:
    out = fmt or ",".join(f"{k}={v}" for k, v in labels.items() if k != "__name__")
    for key, value in labels.items():
        out = out.replace("{{" + key + "}}", value)
    return out or "value"


def range_query(prometheus: str, expr: str, start: float, end: float, step: int) -> list[dict]:
    res = requests.get(f"{prometheus}/api/v1/query_range",
                       params={"query": expr, "start": start, "end": end, "step": step}, timeout=60)
    body = res.json()
    if body.get("status") != "success":
        raise RuntimeError(f"{expr}: {body.get('error')}")
    return body["data"]["result"]


def render(path: Path, prometheus: str, out_dir: Path, minutes: int) -> Path:
    doc = json.loads(path.read_text())
    panels = doc["panels"]
    cols = 3
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 6, rows * 3.2), squeeze=False)
    end = time.time()
    start = end - minutes * 60
    step = max(15, minutes * 60 // 240)
    for ax, panel in zip(axes.flat, panels, strict=False):
        ax.set_title(panel["title"], fontsize=10)
        drawn = 0
        for target in panel["targets"]:
            for series in range_query(prometheus, target["expr"], start, end, step):
                points = [(datetime.fromtimestamp(float(t)), float(v)) for t, v in series["values"]]
                if points:
                    xs, ys = zip(*points, strict=True)
                    ax.plot(xs, ys, label=legend(target.get("legendFormat", ""), series["metric"]))
                    drawn += 1
        if drawn:
            ax.legend(fontsize=7, loc="upper left")
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="red")
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
        if unit and unit != "short":
            ax.set_ylabel(unit, fontsize=8)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(f"{doc['title']} (last {minutes} min, from {prometheus})")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / (path.stem + ".png")
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090")
    parser.add_argument("--out", default="build/dashboards", type=Path)
    parser.add_argument("--minutes", default=30, type=int)
    args = parser.parse_args()
    for path in sorted(DASHBOARDS.glob("*.json")):
        print(f"wrote {render(path, args.prometheus, args.out, args.minutes)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
