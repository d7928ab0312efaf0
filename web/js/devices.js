// Camera and microphone pickers (DOM helpers shared by the site and hall pages).

export async function fillPickers(cameraSelect, microphoneSelect) {
  const devices = await navigator.mediaDevices.enumerateDevices();
  for (const [kind, select] of [["videoinput", cameraSelect], ["audioinput", microphoneSelect]]) {
    if (!select) continue;
    select.replaceChildren(...devices.filter((d) => d.kind === kind).map((d, i) =>
      Object.assign(document.createElement("option"), { value: d.deviceId, textContent: d.label || `${kind} ${i + 1}` })));
  }
}

export async function openDevice(kind, deviceId, video = { width: 1280, height: 720 }) {
  const constraints = kind === "video"
    ? { video: { ...video, deviceId: deviceId ? { exact: deviceId } : undefined } }
    : { audio: { deviceId: deviceId ? { exact: deviceId } : undefined } };
  const stream = await navigator.mediaDevices.getUserMedia(constraints);
  return stream.getTracks()[0];
}
