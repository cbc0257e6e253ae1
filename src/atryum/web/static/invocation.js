// Invocation detail: approve or deny a pending call through the review API (the server's message
// is shown inline when it refuses, e.g. 409 when someone else decided first), and say so when the
// call changes while the page is open.
"use strict";

(() => {
  const { api, showError, clearError, onInvocation } = window.atryum;
  const section = document.getElementById("invocation");
  const id = section.dataset.invocationId;
  const url = `/api/v1/review/invocations/${encodeURIComponent(id)}`;
  const form = document.getElementById("decision-form");
  const notice = document.getElementById("changed-notice");

  function changed(status) {
    if (!status || status === section.dataset.status) return;
    notice.replaceChildren(
      `This call is now ${status.replace(/_/g, " ")}. `,
      Object.assign(document.createElement("a"), { href: location.pathname, textContent: "Reload to see who decided and why" }),
    );
    notice.hidden = false;
  }

  onInvocation(async (change) => {
    if (change) {
      if (change.invocation_id === id) changed(change.status);
      return;
    }
    try {
      changed((await api("GET", url)).status);
    } catch {
      // unreachable for a moment: the next change tells
    }
  });

  if (!form) return;
  const buttons = [...form.querySelectorAll("button[data-decision]")];
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const decision = event.submitter && event.submitter.dataset.decision;
    if (!decision) return; // Enter in a field: the operator must pick Approve or Deny
    clearError("decision-error");
    for (const b of buttons) b.disabled = true;
    try {
      await api("POST", `${url}/${decision}`, { reason: document.getElementById("reason").value });
      location.replace(location.pathname);
    } catch (err) {
      showError("decision-error", err.message);
      for (const b of buttons) b.disabled = false;
    }
  });
})();
