"""The live view's one page: HTML, CSS and JavaScript in one self-contained document (nothing external).

The board only sends frames (MJPEG) and decisions (server-sent events); the page
draws everything else from the event data: the label overlay, top-k bars, the
60-second timeline with reset markers and drop gaps, stage latency percentiles,
rates and energy. Its script is allowed by hash in the Content-Security-Policy,
so nothing else can run or load.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

_CSS = """
:root{--bg:#0f1216;--panel:#181c22;--fg:#e6e9ee;--dim:#8a93a0;--accent:#4fb3ff;--warn:#ffb347;--bad:#ff6b6b}
*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
header{display:flex;gap:16px;align-items:baseline;padding:10px 16px;border-bottom:1px solid #252a33}
header h1{font-size:16px;margin:0}header span{color:var(--dim)}
main{display:grid;grid-template-columns:minmax(300px,520px) minmax(300px,1fr);gap:16px;padding:16px}
.panel{background:var(--panel);border-radius:8px;padding:12px}
#view{position:relative;line-height:0}#video{width:100%;border-radius:6px;background:#000;min-height:120px}
#overlay{position:absolute;left:0;top:0;width:100%;height:100%;pointer-events:none}
.big{font-size:28px;font-weight:600}.dim{color:var(--dim)}.uncertain{color:var(--warn)}
.row{display:flex;justify-content:space-between;gap:8px}
.bar{display:grid;grid-template-columns:120px 1fr 48px;gap:8px;align-items:center;margin:3px 0}
.bar div.track{background:#252a33;height:10px;border-radius:5px;overflow:hidden}.bar div.fill{height:100%}
table{border-collapse:collapse;width:100%}td,th{padding:2px 6px;text-align:right;font-variant-numeric:tabular-nums}td:first-child,th:first-child{text-align:left}
th{color:var(--dim);font-weight:500}#timeline{width:100%;height:46px;display:block}
#legend span{display:inline-block;margin:2px 8px 0 0;font-size:12px}#legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
.compare{display:grid;grid-template-columns:1fr 1fr;gap:8px}.compare div{background:#11151a;border-radius:6px;padding:8px}
#conn{font-size:12px}
"""

_BODY = """
<header><h1>hybrid-edge live</h1><span id="bundle"></span><span id="source"></span><span id="conn" class="dim">connecting</span></header>
<main>
<section>
  <div id="view" class="panel"><img id="video" alt="live video"><canvas id="overlay"></canvas></div>
  <div class="panel" style="margin-top:12px">
    <div class="row"><span class="dim">decisions, last 60 s <span id="truthnote"></span></span><span class="dim">| reset · gap: drops</span></div>
    <canvas id="timeline"></canvas><div id="legend"></div>
  </div>
</section>
<section>
  <div class="panel">
    <div class="row"><span id="state" class="dim">waiting for the first decision</span><span id="truth" class="dim"></span></div>
    <div class="big" id="label">&nbsp;</div>
    <div><span id="score"></span> <span class="dim" id="seqinfo"></span></div>
    <div class="dim" id="topknote" style="margin-top:8px;font-size:12px"></div>
    <div id="topk"></div>
  </div>
  <div class="panel" id="comparepanel" style="margin-top:12px;display:none">
    <div class="compare"><div><div class="dim" id="name1"></div><div class="big" id="labelA"></div></div>
    <div><div class="dim" id="name2"></div><div class="big" id="label2"></div></div></div>
    <table style="margin-top:8px"><tr><td>agreement</td><td id="agree"></td></tr>
    <tr><td>invoke latency ratio (2nd / 1st)</td><td id="latratio"></td></tr>
    <tr><td>energy ratio (2nd / 1st)</td><td id="enratio"></td></tr></table>
  </div>
  <div class="panel" style="margin-top:12px">
    <table id="stages"><tr><th>stage (ms)</th><th>p50</th><th>p95</th></tr></table>
  </div>
  <div class="panel" style="margin-top:12px"><table>
    <tr><td>camera / inference / stream fps</td><td id="fps"></td></tr>
    <tr><td>dropped frames</td><td id="dropped"></td></tr>
    <tr><td>state resets</td><td id="resets"></td></tr>
    <tr><td>viewers</td><td id="viewers"></td></tr>
    <tr><td>energy per frame</td><td id="energy"></td></tr>
  </table></div>
</section>
</main>
"""

_JS = r"""
"use strict";
const cfg = JSON.parse(document.getElementById("cfg").textContent);
const $ = id => document.getElementById(id);
const WINDOW_S = 60, STAGES = ["capture","queue","preprocess","invoke","postprocess","encode","end_to_end"];
const PALETTE = ["#4e79a7","#f28e2b","#e15759","#76b7b2","#59a14f","#edc948","#b07aa1","#ff9da7","#9c755f","#bab0ac"];
const colors = {};
cfg.labels.forEach((l, i) => { colors[l] = i < PALETTE.length ? PALETTE[i] : `hsl(${(i*137.5)%360},65%,55%)`; });
function color(label){ return colors[label] || "#888"; }
const events = [];   // [{t, seq, label, reset, gap}]
let last = null, resets = 0;
$("bundle").textContent = `${cfg.bundle} · ${cfg.precision} · ${cfg.mode}` + (cfg.compare ? ` vs ${cfg.compare.bundle} · ${cfg.compare.precision}` : "");
$("source").textContent = cfg.source;
$("topknote").textContent = cfg.smooth ? `label and score: smoothed (${cfg.smooth}); bars: this frame's output` : "this frame's output";
if(cfg.source.startsWith("synthetic-actions")) $("truthnote").textContent = "· top strip: source";
if(cfg.compare){ $("comparepanel").style.display=""; $("name1").textContent=`${cfg.bundle} (${cfg.precision})`;
  $("name2").textContent=`${cfg.compare.bundle} (${cfg.compare.precision})`; }
const STAGE_NAMES = {capture:"capture (wait + read)", end_to_end:"end to end"};
for(const s of STAGES){ const tr=document.createElement("tr"); tr.innerHTML=`<td>${STAGE_NAMES[s]||s}</td><td id="p50_${s}">–</td><td id="p95_${s}">–</td>`; $("stages").appendChild(tr); }
const video = $("video");
video.src = `stream.mjpg?fps=${cfg.fps}&w=${cfg.width}`;
video.addEventListener("error", () => setTimeout(() => { video.src = `stream.mjpg?fps=${cfg.fps}&w=${cfg.width}&r=${Date.now()}`; }, 1000));

function pct(values, q){ if(!values.length) return null; const v=[...values].sort((a,b)=>a-b); return v[Math.min(v.length-1, Math.floor(q*(v.length-1)+0.5))]; }
const recent = [];   // stage_ms of the last 300 decisions
function onEvent(d){
  const prev = last; last = d;
  const gap = prev !== null && d.seq - prev.seq > 1;
  if(d.reset) resets++;
  events.push({t:d.t, seq:d.seq, label:d.label, truth:d.truth, reset:d.reset, gap});
  while(events.length && d.t - events[0].t > WINDOW_S) events.shift();
  recent.push(d.stage_ms); if(recent.length>300) recent.shift();
  if(!dirty){ dirty = true; requestAnimationFrame(render); }
}
let dirty = false;
function render(){
  if(!dirty || !last) return; dirty = false;
  const d = last, unsure = d.score < cfg.uncertain;
  document.body.dataset.seq = d.seq;  // the decision on screen (the glass-to-label benchmark reads it)
  $("label").textContent = d.label; $("label").className = "big" + (unsure ? " uncertain" : "");
  $("state").textContent = unsure ? `uncertain (below ${cfg.uncertain})` : "confident";
  $("state").className = unsure ? "uncertain" : "dim";
  $("score").textContent = `${(100*d.score).toFixed(1)} %`;
  $("seqinfo").textContent = `frame ${d.seq}`;
  $("truth").textContent = d.truth ? `source plays: ${d.truth}` : "";
  const top = d.probs.map((p,i)=>[p,cfg.labels[i]||String(i)]).sort((a,b)=>b[0]-a[0]).slice(0, cfg.topk);
  $("topk").innerHTML = "";
  for(const [p,l] of top){ const row=document.createElement("div"); row.className="bar";
    row.innerHTML=`<span></span><div class="track"><div class="fill"></div></div><span></span>`;
    row.children[0].textContent=l; row.children[1].firstChild.style.width=`${Math.max(0,Math.min(100,100*p))}%`;
    row.children[1].firstChild.style.background=color(l); row.children[2].textContent=`${(100*p).toFixed(0)}%`; $("topk").appendChild(row); }
  for(const s of STAGES){ const v=recent.map(r=>r[s]).filter(x=>x!==null && x!==undefined);
    const a=pct(v,0.5), b=pct(v,0.95); $("p50_"+s).textContent=a===null?"–":a.toFixed(2); $("p95_"+s).textContent=b===null?"–":b.toFixed(2); }
  $("fps").textContent = `${d.fps.camera.toFixed(1)} / ${d.fps.inference.toFixed(1)} / ${d.fps.stream.toFixed(1)}`;
  $("dropped").textContent = d.dropped;
  $("resets").textContent = d.resets;
  $("viewers").textContent = d.viewers;
  $("energy").textContent = d.energy_mj === null ? `– (${d.meter})` : `${d.energy_mj.toFixed(3)} mJ (${d.meter}${d.estimated ? ", an estimate" : ""})`;
  if(d.compare){ $("labelA").textContent=d.label; $("label2").textContent=d.compare.label;
    $("agree").textContent=`${(100*d.compare.agreement).toFixed(1)} % of ${d.compare.frames} frames`;
    $("latratio").textContent=d.compare.latency_ratio===null?"–":`${d.compare.latency_ratio.toFixed(2)}×`;
    $("enratio").textContent=d.compare.energy_ratio===null?"–":`${d.compare.energy_ratio.toFixed(2)}× (${d.compare.energy_basis})`; }
  drawTimeline(); drawOverlay();
}
function drawTimeline(){
  const c=$("timeline"), w=c.clientWidth, h=c.clientHeight; c.width=w; c.height=h;
  const g=c.getContext("2d"); g.fillStyle="#11151a"; g.fillRect(0,0,w,h);
  if(!events.length) return;
  const now=events[events.length-1].t, x=t=>w*(1-(now-t)/WINDOW_S);
  const seen = new Set();
  for(let i=0;i<events.length;i++){ const e=events[i], nx=i+1<events.length?x(events[i+1].t):w;
    if(e.gap){ continue; }
    const top = e.truth ? 14 : 8, wd = Math.max(1,nx-x(e.t));
    if(e.truth){ g.fillStyle=color(e.truth); g.fillRect(x(e.t),2,wd,8); }
    seen.add(e.label); g.fillStyle=color(e.label); g.fillRect(x(e.t),top,wd,h-top-6); }
  g.fillStyle="#fff"; for(const e of events){ if(e.reset){ g.fillRect(x(e.t)-1,0,2,h); } }
  const legend=$("legend"); legend.innerHTML="";
  for(const l of seen){ const s=document.createElement("span"); s.className="tl-label"; s.innerHTML="<i></i>"; s.firstChild.style.background=color(l); s.append(l); legend.appendChild(s); }
}
function drawOverlay(){
  const c=$("overlay"), w=c.clientWidth, h=c.clientHeight; if(!w||!h) return; c.width=w; c.height=h;
  const g=c.getContext("2d"), d=last, text=`${d.label} ${(100*d.score).toFixed(0)}%`;
  g.font="600 16px system-ui,sans-serif"; const tw=g.measureText(text).width;
  g.fillStyle="rgba(0,0,0,0.55)"; g.fillRect(8,h-34,tw+16,26);
  g.fillStyle=d.score<cfg.uncertain?"#ffb347":color(d.label); g.fillText(text,16,h-15);
}
function connect(){
  const es = new EventSource(`events?fps=${cfg.fps}`);  // decisions in batches at the video's rate
  es.onopen = () => { $("conn").textContent="live"; };
  es.onmessage = m => onEvent(JSON.parse(m.data));
  es.onerror = () => { $("conn").textContent="reconnecting"; };
}
connect();
"""


def script_hash(script: str) -> str:
    """The CSP source expression that allows exactly this inline script."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


def render_page(config: dict[str, Any]) -> tuple[bytes, str]:
    """The page with ``config`` embedded, and its Content-Security-Policy."""
    data = json.dumps(config).replace("<", "\\u003c")
    html = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'><title>hybrid-edge live</title>"
        "<link rel=icon href='data:,'>"
        f"<style>{_CSS}</style></head><body>{_BODY}"
        f"<script type='application/json' id='cfg'>{data}</script><script>{_JS}</script></body></html>"
    )
    csp = (f"default-src 'none'; img-src 'self' data:; connect-src 'self'; style-src 'unsafe-inline'; "
           f"script-src {script_hash(_JS)}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return html.encode(), csp
