// Reads an ONNX model file (protobuf) into plain objects: the graph's nodes, its constant tensors (initializers)
// as typed arrays, and its input and output names. Only the fields the runtime uses are read.

const TYPES = { 1: Float32Array, 2: Uint8Array, 3: Int8Array, 6: Int32Array, 7: BigInt64Array }; // TensorProto.DataType

/** The graph of an ONNX model: { nodes: [{ op, inputs, outputs, attributes }], constants: Map, inputs, outputs }. */
export function readModel(bytes) {
  const model = message(bytes, 0, bytes.length);
  const graphField = model.get(7);
  if (!graphField) throw new Error("not an ONNX model (no graph)");
  const graph = message(bytes, ...graphField[0]);
  const strings = (field, m) => (m.get(field) || []).map(([s, e]) => text(bytes, s, e));
  const nodes = (graph.get(1) || []).map(([s, e]) => {
    const node = message(bytes, s, e);
    const attributes = Object.fromEntries((node.get(5) || []).map(([as, ae]) => attribute(bytes, message(bytes, as, ae))));
    return { op: strings(4, node)[0], inputs: strings(1, node), outputs: strings(2, node), attributes };
  });
  const constants = new Map((graph.get(5) || []).map(([s, e]) => {
    const t = tensor(bytes, message(bytes, s, e));
    return [t.name, t];
  }));
  const names = (field) => (graph.get(field) || []).map(([s, e]) => strings(1, message(bytes, s, e))[0]);
  return { nodes, constants, inputs: names(11).filter((n) => !constants.has(n)), outputs: names(12) };
}

/** The fields of the message in bytes[start:end]: field number -> [values]; a length-delimited value is its
[start, end), a varint a Number (or [lo, hi] words past 2^53), a fixed32 its 4 bytes' offset. */
function message(bytes, start, end) {
  const fields = new Map();
  let at = start;
  while (at < end) {
    const [key, next] = varint(bytes, at);
    at = next;
    const field = Math.floor(key / 8), wire = key & 7;
    let value;
    if (wire === 0) [value, at] = varint(bytes, at);
    else if (wire === 2) {
      const [length, from] = varint(bytes, at);
      value = [from, from + length];
      at = from + length;
    } else if (wire === 5) { value = at; at += 4; }
    else if (wire === 1) { value = at; at += 8; }
    else throw new Error(`unreadable ONNX file (wire type ${wire})`);
    if (!fields.has(field)) fields.set(field, []);
    fields.get(field).push(value);
  }
  return fields;
}

function varint(bytes, at) {
  let lo = 0, hi = 0, shift = 0, byte;
  do {
    byte = bytes[at++];
    if (shift < 28) lo |= (byte & 0x7f) << shift;
    else if (shift === 28) { lo |= (byte & 0x0f) << 28; hi |= (byte & 0x7f) >> 4; }
    else hi |= (byte & 0x7f) << (shift - 32);
    shift += 7;
  } while (byte & 0x80);
  hi |= 0;
  return [hi * 2 ** 32 + (lo >>> 0), at]; // int64, two's complement
}

const text = (bytes, start, end) => new TextDecoder().decode(bytes.subarray(start, end));

function packedVarints(bytes, values) { // repeated int64: packed ([start, end)) or one varint a value
  return values.flatMap((v) => {
    if (!Array.isArray(v)) return [v];
    const out = [];
    for (let at = v[0]; at < v[1];) { let x; [x, at] = varint(bytes, at); out.push(x); }
    return out;
  });
}

function packedFloats(bytes, values) {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  return values.flatMap((v) => Array.isArray(v)
    ? Array.from({ length: (v[1] - v[0]) / 4 }, (_, i) => view.getFloat32(v[0] + 4 * i, true)) : [view.getFloat32(v, true)]);
}

function attribute(bytes, a) {
  const name = text(bytes, ...a.get(1)[0]);
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  switch (a.get(20)?.[0]) { // AttributeProto.AttributeType
    case 1: return [name, view.getFloat32(a.get(2)[0], true)];
    case 2: return [name, a.get(3)[0]];
    case 3: return [name, text(bytes, ...a.get(4)[0])];
    case 4: return [name, tensor(bytes, message(bytes, ...a.get(5)[0]))];
    case 6: return [name, packedFloats(bytes, a.get(7) || [])];
    case 7: return [name, packedVarints(bytes, a.get(8) || [])];
    default: return [name, null];
  }
}

/** A TensorProto as { name, dims, data } (data a typed array of its type, aligned, owned). */
function tensor(bytes, t) {
  const name = t.has(8) ? text(bytes, ...t.get(8)[0]) : "";
  const dims = packedVarints(bytes, t.get(1) || []);
  const type = t.get(2)?.[0], Type = TYPES[type];
  if (!Type) throw new Error(`tensor ${name}: data type ${type} is not supported`);
  let data;
  if (t.has(9)) {
    const [s, e] = t.get(9)[0];
    data = new Type(bytes.slice(s, e).buffer);
  } else if (type === 1) data = Float32Array.from(packedFloats(bytes, t.get(4) || []));
  else if (type === 7) data = BigInt64Array.from(packedVarints(bytes, t.get(7) || []).map(BigInt));
  else data = Type.from(packedVarints(bytes, t.get(5) || []));
  return { name, dims, data };
}
