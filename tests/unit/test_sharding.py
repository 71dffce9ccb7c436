"""Shard-dataset building blocks without Spark: bins, deterministic tars, T5 embeddings, window mp4s."""

import io
import os
import pickle

import av
import numpy as np
import pandas as pd
import pytest
import webdataset as wds

from curate_udfs.media.transcode import EncoderSettings
from curate_udfs.sharding import bins
from curate_udfs.sharding.packing import fill_tars
from curate_udfs.sharding.stage import _groups
from curate_udfs.sharding.tars import is_complete, write_tar
from curate_udfs.sharding.text_encoder import TextEncoderConfig, check_text_encoder, load_text_encoder
from curate_udfs.sharding.windows import cut_windows
from curate_udfs.errors import EnvironmentProblem, MediaError
from curate_udfs.testing.synthetic import write_video


@pytest.mark.parametrize("size, resolution", [((1920, 1080), "1080"), ((1080, 1920), "1080"), ((1280, 720), "720"),
                                              ((1279, 719), "lt_720"), ((384, 256), "lt_720")])
def test_resolution_bin_by_short_side(size, resolution):
    assert bins.resolution_bin(*size) == resolution


@pytest.mark.parametrize("size, aspect", [((1920, 1080), "16_9"), ((1440, 1080), "4_3"), ((1000, 1000), "1_1"),
                                          ((768, 1024), "3_4"), ((1080, 1920), "9_16"), ((650, 1000), "9_16"),
                                          ((651, 1000), "3_4"), ((1550, 1000), "4_3"), ((100, 10), "16_9"), ((101, 10), None)])
def test_aspect_ratio_bins_are_half_open_on_the_left(size, aspect):
    assert bins.aspect_ratio_bin(*size) == aspect


@pytest.mark.parametrize("frames, fps, duration", [(119, 24, None), (120, 24, "5_10"), (240, 24, "5_10"), (241, 24, "10_30"),
                                                   (720, 24, "10_30"), (721, 24, "30_inf"), (10**7, 30, "30_inf")])
def test_duration_bins_as_cosmos_curate_code(frames, fps, duration):
    assert bins.duration_bin(frames, fps) == duration  # inclusive ends, first match: 10 s is 5_10, 30 s is 10_30


def test_paths():
    d = bins.bin_path("v0", "720", "16_9", "5_10")
    assert bins.tar_path(d, "t5_xxl", 1, 7) == "v0/resolution_720/aspect_ratio_16_9/duration_5_10/t5_xxl/part_000001/000007.tar"
    key = bins.video2world_key("abc", 256, 512)
    assert key == "abc_256_511" and bins.video2world_path("metas", key) == "metas/abc_256_511.txt"


@pytest.mark.parametrize("sizes, target, min_clips, drop, tars", [
    ([40, 40, 40, 10], 100, 1, False, [0, 0, 1, 1]),
    ([40, 60, 1], 100, 1, False, [0, 0, 1]),  # exactly the target fits
    ([250, 10, 10], 100, 1, False, [0, 1, 1]),  # a clip over the target gets a tar of its own
    ([40, 40, 40], 100, 2, False, [0, 0, 1]),  # min clips alone changes nothing (as Cosmos-Curate)
    ([40, 40, 40], 100, 2, True, [0, 0, None]),  # the last tar is too small: dropped
    ([40, 40, 40, 40], 100, 2, True, [0, 0, 1, 1]),
    ([], 100, 1, True, []),
])
def test_tars_filled_greedily_by_bytes(sizes, target, min_clips, drop, tars):
    assert fill_tars(sizes, target, min_clips, drop) == tars


def test_tars_are_deterministic_and_checked(tmp_path):
    samples = [("b_0_10", "json", b'{"x": 1}'), ("a_0_10", "json", b"{}")]
    first = write_tar(str(tmp_path / "one" / "000000.tar"), samples)
    second = write_tar(str(tmp_path / "two" / "000000.tar"), samples)
    assert first.sha256 == second.sha256 and first.num_samples == 2
    assert open(first.path, "rb").read() == open(second.path, "rb").read()
    assert [s["__key__"] for s in wds.WebDataset(first.path, shardshuffle=False)] == ["b_0_10", "a_0_10"]  # order kept
    assert is_complete(first.path, first.num_bytes, first.sha256)
    with open(first.path, "r+b") as f:  # same size, one byte changed: the hash catches it
        f.seek(600)
        f.write(b"X")
    assert not is_complete(first.path, first.num_bytes, first.sha256)
    assert not is_complete(str(tmp_path / "missing.tar"), first.num_bytes, first.sha256)
    assert os.listdir(tmp_path / "one") == ["000000.tar"]  # no temporary left behind


def test_a_failed_tar_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match="contains a dot"):
        write_tar(str(tmp_path / "000000.tar"), [("a.b", "json", b"{}")])
    assert os.listdir(tmp_path) == []


def test_t5_embeddings_are_trimmed_to_the_token_count(tiny_models):
    from transformers import AutoTokenizer

    config = TextEncoderConfig(model=tiny_models["t5"], batch_size=2)
    assert check_text_encoder(config) == tiny_models["t5"]
    texts = ["a cat", "a much longer caption about a dog running on the beach"]
    arrays = load_text_encoder(config).encode(texts)
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["t5"])
    assert [a.shape for a in arrays] == [(len(tokenizer(t)["input_ids"]), 1024) for t in texts]
    assert arrays[0].dtype == np.float32
    np.testing.assert_array_equal(load_text_encoder(config).encode(["  a cat \n"])[0], alone_of(config, "a cat"))
    alone = load_text_encoder(config).encode(texts[:1])[0]
    np.testing.assert_allclose(alone, arrays[0], atol=1e-5)  # padding in the batch does not leak into the rows


def alone_of(config, text):
    return load_text_encoder(config).encode([text])[0]


def test_check_text_encoder_names_the_option(tmp_path):
    with pytest.raises(EnvironmentProblem, match="--text-encoder-model"):
        check_text_encoder(TextEncoderConfig(model=str(tmp_path / "nothing")))
    with pytest.raises(ValueError):
        TextEncoderConfig(batch_size=0)


def test_windows_are_cut_with_their_frames(tmp_path):
    clip = str(tmp_path / "clip.mp4")
    write_video(clip, [90], width=160, height=96, fps=24)
    mp4s = cut_windows(clip, [(0, 40), (40, 90)], EncoderSettings(threads=1))
    for (start, end), data in mp4s.items():
        with av.open(io.BytesIO(data)) as c:
            assert sum(1 for _ in c.decode(video=0)) == end - start
    with pytest.raises(MediaError, match="ends before"):
        cut_windows(clip, [(80, 120)], EncoderSettings(threads=1))


def test_groups_split_batches_by_tar():
    batches = [pd.DataFrame({"tar_seq": [0, 0, 1]}), pd.DataFrame({"tar_seq": [1, 2]})]
    assert [list(g["tar_seq"]) for g in _groups(iter(batches))] == [[0, 0], [1, 1], [2]]
    pickle.dumps(TextEncoderConfig())  # configs travel to executors
