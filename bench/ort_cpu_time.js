// CPU time and wall time per image of several ONNX models under ONNX Runtime (onnxruntime-node
// from tools/ort), measured in ONE process with the runs interleaved (model A, model B, A, B,
// ...), so that other jobs sharing the cores slow every model down alike. CPU time is the
// user + system time of this process (every ORT thread) over one session.run, from
// process.cpuUsage(); worker threads do not spin (allow_spinning 0), so idle waiting is not
// counted. Reported per model: the minimum and the median over the runs, per image.
// --spin lets the workers spin (ORT's default): then CPU time counts the spinning and only the
// wall columns compare deployments.
//
// Usage: node bench/ort_cpu_time.js --threads N --batch B --runs R [--spin] MODEL.onnx [MODEL.onnx ...]
// Prints one JSON line per model: {model, batch, threads, runs, cpu_min_ms, cpu_median_ms,
// wall_min_ms, wall_median_ms} (all per image).
'use strict';
const path = require('path');
const ort = require(path.join(__dirname, '..', 'tools', 'ort', 'node_modules', 'onnxruntime-node'));

function median(xs) {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function main() {
  const args = process.argv.slice(2);
  const opt = { threads: 2, batch: 1, runs: 20, spin: false };
  const models = [];
  for (let i = 0; i < args.length; ++i) {
    if (args[i] === '--threads') opt.threads = Number(args[++i]);
    else if (args[i] === '--batch') opt.batch = Number(args[++i]);
    else if (args[i] === '--runs') opt.runs = Number(args[++i]);
    else if (args[i] === '--spin') opt.spin = true;
    else models.push(args[i]);
  }
  if (!models.length || !(opt.threads >= 1 && opt.batch >= 1 && opt.runs >= 1)) {
    console.error('usage: node bench/ort_cpu_time.js --threads N --batch B --runs R MODEL.onnx ...');
    process.exit(2);
  }
  const sessions = [];
  for (const m of models) {
    const s = await ort.InferenceSession.create(m, {
      executionProviders: ['cpu'], graphOptimizationLevel: 'all', intraOpNumThreads: opt.threads,
      interOpNumThreads: 1, executionMode: 'sequential', logSeverityLevel: 3,
      extra: { session: { intra_op: { allow_spinning: opt.spin ? '1' : '0' } } },
    });
    // One float32 input; the batch dimension set to --batch, symbolic dimensions too.
    const name = s.inputNames[0];
    const meta = s.inputMetadata ? s.inputMetadata[0] : null;
    let dims = meta && meta.shape ? meta.shape.map((d) => (typeof d === 'number' ? d : opt.batch)) : [opt.batch, 3, 224, 224];
    dims[0] = opt.batch;
    const n = dims.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    let seed = 12345;
    for (let k = 0; k < n; ++k) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      data[k] = (seed / 4294967296) * 2 - 1;
    }
    const feeds = { [name]: new ort.Tensor('float32', data, dims) };
    for (let w = 0; w < 2; ++w) await s.run(feeds);  // warm-up
    sessions.push({ model: m, s, feeds, cpu: [], wall: [] });
  }
  for (let r = 0; r < opt.runs; ++r) {
    for (const x of sessions) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await x.s.run(x.feeds);
      const wall = performance.now() - t0;
      const c = process.cpuUsage(c0);
      x.cpu.push((c.user + c.system) / 1000 / opt.batch);
      x.wall.push(wall / opt.batch);
    }
  }
  for (const x of sessions) {
    console.log(JSON.stringify({
      model: x.model, batch: opt.batch, threads: opt.threads, runs: opt.runs, spin: opt.spin,
      cpu_min_ms: Math.min(...x.cpu), cpu_median_ms: median(x.cpu),
      wall_min_ms: Math.min(...x.wall), wall_median_ms: median(x.wall),
    }));
  }
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
