"""A pretrained text encoder (CLIP, SigLIP) with its own tokenizer."""
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from hvlm.registry import MODELS
from hvlm.structures import TextEncoding
from .hf_pretrained import HFPretrainedTower, load_tokenizer


@MODELS.register_module()
class HFTextEncoder(HFPretrainedTower):
    """The text tower of a local Hugging Face CLIP or SigLIP directory and
    the tokenizer saved beside it (``AutoTokenizer``).

    Each family is run the way it was trained, which is what makes its
    pooled embedding meaningful:

    - CLIP: causal attention (transformers applies it), padding masked,
      final layer norm, then the state at the end token is projected. The
      end token must be the one config.json's ``eos_token_id`` names, or
      CLIP would pool another position: checked at build and per batch.
    - SigLIP: texts padded to ``max_length`` and no attention mask (as in
      its training); the last position's state goes through its head.

    Args:
        pretrained (str): Local directory with weights and tokenizer.
        freeze (bool): See :class:`HFPretrainedTower`.
        unfreeze (Sequence[str]): Parameter-name patterns that train
            although frozen, e.g. ``('text_model.final_layer_norm.*',)``.
        with_cp (bool): Gradient checkpointing in trainable layers.
        embed_dims (int, optional): Expected width of the token states.
        out_dims (int, optional): Expected width of the pooled embedding.
        max_length (int, optional): Longest tokenisation (longer texts are
            truncated, keeping their end token); ``None``: the checkpoint's
            ``max_position_embeddings``.
    """

    def __init__(self,
                 pretrained: str,
                 freeze: bool = True,
                 unfreeze: Sequence[str] = (),
                 with_cp: bool = False,
                 embed_dims: Optional[int] = None,
                 out_dims: Optional[int] = None,
                 max_length: Optional[int] = None) -> None:
        super().__init__(pretrained, 'text', freeze, unfreeze, with_cp,
                         embed_dims, out_dims)
        positions = int(self.tower_cfg['max_position_embeddings'])
        self.max_length = positions if max_length is None else max_length
        if not 1 < self.max_length <= positions:
            raise ValueError(
                f'max_length={max_length} must be in 2..{positions} '
                f'({self.key_prefix}max_position_embeddings of '
                f'{pretrained}/config.json)')
        self.tokenizer = load_tokenizer(pretrained,
                                        int(self.tower_cfg['vocab_size']),
                                        self.key_prefix)
        self.eos_token_id = None
        if self.family == 'clip':
            self.eos_token_id = self._check_clip_eos()

    def _out_dims(self) -> Tuple[int, str]:
        if self.family == 'clip':
            return self.model.text_projection.out_features, 'projection_dim'
        return self.model.config.projection_size, 'projection_size'

    def _check_clip_eos(self) -> int:
        """CLIP pools at config.json's ``eos_token_id``; the tokenizer must
        end every text with that token."""
        eos = self.model.config.eos_token_id
        key = f'{self.key_prefix}eos_token_id'
        says = f'config.json {key} is {eos}'
        if eos == 2:
            # Checkpoints older than transformers' fix pool at the largest
            # id instead; right for OpenAI's vocabulary, whose end token is
            # its last id.
            eos = len(self.tokenizer) - 1
            says += (' (the old convention: CLIP pools at the largest id, '
                     f'{eos})')
        ids = self.tokenizer('a')['input_ids']
        if not ids or ids[-1] != eos:
            raise ValueError(
                f'{self.pretrained}: the tokenizer ends a text with id '
                f'{ids[-1] if ids else None} but {says}: CLIP would pool '
                'the wrong token. Save the matching tokenizer there')
        return eos

    def tokenize(self, texts: Sequence[str]) -> Dict[str, Tensor]:
        """``input_ids`` and ``attention_mask``, both ``[B, L]``, on the
        encoder's device."""
        if isinstance(texts, str):
            texts = [texts]
        padding = 'max_length' if self.family == 'siglip' else 'longest'
        batch = self.tokenizer(
            list(texts),
            padding=padding,
            truncation=True,
            max_length=self.max_length,
            return_tensors='pt')
        device = next(self.model.parameters()).device
        return dict(
            input_ids=batch['input_ids'].to(device),
            attention_mask=batch['attention_mask'].to(device))

    def forward(self,
                texts: Union[Sequence[str], Tensor],
                attention_mask: Optional[Tensor] = None) -> TextEncoding:
        """Encode texts.

        Args:
            texts (list[str] | Tensor): Strings, or ``input_ids [B, L]``
                made by :meth:`tokenize`.
            attention_mask (Tensor, optional): ``[B, L]`` with ids; all ones
                when omitted.

        Returns:
            TextEncoding: ``token_states [B, L, C]``, ``embeds [B, D]``
            and the ``attention_mask [B, L]``.
        """
        if torch.is_tensor(texts):
            input_ids = texts
            if attention_mask is None:
                attention_mask = torch.ones_like(input_ids)
        else:
            batch = self.tokenize(texts)
            input_ids, attention_mask = (batch['input_ids'],
                                         batch['attention_mask'])
        if input_ids.dim() != 2:
            raise ValueError(
                f'input_ids must be [B, L], got {tuple(input_ids.shape)}')
        if self.eos_token_id is not None:
            found = (input_ids == self.eos_token_id).any(1)
            if not bool(found.all()):
                raise ValueError(
                    f'texts {found.logical_not().nonzero().flatten().tolist()}'
                    f' have no end token (id {self.eos_token_id}), where CLIP '
                    'pools: tokenise them with this encoder\'s tokenize()')
        # SigLIP was trained without a mask over its padding.
        mask = attention_mask if self.family == 'clip' else None
        with self.grad_context():
            out = self.model(input_ids=input_ids, attention_mask=mask)
        embeds = out.text_embeds if self.family == 'clip' else \
            out.pooler_output
        return TextEncoding(
            token_states=out.last_hidden_state,  # [B, L, C]
            embeds=embeds,  # [B, D]
            attention_mask=attention_mask)
