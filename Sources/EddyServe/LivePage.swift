/// The live page at `/`: popular and trending items, a user's recommendations with their
/// reasons, an item's co-view neighbours, and the pipelines' throughput and lag, read from
/// this serve's own routes every two seconds. `?user=` and `?item=` fill the two fields
/// (so a link or a test can open the page on a user); `?key=` is the API key when serve
/// needs one. Text from the state is set as text, never as markup.
enum LivePage {
    /// The page, its lists `k` items long.
    static func html(k: Int) -> String { template.replacingOccurrences(of: "k=10", with: "k=\(k)") }

    private static let template = #"""
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Eddy — live</title>
    <style>
      :root { --fg: #1d2430; --muted: #6b7480; --line: #e3e6ea; --accent: #0b6bcb; --bad: #b42318; --good: #067647; }
      * { box-sizing: border-box; }
      body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: #f6f7f9; }
      header { display: flex; gap: 16px; align-items: baseline; padding: 14px 24px; background: #fff; border-bottom: 1px solid var(--line); }
      header h1 { margin: 0; font-size: 20px; }
      header .meta { color: var(--muted); }
      main { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 16px; padding: 16px 24px; }
      section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; }
      section.wide { grid-column: 1 / -1; }
      h2 { margin: 0 0 8px; font-size: 15px; }
      ol { margin: 0; padding-left: 22px; }
      li { padding: 2px 0; }
      .item { font-weight: 600; }
      .reason { color: var(--muted); margin-left: 6px; }
      .score { float: right; color: var(--muted); font-variant-numeric: tabular-nums; }
      table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
      th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); }
      td.num, th.num { text-align: right; }
      .up { color: var(--good); } .down { color: var(--bad); }
      form { display: flex; gap: 8px; margin-bottom: 8px; }
      input { flex: 1; padding: 5px 8px; border: 1px solid var(--line); border-radius: 6px; font: inherit; }
      button { padding: 5px 12px; border: 0; border-radius: 6px; background: var(--accent); color: #fff; font: inherit; cursor: pointer; }
      .note { color: var(--muted); margin: 6px 0 0; min-height: 1.4em; }
      .error { color: var(--bad); }
    </style>
    </head>
    <body>
    <header><h1>Eddy</h1><span class="meta" id="namespace"></span><span class="meta" id="updated">loading…</span></header>
    <main>
      <section class="wide"><h2>Pipeline</h2>
        <table><thead><tr><th>application</th><th class="num">records/s</th><th class="num">processed</th><th class="num">lag</th><th>status</th></tr></thead>
        <tbody id="pipeline"></tbody></table><p class="note" id="pipeline-note"></p></section>
      <section><h2>Popular now</h2><ol id="popular"></ol><p class="note" id="popular-note"></p></section>
      <section><h2>Trending</h2><ol id="trending"></ol><p class="note" id="trending-note"></p></section>
      <section><h2>Recommendations</h2>
        <form id="user-form"><input id="user" placeholder="user id, e.g. u17" autocomplete="off"><button>Show</button></form>
        <ol id="recommendations"></ol><p class="note" id="recommendations-note"></p></section>
      <section><h2>Co-viewed with</h2>
        <form id="item-form"><input id="item" placeholder="item id, e.g. i3" autocomplete="off"><button>Show</button></form>
        <ol id="similar"></ol><p class="note" id="similar-note"></p></section>
    </main>
    <script>
    const query = new URLSearchParams(location.search);
    const key = query.get("key") || "";
    const $ = (id) => document.getElementById(id);
    $("user").value = query.get("user") || "";
    $("item").value = query.get("item") || "";

    async function get(path) {
      const answer = await fetch(path, { headers: key ? { "X-API-Key": key } : {} });
      const body = await answer.json().catch(() => ({}));
      if (!answer.ok) throw new Error((body.error && body.error.message) || ("HTTP " + answer.status));
      return body;
    }
    function note(id, text, isError) { const p = $(id); p.textContent = text || ""; p.className = "note" + (isError ? " error" : ""); }
    function cell(text, cls) { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; return td; }
    function showItems(id, items) {
      $(id).replaceChildren(...items.map((i) => {
        const li = document.createElement("li");
        li.dataset.item = i.item;
        const name = document.createElement("span"); name.className = "item"; name.textContent = i.item;
        const reason = document.createElement("span"); reason.className = "reason"; reason.textContent = i.reason;
        const score = document.createElement("span"); score.className = "score"; score.textContent = i.score.toFixed(3);
        li.append(name, reason, score);
        return li;
      }));
    }
    async function refreshList(id, path, describe) {
      try {
        const body = await get(path);
        showItems(id, body.items);
        note(id + "-note", describe(body), false);
      } catch (e) { note(id + "-note", e.message, true); }
    }
    async function refreshPipeline() {
      try {
        const body = await get("/v1/pipeline");
        $("pipeline").replaceChildren(...body.pipelines.map((p) => {
          const tr = document.createElement("tr");
          tr.dataset.application = p.application || "";
          tr.append(cell(p.application || p.url), cell(p.records_per_second == null ? "–" : Math.round(p.records_per_second).toLocaleString("en"), "num"),
                    cell(p.records_processed == null ? "–" : p.records_processed.toLocaleString("en"), "num"),
                    cell(p.lag == null ? "–" : p.lag.toLocaleString("en"), "num"), cell(p.up ? "up" : ("down: " + p.error), p.up ? "up" : "down"));
          return tr;
        }));
        note("pipeline-note", body.pipelines.length ? "" : "no pipelines configured (serve.pipeline_metrics)", false);
      } catch (e) { note("pipeline-note", e.message, true); }
    }
    async function refresh() {
      const user = $("user").value.trim(), item = $("item").value.trim();
      const tasks = [refreshPipeline(),
        refreshList("popular", "/v1/popular?k=10", (b) => b.fallback ? "from the snapshot (" + b.fallback_reason + ")" : ""),
        refreshList("trending", "/v1/popular?k=10&window=trending", (b) => b.fallback ? "from the snapshot (" + b.fallback_reason + ")" : "")];
      if (user) tasks.push(refreshList("recommendations", "/v1/recommendations?k=10&user_id=" + encodeURIComponent(user),
        (b) => "variant " + b.variant + (b.fallback ? ", fallback: " + b.fallback_reason : "") + (b.cached ? ", cached" : "")));
      if (item) tasks.push(refreshList("similar", "/v1/items/" + encodeURIComponent(item) + "/similar?k=10", (b) => b.items.length ? "" : "no co-views of " + item + " yet"));
      await Promise.all(tasks);
      try { const ready = await get("/readyz"); $("namespace").textContent = "namespace " + (ready.namespace || "(none)"); } catch (e) { $("namespace").textContent = e.message; }
      $("updated").textContent = "updated " + new Date().toLocaleTimeString("en-GB");
      document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
    }
    $("user-form").addEventListener("submit", (e) => { e.preventDefault(); refresh(); });
    $("item-form").addEventListener("submit", (e) => { e.preventDefault(); refresh(); });
    refresh();
    setInterval(refresh, 2000);
    </script>
    </body>
    </html>
    """#
}
