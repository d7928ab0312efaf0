"""Attendance: who was connected when, what they answered, asked and said — and the report.

Fed by presence changes and floor events; the report (CSV for spreadsheets, printable HTML in
Vietnamese or English) is built from this record and the roll-calls, never from guesses.
"""

from __future__ import annotations

import csv
import html
import io
import time
from dataclasses import dataclass, field
from typing import Any

from bridge.control.rollcall import RollCall
from bridge.roster import Roster


@dataclass(slots=True)
class SiteRecord:
    intervals: list[list[float | None]] = field(default_factory=list)  # [joined, left or None]
    floor_requests: int = 0
    grants: list[list[float | None]] = field(default_factory=list)  # [granted, released or None]
    presented: list[list[float | None]] = field(default_factory=list)  # [started, ended or None]
    talk_s: float = 0.0  # time as the dominant speaker (voice activity)
    program_s: float = 0.0  # time on the program

    @property
    def connected(self) -> bool:
        return bool(self.intervals) and self.intervals[-1][1] is None


class Attendance:
    def __init__(self, roster: Roster) -> None:
        self.roster = roster
        self.sites = {s.id: SiteRecord() for s in roster}
        # who is on the program and who is the dominant speaker, since when: their running time
        # is counted when they change and in the report, never by a clock outside the state
        self.on_air: tuple[str, float] | None = None
        self.talking: tuple[str, float] | None = None

    def joined(self, site: str, now: float) -> None:
        rec = self.sites[site]
        if not rec.connected:
            rec.intervals.append([now, None])

    def left(self, site: str, now: float) -> None:
        rec = self.sites[site]
        if rec.connected:
            rec.intervals[-1][1] = now

    def floor_event(self, kind: str, site: str, now: float) -> None:
        rec = self.sites[site]
        if kind == "requested":
            rec.floor_requests += 1
        elif kind == "granted":
            rec.grants.append([now, None])
        elif kind in ("released", "revoked", "expired") and rec.grants and rec.grants[-1][1] is None:
            rec.grants[-1][1] = now

    def content_event(self, kind: str, site: str, now: float) -> None:
        """A presentation started or ended (a switch of source goes on presenting)."""
        rec = self.sites[site]
        if kind == "started":
            rec.presented.append([now, None])
        elif kind in ("stopped", "revoked", "lost") and rec.presented and rec.presented[-1][1] is None:
            rec.presented[-1][1] = now

    def program_is(self, site: str, now: float) -> None:
        """The program source from `now` on (the same one: nothing to do)."""
        if self.on_air is not None and self.on_air[0] == site:
            return
        if self.on_air is not None:
            self.sites[self.on_air[0]].program_s += max(0.0, now - self.on_air[1])
        self.on_air = (site, now)

    def talker_is(self, site: str | None, now: float) -> None:
        """The dominant speaker from `now` on (None: nobody)."""
        if self.talking is not None:
            if self.talking[0] == site:
                return
            self.sites[self.talking[0]].talk_s += max(0.0, now - self.talking[1])
        self.talking = None if site is None or site not in self.sites else (site, now)

    def talk_s(self, site: str, now: float) -> float:
        return self.sites[site].talk_s + _running(self.talking, site, now)

    def program_s(self, site: str, now: float) -> float:
        return self.sites[site].program_s + _running(self.on_air, site, now)

    def rows(self, rollcalls: list[RollCall], now: float) -> list[dict[str, Any]]:
        out = []
        for site in self.roster:
            rec = self.sites[site.id]
            closed = [(a, b if b is not None else now) for a, b in rec.intervals if a is not None]
            grants = [(a, b if b is not None else now) for a, b in rec.grants if a is not None]
            shown = [(a, b if b is not None else now) for a, b in rec.presented if a is not None]
            answers = [rc.answers[site.id] for rc in rollcalls if site.id in rc.answers]
            out.append({
                "site_id": site.id, "site": site.name,
                "region": self.roster.regions.get(site.region, site.region),
                "first_join": _clock(closed[0][0]) if closed else "",
                "last_leave": _clock(rec.intervals[-1][1]) if rec.intervals and rec.intervals[-1][1] else "",
                "connected_s": round(sum(b - a for a, b in closed)),
                "intervals": "; ".join(f"{_clock(a)}-{_clock(b)}" for a, b in closed),
                "reconnects": max(0, len(closed) - 1),
                "rollcall": "; ".join(_answer(a) for a in answers),
                "floor_requests": rec.floor_requests,
                "floor_grants": len(grants),
                "floor_s": round(sum(b - a for a, b in grants)),
                "talk_s": round(self.talk_s(site.id, now)),
                "program_s": round(self.program_s(site.id, now)),
                "presented": "; ".join(f"{_clock(a)}-{_clock(b)}" for a, b in shown),
                "presented_s": round(sum(b - a for a, b in shown)),
            })
        return out


COLUMNS = ("site_id", "site", "region", "first_join", "last_leave", "connected_s", "intervals",
           "reconnects", "rollcall", "floor_requests", "floor_grants", "floor_s", "talk_s", "program_s",
           "presented", "presented_s")
HEADINGS = {
    "vi": ("Mã", "Điểm cầu", "Khu vực", "Vào lúc", "Rời lúc", "Thời gian kết nối (s)",
           "Các khoảng kết nối", "Số lần kết nối lại", "Điểm danh", "Xin phát biểu",
           "Được phát biểu", "Thời gian phát biểu (s)", "Thời gian nói (s)",
           "Thời gian lên sóng (s)", "Trình chiếu", "Thời gian trình chiếu (s)"),
    "en": ("Id", "Bridge point", "Region", "First joined", "Last left", "Connected (s)",
           "Connected intervals", "Reconnects", "Roll-call", "Floor requests", "Floor grants",
           "Floor time (s)", "Talk time (s)", "On the program (s)", "Presented",
           "Presenting time (s)"),
}
TITLES = {"vi": "Báo cáo tham dự", "en": "Attendance report"}


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def to_html(rows: list[dict[str, Any]], title: str, lang: str, generated: float) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADINGS[lang])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r[c]))}</td>" for c in COLUMNS) + "</tr>"
                   for r in rows)
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(generated))
    return (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            f"<title>{html.escape(TITLES[lang])} – {html.escape(title)}</title>"
            f"<style>{REPORT_CSS}</style></head><body>"
            f"<h1>{html.escape(TITLES[lang])}</h1><p>{html.escape(title)} · {stamp}</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></body></html>")


REPORT_CSS = ("body{font:12px 'DejaVu Sans',sans-serif}table{border-collapse:collapse}"
              "td,th{border:1px solid #999;padding:2px 4px;vertical-align:top}"
              "th{background:#eee}@media print{@page{size:landscape}}")  # the page's only style


def _clock(t: float | None) -> str:
    return "" if t is None else time.strftime("%H:%M:%S", time.localtime(t))


def _answer(a: Any) -> str:
    extra = a.name or a.reason
    return f"{a.status}{' (' + extra + ')' if extra else ''}"


def _running(since: tuple[str, float] | None, site: str, now: float) -> float:
    """Seconds of the running stretch `since` (site, start) that count for `site`."""
    return max(0.0, now - since[1]) if since is not None and since[0] == site else 0.0
