// Invocations list: re-read the table (server-rendered rows) whenever an invocation changes, so
// new calls appear and decided ones move on without reloading the page.
"use strict";

(() => {
  const { onInvocation, debounce } = window.atryum;
  const box = document.getElementById("invocation-rows");
  const seen = () => new Set([...box.querySelectorAll("tr[data-invocation-id]")].map((tr) => tr.dataset.invocationId));

  async function reload() {
    const query = new URLSearchParams({ status: box.dataset.status, offset: box.dataset.offset });
    let html;
    try {
      const response = await fetch(`/ui/invocations/rows?${query}`, { headers: { Accept: "text/html" } });
      if (!response.ok) return;
      html = await response.text();
    } catch {
      return; // Atryum restarting: the next change (or the reconnect) re-reads
    }
    const before = seen();
    const focused = box.contains(document.activeElement) ? document.activeElement.getAttribute("href") : null;
    box.innerHTML = html;
    for (const tr of box.querySelectorAll("tr[data-invocation-id]")) {
      if (!before.has(tr.dataset.invocationId)) tr.classList.add("fresh");
    }
    if (focused) {
      const again = [...box.querySelectorAll("a[href]")].find((a) => a.getAttribute("href") === focused);
      if (again) again.focus();
    }
  }

  onInvocation(debounce(reload, 100));
})();
