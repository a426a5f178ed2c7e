"""Minimal stand-in for the reference ``learnware`` package inside a learnware runtime.

Why: reference-template learnwares do ``from learnware.model import BaseModel``; installing the real package
(latest from PyPI, with its heavy pins) into every environment is what the reference does and what we avoid.
"""

__version__ = "0.0.0+lwdock-shim"
