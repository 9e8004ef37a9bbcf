let session = null, current = null, shown = 0;
const $ = id => document.getElementById(id);
$("session").value = localStorage.getItem("turing-session") || "viewer-" + Math.random().toString(36).slice(2, 8);
function report(s) {
  const pct = x => (100 * x).toFixed(1) + " %";
  $("result").textContent = s.fakes_seen ? `Fooling rate: ${pct(s.fooling_rate)} of ${s.fakes_seen} colorized images ` +
      `taken for real (95 % interval ${pct(s.interval[0])} - ${pct(s.interval[1])}); ${s.correct} of ${s.answered} answers right.` : "";
}
function show(s) {
  report(s);
  current = s.next;
  if (current === null) { $("test").hidden = true; $("progress").textContent = ""; $("result").textContent += " Done, thank you."; return; }
  $("test").hidden = false;
  $("progress").textContent = `Image ${s.answered + 1} of ${s.total}`;
  $("picture").src = "/api/turing/image/" + current;
  shown = performance.now();
}
async function start() {
  session = $("session").value.trim();
  localStorage.setItem("turing-session", session);
  const r = await fetch("/api/turing/" + encodeURIComponent(session));
  const s = await r.json();
  if (!r.ok) { $("result").textContent = s.detail; return; }
  show(s);
}
async function answer(value) {
  if (current === null) return;
  const body = new FormData();
  body.append("index", current); body.append("answer", value);
  body.append("seconds", ((performance.now() - shown) / 1000).toFixed(2));
  const asked = current;
  current = null;
  const r = await fetch("/api/turing/" + encodeURIComponent(session), {method: "POST", body});
  const s = await r.json().catch(() => ({detail: r.statusText}));
  if (!r.ok) { current = asked; $("result").textContent = s.detail; return; }  // not counted: answer again
  show(s);
}
$("start").onclick = start;
$("real").onclick = () => answer("real");
$("fake").onclick = () => answer("fake");
