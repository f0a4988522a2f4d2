"""The cluster (training) engine: the cards it schedules and the jobs it runs on them.

``layout`` (static cards, nodes, leaves, domains) and ``state`` (what is free and who holds it,
the read-only ``ClusterView`` policies see); ``training`` (the training subsystem of a
:class:`~cluster_sim.engine.simulation.Simulation`), its scheduling ``cycle``, the policy
``views`` of its jobs, the ``speed`` model (heterogeneous throughput, leaf-uplink contention) and
``failures`` (card and node failures with checkpoint/restart).
"""
