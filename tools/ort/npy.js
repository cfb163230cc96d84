'use strict';
// Minimal .npy (NumPy format 1.0-3.0) reader and writer for C-order little-endian arrays.
const fs = require('fs');

// numpy descr -> [onnxruntime tensor type, TypedArray]
const DESCR = {
  '<f4': ['float32', Float32Array], '<f8': ['float64', Float64Array],
  '<f2': ['float16', Uint16Array], '<i8': ['int64', BigInt64Array],
  '<u8': ['uint64', BigUint64Array], '<i4': ['int32', Int32Array],
  '<u4': ['uint32', Uint32Array], '<i2': ['int16', Int16Array],
  '<u2': ['uint16', Uint16Array], '|i1': ['int8', Int8Array],
  '|u1': ['uint8', Uint8Array], '|b1': ['bool', Uint8Array],
};
const TYPE_TO_DESCR = Object.fromEntries(Object.entries(DESCR).map(([d, [t]]) => [t, d]));
const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);  // \x93NUMPY

function fail(path, what) { throw new Error(`${path}: ${what}`); }

// Returns {type, dims, data} where data is a TypedArray (bool as Uint8Array).
function readNpy(path) {
  const buf = fs.readFileSync(path);
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) fail(path, 'not a .npy file');
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.subarray(start, start + hlen).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header);
  const fortran = /'fortran_order':\s*(True|False)/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) fail(path, `bad header ${header.trim()}`);
  if (fortran[1] === 'True') fail(path, 'Fortran-order arrays are not supported');
  const kind = DESCR[descr[1]];
  if (!kind) fail(path, `unsupported dtype ${descr[1]}`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s).map(Number);
  const n = dims.reduce((a, b) => a * b, 1);
  const [type, Arr] = kind;
  const off = start + hlen;
  if (buf.length - off !== n * Arr.BYTES_PER_ELEMENT)
    fail(path, `${buf.length - off} data bytes, shape (${dims}) of ${descr[1]} needs ${n * Arr.BYTES_PER_ELEMENT}`);
  const bytes = new Uint8Array(n * Arr.BYTES_PER_ELEMENT);  // copy: aligned for the TypedArray
  buf.copy(bytes, 0, off);
  return { type, dims, data: new Arr(bytes.buffer) };
}

function writeNpy(path, type, dims, data) {
  const descr = TYPE_TO_DESCR[type];
  if (!descr) fail(path, `cannot write a ${type} tensor`);
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  MAGIC.copy(pre);
  pre[6] = 1; pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  fs.writeFileSync(path, Buffer.concat([pre, Buffer.from(header, 'latin1'), body]));
}

module.exports = { readNpy, writeNpy };
