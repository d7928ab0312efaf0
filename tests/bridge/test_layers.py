"""The per-site layer allocator (pure, fake clock): down quickly, up only after the hold, no
oscillation on a noisy estimate, pinned sites stay low, audio's share is never given to video."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.media.layers import HIGH_LAYER, LOW_LAYER, LayerAllocator, LayerRules

RULES = LayerRules(warmup_s=0.0)  # a site whose estimator has settled (warm-up: its own test)
NEED = RULES.high_need()
SITE = "stttt-dien-bien"


def feed(allocator: LayerAllocator, estimates: list[float], start: float = 0.0,
         every: float = 1.0, down: bool = True) -> list[tuple[float, str]]:
    """REMB once a second (as browsers send it); the changes, with their times."""
    changes = []
    for i, bps in enumerate(estimates):
        now = start + i * every
        layer = allocator.estimate(SITE, bps, now, down=down)
        if layer is not None:
            changes.append((now, layer))
    return changes


def test_a_site_with_no_report_gets_the_high_layer() -> None:
    assert LayerAllocator(RULES).layer(SITE) == HIGH_LAYER


def test_down_within_two_seconds_of_the_estimate_falling() -> None:
    allocator = LayerAllocator(RULES)
    feed(allocator, [3e6] * 5)
    changes = feed(allocator, [0.8e6] * 4, start=5.0)
    assert changes and changes[0][1] == LOW_LAYER
    assert changes[0][0] - 5.0 <= 2.0, changes


def test_a_single_dip_does_not_change_the_layer() -> None:
    allocator = LayerAllocator(RULES)
    assert feed(allocator, [3e6, 3e6, 0.9e6, 3e6, 3e6], every=0.9) == []
    assert allocator.layer(SITE) == HIGH_LAYER


def test_loss_over_ten_percent_goes_down_at_once() -> None:
    allocator = LayerAllocator(RULES)
    feed(allocator, [3e6] * 3)
    assert allocator.loss(SITE, 0.05, 3.0) is None
    assert allocator.loss(SITE, 0.12, 4.0) == LOW_LAYER


def test_up_only_after_the_whole_hold() -> None:
    allocator = LayerAllocator(RULES)
    feed(allocator, [0.5e6] * 3)
    assert allocator.layer(SITE) == LOW_LAYER
    good = RULES.up_factor * NEED
    changes = feed(allocator, [good] * 12, start=3.0)
    assert changes == [(13.0, HIGH_LAYER)], changes  # 10 s after the first good estimate
    # enough for the layer but under the 1.25x margin: never up
    allocator = LayerAllocator(RULES)
    feed(allocator, [0.5e6] * 3)
    assert feed(allocator, [1.1 * NEED] * 60, start=3.0) == []


def test_time_alone_completes_the_hold() -> None:
    allocator = LayerAllocator(RULES)
    feed(allocator, [0.5e6] * 3)
    allocator.estimate(SITE, 2 * NEED, 3.0)  # then the browser goes quiet
    assert allocator.tick(12.9) == {}
    assert allocator.tick(13.0) == {SITE: HIGH_LAYER}


def test_a_noisy_estimate_around_the_threshold_does_not_oscillate() -> None:
    allocator = LayerAllocator(RULES)
    feed(allocator, [0.5e6] * 3)
    noisy = [(1.4 if i % 7 else 1.0) * NEED for i in range(120)]  # a dip every 7 s
    assert feed(allocator, noisy, start=3.0) == []
    assert allocator.layer(SITE) == LOW_LAYER


def test_loss_during_the_hold_restarts_it() -> None:
    allocator = LayerAllocator(RULES)
    feed(allocator, [0.5e6] * 3)
    good = 2 * NEED
    feed(allocator, [good] * 6, start=3.0)
    allocator.loss(SITE, 0.04, 9.0)  # a lossy report: the hold starts again once loss clears
    assert feed(allocator, [good] * 3, start=9.5) == []
    allocator.loss(SITE, 0.0, 12.0)
    changes = feed(allocator, [good] * 12, start=12.5)
    assert changes == [(22.5, HIGH_LAYER)], changes


def test_a_pinned_site_stays_low_and_earns_high_again_when_let_go() -> None:
    allocator = LayerAllocator(RULES)
    feed(allocator, [5e6] * 3)
    assert allocator.pin(SITE, True, 3.0) == LOW_LAYER
    assert feed(allocator, [5e6] * 30, start=4.0) == []
    assert allocator.layer(SITE) == LOW_LAYER
    assert allocator.pin(SITE, False, 34.0) is None
    changes = feed(allocator, [5e6] * 12, start=34.0)
    assert changes == [(44.0, HIGH_LAYER)], changes


def test_audio_is_paid_for_before_video() -> None:
    """An estimate that would carry the high layer's video (within the margin a browser's
    first estimate needs) only if the sound gave way: low."""
    allocator = LayerAllocator(RULES)
    enough_for_video_alone = RULES.down_margin * RULES.high_bps + RULES.audio_bps / 2
    changes = feed(allocator, [enough_for_video_alone] * 4)
    assert changes and changes[0][1] == LOW_LAYER
    assert feed(LayerAllocator(RULES), [RULES.down_margin * RULES.high_bps + RULES.audio_bps] * 4) == []


BUDGET_S = 2.0
_first_example: dict[str, float] = {}  # the clock starts at this test's first example


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.floats(0.1, 3.0), st.floats(1e5, 8e6), st.floats(0.0, 0.3)),
                min_size=1, max_size=120))
def test_invariants_on_any_report_sequence(reports: list[tuple[float, float, float]]) -> None:
    """Whatever the reports: never up without a full hold of good estimates since the last fall,
    never high while pinned (pinned from the middle on)."""
    started = _first_example.setdefault("at", time.monotonic())
    if time.monotonic() - started > BUDGET_S:  # sized to a time budget on a slow machine
        return
    allocator, now, pin_at = LayerAllocator(RULES), 0.0, len(reports) // 2
    last_down: float | None = None
    for i, (gap, bps, lost) in enumerate(reports):
        now += gap
        if i == pin_at:
            allocator.pin(SITE, True, now)
            last_down = now
        for layer in (allocator.estimate(SITE, bps, now), allocator.loss(SITE, lost, now)):
            if layer == LOW_LAYER:
                last_down = now
            elif layer == HIGH_LAYER:
                assert i < pin_at, "up while pinned"
                assert last_down is not None and now - last_down >= RULES.up_hold_s
        if i >= pin_at:
            assert allocator.layer(SITE) == LOW_LAYER


def test_a_low_first_estimate_is_not_taken_for_a_poor_line() -> None:
    """Browsers' estimators start low and climb: a site just in keeps the high layer until its
    estimate has once paid for it, or the warm-up is over; loss counts at once."""
    rules = LayerRules()
    climbing = [0.05e6 * 1.3 ** n for n in range(int(rules.warmup_s) - 1)]
    assert max(climbing) < NEED
    allocator = LayerAllocator(rules)
    assert feed(allocator, climbing) == []
    assert allocator.layer(SITE) == HIGH_LAYER
    settled = LayerAllocator(rules)
    feed(settled, [3e6])
    changes = feed(settled, [0.5e6] * 3, start=1.0)
    assert changes and changes[0][1] == LOW_LAYER, "once settled, a fall counts"
    stuck = LayerAllocator(rules)
    changes = feed(stuck, [0.3e6] * (int(rules.warmup_s) + 3))
    assert changes and changes[0][0] <= rules.warmup_s + 2, "a line poor from the start, after warm-up"
    lossy = LayerAllocator(rules)
    assert lossy.loss(SITE, 0.2, 0.5) == LOW_LAYER


def test_an_estimate_taken_for_the_way_up_only() -> None:
    """A deployment where loss and pins send a site down: a low estimate alone keeps it high, a
    lossy report sends it low, and an estimate well above the need brings it back after the hold."""
    allocator = LayerAllocator(RULES)
    for i in range(10):
        assert allocator.estimate(SITE, 0.5e6, float(i), down=False) is None
    assert allocator.layer(SITE) == HIGH_LAYER, "a low estimate alone is not a poor line here"
    assert allocator.loss(SITE, 0.3, 10.0) == LOW_LAYER
    assert allocator.sites[SITE].changes[-1][1:] == (LOW_LAYER, "loss")
    allocator.loss(SITE, 0.0, 11.0)
    ups = [(t, layer) for t in range(11, 30)
           if (layer := allocator.estimate(SITE, 1.3 * NEED, float(t), down=False)) is not None]
    assert ups and ups[0][1] == HIGH_LAYER and ups[0][0] - 11 >= RULES.up_hold_s, ups
    assert allocator.sites[SITE].changes[-1][2] == "estimate"


def climb(allocator: LayerAllocator, start_bps: float, seconds: int, t0: float,
          rate: float = 1.08) -> list[tuple[float, str]]:
    """A receive-side estimate climbing as Chromium's does (8 % a second), REMB once a second."""
    return feed(allocator, [start_bps * rate ** i for i in range(seconds)], start=t0, down=False)


def test_a_steadily_rising_estimate_earns_a_trial_and_a_failed_one_waits_longer() -> None:
    """After a line is freed the estimate climbs from ~200 kbit/s at ~8 %/s: it would take half a
    minute to reach 1.25x the need, so a rise kept for the hold (x1.5, never falling, no loss)
    is tried on the high layer; a trial that loses packets goes back down, and the next rise must
    last twice as long. A capped line's estimate that levels off earns none."""
    allocator = LayerAllocator(RULES)
    allocator.loss(SITE, 0.4, 0.0)  # a 300 kbit/s line: down on loss
    feed(allocator, [200e3] * 10, start=1.0, down=False)  # held there while the cap lasts
    allocator.loss(SITE, 0.0, 11.0)  # the cap is lifted
    changes = climb(allocator, 200e3, 20, 11.0)
    assert changes and changes[0][1] == HIGH_LAYER, changes
    assert changes[0][0] - 11.0 <= 12.0, "back within the hold (and a second) of the rise"
    assert allocator.sites[SITE].changes[-1][2] == "trial"
    allocator.loss(SITE, 0.3, changes[0][0] + 2)  # the trial loses packets: back down
    assert allocator.layer(SITE) == LOW_LAYER
    t = changes[0][0] + 3
    allocator.loss(SITE, 0.0, t)
    again = climb(allocator, 200e3, 30, t, rate=1.05)
    assert again and again[0][0] - t >= 2 * RULES.up_hold_s, again  # twice the hold
    # a capped line: the estimate rises a little, levels off, falls back: no trial
    capped = LayerAllocator(RULES)
    capped.loss(SITE, 0.4, 0.0)
    capped.loss(SITE, 0.0, 1.0)
    pattern = [600e3, 610e3, 640e3, 680e3, 630e3] + [636e3] * 7 + [680e3, 720e3, 632e3]
    assert feed(capped, pattern * 4, start=2.0, down=False) == []
    # where a low estimate sends a site down, a climbing one earns no trial
    assert feed(LayerAllocator(RULES), [200e3 * 1.08 ** i for i in range(20)]) == [(1.0, LOW_LAYER)]
