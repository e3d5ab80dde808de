"""Vector quantisation with a learned codebook (VQ-VAE's tokenizer).

After van den Oord et al., "Neural Discrete Representation Learning"
(NeurIPS 2017). A feature ``z`` is replaced by its nearest codebook entry
``e``; the forward pass sees ``e``, the backward pass copies the gradient of
``e`` onto ``z`` (the *straight-through* estimator, since the argmin has no
gradient). Two losses move the codebook and the features toward each
other, each through one side only::

    codebook   = || sg(z) - e ||^2      (moves the entries)
    commitment = || z - sg(e) ||^2      (keeps z near its entry)

``sg`` stops the gradient; both are means over the elements, and VQ-VAE
weighs the commitment by ``beta`` (0.25).

Codebooks collapse: an entry no feature is near receives no gradient and
stays unused, and as the features move during training most entries end up
dead (measured on the SceneLLM demo: 6-10 of 256 entries in use). Dead
entries are restarted, as in Jukebox (Dhariwal et al. 2020): a moving
average of each entry's use is kept, and an entry whose average falls
below ``dead_threshold`` is moved onto a feature of the current batch.

With ``num_groups`` G > 1 the feature is cut into G equal slices, each
quantised with its own codebook (product quantisation): a token is then
G codes out of ``codebook_size`` each, ``G * log2(K)`` bits instead of
``log2(K)``, for the same number of entries per codebook.
"""
from typing import Dict, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dist import all_reduce, broadcast
from torch import Tensor


def nearest_codes(z: Tensor, codebook: Tensor) -> Tensor:
    """Index of the nearest (squared Euclidean) entry of ``codebook
    [G, K, d]`` for every slice of ``z [N, G, d]``; ``[N, G]``. Ties go to
    the lower index."""
    # ||z - e||^2 = ||z||^2 - 2 z.e + ||e||^2; ||z||^2 is constant per row
    dot = torch.einsum('ngd,gkd->ngk', z, codebook)  # [N, G, K]
    dist = codebook.pow(2).sum(-1)[None] - 2 * dot
    return dist.argmin(-1)


def vector_quantize(z: Tensor, codebook: Tensor
                    ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Quantise ``z [N, G, d]`` with ``codebook [G, K, d]``.

    Returns:
        ``(z_q, codes, codebook_loss, commitment_loss)``: ``z_q [N, G, d]``
        the entries with the straight-through gradient to ``z``, ``codes
        [N, G]``, and the two losses of the module doc (unweighted).
    """
    codes = nearest_codes(z.detach(), codebook.detach())  # [N, G]
    groups = torch.arange(codebook.shape[0], device=z.device)
    e = codebook[groups[None], codes]  # [N, G, d]
    codebook_loss = F.mse_loss(e, z.detach())
    commitment_loss = F.mse_loss(z, e.detach())
    z_q = z + (e - z).detach()
    return z_q, codes, codebook_loss, commitment_loss


class VectorQuantizer(nn.Module):
    """A codebook that quantises ``[..., dims]`` features (module doc).

    The codebook is initialised from the data: the first batch quantised in
    training writes randomly drawn features of that batch into the entries
    (cycling through them, with a little noise, when the batch has fewer
    rows than entries), so that no entry starts far from every feature and
    stays unused. The buffer ``initialised`` records that it happened and
    travels in the checkpoint. In training, ``usage`` (a buffer ``[G, K]``)
    follows each entry's assignments per batch by a moving average
    (``usage_decay``); entries below ``dead_threshold`` are restarted on
    features of the batch (module doc). Under several processes the counts
    are summed over the ranks and rank 0's new entries are broadcast, so
    the codebooks stay equal.

    Args:
        dims (int): Feature width; divisible by ``num_groups``.
        codebook_size (int): Entries per codebook (K).
        num_groups (int): Codebooks, one per slice of the feature (G).
        commitment_weight (float): ``beta``.
        codebook_weight (float): Weight of the codebook loss.
        dead_threshold (float): Restart entries whose average use per
            batch falls below it; 0 turns restarts off.
        usage_decay (float): Decay of the moving average of use.
    """

    def __init__(self,
                 dims: int,
                 codebook_size: int = 512,
                 num_groups: int = 1,
                 commitment_weight: float = 0.25,
                 codebook_weight: float = 1.0,
                 dead_threshold: float = 0.03,
                 usage_decay: float = 0.9) -> None:
        super().__init__()
        if codebook_size < 1 or num_groups < 1 or dims % num_groups:
            raise ValueError(
                f'VectorQuantizer: codebook_size={codebook_size} and '
                f'num_groups={num_groups} must be positive and dims={dims} '
                'divisible by num_groups')
        self.dims = dims
        self.codebook_size = codebook_size
        self.num_groups = num_groups
        self.commitment_weight = commitment_weight
        self.codebook_weight = codebook_weight
        self.codebook = nn.Parameter(
            torch.randn(num_groups, codebook_size, dims // num_groups))
        self.register_buffer('initialised', torch.tensor(False))
        self.dead_threshold = dead_threshold
        self.usage_decay = usage_decay
        self.register_buffer('usage', torch.ones(num_groups, codebook_size))

    @torch.no_grad()
    def _init_from(self, z: Tensor) -> None:
        """Entries from the rows of ``z [N, G, d]`` (class doc)."""
        N = z.shape[0]
        K = self.codebook_size
        pick = torch.randperm(N, device=z.device)
        pick = pick[torch.arange(K, device=z.device) % N]  # [K]
        rows = z[pick].transpose(0, 1)  # [G, K, d]
        noise = 0.01 * rows.std().clamp(min=1e-6) * torch.randn_like(rows)
        self.codebook.copy_(rows + noise * (torch.arange(
            K, device=z.device) >= N)[None, :, None])
        broadcast(self.codebook.data, 0)
        self.initialised.fill_(True)

    @torch.no_grad()
    def _restart_dead(self, z: Tensor, codes: Tensor) -> None:
        """Update ``usage`` with the batch's ``codes [N, G]`` and move the
        dead entries onto rows of ``z [N, G, d]`` (class doc)."""
        G, K = self.num_groups, self.codebook_size
        counts = torch.zeros(G, K, device=z.device)
        counts.scatter_add_(1, codes.t(), torch.ones_like(
            codes.t(), dtype=counts.dtype))
        all_reduce(counts)  # summed over the ranks
        self.usage.mul_(self.usage_decay).add_(
            (1 - self.usage_decay) * counts)
        dead = self.usage < self.dead_threshold  # [G, K]
        if not dead.any():
            return
        new = self.codebook.data.clone()
        if len(z):  # a rank with an empty batch takes rank 0's entries
            pick = torch.randint(len(z), (G, K), device=z.device)
            rows = z[pick, torch.arange(G, device=z.device)[:, None]]
            new = torch.where(dead[..., None], rows, new)  # [G, K, d]
        broadcast(new, 0)
        self.codebook.data.copy_(new)
        self.usage[dead] = 1.

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor, Dict[str, Tensor]]:
        """``x [..., dims]`` -> ``(x_q [..., dims], codes [..., G],
        losses)``; ``losses`` holds ``loss_codebook`` and
        ``loss_commitment``, already weighted."""
        lead = x.shape[:-1]
        z = x.reshape(-1, self.num_groups, self.dims // self.num_groups)
        if self.training and not bool(self.initialised) and len(z):
            self._init_from(z.detach())
        if len(z) == 0:
            if self.training and self.dead_threshold > 0:
                # every rank joins the restart's collectives
                self._restart_dead(z, z.new_zeros(0, self.num_groups,
                                                  dtype=torch.long))
            zero = x.sum() * 0. + self.codebook.sum() * 0.
            return x, x.new_zeros(*lead, self.num_groups,
                                  dtype=torch.long), dict(
                                      loss_codebook=zero,
                                      loss_commitment=zero)
        z_q, codes, cb, commit = vector_quantize(z, self.codebook)
        if self.training and self.dead_threshold > 0:
            self._restart_dead(z.detach(), codes)
        losses = dict(loss_codebook=self.codebook_weight * cb,
                      loss_commitment=self.commitment_weight * commit)
        return (z_q.reshape(x.shape), codes.reshape(*lead, self.num_groups),
                losses)

    def extra_repr(self) -> str:
        return (f'dims={self.dims}, codebook_size={self.codebook_size}, '
                f'num_groups={self.num_groups}')
