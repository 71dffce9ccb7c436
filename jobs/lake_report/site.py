"""The report folder: ``index.html`` (CSS and JS inline) and paged data files under ``data/``.

No pyspark here: the job hands rows in, and ``bench/report_load.py`` writes a synthetic report
through the same functions. Data files are ``<script>`` files (``CLIPLAKE.page("clips", 3, [...])``)
rather than JSON fetched by the page, because a page opened from disk (file://) may load scripts
but not fetch files.
"""

import json
import math
import os
import re
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape
from pathlib import Path

from jobs.lake_report import charts

ASSETS = Path(__file__).resolve().parent / "assets"
DATA = "data"
_PAGE_FILE = re.compile(r"^(clips|videos)-\d{4,}\.js$|^summary\.js$")


def _short(x):
    """A float with 4 significant digits (data files stay small), other values as they are."""
    return float(f"{x:.4g}") if isinstance(x, float) and math.isfinite(x) else (None if isinstance(x, float) else x)


def _js(call: str, *args) -> str:
    """A JavaScript call with JSON arguments; ``</`` escaped so no value can end a script element."""
    body = ", ".join(json.dumps(a, ensure_ascii=False, separators=(",", ":"), default=str) for a in args)
    body = body.replace("</", "<\\/")
    return f"CLIPLAKE.{call}({body});\n"


@dataclass(frozen=True)
class MediaLinks:
    """Links from the report folder to a local lake's media files, relative so the two can move together.

    Example::

        links = MediaLinks(lake_root="/data/lake", out="/data/report")
        links.preview("c1", 0, 256)  # "../lake/media/previews/c1/0_256.webp" (when the file is there)

    A lake on S3 has no links (a page opened from disk cannot show private objects).
    """

    lake_root: str
    out: str

    @property
    def local(self) -> bool:
        return "://" not in self.lake_root

    def _link(self, path: str) -> str | None:
        if not self.local or not os.path.isfile(path):
            return None
        return urllib.parse.quote(os.path.relpath(path, self.out).replace(os.sep, "/"))

    def preview(self, clip_id: str, start: int, end: int) -> str | None:
        return self._link(os.path.join(self.lake_root, "media", "previews", clip_id, f"{start}_{end}.webp"))

    def clip(self, location: str | None) -> str | None:
        return self._link(location) if location else None


def clip_record(row: dict, links: MediaLinks, eps: float | None) -> dict:
    """The gallery's JSON for one clip, from a row of :meth:`LakeQueries.gallery` (as a dict)."""
    first = row.get("first_window")
    sim = row.get("cosine_sim_score")
    record = {
        "id": row["clip_id"], "video": row["source_path"], "t": [_short(row["start_s"]), _short(row["end_s"])],
        "frames": row["num_frames"], "size": [row["width"], row["height"]], "fps": _short(row["fps"]),
        "motion": _short(row.get("motion_global_mean")), "aesthetic": _short(row.get("aesthetic_score")),
        "text": _short(row.get("artificial_text_score")), "filtered": row.get("filtered_by"), "error": row.get("error"),
        "preview": links.preview(row["clip_id"], first["start_frame"], first["end_frame"]) if first else None,
        "mp4": links.clip(row.get("location")),
        "captions": dict(sorted((row.get("captions") or {}).items())),
    }
    if sim is not None:
        record.update(cluster=row["cluster_id"], sim=_short(sim),
                      dup_of=row["max_id"] if eps is not None and sim >= 1 - eps else None)
    return record


def video_record(row: dict) -> dict:
    """A timeline's JSON: the video and its clips' spans in seconds."""
    spans = [[_short(s["start_s"]), _short(s["end_s"]), s["filtered_by"], bool(s["failed"])] for s in row.get("spans") or []]
    return {"path": row["source_path"], "duration": _short(row.get("duration_s")), "status": row.get("status"),
            "error": row.get("error"), "clips": spans}


class PagedWriter:
    """Writes records to ``data/{kind}-0000.js``, ``-0001.js``... ``page_size`` per file, as they come.

    Only one page is held in memory; :meth:`close` writes the last one and returns the page count.
    """

    def __init__(self, out: str, kind: str, page_size: int):
        if page_size < 1:
            raise ValueError(f"--page-size must be >= 1, got {page_size}")
        self.folder, self.kind, self.page_size = os.path.join(out, DATA), kind, page_size
        self.buffer: list[dict] = []
        self.pages = self.count = 0

    def add(self, record: dict) -> None:
        self.buffer.append(record)
        self.count += 1
        if len(self.buffer) == self.page_size:
            self._flush()

    def _flush(self) -> None:
        path = os.path.join(self.folder, f"{self.kind}-{self.pages:04d}.js")
        with open(path, "w", encoding="utf-8") as f:
            f.write(_js("page", self.kind, self.pages, self.buffer))
        self.pages += 1
        self.buffer = []

    def close(self) -> int:
        if self.buffer:
            self._flush()
        return self.pages


def prepare(out: str) -> None:
    """Create ``out/data``, removing the data files of an earlier report (and nothing else)."""
    folder = os.path.join(out, DATA)
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        if _PAGE_FILE.match(name):
            os.remove(os.path.join(folder, name))


def write_summary(out: str, summary: dict) -> None:
    with open(os.path.join(out, DATA, "summary.js"), "w", encoding="utf-8") as f:
        f.write(_js("summary", summary))


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3g}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def html_table(rows: list[dict], columns: list[str], css: str = "") -> str:
    """An escaped HTML table of ``rows``' ``columns``."""
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{escape(_cell(r.get(c)))}</td>" for c in columns) + "</tr>" for r in rows)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _runs_section(runs: list[dict]) -> str:
    if not runs:
        return "<p>No runs table.</p>"
    columns = [c for c in runs[0] if c != "arguments"]
    for run in runs:  # the options, readable on hover
        run["options"] = " ".join(f"{k}={v}" for k, v in sorted(json.loads(run.get("arguments") or "{}").items())
                                  if v not in (None, False, [], "") and k not in ("command", "verbose"))[:400]
    return html_table(runs, columns + ["options"], "runs")


def _errors_section(errors: dict) -> str:
    parts = []
    for kind, columns in (("videos", ["source_path", "error"]), ("clips", ["source_path", "start_s", "end_s", "clip_id", "error"])):
        found = errors.get(kind)
        if found is None:
            continue
        shown = f" (first {len(found['rows'])})" if found["total"] > len(found["rows"]) else ""
        parts.append(f'<h3>{kind} with errors: <span class="n" id="{kind}-errors">{found["total"]}</span>{shown}</h3>')
        if found["rows"]:
            parts.append(html_table(found["rows"], columns, "errors"))
    return "".join(parts)


def write_index(out: str, *, lake: str, counts: dict, plots: list[dict], runs: list[dict], errors: dict) -> str:
    """Write ``out/index.html`` (last, so a report being written has no page yet); its path."""
    template = (ASSETS / "index.html").read_text()
    fields = {
        "title": escape(f"cliplake report: {lake}"),
        "lake": escape(lake),
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "counts": " · ".join(f"{escape(k.replace('_', ' '))}: <b>{escape(_cell(v))}</b>" for k, v in counts.items()),
        "css": (ASSETS / "report.css").read_text(),
        "js": (ASSETS / "report.js").read_text(),
        "plots": "".join(charts.plot(p) for p in plots),
        "runs": _runs_section(runs),
        "errors": _errors_section(errors),
    }
    html = re.sub(r"\{\{(\w+)\}\}", lambda m: fields[m[1]], template)
    path = os.path.join(out, "index.html")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(html)
    os.replace(path + ".tmp", path)
    return path
