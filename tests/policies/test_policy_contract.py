"""The family-independent policy contract, over every registered policy of EVERY family.

The families are ``registry.FAMILIES`` (``pool`` included: ``separate`` and ``static_partition``,
and any pool policy registered later is checked by every test here from that moment). For each entry:

* it is a :class:`~cluster_sim.policies.base.Policy` whose ``name`` is its registry key and
  whose ``family`` is its family;
* its parameters are keyword-only (one documented exception) and each has a default; the
  constructor stores them unchanged (``get_params()`` of a default build is the defaults);
* ``repr`` is scikit-learn's: ``Name()`` by default, exactly the changed parameters otherwise;
* it round-trips without ``eval``: ``registry.make(family, {name, params: get_params()})`` is an
  equal policy, and equality is by (class, parameters);
* an unknown parameter is a :class:`~cluster_sim.errors.ConfigError` naming it and the known ones;
* it is stateless: its family's decisions leave its attributes unchanged and repeat exactly, on
  the same instance and on a fresh one (no policy declares ``reset()`` and no engine calls one).

The per-family behavioural suites are ``test_contract.py`` (training) and
``test_serving_contract.py`` (serving). The last tests here show that each check fails on a
policy that breaks it, so none of them can pass vacuously.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from cluster_sim.engine import ClusterState, layout_from_node_groups
from cluster_sim.errors import ConfigError
from cluster_sim.policies import registry
from cluster_sim.policies.base import JobsView, JobView, Policy, TenantUsage, readonly
from cluster_sim.policies.serving.base import AutoscalingView, RoutingView
from cluster_sim.policies.serving.routing import RoundRobin
from cluster_sim.policies.training.preemption import KeyedRunningView
from cluster_sim.workload.jobs import ANY_TYPE

ENTRIES = [(f, n) for f in registry.FAMILIES for n in registry.names(f)]
IDS = [f"{f}.{n}" for f, n in ENTRIES]

# Parameters that may still be given by position, and why (every other one is keyword-only).
LEGACY_POSITIONAL: dict[tuple[str, str], tuple[str, ...]] = {}  # (family, name) -> params still positional

# One valid non-default value for every declared parameter of every policy.
VARIED: dict[tuple[str, str], dict[str, Any]] = {
    ("admission", "tenant_quota"): {"quota_cards": 8.0, "per_tenant": {"b": 2.0}},
    ("ordering", "sjf"): {"by": "card_seconds"},
    ("ordering", "tiresias"): {"thresholds": (100.0, 1000.0), "starve": 2.0},
    ("placement", "fragmentation_aware"): {"max_classes": 8},
    ("preemption", "priority"): {"min_priority_gap": 2},
    ("preemption", "order"): {"min_key_gap": 0.5},
    ("routing", "random"): {"seed": 7},
    ("routing", "least_loaded"): {"metric": "kv"},
    ("routing", "prefix_aware"): {"load_weight": 0.0, "running_weight": 2.0},
    ("autoscaling", "queue_driven"): {"target_outstanding": 4.0, "min_replicas": 2, "initial_replicas": 1,
                                      "interval_s": 5.0, "warmup_s": 0.0, "lead_s": 300.0, "window_s": 120.0},
    ("autoscaling", "latency_driven"): {"upper": 0.9, "lower": 0.2, "step": 2, "min_replicas": 2,
                                        "initial_replicas": 3, "interval_s": 2.0, "warmup_s": 1.0},
    ("pool", "static_partition"): {"inference_cards": {"h100-sxm": 8}, "inference_fraction": 0.5,
                                   "tenant_cards": {"team-a": {"h100-sxm": 4}}},
    **{("pool", n): {"min_replicas": 2, "headroom": 1, "lend_after_s": 60.0, "storage_gbyte_per_s_per_node": 10.0,
                     "storage_gbyte_per_s": 100.0, "notice_s": 30.0, "checkpoint_interval_s": 600.0,
                     "checkpoint_gbyte_per_card": 4.0, "share_slots": True, "tenant_cards": {"team-a": 8}}
        for n in ("shared_pool", "peak_shaving")},
}


# ---- the checks (plain functions: run over the registry, and over broken policies below) -----
def check_identity(family: str, name: str) -> None:
    cls = registry.FAMILIES[family][name]
    assert isinstance(cls, type) and issubclass(cls, Policy), f"{family}.{name}: not a Policy"
    assert cls.name == name, f"{family}.{name}: class name attribute is {cls.name!r}"
    assert cls.family == family, f"{family}.{name}: class family attribute is {cls.family!r}"
    p = registry.make(family, name)
    assert type(p) is cls and p.name == name and p.family == family


def check_signature(family: str, name: str) -> None:
    cls = registry.FAMILIES[family][name]
    init = cls.__init__
    params = [] if init is object.__init__ else list(inspect.signature(init).parameters.values())[1:]
    legacy = LEGACY_POSITIONAL.get((family, name), ())
    for p in params:
        if p.name in legacy:
            assert p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, f"{family}.{name}: drop {p.name} from LEGACY"
        else:
            assert p.kind is inspect.Parameter.KEYWORD_ONLY, f"{family}.{name}: {p.name} is not keyword-only"
        assert p.default is not inspect.Parameter.empty, f"{family}.{name}: {p.name} has no default"
    assert dict(cls.param_defaults) == {p.name: p.default for p in params}
    built = registry.make(family, name).get_params()
    assert list(built) == list(cls.param_defaults)
    assert all(repr(built[k]) == repr(v) for k, v in cls.param_defaults.items()), \
        f"{family}.{name}: the constructor does not store its parameters unchanged: {built}"


def check_repr_and_roundtrip(family: str, name: str) -> None:
    cls = registry.FAMILIES[family][name]
    varied = VARIED.get((family, name), {})
    assert set(varied) == set(cls.param_defaults), \
        f"{family}.{name}: give VARIED a non-default value for each of {list(cls.param_defaults)}"
    default = registry.make(family, name)
    assert repr(default) == f"{cls.__name__}()"
    builds = [default, registry.make(family, {"name": name, "params": varied})]
    for k, v in varied.items():
        one = registry.make(family, {"name": name, "params": {k: v}})
        assert repr(one) == f"{cls.__name__}({k}={v!r})"
        assert one != default
        builds.append(one)
    if varied:
        inner = ", ".join(f"{k}={v!r}" for k, v in varied.items())  # VARIED is in signature order
        assert repr(builds[1]) == f"{cls.__name__}({inner})"
        assert builds[1] != default
    for p in builds:  # eval-free round trip through the registry, from what the policy reports
        again = registry.make(p.family, {"name": p.name, "params": p.get_params()})
        assert again == p and repr(again) == repr(p) and hash(again) == hash(p)
    others = [c for c in registry.FAMILIES[family].values() if c is not cls]
    assert all(default != c() for c in others)  # equality is by class too


def check_unknown_param(family: str, name: str) -> None:
    cls = registry.FAMILIES[family][name]
    known = ", ".join(cls.param_defaults) if cls.param_defaults else "none (it takes no parameters)"
    with pytest.raises(ConfigError) as err:
        registry.make(family, {"name": name, "params": {"bogus_knob": 1}}, where="exp.yaml: policy.x")
    assert str(err.value) == (f"exp.yaml: policy.x.params.bogus_knob: unknown parameter of {family} "
                              f"policy {name!r}; known: {known}")


# ---- one driver per family: the family's decisions on fixed views ------------------------------
def _job(i: int = 9, num: int = 2, milli: int = 1000, mask: int = int(ANY_TYPE), prio: int = 2,
         attained: float = 0.0, single: bool = False) -> JobView:
    return JobView(i, i, num, milli, mask, 0, i % 2, prio, True, float(i), 100.0 + i, attained, single)


def _state() -> ClusterState:
    st = ClusterState(layout_from_node_groups([("h100-sxm", 8, 2), ("a100-80gb", 4, 2)], nodes_per_leaf=2))
    st.allocate(0, [0, 1, 2], 1000, "setup")
    st.allocate(1, [16], 300, "setup")
    st.allocate(2, list(range(8, 16)), 1000, "setup")
    for k in range(12):
        st.push_request(1 + k % 4, 1000 if k % 3 else 400, int(ANY_TYPE))
    return st


def _admission(p: Any) -> list[Any]:
    usage = TenantUsage(("a", "b"), readonly(np.array([6.0, 1.0])), readonly(np.array([1.0, 0.0])))
    return [(d.accept, d.reason) for d in (p.admit(_job(i, num=n), usage) for i, n in ((1, 1), (2, 4), (3, 900)))]


def _ordering(p: Any) -> list[Any]:
    cols = [np.arange(4), np.array([3.0, 1.0, 2.0, 0.5]), np.array([10.0, 3e4, 20.0, 5.0]),
            np.array([1, 8, 2, 4], np.int32), np.array([1000, 1000, 500, 1000], np.int16),
            np.array([0, 2, 1, 0], np.int8), np.zeros(4, np.int16), np.array([0.0, 900.0, 0.0, 50.0]),
            np.zeros(4, np.int8)]
    out: list[Any] = [tuple(p.keys(JobsView(*(readonly(c) for c in cols))).keys.tolist())]
    for hook in ("rerank_after_s", "promote_after_s"):
        if hasattr(p, hook):
            out.append(tuple(getattr(p, hook)(_job(i, num=4, attained=a)) for i, a in ((1, 0.0), (2, 900.0))))
    return out


def _placement(p: Any) -> list[Any]:
    view = _state().view
    jobs = (_job(), _job(num=1, milli=250), _job(num=6, mask=0b10), _job(num=12), _job(num=3, single=True))
    return [None if d is None else tuple(d.cards.tolist()) for d in (p.place(j, view) for j in jobs)]


def _preemption(p: Any) -> list[Any]:
    view = _state().view
    running = KeyedRunningView(readonly(np.array([0, 2])), readonly(np.array([0, 1])),
                               readonly(np.array([True, True])), readonly(np.array([0.0, 1.0])),
                               readonly(np.array([1000, 1000])),
                               (readonly(np.array([0, 1, 2])), readonly(np.arange(8, 16))),
                               key=readonly(np.array([3.0, 2.0])), job_key=0.0)
    out: list[Any] = []
    for job in (_job(num=14, prio=5), _job(num=2, prio=1), _job(num=1, milli=500, prio=5)):
        out.append(p.select(job, running, view).victims)
        for hook in ("eligible", "candidates"):
            if hasattr(p, hook):
                d = getattr(p, hook)(job, running) if hook == "eligible" else p.candidates(job, running, view)
                out.append(tuple(np.asarray(d).tolist()) if hook == "eligible" else d.victims)
    return out


def _routing(p: Any) -> list[Any]:
    def arr(v: list[int]) -> np.ndarray:
        return readonly(np.asarray(v, dtype=np.int64))
    out = []
    for seq in range(6):
        view = RoutingView(now_s=1.0 + seq, service="chat", pool="colocated", sequence=seq, prompt_tokens=1500,
                           output_tokens=50, replicas=arr([3, 4, 6]), queue_len=arr([2, 0, seq % 3]),
                           running=arr([5, 7, 1]), pending_prefill_tokens=arr([4000, 0, 900 * seq]),
                           kv_used_tokens=arr([100, 900, 50]), kv_capacity_tokens=arr([1000, 1000, 1000]),
                           cached_blocks=arr([0, 1, 3]), block_tokens=512)
        out.append(p.route(view).replica)
    return out


def _autoscaling(p: Any) -> list[Any]:
    out: list[Any] = [p.interval_s]
    for now, q, ttft in ((0.0, 0, math.nan), (30.0, 40, 2.0), (60.0, 0, 0.1), (90.0, 3, math.nan)):
        view = AutoscalingView(now_s=now, service="chat", pool="colocated", max_replicas=8, active=3, warming=1,
                               queue_len=q, running=2 * q, arrival_rate_per_s=1.0, ttft_p90_s=ttft,
                               tpot_p90_s=0.02, slo_ttft_s=1.0, slo_tpot_s=0.1, kv_occupancy=0.5)
        d = p.scale(view)
        out.append((d.target_replicas, d.warmup_s))
    return out


def _pool(p: Any) -> list[Any]:
    from cluster_sim.policies.pool.partition import PoolView

    out: list[Any] = []
    types = np.array([0] * 16 + [1] * 8)
    domains = np.array([1] * 8 + [0] * 8 + [2] * 4 + [3] * 4)  # domain order differs from card order
    for demand in ({"h100-sxm": 8}, {"h100-sxm": 4, "a100-80gb": 2}, {}):
        plan = p.partition(PoolView(("h100-sxm", "a100-80gb"), types, domains, demand))
        out.append((plan.shared, tuple(plan.inference_cards.tolist()), tuple(sorted(plan.inference_by_type.items()))))
    if getattr(p, "dynamic", False):  # the run-time decisions of a sharing policy
        from cluster_sim.policies.pool.sharing import OffSlot, SlotView

        slots = [SlotView(0, 0, 8, 1, True, 90.0), SlotView(1, 8, 0, 0, True, 0.0), SlotView(2, 0, 8, 2, False, 5.0),
                 SlotView(3, 4, 4, 1, True, 10.0)]
        out.append(tuple(s.slot for s in p.start_order(slots)))
        out.append(tuple(p.lend([OffSlot(5, 0.0), OffSlot(6, 950.0), OffSlot(7, 400.0)], now_s=1000.0)))
        out.append(p.transfer_s(1e12, 4))
    return out


DRIVERS: dict[str, Callable[[Any], list[Any]] | None] = {
    "admission": _admission, "ordering": _ordering, "placement": _placement, "preemption": _preemption,
    "routing": _routing, "autoscaling": _autoscaling,
    "pool": _pool,
}


def _attrs(p: Any) -> dict[str, Any]:
    return copy.deepcopy(vars(p))


def _same_attrs(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(
        np.array_equal(a[k], b[k]) if isinstance(a[k], np.ndarray) else repr(a[k]) == repr(b[k]) for k in a)


def check_stateless(family: str, name: str) -> None:
    driver = DRIVERS.get(family)
    if driver is None:
        pytest.fail(f"{family}.{name}: no contract driver for family {family!r} in DRIVERS; add one")
    p = registry.make(family, {"name": name, "params": VARIED.get((family, name), {})})
    before = _attrs(p)
    first = driver(p)
    assert _same_attrs(before, _attrs(p)), f"{family}.{name}: a decision changed the policy's attributes"
    assert driver(p) == first, f"{family}.{name}: the same instance decided differently the second time"
    fresh = registry.make(family, {"name": name, "params": p.get_params()})
    assert driver(fresh) == first


CHECKS = (check_identity, check_signature, check_repr_and_roundtrip, check_unknown_param, check_stateless)


# ---- the contract over the registry ------------------------------------------------------------
def test_the_suite_iterates_every_family_pool_included():
    assert list(registry.FAMILIES) == ["admission", "ordering", "placement", "preemption", "routing",
                                       "autoscaling", "pool"]
    assert set(DRIVERS) == set(registry.FAMILIES)
    assert {f for f, _ in ENTRIES} == {f for f in registry.FAMILIES if registry.names(f)}
    assert len(ENTRIES) == sum(len(t) for t in registry.FAMILIES.values()) >= 22
    assert set(VARIED) <= set(ENTRIES) and set(LEGACY_POSITIONAL) <= set(ENTRIES)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("family,name", ENTRIES, ids=IDS)
def test_policy_contract(family, name, check):
    check(family, name)


def test_a_pool_policy_is_covered_as_soon_as_it_is_registered(monkeypatch):
    class Halves(Policy):
        name, family = "halves", "pool"

        def __init__(self, *, training_share: float = 0.5) -> None:
            self.training_share = training_share

    monkeypatch.setitem(registry.FAMILIES["pool"], "halves", Halves)
    monkeypatch.setitem(VARIED, ("pool", "halves"), {"training_share": 0.75})
    assert ("pool", "halves") in [(f, n) for f in registry.FAMILIES for n in registry.names(f)]
    for check in CHECKS[:-1]:
        check("pool", "halves")
    with pytest.raises(AttributeError, match="partition"):  # the pool driver calls its decision
        check_stateless("pool", "halves")


def test_pool_driver_sees_the_partitions():
    sep, part = (_pool(registry.make("pool", n)) for n in ("separate", "static_partition"))
    assert all(not shared and cards == () for shared, cards, _ in sep)
    # default: exactly the demand, whole domains first (domain 0 = cards 8..15, then domain 1)
    assert part[0] == (True, tuple(range(8, 16)), (("h100-sxm", 8),))
    assert part[1] == (True, (8, 9, 10, 11, 16, 17), (("a100-80gb", 2), ("h100-sxm", 4)))
    assert part[2] == (True, (), ())


# ---- every check can fail ----------------------------------------------------------------------
class _Stateful(Policy):
    name, family = "round_robin", "routing"

    def __init__(self) -> None:
        self.calls = 0

    def route(self, view: RoutingView) -> Any:
        self.calls += 1
        return RoundRobin().route(view)


class _Positional(Policy):
    name, family = "random", "routing"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed


class _Rescaling(Policy):
    name, family = "random", "routing"

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed + 1  # does not store its parameter unchanged: no round trip


class _Misnamed(Policy):
    name, family = "rr", "routing"


@pytest.mark.parametrize("broken,key,check", [
    (_Misnamed, "round_robin", check_identity),
    (_Positional, "random", check_signature),
    (_Rescaling, "random", check_signature),
    (_Rescaling, "random", check_repr_and_roundtrip),
    (_Stateful, "round_robin", check_stateless),
], ids=["misnamed", "positional", "rescaling-signature", "rescaling-roundtrip", "stateful"])
def test_each_check_fails_on_a_policy_that_breaks_it(monkeypatch, broken, key, check):
    check("routing", key)  # the registered policy passes
    monkeypatch.setitem(registry.FAMILIES["routing"], key, broken)
    with pytest.raises(AssertionError):
        check("routing", key)


def test_bad_declarations_fail_at_class_definition():
    for init, why in ((lambda self, x: None, "needs a default"), (lambda self, *a: None, "are named"),
                      (lambda self, *, name="x": None, "reserved"), (lambda self, **kw: None, "are named")):
        with pytest.raises(TypeError, match=why):
            type("Bad", (Policy,), {"__init__": init})


def test_legacy_registry_name_and_the_former_params_mixin_still_work():
    from cluster_sim.policies.base import Params

    class Old(Params):
        registry_name = "old_style"

    assert Params is Policy and Old.name == "old_style" and Old().name == "old_style" and repr(Old()) == "Old()"


def test_make_accepts_every_ref_form_and_refuses_malformed_ones():
    ref = type("Ref", (), {"name": "least_loaded", "params": {"metric": "tokens"}})()
    forms = ("least_loaded", {"name": "least_loaded"}, {"name": "least_loaded", "params": None}, ref)
    built = [registry.make("routing", r) for r in forms]
    assert [repr(b) for b in built] == ["LeastLoaded()"] * 3 + ["LeastLoaded(metric='tokens')"]
    with pytest.raises(ConfigError, match=r"^policy\.routing\.params: expected a mapping, got list$"):
        registry.make("routing", {"name": "random", "params": [1]})
    with pytest.raises(ConfigError, match=r"^policy\.routing: expected a policy name \(a string\), got 3$"):
        registry.make("routing", {"name": 3})
    with pytest.raises(ConfigError, match=r"^p\.params: .*must be"):  # the constructor's ValueError
        registry.make("ordering", {"name": "tiresias", "params": {"thresholds": [5.0, 1.0]}}, where="p")
