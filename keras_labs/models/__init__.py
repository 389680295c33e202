"""Reusable functional-API model builders shared by several labs. A builder takes explicit
arguments (shapes, widths, or a small spec dataclass from `models.specs`), never a lab's config;
nothing here imports a lab. `specs` holds the names and specs the builders accept without
importing TensorFlow; every other module imports Keras at its top.
"""
