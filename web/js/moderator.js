// Moderator panel: floor queue and holder, mutes, program mode, roll-call, agenda, audit, report.
import { BridgeClient, takeToken } from "/js/protocol.js";
import { t, langToggle } from "/js/i18n.js";

const $ = (id) => document.getElementById(id);
const token = takeToken();
const client = new BridgeClient({ token });
window.hallbridge = { client };
const now = () => Date.now() / 1000;

function button(label, action) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", action);
  return b;
}

function send(event, payload) {
  return client.request(event, payload).catch((err) => { $("conn").textContent = `${err.code}: ${err.message}`; });
}

function render() {
  const s = client.state;
  if (!s) return;
  const holder = s.floor.holders[0];
  $("holder").textContent = holder
    ? `${client.siteName(holder.site)} — ${t("mod.left", { s: Math.max(0, Math.round(holder.ends_at - now())) })}`
    : t("mod.nobody");
  $("holder").dataset.site = holder ? holder.site : "";
  if (holder) $("holder").append(" ", button(t("mod.revoke"), () => send("floor:revoke", { site: holder.site })));
  const content = s.content || { presenter: null, granted: [] };
  $("presenter").textContent = content.presenter
    ? t(content.away ? "content.away" : "content.by", { name: client.siteName(content.presenter) }) : t("content.none");
  $("presenter").dataset.site = content.presenter || "";
  if (content.presenter) {
    $("presenter").append(" ", button(t("content.revoke"), () => send("present:revoke", { site: content.presenter })));
  }
  $("queue").replaceChildren(...s.floor.queue.map((q) => {
    const li = document.createElement("li");
    li.dataset.site = q.site;
    li.append(`${client.siteName(q.site)}${q.topic ? ` — ${q.topic}` : ""} (${t("mod.waiting", { s: Math.round(now() - q.since) })}) `,
      button(t("mod.grant"), () => send("floor:grant", { site: q.site })),
      button(t("mod.deny"), () => send("floor:deny", { site: q.site })),
      button(t("mod.up"), () => send("floor:reorder", { site: q.site, position: Math.max(1, q.position - 1) })),
      button(t("mod.down"), () => send("floor:reorder", { site: q.site, position: Math.min(s.floor.queue.length, q.position + 1) })));
    return li;
  }));
  $("mode").value = s.mode;
  const rc = s.rollcall.current || s.rollcall.history[s.rollcall.history.length - 1];
  $("tally").textContent = rc ? `${t("console.present")} ${rc.tally.present_total}/${rc.tally.sites}` : "";
  $("sites").replaceChildren(...client.roster.filter((x) => x.kind !== "hall").map((site) => {
    const li = document.createElement("li");
    li.className = "row";
    li.dataset.site = site.id;
    const mute = s.mutes[site.id];
    const answer = s.rollcall.current && s.rollcall.current.answers[site.id];
    li.append(`${site.short}: ${t(`presence.${s.sites[site.id].presence}`)} · ${mute.muted ? t("badge.muted") : t("badge.open")}`
      + (answer ? ` · ${t(`rc.${answer.status}`)}${answer.name ? ` (${answer.name})` : ""}` : "") + " ");
    li.append(button(mute.muted ? t("mod.unmute") : t("site.mute"), () => send("mute:set", { site: site.id, muted: !mute.muted })));
    if (mute.muted) li.append(button(t("mod.ask"), () => send("mute:ask", { site: site.id })));
    li.append(button(t("mod.hard"), () => send("mute:set", { site: site.id, muted: true, hard: true })));
    const granted = content.granted.includes(site.id);  // the right to present, kept until revoked
    const grant = button(granted ? t("content.revoke") : t("content.grant"),
      () => send(granted ? "present:revoke" : "present:grant", { site: site.id }));
    grant.dataset.act = "present";
    grant.setAttribute("aria-pressed", granted ? "true" : "false");
    li.append(grant);
    if (content.presenter === site.id) li.append(` · ${t("badge.presenting")}`);
    if (s.rollcall.current) {
      li.append(button(t("mod.mark_present"), () => send("rollcall:mark", { site: site.id, status: "present" })),
        button(t("mod.mark_absent"), () => send("rollcall:mark", { site: site.id, status: "absent", reason: prompt(t("mod.reason")) || "" })));
    }
    return li;
  }));
  $("agenda").replaceChildren(...s.agenda.items.map((item, i) => {
    const li = document.createElement("li");
    li.textContent = `${item.title} — ${client.siteName(item.speaker)} (${item.minutes}′)` + (i === s.agenda.current ? " ◀" : "");
    return li;
  }));
}

async function refreshAudit() {
  try {
    // the last 30 of the whole meeting (since 0 would give its first 1000)
    const reply = await client.request("audit:get", { latest: 30 });
    $("audit").replaceChildren(...reply.entries.slice().reverse().map((e) => {
      const li = document.createElement("li");
      li.textContent = `${new Date(e.at * 1000).toLocaleTimeString()} ${e.actor} ${e.action} ${e.target} → ${e.result}`;
      return li;
    }));
  } catch (err) { /* shown on the next command */ }
}

async function downloadReport() {
  const response = await fetch("/api/reports/attendance?format=csv", { headers: { Authorization: `Bearer ${token}` } });
  const url = URL.createObjectURL(await response.blob());
  const a = Object.assign(document.createElement("a"), { href: url, download: "attendance.csv" });
  a.click();
  URL.revokeObjectURL(url);
}

client.addEventListener("state", () => { render(); refreshAudit(); });
client.addEventListener("error", (e) => { $("conn").textContent = e.detail.message; });
// the state store was emptied and refilled from the server's memory: the console says so
client.addEventListener("notice", (e) => {
  if (e.detail.code === "store_recovered") $("conn").textContent = t("store.recovered", e.detail);
});
client.addEventListener("connection", (e) => { $("conn").textContent = e.detail.connected ? "" : t("conn.lost"); });
$("next").addEventListener("click", () => send("floor:next", {}));
$("mode").addEventListener("change", (e) => send("program:mode", { mode: e.target.value }));
$("mute-all").addEventListener("click", () => send("mute:all", { except_floor: false }));
$("mute-all-but").addEventListener("click", () => send("mute:all", { except_floor: true }));
$("rollcall-start").addEventListener("click", () => send("rollcall:start", {}));
$("rollcall-end").addEventListener("click", () => send("rollcall:end", {}));
$("agenda-next").addEventListener("click", () => send("agenda:next", {}));
$("report").addEventListener("click", downloadReport);
$("behalf-go").addEventListener("click", () => send("floor:request", { site: $("behalf").value }));
$("agenda-save").addEventListener("click", () => {
  const items = $("agenda-text").value.split("\n").map((line) => line.split("|").map((x) => x.trim()))
    .filter((parts) => parts.length === 3 && parts[0])
    .map(([title, speaker, minutes]) => ({ title, speaker, minutes: Number(minutes) || 5 }));
  send("agenda:set", { items });
});
client.addEventListener("welcome", () => {
  $("behalf").replaceChildren(...client.roster.filter((x) => x.kind !== "hall").map((x) =>
    Object.assign(document.createElement("option"), { value: x.id, textContent: x.short })));
});
setInterval(render, 1000);  // timers
langToggle($("lang"), render);
client.connect();
