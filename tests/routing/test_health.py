from asgi_llm.config.schema import Cooldown, Deployment
from asgi_llm.routing.health import CooldownTracker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def deployment(name: str) -> Deployment:
    return Deployment(id=name, provider="mock", model="m")


POLICY = Cooldown(failures=3, window_s=60, seconds=30, max_seconds=100)


def test_failures_within_the_window_cool_a_deployment_and_it_comes_back():
    clock = Clock()
    tracker = CooldownTracker(clock)
    for _ in range(2):
        tracker.failure("a", POLICY)
    assert not tracker.cooling("a")
    tracker.failure("a", POLICY)
    assert tracker.cooling("a")
    clock.now += 30.1
    assert not tracker.cooling("a")


def test_failures_spread_beyond_the_window_do_not_add_up():
    clock = Clock()
    tracker = CooldownTracker(clock)
    for _ in range(5):
        tracker.failure("a", POLICY)
        clock.now += 31
        assert not tracker.cooling("a")
    for _ in range(POLICY.failures):  # the same count within the window does
        tracker.failure("b", POLICY)
        clock.now += 1
    assert tracker.cooling("b")


def test_repeated_cooldowns_double_up_to_the_cap_and_success_resets():
    clock = Clock()
    tracker = CooldownTracker(clock)
    lengths = []
    for _ in range(4):
        for _ in range(3):
            tracker.failure("a", POLICY)
        start = clock.now
        while tracker.cooling("a"):
            clock.now += 1
        lengths.append(clock.now - start)
    assert lengths == [30, 60, 100, 100]
    tracker.success("a")
    for _ in range(3):
        tracker.failure("a", POLICY)
    start = clock.now
    while tracker.cooling("a"):
        clock.now += 1
    assert clock.now - start == 30


def test_retry_after_cools_at_once_for_that_long():
    clock = Clock()
    tracker = CooldownTracker(clock)
    tracker.failure("a", POLICY, retry_after=7)
    assert tracker.cooling("a")
    clock.now += 7.1
    assert not tracker.cooling("a")


def test_when_all_are_cooling_the_soonest_back_goes_first():
    clock = Clock()
    tracker = CooldownTracker(clock)
    a, b = deployment("a"), deployment("b")
    tracker.failure("a", POLICY, retry_after=50)
    tracker.failure("b", POLICY, retry_after=10)
    healthy, cooling = tracker.split([a, b])
    assert healthy == [] and tracker.soonest_back(cooling) == [b, a]
