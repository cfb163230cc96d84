#!/usr/bin/env node
'use strict';
// Runs an ONNX model with ONNX Runtime (CPU execution provider) for repq's cross-checks and
// benchmarks.
//
//   node ort_run.js MODEL.onnx [--input NAME=FILE.npy ...] [--out-dir DIR]
//        [--level disabled|basic|extended|all] [--threads N] [--optimized-model PATH]
//        [--float32-outputs] [--no-spin]
//        [--bench N [--batch B] [--random-input NAME=2x3x224x224 ...]]
//
// Run mode writes output i as DIR/output_<i>.npy (its own dtype, or float32 with
// --float32-outputs) and prints one JSON line: {"outputs":[{name,file,dtype,shape}],
// "load_ms", "run_ms", "ort_version"}. Bench mode (--bench N) runs 2 warm-up passes and N timed
// passes, and prints {"median_ms","min_ms","mean_ms","batch","median_ms_per_item",...}.
// Inputs not given with --input get uniform random values in [-1, 1) of the declared shape,
// symbolic dims set to --batch (default 1). --no-spin stops ORT's worker threads from
// spinning while idle (fairer when other jobs share the cores). Exit code 2 on bad usage or
// input, 1 when ONNX Runtime fails.
const fs = require('fs');
const path = require('path');
const { readNpy, writeNpy } = require('./npy');

const USAGE = 'usage: node ort_run.js MODEL.onnx [--input NAME=FILE.npy ...] [--out-dir DIR] ' +
  '[--level disabled|basic|extended|all] [--threads N] [--optimized-model PATH] ' +
  '[--float32-outputs] [--no-spin] [--bench N] [--batch B] [--random-input NAME=DIMS]';

class UsageError extends Error {}

function parseArgs(argv) {
  const a = { inputs: {}, random: {}, level: 'all', threads: 1, bench: 0, batch: 1, float32: false, spin: true };
  const positional = [];
  const value = (i) => {
    if (i + 1 >= argv.length) throw new UsageError(`${argv[i]} needs a value`);
    return argv[i + 1];
  };
  const posInt = (flag, s) => {
    if (!/^[0-9]+$/.test(s) || Number(s) <= 0) throw new UsageError(`${flag}: expected a positive integer, got '${s}'`);
    return Number(s);
  };
  const pair = (flag, s) => {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new UsageError(`${flag}: expected NAME=VALUE, got '${s}'`);
    return [s.slice(0, eq), s.slice(eq + 1)];
  };
  for (let i = 0; i < argv.length; ++i) {
    const s = argv[i];
    if (s === '--input') { const [k, v] = pair(s, value(i++)); a.inputs[k] = v; }
    else if (s === '--random-input') {
      const [k, v] = pair(s, value(i++));
      a.random[k] = v.split('x').map((d) => posInt(s, d));
    }
    else if (s === '--out-dir') a.outDir = value(i++);
    else if (s === '--level') {
      a.level = value(i++);
      if (!['disabled', 'basic', 'extended', 'all'].includes(a.level)) throw new UsageError(`--level: unknown level '${a.level}'`);
    }
    else if (s === '--threads') a.threads = posInt(s, value(i++));
    else if (s === '--optimized-model') a.optimized = value(i++);
    else if (s === '--bench') a.bench = posInt(s, value(i++));
    else if (s === '--batch') a.batch = posInt(s, value(i++));
    else if (s === '--float32-outputs') a.float32 = true;
    else if (s === '--no-spin') a.spin = false;
    else if (s === '-h' || s === '--help') { console.log(USAGE); process.exit(0); }
    else if (s.startsWith('--')) throw new UsageError(`unknown option '${s}'`);
    else positional.push(s);
  }
  if (positional.length !== 1) throw new UsageError(`expected one model path, got ${positional.length}`);
  a.model = positional[0];
  if (!a.bench && !a.outDir) throw new UsageError('--out-dir is required (unless --bench)');
  return a;
}

function randomTensor(ort, meta, dims) {
  if (meta.type !== 'float32') throw new UsageError(`input '${meta.name}': cannot make random ${meta.type} data; pass --input`);
  const n = dims.reduce((x, y) => x * y, 1);
  const data = new Float32Array(n);
  let s = 12345;  // deterministic LCG
  for (let i = 0; i < n; ++i) { s = (s * 1103515245 + 12345) >>> 0; data[i] = (s / 4294967296) * 2 - 1; }
  return new ort.Tensor('float32', data, dims);
}

function makeFeeds(ort, session, a) {
  const feeds = {};
  for (const name of Object.keys(a.inputs))
    if (!session.inputNames.includes(name)) throw new UsageError(`the model has no input '${name}' (inputs: ${session.inputNames.join(', ')})`);
  for (const meta of session.inputMetadata) {
    if (a.inputs[meta.name]) {
      let t;
      try { t = readNpy(a.inputs[meta.name]); } catch (e) { throw new UsageError(e.message); }
      feeds[meta.name] = new ort.Tensor(t.type, t.data, t.dims);
    } else {
      const dims = a.random[meta.name] || (meta.shape || []).map((d) => (typeof d === 'number' && d >= 0 ? d : a.batch));
      feeds[meta.name] = randomTensor(ort, meta, dims);
    }
  }
  return feeds;
}

function median(xs) {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(a.model)) throw new UsageError(`${a.model}: no such file`);
  const ort = require('onnxruntime-node');
  const opts = {
    executionProviders: ['cpu'], graphOptimizationLevel: a.level, intraOpNumThreads: a.threads,
    interOpNumThreads: 1, executionMode: 'sequential', logSeverityLevel: 3,
  };
  if (a.optimized) opts.optimizedModelFilePath = a.optimized;
  if (!a.spin) opts.extra = { session: { intra_op: { allow_spinning: '0' } } };
  let t0 = performance.now();
  const session = await ort.InferenceSession.create(a.model, opts);
  const loadMs = performance.now() - t0;
  const feeds = makeFeeds(ort, session, a);
  const version = ort.env.versions.node || ort.env.versions.common;

  if (a.bench) {
    for (let i = 0; i < 2; ++i) await session.run(feeds);
    const times = [];
    for (let i = 0; i < a.bench; ++i) {
      t0 = performance.now();
      await session.run(feeds);
      times.push(performance.now() - t0);
    }
    const batch = feeds[session.inputNames[0]].dims[0] || 1;
    const med = median(times);
    console.log(JSON.stringify({
      model: a.model, level: a.level, threads: a.threads, spin: a.spin, runs: a.bench, batch,
      median_ms: med, min_ms: Math.min(...times), mean_ms: times.reduce((x, y) => x + y, 0) / times.length,
      median_ms_per_item: med / batch, load_ms: loadMs, ort_version: version,
    }));
    return;
  }

  t0 = performance.now();
  const results = await session.run(feeds);
  const runMs = performance.now() - t0;
  fs.mkdirSync(a.outDir, { recursive: true });
  const outputs = session.outputNames.map((name, i) => {
    const t = results[name];
    let { type, data } = t;
    if (a.float32 && type !== 'float32') { data = Float32Array.from(data, Number); type = 'float32'; }
    if (type === 'bool') data = Uint8Array.from(data, (v) => (v ? 1 : 0));
    const file = path.join(a.outDir, `output_${i}.npy`);
    writeNpy(file, type, t.dims, data);
    return { name, file, dtype: type, shape: t.dims };
  });
  console.log(JSON.stringify({ outputs, load_ms: loadMs, run_ms: runMs, ort_version: version }));
}

main().catch((e) => {
  const msg = e && e.message ? e.message.replace(/\s*\n\s*/g, ' ') : String(e);
  process.stderr.write(`ort_run.js: error: ${msg}\n`);
  if (e instanceof UsageError) process.stderr.write(USAGE + '\n');
  process.exit(e instanceof UsageError ? 2 : 1);
});
