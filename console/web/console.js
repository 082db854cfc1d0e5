// Switchboard supervisor console.
//
// The page keeps a model of the supervisor's scope: it starts from the
// Board that the event stream's sync carries and applies every event after
// it (GET /console/events, Server-Sent Events whose ids are the events'
// sequence numbers). When the stream drops, the browser reconnects with
// Last-Event-ID and the node replays exactly the missing events, or sends a
// fresh sync. Ages tick locally. Actions are POSTs to /console/api/... with
// the page's CSRF token and an idempotency key (client id per tab, one seq
// per action, reused when an action is retried).
//
// For tests and the curious, window.sb exposes the counters that
// document.body's data attributes also show: applied (events applied),
// syncs, dupes (events dropped as already seen) and the ids applied;
// data-board says whether a read of the board is pending.
"use strict";

(() => {
  const meta = (name) => document.querySelector(`meta[name="${name}"]`).content;
  const csrf = meta("csrf-token");
  const skew = Number(meta("server-time")) - Date.now(); // server clock minus ours, ms
  const serverNow = () => Date.now() + skew;

  // ---- Idempotency: one client id per page load, one seq per action. ----
  // Not kept in sessionStorage: a duplicated tab copies it, and two pages
  // sending the same seq would have the second answered with the first's
  // record instead of being applied. A retry happens inside act(), on
  // this page, so nothing needs to outlive it.
  const clientId = (() => {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return "console-" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  })();
  let actionSeq = 0;
  function nextSeq() {
    return ++actionSeq;
  }

  // ---- The model. ----
  const MAX_IDS = 5000; // applied ids kept for inspection
  const MAX_TIMELINE = 200; // events kept per request
  const model = {
    lists: new Map(), // id → BoardList
    queues: new Map(), // id → BoardQueue
    agents: new Map(), // id → BoardAgent {status, name, conversations}
    requests: new Map(), // id → RequestSummary
    offers: new Map(), // request id → OfferInfo
    timelines: new Map(), // request id → [{seq, kind, at, text}]
    truncated: false,
  };
  const sb = { applied: 0, syncs: 0, dupes: 0, lastId: "", ids: [] };
  window.sb = sb;
  let lastSeq = 0n; // BigInt: seqs exceed 2^53

  const nsToMs = (ns) => Math.floor(Number(ns || 0) / 1e6);

  function applySync(view) {
    const b = view.board || {};
    model.lists = new Map((b.lists || []).map((l) => [l.id, l]));
    model.queues = new Map((b.queues || []).map((q) => [q.id, q]));
    model.agents = new Map((b.agents || []).map((a) => [a.status.agent, a]));
    model.requests = new Map((b.requests || []).map((r) => [r.id, r]));
    model.offers = new Map();
    model.timelines = new Map();
    model.truncated = !!b.truncated;
  }

  function upsertRequest(sum) {
    if (!sum || !sum.id) return;
    if (sum.state === "CLOSED") {
      dropRequest(sum.id);
      return;
    }
    // A summary is whole: a field it omits is empty (unread 0, no sla).
    model.requests.set(sum.id, sum);
  }

  function dropRequest(id) {
    model.requests.delete(id);
    model.offers.delete(id);
    for (const a of model.agents.values()) {
      a.conversations = (a.conversations || []).filter((c) => c !== id);
    }
  }

  function setParticipants(id, state, participants, agent, joined) {
    const r = model.requests.get(id);
    if (r) {
      r.state = state;
      r.participants = participants || [];
    }
    const a = model.agents.get(agent);
    if (a) {
      const convs = new Set(a.conversations || []);
      joined ? convs.add(id) : convs.delete(id);
      a.conversations = [...convs].sort();
    }
  }

  function setAgentState(d) {
    const a = model.agents.get(d.agent);
    if (!a) return;
    const st = a.status;
    if (d.state === "LOGGED_OUT") st.logged_in = false;
    else st.logged_in = true;
    for (const m of st.mrds || []) {
      if (d.mrd === "" || m.mrd === d.mrd) {
        m.state = d.state;
        m.reason = d.reason || "";
        m.since = d.since;
      }
    }
  }

  // What each event does to the model, and its one-line description for
  // the request's timeline. Kinds not listed only go to the timeline.
  const handlers = {
    "request.created": (d) => (upsertRequest(d), [d.id, "landed on " + where(d)]),
    "request.updated": (d) => (upsertRequest(d), [d.id, d.state + (d.unread ? `, ${d.unread} unread` : "")]),
    "request.removed": (d) => (dropRequest(d.id), [d.id, "removed from its list"]),
    "request.queued": (d) => {
      upsertRequest(Object.assign({}, d.request, { queue: d.queue }));
      const q = model.queues.get(d.queue);
      if (q) {
        q.waiting = (q.waiting || 0) + 1;
        if (!q.oldest_queued_at) q.oldest_queued_at = serverNow() * 1e6;
      }
      return [d.request.id, `queued in ${queueName(d.queue)} (${d.reason})`];
    },
    "request.sla": (d) => (upsertRequest(Object.assign({}, d.request, { sla: d.sla })), [d.request.id, "service level " + d.sla.toUpperCase()]),
    "request.reminder": (d) => (upsertRequest(d.request), [d.request.id, "reminder: INACTIVE"]),
    "offer.created": (d) => {
      model.offers.set(d.request.id, d);
      upsertRequest(d.request);
      return [d.request.id, `offered to ${d.agent} (${d.kind})`];
    },
    "offer.withdrawn": (d) => {
      const cur = model.offers.get(d.offer.request.id);
      if (cur && cur.id === d.offer.id) model.offers.delete(d.offer.request.id);
      return [d.offer.request.id, `offer to ${d.offer.agent} withdrawn (${d.reason})`];
    },
    "conversation.joined": (d) => {
      const o = model.offers.get(d.request);
      if (o && o.agent === d.agent) model.offers.delete(d.request);
      setParticipants(d.request, d.state, d.participants, d.agent, true);
      return [d.request, `${d.agent} joined`];
    },
    "conversation.left": (d) => (setParticipants(d.request, d.state, d.participants, d.agent, false), [d.request, `${d.agent} left`]),
    "conversation.message": (d) => {
      const r = model.requests.get(d.request);
      if (r) r.updated_at = d.message.at;
      if (route.request === d.request) appendMessage(d.message);
      return [d.request, `${speaker(d.message)}: ${d.message.text}`];
    },
    "conversation.closed": (d) => (dropRequest(d.request), [d.request, `closed by ${d.by.id}`]),
    "agent.state": (d) => (setAgentState(d), [null, ""]),
    "agent.mode": (d) => {
      const a = model.agents.get(d.agent);
      if (a) a.status.mode = d.mode;
      return [null, ""];
    },
  };

  // Events that change figures the page cannot derive exactly (per-MRD
  // loads, queues' agents and today's service level): the board is read
  // again, at most every couple of seconds.
  const refreshKinds = new Set(["request.queued", "offer.created", "offer.withdrawn", "conversation.joined",
    "conversation.left", "conversation.closed", "agent.state", "request.sla"]);

  function onEvent(e) {
    const kind = e.type;
    const seq = BigInt(e.lastEventId || "0");
    if (kind !== "sync" && seq <= lastSeq) {
      sb.dupes++; // already applied (a resume may replay one): drop it
      document.body.dataset.dupes = String(sb.dupes);
      return;
    }
    const data = JSON.parse(e.data);
    lastSeq = seq;
    if (kind === "sync") {
      applySync(data);
      sb.syncs++;
    } else {
      const h = handlers[kind];
      const [rid, text] = h ? h(data) : [null, ""];
      if (rid) {
        const tl = model.timelines.get(rid) || [];
        tl.push({ seq: e.lastEventId, kind, at: eventTime(data), text });
        if (tl.length > MAX_TIMELINE) tl.shift();
        model.timelines.set(rid, tl);
      }
      if (refreshKinds.has(kind)) scheduleBoardRefresh();
    }
    sb.applied++;
    sb.lastId = e.lastEventId;
    sb.ids.push([e.lastEventId, kind]);
    if (sb.ids.length > MAX_IDS) sb.ids.shift();
    const ds = document.body.dataset;
    ds.applied = String(sb.applied);
    ds.syncs = String(sb.syncs);
    ds.lastEventId = sb.lastId;
    scheduleRender();
  }

  // The board is read again once events stop coming for a moment, and
  // again after the read if more came meanwhile.
  // eventTime is when an event happened (leader time, ms) if its payload
  // says, else now.
  function eventTime(d) {
    const ns = d.at || (d.message && d.message.at) || d.since || (d.request && d.request.updated_at) || d.updated_at;
    return ns ? nsToMs(ns) : serverNow();
  }

  let refreshTimer = null;
  let refreshDirty = false;
  function scheduleBoardRefresh() {
    refreshDirty = true;
    if (refreshTimer) return;
    document.body.dataset.board = "refreshing";
    refreshTimer = setTimeout(async () => {
      refreshDirty = false;
      try {
        const res = await fetch("/console/api/board", { credentials: "same-origin" });
        if (res.ok) {
          const b = await res.json();
          // What the board no longer shows (a request moved out of
          // scope, an agent logged out of it, a list deleted) goes —
          // unless it changed after the board was read (its events
          // arrived meanwhile: updated_at after the board's at).
          if (!b.truncated) {
            const drop = (map, shown) => {
              for (const k of [...map.keys()]) if (!shown.has(k)) map.delete(k);
            };
            drop(model.lists, new Set((b.lists || []).map((l) => l.id)));
            drop(model.queues, new Set((b.queues || []).map((q) => q.id)));
            drop(model.agents, new Set((b.agents || []).map((a) => a.status.agent)));
            const open = new Set((b.requests || []).map((r) => r.id));
            for (const [id, r] of [...model.requests]) {
              if (!open.has(id) && (r.updated_at || r.created_at || 0) <= b.at) model.requests.delete(id);
            }
          }
          for (const l of b.lists || []) model.lists.set(l.id, l);
          for (const q of b.queues || []) model.queues.set(q.id, q);
          for (const a of b.agents || []) model.agents.set(a.status.agent, a);
          for (const r of b.requests || []) model.requests.set(r.id, Object.assign(model.requests.get(r.id) || {}, r));
          scheduleRender();
        }
      } catch (err) {
        refreshDirty = true; // out of reach (the stream reconnects meanwhile): try again
      } finally {
        refreshTimer = null;
        if (refreshDirty) scheduleBoardRefresh();
        else document.body.dataset.board = "fresh";
      }
    }, 1000);
  }

  // ---- The stream. ----
  const KINDS = ["sync", "request.created", "request.updated", "request.removed", "request.queued", "request.sla",
    "request.reminder", "offer.created", "offer.withdrawn", "conversation.joined", "conversation.left",
    "conversation.message", "conversation.closed", "agent.state", "agent.mode", "list.subscribed", "list.unsubscribed"];
  let source = null;

  function connect() {
    const url = "/console/events" + (lastSeq > 0n ? "?since=" + lastSeq : "");
    source = new EventSource(url);
    for (const k of KINDS) source.addEventListener(k, onEvent);
    source.onopen = () => setConn("live");
    source.onerror = () => {
      if (source.readyState === EventSource.CONNECTING) {
        setConn("connecting"); // the browser reconnects, with Last-Event-ID
        return;
      }
      // Refused (logged out, too many streams...): find out why.
      setConn("down");
      source.close();
      fetch("/console/api/board", { credentials: "same-origin" }).then((res) => {
        if (res.status === 401) location.assign("/console/login");
        else setTimeout(connect, 3000);
      }, () => setTimeout(connect, 3000));
    };
  }

  function setConn(state) {
    const el = document.getElementById("conn");
    const label = { live: "live", connecting: "reconnecting…", down: "offline" }[state];
    el.textContent = label;
    el.className = "conn conn-" + state;
    document.body.dataset.stream = state === "live" ? "open" : state;
  }

  // ---- Formatting. ----
  function fmtAge(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return s + "s";
    const m = Math.floor(s / 60);
    if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
    const h = Math.floor(m / 60);
    return `${h}h ${String(m % 60).padStart(2, "0")}m`;
  }
  const fmtClock = (ms) => new Date(ms - skew).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const listName = (id) => (model.lists.get(id) || {}).name || id;
  const queueName = (id) => (model.queues.get(id) || {}).name || id;
  const where = (r) => (r.list ? listName(r.list) : r.queue ? queueName(r.queue) : r.channel);
  const agentName = (id) => (model.agents.get(id) || {}).name || id;
  const speaker = (m) => (m.from && m.from.role === 2 ? agentName(m.from.id) : m.name || (m.from && m.from.id) || "customer");

  // el builds an element: attributes (class, data-*, text, on*) and children.
  function el(tag, attrs, ...children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") n.textContent = v;
      else if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
      else n.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined) n.append(c);
    return n;
  }
  const badge = (cls, text) => el("span", { class: "badge badge-" + cls, text });
  const slaBadge = (sla) => (sla ? badge("sla-" + sla, sla.toUpperCase()) : el("span", { class: "dim", text: "—" }));
  const age = (sinceMs) => el("span", { "data-since-ms": String(sinceMs), text: fmtAge(serverNow() - sinceMs) });
  const SLA_RANK = { breached: 3, warning: 2, ok: 1, met: 0 };
  function worstSLA(reqs) {
    let worst = "";
    for (const r of reqs) if (r.sla && r.sla !== "met" && (SLA_RANK[r.sla] || 0) > (SLA_RANK[worst] || 0)) worst = r.sla;
    return worst;
  }

  // ---- Rendering. ----
  let renderPending = false;
  function scheduleRender() {
    if (renderPending) return;
    renderPending = true;
    requestAnimationFrame(() => {
      renderPending = false;
      render();
    });
  }

  function render() {
    if (route.view === "wallboard") renderWallboard();
    else if (route.view === "agents") renderAgents();
    else if (route.view === "request") renderRequest();
  }

  function renderWallboard() {
    const reqs = [...model.requests.values()].sort((a, b) => a.created_at - b.created_at || (a.id < b.id ? -1 : 1));

    const lists = [...model.lists.values()].map((l) => {
      const mine = reqs.filter((r) => r.list === l.id);
      const count = (s) => mine.filter((r) => r.state === s).length;
      const unread = mine.filter((r) => r.state === "UNREAD");
      const oldest = unread.length ? Math.min(...unread.map((r) => nsToMs(r.created_at))) : 0;
      const breached = mine.filter((r) => r.sla === "breached").length;
      const sla = worstSLA(mine) || (l.sla_ms ? "ok" : "");
      return el("div", { class: "tile" + (sla ? " sla-" + sla : ""), "data-list": l.id, "data-sla": sla },
        el("div", { class: "tile-head" },
          el("div", {}, el("div", { class: "tile-name", text: l.name || l.id }), el("div", { class: "tile-id", text: l.id })),
          l.sla_ms ? slaBadge(sla) : badge("none", "NO SLA")),
        el("div", { class: "figures" },
          figure(count("UNREAD"), "unread", count("UNREAD") > 0 && sla === "breached"),
          figure(count("ACTIVE"), "active"),
          figure(count("INACTIVE"), "inactive"),
          figure(breached, "breached", breached > 0)),
        el("div", { class: "tile-foot" },
          el("span", {}, "oldest unread ", oldest ? el("strong", {}, age(oldest)) : el("strong", { text: "—" })),
          el("span", {}, "target ", el("strong", { text: l.sla_ms ? fmtAge(l.sla_ms) : "none" })),
          el("span", {}, el("strong", { text: String(l.subscribers) }), " subscribed")));
    });
    replace("lists", lists.length ? lists : [el("p", { class: "note", text: "No list in your scope." })]);

    const queues = [...model.queues.values()].map((q) => {
      const mine = reqs.filter((r) => r.queue === q.id);
      const decided = (q.met || 0) + (q.breached || 0);
      const pct = decided ? Math.round((100 * q.met) / decided) : null;
      const slCls = pct === null ? "none" : pct >= 80 ? "sla-ok" : pct >= 60 ? "sla-warning" : "sla-breached";
      const sla = worstSLA(mine.filter((r) => r.state === "UNREAD")) || (q.sla_ms ? "ok" : "");
      const oldest = nsToMs(q.oldest_queued_at);
      return el("div", { class: "tile" + (sla ? " sla-" + sla : ""), "data-queue": q.id, "data-sla": sla },
        el("div", { class: "tile-head" },
          el("div", {}, el("div", { class: "tile-name", text: q.name || q.id }), el("div", { class: "tile-id", text: `${q.id} · ${q.mrd}` })),
          q.sla_ms ? slaBadge(sla) : badge("none", "NO SLA")),
        el("div", { class: "figures" },
          figure(q.waiting || 0, "waiting", (q.waiting || 0) > 0 && sla === "breached"),
          figure(q.offered || 0, "offered"),
          el("div", { class: "figure" }, el("b", {}, q.waiting && oldest ? age(oldest) : "—"), el("span", { class: "label", text: "longest wait" }))),
        el("div", { class: "tile-foot" },
          el("span", {}, "today ", badge(slCls, pct === null ? "no data" : `${pct}%`), ` ${q.met || 0} met / ${q.breached || 0} breached`),
          el("span", {}, el("strong", { text: String(q.ready || 0) }), " ready · ",
            el("strong", { text: String(q.busy || 0) }), " busy · ",
            el("strong", { text: String(q.not_ready || 0) }), " not ready")));
    });
    replace("queues", queues.length ? queues : [el("p", { class: "note", text: "No queue in your scope." })]);

    const rows = reqs.map((r) => {
      const offer = model.offers.get(r.id);
      return el("tr", {
        class: "clickable" + (r.sla ? " sla-" + r.sla : ""), "data-request": r.id, "data-state": r.state, "data-sla": r.sla || "",
        onclick: () => location.assign("#/request/" + encodeURIComponent(r.id)),
      },
      el("td", { class: "mono", text: r.id }),
      el("td", { text: r.customer.name || r.customer.id }),
      el("td", { text: where(r) }),
      el("td", {}, badge(r.state, r.state), offer ? [" ", badge("OFFERED", "OFFERED → " + agentName(offer.agent))] : null),
      el("td", {}, slaBadge(r.sla)),
      el("td", { class: "num" }, age(nsToMs(r.created_at))),
      el("td", { text: (r.participants || []).map(agentName).join(", ") || "—" }),
      el("td", { class: "preview", title: r.latest || r.preview || "" },
        r.unread ? [badge("UNREAD", String(r.unread)), " "] : null, r.latest || r.preview || ""));
    });
    replace("requests", rows.length ? rows : [el("tr", { class: "empty" }, el("td", { colspan: "8", text: "No open request." }))], "tbody");
    document.getElementById("req-count").textContent = `${reqs.length} open`;
    document.getElementById("truncated").hidden = !model.truncated;
  }

  function figure(n, label, hot) {
    return el("div", { class: "figure" + (hot ? " hot" : "") }, el("b", { text: String(n) }), el("span", { class: "label", text: label }));
  }

  function renderAgents() {
    const agents = [...model.agents.values()].sort((a, b) => (a.status.agent < b.status.agent ? -1 : 1));
    const rows = agents.map((a) => {
      const st = a.status;
      const mrds = (st.mrds || []).map((m) =>
        el("span", { class: "mrd-state", "data-mrd": m.mrd, "data-state": m.state },
          el("span", { class: "mrd", text: m.mrd }),
          badge(m.state, m.state.replace("_", " ") + (m.reason ? ` (${m.reason})` : "")),
          el("span", { class: "load", text: `${m.conversations}/${m.max || "∞"}` + (m.offers ? ` +${m.offers} offered` : "") }),
          m.since ? el("span", { class: "since" }, age(nsToMs(m.since))) : null));
      const buttons = (st.mrds || []).filter((m) => m.state === "READY").map((m) =>
        el("button", { class: "btn btn-small", "data-action": "not_ready", "data-mrd": m.mrd, text: `Not ready · ${m.mrd}`,
          onclick: () => run(`${a.status.agent} set NOT_READY in ${m.mrd}`, "not_ready", { agent: st.agent, mrd: m.mrd, reason: "supervisor" }) }));
      if (st.logged_in) {
        buttons.push(el("button", { class: "btn btn-small btn-danger", "data-action": "logout", text: "Log out",
          onclick: () => run(`${st.agent} logged out`, "logout", { agent: st.agent }) }));
      }
      return el("tr", { "data-agent": st.agent, "data-logged-in": String(!!st.logged_in) },
        el("td", {}, el("strong", { text: a.name || st.agent }), el("div", { class: "dim mono", text: st.agent })),
        el("td", { text: st.logged_in ? st.mode : "logged out" }),
        el("td", {}, mrds.length ? mrds : el("span", { class: "dim", text: st.logged_in ? "—" : "LOGGED OUT" })),
        el("td", {}, (a.conversations || []).map((c) => el("a", { href: "#/request/" + encodeURIComponent(c), class: "mono", text: c + " " }))),
        el("td", {}, el("div", { class: "buttons" }, buttons)));
    });
    replace("agents", rows.length ? rows : [el("tr", { class: "empty" }, el("td", { colspan: "5", text: "No agent in your scope." }))], "tbody");
    const ready = agents.filter((a) => (a.status.mrds || []).some((m) => m.state === "READY")).length;
    document.getElementById("agent-count").textContent = `${agents.length} agents · ${ready} ready somewhere`;
  }

  // The request page: the model's summary, the transcript fetched when the
  // page opens (then live messages), the timeline, the actions.
  let transcript = { id: null, view: null };

  async function openRequest(id) {
    transcript = { id, view: null };
    document.getElementById("transcript").replaceChildren(el("li", { class: "dim", text: "loading…" }));
    let res, out;
    try {
      res = await fetch("/console/api/request/" + encodeURIComponent(id), { credentials: "same-origin" });
      out = await res.json().catch(() => ({}));
    } catch (err) {
      res = { ok: false };
      out = { message: "the node did not answer: reopen the request" };
    }
    if (transcript.id !== id) return;
    if (!res.ok) {
      document.getElementById("transcript").replaceChildren(el("li", { class: "dim", text: out.message || "not available" }));
      return;
    }
    transcript.view = out;
    document.getElementById("transcript").replaceChildren(...(out.transcript || []).map(messageItem));
    scheduleRender();
  }

  function messageItem(m) {
    const agent = m.from && m.from.role === 2;
    return el("li", { class: "msg" + (agent ? " agent" : "") },
      el("div", { class: "who", text: `${speaker(m)} · ${fmtClock(nsToMs(m.at))}` }), el("div", { text: m.text }));
  }

  function appendMessage(m) {
    if (!transcript.view) return;
    const list = document.getElementById("transcript");
    list.append(messageItem(m));
    list.scrollTop = list.scrollHeight;
  }

  function renderRequest() {
    const id = route.request;
    const r = model.requests.get(id) || (transcript.view && transcript.view.request);
    const open = model.requests.has(id);
    const head = document.getElementById("request-head");
    if (!r) {
      head.replaceChildren(el("h2", { text: id }), el("span", { class: "dim", text: "not open in your scope" }));
    } else {
      const offer = model.offers.get(id);
      head.replaceChildren(...[
        el("h2", { class: "mono", text: r.id }),
        badge(open ? r.state : "CLOSED", open ? r.state : "CLOSED"),
        slaBadge(r.sla),
        offer ? badge("OFFERED", "OFFERED → " + agentName(offer.agent)) : null,
        el("span", { class: "meta", text: `${r.customer.name || r.customer.id} · ${where(r)} · ${r.channel}` }),
        el("span", { class: "meta" }, "age ", age(nsToMs(r.created_at))),
      ].filter(Boolean));
      head.dataset.state = open ? r.state : "CLOSED";
    }
    const parts = (r && open && r.participants) || [];
    document.getElementById("participants").replaceChildren(...(parts.length ? parts.map((p) => el("li", { text: `${agentName(p)} (${p})` })) : [el("li", { class: "dim", text: "nobody" })]));

    const actions = document.getElementById("request-actions");
    actions.hidden = !open;
    if (open) {
      fillSelect("transfer-to", [...model.agents.values()].filter((a) => a.status.logged_in && !parts.includes(a.status.agent)).map((a) => {
        const ready = (a.status.mrds || []).filter((m) => m.state === "READY").map((m) => m.mrd);
        return [a.status.agent, `${a.name || a.status.agent} — ${ready.length ? "READY in " + ready.join(", ") : "not ready"}`];
      }));
      fillSelect("transfer-from", [["", "nobody (assign)"], ...parts.map((p) => [p, agentName(p)])]);
      document.getElementById("form-requeue").hidden = !r.queue;
      fillSelect("requeue-to", [...model.queues.values()].map((q) => [q.id, `${q.name || q.id} (${q.mrd})`]));
    }
    const tl = model.timelines.get(id) || [];
    document.getElementById("timeline").replaceChildren(...(tl.length ? tl.slice().reverse().map((t) =>
      el("li", { "data-seq": t.seq }, el("span", { class: "t", text: fmtClock(t.at) }), el("span", { class: "k", text: t.kind }), el("span", { text: t.text }))) :
      [el("li", { class: "dim", text: "nothing yet" })]));
  }

  function fillSelect(id, options) {
    const s = document.getElementById(id);
    const keep = s.value;
    s.replaceChildren(...options.map(([v, label]) => el("option", { value: v, text: label })));
    if (options.some(([v]) => v === keep)) s.value = keep;
  }

  function replace(id, children, inner) {
    const root = document.getElementById(id);
    (inner ? root.querySelector(inner) : root).replaceChildren(...children);
  }

  // Ages tick every second without a full render.
  setInterval(() => {
    const now = serverNow();
    for (const n of document.querySelectorAll("[data-since-ms]")) n.textContent = fmtAge(now - Number(n.dataset.sinceMs));
  }, 1000);

  // ---- Actions. ----
  class ActionError extends Error {
    constructor(code, message) {
      super(message);
      this.code = code;
    }
  }

  // act POSTs one action; a network failure or an unavailable node is
  // retried with the same seq, so it applies at most once.
  async function act(name, body) {
    const seq = nextSeq();
    for (let attempt = 1; ; attempt++) {
      let res;
      try {
        res = await fetch("/console/api/" + name, {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, "X-Client-ID": clientId, "X-Seq": String(seq) },
          body: JSON.stringify(body),
        });
      } catch (err) {
        if (attempt < 3) { await sleep(500 * attempt); continue; }
        throw new ActionError("unavailable", "the node did not answer: " + err.message);
      }
      const out = await res.json().catch(() => ({}));
      if (res.ok) return out;
      if ([503, 504].includes(res.status) && attempt < 3) { await sleep(500 * attempt); continue; }
      if (res.status === 401) location.assign("/console/login");
      throw new ActionError(out.code || String(res.status), out.message || res.statusText);
    }
  }
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  async function run(done, name, body) {
    try {
      await act(name, body);
      toast(done);
    } catch (err) {
      toast(`${err.code}: ${err.message}`, true);
    }
  }

  let toastTimer = null;
  function toast(text, error) {
    const t = document.getElementById("toast");
    t.textContent = text;
    t.className = "toast" + (error ? " error" : "");
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => (t.hidden = true), error ? 8000 : 3000);
  }

  // Close asks for a second click, so that a stray click closes nothing.
  const closeBtn = document.getElementById("act-close");
  let closeArmed = null;
  closeBtn.addEventListener("click", () => {
    if (!closeArmed) {
      closeBtn.textContent = "Click again to close";
      closeArmed = setTimeout(() => { closeArmed = null; closeBtn.textContent = "Close request"; }, 4000);
      return;
    }
    clearTimeout(closeArmed);
    closeArmed = null;
    closeBtn.textContent = "Close request";
    run(`${route.request} closed`, "close", { request: route.request });
  });
  document.getElementById("form-transfer").addEventListener("submit", (e) => {
    e.preventDefault();
    const to = document.getElementById("transfer-to").value;
    const from = document.getElementById("transfer-from").value;
    run(`${route.request} offered to ${to}`, "transfer", Object.assign({ request: route.request, to_agent: to }, from ? { agent: from } : {}));
  });
  document.getElementById("form-requeue").addEventListener("submit", (e) => {
    e.preventDefault();
    run(`${route.request} back in the queue`, "requeue", { request: route.request, queue: document.getElementById("requeue-to").value });
  });
  document.getElementById("logout").addEventListener("click", async () => {
    await fetch("/console/logout", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf } }).catch(() => {});
    location.assign("/console/login");
  });

  // ---- Routing: #/ (wallboard), #/agents, #/request/<id>. ----
  const route = { view: "wallboard", request: null };
  function onRoute() {
    const h = location.hash.replace(/^#\/?/, "");
    if (h.startsWith("request/")) {
      route.view = "request";
      const id = decodeURIComponent(h.slice("request/".length));
      if (route.request !== id) {
        route.request = id;
        openRequest(id);
      }
    } else {
      route.view = h === "agents" ? "agents" : "wallboard";
      route.request = null;
    }
    for (const v of ["wallboard", "agents", "request"]) document.getElementById("view-" + v).hidden = route.view !== v;
    document.getElementById("nav-wallboard").classList.toggle("current", route.view === "wallboard");
    document.getElementById("nav-agents").classList.toggle("current", route.view === "agents");
    render();
  }
  window.addEventListener("hashchange", onRoute);
  onRoute();
  connect();
})();
