// Operator API tokens page: create (the value is shown once, here only) and revoke.
"use strict";

(() => {
  const { api, showError, clearError, confirmAction } = window.atryum;

  async function create(form) {
    clearError("token-error");
    const body = {
      name: form.elements.name.value.trim(),
      role: form.elements.role.value,
      expires_in: form.elements.expires_in.value.trim(),
    };
    let created;
    try {
      created = await api("POST", "/api/v1/tokens", body);
    } catch (err) {
      showError("token-error", err.message);
      return;
    }
    document.getElementById("token-value").textContent = created.token;
    document.getElementById("token-created").hidden = false;
    form.reset();
  }

  async function revoke(button) {
    const ok = await confirmAction(
      `Revoke token “${button.dataset.name}”? Anything using it is refused from now on.`,
      "Revoke",
    );
    if (!ok) return;
    try {
      await api("DELETE", `/api/v1/tokens/${encodeURIComponent(button.dataset.revoke)}`);
    } catch (err) {
      showError("token-error", err.message);
      return;
    }
    location.reload();
  }

  document.addEventListener("submit", (event) => {
    if (event.target.id !== "token-form") return;
    event.preventDefault();
    create(event.target);
  });
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-revoke]");
    if (button) revoke(button);
  });
})();
