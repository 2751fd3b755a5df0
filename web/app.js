// The demo page, built on fer.js: photos (upload, drop, paste, examples) and the live webcam.
// ?models=URL picks the model folder (default: the Hub model repo); ?ort=URL runs the networks on the
// onnxruntime-web in that dist/ folder instead of the page's own runtime, with ?threads=N threads (the benchmarks'
// comparison).
import { Tracker, load } from "./fer.js";

export const MODEL_REPO = "fer-model/fer-cnn"; // the Hub model repo that push_to_hub fills
const NO_FACE = "No face found: a face needs to be at least ~24 pixels wide, turned towards the camera and not covered."; // fer_model.results
const SMOOTHING = 0.5; // weight of a face's past scores in the live view (video.predict_video's `smoothing`)
const LIVE_TTA = "none"; // every camera frame: one view a face; photos get the default flip TTA
const EXAMPLES = ["examples/astronaut.jpg", "examples/chelsea.jpg"];
const thumbnail = (url) => url.replace("examples/", "thumbnails/"); // what shows until one is clicked

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const models = params.get("models") || `https://huggingface.co/${MODEL_REPO}/resolve/main/`;
const ort = params.get("ort") || undefined;
const threads = params.get("threads") ? Number(params.get("threads")) : undefined;

function say(text, error = false) {
  $("message").textContent = text;
  $("message").classList.toggle("error", error);
}

function simdSupported() { // a one-function module using a v128 instruction (as wasm-feature-detect checks)
  return typeof WebAssembly === "object" && WebAssembly.validate(new Uint8Array(
    [0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]));
}

/** Registers sw.js, then fetches this first visit's files again through it, so that it keeps them all and a
second visit works offline (files fetched before the worker took over the page went past it). */
async function keepForOffline() {
  if (!("serviceWorker" in navigator) || !location.protocol.startsWith("http")) return false;
  await navigator.serviceWorker.register("sw.js");
  await navigator.serviceWorker.ready;
  if (!navigator.serviceWorker.controller) {
    await new Promise((resolve) => navigator.serviceWorker.addEventListener("controllerchange", resolve, { once: true }));
  }
  await ready;
  const urls = [location.href, ...EXAMPLES.map((url) => new URL(thumbnail(url), location.href).href),
                ...performance.getEntriesByType("resource").map((entry) => entry.name)];
  await Promise.all(urls.filter((url) => url.startsWith("http")).map((url) => fetch(url).catch(() => null)));
  return true;
}

const started = performance.now();
const ready = (async () => {
  if (!simdSupported()) throw new Error("This browser lacks WebAssembly SIMD, which the models need: try a current Chrome, Edge, Firefox or Safari.");
  const fer = await load({ models, ort, threads });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  $("labels").textContent = `${fer.labels.length} labels: ${fer.labels.join(", ")}`; // the model's own (config.json)
  $("loading").hidden = true;
  $("status-text").textContent = `Ready in ${seconds} s: ${fer.info.precision} model on ${fer.info.runtime}` +
    (fer.info.threads > 1 ? `, ${fer.info.threads} threads` : "") + ".";
  return fer;
})();
ready.catch((err) => { $("loading").hidden = true; $("status-text").textContent = "The models could not be loaded."; say(err.message, true); });
const offlineReady = keepForOffline().catch(() => false);

// ---- drawing ----
function drawFaces(context, faces, selected = -1, ids = null) {
  const scale = Math.max(context.canvas.width, context.canvas.height) / 640;
  context.lineWidth = Math.max(2, 2 * scale);
  context.font = `${Math.round(Math.max(12, 15 * scale))}px ui-sans-serif, system-ui, sans-serif`;
  const texts = faces.map((face, i) => `#${ids ? ids[i] : i + 1} ${describe(face)}`);
  const height = Math.round(Math.max(12, 15 * scale)) + 6;
  const sizes = texts.map((text) => [context.measureText(text).width + 8, height]);
  const corners = labelPositions(faces.map((face) => face.box), sizes, [context.canvas.width, context.canvas.height]);
  faces.forEach((face, i) => {
    context.strokeStyle = i === selected ? "#4f46e5" : "#ffc800";
    context.strokeRect(...face.box);
  });
  faces.forEach((face, i) => {
    const [left, top] = corners[i], [width] = sizes[i];
    context.fillStyle = i === selected ? "#4f46e5" : "#ffc800";
    context.fillRect(left, top, width, height);
    context.fillStyle = i === selected ? "white" : "black";
    context.fillText(texts[i], left + 4, top + height - 6);
  });
}

/** predictor.label_positions: each face's label corner, whole inside the picture and clear of the labels placed
before it and, where it can be, of the other faces (above the box, below, inside its top and bottom, further up
and down; flush left or right); else the least overlap, another label counting four times another face. */
export function labelPositions(boxes, sizes, [imageWidth, imageHeight]) {
  const placed = [];
  return boxes.map(([x, y, w, h], i) => {
    const others = boxes.filter((_, j) => j !== i);
    const [width, height] = sizes[i];
    let rows = [y - height, y + h, y, y + h - height, ...[2, 3, 4].map((k) => y - height * k), ...[1, 2, 3].map((k) => y + h + height * k)];
    rows = rows.filter((top) => top >= 0 && top <= imageHeight - height);
    if (!rows.length) rows = [Math.max(0, Math.min(y - height, imageHeight - height))];
    const places = rows.flatMap((top) => [x, x + w - width].map((left) => [Math.max(0, Math.min(left, imageWidth - width)), top]));
    const covered = (left, top, rects) => rects.reduce((sum, [a, c, b, d]) =>
      sum + Math.max(0, Math.min(left + width, a + b) - Math.max(left, a)) * Math.max(0, Math.min(top + height, c + d) - Math.max(top, c)), 0);
    const overlap = places.map(([left, top]) => 4 * covered(left, top, placed) + covered(left, top, others));
    const best = places[overlap.indexOf(Math.min(...overlap))];
    placed.push([best[0], best[1], width, height]);
    return best;
  });
}

function describe(face) { // FacePrediction.describe
  const pct = (p) => `${Math.round(p * 100)}%`;
  if (!face.uncertain) return `${face.label} ${pct(face.confidence)}`;
  const second = Object.keys(face.scores).sort((a, b) => face.scores[b] - face.scores[a])[1];
  return `uncertain: ${face.label} ${pct(face.confidence)} / ${second} ${pct(face.scores[second])}`;
}

function drawBars(element, scores) {
  element.replaceChildren(...Object.entries(scores || {}).sort((a, b) => b[1] - a[1]).map(([label, p]) => {
    const row = document.createElement("div");
    row.innerHTML = `<span>${label}</span><span class="bar" style="width:${(p * 100).toFixed(1)}%"></span><span>${Math.round(p * 100)}%</span>`;
    return row;
  }));
}

// ---- photos ----
let photo = { image: null, faces: [] };

async function analyzeUrl(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`could not fetch ${url}: HTTP ${response.status}`);
  return analyzeBlob(await response.blob());
}

async function analyzeBlob(blob) {
  let image, faces;
  try {
    image = await createImageBitmap(blob, { imageOrientation: "from-image" });
  } catch {
    return refuse("That file is not an image this browser can read.");
  }
  const fer = await ready;
  try {
    faces = await fer.analyze(image);
  } catch (err) {
    return refuse(err.message);
  }
  photo = { image, faces };
  showPhoto(0);
  say(faces.length ? `${faces.length} face${faces.length > 1 ? "s" : ""}: main face ${describe(faces[0])}.` : NO_FACE);
  return faces;
}

/** A file that cannot be read: its message, and nothing left on screen of the photo before it. */
function refuse(message) {
  photo = null;
  $("photo").hidden = true; $("drop-hint").hidden = false; $("another").hidden = true;
  $("faces").replaceChildren();
  drawBars($("bars"), undefined);
  say(message, true);
  return [];
}

function showPhoto(selected) {
  const canvas = $("photo"), { image, faces } = photo;
  canvas.width = image.width; canvas.height = image.height;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  drawFaces(context, faces, faces.length > 1 ? selected : -1);
  canvas.hidden = false; $("drop-hint").hidden = true; $("another").hidden = false;
  $("faces").replaceChildren(...faces.map((face, i) => {
    const button = document.createElement("button");
    button.textContent = `face ${i + 1}: ${describe(face)}`;
    button.setAttribute("aria-pressed", String(i === selected));
    button.onclick = () => showPhoto(i);
    return button;
  }));
  drawBars($("bars"), faces[selected]?.scores);
}

function run(promise) { promise.catch((err) => say(err.message, true)); }

$("file").onchange = (event) => {
  const file = event.target.files[0];
  event.target.value = ""; // choosing the same file again is a change too
  if (file) run(analyzeBlob(file));
};
$("another").onclick = () => $("file").click();
const drop = $("drop");
drop.ondragover = (event) => { event.preventDefault(); drop.classList.add("drag"); };
drop.ondragleave = () => drop.classList.remove("drag");
drop.ondrop = (event) => {
  event.preventDefault(); drop.classList.remove("drag");
  const file = event.dataTransfer.files[0];
  if (file) run(analyzeBlob(file));
};
document.onpaste = (event) => {
  const item = [...event.clipboardData.items].find((i) => i.type.startsWith("image/"));
  if (item) run(analyzeBlob(item.getAsFile()));
};
$("photo").onclick = (event) => { // select the face under the pointer
  const canvas = $("photo"), rect = canvas.getBoundingClientRect();
  const x = (event.clientX - rect.left) * canvas.width / rect.width, y = (event.clientY - rect.top) * canvas.height / rect.height;
  const hit = photo.faces.findIndex(({ box: [bx, by, bw, bh] }) => x >= bx && x <= bx + bw && y >= by && y <= by + bh);
  if (hit >= 0) showPhoto(hit);
};
ready.then(() => { // the examples' thumbnails come after the models'; a photo itself when it is clicked
  for (const url of EXAMPLES) {
    const img = document.createElement("img");
    img.src = thumbnail(url); img.alt = url.split("/").pop();
    img.onclick = () => run(analyzeUrl(url));
    $("examples").append(img);
  }
}, () => {});

// ---- the live webcam ----
const live = { frames: 0, skipped: 0, times: [], tracker: new Tracker(), history: new Map(), stages: [], running: false,
               last: [], shown: 0, track: null };

function cameraMessage(err) {
  if (!navigator.mediaDevices?.getUserMedia) return "This page cannot use a camera here (it needs HTTPS or localhost, and a browser that allows it).";
  if (err?.name === "NotAllowedError") return "Camera permission was refused: allow the camera for this page in the browser's site settings, then try again.";
  if (err?.name === "NotFoundError" || err?.name === "OverconstrainedError") return "No camera was found on this device.";
  return `The camera could not be started: ${err?.message || err}`;
}

async function startCamera() {
  const fer = await ready;
  if (live.running) return;
  let stream;
  try {
    if (!navigator.mediaDevices?.getUserMedia) throw new Error("no camera access");
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
  } catch (err) {
    const text = cameraMessage(err);
    say(text, true);
    throw new Error(text);
  }
  const video = $("video");
  video.srcObject = stream;
  await video.play();
  live.running = true;
  live.track = stream.getVideoTracks()[0];
  $("camera").textContent = "Stop the camera";
  $("rest").disabled = false;
  say("");
  return new Promise((resolve, reject) => {
    eachFrame(live.track, video, async (frame) => {
      await analyzeFrame(fer, frame, video);
      if (live.frames === 1) resolve();
    }).catch((err) => { live.running = false; say(err.message, true); reject(err); });
  });
}

/** Calls `analyze(frame)` on the camera's frames, one at a time, until the camera stops. Where the browser has
MediaStreamTrackProcessor (Chromium) every frame as the camera delivers it: up to two wait while one is read, so
that a slow frame delays the next rather than losing one, and a frame shown is never more than two behind;
elsewhere each frame the video shows once the last one has been read. Frames never read count in `live.skipped`:
gaps in the frames' timestamps, or in the video's count of frames shown (`skip(n)`, while `running()`). */
async function eachFrame(track, video, analyze, { running = () => live.running, skip = (n) => { live.skipped += n; } } = {}) {
  if (typeof MediaStreamTrackProcessor === "function") {
    const reader = new MediaStreamTrackProcessor({ track, maxBufferSize: 2 }).readable.getReader();
    const interval = 1e6 / (track.getSettings().frameRate || 30); // microseconds, as frames' timestamps
    let last = null;
    while (running()) {
      const { value: frame, done } = await reader.read();
      if (done) return;
      if (last !== null) skip(Math.max(0, Math.round((frame.timestamp - last) / interval) - 1));
      last = frame.timestamp;
      try { await analyze(frame); } finally { frame.close(); }
    }
    return reader.cancel();
  }
  let last = null;
  while (running()) {
    const shown = await new Promise((presented) => video.requestVideoFrameCallback((now, meta) => presented(meta.presentedFrames)));
    if (last !== null) skip(Math.max(0, shown - last - 1));
    last = shown;
    await analyze(video);
  }
}

async function analyzeFrame(fer, frame, video) {
  const faces = await fer.analyze(frame, { tta: LIVE_TTA });
  const t0 = performance.now();
  const ids = live.tracker.assign(faces.map((f) => f.box));
  const smoothed = faces.map((face, i) => {
    const past = live.history.get(ids[i]);
    const scores = past ? Object.fromEntries(Object.entries(face.scores).map(([k, v]) => [k, SMOOTHING * past[k] + (1 - SMOOTHING) * v])) : face.scores;
    live.history.set(ids[i], scores);
    return fer.prediction(face.box, fer.labels.map((k) => scores[k]), face.detectionScore, face.turned);
  });
  const overlay = $("overlay");
  if (overlay.width !== video.videoWidth) { overlay.width = video.videoWidth; overlay.height = video.videoHeight; }
  const context = overlay.getContext("2d");
  context.clearRect(0, 0, overlay.width, overlay.height);
  drawFaces(context, smoothed, -1, ids);
  live.last = smoothed;
  const now = performance.now();
  live.stages.push({ ...fer.lastTimings, drawMs: now - t0 });
  if (live.stages.length > 120) live.stages.shift();
  live.frames += 1;
  live.times.push(now);
  while (live.times.length && now - live.times[0] > 3000) live.times.shift();
  if (now - live.shown > 250) { // the text and bars a few times a second: the boxes follow every frame
    live.shown = now;
    drawBars($("live-bars"), smoothed[0]?.scores);
    $("fps").textContent = `${stats().fps.toFixed(1)} frames analysed a second, ${smoothed.length} face${smoothed.length === 1 ? "" : "s"}`;
  }
}

function stats() {
  const t = live.times, span = t.length > 1 ? (t[t.length - 1] - t[0]) / 1000 : 0;
  const mean = (key) => live.stages.reduce((a, s) => a + s[key], 0) / Math.max(1, live.stages.length);
  return { fps: span ? (t.length - 1) / span : 0, frames: live.frames, skipped: live.skipped,
           cameraFrames: live.track?.stats?.totalFrames ?? null, faces: live.last.length,
           labels: live.last.map((face) => face.label),
           stagesMs: { grab: mean("grabMs"), detect: mean("detectMs"), classify: mean("classifyMs"), draw: mean("drawMs") } };
}

const REST_FRAMES = 5; // frames of the visitor's face, 0.1 s apart, that make their resting face

/** "This is my resting face": a few frames of the camera become the face the labels are read against;
 * pressed again, the labels are read alone. */
async function toggleRestingFace() {
  const fer = await ready;
  if (fer.baseline) {
    fer.forgetRestingFace();
    $("rest").textContent = "This is my resting face";
    return;
  }
  const frames = [];
  for (let i = 0; i < REST_FRAMES; i++) {
    frames.push(await createImageBitmap($("video")));
    await new Promise((done) => setTimeout(done, 100));
  }
  try {
    await fer.personalize(frames);
  } catch (err) {
    say(`${err.message}: look at the camera, then press again.`, true);
    return;
  }
  live.history.clear();
  say("");
  $("rest").textContent = "Forget my resting face";
}

function stopCamera() {
  live.running = false;
  live.track?.stop();
  $("video").srcObject = null;
  $("overlay").getContext("2d").clearRect(0, 0, $("overlay").width, $("overlay").height);
  $("camera").textContent = "Start the camera";
  $("rest").disabled = true;
  $("fps").textContent = "";
}

$("camera").onclick = () => (live.running ? stopCamera() : run(startCamera()));
$("rest").onclick = () => run(toggleRestingFace());
for (const [tab, panel] of [["tab-photo", "photo-panel"], ["tab-live", "live-panel"]]) {
  $(tab).onclick = () => {
    for (const [t, p] of [["tab-photo", "photo-panel"], ["tab-live", "live-panel"]]) {
      $(t).setAttribute("aria-selected", String(t === tab)); $(p).hidden = p !== panel;
    }
  };
}

window.ferDemo = { ready: ready.then(() => true), recognizer: ready, offlineReady, readyMs: ready.then(() => performance.now()), analyze: analyzeUrl, startCamera: () => { $("tab-live").click(); return startCamera(); }, stats, eachFrame,
                  restingFace: toggleRestingFace };
