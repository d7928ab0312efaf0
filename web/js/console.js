// Technician console (main hall): every bridge point's thumbnail, level, network and badges;
// the program monitor, mode, pin, listen-in, recording and the alarm list.
import { BridgeClient, takeToken } from "/js/protocol.js";
import { t, langToggle } from "/js/i18n.js";
import { contentView } from "/js/content.js";

const $ = (id) => document.getElementById(id);
const client = new BridgeClient({ token: takeToken() });
window.hallbridge = { client };
const renderContent = contentView(client, { stage: $("stage"), content: $("content"), program: $("program"),
                                            swap: $("swap"), caption: $("content-caption") });
const tiles = new Map();
let stats = {};
let listening = null;
const quietSince = {};  // site -> since when no sound came from an open microphone

function tile(site) {
  let el = tiles.get(site.id);
  if (el) return el;
  el = document.createElement("div");
  el.className = "tile";
  el.dataset.site = site.id;
  el.tabIndex = 0;
  el.innerHTML = `<video muted playsinline autoplay></video><div class="name"></div>
    <div class="meter" role="meter" aria-valuemin="-127" aria-valuemax="0"><span></span></div>
    <div class="net"></div><div class="layer"></div><div class="badges"></div>
    <div class="actions"><button type="button" data-act="pin"></button><button type="button" data-act="listen"></button><button type="button" data-act="poor"></button></div>`;
  el.querySelector(".name").textContent = site.short;
  el.title = site.name;
  el.querySelector("[data-act=pin]").addEventListener("click", () => client.request("program:set", { site: site.id }));
  el.querySelector("[data-act=listen]").addEventListener("click", () => {
    const next = listening === site.id ? null : site.id;
    client.request("listen:set", { site: next }).then(() => { listening = next; render(); });
  });
  // a known poor line: keep the site on the low program layer whatever its browser reports
  el.querySelector("[data-act=poor]").addEventListener("click", () => {
    client.request("line:set", { site: site.id, poor: !poorLines().includes(site.id) })
      .catch((err) => { $("conn").textContent = err.message; });
  });
  $("wall").append(el);
  tiles.set(site.id, el);
  return el;
}

function poorLines() {
  const s = client.state;
  return (s && s.lines && s.lines.poor) || [];
}

function badges(siteId) {
  const s = client.state;
  const out = [];
  const mute = s.mutes && s.mutes[siteId];
  if (mute) out.push(mute.muted ? (mute.hard ? t("badge.hard") : t("badge.muted")) : t("badge.open"));
  if (s.floor && s.floor.holders.some((h) => h.site === siteId)) out.push(t("badge.floor"));
  const queued = s.floor && s.floor.queue.find((q) => q.site === siteId);
  if (queued) out.push(t("badge.queue", { n: queued.position }));
  const content = s.content || { presenter: null, granted: [] };
  if (content.presenter === siteId) out.push(t("badge.presenting"));
  else if (content.granted.includes(siteId)) out.push(t("badge.granted"));
  const rc = s.rollcall && s.rollcall.current;
  const answer = rc && rc.answers[siteId];
  if (answer && answer.status !== "not_checked") {
    out.push(["present", "representative", "late"].includes(answer.status) ? t("badge.present") : t("badge.absent"));
  }
  return out;
}

function render() {
  const s = client.state;
  if (!s) return;
  $("title").textContent = `${t("console.title")} · ${s.conference.title}`;
  let live = 0;
  const remote = client.roster.filter((x) => x.kind !== "hall");
  const alarms = [];
  for (const site of remote) {  // the main hall is the program monitor's, not a tile
    const status = s.sites[site.id] || { presence: "offline" };
    const el = tile(site);
    const st = stats[site.id];
    const presence = st && st.health === "lost" && status.presence === "live" ? "lost" : status.presence;
    el.className = `tile ${presence}` + (s.program === site.id ? " program" : "")
      + (s.content && s.content.presenter === site.id ? " presenting" : "");
    el.dataset.presence = status.presence;
    const level = st ? st.level : -127;
    const meter = el.querySelector(".meter");
    meter.setAttribute("aria-valuenow", String(level));
    meter.firstElementChild.style.width = `${Math.max(0, Math.min(100, (level + 70) * 100 / 70))}%`;
    el.dataset.level = String(level);
    const net = el.querySelector(".net");
    if (st) {
      net.textContent = `● ${t(`net.${st.health}`)}`;
      net.dataset.health = st.health;
      net.title = t("net.detail", { loss: st.loss, jitter: st.jitter_ms, rtt: st.rtt_ms ?? "–" });
      if (st.health !== "good") alarms.push(`${site.short}: ${t(`alarm.${st.health}`)}`);
      const mute = s.mutes && s.mutes[site.id];
      if (mute && mute.muted && st.level > -35) alarms.push(`${site.short}: ${t("alarm.noisy")}`);
      quietSince[site.id] = st.level > -60 ? null : (quietSince[site.id] ?? Date.now());
      if (mute && !mute.muted && quietSince[site.id] && Date.now() - quietSince[site.id] > 10000) {
        alarms.push(`${site.short}: ${t("alarm.silent")}`);
      }
    } else {
      net.textContent = status.presence === "offline" ? t("console.never") : "";
      net.dataset.health = "";
    }
    const layer = el.querySelector(".layer");
    const poor = poorLines().includes(site.id);
    if (st && st.layer) {
      layer.textContent = t(`layer.${st.layer}`) + (st.estimate_kbps != null ? ` · ${st.estimate_kbps} kbit/s` : "");
      layer.dataset.layer = st.layer;
      layer.title = t("layer.detail", { layer: t(`layer.${st.layer}`), kbps: st.estimate_kbps ?? "–" })
        + (poor ? ` · ${t("layer.pinned")}` : "");
    } else {
      layer.textContent = "";
      layer.dataset.layer = "";
    }
    layer.dataset.pinned = poor ? "1" : "";
    el.querySelector("[data-act=poor]").textContent = poor ? t("console.unpoor") : t("console.poor");
    el.querySelector("[data-act=poor]").setAttribute("aria-pressed", poor ? "true" : "false");
    if (status.presence === "lost") alarms.push(`${site.short}: ${t("alarm.lost")}`);
    el.querySelector(".badges").textContent = badges(site.id).join(" · ");
    el.querySelector("[data-act=pin]").textContent = t("console.pin");
    el.querySelector("[data-act=listen]").textContent = listening === site.id ? t("console.unlisten") : t("console.listen");
    if (status.presence === "live") live += 1;
  }
  $("summary").textContent = `${t("console.live")} ${live}/${remote.length}`;
  $("summary").dataset.live = String(live);
  const rc = s.rollcall && (s.rollcall.current || s.rollcall.history[s.rollcall.history.length - 1]);
  $("tally").textContent = rc ? `${t("console.present")} ${rc.tally.present_total}/${rc.tally.sites}` : "";
  $("tally").dataset.present = rc ? String(rc.tally.present_total) : "";
  $("program-caption").textContent = `${t("console.program")}: ${client.siteName(s.program)}`;
  renderContent();
  $("content-cut").hidden = !(s.content && s.content.presenter);
  $("mode").value = s.mode;
  $("record").textContent = s.recording ? t("console.stop_record") : t("console.record");
  $("record-state").textContent = s.recording ? `● ${t("console.recording")} ${s.recording.file}` : "";
  const list = $("alarms");
  list.replaceChildren(...(alarms.length ? alarms : [t("console.no_alarms")]).map((text) => {
    const li = document.createElement("li");
    li.textContent = text;
    return li;
  }));
}

client.addEventListener("state", render);
client.addEventListener("welcome", async () => {
  if (!client.pc) await client.joinMedia({ stream: null });
});
client.addEventListener("track", (e) => {
  const { track, slot } = e.detail;
  if (slot === "program-video") $("program").srcObject = new MediaStream([track]);
  else if (slot === "listen-audio") $("listen-audio").srcObject = new MediaStream([track]);
  else if (slot && slot.startsWith("thumb:")) {
    const site = client.roster.find((x) => x.id === slot.slice(6));
    if (site) tile(site).querySelector("video").srcObject = new MediaStream([track]);
  }
});

client.connect();
client.socket.on("media:stats", (data) => { stats = data.sites; render(); });
client.addEventListener("connection", (e) => { $("conn").textContent = e.detail.connected ? "" : t("conn.lost"); });
client.addEventListener("error", (e) => { $("conn").textContent = e.detail.message; });
// the state store was emptied and refilled from the server's memory: the console says so
client.addEventListener("notice", (e) => {
  if (e.detail.code === "store_recovered") $("conn").textContent = t("store.recovered", e.detail);
});
$("mode").addEventListener("change", (e) => client.request("program:mode", { mode: e.target.value }));
$("content-cut").addEventListener("click", () => {  // a wrong screen on air: the technician cuts it
  const presenter = client.state.content && client.state.content.presenter;
  if (presenter) client.request("present:revoke", { site: presenter }).catch((err) => { $("conn").textContent = err.message; });
});
$("record").addEventListener("click", () => client.request(client.state.recording ? "record:stop" : "record:start", {}));
langToggle($("lang"), render);
