// Technician console (foundation form): every site of the roster with its connection state.
import { BridgeClient, takeToken } from "/js/protocol.js";
import { t, langToggle } from "/js/i18n.js";

const $ = (id) => document.getElementById(id);
const client = new BridgeClient({ token: takeToken() });
window.hallbridge = { client };
const tiles = new Map();

function tile(site) {
  let el = tiles.get(site.id);
  if (!el) {
    el = document.createElement("div");
    el.className = "tile";
    el.dataset.site = site.id;
    el.innerHTML = `<div class="name"></div><div class="badge"></div>`;
    el.querySelector(".name").textContent = site.short;
    el.title = site.name;
    $("wall").append(el);
    tiles.set(site.id, el);
  }
  return el;
}

function render() {
  if (!client.state) return;
  $("title").textContent = `${t("console.title")} · ${client.state.conference.title}`;
  let live = 0;
  const remote = client.roster.filter((s) => s.kind !== "hall");
  for (const site of client.roster) {
    const status = client.state.sites[site.id] || { presence: "offline" };
    const el = tile(site);
    el.className = `tile ${status.presence}` + (client.state.program === site.id ? " program" : "");
    el.dataset.presence = status.presence;
    const onAir = client.state.program === site.id ? ` · ${t("console.program")}` : "";
    el.querySelector(".badge").textContent = t(`presence.${status.presence}`) + onAir;
    if (site.kind !== "hall" && status.presence === "live") live += 1;
  }
  $("summary").textContent = `${t("console.live")} ${live}/${remote.length}`;
  $("summary").dataset.live = String(live);
}

client.addEventListener("state", render);
client.addEventListener("connection", (e) => { $("conn").textContent = e.detail.connected ? "" : t("conn.lost"); });
client.addEventListener("error", (e) => { $("conn").textContent = e.detail.message; });
langToggle($("lang"), render);
client.connect();
