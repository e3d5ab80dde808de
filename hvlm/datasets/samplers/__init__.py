from .domain_weighted_sampler import DomainWeightedSampler, read_domains
from .seeded_sampler import SeededSampler

__all__ = ['DomainWeightedSampler', 'SeededSampler', 'read_domains']
