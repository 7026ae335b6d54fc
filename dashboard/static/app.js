// Live views without a build step: the runs list refreshes its rows every few seconds;
// a run page listens to Server-Sent Events and patches status, metadata, output and logs.
(function () {
  var rows = document.getElementById("runs-rows");
  if (rows && rows.dataset.live) {
    setInterval(function () {
      fetch(rows.dataset.live, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html !== null) rows.innerHTML = html; });
    }, 3000);
  }
  var live = document.getElementById("live");
  if (!live || !window.EventSource) return;
  var src = new EventSource(live.dataset.events);
  var logs = document.getElementById("logs");
  function set(id, text) { var el = document.getElementById(id); if (el) el.textContent = text; }
  function pretty(v) { return JSON.stringify(v === undefined ? null : v, null, 2); }
  src.addEventListener("run", function (e) {
    var run = JSON.parse(e.data);
    set("run-status", run.status);
    // the note explains the status the page was rendered with: gone once that changes
    var why = document.getElementById("run-why");
    if (why && why.dataset.status !== run.status) why.hidden = true;
    document.getElementById("run-status").className = "status s-" + run.status;
    set("run-attempts", run.attemptCount);
    set("metadata", pretty(run.metadata));
    set("output", pretty(run.output));
    var level = logs ? logs.dataset.level : "";
    (run.logs || []).forEach(function (l) {
      if (!logs || (level && l.level !== level)) return;
      if (logs.querySelector('[data-id="' + l.id + '"]')) return;
      var tr = document.createElement("tr");
      tr.className = "log l-" + l.level; tr.dataset.id = l.id;
      [l.ts.replace("T", " ").slice(0, 19), l.level, l.message].forEach(function (t) {
        var td = document.createElement("td"); td.textContent = t; tr.appendChild(td);
      });
      logs.appendChild(tr);
    });
  });
  src.addEventListener("end", function () {
    src.close();
    setTimeout(function () { window.location.reload(); }, 300);
  });
})();
