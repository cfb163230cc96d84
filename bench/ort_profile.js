// Where ONNX Runtime's time goes, per op type, for one or more ONNX models (onnxruntime-node
// from tools/ort, CPU execution provider, graph optimization level "all" unless --level).
// Uses ORT's own profiler (session option enableProfiling): every kernel's time ("dur", in us)
// of every timed session.run, summed per class and divided by the number of runs and the batch.
// Convolutions are split by what their weight looks like (QLinearConv and Conv alike):
//   stem       a conv whose input has <= 4 channels
//   depthwise  group == channels (weight [C, 1, kh, kw])
//   pointwise  1x1 kernel, dense
//   dense kxk  any other dense conv
// Everything else is reported by op type (Transpose, QuantizeLinear, QLinearGlobalAveragePool,
// QGemm, ReorderInput/ReorderOutput of the NCHWc float path, ...); the conv classes come from
// the optimized graph ORT saves (optimizedModelFilePath), read by a small protobuf reader.
// ORT renames fused nodes, so the class is looked up by the optimized graph's node name.
// On a shared machine single runs are disturbed: every node's minimum over the timed runs is
// the least disturbed figure, and each class sums its nodes' minima ("min"; "median" beside
// it). "between kernels" is the median run time minus the median kernel sum: the executor's
// own cost per run (node dispatch, allocation, thread-pool hand-offs).
//
// Usage: node bench/ort_profile.js [--threads N] [--batch B] [--runs R] [--level L] [--json]
//                                  [--spin] [--config KEY=VALUE ...] [--nodes] MODEL.onnx ...
// (session options: bench/ort_session.js)
// --nodes adds every node's minimum (ms per image), in execution order.
// Worker threads do not spin unless --spin (as in bench/ort_cpu_time.js). The profiler adds a
// little time per kernel: use bench/ort_cpu_time.js for totals, this for the breakdown. Prints
// a markdown table per model (ms per image), or one JSON line per model with --json.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { parseArgs, createSession, randomFeeds, median } = require('./ort_session');

// A minimal reader of the ONNX protobuf, enough for the nodes (name, op_type, inputs, the int
// attributes) and the initializers' dims of the optimized model ORT saves.
function readProto(buf, start, end, onField) {
  let p = start;
  const varint = () => {
    let v = 0, mul = 1, b;
    do { b = buf[p++]; v += (b & 0x7f) * mul; mul *= 128; } while (b & 0x80);
    return v;
  };
  while (p < end) {
    const key = varint();
    const field = Math.floor(key / 8), wire = key & 7;
    if (wire === 0) onField(field, 'varint', varint());
    else if (wire === 2) { const n = varint(); onField(field, 'len', [p, p + n]); p += n; }
    else if (wire === 1) p += 8;
    else if (wire === 5) p += 4;
    else throw new Error(`protobuf: wire type ${wire}`);
  }
}

function readGraph(file) {
  const buf = fs.readFileSync(file);
  const str = ([a, b]) => buf.toString('utf8', a, b);
  const packed = ([a, b], out) => {
    let p = a;
    while (p < b) { let v = 0, mul = 1, x; do { x = buf[p++]; v += (x & 0x7f) * mul; mul *= 128; } while (x & 0x80); out.push(v); }
  };
  const nodes = [], dims = new Map();
  readProto(buf, 0, buf.length, (f, t, v) => {
    if (f !== 7 || t !== 'len') return;
    readProto(buf, v[0], v[1], (gf, gt, gv) => {
      if (gf === 1 && gt === 'len') {
        const n = { inputs: [], attrs: {} };
        readProto(buf, gv[0], gv[1], (nf, nt, nv) => {
          if (nf === 1) n.inputs.push(str(nv));
          else if (nf === 3) n.name = str(nv);
          else if (nf === 4) n.op = str(nv);
          else if (nf === 5) {
            let an = '', ai = null;
            readProto(buf, nv[0], nv[1], (af, at, av) => {
              if (af === 1) an = str(av);
              else if (af === 3 && at === 'varint') ai = av;
            });
            n.attrs[an] = ai;
          }
        });
        nodes.push(n);
      } else if (gf === 5 && gt === 'len') {
        let name = '';
        const d = [];
        readProto(buf, gv[0], gv[1], (tf, tt, tv) => {
          if (tf === 8) name = str(tv);
          else if (tf === 1 && tt === 'varint') d.push(tv);
          else if (tf === 1 && tt === 'len') packed(tv, d);
        });
        dims.set(name, d);
      }
    });
  });
  return { nodes, dims };
}

// Class of a conv node of the optimized graph from its weight's dims [M, C/group, kh, kw] and
// group; null when unknown.
function convClass(node, dims) {
  const w = dims.get(node.inputs[node.op === 'QLinearConv' ? 3 : 1]);
  if (!w || w.length !== 4) return null;
  const group = node.attrs.group || 1;
  if (group === 1 && w[1] <= 4) return `stem ${w[2]}x${w[3]}`;
  if (group > 1 && w[1] === 1) return `depthwise ${w[2]}x${w[3]}`;
  if (w[2] === 1 && w[3] === 1) return 'pointwise 1x1';
  return `dense ${w[2]}x${w[3]}`;
}

async function profileModel(model, opt) {
  const prefix = path.join(os.tmpdir(), `ort_profile_${process.pid}_${path.basename(model, '.onnx')}`);
  const s = await createSession(model, opt, {
    enableProfiling: true, profileFilePrefix: prefix, optimizedModelFilePath: `${prefix}.opt.onnx`,
  });
  const g = readGraph(`${prefix}.opt.onnx`);
  fs.unlinkSync(`${prefix}.opt.onnx`);
  const classOf = new Map();
  for (const nd of g.nodes) {
    if (nd.op === 'QLinearConv' || nd.op === 'Conv' || nd.op === 'FusedConv') classOf.set(nd.name, convClass(nd, g.dims));
  }
  const feeds = randomFeeds(s, opt.batch);
  const warm = 3;
  for (let r = 0; r < warm + opt.runs; ++r) await s.run(feeds);
  s.endProfiling();
  await s.release();
  // The profile file: prefix_<date>.json in the working directory or beside the prefix.
  const dir = path.dirname(prefix);
  const base = path.basename(prefix);
  const files = fs.readdirSync(dir).filter((f) => f.startsWith(`${base}_`) && f.endsWith('.json'));
  if (files.length !== 1) throw new Error(`${model}: expected one profile file ${prefix}*.json, found ${files.length}`);
  const file = path.join(dir, files[0]);
  const events = JSON.parse(fs.readFileSync(file, 'utf8'));
  fs.unlinkSync(file);
  // Runs are delimited by model_run events; skip the warm-up ones.
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').sort((a, b) => a.ts - b.ts);
  if (runs.length < warm + opt.runs) throw new Error(`${model}: profile has ${runs.length} runs`);
  const timed = runs.slice(warm);
  const t0 = timed[0].ts;
  // Per node: its kernel time in every timed run. On a shared machine the minimum over the runs
  // is the least disturbed figure, so classes sum their nodes' minima (and, for comparison,
  // their medians).
  const durs = new Map();  // node -> { cls, d: [] }
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || e.ts < t0) continue;
    const node = e.name.slice(0, -'_kernel_time'.length);
    if (!durs.has(node)) {
      const op = e.args.op_name;
      durs.set(node, { cls: classOf.has(node) ? `${op} ${classOf.get(node) || '?'}` : op, d: [] });
    }
    durs.get(node).d.push(e.dur);
  }
  const per = new Map();
  let kernelsMin = 0, kernelsMed = 0;
  for (const { cls, d } of durs.values()) {
    const r = per.get(cls) || { min: 0, med: 0, nodes: 0 };
    const lo = Math.min(...d), md = median(d);
    r.min += lo; r.med += md; r.nodes += 1;
    kernelsMin += lo; kernelsMed += md;
    per.set(cls, r);
  }
  const nodes = [...durs.entries()].map(([name, { cls, d }]) => ({ node: name, cls, min_ms: Math.min(...d) / 1000 / opt.batch }));
  const totals = timed.map((e) => e.dur);
  const scale = 1 / 1000 / opt.batch;  // us per run -> ms per image
  const rows = [...per.entries()].sort((a, b) => b[1].min - a[1].min).map(([k, v]) => ({
    cls: k, nodes: v.nodes, min_ms: v.min * scale, median_ms: v.med * scale,
  }));
  return { model, batch: opt.batch, threads: opt.threads, runs: opt.runs,
    run_min_ms: Math.min(...totals) * scale, run_median_ms: median(totals) * scale,
    kernels_min_ms: kernelsMin * scale, kernels_median_ms: kernelsMed * scale,
    between_kernels_median_ms: (median(totals) - kernelsMed) * scale, rows, nodes };
}

async function main() {
  const parsed = parseArgs(process.argv.slice(2), { runs: 50 }, { json: 'flag', nodes: 'flag' });
  if (!parsed) {
    console.error('usage: node bench/ort_profile.js [--threads N] [--batch B] [--runs R] [--level L] [--json] [--spin] [--config K=V] [--nodes] MODEL.onnx ...');
    process.exit(2);
  }
  const { opt, models } = parsed;
  for (const m of models) {
    const p = await profileModel(m, opt);
    if (opt.json) { console.log(JSON.stringify(p)); continue; }
    console.log(`\n${path.basename(m)}: batch ${p.batch}, ${p.threads} threads, ${p.runs} runs, ORT profiler, ` +
      `ms per image; run: min ${p.run_min_ms.toFixed(3)}, median ${p.run_median_ms.toFixed(3)}`);
    console.log('| op (class) | nodes | min | share of kernels (min) | median |\n|---|---|---|---|---|');
    for (const r of p.rows) {
      console.log(`| ${r.cls} | ${r.nodes} | ${r.min_ms.toFixed(3)} | ${(100 * r.min_ms / p.kernels_min_ms).toFixed(1)} % | ${r.median_ms.toFixed(3)} |`);
    }
    console.log(`| all kernels | | ${p.kernels_min_ms.toFixed(3)} | 100 % | ${p.kernels_median_ms.toFixed(3)} |`);
    console.log(`| between kernels (run - kernels, medians) | | | | ${p.between_kernels_median_ms.toFixed(3)} |`);
    if (opt.nodes) {
      console.log('\n| node (execution order) | class | min ms/img |\n|---|---|---|');
      for (const r of p.nodes) console.log(`| ${r.node} | ${r.cls} | ${r.min_ms.toFixed(4)} |`);
    }
  }
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
