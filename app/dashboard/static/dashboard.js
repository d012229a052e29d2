// The planning dashboard: plain JS over the service's JSON API (GET /tasks, GET /frontier/{task},
// GET /frontier/{task}/marginal, GET /plan/{task}, POST /allocate, GET /allocations[/{id}], POST /tasks).
"use strict";

(() => {
  const CONFIG = JSON.parse(document.getElementById("config").textContent);
  const DEFAULT_MODEL = "minilm-l6";
  const POLL_MS = 1000;
  const SYMBOLS = { seq_sft: "circle", logconf_sft: "diamond", uncertainty_sft: "square", prompted_sft: "triangle-up", icl: "star" };
  const METHOD_COLORS = { seq_sft: "#4c78a8", logconf_sft: "#f58518", uncertainty_sft: "#54a24b", prompted_sft: "#b279a2", icl: "#e45756" };
  const COMPARE_COLORS = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#17becf"];
  const COMPARE_SYMBOLS = ["circle", "diamond", "square", "triangle-up", "star", "cross"];
  const CSV_COLUMNS = [
    "task", "recipe", "weak_cost", "gold_cost", "method", "model", "weak_labeler", "n_weak", "n_gold", "spend_weak",
    "spend_gold", "cost", "weak_share_of_spend", "weak_share_of_labels", "accuracy", "interval_low", "interval_high",
    "interval_level", "n_test", "accuracy_spread", "selection_accuracy", "holdout_accuracy", "holdout_spread", "regime",
    "seeds", "trial_ids", "on_frontier",
  ];
  const PREDICTED_NAME = "predicted (learning surface)";
  const PREDICTED_COLOR = "#c2410c";
  const PENDING_NAME = "pending (not measured yet)";
  // The recipes a request can name; the selector's labels add overrides ("fast max_steps_per_stage=3").
  const RECIPES = ["fast", "paper"];
  const LIST_PAGE = 10;  // allocations per page of the list
  // Budgets the learning surface is asked about (times the plan's budget): the chart keeps those near the data.
  const PREDICT_SCALES = [1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 5, 1 / 4, 1 / 3, 1 / 2, 2 / 3, 3 / 4, 1.25, 1.5, 2, 3, 4, 6, 8];

  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  const el = {
    planForm: $("#plan-form"), task: $("#task"), model: $("#model"), gold: $("#gold-cost"), weak: $("#weak-cost"),
    budget: $("#budget"), compare: $("#compare"), compareCosts: $("#compare-costs"), taskInfo: $("#task-info"),
    chart: $("#frontier-chart"), summary: $("#frontier-summary"), compareSummary: $("#compare-summary"),
    table: $("#frontier-table"), tableCount: $("#table-count"), recCard: $("#recommendation-card"),
    rec: $("#recommendation"), allocateForm: $("#allocate-form"), progress: $("#progress"),
    progressBar: $("#progress-bar"), uploadForm: $("#upload-form"), recipe: $("#recipe"),
    recWarnings: $("#rec-warnings"), targetForm: $("#target-form"), targetAnswer: $("#target-answer"),
    listForm: $("#allocations-filter"), listTable: $("#allocations-table"), listTask: $("#list-task"),
  };
  // recipe: the one asked for ("" = the server's default, the recipe with the most trials);
  // followAllocation: a finished allocation whose recipe the frontier should switch to, once.
  const state = { seq: 0, rows: [], registered: new Set(), allocation: null, pollTimer: null, plan: null, recipe: "", recipes: [], shownRecipe: null, followAllocation: null, trialsFinished: -1, chance: 0.5 };
  // The allocations list: its latest request (seq) and the cursor of its next page.
  const list = { seq: 0, cursor: null };

  // --- formatting ----------------------------------------------------------------------------
  const money = (v) => "$" + Number(v).toLocaleString("en-US", { maximumFractionDigits: Math.abs(v) < 1 ? 4 : 2 });
  const count = (v) => Number(v).toLocaleString("en-US");
  const acc = (v) => Number(v).toFixed(3);
  const pct = (v) => Math.round(100 * v) + "%";
  const pts = (v) => (v >= 0 ? "+" : "−") + Math.abs(100 * v).toFixed(1) + " pts";
  const perDollar = (v) => (v >= 0 ? "+" : "−") + Number(Math.abs(100 * v).toPrecision(2)) + " pts per dollar";
  const signed = (v) => (v >= 0 ? "+" : "−") + Math.abs(v).toFixed(3);
  const levelPct = (level) => Math.round(100 * (level ?? 0.9)) + "%";
  // "0.718–0.782"; a range of zero width (nothing measured) is not shown as one.
  const span = (iv) => (iv && iv.high > iv.low ? `${acc(iv.low)}–${acc(iv.high)}` : null);
  const intervalText = (iv) => (span(iv) ? `${levelPct(iv.level)} interval ${span(iv)}` : "no spread measured");
  const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

  // --- the API -------------------------------------------------------------------------------
  // The service may want an API key (LABELMIX_REQUIRE_API_KEYS): it is asked for once, kept in this
  // browser's localStorage and sent as a header (never a cookie, so other sites cannot borrow it).
  const KEY_STORAGE = "labelmix-api-key";
  const storedKey = () => { try { return localStorage.getItem(KEY_STORAGE); } catch (_) { return null; } };

  function askForKey(message) {
    const form = $("#key-form");
    if (!form) return;
    form.hidden = false;
    $("#key-error").textContent = message || "This service needs an API key.";
    $("#api-key").focus();
  }

  async function api(path, options = {}) {
    let response;
    const key = storedKey();
    const headers = { accept: "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}), ...(options.headers || {}) };
    try {
      response = await fetch(path, { ...options, headers });
    } catch (_) {
      return { ok: false, status: 0, body: { detail: "the service did not answer" } };
    }
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    if (response.status === 401) askForKey(body && body.detail);
    return { ok: response.ok, status: response.status, body };
  }

  const keyForm = $("#key-form");
  if (keyForm) {
    keyForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("#api-key").value.trim();
      if (!key) { $("#key-error").textContent = "Paste the key `labelmix keys create` printed."; return; }
      try { localStorage.setItem(KEY_STORAGE, key); } catch (_) { /* private mode: this page only */ }
      location.reload();  // every panel loads again, now with the key
    });
  }

  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (v === null || v === undefined || v === "") continue;
      for (const item of [].concat(v)) q.append(k, item);
    }
    return q.toString();
  }

  // --- field-level messages ------------------------------------------------------------------
  function clearErrors(form) {
    $$(".field-error, .form-error, .form-ok", form).forEach((p) => { p.textContent = ""; });
    $$(".has-error", form).forEach((f) => f.classList.remove("has-error"));
  }

  function showFieldError(forms, field, message) {
    for (const form of forms) {
      const slot = form.querySelector(`[data-field="${CSS.escape(String(field))}"]`);
      if (slot) {
        slot.classList.add("has-error");
        const p = slot.querySelector(".field-error");
        p.textContent = p.textContent ? p.textContent + "\n" + message : message;
        return true;
      }
    }
    return false;
  }

  // 422: {"detail": [{"loc": ["body", field, ...], "msg": ...}]}; 409 and others: {"detail": "..."}.
  function showErrors(forms, response, conflictField) {
    const detail = response.body && response.body.detail;
    const formError = forms.map((f) => f.querySelector(".form-error")).find(Boolean);
    if (Array.isArray(detail)) {
      for (const d of detail) {
        const loc = d.loc || [];
        const field = loc.length > 1 ? loc[1] : loc[0];
        const msg = String(d.msg || "is invalid").replace(/^Value error, /, "");
        // One line each: an upload's file can have many problems (listed by row), all shown at once.
        if (!showFieldError(forms, field, msg)) formError.textContent += `${field}: ${msg}\n`;
      }
    } else if (response.status === 409 && conflictField && showFieldError(forms, conflictField, String(detail))) {
      // shown next to the field the conflict is about
    } else {
      formError.textContent = detail ? String(detail) : `the service answered ${response.status}`;
    }
  }

  // --- the plan (also kept in the URL's #fragment, so a view can be shared or reloaded) ------------
  function readPlan() {
    const compareCosts = el.compareCosts.value.split(/[\s,;]+/).filter(Boolean).map(Number);
    return {
      task: el.task.value, model: el.model.value, gold: Number(el.gold.value), weak: Number(el.weak.value),
      budget: Number(el.budget.value), compare: el.compare.checked, compareCosts,
    };
  }

  function validatePlan(plan) {
    clearErrors(el.planForm);
    let ok = true;
    for (const [field, value] of [["gold_cost", plan.gold], ["weak_cost", plan.weak], ["budget", plan.budget]]) {
      if (!(value > 0)) { showFieldError([el.planForm], field, "must be a positive number"); ok = false; }
    }
    if (plan.compare && (!plan.compareCosts.length || plan.compareCosts.some((c) => !(c > 0)))) {
      showFieldError([el.planForm], "compare_costs", "give positive prices separated by commas"); ok = false;
    }
    if (!plan.task) { showFieldError([el.planForm], "task", "pick a task"); ok = false; }
    return ok;
  }

  function hashParams() { return new URLSearchParams(location.hash.slice(1)); }

  function writeHash(plan) {
    const h = new URLSearchParams({ task: plan.task, model: plan.model, gold: plan.gold, weak: plan.weak, budget: plan.budget });
    if (plan.compare) h.set("compare", plan.compareCosts.join(","));
    if (state.recipe) h.set("recipe", state.recipe);
    if (state.allocation) h.set("allocation", state.allocation.id);
    history.replaceState(null, "", "#" + h.toString());
  }

  // --- tasks and models ------------------------------------------------------------------------
  async function loadTasks(selected) {
    const response = await api("/tasks");
    const registered = response.ok ? response.body : [];
    state.registered = new Set(registered.map((t) => t.name));
    const names = [...registered.map((t) => t.name), ...CONFIG.builtin_tasks.filter((n) => !registered.some((t) => t.name === n))];
    el.task.innerHTML = names.map((n) => `<option value="${escapeHtml(n)}">${escapeHtml(n)}</option>`).join("");
    el.task.value = names.includes(selected) ? selected : (registered[0] || {}).name || names[0] || "";
    const listed = el.listTask.value;
    el.listTask.innerHTML = `<option value="">all tasks</option>` + registered.map((t) => `<option value="${escapeHtml(t.name)}">${escapeHtml(t.name)}</option>`).join("");
    el.listTask.value = registered.some((t) => t.name === listed) ? listed : "";
  }

  async function loadTaskInfo(task) {
    el.taskInfo.textContent = "Loading the task…";
    state.chance = 0.5;
    // Reading never registers a task: picking a built-in one not registered yet is the write that
    // does (POST /tasks; asking again returns the same task).
    const register = async () => {
      el.taskInfo.textContent = "Registering the built-in task…";
      const form = new FormData();
      form.append("dataset", task);
      return api("/tasks", { method: "POST", body: form });
    };
    const builtin = CONFIG.builtin_tasks.includes(task);
    let response = builtin && !state.registered.has(task) ? await register() : await api(`/tasks/${encodeURIComponent(task)}`);
    if (response.status === 404 && builtin) response = await register();
    if (response.ok) state.registered.add(task);
    if (!response.ok) { el.taskInfo.textContent = ""; showErrors([el.planForm], response); return; }
    const t = response.body;
    state.chance = chanceOf(t);
    const labeler = t.weak_labels ? ` (${t.weak_labels.labeler})` : "";
    const weak = t.weak_label_accuracy == null ? "" : ` · weak labels${labeler} ${pct(t.weak_label_accuracy)} accurate`;
    // A warning (weak labels at chance, say) is worth reading before any money is spent.
    const warnings = (t.warnings || []).map((w) => `⚠ ${w}`).join(" ");
    const classes = classBalance(t);
    el.taskInfo.dataset.classes = t.test_class_rates ? String(t.test_class_rates.length) : "";
    el.taskInfo.textContent = `${count(t.n_pool)} pool · ${count(t.n_test)} test${classes ? ` · ${classes}` : ""}${weak}${warnings ? ` · ${warnings}` : ""}`;
  }

  // A task of more than two classes: its classes with their share of the test set, and chance (the
  // accuracy of always naming the commonest). "" for a binary task, described as before.
  const CLASSES_LISTED = 8;

  // The accuracy of always naming the test set's commonest class: where an empty chart's axis starts.
  function chanceOf(t) {
    if (t.test_class_rates && t.test_class_rates.length) return Math.max(...t.test_class_rates);
    if (t.test_positive_rate != null) return Math.max(t.test_positive_rate, 1 - t.test_positive_rate);
    return 0.5;
  }
  function classBalance(t) {
    const rates = t.test_class_rates;
    if (!rates || !rates.length) return "";
    const names = t.classes || rates.map((_, i) => String(i));
    const shown = names.slice(0, CLASSES_LISTED).map((n, i) => `${n} ${pct(rates[i])}`);
    const more = names.length - shown.length;
    return `${names.length} classes: ${shown.join(", ")}${more > 0 ? `, and ${more} more` : ""}; chance ${Math.max(...rates).toFixed(2)}`;
  }

  async function loadModels(task, selected) {
    // A task not registered yet has no trials (and asking would be a 404).
    const response = state.registered.has(task)
      ? await api(`/trials?${query({ task, status: "done", limit: 5000 })}`)
      : { ok: true, body: [] };
    const counts = {};
    for (const t of response.ok ? response.body : []) counts[t.model] = (counts[t.model] || 0) + 1;
    const stored = Object.keys(counts).sort((a, b) => counts[b] - counts[a]);
    const models = [...stored, ...CONFIG.models.filter((m) => !stored.includes(m))];
    el.model.innerHTML = `<option value="">all models</option>` + models.map((m) =>
      `<option value="${escapeHtml(m)}">${escapeHtml(m)}${counts[m] ? ` (${counts[m]} trials)` : ""}</option>`).join("");
    const fallback = stored.includes(DEFAULT_MODEL) || !stored.length ? DEFAULT_MODEL : stored[0];
    el.model.value = selected !== null && selected !== undefined && (selected === "" || models.includes(selected)) ? selected : fallback;
  }

  // --- the frontier ----------------------------------------------------------------------------
  function hoverText(p) {
    return [
      `<b>${escapeHtml(p.method)}</b> · ${escapeHtml(p.model)}`,
      `n_weak ${count(p.n_weak)} + n_gold ${count(p.n_gold)}: ${money(p.spend_weak)} + ${money(p.spend_gold)} = ${money(p.cost)}`,
      `weak share ${pct(p.weak_share_of_spend)} of spend, ${pct(p.weak_share_of_labels)} of labels`,
      `accuracy ${acc(p.accuracy)} (${intervalText(p.interval)}) over seeds ${p.seeds.join(", ")}`,
      p.interval ? `the interval covers ${escapeHtml(p.interval.covers.join(" and "))}${p.n_test ? `, ${count(p.n_test)} test examples` : ""}` : "",
      p.interval && p.interval.note ? `<i>${escapeHtml(p.interval.note)}</i>` : "",
      `selection ${acc(p.selection_accuracy)} · holdout ${acc(p.holdout_accuracy)}`,
      `trials #${p.trial_ids.join(", #")}`,
    ].filter(Boolean).join("<br>");
  }

  // Asymmetric error bars from each point's interval (none where a point has no interval).
  function errorBars(points) {
    const has = (p) => p.interval && p.interval.high >= p.interval.low;
    return {
      type: "data", symmetric: false, thickness: 1, width: 0, color: "#999",
      array: points.map((p) => (has(p) ? Math.max(0, p.interval.high - p.accuracy) : 0)),
      arrayminus: points.map((p) => (has(p) ? Math.max(0, p.accuracy - p.interval.low) : 0)),
    };
  }

  function isPhone() { return window.matchMedia("(max-width: 700px)").matches; }

  // Log-axis ticks at 1, 2 and 5 times a power of ten, labelled in dollars.
  function dollarTicks(lo, hi) {
    const ticks = [];
    for (let k = Math.floor(lo); k <= Math.ceil(hi); k++) {
      for (const m of [1, 2, 5]) {
        const v = m * 10 ** k;
        if (Math.log10(v) >= lo && Math.log10(v) <= hi) ticks.push(Number(v.toPrecision(3)));
      }
    }
    return { tickvals: ticks, ticktext: ticks.map(money) };
  }

  // `ys`: the accuracies drawn; with none, the axis spans the task's chance (a five-class task's is
  // 0.35, not 0.5) to perfect rather than plotly's -1 to 4.
  function baseLayout(xs, budget, ys = []) {
    const phone = isPhone();
    const positive = xs.filter((x) => x > 0).concat([budget]);
    let lo = Math.log10(Math.min(...positive)), hi = Math.log10(Math.max(...positive));
    if (hi - lo < 0.5) { lo -= 0.5; hi += 0.3; }  // nothing but the budget (an empty chart): a decade around it
    const pad = Math.max(0.15, (hi - lo) * 0.08);
    const range = [lo - pad, hi + pad];
    // The budget's label reads away from the nearer edge, so a phone's narrow plot never cuts it.
    const labelRight = (Math.log10(budget) - range[0]) / (range[1] - range[0]) > 0.6;
    return {
      autosize: true,
      margin: phone ? { l: 44, r: 8, t: 44, b: 40 } : { l: 56, r: 16, t: 30, b: 48 },
      xaxis: { type: "log", title: { text: "labeling cost" }, range, zeroline: false, ...dollarTicks(...range) },
      yaxis: { title: { text: "test accuracy" }, zeroline: false, ...(ys.length ? {} : { range: [Math.floor(10 * state.chance) / 10, 1] }) },
      legend: phone ? { orientation: "h", y: -0.22, x: 0, font: { size: 10 } } : { x: 1.02, xanchor: "left", y: 1, yanchor: "top" },
      hovermode: "closest",
      shapes: [{ type: "line", xref: "x", yref: "paper", x0: budget, x1: budget, y0: 0, y1: 1, line: { dash: "dash", color: "#444", width: 1.5 } }],
      annotations: [{
        x: Math.log10(budget), xref: "x", yref: "paper", y: 1, yanchor: "top", xanchor: labelRight ? "right" : "left", xshift: labelRight ? -3 : 3,
        text: `budget ${money(budget)}`, showarrow: false, font: { size: 11 }, bgcolor: "rgba(255,255,255,0.8)",
      }],
      font: { family: "system-ui, sans-serif", size: phone ? 11 : 12 },
      paper_bgcolor: "#fff", plot_bgcolor: "#fafafa",
    };
  }

  const plotConfig = () => ({
    responsive: true, displaylogo: false, displayModeBar: isPhone() ? false : "hover",
    modeBarButtonsToRemove: ["select2d", "lasso2d", "toImage"],  // PNG: the card's own button
  });

  function colorbar() {
    const phone = isPhone();
    return phone  // on a phone, a horizontal bar above the plot leaves it the whole width
      ? { orientation: "h", title: { text: "weak share of spend", side: "top" }, thickness: 8, len: 0.6, x: 1, xanchor: "right",
          y: 1.02, yanchor: "bottom", tickformat: ".0%", tickfont: { size: 9 } }
      : { title: { text: "weak share<br>of spend" }, thickness: 12, len: 0.5, x: 1.02, xanchor: "left", y: 0, yanchor: "bottom", tickformat: ".0%" };
  }

  function pointTrace(name, points, symbol, outline, showScale, extra = {}) {
    return {
      type: "scatter", mode: "markers", name, meta: "points", legendgroup: name,
      x: points.map((p) => p.cost), y: points.map((p) => p.accuracy),
      text: points.map(hoverText), hovertemplate: "%{text}<extra></extra>",
      error_y: errorBars(points),
      marker: {
        symbol, size: 11, color: points.map((p) => p.weak_share_of_spend), cmin: 0, cmax: 1,
        colorscale: "Viridis", showscale: showScale, colorbar: colorbar(), line: { color: outline, width: 1.5 },
      },
      ...extra,
    };
  }

  function lineTrace(name, points, color, extra = {}) {
    return {
      type: "scatter", mode: "lines", name, x: points.map((p) => p.cost), y: points.map((p) => p.accuracy),
      line: { color, width: 2, shape: "hv" }, hoverinfo: "skip", ...extra,
    };
  }

  // The plan's budget comes first (best_at_budget[0] is the recommendation); with `predict`, more
  // budgets around it so that the learning surface's prediction draws a line.
  function frontierBudgets(plan, predict) {
    if (!predict) return [plan.budget];
    const more = PREDICT_SCALES.map((k) => Number((plan.budget * k).toPrecision(4)));
    return [plan.budget, ...new Set(more.filter((b) => b > 0 && b !== plan.budget))];
  }

  async function fetchFrontier(plan, weakCost, predict = false) {
    return api(`/frontier/${encodeURIComponent(plan.task)}?${query({
      weak_cost: weakCost, gold_cost: plan.gold, model: plan.model, budgets: frontierBudgets(plan, predict),
      recipe: state.recipe, predict: predict ? "true" : "",
    })}`);
  }

  function frontierKey(p) { return `${p.method}|${p.model}|${p.n_weak}|${p.n_gold}`; }

  // A frontier lists at most max_points points (the rest lie under it); say how many there are.
  function pointsShown(body) {
    const total = body.points_total ?? body.points.length;
    return total > body.points.length
      ? `${body.points.length.toLocaleString("en")} of ${total.toLocaleString("en")} stored points shown (every one on a frontier or in the budget table, then the most accurate)`
      : `${total.toLocaleString("en")} stored points`;
  }

  // The surface's best allocation per budget, one per allocation, by cost, near the measured points.
  function predictedPoints(plan, body) {
    if (!body.predicted || !body.points.length) return [];
    const costs = body.points.map((p) => p.cost).filter((c) => c > 0);
    const lo = Math.min(...costs) / 1.25, hi = Math.max(...costs, plan.budget) * 1.25;
    const seen = new Map();
    for (const p of body.predicted) {
      if (p.cost > 0 && p.cost >= lo && p.cost <= hi) seen.set(`${p.method}|${p.n_weak}|${p.n_gold}`, p);
    }
    return [...seen.values()].sort((a, b) => a.cost - b.cost);
  }

  function predictedHover(p, level) {
    return [
      `<b>predicted</b> by the learning surface, not measured`,
      `${escapeHtml(p.method)}: n_weak ${count(p.n_weak)} + n_gold ${count(p.n_gold)} = ${money(p.cost)}`,
      `accuracy ${acc(p.accuracy)} (${levelPct(level)} band ${acc(p.low)}–${acc(p.high)}, the mean over seeds)`,
      p.in_support ? "within the measured points" : "<b>outside the measured points</b>: an extrapolation",
    ].join("<br>");
  }

  // A dashed line with its band (low to high), markers hollow where the prediction leaves the evidence.
  function predictedTraces(points, level) {
    const x = points.map((p) => p.cost);
    const common = { type: "scatter", x, legendgroup: "predicted", meta: "predicted-band", hoverinfo: "skip", showlegend: false };
    return [
      { ...common, name: "predicted low", mode: "lines", y: points.map((p) => p.low), line: { width: 0, color: PREDICTED_COLOR } },
      { ...common, name: "predicted band", mode: "lines", y: points.map((p) => p.high), line: { width: 0, color: PREDICTED_COLOR },
        fill: "tonexty", fillcolor: "rgba(194, 65, 12, 0.13)" },
      {
        type: "scatter", mode: "lines+markers", name: PREDICTED_NAME, meta: "predicted", legendgroup: "predicted",
        x, y: points.map((p) => p.accuracy), text: points.map((p) => predictedHover(p, level)), hovertemplate: "%{text}<extra></extra>",
        line: { color: PREDICTED_COLOR, width: 2, dash: "dash" },
        marker: {
          size: 7, color: PREDICTED_COLOR,  // an open symbol is drawn in this color, unfilled
          symbol: points.map((p) => (p.in_support ? "circle" : "circle-open")), line: { color: PREDICTED_COLOR, width: 1.5 },
        },
        customdata: points.map((p) => (p.in_support ? "in support" : "outside support")),
      },
    ];
  }

  function surfaceSummary(body, predicted) {
    if (!body.surfaces) return "";
    const fitted = body.surfaces.filter((s) => s.model);
    if (!fitted.length || !predicted.length) {
      const why = body.surfaces.map((s) => `${s.method}: ${s.reason}`).join("; ");
      return why ? ` No predicted line: ${why}.` : "";
    }
    const fits = fitted.map((s) => `${s.method} (${s.n_points} points, leave-one-out error ${acc(s.loo.rmse)})`).join(", ");
    const outside = predicted.some((p) => !p.in_support) ? " Hollow markers lie outside the measured points." : "";
    return ` Dashed: the learning surface's predicted best, with its ${levelPct(body.level)} band, from ${fits}; a prediction, not a measurement.${outside}`;
  }

  // The points the allocation on screen has asked for and not measured yet (queued or training), at
  // the plan's prices: hollow markers along the foot of the measured ones, since they have no accuracy yet.
  function pendingPoints(plan, body) {
    const a = state.allocation;
    if (!a || a.status === "done" || a.status === "failed" || !requestMatchesPlan(plan, a)) return [];
    const measured = body.points.map((p) => p.accuracy);
    const foot = measured.length ? Math.min(...measured) - 0.02 : state.chance + 0.05;
    const running = new Map((a.progress.running || []).map((r) => [`${r.method}|${r.n_weak}|${r.n_gold}`, r]));
    const points = new Map();
    for (const t of a.trials || []) {
      if (t.status !== "queued" && t.status !== "running") continue;
      const key = `${t.method}|${t.n_weak}|${t.n_gold}`;
      const point = points.get(key) || { method: t.method, n_weak: t.n_weak, n_gold: t.n_gold, seeds: [], running: running.get(key),
        cost: t.n_weak * plan.weak + t.n_gold * plan.gold, accuracy: foot };
      point.seeds.push(t.seed);
      points.set(key, point);
    }
    return [...points.values()].filter((p) => p.cost > 0).sort((x, y) => x.cost - y.cost);
  }

  function pendingTrace(points) {
    return {
      type: "scatter", mode: "markers", name: PENDING_NAME, meta: "pending",
      x: points.map((p) => p.cost), y: points.map((p) => p.accuracy),
      text: points.map((p) => [
        `<b>pending</b>: ${escapeHtml(p.method)}, n_weak ${count(p.n_weak)} + n_gold ${count(p.n_gold)} = ${money(p.cost)}`,
        p.running ? `training now: ${runningText(p.running)}` : `queued (seed${p.seeds.length === 1 ? "" : "s"} ${p.seeds.join(", ")})`,
        "not measured yet: drawn at the foot of the chart",
      ].join("<br>")),
      hovertemplate: "%{text}<extra></extra>",
      marker: { symbol: "circle-open", size: 12, color: "#555", line: { width: 2, color: "#555" } },
    };
  }

  function drawSingle(plan, body, rec) {
    const methods = Object.keys(body.per_method);
    const byMethod = (m) => body.points.filter((p) => p.method === m);
    const traces = methods.map((m, i) => pointTrace(m, byMethod(m), SYMBOLS[m] || "cross", METHOD_COLORS[m] || "#333", i === 0));
    methods.forEach((m) => traces.push(lineTrace(`${m} frontier`, body.per_method[m], METHOD_COLORS[m] || "#333",
      { legendgroup: m, showlegend: false, line: { color: METHOD_COLORS[m] || "#333", width: 1, dash: "dot", shape: "hv" } })));
    traces.push(lineTrace("Pareto frontier", body.overall, "#111"));
    const predicted = predictedPoints(plan, body);
    if (predicted.length) traces.push(...predictedTraces(predicted, body.level));
    el.chart.dataset.predicted = String(predicted.length);
    const pending = pendingPoints(plan, body);
    if (pending.length) traces.push(pendingTrace(pending));
    el.chart.dataset.pending = String(pending.length);
    const layout = baseLayout(body.points.map((p) => p.cost).concat(predicted.map((p) => p.cost), pending.map((p) => p.cost)), plan.budget,
      body.points.map((p) => p.accuracy));
    if (rec) {
      const [lo, hi] = layout.xaxis.range;
      const left = (Math.log10(rec.cost) - lo) / (hi - lo) < 0.5;  // point the label inwards
      layout.annotations.push({ x: Math.log10(rec.cost), y: rec.accuracy, text: "recommended", arrowhead: 2, ax: left ? 44 : -44, ay: 36, font: { size: 11 }, bgcolor: "rgba(255,255,255,0.8)" });
    }
    const frontier = new Set(body.overall.map(frontierKey));
    state.rows = body.points.map((p) => tableRow(plan, body, p, plan.weak, frontier.has(frontierKey(p))));
    el.summary.textContent = body.points.length
      ? `${pointsShown(body)} (${methods.length} method${methods.length === 1 ? "" : "s"}) of recipe ${body.recipe}, ${body.overall.length} on the Pareto frontier, at weak ${money(plan.weak)} / gold ${money(plan.gold)}. Error bars: ${levelPct(body.level)} intervals over test examples and training seeds. ${isPhone() ? "Tap" : "Hover over"} a point for its trials.${surfaceSummary(body, predicted)}`
      : "No stored trials for this task and model yet: run an allocation below.";
    return Plotly.react(el.chart, traces, layout, plotConfig()).then(() => body.points.length);
  }

  function tableRow(plan, body, p, weakCost, onFrontier) {
    const iv = p.interval || {};
    return {
      ...p, task: plan.task, recipe: body.recipe ?? p.recipe, weak_cost: weakCost, gold_cost: plan.gold, on_frontier: onFrontier,
      interval_low: iv.low ?? "", interval_high: iv.high ?? "", interval_level: iv.level ?? "", n_test: p.n_test ?? "",
    };
  }

  function drawCompare(plan, bodies) {
    const traces = [];
    el.chart.dataset.predicted = "0";
    el.chart.dataset.pending = "0";
    state.rows = [];
    bodies.forEach(({ cost, body }, i) => {
      const color = COMPARE_COLORS[i % COMPARE_COLORS.length];
      const name = `weak ${money(cost)}`;
      traces.push(pointTrace(name, body.overall, COMPARE_SYMBOLS[i % COMPARE_SYMBOLS.length], color, i === 0, { mode: "lines+markers", line: { color, width: 2, shape: "hv" } }));
      body.overall.forEach((p) => state.rows.push(tableRow(plan, body, p, cost, true)));
    });
    const xs = bodies.flatMap(({ body }) => body.overall.map((p) => p.cost));
    const layout = baseLayout(xs.length ? xs : [plan.budget], plan.budget, bodies.flatMap(({ body }) => body.overall.map((p) => p.accuracy)));
    el.summary.textContent = `The Pareto frontier at each weak label price (gold ${money(plan.gold)}); markers colored by the weak share of spend.`;
    el.compareSummary.innerHTML = compareTable(plan, bodies);
    return Plotly.react(el.chart, traces, layout, plotConfig()).then(() => xs.length);
  }

  function compareTable(plan, bodies) {
    const cells = bodies.map(({ cost, body }) => ({ cost, best: body.best_at_budget[0] && body.best_at_budget[0].best }));
    const row = (label, f) => `<tr><th scope="row">${label}</th>${cells.map((c) => `<td>${c.best ? f(c.best) : "—"}</td>`).join("")}</tr>`;
    return `<table class="compare" id="compare-table"><caption>Best stored allocation within ${money(plan.budget)}</caption>
      <thead><tr><th></th>${cells.map((c) => `<th scope="col" data-weak-cost="${c.cost}">weak ${money(c.cost)}</th>`).join("")}</tr></thead>
      <tbody>${row("Buy gold", (b) => `${count(b.n_gold)} (${money(b.spend_gold)})`)}${row("Buy weak", (b) => `${count(b.n_weak)} (${money(b.spend_weak)})`)}
      ${row("Method", (b) => escapeHtml(b.method))}${row("Expected accuracy", (b) => `${acc(b.accuracy)} <span class="hint">(${intervalText(b.interval)})</span>`)}
      ${row("Regime", (b) => b.regime)}</tbody></table>`;
  }

  function renderTable() {
    const level = state.rows.length && state.rows[0].interval ? state.rows[0].interval.level : 0.9;
    const head = ["weak $", "method", "n_weak", "n_gold", "cost", "weak share", "accuracy", `${levelPct(level)} interval`, "holdout", "seeds", "frontier"];
    el.table.tHead.innerHTML = `<tr>${head.map((h) => `<th scope="col">${h}</th>`).join("")}</tr>`;
    el.table.tBodies[0].innerHTML = state.rows.map((p) => `<tr>
      <td>${money(p.weak_cost)}</td><td>${escapeHtml(p.method)}</td><td>${count(p.n_weak)}</td><td>${count(p.n_gold)}</td>
      <td>${money(p.cost)}</td><td>${pct(p.weak_share_of_spend)}</td><td>${acc(p.accuracy)}</td><td>${span(p.interval) || "—"}</td>
      <td>${acc(p.holdout_accuracy)}</td><td>${p.seeds.join(" ")}</td><td>${p.on_frontier ? "✓" : ""}</td></tr>`).join("");
    el.tableCount.textContent = state.rows.length;
  }

  // --- the recommendation ----------------------------------------------------------------------
  function allocationMatches(plan, allocation) {
    return Boolean(allocation && allocation.status === "done" && allocation.recommendation && requestMatchesPlan(plan, allocation));
  }

  // Whether the allocation was asked for the plan on screen (task, model, prices, budget), whatever its state.
  function requestMatchesPlan(plan, allocation) {
    if (!allocation) return false;
    const r = allocation.request;
    const close = (a, b) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b));
    return allocation.task === plan.task && (!plan.model || r.model === plan.model) &&
      close(r.weak_cost, plan.weak) && close(r.gold_cost, plan.gold) && close(r.budget, plan.budget);
  }

  function setRec(name, text, value) {
    const node = $(`[data-rec="${name}"]`, el.recCard);
    node.textContent = text;
    if (value !== undefined) node.dataset.value = value;
    return node;
  }

  // Shows or hides a fact of the card (its <dt> too, when it has one).
  function showRec(name, shown) {
    const node = $(`[data-rec="${name}"]`, el.recCard);
    node.hidden = !shown;
    const label = $(`[data-rec-label="${name}"]`, el.recCard);
    if (label) label.hidden = !shown;
  }

  function renderWarnings(list, warnings) {
    list.innerHTML = warnings.map((w) =>
      `<li class="warning" data-code="${escapeHtml(w.code)}"><span class="warning-code">${escapeHtml(w.code.replace(/_/g, " "))}</span> ${escapeHtml(w.message)}</li>`).join("");
    list.hidden = !warnings.length;
  }

  // The interval of the expected accuracy (whole test set); a recommendation stored before
  // intervals existed shows its seed sd, if any.
  function renderInterval(rec) {
    const own = rec.expected_accuracy_interval;
    const node = $('[data-rec="interval"]', el.recCard);
    node.dataset.kind = own ? "expected" : "none";
    node.dataset.low = own ? own.low : "";
    node.dataset.high = own ? own.high : "";
    node.dataset.level = own ? own.level : "";
    // the range itself never breaks at its dash
    if (own) node.innerHTML = `(${span(own) ? `${levelPct(own.level)} interval <span class="range">${span(own)}</span>` : intervalText(own)})`;
    else node.textContent = rec.expected_accuracy_spread > 0 ? `± ${acc(rec.expected_accuracy_spread)} (seed sd)` : "";
    const n = own ? own.n_seeds : rec.seeds.length;
    setRec("seeds", `${own ? "whole test set, " : ""}${n} seed${n === 1 ? "" : "s"}`);
  }

  // "tie: 3 allocations cannot be told apart", and whether the cheapest of them is the one recommended.
  function tieText(rec) {
    const ties = rec.ties || [];
    const best = rec.best || rec.best_on_selection;
    const costs = ties.map((t) => t.cost).concat(best ? [best.cost] : []);
    const cheapest = costs.every((c) => rec.cost <= c + 1e-9);
    return `tie: ${ties.length + 1} allocations cannot be told apart; ${cheapest ? "the cheapest is recommended" : "more seeds would separate them"}`;
  }

  function comparisonText(ref) {
    const d = ref.best_minus_it;
    const what = `${escapeHtml(ref.method)}, ${count(ref.n_gold)} gold + ${count(ref.n_weak)} weak (${money(ref.cost)})`;
    if (!d) return what;
    const verdict = d.tie ? "a tie: the interval holds 0" : "the best is ahead";
    return `${what}: best − it ${signed(d.difference)} (${levelPct(d.level)} interval ${signed(d.low)} to ${signed(d.high)}), ${verdict}`;
  }

  function renderRecommendation(plan, rec, source) {
    el.recCard.dataset.source = source.kind;
    el.recCard.dataset.allocationId = source.allocationId || "";
    setRec("source", source.text);
    el.rec.hidden = !rec;
    if (!rec) return;
    setRec("n_gold", count(rec.n_gold), rec.n_gold);
    setRec("n_weak", count(rec.n_weak), rec.n_weak);
    setRec("spend_gold", money(rec.spend_gold), rec.spend_gold);
    setRec("spend_weak", money(rec.spend_weak), rec.spend_weak);
    setRec("cost", money(rec.cost), rec.cost);
    setRec("method", rec.method, rec.method);
    setRec("expected_accuracy", acc(rec.expected_accuracy), rec.expected_accuracy);
    renderInterval(rec);
    setRec("regime", rec.regime, rec.regime);
    const runnerUp = rec.runner_up;
    setRec("runner_up", runnerUp ? comparisonText(runnerUp) : "", runnerUp ? runnerUp.method : "");
    showRec("runner_up", Boolean(runnerUp));
    const n = (rec.ties || []).length + 1;
    setRec("tie", rec.tie ? tieText(rec) : "", rec.tie ? n : "");
    showRec("tie", Boolean(rec.tie));
    const unspent = rec.unspent ?? null;
    setRec("unspent", unspent > 1e-9 ? `${money(unspent)} of the ${money(plan.budget)} budget left unspent` : "", unspent ?? "");
    showRec("unspent", unspent > 1e-9);
    renderWarnings(el.recWarnings, rec.warnings || []);
  }

  function nextStepText(step, kind) {
    if (!step || step.gain_per_dollar === null) return `More ${kind} labels: not covered by the stored trials — ${step ? step.reason : "no base"}.`;
    const extra = kind === "weak" ? `${count(step.extra_weak)} more weak` : `${count(step.extra_gold)} more gold`;
    const also = kind === "weak" && step.extra_gold ? ` and ${count(step.extra_gold)} gold` : kind === "gold" && step.extra_weak ? ` and ${count(step.extra_weak)} weak` : "";
    const noise = Math.abs(step.accuracy_gain) <= step.noise ? " (within the seed spread)" : "";
    return `${extra}${also} labels (+${money(step.extra_spend)}): accuracy ${acc(step.point.accuracy)}, ${pts(step.accuracy_gain)}` +
      ` — ${perDollar(step.gain_per_dollar)}${noise}.`;
  }

  async function renderNextDollars(plan, rec, seq) {
    const items = { weak: $('[data-direction="weak"]', el.rec), gold: $('[data-direction="gold"]', el.rec) };
    const verdict = $("#next-verdict");
    items.weak.textContent = items.gold.textContent = "…";
    verdict.textContent = "";
    const response = await api(`/frontier/${encodeURIComponent(plan.task)}/marginal?${query({
      weak_cost: plan.weak, gold_cost: plan.gold, budget: plan.budget, model: rec.model,
      method: rec.method, n_weak: rec.n_weak, n_gold: rec.n_gold, recipe: state.shownRecipe,
    })}`);
    if (seq !== state.seq) return;
    if (!response.ok) { items.weak.textContent = items.gold.textContent = ""; verdict.textContent = "Could not read the marginal gains."; return; }
    const m = response.body;
    for (const kind of ["weak", "gold"]) {
      const step = kind === "weak" ? m.more_weak : m.more_gold;
      items[kind].textContent = nextStepText(step, kind);
      items[kind].dataset.gainPerDollar = step && step.gain_per_dollar !== null ? step.gain_per_dollar : "";
      items[kind].classList.toggle("unknown", !step || step.gain_per_dollar === null);
    }
    const unknown = [m.more_weak, m.more_gold].some((step) => !step || step.gain_per_dollar === null);
    verdict.textContent = m.better ? `The next dollars do more on ${m.better} labels.`
      : m.reason || (unknown ? "An allocation at a larger budget stores the trials that answer this." : "");
    const surface = $("#next-surface");
    const f = m.from_surface;
    if (f && !f.reason && f.weak && f.gold) {
      const side = (x) => `${perDollar(x.gain_per_dollar)} (sd ${Number(Math.abs(100 * x.sd).toPrecision(2))})`;
      const said = f.better === "cannot tell" ? "it cannot tell which does more" : `more on ${f.better} labels`;
      surface.textContent = `The learning surface predicts, for ${money(f.step_dollars)} more: weak ${side(f.weak)}, gold ${side(f.gold)}: ${said}${f.in_support ? "" : " (outside the measured points)"}.`;
    } else {
      surface.textContent = f && f.reason ? `Learning surface: ${f.reason}.` : "";
    }
  }

  // --- refresh: frontier, table and recommendation for the plan --------------------------------
  async function refresh() {
    const plan = readPlan();
    if (!validatePlan(plan)) return;
    const seq = ++state.seq;
    state.plan = plan;
    writeHash(plan);
    el.chart.dataset.ready = "";
    el.compareSummary.hidden = !plan.compare;
    const costs = plan.compare ? [plan.weak, ...plan.compareCosts] : [plan.weak];
    const ask = () => Promise.all(costs.map((c) => fetchFrontier(plan, c, !plan.compare)));
    let responses = await ask();
    if (seq !== state.seq) return;
    let dropped = null;
    if (state.recipe && responses.some(isRecipeError)) {  // not stored for this task or model: the default
      dropped = state.recipe;
      state.recipe = "";
      responses = await ask();
      if (seq !== state.seq) return;
    }
    const follow = state.followAllocation && requestMatchesPlan(plan, state.allocation) && state.allocation.id === state.followAllocation;
    if (follow && responses[0].ok) {  // an allocation opened or finished: show the recipe it trains with
      const label = allocationRecipe(state.allocation, responses[0].body.recipes);
      if (label && label !== responses[0].body.recipe) {
        state.recipe = label;
        responses = await ask();
        if (seq !== state.seq) return;  // the newer refresh follows it (the flag is still set)
      }
      state.followAllocation = null;
    }
    const failed = responses.find((r) => !r.ok);
    if (failed) { showErrors([el.planForm], failed); return; }
    const [response, ...compared] = responses;
    renderRecipes(response.body);
    if (dropped) showFieldError([el.planForm], "recipe", `no stored trial of recipe “${dropped}” here: showing ${response.body.recipe || "none"}`);
    writeHash(plan);
    const { rec, source } = chooseRecommendation(plan, response.body.best_at_budget[0].best);
    el.chart.dataset.points = plan.compare
      ? await drawCompare(plan, plan.compareCosts.map((cost, i) => ({ cost, body: compared[i].body })))
      : await drawSingle(plan, response.body, rec);
    renderTable();
    el.chart.dataset.ready = String(seq);
    renderRecommendation(plan, rec, source);
    if (rec) await renderNextDollars(plan, rec, seq);
    if (seq === state.seq) el.recCard.dataset.ready = String(seq);
  }

  function isRecipeError(response) {
    const detail = response.body && response.body.detail;
    return response.status === 422 && Array.isArray(detail) && detail.some((d) => (d.loc || []).includes("recipe"));
  }

  // The recipe selector lists the task's recipes (most trials first) and shows the one drawn.
  function renderRecipes(body) {
    state.recipes = body.recipes || [];
    state.shownRecipe = body.recipe || null;
    el.recipe.innerHTML = state.recipes.length
      ? state.recipes.map((r) => `<option value="${escapeHtml(r.recipe)}">${escapeHtml(r.recipe)} (${count(r.n_trials)} trial${r.n_trials === 1 ? "" : "s"})</option>`).join("")
      : `<option value="">no stored trials</option>`;
    el.recipe.value = body.recipe || "";
  }

  // The label the service gives an allocation's trials: its recipe, then the overrides that differ
  // from it ("fast max_steps_per_stage=3"). The request says the overrides it gave, not which of
  // them differ, so this picks the stored label its overrides explain best.
  function allocationRecipe(allocation, recipes) {
    const request = allocation.request || {};
    const name = request.recipe || "paper";
    const params = request.params || {};
    const same = (given, shown) => {
      if (given === null || given === undefined) return shown === "None";
      if (typeof given === "number" || !Number.isNaN(Number(shown))) return Number(given) === Number(shown);
      return String(given).toLowerCase() === shown.toLowerCase();
    };
    const fits = (label, exact) => {
      const [head, ...extra] = label.split(" ");
      return head === name && extra.every((kv) => {
        const i = kv.indexOf("=");
        const key = kv.slice(0, i);
        return i > 0 && Object.prototype.hasOwnProperty.call(params, key) && (!exact || same(params[key], kv.slice(i + 1)));
      });
    };
    const labels = (recipes || []).map((r) => r.recipe).sort((a, b) => b.split(" ").length - a.split(" ").length);
    return labels.find((l) => fits(l, true)) || labels.find((l) => fits(l, false)) || null;
  }

  // --- a target accuracy: GET /plan ------------------------------------------------------------
  async function planForTarget(event) {
    event.preventDefault();
    const form = el.targetForm;
    clearErrors(form);
    const plan = readPlan();
    if (!validatePlan(plan)) return;
    const target = Number($("#target-accuracy").value);
    if (!(target > 0 && target < 1)) { showFieldError([form], "target_accuracy", "give an accuracy between 0 and 1, e.g. 0.8"); return; }
    const button = $("#target-button");
    button.disabled = true;
    const answer = el.targetAnswer;
    try {
      const response = await api(`/plan/${encodeURIComponent(plan.task)}?${query({
        target_accuracy: target, weak_cost: plan.weak, gold_cost: plan.gold, model: plan.model, recipe: state.shownRecipe,
      })}`);
      answer.hidden = false;
      const text = $('[data-target="answer"]', answer);
      if (!response.ok) {
        answer.dataset.state = "error";
        text.textContent = "";
        renderWarnings($("#target-warnings"), []);
        showErrors([form], response);
        return;
      }
      const p = response.body;
      answer.dataset.state = p.method ? "reached" : "unreached";
      answer.dataset.nGold = p.n_gold ?? "";
      answer.dataset.nWeak = p.n_weak ?? "";
      if (p.method) {
        const chance = p.probability === null ? "" : ` ${pct(p.probability)} chance that its mean accuracy reaches ${target}.`;
        text.textContent = `Predicted: buy ${count(p.n_gold)} gold and ${count(p.n_weak)} weak labels (${p.method}, ${money(p.cost)}), ` +
          `accuracy ${acc(p.accuracy)} (${levelPct(p.level)} band ${acc(p.low)}–${acc(p.high)}).${chance} ` +
          `From the learning surface of recipe ${p.recipe}: a prediction, not a measurement.`;
      } else {
        text.textContent = `No allocation up to ${money(p.max_budget)} is predicted to reach ${target}: ${p.reason}.`;
      }
      renderWarnings($("#target-warnings"), (p.warnings || []).filter((w) => p.method || w.code !== "outside_evidence"));
    } finally {
      button.disabled = false;
    }
  }

  // What the allocation's search used, and whether more points could change its answer (its stop rule).
  function searchNote(search) {
    if (!search) return "";
    const used = `${search.points_asked} of ${search.points_cap} points, ${search.trials_used} trials${search.stopped_early ? ", stopped early" : ""}`;
    return ` Search: ${used}.${search.stop_rule ? ` Stop rule: ${search.stop_rule.says}.` : ""}`;
  }

  // The finished allocation's answer when it was asked for this plan, else the stored trials' best.
  function chooseRecommendation(plan, best) {
    if (allocationMatches(plan, state.allocation)) {
      const a = state.allocation;
      return {
        rec: a.recommendation,
        source: { kind: "allocation", allocationId: a.id,
          text: `From allocation ${a.id.slice(0, 8)} (done)${a.progress.points_asked ? `, over its ${a.progress.points_asked} points` : ""}: ${a.recommendation.accuracy_note || "chosen on the selection half of the test set; accuracy expected on the held-out half"}.${searchNote(a.recommendation.search)}` },
      };
    }
    if (best) {
      return {
        rec: {
          // as the service recommends: chosen and measured on the whole test set
          ...best, expected_accuracy: best.accuracy, expected_accuracy_spread: best.accuracy_spread,
          expected_accuracy_interval: best.interval,
          unspent: Math.round((plan.budget - best.cost) * 1e6) / 1e6,
          warnings: best.interval && best.interval.note ? [{ code: "few_seeds", message: best.interval.note }] : [],  // as the service says it
        },
        source: { kind: "stored", text: `From stored trials: the best within ${money(plan.budget)}, chosen and measured on the whole test set. Run an allocation to search this budget.` },
      };
    }
    return { rec: null, source: { kind: "none", text: `No stored trial costs ${money(plan.budget)} or less at these prices: run an allocation.` } };
  }

  // --- allocations -----------------------------------------------------------------------------
  function allocationRequest(plan) {
    const form = el.allocateForm;
    const errors = [];
    const seeds = $("#seeds").value.split(/[\s,;]+/).filter(Boolean).map(Number);
    if (!seeds.length || seeds.some((s) => !Number.isInteger(s))) errors.push(["seeds", "give whole numbers separated by commas"]);
    let params = {};
    try {
      params = JSON.parse($("#params").value.trim() || "{}");
      if (typeof params !== "object" || Array.isArray(params) || params === null) throw new Error("not an object");
    } catch (e) { errors.push(["params", `must be a JSON object (${e.message})`]); }
    const methods = $$('input[name="methods"]:checked', form).map((i) => i.value);
    const request = {
      task: plan.task, budget: plan.budget, weak_cost: plan.weak, gold_cost: plan.gold,
      max_trials: Number($("#max-trials").value), seeds, weak_labeler: $("#weak-labeler").value.trim() || "default", params,
    };
    if (plan.model) request.model = plan.model;
    if (methods.length) request.methods = methods;
    // The recipe on screen (its name; the overrides are the params above), so the search trains what is shown.
    const recipe = (state.shownRecipe || "").split(" ")[0];
    if (RECIPES.includes(recipe)) request.recipe = recipe;
    const label = $("#allocation-label").value.trim();
    if (label) request.label = label;
    return { request, errors };
  }

  async function startAllocation(event) {
    event.preventDefault();
    clearErrors(el.allocateForm);
    const plan = readPlan();
    if (!validatePlan(plan)) return;
    const { request, errors } = allocationRequest(plan);
    if (errors.length) { errors.forEach(([f, m]) => showFieldError([el.allocateForm], f, m)); return; }
    const button = $("#allocate-button");
    button.disabled = true;
    try {
      const response = await api("/allocate", { method: "POST", headers: { "content-type": "application/json", accept: "application/json" }, body: JSON.stringify(request) });
      if (!response.ok) { showErrors([el.allocateForm, el.planForm], response); errorsAtButton(response); return; }
      watch(response.body);
      loadAllocations();  // the new one heads the list
    } finally {
      button.disabled = false;
    }
  }

  // A refusal about a plan field (the budget, say) is shown at that field, in another card and maybe
  // off-screen, and the plan's next refresh clears it: say it here too, by the button, where it stays.
  function errorsAtButton(response) {
    const detail = response.body && response.body.detail;
    if (!Array.isArray(detail)) return;
    const slot = $(".form-error", el.allocateForm);
    for (const d of detail) {
      const loc = d.loc || [];
      const field = String(loc.length > 1 ? loc[1] : loc[0]);
      if (!el.planForm.querySelector(`[data-field="${CSS.escape(field)}"]`)) continue;  // shown at its own field here
      slot.textContent += `${field.replace(/_/g, " ")} (in the plan above): ${String(d.msg || "is invalid").replace(/^Value error, /, "")}\n`;
    }
    slot.scrollIntoView({ block: "nearest" });
  }

  // "seq_sft 10 gold + 100 weak, seed 0: weak stage, step 40/120, validation AUROC 0.812"
  function runningText(r) {
    const head = `${r.method} ${count(r.n_gold)} gold + ${count(r.n_weak)} weak, seed ${r.seed}`;
    const p = r.progress;
    if (!p) return `${head}: starting`;
    const auroc = p.val_auroc === null || p.val_auroc === undefined ? "" : `, validation AUROC ${acc(p.val_auroc)}`;
    return `${head}: ${p.stage} stage, step ${count(p.step)}/${count(p.total_steps)}${auroc}`;
  }

  const duration = (s) => (s < 90 ? `${Math.max(1, Math.round(s))} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`);

  // Time left, from the trials of this allocation already finished (their mean wall time) times the
  // trials still to run, less what the running ones have done; none finished: not guessed.
  function etaText(allocation) {
    const p = allocation.progress;
    if (allocation.status === "done" || allocation.status === "failed") return "";
    const walls = (allocation.trials || []).filter((t) => t.status === "done" && t.wall_s > 0).map((t) => t.wall_s);
    if (!walls.length) return "Time left: known once a trial has finished.";
    const mean = walls.reduce((a, b) => a + b, 0) / walls.length;
    const left = Math.max(0, p.trials_total - p.trials_done - p.trials_failed);
    const now = Date.now();
    const started = (allocation.trials || []).filter((t) => t.status === "running" && t.started_at)
      .map((t) => Math.min(mean, (now - Date.parse(t.started_at)) / 1000));
    const seconds = Math.max(0, mean * left - started.reduce((a, b) => a + b, 0));
    return `About ${duration(seconds)} left: ${left} trial${left === 1 ? "" : "s"} to go at ${duration(mean)} each (the mean of ${walls.length} finished).`;
  }

  function renderProgress(allocation) {
    const p = allocation.progress;
    el.progress.hidden = false;
    el.progress.dataset.status = allocation.status;
    el.progress.dataset.allocationId = allocation.id;
    const set = (name, text) => { $(`[data-progress="${name}"]`, el.progress).textContent = text; };
    set("status", allocation.status);
    $('[data-progress="status"]', el.progress).className = `badge ${allocation.status}`;
    const finished = p.trials_done + p.trials_failed;
    set("trials", `${p.trials_done}/${p.trials_total} trials done${p.trials_failed ? `, ${p.trials_failed} failed` : ""}`);
    el.progressBar.max = Math.max(1, p.trials_total);
    el.progressBar.value = Math.min(finished, p.trials_total);
    set("points", `${p.points_done}/${p.points_total} points of the search told (${p.points_asked} asked)`);
    const running = $('[data-progress="running"]', el.progress);
    running.innerHTML = (p.running || []).map((r) => `<li data-stage="${escapeHtml(r.progress ? r.progress.stage : "")}" data-step="${r.progress ? r.progress.step : ""}">Training ${escapeHtml(runningText(r))}</li>`).join("");
    set("eta", etaText(allocation));
    const b = p.best_so_far;
    set("best", b ? `Best so far: ${b.method}, ${count(b.n_gold)} gold + ${count(b.n_weak)} weak, selection accuracy ${acc(b.selection_accuracy)}` : "Best so far: none finished yet");
    set("id", allocation.error ? `Allocation ${allocation.id}: ${allocation.error}` : `Allocation ${allocation.id}`);
  }

  function watch(allocation, follow = true) {
    clearTimeout(state.pollTimer);
    const finished = allocation.status === "done";
    const before = state.allocation;
    const same = before && before.id === allocation.id;
    if (follow && finished && !(same && before.status === "done")) state.followAllocation = allocation.id;
    state.allocation = allocation;
    renderProgress(allocation);
    if (state.plan) writeHash(state.plan);
    if (allocation.status === "done" || allocation.status === "failed") {
      state.trialsFinished = -1;
      if (same && before.status !== allocation.status) recountAndRefresh();  // it just stored its trials
      else refresh();
      if (same && before.status !== allocation.status) loadAllocations();  // its row says so now
      return;
    }
    // Another allocation (its pending points), or a trial finished (a point measured): draw again.
    const finishedTrials = allocation.progress.trials_done + allocation.progress.trials_failed;
    if (!same) refresh();
    else if (finishedTrials !== state.trialsFinished) recountAndRefresh();
    state.trialsFinished = finishedTrials;
    state.pollTimer = setTimeout(async () => {
      const response = await api(`/allocations/${encodeURIComponent(allocation.id)}`);
      if (response.ok) watch(response.body);
      else state.pollTimer = setTimeout(() => watch(allocation), POLL_MS * 3);  // keep trying after a blip
    }, POLL_MS);
  }

  // Trials were stored: the model list's counts ("minilm-l6 (11 trials)") are read again, then the plan drawn.
  async function recountAndRefresh() {
    await loadModels(el.task.value, el.model.value);
    await refresh();
  }

  // --- uploads ---------------------------------------------------------------------------------
  // The "Format and columns" options an upload sends when given (blank: the service's defaults).
  const UPLOAD_OPTIONS = [["format", "#upload-format"], ["text_field", "#upload-text-field"], ["label_field", "#upload-label-field"],
    ["weak_field", "#upload-weak-field"], ["weak_score_field", "#upload-weak-score-field"], ["split", "#upload-split"]];
  const LEFT_OUT = {
    no_annotation: "no annotation", annotators_tied: "annotators tied", cancelled_annotations: "annotations cancelled",
    discarded_responses: "responses discarded", draft_responses: "responses still drafts",
  };

  // What an added task holds, for the message under the form.
  function uploadText(t) {
    const u = t.upload;
    const parts = [`Added ${t.name}: ${count(t.n_pool)} pool, ${count(t.n_test)} test examples.`];
    if (u && u.duplicates_dropped) {
      parts.push(`${count(u.rows_kept)} of ${count(u.rows_read)} rows kept: ${count(u.duplicates_dropped)} repeated an earlier row exactly.`);
    }
    const leftOut = Object.entries((u && u.left_out) || {}).filter(([, n]) => n > 0);
    if (leftOut.length) {
      const total = leftOut.reduce((a, [, n]) => a + n, 0);
      parts.push(`${count(total)} record${total === 1 ? "" : "s"} left out: ${leftOut.map(([why, n]) => `${count(n)} ${LEFT_OUT[why] || why.replace(/_/g, " ")}`).join(", ")}.`);
    }
    if (t.test_class_rates) parts.push(`${classBalance(t)}.`);
    else if (t.classes) parts.push(`Classes: ${t.classes.join(", ")}.`);
    return parts.join(" ");
  }

  async function upload(event) {
    event.preventDefault();
    const form = el.uploadForm;
    clearErrors(form);
    const data = new FormData();
    const dataset = $("#upload-dataset").value.trim();
    const file = $("#upload-file").files[0];
    if (dataset) data.append("dataset", dataset);
    if (file) {
      data.append("name", $("#upload-name").value.trim());
      data.append("file", file, file.name);
      for (const [field, selector] of UPLOAD_OPTIONS) {
        const value = $(selector).value.trim();
        if (value) data.append(field, value);
      }
    }
    const button = $("#upload-button");
    button.disabled = true;
    $(".form-ok", form).textContent = "Checking and storing the task…";
    try {
      const response = await api("/tasks", { method: "POST", body: data });
      $(".form-ok", form).textContent = "";
      if (!response.ok) {
        showErrors([form], response, "name");
        // A message about an option is shown where the option is: open its section.
        if ($("#upload-columns .has-error", form)) $("#upload-columns").open = true;
        return;
      }
      const t = response.body;
      $(".form-ok", form).textContent = uploadText(t);
      form.reset();
      await loadTasks(t.name);
      await onTaskChange();
    } finally {
      button.disabled = false;
    }
  }

  // --- exports ---------------------------------------------------------------------------------
  function download(filename, blob) {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = filename;
    document.body.appendChild(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }

  function exportName(ext) {
    const p = state.plan || readPlan();
    return `labelmix-${p.task}-${p.compare ? "compare" : `weak${p.weak}`}-gold${p.gold}.${ext}`;
  }

  function csvCell(v) {
    const s = Array.isArray(v) ? v.join(" ") : String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  }

  function exportCsv() {
    const lines = [CSV_COLUMNS.join(","), ...state.rows.map((r) => CSV_COLUMNS.map((c) => csvCell(r[c])).join(","))];
    download(exportName("csv"), new Blob([lines.join("\n") + "\n"], { type: "text/csv" }));
  }

  // What a chart read alone needs: the task, model and recipe, the prices and the budget.
  function exportTitle() {
    const p = state.plan || readPlan();
    const prices = p.compare ? `weak ${[p.weak, ...p.compareCosts].map(money).join(" / ")}` : `weak ${money(p.weak)}`;
    return `labelmix frontier · task ${p.task} · model ${p.model || "all"} · recipe ${state.shownRecipe || "—"}` +
      ` · ${prices}, gold ${money(p.gold)} per label · budget ${money(p.budget)}`;
  }

  async function exportPng() {
    const title = exportTitle();
    $("#export-png").dataset.title = title;
    // A copy of the figure with a title (the page's own chart keeps its room for the plot).
    const layout = { ...el.chart.layout, title: { text: escapeHtml(title), x: 0.02, xanchor: "left", font: { size: 15 } },
      margin: { ...(el.chart.layout.margin || {}), t: 80 }, legend: { x: 1.02, xanchor: "left", y: 1, yanchor: "top" }, width: 1200, height: 700 };
    const url = await Plotly.toImage({ data: el.chart.data, layout }, { format: "png", width: 1200, height: 700 });
    const bytes = Uint8Array.from(atob(url.split(",")[1]), (c) => c.charCodeAt(0));  // a data: URL, decoded here
    download(exportName("png"), new Blob([bytes], { type: "image/png" }));
  }

  // --- the allocations list: GET /allocations, newest first, a page at a time ---------------------
  function listFilters() {
    return { task: el.listTask.value, status: $("#list-status").value, label: $("#list-label").value.trim() };
  }

  function allocationRow(a) {
    const r = a.request || {};
    const rec = a.status === "done" ? a.recommendation : null;
    const created = a.created_at ? new Date(a.created_at).toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" }) : "—";
    const name = a.label ? escapeHtml(a.label) : `<span class="hint">${escapeHtml(a.id.slice(0, 8))}</span>`;
    return `<tr data-allocation-id="${escapeHtml(a.id)}" data-status="${escapeHtml(a.status)}">
      <td><button type="button" class="link" data-open="${escapeHtml(a.id)}" title="show it and restore its settings">${name}</button></td>
      <td>${escapeHtml(a.task)}</td><td>${r.budget === undefined ? "—" : money(r.budget)}</td>
      <td><span class="badge ${escapeHtml(a.status)}">${escapeHtml(a.status)}</span></td><td>${escapeHtml(created)}</td>
      <td data-best="${rec ? rec.expected_accuracy : ""}">${rec ? acc(rec.expected_accuracy) : "—"}</td></tr>`;
  }

  // `more`: the next page after the rows shown; else the first page for the filters.
  async function loadAllocations(more = false) {
    const seq = ++list.seq;
    clearErrors(el.listForm);
    const filters = listFilters();
    const response = await api(`/allocations?${query({ ...filters, limit: LIST_PAGE, cursor: more ? list.cursor : "" })}`);
    if (seq !== list.seq) return;  // the filters changed meanwhile: a newer answer is coming
    if (!response.ok) { showErrors([el.listForm], response); return; }
    const body = el.listTable.tBodies[0];
    if (!more) body.innerHTML = "";
    body.insertAdjacentHTML("beforeend", response.body.items.map(allocationRow).join(""));
    list.cursor = response.body.next_cursor;
    el.listTable.hidden = !body.rows.length;
    const empty = $("#allocations-empty");
    empty.hidden = Boolean(body.rows.length);
    empty.textContent = filters.task || filters.status || filters.label
      ? "No allocation matches these filters." : "No allocations yet: run one from “Run an allocation”.";
    $("#allocations-more").hidden = !list.cursor;
    el.listTable.dataset.ready = String(seq);
  }

  // The allocate form as the allocation asked: methods, points, seeds, weak labeler, parameters, label.
  function restoreAllocateForm(allocation) {
    const r = allocation.request || {};
    const methods = r.methods || [];
    $$('input[name="methods"]', el.allocateForm).forEach((i) => { i.checked = methods.includes(i.value); });
    $("#max-trials").value = r.max_trials ?? 8;
    $("#seeds").value = (r.seeds || [0, 1]).join(", ");
    $("#weak-labeler").value = r.weak_labeler || "default";
    $("#params").value = JSON.stringify(r.params || {});
    $("#allocation-label").value = allocation.label || "";
    $("#advanced").open = Boolean(Object.keys(r.params || {}).length) || (r.weak_labeler || "default") !== "default";
  }

  function restorePlan(request) {
    el.gold.value = request.gold_cost;
    el.weak.value = request.weak_cost;
    el.budget.value = request.budget;
    el.compare.checked = false;
  }

  // A row of the list: its result and progress, and the plan and form exactly as it was asked.
  async function openAllocation(id) {
    const response = await api(`/allocations/${encodeURIComponent(id)}`);  // now, not as listed
    if (!response.ok) { showErrors([el.listForm], response); return; }
    const allocation = response.body;
    restorePlan(allocation.request);
    restoreAllocateForm(allocation);
    clearErrors(el.allocateForm);
    state.recipe = "";  // refresh picks the allocation's own (followAllocation)
    if (el.task.value !== allocation.task) {
      await loadTasks(allocation.task);
      await loadTaskInfo(allocation.task);
    }
    await loadModels(allocation.task, allocation.request.model ?? "");
    state.allocation = null;  // shown afresh, even if it was on screen
    state.followAllocation = allocation.id;
    watch(allocation);
    el.recCard.scrollIntoView({ block: "start", behavior: "smooth" });
  }

  // --- start-up --------------------------------------------------------------------------------
  async function onTaskChange() {
    const task = el.task.value;
    state.recipe = "";  // another task: its own default recipe
    await Promise.all([loadTaskInfo(task), loadModels(task, el.model.value)]);
    await refresh();
  }

  async function init() {
    const h = hashParams();
    // A link to an allocation restores what it asked for: the form, and the plan where the link does not say it.
    let linked = null;
    if (h.get("allocation")) {
      const response = await api(`/allocations/${encodeURIComponent(h.get("allocation"))}`);
      if (response.ok) linked = response.body;
    }
    if (linked) { restorePlan(linked.request); restoreAllocateForm(linked); }
    if (h.has("gold")) el.gold.value = h.get("gold");
    if (h.has("weak")) el.weak.value = h.get("weak");
    if (h.has("budget")) el.budget.value = h.get("budget");
    if (h.has("compare")) { el.compare.checked = true; el.compareCosts.value = h.get("compare").split(",").join(", "); }
    state.recipe = h.get("recipe") || "";
    $("#dataset-names").innerHTML = CONFIG.datasets.map((d) => `<option value="${escapeHtml(d)}">`).join("");
    await loadTasks(h.get("task") || (linked && linked.task));
    const model = h.has("model") ? h.get("model") : linked ? linked.request.model ?? "" : null;
    await Promise.all([loadTaskInfo(el.task.value), loadModels(el.task.value, model)]);
    if (linked) {
      state.plan = readPlan();
      if (!h.has("recipe")) state.followAllocation = linked.id;
      watch(linked, !h.has("recipe"));  // draws the plan (once: a second refresh would race it)
    } else {
      await refresh();
    }
    loadAllocations();

    el.planForm.addEventListener("submit", (e) => { e.preventDefault(); refresh(); });
    el.task.addEventListener("change", onTaskChange);
    for (const input of [el.model, el.gold, el.weak, el.budget, el.compare, el.compareCosts]) input.addEventListener("change", refresh);
    el.allocateForm.addEventListener("submit", startAllocation);
    el.uploadForm.addEventListener("submit", upload);
    el.recipe.addEventListener("change", () => { state.recipe = el.recipe.value; state.followAllocation = null; refresh(); });
    el.targetForm.addEventListener("submit", planForTarget);
    $("#export-png").addEventListener("click", exportPng);
    $("#export-csv").addEventListener("click", exportCsv);
    el.listForm.addEventListener("submit", (e) => { e.preventDefault(); loadAllocations(); });
    el.listForm.addEventListener("change", () => loadAllocations());
    let typing = null;  // the label filter asks once the typing pauses, not at every key
    $("#list-label").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(() => loadAllocations(), 300); });
    $("#allocations-more").addEventListener("click", () => loadAllocations(true));
    el.listTable.addEventListener("click", (e) => {
      const button = e.target.closest("[data-open]");
      if (button) openAllocation(button.dataset.open);
    });
    window.matchMedia("(max-width: 700px)").addEventListener("change", refresh);
    document.body.dataset.ready = "1";
  }

  init();
})();
