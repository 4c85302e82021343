"""Pure functions behind the latent-space explorer app: image -> pose, latent -> figures."""
