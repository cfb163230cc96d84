// CPU time and wall time per image of several ONNX models under ONNX Runtime (onnxruntime-node
// from tools/ort), measured in ONE process with the runs interleaved (model A, model B, A, B,
// ...), so that other jobs sharing the cores slow every model down alike. CPU time is the
// user + system time of this process (every ORT thread) over one session.run, from
// process.cpuUsage(); worker threads do not spin (allow_spinning 0), so idle waiting is not
// counted. Reported per model: the minimum and the median over the runs, per image.
// --spin lets the workers spin (ORT's default): then CPU time counts the spinning and only the
// wall columns compare deployments.
//
// Usage: node bench/ort_cpu_time.js --threads N --batch B --runs R [--spin] [--level L]
//                                   [--config KEY=VALUE ...] MODEL.onnx [MODEL.onnx ...]
// (session options: bench/ort_session.js)
// Prints one JSON line per model: {model, batch, threads, runs, cpu_min_ms, cpu_median_ms,
// wall_min_ms, wall_median_ms} (all per image).
'use strict';
const { parseArgs, createSession, randomFeeds, median } = require('./ort_session');

async function main() {
  const parsed = parseArgs(process.argv.slice(2), { runs: 20 });
  if (!parsed) {
    console.error('usage: node bench/ort_cpu_time.js --threads N --batch B --runs R [--spin] [--level L] [--config K=V] MODEL.onnx ...');
    process.exit(2);
  }
  const { opt, models } = parsed;
  const sessions = [];
  for (const m of models) {
    const s = await createSession(m, opt);
    const feeds = randomFeeds(s, opt.batch);
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
      model: x.model, batch: opt.batch, threads: opt.threads, runs: opt.runs, spin: opt.spin, level: opt.level, config: opt.config,
      cpu_min_ms: Math.min(...x.cpu), cpu_median_ms: median(x.cpu),
      wall_min_ms: Math.min(...x.wall), wall_median_ms: median(x.wall),
    }));
  }
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
