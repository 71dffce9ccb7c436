"""The report's page writer without Spark: paging, escaping, media links, SVG plots."""

import json
import os
import re

from jobs.lake_report import charts, site


def read_page(path):
    """The (kind, index, rows) a data file hands to ``CLIPLAKE.page``."""
    text = open(path, encoding="utf-8").read()
    match = re.fullmatch(r'CLIPLAKE\.page\("(\w+)", ?(\d+), ?(.*)\);\n', text, re.DOTALL)
    return match[1], int(match[2]), json.loads(match[3].replace("<\\/", "</"))


def test_records_are_written_page_by_page_and_stale_pages_removed(tmp_path):
    site.prepare(str(tmp_path))
    (tmp_path / "data" / "clips-0009.js").write_text("stale")
    (tmp_path / "data" / "notes.txt").write_text("not ours")
    site.prepare(str(tmp_path))
    writer = site.PagedWriter(str(tmp_path), "clips", page_size=3)
    for i in range(7):
        writer.add({"id": i})
    assert writer.close() == 3 and writer.count == 7
    assert sorted(os.listdir(tmp_path / "data")) == ["clips-0000.js", "clips-0001.js", "clips-0002.js", "notes.txt"]
    pages = [read_page(tmp_path / "data" / f"clips-000{n}.js") for n in range(3)]
    assert [(k, i, [r["id"] for r in rows]) for k, i, rows in pages] == \
        [("clips", 0, [0, 1, 2]), ("clips", 1, [3, 4, 5]), ("clips", 2, [6])]


def test_no_value_can_end_the_script(tmp_path):
    site.prepare(str(tmp_path))
    writer = site.PagedWriter(str(tmp_path), "clips", page_size=10)
    caption = "a </script><script>alert(1)</script> caption, ünïcode"
    writer.add({"captions": {"v0": [caption]}})
    writer.close()
    text = (tmp_path / "data" / "clips-0000.js").read_text(encoding="utf-8")
    assert "</script" not in text and "ünïcode" in text
    assert read_page(tmp_path / "data" / "clips-0000.js")[2][0]["captions"]["v0"] == [caption]


def test_media_links_are_relative_and_only_to_files_that_exist(tmp_path):
    lake, out = tmp_path / "lake", tmp_path / "reports" / "today"
    preview = lake / "media" / "previews" / "c 1" / "0_64.webp"
    preview.parent.mkdir(parents=True)
    preview.write_bytes(b"RIFF")
    links = site.MediaLinks(str(lake), str(out))
    assert links.preview("c 1", 0, 64) == "../../lake/media/previews/c%201/0_64.webp"
    assert links.preview("c 1", 64, 128) is None
    assert site.MediaLinks("s3://bucket/lake", str(out)).preview("c 1", 0, 64) is None


def test_clip_record_marks_duplicates_at_eps():
    row = {"clip_id": "b", "source_path": "/v.mp4", "start_s": 1.23456789, "end_s": 5.0, "num_frames": 100,
           "width": 640, "height": 360, "fps": 25.0, "motion_global_mean": float("nan"), "aesthetic_score": 4.56789,
           "filtered_by": None, "error": None, "location": None, "captions": {"v1": ["x"], "v0": ["y"]},
           "first_window": None, "cluster_id": 3, "cosine_sim_score": 0.995, "max_id": "a"}
    links = site.MediaLinks("/nowhere", "/tmp")
    record = site.clip_record(row, links, eps=0.01)
    assert record["t"] == [1.235, 5.0] and record["motion"] is None and record["aesthetic"] == 4.568
    assert list(record["captions"]) == ["v0", "v1"] and record["dup_of"] == "a" and record["preview"] is None
    assert site.clip_record(row, links, eps=0.001)["dup_of"] is None


def test_plots_are_svg_with_escaped_labels():
    svg = charts.histogram("durations <s>", [0.0, 1.0, 2.0], [3, 1])
    assert svg.startswith("<svg") and svg.count('class="bar"') == 2 and "durations &lt;s&gt;" in svg
    bars = charts.bars("bins", [("16_9", 4), ("4_3", 1)])
    heights = [float(h) for h in re.findall(r'class="bar"[^>]*height="([\d.]+)"', bars)]
    assert heights[0] == 4 * heights[1]
