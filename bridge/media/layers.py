"""Which program layer each receiving site gets: pure, time passed in (issue 17).

The publisher on the program sends two layers (high ~1.5 Mbps, low ~300 kbps); the bridge picks one
per receiving site from what that site's browser reports — its bandwidth estimate (REMB) and the
loss in its receiver reports — the way an SFU's per-subscriber allocator does:
- audio first: the estimate pays for the site's audio before any video, so video never takes
  the sound's share;
- down quickly: the estimate below what the high layer needs (plus audio) for `down_after_s`,
  or a receiver report with more than `loss_down` lost, and the site goes low at once;
- up slowly: the estimate at least `up_factor` times the high layer's need, with little loss, for
  a whole `up_hold_s` without a break before it goes high again (a noisy estimate that dips
  restarts the hold: no oscillation);
- an estimate may be taken for the way up only (`estimate(..., down=False)`): on a busy machine
  a browser's delay-based estimator reads scheduling jitter as congestion and estimates below
  what a clean line carries, so a deployment may let loss and pins alone send a site down, while
  an estimate well above the need still brings it back;
- or a trial: a browser's receive-side estimate climbs at most ~8 % a second (from ~200 kbit/s
  after a 300 kbit/s line, half a minute to 1.25x the high layer), so a low-layer site whose
  estimate has kept rising, never falling and without loss, by `rise_factor` over a whole
  `up_hold_s` (a line with headroom: a capped one levels off and falls back) is tried on the
  high layer; a trial that loses packets sends it down again, and the next trial waits twice as
  long (up to `rise_hold_max_s`). Trials are for estimates taken for the way up only: where a
  low estimate sends a site down, the climbing one would undo the trial at once;
- a technician's pin ("đường truyền yếu") keeps a site low whatever it reports;
- with no report yet a site gets the high layer (a LAN site never reports trouble);
- a site on the low layer is *probed*: a browser's receive-side estimate cannot rise above about
  1.5x what it receives, so the router pads what it sends to such a site (retransmitted copies
  of recent packets) up to a little above its estimate, and the estimate can climb at the pace
  its path allows (`probe_bps`).

The need of the high layer is what it really carries (the router measures the publisher's
stream) plus the audio, never less than `low_bps`: a still picture needs less than the configured
maximum and must not send every site low.
"""

from __future__ import annotations

from dataclasses import dataclass, field

HIGH_LAYER, LOW_LAYER = "high", "low"


@dataclass(frozen=True, slots=True)
class LayerRules:
    high_bps: int = 1_500_000
    low_bps: int = 300_000
    audio_bps: int = 64_000  # Opus with in-band FEC, and headers: reserved before video
    down_after_s: float = 1.0  # estimate short this long: down (within ~2 s with REMB every 1 s)
    down_margin: float = 0.85  # short: below this share of the need (a browser's first estimate
    # is what it receives, no more: a site just in must not fall for it)
    loss_down: float = 0.10  # a receiver report losing more than this: down at once
    up_factor: float = 1.25
    up_hold_s: float = 10.0
    up_loss_max: float = 0.02  # and no more loss than this during the hold
    # a browser's estimator starts low and climbs (Chromium's first REMB, after 5 s, is what it
    # receives; aiortc's far less): until a site's estimate has once paid for the high layer, or
    # this long after its first one, a low estimate is not taken for a poor line (loss still is)
    warmup_s: float = 12.0
    rise_factor: float = 1.5  # a trial: the estimate rose this much over the hold, never falling
    rise_hold_max_s: float = 80.0  # failed trials double the rise's hold up to this
    rise_flat_s: float = 3.0  # an estimate not rising for this long has levelled off
    trial_s: float = 10.0  # a trial that loses packets within this long failed
    probe_step: float = 1.15  # probing pads a low-layer site to this times its estimate
    probe_pause_s: float = 4.0  # an estimate that falls while probing: the path is full, rest
    probe_pause_max_s: float = 8.0  # (doubling each time, to this) before probing again

    def high_need(self, measured_bps: float | None = None) -> float:
        """What the high layer needs: its measured rate (the configured one before any) and audio."""
        video = self.high_bps if measured_bps is None else max(measured_bps, self.low_bps)
        return video + self.audio_bps


@dataclass(slots=True)
class SiteLayer:
    layer: str = HIGH_LAYER
    pinned: bool = False
    estimate_bps: float | None = None
    need_bps: float | None = None  # the high layer's need at the last estimate
    loss: float = 0.0
    short_since: float | None = None  # the estimate has been below the high need since
    good_since: float | None = None  # the estimate has been >= up_factor x the need since
    changed_at: float | None = None
    changes: list[tuple[float, str, str]] = field(default_factory=list)  # (at, layer, why)
    first_estimate_at: float | None = None
    converged: bool = False  # its estimate has paid for the high layer once (or warm-up is over)
    probe_rest_until: float = float("-inf")
    probe_rest_s: float = 0.0  # the last rest (0: none since the estimate last paid for high)
    rise_from: tuple[float, float] | None = None  # (since, estimate then): rising without a fall
    rise_last: float = 0.0  # the estimate last rose at
    rise_hold_s: float = 0.0  # how long the rise must last for a trial (0: up_hold_s)


class LayerAllocator:
    def __init__(self, rules: LayerRules | None = None) -> None:
        self.rules = rules or LayerRules()
        self.sites: dict[str, SiteLayer] = {}

    def layer(self, site: str) -> str:
        state = self.sites.get(site)
        return state.layer if state is not None else HIGH_LAYER

    def _site(self, site: str) -> SiteLayer:
        state = self.sites.get(site)
        if state is None:
            state = self.sites[site] = SiteLayer()
        return state

    def forget(self, site: str) -> None:
        """The site left: what its browser reported goes; a technician's pin stays."""
        state = self.sites.pop(site, None)
        if state is not None and state.pinned:
            self.sites[site] = SiteLayer(layer=LOW_LAYER, pinned=True)

    def pin(self, site: str, low: bool, now: float) -> str | None:
        """A technician pins a site to the low layer (or lets it go); the layer change, if any."""
        state = self._site(site)
        state.pinned = low
        state.good_since = None  # unpinned: it earns the high layer like any site coming back
        if low:
            return self._set(state, LOW_LAYER, now, "pinned")
        return None

    def estimate(self, site: str, bps: float, now: float,
                 high_bps: float | None = None, down: bool = True) -> str | None:
        """The site's bandwidth estimate (REMB) and, when known, what the high layer it would
        receive carries now; the layer it changes to, if it does (with `down` False, a low
        estimate does not send the site down: it only withholds the way up)."""
        state = self._site(site)
        rules = self.rules
        previous, state.estimate_bps = state.estimate_bps, bps
        need = state.need_bps = rules.high_need(high_bps)
        if state.first_estimate_at is None:
            state.first_estimate_at = now
        if not state.converged:
            state.converged = bps >= need or now - state.first_estimate_at >= rules.warmup_s
        if state.layer == LOW_LAYER and previous is not None and bps < 0.95 * previous \
                and now >= state.probe_rest_until:
            self._rest(state, now)
        elif bps >= rules.up_factor * need:
            state.probe_rest_s = 0.0
        video_share = bps - rules.audio_bps  # audio first
        if down and state.converged and video_share < rules.down_margin * (need - rules.audio_bps):
            if state.short_since is None:
                state.short_since = now
        else:
            state.short_since = None
        if bps >= rules.up_factor * need and state.loss <= rules.up_loss_max:
            if state.good_since is None:
                state.good_since = now
        else:
            state.good_since = None
        if previous is None or bps < 0.98 * previous or state.loss > rules.up_loss_max:
            state.rise_from = None  # a fall (or loss): the path is full
        elif not down and bps > previous:
            state.rise_last = now
            if state.rise_from is None:
                state.rise_from = (now, previous)
        elif down or now - state.rise_last > rules.rise_flat_s:
            state.rise_from = None  # levelled off: held at what the path carries
        return self._decide(state, now)

    def loss(self, site: str, fraction: float, now: float) -> str | None:
        """The fraction lost in the site's latest receiver report; the layer change, if any."""
        state = self._site(site)
        state.loss = fraction
        if fraction > self.rules.up_loss_max:
            state.good_since = state.rise_from = None
            if state.layer == LOW_LAYER and now >= state.probe_rest_until:  # probing overfilled
                self._rest(state, now)  # the line (or it is lossy): rest before probing again
        if fraction > self.rules.loss_down:
            if state.layer == HIGH_LAYER and state.changes and state.changes[-1][2] == "trial" \
                    and now - state.changes[-1][0] <= self.rules.trial_s:  # the trial failed
                state.rise_hold_s = min(self.rules.rise_hold_max_s,
                                        2 * (state.rise_hold_s or self.rules.up_hold_s))
            return self._set(state, LOW_LAYER, now, "loss")
        return self._decide(state, now)

    def _rest(self, state: SiteLayer, now: float) -> None:
        rules = self.rules
        state.probe_rest_s = min(rules.probe_pause_max_s,
                                 max(rules.probe_pause_s, 2 * state.probe_rest_s))
        state.probe_rest_until = now + state.probe_rest_s

    def probe_bps(self, site: str, now: float) -> float | None:
        """What the router should pad a site's traffic up to (None: no probing): a low-layer site
        that is not pinned and not losing packets, up to what the high layer needs (kept there
        through the hold: the path shows it carries it), resting after its estimate fell."""
        state = self.sites.get(site)
        if state is None or state.layer != LOW_LAYER or state.pinned or state.estimate_bps is None:
            return None
        rules = self.rules
        if state.loss > rules.up_loss_max or now < state.probe_rest_until:
            return None
        target = rules.up_factor * (state.need_bps or rules.high_need())
        return min(target, state.estimate_bps * rules.probe_step)

    def tick(self, now: float) -> dict[str, str]:
        """Time passes without a report (a hold may complete): the sites whose layer changes."""
        return {site: layer for site, state in self.sites.items()
                if (layer := self._decide(state, now)) is not None}

    def _decide(self, state: SiteLayer, now: float) -> str | None:
        rules = self.rules
        if state.pinned:
            return self._set(state, LOW_LAYER, now, "pinned")
        if state.layer == HIGH_LAYER:
            if state.short_since is not None and now - state.short_since >= rules.down_after_s:
                return self._set(state, LOW_LAYER, now, "estimate")
            return None
        if state.good_since is not None and now - state.good_since >= rules.up_hold_s:
            return self._set(state, HIGH_LAYER, now, "estimate")
        if state.rise_from is not None and state.estimate_bps is not None:
            since, start = state.rise_from
            if now - since >= (state.rise_hold_s or rules.up_hold_s) \
                    and state.estimate_bps >= rules.rise_factor * start:
                return self._set(state, HIGH_LAYER, now, "trial")
        return None

    def _set(self, state: SiteLayer, layer: str, now: float, why: str) -> str | None:
        if state.layer == layer:
            return None
        state.layer = layer
        state.changed_at = now
        state.changes.append((now, layer, why))
        state.rise_from = None
        if layer == LOW_LAYER:
            state.good_since = None  # the hold to go up again starts after the fall
        return layer
