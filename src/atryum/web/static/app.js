// Atryum operator UI: shared helpers (JSON API calls, inline errors, confirmations, sync
// buttons, live run pages, the header's ValidMind status, live invocation changes and the
// pending-count badge). No dependencies, no build step.
"use strict";

window.atryum = (() => {
  const FINISHED = new Set(["succeeded", "partial", "held", "failed", "skipped"]);
  const POLL_MS = 400;

  // Call the JSON API; throws an Error carrying the server's own message.
  // The session's CSRF token (present when logged in): every change sends it back.
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrfToken = csrfMeta ? csrfMeta.content : "";

  async function api(method, url, body) {
    const init = { method, headers: { Accept: "application/json" } };
    if (csrfToken && method !== "GET" && method !== "HEAD") init.headers["X-CSRF-Token"] = csrfToken;
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (err) {
      throw new Error(`Atryum did not answer (${err.message}); check that it is running.`);
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) {
      const message = data && data.error && data.error.message;
      throw new Error(message || `HTTP ${response.status}: ${text.slice(0, 300) || response.statusText}`);
    }
    return data;
  }

  function showError(id, message) {
    const el = document.getElementById(id);
    el.textContent = message;
    el.hidden = false;
  }

  function clearError(id) {
    const el = document.getElementById(id);
    el.textContent = "";
    el.hidden = true;
  }

  // A modal confirmation naming what is about to happen; resolves true when confirmed.
  function confirmAction(message, okLabel) {
    const dialog = document.getElementById("confirm");
    document.getElementById("confirm-message").textContent = message;
    document.getElementById("confirm-ok").textContent = okLabel;
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
      dialog.returnValue = "";
      dialog.showModal();
    });
  }

  // Poll a run's status until it finishes; `onStatus` sees every status read. A run Atryum does
  // not know (`known: false`: not recorded, not queued here) is given up on after the time the
  // server names, with the status "unknown" (it was lost, e.g. to a restart, and will not run).
  function follow(runId, onStatus) {
    let unknownSince = null;
    const tick = async () => {
      let info = null;
      try {
        info = await api("GET", `/ui/sync/runs/${encodeURIComponent(runId)}/status`);
      } catch {
        info = null; // Atryum restarting: keep asking
      }
      let status = info && info.status;
      if (info && info.known === false) {
        unknownSince = unknownSince ?? Date.now();
        if (Date.now() - unknownSince >= info.give_up_after_ms) status = "unknown";
      } else if (info) {
        unknownSince = null;
      }
      if (status) onStatus(status);
      if (!FINISHED.has(status) && status !== "unknown") setTimeout(tick, POLL_MS);
    };
    setTimeout(tick, POLL_MS);
  }

  async function startSync(button) {
    const errorId = button.dataset.error || "sync-error";
    clearError(errorId);
    const query = button.hasAttribute("data-dry-run") ? "?dry_run=true" : "";
    const body = button.hasAttribute("data-allow-removals") ? { allow_removals: true } : undefined;
    button.disabled = true;
    try {
      const run = await api("POST", `/api/v1/agents/sync${query}`, body);
      location.assign(`/ui/sync/runs/${encodeURIComponent(run.id)}?started=1`);
    } catch (err) {
      showError(errorId, err.message);
      button.disabled = false;
    }
  }

  async function deleteAgent(button) {
    const { name, verb } = button.dataset;
    const ok = await confirmAction(
      `${verb} agent “${name}”? This removes it for good and cannot be undone.`,
      `${verb} “${name}”`,
    );
    if (!ok) return;
    clearError(button.dataset.error);
    try {
      await api("DELETE", `/api/v1/agents/${encodeURIComponent(button.dataset.delete)}`);
    } catch (err) {
      showError(button.dataset.error, err.message);
      return;
    }
    const next = new URL(button.dataset.next, location.href);
    next.searchParams.set("deleted", name);
    location.assign(next);
  }

  function toggleReview(button) {
    const panel = document.getElementById(button.getAttribute("aria-controls"));
    const open = button.getAttribute("aria-expanded") !== "true";
    button.setAttribute("aria-expanded", String(open));
    panel.hidden = !open;
  }

  // A run page (or the Sync page's latest run) still running: re-render when its status moves.
  // The reloaded page keeps `started` until the run has finished (another replica may answer it
  // before the run is recorded); a run nobody knows is marked unknown in place.
  function followLiveRun() {
    const shown = document.querySelector(".run[data-status]");
    if (shown && FINISHED.has(shown.dataset.status)) {
      // rendered finished (it ended while the page reloaded): the address drops `started` too
      const url = new URL(location.href);
      if (url.searchParams.has("started")) {
        url.searchParams.delete("started");
        history.replaceState(null, "", url);
      }
    }
    const section = document.querySelector("[data-live]");
    if (!section) return;
    follow(section.dataset.runId, (status) => {
      if (status === section.dataset.status) return;
      section.dataset.status = status;
      if (status === "unknown") {
        showUnknownRun(section);
        return;
      }
      const url = new URL(location.href);
      if (FINISHED.has(status)) url.searchParams.delete("started");
      location.replace(url);
    });
  }

  function showUnknownRun(section) {
    if (!section.querySelector(".run-unknown")) {
      location.reload(); // rendered as a known run: let the server say what it knows now
      return;
    }
    const badge = section.querySelector(".badge-status");
    badge.textContent = "unknown";
    badge.className = "badge badge-status badge-unknown";
    section.querySelector(".run-headline").textContent = "Unknown: Atryum has no record of this run";
    section.querySelector(".live").hidden = true;
    section.querySelector(".run-unknown").hidden = false;
  }

  async function showConnection() {
    const el = document.getElementById("vm-status");
    if (el.dataset.state !== "checking") return;
    try {
      const info = await api("GET", "/ui/connection");
      el.dataset.state = info.state;
      el.textContent = `ValidMind: ${info.state === "error" ? "unreachable" : info.message}`;
      el.title = info.message;
    } catch (err) {
      el.dataset.state = "error";
      el.textContent = "ValidMind: status unknown";
      el.title = err.message;
    }
  }

  // Live invocation changes: one EventSource per page, shared by the header badge and the page's
  // own scripts. A listener gets the changed invocation's JSON, or null for "anything may have
  // changed, re-read" (on (re)connecting). Without the stream, listeners are polled instead.
  const LIVE_POLL_MS = 5000;
  const liveListeners = [];
  let liveStarted = false;

  function setLive(state, text) {
    const el = document.getElementById("live-status");
    if (!el) return;
    el.dataset.state = state;
    el.textContent = text;
  }

  function notify(change) {
    for (const listener of liveListeners) listener(change);
  }

  function pollLive() {
    setLive("polling", `Live updates unavailable; re-reading every ${LIVE_POLL_MS / 1000} s`);
    setInterval(() => notify(null), LIVE_POLL_MS);
  }

  function startLive() {
    if (liveStarted) return;
    liveStarted = true;
    if (!("EventSource" in window)) {
      pollLive();
      return;
    }
    const source = new EventSource("/api/v1/review/invocations/stream");
    source.addEventListener("ready", () => {
      setLive("on", "Updates live");
      notify(null);
    });
    source.addEventListener("invocation", (event) => {
      let change = null;
      try {
        change = JSON.parse(event.data);
      } catch {
        change = null;
      }
      notify(change);
    });
    source.addEventListener("resync", () => notify(null));
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        pollLive();
      } else {
        setLive("reconnecting", "Reconnecting to live updates…");
      }
    });
    window.addEventListener("pagehide", () => source.close());
  }

  function onInvocation(listener) {
    liveListeners.push(listener);
    startLive();
  }

  // Run `fn` once after a burst of calls settles.
  function debounce(fn, ms) {
    let timer = null;
    return (...args) => {
      clearTimeout(timer);
      timer = setTimeout(() => fn(...args), ms);
    };
  }

  // Search as the operator types: `find(q)` after a pause, and `show` of the last answer only
  // (an earlier, slower one is dropped); Enter searches rather than submitting the form.
  function searchAsYouType(input, find, show, fail) {
    let asked = 0;
    input.addEventListener("input", debounce(async () => {
      const ticket = ++asked;
      let found;
      try {
        found = await find(input.value.trim());
      } catch (err) {
        fail(err);
        return;
      }
      if (ticket === asked) show(found);
    }, 150));
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") event.preventDefault();
    });
  }

  // The header's "Invocations (n)": calls waiting for a human.
  const refreshPending = debounce(async () => {
    const el = document.getElementById("pending-count");
    if (!el) return;
    let total;
    try {
      total = (await api("GET", "/api/v1/review/invocations?status=pending_approval&limit=1")).total;
    } catch {
      return; // keep the last count; the next change tries again
    }
    el.dataset.count = String(total);
    el.textContent = total ? ` (${total})` : "";
    el.hidden = !total;
  }, 100);

  // Log out ends the session on the server, then shows the login page.
  async function logout() {
    try {
      await api("POST", "/ui/auth/logout");
    } finally {
      location.assign("/ui/");
    }
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest(
      "button[data-sync], button[data-delete], button[data-review], button[data-logout]",
    );
    if (!button) return;
    if (button.hasAttribute("data-logout")) logout();
    else if (button.hasAttribute("data-sync")) startSync(button);
    else if (button.hasAttribute("data-delete")) deleteAgent(button);
    else toggleReview(button);
  });
  document.addEventListener("DOMContentLoaded", () => {
    followLiveRun();
    showConnection();
    onInvocation(refreshPending);
  });

  return { api, showError, clearError, follow, FINISHED, onInvocation, debounce, confirmAction, searchAsYouType };
})();
