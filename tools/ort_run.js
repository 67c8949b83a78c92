#!/usr/bin/env node
// Runs an ONNX model in ONNX Runtime (npm onnxruntime-node) on a raw float32 input, for the
// cross-check and the latency comparison of tests/python/crosscheck_export.py and
// tools/onnx_latency.py.
//
// Usage: ort_run.js MODEL.onnx INPUT.f32 N,C,H,W OUTPUT.f32 [--runs K] [--threads T]
// Writes the first output as raw float32 to OUTPUT.f32, and every output NAME to OUTPUT.f32.NAME
// (a CornerNet/CenterNet export has one per head), and prints one JSON line:
//   {"shape": [...], "outputs": {NAME: [...]}, "median_ms": ..., "runs": K}
// (median over K timed runs after one warm-up)
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [model, input, dims, output, ...rest] = process.argv.slice(2);
  if (!output) throw new Error('usage: ort_run.js MODEL INPUT.f32 N,C,H,W OUTPUT.f32 [--runs K] [--threads T]');
  const flag = (name, def) => {
    const i = rest.indexOf(name);
    return i >= 0 ? Number(rest[i + 1]) : def;
  };
  const runs = flag('--runs', 1), threads = flag('--threads', 0);
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all'});
  const shape = dims.split(',').map(Number);
  const buf = fs.readFileSync(input);
  const data = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const feeds = {[session.inputNames[0]]: new ort.Tensor('float32', data, shape)};
  let result = await session.run(feeds);  // warm-up
  const times = [];
  for (let r = 0; r < runs; ++r) {
    const t0 = process.hrtime.bigint();
    result = await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  const bytes = (t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const out = result[session.outputNames[0]];
  fs.writeFileSync(output, bytes(out));
  const outputs = {};
  for (const name of session.outputNames) {
    fs.writeFileSync(`${output}.${name}`, bytes(result[name]));
    outputs[name] = result[name].dims;
  }
  console.log(JSON.stringify({shape: out.dims, outputs, median_ms: times[Math.floor(times.length / 2)], runs}));
}

main().catch((e) => {
  console.error(`ort_run.js: ${e.message}`);
  process.exit(1);
});
