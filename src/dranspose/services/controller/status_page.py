"""The controller's status page at ``/``: a static page polling ``/api/v1/status``."""

STATUS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>dranspose</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em} table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
.bar{background:#eee;width:30em;height:1.2em}
.fill{background:#3a7;height:100%}
.err{color:#b00}
</style></head><body>
<h1>dranspose</h1>
<div id="progress"></div>
<h2>Components</h2><div id="components"></div>
<h2>Errors</h2><div id="errors"></div>
<p><a href="/docs">REST API (OpenAPI)</a> &middot; <a href="/api/v1/logs">logs</a></p>
<script>
function esc(s){return String(s).replace(/[&<>]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;'}[c]))}
async function refresh(){
  try{
    const s=await (await fetch('/api/v1/status')).json();
    const p=s.progress||{}; const total=p.total_events||0; const done=(p.completed_events||0)+(p.failed_events||0);
    const pct=total?Math.round(100*done/total):0;
    document.getElementById('progress').innerHTML=
      `<p>mapping ${esc(s.mapping_uuid||'none')} &mdash; ${esc(p.phase||'idle')}${p.finished?' (finished)':''}</p>`+
      `<div class="bar"><div class="fill" style="width:${pct}%"></div></div>`+
      `<p>${done} / ${total} events, ${p.failed_events||0} failed, ${p.in_flight||0} in flight</p>`;
    let rows='<table><tr><th>kind</th><th>name</th><th>detail</th></tr>';
    for(const [n,w] of Object.entries(s.workers||{})){
      const rate=((s.load||{})[n]||{}).events_per_s||{};
      rows+=`<tr><td>worker</td><td>${esc(n)}</td><td>${w.processed} events, ${(rate['1']||0).toFixed(1)}/s</td></tr>`}
    for(const [n,st] of Object.entries(s.ingesters||{})){
      for(const [sn,v] of Object.entries(st)){
        rows+=`<tr><td>ingester</td><td>${esc(n)}</td><td>stream ${esc(sn)} (${esc(v.typ)}): ${v.forwarded} forwarded, ${v.malformed} malformed</td></tr>`}}
    for(const [n,r] of Object.entries(s.reducer||{})){
      rows+=`<tr><td>reducer</td><td>${esc(n)}</td><td>${r.processed} results; live results: <a href="${esc(r.http||'')}">${esc(r.http||'')}</a></td></tr>`}
    document.getElementById('components').innerHTML=rows+'</table>';
    let er='';
    for(const [c,e] of Object.entries(s.errors||{})){er+=`<p class="err">${esc(c)}: ${esc(JSON.stringify(e))}</p>`}
    document.getElementById('errors').innerHTML=er||'<p>none</p>';
  }catch(e){document.getElementById('progress').innerHTML='<p class="err">controller unreachable</p>'}
}
refresh(); setInterval(refresh,1000);
</script></body></html>
"""
