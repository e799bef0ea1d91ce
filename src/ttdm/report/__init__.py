"""Figures, tables and the paper, rendered from result files only (never from models)."""
