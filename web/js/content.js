// The presentation on a page (DOM helpers shared by the site, hall and console pages): the
// content slot shown large with the program picture-in-picture (a button swaps them), who
// presents, and — on a page that may present — sharing a screen or a second camera/capture input.
import { t } from "/js/i18n.js";
import { fillPickers } from "/js/devices.js";

// ~5-15 fps at up to 1920x1080: a slide stays sharp, a video clip still moves
const SCREEN = { video: { width: { max: 1920 }, height: { max: 1080 }, frameRate: { ideal: 15, max: 15 } }, audio: false };
const CAPTURE = { width: { ideal: 1920 }, height: { ideal: 1080 }, frameRate: { ideal: 15 } };

const presenterOf = (client) => {
  const c = client.state && client.state.content;
  return c && c.presenter ? c.presenter : null;
};
const mySite = (client) => client.me && client.me.site && client.me.site.id;

// Shows what another site presents: `els` {stage, content, program, swap, caption}. The content
// video appears once a frame of the current presenter has been drawn (never a stale slide of the
// one before), and goes the moment the state says nobody presents.
export function contentView(client, els) {
  let shown = null;   // the presenter whose slides the video element shows
  let fresh = false;  // a frame of theirs has been drawn
  let swapped = false;
  const render = () => {
    const presenter = presenterOf(client);
    const other = presenter && presenter !== mySite(client) ? presenter : null;
    if (other !== shown) {
      shown = other;
      fresh = false;
      if (other) waitFrame(other);
    }
    const on = Boolean(other && fresh);
    els.content.hidden = !on;
    // the hall on the program sees no program picture of its own: no empty picture-in-picture
    const s = client.state;
    els.program.hidden = on && !swapped && s && s.program === mySite(client) && client.hall === s.program;
    els.stage.classList.toggle("with-content", on);
    els.stage.classList.toggle("swapped", on && swapped);
    if (els.swap) els.swap.hidden = !on;
    if (els.caption) {
      const c = client.state && client.state.content;
      els.caption.textContent = presenter
        ? t(c.away ? "content.away" : "content.by", { name: client.siteName(presenter) }) : "";
      els.caption.dataset.presenter = presenter || "";
      els.caption.dataset.shown = on ? "1" : "";
    }
  };
  const waitFrame = (presenter) => {
    const video = els.content;
    if (!video.requestVideoFrameCallback) { fresh = true; return; }  // no way to tell: show it
    video.requestVideoFrameCallback(() => {
      if (shown === presenter) { fresh = true; render(); }
    });
  };
  client.addEventListener("track", (e) => {
    if (e.detail.slot !== "content") return;
    els.content.srcObject = new MediaStream([e.detail.track]);
    els.content.play().catch(() => {});
    if (shown) waitFrame(shown);
  });
  if (els.swap) {
    els.swap.addEventListener("click", () => { swapped = !swapped; render(); });
  }
  client.addEventListener("state", render);
  return render;
}

// The share controls of a page that may present (the hall always; a site once granted):
// `els` {panel, screen, camera, device, stop, preview, status}.
export function shareControls(client, els, isHall) {
  let busy = false;
  let refused = "";  // the last refusal, shown until the next share or a grant
  let wasAllowed = false;
  const render = () => {
    const c = client.state && client.state.content;
    const me = mySite(client);
    const mine = client.presenting !== null;
    const allowed = client.canPresent && c && (isHall || c.granted.includes(me));
    const someoneElse = c && c.presenter && c.presenter !== me;
    if (allowed && !wasAllowed) refused = "";  // granted since: the refusal no longer holds
    wasAllowed = Boolean(allowed);
    els.panel.hidden = !(allowed || mine || refused);
    els.screen.disabled = busy || Boolean(someoneElse);
    els.camera.disabled = busy || Boolean(someoneElse);
    els.stop.hidden = !mine;
    els.panel.dataset.presenting = mine ? client.presenting : "";
    if (els.preview) els.preview.hidden = !mine;
    els.status.textContent = refused ? t("content.refused", { reason: refused }) : mine ? t("content.sharing")
      : someoneElse ? t("content.by", { name: client.siteName(c.presenter) })
        : allowed ? t("content.allowed") : "";
  };
  const share = async (getTrack, source) => {
    busy = true;
    refused = "";
    render();
    let track = null;
    try {
      track = await getTrack();
      if (els.preview) els.preview.srcObject = new MediaStream([track]);
      await client.present(track, source);
    } catch (err) {
      if (track) track.stop();
      busy = false;
      // a refusal names its code (forbidden, conflict); a closed screen picker is no error
      if (err.name !== "NotAllowedError") refused = err.code || err.message;
      render();
      return;
    }
    busy = false;
    render();
  };
  els.screen.addEventListener("click", () => share(async () => {
    const stream = await navigator.mediaDevices.getDisplayMedia(SCREEN);
    return stream.getVideoTracks()[0];
  }, "screen"));
  els.camera.addEventListener("click", () => share(async () => {
    const id = els.device.value;
    const stream = await navigator.mediaDevices.getUserMedia({ video: { ...CAPTURE, deviceId: id ? { exact: id } : undefined } });
    return stream.getVideoTracks()[0];
  }, "camera"));
  els.stop.addEventListener("click", () => client.stopPresenting().then(render));
  client.addEventListener("state", render);
  client.addEventListener("presenting", render);
  client.addEventListener("welcome", () => { fillPickers(els.device, null).catch(() => {}); });
  // a test (or an embedding page) presents a track it made itself: a canvas, a file
  return { render, share: (track, source = "screen") => share(async () => track, source) };
}

// The site and hall pages' presentation, by their elements' ids: the view and (a publisher's)
// share controls. { render, share(track, source) }.
export function pagePresentation(client, isHall) {
  const $ = (id) => document.getElementById(id);
  const view = contentView(client, { stage: $("stage"), content: $("content"), program: $("program"),
                                     swap: $("swap"), caption: $("content-caption") });
  const controls = shareControls(client, { panel: $("share"), screen: $("share-screen"), camera: $("share-camera"),
                                           device: $("share-device"), stop: $("share-stop"),
                                           preview: $("share-preview"), status: $("share-status") }, isHall);
  return { render: () => { view(); controls.render(); }, share: controls.share };
}
