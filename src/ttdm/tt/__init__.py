"""Tensor trains in torch: basis functions, TT algebra, ALS and Riemannian optimisation on fixed-rank TTs.

Imports point downward: ``models.tt`` and ``train`` use this package; it uses only torch (and teneva for
conversions and as the reference in tests).
"""
