// LLM judges: the list (enable/disable) and the add/edit form with a test call. Every change goes
// through /api/v1/llm-configs; the API key is sent only when typed and never shown.
"use strict";

(() => {
  const { api, showError, clearError, confirmAction } = window.atryum;
  const el = (id) => document.getElementById(id);
  const configUrl = (id) => `/api/v1/llm-configs/${encodeURIComponent(id)}`;

  function listPage() {
    document.addEventListener("click", async (event) => {
      const button = event.target.closest("button[data-toggle-config]");
      if (!button) return;
      clearError("configs-error");
      button.disabled = true;
      try {
        await api("PATCH", configUrl(button.dataset.toggleConfig), { enabled: button.dataset.enabled !== "true" });
      } catch (err) {
        showError("configs-error", err.message);
        button.disabled = false;
        return;
      }
      location.reload();
    });
  }

  function formPage(form) {
    const id = form.dataset.configId;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearError("config-error");
      const body = {
        name: el("config-name").value.trim(),
        provider: el("config-provider").value,
        model: el("config-model").value.trim(),
        base_url: el("config-base-url").value.trim(),
        timeout_seconds: Number(el("config-timeout").value),
        enabled: el("config-enabled").checked,
      };
      const key = el("config-api-key").value;
      const clear = el("config-clear-key");
      if (clear && clear.checked) body.api_key = "";
      else if (key) body.api_key = key;
      const submit = form.querySelector('button[type="submit"]');
      submit.disabled = true;
      try {
        if (id) await api("PATCH", configUrl(id), body);
        else await api("POST", "/api/v1/llm-configs", body);
        location.assign(`/ui/llm-configs?notice=${id ? "saved" : "created"}`);
      } catch (err) {
        showError("config-error", err.message);
        submit.disabled = false;
      }
    });
    const remove = el("config-delete");
    if (remove) {
      remove.addEventListener("click", async () => {
        const ok = await confirmAction(
          `Delete the LLM judge ${remove.dataset.name}? Rules that use it will send their calls to a human until they name another judge.`,
          "Delete LLM judge",
        );
        if (!ok) return;
        try {
          await api("DELETE", configUrl(id));
        } catch (err) {
          showError("config-error", err.message);
          return;
        }
        location.assign("/ui/llm-configs?notice=deleted");
      });
    }
    const test = el("test-run");
    if (test) {
      test.addEventListener("click", async () => {
        const out = el("test-result");
        out.hidden = true;
        test.disabled = true;
        try {
          const r = await api("POST", `${configUrl(id)}/test`, { tool: el("test-tool").value.trim() || "get_pull_request" });
          const conf = r.confidence === null ? "" : `, confidence ${r.confidence.toFixed(2)}`;
          const tokens = r.input_tokens === null ? "" : `, ${r.input_tokens} + ${r.output_tokens} tokens`;
          out.textContent = r.ok
            ? `${r.verdict.replace(/_/g, " ")}${conf} — ${r.reason} (${r.model}, ${r.latency_ms} ms${tokens})`
            : `The judge could not answer (${r.error}): ${r.reason}`;
          out.className = `alert ${r.ok ? "alert-ok" : "alert-error"}`;
        } catch (err) {
          out.textContent = err.message;
          out.className = "alert alert-error";
        }
        out.hidden = false;
        test.disabled = false;
      });
    }
  }

  const form = el("config-form");
  if (form) formPage(form);
  else listPage();
})();
