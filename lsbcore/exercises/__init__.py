"""Automatic checks for the notebooks' exercises: ``lsb.exercises.check("03.2", answer)``.

Every exercise of the course has an id ``"NN.k"`` (notebook NN, exercise k), a one-line question, a
hint, and a check that compares the answer with what the package computes (its closed forms and its
own functions), with a tolerance that follows from the mathematics (round-off of the answer's dtype
for a formula, a few standard errors for a Monte-Carlo comparison). :func:`check` returns a
:class:`Feedback`, shown as one line in a notebook:

* ``correct`` — the answer agrees;
* ``not attempted yet`` — the answer is the stub's placeholder (``None``, ``...``, or a function whose
  body is still ``...`` and so returns ``None``): the student edition runs to the end without errors;
* ``not yet`` — what is off (which input, by how much) and the hint. A wrong answer never raises, so a
  notebook keeps running; ``bool(feedback)`` is True only when it is correct.

:func:`exercises` lists them all (id → :class:`Exercise`); the ids are those of the notebooks' check
cells, and ``tests/test_exercises.py`` runs each check against the notebook's worked solution and
against wrong answers.
"""
from __future__ import annotations

from ._core import Exercise, Feedback, Mismatch, NotAttempted, check, exercises, get

__all__ = ["check", "exercises", "get", "Exercise", "Feedback", "Mismatch", "NotAttempted"]
