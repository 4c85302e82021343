"""The Gradio latent-space explorer: the UI (ui.py) and its launch (launch.py), nothing else;
every computation lives in crossingnets.explorer."""
