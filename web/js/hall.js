// Main hall feed publisher (foundation form): camera and microphone of the hall to the bridge.
import { BridgeClient, takeToken } from "/js/protocol.js";
import { t, langToggle } from "/js/i18n.js";
import { fillPickers, openDevice } from "/js/devices.js";
import { pagePresentation } from "/js/content.js";

const $ = (id) => document.getElementById(id);
const client = new BridgeClient({ token: takeToken() });
// the hall presents without a grant (its presentation PC on a capture card, or a shared screen)
const presentation = pagePresentation(client, true);
window.hallbridge = { client, share: presentation.share };
let state = "new";
const render = () => {
  $("media").textContent = state === "connected" ? t("hall.publishing") : t(`media.${state}`);
  presentation.render();
};

client.addEventListener("media", (e) => { state = e.detail.state; render(); });
const audioOut = new Map();
client.addEventListener("track", (e) => {  // a remote site on the program: shown and played in the hall
  const { track, slot } = e.detail;
  if (slot === "program-video") { $("program").srcObject = new MediaStream([track]); return; }
  if (track.kind !== "audio") return;
  const el = audioOut.get(slot) || document.body.appendChild(document.createElement("audio"));
  el.autoplay = true;
  audioOut.set(slot, el);
  el.srcObject = new MediaStream([track]);
});
client.addEventListener("error", (e) => { $("media").textContent = e.detail.message; });
client.addEventListener("welcome", async () => {
  if (client.pc) return;
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 1280, height: 720 } });
  $("preview").srcObject = stream;
  await fillPickers($("camera"), $("microphone"));
  await client.joinMedia({ stream });
});
for (const [id, kind] of [["camera", "video"], ["microphone", "audio"]]) {
  $(id).addEventListener("change", async (e) => client.replaceTrack(kind, await openDevice(kind, e.target.value)));
}
langToggle($("lang"), render);
client.connect();
