"""The capacity gate's rules (core.capacity), pure: admission within each limit, who goes next,
what a refusal teaches, and how slots come back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from seedance_pipeline.core.capacity import (
    Gate,
    GateConfig,
    Limit,
    ModelLimits,
    Waiter,
    limit_of_refusal,
)

T0 = datetime(2026, 12, 1, tzinfo=UTC)
MINI = "dreamina-seedance-2-0-mini-260615"
FAST = "dreamina-seedance-2-0-fast-260128"
LIMITS = ModelLimits(concurrency=3, rpm=180, expected_latency_seconds=30)


def gate(**config: object) -> Gate:
    cfg = GateConfig(**{"queued_per_account": 120, "headroom_per_model": 1, **config})
    return Gate(route="byteplus", config=cfg, queued_learned=float(cfg.queued_per_account))


def ask(
    g: Gate,
    job: str,
    *,
    model: str = MINI,
    priority: int = 3,
    key: str = "",
    limits: ModelLimits = LIMITS,
) -> None:
    """A job's request, carrying its model's ceilings (as every real request does)."""
    waiter = Waiter(job_id=job, model_id=model, priority=priority, fairness_key=key, since=T0)
    g.request(waiter, limits)


def granted(g: Gate, at: datetime = T0) -> list[str]:
    return [grant.job_id for grant in g.admit(at)]


class TestAdmission:
    def test_concurrency_plus_headroom_are_in_flight_per_model(self) -> None:
        g = gate()
        for i in range(6):
            ask(g, f"j{i}")
        assert granted(g) == ["j0", "j1", "j2", "j3"]
        assert g.blocked_by(g.models[MINI], T0) == Limit.CONCURRENCY
        assert g.waiting() == 2

    def test_a_release_lets_the_next_one_in(self) -> None:
        g = gate()
        for i in range(5):
            ask(g, f"j{i}")
        granted(g)
        later = T0 + timedelta(seconds=1)  # a task later: the pace (180/min) has refilled
        g.release("j0", task_id="t0", still_running=False, now=later)
        assert granted(g, later) == ["j4"]

    def test_models_have_their_own_slots(self) -> None:
        g = gate()
        for i in range(4):
            ask(g, f"m{i}")
        ask(g, "f0", model=FAST)
        assert sorted(granted(g)) == ["f0", "m0", "m1", "m2", "m3"]

    def test_a_repeated_request_is_one_request(self) -> None:
        g = gate()
        ask(g, "j0")
        ask(g, "j0")
        assert g.waiting() == 1
        granted(g)
        ask(g, "j0")
        assert g.waiting() == 0

    def test_creates_per_minute_hold_the_rest_until_the_window_moves(self) -> None:
        g = gate()
        for i in range(4):
            ask(g, f"j{i}", limits=ModelLimits(concurrency=100, rpm=2))
        assert granted(g) == ["j0", "j1"]
        assert g.blocked_by(g.models[MINI], T0) == Limit.RPM
        assert g.next_wake(T0) == T0 + timedelta(seconds=60)
        assert granted(g, T0 + timedelta(seconds=61)) == ["j2", "j3"]

    def test_creates_are_paced_at_the_learned_rate_after_a_burst(self) -> None:
        """A minute's creates are spread over the minute once the first burst (the model's
        slots) is out: a window that admits them in clumps sees the clump age out at once a
        minute later, and the provider, whose clock is the creates' arrival, refuses the lot."""
        g = gate(headroom_per_model=1)
        fast = ModelLimits(concurrency=5, rpm=600)  # 10 creates a second
        for i in range(20):
            ask(g, f"j{i}", limits=fast)
        assert len(granted(g)) == 6  # the slots: 5 + 1
        for i in range(6):
            g.release(f"j{i}", task_id=f"t{i}", still_running=False, now=T0)
        assert granted(g) == []  # slots free, but the pace allows no second clump
        assert g.blocked_by(g.models[MINI], T0) == Limit.RPM
        assert g.next_wake(T0) == T0 + timedelta(seconds=0.1)
        assert granted(g, T0 + timedelta(seconds=0.25)) == ["j6", "j7"]

    def test_the_account_queue_cap_spans_every_model(self) -> None:
        g = gate(queued_per_account=2, headroom_per_model=5)
        for i in range(6):
            ask(g, f"m{i}")
            ask(g, f"f{i}", model=FAST)
        admitted = granted(g)
        # 3 run per model; beyond that only 2 may queue at the provider over both models.
        assert len(admitted) == 3 + 3 + 2
        assert g.queued_at_provider() == 2


class TestWhoGoesNext:
    def test_priority_goes_first(self) -> None:
        g = gate(headroom_per_model=0)
        for i in range(5):
            ask(g, f"batch{i}", priority=4, key="b")
        ask(g, "interactive", priority=2)
        assert "interactive" in granted(g)

    def test_fairness_keys_take_turns(self) -> None:
        g = gate(headroom_per_model=0)
        four = ModelLimits(concurrency=4, rpm=1000)
        for i in range(4):
            ask(g, f"a{i}", key="batch-a", limits=four)
        for i in range(4):
            ask(g, f"b{i}", key="batch-b", limits=four)
        assert granted(g) == ["a0", "b0", "a1", "b1"]

    def test_place_and_ahead_estimate(self) -> None:
        g = gate(headroom_per_model=0)
        for i in range(5):
            ask(g, f"j{i}")
        granted(g)
        assert g.place("j3") == 1 and g.place("j4") == 2
        late = Waiter(job_id="late", model_id=MINI, since=T0)
        assert g.ahead_of(late) == 2

    def test_withdraw_forgets_a_waiter(self) -> None:
        g = gate(headroom_per_model=0)
        for i in range(5):
            ask(g, f"j{i}")
        granted(g)
        g.withdraw("j3")
        assert g.place("j3") is None and g.waiting() == 1


class TestRefusals:
    def test_codes_name_their_limit(self) -> None:
        assert limit_of_refusal("RateLimitExceeded.QueuedTaskLimitExceeded") == Limit.QUEUED
        assert limit_of_refusal("ModelAccountRpmRateLimitExceeded") == Limit.RPM
        assert limit_of_refusal("RateLimitExceeded.EndpointRPMExceeded") == Limit.RPM
        assert limit_of_refusal("SomethingNew") == Limit.RPM

    @staticmethod
    def _minute_of_creates(g: Gate, n: int, rpm: int = 300) -> None:
        """`n` creates granted in one window (a ceiling of `rpm`, no concurrency limit)."""
        for i in range(n):
            ask(g, f"j{i}", limits=ModelLimits(concurrency=1000, rpm=rpm))
        assert len(granted(g)) == n

    def test_an_rpm_refusal_halves_at_most_and_requeues_at_the_head(self) -> None:
        g = gate()
        self._minute_of_creates(g, 41)
        g.refused("j40", "ModelAccountRpmRateLimitExceeded", 5.0, T0)
        state = g.models[MINI]
        assert state.rpm_learned == 150  # 40 of a learned 300: maybe other clients, so halve
        assert g.place("j40") == 1
        assert state.paused_until == T0 + timedelta(seconds=5)
        assert g.blocked_by(state, T0) == Limit.RPM

    def test_a_refusal_of_our_own_traffic_cuts_straight_under_its_window(self) -> None:
        """From a ceiling 3x too high, one cut finds the limit: our window held 100 creates
        when the provider refused (its limit is at most 99), so the rate goes just under that
        instead of halving to 150 and drawing a second round of refusals."""
        g = gate()
        self._minute_of_creates(g, 100)
        g.refused("j99", "ModelAccountRpmRateLimitExceeded", None, T0)
        assert g.models[MINI].rpm_learned == pytest.approx(99 * 0.95)

    def test_a_late_refusal_counts_the_window_its_create_was_sent_in(self) -> None:
        """The refusal of a create granted at 59.4 s reaches the gate at 75 s: the provider's
        window then held the 100 creates of the minute before the create, though the gate's
        own window has dropped the first quarter of them since."""
        g = gate()
        roomy = ModelLimits(concurrency=1000, rpm=300)
        for i in range(100):
            ask(g, f"j{i}", limits=roomy)
            assert granted(g, T0 + timedelta(seconds=0.6 * i)) == [f"j{i}"]
        late = T0 + timedelta(seconds=75)
        assert granted(g, late) == []  # the gate ran meanwhile (each event admits)
        g.refused("j99", "ModelAccountRpmRateLimitExceeded", None, late)
        assert g.models[MINI].rpm_learned == pytest.approx(99 * 0.95)

    def test_a_later_refusal_that_saw_fewer_of_ours_than_the_limit_cuts_nothing(self) -> None:
        """The minute's first refusal saw 100 creates: the limit is about 99. A create granted
        after that cut and refused 16 s later sees only 76 of ours in its minute: the provider
        still counts creates it received late. Its window would put the rate a quarter under
        the limit, and a cut for each such refusal compounds; the pause answers it."""
        g = gate()
        roomy = ModelLimits(concurrency=1000, rpm=300)
        for i in range(100):
            ask(g, f"j{i}", limits=roomy)
            assert granted(g, T0 + timedelta(seconds=0.6 * i)) == [f"j{i}"]
        g.refused("j99", "ModelAccountRpmRateLimitExceeded", None, T0 + timedelta(seconds=60))
        first = g.models[MINI].rpm_learned
        assert first == pytest.approx(99 * 0.95)
        ask(g, "late", limits=roomy)
        assert "late" in granted(g, T0 + timedelta(seconds=75))
        g.refused("late", "ModelAccountRpmRateLimitExceeded", None, T0 + timedelta(seconds=76.5))
        assert g.models[MINI].rpm_learned == first
        assert g.models[MINI].paused_until == T0 + timedelta(seconds=77.5)

    def test_cuts_go_on_until_just_under_the_window_a_refusal_saw(self) -> None:
        """The first refusal saw 41 of our creates in the minute against a learned 300: too
        few to be sure they were the limit (other clients may share the account), so it
        halves. A create granted after that cut and refused again says the limit is below the
        window: the rate goes just under it (the refused creates count in our window, so it
        stays there until the window drains)."""
        g = gate()
        self._minute_of_creates(g, 41)
        g.refused("j40", "ModelAccountRpmRateLimitExceeded", None, T0)
        assert g.models[MINI].rpm_learned == 150
        later = T0 + timedelta(seconds=2)
        assert granted(g, later) == ["j40"]
        g.refused("j40", "ModelAccountRpmRateLimitExceeded", None, later)
        assert g.models[MINI].rpm_learned == pytest.approx(40 * 0.95)
        assert granted(g, later + timedelta(seconds=5)) == []
        assert g.blocked_by(g.models[MINI], later + timedelta(seconds=5)) == Limit.RPM

    def test_slots_refused_creates_give_back_refill_at_the_rate(self) -> None:
        """Each refused create frees its slot. Granted again all at once when the pause ends,
        they would land in a window that is still full and be refused in turn (a storm, each
        refusal a further cut); a refusal empties the pace's bucket instead."""
        g = gate(headroom_per_model=1)
        fast = ModelLimits(concurrency=5, rpm=600)  # 10 creates a second
        for i in range(12):
            ask(g, f"j{i}", limits=fast)
        assert len(granted(g)) == 6
        refused_at = T0 + timedelta(seconds=0.5)
        for job in ("j0", "j1", "j2", "j3"):  # one cut: the others were sent before it
            g.refused(job, "ModelAccountRpmRateLimitExceeded", 0.1, refused_at)
        assert g.models[MINI].rpm_learned == 300  # 5 creates a second
        assert granted(g, refused_at + timedelta(seconds=0.1)) == []  # paused, then 0.5 token
        assert len(granted(g, refused_at + timedelta(seconds=0.3))) == 1  # not all four

    def test_for_a_minute_after_a_refusal_creates_go_a_few_at_a_time(self) -> None:
        g = gate(headroom_per_model=1)
        fast = ModelLimits(concurrency=5, rpm=600)
        for i in range(12):
            ask(g, f"j{i}", limits=fast)
        assert len(granted(g)) == 6
        g.refused("j5", "ModelAccountRpmRateLimitExceeded", 0.1, T0)
        for i in range(5):
            g.release(f"j{i}", task_id=f"t{i}", still_running=False, now=T0)
        again = granted(g, T0 + timedelta(seconds=10))
        assert len(again) == 3  # not the 5 free slots at once
        for job in again:
            g.release(job, task_id=f"t-{job}", still_running=False, now=T0 + timedelta(seconds=70))
        assert len(granted(g, T0 + timedelta(seconds=75))) == 4  # the minute is over

    def test_refusals_of_creates_sent_before_the_cut_teach_nothing_more(self) -> None:
        """Creates granted before the first refusal came back were sent at the old rate; their
        refusals are the same news. Cutting again for each would leave the rate far below the
        provider's limit for a whole window (the sawtooth the capacity benchmark measured)."""
        g = gate()
        self._minute_of_creates(g, 44)
        g.refused("j41", "ModelAccountRpmRateLimitExceeded", None, T0 + timedelta(seconds=1))
        learned = g.models[MINI].rpm_learned
        for job in ("j42", "j43"):
            g.refused(job, "ModelAccountRpmRateLimitExceeded", None, T0 + timedelta(seconds=2))
        assert g.models[MINI].rpm_learned == learned

    def test_accepted_creates_climb_back_a_share_of_the_ceiling_per_minute(self) -> None:
        """Additive increase per window, not per create: a minute of creates at the learned
        rate adds `increase_share` of the ceiling, so the rate probes upward slowly instead
        of passing the provider's limit again a few creates after each cut."""
        g = gate()
        self._minute_of_creates(g, 100, rpm=100)
        g.refused("j99", "ModelAccountRpmRateLimitExceeded", None, T0)
        before = g.models[MINI].rpm_learned
        assert before == 94.05  # 99 x 0.95, above the x0.5 floor
        for i in range(94):  # one minute of accepted creates at the learned rate
            g.release(f"j{i}", task_id=f"t{i}", still_running=False, now=T0)
        assert g.models[MINI].rpm_learned == pytest.approx(before + 2, rel=0.02)  # 2% of 100

    def test_a_queue_refusal_lowers_the_account_cap(self) -> None:
        g = gate(headroom_per_model=50)
        for i in range(10):
            ask(g, f"j{i}")
        granted(g)
        g.refused("j9", "RateLimitExceeded.QueuedTaskLimitExceeded", None, T0)
        assert g.queued_learned == 3.5  # (6 queued + 1) x 0.5
        assert g.blocked_by(g.models[MINI], T0) == Limit.QUEUED

    def test_the_learned_rate_never_passes_a_lowered_ceiling(self) -> None:
        g = gate()
        g.model(MINI, ModelLimits(concurrency=3, rpm=600))
        g.model(MINI, ModelLimits(concurrency=3, rpm=180))
        assert g.models[MINI].rpm_learned == 180


class TestSlotsComeBack:
    def test_a_job_that_ends_with_its_task_running_leaves_the_slot_to_the_task(self) -> None:
        g = gate(headroom_per_model=0)
        for i in range(4):
            ask(g, f"j{i}")
        granted(g)
        g.release("j0", task_id="t0", still_running=True, now=T0)
        assert granted(g) == []  # the provider still runs t0
        assert [h.job_id for h in g.stale_holders(T0)] == ["j0"]

    def test_silent_holders_are_checked_after_a_lease(self) -> None:
        g = gate(lease_seconds=300)
        ask(g, "j0")
        granted(g)
        assert g.stale_holders(T0 + timedelta(seconds=299)) == []
        assert [h.job_id for h in g.stale_holders(T0 + timedelta(seconds=300))] == ["j0"]
        g.still_held("j0", T0 + timedelta(seconds=300))
        assert g.stale_holders(T0 + timedelta(seconds=301)) == []

    def test_releasing_a_job_that_only_waited_withdraws_it(self) -> None:
        g = gate(headroom_per_model=0)
        for i in range(4):
            ask(g, f"j{i}")
        granted(g)
        g.release("j3", task_id=None, still_running=False, now=T0)
        assert g.waiting() == 0
