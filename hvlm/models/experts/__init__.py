"""Domain experts and the router that picks them (registry: ``MODELS``)."""
from .domain_experts import DomainExperts
from .domain_router import DomainRouter, Routing, load_balancing_loss

__all__ = ['DomainExperts', 'DomainRouter', 'Routing', 'load_balancing_loss']
