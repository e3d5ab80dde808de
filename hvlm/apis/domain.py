"""Which domain's modules (LoRA adapter, experts) serve one inference call.

In the test loop a video's domain comes from the router when the model
has one, else from the video's metadata (``annotations/metadata.json``,
whose domains the config's ``test_dataloader`` may restrict). A video
handed to :func:`hvlm.apis.inference_video` has no metadata of its own,
so :func:`resolve_domain` reconstructs that decision in the same order,
and :func:`use_domain` applies it through the same paths the model's
``predict`` mode reads, so a merged adapter is served too.
"""
import contextlib
from typing import Iterator, NamedTuple, Optional

import torch.nn as nn

__all__ = ['AUTO', 'DomainChoice', 'resolve_domain', 'use_domain']

# ``domain=AUTO``: decide as the test loop would.
AUTO = 'auto'


class DomainChoice(NamedTuple):
    """``name``: the domain (``None``: base weights, or the router's choice
    per clip when ``source == 'router'``); ``source``: what decided it."""
    name: Optional[str]
    source: str


def _single(domains) -> Optional[str]:
    if isinstance(domains, str):
        return domains
    domains = list(domains or ())
    return domains[0] if len(domains) == 1 else None


def _lm_domains(model: nn.Module) -> tuple:
    """The domains of the per-domain LoRA inside the heads' language
    models (an ``LLMHead``'s ``HFCausalLM``), which read each video's
    metadata domain as the backbone's adapter does."""
    from hvlm.models.language import HFCausalLM
    head = getattr(model, 'head', None)
    found = []
    for module in () if head is None else head.modules():
        if isinstance(module, HFCausalLM) and module.adapter is not None:
            found += [d for d in module.adapter.domains if d not in found]
    return tuple(found)


def resolve_domain(model: nn.Module,
                   domain: Optional[str] = AUTO,
                   video_domain: Optional[str] = None) -> DomainChoice:
    """The domain an inference call uses.

    With ``domain=AUTO``, the first of: the domain merged into the
    adapter's weights; the router, when the model has one; the video's own
    domain (``video_domain``, from its ``metadata.json``) when the model
    knows it; the one domain of the config's ``test_dataloader`` (what
    ``tools/test.py`` evaluates the config on); the one domain a
    ``freeze_base`` adapter was fine-tuned for (``train_domains``); else no
    domain. An explicit name selects it; ``None`` asks for the base model.

    Raises:
        ValueError: An unknown name, a domain for a model without domain
            modules, or a choice that contradicts a merged adapter.
    """
    domains = getattr(model, 'domains', None) or _lm_domains(model)
    adapter = getattr(model, 'adapter', None)
    router = getattr(model, 'router', None)
    merged = None if adapter is None else adapter.merged_domain
    if domain == AUTO:
        if merged is not None:
            return DomainChoice(merged, 'merged adapter')
        if router is not None:
            return DomainChoice(router.force_domain, 'router')
        if domains and video_domain in domains:
            return DomainChoice(video_domain, 'video metadata')
        cfg = getattr(model, 'cfg', None)
        dataset = {} if cfg is None else (
            cfg.get('test_dataloader') or {}).get('dataset') or {}
        tested = _single(dataset.get('domains'))
        if domains and tested in domains:
            return DomainChoice(tested, 'test_dataloader domains')
        trained = None if adapter is None or not adapter.freeze_base \
            else _single(adapter.train_domains)
        if trained is not None:
            return DomainChoice(trained, 'adapter train_domains')
        return DomainChoice(None, 'none')
    if domain is not None and not domains:
        raise ValueError(f'domain={domain!r}, but the model has no domain '
                         'modules (adapter, router, experts or LoRA in a '
                         'language model)')
    if domain is not None and domain not in domains:
        raise ValueError(f'domain={domain!r} is not one of the model\'s '
                         f'domains {tuple(domains)}')
    if merged is not None and domain != merged:
        raise ValueError(
            f'{merged!r} is merged into the adapter\'s weights, so '
            f'domain={domain!r} cannot be served; call '
            'model.adapter.unmerge() first, or leave domain to default')
    return DomainChoice(domain, 'argument')


@contextlib.contextmanager
def use_domain(model: nn.Module, choice: DomainChoice) -> Iterator[
        Optional[str]]:
    """Make the model's ``predict``-mode routing give ``choice``.

    A router is forced to the domain (or, for the base model, set aside)
    for the duration; without a router the domain is what the caller
    writes into each clip's data sample as its metadata ``domain`` (the
    yielded name). Everything is restored on exit.
    """
    router = getattr(model, 'router', None)
    if router is None or choice.source == 'router':
        yield None if choice.source == 'router' else choice.name
        return
    forced = router.force_domain
    try:
        if choice.name is None:
            model.router = None
        else:
            router.force_domain = choice.name
        yield choice.name
    finally:
        model.router = router
        router.force_domain = forced
