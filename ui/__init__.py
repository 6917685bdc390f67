"""The web layer: the Gradio page over vaegan.explorer.Explorer (README, "Architecture")."""
