"""Card sharing between the two engines: the one card ledger of a simulation.

:class:`~.ledger.CardLedger` (``ledger.py``) keeps every card's state (idle, training, serving,
moving, down) on the simulation's clock, with time-weighted card-seconds per state and card
type. The pool policies that decide who gets which cards live in ``cluster_sim.policies.pool``.
"""

from .ledger import DOWN, IDLE, MOVING, SERVING, STATES, TRAINING, CardLedger

__all__ = ["DOWN", "IDLE", "MOVING", "SERVING", "STATES", "TRAINING", "CardLedger"]
