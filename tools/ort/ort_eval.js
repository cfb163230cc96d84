#!/usr/bin/env node
'use strict';
// Top-1 predictions of an ONNX model under ONNX Runtime (CPU) on a whole set of preprocessed
// inputs, for repq's accuracy benchmarks and the INT8 cross-checks.
//
//   node ort_eval.js MODEL.onnx --inputs X.npy [--labels Y.npy] [--batch 32] [--threads 2]
//        [--level disabled|basic|extended|all] [--scores-out S.npy] [--optimized-model PATH]
//        [--ref FLOAT.onnx] [--no-spin]
//
// X.npy: float32 [N, C, H, W] (e.g. written by repq-dump-inputs); Y.npy: N integer labels (any numeric dtype)
// (-1 = unlabelled). The model runs over X in batches (the last one smaller; a model whose
// batch dimension is fixed gets batches of that size). Prints one JSON document:
//   {"model", "samples", "batch", "threads", "level", "ort_version", "classes",
//    "predictions": [N top-1 indices], "top1": accuracy over labelled samples or null,
//    "labelled", "seconds": {"load", "run"}, "reference": null or {"model", "top1",
//    "agreement" (fraction of inputs whose top-1 equals --ref's), "seconds"}}
// --optimized-model writes the graph ONNX Runtime actually runs (to count its QLinearConv).
// --scores-out writes the first output for every sample as float32 [N, classes].
// Exit code 2 on bad usage or input, 1 when ONNX Runtime fails.
const fs = require('fs');
const { readNpy, writeNpy } = require('./npy');

const USAGE = 'usage: node ort_eval.js MODEL.onnx --inputs X.npy [--labels Y.npy] [--batch B] ' +
  '[--threads N] [--level disabled|basic|extended|all] [--scores-out S.npy] ' +
  '[--optimized-model PATH] [--ref FLOAT.onnx] [--no-spin]';

class UsageError extends Error {}

function parseArgs(argv) {
  const a = { batch: 32, threads: 2, level: 'extended', spin: true };
  const positional = [];
  const value = (i) => {
    if (i + 1 >= argv.length) throw new UsageError(`${argv[i]} needs a value`);
    return argv[i + 1];
  };
  const posInt = (flag, s) => {
    if (!/^[0-9]+$/.test(s) || Number(s) <= 0) throw new UsageError(`${flag}: expected a positive integer, got '${s}'`);
    return Number(s);
  };
  for (let i = 0; i < argv.length; ++i) {
    const s = argv[i];
    if (s === '--inputs') a.inputs = value(i++);
    else if (s === '--labels') a.labels = value(i++);
    else if (s === '--batch') a.batch = posInt(s, value(i++));
    else if (s === '--threads') a.threads = posInt(s, value(i++));
    else if (s === '--level') {
      a.level = value(i++);
      if (!['disabled', 'basic', 'extended', 'all'].includes(a.level)) throw new UsageError(`--level: unknown level '${a.level}'`);
    }
    else if (s === '--scores-out') a.scoresOut = value(i++);
    else if (s === '--optimized-model') a.optimized = value(i++);
    else if (s === '--ref') a.ref = value(i++);
    else if (s === '--no-spin') a.spin = false;
    else if (s === '-h' || s === '--help') { console.log(USAGE); process.exit(0); }
    else if (s.startsWith('--')) throw new UsageError(`unknown option '${s}'`);
    else positional.push(s);
  }
  if (positional.length !== 1) throw new UsageError(`expected one model path, got ${positional.length}`);
  if (!a.inputs) throw new UsageError('--inputs X.npy is required');
  a.model = positional[0];
  return a;
}

function readInputs(path) {
  let t;
  try { t = readNpy(path); } catch (e) { throw new UsageError(e.message); }
  if (t.type !== 'float32') throw new UsageError(`${path}: expected float32 inputs, got ${t.type}`);
  if (t.dims.length < 2) throw new UsageError(`${path}: expected [N, ...] inputs, got shape (${t.dims})`);
  return t;
}

function readLabels(path, n) {
  let t;
  try { t = readNpy(path); } catch (e) { throw new UsageError(e.message); }
  if (!['int64', 'int32', 'uint8', 'int16', 'float64', 'float32'].includes(t.type)) throw new UsageError(`${path}: expected integer labels, got ${t.type}`);
  const labels = Array.from(t.data, Number);
  if (labels.some((v) => !Number.isInteger(v))) throw new UsageError(`${path}: labels must be integers`);
  if (labels.length !== n) throw new UsageError(`${path}: ${labels.length} labels for ${n} inputs`);
  return labels;
}

// Runs one model over every input, batched; returns its top-1 predictions (and scores).
async function evalModel(ort, a, modelPath, x, optimized, keepScores) {
  if (!fs.existsSync(modelPath)) throw new UsageError(`${modelPath}: no such file`);
  const n = x.dims[0];
  const opts = {
    executionProviders: ['cpu'], graphOptimizationLevel: a.level, intraOpNumThreads: a.threads,
    interOpNumThreads: 1, executionMode: 'sequential', logSeverityLevel: 3,
  };
  if (optimized) opts.optimizedModelFilePath = optimized;
  if (!a.spin) opts.extra = { session: { intra_op: { allow_spinning: '0' } } };
  let t0 = performance.now();
  const session = await ort.InferenceSession.create(modelPath, opts);
  const loadMs = performance.now() - t0;
  if (session.inputNames.length !== 1) throw new UsageError(`${modelPath}: expected one input, the model has ${session.inputNames.length}`);
  const meta = session.inputMetadata ? session.inputMetadata[0] : null;
  const fixed = meta && meta.shape && typeof meta.shape[0] === 'number' && meta.shape[0] > 0;
  const batch = fixed ? meta.shape[0] : a.batch;
  if (fixed && n % batch !== 0) throw new UsageError(`${modelPath}: fixed batch ${batch} does not divide ${n} inputs`);
  const inName = session.inputNames[0], outName = session.outputNames[0];
  const per = x.dims.slice(1).reduce((p, q) => p * q, 1);
  const predictions = [];
  let scores = null, classes = 0, runMs = 0;
  for (let start = 0; start < n; start += batch) {
    const b = Math.min(batch, n - start);
    const data = x.data.subarray(start * per, (start + b) * per);
    const feeds = { [inName]: new ort.Tensor('float32', data, [b, ...x.dims.slice(1)]) };
    t0 = performance.now();
    const res = await session.run(feeds);
    runMs += performance.now() - t0;
    const out = res[outName];
    if (out.type !== 'float32' || out.dims.length !== 2 || out.dims[0] !== b)
      throw new Error(`${modelPath}: output '${outName}': expected float32 [${b}, classes], got ${out.type} [${out.dims}]`);
    classes = out.dims[1];
    if (keepScores && !scores) scores = new Float32Array(n * classes);
    for (let i = 0; i < b; ++i) {
      const row = out.data.subarray(i * classes, (i + 1) * classes);
      let best = 0;
      for (let c = 1; c < classes; ++c) if (row[c] > row[best]) best = c;  // first max on ties
      predictions.push(best);
      if (scores) scores.set(row, (start + i) * classes);
    }
  }
  return { predictions, scores, classes, batch, loadMs, runMs };
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(a.model)) throw new UsageError(`${a.model}: no such file`);
  const x = readInputs(a.inputs);
  const n = x.dims[0];
  const labels = a.labels ? readLabels(a.labels, n) : null;
  const ort = require('onnxruntime-node');
  const run0 = await evalModel(ort, a, a.model, x, a.optimized, !!a.scoresOut);
  const predictions = run0.predictions;
  let top1 = null, labelled = 0;
  if (labels) {
    let correct = 0;
    for (let i = 0; i < n; ++i) if (labels[i] >= 0) { ++labelled; if (labels[i] === predictions[i]) ++correct; }
    top1 = labelled ? correct / labelled : null;
  }
  let reference = null;
  if (a.ref) {
    const ref = await evalModel(ort, a, a.ref, x, null, false);
    let same = 0, correct = 0;
    for (let i = 0; i < n; ++i) {
      if (ref.predictions[i] === predictions[i]) ++same;
      if (labels && labels[i] >= 0 && labels[i] === ref.predictions[i]) ++correct;
    }
    reference = { model: a.ref, top1: labels && labelled ? correct / labelled : null, agreement: same / n,
                  seconds: { load: ref.loadMs / 1000, run: ref.runMs / 1000 } };
  }
  const scores = run0.scores, classes = run0.classes, batch = run0.batch;
  const loadMs = run0.loadMs, runMs = run0.runMs;
  if (scores) writeNpy(a.scoresOut, 'float32', [n, classes], scores);
  console.log(JSON.stringify({
    model: a.model, samples: n, batch, threads: a.threads, level: a.level,
    ort_version: ort.env.versions.node || ort.env.versions.common, classes,
    top1, labelled, seconds: { load: loadMs / 1000, run: runMs / 1000 }, reference, predictions,
  }));
}

main().catch((e) => {
  const msg = e && e.message ? e.message.replace(/\s*\n\s*/g, ' ') : String(e);
  process.stderr.write(`ort_eval.js: error: ${msg}\n`);
  if (e instanceof UsageError) process.stderr.write(USAGE + '\n');
  process.exit(e instanceof UsageError ? 2 : 1);
});
