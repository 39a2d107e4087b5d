#include "proxy/admin/dashboard_html.hpp"

namespace shardline::proxy::admin {

// Hand-written; everything it loads comes from this proxy (/api/*, /healthz).
const std::string_view kDashboardHtml = R"shardline_html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>shardline</title>
<link rel="icon" href="data:,">
<style>
:root{--bg:#0f1419;--panel:#171e26;--line:#26303b;--text:#e6edf3;--dim:#8b98a5;--ok:#3fb950;--warn:#d29922;--bad:#f85149;}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--text);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
header{display:flex;align-items:center;gap:16px;padding:14px 24px;border-bottom:1px solid var(--line);background:#121920}
header h1{margin:0;font-size:18px;letter-spacing:.5px}
header h1 span{color:var(--dim);font-weight:400}
.pill{padding:2px 10px;border-radius:999px;font-size:12px;font-weight:600;background:#222c36;color:var(--dim)}
.pill.ok{background:rgba(63,185,80,.15);color:var(--ok)}.pill.warn{background:rgba(210,153,34,.15);color:var(--warn)}
.pill.bad{background:rgba(248,81,73,.15);color:var(--bad)}
header .meta{margin-left:auto;color:var(--dim);font-size:12px}
main{display:grid;grid-template-columns:repeat(12,1fr);gap:16px;padding:20px 24px;max-width:1500px;margin:0 auto}
section{background:var(--panel);border:1px solid var(--line);border-radius:10px;padding:14px 16px;min-width:0}
section h2{margin:0 0 10px;font-size:12px;text-transform:uppercase;letter-spacing:1px;color:var(--dim);font-weight:600}
.w12{grid-column:span 12}.w7{grid-column:span 7}.w5{grid-column:span 5}
@media (max-width:1000px){.w7,.w5{grid-column:span 12}}
#shards{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:12px}
.shard{border:1px solid var(--line);border-left:4px solid var(--c);border-radius:8px;padding:10px 12px;background:#131a21}
.shard .top{display:flex;align-items:baseline;gap:8px}
.shard .name{font-weight:700;font-size:16px}.shard .qps{margin-left:auto;font-variant-numeric:tabular-nums}
.shard .qps b{font-size:18px}.dim{color:var(--dim)}
.row{display:flex;justify-content:space-between;gap:8px;font-size:13px;padding:3px 0;border-top:1px dashed #222c36}
.row:first-of-type{border-top:0}
.bar{height:6px;background:#222c36;border-radius:3px;overflow:hidden;margin:6px 0 4px}
.bar i{display:block;height:100%;background:var(--c,#58a6ff)}
.st{font-size:11px;font-weight:600;padding:0 6px;border-radius:4px}
.st.eligible,.st.ok{color:var(--ok);background:rgba(63,185,80,.12)}.st.lagging{color:var(--warn);background:rgba(210,153,34,.12)}
.st.unreachable,.st.promoted,.st.unknown,.st.bad{color:var(--bad);background:rgba(248,81,73,.12)}
canvas{width:100%;height:200px;display:block}
.legend{display:flex;flex-wrap:wrap;gap:12px;font-size:12px;color:var(--dim);margin-top:8px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;background:var(--c);vertical-align:-1px}
#map{display:grid;gap:1px}
#map div{aspect-ratio:1;border-radius:1px;background:var(--c)}
table{width:100%;border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums}
th{text-align:left;color:var(--dim);font-weight:600;font-size:11px;text-transform:uppercase;letter-spacing:.5px;padding:4px 6px;border-bottom:1px solid var(--line)}
td{padding:5px 6px;border-bottom:1px solid #1d252e}
td.num,th.num{text-align:right}
.share{display:flex;align-items:center;gap:6px}.share .bar{flex:1;margin:0}
.empty{color:var(--dim);font-style:italic;padding:8px 0}
#error{display:none;margin:0 24px;padding:8px 12px;border-radius:8px;background:rgba(248,81,73,.12);color:var(--bad)}
</style>
</head>
<body>
<header>
  <h1>shardline <span>dashboard</span></h1>
  <span id="health" class="pill">connecting</span>
  <span class="meta" id="meta"></span>
</header>
<div id="error"></div>
<main>
  <section class="w12"><h2>Shards</h2><div id="shards"></div></section>
  <section class="w7"><h2>Queries per second by shard</h2><canvas id="chart"></canvas><div class="legend" id="chart-legend"></div></section>
  <section class="w5"><h2>Logical-shard map <span class="dim" id="map-count"></span></h2><div id="map"></div><div class="legend" id="map-legend"></div></section>
  <section class="w7"><h2>Hottest tenants</h2><div id="tenants"></div></section>
  <section class="w5" id="reshard-box"><h2>Reshard jobs</h2><div id="reshards"></div></section>
</main>
<script>
"use strict";
const PALETTE=["#58a6ff","#3fb950","#d29922","#bc8cff","#ff7b72","#39c5cf","#f778ba","#a5d6ff","#7ee787","#e3b341","#ffa657","#79c0ff"];
const HISTORY=60, POLL_MS=1000;
const colors={}, series={}; let last=null;
const $=id=>document.getElementById(id);
function color(shard,order){if(!(shard in colors))colors[shard]=PALETTE[order%PALETTE.length];return colors[shard];}
function el(tag,attrs,...kids){const e=document.createElement(tag);for(const[k,v]of Object.entries(attrs||{})){if(k==="style")e.style.cssText=v;else if(k==="cls")e.className=v;else e.setAttribute(k,v);}for(const k of kids)e.append(k instanceof Node?k:document.createTextNode(String(k)));return e;}
function fmtBytes(b){if(b==null)return"?";const u=["B","kB","MB","GB"];let i=0;while(b>=1024&&i<u.length-1){b/=1024;i++;}return(i?b.toFixed(1):b)+" "+u[i];}
function fmtNum(n){return n>=1e6?(n/1e6).toFixed(1)+"M":n>=1e4?(n/1e3).toFixed(1)+"k":String(Math.round(n));}
async function get(path){const r=await fetch(path,{cache:"no-store"});if(!r.ok&&r.status!==503)throw new Error(path+": HTTP "+r.status);return r.json();}

function renderShards(shards,replicas,qps){
  const box=$("shards");box.replaceChildren();
  shards.forEach((s,i)=>{
    const c=color(s.shard,i);
    const card=el("div",{cls:"shard",style:"--c:"+c},
      el("div",{cls:"top"},el("span",{cls:"name"},s.shard),el("span",{cls:"dim"},s.primary),
        el("span",{cls:"qps"},el("b",{},fmtNum(qps[s.shard]||0)),el("span",{cls:"dim"}," q/s"))));
    const used=s.pool_size?Math.min(1,s.pool_active/s.pool_size):0;
    card.append(el("div",{cls:"bar",title:"primary pool in use"},el("i",{style:"width:"+(used*100).toFixed(1)+"%"})));
    card.append(el("div",{cls:"dim",style:"font-size:12px"},"pool "+s.pool_active+"/"+s.pool_size+" active, "+s.pool_idle+" idle"+(s.pool_waiting?", "+s.pool_waiting+" waiting":"")+
      " \u00b7 "+s.logical_shards+" logical ("+(s.directory_share*100).toFixed(1)+"%)"));
    const reps=replicas.filter(r=>r.shard===s.shard);
    if(!reps.length)card.append(el("div",{cls:"row"},el("span",{cls:"dim"},"no replicas")));
    for(const r of reps){
      card.append(el("div",{cls:"row replica"},
        el("span",{},"replica "+r.replica+" ",el("span",{cls:"dim"},r.host+":"+r.port)),
        el("span",{},el("span",{cls:"lag"},"lag "+fmtBytes(r.lag_bytes)+" / "+(r.lag_ms==null?"?":r.lag_ms+" ms")+" "),
          el("span",{cls:"st "+r.state},r.state))));
    }
    box.append(card);
  });
}

function renderChart(shards){
  const cv=$("chart"),dpr=window.devicePixelRatio||1,w=cv.clientWidth,h=cv.clientHeight;
  cv.width=w*dpr;cv.height=h*dpr;const g=cv.getContext("2d");g.scale(dpr,dpr);
  const pad={l:44,r:8,t:8,b:18};let max=4;
  for(const s of shards)for(const v of series[s.shard]||[])max=Math.max(max,v);
  const raw=max/4,p10=Math.pow(10,Math.floor(Math.log10(raw))),f=raw/p10;
  max=4*(f<=1?1:f<=2?2:f<=2.5?2.5:f<=5?5:10)*p10;  // four gridlines at round values
  g.font="11px system-ui,sans-serif";g.fillStyle="#8b98a5";g.strokeStyle="#26303b";g.lineWidth=1;
  for(let i=0;i<=4;i++){const y=pad.t+(h-pad.t-pad.b)*i/4;g.beginPath();g.moveTo(pad.l,y);g.lineTo(w-pad.r,y);g.stroke();
    const v=max*(4-i)/4;g.fillText(v<10&&v%1?v.toFixed(1):fmtNum(v),4,y+4);}
  g.fillText("-"+HISTORY+"s",pad.l,h-4);g.fillText("now",w-pad.r-22,h-4);
  const x=i=>pad.l+(w-pad.l-pad.r)*i/(HISTORY-1),y=v=>pad.t+(h-pad.t-pad.b)*(1-v/max);
  shards.forEach((s,si)=>{const d=series[s.shard]||[];if(!d.length)return;g.strokeStyle=color(s.shard,si);g.lineWidth=2;g.beginPath();
    const off=HISTORY-d.length;d.forEach((v,i)=>{i?g.lineTo(x(off+i),y(v)):g.moveTo(x(off+i),y(v));});g.stroke();});
  const lg=$("chart-legend");lg.replaceChildren(...shards.map((s,i)=>el("span",{style:"--c:"+color(s.shard,i)},el("i"),s.shard)));
}

function renderMap(dir,shards){
  dir=dir.filter(r=>!r.tenant);
  const n=dir.length?dir[dir.length-1].logical_last+1:0,map=$("map");
  const cols=Math.min(64,Math.max(8,Math.ceil(Math.sqrt(n*4))));map.style.gridTemplateColumns="repeat("+cols+",1fr)";
  if(map.childElementCount!==n){map.replaceChildren();for(let i=0;i<n;i++)map.append(el("div"));}
  const order={};shards.forEach((s,i)=>order[s.shard]=i);
  for(const r of dir)for(let l=r.logical_first;l<=r.logical_last;l++){const c=map.children[l];c.style.setProperty("--c",color(r.shard,order[r.shard]||0));c.title="logical "+l+" \u2192 "+r.shard;}
  $("map-count").textContent="\u00b7 "+n+" logical shards";
  const counts={};for(const r of dir)counts[r.shard]=(counts[r.shard]||0)+r.logical_last-r.logical_first+1;
  $("map-legend").replaceChildren(...shards.map((s,i)=>el("span",{style:"--c:"+color(s.shard,i)},el("i"),s.shard+" \u00b7 "+(counts[s.shard]||0))));
}

function renderTenants(rows,shards){
  const box=$("tenants");
  if(!rows.length){box.replaceChildren(el("div",{cls:"empty"},"no tenant traffic yet"));return;}
  const order={};shards.forEach((s,i)=>order[s.shard]=i);
  const t=el("table",{},el("tr",{},el("th",{},"tenant"),el("th",{},"shard"),el("th",{cls:"num"},"logical"),el("th",{cls:"num"},"queries"),el("th",{cls:"num"},"ms"),el("th",{style:"width:32%"},"share of shard")));
  for(const r of rows.slice(0,8)){
    const c=color(r.shard,order[r.shard]||0);
    t.append(el("tr",{},el("td",{},r.tenant),el("td",{},r.shard),el("td",{cls:"num"},r.logical),el("td",{cls:"num"},fmtNum(r.queries)),
      el("td",{cls:"num"},r.total_ms.toFixed(1)),
      el("td",{},el("div",{cls:"share"},el("div",{cls:"bar",style:"--c:"+c},el("i",{style:"width:"+(r.share*100).toFixed(1)+"%"})),el("span",{},(r.share*100).toFixed(1)+"%")))));
  }
  box.replaceChildren(t);
}

function renderReshards(jobs){
  const box=$("reshards");
  if(!jobs.length){box.replaceChildren(el("div",{cls:"empty"},"no reshard job has run"));return;}
  const t=el("table",{},el("tr",{},el("th",{},"job"),el("th",{},"move"),el("th",{},"phase"),el("th",{style:"width:40%"},"progress")));
  for(const j of jobs.slice(-8).reverse()){
    const p=j.rows_total?Math.min(1,j.rows_copied/j.rows_total):(j.phase==="done"?1:0);
    t.append(el("tr",{},el("td",{},"#"+j.id+" "+j.kind),el("td",{},(j.tenant?"tenant "+j.tenant:"logical "+j.logical)+": "+j.source+" \u2192 "+j.target),
      el("td",{},el("span",{cls:"st "+(j.phase==="failed"||j.phase==="aborted"?"bad":j.phase==="done"?"ok":"lagging")},j.phase)),
      el("td",{},el("div",{cls:"share"},el("div",{cls:"bar"},el("i",{style:"width:"+(p*100).toFixed(1)+"%"})),el("span",{},fmtNum(j.rows_copied)+"/"+fmtNum(j.rows_total))))));
  }
  box.replaceChildren(t);
}

async function poll(){
  try{
    const [shards,replicas,dir,tenants,reshards,health]=await Promise.all(
      ["/api/shards","/api/replicas","/api/directory","/api/tenants","/api/reshards","/healthz"].map(get));
    const now=performance.now(),qps={};
    for(const s of shards){
      const prev=last&&last.q[s.shard];
      const rate=prev!=null?Math.max(0,(s.queries-prev)*1000/(now-last.t)):0;
      qps[s.shard]=rate;(series[s.shard]=series[s.shard]||[]).push(rate);if(series[s.shard].length>HISTORY)series[s.shard].shift();
    }
    last={t:now,q:Object.fromEntries(shards.map(s=>[s.shard,s.queries]))};
    renderShards(shards,replicas,qps);renderChart(shards);renderMap(dir,shards);renderTenants(tenants,shards);renderReshards(reshards);
    const hp=$("health");hp.textContent=health.status;hp.className="pill "+(health.status==="ok"?"ok":health.status==="degraded"?"warn":"bad");
    $("meta").textContent="directory epoch "+(dir.length?dir[0].epoch:"?")+" \u00b7 updated "+new Date().toLocaleTimeString();
    $("error").style.display="none";
  }catch(e){const b=$("error");b.textContent="cannot reach the proxy: "+e.message;b.style.display="block";}
  setTimeout(poll,POLL_MS);
}
poll();
</script>
</body>
</html>
)shardline_html";

}  // namespace shardline::proxy::admin
