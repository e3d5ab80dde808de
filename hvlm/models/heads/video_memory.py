"""Video tokens as a memory that text heads attend to."""
from dataclasses import replace
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from hvlm.structures import VideoFeatures


def video_memory(feats: VideoFeatures) -> Tuple[Tensor, Tensor, Tensor]:
    """The final tokens of each video's clips, laid end to end.

    Returns:
        tuple:
        - ``memory [V, nc*N, C]``: the tokens of the ``nc`` clips of each
          of the ``V`` videos.
        - ``bias [V, nc*N]``: ``log(size)``, the proportional-attention bias
          (Bolya et al. 2023, "Token Merging", Sec. 3) that makes a token
          merged from ``size`` tubelets weigh as much as those tubelets.
        - ``steps [V, nc*N, 2]``: the first and last tubelet time step each
          token covers, counted over the whole video (clip ``c``'s step
          ``t`` is ``c * T0 + t``); a merged token may span several.
    """
    B, N, C = feats.tokens.shape
    nc = feats.num_clips
    T0, H0, W0 = feats.grid
    t_of_tubelet = torch.arange(
        T0 * H0 * W0, device=feats.index.device) // (H0 * W0)  # [N0]
    t_of_tubelet = t_of_tubelet.expand_as(feats.index)  # [B, N0]
    first = torch.full((B, N), T0, dtype=torch.long,
                       device=feats.index.device)
    first = first.scatter_reduce(1, feats.index, t_of_tubelet, 'amin')
    last = torch.zeros((B, N), dtype=torch.long, device=feats.index.device)
    last = last.scatter_reduce(1, feats.index, t_of_tubelet, 'amax')
    clip = torch.arange(B, device=first.device) % nc  # [B]
    steps = torch.stack([first, last], dim=-1) + (clip * T0)[:, None, None]
    memory = feats.tokens.reshape(B // nc, nc * N, C)  # [V, nc*N, C]
    bias = feats.size.to(memory.dtype).clamp_min(1).log()
    return memory, bias.reshape(B // nc, nc * N), steps.reshape(
        B // nc, nc * N, 2)


def time_features(steps: Tensor, num_steps: int, num_freqs: int) -> Tensor:
    """Fourier features of where each token lies in the sampled video.

    A token's place is the centre of the time steps it covers as a fraction
    of the ``num_steps`` steps of all clips, ``r`` in ``(0, 1)``; the
    features are ``sin(pi 2^k r)`` and ``cos(pi 2^k r)`` for ``k < num_freqs``
    (the positional encoding of Mildenhall et al. 2020, "NeRF", Sec. 5.1).
    ``cos(pi r)`` alone orders the tokens from the first step to the last;
    the higher frequencies tell neighbouring steps apart. Fractions rather
    than step indices, so a model trained on a few clips per video can read
    more clips of a longer one.

    Args:
        steps (Tensor): ``[..., 2]`` first and last step of each token (as
            :func:`video_memory` returns them).
        num_steps (int): Steps of the whole sampled video, ``nc * T0``.
        num_freqs (int): Frequencies ``F``.

    Returns:
        Tensor: ``[..., 2 * F]``, float32.
    """
    if num_steps < 1 or num_freqs < 1:
        raise ValueError(f'num_steps={num_steps} and num_freqs={num_freqs} '
                         'must be positive')
    centre = (steps[..., 0] + steps[..., 1] + 1).float() / (2 * num_steps)
    freqs = torch.pi * 2.**torch.arange(num_freqs, device=steps.device)
    angles = centre[..., None] * freqs  # [..., F]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)  # [..., 2F]


def step_means(memory: Tensor, bias: Tensor, steps: Tensor,
               num_steps: int) -> Tuple[Tensor, Tensor]:
    """One token per time step of each video: the mean of the tokens that
    cover the step, each weighted by its size (the tubelets it was merged
    from, ``exp(bias)``). A token spanning several steps counts in each.
    The temporal features of Video-ChatGPT (frame features pooled over
    space; Maaz et al. 2024, Sec. 3).

    Args:
        memory (Tensor): ``[V, M, C]`` tokens (:func:`video_memory`).
        bias (Tensor): ``[V, M]`` their ``log(size)``.
        steps (Tensor): ``[V, M, 2]`` first and last step of each token.
        num_steps (int): Steps of the sampled video, ``nc * T0``.

    Returns:
        tuple: ``[V, S, C]`` the step tokens and ``[V, S, 2]`` their steps
        (``[s, s]``); a step no token covers gets zeros.
    """
    s = torch.arange(num_steps, device=steps.device)
    covers = (steps[..., :1] <= s) & (s <= steps[..., 1:])  # [V, M, S]
    weight = covers.to(memory.dtype) * bias.exp()[..., None]
    tokens = torch.einsum('vms,vmc->vsc', weight, memory)
    tokens = tokens / weight.sum(1).clamp_min(1e-6)[..., None]
    span = s[:, None].expand(num_steps, 2)
    return tokens, span.expand(memory.shape[0], num_steps, 2)


def step_maxima(memory: Tensor,
                feats: VideoFeatures) -> Tuple[Tensor, Tensor]:
    """One token per time step of each video: the channel-wise maximum over
    the tubelets of the step, the tokens spread back onto the tubelet grid
    first (each tubelet takes the token it was merged into). The frame
    feature that :class:`ActionDetectionHead` reads with
    ``spatial_pool='max'`` (:meth:`VideoFeatures.frame_features`), of
    these tokens: a small object's tubelets keep what they say where a
    mean over the frame would dilute it.

    Args:
        memory (Tensor): ``[V, nc*N, C]`` tokens (:func:`video_memory`,
            possibly normalised).
        feats (VideoFeatures): Where they came from (its ``index``, ``grid``,
            ``num_clips``).

    Returns:
        tuple: ``[V, nc*T0, C]`` the step tokens and ``[V, nc*T0, 2]``
        their steps (``[s, s]``).
    """
    V, _, C = memory.shape
    tokens = replace(feats, tokens=memory.reshape(
        feats.tokens.shape[:2] + (C, ))).frame_features('max')  # [B, T0, C]
    num_steps = feats.num_clips * feats.grid[0]
    s = torch.arange(num_steps, device=memory.device)
    span = s[:, None].expand(num_steps, 2)
    return tokens.reshape(V, num_steps, C), span.expand(V, num_steps, 2)


def step_times(feats: VideoFeatures,
               frame_times: Sequence[float]) -> Tensor:
    """``[nc*T0, 2]`` start and end (seconds) of each tubelet time step of
    one video, from the decoded frames' times (``num_clips * num_frames``,
    clip-major, as ``SampleFrames`` writes ``frame_times``).

    A step covers frames ``t*tp .. (t+1)*tp - 1`` of its clip (cut to the
    clip; a padded step repeats the last frame); it ends one frame spacing
    (the median gap between decoded frames) after its last frame.
    """
    times = torch.as_tensor(frame_times, dtype=torch.float64).reshape(-1)
    nc, nf, tp = feats.num_clips, feats.num_frames, feats.temporal_patch
    if times.numel() != nc * nf:
        raise ValueError(f'frame_times has {times.numel()} entries, '
                         f'expected num_clips * num_frames = {nc}*{nf}')
    T0 = feats.grid[0]
    gap = times.diff().abs().median().item() if times.numel() > 1 else 0.
    t = torch.arange(T0)
    first = (t * tp).clamp_max(nf - 1)  # [T0]
    last = ((t + 1) * tp - 1).clamp_max(nf - 1)  # [T0]
    offset = (torch.arange(nc) * nf)[:, None]  # [nc, 1]
    start = times[(offset + first).reshape(-1)]  # [nc*T0]
    end = times[(offset + last).reshape(-1)] + gap  # [nc*T0]
    return torch.stack([start, end], dim=-1).float()  # [nc*T0, 2]


def step_labels(feats: VideoFeatures,
                frame_labels: Tensor) -> Tuple[Tensor, Tensor]:
    """The action labels of each time step's frames and whether an action
    starts in the step, from per-frame labels.

    Args:
        feats (VideoFeatures): The video's layout (``num_clips``,
            ``num_frames``, ``temporal_patch``, ``grid``).
        frame_labels (Tensor): ``[V, nc*F]`` class of each sampled frame,
            clip-major (``gt_frame_labels``), ``-1`` unlabelled.

    Returns:
        tuple: ``[V, nc*T0, tp]`` the labels of the frames of each step
        (frames ``t*tp .. (t+1)*tp - 1`` of its clip; ``-1`` past the
        clip's last frame) and ``[V, nc*T0]`` bool, True where one of the
        step's frames is labelled and differs from the sampled frame
        before it (the first frame of the video included): the starts of
        the runs of equal labels, one per action of the sampled video.
    """
    nc, nf, tp = feats.num_clips, feats.num_frames, feats.temporal_patch
    T0 = feats.grid[0]
    V = frame_labels.shape[0]
    if frame_labels.shape[1] != nc * nf:
        raise ValueError(f'frame labels of {frame_labels.shape[1]} frames, '
                         f'expected num_clips * num_frames = {nc}*{nf}')
    before = torch.cat([frame_labels.new_full((V, 1), -1),
                        frame_labels[:, :-1]], 1)
    start = (frame_labels >= 0) & (frame_labels != before)  # [V, nc*F]
    pad = T0 * tp - nf  # >= 0: the last step may reach past the clip
    labels = F.pad(frame_labels.view(V, nc, nf), (0, pad), value=-1)
    start = F.pad(start.view(V, nc, nf), (0, pad))
    return (labels.reshape(V, nc * T0, tp),
            start.reshape(V, nc * T0, tp).any(-1))
