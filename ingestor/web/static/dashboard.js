// The dashboard: polls the worker's JSON views and draws them with Chart.js (vendored).
//
// Every value drawn is a value of the JSON it comes from (labels too: dates and instants are
// formatted only in tick and tooltip callbacks), so the browser test can hold each chart to its
// report. What is drawn is exposed as `window.dashboard` (reports, charts, kpis, tables).
// One refresh at a time: the next starts `refresh` seconds after the last one ended, later
// when the worker was slow to answer (reports recompute over what ClickHouse holds).
"use strict";

(function () {
  // /dashboard/data: the charted reports in one answer, each what its /report/ view returns
  // (its "sources" say which), the usage ones from one read of the entries instead of four.
  const SOURCES = {
    data: "/dashboard/data",
    sessions: "/sessions/",
    stats: "/stats/",
  };

  // How many of the newest rows a chart shows (the JSON's last rows, in its order).
  const LAST = { days: 90, blocks: 48, hours: 72, sessions: 12 };
  const PALETTE = [
    "#3867d6", "#f7b731", "#20bf6b", "#eb3b5a", "#8854d0", "#0fb9b1", "#fa8231", "#4b6584",
    "#a5b1c2", "#2d98da", "#26de81", "#fc5c65",
  ];
  const TOTAL_COLOR = "#1d2433";

  const params = new URLSearchParams(window.location.search);
  const intervalMs = Math.max(0.5, Number(params.get("refresh")) || 5) * 1000;

  const state = {
    reports: {},
    charts: {},
    kpis: {},
    tables: {},
    errors: {},
    refreshes: 0,
    lastRefresh: null,
    intervalMs: intervalMs,
    sources: SOURCES,
    last: LAST,
  };
  window.dashboard = state;

  // ------------------------------------------------------------------ formatting

  const money = (v) => {
    if (v === null || v === undefined) return "–";
    const abs = Math.abs(v);
    const digits = abs >= 1000 ? 0 : abs >= 0.01 || abs === 0 ? 2 : 4;
    return "$" + v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  };
  // Budgets and amounts are exact in the JSON: cents when that is all there is, else every digit.
  const exactMoney = (v) =>
    v === null || v === undefined || Number(v.toFixed(2)) === v ? money(v) : `$${v}`;
  const compact = (v) =>
    v === null || v === undefined ? "–" : v.toLocaleString("en-US", { notation: "compact", maximumFractionDigits: 2 });
  const integer = (v) => (v === null || v === undefined ? "–" : v.toLocaleString("en-US"));
  const pct = (v) => (v === null || v === undefined ? "–" : `${v.toFixed(2)}%`);
  const ms = (v) => (v === null || v === undefined ? "–" : `${v.toLocaleString("en-US")} ms`);
  const day = (iso) => String(iso).slice(5, 10);
  const instant = (iso) => String(iso).slice(5, 16).replace("T", " ");

  // ------------------------------------------------------------------ series from reports

  const sum = (values) => values.reduce((a, b) => a + (b || 0), 0);
  const tokensOf = (b) => b.inputTokens + b.outputTokens + b.cacheCreationTokens + b.cacheReadTokens;

  function byModel(rows, valueOf) {
    const models = new Map();
    rows.forEach((row, i) => {
      for (const b of row.modelBreakdowns || []) {
        if (!models.has(b.modelName)) models.set(b.modelName, new Array(rows.length).fill(0));
        models.get(b.modelName)[i] = valueOf(b);
      }
    });
    return [...models.entries()].sort((a, b) => sum(b[1]) - sum(a[1]) || (a[0] < b[0] ? -1 : 1));
  }

  function stacked(rows, valueOf, total) {
    const labels = rows.map((r) => r.date);
    const datasets = byModel(rows, valueOf).map(([name, data], i) => bar(name, data, i));
    datasets.push(line("total", rows.map(total), TOTAL_COLOR));
    return { labels, datasets };
  }

  const BUILDERS = {
    "chart-daily-cost": ({ daily }) => stacked(rowsOf(daily, "daily").slice(-LAST.days), (b) => b.cost, (r) => r.totalCost),
    "chart-daily-tokens": ({ daily }) =>
      stacked(rowsOf(daily, "daily").slice(-LAST.days), tokensOf, (r) => r.totalTokens),
    "chart-projects": ({ projects }) => {
      const groups = (projects && projects.projects) || {};
      const dates = [...new Set(Object.values(groups).flat().map((r) => r.date))].sort().slice(-LAST.days);
      const names = Object.keys(groups).sort();
      const datasets = names.map((name, i) => {
        const cost = new Map(groups[name].map((r) => [r.date, r.totalCost]));
        return bar(name, dates.map((d) => (cost.has(d) ? cost.get(d) : 0)), i);
      });
      return { labels: dates, datasets };
    },
    "chart-machines": ({ machines }) => {
      const rows = (machines && machines.machines) || [];
      return {
        labels: rows.map((m) => m.machine),
        datasets: [bar("cost", rows.map((m) => m.totals.totalCost), 0)],
      };
    },
    "chart-blocks": ({ blocks }) => {
      const rows = rowsOf(blocks, "blocks").filter((b) => !b.isGap).slice(-LAST.blocks);
      return {
        labels: rows.map((b) => b.startTime),
        datasets: [
          bar("cost", rows.map((b) => b.costUSD), 0),
          line("tokens", rows.map((b) => b.totalTokens), PALETTE[1], "y1"),
        ],
      };
    },
    "chart-errors": ({ errors }) => {
      const rows = rowsOf(errors, "errors").slice(-LAST.hours);
      return {
        labels: rows.map((h) => h.hour),
        datasets: [
          bar("error rate %", rows.map((h) => h.errorRatePct), 3),
          line("requests", rows.map((h) => h.requests), PALETTE[7], "y1"),
        ],
      };
    },
    "chart-latency": ({ latency }) => {
      const rows = rowsOf(latency, "latency").slice(-LAST.hours);
      return {
        labels: rows.map((h) => h.hour),
        datasets: [
          line("p50", rows.map((h) => h.p50LatencyMs), PALETTE[2]),
          line("p90", rows.map((h) => h.p90LatencyMs), PALETTE[1]),
          line("p99", rows.map((h) => h.p99LatencyMs), PALETTE[3]),
        ],
      };
    },
    "chart-ledger-trend": ({ ledger }) => {
      const rows = rowsOf(ledger, "trend").slice(-LAST.days);
      return {
        labels: rows.map((t) => t.date),
        datasets: [
          bar("vendor cost", rows.map((t) => t.vendorCostUsd), 7),
          bar("gross margin", rows.map((t) => t.grossMarginUsd), 2),
          line("margin ratio", rows.map((t) => t.marginRatio), PALETTE[4], "y1"),
        ],
      };
    },
    "chart-ledger-providers": ({ ledger }) => {
      const rows = rowsOf(ledger, "providers");
      return {
        labels: rows.map((p) => `${p.providerId} · ${p.modelId}`),
        datasets: [
          bar("vendor cost", rows.map((p) => p.vendorCostUsd), 7),
          bar("gross margin", rows.map((p) => p.grossMarginUsd), 2),
        ],
      };
    },
  };

  const rowsOf = (report, key) => (report && Array.isArray(report[key]) ? report[key] : []);

  function bar(label, data, colorIndex) {
    const color = PALETTE[colorIndex % PALETTE.length];
    return {
      type: "bar", label, data, backgroundColor: color, borderColor: color, stack: "s", order: 2,
      maxBarThickness: 56,
    };
  }

  function line(label, data, color, axis) {
    return {
      type: "line", label, data, borderColor: color, backgroundColor: color, yAxisID: axis || "y",
      pointRadius: 2, borderWidth: 2, spanGaps: true, order: 1, cubicInterpolationMode: "monotone",
    };
  }

  // ------------------------------------------------------------------ chart options

  const AXES = {
    "chart-daily-cost": { x: day, y: money },
    "chart-daily-tokens": { x: day, y: compact },
    "chart-projects": { x: day, y: money, stacked: true },
    "chart-machines": { x: money, y: null, horizontal: true },
    "chart-blocks": { x: instant, y: money, y1: compact },
    "chart-errors": { x: instant, y: pct, y1: compact },
    "chart-latency": { x: instant, y: ms, unstacked: true },
    "chart-ledger-trend": { x: day, y: money, y1: (v) => `${Math.round(v * 100)}%` },
    "chart-ledger-providers": { x: money, y: null, horizontal: true },
  };

  function options(id) {
    const axes = AXES[id];
    const stack = !axes.unstacked;
    const scales = {};
    if (axes.horizontal) {
      scales.x = { stacked: stack, beginAtZero: true, ticks: { callback: (v) => axes.x(v) } };
      scales.y = { stacked: stack, ticks: { autoSkip: false } };
    } else {
      scales.x = {
        stacked: stack,
        grid: { display: false },
        ticks: { maxRotation: 0, autoSkipPadding: 12, callback(v) { return axes.x(this.getLabelForValue(v)); } },
      };
      scales.y = { stacked: stack, beginAtZero: true, ticks: { callback: (v) => axes.y(v) } };
      if (axes.y1) {
        scales.y1 = { position: "right", beginAtZero: true, grid: { display: false }, ticks: { callback: (v) => axes.y1(v) } };
      }
    }
    const format = (ctx) => {
      const axisId = axes.horizontal ? "x" : ctx.dataset.yAxisID || "y";
      const f = axisId === "y1" ? axes.y1 : axes.horizontal ? axes.x : axes.y;
      return `${ctx.dataset.label}: ${f(ctx.raw)}`;
    };
    return {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      indexAxis: axes.horizontal ? "y" : "x",
      interaction: { mode: "index", intersect: false },
      scales,
      plugins: {
        legend: { position: "bottom", labels: { boxWidth: 10, boxHeight: 10, font: { size: 11 } } },
        tooltip: {
          callbacks: {
            title: (items) => (items.length && !axes.horizontal ? axes.x(items[0].label) : items.length ? items[0].label : ""),
            label: format,
          },
        },
      },
    };
  }

  // ------------------------------------------------------------------ drawing

  const charts = {};

  function draw(id) {
    const canvas = document.getElementById(id);
    const built = BUILDERS[id](state.reports);
    let chart = charts[id];
    if (!chart) {
      chart = charts[id] = new window.Chart(canvas, { type: "bar", data: built, options: options(id) });
    } else {
      chart.data.labels = built.labels;
      chart.data.datasets = built.datasets;
      chart.update("none");
    }
    const empty = built.labels.length === 0;
    canvas.parentElement.dataset.empty = empty ? "1" : "0";
    let note = canvas.parentElement.querySelector(".empty");
    if (empty && !note) {
      note = document.createElement("div");
      note.className = "empty";
      canvas.parentElement.appendChild(note);
    }
    if (note) note.textContent = empty ? "no data yet" : "";
    // What is drawn, read back from the chart itself.
    state.charts[id] = {
      labels: [...chart.data.labels],
      series: Object.fromEntries(chart.data.datasets.map((d) => [d.label, [...d.data]])),
    };
  }

  function setKpi(name, value, text, note) {
    state.kpis[name] = value;
    const el = document.querySelector(`[data-kpi="${name}"]`);
    el.querySelector("b").textContent = text;
    el.querySelector("b").title = value === null || value === undefined ? "" : String(value);
    if (note !== undefined) el.querySelector("small").textContent = note;
  }

  function kpis() {
    const r = state.reports;
    const totals = (r.daily && r.daily.totals) || {};
    setKpi("totalCost", totals.totalCost ?? null, money(totals.totalCost));
    setKpi("totalTokens", totals.totalTokens ?? null, compact(totals.totalTokens));
    const sessions = r.sessions ? r.sessions.sessions.length : null;
    setKpi("sessions", sessions, integer(sessions));
    const active = rowsOf(r.blocks, "blocks").find((b) => b.isActive && b.burnRate);
    setKpi(
      "burnRate",
      active ? active.burnRate.costPerHour : null,
      active ? `${money(active.burnRate.costPerHour)}/h` : "–",
      active ? `${compact(active.burnRate.tokensPerMinute)} tokens/min, active block` : "no active 5-hour block",
    );
    document.getElementById("blocks-note").textContent = active
      ? `active block: ${money(active.burnRate.costPerHour)}/h` +
        (active.projection ? `, projected ${money(active.projection.totalCost)}` : "")
      : "cost and tokens per block";
    const errorTotals = (r.errors && r.errors.totals) || {};
    setKpi("errorRate", errorTotals.errorRatePct ?? null, pct(errorTotals.errorRatePct), `${integer(errorTotals.requests ?? 0)} prompt calls`);
    const lat = (r.latency && r.latency.totals) || {};
    setKpi("p99", lat.p99LatencyMs ?? null, ms(lat.p99LatencyMs), `p50 ${ms(lat.p50LatencyMs)}, p90 ${ms(lat.p90LatencyMs)}`);
    const gross = (r.ledger && r.ledger.grossMargin) || {};
    setKpi(
      "margin",
      gross.grossMarginUsd ?? null,
      money(gross.grossMarginUsd),
      gross.marginRatio === null || gross.marginRatio === undefined
        ? "ledger: no requests"
        : `${(gross.marginRatio * 100).toFixed(2)}% of ${money(gross.revenueUsd)} revenue`,
    );
    const alerts = r.alerts && r.alerts.totals ? r.alerts.totals.alerts : null;
    setKpi("alerts", alerts, integer(alerts));
    document.querySelector('[data-kpi="alerts"]').classList.toggle("bad", Boolean(alerts));
  }

  function cell(text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  function table(id, rows, columns) {
    const body = document.querySelector(`#${id} tbody`);
    body.replaceChildren(
      ...(rows.length
        ? rows.map((row) => {
            const tr = document.createElement("tr");
            for (const [value, format, cls] of columns) tr.appendChild(cell(format(value(row)), cls));
            return tr;
          })
        : [emptyRow(columns.length)]),
    );
  }

  function emptyRow(span) {
    const tr = document.createElement("tr");
    const td = cell("none yet", "empty");
    td.colSpan = span;
    tr.appendChild(td);
    return tr;
  }

  const text = (v) => (v === null || v === undefined || v === "" ? "–" : String(v));

  function tables() {
    const sessions = state.reports.sessions ? state.reports.sessions.sessions.slice(0, LAST.sessions) : [];
    state.tables.sessions = sessions.map((s) => ({ sessionId: s.sessionId, totalTokens: s.totalTokens, totalCost: s.totalCost, messages: s.messages }));
    table("table-sessions", sessions, [
      [(s) => s.sessionId.slice(0, 8), text, "id"],
      [(s) => s.projectPath, text, "wrap"],
      [(s) => s.lastActivity, (v) => (v ? instant(v) : "–")],
      [(s) => s.messages, integer, "num"],
      [(s) => s.totalTokens, compact, "num"],
      [(s) => s.totalCost, money, "num"],
    ]);
    const alerts = rowsOf(state.reports.alerts, "alerts");
    state.tables.alerts = alerts.map((a) => ({ eventId: a.eventId, thresholdUsd: a.thresholdUsd, actualUsd: a.actualUsd }));
    table("table-alerts", alerts, [
      [(a) => a.timestamp, instant],
      [(a) => a.projectId, text, "wrap"],
      [(a) => a.subject || a.userId || a.sessionId, text, "wrap"],
      [(a) => a.window, text],
      [(a) => a.thresholdUsd, exactMoney, "num"],
      [(a) => a.actualUsd, exactMoney, "num"],
    ]);
  }

  function status() {
    const stats = state.reports.stats;
    const failed = Object.keys(state.errors);
    document.body.dataset.state = failed.length ? "error" : "live";
    const when = state.lastRefresh ? new Date(state.lastRefresh).toLocaleTimeString("en-GB") : "–";
    document.getElementById("status-text").textContent = failed.length
      ? `could not load ${failed.join(", ")} · ${when}`
      : `live · refreshed ${when} · every ${intervalMs / 1000}s`;
    if (stats) {
      const counts = Object.entries(stats.counts || {}).map(([k, v]) => `${k} ${integer(v)}`).join(" · ");
      document.getElementById("pipeline").textContent =
        `worker ${stats.ready ? "ready" : "starting"} · pending rows ${integer(stats.pending_rows)} · ` +
        `behind ${integer(stats.behind)} · flushes ${integer(stats.flushes)}${counts ? " · " + counts : ""}`;
    }
  }

  // ------------------------------------------------------------------ polling

  async function getJSON(url) {
    const reply = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
    if (!reply.ok) throw new Error(`${url}: HTTP ${reply.status}`);
    return reply.json();
  }

  function render() {
    kpis();
    for (const id of Object.keys(BUILDERS)) draw(id);
    tables();
    status();
  }

  async function refresh() {
    const started = performance.now();
    for (const [name, url] of Object.entries(SOURCES)) {
      try {
        const body = await getJSON(url);
        if (name === "data") {
          Object.assign(state.reports, body.reports);
          state.reportSources = body.sources;
        } else {
          state.reports[name] = body;
        }
        delete state.errors[name];
      } catch (err) {
        state.errors[name] = String(err && err.message ? err.message : err);
      }
    }
    state.lastRefresh = Date.now();
    try {
      render();
    } finally {
      state.refreshes += 1;
      const took = performance.now() - started;
      window.setTimeout(refresh, Math.max(intervalMs, 2 * took));
    }
  }

  if (window.Chart) {
    window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    window.Chart.defaults.color = "#6b7385";
  }
  refresh();
})();
