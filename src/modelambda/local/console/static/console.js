// The modelambda console: plain DOM, no framework, nothing loaded from elsewhere. Every value
// from the server is put in the page as text (textContent), never parsed as HTML: payloads and
// log lines are the function's own output.
const SVG = "http://www.w3.org/2000/svg";
const MAX_ROWS = 500;  // invocations listed in the page (the server keeps more)

const state = { functions: [], invocations: [], selected: null, modelsAt: 0, modelsDirty: true,
  measured: false, tab: "overview", outcomes: {} };

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  for (const child of children.flat()) {
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const fmtMs = (ms) => ms === null || ms === undefined ? "" :
  ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
const fmtAge = (s) => s >= 3600 ? `${(s / 3600).toFixed(1)} h` : s >= 60 ?
  `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${Math.round(s)} s`;
const fmtBytes = (n) => n >= 1048576 ? `${(n / 1048576).toFixed(1)} MB` :
  n >= 1024 ? `${(n / 1024).toFixed(1)} KB` : `${n} B`;
const fmtTime = (t) => new Date(t * 1000).toLocaleTimeString([], { hour12: false });

async function getJSON(path, options = {}) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

function bar(value, limit, width = 140) {
  const ratio = limit ? Math.min(1, value / limit) : 0;
  return s("svg", { class: ratio > 0.85 ? "bar hot" : "bar", width, height: 8,
    viewBox: `0 0 ${width} 8`, preserveAspectRatio: "none" },
  s("rect", { class: "track", x: 0, y: 0, height: 8, width }),
  s("rect", { class: "fill", x: 0, y: 0, height: 8, width: Math.max(ratio > 0 ? 2 : 0, Math.round(ratio * width)) }));
}

// --- tabs ---------------------------------------------------------------------------------

function showTab(name) {
  state.tab = name;
  for (const button of document.querySelectorAll("#tabs button")) {
    button.classList.toggle("active", button.dataset.tab === name);
  }
  for (const section of document.querySelectorAll("section.tab")) {
    section.classList.toggle("active", section.id === name);
  }
  if (name === "models") loadModels(true);
  if (name === "measurements" && !state.measured) loadMeasurements();
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
}

// --- functions and environments -----------------------------------------------------------

function histogram(latency) {
  const width = 380, height = 70, n = latency.counts.length;
  const top = Math.max(1, ...latency.counts);
  const step = width / n;
  const labels = latency.edges_ms.map((e) => e >= 1000 ? `${e / 1000}s` : `${e}`);
  labels.push(`>${labels[labels.length - 1]}`);
  const svg = s("svg", { class: "hist", width, height: height + 14, viewBox: `0 0 ${width} ${height + 14}`,
    role: "img", "aria-label": "latency histogram" });
  latency.counts.forEach((count, i) => {
    const barHeight = Math.round((count / top) * (height - 4));
    const rect = s("rect", { x: i * step + 1, y: height - barHeight, width: step - 2, height: barHeight });
    rect.append(s("title", {}, `${i < n - 1 ? "up to " : ""}${labels[i]} ms: ${count}`));
    svg.append(rect);
    svg.append(s("text", { x: i * step + step / 2, y: height + 11, "text-anchor": "middle" }, labels[i]));
  });
  return svg;
}

function functionCard(fn) {
  const model = fn.model;
  const card = h("div", { class: "card", "data-function": fn.name },
    h("h3", {}, fn.name, fn.strategy ? h("span", { class: "tag" }, fn.strategy) : null,
      h("span", { class: "tag" }, fn.runtime), fn.snapstart ? h("span", { class: "tag" }, "SnapStart") : null),
    h("dl", { class: "facts" },
      h("dt", {}, "memory / CPU"), h("dd", {}, `${fn.memory_mb} MB · ${fn.vcpus} vCPU · timeout ${fn.timeout_s} s · /tmp ${fn.ephemeral_mb} MB`),
      h("dt", {}, "model"), h("dd", { class: "model" }, model ?
        `${model.name} ${model.framework} · version ${model.version}${model.store ? " (built; the store's alias decides what answers)" : ""}` : "—"),
      h("dt", {}, "versions"), h("dd", {}, `${fn.versions.join(", ")} · ${Object.entries(fn.aliases).map(([a, v]) => `${a} → ${v}`).join(", ")}`),
      h("dt", {}, "concurrency"), h("dd", { class: "concurrency" }, bar(fn.active, fn.concurrency_limit),
        `${fn.active} of ${fn.concurrency_limit} in use`, fn.queued_events ? ` · ${fn.queued_events} events queued` : ""),
      h("dt", {}, "isolation"), h("dd", {}, `sandbox ${fn.sandbox} · cgroups ${fn.cgroups}`),
      h("dt", {}, "Invoke API"), h("dd", { class: "mono" }, fn.urls.invoke_api),
      h("dt", {}, "Function URL"), h("dd", { class: "mono" }, fn.urls.function_url),
      fn.urls.v2 ? h("dt", {}, "v2 protocol") : null, fn.urls.v2 ? h("dd", { class: "mono" }, fn.urls.v2) : null),
    h("div", { class: "latency", "data-latency": fn.name }, h("span", { class: "hint" }, "latency, last 5 min")));
  return card;
}

async function refreshLatency() {
  for (const fn of state.functions) {
    const box = document.querySelector(`[data-latency="${CSS.escape(fn.name)}"]`);
    if (!box) continue;
    try {
      const latency = await getJSON(`/console/api/latency/${encodeURIComponent(fn.name)}`);
      box.replaceChildren(h("div", { class: "hint" }, `latency, last 5 min: ${latency.n} invocations`,
        latency.n ? ` · p50 ${fmtMs(latency.p50_ms)} · p99 ${fmtMs(latency.p99_ms)}` : ""), histogram(latency));
    } catch (error) { box.replaceChildren(h("span", { class: "hint" }, error.message)); }
  }
}

function envRow(fn, env, ended) {
  const stateName = ended ? "ended" : env.frozen ? "frozen" : env.state;
  const timing = env.init_ms === null ? "" : `${env.restored ? "restore" : "init"} ${fmtMs(env.init_ms)}`;
  return h("tr", { "data-env": env.id, class: ended ? "ended" : null },
    h("td", { class: "mono" }, env.id), h("td", {}, env.version),
    h("td", {}, h("span", { class: `state ${stateName}` }, stateName)),
    h("td", {}, env.invocations), h("td", {}, timing),
    h("td", {}, bar(ended ? env.max_rss_mb : env.rss_mb, fn.memory_mb, 90),
      ended ? `peak ${env.max_rss_mb} of ${fn.memory_mb} MB` : `${env.rss_mb} / ${env.max_rss_mb} of ${fn.memory_mb} MB`),
    h("td", {}, fmtAge(env.age_s)),
    h("td", { class: "reason" }, ended ? env.end_reason || "ended" : ""));
}

let cardsFor = "";
function renderFunctions() {
  const names = state.functions.map((f) => f.name).join(",");
  const box = document.getElementById("functions");
  const fresh = state.functions.map(functionCard);
  if (names !== cardsFor) {
    box.replaceChildren(...fresh);
    cardsFor = names;
  } else {  // keep the histograms; replace the facts
    fresh.forEach((card, i) => {
      const old = box.children[i];
      old.replaceChild(card.querySelector("dl"), old.querySelector("dl"));
    });
  }
  const rows = [];
  for (const fn of state.functions) {
    for (const env of fn.environments) rows.push(envRow(fn, env, false));
    for (const env of fn.retired) rows.push(envRow(fn, env, true));
  }
  if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: 8, class: "hint" }, "no environment yet: the first request starts one")));
  document.querySelector("#environments tbody").replaceChildren(...rows);
  const select = document.getElementById("try-function");
  if (select.options.length !== state.functions.length) {
    const chosen = select.value;
    select.replaceChildren(...state.functions.map((f) => h("option", { value: f.name }, f.name)));
    if (chosen) select.value = chosen;
    fillRequest();
  }
}

// --- invocations --------------------------------------------------------------------------

function invocationRow(inv) {
  return h("tr", { "data-id": inv.id, class: state.selected === inv.id ? "selected" : null,
    onclick: () => openInvocation(inv.id) },
    h("td", {}, inv.id), h("td", {}, fmtTime(inv.time)), h("td", {}, inv.function),
    h("td", { class: inv.status }, inv.status), h("td", {}, fmtMs(inv.duration_ms)),
    h("td", { class: inv.cold ? "cold" : null }, inv.cold ? `cold${inv.init_ms !== null ? ` (init ${fmtMs(inv.init_ms)})` : inv.restore_ms !== null ? ` (restore ${fmtMs(inv.restore_ms)})` : ""}` : "warm"),
    h("td", { class: "error" }, inv.error_type || ""), h("td", { class: "mono" }, inv.environment));
}

function addInvocations(list) {
  // only the new rows are made (an update under load brings up to 200), the oldest go: the
  // page does the same small work per update however long it stays open
  const top = state.invocations.length ? state.invocations[0].id : 0;
  const fresh = list.filter((i) => i.id > top).sort((a, b) => b.id - a.id).slice(0, MAX_ROWS);
  if (!fresh.length) return;
  state.invocations = [...fresh, ...state.invocations].slice(0, MAX_ROWS);
  const body = document.querySelector("#invocation-list tbody");
  body.prepend(...fresh.map(invocationRow));
  while (body.children.length > MAX_ROWS) body.lastElementChild.remove();
  document.getElementById("invocation-count").textContent = `(${state.invocations[0].id})`;
}

function block(title, text, cls) {
  return [h("h3", {}, title), h("pre", { class: cls || null }, text)];
}

function pretty(body) {
  try { return JSON.stringify(JSON.parse(body.text), null, 1); } catch { return body.text; }
}

async function openInvocation(id) {
  state.selected = id;
  for (const row of document.querySelectorAll("#invocation-list tr.selected")) row.classList.remove("selected");
  document.querySelector(`#invocation-list tr[data-id="${id}"]`)?.classList.add("selected");
  const box = document.getElementById("invocation-detail");
  try {
    const inv = await getJSON(`/console/api/invocations/${id}`);
    const cut = (b) => b.truncated ? ` (first ${fmtBytes(b.text.length)} of ${fmtBytes(b.bytes)})` : ` (${fmtBytes(b.bytes)})`;
    box.replaceChildren(
      h("h3", {}, `#${inv.id} ${inv.function} `, h("span", { class: inv.status }, inv.status),
        inv.error_type ? h("span", { class: "error" }, ` ${inv.error_type}`) : null),
      h("p", { class: "mono hint" }, `${inv.request_id} · version ${inv.version} · ${inv.environment} · ${inv.arn}`),
      ...block("REPORT", inv.report, "report"),
      ...block(`request${cut(inv.request)}`, pretty(inv.request), "request"),
      ...block(`response${cut(inv.response)}`, pretty(inv.response), "response"),
      ...block(`log lines (${inv.logs.length})`, inv.logs.join("\n"), "logs"));
  } catch (error) {
    box.replaceChildren(h("p", { class: "notice error" }, error.message));
  }
}

// --- try it -------------------------------------------------------------------------------

function fillRequest() {
  const fn = state.functions.find((f) => f.name === document.getElementById("try-function").value);
  document.getElementById("try-body").value = fn && fn.request ? fn.request : '{"instances": []}';
}

async function sendTry(event) {
  event.preventDefault();
  const name = document.getElementById("try-function").value;
  const fn = state.functions.find((f) => f.name === name);
  if (!fn) return;
  const door = document.getElementById("try-door").value;
  const body = document.getElementById("try-body").value;
  const out = document.getElementById("try-result");
  const path = door === "url" ? `/fn/${encodeURIComponent(name)}/` :
    `/2015-03-31/functions/${encodeURIComponent(`${name}:${fn.alias}`)}/invocations`;
  const started = performance.now();
  out.replaceChildren(h("p", { class: "hint" }, `POST ${path} …`));
  try {
    const response = await fetch(path, { method: "POST", body, headers: { "Content-Type": "application/json" } });
    const text = await response.text();
    const ms = performance.now() - started;
    const functionError = response.headers.get("X-Amz-Function-Error");
    let shown = text, gist = "";
    try {
      const value = JSON.parse(text);
      shown = JSON.stringify(value, null, 1);
      if (value && Array.isArray(value.predictions)) {
        gist = `${value.predictions.length} prediction(s)${value.model_name ? ` · model ${value.model_name} version ${value.model_version}` : ""}`;
      }
    } catch { /* not JSON: as it came */ }
    const ok = response.ok && !functionError;
    out.replaceChildren(
      h("p", { class: `status ${ok ? "ok" : "error"}` }, `HTTP ${response.status}${functionError ? ` · function error (${functionError})` : ""} · ${fmtMs(ms)} round trip`,
        response.headers.get("X-Amz-Executed-Version") ? ` · version ${response.headers.get("X-Amz-Executed-Version")}` : "",
        ` · request ${response.headers.get("x-amzn-RequestId") || ""}`),
      gist ? h("p", { class: "gist" }, gist) : null,
      h("pre", { class: "response" }, shown));
  } catch (error) {
    out.replaceChildren(h("p", { class: "notice error" }, `the request failed: ${error.message}`));
  }
}

// --- models -------------------------------------------------------------------------------

function ask(text) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
  });
}

async function moveAlias(name, action, alias, version) {
  const text = action === "promote" ? `Point alias "${alias}" of ${name}'s model at version ${version}? Warm environments switch at their next refresh.`
    : `Roll alias "${alias}" of ${name}'s model back to the version it pointed at before?`;
  if (!(await ask(text))) return;
  try {
    const moved = await getJSON(`/console/api/models/${encodeURIComponent(name)}/${action}`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(action === "promote" ? { version, alias } : { alias }) });
    state.outcomes[name] = { ok: true, text: `${moved.alias}: ${moved.from || "(none)"} → ${moved.to}` };
  } catch (error) {
    state.outcomes[name] = { ok: false, text: error.message };
  }
  await loadModels(true);
}

function modelPanel(fn, view) {
  const aliasOf = {};
  for (const [alias, record] of Object.entries(view.aliases)) (aliasOf[record.version] ||= []).push(alias);
  const outcome = state.outcomes[fn.name];
  const defaultAlias = Object.keys(view.aliases)[0] || "live";
  const rows = view.versions.map((v) => h("tr", { "data-version": v.version },
    h("td", { class: "mono" }, v.version), h("td", {}, (aliasOf[v.version] || []).map((a) => h("span", { class: "alias" }, `${a} `))),
    h("td", {}, v.created || ""), h("td", {}, v.framework || ""), h("td", {}, fmtBytes(v.size)),
    h("td", { class: "mono" }, Object.entries(v.files).map(([rel, f]) => h("div", {}, `${rel} sha256:${(f.sha256 || "").slice(0, 16)}…`))),
    h("td", {}, (aliasOf[v.version] || []).includes(defaultAlias) ? "" :
      h("button", { class: "small promote", onclick: () => moveAlias(fn.name, "promote", defaultAlias, v.version) }, `promote to ${defaultAlias}`))));
  const aliases = Object.entries(view.aliases).map(([alias, record]) => h("tr", { "data-alias": alias },
    h("td", { class: "alias" }, alias), h("td", { class: "target mono" }, record.version),
    h("td", { class: "mono" }, (record.previous || []).join(", ")), h("td", {}, record.updated || ""),
    h("td", {}, (record.previous || []).length ? h("button", { class: "small rollback",
      onclick: () => moveAlias(fn.name, "rollback", alias) }, "roll back") : "")));
  const events = view.refresh_events.map((e) => h("li", {}, `#${e.id} ${e.line}`));
  return h("div", { class: "card", "data-model": fn.name },
    h("h3", {}, `${fn.name}: model ${view.model}`, h("span", { class: "tag" }, fn.strategy)),
    h("p", { class: "hint mono" }, view.store),
    h("h3", {}, "aliases"),
    h("table", { class: "grid aliases" }, h("thead", {}, h("tr", {}, ["alias", "version", "before", "updated", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, aliases.length ? aliases : h("tr", {}, h("td", { colspan: 5, class: "hint" }, "no alias")))),
    h("div", { class: "outcome" }, outcome ? h("p", { class: outcome.ok ? "notice" : "notice error" }, outcome.text) : null),
    h("h3", {}, `versions (${view.versions.length})`),
    h("table", { class: "grid versions" }, h("thead", {}, h("tr", {}, ["version", "aliases", "published", "framework", "size", "files", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, rows)),
    h("h3", {}, "refresh (the function's log)"),
    events.length ? h("ul", { class: "events" }, events) : h("p", { class: "hint" }, "no model switch logged yet"));
}

async function loadModels(force = false) {
  if (state.tab !== "models") return;
  const now = Date.now();
  if (!force && (!state.modelsDirty || now - state.modelsAt < 2000)) return;
  state.modelsAt = now;
  state.modelsDirty = false;
  const stores = state.functions.filter((f) => f.model && f.model.store);
  const body = document.getElementById("models-body");
  if (!stores.length) {
    body.replaceChildren(h("p", { class: "hint" }, "No function here reads a model store: versions and aliases are for the s3 and efs strategies (modelambda up DIR --strategy s3)."));
    return;
  }
  const panels = await Promise.all(stores.map(async (fn) => {
    try { return modelPanel(fn, await getJSON(`/console/api/models/${encodeURIComponent(fn.name)}`)); } catch (error) {
      return h("div", { class: "card", "data-model": fn.name }, h("h3", {}, fn.name), h("p", { class: "notice error" }, error.message));
    }
  }));
  body.replaceChildren(...panels);
}

// --- measurements -------------------------------------------------------------------------

function benchTable(bench) {
  const rows = [];
  for (const [strategy, result] of Object.entries(bench.results || {})) {
    for (const [memory, m] of Object.entries(result.memory || {})) {
      const warm = (m.warm || {}).duration_ms || {};
      const cold = m.cold || {};
      rows.push(h("tr", {}, h("td", {}, strategy), h("td", {}, `${memory} MB`), h("td", {}, fmtMs(cold.cold_ms)),
        h("td", {}, fmtMs(cold.init_ms)), h("td", {}, fmtMs(warm.p50)), h("td", {}, fmtMs(warm.p99)),
        h("td", {}, m.max_memory_mb || (m.warm || {}).max_memory_mb || "")));
    }
  }
  return h("table", { class: "grid" }, h("thead", {}, h("tr", {}, ["strategy", "memory", "cold start", "init", "warm p50", "warm p99", "max memory MB"].map((t) => h("th", {}, t)))),
    h("tbody", {}, rows));
}

function adviseChart(advise) {
  const recommended = (advise.recommendation || {}).option;
  const options = (advise.options || []).filter((o) => o.feasible !== false);
  const key = (o) => o.monthly_usd ?? null;
  const cold = (o) => o.cold_start_ms ?? null;
  const data = options.map((o) => ({ name: o.name, cost: key(o), cold: cold(o) })).filter((d) => d.cost !== null || d.cold !== null);
  if (!data.length) return h("p", { class: "hint" }, "no chartable options in advise.json");
  const width = 820, row = 26, height = data.length * row + 24, left = 300, span = 300;
  const maxCold = Math.max(1, ...data.map((d) => d.cold || 0));
  const svg = s("svg", { class: "chart", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "estimated cold start per strategy" });
  svg.append(s("text", { x: 0, y: 12 }, "estimated cold start on Lambda (bar; green: recommended) and monthly cost"));
  data.forEach((d, i) => {
    const y = 22 + i * row;
    svg.append(s("text", { x: 0, y: y + 14 }, d.name));
    const length = Math.round(((d.cold || 0) / maxCold) * span);
    svg.append(s("rect", { class: d.name === recommended ? "b r" : "b", x: left, y, height: 18, width: length }));
    svg.append(s("text", { x: left + length + 6, y: y + 14 },
      `${d.cold !== null ? fmtMs(d.cold) : "?"}${d.cost !== null ? ` · $${Number(d.cost).toFixed(2)}/month` : ""}`));
  });
  return svg;
}

async function loadMeasurements() {
  state.measured = true;
  const body = document.getElementById("measurements-body");
  const panels = await Promise.all(state.functions.filter((f) => f.strategy).map(async (fn) => {
    try {
      const m = await getJSON(`/console/api/measurements/${encodeURIComponent(fn.name)}`);
      const rec = m.advise && m.advise.recommendation;
      return h("div", { class: "card", "data-measurements": fn.name },
        h("h3", {}, `${fn.name}: last bench`),
        m.bench ? [h("p", { class: "hint" }, `${m.bench_file} · service ${m.bench.service || "?"} · ${m.bench.date || ""}`),
          h("div", { class: "measure" }, benchTable(m.bench),
            h("div", { class: "charts" }, m.charts.map((src) => h("img", { class: "chart", src, alt: src.split("/").pop() }))))] :
          h("p", { class: "hint" }, `no bench yet: modelambda bench DIR writes ${m.bench_file}`),
        h("h3", {}, `${fn.name}: last advise`),
        m.advise ? [h("p", { class: "hint" }, m.advise_file),
          rec ? h("p", {}, `recommendation: `, h("strong", {}, rec.option || "none feasible"),
            rec.reasons ? ` — ${[].concat(rec.reasons).join("; ")}` : "") : null,
          adviseChart(m.advise)] :
          h("p", { class: "hint" }, `no advise yet: modelambda advise DIR writes ${m.advise_file}`));
    } catch (error) { return h("div", { class: "card" }, h("p", { class: "notice error" }, error.message)); }
  }));
  body.replaceChildren(...(panels.length ? panels : [h("p", { class: "hint" }, "no service directories here")]));
}

// --- live ---------------------------------------------------------------------------------

let latencyTimer = null;
function connect() {
  const live = document.getElementById("live");
  const source = new EventSource("/console/api/live");
  source.addEventListener("open", () => { live.className = "live on"; live.textContent = "live"; });
  source.addEventListener("error", () => { live.className = "live off"; live.textContent = "reconnecting"; });
  source.addEventListener("update", (message) => {
    const update = JSON.parse(message.data);
    state.functions = update.functions;
    renderFunctions();
    if (update.invocations.length) {
      addInvocations(update.invocations);
      state.modelsDirty = true;
      if (!latencyTimer) latencyTimer = setTimeout(() => { latencyTimer = null; refreshLatency(); }, 1000);
    }
    loadModels();
  });
}

async function start() {
  for (const button of document.querySelectorAll("#tabs button")) {
    button.addEventListener("click", () => showTab(button.dataset.tab));
  }
  document.getElementById("try-form").addEventListener("submit", sendTry);
  document.getElementById("try-function").addEventListener("change", fillRequest);
  const first = await getJSON("/console/api/functions");
  state.functions = first.functions;
  renderFunctions();
  const listing = await getJSON("/console/api/invocations?limit=200");
  addInvocations(listing.invocations);
  refreshLatency();
  connect();
  const tab = location.hash.slice(1);
  if (document.getElementById(tab)?.classList.contains("tab")) showTab(tab);
}

start();
