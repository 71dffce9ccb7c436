"""`cliplake report` in headless Chromium, and the notebooks executed, over one small real lake.

The lake: two bundled sample videos and a byte copy of one (its clips are duplicates), plus an
empty file (an error row), split with tiny models and deduplicated; one lake serves every test.
Chromium is Debian's (/usr/bin/chromium, `make setup` installs it), driven by Playwright.
"""

import importlib.util
import json
import os
import re
import shutil

import pytest

from jobs import tables
from jobs.cli import run_command
from jobs.session import REPO_ROOT

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
IMAGES = REPO_ROOT / "docs" / "images"


@pytest.fixture(scope="module")
def lake(spark, samples, tiny_models, tmp_path_factory):
    inputs = tmp_path_factory.mktemp("report_input")
    shutil.copy(samples["bikes.mp4"], inputs / "bikes.mp4")
    shutil.copy(samples["bikes.mp4"], inputs / "bikes_copy.mp4")  # same frames: its clips are duplicates
    shutil.copy(samples["carphone_pristine.mp4"], inputs / "carphone.mp4")
    (inputs / "broken.mp4").write_bytes(b"")
    lake = tmp_path_factory.mktemp("report_lake")
    # 5 s fixed-stride clips (no TransNetV2 pass): 2 + 2 + 1 clips, each one caption window.
    summary = run_command(["split", "--input-video-path", str(inputs), "--output-path", str(lake),
                           "--splitting-algorithm", "fixed-stride", "--fixed-stride-split-duration", "5",
                           "--motion-filter", "score-only", "--generate-previews", "--captioning-model", tiny_models["vlm"],
                           "--captioning-max-output-tokens", "8"])
    assert (summary["num_clips"], summary["num_error_videos"]) == (5, 1)
    run_command(["dedup", "--output-path", str(lake), "--n-clusters", "1"])
    return lake


@pytest.fixture(scope="module")
def clips(spark, lake):
    return {r.clip_id: r for r in tables.read_table(spark, lake, "clips").collect()}


@pytest.fixture(scope="module")
def report(lake, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    outcome = run_command(["report", "--output-path", str(lake), "--out", str(out), "--page-size", "2"])
    return out, outcome


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make setup` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def page(browser, report):
    """The report opened from disk; ``page.problems`` collects console errors and uncaught exceptions."""
    out, _ = report
    tab = browser.new_page(viewport={"width": 1280, "height": 900})
    tab.problems = []
    tab.on("console", lambda m: tab.problems.append(m.text) if m.type in ("error", "warning") else None)
    tab.on("pageerror", lambda e: tab.problems.append(str(e)))
    tab.on("requestfailed", lambda r: tab.problems.append(f"failed: {r.url}"))
    tab.goto((out / "index.html").as_uri())
    settled(tab)
    yield tab
    tab.close()


def settled(tab):
    tab.wait_for_selector("#gallery[data-complete=true]", state="attached", timeout=10_000)


def shown(tab, within="#gallery") -> list[str]:
    return tab.eval_on_selector_all(f"{within} .card", "cards => cards.map(c => c.dataset.clipId)")


def type_into(tab, selector, text):
    tab.fill(selector, text)
    settled(tab)


def test_report_is_paged_data_files(report, clips):
    out, outcome = report
    assert outcome["clips"] == len(clips) == 5 and outcome["videos"] == 4
    assert outcome["pages"] == {"clips": 3, "videos": 2}  # --page-size 2
    assert sorted(os.listdir(out / "data")) == ["clips-0000.js", "clips-0001.js", "clips-0002.js", "summary.js",
                                                "videos-0000.js", "videos-0001.js"]
    html = (out / "index.html").read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "the page must not load anything from the network"


def test_gallery_shows_every_clip_with_previews_and_no_console_errors(page, clips):
    assert sorted(shown(page)) == sorted(clips)
    assert page.inner_text("#gallery-count") == f"{len(clips)} clips"
    loaded = page.eval_on_selector_all("#gallery img", "imgs => imgs.filter(i => i.complete && i.naturalWidth > 0).length")
    assert loaded == len(clips)  # every clip was captioned, so every one has a WebP preview on disk
    assert page.problems == []


def test_search_narrows_to_captions_with_the_word(spark, lake, page, clips):
    captions = tables.read_table(spark, lake, "captions").collect()
    by_clip = {}
    for r in captions:
        by_clip.setdefault(r.clip_id, []).append(r.caption.lower())
    words = sorted({w for texts in by_clip.values() for t in texts for w in re.findall(r"[a-z]{3,}", t)})
    containing = {w: {c for c, texts in by_clip.items() if any(w in t for t in texts)} for w in words}
    word = next((w for w in words if 0 < len(containing[w]) < len(clips)), None)
    assert word, f"no caption word tells the clips apart: {by_clip}"
    type_into(page, "#search", word.upper())  # case does not matter
    assert sorted(shown(page)) == sorted(containing[word])
    assert page.inner_text("#gallery-count").startswith(f"{len(containing[word])} of {len(clips)} clips match")
    type_into(page, "#search", "")
    assert len(shown(page)) == len(clips)


def test_score_filter_narrows(page, clips):
    # The page holds scores to 4 significant digits: cut halfway between two distinct such values.
    scored = {c: r.motion_global_mean for c, r in clips.items() if r.motion_global_mean is not None}
    motion = sorted({float(f"{m:.4g}") for m in scored.values()})
    assert len(motion) >= 2 and len(scored) < len(clips)  # carphone.mp4 (176x144) is too small to score
    cut = (motion[0] + motion[1]) / 2
    page.select_option("#score", "motion")
    type_into(page, "#score-min", repr(cut))
    expected = {c for c, m in scored.items() if m >= cut}
    assert 0 < len(expected) < len(scored) and set(shown(page)) == expected
    type_into(page, "#score-max", repr(cut))  # nothing is both >= and <= a value between two scores
    assert shown(page) == []
    for box in ("#score-min", "#score-max"):
        type_into(page, box, "")
    assert len(shown(page)) == len(clips)


def test_duplicate_groups_show_each_clip_beside_its_copy(spark, lake, page, clips):
    groups = page.eval_on_selector_all(".dup-group", "gs => gs.map(g => [...g.querySelectorAll('.card')].map(c => c.dataset.clipId))")
    assert len(groups) == 2
    for members in groups:
        assert len(members) == 2
        a, b = (clips[m] for m in members)
        assert {os.path.basename(a.source_path), os.path.basename(b.source_path)} == {"bikes.mp4", "bikes_copy.mp4"}
        assert (a.start_frame, a.end_frame) == (b.start_frame, b.end_frame)
    dedup = {r.clip_id: r for r in tables.read_table(spark, lake, "semantic_dedup").collect()}
    assert {m for g in groups for m in g[1:]} == {c for c, r in dedup.items() if r.cosine_sim_score >= 0.99}


def test_timelines_errors_and_runs(page, clips):
    page.wait_for_selector(".timeline")
    timelines = page.eval_on_selector_all(".timeline .name", "ns => ns.map(n => n.textContent)")
    assert len(timelines) == 4 and any("broken.mp4" in t for t in timelines)
    assert page.locator(".timeline rect.kept").count() == len(clips)
    assert page.inner_text("#videos-errors") == "1" and "broken.mp4" in page.inner_text("#errors")
    pipelines = page.eval_on_selector_all("table.runs tbody tr td:nth-child(2)", "tds => tds.map(t => t.textContent)")
    assert sorted(pipelines) == ["dedup", "split"]


def test_screenshot_for_the_readme(page):
    page.select_option("#score", "")
    page.evaluate("document.activeElement.blur(); window.scrollTo(0, 0)")
    IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMAGES / "report.png"))
    assert (IMAGES / "report.png").stat().st_size > 20_000
    assert page.problems == []


# -- the notebooks, executed as `make notebooks` does, against this lake (after the report's tests) --------------

NOTEBOOKS = REPO_ROOT / "notebooks"


@pytest.fixture(scope="module")
def notebooks(lake, tiny_models):
    """notebooks/run.py, with CLIPLAKE_LAKE and CLIPLAKE_MODELS naming this module's lake and tiny models."""
    spec = importlib.util.spec_from_file_location("notebooks_run", NOTEBOOKS / "run.py")
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    env = {"CLIPLAKE_LAKE": str(lake), "CLIPLAKE_MODELS": os.path.dirname(tiny_models["vlm"])}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield runner
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_explore_notebook_plots_distributions_and_previews(notebooks):
    executed = notebooks.execute(NOTEBOOKS / "01_explore_clips.ipynb")
    [distributions] = notebooks.images(executed, "distributions")
    [previews] = notebooks.images(executed, "previews")
    assert len(distributions) > 20_000 and len(previews) > 20_000
    (IMAGES / "notebook_distributions.png").write_bytes(distributions)


def test_annotation_versions_notebook_adds_v1_and_rebuilds_the_old_dataset(spark, lake, notebooks):
    before = tables.latest_version(spark, lake, "captions")
    executed = notebooks.execute(NOTEBOOKS / "02_annotation_versions.ipynb")
    captions = tables.read_table(spark, lake, "captions")
    windows = {v: {(r.clip_id, r.window_index) for r in captions.where(f"annotation_version = '{v}'").collect()}
               for v in ("v0", "v1")}
    assert len(windows["v0"]) == 5 and windows["v1"] == windows["v0"]
    assert tables.latest_version(spark, lake, "captions") > before
    assert "5 windows captioned in both versions" in notebooks.text(executed, "side-by-side")
    [shard] = tables.read_table(spark, lake, "runs").where("pipeline = 'shard'").collect()
    assert json.loads(shard.input_table_versions)["captions"] == before and shard.num_shard_samples == 5


def test_dedup_notebook_counts_what_each_eps_removes(spark, lake, notebooks):
    executed = notebooks.execute(NOTEBOOKS / "03_dedup_review.ipynb")
    scores = [r.cosine_sim_score for r in tables.read_table(spark, lake, "semantic_dedup").collect()]
    table = notebooks.text(executed, "what-if")
    rows = {float(eps): (int(removed), int(kept)) for eps, removed, kept in
            re.findall(r"^\s*\d+\s+([\d.]+)\s+(\d+)\s+(\d+)\s*$", table, re.MULTILINE)}
    assert 0.01 in rows and 0.2 in rows
    for eps, (removed, kept) in rows.items():
        assert removed == sum(s >= 1 - eps for s in scores) and removed + kept == len(scores)
    assert rows[0.01][0] == 2  # the two clips of bikes_copy.mp4
    assert len(notebooks.images(executed, "pairs")) == 1 and len(notebooks.images(executed, "clusters")) == 1
