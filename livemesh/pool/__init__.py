"""Many Live sessions as supervised actors in one nursery: admission, supervision, rotation.

Small modules with one job each; ``pool.py`` wires them together behind :func:`open_pool`.
"""
