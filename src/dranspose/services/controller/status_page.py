"""The controller's status page at ``/``: a static page polling ``/api/v1/dashboard`` each second.

The DOM is built with ``createElement``/``textContent`` only (component states come from the
network: nothing from them is parsed as HTML), and links are set only for http(s) URLs.
"""

STATUS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dranspose status</title>
<link rel="icon" href="data:,">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2933;background:#f5f7fa}
header{display:flex;align-items:center;justify-content:space-between;padding:.5em 1.2em;background:#1f3a5f;color:#fff}
header h1{font-size:1.15em;margin:0;font-weight:600} header h1 span{font-weight:400;opacity:.8}
header nav a{color:#fff;margin-left:1.1em;font-size:.9em}
main{display:grid;grid-template-columns:minmax(22em,1fr) minmax(28em,1.4fr);gap:1em;padding:1em 1.2em}
.card{background:#fff;border:1px solid #d9e2ec;border-radius:6px;padding:.8em 1em}
.card h2{font-size:1em;margin:0 0 .6em;color:#334e68}
.wide{grid-column:1/-1}
.bar{display:flex;background:#e4e7eb;height:1.1em;border-radius:4px;overflow:hidden;margin:.5em 0}
.fill{background:#3ebd93;height:100%;transition:width .4s}
.fill.failed{background:#ef4e4e}
.kv{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;font-size:.92em}
.kv .k{color:#627d98}
.mono{font-family:ui-monospace,monospace;font-size:.9em}
table{border-collapse:collapse;width:100%;font-size:.88em}
td,th{border-bottom:1px solid #e4e7eb;padding:.3em .5em;text-align:left;vertical-align:top}
th{color:#486581;font-weight:600}
.err{color:#cf1124} .ok{color:#199473} .warn{color:#cb6e17} .muted{color:#829ab1}
svg text{font-size:11px;fill:#627d98}
.legend{display:flex;flex-wrap:wrap;gap:.3em 1em;font-size:.85em;margin-top:.3em}
.legend i{display:inline-block;width:1.4em;height:.25em;vertical-align:middle;margin-right:.3em}
#banner{display:none;background:#ffe3e3;color:#8a041a;padding:.4em 1.2em}
</style></head><body>
<header><h1>dranspose <span>status</span></h1>
<nav id="links"></nav></header>
<div id="banner">controller unreachable; retrying</div>
<main>
  <section class="card"><h2>Scan</h2><div id="scan"></div></section>
  <section class="card"><h2>Events per second per worker (last 5 minutes)</h2><div id="chart"></div><div id="legend" class="legend"></div></section>
  <section class="card wide"><h2>Components</h2><div id="components"></div></section>
  <section class="card"><h2>Failed and stuck events</h2><div id="events"></div></section>
  <section class="card"><h2>Errors</h2><div id="errors"></div></section>
</main>
<script>
"use strict";
const COLORS=["#2680c2","#e12d39","#3ebd93","#f0b429","#9446ed","#ef8e58","#0e7c86","#da127d","#829ab1","#1f3a5f"];
window.statusState={polls:0,lastError:null};
function el(tag,cls,text){const e=document.createElement(tag);if(cls)e.className=cls;if(text!==undefined&&text!==null)e.textContent=String(text);return e}
function link(url,text){
  const ok=typeof url==="string"&&/^(https?:\\/\\/|\\/)/.test(url);
  const a=el(ok?"a":"span",null,text);if(ok)a.href=url;return a}
function dur(s){if(s===null||s===undefined)return "–";s=Math.round(s);
  if(s<60)return s+" s";if(s<3600)return Math.floor(s/60)+" min "+(s%60)+" s";return Math.floor(s/3600)+" h "+Math.floor(s%3600/60)+" min"}
function kv(box,pairs){const d=el("div","kv");for(const [k,v,cls] of pairs){d.append(el("span","k",k));const val=(v instanceof Node)?v:el("span",cls||null,v);d.append(val)}box.append(d)}

function renderLinks(links){
  const nav=document.getElementById("links");nav.replaceChildren();
  const items=[["live viewer",links.viewer],["results (HDF REST)",links.results],["API docs",links.api_docs],["metrics",links.metrics],["logs",links.logs]];
  for(const [t,u] of items){if(u)nav.append(link(u,t))}
}

function renderScan(d){
  const box=document.getElementById("scan");box.replaceChildren();
  const p=d.progress;const pct=p.total?100*p.done/p.total:0;
  const failPct=p.total?100*d.failed.count/p.total:0;
  const bar=el("div","bar");const fill=el("div","fill");fill.style.width=(pct-failPct).toFixed(1)+"%";
  const ff=el("div","fill failed");ff.style.width=failPct.toFixed(1)+"%";
  bar.append(fill,ff);
  box.append(bar);
  kv(box,[
    ["mapping",d.mapping_uuid||"none","mono"],
    ["phase",d.phase+(d.finished?" (finished)":""),d.finished?"ok":null],
    ["events",`${p.done} / ${p.total} (${pct.toFixed(1)} %)`],
    ["rate",p.events_per_s===null?"–":`${p.events_per_s.toFixed(1)} events/s`],
    ["ETA",d.finished?"done":dur(p.eta_s)],
    ["in flight",p.in_flight],
    ["failed",d.failed.count,d.failed.count?"err":null],
    [`stuck (> ${d.stuck.after_s} s)`,d.stuck.count,d.stuck.count?"warn":null],
  ]);
}

function svg(tag,attrs){const e=document.createElementNS("http://www.w3.org/2000/svg",tag);for(const k in attrs)e.setAttribute(k,attrs[k]);return e}
function renderChart(r){
  const box=document.getElementById("chart"),legend=document.getElementById("legend");box.replaceChildren();legend.replaceChildren();
  const W=560,H=190,L=46,R=10,T=8,B=24;
  const s=svg("svg",{viewBox:`0 0 ${W} ${H}`,width:"100%",role:"img"});s.id="rate-chart";
  const names=Object.keys(r.workers);let ymax=1;
  for(const n of names)for(const v of r.workers[n])if(v!==null&&v>ymax)ymax=v;
  const e10=Math.pow(10,Math.floor(Math.log10(ymax/4)));const step=[1,2,5,10].map(m=>m*e10).find(v=>v*4>=ymax);ymax=step*4;
  const x=t=>L+(W-L-R)*(t+300)/300, y=v=>T+(H-T-B)*(1-v/ymax);
  for(let i=0;i<=4;i++){const v=ymax*i/4;s.append(svg("line",{x1:L,x2:W-R,y1:y(v),y2:y(v),stroke:"#e4e7eb"}));
    const t=svg("text",{x:L-6,y:y(v)+4,"text-anchor":"end"});t.textContent=Number.isInteger(v)?v:v.toFixed(1);s.append(t)}
  for(const m of [-300,-240,-180,-120,-60,0]){const t=svg("text",{x:x(m),y:H-6,"text-anchor":"middle"});t.textContent=m===0?"now":`${m/60} min`;s.append(t)}
  names.forEach((n,i)=>{
    const c=COLORS[i%COLORS.length];let dpath="",pen=false;
    r.workers[n].forEach((v,k)=>{if(v===null){pen=false;return}dpath+=(pen?"L":"M")+x(r.t[k]).toFixed(1)+","+y(v).toFixed(1);pen=true});
    if(dpath)s.append(svg("path",{d:dpath,fill:"none",stroke:c,"stroke-width":1.6,"data-worker":n}));
    const item=el("span");const sw=el("i");sw.style.background=c;item.append(sw,document.createTextNode(n));legend.append(item);
  });
  if(!names.length){const t=svg("text",{x:W/2,y:H/2,"text-anchor":"middle"});t.textContent="no worker yet";s.append(t)}
  box.append(s);
}

function renderComponents(list){
  const box=document.getElementById("components");box.replaceChildren();
  if(!list.length){box.append(el("p","muted","no component registered"));return}
  const t=el("table");const h=el("tr");
  for(const c of ["kind","name","host","pid","last heartbeat","detail","errors"])h.append(el("th",null,c));
  t.append(h);
  for(const c of list){
    const tr=el("tr");const age=c.heartbeat_age_s;
    const errs=Object.entries(c.errors||{}).map(([k,v])=>`${k}: ${v}`).join(", ");
    tr.append(el("td",null,c.kind),el("td","mono",c.name),el("td","mono",c.host||"–"),el("td",null,c.pid??"–"),
      el("td",age!==null&&age>5?"warn":null,age===null?"–":`${age.toFixed(1)} s ago`),el("td",null,c.detail),
      el("td",errs?"err":"muted",errs||"none"));
    t.append(tr);
  }
  box.append(t);
}

function renderEvents(d){
  const box=document.getElementById("events");box.replaceChildren();
  if(!d.failed.count&&!d.stuck.count){box.append(el("p","ok","none"));return}
  if(d.failed.count){box.append(el("p","err",`${d.failed.count} failed: ${d.failed.events.join(", ")}${d.failed.count>d.failed.events.length?" …":""}`));
    for(const [w,evs] of Object.entries(d.failed.by_worker))if(evs.length)box.append(el("p","muted",`lost with ${w}: ${evs.join(", ")}`))}
  if(d.stuck.count){const ul=el("ul");for(const s of d.stuck.events)ul.append(el("li","warn",`event ${s.event} waiting ${s.for_s} s for ${s.workers.join(", ")}`));
    box.append(el("p","warn",`${d.stuck.count} stuck`),ul)}
}

function renderErrors(list){
  const box=document.getElementById("errors");box.replaceChildren();
  const rows=list.filter(c=>Object.keys(c.errors||{}).length);
  if(!rows.length){box.append(el("p","ok","none"));return}
  const t=el("table");const h=el("tr");for(const c of ["component","category","count"])h.append(el("th",null,c));t.append(h);
  for(const c of rows)for(const [k,v] of Object.entries(c.errors)){const tr=el("tr");
    tr.append(el("td","mono",`${c.kind}:${c.name}`),el("td",null,k),el("td","err",v));t.append(tr)}
  box.append(t);
}

async function refresh(){
  try{
    const r=await fetch("/api/v1/dashboard",{cache:"no-store"});
    if(!r.ok)throw new Error("HTTP "+r.status);
    const d=await r.json();
    renderLinks(d.links);renderScan(d);renderChart(d.rates);renderComponents(d.components);renderEvents(d);renderErrors(d.components);
    document.getElementById("banner").style.display="none";
    window.statusState.polls+=1;window.statusState.lastError=null;
  }catch(e){window.statusState.lastError=String(e);document.getElementById("banner").style.display="block"}
  finally{setTimeout(refresh,1000)}
}
refresh();
</script></body></html>
"""
