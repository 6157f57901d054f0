"""Toy: a small typed language compiled to C by a compiler written in Python.

``pip install ./demos/toylang`` registers its driver; then ``import gcdlib`` finds
``gcdlib.toy`` beside the script. See ``syntax.py`` for the grammar.
"""

__all__ = ["ToyError"]

from .errors import ToyError
