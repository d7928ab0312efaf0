// Site operator page (minimal foundation form): join with the token, publish camera and
// microphone, play the program.
import { BridgeClient, takeToken } from "/js/protocol.js";
import { t, langToggle } from "/js/i18n.js";

const $ = (id) => document.getElementById(id);
const client = new BridgeClient({ token: takeToken() });
window.hallbridge = { client };  // for diagnostics and the browser tests
let mediaState = "new";
let connected = null;

function render() {
  $("conn").textContent = connected === null ? t("conn.connecting")
    : connected ? t("conn.connected") : t("conn.lost");
  $("media").textContent = t(`media.${mediaState}`) || mediaState;
  if (client.me) {
    $("me").textContent = client.me.site ? client.me.site.name : t("site.observer");
    document.title = `hallbridge – ${client.me.site ? client.me.site.short : t("site.observer")}`;
  }
  if (client.state) {
    $("title").textContent = client.state.conference.title;
    $("caption").textContent = `${t("console.program")}: ${client.siteName(client.state.program)}`;
  }
}

client.addEventListener("connection", (e) => { connected = e.detail.connected; render(); });
client.addEventListener("state", render);
client.addEventListener("error", (e) => {
  $("conn").textContent = e.detail.code === "unauthorized" ? `${t("conn.refused")}: ${e.detail.message}` : e.detail.message;
});
client.addEventListener("media", (e) => { mediaState = e.detail.state; render(); });
const audioOut = new Map();  // slot -> <audio>: the program's sound, the hall, a heard site
client.addEventListener("track", (e) => {
  const { track, slot } = e.detail;
  let el;
  if (slot === "program-video") {
    el = $("program");
  } else if (track.kind === "audio") {
    el = audioOut.get(slot) || document.createElement("audio");
    el.autoplay = true;
    audioOut.set(slot, el);
    document.body.append(el);
  } else {
    return;
  }
  el.srcObject = new MediaStream([track]);
  el.play().catch(() => { $("sound").hidden = false; });
});
$("sound").addEventListener("click", () => {
  for (const el of audioOut.values()) el.play();
  $("sound").hidden = true;
});

client.addEventListener("welcome", async () => {
  if (client.pc) return;  // a reconnect: the protocol module rejoins by itself
  let stream = null;
  if (client.mediaPlan.send) {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 360 } });
      $("preview").srcObject = stream;
    } catch (err) {
      $("media").textContent = t("media.camera") + err.message;
    }
  }
  await client.joinMedia({ stream });
});

setInterval(async () => {
  const s = await client.programStats();
  if (s) $("stats").textContent = `${s.frameWidth || 0}x${s.frameHeight || 0} · ${s.framesDecoded || 0} ${t("stats.frames")}`;
}, 1000);

langToggle($("lang"), render);
client.connect();
render();
