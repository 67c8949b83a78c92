#include "hg/serve/page.h"

namespace hg::serve {

const std::string& index_page() {
  // Test hooks: window.hg holds the model, the last answer, the points drawn (image pixels, one
  // list per person) and counters of uploads and webcam frames, for the browser test to read.
  static const std::string page = R"HG(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hourglass · pose estimation</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #111; color: #eee; }
  header { padding: 10px 16px; background: #1d1d1d; display: flex; gap: 16px; align-items: baseline; }
  header h1 { font-size: 18px; margin: 0; }
  #model { color: #aaa; }
  .controls { display: flex; flex-wrap: wrap; gap: 12px; padding: 10px 16px; align-items: center; }
  .drop { border: 2px dashed #555; padding: 8px 12px; border-radius: 6px; cursor: pointer; }
  .drop.over { border-color: #4c8; background: #1b2a1f; }
  button { background: #2a5; color: #fff; border: 0; padding: 8px 14px; border-radius: 6px; cursor: pointer; }
  button.on { background: #c33; }
  #status { color: #9cf; min-width: 280px; }
  .main { display: flex; gap: 16px; padding: 0 16px 16px; align-items: flex-start; }
  canvas { max-width: min(100%, 960px); max-height: 80vh; background: #000; }
  table { border-collapse: collapse; min-width: 220px; }
  td { padding: 1px 6px; }
  td.bar span { display: inline-block; height: 10px; background: #4c8; }
</style>
</head>
<body>
<header><h1>hourglass</h1><span id="model">loading the model…</span></header>
<div class="controls">
  <label class="drop" id="drop">Drop an image here or
    <input type="file" id="file" accept="image/jpeg,image/png,image/webp"></label>
  <button id="webcam">Start webcam</button>
  <label>Stack <select id="stack"></select></label>
  <label><input type="checkbox" id="flip" checked> flip test</label>
  <label><input type="checkbox" id="whole"> whole image (no detector)</label>
  <label>Token <input id="token" type="password" size="10"></label>
  <span id="status"></span>
</div>
<div class="main">
  <canvas id="canvas" width="640" height="480"></canvas>
  <table id="scores"></table>
</div>
<video id="video" playsinline muted hidden></video>
<script>
"use strict";
const hg = window.hg = { model: null, last: null, drawn: [], uploads: 0, frames: 0,
                         drawnFrames: 0, errors: 0, fps: 0, latency: 0 };
const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let source = null;  // what the canvas shows under the skeletons
let webcam = null;  // the stream while the webcam runs

function status(text) { $("status").textContent = text; }

function headers(type) {
  const h = {};
  if (type) h["Content-Type"] = type;
  const token = $("token").value || localStorage.getItem("hg-token") || "";
  if (token) h["Authorization"] = "Bearer " + token;
  return h;
}

async function loadModel() {
  const r = await fetch("/v1/model", { headers: headers() });
  if (!r.ok) { $("model").textContent = "GET /v1/model: HTTP " + r.status + " (token?)"; return; }
  hg.model = await r.json();
  const m = hg.model;
  $("model").textContent = `${m.model}: ${m.description}, ${m.input_size}² input, ` +
                           `${m.backend} ${m.precision}`;
  const sel = $("stack");
  sel.innerHTML = "";
  for (let s = 0; s < m.stacks; ++s) {
    const o = document.createElement("option");
    o.value = s;
    o.textContent = (s + 1) + (s === m.stacks - 1 ? " (final)" : "");
    sel.appendChild(o);
  }
  sel.value = m.stacks - 1;
  $("flip").checked = m.flip_test;
}

async function pose(body, type) {
  const query = "?flip=" + ($("flip").checked ? 1 : 0) + ($("whole").checked ? "&whole_image=1" : "");
  const t0 = performance.now();
  const r = await fetch("/v1/pose" + query, { method: "POST", headers: headers(type), body });
  const answer = await r.json();
  if (!r.ok) throw new Error(answer.error || "HTTP " + r.status);
  answer.latency = performance.now() - t0;
  return answer;
}

function scoreColor(score) {
  const v = Math.max(0, Math.min(1, score));
  return `hsl(${Math.round(120 * v)}, 90%, 50%)`;
}

function draw() {
  const c = $("canvas"), ctx = c.getContext("2d");
  if (!source) return;
  const w = source.videoWidth || source.width, h = source.videoHeight || source.height;
  if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
  ctx.drawImage(source, 0, 0, w, h);
  hg.drawn = [];
  if (!hg.last || !hg.model) return;
  const stack = Number($("stack").value);
  const line = Math.max(2, Math.min(w, h) / 150);
  for (const p of hg.last.results[0].people) {
    const pts = p.stacks[Math.min(stack, p.stacks.length - 1)];
    if (p.box) {
      ctx.strokeStyle = "rgba(255, 220, 0, 0.8)";
      ctx.lineWidth = 1;
      ctx.strokeRect(p.box[0], p.box[1], p.box[2], p.box[3]);
    }
    ctx.lineWidth = line;
    for (const [a, b] of hg.model.skeleton) {
      ctx.strokeStyle = scoreColor(Math.min(pts[a][2], pts[b][2]));
      ctx.beginPath();
      ctx.moveTo(pts[a][0], pts[a][1]);
      ctx.lineTo(pts[b][0], pts[b][1]);
      ctx.stroke();
    }
    const drawn = [];
    for (const [x, y, score] of pts) {
      ctx.fillStyle = scoreColor(score);
      ctx.beginPath();
      ctx.arc(x, y, line * 1.6, 0, 2 * Math.PI);
      ctx.fill();
      drawn.push([x, y]);
    }
    hg.drawn.push(drawn);
  }
  scores(stack);
}

function scores(stack) {
  const t = $("scores");
  t.innerHTML = "";
  const people = hg.last.results[0].people;
  if (!people.length) return;
  const pts = people[0].stacks[Math.min(stack, people[0].stacks.length - 1)];
  const head = t.insertRow();
  head.innerHTML = `<th colspan="3">person 1 of ${people.length}, stack ${stack + 1}</th>`;
  hg.model.joints.forEach((name, j) => {
    const row = t.insertRow();
    const s = pts[j][2];
    row.insertCell().textContent = name;
    row.insertCell().textContent = s.toFixed(2);
    const bar = row.insertCell();
    bar.className = "bar";
    bar.innerHTML = `<span style="width:${Math.round(100 * Math.max(0, Math.min(1, s)))}px;` +
                    `background:${scoreColor(s)}"></span>`;
  });
}

async function upload(file) {
  if (webcam) stopWebcam();
  status("estimating…");
  try {
    const answer = await pose(file, file.type || "application/octet-stream");
    source = await createImageBitmap(file);
    hg.last = answer;
    draw();
    hg.uploads++;
    status(`${answer.results[0].people.length} people · ${answer.latency.toFixed(0)} ms ` +
           `(server ${answer.time_ms.total.toFixed(0)} ms)`);
  } catch (e) {
    hg.errors++;
    status("error: " + e.message);
  }
}

function stopWebcam() {
  webcam.getTracks().forEach((t) => t.stop());
  webcam = null;
  $("webcam").textContent = "Start webcam";
  $("webcam").classList.remove("on");
}

async function startWebcam() {
  try {
    webcam = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
  } catch (e) {
    status("webcam: " + e.message);
    return;
  }
  $("webcam").textContent = "Stop webcam";
  $("webcam").classList.add("on");
  const video = $("video");
  video.srcObject = webcam;
  await video.play();
  const grab = document.createElement("canvas");
  const answered = [];
  // One frame in flight at a time: the frame rate is what the server sustains for this client.
  while (webcam) {
    if (!video.videoWidth) { await sleep(30); continue; }
    grab.width = video.videoWidth;
    grab.height = video.videoHeight;
    grab.getContext("2d").drawImage(video, 0, 0);
    const blob = await new Promise((r) => grab.toBlob(r, "image/jpeg", 0.85));
    hg.frames++;
    try {
      const answer = await pose(blob, "image/jpeg");
      if (!webcam) break;
      hg.last = answer;
      source = grab;
      draw();
      hg.drawnFrames++;
      const now = performance.now();
      answered.push(now);
      while (answered.length > 1 && now - answered[0] > 3000) answered.shift();
      hg.fps = answered.length > 1 ? (answered.length - 1) * 1000 / (now - answered[0]) : 0;
      hg.latency = answer.latency;
      status(`webcam: ${hg.fps.toFixed(1)} fps · latency ${answer.latency.toFixed(0)} ms ` +
             `(server ${answer.time_ms.total.toFixed(0)} ms) · ` +
             `${answer.results[0].people.length} people`);
    } catch (e) {
      hg.errors++;
      status("webcam: " + e.message);
      await sleep(500);
    }
  }
}

$("file").addEventListener("change", (e) => { if (e.target.files[0]) upload(e.target.files[0]); });
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  if (e.dataTransfer.files[0]) upload(e.dataTransfer.files[0]);
});
$("webcam").addEventListener("click", () => (webcam ? stopWebcam() : startWebcam()));
$("stack").addEventListener("change", draw);
$("token").addEventListener("change", () => {
  localStorage.setItem("hg-token", $("token").value);
  loadModel();
});
loadModel();
</script>
</body>
</html>
)HG";
  return page;
}

}  // namespace hg::serve
