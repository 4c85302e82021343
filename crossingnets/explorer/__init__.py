"""Pure functions behind the latent-space explorer app, one module per tab (upload, latent, walk)
beside what they share: the loaded model's latent space (space.py) and the figures (figures.py)."""
