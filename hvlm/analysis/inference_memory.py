"""Peak memory of ``tools/inference.py`` as a video gets longer.

``tools/analysis_tools/benchmark_inference_memory.py`` is the CLI. The
promise under test is the README's: inference streams a video clip by clip
and keeps bounded state, so its peak resident memory should not grow with
the video's length beyond the few numbers kept per decoded frame.

* :func:`loop_video` makes a long video from a short one by playing it
  ``repeats`` times in a row and encoding the result for real (h264 with
  PyAV), so decoding costs what it costs on a real long file.
* :func:`peak_rss_of_inference` runs the inference tool on one video in a
  fresh process and reads that process's peak resident set size from
  ``wait4`` (``ru_maxrss``): each length starts from a clean interpreter,
  and nothing measured in one run leaks into the next.
* :func:`benchmark_inference_memory` does both for every length and reports
  each peak beside the 1x run of the same benchmark.
"""
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence

__all__ = [
    'loop_video', 'peak_rss_of_inference', 'benchmark_inference_memory',
    'format_inference_memory'
]

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'inference.py')


def loop_video(src: str, dst: str, repeats: int) -> Dict[str, float]:
    """Write ``src`` played ``repeats`` times in a row to ``dst`` (h264).

    The source is decoded once and kept as frames (a demo video is a few
    MB of pixels); the copies are encoded one frame at a time, so writing a
    long video needs no more memory than a short one.

    Args:
        src (str): A short video.
        dst (str): The ``.mp4`` to write.
        repeats (int): How many times ``src`` plays (>= 1).

    Returns:
        dict: ``frames``, ``fps`` and ``duration`` (s) of ``dst``.
    """
    import av
    if repeats < 1:
        raise ValueError(f'repeats={repeats} must be >= 1')
    with av.open(src) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 10)
        frames = [f.to_ndarray(format='rgb24')
                  for f in container.decode(stream)]
    if not frames:
        raise ValueError(f'{src} has no video frames')
    height, width = frames[0].shape[:2]
    with av.open(dst, 'w') as container:
        stream = container.add_stream('libx264', rate=round(fps))
        stream.width, stream.height = width, height
        stream.pix_fmt = 'yuv420p'
        stream.options = {'preset': 'ultrafast'}
        for _ in range(repeats):
            for frame in frames:
                container.mux(stream.encode(
                    av.VideoFrame.from_ndarray(frame, format='rgb24')))
        container.mux(stream.encode())
    total = len(frames) * repeats
    return dict(frames=total, fps=round(fps), duration=total / round(fps))


def peak_rss_of_inference(video: str,
                          config: str,
                          checkpoint: str,
                          args: Sequence[str] = (),
                          threads: Optional[int] = None) -> Dict[str, object]:
    """Run ``tools/inference.py`` on ``video`` in a fresh process.

    Args:
        video, config, checkpoint (str): The tool's positional arguments.
        args (Sequence[str]): More of its options (``--task``, ...).
        threads (int, optional): ``OMP_NUM_THREADS`` of the run.

    Returns:
        dict: ``peak_rss_mb`` (the process's high-water mark of resident
        memory), ``seconds``, and from its JSON ``num_frames``,
        ``num_clips`` and ``state_bytes``.

    Raises:
        RuntimeError: The tool failed; its stderr's end is in the message.
    """
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    env['PYTHONPATH'] = os.pathsep.join(
        [REPO] + [p for p in [env.get('PYTHONPATH')] if p])
    if threads is not None:
        env['OMP_NUM_THREADS'] = str(threads)
    with tempfile.TemporaryFile('w+') as out, \
            tempfile.TemporaryFile('w+') as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, TOOL, video, config, checkpoint, *args],
            stdout=out, stderr=err, env=env, cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f'inference.py exited {proc.returncode} on '
                           f'{video}:\n{stderr[-3000:]}')
    result = json.loads(stdout)
    # ru_maxrss is in KiB on Linux
    return dict(
        peak_rss_mb=usage.ru_maxrss / 1024,
        seconds=seconds,
        num_frames=result['num_frames'],
        num_clips=result['num_clips'],
        state_bytes=result['memory']['state_bytes'])


def benchmark_inference_memory(
        video: str,
        config: str,
        checkpoint: str,
        repeats: Sequence[int] = (1, 10, 100),
        args: Sequence[str] = (),
        threads: Optional[int] = None,
        work_dir: Optional[str] = None,
        log: Callable[[str], None] = lambda line: None) -> Dict[str, object]:
    """Peak RSS of inference on ``video`` looped ``repeats`` times each.

    The 1x run (``video`` itself, re-encoded like the others) is always
    measured and is the baseline of the ratios.

    Args:
        video (str): The short video to loop.
        config, checkpoint (str): The model.
        repeats (Sequence[int]): Lengths in multiples of ``video``.
        args (Sequence[str]): Options passed to ``tools/inference.py``.
        threads (int, optional): ``OMP_NUM_THREADS`` of every run.
        work_dir (str, optional): Where the long videos go; a temporary
            directory (removed afterwards) when omitted.
        log (callable): Receives a line per finished run.

    Returns:
        dict: ``runs`` (``repeats``, ``peak_rss_mb``, ``ratio`` to 1x and the
        fields of :func:`peak_rss_of_inference`), and the settings.
    """
    repeats = sorted(set(int(r) for r in repeats) | {1})
    runs: List[dict] = []
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        for r in repeats:
            path = osp.join(tmp, f'x{r}.mp4')
            made = loop_video(video, path, r)
            run = dict(repeats=r, duration=made['duration'],
                       **peak_rss_of_inference(path, config, checkpoint,
                                               args, threads))
            os.remove(path)
            run['ratio'] = run['peak_rss_mb'] / (
                runs[0]['peak_rss_mb'] if runs else run['peak_rss_mb'])
            runs.append(run)
            log(_row(run))
    return dict(video=video, config=config, checkpoint=checkpoint,
                args=list(args), threads=threads, runs=runs)


_HEADER = (f'{"length":>7} {"frames":>8} {"clips":>6} {"peak RSS MB":>12} '
           f'{"vs 1x":>6} {"state B":>9} {"time s":>7}')


def _row(run: dict) -> str:
    return (f'{str(run["repeats"]) + "x":>7} {run["num_frames"]:>8} '
            f'{run["num_clips"]:>6} {run["peak_rss_mb"]:>12.0f} '
            f'{run["ratio"]:>6.2f} {run["state_bytes"]:>9} '
            f'{run["seconds"]:>7.1f}')


def format_inference_memory(result: dict) -> str:
    """The runs as a table, the 1x baseline first."""
    lines = [f'video {result["video"]} looped; config {result["config"]}',
             _HEADER]
    lines += [_row(run) for run in result['runs']]
    return '\n'.join(lines)
