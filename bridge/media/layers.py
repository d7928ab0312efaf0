"""Which program layer each receiving site gets: pure, time passed in (issue 17).

The publisher on the program sends two layers (high ~1.5 Mbps, low ~350 kbps); the bridge picks one
per receiving site from what that site's browser reports — its bandwidth estimate (REMB) and the
loss in its receiver reports — the way an SFU's per-subscriber allocator does:
- audio first: the estimate pays for the site's audio before any video, so video never takes
  the sound's share;
- down quickly: the estimate below what the high layer needs (plus audio) for `down_after_s`,
  or a receiver report with more than `loss_down` lost, and the site goes low at once;
- up slowly: the estimate at least `up_factor` times the high layer's need, with little loss, for
  a whole `up_hold_s` without a break before it goes high again (a noisy estimate that dips
  restarts the hold: no oscillation);
- a technician's pin ("đường truyền yếu") keeps a site low whatever it reports;
- with no report yet a site gets the high layer (a LAN site never reports trouble).
"""

from __future__ import annotations

from dataclasses import dataclass, field

HIGH_LAYER, LOW_LAYER = "high", "low"


@dataclass(frozen=True, slots=True)
class LayerRules:
    high_bps: int = 1_500_000
    low_bps: int = 350_000
    audio_bps: int = 64_000  # Opus with in-band FEC, and headers: reserved before video
    down_after_s: float = 1.0  # estimate short this long: down (within ~2 s with REMB every 1 s)
    loss_down: float = 0.10  # a receiver report losing more than this: down at once
    up_factor: float = 1.25
    up_hold_s: float = 10.0
    up_loss_max: float = 0.02  # and no more loss than this during the hold

    def high_need(self) -> float:
        return self.high_bps + self.audio_bps


@dataclass(slots=True)
class SiteLayer:
    layer: str = HIGH_LAYER
    pinned: bool = False
    estimate_bps: float | None = None
    loss: float = 0.0
    short_since: float | None = None  # the estimate has been below the high need since
    good_since: float | None = None  # the estimate has been >= up_factor x the need since
    changed_at: float | None = None
    changes: list[tuple[float, str]] = field(default_factory=list)


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
        self.sites.pop(site, None)

    def pin(self, site: str, low: bool, now: float) -> str | None:
        """A technician pins a site to the low layer (or lets it go); the layer change, if any."""
        state = self._site(site)
        state.pinned = low
        state.good_since = None  # unpinned: it earns the high layer like any site coming back
        if low:
            return self._set(state, LOW_LAYER, now)
        return None

    def estimate(self, site: str, bps: float, now: float) -> str | None:
        """The site's bandwidth estimate (REMB); the layer it changes to, if it does."""
        state = self._site(site)
        state.estimate_bps = bps
        rules = self.rules
        need = rules.high_need()
        if bps < need:
            if state.short_since is None:
                state.short_since = now
        else:
            state.short_since = None
        if bps >= rules.up_factor * need and state.loss <= rules.up_loss_max:
            if state.good_since is None:
                state.good_since = now
        else:
            state.good_since = None
        return self._decide(state, now)

    def loss(self, site: str, fraction: float, now: float) -> str | None:
        """The fraction lost in the site's latest receiver report; the layer change, if any."""
        state = self._site(site)
        state.loss = fraction
        if fraction > self.rules.up_loss_max:
            state.good_since = None
        if fraction > self.rules.loss_down:
            return self._set(state, LOW_LAYER, now)
        return self._decide(state, now)

    def tick(self, now: float) -> dict[str, str]:
        """Time passes without a report (a hold may complete): the sites whose layer changes."""
        return {site: layer for site, state in self.sites.items()
                if (layer := self._decide(state, now)) is not None}

    def _decide(self, state: SiteLayer, now: float) -> str | None:
        rules = self.rules
        if state.pinned:
            return self._set(state, LOW_LAYER, now)
        if state.layer == HIGH_LAYER:
            if state.short_since is not None and now - state.short_since >= rules.down_after_s:
                return self._set(state, LOW_LAYER, now)
            return None
        if state.good_since is not None and now - state.good_since >= rules.up_hold_s:
            return self._set(state, HIGH_LAYER, now)
        return None

    def _set(self, state: SiteLayer, layer: str, now: float) -> str | None:
        if state.layer == layer:
            return None
        state.layer = layer
        state.changed_at = now
        state.changes.append((now, layer))
        if layer == LOW_LAYER:
            state.good_since = None  # the hold to go up again starts after the fall
        return layer
