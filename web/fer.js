// The facial expression pipeline in the browser: stage for stage the Python package's, on the page's own
// WebAssembly runtime (runtime/runtime.js; its kernels, runtime/kernels.c, are built by `npm run build`).
//
//   const fer = await load({ models: "https://huggingface.co/user/name/resolve/main/" });
//   const faces = await fer.analyze(imageOrVideoOrCanvas);   // largest first
//   // [{ box: [x, y, w, h], label, confidence, scores: { angry, ..., neutral }, uncertain, detectionScore }]
//
// image -> faces (detect: fer_model/detection/yunet.py) -> crops (crop: fer_model/preprocess.py)
// -> inputs and views (classify: fer_model/calibration/tta.py) -> calibrated probabilities (calibrate: fer_model/calibration/tta.py,
// fer_model/predictor.py) -> labels. The model folder's config.json gives the preprocessing, the calibration
// and the uncertainty thresholds; the detector's settings are YuNetDetector's defaults. The pixel stages compute
// as OpenCV does, so that both networks see byte for byte the pixels they see in Python (tests/test_web.py), and
// the runtime computes the int8 CNN's integers as ONNX Runtime does.
import { createNetwork, loadRuntime } from "./runtime/runtime.js";

export const DETECTOR_FILE = "yunet.onnx";

// fer_model/detection/yunet.py: YuNetDetector's defaults and framing (benchmarks/fit_framing.py).
export const YUNET = { maxSide: 416, scoreThreshold: 0.7, minFace: 16, nmsIou: 0.5, strides: [8, 16, 32],
                       multiple: 32, framing: { scale: 1.12, shiftY: -0.03 },
                       smallestFace: 24, smallestSeen: 12, levelStep: 3, tile: 640, tileOverlap: 160,
                       cropPads: [0, 0.25, 0.5], cropSide: 192 };
const FACE_CROP = { maxSide: 160, maxAspect: 1.3, minScore: 0.2 }; // preprocess.looks_like_face_crop, predictor.WHOLE_FACE_SCORE
const TINY_CROP = { side: 48, score: 0.5, minSide: 24 }; // predictor.TINY_CROP
const BASELINE = { strength: 0.5, gate: [0.80, 0.92] }; // baseline.STRENGTH, baseline.GATE
const QUARTER_TURNS = [1, 3, 2], UPRIGHT_SCORE = 0.88; // predictor.QUARTER_TURNS, predictor.UPRIGHT_SCORE
const MIN_SIDE = 8; // image_io.MIN_SIDE
const MAX_PIXELS = 200_000_000, FULL_DECODE_PIXELS = 50_000_000; // image_io.MAX_PIXELS, image_io.FULL_DECODE_PIXELS
const LARGE_FACES_MIN_SIDE = 96; // config.LARGE_FACES_MIN_SIDE, for a config.json that does not name its own

/** Load the detector and the CNN of a model folder onto the page's runtime, or onto onnxruntime-web where `ort`
(its dist/ URL or the module itself) is given. */
export async function load({ models, ort, threads, precision } = {}) {
  if (!models) throw new Error("load() needs `models`: the URL of a model folder (config.json, model.onnx, yunet.onnx)");
  const base = models.endsWith("/") ? models : models + "/";
  const config = await (await fetchOk(base + "config.json")).json();
  const int8 = precision !== "fp32" && config.int8 && config.int8.file;
  const files = [DETECTOR_FILE, int8 ? config.int8.file : "model.onnx"];
  threads ??= self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  const [backend, ...onnx] = await Promise.all([ort ? ortBackend(ort, threads) : kernelBackend(threads),
    ...files.map(async (file) => new Uint8Array(await (await fetchOk(base + file)).arrayBuffer()))]);
  const [detector, classifier] = await Promise.all(onnx.map((bytes) => backend.create(bytes)));
  return new Recognizer(detector, classifier, config, calibrationOf(int8 ? config.int8 : config),
                        { precision: int8 ? "int8" : "fp32", threads: backend.threads, runtime: backend.name });
}

/** Networks that run on this page's runtime: { run(feeds) } over { name: { data, dims } }; threads need a
cross-origin-isolated page (shared memory). */
async function kernelBackend(threads) {
  const runtime = await loadRuntime({ threads: self.crossOriginIsolated ? threads : 1 });
  const create = (bytes) => {
    const network = createNetwork(runtime, bytes);
    setTimeout(() => runtime.pool.start()); // the workers start once the page is ready, not before
    return network;
  };
  return { name: "WebAssembly SIMD", threads: runtime.threads, create };
}

/** The same networks on onnxruntime-web (the benchmarks' point of comparison). */
async function ortBackend(ort, threads) {
  const runtime = typeof ort === "string" ? await importOrt(ort) : ort;
  runtime.env.wasm.numThreads = threads;
  const options = { executionProviders: ["wasm"], graphOptimizationLevel: "all" };
  const create = async (bytes) => {
    const session = await runtime.InferenceSession.create(bytes, options);
    return { run: (feeds) => session.run(Object.fromEntries(Object.entries(feeds).map(
      ([name, { data, dims }]) => [name, new runtime.Tensor("float32", data, dims)]))) };
  };
  return { name: `onnxruntime-web ${runtime.env.versions?.web || ""}`.trim(), threads: runtime.env.wasm.numThreads, create };
}

async function importOrt(url) {
  const base = url.endsWith("/") ? url : url + "/";
  const module = await import(base + "ort.wasm.min.mjs");
  module.env.wasm.wasmPaths = base;
  return module;
}

async function fetchOk(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`could not fetch ${url}: HTTP ${response.status}`);
  return response;
}

/** config.Calibration: a section's calibration, with its large-face one (faces of at least minSide px) where fitted. */
function calibrationOf(section) {
  const large = section.large_faces && section.large_faces.temperatures ? section.large_faces : null;
  return { temperatures: section.temperatures || {}, classBiases: section.class_biases || {},
           uncertainty: section.uncertainty || {}, large: large && calibrationOf(large),
           minSide: (large && large.min_side) ?? LARGE_FACES_MIN_SIDE };
}

/** Calibration.for_side: the calibration of a face `side` px wide in its photo. */
function calibrationFor(calibration, side) {
  return calibration.large && side >= calibration.minSide ? calibration.large : calibration;
}

export class Recognizer {
  constructor(detector, classifier, config, calibration, info) {
    Object.assign(this, { detector, classifier, config, calibration, info });
    this.labels = config.labels;
    this.pre = config.preprocessing;
    this.lastTimings = {};
    this.turn = Promise.resolve();
    this.baseline = null;
  }

  /** Every face of an image, video frame, canvas, ImageBitmap or ImageData, largest first (as `predict`).
   * Calls run one after another (a session runs one inference at a time): a photo during the webcam waits its turn. */
  analyze(source, options) {
    const turn = this.turn.then(() => this.analyzeNow(source, options));
    this.turn = turn.catch(() => {});
    return turn;
  }

  async analyzeNow(source, { tta = "flip" } = {}) {
    const t0 = performance.now();
    const [width, height] = sizeOf(source);
    if (width * height > MAX_PIXELS) {
      throw new Error(`image is ${width}x${height}, larger than the ${MAX_PIXELS.toLocaleString("en-US")}-pixel limit`);
    }
    const image = await rgba(source, reduction(width, height));
    if (Math.min(image.width, image.height) < MIN_SIDE) {
      throw new Error(`image is ${image.width}x${image.height}; each side must be at least ${MIN_SIDE} pixels`);
    }
    const t1 = performance.now();
    const { found, turned } = await this.findFaces(image);
    const t2 = performance.now();
    let scores = found.length ? await this.classify(found.map((f) => f.crop), tta, found.map((f) => boxSide(f.box))) : [];
    if (this.baseline && found.length) scores = await this.againstRest(found.map((f) => f.crop), scores, tta);
    const t3 = performance.now();
    this.lastTimings = { grabMs: t1 - t0, detectMs: t2 - t1, classifyMs: t3 - t2 };
    const [sx, sy] = [width / image.width, height / image.height]; // predictor.rescaled: boxes in the photo's pixels
    return found.map((f, i) => this.prediction(f.box, scores[i], f.score, turned)).map((p) => sx === 1 && sy === 1 ? p
      : { ...p, box: clipBox([Math.round(p.box[0] * sx), Math.round(p.box[1] * sy), Math.round(p.box[2] * sx),
                              Math.round(p.box[3] * sy)], width, height) });
  }

  /** predictor.find_faces: each face's box (cut to the image) and crop, largest first, and `turned`, the degrees
   * the image was turned counterclockwise for them to stand upright; a small near-square image with no face that
   * the detector takes for a face crop is one face, whole; where no face reaches UPRIGHT_SCORE, the first quarter
   * turn with such a face gives them. */
  async findFaces(image) {
    const size = this.pre.image_size, { width, height } = image;
    const faces = await this.detect(image);
    const crops = (seen, list, turns) => ({
      found: list.map((f) => ({ ...f, box: clipBox(turnedBack(f.box, turns, width, height), width, height),
                                crop: cropFace(seen, f.box, YUNET.framing, size) })), turned: 90 * turns });
    if (!faces.length && looksLikeFaceCrop(width, height)) {
      const whole = await this.faceInCrop(image) >= wholeFaceScore(Math.max(width, height));
      return { found: whole ? [{ box: [0, 0, width, height], score: null, crop: resizeBilinearPil(grayscale(image), size, size) }] : [], turned: 0 };
    }
    if (!faces.length || Math.max(...faces.map((f) => f.score)) < UPRIGHT_SCORE) {
      for (const turns of QUARTER_TURNS) {
        const seen = rot90(image, turns), turnedFaces = await this.detect(seen);
        if (turnedFaces.length && Math.max(...turnedFaces.map((f) => f.score)) >= UPRIGHT_SCORE) return crops(seen, turnedFaces, turns);
      }
    }
    return crops(image, faces, 0);
  }

  // ---- the resting face: fer_model/baseline.py ----
  /** Read every face from now on against the resting face of these images (their largest face each), as
   * `EmotionRecognizer.personalize` does; throws, changing nothing, where one has no face. */
  personalize(sources, { strength = BASELINE.strength } = {}) {
    const turn = this.turn.then(async () => {
      const rest = [];
      for (const [i, source] of sources.entries()) {
        const { found } = await this.findFaces(await rgba(source));
        if (!found.length) throw new Error(`no face found in resting-face photo ${i + 1} of ${sources.length}`);
        rest.push({ crop: found[0].crop, side: boxSide(found[0].box) });
      }
      this.baseline = { crops: rest.map((r) => r.crop), sides: rest.map((r) => r.side), strength, rest: {} };
    });
    this.turn = turn.catch(() => {});
    return turn;
  }

  /** Read faces alone again. */
  forgetRestingFace() { this.baseline = null; }

  /** baseline.Baseline.apply: calibrated probabilities of `crops` read against the resting face. */
  async againstRest(crops, probabilities, tta) {
    const b = this.baseline;
    if (!b.rest[tta]) {
      const rows = await this.classify(b.crops, tta, b.sides);
      b.rest[tta] = rows[0].map((_, k) => rows.reduce((sum, row) => sum + Math.log(Math.max(row[k], 1e-12)), 0) / rows.length);
    }
    return crops.map((crop, i) => relativeTo(probabilities[i], b.rest[tta],
                                             b.strength * gate(Math.max(...b.crops.map((r) => correlation(crop, r))))));
  }

  // ---- detect: fer_model/detection/yunet.py ----
  /** Every face of the RGBA image, read at each level of `pyramidSides` (in tiles where a level is large). */
  async detect(image) {
    const sides = pyramidSides(image.width, image.height, YUNET.maxSide);
    const boxes = [], scores = [], points = [];
    for (const side of sides) {
      const { image: level, factor } = downscaled(image, side);
      const smallest = side === sides[sides.length - 1] ? 0 : 2 * YUNET.smallestSeen;
      const views = tiles(level);
      const largest = views.length > 1 && side !== sides[0] ? YUNET.tileOverlap : Infinity; // a coarser level sees those whole
      for (const { left, top, tile, owned: [x0, y0, x1, y1] } of views) {
        const found = await this.runDetector(tile, YUNET.scoreThreshold);
        found.boxes.forEach(([x, y, w, h], i) => {
          const cx = x + left + w / 2, cy = y + top + h / 2;
          if (cx < x0 || cx >= x1 || cy < y0 || cy >= y1 || Math.min(w, h) < smallest || Math.max(w, h) > largest) return;
          boxes.push([(x + left) / factor, (y + top) / factor, w / factor, h / factor]);
          scores.push(found.scores[i]);
          points.push(found.points[i].map(([px, py]) => [(px + left) / factor, (py + top) / factor]));
        });
      }
    }
    const faces = nms(boxes, scores, YUNET.nmsIou).map((i) => ({
      box: boxes[i].map(pyRound), score: scores[i],
      keypoints: points[i].map(([x, y]) => [Math.round(x * 10) / 10, Math.round(y * 10) / 10]),
    }));
    return largestFirst(faces, YUNET.minFace);
  }

  /** YuNet's candidates in an RGB image ({data, width, height}), in its pixels. */
  async runDetector(image, threshold) {
    const { tensor, width, height } = networkInput(image);
    const outputs = await this.detector.run({ input: { data: tensor, dims: [1, 3, height, width] } });
    return decodeYunet(outputs, threshold, width);
  }

  /** yunet.face_in_crop: YuNet's best score over the RGBA image padded by each of `cropPads` (border repeated),
   * read at `cropSide` px. */
  async faceInCrop(image) {
    let best = 0;
    for (const pad of YUNET.cropPads) {
      const border = pyRound(Math.max(image.width, image.height) * pad / 2);
      const framed = resizeLinear(padReplicate(image, border), YUNET.cropSide, YUNET.cropSide, 3);
      best = Math.max(best, ...(await this.runDetector(framed, 0)).scores);
    }
    return best;
  }

  // ---- classify: fer_model/predictor.py (predict_faces, logits) and fer_model/calibration/tta.py (views) ----
  async classify(crops, tta = "flip", sides = crops.map(() => null)) {
    const mean = Math.fround(this.pre.mean), std = Math.fround(this.pre.std), f = Math.fround; // numpy's float32 steps
    const size = this.pre.image_size, side = this.pre.crop_size || size;
    const views = viewOffsets(tta, size, side);
    const n = crops.length, plane = side * side, batch = new Float32Array(views.length * n * plane);
    views.forEach(([top, left, mirrored], v) => crops.forEach((crop, i) => {
      const out = (v * n + i) * plane;
      for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) {
        const value = crop[(top + y) * size + left + (mirrored ? side - 1 - x : x)];
        batch[out + y * side + x] = f(f(f(value / 255) - mean) / std);
      }
    }));
    const { logits } = await this.classifier.run({ faces: { data: batch, dims: [views.length * n, 1, side, side] } });
    return sides.map((side, i) => calibrate(logits.data, views.length, n, this.labels.length,
                                             calibrationFor(this.calibration, side), tta, i));
  }

  // ---- the prediction: fer_model/predictor.py (prediction) ----
  prediction(box, probabilities, detectionScore, turned = 0) {
    const scores = Object.fromEntries(this.labels.map((label, k) => [label, probabilities[k]]));
    const ranked = [...probabilities].sort((a, b) => b - a);
    const limits = calibrationFor(this.calibration, boxSide(box)).uncertainty;
    const uncertain = ranked[0] < (limits.min_confidence ?? 0) || ranked[0] - ranked[1] < (limits.min_margin ?? 0);
    const best = probabilities.indexOf(Math.max(...probabilities));
    return { box, label: this.labels[best], confidence: probabilities[best], scores, uncertain,
             detectionScore: detectionScore ?? null, ...(turned ? { turned } : {}) };
  }
}

// ---- pixels ----
/** (width, height) of an image, video, VideoFrame, canvas, ImageBitmap or ImageData. */
function sizeOf(source) {
  return [source.videoWidth || source.naturalWidth || source.displayWidth || source.width,
          source.videoHeight || source.naturalHeight || source.displayHeight || source.height];
}

/** image_io._reduce: an image of over FULL_DECODE_PIXELS is read at a half, a quarter or an eighth of its size. */
function reduction(width, height) {
  if (!(width * height > FULL_DECODE_PIXELS)) return 1; // a source with no size yet: rgba says so
  return [2, 4, 8].find((f) => width * height <= FULL_DECODE_PIXELS * f * f) ?? 8;
}

/** RGBA pixels ({data, width, height}) of an image, video, VideoFrame, canvas, ImageBitmap or ImageData, its sides
 * divided by `factor` (rounded up) where it is drawn. */
export async function rgba(source, factor = 1) {
  if (typeof ImageData !== "undefined" && source instanceof ImageData) return source;
  if (typeof VideoFrame !== "undefined" && factor === 1) {
    const pixels = source instanceof VideoFrame ? await videoFramePixels(source)
      : typeof HTMLVideoElement !== "undefined" && source instanceof HTMLVideoElement && source.readyState >= 2
        ? await shownFramePixels(source) : null;
    if (pixels) return pixels;
  }
  const [width, height] = sizeOf(source).map((side) => Math.ceil(side / factor));
  if (!width || !height) throw new Error("the image has no pixels yet (not loaded, or not an image)");
  if (!scratch || scratch.canvas.width !== width || scratch.canvas.height !== height) { // one canvas for every frame
    const canvas = new OffscreenCanvas(width, height);
    scratch = { canvas, context: canvas.getContext("2d", { willReadFrequently: true }) };
  }
  scratch.context.drawImage(source, 0, 0, width, height);
  return scratch.context.getImageData(0, 0, width, height);
}
let scratch = null;

/** A video frame's RGBA, converted as the browser draws it on a canvas but with no canvas to draw and read back
(WebCodecs' copyTo); null where the browser cannot convert, or the frame is shown at another size than it has. */
async function videoFramePixels(frame) {
  const { width, height } = frame.visibleRect || {};
  if (!width || width !== frame.displayWidth || height !== frame.displayHeight) return null;
  if (!framePixels || framePixels.length !== width * height * 4) framePixels = new Uint8ClampedArray(width * height * 4);
  try {
    await frame.copyTo(framePixels, { format: "RGBA" });
  } catch {
    return null;
  }
  return new ImageData(framePixels, width, height);
}
let framePixels = null; // analyses run one at a time: one buffer for every frame

async function shownFramePixels(video) { // the frame the video shows
  const frame = new VideoFrame(video);
  try {
    return await videoFramePixels(frame);
  } finally {
    frame.close();
  }
}

/** OpenCV's RGB -> gray (cv2.cvtColor COLOR_RGB2GRAY, exactly: its 15-bit fixed-point weights) of the RGBA pixel at `i`. */
const grayAt = (data, i) => (data[i] * 9798 + data[i + 1] * 19235 + data[i + 2] * 3735 + 16384) >> 15;

/** The whole RGBA image as gray ({data, width, height}). */
export function grayscale({ data, width, height }) {
  const gray = new Uint8Array(width * height);
  for (let i = 0; i < gray.length; i++) gray[i] = grayAt(data, 4 * i);
  return { data: gray, width, height };
}

// ---- detect helpers: fer_model/detection/base.py and yunet.py ----
/** base.downscaled: a box filter by the largest whole factor, then bilinear; RGBA in, RGB (3 channels) out. */
export function downscaled(image, maxSide) {
  let { width, height } = image;
  let source = { data: image.data, width, height, channels: 4 };
  const scale = Math.min(1, maxSide / Math.max(width, height));
  if (scale === 1) return { image: resizeLinear(source, width, height, 3), factor: 1 };
  const size = [Math.max(1, pyRound(width * scale)), Math.max(1, pyRound(height * scale))];
  const step = Math.min(Math.floor(1 / scale), height, width);
  if (step >= 2) {
    width -= width % step; height -= height % step; // the top-left whole blocks, as Python's image[:height, :width]
    source = resizeArea({ ...source, width, height, stride: image.width }, width / step, height / step, 3);
  }
  const factor = width >= height ? size[0] / width : size[1] / height;
  return { image: resizeLinear(source, size[0], size[1], 3), factor };
}

/** cv2.resize INTER_LINEAR on 8-bit images, in its fixed-point arithmetic (exactly: tests/test_web.py): half-pixel
centres, 11-bit weights, the horizontal blend in integers and the vertical one rounded as its vectorised code
rounds it; the first `outChannels` channels of the input. */
export function resizeLinear(image, width, height, outChannels = image.channels || 1) {
  const c = image.channels || 1, data = image.data, inWidth = image.width, out = new Uint8Array(width * height * outChannels);
  const [x0s, x1s, ax0, ax1] = linearTaps(image.width, width, true), [y0s, y1s, by0, by1] = linearTaps(image.height, height, false);
  const blend = (p, q, r, s, a0, a1, b0, b1) => // top-left, top-right, bottom-left, bottom-right
    (((((data[p] * a0 + data[q] * a1) >> 4) * b0) >> 16) + ((((data[r] * a0 + data[s] * a1) >> 4) * b1) >> 16) + 2) >> 2;
  for (let y = 0, o = 0; y < height; y++) {
    const top = y0s[y] * inWidth, bottom = y1s[y] * inWidth, b0 = by0[y], b1 = by1[y];
    for (let x = 0; x < width; x++) {
      const p = (top + x0s[x]) * c, q = (top + x1s[x]) * c, r = (bottom + x0s[x]) * c, s = (bottom + x1s[x]) * c;
      const a0 = ax0[x], a1 = ax1[x];
      if (outChannels === 3) { // the detector's input: unrolled, twice as fast
        out[o++] = blend(p, q, r, s, a0, a1, b0, b1);
        out[o++] = blend(p + 1, q + 1, r + 1, s + 1, a0, a1, b0, b1);
        out[o++] = blend(p + 2, q + 2, r + 2, s + 2, a0, a1, b0, b1);
      } else for (let k = 0; k < outChannels; k++) out[o++] = blend(p + k, q + k, r + k, s + k, a0, a1, b0, b1);
    }
  }
  return { data: out, width, height, channels: outChannels };
}

const taps = new Map(); // resampling weights by (kind, input size, output size): a camera's frames share them
function cached(kind, inSize, outSize, make) {
  const key = `${kind} ${inSize} ${outSize}`;
  if (!taps.has(key)) {
    if (taps.size > 64) taps.clear();
    taps.set(key, make(inSize, outSize));
  }
  return taps.get(key);
}

function linearTaps(inSize, outSize, across) {
  return cached(across ? "linear across" : "linear down", inSize, outSize, (i, o) => makeLinearTaps(i, o, across));
}

/** cv2's linear taps: source positions in float32, each weight rounded to 11 bits (half to even) on its own.
Outside the image cv2 repeats the edge pixel across a row (weight 1), but keeps the blend's weights down a
column with both rows clamped to the edge. */
function makeLinearTaps(inSize, outSize, across) {
  const scale = 1 / (outSize / inSize), first = new Int32Array(outSize), second = new Int32Array(outSize);
  const weight0 = new Int32Array(outSize), weight1 = new Int32Array(outSize);
  for (let i = 0; i < outSize; i++) {
    const src = Math.fround((i + 0.5) * scale - 0.5);
    let i0 = Math.floor(src), f = Math.fround(src - i0);
    if (across && i0 < 0) { i0 = 0; f = 0; }
    if (across && i0 >= inSize - 1) { i0 = inSize - 1; f = 0; }
    first[i] = Math.min(Math.max(i0, 0), inSize - 1); second[i] = Math.min(Math.max(i0 + 1, 0), inSize - 1);
    weight0[i] = pyRound(Math.fround(Math.fround(1 - f) * 2048)); weight1[i] = pyRound(Math.fround(f * 2048));
  }
  return [first, second, weight0, weight1];
}

/** yunet.pyramid_sides: the longer side of each level, the whole image at `maxSide` first, then `levelStep` times
finer until a `smallestFace` face is `smallestSeen` pixels. */
export function pyramidSides(width, height, maxSide) {
  const longest = Math.max(width, height);
  const finest = Math.min(longest, pyRound(longest * YUNET.smallestSeen / YUNET.smallestFace));
  const sides = [Math.min(longest, maxSide)];
  while (finest > sides[sides.length - 1] * 1.25) sides.push(Math.min(finest, pyRound(sides[sides.length - 1] * YUNET.levelStep)));
  return sides;
}

/** yunet.tiles: the `tile`-sized views of an RGB level and the part (x0, y0, x1, y1) whose faces each reports. */
export function tiles(level) {
  const spans = (size) => {
    const starts = [0];
    if (size > YUNET.tile) {
      for (let s = YUNET.tile - YUNET.tileOverlap; s < size - YUNET.tile; s += YUNET.tile - YUNET.tileOverlap) starts.push(s);
      starts.push(size - YUNET.tile);
    }
    const cuts = [0, ...starts.slice(1).map((s, i) => (s + starts[i] + YUNET.tile) / 2), size];
    return starts.map((start, i) => [start, cuts[i], cuts[i + 1]]);
  };
  if (level.width <= YUNET.tile && level.height <= YUNET.tile) return [{ left: 0, top: 0, tile: level, owned: [0, 0, level.width, level.height] }];
  const out = [];
  for (const [top, y0, y1] of spans(level.height)) for (const [left, x0, x1] of spans(level.width)) {
    const width = Math.min(YUNET.tile, level.width - left), height = Math.min(YUNET.tile, level.height - top);
    const data = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) data.set(level.data.subarray(((top + y) * level.width + left) * 3, ((top + y) * level.width + left + width) * 3), y * width * 3);
    out.push({ left, top, tile: { data, width, height, channels: 3 }, owned: [x0, y0, x1, y1] });
  }
  return out;
}

/** cv2.copyMakeBorder(BORDER_REPLICATE) of an RGBA image by `border` px on every side, as RGB. */
function padReplicate({ data, width, height }, border) {
  const w = width + 2 * border, h = height + 2 * border, out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const sx = Math.min(width - 1, Math.max(0, x - border)), sy = Math.min(height - 1, Math.max(0, y - border));
    const i = (sy * width + sx) * 4, o = (y * w + x) * 3;
    out[o] = data[i]; out[o + 1] = data[i + 1]; out[o + 2] = data[i + 2];
  }
  return { data: out, width: w, height: h, channels: 3 };
}

/** yunet.network_input: BGR, 0..255 float32 (1, 3, H, W), padded with black to multiples of 32. */
export function networkInput(image) {
  const width = Math.ceil(image.width / YUNET.multiple) * YUNET.multiple;
  const height = Math.ceil(image.height / YUNET.multiple) * YUNET.multiple;
  const plane = width * height;
  if (!inputBuffer || inputBuffer.length !== 3 * plane) inputBuffer = new Float32Array(3 * plane); // the runtime copies it
  const tensor = inputBuffer;
  tensor.fill(0);
  for (let y = 0; y < image.height; y++) for (let x = 0; x < image.width; x++) {
    const i = (y * image.width + x) * 3, o = y * width + x;
    tensor[o] = image.data[i + 2]; tensor[plane + o] = image.data[i + 1]; tensor[2 * plane + o] = image.data[i];
  }
  return { tensor, width, height };
}

let inputBuffer = null;

const sigmoid = (x) => 1 / (1 + Math.exp(-Math.min(88, Math.max(-88, x))));

/** yunet.decode: candidates scoring at least `threshold`, in the network's input pixels. */
export function decodeYunet(outputs, threshold, inputWidth) {
  const boxes = [], scores = [], points = [];
  for (const stride of YUNET.strides) {
    const cls = outputs[`cls_${stride}`].data, obj = outputs[`obj_${stride}`].data;
    const bbox = outputs[`bbox_${stride}`].data, kps = outputs[`kps_${stride}`].data;
    const columns = inputWidth / stride, cells = cls.length;
    for (let cell = 0; cell < cells; cell++) {
      const score = Math.sqrt(sigmoid(cls[cell]) * sigmoid(obj[cell]));
      if (score < threshold) continue;
      const ax = (cell % columns) * stride, ay = Math.floor(cell / columns) * stride;
      const w = Math.exp(bbox[2 * cells + cell]) * stride, h = Math.exp(bbox[3 * cells + cell]) * stride;
      boxes.push([bbox[cell] * stride + ax - w / 2, bbox[cells + cell] * stride + ay - h / 2, w, h]);
      scores.push(score);
      points.push(Array.from({ length: 5 }, (_, k) => [kps[2 * k * cells + cell] * stride + ax, kps[(2 * k + 1) * cells + cell] * stride + ay]));
    }
  }
  return { boxes, scores, points };
}

/** base.iou of corner boxes (x0, y0, x1, y1). */
export function iou(a, b) {
  const ix = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0])), iy = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = ix * iy, area = (r) => (r[2] - r[0]) * (r[3] - r[1]);
  return inter / Math.max(area(a) + area(b) - inter, 1e-9);
}

/** base.nms: greedy, best score first, of (x, y, w, h) boxes. */
export function nms(boxes, scores, threshold) {
  const corners = boxes.map(([x, y, w, h]) => [x, y, x + w, y + h]);
  const order = scores.map((s, i) => i).sort((a, b) => scores[b] - scores[a]);
  const kept = [];
  for (const i of order) if (kept.every((k) => iou(corners[i], corners[k]) <= threshold)) kept.push(i);
  return kept;
}

function largestFirst(faces, minSize) {
  return faces.filter((f) => Math.min(f.box[2], f.box[3]) >= minSize).sort((a, b) => b.box[2] * b.box[3] - a.box[2] * a.box[3]);
}

// ---- crop: fer_model/preprocess.py ----
/** preprocess.crop_face: the FER-style square around `box` of the RGBA image, in gray (converted pixel by
pixel as the whole image would be), the border repeated outside the image, `size` px. */
export function cropFace(image, box, framing, size) {
  const [x, y, w, h] = box;
  const cx = x + w / 2, cy = y + h / 2 + framing.shiftY * h;
  const side = Math.max(1, pyRound(framing.scale * (w + h) / 2));
  const { data, width, height } = image;
  const x0 = Math.min(Math.max(pyRound(cx - side / 2), 1 - side), width - 1);
  const y0 = Math.min(Math.max(pyRound(cy - side / 2), 1 - side), height - 1);
  const square = new Uint8Array(side * side);
  for (let yy = 0; yy < side; yy++) {
    const sy = Math.min(Math.max(y0 + yy, 0), height - 1);
    for (let xx = 0; xx < side; xx++) square[yy * side + xx] = grayAt(data, 4 * (sy * width + Math.min(Math.max(x0 + xx, 0), width - 1)));
  }
  const squared = { data: square, width: side, height: side, channels: 1 };
  return (side > size ? resizeArea(squared, size, size) : resizeLinear(squared, size, size)).data;
}

/** cv2.resize INTER_AREA for shrinking, rounded as OpenCV rounds it: by whole factors the mean of each block (of
2x2 rounded half up, of others scaled in float32 and rounded half to even), else each output pixel the
area-weighted mean of the input it covers; the first `outChannels` channels of the input, whose rows are `stride`
pixels apart (default: its width). */
export function resizeArea(image, width, height, outChannels = image.channels || 1) {
  const stepX = image.width / width, stepY = image.height / height;
  return (Number.isInteger(stepX) && Number.isInteger(stepY) ? areaByBlocks : areaWeighted)(image, width, height, outChannels);
}

function areaByBlocks(image, width, height, outChannels) {
  const c = image.channels || 1, stride = image.stride || image.width, data = image.data;
  const stepX = image.width / width, stepY = image.height / height, area = stepX * stepY, scale = Math.fround(1 / area);
  const round = stepX === 2 && stepY === 2 ? (sum) => (sum + 2) >> 2 : (sum) => pyRound(Math.fround(sum * scale));
  const out = new Uint8Array(width * height * outChannels), sums = new Int32Array(width * outChannels);
  for (let y = 0; y < height; y++) {
    sums.fill(0);
    for (let dy = 0; dy < stepY; dy++) {
      const row = (y * stepY + dy) * stride;
      for (let x = 0, o = 0; x < width; x++, o += outChannels) for (let dx = 0; dx < stepX; dx++) {
        const i = (row + x * stepX + dx) * c;
        for (let k = 0; k < outChannels; k++) sums[o + k] += data[i + k];
      }
    }
    for (let k = 0; k < sums.length; k++) out[y * sums.length + k] = round(sums[k]);
  }
  return { data: out, width, height, channels: outChannels };
}

function areaWeighted(image, width, height, outChannels) {
  const c = image.channels || 1, stride = image.stride || image.width, data = image.data, oc = outChannels;
  const xs = areaTaps(image.width, width), ys = areaTaps(image.height, height), out = new Uint8Array(width * height * oc);
  const rows = new Float64Array(image.height * width * oc); // each input row, resampled across
  for (let y = 0; y < image.height; y++) for (let x = 0; x < width; x++) {
    const first = xs.first[x], count = xs.count[x], at = x * xs.stride;
    for (let k = 0; k < oc; k++) {
      let sum = 0;
      for (let t = 0; t < count; t++) sum += data[(y * stride + first + t) * c + k] * xs.weights[at + t];
      rows[(y * width + x) * oc + k] = sum;
    }
  }
  for (let y = 0; y < height; y++) {
    const first = ys.first[y], count = ys.count[y], at = y * ys.stride;
    for (let o = 0; o < width * oc; o++) {
      let sum = 0;
      for (let t = 0; t < count; t++) sum += rows[(first + t) * width * oc + o] * ys.weights[at + t];
      out[y * width * oc + o] = Math.min(255, Math.max(0, pyRound(sum)));
    }
  }
  return { data: out, width, height, channels: oc };
}

function areaTaps(inSize, outSize) { return cached("area", inSize, outSize, makeAreaTaps); }

/** For each output pixel the run of input pixels it covers (`first`, `count`) and their weights, in rows of `stride`. */
function makeAreaTaps(inSize, outSize) {
  const scale = inSize / outSize, stride = Math.ceil(scale) + 1;
  const first = new Int32Array(outSize), count = new Int32Array(outSize), weights = new Float64Array(outSize * stride);
  for (let i = 0; i < outSize; i++) {
    const start = i * scale, end = start + scale;
    for (let j = Math.floor(start); j < Math.min(inSize, Math.ceil(end)); j++) {
      const overlap = Math.min(end, j + 1) - Math.max(start, j);
      if (overlap <= 1e-9) continue;
      if (!count[i]) first[i] = j;
      weights[i * stride + count[i]++] = overlap / scale;
    }
  }
  return { first, count, weights, stride };
}

/** PIL's Image.resize BILINEAR (antialiased when shrinking, rounded between its two passes): to_face_array. */
export function resizeBilinearPil(gray, width, height) {
  let image = { data: gray.data, width: gray.width, height: gray.height };
  if (image.width !== width) image = pilPass(image, width, true);
  if (image.height !== height) image = pilPass(image, height, false);
  return image.data;
}

function pilPass(image, outSize, horizontal) {
  const inSize = horizontal ? image.width : image.height, scale = inSize / outSize, filterScale = Math.max(1, scale);
  const support = filterScale, outW = horizontal ? outSize : image.width, outH = horizontal ? image.height : outSize;
  const out = new Uint8Array(outW * outH);
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale, xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize);
    const weights = [];
    for (let x = xmin; x < xmax; x++) weights.push(Math.max(0, 1 - Math.abs((x - center + 0.5) / filterScale)));
    const total = weights.reduce((a, b) => a + b, 0);
    for (let line = 0; line < (horizontal ? outH : outW); line++) {
      let sum = 0;
      weights.forEach((weight, k) => {
        const at = horizontal ? line * image.width + xmin + k : (xmin + k) * image.width + line;
        sum += image.data[at] * weight;
      });
      out[horizontal ? line * outW + o : o * outW + line] = Math.min(255, Math.max(0, Math.round(sum / total)));
    }
  }
  return { data: out, width: outW, height: outH };
}

/** detection.base.clip_box: a box cut to the image. */
export function clipBox([x, y, w, h], width, height) {
  const x0 = Math.min(Math.max(x, 0), width), y0 = Math.min(Math.max(y, 0), height);
  const x1 = Math.min(Math.max(x + w, x0), width), y1 = Math.min(Math.max(y + h, y0), height);
  return [x0, y0, x1 - x0, y1 - y0];
}

/** predictor.whole_face_score: the face-in-crop score an image with no face found needs to be read whole. */
function wholeFaceScore(side) {
  if (side < TINY_CROP.minSide) return Infinity;
  return side < TINY_CROP.side ? TINY_CROP.score : FACE_CROP.minScore;
}

function looksLikeFaceCrop(width, height) {
  return Math.max(width, height) <= FACE_CROP.maxSide && Math.max(width, height) / Math.min(width, height) <= FACE_CROP.maxAspect;
}

// ---- classify and calibrate: fer_model/calibration/tta.py ----
/** tta.views: (top, left, mirrored) of each view, in the Python order (corners, centre, then mirrors). */
export function viewOffsets(tta, size, side) {
  const centre = [Math.floor((size - side) / 2), Math.floor((size - side) / 2)];
  let crops = [centre];
  if (tta === "ten_crop" && side !== size) crops = [[0, 0], [0, size - side], [size - side, 0], [size - side, size - side], centre];
  else if (!["none", "flip", "ten_crop"].includes(tta)) throw new Error(`unknown TTA mode ${tta}`);
  const views = crops.map(([t, l]) => [t, l, false]);
  return tta === "none" ? views : [...views, ...crops.map(([t, l]) => [t, l, true])];
}

/** tta.average_probabilities: softmax(logits / T + class bias), averaged over the views, for face `i`. */
export function calibrate(logits, views, faces, classes, calibration, tta, i) {
  const temperature = calibration.temperatures[tta] ?? 1, bias = calibration.classBiases[tta] || new Array(classes).fill(0);
  const mean = new Array(classes).fill(0);
  for (let v = 0; v < views; v++) {
    const row = Array.from({ length: classes }, (_, k) => logits[(v * faces + i) * classes + k] / temperature + bias[k]);
    const top = Math.max(...row), exps = row.map((z) => Math.exp(z - top)), total = exps.reduce((a, b) => a + b, 0);
    exps.forEach((e, k) => { mean[k] += e / total / views; });
  }
  return mean;
}

/** np.rot90: an RGBA image ({data, width, height}) turned `turns` quarter turns counterclockwise. */
export function rot90({ data, width, height }, turns) {
  const k = ((turns % 4) + 4) % 4, w = k % 2 ? height : width, h = k % 2 ? width : height;
  const out = new Uint8ClampedArray(w * h * 4);
  for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) {
    const [y, x] = k === 1 ? [j, width - 1 - i] : k === 2 ? [height - 1 - i, width - 1 - j] : k === 3 ? [height - 1 - j, i] : [i, j];
    out.set(data.subarray((y * width + x) * 4, (y * width + x) * 4 + 4), (i * w + j) * 4);
  }
  return { data: out, width: w, height: h };
}

/** predictor.turned_back: a box found in the image turned `turns` quarter turns, in the image as it is. */
export function turnedBack([x, y, w, h], turns, width, height) {
  const k = ((turns % 4) + 4) % 4;
  return k === 1 ? [width - (y + h), x, h, w] : k === 2 ? [width - (x + w), height - (y + h), w, h]
    : k === 3 ? [y, height - (x + w), h, w] : [x, y, w, h];
}

/** baseline.similarity: the Pearson correlation of two crops' pixels. */
export function correlation(a, b) {
  const n = a.length;
  let ma = 0, mb = 0;
  for (let i = 0; i < n; i++) { ma += a[i]; mb += b[i]; }
  ma /= n; mb /= n;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < n; i++) { const da = a[i] - ma, db = b[i] - mb; sab += da * db; saa += da * da; sbb += db * db; }
  return sab / Math.max(Math.sqrt(saa * sbb), 1e-12);
}

/** baseline.gate: 0 below the first bound, 1 from the second, linear between. */
export function gate(r, [low, high] = BASELINE.gate) { return Math.min(Math.max((r - low) / (high - low), 0), 1); }

/** baseline.relative_to: probabilities read against the resting face's log-probabilities, by `weight` (0: as
 * they are). */
export function relativeTo(probabilities, rest, weight) {
  if (weight <= 0) return probabilities;
  const logits = probabilities.map((p, k) => Math.log(Math.max(p, 1e-12)) - weight * rest[k]);
  const top = Math.max(...logits), exps = logits.map((z) => Math.exp(z - top)), total = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / total);
}

/** predictor.box_side: the larger side of a face's box, which chooses its calibration. */
export function boxSide([, , w, h]) { return Math.max(w, h); }

// ---- video: fer_model/video.py ----
/** video.IoUTracker: each face takes the id of the face it overlaps most in the last frames. */
export class Tracker {
  constructor(minIou = 0.3, maxMissed = 5) { Object.assign(this, { minIou, maxMissed, tracks: new Map(), nextId: 1 }); }

  assign(boxes) {
    const corners = boxes.map(([x, y, w, h]) => [x, y, x + w, y + h]);
    const pairs = [];
    corners.forEach((c, i) => this.tracks.forEach(([box], id) => pairs.push([iou(c, box), i, id])));
    pairs.sort((a, b) => b[0] - a[0] || b[1] - a[1] || b[2] - a[2]);
    const assigned = new Map(), taken = new Set();
    for (const [overlap, i, id] of pairs) {
      if (overlap >= this.minIou && !assigned.has(i) && !taken.has(id)) { assigned.set(i, id); taken.add(id); }
    }
    corners.forEach((_, i) => { if (!assigned.has(i)) assigned.set(i, this.nextId++); });
    const seen = new Set(assigned.values()), kept = new Map();
    this.tracks.forEach(([box, missed], id) => { if (!seen.has(id) && missed + 1 <= this.maxMissed) kept.set(id, [box, missed + 1]); });
    corners.forEach((c, i) => kept.set(assigned.get(i), [c, 0]));
    this.tracks = kept;
    return corners.map((_, i) => assigned.get(i));
  }
}

/** Python's round() (and cvRound): halves to even, so that boxes and crops land on the same pixels. */
export function pyRound(x) {
  const floor = Math.floor(x), diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}
