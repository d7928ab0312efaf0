// hallbridge protocol library: Socket.IO signaling + WebRTC + versioned state. No DOM here.
// Every page uses it; docs/protocol.md is the contract it follows.
import { io } from "/vendor/socket.io/socket.io.esm.min.js";

const ACK_TIMEOUT_MS = 15000;
const GATHER_TIMEOUT_MS = 5000;
const COMMAND_RETRIES = 3;   // a command whose outcome is unknown is sent again this many times
const RETRY_AFTER_MS = 1000;
const RETRY_CODES = new Set(["in_doubt", "no_reply"]);

// A command id (docs/protocol.md section 3): random hex; crypto.getRandomValues works on plain
// HTTP too (randomUUID needs a secure context).
function commandId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
// Patches committed by different server processes may arrive out of order: an early patch waits
// for the ones before it, at most this long (ms) and this many patches; then the client asks for a
// snapshot (state:get). Another process's patches came up to 1.7 s late with two processes taking
// ~20 commands/s on a 2-core machine (tests/store/test_patch_order.py): 5 s is 3x that. A patch
// that never comes is rare (the server's broadcast queue overflowing), so waiting costs little;
// asking early would add snapshots when the servers are busiest. docs/protocol.md, "state".
export const PATCH_WAIT_MS = 5000;
export const PATCH_BUFFER_MAX = 256;  // 5 s of ~50 patches/s (every site joining at once)
export const CONTENT = "content";  // the presentation slot (docs/protocol.md, section 6)
// what a presentation is sent at: a 1080p slide stays sharp, its rate low (issue 18)
export const CONTENT_ENCODING = { active: true, maxBitrate: 1_500_000, maxFramerate: 15 };

// A lossy line with a long round trip (a province at 5 % loss, 150 ms there and back) freezes
// the picture on every repair: a retransmission comes one round trip after the loss, a lost one
// two, later than the browser's jitter buffer waits. The receiver then holds the program's
// picture longer (RTCRtpReceiver.jitterBufferTarget, the browser keeping sound in step), enough
// for three rounds of repair, and lets go once the line has been clean for a while
// (docs/protocol.md §6, "A lossy line"). Every PLAYOUT_WINDOW_MS, from the video's own
// inbound-rtp and the nominated candidate pair; `held` is what it holds now (ms, or null: the
// browser's own).
export const PLAYOUT_WINDOW_MS = 1000;
export const PLAYOUT = { lossy: 0.01, clean: 0.003, cleanWindows: 30, perRtt: 3, addMs: 60, maxMs: 800 };
export function playoutTarget({ held, cleanWindows }, { lossShare, rttMs }) {
  if (lossShare >= PLAYOUT.lossy && rttMs > 0) {
    const want = Math.min(PLAYOUT.maxMs, Math.round(PLAYOUT.perRtt * rttMs + PLAYOUT.addMs));
    return { held: Math.max(held || 0, want), cleanWindows: 0 };  // never lower while lossy
  }
  if (held === null) return { held, cleanWindows: 0 };
  const clean = lossShare < PLAYOUT.clean ? cleanWindows + 1 : 0;
  return clean >= PLAYOUT.cleanWindows ? { held: null, cleanWindows: 0 } : { held, cleanWindows: clean };
}

export class BridgeClient extends EventTarget {
  // `socketFactory(url, options)`: Socket.IO's `io` unless a test gives its own
  constructor({ url = location.origin, token, socketFactory = io,
                patchWaitMs = PATCH_WAIT_MS, patchBufferMax = PATCH_BUFFER_MAX }) {
    super();
    this.url = url;
    this.token = token;
    this._socketFactory = socketFactory;
    this._patchWaitMs = patchWaitMs;
    this._patchBufferMax = patchBufferMax;
    this.me = null;        // {role, site}
    this.roster = [];      // [{id, name, short, region, kind}]
    this.state = null;     // {version, conference, program, sites: {id: {presence, since, joins}}}
    this.pc = null;
    this.socket = null;
    this.slotByMid = new Map();
    this.senders = {};
    this._quality = null;
    this._media = null;    // what the last joinMedia asked for, to rejoin after a reconnect
    this._commands = new Set();  // events that take a command id (welcome.commands)
    this.ice = { servers: [] };  // welcome.ice
    this.iceTransportPolicy = typeof location !== "undefined"
      && new URLSearchParams(location.search).get("ice") === "relay" ? "relay" : "all";
    this._early = new Map();  // version -> {patch, at}: arrived before the patch it follows
    this._gapTimer = null;    // asks for a snapshot when the oldest early patch waited too long
    this._waitFrom = 0;       // the last snapshot (performance.now()): early patches wait anew
    this._resyncing = false;  // a state:get for a gap is on its way
  }

  connect() {
    const socket = this._socketFactory(this.url, { auth: { token: this.token }, transports: ["websocket"],
      reconnectionDelay: 500, reconnectionDelayMax: 2000 });  // back soon after a network loss
    this.socket = socket;
    socket.on("welcome", (w) => this._onWelcome(w));
    socket.on("state", (patch) => this._onPatch(patch));
    socket.on("media:quality", (q) => this._applyQuality(q));
    socket.on("state:snapshot", (state) => this._replace(state));
    socket.on("connect_error", (err) => this._emit("error", {
      code: (err.data && err.data.code) || "network", message: err.message }));
    socket.on("disconnect", (reason) => {
      this._forgetEarly();  // the welcome after a reconnect brings a snapshot that covers them
      this._emit("connection", { connected: false, reason });
    });
    // the state store was emptied and refilled from the server's memory (a snapshot follows)
    socket.on("store:recovered", (d) => this._emit("notice", { code: "store_recovered", ...d }));
    // the link was revoked or expired: the server disconnects next and will not take it back
    socket.on("session:ended", ({ reason }) => {
      this.ended = reason;
      this._emit("error", { code: "session_ended", reason, message: `session ended: ${reason}` });
    });
    return this;
  }

  async _onWelcome(w) {
    const rejoin = this.me !== null && this._media !== null;
    this.me = w.you;
    this.roster = w.roster;
    this.hall = w.hall;
    this.mediaPlan = w.media;
    this._commands = new Set(w.commands || []);
    this.ice = w.ice || { servers: [] };
    this.state = w.state;
    this._checkPresenting(w.state);
    this._emit("welcome", w);
    this._emit("connection", { connected: true });
    this._emit("state", this.state);
    this._applyEarly();  // patches that came before the welcome, newer than its snapshot
    if (rejoin) {
      try { await this.joinMedia(this._media); } catch (e) { this._emit("error", { code: "media", message: String(e) }); }
    }
  }

  // Patches are applied in version order, each exactly once: an older one is ignored, an early
  // one waits (bounded) for the ones before it, a gap that does not close asks for a snapshot.
  _onPatch(patch) {
    if (this.state && patch.version <= this.state.version) return;  // had it already
    if (this.state && patch.version === this.state.version + 1) {
      this._apply(patch);
      this._applyEarly();
      return;
    }
    this._early.set(patch.version, { patch, at: performance.now() });
    if (this._early.size > this._patchBufferMax) {
      this._early.delete(Math.min(...this._early.keys()));  // the snapshot will cover the oldest
      this._resync();
    } else {
      this._armGapTimer();
    }
  }

  _apply(patch) {
    const next = { ...this.state };
    for (const [key, value] of Object.entries(patch)) {
      if (key === "sites") next.sites = { ...this.state.sites, ...value };
      else if (key !== "events") next[key] = value;  // events: what happened, not state
    }
    this.state = next;
    if (patch.events) this._emit("events", patch.events);
    this._checkPresenting(next);
    this._emit("state", next);
  }

  // Apply the early patches that now follow on, drop those the state already has.
  _applyEarly() {
    if (!this.state) return;
    for (const version of this._early.keys()) {
      if (version <= this.state.version) this._early.delete(version);
    }
    let next;
    while ((next = this._early.get(this.state.version + 1))) {
      this._early.delete(next.patch.version);
      this._apply(next.patch);
    }
    this._armGapTimer();
  }

  // The gap in front of the early patches gets patchWaitMs from when the first of them came,
  // or from the last snapshot (or failed state:get) when that was later.
  _armGapTimer() {
    clearTimeout(this._gapTimer);
    this._gapTimer = null;
    if (!this._early.size || this._resyncing) return;
    const since = Math.max(this._waitFrom, Math.min(...[...this._early.values()].map((e) => e.at)));
    const wait = Math.max(0, since + this._patchWaitMs - performance.now());
    this._gapTimer = setTimeout(() => this._resync(), wait);
  }

  _forgetEarly() {
    this._early.clear();
    this._armGapTimer();
  }

  // A gap did not close (or too many patches wait): one state:get at a time.
  async _resync() {
    if (this._resyncing) return;
    this._resyncing = true;
    this._armGapTimer();
    let reply;
    try {
      reply = await this.request("state:get", {});
    } catch (err) {
      this._resyncing = false;
      this._waitFrom = performance.now();  // the early patches wait again before the next try
      this._emit("error", { code: err.code || "network", message: `state:get: ${err.message}` });
      this._armGapTimer();
      return;
    }
    this._resyncing = false;
    this._takeSnapshot(reply.state);
  }

  async snapshot() {
    const reply = await this.request("state:get", {});
    this._takeSnapshot(reply.state);
    return this.state;
  }

  // A state:get reply from a process that has not yet seen what this client applied is older than
  // it: keep the newer state (the early patches still apply to it).
  _takeSnapshot(state) {
    if (this.state && state.version < this.state.version) {
      this._waitFrom = performance.now();
      this._applyEarly();
    } else {
      this._replace(state);
    }
  }

  // A snapshot replaces the state; the early patches newer than it follow, in order.
  _replace(state) {
    this.state = state;
    this._checkPresenting(state);
    this._waitFrom = performance.now();
    this._emit("state", state);
    this._applyEarly();
  }

  // One event and its ack. A state-changing command (welcome.commands) carries a new command id,
  // so that when its outcome is unknown (in_doubt, or no ack in time) it is sent again, with the
  // same id, and made once (docs/protocol.md, section 3).
  async request(event, payload) {
    const identified = this._commands.has(event) && payload && typeof payload === "object";
    const sent = identified && !("id" in payload) ? { ...payload, id: commandId() } : payload;
    for (let attempt = 0; ; attempt++) {
      let reply;
      try {
        reply = await this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, sent);
      } catch (err) {
        reply = { ok: false, error: { code: "no_reply", message: "no reply" } };
      }
      if (reply && reply.ok) return reply;
      const error = (reply && reply.error) || { code: "no_reply", message: "no reply" };
      if (identified && RETRY_CODES.has(error.code) && attempt < COMMAND_RETRIES) {
        this._emit("notice", { code: "command_in_doubt", event });
        await new Promise((resolve) => setTimeout(resolve, RETRY_AFTER_MS));
        continue;
      }
      throw Object.assign(new Error(error.message), { code: error.code });
    }
  }

  // Join the media plane: offer the m-lines `welcome.media.lines` lists, in order, publishing
  // `stream` (may be null) on the lines marked `send`. Tracks arrive as "track" events with the
  // slot they carry ("program-video", "program-audio", "hall-audio", "thumb:<site>", ...).
  // A publisher's camera goes on two video lines: `layer: "high"` (program-video) and
  // `layer: "low"`, the second sent only while media:quality asks for it (on the program).
  async joinMedia({ stream = null } = {}) {
    this._media = { stream };
    if (this.pc) this.pc.close();
    // the STUN/TURN servers welcome gave this client (TURN credentials of its own, expiring);
    // ?ice=relay on the page's address forces the TURN path (a technician's check of it)
    const pc = new RTCPeerConnection({ iceServers: (this.ice && this.ice.servers) || [],
                                       iceTransportPolicy: this.iceTransportPolicy });
    this.pc = pc;
    this.slotByMid = new Map();
    this.senders = {};
    const lines = this.mediaPlan.lines;
    const transceivers = lines.map((line) => {
      if (line.slot === CONTENT) {  // sendrecv with no track: a shared screen goes on it later
        const track = line.send ? this._content && this._content.sent : null;
        const tr = pc.addTransceiver(track || "video", { direction: line.send ? "sendrecv" : "recvonly" });
        if (line.send) this.senders.content = tr.sender;
        preferCodec(tr, "video/VP8");
        return tr;
      }
      const track = line.send && stream ? stream.getTracks().find((t) => t.kind === line.kind) : null;
      const direction = track ? (line.slot ? "sendrecv" : "sendonly") : (line.slot ? "recvonly" : "inactive");
      const low = line.layer === "low";
      const init = { direction, streams: track ? [stream] : [] };
      if (low) init.sendEncodings = [{ active: false }];  // until media:quality asks for it
      const tr = pc.addTransceiver(track || line.kind, init);
      if (track) this.senders[low ? "videoLow" : line.kind] = tr.sender;
      preferCodec(tr, line.kind === "audio" ? "audio/opus" : "video/VP8");
      return tr;
    });
    pc.ontrack = (ev) => {
      const index = transceivers.indexOf(ev.transceiver);
      this._emit("track", { track: ev.track, slot: index >= 0 ? lines[index].slot : null });
    };
    pc.onconnectionstatechange = () => this._emit("media", { state: pc.connectionState });
    await pc.setLocalDescription(await pc.createOffer());
    await gatheringComplete(pc);
    const reply = await this.request("media:offer", { type: "offer", sdp: pc.localDescription.sdp });
    await pc.setRemoteDescription(reply.answer);
    transceivers.forEach((tr, i) => { if (lines[i].slot) this.slotByMid.set(tr.mid, lines[i].slot); });
    if (this._quality) await this._applyQuality(this._quality);
    if (this._content && this.senders.content) await this._encodeContent(this.senders.content);
    this._guardPlayout(pc, transceivers, lines);
    return pc;
  }

  // The playout guard above, for this peer connection's received video (program and content);
  // its timer ends with the connection.
  _guardPlayout(pc, transceivers, lines) {
    const video = transceivers.filter((tr, i) => lines[i].kind === "video" && lines[i].slot
      && (lines[i].slot === CONTENT || lines[i].slot.startsWith("program")));
    const program = transceivers.find((tr, i) => lines[i].slot === "program-video");
    if (!program || !("jitterBufferTarget" in program.receiver)) return;
    let state = { held: null, cleanWindows: 0 };
    let last = null;
    this.playout = { held: null, lossShare: 0, rttMs: 0 };
    const timer = setInterval(async () => {
      if (this.pc !== pc || pc.connectionState === "closed") { clearInterval(timer); return; }
      let report;
      try { report = await program.receiver.getStats(); } catch (err) { return; }
      let lost = 0, nacks = 0, received = 0, rttMs = 0;
      for (const s of report.values()) {
        if (s.type === "inbound-rtp") {
          lost = s.packetsLost || 0; nacks = s.nackCount || 0; received = s.packetsReceived || 0;
        }
        if (s.type === "candidate-pair" && s.nominated && s.currentRoundTripTime) rttMs = 1000 * s.currentRoundTripTime;
      }
      const now = { lost, nacks, received };
      if (last) {
        // a packet repaired in time counts as received: the NACKs sent say it was missing
        const missing = Math.max(0, now.lost - last.lost, now.nacks - last.nacks);
        const total = Math.max(0, now.received - last.received) + Math.max(0, now.lost - last.lost);
        const lossShare = total > 0 ? Math.min(1, missing / total) : 0;
        const next = playoutTarget(state, { lossShare, rttMs });
        if (next.held !== state.held) {
          for (const tr of video) {
            try { tr.receiver.jitterBufferTarget = next.held; } catch (err) { /* out of range */ }
          }
        }
        state = next;
        this.playout = { held: state.held, lossShare, rttMs: Math.round(rttMs) };
      }
      last = now;
    }, PLAYOUT_WINDOW_MS);
  }

  // Whether this client can present: it offers a content line to send on.
  get canPresent() {
    return Boolean(this.mediaPlan && this.mediaPlan.lines.some((l) => l.slot === CONTENT && l.send));
  }

  // Present `track` (a shared screen, a second camera or capture input) on the content line:
  // sent at once, then present:start asks for the token; a refusal (forbidden without a grant,
  // conflict while another site presents) takes the track off again and is thrown. Presenting
  // again with another track switches the source. The track ending (the browser's "stop
  // sharing") ends the presentation.
  async present(track, source) {
    const sender = this.senders && this.senders.content;
    if (!sender) throw Object.assign(new Error("no content line"), { code: "bad_request" });
    const previous = this._content;
    if ("contentHint" in track && !track.contentHint) track.contentHint = source === "screen" ? "detail" : "motion";
    const fresh = keepFresh(track);
    // not ours to stop until the token is (version: the state that names us presenter)
    this._content = { track, sent: fresh.track, stop: fresh.stop, stopRelay: fresh.stopRelay, source,
                      version: Infinity };
    await sender.replaceTrack(fresh.track);
    await this._encodeContent(sender);
    let reply;
    try {
      reply = await this.request("present:start", { source });
    } catch (err) {
      this._content = previous;
      await sender.replaceTrack(previous ? previous.sent : null);
      (previous && previous.track === track ? fresh.stopRelay : fresh.stop)();
      throw err;
    }
    if (previous) (previous.track === track ? previous.stopRelay : previous.stop)();  // a switch of source
    this._content.version = reply.version;
    track.addEventListener("ended", () => { if (this._content && this._content.track === track) this.stopPresenting(); });
    this._emit("presenting", { source });
    return reply;
  }

  // Stop presenting: the track is stopped and taken off the line, present:stop gives the token
  // back (unless `tokenGone`: a revoke or the grace period already took it).
  async stopPresenting(tokenGone = false) {
    const content = this._content;
    if (!content) return;
    this._content = null;
    content.stop();
    if (this.senders && this.senders.content) await this.senders.content.replaceTrack(null);
    this._emit("presenting", null);
    if (!tokenGone) await this.request("present:stop", {}).catch(() => {});
  }

  get presenting() { return this._content ? this._content.source : null; }

  // A state that no longer names this client as the presenter (revoked, lost after a drop)
  // stops its share; a state older than the present:start reply does not count.
  _checkPresenting(state) {
    const c = this._content;
    if (!c || !state || !state.content || state.version < c.version) return;
    const mine = this.me && this.me.site && this.me.site.id;
    if (state.content.presenter !== mine) this.stopPresenting(true);
  }

  // Slides and screens: detail over motion, up to CONTENT_ENCODING's rate and frame rate.
  async _encodeContent(sender) {
    const params = sender.getParameters();
    if (!params.encodings || !params.encodings.length) params.encodings = [{}];
    for (const e of params.encodings) Object.assign(e, CONTENT_ENCODING);
    params.degradationPreference = "maintain-resolution";
    try { await sender.setParameters(params); } catch (err) {
      delete params.degradationPreference;  // a browser without it keeps its default
      try { await sender.setParameters(params); } catch (err2) { this._emit("error", { code: "media", message: String(err2) }); }
    }
  }

  // Switch the camera or microphone without renegotiating (a device picker).
  async replaceTrack(kind, track) {
    const sender = this.senders && this.senders[kind];
    if (sender) await sender.replaceTrack(track);
    const low = kind === "video" && this.senders && this.senders.videoLow;
    if (low) await low.replaceTrack(track);
    if (this._media && this._media.stream) {
      for (const old of this._media.stream.getTracks().filter((x) => x.kind === kind)) {
        this._media.stream.removeTrack(old);
        old.stop();
      }
      this._media.stream.addTrack(track);
    }
  }

  // The bridge asks a publisher for full quality (on the program) or a thumbnail, and for the
  // low layer beside full quality (q.low), or for none (q.low null).
  async _applyQuality(q) {
    this._quality = q;
    const sender = this.senders && this.senders.video;
    if (!sender || !sender.track) return;
    await this._encode(sender, q, true);
    const low = this.senders.videoLow;
    if (low && low.track) await this._encode(low, q.low || q, Boolean(q.low));
    this._emit("quality", q);
  }

  async _encode(sender, q, active) {
    const params = sender.getParameters();
    if (!params.encodings || !params.encodings.length) params.encodings = [{}];
    const captured = sender.track.getSettings().height || q.height;
    for (const e of params.encodings) {
      e.active = active;
      e.maxBitrate = q.maxBitrate;
      e.maxFramerate = q.maxFramerate;
      e.scaleResolutionDownBy = Math.max(1, captured / q.height);
    }
    try { await sender.setParameters(params); } catch (err) { this._emit("error", { code: "media", message: String(err) }); }
  }

  async leaveMedia() {
    this._media = null;
    if (this.pc) { this.pc.close(); this.pc = null; }
    await this.request("media:leave", {});
  }

  // Inbound statistics of one received slot (framesDecoded, packetsLost, jitter, frame size).
  async slotStats(slot) {
    if (!this.pc) return null;
    const report = await this.pc.getStats();
    for (const s of report.values()) {
      if (s.type === "inbound-rtp" && this.slotByMid.get(s.mid) === slot) return s;
    }
    return null;
  }

  async programStats() { return this.slotStats("program-video"); }

  async contentStats() { return this.slotStats(CONTENT); }

  close() {
    if (this.pc) this.pc.close();
    if (this.socket) this.socket.close();
  }

  siteName(id) {
    const site = this.roster.find((s) => s.id === id);
    return site ? site.name : id;
  }

  _emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }
}

// A still slide or an idle screen makes no frames, and an encoder cannot answer a keyframe
// request (a late joiner, a switch of presenter, a repair) without one: a site would wait for the
// next slide. Where the browser can (MediaStreamTrackProcessor/Generator, Chromium), the content
// goes through a relay that writes the last frame again after IDLE_REPEAT_MS without a new one
// (which also lets the encoder sharpen a still slide). { track: what to send, stop() (the relay
// and the source), stopRelay() (the relay only) }.
export const IDLE_REPEAT_MS = 200;
export function keepFresh(track) {
  const plain = { track, stop: () => track.stop(), stopRelay: () => {} };
  if (typeof MediaStreamTrackProcessor === "undefined" || typeof MediaStreamTrackGenerator === "undefined"
      || track.kind !== "video") return plain;
  let generator;
  try {
    generator = new MediaStreamTrackGenerator({ kind: "video" });
  } catch (err) { return plain; }
  generator.contentHint = track.contentHint;
  const reader = new MediaStreamTrackProcessor({ track }).readable.getReader();
  const writer = generator.writable.getWriter();
  let last = null;
  let lastAt = 0;
  let stopped = false;
  let stamp = 0;  // microseconds, increasing: real and repeated frames in one order
  const write = (frame) => {
    stamp = Math.max(stamp + 1, Math.round(performance.now() * 1000));
    const out = new VideoFrame(frame, { timestamp: stamp });
    writer.write(out).catch(() => out.close());
  };
  let keepSource = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    if (last) { last.close(); last = null; }
    reader.cancel().catch(() => {});
    writer.close().catch(() => {});
    generator.stop();
    if (!keepSource) track.stop();
  };
  const stopRelay = () => { keepSource = true; stop(); };
  const timer = setInterval(() => {
    if (!stopped && last && performance.now() - lastAt >= IDLE_REPEAT_MS) {
      lastAt = performance.now();
      write(last);
    }
  }, IDLE_REPEAT_MS / 2);
  (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ done: true }));
      if (done || stopped) { if (value) value.close(); break; }
      if (last) last.close();
      last = value;
      lastAt = performance.now();
      write(value);
    }
    stop();
  })();
  return { track: generator, stop, stopRelay };
}

function preferCodec(transceiver, mime) {
  if (!RTCRtpReceiver.getCapabilities || !transceiver.setCodecPreferences) return;
  const caps = RTCRtpReceiver.getCapabilities(transceiver.receiver.track.kind).codecs;
  const wanted = caps.filter((c) => c.mimeType === mime || c.mimeType.endsWith("/rtx"));
  if (wanted.length) transceiver.setCodecPreferences(wanted);
}

function gatheringComplete(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { clearTimeout(timer); pc.removeEventListener("icegatheringstatechange", check); resolve(); };
    const check = () => { if (pc.iceGatheringState === "complete") done(); };
    const timer = setTimeout(done, GATHER_TIMEOUT_MS);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

// The token rides in the URL fragment (never sent to the server, never in its logs); keep it
// for this tab and take it out of the address bar.
export function takeToken() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  if (token) {
    sessionStorage.setItem("hallbridge.token", token);
    history.replaceState(null, "", location.pathname + location.search);
    return token;
  }
  return sessionStorage.getItem("hallbridge.token");
}
