"""Clips of real footage with text drawn on them: overlay text (subtitles, tickers, corner captions,
title cards) and scene-like text (perspective-warped signs moving with the camera, small plates,
short-lived text), to measure the artificial-text filter. Fonts are Pillow's bundled one.

``python -m curate_udfs.testing.text_clips DIR`` writes the set into DIR and lists it.
"""

import os
import sys
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

import av
import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from curate_udfs.media.sampling import sample_frames
from curate_udfs.testing.samples import sample_videos

WIDTH, FPS, LENGTH = 480, 25, 48  # clips are 480 px wide, 48 frames at 25 fps


@dataclass(frozen=True)
class TextClip:
    name: str
    path: str
    overlay: bool  # True: burned-in text the filter should find; False: clean or scene text only


def font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def draw_text(frame: np.ndarray, text: str, xy: tuple[int, int], size: int, *, fill=(255, 255, 255),
              stroke=(0, 0, 0), anchor: str = "mm", box=None) -> np.ndarray:
    """``frame`` with ``text`` drawn at ``xy`` (PIL anchor), outlined in ``stroke``, on an optional ``box`` colour."""
    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    if box is not None:
        left, top, right, bottom = draw.textbbox(xy, text, font=font(size), anchor=anchor)
        draw.rectangle((left - 6, top - 4, right + 6, bottom + 4), fill=box)
    draw.text(xy, text, font=font(size), fill=fill, anchor=anchor,
              stroke_width=2 if stroke is not None else 0, stroke_fill=stroke)
    return np.asarray(image)


def subtitle(frame: np.ndarray, text: str) -> np.ndarray:
    """A subtitle line, white with a black outline, centred near the bottom."""
    h, w = frame.shape[:2]
    return draw_text(frame, text, (w // 2, int(h * 0.88)), max(12, h // 15))


def _sign(text: str, size: int, colours=((245, 245, 235), (30, 30, 30))) -> np.ndarray:
    """A sign board: ``text`` on a plain plate with a margin."""
    left, top, right, bottom = font(size).getbbox(text)
    plate = Image.new("RGB", (right - left + size, bottom - top + size), colours[0])
    ImageDraw.Draw(plate).text((size // 2 - left, size // 2 - top), text, font=font(size), fill=colours[1])
    return np.asarray(plate)


def paste_warped(frame: np.ndarray, plate: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """``plate`` warped in perspective onto ``quad`` (4 x (x, y): top-left, top-right, bottom-right, bottom-left)."""
    h, w = plate.shape[:2]
    matrix = cv2.getPerspectiveTransform(np.float32([[0, 0], [w, 0], [w, h], [0, h]]), np.float32(quad))
    size = (frame.shape[1], frame.shape[0])
    warped = cv2.warpPerspective(plate, matrix, size, flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.full((h, w), 255, np.uint8), matrix, size, flags=cv2.INTER_LINEAR)[..., None] / 255.0
    return (frame * (1 - mask) + warped * mask).astype(np.uint8)


def sign_quad(x: float, y: float, width: float, height: float, yaw: float, roll_degrees: float) -> np.ndarray:
    """A sign's corners seen at an angle: the far side (``yaw`` > 0: right) shrunk, the whole rolled."""
    near, far = height, height * (1 - yaw)
    quad = np.float32([[0, 0], [width, (near - far) / 2], [width, (near + far) / 2], [0, near]])
    angle = np.radians(roll_degrees)
    rotation = np.float32([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return quad @ rotation.T + np.float32([x, y])


def write_clip(path: str, frames: list[np.ndarray], fps: int = FPS) -> None:
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.height, stream.width = (s - s % 2 for s in frames[0].shape[:2])
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            frame = frame[: stream.height, : stream.width]
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode(None))


def footage(name: str, start: int, length: int = LENGTH) -> list[np.ndarray]:
    """``length`` frames of a bundled sample video from ``start``, scaled to :data:`WIDTH` wide."""
    return list(sample_frames(str(sample_videos()[name]), list(range(start, start + length)), width=WIDTH).frames)


Painter = Callable[[np.ndarray, int], np.ndarray]  # (frame, index) -> frame with text


def _ticker(text: str, band=(20, 40, 110)) -> Painter:
    def paint(frame, i):
        h, w = frame.shape[:2]
        frame = frame.copy()
        frame[int(h * 0.86):] = band
        return draw_text(frame, text, (w - 4 * i - 40, int(h * 0.93)), max(12, h // 16), stroke=None, anchor="lm")
    return paint


def _moving_sign(text: str, size: int, start: tuple[float, float], step: tuple[float, float], yaw: float,
                 roll: float, visible: range | None = None, grow: float = 0.0) -> Painter:
    plate = _sign(text, size)

    def paint(frame, i):
        if visible is not None and i not in visible:
            return frame
        scale = 1 + grow * i
        x, y = start[0] + step[0] * i, start[1] + step[1] * i
        quad = sign_quad(x, y, plate.shape[1] * scale, plate.shape[0] * scale, yaw, roll)
        return paste_warped(frame, plate, quad)
    return paint


def _timestamp(frame, i):
    h, w = frame.shape[:2]
    return draw_text(frame, f"2024-05-17 14:32:{5 + i // FPS:02d}", (w - 8, h - 8), max(11, h // 18), anchor="rb")


def _title(text: str, dim: float) -> Painter:
    def paint(frame, i):
        h, w = frame.shape[:2]
        return draw_text((frame * dim).astype(np.uint8), text, (w // 2, h // 2), max(24, h // 7), stroke=None)
    return paint


# name -> (footage, first frame, overlay?, painter)
CASES: dict[str, tuple[str, int, bool, Painter]] = {
    "subtitles_bunny": ("bigbuckbunny.mp4", 0, True,
                        lambda f, i: subtitle(f, "I think we should go now." if i < 24 else "Before it gets dark.")),
    "subtitles_bikes": ("bikes.mp4", 0, True,
                        lambda f, i: subtitle(f, "The riders climb the last hill" if i < 30 else "and the crowd cheers")),
    "subtitles_boxed_bikes": ("bikes.mp4", 180, True,
                              lambda f, i: draw_text(f, "Where are they going?", (f.shape[1] // 2, int(f.shape[0] * 0.9)),
                                                     14, fill=(255, 230, 0), stroke=None, box=(0, 0, 0))),
    "ticker_bunny": ("bigbuckbunny.mp4", 48, True, _ticker("BREAKING: rabbits take over the meadow - more at ten")),
    "ticker_bikes": ("bikes.mp4", 60, True, _ticker("RACE UPDATE: stage 5 leaders pull away on the final climb")),
    "corner_live_bunny": ("bigbuckbunny.mp4", 84, True,
                          lambda f, i: draw_text(f, "LIVE  NEWS 24", (10, 10), 16, anchor="lt", box=(200, 20, 20))),
    "corner_channel_bikes": ("bikes.mp4", 120, True,
                             lambda f, i: draw_text(f, "CH7 SPORTS", (f.shape[1] - 10, 10), 15, anchor="rt")),
    "timestamp_bikes": ("bikes.mp4", 200, True, _timestamp),
    "watermark_faint_bunny": ("bigbuckbunny.mp4", 20, True,
                              lambda f, i: draw_text(f, "studio-films.example", (f.shape[1] - 8, f.shape[0] - 6), 11,
                                                     fill=(200, 200, 200), stroke=None, anchor="rb")),
    "title_bunny": ("bigbuckbunny.mp4", 40, True, _title("THE MEADOW", 0.35)),
    "title_card_bikes": ("bikes.mp4", 90, True, _title("Chapter One", 0.0)),
    "clean_bunny": ("bigbuckbunny.mp4", 0, False, lambda f, i: f),
    "clean_bunny_late": ("bigbuckbunny.mp4", 84, False, lambda f, i: f),
    "clean_bikes": ("bikes.mp4", 0, False, lambda f, i: f),
    "clean_bikes_late": ("bikes.mp4", 150, False, lambda f, i: f),
    "sign_moving_bunny": ("bigbuckbunny.mp4", 0, False,
                          _moving_sign("BAKERY", 18, (60, 40), (2.5, 2.0), yaw=0.35, roll=9, grow=0.006)),
    "sign_moving_bikes": ("bikes.mp4", 30, False, _moving_sign("HOTEL", 16, (300, 30), (-3.0, 1.6), yaw=0.3, roll=-10)),
    "sign_static_tilted_bunny": ("bigbuckbunny.mp4", 48, False,
                                 _moving_sign("OPEN 24 HOURS", 14, (250, 90), (0, 0), yaw=0.45, roll=12)),
    "plate_small_bikes": ("bikes.mp4", 100, False, _moving_sign("AB 123 CD", 7, (200, 120), (2.0, 0.6), yaw=0.1, roll=3)),
    "short_lived_bikes": ("bikes.mp4", 160, False,
                          _moving_sign("FINISH", 16, (150, 60), (0, 0), yaw=0.0, roll=0, visible=range(18, 26))),
    "sign_upright_static_bikes": ("bikes.mp4", 40, False,
                                  _moving_sign("PARKING", 16, (190, 95), (0, 0), yaw=0.05, roll=0)),
    "sign_slight_tilt_bunny": ("bigbuckbunny.mp4", 70, False,
                               _moving_sign("GARDEN SHOP", 15, (40, 150), (3.0, -1.5), yaw=0.2, roll=3)),
    "banner_bobbing_bunny": ("bigbuckbunny.mp4", 60, False,
                             _moving_sign("WELCOME", 18, (170, 30), (0.5, 3.0), yaw=0.1, roll=2)),
}


def write_text_clips(folder: str, names: list[str] | None = None) -> list[TextClip]:
    """Write the clips of :data:`CASES` (or those ``names``) into ``folder``; what each one is."""
    os.makedirs(folder, exist_ok=True)
    cache: dict[tuple[str, int], list[np.ndarray]] = {}
    clips = []
    for name in names or list(CASES):
        video, start, overlay, paint = CASES[name]
        frames = cache.setdefault((video, start), footage(video, start))
        path = os.path.join(folder, f"{name}.mp4")
        write_clip(path, [paint(frame, i) for i, frame in enumerate(frames)])
        clips.append(TextClip(name, path, overlay))
    return clips


if __name__ == "__main__":
    for clip in write_text_clips(sys.argv[1] if len(sys.argv) > 1 else "text_clips"):
        print(f"{'overlay' if clip.overlay else 'scene  '}  {clip.path}")
