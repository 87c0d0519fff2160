"""Hub publishing: a model card for each trained adapter (kmedqa.hub.card)."""
