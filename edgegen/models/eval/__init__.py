"""Evaluation of generative models against published protocols (TimeGAN discriminative/predictive scores)."""
