"""VLM judgements of clips: ``--vlm-filter`` (semantic categories) and ``--video-classifier`` (video types).

Both ask the captioning VLM (``--captioning-model``, or the ``openai`` backend's endpoint) one
structured question per caption window of a clip and parse its answer, a JSON object of
``"name": "yes" | "no"``. Options as Cosmos-Curate v1.4 names them; the prompts are cliplake's.

- VLM filter: ``score`` = the share of the clip's parsed windows in which the VLM said yes to any
  category; ``enable`` marks the clip ``filtered_by='vlm'`` when score >= threshold (0.5).
- Video classifier: a clip is of each type the VLM said yes to in at least threshold (0.5) of its
  parsed windows (``clips.video_type``, comma-separated); ``enable`` marks it
  ``filtered_by='video_classifier'`` when it has a blocked type, or when an allow list is given and
  it has none of those types.

An answer that does not parse is recorded as it came (``*_answer``) and decides nothing: a clip
with no parsed window keeps its place, with a null score / type.
"""

import dataclasses
import json
import re
from dataclasses import dataclass
from typing import Iterator, Literal

import pandas as pd

from curate_udfs.captioning.config import CaptioningConfig
from curate_udfs.captioning.inputs import unpack_window_frames
from curate_udfs.captioning.prepare import prepare_clip
from curate_udfs.stage import map_records

# Cosmos-Curate v1.4's default semantic categories (what a curated training set usually leaves out).
DEFAULT_CATEGORIES = (
    "slideshow", "synthetic video", "visual filter", "post-production text", "video in video",
    "photographic artifacts", "distorted view", "rotated view", "low resolution", "blurred region",
    "abrupt camera motion", "fast zoom", "unnatural speed",
)
# Cosmos-Curate v1.4's 27 video types (the --video-classifier-allow/--video-classifier-block values).
VIDEO_TYPES = (
    "movie/film_scene", "tv_drama/tv_series", "animation", "cartoon", "video_game", "news_reporting", "talk_show",
    "product_review/unboxing", "how_to/demo", "digital_illustration/digital_text", "visual_pattern",
    "egocentric_video/walking_POV", "vehicle_POV", "aerial_footage", "travel/luggage/plane", "food/drink", "cooking",
    "sports/exercise", "clothing/fashion/makeup", "exterior_building/cityscape", "interior_spaces",
    "nature_environment", "animal/insect/wildlife", "pets", "person/crowd", "talking_head", "other",
)
FILTER_INPUT_COLUMNS = ("clip_id", "location", "fps", "num_frames", "width", "height")
VLM_FILTER_COLUMNS = {"clip_id": str, "vlm_filter_score": float, "vlm_filter_answer": str, "filtered_by": str,
                      "error": str, "processing_s": float}
CLASSIFIER_COLUMNS = {"clip_id": str, "video_type": str, "video_classifier_answer": str, "filtered_by": str,
                      "error": str, "processing_s": float}


def yes_no_question(intro: str, names: tuple[str, ...]) -> str:
    """A question asking yes or no for each of ``names``, answered as one JSON object."""
    listed = "\n".join(f'- "{name}"' for name in names)
    example = "{" + ", ".join(f'"{name}": "yes" or "no"' for name in names[:2]) + (", ..." if len(names) > 2 else "") + "}"
    return (f"{intro}\n{listed}\nReply with one JSON object and nothing else: every name above as a key, "
            f'each with the value "yes" or "no", like {example}.')


def filter_question(categories: tuple[str, ...]) -> str:
    return yes_no_question("Look at the whole video. For each of the following, does it apply to this video?", categories)


def classifier_question(types: tuple[str, ...]) -> str:
    return yes_no_question("What kind of video is this? For each of the following video types, is this video of "
                           "that type?", types)


_YES = {"yes": True, "y": True, "true": True, "1": True, "no": False, "n": False, "false": False, "0": False}


def parse_yes_no(text: str | None, names: tuple[str, ...]) -> dict[str, bool] | None:
    """``{name: said yes}`` for the ``names`` the answer speaks of; None when it speaks of none.

    Example::

        parse_yes_no('```json\\n{"slideshow": "no", "fast zoom": "Yes"}\\n```', ("slideshow", "fast zoom"))
        # {"slideshow": False, "fast zoom": True}

    Reads the first JSON object in the text (code fences and prose around it are fine); when it is
    not valid JSON, ``"name": "yes"`` pairs are read one by one. Names match case- and
    underscore/space-insensitively.
    """
    if not text:
        return None
    key = {_norm(n): n for n in names}
    pairs: dict[str, object] = {}
    match = re.search(r"\{.*\}", text, re.DOTALL)
    if match:
        try:
            loaded = json.loads(match.group(0))
            if isinstance(loaded, dict):
                pairs = loaded
        except ValueError:
            pass
    if not pairs:
        pairs = dict(re.findall(r'"([^"]+)"\s*:\s*"?([A-Za-z01]+)"?', text))
    found = {}
    for name, value in pairs.items():
        label = key.get(_norm(str(name)))
        verdict = _YES.get(str(value).strip().lower()) if not isinstance(value, bool) else value
        if label is not None and verdict is not None:
            found[label] = verdict
    return found or None


def _norm(name: str) -> str:
    return re.sub(r"[\s_]+", " ", name.strip().lower())


@dataclass(frozen=True)
class VlmFilterConfig:
    """``--vlm-filter`` options; ``captioning`` says which VLM answers (and how windows are cut)."""

    mode: Literal["disable", "enable", "score-only"] = "disable"
    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    threshold: float = 0.5
    captioning: CaptioningConfig = dataclasses.field(default_factory=CaptioningConfig)

    def __post_init__(self):
        if self.mode not in ("disable", "enable", "score-only"):
            raise ValueError(f"--vlm-filter must be disable, enable or score-only, got {self.mode!r}")
        if not self.categories or not all(c.strip() for c in self.categories):
            raise ValueError("--vlm-filter-categories must name at least one category (comma-separated)")
        if not 0 <= self.threshold <= 1:
            raise ValueError(f"--vlm-filter-threshold must be within [0, 1], got {self.threshold}")


@dataclass(frozen=True)
class VideoClassifierConfig:
    """``--video-classifier`` options: allow and block lists over :data:`VIDEO_TYPES`."""

    mode: Literal["disable", "enable"] = "disable"
    allow: tuple[str, ...] = ()
    block: tuple[str, ...] = ()
    threshold: float = 0.5
    captioning: CaptioningConfig = dataclasses.field(default_factory=CaptioningConfig)

    def __post_init__(self):
        if self.mode not in ("disable", "enable"):
            raise ValueError(f"--video-classifier must be disable or enable, got {self.mode!r}")
        unknown = [t for t in self.allow + self.block if t not in VIDEO_TYPES]
        if unknown:
            raise ValueError(f"unknown video type(s) {', '.join(unknown)}: --video-classifier-allow/-block take "
                             f"{', '.join(VIDEO_TYPES)}")
        if set(self.allow) & set(self.block):
            raise ValueError(f"video types both allowed and blocked: {', '.join(sorted(set(self.allow) & set(self.block)))}")
        if not 0 <= self.threshold <= 1:
            raise ValueError(f"--video-classifier-threshold must be within [0, 1], got {self.threshold}")


def split_names(value: str | None) -> tuple[str, ...]:
    """A comma-separated option as a tuple of stripped names (empty ones dropped)."""
    return tuple(n.strip() for n in (value or "").split(",") if n.strip())


def _ask(record: dict, captioning: CaptioningConfig, question: str, max_tokens: int, gpu_addresses) -> list[str]:
    """The VLM's answer to ``question`` for each caption window of the clip; raises on a failed window."""
    from curate_udfs.captioning.stage import load_captioner

    windows = prepare_clip(record["clip_id"], record["location"], record["fps"], record["num_frames"], captioning)
    captioner = load_captioner(captioning, gpu_addresses)
    answers = captioner.caption([unpack_window_frames(w["model_inputs"]) for w in windows], question, max_tokens)
    failed = next((a.error for a in answers if a.error), None)
    if failed:
        raise RuntimeError(failed)
    return [a.text for a in answers]


def _answer_record(texts: list[str], parsed: list[dict | None]) -> str:
    """``*_answer``: per window, the parsed verdicts, or the raw text under ``unparsed``."""
    return json.dumps([p if p is not None else {"unparsed": t} for t, p in zip(texts, parsed)], sort_keys=True)


def _max_tokens(names: tuple[str, ...]) -> int:
    return 16 + 12 * len(names)


def score_vlm_filter(texts: list[str], config: VlmFilterConfig) -> dict:
    """The VLM filter's columns from a clip's window answers."""
    parsed = [parse_yes_no(t, config.categories) for t in texts]
    verdicts = [any(p.values()) for p in parsed if p is not None]
    score = sum(verdicts) / len(verdicts) if verdicts else None
    rejected = config.mode == "enable" and score is not None and score >= config.threshold
    return {"vlm_filter_score": score, "vlm_filter_answer": _answer_record(texts, parsed),
            "filtered_by": "vlm" if rejected else None}


def classify(texts: list[str], config: VideoClassifierConfig) -> dict:
    """The video classifier's columns from a clip's window answers."""
    parsed = [parse_yes_no(t, VIDEO_TYPES) for t in texts]
    usable = [p for p in parsed if p is not None]
    types = [t for t in VIDEO_TYPES if usable and sum(p.get(t, False) for p in usable) / len(usable) >= config.threshold]
    rejected = bool(usable) and config.mode == "enable" and (
        any(t in config.block for t in types) or (bool(config.allow) and not any(t in config.allow for t in types)))
    return {"video_type": ",".join(types) if usable else None, "video_classifier_answer": _answer_record(texts, parsed),
            "filtered_by": "video_classifier" if rejected else None}


def vlm_filter_batches(batches: Iterator[pd.DataFrame], config: VlmFilterConfig,
                       gpu_addresses: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """mapInPandas body: clip rows (:data:`FILTER_INPUT_COLUMNS`) in, :data:`VLM_FILTER_COLUMNS` rows out."""
    question = filter_question(config.categories)

    def process(record: dict) -> dict:
        texts = _ask(record, config.captioning, question, _max_tokens(config.categories), gpu_addresses)
        return {"clip_id": record["clip_id"], "error": None, **score_vlm_filter(texts, config)}

    def on_error(record: dict, message: str) -> dict:
        return {"clip_id": record["clip_id"], "error": f"vlm_filter: {message}"}

    return map_records(batches, process, on_error, list(VLM_FILTER_COLUMNS))


def video_classifier_batches(batches: Iterator[pd.DataFrame], config: VideoClassifierConfig,
                             gpu_addresses: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """mapInPandas body: clip rows (:data:`FILTER_INPUT_COLUMNS`) in, :data:`CLASSIFIER_COLUMNS` rows out."""
    question = classifier_question(VIDEO_TYPES)

    def process(record: dict) -> dict:
        texts = _ask(record, config.captioning, question, _max_tokens(VIDEO_TYPES), gpu_addresses)
        return {"clip_id": record["clip_id"], "error": None, **classify(texts, config)}

    def on_error(record: dict, message: str) -> dict:
        return {"clip_id": record["clip_id"], "error": f"video_classifier: {message}"}

    return map_records(batches, process, on_error, list(CLASSIFIER_COLUMNS))
