// hallbridge protocol library: Socket.IO signaling + WebRTC + versioned state. No DOM here.
// Every page uses it; docs/protocol.md is the contract it follows.
import { io } from "/vendor/socket.io/socket.io.esm.min.js";

const ACK_TIMEOUT_MS = 15000;
const GATHER_TIMEOUT_MS = 5000;

export class BridgeClient extends EventTarget {
  constructor({ url = location.origin, token }) {
    super();
    this.url = url;
    this.token = token;
    this.me = null;        // {role, site}
    this.roster = [];      // [{id, name, short, region, kind}]
    this.state = null;     // {version, conference, program, sites: {id: {presence, since, joins}}}
    this.pc = null;
    this.socket = null;
    this.slotByMid = new Map();
    this.senders = {};
    this._quality = null;
    this._media = null;    // what the last joinMedia asked for, to rejoin after a reconnect
  }

  connect() {
    const socket = io(this.url, { auth: { token: this.token }, transports: ["websocket"],
      reconnectionDelay: 500, reconnectionDelayMax: 2000 });  // back soon after a network loss
    this.socket = socket;
    socket.on("welcome", (w) => this._onWelcome(w));
    socket.on("state", (patch) => this._onPatch(patch));
    socket.on("media:quality", (q) => this._applyQuality(q));
    socket.on("state:snapshot", (state) => { this.state = state; this._emit("state", state); });
    socket.on("connect_error", (err) => this._emit("error", {
      code: (err.data && err.data.code) || "network", message: err.message }));
    socket.on("disconnect", (reason) => this._emit("connection", { connected: false, reason }));
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
    this.state = w.state;
    this._emit("welcome", w);
    this._emit("connection", { connected: true });
    this._emit("state", this.state);
    if (rejoin) {
      try { await this.joinMedia(this._media); } catch (e) { this._emit("error", { code: "media", message: String(e) }); }
    }
  }

  _onPatch(patch) {
    if (!this.state || patch.version !== this.state.version + 1) {
      this.snapshot();  // we missed something: ask for the whole state
      return;
    }
    const next = { ...this.state };
    for (const [key, value] of Object.entries(patch)) {
      if (key === "sites") next.sites = { ...this.state.sites, ...value };
      else if (key !== "events") next[key] = value;  // events: what happened, not state
    }
    this.state = next;
    if (patch.events) this._emit("events", patch.events);
    this._emit("state", next);
  }

  async snapshot() {
    const reply = await this.request("state:get", {});
    this.state = reply.state;
    this._emit("state", this.state);
    return this.state;
  }

  async request(event, payload) {
    const reply = await this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload);
    if (!reply || !reply.ok) {
      const error = (reply && reply.error) || { code: "no_reply", message: "no reply" };
      throw Object.assign(new Error(error.message), { code: error.code });
    }
    return reply;
  }

  // Join the media plane: offer the m-lines `welcome.media.lines` lists, in order, publishing
  // `stream` (may be null) on the lines marked `send`. Tracks arrive as "track" events with the
  // slot they carry ("program-video", "program-audio", "hall-audio", "thumb:<site>", ...).
  async joinMedia({ stream = null } = {}) {
    this._media = { stream };
    if (this.pc) this.pc.close();
    const pc = new RTCPeerConnection({ iceServers: [] });
    this.pc = pc;
    this.slotByMid = new Map();
    this.senders = {};
    const lines = this.mediaPlan.lines;
    const transceivers = lines.map((line) => {
      const track = line.send && stream ? stream.getTracks().find((t) => t.kind === line.kind) : null;
      const direction = track ? (line.slot ? "sendrecv" : "sendonly") : (line.slot ? "recvonly" : "inactive");
      const tr = pc.addTransceiver(track || line.kind, { direction, streams: track ? [stream] : [] });
      if (track) this.senders[line.kind] = tr.sender;
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
    return pc;
  }

  // Switch the camera or microphone without renegotiating (a device picker).
  async replaceTrack(kind, track) {
    const sender = this.senders && this.senders[kind];
    if (sender) await sender.replaceTrack(track);
    if (this._media && this._media.stream) {
      for (const old of this._media.stream.getTracks().filter((x) => x.kind === kind)) {
        this._media.stream.removeTrack(old);
        old.stop();
      }
      this._media.stream.addTrack(track);
    }
  }

  // The bridge asks a publisher for full quality (on the program) or a thumbnail.
  async _applyQuality(q) {
    this._quality = q;
    const sender = this.senders && this.senders.video;
    if (!sender || !sender.track) return;
    const params = sender.getParameters();
    if (!params.encodings || !params.encodings.length) params.encodings = [{}];
    const captured = sender.track.getSettings().height || q.height;
    for (const e of params.encodings) {
      e.maxBitrate = q.maxBitrate;
      e.maxFramerate = q.maxFramerate;
      e.scaleResolutionDownBy = Math.max(1, captured / q.height);
    }
    try { await sender.setParameters(params); } catch (err) { this._emit("error", { code: "media", message: String(err) }); }
    this._emit("quality", q);
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
