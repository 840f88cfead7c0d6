// workq's dashboard: renders every page from the JSON API (docs/dashboard-openapi.json).
// Untrusted text (queue names, ids, tags, errors, job data) only ever goes in through
// textContent / createTextNode / setAttribute, never innerHTML; the server's
// Content-Security-Policy (default-src 'self') lets no inline script run.
"use strict";

(function () {
  const CSRF = (document.querySelector('meta[name="workq-csrf"]') || {}).content || "";
  const root = document.getElementById("app");
  const flashEl = document.querySelector('[data-testid="flash"]');
  const STATES = ["ready", "scheduled", "running", "blocked", "succeeded", "failed", "cancelled", "finished"];
  const POLL_MS = 5000;
  const DEBOUNCE_MS = 400;
  // Queues one page follows live (the server holds a Redis connection for each); the
  // others are refreshed by polling.
  const MAX_STREAM_QUEUES = 16;

  // ---- DOM helpers -------------------------------------------------------------

  /** An element: attrs (testid → data-testid, on* → listeners), then children (strings become text nodes). */
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    append(e, children);
    return e;
  }

  function setAttrs(e, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "testid") e.setAttribute("data-testid", v);
      else if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
      else if (v === true) e.setAttribute(k, "");
      else e.setAttribute(k, String(v));
    }
  }

  function append(e, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      e.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }

  const SVG_NS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, ...children) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "testid") e.setAttribute("data-testid", v);
      else e.setAttribute(k, String(v));
    }
    append(e, children);
    return e;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function show(...nodes) {
    clear(root);
    append(root, nodes);
  }

  function flash(text, isError) {
    flashEl.textContent = text;
    flashEl.classList.toggle("error", !!isError);
    flashEl.classList.toggle("ok", !isError);
  }

  function pretty(v) {
    return v === undefined ? "null" : JSON.stringify(v, null, 2);
  }

  function fmtTime(ms) {
    if (ms === null || ms === undefined) return "—";
    const d = new Date(ms);
    if (isNaN(d.getTime())) return String(ms);
    return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  }

  function fmtAgo(ms) {
    if (ms === null || ms === undefined) return "";
    const s = Math.round((Date.now() - ms) / 1000);
    if (Math.abs(s) < 90) return s >= 0 ? `${s}s ago` : `in ${-s}s`;
    const m = Math.round(s / 60);
    if (Math.abs(m) < 90) return m >= 0 ? `${m} min ago` : `in ${-m} min`;
    const h = Math.round(m / 60);
    return h >= 0 ? `${h} h ago` : `in ${-h} h`;
  }

  function fmtRate(r) {
    const n = Number(r) || 0;
    return n >= 10 ? n.toFixed(0) : n.toFixed(2);
  }

  function fmtDuration(ms) {
    const s = ms / 1000;
    if (s < 120) return `${s}s`;
    if (s < 7200) return `${Math.round(s / 60)} min`;
    if (s < 172800) return `${Math.round(s / 3600)} h`;
    return `${Math.round(s / 86400)} d`;
  }

  function fmtSchedule(s) {
    if (s === null || s === undefined) return "—";
    if (typeof s === "string") return s;
    if (s.cron) return `cron ${s.cron} (UTC)`;
    if (s.interval_ms !== undefined) {
      let t = `every ${fmtDuration(s.interval_ms)}`;
      if (s.flex_ms !== undefined && s.flex_ms !== s.interval_ms) t += `, in its last ${fmtDuration(s.flex_ms)}`;
      return t;
    }
    return JSON.stringify(s);
  }

  function queueHref(q, params) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) if (v) qs.set(k, v);
    const s = qs.toString();
    return `/queues/${encodeURIComponent(q)}${s ? "?" + s : ""}`;
  }

  function jobHref(id) {
    return `/jobs/${encodeURIComponent(id)}`;
  }

  // ---- the API -----------------------------------------------------------------

  async function request(method, path, body) {
    const opts = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") {
      opts.headers["X-Workq-Csrf"] = CSRF;
      if (body !== undefined) {
        opts.headers["Content-Type"] = "application/json";
        opts.body = JSON.stringify(body);
      }
    }
    const res = await fetch(path, opts);
    let data = null;
    try {
      data = await res.json();
    } catch (_) {
      data = null;
    }
    if (!res.ok) {
      const err = new Error((data && data.error) || `${res.status} ${res.statusText}`);
      err.status = res.status;
      err.data = data;
      throw err;
    }
    return data;
  }
  const get = (path) => request("GET", path);
  const post = (path, body) => request("POST", path, body);

  // ---- live updates ------------------------------------------------------------

  const live = { source: null, key: "", timers: [], pending: null };

  /** Follows the queues' event stream; onEvent gets each {id, state, queue}. */
  function follow(queues, onEvent) {
    const list = queues.slice(0, MAX_STREAM_QUEUES);
    const key = list.join("\u0000");
    if (live.source && live.key === key) return;
    if (live.source) live.source.close();
    live.source = null;
    live.key = key;
    if (!list.length || typeof EventSource === "undefined") return;
    const qs = list.map((q) => "queue=" + encodeURIComponent(q)).join("&");
    const source = new EventSource("/api/events?" + qs);
    source.addEventListener("job", (ev) => {
      try {
        onEvent(JSON.parse(ev.data));
      } catch (_) {
        /* a line that is not JSON: ignore it */
      }
    });
    live.source = source;
  }

  /** Calls f at most once per DEBOUNCE_MS however many times it is asked. */
  function debounced(f) {
    return () => {
      if (live.pending) return;
      live.pending = setTimeout(() => {
        live.pending = null;
        f();
      }, DEBOUNCE_MS);
    };
  }

  function every(ms, f) {
    live.timers.push(setInterval(f, ms));
  }

  // ---- the confirmation dialog ---------------------------------------------------

  const dialog = document.querySelector('[data-testid="confirm-dialog"]');
  const dialogText = document.getElementById("confirm-text");
  const okButton = dialog.querySelector('[data-testid="confirm"]');
  const cancelButton = dialog.querySelector('[data-testid="confirm-cancel"]');
  let answer = null;

  function confirmAction(question) {
    if (answer) answer(false);
    dialogText.textContent = question;
    dialog.hidden = false;
    cancelButton.focus();
    return new Promise((resolve) => {
      answer = (yes) => {
        answer = null;
        dialog.hidden = true;
        resolve(yes);
      };
    });
  }
  okButton.addEventListener("click", () => answer && answer(true));
  cancelButton.addEventListener("click", () => answer && answer(false));
  dialog.addEventListener("click", (ev) => {
    if (ev.target === dialog && answer) answer(false);
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && answer) answer(false);
  });

  /** Asks, then POSTs; shows the outcome in the flash line and calls after(). */
  async function act(question, path, body, describe, after) {
    if (!(await confirmAction(question))) {
      flash("Cancelled: nothing was changed.", false);
      return;
    }
    try {
      const res = await post(path, body);
      flash(describe(res), false);
    } catch (e) {
      flash(`Failed: ${e.message}`, true);
    }
    if (after) await after();
  }

  function button(testid, label, onclick, attrs) {
    return el("button", Object.assign({ type: "button", testid, onclick }, attrs || {}), label);
  }

  function errorBox(e) {
    return el("p", { class: "error-box", role: "alert" }, `Could not load: ${e.message}`);
  }

  // ---- charts --------------------------------------------------------------------

  const HOUR_MS = 3600 * 1000;

  /** An SVG chart of the last hour: bars (one a minute) or a line. */
  function chart(testid, queue, title, points, kind) {
    const W = 600;
    const H = 120;
    const PAD_L = 40;
    const PAD_B = 18;
    const now = Date.now();
    const start = now - HOUR_MS;
    const max = Math.max(1, ...points.map((p) => p.y));
    const x = (t) => PAD_L + ((t - start) / HOUR_MS) * (W - PAD_L - 4);
    const y = (v) => H - PAD_B - (v / max) * (H - PAD_B - 8);
    const s = svg("svg", {
      class: "chart",
      viewBox: `0 0 ${W} ${H}`,
      role: "img",
      "aria-label": `${title} of ${queue}`,
      testid,
      "data-queue": queue,
    });
    s.appendChild(svg("title", {}, `${title} — ${queue}`));
    s.appendChild(svg("line", { x1: PAD_L, y1: H - PAD_B, x2: W - 4, y2: H - PAD_B, class: "axis" }));
    s.appendChild(svg("line", { x1: PAD_L, y1: 8, x2: PAD_L, y2: H - PAD_B, class: "axis" }));
    s.appendChild(svg("text", { x: PAD_L - 4, y: 14, class: "label", "text-anchor": "end" }, String(max)));
    s.appendChild(svg("text", { x: PAD_L - 4, y: H - PAD_B, class: "label", "text-anchor": "end" }, "0"));
    s.appendChild(svg("text", { x: PAD_L, y: H - 4, class: "label" }, "−60 min"));
    s.appendChild(svg("text", { x: W - 4, y: H - 4, class: "label", "text-anchor": "end" }, "now"));
    const inRange = points.filter((p) => p.t >= start);
    if (!inRange.length) {
      s.appendChild(
        svg("text", { x: W / 2, y: H / 2, class: "label", "text-anchor": "middle" }, "no samples yet (one a minute)")
      );
      return s;
    }
    if (kind === "bar") {
      const bw = Math.max(2, (W - PAD_L) / 60 - 2);
      for (const p of inRange) {
        const r = svg("rect", {
          x: x(p.t) - bw,
          y: y(p.y),
          width: bw,
          height: Math.max(0, H - PAD_B - y(p.y)),
          class: "bar",
        });
        r.appendChild(svg("title", {}, `${fmtTime(p.t)}: ${p.y}`));
        s.appendChild(r);
      }
    } else {
      const pts = inRange.map((p) => `${x(p.t).toFixed(1)},${y(p.y).toFixed(1)}`).join(" ");
      s.appendChild(svg("polyline", { points: pts, class: "line" }));
      for (const p of inRange) {
        const c = svg("circle", { cx: x(p.t), cy: y(p.y), r: 2, class: "dot" });
        c.appendChild(svg("title", {}, `${fmtTime(p.t)}: ${p.y}`));
        s.appendChild(c);
      }
    }
    return s;
  }

  async function charts(container, queues) {
    const blocks = [];
    for (const q of queues.slice(0, 20)) {
      try {
        const h = await get("/api/history?queue=" + encodeURIComponent(q));
        const minutes = h.minutes || [];
        const thr = minutes.map((m) => ({ t: m.at_ms, y: (m.succeeded || 0) + (m.failed || 0) }));
        const backlog = minutes.map((m) => ({ t: m.at_ms, y: m.backlog || 0 }));
        blocks.push(
          el(
            "section",
            { class: "charts", "data-queue": q },
            el("h3", {}, q),
            el(
              "div",
              { class: "chart-pair" },
              el("figure", {}, el("figcaption", {}, "Throughput (succeeded + failed per minute)"), chart("chart-throughput", q, "Throughput", thr, "bar")),
              el("figure", {}, el("figcaption", {}, "Backlog (ready + scheduled)"), chart("chart-backlog", q, "Backlog", backlog, "line"))
            )
          )
        );
      } catch (e) {
        blocks.push(el("p", { class: "muted" }, `${q}: no history (${e.message})`));
      }
    }
    clear(container);
    append(container, blocks);
  }

  // ---- pages ---------------------------------------------------------------------

  async function overview() {
    document.title = "workq — queues";
    const tbody = el("tbody");
    const table = el(
      "table",
      { testid: "queues", class: "grid" },
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          ["Queue", "Ready", "Scheduled", "Running", "Blocked", "Failed", "Succeeded", "Cancelled", "Workers", "Done/s", "Failed/s", "State", ""].map((h) =>
            el("th", { scope: "col" }, h)
          )
        )
      ),
      tbody
    );
    const updated = el("p", { class: "muted" });
    const chartBox = el("div", { class: "chart-box" });
    show(el("h1", {}, "Queues"), table, updated, el("h2", {}, "The last hour"), chartBox);

    let names = [];
    const refresh = async () => {
      let data;
      try {
        data = await get("/api/queues");
      } catch (e) {
        updated.textContent = `Could not refresh: ${e.message}`;
        return;
      }
      const rows = (data.queues || []).map((q) => queueRow(q, refresh));
      clear(tbody);
      if (!rows.length) tbody.appendChild(el("tr", {}, el("td", { colspan: 13, class: "muted" }, "No queues yet.")));
      append(tbody, rows);
      updated.textContent = `Updated ${fmtTime(Date.now())}`;
      const now = (data.queues || []).map((q) => q.name);
      if (now.join("\u0000") !== names.join("\u0000")) {
        names = now;
        follow(names, onEvent);
        charts(chartBox, names);
      }
    };
    const onEvent = debounced(refresh);
    await refresh();
    every(POLL_MS, refresh);
    every(60 * 1000, () => charts(chartBox, names));
  }

  function queueRow(q, refresh) {
    const count = (name, v) => el("td", { testid: `count-${name}`, class: "num" }, String(v ?? 0));
    const name = q.name;
    return el(
      "tr",
      { testid: "queue-row", "data-queue": name, class: q.paused ? "paused" : "" },
      el("th", { scope: "row" }, el("a", { href: queueHref(name), testid: "queue-link" }, name)),
      count("ready", q.ready),
      count("scheduled", q.scheduled),
      count("running", q.running),
      count("blocked", q.blocked),
      count("failed", q.failed),
      count("succeeded", q.succeeded),
      count("cancelled", q.cancelled),
      el("td", { class: "num", testid: "workers" }, String(q.workers ?? 0)),
      el("td", { class: "num", testid: "rate-succeeded" }, fmtRate(q.rates && q.rates.succeeded_per_s)),
      el("td", { class: "num", testid: "rate-failed" }, fmtRate(q.rates && q.rates.failed_per_s)),
      el("td", { testid: "paused", class: q.paused ? "state-paused" : "state-active" }, q.paused ? "paused" : "active"),
      el(
        "td",
        { class: "actions" },
        button("pause", "Pause", () =>
          act(
            `Pause queue ${name}? Workers take nothing from it until it is resumed.`,
            `/api/queues/${encodeURIComponent(name)}/pause`,
            undefined,
            (r) => (r.changed ? `Paused ${name}.` : `${name} was paused already.`),
            refresh
          ), { disabled: q.paused }
        ),
        button("resume", "Resume", () =>
          act(
            `Resume queue ${name}?`,
            `/api/queues/${encodeURIComponent(name)}/resume`,
            undefined,
            (r) => (r.changed ? `Resumed ${name}.` : `${name} was running already.`),
            refresh
          ), { disabled: !q.paused }
        )
      )
    );
  }

  const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/i;

  async function queuePage(queue) {
    document.title = `workq — ${queue}`;
    const params = new URLSearchParams(location.search);
    const state = STATES.includes(params.get("state")) ? params.get("state") : "ready";
    const tag = params.get("tag") || "";
    const kind = params.get("kind") || "";
    const after = params.get("after") || "";

    const tabs = el(
      "nav",
      { class: "tabs", "aria-label": "States" },
      STATES.map((s) =>
        el(
          "a",
          { href: queueHref(queue, { state: s, tag, kind }), testid: `state-${s}`, class: s === state ? "active" : "", "aria-current": s === state ? "page" : null },
          s
        )
      )
    );
    const search = el("input", { type: "search", testid: "search", placeholder: "Job id or tag", "aria-label": "Job id or tag", value: tag });
    const go = () => {
      const v = search.value.trim();
      if (!v) location.href = queueHref(queue, { state, kind });
      else if (ULID.test(v)) location.href = jobHref(v.toUpperCase());
      else location.href = queueHref(queue, { state, tag: v, kind });
    };
    search.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") go();
    });
    const purgeState = el(
      "select",
      { testid: "purge-state", "aria-label": "Purge which finished jobs" },
      ["finished", "failed", "succeeded", "cancelled"].map((s) => el("option", { value: s }, s))
    );
    const tools = el(
      "div",
      { class: "toolbar" },
      el("span", { class: "search" }, search, button("search-go", "Go", go)),
      el(
        "span",
        { class: "bulk" },
        button("retry-failed", "Retry all failed", () =>
          act(
            `Retry every FAILED job of ${queue}?`,
            `/api/queues/${encodeURIComponent(queue)}/retry-failed`,
            undefined,
            (r) => `Retried ${r.retried} failed job(s) of ${queue}.`,
            load
          )
        ),
        purgeState,
        button("purge", "Purge", () =>
          act(
            `Delete every ${purgeState.value} job of ${queue} now, whatever its retention? This cannot be undone.`,
            `/api/queues/${encodeURIComponent(queue)}/purge`,
            { state: purgeState.value },
            (r) => `Purged ${r.purged} job(s) of ${queue}.`,
            load
          ), { class: "danger" }
        )
      )
    );
    const filters = [];
    if (tag) filters.push(el("span", { class: "filter" }, "tag: ", el("code", {}, tag), " ", el("a", { href: queueHref(queue, { state, kind }) }, "clear")));
    if (kind) filters.push(el("span", { class: "filter" }, "kind: ", el("code", {}, kind), " ", el("a", { href: queueHref(queue, { state, tag }) }, "clear")));
    const tbody = el("tbody");
    const pager = el("p", { class: "pager" });
    show(
      el("h1", {}, "Queue ", el("code", {}, queue)),
      tabs,
      tools,
      filters.length ? el("p", { class: "filters" }, filters) : null,
      el(
        "table",
        { class: "grid", testid: "jobs" },
        el("thead", {}, el("tr", {}, ["Id", "Kind", "State", "Attempts", "Tags", "Enqueued", "Due / finished", "Last error"].map((h) => el("th", { scope: "col" }, h)))),
        tbody
      ),
      pager
    );

    async function load() {
      const qs = new URLSearchParams({ state });
      if (tag) qs.set("tag", tag);
      if (kind) qs.set("kind", kind);
      if (after) qs.set("after", after);
      let page;
      try {
        page = await get(`/api/queues/${encodeURIComponent(queue)}/jobs?${qs}`);
      } catch (e) {
        clear(tbody);
        tbody.appendChild(el("tr", {}, el("td", { colspan: 8 }, errorBox(e))));
        return;
      }
      clear(tbody);
      const jobs = page.jobs || [];
      if (!jobs.length) tbody.appendChild(el("tr", {}, el("td", { colspan: 8, class: "muted" }, page.next ? "None on this page; there are more." : "No jobs.")));
      for (const j of jobs) {
        tbody.appendChild(
          el(
            "tr",
            { testid: "job-row", "data-id": j.id },
            el("td", {}, el("a", { href: jobHref(j.id), testid: "job-link" }, el("code", {}, j.id))),
            el("td", {}, el("a", { href: queueHref(queue, { state, kind: j.kind }) }, j.kind)),
            el("td", { class: `state state-${String(j.state).toLowerCase()}` }, j.state),
            el("td", { class: "num" }, `${j.attempts ?? 0}/${j.max_attempts ?? "?"}`),
            el("td", {}, (j.tags || []).map((t) => el("a", { href: queueHref(queue, { state, tag: t }), class: "tag" }, t))),
            el("td", {}, fmtTime(j.enqueued_at_ms)),
            el("td", {}, fmtTime(j.finished_at_ms ?? j.due_at_ms)),
            el("td", { class: "error-text" }, j.last_error || "")
          )
        );
      }
      clear(pager);
      if (after) pager.appendChild(el("a", { href: queueHref(queue, { state, tag, kind }), testid: "first-page" }, "First page"));
      if (page.next) pager.appendChild(el("a", { href: queueHref(queue, { state, tag, kind, after: page.next }), testid: "next-page" }, "Next page"));
    }
    await load();
    follow([queue], debounced(load));
    every(POLL_MS * 2, load);
  }

  async function jobPage(id) {
    document.title = `workq — job ${id}`;
    async function load() {
      let j;
      try {
        j = await get("/api/jobs/" + encodeURIComponent(id));
      } catch (e) {
        if (e.status === 404) {
          show(
            el("h1", {}, "Job ", el("code", {}, id)),
            el("p", {}, "State: ", el("strong", { testid: "job-state" }, "NOT FOUND")),
            el("p", { class: "muted" }, "Never enqueued, deleted, or pruned after its retention.")
          );
        } else {
          show(el("h1", {}, "Job ", el("code", {}, id)), errorBox(e));
        }
        return null;
      }
      renderJob(j, load);
      return j;
    }
    const j = await load();
    const changed = debounced(load);
    if (j && j.queue) {
      follow([j.queue], (ev) => {
        if (ev.id === id) changed();
      });
    }
  }

  /** How a periodic job's latest period ended. */
  function lastRun(j) {
    const r = j.last_run;
    if (r === undefined || r === null) return "— (not run yet)";
    if (typeof r === "string") return r;
    const parts = [];
    if (r.outcome || r.state) parts.push(String(r.outcome || r.state));
    const at = r.at_ms ?? r.finished_at_ms;
    if (at !== undefined) parts.push(`${fmtTime(at)} (${fmtAgo(at)})`);
    return parts.length ? parts.join(" · ") : JSON.stringify(r);
  }

  function field(label, ...value) {
    return [el("dt", {}, label), el("dd", {}, value)];
  }

  function jobLinks(ids) {
    if (!ids || !ids.length) return "—";
    return el("ul", { class: "links" }, ids.map((c) => el("li", {}, el("a", { href: jobHref(c) }, el("code", {}, c)))));
  }

  function renderJob(j, reload) {
    const id = j.id;
    const state = String(j.state);
    const running = state === "RUNNING";
    const errors = Array.isArray(j.errors) ? j.errors : j.last_error ? [j.last_error] : [];
    const errorItem = (e) => {
      if (typeof e === "string") return el("li", {}, e);
      const when = e && (e.at_ms ?? e.time_ms);
      const text = e && (e.error ?? e.message);
      if (text !== undefined) return el("li", {}, when !== undefined ? `${fmtTime(when)} ` : "", e.attempt !== undefined ? `attempt ${e.attempt}: ` : "", String(text));
      return el("li", {}, el("pre", {}, pretty(e)));
    };
    const actionsBar = el(
      "div",
      { class: "toolbar" },
      button("action-retry", "Retry", () => act(`Retry job ${id}? It runs again with its attempts counted afresh.`, `/api/jobs/${encodeURIComponent(id)}/retry`, undefined, (r) => `Retry: ${r.status}.`, reload)),
      button("action-run-now", "Run now", () => act(`Make job ${id} due now?`, `/api/jobs/${encodeURIComponent(id)}/run-now`, undefined, (r) => `Run now: ${r.status}.`, reload)),
      button("action-cancel", "Cancel", () => act(`Cancel job ${id}?`, `/api/jobs/${encodeURIComponent(id)}/cancel`, undefined, (r) => `Cancel: ${r.status}.`, reload)),
      button(
        "action-delete",
        running ? "Delete (force)" : "Delete",
        () =>
          act(
            running
              ? `Job ${id} is RUNNING: delete it anyway? Its worker's result will be refused. This cannot be undone.`
              : `Delete job ${id}? This cannot be undone.`,
            `/api/jobs/${encodeURIComponent(id)}/delete${running ? "?force=1" : ""}`,
            undefined,
            (r) => `Delete: ${r.status}.`,
            reload
          ),
        { class: "danger" }
      )
    );
    const known = new Set(["id", "queue", "kind", "state", "attempts", "max_attempts", "tags", "last_error", "worker", "enqueued_at_ms", "started_at_ms", "finished_at_ms", "due_at_ms", "input", "output", "progress", "errors", "parents", "children", "schedule", "unique_name", "required_labels", "cancel_requested", "last_run"]);
    const rest = {};
    for (const [k, v] of Object.entries(j)) if (!known.has(k)) rest[k] = v;
    show(
      el("h1", {}, "Job ", el("code", {}, id)),
      actionsBar,
      el(
        "dl",
        { class: "fields" },
        field("State", el("strong", { testid: "job-state", class: `state state-${state.toLowerCase()}` }, state), j.cancel_requested ? " (cancel requested)" : ""),
        field("Kind", el("code", { testid: "job-kind" }, j.kind)),
        field("Queue", el("a", { href: queueHref(j.queue), testid: "job-queue" }, j.queue)),
        field("Attempts", el("span", { testid: "job-attempts" }, `${j.attempts ?? 0} of ${j.max_attempts ?? "?"}`)),
        field("Tags", (j.tags || []).length ? (j.tags || []).map((t) => el("a", { href: queueHref(j.queue, { state: "finished", tag: t }), class: "tag" }, t)) : "—"),
        field("Worker", el("span", { testid: "job-worker" }, j.worker || "—")),
        j.unique_name ? field("Unique name", el("code", {}, j.unique_name)) : null,
        (j.required_labels || []).length ? field("Needs labels", j.required_labels.join(", ")) : null,
        field("Schedule", el("span", { testid: "job-schedule" }, fmtSchedule(j.schedule))),
        field("Next run", el("span", { testid: "job-next-run" }, j.due_at_ms ? `${fmtTime(j.due_at_ms)} (${fmtAgo(j.due_at_ms)})` : "—")),
        j.schedule ? field("Last run", el("span", { testid: "job-last-run" }, lastRun(j))) : null
      ),
      el("h2", {}, "Timeline"),
      el(
        "ol",
        { class: "timeline", testid: "job-timeline" },
        el("li", {}, "Enqueued ", fmtTime(j.enqueued_at_ms)),
        el("li", {}, "Started ", fmtTime(j.started_at_ms)),
        el("li", {}, "Finished ", fmtTime(j.finished_at_ms))
      ),
      el("h2", {}, "Chain"),
      el("dl", { class: "fields" }, field("Parents", el("div", { testid: "job-parents" }, jobLinks(j.parents))), field("Children", el("div", { testid: "job-children" }, jobLinks(j.children)))),
      el("h2", {}, "Progress"),
      el("pre", { testid: "job-progress" }, pretty(j.progress ?? null)),
      el("h2", {}, "Input"),
      el("pre", { testid: "job-input" }, pretty(j.input ?? null)),
      el("h2", {}, "Output"),
      el("pre", { testid: "job-output" }, pretty(j.output ?? null)),
      el("h2", {}, "Errors"),
      el("ol", { testid: "job-errors", class: "errors" }, errors.length ? errors.map(errorItem) : []),
      errors.length ? null : el("p", { class: "muted" }, "None."),
      Object.keys(rest).length ? [el("h2", {}, "More"), el("pre", {}, pretty(rest))] : null
    );
  }

  async function workersPage() {
    document.title = "workq — workers";
    const tbody = el("tbody");
    show(
      el("h1", {}, "Workers"),
      el(
        "table",
        { class: "grid", testid: "workers" },
        el("thead", {}, el("tr", {}, ["Queue", "Worker", "Host", "Labels", "Kinds", "Busy / slots", "Last seen"].map((h) => el("th", { scope: "col" }, h)))),
        tbody
      ),
      el("p", { class: "muted" }, "Workers seen in the last hour; those not seen in the last minute are marked gone.")
    );
    const load = async () => {
      let data;
      try {
        data = await get("/api/workers");
      } catch (e) {
        clear(tbody);
        tbody.appendChild(el("tr", {}, el("td", { colspan: 7 }, errorBox(e))));
        return;
      }
      clear(tbody);
      const ws = data.workers || [];
      if (!ws.length) tbody.appendChild(el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No workers seen in the last hour.")));
      for (const w of ws) {
        const slots = w.slots === null || w.slots === undefined ? "?" : String(w.slots);
        const busy = w.busy === null || w.busy === undefined ? "?" : String(w.busy);
        const seen = w.last_seen_ms ?? w.last_seen;
        tbody.appendChild(
          el(
            "tr",
            { testid: "worker-row", "data-id": w.id, "data-queue": w.queue },
            el("td", {}, el("a", { href: queueHref(w.queue) }, w.queue)),
            el("td", {}, el("code", {}, w.id)),
            el("td", {}, w.host || "—"),
            el("td", {}, (w.labels || []).join(", ") || "—"),
            el("td", {}, (w.kinds || []).join(", ") || "any"),
            el("td", { class: "num" }, `${busy} / ${slots}`),
            el("td", { class: w.live === false ? "muted" : "" }, seen ? `${fmtTime(seen)} (${fmtAgo(seen)})` : "—", w.live === false ? " — gone" : "")
          )
        );
      }
    };
    await load();
    every(POLL_MS, load);
  }

  async function periodicPage() {
    document.title = "workq — periodic work";
    const tbody = el("tbody");
    show(
      el("h1", {}, "Periodic work"),
      el(
        "table",
        { class: "grid", testid: "periodic" },
        el("thead", {}, el("tr", {}, ["Queue", "Job", "Kind", "Schedule", "Next run", "Last outcome"].map((h) => el("th", { scope: "col" }, h)))),
        tbody
      )
    );
    const outcome = (j) => {
      const r = lastRun(j);
      return j.last_error && !j.last_run ? `${r}; last error: ${j.last_error}` : r;
    };
    const load = async () => {
      let data;
      try {
        data = await get("/api/periodic");
      } catch (e) {
        clear(tbody);
        tbody.appendChild(el("tr", {}, el("td", { colspan: 6 }, errorBox(e))));
        return;
      }
      clear(tbody);
      const jobs = data.jobs || [];
      if (!jobs.length) tbody.appendChild(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No periodic work.")));
      for (const j of jobs) {
        tbody.appendChild(
          el(
            "tr",
            { testid: "periodic-row", "data-id": j.id, "data-queue": j.queue },
            el("td", {}, el("a", { href: queueHref(j.queue) }, j.queue)),
            el("td", {}, el("a", { href: jobHref(j.id) }, el("code", {}, j.unique_name || j.id))),
            el("td", {}, j.kind),
            el("td", {}, fmtSchedule(j.schedule)),
            el("td", {}, j.due_at_ms ? `${fmtTime(j.due_at_ms)} (${fmtAgo(j.due_at_ms)})` : "—"),
            el("td", {}, outcome(j))
          )
        );
      }
    };
    await load();
    every(POLL_MS * 2, load);
  }

  // ---- routing -------------------------------------------------------------------

  function segment(path, prefix) {
    const rest = path.slice(prefix.length);
    if (!rest || rest.includes("/")) return null;
    try {
      return decodeURIComponent(rest);
    } catch (_) {
      return null;
    }
  }

  async function start() {
    const path = location.pathname;
    for (const a of document.querySelectorAll("nav a")) {
      const href = a.getAttribute("href");
      const here = href === "/" ? path === "/" || path.startsWith("/queues/") || path.startsWith("/jobs/") : path.startsWith(href);
      if (here) a.setAttribute("aria-current", "page");
    }
    try {
      if (path === "/") await overview();
      else if (path === "/workers") await workersPage();
      else if (path === "/periodic") await periodicPage();
      else if (path.startsWith("/queues/") && segment(path, "/queues/") !== null) await queuePage(segment(path, "/queues/"));
      else if (path.startsWith("/jobs/") && segment(path, "/jobs/") !== null) await jobPage(segment(path, "/jobs/"));
      else show(el("h1", {}, "Not found"), el("p", {}, el("a", { href: "/" }, "Back to the queues")));
    } catch (e) {
      show(errorBox(e));
    }
  }

  window.addEventListener("pagehide", () => {
    if (live.source) live.source.close();
    for (const t of live.timers) clearInterval(t);
  });

  start();
})();
