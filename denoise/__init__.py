"""denoise: a deep-learning image-denoising experiment suite (noisy = clean + noise; learn noisy -> clean)."""

from denoise.config.resolvers import register_resolvers

__version__ = "0.1.0"

register_resolvers()
