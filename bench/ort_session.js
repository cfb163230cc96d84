// The ONNX Runtime session setup and inputs shared by bench/ort_cpu_time.js and
// bench/ort_profile.js (onnxruntime-node from tools/ort, CPU execution provider).
//
// Command-line options both scripts take (parseArgs):
//   --threads N     intra-op threads (default 2); inter-op 1, sequential execution
//   --batch B       batch size (default 1)
//   --runs R        timed runs
//   --level L       graph optimization level: disabled | basic | extended | all (default all)
//   --spin          let the worker threads spin while idle (ORT's default); off by default, so
//                   that CPU time does not count the spinning
//   --config K=V    a session configuration entry (ORT's session options config keys, e.g.
//                   session.dynamic_block_base=4); repeatable; applies to every model
// Everything else that starts with -- is looked up in `extra` (name -> 'flag' | 'value');
// the remaining arguments are the models. Returns { opt, models }, or null on bad usage.
'use strict';
const path = require('path');
const ort = require(path.join(__dirname, '..', 'tools', 'ort', 'node_modules', 'onnxruntime-node'));

function parseArgs(argv, defaults, extra = {}) {
  const opt = { threads: 2, batch: 1, runs: 20, level: 'all', spin: false, config: {}, ...defaults };
  const models = [];
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    if (a === '--threads') opt.threads = Number(argv[++i]);
    else if (a === '--batch') opt.batch = Number(argv[++i]);
    else if (a === '--runs') opt.runs = Number(argv[++i]);
    else if (a === '--level') opt.level = argv[++i];
    else if (a === '--spin') opt.spin = true;
    else if (a === '--config') {
      const kv = String(argv[++i]);
      const eq = kv.indexOf('=');
      if (eq <= 0) { console.error(`--config ${kv}: expected KEY=VALUE`); return null; }
      opt.config[kv.slice(0, eq)] = kv.slice(eq + 1);
    } else if (a.startsWith('--') && extra[a.slice(2)] === 'flag') opt[a.slice(2)] = true;
    else if (a.startsWith('--') && extra[a.slice(2)] === 'value') opt[a.slice(2)] = argv[++i];
    else if (a.startsWith('--')) { console.error(`unknown option ${a}`); return null; }
    else models.push(a);
  }
  const ok = models.length > 0 && opt.threads >= 1 && opt.batch >= 1 && opt.runs >= 1 &&
    ['disabled', 'basic', 'extended', 'all'].includes(opt.level);
  return ok ? { opt, models } : null;
}

// A session with the benchmarks' options; `more` adds session options (profiling, ...).
async function createSession(model, opt, more = {}) {
  const config = { 'session.intra_op.allow_spinning': opt.spin ? '1' : '0', ...opt.config };
  const extra = {};
  for (const [k, v] of Object.entries(config)) {  // 'a.b.c' -> { a: { b: { c } } }
    const keys = k.split('.');
    let o = extra;
    for (const key of keys.slice(0, -1)) o = o[key] = o[key] || {};
    o[keys[keys.length - 1]] = v;
  }
  return ort.InferenceSession.create(model, {
    executionProviders: ['cpu'], graphOptimizationLevel: opt.level, intraOpNumThreads: opt.threads,
    interOpNumThreads: 1, executionMode: 'sequential', logSeverityLevel: 3, extra, ...more,
  });
}

// Feeds for the session's first input (float32): the batch dimension and symbolic dimensions
// set to `batch`, values uniform in [-1, 1) from a fixed LCG (the same for every model).
function randomFeeds(session, batch) {
  const name = session.inputNames[0];
  const meta = session.inputMetadata ? session.inputMetadata[0] : null;
  const dims = meta && meta.shape ? meta.shape.map((d) => (typeof d === 'number' ? d : batch)) : [batch, 3, 224, 224];
  dims[0] = batch;
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let seed = 12345;
  for (let k = 0; k < n; ++k) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    data[k] = (seed / 4294967296) * 2 - 1;
  }
  return { [name]: new ort.Tensor('float32', data, dims) };
}

function median(xs) {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

module.exports = { ort, parseArgs, createSession, randomFeeds, median };
