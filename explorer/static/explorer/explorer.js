// The log explorer: a search form over GET /events, pages loaded on scroll, the /stats counters, and a Live
// switch over GET /events/stream (Server-Sent Events). Plain JavaScript, no build step, nothing from other hosts.
"use strict";

(() => {
  const main = document.querySelector("main[data-events-url]");
  if (!main) return; // the read-key form only

  const PAGE_SIZE = 100;
  const STATS_EVERY_MS = 5000;
  const RECONNECT_MAX_MS = 2000;
  // The search state kept in the page's address, so a search can be bookmarked, shared and linked to (the admin
  // links an event as ?topic=…&since=…&until=…&open=<event_id>).
  const TEXT_FIELDS = ["topic", "since", "until", "source", "q", "payload"];

  const form = document.getElementById("search");
  const results = document.getElementById("results");
  const statusLine = document.getElementById("status");
  const more = document.getElementById("more");
  const live = document.getElementById("live");
  const liveState = document.getElementById("live-state");
  const newest = document.getElementById("newest");

  let nextUrl = null;
  let loadingPage = false;
  let search = 0; // which search the page shows; answers to older ones are dropped
  let shown = 0;
  let openOnLoad = null;

  // --- the filters ---------------------------------------------------------------------------------------
  class FilterError extends Error {}

  /** The query API's parameters for the form's filters (topic, since, until, source, q, payload.<path>). */
  function filterParams() {
    const params = new URLSearchParams();
    params.set("topic", form.topic.value.trim() || ">");
    for (const name of ["since", "until", "q"]) {
      const value = form[name].value.trim();
      if (value) params.set(name, value);
    }
    for (const source of form.source.value.split(",")) {
      if (source.trim()) params.append("source", source.trim());
    }
    for (const condition of form.payload.value.trim().split(/\s+/).filter(Boolean)) {
      const equals = condition.indexOf("=");
      if (equals < 1) throw new FilterError(`Payload: write each condition as path=value, e.g. status=failed ("${condition}").`);
      params.append(`payload.${condition.slice(0, equals)}`, condition.slice(equals + 1));
    }
    return params;
  }

  function rememberSearchInAddress() {
    const state = new URLSearchParams();
    for (const name of TEXT_FIELDS) {
      if (form[name].value.trim()) state.set(name, form[name].value.trim());
    }
    if (!newest.checked) state.set("order", "asc");
    if (live.checked) state.set("live", "1");
    history.replaceState(null, "", `?${state}`);
  }

  function restoreSearchFromAddress() {
    const state = new URLSearchParams(location.search);
    for (const name of TEXT_FIELDS) {
      if (state.has(name)) form[name].value = state.get(name);
    }
    newest.checked = state.get("order") !== "asc";
    live.checked = state.get("live") === "1";
    openOnLoad = state.get("open");
  }

  // --- results -------------------------------------------------------------------------------------------
  function runSearch() {
    stopLive();
    search += 1;
    results.replaceChildren();
    shown = 0;
    nextUrl = null;
    more.hidden = true;
    let params;
    try {
      params = filterParams();
    } catch (error) {
      if (!(error instanceof FilterError)) throw error;
      showError(error.message);
      return;
    }
    rememberSearchInAddress();
    params.set("limit", PAGE_SIZE);
    if (newest.checked) params.set("order", "desc");
    loadPage(`${main.dataset.eventsUrl}?${params}`).then(() => {
      // Unless Live was turned on while this search loaded: its stream runs already, and a
      // restart would start from a later moment, missing what was stored in between.
      if (live.checked && liveSince === null) startLive();
    });
  }

  async function loadPage(url) {
    const mine = search;
    loadingPage = true;
    setStatus(shown ? "Loading more…" : "Searching…");
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      const body = await response.json().catch(() => null);
      if (mine !== search) return;
      if (!response.ok) {
        showError(describeError(response, body));
        return;
      }
      for (const event of body.events) results.append(renderEvent(event));
      shown += body.events.length;
      nextUrl = body.next;
      more.hidden = !nextUrl;
      setStatus(summary());
      openRequestedEvent();
    } catch (error) {
      if (mine === search) showError(`The server did not answer (${error.message}).`);
    } finally {
      if (mine === search) loadingPage = false;
    }
    if (mine === search) loadMoreIfVisible();
  }

  function summary() {
    if (!shown) return "No events match.";
    const count = `${shown.toLocaleString()} event${shown === 1 ? "" : "s"}`;
    return nextUrl ? `${count} so far: scroll for more.` : `${count}, all that match.`;
  }

  // Pages load as the end of the list comes into view (and by the button, for the keyboard).
  function loadMoreIfVisible() {
    if (!nextUrl || loadingPage || more.hidden) return;
    if (more.getBoundingClientRect().top < window.innerHeight + 400) loadPage(nextUrl);
  }
  new IntersectionObserver(loadMoreIfVisible, { rootMargin: "400px" }).observe(more);
  more.addEventListener("click", () => nextUrl && !loadingPage && loadPage(nextUrl));

  function renderEvent(event, { isLive = false } = {}) {
    const item = document.createElement("li");
    item.className = isLive ? "event live" : "event";
    item.dataset.eventId = event.event_id;
    const summaryButton = document.createElement("button");
    summaryButton.type = "button";
    summaryButton.className = "summary";
    summaryButton.setAttribute("aria-expanded", "false");
    summaryButton.append(
      cell("time", event.timestamp.replace("T", " ")),
      cell("topic", event.topic),
      cell("source", event.source),
      cell("preview", JSON.stringify(event.payload)),
    );
    summaryButton.addEventListener("click", () => toggleDetail(item, event));
    item.append(summaryButton);
    return item;
  }

  function cell(name, text) {
    const span = document.createElement("span");
    span.className = name;
    span.textContent = text;
    return span;
  }

  function toggleDetail(item, event) {
    const summaryButton = item.querySelector(".summary");
    const detail = item.querySelector(".detail");
    if (detail) {
      detail.remove();
      summaryButton.setAttribute("aria-expanded", "false");
      return;
    }
    const json = JSON.stringify(event, null, 2);
    const panel = document.createElement("div");
    panel.className = "detail";
    const copy = document.createElement("button");
    copy.type = "button";
    copy.className = "copy";
    copy.textContent = "Copy JSON";
    copy.addEventListener("click", () => copyText(json, copy));
    const pre = document.createElement("pre");
    pre.tabIndex = 0;
    pre.textContent = json;
    panel.append(copy, pre);
    item.append(panel);
    summaryButton.setAttribute("aria-expanded", "true");
  }

  async function copyText(text, button) {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch {
      button.textContent = "Select the text and copy it";
    }
    setTimeout(() => (button.textContent = "Copy JSON"), 2000);
  }

  function openRequestedEvent() {
    if (!openOnLoad) return;
    const item = [...results.children].find((child) => child.dataset.eventId === openOnLoad);
    if (!item) return;
    openOnLoad = null;
    item.querySelector(".summary").click();
    item.scrollIntoView({ block: "center" });
    item.querySelector(".summary").focus();
  }

  function setStatus(text) {
    statusLine.classList.remove("error");
    statusLine.textContent = text;
  }

  function showError(text) {
    statusLine.classList.add("error");
    statusLine.textContent = text;
  }

  /** The API's 400s name each bad parameter: {"topic": "…"} or {"detail": "…"}. */
  function describeError(response, body) {
    if (response.status === 401 || response.status === 403) {
      return "Reads are protected: reload the page to enter a read key, or log in as staff.";
    }
    if (body && typeof body === "object") {
      return Object.entries(body)
        .map(([name, problem]) => (name === "detail" ? `${problem}` : `${name}: ${[].concat(problem).join(" ")}`))
        .join(" ");
    }
    return `The server answered ${response.status}.`;
  }

  // --- live ----------------------------------------------------------------------------------------------
  // The stream follows the same filters (no time window: it starts now). Every reconnect, after a network
  // error, a server restart or an `overflow` (the server ended a stream that fell too far behind), opens a new
  // EventSource with ?after=<the last event's id>, so the server sends everything stored after it: no event is
  // lost and none is shown twice. Before the first event, it resumes from the moment Live was switched on.
  let stream = null;
  let cursor = null;
  let liveSince = null;
  let retryTimer = null;
  let retryDelay = 250;

  function startLive() {
    stopLive();
    liveSince = liveSince || new Date().toISOString();
    connect();
  }

  function connect() {
    let params;
    try {
      params = filterParams();
    } catch {
      return;
    }
    params.delete("since");
    params.delete("until");
    if (cursor) params.set("after", cursor);
    else params.set("since", liveSince);
    setLiveState("connecting…");
    const source = new EventSource(`${main.dataset.streamUrl}?${params}`);
    stream = source;
    source.addEventListener("open", () => {
      retryDelay = 250;
      setLiveState("on");
    });
    source.addEventListener("event", (message) => {
      cursor = message.lastEventId || cursor;
      addLiveEvent(JSON.parse(message.data));
    });
    source.addEventListener("overflow", (message) => {
      cursor = overflowCursor(message) || cursor;
      reconnect();
    });
    // EventSource would retry by itself, but with the URL it started with: reconnect with the cursor instead.
    source.addEventListener("error", () => reconnect());
  }

  function overflowCursor(message) {
    if (message.lastEventId) return message.lastEventId;
    try {
      const data = JSON.parse(message.data);
      return data.after || data.cursor || null;
    } catch {
      return message.data || null;
    }
  }

  function reconnect() {
    if (!stream) return;
    stream.close();
    stream = null;
    setLiveState("reconnecting…");
    retryTimer = setTimeout(connect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, RECONNECT_MAX_MS);
  }

  function stopLive() {
    clearTimeout(retryTimer);
    if (stream) stream.close();
    stream = null;
    cursor = null;
    liveSince = null;
    setLiveState("");
  }

  function addLiveEvent(event) {
    const item = renderEvent(event, { isLive: true });
    if (newest.checked) results.prepend(item);
    else results.append(item);
    shown += 1;
    setStatus(summary());
  }

  function setLiveState(text) {
    liveState.textContent = text ? `Live: ${text}` : "";
    main.dataset.live = text;
  }

  live.addEventListener("change", () => {
    rememberSearchInAddress();
    if (live.checked) startLive();
    else stopLive();
  });

  // --- counters ------------------------------------------------------------------------------------------
  async function refreshCounters() {
    try {
      const response = await fetch(main.dataset.statsUrl, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const stats = await response.json();
      for (const counter of document.querySelectorAll("[data-counter]")) {
        counter.textContent = Number(stats[counter.dataset.counter]).toLocaleString();
      }
    } catch {
      // The next refresh tries again.
    }
  }

  // --- keyboard ------------------------------------------------------------------------------------------
  // "/" focuses the topic; j and k move between events; Escape closes an event's detail.
  document.addEventListener("keydown", (key) => {
    if (key.altKey || key.ctrlKey || key.metaKey) return;
    const typing = key.target.matches("input, textarea");
    if (key.key === "/" && !typing) {
      key.preventDefault();
      form.topic.focus();
      form.topic.select();
    } else if ((key.key === "j" || key.key === "k") && !typing) {
      const rows = [...results.querySelectorAll(".summary")];
      const at = rows.indexOf(document.activeElement.closest(".event")?.querySelector(".summary"));
      const next = rows[key.key === "j" ? at + 1 : Math.max(at - 1, 0)];
      if (next) {
        key.preventDefault();
        next.focus();
      }
    } else if (key.key === "Escape") {
      const open = document.activeElement.closest(".event");
      if (open && open.querySelector(".detail")) open.querySelector(".summary").click();
    }
  });

  for (const button of form.querySelectorAll("[data-since]")) {
    button.addEventListener("click", () => {
      form.since.value = button.dataset.since;
      form.until.value = "";
      runSearch();
    });
  }
  newest.addEventListener("change", runSearch);
  form.addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    runSearch();
  });

  restoreSearchFromAddress();
  runSearch();
  refreshCounters();
  setInterval(refreshCounters, STATS_EVERY_MS);
})();
