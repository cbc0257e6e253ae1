// MCP servers: test and disable from the list; the add/edit form; the tools with the effective
// action for a chosen agent. Every change goes through /api/v1/servers.
"use strict";

(() => {
  const { api, showError, clearError, confirmAction, searchAsYouType } = window.atryum;
  const el = (id) => document.getElementById(id);
  const serverUrl = (name) => `/api/v1/servers/${encodeURIComponent(name)}`;
  const ACTION_LABELS = {
    auto_approve: "Approve",
    auto_deny: "Deny",
    human_approval: "Ask a human",
    ai_evaluation: "AI evaluation",
  };

  function listPage() {
    document.addEventListener("click", async (event) => {
      const button = event.target.closest("button[data-test], button[data-disable]");
      if (!button) return;
      clearError("servers-error");
      const row = button.closest("tr");
      if (button.hasAttribute("data-test")) {
        const out = row.querySelector("[data-test-result]");
        button.disabled = true;
        out.hidden = false;
        out.textContent = "Testing…";
        try {
          const r = await api("POST", `${serverUrl(button.dataset.test)}/test`);
          out.textContent = r.ok ? `Connected: ${r.tools} tools.` : `Failed: ${r.error}`;
          const badge = row.querySelector("[data-status]");
          badge.textContent = r.connection_status;
          badge.className = `badge badge-status-${r.connection_status}`;
        } catch (err) {
          showError("servers-error", err.message);
          out.hidden = true;
        }
        button.disabled = false;
        return;
      }
      const name = button.dataset.disable;
      const ok = await confirmAction(`Disable ${name}? Its clients get “disabled” until you enable it again.`, `Disable ${name}`);
      if (!ok) return;
      try {
        await api("DELETE", `${serverUrl(name)}?mode=disable`);
      } catch (err) {
        showError("servers-error", err.message);
        return;
      }
      location.reload();
    });
  }

  // "NAME=value" (env) or "Name: value" (headers) lines to an object.
  function pairs(text, sep) {
    const out = {};
    for (const line of text.split("\n")) {
      const at = line.indexOf(sep);
      if (!line.trim()) continue;
      if (at < 1) throw new Error(`“${line.trim()}” is not of the form name${sep}value`);
      out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
    return out;
  }

  function showMode() {
    const mode = el("server-mode").value;
    for (const field of document.querySelectorAll("[data-mode]")) field.hidden = field.dataset.mode !== mode;
  }

  function formPage(form) {
    const original = form.dataset.server;
    el("server-mode").addEventListener("change", showMode);
    showMode();
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearError("form-error");
      let body;
      try {
        body = {
          name: el("server-name").value.trim(),
          mode: el("server-mode").value,
          base_url: el("server-url").value.trim(),
          command: el("server-command").value.trim(),
          args: el("server-args").value.split("\n").map((s) => s.trim()).filter(Boolean),
          env: pairs(el("server-env").value, "="),
          headers: pairs(el("server-headers").value, ":"),
          timeout_seconds: Number.parseInt(el("server-timeout").value, 10),
          enabled: el("server-enabled").checked,
        };
      } catch (err) {
        showError("form-error", err.message);
        return;
      }
      const token = el("server-token").value;
      const clear = el("server-token-clear");
      if (token) body.auth_token = token;
      else if (clear && clear.checked) body.auth_token = "";
      if (!body.name) {
        showError("form-error", "A server needs a name.");
        el("server-name").focus();
        return;
      }
      try {
        if (original) await api("PUT", serverUrl(original), body);
        else await api("POST", "/api/v1/servers", body);
      } catch (err) {
        showError("form-error", err.message);
        return;
      }
      location.assign("/ui/servers?notice=saved");
    });
    const remove = el("server-delete");
    if (remove) {
      remove.addEventListener("click", async () => {
        const ok = await confirmAction(`Delete ${original}? Its calls keep their history.`, `Delete ${original}`);
        if (!ok) return;
        try {
          await api("DELETE", serverUrl(original));
        } catch (err) {
          showError("form-error", err.message);
          return;
        }
        location.assign("/ui/servers?notice=deleted");
      });
    }
  }

  // The agent list holds the first agents; typing searches the registry for the rest (the
  // chosen agent stays, at most the last answer is shown).
  function agentSearch() {
    const input = el("tools-agent-search");
    const select = el("tools-agent");
    const status = el("tools-agent-status");
    const find = (q) => api("GET", `/api/v1/agents?limit=${input.dataset.limit}&q=${encodeURIComponent(q)}`);
    function show(found) {
      for (const option of [...select.options]) {
        if (option.value && !option.selected) option.remove();
      }
      const kept = new Set([...select.options].map((o) => o.value));
      const callers = found.items.filter((a) => a.agent_ids.length > 0);
      for (const agent of callers) {
        if (!kept.has(agent.agent_ids[0])) select.append(new Option(agent.name, agent.agent_ids[0]));
      }
      status.textContent = callers.length === 0 ? "No agent with a runtime id matches."
        : found.total > found.items.length ? `Showing ${callers.length} of ${found.total} matching agents: type more to narrow.`
        : `${callers.length} matching agent${callers.length === 1 ? "" : "s"}.`;
    }
    searchAsYouType(input, find, show, (err) => { status.textContent = `Search failed: ${err.message}`; });
  }

  function toolsSection(form) {
    agentSearch();
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearError("tools-error");
      const agent = el("tools-agent").value;
      const query = agent ? `?agent_id=${encodeURIComponent(agent)}` : "";
      let listing;
      try {
        listing = await api("GET", `${serverUrl(form.dataset.server)}/tools${query}`);
      } catch (err) {
        showError("tools-error", err.message);
        return;
      }
      const body = el("tools-table").querySelector("tbody");
      body.replaceChildren(
        ...listing.items.map((t) => {
          const tr = document.createElement("tr");
          tr.dataset.tool = t.name;
          for (const [label, text] of [["Tool", t.name], ["Action", ACTION_LABELS[t.effective_action] || t.effective_action], ["Description", t.description || "—"]]) {
            const td = document.createElement("td");
            td.dataset.label = label;
            td.textContent = text;
            tr.append(td);
          }
          tr.children[1].dataset.action = t.effective_action;
          return tr;
        }),
      );
      el("tools-table").hidden = false;
    });
  }

  const form = el("server-form");
  if (form) formPage(form);
  else listPage();
  const tools = el("tools-form");
  if (tools) toolsSection(tools);
})();
