"""The Gradio latent-space explorer (UI only; the logic lives in crossingnets.explorer)."""
