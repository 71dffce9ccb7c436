"""bench/report_load: how fast `cliplake report`'s page opens and searches with 100,000 clips.

Input: a report folder written through the report's own writer (``jobs.lake_report.site``) from
synthetic records: N clips (default 100,000) of N/20 videos, one caption of 12-40 words each,
scores, a duplicate mark on 5%, previews round-robin over 24 WebP files. Measured in headless
Chromium (Debian's /usr/bin/chromium, through Playwright), the page opened from disk:
- first screen: navigation start to the first 60 cards drawn (the page's own clock);
- search: a word typed (150 ms pause included) to its matches over every clip drawn; the first
  search loads every data page, a second one filters what is loaded.
Floor: the same report with 1,000 clips (one data page), measured in the same run: the first
screen of the big report over the small one's shows what paging buys (near 1 is the goal).

    python bench/report_load.py [--clips 100000] [--page-size 1000]
"""

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = ("a person rides bicycle along road while cars pass background camera pans slowly across green field under "
         "bright blue sky street crowd walks river bridge night city lights dog runs beach waves sunset kitchen "
         "cooking hands table close shot aerial view forest snow mountain train station platform").split()
SEARCH = "kitchen"  # a word in about 1 caption in 4 (of 12-40 words drawn from these)


def write_report(out: str, clips: int, page_size: int) -> None:
    from PIL import Image

    from jobs.lake_report import site

    rng = random.Random(7)
    previews = Path(out, "previews")
    previews.mkdir(parents=True, exist_ok=True)
    for i in range(24):
        Image.new("RGB", (426, 240), (i * 10 % 255, 90, 160)).save(previews / f"p{i}.webp")
    site.prepare(out)
    writer = site.PagedWriter(out, "clips", page_size)
    for i in range(clips):
        video, start = i // 20, (i % 20) * 5.0
        writer.add({
            "id": f"clip-{i:07d}", "video": f"/data/videos/cam{video % 50:02d}/video-{video:06d}.mp4",
            "t": [start, start + 5.0], "frames": 150, "size": [1280, 720], "fps": 30.0,
            "motion": round(rng.random() * 0.02, 5), "aesthetic": round(3 + rng.random() * 4, 3), "text": None,
            "filtered": "motion" if rng.random() < 0.1 else None, "error": None,
            "preview": f"previews/p{i % 24}.webp", "mp4": None,
            "captions": {"v0": [" ".join(rng.choices(WORDS, k=rng.randint(12, 40)))]},
            "cluster": i % 64, "sim": round(rng.random(), 4), "dup_of": f"clip-{i - 1:07d}" if i and rng.random() < 0.05 else None,
        })
    pages = writer.close()
    videos = site.PagedWriter(out, "videos", page_size)
    for v in range(-(-clips // 20)):
        videos.add({"path": f"/data/videos/cam{v % 50:02d}/video-{v:06d}.mp4", "duration": 100.0, "status": "ok",
                    "error": None, "clips": [[s * 5.0, s * 5.0 + 5.0, None, False] for s in range(20)]})
    site.write_summary(out, {"lake": "synthetic", "page_size": page_size, "total_clips": clips, "total_videos": videos.count,
                             "pages": {"clips": pages, "videos": videos.close()}, "versions": ["v0"], "media_linked": True,
                             "dedup": {"model": None, "eps": None, "groups": [], "clips": {}}})
    site.write_index(out, lake="synthetic", counts={"clips": clips}, plots=[], runs=[], errors={})


SEARCH_JS = """async (word) => {
  const gallery = document.getElementById("gallery"), box = document.getElementById("search");
  const started = performance.now();
  box.value = word;
  box.dispatchEvent(new Event("input"));
  await new Promise((done) => {
    const watch = new MutationObserver(() => { if (gallery.dataset.complete === "true") { watch.disconnect(); done(); } });
    watch.observe(gallery, { attributes: true });
  });
  return [performance.now() - started, Number(gallery.dataset.matches)];
}"""


def measure(browser, out: str) -> dict:
    tab = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.goto(Path(out, "index.html").as_uri())
    tab.wait_for_selector("#gallery[data-complete=true]", state="attached", timeout=60_000)
    first = tab.evaluate("CLIPLAKE.state.firstDrawnAt")
    cards = tab.locator("#gallery .card").count()
    search_ms, matches = tab.evaluate(SEARCH_JS, SEARCH)
    tab.evaluate(SEARCH_JS, "")
    again_ms, _ = tab.evaluate(SEARCH_JS, SEARCH)
    tab.close()
    if errors:
        raise RuntimeError(f"page errors: {errors}")
    return {"first_ms": first, "cards": cards, "search_ms": search_ms, "matches": matches, "again_ms": again_ms}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=1000)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as big, tempfile.TemporaryDirectory() as small:
        started = time.monotonic()
        write_report(big, args.clips, args.page_size)
        size = sum(f.stat().st_size for f in Path(big, "data").iterdir()) / 1e6
        print(f"wrote {args.clips} clips in {len(os.listdir(Path(big, 'data')))} files ({size:.0f} MB) in {time.monotonic() - started:.1f} s")
        write_report(small, min(1000, args.clips), args.page_size)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            measure(browser, small)  # warm the browser's caches once
            floor = min((measure(browser, small) for _ in range(3)), key=lambda m: m["first_ms"])
            job = min((measure(browser, big) for _ in range(3)), key=lambda m: m["first_ms"])
            browser.close()
    print(f"first screen: {job['first_ms']:.0f} ms with {args.clips} clips ({job['cards']} cards), "
          f"{floor['first_ms']:.0f} ms with {min(1000, args.clips)} clips: {job['first_ms'] / floor['first_ms']:.2f}x")
    print(f"search '{SEARCH}': {job['search_ms']:.0f} ms loading every page ({job['matches']} matches), "
          f"{job['again_ms']:.0f} ms once loaded (floor, 1 page: {floor['search_ms']:.0f} ms)")


if __name__ == "__main__":
    main()
