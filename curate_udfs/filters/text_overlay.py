"""Burned-in text (subtitles, tickers, corner captions, title cards) from OCR on a few frames of a clip.

The OCR is PP-OCRv4 (detection + recognition, the PaddleOCR family Cosmos-Curate uses) as the
ONNX files inside the ``rapidocr-onnxruntime`` wheel, run by ``onnxruntime`` on the CPU.

The score tells text laid over the picture from text that is part of the scene (a shop sign, a
number plate, a shirt). Overlay text is rendered in frame coordinates, so it has:

- **persistence**: it stays in the same horizontal band of the frame across the sampled frames
  (a subtitle's words change and a ticker scrolls, but their band does not), while scene text
  moves with the camera or appears briefly;
- **alignment**: its lines are exactly horizontal; scene text seen in perspective is tilted;
- **placement**: it sits in the bottom or top band of the frame (subtitles, tickers, corner
  captions), or is large and centred (title cards); scene text can be anywhere;
- **size and contrast**: it is drawn to be read, with strong contrast; tiny or faint detections
  (far-away signs, textures the detector half-trusts) count little.

Each OCR box gets an evidence in [0, 1], the product of its alignment, placement, size and contrast
factors. Boxes whose vertical extents overlap (IoU >= 0.5) across frames form one band; a band's
score is its mean per-frame best evidence times its persistence (the share of sampled frames it is
in, counted in full from half of them on). The clip's score is its best band's, in [0, 1].
"""

import functools
from dataclasses import dataclass

import numpy as np

# Factors ramp linearly between these (below lo: 0, above hi: 1).
TILT_DEGREES = (1.5, 6.0)  # a line tilted more than 6 degrees is not overlay text (reversed ramp)
HEIGHT_FRACTION = (0.025, 0.045)  # text line height / frame height
CONTRAST = (0.25, 0.55)  # (p97 - p3) of the box's luma, / 255
TOP_BAND, BOTTOM_BAND = 0.22, 0.72  # centre above / below these fractions of the height: caption bands
TITLE_HEIGHT, TITLE_CENTRE = 0.1, 0.12  # a line at least this tall, centred within this of the middle: a title
MIDDLE_PLACEMENT = 0.35  # the placement factor of text in the middle of the frame that is not a title
BAND_IOU = 0.5  # vertical overlap that makes two boxes one band
FULL_PERSISTENCE = 0.5  # a band present in this share of the sampled frames counts in full


@dataclass(frozen=True)
class TextBox:
    """One OCR'd text line of one frame: its quadrilateral (4 x (x, y) pixels), text and confidence."""

    frame: int
    quad: np.ndarray
    text: str
    confidence: float

    @property
    def top(self) -> float:
        return float(self.quad[:, 1].min())

    @property
    def bottom(self) -> float:
        return float(self.quad[:, 1].max())


@dataclass(frozen=True)
class OverlayScore:
    score: float  # in [0, 1]: the best band's evidence x persistence
    texts: list[str]  # every distinct OCR'd line, in order of first appearance


def _ramp(value: float, lo: float, hi: float) -> float:
    return float(np.clip((value - lo) / (hi - lo), 0.0, 1.0))


def tilt_degrees(quad: np.ndarray) -> float:
    """How far from horizontal the box's top and bottom edges are, the larger of the two, in degrees."""
    def angle(a, b):
        dx, dy = b - a
        return abs(np.degrees(np.arctan2(dy, dx))) if dx or dy else 0.0

    tilts = [angle(quad[0], quad[1]), angle(quad[3], quad[2])]
    return float(max(min(t, 180 - t) for t in tilts))


def box_evidence(box: TextBox, gray: np.ndarray) -> float:
    """How much ``box`` on the frame ``gray`` (H x W luma) looks like overlay text, in [0, 1]."""
    height, width = gray.shape
    line = max(np.linalg.norm(box.quad[0] - box.quad[3]), np.linalg.norm(box.quad[1] - box.quad[2])) / height
    aligned = 1.0 - _ramp(tilt_degrees(box.quad), *TILT_DEGREES)
    size = _ramp(line, *HEIGHT_FRACTION)
    centre_x, centre_y = box.quad.mean(axis=0) / (width, height)
    if centre_y <= TOP_BAND or centre_y >= BOTTOM_BAND:
        placement = 1.0
    elif line >= TITLE_HEIGHT and abs(centre_x - 0.5) <= TITLE_CENTRE:
        placement = 1.0
    else:
        placement = MIDDLE_PLACEMENT
    x0, y0 = np.floor(box.quad.min(axis=0)).astype(int).clip(0)
    x1, y1 = np.ceil(box.quad.max(axis=0)).astype(int)
    crop = gray[y0:max(y0 + 1, y1), x0:max(x0 + 1, x1)]
    contrast = _ramp((np.percentile(crop, 97) - np.percentile(crop, 3)) / 255.0, *CONTRAST) if crop.size else 0.0
    return aligned * size * placement * contrast


def _vertical_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = min(a[1], b[1]) - max(a[0], b[0])
    union = max(a[1], b[1]) - min(a[0], b[0])
    return max(0.0, inter) / union if union > 0 else 0.0


def score_boxes(boxes: list[TextBox], evidence: list[float], num_frames: int) -> float:
    """The clip's overlay score from its OCR boxes (over ``num_frames`` sampled frames) and their evidence."""
    bands: list[dict] = []  # extent (top, bottom) of the band's first box, best evidence per frame
    for box, weight in sorted(zip(boxes, evidence), key=lambda pair: -pair[1]):
        if weight <= 0:
            continue
        extent = (box.top, box.bottom)
        band = next((b for b in bands if _vertical_iou(b["extent"], extent) >= BAND_IOU), None)
        if band is None:
            band = {"extent": extent, "frames": {}}
            bands.append(band)
        band["frames"][box.frame] = max(band["frames"].get(box.frame, 0.0), weight)
    best = 0.0
    for band in bands:
        present = len(band["frames"])
        persistence = min(1.0, present / max(1.0, FULL_PERSISTENCE * num_frames))
        best = max(best, persistence * sum(band["frames"].values()) / present)
    return best


def score_frames(frames: np.ndarray, ocr) -> OverlayScore:
    """OCR ``frames`` ((N, H, W, 3) uint8 RGB) with ``ocr`` (a RapidOCR engine) and score them."""
    import cv2

    boxes, evidence, texts = [], [], {}
    for index, frame in enumerate(frames):
        found, _ = ocr(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))  # PP-OCR models take BGR
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        for quad, text, confidence in found or []:
            box = TextBox(index, np.asarray(quad, np.float32), str(text), float(confidence))
            boxes.append(box)
            evidence.append(box_evidence(box, gray))
            if box.text.strip():
                texts.setdefault(box.text.strip(), None)
    return OverlayScore(score_boxes(boxes, evidence, len(frames)), list(texts))


@functools.lru_cache(maxsize=2)
def load_ocr(threads: int = 1):
    """The PP-OCRv4 detector and recogniser from the rapidocr-onnxruntime wheel, once per Python worker.

    Frames go to the detector at their own size (they are decoded small); the angle classifier is off
    (overlay text is upright).
    """
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1, det_limit_type="max", use_cls=False,
                    print_verbose=False)
