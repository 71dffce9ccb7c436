"use strict";
// The report's behaviour: data files (data/clips-NNNN.js, data/videos-NNNN.js) are <script> files
// added one at a time as they are needed, since a page opened from disk cannot fetch() files.
window.CLIPLAKE = (() => {
  const VIEW = 60;  // cards per screen: the DOM never holds more
  const TIMELINES = 50;  // videos shown per "more videos"
  const state = { summary: null, clips: [], videos: [], loaded: { clips: 0, videos: 0 }, waiting: null,
                  view: 0, videosShown: 0, request: 0 };
  const $ = (id) => document.getElementById(id);

  function element(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v; else node.setAttribute(k, v);
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  // -- data pages -------------------------------------------------------------------------------------------
  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const script = element("script", { src, charset: "utf-8" });
      script.async = false;  // scripts added together download in parallel and run in the order added
      script.onload = resolve;
      script.onerror = () => reject(new Error("cannot load " + src));
      document.head.append(script);
    });
  }

  let queue = Promise.resolve();  // one batch of pages after another
  function loadPages(kind, count) {
    const batch = queue.then(() => {
      const want = Math.min(count, state.summary.pages[kind]);
      const scripts = [];
      for (let n = state.loaded[kind]; n < want; n++) scripts.push(loadScript(`data/${kind}-${String(n).padStart(4, "0")}.js`));
      return Promise.all(scripts).then(() => {
        if (state.loaded[kind] < want) throw new Error(`data/${kind} pages up to ${want} did not all register`);
      });
    });
    queue = batch.catch(() => {});  // a failed batch is reported by its caller; later ones still run
    return batch;
  }

  function page(kind, index, rows) {
    if (kind === "clips") {
      for (const clip of rows) clip.haystack = Object.values(clip.captions).flat().join("\n").toLowerCase();
    }
    state[kind].push(...rows);
    state.loaded[kind] = index + 1;
    if (kind === "clips" && !state.drawSoon) {  // draw what has arrived, at most every 200 ms
      state.drawSoon = setTimeout(() => { state.drawSoon = null; render(false); }, 200);
    }
  }

  // -- gallery ---------------------------------------------------------------------------------------------
  function filters() {
    const number = (id) => { const v = parseFloat($(id).value); return Number.isNaN(v) ? null : v; };
    return { q: $("search").value.trim().toLowerCase(), score: $("score").value,
             min: number("score-min"), max: number("score-max"), show: $("show").value };
  }

  function active(f) {
    return f.q !== "" || (f.score !== "" && (f.min !== null || f.max !== null)) || f.show !== "all";
  }

  function matches(clip, f) {
    if (f.q && !clip.haystack.includes(f.q)) return false;
    if (f.score && (f.min !== null || f.max !== null)) {
      const v = clip[f.score];
      if (v === null || v === undefined) return false;
      if (f.min !== null && v < f.min) return false;
      if (f.max !== null && v > f.max) return false;
    }
    switch (f.show) {
      case "kept": return !clip.filtered && !clip.error && !clip.dup_of;
      case "filtered": return !!clip.filtered;
      case "duplicate": return !!clip.dup_of;
      case "error": return !!clip.error;
      default: return true;
    }
  }

  const fmt = (v) => (v === null || v === undefined ? "–" : Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3));
  const basename = (path) => path.split("/").pop();

  function card(clip, extra) {
    const classes = ["card"];
    if (clip.filtered) classes.push("filtered");
    if (clip.error) classes.push("error");
    const image = clip.preview
      ? element("img", { src: clip.preview, loading: "lazy", alt: "preview of " + clip.id })
      : element("div", { class: "nopreview" }, "no preview");
    const media = clip.mp4 ? element("a", { href: clip.mp4, title: "the clip's mp4" }, image) : image;
    const badges = element("div", {},
      clip.filtered ? element("span", { class: "badge filtered" }, "filtered: " + clip.filtered) : null,
      clip.dup_of ? element("span", { class: "badge dup", title: "duplicate of " + clip.dup_of }, "duplicate") : null,
      clip.error ? element("span", { class: "badge error", title: clip.error }, "error") : null,
      extra ? element("span", { class: "badge" }, extra) : null);
    const captions = Object.entries(clip.captions).map(([version, windows]) =>
      element("div", { class: "caption", "data-version": version }, element("b", {}, version), windows.join(" ⏐ ")));
    return element("div", { class: classes.join(" "), "data-clip-id": clip.id },
      media,
      element("div", { class: "where", title: clip.video }, `${basename(clip.video)} ${fmt(clip.t[0])}–${fmt(clip.t[1])} s`),
      element("div", { class: "scores" },
        `${clip.size[0]}×${clip.size[1]} · ${clip.frames} frames · motion ${fmt(clip.motion)} · aesthetic ${fmt(clip.aesthetic)}` +
        (clip.text !== null && clip.text !== undefined ? ` · text ${fmt(clip.text)}` : "") +
        (clip.sim !== undefined ? ` · cluster ${clip.cluster}, sim ${fmt(clip.sim)}` : "")),
      badges, ...captions,
      clip.error ? element("div", { class: "caption" }, clip.error) : null);
  }

  // Draw the current screen; when it needs clips not loaded yet (a filter scans every page, a
  // screen beyond the loaded ones), load them and draw again. data-complete is "true" once the
  // drawing reflects every page it needs.
  function render(fetchMore = true) {
    const f = filters();
    const matched = state.clips.filter((c) => matches(c, f));
    const total = state.summary.total_clips;
    const pages = state.summary.pages.clips;
    const needAll = active(f);
    const needed = needAll ? pages : Math.ceil(((state.view + 1) * VIEW) / state.summary.page_size);
    const complete = state.loaded.clips >= Math.min(needed, pages);
    const lastView = Math.max(0, Math.ceil((needAll ? matched.length : total) / VIEW) - 1);
    state.view = Math.min(state.view, lastView);
    const shown = matched.slice(state.view * VIEW, (state.view + 1) * VIEW);
    const gallery = $("gallery");
    gallery.replaceChildren(...shown.map((c) => card(c)));
    gallery.dataset.matches = needAll ? matched.length : total;
    gallery.dataset.complete = complete ? "true" : "false";
    if (complete && state.firstDrawnAt === undefined) state.firstDrawnAt = performance.now();  // bench/report_load.py
    $("gallery-count").textContent = needAll
      ? `${matched.length} of ${total} clips match` + (complete ? "" : ` (searched ${state.loaded.clips} of ${pages} pages…)`)
      : `${total} clips`;
    $("view-label").textContent = shown.length
      ? `${state.view * VIEW + 1}–${state.view * VIEW + shown.length}` : "none";
    $("prev").disabled = state.view === 0;
    $("next").disabled = state.view >= lastView;
    if (!complete && fetchMore) {  // pages drawn as they arrive (see page()); the last draw is the latest request's
      const request = ++state.request;
      loadPages("clips", needed).then(() => { if (request === state.request) render(false); }, fail);
    }
  }

  function fail(error) {
    console.error(error);
    $("gallery-count").textContent = String(error.message || error);
  }

  function renderDedup() {
    const dedup = state.summary.dedup;
    const box = $("dedup");
    if (!dedup.model) { box.append(element("p", {}, "No semantic_dedup table: run cliplake dedup.")); return; }
    box.append(element("p", {}, `model ${dedup.model}, duplicates at eps ${dedup.eps} (cosine_sim_score ≥ ${fmt(1 - dedup.eps)}); ` +
      `${dedup.groups.length} largest groups, the kept clip first.`));
    for (const group of dedup.groups) {
      const row = element("div", { class: "dup-group", "data-keep": group.keep });
      const kept = dedup.clips[group.keep];
      if (kept) row.append(card(kept, `kept · group of ${group.size}`));
      for (const d of group.duplicates) {
        const clip = dedup.clips[d.id];
        if (clip) row.append(card(clip, `sim ${fmt(d.sim)}`));
      }
      box.append(row);
    }
  }

  // -- timelines -------------------------------------------------------------------------------------------
  const SVG = "http://www.w3.org/2000/svg";
  function timeline(video) {
    const end = Math.max(video.duration || 0, ...video.clips.map((c) => c[1]), 1e-6);
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 1000 10");
    svg.setAttribute("preserveAspectRatio", "none");
    if (video.status === "error") {
      const bar = document.createElementNS(SVG, "rect");
      Object.entries({ x: 0, y: 0, width: 1000, height: 10, class: "video-error" }).forEach(([k, v]) => bar.setAttribute(k, v));
      svg.append(bar);
    }
    for (const [start, stop, filtered, failed] of video.clips) {
      const rect = document.createElementNS(SVG, "rect");
      const x = (1000 * start) / end;
      Object.entries({ x, y: 0, width: Math.max((1000 * (stop - start)) / end - 1, 1), height: 10,
        class: failed ? "failed" : filtered ? "filtered" : "kept" }).forEach(([k, v]) => rect.setAttribute(k, v));
      const tip = document.createElementNS(SVG, "title");
      tip.textContent = `${fmt(start)}–${fmt(stop)} s${filtered ? " (filtered: " + filtered + ")" : ""}${failed ? " (error)" : ""}`;
      rect.append(tip);
      svg.append(rect);
    }
    const label = `${basename(video.path)} · ${fmt(video.duration)} s · ${video.clips.length} clips` +
      (video.error ? " · " + video.error : "");
    return element("div", { class: "timeline" }, element("div", { class: "name", title: video.path }, label), svg);
  }

  async function moreVideos() {
    const want = state.videosShown + TIMELINES;
    await loadPages("videos", Math.ceil(want / state.summary.page_size));
    const box = $("timelines");
    for (const video of state.videos.slice(state.videosShown, want)) box.append(timeline(video));
    state.videosShown = Math.min(want, state.videos.length);
    $("more-videos").hidden = state.videosShown >= state.summary.total_videos;
  }

  // -- start -----------------------------------------------------------------------------------------------
  function start() {
    if (!state.summary) { fail(new Error("data/summary.js is missing: write the report again")); return; }
    let timer = null;
    const changed = () => {  // typing: redraw once it pauses; data-complete says a redraw is due
      $("gallery").dataset.complete = "false";
      clearTimeout(timer);
      timer = setTimeout(() => { state.view = 0; render(); }, 150);
    };
    for (const id of ["search", "score", "score-min", "score-max", "show"]) $(id).addEventListener("input", changed);
    $("prev").addEventListener("click", () => { state.view -= 1; render(); });
    $("next").addEventListener("click", () => { state.view += 1; render(); });
    $("more-videos").addEventListener("click", () => moreVideos().catch(fail));
    renderDedup();
    render();
    moreVideos().catch(fail);
  }

  return { summary: (s) => { state.summary = s; }, page, start, state };
})();
