// The page's inference runtime: an ONNX graph read by onnx.js, planned once into calls of the kernels in
// kernels.c (WebAssembly SIMD), run one image after another. It runs what this pipeline's networks hold:
// Conv (group 1 or depthwise, 1x1 too), Relu, MaxPool 2x2, Resize (nearest, whole factors), Add, Concat,
// Flatten, Reshape, Gemm, Sigmoid, Softmax and Constant in float, and ONNX Runtime's int8 form of them:
// QuantizeLinear / DequantizeLinear pairs around Conv, Gemm, MaxPool and Flatten, computed in integers exactly as
// ONNX Runtime computes them.
//
// With threads (a cross-origin-isolated page), the kernels are the build with a shared memory, and the heavy
// ones (convolutions) are shared among workers (worker.js), each doing its part.
//
//   const runtime = await loadRuntime({ threads: 2 });
//   const net = createNetwork(runtime, onnxBytes);
//   const { logits } = net.run({ faces: { data: Float32Array, dims: [n, 1, 44, 44] } });   // { data, dims }
import { readModel } from "./onnx.js";

const PAGE = 65536, STACK = 65536;
export const PARALLEL = ["im2col_f32", "conv_f32", "im2col_u8", "conv_u8"]; // the kernels that take (part, parts)
export const SPIN_MS = 2; // how long an idle worker waits busy before it sleeps
const SERIAL_WORK = 100_000; // multiply-adds under which a convolution runs on the page's thread alone
export const [CALL, DONE, KERNEL, COUNT, LISTENING, ARGUMENTS, WORDS] = [0, 1, 2, 3, 4, 5, 32]; // the pool's control words

/** The kernels (kernels.wasm, or kernels-threads.wasm with `threads` > 1) from the folder `base` (default: this
module's), on one memory that every network created on it shares. */
export async function loadRuntime({ threads = 1, base = new URL(".", import.meta.url) } = {}) {
  const url = new URL(threads > 1 ? "kernels-threads.wasm" : "kernels.wasm", base);
  const response = await fetch(url);
  if (!response.ok) throw new Error(`could not fetch ${url}: HTTP ${response.status}`);
  const module = await WebAssembly.compile(await response.arrayBuffer());
  const memory = new WebAssembly.Memory({ initial: 64, maximum: 32768, shared: threads > 1 });
  const { exports } = new WebAssembly.Instance(module, { env: { memory } });
  const heap = new Heap(memory, exports.__heap_base.value);
  return { kernels: exports, heap, pool: new Pool(module, memory, exports, heap, threads), threads };
}

/** A network ready to run: the ONNX model in `bytes`, planned onto `runtime`. */
export function createNetwork(runtime, bytes) {
  return new Network(readModel(bytes), runtime);
}

/** Runs a PARALLEL kernel on `parts` threads: this one and parts - 1 workers, told through control words in the
shared memory (CALL, DONE, KERNEL, COUNT, LISTENING, then the arguments). The workers start at the first call
(so that they do not slow the page's loading); until they all listen, this thread does all the work. */
class Pool {
  constructor(module, memory, kernels, heap, parts) {
    Object.assign(this, { module, memory, kernels, heap, parts, ready: null });
    if (parts > 1) this.words = heap.view(Int32Array, heap.alloc(4 * WORDS), WORDS);
  }

  /** Starts the workers (once); resolves when they all listen. */
  start() {
    this.ready ??= this.parts === 1 ? Promise.resolve() : Promise.all(Array.from({ length: this.parts - 1 }, (_, i) => new Promise((resolve, reject) => {
      const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
      worker.onmessage = resolve;
      worker.onerror = (event) => reject(new Error(`a runtime thread failed: ${event.message}`));
      worker.postMessage({ module: this.module, memory: this.memory, control: this.words.byteOffset,
                           stack: this.heap.alloc(STACK) + STACK, part: i + 1, parts: this.parts });
    }))).catch((err) => { this.parts = 1; console.warn(err.message); });
    return this.ready;
  }

  /** Whether every worker listens (read from the shared memory: no message needs to arrive first). */
  get started() { return this.parts === 1 || Atomics.load(this.words, LISTENING) === this.parts - 1; }

  run(name, args, work) {
    if (this.parts > 1 && !this.ready) this.start();
    if (this.parts === 1 || work < SERIAL_WORK || !this.started) return this.kernels[name](...args, 0, 1);
    const words = this.words;
    words[KERNEL] = PARALLEL.indexOf(name);
    words[COUNT] = args.length;
    words.set(args, ARGUMENTS);
    Atomics.store(words, DONE, 0);
    Atomics.add(words, CALL, 1);
    Atomics.notify(words, CALL);
    this.kernels[name](...args, 0, this.parts);
    while (Atomics.load(words, DONE) < this.parts - 1); // the page's thread may not sleep: the others are near done
  }
}

/** The instance's memory: constants from the bottom up, then a first-fit heap of run-time tensors. */
class Heap {
  constructor(memory, base) { Object.assign(this, { memory, top: align(base), free: [] }); }

  alloc(bytes) {
    bytes = align(Math.max(bytes, 16));
    const i = this.free.findIndex(([, size]) => size >= bytes);
    if (i >= 0) {
      const [at, size] = this.free[i];
      if (size > bytes) this.free[i] = [at + bytes, size - bytes]; else this.free.splice(i, 1);
      return at;
    }
    const at = this.top;
    this.top += bytes;
    const short = this.top - this.memory.buffer.byteLength;
    if (short > 0) this.memory.grow(Math.ceil(short / PAGE));
    return at;
  }

  release(at, bytes) {
    this.free.push([at, align(Math.max(bytes, 16))]);
    this.free.sort((a, b) => a[0] - b[0]);
    this.free = this.free.reduce((merged, block) => { // join neighbours
      const last = merged[merged.length - 1];
      if (last && last[0] + last[1] === block[0]) last[1] += block[1]; else merged.push(block);
      return merged;
    }, []);
  }

  /** A typed array of `length` elements at `at` (a fresh view: the buffer changes when memory grows). */
  view(Type, at, length) { return new Type(this.memory.buffer, at, length); }

  /** The bytes at [from, to) copied to `at`. */
  copy(at, from, to) { new Uint8Array(this.memory.buffer).copyWithin(at, from, to); }

  /** A constant copied in once, for good. */
  constant(array) {
    const at = this.alloc(array.byteLength);
    this.view(array.constructor, at, array.length).set(array);
    return at;
  }
}

const align = (n) => (n + 15) & ~15;
const product = (dims) => dims.reduce((a, b) => a * b, 1);
const BYTES = { f32: 4, u8: 1 };

class Network {
  constructor(graph, { heap, kernels, pool }) {
    Object.assign(this, { heap, kernels, pool, steps: [], inputNames: graph.inputs, outputNames: graph.outputs });
    plan(this, graph);
    this.lastUse = new Map(); // tensor -> index of the last step that reads it
    this.steps.forEach((step, i) => step.reads.forEach((name) => this.lastUse.set(name, i)));
  }

  /** Runs the graph on `feeds` ({ name: { data, dims } }, float32); returns every output as { data, dims }. */
  run(feeds) {
    const tensors = new Map();
    for (const name of this.inputNames) {
      const feed = feeds[name];
      if (!feed) throw new Error(`missing input ${name}`);
      if (feed.data.length !== product(feed.dims)) throw new Error(`input ${name}: ${feed.data.length} values for dims ${feed.dims}`);
      const at = this.heap.alloc(feed.data.byteLength);
      this.heap.view(Float32Array, at, feed.data.length).set(feed.data);
      tensors.set(name, { at, dims: [...feed.dims], type: "f32" });
    }
    try {
      this.steps.forEach((step, i) => {
        step.run(tensors);
        for (const name of step.reads) {
          if (this.lastUse.get(name) === i && !this.outputNames.includes(name)) this.drop(tensors, name);
        }
      });
      return Object.fromEntries(this.outputNames.map((name) => {
        const t = tensors.get(name);
        return [name, { data: this.heap.view(Float32Array, t.at, product(t.dims)).slice(), dims: t.dims }];
      }));
    } finally {
      for (const name of [...tensors.keys()]) this.drop(tensors, name);
    }
  }

  drop(tensors, name) {
    const t = tensors.get(name);
    if (!t) return;
    this.heap.release(t.at, product(t.dims) * BYTES[t.type]);
    tensors.delete(name);
  }

  /** A run-time tensor for a step's output. */
  output(tensors, name, dims, type) {
    const t = { at: this.heap.alloc(product(dims) * BYTES[type]), dims, type };
    tensors.set(name, t);
    return t;
  }

  /** Scratch memory for the length of `use(at)`. */
  scratch(bytes, use) {
    if (!bytes) return use(0);
    const at = this.heap.alloc(bytes);
    try {
      return use(at);
    } finally {
      this.heap.release(at, bytes);
    }
  }
}

// ---- planning: each node becomes a step over run-time tensors; int8 nodes are folded as ONNX Runtime folds them ----

/** Fills `net.steps`. What each name holds at plan time: { kind: "const", data, dims } (a constant),
{ kind: "q-const", data, scale, zero } (a DequantizeLinear of a constant), { kind: "tensor", type: "f32" } or
{ kind: "tensor", type: "u8", scale, zero } (computed at run time), { kind: "dq", of, scale, zero } (the float
values of a uint8 tensor). */
function plan(net, graph) {
  const values = new Map(), consumers = new Map(), skipped = new Set(), aliases = new Map();
  const real = (name) => aliases.get(name) ?? name; // a QuantizeLinear that undoes its DequantizeLinear names the same tensor
  graph.constants.forEach((t, name) => values.set(name, { kind: "const", ...t }));
  graph.inputs.forEach((name) => values.set(name, { kind: "tensor", type: "f32" }));
  graph.nodes.forEach((node) => node.inputs.forEach((name) => consumers.set(name, [...(consumers.get(name) || []), node])));
  const only = (name, op) => { // the one node that reads `name`, if it is an `op` and `name` is no graph output
    const readers = consumers.get(name) || [];
    return readers.length === 1 && readers[0].op === op && !graph.outputs.includes(name) ? readers[0] : null;
  };
  const add = (reads, run) => net.steps.push({ reads, run });
  const constant = (name) => {
    const v = values.get(name);
    if (v?.kind === "const") return v;
    if (v?.kind === "q-const") return { data: Float32Array.from(v.data, (q, i) => (q - v.zero) * v.scale[v.scale.length > 1 ? i / (v.data.length / v.scale.length) | 0 : 0]), dims: v.dims };
    throw new Error(`${name} is not a constant`);
  };
  const floatTensor = (name) => { // the name of a float run-time tensor holding `name`'s values
    const v = values.get(name);
    if (v.kind === "tensor" && v.type === "f32") return real(name);
    if (v.kind !== "dq") throw new Error(`${name}: a ${v.kind} where a float tensor was expected`);
    const out = `${name}#float`;
    if (!values.has(out)) {
      values.set(out, { kind: "tensor", type: "f32" });
      add([v.of], (t) => {
        const x = t.get(v.of), y = net.output(t, out, x.dims, "f32");
        net.kernels.dequantize_u8(x.at, product(x.dims), v.scale, v.zero, y.at);
      });
    }
    return out;
  };
  /** A step from x to y reading x as float: `run(input, output)`, the output shaped `shape(input dims)`. */
  const floatStep = (x, y, shape, run) => {
    const from = floatTensor(x);
    values.set(y, { kind: "tensor", type: "f32" });
    add([from], (t) => { const i = t.get(from); run(i, net.output(t, y, shape(i.dims), "f32")); });
  };
  /** A step that moves values without computing on them (pooling, flattening): uint8 stays uint8 (the same scale
  and zero point, as ONNX Runtime drops the DequantizeLinear / QuantizeLinear around it), float stays float. */
  const typeKeepingStep = (x, y, shape, run) => {
    const v = values.get(x), quantized = v.kind === "dq", from = quantized ? v.of : floatTensor(x), out = quantized ? `${y}#q` : y;
    const type = quantized ? "u8" : "f32";
    values.set(out, quantized ? { kind: "tensor", type, scale: v.scale, zero: v.zero } : { kind: "tensor", type });
    if (quantized) values.set(y, { kind: "dq", of: out, scale: v.scale, zero: v.zero });
    add([from], (t) => { const i = t.get(from); run(i, net.output(t, out, shape(i.dims), type), type); });
  };

  for (const node of graph.nodes) {
    if (skipped.has(node)) continue;
    const [x] = node.inputs, [y] = node.outputs, a = node.attributes;
    switch (node.op) {
      case "Constant":
        values.set(y, { kind: "const", ...a.value });
        break;
      case "DequantizeLinear": {
        const v = values.get(x), scale = constant(node.inputs[1]).data, zero = node.inputs[2] ? Number(constant(node.inputs[2]).data[0]) : 0;
        if (v.kind === "const") {
          const zeros = node.inputs[2] ? constant(node.inputs[2]).data : [0];
          if (zeros.some((z) => Number(z) !== zero)) throw new Error(`${x}: per-channel zero points are not supported`);
          values.set(y, { kind: "q-const", data: v.data, dims: v.dims, scale, zero });
        } else values.set(y, { kind: "dq", of: real(x), scale: scale[0], zero });
        break;
      }
      case "QuantizeLinear": {
        const v = values.get(x), scale = constant(node.inputs[1]).data[0], zero = Number(constant(node.inputs[2]).data[0]);
        if (v.kind === "dq" && v.scale === scale && v.zero === zero) { values.set(y, values.get(v.of)); aliases.set(y, v.of); break; }
        const from = floatTensor(x);
        values.set(y, { kind: "tensor", type: "u8", scale, zero });
        add([from], (t) => {
          const f = t.get(from), q = net.output(t, y, f.dims, "u8");
          net.kernels.quantize_u8(f.at, product(f.dims), scale, zero, q.at);
        });
        break;
      }
      case "Conv":
      case "Gemm": {
        const quantize = only(y, "QuantizeLinear");
        if (values.get(x).kind === "dq" && values.get(node.inputs[1]).kind === "q-const" && quantize) {
          skipped.add(quantize);
          planQuantized(net, values, node, quantize, constant, add);
        } else {
          const relu = only(y, "Relu");
          if (relu) skipped.add(relu);
          planFloat(net, values, node, relu ? relu.outputs[0] : y, floatTensor(x), constant, add);
        }
        break;
      }
      case "MaxPool": {
        const [kh, kw] = a.kernel_shape, [sh, sw] = a.strides || [1, 1];
        if (kh !== 2 || kw !== 2 || sh !== 2 || sw !== 2 || (a.pads || []).some(Boolean) || a.ceil_mode) {
          throw new Error("MaxPool: only 2x2, stride 2, no padding is supported");
        }
        typeKeepingStep(x, y, ([n, c, h, w]) => [n, c, h >> 1, w >> 1], (i, o, type) =>
          net.kernels[type === "u8" ? "maxpool2_u8" : "maxpool2_f32"](i.at, i.dims[0] * i.dims[1], i.dims[2], i.dims[3], o.at));
        break;
      }
      case "Flatten": {
        if ((a.axis ?? 1) !== 1) throw new Error("Flatten: only axis 1 is supported");
        typeKeepingStep(x, y, (dims) => [dims[0], product(dims.slice(1))], (i, o, type) =>
          net.heap.copy(o.at, i.at, i.at + product(i.dims) * BYTES[type]));
        break;
      }
      case "Relu":
      case "Sigmoid": {
        const kernel = node.op === "Relu" ? "relu_f32" : "sigmoid_f32";
        floatStep(x, y, (dims) => dims, (i, o) => net.kernels[kernel](i.at, product(i.dims), o.at));
        break;
      }
      case "Softmax": {
        const last = (dims) => { // ONNX's axis, which must be the last
          if ((a.axis ?? -1) !== -1 && a.axis !== dims.length - 1) throw new Error("Softmax: only the last axis is supported");
          return dims[dims.length - 1];
        };
        floatStep(x, y, (dims) => { last(dims); return dims; }, (i, o) =>
          net.kernels.softmax_f32(i.at, product(i.dims) / last(i.dims), last(i.dims), o.at));
        break;
      }
      case "Reshape": {
        const shape = Array.from(constant(node.inputs[1]).data, Number);
        floatStep(x, y, (from) => {
          const dims = shape.map((d, k) => (d === 0 && !a.allowzero ? from[k] : d));
          const size = product(from), known = product(dims.filter((d) => d !== -1));
          const to = dims.map((d) => (d === -1 ? size / known : d));
          if (product(to) !== size) throw new Error(`Reshape: ${from} cannot become ${shape}`);
          return to;
        }, (i, o) => net.heap.copy(o.at, i.at, i.at + product(i.dims) * 4));
        break;
      }
      case "Concat": {
        const froms = node.inputs.map(floatTensor);
        values.set(y, { kind: "tensor", type: "f32" });
        add(froms, (t) => {
          const parts = froms.map((name) => t.get(name)), rank = parts[0].dims.length, axis = (a.axis + rank) % rank;
          const dims = [...parts[0].dims];
          dims[axis] = parts.reduce((sum, p) => sum + p.dims[axis], 0);
          const o = net.output(t, y, dims, "f32"), outer = product(dims.slice(0, axis));
          let at = o.at;
          for (let n = 0; n < outer; n++) for (const p of parts) { // each part's block of the axis, outer index by index
            const block = product(p.dims.slice(axis)) * 4, from = p.at + n * block;
            net.heap.copy(at, from, from + block);
            at += block;
          }
        });
        break;
      }
      case "Add": {
        const [p, q] = node.inputs.map(floatTensor);
        values.set(y, { kind: "tensor", type: "f32" });
        add([p, q], (t) => {
          const i = t.get(p), j = t.get(q);
          if (product(i.dims) !== product(j.dims)) throw new Error("Add: only tensors of one shape are supported");
          const o = net.output(t, y, i.dims, "f32");
          net.kernels.add_f32(i.at, j.at, product(i.dims), o.at);
        });
        break;
      }
      case "Resize": {
        const scales = node.inputs[2] ? Array.from(constant(node.inputs[2]).data) : null;
        const f = scales?.[2];
        if (a.mode !== "nearest" || !scales || scales[0] !== 1 || scales[1] !== 1 || scales[3] !== f || f !== Math.round(f)
            || (a.coordinate_transformation_mode ?? "half_pixel") !== "asymmetric" || (a.nearest_mode ?? "round_prefer_floor") !== "floor") {
          throw new Error("Resize: only nearest (asymmetric, floor) by a whole factor is supported");
        }
        floatStep(x, y, ([n, c, h, w]) => [n, c, h * f, w * f], (i, o) =>
          net.kernels.upsample_nearest_f32(i.at, i.dims[0] * i.dims[1], i.dims[2], i.dims[3], f, o.at));
        break;
      }
      default:
        throw new Error(`this runtime has no ${node.op} operator`);
    }
  }
  for (const name of graph.outputs) { // graph outputs are float
    const v = values.get(name);
    if (v.kind === "dq") {
      const from = floatTensor(name);
      net.steps.push({ reads: [from], run: (t) => { t.set(name, t.get(from)); t.delete(from); } });
    } else if (v.kind !== "tensor" || v.type !== "f32") throw new Error(`output ${name} is not a float tensor`);
  }
}

function convShape(a, weightDims, dims) {
  const [, , h, w] = dims, [, , kh, kw] = weightDims;
  const [sh, sw] = a.strides || [1, 1], [pt, pl, pb, pr] = a.pads || [0, 0, 0, 0];
  if ((a.dilations || [1, 1]).some((d) => d !== 1) || sh !== sw) throw new Error("Conv: only square strides without dilation are supported");
  if ((a.auto_pad ?? "NOTSET") !== "NOTSET") throw new Error("Conv: only explicit pads are supported");
  if (dims[1] !== weightDims[1] * (a.group || 1)) throw new Error(`Conv: ${dims[1]} input channels for weights of ${weightDims[1]}`);
  return { kh, kw, stride: sh, pt, pl, oh: Math.floor((h + pt + pb - kh) / sh) + 1, ow: Math.floor((w + pl + pr - kw) / sw) + 1 };
}

function planFloat(net, values, node, y, from, constant, add) {
  const a = node.attributes, k = net.kernels, weight = constant(node.inputs[1]);
  const w = net.heap.constant(weight.data), bias = node.inputs[2] ? net.heap.constant(constant(node.inputs[2]).data) : 0;
  const relu = y !== node.outputs[0] ? 1 : 0, [m] = weight.dims;
  values.set(y, { kind: "tensor", type: "f32" });
  if (node.op === "Gemm") {
    if (!a.transB || a.transA || (a.alpha ?? 1) !== 1 || (a.beta ?? 1) !== 1) throw new Error("Gemm: only x W^T + b is supported");
    add([from], (t) => {
      const x = t.get(from), [rows, kx] = x.dims;
      if (kx !== weight.dims[1]) throw new Error(`Gemm: ${kx} inputs for weights of ${weight.dims[1]}`);
      const o = net.output(t, y, [rows, m], "f32");
      k.gemm_f32_rows(x.at, rows, kx, w, bias, m, relu, o.at);
    });
    return;
  }
  const group = a.group || 1, [, cin] = weight.dims;
  if (group !== 1 && !(cin === 1 && m === group)) throw new Error("Conv: only group 1 or depthwise is supported");
  add([from], (t) => {
    const x = t.get(from), [n, c, h, wd] = x.dims, s = convShape(a, weight.dims, x.dims);
    const o = net.output(t, y, [n, m, s.oh, s.ow], "f32"), shape = [c, h, wd, m, s.kh, s.kw, s.stride, s.pt, s.pl, s.oh, s.ow, group];
    const work = m * s.oh * s.ow * cin * s.kh * s.kw, plane = c * h * wd * 4;
    net.scratch(k.conv_f32_scratch(...shape, net.pool.parts), (scratch) => {
      for (let i = 0; i < n; i++) {
        if (!k.direct_f32(...shape)) { // columns first
          net.pool.run("im2col_f32", [x.at + i * plane, c, h, wd, s.kh, s.kw, s.stride, s.pt, s.pl, s.oh, s.ow, scratch], work);
        }
        net.pool.run("conv_f32", [x.at + i * plane, c, h, wd, w, bias, m, s.kh, s.kw, s.stride, s.pt, s.pl, s.oh, s.ow, group, relu,
                                  o.at + i * m * s.oh * s.ow * 4, scratch], work);
      }
    });
  });
}

/** Q(Conv or Gemm(DQ(x), DQ(w), DQ(bias))): ONNX Runtime's QLinearConv / QGemm, in integers. */
function planQuantized(net, values, node, quantize, constant, add) {
  const a = node.attributes, k = net.kernels, heap = net.heap;
  const input = values.get(node.inputs[0]), weight = values.get(node.inputs[1]);
  const y = quantize.outputs[0], yScale = constant(quantize.inputs[1]).data[0], yZero = Number(constant(quantize.inputs[2]).data[0]);
  if (weight.zero !== 0) throw new Error(`${node.inputs[1]}: int8 weights need a zero point of 0`);
  const [m] = weight.dims, kk = product(weight.dims.slice(1));
  const scales = Float32Array.from({ length: m }, (_, i) => // ONNX Runtime's x_scale * w_scale / y_scale, in float32
    Math.fround(Math.fround(input.scale * weight.scale[weight.scale.length > 1 ? i : 0]) / yScale));
  const biasValue = node.inputs[2] ? values.get(node.inputs[2]) : null;
  if (biasValue && !(biasValue.kind === "q-const" && biasValue.data instanceof Int32Array)) throw new Error(`${node.inputs[2]}: the bias must be int32`);
  const packed = heap.alloc((kk + 1 >> 1) * 4 * m);
  const raw = heap.constant(weight.data);
  k.pack_weights_s8(raw, m, kk, packed);
  heap.release(raw, weight.data.byteLength);
  const bias = heap.constant(biasValue ? biasValue.data : new Int32Array(m)), scale = heap.constant(scales);
  const from = input.of;
  values.set(y, { kind: "tensor", type: "u8", scale: yScale, zero: yZero });
  if (node.op === "Gemm") {
    if (!a.transB || a.transA) throw new Error("Gemm: only x W^T + b is supported");
    add([from], (t) => {
      const x = t.get(from), [rows, kx] = x.dims;
      if (kx !== kk) throw new Error(`Gemm: ${kx} inputs for weights of ${kk}`);
      const o = net.output(t, y, [rows, m], "u8");
      net.scratch(k.gemm_u8_scratch(rows, kx, m), (scratch) =>
        k.gemm_u8_rows(x.at, rows, kx, input.zero, packed, bias, scale, m, yZero, o.at, scratch));
    });
    return;
  }
  if ((a.group || 1) !== 1) throw new Error("int8 Conv: only group 1 is supported");
  add([from], (t) => {
    const x = t.get(from), [n, c, h, wd] = x.dims, s = convShape(a, weight.dims, x.dims);
    const o = net.output(t, y, [n, m, s.oh, s.ow], "u8"), work = m * s.oh * s.ow * kk;
    net.scratch(k.conv_u8_scratch(c, s.kh, s.kw, s.oh, s.ow), (scratch) => {
      for (let i = 0; i < n; i++) {
        net.pool.run("im2col_u8", [x.at + i * c * h * wd, c, h, wd, input.zero, s.kh, s.kw, s.stride, s.pt, s.pl, s.oh, s.ow, scratch], work);
        net.pool.run("conv_u8", [scratch, kk, packed, bias, scale, m, s.oh, s.ow, yZero, o.at + i * m * s.oh * s.ow], work);
      }
    });
  });
}
