// Agent detail page: create or edit an agent through the JSON API; bindings rows.
"use strict";

(() => {
  const { api, showError, clearError } = window.atryum;
  const el = (id) => document.getElementById(id);
  const form = el("agent-form");
  const rows = el("binding-rows");
  const agentId = form.dataset.agentId;
  const synced = form.dataset.synced === "true";
  let rowCount = rows.children.length;

  function addBinding() {
    const row = el("binding-template").content.firstElementChild.cloneNode(true);
    rowCount += 1;
    for (const field of row.querySelectorAll(".field")) {
      const input = field.querySelector("input");
      input.id = `b${rowCount}-${input.dataset.key}`;
      field.querySelector("label").htmlFor = input.id;
    }
    rows.append(row);
    row.querySelector('[data-key="claude_agent_id"]').focus();
  }

  function lines(text, separator) {
    return text.split(separator).map((s) => s.trim()).filter(Boolean);
  }

  function bindings() {
    return [...rows.querySelectorAll(".binding-row")]
      .map((row) => {
        const value = (key) => row.querySelector(`[data-key="${key}"]`).value.trim();
        const binding = {
          account: value("account") || "default",
          claude_agent_id: value("claude_agent_id"),
          claude_agent_name: value("claude_agent_name"),
        };
        if (row.dataset.bindingId) binding.id = row.dataset.bindingId;
        return binding;
      })
      .filter((b) => b.claude_agent_id || b.claude_agent_name);
  }

  function body() {
    const data = {
      agent_ids: lines(el("agent_ids").value, "\n"),
      tags: lines(el("tags").value, ","),
      enabled: el("enabled").checked,
      claude_managed_agents: bindings(),
    };
    if (!synced) {
      data.name = el("name").value.trim();
      data.description = el("description").value;
      data.charter = el("charter").value;
    }
    return data;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError("form-error");
    const data = body();
    if (!synced && !data.name) {
      showError("form-error", "Name must not be empty.");
      el("name").focus();
      return;
    }
    const submit = form.querySelector('button[type="submit"]');
    submit.disabled = true;
    try {
      const agent = agentId
        ? await api("PATCH", `/api/v1/agents/${encodeURIComponent(agentId)}`, data)
        : await api("POST", "/api/v1/agents", data);
      const notice = agentId ? "saved" : "created";
      location.assign(`/ui/agents/${encodeURIComponent(agent.cuid)}?notice=${notice}`);
    } catch (err) {
      showError("form-error", err.message);
      submit.disabled = false;
    }
  });

  el("add-binding").addEventListener("click", addBinding);
  rows.addEventListener("click", (event) => {
    const button = event.target.closest("[data-remove-binding]");
    if (!button) return;
    button.closest(".binding-row").remove();
    el("add-binding").focus();
  });
})();
