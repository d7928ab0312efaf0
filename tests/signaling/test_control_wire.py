"""Conference control through Socket.IO: the permission matrix, one shared state, the report."""

from __future__ import annotations

import csv
import io
from typing import Any

import aiohttp
import pytest
import socketio

from bridge.permissions import MATRIX
from bridge.roles import Role
from tests.conftest import RunningServer
from tests.media.helpers import wait_until

SITE, OTHER = "stttt-ha-noi", "stttt-da-nang"
PAYLOADS: dict[str, dict[str, Any]] = {
    "floor:request": {"site": SITE, "topic": "câu hỏi"}, "floor:cancel": {"site": SITE},
    "floor:release": {"site": SITE}, "floor:accept": {"site": SITE}, "floor:deny": {"site": SITE},
    "floor:grant": {"site": SITE}, "floor:next": {}, "floor:revoke": {"site": SITE},
    "floor:reorder": {"site": SITE, "position": 1}, "mute:self": {"muted": False},
    "mute:set": {"site": SITE, "muted": False}, "mute:all": {}, "mute:ask": {"site": SITE},
    "mute:answer": {"accept": True}, "rollcall:start": {}, "rollcall:answer": {"status": "present"},
    "rollcall:mark": {"site": SITE, "status": "present"}, "rollcall:end": {},
    "agenda:set": {"items": []}, "agenda:next": {}, "program:set": {"site": SITE},
    "program:mode": {"mode": "floor"}, "listen:set": {"site": SITE}, "record:start": {},
    "line:set": {"site": SITE, "poor": True},
    "record:stop": {}, "audit:get": {}, "state:get": {},
    "present:start": {"source": "screen"}, "present:stop": {}, "present:grant": {"site": SITE},
    "present:revoke": {"site": SITE},
}


class Client:
    def __init__(self, server: RunningServer, role: Role, site: str | None = None) -> None:
        self.server, self.role, self.site = server, role, site
        self.sio = socketio.AsyncClient(reconnection=False)
        self.states: list[dict[str, Any]] = []
        self.sio.on("state", self._state)

    async def _state(self, patch: dict[str, Any]) -> None:
        self.states.append(patch)

    async def __aenter__(self) -> Client:
        await self.sio.connect(self.server.url, auth={"token": self.server.token(self.role, self.site)},
                               transports=["websocket"], wait_timeout=5)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.sio.disconnect()

    async def call(self, event: str, payload: Any) -> dict[str, Any]:
        reply: dict[str, Any] = await self.sio.call(event, payload, timeout=5)
        return reply


def test_every_http_and_socket_action_is_in_the_matrix() -> None:
    assert set(PAYLOADS) | {"media:offer", "media:leave", "report:attendance"} == set(MATRIX)


async def test_the_full_permission_matrix(server: RunningServer) -> None:
    roles = {Role.HALL: None, Role.TECHNICIAN: None, Role.MODERATOR: None, Role.SITE: SITE,
             Role.OBSERVER: None}
    refused = 0
    for role, site in roles.items():
        async with Client(server, role, site) as client:
            for action, payload in PAYLOADS.items():
                if role in MATRIX[action]:
                    continue
                version = server.bridge.conference.version
                reply = await client.call(action, payload)
                assert reply["ok"] is False and reply["error"]["code"] == "forbidden", (role, action, reply)
                assert server.bridge.conference.version == version, (role, action)
                refused += 1
    assert refused > 60
    assert server.bridge.conference.control.floor.holders == {}
    assert server.bridge.conference.recording is None


@pytest.mark.parametrize(("action", "payload"), [
    ("floor:request", {"site": OTHER}), ("floor:cancel", {"site": OTHER}),
    ("floor:release", {"site": OTHER}), ("floor:request", {"site": "hall"}),
])
async def test_a_site_cannot_act_on_another_site(server: RunningServer, action: str,
                                                 payload: dict[str, Any]) -> None:
    async with Client(server, Role.SITE, SITE) as client:
        version = server.bridge.conference.version
        reply = await client.call(action, payload)
        assert reply["ok"] is False and reply["error"]["code"] == "forbidden"
        assert server.bridge.conference.version == version


@pytest.mark.parametrize(("action", "payload", "code"), [
    ("floor:request", {"topic": "x" * 201}, "too_large"),
    ("floor:request", {"topic": 5}, "bad_request"),
    ("floor:request", {"priority": 3, "extra": 1}, "bad_request"),
    ("mute:self", {}, "bad_request"),
    ("mute:self", {"muted": "yes"}, "bad_request"),
    ("rollcall:answer", {"status": "present"}, "conflict"),
    ("floor:release", {}, "conflict"),
])
async def test_bad_commands_are_refused_clearly(server: RunningServer, action: str,
                                                payload: dict[str, Any], code: str) -> None:
    async with Client(server, Role.SITE, SITE) as client:
        version = server.bridge.conference.version
        reply = await client.call(action, payload)
        assert reply["ok"] is False and reply["error"]["code"] == code, reply
        assert reply["error"]["message"]
        assert server.bridge.conference.version == version


@pytest.mark.parametrize(("action", "payload", "code", "says"), [
    ("floor:grant", {"site": SITE, "limit_s": 5}, "bad_request", "limit_s must be from 10 to 14400"),
    ("floor:grant", {"site": SITE, "limit_s": 14401}, "bad_request", "limit_s"),
    ("floor:reorder", {"site": SITE, "position": 0}, "bad_request", "position"),
    ("agenda:set", {"items": [{"title": "t", "speaker": SITE, "minutes": 601}]}, "bad_request", "minutes"),
    ("agenda:set", {"items": [{"title": "t" * 201, "speaker": SITE, "minutes": 5}]}, "too_large", "title"),
    ("agenda:set", {"items": [{"title": "t", "speaker": SITE, "minutes": 1}] * 201}, "too_large", "200"),
    ("floor:deny", {"site": SITE, "reason": "r" * 301}, "too_large", "reason"),
    ("program:mode", {"mode": "chaos"}, "bad_request", "mode must be one of"),
])
async def test_out_of_range_values_are_refused_by_the_rules_and_audited(
        server: RunningServer, action: str, payload: dict[str, Any], code: str, says: str) -> None:
    """The edge checks shapes; the conference owns the ranges, so the refusal is the rules' own
    and its audit entry names the site."""
    role = Role.TECHNICIAN if action == "program:mode" else Role.MODERATOR
    async with Client(server, role) as client:
        version = server.bridge.conference.version
        reply = await client.call(action, payload)
        assert reply["ok"] is False and reply["error"]["code"] == code, reply
        assert says in reply["error"]["message"]
        assert server.bridge.conference.version == version
        last = (await client.call("audit:get", {"latest": 1}))["entries"][-1]
        assert (last["action"], last["result"]) == (action, code)
        assert last["target"] == ("chaos" if action == "program:mode" else payload.get("site", ""))


async def test_everyone_sees_the_same_queue_and_holder(server: RunningServer) -> None:
    async with Client(server, Role.SITE, SITE) as site, Client(server, Role.SITE, OTHER) as other, \
            Client(server, Role.MODERATOR) as moderator, Client(server, Role.TECHNICIAN) as tech:
        clients = [site, other, moderator, tech]
        assert (await site.call("floor:request", {"topic": "Về chuyển đổi số"}))["ok"]
        assert (await other.call("floor:request", {}))["ok"]
        granted = await moderator.call("floor:grant", {"site": SITE})
        assert granted["ok"]
        version = granted["version"]
        assert await wait_until(lambda: all(c.states and c.states[-1]["version"] == version
                                            for c in clients), 5)
        for c in clients:
            last_floor = next(p["floor"] for p in reversed(c.states) if "floor" in p)
            assert [h["site"] for h in last_floor["holders"]] == [SITE]
            assert [q["site"] for q in last_floor["queue"]] == [OTHER]
            assert next(p["program"] for p in reversed(c.states) if "program" in p) == SITE
        snapshot = (await other.call("state:get", {}))["state"]
        assert snapshot["version"] == version and snapshot["mutes"][SITE]["muted"] is False
        audit = (await moderator.call("audit:get", {}))["entries"]
        assert [(e["actor"], e["action"], e["result"]) for e in audit][-3:] == [
            (SITE, "floor:request", "ok"), (OTHER, "floor:request", "ok"),
            ("moderator", "floor:grant", "ok")]


async def test_attendance_report_over_http(server: RunningServer) -> None:
    async with Client(server, Role.MODERATOR) as moderator, Client(server, Role.SITE, SITE) as site:
        assert (await moderator.call("rollcall:start", {}))["ok"]
        assert (await site.call("rollcall:answer", {"status": "present"}))["ok"]
        url = f"{server.url}/api/reports/attendance"
        auth = {"Authorization": f"Bearer {server.token(Role.MODERATOR)}"}
        async with aiohttp.ClientSession() as http:
            async with http.get(url, headers=auth) as response:
                assert response.status == 200
                text = (await response.read()).decode("utf-8-sig")
            rows = {r["site_id"]: r for r in csv.DictReader(io.StringIO(text))}
            assert len(rows) == 67 and rows[SITE]["rollcall"] == "present"
            assert rows[SITE]["site"] == "Sở Thông tin và Truyền thông Hà Nội"
            async with http.get(url + "?format=html&lang=en", headers=auth) as response:
                assert response.status == 200 and "Attendance report" in await response.text()
            site_auth = {"Authorization": f"Bearer {server.token(Role.SITE, SITE)}"}
            async with http.get(url, headers=site_auth) as response:
                assert response.status == 403
            async with http.get(url) as response:
                assert response.status == 401
            async with http.get(url + "?format=pdf", headers=auth) as response:
                assert response.status == 400


async def test_state_get_answers_its_caller_only(server: RunningServer) -> None:
    """Any page may ask for the state as often as it likes: nobody else receives anything."""
    async with Client(server, Role.OBSERVER) as observer, Client(server, Role.SITE, SITE) as site, \
            Client(server, Role.MODERATOR) as moderator:
        snapshots: list[dict[str, Any]] = []
        for c in (site, moderator):
            c.sio.on("state:snapshot", snapshots.append)
        for _ in range(3):
            reply = await observer.call("state:get", {})
            assert reply["ok"] and reply["state"]["version"] == server.bridge.conference.version
        assert (await moderator.call("mute:all", {}))["ok"]  # a patch after them, in order
        assert await wait_until(lambda: bool(site.states) and "mutes" in site.states[-1], 5)
        assert snapshots == []


@pytest.mark.parametrize("text", ["Ý kiến\x00", "Ý kiến \u202eớhp", "hai\ndòng", "\u2066cô lập\u2069",
                                  "nửa \ud800"])
async def test_control_and_direction_override_characters_are_refused_in_every_text_field(
        server: RunningServer, text: str) -> None:
    async with Client(server, Role.SITE, SITE) as site, Client(server, Role.MODERATOR) as moderator:
        version = server.bridge.conference.version
        for client, event, payload in [
                (site, "floor:request", {"topic": text}),
                (moderator, "floor:deny", {"site": SITE, "reason": text}),
                (moderator, "agenda:set", {"items": [{"title": text, "speaker": SITE, "minutes": 5}]}),
                (moderator, "rollcall:mark", {"site": SITE, "status": "representative", "name": text})]:
            reply = await client.call(event, payload)
            assert reply["ok"] is False and reply["error"]["code"] == "bad_request", (event, reply)
            assert "U+" in reply["error"]["message"]
        assert server.bridge.conference.version == version, "nothing was stored"


async def test_text_is_stored_in_one_normal_form(server: RunningServer) -> None:
    decomposed = "Y\u0301 kie\u0302\u0301n ve\u0302\u0300 chuye\u0302\u0309n đo\u0302\u0309i so\u0302\u0301"
    async with Client(server, Role.SITE, SITE) as site:
        assert (await site.call("floor:request", {"topic": decomposed}))["ok"]
        topics = [q["topic"] for q in server.bridge.conference.snapshot(0)["floor"]["queue"]]
        assert topics == ["Ý kiến về chuyển đổi số"]


async def test_a_technician_marks_a_poor_line_and_the_site_gets_the_low_layer(
        server: RunningServer) -> None:
    """"Đường truyền yếu": the mark is state (broadcast, stored, audited); the router keeps the
    site on the low layer whatever its browser reports; a bad payload changes nothing."""
    async with Client(server, Role.TECHNICIAN) as console, Client(server, Role.SITE, OTHER) as site:
        version = server.bridge.conference.version
        for bad in ({"site": SITE}, {"site": SITE, "poor": "yes"}, {"site": "nowhere", "poor": True},
                    {"site": "hall", "poor": True}, {"site": SITE, "poor": True, "extra": 1}):
            reply = await console.call("line:set", bad)
            assert reply["ok"] is False and reply["error"]["code"] == "bad_request", (bad, reply)
        assert server.bridge.conference.version == version
        reply = await console.call("line:set", {"site": SITE, "poor": True, "id": "pin-1"})
        assert reply == {"ok": True, "version": version + 1}
        again = await console.call("line:set", {"site": SITE, "poor": True, "id": "pin-1"})
        assert again == reply, "a retried command is made once"
        assert await wait_until(lambda: any(p.get("lines") == {"poor": [SITE]} for p in site.states), 5)
        assert server.bridge.hub.router.layer_of(SITE)["pinned"] is True
        assert server.bridge.hub.router.layer_of(SITE)["layer"] == "low"
        entries = (await console.call("audit:get", {}))["entries"]
        assert [e["action"] for e in entries if e["target"] == SITE][-1] == "line:set"
        reply = await console.call("line:set", {"site": SITE, "poor": False})
        assert reply["ok"] and server.bridge.hub.router.layer_of(SITE)["pinned"] is False
        state = (await site.call("state:get", {}))["state"]
        assert state["lines"] == {"poor": []}


async def test_a_granted_site_presents_and_everyone_sees_who(server: RunningServer) -> None:
    """present:* over Socket.IO: refused `forbidden` without a grant, one presenter at a time,
    every client's state names the presenter, a revoke ends it."""
    async with Client(server, Role.SITE, SITE) as site, Client(server, Role.SITE, OTHER) as other, \
            Client(server, Role.MODERATOR) as moderator, Client(server, Role.HALL) as hall:
        refused = await site.call("present:start", {"source": "screen"})
        assert refused["ok"] is False and refused["error"]["code"] == "forbidden", refused
        assert (await moderator.call("present:grant", {"site": SITE}))["ok"]
        started = await site.call("present:start", {"source": "screen"})
        assert started["ok"], started
        busy = await hall.call("present:start", {"source": "camera"})
        assert busy["ok"] is False and busy["error"]["code"] == "conflict"
        assert (await other.call("present:start", {"source": "screen"}))["error"]["code"] == "forbidden"
        version = started["version"]
        clients = [site, other, moderator, hall]
        assert await wait_until(lambda: all(any(p["version"] >= version for p in c.states)
                                            for c in clients), 5)
        for c in clients:
            content = next(p["content"] for p in reversed(c.states) if "content" in p)
            assert (content["presenter"], content["source"]) == (SITE, "screen")
        snapshot = (await other.call("state:get", {}))["state"]
        assert snapshot["content"]["presenter"] == SITE and snapshot["content"]["granted"] == [SITE]
        revoked = await moderator.call("present:revoke", {"site": SITE})
        assert revoked["ok"]
        assert await wait_until(lambda: any(p.get("content", {}).get("presenter", SITE) is None
                                            for p in other.states), 5)
        assert (await hall.call("present:start", {"source": "camera"}))["ok"], "the hall needs no grant"
