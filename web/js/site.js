// Site operator page: a pre-flight check, then the program, own preview, microphone (and why it
// is off), the floor request with its queue position and time left, roll-call, connection state.
import { BridgeClient, takeToken } from "/js/protocol.js";
import { t, langToggle } from "/js/i18n.js";
import { fillPickers, openDevice } from "/js/devices.js";
import { pagePresentation } from "/js/content.js";

const $ = (id) => document.getElementById(id);
const client = new BridgeClient({ token: takeToken() });
const presentation = pagePresentation(client, false);
window.hallbridge = { client, share: presentation.share };
let mediaState = "new";
let connected = null;
let stream = null;
let joined = false;
let cameraReady = Promise.resolve();  // the pre-flight's camera and microphone, once asked
const params = new URLSearchParams(location.search);
const me = () => client.me && client.me.site && client.me.site.id;

function send(event, payload) {
  return client.request(event, payload).catch((err) => { $("media").textContent = `${err.code}: ${err.message}`; });
}

function render() {
  $("conn").textContent = connected === null ? t("conn.connecting") : connected ? t("conn.connected") : t("conn.lost");
  $("media").textContent = t(`media.${mediaState}`);
  presentation.render();
  const s = client.state;
  if (client.me) {
    $("me").textContent = client.me.site ? client.me.site.name : t("site.observer");
    document.title = `hallbridge – ${client.me.site ? client.me.site.short : t("site.observer")}`;
  }
  if (!s) return;
  $("title").textContent = s.conference.title;
  const speaker = s.dominant && s.dominant !== s.program ? ` · ${t("site.speaker", { name: client.siteName(s.dominant) })}` : "";
  $("caption").textContent = `${t("console.program")}: ${client.siteName(s.program)}${speaker}`;
  $("caption").dataset.program = s.program;
  const site = me();
  if (!site) return;
  const mute = s.mutes[site];
  $("mute-state").textContent = !mute.muted ? t("site.open") : mute.hard ? t("site.muted_hard") : t(`site.muted_${mute.by || "moderator"}`);
  $("mute-state").dataset.muted = String(mute.muted);
  $("mute").textContent = mute.muted ? t("site.unmute") : t("site.mute");
  $("mute").disabled = mute.muted && mute.hard;
  $("asked").hidden = !mute.asked;
  applyMicrophone(!mute.muted);
  const holder = s.floor.holders.find((h) => h.site === site);
  const queued = s.floor.queue.find((q) => q.site === site);
  $("floor-state").textContent = holder ? t("site.speaking", { s: Math.max(0, Math.round(holder.ends_at - Date.now() / 1000)) })
    : queued ? t("site.position", { n: queued.position }) : "";
  $("floor-state").dataset.position = queued ? String(queued.position) : "";
  $("floor").textContent = holder ? t("site.release") : queued ? t("site.cancel") : t("site.request");
  const rc = s.rollcall.current;
  $("rollcall").hidden = !rc;
  const answer = rc && rc.answers[site];
  $("rc-answer").textContent = answer && answer.status !== "not_checked" ? t("site.answered", { status: t(`rc.${answer.status}`) }) : "";
}

function applyMicrophone(open) {  // a muted site stops sending audio at all (the bridge drops it too)
  const sender = client.senders && client.senders.audio;
  if (stream) for (const track of stream.getAudioTracks()) track.enabled = open;
  if (sender && sender.getParameters) {
    const p = sender.getParameters();
    if (p.encodings && p.encodings.length && p.encodings[0].active !== open) {
      p.encodings[0].active = open;
      sender.setParameters(p).catch(() => {});
    }
  }
}

function preflight() {
  $("preflight").hidden = false;
  cameraReady = openCamera();
  const started = performance.now();
  fetch("/healthz").then(() => { $("net-check").textContent = `OK (${Math.round(performance.now() - started)} ms)`; })
    .catch(() => { $("net-check").textContent = t("conn.lost"); });
}

async function openCamera() {
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 360 } });
    $("check-video").srcObject = stream;
    await fillPickers($("camera"), $("microphone"));
    const ctx = new AudioContext();
    const analyser = ctx.createAnalyser();
    ctx.createMediaStreamSource(stream).connect(analyser);
    const data = new Uint8Array(analyser.fftSize);
    const tick = () => {
      analyser.getByteTimeDomainData(data);
      const peak = Math.max(...data.map((v) => Math.abs(v - 128))) / 128;
      $("mic-meter").firstElementChild.style.width = `${Math.round(peak * 100)}%`;
      if (!joined) requestAnimationFrame(tick);
    };
    tick();
  } catch (err) {
    $("media").textContent = t("media.camera") + err.message;
  }
}

async function join() {
  joined = true;
  await cameraReady;
  $("preflight").hidden = true;
  $("meeting").hidden = false;
  if (stream) $("preview").srcObject = stream;
  await client.joinMedia({ stream });
  render();
}

const audioOut = new Map();  // slot -> <audio>: the program's sound, the hall, a heard site
client.addEventListener("track", (e) => {
  const { track, slot } = e.detail;
  let el;
  if (slot === "program-video") {
    el = $("program");
  } else if (track.kind === "audio") {
    el = audioOut.get(slot) || document.body.appendChild(document.createElement("audio"));
    el.autoplay = true;
    audioOut.set(slot, el);
  } else {
    return;
  }
  el.srcObject = new MediaStream([track]);
  el.play().catch(() => { $("sound").hidden = false; });
});
client.addEventListener("connection", (e) => { connected = e.detail.connected; render(); });
client.addEventListener("state", render);
client.addEventListener("media", (e) => { mediaState = e.detail.state; render(); });
client.addEventListener("error", (e) => {
  const d = e.detail;
  $("conn").textContent = d.code === "session_ended" ? t(`session.${d.reason}`)
    : d.code === "unauthorized" ? `${t("conn.refused")}: ${d.message}` : d.message;
});
client.addEventListener("welcome", () => {
  if (joined || client.pc) return;  // a reconnect: the protocol module rejoins by itself
  if (!client.mediaPlan.send || params.has("autojoin")) join(); else preflight();
});
$("join").addEventListener("click", join);
for (const [id, kind] of [["camera", "video"], ["microphone", "audio"]]) {
  $(id).addEventListener("change", async (e) => {  // another device: before or during the meeting
    const track = await openDevice(kind, e.target.value, { width: 640, height: 360 });
    if (client.pc) await client.replaceTrack(kind, track);
    else if (stream) {
      for (const old of stream.getTracks().filter((x) => x.kind === kind)) { stream.removeTrack(old); old.stop(); }
      stream.addTrack(track);
    }
  });
}
$("sound").addEventListener("click", () => { for (const el of audioOut.values()) el.play(); $("sound").hidden = true; });
$("mute").addEventListener("click", () => send("mute:self", { muted: !client.state.mutes[me()].muted }));
$("accept").addEventListener("click", () => send("mute:answer", { accept: true }));
$("decline").addEventListener("click", () => send("mute:answer", { accept: false }));
$("floor").addEventListener("click", () => {
  const s = client.state;
  if (s.floor.holders.some((h) => h.site === me())) send("floor:release", {});
  else if (s.floor.queue.some((q) => q.site === me())) send("floor:cancel", {});
  else send("floor:request", {});
});
$("rc-present").addEventListener("click", () => send("rollcall:answer", { status: "present" }));
$("rc-rep").addEventListener("click", () => {
  const name = prompt(t("site.representative"));
  if (name) send("rollcall:answer", { status: "representative", name });
});
$("rc-absent").addEventListener("click", () => send("rollcall:answer", { status: "absent" }));
setInterval(async () => {
  const s = await client.programStats();
  if (s) $("stats").textContent = `${s.frameWidth || 0}x${s.frameHeight || 0} · ${s.framesDecoded || 0} ${t("stats.frames")}`;
  render();
}, 1000);
langToggle($("lang"), render);
client.connect();
render();
