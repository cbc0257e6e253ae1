// Rules: the ordered list (enable/disable, move up/down, delete with confirmation), the default
// policy, and the create/edit form. Every change goes through /api/v1/rules and /api/v1/policy.
"use strict";

(() => {
  const { api, showError, clearError, confirmAction, searchAsYouType } = window.atryum;
  const el = (id) => document.getElementById(id);
  const FOCUS_KEY = "atryum-rules-focus";
  const ruleUrl = (id) => `/api/v1/rules/${encodeURIComponent(id)}`;

  // Reload the list, then put the keyboard focus back where the operator was.
  function reloadFocusing(selector) {
    sessionStorage.setItem(FOCUS_KEY, selector);
    location.reload();
  }

  function restoreFocus() {
    const selector = sessionStorage.getItem(FOCUS_KEY);
    sessionStorage.removeItem(FOCUS_KEY);
    if (!selector) return;
    const target = document.querySelector(selector);
    if (target && !target.disabled) target.focus();
    else if (target) target.closest(".row-actions").querySelector("a").focus();
  }

  const specOf = (rule) => ({
    action: rule.action,
    server_patterns: rule.server_patterns,
    tool_patterns: rule.tool_patterns,
    agent_cuids: rule.agent_cuids,
    description: rule.description,
    enabled: rule.enabled,
    atryum_llm_config_id: rule.atryum_llm_config_id,
    model_config_cuid: rule.model_config_cuid,
    min_confidence: rule.min_confidence,
    shadow: rule.shadow,
  });

  // The judge fields of the form: only an AI evaluation rule has a judge.
  function judgeFields(action) {
    if (action !== "ai_evaluation") return {};
    const [kind, ...rest] = el("judge").value.split(":");
    const ref = rest.join(":") || null;
    return {
      atryum_llm_config_id: kind === "llm" ? ref : null,
      model_config_cuid: kind === "vm" ? ref : null,
      min_confidence: Number(el("min_confidence").value || 0),
      shadow: el("rule-shadow").checked,
    };
  }

  async function run(button, change, selector) {
    clearError("rules-error");
    button.disabled = true;
    try {
      await change();
    } catch (err) {
      showError("rules-error", err.message);
      button.disabled = false;
      return;
    }
    reloadFocusing(selector);
  }

  async function toggle(button) {
    const id = button.dataset.toggle;
    await run(
      button,
      async () => {
        const rule = await api("GET", ruleUrl(id));
        await api("PUT", ruleUrl(id), { ...specOf(rule), enabled: !rule.enabled });
      },
      `[data-toggle="${id}"]`,
    );
  }

  async function move(button) {
    const { rule, move: direction } = button.dataset;
    await run(button, () => api("PUT", `${ruleUrl(rule)}/move`, { direction }), `[data-move="${direction}"][data-rule="${rule}"]`);
  }

  async function remove(button) {
    const label = button.dataset.label;
    const ok = await confirmAction(
      `Delete rule ${label}? Calls it decided keep their history; new calls skip to the next rule.`,
      `Delete rule ${label}`,
    );
    if (!ok) return;
    clearError("rules-error");
    try {
      await api("DELETE", ruleUrl(button.dataset.deleteRule));
    } catch (err) {
      showError("rules-error", err.message);
      return;
    }
    location.assign("/ui/rules?notice=deleted");
  }

  function listPage() {
    document.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-toggle], button[data-move], button[data-delete-rule]");
      if (!button) return;
      if (button.hasAttribute("data-toggle")) toggle(button);
      else if (button.hasAttribute("data-move")) move(button);
      else remove(button);
    });
    const policy = el("policy-form");
    policy.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearError("policy-error");
      el("policy-saved").hidden = true;
      const timeout = Number.parseInt(el("timeout").value, 10);
      if (!(timeout >= 1)) {
        showError("policy-error", "The approval timeout must be a whole number of seconds, at least 1.");
        el("timeout").focus();
        return;
      }
      try {
        const saved = await api("PUT", "/api/v1/policy", { provider: el("provider").value, approval_timeout_seconds: timeout });
        const label = el("provider").selectedOptions[0].text;
        el("policy-saved").textContent = `Default policy saved: ${label}; pending calls expire after ${saved.approval_timeout_seconds} s.`;
        el("policy-saved").hidden = false;
      } catch (err) {
        showError("policy-error", err.message);
      }
    });
    restoreFocus();
  }

  // The agent picker searches the registry as the operator types: checked agents stay, the
  // unchecked ones are replaced by the matches (at most one request in flight, the last wins).
  function agentSearch() {
    const input = el("agent-search");
    const picker = el("agent-picker");
    if (!input || !picker) return;
    const status = el("agent-search-status");
    const choice = (agent) => {
      const wrap = document.createElement("div");
      wrap.className = "field field-check";
      wrap.dataset.agentChoice = agent.name;
      wrap.dataset.state = agent.state;
      const box = document.createElement("input");
      box.type = "checkbox";
      box.id = `agent-${agent.cuid}`;
      box.name = "agent";
      box.value = agent.cuid;
      const label = document.createElement("label");
      label.htmlFor = box.id;
      const badge = document.createElement("span");
      badge.className = `badge badge-${agent.state}`;
      badge.textContent = agent.state;
      label.append(`${agent.name} `, badge);
      wrap.append(box, label);
      return wrap;
    };
    const find = (q) => api("GET", `/api/v1/agents/search?limit=${input.dataset.limit}&q=${encodeURIComponent(q)}`);
    function show(found) {
      const kept = new Set();
      for (const box of picker.querySelectorAll('input[name="agent"]')) {
        if (box.checked) kept.add(box.value);
        else box.closest("[data-agent-choice]").remove();
      }
      for (const agent of found.items) {
        if (!kept.has(agent.cuid)) picker.append(choice(agent));
      }
      const shown = found.items.length;
      status.textContent = found.total === 0 ? "No agents match."
        : found.total > shown ? `Showing ${shown} of ${found.total} matching agents: type more to narrow.`
        : `${found.total} matching agent${found.total === 1 ? "" : "s"}.`;
    }
    searchAsYouType(input, find, show, (err) => { status.textContent = `Search failed: ${err.message}`; });
  }

  function formPage(form) {
    agentSearch();
    const ruleId = form.dataset.ruleId;
    const patterns = (id) => el(id).value.split(",").map((s) => s.trim()).filter(Boolean);
    el("action").addEventListener("change", () => {
      el("judge-fields").hidden = el("action").value !== "ai_evaluation";
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearError("form-error");
      const body = {
        action: el("action").value,
        server_patterns: patterns("server_patterns"),
        tool_patterns: patterns("tool_patterns"),
        agent_cuids: [...form.querySelectorAll('input[name="agent"]:checked')].map((i) => i.value),
        description: el("rule-description").value.trim(),
        enabled: el("rule-enabled").checked,
        ...judgeFields(el("action").value),
      };
      const position = el("insert_before");
      if (position && position.value !== "__end__") body.insert_before = position.value;
      const submit = form.querySelector('button[type="submit"]');
      submit.disabled = true;
      try {
        if (ruleId) await api("PUT", ruleUrl(ruleId), body);
        else await api("POST", "/api/v1/rules", body);
        location.assign(`/ui/rules?notice=${ruleId ? "saved" : "created"}`);
      } catch (err) {
        showError("form-error", err.message);
        submit.disabled = false;
      }
    });
  }

  const form = el("rule-form");
  if (form) formPage(form);
  else listPage();
})();
